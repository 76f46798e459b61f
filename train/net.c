/* train/net.c: arch JSON -> graph. Parsing and validation of every field (unknown ops and
 * fields are errors naming the layer), lowering of each layer to ops, and per-layer MAC /
 * parameter counts (parameter initialisation and the loss: train/net_init.c). */
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
#include "train/net_impl.h"
#include "train/ops.h"
#include "train/wino.h"

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
    return net_lerr(b, NULL, "needs a spatial [H,W,C] input, but the previous layer outputs a "
                         "sequence [T,F] (a recurrent layer with return_sequences true)");
  if (b->flat) return net_lerr(b, NULL, "needs a spatial [H,W,C] input, but the previous layer is flat");
  return NAS_OK;
}

/* Applies op off the activation path (weights, masks, the SVDO variance branch): the
 * builder's current activation is unchanged. */
static int side(bld *b, int op, const int *in, int n_in, const nas_op_params *p, const char *part) {
  char name[48];
  snprintf(name, sizeof name, "l%d.%.32s", b->li, part);
  int id = nas_graph_apply(b->g, op, in, n_in, p, name, b->e);
  if (id < 0) nas_err_prefix(b->e, "%s: layer %d (%s)", b->src, b->li, b->op);
  return id;
}

/* The weight w of part as the layer's op reads it: masked (MASK_MUL by "<w>.mask") when the
 * layer is pruned, or in the SVDO form SVDO_W(w, "<w>.ls2") with *ls2 set; w otherwise. */
static int pruned_weight(bld *b, const char *part, int w, int *ls2) {
  *ls2 = -1;
  if (!b->wprune) return w;
  const nas_node *wn = &b->g->nodes[w];
  int nd = wn->shape.nd, d[NAS_MAX_DIMS];
  memcpy(d, wn->shape.d, sizeof d);
  char p2[40];
  snprintf(p2, sizeof p2, "%.24s.wm", part);
  if (!b->svdo) {
    int in[2] = {w, new_param(b, part, "w.mask", nd, d, NAS_NODE_STATE)};
    return in[1] < 0 ? -1 : side(b, NAS_OP_MASK_MUL, in, 2, NULL, p2);
  }
  char nm[48];
  snprintf(nm, sizeof nm, "l%d.%.24s.w.ls2", b->li, part);
  int in[3] = {w, nas_graph_param(b->g, nm, nd, d, b->e), -1};
  if ((*ls2 = in[1]) < 0) return -1;
  nas_op_params p = {.rate = (float)b->pc->threshold};
  int wm = side(b, NAS_OP_SVDO_W, in, 2, &p, p2);
  if (wm < 0) return -1;
  if (b->kl_scale < 0) {
    int one[1] = {1};
    if ((b->kl_scale = nas_graph_state(b->g, "svdo.kl_scale", 1, one, b->e)) < 0) return -1;
  }
  if (b->n_kl == (int)(sizeof b->kl / sizeof b->kl[0]))
    return net_lerr(b, NULL, "too many SVDO-pruned weights (at most %d)", b->n_kl);
  in[2] = b->kl_scale;
  snprintf(p2, sizeof p2, "%.24s.kl", part);
  int kl = side(b, NAS_OP_SVDO_KL, in, 3, NULL, p2);
  if (kl < 0) return -1;
  b->kl[b->n_kl++] = kl;
  return wm;
}

/* A consumer of pruned channels: its weight's input-channel slices (the last axis) are
 * multiplied by the channel mask too, so that per-tensor and per-output-channel weight scales
 * equal the compacted network's (deploy form only). */
static int consumer_weight(bld *b, const char *part, int w) {
  if (b->svdo || b->chan_cur < 0) return w;
  char p2[40];
  snprintf(p2, sizeof p2, "%.24s.im", part);
  int in[2] = {w, b->chan_cur};
  return side(b, NAS_OP_MASK_MUL, in, 2, NULL, p2);
}

