/* deploy/prep_rnn.c: validation, prepare and host execution of the recurrent operators (see
 * deploy/rnn8.h). The prepared parameters follow TFLite Micro's Prepare functions, with
 * TFLite's own precision where it matters: LOGISTIC/TANH take a frexp multiplier of
 * scale * 2^27 in double and an input radius; MUL multiplies the scales in double; SUB
 * computes its rescaling in float (TFLM's CalculateOpDataSub); the LSTM's effective scales are
 * float products (TFLite's PopulateQuantizedLstmParams8x8_16) quantised in double, and its
 * effective biases are bias - zero point * row sum (PrecomputeZeroPointTimesWeightWithBias). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "deploy/rnn8.h"

int nas_g8_is_rnn_kind(int kind) {
  return kind == NAS_G8_LOGISTIC || kind == NAS_G8_TANH || kind == NAS_G8_MUL ||
         kind == NAS_G8_SUB || kind == NAS_G8_STRIDED_SLICE ||
         kind == NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM || kind == NAS_G8_CONCATENATION;
}

/* CONCATENATION's outer iterations and each input's bytes per outer index. */
static void concat_sizes(const nas_g8_graph *g, const nas_g8_op *op, int *outer, int *n) {
  const nas_g8_tensor *y = &g->tensors[op->out];
  *outer = 1;
  for (int a = 0; a < op->axis; a++) *outer *= y->dims[a];
  for (int k = 0; k < op->nin; k++) {
    const nas_g8_tensor *x = &g->tensors[op->in[k]];
    n[k] = 1;
    for (int a = op->axis; a < x->ndim; a++) n[k] *= x->dims[a];
  }
}

int nas_g8_pot_log2(float scale, int *log2) {
  const float l = logf(scale) * (1.0f / logf(2.0f)), r = roundf(l);
  *log2 = (int)r;
  return fabsf(l - r) < 1e-3f;
}

/* ---- validation ---------------------------------------------------------------------------- */

static int fail(nas_err *e, int i, const nas_g8_op *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(nas_err *e, int i, const nas_g8_op *op, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return nas_errf(e, NAS_EINVAL, "operator %d (%s): %s", i, nas_g8_op_name(op->kind), msg);
}

static const nas_g8_tensor *in_t(const nas_g8_graph *g, const nas_g8_op *op, int k) {
  return k < op->nin && op->in[k] >= 0 ? &g->tensors[op->in[k]] : NULL;
}

/* A constant int8 per-tensor symmetric 2-D weight [rows, cols]. */
static int check_weight(const nas_g8_tensor *w, int rows, int cols) {
  return w && w->data && w->type == NAS_G8_INT8 && w->ndim == 2 && w->dims[0] == rows &&
         w->dims[1] == cols && w->nq == 1 && w->zero_point[0] == 0 && w->scale[0] > 0;
}

/* The output shape of a STRIDED_SLICE per axis before shrinking (TFLite's strided_slice_logic
 * for positive strides); *begin, *stride, *extent per axis of the input. */
static int slice_axes(const nas_g8_graph *g, const nas_g8_op *op, int *begin, int *stride,
                      int *extent, const char **why) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]];
  const nas_g8_tensor *tb = in_t(g, op, 1), *te = in_t(g, op, 2), *ts = in_t(g, op, 3);
  const int nd = x->ndim;
  *why = NULL;
  if (!tb || !te || !ts) return *why = "needs begin, end and strides", -1;
  for (int k = 0; k < 3; k++) {
    const nas_g8_tensor *v = k == 0 ? tb : k == 1 ? te : ts;
    if (!v->data || v->type != NAS_G8_INT32 || v->ndim != 1 || v->dims[0] != nd)
      return *why = "begin, end and strides must be constant int32 vectors of the input's rank", -1;
  }
  if (op->ellipsis_mask || op->new_axis_mask) return *why = "ellipsis and new-axis masks are not supported", -1;
  const int32_t *b = tb->data, *en = te->data, *s = ts->data;
  for (int a = 0; a < nd; a++) {
    const int dim = x->dims[a];
    if (s[a] < 1) return *why = "only positive strides are supported", -1;
    int lo = b[a], hi = en[a];
    if (op->begin_mask & (1 << a)) lo = 0;
    if (op->end_mask & (1 << a)) hi = dim;
    if (lo < 0) lo += dim;
    if (hi < 0) hi += dim;
    lo = lo < 0 ? 0 : lo > dim ? dim : lo;
    hi = hi < 0 ? 0 : hi > dim ? dim : hi;
    if (op->shrink_axis_mask & (1 << a)) {
      lo = b[a] < 0 ? b[a] + dim : b[a];
      if (lo < 0 || lo >= dim) return *why = "a shrunk axis' index is out of range", -1;
      hi = lo + 1;
    }
    begin[a] = lo, stride[a] = s[a];
    extent[a] = hi > lo ? (hi - lo + s[a] - 1) / s[a] : 0;
  }
  return 0;
}

