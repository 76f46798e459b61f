/* latency/target.c: target JSON loading with strict validation, listing, serialisation. */
#include "latency/target.h"
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include "core/json.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datadir.h"
#include "core/fileio.h"
#include "latency/cost_runtime.h"

/* Name tables indexed by an enum of target.h: unsized, so each static assert counts its
 * initialiser (one name per enum value, then NULL for the lists get_enum walks). */
static const char *const KOP_NAMES[] = {"conv", "dwconv", "pwconv", "fc",
                                        "pool", "gap",    "add",    "rnn"};
_Static_assert(sizeof KOP_NAMES / sizeof KOP_NAMES[0] == NAS_KOP_COUNT, "kop table");
const char *const nas_lf_names[] = {"call", "ops", "ops_unaligned",
                                    "in_bytes", "out_bytes", "out_c"};
_Static_assert(sizeof nas_lf_names / sizeof nas_lf_names[0] == NAS_LF_COUNT, "feature names");
static const char *const CORES[] = {"cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33",
                                    "cortex-m55", NULL};
_Static_assert(sizeof CORES / sizeof CORES[0] == NAS_CORE_M55 + 2, "enum nas_core");
static const char *const MODELS[] = {"linear", "per-layer", "lookup", NULL};
_Static_assert(sizeof MODELS / sizeof MODELS[0] == NAS_LAT_LOOKUP + 2, "enum nas_latmodel");
static const char *const KLIBS[] = {"cmsis-nn", "tflm-reference", NULL};
_Static_assert(sizeof KLIBS / sizeof KLIBS[0] == NAS_KLIB_TFLM_REF + 2, "enum nas_kernlib");
static const char *const RUNTIMES[] = {"tflm-cmsis-nn", "tflm-reference", "nas-c", NULL};
_Static_assert(sizeof RUNTIMES / sizeof RUNTIMES[0] == NAS_RT_COUNT + 1, "enum nas_runtime");

const char *nas_runtime_name(int rt) { return rt >= 0 && rt < NAS_RT_COUNT ? RUNTIMES[rt] : "?"; }
int nas_runtime_from_name(const char *s) {
  for (int i = 0; s && i < NAS_RT_COUNT; i++)
    if (!strcmp(RUNTIMES[i], s)) return i;
  return -1;
}

int nas_kop_from_name(const char *name) {
  for (int i = 0; i < NAS_KOP_COUNT; i++)
    if (strcmp(KOP_NAMES[i], name) == 0) return i;
  return -1;
}
const char *nas_kop_name(int kop) { return kop >= 0 && kop < NAS_KOP_COUNT ? KOP_NAMES[kop] : "?"; }
const char *nas_core_name(int c) { return c >= 0 && c <= NAS_CORE_M55 ? CORES[c] : "?"; }
const char *nas_latmodel_name(int m) { return m >= 0 && m <= NAS_LAT_LOOKUP ? MODELS[m] : "?"; }

/* ---- strict field readers ------------------------------------------------------------- */

typedef struct rd {
  const char *src; /* file name for messages */
  nas_err *e;
} rd;

static int check_keys(rd *r, const cJSON *o, const char *where, const char *const *allowed) {
  for (const cJSON *it = o->child; it; it = it->next) {
    int ok = 0;
    for (int i = 0; allowed[i]; i++) ok |= strcmp(allowed[i], it->string) == 0;
    if (!ok)
      return nas_errf(r->e, NAS_EINVAL, "%s: %sunknown field '%s'", r->src, where, it->string);
  }
  return NAS_OK;
}

static const cJSON *need(rd *r, const cJSON *o, const char *where, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) nas_errf(r->e, NAS_EINVAL, "%s: %smissing field '%s'", r->src, where, key);
  return v;
}

static int get_str(rd *r, const cJSON *o, const char *key, int required, char *dst, size_t cap) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) {
    if (required) return nas_errf(r->e, NAS_EINVAL, "%s: missing field '%s'", r->src, key);
    dst[0] = 0;
    return NAS_OK;
  }
  if (!cJSON_IsString(v))
    return nas_errf(r->e, NAS_EINVAL, "%s: field '%s': expected a string", r->src, key);
  if (strlen(v->valuestring) >= cap)
    return nas_errf(r->e, NAS_EINVAL, "%s: field '%s': longer than %zu characters", r->src,
                    key, cap - 1);
  strcpy(dst, v->valuestring);
  return NAS_OK;
}

