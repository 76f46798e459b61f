/* deploy/prep8.c: the prepare step of every int8 operator. Each operator's parameters are
 * derived here once, from the graph's tensors and the plan, into the MCU runtime's parameter
 * struct (runtime/nasrt.h) following TFLite Micro's Prepare functions: per-channel effective
 * scale input_scale * weight_scale / output_scale as a Q31 multiplier and shift, TFLite's
 * padding (smaller half top/left), the fused activation's clamp, ADD's common scale 2 *
 * max(input scales) after a left shift of 20, SOFTMAX's beta * scale in Q5.26 with its
 * cut-off. The host kernels (kernels8.c) and the C export (export/export_c.c) read the
 * structs; the host adds its own layout (repacked int16 filters, branch-free requantisation)
 * built from them. WINOGRAD_CONV_2D's prepare (prep_wino) derives its transformed weights and
 * three requantisations (deploy/wino8.h). Also the fixed-point helpers that are not runtime
 * arithmetic. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "deploy/graph8.h"
#include "deploy/rnn8.h"
#include "deploy/wino8.h"
#include "runtime/nasrt_fixed.h"

/* ---- fixed point ----------------------------------------------------------------------- */

void nas_q_quantize_multiplier(double m, int32_t *q, int *shift) {
  if (m == 0.0 || !isfinite(m)) {
    *q = 0, *shift = 0;
    return;
  }
  int sh;
  double frac = frexp(m, &sh);               /* m = frac * 2^sh, 0.5 <= |frac| < 1 */
  int64_t qf = (int64_t)round(frac * 2147483648.0); /* ties away from zero, like std::round */
  if (qf == (int64_t)1 << 31) qf /= 2, sh++;
  if (sh < -31) sh = 0, qf = 0;
  if (sh > 30) sh = 30, qf = INT32_MAX;       /* TFLite refuses these; saturate instead */
  *q = (int32_t)qf, *shift = sh;
}

int32_t nas_q_srdhm(int32_t a, int32_t b) { return nasrt_srdhm(a, b); }
int32_t nas_q_rdbpot(int32_t x, int exponent) { return nasrt_rdbpot(x, exponent); }
int32_t nas_q_mul(int32_t x, int32_t q, int shift) { return nasrt_mul(x, q, shift); }

static int32_t quantize_f(float f, float scale, int32_t zp) {
  return zp + (int32_t)roundf(f / scale);
}

void nas_q_act_range(int act, float scale, int32_t zp, int32_t *lo, int32_t *hi) {
  int32_t a = -128, b = 127;
  if (act == NAS_G8_ACT_RELU) {
    if (zp > a) a = zp;
  } else if (act == NAS_G8_ACT_RELU6) {
    if (zp > a) a = zp;
    int32_t t = quantize_f(6.0f, scale, zp);
    if (t < b) b = t;
  } else if (act == NAS_G8_ACT_RELU_N1_TO_1) {
    int32_t t = quantize_f(-1.0f, scale, zp);
    if (t > a) a = t;
    t = quantize_f(1.0f, scale, zp);
    if (t < b) b = t;
  }
  *lo = a, *hi = b;
}

/* ---- per-operator prepare -------------------------------------------------------------- */

/* Arena offset of tensor t (-1: constant, or no plan). */
static int32_t offset_of(const nas_g8_plan *plan, int t) {
  return plan ? (int32_t)plan->offset[t] : -1;
}

static const int32_t *bias_of(const nas_g8_graph *g, const nas_g8_op *op) {
  return op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
}

/* Top/left padding: TFLite splits the total with the smaller half first. */
static int32_t pad_before(int pad, int in, int out, int stride, int extent) {
  if (pad != NAS_G8_PAD_SAME) return 0;
  int32_t p = ((out - 1) * stride + extent - in) / 2;
  return p < 0 ? 0 : p;
}

/* Per-output-channel multipliers and shifts of conv/depthwise/FC: the effective scale
 * input_scale * weight_scale / output_scale, per channel when the weights are. */
