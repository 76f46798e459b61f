/* train/ops_rnn.c: fused LSTM and GRU layers (unidirectional, batch-first, zero initial
 * state) with backpropagation through time. Forward and backward side by side.
 *
 * Layouts (PyTorch's, so weights compare directly with torch.nn.LSTM / torch.nn.GRU):
 *   x     [N,T,F]          sequence, batch first
 *   w_ih  [G*H,F]          input weights, gate blocks stacked (LSTM G=4: i,f,g,o; GRU G=3: r,z,n)
 *   w_hh  [G*H,H]          recurrent weights, same gate order
 *   b_ih, b_hh [G*H]       optional (both or neither)
 *   y     [N,T,H] (p.kh = 1, return every step) or [N,H] (p.kh = 0, last step only)
 *
 * Forward: one sgemm projects every time step at once (x as [N*T,F] times w_ih^T), then one
 * sgemm per step adds the recurrent part (h_{t-1} [N,H] times w_hh^T; strided views into the
 * [N,T,.] buffers, no copies) before the element-wise gate math.
 *
 * Saved from forward to backward (node->saved, sized at max batch):
 *   LSTM: gates [N,T,4H] (activated i,f,g,o), c [N,T,H], tanh(c) [N,T,H], h [N,T,H]
 *   GRU:  gates [N,T,3H] (activated r,z,n), hn [N,T,H] (W_hn h_{t-1} + b_hn), h [N,T,H]
 * Scratch (shared, transient):
 *   LSTM backward: dG [N,T,4H], dh [N,H], dc [N,H], h shifted one step [N,T,H], zeros [H]
 *        (forward uses only the zero row, as c_{-1})
 *   GRU forward: gh [N,3H], zeros [H] (h_{-1}); backward: dGx [N,T,3H], dGh [N,T,3H], dh [N,H],
 *        shifted h [N,T,H]
 * QAT (LSTM only, p.kw = 1, see "LSTM with fake quantisation" below): the last input is a
 * STATE of ranges and the cell is fake-quantised where deploy/'s integer LSTM quantises.
 * Backward runs the steps in reverse; the weight gradients of the input projection (and dx)
 * and of the recurrent weights (against h shifted by one step) are again single sgemms over
 * all steps; only dh_{t-1} = dG_t w_hh is one sgemm per step. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "train/ops_impl.h"

/* The gate loops only vectorise without -ftrapping-math (GCC will not turn the clamp's
 * comparisons into selects while FP traps are assumed observable); the engine never enables
 * FP exceptions, so this file drops that assumption. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
/* Keeps a row function out of the OpenMP-outlined loop body, where GCC 12 did not
 * vectorise it. */
#if defined(__GNUC__)
#define RNN_NOINLINE __attribute__((noinline))
#else
#define RNN_NOINLINE
#endif

/* Parallelise element-wise loops only when there is enough work. */
#define RNN_PAR_MIN 2048

/* p.kw = 1: the last input is the QAT ranges STATE (LSTM). */
static int rnn_qat(const nas_node *nd) { return nd->p.kw == 1; }
/* The quantisers of one QAT LSTM pass (saved for its backward). */
typedef struct lstm_q {
  int on_h, on_c; /* the point's range is set (else it is not quantised) */
  float hs, cs;   /* hidden scale (int8 symmetric), cell scale 2^(k-15) (int16) */
} lstm_q;

/* 1 when the layer has both biases (inputs 3 and 4). */
static int rnn_biased(const nas_node *nd) { return nd->n_in - rnn_qat(nd) == 5; }

/* exp(x) for the gate nonlinearities: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, a
 * degree-6 polynomial for e^r (relative error < 2e-7) and 2^k through the exponent bits.
 * Branch-free so the gate loops vectorise; libm's expf/tanhf took 40% of an LSTM step.
 * The clamp is written with comparisons, not fminf/fmaxf: without -ffinite-math-only GCC
 * keeps those as libm calls (their NaN rules differ from minps/maxps), which kept the
 * forward gate loop scalar (a third of an lstm-kws step in perf). A NaN input stays NaN
 * (fminf/fmaxf turned it into exp(-87)), so a diverging run is still reported. */