static int get_enum(rd *r, const cJSON *o, const char *key, const char *const *names, int *out) {
  char buf[64];
  if (get_str(r, o, key, 1, buf, sizeof buf)) return r->e ? r->e->code : NAS_EINVAL;
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], buf) == 0) return *out = i, NAS_OK;
  char list[256] = "";
  for (int i = 0; names[i]; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
  return nas_errf(r->e, NAS_EINVAL, "%s: field '%s': unknown value '%s' (expected one of %s)",
                  r->src, key, buf, list);
}

static int get_num(rd *r, const cJSON *o, const char *where, const char *key, double lo,
                   double hi, int integer, double *out) {
  const cJSON *v = need(r, o, where, key);
  if (!v) return NAS_EINVAL;
  if (!cJSON_IsNumber(v))
    return nas_errf(r->e, NAS_EINVAL, "%s: %sfield '%s': expected a number", r->src, where, key);
  double x = v->valuedouble;
  if (!isfinite(x) || x < lo || x > hi)
    return nas_errf(r->e, NAS_EINVAL, "%s: %sfield '%s': %g is out of range %g..%g", r->src,
                    where, key, x, lo, hi);
  if (integer && x != floor(x))
    return nas_errf(r->e, NAS_EINVAL, "%s: %sfield '%s': %g is not an integer", r->src, where,
                    key, x);
  *out = x;
  return NAS_OK;
}

static int get_bool(rd *r, const cJSON *o, const char *key, int *out) {
  const cJSON *v = need(r, o, "", key);
  if (!v) return NAS_EINVAL;
  if (!cJSON_IsBool(v))
    return nas_errf(r->e, NAS_EINVAL, "%s: field '%s': expected true or false", r->src, key);
  *out = cJSON_IsTrue(v);
  return NAS_OK;
}

static const char *const TOP_KEYS[] = {
    "id", "name", "core", "clock_mhz", "sram_bytes", "flash_bytes", "source", "kernel_library",
    "runtime_overhead_sram_bytes", "runtime_overhead_flash_bytes", "latency_model", "linear",
    "per_layer", "per_layer_missing", "lookup_table", "calibrated", "calibration", "runtime",
    "cycles_part", "calibrated_ops", NULL};
static const char *const LIN_KEYS[] = {"cycles_per_mac", "fixed_cycles", NULL};

