/* train/ops_wino.c: the four ops of a Winograd convolution (3x3 kernel, stride 1; see
 * train/wino.h), forward and backward side by side:
 *   WINO_WT   w [Co,3,3,Ci], G [alpha,3]        -> U [P,Co,Ci]     U_oc = G w_oc G^T
 *   WINO_IN   x [N,H,W,Ci], Bt [alpha,alpha]    -> V [N,P,T,Ci]    V = Bt d Bt^T per tile d
 *   WINO_MUL  V [N,P,T,Ci], U [P,Co,Ci]         -> M [N,P,T,Co]    sum over Ci, per position
 *   WINO_OUT  M [N,P,T,Co], At [m,alpha], b [Co] -> y [N,OH,OW,Co] At M At^T, cropped, + b
 * P = alpha^2 tile positions (row-major (i,j)), m = alpha - 2 output rows and columns per tile,
 * T = ceil(OH/m) * ceil(OW/m) tiles per image in row-major order. Tile (ty,tx) reads input rows
 * ty*m - pad_top .. + alpha-1 (zero outside the image) and writes output rows ty*m .. + m-1
 * (those at or beyond OH are cropped). The transform matrices are ordinary inputs: STATE for a
 * static layer, PARAM for a flex layer, whose gradients are computed only when they have one.
 * Channel loops are innermost (NHWC); threads split samples (or output channels, or tile
 * positions) statically, and partial transform gradients are summed in thread order. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "train/ops_impl.h"

static int threads(void) { return omp_get_max_threads(); }

/* Per-thread float buffer t of an op whose scratch holds threads() equal slices. */
static float *slice(const nas_graph *g, const nas_node *nd, int t) {
  size_t per = nd->scratch_bytes / (size_t)threads() / sizeof(float);
  return (float *)g->scratch + (size_t)t * per;
}

/* Adds the thread partials of a small gradient (n values at offset off of each slice). */
static void sum_partials(const nas_graph *g, const nas_node *nd, size_t off, int n, float *grad) {
  for (int t = 0; t < threads(); t++) {
    const float *p = slice(g, nd, t) + off;
    for (int k = 0; k < n; k++) grad[k] += p[k];
  }
}

static int need_matrix(const nas_node *nd, const nas_node *a, int rows, int cols, const char *what,
                       nas_err *e) {
  if (a->batched || a->shape.nd != 2 || a->shape.d[0] != rows || a->shape.d[1] != cols)
    return nas_errf(e, NAS_EINVAL, "%s '%s': %s must be an unbatched [%d,%d] matrix",
                    nas_op_name(nd->op), nd->name, what, rows, cols);
  return NAS_OK;
}

/* y[r][k][c] = sum_q A[r][q] x[q][k][c] for r < R, q < Q, k < K, c < C (A row-major [R,Q]);
 * the shared step of every transform (rows, then columns with the roles swapped). */
static void tmul(const float *restrict A, int R, int Q, const float *restrict x, int K, int C,
                 float *restrict y) {
  const size_t KC = (size_t)K * C;
  memset(y, 0, sizeof *y * (size_t)R * KC);
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) {
      const float a = A[r * Q + q];
      if (a == 0.0f) continue;
      const float *restrict xs = x + (size_t)q * KC;
      float *restrict ys = y + (size_t)r * KC;
      for (size_t k = 0; k < KC; k++) ys[k] += a * xs[k];
    }
}

/* y[r][k][c] = sum_q A[q][r] x[q][k][c] (A^T applied; A row-major [Q,R]). */
static void tmul_t(const float *restrict A, int Q, int R, const float *restrict x, int K, int C,
                   float *restrict y) {
  const size_t KC = (size_t)K * C;
  memset(y, 0, sizeof *y * (size_t)R * KC);
  for (int q = 0; q < Q; q++)
    for (int r = 0; r < R; r++) {
      const float a = A[q * R + r];
      if (a == 0.0f) continue;
      const float *restrict xs = x + (size_t)q * KC;
      float *restrict ys = y + (size_t)r * KC;
      for (size_t k = 0; k < KC; k++) ys[k] += a * xs[k];
    }
}

