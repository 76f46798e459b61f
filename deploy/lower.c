/* deploy/lower.c: trained float network + calibration -> int8 graph (see deploy/lower.h),
 * and the int8 graph's accuracy over a dataset. */
#include "deploy/lower.h"
#include "core/alloc.h"
#include "deploy/lower_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/wino8.h"
#include "train/ops.h"
#include "train/prune.h"


/* Layer index and op of a node ("l3.dw.bn" -> 3, "dsconv"). */
static int layer_of(const lw *L, int node, const char **op) {
  int li = -1;
  if (sscanf(L->fg->nodes[node].name, "l%d.", &li) != 1 || li < 0 || li >= L->net->n_layers) {
    *op = "?";
    return -1;
  }
  *op = L->net->layers[li].op;
  return li;
}

int nas_lw_lerr(lw *L, int node, int code, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *op;
  int li = layer_of(L, node, &op);
  if (li >= 0) return nas_errf(L->e, code, "layer %d (%s): %s", li, op, msg);
  return nas_errf(L->e, code, "node '%s': %s", L->fg->nodes[node].name, msg);
}

int nas_lw_oom(lw *L) { return nas_errf(L->e, NAS_ENOMEM, "lowering: out of memory"); }

/* 1 when x[0..n) are all finite (a NaN or infinity would make the int8 conversions
 * undefined; checkpoints store such values bit for bit). */
static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Appends a tensor; returns its index or -1. nq scales (zero points 0 unless set later). */
int nas_lw_add_tensor(lw *L, const char *name, int type, int ndim, const int *dims, int nq) {
  nas_g8_graph *g = L->g;
  if (g->ntensors == L->tcap) {
    int cap = L->tcap ? L->tcap * 2 : 32;
    nas_g8_tensor *t = nas_realloc(g->tensors, sizeof *t * (size_t)cap);
    if (!t) return nas_lw_oom(L), -1;
    g->tensors = t, L->tcap = cap;
  }
  nas_g8_tensor *t = &g->tensors[g->ntensors];
  memset(t, 0, sizeof *t);
  g->ntensors++;
  t->name = nas_malloc(strlen(name) + 1);
  t->scale = nas_calloc((size_t)(nq > 0 ? nq : 1), sizeof *t->scale);
  t->zero_point = nas_calloc((size_t)(nq > 0 ? nq : 1), sizeof *t->zero_point);
  if (!t->name || !t->scale || !t->zero_point) return nas_lw_oom(L), -1;
  strcpy(t->name, name);
  t->type = type, t->ndim = ndim, t->nq = nq;
  memcpy(t->dims, dims, sizeof *dims * (size_t)ndim);
  size_t esz = type == NAS_G8_INT32 ? 4 : 1;
  t->bytes = nas_g8_numel(t) * esz;
  return g->ntensors - 1;
}

/* Appends an operator; returns its index or -1. */
int nas_lw_add_op(lw *L, int kind, int out, int nin, int i0, int i1, int i2) {
  nas_g8_graph *g = L->g;
  if (g->nops == L->ocap) {
    int cap = L->ocap ? L->ocap * 2 : 32;
    nas_g8_op *o = nas_realloc(g->ops, sizeof *o * (size_t)cap);
    if (!o) return nas_lw_oom(L), -1;
    g->ops = o, L->ocap = cap;
  }
  nas_g8_op *op = &g->ops[g->nops];
  memset(op, 0, sizeof *op);
  op->kind = kind, op->out = out, op->nin = nin;
  op->in[0] = i0, op->in[1] = i1, op->in[2] = i2;
  op->stride_w = op->stride_h = op->dil_w = op->dil_h = 1;
  op->filter_w = op->filter_h = op->depth_mult = 1;
  op->beta = 1.0f;
  return g->nops++;
}

