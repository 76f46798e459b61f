/* deploy/graph8.c: the int8 graph's bookkeeping: free, names, shape/type validation of every
 * operator (so kernels run unchecked), and whole-graph execution in a planned arena. */
#include "deploy/graph8.h"
#include "core/alloc.h"
#include "deploy/rnn8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nas_g8_graph_free(nas_g8_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->ntensors && g->tensors; i++) {
    nas_g8_tensor *t = &g->tensors[i];
    free(t->name);
    free(t->scale);
    free(t->zero_point);
    free(t->data);
  }
  free(g->tensors);
  free(g->ops);
  memset(g, 0, sizeof *g);
}

size_t nas_g8_numel(const nas_g8_tensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->dims[i];
  return n;
}

size_t nas_g8_tensor_bytes(const nas_g8_tensor *t) {
  return nas_g8_numel(t) * (t->type == NAS_G8_INT32 ? 4 : t->type == NAS_G8_INT16 ? 2 : 1);
}

/* TFLite BuiltinOperator names, by code. */
static const char *const OP_NAMES[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC",
    "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE",
    "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS",
    "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
    "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX",
    "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX",
    "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT",
    "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL",
    "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT",
    "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT",
    "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL",
    "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE",
    "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS",
    "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG",
    "ROUND", "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL"};

const char *nas_g8_op_name(int code) {
  if (code == NAS_G8_WINOGRAD) return "WINOGRAD_CONV_2D";
  if (code < 0 || code >= (int)(sizeof OP_NAMES / sizeof OP_NAMES[0])) return NULL;
  return OP_NAMES[code];
}

const char *nas_g8_op_short(int kind) {
  switch (kind) {
    case NAS_G8_CONV_2D: return "conv2d";
    case NAS_G8_DEPTHWISE_CONV_2D: return "dwconv2d";
    case NAS_G8_FULLY_CONNECTED: return "fc";
    case NAS_G8_AVERAGE_POOL_2D: return "avgpool";
    case NAS_G8_MAX_POOL_2D: return "maxpool";
    case NAS_G8_ADD: return "add";
    case NAS_G8_RESHAPE: return "reshape";
    case NAS_G8_SOFTMAX: return "softmax";
    case NAS_G8_QUANTIZE: return "quantize";
    case NAS_G8_LOGISTIC: return "logistic";
    case NAS_G8_TANH: return "tanh";
    case NAS_G8_MUL: return "mul";
    case NAS_G8_SUB: return "sub";
    case NAS_G8_STRIDED_SLICE: return "slice";
    case NAS_G8_CONCATENATION: return "concat";
    case NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM: return "lstm";
    default: return "?";
  }
}

const char *nas_g8_act_name(int act) {
  switch (act) {
    case NAS_G8_ACT_NONE: return "none";
    case NAS_G8_ACT_RELU: return "relu";
    case NAS_G8_ACT_RELU_N1_TO_1: return "relu_n1_to_1";
    case NAS_G8_ACT_RELU6: return "relu6";
    case NAS_G8_ACT_TANH: return "tanh";
    default: return "?";
  }
}

/* ---- validation ------------------------------------------------------------------------ */

