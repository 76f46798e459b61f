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

#define MAXTAPS 25 /* filters up to 5x5 keep their split weights on the stack */

/* Requantises one accumulator with a channel's prepared constants. */
static inline int8_t out8(int32_t acc, const nasrt_rqc *q, int32_t out_off, int32_t lo,
                          int32_t hi) {
  return nasrt_rq8(q, acc, out_off, lo, hi);
}

/* acc[0..3] += the four channels' products of one tap: input word xw, the tap's weights
 * already split (wa = channels 0 and 2, wb = 1 and 3). */
#define DW_TAP(xw, wa, wb)                                                     \
  do {                                                                         \
    const uint32_t xa_ = nasrt_sxtb16(xw), xb_ = nasrt_sxtb16_r8(xw);          \
    a0 = nasrt_smlabb(xa_, (wa), a0), a2 = nasrt_smlatt(xa_, (wa), a2);        \
    a1 = nasrt_smlabb(xb_, (wb), a1), a3 = nasrt_smlatt(xb_, (wb), a3);        \
  } while (0)

#if NASRT_ASM
/* One tap of the 3x3 window: input word at [x + off], split weights at ws + wofs. */
#define DW_ASM_TAP(addr, wofs)                       \
  "ldr %[t], " addr "\n\t"                            \
  "ldrd %[wa], %[wb], [%[ws], #" wofs "]\n\t"         \
  "sxtb16 %[u], %[t]\n\t"                            \
  "sxtb16 %[t], %[t], ror #8\n\t"                    \
  "smlabb %[a0], %[u], %[wa], %[a0]\n\t"              \
  "smlatt %[a2], %[u], %[wa], %[a2]\n\t"              \
  "smlabb %[a1], %[t], %[wb], %[a1]\n\t"              \
  "smlatt %[a3], %[t], %[wb], %[a3]\n\t"

/* The nine taps of an inside 3x3 window (eight instructions each): x = the top-left tap's
 * word, cdx / cdy = bytes to the next column / row, ws = the 18 split weight words. */
static inline void dw3x3_asm(const int8_t *x, long cdx, long cdy, const uint32_t *ws, int32_t *p0,
                             int32_t *p1, int32_t *p2, int32_t *p3) {
  int32_t a0 = *p0, a1 = *p1, a2 = *p2, a3 = *p3;
  uint32_t t, u, wa, wb;
  __asm__ volatile(
      DW_ASM_TAP("[%[x]]", "0") DW_ASM_TAP("[%[x], %[cdx]]", "8")
      DW_ASM_TAP("[%[x], %[cdx], lsl #1]", "16") "add %[x], %[x], %[cdy]\n\t"
      DW_ASM_TAP("[%[x]]", "24") DW_ASM_TAP("[%[x], %[cdx]]", "32")
      DW_ASM_TAP("[%[x], %[cdx], lsl #1]", "40") "add %[x], %[x], %[cdy]\n\t"
      DW_ASM_TAP("[%[x]]", "48") DW_ASM_TAP("[%[x], %[cdx]]", "56")
      DW_ASM_TAP("[%[x], %[cdx], lsl #1]", "64")
      : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [t] "=&r"(t),
        [u] "=&r"(u), [wa] "=&r"(wa), [wb] "=&r"(wb)
      : [cdx] "r"(cdx), [cdy] "r"(cdy), [ws] "r"(ws)
      : "memory");
  *p0 = a0, *p1 = a1, *p2 = a2, *p3 = a3;
}
#endif

#if NASRT_ASM
/* n (> 0) taps of one filter row: input words at x, x + cdx, ...; split weights at ws. */
static inline void dwrow_asm(const int8_t *x, long cdx, int32_t n, const uint32_t *ws, int32_t *p0,
                             int32_t *p1, int32_t *p2, int32_t *p3) {
  int32_t a0 = *p0, a1 = *p1, a2 = *p2, a3 = *p3;
  uint32_t t, u, wa, wb;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[t], [%[x]]\n\t"
      "add %[x], %[x], %[cdx]\n\t"
      "ldrd %[wa], %[wb], [%[ws]], #8\n\t"
      "sxtb16 %[u], %[t]\n\t"
      "sxtb16 %[t], %[t], ror #8\n\t"
      "smlabb %[a0], %[u], %[wa], %[a0]\n\t"
      "smlatt %[a2], %[u], %[wa], %[a2]\n\t"
      "smlabb %[a1], %[t], %[wb], %[a1]\n\t"
      "smlatt %[a3], %[t], %[wb], %[a3]\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b"
      : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [ws] "+r"(ws),
        [n] "+r"(n), [t] "=&r"(t), [u] "=&r"(u), [wa] "=&r"(wa), [wb] "=&r"(wb)
      : [cdx] "r"(cdx)
      : "cc", "memory");
  *p0 = a0, *p1 = a1, *p2 = a2, *p3 = a3;
}
#endif