/* SVDO form: the local reparameterisation of a layer whose mean output mean = op(x, ...)
 * was just applied: var = op(x^2, exp(ls2)), y = LRT(mean, var). */
static int lrt_branch(bld *b, const char *part, int op, int x, int ls2, const nas_op_params *p) {
  char p2[40];
  int mean = b->cur;
  snprintf(p2, sizeof p2, "%.24s.x2", part);
  int x2 = side(b, NAS_OP_SQUARE, &x, 1, NULL, p2);
  snprintf(p2, sizeof p2, "%.24s.s2", part);
  int s2 = side(b, NAS_OP_EXP, &ls2, 1, NULL, p2);
  if (x2 < 0 || s2 < 0) return -1;
  int vin[2] = {x2, s2};
  snprintf(p2, sizeof p2, "%.24s.var", part);
  int var = side(b, op, vin, 2, p, p2);
  if (var < 0) return -1;
  int lin[2] = {mean, var};
  snprintf(p2, sizeof p2, "%.24s.lrt", part);
  return apply(b, NAS_OP_LRT, lin, 2, NULL, p2);
}

/* BN with the layer's activation fused (act: ACT_*, the same numbering as enum nas_act).
 * cm >= 0: gamma and beta are multiplied by that channel mask; cm == -2: by a new channel mask
 * "<part>.bn.cmask" of this layer, which becomes the mask of the current channels. */
static int add_bn(bld *b, const char *part, int act, int cm) {
  int c[1] = {b->c};
  char p2[32], p3[40];
  snprintf(p2, sizeof p2, "%.24s.bn", part);
  int in[5] = {b->cur, new_param(b, p2, "gamma", 1, c, NAS_NODE_PARAM),
               new_param(b, p2, "beta", 1, c, NAS_NODE_PARAM),
               new_param(b, p2, "mean", 1, c, NAS_NODE_STATE),
               new_param(b, p2, "var", 1, c, NAS_NODE_STATE)};
  for (int i = 1; i < 5; i++)
    if (in[i] < 0) return -1;
  if (cm == -2 && (cm = new_param(b, p2, "cmask", 1, c, NAS_NODE_STATE)) < 0) return -1;
  for (int k = 1; cm >= 0 && k <= 2; k++) {
    int min[2] = {in[k], cm};
    snprintf(p3, sizeof p3, "%s.%s", p2, k == 1 ? "gm" : "bm");
    if ((in[k] = side(b, NAS_OP_MASK_MUL, min, 2, NULL, p3)) < 0) return -1;
  }
  nas_op_params p = {.act = act};
  int id = apply(b, NAS_OP_BATCHNORM, in, 5, &p, p2);
  if (id >= 0 && cm >= 0) b->chan_cur = cm;
  return id;
}

static int add_act(bld *b, int act, const char *part) {
  char p2[32];
  snprintf(p2, sizeof p2, "%.24s.act", part);
  if (act == ACT_RELU) return apply(b, NAS_OP_RELU, &b->cur, 1, NULL, p2);
  if (act == ACT_RELU6) return apply(b, NAS_OP_RELU6, &b->cur, 1, NULL, p2);
  return b->cur;
}

/* conv (depthwise when dw) + optional BN + activation. Pruning: a non-depthwise weight is
 * masked when the layer is pruned (pruned_weight); cm is add_bn's channel-mask argument
 * (-1: none). */
