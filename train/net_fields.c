/* train/net_fields.c: reading the fields of an arch JSON layer for train/net.c: typed,
 * range-checked, recorded in the canonical layer, errors naming the layer and field. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "train/net_impl.h"

int net_lerr(bld *b, const char *field, const char *fmt, ...) {
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

int net_get_int(bld *b, const cJSON *o, const char *key, int def, int lo, int hi, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) {
    if (def == INT32_MIN) return net_lerr(b, key, "required");
    *out = def;
  } else {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
      return net_lerr(b, key, "expected an integer");
    if (v->valuedouble < lo || v->valuedouble > hi)
      return net_lerr(b, key, "%g is out of range %d..%d", v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
  }
  cJSON_AddNumberToObject(b->canon, key, *out);
  return NAS_OK;
}

/* An int or a [a, b] pair; a single int means both. */
int net_get_pair(bld *b, const cJSON *o, const char *key, int def, int lo, int hi, int out[2]) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  out[0] = out[1] = def;
  if (v && cJSON_IsArray(v)) {
    if (cJSON_GetArraySize(v) != 2) return net_lerr(b, key, "expected an integer or a pair [a,b]");
    for (int i = 0; i < 2; i++) {
      const cJSON *x = cJSON_GetArrayItem(v, i);
      if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
        return net_lerr(b, key, "expected an integer or a pair [a,b]");
      if (x->valuedouble < lo || x->valuedouble > hi)
        return net_lerr(b, key, "%g is out of range %d..%d", x->valuedouble, lo, hi);
      out[i] = (int)x->valuedouble;
    }
  } else if (v) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
      return net_lerr(b, key, "expected an integer or a pair [a,b]");
    if (v->valuedouble < lo || v->valuedouble > hi)
      return net_lerr(b, key, "%g is out of range %d..%d", v->valuedouble, lo, hi);
    out[0] = out[1] = (int)v->valuedouble;
  }
  nas_json_add(b->canon, key, cJSON_CreateIntArray(out, 2)); /* failure: see build() */
  return NAS_OK;
}

int net_get_bool(bld *b, const cJSON *o, const char *key, int def, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    *out = def;
  else if (!cJSON_IsBool(v))
    return net_lerr(b, key, "expected true or false");
  else
    *out = cJSON_IsTrue(v);
  cJSON_AddBoolToObject(b->canon, key, *out);
  return NAS_OK;
}

int net_get_float(bld *b, const cJSON *o, const char *key, double def, double lo, double hi,
                     double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    *out = def;
  else if (!cJSON_IsNumber(v))
    return net_lerr(b, key, "expected a number");
  else if (!(v->valuedouble >= lo && v->valuedouble < hi))
    return net_lerr(b, key, "%g is out of range [%g,%g)", v->valuedouble, lo, hi);
  else
    *out = v->valuedouble;
  cJSON_AddNumberToObject(b->canon, key, *out);
  return NAS_OK;
}

/* One of the given names (NULL-terminated); returns its index in *out. */
int net_get_enum(bld *b, const cJSON *o, const char *key, const char *const *names, int def,
                    int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = def;
  if (v) {
    if (!cJSON_IsString(v)) return net_lerr(b, key, "expected a string");
    int k = -1;
    for (int i = 0; names[i]; i++)
      if (strcmp(names[i], v->valuestring) == 0) k = i;
    if (k < 0) {
      char list[128] = "";
      for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
      return net_lerr(b, key, "unknown value '%s' (expected one of: %s)", v->valuestring, list);
    }
    *out = k;
  }
  cJSON_AddStringToObject(b->canon, key, names[*out]);
  return NAS_OK;
}

