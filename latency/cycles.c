/* latency/cycles.c: cycles on a board from predicted instructions (latency/cycles.h): the
 * flash traffic of each CMSIS-NN path, the per-operator and per-Invoke prediction, and the
 * coefficient file latency/calibration/cycles.json. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/json.h"
#include "latency/cycles.h"
#include "latency/cycles_fit.h"
#include "latency/emulator.h"
#include "latency/target.h"

static const char *const CNT_NAMES[NAS_CYC_NCNT] = {"ldst", "mul", "branch", "other",
                                                    "xfer", "taken", "div"};

const char *nas_cyc_cnt_name(int k) { return k >= 0 && k < NAS_CYC_NCNT ? CNT_NAMES[k] : NULL; }

const char *nas_cycles_default_path(void) {
  return NAS_SOURCE_DIR "/latency/calibration/cycles.json";
}

void nas_cycles_model_free(nas_cycles_model *m) {
  if (!m) return;
  free(m->part);
  memset(m, 0, sizeof *m);
}

const nas_cycles_part *nas_cycles_find(const nas_cycles_model *m, const char *id) {
  for (int i = 0; m && id && i < m->nparts; i++)
    if (!strcmp(m->part[i].id, id)) return &m->part[i];
  return NULL;
}

/* ---- flash traffic ---------------------------------------------------------------------- */

static double ceil_half(double n) { return floor((n + 1) / 2); }

double nas_cycles_flash_bytes(const nas_tflm_op *o, long dcache_bytes) {
  const double px = (double)o->out_h * o->out_w, dc = (double)dcache_bytes;
  double w, reuse, passes;
  switch (o->path) {
    case NAS_TFLM_CONV_1X1_FAST: /* one call: the filter-sum pass, then rows by pixel pairs */
      w = (double)o->in_c * o->out_c, reuse = 2.0 * o->in_c, passes = 1 + ceil_half(px);
      return reuse <= dc ? w : w * passes;
    case NAS_TFLM_CONV_1X1: /* the same, one call per output row */
      w = (double)o->in_c * o->out_c, reuse = 2.0 * o->in_c, passes = 1 + ceil_half(o->out_w);
      return o->out_h * (reuse <= dc ? w : w * passes);
    case NAS_TFLM_CONV_1XN:
    case NAS_TFLM_CONV_S8: /* the whole filter per pixel pair */
      w = (double)o->k_h * o->k_w * o->in_c * o->out_c, passes = ceil_half(px);
      return w <= dc ? w : w * passes;
    case NAS_TFLM_DW_3X3:
    case NAS_TFLM_DW_OPT:
    case NAS_TFLM_DW_S8: /* the whole filter per output pixel */
      w = (double)o->k_h * o->k_w * o->out_c;
      return w <= dc ? w : w * px;
    case NAS_TFLM_FC:
    case NAS_TFLM_FC_PER_CHANNEL:
    case NAS_TFLM_FC_1X1: /* once per batch row */
      w = (double)o->in_c * o->out_c;
      return w * (o->out_w > 1 ? o->out_w : 1);
    default:
      return 0;
  }
}

/* ---- prediction -------------------------------------------------------------------------- */

static int core_cpi(const nas_cycles_part *p, double cpi[NAS_CYC_NCNT], nas_err *e) {
  static const int to_core[NAS_TFLM_NCORE] = {NAS_CORE_M4, NAS_CORE_M7, NAS_CORE_M33};
  if (p->core < 0 || p->core >= NAS_TFLM_NCORE)
    return nas_errf(e, NAS_EINVAL, "part %s: core %s has no instruction model (%s)", p->id,
                    p->core_name, p->calibration);
  nas_cpi c;
  int rc = nas_cpi_for_core(to_core[p->core], &c, e);
  if (rc) return rc;
  cpi[NAS_CYC_LDST] = c.cls[NAS_IC_LDST], cpi[NAS_CYC_MUL] = c.cls[NAS_IC_MUL];
  cpi[NAS_CYC_BRANCH] = c.cls[NAS_IC_BRANCH], cpi[NAS_CYC_OTHER] = c.cls[NAS_IC_OTHER];
  cpi[NAS_CYC_XFER] = c.xfer, cpi[NAS_CYC_TAKEN] = c.taken_extra, cpi[NAS_CYC_DIV] = c.div_extra;
  return NAS_OK;
}

