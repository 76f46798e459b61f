/* deploy/lower_rnn.c: lowering of the recurrent layers (see deploy/lower.h).
 *
 * lstm -> one UNIDIRECTIONAL_SEQUENCE_LSTM in TFLite's integer form, laid out as TFLite's
 * converter writes it: 24 inputs (per-gate int8 weights, symmetric per tensor; int32 gate
 * biases b_ih + b_hh with scale input_scale * input-weight scale; a variable int8 output state
 * and a variable int16 cell state), 5 intermediates (four empty float placeholders, the fifth
 * the hidden state's quantisation), the whole output sequence [1,T,H], options TANH and no
 * clipping. The hidden state is quantised symmetrically (zero point 0, scale max|h| / 127 over
 * every step of the calibration): TFLite 2.9 subtracts the hidden intermediate's zero point
 * where it should add it, which a zero zero point makes harmless. The cell state's scale is
 * 2^(k-15) with 2^k >= max|c| (k in 0..6). A layer that returns its last step only is
 * followed by a STRIDED_SLICE of that step (shrinking the time axis).
 *
 * gru -> unrolled into TFLite builtins (TFLite has no GRU operator): the input projections
 * of all steps as three FULLY_CONNECTED (r, z, n gates; biases b_ir + b_hr, b_iz + b_hz, b_in),
 * then per step t a STRIDED_SLICE of each projection's row t and
 *   t = 0: r = LOGISTIC(gxr), z = LOGISTIC(gxz), m = MUL(r, b_hn), n = TANH(ADD(gxn, m)),
 *          e = MUL(z, n), h = SUB(n, e)
 *   t > 0: ghr, ghz, ghn = FULLY_CONNECTED(h) (ghn with bias b_hn), r = LOGISTIC(ADD(gxr, ghr)),
 *          z = LOGISTIC(ADD(gxz, ghz)), m = MUL(r, ghn), n = TANH(ADD(gxn, m)),
 *          d = SUB(h, n), e = MUL(z, d), h' = ADD(n, e)
 * which is PyTorch's h' = (1 - z) n + z h. Every intermediate is int8 with the calibrated range
 * of its internal point (train/quant.h), shared by all steps. A layer that returns the whole
 * sequence concatenates the steps' h (CONCATENATION of at most 10 tensors at a time, as TFLite
 * Micro allows) and reshapes them to [1,T,H]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "deploy/lower_impl.h"
#include "train/ops.h"

/* The calibrated range of internal point k of recurrent node i. */
static int sub_range(lw *L, int i, int k, float *lo, float *hi) {
  const nas_calib *c = L->c;
  if (!c->sub || c->sub[i] < 0 || c->nsub <= c->sub[i] + k)
    return nas_lw_lerr(L, i, NAS_EINVAL, "no calibrated ranges inside the recurrent cell "
                                         "(calibrate this network again)");
  *lo = c->sub_lo[c->sub[i] + k], *hi = c->sub_hi[c->sub[i] + k];
  return NAS_OK;
}

/* An int8 activation [dims] quantised for [lo, hi]; symmetric (zero point 0) when sym. */
static int range_tensor(lw *L, const char *name, int nd, const int *dims, float lo, float hi,
                        int sym) {
  int t = nas_lw_add_tensor(L, name, NAS_G8_INT8, nd, dims, 1);
  if (t < 0) return -1;
  nas_g8_tensor *x = &L->g->tensors[t];
  if (sym) {
    float m = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
    x->scale[0] = m > 0 ? m / 127.0f : 1.0f / 127.0f, x->zero_point[0] = 0;
  } else {
    nas_q_choose(lo, hi, &x->scale[0], &x->zero_point[0]);
  }
  return t;
}

/* An activation with a fixed quantisation (LOGISTIC 1/256 and -128, TANH 1/128 and 0). */
static int fixed_tensor(lw *L, const char *name, int nd, const int *dims, float scale, int zp) {
  int t = nas_lw_add_tensor(L, name, NAS_G8_INT8, nd, dims, 1);
  if (t < 0) return -1;
  L->g->tensors[t].scale[0] = scale, L->g->tensors[t].zero_point[0] = zp;
  return t;
}

/* Rows [r0, r0+rows) of the float matrix w [.., cols] as per-tensor symmetric int8 weights. */
static int weight_block(lw *L, const char *name, const float *w, int r0, int rows, int cols,
                        float *scale) {
  const size_t n = (size_t)rows * cols;
  int8_t *q = nas_malloc(n);
  if (!q) return nas_lw_oom(L), -1;
  nas_q_weights(w + (size_t)r0 * cols, 1, (int)n, 0, 1, q, scale);
  int dims[2] = {rows, cols};
  int t = nas_lw_weight_tensor(L, name, 2, dims, q, scale, 1, 0);
  free(q);
  return t;
}

