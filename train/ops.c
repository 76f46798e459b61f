/* train/ops.c: the op table and helpers shared by every op. */
#include "train/ops.h"

#include <assert.h>
#include <string.h>

#include "train/ops_impl.h"

#define ENTRY(id, nm, lo, hi, fn) [id] = {nm, lo, hi, fn##_infer, fn##_forward, fn##_backward}

const nas_op_def nas_op_table[NAS_OP_COUNT] = {
    ENTRY(NAS_OP_CONV2D, "conv2d", 2, 3, conv2d),
    ENTRY(NAS_OP_DWCONV2D, "dwconv2d", 2, 3, dwconv2d),
    ENTRY(NAS_OP_DENSE, "dense", 2, 3, dense),
    ENTRY(NAS_OP_ADD, "add", 2, 2, add),
    ENTRY(NAS_OP_BATCHNORM, "batchnorm", 5, 5, batchnorm),
    ENTRY(NAS_OP_RELU, "relu", 1, 1, relu),
    ENTRY(NAS_OP_RELU6, "relu6", 1, 1, relu6),
    ENTRY(NAS_OP_MAXPOOL, "maxpool", 1, 1, maxpool),
    ENTRY(NAS_OP_AVGPOOL, "avgpool", 1, 1, avgpool),
    ENTRY(NAS_OP_GAP, "gap", 1, 1, gap),
    ENTRY(NAS_OP_RESHAPE, "reshape", 1, 1, reshape),
    ENTRY(NAS_OP_DROPOUT, "dropout", 1, 1, dropout),
    ENTRY(NAS_OP_SOFTMAX_XENT, "softmax_xent", 2, 2, softmax_xent),
    ENTRY(NAS_OP_LSTM, "lstm", 3, 5, lstm),
    ENTRY(NAS_OP_GRU, "gru", 3, 5, gru),
    ENTRY(NAS_OP_FAKEQUANT, "fakequant", 1, 2, fakequant),
    ENTRY(NAS_OP_ALPHA_BLEND, "alpha_blend", 2, 2, alpha_blend),
    ENTRY(NAS_OP_MASK_MUL, "mask_mul", 2, 2, mask_mul),
    ENTRY(NAS_OP_MIX, "mix", 2, NAS_MAX_INPUTS, mix),
    ENTRY(NAS_OP_CHANPAD, "chanpad", 1, 1, chanpad),
    ENTRY(NAS_OP_SQUARE, "square", 1, 1, square),
    ENTRY(NAS_OP_EXP, "exp", 1, 1, exp),
    ENTRY(NAS_OP_LRT, "lrt", 2, 2, lrt),
    ENTRY(NAS_OP_SVDO_W, "svdo_w", 2, 2, svdo_w),
    ENTRY(NAS_OP_SVDO_KL, "svdo_kl", 2, 3, svdo_kl),
};

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
