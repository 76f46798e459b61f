/* datasets/speech_impl.h: internal to datasets/speech*.c: the scanned tree, the planned
 * clips, and the helpers the reader's files share (warnings, directory listing, caches,
 * augmented variants). Not part of the public API (datasets/speech.h is).
 *
 * Files: speech_io.c (directory listing, WAV decoding, background noise), speech.c (scan,
 * clip plan, feature computation, assembly into nas_data), speech_cache.c (the feature and
 * variant cache files), speech_aug.c (waveform augmentation and the augmented variants),
 * speech_spec.c (the dataset spec and nas_speech_load). */
#ifndef NAS_DATASETS_SPEECH_IMPL_H
#define NAS_DATASETS_SPEECH_IMPL_H

#include <stdint.h>

#include "datasets/speech.h"

#define SPEECH_PATH_CAP 4096               /* room for one path */
#define SPEECH_NOISE_DIR "_background_noise_" /* folder of noise recordings */

enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2, NSPLIT = 3 };

/* A growable array of strings (each malloc'd). */
typedef struct speech_strv {
  char **s;     /* [n] strings */
  int n, cap;   /* used, allocated */
} speech_strv;

int speech_strv_push(speech_strv *v, const char *s); /* -1 when out of memory */
void speech_strv_free(speech_strv *v);
int speech_cmp_str(const void *a, const void *b);    /* qsort/bsearch over char * */

/* Sorted names of the entries of dir; want_dirs selects folders (1) or .wav files (0). Names
 * starting with '.' are left out. Returns NAS_OK, NAS_EIO when dir cannot be opened, or
 * NAS_ENOMEM (out keeps what it holds: free it in every case). */
int speech_list_dir(const char *dir, int want_dirs, speech_strv *out);

/* One warning line to the callback o->warn (dropped without one). */
void speech_warnf(const nas_speech_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* One WAV file of a word folder. */
typedef struct speech_entry {
  char *rel;     /* "word/file.wav" (owned) */
  int word;      /* index into the folder list */
  int split;     /* SPLIT_* */
  int label;     /* class, or -1 (not used by the task; 12-class: unknown candidate -2) */
} speech_entry;

/* One clip of the dataset to be built. */
typedef struct speech_clip {
  int entry;      /* index into entries, or -1 for a silence cut */
  int noise, off; /* silence: recording and offset (noise -1: a zero clip) */
  float gain;     /* silence: volume */
  int label, split;
} speech_clip;

/* Everything one load holds; freed by speech_tree_free. */
typedef struct speech_tree {
  const char *dir;          /* DIR (borrowed) */
  const nas_speech_opts *o; /* options (borrowed) */
  speech_strv words;        /* word folder names, sorted */
  speech_entry *ent;        /* [n_ent] */
  int n_ent, cap_ent;
  speech_strv lists[2];     /* validation, testing entries, sorted */
  uint64_t key;             /* feature cache key */
  uint64_t aug_key;         /* variant cache key (key plus the augmentation settings) */
  nas_speech_noise noise;   /* background noise (silence cuts and augmentation) */
  speech_clip *clips;       /* [n_clips] planned clips */
  int n_clips;
  /* features of the usable clips */
  int h, w, classes;
  int n;                    /* usable clips */
  float *x;                 /* [n, h, w] clean features */
  int32_t *y, *sp;          /* [n] labels and splits */
  int skipped, files_seen;
  /* augmented variants of the usable training clips, in the order they have in x */
  int n_train;              /* usable training clips (rows of xa) */
  float *xa;                /* [n_train, o->aug_n, h, w], or NULL */
} speech_tree;

void speech_tree_free(speech_tree *t);

/* Feature cache (format in speech_cache.c): 0 on a valid hit (fills n, h, w, x, y, sp,
 * skipped, files_seen), -1 otherwise (t unchanged). store: 0 written, -1 not. */
int speech_cache_load(speech_tree *t, const char *path);
int speech_cache_store(const speech_tree *t, const char *path);
/* Variant cache: needs t->n, t->h, t->w, t->sp of the features it belongs to; a hit fills
 * n_train and xa. */
int speech_aug_cache_load(speech_tree *t, const char *path);
int speech_aug_cache_store(const speech_tree *t, const char *path);

/* Checks the augmentation options (aug_n, noise_prob, noise_volume, shift_ms). */
int speech_aug_check(const char *dir, const nas_speech_opts *o, nas_err *e);
/* Folds the augmentation settings into key (the variant cache key). */
uint64_t speech_aug_key(const nas_speech_opts *o, uint64_t key);
/* The o->aug_n variants of one training clip: wave [NAS_SPEECH_CLIP] (clean, after padding)
 * is augmented with an nas_rng seeded from (o->aug_seed, clip) and turned into features by
 * fx; out: [aug_n, frames, width]; scratch: [NAS_SPEECH_CLIP]. */
void speech_aug_variants(const nas_speech_opts *o, const nas_speech_noise *nz, nas_feat *fx,
                         int clip, const float *wave, float *scratch, float *out);

#endif
