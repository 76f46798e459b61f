/* opt/gp.c: Matern 5/2 ARD Gaussian process: kernel, log marginal likelihood and its
 * gradient, projected L-BFGS over log hyper-parameters with restarts, posterior. */
#include "opt/gp.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/alloc.h"

/* LAPACK on one thread: the matrices here are small (n up to a few hundred) and OpenBLAS's
 * OpenMP build takes its thread count from the caller's omp_get_max_threads(), so the public
 * entry points set the calling thread's OpenMP thread count to 1 and restore it (a per-thread
 * setting; no process state changes). Measured on the 2-core test machine under load: dpotrf
 * at n = 120 took 700 ms with 2 threads and 0.04 ms with 1; dpotri at n = 30, 190 ms vs 0.004. */
#define ONE_THREAD_BEGIN int saved_threads_ = omp_get_max_threads(); omp_set_num_threads(1)
#define ONE_THREAD_END omp_set_num_threads(saved_threads_)

#define SQRT5 2.23606797749978969641
#define LOG_2PI 1.83787706640934548356

struct nas_gp {
  int n, d;         /* observations, input dimensions */
  double *X;        /* [n, d] inputs (copy) */
  double *L;        /* [n, n] column-major lower Cholesky factor of K */
  double *alpha;    /* [n] K^-1 (y - mean) / scale */
  double *theta;    /* [d + 2] hyper-parameters (gp.h) */
  double mean;      /* prior mean of y */
  double scale;     /* output scale of y */
  double lml;       /* LML of the standardised targets at theta */
};

void nas_gp_fit_opts_default(nas_gp_fit_opts *o) {
  o->restarts = 5;
  o->max_iter = 80;
  o->ls_min = 0.01, o->ls_max = 20.0;
  o->sf2_min = 0.05, o->sf2_max = 20.0;
  o->sn2_min = 1e-6, o->sn2_max = 1.0;
}

/* Squared scaled distance r^2 between a and b with inverse squared length scales il2[d]. */
static double dist2(const double *a, const double *b, int d, const double *il2) {
  double s = 0;
  for (int i = 0; i < d; i++) {
    double t = a[i] - b[i];
    s += t * t * il2[i];
  }
  return s;
}

static double matern(double r2, double sf2) {
  double r = sqrt(r2);
  return sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * exp(-SQRT5 * r);
}

static int bad_dims(int n, int d, nas_err *e) {
  return nas_errf(e, NAS_EINVAL, "gp: need n >= 1 and d >= 1 (n %d, d %d)", n, d);
}

static void inv_l2(const double *theta, int d, double *il2) {
  for (int i = 0; i < d; i++) il2[i] = exp(-2.0 * theta[i]);
}

double nas_gp_kernel(const double *a, const double *b, int d, const double *theta) {
  double r2 = 0;
  for (int i = 0; i < d; i++) {
    double t = (a[i] - b[i]) / exp(theta[i]);
    r2 += t * t;
  }
  return matern(r2, exp(theta[d]));
}

/* K = k(X, X) + sn2 I into the lower triangle (and the upper, mirrored) of Kout[n, n]. */
static void gram(const double *X, int n, int d, const double *theta, const double *il2,
                 double *K) {
  double sf2 = exp(theta[d]), sn2 = exp(theta[d + 1]);
  for (int j = 0; j < n; j++) {
    K[j + (size_t)j * n] = sf2 + sn2;
    for (int i = j + 1; i < n; i++) {
      double v = matern(dist2(X + (size_t)i * d, X + (size_t)j * d, d, il2), sf2);
      K[i + (size_t)j * n] = v;
      K[j + (size_t)i * n] = v;
    }
  }
}

/* Cholesky of K in place (lower); NAS_ENUMERIC when not positive definite. */
static int cholesky(double *K, int n, nas_err *e) {
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, K, n);
  if (info != 0)
    return nas_errf(e, NAS_ENUMERIC, "gp: kernel matrix not positive definite (dpotrf info %d)",
                    (int)info);
  return NAS_OK;
}