static inline float rnn_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float k = floorf(x * 1.44269504f + 0.5f);
  float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f +
                 r * (8.33333333e-3f + r * 1.38888889e-3f)))));
  int32_t bits = ((int32_t)k + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float sigm(float v) { return 1.0f / (1.0f + rnn_exp(-v)); }
/* tanh(v) = 2 sigmoid(2v) - 1 (absolute error ~1e-7) */
static inline float rnn_tanh(float v) { return 2.0f / (1.0f + rnn_exp(-2.0f * v)) - 1.0f; }

/* Shared shape inference. gates: 4 (LSTM) or 3 (GRU). Sets the output shape and returns H. */
static int rnn_infer(nas_graph *g, nas_node *nd, int gates, nas_err *e) {
  const char *name = nas_op_name(nd->op);
  const nas_node *x = op_in(g, nd, 0), *wi = op_in(g, nd, 1), *wh = op_in(g, nd, 2);
  char b[64];
  if (nd->p.kw != 0 && !(nd->p.kw == 1 && gates == 4))
    return nas_errf(e, NAS_EINVAL, "%s: the QAT flag (p.kw) must be 0%s", name,
                    gates == 4 ? " or 1" : " (no QAT for this cell)"), -1;
  const int nb = nd->n_in - rnn_qat(nd); /* inputs without the QAT ranges */
  if (nb == 4 || nb < 3)
    return nas_errf(e, NAS_EINVAL, "%s: give both biases (b_ih, b_hh) or neither", name), -1;
  if (rnn_qat(nd)) {
    const nas_node *r = op_in(g, nd, nd->n_in - 1);
    if (r->kind != NAS_NODE_STATE || r->batched || nas_shape_numel(&r->shape) != 6)
      return nas_errf(e, NAS_EINVAL, "%s: the QAT ranges (last input) must be a STATE of 6 values",
                      name), -1;
    if (nd->p.momentum < 0 || nd->p.momentum >= 1)
      return nas_errf(e, NAS_EINVAL, "%s: EMA decay %g must be in [0,1)", name,
                      (double)nd->p.momentum), -1;
  }
  if (x->shape.nd != 3)
    return nas_errf(e, NAS_EINVAL, "%s: input must be a sequence [N,T,F], got %s", name,
                    nas_shape_str(&x->shape, b, sizeof b)),
           -1;
  int F = x->shape.d[2];
  if (wh->shape.nd != 2 || wh->shape.d[0] % gates || wh->shape.d[0] / gates != wh->shape.d[1])
    return nas_errf(e, NAS_EINVAL, "%s: w_hh must be [%d*H,H], got %s", name, gates,
                    nas_shape_str(&wh->shape, b, sizeof b)),
           -1;
  int H = wh->shape.d[1];
  if (wi->shape.nd != 2 || wi->shape.d[0] != gates * H || wi->shape.d[1] != F)
    return nas_errf(e, NAS_EINVAL, "%s: %d input features and %d units: w_ih must be [%d,%d], got %s",
                    name, F, H, gates * H, F, nas_shape_str(&wi->shape, b, sizeof b)),
           -1;
  for (int i = 3; i < nb; i++) {
    const nas_node *bi = op_in(g, nd, i);
    if (bi->shape.nd != 1 || bi->shape.d[0] != gates * H)
      return nas_errf(e, NAS_EINVAL, "%s: bias %s must be [%d]", name, i == 3 ? "b_ih" : "b_hh",
                      gates * H),
             -1;
  }
  if (nd->p.kh != 0 && nd->p.kh != 1)
    return nas_errf(e, NAS_EINVAL, "%s: return-sequences flag (p.kh) must be 0 or 1", name), -1;
  op_like_batch(nd, x);
  int T = x->shape.d[1];
  if (nd->p.kh) {
    nd->shape.nd = 3;
    nd->shape.d[1] = T;
    nd->shape.d[2] = H;
  } else {
    nd->shape.nd = 2;
    nd->shape.d[1] = H;
  }
  return H;
}

/* y[r,:] += b for every row (b may be NULL). */
static void add_rows(float *y, const float *b, size_t rows, int c) {
  if (!b) return;
#pragma omp parallel for schedule(static) if (rows * (size_t)c >= RNN_PAR_MIN)
  for (size_t r = 0; r < rows; r++)
    for (int j = 0; j < c; j++) y[r * c + j] += b[j];
}

/* db[j] += sum over rows of dG[r,j] (rows strided by ld). */
static void sum_rows(float *db, const float *dG, size_t rows, int c, int ld) {
  for (size_t r = 0; r < rows; r++)
    for (int j = 0; j < c; j++) db[j] += dG[r * (size_t)ld + j];
}

/* Copies the output (every step, or the last) out of the saved h [N,T,H]. */
static void copy_out(nas_node *nd, const float *hs, int n, int T, int H) {
  if (nd->p.kh) {
    memcpy(nd->val, hs, (size_t)n * T * H * sizeof(float));
  } else {
    for (int b = 0; b < n; b++)
      memcpy(nd->val + (size_t)b * H, hs + ((size_t)b * T + T - 1) * H, (size_t)H * sizeof(float));
  }
}

/* Shared tail of both backward passes: gradients of w_ih (dG^T x), b_ih, and x (dG w_ih),
 * each one sgemm / sum over all N*T rows. dG is [N*T,GH]. */
static void input_proj_backward(nas_graph *g, nas_node *nd, const float *dG, int n, int T, int F,
                                int GH) {
  nas_node *x = op_in(g, nd, 0), *wi = op_in(g, nd, 1);
  int M = n * T;
  if (wi->grad)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, GH, F, M, 1.0f, dG, GH, x->val, F,
                op_grad_fresh(g, wi) ? 0.0f : 1.0f, wi->grad, F);
  if (rnn_biased(nd) && op_in(g, nd, 3)->grad)
    sum_rows(op_grad_acc(g, op_in(g, nd, 3)), dG, (size_t)M, GH, GH);
  if (x->grad)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, F, GH, 1.0f, dG, GH, wi->val, F,
                op_grad_fresh(g, x) ? 0.0f : 1.0f, x->grad, F);
}