int nas_target_parse(const char *text, const char *source, const char *dir, nas_target **out,
                     nas_err *e) {
  *out = NULL;
  rd r = {source, e};
  cJSON *root;
  int jr = nas_json_parse(text, &root, NULL);
  if (jr == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "%s: out of memory parsing JSON", source);
  if (jr) return nas_errf(e, NAS_EFORMAT, "%s: not valid JSON", source);
  nas_target *t = nas_calloc(1, sizeof *t);
  if (!t) return cJSON_Delete(root), nas_errf(e, NAS_ENOMEM, "%s: out of memory", source);
  int rc = NAS_EINVAL;
  double x;
  if (!cJSON_IsObject(root)) {
    nas_errf(e, NAS_EINVAL, "%s: expected a JSON object", source);
    goto fail;
  }
  if (check_keys(&r, root, "", TOP_KEYS)) goto fail;
  if (get_str(&r, root, "id", 1, t->id, sizeof t->id) ||
      get_str(&r, root, "name", 1, t->name, sizeof t->name) ||
      get_enum(&r, root, "core", CORES, &t->core)) goto fail;
  for (const char *c = t->id; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_')) {
      nas_errf(e, NAS_EINVAL, "%s: field 'id': '%s' must be lowercase letters, digits, - or _",
               source, t->id);
      goto fail;
    }
  if (!t->id[0]) { nas_errf(e, NAS_EINVAL, "%s: field 'id': empty", source); goto fail; }
  if (get_num(&r, root, "", "clock_mhz", 1, 2000, 0, &t->clock_mhz)) goto fail;
  if (get_num(&r, root, "", "sram_bytes", 1024, 1e10, 1, &x)) goto fail;
  t->sram_bytes = (long long)x;
  if (get_num(&r, root, "", "flash_bytes", 1024, 1e11, 1, &x)) goto fail;
  t->flash_bytes = (long long)x;
  if (get_str(&r, root, "source", 1, t->source, sizeof t->source) ||
      get_enum(&r, root, "kernel_library", KLIBS, &t->kernel_library)) goto fail;
  t->runtime = t->kernel_library == NAS_KLIB_TFLM_REF ? NAS_RT_TFLM_REFERENCE : NAS_RT_TFLM_CMSIS_NN;
  if (cJSON_GetObjectItemCaseSensitive(root, "runtime") &&
      get_enum(&r, root, "runtime", RUNTIMES, &t->runtime)) goto fail;
  if (get_str(&r, root, "cycles_part", 0, t->cycles_part, sizeof t->cycles_part)) goto fail;
  if (get_num(&r, root, "", "runtime_overhead_sram_bytes", 0, 1e9, 1, &x)) goto fail;
  t->rt_sram = (long long)x;
  if (get_num(&r, root, "", "runtime_overhead_flash_bytes", 0, 1e9, 1, &x)) goto fail;
  t->rt_flash = (long long)x;
  if (get_enum(&r, root, "latency_model", MODELS, &t->model)) goto fail;
  if (get_bool(&r, root, "calibrated", &t->calibrated) ||
      get_str(&r, root, "calibration", 1, t->calibration, sizeof t->calibration)) goto fail;
  /* linear: always required */
  const cJSON *lin = need(&r, root, "", "linear");
  if (!lin) goto fail;
  if (!cJSON_IsObject(lin)) {
    nas_errf(e, NAS_EINVAL, "%s: field 'linear': expected an object", source);
    goto fail;
  }
  if (check_keys(&r, lin, "linear: ", LIN_KEYS) ||
      get_num(&r, lin, "linear: ", "cycles_per_mac", 0, 1e6, 0, &t->cycles_per_mac) ||
      get_num(&r, lin, "linear: ", "fixed_cycles", -1e12, 1e12, 0, &t->fixed_cycles)) goto fail;
  /* per_layer: required unless the model is linear */
  const cJSON *pl = cJSON_GetObjectItemCaseSensitive(root, "per_layer");
  if (!pl && t->model != NAS_LAT_LINEAR) {
    nas_errf(e, NAS_EINVAL, "%s: missing field 'per_layer' (latency_model is '%s')", source,
             MODELS[t->model]);
    goto fail;
  }
  if (pl) {
    if (!cJSON_IsObject(pl)) {
      nas_errf(e, NAS_EINVAL, "%s: field 'per_layer': expected an object", source);
      goto fail;
    }
    for (const cJSON *op = pl->child; op; op = op->next) {
      int k = nas_kop_from_name(op->string);
      if (k < 0) {
        nas_errf(e, NAS_EINVAL, "%s: per_layer: unknown op '%s' (expected conv, dwconv, pwconv, "
                 "fc, pool, gap, add or rnn)", source, op->string);
        goto fail;
      }
      char where[64];
      snprintf(where, sizeof where, "per_layer.%s: ", op->string);
      if (!cJSON_IsObject(op)) {
        nas_errf(e, NAS_EINVAL, "%s: field 'per_layer.%s': expected an object", source, op->string);
        goto fail;
      }
      const char *keys[NAS_LF_COUNT + 1];
      for (int f = 0; f < NAS_LF_COUNT; f++) keys[f] = nas_lf_names[f];
      keys[NAS_LF_COUNT] = NULL;
      if (check_keys(&r, op, where, keys)) goto fail;
      for (int f = 0; f < NAS_LF_COUNT; f++)
        if (get_num(&r, op, where, nas_lf_names[f], -1e9, 1e9, 0, &t->coef[k][f])) goto fail;
      t->has_coef[k] = 1;
    }
    static const char *const MISS[] = {"error", "linear", NULL};
    if (get_enum(&r, root, "per_layer_missing", MISS, &t->missing_linear)) goto fail;
  } else if (cJSON_GetObjectItemCaseSensitive(root, "per_layer_missing")) {
    nas_errf(e, NAS_EINVAL, "%s: field 'per_layer_missing': only meaningful with 'per_layer'",
             source);
    goto fail;
  }
  const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "lookup_table");
  if (!lt && t->model == NAS_LAT_LOOKUP) {
    nas_errf(e, NAS_EINVAL, "%s: missing field 'lookup_table' (latency_model is 'lookup')",
             source);
    goto fail;
  }
  if (lt) {
    if (!cJSON_IsString(lt) || !lt->valuestring[0]) {
      nas_errf(e, NAS_EINVAL, "%s: field 'lookup_table': expected a non-empty path", source);
      goto fail;
    }
    const char *p = lt->valuestring;
    if (p[0] == '/' || !dir || !dir[0]) snprintf(t->lookup_path, sizeof t->lookup_path, "%s", p);
    else snprintf(t->lookup_path, sizeof t->lookup_path, "%s/%s", dir, p);
    nas_err e2 = {0};
    rc = nas_meas_read_csv(t->lookup_path, NULL, t->clock_mhz, &t->lookup, &t->n_lookup, &e2);
    if (rc) {
      nas_errf(e, rc, "%s: field 'lookup_table': %s", source, e2.msg);
      goto fail;
    }
  }
  const cJSON *co = cJSON_GetObjectItemCaseSensitive(root, "calibrated_ops");
  if (co) {
    if (!cJSON_IsArray(co)) {
      nas_errf(e, NAS_EINVAL, "%s: field 'calibrated_ops': expected an array of op names", source);
      goto fail;
    }
    for (const cJSON *it = co->child; it; it = it->next) {
      int k = cJSON_IsString(it) ? nas_kop_from_name(it->valuestring) : -1;
      if (cJSON_IsString(it) && !strcmp(it->valuestring, "linear")) t->calibrated_linear = 1;
      else if (k >= 0 && t->has_coef[k]) t->calibrated_op[k] = 1;
      else {
        nas_errf(e, NAS_EINVAL, "%s: field 'calibrated_ops': '%s' is neither \"linear\" nor an op "
                 "with per_layer coefficients", source, cJSON_IsString(it) ? it->valuestring : "?");
        goto fail;
      }
    }
  } else if (t->calibrated) {
    t->calibrated_linear = 1;
    for (int k = 0; k < NAS_KOP_COUNT; k++) t->calibrated_op[k] = t->has_coef[k];
  }
  if ((rc = nas_target_set_runtime(t, t->runtime, e))) {
    nas_err_prefix(e, "%s", source);
    goto fail;
  }
  nas_err_clear(e);
  cJSON_Delete(root);
  *out = t;
  return NAS_OK;
