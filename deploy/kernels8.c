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
#include "core/alloc.h"

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

/* nas_q_mul + zero point + clamp without branches, so loops over it vectorise: the left shift
 * as a saturated multiply, SRDHM's division by 2^31 truncating toward zero as a biased
 * arithmetic shift (the INT32_MIN * INT32_MIN case cannot occur: multipliers are >= 0), the
 * rounding divide by 2^rsh with its mask precomputed. */
static inline int32_t mulq(int32_t a, int32_t lm, int32_t qm, int32_t rs, int32_t mk) {
  int64_t x = (int64_t)a * lm;
  x = x > INT32_MAX ? INT32_MAX : x < INT32_MIN ? INT32_MIN : x;
  int64_t ab = x * qm;
  int64_t t = ab + (ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30));
  int32_t h = (int32_t)((t + ((t >> 63) & INT64_C(0x7fffffff))) >> 31);
  int32_t rem = h & mk, thr = (mk >> 1) + (h < 0);
  return (h >> rs) + (rem > thr);
}

static inline int8_t rq1(int32_t a, int32_t lm, int32_t qm, int32_t rs, int32_t mk, int32_t out_off,
                         int32_t lo, int32_t hi) {
  int32_t m = mulq(a, lm, qm, rs, mk);
  m = m < -512 ? -512 : m > 512 ? 512 : m; /* same result after the clamp below, and the sum
                                              cannot overflow when the multiplier is huge */
  int32_t v = m + out_off;
  return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

/* The four constants of mulq for a real multiplier (as nas_q_quantize_multiplier + nas_q_mul). */
static void mulq_params(double m, int32_t *lm, int32_t *qm, int32_t *rs, int32_t *mk) {
  int sh;
  nas_q_quantize_multiplier(m, qm, &sh);
  if (*qm < 0) *qm = 0;
  int left = sh > 0 ? sh : 0, right = sh > 0 ? 0 : -sh;
  if (right > 31) right = 31;
  *lm = (int32_t)((int64_t)1 << left), *rs = right, *mk = (int32_t)(((int64_t)1 << right) - 1);
}

void nas_q_requant_row(const int32_t *acc, int n, const nas_q_rq *r, int32_t out_off, int32_t lo,
                       int32_t hi, int8_t *out) {
  const int32_t *restrict a = acc, *restrict lm = r->lmul, *restrict qm = r->mult;
  const int32_t *restrict rs = r->rsh, *restrict mk = r->mask;
  int8_t *restrict o = out; /* restrict: an int8 store may otherwise alias the arrays */
  for (int c = 0; c < n; c++) o[c] = rq1(a[c], lm[c], qm[c], rs[c], mk[c], out_off, lo, hi);
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

/* Per-output-channel requantisation of a conv/depthwise/FC op (TFLite's effective scale
 * input_scale * weight_scale / output_scale, per channel when the weights are). */
static int rq_build(const nas_g8_tensor *x, const nas_g8_tensor *w, const nas_g8_tensor *y, int co,
                    nas_q_rq *r) {
  r->mult = nas_malloc(sizeof *r->mult * (size_t)co), r->lmul = nas_malloc(sizeof *r->lmul * (size_t)co);
  r->rsh = nas_malloc(sizeof *r->rsh * (size_t)co), r->mask = nas_malloc(sizeof *r->mask * (size_t)co);
  if (!r->mult || !r->lmul || !r->rsh || !r->mask) return NAS_ENOMEM;
  for (int c = 0; c < co; c++) {
    double ws = w->scale[w->nq > 1 ? c : 0];
    double eff = (double)x->scale[0] * ws / (double)y->scale[0];
    mulq_params(eff, &r->lmul[c], &r->mult[c], &r->rsh[c], &r->mask[c]);
  }
  return NAS_OK;
}

static void prep_op_free(nas_g8_prep_op *p) {
  free(p->rq.mult), free(p->rq.lmul), free(p->rq.rsh), free(p->rq.mask), free(p->w16),
      free(p->bias);
  memset(p, 0, sizeof *p);
}

#define LANES 16 /* output channels are padded to a multiple of this (one 512-bit int32 vector) */

/* Geometry of a conv/depthwise window sweep: top/left padding and the extent of the input
 * that the windows cover (in rows/columns from -pad). */
typedef struct win { int pt, pl, hs, ws; } win;
static win window(const nas_g8_graph *g, const nas_g8_op *op) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  const int H = x->dims[1], W = x->dims[2], Ho = y->dims[1], Wo = y->dims[2];
  const int Kh = w->dims[1], Kw = w->dims[2];
  win r = {0, 0, (Ho - 1) * op->stride_h + (Kh - 1) * op->dil_h + 1,
           (Wo - 1) * op->stride_w + (Kw - 1) * op->dil_w + 1};
  /* TFLite padding: the total padding is split with the smaller half at top/left. */
  if (op->padding == NAS_G8_PAD_SAME) {
    r.pt = (r.hs - H) / 2, r.pl = (r.ws - W) / 2;
    if (r.pt < 0) r.pt = 0;
    if (r.pl < 0) r.pl = 0;
  }
  return r;
}

/* Prepares operator i of g into p (zeroed by the caller); *scratch gets the bytes of scratch
 * its kernel needs. */
static int prep_op(const nas_g8_graph *g, int i, nas_g8_prep_op *p, size_t *scratch) {
  const nas_g8_op *op = &g->ops[i];
  *scratch = 0;
  if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_DEPTHWISE_CONV_2D &&
      op->kind != NAS_G8_FULLY_CONNECTED)
    return NAS_OK;
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *y = &g->tensors[op->out];
  const int co = op->kind == NAS_G8_FULLY_CONNECTED ? w->dims[0] : y->dims[3];
  const int cop = (co + LANES - 1) / LANES * LANES;
  *scratch = sizeof(int32_t) * (size_t)cop;
  if (rq_build(x, w, y, co, &p->rq) != NAS_OK) return NAS_ENOMEM;
  const int dw = op->kind == NAS_G8_DEPTHWISE_CONV_2D;
  if (op->kind == NAS_G8_FULLY_CONNECTED || (dw && y->dims[3] != x->dims[3])) return NAS_OK;
  const size_t npix = nas_g8_numel(y) / (size_t)co; /* output pixels */
  const size_t depth = (size_t)w->dims[1] * w->dims[2] * (size_t)x->dims[3]; /* Kh*Kw*Ci */
  if (!dw && co <= 48 && npix >= 32 && depth * npix * sizeof(int16_t) <= ((size_t)8 << 20)) {
    /* pixel-vector conv (measured on the host: few output channels leave the channel vectors
     * half empty, while 32+ output pixels fill the pixel vectors; otherwise the channel-vector
     * kernel is faster): int16 filter [Co][Kh*Kw*Ci] in the stored order; scratch for the
     * unrolled input (int16 [Kh*Kw*Ci][P]), one channel's accumulators and int8 results */
    const int8_t *wd = w->data;
    const int32_t *bias = op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
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
  const int8_t *wd = w->data;
  const int32_t *bias = op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
  const size_t taps = (size_t)w->dims[1] * w->dims[2] * (dw ? 1 : (size_t)w->dims[3]);
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
    win r = window(g, op);
    *scratch += sizeof(int16_t) * (size_t)r.hs * (size_t)r.ws * (size_t)cop + 64;
  }
  return NAS_OK;
}