static int add_conv(bld *b, const char *part, int dw, int out, const int k[2], const int s[2],
                    int pad, int bn, int bias, int act, int cm) {
  int cin = b->c, x = b->cur, ls2 = -1;
  int wd[4] = {out, k[0], k[1], cin}, dwd[3] = {k[0], k[1], cin}, bd[1] = {dw ? cin : out};
  int in[3] = {b->cur, dw ? new_param(b, part, "w", 3, dwd, NAS_NODE_PARAM)
                          : new_param(b, part, "w", 4, wd, NAS_NODE_PARAM), -1};
  int n_in = 2;
  if (in[1] < 0) return -1;
  if (!dw && (in[1] = pruned_weight(b, part, in[1], &ls2)) < 0) return -1;
  if (!dw && (in[1] = consumer_weight(b, part, in[1])) < 0) return -1;
  if (bias && (in[n_in++] = new_param(b, part, "b", 1, bd, NAS_NODE_PARAM)) < 0) return -1;
  nas_op_params p = {.sh = s[0], .sw = s[1], .padding = pad};
  if (apply(b, dw ? NAS_OP_DWCONV2D : NAS_OP_CONV2D, in, n_in, &p, part) < 0) return -1;
  if (ls2 >= 0 && lrt_branch(b, part, NAS_OP_CONV2D, x, ls2, &p) < 0) return -1;
  b->macs += (long long)b->h * b->w * b->c * k[0] * k[1] * (dw ? 1 : cin);
  if (bn) return add_bn(b, part, act, cm);
  return add_act(b, act, part);
}

/* Winograd conv (3x3, stride 1; tile m = 2 or 4) + optional BN + activation: WINO_WT (weights
 * through G), WINO_IN (input tiles through Bt), WINO_MUL, WINO_OUT (through At, cropped, bias).
 * The weight "w" is the im2row conv's (same name and layout), so weights move between the two;
 * G, Bt, At are STATE (static) or PARAM (flex), initialised to the Cook-Toom tables. The
 * output node is named like the im2row conv's ("l<i>.conv"). MACs are the direct conv's. */
static int add_wino(bld *b, int out, int m, int flex, int bits, int pad, int bn, int bias, int act) {
  const nas_wino_tf *tf = nas_wino_tf_get(m);
  const int a = tf->a, cin = b->c, x = b->cur, kind = flex ? NAS_NODE_PARAM : NAS_NODE_STATE;
  int wd[4] = {out, 3, 3, cin}, gd[2] = {a, 3}, bd[2] = {a, a}, ad[2] = {m, a}, cd[1] = {out};
  int w = new_param(b, "conv", "w", 4, wd, NAS_NODE_PARAM);
  int G = w < 0 ? -1 : new_param(b, "conv", "G", 2, gd, kind);
  int Bt = G < 0 ? -1 : new_param(b, "conv", "Bt", 2, bd, kind);
  int At = Bt < 0 ? -1 : new_param(b, "conv", "At", 2, ad, kind);
  int bi = -1;
  if (At < 0 || (bias && (bi = new_param(b, "conv", "b", 1, cd, NAS_NODE_PARAM)) < 0)) return -1;
  nas_op_params pw = {0}, pv = {.padding = pad, .bits = bits}, pm = {.bits = bits};
  int win[2] = {w, G};
  int U = apply(b, NAS_OP_WINO_WT, win, 2, &pw, "conv.wu");
  int vin[2] = {x, Bt};
  int V = U < 0 ? -1 : apply(b, NAS_OP_WINO_IN, vin, 2, &pv, "conv.wv");
  if (V < 0) return -1;
  nas_op_params po = {.nd = 2, .d = {b->g->nodes[V].p.d[0], b->g->nodes[V].p.d[1]}};
  int min[2] = {V, U};
  int M = apply(b, NAS_OP_WINO_MUL, min, 2, &pm, "conv.wm");
  int oin[3] = {M, At, bi};
  if (M < 0 || apply(b, NAS_OP_WINO_OUT, oin, bias ? 3 : 2, &po, "conv") < 0) return -1;
  b->macs += (long long)b->h * b->w * b->c * 9 * cin;
  if (bn) return add_bn(b, "conv", act, -1);
  return add_act(b, act, "conv");
}

/* ---- layers ------------------------------------------------------------------------------ */

