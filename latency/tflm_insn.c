/* latency/tflm_insn.c: the per-operator instruction model of TFLM + CMSIS-NN (latency/tflm.h):
 * features that follow the loops of the CMSIS-NN function each path runs (DSP builds), the
 * prediction, and the coefficient file. Loop structure learned from CMSIS-NN 4ab83cc3:
 *   matmul   arm_nn_mat_mult_nt_t_s8: pairs of output channels x pairs of pixels, the input
 *            channels in steps of 16, then 4, then 1; an odd pixel and an odd channel take
 *            slower single-row loops; a per-call pass over the filter (offset contribution).
 *            1x1 fast is one call over all pixels, 1x1 strided one call per output row.
 *   im2col   arm_convolve_s8 (1_x_n calls it on DSP cores): per output pixel a memcpy (or a
 *            memset in the padding) per kernel tap and an int8->int16 conversion of the patch;
 *            per pixel pair arm_nn_mat_mult_kernel_s8_s16 over channel pairs, 4 MACs a step;
 *            an odd last pixel runs a per-channel loop.
 *   dw_3x3   arm_depthwise_conv_3x3_s8: per pixel, 4 channels at a time over the kernel rows
 *            inside the input (3 taps each, fewer at the left/right border), then single
 *            channels.
 *   dw_opt   arm_depthwise_conv_s8_opt: per pixel an int16 patch (arm_q7_to_q15_with_offset
 *            per tap inside the input, memset otherwise), then 4 channels at a time over tap
 *            pairs, then single channels.
 *   fc       arm_nn_vec_mat_mult_t_s8: pairs of output rows over the depth in steps of 4.
 *   pools    per pixel and tap inside the input a pass over the channels.
 *   add      arm_elementwise_add_s8: 4 elements a step, then the rest.
 * Every group also has a constant (TFLM's dispatch, Eval and wrapper code). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/json.h"
#include "latency/tflm.h"

static const char *const core_names[NAS_TFLM_NCORE] = {"cortex-m4", "cortex-m7", "cortex-m33"};
static const char *const group_names[NAS_TFLM_NGROUP] = {
    "matmul", "im2col", "dw_3x3", "dw_opt", "fc", "avgpool", "maxpool", "add", "softmax", "reshape"};

/* Feature names per group; NULL-terminated. */
static const char *const feat_matmul[] = {"blk_c16", "blk_c4", "blk_c1", "blk", "oddl_c16",
    "oddl_c4", "oddl_c1", "oddl", "oddr_macs", "oddr_rows", "rpair_cols", "rpairs", "calls",
    "one", "strided", NULL};
static const char *const feat_im2col[] = {"blk_c4", "blk_c1", "blk", "oddco_c4", "oddco",
    "oddp_c4", "oddp_co", "oddp", "pixels", "cvt_c4", "cvt_c1", "taps", "tap_bytes", "pad_taps",
    "one", "is_1xn", NULL};
static const char *const feat_dw3[] = {"px_g4", "rows_g4", "edge_g4", "px_r", "rows_r", "pixels",
    "one", NULL};
static const char *const feat_dwopt[] = {"px_g4_kp", "px_g4_ko", "px_g4", "px_r_k", "px_r",
    "taps", "tap_c4", "tap_c1", "pad_taps", "row_pads", "pixels", "one", NULL};
static const char *const feat_fc[] = {"rp_c4", "rp_c1", "rp", "or_c4", "or_c1", "or", "one", NULL};
static const char *const feat_avg[] = {"taps", "tap_elems", "pixels", "out_elems", "one", NULL};
static const char *const feat_max[] = {"taps", "tap_c4", "tap_c1", "pixels", "out_elems", "one",
    NULL};
static const char *const feat_add[] = {"quads", "rem", "one", NULL};
static const char *const feat_softmax[] = {"rows", "elems", "one", NULL};
static const char *const feat_reshape[] = {"bytes", "one", NULL};
static const char *const *const feat_names[NAS_TFLM_NGROUP] = {feat_matmul, feat_im2col,
    feat_dw3, feat_dwopt, feat_fc, feat_avg, feat_max, feat_add, feat_softmax, feat_reshape};

int nas_tflm_core_from_name(const char *name) {
  for (int c = 0; c < NAS_TFLM_NCORE; c++)
    if (name && !strcmp(name, core_names[c])) return c;
  return -1;
}

const char *nas_tflm_core_name(int core) {
  return core >= 0 && core < NAS_TFLM_NCORE ? core_names[core] : NULL;
}

