/* datasets/speech_spec.c: the options of the Speech Commands reader: their defaults, the
 * dataset spec "speech-commands:DIR[,key=value...]" (keys in speech.h) and the
 * nas_data_load hook nas_speech_load. */
#include "datasets/speech_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void nas_speech_opts_default(nas_speech_opts *o) {
  memset(o, 0, sizeof *o);
  o->task = 12;
  nas_feat_params_default(&o->feat);
  o->silence_frac = 0.1;
  o->unknown_frac = 0.1;
  o->aug.noise_prob = 0.8f;
  o->aug.noise_volume = 0.1f;
  o->aug.shift_ms = 100;
  o->aug_seed = 1;
}

/* A whole-string unsigned decimal integer (no sign, no spaces). */
static int parse_u64(const char *s, uint64_t *out) {
  if (!*s || *s < '0' || *s > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = (uint64_t)v;
  return 0;
}

/* A whole-string finite decimal number. */
static int parse_double(const char *s, double *out) {
  if (!*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !(v == v) || v > 1e30 || v < -1e30) return -1;
  *out = v;
  return 0;
}

/* Sets one aug_* key; 1 when key is not an augmentation key, -1 on a bad value. */
static int parse_aug_key(const char *key, const char *val, nas_speech_opts *o) {
  uint64_t u;
  double x;
  if (!strcmp(key, "aug")) {
    if (parse_u64(val, &u) || u > 64) return -1;
    o->aug_n = (int)u;
  } else if (!strcmp(key, "aug_noise")) {
    if (parse_double(val, &x) || x < 0.0 || x > 1.0) return -1;
    o->aug.noise_prob = (float)x;
  } else if (!strcmp(key, "aug_volume")) {
    if (parse_double(val, &x) || x < 0.0 || x > 1.0) return -1;
    o->aug.noise_volume = (float)x;
  } else if (!strcmp(key, "aug_shift_ms")) {
    if (parse_u64(val, &u) || u > 1000) return -1;
    o->aug.shift_ms = (int)u;
  } else if (!strcmp(key, "aug_seed")) {
    if (parse_u64(val, &u)) return -1;
    o->aug_seed = u;
  } else {
    return 1;
  }
  return 0;
}

int nas_speech_parse_spec(const char *spec, char *dir, size_t cap, nas_speech_opts *o,
                          nas_err *e) {
  if (!spec || !*spec)
    return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands': needs a directory (speech-commands:DIR)");
  const char *comma = strchr(spec, ',');
  size_t dl = comma ? (size_t)(comma - spec) : strlen(spec);
  if (dl == 0) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': empty directory", spec);
  if (dl >= cap) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands': directory path too long");
  memcpy(dir, spec, dl);
  dir[dl] = 0;
  while (comma) {
    const char *kv = comma + 1;
    comma = strchr(kv, ',');
    size_t n = comma ? (size_t)(comma - kv) : strlen(kv);
    char item[SPEECH_PATH_CAP];
    if (n >= sizeof item) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': option too long", spec);
    memcpy(item, kv, n);
    item[n] = 0;
    char *eq = strchr(item, '=');
    if (!eq) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': option '%s' is not key=value", spec, item);
    *eq = 0;
    const char *key = item, *val = eq + 1;
    int arc;
    if (!strcmp(key, "task")) {
      if (!strcmp(val, "12")) o->task = 12;
      else if (!strcmp(val, "35")) o->task = 35;
      else return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': task '%s' (expected 12 or 35)", spec, val);
    } else if (!strcmp(key, "window_ms")) {
      if (!strcmp(val, "30")) o->feat.window_ms = 30;
      else if (!strcmp(val, "40")) o->feat.window_ms = 40;
      else return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': window_ms '%s' (expected 30 or 40)", spec, val);
    } else if (!strcmp(key, "features")) {
      if (!strcmp(val, "mfcc")) o->feat.kind = NAS_FEAT_MFCC;
      else if (!strcmp(val, "logmel")) o->feat.kind = NAS_FEAT_LOGMEL;
      else return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': features '%s' (expected mfcc or logmel)", spec, val);
    } else if (!strcmp(key, "cache")) {
      if (!*val) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': empty cache directory", spec);
      /* the value points into spec: kept as a pointer into the caller's string */
      o->cache_dir = strcmp(val, "none") ? kv + (val - item) : NULL;
      if (!o->cache_dir) o->cache_dir = "";
    } else if ((arc = parse_aug_key(key, val, o)) < 0) {
      return nas_errf(e, NAS_EINVAL,
                      "dataset 'speech-commands:%s': %s '%s' (expected %s)", spec, key, val,
                      !strcmp(key, "aug")            ? "an integer 0..64"
                      : !strcmp(key, "aug_shift_ms") ? "an integer 0..1000 (ms)"
                      : !strcmp(key, "aug_seed")     ? "an unsigned integer"
                                                     : "a number in 0..1");
    } else if (arc > 0) {
      return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': unknown option '%s' (expected task, window_ms, features, cache, aug, aug_noise, aug_volume, aug_shift_ms or aug_seed)", spec, key);
    }
  }
  return NAS_OK;
}

int nas_speech_load(const char *spec, const nas_data_opts *o, nas_data *d, nas_err *e) {
  memset(d, 0, sizeof *d);
  nas_speech_opts so;
  nas_speech_opts_default(&so);
  so.cache_dir = NULL;
  char dir[SPEECH_PATH_CAP];
  int rc = nas_speech_parse_spec(spec, dir, sizeof dir, &so, e);
  if (rc) return rc;
  /* cache_dir points into spec up to the next ',' : copy it out */
  char cache[SPEECH_PATH_CAP];
  if (so.cache_dir == NULL) {
    so.cache_dir = dir; /* default: DIR itself */
  } else if (*so.cache_dir) {
    size_t n = strcspn(so.cache_dir, ",");
    if (n >= sizeof cache) n = sizeof cache - 1;
    memcpy(cache, so.cache_dir, n);
    cache[n] = 0;
    so.cache_dir = cache;
  }
  if (o) {
    so.train_limit = o->train_limit;
    so.seed = o->split_seed;
    so.warn = o->warn, so.warn_user = o->warn_user;
  }
  return nas_speech_load_dir(dir, &so, d, NULL, e);
}