int nas_g8_prep_build(const nas_g8_graph *g, nas_g8_prep *p, nas_err *e) {
  memset(p, 0, sizeof *p);
  p->op = nas_calloc((size_t)(g->nops > 0 ? g->nops : 1), sizeof *p->op);
  if (!p->op) return nas_errf(e, NAS_ENOMEM, "out of memory preparing %d operators", g->nops);
  p->nops = g->nops;
  for (int i = 0; i < g->nops; i++) {
    size_t sb = 0;
    if (prep_op(g, i, &p->op[i], &sb) != NAS_OK) {
      nas_g8_prep_free(p);
      return nas_errf(e, NAS_ENOMEM, "operator %d: out of memory preparing its constants", i);
    }
    if (sb > p->scratch_bytes) p->scratch_bytes = sb;
  }
  return NAS_OK;
}

void nas_g8_prep_free(nas_g8_prep *p) {
  if (!p) return;
  for (int i = 0; p->op && i < p->nops; i++) prep_op_free(&p->op[i]);
  free(p->op);
  memset(p, 0, sizeof *p);
}

/* What every weighted kernel (conv, depthwise, fully connected) reads of its operator: the
 * tensors, their data, NHWC shapes (filters [Co|1,Kh,Kw,Ci|Co]; FC [Co,D] in Kh/Kw unused),
 * the zero-point offsets, the activation clamp and the padding window. */
