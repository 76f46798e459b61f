/* datasets/speech.c: the Speech Commands reader's core: scanning the tree (words, list
 * files, cache key), planning the clips of the 12/35-class task, decoding them into features
 * (and augmented variants of the training clips), and assembling the normalised nas_data.
 * Behaviour is specified in speech.h; file I/O is in speech_io.c, the caches in
 * speech_cache.c, augmentation in speech_aug.c, the spec in speech_spec.c. */
#include "core/hash.h"
#include "core/alloc.h"
#include "datasets/speech_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CACHE_VERSION 1u  /* folded into the cache key; bump when features change meaning */

static const char *const kw12[10] = {"yes", "no",  "up",  "down", "left",
                                     "right", "on", "off", "stop", "go"};
static const char *const words35[35] = {
    "backward", "bed",   "bird",  "cat",   "dog",    "down",  "eight", "five", "follow",
    "forward",  "four",  "go",    "happy", "house",  "learn", "left",  "marvin", "nine",
    "no",       "off",   "on",    "one",   "right",  "seven", "sheila", "six",  "stop",
    "three",    "tree",  "two",   "up",    "visual", "wow",   "yes",   "zero"};

/* ---- the tree ---- */

void speech_tree_free(speech_tree *t) {
  speech_strv_free(&t->words);
  for (int i = 0; i < t->n_ent; i++) free(t->ent[i].rel);
  free(t->ent);
  speech_strv_free(&t->lists[0]);
  speech_strv_free(&t->lists[1]);
  nas_speech_noise_free(&t->noise);
  free(t->clips);
  free(t->x);
  free(t->y);
  free(t->sp);
  free(t->xa);
}

/* Reads a list file into sorted strings and folds its bytes into the key. */
static int read_list(speech_tree *t, const char *name, speech_strv *out, nas_err *e) {
  char path[SPEECH_PATH_CAP];
  snprintf(path, sizeof path, "%s/%s", t->dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "speech-commands %s: missing %s", t->dir, name);
  char line[SPEECH_PATH_CAP];
  int rc = NAS_OK;
  while (fgets(line, sizeof line, f)) {
    t->key = nas_fnv1a(t->key, line, strlen(line));
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (s[0] == '.' && s[1] == '/') s += 2;
    if (!*s) continue;
    if (speech_strv_push(out, s)) {
      rc = nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
      break;
    }
  }
  if (!rc && ferror(f)) rc = nas_errf(e, NAS_EIO, "speech-commands %s: cannot read %s", t->dir, name);
  fclose(f);
  if (out->n > 1) qsort(out->s, (size_t)out->n, sizeof(char *), speech_cmp_str);
  return rc;
}

static int in_list(const speech_strv *v, const char *s) {
  return v->n && bsearch(&s, v->s, (size_t)v->n, sizeof(char *), speech_cmp_str) != NULL;
}

static int word_label(int task, const char *word) {
  if (task == 12) {
    for (int i = 0; i < 10; i++)
      if (!strcmp(word, kw12[i])) return i;
    return -2; /* unknown candidate */
  }
  for (int i = 0; i < 35; i++)
    if (!strcmp(word, words35[i])) return i;
  return -1;
}

