/* nasrt_fast_conv.c: the fast CONV_2D and FULLY_CONNECTED kernels of the int8 runtime. With
 * the DSP extension (Cortex-M4/M7/M33) every multiply-accumulate is half of an SMLAD; elsewhere
 * the same code runs on the plain C versions of nasrt_simd.h, with the same results.
 *
 * The input offset is folded into the bias by the prepare step (bq = bias + in_off * sum of the
 * channel's weights), so inputs are multiplied as stored and a padded tap reads the input's
 * zero point (it then adds (zp + in_off) * w = 0, as TFLite's zero padding does).
 *
 * Filter layout (wq, made by deploy/prep8.c; D = kh * kw * ci, one filter row per output
 * channel in [kh,kw,ci] order): output channels in pairs (c, c + 1): for each group g of four
 * (g < D / 4), four bytes of channel c's row (elements 4g..4g+3), then four of channel c + 1's;
 * then channel c's last D % 4 bytes, then channel c + 1's. An odd last channel keeps its row.
 * Same bytes as the filter, permuted. SXTB16 splits a group word into the int16 lanes
 * (w0, w2) and (w1, w3); the input columns are stored in that order.
 *
 * CONV_2D (im2col): two output pixels at a time; each pixel's receptive field (D bytes, the
 * zero point where it falls outside the input) is widened to int16 in the scratch (the same
 * 4 * D bytes as CMSIS-NN's two int16 columns, plus a staging row or column when ci is not a
 * multiple of four): per group
 * g four words, (x0, x2) (x1, x3) of pixel 0 then of pixel 1; the D % 4 last values after the
 * groups as int16, pixel 0's then pixel 1's. The inner loop takes two output channels of two
 * pixels: per group of four depths two words of filter, four SXTB16, eight SMLAD. */
#include <stdint.h>
#include <string.h>

#include "nasrt.h"
#include "nasrt_fixed.h"
#include "nasrt_simd.h"

int32_t nasrt_conv_scratch_bytes(int32_t kh, int32_t kw, int32_t ci) {
  const int32_t d = kh * kw * ci, l = kw * ci; /* two int16 columns, then an int8 stage: */
  if ((kh == 1 && kw == 1) || (ci & 3) == 0) return 4 * d; /* none: taps are whole groups */
  return 4 * d + ((l & 3) == 0 ? l : (d + 3) & ~3);       /* one filter row, or the column */
}

/* Requantises one accumulator (bias already in) of channel c. */
static inline int8_t out8(int32_t acc, const int32_t *mult, const int8_t *shift, int32_t c,
                          int32_t out_off, int32_t lo, int32_t hi) {
  return nasrt_req8(acc, mult[c], shift[c], out_off, lo, hi);
}

/* n bytes (any alignment) from s to d. */
static void copy8(int8_t *d, const int8_t *s, int32_t n) {
  for (; n >= 4; n -= 4, d += 4, s += 4) nasrt_st32(d, nasrt_ld32(s));
  for (; n > 0; n--) *d++ = *s++;
}

/* Widens n input bytes (n a multiple of 4 unless this piece ends the column) into pixel
 * lane px of the column buffer, starting at depth d0 (a multiple of 4). */
static void widen(const int8_t *src, int32_t n, int32_t d0, int32_t depth, int px,
                  uint32_t *col) {
  uint32_t *dst = col + d0 + 2 * px; /* group g's pixel px words: col[4g + 2px ..] */
  int32_t k = 0;
  for (; k + 4 <= n; k += 4, dst += 4) {
    const uint32_t v = nasrt_ld32(src + k);
    dst[0] = nasrt_sxtb16(v);
    dst[1] = nasrt_sxtb16_r8(v);
  }
  if (k < n) { /* the last D % 4 values */
    const int32_t r = depth & 3;
    int16_t *t = (int16_t *)(col + (depth & ~3)) + px * r;
    for (; k < n; k++) *t++ = src[k];
  }
}

/* The receptive field of output pixel (b, oy, ox) into lane px of the columns. With ci a
 * multiple of four every tap is whole groups (widened straight from the input, or the zero
 * point's words); else with whole filter rows (kw * ci a multiple of four) a row at a time
 * (one staged when it crosses the border); else the column is staged. */