/* Y = A X B^T for per-channel matrices: X [Q1][Q2][C], A [R1,Q1], B [R2,Q2], Y [R1][R2][C];
 * t [R1][Q2][C] is work space (holds A X afterwards). */
static void sandwich(const float *A, int R1, int Q1, const float *B, int R2, int Q2,
                     const float *X, int C, float *t, float *Y) {
  tmul(A, R1, Q1, X, Q2, C, t); /* t[r1][q2][c] */
  for (int r1 = 0; r1 < R1; r1++) {
    const float *ts = t + (size_t)r1 * Q2 * C;
    float *ys = Y + (size_t)r1 * R2 * C;
    tmul(B, R2, Q2, ts, 1, C, ys); /* ys[r2][c] = sum_q2 B[r2][q2] t[r1][q2][c] */
  }
}

/* Gradient of Y = A X B^T with respect to X: dX = A^T dY B ([Q1][Q2][C]); t [Q1][R2][C]. */
static void sandwich_back(const float *A, int R1, int Q1, const float *B, int R2, int Q2,
                          const float *dY, int C, float *t, float *dX) {
  tmul_t(A, R1, Q1, dY, R2, C, t); /* t[q1][r2][c] = sum_r1 A[r1][q1] dY[r1][r2][c] */
  for (int q1 = 0; q1 < Q1; q1++)
    tmul_t(B, R2, Q2, t + (size_t)q1 * R2 * C, 1, C, dX + (size_t)q1 * Q2 * C);
}

/* Gradient of Y = A X A^T (A [R,Q], X [Q][Q][C]) with respect to A, added to dA [R,Q]:
 * dA += sum_c (dY A X^T + dY^T A X). ax [R][Q][C] = A X, w [R][Q][C] work space. */
static void sandwich_dA(const float *A, int R, int Q, const float *X, const float *dY, int C,
                        float *ax, float *w, float *dA) {
  tmul(A, R, Q, X, Q, C, ax);             /* ax[r][b][c] = (A X)[r][b] */
  for (int r = 0; r < R; r++) {           /* w[r][b][c] = (dY A)[r][b] = sum_j dY[r][j] A[j][b] */
    float *ws = w + (size_t)r * Q * C;
    memset(ws, 0, sizeof *ws * (size_t)Q * C);
    for (int j = 0; j < R; j++)
      for (int b = 0; b < Q; b++) {
        const float a = A[j * Q + b];
        if (a == 0.0f) continue;
        const float *dy = dY + ((size_t)r * R + j) * C;
        float *wb = ws + (size_t)b * C;
        for (int c = 0; c < C; c++) wb[c] += a * dy[c];
      }
  }
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) {
      double s = 0;
      for (int b = 0; b < Q; b++) { /* (dY A X^T)[r][q] = sum_b w[r][b] X[q][b] */
        const float *wb = w + ((size_t)r * Q + b) * C, *xb = X + ((size_t)q * Q + b) * C;
        for (int c = 0; c < C; c++) s += (double)wb[c] * xb[c];
      }
      for (int j = 0; j < R; j++) { /* (dY^T A X)[r][q] = sum_j dY[j][r] ax[j][q] */
        const float *dy = dY + ((size_t)j * R + r) * C, *aj = ax + ((size_t)j * Q + q) * C;
        for (int c = 0; c < C; c++) s += (double)dy[c] * aj[c];
      }
      dA[r * Q + q] += (float)s;
    }
}

/* ---- WINO_WT: U = G w G^T per output and input channel ------------------------------------ */

int wino_wt_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *w = op_in(g, nd, 0), *G = op_in(g, nd, 1);
  if (w->batched || w->shape.nd != 4 || w->shape.d[1] != 3 || w->shape.d[2] != 3)
    return nas_errf(e, NAS_EINVAL, "wino_wt '%s': weights must be an unbatched [Co,3,3,Ci] tensor",
                    nd->name);
  const int a = G->shape.nd == 2 ? G->shape.d[0] : 0;
  if (a < 3 || a > 16)
    return nas_errf(e, NAS_EINVAL, "wino_wt '%s': G must be [alpha,3], alpha 3..16", nd->name);
  if (need_matrix(nd, G, a, 3, "G", e)) return e->code;
  const int co = w->shape.d[0], ci = w->shape.d[3];
  nd->shape.nd = 3, nd->batched = 0;
  nd->shape.d[0] = a * a, nd->shape.d[1] = co, nd->shape.d[2] = ci;
  /* per thread: t [a][3][ci], u [a][a][ci], dG partial [a][3] */
  nd->scratch_bytes =
      (size_t)threads() * ((size_t)a * 3 * ci + (size_t)a * a * ci + (size_t)a * 3) * sizeof(float);
  return NAS_OK;
}