/* dW_hh += sum_t dGh_t^T h_{t-1} and db_hh += sum of dGh rows. dGh: [N,T,GH]. One sgemm
 * over all N*T rows: hp (scratch [N,T,H]) gets h shifted by one step (h_{-1} = 0). */
static void recurrent_backward(nas_graph *g, nas_node *nd, const float *dGh, const float *hs,
                               float *hp, int n, int T, int H, int GH) {
  nas_node *wh = op_in(g, nd, 2);
  if (wh->grad) {
    for (int b = 0; b < n; b++) {
      float *dst = hp + (size_t)b * T * H;
      memset(dst, 0, (size_t)H * sizeof(float));
      memcpy(dst + H, hs + (size_t)b * T * H, (size_t)(T - 1) * H * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, GH, H, n * T, 1.0f, dGh, GH, hp, H,
                op_grad_fresh(g, wh) ? 0.0f : 1.0f, wh->grad, H);
  }
  if (rnn_biased(nd) && op_in(g, nd, 4)->grad)
    sum_rows(op_grad_acc(g, op_in(g, nd, 4)), dGh, (size_t)n * T, GH, GH);
}

/* ---- LSTM -------------------------------------------------------------------------------- */

int lstm_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  int H = rnn_infer(g, nd, 4, e);
  if (H < 0) return e->code;
  const nas_node *x = op_in(g, nd, 0);
  size_t NT = (size_t)x->shape.d[0] * x->shape.d[1], N = (size_t)x->shape.d[0];
  nd->saved_bytes = NT * (size_t)(4 * H + 3 * H) * sizeof(float);
  if (rnn_qat(nd)) nd->saved_bytes += NT * (size_t)(4 * H + 2 * H) * sizeof(float) + sizeof(lstm_q);
  nd->scratch_bytes = (NT * 4 * (size_t)H + 2 * N * H + NT * H + H) * sizeof(float);
  return NAS_OK;
}

/* One row (sample b, step t) of the LSTM cell: gt [4H] pre-activations -> activated
 * i,f,g,o (in place); c, tc, h [H] get c_t, tanh(c_t), h_t; cp [H] is c_{t-1} (a zero row
 * at t 0: no NULL pointers in the vector loops, since AVX-512 masked loads from a NULL
 * row take a fault-suppression assist every iteration, which made the backward slower).
 * A separate, not inlined function rather than the body of the OpenMP loop: GCC 12 does
 * not vectorise the loop inside the outlined parallel region, and does here. */
