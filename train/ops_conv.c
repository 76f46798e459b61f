/* train/ops_conv.c: conv2d (im2row + one sgemm over the whole batch), depthwise conv2d
 * (its own kernel, vectorised over channels) and dense. Forward and backward side by side.
 * Layouts: x [N,H,W,Cin]; conv w [Cout,KH,KW,Cin]; depthwise w [KH,KW,C]; dense w [M,K]. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "train/ops_impl.h"

static int check_bias(const nas_node *nd, const nas_node *b, int c, nas_err *e) {
  if (b->shape.nd != 1 || b->shape.d[0] != c)
    return nas_errf(e, NAS_EINVAL, "%s: bias must be [%d]", nas_op_name(nd->op), c);
  return NAS_OK;
}

/* ---- row-parallel matrix products -------------------------------------------------------
 * OpenBLAS threads tall, narrow products (M ~ 1e5 rows of im2row, N = channels) poorly, so the
 * rows are split across our OpenMP team instead: each thread runs one sgemm on its block
 * (OpenBLAS runs single-threaded inside a parallel region). The partition depends only on M
 * and the team size, so results are reproducible. */

static int team_size(void) { return omp_get_max_threads(); }

/* Below this many multiply-adds per row (N*K), splitting rows across our threads beats
 * OpenBLAS's threading (measured: fmnist-cnn's 9..2048 wins, dscnn-s's 64x64 loses). */
#define ROW_SPLIT_MAX_NK 2048

/* C[M,N] = A[M,K] * op(B) + beta * C; op(B) = B^T ([N,K]) when trans_b, else B ([K,N]). */
static void gemm_rows(int trans_b, int M, int N, int K, const float *A, const float *B,
                      float beta, float *C) {
  if ((long long)N * K > ROW_SPLIT_MAX_NK) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                K, B, trans_b ? K : N, beta, C, N);
    return;
  }
#pragma omp parallel
  {
    int T = omp_get_num_threads(), t = omp_get_thread_num();
    int r0 = (int)((long long)M * t / T), r1 = (int)((long long)M * (t + 1) / T);
    if (r1 > r0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, r1 - r0, N, K,
                  1.0f, A + (size_t)r0 * K, K, B, trans_b ? K : N, beta, C + (size_t)r0 * N, N);
  }
}

/* D[N,K] = G[M,N]^T * A[M,K] + beta * D (a reduction over the M rows): per-thread partial
 * products in part ([tmax][N*K] floats, sized at shape inference), summed in thread order. */
static void gemm_tn_rows(int M, int N, int K, const float *G, const float *A, float beta,
                         float *D, float *part, int tmax) {
  if ((long long)N * K > ROW_SPLIT_MAX_NK) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.0f, G, N, A, K, beta, D, K);
    return;
  }
  int used = 1;
#pragma omp parallel num_threads(tmax)
  {
    int T = omp_get_num_threads(), t = omp_get_thread_num();
#pragma omp single
    used = T;
    int r0 = (int)((long long)M * t / T), r1 = (int)((long long)M * (t + 1) / T);
    float *P = part + (size_t)t * N * K;
    if (r1 > r0)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, r1 - r0, 1.0f,
                  G + (size_t)r0 * N, N, A + (size_t)r0 * K, K, 0.0f, P, K);
    else
      memset(P, 0, (size_t)N * K * sizeof(float));
  }
  size_t nk = (size_t)N * K;
  for (size_t i = 0; i < nk; i++) {
    float acc = beta == 0.0f ? 0.0f : D[i];
    for (int t = 0; t < used; t++) acc += part[(size_t)t * nk + i];
    D[i] = acc;
  }
}

/* ---- conv2d ------------------------------------------------------------------------------ */

static int conv_is_direct(const nas_node *nd) {
  const nas_op_params *p = &nd->p;
  return p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1;
}

/* Bytes of the im2row columns at the front of the scratch (0 for a direct 1x1 conv); the
 * per-thread partial weight gradients follow them. */
static size_t conv_cols_bytes(const nas_node *nd, size_t K) {
  if (conv_is_direct(nd)) return 0;
  return (size_t)nd->shape.d[0] * nd->shape.d[1] * nd->shape.d[2] * K * sizeof(float);
}

