/* datasets/speech.c: Speech Commands reader (libsndfile), 12/35-class task building, feature
 * cache, nas_data assembly, spec parsing and waveform augmentation. Behaviour is specified
 * in speech.h.
 *
 * Truncation: libsndfile opens a WAV whose data chunk is shorter than its header declares
 * and silently reads what is there; it records the mismatch in its log
 * (SFC_GET_LOG_INFO, a line "data : 32000 (should be 19956)"). A file whose data line
 * carries "should be" is treated as truncated. */
#include "core/hash.h"
#include "datasets/speech.h"

#include <dirent.h>
#include <math.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_VERSION 1u
#define CACHE_MAGIC "NASSPCH1"  /* 8 bytes at the start of a cache file */
#define PATH_CAP 4096
#define NOISE_DIR "_background_noise_"

enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2, NSPLIT = 3 };

static const char *const kw12[10] = {"yes", "no",  "up",  "down", "left",
                                     "right", "on", "off", "stop", "go"};
static const char *const words35[35] = {
    "backward", "bed",   "bird",  "cat",   "dog",    "down",  "eight", "five", "follow",
    "forward",  "four",  "go",    "happy", "house",  "learn", "left",  "marvin", "nine",
    "no",       "off",   "on",    "one",   "right",  "seven", "sheila", "six",  "stop",
    "three",    "tree",  "two",   "up",    "visual", "wow",   "yes",   "zero"};

/* ---- small helpers ---- */


static void warnf(const nas_speech_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void warnf(const nas_speech_opts *o, const char *fmt, ...) {
  if (!o->warn && !o->warn_fn) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (o->warn) fprintf(o->warn, "%s\n", line);
  if (o->warn_fn) o->warn_fn(o->warn_ctx, line);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_wav(const char *name) {
  size_t n = strlen(name);
  return n > 4 && strcasecmp(name + n - 4, ".wav") == 0;
}

/* A growable array of strings. */
typedef struct strv {
  char **s;
  int n, cap;
} strv;

static int strv_push(strv *v, const char *s) {
  if (v->n == v->cap) {
    int cap = v->cap ? v->cap * 2 : 64;
    char **p = realloc(v->s, sizeof(char *) * (size_t)cap);
    if (!p) return -1;
    v->s = p;
    v->cap = cap;
  }
  v->s[v->n] = strdup(s);
  if (!v->s[v->n]) return -1;
  v->n++;
  return 0;
}

static void strv_free(strv *v) {
  for (int i = 0; i < v->n; i++) free(v->s[i]);
  free(v->s);
  memset(v, 0, sizeof *v);
}

/* Sorted names of the entries of dir; want_dirs selects folders (1) or .wav files (0). */
static int list_dir(const char *dir, int want_dirs, strv *out) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *de;
  char path[PATH_CAP];
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    int is_dir = S_ISDIR(st.st_mode);
    if (want_dirs ? !is_dir : (is_dir || !ends_with_wav(de->d_name))) continue;
    if (strv_push(out, de->d_name)) {
      rc = -1;
      break;
    }
  }
  closedir(d);
  if (out->n > 1) qsort(out->s, (size_t)out->n, sizeof(char *), cmp_str);
  return rc;
}

/* ---- WAV ---- */