/* Fields each op accepts ("op" always). */
static const struct {
  const char *op;
  const char *fields[13];
} LAYER_FIELDS[] = {
    {"conv", {"out", "k", "stride", "padding", "act", "bn", "bias", "algo", "flex", "wino_bits",
              "sparsity", "channels"}},
    {"dwconv", {"k", "stride", "padding", "act", "bn", "bias"}},
    {"pwconv", {"out", "act", "bn", "bias", "sparsity", "channels"}},
    {"dsconv", {"out", "k", "stride", "padding", "act", "sparsity", "channels"}},
    {"mbconv", {"out", "expand", "k", "stride", "act", "residual", "sparsity"}},
    {"add", {"from", "act"}},
    {"maxpool", {"k", "stride", "padding"}},
    {"avgpool", {"k", "stride", "padding"}},
    {"gap", {0}},
    {"flatten", {0}},
    {"fc", {"out", "act", "bias", "sparsity"}},
    {"dropout", {"rate"}},
    {"lstm", {"units", "return_sequences"}},
    {"gru", {"units", "return_sequences"}},
};
#define N_LAYER_KINDS (int)(sizeof LAYER_FIELDS / sizeof LAYER_FIELDS[0])

static int check_fields(bld *b, const cJSON *o, int kind) {
  for (const cJSON *f = o->child; f; f = f->next) {
    if (strcmp(f->string, "op") == 0) continue;
    int ok = 0;
    for (int i = 0; i < 13 && LAYER_FIELDS[kind].fields[i]; i++)
      if (strcmp(f->string, LAYER_FIELDS[kind].fields[i]) == 0) ok = 1;
    if (!ok) return net_lerr(b, f->string, "unknown field for op '%s'", LAYER_FIELDS[kind].op);
  }
  return NAS_OK;
}

static int layer_conv(bld *b, const cJSON *o, int kind) {
  int out = b->c, k[2] = {1, 1}, s[2] = {1, 1}, pad = 0, act = 0, bn = 1, bias = 0, algo = 0;
  static const char *const ALGOS[] = {"im2row", "wino2", "wino4", NULL};
  if (need_spatial(b)) return -1;
  if (kind != 1 && net_get_int(b, o, "out", INT32_MIN, 1, 1 << 16, &out)) return -1;
  if (kind == 2) {
    k[0] = k[1] = s[0] = s[1] = 1, pad = 0;
  } else {
    if (net_get_pair(b, o, "k", 3, 1, 64, k) || net_get_pair(b, o, "stride", 1, 1, 16, s) ||
        net_get_enum(b, o, "padding", PADS, 1, &pad))
      return -1;
  }
  if (net_get_enum(b, o, "act", ACTS, ACT_RELU, &act) || net_get_bool(b, o, "bn", 1, &bn) ||
      net_get_bool(b, o, "bias", !bn, &bias))
    return -1;
  if (kind == 0) {
    if (net_get_enum(b, o, "algo", ALGOS, 0, &algo)) return -1;
    if (algo == 0) {
      if (cJSON_GetObjectItemCaseSensitive(o, "flex"))
        return net_lerr(b, "flex", "needs algo wino2 or wino4 (this layer is im2row)");
      if (cJSON_GetObjectItemCaseSensitive(o, "wino_bits"))
        return net_lerr(b, "wino_bits", "needs algo wino2 or wino4 (this layer is im2row)");
    } else {
      int flex = 0, bits = 8;
      if (k[0] != 3 || k[1] != 3 || s[0] != 1 || s[1] != 1)
        return net_lerr(b, "algo", "'%s' needs a 3x3 kernel with stride 1; this layer has k [%d,%d], "
                    "stride [%d,%d] (use im2row)", ALGOS[algo], k[0], k[1], s[0], s[1]);
      if (net_get_bool(b, o, "flex", 0, &flex) || net_get_int(b, o, "wino_bits", 8, 8, 16, &bits))
        return -1;
      /* the Winograd steps have no weight or channel masks (train/prune.h): such a layer stays dense */
      if (b->wprune)
        return net_lerr(b, "sparsity", "'%s' layers cannot be pruned (set \"sparsity\": 0 or algo im2row)",
                    ALGOS[algo]);
      if (b->own_cm)
        return net_lerr(b, "channels", "'%s' layers cannot be channel-pruned (set \"channels\": 0 or algo "
                    "im2row)", ALGOS[algo]);
      return add_wino(b, out, algo == 1 ? 2 : 4, flex, bits, pad, bn, bias, act);
    }
  }
  if (bn == 0 && b->own_cm) return net_lerr(b, "channels", "structured pruning needs \"bn\": true");
  int cm = kind == 1 ? b->chan_cur : b->own_cm ? -2 : -1;
  if (kind == 1 && cm >= 0 && !bn)
    return net_lerr(b, "bn", "false, but the channels this depthwise layer reads are pruned");
  return add_conv(b, kind == 0 ? "conv" : kind == 1 ? "dw" : "pw", kind == 1, out, k, s, pad, bn,
                  bias, act, cm);
}