static int mix_cycles(const nas_cycles_model *m, const nas_cycles_part *p, int path, double insn,
                      double *out, nas_err *e) {
  double cpi[NAS_CYC_NCNT];
  int rc = core_cpi(p, cpi, e);
  if (rc) return rc;
  if (path < 0 || path > NAS_TFLM_NPATH || !m->has_mix[p->core][path])
    return nas_errf(e, NAS_EINVAL, "part %s: no instruction-class mix for path %s on %s", p->id,
                    path == NAS_TFLM_NPATH ? "all" : nas_tflm_path_name(path),
                    nas_tflm_core_name(p->core));
  double c = 0;
  for (int k = 0; k < NAS_CYC_NCNT; k++) c += m->mix[p->core][path][k] * cpi[k];
  *out = insn * c;
  return NAS_OK;
}

int nas_cycles_op_predict(const nas_cycles_model *m, const nas_cycles_part *p,
                          const nas_tflm_op *o, double insn, unsigned flags, nas_cycles_op *r,
                          nas_err *e) {
  memset(r, 0, sizeof *r);
  r->path = o->path, r->insn = insn;
  int rc = mix_cycles(m, p, o->path, insn, &r->core_cycles, e);
  if (rc) return rc;
  if (!(flags & NAS_CYC_WEIGHTS_SRAM)) {
    r->flash_bytes = nas_cycles_flash_bytes(o, p->dcache_bytes);
    r->flash_cycles = ceil(r->flash_bytes / p->line_bytes) * ((p->flash_ws + 1) * p->flash_clock_div - 1);
  }
  r->cycles = p->scale * r->core_cycles + r->flash_cycles;
  return NAS_OK;
}

int nas_cycles_overhead(const nas_cycles_model *m, const nas_cycles_part *p, double insn,
                        double *core_cycles, nas_err *e) {
  return mix_cycles(m, p, NAS_TFLM_NPATH, insn, core_cycles, e);
}

void nas_cycles_report_free(nas_cycles_report *r) {
  if (!r) return;
  free(r->op);
  memset(r, 0, sizeof *r);
}

int nas_cycles_graph(const nas_cycles_model *m, const nas_tflm_insn_model *im,
                     const nas_cycles_part *p, const nas_g8_graph *g, unsigned flags,
                     nas_cycles_report *r, nas_err *e) {
  memset(r, 0, sizeof *r);
  if (p->core < 0 || p->core >= NAS_TFLM_NCORE)
    return nas_errf(e, NAS_EINVAL, "part %s: core %s has no instruction model (%s)", p->id,
                    p->core_name, p->calibration);
  r->op = nas_calloc((size_t)g->nops + 1, sizeof *r->op);
  if (!r->op) return nas_errf(e, NAS_ENOMEM, "cycles: out of memory");
  r->nops = g->nops;
  int rc = NAS_OK;
  for (int i = 0; !rc && i < g->nops; i++) {
    nas_tflm_op o;
    double insn = 0;
    rc = nas_tflm_op_describe(g, i, NAS_TFLM_DSP, &o, e);
    if (!rc) rc = nas_tflm_insn_op_predict(im, p->core, &o, &insn, e);
    if (!rc) rc = nas_cycles_op_predict(m, p, &o, insn, flags, &r->op[i], e);
    if (rc) {
      if (e && strncmp(e->msg, "operator ", 9)) nas_err_prefix(e, "operator %d", i);
      break;
    }
    r->insn += insn, r->core_cycles += r->op[i].core_cycles;
    r->flash_cycles += r->op[i].flash_cycles, r->cycles += r->op[i].cycles;
  }
  double oc = 0;
  r->overhead_insn = im->per_op[p->core] * g->nops + im->per_invoke[p->core];
  if (!rc) rc = nas_cycles_overhead(m, p, r->overhead_insn, &oc, e);
  if (rc) {
    nas_cycles_report_free(r);
    return rc;
  }
  r->overhead_cycles = p->scale * oc;
  r->insn += r->overhead_insn, r->core_cycles += oc, r->cycles += r->overhead_cycles;
  r->ms = r->cycles / (p->clock_mhz * 1e3);
  return NAS_OK;
}

/* ---- the coefficient file ---------------------------------------------------------------- */

static int path_index(const char *name) {
  if (!strcmp(name, "all")) return NAS_TFLM_NPATH;
  for (int k = 0; k < NAS_TFLM_NPATH; k++)
    if (!strcmp(name, nas_tflm_path_name(k))) return k;
  return -1;
}

