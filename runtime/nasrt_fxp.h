/* nasrt_fxp.h: gemmlowp's fixed-point logistic and tanh for the recurrent and gate kernels, on
 * int32 raw values (Q<ib>.<31-ib>) and on int16 raw values (Q<ib>.<15-ib>), as static inline
 * functions shared by the device kernels and the host. One implementation for both widths:
 * a value is carried in an int32_t and `bits` (16 or 32) selects the raw type's arithmetic:
 * additions and negations wrap at the raw width (as gemmlowp's scalar Add/Sub/Neg on int16
 * and int32 do), the doubling high multiply and the saturating shifts use the raw width's
 * limits, and the constants are gemmlowp's int32 constants rescaled to int16 by a rounding
 * shift of 16 (RescaleConstantInitializer). Integer bits up to 6 (TFLite's LSTM cell tanh).
 * Needs only <stdint.h>. */
#ifndef NASRT_FXP_H
#define NASRT_FXP_H

#include <stdint.h>

#include "nasrt_fixed.h"

/* Wraps v to the raw width (two's complement, as a C++ int16/int32 conversion does). */
static inline int32_t nasrt_fx_wrap(int64_t v, int bits) {
  return bits == 16 ? (int32_t)(int16_t)(uint16_t)(uint64_t)v : (int32_t)(uint32_t)(uint64_t)v;
}
static inline int32_t nasrt_fx_add(int32_t a, int32_t b, int bits) {
  return nasrt_fx_wrap((int64_t)a + b, bits);
}
static inline int32_t nasrt_fx_sub(int32_t a, int32_t b, int bits) {
  return nasrt_fx_wrap((int64_t)a - b, bits);
}
static inline int32_t nasrt_fx_max(int bits) { return bits == 16 ? 32767 : NASRT_I32_MAX; }
static inline int32_t nasrt_fx_min(int bits) { return bits == 16 ? -32768 : NASRT_I32_MIN; }

/* SaturatingRoundingDoublingHighMul at the raw width. */
static inline int32_t nasrt_fx_mul(int32_t a, int32_t b, int bits) {
  if (bits == 32) return nasrt_srdhm(a, b);
  if (a == -32768 && b == -32768) return 32767;
  int32_t ab = a * b;
  int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return (int32_t)(int16_t)((ab + nudge) / (1 << 15));
}

/* x * 2^e: a saturating left shift (e > 0) or a rounding right shift (e < 0). */
static inline int32_t nasrt_fx_pot(int32_t x, int e, int bits) {
  if (e < 0) return nasrt_rdbpot(x, -e);
  if (e == 0) return x;
  const int32_t threshold = (int32_t)(((int64_t)1 << (bits - 1 - e)) - 1);
  if (x > threshold) return nasrt_fx_max(bits);
  if (x < -threshold) return nasrt_fx_min(bits);
  return (int32_t)((int64_t)x * ((int64_t)1 << e));
}

/* A gemmlowp int32 constant at the raw width. */
static inline int32_t nasrt_fx_const(int32_t c32, int bits) {
  return bits == 16 ? nasrt_rdbpot(c32, 16) : c32;
}
/* 1 in Q<ib> (the largest value for ib = 0). */
static inline int32_t nasrt_fx_one(int ib, int bits) {
  return ib == 0 ? nasrt_fx_max(bits) : (int32_t)1 << (bits - 1 - ib);
}

/* exp(a) for a in [-1/4, 0), a and the result in Q0. */
static inline int32_t nasrt_fx_exp_quarter(int32_t a, int bits) {
  const int32_t ct = nasrt_fx_const(1895147668, bits), c13 = nasrt_fx_const(715827883, bits);
  const int32_t x = nasrt_fx_add(a, (int32_t)1 << (bits - 4), bits); /* a + 1/8 */
  const int32_t x2 = nasrt_fx_mul(x, x, bits), x3 = nasrt_fx_mul(x2, x, bits);
  const int32_t x4 = nasrt_fx_mul(x2, x2, bits), x4q = nasrt_fx_pot(x4, -2, bits);
  const int32_t poly = nasrt_fx_pot(
      nasrt_fx_add(nasrt_fx_mul(nasrt_fx_add(x4q, x3, bits), c13, bits), x2, bits), -1, bits);
  const int64_t s = (int64_t)ct + nasrt_fx_mul(ct, nasrt_fx_add(x, poly, bits), bits);
  if (bits == 16) return s > 32767 ? 32767 : s < -32768 ? -32768 : (int32_t)s; /* saturating */
  return nasrt_fx_wrap(s, bits);
}