typedef struct kview {
  const nas_g8_tensor *x, *w, *y;
  const int8_t *in, *wd;
  const int32_t *bias; /* NULL when absent */
  int8_t *out;
  int N, H, W, Ci, Ho, Wo, Co, Kh, Kw;
  int32_t in_off, w_off, out_off, lo, hi;
  win r;               /* conv and depthwise only */
} kview;

static kview view(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act) {
  kview k;
  k.x = &g->tensors[op->in[0]], k.w = &g->tensors[op->in[1]], k.y = &g->tensors[op->out];
  k.in = tdata(g, act, op->in[0]), k.wd = k.w->data, k.out = act[op->out];
  k.bias = op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
  const int conv = op->kind != NAS_G8_FULLY_CONNECTED;
  k.N = conv ? k.x->dims[0] : 0, k.H = conv ? k.x->dims[1] : 0, k.W = conv ? k.x->dims[2] : 0;
  k.Ci = conv ? k.x->dims[3] : 0, k.Ho = conv ? k.y->dims[1] : 0, k.Wo = conv ? k.y->dims[2] : 0;
  k.Co = conv ? k.y->dims[3] : k.w->dims[0];
  k.Kh = conv ? k.w->dims[1] : 0, k.Kw = conv ? k.w->dims[2] : 0;
  k.in_off = -k.x->zero_point[0], k.w_off = -k.w->zero_point[0], k.out_off = k.y->zero_point[0];
  nas_q_act_range(op->act, k.y->scale[0], k.y->zero_point[0], &k.lo, &k.hi);
  k.r = conv ? window(g, op) : (win){0, 0, 0, 0};
  return k;
}

/* Products of an input value with the zero point removed (-255..255) and an int8 weight
 * (-128..127) fit int16 (|x| <= 32640), so the channel loops multiply in 16 bits and widen for
 * the int32 sum (exact, like TFLM's int32 arithmetic). Conv: per output pixel, every tap adds
 * v * w[ic][0..Cop) for each input channel. */
static void k_conv(const nas_g8_graph *g, const nas_g8_op *op, const nas_g8_prep_op *pp,
                   int8_t *const *act, int32_t *restrict acc) {
  const kview k_ = view(g, op, act);
  const int Cop = pp->cop;
  const int sh = op->stride_h, sw = op->stride_w, dh = op->dil_h, dwl = op->dil_w;
  for (int n = 0; n < k_.N; n++)
    for (int oy = 0; oy < k_.Ho; oy++)
      for (int ox = 0; ox < k_.Wo; ox++) {
        const int iy0 = oy * sh - k_.r.pt, ix0 = ox * sw - k_.r.pl;
        memcpy(acc, pp->bias, sizeof *acc * (size_t)Cop);
        for (int ky = 0; ky < k_.Kh; ky++) {
          const int iy = iy0 + dh * ky;
          if (iy < 0 || iy >= k_.H) continue; /* padding: input = zero point, adds nothing */
          for (int kx = 0; kx < k_.Kw; kx++) {
            const int ix = ix0 + dwl * kx;
            if (ix < 0 || ix >= k_.W) continue;
            const int8_t *px = k_.in + (((size_t)n * k_.H + iy) * k_.W + ix) * k_.Ci;
            const int16_t *pw = pp->w16 + ((size_t)ky * k_.Kw + kx) * k_.Ci * Cop;
            for (int ic = 0; ic < k_.Ci; ic++) {
              const int16_t v = (int16_t)(px[ic] + k_.in_off);
              const int16_t *restrict pwc = pw + (size_t)ic * Cop;
              for (int oc = 0; oc < Cop; oc++) acc[oc] += (int16_t)(v * pwc[oc]);
            }
          }
        }
        nas_q_requant_row(acc, k_.Co, &pp->rq, k_.out_off, k_.lo, k_.hi,
                          k_.out + (((size_t)n * k_.Ho + oy) * k_.Wo + ox) * k_.Co);
      }
}

