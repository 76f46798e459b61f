/* deploy/kernels8.c: reference int8 kernels with TFLite Micro's arithmetic (its
 * reference_integer_ops / reference_ops kernels and quantization_util), written from the
 * documented semantics: accumulate (q_in - zp_in) * q_w in int32, add the int32 bias,
 * requantise with a Q31 multiplier and shift (saturating rounding doubling high multiply,
 * then rounding divide by a power of two), add the output zero point, clamp to the fused
 * activation's range. Softmax is gemmlowp's fixed-point exp / reciprocal, as TFLM's int8
 * softmax. All layouts NHWC; conv filters [Co,Kh,Kw,Ci], depthwise filters [1,Kh,Kw,Ci*M],
 * fully-connected weights [Co,D]. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/graph8.h"

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

int32_t nas_q_srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward 0 */
}

int32_t nas_q_rdbpot(int32_t x, int exponent) {
  if (exponent <= 0) return x;
  if (exponent > 31) exponent = 31;
  int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  int32_t rem = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (rem > threshold ? 1 : 0); /* >> on negatives is arithmetic (gcc) */
}

int32_t nas_q_mul(int32_t x, int32_t q, int shift) {
  int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  /* TFLite computes x * (1 << left) in int32; keep it defined by saturating the product. */
  int64_t xl = (int64_t)x * ((int64_t)1 << left);
  if (xl > INT32_MAX) xl = INT32_MAX;
  if (xl < INT32_MIN) xl = INT32_MIN;
  return nas_q_rdbpot(nas_q_srdhm((int32_t)xl, q), right);
}

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

static inline int32_t clamp32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* ---- gemmlowp fixed-point pieces used by softmax ---------------------------------------- */

