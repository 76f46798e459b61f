/* train/quant_rnn.c: the internal quantisation points of LSTM and GRU nodes (see
 * train/quant.h): a plain float recomputation of the cell, step by step, in the order the int8
 * lowering computes it (deploy/lower_rnn.c), that hands each internal quantity's values to
 * the calibration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "train/ops.h"
#include "train/quant.h"

int nas_rnn_npoints(int op) {
  return op == NAS_OP_LSTM ? NAS_LSTM_NPOINTS : op == NAS_OP_GRU ? NAS_GRU_NPOINTS : 0;
}

static float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

/* y[r] = b[r] + sum_k w[r,k] x[k] for r < rows (w row-major [rows, cols] starting at row r0). */
static void matvec(const float *w, int r0, int rows, int cols, const float *x, const float *b,
                   const float *b2, float *y) {
  for (int r = 0; r < rows; r++) {
    const float *wr = w + (size_t)(r0 + r) * cols;
    float acc = (b ? b[r0 + r] : 0.0f) + (b2 ? b2[r0 + r] : 0.0f);
    for (int k = 0; k < cols; k++) acc += wr[k] * x[k];
    y[r] = acc;
  }
}

int nas_rnn_point_values(const nas_graph *g, int node, int n, float *const *vals, size_t *cnt) {
  const nas_node *nd = &g->nodes[node];
  const int gru = nd->op == NAS_OP_GRU, np = nas_rnn_npoints(nd->op);
  const nas_node *x = &g->nodes[nd->in[0]], *wi = &g->nodes[nd->in[1]], *wh = &g->nodes[nd->in[2]];
  const float *bi = nd->n_in == 5 ? g->nodes[nd->in[3]].val : NULL;
  const float *bh = nd->n_in == 5 ? g->nodes[nd->in[4]].val : NULL;
  const int T = x->shape.d[1], F = x->shape.d[2], H = wh->shape.d[1];
  for (int k = 0; k < np; k++) cnt[k] = 0;
  float *buf = nas_malloc(sizeof *buf * (size_t)H * 16);
  if (!buf) return NAS_ENOMEM;
  float *h = buf, *c = buf + H, *v = buf + 2 * H; /* v: [12][H] per-step quantities */
  for (int b = 0; b < n; b++) {
    memset(h, 0, sizeof *h * (size_t)H);
    memset(c, 0, sizeof *c * (size_t)H);
    for (int t = 0; t < T; t++) {
      const float *xt = x->val + ((size_t)b * T + t) * F;
      if (!gru) {
        float *gi = v, *gf = v + H, *gc = v + 2 * H, *go = v + 3 * H, *g2 = v + 4 * H;
        for (int q = 0; q < 4; q++) {
          matvec(wi->val, q * H, H, F, xt, bi, bh, v + q * H);
          matvec(wh->val, q * H, H, H, h, NULL, NULL, g2);
          for (int j = 0; j < H; j++) v[q * H + j] += g2[j];
        }
        for (int j = 0; j < H; j++) {
          c[j] = sigm(gf[j]) * c[j] + sigm(gi[j]) * tanhf(gc[j]);
          h[j] = sigm(go[j]) * tanhf(c[j]);
        }
        memcpy(vals[NAS_LSTM_P_H] + cnt[NAS_LSTM_P_H], h, sizeof *h * (size_t)H);
        memcpy(vals[NAS_LSTM_P_C] + cnt[NAS_LSTM_P_C], c, sizeof *c * (size_t)H);
        cnt[NAS_LSTM_P_H] += (size_t)H, cnt[NAS_LSTM_P_C] += (size_t)H;
        continue;
      }
      /* GRU, in the unrolled int8 graph's order (r, z, n blocks of PyTorch's layout) */
      float *p[NAS_GRU_NPOINTS];
      for (int k = 0; k < NAS_GRU_NPOINTS - 1; k++) p[k] = v + (size_t)k * H;
      p[NAS_GRU_P_H] = h;
      matvec(wi->val, 0, H, F, xt, bi, bh, p[NAS_GRU_P_GXR]);         /* b_ir + b_hr */
      matvec(wi->val, H, H, F, xt, bi, bh, p[NAS_GRU_P_GXZ]);         /* b_iz + b_hz */
      matvec(wi->val, 2 * H, H, F, xt, bi, NULL, p[NAS_GRU_P_GXN]);   /* b_in */
      const int rec = t > 0;
      if (rec) {
        matvec(wh->val, 0, H, H, h, NULL, NULL, p[NAS_GRU_P_GHR]);
        matvec(wh->val, H, H, H, h, NULL, NULL, p[NAS_GRU_P_GHZ]);
        matvec(wh->val, 2 * H, H, H, h, bh, NULL, p[NAS_GRU_P_GHN]);
      } else {
        for (int j = 0; j < H; j++) p[NAS_GRU_P_GHN][j] = bh ? bh[2 * H + j] : 0.0f;
      }
      for (int j = 0; j < H; j++) {
        const float ar = p[NAS_GRU_P_GXR][j] + (rec ? p[NAS_GRU_P_GHR][j] : 0.0f);
        const float az = p[NAS_GRU_P_GXZ][j] + (rec ? p[NAS_GRU_P_GHZ][j] : 0.0f);
        const float r = sigm(ar), z = sigm(az);
        const float m = r * p[NAS_GRU_P_GHN][j], an = p[NAS_GRU_P_GXN][j] + m, nn = tanhf(an);
        const float d = rec ? h[j] - nn : nn; /* t = 0: e = z * n, h = n - e */
        const float ez = z * d;
        p[NAS_GRU_P_AR][j] = ar, p[NAS_GRU_P_AZ][j] = az, p[NAS_GRU_P_M][j] = m;
        p[NAS_GRU_P_AN][j] = an, p[NAS_GRU_P_D][j] = d, p[NAS_GRU_P_E][j] = ez;
        h[j] = rec ? nn + ez : nn - ez;
      }
      for (int k = 0; k < NAS_GRU_NPOINTS; k++) {
        /* the recurrent-only quantities exist from step 1 on (d also at 0: unused there) */
        const int recur_only = k == NAS_GRU_P_GHR || k == NAS_GRU_P_GHZ || k == NAS_GRU_P_AR ||
                               k == NAS_GRU_P_AZ || k == NAS_GRU_P_D;
        if (recur_only && !rec) continue;
        if (k == NAS_GRU_P_GHN && !rec) continue; /* b_hn alone is a constant of its own */
        memcpy(vals[k] + cnt[k], p[k], sizeof *h * (size_t)H);
        cnt[k] += (size_t)H;
      }
    }
  }
  free(buf);
  return NAS_OK;
}