/* Conv as a matrix product with the output pixels on the vector axis: the input is unrolled
 * (im2col) to int16 [Kh*Kw*Ci][P] with the zero point removed (padding taps are 0), then for
 * each output channel acc[0..P) = bias + sum_k w[oc][k] * x[k][0..P), requantised with that
 * channel's multiplier and scattered to NHWC. Long unit-stride loops whatever the channel
 * count. */
static void k_conv_pixels(const nas_g8_graph *g, const nas_g8_op *op, const nas_g8_prep_op *pp,
                          int8_t *const *act, void *scratch) {
  const kview k_ = view(g, op, act);
  const size_t P = (size_t)k_.N * k_.Ho * k_.Wo, D = (size_t)k_.Kh * k_.Kw * k_.Ci, a64 = 64;
  int16_t *restrict xt = scratch;
  int32_t *restrict acc = (int32_t *)((char *)scratch + ((sizeof *xt * D * P + a64 - 1) & ~(a64 - 1)));
  int8_t *restrict tmp = (int8_t *)acc + ((sizeof *acc * P + a64 - 1) & ~(a64 - 1));
  size_t p = 0;
  for (int n = 0; n < k_.N; n++)
    for (int oy = 0; oy < k_.Ho; oy++)
      for (int ox = 0; ox < k_.Wo; ox++, p++)
        for (int ky = 0; ky < k_.Kh; ky++) {
          const int iy = oy * op->stride_h - k_.r.pt + op->dil_h * ky;
          for (int kx = 0; kx < k_.Kw; kx++) {
            const int ix = ox * op->stride_w - k_.r.pl + op->dil_w * kx;
            int16_t *col = xt + ((size_t)ky * k_.Kw + kx) * k_.Ci * P + p;
            if (iy < 0 || iy >= k_.H || ix < 0 || ix >= k_.W) { /* padding = zero point -> 0 */
              for (int ic = 0; ic < k_.Ci; ic++) col[(size_t)ic * P] = 0;
            } else {
              const int8_t *px = k_.in + (((size_t)n * k_.H + iy) * k_.W + ix) * k_.Ci;
              for (int ic = 0; ic < k_.Ci; ic++) col[(size_t)ic * P] = (int16_t)(px[ic] + k_.in_off);
            }
          }
        }
  for (int oc = 0; oc < k_.Co; oc++) {
    const int32_t b = pp->bias[oc];
    for (size_t q = 0; q < P; q++) acc[q] = b;
    const int16_t *wr = pp->w16 + (size_t)oc * D;
    for (size_t k = 0; k < D; k++) {
      const int16_t wv = wr[k];
      if (!wv) continue;
      const int16_t *restrict xr = xt + k * P;
      for (size_t q = 0; q < P; q++) acc[q] += (int16_t)(wv * xr[q]);
    }
    const int32_t lm = pp->rq.lmul[oc], qm = pp->rq.mult[oc], rs = pp->rq.rsh[oc], mk = pp->rq.mask[oc];
    for (size_t q = 0; q < P; q++) tmp[q] = rq1(acc[q], lm, qm, rs, mk, k_.out_off, k_.lo, k_.hi);
    for (size_t q = 0; q < P; q++) k_.out[q * k_.Co + oc] = tmp[q];
  }
}

/* Depthwise conv, multiplier 1: the input is first staged as int16 with the zero point
 * removed, a zero border for the padding and Cop channels, so each tap is one unbroken
 * vector loop. */