const char *nas_tflm_group_name(int group) {
  return group >= 0 && group < NAS_TFLM_NGROUP ? group_names[group] : NULL;
}

int nas_tflm_group_nfeat(int group) {
  if (group < 0 || group >= NAS_TFLM_NGROUP) return 0;
  int n = 0;
  while (feat_names[group][n]) n++;
  return n;
}

const char *nas_tflm_feat_name(int group, int k) {
  return k >= 0 && k < nas_tflm_group_nfeat(group) ? feat_names[group][k] : NULL;
}

int nas_tflm_path_group(int path) {
  switch (path) {
    case NAS_TFLM_CONV_1X1_FAST:
    case NAS_TFLM_CONV_1X1: return NAS_TFLM_G_MATMUL;
    case NAS_TFLM_CONV_1XN:
    case NAS_TFLM_CONV_S8: return NAS_TFLM_G_IM2COL;
    case NAS_TFLM_DW_3X3: return NAS_TFLM_G_DW3X3;
    case NAS_TFLM_DW_OPT: return NAS_TFLM_G_DWOPT;
    case NAS_TFLM_FC: return NAS_TFLM_G_FC;
    case NAS_TFLM_AVGPOOL: return NAS_TFLM_G_AVGPOOL;
    case NAS_TFLM_MAXPOOL: return NAS_TFLM_G_MAXPOOL;
    case NAS_TFLM_ADD: return NAS_TFLM_G_ADD;
    case NAS_TFLM_SOFTMAX: return NAS_TFLM_G_SOFTMAX;
    case NAS_TFLM_RESHAPE: return NAS_TFLM_G_RESHAPE;
    default: return -1;
  }
}

/* Kernel taps of output position o along one axis that fall inside the input. */
static int axis_valid(int o, int stride, int pad, int k, int dil, int in) {
  int n = 0;
  for (int j = 0; j < k; j++) {
    const int p = o * stride - pad + j * dil;
    n += p >= 0 && p < in;
  }
  return n;
}

/* Sums over the output positions of one axis: valid taps, positions clipped at the start,
 * positions clipped at the end, positions clipped on either side. */
typedef struct axis_sum {
  double valid, clip_lo, clip_hi, clip_any;
} axis_sum;

static axis_sum axis(int out, int stride, int pad, int k, int dil, int in) {
  axis_sum a = {0, 0, 0, 0};
  for (int o = 0; o < out; o++) {
    const int base = o * stride - pad;
    const int lo = base < 0, hi = base + (k - 1) * dil >= in;
    a.valid += axis_valid(o, stride, pad, k, dil, in);
    a.clip_lo += lo, a.clip_hi += hi, a.clip_any += lo || hi;
  }
  return a;
}

/* One arm_nn_mat_mult_nt_t_s8 call over l pixels, r output channels, c input channels,
 * repeated `calls` times. */
static void matmul_features(double calls, double l, double r, double c, int strided, double *f) {
  const double pl = floor(l / 2), pr = floor(r / 2), ol = fmod(l, 2), orr = fmod(r, 2);
  const double n16 = floor(c / 16), n4 = floor(fmod(c, 16) / 4), n1 = fmod(c, 4);
  const double blk = calls * pl * pr, odd = calls * ol * pr;
  f[0] = blk * n16, f[1] = blk * n4, f[2] = blk * n1, f[3] = blk;
  f[4] = odd * n16, f[5] = odd * n4, f[6] = odd * n1, f[7] = odd;
  f[8] = calls * orr * l * c, f[9] = calls * orr * l;
  f[10] = calls * pr * c, f[11] = calls * pr;
  f[12] = calls, f[13] = 1, f[14] = strided;
}

static void im2col_features(const nas_tflm_op *o, double *f) {
  const double px = (double)o->out_h * o->out_w, co = o->out_c;
  const double rc = (double)o->k_h * o->k_w * o->in_c;
  const double q = floor(rc / 4), rem = fmod(rc, 4);
  const double pairs = floor(px / 2), oddp = fmod(px, 2), cop = floor(co / 2), oddco = fmod(co, 2);
  axis_sum ay = axis(o->out_h, o->stride_h, o->pad_h, o->k_h, o->dil_h, o->in_h);
  axis_sum ax = axis(o->out_w, o->stride_w, o->pad_w, o->k_w, o->dil_w, o->in_w);
  const double taps = ay.valid * ax.valid;
  f[0] = pairs * cop * q, f[1] = pairs * cop * rem, f[2] = pairs * cop;
  f[3] = pairs * oddco * q, f[4] = pairs * oddco;
  f[5] = oddp * co * q, f[6] = oddp * co, f[7] = oddp;
  f[8] = px, f[9] = px * q, f[10] = px * rem;
  f[11] = taps, f[12] = taps * o->in_c, f[13] = px * o->k_h * o->k_w - taps;
  f[14] = 1, f[15] = o->path == NAS_TFLM_CONV_1XN;
}