RNN_NOINLINE static void lstm_gates_row(float *restrict gt, float *restrict c,
                                        float *restrict tc, float *restrict h,
                                        const float *restrict cp, int H) {
  for (int j = 0; j < H; j++) {
    float i = sigm(gt[j]), f = sigm(gt[H + j]), gg = rnn_tanh(gt[2 * H + j]),
          o = sigm(gt[3 * H + j]);
    gt[j] = i, gt[H + j] = f, gt[2 * H + j] = gg, gt[3 * H + j] = o;
    float cv = i * gg + f * cp[j];
    float tv = rnn_tanh(cv);
    c[j] = cv, tc[j] = tv;
    h[j] = o * tv;
  }
}

/* Backward of one row: gt [4H] activated gates, tcr [H] tanh(c_t), cp [H] c_{t-1} (or a zero
 * row), dyt [H] the output gradient at this step (or a zero row); dgt [4H] gets the pre-activation
 * gradients; dhb, dcb [H] carry dh and dc from step t+1 (dcb is updated to dc_{t-1}). */
RNN_NOINLINE static void lstm_gates_row_backward(const float *restrict gt,
                                                 const float *restrict tcr,
                                                 const float *restrict cp,
                                                 const float *restrict dyt, float *restrict dgt,
                                                 const float *restrict dhb, float *restrict dcb,
                                                 int H) {
  for (int j = 0; j < H; j++) {
    float i = gt[j], f = gt[H + j], gg = gt[2 * H + j], o = gt[3 * H + j];
    float dhv = dhb[j] + dyt[j];
    float tc = tcr[j];
    float dcv = dcb[j] + dhv * o * (1.0f - tc * tc);
    float cprev = cp[j];
    dgt[j] = dcv * gg * i * (1.0f - i);
    dgt[H + j] = dcv * cprev * f * (1.0f - f);
    dgt[2 * H + j] = dcv * i * (1.0f - gg * gg);
    dgt[3 * H + j] = dhv * tc * o * (1.0f - o);
    dcb[j] = dcv * f;
  }
}

/* ---- LSTM with fake quantisation (QAT) ----------------------------------------------------
 * p.kw = 1; last input r[6] = {h lo, h hi, h set, c lo, c hi, c set} (STATE). The cell is
 * quantised where deploy/lower_rnn.c's UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite's 8x8->16 integer
 * LSTM) quantises, with its scales:
 *   gate pre-activations: int16 with scale 2^-12, the input part (x w_ih^T + biases) and the
 *     recurrent part (h w_hh^T) each rounded, their sum saturated to [-8, 32767/4096];
 *   cell state c: int16 with scale 2^(k-15), 2^k >= max|c| of the range (k in 0..6);
 *   hidden state h (the output): int8 symmetric, scale max|h|/127 of the range, -128..127.
 * The gate outputs (int16 Q0.15 in the integer kernel, resolution 3e-5) are not quantised.
 * A point whose range is not set yet (r[2] / r[5] = 0) is not quantised. In training mode
 * the ranges are updated after the pass from the batch's unquantised h and c over every step:
 * the first batch sets a range, later ones move it by an EMA with decay p.momentum (0.99 when
 * 0); so a pass quantises with the ranges as they were before it.
 * Backward: the straight-through estimator with clipping, as FAKEQUANT: the gradient passes
 * each rounding unchanged and is zero where the value was saturated (a pre-activation sum
 * outside the int16 range, c or h outside its representable range).
 * Saved after the float layout: P [N,T,4H] the pre-activation sums before saturation, cr, hr
 * [N,T,H] c and h before their quantisation, then the lstm_q of the pass (cs and hs hold the
 * quantised c and h, so the recurrence and the weight gradients use them). Forward scratch:
 * the recurrent part [N,4H] at the start (the backward's dG, free during the forward). */
#define GATE_STEP (1.0f / 4096.0f)
#define GATE_MIN (-32768.0f * GATE_STEP)
#define GATE_MAX (32767.0f * GATE_STEP)

/* v rounded to a multiple of s (half away from zero) and clamped to [qlo, qhi] * s. */
static inline float fq_step(float v, float s, float qlo, float qhi) {
  float q = roundf(v / s);
  q = q < qlo ? qlo : q > qhi ? qhi : q;
  return q * s;
}