fail:
  cJSON_Delete(root);
  nas_target_free(t);
  return e && e->code ? e->code : rc;
}

void nas_target_free(nas_target *t) {
  if (!t) return;
  nas_target_rt_free(t->rt);
  free(t->lookup);
  free(t);
}

int nas_target_load(const char *path, nas_target **out, nas_err *e) {
  char *text = NULL;
  long len = 0;
  *out = NULL;
  int rc = nas_read_file(path, &text, &len, e);
  if (rc) return rc;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  else strcpy(dir, ".");
  rc = nas_target_parse(text, path, dir, out, e);
  free(text);
  return rc;
}

int nas_targets_dir(char *buf, size_t cap, nas_err *e) {
  const char *d = getenv("NAS_TARGET_DIR");
  if (!d || !d[0]) return nas_data_path("latency/targets", buf, cap, e);
  if (snprintf(buf, cap, "%s", d) >= (int)cap)
    return nas_errf(e, NAS_EINVAL, "NAS_TARGET_DIR: the path is longer than %zu bytes", cap - 1);
  return NAS_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int nas_target_list(const char *dir, char ***ids, int *n, nas_err *e) {
  char builtin[4096];
  *ids = NULL, *n = 0;
  if (!dir) {
    int rc = nas_targets_dir(builtin, sizeof builtin, e);
    if (rc) return rc;
    dir = builtin;
  }
  DIR *d = opendir(dir);
  if (!d) return nas_errf(e, NAS_EIO, "%s: cannot open the targets directory", dir);
  char **v = NULL;
  int cnt = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l <= 5 || strcmp(de->d_name + l - 5, ".json") != 0 || de->d_name[0] == '.') continue;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 16;
      char **nv = nas_realloc(v, (size_t)cap * sizeof *nv);
      if (!nv) { closedir(d); nas_target_ids_free(v, cnt); return nas_errf(e, NAS_ENOMEM, "%s: out of memory listing targets", dir); }
      v = nv;
    }
    v[cnt] = nas_malloc(l - 4);
    if (!v[cnt]) { closedir(d); nas_target_ids_free(v, cnt); return nas_errf(e, NAS_ENOMEM, "%s: out of memory listing targets", dir); }
    memcpy(v[cnt], de->d_name, l - 5);
    v[cnt][l - 5] = 0;
    cnt++;
  }
  closedir(d);
  if (cnt) qsort(v, (size_t)cnt, sizeof *v, cmp_str);
  *ids = v, *n = cnt;
  return NAS_OK;
}

void nas_target_ids_free(char **ids, int n) {
  if (!ids) return;
  for (int i = 0; i < n; i++) free(ids[i]);
  free(ids);
}

