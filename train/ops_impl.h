/* train/ops_impl.h: internal to train/: the per-op functions the table in ops.c points at,
 * and small helpers shared by the op files. Not part of the public API. */
#ifndef NAS_TRAIN_OPS_IMPL_H
#define NAS_TRAIN_OPS_IMPL_H

#include "train/ops.h"

/* fn_infer, fn_forward and fn_backward of every op in train/ops_list.h. */
#define NAS_OP(ID, fn, min_in, max_in)                           \
  int fn##_infer(nas_graph *g, nas_node *nd, nas_err *e);        \
  void fn##_forward(nas_graph *g, nas_node *nd);                 \
  void fn##_backward(nas_graph *g, nas_node *nd);
#include "train/ops_list.h"

/* Input i of node nd. */
static inline nas_node *op_in(nas_graph *g, const nas_node *nd, int i) {
  return &g->nodes[nd->in[i]];
}

/* Samples a node holds at the current step: the graph's batch for batched nodes, d[0]
 * otherwise (a PARAM fed as data, as the parity tests do). */
static inline int op_batch(const nas_graph *g, const nas_node *nd) {
  return nd->batched ? g->batch : nd->shape.d[0];
}

/* Output node takes its batch dimension from input x. */
static inline void op_like_batch(nas_node *nd, const nas_node *x) {
  nd->batched = x->batched;
  nd->shape.d[0] = x->shape.d[0];
}

/* Gradient-write protocol. An op about to contribute to input x's gradient calls
 * op_grad_fresh(g, x): 1 means nothing was written yet in this sweep, and the op must
 * overwrite every element (x->grad holds stale values); 0 means it must add. Ops that can
 * only add call op_grad_acc, which clears a fresh gradient first. */
static inline int op_grad_fresh(const nas_graph *g, nas_node *x) {
  (void)g;
  int fresh = !x->grad_written;
  x->grad_written = 1;
  return fresh;
}

void op_grad_clear(const nas_graph *g, nas_node *x);

static inline float *op_grad_acc(const nas_graph *g, nas_node *x) {
  if (op_grad_fresh(g, x)) op_grad_clear(g, x);
  return x->grad;
}

/* Fills nd's [N,OH,OW,c] shape from x [N,H,W,C] and the window (kh, kw, sh, sw, padding) in
 * nd->p, setting pad_top/pad_left; an error names the op when the window does not fit. */
int op_window_infer(nas_node *nd, const nas_node *x, int c, nas_err *e);

/* Checks that x is [N,H,W,C]; fills a message naming the op otherwise. */
int op_need_nhwc(const nas_node *nd, const nas_node *x, nas_err *e);

#endif
