/* latency/tflm_fit.c: fits the TFLM + CMSIS-NN instruction model on the corpus and measures
 * its errors (latency/tflm_fit.h): weighted least squares per core and group by Householder
 * QR, and the per-operator / per-model relative errors of a split. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "latency/tflm_fit.h"

/* Least squares min |A x - b| for A [m x p] row-major (overwritten), b [m] (overwritten).
 * Columns are scaled to unit norm first; a column that is zero, or whose pivot falls below
 * 1e-10 of the largest, is dropped (x = 0) and the rest refitted. x [p]. */
int nas_tflm_lstsq(double *a, double *b, int m, int p, double *x, nas_err *e) {
  if (p < 1 || p > NAS_TFLM_MAXF) return nas_errf(e, NAS_EINVAL, "least squares: %d unknowns (1..%d)", p, NAS_TFLM_MAXF);
  double *qa = nas_malloc(sizeof *qa * (size_t)m * (size_t)p), *qb = nas_malloc(sizeof *qb * (size_t)m);
  double *scale = nas_malloc(sizeof *scale * (size_t)p);
  int *use = nas_malloc(sizeof *use * (size_t)p);
  if (!qa || !qb || !scale || !use) {
    free(qa), free(qb), free(scale), free(use);
    return nas_errf(e, NAS_ENOMEM, "TFLM fit: out of memory (%d x %d)", m, p);
  }
  for (int j = 0; j < p; j++) {
    double s = 0;
    for (int i = 0; i < m; i++) s += a[(size_t)i * p + j] * a[(size_t)i * p + j];
    scale[j] = sqrt(s);
    use[j] = scale[j] > 0;
  }
  for (;;) {
    int q = 0, cols[NAS_TFLM_MAXF];
    for (int j = 0; j < p; j++)
      if (use[j]) cols[q++] = j;
    for (int i = 0; i < m; i++) {
      for (int k = 0; k < q; k++) qa[(size_t)i * q + k] = a[(size_t)i * p + cols[k]] / scale[cols[k]];
      qb[i] = b[i];
    }
    /* Householder QR of qa (m x q), applied to qb. */
    double rmax = 0;
    int drop = -1;
    for (int k = 0; k < q && k < m; k++) {
      double nrm = 0;
      for (int i = k; i < m; i++) nrm += qa[(size_t)i * q + k] * qa[(size_t)i * q + k];
      nrm = sqrt(nrm);
      if (nrm > rmax) rmax = nrm;
      if (nrm <= 1e-10 * (rmax > 0 ? rmax : 1)) {
        drop = cols[k];
        break;
      }
      const double alpha = qa[(size_t)k * q + k] > 0 ? -nrm : nrm;
      qa[(size_t)k * q + k] -= alpha; /* v = column k below the diagonal, v0 = a_kk - alpha */
      const double vtv = -2 * alpha * qa[(size_t)k * q + k];
      for (int j = k + 1; j < q; j++) {
        double d = 0;
        for (int i = k; i < m; i++) d += qa[(size_t)i * q + k] * qa[(size_t)i * q + j];
        d = 2 * d / vtv;
        for (int i = k; i < m; i++) qa[(size_t)i * q + j] -= d * qa[(size_t)i * q + k];
      }
      double d = 0;
      for (int i = k; i < m; i++) d += qa[(size_t)i * q + k] * qb[i];
      d = 2 * d / vtv;
      for (int i = k; i < m; i++) qb[i] -= d * qa[(size_t)i * q + k];
      qa[(size_t)k * q + k] = alpha; /* R's diagonal */
    }
    if (drop < 0 && q > m) drop = cols[q - 1]; /* fewer rows than features */
    if (drop >= 0) {
      use[drop] = 0;
      continue;
    }
    for (int j = 0; j < p; j++) x[j] = 0;
    for (int k = q - 1; k >= 0; k--) {
      double s = qb[k];
      for (int j = k + 1; j < q; j++) s -= qa[(size_t)k * q + j] * x[cols[j]];
      x[cols[k]] = s / qa[(size_t)k * q + k];
    }
    for (int k = 0; k < q; k++) x[cols[k]] /= scale[cols[k]];
    break;
  }
  free(qa), free(qb), free(scale), free(use);
  return NAS_OK;
}

