/* train/ops_quant.c: the quantisation-aware training ops.
 *
 * FAKEQUANT  (straight-through estimator) has two forms:
 *   weights (1 input, a PARAM or anything unbatched): int8 symmetric, per channel along axis
 *     p.kh (p.kh = -1: one scale for the whole tensor, or with p.sh > 1 one per block of
 *     d[0]/p.sh rows: the gate blocks of an LSTM weight), scale = max|w|/127, q = round(w/scale)
 *     in -127..127, y = q*scale: the arithmetic of nas_q_weights (train/quant.h), which is what
 *     deploy/ applies at export. Backward: dy passes through unchanged (the STE; the max-abs
 *     scale never clips a weight, so "zero outside the range" never applies; the scale itself is
 *     treated as a constant, as TFLite's QAT does).
 *   activations (2 inputs: x, a STATE range r[3] = {lo, hi, initialised}): int8 asymmetric with
 *     scale/zero point from nas_q_choose(lo, hi) and rounding of nas_q_int8, y = (q - zp)*scale.
 *     In training mode (and p.kw == 0) the range is first updated from the batch: the first
 *     batch sets it (r[2] = 1), later batches move it by an exponential moving average with
 *     decay p.momentum (0.99 when 0): lo = d*lo + (1-d)*min(x), hi likewise (TFLite QAT's
 *     moving-average min/max). p.kw = 1 reads the range without updating it (a second use of
 *     a range, e.g. after average pooling, which keeps its input's quantisation).
 *     Backward (STE with clipping): dx = dy where x lies inside the representable real range
 *     [scale*(-128-zp), scale*(127-zp)] of the forward pass, 0 outside.
 * ALPHA_BLEND (alpha-blending, Liu and Mattina 2019): inputs w and a STATE alpha[1];
 *   y = (1-a)*w + a*q(w) with q the weight quantiser above (axis p.kh). No STE: the quantised
 *   term is a constant for the gradient, dw = (1-a)*dy.
 * Bit widths (p.bits, 0 = 8): weights use 2^(bits-1)-1 levels each side; with p.qmode
 *   NAS_FQ_POW2 the weights form uses one power-of-two scale for the tensor (nas_wino_pow2,
 *   magnitude limit p.qlim), with NAS_FQ_WIDE the max-abs scale times NAS_WINO_UWIDE; the
 *   activations form with p.bits > 0 is symmetric (zero point 0, scale
 *   nas_wino_sym_scale of the range), clipping at +-(2^(bits-1)-1) steps: the Winograd-domain
 *   tensors of train/wino.h.
 * The range/alpha STATE inputs never receive a gradient. */
#include <math.h>
#include <string.h>

#include "train/ops_impl.h"
#include "train/quant.h"
#include "train/wino.h"

#define FQ_DEFAULT_DECAY 0.99f

/* Saved by an activation FAKEQUANT for its backward: the real range represented. */
typedef struct fq_saved {
  float rmin, rmax;
} fq_saved;

static size_t numel_now(const nas_graph *g, const nas_node *nd) {
  return (size_t)op_batch(g, nd) * nas_node_sample_numel(nd);
}

/* Channel layout of a weight tensor for quantisation axis `axis` (-1: per tensor, or with
 * blocks > 1 one scale per block of blocks equal contiguous parts: the gate blocks of rows of
 * a recurrent weight). */
static void weight_layout(const nas_node *w, int axis, int blocks, size_t *outer, int *ch,
                          size_t *inner) {
  size_t n = nas_shape_numel(&w->shape);
  if (axis < 0) {
    const int b = blocks > 1 ? blocks : 1;
    *outer = 1, *ch = b, *inner = n / (size_t)b;
    return;
  }
  size_t o = 1, in = 1;
  for (int k = 0; k < axis; k++) o *= (size_t)w->shape.d[k];
  for (int k = axis + 1; k < w->shape.nd; k++) in *= (size_t)w->shape.d[k];
  *outer = o, *ch = w->shape.d[axis], *inner = in;
}

/* Largest integer magnitude of a symmetric quantiser with p.bits (0: 8). */
static long qmax_of(const nas_op_params *p) { return (1L << ((p->bits > 0 ? p->bits : 8) - 1)) - 1; }

