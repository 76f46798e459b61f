/* train/ops_dnas.c: the ops a DNAS supernet (nas/dnas.h) adds to the engine. The relaxed
 * architecture enters the graph through small gate tensors (channel masks, kernel masks,
 * mixture weights) that these ops apply; their gradients flow into the gates, from which
 * nas/dnas_net.c chains them to the architecture logits.
 *   MASK_MUL  x, m: y = x * m, m broadcast over a block of x. m (unbatched) has M elements;
 *             x is read as [outer, M, inner] per sample (inner = p.kw, 0 means 1), so that
 *             m[C] masks the channels of an NHWC activation (inner 1) and m[KH*KW] masks the
 *             kernel window of conv weights [Cout,KH,KW,Cin] (inner Cin) or of depthwise
 *             weights [KH,KW,C] (inner C).
 *   MIX       w:[k], x_1..x_k of equal shape: y = sum_i w_i x_i (op-type mixtures, skip
 *             gates). 1 <= k <= NAS_MAX_INPUTS - 1.
 *   CHANPAD   x:[...,Cin] -> [...,Cout] (Cout = p.kw): the first min(Cin,Cout) channels are
 *             copied, the rest are zero (the identity path of a skipped layer whose output
 *             is wider than its input). */
#include <string.h>

#include "train/ops_impl.h"

static size_t per_sample(const nas_node *x) {
  return x->batched ? nas_node_sample_numel(x) : nas_shape_numel(&x->shape);
}
static int samples(const nas_graph *g, const nas_node *x) { return x->batched ? g->batch : 1; }

/* ---- mask_mul ---------------------------------------------------------------------------- */

int mask_mul_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0), *m = op_in(g, nd, 1);
  if (m->batched) return nas_errf(e, NAS_EINVAL, "mask_mul: the mask must not be batched");
  size_t M = nas_shape_numel(&m->shape), inner = nd->p.kw > 0 ? (size_t)nd->p.kw : 1;
  size_t S = per_sample(x);
  if (M == 0 || S % (M * inner) != 0) {
    char sx[64], sm[64];
    return nas_errf(e, NAS_EINVAL, "mask_mul: mask %s (inner %zu) does not tile input %s",
                    nas_shape_str(&m->shape, sm, sizeof sm), inner,
                    nas_shape_str(&x->shape, sx, sizeof sx));
  }
  nd->shape = x->shape;
  op_like_batch(nd, x);
  return NAS_OK;
}

void mask_mul_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0), *mn = op_in(g, nd, 1);
  const float *m = mn->val;
  size_t M = nas_shape_numel(&mn->shape), inner = nd->p.kw > 0 ? (size_t)nd->p.kw : 1;
  size_t S = per_sample(x), outer = S / (M * inner) * (size_t)samples(g, x);
  const float *xv = x->val;
  float *y = nd->val;
#pragma omp parallel for schedule(static)
  for (size_t o = 0; o < outer; o++)
    for (size_t j = 0; j < M; j++) {
      size_t base = (o * M + j) * inner;
      for (size_t i = 0; i < inner; i++) y[base + i] = xv[base + i] * m[j];
    }
}

void mask_mul_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *mn = op_in(g, nd, 1);
  size_t M = nas_shape_numel(&mn->shape), inner = nd->p.kw > 0 ? (size_t)nd->p.kw : 1;
  size_t S = per_sample(x), outer = S / (M * inner) * (size_t)samples(g, x);
  const float *dy = nd->grad, *m = mn->val, *xv = x->val;
  if (x->grad) {
    int fresh = op_grad_fresh(g, x);
    float *dx = x->grad;
    for (size_t o = 0; o < outer; o++)
      for (size_t j = 0; j < M; j++) {
        size_t base = (o * M + j) * inner;
        if (fresh)
          for (size_t i = 0; i < inner; i++) dx[base + i] = dy[base + i] * m[j];
        else
          for (size_t i = 0; i < inner; i++) dx[base + i] += dy[base + i] * m[j];
      }
  }
  if (mn->grad) {
    float *dm = op_grad_acc(g, mn);
    for (size_t j = 0; j < M; j++) {
      double s = 0;
      for (size_t o = 0; o < outer; o++) {
        size_t base = (o * M + j) * inner;
        for (size_t i = 0; i < inner; i++) s += (double)dy[base + i] * xv[base + i];
      }
      dm[j] += (float)s;
    }
  }
}