static int layer_dsconv(bld *b, const cJSON *o) {
  int out, k[2], s[2], pad, act;
  static const int one[2] = {1, 1};
  if (need_spatial(b) || net_get_int(b, o, "out", INT32_MIN, 1, 1 << 16, &out) ||
      net_get_pair(b, o, "k", 3, 1, 64, k) || net_get_pair(b, o, "stride", 1, 1, 16, s) ||
      net_get_enum(b, o, "padding", PADS, 1, &pad) || net_get_enum(b, o, "act", ACTS, ACT_RELU, &act))
    return -1;
  int wp = b->wprune;
  b->wprune = 0; /* the depthwise part stays dense; its BN follows pruned input channels */
  if (add_conv(b, "dw", 1, b->c, k, s, pad, 1, 0, act, b->chan_cur) < 0) return -1;
  b->wprune = wp;
  return add_conv(b, "pw", 0, out, one, one, 0, 1, 0, act, b->own_cm ? -2 : -1);
}

static int layer_mbconv(bld *b, const cJSON *o) {
  int out = 0, expand = 1, k[2] = {1, 1}, s[2] = {1, 1}, act = 0, res = 0;
  static const int one[2] = {1, 1};
  if (need_spatial(b) || net_get_int(b, o, "out", INT32_MIN, 1, 1 << 16, &out) ||
      net_get_int(b, o, "expand", 6, 1, 16, &expand) || net_get_pair(b, o, "k", 3, 1, 64, k) ||
      net_get_pair(b, o, "stride", 1, 1, 16, s) || net_get_enum(b, o, "act", ACTS, ACT_RELU6, &act))
    return -1;
  int can_res = s[0] == 1 && s[1] == 1 && out == b->c;
  if (net_get_bool(b, o, "residual", can_res, &res)) return -1;
  if (res && !can_res)
    return net_lerr(b, "residual", "needs stride 1 and out == input channels (%d)", b->c);
  int skip = b->cur;
  if (expand > 1 && add_conv(b, "expand", 0, b->c * expand, one, one, 1, 1, 0, act, -1) < 0)
    return -1;
  int wp = b->wprune;
  b->wprune = 0;
  if (add_conv(b, "dw", 1, b->c, k, s, 1, 1, 0, act, -1) < 0) return -1;
  b->wprune = wp;
  if (add_conv(b, "project", 0, out, one, one, 1, 1, 0, ACT_NONE, -1) < 0) return -1;
  if (res) {
    int in[2] = {b->cur, skip};
    return apply(b, NAS_OP_ADD, in, 2, NULL, "add");
  }
  return b->cur;
}

static int layer_pool(bld *b, const cJSON *o, int op) {
  int k[2], s[2], pad;
  if (need_spatial(b) || net_get_pair(b, o, "k", 2, 1, 64, k)) return -1;
  if (net_get_pair(b, o, "stride", k[0], 1, 64, s) || net_get_enum(b, o, "padding", PADS, 0, &pad))
    return -1;
  if (!cJSON_GetObjectItemCaseSensitive(o, "stride")) s[0] = k[0], s[1] = k[1];
  nas_op_params p = {.kh = k[0], .kw = k[1], .sh = s[0], .sw = s[1], .padding = pad};
  return apply(b, op, &b->cur, 1, &p, op == NAS_OP_MAXPOOL ? "maxpool" : "avgpool");
}

