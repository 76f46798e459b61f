/* latency/cost.c: lowering arch layers to kernel calls, counting, latency prediction,
 * reports, differentiable choice costs. See cost.h for the counting rules. */
#include "latency/cost.h"
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include "core/json.h"
#include "deploy/lower_shape.h"
#include "latency/cost_runtime.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An arch layer's settled fields (from the canonical arch JSON or a nas_choice). */
typedef struct lyr {
  const char *op;
  int out, kh, kw, sh, sw, same, bn, bias, expand, residual, from, units, gates;
} lyr;

typedef struct shp { int h, w, c, flat; } shp;

static int out_dim(int in, int k, int s, int same) {
  return same ? (in + s - 1) / s : (in - k) / s + 1;
}

/* Scratch of CMSIS-NN int8 kernels (approximate, from the buffer-size rules of
 * arm_convolve_s8 / arm_depthwise_conv_s8_opt: int16 im2col columns); 0 for the reference
 * kernels and for 1x1 / fc. */
static long long scratch(const nas_target *t, int kop, int cin, int kh, int kw) {
  if (t && t->kernel_library != NAS_KLIB_CMSIS_NN) return 0;
  if (kop == NAS_KOP_CONV && !(kh == 1 && kw == 1)) return 2LL * cin * kh * kw * 2;
  if (kop == NAS_KOP_DWCONV) return (long long)cin * kh * kw * 2;
  return 0;
}

static void fill_call(nas_kcall *c, const nas_target *t, int layer, int kop, shp in, shp out,
                      int kh, int kw, int has_bias) {
  memset(c, 0, sizeof *c);
  c->layer = layer, c->kop = kop;
  c->in_h = in.h, c->in_w = in.w, c->in_c = in.c;
  c->out_h = out.h, c->out_w = out.w, c->out_c = out.c, c->kh = kh, c->kw = kw;
  long long oel = (long long)out.h * out.w * out.c, iel = (long long)in.h * in.w * in.c;
  c->in_bytes = iel, c->out_bytes = oel;
  switch (kop) {
    case NAS_KOP_CONV: case NAS_KOP_PWCONV:
      c->macs = oel * kh * kw * in.c, c->weights = (long long)out.c * kh * kw * in.c;
      c->qch = out.c;
      break;
    case NAS_KOP_DWCONV:
      c->macs = oel * kh * kw, c->weights = (long long)kh * kw * in.c, c->qch = out.c;
      break;
    case NAS_KOP_FC:
      c->macs = iel * out.c, c->weights = iel * out.c, c->qch = out.c;
      break;
    case NAS_KOP_POOL: c->ops = oel * kh * kw; break;
    case NAS_KOP_GAP: c->ops = iel; break;
    case NAS_KOP_ADD: c->ops = oel, c->in_bytes = 2 * iel; break;
    default: break;
  }
  if (c->macs) c->ops = c->macs;
  c->biases = has_bias ? out.c : 0;
  c->scratch_bytes = scratch(t, kop, in.c, kh, kw);
  c->flash_bytes = c->weights + 4 * c->biases + 8 * c->qch + 8;
}

/* Lowers one layer from shape *s into calls (at most 4); updates *s. Returns the count or -1
 * (unknown op). rnn: macs given by the caller. */