static void lstm_q_of(const float *r, lstm_q *q) {
  const float hm = fabsf(r[0]) > fabsf(r[1]) ? fabsf(r[0]) : fabsf(r[1]);
  const float cm = fabsf(r[3]) > fabsf(r[4]) ? fabsf(r[3]) : fabsf(r[4]);
  int k = cm > 1.0f ? (int)ceilf(log2f(cm)) : 0;
  k = k < 0 ? 0 : k > 6 ? 6 : k;
  q->on_h = r[2] != 0, q->on_c = r[5] != 0;
  q->hs = hm > 0 ? hm / 127.0f : 1.0f / 127.0f;
  q->cs = ldexpf(1.0f, k - 15);
}

/* One row of the QAT cell: gt [4H] holds the quantised pre-activation sums (copied to P
 * before saturation), then the activated gates; as lstm_gates_row otherwise, with c and h
 * quantised (cr, hr get them unquantised). */
static void lstm_gates_row_q(float *restrict gt, float *restrict P, float *restrict c,
                             float *restrict cr, float *restrict tc, float *restrict h,
                             float *restrict hr, const float *restrict cp, int H,
                             const lstm_q *q) {
  for (int k = 0; k < 4 * H; k++) {
    const float v = gt[k];
    P[k] = v;
    gt[k] = v < GATE_MIN ? GATE_MIN : v > GATE_MAX ? GATE_MAX : v;
  }
  for (int j = 0; j < H; j++) {
    float i = sigm(gt[j]), f = sigm(gt[H + j]), gg = rnn_tanh(gt[2 * H + j]), o = sigm(gt[3 * H + j]);
    gt[j] = i, gt[H + j] = f, gt[2 * H + j] = gg, gt[3 * H + j] = o;
    const float craw = i * gg + f * cp[j];
    const float cv = q->on_c ? fq_step(craw, q->cs, -32768.0f, 32767.0f) : craw;
    const float tv = rnn_tanh(cv);
    const float hraw = o * tv;
    cr[j] = craw, c[j] = cv, tc[j] = tv, hr[j] = hraw;
    h[j] = q->on_h ? fq_step(hraw, q->hs, -128.0f, 127.0f) : hraw;
  }
}

/* Backward of one QAT row (arguments as lstm_gates_row_backward, plus P, cr, hr, q). */
static void lstm_row_backward_q(const float *restrict gt, const float *restrict P,
                                const float *restrict cr, const float *restrict tcr,
                                const float *restrict hr, const float *restrict cp,
                                const float *restrict dyt, float *restrict dgt,
                                const float *restrict dhb, float *restrict dcb, int H,
                                const lstm_q *q) {
  const float hlo = -128.0f * q->hs, hhi = 127.0f * q->hs;
  const float clo = -32768.0f * q->cs, chi = 32767.0f * q->cs;
  for (int j = 0; j < H; j++) {
    const float i = gt[j], f = gt[H + j], gg = gt[2 * H + j], o = gt[3 * H + j], tc = tcr[j];
    float dhv = dhb[j] + dyt[j];
    if (q->on_h && (hr[j] < hlo || hr[j] > hhi)) dhv = 0;
    float dcv = dcb[j] + dhv * o * (1.0f - tc * tc);
    if (q->on_c && (cr[j] < clo || cr[j] > chi)) dcv = 0;
    float d[4] = {dcv * gg * i * (1.0f - i), dcv * cp[j] * f * (1.0f - f),
                  dcv * i * (1.0f - gg * gg), dhv * tc * o * (1.0f - o)};
    for (int k = 0; k < 4; k++) {
      const float v = P[k * H + j];
      dgt[k * H + j] = v < GATE_MIN || v > GATE_MAX ? 0.0f : d[k];
    }
    dcb[j] = dcv * f;
  }
}