static int gp_lml_impl(const double *X, const double *y, int n, int d, const double *theta,
                       double *lml, double *grad, nas_err *e) {
  if (n < 1 || d < 1) return bad_dims(n, d, e);
  for (int i = 0; i < d + 2; i++)
    if (!isfinite(theta[i])) return nas_errf(e, NAS_EINVAL, "gp: theta[%d] is not finite", i);
  size_t nn = (size_t)n * n;
  double *L = nas_malloc(nn * sizeof *L), *alpha = nas_malloc((size_t)n * sizeof *alpha);
  double *il2 = nas_malloc((size_t)d * sizeof *il2);
  double *W = grad ? nas_malloc(nn * sizeof *W) : NULL;
  int rc = NAS_OK;
  if (!L || !alpha || !il2 || (grad && !W)) {
    rc = nas_errf(e, NAS_ENOMEM, "gp: out of memory (n %d)", n);
    goto out;
  }
  inv_l2(theta, d, il2);
  gram(X, n, d, theta, il2, L);
  if ((rc = cholesky(L, n, e)) != NAS_OK) goto out;
  memcpy(alpha, y, (size_t)n * sizeof *alpha);
  lapack_int info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', n, 1, L, n, alpha, n);
  if (info != 0) {
    rc = nas_errf(e, NAS_ENUMERIC, "gp: dpotrs failed (info %d)", (int)info);
    goto out;
  }
  double fit = 0, logdet = 0;
  for (int i = 0; i < n; i++) fit += y[i] * alpha[i], logdet += log(L[i + (size_t)i * n]);
  *lml = -0.5 * fit - logdet - 0.5 * n * LOG_2PI;
  if (!grad) goto out;
  /* W = alpha alpha^T - K^-1; dLML/dtheta_j = 0.5 sum_ab W_ab dK_ab/dtheta_j. */
  memcpy(W, L, nn * sizeof *W);
  info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', n, W, n);
  if (info != 0) {
    rc = nas_errf(e, NAS_ENUMERIC, "gp: dpotri failed (info %d)", (int)info);
    goto out;
  }
  for (int j = 0; j < n; j++)
    for (int i = j; i < n; i++) W[i + (size_t)j * n] = alpha[i] * alpha[j] - W[i + (size_t)j * n];
  double sf2 = exp(theta[d]), sn2 = exp(theta[d + 1]);
  for (int k = 0; k < d + 2; k++) grad[k] = 0;
  double trw = 0;
  for (int j = 0; j < n; j++) {
    double wjj = W[j + (size_t)j * n];
    trw += wjj;
    grad[d] += 0.5 * wjj * sf2; /* diagonal of dK/dlog sf2 */
    const double *xj = X + (size_t)j * d;
    for (int i = j + 1; i < n; i++) {
      double w = W[i + (size_t)j * n]; /* counted twice: (i, j) and (j, i) */
      const double *xi = X + (size_t)i * d;
      double r2 = dist2(xi, xj, d, il2), r = sqrt(r2), ex = exp(-SQRT5 * r);
      grad[d] += w * sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * ex;
      /* dk/dlog l_k = sf2 (5/3) (1 + sqrt5 r) exp(-sqrt5 r) (xi_k - xj_k)^2 / l_k^2 */
      double c = w * sf2 * (5.0 / 3.0) * (1.0 + SQRT5 * r) * ex;
      for (int k = 0; k < d; k++) {
        double t = xi[k] - xj[k];
        grad[k] += c * t * t * il2[k];
      }
    }
  }
  grad[d + 1] = 0.5 * sn2 * trw;
out:
  free(L);
  free(alpha);
  free(il2);
  free(W);
  return rc;
}

/* ---- hyper-parameter fit: projected L-BFGS on f = -LML ---------------------------------- */