/* An activation tensor for node `node` with its calibrated quantisation. */
static int act_tensor(lw *L, int node) {
  const nas_node *n = &L->fg->nodes[node];
  if (!L->c->point || node >= L->c->n || !L->c->point[node])
    return nas_lw_lerr(L, node, NAS_EINVAL, "no calibrated range for '%s' (calibrate this network first)", n->name), -1;
  int dims[NAS_G8_MAXDIM] = {1}, nd = n->shape.nd;
  for (int k = 1; k < nd; k++) dims[k] = n->shape.d[k];
  int t = nas_lw_add_tensor(L, n->name, NAS_G8_INT8, nd, dims, 1);
  if (t < 0) return -1;
  nas_q_choose(L->c->lo[node], L->c->hi[node], &L->g->tensors[t].scale[0],
               &L->g->tensors[t].zero_point[0]);
  return t;
}

/* An activation tensor that keeps tensor `like`'s quantisation, with the shape of node. */
int nas_lw_same_q_tensor(lw *L, const char *name, int like, int nd, const int *dims) {
  int t = nas_lw_add_tensor(L, name, NAS_G8_INT8, nd, dims, 1);
  if (t < 0) return -1;
  L->g->tensors[t].scale[0] = L->g->tensors[like].scale[0];
  L->g->tensors[t].zero_point[0] = L->g->tensors[like].zero_point[0];
  return t;
}

/* The node after `node` that fuses into it (batch-norm or relu reading it), or -1. */
static int fused_next(const lw *L, int node) {
  for (int j = node + 1; j < L->fg->n; j++) {
    const nas_node *m = &L->fg->nodes[j];
    if (m->kind == NAS_NODE_OP && m->in[0] == node &&
        (m->op == NAS_OP_BATCHNORM || m->op == NAS_OP_RELU || m->op == NAS_OP_RELU6))
      return j;
  }
  return -1;
}

static int g8_act(int act) {
  return act == NAS_ACT_RELU ? NAS_G8_ACT_RELU : act == NAS_ACT_RELU6 ? NAS_G8_ACT_RELU6 : NAS_G8_ACT_NONE;
}

/* Follows fusing consumers of node: sets *bn (or -1), *act, returns the output node. */
static int fuse_chain(lw *L, int node, int *bn, int *act) {
  int out = node;
  *bn = -1, *act = NAS_G8_ACT_NONE;
  for (;;) {
    int j = fused_next(L, out);
    if (j < 0 || *act != NAS_G8_ACT_NONE) break;
    const nas_node *m = &L->fg->nodes[j];
    if (m->op == NAS_OP_BATCHNORM) {
      if (*bn >= 0 || out != node) break;
      *bn = j, *act = g8_act(m->p.act);
    } else {
      *act = m->op == NAS_OP_RELU ? NAS_G8_ACT_RELU : NAS_G8_ACT_RELU6;
    }
    L->done[j] = 1;
    out = j;
  }
  return out;
}

int nas_lw_input_of(lw *L, int node, int k) {
  int src = L->fg->nodes[node].in[k];
  if (L->tmap[src] < 0)
    return nas_lw_lerr(L, node, NAS_EINVAL, "input '%s' was not lowered", L->fg->nodes[src].name), -1;
  return L->tmap[src];
}

/* Weight tensor (int8, per channel when nq > 1, quantized_dimension qdim). */
int nas_lw_weight_tensor(lw *L, const char *name, int nd, const int *dims, const int8_t *q,
                         const float *scale, int nq, int qdim) {
  int t = nas_lw_add_tensor(L, name, NAS_G8_INT8, nd, dims, nq);
  if (t < 0) return -1;
  nas_g8_tensor *x = &L->g->tensors[t];
  x->data = nas_malloc(x->bytes);
  if (!x->data) return nas_lw_oom(L), -1;
  memcpy(x->data, q, x->bytes);
  memcpy(x->scale, scale, sizeof *scale * (size_t)nq);
  x->qdim = qdim;
  return t;
}