/* Output channels c..c+3 over every pixel (channel group outermost, so the group's split
 * weights, biases and multipliers are prepared once). */
static void dw_group(const nasrt_conv_p *p, const int8_t *in, int8_t *out, int32_t c) {
  const int32_t H = p->h, W = p->w, C = p->co, kh = p->kh, kw = p->kw, taps = kh * kw;
  const uint32_t zpw = (uint8_t)(int8_t)(-p->in_off) * 0x01010101u; /* four zero points */
  const long cdx = (long)p->dw * C, rowb = (long)W * C, cdy = (long)p->dh * rowb;
  const int32_t out_off = p->out_off, lo = p->lo, hi = p->hi;
  nasrt_rqc q[4];
  for (int k = 0; k < 4; k++)
    nasrt_rqc_init(&q[k], p->mult[(c + k) * p->qstep], p->shift[(c + k) * p->qstep]);
  const int32_t b0 = p->bq[c], b1 = p->bq[c + 1], b2 = p->bq[c + 2], b3 = p->bq[c + 3];
  uint32_t ws[2 * MAXTAPS]; /* tap t's split weights: ws[2t] (ch 0, 2), ws[2t + 1] (1, 3) */
  const int split = taps <= MAXTAPS;
  for (int32_t t = 0; split && t < taps; t++) {
    const uint32_t w = nasrt_ld32(p->filter + (long)t * C + c);
    ws[2 * t] = nasrt_sxtb16(w), ws[2 * t + 1] = nasrt_sxtb16_r8(w);
  }
  const int k3 = kh == 3 && kw == 3;
  for (int32_t b = 0; b < p->n; b++) {
    const int8_t *img = in + (long)b * H * rowb + c;
    for (int32_t oy = 0; oy < p->ho; oy++) {
      const int32_t iy0 = oy * p->sh - p->pt;
      const int yin = iy0 >= 0 && iy0 + (kh - 1) * p->dh < H;
      int8_t *o = out + (((long)b * p->ho + oy) * p->wo) * C + c;
      for (int32_t ox = 0; ox < p->wo; ox++, o += C) {
        const int32_t ix0 = ox * p->sw - p->pl;
        int32_t a0 = b0, a1 = b1, a2 = b2, a3 = b3;
        const int inside = yin && ix0 >= 0 && ix0 + (kw - 1) * p->dw < W;
#if NASRT_ASM
        if (k3) { /* one call site: an inside window read in place, a border one gathered */
          uint32_t win[9];
          const int8_t *x = img + (long)iy0 * rowb + (long)ix0 * C;
          long dx = cdx, dy = cdy;
          if (!inside) { /* validity of the three columns, then each row's three words */
            const int32_t ix1 = ix0 + p->dw, ix2 = ix1 + p->dw;
            const int v0 = ix0 >= 0 && ix0 < W, v1 = ix1 >= 0 && ix1 < W, v2 = ix2 >= 0 && ix2 < W;
            const int8_t *r = x;
            for (int32_t ky = 0, iy = iy0; ky < 3; ky++, iy += p->dh, r += cdy) {
              uint32_t *wr = win + 3 * ky;
              if (iy < 0 || iy >= H) {
                wr[0] = wr[1] = wr[2] = zpw;
              } else {
                wr[0] = v0 ? nasrt_ld32(r) : zpw;
                wr[1] = v1 ? nasrt_ld32(r + cdx) : zpw;
                wr[2] = v2 ? nasrt_ld32(r + 2 * cdx) : zpw;
              }
            }
            x = (const int8_t *)win, dx = 4, dy = 12;
          }
          dw3x3_asm(x, dx, dy, ws, &a0, &a1, &a2, &a3);
        } else
#endif
        if (inside) {
          const int8_t *x = img + (long)iy0 * rowb + (long)ix0 * C;
          if (k3) {
#if NASRT_ASM
            dw3x3_asm(x, cdx, cdy, ws, &a0, &a1, &a2, &a3);
#else
            const uint32_t *w = ws;
            for (int ky = 0; ky < 3; ky++, x += cdy, w += 6) {
              DW_TAP(nasrt_ld32(x), w[0], w[1]);
              DW_TAP(nasrt_ld32(x + cdx), w[2], w[3]);
              DW_TAP(nasrt_ld32(x + 2 * cdx), w[4], w[5]);
            }
#endif
          } else {
            for (int32_t ky = 0, t = 0; ky < kh; ky++, x += cdy) {
              const int8_t *xr = x;
#if NASRT_ASM
              if (split) {
                dwrow_asm(xr, cdx, kw, ws + 2 * t, &a0, &a1, &a2, &a3);
                t += kw;
                continue;
              }
#endif
              for (int32_t kx = 0; kx < kw; kx++, t++, xr += cdx) {
                if (split) {
                  DW_TAP(nasrt_ld32(xr), ws[2 * t], ws[2 * t + 1]);
                } else {
                  const uint32_t w = nasrt_ld32(p->filter + (long)t * C + c);
                  DW_TAP(nasrt_ld32(xr), nasrt_sxtb16(w), nasrt_sxtb16_r8(w));
                }
              }
            }
          }
        } else if (split) { /* a border window: its taps gathered, the zero point outside */
          uint32_t win[MAXTAPS];
          for (int32_t ky = 0, t = 0; ky < kh; ky++) {
            const int32_t iy = iy0 + ky * p->dh;
            const int rin = iy >= 0 && iy < H;
            for (int32_t kx = 0, ix = ix0; kx < kw; kx++, t++, ix += p->dw)
              win[t] = rin && ix >= 0 && ix < W ? nasrt_ld32(img + (long)iy * rowb + (long)ix * C) : zpw;
          }
#if NASRT_ASM
          if (k3) dw3x3_asm((const int8_t *)win, 4, 12, ws, &a0, &a1, &a2, &a3);
          else dwrow_asm((const int8_t *)win, 4, taps, ws, &a0, &a1, &a2, &a3);
#else
          for (int32_t t = 0; t < taps; t++) DW_TAP(win[t], ws[2 * t], ws[2 * t + 1]);
#endif
        } else { /* a border window: taps outside read the zero point */
          for (int32_t ky = 0, t = 0; ky < kh; ky++) {
            const int32_t iy = iy0 + ky * p->dh;
            const int8_t *xr = img + (long)iy * rowb + (long)ix0 * C;
            const int rin = iy >= 0 && iy < H;
            for (int32_t kx = 0, ix = ix0; kx < kw; kx++, t++, ix += p->dw, xr += cdx) {
              const uint32_t xw = rin && ix >= 0 && ix < W ? nasrt_ld32(xr) : zpw;
              if (split) {
                DW_TAP(xw, ws[2 * t], ws[2 * t + 1]);
              } else {
                const uint32_t w = nasrt_ld32(p->filter + (long)t * C + c);
                DW_TAP(xw, nasrt_sxtb16(w), nasrt_sxtb16_r8(w));
              }
            }
          }
        }
        o[0] = out8(a0, &q[0], out_off, lo, hi);
        o[1] = out8(a1, &q[1], out_off, lo, hi);
        o[2] = out8(a2, &q[2], out_off, lo, hi);
        o[3] = out8(a3, &q[3], out_off, lo, hi);
      }
    }
  }
}