/* The QAT forward after the input projection and biases are in G (see above). */
static void lstm_forward_q(nas_graph *g, nas_node *nd, int n, int T, int H, const float *zero) {
  const nas_node *x = op_in(g, nd, 0), *wh = op_in(g, nd, 2);
  float *r = op_in(g, nd, nd->n_in - 1)->val;
  const int GH = 4 * H;
  const size_t NTmax = (size_t)x->shape.d[0] * T;
  float *G = nd->saved, *cs = G + NTmax * GH, *tcs = cs + NTmax * H, *hs = tcs + NTmax * H;
  float *P = hs + NTmax * H, *cr = P + NTmax * GH, *hr = cr + NTmax * H;
  lstm_q *q = (lstm_q *)(hr + NTmax * H);
  float *rec = g->scratch;
  lstm_q_of(r, q);
  for (size_t k = 0; k < (size_t)n * T * GH; k++) G[k] = fq_step(G[k], GATE_STEP, -32768.0f, 32767.0f);
  for (int t = 0; t < T; t++) {
    if (t > 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, GH, H, 1.0f, hs + (size_t)(t - 1) * H,
                  T * H, wh->val, H, 0.0f, rec, GH);
      for (int b = 0; b < n; b++) {
        float *gt = G + ((size_t)b * T + t) * GH;
        for (int k = 0; k < GH; k++)
          gt[k] += fq_step(rec[(size_t)b * GH + k], GATE_STEP, -32768.0f, 32767.0f);
      }
    }
#pragma omp parallel for schedule(static) if ((size_t)n * H >= RNN_PAR_MIN)
    for (int b = 0; b < n; b++) {
      size_t rw = (size_t)b * T + t;
      lstm_gates_row_q(G + rw * GH, P + rw * GH, cs + rw * H, cr + rw * H, tcs + rw * H,
                       hs + rw * H, hr + rw * H, t > 0 ? cs + (rw - 1) * H : zero, H, q);
    }
  }
  copy_out(nd, hs, n, T, H);
  if (!g->training) return;
  const size_t m = (size_t)n * T * H;
  if (m == 0) return;
  const float d = nd->p.momentum > 0 ? nd->p.momentum : 0.99f;
  const float *src[2] = {hr, cr};
  for (int k = 0; k < 2; k++) { /* h: r[0..2], c: r[3..5] */
    float lo = src[k][0], hi = src[k][0];
    for (size_t i = 1; i < m; i++) {
      lo = src[k][i] < lo ? src[k][i] : lo;
      hi = src[k][i] > hi ? src[k][i] : hi;
    }
    float *rk = r + 3 * k;
    if (rk[2] == 0) {
      rk[0] = lo, rk[1] = hi, rk[2] = 1;
    } else {
      rk[0] = d * rk[0] + (1 - d) * lo;
      rk[1] = d * rk[1] + (1 - d) * hi;
    }
  }
}

void lstm_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0), *wi = op_in(g, nd, 1), *wh = op_in(g, nd, 2);
  int n = op_batch(g, nd), T = x->shape.d[1], F = x->shape.d[2], H = wh->shape.d[1], GH = 4 * H;
  size_t NTmax = (size_t)x->shape.d[0] * T;
  float *G = nd->saved, *cs = G + NTmax * GH, *tcs = cs + NTmax * H, *hs = tcs + NTmax * H;
  /* c_{-1}: a zero row at the end of the scratch (layout in lstm_backward) */
  float *zero = (float *)g->scratch + NTmax * (GH + H) + 2 * (size_t)x->shape.d[0] * H;
  memset(zero, 0, (size_t)H * sizeof(float));
  /* input projection of every step at once, plus both biases */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n * T, GH, F, 1.0f, x->val, F, wi->val, F,
              0.0f, G, GH);
  if (rnn_biased(nd)) {
    add_rows(G, op_in(g, nd, 3)->val, (size_t)n * T, GH);
    add_rows(G, op_in(g, nd, 4)->val, (size_t)n * T, GH);
  }
  if (rnn_qat(nd)) {
    lstm_forward_q(g, nd, n, T, H, zero);
    return;
  }
  for (int t = 0; t < T; t++) {
    if (t > 0) /* G_t += h_{t-1} w_hh^T (strided rows of the [N,T,.] buffers) */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, GH, H, 1.0f, hs + (size_t)(t - 1) * H,
                  T * H, wh->val, H, 1.0f, G + (size_t)t * GH, T * GH);
#pragma omp parallel for schedule(static) if ((size_t)n * H >= RNN_PAR_MIN)
    for (int b = 0; b < n; b++) {
      size_t r = (size_t)b * T + t;
      lstm_gates_row(G + r * GH, cs + r * H, tcs + r * H, hs + r * H,
                     t > 0 ? cs + (r - 1) * H : zero, H);
    }
  }
  copy_out(nd, hs, n, T, H);
}