static void dw3_features(const nas_tflm_op *o, double *f) {
  const double px = (double)o->out_h * o->out_w;
  const double g4 = floor(o->out_c / 4.0), r = o->out_c % 4;
  axis_sum ay = axis(o->out_h, o->stride_h, o->pad_h, o->k_h, o->dil_h, o->in_h);
  axis_sum ax = axis(o->out_w, o->stride_w, o->pad_w, o->k_w, o->dil_w, o->in_w);
  const double rows = ay.valid * o->out_w, edge = ax.clip_any * o->out_h;
  f[0] = px * g4, f[1] = rows * g4, f[2] = edge * g4;
  f[3] = px * r, f[4] = rows * r, f[5] = px, f[6] = 1;
}

static void dwopt_features(const nas_tflm_op *o, double *f) {
  const double px = (double)o->out_h * o->out_w, c = o->out_c, k = (double)o->k_h * o->k_w;
  const double g4 = floor(c / 4), r = fmod(c, 4);
  axis_sum ay = axis(o->out_h, o->stride_h, o->pad_h, o->k_h, o->dil_h, o->in_h);
  axis_sum ax = axis(o->out_w, o->stride_w, o->pad_w, o->k_w, o->dil_w, o->in_w);
  const double taps = ay.valid * ax.valid;
  const double row_taps = ay.valid * o->out_w * o->k_w; /* taps of the rows inside the input */
  f[0] = px * g4 * floor(k / 2), f[1] = px * g4 * fmod(k, 2), f[2] = px * g4;
  f[3] = px * r * k, f[4] = px * r;
  f[5] = taps, f[6] = taps * floor(o->in_c / 4.0), f[7] = taps * (o->in_c % 4);
  f[8] = row_taps - taps, f[9] = (ay.clip_lo + ay.clip_hi) * o->out_w;
  f[10] = px, f[11] = 1;
}

static void pool_features(const nas_tflm_op *o, int max, double *f) {
  const double px = (double)o->out_h * o->out_w, c = o->out_c;
  axis_sum ay = axis(o->out_h, o->stride_h, o->pad_h, o->k_h, 1, o->in_h);
  axis_sum ax = axis(o->out_w, o->stride_w, o->pad_w, o->k_w, 1, o->in_w);
  const double taps = ay.valid * ax.valid;
  if (max) {
    f[0] = taps, f[1] = taps * floor(c / 4), f[2] = taps * fmod(c, 4);
    f[3] = px, f[4] = px * c, f[5] = 1;
  } else {
    f[0] = taps, f[1] = taps * c, f[2] = px, f[3] = px * c, f[4] = 1;
  }
}

int nas_tflm_features(const nas_tflm_op *o, double *f) {
  const int grp = nas_tflm_path_group(o->path);
  if (grp < 0) return -1;
  memset(f, 0, sizeof(double) * NAS_TFLM_MAXF);
  switch (grp) {
    case NAS_TFLM_G_MATMUL:
      if (o->path == NAS_TFLM_CONV_1X1_FAST)
        matmul_features(1, (double)o->out_h * o->out_w, o->out_c, o->in_c, 0, f);
      else
        matmul_features(o->out_h, o->out_w, o->out_c, o->in_c, 1, f);
      break;
    case NAS_TFLM_G_IM2COL: im2col_features(o, f); break;
    case NAS_TFLM_G_DW3X3: dw3_features(o, f); break;
    case NAS_TFLM_G_DWOPT: dwopt_features(o, f); break;
    case NAS_TFLM_G_FC: {
      const double b = o->out_w, r = o->out_c, c = o->in_c;
      const double rp = floor(r / 2), orr = fmod(r, 2), q = floor(c / 4), rem = fmod(c, 4);
      f[0] = b * rp * q, f[1] = b * rp * rem, f[2] = b * rp;
      f[3] = b * orr * q, f[4] = b * orr * rem, f[5] = b * orr, f[6] = 1;
      break;
    }
    case NAS_TFLM_G_AVGPOOL: pool_features(o, 0, f); break;
    case NAS_TFLM_G_MAXPOOL: pool_features(o, 1, f); break;
    case NAS_TFLM_G_ADD:
      f[0] = floor((double)o->elems / 4), f[1] = (double)(o->elems % 4), f[2] = 1;
      break;
    case NAS_TFLM_G_SOFTMAX:
      f[0] = o->out_w, f[1] = (double)o->elems, f[2] = 1;
      break;
    case NAS_TFLM_G_RESHAPE:
      f[0] = (double)o->bytes, f[1] = 1;
      break;
    default: return -1;
  }
  return grp;
}

