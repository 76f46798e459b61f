/* nasrt_conv.c: the multiply-accumulate kernels of the int8 runtime (CONV_2D,
 * DEPTHWISE_CONV_2D, FULLY_CONNECTED), portable C; with the Arm DSP extension the conv and
 * fully-connected inner loops take two products per SMLAD. Per output value: accumulate
 * (x - zp_x) * w in int32, add the bias, requantise (nasrt_mul), add the output zero point,
 * clamp to the fused activation's range. */
#include <stdint.h>

#include "nasrt.h"
#include "nasrt_fixed.h"

#if defined(__ARM_FEATURE_DSP) && !defined(NASRT_NO_DSP)
#include <arm_acle.h>
#define NASRT_DSP 1
#else
#define NASRT_DSP 0
#endif

#if NASRT_DSP
/* Two int16 lanes (low, high) in one word, as SMLAD reads them. */
static uint32_t pack16(int32_t lo, int32_t hi) {
  return (uint16_t)(int16_t)lo | ((uint32_t)(uint16_t)(int16_t)hi << 16);
}
#endif

/* Requantises one accumulator of output channel oc. */
static int8_t requant(int32_t acc, const int32_t *bias, const int32_t *mult,
                      const int8_t *shift, int oc, int32_t out_off, int32_t lo, int32_t hi) {
  if (bias) acc += bias[oc];
  return (int8_t)nasrt_out8(nasrt_mul(acc, mult[oc], shift[oc]), out_off, lo, hi);
}

void nasrt_conv(const nasrt_conv_p *p, const int8_t *in, int8_t *out) {
  const int32_t H = p->h, W = p->w, Ci = p->ci, Ho = p->ho, Wo = p->wo, Co = p->co;
  for (int32_t n = 0; n < p->n; n++)
    for (int32_t oy = 0; oy < Ho; oy++)
      for (int32_t ox = 0; ox < Wo; ox++) {
        const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
        int8_t *o = out + (((long)n * Ho + oy) * Wo + ox) * Co;
        for (int32_t oc = 0; oc < Co; oc++) {
          int32_t acc = 0;
          for (int32_t ky = 0; ky < p->kh; ky++) {
            const int32_t iy = iy0 + p->dh * ky;
            if (iy < 0 || iy >= H) continue;
            for (int32_t kx = 0; kx < p->kw; kx++) {
              const int32_t ix = ix0 + p->dw * kx;
              if (ix < 0 || ix >= W) continue;
              const int8_t *px = in + (((long)n * H + iy) * W + ix) * Ci;
              const int8_t *pw = p->filter + (((long)oc * p->kh + ky) * p->kw + kx) * Ci;
              int32_t ic = 0;
#if NASRT_DSP
              for (; ic + 1 < Ci; ic += 2)
                acc = (int32_t)__smlad(pack16(px[ic] + p->in_off, px[ic + 1] + p->in_off),
                                       pack16(pw[ic], pw[ic + 1]), (uint32_t)acc);
#endif
              for (; ic < Ci; ic++) acc += (px[ic] + p->in_off) * pw[ic];
            }
          }
          o[oc] = requant(acc, p->bias, p->mult, p->shift, oc, p->out_off, p->lo, p->hi);
        }
      }
}

void nasrt_dwconv(const nasrt_conv_p *p, const int8_t *in, int8_t *out) {
  const int32_t H = p->h, W = p->w, Ci = p->ci, Ho = p->ho, Wo = p->wo, Co = p->co;
  const int32_t M = Co / Ci; /* depth multiplier: output channel oc reads input oc / M */
  for (int32_t n = 0; n < p->n; n++)
    for (int32_t oy = 0; oy < Ho; oy++)
      for (int32_t ox = 0; ox < Wo; ox++) {
        const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
        int8_t *o = out + (((long)n * Ho + oy) * Wo + ox) * Co;
        for (int32_t oc = 0; oc < Co; oc++) {
          int32_t acc = 0;
          const int32_t ic = oc / M;
          for (int32_t ky = 0; ky < p->kh; ky++) {
            const int32_t iy = iy0 + p->dh * ky;
            if (iy < 0 || iy >= H) continue;
            for (int32_t kx = 0; kx < p->kw; kx++) {
              const int32_t ix = ix0 + p->dw * kx;
              if (ix < 0 || ix >= W) continue;
              acc += (in[(((long)n * H + iy) * W + ix) * Ci + ic] + p->in_off) *
                     p->filter[((long)ky * p->kw + kx) * Co + oc];
            }
          }
          o[oc] = requant(acc, p->bias, p->mult, p->shift, oc, p->out_off, p->lo, p->hi);
        }
      }
}

void nasrt_fc(const nasrt_fc_p *p, const int8_t *in, int8_t *out) {
  const int32_t d = p->d, co = p->co;
  for (int32_t r = 0; r < p->b; r++)
    for (int32_t oc = 0; oc < co; oc++) {
      const int8_t *px = in + (long)r * d, *pw = p->filter + (long)oc * d;
      int32_t acc = 0, k = 0;
#if NASRT_DSP
      for (; k + 1 < d; k += 2)
        acc = (int32_t)__smlad(pack16(px[k] + p->in_off, px[k + 1] + p->in_off),
                               pack16(pw[k] + p->w_off, pw[k + 1] + p->w_off), (uint32_t)acc);
#endif
      for (; k < d; k++) acc += (px[k] + p->in_off) * (pw[k] + p->w_off);
      out[(long)r * co + oc] = requant(acc, p->bias, p->mult, p->shift, oc, p->out_off, p->lo, p->hi);
    }
}