static int validate_lstm(const nas_g8_graph *g, int i, const nas_g8_op *op, nas_err *e) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  if (op->nin != 20 && op->nin != 24) return fail(e, i, op, "%d inputs (20 or 24 expected)", op->nin);
  if (x->ndim != 3) return fail(e, i, op, "input '%s' must be 3-D", x->name);
  const int B = op->time_major ? x->dims[1] : x->dims[0], T = op->time_major ? x->dims[0] : x->dims[1];
  const int F = x->dims[2];
  const nas_g8_tensor *wo = in_t(g, op, NAS_LSTM_W_IN + 3);
  if (!wo || wo->ndim != 2) return fail(e, i, op, "missing input-to-output weights");
  const int H = wo->dims[0];
  for (int k = NAS_LSTM_PEEPHOLE; k < NAS_LSTM_PEEPHOLE + 3; k++)
    if (in_t(g, op, k)) return fail(e, i, op, "peephole connections are not supported");
  for (int k = NAS_LSTM_PROJ_W; k < NAS_LSTM_PROJ_W + 2; k++)
    if (in_t(g, op, k)) return fail(e, i, op, "projection is not supported");
  for (int k = NAS_LSTM_LAYER_NORM; k < op->nin; k++)
    if (in_t(g, op, k)) return fail(e, i, op, "layer normalisation is not supported");
  for (int gi = 0; gi < 4; gi++) {
    const nas_g8_tensor *wi = in_t(g, op, NAS_LSTM_W_IN + gi), *wr = in_t(g, op, NAS_LSTM_W_REC + gi);
    const nas_g8_tensor *b = in_t(g, op, NAS_LSTM_BIAS + gi);
    if (!wi && gi == 0) return fail(e, i, op, "coupled input and forget gates (CIFG) are not supported");
    if (!check_weight(wi, H, F))
      return fail(e, i, op, "input weights %d must be constant int8 [%d,%d], symmetric per tensor", gi, H, F);
    if (!check_weight(wr, H, H))
      return fail(e, i, op, "recurrent weights %d must be constant int8 [%d,%d], symmetric per tensor", gi, H, H);
    if (!b || !b->data || b->type != NAS_G8_INT32 || nas_g8_numel(b) != (size_t)H)
      return fail(e, i, op, "gate bias %d must be constant int32 with %d values", gi, H);
  }
  const nas_g8_tensor *hs = in_t(g, op, NAS_LSTM_HSTATE), *cs = in_t(g, op, NAS_LSTM_CSTATE);
  if (!hs || hs->data || !hs->variable || hs->type != NAS_G8_INT8 || nas_g8_numel(hs) != (size_t)B * H || hs->nq != 1)
    return fail(e, i, op, "the output state must be a variable int8 tensor of %d values", B * H);
  if (!cs || cs->data || !cs->variable || cs->type != NAS_G8_INT16 || nas_g8_numel(cs) != (size_t)B * H || cs->nq != 1)
    return fail(e, i, op, "the cell state must be a variable int16 tensor of %d values", B * H);
  int l2;
  if (cs->zero_point[0] != 0 || !nas_g8_pot_log2(cs->scale[0], &l2) || l2 < -15 || l2 > -9)
    return fail(e, i, op, "the cell state '%s' needs zero point 0 and a scale 2^k, -15 <= k <= -9", cs->name);
  if (op->nim != 5 || op->im[NAS_LSTM_HIDDEN_IM] < 0 || op->im[NAS_LSTM_HIDDEN_IM] >= g->ntensors ||
      g->tensors[op->im[NAS_LSTM_HIDDEN_IM]].nq < 1)
    return fail(e, i, op, "needs 5 intermediate tensors, the fifth quantised (the hidden state)");
  const int exp[3] = {op->time_major ? T : B, op->time_major ? B : T, H};
  if (y->ndim != 3 || memcmp(exp, y->dims, sizeof exp))
    return fail(e, i, op, "output '%s' must be [%d,%d,%d] (the whole sequence)", y->name, exp[0], exp[1], exp[2]);
  if (op->proj_clip != 0.0f && !(op->proj_clip > 0)) return fail(e, i, op, "bad projection clip");
  if (!(op->cell_clip >= 0) || !isfinite(op->cell_clip)) return fail(e, i, op, "bad cell clip");
  return NAS_OK;
}