static int in_split(const nas_tflm_corpus_model *x, int split) {
  if (split == NAS_TFLM_EVAL_MLPERF) return x->mlperf;
  if (x->mlperf) return 0;
  return split == NAS_TFLM_EVAL_HELDOUT ? x->heldout : !x->heldout;
}

/* Rows of one core and group in the training split: features (weighted) and targets. */
static int fit_group(const nas_tflm_corpus *c, int core, int grp, nas_tflm_insn_model *mdl,
                     nas_err *e) {
  const int p = nas_tflm_group_nfeat(grp);
  int n = 0, cap = 256, rc = NAS_OK;
  double *a = nas_malloc(sizeof *a * (size_t)cap * (size_t)p), *b = nas_malloc(sizeof *b * (size_t)cap);
  if (!a || !b) rc = nas_errf(e, NAS_ENOMEM, "TFLM fit: out of memory");
  for (int m = 0; !rc && m < c->nmodels; m++) {
    const nas_tflm_corpus_model *x = &c->model[m];
    if (!in_split(x, NAS_TFLM_EVAL_TRAIN)) continue;
    for (int i = 0; !rc && i < x->nops; i++) {
      nas_tflm_op o;
      double f[NAS_TFLM_MAXF];
      if ((rc = nas_tflm_op_describe(&x->graph, i, NAS_TFLM_DSP, &o, e))) break;
      if (nas_tflm_features(&o, f) != grp) continue;
      const double y = c->op[x->first_op[core] + i].insn;
      if (!(y > 0)) continue;
      if (n == cap) {
        cap *= 2;
        double *na = nas_realloc(a, sizeof *a * (size_t)cap * (size_t)p), *nb = na ? nas_realloc(b, sizeof *b * (size_t)cap) : NULL;
        if (na) a = na;
        if (nb) b = nb;
        if (!na || !nb) {
          rc = nas_errf(e, NAS_ENOMEM, "TFLM fit: out of memory");
          break;
        }
      }
      for (int k = 0; k < p; k++) a[(size_t)n * p + k] = f[k] / y;
      b[n++] = 1.0;
    }
  }
  if (!rc && n > 0) {
    rc = nas_tflm_lstsq(a, b, n, p, mdl->coef[core][grp], e);
    mdl->fitted[core][grp] = !rc;
  }
  free(a), free(b);
  return rc;
}

int nas_tflm_fit(const nas_tflm_corpus *c, nas_tflm_insn_model *m, nas_err *e) {
  memset(m, 0, sizeof *m);
  for (int g = 0; g < NAS_TFLM_NGROUP; g++) m->nfeat[g] = nas_tflm_group_nfeat(g);
  for (int core = 0; core < NAS_TFLM_NCORE; core++) {
    for (int g = 0; g < NAS_TFLM_NGROUP; g++) {
      int rc = fit_group(c, core, g, m, e);
      if (rc) return rc;
    }
    /* Interpreter overhead: Invoke - sum of the operators = per_op * nops + per_invoke. */
    double s1 = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int k = 0; k < c->nmodels; k++) {
      const nas_tflm_corpus_model *x = &c->model[k];
      if (!in_split(x, NAS_TFLM_EVAL_TRAIN)) continue;
      double ops = 0;
      for (int i = 0; i < x->nops; i++) ops += c->op[x->first_op[core] + i].insn;
      const double y = x->invoke[core] - ops, n = x->nops;
      s1 += 1, sx += n, sy += y, sxx += n * n, sxy += n * y;
    }
    const double det = s1 * sxx - sx * sx;
    if (!(s1 > 1) || det == 0) return nas_errf(e, NAS_EINVAL, "TFLM fit: too few training models for %s", nas_tflm_core_name(core));
    m->per_op[core] = (s1 * sxy - sx * sy) / det;
    m->per_invoke[core] = (sy - m->per_op[core] * sx) / s1;
  }
  return NAS_OK;
}

/* ---- evaluation ------------------------------------------------------------------------ */

static const char *const optype_names[NAS_TFLM_NOPTYPE] = {"CONV_2D", "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SOFTMAX", "RESHAPE", "QUANTIZE"};

int nas_tflm_path_optype(int path) {
  static const int map[NAS_TFLM_NPATH] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 7, 8};
  return path >= 0 && path < NAS_TFLM_NPATH ? map[path] : -1;
}