/* Bias b1[r0..) (+ b2[r0..) when given) quantised with in_scale * w_scale. */
static int bias_block(lw *L, const char *name, const float *b1, const float *b2, int r0, int rows,
                      float in_scale, float w_scale) {
  float *b = nas_calloc((size_t)rows, sizeof *b);
  if (!b) return nas_lw_oom(L), -1;
  for (int r = 0; r < rows; r++) b[r] = (b1 ? b1[r0 + r] : 0.0f) + (b2 ? b2[r0 + r] : 0.0f);
  int t = nas_lw_bias_tensor(L, name, rows, b, in_scale, &w_scale, 0);
  free(b);
  return t;
}

/* A constant int32 vector (slice begin/end/strides). */
static int i32_const(lw *L, const char *name, int n, const int *v) {
  int dims[1] = {n};
  int t = nas_lw_add_tensor(L, name, NAS_G8_INT32, 1, dims, 0);
  if (t < 0) return -1;
  nas_g8_tensor *x = &L->g->tensors[t];
  x->data = nas_malloc(sizeof(int32_t) * (size_t)n);
  if (!x->data) return nas_lw_oom(L), -1;
  for (int k = 0; k < n; k++) ((int32_t *)x->data)[k] = v[k];
  return t;
}

/* y = x[begin .. begin+extent) per axis (stride 1); shrink: axis mask dropped from y. */
static int slice(lw *L, const char *name, int x, const int *begin, const int *extent,
                 int shrink, int ynd, const int *ydims) {
  const nas_g8_tensor *xt = &L->g->tensors[x];
  const int nd = xt->ndim;
  int end[NAS_G8_MAXDIM], one[NAS_G8_MAXDIM];
  for (int a = 0; a < nd; a++) end[a] = begin[a] + extent[a], one[a] = 1;
  char nm[64];
  nas_lw_tname(nm, sizeof nm, name, ".begin");
  int tb = i32_const(L, nm, nd, begin);
  nas_lw_tname(nm, sizeof nm, name, ".end");
  int te = tb < 0 ? -1 : i32_const(L, nm, nd, end);
  nas_lw_tname(nm, sizeof nm, name, ".strides");
  int ts = te < 0 ? -1 : i32_const(L, nm, nd, one);
  int y = ts < 0 ? -1 : nas_lw_same_q_tensor(L, name, x, ynd, ydims);
  if (y < 0) return -1;
  int oi = nas_lw_add_op(L, NAS_G8_STRIDED_SLICE, y, 3, x, tb, te);
  if (oi < 0) return -1;
  nas_g8_op *op = &L->g->ops[oi];
  op->nin = 4, op->in[3] = ts, op->shrink_axis_mask = shrink;
  return y;
}

/* An operator with two inputs and an output tensor of its own; returns the output. */
static int binop(lw *L, int kind, int a, int b, int y) {
  if (y < 0 || nas_lw_add_op(L, kind, y, 2, a, b, -1) < 0) return -1;
  return y;
}

/* ---- LSTM ---------------------------------------------------------------------------------- */