int nas_wav_read(const char *path, float **out, int *n, nas_err *e) {
  *out = NULL;
  *n = 0;
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) return nas_errf(e, NAS_EFORMAT, "%s: not a readable sound file (%s)", path, sf_strerror(NULL));
  int type = info.format & SF_FORMAT_TYPEMASK, sub = info.format & SF_FORMAT_SUBMASK;
  int rc = NAS_OK;
  if (type != SF_FORMAT_WAV && type != SF_FORMAT_WAVEX)
    rc = nas_errf(e, NAS_EFORMAT, "%s: not a WAV file (format 0x%x)", path, (unsigned)type);
  else if (sub != SF_FORMAT_PCM_16 && sub != SF_FORMAT_PCM_S8 && sub != SF_FORMAT_PCM_U8 &&
           sub != SF_FORMAT_PCM_24 && sub != SF_FORMAT_PCM_32)
    rc = nas_errf(e, NAS_EFORMAT, "%s: not integer PCM (encoding 0x%x)", path, (unsigned)sub);
  else if (info.samplerate != NAS_SPEECH_RATE)
    rc = nas_errf(e, NAS_EFORMAT, "%s: sample rate %d Hz (expected %d)", path, info.samplerate,
                  NAS_SPEECH_RATE);
  else if (info.channels != 1)
    rc = nas_errf(e, NAS_EFORMAT, "%s: %d channels (expected mono)", path, info.channels);
  else if (info.frames <= 0)
    rc = nas_errf(e, NAS_EFORMAT, "%s: no samples", path);
  else if (info.frames > 100000000)
    rc = nas_errf(e, NAS_EFORMAT, "%s: %lld samples is too long", path, (long long)info.frames);
  if (!rc) {
    char log[2048];
    log[0] = 0;
    sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
    for (char *l = log; l && *l;) {
      char *nl = strchr(l, '\n');
      if (nl) *nl = 0;
      if (strncmp(l, "data", 4) == 0 && strstr(l, "should be")) {
        rc = nas_errf(e, NAS_EFORMAT, "%s: truncated (header: %s)", path, l);
        break;
      }
      l = nl ? nl + 1 : NULL;
    }
  }
  if (!rc) {
    float *x = malloc(sizeof(float) * (size_t)info.frames);
    if (!x) {
      rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
    } else {
      sf_count_t got = sf_readf_float(f, x, info.frames);
      if (got != info.frames) {
        free(x);
        rc = nas_errf(e, NAS_EFORMAT, "%s: truncated (read %lld of %lld samples)", path,
                      (long long)got, (long long)info.frames);
      } else {
        *out = x;
        *n = (int)info.frames;
      }
    }
  }
  sf_close(f);
  return rc;
}

/* ---- background noise ---- */

void nas_speech_noise_free(nas_speech_noise *nz) {
  if (!nz) return;
  for (int i = 0; i < nz->n; i++) free(nz->x[i]);
  free(nz->x);
  free(nz->len);
  memset(nz, 0, sizeof *nz);
}

int nas_speech_noise_read(const char *dir, const nas_speech_opts *o, nas_speech_noise *nz,
                          int *skipped, nas_err *e) {
  memset(nz, 0, sizeof *nz);
  strv names = {0};
  if (list_dir(dir, 0, &names)) {
    strv_free(&names);
    return NAS_OK; /* no noise folder: no noise */
  }
  nz->x = calloc((size_t)names.n + 1, sizeof(float *));
  nz->len = calloc((size_t)names.n + 1, sizeof(int));
  if (!nz->x || !nz->len) {
    strv_free(&names);
    nas_speech_noise_free(nz);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", dir);
  }
  char path[PATH_CAP];
  for (int i = 0; i < names.n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names.s[i]);
    nas_err we = {0};
    float *x;
    int n;
    if (nas_wav_read(path, &x, &n, &we)) {
      warnf(o, "speech-commands: skipped %s", we.msg);
      if (skipped) (*skipped)++;
      continue;
    }
    if (n < NAS_SPEECH_CLIP) {
      warnf(o, "speech-commands: skipped %s: noise shorter than 1 s (%d samples)", path, n);
      if (skipped) (*skipped)++;
      free(x);
      continue;
    }
    nz->x[nz->n] = x;
    nz->len[nz->n] = n;
    nz->n++;
  }
  strv_free(&names);
  return NAS_OK;
}

/* ---- augmentation ---- */

void nas_speech_augment(const float *clip, float *out, const nas_speech_aug *a,
                        const nas_speech_noise *nz, nas_rng *r) {
  int max = a->shift_ms > 0 ? a->shift_ms * NAS_SPEECH_RATE / 1000 : 0;
  if (max >= NAS_SPEECH_CLIP) max = NAS_SPEECH_CLIP - 1;
  int shift = max ? (int)nas_rng_below(r, (uint32_t)(2 * max + 1)) - max : 0;
  for (int i = 0; i < NAS_SPEECH_CLIP; i++) {
    int s = i - shift;
    out[i] = s >= 0 && s < NAS_SPEECH_CLIP ? clip[s] : 0.0f;
  }
  if (!nz || nz->n == 0) return;
  if (!(nas_rng_uniform(r) < a->noise_prob)) return;
  int k = (int)nas_rng_below(r, (uint32_t)nz->n);
  int off = (int)nas_rng_below(r, (uint32_t)(nz->len[k] - NAS_SPEECH_CLIP + 1));
  float g = nas_rng_uniform(r) * a->noise_volume;
  const float *x = nz->x[k] + off;
  for (int i = 0; i < NAS_SPEECH_CLIP; i++) {
    float v = out[i] + g * x[i];
    out[i] = v > 1.0f ? 1.0f : (v < -1.0f ? -1.0f : v);
  }
}