int nas_g8_validate_rnn(const nas_g8_graph *g, int i, nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const size_t nx = nas_g8_numel(x), ny = nas_g8_numel(y);
  switch (op->kind) {
    case NAS_G8_LOGISTIC:
    case NAS_G8_TANH: {
      const int logi = op->kind == NAS_G8_LOGISTIC;
      if (nx != ny) return fail(e, i, op, "input and output sizes differ");
      if (y->scale[0] != (logi ? 1.0f / 256 : 1.0f / 128) || y->zero_point[0] != (logi ? -128 : 0))
        return fail(e, i, op, "output '%s' must have scale %s and zero point %d", y->name,
                    logi ? "1/256" : "1/128", logi ? -128 : 0);
      return NAS_OK;
    }
    case NAS_G8_MUL:
    case NAS_G8_SUB: {
      const nas_g8_tensor *b = in_t(g, op, 1);
      if (!b || b->type != NAS_G8_INT8 || b->nq != 1) return fail(e, i, op, "second input must be int8 per tensor");
      if (nas_g8_numel(b) != ny || nx != ny)
        return fail(e, i, op, "broadcasting is not supported (inputs must match the output shape)");
      if (x->data) return fail(e, i, op, "the first input '%s' is a constant", x->name);
      return NAS_OK;
    }
    case NAS_G8_STRIDED_SLICE: {
      int b[NAS_G8_MAXDIM], s[NAS_G8_MAXDIM], ext[NAS_G8_MAXDIM], dims[NAS_G8_MAXDIM], nd = 0;
      const char *why;
      if (x->ndim > 4) return fail(e, i, op, "at most 4 dimensions are supported");
      if (slice_axes(g, op, b, s, ext, &why)) return fail(e, i, op, "%s", why);
      for (int a = 0; a < x->ndim; a++)
        if (!(op->shrink_axis_mask & (1 << a))) dims[nd++] = ext[a];
      if (y->ndim != nd || memcmp(dims, y->dims, sizeof *dims * (size_t)nd))
        return fail(e, i, op, "output '%s' does not have the slice's shape", y->name);
      if (x->scale[0] != y->scale[0] || x->zero_point[0] != y->zero_point[0])
        return fail(e, i, op, "input and output quantisation differ");
      return NAS_OK;
    }
    case NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM: return validate_lstm(g, i, op, e);
    case NAS_G8_CONCATENATION: {
      if (op->nin < 1 || op->nin > 10) return fail(e, i, op, "%d inputs (1 to 10 supported)", op->nin);
      if (op->act != NAS_G8_ACT_NONE) return fail(e, i, op, "a fused activation is not supported");
      if (op->axis < 0 || op->axis >= y->ndim) return fail(e, i, op, "axis %d out of range", op->axis);
      int along = 0;
      for (int k = 0; k < op->nin; k++) {
        const nas_g8_tensor *t = in_t(g, op, k);
        if (!t || t->data || t->type != NAS_G8_INT8 || t->ndim != y->ndim || t->scale[0] != y->scale[0] ||
            t->zero_point[0] != y->zero_point[0])
          return fail(e, i, op, "input %d must be an int8 activation of the output's rank and quantisation", k);
        for (int a = 0; a < y->ndim; a++)
          if (a != op->axis && t->dims[a] != y->dims[a]) return fail(e, i, op, "input %d's shape does not fit", k);
        along += t->dims[op->axis];
      }
      if (along != y->dims[op->axis]) return fail(e, i, op, "the inputs do not add up to the output");
      return NAS_OK;
    }
    default: return fail(e, i, op, "unsupported op");
  }
}