void wino_wt_forward(nas_graph *g, nas_node *nd) {
  const nas_node *w = op_in(g, nd, 0), *G = op_in(g, nd, 1);
  const int a = G->shape.d[0], co = w->shape.d[0], ci = w->shape.d[3];
#pragma omp parallel
  {
    float *t = slice(g, nd, omp_get_thread_num()), *u = t + (size_t)a * 3 * ci;
#pragma omp for schedule(static)
    for (int o = 0; o < co; o++) {
      sandwich(G->val, a, 3, G->val, a, 3, w->val + (size_t)o * 9 * ci, ci, t, u);
      for (int p = 0; p < a * a; p++) /* u [P][ci] -> U[p][o][ci] */
        memcpy(nd->val + ((size_t)p * co + o) * ci, u + (size_t)p * ci, sizeof *u * (size_t)ci);
    }
  }
}

void wino_wt_backward(nas_graph *g, nas_node *nd) {
  nas_node *w = op_in(g, nd, 0), *G = op_in(g, nd, 1);
  const int a = G->shape.d[0], co = w->shape.d[0], ci = w->shape.d[3];
  const size_t off_dg = (size_t)a * 3 * ci + (size_t)a * a * ci;
  int fresh_w = w->grad ? op_grad_fresh(g, w) : 0;
  if (G->grad) op_grad_acc(g, G);
  /* per output channel o, reading dU[.][o][.] in place: t = dU_o G, dw_o = G^T t, and the dG
     partials dU_o G w_o^T + dU_o^T G w_o */
#pragma omp parallel
  {
    float *t = slice(g, nd, omp_get_thread_num()), *x = t + (size_t)a * 3 * ci;
    float *dg = t + off_dg;
    memset(dg, 0, sizeof *dg * (size_t)a * 3);
#pragma omp for schedule(static)
    for (int o = 0; o < co; o++) {
      const float *wo = w->val + (size_t)o * 9 * ci;
      /* t[i][b][c] = sum_j dU[(i,j)][o][c] G[j][b] */
      for (int i = 0; i < a; i++)
        for (int b = 0; b < 3; b++) {
          float *ts = t + ((size_t)i * 3 + b) * ci;
          memset(ts, 0, sizeof *ts * (size_t)ci);
          for (int j = 0; j < a; j++) {
            const float gv = G->val[j * 3 + b];
            if (gv == 0.0f) continue;
            const float *d = nd->grad + ((size_t)(i * a + j) * co + o) * ci;
            for (int c = 0; c < ci; c++) ts[c] += gv * d[c];
          }
        }
      if (w->grad) { /* dw[a'][b][c] = sum_i G[i][a'] t[i][b][c] */
        tmul_t(G->val, a, 3, t, 3, ci, x);
        float *dw = w->grad + (size_t)o * 9 * ci;
        if (fresh_w) memcpy(dw, x, sizeof *dw * (size_t)9 * ci);
        else for (int k = 0; k < 9 * ci; k++) dw[k] += x[k];
      }
      if (G->grad) {
        /* dG[i][a'] += sum_{b,c} t[i][b][c] w[a'][b][c] (dU G W^T) */
        for (int i = 0; i < a; i++)
          for (int q = 0; q < 3; q++) {
            double s = 0;
            for (int b = 0; b < 3; b++) {
              const float *ts = t + ((size_t)i * 3 + b) * ci, *ws = wo + ((size_t)q * 3 + b) * ci;
              for (int c = 0; c < ci; c++) s += (double)ts[c] * ws[c];
            }
            dg[i * 3 + q] += (float)s;
          }
        /* + (dU^T G W)[i][b] = sum_j dU[(j,i)] (G W)[j][b]; x = G W [a][3][ci] */
        tmul(G->val, a, 3, wo, 3, ci, x);
        for (int i = 0; i < a; i++)
          for (int b = 0; b < 3; b++) {
            double s = 0;
            for (int j = 0; j < a; j++) {
              const float *d = nd->grad + ((size_t)(j * a + i) * co + o) * ci;
              const float *xs = x + ((size_t)j * 3 + b) * ci;
              for (int c = 0; c < ci; c++) s += (double)d[c] * xs[c];
            }
            dg[i * 3 + b] += (float)s;
          }
      }
    }
  }
  if (G->grad) sum_partials(g, nd, off_dg, a * 3, G->grad);
}