static int lower(const nas_target *t, int li, const lyr *L, shp *s, nas_kcall *c) {
  const char *op = L->op;
  shp in = *s, o = *s;
  int n = 0;
  if (!strcmp(op, "conv") || !strcmp(op, "dwconv") || !strcmp(op, "pwconv")) {
    int dw = !strcmp(op, "dwconv"), pw = !strcmp(op, "pwconv");
    int kh = pw ? 1 : L->kh, kw = pw ? 1 : L->kw, sh = pw ? 1 : L->sh, sw = pw ? 1 : L->sw;
    o.h = out_dim(in.h, kh, sh, pw || L->same), o.w = out_dim(in.w, kw, sw, pw || L->same);
    o.c = dw ? in.c : L->out;
    fill_call(&c[n++], t, li, dw ? NAS_KOP_DWCONV : pw ? NAS_KOP_PWCONV : NAS_KOP_CONV, in, o,
              kh, kw, L->bn || L->bias);
  } else if (!strcmp(op, "dsconv")) {
    o.h = out_dim(in.h, L->kh, L->sh, L->same), o.w = out_dim(in.w, L->kw, L->sw, L->same);
    fill_call(&c[n++], t, li, NAS_KOP_DWCONV, in, o, L->kh, L->kw, 1);
    shp m = o;
    o.c = L->out;
    fill_call(&c[n++], t, li, NAS_KOP_PWCONV, m, o, 1, 1, 1);
  } else if (!strcmp(op, "mbconv")) {
    shp m = in;
    if (L->expand > 1) {
      m.c = in.c * L->expand;
      fill_call(&c[n++], t, li, NAS_KOP_PWCONV, in, m, 1, 1, 1);
    }
    shp d = m;
    d.h = out_dim(m.h, L->kh, L->sh, 1), d.w = out_dim(m.w, L->kw, L->sw, 1);
    fill_call(&c[n++], t, li, NAS_KOP_DWCONV, m, d, L->kh, L->kw, 1);
    o = d, o.c = L->out;
    fill_call(&c[n++], t, li, NAS_KOP_PWCONV, d, o, 1, 1, 1);
    if (L->residual) {
      fill_call(&c[n++], t, li, NAS_KOP_ADD, o, o, 1, 1, 0);
      for (int i = 0; i < n - 1; i++) c[i].live_extra = (long long)in.h * in.w * in.c;
      c[0].live_extra = 0; /* the first call reads the block input itself */
    }
  } else if (!strcmp(op, "add")) {
    fill_call(&c[n++], t, li, NAS_KOP_ADD, in, in, 1, 1, 0);
  } else if (!strcmp(op, "maxpool") || !strcmp(op, "avgpool")) {
    o.h = out_dim(in.h, L->kh, L->sh, L->same), o.w = out_dim(in.w, L->kw, L->sw, L->same);
    fill_call(&c[n++], t, li, NAS_KOP_POOL, in, o, L->kh, L->kw, 0);
  } else if (!strcmp(op, "gap")) {
    o.h = o.w = 1, o.flat = 1;
    fill_call(&c[n++], t, li, NAS_KOP_GAP, in, o, 1, 1, 0);
  } else if (!strcmp(op, "fc")) {
    o.h = o.w = 1, o.c = L->out, o.flat = 1;
    fill_call(&c[n++], t, li, NAS_KOP_FC, in, o, 1, 1, L->bias);
  } else if (!strcmp(op, "flatten")) {
    o.c = in.h * in.w * in.c, o.h = o.w = 1, o.flat = 1;
  } else if (!strcmp(op, "dropout") || !strcmp(op, "skip")) {
  } else if (!strcmp(op, "lstm") || !strcmp(op, "gru")) {
    int T = in.h, F = in.w * in.c, GH = L->gates * L->units;
    o.h = L->from ? T : 1, o.w = 1, o.c = L->units, o.flat = !L->from;
    nas_kcall *k = &c[n++];
    fill_call(k, t, li, NAS_KOP_RNN, in, o, 1, 1, 0);
    k->macs = k->ops = (long long)T * GH * (F + L->units);
    k->weights = (long long)GH * (F + L->units), k->biases = 2LL * GH, k->qch = 2LL * GH;
    k->flash_bytes = k->weights + 4 * k->biases + 8 * k->qch + 8;
  } else {
    return -1;
  }
  *s = o;
  return n;
}

/* ---- latency ---------------------------------------------------------------------------- */

void nas_kcall_features(const nas_kcall *c, double f[NAS_LF_COUNT]) {
  f[NAS_LF_CALL] = 1;
  f[NAS_LF_OPS] = (double)c->ops;
  f[NAS_LF_OPS_UNALIGNED] = c->in_c % 4 ? (double)c->ops : 0;
  f[NAS_LF_IN_BYTES] = (double)c->in_bytes;
  f[NAS_LF_OUT_BYTES] = (double)c->out_bytes;
  f[NAS_LF_OUT_C] = c->out_c;
}

/* The SPARSE kernel against the dense ones, emulated (bench/bench_sparse.c: conv 3x3 16->32,
 * pwconv 32->32 on 16x16, fc 2048->64 and 64->10 at 30..95% zeros; latency/emulator.h):
 * sparse cycles ~ K1 * non-zero MACs + K2 * (output channel, tap) rows visited + K3 * mask
 * bytes read (least squares, worst error 48% on the 64->10 fc, within 15% on the others);
 * dense cycles ~ cycles per MAC of the kind, measured on the runtime's fast kernels
 * (runtime/nasrt_fast_conv.c, SMLAD on the M4; the same shapes, bench_sparse after the merge
 * of the fast kernels: the dense kernels are 3.5 to 5x faster than before, so on a DSP core
 * the sparse kernel is now slower than the dense one up to 90% zeros; it is kept where it
 * saves flash, and priced). DSP cores (M4, M7, M33, M55) use the Cortex-M4 figures, the M0+
 * its own. The priced kernel call keeps the target's latency model and scales its work (ops)
 * by sparse / dense. */