/* ---- prepare ------------------------------------------------------------------------------- */

static int32_t off(const nas_g8_plan *plan, int t) { return plan ? (int32_t)plan->offset[t] : -1; }

static void prep_act(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]];
  nasrt_act_p *a = &p->rt.act;
  p->rt_kind = op->kind == NAS_G8_LOGISTIC ? NASRT_LOGISTIC : NASRT_TANH;
  a->in = off(plan, op->in[0]), a->out = off(plan, op->out);
  a->n = (int32_t)nas_g8_numel(x);
  a->in_zp = x->zero_point[0];
  const int int_bits = 4;
  const double real = (double)x->scale[0] * (double)(1 << (31 - int_bits));
  int shift;
  const double q = frexp(real, &shift);
  a->mult = (int32_t)round(q * 2147483648.0), a->shift = shift;
  const double radius = 1.0 * ((1 << int_bits) - 1) * (double)((int64_t)1 << (31 - int_bits)) /
                        ldexp(1.0, shift);
  a->radius = (int32_t)floor(radius);
}

static void prep_mul(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p) {
  const nas_g8_tensor *a = &g->tensors[op->in[0]], *b = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  nasrt_mul_p *m = &p->rt.mul;
  p->rt_kind = NASRT_MUL;
  m->a = a->data ? -1 : off(plan, op->in[0]), m->a_data = a->data;
  m->b = b->data ? -1 : off(plan, op->in[1]), m->b_data = b->data;
  m->out = off(plan, op->out);
  m->n = (int32_t)nas_g8_numel(y);
  m->a_off = -a->zero_point[0], m->b_off = -b->zero_point[0], m->out_zp = y->zero_point[0];
  int s;
  nas_q_quantize_multiplier((double)a->scale[0] * (double)b->scale[0] / (double)y->scale[0],
                            &m->mult, &s);
  m->shift = s;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &m->lo, &m->hi);
}

static void prep_sub(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p) {
  const nas_g8_tensor *a = &g->tensors[op->in[0]], *b = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  nasrt_add_p *d = &p->rt.add;
  p->rt_kind = NASRT_SUB;
  d->a = a->data ? -1 : off(plan, op->in[0]), d->a_data = a->data;
  d->b = b->data ? -1 : off(plan, op->in[1]), d->b_data = b->data;
  d->out = off(plan, op->out);
  d->n = (int32_t)nas_g8_numel(y);
  d->a_off = -a->zero_point[0], d->b_off = -b->zero_point[0], d->out_zp = y->zero_point[0];
  d->left_shift = 20;
  /* TFLM's CalculateOpDataSub: the ratios in float, widened to double */
  const float twice_max = 2 * (a->scale[0] > b->scale[0] ? a->scale[0] : b->scale[0]);
  const float ra = a->scale[0] / twice_max, rb = b->scale[0] / twice_max;
  const float ro = twice_max / ((float)(1 << d->left_shift) * y->scale[0]);
  int s1, s2, so;
  nas_q_quantize_multiplier((double)ra, &d->a_mult, &s1);
  nas_q_quantize_multiplier((double)rb, &d->b_mult, &s2);
  nas_q_quantize_multiplier((double)ro, &d->out_mult, &so);
  d->a_shift = s1, d->b_shift = s2, d->out_shift = so;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &d->lo, &d->hi);
}