static int channel_requant(const nas_g8_tensor *x, const nas_g8_tensor *w, const nas_g8_tensor *y,
                           int co, nas_g8_prep_op *p) {
  p->mult = nas_malloc(sizeof *p->mult * (size_t)co);
  p->shift = nas_malloc((size_t)co);
  if (!p->mult || !p->shift) return NAS_ENOMEM;
  for (int c = 0; c < co; c++) {
    double ws = w->scale[w->nq > 1 ? c : 0];
    int sh;
    nas_q_quantize_multiplier((double)x->scale[0] * ws / (double)y->scale[0], &p->mult[c], &sh);
    p->shift[c] = (int8_t)sh;
  }
  return NAS_OK;
}

/* The fast kernels' filter layout (runtime/nasrt_fast_conv.c): rows of d bytes per output
 * channel, in channel pairs interleaved by groups of four bytes, each pair's d % 4 last bytes
 * after its groups; an odd last channel as stored. */
static int fast_pack(const int8_t *w, int co, int d, nas_g8_prep_op *p) {
  p->wq = nas_malloc((size_t)co * (size_t)d + 1);
  if (!p->wq) return NAS_ENOMEM;
  int8_t *o = p->wq;
  const int G = d / 4, r = d % 4;
  int c = 0;
  for (; c + 1 < co; c += 2) {
    const int8_t *w0 = w + (size_t)c * d, *w1 = w0 + d;
    for (int g = 0; g < G; g++) {
      memcpy(o, w0 + 4 * g, 4), memcpy(o + 4, w1 + 4 * g, 4);
      o += 8;
    }
    memcpy(o, w0 + 4 * G, (size_t)r), memcpy(o + r, w1 + 4 * G, (size_t)r);
    o += 2 * r;
  }
  if (c < co) memcpy(o, w + (size_t)c * d, (size_t)d);
  return NAS_OK;
}

/* bq[c] = bias[c] + in_off * (sum of channel c's n weights): the input offset folded into the
 * bias (int32 wrap-around, as the accumulation itself). Weights of channel c: w[c*n + k]
 * (rows), or w[k*co + c] (strided: depthwise [kh,kw,co]). */
static int fold_bias(const int8_t *w, const int32_t *bias, int32_t in_off, int co, int n,
                     int strided, nas_g8_prep_op *p) {
  p->bq = nas_malloc(sizeof *p->bq * (size_t)(co > 0 ? co : 1));
  if (!p->bq) return NAS_ENOMEM;
  for (int c = 0; c < co; c++) {
    int32_t s = 0;
    for (int k = 0; k < n; k++) s += strided ? w[(size_t)k * co + c] : w[(size_t)c * n + k];
    p->bq[c] = (int32_t)((uint32_t)(bias ? bias[c] : 0) + (uint32_t)in_off * (uint32_t)s);
  }
  return NAS_OK;
}

/* 0 when every channel has the same multiplier and shift (per-tensor weights: the export
 * then prints one), else 1. */
static int32_t qstep_of(const nas_g8_prep_op *p, int co) {
  for (int c = 1; c < co; c++)
    if (p->mult[c] != p->mult[0] || p->shift[c] != p->shift[0]) return 1;
  return 0;
}

