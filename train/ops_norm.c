/* train/ops_norm.c: batch normalisation over the last (channel) dimension, with an optional
 * fused activation (p.act: none, relu, relu6), as TFLite fuses activations into kernels.
 * Inputs: x [N,...,C], gamma [C], beta [C], running_mean [C], running_var [C] (state).
 * Training: normalise with the batch mean and biased variance; update the running
 * statistics with momentum (PyTorch: r = (1-m) r + m * batch, variance unbiased).
 * Eval: normalise with the running statistics. Saved: mean, invstd, scale, shift [4C].
 * Batch statistics are accumulated in double in one pass (sum and sum of squares).
 * Scratch: per-thread partial sums [T][2][C] double, their totals [2][C] double, and (backward)
 * two per-channel float coefficients [2][C]. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "train/ops_impl.h"

int batchnorm_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  if (x->shape.nd < 2) return nas_errf(e, NAS_EINVAL, "batchnorm: input needs a channel axis");
  int c = x->shape.d[x->shape.nd - 1];
  for (int i = 1; i < 5; i++) {
    const nas_node *t = op_in(g, nd, i);
    if (t->shape.nd != 1 || t->shape.d[0] != c)
      return nas_errf(e, NAS_EINVAL, "batchnorm: parameter %d must be [%d] for %d channels", i, c,
                      c);
  }
  if (nd->p.act < NAS_ACT_NONE || nd->p.act > NAS_ACT_RELU6)
    return nas_errf(e, NAS_EINVAL, "batchnorm: unknown fused activation %d", nd->p.act);
  if (nd->p.eps <= 0) nd->p.eps = 1e-5f;
  if (nd->p.momentum <= 0) nd->p.momentum = 0.1f;
  nd->shape = x->shape;
  op_like_batch(nd, x);
  nd->saved_bytes = 4 * (size_t)c * sizeof(float);
  nd->scratch_bytes = ((size_t)omp_get_max_threads() + 1) * 2 * (size_t)c * sizeof(double) +
                     2 * (size_t)c * sizeof(float);
  return NAS_OK;
}

/* Rows of the [R,C] view at the current batch. */
static size_t bn_rows(const nas_graph *g, const nas_node *nd, int C) {
  return (size_t)op_batch(g, nd) * (nas_node_sample_numel(nd) / (size_t)C);
}

static float act_hi(int act) { return act == NAS_ACT_RELU6 ? 6.0f : __builtin_inff(); }

/* Reduces the per-thread partial sums [T][2][C] in scratch into s1, s2. */
static void reduce_parts(const double *part, int T, int C, double *s1, double *s2) {
  for (int c = 0; c < C; c++) s1[c] = s2[c] = 0;
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++) {
      s1[c] += part[(size_t)t * 2 * C + c];
      s2[c] += part[(size_t)t * 2 * C + C + c];
    }
}

/* T of the scratch layout above (the thread count at shape inference). */
static int bn_threads(const nas_node *nd, int C) {
  size_t per = 2 * (size_t)C * sizeof(double), tail = 2 * (size_t)C * sizeof(float);
  return (int)((nd->scratch_bytes - tail) / per) - 1;
}

void batchnorm_forward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  const float *gamma = op_in(g, nd, 1)->val, *beta = op_in(g, nd, 2)->val;
  float *rmean = op_in(g, nd, 3)->val, *rvar = op_in(g, nd, 4)->val;
  int C = nd->shape.d[nd->shape.nd - 1];
  size_t R = bn_rows(g, nd, C);
  float *mean = nd->saved, *invstd = mean + C, *scale = invstd + C, *shift = scale + C;
  const float *xv = x->val;
  if (g->training) {
    int T = bn_threads(nd, C);
    double *part = g->scratch, *s1 = part + (size_t)T * 2 * C, *s2 = s1 + C;
    memset(part, 0, (size_t)T * 2 * C * sizeof(double));
#pragma omp parallel num_threads(T)
    {
      double *p1 = part + (size_t)omp_get_thread_num() * 2 * C, *p2 = p1 + C;
#pragma omp for schedule(static)
      for (size_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
          double v = xv[r * C + c];
          p1[c] += v;
          p2[c] += v * v;
        }
    }
    reduce_parts(part, T, C, s1, s2);
    float m = nd->p.momentum;
    for (int c = 0; c < C; c++) {
      double mu = s1[c] / (double)R, var = s2[c] / (double)R - mu * mu;
      if (var < 0) var = 0;
      mean[c] = (float)mu;
      invstd[c] = (float)(1.0 / sqrt(var + nd->p.eps));
      double unbiased = R > 1 ? var * (double)R / (double)(R - 1) : var;
      rmean[c] = (1 - m) * rmean[c] + m * mean[c];
      rvar[c] = (float)((1 - m) * rvar[c] + m * unbiased);
    }
  } else {
    for (int c = 0; c < C; c++) {
      mean[c] = rmean[c];
      invstd[c] = (float)(1.0 / sqrt((double)rvar[c] + nd->p.eps));
    }
  }
  for (int c = 0; c < C; c++) {
    scale[c] = gamma[c] * invstd[c];
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  float *y = nd->val;
  if (nd->p.act == NAS_ACT_NONE) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < R; r++)
      for (int c = 0; c < C; c++) y[r * C + c] = xv[r * C + c] * scale[c] + shift[c];
    return;
  }
  float hi = act_hi(nd->p.act);
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      float v = xv[r * C + c] * scale[c] + shift[c];
      v = v < 0 ? 0.0f : v; /* NaN propagates */
      y[r * C + c] = v > hi ? hi : v;
    }
}

