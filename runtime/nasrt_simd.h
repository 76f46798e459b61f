/* nasrt_simd.h: the few Arm DSP operations the fast kernels (nasrt_fast_*.c) are written with:
 * with __ARM_FEATURE_DSP (Cortex-M4/M7/M33) the ACLE intrinsics of <arm_acle.h>, otherwise
 * (Cortex-M0+, the host) plain C with the same results, so that one kernel source runs on every
 * core and the host checks it bit for bit. Also the requantisation of the fast kernels and
 * unaligned 32-bit loads. Needs only <stdint.h> and <string.h>. Define NASRT_NO_DSP to force
 * the plain C versions on a DSP core. */
#ifndef NASRT_SIMD_H
#define NASRT_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && !defined(NASRT_NO_DSP)
#include <arm_acle.h>
#define NASRT_DSP 1
#else
#define NASRT_DSP 0
#endif

/* Inline-assembly inner loops (Arm Thumb-2 with the DSP extension only; the same arithmetic
 * as the C loops beside them). */
#if NASRT_DSP && defined(__arm__) && !defined(NASRT_NO_ASM)
#define NASRT_ASM 1
#else
#define NASRT_ASM 0
#endif

/* A 32-bit word from any address (one LDR on v7-M, which allows unaligned loads). */
static inline uint32_t nasrt_ld32(const void *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline void nasrt_st32(void *p, uint32_t v) { memcpy(p, &v, 4); }

#if NASRT_DSP
/* lanes (b0, b2) of x sign-extended to int16 */
static inline uint32_t nasrt_sxtb16(uint32_t x) { return __sxtb16(x); }
/* lanes (b1, b3) */
static inline uint32_t nasrt_sxtb16_r8(uint32_t x) { /* one SXTB16 with its rotation */
#if defined(__arm__)
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
#else /* a stand-in <arm_acle.h> off Arm (the export's tests) */
  return __sxtb16((x >> 8) | (x << 24));
#endif
}
/* acc + lo(a)*lo(b) + hi(a)*hi(b), int16 lanes */
static inline int32_t nasrt_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)__smlad(a, b, (uint32_t)acc);
}
/* acc + lo(a)*lo(b), acc + hi(a)*hi(b) */
static inline int32_t nasrt_smlabb(uint32_t a, uint32_t b, int32_t acc) {
  return __smlabb((int32_t)a, (int32_t)b, acc);
}
static inline int32_t nasrt_smlatt(uint32_t a, uint32_t b, int32_t acc) {
  return __smlatt((int32_t)a, (int32_t)b, acc);
}
/* a + b saturated to int32 */
static inline int32_t nasrt_qadd(int32_t a, int32_t b) { return __qadd(a, b); }
/* lanes of acc + (b0, b2) / + (b1, b3) of x, int16 */
static inline uint32_t nasrt_sxtab16(uint32_t acc, uint32_t x) { return __sxtab16(acc, x); }
static inline uint32_t nasrt_sxtab16_r8(uint32_t acc, uint32_t x) {
#if defined(__arm__)
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
  return r;
#else
  return __sxtab16(acc, (x >> 8) | (x << 24));
#endif
}
/* the larger of each int8 lane of a and b */
static inline uint32_t nasrt_max8(uint32_t a, uint32_t b) {
#if defined(__arm__)
  uint32_t r;
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
#else
  uint32_t r = 0;
  for (int k = 0; k < 32; k += 8) {
    const int8_t x = (int8_t)(a >> k), y = (int8_t)(b >> k);
    r |= (uint32_t)(uint8_t)(x > y ? x : y) << k;
  }
  return r;
#endif
}
#else
static inline int32_t lo16(uint32_t x) { return (int16_t)(uint16_t)(x & 0xffffu); }
static inline int32_t hi16(uint32_t x) { return (int16_t)(uint16_t)(x >> 16); }
static inline uint32_t nasrt_sxtb16(uint32_t x) {
  return (uint16_t)(int16_t)(int8_t)(x & 0xffu) |
         ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xffu) << 16);
}
static inline uint32_t nasrt_sxtb16_r8(uint32_t x) { return nasrt_sxtb16(x >> 8); }
static inline int32_t nasrt_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * lo16(b)) + (uint32_t)(hi16(a) * hi16(b)));
}
static inline int32_t nasrt_qadd(int32_t a, int32_t b) {
  const int64_t s = (int64_t)a + b;
  return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : (int32_t)s;
}
static inline uint32_t nasrt_sxtab16(uint32_t acc, uint32_t x) {
  const uint32_t e = nasrt_sxtb16(x);
  return (uint16_t)(acc + e) | ((((acc >> 16) + (e >> 16)) & 0xffffu) << 16);
}
static inline uint32_t nasrt_sxtab16_r8(uint32_t acc, uint32_t x) { return nasrt_sxtab16(acc, x >> 8); }
static inline uint32_t nasrt_max8(uint32_t a, uint32_t b) {
  uint32_t r = 0;
  for (int k = 0; k < 32; k += 8) {
    const int8_t x = (int8_t)(a >> k), y = (int8_t)(b >> k);
    r |= (uint32_t)(uint8_t)(x > y ? x : y) << k;
  }
  return r;
}
static inline int32_t nasrt_smlabb(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * lo16(b)));
}
static inline int32_t nasrt_smlatt(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(hi16(a) * hi16(b)));
}
#endif