int nas_tflm_insn_op_predict(const nas_tflm_insn_model *m, int core, const nas_tflm_op *o,
                             double *insn, nas_err *e) {
  *insn = 0;
  if (core < 0 || core >= NAS_TFLM_NCORE) return nas_errf(e, NAS_EINVAL, "TFLM model: core %d is unknown", core);
  double f[NAS_TFLM_MAXF];
  const int grp = nas_tflm_features(o, f);
  if (grp < 0)
    return nas_errf(e, NAS_EINVAL, "TFLM model: no data for path %s (%s)", nas_tflm_path_name(o->path),
                    nas_tflm_path_entry(o->path)[0] ? nas_tflm_path_entry(o->path) : "reference kernel");
  if (!m->fitted[core][grp])
    return nas_errf(e, NAS_EINVAL, "TFLM model: group %s not fitted for %s", group_names[grp], core_names[core]);
  double s = 0;
  for (int k = 0; k < m->nfeat[grp]; k++) s += m->coef[core][grp][k] * f[k];
  *insn = s > 0 ? s : 0;
  return NAS_OK;
}

void nas_tflm_insn_report_free(nas_tflm_insn_report *r) {
  if (!r) return;
  free(r->op);
  memset(r, 0, sizeof *r);
}

int nas_tflm_insn(const nas_tflm_insn_model *m, const nas_g8_graph *g, int core,
                  nas_tflm_insn_report *r, nas_err *e) {
  memset(r, 0, sizeof *r);
  if (core < 0 || core >= NAS_TFLM_NCORE) return nas_errf(e, NAS_EINVAL, "TFLM model: core %d is unknown", core);
  r->op = nas_calloc((size_t)g->nops + 1, sizeof *r->op);
  if (!r->op) return nas_errf(e, NAS_ENOMEM, "TFLM model: out of memory");
  r->nops = g->nops;
  for (int i = 0; i < g->nops; i++) {
    nas_tflm_op o;
    int rc = nas_tflm_op_describe(g, i, NAS_TFLM_DSP, &o, e);
    if (!rc) rc = nas_tflm_insn_op_predict(m, core, &o, &r->op[i].insn, e);
    if (rc) {
      nas_err_prefix(e, "operator %d", i);
      nas_tflm_insn_report_free(r);
      return rc;
    }
    r->op[i].path = o.path;
    r->ops_total += r->op[i].insn;
  }
  r->overhead = m->per_op[core] * g->nops + m->per_invoke[core];
  r->invoke = r->ops_total + r->overhead;
  return NAS_OK;
}

/* ---- coefficient file ------------------------------------------------------------------ */

static void model_names(nas_tflm_insn_model *m) {
  for (int g = 0; g < NAS_TFLM_NGROUP; g++) m->nfeat[g] = nas_tflm_group_nfeat(g);
}

int nas_tflm_insn_save(const char *path, const nas_tflm_insn_model *m, const char *provenance,
                       nas_err *e) {
  cJSON *root = cJSON_CreateObject(), *feats = NULL, *cores = NULL;
  int ok = root != NULL;
  ok = ok && cJSON_AddStringToObject(root, "format", "nas-tflm-insn-1");
  ok = ok && cJSON_AddStringToObject(root, "provenance", provenance ? provenance : "");
  ok = ok && cJSON_AddStringToObject(root, "predicts",
      "instructions per operator without the profiler hook; production Invoke = sum + per_op * nops + per_invoke");
  ok = ok && (feats = cJSON_AddObjectToObject(root, "features")) != NULL;
  for (int g = 0; ok && g < NAS_TFLM_NGROUP; g++) {
    cJSON *a = cJSON_AddArrayToObject(feats, group_names[g]);
    for (int k = 0; a && k < nas_tflm_group_nfeat(g); k++) cJSON_AddItemToArray(a, cJSON_CreateString(feat_names[g][k]));
    ok = a != NULL;
  }
  ok = ok && (cores = cJSON_AddObjectToObject(root, "cores")) != NULL;
  for (int c = 0; ok && c < NAS_TFLM_NCORE; c++) {
    cJSON *co = cJSON_AddObjectToObject(cores, core_names[c]), *gr = NULL;
    ok = co && cJSON_AddNumberToObject(co, "per_op", m->per_op[c]) &&
         cJSON_AddNumberToObject(co, "per_invoke", m->per_invoke[c]) &&
         (gr = cJSON_AddObjectToObject(co, "groups")) != NULL;
    for (int g = 0; ok && g < NAS_TFLM_NGROUP; g++) {
      if (!m->fitted[c][g]) continue;
      cJSON *a = cJSON_AddArrayToObject(gr, group_names[g]);
      for (int k = 0; a && k < m->nfeat[g]; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(m->coef[c][g][k]));
      ok = a != NULL;
    }
  }
  int rc = ok ? nas_json_write_file(path, root, e) : nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  cJSON_Delete(root);
  return rc;
}