/* The gradient that reaches the normalisation: dy where the fused activation's output lies
 * strictly inside (0, hi), else 0. Inlined with constant act so each variant vectorises. */
static inline __attribute__((always_inline)) float dy_eff(int act, float hi, float y, float dy) {
  if (act == NAS_ACT_NONE) return dy;
  return dy * (float)((y > 0.0f) & (y < hi)); /* branch-free so the loop vectorises */
}

/* sdy = sum dy_eff, sdyx = sum dy_eff * xhat (per-thread partials in part). */
static inline __attribute__((always_inline)) void bwd_sums(int act, float hi, size_t R, int C,
                                                           const float *restrict xv,
                                                           const float *restrict y,
                                                           const float *restrict dy,
                                                           const float *restrict mean,
                                                           const float *restrict invstd,
                                                           double *part, int T) {
#pragma omp parallel num_threads(T)
  {
    double *restrict p1 = part + (size_t)omp_get_thread_num() * 2 * C, *restrict p2 = p1 + C;
#pragma omp for schedule(static)
    for (size_t r = 0; r < R; r++)
      for (int c = 0; c < C; c++) {
        size_t i = r * C + c;
        float d = dy_eff(act, hi, y[i], dy[i]);
        p1[c] += d;
        p2[c] += d * ((xv[i] - mean[c]) * invstd[c]);
      }
  }
}

/* dx = (fresh ? 0 : dx) + scale * (dy_eff - a - xhat * b). */
static inline __attribute__((always_inline)) void bwd_dx(int act, float hi, int fresh, size_t R,
                                                         int C, const float *xv, const float *y,
                                                         const float *dy, const float *mean,
                                                         const float *invstd, const float *scale,
                                                         const float *a, const float *b, float *dx) {
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      size_t i = r * C + c;
      float v = scale[c] * (dy_eff(act, hi, y[i], dy[i]) - a[c] - (xv[i] - mean[c]) * invstd[c] * b[c]);
      dx[i] = fresh ? v : dx[i] + v;
    }
}

void batchnorm_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *gm = op_in(g, nd, 1), *bt = op_in(g, nd, 2);
  int C = nd->shape.d[nd->shape.nd - 1], act = nd->p.act;
  size_t R = bn_rows(g, nd, C);
  const float *mean = nd->saved, *invstd = mean + C, *scale = invstd + C;
  const float *xv = x->val, *dy = nd->grad, *y = nd->val;
  int T = bn_threads(nd, C);
  double *part = g->scratch, *sdy = part + (size_t)T * 2 * C, *sdyx = sdy + C;
  memset(part, 0, (size_t)T * 2 * C * sizeof(double));
  if (act == NAS_ACT_NONE) bwd_sums(NAS_ACT_NONE, 0, R, C, xv, y, dy, mean, invstd, part, T);
  else if (act == NAS_ACT_RELU) bwd_sums(NAS_ACT_RELU, __builtin_inff(), R, C, xv, y, dy, mean, invstd, part, T);
  else bwd_sums(NAS_ACT_RELU6, 6.0f, R, C, xv, y, dy, mean, invstd, part, T);
  reduce_parts(part, T, C, sdy, sdyx);
  if (gm->grad) {
    float *dg = op_grad_acc(g, gm);
    for (int c = 0; c < C; c++) dg[c] += (float)sdyx[c];
  }
  if (bt->grad) {
    float *db = op_grad_acc(g, bt);
    for (int c = 0; c < C; c++) db[c] += (float)sdy[c];
  }
  if (!x->grad) return;
  float *a = (float *)(sdyx + C), *b = a + C;
  int fresh = op_grad_fresh(g, x), training = g->training;
  for (int c = 0; c < C; c++) {
    a[c] = training ? (float)(sdy[c] / (double)R) : 0.0f;
    b[c] = training ? (float)(sdyx[c] / (double)R) : 0.0f;
  }
  float *dx = x->grad;
  if (act == NAS_ACT_NONE) {
    if (fresh) bwd_dx(NAS_ACT_NONE, 0, 1, R, C, xv, y, dy, mean, invstd, scale, a, b, dx);
    else bwd_dx(NAS_ACT_NONE, 0, 0, R, C, xv, y, dy, mean, invstd, scale, a, b, dx);
  } else {
    float hi = act == NAS_ACT_RELU6 ? 6.0f : __builtin_inff();
    if (fresh) bwd_dx(NAS_ACT_RELU, hi, 1, R, C, xv, y, dy, mean, invstd, scale, a, b, dx);
    else bwd_dx(NAS_ACT_RELU, hi, 0, R, C, xv, y, dy, mean, invstd, scale, a, b, dx);
  }
}