static int prep_conv(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  nasrt_conv_p *c = &p->rt.conv;
  p->rt_kind = op->kind == NAS_G8_CONV_2D ? NASRT_CONV_2D : NASRT_DEPTHWISE_CONV_2D;
  if (channel_requant(x, w, y, y->dims[3], p)) return NAS_ENOMEM;
  c->in = offset_of(plan, op->in[0]), c->out = offset_of(plan, op->out);
  c->filter = w->data, c->bias = bias_of(g, op), c->mult = p->mult, c->shift = p->shift;
  c->n = x->dims[0], c->h = x->dims[1], c->w = x->dims[2], c->ci = x->dims[3];
  c->ho = y->dims[1], c->wo = y->dims[2], c->co = y->dims[3];
  c->kh = w->dims[1], c->kw = w->dims[2];
  c->sh = op->stride_h, c->sw = op->stride_w, c->dh = op->dil_h, c->dw = op->dil_w;
  c->pt = pad_before(op->padding, c->h, c->ho, c->sh, (c->kh - 1) * c->dh + 1);
  c->pl = pad_before(op->padding, c->w, c->wo, c->sw, (c->kw - 1) * c->dw + 1);
  c->in_off = -x->zero_point[0], c->out_off = y->zero_point[0];
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &c->lo, &c->hi);
  c->scratch = -1;
  if (op->kind == NAS_G8_CONV_2D) {
    const int i = (int)(op - g->ops);
    if (fast_pack(c->filter, c->co, c->kh * c->kw * c->ci, p)) return NAS_ENOMEM;
    if (fold_bias(c->filter, c->bias, c->in_off, c->co, c->kh * c->kw * c->ci, 0, p))
      return NAS_ENOMEM;
    c->wq = p->wq, c->bq = p->bq, c->qstep = qstep_of(p, c->co);
    c->scratch = plan && plan->scratch ? (int32_t)plan->scratch[i] : -1;
  } else if (c->co == c->ci) { /* depthwise, multiplier 1: the filter as stored */
    if (fold_bias(c->filter, c->bias, c->in_off, c->co, c->kh * c->kw, 1, p)) return NAS_ENOMEM;
    c->bq = p->bq, c->qstep = qstep_of(p, c->co);
  }
  return NAS_OK;
}

static int prep_fc(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                   nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  nasrt_fc_p *f = &p->rt.fc;
  p->rt_kind = NASRT_FULLY_CONNECTED;
  if (channel_requant(x, w, y, w->dims[0], p)) return NAS_ENOMEM;
  f->in = offset_of(plan, op->in[0]), f->out = offset_of(plan, op->out);
  f->filter = w->data, f->bias = bias_of(g, op), f->mult = p->mult, f->shift = p->shift;
  f->co = w->dims[0], f->d = w->dims[1], f->b = (int32_t)(nas_g8_numel(x) / (size_t)f->d);
  f->in_off = -x->zero_point[0], f->w_off = -w->zero_point[0], f->out_off = y->zero_point[0];
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &f->lo, &f->hi);
  if (f->w_off == 0) { /* the fast kernel folds the input offset only */
    if (fast_pack(f->filter, f->co, f->d, p) || fold_bias(f->filter, f->bias, f->in_off, f->co, f->d, 0, p))
      return NAS_ENOMEM;
    f->wq = p->wq, f->bq = p->bq, f->qstep = qstep_of(p, f->co);
  }
  return NAS_OK;
}

static void prep_pool(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                      nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  nasrt_pool_p *q = &p->rt.pool;
  p->rt_kind = op->kind == NAS_G8_AVERAGE_POOL_2D ? NASRT_AVERAGE_POOL_2D : NASRT_MAX_POOL_2D;
  q->in = offset_of(plan, op->in[0]), q->out = offset_of(plan, op->out);
  q->n = x->dims[0], q->h = x->dims[1], q->w = x->dims[2], q->c = x->dims[3];
  q->ho = y->dims[1], q->wo = y->dims[2];
  q->fh = op->filter_h, q->fw = op->filter_w, q->sh = op->stride_h, q->sw = op->stride_w;
  q->pt = pad_before(op->padding, q->h, q->ho, q->sh, q->fh);
  q->pl = pad_before(op->padding, q->w, q->wo, q->sw, q->fw);
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &q->lo, &q->hi);
}

static void prep_add(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p) {
  const nas_g8_tensor *a = &g->tensors[op->in[0]], *b = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  nasrt_add_p *d = &p->rt.add;
  p->rt_kind = NASRT_ADD;
  d->a = a->data ? -1 : offset_of(plan, op->in[0]), d->a_data = a->data;
  d->b = b->data ? -1 : offset_of(plan, op->in[1]), d->b_data = b->data;
  d->out = offset_of(plan, op->out);
  d->n = (int32_t)nas_g8_numel(y);
  d->a_off = -a->zero_point[0], d->b_off = -b->zero_point[0], d->out_zp = y->zero_point[0];
  d->left_shift = 20;
  const double sa = a->scale[0], sb = b->scale[0], twice_max = 2.0 * (sa > sb ? sa : sb);
  int s1, s2, so;
  nas_q_quantize_multiplier(sa / twice_max, &d->a_mult, &s1);
  nas_q_quantize_multiplier(sb / twice_max, &d->b_mult, &s2);
  nas_q_quantize_multiplier(twice_max / ((double)(1 << d->left_shift) * (double)y->scale[0]),
                            &d->out_mult, &so);
  d->a_shift = s1, d->b_shift = s2, d->out_shift = so;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &d->lo, &d->hi);
}

