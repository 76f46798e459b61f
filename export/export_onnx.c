/* export/export_onnx.c: float and QDQ-int8 ONNX export of a trained network (see
 * export_onnx.h). Messages are built with the protobuf-c bindings generated from onnx.proto
 * at build time and encoded with onnx__model_proto__pack. Every allocation of one export is
 * recorded in a builder and freed at the end; an allocation failure longjmps to the top. */
#include "export/export_onnx.h"
#include "core/alloc.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "train/prune.h"
#include "train/ops.h"

enum { LAY_NCHW = 1, LAY_FLAT = 2, LAY_SEQ = 3 }; /* layout in the ONNX graph (SEQ: [N,T,F]) */

typedef struct ob {
  jmp_buf oom;            /* longjmp target on allocation failure */
  void **own;             /* every allocation of this export */
  size_t n_own, cap_own;
  Onnx__NodeProto **nodes;
  size_t n_nodes, cap_nodes;
  Onnx__TensorProto **inits;
  size_t n_inits, cap_inits;
  const char *clip_min, *clip_max; /* shared Clip bounds (created on first use) */
} ob;

static void ob_free_all(ob *b) {
  for (size_t i = 0; i < b->n_own; i++) free(b->own[i]);
  free(b->own), free(b->nodes), free(b->inits);
}

static void grow(ob *b, void ***arr, size_t *n, size_t *cap, void *p) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    void **q = nas_realloc(*arr, nc * sizeof *q);
    if (!q) {
      free(p);
      longjmp(b->oom, 1);
    }
    *arr = q, *cap = nc;
  }
  (*arr)[(*n)++] = p;
}

static void *ob_alloc(ob *b, size_t bytes) {
  void *p = nas_calloc(1, bytes ? bytes : 1);
  if (!p) longjmp(b->oom, 1);
  grow(b, &b->own, &b->n_own, &b->cap_own, p);
  return p;
}

static char *ob_strf(ob *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ob_strf(ob *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = ob_alloc(b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- nodes and attributes ------------------------------------------------------------------ */

#define MAX_ATTR 8

static Onnx__NodeProto *ob_node(ob *b, const char *op, const char *out, int n_in, ...) {
  Onnx__NodeProto *nd = ob_alloc(b, sizeof *nd);
  onnx__node_proto__init(nd);
  nd->op_type = (char *)op;
  nd->name = (char *)out;
  nd->input = ob_alloc(b, sizeof(char *) * (size_t)(n_in > 0 ? n_in : 1));
  va_list ap;
  va_start(ap, n_in);
  for (int i = 0; i < n_in; i++) nd->input[i] = (char *)va_arg(ap, const char *);
  va_end(ap);
  nd->n_input = (size_t)n_in;
  nd->output = ob_alloc(b, sizeof(char *));
  nd->output[0] = (char *)out;
  nd->n_output = 1;
  nd->attribute = ob_alloc(b, sizeof(Onnx__AttributeProto *) * MAX_ATTR);
  grow(b, (void ***)&b->nodes, &b->n_nodes, &b->cap_nodes, nd);
  return nd;
}

static Onnx__AttributeProto *ob_attr(ob *b, Onnx__NodeProto *nd, const char *name) {
  Onnx__AttributeProto *a = ob_alloc(b, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = (char *)name;
  nd->attribute[nd->n_attribute++] = a; /* at most MAX_ATTR per node below */
  return a;
}

static void attr_i(ob *b, Onnx__NodeProto *nd, const char *name, int64_t v) {
  Onnx__AttributeProto *a = ob_attr(b, nd, name);
  a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = 1, a->i = v;
}

static void attr_f(ob *b, Onnx__NodeProto *nd, const char *name, float v) {
  Onnx__AttributeProto *a = ob_attr(b, nd, name);
  a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  a->has_f = 1, a->f = v;
}

static void attr_ints(ob *b, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v) {
  Onnx__AttributeProto *a = ob_attr(b, nd, name);
  a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  a->ints = ob_alloc(b, sizeof(int64_t) * (size_t)n);
  memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
  a->n_ints = (size_t)n;
}

/* ---- initializers -------------------------------------------------------------------------- */

/* A constant tensor; data_type ONNX's. Returns it so the caller fills the payload. */
static Onnx__TensorProto *ob_tensor(ob *b, const char *name, int dtype, int nd, const int64_t *dims) {
  Onnx__TensorProto *t = ob_alloc(b, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = (char *)name;
  t->has_data_type = 1, t->data_type = dtype;
  t->dims = ob_alloc(b, sizeof(int64_t) * (size_t)(nd > 0 ? nd : 1));
  for (int i = 0; i < nd; i++) t->dims[i] = dims[i];
  t->n_dims = (size_t)nd;
  grow(b, (void ***)&b->inits, &b->n_inits, &b->cap_inits, t);
  return t;
}

static size_t dims_numel(int nd, const int64_t *dims) {
  size_t n = 1;
  for (int i = 0; i < nd; i++) n *= (size_t)dims[i];
  return n;
}

static const char *init_f32(ob *b, const char *name, int nd, const int64_t *dims, const float *v) {
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, nd, dims);
  size_t n = dims_numel(nd, dims);
  t->float_data = ob_alloc(b, sizeof(float) * n);
  memcpy(t->float_data, v, sizeof(float) * n);
  t->n_float_data = n;
  return name;
}

static const char *init_i8(ob *b, const char *name, int nd, const int64_t *dims, const int8_t *v) {
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, nd, dims);
  size_t n = dims_numel(nd, dims);
  t->has_raw_data = 1;
  t->raw_data.data = ob_alloc(b, n);
  memcpy(t->raw_data.data, v, n);
  t->raw_data.len = n;
  return name;
}

static const char *init_i32(ob *b, const char *name, int nd, const int64_t *dims, const int32_t *v) {
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT32, nd, dims);
  size_t n = dims_numel(nd, dims);
  t->int32_data = ob_alloc(b, sizeof(int32_t) * n);
  memcpy(t->int32_data, v, sizeof(int32_t) * n);
  t->n_int32_data = n;
  return name;
}

static const char *init_i64(ob *b, const char *name, int n, const int64_t *v) {
  const int64_t d[1] = {n};
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, d);
  t->int64_data = ob_alloc(b, sizeof(int64_t) * (size_t)n);
  memcpy(t->int64_data, v, sizeof(int64_t) * (size_t)n);
  t->n_int64_data = (size_t)n;
  return name;
}

/* ---- graph inputs/outputs ------------------------------------------------------------------ */

/* A float tensor value info; dims < 0 is the symbolic batch "N". */
static Onnx__ValueInfoProto *value_info(ob *b, const char *name, int nd, const int64_t *dims) {
  Onnx__ValueInfoProto *v = ob_alloc(b, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = (char *)name;
  Onnx__TypeProto *tp = ob_alloc(b, sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = ob_alloc(b, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  Onnx__TensorShapeProto *sh = ob_alloc(b, sizeof *sh);
  onnx__tensor_shape_proto__init(sh);
  sh->dim = ob_alloc(b, sizeof(Onnx__TensorShapeProto__Dimension *) * (size_t)nd);
  for (int i = 0; i < nd; i++) {
    Onnx__TensorShapeProto__Dimension *d = ob_alloc(b, sizeof *d);
    onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] < 0) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = "N";
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i];
    }
    sh->dim[i] = d;
  }
  sh->n_dim = (size_t)nd;
  tt->shape = sh;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  v->type = tp;
  return v;
}