int conv2d_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (nd->p.sh < 1) nd->p.sh = 1;
  if (nd->p.sw < 1) nd->p.sw = 1;
  const nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  if (op_need_nhwc(nd, x, e)) return e->code;
  int cin = x->shape.d[3];
  if (w->shape.nd != 4 || w->shape.d[3] != cin)
    return nas_errf(e, NAS_EINVAL, "conv2d: %d input channels, weights expect %d", cin,
                    w->shape.nd == 4 ? w->shape.d[3] : -1);
  nd->p.kh = w->shape.d[1];
  nd->p.kw = w->shape.d[2];
  if (op_window_infer(nd, x, w->shape.d[0], e)) return e->code;
  if (nd->n_in == 3 && check_bias(nd, op_in(g, nd, 2), w->shape.d[0], e)) return e->code;
  size_t K = (size_t)nd->p.kh * nd->p.kw * cin;
  nd->scratch_bytes = conv_cols_bytes(nd, K) + (size_t)team_size() * w->shape.d[0] * K * sizeof(float);
  return NAS_OK;
}

/* cols [N*OH*OW, KH*KW*Cin] from x [N,H,W,Cin]; padded cells are 0. A kernel row that lies
 * wholly inside the image is one contiguous run of KW*Cin floats in x (NHWC), copied at once. */
static void im2row(const nas_node *nd, const nas_node *x, int n, const float *xv, float *cols) {
  const nas_op_params *p = &nd->p;
  int H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
  size_t K = (size_t)p->kh * p->kw * C, run = (size_t)p->kw * C;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n * OH; r++) {
    int b = r / OH, oh = r % OH;
    for (int ow = 0; ow < OW; ow++) {
      float *row = cols + ((size_t)r * OW + ow) * K;
      int iw0 = ow * p->sw - p->pad_left;
      int inside_w = iw0 >= 0 && iw0 + p->kw <= W;
      for (int kh = 0; kh < p->kh; kh++) {
        int ih = oh * p->sh - p->pad_top + kh;
        float *dst = row + (size_t)kh * run;
        if (ih < 0 || ih >= H) {
          memset(dst, 0, run * sizeof(float));
          continue;
        }
        const float *line = xv + ((size_t)b * H + ih) * W * C; /* input row ih */
        if (inside_w) {
          memcpy(dst, line + (size_t)iw0 * C, run * sizeof(float));
          continue;
        }
        for (int kw = 0; kw < p->kw; kw++) {
          int iw = iw0 + kw;
          if (iw < 0 || iw >= W)
            memset(dst + (size_t)kw * C, 0, (size_t)C * sizeof(float));
          else
            memcpy(dst + (size_t)kw * C, line + (size_t)iw * C, (size_t)C * sizeof(float));
        }
      }
    }
  }
}

/* dx += scatter of dcols (inverse of im2row). Parallel over samples: no write conflicts. */
static void row2im_add(const nas_node *nd, const nas_node *x, int n, const float *dcols,
                       float *dx) {
  const nas_op_params *p = &nd->p;
  int H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
  size_t K = (size_t)p->kh * p->kw * C;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++) {
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float *row = dcols + (((size_t)b * OH + oh) * OW + ow) * K;
        for (int kh = 0; kh < p->kh; kh++) {
          int ih = oh * p->sh - p->pad_top + kh;
          if (ih < 0 || ih >= H) continue;
          for (int kw = 0; kw < p->kw; kw++) {
            int iw = ow * p->sw - p->pad_left + kw;
            if (iw < 0 || iw >= W) continue;
            const float *src = row + ((size_t)kh * p->kw + kw) * C;
            float *dst = dx + (((size_t)b * H + ih) * W + iw) * C;
            for (int c = 0; c < C; c++) dst[c] += src[c];
          }
        }
      }
  }
}

static void add_bias_rows(float *y, const float *b, size_t rows, int c) {
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < rows; r++)
    for (int j = 0; j < c; j++) y[r * c + j] += b[j];
}

static void bias_grad_rows(float *db, const float *dy, size_t rows, int c) {
  for (size_t r = 0; r < rows; r++)
    for (int j = 0; j < c; j++) db[j] += dy[r * c + j];
}