/* ---- the tree ---- */

/* One WAV file of a word folder. */
typedef struct entry {
  char *rel;     /* "word/file.wav" */
  int word;      /* index into the folder list */
  int split;     /* SPLIT_* */
  int label;     /* class, or -1 (not used by the task; 12-class: unknown candidate -2) */
} entry;

/* One clip of the dataset to be built. */
typedef struct clip {
  int entry;      /* index into entries, or -1 for a silence cut */
  int noise, off; /* silence: recording and offset */
  float gain;     /* silence: volume */
  int label, split;
} clip;

typedef struct tree {
  const char *dir;
  const nas_speech_opts *o;
  strv words;     /* word folder names, sorted */
  entry *ent;     /* [n_ent] */
  int n_ent, cap_ent;
  strv lists[2];  /* validation, testing entries, sorted */
  uint64_t key;   /* cache key */
  nas_speech_noise noise;
  clip *clips;    /* [n_clips] */
  int n_clips;
  /* features of the usable clips */
  int h, w, classes;
  int n;          /* usable clips */
  float *x;       /* [n, h, w] */
  int32_t *y, *sp;/* [n] labels and splits */
  int skipped, files_seen;
} tree;

static void tree_free(tree *t) {
  strv_free(&t->words);
  for (int i = 0; i < t->n_ent; i++) free(t->ent[i].rel);
  free(t->ent);
  strv_free(&t->lists[0]);
  strv_free(&t->lists[1]);
  nas_speech_noise_free(&t->noise);
  free(t->clips);
  free(t->x);
  free(t->y);
  free(t->sp);
}

/* Reads a list file into sorted strings and folds its bytes into the key. */
static int read_list(tree *t, const char *name, strv *out, nas_err *e) {
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s/%s", t->dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "speech-commands %s: missing %s", t->dir, name);
  char line[PATH_CAP];
  int rc = NAS_OK;
  while (fgets(line, sizeof line, f)) {
    t->key = nas_fnv1a(t->key, line, strlen(line));
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (s[0] == '.' && s[1] == '/') s += 2;
    if (!*s) continue;
    if (strv_push(out, s)) {
      rc = nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
      break;
    }
  }
  if (!rc && ferror(f)) rc = nas_errf(e, NAS_EIO, "speech-commands %s: cannot read %s", t->dir, name);
  fclose(f);
  if (out->n > 1) qsort(out->s, (size_t)out->n, sizeof(char *), cmp_str);
  return rc;
}

static int in_list(const strv *v, const char *s) {
  return v->n && bsearch(&s, v->s, (size_t)v->n, sizeof(char *), cmp_str) != NULL;
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
static int scan(tree *t, nas_err *e) {
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
  if (list_dir(t->dir, 1, &t->words))
    return nas_errf(e, NAS_EIO, "speech-commands %s: cannot list the directory", t->dir);
  char path[2 * PATH_CAP + 2], rel[PATH_CAP];
  for (int wi = 0; wi < t->words.n; wi++) {
    const char *word = t->words.s[wi];
    int is_noise = !strcmp(word, NOISE_DIR);
    if (word[0] == '_' && !is_noise) continue;
    int label = is_noise ? -1 : word_label(o->task, word);
    strv files = {0};
    snprintf(path, sizeof path, "%s/%s", t->dir, word);
    if (list_dir(path, 0, &files)) {
      strv_free(&files);
      return nas_errf(e, NAS_EIO, "speech-commands %s: cannot list %s", t->dir, path);
    }
    if (!is_noise && label == -1 && files.n)
      warnf(o, "speech-commands: skipped folder %s: '%s' is not one of the 35 words (%d files)",
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
        entry *p = realloc(t->ent, sizeof(entry) * (size_t)cap);
        if (!p) {
          strv_free(&files);
          return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
        }
        t->ent = p;
        t->cap_ent = cap;
      }
      entry *en = &t->ent[t->n_ent];
      en->rel = strdup(rel);
      if (!en->rel) {
        strv_free(&files);
        return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
      }
      en->word = wi;
      en->label = label;
      en->split = in_list(&t->lists[1], rel) ? SPLIT_TEST
                  : in_list(&t->lists[0], rel) ? SPLIT_VAL : SPLIT_TRAIN;
      t->n_ent++;
    }
    strv_free(&files);
  }
  t->classes = o->task;
  return NAS_OK;
}