/* ---- mix --------------------------------------------------------------------------------- */

int mix_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *w = op_in(g, nd, 0), *a = op_in(g, nd, 1);
  int k = nd->n_in - 1;
  if (w->batched || nas_shape_numel(&w->shape) != (size_t)k)
    return nas_errf(e, NAS_EINVAL, "mix: the weights must be an unbatched [%d] tensor", k);
  for (int i = 2; i < nd->n_in; i++) {
    const nas_node *b = op_in(g, nd, i);
    int same = a->shape.nd == b->shape.nd && a->batched == b->batched;
    for (int d = 0; same && d < a->shape.nd; d++) same = a->shape.d[d] == b->shape.d[d];
    if (!same) {
      char sa[64], sb[64];
      return nas_errf(e, NAS_EINVAL, "mix: input %d has shape %s, input 1 has %s", i,
                      nas_shape_str(&b->shape, sb, sizeof sb), nas_shape_str(&a->shape, sa, sizeof sa));
    }
  }
  nd->shape = a->shape;
  op_like_batch(nd, a);
  return NAS_OK;
}

void mix_forward(nas_graph *g, nas_node *nd) {
  const float *w = op_in(g, nd, 0)->val;
  size_t n = per_sample(nd) * (size_t)samples(g, nd);
  float *y = nd->val;
  const float *x0 = op_in(g, nd, 1)->val;
  for (size_t j = 0; j < n; j++) y[j] = w[0] * x0[j];
  for (int i = 2; i < nd->n_in; i++) {
    const float *x = op_in(g, nd, i)->val;
    float wi = w[i - 1];
    for (size_t j = 0; j < n; j++) y[j] += wi * x[j];
  }
}

void mix_backward(nas_graph *g, nas_node *nd) {
  nas_node *wn = op_in(g, nd, 0);
  size_t n = per_sample(nd) * (size_t)samples(g, nd);
  const float *dy = nd->grad, *w = wn->val;
  for (int i = 1; i < nd->n_in; i++) {
    nas_node *x = op_in(g, nd, i);
    if (x->grad) {
      float *dx = x->grad, wi = w[i - 1];
      if (op_grad_fresh(g, x))
        for (size_t j = 0; j < n; j++) dx[j] = wi * dy[j];
      else
        for (size_t j = 0; j < n; j++) dx[j] += wi * dy[j];
    }
  }
  if (wn->grad) {
    float *dw = op_grad_acc(g, wn);
    for (int i = 1; i < nd->n_in; i++) {
      const float *x = op_in(g, nd, i)->val;
      double s = 0;
      for (size_t j = 0; j < n; j++) s += (double)dy[j] * x[j];
      dw[i - 1] += (float)s;
    }
  }
}

/* ---- chanpad ----------------------------------------------------------------------------- */

int chanpad_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  if (nd->p.kw < 1) return nas_errf(e, NAS_EINVAL, "chanpad: output channels %d must be >= 1", nd->p.kw);
  if (x->shape.nd < 2) return nas_errf(e, NAS_EINVAL, "chanpad: input needs a channel axis");
  nd->shape = x->shape;
  nd->shape.d[x->shape.nd - 1] = nd->p.kw;
  op_like_batch(nd, x);
  return NAS_OK;
}

void chanpad_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  size_t ci = (size_t)x->shape.d[x->shape.nd - 1], co = (size_t)nd->p.kw;
  size_t rows = per_sample(x) / ci * (size_t)samples(g, x), c = ci < co ? ci : co;
  for (size_t r = 0; r < rows; r++) {
    memcpy(nd->val + r * co, x->val + r * ci, c * sizeof(float));
    if (co > c) memset(nd->val + r * co + c, 0, (co - c) * sizeof(float));
  }
}

void chanpad_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  size_t ci = (size_t)x->shape.d[x->shape.nd - 1], co = (size_t)nd->p.kw;
  size_t rows = per_sample(x) / ci * (size_t)samples(g, x), c = ci < co ? ci : co;
  int fresh = op_grad_fresh(g, x);
  for (size_t r = 0; r < rows; r++) {
    float *dx = x->grad + r * ci;
    const float *dy = nd->grad + r * co;
    if (fresh) {
      memcpy(dx, dy, c * sizeof(float));
      if (ci > c) memset(dx + c, 0, (ci - c) * sizeof(float));
    } else {
      for (size_t j = 0; j < c; j++) dx[j] += dy[j];
    }
  }
}
