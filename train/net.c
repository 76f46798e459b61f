/* train/net.c: arch JSON -> graph. Parsing and validation of every field (unknown ops and
 * fields are errors naming the layer), lowering of each layer to ops, parameter
 * initialisation, and per-layer MAC / parameter counts. */
#include "train/net.h"
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "train/ops.h"

/* Builder state while lowering one architecture. */
typedef struct bld {
  nas_graph *g;      /* graph being built */
  nas_err *e;        /* error sink */
  const char *src;   /* source name for messages */
  int li;            /* current layer index */
  const char *op;    /* current layer op */
  int cur;           /* node id of the current activation */
  int h, w, c;       /* its per-sample shape; flat = 1 when [N,c] */
  int flat;          /* 1 after gap/flatten/fc */
  int seq;           /* 1 when the activation is a sequence [N,T,F] (h = T, w = 1, c = F) */
  long long params;  /* trainable parameters of the current layer */
  long long macs;    /* MACs of the current layer */
  cJSON *canon;      /* canonical layer object being filled */
} bld;

static int lerr(bld *b, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lerr(bld *b, const char *field, const char *fmt, ...) {
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (field)
    nas_errf(b->e, NAS_EINVAL, "%s: layer %d (%s): field '%s': %s", b->src, b->li, b->op, field,
             msg);
  else
    nas_errf(b->e, NAS_EINVAL, "%s: layer %d (%s): %s", b->src, b->li, b->op, msg);
  return -1; /* layer builders return -1 on failure */
}

/* ---- field readers (each records the value it settled on in the canonical layer) -------- */

static int get_int(bld *b, const cJSON *o, const char *key, int def, int lo, int hi, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) {
    if (def == INT32_MIN) return lerr(b, key, "required");
    *out = def;
  } else {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
      return lerr(b, key, "expected an integer");
    if (v->valuedouble < lo || v->valuedouble > hi)
      return lerr(b, key, "%g is out of range %d..%d", v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
  }
  cJSON_AddNumberToObject(b->canon, key, *out);
  return NAS_OK;
}

/* An int or a [a, b] pair; a single int means both. */
static int get_pair(bld *b, const cJSON *o, const char *key, int def, int lo, int hi, int out[2]) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  out[0] = out[1] = def;
  if (v && cJSON_IsArray(v)) {
    if (cJSON_GetArraySize(v) != 2) return lerr(b, key, "expected an integer or a pair [a,b]");
    for (int i = 0; i < 2; i++) {
      const cJSON *x = cJSON_GetArrayItem(v, i);
      if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
        return lerr(b, key, "expected an integer or a pair [a,b]");
      if (x->valuedouble < lo || x->valuedouble > hi)
        return lerr(b, key, "%g is out of range %d..%d", x->valuedouble, lo, hi);
      out[i] = (int)x->valuedouble;
    }
  } else if (v) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
      return lerr(b, key, "expected an integer or a pair [a,b]");
    if (v->valuedouble < lo || v->valuedouble > hi)
      return lerr(b, key, "%g is out of range %d..%d", v->valuedouble, lo, hi);
    out[0] = out[1] = (int)v->valuedouble;
  }
  nas_json_add(b->canon, key, cJSON_CreateIntArray(out, 2)); /* failure: see build() */
  return NAS_OK;
}

static int get_bool(bld *b, const cJSON *o, const char *key, int def, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    *out = def;
  else if (!cJSON_IsBool(v))
    return lerr(b, key, "expected true or false");
  else
    *out = cJSON_IsTrue(v);
  cJSON_AddBoolToObject(b->canon, key, *out);
  return NAS_OK;
}

static int get_float(bld *b, const cJSON *o, const char *key, double def, double lo, double hi,
                     double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    *out = def;
  else if (!cJSON_IsNumber(v))
    return lerr(b, key, "expected a number");
  else if (!(v->valuedouble >= lo && v->valuedouble < hi))
    return lerr(b, key, "%g is out of range [%g,%g)", v->valuedouble, lo, hi);
  else
    *out = v->valuedouble;
  cJSON_AddNumberToObject(b->canon, key, *out);
  return NAS_OK;
}