int nas_lw_bias_tensor(lw *L, const char *name, int co, const float *b, float in_scale,
                       const float *w_scale, int per_channel) {
  int dims[1] = {co};
  int t = nas_lw_add_tensor(L, name, NAS_G8_INT32, 1, dims, per_channel ? co : 1);
  if (t < 0) return -1;
  nas_g8_tensor *x = &L->g->tensors[t];
  x->data = nas_malloc(x->bytes);
  if (!x->data) return nas_lw_oom(L), -1;
  float *ws = nas_malloc(sizeof *ws * (size_t)co);
  if (!ws) return nas_lw_oom(L), -1;
  for (int c = 0; c < co; c++) ws[c] = w_scale[per_channel ? c : 0];
  nas_q_bias(b, co, in_scale, ws, x->data);
  for (int c = 0; c < (per_channel ? co : 1); c++) x->scale[c] = in_scale * ws[c];
  free(ws);
  return t;
}

void nas_lw_tname(char *buf, size_t cap, const char *base, const char *suffix) {
  snprintf(buf, cap, "%.*s%s", (int)(strlen(base) > 40 ? 40 : strlen(base)), base, suffix);
}

/* conv / depthwise conv (+ folded batch-norm + activation). */
static int lower_conv(lw *L, int i) {
  const nas_node *n = &L->fg->nodes[i];
  const int dw = n->op == NAS_OP_DWCONV2D;
  const nas_node *wn = &L->fg->nodes[nas_prune_source(L->fg, n->in[1])];
  int x = nas_lw_input_of(L, i, 0);
  if (x < 0) return -1;
  int bn, act, outn = fuse_chain(L, i, &bn, &act);
  const int co = dw ? wn->shape.d[2] : wn->shape.d[0];
  const int kh = dw ? wn->shape.d[0] : wn->shape.d[1], kw = dw ? wn->shape.d[1] : wn->shape.d[2];
  const size_t nw = nas_shape_numel(&wn->shape);
  const int per = (int)(nw / (size_t)co);
  float *w = nas_malloc(sizeof *w * nw), *b = nas_malloc(sizeof *b * (size_t)co), *ws = nas_malloc(sizeof *ws * (size_t)co);
  int8_t *q = nas_malloc(nw);
  int rc = -1;
  if (!w || !b || !ws || !q) {
    nas_lw_oom(L);
    goto done;
  }
  if (nas_fold_bn(L->fg, i, bn, w, b, L->e)) goto done;
  if (!all_finite(w, nw) || !all_finite(b, (size_t)co)) {
    nas_lw_lerr(L, i, NAS_EINVAL, "weights, bias or batch-norm statistics are not finite");
    goto done;
  }
  if (dw) nas_q_weights(w, co, per, 1, co, q, ws);
  else nas_q_weights(w, co, per, per, 1, q, ws);
  char nm[64];
  int wdims[4] = {co, kh, kw, dw ? 1 : wn->shape.d[3]};
  if (dw) wdims[0] = 1, wdims[3] = co;
  int wt = nas_lw_weight_tensor(L, wn->name, 4, wdims, q, ws, co, dw ? 3 : 0);
  if (wt < 0) goto done;
  nas_lw_tname(nm, sizeof nm, wn->name, bn >= 0 ? ".folded_bias" : ".bias");
  int bt = nas_lw_bias_tensor(L, nm, co, b, L->g->tensors[x].scale[0], ws, 1);
  if (bt < 0) goto done;
  int y = act_tensor(L, outn);
  if (y < 0) goto done;
  int oi = nas_lw_add_op(L, dw ? NAS_G8_DEPTHWISE_CONV_2D : NAS_G8_CONV_2D, y, 3, x, wt, bt);
  if (oi < 0) goto done;
  nas_g8_op *op = &L->g->ops[oi];
  op->padding = n->p.padding == NAS_PAD_SAME ? NAS_G8_PAD_SAME : NAS_G8_PAD_VALID;
  op->stride_h = n->p.sh, op->stride_w = n->p.sw, op->act = act;
  L->tmap[i] = L->tmap[outn] = y;
  rc = 0;
done:
  free(w), free(b), free(ws), free(q);
  return rc;
}

/* A Winograd conv (WINO_OUT and the steps before it, + folded batch-norm + activation) ->
 * WINOGRAD_CONV_2D; the constants come from deploy/wino8.h. */
