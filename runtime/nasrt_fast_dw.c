/* nasrt_fast_dw.c: the fast DEPTHWISE_CONV_2D kernel of the int8 runtime (depth multiplier 1),
 * four channels at a time: one word of input and one of filter per tap (NHWC and the filter's
 * [kh,kw,c] order keep four channels adjacent), split by SXTB16 into int16 lanes and
 * multiplied lane by lane (SMLABB / SMLATT into four accumulators). A 3x3 filter whose window
 * lies inside the input takes an unrolled path; border windows read the input's zero point for
 * the taps outside (the input offset is folded into bq by the prepare step, so such a tap adds
 * nothing, as TFLite's zero padding). Channels beyond a multiple of four run one at a time. */
#include <stdint.h>

#include "nasrt.h"
#include "nasrt_fixed.h"
#include "nasrt_simd.h"

static inline int8_t out8(int32_t acc, const nasrt_conv_p *p, int32_t c) {
  int32_t v = nasrt_mulq(acc, p->mult[c], p->shift[c]) + p->out_off;
  v = v < p->lo ? p->lo : v;
  return (int8_t)(v > p->hi ? p->hi : v);
}

/* acc[0..3] += the four channels' products of one tap. */
#define DW_TAP(xw, ww)                                         \
  do {                                                         \
    const uint32_t xa_ = nasrt_sxtb16(xw), xb_ = nasrt_sxtb16_r8(xw); \
    const uint32_t wa_ = nasrt_sxtb16(ww), wb_ = nasrt_sxtb16_r8(ww); \
    a0 = nasrt_smlabb(xa_, wa_, a0), a2 = nasrt_smlatt(xa_, wa_, a2); \
    a1 = nasrt_smlabb(xb_, wb_, a1), a3 = nasrt_smlatt(xb_, wb_, a3); \
  } while (0)

static void store4(int8_t *o, const nasrt_conv_p *p, int32_t c, int32_t a0, int32_t a1,
                   int32_t a2, int32_t a3) {
  o[c] = out8(a0, p, c), o[c + 1] = out8(a1, p, c + 1);
  o[c + 2] = out8(a2, p, c + 2), o[c + 3] = out8(a3, p, c + 3);
}

void nasrt_dwconv_fast(const nasrt_conv_p *p, const int8_t *in, int8_t *out) {
  const int32_t H = p->h, W = p->w, C = p->co, kh = p->kh, kw = p->kw;
  const int32_t C4 = C & ~3;
  const uint32_t zpw = (uint8_t)(int8_t)(-p->in_off) * 0x01010101u; /* four zero points */
  const int8_t *f = p->filter;
  const int32_t *bq = p->bq;
  const long cdx = (long)p->dw * C, rowb = (long)W * C, cdy = (long)p->dh * rowb;
  for (int32_t b = 0; b < p->n; b++) {
    const int8_t *img = in + (long)b * H * rowb;
    for (int32_t oy = 0; oy < p->ho; oy++) {
      const int32_t iy0 = oy * p->sh - p->pt;
      const int yin = iy0 >= 0 && iy0 + (kh - 1) * p->dh < H;
      for (int32_t ox = 0; ox < p->wo; ox++) {
        const int32_t ix0 = ox * p->sw - p->pl;
        const int inside = yin && ix0 >= 0 && ix0 + (kw - 1) * p->dw < W;
        int8_t *o = out + (((long)b * p->ho + oy) * p->wo + ox) * C;
        const int8_t *base = img + (long)iy0 * rowb + (long)ix0 * C;
        int32_t c = 0;
        if (inside && kh == 3 && kw == 3) {
          for (; c < C4; c += 4) {
            int32_t a0 = bq[c], a1 = bq[c + 1], a2 = bq[c + 2], a3 = bq[c + 3];
            const int8_t *x = base + c, *w = f + c;
            for (int ky = 0; ky < 3; ky++, x += cdy, w += 3 * C) {
              DW_TAP(nasrt_ld32(x), nasrt_ld32(w));
              DW_TAP(nasrt_ld32(x + cdx), nasrt_ld32(w + C));
              DW_TAP(nasrt_ld32(x + 2 * cdx), nasrt_ld32(w + 2 * C));
            }
            store4(o, p, c, a0, a1, a2, a3);
          }
        } else if (inside) {
          for (; c < C4; c += 4) {
            int32_t a0 = bq[c], a1 = bq[c + 1], a2 = bq[c + 2], a3 = bq[c + 3];
            const int8_t *w = f + c;
            for (int32_t ky = 0; ky < kh; ky++) {
              const int8_t *x = base + ky * cdy + c;
              for (int32_t kx = 0; kx < kw; kx++, x += cdx, w += C)
                DW_TAP(nasrt_ld32(x), nasrt_ld32(w));
            }
            store4(o, p, c, a0, a1, a2, a3);
          }
        } else {
          for (; c < C4; c += 4) {
            int32_t a0 = bq[c], a1 = bq[c + 1], a2 = bq[c + 2], a3 = bq[c + 3];
            const int8_t *w = f + c;
            for (int32_t ky = 0; ky < kh; ky++) {
              const int32_t iy = iy0 + ky * p->dh;
              for (int32_t kx = 0; kx < kw; kx++, w += C) {
                const int32_t ix = ix0 + kx * p->dw;
                const uint32_t xw = iy < 0 || iy >= H || ix < 0 || ix >= W
                                        ? zpw
                                        : nasrt_ld32(img + ((long)iy * W + ix) * C + c);
                DW_TAP(xw, nasrt_ld32(w));
              }
            }
            store4(o, p, c, a0, a1, a2, a3);
          }
        }
        for (; c < C; c++) { /* channels beyond a multiple of four */
          int32_t acc = bq[c];
          for (int32_t ky = 0; ky < kh; ky++) {
            const int32_t iy = iy0 + ky * p->dh;
            for (int32_t kx = 0; kx < kw; kx++) {
              const int32_t ix = ix0 + kx * p->dw;
              const int32_t xv = iy < 0 || iy >= H || ix < 0 || ix >= W
                                     ? -p->in_off
                                     : img[((long)iy * W + ix) * C + c];
              acc += xv * f[(ky * kw + kx) * C + c];
            }
          }
          o[c] = out8(acc, p, c);
        }
      }
    }
  }
}