/* y = w in a power-of-two int8 table (train/wino.h nas_wino_pow2). */
static void weight_pow2(const nas_node *x, nas_node *nd) {
  const int n = (int)nas_shape_numel(&x->shape);
  const int lim = nd->p.qlim > 0 ? nd->p.qlim : (int)qmax_of(&nd->p);
  int f = nas_wino_pow2(x->val, n, lim, NULL);
  for (int i = 0; i < n; i++) {
    double v = round(ldexp((double)x->val[i], f));
    v = v > lim ? lim : v < -lim ? -lim : v;
    nd->val[i] = (float)ldexp(v, -f);
  }
}

/* y = fake-quantised w (per-channel symmetric, qmax levels: 127 for int8); blended with w by
 * alpha when blend. */
static void weight_fq(const nas_node *x, nas_node *nd, int axis, int blend, float alpha) {
  size_t outer, inner;
  int C;
  weight_layout(x, axis, nd->p.sh, &outer, &C, &inner);
  const float *w = x->val;
  float *y = nd->val;
  const long qm = qmax_of(&nd->p);
  const float fq = nd->p.qmode == NAS_FQ_WIDE ? (float)((double)qm / NAS_WINO_UWIDE) : (float)qm;
  for (int c = 0; c < C; c++) {
    float m = 0;
    for (size_t o = 0; o < outer; o++) {
      const float *p = w + (o * (size_t)C + (size_t)c) * inner;
      for (size_t i = 0; i < inner; i++) {
        float a = fabsf(p[i]);
        if (a > m) m = a;
      }
    }
    const float s = m > 0 ? m / fq : 1.0f;
    for (size_t o = 0; o < outer; o++) {
      size_t base = (o * (size_t)C + (size_t)c) * inner;
      for (size_t i = 0; i < inner; i++) {
        long v = lroundf(w[base + i] / s);
        float q = (float)(v < -qm ? -qm : v > qm ? qm : v) * s;
        y[base + i] = blend ? (1.0f - alpha) * w[base + i] + alpha * q : q;
      }
    }
  }
}

static int check_axis(const nas_node *nd, const nas_node *x, nas_err *e) {
  if (nd->p.bits < 0 || nd->p.bits == 1 || nd->p.bits > 16 || nd->p.qlim < 0 ||
      nd->p.qmode < NAS_FQ_MAXABS || nd->p.qmode > NAS_FQ_WIDE ||
      (nd->p.qmode == NAS_FQ_POW2 && (nd->p.qlim > 127 || (nd->p.qlim == 0 && nd->p.bits > 8))))
    return nas_errf(e, NAS_EINVAL, "%s '%s': bits %d / scale mode %d / limit %d out of range",
                    nas_op_name(nd->op), nd->name, nd->p.bits, nd->p.qmode, nd->p.qlim);
  if (x->batched)
    return nas_errf(e, NAS_EINVAL, "%s '%s': weight input must not be batched", nas_op_name(nd->op), nd->name);
  if (nd->p.kh < -1 || nd->p.kh >= x->shape.nd)
    return nas_errf(e, NAS_EINVAL, "%s '%s': channel axis %d out of range for %d dimensions",
                    nas_op_name(nd->op), nd->name, nd->p.kh, x->shape.nd);
  if (nd->p.sh > 1 && (nd->p.kh != -1 || x->shape.d[0] % nd->p.sh))
    return nas_errf(e, NAS_EINVAL, "%s '%s': %d blocks need a per-tensor axis (-1) and a first "
                    "dimension they divide", nas_op_name(nd->op), nd->name, nd->p.sh);
  return NAS_OK;
}

static int check_state(const nas_node *nd, const nas_node *s, int numel, const char *what, nas_err *e) {
  if (s->kind != NAS_NODE_STATE || s->batched || (int)nas_shape_numel(&s->shape) != numel)
    return nas_errf(e, NAS_EINVAL, "%s '%s': %s must be a STATE of %d values", nas_op_name(nd->op),
                    nd->name, what, numel);
  return NAS_OK;
}

/* ---- fakequant --------------------------------------------------------------------------- */

int fakequant_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  nd->shape = x->shape;
  op_like_batch(nd, x);
  if (nd->n_in == 1) return check_axis(nd, x, e);
  if (nd->p.bits < 0 || nd->p.bits == 1 || nd->p.bits > 16)
    return nas_errf(e, NAS_EINVAL, "fakequant '%s': bits %d out of range 2..16", nd->name, nd->p.bits);
  if (check_state(nd, op_in(g, nd, 1), 3, "the range", e)) return e->code;
  if (nd->p.momentum < 0 || nd->p.momentum >= 1)
    return nas_errf(e, NAS_EINVAL, "fakequant '%s': EMA decay %g must be in [0,1)", nd->name,
                    (double)nd->p.momentum);
  nd->saved_bytes = sizeof(fq_saved);
  return NAS_OK;
}