/* One of the given names (NULL-terminated); returns its index in *out. */
static int get_enum(bld *b, const cJSON *o, const char *key, const char *const *names, int def,
                    int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = def;
  if (v) {
    if (!cJSON_IsString(v)) return lerr(b, key, "expected a string");
    int k = -1;
    for (int i = 0; names[i]; i++)
      if (strcmp(names[i], v->valuestring) == 0) k = i;
    if (k < 0) {
      char list[128] = "";
      for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
      return lerr(b, key, "unknown value '%s' (expected one of: %s)", v->valuestring, list);
    }
    *out = k;
  }
  cJSON_AddStringToObject(b->canon, key, names[*out]);
  return NAS_OK;
}

static const char *const ACTS[] = {"none", "relu", "relu6", NULL};
_Static_assert(sizeof ACTS / sizeof ACTS[0] == NAS_ACT_RELU6 + 2, "one name per enum nas_act");
static const char *const PADS[] = {"valid", "same", NULL};
_Static_assert(sizeof PADS / sizeof PADS[0] == NAS_PAD_SAME + 2, "one name per enum nas_padding");
enum { ACT_NONE = NAS_ACT_NONE, ACT_RELU = NAS_ACT_RELU, ACT_RELU6 = NAS_ACT_RELU6 };

/* ---- lowering helpers -------------------------------------------------------------------- */

static int new_param(bld *b, const char *part, const char *t, int nd, const int *d, int kind) {
  char name[48];
  snprintf(name, sizeof name, "l%d.%.24s.%.8s", b->li, part, t);
  int id = kind == NAS_NODE_STATE ? nas_graph_state(b->g, name, nd, d, b->e)
                                  : nas_graph_param(b->g, name, nd, d, b->e);
  if (id >= 0 && kind == NAS_NODE_PARAM) {
    long long n = 1;
    for (int i = 0; i < nd; i++) n *= d[i];
    b->params += n;
  }
  return id;
}

/* Applies op to inputs; on a shape error prefixes the layer. Updates b->cur and h/w/c. */
static int apply(bld *b, int op, const int *in, int n_in, const nas_op_params *p, const char *part) {
  char name[48];
  snprintf(name, sizeof name, "l%d.%.32s", b->li, part);
  int id = nas_graph_apply(b->g, op, in, n_in, p, name, b->e);
  if (id < 0) {
    nas_err_prefix(b->e, "%s: layer %d (%s)", b->src, b->li, b->op);
    return -1;
  }
  const nas_node *nd = &b->g->nodes[id];
  b->cur = id;
  b->seq = 0;
  if (nd->shape.nd == 4) {
    b->h = nd->shape.d[1], b->w = nd->shape.d[2], b->c = nd->shape.d[3], b->flat = 0;
  } else if (nd->shape.nd == 3) { /* a sequence from a recurrent layer */
    b->h = nd->shape.d[1], b->w = 1, b->c = nd->shape.d[2], b->flat = 0, b->seq = 1;
  } else {
    b->h = b->w = 1, b->c = (int)nas_node_sample_numel(nd), b->flat = 1;
  }
  return id;
}

static int need_spatial(bld *b) {
  if (b->seq)
    return lerr(b, NULL, "needs a spatial [H,W,C] input, but the previous layer outputs a "
                         "sequence [T,F] (a recurrent layer with return_sequences true)");
  if (b->flat) return lerr(b, NULL, "needs a spatial [H,W,C] input, but the previous layer is flat");
  return NAS_OK;
}

/* BN with the layer's activation fused (act: ACT_*, the same numbering as enum nas_act). */
static int add_bn(bld *b, const char *part, int act) {
  int c[1] = {b->c};
  char p2[32];
  snprintf(p2, sizeof p2, "%.24s.bn", part);
  int in[5] = {b->cur, new_param(b, p2, "gamma", 1, c, NAS_NODE_PARAM),
               new_param(b, p2, "beta", 1, c, NAS_NODE_PARAM),
               new_param(b, p2, "mean", 1, c, NAS_NODE_STATE),
               new_param(b, p2, "var", 1, c, NAS_NODE_STATE)};
  for (int i = 1; i < 5; i++)
    if (in[i] < 0) return -1;
  nas_op_params p = {.act = act};
  return apply(b, NAS_OP_BATCHNORM, in, 5, &p, p2);
}