#define LBFGS_M 6

typedef struct fit_ctx {
  const double *X, *y;
  int n, d;
  const double *lo, *hi; /* [d + 2] bounds on theta */
  int evals;             /* LML evaluations so far */
} fit_ctx;

/* f = -LML and its gradient; INFINITY when K is not positive definite. Other errors (out of
 * memory) are returned through *rc. */
static double objective(fit_ctx *c, const double *th, double *g, int *rc, nas_err *e) {
  double lml;
  c->evals++;
  nas_err tmp = {0};
  int s = gp_lml_impl(c->X, c->y, c->n, c->d, th, &lml, g, &tmp);
  if (s == NAS_ENUMERIC || (s == NAS_OK && !isfinite(lml))) return INFINITY;
  if (s != NAS_OK) {
    *rc = s;
    if (e) *e = tmp;
    return INFINITY;
  }
  for (int i = 0; i < c->d + 2; i++) g[i] = -g[i];
  return -lml;
}

static double dot(const double *a, const double *b, int p) {
  double s = 0;
  for (int i = 0; i < p; i++) s += a[i] * b[i];
  return s;
}

/* Minimises the objective from th (in place, within the bounds) for at most max_iter
 * iterations; *fbest receives the final value (INFINITY when the start is infeasible). */
static int lbfgs(fit_ctx *c, double *th, int max_iter, double *fbest, nas_err *e) {
  int p = c->d + 2, rc = NAS_OK;
  double *buf = nas_calloc((size_t)p * (2 * LBFGS_M + 5), sizeof *buf);
  if (!buf) return nas_errf(e, NAS_ENOMEM, "gp: out of memory (fit)");
  double *S = buf, *Y = S + (size_t)p * LBFGS_M, *g = Y + (size_t)p * LBFGS_M;
  double *gn = g + p, *xn = gn + p, *dir = xn + p, *q = dir + p;
  double rho[LBFGS_M], a[LBFGS_M];
  int mem = 0, head = 0;
  double f = objective(c, th, g, &rc, e);
  for (int it = 0; it < max_iter && isfinite(f) && rc == NAS_OK; it++) {
    /* two-loop recursion: dir = -H g */
    memcpy(q, g, (size_t)p * sizeof *q);
    for (int k = 0; k < mem; k++) {
      int idx = (head - 1 - k + LBFGS_M) % LBFGS_M;
      a[idx] = rho[idx] * dot(S + (size_t)idx * p, q, p);
      for (int i = 0; i < p; i++) q[i] -= a[idx] * Y[(size_t)idx * p + i];
    }
    double gamma = 1.0;
    if (mem > 0) {
      int last = (head - 1 + LBFGS_M) % LBFGS_M;
      gamma = dot(S + (size_t)last * p, Y + (size_t)last * p, p) /
              dot(Y + (size_t)last * p, Y + (size_t)last * p, p);
    }
    for (int i = 0; i < p; i++) q[i] *= gamma;
    for (int k = mem - 1; k >= 0; k--) {
      int idx = (head - 1 - k + LBFGS_M) % LBFGS_M;
      double b = rho[idx] * dot(Y + (size_t)idx * p, q, p);
      for (int i = 0; i < p; i++) q[i] += (a[idx] - b) * S[(size_t)idx * p + i];
    }
    for (int i = 0; i < p; i++) dir[i] = -q[i];
    /* variables at a bound that the direction pushes outward stay there */
    for (int i = 0; i < p; i++)
      if ((th[i] <= c->lo[i] && dir[i] < 0) || (th[i] >= c->hi[i] && dir[i] > 0)) dir[i] = 0;
    if (dot(dir, g, p) >= 0) { /* not a descent direction: steepest descent, forget memory */
      mem = 0, head = 0;
      for (int i = 0; i < p; i++) {
        dir[i] = -g[i];
        if ((th[i] <= c->lo[i] && dir[i] < 0) || (th[i] >= c->hi[i] && dir[i] > 0)) dir[i] = 0;
      }
      if (dot(dir, dir, p) < 1e-20) break; /* stationary within the box */
    }
    double t = 1.0;
    if (mem == 0) {
      double nd = sqrt(dot(dir, dir, p));
      if (nd > 1.0) t = 1.0 / nd;
    }
    double fn = INFINITY;
    int ok = 0;
    for (int ls = 0; ls < 30; ls++, t *= 0.5) {
      for (int i = 0; i < p; i++) {
        double v = th[i] + t * dir[i];
        xn[i] = v < c->lo[i] ? c->lo[i] : v > c->hi[i] ? c->hi[i] : v;
      }
      double dec = 0;
      for (int i = 0; i < p; i++) dec += g[i] * (xn[i] - th[i]);
      fn = objective(c, xn, gn, &rc, e);
      if (rc != NAS_OK) break;
      if (isfinite(fn) && fn <= f + 1e-4 * dec) {
        ok = 1;
        break;
      }
    }
    if (!ok) break;
    double *s = S + (size_t)head * p, *yv = Y + (size_t)head * p;
    for (int i = 0; i < p; i++) s[i] = xn[i] - th[i], yv[i] = gn[i] - g[i];
    double sy = dot(s, yv, p);
    if (sy > 1e-12) {
      rho[head] = 1.0 / sy;
      head = (head + 1) % LBFGS_M;
      if (mem < LBFGS_M) mem++;
    }
    double df = f - fn;
    memcpy(th, xn, (size_t)p * sizeof *th);
    memcpy(g, gn, (size_t)p * sizeof *g);
    f = fn;
    if (df < 1e-10 * (1.0 + fabs(f))) break;
  }
  *fbest = f;
  free(buf);
  return rc;
}

