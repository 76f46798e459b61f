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
    "maxpool", "add", "softmax", "requantize", "copy"};
/* Feature names per kind, NULL-terminated. */
static const char *const F_CONV[] = {"out", "row_iters", "col_iters", "taps", "tap_pairs",
                                     "tap_rem", "pixels", "one", NULL};
static const char *const F_DW[] = {"out", "row_iters", "col_iters", "taps", "pixels", "one", NULL};
static const char *const F_FC[] = {"out", "pairs", "rem", "one", NULL};
static const char *const F_POOL[] = {"out", "row_iters", "taps", "pixels", "one", NULL};
static const char *const F_ELEM[] = {"elems", "one", NULL};
static const char *const F_SOFTMAX[] = {"rows", "elems", "one", NULL};
static const char *const *const FEATS[NAS_NASC_NKIND] = {F_CONV, F_DW, F_FC, F_POOL, F_POOL,
                                                         F_ELEM, F_SOFTMAX, F_ELEM, F_ELEM};

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
    default: return -1;
  }
}

/* Kernel positions inside the input along one axis: sum over outputs of the taps that land
 * in [0, n) (the runtime's bounds checks skip the others). */
static double valid_taps(int out, int stride, int pad, int dil, int k, int n) {
  double s = 0;
  for (int o = 0; o < out; o++) {
    const int i0 = o * stride - pad;
    for (int t = 0; t < k; t++) s += i0 + dil * t >= 0 && i0 + dil * t < n;
  }
  return s;
}

int nas_nasc_features(const nas_g8_graph *g, int i, int dsp, double *f, nas_err *e) {
  const int kind = nas_nasc_kind_of(g, i);
  if (kind < 0) return nas_errf(e, NAS_EINVAL, "operator %d: the C export runs no such kind", i);
  memset(f, 0, sizeof *f * NAS_NASC_MAXF);
  const nas_g8_op *op = &g->ops[i];
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
  nas_tflm_op o;
  int rc = nas_tflm_op_describe(g, i, NAS_TFLM_DSP, &o, e);
  if (rc) return -1;
  const double px = (double)o.out_h * o.out_w;
  if (kind == NAS_NASC_FC) {
    const double rows = (o.out_w > 1 ? o.out_w : 1) * (double)o.out_c, d = o.in_c;
    f[0] = rows, f[1] = dsp ? rows * floor(d / 2) : rows * d, f[2] = dsp ? rows * fmod(d, 2) : 0, f[3] = 1;
    return kind;
  }
  const double vy = valid_taps(o.out_h, o.stride_h, o.pad_h, o.dil_h, o.k_h, o.in_h);
  const double vx = valid_taps(o.out_w, o.stride_w, o.pad_w, o.dil_w, o.k_w, o.in_w);
  const double taps = vy * vx, co = o.out_c;
  if (kind == NAS_NASC_CONV) {
    f[0] = px * co, f[1] = px * co * o.k_h, f[2] = co * vy * o.out_w * o.k_w, f[3] = taps * co;
    f[4] = dsp ? taps * co * floor(o.in_c / 2.0) : taps * co * o.in_c;
    f[5] = dsp ? taps * co * (o.in_c % 2) : 0, f[6] = px, f[7] = 1;
  } else if (kind == NAS_NASC_DWCONV) {
    f[0] = px * co, f[1] = px * co * o.k_h, f[2] = co * vy * o.out_w * o.k_w, f[3] = taps * co;
    f[4] = px, f[5] = 1;
  } else { /* pools: the window clipped to the input */
    f[0] = px * co, f[1] = co * vy * o.out_w, f[2] = taps * co, f[3] = px, f[4] = 1;
  }
  return kind;
}

int nas_nasc_op_insn(const nas_nasc_model *m, int core, const nas_g8_graph *g, int i,
                     double *insn, nas_err *e) {
  if (core < 0 || core >= NAS_NASC_NCORE) return nas_errf(e, NAS_EINVAL, "C export model: core %d is unknown", core);
  double f[NAS_NASC_MAXF];
  int kind = nas_nasc_features(g, i, core != NAS_NASC_M0PLUS, f, e);
  if (kind < 0) return e && e->code ? e->code : NAS_EINVAL;
  if (!m->fitted[core][kind])
    return nas_errf(e, NAS_EINVAL, "operator %d: no C-export coefficients for %s on %s", i,
                    KIND_NAMES[kind], CORE_NAMES[core]);
  double y = 0;
  for (int k = 0; k < nas_nasc_nfeat(kind); k++) y += m->coef[core][kind][k] * f[k];
  *insn = y > 0 ? y : 0;
  return NAS_OK;
}

/* Weight bytes the C export reads from flash for operator i: conv and depthwise walk the whole
 * filter per output pixel (once when it fits the cache), FC reads it once. */
static double flash_bytes(const nas_g8_graph *g, int i, long dcache) {
  const nas_g8_op *op = &g->ops[i];
  if (op->nin < 2 || op->in[1] < 0 || !g->tensors[op->in[1]].data) return 0;
  const double w = (double)g->tensors[op->in[1]].bytes;
  const nas_g8_tensor *y = &g->tensors[op->out];
  if (op->kind == NAS_G8_FULLY_CONNECTED) return w;
  if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_DEPTHWISE_CONV_2D) return 0;
  const double px = y->ndim == 4 ? (double)y->dims[1] * y->dims[2] : 1;
  return w <= dcache ? w : w * px;
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
  *total = 0;
  for (int i = 0; i < g->nops; i++) {
    double insn = 0, per = 0;
    if ((rc = nas_nasc_op_insn(m, core, g, i, &insn, e))) return rc;
    const int kind = nas_nasc_kind_of(g, i);
    for (int k = 0; k < NAS_CYC_NCNT; k++) per += m->mix[core][kind][k] * cpi[k];
    const double lines = ceil(flash_bytes(g, i, p->dcache_bytes) / p->line_bytes);
    op_cycles[i] = p->scale * insn * per + lines * ((p->flash_ws + 1) * p->flash_clock_div - 1);
    *total += op_cycles[i];
  }
  return NAS_OK;
}

/* ---- the coefficient file ---------------------------------------------------------------- */

int nas_nasc_save(const char *path, const nas_nasc_model *m, const char *provenance, nas_err *e) {
  cJSON *root = cJSON_CreateObject(), *feats = NULL, *cores = NULL;
  int ok = root && cJSON_AddStringToObject(root, "format", "nas-nasc-insn-1") &&
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
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "nas-nasc-insn-1"))
    rc = nas_errf(e, NAS_EFORMAT, "%s: field 'format' must be \"nas-nasc-insn-1\"", path);
  for (int k = 0; !rc && k < NAS_NASC_NKIND; k++) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(feats, KIND_NAMES[k]);
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
                               : load_kind(ko, path, c, k, m, e);
    }
  }
  if (!rc && !cJSON_IsObject(cores)) rc = nas_errf(e, NAS_EFORMAT, "%s: field 'cores' must be an object", path);
  cJSON_Delete(root);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}