static void shape_str(const int *d, int nd, char *buf, size_t cap) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, cap - k, "[");
  for (int i = 0; i < nd && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? "," : "", d[i]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Output size along one axis with TFLite's rule. */
static int out_size(int pad, int in, int filter, int stride, int dil) {
  int eff = (filter - 1) * dil + 1;
  if (pad == NAS_G8_PAD_SAME) return (in + stride - 1) / stride;
  return (in + stride - eff) / stride;
}

#define OPFAIL(...) return opfail(e, i, op, __VA_ARGS__)

static int opfail(nas_err *e, int i, const nas_g8_op *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int opfail(nas_err *e, int i, const nas_g8_op *op, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return nas_errf(e, NAS_EINVAL, "operator %d (%s): %s", i, nas_g8_op_name(op->kind), msg);
}

static int same_q(const nas_g8_tensor *a, const nas_g8_tensor *b) {
  return a->scale[0] == b->scale[0] && a->zero_point[0] == b->zero_point[0];
}

/* The kernels accumulate in int32, as TFLite Micro does: the largest |sum| any input can give,
 * sum_k |w_k - w_zp| * max|x - x_zp| + |bias|, must fit, per output channel (conv, depthwise
 * conv, fully connected). Returns the first channel that can overflow, or -1. */
static int acc_overflow(const nas_g8_graph *g, const nas_g8_op *op) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
  const nas_g8_tensor *b = op->nin > 2 && op->in[2] >= 0 ? &g->tensors[op->in[2]] : NULL;
  const int8_t *wd = w->data;
  const int32_t *bd = b ? b->data : NULL;
  int64_t xmax = 128 + (int64_t)(x->zero_point[0] < 0 ? -x->zero_point[0] : x->zero_point[0]);
  int64_t wz = w->zero_point[0];
  size_t nw = nas_g8_numel(w);
  int dw = op->kind == NAS_G8_DEPTHWISE_CONV_2D;
  int co = dw ? w->dims[3] : w->dims[0];
  size_t per = nw / (size_t)co; /* weights per output channel */
  for (int c = 0; c < co; c++) {
    int64_t s = bd ? (bd[c] < 0 ? -(int64_t)bd[c] : bd[c]) : 0;
    for (size_t k = 0; k < per; k++) {
      int64_t v = (int64_t)wd[dw ? k * (size_t)co + (size_t)c : (size_t)c * per + k] - wz;
      s += (v < 0 ? -v : v) * xmax;
    }
    if (s > INT32_MAX) return c;
  }
  return -1;
}

int nas_g8_validate(const nas_g8_graph *g, nas_err *e) {
  if (g->input < 0 || g->input >= g->ntensors || g->output < 0 || g->output >= g->ntensors)
    return nas_errf(e, NAS_EINVAL, "graph input/output tensor index out of range");
  /* Every activation an operator reads must be the graph input or written earlier. */
  unsigned char *ready = nas_calloc((size_t)g->ntensors + 1, 1);
  if (!ready) return nas_errf(e, NAS_ENOMEM, "out of memory");
  ready[g->input] = 1;
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    int bad = op->out < 0 || op->out >= g->ntensors;
    for (int k = 0; k < op->nin && !bad; k++) {
      int t = op->in[k];
      if (t < -1 || t >= g->ntensors) bad = 1;
      else if (t >= 0 && !g->tensors[t].data && !g->tensors[t].variable && !ready[t] &&
               !(op->kind == NAS_G8_WINOGRAD && k == 3)) { /* its scratch is written by it */
        free(ready);
        return nas_errf(e, NAS_EINVAL, "operator %d (%s): input tensor '%s' is read before any operator writes it",
                        i, nas_g8_op_name(op->kind), g->tensors[t].name);
      }
    }
    if (!bad) ready[op->out] = 1;
  }
  int out_ready = ready[g->output];
  free(ready);
  if (!out_ready) return nas_errf(e, NAS_EINVAL, "graph output '%s' is never written", g->tensors[g->output].name);
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    for (int k = 0; k < op->nin; k++)
      if (op->in[k] < -1 || op->in[k] >= g->ntensors) OPFAIL("input %d out of range", k);
    if (op->out < 0 || op->out >= g->ntensors) OPFAIL("output out of range");
    if (op->nin < 1 || op->in[0] < 0) OPFAIL("missing input");
    const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
    if (y->data) OPFAIL("output tensor '%s' is a constant", y->name);
    if (x->type != NAS_G8_INT8 || x->nq < 1)
      OPFAIL("input tensor '%s' is not int8 with quantisation", x->name);
    if (y->type != NAS_G8_INT8 || y->nq < 1)
      OPFAIL("output tensor '%s' is not int8 with quantisation", y->name);
    if (x->nq != 1) OPFAIL("input tensor '%s': per-channel activations are not supported", x->name);
    if (y->nq != 1) OPFAIL("output tensor '%s': per-channel activations are not supported", y->name);
    size_t nx = nas_g8_numel(x), ny = nas_g8_numel(y);
    char s1[96], s2[96];
    switch (op->kind) {
      case NAS_G8_CONV_2D:
      case NAS_G8_DEPTHWISE_CONV_2D: {
        int dw = op->kind == NAS_G8_DEPTHWISE_CONV_2D;
        if (op->nin < 2 || op->in[1] < 0) OPFAIL("missing filter");
        const nas_g8_tensor *w = &g->tensors[op->in[1]];
        if (x->ndim != 4 || y->ndim != 4 || w->ndim != 4) OPFAIL("input, filter and output must be 4-D");
        if (!w->data || w->type != NAS_G8_INT8) OPFAIL("filter '%s' must be constant int8", w->name);
        if (op->stride_w < 1 || op->stride_h < 1 || op->dil_w < 1 || op->dil_h < 1)
          OPFAIL("stride and dilation must be >= 1");
        int ci = x->dims[3], co = dw ? w->dims[3] : w->dims[0];
        if (dw) {
          if (w->dims[0] != 1) OPFAIL("depthwise filter '%s' must have first dimension 1", w->name);
          if (co % ci) OPFAIL("filter '%s': %d output channels not a multiple of %d input channels", w->name, co, ci);
        } else if (w->dims[3] != ci) {
          OPFAIL("%d input channels, filter '%s' expects %d", ci, w->name, w->dims[3]);
        }
        int qd = dw ? 3 : 0;
        if (w->nq != 1 && !(w->nq == co && w->qdim == qd))
          OPFAIL("filter '%s': %d scales for %d output channels (quantized_dimension %d)", w->name, w->nq, co, w->qdim);
        if (op->nin > 2 && op->in[2] >= 0) {
          const nas_g8_tensor *b = &g->tensors[op->in[2]];
          if (!b->data || b->type != NAS_G8_INT32 || nas_g8_numel(b) != (size_t)co)
            OPFAIL("bias '%s' must be constant int32 with %d values", b->name, co);
        }
        int kh = w->dims[1], kw = w->dims[2];
        int exp[4] = {x->dims[0], out_size(op->padding, x->dims[1], kh, op->stride_h, op->dil_h),
                      out_size(op->padding, x->dims[2], kw, op->stride_w, op->dil_w), co};
        if (memcmp(exp, y->dims, sizeof exp)) {
          shape_str(y->dims, 4, s1, sizeof s1), shape_str(exp, 4, s2, sizeof s2);
          OPFAIL("output '%s' has shape %s, expected %s", y->name, s1, s2);
        }
        if (exp[1] < 1 || exp[2] < 1) OPFAIL("empty output");
        break;
      }
      case NAS_G8_FULLY_CONNECTED: {
        if (op->nin < 2 || op->in[1] < 0) OPFAIL("missing weights");
        const nas_g8_tensor *w = &g->tensors[op->in[1]];
        if (!w->data || w->type != NAS_G8_INT8 || w->ndim != 2)
          OPFAIL("weights '%s' must be constant 2-D int8", w->name);
        int co = w->dims[0], d = w->dims[1];
        if (nx % (size_t)d) OPFAIL("input '%s' has %zu values, not a multiple of depth %d", x->name, nx, d);
        if (ny != nx / (size_t)d * (size_t)co) OPFAIL("output '%s' has %zu values, expected %zu", y->name, ny, nx / (size_t)d * (size_t)co);
        if (w->nq != 1 && !(w->nq == co && w->qdim == 0))
          OPFAIL("weights '%s': %d scales for %d outputs", w->name, w->nq, co);
        if (w->zero_point[0] != 0) OPFAIL("weights '%s': zero point must be 0", w->name);
        if (op->nin > 2 && op->in[2] >= 0) {
          const nas_g8_tensor *b = &g->tensors[op->in[2]];
          if (!b->data || b->type != NAS_G8_INT32 || nas_g8_numel(b) != (size_t)co)
            OPFAIL("bias '%s' must be constant int32 with %d values", b->name, co);
        }
        break;
      }
      case NAS_G8_AVERAGE_POOL_2D:
      case NAS_G8_MAX_POOL_2D: {
        if (x->ndim != 4 || y->ndim != 4) OPFAIL("input and output must be 4-D");
        if (op->stride_w < 1 || op->stride_h < 1 || op->filter_w < 1 || op->filter_h < 1)
          OPFAIL("stride and filter must be >= 1");
        int exp[4] = {x->dims[0], out_size(op->padding, x->dims[1], op->filter_h, op->stride_h, 1),
                      out_size(op->padding, x->dims[2], op->filter_w, op->stride_w, 1), x->dims[3]};
        if (memcmp(exp, y->dims, sizeof exp)) {
          shape_str(y->dims, 4, s1, sizeof s1), shape_str(exp, 4, s2, sizeof s2);
          OPFAIL("output '%s' has shape %s, expected %s", y->name, s1, s2);
        }
        if (exp[1] < 1 || exp[2] < 1) OPFAIL("empty output");
        if (!same_q(x, y)) OPFAIL("input and output quantisation differ");
        break;
      }
      case NAS_G8_ADD: {
        if (op->nin < 2 || op->in[1] < 0) OPFAIL("missing second input");
        const nas_g8_tensor *x2 = &g->tensors[op->in[1]];
        if (x2->type != NAS_G8_INT8 || x2->nq != 1) OPFAIL("input '%s' must be int8 per tensor", x2->name);
        if (nas_g8_numel(x2) != ny || nx != ny) OPFAIL("broadcasting is not supported (inputs must match the output shape)");
        break;
      }
      case NAS_G8_RESHAPE:
        if (nx != ny) OPFAIL("%zu values reshaped to %zu", nx, ny);
        if (!same_q(x, y)) OPFAIL("input and output quantisation differ");
        break;
      case NAS_G8_SOFTMAX:
        if (nx != ny || x->ndim < 1 || y->dims[y->ndim - 1] != x->dims[x->ndim - 1])
          OPFAIL("input and output shapes differ");
        break;
      case NAS_G8_QUANTIZE:
        if (nx != ny) OPFAIL("input and output sizes differ");
        break;
      case NAS_G8_WINOGRAD: {
        const int m = op->wino_m, a = m + 2, P = a * a;
        if (m != 2 && m != 4) OPFAIL("tile %d is not 2 or 4", m);
        if (op->wino_bits < 8 || op->wino_bits > 16) OPFAIL("wino_bits %d is not 8..16", op->wino_bits);
        if (op->nin != 5 || op->in[1] < 0 || op->in[2] < 0 || op->in[3] < 0)
          OPFAIL("needs input, weights, bias, scratch and tables (or -1)");
        if (x->ndim != 4 || y->ndim != 4) OPFAIL("input and output must be 4-D");
        const int flex = op->in[4] >= 0, ci = x->dims[3], co = y->dims[3];
        const nas_g8_tensor *w = &g->tensors[op->in[1]], *b = &g->tensors[op->in[2]];
        const nas_g8_tensor *sc = &g->tensors[op->in[3]];
        int wexp[4] = {co, 3, 3, ci}, uexp[3] = {co, P, ci};
        if (!w->data || w->type != NAS_G8_INT8 || w->ndim != (flex ? 3 : 4) ||
            memcmp(w->dims, flex ? uexp : wexp, sizeof(int) * (size_t)w->ndim))
          OPFAIL("weights '%s' must be constant int8 %s", w->name, flex ? "[Co,P,Ci]" : "[Co,3,3,Ci]");
        if (!(w->nq == co && w->qdim == 0)) OPFAIL("weights '%s' need one scale per output channel", w->name);
        if (!b->data || b->type != NAS_G8_INT32 || nas_g8_numel(b) != (size_t)co || b->nq != co)
          OPFAIL("bias '%s' must be constant int32 with %d values and scales", b->name, co);
        if (sc->data || sc->type != NAS_G8_INT8 ||
            nas_g8_numel(sc) < (size_t)NASRT_WINO_SCRATCH(m, ci, co, op->wino_rt))
          OPFAIL("scratch '%s' must be an int8 activation of %d bytes", sc->name,
                 NASRT_WINO_SCRATCH(m, ci, co, op->wino_rt));
        if (flex) {
          const nas_g8_tensor *t = &g->tensors[op->in[4]];
          if (!t->data || t->type != NAS_G8_INT8 || nas_g8_numel(t) != (size_t)(P + m * a))
            OPFAIL("tables '%s' must be constant int8 with %d values", t->name, P + m * a);
          if (op->wino_rt) OPFAIL("a flex layer's weights cannot be transformed at run time");
        }
        if (!(op->wino_vscale > 0) || !(op->wino_vscale < 1e30f)) OPFAIL("V scale must be positive");
        if (op->wino_bshift < 0 || op->wino_bshift > 16) OPFAIL("bias shift %d is not 0..16", op->wino_bshift);
        if ((double)ci * 127.0 * (double)((1L << (op->wino_bits - 1)) - 1) > 2147483647.0)
          OPFAIL("%d input channels x 127 x %ld may overflow the int32 product (lower wino_bits)", ci,
                 (1L << (op->wino_bits - 1)) - 1);
        const int same = op->padding == NAS_G8_PAD_SAME;
        int exp[4] = {x->dims[0], same ? x->dims[1] : x->dims[1] - 2, same ? x->dims[2] : x->dims[2] - 2, co};
        if (memcmp(exp, y->dims, sizeof exp)) {
          shape_str(y->dims, 4, s1, sizeof s1), shape_str(exp, 4, s2, sizeof s2);
          OPFAIL("output '%s' has shape %s, expected %s", y->name, s1, s2);
        }
        if (exp[1] < 1 || exp[2] < 1) OPFAIL("empty output");
        break;
      }
      default:
        if (!nas_g8_is_rnn_kind(op->kind)) OPFAIL("unsupported op");
        if (nas_g8_validate_rnn(g, i, e)) return e->code;
    }
    if (x->data && op->kind != NAS_G8_ADD) OPFAIL("input '%s' is a constant", x->name);
    int oc = op->kind == NAS_G8_CONV_2D || op->kind == NAS_G8_DEPTHWISE_CONV_2D ||
                     op->kind == NAS_G8_FULLY_CONNECTED ? acc_overflow(g, op) : -1;
    if (oc >= 0)
      OPFAIL("output channel %d can overflow the int32 accumulator (weights or bias too large for "
             "the input range)", oc);
    if (op->kind == NAS_G8_AVERAGE_POOL_2D &&
        (int64_t)(op->filter_h < x->dims[1] ? op->filter_h : x->dims[1]) *
                (op->filter_w < x->dims[2] ? op->filter_w : x->dims[2]) * 128 > INT32_MAX)
      OPFAIL("a %dx%d window can overflow the int32 sum", op->filter_h, op->filter_w);
  }
  const nas_g8_tensor *ti = &g->tensors[g->input], *to = &g->tensors[g->output];
  if (ti->type != NAS_G8_INT8 || ti->data) return nas_errf(e, NAS_EINVAL, "graph input '%s' must be an int8 activation", ti->name);
  if (to->type != NAS_G8_INT8 || to->data) return nas_errf(e, NAS_EINVAL, "graph output '%s' must be an int8 activation", to->name);
  return NAS_OK;
}

