/* latency/nasc.c: the instruction and cycles model of the engine's C export (latency/nasc.h):
 * features of runtime/'s kernels, prediction, the coefficient file. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/json.h"
#include "latency/emulator.h"
#include "latency/nasc.h"
#include "latency/target.h"

static const char *const CORE_NAMES[NAS_NASC_NCORE] = {"cortex-m4", "cortex-m7", "cortex-m33",
                                                       "cortex-m0plus"};
static const char *const KIND_NAMES[NAS_NASC_NKIND] = {"conv", "dwconv", "fc", "avgpool",
    "maxpool", "add", "softmax", "requantize", "copy", "wino2", "wino4"};
/* Feature names per kind, NULL-terminated (the kernels' loops: see the *_features helpers). */
static const char *const F_CONV[] = {"d_pairpix", "d_groups", "d_rem", "d_strided", "s_pairpix",
    "s_groups", "s_rem", "pixels", "widen", "tail", "pad_words", "rows", "taps", "stage_bytes",
    "one", NULL};
static const char *const F_DW[] = {"k3_in", "in_taps", "in_rows", "g_pix", "border", "border_taps",
    "border_valid", "groups", "one_pix", "one_taps", "p_out", "p_rows", "p_cols", "p_taps", "wide_taps",
    "one", NULL};
static const char *const F_FC[] = {"rows", "quads", "quad_groups", "pairs", "pair_groups", "rem",
                                   "p_out", "p_macs", "one", NULL};
static const char *const F_POOL[] = {"one", "pixels", "outputs", "rows", "word_taps", "ch_taps", NULL};
static const char *const F_ELEM[] = {"elems", "one", NULL};
static const char *const F_SOFTMAX[] = {"rows", "elems", "one", NULL};
static const char *const F_WINO[] = {"tiles", "tile_in", "flex_macs", "quads", "products",
                                     "tile_out", "out", "rt_weights", "one", NULL};
static const char *const *const FEATS[NAS_NASC_NKIND] = {F_CONV, F_DW, F_FC, F_POOL, F_POOL,
                                                         F_ELEM, F_SOFTMAX, F_ELEM, F_ELEM,
                                                         F_WINO, F_WINO};

const char *nas_nasc_core_name(int c) { return c >= 0 && c < NAS_NASC_NCORE ? CORE_NAMES[c] : NULL; }
int nas_nasc_core_from_name(const char *s) {
  for (int c = 0; s && c < NAS_NASC_NCORE; c++)
    if (!strcmp(CORE_NAMES[c], s)) return c;
  return -1;
}
const char *nas_nasc_kind_name(int k) { return k >= 0 && k < NAS_NASC_NKIND ? KIND_NAMES[k] : NULL; }
int nas_nasc_nfeat(int kind) {
  int n = 0;
  if (kind < 0 || kind >= NAS_NASC_NKIND) return 0;
  while (FEATS[kind][n]) n++;
  return n;
}
const char *nas_nasc_feat_name(int kind, int k) {
  return k >= 0 && k < nas_nasc_nfeat(kind) ? FEATS[kind][k] : NULL;
}
const char *nas_nasc_default_path(void) { return NAS_SOURCE_DIR "/latency/calibration/nasc_insn.json"; }

int nas_nasc_kind_of(const nas_g8_graph *g, int i) {
  switch (g->ops[i].kind) {
    case NAS_G8_CONV_2D: return NAS_NASC_CONV;
    case NAS_G8_DEPTHWISE_CONV_2D: return NAS_NASC_DWCONV;
    case NAS_G8_FULLY_CONNECTED: return NAS_NASC_FC;
    case NAS_G8_AVERAGE_POOL_2D: return NAS_NASC_AVGPOOL;
    case NAS_G8_MAX_POOL_2D: return NAS_NASC_MAXPOOL;
    case NAS_G8_ADD: return NAS_NASC_ADD;
    case NAS_G8_SOFTMAX: return NAS_NASC_SOFTMAX;
    case NAS_G8_QUANTIZE: return NAS_NASC_REQUANT;
    case NAS_G8_RESHAPE: return NAS_NASC_COPY;
    case NAS_G8_WINOGRAD:
      return g->ops[i].wino_m == 2 ? NAS_NASC_WINO2 : g->ops[i].wino_m == 4 ? NAS_NASC_WINO4 : -1;
    default: return -1;
  }
}