static void prep_slice(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                       nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]];
  int b[NAS_G8_MAXDIM], s[NAS_G8_MAXDIM], ext[NAS_G8_MAXDIM];
  const char *why;
  slice_axes(g, op, b, s, ext, &why); /* validated */
  int D[4] = {1, 1, 1, 1}, O[4] = {1, 1, 1, 1}, B[4] = {0, 0, 0, 0}, S[4] = {1, 1, 1, 1};
  const int pad = 4 - x->ndim;
  for (int a = 0; a < x->ndim; a++)
    D[pad + a] = x->dims[a], O[pad + a] = ext[a], B[pad + a] = b[a], S[pad + a] = s[a];
  nasrt_slice_p *c = &p->rt.slice;
  p->rt_kind = NASRT_STRIDED_SLICE;
  c->in = off(plan, op->in[0]), c->out = off(plan, op->out);
  c->d0 = D[0], c->d1 = D[1], c->d2 = D[2], c->d3 = D[3];
  c->o0 = O[0], c->o1 = O[1], c->o2 = O[2], c->o3 = O[3];
  c->b0 = B[0], c->b1 = B[1], c->b2 = B[2], c->b3 = B[3];
  c->s0 = S[0], c->s1 = S[1], c->s2 = S[2], c->s3 = S[3];
}

static int prep_lstm(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                     nas_g8_prep_op *p) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *hs = &g->tensors[op->in[NAS_LSTM_HSTATE]];
  const nas_g8_tensor *cs = &g->tensors[op->in[NAS_LSTM_CSTATE]];
  const nas_g8_tensor *hid = &g->tensors[op->im[NAS_LSTM_HIDDEN_IM]];
  nasrt_lstm_p *l = &p->rt.lstm;
  p->rt_kind = NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM;
  const int F = x->dims[2], H = g->tensors[op->in[NAS_LSTM_W_IN]].dims[0];
  l->b = op->time_major ? x->dims[1] : x->dims[0], l->t = op->time_major ? x->dims[0] : x->dims[1];
  l->f = F, l->h = H, l->time_major = op->time_major;
  l->in = off(plan, op->in[0]), l->out = off(plan, op->out), l->cstate = off(plan, op->in[NAS_LSTM_CSTATE]);
  p->mult = nas_malloc(sizeof *p->mult * 8);
  p->shift = nas_malloc(8);
  p->ebias = nas_malloc(sizeof *p->ebias * 8 * (size_t)H);
  if (!p->mult || !p->shift || !p->ebias) return NAS_ENOMEM;
  const int8_t *w[8];
  /* effective scales in float, as TFLite: weight scale * input (or state) scale / 2^-12 */
  const float gate_scale = powf(2.0f, -12.0f);
  for (int k = 0; k < 8; k++) {
    const nas_g8_tensor *wt = &g->tensors[op->in[NAS_LSTM_W_IN + k]];
    w[k] = wt->data;
    const float eff = wt->scale[0] * (k < 4 ? x->scale[0] : hs->scale[0]) / gate_scale;
    int sh;
    nas_q_quantize_multiplier((double)eff, &p->mult[k], &sh);
    p->shift[k] = (int8_t)sh;
    const int32_t zp = k < 4 ? x->zero_point[0] : hs->zero_point[0];
    const int32_t *bias = k < 4 ? g->tensors[op->in[NAS_LSTM_BIAS + k]].data : NULL;
    const int cols = k < 4 ? F : H;
    for (int j = 0; j < H; j++) {
      int32_t rs = 0;
      for (int c = 0; c < cols; c++) rs += w[k][(size_t)j * cols + c];
      p->ebias[(size_t)k * H + j] = (bias ? bias[j] : 0) + rs * -zp;
    }
  }
  l->w_ii = w[0], l->w_if = w[1], l->w_ic = w[2], l->w_io = w[3];
  l->w_ri = w[4], l->w_rf = w[5], l->w_rc = w[6], l->w_ro = w[7];
  l->bias = p->ebias, l->mult = p->mult, l->shift = p->shift;
  const float hid_scale = powf(2.0f, -15.0f) / hid->scale[0] * powf(2.0f, -15.0f);
  int sh;
  nas_q_quantize_multiplier((double)hid_scale, &l->hid_mult, &sh);
  l->hid_shift = sh, l->hid_zp = hid->zero_point[0];
  int l2 = 0;
  nas_g8_pot_log2(cs->scale[0], &l2);
  l->cell_shift = l2;
  if (op->cell_clip > 0.0f) {
    float q = op->cell_clip / cs->scale[0];
    q = q < -32768.0f ? -32768.0f : q > 32767.0f ? 32767.0f : q;
    l->cell_clip = (int16_t)q;
  }
  return NAS_OK;
}

