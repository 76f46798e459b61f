/* datasets/speech_cache.c: the on-disk caches of the Speech Commands reader (rules in
 * speech.h). Both files are native-endian and end with a 64-bit FNV-1a of every byte
 * before it; they are written under a temporary name and renamed into place.
 *
 *   features  nas-speech-<key>.cache: "NASSPCH1", key u64, n h w classes skipped files_seen
 *             (int32 each), y int32[n], split int32[n], x float32[n*h*w], checksum u64
 *   variants  nas-speech-aug-<aug key>.cache: "NASSPAG1", aug key u64, n_train aug_n h w
 *             (int32 each), xa float32[n_train*aug_n*h*w] (the variants of the training
 *             clips in the order they have in the feature file), checksum u64 */
#include "core/hash.h"
#include "core/alloc.h"
#include "datasets/speech_impl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_MAGIC "NASSPCH1"     /* 8 bytes at the start of a feature cache */
#define AUG_CACHE_MAGIC "NASSPAG1" /* 8 bytes at the start of a variant cache */

typedef struct cache_head {
  char magic[8];
  uint64_t key;
  int32_t n, h, w, classes, skipped, files_seen;
} cache_head;

typedef struct aug_head {
  char magic[8];
  uint64_t key;
  int32_t n_train, aug_n, h, w;
} aug_head;

/* A file read or written while its checksum accumulates. */
typedef struct ckfile {
  FILE *f;
  uint64_t h; /* FNV-1a of the bytes so far */
  int ok;     /* 0 after any short read or write */
} ckfile;

static void ck_read(ckfile *c, void *p, size_t size, size_t n) {
  if (!c->ok) return;
  if (fread(p, size, n, c->f) != n) {
    c->ok = 0;
    return;
  }
  c->h = nas_fnv1a(c->h, p, size * n);
}

static void ck_write(ckfile *c, const void *p, size_t size, size_t n) {
  if (!c->ok) return;
  if (n && fwrite(p, size, n, c->f) != n) {
    c->ok = 0;
    return;
  }
  c->h = nas_fnv1a(c->h, p, size * n);
}

/* Reads the trailing checksum and checks that nothing follows it. */
static int ck_finish_read(ckfile *c) {
  uint64_t sum = 0;
  uint64_t h = c->h;
  if (!c->ok || fread(&sum, sizeof sum, 1, c->f) != 1) return 0;
  return sum == h && fgetc(c->f) == EOF;
}

/* Opens path's temporary sibling for writing. */
static int ck_create(ckfile *c, const char *path, char *tmp, size_t cap) {
  snprintf(tmp, cap, "%s.tmp%ld", path, (long)getpid());
  c->f = fopen(tmp, "wb");
  c->h = NAS_FNV_OFFSET;
  c->ok = c->f != NULL;
  return c->ok ? 0 : -1;
}

