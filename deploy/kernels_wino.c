/* deploy/kernels_wino.c: the host's kernel for WINOGRAD_CONV_2D (deploy/wino8.h), written
 * independently of the MCU runtime's (runtime/nasrt_wino.c) so that the byte-for-byte
 * comparison of the two means something: the transforms are generic integer matrix products
 * (the Cook-Toom tables of train/wino.h, or a flex layer's int8 tables), every tile of an
 * image is transformed first ([T][P][ci] int16, channels in their natural order), then each
 * tile's products, output transform and requantisation follow. Same arithmetic: int32 sums,
 * nas_q_mul (the runtime's MultiplyByQuantizedMultiplier), clamps to +-qmax. */
#include <stdint.h>
#include <string.h>

#include "deploy/wino8.h"
#include "runtime/nasrt_fixed.h"
#include "runtime/nasrt_wfixed.h"

static int32_t clampq(int32_t v, int32_t q) { return v < -q ? -q : v > q ? q : v; }

size_t nas_g8_wino_host_scratch(const nasrt_wino_p *c) {
  const size_t a = (size_t)c->m + 2, P = a * a;
  const size_t T = (size_t)((c->ho + c->m - 1) / c->m) * (size_t)((c->wo + c->m - 1) / c->m);
  return sizeof(int16_t) * T * P * (size_t)c->ci + 64;
}

/* y = A x B^T for integer matrices: x [Q][Q], A [R][Q], y [R][R]; t [R][Q] work space. */
static void sandwich(const int32_t *A, int R, int Q, const int32_t *x, int32_t *t, int32_t *y) {
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) {
      int32_t s = 0;
      for (int k = 0; k < Q; k++) s += A[r * Q + k] * x[k * Q + q];
      t[r * Q + q] = s;
    }
  for (int r = 0; r < R; r++)
    for (int r2 = 0; r2 < R; r2++) {
      int32_t s = 0;
      for (int k = 0; k < Q; k++) s += t[r * Q + k] * A[r2 * Q + k];
      y[r * R + r2] = s;
    }
}

void nas_g8_wino_run(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out, void *scratch) {
  const nasrt_wino_p c = pp->rt.wino;
  const int m = c.m, a = m + 2, P = a * a, ci = c.ci, ci4 = NASRT_WINO_CI4(ci);
  const int th = (c.ho + m - 1) / m, tw = (c.wo + m - 1) / m, T = th * tw;
  int32_t bt[NAS_WINO_MAXA * NAS_WINO_MAXA], at[4 * NAS_WINO_MAXA];
  const nas_wino_tf *tf = nas_wino_tf_get(m);
  for (int i = 0; i < P; i++) bt[i] = c.bt ? c.bt[i] : tf->bt[i];
  for (int i = 0; i < m * a; i++) at[i] = c.at ? c.at[i] : tf->at[i];
  int16_t *restrict V = scratch; /* [T][P][ci] */
  const int8_t *U = pp->wino_u;  /* [co][P][ci4] */
  for (int n = 0; n < c.n; n++) {
    for (int t = 0; t < T; t++) {
      const int r0 = (t / tw) * m - c.pt, c0 = (t % tw) * m - c.pl;
      for (int ch = 0; ch < ci; ch++) {
        int32_t d[NAS_WINO_MAXA * NAS_WINO_MAXA], w[NAS_WINO_MAXA * NAS_WINO_MAXA], v[NAS_WINO_MAXA * NAS_WINO_MAXA];
        for (int i = 0; i < a; i++)
          for (int j = 0; j < a; j++) {
            const int y = r0 + i, x = c0 + j;
            d[i * a + j] = (y < 0 || y >= c.h || x < 0 || x >= c.w)
                               ? 0
                               : in[(((size_t)n * c.h + y) * c.w + x) * ci + ch] + c.in_off;
          }
        sandwich(bt, a, a, d, w, v);
        for (int p = 0; p < P; p++)
          V[((size_t)t * P + p) * ci + ch] = (int16_t)clampq(nasrt_mul_round(v[p], c.v_mult, c.v_shift), c.qmax);
      }
    }
    for (int t = 0; t < T; t++) {
      const int y0 = (t / tw) * m, x0 = (t % tw) * m;
      for (int k = 0; k < c.co; k++) {
        int32_t M[NAS_WINO_MAXA * NAS_WINO_MAXA], w[4 * NAS_WINO_MAXA], Y[16];
        for (int p = 0; p < P; p++) {
          const int8_t *restrict u = U + ((size_t)k * P + p) * ci4;
          const int16_t *restrict v = V + ((size_t)t * P + p) * ci;
          int32_t s = 0;
          for (int ch = 0; ch < ci; ch++) s += u[ch] * v[ch];
          M[p] = clampq(nasrt_mul_round(s, c.m_mult[k], c.m_shift[k]), c.qmax);
        }
        sandwich(at, m, a, M, w, Y);
        const int32_t b = c.bias ? c.bias[k] : 0;
        for (int i = 0; i < m && y0 + i < c.ho; i++)
          for (int j = 0; j < m && x0 + j < c.wo; j++) {
            int32_t q = nasrt_mul_round_bias(Y[i * m + j], b, c.bshift, c.o_mult[k], c.o_shift[k]);
            out[(((size_t)n * c.ho + y0 + i) * c.wo + x0 + j) * c.co + k] = (int8_t)nasrt_out8(q, c.out_off, c.lo, c.hi);
          }
      }
    }
  }
}