static void im2col(const nasrt_conv_p *p, const int8_t *in, int32_t b, int32_t oy, int32_t ox,
                   int px, uint32_t *col, int8_t *stage) {
  const int32_t H = p->h, W = p->w, C = p->ci, kw = p->kw, depth = p->kh * p->kw * C;
  const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
  const int8_t *img = in + (long)b * H * W * C;
  const int8_t zp = (int8_t)(-p->in_off);
  const int32_t L = kw * C; /* one filter row */
  if ((C & 3) == 0) {
    const uint32_t zw = (uint16_t)(int16_t)zp * 0x00010001u; /* (zp, zp) */
    for (int32_t ky = 0, d = 0; ky < p->kh; ky++) {
      const int32_t iy = iy0 + ky * p->dh;
      for (int32_t kx = 0; kx < kw; kx++, d += C) {
        const int32_t ix = ix0 + kx * p->dw;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
          uint32_t *dst = col + d + 2 * px;
          for (int32_t k = 0; k < C; k += 4, dst += 4) dst[0] = zw, dst[1] = zw;
        } else {
          widen(img + ((long)iy * W + ix) * C, C, d, depth, px, col);
        }
      }
    }
    return;
  }
  const int rows_whole = (L & 3) == 0;
  const int row_in = p->dw == 1 && ix0 >= 0 && ix0 + kw <= W;
  for (int32_t ky = 0; ky < p->kh; ky++) {
    const int32_t iy = iy0 + ky * p->dh;
    int8_t *st = rows_whole ? stage : stage + ky * L;
    const int8_t *src = st;
    if (iy < 0 || iy >= H) {
      memset(st, zp, (size_t)L);
    } else if (row_in) {
      src = img + ((long)iy * W + ix0) * C;
      if (!rows_whole) copy8(st, src, L), src = st;
    } else {
      for (int32_t kx = 0; kx < kw; kx++) {
        const int32_t ix = ix0 + kx * p->dw;
        if (ix < 0 || ix >= W) memset(st + kx * C, zp, (size_t)C);
        else copy8(st + kx * C, img + ((long)iy * W + ix) * C, C);
      }
    }
    if (rows_whole) widen(src, L, ky * L, depth, px, col);
  }
  if (!rows_whole) widen(stage, depth, 0, depth, px, col);
}

/* Input pixel i of a 1x1 CONV_2D (its stride picks every sh-th row and sw-th column). */
static inline const int8_t *pixel_at(const nasrt_conv_p *p, const int8_t *in, int32_t i) {
  if (p->sh == 1 && p->sw == 1) return in + (long)i * p->ci;
  const int32_t hw = p->ho * p->wo, b = i / hw, oy = (i % hw) / p->wo, ox = i % p->wo;
  return in + (((long)b * p->h + oy * p->sh) * p->w + ox * p->sw) * p->ci;
}

/* A 1x1 CONV_2D without scratch: per output-channel pair (its requantisation constants
 * prepared once), two pixels at a time, their input words split as they are read (four more
 * SXTB16 per group of four depths than from widened columns). */