static int gp_build_impl(const double *X, const double *y, int n, int d, const double *theta,
                         double mean, double scale, nas_gp **out, nas_err *e) {
  *out = NULL;
  if (n < 1 || d < 1) return bad_dims(n, d, e);
  if (!(scale > 0) || !isfinite(scale) || !isfinite(mean))
    return nas_errf(e, NAS_EINVAL, "gp: output scale must be finite and > 0 (got %g)", scale);
  for (int i = 0; i < n; i++)
    if (!isfinite(y[i])) return nas_errf(e, NAS_EINVAL, "gp: target %d is not finite", i);
  nas_gp *g = nas_calloc(1, sizeof *g);
  if (!g) return nas_errf(e, NAS_ENOMEM, "gp: out of memory");
  g->n = n, g->d = d, g->mean = mean, g->scale = scale;
  g->X = nas_malloc((size_t)n * d * sizeof *g->X);
  g->L = nas_malloc((size_t)n * n * sizeof *g->L);
  g->alpha = nas_malloc((size_t)n * sizeof *g->alpha);
  g->theta = nas_malloc((size_t)(d + 2) * sizeof *g->theta);
  double *il2 = nas_malloc((size_t)d * sizeof *il2);
  int rc = NAS_OK;
  if (!g->X || !g->L || !g->alpha || !g->theta || !il2) {
    rc = nas_errf(e, NAS_ENOMEM, "gp: out of memory (n %d, d %d)", n, d);
    goto out;
  }
  memcpy(g->X, X, (size_t)n * d * sizeof *g->X);
  memcpy(g->theta, theta, (size_t)(d + 2) * sizeof *g->theta);
  for (int i = 0; i < d + 2; i++)
    if (!isfinite(theta[i])) {
      rc = nas_errf(e, NAS_EINVAL, "gp: theta[%d] is not finite", i);
      goto out;
    }
  inv_l2(theta, d, il2);
  gram(X, n, d, theta, il2, g->L);
  if ((rc = cholesky(g->L, n, e)) != NAS_OK) goto out;
  for (int i = 0; i < n; i++) g->alpha[i] = (y[i] - mean) / scale;
  lapack_int info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', n, 1, g->L, n, g->alpha, n);
  if (info != 0) {
    rc = nas_errf(e, NAS_ENUMERIC, "gp: dpotrs failed (info %d)", (int)info);
    goto out;
  }
  double fit = 0, logdet = 0;
  for (int i = 0; i < n; i++) {
    fit += (y[i] - mean) / scale * g->alpha[i];
    logdet += log(g->L[i + (size_t)i * n]);
  }
  g->lml = -0.5 * fit - logdet - 0.5 * n * LOG_2PI;
out:
  free(il2);
  if (rc != NAS_OK) {
    nas_gp_free(g);
    return rc;
  }
  *out = g;
  return NAS_OK;
}