/* TFLM's CalculateSoftmaxParams (kScaledDiffIntegerBits = 5). The output tensor's
 * quantisation is not read: the kernel writes TFLite's fixed 1/256, -128 (as TFLM does). */
static void prep_softmax(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                         nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]];
  nasrt_softmax_p *s = &p->rt.softmax;
  p->rt_kind = NASRT_SOFTMAX;
  s->in = offset_of(plan, op->in[0]), s->out = offset_of(plan, op->out);
  s->depth = x->dims[x->ndim - 1];
  s->rows = s->depth ? (int32_t)(nas_g8_numel(x) / (size_t)s->depth) : 0;
  const int int_bits = 5;
  double real = (double)op->beta * (double)x->scale[0] * (double)(1 << (31 - int_bits));
  if (real > 2147483647.0) real = 2147483647.0;
  int lshift;
  nas_q_quantize_multiplier(real, &s->mult, &lshift);
  if (lshift < 0) lshift = 0; /* TFLite requires a multiplier >= 1 here */
  s->lshift = lshift;
  double radius = ((1 << int_bits) - 1) * (double)((int64_t)1 << (31 - int_bits)) /
                  (double)((int64_t)1 << lshift);
  s->diff_min = -(int32_t)floor(radius);
}

static void prep_quantize(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                          nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  nasrt_requant_p *r = &p->rt.requant;
  p->rt_kind = NASRT_QUANTIZE;
  r->in = offset_of(plan, op->in[0]), r->out = offset_of(plan, op->out);
  r->n = (int32_t)nas_g8_numel(y);
  int s;
  nas_q_quantize_multiplier((double)x->scale[0] / (double)y->scale[0], &r->mult, &s);
  r->shift = s, r->in_zp = x->zero_point[0], r->out_zp = y->zero_point[0];
}

static void prep_reshape(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                         nas_g8_prep_op *p) {
  p->rt_kind = NASRT_RESHAPE;
  p->rt.copy.in = offset_of(plan, op->in[0]), p->rt.copy.out = offset_of(plan, op->out);
  p->rt.copy.n = (int32_t)nas_g8_numel(&g->tensors[op->out]);
}

/* WINOGRAD_CONV_2D (deploy/wino8.h): U for the kernels (static: transformed from the int8
 * weights, or left to the runtime with u_mult/u_shift when wino_rt; flex: repacked to
 * [co][P][ci4]), the
 * requantisation of V (input scale 2^-2fb / V scale), of M per channel (U scale * V scale / M
 * scale, M scale = the bias scale * 2^2fa) and of the output (bias scale / output scale). */