static const struct {
  double k1, k2, k3;        /* sparse: per non-zero MAC, per row, per mask byte */
  double conv, pw, fc;      /* dense cycles per MAC */
} SPARSE_FIT[2] = {
    {13.24, 66.17, 11.71, 2.268, 3.885, 2.029},  /* cortex-m4 (fast SMLAD dense kernels) */
    {25.94, 133.96, 18.77, 19.41, 32.47, 30.86}, /* cortex-m0plus */
};

double nas_sparse_cycle_ratio(const nas_target *t, int kop, long long macs, long long weights,
                              long long nnz, int out_c, int kh, int kw) {
  if (weights <= 0 || out_c <= 0 || macs <= 0 || kh <= 0 || kw <= 0) return 1;
  const int m0 = t && t->core == NAS_CORE_M0PLUS;
  const long long taps = (long long)kh * kw, pix = macs / weights;
  const long long ci = weights / ((long long)out_c * taps);
  const double rows = (double)out_c * (double)taps * (double)pix;
  const double sparse = SPARSE_FIT[m0].k1 * (double)(pix * nnz) + SPARSE_FIT[m0].k2 * rows +
                        SPARSE_FIT[m0].k3 * rows * (double)((ci + 7) / 8);
  const double cpm = kop == NAS_KOP_FC ? SPARSE_FIT[m0].fc
                     : kop == NAS_KOP_PWCONV ? SPARSE_FIT[m0].pw : SPARSE_FIT[m0].conv;
  const double dense = cpm * (double)macs;
  return dense > 0 ? sparse / dense : 1;
}

void nas_kcall_sparse(nas_kcall *c, const nas_target *t, long long nnz, long long weights) {
  const double r = nas_sparse_cycle_ratio(t, c->kop, c->macs, weights, nnz, c->out_c, c->kh, c->kw);
  c->ops = (long long)((double)c->ops * r + 0.5);
}

static const nas_meas *lookup(const nas_target *t, const nas_kcall *c) {
  for (int i = 0; i < t->n_lookup; i++) {
    const nas_meas *m = &t->lookup[i];
    if (m->kop == c->kop && m->macs == c->ops && m->in_bytes == c->in_bytes &&
        m->out_bytes == c->out_bytes && m->kh == c->kh && m->kw == c->kw &&
        m->cin == c->in_c && m->cout == c->out_c)
      return m;
  }
  return NULL;
}

int nas_kcall_cycles(const nas_target *t, const nas_kcall *c, double *cycles, int *src,
                     nas_err *e) {
  const nas_meas *m = t->n_lookup ? lookup(t, c) : NULL;
  if (m) return *cycles = m->cycles, *src = 2, NAS_OK;
  if (t->model != NAS_LAT_LINEAR) {
    if (t->has_coef[c->kop]) {
      double f[NAS_LF_COUNT], y = 0;
      nas_kcall_features(c, f);
      for (int i = 0; i < NAS_LF_COUNT; i++) y += t->coef[c->kop][i] * f[i];
      *cycles = y > 0 ? y : 0, *src = 0;
      return NAS_OK;
    }
    if (!t->missing_linear)
      return nas_errf(e, NAS_EINVAL, "target %s: the per-layer model has no coefficients for "
                      "op '%s' (per_layer_missing is \"error\")", t->id, nas_kop_name(c->kop));
  }
  /* linear: MACs only (pool/gap/add are free in the MicroNets proxy); the fixed cycles are
   * added once per network by the caller. */
  *cycles = t->cycles_per_mac * (double)c->macs, *src = 1;
  return NAS_OK;
}

/* ---- pricing ---------------------------------------------------------------------------- */

static int pair(const cJSON *o, const char *key, int def, int *a, int *b) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) return *a = *b = def, 0;
  if (cJSON_IsNumber(v)) return *a = *b = v->valueint, 0;
  if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
    *a = cJSON_GetArrayItem(v, 0)->valueint, *b = cJSON_GetArrayItem(v, 1)->valueint;
    return 0;
  }
  return -1;
}
static int ival(const cJSON *o, const char *key, int def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (cJSON_IsNumber(v)) return v->valueint;
  if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
  return def;
}

void nas_price_free(nas_price *p) {
  if (!p) return;
  free(p->calls);
  free(p->layers);
  free(p);
}

