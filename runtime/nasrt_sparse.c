/* nasrt_sparse.c: the SPARSE kernel of the int8 runtime (nasrt.h): conv / fully connected over
 * a bitmask-compressed filter. Per output pixel and channel the mask rows of the valid taps are
 * walked byte by byte; a zero byte (eight zero weights) costs one test, each set bit one
 * multiply-accumulate with the next stored value. Taps in the padding are skipped with their
 * values (a population count of their mask bytes), as the dense kernel skips them. */
#include <stdint.h>

#include "nasrt.h"
#include "nasrt_fixed.h"

/* Index of the lowest set bit of a non-zero byte. */
#if defined(__GNUC__) && (defined(__ARM_FEATURE_CLZ) || defined(__x86_64__) || defined(__aarch64__))
#define LOWBIT(b) __builtin_ctz(b)
#else
/* de Bruijn: (b & -b) * 0x17 puts a distinct 3-bit pattern in bits 5..7 for each bit 0..7 */
static const uint8_t DEBRUIJN8[8] = {0, 1, 2, 4, 7, 3, 6, 5};
#define LOWBIT(b) DEBRUIJN8[(((uint32_t)(b) & (0u - (uint32_t)(b))) * 0x17u >> 5) & 7u]
#endif

static int32_t popcount8(uint32_t b) {
  b = b - ((b >> 1) & 0x55u);
  b = (b & 0x33u) + ((b >> 2) & 0x33u);
  return (int32_t)((b + (b >> 4)) & 0x0fu);
}

void nasrt_sparse(const nasrt_sparse_p *p, const int8_t *in, int8_t *out) {
  const nasrt_conv_p *c = &p->c;
  const int32_t H = c->h, W = c->w, Ci = c->ci, Ho = c->ho, Wo = c->wo, Co = c->co;
  const int32_t mb = p->mb, in_off = c->in_off;
  for (int32_t n = 0; n < c->n; n++)
    for (int32_t oy = 0; oy < Ho; oy++)
      for (int32_t ox = 0; ox < Wo; ox++) {
        const int32_t iy0 = oy * c->sh - c->pt, ix0 = ox * c->sw - c->pl;
        int8_t *o = out + (((long)n * Ho + oy) * Wo + ox) * Co;
        const uint8_t *m = p->mask;
        const int8_t *v = p->values;
        for (int32_t oc = 0; oc < Co; oc++) {
          int32_t acc = 0;
          for (int32_t ky = 0; ky < c->kh; ky++) {
            const int32_t iy = iy0 + c->dh * ky;
            for (int32_t kx = 0; kx < c->kw; kx++, m += mb) {
              const int32_t ix = ix0 + c->dw * kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) { /* padding: skip its values */
                for (int32_t j = 0; j < mb; j++) v += popcount8(m[j]);
                continue;
              }
              const int8_t *px = in + (((long)n * H + iy) * W + ix) * Ci;
              for (int32_t j = 0; j < mb; j++, px += 8) {
                uint32_t b = m[j];
                while (b) {
                  acc += (px[LOWBIT(b)] + in_off) * *v++;
                  b &= b - 1;
                }
              }
            }
          }
          if (c->bias) acc += c->bias[oc];
          acc = nasrt_mul(acc, c->mult[oc], c->shift[oc]) + c->out_off;
          o[oc] = (int8_t)nasrt_clamp(acc, c->lo, c->hi);
        }
      }
}