/* Top/left padding as deploy/prep8.c derives it (TFLite: the smaller half first). */
static int pad_before(int pad, int in, int out, int stride, int extent) {
  if (pad != NAS_G8_PAD_SAME) return 0;
  const int p = ((out - 1) * stride + extent - in) / 2;
  return p < 0 ? 0 : p;
}

/* Kernel positions inside the input along one axis: sum over outputs of the taps that land
 * in [0, n). */
static double valid_taps(int out, int stride, int pad, int dil, int k, int n) {
  double s = 0;
  for (int o = 0; o < out; o++) {
    const int i0 = o * stride - pad;
    for (int t = 0; t < k; t++) s += i0 + dil * t >= 0 && i0 + dil * t < n;
  }
  return s;
}

/* Outputs along one axis whose whole window lies inside [0, n). */
static double inside(int out, int stride, int pad, int dil, int k, int n) {
  double s = 0;
  for (int o = 0; o < out; o++) s += o * stride - pad >= 0 && o * stride - pad + (k - 1) * dil < n;
  return s;
}

/* Geometry of a conv / depthwise / pool operator: input [n,h,w,ci], output [n,ho,wo,co]. */
typedef struct geom {
  int n, h, w, ci, ho, wo, co, kh, kw, sh, sw, dh, dw, pt, pl;
} geom;

static void geom_of(const nas_g8_graph *g, const nas_g8_op *op, geom *q) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  q->n = x->dims[0], q->h = x->dims[1], q->w = x->dims[2], q->ci = x->dims[3];
  q->ho = y->dims[1], q->wo = y->dims[2], q->co = y->dims[3];
  if (op->kind == NAS_G8_CONV_2D || op->kind == NAS_G8_DEPTHWISE_CONV_2D) {
    const nas_g8_tensor *w = &g->tensors[op->in[1]];
    q->kh = w->dims[1], q->kw = w->dims[2], q->dh = op->dil_h, q->dw = op->dil_w;
  } else {
    q->kh = op->filter_h, q->kw = op->filter_w, q->dh = q->dw = 1;
  }
  q->sh = op->stride_h, q->sw = op->stride_w;
  q->pt = pad_before(op->padding, q->h, q->ho, q->sh, (q->kh - 1) * q->dh + 1);
  q->pl = pad_before(op->padding, q->w, q->wo, q->sw, (q->kw - 1) * q->dw + 1);
}

/* CONV_2D (runtime/nasrt_fast_conv.c; every conv has the repacked filter): a 1x1 filter
 * without scratch runs conv1x1_direct (per output-channel pair and pixel pair: four
 * requantisations, per group of four depths its 23-instruction loop, a stride other than 1
 * finds pixels by division); with scratch, per pixel pair the im2col of two pixels then per
 * channel pair its 18-instruction loop per group and two paired requantisations. The im2col:
 * a 1x1 filter widens the pixel's ci bytes; ci % 4 == 0 widens each tap inside the input and
 * writes the zero point's words for the others; otherwise per filter row the row is widened
 * in place (inside, whole groups), or staged (copied or set byte-wise) then widened. An odd
 * channel counts as half a pair. */
