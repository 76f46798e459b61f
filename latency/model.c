/* latency/model.c: measurement CSVs, least squares (normal equations + Cholesky, written
 * here because n <= 6 unknowns per op makes LAPACK unnecessary), fitting a target's linear
 * and per-layer models, writing the fitted target JSON. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency/cost.h"
#include "core/alloc.h"
#include "latency/measure.h"
#include "latency/target.h"

/* ---- CSV -------------------------------------------------------------------------------- */

enum { C_TARGET, C_MODEL, C_LAYER, C_OP, C_MACS, C_IN, C_OUT, C_K, C_CIN, C_COUT, C_CYC, C_MS, C_N };
static const char *const COLS[] = {"target", "model", "layer", "op", "macs", "in_bytes",
                                   "out_bytes", "k", "cin", "cout", "cycles", "ms"};
_Static_assert(sizeof COLS / sizeof COLS[0] == C_N, "one name per column");

static int num(const char *s, double *x) {
  char *end;
  if (!*s) return -1;
  *x = strtod(s, &end);
  return *end || !isfinite(*x) ? -1 : 0;
}

int nas_meas_read_csv(const char *path, const char *only_target, double clock_mhz,
                      nas_meas **rows, int *n, nas_err *e) {
  *rows = NULL, *n = 0;
  FILE *f = fopen(path, "r");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open", path);
  char line[2048];
  int col[C_N], lineno = 0, have_header = 0, cap = 0, rc = NAS_OK;
  nas_meas *v = NULL;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#' || *p == '\n' || *p == '\r' || !*p) continue;
    char *fld[64];
    int nf = nas_csv_split(p, fld, 64);
    if (nf < 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: too many columns", path, lineno); break; }
    if (!have_header) {
      for (int c = 0; c < C_N; c++) {
        col[c] = -1;
        for (int i = 0; i < nf; i++)
          if (!strcmp(fld[i], COLS[c])) col[c] = i;
        if (col[c] < 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: header lacks column '%s'", path, lineno, COLS[c]); break; }
      }
      if (rc) break;
      for (int i = 0; i < nf; i++) {
        int known = 0;
        for (int c = 0; c < C_N; c++) known |= col[c] == i;
        if (!known) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: unknown column '%s'", path, lineno, fld[i]); break; }
      }
      if (rc) break;
      have_header = 1;
      continue;
    }
    if (nf != C_N) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: %d columns, header has %d", path, lineno, nf, C_N); break; }
    nas_meas m = {0};
    m.line = lineno;
    const char *tg = fld[col[C_TARGET]];
    if (only_target && strcmp(tg, only_target)) continue;
    if (strlen(tg) >= sizeof m.target || strlen(fld[col[C_MODEL]]) >= sizeof m.model ||
        strlen(fld[col[C_LAYER]]) >= sizeof m.layer) {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: target, model or layer id too long", path, lineno);
      break;
    }
    strcpy(m.target, tg), strcpy(m.model, fld[col[C_MODEL]]), strcpy(m.layer, fld[col[C_LAYER]]);
    const char *op = fld[col[C_OP]];
    m.kop = strcmp(op, "model") ? nas_kop_from_name(op) : -1;
    if (m.kop < 0 && strcmp(op, "model")) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'op': unknown op '%s'", path, lineno, op); break; }
    double x;
    if (num(fld[col[C_MACS]], &x) || x < 0 || x > 9e18) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'macs': expected a number in 0..9e18", path, lineno); break; }
    m.macs = (long long)x;
    if (m.kop >= 0) {
      const int ic[4] = {C_IN, C_OUT, C_CIN, C_COUT};
      const double top[4] = {9e18, 9e18, INT_MAX, INT_MAX}; /* so the conversions below are defined */
      double vals[4];
      for (int j = 0; j < 4 && !rc; j++)
        if (num(fld[col[ic[j]]], &vals[j]) || vals[j] < 0 || vals[j] > top[j])
          rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column '%s': expected a number in 0..%.0f", path, lineno, COLS[ic[j]], top[j]);
      if (rc) break;
      m.in_bytes = (long long)vals[0], m.out_bytes = (long long)vals[1];
      m.cin = (int)vals[2], m.cout = (int)vals[3];
      const char *k = fld[col[C_K]];
      int a = 0, b = 0;
      char tail;
      if (sscanf(k, "%dx%d%c", &a, &b, &tail) == 2) {
      } else if (sscanf(k, "%d%c", &a, &tail) == 1) b = a;
      else a = 0;
      if (a < 1 || b < 1) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'k': expected K or KHxKW", path, lineno); break; }
      m.kh = a, m.kw = b;
    }
    const char *cy = fld[col[C_CYC]], *ms = fld[col[C_MS]];
    if (!*cy && !*ms) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: give 'cycles' or 'ms'", path, lineno); break; }
    if (*cy) { /* cycles win when both are given (ms then only informs) */
      if (num(cy, &m.cycles) || m.cycles < 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'cycles': expected a number >= 0", path, lineno); break; }
      if (*ms && (num(ms, &x) || x < 0)) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'ms': expected a number >= 0", path, lineno); break; }
    } else {
      if (num(ms, &x) || x < 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'ms': expected a number >= 0", path, lineno); break; }
      if (!(clock_mhz > 0)) { rc = nas_errf(e, NAS_EINVAL, "%s:%d: 'ms' needs the target's clock", path, lineno); break; }
      m.cycles = x * clock_mhz * 1e3;
      if (!isfinite(m.cycles)) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'ms': %g ms is too large", path, lineno, x); break; }
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 32;
      nas_meas *nv = nas_realloc(v, (size_t)cap * sizeof *nv);
      if (!nv) { rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path); break; }
      v = nv;
    }
    v[(*n)++] = m;
  }
  fclose(f);
  if (!rc && !have_header) rc = nas_errf(e, NAS_EFORMAT, "%s: no header line", path);
  if (rc) { free(v); *n = 0; return rc; }
  *rows = v;
  return NAS_OK;
}

/* ---- least squares ------------------------------------------------------------------------ */

int nas_lstsq(const double *A, const double *b, int m, int n, double *x, nas_err *e) {
  if (n < 1 || n > 16) return nas_errf(e, NAS_EINVAL, "least squares: %d unknowns (1..16)", n);
  if (m < n) return nas_errf(e, NAS_EINVAL, "least squares: %d measurements for %d unknowns", m, n);
  double sc[16], G[16 * 16], r[16];
  /* column scaling to unit RMS keeps A'A well conditioned when features differ by 1e6 */
  for (int j = 0; j < n; j++) {
    double s = 0;
    for (int i = 0; i < m; i++) s += A[i * n + j] * A[i * n + j];
    if (s == 0) return nas_errf(e, NAS_EINVAL, "least squares: feature %d is zero in every row", j);
    sc[j] = 1 / sqrt(s / m);
  }
  for (int j = 0; j < n; j++) {
    r[j] = 0;
    for (int i = 0; i < m; i++) r[j] += A[i * n + j] * sc[j] * b[i];
    for (int k = 0; k <= j; k++) {
      double s = 0;
      for (int i = 0; i < m; i++) s += A[i * n + j] * A[i * n + k];
      G[j * n + k] = G[k * n + j] = s * sc[j] * sc[k];
    }
  }
  /* Cholesky G = L L' in place (lower) */
  for (int j = 0; j < n; j++) {
    double d = G[j * n + j];
    for (int k = 0; k < j; k++) d -= G[j * n + k] * G[j * n + k];
    if (d <= 1e-12 * m)
      return nas_errf(e, NAS_EINVAL, "least squares: features are collinear (pivot %d)", j);
    G[j * n + j] = sqrt(d);
    for (int i = j + 1; i < n; i++) {
      double s = G[i * n + j];
      for (int k = 0; k < j; k++) s -= G[i * n + k] * G[j * n + k];
      G[i * n + j] = s / G[j * n + j];
    }
  }
  for (int i = 0; i < n; i++) { /* L y = r */
    double s = r[i];
    for (int k = 0; k < i; k++) s -= G[i * n + k] * r[k];
    r[i] = s / G[i * n + i];
  }
  for (int i = n - 1; i >= 0; i--) { /* L' z = y */
    double s = r[i];
    for (int k = i + 1; k < n; k++) s -= G[k * n + i] * r[k];
    r[i] = s / G[i * n + i];
  }
  for (int j = 0; j < n; j++) x[j] = r[j] * sc[j];
  return NAS_OK;
}

/* ---- fitting ----------------------------------------------------------------------------- */

static unsigned default_mask(int kop) {
  switch (kop) {
    case NAS_KOP_CONV: return 1u << NAS_LF_OPS | 1u << NAS_LF_OPS_UNALIGNED;
    default: return 1u << NAS_LF_OPS;
  }
}

static void meas_call(const nas_meas *m, nas_kcall *c) {
  memset(c, 0, sizeof *c);
  c->kop = m->kop, c->ops = m->macs, c->in_bytes = m->in_bytes, c->out_bytes = m->out_bytes;
  c->kh = m->kh, c->kw = m->kw, c->in_c = m->cin, c->out_c = m->cout;
}

const char *nas_fit_status_name(int st) {
  static const char *const N[] = {"no rows", "too few rows", "fitted", "exact"};
  return st >= 0 && st <= NAS_FIT_EXACT ? N[st] : "?";
}

/* In-sample errors of the fitted target over every layer row and every model. */
static int fit_errors(const nas_target *t, const nas_meas *rows, int n, nas_fit_report *R,
                      nas_err *e) {
  double *pred = nas_calloc((size_t)n + 1, sizeof *pred);
  char (*names)[48] = nas_malloc(sizeof *names * ((size_t)n + 1));
  double *ps = nas_calloc((size_t)n + 1, sizeof *ps), *ms = nas_calloc((size_t)n + 1, sizeof *ms);
  if (!pred || !names || !ps || !ms) {
    free(pred), free(names), free(ps), free(ms);
    return nas_errf(e, NAS_ENOMEM, "target %s: fit: out of memory", t->id);
  }
  int cnt = 0, nm = 0;
  for (int i = 0; i < n; i++) {
    if (rows[i].kop < 0 || rows[i].cycles <= 0) continue;
    nas_kcall c;
    int src;
    nas_err ignore = {0};
    meas_call(&rows[i], &c);
    c.macs = rows[i].kop == NAS_KOP_POOL || rows[i].kop == NAS_KOP_GAP || rows[i].kop == NAS_KOP_ADD ? 0 : rows[i].macs;
    if (nas_kcall_cycles(t, &c, &pred[i], &src, &ignore)) {
      R->n_layer_unpriced++;
      pred[i] = NAN;
      continue;
    }
    double ape = fabs(pred[i] - rows[i].cycles) / rows[i].cycles;
    R->layer_mape += ape, cnt++;
    if (ape > R->layer_max_ape) R->layer_max_ape = ape;
  }
  if (cnt) R->layer_mape /= cnt;
  /* whole models: the sum of their predicted layer rows against their measured total (the
     "model" row, else the sum of their measured layer rows) */
  for (int i = 0; i < n; i++) {
    if (rows[i].kop < 0) continue;
    int j = 0;
    while (j < nm && strcmp(names[j], rows[i].model)) j++;
    if (j == nm) strcpy(names[nm], rows[i].model), ps[nm] = 0, ms[nm] = 0, nm++;
    ps[j] += pred[i], ms[j] += rows[i].cycles;
  }
  for (int j = 0; j < nm; j++) {
    double meas = ms[j];
    for (int i = 0; i < n; i++)
      if (rows[i].kop < 0 && !strcmp(rows[i].model, names[j])) meas = rows[i].cycles;
    if (!(meas > 0) || isnan(ps[j])) continue;
    if (t->model == NAS_LAT_LINEAR) ps[j] += t->fixed_cycles;
    double ape = fabs(ps[j] - meas) / meas;
    R->whole_mape += ape, R->n_whole++;
    if (ape > R->whole_max_ape) R->whole_max_ape = ape;
  }
  if (R->n_whole) R->whole_mape /= R->n_whole;
  free(pred), free(names), free(ps), free(ms);
  return NAS_OK;
}

char *nas_fit_report_text(const nas_fit_report *r) {
  size_t cap = 4096, len = 0;
  char *s = nas_malloc(cap);
  if (!s) return NULL;
#define OUT(...) (len += (size_t)snprintf(s + len, len < cap ? cap - len : 0, __VA_ARGS__))
  OUT("linear model: %s from %d model total%s", r->n_models ? "fitted" : "NOT fitted", r->n_models,
      r->n_models == 1 ? "" : "s");
  if (r->linear_exact) OUT(" (as many models as unknowns: exact by construction, its error says nothing)");
  OUT("; in-sample error mean %.2f%% max %.2f%%\n", 100 * r->model_mape, 100 * r->model_max_ape);
  for (int k = 0; k < NAS_KOP_COUNT; k++) {
    if (!r->rows[k]) continue;
    OUT("  %-7s %4d rows, %d features: %s%s\n", nas_kop_name(k), r->rows[k], r->nfeat[k],
        nas_fit_status_name(r->status[k]),
        r->status[k] == NAS_FIT_EXACT ? " (as many rows as unknowns: its error says nothing)"
        : r->status[k] == NAS_FIT_TOO_FEW ? " - NOT fitted, keeps its previous coefficients" : "");
  }
  OUT("ops without rows keep their previous coefficients (not fitted, not marked calibrated)\n");
  OUT("in-sample error over all %d layer rows (fitted or not): mean %.2f%% max %.2f%%", r->n_rows - r->n_layer_unpriced,
      100 * r->layer_mape, 100 * r->layer_max_ape);
  if (r->n_layer_unpriced) OUT(" (%d rows the target cannot price)", r->n_layer_unpriced);
  OUT("\nwhole models (predicted layer rows against the measured total, operators without rows "
      "included): %d, mean %.2f%% max %.2f%%\n", r->n_whole, 100 * r->whole_mape, 100 * r->whole_max_ape);
#undef OUT
  if (len >= cap) s[cap - 1] = '\0';
  return s;
}

int nas_fit_target(nas_target *t, const nas_meas *rows, int n, const nas_fit_opts *o,
                   nas_fit_report *rep, nas_err *e) {
  nas_fit_report R = {0};
  nas_fit_opts O = {0};
  if (o) O = *o;
  double *A = nas_malloc(sizeof(double) * (size_t)(n + 1) * NAS_LF_COUNT);
  double *b = nas_malloc(sizeof(double) * (size_t)(n + 1) * 2);
  double *mm = b ? b + n + 1 : NULL;
  int nm = 0, rc = NAS_OK;
  if (!A || !b) { free(A), free(b); return nas_errf(e, NAS_ENOMEM, "target %s: fit: out of memory", t->id); }
  double coef[NAS_KOP_COUNT][NAS_LF_COUNT] = {{0}};
  int has[NAS_KOP_COUNT] = {0};
  /* per-layer: one least-squares problem per op */
  for (int k = 0; k < NAS_KOP_COUNT; k++) {
    unsigned mask = O.feat_mask[k] ? O.feat_mask[k] : default_mask(k);
    int fi[NAS_LF_COUNT], nf = 0, m = 0;
    for (int f = 0; f < NAS_LF_COUNT; f++)
      if (mask >> f & 1) fi[nf++] = f;
    for (int i = 0; i < n; i++) {
      if (rows[i].kop != k) continue;
      nas_kcall c;
      double feat[NAS_LF_COUNT];
      meas_call(&rows[i], &c);
      nas_kcall_features(&c, feat);
      for (int j = 0; j < nf; j++) A[m * nf + j] = feat[fi[j]];
      b[m++] = rows[i].cycles;
    }
    R.n_rows += m, R.rows[k] = m;
    if (m == 0) continue; /* NAS_FIT_NO_ROWS */
    /* drop features that are zero in every row (e.g. ops_unaligned when all are aligned) */
    int keep[NAS_LF_COUNT], nk = 0;
    for (int j = 0; j < nf; j++) {
      int nz = 0;
      for (int i = 0; i < m; i++) nz |= A[i * nf + j] != 0;
      if (nz) keep[nk++] = j;
    }
    R.nfeat[k] = nk;
    if (nk == 0 || m < nk) {
      R.status[k] = NAS_FIT_TOO_FEW;
      continue;
    }
    double *A2 = nas_malloc(sizeof(double) * (size_t)m * nk), x[NAS_LF_COUNT];
    if (!A2) { rc = nas_errf(e, NAS_ENOMEM, "target %s: fit: out of memory", t->id); goto done; }
    for (int i = 0; i < m; i++)
      for (int j = 0; j < nk; j++) A2[i * nk + j] = A[i * nf + keep[j]];
    rc = nas_lstsq(A2, b, m, nk, x, e);
    free(A2);
    if (rc) { nas_err_prefix(e, "target %s: op %s", t->id, nas_kop_name(k)); goto done; }
    for (int j = 0; j < nk; j++) coef[k][fi[keep[j]]] = x[j];
    has[k] = 1, R.fitted[k] = m;
    R.status[k] = m == nk ? NAS_FIT_EXACT : NAS_FIT_OK;
  }
  /* linear: model totals (op "model" rows, else per-model sums of layer rows) */
  char (*names)[48] = nas_malloc(sizeof *names * (size_t)(n + 1));
  if (!names) { rc = nas_errf(e, NAS_ENOMEM, "target %s: fit: out of memory", t->id); goto done; }
  for (int pass = 0; pass < 2 && nm == 0; pass++)
    for (int i = 0; i < n; i++) {
      if ((pass == 0) != (rows[i].kop < 0)) continue;
      int j = 0;
      while (j < nm && strcmp(names[j], rows[i].model)) j++;
      if (j == nm) strcpy(names[nm], rows[i].model), mm[nm] = 0, b[nm] = 0, nm++;
      mm[j] += (double)(rows[i].kop == NAS_KOP_POOL || rows[i].kop == NAS_KOP_GAP ||
                        rows[i].kop == NAS_KOP_ADD ? 0 : rows[i].macs);
      b[j] += rows[i].cycles;
    }
  free(names);
  R.n_models = nm;
  double a = t->cycles_per_mac, f0 = t->fixed_cycles;
  if (nm >= 2 && O.fit_fixed) {
    for (int i = 0; i < nm; i++) A[i * 2] = mm[i], A[i * 2 + 1] = 1;
    double x[2];
    if ((rc = nas_lstsq(A, b, nm, 2, x, e))) { nas_err_prefix(e, "target %s: linear", t->id); goto done; }
    a = x[0], f0 = x[1];
    R.linear_exact = nm == 2;
  } else if (nm >= 1) {
    if ((rc = nas_lstsq(mm, b, nm, 1, &a, e))) { nas_err_prefix(e, "target %s: linear", t->id); goto done; }
    f0 = 0;
    R.linear_exact = nm == 1;
  }
  /* commit, mark what was fitted, and report in-sample errors over everything */
  t->cycles_per_mac = a, t->fixed_cycles = f0;
  if (nm >= 1) t->calibrated_linear = 1;
  for (int k = 0; k < NAS_KOP_COUNT; k++)
    if (has[k]) {
      t->has_coef[k] = 1, t->calibrated_op[k] = 1;
      memcpy(t->coef[k], coef[k], sizeof coef[k]);
    }
  /* with per-layer coefficients the target prices per layer (ops without any: the linear
     stand-in); it is calibrated only when everything it prices with was fitted on this part,
     and every op that has rows here was fitted */
  int any = 0, all = t->calibrated_linear;
  for (int k = 0; k < NAS_KOP_COUNT; k++) {
    any |= t->has_coef[k];
    all &= (!t->has_coef[k] || t->calibrated_op[k]) && (!R.rows[k] || R.status[k] >= NAS_FIT_OK);
  }
  if (any && t->model == NAS_LAT_LINEAR) t->model = NAS_LAT_PERLAYER, t->missing_linear = 1;
  t->calibrated = all;
  for (int i = 0; i < nm; i++) {
    if (b[i] <= 0) continue;
    double ape = fabs(a * mm[i] + f0 - b[i]) / b[i];
    R.model_mape += ape / nm;
    if (ape > R.model_max_ape) R.model_max_ape = ape;
  }
  rc = fit_errors(t, rows, n, &R, e);
done:
  free(A), free(b);
  if (rep) *rep = R;
  return rc;
}

int nas_fit_target_file(const char *target_path, const char *csv_path, const char *out_path,
                        const nas_fit_opts *o, nas_fit_report *rep, nas_err *e) {
  nas_target *t;
  int rc = nas_target_load(target_path, &t, e);
  if (rc) return rc;
  nas_meas *rows = NULL;
  int n = 0;
  rc = nas_meas_read_csv(csv_path, t->id, t->clock_mhz, &rows, &n, e);
  if (!rc && n == 0) rc = nas_errf(e, NAS_EINVAL, "%s: no rows for target '%s'", csv_path, t->id);
  nas_fit_report own;
  if (!rep) rep = &own;
  if (!rc) rc = nas_fit_target(t, rows, n, o, rep, e);
  if (!rc) {
    /* what was fitted and what was not, in the target's own words */
    const nas_fit_report *R = rep;
    char fitted[200] = "", notf[240] = "";
    for (int k = 0; k < NAS_KOP_COUNT; k++) {
      char *d = R->status[k] >= NAS_FIT_OK ? fitted : notf;
      size_t cap = R->status[k] >= NAS_FIT_OK ? sizeof fitted : sizeof notf, l = strlen(d);
      if (R->status[k] == NAS_FIT_NO_ROWS && !t->has_coef[k]) continue;
      snprintf(d + l, cap - l, "%s%s (%d rows%s)", l ? ", " : "", nas_kop_name(k), R->rows[k],
               R->status[k] == NAS_FIT_EXACT ? ", exact by construction"
               : R->status[k] == NAS_FIT_TOO_FEW ? ", fewer than its features"
               : R->status[k] == NAS_FIT_NO_ROWS ? ", kept its previous coefficients" : "");
    }
    snprintf(t->calibration, sizeof t->calibration,
             "nas latency fit on %.80s (%d rows, %d models): linear %s; per-layer fitted: %.120s; "
             "not fitted: %.120s; in-sample error: layer rows mean %.1f%%, whole models %.1f%%",
             csv_path, n, R->n_models, R->n_models == 0 ? "not fitted" : R->linear_exact ? "exact by construction" : "fitted",
             fitted[0] ? fitted : "none", notf[0] ? notf : "none", 100 * R->layer_mape, 100 * R->whole_mape);
    char *s = nas_target_to_json(t);
    FILE *f = s ? fopen(out_path, "w") : NULL;
    if (!s) rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory writing the target JSON", out_path);
    else if (!f) rc = nas_errf(e, NAS_EIO, "%s: cannot write", out_path);
    else {
      if (fputs(s, f) < 0 || fputc('\n', f) < 0) rc = nas_errf(e, NAS_EIO, "%s: write failed", out_path);
      if (fclose(f)) rc = nas_errf(e, NAS_EIO, "%s: write failed", out_path);
    }
    free(s);
  }
  free(rows);
  nas_target_free(t);
  return rc;
}