void lstm_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *wh = op_in(g, nd, 2);
  int n = op_batch(g, nd), T = x->shape.d[1], F = x->shape.d[2], H = wh->shape.d[1], GH = 4 * H;
  int seq = nd->p.kh;
  size_t NTmax = (size_t)x->shape.d[0] * T;
  const float *G = nd->saved, *cs = G + NTmax * GH, *tcs = cs + NTmax * H, *hs = tcs + NTmax * H;
  float *dG = g->scratch, *dh = dG + NTmax * GH, *dc = dh + (size_t)x->shape.d[0] * H;
  float *hp = dc + (size_t)x->shape.d[0] * H, *zero = hp + NTmax * H; /* zero: [H] */
  const float *dy = nd->grad;
  memset(dh, 0, (size_t)n * H * sizeof(float));
  memset(dc, 0, (size_t)n * H * sizeof(float));
  memset(zero, 0, (size_t)H * sizeof(float));
  const float *P = hs + NTmax * H, *cr = P + NTmax * GH, *hr = cr + NTmax * H; /* QAT only */
  const lstm_q *q = rnn_qat(nd) ? (const lstm_q *)(hr + NTmax * H) : NULL;
  for (int t = T - 1; t >= 0; t--) {
#pragma omp parallel for schedule(static) if ((size_t)n * H >= RNN_PAR_MIN)
    for (int b = 0; b < n; b++) {
      size_t r = (size_t)b * T + t;
      if (q) {
        lstm_row_backward_q(G + r * GH, P + r * GH, cr + r * H, tcs + r * H, hr + r * H,
                            t > 0 ? cs + (r - 1) * H : zero,
                            seq ? dy + r * H : (t == T - 1 ? dy + (size_t)b * H : zero),
                            dG + r * GH, dh + (size_t)b * H, dc + (size_t)b * H, H, q);
        continue;
      }
      lstm_gates_row_backward(G + r * GH, tcs + r * H, t > 0 ? cs + (r - 1) * H : zero,
                              seq ? dy + r * H : (t == T - 1 ? dy + (size_t)b * H : zero),
                              dG + r * GH, dh + (size_t)b * H, dc + (size_t)b * H, H);
    }
    if (t > 0) /* dh_{t-1} = dG_t w_hh */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, GH, 1.0f, dG + (size_t)t * GH,
                  T * GH, wh->val, H, 0.0f, dh, H);
  }
  recurrent_backward(g, nd, dG, hs, hp, n, T, H, GH);
  input_proj_backward(g, nd, dG, n, T, F, GH);
}

/* ---- GRU --------------------------------------------------------------------------------- */

int gru_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  int H = rnn_infer(g, nd, 3, e);
  if (H < 0) return e->code;
  const nas_node *x = op_in(g, nd, 0);
  size_t NT = (size_t)x->shape.d[0] * x->shape.d[1], N = (size_t)x->shape.d[0];
  nd->saved_bytes = NT * (size_t)(3 * H + H + H) * sizeof(float);
  size_t fwd = N * 3 * (size_t)H + H, bwd = 2 * NT * 3 * (size_t)H + N * H + NT * H;
  nd->scratch_bytes = (fwd > bwd ? fwd : bwd) * sizeof(float);
  return NAS_OK;
}

/* One row of the GRU cell: gt [3H] input pre-activations -> activated r,z,n (in place);
 * ghb [3H] the recurrent part (W_h h_{t-1} + b_hh); hnr [H] gets its n block; h [H] gets h_t;
 * hp [H] is h_{t-1} (a zero row at t 0). Not inlined, as lstm_gates_row. */
RNN_NOINLINE static void gru_gates_row(float *restrict gt, const float *restrict ghb,
                                       float *restrict hnr, float *restrict h,
                                       const float *restrict hp, int H) {
  for (int j = 0; j < H; j++) {
    float rr = sigm(gt[j] + ghb[j]), z = sigm(gt[H + j] + ghb[H + j]);
    float hnv = ghb[2 * H + j], nn = rnn_tanh(gt[2 * H + j] + rr * hnv);
    gt[j] = rr, gt[H + j] = z, gt[2 * H + j] = nn;
    hnr[j] = hnv;
    h[j] = (1.0f - z) * nn + z * hp[j];
  }
}