static int prep_wino(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p, size_t *scratch) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *b = &g->tensors[op->in[2]], *y = &g->tensors[op->out];
  const int m = op->wino_m, a = m + 2, P = a * a, flex = op->in[4] >= 0;
  const int ci = x->dims[3], co = y->dims[3], ci4 = NASRT_WINO_CI4(ci);
  nasrt_wino_p *c = &p->rt.wino;
  p->rt_kind = NASRT_WINOGRAD_CONV_2D;
  p->wino_u = nas_malloc((size_t)co * P * ci4);
  p->wino_i32 = nas_malloc(sizeof *p->wino_i32 * 4 * (size_t)co);
  p->wino_i8 = nas_malloc(3 * (size_t)co);
  if (!p->wino_u || !p->wino_i32 || !p->wino_i8) return NAS_ENOMEM;
  int32_t *um = p->wino_i32, *mm = um + co, *om = mm + co, *wmax = om + co;
  int8_t *us = p->wino_i8, *ms = us + co, *os = ms + co;
  c->in = offset_of(plan, op->in[0]), c->out = offset_of(plan, op->out);
  c->scratch = offset_of(plan, op->in[3]);
  c->n = x->dims[0], c->h = x->dims[1], c->w = x->dims[2], c->ci = ci;
  c->ho = y->dims[1], c->wo = y->dims[2], c->co = co, c->m = m;
  c->pt = c->pl = op->padding == NAS_G8_PAD_SAME ? 1 : 0;
  c->in_off = -x->zero_point[0], c->out_off = y->zero_point[0];
  c->qmax = (int32_t)((1L << (op->wino_bits - 1)) - 1);
  c->bshift = op->wino_bshift;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &c->lo, &c->hi);
  c->bias = b->data;
  const int gden = m == 2 ? 2 : 24;
  if (flex) {
    const int8_t *t = g->tensors[op->in[4]].data, *u = w->data;
    c->bt = t, c->at = t + P;
    memset(p->wino_u, 0, (size_t)co * P * ci4);
    for (size_t r = 0; r < (size_t)co * P; r++) memcpy(p->wino_u + r * ci4, u + r * ci, (size_t)ci);
    c->u = p->wino_u;
  } else {
    nas_wino_static_u(m, w->data, co, ci, wmax, um, us, p->wino_u);
    if (op->wino_rt) c->wt = w->data, c->u_mult = um, c->u_shift = us;
    else c->u = p->wino_u;
  }
  const double sx = x->scale[0], sv = op->wino_vscale, sy = y->scale[0];
  int sh;
  nas_q_quantize_multiplier(ldexp(sx, -2 * (flex ? op->wino_fb : 0)) / sv, &c->v_mult, &sh);
  c->v_shift = sh;
  for (int k = 0; k < co; k++) {
    const double su = flex ? w->scale[k]
                           : wmax[k] > 0 ? (double)w->scale[k] * wmax[k] * NAS_WINO_UWIDE /
                                               ((double)gden * gden * 127.0)
                                         : (double)w->scale[k];
    const double sacc = ldexp(b->scale[k], op->wino_bshift) /* 2^bshift of the bias's */, sm = ldexp(sacc, 2 * (flex ? op->wino_fa : 0));
    nas_q_quantize_multiplier(su * sv / sm, &mm[k], &sh);
    ms[k] = (int8_t)sh;
    nas_q_quantize_multiplier(sacc / sy, &om[k], &sh);
    os[k] = (int8_t)sh;
  }
  c->m_mult = mm, c->m_shift = ms, c->o_mult = om, c->o_shift = os;
  *scratch = nas_g8_wino_host_scratch(c);
  return NAS_OK;
}

/* ---- sparse weights (the nas-c runtime's SPARSE) ----------------------------------------- */

long long nas_g8_sparse_bytes(const nas_g8_graph *g, int i, long long *nnz) {
  if (nnz) *nnz = 0;
  if (i < 0 || i >= g->nops) return -1;
  const nas_g8_op *op = &g->ops[i];
  if ((op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_FULLY_CONNECTED) || op->nin < 2 ||
      op->in[1] < 0)
    return -1;
  const nas_g8_tensor *w = &g->tensors[op->in[1]];
  if (!w->data || w->type != NAS_G8_INT8) return -1;
  for (int q = 0; q < (w->nq > 0 ? w->nq : 1); q++)
    if (w->zero_point[q] != 0) return -1; /* a zero weight would not contribute 0 */
  const int conv = op->kind == NAS_G8_CONV_2D;
  const long long co = w->dims[0], taps = conv ? (long long)w->dims[1] * w->dims[2] : 1;
  const long long ci = conv ? w->dims[3] : w->dims[1];
  const int8_t *d = w->data;
  long long k = 0, n = co * taps * ci;
  for (long long j = 0; j < n; j++) k += d[j] != 0;
  if (nnz) *nnz = k;
  return co * taps * ((ci + 7) / 8) + k;
}

int nas_g8_sparse_pick(const nas_g8_graph *g, int i) {
  long long b = nas_g8_sparse_bytes(g, i, NULL);
  return b >= 0 && b < (long long)g->tensors[g->ops[i].in[1]].bytes;
}