static int gp_fit_impl(const double *X, const double *y, int n, int d,
                       const nas_gp_fit_opts *o, nas_rng *r, nas_gp **out, nas_err *e) {
  *out = NULL;
  nas_gp_fit_opts def;
  if (!o) nas_gp_fit_opts_default(&def), o = &def;
  if (n < 1 || d < 1) return bad_dims(n, d, e);
  if (o->restarts < 1 || o->max_iter < 0 || !(o->ls_min > 0) || o->ls_max < o->ls_min ||
      !(o->sf2_min > 0) || o->sf2_max < o->sf2_min || !(o->sn2_min > 0) || o->sn2_max < o->sn2_min)
    return nas_errf(e, NAS_EINVAL, "gp: fit options out of range (restarts >= 1, 0 < min <= max)");
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(y[i])) return nas_errf(e, NAS_EINVAL, "gp: target %d is not finite", i);
    mean += y[i];
  }
  mean /= n;
  for (int i = 0; i < n; i++) var += (y[i] - mean) * (y[i] - mean);
  double scale = n > 1 ? sqrt(var / (n - 1)) : 0;
  if (!(scale > 1e-12 * (1.0 + fabs(mean)))) scale = 1.0;
  int p = d + 2, rc = NAS_OK;
  double *ys = nas_malloc((size_t)n * sizeof *ys);
  double *buf = nas_malloc((size_t)p * 4 * sizeof *buf);
  if (!ys || !buf) {
    free(ys);
    free(buf);
    return nas_errf(e, NAS_ENOMEM, "gp: out of memory (fit)");
  }
  double *lo = buf, *hi = lo + p, *th = hi + p, *best = th + p;
  for (int i = 0; i < n; i++) ys[i] = (y[i] - mean) / scale;
  for (int i = 0; i < d; i++) lo[i] = log(o->ls_min), hi[i] = log(o->ls_max);
  lo[d] = log(o->sf2_min), hi[d] = log(o->sf2_max);
  lo[d + 1] = log(o->sn2_min), hi[d + 1] = log(o->sn2_max);
  fit_ctx c = {X, ys, n, d, lo, hi, 0};
  double fbest = INFINITY;
  for (int s = 0; s < o->restarts && rc == NAS_OK; s++) {
    for (int i = 0; i < p; i++) {
      double v;
      if (s == 0) v = i < d ? log(0.5) : i == d ? 0.0 : log(1e-2);
      else v = lo[i] + (hi[i] - lo[i]) * nas_rng_uniform(r);
      th[i] = v < lo[i] ? lo[i] : v > hi[i] ? hi[i] : v;
    }
    double f = INFINITY;
    rc = lbfgs(&c, th, o->max_iter, &f, e);
    if (rc == NAS_OK && f < fbest) fbest = f, memcpy(best, th, (size_t)p * sizeof *best);
  }
  if (rc == NAS_OK && !isfinite(fbest))
    rc = nas_errf(e, NAS_ENUMERIC, "gp: no hyper-parameters give a positive definite kernel "
                  "(n %d)", n);
  if (rc == NAS_OK) rc = gp_build_impl(X, y, n, d, best, mean, scale, out, e);
  free(ys);
  free(buf);
  return rc;
}