static int add_act(bld *b, int act, const char *part) {
  char p2[32];
  snprintf(p2, sizeof p2, "%.24s.act", part);
  if (act == ACT_RELU) return apply(b, NAS_OP_RELU, &b->cur, 1, NULL, p2);
  if (act == ACT_RELU6) return apply(b, NAS_OP_RELU6, &b->cur, 1, NULL, p2);
  return b->cur;
}

/* conv (depthwise when dw) + optional BN + activation. */
static int add_conv(bld *b, const char *part, int dw, int out, const int k[2], const int s[2],
                    int pad, int bn, int bias, int act) {
  int cin = b->c;
  int wd[4] = {out, k[0], k[1], cin}, dwd[3] = {k[0], k[1], cin}, bd[1] = {dw ? cin : out};
  int in[3] = {b->cur, dw ? new_param(b, part, "w", 3, dwd, NAS_NODE_PARAM)
                          : new_param(b, part, "w", 4, wd, NAS_NODE_PARAM), -1};
  int n_in = 2;
  if (in[1] < 0) return -1;
  if (bias && (in[n_in++] = new_param(b, part, "b", 1, bd, NAS_NODE_PARAM)) < 0) return -1;
  nas_op_params p = {.sh = s[0], .sw = s[1], .padding = pad};
  if (apply(b, dw ? NAS_OP_DWCONV2D : NAS_OP_CONV2D, in, n_in, &p, part) < 0) return -1;
  b->macs += (long long)b->h * b->w * b->c * k[0] * k[1] * (dw ? 1 : cin);
  if (bn) return add_bn(b, part, act);
  return add_act(b, act, part);
}

/* ---- layers ------------------------------------------------------------------------------ */

/* Fields each op accepts ("op" always). */
static const struct {
  const char *op;
  const char *fields[10];
} LAYER_FIELDS[] = {
    {"conv", {"out", "k", "stride", "padding", "act", "bn", "bias", "algo"}},
    {"dwconv", {"k", "stride", "padding", "act", "bn", "bias"}},
    {"pwconv", {"out", "act", "bn", "bias"}},
    {"dsconv", {"out", "k", "stride", "padding", "act"}},
    {"mbconv", {"out", "expand", "k", "stride", "act", "residual"}},
    {"add", {"from", "act"}},
    {"maxpool", {"k", "stride", "padding"}},
    {"avgpool", {"k", "stride", "padding"}},
    {"gap", {0}},
    {"flatten", {0}},
    {"fc", {"out", "act", "bias"}},
    {"dropout", {"rate"}},
    {"lstm", {"units", "return_sequences"}},
    {"gru", {"units", "return_sequences"}},
};
#define N_LAYER_KINDS (int)(sizeof LAYER_FIELDS / sizeof LAYER_FIELDS[0])

static int check_fields(bld *b, const cJSON *o, int kind) {
  for (const cJSON *f = o->child; f; f = f->next) {
    if (strcmp(f->string, "op") == 0) continue;
    int ok = 0;
    for (int i = 0; i < 10 && LAYER_FIELDS[kind].fields[i]; i++)
      if (strcmp(f->string, LAYER_FIELDS[kind].fields[i]) == 0) ok = 1;
    if (!ok) return lerr(b, f->string, "unknown field for op '%s'", LAYER_FIELDS[kind].op);
  }
  return NAS_OK;
}

