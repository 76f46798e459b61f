/* train/ops.c: the op table and helpers shared by every op. */
#include "train/ops.h"

#include <assert.h>
#include <string.h>

#include "train/ops_impl.h"

/* One entry per line of train/ops_list.h, at the index of its enum value. */
const nas_op_def nas_op_table[] = {
#define NAS_OP(ID, fn, min_in, max_in) \
  [NAS_OP_##ID] = {#fn, min_in, max_in, fn##_infer, fn##_forward, fn##_backward},
#include "train/ops_list.h"
};

/* The table is declared without a size (ops.h), so this counts the initialiser. */
static_assert(sizeof nas_op_table / sizeof nas_op_table[0] == NAS_OP_COUNT,
              "op table must have one entry per enum nas_op");

const char *nas_op_name(int op) {
  return (op >= 0 && op < NAS_OP_COUNT && nas_op_table[op].name) ? nas_op_table[op].name : "?";
}

int nas_conv_out_size(int in, int k, int s, int padding, int *pad_before) {
  if (in < 1 || k < 1 || s < 1) return 0;
  if (padding == NAS_PAD_SAME) {
    int out = (in + s - 1) / s;
    int total = (out - 1) * s + k - in;
    if (total < 0) total = 0;
    if (pad_before) *pad_before = total / 2;
    return out;
  }
  if (pad_before) *pad_before = 0;
  if (k > in) return 0;
  return (in - k) / s + 1;
}

void op_grad_clear(const nas_graph *g, nas_node *x) {
  size_t n = x->batched ? (size_t)g->batch * nas_node_sample_numel(x) : nas_shape_numel(&x->shape);
  memset(x->grad, 0, n * sizeof(float));
}

int op_window_infer(nas_node *nd, const nas_node *x, int c, nas_err *e) {
  nas_op_params *p = &nd->p;
  if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1)
    return nas_errf(e, NAS_EINVAL, "%s: window %dx%d stride %dx%d must be at least 1", nas_op_name(nd->op),
                    p->kh, p->kw, p->sh, p->sw);
  int oh = nas_conv_out_size(x->shape.d[1], p->kh, p->sh, p->padding, &p->pad_top);
  int ow = nas_conv_out_size(x->shape.d[2], p->kw, p->sw, p->padding, &p->pad_left);
  if (oh < 1 || ow < 1)
    return nas_errf(e, NAS_EINVAL,
                    "%s: window %dx%d stride %dx%d (%s padding) does not fit input %dx%d",
                    nas_op_name(nd->op), p->kh, p->kw, p->sh, p->sw,
                    p->padding == NAS_PAD_SAME ? "same" : "valid", x->shape.d[1], x->shape.d[2]);
  nd->shape.nd = 4;
  op_like_batch(nd, x);
  nd->shape.d[1] = oh;
  nd->shape.d[2] = ow;
  nd->shape.d[3] = c;
  return NAS_OK;
}

int op_need_nhwc(const nas_node *nd, const nas_node *x, nas_err *e) {
  if (x->shape.nd != 4) {
    char b[64];
    return nas_errf(e, NAS_EINVAL, "%s: input must be [N,H,W,C], got %s", nas_op_name(nd->op),
                    nas_shape_str(&x->shape, b, sizeof b));
  }
  return NAS_OK;
}