/* ---- WINO_IN: V = Bt d Bt^T per input tile ------------------------------------------------ */

/* Tile geometry of a WINO_IN node (x [N,H,W,C]). */
typedef struct tiles {
  int a, m;        /* input and output tile sizes */
  int H, W, C;     /* input shape */
  int OH, OW;      /* output shape */
  int th, tw, T;   /* tiles per column, per row, per image */
  int pt, pl;      /* top/left padding */
} tiles;

static tiles tiles_of(const nas_node *nd, const nas_node *x, int a) {
  tiles t = {.a = a, .m = a - 2, .H = x->shape.d[1], .W = x->shape.d[2], .C = x->shape.d[3]};
  t.OH = nd->p.d[0], t.OW = nd->p.d[1], t.pt = nd->p.pad_top, t.pl = nd->p.pad_left;
  t.th = (t.OH + t.m - 1) / t.m, t.tw = (t.OW + t.m - 1) / t.m, t.T = t.th * t.tw;
  return t;
}

int wino_in_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0), *B = op_in(g, nd, 1);
  if (op_need_nhwc(nd, x, e)) return e->code;
  const int a = B->shape.nd == 2 ? B->shape.d[0] : 0;
  if (a < 3 || a > 16) return nas_errf(e, NAS_EINVAL, "wino_in '%s': Bt must be [alpha,alpha], alpha 3..16", nd->name);
  if (need_matrix(nd, B, a, a, "Bt", e)) return e->code;
  int oh = nas_conv_out_size(x->shape.d[1], 3, 1, nd->p.padding, &nd->p.pad_top);
  int ow = nas_conv_out_size(x->shape.d[2], 3, 1, nd->p.padding, &nd->p.pad_left);
  if (oh < 1 || ow < 1)
    return nas_errf(e, NAS_EINVAL, "wino_in '%s': a 3x3 window does not fit input %dx%d", nd->name,
                    x->shape.d[1], x->shape.d[2]);
  nd->p.nd = 2, nd->p.d[0] = oh, nd->p.d[1] = ow;
  tiles t = tiles_of(nd, x, a);
  nd->shape.nd = 4;
  op_like_batch(nd, x);
  nd->shape.d[1] = a * a, nd->shape.d[2] = t.T, nd->shape.d[3] = t.C;
  nd->scratch_bytes = (size_t)threads() * ((size_t)4 * a * a * t.C + (size_t)a * a) * sizeof(float);
  return NAS_OK;
}

/* d [a][a][C] <- input tile t of sample n (zero outside the image). */
static void load_tile(const tiles *s, const float *x, int n, int tile, float *d) {
  const int r0 = (tile / s->tw) * s->m - s->pt, c0 = (tile % s->tw) * s->m - s->pl;
  for (int i = 0; i < s->a; i++)
    for (int j = 0; j < s->a; j++) {
      float *dst = d + ((size_t)i * s->a + j) * s->C;
      const int r = r0 + i, c = c0 + j;
      if (r < 0 || r >= s->H || c < 0 || c >= s->W) memset(dst, 0, sizeof *dst * (size_t)s->C);
      else memcpy(dst, x + (((size_t)n * s->H + r) * s->W + c) * s->C, sizeof *dst * (size_t)s->C);
    }
}