void conv2d_forward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  int n = op_batch(g, nd), cout = nd->shape.d[3];
  int M = n * nd->shape.d[1] * nd->shape.d[2];
  int K = nd->p.kh * nd->p.kw * x->shape.d[3];
  const float *a = x->val;
  if (!conv_is_direct(nd)) {
    im2row(nd, x, n, x->val, g->scratch);
    a = g->scratch;
  }
  gemm_rows(1, M, cout, K, a, w->val, 0.0f, nd->val);
  if (nd->n_in == 3) add_bias_rows(nd->val, op_in(g, nd, 2)->val, (size_t)M, cout);
}

void conv2d_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  int n = op_batch(g, nd), cout = nd->shape.d[3];
  int M = n * nd->shape.d[1] * nd->shape.d[2];
  int K = nd->p.kh * nd->p.kw * x->shape.d[3];
  int direct = conv_is_direct(nd);
  if (nd->n_in == 3 && op_in(g, nd, 2)->grad)
    bias_grad_rows(op_grad_acc(g, op_in(g, nd, 2)), nd->grad, (size_t)M, cout);
  if (w->grad) {
    const float *a = x->val;
    if (!direct) {
      im2row(nd, x, n, x->val, g->scratch);
      a = g->scratch;
    }
    float beta = op_grad_fresh(g, w) ? 0.0f : 1.0f;
    size_t cols = conv_cols_bytes(nd, (size_t)K);
    int tmax = (int)((nd->scratch_bytes - cols) / ((size_t)cout * K * sizeof(float)));
    gemm_tn_rows(M, cout, K, nd->grad, a, beta, w->grad, (float *)((char *)g->scratch + cols), tmax);
  }
  if (x->grad) {
    if (direct) {
      float beta = op_grad_fresh(g, x) ? 0.0f : 1.0f;
      gemm_rows(0, M, K, cout, nd->grad, w->val, beta, x->grad);
    } else {
      op_grad_acc(g, x);
      gemm_rows(0, M, K, cout, nd->grad, w->val, 0.0f, g->scratch);
      row2im_add(nd, x, n, g->scratch, x->grad);
    }
  }
}

/* ---- depthwise conv2d -------------------------------------------------------------------- */

/* acc[c] += a[c] * b[c]; restrict lets the compiler vectorise without alias checks. */
static inline void mul_acc(float *restrict acc, const float *restrict a, const float *restrict b,
                           int C) {
  for (int c = 0; c < C; c++) acc[c] += a[c] * b[c];
}

static int dw_threads(const nas_node *nd) {
  size_t per = (size_t)(nd->p.kh * nd->p.kw + 1) * nd->shape.d[3] * sizeof(float);
  return (int)(nd->scratch_bytes / per);
}

int dwconv2d_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (nd->p.sh < 1) nd->p.sh = 1;
  if (nd->p.sw < 1) nd->p.sw = 1;
  const nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  if (op_need_nhwc(nd, x, e)) return e->code;
  int c = x->shape.d[3];
  if (w->shape.nd != 3 || w->shape.d[2] != c)
    return nas_errf(e, NAS_EINVAL, "dwconv2d: %d input channels, weights expect %d", c,
                    w->shape.nd == 3 ? w->shape.d[2] : -1);
  nd->p.kh = w->shape.d[0];
  nd->p.kw = w->shape.d[1];
  if (op_window_infer(nd, x, c, e)) return e->code;
  if (nd->n_in == 3 && check_bias(nd, op_in(g, nd, 2), c, e)) return e->code;
  /* per-thread partial sums of dw and db for the backward pass */
  int t = omp_get_max_threads();
  nd->scratch_bytes = (size_t)t * (size_t)(nd->p.kh * nd->p.kw + 1) * c * sizeof(float);
  return NAS_OK;
}

void dwconv2d_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  const nas_op_params *p = &nd->p;
  int n = op_batch(g, nd), H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
  const float *bias = nd->n_in == 3 ? op_in(g, nd, 2)->val : NULL;
  const float *xv = x->val, *wv = w->val;
  float *yv = nd->val;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n * OH; r++) {
    int b = r / OH, oh = r % OH;
    for (int ow = 0; ow < OW; ow++) {
      float *out = yv + ((size_t)r * OW + ow) * C;
      if (bias)
        memcpy(out, bias, (size_t)C * sizeof(float));
      else
        memset(out, 0, (size_t)C * sizeof(float));
      for (int kh = 0; kh < p->kh; kh++) {
        int ih = oh * p->sh - p->pad_top + kh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < p->kw; kw++) {
          int iw = ow * p->sw - p->pad_left + kw;
          if (iw < 0 || iw >= W) continue;
          mul_acc(out, xv + (((size_t)b * H + ih) * W + iw) * C, wv + ((size_t)kh * p->kw + kw) * C,
                  C);
        }
      }
    }
  }
}