static void conv_features(const geom *q, int scratch, double *f) {
  const double npix = (double)q->n * q->ho * q->wo, p2 = ceil(npix / 2), chp = q->co / 2.0;
  const int D = q->kh * q->kw * q->ci, G = D / 4, r = D % 4, L = q->kw * q->ci;
  if (q->kh == 1 && q->kw == 1 && !scratch) {
    f[0] = chp * p2, f[1] = chp * p2 * G, f[2] = chp * p2 * r;
    f[3] = q->sh != 1 || q->sw != 1 ? chp * p2 : 0;
  } else {
    f[4] = chp * p2, f[5] = chp * p2 * G, f[6] = chp * p2 * r, f[7] = npix;
    const double vy = q->n * valid_taps(q->ho, q->sh, q->pt, q->dh, q->kh, q->h);
    const double vx = valid_taps(q->wo, q->sw, q->pl, q->dw, q->kw, q->w);
    if (q->kh == 1 && q->kw == 1) {
      f[8] = npix * G, f[9] = npix * r, f[12] = npix;
    } else if (q->ci % 4 == 0) {
      const double taps = npix * q->kh * q->kw;
      f[8] = vy * vx * (q->ci / 4), f[10] = (taps - vy * vx) * (q->ci / 4), f[12] = taps;
    } else {
      double nr = 0; /* output columns whose filter row lies inside the input */
      for (int ox = 0; q->dw == 1 && ox < q->wo; ox++) {
        const int ix0 = ox * q->sw - q->pl;
        nr += ix0 >= 0 && ix0 + q->kw <= q->w;
      }
      const double rows = npix * q->kh, vrows = vy * q->wo, vin = vy * nr, vout = vrows - vin;
      f[8] = npix * G, f[9] = npix * r, f[11] = rows;
      f[12] = vout * q->kw;                                     /* per-tap copies */
      f[13] = (rows - vrows) * L + vout * L + (L % 4 ? vin * L : 0); /* set or copied bytes */
    }
  }
  f[14] = 1;
}

/* DEPTHWISE_CONV_2D: multiplier 1 runs runtime/nasrt_fast_dw.c by groups of four channels
 * (per group: constants, the split weights per tap; per output pixel four requantisations; a
 * window inside the input: the unrolled 3x3 (k3_in) or per filter row a loop over its taps;
 * a border window: its taps gathered, the zero point outside), the channels beyond a multiple
 * of four one at a time with bounds checks; over 25 taps (wide) the weights are split per tap
 * and border windows are not gathered; a multiplier above 1 the portable kernel
 * (runtime/nasrt_conv.c: per output value, kernel row, column inside, tap inside). */
static void dw_features(const geom *q, double *f) {
  const double npix = (double)q->n * q->ho * q->wo, taps = (double)q->kh * q->kw;
  const double vy = q->n * valid_taps(q->ho, q->sh, q->pt, q->dh, q->kh, q->h);
  const double vx = valid_taps(q->wo, q->sw, q->pl, q->dw, q->kw, q->w);
  if (q->co != q->ci) {
    f[10] = npix * q->co, f[11] = npix * q->co * q->kh, f[12] = q->co * vy * q->wo * q->kw;
    f[13] = vy * vx * q->co;
  } else {
    const double ng = q->co / 4, rest = q->co % 4;
    const double nin = q->n * inside(q->ho, q->sh, q->pt, q->dh, q->kh, q->h) *
                       inside(q->wo, q->sw, q->pl, q->dw, q->kw, q->w);
    const int k3 = q->kh == 3 && q->kw == 3, wide = taps > 25; /* wide: weights split per tap */
    f[0] = k3 ? ng * nin : 0, f[1] = k3 || wide ? 0 : ng * nin * taps, f[2] = k3 ? 0 : ng * nin * q->kh;
    f[3] = ng * npix, f[4] = ng * (npix - nin), f[5] = wide ? 0 : ng * (npix - nin) * taps;
    f[6] = ng * (vy * vx - nin * taps), f[7] = ng * (1 + (wide ? 0 : taps));
    f[8] = rest * npix, f[9] = rest * npix * taps, f[14] = wide ? ng * npix * taps : 0;
  }
  f[15] = 1;
}

/* FULLY_CONNECTED: with the repacked filter (weights' zero point 0) runtime/nasrt_fast_conv.c
 * per input row: on the DSP cores four channels per pass while the depth has a group of four,
 * then channel pairs (an odd channel as half a pair), the depth % 4 last products per channel;
 * else the portable kernel per output value. */
static void fc_features(const nas_g8_graph *g, const nas_g8_op *op, int dsp, double *f) {
  const nas_g8_tensor *w = &g->tensors[op->in[1]];
  const double co = w->dims[0], d = w->dims[1];
  const double b = floor((double)nas_g8_numel(&g->tensors[op->in[0]]) / d);
  const int G = (int)d / 4;
  f[0] = b;
  if (w->zero_point && w->zero_point[0] != 0) {
    f[6] = b * co, f[7] = b * co * (dsp ? floor(d / 2) + fmod(d, 2) : d);
  } else {
    const double quads = dsp && G > 0 ? floor(co / 4) : 0, pairs = (co - 4 * quads) / 2;
    f[1] = b * quads, f[2] = b * quads * G, f[3] = b * pairs, f[4] = b * pairs * G;
    f[5] = b * co * fmod(d, 4);
  }
  f[8] = 1;
}