/* x * 2^exponent with saturation (exponent > 0) or rounding (exponent < 0). */
static int32_t sat_mul_pot(int32_t x, int exponent) {
  if (exponent < 0) return nas_q_rdbpot(x, -exponent);
  if (exponent == 0) return x;
  int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

static int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* exp(a) for a in [-1/4, 0), a and result Q0.31. */
static int32_t exp_quarter(int32_t a) {
  const int32_t c_term = 1895147668, c_1_3 = 715827883;
  int32_t x = wrap_add(a, 1 << 28);              /* a + 1/8 */
  int32_t x2 = nas_q_srdhm(x, x), x3 = nas_q_srdhm(x2, x), x4 = nas_q_srdhm(x2, x2);
  int32_t x4_4 = sat_mul_pot(x4, -2);
  int32_t poly = sat_mul_pot(wrap_add(nas_q_srdhm(wrap_add(x4_4, x3), c_1_3), x2), -1);
  return wrap_add(c_term, nas_q_srdhm(c_term, wrap_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q5.26; result Q0.31 (gemmlowp exp_on_negative_values). */
static int32_t exp_neg(int32_t a) {
  const int frac_bits = 26;
  const int32_t quarter = 1 << 24, mask = quarter - 1;
  int32_t a_mod = wrap_sub(a & mask, quarter);
  int32_t result = exp_quarter(sat_mul_pot(a_mod, 5));
  int32_t rem = wrap_sub(a_mod, a);
  static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308,
                                  39332535, 720401, 242};
  for (int k = 0; k < 7; k++) { /* exponents -2..4 */
    int shift_amount = frac_bits + (k - 2);
    if (rem & (int32_t)((uint32_t)1 << shift_amount)) result = nas_q_srdhm(result, mult[k]);
  }
  return a == 0 ? INT32_MAX : result;
}

/* 1/(1+x) for x in [0,1), Q0.31 in and out (Newton-Raphson as in gemmlowp). */
static int32_t one_over_one_plus_x(int32_t a) {
  int64_t s = (int64_t)a + INT32_MAX;
  int32_t half_den = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);  /* RoundingHalfSum(a, 1) */
  const int32_t c48_17 = 1515870810, cm32_17 = -1010580540;  /* Q2.29 */
  int32_t x = wrap_add(c48_17, nas_q_srdhm(half_den, cm32_17));
  for (int i = 0; i < 3; i++) {
    int32_t hdx = nas_q_srdhm(half_den, x);                   /* Q2.29 */
    int32_t one_minus = wrap_sub(1 << 29, hdx);
    x = wrap_add(x, sat_mul_pot(nas_q_srdhm(x, one_minus), 2)); /* Q4 -> Q2 */
  }
  return sat_mul_pot(x, 1); /* x/2: same raw read as Q1.30 (ExactMulByPot<-1>), then Q1 -> Q0 */
}

static int clz32(uint32_t x) {
  if (!x) return 32;
  int n = 0;
  while (!(x & 0x80000000u)) x <<= 1, n++;
  return n;
}

/* ---- kernels --------------------------------------------------------------------------- */

static const int8_t *tdata(const nas_g8_graph *g, int8_t *const *act, int t) {
  return act[t] ? act[t] : (const int8_t *)g->tensors[t].data;
}

static void conv_requant(const nas_g8_tensor *x, const nas_g8_tensor *w, const nas_g8_tensor *y,
                         int co, int32_t *mult, int *shift) {
  for (int c = 0; c < co; c++) {
    double ws = w->scale[w->nq > 1 ? c : 0];
    double eff = (double)x->scale[0] * ws / (double)y->scale[0];
    nas_q_quantize_multiplier(eff, &mult[c], &shift[c]);
  }
}

static int k_conv(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act, nas_err *e) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  const int dw = op->kind == NAS_G8_DEPTHWISE_CONV_2D;
  const int8_t *in = tdata(g, act, op->in[0]), *wd = w->data;
  const int32_t *bias = op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
  int8_t *out = act[op->out];
  const int N = x->dims[0], H = x->dims[1], W = x->dims[2], Ci = x->dims[3];
  const int Ho = y->dims[1], Wo = y->dims[2], Co = y->dims[3];
  const int Kh = w->dims[1], Kw = w->dims[2], M = dw ? Co / Ci : 1;
  const int sh = op->stride_h, sw = op->stride_w, dh = op->dil_h, dwl = op->dil_w;
  /* TFLite padding: the total padding is split with the smaller half at top/left. */
  int pt = 0, pl = 0;
  if (op->padding == NAS_G8_PAD_SAME) {
    pt = ((Ho - 1) * sh + (Kh - 1) * dh + 1 - H) / 2;
    pl = ((Wo - 1) * sw + (Kw - 1) * dwl + 1 - W) / 2;
    if (pt < 0) pt = 0;
    if (pl < 0) pl = 0;
  }
  /* Accumulation order: per output pixel, an int32 accumulator per output channel, each
   * filter tap adding (input + in_off) * weight across all output channels at once, with the
   * weights laid out [Kh,Kw,Ci,Co] so that the channel loop is contiguous (it vectorises).
   * Integer sums are exact, so the order does not change the result. */
  int32_t *mult = malloc(sizeof *mult * (size_t)Co), *acc = malloc(sizeof *acc * (size_t)Co);
  int *shift = malloc(sizeof *shift * (size_t)Co);
  int8_t *wt = dw ? NULL : malloc((size_t)Kh * Kw * Ci * Co);
  if (!mult || !shift || !acc || (!dw && !wt)) {
    free(mult), free(shift), free(acc), free(wt);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  if (!dw) /* [Co,Kh,Kw,Ci] -> [Kh,Kw,Ci,Co] */
    for (int oc = 0; oc < Co; oc++)
      for (size_t t = 0; t < (size_t)Kh * Kw * Ci; t++) wt[t * Co + oc] = wd[(size_t)oc * Kh * Kw * Ci + t];
  conv_requant(x, w, y, Co, mult, shift);
  const int32_t in_off = -x->zero_point[0], out_off = y->zero_point[0];
  int32_t lo, hi;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &lo, &hi);
  for (int n = 0; n < N; n++)
    for (int oy = 0; oy < Ho; oy++)
      for (int ox = 0; ox < Wo; ox++) {
        const int iy0 = oy * sh - pt, ix0 = ox * sw - pl;
        int8_t *o = out + (((size_t)n * Ho + oy) * Wo + ox) * Co;
        for (int oc = 0; oc < Co; oc++) acc[oc] = bias ? bias[oc] : 0;
        for (int ky = 0; ky < Kh; ky++) {
          const int iy = iy0 + dh * ky;
          if (iy < 0 || iy >= H) continue; /* padding: input = zero point, adds nothing */
          for (int kx = 0; kx < Kw; kx++) {
            const int ix = ix0 + dwl * kx;
            if (ix < 0 || ix >= W) continue;
            const int8_t *px = in + (((size_t)n * H + iy) * W + ix) * Ci;
            if (dw) {
              const int8_t *pw = wd + ((size_t)ky * Kw + kx) * Co;
              if (M == 1)
                for (int oc = 0; oc < Co; oc++) acc[oc] += (px[oc] + in_off) * pw[oc];
              else
                for (int oc = 0; oc < Co; oc++) acc[oc] += (px[oc / M] + in_off) * pw[oc];
            } else {
              const int8_t *pw = wt + ((size_t)ky * Kw + kx) * Ci * Co;
              for (int ic = 0; ic < Ci; ic++) {
                const int32_t v = px[ic] + in_off;
                const int8_t *pwc = pw + (size_t)ic * Co;
                for (int oc = 0; oc < Co; oc++) acc[oc] += v * pwc[oc];
              }
            }
          }
        }
        for (int oc = 0; oc < Co; oc++)
          o[oc] = (int8_t)clamp32(nas_q_mul(acc[oc], mult[oc], shift[oc]) + out_off, lo, hi);
      }
  free(mult), free(shift), free(acc), free(wt);
  return NAS_OK;
}

static int k_fc(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act, nas_err *e) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  const int8_t *in = tdata(g, act, op->in[0]), *wd = w->data;
  const int32_t *bias = op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
  int8_t *out = act[op->out];
  const int Co = w->dims[0], D = w->dims[1];
  const size_t B = nas_g8_numel(x) / (size_t)D;
  int32_t *mult = malloc(sizeof *mult * (size_t)Co);
  int *shift = malloc(sizeof *shift * (size_t)Co);
  if (!mult || !shift) {
    free(mult), free(shift);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  conv_requant(x, w, y, Co, mult, shift);
  const int32_t in_off = -x->zero_point[0], w_off = -w->zero_point[0], out_off = y->zero_point[0];
  int32_t lo, hi;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &lo, &hi);
  for (size_t b = 0; b < B; b++)
    for (int oc = 0; oc < Co; oc++) {
      const int8_t *px = in + b * (size_t)D, *pw = wd + (size_t)oc * D;
      int32_t acc = 0;
      for (int d = 0; d < D; d++) acc += (px[d] + in_off) * (pw[d] + w_off);
      if (bias) acc += bias[oc];
      acc = nas_q_mul(acc, mult[oc], shift[oc]) + out_off;
      out[b * (size_t)Co + oc] = (int8_t)clamp32(acc, lo, hi);
    }
  free(mult), free(shift);
  return NAS_OK;
}