/* Writes the checksum, closes and renames the temporary into path. */
static int ck_commit(ckfile *c, const char *path, const char *tmp) {
  uint64_t h = c->h;
  if (c->ok && fwrite(&h, sizeof h, 1, c->f) != 1) c->ok = 0;
  int ok = (fclose(c->f) == 0) && c->ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* ---- features ---- */

int speech_cache_load(speech_tree *t, const char *path) {
  ckfile c = {fopen(path, "rb"), NAS_FNV_OFFSET, 1};
  if (!c.f) return -1;
  cache_head hd;
  float *x = NULL;
  int32_t *y = NULL, *sp = NULL;
  ck_read(&c, &hd, sizeof hd, 1);
  int ok = c.ok && !memcmp(hd.magic, CACHE_MAGIC, 8) && hd.key == t->key && hd.n >= 0 &&
           hd.h > 0 && hd.w > 0 && hd.n < (1 << 28) && hd.h < 100000 && hd.w < 100000 &&
           hd.classes == t->o->task;
  if (ok) {
    size_t fs = (size_t)hd.h * hd.w;
    x = nas_malloc(sizeof(float) * fs * ((size_t)hd.n + 1));
    y = nas_malloc(sizeof(int32_t) * ((size_t)hd.n + 1));
    sp = nas_malloc(sizeof(int32_t) * ((size_t)hd.n + 1));
    ok = x && y && sp;
    if (ok) {
      ck_read(&c, y, sizeof(int32_t), (size_t)hd.n);
      ck_read(&c, sp, sizeof(int32_t), (size_t)hd.n);
      ck_read(&c, x, sizeof(float), fs * hd.n);
      ok = ck_finish_read(&c);
    }
    for (int i = 0; ok && i < hd.n; i++)
      ok = y[i] >= 0 && y[i] < hd.classes && sp[i] >= 0 && sp[i] < NSPLIT;
  }
  fclose(c.f);
  if (!ok) {
    free(x);
    free(y);
    free(sp);
    return -1;
  }
  t->x = x;
  t->y = y;
  t->sp = sp;
  t->n = hd.n;
  t->h = hd.h;
  t->w = hd.w;
  t->skipped = hd.skipped;
  t->files_seen = hd.files_seen;
  return 0;
}

int speech_cache_store(const speech_tree *t, const char *path) {
  char tmp[SPEECH_PATH_CAP + 32];
  ckfile c;
  if (ck_create(&c, path, tmp, sizeof tmp)) return -1;
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
  ck_write(&c, &hd, sizeof hd, 1);
  ck_write(&c, t->y, sizeof(int32_t), (size_t)t->n);
  ck_write(&c, t->sp, sizeof(int32_t), (size_t)t->n);
  ck_write(&c, t->x, sizeof(float), fs * t->n);
  return ck_commit(&c, path, tmp);
}

/* ---- augmented variants ---- */

static int count_train(const speech_tree *t) {
  int n = 0;
  for (int i = 0; i < t->n; i++) n += t->sp[i] == SPLIT_TRAIN;
  return n;
}

int speech_aug_cache_load(speech_tree *t, const char *path) {
  ckfile c = {fopen(path, "rb"), NAS_FNV_OFFSET, 1};
  if (!c.f) return -1;
  aug_head hd;
  float *xa = NULL;
  ck_read(&c, &hd, sizeof hd, 1);
  int n_train = count_train(t);
  int ok = c.ok && !memcmp(hd.magic, AUG_CACHE_MAGIC, 8) && hd.key == t->aug_key &&
           hd.n_train == n_train && hd.aug_n == t->o->aug_n && hd.h == t->h && hd.w == t->w;
  if (ok) {
    size_t cnt = (size_t)n_train * (size_t)hd.aug_n * (size_t)hd.h * (size_t)hd.w;
    xa = nas_malloc(sizeof(float) * (cnt + 1));
    ok = xa != NULL;
    if (ok) {
      ck_read(&c, xa, sizeof(float), cnt);
      ok = ck_finish_read(&c);
    }
  }
  fclose(c.f);
  if (!ok) {
    free(xa);
    return -1;
  }
  free(t->xa);
  t->xa = xa;
  t->n_train = n_train;
  return 0;
}

int speech_aug_cache_store(const speech_tree *t, const char *path) {
  char tmp[SPEECH_PATH_CAP + 32];
  ckfile c;
  if (ck_create(&c, path, tmp, sizeof tmp)) return -1;
  aug_head hd;
  memset(&hd, 0, sizeof hd);
  memcpy(hd.magic, AUG_CACHE_MAGIC, 8);
  hd.key = t->aug_key;
  hd.n_train = t->n_train;
  hd.aug_n = t->o->aug_n;
  hd.h = t->h;
  hd.w = t->w;
  ck_write(&c, &hd, sizeof hd, 1);
  ck_write(&c, t->xa, sizeof(float), (size_t)t->n_train * hd.aug_n * (size_t)t->h * t->w);
  return ck_commit(&c, path, tmp);
}
