/* train/ops_pool.c: max pool, average pool (padding excluded from the count, as TFLite), and
 * global average pool. x [N,H,W,C]. */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "train/ops_impl.h"

/* Pools default their stride to the window. */
static int pool_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  if (op_need_nhwc(nd, x, e)) return e->code;
  if (nd->p.sh < 1) nd->p.sh = nd->p.kh;
  if (nd->p.sw < 1) nd->p.sw = nd->p.kw;
  return op_window_infer(nd, x, x->shape.d[3], e);
}

/* Clipped window [h0,h1) x [w0,w1) of output cell (oh, ow). */
static void window(const nas_op_params *p, int H, int W, int oh, int ow, int *h0, int *h1, int *w0,
                   int *w1) {
  *h0 = oh * p->sh - p->pad_top;
  *w0 = ow * p->sw - p->pad_left;
  *h1 = *h0 + p->kh;
  *w1 = *w0 + p->kw;
  if (*h0 < 0) *h0 = 0;
  if (*w0 < 0) *w0 = 0;
  if (*h1 > H) *h1 = H;
  if (*w1 > W) *w1 = W;
}

/* ---- max pool: saved holds, per output element, the within-sample offset of the max ----- */

int maxpool_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (pool_infer(g, nd, e)) return e->code;
  nd->saved_bytes = nas_shape_numel(&nd->shape) * sizeof(int32_t);
  return NAS_OK;
}

void maxpool_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  int n = op_batch(g, nd), H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
  int32_t *arg = nd->saved;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n * OH; r++) {
    int b = r / OH, oh = r % OH, h0, h1, w0, w1;
    const float *xs = x->val + (size_t)b * H * W * C;
    for (int ow = 0; ow < OW; ow++) {
      window(&nd->p, H, W, oh, ow, &h0, &h1, &w0, &w1);
      size_t o = ((size_t)r * OW + ow) * C;
      for (int c = 0; c < C; c++) {
        float best = -FLT_MAX;
        int32_t at = (h0 * W + w0) * C + c;
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) {
            int32_t k = (ih * W + iw) * C + c;
            if (xs[k] > best) best = xs[k], at = k;
          }
        nd->val[o + c] = xs[at];
        arg[o + c] = at;
      }
    }
  }
}

void maxpool_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  op_grad_acc(g, x);
  int n = op_batch(g, nd);
  size_t in_s = nas_node_sample_numel(x), out_s = nas_node_sample_numel(nd);
  const int32_t *arg = nd->saved;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++)
    for (size_t i = 0; i < out_s; i++)
      x->grad[(size_t)b * in_s + arg[(size_t)b * out_s + i]] += nd->grad[(size_t)b * out_s + i];
}

/* ---- average pool ------------------------------------------------------------------------ */

int avgpool_infer(nas_graph *g, nas_node *nd, nas_err *e) { return pool_infer(g, nd, e); }

void avgpool_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  int n = op_batch(g, nd), H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n * OH; r++) {
    int b = r / OH, oh = r % OH, h0, h1, w0, w1;
    const float *xs = x->val + (size_t)b * H * W * C;
    for (int ow = 0; ow < OW; ow++) {
      window(&nd->p, H, W, oh, ow, &h0, &h1, &w0, &w1);
      float *out = nd->val + ((size_t)r * OW + ow) * C;
      memset(out, 0, (size_t)C * sizeof(float));
      for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++)
          for (int c = 0; c < C; c++) out[c] += xs[(ih * W + iw) * C + c];
      float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
      for (int c = 0; c < C; c++) out[c] *= inv;
    }
  }
}

void avgpool_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  op_grad_acc(g, x);
  int n = op_batch(g, nd), H = x->shape.d[1], W = x->shape.d[2], C = x->shape.d[3];
  int OH = nd->shape.d[1], OW = nd->shape.d[2];
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++) {
    float *dx = x->grad + (size_t)b * H * W * C;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int h0, h1, w0, w1;
        window(&nd->p, H, W, oh, ow, &h0, &h1, &w0, &w1);
        const float *dy = nd->grad + (((size_t)b * OH + oh) * OW + ow) * C;
        float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++)
            for (int c = 0; c < C; c++) dx[(ih * W + iw) * C + c] += dy[c] * inv;
      }
  }
}

/* ---- global average pool: [N,H,W,C] -> [N,C] ---------------------------------------------- */

int gap_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *x = op_in(g, nd, 0);
  if (op_need_nhwc(nd, x, e)) return e->code;
  nd->shape.nd = 2;
  op_like_batch(nd, x);
  nd->shape.d[1] = x->shape.d[3];
  return NAS_OK;
}

void gap_forward(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  int n = op_batch(g, nd), HW = x->shape.d[1] * x->shape.d[2], C = x->shape.d[3];
  float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++) {
    float *out = nd->val + (size_t)b * C;
    const float *xs = x->val + (size_t)b * HW * C;
    memset(out, 0, (size_t)C * sizeof(float));
    for (int i = 0; i < HW; i++)
      for (int c = 0; c < C; c++) out[c] += xs[(size_t)i * C + c];
    for (int c = 0; c < C; c++) out[c] *= inv;
  }
}

void gap_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  op_grad_acc(g, x);
  int n = op_batch(g, nd), HW = x->shape.d[1] * x->shape.d[2], C = x->shape.d[3];
  float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++) {
    const float *dy = nd->grad + (size_t)b * C;
    float *dx = x->grad + (size_t)b * HW * C;
    for (int i = 0; i < HW; i++)
      for (int c = 0; c < C; c++) dx[(size_t)i * C + c] += dy[c] * inv;
  }
}