/* exp(a) for a <= 0 in Q<ib>; result Q0 (gemmlowp's exp_on_negative_values). */
static inline int32_t nasrt_fx_exp_neg(int32_t a, int ib, int bits) {
  static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308,
                                  39332535,   720401,     242}; /* exp(-2^k), k = -2..4 */
  const int fb = bits - 1 - ib;
  const int32_t quarter = (int32_t)1 << (fb - 2), mask = quarter - 1;
  const int32_t amq = nasrt_fx_sub(a & mask, quarter, bits);
  int32_t result = nasrt_fx_exp_quarter(nasrt_fx_pot(amq, ib, bits), bits);
  const int32_t rem = nasrt_fx_sub(amq, a, bits);
  for (int k = -2; k <= 4; k++)
    if (ib > k && (rem & ((int32_t)1 << (fb + k))))
      result = nasrt_fx_mul(result, nasrt_fx_const(mult[k + 2], bits), bits);
  if (ib > 5) {
    const int32_t clamp = nasrt_fx_const(-((int32_t)1 << (36 - ib)), bits); /* -32 */
    if (a < clamp) result = 0;
  }
  return a == 0 ? nasrt_fx_one(0, bits) : result;
}

/* 1/(1+a) (minus_one = 0) or (1-a)/(1+a) (minus_one = 1) for a in (0,1), Q0 in and out:
 * Newton-Raphson division, three iterations, in Q2. */
static inline int32_t nasrt_fx_recip(int32_t a, int minus_one, int bits) {
  const int32_t one0 = nasrt_fx_one(0, bits), one2 = nasrt_fx_one(2, bits);
  const int64_t sum = (int64_t)a + one0;
  const int32_t half = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum */
  const int32_t c48 = nasrt_fx_const(1515870810, bits), cm32 = nasrt_fx_const(-1010580540, bits);
  int32_t x = nasrt_fx_add(c48, nasrt_fx_mul(half, cm32, bits), bits);
  for (int i = 0; i < 3; i++) {
    const int32_t hx = nasrt_fx_mul(half, x, bits);
    const int32_t omh = nasrt_fx_sub(one2, hx, bits);
    x = nasrt_fx_add(x, nasrt_fx_pot(nasrt_fx_mul(x, omh, bits), 2, bits), bits);
  }
  if (minus_one) return nasrt_fx_pot(nasrt_fx_sub(x, one2, bits), 2, bits);
  return nasrt_fx_pot(x, 1, bits); /* x/2 in Q1 -> Q0 */
}

/* logistic(a), a in Q<ib>, result Q0 (gemmlowp::logistic). */
static inline int32_t nasrt_fx_logistic(int32_t a, int ib, int bits) {
  if (a == 0) return nasrt_fx_const((int32_t)1 << 30, bits);
  const int32_t abs_a = a > 0 ? a : nasrt_fx_sub(0, a, bits);
  const int32_t rp = nasrt_fx_recip(nasrt_fx_exp_neg(nasrt_fx_sub(0, abs_a, bits), ib, bits), 0, bits);
  return a > 0 ? rp : nasrt_fx_sub(nasrt_fx_one(0, bits), rp, bits);
}

/* tanh(a), a in Q<ib>, result Q0 (gemmlowp::tanh). */
static inline int32_t nasrt_fx_tanh(int32_t a, int ib, int bits) {
  if (a == 0) return 0;
  const int32_t n = a < 0 ? a : nasrt_fx_sub(0, a, bits);
  const int32_t t = nasrt_fx_recip(nasrt_fx_exp_neg(n, ib + 1, bits), 1, bits);
  return a < 0 ? nasrt_fx_sub(0, t, bits) : t;
}

#endif