static int layer_conv(bld *b, const cJSON *o, int kind) {
  int out = b->c, k[2] = {1, 1}, s[2] = {1, 1}, pad = 0, act = 0, bn = 1, bias = 0, algo = 0;
  static const char *const ALGOS[] = {"im2row", "wino2", "wino4", NULL};
  if (need_spatial(b)) return -1;
  if (kind != 1 && get_int(b, o, "out", INT32_MIN, 1, 1 << 16, &out)) return -1;
  if (kind == 2) {
    k[0] = k[1] = s[0] = s[1] = 1, pad = 0;
  } else {
    if (get_pair(b, o, "k", 3, 1, 64, k) || get_pair(b, o, "stride", 1, 1, 16, s) ||
        get_enum(b, o, "padding", PADS, 1, &pad))
      return -1;
  }
  if (get_enum(b, o, "act", ACTS, ACT_RELU, &act) || get_bool(b, o, "bn", 1, &bn) ||
      get_bool(b, o, "bias", !bn, &bias))
    return -1;
  if (kind == 0) {
    if (get_enum(b, o, "algo", ALGOS, 0, &algo)) return -1;
    if (algo != 0)
      return lerr(b, "algo", "'%s' (Winograd-aware training) is not implemented yet; use im2row",
                  ALGOS[algo]);
  }
  return add_conv(b, kind == 0 ? "conv" : kind == 1 ? "dw" : "pw", kind == 1, out, k, s, pad, bn,
                  bias, act);
}

static int layer_dsconv(bld *b, const cJSON *o) {
  int out, k[2], s[2], pad, act;
  static const int one[2] = {1, 1};
  if (need_spatial(b) || get_int(b, o, "out", INT32_MIN, 1, 1 << 16, &out) ||
      get_pair(b, o, "k", 3, 1, 64, k) || get_pair(b, o, "stride", 1, 1, 16, s) ||
      get_enum(b, o, "padding", PADS, 1, &pad) || get_enum(b, o, "act", ACTS, ACT_RELU, &act))
    return -1;
  if (add_conv(b, "dw", 1, b->c, k, s, pad, 1, 0, act) < 0) return -1;
  return add_conv(b, "pw", 0, out, one, one, 0, 1, 0, act);
}

static int layer_mbconv(bld *b, const cJSON *o) {
  int out = 0, expand = 1, k[2] = {1, 1}, s[2] = {1, 1}, act = 0, res = 0;
  static const int one[2] = {1, 1};
  if (need_spatial(b) || get_int(b, o, "out", INT32_MIN, 1, 1 << 16, &out) ||
      get_int(b, o, "expand", 6, 1, 16, &expand) || get_pair(b, o, "k", 3, 1, 64, k) ||
      get_pair(b, o, "stride", 1, 1, 16, s) || get_enum(b, o, "act", ACTS, ACT_RELU6, &act))
    return -1;
  int can_res = s[0] == 1 && s[1] == 1 && out == b->c;
  if (get_bool(b, o, "residual", can_res, &res)) return -1;
  if (res && !can_res)
    return lerr(b, "residual", "needs stride 1 and out == input channels (%d)", b->c);
  int skip = b->cur;
  if (expand > 1 && add_conv(b, "expand", 0, b->c * expand, one, one, 1, 1, 0, act) < 0) return -1;
  if (add_conv(b, "dw", 1, b->c, k, s, 1, 1, 0, act) < 0) return -1;
  if (add_conv(b, "project", 0, out, one, one, 1, 1, 0, ACT_NONE) < 0) return -1;
  if (res) {
    int in[2] = {b->cur, skip};
    return apply(b, NAS_OP_ADD, in, 2, NULL, "add");
  }
  return b->cur;
}

static int layer_pool(bld *b, const cJSON *o, int op) {
  int k[2], s[2], pad;
  if (need_spatial(b) || get_pair(b, o, "k", 2, 1, 64, k)) return -1;
  if (get_pair(b, o, "stride", k[0], 1, 64, s) || get_enum(b, o, "padding", PADS, 0, &pad))
    return -1;
  if (!cJSON_GetObjectItemCaseSensitive(o, "stride")) s[0] = k[0], s[1] = k[1];
  nas_op_params p = {.kh = k[0], .kw = k[1], .sh = s[0], .sw = s[1], .padding = pad};
  return apply(b, op, &b->cur, 1, &p, op == NAS_OP_MAXPOOL ? "maxpool" : "avgpool");
}

