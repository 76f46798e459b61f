/* deploy/kernels8.c: the host's int8 kernels, TFLite Micro's arithmetic (its
 * reference_integer_ops / reference_ops kernels), vectorisable: accumulate (q_in - zp_in) * q_w
 * in int32, add the int32 bias, requantise with a Q31 multiplier and shift (saturating rounding
 * doubling high multiply, then rounding divide by a power of two), add the output zero point,
 * clamp to the fused activation's range. Every parameter comes from the operator's prepared
 * struct (prep8.c; the MCU runtime's, runtime/nasrt.h); pooling, softmax, requantisation and
 * reshape run the MCU runtime's own kernels. All layouts NHWC; conv filters [Co,Kh,Kw,Ci],
 * depthwise filters [1,Kh,Kw,Ci*M], fully-connected weights [Co,D]. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "deploy/graph8.h"
#include "deploy/rnn8.h"
#include "deploy/wino8.h"

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

void nas_q_requant_row(const int32_t *acc, int n, const nas_q_rq *r, int32_t out_off, int32_t lo,
                       int32_t hi, int8_t *out) {
  const int32_t *restrict a = acc, *restrict lm = r->lmul, *restrict qm = r->mult;
  const int32_t *restrict rs = r->rsh, *restrict mk = r->mask;
  int8_t *restrict o = out; /* restrict: an int8 store may otherwise alias the arrays */
  for (int c = 0; c < n; c++) o[c] = rq1(a[c], lm[c], qm[c], rs[c], mk[c], out_off, lo, hi);
}


static const int8_t *tdata(const nas_g8_graph *g, int8_t *const *act, int t) {
  return act[t] ? act[t] : (const int8_t *)g->tensors[t].data;
}

/* Products of an input value with the zero point removed (-255..255) and an int8 weight
 * (-128..127) fit int16 (|x| <= 32640), so the channel loops multiply in 16 bits and widen for
 * the int32 sum (exact, like TFLM's int32 arithmetic). Conv: per output pixel, every tap adds
 * v * w[ic][0..Cop) for each input channel. The parameters are copied into locals (c) so that
 * stores through int8 pointers cannot force their reloads. */
static void k_conv(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out, int32_t *restrict acc) {
  const nasrt_conv_p c = pp->rt.conv;
  const int Cop = pp->cop;
  for (int n = 0; n < c.n; n++)
    for (int oy = 0; oy < c.ho; oy++)
      for (int ox = 0; ox < c.wo; ox++) {
        const int iy0 = oy * c.sh - c.pt, ix0 = ox * c.sw - c.pl;
        memcpy(acc, pp->bias, sizeof *acc * (size_t)Cop);
        for (int ky = 0; ky < c.kh; ky++) {
          const int iy = iy0 + c.dh * ky;
          if (iy < 0 || iy >= c.h) continue; /* padding: input = zero point, adds nothing */
          for (int kx = 0; kx < c.kw; kx++) {
            const int ix = ix0 + c.dw * kx;
            if (ix < 0 || ix >= c.w) continue;
            const int8_t *px = in + (((size_t)n * c.h + iy) * c.w + ix) * c.ci;
            const int16_t *pw = pp->w16 + ((size_t)ky * c.kw + kx) * c.ci * Cop;
            for (int ic = 0; ic < c.ci; ic++) {
              const int16_t v = (int16_t)(px[ic] + c.in_off);
              const int16_t *restrict pwc = pw + (size_t)ic * Cop;
              for (int oc = 0; oc < Cop; oc++) acc[oc] += (int16_t)(v * pwc[oc]);
            }
          }
        }
        nas_q_requant_row(acc, c.co, &pp->rq, c.out_off, c.lo, c.hi,
                          out + (((size_t)n * c.ho + oy) * c.wo + ox) * c.co);
      }
}

/* Conv as a matrix product with the output pixels on the vector axis: the input is unrolled
 * (im2col) to int16 [Kh*Kw*Ci][P] with the zero point removed (padding taps are 0), then for
 * each output channel acc[0..P) = bias + sum_k w[oc][k] * x[k][0..P), requantised with that
 * channel's multiplier and scattered to NHWC. Long unit-stride loops whatever the channel
 * count. */