void dwconv2d_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  nas_node *bn = nd->n_in == 3 ? op_in(g, nd, 2) : NULL;
  const nas_op_params *p = &nd->p;
  int n = op_batch(g, nd), H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
  size_t KC = (size_t)p->kh * p->kw * C, per = KC + (size_t)C;
  int T = dw_threads(nd);
  float *part = g->scratch;
  const float *dy = nd->grad, *xv = x->val, *wv = w->val;
  float *dx = x->grad ? op_grad_acc(g, x) : NULL;
  int want_w = w->grad != NULL, want_b = bn && bn->grad;
  if (want_w) op_grad_acc(g, w);
  if (want_b) op_grad_acc(g, bn);
  memset(part, 0, (size_t)T * per * sizeof(float)); /* the team may be smaller than T */
#pragma omp parallel num_threads(T)
  {
    float *dw = part + (size_t)omp_get_thread_num() * per, *db = dw + KC;
#pragma omp for schedule(static)
    for (int b = 0; b < n; b++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const float *g_out = dy + (((size_t)b * OH + oh) * OW + ow) * C;
          if (want_b)
            for (int c = 0; c < C; c++) db[c] += g_out[c];
          for (int kh = 0; kh < p->kh; kh++) {
            int ih = oh * p->sh - p->pad_top + kh;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < p->kw; kw++) {
              int iw = ow * p->sw - p->pad_left + kw;
              if (iw < 0 || iw >= W) continue;
              size_t xo = (((size_t)b * H + ih) * W + iw) * C, wo = ((size_t)kh * p->kw + kw) * C;
              if (want_w) mul_acc(dw + wo, xv + xo, g_out, C);
              if (dx) mul_acc(dx + xo, wv + wo, g_out, C);
            }
          }
        }
  }
  for (int t = 0; t < T; t++) {
    const float *dw = part + (size_t)t * per;
    if (want_w)
      for (size_t i = 0; i < KC; i++) w->grad[i] += dw[i];
    if (want_b)
      for (int c = 0; c < C; c++) bn->grad[c] += dw[KC + c];
  }
}

/* ---- dense ------------------------------------------------------------------------------- */

int dense_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  int k = (int)nas_node_sample_numel(x);
  if (w->shape.nd != 2 || w->shape.d[1] != k)
    return nas_errf(e, NAS_EINVAL, "dense: %d input features, weights expect %d", k,
                    w->shape.nd == 2 ? w->shape.d[1] : -1);
  nd->shape.nd = 2;
  op_like_batch(nd, x);
  nd->shape.d[1] = w->shape.d[0];
  if (nd->n_in == 3 && check_bias(nd, op_in(g, nd, 2), w->shape.d[0], e)) return e->code;
  return NAS_OK;
}

void dense_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  int n = op_batch(g, nd), m = nd->shape.d[1], k = w->shape.d[1];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, x->val, k, w->val, k, 0.0f,
              nd->val, m);
  if (nd->n_in == 3) add_bias_rows(nd->val, op_in(g, nd, 2)->val, (size_t)n, m);
}

void dense_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0), *w = op_in(g, nd, 1);
  int n = op_batch(g, nd), m = nd->shape.d[1], k = w->shape.d[1];
  if (nd->n_in == 3 && op_in(g, nd, 2)->grad)
    bias_grad_rows(op_grad_acc(g, op_in(g, nd, 2)), nd->grad, (size_t)n, m);
  if (w->grad)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, k, n, 1.0f, nd->grad, m, x->val, k,
                op_grad_fresh(g, w) ? 0.0f : 1.0f, w->grad, k);
  if (x->grad)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, m, 1.0f, nd->grad, m, w->val, k,
                op_grad_fresh(g, x) ? 0.0f : 1.0f, x->grad, k);
}