static int lower_lstm(lw *L, int i) {
  const nas_node *n = &L->fg->nodes[i];
  const nas_node *wi = &L->fg->nodes[n->in[1]], *wh = &L->fg->nodes[n->in[2]];
  const float *bi = n->n_in == 5 ? L->fg->nodes[n->in[3]].val : NULL;
  const float *bh = n->n_in == 5 ? L->fg->nodes[n->in[4]].val : NULL;
  const int x = nas_lw_input_of(L, i, 0);
  if (x < 0) return -1;
  const nas_g8_tensor *xt = &L->g->tensors[x];
  if (xt->ndim != 3) return nas_lw_lerr(L, i, NAS_EINVAL, "the input must be a sequence [1,T,F]");
  const int T = xt->dims[1], F = xt->dims[2], H = wh->shape.d[1];
  const float in_scale = xt->scale[0];
  float hlo = 0, hhi = 0, clo = 0, chi = 0;
  if (sub_range(L, i, NAS_LSTM_P_H, &hlo, &hhi) || sub_range(L, i, NAS_LSTM_P_C, &clo, &chi))
    return -1;
  char nm[64], base[48];
  snprintf(base, sizeof base, "%s", n->name);
  int ins[NAS_G8_MAXIN];
  for (int k = 0; k < NAS_G8_MAXIN; k++) ins[k] = -1;
  ins[0] = x;
  static const char *const gate[4] = {"i", "f", "c", "o"};
  for (int g = 0; g < 4; g++) {
    float ws, rs;
    snprintf(nm, sizeof nm, "%.40s.w_ih.%s", base, gate[g]);
    if ((ins[1 + g] = weight_block(L, nm, wi->val, g * H, H, F, &ws)) < 0) return -1;
    snprintf(nm, sizeof nm, "%.40s.w_hh.%s", base, gate[g]);
    if ((ins[5 + g] = weight_block(L, nm, wh->val, g * H, H, H, &rs)) < 0) return -1;
    snprintf(nm, sizeof nm, "%.40s.bias.%s", base, gate[g]);
    if ((ins[12 + g] = bias_block(L, nm, bi, bh, g * H, H, in_scale, ws)) < 0) return -1;
  }
  const int sd[2] = {1, H}, od[3] = {1, T, H}, empty[1] = {0};
  nas_lw_tname(nm, sizeof nm, base, ".output_state");
  const int hs = range_tensor(L, nm, 2, sd, hlo, hhi, 1);
  if (hs < 0) return -1;
  nas_lw_tname(nm, sizeof nm, base, ".cell_state");
  const int cs = nas_lw_add_tensor(L, nm, NAS_G8_INT16, 2, sd, 1);
  if (cs < 0) return -1;
  float cmax = fabsf(clo) > fabsf(chi) ? fabsf(clo) : fabsf(chi);
  int k = cmax > 1.0f ? (int)ceilf(log2f(cmax)) : 0;
  k = k < 0 ? 0 : k > 6 ? 6 : k;
  L->g->tensors[hs].variable = L->g->tensors[cs].variable = 1;
  L->g->tensors[cs].scale[0] = ldexpf(1.0f, k - 15);
  ins[18] = hs, ins[19] = cs;
  int im[5];
  static const char *const imn[4] = {".input_to_input_intermediate", ".input_to_forget_intermediate",
                                     ".input_to_cell_intermediate", ".input_to_output_intermediate"};
  for (int q = 0; q < 4; q++) {
    nas_lw_tname(nm, sizeof nm, base, imn[q]);
    if ((im[q] = nas_lw_add_tensor(L, nm, NAS_G8_FLOAT32, 1, empty, 0)) < 0) return -1;
  }
  nas_lw_tname(nm, sizeof nm, base, ".effective_hidden_scale_intermediate");
  if ((im[4] = nas_lw_same_q_tensor(L, nm, hs, 1, empty)) < 0) return -1;
  const int y = nas_lw_same_q_tensor(L, base, hs, 3, od);
  if (y < 0) return -1;
  const int oi = nas_lw_add_op(L, NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM, y, 3, -1, -1, -1);
  if (oi < 0) return -1;
  nas_g8_op *op = &L->g->ops[oi];
  op->nin = 24;
  memcpy(op->in, ins, sizeof ins);
  op->nim = 5;
  memcpy(op->im, im, sizeof im);
  op->act = NAS_G8_ACT_TANH;
  int out = y;
  if (!n->p.kh) { /* last step only: y[:, T-1, :] with the time axis shrunk */
    const int b[3] = {0, T - 1, 0}, ext[3] = {1, 1, H};
    nas_lw_tname(nm, sizeof nm, base, ".last");
    if ((out = slice(L, nm, y, b, ext, 2, 2, sd)) < 0) return -1;
  }
  L->tmap[i] = out;
  return 0;
}

/* ---- GRU ----------------------------------------------------------------------------------- */

/* Concatenates the steps' h [1,H] (all quantised alike) into [1,T,H]. */
static int concat_steps(lw *L, const char *base, const int *hs, int T, int H) {
  char nm[64];
  int level[64], nl = 0, cur[64], nc = T, round = 0;
  memcpy(cur, hs, sizeof *cur * (size_t)T);
  int rows[64];
  for (int k = 0; k < T; k++) rows[k] = 1;
  while (nc > 1) { /* groups of at most 10 along axis 0 */
    nl = 0;
    int nrows[64];
    for (int g0 = 0; g0 < nc; g0 += 10) {
      const int cnt = nc - g0 < 10 ? nc - g0 : 10;
      int r = 0;
      for (int k = 0; k < cnt; k++) r += rows[g0 + k];
      const int d[2] = {r, H};
      snprintf(nm, sizeof nm, "%.36s.seq%d_%d", base, round, g0 / 10);
      const int y = nas_lw_same_q_tensor(L, nm, cur[g0], 2, d);
      if (y < 0) return -1;
      const int oi = nas_lw_add_op(L, NAS_G8_CONCATENATION, y, 1, cur[g0], -1, -1);
      if (oi < 0) return -1;
      nas_g8_op *op = &L->g->ops[oi];
      op->nin = cnt;
      for (int k = 0; k < cnt; k++) op->in[k] = cur[g0 + k];
      op->axis = 0;
      level[nl] = y, nrows[nl] = r, nl++;
    }
    memcpy(cur, level, sizeof *cur * (size_t)nl);
    memcpy(rows, nrows, sizeof *rows * (size_t)nl);
    nc = nl, round++;
  }
  const int d3[3] = {1, T, H};
  const int y = nas_lw_same_q_tensor(L, base, cur[0], 3, d3);
  if (y < 0 || nas_lw_add_op(L, NAS_G8_RESHAPE, y, 1, cur[0], -1, -1) < 0) return -1;
  return y;
}