void gru_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0), *wi = op_in(g, nd, 1), *wh = op_in(g, nd, 2);
  int n = op_batch(g, nd), T = x->shape.d[1], F = x->shape.d[2], H = wh->shape.d[1], GH = 3 * H;
  size_t NTmax = (size_t)x->shape.d[0] * T;
  float *G = nd->saved, *hn = G + NTmax * GH, *hs = hn + NTmax * H, *gh = g->scratch;
  float *zero = gh + (size_t)x->shape.d[0] * GH; /* h_{-1}: [H] zeros after gh */
  memset(zero, 0, (size_t)H * sizeof(float));
  const float *bhh = rnn_biased(nd) ? op_in(g, nd, 4)->val : NULL;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n * T, GH, F, 1.0f, x->val, F, wi->val, F,
              0.0f, G, GH);
  if (rnn_biased(nd)) add_rows(G, op_in(g, nd, 3)->val, (size_t)n * T, GH);
  for (int t = 0; t < T; t++) {
    /* gh = h_{t-1} w_hh^T + b_hh (h_{-1} = 0) */
    if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, GH, H, 1.0f, hs + (size_t)(t - 1) * H,
                  T * H, wh->val, H, 0.0f, gh, GH);
    else
      memset(gh, 0, (size_t)n * GH * sizeof(float));
    add_rows(gh, bhh, (size_t)n, GH);
#pragma omp parallel for schedule(static) if ((size_t)n * H >= RNN_PAR_MIN)
    for (int b = 0; b < n; b++) {
      size_t r = (size_t)b * T + t;
      gru_gates_row(G + r * GH, gh + (size_t)b * GH, hn + r * H, hs + r * H,
                    t > 0 ? hs + (r - 1) * H : zero, H);
    }
  }
  copy_out(nd, hs, n, T, H);
}

void gru_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *wh = op_in(g, nd, 2);
  int n = op_batch(g, nd), T = x->shape.d[1], F = x->shape.d[2], H = wh->shape.d[1], GH = 3 * H;
  int seq = nd->p.kh;
  size_t NTmax = (size_t)x->shape.d[0] * T;
  const float *G = nd->saved, *hn = G + NTmax * GH, *hs = hn + NTmax * H;
  float *dGx = g->scratch, *dGh = dGx + NTmax * GH, *dh = dGh + NTmax * GH;
  float *hp = dh + (size_t)x->shape.d[0] * H;
  const float *dy = nd->grad;
  memset(dh, 0, (size_t)n * H * sizeof(float));
  for (int t = T - 1; t >= 0; t--) {
#pragma omp parallel for schedule(static) if ((size_t)n * H >= RNN_PAR_MIN)
    for (int b = 0; b < n; b++) {
      size_t r = (size_t)b * T + t;
      const float *gt = G + r * GH, *hnr = hn + r * H;
      const float *hprev = t > 0 ? hs + (r - 1) * H : NULL;
      const float *dyt = seq ? dy + r * H : (t == T - 1 ? dy + (size_t)b * H : NULL);
      float *dx_r = dGx + r * GH, *dh_r = dGh + r * GH, *dhb = dh + (size_t)b * H;
      for (int j = 0; j < H; j++) {
        float rr = gt[j], z = gt[H + j], nn = gt[2 * H + j];
        float dhv = dhb[j] + (dyt ? dyt[j] : 0.0f);
        float hpv = hprev ? hprev[j] : 0.0f;
        float dan = dhv * (1.0f - z) * (1.0f - nn * nn);
        float daz = dhv * (hpv - nn) * z * (1.0f - z);
        float dar = dan * hnr[j] * rr * (1.0f - rr);
        dx_r[j] = dar, dx_r[H + j] = daz, dx_r[2 * H + j] = dan;
        dh_r[j] = dar, dh_r[H + j] = daz, dh_r[2 * H + j] = dan * rr;
        dhb[j] = dhv * z; /* direct path; the recurrent sgemm adds below */
      }
    }
    if (t > 0) /* dh_{t-1} = dh z + dGh_t w_hh */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, GH, 1.0f, dGh + (size_t)t * GH,
                  T * GH, wh->val, H, 1.0f, dh, H);
  }
  recurrent_backward(g, nd, dGh, hs, hp, n, T, H, GH);
  input_proj_backward(g, nd, dGx, n, T, F, GH);
}
