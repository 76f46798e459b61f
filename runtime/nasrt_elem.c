/* nasrt_elem.c: the int8 runtime's kernels without weights: average and max pooling, ADD,
 * QUANTIZE (int8 -> int8 requantisation) and RESHAPE (a copy). TFLite's int8 arithmetic:
 * the average rounds half away from zero, ADD rescales both inputs to a common scale after a
 * left shift before requantising the sum. */
#include <stdint.h>
#include <string.h>

#include "nasrt.h"
#include "nasrt_fixed.h"

static void pool(const nasrt_pool_p *p, int avg, const int8_t *in, int8_t *out) {
  const int32_t H = p->h, W = p->w, C = p->c, Ho = p->ho, Wo = p->wo;
  for (int32_t n = 0; n < p->n; n++)
    for (int32_t oy = 0; oy < Ho; oy++)
      for (int32_t ox = 0; ox < Wo; ox++) {
        const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
        const int32_t fy0 = iy0 < 0 ? -iy0 : 0, fy1 = p->fh < H - iy0 ? p->fh : H - iy0;
        const int32_t fx0 = ix0 < 0 ? -ix0 : 0, fx1 = p->fw < W - ix0 ? p->fw : W - ix0;
        for (int32_t c = 0; c < C; c++) {
          int32_t acc = avg ? 0 : -128, count = 0;
          for (int32_t fy = fy0; fy < fy1; fy++)
            for (int32_t fx = fx0; fx < fx1; fx++) {
              int32_t v = in[(((long)n * H + iy0 + fy) * W + ix0 + fx) * C + c];
              if (avg) acc += v;
              else if (v > acc) acc = v;
              count++;
            }
          if (avg) { /* count is 0 only for an empty window, which valid shapes exclude */
            if (count == 0) acc = 0;
            else acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          }
          out[(((long)n * Ho + oy) * Wo + ox) * C + c] = (int8_t)nasrt_clamp(acc, p->lo, p->hi);
        }
      }
}

void nasrt_avgpool(const nasrt_pool_p *p, const int8_t *in, int8_t *out) { pool(p, 1, in, out); }
void nasrt_maxpool(const nasrt_pool_p *p, const int8_t *in, int8_t *out) { pool(p, 0, in, out); }

void nasrt_add(const nasrt_add_p *p, const int8_t *a, const int8_t *b, int8_t *out) {
  const int32_t ls = (int32_t)1 << p->left_shift;
  for (int32_t i = 0; i < p->n; i++) {
    int32_t va = (a[i] + p->a_off) * ls, vb = (b[i] + p->b_off) * ls;
    int32_t sum = nasrt_mul(va, p->a_mult, p->a_shift) + nasrt_mul(vb, p->b_mult, p->b_shift);
    out[i] = (int8_t)nasrt_clamp(nasrt_mul(sum, p->out_mult, p->out_shift) + p->out_zp, p->lo, p->hi);
  }
}

void nasrt_requantize(const nasrt_requant_p *p, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < p->n; i++)
    out[i] = (int8_t)nasrt_clamp(nasrt_mul(in[i] - p->in_zp, p->mult, p->shift) + p->out_zp,
                                 -128, 127);
}

void nasrt_copy(const nasrt_copy_p *p, const int8_t *in, int8_t *out) {
  if (in != out) memmove(out, in, (size_t)p->n);
}