/* latency/cost_graph.c: the planner's arena for net (fills arena_bytes, peak_sram_bytes,
 * sram_method, layer sram_bytes, peak_layer). */
int nas_price_net_sram(nas_price *p, const nas_net *net, const nas_lower_cfg *lcfg,
                       const nas_target *t, nas_err *e);

void nas_price_defaults(nas_price *p, const nas_target *t) {
  p->runtime = nas_runtime_name(t->runtime);
  p->latency_model = nas_latmodel_name(t->model);
  p->calibrated = t->calibrated;
  if (t->rt) snprintf(p->latency_note, sizeof p->latency_note, "%s", t->rt->latency_note);
}

int nas_price_net(const nas_net *net, const nas_target *t, nas_price **out, nas_err *e) {
  return nas_price_net_cfg(net, t, NULL, out, e);
}

int nas_price_net_cfg(const nas_net *net, const nas_target *t, const nas_lower_cfg *lcfg,
                      nas_price **out, nas_err *e) {
  *out = NULL;
  cJSON *root;
  if (nas_json_parse(net->arch_json, &root, NULL) == NAS_ENOMEM)
    return nas_errf(e, NAS_ENOMEM, "pricing: out of memory parsing the arch");
  const cJSON *layers = root ? cJSON_GetObjectItemCaseSensitive(root, "layers") : NULL;
  if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) != net->n_layers) {
    cJSON_Delete(root);
    return nas_errf(e, NAS_EINVAL, "canonical arch JSON does not match the network");
  }
  nas_price *p = nas_calloc(1, sizeof *p);
  int nl = net->n_layers;
  if (p) p->calls = nas_calloc((size_t)nl * 4, sizeof *p->calls), p->layers = nas_calloc((size_t)nl, sizeof *p->layers);
  shp *outs = nas_calloc((size_t)nl + 1, sizeof *outs);
  int rc = NAS_OK;
  if (!p || !p->calls || !p->layers || !outs) {
    rc = nas_errf(e, NAS_ENOMEM, "pricing: out of memory for %d layers", nl);
    goto done;
  }
  p->n_layers = nl;
  nas_price_defaults(p, t);
  shp s = {net->in_h, net->in_w, net->in_c, 0};
  int li = 0;
  for (const cJSON *o = layers->child; o; o = o->next, li++) {
    lyr L = {0};
    L.op = cJSON_GetObjectItemCaseSensitive(o, "op")->valuestring;
    L.out = ival(o, "out", 0), L.bn = ival(o, "bn", 0), L.bias = ival(o, "bias", 0);
    if (!strcmp(L.op, "fc")) L.bias = ival(o, "bias", 1);
    L.expand = ival(o, "expand", 1), L.residual = ival(o, "residual", 0);
    int defk = (!strcmp(L.op, "maxpool") || !strcmp(L.op, "avgpool")) ? 2 : 3;
    pair(o, "k", defk, &L.kh, &L.kw);
    pair(o, "stride", strcmp(L.op, "maxpool") && strcmp(L.op, "avgpool") ? 1 : L.kh, &L.sh, &L.sw);
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(o, "padding");
    L.same = cJSON_IsString(pad) ? !strcmp(pad->valuestring, "same")
                                 : strcmp(L.op, "maxpool") && strcmp(L.op, "avgpool");
    if (!strcmp(L.op, "lstm") || !strcmp(L.op, "gru")) {
      L.units = ival(o, "units", 1), L.gates = L.op[0] == 'l' ? 4 : 3;
      L.from = ival(o, "return_sequences", 0); /* reused: sequence output */
    }
    nas_kcall *c = &p->calls[p->n_calls];
    int n = lower(t, li, &L, &s, c);
    if (n < 0) {
      rc = nas_errf(e, NAS_EINVAL, "layer %d (%s): cannot be priced (unknown op)", li, L.op);
      goto done;
    }
    if (!strcmp(L.op, "add")) { /* the skip tensor stays live from its layer to here */
      int from = ival(o, "from", -1), src = from < 0 ? li + from : from;
      long long b = src >= 0 ? (long long)outs[src].h * outs[src].w * outs[src].c : 0;
      for (int j = 0; j < p->n_calls; j++)
        if (p->calls[j].layer > src) p->calls[j].live_extra += b;
    }
    /* nas-c: the weights a pruned layer will have after training (its target fraction of
     * zeros; scope global: the global target) stored sparse where that is smaller */
    const double sp = net->prune.global ? net->prune.sparsity : net->layers[li].sparsity;
    for (int j = 0; t->runtime == NAS_RT_NAS_C && net->layers[li].sparsity > 0 && j < n; j++) {
      nas_kcall *k = &c[j];
      if (k->kop != NAS_KOP_CONV && k->kop != NAS_KOP_PWCONV && k->kop != NAS_KOP_FC) continue;
      long long w = k->weights, nnz = w - (long long)(sp * (double)w + 1e-9);
      long long sb = (long long)k->out_c * k->kh * k->kw *
                         ((w / ((long long)k->out_c * k->kh * k->kw) + 7) / 8) + nnz;
      if (sb >= w) continue;
      k->flash_bytes -= w - sb;
      nas_kcall_sparse(k, t, nnz, w);
    }
    outs[li] = s;
    nas_price_layer *lc = &p->layers[li];
    const nas_layer_info *I = &net->layers[li];
    snprintf(lc->op, sizeof lc->op, "%s", L.op);
    lc->out_h = I->out_h, lc->out_w = I->out_w, lc->out_c = I->out_c;
    lc->macs = I->macs, lc->params = I->params;
    long long m = 0;
    for (int j = 0; j < n; j++) m += c[j].macs;
    if (m != I->macs || (s.h * s.w * s.c) != I->out_h * I->out_w * I->out_c) {
      rc = nas_errf(e, NAS_EINVAL, "layer %d (%s): pricing disagrees with the network builder "
                    "(%lld vs %lld MACs, %dx%dx%d vs %dx%dx%d)", li, L.op, m, I->macs, s.h, s.w,
                    s.c, I->out_h, I->out_w, I->out_c);
      goto done;
    }
    p->n_calls += n;
  }
  /* totals */
  p->macs = net->macs, p->params = net->params;
  p->model_flash_bytes = 8; /* the input tensor's quantisation parameters */
  for (int j = 0; j < p->n_calls; j++) {
    nas_kcall *c = &p->calls[j];
    if ((rc = nas_kcall_cycles(t, c, &c->cycles, &c->lat_src, e))) {
      nas_err_prefix(e, "layer %d (%s)", c->layer, p->layers[c->layer].op);
      goto done;
    }
    nas_price_layer *lc = &p->layers[c->layer];
    lc->flash_bytes += c->flash_bytes;
    long long live = c->in_bytes + c->out_bytes + c->scratch_bytes + c->live_extra;
    if (live > lc->sram_bytes) lc->sram_bytes = live;
    if (live > p->peak_sram_bytes) p->peak_sram_bytes = live, p->peak_call = j;
    static const char *const SRC[] = {"per-layer", "linear", "lookup"};
    const char *sname = SRC[c->lat_src];
    lc->lat_src = !lc->lat_src || !strcmp(lc->lat_src, sname) ? sname : "mixed";
    lc->latency_ms += c->cycles / (t->clock_mhz * 1e3);
    p->cycles += c->cycles;
    p->model_flash_bytes += c->flash_bytes;
  }
  for (int i = 0; i < nl; i++)
    if (!p->layers[i].lat_src) p->layers[i].lat_src = "none";
  if (t->model == NAS_LAT_LINEAR) p->cycles += t->fixed_cycles;
  if (p->cycles < 0) p->cycles = 0;
  p->latency_ms = p->cycles / (t->clock_mhz * 1e3);
  p->flash_bytes = p->model_flash_bytes + t->rt_flash;
  int un = nas_lower_unsupported_layer(net);
  if (un >= 0) {
    snprintf(p->sram_note, sizeof p->sram_note, "layer %d (%s) does not lower to int8", un,
             net->layers[un].op);
  } else {
    nas_err le = {0};
    int lrc = nas_price_net_sram(p, net, lcfg, t, &le);
    if (lrc == NAS_ENOMEM) {
      rc = nas_errf(e, NAS_ENOMEM, "%s", le.msg);
      goto done;
    }
    if (lrc) snprintf(p->sram_note, sizeof p->sram_note, "%.190s", le.msg); /* cannot lower */
  }
  if (p->sram_note[0]) {
    /* no int8 graph to plan: the working-set estimate above stands, labelled as such */
    if (p->n_calls == 0) /* only reshapes: input and output share the tensor */
      p->peak_sram_bytes = (long long)net->in_h * net->in_w * net->in_c;
    p->arena_bytes = p->peak_sram_bytes;
    p->peak_sram_bytes = p->arena_bytes + t->rt_sram;
    p->sram_method = "estimate";
    p->peak_layer = p->n_calls ? p->calls[p->peak_call].layer : 0;
  }