/* Turns prepared CONV_2D / FULLY_CONNECTED operator i into SPARSE: mask rows per (output
 * channel, tap) and the non-zero values, from the graph's filter. */
static int prep_sparse(const nas_g8_graph *g, int i, nas_g8_prep_op *p) {
  const nas_g8_op *op = &g->ops[i];
  const nas_g8_tensor *w = &g->tensors[op->in[1]];
  nasrt_sparse_p s;
  memset(&s, 0, sizeof s);
  if (p->rt_kind == NASRT_CONV_2D) {
    s.c = p->rt.conv;
  } else {
    const nasrt_fc_p f = p->rt.fc;
    nasrt_conv_p *c = &s.c;
    c->in = f.in, c->out = f.out, c->bias = f.bias, c->mult = f.mult, c->shift = f.shift;
    c->n = f.b, c->h = c->w = c->ho = c->wo = c->kh = c->kw = 1, c->ci = f.d, c->co = f.co;
    c->sh = c->sw = c->dh = c->dw = 1;
    c->in_off = f.in_off, c->out_off = f.out_off, c->lo = f.lo, c->hi = f.hi;
  }
  s.c.filter = NULL;
  s.c.wq = NULL, s.c.bq = NULL, s.c.scratch = -1; /* the dense fast kernel's, not needed */
  free(p->wq), free(p->bq);
  p->wq = NULL, p->bq = NULL;
  const int32_t co = s.c.co, taps = s.c.kh * s.c.kw, ci = s.c.ci, mb = (ci + 7) / 8;
  long long nnz = 0;
  nas_g8_sparse_bytes(g, i, &nnz);
  p->sp_mask = nas_calloc((size_t)co * (size_t)taps * (size_t)mb, 1);
  p->sp_values = nnz > 0 ? nas_malloc((size_t)nnz) : NULL; /* none when every weight is 0 */
  if (!p->sp_mask || (nnz > 0 && !p->sp_values)) return NAS_ENOMEM;
  const int8_t *d = w->data;
  size_t k = 0;
  for (size_t r = 0; r < (size_t)co * (size_t)taps; r++) /* filter [co][kh][kw][ci] */
    for (int32_t ic = 0; ic < ci; ic++) {
      const int8_t v = d[r * (size_t)ci + (size_t)ic];
      if (!v) continue;
      p->sp_mask[r * (size_t)mb + (size_t)(ic / 8)] |= (uint8_t)(1u << (ic % 8));
      p->sp_values[k++] = v;
    }
  s.mask = p->sp_mask, s.values = p->sp_values, s.mb = mb, s.nnz = (int32_t)nnz;
  p->rt_kind = NASRT_SPARSE;
  p->rt.sparse = s;
  return NAS_OK;
}

/* ---- the host's layout ----------------------------------------------------------------- */

#define LANES 16 /* output channels are padded to a multiple of this (one 512-bit int32 vector) */

void nas_q_rq_consts(int32_t mult, int shift, int32_t *lmul, int32_t *qm, int32_t *rsh,
                     int32_t *mask) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : (-shift > 31 ? 31 : -shift);
  *qm = mult < 0 ? 0 : mult;
  *lmul = (int32_t)((int64_t)1 << left), *rsh = right;
  *mask = (int32_t)(((int64_t)1 << right) - 1);
}

/* The prepared multipliers and shifts in the host's branch-free form, per channel. */
static int host_requant(int co, nas_g8_prep_op *p) {
  nas_q_rq *r = &p->rq;
  r->mult = nas_malloc(sizeof *r->mult * (size_t)co), r->lmul = nas_malloc(sizeof *r->lmul * (size_t)co);
  r->rsh = nas_malloc(sizeof *r->rsh * (size_t)co), r->mask = nas_malloc(sizeof *r->mask * (size_t)co);
  if (!r->mult || !r->lmul || !r->rsh || !r->mask) return NAS_ENOMEM;
  for (int c = 0; c < co; c++)
    nas_q_rq_consts(p->mult[c], p->shift[c], &r->lmul[c], &r->mult[c], &r->rsh[c], &r->mask[c]);
  return NAS_OK;
}