static int get_num(const cJSON *o, const char *key, const char *path, const char *where, double lo,
                   double hi, double *v, nas_err *e) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < lo || x->valuedouble > hi)
    return nas_errf(e, NAS_EFORMAT, "%s: %s.%s: expected a number in [%g, %g]", path, where, key, lo, hi);
  *v = x->valuedouble;
  return NAS_OK;
}

static int get_str(const cJSON *o, const char *key, const char *path, const char *where, char *dst,
                   size_t n, int required, nas_err *e) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!x && !required) return NAS_OK;
  if (!cJSON_IsString(x) || strlen(x->valuestring) >= n)
    return nas_errf(e, NAS_EFORMAT, "%s: %s.%s: expected a string of at most %zu characters", path,
                    where, key, n - 1);
  memcpy(dst, x->valuestring, strlen(x->valuestring) + 1);
  return NAS_OK;
}

static int load_mix(const cJSON *mix, const char *path, nas_cycles_model *m, nas_err *e) {
  if (!cJSON_IsObject(mix)) return nas_errf(e, NAS_EFORMAT, "%s: field 'mix' must be an object", path);
  for (const cJSON *co = mix->child; co; co = co->next) {
    int c = nas_tflm_core_from_name(co->string);
    if (c < 0 || !cJSON_IsObject(co))
      return nas_errf(e, NAS_EFORMAT, "%s: mix.%s: not a core with an instruction model", path, co->string);
    for (const cJSON *pa = co->child; pa; pa = pa->next) {
      int k = path_index(pa->string);
      if (k < 0 || !cJSON_IsObject(pa))
        return nas_errf(e, NAS_EFORMAT, "%s: mix.%s.%s: unknown path", path, co->string, pa->string);
      char where[96];
      snprintf(where, sizeof where, "mix.%s.%s", co->string, pa->string);
      for (int j = 0; j < NAS_CYC_NCNT; j++) {
        int rc = get_num(pa, CNT_NAMES[j], path, where, 0, 4, &m->mix[c][k][j], e);
        if (rc) return rc;
      }
      m->has_mix[c][k] = 1;
    }
  }
  return NAS_OK;
}

/* One part. facts: parts.json (datasheet facts, 'from' for a transferred part, nothing
 * fitted); else cycles.json (calibrated with its fitted fields, or 'from'). */
static int load_part(const cJSON *o, const char *path, int facts, nas_cycles_part *p, nas_err *e) {
  char where[64];
  if (!cJSON_IsObject(o) || strlen(o->string) >= sizeof p->id)
    return nas_errf(e, NAS_EFORMAT, "%s: parts.%s: expected an object named by a target id", path, o->string);
  snprintf(p->id, sizeof p->id, "%s", o->string);
  snprintf(where, sizeof where, "parts.%s", p->id);
  static const char *const keys[] = {"core", "clock_mhz", "flash_wait_states", "flash_clock_div",
      "line_bytes", "dcache_bytes", "memory_source", "from", "calibration",
      "calibrated", "scale", "rows", "err_median", "err_max", NULL};
  const int nfacts = 9; /* keys before "calibrated" */
  for (const cJSON *f = o->child; f; f = f->next) {
    int k = 0;
    while (keys[k] && strcmp(keys[k], f->string)) k++;
    if (!keys[k] || (facts && k >= nfacts))
      return nas_errf(e, NAS_EFORMAT, "%s: %s.%s: unknown field%s", path, where, f->string,
                      keys[k] ? " here (fitted fields belong in cycles.json)" : "");
  }
  int rc = get_str(o, "core", path, where, p->core_name, sizeof p->core_name, 1, e);
  if (!rc) rc = get_str(o, "calibration", path, where, p->calibration, sizeof p->calibration, !facts, e);
  if (!rc) rc = get_num(o, "clock_mhz", path, where, 1, 5000, &p->clock_mhz, e);
  if (rc) return rc;
  p->core = nas_tflm_core_from_name(p->core_name);
  if (p->core < 0) {
    if (!p->calibration[0])
      return nas_errf(e, NAS_EFORMAT, "%s: %s.calibration: say why core %s is not priced", path, where, p->core_name);
    return NAS_OK; /* listed with why it cannot be priced */
  }
  double line = 0, dc = 0;
  if ((rc = get_num(o, "flash_wait_states", path, where, 0, 64, &p->flash_ws, e)) ||
      (rc = get_num(o, "flash_clock_div", path, where, 1, 16, &p->flash_clock_div, e)) ||
      (rc = get_num(o, "line_bytes", path, where, 1, 1024, &line, e)) ||
      (rc = get_num(o, "dcache_bytes", path, where, 0, 1 << 24, &dc, e)) ||
      (rc = get_str(o, "memory_source", path, where, p->memory_source, sizeof p->memory_source, 1, e)) ||
      (rc = get_str(o, "from", path, where, p->from, sizeof p->from, 0, e)))
    return rc;
  p->line_bytes = (int)line, p->dcache_bytes = (long)dc;
  if (facts) {
    if (p->from[0] && !p->calibration[0])
      return nas_errf(e, NAS_EFORMAT, "%s: %s.calibration: say why the transfer from %s is sound", path, where, p->from);
    return NAS_OK;
  }
  const cJSON *cal = cJSON_GetObjectItemCaseSensitive(o, "calibrated");
  if (!cJSON_IsBool(cal)) return nas_errf(e, NAS_EFORMAT, "%s: %s.calibrated: expected true or false", path, where);
  p->calibrated = cJSON_IsTrue(cal);
  if (p->calibrated == !!p->from[0])
    return nas_errf(e, NAS_EFORMAT, "%s: %s: a part is either calibrated or has 'from' (transferred)", path, where);
  if (!p->calibrated) return NAS_OK;
  double rows;
  if ((rc = get_num(o, "scale", path, where, 0.01, 100, &p->scale, e)) ||
      (rc = get_num(o, "rows", path, where, 1, 1e6, &rows, e)) ||
      (rc = get_num(o, "err_median", path, where, 0, 100, &p->err_median, e)) ||
      (rc = get_num(o, "err_max", path, where, 0, 100, &p->err_max, e)))
    return rc;
  p->rows = (int)rows;
  return NAS_OK;
}

