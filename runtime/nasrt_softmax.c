/* nasrt_softmax.c: the int8 runtime's SOFTMAX, TFLite Micro's int8 arithmetic: per row, the
 * differences to the maximum are scaled to Q5.26, exponentiated with gemmlowp's fixed-point
 * exp (exp on [-1/4, 0) by a polynomial, the rest by constant factors), summed in Q12.19 and
 * divided through gemmlowp's 1/(1+x) (Newton-Raphson); the output is round(p * 256) - 128. */
#include <stdint.h>

#include "nasrt.h"
#include "nasrt_fixed.h"

/* x * 2^exponent with saturation (exponent > 0) or rounding (exponent < 0). */
static int32_t sat_mul_pot(int32_t x, int exponent) {
  if (exponent < 0) return nasrt_rdbpot(x, -exponent);
  if (exponent == 0) return x;
  int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
  if (x > threshold) return NASRT_I32_MAX;
  if (x < -threshold) return NASRT_I32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

static int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* exp(a) for a in [-1/4, 0), a and result Q0.31. */
static int32_t exp_quarter(int32_t a) {
  const int32_t c_term = 1895147668, c_1_3 = 715827883;
  int32_t x = wrap_add(a, 1 << 28); /* a + 1/8 */
  int32_t x2 = nasrt_srdhm(x, x), x3 = nasrt_srdhm(x2, x), x4 = nasrt_srdhm(x2, x2);
  int32_t x4_4 = sat_mul_pot(x4, -2);
  int32_t poly = sat_mul_pot(wrap_add(nasrt_srdhm(wrap_add(x4_4, x3), c_1_3), x2), -1);
  return wrap_add(c_term, nasrt_srdhm(c_term, wrap_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q5.26; result Q0.31 (gemmlowp exp_on_negative_values). */
static int32_t exp_neg(int32_t a) {
  const int frac_bits = 26;
  const int32_t quarter = 1 << 24, mask = quarter - 1;
  static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308,
                                  39332535, 720401, 242}; /* exp(-2^k), k = -2..4 */
  int32_t a_mod = wrap_sub(a & mask, quarter);
  int32_t result = exp_quarter(sat_mul_pot(a_mod, 5));
  int32_t rem = wrap_sub(a_mod, a);
  for (int k = 0; k < 7; k++)
    if (rem & (int32_t)((uint32_t)1 << (frac_bits + k - 2))) result = nasrt_srdhm(result, mult[k]);
  return a == 0 ? NASRT_I32_MAX : result;
}

/* 1/(1+x) for x in [0,1), Q0.31 in and out (Newton-Raphson as in gemmlowp). */
static int32_t one_over_one_plus_x(int32_t a) {
  int64_t s = (int64_t)a + NASRT_I32_MAX;
  int32_t half_den = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum(a, 1) */
  const int32_t c48_17 = 1515870810, cm32_17 = -1010580540;  /* Q2.29 */
  int32_t x = wrap_add(c48_17, nasrt_srdhm(half_den, cm32_17));
  for (int i = 0; i < 3; i++) {
    int32_t one_minus = wrap_sub(1 << 29, nasrt_srdhm(half_den, x)); /* Q2.29 */
    x = wrap_add(x, sat_mul_pot(nasrt_srdhm(x, one_minus), 2));      /* Q4 -> Q2 */
  }
  return sat_mul_pot(x, 1); /* x/2 read as Q1.30 (ExactMulByPot<-1>), then Q1 -> Q0 */
}

static int clz32(uint32_t x) {
  int n = 0;
  if (!x) return 32;
  while (!(x & 0x80000000u)) x <<= 1, n++;
  return n;
}

void nasrt_softmax(const nasrt_softmax_p *p, const int8_t *in, int8_t *out) {
  const int32_t depth = p->depth;
  for (int32_t r = 0; r < p->rows; r++) {
    const int8_t *px = in + (long)r * depth;
    int8_t *po = out + (long)r * depth;
    int32_t mx = -128, sum = 0; /* sum: Q12.19 */
    for (int32_t c = 0; c < depth; c++)
      if (px[c] > mx) mx = px[c];
    for (int32_t c = 0; c < depth; c++) {
      int32_t diff = px[c] - mx;
      if (diff >= p->diff_min)
        sum = wrap_add(sum, nasrt_rdbpot(exp_neg(nasrt_srdhm(diff * (1 << p->lshift), p->mult)), 12));
    }
    int headroom = clz32((uint32_t)sum);
    int bits_over_unit = 12 - headroom;
    int32_t shifted_minus_one = (int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31));
    int32_t scale = one_over_one_plus_x(shifted_minus_one);
    for (int32_t c = 0; c < depth; c++) {
      int32_t diff = px[c] - mx;
      if (diff >= p->diff_min) {
        int32_t e0 = exp_neg(nasrt_srdhm(diff * (1 << p->lshift), p->mult));
        int32_t v = nasrt_rdbpot(nasrt_srdhm(scale, e0), bits_over_unit + 31 - 8) - 128;
        po[c] = (int8_t)nasrt_clamp(v, -128, 127);
      } else {
        po[c] = -128;
      }
    }
  }
}