static int layer_fc(bld *b, const cJSON *o) {
  int out = 0, act = 0, bias = 1;
  if (get_int(b, o, "out", INT32_MIN, 1, 1 << 20, &out) ||
      get_enum(b, o, "act", ACTS, ACT_NONE, &act) || get_bool(b, o, "bias", 1, &bias))
    return -1;
  int k = b->flat ? b->c : b->h * b->w * b->c;
  int wd[2] = {out, k}, bd[1] = {out};
  int in[3] = {b->cur, new_param(b, "fc", "w", 2, wd, NAS_NODE_PARAM), -1}, n_in = 2;
  if (in[1] < 0) return -1;
  if (bias && (in[n_in++] = new_param(b, "fc", "b", 1, bd, NAS_NODE_PARAM)) < 0) return -1;
  if (apply(b, NAS_OP_DENSE, in, n_in, NULL, "fc") < 0) return -1;
  b->macs += (long long)k * out;
  return add_act(b, act, "fc");
}

static int layer_add(bld *b, const cJSON *o, const int *outs) {
  int from, act;
  if (get_int(b, o, "from", INT32_MIN, -b->li, b->li - 1, &from) ||
      get_enum(b, o, "act", ACTS, ACT_NONE, &act))
    return -1;
  int src = from < 0 ? b->li + from : from;
  if (src < 0 || src >= b->li) return lerr(b, "from", "must name an earlier layer");
  const nas_node *a = &b->g->nodes[b->cur], *s = &b->g->nodes[outs[src]];
  if (nas_node_sample_numel(a) != nas_node_sample_numel(s) || a->shape.nd != s->shape.nd)
    return lerr(b, "from", "layer %d's output does not have this layer's input shape", src);
  int in[2] = {b->cur, outs[src]};
  if (apply(b, NAS_OP_ADD, in, 2, NULL, "add") < 0) return -1;
  return add_act(b, act, "add");
}

/* lstm (gates 4) or gru (gates 3). The input is read as a sequence: a recurrent layer's
 * [T,F] as is, a spatial [H,W,C] activation (the network input, or a conv stack: CRNN) as
 * T = H steps of F = W*C features through an inserted reshape. Weights in PyTorch's layout
 * (ops.h); parameters G*H*(F+H) + 2*G*H (both biases, as PyTorch); MACs per sample
 * T * G*H*(F+H) (input and recurrent products; gate nonlinearities and element-wise products
 * are not counted). */
static int layer_rnn(bld *b, const cJSON *o, int gates) {
  int units = 0, rs = 0;
  const char *part = gates == 4 ? "lstm" : "gru";
  if (get_int(b, o, "units", INT32_MIN, 1, 4096, &units) ||
      get_bool(b, o, "return_sequences", 0, &rs))
    return -1;
  if (b->flat)
    return lerr(b, NULL, "needs a sequence [T,F] or spatial [H,W,C] input, but the previous "
                         "layer is flat");
  if (!b->seq) {
    nas_op_params rp = {.nd = 2, .d = {b->h, b->w * b->c}};
    char rn[32];
    snprintf(rn, sizeof rn, "%s.seq", part);
    if (apply(b, NAS_OP_RESHAPE, &b->cur, 1, &rp, rn) < 0) return -1;
  }
  int T = b->h, F = b->c, GH = gates * units;
  int wi[2] = {GH, F}, wh[2] = {GH, units}, bd[1] = {GH};
  int in[5] = {b->cur, new_param(b, part, "w_ih", 2, wi, NAS_NODE_PARAM),
               new_param(b, part, "w_hh", 2, wh, NAS_NODE_PARAM),
               new_param(b, part, "b_ih", 1, bd, NAS_NODE_PARAM),
               new_param(b, part, "b_hh", 1, bd, NAS_NODE_PARAM)};
  for (int i = 1; i < 5; i++)
    if (in[i] < 0) return -1;
  nas_op_params p = {.kh = rs};
  if (apply(b, gates == 4 ? NAS_OP_LSTM : NAS_OP_GRU, in, 5, &p, part) < 0) return -1;
  b->macs += (long long)T * GH * (F + units);
  return b->cur;
}