/* Lists the tree, reads the lists and computes the cache key. */
static int scan(speech_tree *t, nas_err *e) {
  const nas_speech_opts *o = t->o;
  struct stat st;
  if (stat(t->dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return nas_errf(e, NAS_EIO, "speech-commands %s: not a directory", t->dir);
  t->key = NAS_FNV_OFFSET;
  uint32_t ver = CACHE_VERSION;
  int32_t task = o->task;
  t->key = nas_fnv1a(t->key, &ver, sizeof ver);
  t->key = nas_fnv1a(t->key, &task, sizeof task);
  t->key = nas_feat_params_hash(&o->feat, t->key);
  t->key = nas_fnv1a(t->key, &o->silence_frac, sizeof o->silence_frac);
  t->key = nas_fnv1a(t->key, &o->unknown_frac, sizeof o->unknown_frac);
  t->key = nas_fnv1a(t->key, &o->seed, sizeof o->seed);
  int rc = read_list(t, "validation_list.txt", &t->lists[0], e);
  if (!rc) rc = read_list(t, "testing_list.txt", &t->lists[1], e);
  if (rc) return rc;
  rc = speech_list_dir(t->dir, 1, &t->words);
  if (rc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  if (rc) return nas_errf(e, NAS_EIO, "speech-commands %s: cannot list the directory", t->dir);
  char path[2 * SPEECH_PATH_CAP + 2], rel[SPEECH_PATH_CAP];
  for (int wi = 0; wi < t->words.n; wi++) {
    const char *word = t->words.s[wi];
    int is_noise = !strcmp(word, SPEECH_NOISE_DIR);
    if (word[0] == '_' && !is_noise) continue;
    int label = is_noise ? -1 : word_label(o->task, word);
    speech_strv files = {0};
    snprintf(path, sizeof path, "%s/%s", t->dir, word);
    int lrc = speech_list_dir(path, 0, &files);
    if (lrc) {
      speech_strv_free(&files);
      return lrc == NAS_ENOMEM
                 ? nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory listing %s", t->dir, path)
                 : nas_errf(e, NAS_EIO, "speech-commands %s: cannot list %s", t->dir, path);
    }
    if (!is_noise && label == -1 && files.n)
      speech_warnf(o, "speech-commands: skipped folder %s: '%s' is not one of the 35 words (%d files)",
            path, word, files.n);
    for (int i = 0; i < files.n; i++) {
      snprintf(rel, sizeof rel, "%s/%s", word, files.s[i]);
      snprintf(path, sizeof path, "%s/%s", t->dir, rel);
      int64_t meta[2] = {0, 0};
      if (stat(path, &st) == 0) {
        meta[0] = (int64_t)st.st_size;
        meta[1] = (int64_t)st.st_mtime;
      }
      t->key = nas_fnv1a(t->key, rel, strlen(rel) + 1);
      t->key = nas_fnv1a(t->key, meta, sizeof meta);
      if (is_noise) continue;
      t->files_seen++;
      if (label == -1) continue;
      if (t->n_ent == t->cap_ent) {
        int cap = t->cap_ent ? t->cap_ent * 2 : 1024;
        speech_entry *p = nas_realloc(t->ent, sizeof(speech_entry) * (size_t)cap);
        if (!p) {
          speech_strv_free(&files);
          return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
        }
        t->ent = p;
        t->cap_ent = cap;
      }
      speech_entry *en = &t->ent[t->n_ent];
      en->rel = nas_strdup(rel);
      if (!en->rel) {
        speech_strv_free(&files);
        return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
      }
      en->word = wi;
      en->label = label;
      en->split = in_list(&t->lists[1], rel) ? SPLIT_TEST
                  : in_list(&t->lists[0], rel) ? SPLIT_VAL : SPLIT_TRAIN;
      t->n_ent++;
    }
    speech_strv_free(&files);
  }
  t->classes = o->task;
  return NAS_OK;
}

/* Builds the clip list: keyword/word clips, then (12-class) drawn unknowns and silence. */
static int plan_clips(speech_tree *t, nas_err *e) {
  const nas_speech_opts *o = t->o;
  int cap = t->n_ent;
  long extra = 0;
  int kcount[NSPLIT] = {0, 0, 0};
  for (int i = 0; i < t->n_ent; i++)
    if (t->ent[i].label >= 0) kcount[t->ent[i].split]++;
  if (o->task == 12)
    for (int s = 0; s < NSPLIT; s++) extra += lround(kcount[s] * o->silence_frac) + 1;
  if (o->task == 12 || o->aug_n > 0) { /* silence cuts, augmentation */
    char path[SPEECH_PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", t->dir, SPEECH_NOISE_DIR);
    int rc = nas_speech_noise_read(path, o, &t->noise, &t->skipped, e);
    if (rc) return rc;
  }
  t->clips = nas_calloc((size_t)cap + (size_t)extra + 1, sizeof(speech_clip));
  int *cand = nas_malloc(sizeof(int) * ((size_t)t->n_ent + 1));
  if (!t->clips || !cand) {
    free(cand);
    return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  }
  nas_rng r;
  nas_rng_seed(&r, o->seed);
  for (int s = 0; s < NSPLIT; s++) {
    for (int i = 0; i < t->n_ent; i++) {
      if (t->ent[i].split != s || t->ent[i].label < 0) continue;
      speech_clip *c = &t->clips[t->n_clips++];
      c->entry = i;
      c->label = t->ent[i].label;
      c->split = s;
    }
    if (o->task != 12) continue;
    int nc = 0;
    for (int i = 0; i < t->n_ent; i++)
      if (t->ent[i].split == s && t->ent[i].label == -2) cand[nc++] = i;
    long n_unk = lround(kcount[s] * o->unknown_frac);
    if (n_unk > nc) n_unk = nc;
    for (int k = 0; k < n_unk; k++) { /* partial Fisher-Yates */
      int j = k + (int)nas_rng_below(&r, (uint32_t)(nc - k));
      int tmp = cand[k];
      cand[k] = cand[j];
      cand[j] = tmp;
      speech_clip *c = &t->clips[t->n_clips++];
      c->entry = cand[k];
      c->label = 11;
      c->split = s;
    }
    long n_sil = lround(kcount[s] * o->silence_frac);
    if (n_sil > 0 && t->noise.n == 0 && s == 0)
      speech_warnf(o, "speech-commands: %s/%s has no usable noise files: silence clips are zeros",
            t->dir, SPEECH_NOISE_DIR);
    for (long k = 0; k < n_sil; k++) {
      speech_clip *c = &t->clips[t->n_clips++];
      c->entry = -1;
      c->label = 10;
      c->split = s;
      c->noise = -1;
      if (t->noise.n) {
        c->noise = (int)nas_rng_below(&r, (uint32_t)t->noise.n);
        c->off = (int)nas_rng_below(&r, (uint32_t)(t->noise.len[c->noise] - NAS_SPEECH_CLIP + 1));
        c->gain = nas_rng_uniform(&r);
      }
    }
  }
  free(cand);
  return NAS_OK;
}

/* Decodes planned clip c into wave [NAS_SPEECH_CLIP] (zero-padded or trimmed). 1: skipped
 * (a broken file, warned and counted), 0: done, < 0: minus an error code (e filled). */
static int clip_wave(speech_tree *t, const speech_clip *c, float *wave, nas_err *e) {
  memset(wave, 0, sizeof(float) * NAS_SPEECH_CLIP);
  if (c->entry >= 0) {
    char path[SPEECH_PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", t->dir, t->ent[c->entry].rel);
    float *x;
    int n;
    nas_err we = {0};
    int wrc = nas_wav_read(path, &x, &n, &we);
    if (wrc == NAS_ENOMEM) return -nas_errf(e, NAS_ENOMEM, "%s", we.msg);
    if (wrc) {
      speech_warnf(t->o, "speech-commands: skipped %s", we.msg);
      t->skipped++;
      return 1;
    }
    memcpy(wave, x, sizeof(float) * (size_t)(n < NAS_SPEECH_CLIP ? n : NAS_SPEECH_CLIP));
    free(x);
  } else if (c->noise >= 0) {
    const float *x = t->noise.x[c->noise] + c->off;
    for (int k = 0; k < NAS_SPEECH_CLIP; k++) wave[k] = c->gain * x[k];
  }
  return 0;
}

/* Decodes every planned clip and computes its features and (aug_n > 0) the variants of the
 * training clips. */
static int compute(speech_tree *t, nas_err *e) {
  const nas_speech_opts *o = t->o;
  nas_feat *fx = NULL;
  int rc = nas_feat_build(&o->feat, NAS_SPEECH_CLIP, &fx, e);
  if (rc) return rc;
  nas_feat_shape(fx, &t->h, &t->w);
  size_t fs = (size_t)t->h * t->w;
  int planned_train = 0;
  for (int i = 0; i < t->n_clips; i++) planned_train += t->clips[i].split == SPLIT_TRAIN;
  size_t per_aug = fs * (size_t)o->aug_n; /* floats of one clip's variants */
  t->x = nas_malloc(sizeof(float) * fs * ((size_t)t->n_clips + 1));
  t->y = nas_malloc(sizeof(int32_t) * ((size_t)t->n_clips + 1));
  t->sp = nas_malloc(sizeof(int32_t) * ((size_t)t->n_clips + 1));
  float *buf = nas_malloc(sizeof(float) * NAS_SPEECH_CLIP * 2); /* wave, augmented wave */
  if (o->aug_n > 0) t->xa = nas_malloc(sizeof(float) * (per_aug * (size_t)planned_train + 1));
  if (!t->x || !t->y || !t->sp || !buf || (o->aug_n > 0 && !t->xa)) {
    free(buf);
    nas_feat_free(fx);
    return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  }
  if (o->aug_n > 0 && t->noise.n == 0 && o->aug.noise_prob > 0.0f)
    speech_warnf(o, "speech-commands: %s/%s has no usable noise files: augmented variants are "
                 "time shifts only", t->dir, SPEECH_NOISE_DIR);
  t->n_train = 0;
  for (int i = 0; i < t->n_clips; i++) {
    const speech_clip *c = &t->clips[i];
    int w = clip_wave(t, c, buf, e);
    if (w < 0) {
      free(buf);
      nas_feat_free(fx);
      return -w;
    }
    if (w) continue;
    nas_feat_compute(fx, buf, t->x + fs * (size_t)t->n);
    if (o->aug_n > 0 && c->split == SPLIT_TRAIN)
      speech_aug_variants(o, &t->noise, fx, i, buf, buf + NAS_SPEECH_CLIP,
                          t->xa + per_aug * (size_t)t->n_train++);
    t->y[t->n] = c->label;
    t->sp[t->n] = c->split;
    t->n++;
  }
  free(buf);
  nas_feat_free(fx);
  if (t->skipped)
    speech_warnf(o, "speech-commands: %s: %d file%s skipped", t->dir, t->skipped,
                 t->skipped == 1 ? "" : "s");
  return NAS_OK;
}

/* ---- assembly ---- */

static int fill_split(const speech_tree *t, nas_dataset *ds, int split, const int *order,
                      int n_order, float mean, float std) {
  size_t fs = (size_t)t->h * t->w;
  int n = 0;
  for (int k = 0; k < n_order; k++)
    if (t->sp[order[k]] == split) n++;
  ds->h = t->h;
  ds->w = t->w;
  ds->c = 1;
  ds->classes = t->classes;
  ds->n = 0;
  if (n == 0) return 0;
  ds->x = nas_malloc(sizeof(float) * fs * n);
  ds->y = nas_malloc(sizeof(int) * (size_t)n);
  if (!ds->x || !ds->y) return -1;
  for (int k = 0; k < n_order; k++) {
    int i = order[k];
    if (t->sp[i] != split) continue;
    const float *src = t->x + fs * i;
    float *dst = ds->x + fs * ds->n;
    for (size_t j = 0; j < fs; j++) dst[j] = (src[j] - mean) / std;
    ds->y[ds->n++] = t->y[i];
  }
  return 0;
}

/* ds->x_aug for the training clips order[0..nt) (indices into t->x), normalised. */
static int fill_variants(const speech_tree *t, nas_dataset *ds, const int *order, int nt,
                         float mean, float std) {
  if (!t->xa || nt == 0) return 0;
  int *row = nas_malloc(sizeof(int) * ((size_t)t->n + 1)); /* t->x index -> row of t->xa */
  size_t per = (size_t)t->h * t->w * (size_t)t->o->aug_n;
  ds->x_aug = nas_malloc(sizeof(float) * per * (size_t)nt);
  if (!row || !ds->x_aug) {
    free(row);
    return -1;
  }
  for (int i = 0, k = 0; i < t->n; i++) row[i] = t->sp[i] == SPLIT_TRAIN ? k++ : -1;
  for (int k = 0; k < nt; k++) {
    const float *src = t->xa + per * (size_t)row[order[k]];
    float *dst = ds->x_aug + per * (size_t)k;
    for (size_t j = 0; j < per; j++) dst[j] = (src[j] - mean) / std;
  }
  ds->n_aug = t->o->aug_n;
  free(row);
  return 0;
}

static int assemble(speech_tree *t, nas_data *d, nas_err *e) {
  const nas_speech_opts *o = t->o;
  int *order = nas_malloc(sizeof(int) * ((size_t)t->n + 1));
  if (!order) return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  /* training clips shuffled (seed-derived), then limited; val and test in clip order */
  int nt = 0;
  for (int i = 0; i < t->n; i++)
    if (t->sp[i] == SPLIT_TRAIN) order[nt++] = i;
  nas_rng r;
  nas_rng_seed(&r, o->seed ^ 0x5bd1e995ULL);
  nas_rng_shuffle(&r, order, nt);
  if (o->train_limit > 0 && nt > o->train_limit) nt = o->train_limit;
  double s1 = 0.0, s2 = 0.0;
  size_t fs = (size_t)t->h * t->w;
  for (int k = 0; k < nt; k++) {
    const float *x = t->x + fs * order[k];
    for (size_t j = 0; j < fs; j++) s1 += x[j];
  }
  double cnt = (double)nt * fs, mean = cnt > 0 ? s1 / cnt : 0.0;
  for (int k = 0; k < nt; k++) {
    const float *x = t->x + fs * order[k];
    for (size_t j = 0; j < fs; j++) s2 += (x[j] - mean) * (x[j] - mean);
  }
  double sd = cnt > 0 ? sqrt(s2 / cnt) : 1.0;
  if (!(sd > 1e-12)) sd = 1.0;
  d->mean = (float)mean;
  d->std = (float)sd;
  int rc = fill_split(t, &d->train, SPLIT_TRAIN, order, nt, d->mean, d->std);
  if (!rc) rc = fill_variants(t, &d->train, order, nt, d->mean, d->std);
  int no = nt;
  for (int i = 0; i < t->n; i++)
    if (t->sp[i] != SPLIT_TRAIN) order[no++] = i;
  if (!rc) rc = fill_split(t, &d->val, SPLIT_VAL, order + nt, no - nt, d->mean, d->std);
  if (!rc) rc = fill_split(t, &d->test, SPLIT_TEST, order + nt, no - nt, d->mean, d->std);
  free(order);
  if (rc) return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  snprintf(d->name, sizeof d->name, "speech-commands");
  return NAS_OK;
}

/* Looks up the caches: features, and (aug_n > 0) the variants, which count only together. */
static void try_caches(speech_tree *t, nas_speech_stats *stats) {
  const nas_speech_opts *o = t->o;
  if (!o->cache_dir || !*o->cache_dir) return;
  snprintf(stats->cache_path, sizeof stats->cache_path, "%s/nas-speech-%016llx.cache",
           o->cache_dir, (unsigned long long)t->key);
  if (o->aug_n > 0)
    snprintf(stats->aug_cache_path, sizeof stats->aug_cache_path,
             "%s/nas-speech-aug-%016llx.cache", o->cache_dir, (unsigned long long)t->aug_key);
  if (speech_cache_load(t, stats->cache_path) != 0) return;
  if (o->aug_n > 0 && speech_aug_cache_load(t, stats->aug_cache_path) != 0) {
    free(t->x); /* recomputed together with the variants */
    free(t->y);
    free(t->sp);
    t->x = NULL;
    t->y = t->sp = NULL;
    t->n = t->h = t->w = 0;
    t->skipped = 0;
    return;
  }
  stats->from_cache = 1;
  stats->aug_from_cache = o->aug_n > 0;
}

/* Writes the caches after a computation (failures are warnings). */
static void write_caches(speech_tree *t, nas_speech_stats *stats) {
  const nas_speech_opts *o = t->o;
  if (!stats->cache_path[0]) return;
  if (speech_cache_store(t, stats->cache_path) == 0)
    stats->cache_written = 1;
  else
    speech_warnf(o, "speech-commands: cannot write the feature cache %s", stats->cache_path);
  if (o->aug_n <= 0) return;
  if (speech_aug_cache_store(t, stats->aug_cache_path) == 0)
    stats->aug_cache_written = 1;
  else
    speech_warnf(o, "speech-commands: cannot write the variant cache %s", stats->aug_cache_path);
}

int nas_speech_load_dir(const char *dir, const nas_speech_opts *o, nas_data *d,
                        nas_speech_stats *stats, nas_err *e) {
  memset(d, 0, sizeof *d);
  nas_speech_stats st_local;
  if (!stats) stats = &st_local;
  memset(stats, 0, sizeof *stats);
  if (o->task != 12 && o->task != 35)
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: task %d (expected 12 or 35)", dir, o->task);
  if (!(o->silence_frac >= 0.0 && o->silence_frac <= 10.0 && o->unknown_frac >= 0.0 &&
        o->unknown_frac <= 10.0))
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: silence/unknown fractions out of 0..10", dir);
  if (o->train_limit < 0)
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: train_limit %d must be >= 0", dir,
                    o->train_limit);
  int rc = speech_aug_check(dir, o, e);
  if (rc) return rc;
  speech_tree t;
  memset(&t, 0, sizeof t);
  t.dir = dir;
  t.o = o;
  rc = scan(&t, e);
  if (!rc) {
    t.aug_key = speech_aug_key(o, t.key);
    try_caches(&t, stats);
  }
  if (!rc && !stats->from_cache) {
    rc = plan_clips(&t, e);
    if (!rc) rc = compute(&t, e);
    if (!rc && t.n == 0)
      rc = nas_errf(e, NAS_EINVAL, "speech-commands %s: no usable clips (%d WAV files, %d skipped)",
                    dir, t.files_seen, t.skipped);
    if (!rc) write_caches(&t, stats);
  }
  if (!rc && t.n == 0)
    rc = nas_errf(e, NAS_EINVAL, "speech-commands %s: no usable clips", dir);
  stats->files_seen = t.files_seen;
  stats->skipped = t.skipped;
  if (!rc) rc = assemble(&t, d, e);
  speech_tree_free(&t);
  if (rc) nas_data_free(d);
  return rc;
}