/* Pooling (runtime/nasrt_elem.c): per output pixel the window clipped to the input; while it
 * has at most 256 taps four channels per word (per window row, per tap one word), the rest
 * one channel at a time; per output value the clamp (and the average's division: on the M0+
 * a library call whose length depends on the data). */
static void pool_features(const geom *q, double *f) {
  const double nb = q->n, nw = q->ci / 4;
  f[0] = 1, f[1] = nb * q->ho * q->wo, f[2] = f[1] * q->ci;
  for (int oy = 0; oy < q->ho; oy++) {
    const int iy0 = oy * q->sh - q->pt, y0 = iy0 < 0 ? -iy0 : 0, y1 = q->kh < q->h - iy0 ? q->kh : q->h - iy0;
    for (int ox = 0; ox < q->wo; ox++) {
      const int ix0 = ox * q->sw - q->pl, x0 = ix0 < 0 ? -ix0 : 0, x1 = q->kw < q->w - ix0 ? q->kw : q->w - ix0;
      const double ny = y1 - y0, taps = ny * (x1 - x0);
      const double words = taps <= 256 ? nw : 0, chans = q->ci - 4 * words; /* per pixel */
      f[3] += nb * (words + chans) * ny, f[4] += nb * words * taps, f[5] += nb * chans * taps;
    }
  }
}

/* WINOGRAD_CONV_2D (the loops of runtime/nasrt_wino.c): input [n,h,w,ci], output [n,ho,wo,co],
 * tile m; a flex layer (op->in[4] >= 0) runs its tables as products, a wino_rt layer transforms
 * its weights per call. */
static void wino_features(const nas_g8_graph *g, const nas_g8_op *op, double *f) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const double m = op->wino_m, a = m + 2, P = a * a;
  const double n = x->dims[0], ci = x->dims[3], ho = y->dims[1], wo = y->dims[2], co = y->dims[3];
  const double ci4 = ceil(ci / 4) * 4;
  const double tiles = n * ceil(ho / m) * ceil(wo / m);
  const int flex = op->nin > 4 && op->in[4] >= 0;
  f[0] = tiles, f[1] = tiles * ci;
  f[2] = flex ? tiles * (ci * 2 * a * a * a + co * (m * a * a + m * m * a)) : 0;
  f[3] = tiles * co * P * ci4 / 4, f[4] = tiles * co * P, f[5] = tiles * co;
  f[6] = n * ho * wo * co, f[7] = op->wino_rt && !flex ? co * ci : 0, f[8] = 1;
}

int nas_nasc_features(const nas_g8_graph *g, const nas_g8_plan *plan, int i, int dsp, double *f,
                      nas_err *e) {
  const int kind = nas_nasc_kind_of(g, i);
  if (kind < 0) { /* -1, not the error code: callers treat any kind >= 0 as a model kind */
    nas_errf(e, NAS_EINVAL, "operator %d (%s): the C export's instruction model has no such kind",
             i, nas_g8_op_name(g->ops[i].kind));
    return -1;
  }
  memset(f, 0, sizeof *f * NAS_NASC_MAXF);
  const nas_g8_op *op = &g->ops[i];
  if (kind == NAS_NASC_WINO2 || kind == NAS_NASC_WINO4) {
    wino_features(g, op, f);
    return kind;
  }
  const double out = (double)nas_g8_numel(&g->tensors[op->out]);
  if (kind == NAS_NASC_ADD || kind == NAS_NASC_REQUANT || kind == NAS_NASC_COPY) {
    f[0] = out, f[1] = 1;
    return kind;
  }
  if (kind == NAS_NASC_SOFTMAX) {
    const nas_g8_tensor *t = &g->tensors[op->out];
    const double depth = t->ndim ? t->dims[t->ndim - 1] : 1;
    f[0] = out / depth, f[1] = out, f[2] = 1;
    return kind;
  }
  if (kind == NAS_NASC_FC) {
    fc_features(g, op, dsp, f);
    return kind;
  }
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  if (x->ndim != 4 || y->ndim != 4)
    return nas_errf(e, NAS_EINVAL, "operator %d: %s needs 4-d input and output", i, KIND_NAMES[kind]);
  geom q;
  geom_of(g, op, &q);
  if (kind == NAS_NASC_CONV) {
    /* the 1x1 kernel's scratch is optional: the plan says whether it got it (no plan: it did) */
    const int scratch = !plan || !plan->scratch || plan->scratch[i] >= 0;
    conv_features(&q, scratch, f);
  } else if (kind == NAS_NASC_DWCONV) {
    dw_features(&q, f);
  } else {
    pool_features(&q, f);
  }
  return kind;
}