int nas_target_open(const char *id, const char *file, nas_target **out, nas_err *e) {
  *out = NULL;
  if (file) return nas_target_load(file, out, e);
  if (!id || !id[0]) return nas_errf(e, NAS_EUSAGE, "no target given");
  char dir[4096];
  char **ids;
  int n, rc = nas_targets_dir(dir, sizeof dir, e);
  if (!rc) rc = nas_target_list(dir, &ids, &n, e);
  if (rc) return rc;
  int found = 0;
  char list[400] = "";
  for (int i = 0; i < n; i++) {
    found |= strcmp(ids[i], id) == 0;
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", ids[i]);
  }
  nas_target_ids_free(ids, n);
  if (!found)
    return nas_errf(e, NAS_EINVAL, "unknown target '%s' (known: %s; or use --target-file)", id,
                    list);
  char path[4200];
  snprintf(path, sizeof path, "%s/%s.json", dir, id);
  rc = nas_target_load(path, out, e);
  if (!rc && strcmp((*out)->id, id) != 0) {
    nas_errf(e, NAS_EINVAL, "%s: field 'id': '%s' differs from the file name", path, (*out)->id);
    nas_target_free(*out);
    *out = NULL;
    return NAS_EINVAL;
  }
  return rc;
}

char *nas_target_to_json(const nas_target *t) {
  unsigned long jm = nas_json_mark(); /* any failed allocation below: NULL (core/json.h) */
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "id", t->id);
  cJSON_AddStringToObject(o, "name", t->name);
  cJSON_AddStringToObject(o, "core", CORES[t->core]);
  cJSON_AddNumberToObject(o, "clock_mhz", t->clock_mhz);
  cJSON_AddNumberToObject(o, "sram_bytes", (double)t->sram_bytes);
  cJSON_AddNumberToObject(o, "flash_bytes", (double)t->flash_bytes);
  cJSON_AddStringToObject(o, "source", t->source);
  cJSON_AddStringToObject(o, "kernel_library", KLIBS[t->kernel_library]);
  cJSON_AddStringToObject(o, "runtime", RUNTIMES[t->runtime]);
  if (t->cycles_part[0]) cJSON_AddStringToObject(o, "cycles_part", t->cycles_part);
  cJSON_AddNumberToObject(o, "runtime_overhead_sram_bytes", (double)t->rt_sram);
  cJSON_AddNumberToObject(o, "runtime_overhead_flash_bytes", (double)t->rt_flash);
  cJSON_AddStringToObject(o, "latency_model", MODELS[t->model]);
  cJSON *lin = cJSON_AddObjectToObject(o, "linear");
  cJSON_AddNumberToObject(lin, "cycles_per_mac", t->cycles_per_mac);
  cJSON_AddNumberToObject(lin, "fixed_cycles", t->fixed_cycles);
  int any = 0;
  for (int k = 0; k < NAS_KOP_COUNT; k++) any |= t->has_coef[k];
  if (any || t->model == NAS_LAT_PERLAYER) { /* the per-layer model needs the object, even empty */
    cJSON *pl = cJSON_AddObjectToObject(o, "per_layer");
    for (int k = 0; k < NAS_KOP_COUNT; k++) {
      if (!t->has_coef[k]) continue;
      cJSON *c = cJSON_AddObjectToObject(pl, KOP_NAMES[k]);
      for (int f = 0; f < NAS_LF_COUNT; f++) cJSON_AddNumberToObject(c, nas_lf_names[f], t->coef[k][f]);
    }
    cJSON_AddStringToObject(o, "per_layer_missing", t->missing_linear ? "linear" : "error");
  }
  if (t->lookup_path[0]) cJSON_AddStringToObject(o, "lookup_table", t->lookup_path);
  cJSON_AddBoolToObject(o, "calibrated", t->calibrated);
  cJSON *co = cJSON_AddArrayToObject(o, "calibrated_ops");
  if (co && t->calibrated_linear) cJSON_AddItemToArray(co, cJSON_CreateString("linear"));
  for (int k = 0; co && k < NAS_KOP_COUNT; k++)
    if (t->calibrated_op[k]) cJSON_AddItemToArray(co, cJSON_CreateString(KOP_NAMES[k]));
  cJSON_AddStringToObject(o, "calibration", t->calibration);
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  if (nas_json_failed(jm)) {
    free(s);
    return NULL;
  }
  return s;
}