/* Builds the clip list: keyword/word clips, then (12-class) drawn unknowns and silence. */
static int plan_clips(tree *t, nas_err *e) {
  const nas_speech_opts *o = t->o;
  int cap = t->n_ent;
  long extra = 0;
  int kcount[NSPLIT] = {0, 0, 0};
  for (int i = 0; i < t->n_ent; i++)
    if (t->ent[i].label >= 0) kcount[t->ent[i].split]++;
  if (o->task == 12) {
    for (int s = 0; s < NSPLIT; s++) extra += lround(kcount[s] * o->silence_frac) + 1;
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", t->dir, NOISE_DIR);
    int rc = nas_speech_noise_read(path, o, &t->noise, &t->skipped, e);
    if (rc) return rc;
  }
  t->clips = calloc((size_t)cap + (size_t)extra + 1, sizeof(clip));
  int *cand = malloc(sizeof(int) * ((size_t)t->n_ent + 1));
  if (!t->clips || !cand) {
    free(cand);
    return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  }
  nas_rng r;
  nas_rng_seed(&r, o->seed);
  for (int s = 0; s < NSPLIT; s++) {
    for (int i = 0; i < t->n_ent; i++) {
      if (t->ent[i].split != s || t->ent[i].label < 0) continue;
      clip *c = &t->clips[t->n_clips++];
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
      clip *c = &t->clips[t->n_clips++];
      c->entry = cand[k];
      c->label = 11;
      c->split = s;
    }
    long n_sil = lround(kcount[s] * o->silence_frac);
    if (n_sil > 0 && t->noise.n == 0 && s == 0)
      warnf(o, "speech-commands: %s/%s has no usable noise files: silence clips are zeros",
            t->dir, NOISE_DIR);
    for (long k = 0; k < n_sil; k++) {
      clip *c = &t->clips[t->n_clips++];
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

/* Decodes every planned clip and computes its features. */
static int compute(tree *t, nas_err *e) {
  const nas_speech_opts *o = t->o;
  nas_feat *fx = NULL;
  int rc = nas_feat_build(&o->feat, NAS_SPEECH_CLIP, &fx, e);
  if (rc) return rc;
  nas_feat_shape(fx, &t->h, &t->w);
  size_t fs = (size_t)t->h * t->w;
  t->x = malloc(sizeof(float) * fs * ((size_t)t->n_clips + 1));
  t->y = malloc(sizeof(int32_t) * ((size_t)t->n_clips + 1));
  t->sp = malloc(sizeof(int32_t) * ((size_t)t->n_clips + 1));
  float *buf = malloc(sizeof(float) * NAS_SPEECH_CLIP);
  if (!t->x || !t->y || !t->sp || !buf) {
    free(buf);
    nas_feat_free(fx);
    return nas_errf(e, NAS_ENOMEM, "speech-commands %s: out of memory", t->dir);
  }
  char path[PATH_CAP];
  for (int i = 0; i < t->n_clips; i++) {
    const clip *c = &t->clips[i];
    memset(buf, 0, sizeof(float) * NAS_SPEECH_CLIP);
    if (c->entry >= 0) {
      snprintf(path, sizeof path, "%s/%s", t->dir, t->ent[c->entry].rel);
      float *x;
      int n;
      nas_err we = {0};
      int wrc = nas_wav_read(path, &x, &n, &we);
      if (wrc == NAS_ENOMEM) {
        free(buf);
        nas_feat_free(fx);
        return nas_errf(e, NAS_ENOMEM, "%s", we.msg);
      }
      if (wrc) {
        warnf(o, "speech-commands: skipped %s", we.msg);
        t->skipped++;
        continue;
      }
      memcpy(buf, x, sizeof(float) * (size_t)(n < NAS_SPEECH_CLIP ? n : NAS_SPEECH_CLIP));
      free(x);
    } else if (c->noise >= 0) {
      const float *x = t->noise.x[c->noise] + c->off;
      for (int k = 0; k < NAS_SPEECH_CLIP; k++) buf[k] = c->gain * x[k];
    }
    nas_feat_compute(fx, buf, t->x + fs * (size_t)t->n);
    t->y[t->n] = c->label;
    t->sp[t->n] = c->split;
    t->n++;
  }
  free(buf);
  nas_feat_free(fx);
  if (t->skipped)
    warnf(o, "speech-commands: %s: %d file%s skipped", t->dir, t->skipped,
          t->skipped == 1 ? "" : "s");
  return NAS_OK;
}

/* ---- cache ---- */

typedef struct cache_head {
  char magic[8];
  uint64_t key;
  int32_t n, h, w, classes, skipped, files_seen;
} cache_head;

static int cache_load(tree *t, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  cache_head hd;
  int ok = fread(&hd, sizeof hd, 1, f) == 1 && !memcmp(hd.magic, CACHE_MAGIC, 8) &&
           hd.key == t->key && hd.n >= 0 && hd.h > 0 && hd.w > 0 && hd.n < (1 << 28) &&
           hd.h < 100000 && hd.w < 100000 && hd.classes == t->o->task;
  if (ok) {
    size_t fs = (size_t)hd.h * hd.w;
    t->x = malloc(sizeof(float) * fs * ((size_t)hd.n + 1));
    t->y = malloc(sizeof(int32_t) * ((size_t)hd.n + 1));
    t->sp = malloc(sizeof(int32_t) * ((size_t)hd.n + 1));
    uint64_t sum = 0;
    ok = t->x && t->y && t->sp && fread(t->y, sizeof(int32_t), (size_t)hd.n, f) == (size_t)hd.n &&
         fread(t->sp, sizeof(int32_t), (size_t)hd.n, f) == (size_t)hd.n &&
         fread(t->x, sizeof(float), fs * hd.n, f) == fs * hd.n && fread(&sum, sizeof sum, 1, f) == 1;
    if (ok) {
      uint64_t h = nas_fnv1a(NAS_FNV_OFFSET, &hd, sizeof hd);
      h = nas_fnv1a(h, t->y, sizeof(int32_t) * (size_t)hd.n);
      h = nas_fnv1a(h, t->sp, sizeof(int32_t) * (size_t)hd.n);
      h = nas_fnv1a(h, t->x, sizeof(float) * fs * hd.n);
      ok = h == sum && fgetc(f) == EOF;
    }
    for (int i = 0; ok && i < hd.n; i++)
      ok = t->y[i] >= 0 && t->y[i] < hd.classes && t->sp[i] >= 0 && t->sp[i] < NSPLIT;
  }
  fclose(f);
  if (!ok) {
    free(t->x);
    free(t->y);
    free(t->sp);
    t->x = NULL;
    t->y = t->sp = NULL;
    return -1;
  }
  t->n = hd.n;
  t->h = hd.h;
  t->w = hd.w;
  t->skipped = hd.skipped;
  t->files_seen = hd.files_seen;
  return 0;
}

static int cache_store(tree *t, const char *path) {
  char tmp[PATH_CAP + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  cache_head hd;
  memset(&hd, 0, sizeof hd);
  memcpy(hd.magic, CACHE_MAGIC, 8);
  hd.key = t->key;
  hd.n = t->n;
  hd.h = t->h;
  hd.w = t->w;
  hd.classes = t->o->task;
  hd.skipped = t->skipped;
  hd.files_seen = t->files_seen;
  size_t fs = (size_t)t->h * t->w;
  uint64_t h = nas_fnv1a(NAS_FNV_OFFSET, &hd, sizeof hd);
  h = nas_fnv1a(h, t->y, sizeof(int32_t) * (size_t)t->n);
  h = nas_fnv1a(h, t->sp, sizeof(int32_t) * (size_t)t->n);
  h = nas_fnv1a(h, t->x, sizeof(float) * fs * t->n);
  int ok = fwrite(&hd, sizeof hd, 1, f) == 1 &&
           fwrite(t->y, sizeof(int32_t), (size_t)t->n, f) == (size_t)t->n &&
           fwrite(t->sp, sizeof(int32_t), (size_t)t->n, f) == (size_t)t->n &&
           fwrite(t->x, sizeof(float), fs * t->n, f) == fs * t->n &&
           fwrite(&h, sizeof h, 1, f) == 1;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* ---- assembly ---- */

static int fill_split(const tree *t, nas_dataset *ds, int split, const int *order, int n_order,
                      float mean, float std) {
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
  ds->x = malloc(sizeof(float) * fs * n);
  ds->y = malloc(sizeof(int) * (size_t)n);
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

static int assemble(tree *t, nas_data *d, nas_err *e) {
  const nas_speech_opts *o = t->o;
  int *order = malloc(sizeof(int) * ((size_t)t->n + 1));
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

void nas_speech_opts_default(nas_speech_opts *o) {
  memset(o, 0, sizeof *o);
  o->task = 12;
  nas_feat_params_default(&o->feat);
  o->silence_frac = 0.1;
  o->unknown_frac = 0.1;
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
  tree t;
  memset(&t, 0, sizeof t);
  t.dir = dir;
  t.o = o;
  int rc = scan(&t, e);
  if (!rc && o->cache_dir && *o->cache_dir) {
    snprintf(stats->cache_path, sizeof stats->cache_path, "%s/nas-speech-%016llx.cache",
             o->cache_dir, (unsigned long long)t.key);
    if (cache_load(&t, stats->cache_path) == 0) stats->from_cache = 1;
  }
  if (!rc && !stats->from_cache) {
    rc = plan_clips(&t, e);
    if (!rc) rc = compute(&t, e);
    if (!rc && t.n == 0)
      rc = nas_errf(e, NAS_EINVAL, "speech-commands %s: no usable clips (%d WAV files, %d skipped)",
                    dir, t.files_seen, t.skipped);
    if (!rc && stats->cache_path[0]) {
      if (cache_store(&t, stats->cache_path) == 0)
        stats->cache_written = 1;
      else
        warnf(o, "speech-commands: cannot write the feature cache %s", stats->cache_path);
    }
  }
  if (!rc && t.n == 0)
    rc = nas_errf(e, NAS_EINVAL, "speech-commands %s: no usable clips", dir);
  stats->files_seen = t.files_seen;
  stats->skipped = t.skipped;
  if (!rc) rc = assemble(&t, d, e);
  tree_free(&t);
  if (rc) nas_data_free(d);
  return rc;
}

/* ---- spec ---- */

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
    char item[PATH_CAP];
    if (n >= sizeof item) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': option too long", spec);
    memcpy(item, kv, n);
    item[n] = 0;
    char *eq = strchr(item, '=');
    if (!eq) return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': option '%s' is not key=value", spec, item);
    *eq = 0;
    const char *key = item, *val = eq + 1;
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
    } else {
      return nas_errf(e, NAS_EINVAL, "dataset 'speech-commands:%s': unknown option '%s' (expected task, window_ms, features or cache)", spec, key);
    }
  }
  return NAS_OK;
}

int nas_speech_load(const char *spec, const nas_data_opts *o, FILE *warn, nas_data *d,
                    nas_err *e) {
  memset(d, 0, sizeof *d);
  nas_speech_opts so;
  nas_speech_opts_default(&so);
  so.cache_dir = NULL;
  char dir[PATH_CAP];
  int rc = nas_speech_parse_spec(spec, dir, sizeof dir, &so, e);
  if (rc) return rc;
  /* cache_dir points into spec up to the next ',' : copy it out */
  char cache[PATH_CAP];
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
  }
  so.warn = warn;
  return nas_speech_load_dir(dir, &so, d, NULL, e);
}