static int lower_wino(lw *L, int i) {
  int bn, act, outn = fuse_chain(L, i, &bn, &act);
  nas_wino_lowered r;
  if (nas_wino_lower_consts(L->fg, i, bn, L->c, &r, L->e)) {
    const char *op;
    int li = layer_of(L, i, &op);
    if (li >= 0) nas_err_prefix(L->e, "layer %d (%s)", li, op);
    return -1;
  }
  int rc = -1, x = L->tmap[r.x_node];
  const int a = r.m + 2, P = a * a, rt = L->cfg.wino_rt && !r.flex;
  const nas_node *wn = &L->fg->nodes[r.w_node];
  char nm[64];
  if (x < 0) {
    nas_lw_lerr(L, i, NAS_EINVAL, "input '%s' was not lowered", L->fg->nodes[r.x_node].name);
    goto done;
  }
  int wd[4] = {r.co, r.flex ? P : 3, r.flex ? r.ci : 3, r.ci};
  nas_lw_tname(nm, sizeof nm, wn->name, r.flex ? ".wino" : "");
  int wt = nas_lw_weight_tensor(L, nm, r.flex ? 3 : 4, wd, r.wq, r.wscale, r.co, 0);
  if (wt < 0) goto done;
  nas_lw_tname(nm, sizeof nm, wn->name, bn >= 0 ? ".folded_bias" : ".bias");
  int bt = nas_lw_add_tensor(L, nm, NAS_G8_INT32, 1, &r.co, r.co);
  if (bt < 0) goto done;
  nas_g8_tensor *B = &L->g->tensors[bt];
  if (!(B->data = nas_malloc(B->bytes))) {
    nas_lw_oom(L);
    goto done;
  }
  memcpy(B->data, r.bias, B->bytes);
  memcpy(B->scale, r.bscale, sizeof *B->scale * (size_t)r.co);
  int y = act_tensor(L, outn);
  if (y < 0) goto done;
  nas_lw_tname(nm, sizeof nm, L->fg->nodes[i].name, ".tiles");
  int sb = NASRT_WINO_SCRATCH(r.m, r.ci, r.co, rt);
  int sc = nas_lw_add_tensor(L, nm, NAS_G8_INT8, 1, &sb, 1);
  if (sc < 0) goto done;
  L->g->tensors[sc].scale[0] = 1.0f;
  int tb = -1;
  if (r.flex) {
    int nt = P + r.m * a;
    nas_lw_tname(nm, sizeof nm, L->fg->nodes[i].name, ".tables");
    if ((tb = nas_lw_add_tensor(L, nm, NAS_G8_INT8, 1, &nt, 1)) < 0) goto done;
    nas_g8_tensor *T = &L->g->tensors[tb];
    if (!(T->data = nas_malloc((size_t)nt))) {
      nas_lw_oom(L);
      goto done;
    }
    memcpy(T->data, r.tables, (size_t)nt);
    T->scale[0] = 1.0f;
  }
  int oi = nas_lw_add_op(L, NAS_G8_WINOGRAD, y, 3, x, wt, bt);
  if (oi < 0) goto done;
  nas_g8_op *op = &L->g->ops[oi];
  const nas_node *vn = &L->fg->nodes[L->fg->nodes[L->fg->nodes[i].in[0]].in[0]];
  op->nin = 5, op->in[3] = sc, op->in[4] = tb;
  op->padding = vn->p.padding == NAS_PAD_SAME ? NAS_G8_PAD_SAME : NAS_G8_PAD_VALID;
  op->act = act, op->wino_m = r.m, op->wino_bits = r.bits, op->wino_rt = rt;
  op->wino_fb = r.fb, op->wino_fa = r.fa, op->wino_vscale = r.vscale, op->wino_bshift = r.bshift;
  L->tmap[i] = L->tmap[outn] = y;
  rc = 0;
done:
  nas_wino_lowered_free(&r);
  return rc;
}