void wino_in_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0), *B = op_in(g, nd, 1);
  const tiles s = tiles_of(nd, x, B->shape.d[0]);
  const int n = op_batch(g, nd), a = s.a, P = a * a;
  const size_t ac = (size_t)a * a * s.C;
#pragma omp parallel
  {
    float *d = slice(g, nd, omp_get_thread_num()), *t = d + ac, *v = t + ac;
#pragma omp for schedule(static)
    for (int k = 0; k < n * s.T; k++) {
      const int b = k / s.T, tile = k % s.T;
      load_tile(&s, x->val, b, tile, d);
      sandwich(B->val, a, a, B->val, a, a, d, s.C, t, v);
      for (int p = 0; p < P; p++)
        memcpy(nd->val + (((size_t)b * P + p) * s.T + tile) * s.C, v + (size_t)p * s.C,
               sizeof *v * (size_t)s.C);
    }
  }
}

void wino_in_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *B = op_in(g, nd, 1);
  const tiles s = tiles_of(nd, x, B->shape.d[0]);
  const int n = op_batch(g, nd), a = s.a, P = a * a;
  const size_t ac = (size_t)a * a * s.C;
  float *dx = x->grad ? op_grad_acc(g, x) : NULL;
  if (B->grad) op_grad_acc(g, B);
#pragma omp parallel
  {
    float *dv = slice(g, nd, omp_get_thread_num()), *t = dv + ac, *dd = t + ac, *d = dd + ac;
    float *db = d + ac;
    memset(db, 0, sizeof *db * (size_t)a * a);
#pragma omp for schedule(static)
    for (int b = 0; b < n; b++) /* whole samples per thread: their tiles overlap in dx */
      for (int tile = 0; tile < s.T; tile++) {
        for (int p = 0; p < P; p++)
          memcpy(dv + (size_t)p * s.C, nd->grad + (((size_t)b * P + p) * s.T + tile) * s.C,
                 sizeof *dv * (size_t)s.C);
        if (dx) {
          sandwich_back(B->val, a, a, B->val, a, a, dv, s.C, t, dd);
          const int r0 = (tile / s.tw) * s.m - s.pt, c0 = (tile % s.tw) * s.m - s.pl;
          for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) {
              const int r = r0 + i, c = c0 + j;
              if (r < 0 || r >= s.H || c < 0 || c >= s.W) continue;
              float *dst = dx + (((size_t)b * s.H + r) * s.W + c) * s.C;
              const float *src = dd + ((size_t)i * a + j) * s.C;
              for (int ch = 0; ch < s.C; ch++) dst[ch] += src[ch];
            }
        }
        if (B->grad) {
          load_tile(&s, x->val, b, tile, d);
          sandwich_dA(B->val, a, a, d, dv, s.C, t, dd, db);
        }
      }
  }
  if (B->grad) sum_partials(g, nd, 4 * ac, a * a, B->grad);
}

/* ---- WINO_MUL: M[n][p] = V[n][p] U[p]^T ---------------------------------------------------- */

int wino_mul_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *v = op_in(g, nd, 0), *u = op_in(g, nd, 1);
  if (v->shape.nd != 4 || u->batched || u->shape.nd != 3 || u->shape.d[0] != v->shape.d[1] ||
      u->shape.d[2] != v->shape.d[3])
    return nas_errf(e, NAS_EINVAL, "wino_mul '%s': expects V [N,P,T,Ci] and an unbatched U [P,Co,Ci]",
                    nd->name);
  nd->shape = v->shape;
  op_like_batch(nd, v);
  nd->shape.d[3] = u->shape.d[1];
  return NAS_OK;
}

void wino_mul_forward(nas_graph *g, nas_node *nd) {
  const nas_node *v = op_in(g, nd, 0), *u = op_in(g, nd, 1);
  const int n = op_batch(g, nd), P = v->shape.d[1], T = v->shape.d[2], ci = v->shape.d[3];
  const int co = u->shape.d[1];
#pragma omp parallel for schedule(static)
  for (int k = 0; k < n * P; k++) {
    const int p = k % P;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, co, ci, 1.0f,
                v->val + (size_t)k * T * ci, ci, u->val + (size_t)p * co * ci, ci, 0.0f,
                nd->val + (size_t)k * T * co, co);
  }
}

