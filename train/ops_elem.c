/* train/ops_elem.c: element-wise and shape ops: add, relu, relu6, reshape, dropout. */
#include <string.h>

#include "train/ops_impl.h"

static size_t numel_now(const nas_graph *g, const nas_node *nd) {
  return (size_t)op_batch(g, nd) * nas_node_sample_numel(nd);
}

static int same_as_input(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  nd->shape = x->shape;
  op_like_batch(nd, x);
  return NAS_OK;
}

/* ---- add --------------------------------------------------------------------------------- */

int add_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *a = op_in(g, nd, 0), *b = op_in(g, nd, 1);
  int same = a->shape.nd == b->shape.nd && a->batched == b->batched;
  for (int i = 0; same && i < a->shape.nd; i++) same = a->shape.d[i] == b->shape.d[i];
  if (!same) {
    char sa[64], sb[64];
    return nas_errf(e, NAS_EINVAL, "add: shapes differ: %s and %s",
                    nas_shape_str(&a->shape, sa, sizeof sa), nas_shape_str(&b->shape, sb, sizeof sb));
  }
  return same_as_input(g, nd);
}

void add_forward(nas_graph *g, nas_node *nd) {
  const float *a = op_in(g, nd, 0)->val, *b = op_in(g, nd, 1)->val;
  float *y = nd->val;
  size_t n = numel_now(g, nd);
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void add_backward(nas_graph *g, nas_node *nd) {
  size_t n = numel_now(g, nd);
  for (int k = 0; k < 2; k++) {
    nas_node *x = op_in(g, nd, k);
    if (!x->grad) continue;
    float *dx = x->grad;
    const float *dy = nd->grad;
    if (op_grad_fresh(g, x)) {
      memcpy(dx, dy, n * sizeof(float));
      continue;
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i];
  }
}

/* ---- relu / relu6 ------------------------------------------------------------------------ */

int relu_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  (void)e;
  return same_as_input(g, nd);
}
int relu6_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  (void)e;
  return same_as_input(g, nd);
}

static void clamp_forward(nas_graph *g, nas_node *nd, float hi) {
  const float *x = op_in(g, nd, 0)->val;
  float *y = nd->val;
  size_t n = numel_now(g, nd);
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float v = x[i] < 0 ? 0.0f : x[i]; /* written so that NaN propagates (divergence is seen) */
    y[i] = v > hi ? hi : v;
  }
}

/* Gradient passes where the input lies strictly inside (0, hi). */
static void clamp_backward(nas_graph *g, nas_node *nd, float hi) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  const float *xv = x->val, *dy = nd->grad;
  float *dx = x->grad;
  size_t n = numel_now(g, nd);
  if (op_grad_fresh(g, x)) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = (xv[i] > 0 && xv[i] < hi) ? dy[i] : 0.0f;
  } else {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] += (xv[i] > 0 && xv[i] < hi) ? dy[i] : 0.0f;
  }
}

void relu_forward(nas_graph *g, nas_node *nd) { clamp_forward(g, nd, __builtin_inff()); }
void relu_backward(nas_graph *g, nas_node *nd) { clamp_backward(g, nd, __builtin_inff()); }
void relu6_forward(nas_graph *g, nas_node *nd) { clamp_forward(g, nd, 6.0f); }
void relu6_backward(nas_graph *g, nas_node *nd) { clamp_backward(g, nd, 6.0f); }

/* ---- reshape ----------------------------------------------------------------------------- */

int reshape_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  if (nd->p.nd < 1 || nd->p.nd > NAS_MAX_DIMS - 1)
    return nas_errf(e, NAS_EINVAL, "reshape: target needs 1..%d dimensions", NAS_MAX_DIMS - 1);
  size_t want = 1;
  for (int i = 0; i < nd->p.nd; i++) {
    if (nd->p.d[i] < 1) return nas_errf(e, NAS_EINVAL, "reshape: dimension %d is %d", i, nd->p.d[i]);
    want *= (size_t)nd->p.d[i];
  }
  if (want != nas_node_sample_numel(x))
    return nas_errf(e, NAS_EINVAL, "reshape: %zu elements per sample cannot become %zu",
                    nas_node_sample_numel(x), want);
  nd->shape.nd = nd->p.nd + 1;
  op_like_batch(nd, x);
  for (int i = 0; i < nd->p.nd; i++) nd->shape.d[i + 1] = nd->p.d[i];
  return NAS_OK;
}

void reshape_forward(nas_graph *g, nas_node *nd) {
  memcpy(nd->val, op_in(g, nd, 0)->val, numel_now(g, nd) * sizeof(float));
}

void reshape_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  size_t n = numel_now(g, nd);
  if (op_grad_fresh(g, x)) {
    memcpy(x->grad, nd->grad, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) x->grad[i] += nd->grad[i];
}

/* ---- dropout (inverted: kept units are scaled by 1/(1-rate) in training) ----------------- */

int dropout_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (!(nd->p.rate >= 0 && nd->p.rate < 1))
    return nas_errf(e, NAS_EINVAL, "dropout: rate %g must be in [0,1)", (double)nd->p.rate);
  same_as_input(g, nd);
  nd->saved_bytes = nas_shape_numel(&nd->shape) * sizeof(float); /* the mask */
  return NAS_OK;
}

void dropout_forward(nas_graph *g, nas_node *nd) {
  const float *x = op_in(g, nd, 0)->val;
  float *y = nd->val, *mask = nd->saved;
  size_t n = numel_now(g, nd);
  if (!g->training || nd->p.rate == 0) {
    memcpy(y, x, n * sizeof(float));
    return;
  }
  float keep = 1.0f - nd->p.rate, scale = 1.0f / keep;
  for (size_t i = 0; i < n; i++) mask[i] = nas_rng_uniform(&g->rng) < keep ? scale : 0.0f;
  for (size_t i = 0; i < n; i++) y[i] = x[i] * mask[i];
}

void dropout_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  float *dx = op_grad_acc(g, x);
  size_t n = numel_now(g, nd);
  const float *mask = nd->saved, *dy = nd->grad;
  int identity = !g->training || nd->p.rate == 0;
  for (size_t i = 0; i < n; i++) dx[i] += identity ? dy[i] : dy[i] * mask[i];
}