static int lower_dense(lw *L, int i) {
  const nas_node *n = &L->fg->nodes[i];
  const nas_node *wn = &L->fg->nodes[nas_prune_source(L->fg, n->in[1])];
  int x = nas_lw_input_of(L, i, 0);
  if (x < 0) return -1;
  int bn, act, outn = fuse_chain(L, i, &bn, &act);
  if (bn >= 0) return nas_lw_lerr(L, i, NAS_EINVAL, "batch-norm after a dense layer is not supported");
  const int co = wn->shape.d[0], k = wn->shape.d[1];
  const size_t nw = (size_t)co * k;
  const int pc = L->cfg.fc_per_channel;
  float *b = nas_calloc((size_t)co, sizeof *b), *ws = nas_malloc(sizeof *ws * (size_t)co);
  int8_t *q = nas_malloc(nw);
  int rc = -1;
  if (!b || !ws || !q) {
    nas_lw_oom(L);
    goto done;
  }
  if (n->n_in > 2) memcpy(b, L->fg->nodes[n->in[2]].val, sizeof *b * (size_t)co);
  if (!all_finite(wn->val, nw) || !all_finite(b, (size_t)co)) {
    nas_lw_lerr(L, i, NAS_EINVAL, "weights or bias are not finite");
    goto done;
  }
  if (pc) nas_q_weights(wn->val, co, k, k, 1, q, ws);
  else nas_q_weights(wn->val, 1, (int)nw, 0, 1, q, ws);
  int wdims[2] = {co, k};
  int wt = nas_lw_weight_tensor(L, wn->name, 2, wdims, q, ws, pc ? co : 1, 0);
  if (wt < 0) goto done;
  char nm[64];
  nas_lw_tname(nm, sizeof nm, wn->name, ".bias");
  int bt = nas_lw_bias_tensor(L, nm, co, b, L->g->tensors[x].scale[0], ws, pc);
  if (bt < 0) goto done;
  int y = act_tensor(L, outn);
  if (y < 0) goto done;
  int oi = nas_lw_add_op(L, NAS_G8_FULLY_CONNECTED, y, 3, x, wt, bt);
  if (oi < 0) goto done;
  L->g->ops[oi].act = act;
  L->tmap[i] = L->tmap[outn] = y;
  rc = 0;
done:
  free(b), free(ws), free(q);
  return rc;
}