/* The 'parts' object of root into m->part. */
static int load_parts(const cJSON *root, const char *path, int facts, nas_cycles_model *m, nas_err *e) {
  const cJSON *parts = cJSON_GetObjectItemCaseSensitive(root, "parts");
  int n = cJSON_IsObject(parts) ? cJSON_GetArraySize(parts) : 0, rc;
  if (n < 1) return nas_errf(e, NAS_EFORMAT, "%s: field 'parts' must be a non-empty object", path);
  free(m->part);
  m->nparts = 0;
  m->part = nas_calloc((size_t)n, sizeof *m->part);
  if (!m->part) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  for (const cJSON *o = parts->child; o; o = o->next) {
    if ((rc = load_part(o, path, facts, &m->part[m->nparts], e))) return rc;
    if (nas_cycles_find(m, m->part[m->nparts].id))
      return nas_errf(e, NAS_EFORMAT, "%s: parts.%s: listed twice", path, o->string);
    m->nparts++;
  }
  for (int i = 0; i < m->nparts; i++) {
    nas_cycles_part *p = &m->part[i];
    if (p->core < 0 || !p->from[0]) continue;
    const nas_cycles_part *src = nas_cycles_find(m, p->from);
    if (!src || src->core < 0 || src->from[0] || (!facts && !src->calibrated))
      return nas_errf(e, NAS_EFORMAT, "%s: parts.%s.from: '%s' is not a calibrated part", path, p->id, p->from);
    p->scale = src->scale;
  }
  return NAS_OK;
}

static int parse_file(const char *path, cJSON **root, nas_err *e) {
  char *text = NULL;
  long len = 0;
  int rc = nas_read_file(path, &text, &len, e);
  if (rc) return rc;
  (void)len;
  int line = 0;
  rc = nas_json_parse(text, root, &line);
  free(text);
  if (rc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "%s: out of memory parsing it", path);
  return rc ? nas_errf(e, NAS_EFORMAT, "%s:%d: not valid JSON", path, line) : NAS_OK;
}

int nas_cycles_parts_load(const char *path, nas_cycles_model *m, nas_err *e) {
  cJSON *root = NULL;
  int rc = parse_file(path, &root, e);
  if (rc) return rc;
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "nas-cycles-parts-1"))
    rc = nas_errf(e, NAS_EFORMAT, "%s: field 'format' must be \"nas-cycles-parts-1\"", path);
  if (!rc) rc = load_parts(root, path, 1, m, e);
  cJSON_Delete(root);
  if (rc) free(m->part), m->part = NULL, m->nparts = 0;
  return rc;
}