const char *nas_tflm_optype_name(int optype) {
  return optype >= 0 && optype < NAS_TFLM_NOPTYPE ? optype_names[optype] : NULL;
}

typedef struct errvec {
  int n, cap;
  double *v;
} errvec;

static int push(errvec *v, double x) {
  if (v->n == v->cap) {
    int nc = v->cap ? 2 * v->cap : 64;
    double *nv = nas_realloc(v->v, sizeof *nv * (size_t)nc);
    if (!nv) return NAS_ENOMEM;
    v->v = nv, v->cap = nc;
  }
  v->v[v->n++] = x;
  return NAS_OK;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median (mean of the two middle values for even n), p95 (nearest rank), max. */
static nas_tflm_err_stats summarise(errvec *v) {
  nas_tflm_err_stats s = {v->n, 0, 0, 0};
  if (!v->n) return s;
  qsort(v->v, (size_t)v->n, sizeof *v->v, cmp_double);
  s.median = v->n % 2 ? v->v[v->n / 2] : 0.5 * (v->v[v->n / 2 - 1] + v->v[v->n / 2]);
  int r = (int)ceil(0.95 * v->n) - 1;
  s.p95 = v->v[r < 0 ? 0 : r];
  s.max = v->v[v->n - 1];
  return s;
}

int nas_tflm_evaluate(const nas_tflm_corpus *c, const nas_tflm_insn_model *m, int split,
                      nas_tflm_eval *ev, nas_err *e) {
  memset(ev, 0, sizeof *ev);
  enum { NC = NAS_TFLM_NCORE + 1, NOP = (NAS_TFLM_NPATH + 1) * NC, NTY = (NAS_TFLM_NOPTYPE + 1) * NC };
  errvec ops[NOP], typ[NTY], mod[NC];
  memset(ops, 0, sizeof ops), memset(typ, 0, sizeof typ), memset(mod, 0, sizeof mod);
  int rc = NAS_OK;
  for (int k = 0; !rc && k < c->nmodels; k++) {
    const nas_tflm_corpus_model *x = &c->model[k];
    if (!in_split(x, split)) continue;
    for (int core = 0; !rc && core < NAS_TFLM_NCORE; core++) {
      nas_tflm_insn_report r;
      if ((rc = nas_tflm_insn(m, &x->graph, core, &r, e))) {
        nas_err_prefix(e, "%s", x->id);
        break;
      }
      for (int i = 0; !rc && i < x->nops; i++) {
        const double y = c->op[x->first_op[core] + i].insn, err = fabs(r.op[i].insn - y) / y;
        const int pth = r.op[i].path, ty = nas_tflm_path_optype(pth);
        if (push(&ops[pth * NC + core], err) || push(&ops[pth * NC + NAS_TFLM_NCORE], err) ||
            push(&ops[NAS_TFLM_NPATH * NC + core], err) ||
            push(&ops[NAS_TFLM_NPATH * NC + NAS_TFLM_NCORE], err) ||
            push(&typ[ty * NC + core], err) || push(&typ[ty * NC + NAS_TFLM_NCORE], err) ||
            push(&typ[NAS_TFLM_NOPTYPE * NC + core], err) ||
            push(&typ[NAS_TFLM_NOPTYPE * NC + NAS_TFLM_NCORE], err))
          rc = nas_errf(e, NAS_ENOMEM, "TFLM evaluation: out of memory");
      }
      const double err = fabs(r.invoke - x->invoke[core]) / x->invoke[core];
      if (!rc && (push(&mod[core], err) || push(&mod[NAS_TFLM_NCORE], err)))
        rc = nas_errf(e, NAS_ENOMEM, "TFLM evaluation: out of memory");
      nas_tflm_insn_report_free(&r);
    }
  }
  for (int core = 0; core < NC; core++) {
    for (int p = 0; p <= NAS_TFLM_NPATH; p++) ev->op[p][core] = summarise(&ops[p * NC + core]);
    for (int t = 0; t <= NAS_TFLM_NOPTYPE; t++) ev->optype[t][core] = summarise(&typ[t * NC + core]);
    ev->model[core] = summarise(&mod[core]);
  }
  for (int k = 0; k < NOP; k++) free(ops[k].v);
  for (int k = 0; k < NTY; k++) free(typ[k].v);
  for (int k = 0; k < NC; k++) free(mod[k].v);
  return rc;
}