static void conv1x1_direct(const nasrt_conv_p *p, const int8_t *in, int8_t *out) {
  const int32_t depth = p->ci, G = depth >> 2, r = depth & 3, co = p->co;
  const int32_t npix = p->n * p->ho * p->wo;
  const int32_t out_off = p->out_off, lo = p->lo, hi = p->hi;
  const int8_t *w = p->wq;
  int32_t c = 0;
  for (; c + 1 < co; c += 2, w += 2 * depth) {
    nasrt_rqc q0, q1;
    nasrt_rqc_init(&q0, p->mult[c * p->qstep], p->shift[c * p->qstep]);
    nasrt_rqc_init(&q1, p->mult[(c + 1) * p->qstep], p->shift[(c + 1) * p->qstep]);
    const int32_t b0 = p->bq[c], b1 = p->bq[c + 1];
    for (int32_t pix = 0; pix < npix; pix += 2) {
      const int two = pix + 1 < npix;
      const int8_t *x0 = pixel_at(p, in, pix), *x1 = two ? pixel_at(p, in, pix + 1) : x0;
      int32_t a00 = b0, a01 = b1, a10 = b0, a11 = b1;
      const int8_t *px0 = x0, *px1 = x1, *wp = w;
#if NASRT_ASM
      if (G > 0) { /* 23 instructions per group; pixel 1's word at [px0 + d1] */
        const int8_t *wend = wp + 8 * G;
        const long d1 = (long)(x1 - x0) - 4;
        uint32_t x0a, x0b, x1a, x1b, t, wv;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[x0b], [%[px0]], #4\n\t"
            "ldr %[x1b], [%[px0], %[d1]]\n\t"
            "sxtb16 %[x0a], %[x0b]\n\t"
            "sxtb16 %[x0b], %[x0b], ror #8\n\t"
            "sxtb16 %[x1a], %[x1b]\n\t"
            "sxtb16 %[x1b], %[x1b], ror #8\n\t"
            "ldr %[t], [%[w]], #4\n\t"
            "sxtb16 %[wv], %[t]\n\t"
            "sxtb16 %[t], %[t], ror #8\n\t"
            "smlad %[a00], %[x0a], %[wv], %[a00]\n\t"
            "smlad %[a10], %[x1a], %[wv], %[a10]\n\t"
            "smlad %[a00], %[x0b], %[t], %[a00]\n\t"
            "smlad %[a10], %[x1b], %[t], %[a10]\n\t"
            "ldr %[t], [%[w]], #4\n\t"
            "sxtb16 %[wv], %[t]\n\t"
            "sxtb16 %[t], %[t], ror #8\n\t"
            "smlad %[a01], %[x0a], %[wv], %[a01]\n\t"
            "smlad %[a11], %[x1a], %[wv], %[a11]\n\t"
            "smlad %[a01], %[x0b], %[t], %[a01]\n\t"
            "smlad %[a11], %[x1b], %[t], %[a11]\n\t"
            "ldr %[t], %[wend]\n\t"
            "cmp %[w], %[t]\n\t"
            "bne 1b"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [px0] "+r"(px0),
              [w] "+r"(wp), [x0a] "=&r"(x0a), [x0b] "=&r"(x0b), [x1a] "=&r"(x1a), [x1b] "=&r"(x1b),
              [t] "=&r"(t), [wv] "=&r"(wv)
            : [d1] "r"(d1), [wend] "m"(wend)
            : "cc", "memory");
        px1 = px0 + d1 + 4;
      }
#else
      for (int32_t g = 0; g < G; g++, px0 += 4, px1 += 4, wp += 8) {
        const uint32_t v0 = nasrt_ld32(px0), v1 = nasrt_ld32(px1);
        const uint32_t x0a = nasrt_sxtb16(v0), x0b = nasrt_sxtb16_r8(v0);
        const uint32_t x1a = nasrt_sxtb16(v1), x1b = nasrt_sxtb16_r8(v1);
        const uint32_t w0 = nasrt_ld32(wp), w1 = nasrt_ld32(wp + 4);
        uint32_t t = nasrt_sxtb16(w0);
        a00 = nasrt_smlad(x0a, t, a00), a10 = nasrt_smlad(x1a, t, a10);
        t = nasrt_sxtb16_r8(w0);
        a00 = nasrt_smlad(x0b, t, a00), a10 = nasrt_smlad(x1b, t, a10);
        t = nasrt_sxtb16(w1);
        a01 = nasrt_smlad(x0a, t, a01), a11 = nasrt_smlad(x1a, t, a11);
        t = nasrt_sxtb16_r8(w1);
        a01 = nasrt_smlad(x0b, t, a01), a11 = nasrt_smlad(x1b, t, a11);
      }
#endif
      for (int32_t k = 0; k < r; k++) {
        a00 += px0[k] * wp[k], a10 += px1[k] * wp[k];
        a01 += px0[k] * wp[r + k], a11 += px1[k] * wp[r + k];
      }
      int8_t *o0 = out + (long)pix * co + c;
      o0[0] = nasrt_rq8(&q0, a00, out_off, lo, hi);
      o0[1] = nasrt_rq8(&q1, a01, out_off, lo, hi);
      if (two) {
        o0[co] = nasrt_rq8(&q0, a10, out_off, lo, hi);
        o0[co + 1] = nasrt_rq8(&q1, a11, out_off, lo, hi);
      }
    }
  }
  if (c < co) { /* an odd last channel, one pixel at a time */
    nasrt_rqc q0;
    nasrt_rqc_init(&q0, p->mult[c * p->qstep], p->shift[c * p->qstep]);
    for (int32_t pix = 0; pix < npix; pix++) {
      const int8_t *px0 = pixel_at(p, in, pix), *wp = w;
      int32_t a = p->bq[c];
      for (int32_t g = 0; g < G; g++, px0 += 4, wp += 4) {
        const uint32_t v = nasrt_ld32(px0), w0 = nasrt_ld32(wp);
        a = nasrt_smlad(nasrt_sxtb16(v), nasrt_sxtb16(w0), a);
        a = nasrt_smlad(nasrt_sxtb16_r8(v), nasrt_sxtb16_r8(w0), a);
      }
      for (int32_t k = 0; k < r; k++) a += px0[k] * wp[k];
      out[(long)pix * co + c] = nasrt_rq8(&q0, a, out_off, lo, hi);
    }
  }
}