static int load_json(const cJSON *root, const char *path, nas_cycles_model *m, nas_err *e) {
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "nas-cycles-1"))
    return nas_errf(e, NAS_EFORMAT, "%s: field 'format' must be \"nas-cycles-1\"", path);
  int rc = get_str(root, "provenance", path, "(top)", m->provenance, sizeof m->provenance, 1, e);
  if (!rc) rc = load_mix(cJSON_GetObjectItemCaseSensitive(root, "mix"), path, m, e);
  if (rc) return rc;
  if ((rc = load_parts(root, path, 0, m, e))) return rc;
  for (int i = 0; i < m->nparts; i++) /* every priced core needs its mix */
    if (m->part[i].core >= 0 && !m->has_mix[m->part[i].core][NAS_TFLM_NPATH])
      return nas_errf(e, NAS_EFORMAT, "%s: mix.%s.all: missing (part %s)", path,
                      nas_tflm_core_name(m->part[i].core), m->part[i].id);
  return NAS_OK;
}

int nas_cycles_load(const char *path, nas_cycles_model *m, nas_err *e) {
  memset(m, 0, sizeof *m);
  cJSON *root = NULL;
  int rc = parse_file(path, &root, e);
  if (rc) return rc;
  rc = load_json(root, path, m, e);
  cJSON_Delete(root);
  if (rc) nas_cycles_model_free(m);
  return rc;
}

static int save_part(cJSON *parts, const nas_cycles_part *p) {
  cJSON *o = cJSON_AddObjectToObject(parts, p->id);
  int ok = o && cJSON_AddStringToObject(o, "core", p->core_name) &&
           cJSON_AddNumberToObject(o, "clock_mhz", p->clock_mhz);
  if (ok && p->core >= 0) {
    ok = cJSON_AddNumberToObject(o, "flash_wait_states", p->flash_ws) &&
         cJSON_AddNumberToObject(o, "flash_clock_div", p->flash_clock_div) &&
         cJSON_AddNumberToObject(o, "line_bytes", p->line_bytes) &&
         cJSON_AddNumberToObject(o, "dcache_bytes", (double)p->dcache_bytes) &&
         cJSON_AddStringToObject(o, "memory_source", p->memory_source) &&
         cJSON_AddBoolToObject(o, "calibrated", p->calibrated);
    if (ok && p->calibrated)
      ok = cJSON_AddNumberToObject(o, "scale", p->scale) && cJSON_AddNumberToObject(o, "rows", p->rows) &&
           cJSON_AddNumberToObject(o, "err_median", p->err_median) &&
           cJSON_AddNumberToObject(o, "err_max", p->err_max);
    else if (ok)
      ok = cJSON_AddStringToObject(o, "from", p->from) != NULL;
  }
  return ok && cJSON_AddStringToObject(o, "calibration", p->calibration);
}

int nas_cycles_save(const char *path, const nas_cycles_model *m, nas_err *e) {
  cJSON *root = cJSON_CreateObject(), *mix = NULL, *parts = NULL;
  int ok = root && cJSON_AddStringToObject(root, "format", "nas-cycles-1") &&
           cJSON_AddStringToObject(root, "provenance", m->provenance) &&
           cJSON_AddStringToObject(root, "model",
               "per operator: scale * insn * sum_k mix[k] * cpi[k] (cpi: latency/emu_decode.c) + "
               "ceil(flash bytes / line_bytes) * ((flash_wait_states + 1) * flash_clock_div - 1); see latency/cycles.h") &&
           (mix = cJSON_AddObjectToObject(root, "mix")) != NULL;
  for (int c = 0; ok && c < NAS_TFLM_NCORE; c++) {
    cJSON *co = cJSON_AddObjectToObject(mix, nas_tflm_core_name(c));
    ok = co != NULL;
    for (int k = 0; ok && k <= NAS_TFLM_NPATH; k++) {
      if (!m->has_mix[c][k]) continue;
      cJSON *pa = cJSON_AddObjectToObject(co, k == NAS_TFLM_NPATH ? "all" : nas_tflm_path_name(k));
      ok = pa != NULL;
      for (int j = 0; ok && j < NAS_CYC_NCNT; j++)
        ok = cJSON_AddNumberToObject(pa, CNT_NAMES[j], m->mix[c][k][j]) != NULL;
    }
  }
  ok = ok && (parts = cJSON_AddObjectToObject(root, "parts")) != NULL;
  for (int i = 0; ok && i < m->nparts; i++) ok = save_part(parts, &m->part[i]);
  int rc = ok ? nas_json_write_file(path, root, e) : nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  cJSON_Delete(root);
  return rc;
}
