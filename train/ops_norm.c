/* train/ops_norm.c: batch normalisation over the last (channel) dimension.
 * Inputs: x [N,...,C], gamma [C], beta [C], running_mean [C], running_var [C] (state).
 * Training: normalise with the batch mean and biased variance; update the running
 * statistics with momentum (PyTorch: r = (1-m) r + m * batch, variance unbiased).
 * Eval: normalise with the running statistics. Saved: mean, invstd, scale, shift [4C]. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "train/ops_impl.h"

int batchnorm_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  int c = x->shape.d[x->shape.nd - 1];
  for (int i = 1; i < 5; i++) {
    const nas_node *t = op_in(g, nd, i);
    if (t->shape.nd != 1 || t->shape.d[0] != c)
      return nas_errf(e, NAS_EINVAL, "batchnorm: parameter %d must be [%d] for %d channels", i, c,
                      c);
  }
  if (x->shape.nd < 2) return nas_errf(e, NAS_EINVAL, "batchnorm: input needs a channel axis");
  if (nd->p.eps <= 0) nd->p.eps = 1e-5f;
  if (nd->p.momentum <= 0) nd->p.momentum = 0.1f;
  nd->shape = x->shape;
  op_like_batch(nd, x);
  nd->saved_bytes = 4 * (size_t)c * sizeof(float);
  nd->scratch_bytes = (size_t)omp_get_max_threads() * 2 * (size_t)c * sizeof(double);
  return NAS_OK;
}

/* Per-channel sums over rows of a [R,C] array: s1 = sum(a), s2 = sum(a * b) (b may be NULL:
 * then s2 is unused). With centre != NULL, a is read as (a - centre) * mul. */
static void channel_sums(nas_graph *g, nas_node *nd, const float *a, const float *b, size_t R,
                         int C, const float *centre, const float *mul, double *s1, double *s2) {
  int T = (int)(nd->scratch_bytes / (2 * (size_t)C * sizeof(double)));
  double *part = g->scratch;
  memset(part, 0, (size_t)T * 2 * C * sizeof(double));
#pragma omp parallel num_threads(T)
  {
    double *p1 = part + (size_t)omp_get_thread_num() * 2 * C, *p2 = p1 + C;
#pragma omp for schedule(static)
    for (size_t r = 0; r < R; r++) {
      const float *ar = a + r * C;
      const float *br = b ? b + r * C : NULL;
      for (int c = 0; c < C; c++) {
        double v = centre ? (double)(ar[c] - centre[c]) * mul[c] : (double)ar[c];
        if (br) {
          p1[c] += br[c];
          p2[c] += (double)br[c] * v;
        } else {
          p1[c] += v;
          p2[c] += v * v;
        }
      }
    }
  }
  for (int c = 0; c < C; c++) s1[c] = s2[c] = 0;
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++) {
      s1[c] += part[(size_t)t * 2 * C + c];
      s2[c] += part[(size_t)t * 2 * C + C + c];
    }
}

/* Rows of the [R,C] view at the current batch. */
static size_t bn_rows(const nas_graph *g, const nas_node *nd, int C) {
  return (size_t)op_batch(g, nd) * (nas_node_sample_numel(nd) / (size_t)C);
}

void batchnorm_forward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  const float *gamma = op_in(g, nd, 1)->val, *beta = op_in(g, nd, 2)->val;
  float *rmean = op_in(g, nd, 3)->val, *rvar = op_in(g, nd, 4)->val;
  int C = nd->shape.d[nd->shape.nd - 1];
  size_t R = bn_rows(g, nd, C);
  float *mean = nd->saved, *invstd = mean + C, *scale = invstd + C, *shift = scale + C;
  if (g->training) {
    double s1[C], s2[C];
    channel_sums(g, nd, x->val, NULL, R, C, NULL, NULL, s1, s2);
    for (int c = 0; c < C; c++) mean[c] = (float)(s1[c] / (double)R);
    /* second pass around the mean for a stable variance */
    float ones[C];
    for (int c = 0; c < C; c++) ones[c] = 1.0f;
    channel_sums(g, nd, x->val, NULL, R, C, mean, ones, s1, s2);
    float m = nd->p.momentum;
    for (int c = 0; c < C; c++) {
      double var = s2[c] / (double)R;
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
  const float *xv = x->val;
  float *y = nd->val;
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < R; r++)
    for (int c = 0; c < C; c++) y[r * C + c] = xv[r * C + c] * scale[c] + shift[c];
}

void batchnorm_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *gm = op_in(g, nd, 1), *bt = op_in(g, nd, 2);
  int C = nd->shape.d[nd->shape.nd - 1];
  size_t R = bn_rows(g, nd, C);
  const float *mean = nd->saved, *invstd = mean + C, *scale = invstd + C;
  double sdy[C], sdyx[C];
  /* sdy = sum dy, sdyx = sum dy * xhat with xhat = (x - mean) * invstd */
  channel_sums(g, nd, x->val, nd->grad, R, C, mean, invstd, sdy, sdyx);
  if (gm->grad)
    for (int c = 0; c < C; c++) gm->grad[c] += (float)sdyx[c];
  if (bt->grad)
    for (int c = 0; c < C; c++) bt->grad[c] += (float)sdy[c];
  if (!x->grad) return;
  const float *xv = x->val, *dy = nd->grad;
  float *dx = x->grad;
  if (!g->training) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < R; r++)
      for (int c = 0; c < C; c++) dx[r * C + c] += dy[r * C + c] * scale[c];
    return;
  }
  float a[C], b[C];
  for (int c = 0; c < C; c++) {
    a[c] = (float)(sdy[c] / (double)R);
    b[c] = (float)(sdyx[c] / (double)R);
  }
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      size_t i = r * C + c;
      float xhat = (xv[i] - mean[c]) * invstd[c];
      dx[i] += scale[c] * (dy[i] - a[c] - xhat * b[c]);
    }
}
