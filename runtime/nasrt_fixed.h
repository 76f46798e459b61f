/* nasrt_fixed.h: the fixed-point arithmetic of the int8 runtime (TFLite / gemmlowp
 * semantics), as static inline functions so that the device kernels (nasrt_*.c) and the host
 * runtime (deploy/) compile the same definitions. Needs only <stdint.h>. */
#ifndef NASRT_FIXED_H
#define NASRT_FIXED_H

#include <stdint.h>

#define NASRT_I32_MAX ((int32_t)0x7fffffff)
#define NASRT_I32_MIN (-NASRT_I32_MAX - 1)

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2^31 truncated, nudge = 2^30
 * for a*b >= 0 else 1 - 2^30 (so -1.5 -> -1, +1.5 -> 2); INT32_MIN*INT32_MIN -> INT32_MAX. */
static inline int32_t nasrt_srdhm(int32_t a, int32_t b) {
  if (a == NASRT_I32_MIN && b == NASRT_I32_MIN) return NASRT_I32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward 0 */
}

/* x / 2^exponent rounded to nearest, ties away from zero (exponent <= 0: x; above 31: 31). */
static inline int32_t nasrt_rdbpot(int32_t x, int exponent) {
  if (exponent <= 0) return x;
  if (exponent > 31) exponent = 31;
  int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  int32_t rem = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (rem > threshold ? 1 : 0); /* >> of a negative: arithmetic (gcc) */
}

/* TFLite's MultiplyByQuantizedMultiplier: x * q * 2^(shift-31) rounded; the left shift is
 * saturated (TFLite computes it in int32), shift > 0 is a left shift. */
static inline int32_t nasrt_mul(int32_t x, int32_t q, int shift) {
  int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  int64_t xl = (int64_t)x * ((int64_t)1 << left);
  if (xl > NASRT_I32_MAX) xl = NASRT_I32_MAX;
  if (xl < NASRT_I32_MIN) xl = NASRT_I32_MIN;
  return nasrt_rdbpot(nasrt_srdhm((int32_t)xl, q), right);
}

static inline int32_t nasrt_clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* An int8 output: the requantised value m plus the output zero point zp, clamped to lo..hi
 * (within -128..127). m is first limited to +-512, which changes no result (|zp| <= 128) but
 * keeps the sum from overflowing when a huge multiplier saturates m. */
static inline int32_t nasrt_out8(int32_t m, int32_t zp, int32_t lo, int32_t hi) {
  m = m < -512 ? -512 : m > 512 ? 512 : m;
  return nasrt_clamp(m + zp, lo, hi);
}

#endif