static void k_dwconv(const nas_g8_graph *g, const nas_g8_op *op, const nas_g8_prep_op *pp,
                     int8_t *const *act, int32_t *restrict acc, int16_t *restrict st) {
  const kview k_ = view(g, op, act);
  const int Cop = pp->cop;
  const int sh = op->stride_h, sw = op->stride_w, dh = op->dil_h, dwl = op->dil_w;
  for (int n = 0; n < k_.N; n++) {
    memset(st, 0, sizeof *st * (size_t)k_.r.hs * k_.r.ws * Cop);
    for (int yy = 0; yy < k_.H; yy++) {
      const int sy = yy + k_.r.pt;
      if (sy >= k_.r.hs) break;
      for (int xx = 0; xx < k_.W; xx++) {
        const int sx = xx + k_.r.pl;
        if (sx >= k_.r.ws) break;
        const int8_t *restrict px = k_.in + (((size_t)n * k_.H + yy) * k_.W + xx) * k_.Ci;
        int16_t *restrict ps = st + ((size_t)sy * k_.r.ws + sx) * Cop;
        for (int c = 0; c < k_.Ci; c++) ps[c] = (int16_t)(px[c] + k_.in_off);
      }
    }
    for (int oy = 0; oy < k_.Ho; oy++)
      for (int ox = 0; ox < k_.Wo; ox++) {
        memcpy(acc, pp->bias, sizeof *acc * (size_t)Cop);
        for (int ky = 0; ky < k_.Kh; ky++)
          for (int kx = 0; kx < k_.Kw; kx++) {
            const int16_t *restrict ps =
                st + ((size_t)(oy * sh + ky * dh) * k_.r.ws + (size_t)(ox * sw + kx * dwl)) * Cop;
            const int16_t *restrict pw = pp->w16 + ((size_t)ky * k_.Kw + kx) * Cop;
            for (int c = 0; c < Cop; c++) acc[c] += (int16_t)(ps[c] * pw[c]);
          }
        nas_q_requant_row(acc, k_.Ci, &pp->rq, k_.out_off, k_.lo, k_.hi,
                          k_.out + (((size_t)n * k_.Ho + oy) * k_.Wo + ox) * k_.Ci);
      }
  }
}

/* Depthwise conv with a channel multiplier M > 1 (output channel oc reads input oc / M). */
static void k_dwconv_mult(const nas_g8_graph *g, const nas_g8_op *op, const nas_g8_prep_op *pp,
                          int8_t *const *act, int32_t *restrict acc) {
  const kview k_ = view(g, op, act);
  const int M = k_.Co / k_.Ci;
  for (int n = 0; n < k_.N; n++)
    for (int oy = 0; oy < k_.Ho; oy++)
      for (int ox = 0; ox < k_.Wo; ox++) {
        for (int oc = 0; oc < k_.Co; oc++) acc[oc] = k_.bias ? k_.bias[oc] : 0;
        for (int ky = 0; ky < k_.Kh; ky++) {
          const int iy = oy * op->stride_h - k_.r.pt + op->dil_h * ky;
          if (iy < 0 || iy >= k_.H) continue;
          for (int kx = 0; kx < k_.Kw; kx++) {
            const int ix = ox * op->stride_w - k_.r.pl + op->dil_w * kx;
            if (ix < 0 || ix >= k_.W) continue;
            const int8_t *px = k_.in + (((size_t)n * k_.H + iy) * k_.W + ix) * k_.Ci;
            const int8_t *pw = k_.wd + ((size_t)ky * k_.Kw + kx) * k_.Co;
            for (int oc = 0; oc < k_.Co; oc++) acc[oc] += (px[oc / M] + k_.in_off) * pw[oc];
          }
        }
        nas_q_requant_row(acc, k_.Co, &pp->rq, k_.out_off, k_.lo, k_.hi,
                          k_.out + (((size_t)n * k_.Ho + oy) * k_.Wo + ox) * k_.Co);
      }
}

