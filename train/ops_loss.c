/* train/ops_loss.c: softmax cross-entropy, mean over the batch.
 * logits [N,K]; labels [N] holding class indices as floats. Output: [1] (unbatched).
 * A label outside 0..K-1 contributes nothing (the dataset readers validate labels).
 * Saved: the softmax probabilities [N,K] for the backward pass. */
#include <math.h>

#include "train/ops_impl.h"

int softmax_xent_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  const nas_node *z = op_in(g, nd, 0), *y = op_in(g, nd, 1);
  if (z->shape.nd != 2)
    return nas_errf(e, NAS_EINVAL, "softmax_xent: logits must be [N,K]");
  if (nas_node_sample_numel(y) != 1 || y->shape.d[0] != z->shape.d[0])
    return nas_errf(e, NAS_EINVAL, "softmax_xent: labels must be [N] with N = %d",
                    z->shape.d[0]);
  nd->shape.nd = 1;
  nd->shape.d[0] = 1;
  nd->batched = 0;
  nd->saved_bytes = nas_shape_numel(&z->shape) * sizeof(float);
  return NAS_OK;
}

void softmax_xent_forward(nas_graph *g, nas_node *nd) {
  const nas_node *z = op_in(g, nd, 0), *y = op_in(g, nd, 1);
  int n = op_batch(g, z), K = z->shape.d[1];
  float *prob = nd->saved;
  double total = 0;
  for (int b = 0; b < n; b++) {
    const float *zr = z->val + (size_t)b * K;
    float *pr = prob + (size_t)b * K;
    float mx = zr[0];
    for (int k = 1; k < K; k++) mx = zr[k] > mx ? zr[k] : mx;
    double s = 0;
    for (int k = 0; k < K; k++) s += exp((double)zr[k] - mx);
    double lse = mx + log(s);
    for (int k = 0; k < K; k++) pr[k] = (float)exp((double)zr[k] - lse);
    float lab = y->val[b];
    if (lab >= 0 && lab < (float)K) total += lse - zr[(int)lab];
  }
  nd->val[0] = (float)(total / n);
}

void softmax_xent_backward(nas_graph *g, nas_node *nd) {
  nas_node *z = op_in(g, nd, 0), *y = op_in(g, nd, 1);
  if (!z->grad) return;
  op_grad_acc(g, z);
  int n = op_batch(g, z), K = z->shape.d[1];
  float scale = nd->grad[0] / (float)n;
  const float *prob = nd->saved;
  for (int b = 0; b < n; b++) {
    float lab = y->val[b];
    if (!(lab >= 0 && lab < (float)K)) continue;
    for (int k = 0; k < K; k++)
      z->grad[(size_t)b * K + k] += scale * (prob[(size_t)b * K + k] - (k == (int)lab ? 1.0f : 0.0f));
  }
}