static int lower_layer(bld *b, const cJSON *o, const int *outs) {
  if (!cJSON_IsObject(o))
    return nas_errf(b->e, NAS_EINVAL, "%s: layer %d: expected an object", b->src, b->li), -1;
  const cJSON *opj = cJSON_GetObjectItemCaseSensitive(o, "op");
  b->op = "?";
  if (!cJSON_IsString(opj)) return lerr(b, "op", "required (a string)");
  b->op = opj->valuestring;
  int kind = -1;
  for (int i = 0; i < N_LAYER_KINDS; i++)
    if (strcmp(LAYER_FIELDS[i].op, b->op) == 0) kind = i;
  if (kind < 0) return lerr(b, "op", "unknown op '%s'", b->op);
  if (check_fields(b, o, kind)) return -1;
  cJSON_AddStringToObject(b->canon, "op", b->op);
  switch (kind) {
    case 0: case 1: case 2: return layer_conv(b, o, kind);
    case 3: return layer_dsconv(b, o);
    case 4: return layer_mbconv(b, o);
    case 5: return layer_add(b, o, outs);
    case 6: return layer_pool(b, o, NAS_OP_MAXPOOL);
    case 7: return layer_pool(b, o, NAS_OP_AVGPOOL);
    case 8:
      if (need_spatial(b)) return -1;
      return apply(b, NAS_OP_GAP, &b->cur, 1, NULL, "gap");
    case 9: {
      nas_op_params p = {.nd = 1, .d = {b->h * b->w * b->c}};
      return apply(b, NAS_OP_RESHAPE, &b->cur, 1, &p, "flatten");
    }
    case 10: return layer_fc(b, o);
    case 12: return layer_rnn(b, o, 4);
    case 13: return layer_rnn(b, o, 3);
    default: {
      double rate = 0;
      if (get_float(b, o, "rate", 0.5, 0.0, 1.0, &rate)) return -1;
      nas_op_params p = {.rate = (float)rate};
      return apply(b, NAS_OP_DROPOUT, &b->cur, 1, &p, "dropout");
    }
  }
}

/* ---- initialisation (PyTorch defaults) --------------------------------------------------- */

void nas_net_init_params(nas_graph *g, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    if (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE) continue;
    size_t cnt = nas_shape_numel(&nd->shape);
    const char *t = strrchr(nd->name, '.');
    t = t ? t + 1 : nd->name;
    float fill = -1;
    if (!strcmp(t, "gamma") || !strcmp(t, "var")) fill = 1;
    if (!strcmp(t, "beta") || !strcmp(t, "mean")) fill = 0;
    if (fill >= 0) {
      for (size_t k = 0; k < cnt; k++) nd->val[k] = fill;
      continue;
    }
    if (nd->kind != NAS_NODE_PARAM) continue; /* other state (e.g. DNAS gates) is the caller's */
    /* recurrent layers (PyTorch): every tensor uniform in +-1/sqrt(units) */
    if (!strcmp(t, "w_ih") || !strcmp(t, "w_hh") || !strcmp(t, "b_ih") || !strcmp(t, "b_hh")) {
      char wn[48];
      snprintf(wn, sizeof wn, "%.*sw_hh", (int)(t - nd->name), nd->name);
      int wi = nas_graph_find(g, wn);
      float bound = wi >= 0 ? 1.0f / sqrtf((float)g->nodes[wi].shape.d[1]) : 0.1f;
      for (size_t k = 0; k < cnt; k++) nd->val[k] = (nas_rng_uniform(&r) * 2 - 1) * bound;
      continue;
    }
    /* fan_in of the weight this tensor belongs to: w itself, or the sibling w of a bias */
    const nas_node *w = nd;
    if (!strcmp(t, "b")) {
      char wn[48];
      snprintf(wn, sizeof wn, "%.*sw", (int)(t - nd->name), nd->name);
      int wi = nas_graph_find(g, wn);
      if (wi >= 0) w = &g->nodes[wi];
    }
    size_t fan_in = w->shape.nd == 3 ? (size_t)w->shape.d[0] * w->shape.d[1] /* depthwise */
                                     : nas_shape_numel(&w->shape) / (size_t)w->shape.d[0];
    float bound = 1.0f / sqrtf((float)fan_in); /* kaiming_uniform(a=sqrt(5)) == 1/sqrt(fan_in) */
    for (size_t k = 0; k < cnt; k++) nd->val[k] = (nas_rng_uniform(&r) * 2 - 1) * bound;
  }
}