int nas_g8_prep_rnn(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                    nas_g8_prep_op *p) {
  switch (op->kind) {
    case NAS_G8_LOGISTIC:
    case NAS_G8_TANH: prep_act(g, plan, op, p); return NAS_OK;
    case NAS_G8_MUL: prep_mul(g, plan, op, p); return NAS_OK;
    case NAS_G8_SUB: prep_sub(g, plan, op, p); return NAS_OK;
    case NAS_G8_STRIDED_SLICE: prep_slice(g, plan, op, p); return NAS_OK;
    case NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM: return prep_lstm(g, plan, op, p);
    case NAS_G8_CONCATENATION: {
      int outer, n[10] = {0}, in[10] = {0};
      concat_sizes(g, op, &outer, n);
      for (int k = 0; k < op->nin; k++) in[k] = off(plan, op->in[k]);
      nasrt_concat_p *c = &p->rt.concat;
      p->rt_kind = NASRT_CONCATENATION;
      c->out = off(plan, op->out), c->count = op->nin, c->outer = outer;
      c->in0 = in[0], c->in1 = in[1], c->in2 = in[2], c->in3 = in[3], c->in4 = in[4];
      c->in5 = in[5], c->in6 = in[6], c->in7 = in[7], c->in8 = in[8], c->in9 = in[9];
      c->n0 = n[0], c->n1 = n[1], c->n2 = n[2], c->n3 = n[3], c->n4 = n[4];
      c->n5 = n[5], c->n6 = n[6], c->n7 = n[7], c->n8 = n[8], c->n9 = n[9];
      return NAS_OK;
    }
    default: return NAS_EINVAL;
  }
}

/* ---- host execution ------------------------------------------------------------------------ */

static const int8_t *tdata(const nas_g8_graph *g, int8_t *const *act, int t) {
  return act[t] ? act[t] : (const int8_t *)g->tensors[t].data;
}

int nas_g8_run_rnn(const nas_g8_graph *g, const nas_g8_prep_op *pp, int i, int8_t *const *act,
                   nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  const int8_t *in = tdata(g, act, op->in[0]);
  int8_t *out = act[op->out];
  switch (pp->rt_kind) {
    case NASRT_LOGISTIC: nasrt_logistic(&pp->rt.act, in, out); return NAS_OK;
    case NASRT_TANH: nasrt_tanh(&pp->rt.act, in, out); return NAS_OK;
    case NASRT_MUL: nasrt_elmul(&pp->rt.mul, in, tdata(g, act, op->in[1]), out); return NAS_OK;
    case NASRT_SUB: nasrt_sub(&pp->rt.add, in, tdata(g, act, op->in[1]), out); return NAS_OK;
    case NASRT_STRIDED_SLICE: nasrt_slice(&pp->rt.slice, in, out); return NAS_OK;
    case NASRT_CONCATENATION: { /* the runtime's copies, on the host's pointers */
      int outer, n[10];
      concat_sizes(g, op, &outer, n);
      for (int k = 0; k < outer; k++)
        for (int j = 0; j < op->nin; j++) {
          memmove(out, act[op->in[j]] + (size_t)k * (size_t)n[j], (size_t)n[j]);
          out += n[j];
        }
      return NAS_OK;
    }
    case NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM:
      nasrt_lstm(&pp->rt.lstm, in, out, (int16_t *)(void *)act[op->in[NAS_LSTM_CSTATE]]);
      return NAS_OK;
    default:
      return nas_errf(e, NAS_EINVAL, "operator %d: unsupported op %s", i,
                      nas_g8_op_name(op->kind) ? nas_g8_op_name(op->kind) : "?");
  }
}