done:
  free(outs);
  cJSON_Delete(root);
  if (rc) nas_price_free(p);
  else *out = p;
  return rc;
}

int nas_price_arch(const char *arch_json, const char *source, const nas_target *t,
                   nas_price **out, nas_err *e) {
  nas_net *net = NULL;
  *out = NULL;
  int rc = nas_net_build(arch_json, source, 1, 1, &net, e);
  if (!rc) rc = nas_price_net(net, t, out, e);
  nas_net_free(net);
  return rc;
}

/* ---- reports ---------------------------------------------------------------------------- */

static const char *binding(const nas_price *p, const nas_target *t, double *frac) {
  double fs = (double)p->peak_sram_bytes / (double)t->sram_bytes;
  double ff = (double)p->flash_bytes / (double)t->flash_bytes;
  *frac = fs > ff ? fs : ff;
  return fs > ff ? "sram" : "flash";
}

char *nas_price_json(const nas_price *p, const nas_target *t, const char *arch_name) {
  unsigned long jm = nas_json_mark(); /* any failed allocation below: NULL (core/json.h) */
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  double frac;
  const char *b = binding(p, t, &frac);
  cJSON_AddStringToObject(o, "arch", arch_name ? arch_name : "");
  cJSON_AddStringToObject(o, "target", t->id);
  cJSON_AddNumberToObject(o, "macs", (double)p->macs);
  cJSON_AddNumberToObject(o, "params", (double)p->params);
  cJSON_AddNumberToObject(o, "flash_bytes", (double)p->flash_bytes);
  cJSON_AddNumberToObject(o, "peak_sram_bytes", (double)p->peak_sram_bytes);
  cJSON_AddNumberToObject(o, "latency_ms", p->latency_ms);
  cJSON_AddNumberToObject(o, "cycles", p->cycles);
  cJSON_AddStringToObject(o, "runtime", p->runtime ? p->runtime : nas_runtime_name(t->runtime));
  cJSON_AddStringToObject(o, "latency_model", p->latency_model ? p->latency_model : nas_latmodel_name(t->model));
  cJSON_AddBoolToObject(o, "calibrated", p->latency_model ? p->calibrated : t->calibrated);
  if (p->latency_note[0]) cJSON_AddStringToObject(o, "latency_note", p->latency_note);
  if (p->arena_note[0]) cJSON_AddStringToObject(o, "arena_note", p->arena_note);
  cJSON_AddNumberToObject(o, "arena_bytes", (double)p->arena_bytes);
  cJSON_AddNumberToObject(o, "runtime_sram_bytes", (double)t->rt_sram);
  cJSON_AddStringToObject(o, "peak_sram_method", p->sram_method ? p->sram_method : "planner");
  cJSON_AddNumberToObject(o, "peak_layer", p->peak_layer);
  if (p->sram_note[0]) cJSON_AddStringToObject(o, "peak_sram_note", p->sram_note);
  cJSON_AddStringToObject(o, "binding", b);
  cJSON_AddNumberToObject(o, "binding_fraction", frac);
  cJSON_AddBoolToObject(o, "fits", frac <= 1.0);
  cJSON *arr = cJSON_AddArrayToObject(o, "layers");
  for (int i = 0; i < p->n_layers; i++) {
    const nas_price_layer *l = &p->layers[i];
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "index", i);
    cJSON_AddStringToObject(x, "op", l->op);
    int sh[3] = {l->out_h, l->out_w, l->out_c};
    nas_json_add(x, "out", cJSON_CreateIntArray(sh, 3));
    cJSON_AddNumberToObject(x, "macs", (double)l->macs);
    cJSON_AddNumberToObject(x, "params", (double)l->params);
    cJSON_AddNumberToObject(x, "flash_bytes", (double)l->flash_bytes);
    cJSON_AddNumberToObject(x, "sram_bytes", (double)l->sram_bytes);
    cJSON_AddNumberToObject(x, "latency_ms", l->latency_ms);
    cJSON_AddStringToObject(x, "latency_source", l->lat_src);
    nas_json_push(arr, x);
  }
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (nas_json_failed(jm)) {
    free(s);
    return NULL;
  }
  return s;
}