static void k_fc(const nas_g8_graph *g, const nas_g8_op *op, const nas_g8_prep_op *pp,
                 int8_t *const *act, int32_t *restrict acc) {
  const kview k_ = view(g, op, act);
  const int D = k_.w->dims[1];
  const size_t B = nas_g8_numel(k_.x) / (size_t)D;
  for (size_t b = 0; b < B; b++) {
    const int8_t *px = k_.in + b * (size_t)D;
    for (int oc = 0; oc < k_.Co; oc++) {
      const int8_t *pw = k_.wd + (size_t)oc * D;
      int32_t s = 0;
      for (int d = 0; d < D; d++) s += (px[d] + k_.in_off) * (pw[d] + k_.w_off);
      acc[oc] = s + (k_.bias ? k_.bias[oc] : 0);
    }
    nas_q_requant_row(acc, k_.Co, &pp->rq, k_.out_off, k_.lo, k_.hi, k_.out + b * (size_t)k_.Co);
  }
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
  int32_t l1, m1, r1, k1, l2, m2, r2, k2, lo_, mo, ro, ko;
  mulq_params(sa / twice_max, &l1, &m1, &r1, &k1);
  mulq_params(sb / twice_max, &l2, &m2, &r2, &k2);
  mulq_params(twice_max / ((double)(1 << left_shift) * (double)y->scale[0]), &lo_, &mo, &ro, &ko);
  int32_t lo, hi;
  nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &lo, &hi);
  const int32_t za = a->zero_point[0], zb = b->zero_point[0], zy = y->zero_point[0];
  const size_t n = nas_g8_numel(y);
  int8_t *restrict o = out;
  for (size_t i = 0; i < n; i++) {
    int32_t va = (pa[i] - za) * (1 << left_shift), vb = (pb[i] - zb) * (1 << left_shift);
    int32_t sum = mulq(va, l1, m1, r1, k1) + mulq(vb, l2, m2, r2, k2);
    o[i] = rq1(sum, lo_, mo, ro, ko, zy, lo, hi);
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
    int64_t v = (int64_t)nas_q_mul(in[i] - x->zero_point[0], m, s) + y->zero_point[0];
    out[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
  }
}

/* Runs operator i with its prepared constants pp. */
static int run_prepared(const nas_g8_graph *g, const nas_g8_prep_op *pp, int i, int8_t *const *act,
                        void *scratch, nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  /* scratch: the accumulators (Cop int32), then the depthwise staging buffer, 64-byte aligned */
  int32_t *acc = scratch;
  int16_t *st = (int16_t *)((char *)scratch + ((sizeof(int32_t) * (size_t)(pp->cop ? pp->cop : 1) + 63) & ~(size_t)63));
  switch (op->kind) {
    case NAS_G8_CONV_2D:
      if (pp->pixel) k_conv_pixels(g, op, pp, act, scratch);
      else k_conv(g, op, pp, act, acc);
      return NAS_OK;
    case NAS_G8_DEPTHWISE_CONV_2D:
      if (pp->w16) k_dwconv(g, op, pp, act, acc, st);
      else k_dwconv_mult(g, op, pp, act, acc);
      return NAS_OK;
    case NAS_G8_FULLY_CONNECTED: k_fc(g, op, pp, act, acc); return NAS_OK;
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

int nas_g8_run_op_prep(const nas_g8_graph *g, const nas_g8_prep *p, int i, int8_t *const *act,
                       void *scratch, nas_err *e) {
  return run_prepared(g, &p->op[i], i, act, scratch, e);
}

int nas_g8_run_op(const nas_g8_graph *g, int i, int8_t *const *act, nas_err *e) {
  nas_g8_prep_op one = {0}; /* op i prepared for this one call */
  size_t sb = 0;
  int rc = prep_op(g, i, &one, &sb);
  void *scratch = rc == NAS_OK ? nas_malloc(sb + 128) : NULL;
  rc = scratch ? run_prepared(g, &one, i, act, scratch, e)
               : nas_errf(e, NAS_ENOMEM, "operator %d: out of memory preparing its constants", i);
  prep_op_free(&one);
  free(scratch);
  return rc;
}