#define PRED_CHUNK 256

static int gp_predict_impl(const nas_gp *g, const double *Xs, int m, double *mean,
                           double *var, nas_err *e) {
  if (m <= 0) return NAS_OK;
  int n = g->n, d = g->d, chunk = m < PRED_CHUNK ? m : PRED_CHUNK;
  double *B = nas_malloc((size_t)n * chunk * sizeof *B), *il2 = nas_malloc((size_t)d * sizeof *il2);
  if (!B || !il2) {
    free(B);
    free(il2);
    return nas_errf(e, NAS_ENOMEM, "gp: out of memory (predict %d points)", m);
  }
  inv_l2(g->theta, d, il2);
  double sf2 = exp(g->theta[d]);
  int rc = NAS_OK;
  for (int j0 = 0; j0 < m && rc == NAS_OK; j0 += chunk) {
    int mc = m - j0 < chunk ? m - j0 : chunk;
    for (int j = 0; j < mc; j++) {
      const double *xs = Xs + (size_t)(j0 + j) * d;
      double mu = 0;
      for (int i = 0; i < n; i++) {
        double k = matern(dist2(g->X + (size_t)i * d, xs, d, il2), sf2);
        B[i + (size_t)j * n] = k;
        mu += k * g->alpha[i];
      }
      mean[j0 + j] = g->mean + g->scale * mu;
    }
    if (!var) continue;
    lapack_int info = LAPACKE_dtrtrs(LAPACK_COL_MAJOR, 'L', 'N', 'N', n, mc, g->L, n, B, n);
    if (info != 0) {
      rc = nas_errf(e, NAS_ENUMERIC, "gp: dtrtrs failed (info %d)", (int)info);
      break;
    }
    for (int j = 0; j < mc; j++) {
      double v = sf2;
      for (int i = 0; i < n; i++) v -= B[i + (size_t)j * n] * B[i + (size_t)j * n];
      var[j0 + j] = v > 0 ? v * g->scale * g->scale : 0.0;
    }
  }
  free(B);
  free(il2);
  return rc;
}

int nas_gp_lml(const double *X, const double *y, int n, int d, const double *theta,
               double *lml, double *grad, nas_err *e) {
  ONE_THREAD_BEGIN;
  int rc = gp_lml_impl(X, y, n, d, theta, lml, grad, e);
  ONE_THREAD_END;
  return rc;
}

int nas_gp_build(const double *X, const double *y, int n, int d, const double *theta,
                 double mean, double scale, nas_gp **out, nas_err *e) {
  ONE_THREAD_BEGIN;
  int rc = gp_build_impl(X, y, n, d, theta, mean, scale, out, e);
  ONE_THREAD_END;
  return rc;
}

int nas_gp_fit(const double *X, const double *y, int n, int d, const nas_gp_fit_opts *o,
               nas_rng *r, nas_gp **out, nas_err *e) {
  ONE_THREAD_BEGIN;
  int rc = gp_fit_impl(X, y, n, d, o, r, out, e);
  ONE_THREAD_END;
  return rc;
}

int nas_gp_predict(const nas_gp *g, const double *Xs, int m, double *mean, double *var,
                   nas_err *e) {
  ONE_THREAD_BEGIN;
  int rc = gp_predict_impl(g, Xs, m, mean, var, e);
  ONE_THREAD_END;
  return rc;
}

int nas_gp_dim(const nas_gp *g) { return g->d; }
int nas_gp_n(const nas_gp *g) { return g->n; }
const double *nas_gp_theta(const nas_gp *g) { return g->theta; }
double nas_gp_lml_value(const nas_gp *g) { return g->lml; }

void nas_gp_free(nas_gp *g) {
  if (!g) return;
  free(g->X);
  free(g->L);
  free(g->alpha);
  free(g->theta);
  free(g);
}