/* ---- execution ------------------------------------------------------------------------- */

int nas_g8_exec_init(nas_g8_exec *x, const nas_g8_graph *g, nas_err *e) {
  memset(x, 0, sizeof *x);
  x->g = g;
  int rc = nas_g8_plan_build(g, &x->plan, e);
  if (rc) return rc;
  if ((rc = nas_g8_prep_build(g, &x->plan, &x->prep, e)) != NAS_OK) {
    nas_g8_exec_free(x);
    return rc;
  }
  x->arena = nas_malloc(x->plan.peak ? x->plan.peak : 1);
  x->act = nas_calloc((size_t)g->ntensors + 1, sizeof *x->act);
  x->scratch = nas_aligned_alloc(64, (x->prep.scratch_bytes + 128 + 63) & ~(size_t)63);
  if (!x->arena || !x->act || !x->scratch) {
    size_t peak = x->plan.peak;
    nas_g8_exec_free(x);
    return nas_errf(e, NAS_ENOMEM, "out of memory for a %zu-byte arena", peak);
  }
  for (int i = 0; i < g->ntensors; i++)
    x->act[i] = x->plan.offset[i] >= 0 ? x->arena + x->plan.offset[i] : NULL;
  return NAS_OK;
}

int nas_g8_exec_run(nas_g8_exec *x, const int8_t *in, int8_t *out, nas_err *e) {
  const nas_g8_graph *g = x->g;
  int rc = NAS_OK;
  memcpy(x->act[g->input], in, nas_g8_numel(&g->tensors[g->input]));
  for (int i = 0; i < g->nops && !rc; i++) rc = nas_g8_run_op_prep(g, &x->prep, i, x->act, x->scratch, e);
  if (!rc) memcpy(out, x->act[g->output], nas_g8_numel(&g->tensors[g->output]));
  return rc;
}