static void act_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  float *r = op_in(g, nd, 1)->val;
  const size_t n = numel_now(g, nd);
  if (g->training && nd->p.kw == 0 && n > 0) {
    float lo = x->val[0], hi = x->val[0];
    for (size_t i = 1; i < n; i++) {
      float v = x->val[i];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    if (r[2] == 0) {
      r[0] = lo, r[1] = hi, r[2] = 1;
    } else {
      float d = nd->p.momentum > 0 ? nd->p.momentum : FQ_DEFAULT_DECAY;
      r[0] = d * r[0] + (1 - d) * lo;
      r[1] = d * r[1] + (1 - d) * hi;
    }
  }
  fq_saved *sv = nd->saved;
  if (nd->p.bits > 0) { /* symmetric, zero point 0 */
    const long qm = qmax_of(&nd->p);
    const float s = nas_wino_sym_scale(r[0], r[1], nd->p.bits);
    sv->rmin = -s * (float)qm, sv->rmax = s * (float)qm;
    const float *xv = x->val;
    float *y = nd->val;
    for (size_t i = 0; i < n; i++) {
      long v = lroundf(xv[i] / s);
      y[i] = (float)(v < -qm ? -qm : v > qm ? qm : v) * s;
    }
    return;
  }
  float s;
  int32_t zp;
  nas_q_choose(r[0], r[1], &s, &zp);
  sv->rmin = s * (float)(-128 - zp);
  sv->rmax = s * (float)(127 - zp);
  const float *xv = x->val;
  float *y = nd->val;
  for (size_t i = 0; i < n; i++) y[i] = (float)((int)nas_q_int8(xv[i], s, zp) - zp) * s;
}

void fakequant_forward(nas_graph *g, nas_node *nd) {
  if (nd->n_in == 2) {
    act_forward(g, nd);
    return;
  }
  if (nd->p.qmode == NAS_FQ_POW2) weight_pow2(op_in(g, nd, 0), nd);
  else weight_fq(op_in(g, nd, 0), nd, nd->p.kh, 0, 0);
}

void fakequant_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  const float *dy = nd->grad;
  if (nd->n_in == 1) { /* weights: identity */
    size_t n = nas_shape_numel(&nd->shape);
    float *dx = x->grad;
    if (op_grad_fresh(g, x)) {
      memcpy(dx, dy, n * sizeof(float));
      return;
    }
    for (size_t i = 0; i < n; i++) dx[i] += dy[i];
    return;
  }
  const fq_saved *sv = nd->saved;
  const size_t n = numel_now(g, nd);
  const float *xv = x->val;
  float *dx = x->grad;
  if (op_grad_fresh(g, x)) {
    for (size_t i = 0; i < n; i++) dx[i] = (xv[i] >= sv->rmin && xv[i] <= sv->rmax) ? dy[i] : 0.0f;
    return;
  }
  for (size_t i = 0; i < n; i++)
    if (xv[i] >= sv->rmin && xv[i] <= sv->rmax) dx[i] += dy[i];
}

/* ---- alpha_blend ------------------------------------------------------------------------- */

int alpha_blend_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  nd->shape = x->shape;
  op_like_batch(nd, x);
  if (check_axis(nd, x, e)) return e->code;
  return check_state(nd, op_in(g, nd, 1), 1, "alpha", e);
}

void alpha_blend_forward(nas_graph *g, nas_node *nd) {
  float a = op_in(g, nd, 1)->val[0];
  weight_fq(op_in(g, nd, 0), nd, nd->p.kh, 1, a);
}

void alpha_blend_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  const float k = 1.0f - op_in(g, nd, 1)->val[0];
  const size_t n = nas_shape_numel(&nd->shape);
  const float *dy = nd->grad;
  float *dx = x->grad;
  if (op_grad_fresh(g, x)) {
    for (size_t i = 0; i < n; i++) dx[i] = k * dy[i];
    return;
  }
  for (size_t i = 0; i < n; i++) dx[i] += k * dy[i];
}
