/* nasrt_wino.c: the int8 runtime's Winograd convolution (WINOGRAD_CONV_2D, nasrt.h): per input
 * tile, the input transform of every channel into int16 V (the static F2/F4 transforms as
 * additions and shifts, a flex layer's int8 tables as products), then per output channel the
 * tile positions' dot products over the input channels (SMLAD on int16 pairs with the Arm DSP
 * extension: the int8 U is widened by SXTB16, so V is stored with the middle two of every four
 * channels swapped), the product's requantisation, the output transform and the output
 * requantisation. Static layers may transform their weights at run time into the scratch. */
#include <stdint.h>
#include <string.h>

#include "nasrt.h"
#include "nasrt_fixed.h"
#include "nasrt_simd.h"
#include "nasrt_wfixed.h"

#define MAXA 6 /* largest input tile (F4) */

/* G * gden of F2 (gden 2) and F4 (gden 24), rows of 3, for the run-time weight transform. */
static const int8_t G2[12] = {2, 0, 0, 1, 1, 1, 1, -1, 1, 0, 0, 2};
static const int8_t G4[18] = {6, 0, 0, -4, -4, -4, -4, 4, -4, 1, 2, 4, 1, -2, 4, 0, 0, 24};

static int32_t clampq(int32_t v, int32_t q) { return v < -q ? -q : v > q ? q : v; }

/* ---- one-dimensional transforms: y[i*ys] from x[k*xs] -------------------------------------- */

static void bt2(const int32_t *x, int xs, int32_t *y, int ys) {
  const int32_t x0 = x[0], x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs];
  y[0] = x0 - x2, y[ys] = x1 + x2, y[2 * ys] = x2 - x1, y[3 * ys] = x1 - x3;
}

static void bt4(const int32_t *x, int xs, int32_t *y, int ys) {
  const int32_t x0 = x[0], x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs], x4 = x[4 * xs];
  const int32_t x5 = x[5 * xs];
  y[0] = 4 * x0 - 5 * x2 + x4;
  y[ys] = x3 + x4 - 4 * (x1 + x2);
  y[2 * ys] = x4 - x3 + 4 * (x1 - x2);
  y[3 * ys] = x4 - x2 + 2 * (x3 - x1);
  y[4 * ys] = x4 - x2 + 2 * (x1 - x3);
  y[5 * ys] = 4 * x1 - 5 * x3 + x5;
}

static void at2(const int32_t *x, int xs, int32_t *y, int ys) {
  const int32_t x1 = x[xs], x2 = x[2 * xs];
  y[0] = x[0] + x1 + x2, y[ys] = x1 - x2 - x[3 * xs];
}

static void at4(const int32_t *x, int xs, int32_t *y, int ys) {
  const int32_t x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs], x4 = x[4 * xs];
  const int32_t s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4;
  y[0] = x[0] + s12 + s34;
  y[ys] = d12 + 2 * d34;
  y[2 * ys] = s12 + 4 * s34;
  y[3 * ys] = d12 + 8 * d34 + x[5 * xs];
}

/* Flex: y[i] = sum_k t[i][k] x[k] with an int8 table t [rows][cols]. */
static void tab(const int8_t *t, int rows, int cols, const int32_t *x, int xs, int32_t *y, int ys) {
  for (int i = 0; i < rows; i++) {
    int32_t s = 0;
    for (int k = 0; k < cols; k++) s += t[i * cols + k] * x[k * xs];
    y[i * ys] = s;
  }
}

/* ---- the product of one tile position: sum over input channels ------------------------------ */

/* sum_c u[c] v[perm(c)]: v holds every group of four channels as (c0, c2, c1, c3), the order in
 * which SXTB16 widens a word of four int8 weights. n4 is a multiple of 4. */
static int32_t dot(const int8_t *u, const int16_t *v, int32_t n4) {
  int32_t acc = 0;
#if NASRT_DSP
  for (int32_t c = 0; c < n4; c += 4) {
    const uint32_t w = nasrt_ld32(u + c);
    acc = nasrt_smlad(nasrt_sxtb16(w), nasrt_ld32(v + c), acc);
    acc = nasrt_smlad(nasrt_sxtb16_r8(w), nasrt_ld32(v + c + 2), acc);
  }
#else
  for (int32_t c = 0; c < n4; c += 4)
    acc += u[c] * v[c] + u[c + 2] * v[c + 1] + u[c + 1] * v[c + 2] + u[c + 3] * v[c + 3];
#endif
  return acc;
}

/* Slot of channel c in V's row (the middle two of each group of four swapped). */
static int32_t slot(int32_t c) { return (c & ~3) | ((c & 1) << 1) | ((c & 2) >> 1); }

/* ---- the run-time weight transform ------------------------------------------------------------ */

