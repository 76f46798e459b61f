/* latency/model.c: measurement CSVs, least squares (normal equations + Cholesky, written
 * here because n <= 6 unknowns per op makes LAPACK unnecessary), fitting a target's linear
 * and per-layer models, writing the fitted target JSON. */
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
    if (num(fld[col[C_MACS]], &x) || x < 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'macs': expected a number >= 0", path, lineno); break; }
    m.macs = (long long)x;
    if (m.kop >= 0) {
      const int ic[4] = {C_IN, C_OUT, C_CIN, C_COUT};
      double vals[4];
      for (int j = 0; j < 4 && !rc; j++)
        if (num(fld[col[ic[j]]], &vals[j]) || vals[j] < 0)
          rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column '%s': expected a number >= 0", path, lineno, COLS[ic[j]]);
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
    R.n_rows += m;
    if (m == 0) continue;
    /* drop features that are zero in every row (e.g. ops_unaligned when all are aligned) */
    int keep[NAS_LF_COUNT], nk = 0;
    for (int j = 0; j < nf; j++) {
      int nz = 0;
      for (int i = 0; i < m; i++) nz |= A[i * nf + j] != 0;
      if (nz) keep[nk++] = j;
    }
    if (nk == 0 || m < nk) continue;
    double *A2 = nas_malloc(sizeof(double) * (size_t)m * nk), x[NAS_LF_COUNT];
    if (!A2) { rc = nas_errf(e, NAS_ENOMEM, "target %s: fit: out of memory", t->id); goto done; }
    for (int i = 0; i < m; i++)
      for (int j = 0; j < nk; j++) A2[i * nk + j] = A[i * nf + keep[j]];
    rc = nas_lstsq(A2, b, m, nk, x, e);
    free(A2);
    if (rc) { nas_err_prefix(e, "target %s: op %s", t->id, nas_kop_name(k)); goto done; }
    for (int j = 0; j < nk; j++) coef[k][fi[keep[j]]] = x[j];
    has[k] = 1, R.fitted[k] = m;
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
  } else if (nm >= 1) {
    if ((rc = nas_lstsq(mm, b, nm, 1, &a, e))) { nas_err_prefix(e, "target %s: linear", t->id); goto done; }
    f0 = 0;
  }
  /* commit and report in-sample errors */
  t->cycles_per_mac = a, t->fixed_cycles = f0;
  for (int k = 0; k < NAS_KOP_COUNT; k++)
    if (has[k]) {
      t->has_coef[k] = 1;
      memcpy(t->coef[k], coef[k], sizeof coef[k]);
    }
  int cnt = 0;
  for (int i = 0; i < n; i++) {
    if (rows[i].kop < 0 || !has[rows[i].kop] || rows[i].cycles <= 0) continue;
    nas_kcall c;
    double f[NAS_LF_COUNT], y = 0;
    meas_call(&rows[i], &c);
    nas_kcall_features(&c, f);
    for (int j = 0; j < NAS_LF_COUNT; j++) y += coef[rows[i].kop][j] * f[j];
    double ape = fabs(y - rows[i].cycles) / rows[i].cycles;
    R.layer_mape += ape, cnt++;
    if (ape > R.layer_max_ape) R.layer_max_ape = ape;
  }
  if (cnt) R.layer_mape /= cnt;
  for (int i = 0; i < nm; i++) {
    if (b[i] <= 0) continue;
    double ape = fabs(a * mm[i] + f0 - b[i]) / b[i];
    R.model_mape += ape / nm;
    if (ape > R.model_max_ape) R.model_max_ape = ape;
  }
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
  if (!rc) rc = nas_fit_target(t, rows, n, o, rep, e);
  if (!rc) {
    int any = 0;
    for (int k = 0; k < NAS_KOP_COUNT; k++) any |= t->has_coef[k];
    if (any && t->model == NAS_LAT_LINEAR) t->model = NAS_LAT_PERLAYER, t->missing_linear = 1;
    t->calibrated = 1;
    snprintf(t->calibration, sizeof t->calibration, "fitted by nas_fit_target from %s (%d rows)",
             csv_path, n);
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