void wino_mul_backward(nas_graph *g, nas_node *nd) {
  nas_node *v = op_in(g, nd, 0), *u = op_in(g, nd, 1);
  const int n = op_batch(g, nd), P = v->shape.d[1], T = v->shape.d[2], ci = v->shape.d[3];
  const int co = u->shape.d[1];
  if (v->grad) {
    const float beta = op_grad_fresh(g, v) ? 0.0f : 1.0f;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < n * P; k++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, ci, co, 1.0f,
                  nd->grad + (size_t)k * T * co, co, u->val + (size_t)(k % P) * co * ci, ci, beta,
                  v->grad + (size_t)k * T * ci, ci);
  }
  if (u->grad) {
    const int fresh = op_grad_fresh(g, u);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++)
      for (int b = 0; b < n; b++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, co, ci, T, 1.0f,
                    nd->grad + ((size_t)b * P + p) * T * co, co,
                    v->val + ((size_t)b * P + p) * T * ci, ci, (b == 0 && fresh) ? 0.0f : 1.0f,
                    u->grad + (size_t)p * co * ci, ci);
  }
}

/* ---- WINO_OUT: y = At M At^T per tile, cropped, + bias ------------------------------------- */

int wino_out_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *M = op_in(g, nd, 0), *A = op_in(g, nd, 1);
  const int m = A->shape.nd == 2 ? A->shape.d[0] : 0, a = m + 2;
  if (M->shape.nd != 4 || m < 1 || need_matrix(nd, A, m, a, "At", e) || M->shape.d[1] != a * a)
    return e->code ? e->code
                   : nas_errf(e, NAS_EINVAL, "wino_out '%s': expects M [N,alpha^2,T,Co] and At [m,m+2]",
                              nd->name);
  const int OH = nd->p.d[0], OW = nd->p.d[1], co = M->shape.d[3];
  if (OH < 1 || OW < 1 || ((OH + m - 1) / m) * ((OW + m - 1) / m) != M->shape.d[2])
    return nas_errf(e, NAS_EINVAL, "wino_out '%s': output %dx%d does not have %d tiles of %dx%d",
                    nd->name, OH, OW, M->shape.d[2], m, m);
  if (nd->n_in == 3) {
    const nas_node *b = op_in(g, nd, 2);
    if (b->shape.nd != 1 || b->shape.d[0] != co)
      return nas_errf(e, NAS_EINVAL, "wino_out '%s': bias must be [%d]", nd->name, co);
  }
  nd->shape.nd = 4;
  op_like_batch(nd, M);
  nd->shape.d[1] = OH, nd->shape.d[2] = OW, nd->shape.d[3] = co;
  nd->scratch_bytes = (size_t)threads() *
                      ((size_t)a * a * co * 2 + (size_t)m * a * co * 2 + (size_t)m * m * co +
                       (size_t)m * a + (size_t)co) * sizeof(float);
  return NAS_OK;
}

/* Slices of a WINO_OUT thread buffer. */
typedef struct obuf {
  float *mt, *t, *w, *y, *dA, *db;
} obuf;

static obuf obuf_of(const nas_graph *g, const nas_node *nd, int th, int a, int m, int co) {
  obuf o;
  o.mt = slice(g, nd, th);
  o.t = o.mt + (size_t)a * a * co * 2; /* mt holds M's tile, then (backward) dM's */
  o.w = o.t + (size_t)m * a * co;
  o.y = o.w + (size_t)m * a * co;
  o.dA = o.y + (size_t)m * m * co;
  o.db = o.dA + (size_t)m * a;
  return o;
}