static void k_pool(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const int8_t *in = tdata(g, act, op->in[0]);
  int8_t *out = act[op->out];
  const int N = x->dims[0], H = x->dims[1], W = x->dims[2], C = x->dims[3];
  const int Ho = y->dims[1], Wo = y->dims[2], Fh = op->filter_h, Fw = op->filter_w;
  int pt = 0, pl = 0;
  if (op->padding == NAS_G8_PAD_SAME) {
    pt = ((Ho - 1) * op->stride_h + Fh - H) / 2, pl = ((Wo - 1) * op->stride_w + Fw - W) / 2;
    if (pt < 0) pt = 0;
    if (pl < 0) pl = 0;
  }
  int32_t lo, hi;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &lo, &hi);
  const int avg = op->kind == NAS_G8_AVERAGE_POOL_2D;
  for (int n = 0; n < N; n++)
    for (int oy = 0; oy < Ho; oy++)
      for (int ox = 0; ox < Wo; ox++) {
        const int iy0 = oy * op->stride_h - pt, ix0 = ox * op->stride_w - pl;
        const int fy0 = iy0 < 0 ? -iy0 : 0, fy1 = Fh < H - iy0 ? Fh : H - iy0;
        const int fx0 = ix0 < 0 ? -ix0 : 0, fx1 = Fw < W - ix0 ? Fw : W - ix0;
        for (int c = 0; c < C; c++) {
          int32_t acc = avg ? 0 : -128, count = 0;
          for (int fy = fy0; fy < fy1; fy++)
            for (int fx = fx0; fx < fx1; fx++) {
              int32_t v = in[(((size_t)n * H + iy0 + fy) * W + ix0 + fx) * C + c];
              if (avg) acc += v;
              else if (v > acc) acc = v;
              count++;
            }
          if (avg) {
            if (count == 0) acc = 0; /* TFLM reports an error; cannot happen with valid shapes */
            else acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          }
          out[(((size_t)n * Ho + oy) * Wo + ox) * C + c] = (int8_t)clamp32(acc, lo, hi);
        }
      }
}

static void k_add(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act) {
  const nas_g8_tensor *a = &g->tensors[op->in[0]], *b = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  const int8_t *pa = tdata(g, act, op->in[0]), *pb = tdata(g, act, op->in[1]);
  int8_t *out = act[op->out];
  const int left_shift = 20;
  double sa = a->scale[0], sb = b->scale[0];
  double twice_max = 2.0 * (sa > sb ? sa : sb);
  int32_t m1, m2, mo;
  int s1, s2, so;
  nas_q_quantize_multiplier(sa / twice_max, &m1, &s1);
  nas_q_quantize_multiplier(sb / twice_max, &m2, &s2);
  nas_q_quantize_multiplier(twice_max / ((double)(1 << left_shift) * (double)y->scale[0]), &mo, &so);
  int32_t lo, hi;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &lo, &hi);
  const size_t n = nas_g8_numel(y);
  for (size_t i = 0; i < n; i++) {
    int32_t va = (pa[i] - a->zero_point[0]) * (1 << left_shift);
    int32_t vb = (pb[i] - b->zero_point[0]) * (1 << left_shift);
    int32_t sum = nas_q_mul(va, m1, s1) + nas_q_mul(vb, m2, s2);
    int32_t r = nas_q_mul(sum, mo, so) + y->zero_point[0];
    out[i] = (int8_t)clamp32(r, lo, hi);
  }
}