/* Appends to a growing string; returns 0 or -1 on allocation failure. */
typedef struct sbuf { char *s; size_t n, cap; } sbuf;
static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static int sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return -1;
    if (b->s && b->n + (size_t)k < b->cap) return b->n += (size_t)k, 0;
    size_t nc = (b->cap + (size_t)k + 1) * 2;
    char *ns = nas_realloc(b->s, nc);
    if (!ns) return -1;
    b->s = ns, b->cap = nc;
  }
}

char *nas_price_table(const nas_price *p, const nas_target *t, const char *arch_name) {
  sbuf b = {0};
  double frac;
  const char *bind = binding(p, t, &frac);
  const int cal = p->latency_model ? p->calibrated : t->calibrated;
  int bad = sb_printf(&b, "%s on %s (%s @ %g MHz, runtime %s, latency model %s%s)\n",
                      arch_name ? arch_name : "arch", t->id, nas_core_name(t->core), t->clock_mhz,
                      p->runtime ? p->runtime : nas_runtime_name(t->runtime),
                      p->latency_model ? p->latency_model : nas_latmodel_name(t->model),
                      cal ? "" : ", UNCALIBRATED");
  if (p->latency_note[0]) bad |= sb_printf(&b, "latency: %s\n", p->latency_note);
  if (p->arena_note[0]) bad |= sb_printf(&b, "arena: %s\n", p->arena_note);
  bad |= sb_printf(&b, "%3s %-8s %-13s %12s %9s %9s %9s %10s  %s\n", "#", "op", "out", "macs",
                   "params", "flash", "sram", "ms", "from");
  for (int i = 0; i < p->n_layers; i++) {
    const nas_price_layer *l = &p->layers[i];
    char sh[32];
    snprintf(sh, sizeof sh, "%dx%dx%d", l->out_h, l->out_w, l->out_c);
    bad |= sb_printf(&b, "%3d %-8s %-13s %12lld %9lld %9lld %9lld %10.3f  %s\n", i, l->op, sh,
                     l->macs, l->params, l->flash_bytes, l->sram_bytes, l->latency_ms, l->lat_src);
  }
  const int est = p->sram_method && !strcmp(p->sram_method, "estimate");
  bad |= sb_printf(&b, "total: %lld MACs, %lld params, flash %lld B (model %lld + runtime %lld) "
                   "of %lld, peak SRAM %lld B (%s %lld at layer %d + runtime %lld) of %lld, "
                   "%.3f ms\n", p->macs, p->params, p->flash_bytes, p->model_flash_bytes,
                   t->rt_flash, t->flash_bytes, p->peak_sram_bytes,
                   est ? "working-set estimate" : "tensor arena", p->arena_bytes, p->peak_layer,
                   t->rt_sram, t->sram_bytes, p->latency_ms);
  if (est) bad |= sb_printf(&b, "peak SRAM is estimated, not planned: %s\n", p->sram_note);
  bad |= sb_printf(&b, "binding budget: %s (%.1f%% used)%s\n", bind, 100 * frac,
                   frac > 1 ? " - DOES NOT FIT" : "");
  if (bad) return free(b.s), NULL;
  return b.s;
}