/* nasrt_mul (nasrt_fixed.h) for a multiplier q >= 0, which is every multiplier the prepare
 * step makes: then gemmlowp's nudge-and-truncate equals (x*q + 2^30) >> 31 for either sign
 * of x (one SMLAL), and the rounding right shift is ((r >> e) + (remainder > threshold)).
 * Same results as nasrt_mul for every x. */
static inline int32_t nasrt_mulq(int32_t x, int32_t q, int32_t shift) {
  if (shift > 0) { /* saturating left shift: an effective scale above 1 (shift <= 30) */
    const int32_t y = (int32_t)((uint32_t)x << shift);
    x = (y >> shift) == x ? y : x < 0 ? INT32_MIN : INT32_MAX;
    return (int32_t)(((int64_t)x * q + ((int64_t)1 << 30)) >> 31);
  }
  const int32_t r = (int32_t)(((int64_t)x * q + ((int64_t)1 << 30)) >> 31);
  const int32_t e = -shift > 31 ? 31 : -shift; /* 0 leaves r as it is (mask 0) */
  const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
  const int32_t thr = (mask >> 1) - (r >> 31); /* + 1 for a negative r */
  return (r >> e) + ((r & mask) > thr);
}

/* nasrt_mulq with a channel's constants prepared once: r = (x * q + 2^30) >> 31, then with a
 * right shift e (0..31) (r + 2^(e-1) - (r < 0 and e > 0)) >> e in 64 bits (TFLite's rounding
 * half away from zero); a left shift ls (1..30) applies to x first, and where x << ls does not
 * fit int32 it saturates, whose two results are kept. Same results as nasrt_mulq. */
typedef struct nasrt_rqc {
  int32_t m, sh;  /* multiplier, shift */
  int32_t ls, e;  /* left and right shift */
  int64_t k;      /* 2^(e-1), 0 for e = 0 */
  uint32_t neg;   /* 1 when e > 0 (a negative r rounds down one more) */
  uint32_t lim;   /* with ls > 0: -lim <= x < lim fits */
  int32_t rmax, rmin; /* with ls > 0: the results of a saturated x << ls (x > 0, x < 0) */
} nasrt_rqc;

static inline void nasrt_rqc_init(nasrt_rqc *c, int32_t m, int32_t sh) {
  c->m = m, c->sh = sh;
  c->ls = sh > 0 ? sh : 0;
  c->e = sh < 0 ? (sh < -31 ? 31 : -sh) : 0;
  c->k = c->e > 0 ? (int64_t)1 << (c->e - 1) : 0;
  c->neg = c->e > 0;
  c->lim = c->ls > 0 ? (uint32_t)1 << (31 - c->ls) : 0;
  c->rmax = nasrt_mulq(INT32_MAX, m, sh), c->rmin = nasrt_mulq(INT32_MIN, m, sh);
}

static inline int32_t nasrt_rq(const nasrt_rqc *c, int32_t x);