int nas_net_add_loss(nas_net *n, nas_err *e) {
  int one[1] = {1};
  n->labels = nas_graph_input(n->g, "labels", 1, one, e);
  int xin[2] = {n->logits, n->labels};
  n->loss = n->labels < 0 ? -1 : nas_graph_apply(n->g, NAS_OP_SOFTMAX_XENT, xin, 2, NULL, "loss", e);
  return n->loss < 0 ? e->code : NAS_OK;
}

/* ---- top level --------------------------------------------------------------------------- */

static int parse_top(const cJSON *root, const char *src, int in[3], int *classes, nas_err *e) {
  if (!cJSON_IsObject(root)) return nas_errf(e, NAS_EINVAL, "%s: expected a JSON object", src);
  static const char *const TOP[] = {"name", "input", "classes", "layers", NULL};
  for (const cJSON *f = root->child; f; f = f->next) {
    int ok = 0;
    for (int i = 0; TOP[i]; i++) ok |= !strcmp(f->string, TOP[i]);
    if (!ok) return nas_errf(e, NAS_EINVAL, "%s: unknown field '%s'", src, f->string);
  }
  const cJSON *inp = cJSON_GetObjectItemCaseSensitive(root, "input");
  if (!cJSON_IsArray(inp) || cJSON_GetArraySize(inp) != 3)
    return nas_errf(e, NAS_EINVAL, "%s: field 'input': expected [H,W,C]", src);
  for (int i = 0; i < 3; i++) {
    const cJSON *v = cJSON_GetArrayItem(inp, i);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 4096 ||
        v->valuedouble != floor(v->valuedouble))
      return nas_errf(e, NAS_EINVAL, "%s: field 'input': expected [H,W,C] of integers 1..4096", src);
    in[i] = (int)v->valuedouble;
  }
  const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "classes");
  if (!cJSON_IsNumber(cl) || cl->valuedouble < 2 || cl->valuedouble > 100000 ||
      cl->valuedouble != floor(cl->valuedouble))
    return nas_errf(e, NAS_EINVAL, "%s: field 'classes': expected an integer >= 2", src);
  *classes = (int)cl->valuedouble;
  const cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "layers");
  if (!cJSON_IsArray(ls) || cJSON_GetArraySize(ls) < 1)
    return nas_errf(e, NAS_EINVAL, "%s: field 'layers': expected a non-empty array", src);
  return NAS_OK;
}