void nasrt_conv_fast(const nasrt_conv_p *p, const int8_t *in, int8_t *out, void *scratch) {
  if (!scratch) {
    conv1x1_direct(p, in, out);
    return;
  }
  const int32_t depth = p->kh * p->kw * p->ci, G = depth >> 2, r = depth & 3, co = p->co;
  const int32_t npix = p->n * p->ho * p->wo;
  uint32_t *col = scratch;
  int8_t *stage = (int8_t *)(col + depth);
  const int32_t *bq = p->bq, *mult = p->mult;
  const int8_t *shift = p->shift;
  const int32_t qs = p->qstep;
  const int32_t out_off = p->out_off, lo = p->lo, hi = p->hi;
  const int fast1x1 = p->kh == 1 && p->kw == 1 && p->pt == 0 && p->pl == 0;
  int32_t b = 0, oy = 0, ox = 0;
  for (int32_t pix = 0; pix < npix; pix += 2) {
    const int two = pix + 1 < npix;
    for (int px = 0; px < 2; px++) { /* an odd last pixel fills both lanes */
      if (fast1x1) {
        const int8_t *src = in + (((long)b * p->h + oy * p->sh) * p->w + ox * p->sw) * p->ci;
        widen(src, depth, 0, depth, px, col);
      } else {
        im2col(p, in, b, oy, ox, px, col, stage);
      }
      if (px == 0 && !two) {
        const uint32_t *s = col;
        for (int32_t g = 0; g < G; g++) col[4 * g + 2] = s[4 * g], col[4 * g + 3] = s[4 * g + 1];
        int16_t *t = (int16_t *)(col + 4 * G);
        for (int32_t k = 0; k < r; k++) t[r + k] = t[k];
        break;
      }
      if (++ox == p->wo) {
        ox = 0;
        if (++oy == p->ho) oy = 0, b++;
      }
    }
    int8_t *o0 = out + (long)pix * co, *o1 = o0 + co;
    int8_t spill[2]; /* pixel 1's results when there is no pixel 1 */
    const int8_t *w = p->wq;
    const int16_t *xt = (const int16_t *)(col + 4 * G);
    int32_t c = 0;
    for (; c + 1 < co; c += 2) {
      int32_t a00 = bq[c], a01 = bq[c + 1], a10 = a00, a11 = a01;
      const uint32_t *x = col;
#if NASRT_ASM
      if (G > 0) { /* the loop below in 18 instructions per group */
        uint32_t x0a, x0b, x1a, x1b, wv, t;
        int32_t g = G;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[x0a], %[x0b], [%[x]], #8\n\t"
            "ldrd %[x1a], %[x1b], [%[x]], #8\n\t"
            "ldr %[wv], [%[w]], #4\n\t"
            "sxtb16 %[t], %[wv]\n\t"
            "smlad %[a00], %[x0a], %[t], %[a00]\n\t"
            "smlad %[a10], %[x1a], %[t], %[a10]\n\t"
            "sxtb16 %[t], %[wv], ror #8\n\t"
            "smlad %[a00], %[x0b], %[t], %[a00]\n\t"
            "smlad %[a10], %[x1b], %[t], %[a10]\n\t"
            "ldr %[wv], [%[w]], #4\n\t"
            "sxtb16 %[t], %[wv]\n\t"
            "smlad %[a01], %[x0a], %[t], %[a01]\n\t"
            "smlad %[a11], %[x1a], %[t], %[a11]\n\t"
            "sxtb16 %[t], %[wv], ror #8\n\t"
            "smlad %[a01], %[x0b], %[t], %[a01]\n\t"
            "smlad %[a11], %[x1b], %[t], %[a11]\n\t"
            "subs %[g], %[g], #1\n\t"
            "bne 1b"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [x] "+r"(x),
              [w] "+r"(w), [g] "+r"(g), [x0a] "=&r"(x0a), [x0b] "=&r"(x0b), [x1a] "=&r"(x1a),
              [x1b] "=&r"(x1b), [wv] "=&r"(wv), [t] "=&r"(t)
            :
            : "cc", "memory");
      }
#else
      for (int32_t g = 0; g < G; g++) {
        const uint32_t x0a = x[0], x0b = x[1], x1a = x[2], x1b = x[3];
        const uint32_t w0 = nasrt_ld32(w), w1 = nasrt_ld32(w + 4);
        x += 4, w += 8;
        uint32_t t = nasrt_sxtb16(w0);
        a00 = nasrt_smlad(x0a, t, a00), a10 = nasrt_smlad(x1a, t, a10);
        t = nasrt_sxtb16_r8(w0);
        a00 = nasrt_smlad(x0b, t, a00), a10 = nasrt_smlad(x1b, t, a10);
        t = nasrt_sxtb16(w1);
        a01 = nasrt_smlad(x0a, t, a01), a11 = nasrt_smlad(x1a, t, a11);
        t = nasrt_sxtb16_r8(w1);
        a01 = nasrt_smlad(x0b, t, a01), a11 = nasrt_smlad(x1b, t, a11);
      }
#endif
      for (int32_t k = 0; k < r; k++) {
        a00 += xt[k] * w[k], a10 += xt[r + k] * w[k];
        a01 += xt[k] * w[r + k], a11 += xt[r + k] * w[r + k];
      }
      w += 2 * r;
      int8_t *d0 = two ? o1 + c : spill, *d1 = two ? o1 + c + 1 : spill + 1;
      nasrt_req8x2(a00, a10, mult[c * qs], shift[c * qs], out_off, lo, hi, o0 + c, d0);
      nasrt_req8x2(a01, a11, mult[(c + 1) * qs], shift[(c + 1) * qs], out_off, lo, hi, o0 + c + 1, d1);
    }
    if (c < co) { /* an odd last channel */
      int32_t a00 = bq[c], a10 = a00;
      const uint32_t *x = col;
      for (int32_t g = 0; g < G; g++, x += 4, w += 4) {
        const uint32_t w0 = nasrt_ld32(w);
        uint32_t t = nasrt_sxtb16(w0);
        a00 = nasrt_smlad(x[0], t, a00), a10 = nasrt_smlad(x[2], t, a10);
        t = nasrt_sxtb16_r8(w0);
        a00 = nasrt_smlad(x[1], t, a00), a10 = nasrt_smlad(x[3], t, a10);
      }
      for (int32_t k = 0; k < r; k++) a00 += xt[k] * w[k], a10 += xt[r + k] * w[k];
      o0[c] = out8(a00, mult, shift, c * qs, out_off, lo, hi);
      if (two) o1[c] = out8(a10, mult, shift, c * qs, out_off, lo, hi);
    }
  }
}