static int lower_gru(lw *L, int i) {
  const nas_node *n = &L->fg->nodes[i];
  const nas_node *wi = &L->fg->nodes[n->in[1]], *wh = &L->fg->nodes[n->in[2]];
  const float *bi = n->n_in == 5 ? L->fg->nodes[n->in[3]].val : NULL;
  const float *bh = n->n_in == 5 ? L->fg->nodes[n->in[4]].val : NULL;
  const int x = nas_lw_input_of(L, i, 0);
  if (x < 0) return -1;
  const nas_g8_tensor *xt = &L->g->tensors[x];
  if (xt->ndim != 3) return nas_lw_lerr(L, i, NAS_EINVAL, "the input must be a sequence [1,T,F]");
  const int T = xt->dims[1], F = xt->dims[2], H = wh->shape.d[1];
  const float in_scale = xt->scale[0]; /* xt dangles once a tensor is added (realloc) */
  if (T > 64) return nas_lw_lerr(L, i, NAS_EINVAL, "%d steps: at most 64 are supported", T);
  float lo[NAS_GRU_NPOINTS], hi[NAS_GRU_NPOINTS];
  for (int k = 0; k < NAS_GRU_NPOINTS; k++)
    if (sub_range(L, i, k, &lo[k], &hi[k])) return -1;
  char nm[64], base[40];
  snprintf(base, sizeof base, "%.36s", n->name);
  const int d1[2] = {1, H}, dT[2] = {T, H};
  /* input projections of all steps; recurrent weights */
  int gx[3], wr[3];
  float wrs[3];
  static const char *const gn[3] = {"r", "z", "n"};
  static const int gp[3] = {NAS_GRU_P_GXR, NAS_GRU_P_GXZ, NAS_GRU_P_GXN};
  for (int g = 0; g < 3; g++) {
    float ws;
    snprintf(nm, sizeof nm, "%s.w_ih.%s", base, gn[g]);
    const int w = weight_block(L, nm, wi->val, g * H, H, F, &ws);
    snprintf(nm, sizeof nm, "%s.b_ih.%s", base, gn[g]);
    const int b = w < 0 ? -1 : bias_block(L, nm, bi, g < 2 ? bh : NULL, g * H, H, in_scale, ws);
    snprintf(nm, sizeof nm, "%s.gx%s", base, gn[g]);
    gx[g] = b < 0 ? -1 : range_tensor(L, nm, 2, dT, lo[gp[g]], hi[gp[g]], 0);
    if (gx[g] < 0 || nas_lw_add_op(L, NAS_G8_FULLY_CONNECTED, gx[g], 3, x, w, b) < 0) return -1;
    snprintf(nm, sizeof nm, "%s.w_hh.%s", base, gn[g]);
    if ((wr[g] = weight_block(L, nm, wh->val, g * H, H, H, &wrs[g])) < 0) return -1;
  }
  /* b_hn as an int8 constant (step 0's recurrent n term) */
  float blo = 0, bhi = 0;
  for (int j = 0; bh && j < H; j++) {
    const float v = bh[2 * H + j];
    blo = v < blo ? v : blo, bhi = v > bhi ? v : bhi;
  }
  snprintf(nm, sizeof nm, "%s.b_hn", base);
  const int bhn_c = nas_lw_add_tensor(L, nm, NAS_G8_INT8, 2, d1, 1);
  if (bhn_c < 0) return -1;
  {
    nas_g8_tensor *t = &L->g->tensors[bhn_c];
    nas_q_choose(blo, bhi, &t->scale[0], &t->zero_point[0]);
    int8_t *q = nas_malloc((size_t)H);
    if (!q) return nas_lw_oom(L), -1;
    for (int j = 0; j < H; j++) q[j] = nas_q_int8(bh ? bh[2 * H + j] : 0.0f, t->scale[0], t->zero_point[0]);
    t->data = q;
  }
  int hs[64], h = -1, bhn_q = -1;
  for (int t = 0; t < T; t++) {
    const int bt[2] = {t, 0}, ext[2] = {1, H};
    int xs[3];
    for (int g = 0; g < 3; g++) {
      snprintf(nm, sizeof nm, "%s.t%d.gx%s", base, t, gn[g]);
      if ((xs[g] = slice(L, nm, gx[g], bt, ext, 0, 2, d1)) < 0) return -1;
    }
#define STEP_T(var, pt, suffix)                                                   \
  snprintf(nm, sizeof nm, "%s.t%d.%s", base, t, suffix);                          \
  const int var = range_tensor(L, nm, 2, d1, lo[pt], hi[pt], 0);                  \
  if (var < 0) return -1
#define FIXED_T(var, sc, zp, suffix)                                              \
  snprintf(nm, sizeof nm, "%s.t%d.%s", base, t, suffix);                          \
  const int var = fixed_tensor(L, nm, 2, d1, sc, zp);                             \
  if (var < 0) return -1
    int ar = xs[0], az = xs[1], ghn = bhn_c;
    if (t > 0) {
      STEP_T(ghr, NAS_GRU_P_GHR, "ghr");
      STEP_T(ghz, NAS_GRU_P_GHZ, "ghz");
      STEP_T(ghn_t, NAS_GRU_P_GHN, "ghn");
      if (bhn_q < 0) {
        snprintf(nm, sizeof nm, "%s.b_hh.n", base);
        if ((bhn_q = bias_block(L, nm, bh, NULL, 2 * H, H, L->g->tensors[h].scale[0], wrs[2])) < 0)
          return -1;
      }
      if (nas_lw_add_op(L, NAS_G8_FULLY_CONNECTED, ghr, 2, h, wr[0], -1) < 0 ||
          nas_lw_add_op(L, NAS_G8_FULLY_CONNECTED, ghz, 2, h, wr[1], -1) < 0 ||
          nas_lw_add_op(L, NAS_G8_FULLY_CONNECTED, ghn_t, 3, h, wr[2], bhn_q) < 0)
        return -1;
      STEP_T(art, NAS_GRU_P_AR, "ar");
      STEP_T(azt, NAS_GRU_P_AZ, "az");
      if (binop(L, NAS_G8_ADD, xs[0], ghr, art) < 0 || binop(L, NAS_G8_ADD, xs[1], ghz, azt) < 0)
        return -1;
      ar = art, az = azt, ghn = ghn_t;
    }
    FIXED_T(r, 1.0f / 256, -128, "r");
    FIXED_T(z, 1.0f / 256, -128, "z");
    if (nas_lw_add_op(L, NAS_G8_LOGISTIC, r, 1, ar, -1, -1) < 0 ||
        nas_lw_add_op(L, NAS_G8_LOGISTIC, z, 1, az, -1, -1) < 0)
      return -1;
    STEP_T(m, NAS_GRU_P_M, "m");
    STEP_T(an, NAS_GRU_P_AN, "an");
    FIXED_T(nn, 1.0f / 128, 0, "n");
    if (binop(L, NAS_G8_MUL, r, ghn, m) < 0 || binop(L, NAS_G8_ADD, xs[2], m, an) < 0 ||
        nas_lw_add_op(L, NAS_G8_TANH, nn, 1, an, -1, -1) < 0)
      return -1;
    STEP_T(e, NAS_GRU_P_E, "e");
    STEP_T(hn, NAS_GRU_P_H, "h");
    if (t == 0) {
      if (binop(L, NAS_G8_MUL, z, nn, e) < 0 || binop(L, NAS_G8_SUB, nn, e, hn) < 0) return -1;
    } else {
      STEP_T(d, NAS_GRU_P_D, "d");
      if (binop(L, NAS_G8_SUB, h, nn, d) < 0 || binop(L, NAS_G8_MUL, z, d, e) < 0 ||
          binop(L, NAS_G8_ADD, nn, e, hn) < 0)
        return -1;
    }
#undef STEP_T
#undef FIXED_T
    hs[t] = h = hn;
  }
  L->tmap[i] = n->p.kh ? concat_steps(L, base, hs, T, H) : h;
  return L->tmap[i] < 0 ? -1 : 0;
}

int nas_lw_lower_rnn(lw *L, int i) {
  return L->fg->nodes[i].op == NAS_OP_LSTM ? lower_lstm(L, i) : lower_gru(L, i);
}