int nas_nasc_op_insn(const nas_nasc_model *m, int core, const nas_g8_graph *g,
                     const nas_g8_plan *plan, int i, double *insn, nas_err *e) {
  if (core < 0 || core >= NAS_NASC_NCORE) return nas_errf(e, NAS_EINVAL, "C export model: core %d is unknown", core);
  double f[NAS_NASC_MAXF];
  int kind = nas_nasc_features(g, plan, i, core != NAS_NASC_M0PLUS, f, e);
  if (kind < 0) return e && e->code ? e->code : NAS_EINVAL;
  if (!m->fitted[core][kind])
    return nas_errf(e, NAS_EINVAL, "operator %d: no C-export coefficients for %s on %s", i,
                    KIND_NAMES[kind], CORE_NAMES[core]);
  double y = 0;
  for (int k = 0; k < nas_nasc_nfeat(kind); k++) y += m->coef[core][kind][k] * f[k];
  *insn = y > 0 ? y : 0;
  return NAS_OK;
}

/* Weight bytes the C export reads from flash for operator i: a conv walks its whole (repacked)
 * filter per pair of output pixels (once when it fits the cache); depthwise with multiplier 1
 * and FC read it once, the portable depthwise kernel per output pixel. */
static double flash_bytes(const nas_g8_graph *g, int i, long dcache) {
  const nas_g8_op *op = &g->ops[i];
  if (op->kind == NAS_G8_WINOGRAD) { /* U once per input tile (or the spatial weights once) */
    const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
    const int m = op->wino_m, a = m + 2, flex = op->nin > 4 && op->in[4] >= 0;
    if (op->wino_rt && !flex) return (double)g->tensors[op->in[1]].bytes; /* into the arena once */
    const double u = (double)y->dims[3] * a * a * ((x->dims[3] + 3) / 4 * 4);
    const double tiles = (double)x->dims[0] * ((y->dims[1] + m - 1) / m) * ((y->dims[2] + m - 1) / m);
    return u <= dcache ? u : u * tiles;
  }
  if (op->nin < 2 || op->in[1] < 0 || !g->tensors[op->in[1]].data) return 0;
  const double w = (double)g->tensors[op->in[1]].bytes;
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  if (op->kind == NAS_G8_FULLY_CONNECTED) return w;
  if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_DEPTHWISE_CONV_2D) return 0;
  const double px = y->ndim == 4 ? (double)y->dims[0] * y->dims[1] * y->dims[2] : 1;
  if (w <= dcache) return w;
  if (op->kind == NAS_G8_CONV_2D) return w * ceil(px / 2);
  return x->ndim == 4 && y->ndim == 4 && x->dims[3] == y->dims[3] ? w : w * px;
}