char *nas_targets_table(const char *dir, nas_err *e) {
  char **ids, builtin[4096];
  int n;
  if (!dir && nas_targets_dir(builtin, sizeof builtin, e)) return NULL;
  if (!dir) dir = builtin;
  if (nas_target_list(dir, &ids, &n, e)) return NULL;
  sbuf b = {0};
  int bad = sb_printf(&b, "%-12s %-14s %7s %9s %9s %-15s %-12s %s\n", "id", "core", "MHz",
                      "sram_KiB", "flash_KiB", "runtime", "latency", "calibrated");
  for (int i = 0; i < n && !bad; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.json", dir, ids[i]);
    nas_target *t;
    if (nas_target_load(path, &t, e)) { bad = 2; break; }
    char cal[64];
    const nas_cycles_part *cp = t->rt && t->rt->have_cycles ? t->rt->part : NULL;
    if (cp && cp->calibrated) snprintf(cal, sizeof cal, "yes (%d board rows)", cp->rows);
    else if (cp) snprintf(cal, sizeof cal, "transferred from %s", cp->from);
    else snprintf(cal, sizeof cal, "%s", t->calibrated ? "yes" : "no (transferred)");
    bad |= sb_printf(&b, "%-12s %-14s %7g %9lld %9lld %-15s %-12s %s\n", t->id,
                     nas_core_name(t->core), t->clock_mhz, t->sram_bytes / 1024,
                     t->flash_bytes / 1024, nas_runtime_name(t->runtime),
                     cp ? "tflm-cycles" : nas_latmodel_name(t->model), cal);
    nas_target_free(t);
  }
  nas_target_ids_free(ids, n);
  if (bad) {
    if (bad == 1) nas_errf(e, NAS_ENOMEM, "targets table: out of memory");
    free(b.s);
    return NULL;
  }
  char *s = b.s ? b.s : nas_calloc(1, 1);
  if (!s) nas_errf(e, NAS_ENOMEM, "targets table: out of memory");
  return s;
}

