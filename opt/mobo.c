/* opt/mobo.c: simplex weights, Chebyshev scalarisation, acquisition scores, hypervolume. */
#include "opt/mobo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define MAX_OBJ 8

void nas_simplex_weights(nas_rng *r, int k, double *w) {
  double s = 0;
  for (int i = 0; i < k; i++) {
    /* uniform in (0, 1]: 1 - u with u in [0, 1) never takes the log of 0 */
    w[i] = -log(1.0 - (double)nas_rng_uniform(r));
    s += w[i];
  }
  if (!(s > 0)) { /* every draw was exactly 1 - 0: equal weights */
    for (int i = 0; i < k; i++) w[i] = 1.0 / k;
    return;
  }
  for (int i = 0; i < k; i++) w[i] /= s;
}

double nas_chebyshev(const double *f, const double *w, const double *z, int k, double rho) {
  double mx = -INFINITY, sum = 0;
  for (int i = 0; i < k; i++) {
    double t = w[i] * (f[i] - z[i]);
    if (t > mx) mx = t;
    sum += t;
  }
  return mx + rho * sum;
}

int nas_acq_score(const nas_acq *a, const double *mean, const double *var, int m, nas_rng *r,
                  double *score, nas_err *e) {
  if (a->k < 1 || a->k > MAX_OBJ)
    return nas_errf(e, NAS_EINVAL, "acquisition: %d objectives (1..%d)", a->k, MAX_OBJ);
  if (a->kind != NAS_ACQ_UCB && a->kind != NAS_ACQ_EI)
    return nas_errf(e, NAS_EINVAL, "acquisition: unknown kind %d", a->kind);
  if (!(a->rho >= 0) || !(a->beta >= 0))
    return nas_errf(e, NAS_EINVAL, "acquisition: rho and beta must be >= 0");
  int k = a->k;
  double f[MAX_OBJ];
  if (a->kind == NAS_ACQ_UCB) {
    double sb = sqrt(a->beta);
    for (int j = 0; j < m; j++) {
      for (int i = 0; i < k; i++) {
        double v = var[(size_t)j * k + i];
        f[i] = mean[(size_t)j * k + i] - sb * sqrt(v > 0 ? v : 0);
      }
      score[j] = -nas_chebyshev(f, a->w, a->z, k, a->rho);
    }
    return NAS_OK;
  }
  if (a->samples < 1) return nas_errf(e, NAS_EINVAL, "acquisition: EI needs samples >= 1");
  if (!isfinite(a->best)) return nas_errf(e, NAS_EINVAL, "acquisition: EI needs a finite best");
  double *eps = nas_malloc((size_t)a->samples * k * sizeof *eps);
  if (!eps) return nas_errf(e, NAS_ENOMEM, "acquisition: out of memory");
  for (int s = 0; s < a->samples * k; s++) eps[s] = nas_rng_normal(r);
  for (int j = 0; j < m; j++) {
    double acc = 0;
    for (int s = 0; s < a->samples; s++) {
      for (int i = 0; i < k; i++) {
        double v = var[(size_t)j * k + i];
        f[i] = mean[(size_t)j * k + i] + sqrt(v > 0 ? v : 0) * eps[(size_t)s * k + i];
      }
      double imp = a->best - nas_chebyshev(f, a->w, a->z, k, a->rho);
      if (imp > 0) acc += imp;
    }
    score[j] = acc / a->samples;
  }
  free(eps);
  return NAS_OK;
}

/* ---- hypervolume ------------------------------------------------------------------------ */

typedef struct pt2 {
  double x, y;
} pt2;

static int cmp_pt2(const void *a, const void *b) {
  const pt2 *p = a, *q = b;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  return (p->y > q->y) - (p->y < q->y);
}

/* 2-D hypervolume of pts[n] (sorted in place by x) against (rx, ry); all strictly below. */
static double hv2(pt2 *pts, int n, double rx, double ry) {
  qsort(pts, (size_t)n, sizeof *pts, cmp_pt2);
  double hv = 0, ylast = ry;
  for (int i = 0; i < n; i++) {
    if (pts[i].y >= ylast) continue; /* dominated by an earlier point */
    hv += (rx - pts[i].x) * (ylast - pts[i].y);
    ylast = pts[i].y;
  }
  return hv;
}

typedef struct pt3 {
  double v[3];
} pt3;

static int cmp_pt3_z(const void *a, const void *b) {
  const pt3 *p = a, *q = b;
  return (p->v[2] > q->v[2]) - (p->v[2] < q->v[2]);
}

int nas_hypervolume(const double *pts, int n, int k, const double *ref, double *hv, nas_err *e) {
  *hv = 0;
  if (k < 1 || k > 3) return nas_errf(e, NAS_EINVAL, "hypervolume: %d objectives (1..3)", k);
  if (n <= 0) return NAS_OK;
  /* keep the points strictly below ref in every objective */
  pt3 *p = nas_malloc((size_t)n * sizeof *p);
  pt2 *q = nas_malloc((size_t)n * sizeof *q);
  if (!p || !q) {
    free(p);
    free(q);
    return nas_errf(e, NAS_ENOMEM, "hypervolume: out of memory (%d points)", n);
  }
  int c = 0;
  for (int j = 0; j < n; j++) {
    int in = 1;
    for (int i = 0; i < k; i++) {
      double v = pts[(size_t)j * k + i];
      if (!(v < ref[i])) in = 0;
    }
    if (!in) continue;
    for (int i = 0; i < 3; i++) p[c].v[i] = i < k ? pts[(size_t)j * k + i] : 0;
    c++;
  }
  double h = 0;
  if (k == 1) {
    double mn = ref[0];
    for (int j = 0; j < c; j++)
      if (p[j].v[0] < mn) mn = p[j].v[0];
    h = ref[0] - mn;
  } else if (k == 2) {
    for (int j = 0; j < c; j++) q[j].x = p[j].v[0], q[j].y = p[j].v[1];
    h = hv2(q, c, ref[0], ref[1]);
  } else {
    /* slices along z: between consecutive distinct z values the dominated region's cross
     * section is the 2-D hypervolume of the points with z at or below the slice start */
    qsort(p, (size_t)c, sizeof *p, cmp_pt3_z);
    for (int j = 0; j < c; j++) {
      double z0 = p[j].v[2], z1 = j + 1 < c ? p[j + 1].v[2] : ref[2];
      if (z1 <= z0) continue;
      for (int t = 0; t <= j; t++) q[t].x = p[t].v[0], q[t].y = p[t].v[1];
      h += hv2(q, j + 1, ref[0], ref[1]) * (z1 - z0);
    }
  }
  free(p);
  free(q);
  *hv = h;
  return NAS_OK;
}