static int load_core(const cJSON *co, const char *path, int c, nas_tflm_insn_model *m, nas_err *e) {
  const cJSON *po = cJSON_GetObjectItemCaseSensitive(co, "per_op");
  const cJSON *pi = cJSON_GetObjectItemCaseSensitive(co, "per_invoke");
  const cJSON *gr = cJSON_GetObjectItemCaseSensitive(co, "groups");
  if (!cJSON_IsNumber(po) || !cJSON_IsNumber(pi) || !cJSON_IsObject(gr))
    return nas_errf(e, NAS_EFORMAT, "%s: cores.%s: needs numbers per_op, per_invoke and an object groups", path, core_names[c]);
  m->per_op[c] = po->valuedouble, m->per_invoke[c] = pi->valuedouble;
  for (const cJSON *it = gr->child; it; it = it->next) {
    int g = 0;
    while (g < NAS_TFLM_NGROUP && strcmp(it->string, group_names[g])) g++;
    if (g == NAS_TFLM_NGROUP)
      return nas_errf(e, NAS_EFORMAT, "%s: cores.%s.groups: unknown group '%s'", path, core_names[c], it->string);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != m->nfeat[g])
      return nas_errf(e, NAS_EFORMAT, "%s: cores.%s.groups.%s: %d coefficients, expected %d", path,
                      core_names[c], it->string, cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0, m->nfeat[g]);
    int k = 0;
    for (const cJSON *v = it->child; v; v = v->next, k++) {
      if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return nas_errf(e, NAS_EFORMAT, "%s: cores.%s.groups.%s[%d]: not a finite number", path, core_names[c], it->string, k);
      m->coef[c][g][k] = v->valuedouble;
    }
    m->fitted[c][g] = 1;
  }
  return NAS_OK;
}

static int load_json(const cJSON *root, const char *path, nas_tflm_insn_model *m, nas_err *e) {
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "nas-tflm-insn-1"))
    return nas_errf(e, NAS_EFORMAT, "%s: field 'format' must be \"nas-tflm-insn-1\"", path);
  const cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "features");
  for (int g = 0; g < NAS_TFLM_NGROUP; g++) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(feats, group_names[g]);
    int k = 0;
    for (const cJSON *v = cJSON_IsArray(a) ? a->child : NULL; v; v = v->next, k++)
      if (k >= m->nfeat[g] || !cJSON_IsString(v) || strcmp(v->valuestring, feat_names[g][k])) break;
    if (!cJSON_IsArray(a) || k != m->nfeat[g] || cJSON_GetArraySize(a) != m->nfeat[g])
      return nas_errf(e, NAS_EFORMAT, "%s: features.%s: does not list this build's %d features (refit: tflm_fit)",
                      path, group_names[g], m->nfeat[g]);
  }
  const cJSON *cores = cJSON_GetObjectItemCaseSensitive(root, "cores");
  for (int c = 0; c < NAS_TFLM_NCORE; c++) {
    const cJSON *co = cJSON_GetObjectItemCaseSensitive(cores, core_names[c]);
    if (!cJSON_IsObject(co)) return nas_errf(e, NAS_EFORMAT, "%s: cores.%s: missing", path, core_names[c]);
    int rc = load_core(co, path, c, m, e);
    if (rc) return rc;
  }
  return NAS_OK;
}

int nas_tflm_insn_load(const char *path, nas_tflm_insn_model *m, nas_err *e) {
  memset(m, 0, sizeof *m);
  model_names(m);
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
  rc = load_json(root, path, m, e);
  cJSON_Delete(root);
  if (rc) {
    memset(m, 0, sizeof *m);
    model_names(m);
  }
  return rc;
}
