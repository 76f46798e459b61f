/* nasrt_elem.c: the int8 runtime's kernels without weights: average and max pooling, ADD,
 * QUANTIZE (int8 -> int8 requantisation) and RESHAPE (a copy). TFLite's int8 arithmetic:
 * the average rounds half away from zero, ADD rescales both inputs to a common scale after a
 * left shift before requantising the sum. */
#include <stdint.h>
#include <string.h>

#include "nasrt.h"
#include "nasrt_fixed.h"
#include "nasrt_simd.h"

/* Pooling: per output pixel the window is clipped to the input once, then four channels at a
 * time run down the window with one word load per tap (SXTAB16 adds two int16 lane sums,
 * SSUB8 + SEL keep four lane maxima), the channels beyond a multiple of four one at a time. */
/* The average of a window sum over count reads, rounded half away from zero, clamped. */
static inline int8_t avg_out(int32_t acc, int32_t count, int32_t lo, int32_t hi) {
  acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
  return (int8_t)nasrt_clamp(acc, lo, hi);
}

static void pool(const nasrt_pool_p *p, int avg, const int8_t *in, int8_t *out) {
  const int32_t H = p->h, W = p->w, C = p->c, Ho = p->ho, Wo = p->wo;
  const long row = (long)W * C;
  for (int32_t n = 0; n < p->n; n++)
    for (int32_t oy = 0; oy < Ho; oy++)
      for (int32_t ox = 0; ox < Wo; ox++) {
        const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
        const int32_t fy0 = iy0 < 0 ? -iy0 : 0, fy1 = p->fh < H - iy0 ? p->fh : H - iy0;
        const int32_t fx0 = ix0 < 0 ? -ix0 : 0, fx1 = p->fw < W - ix0 ? p->fw : W - ix0;
        const int32_t nx = fx1 - fx0, ny = fy1 - fy0, count = nx * ny;
        const int8_t *base = in + ((long)n * H + iy0 + fy0) * row + (long)(ix0 + fx0) * C;
        int8_t *o = out + (((long)n * Ho + oy) * Wo + ox) * C;
        int32_t c = 0;
        if (count <= 256) /* four channels per word; int16 lane sums cannot overflow */
          for (; c + 3 < C; c += 4) {
            const int8_t *py = base + c;
            uint32_t s02 = 0, s13 = 0, mx = 0x80808080u;
            for (int32_t fy = 0; fy < ny; fy++, py += row) {
              const int8_t *px = py;
              if (avg)
                for (int32_t fx = 0; fx < nx; fx++, px += C) {
                  const uint32_t v = nasrt_ld32(px);
                  s02 = nasrt_sxtab16(s02, v), s13 = nasrt_sxtab16_r8(s13, v);
                }
              else
                for (int32_t fx = 0; fx < nx; fx++, px += C) mx = nasrt_max8(mx, nasrt_ld32(px));
            }
            if (avg) {
              o[c] = avg_out((int16_t)(uint16_t)(s02 & 0xffffu), count, p->lo, p->hi);
              o[c + 1] = avg_out((int16_t)(uint16_t)(s13 & 0xffffu), count, p->lo, p->hi);
              o[c + 2] = avg_out((int16_t)(uint16_t)(s02 >> 16), count, p->lo, p->hi);
              o[c + 3] = avg_out((int16_t)(uint16_t)(s13 >> 16), count, p->lo, p->hi);
            } else {
              o[c] = (int8_t)nasrt_clamp((int8_t)(uint8_t)mx, p->lo, p->hi);
              o[c + 1] = (int8_t)nasrt_clamp((int8_t)(uint8_t)(mx >> 8), p->lo, p->hi);
              o[c + 2] = (int8_t)nasrt_clamp((int8_t)(uint8_t)(mx >> 16), p->lo, p->hi);
              o[c + 3] = (int8_t)nasrt_clamp((int8_t)(uint8_t)(mx >> 24), p->lo, p->hi);
            }
          }
        for (; c < C; c++) {
          int32_t acc = avg ? 0 : -128;
          const int8_t *py = base + c;
          for (int32_t fy = 0; fy < ny; fy++, py += row) {
            const int8_t *px = py;
            if (avg)
              for (int32_t fx = 0; fx < nx; fx++, px += C) acc += *px;
            else
              for (int32_t fx = 0; fx < nx; fx++, px += C) acc = *px > acc ? *px : acc;
          }
          if (avg) { /* count is 0 only for an empty window, which valid shapes exclude */
            if (count <= 0) acc = 0;
            else acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          }
          o[c] = (int8_t)nasrt_clamp(acc, p->lo, p->hi);
        }
      }
}

void nasrt_avgpool(const nasrt_pool_p *p, const int8_t *in, int8_t *out) { pool(p, 1, in, out); }
void nasrt_maxpool(const nasrt_pool_p *p, const int8_t *in, int8_t *out) { pool(p, 0, in, out); }

void nasrt_add(const nasrt_add_p *p, const int8_t *a, const int8_t *b, int8_t *out) {
  const int32_t ls = (int32_t)1 << p->left_shift;
  if (p->a_mult >= 0 && p->b_mult >= 0 && p->out_mult >= 0 && p->left_shift < 24) {
    /* every multiplier the prepare step makes: nasrt_mulq, the same results in fewer steps
     * ((x - zp) << left_shift cannot overflow below a shift of 24) */
    const int32_t am = p->a_mult, as = p->a_shift, bm = p->b_mult, bs = p->b_shift;
    const int32_t om = p->out_mult, os = p->out_shift, zp = p->out_zp, lo = p->lo, hi = p->hi;
    for (int32_t i = 0; i < p->n; i++) {
      const int32_t va = (a[i] + p->a_off) * ls, vb = (b[i] + p->b_off) * ls;
      const int32_t sum = nasrt_mulq(va, am, as) + nasrt_mulq(vb, bm, bs);
      const int32_t v = nasrt_mulq(sum, om, os) + zp;
      out[i] = (int8_t)(v < lo ? lo : v > hi ? hi : v);
    }
    return;
  }
  for (int32_t i = 0; i < p->n; i++) {
    int32_t va = (a[i] + p->a_off) * ls, vb = (b[i] + p->b_off) * ls;
    int32_t sum = nasrt_mul(va, p->a_mult, p->a_shift) + nasrt_mul(vb, p->b_mult, p->b_shift);
    out[i] = (int8_t)nasrt_out8(nasrt_mul(sum, p->out_mult, p->out_shift), p->out_zp, p->lo, p->hi);
  }
}

void nasrt_requantize(const nasrt_requant_p *p, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < p->n; i++)
    out[i] = (int8_t)nasrt_out8(nasrt_mul(in[i] - p->in_zp, p->mult, p->shift), p->out_zp, -128,
                                127);
}

void nasrt_copy(const nasrt_copy_p *p, const int8_t *in, int8_t *out) {
  if (in != out) memmove(out, in, (size_t)p->n);
}