void wino_out_forward(nas_graph *g, nas_node *nd) {
  const nas_node *M = op_in(g, nd, 0), *A = op_in(g, nd, 1);
  const float *bias = nd->n_in == 3 ? op_in(g, nd, 2)->val : NULL;
  const int n = op_batch(g, nd), m = A->shape.d[0], a = m + 2, P = a * a, T = M->shape.d[2];
  const int OH = nd->shape.d[1], OW = nd->shape.d[2], co = nd->shape.d[3], tw = (OW + m - 1) / m;
#pragma omp parallel
  {
    obuf o = obuf_of(g, nd, omp_get_thread_num(), a, m, co);
#pragma omp for schedule(static)
    for (int k = 0; k < n * T; k++) {
      const int b = k / T, tile = k % T;
      for (int p = 0; p < P; p++)
        memcpy(o.mt + (size_t)p * co, M->val + (((size_t)b * P + p) * T + tile) * co,
               sizeof *o.mt * (size_t)co);
      sandwich(A->val, m, a, A->val, m, a, o.mt, co, o.t, o.y);
      const int y0 = (tile / tw) * m, x0 = (tile % tw) * m;
      for (int i = 0; i < m && y0 + i < OH; i++)
        for (int j = 0; j < m && x0 + j < OW; j++) {
          float *dst = nd->val + (((size_t)b * OH + y0 + i) * OW + x0 + j) * co;
          const float *src = o.y + ((size_t)i * m + j) * co;
          for (int c = 0; c < co; c++) dst[c] = src[c] + (bias ? bias[c] : 0.0f);
        }
    }
  }
}

void wino_out_backward(nas_graph *g, nas_node *nd) {
  nas_node *M = op_in(g, nd, 0), *A = op_in(g, nd, 1);
  nas_node *bn = nd->n_in == 3 ? op_in(g, nd, 2) : NULL;
  const int n = op_batch(g, nd), m = A->shape.d[0], a = m + 2, P = a * a, T = M->shape.d[2];
  const int OH = nd->shape.d[1], OW = nd->shape.d[2], co = nd->shape.d[3], tw = (OW + m - 1) / m;
  const int fresh_m = M->grad ? op_grad_fresh(g, M) : 0;
  if (A->grad) op_grad_acc(g, A);
  const int want_b = bn && bn->grad;
  if (want_b) op_grad_acc(g, bn);
#pragma omp parallel
  {
    obuf o = obuf_of(g, nd, omp_get_thread_num(), a, m, co);
    memset(o.dA, 0, sizeof *o.dA * ((size_t)m * a + (size_t)co));
    float *dm = o.mt + (size_t)P * co;
#pragma omp for schedule(static)
    for (int k = 0; k < n * T; k++) {
      const int b = k / T, tile = k % T;
      const int y0 = (tile / tw) * m, x0 = (tile % tw) * m;
      for (int i = 0; i < m; i++) /* dY of the tile, zero where cropped */
        for (int j = 0; j < m; j++) {
          float *dst = o.y + ((size_t)i * m + j) * co;
          if (y0 + i >= OH || x0 + j >= OW) {
            memset(dst, 0, sizeof *dst * (size_t)co);
            continue;
          }
          memcpy(dst, nd->grad + (((size_t)b * OH + y0 + i) * OW + x0 + j) * co,
                 sizeof *dst * (size_t)co);
          if (want_b)
            for (int c = 0; c < co; c++) o.db[c] += dst[c];
        }
      if (M->grad) {
        sandwich_back(A->val, m, a, A->val, m, a, o.y, co, o.t, dm);
        for (int p = 0; p < P; p++) {
          float *dst = M->grad + (((size_t)b * P + p) * T + tile) * co;
          const float *src = dm + (size_t)p * co;
          if (fresh_m) memcpy(dst, src, sizeof *dst * (size_t)co);
          else for (int c = 0; c < co; c++) dst[c] += src[c];
        }
      }
      if (A->grad) {
        for (int p = 0; p < P; p++)
          memcpy(o.mt + (size_t)p * co, M->val + (((size_t)b * P + p) * T + tile) * co,
                 sizeof *o.mt * (size_t)co);
        sandwich_dA(A->val, m, a, o.mt, o.y, co, o.t, o.w, o.dA);
      }
    }
  }
  const size_t off = (size_t)a * a * co * 2 + (size_t)m * a * co * 2 + (size_t)m * m * co;
  if (A->grad) sum_partials(g, nd, off, m * a, A->grad);
  if (want_b) sum_partials(g, nd, off + (size_t)m * a, co, bn->grad);
}