/* Repacked filters of conv / depthwise conv (multiplier 1) and the scratch their kernels
 * need; *scratch = accumulators only for the others. */
static int host_layout(nas_g8_prep_op *p, size_t *scratch) {
  const int fc = p->rt_kind == NASRT_FULLY_CONNECTED;
  const int co = fc ? p->rt.fc.co : p->rt.conv.co;
  const int cop = (co + LANES - 1) / LANES * LANES;
  *scratch = sizeof(int32_t) * (size_t)cop;
  if (host_requant(co, p)) return NAS_ENOMEM;
  const nasrt_conv_p *c = &p->rt.conv;
  const int dw = p->rt_kind == NASRT_DEPTHWISE_CONV_2D;
  if (fc || (dw && c->co != c->ci)) return NAS_OK;
  const size_t npix = (size_t)c->n * (size_t)c->ho * (size_t)c->wo; /* output pixels */
  const size_t depth = (size_t)c->kh * c->kw * (size_t)c->ci;       /* Kh*Kw*Ci */
  const int8_t *wd = c->filter;
  const int32_t *bias = c->bias;
  if (!dw && co <= 48 && npix >= 32 && depth * npix * sizeof(int16_t) <= ((size_t)8 << 20)) {
    /* pixel-vector conv (measured on the host: few output channels leave the channel vectors
     * half empty, while 32+ output pixels fill the pixel vectors; otherwise the channel-vector
     * kernel is faster): int16 filter [Co][Kh*Kw*Ci] in the stored order; scratch for the
     * unrolled input (int16 [Kh*Kw*Ci][P]), one channel's accumulators and int8 results */
    p->pixel = 1, p->cop = co;
    p->w16 = nas_malloc(sizeof *p->w16 * depth * (size_t)co);
    p->bias = nas_malloc(sizeof *p->bias * (size_t)co);
    if (!p->w16 || !p->bias) return NAS_ENOMEM;
    for (size_t k = 0; k < depth * (size_t)co; k++) p->w16[k] = wd[k];
    for (int oc = 0; oc < co; oc++) p->bias[oc] = bias ? bias[oc] : 0;
    *scratch = sizeof(int16_t) * depth * npix + sizeof(int32_t) * npix + npix + 3 * 64;
    return NAS_OK;
  }
  /* conv and depthwise (multiplier 1): int16 filters [Kh,Kw,(Ci,)Cop] and bias [Cop], zero in
   * the padding channels, so every channel loop runs whole vectors */
  const size_t taps = (size_t)c->kh * c->kw * (dw ? 1 : (size_t)c->ci);
  p->cop = cop;
  p->w16 = nas_calloc(taps * (size_t)cop, sizeof *p->w16);
  p->bias = nas_calloc((size_t)cop, sizeof *p->bias);
  if (!p->w16 || !p->bias) return NAS_ENOMEM;
  for (int oc = 0; oc < co; oc++) {
    p->bias[oc] = bias ? bias[oc] : 0;
    for (size_t t = 0; t < taps; t++) /* conv [Co,Kh,Kw,Ci], depthwise [1,Kh,Kw,Co] */
      p->w16[t * cop + oc] = dw ? wd[t * co + oc] : wd[(size_t)oc * taps + t];
  }
  if (dw) { /* the staged input: int16, zero point removed, zero border, Cop channels */
    p->stage_h = (c->ho - 1) * c->sh + (c->kh - 1) * c->dh + 1;
    p->stage_w = (c->wo - 1) * c->sw + (c->kw - 1) * c->dw + 1;
    *scratch += sizeof(int16_t) * (size_t)p->stage_h * (size_t)p->stage_w * (size_t)cop + 64;
  }
  return NAS_OK;
}

/* ---- the prepared graph ---------------------------------------------------------------- */

void nas_g8_prep_op_free(nas_g8_prep_op *p) {
  if (!p) return;
  free(p->mult), free(p->shift), free(p->ebias);
  free(p->rq.mult), free(p->rq.lmul), free(p->rq.rsh), free(p->rq.mask), free(p->w16),
      free(p->bias), free(p->wq), free(p->bq);
  free(p->wino_u), free(p->wino_i32), free(p->wino_i8);
  free(p->sp_mask), free(p->sp_values);
  memset(p, 0, sizeof *p);
}