static void transform_weights(const nasrt_wino_p *p, int8_t *U) {
  const int32_t a = p->m + 2, P = a * a, ci4 = NASRT_WINO_CI4(p->ci);
  const int8_t *G = p->m == 2 ? G2 : G4;
  memset(U, 0, (size_t)p->co * P * ci4);
  for (int32_t k = 0; k < p->co; k++)
    for (int32_t c = 0; c < p->ci; c++) {
      int32_t t[MAXA * 3], g[9];
      for (int32_t q = 0; q < 9; q++) g[q] = p->wt[((long)k * 9 + q) * p->ci + c];
      for (int32_t i = 0; i < a; i++) /* t = Gn g */
        for (int32_t j = 0; j < 3; j++)
          t[i * 3 + j] = G[i * 3] * g[j] + G[i * 3 + 1] * g[3 + j] + G[i * 3 + 2] * g[6 + j];
      for (int32_t i = 0; i < a; i++) /* Gn g Gn^T, requantised to int8 */
        for (int32_t j = 0; j < a; j++) {
          const int32_t v = t[i * 3] * G[j * 3] + t[i * 3 + 1] * G[j * 3 + 1] + t[i * 3 + 2] * G[j * 3 + 2];
          U[((long)k * P + i * a + j) * ci4 + c] =
              (int8_t)clampq(nasrt_mul_round(v, p->u_mult[k], p->u_shift[k]), 127);
        }
    }
}

/* ---- the kernel -------------------------------------------------------------------------------- */

void nasrt_wino(const nasrt_wino_p *p, const int8_t *in, int8_t *out, void *scratch) {
  const int32_t m = p->m, a = m + 2, P = a * a, ci4 = NASRT_WINO_CI4(p->ci);
  const int32_t H = p->h, W = p->w, Ci = p->ci, Ho = p->ho, Wo = p->wo, Co = p->co;
  const int32_t th = (Ho + m - 1) / m, tw = (Wo + m - 1) / m, qmax = p->qmax;
  int32_t *M = scratch;               /* [P] */
  int32_t *R = M + P;                 /* [m][a] rows of the output transform */
  int16_t *V = (int16_t *)(R + m * a); /* [P][ci4] */
  const int8_t *U = p->u;
  if (!U) {
    int8_t *Ut = (int8_t *)(V + (long)P * ci4);
    transform_weights(p, Ut);
    U = Ut;
  }
  memset(V, 0, sizeof *V * (size_t)P * ci4); /* the padding channels stay 0 */
  void (*fin)(const int32_t *, int, int32_t *, int) = m == 2 ? bt2 : bt4;
  void (*fout)(const int32_t *, int, int32_t *, int) = m == 2 ? at2 : at4;
  for (int32_t n = 0; n < p->n; n++)
    for (int32_t ty = 0; ty < th; ty++)
      for (int32_t tx = 0; tx < tw; tx++) {
        const int32_t r0 = ty * m - p->pt, c0 = tx * m - p->pl;
        /* input transform, one channel at a time */
        for (int32_t c = 0; c < Ci; c++) {
          int32_t d[MAXA * MAXA], t[MAXA * MAXA], v[MAXA * MAXA];
          for (int32_t i = 0; i < a; i++)
            for (int32_t j = 0; j < a; j++) {
              const int32_t y = r0 + i, x = c0 + j;
              d[i * a + j] = y < 0 || y >= H || x < 0 || x >= W
                                 ? 0
                                 : in[(((long)n * H + y) * W + x) * Ci + c] + p->in_off;
            }
          for (int32_t j = 0; j < a; j++) { /* columns: t = Bt d */
            if (p->bt) tab(p->bt, a, a, d + j, a, t + j, a);
            else fin(d + j, a, t + j, a);
          }
          for (int32_t i = 0; i < a; i++) { /* rows: v = t Bt^T */
            if (p->bt) tab(p->bt, a, a, t + i * a, 1, v + i * a, 1);
            else fin(t + i * a, 1, v + i * a, 1);
          }
          const int32_t s = slot(c);
          for (int32_t q = 0; q < P; q++)
            V[(long)q * ci4 + s] = (int16_t)clampq(nasrt_mul_round(v[q], p->v_mult, p->v_shift), qmax);
        }
        /* per output channel: products, output transform, requantisation */
        for (int32_t k = 0; k < Co; k++) {
          const int8_t *uk = U + (long)k * P * ci4;
          for (int32_t q = 0; q < P; q++)
            M[q] = clampq(nasrt_mul_round(dot(uk + (long)q * ci4, V + (long)q * ci4, ci4), p->m_mult[k],
                                    p->m_shift[k]),
                          qmax);
          int32_t Y[4 * 4];
          for (int32_t j = 0; j < a; j++) { /* columns: R = At M */
            if (p->at) tab(p->at, m, a, M + j, a, R + j, a);
            else fout(M + j, a, R + j, a);
          }
          for (int32_t i = 0; i < m; i++) { /* rows: Y = R At^T */
            if (p->at) tab(p->at, m, a, R + i * a, 1, Y + i * m, 1);
            else fout(R + i * a, 1, Y + i * m, 1);
          }
          const int32_t b = p->bias ? p->bias[k] : 0;
          for (int32_t i = 0; i < m && ty * m + i < Ho; i++)
            for (int32_t j = 0; j < m && tx * m + j < Wo; j++) {
              const int32_t v = nasrt_mul_round_bias(Y[i * m + j], b, p->bshift, p->o_mult[k], p->o_shift[k]);
              out[(((long)n * Ho + ty * m + i) * Wo + tx * m + j) * Co + k] =
                  (int8_t)nasrt_out8(v, p->out_off, p->lo, p->hi);
            }
        }
      }
}