/* ---- lowering -------------------------------------------------------------------------------- */

typedef struct lw {
  ob *b;
  const nas_net *net;
  const nas_calib *c;     /* NULL: float */
  nas_err *e;
  const char **tname;     /* [g->n] ONNX tensor holding each node's value */
  int *layout;            /* [g->n] LAY_* */
  float *qs;              /* [g->n] QDQ: scale of the node's value (input's for pools) */
  int32_t *qz;            /* [g->n] its zero point */
  unsigned char *fused;   /* [g->n] batch-norms folded into their conv */
} lw;

/* "layer 3 (conv)" context for errors, from the node name "l3.conv...". */
static int lerr(lw *L, int node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lerr(lw *L, int node, const char *fmt, ...) {
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *nm = L->net->g->nodes[node].name;
  int li = -1;
  if (nm[0] == 'l') li = atoi(nm + 1);
  if (li >= 0 && li < L->net->n_layers)
    return nas_errf(L->e, NAS_EINVAL, "onnx export: layer %d (%s): %s", li, L->net->layers[li].op,
                    msg);
  return nas_errf(L->e, NAS_EINVAL, "onnx export: node '%s': %s", nm, msg);
}

/* QuantizeLinear -> DequantizeLinear of node i's current tensor with (scale, zp). */
static void qdq(lw *L, int i, float scale, int32_t zp) {
  ob *b = L->b;
  const char *t = L->tname[i];
  const char *sn = init_f32(b, ob_strf(b, "%s.scale", t), 0, NULL, &scale);
  int8_t z = (int8_t)zp;
  const char *zn = init_i8(b, ob_strf(b, "%s.zero_point", t), 0, NULL, &z);
  char *q = ob_strf(b, "%s.q", t), *dq = ob_strf(b, "%s.dq", t);
  ob_node(b, "QuantizeLinear", q, 3, t, sn, zn);
  ob_node(b, "DequantizeLinear", dq, 3, q, sn, zn);
  L->tname[i] = dq;
  L->qs[i] = scale, L->qz[i] = zp;
}

/* At a quantisation point (QDQ only): Q/DQ with the calibrated range. */
static void point_qdq(lw *L, int i) {
  if (!L->c || !L->c->point[i]) return;
  float s;
  int32_t z;
  nas_q_choose(L->c->lo[i], L->c->hi[i], &s, &z);
  qdq(L, i, s, z);
}

/* Activation (Relu or Clip(0,6)) on node i's tensor; name suffix from the node. */
static void emit_act(lw *L, int i, int act) {
  ob *b = L->b;
  if (act == NAS_ACT_NONE) return;
  char *out = ob_strf(b, "%s.%s", L->net->g->nodes[i].name, act == NAS_ACT_RELU ? "relu" : "relu6");
  if (act == NAS_ACT_RELU) {
    ob_node(b, "Relu", out, 1, L->tname[i]);
  } else {
    if (!b->clip_min) {
      float lo = 0.0f, hi = 6.0f;
      b->clip_min = init_f32(b, "clip.min", 0, NULL, &lo);
      b->clip_max = init_f32(b, "clip.max", 0, NULL, &hi);
    }
    ob_node(b, "Clip", out, 3, L->tname[i], b->clip_min, b->clip_max);
  }
  L->tname[i] = out;
}

/* Pads [top,left,bottom,right] of the TF rule (the extra one after). */
static void tf_pads(int ih, int iw, int kh, int kw, int sh, int sw, int padding, int64_t pads[4]) {
  int in[2] = {ih, iw}, k[2] = {kh, kw}, s[2] = {sh, sw};
  for (int a = 0; a < 2; a++) {
    int before = 0, out = nas_conv_out_size(in[a], k[a], s[a], padding, &before), total = 0;
    if (padding == NAS_PAD_SAME) {
      total = (out - 1) * s[a] + k[a] - in[a];
      if (total < 0) total = 0;
    } else {
      before = 0;
    }
    pads[a] = before, pads[a + 2] = total - before;
  }
}

/* A flat [N,K] tensor of node x's value in the engine's NHWC order. */
static const char *flat_of(lw *L, int x, const char *name) {
  ob *b = L->b;
  const char *t = L->tname[x];
  if (L->layout[x] == LAY_FLAT) return t;
  const nas_node *n = &L->net->g->nodes[x];
  if (n->shape.d[1] * n->shape.d[2] > 1) {
    static const int64_t perm[4] = {0, 2, 3, 1};
    char *tn = ob_strf(b, "%s.nhwc", name);
    attr_ints(b, ob_node(b, "Transpose", tn, 1, t), "perm", 4, perm);
    t = tn;
  }
  char *fl = ob_strf(b, "%s.flat", name);
  attr_i(b, ob_node(b, "Flatten", fl, 1, t), "axis", 1);
  return fl;
}

static int next_bn(const nas_graph *g, int i) {
  for (int j = i + 1; j < g->n; j++) {
    const nas_node *n = &g->nodes[j];
    if (n->kind == NAS_NODE_OP && n->op == NAS_OP_BATCHNORM && n->in[0] == i) return j;
  }
  return -1;
}

/* A Winograd conv (WINO_OUT i): its layer input node, spatial weights node and WINO_IN node
 * (the padding); a flex layer is refused naming its layer. */
static int wino_parts(lw *L, int i, int *x, int *w, int *vin) {
  const nas_graph *g = L->net->g;
  const nas_node *mul = &g->nodes[g->nodes[i].in[0]];
  const nas_node *wt = &g->nodes[mul->in[1]];
  *vin = mul->in[0], *x = g->nodes[*vin].in[0], *w = wt->in[0];
  if (g->nodes[wt->in[1]].kind == NAS_NODE_PARAM || g->nodes[g->nodes[*vin].in[1]].kind == NAS_NODE_PARAM)
    return lerr(L, i, "a flex Winograd layer learns its own transforms, so its arithmetic is not a "
                      "convolution and no ONNX operator computes it (use --format c, or train it "
                      "with flex false)");
  return NAS_OK;
}

static int lower_conv(lw *L, int i) {
  ob *b = L->b;
  const nas_graph *g = L->net->g;
  const nas_node *n = &g->nodes[i];
  int xi = n->in[0], wi = n->op == NAS_OP_WINO_OUT ? -1 : nas_prune_source(g, n->in[1]), vin = -1;
  if (n->op == NAS_OP_WINO_OUT && wino_parts(L, i, &xi, &wi, &vin)) return L->e->code;
  /* a static Winograd layer is written as the standard convolution it approximates: standard
     runtimes compute it directly (their int8 result differs from the Winograd-aware one);
     pruned weights are read behind their masks (train/prune.h) */
  const nas_op_params pw = {.sh = 1, .sw = 1, .padding = vin >= 0 ? g->nodes[vin].p.padding : 0};
  const nas_op_params *np = vin >= 0 ? &pw : &n->p;
  const nas_node *x = &g->nodes[xi], *w = &g->nodes[wi];
  const int dw = n->op == NAS_OP_DWCONV2D;
  const int kh = dw ? w->shape.d[0] : w->shape.d[1], kw = dw ? w->shape.d[1] : w->shape.d[2];
  const int cin = x->shape.d[3], co = dw ? w->shape.d[2] : w->shape.d[0];
  const int per = dw ? kh * kw : kh * kw * cin;
  const int bn = next_bn(g, i);
  if (L->layout[xi] != LAY_NCHW) return lerr(L, i, "convolution of a flat input");
  size_t nw = nas_shape_numel(&w->shape);
  float *wf = ob_alloc(b, sizeof(float) * nw), *wo = ob_alloc(b, sizeof(float) * nw);
  float *bias = ob_alloc(b, sizeof(float) * (size_t)co);
  if (nas_fold_bn(g, i, bn, wf, bias, L->e)) return L->e->code;
  if (bn >= 0) L->fused[bn] = 1;
  /* to OIHW: conv [O,KH,KW,I] -> [O,I,KH,KW]; depthwise [KH,KW,C] -> [C,1,KH,KW] */
  for (int o = 0; o < co; o++)
    for (int y = 0; y < kh; y++)
      for (int xx = 0; xx < kw; xx++) {
        if (dw) {
          wo[((size_t)o * kh + y) * kw + xx] = wf[((size_t)y * kw + xx) * co + o];
        } else {
          for (int ci = 0; ci < cin; ci++)
            wo[(((size_t)o * cin + ci) * kh + y) * kw + xx] =
                wf[(((size_t)o * kh + y) * kw + xx) * cin + ci];
        }
      }
  int64_t wd[4] = {co, dw ? 1 : cin, kh, kw}, bd[1] = {co};
  const char *wn, *bname;
  if (!L->c) {
    wn = init_f32(b, ob_strf(b, "%s.w", n->name), 4, wd, wo);
    bname = init_f32(b, ob_strf(b, "%s.b", n->name), 1, bd, bias);
  } else {
    /* per output channel int8 weights (channel o's elements are contiguous in OIHW) */
    int8_t *q = ob_alloc(b, nw);
    float *ws = ob_alloc(b, sizeof(float) * (size_t)co), *bs = ob_alloc(b, sizeof(float) * (size_t)co);
    int32_t *qb = ob_alloc(b, sizeof(int32_t) * (size_t)co);
    int8_t *zw = ob_alloc(b, (size_t)co);
    int32_t *zb = ob_alloc(b, sizeof(int32_t) * (size_t)co);
    nas_q_weights(wo, co, per, per, 1, q, ws);
    const float in_s = L->qs[xi];
    nas_q_bias(bias, co, in_s, ws, qb);
    for (int o = 0; o < co; o++) bs[o] = in_s * ws[o];
    const char *wq = init_i8(b, ob_strf(b, "%s.w.q", n->name), 4, wd, q);
    const char *wsn = init_f32(b, ob_strf(b, "%s.w.scale", n->name), 1, bd, ws);
    const char *wzn = init_i8(b, ob_strf(b, "%s.w.zero_point", n->name), 1, bd, zw);
    wn = ob_strf(b, "%s.w", n->name);
    attr_i(b, ob_node(b, "DequantizeLinear", wn, 3, wq, wsn, wzn), "axis", 0);
    const char *bq = init_i32(b, ob_strf(b, "%s.b.q", n->name), 1, bd, qb);
    const char *bsn = init_f32(b, ob_strf(b, "%s.b.scale", n->name), 1, bd, bs);
    const char *bzn = init_i32(b, ob_strf(b, "%s.b.zero_point", n->name), 1, bd, zb);
    bname = ob_strf(b, "%s.b", n->name);
    attr_i(b, ob_node(b, "DequantizeLinear", bname, 3, bq, bsn, bzn), "axis", 0);
  }
  int64_t pads[4], k[2] = {kh, kw}, s[2] = {np->sh, np->sw};
  tf_pads(x->shape.d[1], x->shape.d[2], kh, kw, np->sh, np->sw, np->padding, pads);
  char *out = ob_strf(b, "%s", n->name);
  Onnx__NodeProto *cv = ob_node(b, "Conv", out, 3, L->tname[xi], wn, bname);
  attr_ints(b, cv, "kernel_shape", 2, k);
  attr_ints(b, cv, "strides", 2, s);
  attr_ints(b, cv, "pads", 4, pads);
  attr_i(b, cv, "group", dw ? co : 1);
  L->tname[i] = out, L->layout[i] = LAY_NCHW;
  return NAS_OK;
}

static int lower_dense(lw *L, int i) {
  ob *b = L->b;
  const nas_graph *g = L->net->g;
  const nas_node *n = &g->nodes[i], *w = &g->nodes[nas_prune_source(g, n->in[1])];
  const int M = w->shape.d[0], K = w->shape.d[1];
  const char *a = flat_of(L, n->in[0], n->name);
  int64_t wd[2] = {M, K}, bd[1] = {M};
  float *bias = ob_alloc(b, sizeof(float) * (size_t)M);
  if (n->n_in > 2) memcpy(bias, g->nodes[n->in[2]].val, sizeof(float) * (size_t)M);
  const char *wn, *bname = NULL;
  if (!L->c) {
    wn = init_f32(b, ob_strf(b, "%s.w", n->name), 2, wd, w->val);
    if (n->n_in > 2) bname = init_f32(b, ob_strf(b, "%s.b", n->name), 1, bd, bias);
  } else {
    /* per-tensor int8 weights, as the int8 deployment's FULLY_CONNECTED */
    size_t nw = (size_t)M * K;
    int8_t *q = ob_alloc(b, nw), zw = 0;
    float ws, *wsv = ob_alloc(b, sizeof(float) * (size_t)M);
    nas_q_weights(w->val, 1, (int)nw, 0, 1, q, &ws);
    const char *wq = init_i8(b, ob_strf(b, "%s.w.q", n->name), 2, wd, q);
    const char *wsn = init_f32(b, ob_strf(b, "%s.w.scale", n->name), 0, NULL, &ws);
    const char *wzn = init_i8(b, ob_strf(b, "%s.w.zero_point", n->name), 0, NULL, &zw);
    wn = ob_strf(b, "%s.w", n->name);
    ob_node(b, "DequantizeLinear", wn, 3, wq, wsn, wzn);
    if (n->n_in > 2) {
      const float in_s = L->qs[n->in[0]];
      int32_t *qb = ob_alloc(b, sizeof(int32_t) * (size_t)M), zb = 0;
      for (int o = 0; o < M; o++) wsv[o] = ws;
      nas_q_bias(bias, M, in_s, wsv, qb);
      float bscale = in_s * ws;
      const char *bq = init_i32(b, ob_strf(b, "%s.b.q", n->name), 1, bd, qb);
      const char *bsn = init_f32(b, ob_strf(b, "%s.b.scale", n->name), 0, NULL, &bscale);
      const char *bzn = init_i32(b, ob_strf(b, "%s.b.zero_point", n->name), 0, NULL, &zb);
      bname = ob_strf(b, "%s.b", n->name);
      ob_node(b, "DequantizeLinear", bname, 3, bq, bsn, bzn);
    }
  }
  char *out = ob_strf(b, "%s", n->name);
  Onnx__NodeProto *gm = bname ? ob_node(b, "Gemm", out, 3, a, wn, bname) : ob_node(b, "Gemm", out, 2, a, wn);
  attr_i(b, gm, "transB", 1);
  L->tname[i] = out, L->layout[i] = LAY_FLAT;
  return NAS_OK;
}

/* A recurrent layer's weight [1, G*H, cols] with PyTorch's gate blocks reordered to ONNX's
 * (order[k]: the PyTorch block of ONNX block k); QDQ: int8 per tensor through
 * DequantizeLinear, as the int8 deployment quantises each gate's block (here one scale for the
 * whole matrix: ONNX's LSTM/GRU take one weight tensor). */
static const char *rnn_weight(lw *L, const nas_node *n, const char *part, const float *w, int G,
                              int H, int cols, const int *order) {
  ob *b = L->b;
  const int64_t d[3] = {1, (int64_t)G * H, cols};
  const size_t blk = (size_t)H * cols;
  float *r = ob_alloc(b, sizeof(float) * blk * (size_t)G);
  for (int k = 0; k < G; k++) memcpy(r + k * blk, w + (size_t)order[k] * blk, sizeof(float) * blk);
  if (!L->c) return init_f32(b, ob_strf(b, "%s.%s", n->name, part), 3, d, r);
  int8_t *q = ob_alloc(b, blk * (size_t)G), z = 0;
  float ws;
  nas_q_weights(r, 1, (int)(blk * (size_t)G), 0, 1, q, &ws);
  const char *wq = init_i8(b, ob_strf(b, "%s.%s.q", n->name, part), 3, d, q);
  const char *sn = init_f32(b, ob_strf(b, "%s.%s.scale", n->name, part), 0, NULL, &ws);
  const char *zn = init_i8(b, ob_strf(b, "%s.%s.zero_point", n->name, part), 0, NULL, &z);
  char *out = ob_strf(b, "%s.%s", n->name, part);
  ob_node(b, "DequantizeLinear", out, 3, wq, sn, zn);
  return out;
}

/* LSTM / GRU: ONNX's LSTM (gates i,o,f,c) or GRU (z,r,h, linear_before_reset = 1, PyTorch's
 * formulation) over the sequence transposed to [T,N,F]; the output is Y [T,1,N,H] made
 * [N,T,H] (return_sequences) or Y_h [1,N,H] made [N,H]. QDQ: the weights as above and the
 * output on the hidden state's calibrated range (the cell's int16 internals have no ONNX QDQ
 * form; onnxruntime runs the cell in float). */
static int lower_rnn(lw *L, int i) {
  ob *b = L->b;
  const nas_graph *g = L->net->g;
  const nas_node *n = &g->nodes[i], *x = &g->nodes[n->in[0]], *wh = &g->nodes[n->in[2]];
  if (L->layout[n->in[0]] != LAY_SEQ) return lerr(L, i, "the input is not a sequence");
  const int lstm = n->op == NAS_OP_LSTM, G = lstm ? 4 : 3, H = wh->shape.d[1], F = x->shape.d[2];
  static const int lstm_order[4] = {0, 3, 1, 2}, gru_order[3] = {1, 0, 2};
  const int *order = lstm ? lstm_order : gru_order;
  const char *W = rnn_weight(L, n, "W", g->nodes[n->in[1]].val, G, H, F, order);
  const char *R = rnn_weight(L, n, "R", wh->val, G, H, H, order);
  const int64_t bd[2] = {1, 2 * (int64_t)G * H};
  float *bias = ob_alloc(b, sizeof(float) * 2 * (size_t)G * H);
  for (int half = 0; half < 2; half++)
    for (int k = 0; k < G; k++)
      for (int j = 0; j < H; j++)
        bias[((size_t)half * G + k) * H + j] =
            n->n_in == 5 ? g->nodes[n->in[3 + half]].val[(size_t)order[k] * H + j] : 0.0f;
  const char *B = init_f32(b, ob_strf(b, "%s.B", n->name), 2, bd, bias);
  static const int64_t tnf[3] = {1, 0, 2};
  char *xt = ob_strf(b, "%s.x_tnf", n->name);
  attr_ints(b, ob_node(b, "Transpose", xt, 1, L->tname[n->in[0]]), "perm", 3, tnf);
  char *y = ob_strf(b, "%s.Y", n->name), *yh = ob_strf(b, "%s.Y_h", n->name);
  Onnx__NodeProto *r = ob_node(b, lstm ? "LSTM" : "GRU", y, 4, xt, W, R, B);
  r->output = ob_alloc(b, sizeof(char *) * 2), r->n_output = 2;
  r->output[0] = y, r->output[1] = yh;
  attr_i(b, r, "hidden_size", H);
  if (!lstm) attr_i(b, r, "linear_before_reset", 1);
  const int64_t ax1[1] = {1}, ax0[1] = {0};
  char *out = ob_strf(b, "%s", n->name);
  if (n->p.kh) { /* [T,1,N,H] -> [T,N,H] -> [N,T,H] */
    char *sq = ob_strf(b, "%s.Y_tnh", n->name);
    ob_node(b, "Squeeze", sq, 2, y, init_i64(b, ob_strf(b, "%s.axes", sq), 1, ax1));
    attr_ints(b, ob_node(b, "Transpose", out, 1, sq), "perm", 3, tnf);
    L->layout[i] = LAY_SEQ;
  } else { /* Y_h [1,N,H] -> [N,H] */
    ob_node(b, "Squeeze", out, 2, yh, init_i64(b, ob_strf(b, "%s.axes", out), 1, ax0));
    L->layout[i] = LAY_FLAT;
  }
  L->tname[i] = out;
  if (L->c && L->c->sub && L->c->sub[i] >= 0) {
    const int k = L->c->sub[i] + (lstm ? NAS_LSTM_P_H : NAS_GRU_P_H);
    float s;
    int32_t z;
    nas_q_choose(L->c->sub_lo[k], L->c->sub_hi[k], &s, &z);
    if (lstm) { /* symmetric, as the int8 LSTM's hidden state */
      const float m = fmaxf(fabsf(L->c->sub_lo[k]), fabsf(L->c->sub_hi[k]));
      s = m > 0 ? m / 127.0f : 1.0f / 127.0f, z = 0;
    }
    qdq(L, i, s, z);
  }
  return NAS_OK;
}

/* An [N,H,W,C] activation (NCHW here) read as the sequence [N,T=H,F=W*C]. */
static void to_seq(lw *L, int i, int x) {
  ob *b = L->b;
  const nas_node *xn = &L->net->g->nodes[x];
  static const int64_t nhwc[4] = {0, 2, 3, 1};
  char *t = ob_strf(b, "%s.nhwc", L->net->g->nodes[i].name), *out = ob_strf(b, "%s", L->net->g->nodes[i].name);
  attr_ints(b, ob_node(b, "Transpose", t, 1, L->tname[x]), "perm", 4, nhwc);
  const int64_t shape[3] = {0, xn->shape.d[1], (int64_t)xn->shape.d[2] * xn->shape.d[3]};
  ob_node(b, "Reshape", out, 2, t, init_i64(b, ob_strf(b, "%s.shape", out), 3, shape));
  L->tname[i] = out, L->layout[i] = LAY_SEQ;
}

static int lower_node(lw *L, int i) {
  ob *b = L->b;
  const nas_graph *g = L->net->g;
  const nas_node *n = &g->nodes[i];
  const int x = n->in[0];
  switch (n->op) {
    case NAS_OP_CONV2D:
    case NAS_OP_DWCONV2D:
    case NAS_OP_WINO_OUT:
      if (lower_conv(L, i)) return L->e->code;
      break;
    case NAS_OP_WINO_WT:
    case NAS_OP_WINO_IN:
    case NAS_OP_WINO_MUL: return NAS_OK; /* written with their WINO_OUT as one Conv */
    case NAS_OP_DENSE:
      if (lower_dense(L, i)) return L->e->code;
      break;
    case NAS_OP_BATCHNORM:
      L->layout[i] = L->layout[x];
      if (L->fused[i]) {
        L->tname[i] = L->tname[x];
      } else {
        const int C = g->nodes[n->in[1]].shape.d[0];
        int64_t cd[1] = {C};
        const char *p[4];
        static const char *const part[4] = {"gamma", "beta", "mean", "var"};
        for (int k = 0; k < 4; k++)
          p[k] = init_f32(b, ob_strf(b, "%s.%s", n->name, part[k]), 1, cd,
                          g->nodes[nas_prune_source(g, n->in[k + 1])].val);
        char *out = ob_strf(b, "%s", n->name);
        attr_f(b, ob_node(b, "BatchNormalization", out, 5, L->tname[x], p[0], p[1], p[2], p[3]),
               "epsilon", n->p.eps > 0 ? n->p.eps : 1e-5f);
        L->tname[i] = out;
      }
      emit_act(L, i, n->p.act);
      break;
    case NAS_OP_RELU:
    case NAS_OP_RELU6:
      L->tname[i] = L->tname[x], L->layout[i] = L->layout[x];
      emit_act(L, i, n->op == NAS_OP_RELU ? NAS_ACT_RELU : NAS_ACT_RELU6);
      break;
    case NAS_OP_ADD: {
      if (L->layout[x] != L->layout[n->in[1]]) return lerr(L, i, "add of tensors of different layouts");
      char *out = ob_strf(b, "%s", n->name);
      ob_node(b, "Add", out, 2, L->tname[x], L->tname[n->in[1]]);
      L->tname[i] = out, L->layout[i] = L->layout[x];
      break;
    }
    case NAS_OP_MAXPOOL:
    case NAS_OP_AVGPOOL: {
      if (L->layout[x] != LAY_NCHW) return lerr(L, i, "pooling of a flat input");
      const nas_node *xn = &g->nodes[x];
      int64_t pads[4], k[2] = {n->p.kh, n->p.kw}, s[2] = {n->p.sh, n->p.sw};
      tf_pads(xn->shape.d[1], xn->shape.d[2], n->p.kh, n->p.kw, n->p.sh, n->p.sw, n->p.padding, pads);
      char *out = ob_strf(b, "%s", n->name);
      Onnx__NodeProto *pl = ob_node(b, n->op == NAS_OP_MAXPOOL ? "MaxPool" : "AveragePool", out, 1,
                                    L->tname[x]);
      attr_ints(b, pl, "kernel_shape", 2, k);
      attr_ints(b, pl, "strides", 2, s);
      attr_ints(b, pl, "pads", 4, pads);
      if (n->op == NAS_OP_AVGPOOL) attr_i(b, pl, "count_include_pad", 0);
      L->tname[i] = out, L->layout[i] = LAY_NCHW;
      L->qs[i] = L->qs[x], L->qz[i] = L->qz[x];
      /* the int8 average pool rounds to its input's grid */
      if (L->c && n->op == NAS_OP_AVGPOOL) qdq(L, i, L->qs[x], L->qz[x]);
      break;
    }
    case NAS_OP_GAP: {
      if (L->layout[x] != LAY_NCHW) return lerr(L, i, "global pooling of a flat input");
      char *gp = ob_strf(b, "%s.pool", n->name), *out = ob_strf(b, "%s", n->name);
      ob_node(b, "GlobalAveragePool", gp, 1, L->tname[x]);
      attr_i(b, ob_node(b, "Flatten", out, 1, gp), "axis", 1);
      L->tname[i] = out, L->layout[i] = LAY_FLAT;
      if (L->c) qdq(L, i, L->qs[x], L->qz[x]);
      break;
    }
    case NAS_OP_RESHAPE:
      if (n->p.nd == 2 && L->layout[x] == LAY_NCHW) to_seq(L, i, x); /* a recurrent input */
      else if (n->p.nd != 1 || L->layout[x] == LAY_SEQ)
        return lerr(L, i, "reshape to a %d-D sample is not supported", n->p.nd);
      else L->tname[i] = flat_of(L, x, n->name), L->layout[i] = LAY_FLAT;
      L->qs[i] = L->qs[x], L->qz[i] = L->qz[x];
      break;
    case NAS_OP_LSTM:
    case NAS_OP_GRU:
      if (lower_rnn(L, i)) return L->e->code;
      break;
    case NAS_OP_DROPOUT:
      L->tname[i] = L->tname[x], L->layout[i] = L->layout[x];
      L->qs[i] = L->qs[x], L->qz[i] = L->qz[x];
      break;
    default:
      return lerr(L, i, "op %s is not supported by the ONNX export yet", nas_op_name(n->op));
  }
  point_qdq(L, i);
  return NAS_OK;
}

static int build(ob *b, const nas_net *net, const nas_calib *c, uint8_t **buf, size_t *len,
                 nas_err *e) {
  const nas_graph *g = net->g;
  lw L = {.b = b, .net = net, .c = c, .e = e};
  L.tname = ob_alloc(b, sizeof(char *) * (size_t)g->n);
  L.layout = ob_alloc(b, sizeof(int) * (size_t)g->n);
  L.qs = ob_alloc(b, sizeof(float) * (size_t)g->n);
  L.qz = ob_alloc(b, sizeof(int32_t) * (size_t)g->n);
  L.fused = ob_alloc(b, (size_t)g->n);
  if (c && c->n != g->n)
    return nas_errf(e, NAS_EINVAL, "onnx export: the calibration has %d nodes, the network %d", c->n, g->n);

  int64_t in_dims[4] = {-1, net->in_h, net->in_w, net->in_c};
  L.tname[net->input] = "input";
  point_qdq(&L, net->input); /* QDQ: quantise the NHWC input */
  static const int64_t to_nchw[4] = {0, 3, 1, 2};
  attr_ints(b, ob_node(b, "Transpose", "input.nchw", 1, L.tname[net->input]), "perm", 4, to_nchw);
  L.tname[net->input] = "input.nchw", L.layout[net->input] = LAY_NCHW;

  for (int i = 0; i < g->n && i <= net->logits; i++) {
    const nas_node *n = &g->nodes[i];
    if (n->kind != NAS_NODE_OP || nas_prune_is_mask_op(g, i)) continue;
    if (lower_node(&L, i)) return e->code;
  }
  /* the logits' producer writes the graph output "logits" */
  const char *lt = L.tname[net->logits];
  for (size_t k = b->n_nodes; k-- > 0;)
    if (!strcmp(b->nodes[k]->output[0], lt)) {
      b->nodes[k]->output[0] = "logits";
      break;
    }
  if (L.layout[net->logits] != LAY_FLAT) return lerr(&L, net->logits, "the logits are not flat");

  Onnx__GraphProto *gp = ob_alloc(b, sizeof *gp);
  onnx__graph_proto__init(gp);
  gp->name = "nas";
  gp->node = b->nodes, gp->n_node = b->n_nodes;
  gp->initializer = b->inits, gp->n_initializer = b->n_inits;
  int64_t out_dims[2] = {-1, net->classes};
  gp->input = ob_alloc(b, sizeof(Onnx__ValueInfoProto *));
  gp->input[0] = value_info(b, "input", 4, in_dims), gp->n_input = 1;
  gp->output = ob_alloc(b, sizeof(Onnx__ValueInfoProto *));
  gp->output[0] = value_info(b, "logits", 2, out_dims), gp->n_output = 1;

  Onnx__OperatorSetIdProto *os = ob_alloc(b, sizeof *os);
  onnx__operator_set_id_proto__init(os);
  os->domain = "", os->has_version = 1, os->version = 13;
  Onnx__ModelProto m;
  onnx__model_proto__init(&m);
  m.has_ir_version = 1, m.ir_version = 8;
  m.opset_import = &os, m.n_opset_import = 1;
  m.producer_name = "nas", m.producer_version = "1";
  m.doc_string = c ? "nas export: QDQ int8 (NHWC input [N,H,W,C], logits [N,classes])"
                   : "nas export: float32 (NHWC input [N,H,W,C], logits [N,classes])";
  m.graph = gp;
  size_t sz = onnx__model_proto__get_packed_size(&m);
  uint8_t *out = nas_malloc(sz ? sz : 1);
  if (!out) return nas_errf(e, NAS_ENOMEM, "onnx export: out of memory");
  *len = onnx__model_proto__pack(&m, out);
  *buf = out;
  return NAS_OK;
}

int nas_onnx_export_mem(const nas_net *net, const nas_calib *c, uint8_t **buf, size_t *len,
                        nas_err *e) {
  *buf = NULL, *len = 0;
  ob *b = nas_calloc(1, sizeof *b);
  if (!b) return nas_errf(e, NAS_ENOMEM, "onnx export: out of memory");
  int rc;
  if (setjmp(b->oom)) {
    rc = nas_errf(e, NAS_ENOMEM, "onnx export: out of memory");
  } else {
    rc = build(b, net, c, buf, len, e);
  }
  ob_free_all(b);
  free(b);
  return rc;
}

static int write_file(const char *path, const uint8_t *buf, size_t len, nas_err *e) {
  FILE *f = fopen(path, "wb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot write: %s", path, strerror(errno));
  size_t w = fwrite(buf, 1, len, f);
  int bad = w != len || ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad) return nas_errf(e, NAS_EIO, "%s: write error", path);
  return NAS_OK;
}

static int export_file(const nas_net *net, const nas_calib *c, const char *path, nas_err *e) {
  uint8_t *buf;
  size_t len;
  int rc = nas_onnx_export_mem(net, c, &buf, &len, e);
  if (rc == NAS_OK) rc = write_file(path, buf, len, e);
  free(buf);
  return rc;
}

int nas_onnx_export_float(const nas_net *net, const char *path, nas_err *e) {
  return export_file(net, NULL, path, e);
}

int nas_onnx_export_qdq(const nas_net *net, const nas_calib *c, const char *path, nas_err *e) {
  if (!c) return nas_errf(e, NAS_EINVAL, "onnx export: the QDQ variant needs a calibration");
  return export_file(net, c, path, e);
}