static void k_conv_pixels(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out, void *scratch) {
  const nasrt_conv_p c = pp->rt.conv;
  const size_t P = (size_t)c.n * c.ho * c.wo, D = (size_t)c.kh * c.kw * c.ci, a64 = 64;
  int16_t *restrict xt = scratch;
  int32_t *restrict acc = (int32_t *)((char *)scratch + ((sizeof *xt * D * P + a64 - 1) & ~(a64 - 1)));
  int8_t *restrict tmp = (int8_t *)acc + ((sizeof *acc * P + a64 - 1) & ~(a64 - 1));
  size_t p = 0;
  for (int n = 0; n < c.n; n++)
    for (int oy = 0; oy < c.ho; oy++)
      for (int ox = 0; ox < c.wo; ox++, p++)
        for (int ky = 0; ky < c.kh; ky++) {
          const int iy = oy * c.sh - c.pt + c.dh * ky;
          for (int kx = 0; kx < c.kw; kx++) {
            const int ix = ox * c.sw - c.pl + c.dw * kx;
            int16_t *col = xt + ((size_t)ky * c.kw + kx) * c.ci * P + p;
            if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) { /* padding = zero point -> 0 */
              for (int ic = 0; ic < c.ci; ic++) col[(size_t)ic * P] = 0;
            } else {
              const int8_t *px = in + (((size_t)n * c.h + iy) * c.w + ix) * c.ci;
              for (int ic = 0; ic < c.ci; ic++) col[(size_t)ic * P] = (int16_t)(px[ic] + c.in_off);
            }
          }
        }
  for (int oc = 0; oc < c.co; oc++) {
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
    for (size_t q = 0; q < P; q++) tmp[q] = rq1(acc[q], lm, qm, rs, mk, c.out_off, c.lo, c.hi);
    for (size_t q = 0; q < P; q++) out[q * c.co + oc] = tmp[q];
  }
}

/* Depthwise conv, multiplier 1: the input is first staged as int16 with the zero point
 * removed, a zero border for the padding and Cop channels, so each tap is one unbroken
 * vector loop. */
static void k_dwconv(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out,
                     int32_t *restrict acc, int16_t *restrict st) {
  const nasrt_conv_p c = pp->rt.conv;
  const int Cop = pp->cop, hs = pp->stage_h, ws = pp->stage_w;
  for (int n = 0; n < c.n; n++) {
    memset(st, 0, sizeof *st * (size_t)hs * ws * Cop);
    for (int yy = 0; yy < c.h; yy++) {
      const int sy = yy + c.pt;
      if (sy >= hs) break;
      for (int xx = 0; xx < c.w; xx++) {
        const int sx = xx + c.pl;
        if (sx >= ws) break;
        const int8_t *restrict px = in + (((size_t)n * c.h + yy) * c.w + xx) * c.ci;
        int16_t *restrict ps = st + ((size_t)sy * ws + sx) * Cop;
        for (int ch = 0; ch < c.ci; ch++) ps[ch] = (int16_t)(px[ch] + c.in_off);
      }
    }
    for (int oy = 0; oy < c.ho; oy++)
      for (int ox = 0; ox < c.wo; ox++) {
        memcpy(acc, pp->bias, sizeof *acc * (size_t)Cop);
        for (int ky = 0; ky < c.kh; ky++)
          for (int kx = 0; kx < c.kw; kx++) {
            const int16_t *restrict ps =
                st + ((size_t)(oy * c.sh + ky * c.dh) * ws + (size_t)(ox * c.sw + kx * c.dw)) * Cop;
            const int16_t *restrict pw = pp->w16 + ((size_t)ky * c.kw + kx) * Cop;
            for (int ch = 0; ch < Cop; ch++) acc[ch] += (int16_t)(ps[ch] * pw[ch]);
          }
        nas_q_requant_row(acc, c.ci, &pp->rq, c.out_off, c.lo, c.hi,
                          out + (((size_t)n * c.ho + oy) * c.wo + ox) * c.ci);
      }
  }
}

/* Depthwise conv with a channel multiplier M > 1 (output channel oc reads input oc / M). */
static void k_dwconv_mult(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out,
                          int32_t *restrict acc) {
  const nasrt_conv_p c = pp->rt.conv;
  const int M = c.co / c.ci;
  for (int n = 0; n < c.n; n++)
    for (int oy = 0; oy < c.ho; oy++)
      for (int ox = 0; ox < c.wo; ox++) {
        for (int oc = 0; oc < c.co; oc++) acc[oc] = c.bias ? c.bias[oc] : 0;
        for (int ky = 0; ky < c.kh; ky++) {
          const int iy = oy * c.sh - c.pt + c.dh * ky;
          if (iy < 0 || iy >= c.h) continue;
          for (int kx = 0; kx < c.kw; kx++) {
            const int ix = ox * c.sw - c.pl + c.dw * kx;
            if (ix < 0 || ix >= c.w) continue;
            const int8_t *px = in + (((size_t)n * c.h + iy) * c.w + ix) * c.ci;
            const int8_t *pw = c.filter + ((size_t)ky * c.kw + kx) * c.co;
            for (int oc = 0; oc < c.co; oc++) acc[oc] += (px[oc / M] + c.in_off) * pw[oc];
          }
        }
        nas_q_requant_row(acc, c.co, &pp->rq, c.out_off, c.lo, c.hi,
                          out + (((size_t)n * c.ho + oy) * c.wo + ox) * c.co);
      }
}