static int build(nas_net *n, const cJSON *root, const char *src, int max_batch, uint64_t seed,
                 nas_err *e) {
  int in[3];
  if (parse_top(root, src, in, &n->classes, e)) return e->code;
  n->in_h = in[0], n->in_w = in[1], n->in_c = in[2];
  const cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "layers");
  n->n_layers = cJSON_GetArraySize(ls);
  n->layers = nas_calloc((size_t)n->n_layers, sizeof *n->layers);
  int *outs = nas_calloc((size_t)n->n_layers, sizeof *outs);
  n->g = nas_graph_new(max_batch, seed);
  /* The canonical arch is built as the layers are read; a failed cJSON allocation anywhere in
   * it is caught once, at the end (core/json.h). */
  unsigned long jm = nas_json_mark();
  cJSON *canon = cJSON_CreateObject(), *clayers = cJSON_CreateArray();
  if (!n->layers || !outs || !n->g || !canon || !clayers) {
    free(outs);
    cJSON_Delete(canon);
    cJSON_Delete(clayers);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", src);
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (cJSON_IsString(name)) cJSON_AddStringToObject(canon, "name", name->valuestring);
  nas_json_add(canon, "input", cJSON_CreateIntArray(in, 3));
  cJSON_AddNumberToObject(canon, "classes", n->classes);
  if (nas_json_add(canon, "layers", clayers)) { /* clayers is gone */
    free(outs);
    cJSON_Delete(canon);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", src);
  }
  bld b = {.g = n->g, .e = e, .src = src, .h = in[0], .w = in[1], .c = in[2]};
  b.cur = n->input = nas_graph_input(n->g, "input", 3, in, e);
  int rc = b.cur < 0 ? e->code : NAS_OK;
  for (int i = 0; rc == NAS_OK && i < n->n_layers; i++) {
    b.li = i, b.params = b.macs = 0;
    b.canon = cJSON_CreateObject();
    if (nas_json_push(clayers, b.canon)) {
      rc = nas_errf(e, NAS_ENOMEM, "%s: layer %d: out of memory", src, i);
      break;
    }
    if (lower_layer(&b, cJSON_GetArrayItem(ls, i), outs) < 0) {
      rc = e->code ? e->code : NAS_EINVAL;
      break;
    }
    outs[i] = b.cur;
    nas_layer_info *L = &n->layers[i];
    snprintf(L->op, sizeof L->op, "%s", b.op);
    L->out_h = b.h, L->out_w = b.w, L->out_c = b.c, L->params = b.params, L->macs = b.macs;
    n->params += b.params, n->macs += b.macs;
  }
  free(outs);
  if (rc == NAS_OK && !(b.flat && b.c == n->classes))
    rc = nas_errf(e, NAS_EINVAL,
                  "%s: the last layer outputs %dx%dx%d values, expected a flat vector of "
                  "classes=%d (end with {\"op\":\"fc\",\"out\":%d})",
                  src, b.h, b.w, b.c, n->classes, n->classes);
  if (rc == NAS_OK) {
    n->logits = b.cur;
    rc = nas_net_add_loss(n, e);
  }
  if (rc == NAS_OK && (rc = nas_graph_alloc(n->g, e)) != NAS_OK) {
    /* name the file and the layer with the largest output, not just the byte count */
    int big = 0;
    for (int i = 1; i < n->n_layers; i++)
      if ((long long)n->layers[i].out_h * n->layers[i].out_w * n->layers[i].out_c >
          (long long)n->layers[big].out_h * n->layers[big].out_w * n->layers[big].out_c)
        big = i;
    const nas_layer_info *L = &n->layers[big];
    char m[sizeof e->msg];
    snprintf(m, sizeof m, "%s", e->msg);
    nas_errf(e, rc, "%s: %s (largest output: layer %d (%s), %dx%dx%d per sample, batch %d)", src,
             m, big, L->op, L->out_h, L->out_w, L->out_c, max_batch);
  }
  if (rc == NAS_OK) {
    nas_net_init_params(n->g, seed);
    n->arch_json = cJSON_PrintUnformatted(canon);
    if (!n->arch_json || nas_json_failed(jm))
      rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory building the canonical arch JSON", src);
  }
  cJSON_Delete(canon);
  return rc;
}

int nas_net_build(const char *arch_json, const char *source, int max_batch, uint64_t seed,
                  nas_net **out, nas_err *e) {
  *out = NULL;
  const char *src = source ? source : "arch";
  cJSON *root;
  int line, jr = nas_json_parse(arch_json, &root, &line);
  if (jr == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "%s: out of memory parsing JSON", src);
  if (jr) return nas_errf(e, NAS_EINVAL, "%s: invalid JSON near line %d", src, line);
  nas_net *n = nas_calloc(1, sizeof *n);
  if (!n) {
    cJSON_Delete(root);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", src);
  }
  int rc = build(n, root, src, max_batch, seed, e);
  cJSON_Delete(root);
  if (rc != NAS_OK) {
    nas_net_free(n);
    return rc;
  }
  *out = n;
  return NAS_OK;
}

void nas_net_free(nas_net *n) {
  if (!n) return;
  nas_graph_free(n->g);
  free(n->layers);
  cJSON_free(n->arch_json);
  free(n);
}