static int lower_node(lw *L, int i) {
  const nas_node *n = &L->fg->nodes[i];
  switch (n->op) {
    case NAS_OP_CONV2D:
    case NAS_OP_DWCONV2D: return lower_conv(L, i);
    case NAS_OP_DENSE: return lower_dense(L, i);
    case NAS_OP_WINO_OUT: return lower_wino(L, i);
    case NAS_OP_WINO_WT:
    case NAS_OP_WINO_IN:
    case NAS_OP_WINO_MUL: return 0; /* lowered with their layer's WINO_OUT */
    case NAS_OP_ADD: {
      int a = nas_lw_input_of(L, i, 0), b = a < 0 ? -1 : nas_lw_input_of(L, i, 1);
      if (a < 0 || b < 0) return -1;
      int bn, act, outn = fuse_chain(L, i, &bn, &act);
      if (bn >= 0) return nas_lw_lerr(L, i, NAS_EINVAL, "batch-norm after an add is not supported");
      int y = act_tensor(L, outn);
      if (y < 0) return -1;
      int oi = nas_lw_add_op(L, NAS_G8_ADD, y, 2, a, b, -1);
      if (oi < 0) return -1;
      L->g->ops[oi].act = act;
      L->tmap[i] = L->tmap[outn] = y;
      return 0;
    }
    case NAS_OP_MAXPOOL:
    case NAS_OP_AVGPOOL: {
      int x = nas_lw_input_of(L, i, 0);
      if (x < 0) return -1;
      int dims[4] = {1, n->shape.d[1], n->shape.d[2], n->shape.d[3]};
      int y = nas_lw_same_q_tensor(L, n->name, x, 4, dims);
      if (y < 0) return -1;
      int oi = nas_lw_add_op(L, n->op == NAS_OP_MAXPOOL ? NAS_G8_MAX_POOL_2D : NAS_G8_AVERAGE_POOL_2D, y, 1, x, -1, -1);
      if (oi < 0) return -1;
      nas_g8_op *op = &L->g->ops[oi];
      op->padding = n->p.padding == NAS_PAD_SAME ? NAS_G8_PAD_SAME : NAS_G8_PAD_VALID;
      op->stride_h = n->p.sh, op->stride_w = n->p.sw, op->filter_h = n->p.kh, op->filter_w = n->p.kw;
      L->tmap[i] = y;
      return 0;
    }
    case NAS_OP_GAP: {
      int x = nas_lw_input_of(L, i, 0);
      if (x < 0) return -1;
      const nas_g8_tensor *xt = &L->g->tensors[x];
      int H = xt->dims[1], W = xt->dims[2], C = xt->dims[3];
      int d4[4] = {1, 1, 1, C}, d2[2] = {1, C};
      char nm[64];
      nas_lw_tname(nm, sizeof nm, n->name, ".pool");
      int p = nas_lw_same_q_tensor(L, nm, x, 4, d4);
      if (p < 0) return -1;
      int oi = nas_lw_add_op(L, NAS_G8_AVERAGE_POOL_2D, p, 1, x, -1, -1);
      if (oi < 0) return -1;
      nas_g8_op *op = &L->g->ops[oi];
      op->padding = NAS_G8_PAD_VALID, op->filter_h = H, op->filter_w = W;
      int y = nas_lw_same_q_tensor(L, n->name, p, 2, d2);
      if (y < 0 || nas_lw_add_op(L, NAS_G8_RESHAPE, y, 1, p, -1, -1) < 0) return -1;
      L->tmap[i] = y;
      return 0;
    }
    case NAS_OP_RESHAPE: {
      int x = nas_lw_input_of(L, i, 0);
      if (x < 0) return -1;
      int dims[NAS_G8_MAXDIM] = {1};
      for (int k = 1; k < n->shape.nd; k++) dims[k] = n->shape.d[k];
      int y = nas_lw_same_q_tensor(L, n->name, x, n->shape.nd, dims);
      if (y < 0 || nas_lw_add_op(L, NAS_G8_RESHAPE, y, 1, x, -1, -1) < 0) return -1;
      L->tmap[i] = y;
      return 0;
    }
    case NAS_OP_DROPOUT: {
      int x = nas_lw_input_of(L, i, 0);
      if (x < 0) return -1;
      L->tmap[i] = x;
      return 0;
    }
    case NAS_OP_SOFTMAX_XENT: return 0;
    case NAS_OP_LSTM:
    case NAS_OP_GRU: return nas_lw_lower_rnn(L, i);
    case NAS_OP_BATCHNORM:
      return nas_lw_lerr(L, i, NAS_EINVAL, "a batch-norm that does not follow a convolution cannot be lowered");
    case NAS_OP_RELU:
    case NAS_OP_RELU6:
      return nas_lw_lerr(L, i, NAS_EINVAL, "an activation that does not follow a conv, fc or add cannot be lowered");
    default: return nas_lw_lerr(L, i, NAS_EINVAL, "op %s cannot be lowered to int8", nas_op_name(n->op));
  }
}

int nas_lower(const nas_net *net, const nas_calib *c, const nas_lower_cfg *cfg,
              nas_g8_graph *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  lw L = {.net = net, .fg = net->g, .c = c, .e = e, .g = out};
  if (cfg) L.cfg = *cfg;
  if (!c || c->n != net->g->n)
    return nas_errf(e, NAS_EINVAL, "lowering: the calibration does not belong to this network");
  L.tmap = nas_malloc(sizeof *L.tmap * (size_t)net->g->n);
  L.done = nas_calloc((size_t)net->g->n, 1);
  int rc = NAS_OK;
  if (!L.tmap || !L.done) rc = nas_lw_oom(&L);
  if (!rc) {
    for (int i = 0; i < net->g->n; i++) L.tmap[i] = -1;
    int x = act_tensor(&L, net->input);
    if (x < 0) rc = e->code;
    else L.tmap[net->input] = x, out->input = x;
  }
  for (int i = 0; !rc && i < net->g->n; i++) {
    const nas_node *n = &net->g->nodes[i];
    if (n->kind != NAS_NODE_OP || L.done[i] || nas_prune_is_mask_op(net->g, i)) continue;
    if (lower_node(&L, i)) rc = e->code ? e->code : NAS_EINVAL;
  }
  if (!rc) {
    out->output = L.tmap[net->logits];
    if (out->output < 0) rc = nas_errf(e, NAS_EINVAL, "lowering: the logits were not lowered");
  }
  if (!rc && L.cfg.softmax) {
    int d2[2] = {1, net->classes};
    int y = nas_lw_add_tensor(&L, "softmax", NAS_G8_INT8, 2, d2, 1);
    if (y < 0 || nas_lw_add_op(&L, NAS_G8_SOFTMAX, y, 1, out->output, -1, -1) < 0) {
      rc = e->code;
    } else {
      out->tensors[y].scale[0] = 1.0f / 256, out->tensors[y].zero_point[0] = -128;
      out->output = y;
    }
  }
  if (!rc) {
    rc = nas_g8_validate(out, e);
    if (rc) nas_err_prefix(e, "lowering produced an invalid int8 graph");
  }
  free(L.tmap), free(L.done);
  if (rc) nas_g8_graph_free(out);
  return rc;
}