int nas_nasc_graph_cycles(const nas_nasc_model *m, const nas_cycles_part *p,
                          const nas_g8_graph *g, double *op_cycles, double *total, nas_err *e) {
  const int core = nas_nasc_core_from_name(p->core_name);
  static const int to_core[NAS_NASC_NCORE] = {NAS_CORE_M4, NAS_CORE_M7, NAS_CORE_M33, NAS_CORE_M0PLUS};
  if (core < 0 || p->core < 0)
    return nas_errf(e, NAS_EINVAL, "part %s: no cycles model for the C export on %s", p->id, p->core_name);
  nas_cpi c;
  int rc = nas_cpi_for_core(to_core[core], &c, e);
  if (rc) return rc;
  const double cpi[NAS_CYC_NCNT] = {c.cls[NAS_IC_LDST], c.cls[NAS_IC_MUL], c.cls[NAS_IC_BRANCH],
                                    c.cls[NAS_IC_OTHER], c.xfer, c.taken_extra, c.div_extra};
  /* the plan decides which 1x1 convs get their optional scratch (none made: assumed they do) */
  nas_g8_plan pl;
  nas_err pe = {0};
  const int planned = !nas_g8_plan_build(g, &pl, &pe);
  *total = 0;
  for (int i = 0; i < g->nops; i++) {
    double insn = 0, per = 0;
    if ((rc = nas_nasc_op_insn(m, core, g, planned ? &pl : NULL, i, &insn, e))) break;
    const int kind = nas_nasc_kind_of(g, i);
    for (int k = 0; k < NAS_CYC_NCNT; k++) per += m->mix[core][kind][k] * cpi[k];
    const double lines = ceil(flash_bytes(g, i, p->dcache_bytes) / p->line_bytes);
    op_cycles[i] = p->scale * insn * per + lines * ((p->flash_ws + 1) * p->flash_clock_div - 1);
    *total += op_cycles[i];
  }
  if (planned) nas_g8_plan_free(&pl);
  return rc;
}

/* ---- the coefficient file ---------------------------------------------------------------- */

int nas_nasc_save(const char *path, const nas_nasc_model *m, const char *provenance, nas_err *e) {
  cJSON *root = cJSON_CreateObject(), *feats = NULL, *cores = NULL;
  int ok = root && cJSON_AddStringToObject(root, "format", "nas-nasc-insn-2") &&
           cJSON_AddStringToObject(root, "provenance", provenance ? provenance : "") &&
           (feats = cJSON_AddObjectToObject(root, "features")) != NULL;
  for (int k = 0; ok && k < NAS_NASC_NKIND; k++) {
    cJSON *a = cJSON_AddArrayToObject(feats, KIND_NAMES[k]);
    for (int j = 0; a && j < nas_nasc_nfeat(k); j++) cJSON_AddItemToArray(a, cJSON_CreateString(FEATS[k][j]));
    ok = a != NULL;
  }
  ok = ok && (cores = cJSON_AddObjectToObject(root, "cores")) != NULL;
  for (int c = 0; ok && c < NAS_NASC_NCORE; c++) {
    cJSON *co = cJSON_AddObjectToObject(cores, CORE_NAMES[c]);
    ok = co != NULL;
    for (int k = 0; ok && k < NAS_NASC_NKIND; k++) {
      if (!m->fitted[c][k]) continue;
      cJSON *ko = cJSON_AddObjectToObject(co, KIND_NAMES[k]), *cf = NULL, *mx = NULL;
      ok = ko && (cf = cJSON_AddArrayToObject(ko, "coef")) && (mx = cJSON_AddObjectToObject(ko, "mix"));
      for (int j = 0; ok && j < nas_nasc_nfeat(k); j++) cJSON_AddItemToArray(cf, cJSON_CreateNumber(m->coef[c][k][j]));
      for (int j = 0; ok && j < NAS_CYC_NCNT; j++) ok = cJSON_AddNumberToObject(mx, nas_cyc_cnt_name(j), m->mix[c][k][j]) != NULL;
    }
  }
  char *text = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  FILE *f = fopen(path, "w");
  int rc = NAS_OK;
  if (!f) {
    rc = nas_errf(e, NAS_EIO, "%s: cannot open for writing", path);
  } else {
    if (fputs(text, f) < 0 || fputc('\n', f) < 0) rc = nas_errf(e, NAS_EIO, "%s: write failed", path);
    if (fclose(f) && !rc) rc = nas_errf(e, NAS_EIO, "%s: write failed", path);
  }
  free(text);
  return rc;
}