void nas_g8_exec_free(nas_g8_exec *x) {
  if (!x) return;
  nas_g8_plan_free(&x->plan);
  nas_g8_prep_free(&x->prep);
  free(x->arena), free(x->act), free(x->scratch);
  x->arena = NULL, x->act = NULL, x->scratch = NULL;
}

int nas_g8_run(const nas_g8_graph *g, const int8_t *in, int8_t *out, nas_err *e) {
  nas_g8_exec x;
  int rc = nas_g8_exec_init(&x, g, e);
  if (rc == NAS_OK) rc = nas_g8_exec_run(&x, in, out, e);
  nas_g8_exec_free(&x);
  return rc;
}

int nas_g8_rt_run(const nas_g8_graph *g, const int8_t *in, int8_t *out, nas_err *e) {
  nas_g8_plan plan;
  nas_g8_prep prep;
  int rc = nas_g8_plan_build(g, &plan, e);
  if (rc) return rc;
  if ((rc = nas_g8_prep_build(g, &plan, &prep, e))) {
    nas_g8_plan_free(&plan);
    return rc;
  }
  nasrt_op *ops = nas_calloc((size_t)g->nops + 1, sizeof *ops);
  int8_t *arena = nas_aligned_alloc(16, (plan.peak + 15) & ~(size_t)15);
  if (!ops || (!arena && plan.peak)) {
    rc = nas_errf(e, NAS_ENOMEM, "out of memory for a %zu-byte arena", plan.peak);
  } else {
    for (int i = 0; i < g->nops; i++) ops[i] = nas_g8_prep_rt_op(&prep.op[i]);
    nasrt_model m = {ops, g->nops, (int32_t)plan.offset[g->input],
                     (int32_t)nas_g8_numel(&g->tensors[g->input]), (int32_t)plan.offset[g->output],
                     (int32_t)nas_g8_numel(&g->tensors[g->output]), (int32_t)plan.peak};
    if (nasrt_invoke(&m, arena, in, out))
      rc = nas_errf(e, NAS_EINVAL, "the runtime refused the operator table");
  }
  free(ops), free(arena);
  nas_g8_prep_free(&prep);
  nas_g8_plan_free(&plan);
  return rc;
}