int nas_quantize_net(nas_net *net, const nas_dataset *calib_ds, const nas_calib_cfg *ccfg,
                     const nas_lower_cfg *lcfg, nas_g8_graph *out, nas_err *e) {
  nas_calib c;
  memset(out, 0, sizeof *out);
  int rc = nas_calibrate(net, calib_ds, ccfg, &c, e);
  if (rc) return rc;
  rc = nas_lower(net, &c, lcfg, out, e);
  nas_calib_free(&c);
  return rc;
}

void nas_g8_quantize_input(const nas_g8_graph *g, const float *x, int8_t *q) {
  const nas_g8_tensor *t = &g->tensors[g->input];
  size_t n = nas_g8_numel(t);
  for (size_t i = 0; i < n; i++) q[i] = nas_q_int8(x[i], t->scale[0], t->zero_point[0]);
}

int nas_g8_accuracy(const nas_g8_graph *g, const nas_dataset *ds, int limit, double *acc,
                    nas_err *e) {
  const nas_g8_tensor *ti = &g->tensors[g->input], *to = &g->tensors[g->output];
  size_t ni = nas_g8_numel(ti), no = nas_g8_numel(to);
  if (!ds || ds->n < 1) return nas_errf(e, NAS_EINVAL, "int8 evaluation: the dataset is empty");
  if ((size_t)ds->h * ds->w * ds->c != ni)
    return nas_errf(e, NAS_EINVAL, "int8 evaluation: samples have %d values, the graph input '%s' has %zu",
                    ds->h * ds->w * ds->c, ti->name, ni);
  int N = limit > 0 && limit < ds->n ? limit : ds->n;
  long correct = 0;
  int failed = 0;
  nas_err first = {0};
#pragma omp parallel reduction(+ : correct)
  {
    nas_g8_exec x; /* one per thread: plan, prepared operators, arena */
    int8_t *in = nas_malloc(ni), *y = nas_malloc(no);
    nas_err te = {0};
    int trc = in && y ? nas_g8_exec_init(&x, g, &te) : nas_errf(&te, NAS_ENOMEM, "int8 evaluation: out of memory");
#pragma omp for schedule(static)
    for (int s = 0; s < N; s++) {
      if (trc != NAS_OK) continue;
      nas_g8_quantize_input(g, ds->x + (size_t)s * ni, in);
      if ((trc = nas_g8_exec_run(&x, in, y, &te)) != NAS_OK) continue;
      int best = 0;
      for (size_t k = 1; k < no; k++)
        if (y[k] > y[best]) best = (int)k;
      correct += best == ds->y[s];
    }
    if (trc != NAS_OK) {
#pragma omp critical(nas_g8_accuracy_err)
      if (!failed) failed = 1, first = te;
    }
    if (in && y) nas_g8_exec_free(&x);
    free(in), free(y);
  }
  if (failed) {
    if (e) *e = first;
    return first.code ? first.code : NAS_EINVAL;
  }
  if (acc) *acc = (double)correct / N;
  return NAS_OK;
}