/* ---- differentiable costs -------------------------------------------------------------- */

int nas_choice_cost(const nas_target *t, const nas_choice *ch, nas_cost *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  if (!ch->op) return nas_errf(e, NAS_EINVAL, "choice: op missing");
  if (ch->in_h < 1 || ch->in_w < 1 || ch->in_c < 1 || ch->stride < 0 || ch->kh < 0 || ch->kw < 0)
    return nas_errf(e, NAS_EINVAL, "choice (%s): bad input shape, kernel or stride", ch->op);
  int pool = !strcmp(ch->op, "maxpool") || !strcmp(ch->op, "avgpool");
  lyr L = {.op = ch->op, .out = ch->out_c, .same = 1, .bn = 1, .bias = 0};
  L.kh = ch->kh ? ch->kh : pool ? 2 : 3, L.kw = ch->kw ? ch->kw : L.kh;
  L.sh = L.sw = ch->stride ? ch->stride : pool ? L.kh : 1;
  L.expand = ch->expand ? ch->expand : 6;
  L.residual = !strcmp(ch->op, "mbconv") && L.sh == 1 && ch->out_c == ch->in_c;
  if (!strcmp(ch->op, "fc")) L.bias = 1, L.bn = 0;
  if (strcmp(ch->op, "dwconv") && !pool && strcmp(ch->op, "gap") && strcmp(ch->op, "skip") &&
      ch->out_c < 1)
    return nas_errf(e, NAS_EINVAL, "choice (%s): out_c must be >= 1", ch->op);
  if (!strcmp(ch->op, "lstm") || !strcmp(ch->op, "gru") || !strcmp(ch->op, "add") ||
      !strcmp(ch->op, "flatten") || !strcmp(ch->op, "dropout"))
    return nas_errf(e, NAS_EINVAL, "choice: op '%s' is not a DNAS layer choice", ch->op);
  shp s = {ch->in_h, ch->in_w, ch->in_c, 0};
  nas_kcall c[4];
  int n = lower(t, 0, &L, &s, c);
  if (n < 0) return nas_errf(e, NAS_EINVAL, "choice: unknown op '%s'", ch->op);
  for (int i = 0; i < n; i++) {
    double cyc;
    int src;
    int rc = nas_kcall_cycles(t, &c[i], &cyc, &src, e);
    if (rc) return rc;
    out->v[NAS_COST_MACS] += (double)c[i].macs;
    out->v[NAS_COST_FLASH] += (double)c[i].flash_bytes;
    double live = (double)(c[i].in_bytes + c[i].out_bytes + c[i].scratch_bytes + c[i].live_extra);
    if (live > out->v[NAS_COST_SRAM]) out->v[NAS_COST_SRAM] = live;
    out->v[NAS_COST_LATENCY] += cyc / (t->clock_mhz * 1e3);
  }
  return NAS_OK;
}

void nas_expected_cost(const nas_cost *costs, int n, const double *w, nas_cost *E) {
  memset(E, 0, sizeof *E);
  for (int i = 0; i < n; i++)
    for (int m = 0; m < NAS_COST_COUNT; m++) E->v[m] += w[i] * costs[i].v[m];
}

void nas_expected_cost_softmax(const nas_cost *costs, int n, const double *logits,
                               double temperature, nas_cost *E, double *grad) {
  double T = temperature > 0 ? temperature : 1, mx = -INFINITY, z = 0;
  for (int i = 0; i < n; i++) mx = logits[i] / T > mx ? logits[i] / T : mx;
  for (int i = 0; i < n; i++) z += exp(logits[i] / T - mx);
  memset(E, 0, sizeof *E);
  for (int i = 0; i < n; i++) { /* p_i recomputed: no temporary array */
    double p = exp(logits[i] / T - mx) / z;
    for (int m = 0; m < NAS_COST_COUNT; m++) E->v[m] += p * costs[i].v[m];
  }
  if (grad)
    for (int i = 0; i < n; i++) {
      double p = exp(logits[i] / T - mx) / z;
      for (int m = 0; m < NAS_COST_COUNT; m++)
        grad[i * NAS_COST_COUNT + m] = p * (costs[i].v[m] - E->v[m]) / T;
    }
}