/* One channel (the channels beyond a multiple of four). */
static void dw_one(const nasrt_conv_p *p, const int8_t *in, int8_t *out, int32_t c) {
  const int32_t H = p->h, W = p->w, C = p->co, kh = p->kh, kw = p->kw;
  nasrt_rqc q;
  nasrt_rqc_init(&q, p->mult[c * p->qstep], p->shift[c * p->qstep]);
  for (int32_t b = 0; b < p->n; b++)
    for (int32_t oy = 0; oy < p->ho; oy++)
      for (int32_t ox = 0; ox < p->wo; ox++) {
        const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
        int32_t acc = p->bq[c];
        for (int32_t ky = 0; ky < kh; ky++) {
          const int32_t iy = iy0 + ky * p->dh;
          for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            const int32_t xv = iy < 0 || iy >= H || ix < 0 || ix >= W
                                   ? -p->in_off
                                   : in[(((long)b * H + iy) * W + ix) * C + c];
            acc += xv * p->filter[(ky * kw + kx) * C + c];
          }
        }
        out[(((long)b * p->ho + oy) * p->wo + ox) * C + c] = out8(acc, &q, p->out_off, p->lo, p->hi);
      }
}

void nasrt_dwconv_fast(const nasrt_conv_p *p, const int8_t *in, int8_t *out) {
  int32_t c = 0;
  for (; c + 3 < p->co; c += 4) dw_group(p, in, out, c);
  for (; c < p->co; c++) dw_one(p, in, out, c);
}