static int layer_fc(bld *b, const cJSON *o) {
  int out = 0, act = 0, bias = 1;
  if (net_get_int(b, o, "out", INT32_MIN, 1, 1 << 20, &out) ||
      net_get_enum(b, o, "act", ACTS, ACT_NONE, &act) || net_get_bool(b, o, "bias", 1, &bias))
    return -1;
  int k = b->flat ? b->c : b->h * b->w * b->c, x = b->cur, ls2 = -1;
  int wd[2] = {out, k}, bd[1] = {out};
  int in[3] = {b->cur, new_param(b, "fc", "w", 2, wd, NAS_NODE_PARAM), -1}, n_in = 2;
  if (in[1] < 0 || (in[1] = pruned_weight(b, "fc", in[1], &ls2)) < 0) return -1;
  if ((in[1] = consumer_weight(b, "fc", in[1])) < 0) return -1;
  if (bias && (in[n_in++] = new_param(b, "fc", "b", 1, bd, NAS_NODE_PARAM)) < 0) return -1;
  if (apply(b, NAS_OP_DENSE, in, n_in, NULL, "fc") < 0) return -1;
  if (ls2 >= 0 && lrt_branch(b, "fc", NAS_OP_DENSE, x, ls2, NULL) < 0) return -1;
  b->macs += (long long)k * out;
  return add_act(b, act, "fc");
}

static int layer_add(bld *b, const cJSON *o, const int *outs) {
  int from, act;
  if (net_get_int(b, o, "from", INT32_MIN, -b->li, b->li - 1, &from) ||
      net_get_enum(b, o, "act", ACTS, ACT_NONE, &act))
    return -1;
  int src = from < 0 ? b->li + from : from;
  if (src < 0 || src >= b->li) return net_lerr(b, "from", "must name an earlier layer");
  const nas_node *a = &b->g->nodes[b->cur], *s = &b->g->nodes[outs[src]];
  if (nas_node_sample_numel(a) != nas_node_sample_numel(s) || a->shape.nd != s->shape.nd)
    return net_lerr(b, "from", "layer %d's output does not have this layer's input shape", src);
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
  if (net_get_int(b, o, "units", INT32_MIN, 1, 4096, &units) ||
      net_get_bool(b, o, "return_sequences", 0, &rs))
    return -1;
  if (b->flat)
    return net_lerr(b, NULL, "needs a sequence [T,F] or spatial [H,W,C] input, but the previous "
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

/* The pruning fields of a layer: "sparsity" (unstructured target, ops with that field) and
 * "channels" (checked by the channel plan); own: the plan gives the layer a channel mask. */
static int layer_prune_fields(bld *b, const cJSON *o, int kind, int own, double frac) {
  b->wprune = 0, b->lsp = 0, b->own_cm = own;
  int prunable = 0;
  for (int i = 0; i < 13 && LAYER_FIELDS[kind].fields[i]; i++)
    prunable |= !strcmp(LAYER_FIELDS[kind].fields[i], "sparsity");
  const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "sparsity");
  if (sp) {
    if (!cJSON_IsNumber(sp) || !(sp->valuedouble >= 0 && sp->valuedouble < 1))
      return net_lerr(b, "sparsity", "expected a number in [0,1)");
    if (b->pc->method == NAS_PRUNE_NONE && sp->valuedouble > 0)
      return net_lerr(b, "sparsity", "needs a top-level \"prune\" object with a method");
    cJSON_AddNumberToObject(b->canon, "sparsity", sp->valuedouble);
  }
  if (cJSON_GetObjectItemCaseSensitive(o, "channels")) cJSON_AddNumberToObject(b->canon, "channels", frac);
  if (prunable && b->pc->method != NAS_PRUNE_NONE && !(sp && sp->valuedouble == 0)) {
    b->wprune = 1;
    b->lsp = sp ? sp->valuedouble : b->pc->sparsity;
  }
  return NAS_OK;
}

/* Layers through which a channel mask passes unchanged (the plan's followers and pass-throughs). */
static int passes_channels(const char *op) {
  static const char *const P[] = {"dwconv", "maxpool", "avgpool", "dropout", "gap", "flatten", NULL};
  for (int i = 0; P[i]; i++)
    if (!strcmp(P[i], op)) return 1;
  return 0;
}

static int lower_layer(bld *b, const cJSON *o, const int *outs) {
  if (!cJSON_IsObject(o))
    return nas_errf(b->e, NAS_EINVAL, "%s: layer %d: expected an object", b->src, b->li), -1;
  const cJSON *opj = cJSON_GetObjectItemCaseSensitive(o, "op");
  b->op = "?";
  if (!cJSON_IsString(opj)) return net_lerr(b, "op", "required (a string)");
  b->op = opj->valuestring;
  int kind = -1;
  for (int i = 0; i < N_LAYER_KINDS; i++)
    if (strcmp(LAYER_FIELDS[i].op, b->op) == 0) kind = i;
  if (kind < 0) return net_lerr(b, "op", "unknown op '%s'", b->op);
  if (check_fields(b, o, kind)) return -1;
  cJSON_AddStringToObject(b->canon, "op", b->op);
  if (layer_prune_fields(b, o, kind, b->plan_own[b->li], b->plan_frac[b->li])) return -1;
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
      if (net_get_float(b, o, "rate", 0.5, 0.0, 1.0, &rate)) return -1;
      nas_op_params p = {.rate = (float)rate};
      return apply(b, NAS_OP_DROPOUT, &b->cur, 1, &p, "dropout");
    }
  }
}

