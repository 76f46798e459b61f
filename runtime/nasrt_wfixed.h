/* nasrt_wfixed.h: the requantisation of the Winograd kernels (nasrt_wino.c, and the host's in
 * deploy/): x * q * 2^(shift-31) with ONE rounding, half away from zero, saturated to int32.
 * TFLite's MultiplyByQuantizedMultiplier (nasrt_fixed.h) rounds twice (the doubling high
 * multiply, then the shift); harmless for conv accumulators with many bits, but the
 * transformed input V holds small integers times a multiplier below 1, where rounding twice
 * misrounds about one value in four (27.4993 -> 54.9986 -> 55 -> 27.5 -> 28) and would part
 * the int8 kernels from the fake quantisation the network was trained with. Needs <stdint.h>. */
#ifndef NASRT_WFIXED_H
#define NASRT_WFIXED_H

#include <stdint.h>

/* shift from nas_q_quantize_multiplier: -31..30, so the right shift 31 - shift is 1..62. */
static inline int32_t nasrt_mul_round(int32_t x, int32_t q, int shift) {
  const int s = 31 - shift;
  const int64_t p = (int64_t)x * (int64_t)q, half = (int64_t)1 << (s - 1);
  const int64_t r = p >= 0 ? (p + half) >> s : -((-p + half) >> s);
  return r > INT32_MAX ? INT32_MAX : r < INT32_MIN ? INT32_MIN : (int32_t)r;
}

/* The output requantisation with the bias: (x * q + floor(b * q / 2^bs)) * 2^(shift-31), rounded
 * once as above; b is at 2^-bs of x's scale, bs 0..16 (a bias at x's own scale would be rounded
 * to a step of the coarse Winograd-domain product: up to two output steps). */
static inline int32_t nasrt_mul_round_bias(int32_t x, int32_t b, int bs, int32_t q, int shift) {
  const int s = 31 - shift;
  const int64_t p = (int64_t)x * (int64_t)q + (((int64_t)b * (int64_t)q) >> bs);
  const int64_t half = (int64_t)1 << (s - 1);
  const int64_t r = p >= 0 ? (p + half) >> s : -((-p + half) >> s);
  return r > INT32_MAX ? INT32_MAX : r < INT32_MIN ? INT32_MIN : (int32_t)r;
}

#endif