/* FULLY_CONNECTED: one input row at a time, two output channels per pass; each input word is
 * split once per pass, so a group of four inputs costs one load, two SXTB16, two filter loads,
 * four SXTB16 and four SMLAD for eight products. */
void nasrt_fc_fast(const nasrt_fc_p *p, const int8_t *in, int8_t *out) {
  const int32_t d = p->d, co = p->co, G = d >> 2, r = d & 3;
  const int32_t *bq = p->bq, *mult = p->mult;
  const int8_t *shift = p->shift;
  const int32_t qs = p->qstep;
  for (int32_t row = 0; row < p->b; row++) {
    const int8_t *x = in + (long)row * d;
    int8_t *o = out + (long)row * co;
    const int8_t *w = p->wq;
    int32_t c = 0;
#if NASRT_ASM
    for (; c + 3 < co && G > 0; c += 4) { /* two channel pairs: each input word split once */
      int32_t a0 = bq[c], a1 = bq[c + 1], a2 = bq[c + 2], a3 = bq[c + 3];
      const int8_t *px = x, *w2 = w + 2 * d;
      int32_t n = G;
      uint32_t xa, xb, t, wv;
      __asm__ volatile(
          "1:\n\t"
          "ldr %[xb], [%[px]], #4\n\t"
          "sxtb16 %[xa], %[xb]\n\t"
          "sxtb16 %[xb], %[xb], ror #8\n\t"
          "ldr %[t], [%[w]], #4\n\t"
          "sxtb16 %[wv], %[t]\n\t"
          "sxtb16 %[t], %[t], ror #8\n\t"
          "smlad %[a0], %[xa], %[wv], %[a0]\n\t"
          "smlad %[a0], %[xb], %[t], %[a0]\n\t"
          "ldr %[t], [%[w]], #4\n\t"
          "sxtb16 %[wv], %[t]\n\t"
          "sxtb16 %[t], %[t], ror #8\n\t"
          "smlad %[a1], %[xa], %[wv], %[a1]\n\t"
          "smlad %[a1], %[xb], %[t], %[a1]\n\t"
          "ldr %[t], [%[w2]], #4\n\t"
          "sxtb16 %[wv], %[t]\n\t"
          "sxtb16 %[t], %[t], ror #8\n\t"
          "smlad %[a2], %[xa], %[wv], %[a2]\n\t"
          "smlad %[a2], %[xb], %[t], %[a2]\n\t"
          "ldr %[t], [%[w2]], #4\n\t"
          "sxtb16 %[wv], %[t]\n\t"
          "sxtb16 %[t], %[t], ror #8\n\t"
          "smlad %[a3], %[xa], %[wv], %[a3]\n\t"
          "smlad %[a3], %[xb], %[t], %[a3]\n\t"
          "subs %[n], %[n], #1\n\t"
          "bne 1b"
          : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [px] "+r"(px), [w] "+r"(w),
            [w2] "+r"(w2), [n] "+r"(n), [xa] "=&r"(xa), [xb] "=&r"(xb), [t] "=&r"(t), [wv] "=&r"(wv)
          :
          : "cc", "memory");
      for (int32_t k = 0; k < r; k++) {
        a0 += px[k] * w[k], a1 += px[k] * w[r + k];
        a2 += px[k] * w2[k], a3 += px[k] * w2[r + k];
      }
      w = w2 + 2 * r;
      o[c] = out8(a0, mult, shift, c * qs, p->out_off, p->lo, p->hi);
      o[c + 1] = out8(a1, mult, shift, (c + 1) * qs, p->out_off, p->lo, p->hi);
      o[c + 2] = out8(a2, mult, shift, (c + 2) * qs, p->out_off, p->lo, p->hi);
      o[c + 3] = out8(a3, mult, shift, (c + 3) * qs, p->out_off, p->lo, p->hi);
    }
#endif
    for (; c + 1 < co; c += 2) {
      int32_t a0 = bq[c], a1 = bq[c + 1];
      const int8_t *px = x;
      for (int32_t g = 0; g < G; g++, px += 4, w += 8) {
        const uint32_t v = nasrt_ld32(px), w0 = nasrt_ld32(w), w1 = nasrt_ld32(w + 4);
        const uint32_t xa = nasrt_sxtb16(v), xb = nasrt_sxtb16_r8(v);
        a0 = nasrt_smlad(xa, nasrt_sxtb16(w0), a0);
        a0 = nasrt_smlad(xb, nasrt_sxtb16_r8(w0), a0);
        a1 = nasrt_smlad(xa, nasrt_sxtb16(w1), a1);
        a1 = nasrt_smlad(xb, nasrt_sxtb16_r8(w1), a1);
      }
      for (int32_t k = 0; k < r; k++) a0 += px[k] * w[k], a1 += px[k] * w[r + k];
      w += 2 * r;
      o[c] = out8(a0, mult, shift, c * qs, p->out_off, p->lo, p->hi);
      o[c + 1] = out8(a1, mult, shift, (c + 1) * qs, p->out_off, p->lo, p->hi);
    }
    if (c < co) {
      int32_t a0 = bq[c];
      const int8_t *px = x;
      for (int32_t g = 0; g < G; g++, px += 4, w += 4) {
        const uint32_t v = nasrt_ld32(px), w0 = nasrt_ld32(w);
        a0 = nasrt_smlad(nasrt_sxtb16(v), nasrt_sxtb16(w0), a0);
        a0 = nasrt_smlad(nasrt_sxtb16_r8(v), nasrt_sxtb16_r8(w0), a0);
      }
      for (int32_t k = 0; k < r; k++) a0 += px[k] * w[k];
      o[c] = out8(a0, mult, shift, c * qs, p->out_off, p->lo, p->hi);
    }
  }
}