/* clamp(nasrt_mulq(x, q, shift) + out_off, lo, hi) for -128 <= lo <= hi <= 127 and
 * |out_off| <= 128: with a right shift e <= 23 the rounding add may saturate (QADD) instead of
 * carrying into 64 bits, which changes r >> e only where the clamp gives hi anyway. */
static inline int8_t nasrt_rq8(const nasrt_rqc *c, int32_t x, int32_t out_off, int32_t lo,
                               int32_t hi) {
  int32_t v;
  if (c->ls == 0 && c->e <= 23) {
    const int32_t r = (int32_t)(((int64_t)x * c->m + ((int64_t)1 << 30)) >> 31);
    v = nasrt_qadd(r, (int32_t)c->k - (int32_t)(((uint32_t)r >> 31) & c->neg)) >> c->e;
  } else {
    v = nasrt_rq(c, x);
  }
  v = nasrt_qadd(v, out_off); /* saturating: where it saturates the clamp gives lo or hi */
  v = v < lo ? lo : v;
  return (int8_t)(v > hi ? hi : v);
}

/* nasrt_rq8 without prepared constants: clamp(nasrt_mulq(x, q, shift) + out_off, lo, hi). */
static inline int8_t nasrt_req8(int32_t x, int32_t q, int32_t shift, int32_t out_off, int32_t lo,
                                int32_t hi) {
  int32_t v;
  if ((uint32_t)(shift + 23) <= 23u) { /* a right shift e = -shift of 0..23 */
    const int32_t e = -shift;
    const int32_t r = (int32_t)(((int64_t)x * q + ((int64_t)1 << 30)) >> 31);
    const int32_t k = (int32_t)(((uint32_t)1 << e) >> 1) - (int32_t)((uint32_t)r >> 31 & (e != 0));
    v = nasrt_qadd(r, k) >> e;
  } else {
    v = nasrt_mulq(x, q, shift);
  }
  v = nasrt_qadd(v, out_off); /* saturating: where it saturates the clamp gives lo or hi */
  v = v < lo ? lo : v;
  return (int8_t)(v > hi ? hi : v);
}

/* nasrt_req8 of two accumulators of one channel (its constants derived once). */
static inline void nasrt_req8x2(int32_t x0, int32_t x1, int32_t q, int32_t shift,
                                int32_t out_off, int32_t lo, int32_t hi, int8_t *o0, int8_t *o1) {
  if ((uint32_t)(shift + 23) <= 23u) {
    const int32_t e = -shift, k = (int32_t)(((uint32_t)1 << e) >> 1), neg = e != 0;
    const int32_t r0 = (int32_t)(((int64_t)x0 * q + ((int64_t)1 << 30)) >> 31);
    const int32_t r1 = (int32_t)(((int64_t)x1 * q + ((int64_t)1 << 30)) >> 31);
    int32_t v0 = nasrt_qadd(nasrt_qadd(r0, k - (int32_t)((uint32_t)r0 >> 31 & neg)) >> e, out_off);
    int32_t v1 = nasrt_qadd(nasrt_qadd(r1, k - (int32_t)((uint32_t)r1 >> 31 & neg)) >> e, out_off);
    v0 = v0 < lo ? lo : v0, v1 = v1 < lo ? lo : v1;
    *o0 = (int8_t)(v0 > hi ? hi : v0), *o1 = (int8_t)(v1 > hi ? hi : v1);
  } else {
    *o0 = nasrt_req8(x0, q, shift, out_off, lo, hi), *o1 = nasrt_req8(x1, q, shift, out_off, lo, hi);
  }
}

static inline int32_t nasrt_rq(const nasrt_rqc *c, int32_t x) {
  if (c->ls == 0) {
    const int32_t r = (int32_t)(((int64_t)x * c->m + ((int64_t)1 << 30)) >> 31);
    return (int32_t)(((int64_t)r + c->k - (int64_t)(((uint32_t)r >> 31) & c->neg)) >> c->e);
  }
  if ((uint32_t)x + c->lim < 2 * c->lim)
    return (int32_t)(((int64_t)(int32_t)((uint32_t)x << c->ls) * c->m + ((int64_t)1 << 30)) >> 31);
  return x < 0 ? c->rmin : c->rmax; /* x << ls saturated */
}

#endif