static void k_fc(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out, int32_t *restrict acc) {
  const nasrt_fc_p f = pp->rt.fc;
  for (size_t b = 0; b < (size_t)f.b; b++) {
    const int8_t *px = in + b * (size_t)f.d;
    for (int oc = 0; oc < f.co; oc++) {
      const int8_t *pw = f.filter + (size_t)oc * f.d;
      int32_t s = 0;
      for (int d = 0; d < f.d; d++) s += (px[d] + f.in_off) * (pw[d] + f.w_off);
      acc[oc] = s + (f.bias ? f.bias[oc] : 0);
    }
    nas_q_requant_row(acc, f.co, &pp->rq, f.out_off, f.lo, f.hi, out + b * (size_t)f.co);
  }
}

/* ADD with the runtime's arithmetic in the branch-free form of nas_q_mul. */
static void k_add(const nas_g8_prep_op *pp, const int8_t *pa, const int8_t *pb, int8_t *out) {
  const nasrt_add_p d = pp->rt.add;
  int32_t l1, m1, r1, k1, l2, m2, r2, k2, lo_, mo, ro, ko;
  nas_q_rq_consts(d.a_mult, d.a_shift, &l1, &m1, &r1, &k1);
  nas_q_rq_consts(d.b_mult, d.b_shift, &l2, &m2, &r2, &k2);
  nas_q_rq_consts(d.out_mult, d.out_shift, &lo_, &mo, &ro, &ko);
  const int32_t ls = (int32_t)1 << d.left_shift;
  int8_t *restrict o = out;
  for (size_t i = 0; i < (size_t)d.n; i++) {
    int32_t va = (pa[i] + d.a_off) * ls, vb = (pb[i] + d.b_off) * ls;
    int32_t sum = mulq(va, l1, m1, r1, k1) + mulq(vb, l2, m2, r2, k2);
    o[i] = rq1(sum, lo_, mo, ro, ko, d.out_zp, d.lo, d.hi);
  }
}

/* Runs operator i with its prepared constants pp. */
static int run_prepared(const nas_g8_graph *g, const nas_g8_prep_op *pp, int i, int8_t *const *act,
                        void *scratch, nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  const int8_t *in = tdata(g, act, op->in[0]);
  int8_t *out = act[op->out];
  /* scratch: the accumulators (Cop int32), then the depthwise staging buffer, 64-byte aligned */
  int32_t *acc = scratch;
  int16_t *st = (int16_t *)((char *)scratch + ((sizeof(int32_t) * (size_t)(pp->cop ? pp->cop : 1) + 63) & ~(size_t)63));
  switch (pp->rt_kind) {
    case NASRT_CONV_2D:
      if (pp->pixel) k_conv_pixels(pp, in, out, scratch);
      else k_conv(pp, in, out, acc);
      return NAS_OK;
    case NASRT_DEPTHWISE_CONV_2D:
      if (pp->w16) k_dwconv(pp, in, out, acc, st);
      else k_dwconv_mult(pp, in, out, acc);
      return NAS_OK;
    case NASRT_FULLY_CONNECTED: k_fc(pp, in, out, acc); return NAS_OK;
    case NASRT_AVERAGE_POOL_2D: nasrt_avgpool(&pp->rt.pool, in, out); return NAS_OK;
    case NASRT_MAX_POOL_2D: nasrt_maxpool(&pp->rt.pool, in, out); return NAS_OK;
    case NASRT_ADD: k_add(pp, in, tdata(g, act, op->in[1]), out); return NAS_OK;
    case NASRT_RESHAPE: nasrt_copy(&pp->rt.copy, in, out); return NAS_OK;
    case NASRT_SOFTMAX: nasrt_softmax(&pp->rt.softmax, in, out); return NAS_OK;
    case NASRT_QUANTIZE: nasrt_requantize(&pp->rt.requant, in, out); return NAS_OK;
    case NASRT_WINOGRAD_CONV_2D: nas_g8_wino_run(pp, in, out, scratch); return NAS_OK;
    case NASRT_SPARSE: nasrt_sparse(&pp->rt.sparse, in, out); return NAS_OK;
    default:
      if (nas_g8_is_rnn_kind(op->kind)) return nas_g8_run_rnn(g, pp, i, act, e);
      return nas_errf(e, NAS_EINVAL, "operator %d: unsupported op %s", i,
                      nas_g8_op_name(op->kind) ? nas_g8_op_name(op->kind) : "?");
  }
}

int nas_g8_run_op_prep(const nas_g8_graph *g, const nas_g8_prep *p, int i, int8_t *const *act,
                       void *scratch, nas_err *e) {
  return run_prepared(g, &p->op[i], i, act, scratch, e);
}

int nas_g8_run_op(const nas_g8_graph *g, int i, int8_t *const *act, nas_err *e) {
  nas_g8_prep_op one; /* op i prepared for this one call */
  size_t sb = 0;
  int rc = nas_g8_prep_op_build(g, NULL, i, &one, &sb, e);
  if (rc) return rc;
  void *scratch = nas_malloc(sb + 128);
  rc = scratch ? run_prepared(g, &one, i, act, scratch, e)
               : nas_errf(e, NAS_ENOMEM, "operator %d: out of memory preparing its constants", i);
  nas_g8_prep_op_free(&one);
  free(scratch);
  return rc;
}