static void k_softmax(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const int8_t *in = tdata(g, act, op->in[0]);
  int8_t *out = act[op->out];
  const int depth = x->dims[x->ndim - 1];
  const size_t rows = depth ? nas_g8_numel(x) / (size_t)depth : 0;
  /* Prepare (TFLM CalculateSoftmaxParams, kScaledDiffIntegerBits = 5). */
  const int int_bits = 5;
  double real = (double)op->beta * (double)x->scale[0] * (double)(1 << (31 - int_bits));
  if (real > 2147483647.0) real = 2147483647.0;
  int32_t mult;
  int lshift;
  nas_q_quantize_multiplier(real, &mult, &lshift);
  if (lshift < 0) lshift = 0; /* TFLite requires a multiplier >= 1 here */
  double radius = ((1 << int_bits) - 1) * (double)((int64_t)1 << (31 - int_bits)) /
                  (double)((int64_t)1 << lshift);
  const int32_t diff_min = -(int32_t)floor(radius);
  /* Output: int8, scale 1/256, zero point -128 in TFLite's convention; the kernel writes
   * round(p * 256) - 128 whatever the output tensor says (as TFLM does). */
  (void)y;
  for (size_t r = 0; r < rows; r++) {
    const int8_t *px = in + r * (size_t)depth;
    int8_t *po = out + r * (size_t)depth;
    int32_t mx = -128;
    for (int c = 0; c < depth; c++) if (px[c] > mx) mx = px[c];
    int32_t sum = 0; /* Q12.19 */
    for (int c = 0; c < depth; c++) {
      int32_t diff = px[c] - mx;
      if (diff >= diff_min) {
        int32_t scaled = nas_q_srdhm(diff * (1 << lshift), mult);
        sum = wrap_add(sum, nas_q_rdbpot(exp_neg(scaled), 12));
      }
    }
    int headroom = clz32((uint32_t)sum);
    int bits_over_unit = 12 - headroom;
    int32_t shifted_minus_one = (int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31));
    int32_t scale = one_over_one_plus_x(shifted_minus_one);
    for (int c = 0; c < depth; c++) {
      int32_t diff = px[c] - mx;
      if (diff >= diff_min) {
        int32_t scaled = nas_q_srdhm(diff * (1 << lshift), mult);
        int32_t e0 = exp_neg(scaled);
        int32_t v = nas_q_rdbpot(nas_q_srdhm(scale, e0), bits_over_unit + 31 - 8) - 128;
        po[c] = (int8_t)clamp32(v, -128, 127);
      } else {
        po[c] = -128;
      }
    }
  }
}

static void k_quantize(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const int8_t *in = tdata(g, act, op->in[0]);
  int8_t *out = act[op->out];
  int32_t m;
  int s;
  nas_q_quantize_multiplier((double)x->scale[0] / (double)y->scale[0], &m, &s);
  const size_t n = nas_g8_numel(y);
  for (size_t i = 0; i < n; i++) {
    int32_t v = nas_q_mul(in[i] - x->zero_point[0], m, s) + y->zero_point[0];
    out[i] = (int8_t)clamp32(v, -128, 127);
  }
}

int nas_g8_run_op(const nas_g8_graph *g, int i, int8_t *const *act, nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  switch (op->kind) {
    case NAS_G8_CONV_2D:
    case NAS_G8_DEPTHWISE_CONV_2D: return k_conv(g, op, act, e);
    case NAS_G8_FULLY_CONNECTED: return k_fc(g, op, act, e);
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D: k_pool(g, op, act); return NAS_OK;
    case NAS_G8_ADD: k_add(g, op, act); return NAS_OK;
    case NAS_G8_RESHAPE:
      if (act[op->out] != tdata(g, act, op->in[0]))
        memmove(act[op->out], tdata(g, act, op->in[0]), nas_g8_numel(&g->tensors[op->out]));
      return NAS_OK;
    case NAS_G8_SOFTMAX: k_softmax(g, op, act); return NAS_OK;
    case NAS_G8_QUANTIZE: k_quantize(g, op, act); return NAS_OK;
    default:
      return nas_errf(e, NAS_EINVAL, "operator %d: unsupported op %s", i,
                      nas_g8_op_name(op->kind) ? nas_g8_op_name(op->kind) : "?");
  }
}