/* ---- top level --------------------------------------------------------------------------- */

static int parse_top(const cJSON *root, const char *src, int in[3], int *classes, nas_err *e) {
  if (!cJSON_IsObject(root)) return nas_errf(e, NAS_EINVAL, "%s: expected a JSON object", src);
  static const char *const TOP[] = {"name", "input", "classes", "layers", "prune", NULL};
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

/* The SVDO form's loss: the cross-entropy plus every KL term. */
static int add_kl_terms(nas_net *n, const bld *b, nas_err *e) {
  for (int i = 0; i < b->n_kl; i++) {
    int in[2] = {n->loss, b->kl[i]};
    char nm[32];
    snprintf(nm, sizeof nm, "loss.kl%d", i);
    if ((n->loss = nas_graph_apply(n->g, NAS_OP_ADD, in, 2, NULL, nm, e)) < 0) return e->code;
  }
  return NAS_OK;
}

static int build(nas_net *n, const cJSON *root, const char *src, int max_batch, uint64_t seed,
                 int svdo, nas_err *e) {
  int in[3];
  if (parse_top(root, src, in, &n->classes, e)) return e->code;
  n->in_h = in[0], n->in_w = in[1], n->in_c = in[2];
  const cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "layers");
  const cJSON *pj = cJSON_GetObjectItemCaseSensitive(root, "prune");
  n->n_layers = cJSON_GetArraySize(ls);
  n->svdo_form = svdo;
  n->layers = nas_calloc((size_t)n->n_layers, sizeof *n->layers);
  int *outs = nas_calloc((size_t)n->n_layers, sizeof *outs);
  int *own = nas_calloc((size_t)n->n_layers * 2, sizeof *own);
  double *frac = nas_calloc((size_t)n->n_layers, sizeof *frac);
  n->g = nas_graph_new(max_batch, seed);
  /* The canonical arch is built as the layers are read; a failed cJSON allocation anywhere in
   * it is caught once, at the end (core/json.h). */
  unsigned long jm = nas_json_mark();
  cJSON *canon = cJSON_CreateObject(), *clayers = cJSON_CreateArray();
  cJSON *pcanon = pj ? cJSON_CreateObject() : NULL;
  if (!n->layers || !outs || !own || !frac || !n->g || !canon || !clayers || (pj && !pcanon)) {
    free(outs), free(own), free(frac);
    cJSON_Delete(canon);
    cJSON_Delete(clayers);
    cJSON_Delete(pcanon);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", src);
  }
  int prc = nas_prune_cfg_parse(pj, src, &n->prune, pcanon, e);
  if (prc == NAS_OK) prc = nas_prune_channel_plan(ls, n->prune.channels, own, own + n->n_layers,
                                                  frac, src, e);
  if (prc == NAS_OK && svdo && n->prune.method != NAS_PRUNE_SVDO)
    prc = nas_errf(e, NAS_EINVAL, "%s: the SVDO training form needs prune.method \"svdo\"", src);
  if (prc != NAS_OK) {
    free(outs), free(own), free(frac);
    cJSON_Delete(canon);
    cJSON_Delete(clayers);
    cJSON_Delete(pcanon);
    return prc;
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (cJSON_IsString(name)) cJSON_AddStringToObject(canon, "name", name->valuestring);
  nas_json_add(canon, "input", cJSON_CreateIntArray(in, 3));
  cJSON_AddNumberToObject(canon, "classes", n->classes);
  if (nas_json_add(canon, "layers", clayers)) { /* clayers is gone */
    free(outs), free(own), free(frac);
    cJSON_Delete(canon);
    cJSON_Delete(pcanon);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", src);
  }
  if (pcanon && nas_json_add(canon, "prune", pcanon)) { /* pcanon is gone */
    free(outs), free(own), free(frac);
    cJSON_Delete(canon);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", src);
  }
  bld b = {.g = n->g, .e = e, .src = src, .h = in[0], .w = in[1], .c = in[2], .pc = &n->prune,
           .svdo = svdo, .chan_cur = -1, .kl_scale = -1, .plan_own = own, .plan_frac = frac};
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
    L->sparsity = b.wprune ? b.lsp : 0, L->channels = own[i] ? frac[i] : 0;
    n->params += b.params, n->macs += b.macs;
    if (!own[i] && !passes_channels(b.op)) b.chan_cur = -1;
  }
  free(outs), free(own), free(frac);
  if (rc == NAS_OK && !(b.flat && b.c == n->classes))
    rc = nas_errf(e, NAS_EINVAL,
                  "%s: the last layer outputs %dx%dx%d values, expected a flat vector of "
                  "classes=%d (end with {\"op\":\"fc\",\"out\":%d})",
                  src, b.h, b.w, b.c, n->classes, n->classes);
  if (rc == NAS_OK) {
    n->logits = b.cur;
    rc = nas_net_add_loss(n, e);
  }
  if (rc == NAS_OK) rc = add_kl_terms(n, &b, e);
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
    nas_prune_init(n->g);
    n->arch_json = cJSON_PrintUnformatted(canon);
    if (!n->arch_json || nas_json_failed(jm))
      rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory building the canonical arch JSON", src);
  }
  cJSON_Delete(canon);
  return rc;
}

int nas_net_build(const char *arch_json, const char *source, int max_batch, uint64_t seed,
                  nas_net **out, nas_err *e) {
  return nas_net_build_form(arch_json, source, max_batch, seed, 0, out, e);
}

int nas_net_build_form(const char *arch_json, const char *source, int max_batch, uint64_t seed,
                       int svdo_form, nas_net **out, nas_err *e) {
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
  int rc = build(n, root, src, max_batch, seed, svdo_form, e);
  cJSON_Delete(root);
  if (rc != NAS_OK) {
    nas_net_free(n);
    return rc;
  }
  *out = n;
  return NAS_OK;
}

int nas_net_rebatch(nas_net *n, int max_batch, nas_err *e) {
  return nas_graph_rebatch(n->g, max_batch, e);
}

void nas_net_free(nas_net *n) {
  if (!n) return;
  nas_graph_free(n->g);
  free(n->layers);
  cJSON_free(n->arch_json);
  free(n);
}