int nas_g8_prep_op_build(const nas_g8_graph *g, const nas_g8_plan *plan, int i,
                         nas_g8_prep_op *p, size_t *scratch, nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  memset(p, 0, sizeof *p);
  *scratch = 0;
  int rc = NAS_OK;
  switch (op->kind) {
    case NAS_G8_CONV_2D:
    case NAS_G8_DEPTHWISE_CONV_2D: rc = prep_conv(g, plan, op, p); break;
    case NAS_G8_FULLY_CONNECTED: rc = prep_fc(g, plan, op, p); break;
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D: prep_pool(g, plan, op, p); break;
    case NAS_G8_ADD: prep_add(g, plan, op, p); break;
    case NAS_G8_SOFTMAX: prep_softmax(g, plan, op, p); break;
    case NAS_G8_QUANTIZE: prep_quantize(g, plan, op, p); break;
    case NAS_G8_RESHAPE: prep_reshape(g, plan, op, p); break;
    case NAS_G8_WINOGRAD: rc = prep_wino(g, plan, op, p, scratch); break;
    default: {
      if (nas_g8_is_rnn_kind(op->kind)) {
        rc = nas_g8_prep_rnn(g, plan, op, p);
        break;
      }
      const char *nm = nas_g8_op_name(op->kind);
      return nas_errf(e, NAS_EINVAL, "operator %d: unsupported op %s", i, nm ? nm : "?");
    }
  }
  const int sparse = g->sparse == 2 ? nas_g8_sparse_bytes(g, i, NULL) >= 0
                     : g->sparse && nas_g8_sparse_pick(g, i);
  if (rc == NAS_OK && sparse) rc = prep_sparse(g, i, p);
  else if (rc == NAS_OK && p->mult && p->rt_kind != NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM)
    rc = host_layout(p, scratch);
  if (rc != NAS_OK) {
    nas_g8_prep_op_free(p);
    return nas_errf(e, NAS_ENOMEM, "operator %d: out of memory preparing its constants", i);
  }
  return NAS_OK;
}

int nas_g8_prep_build(const nas_g8_graph *g, const nas_g8_plan *plan, nas_g8_prep *p, nas_err *e) {
  memset(p, 0, sizeof *p);
  p->op = nas_calloc((size_t)(g->nops > 0 ? g->nops : 1), sizeof *p->op);
  if (!p->op) return nas_errf(e, NAS_ENOMEM, "out of memory preparing %d operators", g->nops);
  p->nops = g->nops;
  for (int i = 0; i < g->nops; i++) {
    size_t sb = 0;
    int rc = nas_g8_prep_op_build(g, plan, i, &p->op[i], &sb, e);
    if (rc != NAS_OK) {
      nas_g8_prep_free(p);
      return rc;
    }
    if (sb > p->scratch_bytes) p->scratch_bytes = sb;
  }
  return NAS_OK;
}

void nas_g8_prep_free(nas_g8_prep *p) {
  if (!p) return;
  for (int i = 0; p->op && i < p->nops; i++) nas_g8_prep_op_free(&p->op[i]);
  free(p->op);
  memset(p, 0, sizeof *p);
}

nasrt_op nas_g8_prep_rt_op(const nas_g8_prep_op *p) {
  nasrt_op o = {p->rt_kind, nasrt_eval_of(p->rt_kind), &p->rt};
  return o;
}

size_t nas_g8_op_scratch(const nas_g8_graph *g, int i, int *optional) {
  const nas_g8_op *op = &g->ops[i];
  if (optional) *optional = 0;
  if (op->kind != NAS_G8_CONV_2D) return 0;
  const nas_g8_tensor *w = &g->tensors[op->in[1]];
  if (optional) *optional = w->dims[1] == 1 && w->dims[2] == 1; /* 1x1: reads the input as is */
  return (size_t)nasrt_conv_scratch_bytes(w->dims[1], w->dims[2], w->dims[3]);
}