static int load_kind(const cJSON *ko, const char *path, int c, int k, nas_nasc_model *m, nas_err *e) {
  const cJSON *cf = cJSON_GetObjectItemCaseSensitive(ko, "coef"), *mx = cJSON_GetObjectItemCaseSensitive(ko, "mix");
  if (!cJSON_IsArray(cf) || cJSON_GetArraySize(cf) != nas_nasc_nfeat(k) || !cJSON_IsObject(mx))
    return nas_errf(e, NAS_EFORMAT, "%s: cores.%s.%s: needs coef[%d] and mix", path, CORE_NAMES[c],
                    KIND_NAMES[k], nas_nasc_nfeat(k));
  int j = 0;
  for (const cJSON *v = cf->child; v; v = v->next, j++) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
      return nas_errf(e, NAS_EFORMAT, "%s: cores.%s.%s.coef[%d]: not a finite number", path, CORE_NAMES[c], KIND_NAMES[k], j);
    m->coef[c][k][j] = v->valuedouble;
  }
  for (j = 0; j < NAS_CYC_NCNT; j++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(mx, nas_cyc_cnt_name(j));
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 4))
      return nas_errf(e, NAS_EFORMAT, "%s: cores.%s.%s.mix.%s: expected a number in [0, 4]", path,
                      CORE_NAMES[c], KIND_NAMES[k], nas_cyc_cnt_name(j));
    m->mix[c][k][j] = v->valuedouble;
  }
  m->fitted[c][k] = 1;
  return NAS_OK;
}

int nas_nasc_load(const char *path, nas_nasc_model *m, nas_err *e) {
  memset(m, 0, sizeof *m);
  char *text = NULL;
  long len = 0;
  int rc = nas_read_file(path, &text, &len, e);
  if (rc) return rc;
  cJSON *root = NULL;
  int line = 0;
  (void)len;
  rc = nas_json_parse(text, &root, &line);
  free(text);
  if (rc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "%s: out of memory parsing it", path);
  if (rc) return nas_errf(e, NAS_EFORMAT, "%s:%d: not valid JSON", path, line);
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "features");
  const cJSON *cores = cJSON_GetObjectItemCaseSensitive(root, "cores");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "nas-nasc-insn-2"))
    rc = nas_errf(e, NAS_EFORMAT, "%s: field 'format' must be \"nas-nasc-insn-2\"", path);
  int listed[NAS_NASC_NKIND] = {0}; /* a file written before a kind existed leaves it unfitted */
  if (!rc && !cJSON_IsObject(feats)) rc = nas_errf(e, NAS_EFORMAT, "%s: field 'features' must be an object", path);
  for (int k = 0; !rc && k < NAS_NASC_NKIND; k++) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(feats, KIND_NAMES[k]);
    if (!a) continue;
    listed[k] = 1;
    int j = 0;
    for (const cJSON *v = cJSON_IsArray(a) ? a->child : NULL; v; v = v->next, j++)
      if (j >= nas_nasc_nfeat(k) || !cJSON_IsString(v) || strcmp(v->valuestring, FEATS[k][j])) break;
    if (!cJSON_IsArray(a) || j != nas_nasc_nfeat(k) || cJSON_GetArraySize(a) != j)
      rc = nas_errf(e, NAS_EFORMAT, "%s: features.%s: does not list this build's features (refit: nasc_fit)",
                    path, KIND_NAMES[k]);
  }
  for (const cJSON *co = !rc && cJSON_IsObject(cores) ? cores->child : NULL; !rc && co; co = co->next) {
    int c = nas_nasc_core_from_name(co->string);
    if (c < 0) rc = nas_errf(e, NAS_EFORMAT, "%s: cores.%s: unknown core", path, co->string);
    for (const cJSON *ko = !rc ? co->child : NULL; !rc && ko; ko = ko->next) {
      int k = 0;
      while (k < NAS_NASC_NKIND && strcmp(KIND_NAMES[k], ko->string)) k++;
      rc = k == NAS_NASC_NKIND ? nas_errf(e, NAS_EFORMAT, "%s: cores.%s.%s: unknown kind", path, co->string, ko->string)
           : !listed[k] ? nas_errf(e, NAS_EFORMAT, "%s: cores.%s.%s: the kind has no features list", path, co->string, ko->string)
                        : load_kind(ko, path, c, k, m, e);
    }
  }
  if (!rc && !cJSON_IsObject(cores)) rc = nas_errf(e, NAS_EFORMAT, "%s: field 'cores' must be an object", path);
  cJSON_Delete(root);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}
