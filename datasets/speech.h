/* datasets/speech.h: the Google Speech Commands (v2) folder layout, read into clips of
 * 1 s at 16 kHz, turned into MFCC / log-mel feature maps (datasets/features.h), cached on
 * disk, and loaded into a nas_data. Waveform augmentation (background noise, time shift).
 *
 * Layout of DIR: one folder per word holding 16-bit PCM, 16 kHz, mono WAV files
 * (DIR/yes/0a7c2a8d_nohash_0.wav), DIR/_background_noise_/ with long noise recordings,
 * DIR/validation_list.txt and DIR/testing_list.txt (one path relative to DIR per line,
 * "yes/0a7c2a8d_nohash_0.wav"). Every clip not in one of the lists is a training clip. Both
 * list files must exist (an empty file means an empty split). Folders whose names start with
 * '_' or '.' are not words. Clips are zero-padded or trimmed to 16000 samples.
 *
 * Tasks:
 *   12  classes 0..9 = yes no up down left right on off stop go, 10 = _silence_,
 *       11 = _unknown_. Per split, with K keyword clips, round(K * 0.1) unknown clips are drawn
 *       without replacement from the clips of all other words of that split and round(K * 0.1)
 *       silence clips are cut from the background-noise files (1 s at a uniform random
 *       offset of a uniformly chosen noise file, scaled by a uniform random volume in [0, 1]):
 *       each of the two is then 1/12 of the split (0.1K / 1.2K), as in TensorFlow's
 *       speech_commands example (silence and unknown percentages 10). The draws use an
 *       nas_rng seeded with the split seed. Without background-noise files silence clips
 *       are all zeros (with a warning).
 *   35  the 35 words of v2, classes in alphabetical order: backward bed bird cat dog down
 *       eight five follow forward four go happy house learn left marvin nine no off on one
 *       right seven sheila six stop three tree two up visual wow yes zero. Folders of other
 *       names are skipped with a warning; a word without a folder has no samples.
 *
 * Broken files (not a WAV, not PCM, not 16000 Hz, not mono, truncated, empty, unreadable)
 * are skipped: one warning line each, then one line with the count. Warnings go to the
 * callback opts.warn; without one they are dropped (the count is still returned in
 * nas_speech_stats). Only the clips a task uses are decoded (in the 12-class
 * task, unknown candidates are decoded once drawn; a broken one leaves one fewer unknown).
 * Nothing usable at all is NAS_EINVAL naming DIR.
 *
 * Cache: features are stored in CACHE_DIR/nas-speech-<16 hex digits>.cache where the digits
 * are a 64-bit FNV-1a hash of the format version, every feature parameter, the task, the
 * split seed, the silence/unknown fractions, the contents of both list files, and the
 * relative path, size and modification time of every WAV file in the tree. Any change gives
 * another file name (old files are left alone). The file ends with an FNV-1a checksum of
 * everything before it; a file that fails it (or is short, or has another header) is
 * ignored, recomputed and rewritten (written to a temporary name, then renamed). The cache
 * is machine-local (native byte order). A cache that cannot be written is a warning, not an
 * error. On a cache hit no WAV file is decoded (the skipped count comes from the cache).
 *
 * Augmentation in training (aug_n > 0): every usable training clip (keyword, unknown and
 * silence alike; never validation or test) gets aug_n augmented variants, computed once:
 * variant v of clip c is nas_speech_augment of the clean, padded waveform with the noise
 * recordings of DIR/_background_noise_ and an nas_rng seeded from (aug_seed, c) that makes
 * the variants of c one after another, then the same features. They are normalised with the
 * clean training mean and std and stored in d->train.x_aug (n_aug = aug_n); the trainer's
 * batches then draw, per clip and epoch, one of its aug_n + 1 versions (nas_data_batch).
 * The variants are cached next to the features in CACHE_DIR/nas-speech-aug-<16 hex>.cache,
 * keyed by the feature key plus aug_n, noise_prob, noise_volume, shift_ms and aug_seed,
 * with the same checksum, temporary-name and warning rules. A variant cache is used only
 * together with a hit of its feature cache; otherwise both are recomputed (and rewritten).
 * Why cached variants rather than features per batch (measured on a contended 2-core
 * x86-64, Release): one 49x10 MFCC takes 0.2 ms, decoding one WAV 0.5 ms, and a dscnn-s
 * training step about 0.7 ms per sample on one thread; computing features per batch would
 * add about 30% to every epoch and keep every waveform in memory (64 KB per clip), whereas
 * 8 variants of 3,360 clips cost about 5 s of CPU once (measured with aug=8 on the
 * 4,200-clip synthetic set of bench/kws_accuracy.sh: 35 s wall under load) and 53 MB. */
#ifndef NAS_DATASETS_SPEECH_H
#define NAS_DATASETS_SPEECH_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/rng.h"
#include "datasets/dataset.h"
#include "datasets/features.h"

#define NAS_SPEECH_RATE 16000   /* samples per second */
#define NAS_SPEECH_CLIP 16000   /* samples per clip (1 s) */

/* How one augmented waveform is made (nas_speech_augment). */
typedef struct nas_speech_aug {
  float noise_prob;   /* probability of mixing in background noise (0.8 in TF's example) */
  float noise_volume; /* noise gain drawn uniformly in [0, noise_volume] (0.1) */
  int shift_ms;       /* time shift drawn uniformly in [-shift_ms, shift_ms] ms (100) */
} nas_speech_aug;

typedef struct nas_speech_opts {
  int task;               /* 12 or 35 */
  nas_feat_params feat;   /* feature definition (nas_feat_params_default) */
  double silence_frac;    /* silence clips per keyword clip, 12-class task (0.1) */
  double unknown_frac;    /* unknown clips per keyword clip, 12-class task (0.1) */
  uint64_t seed;          /* unknown draw and silence cuts (0) */
  const char *cache_dir;  /* where cache files go; NULL: no cache (nas_speech_load defaults
                             to DIR itself) */
  int train_limit;        /* keep the first N training clips after shuffling (0: all) */
  int aug_n;              /* augmented variants per training clip, 0..64 (0: none) */
  nas_speech_aug aug;     /* how the variants are made (0.8, 0.1, 100) */
  uint64_t aug_seed;      /* seed of the variants (1) */
  nas_warn_fn warn;       /* gets each warning line (NULL: dropped) */
  void *warn_user;        /* passed to warn */
} nas_speech_opts;

void nas_speech_opts_default(nas_speech_opts *o);

typedef struct nas_speech_stats {
  int files_seen;   /* WAV files found under the word folders */
  int skipped;      /* broken files skipped */
  int from_cache;   /* 1: features came from the cache file */
  int cache_written;/* 1: a cache file was written by this call */
  char cache_path[4096]; /* the cache file used or written ("" without a cache) */
  int aug_from_cache;    /* 1: the augmented variants came from their cache file */
  int aug_cache_written; /* 1: a variant cache file was written by this call */
  char aug_cache_path[4096]; /* the variant cache file ("" without variants or cache) */
} nas_speech_stats;

/* Reads DIR, computes (or loads cached) features, and fills d: train/val/test with
 * h = frames (49), w = n_mfcc (10) or n_mels, c = 1, classes 12 or 35; d->mean and d->std
 * are the mean and (population) standard deviation of all training feature values (clean
 * clips only) and x = (feature - mean) / std in every split. The training split is shuffled
 * with the seed (so train_limit keeps a random subset); val and test keep directory order.
 * With aug_n > 0, d->train also gets n_aug and x_aug (see above). stats may be NULL. */
int nas_speech_load_dir(const char *dir, const nas_speech_opts *o, nas_data *d,
                        nas_speech_stats *stats, nas_err *e);

/* The dataset spec hook: spec is what follows "speech-commands:", i.e.
 * "DIR[,task=12|35][,window_ms=30|40][,features=mfcc|logmel][,cache=DIR|none]
 *  [,aug=N][,aug_noise=P][,aug_volume=V][,aug_shift_ms=MS][,aug_seed=S]".
 * aug: variants per training clip (0..64, default 0 = no augmentation); aug_noise: noise
 * mixing probability in [0, 1] (0.8); aug_volume: largest noise gain in [0, 1] (0.1);
 * aug_shift_ms: largest time shift, 0..1000 ms (100); aug_seed: seed of the variants, an
 * unsigned integer (1). The aug_* keys only matter with aug > 0.
 * The cache defaults to DIR itself. o supplies train_limit and split_seed (val_frac is not
 * used: the split comes from the list files), and the warning callback (o->warn). Unknown
 * keys or values are NAS_EINVAL. */
int nas_speech_load(const char *spec, const nas_data_opts *o, nas_data *d, nas_err *e);

/* Parses the spec (as above) into dir (cap bytes) and o (which should hold defaults). */
int nas_speech_parse_spec(const char *spec, char *dir, size_t cap, nas_speech_opts *o,
                          nas_err *e);

/* Decodes one WAV file through libsndfile: must be PCM (8/16/24/32-bit integer), 16000 Hz,
 * mono, non-empty, and not shorter than its header says. out: malloc'd [*n] samples in
 * [-1, 1) (int16 / 32768); caller frees. Errors (NAS_EFORMAT, NAS_EIO) say why. */
int nas_wav_read(const char *path, float **out, int *n, nas_err *e);

/* Background noise for augmentation: the WAV files of a folder (broken ones skipped with a
 * warning as above). */
typedef struct nas_speech_noise {
  int n;          /* number of recordings */
  float **x;      /* [n][len[i]] samples */
  int *len;       /* [n] lengths (each >= NAS_SPEECH_CLIP) */
} nas_speech_noise;
int nas_speech_noise_read(const char *dir, const nas_speech_opts *o, nas_speech_noise *nz,
                          int *skipped, nas_err *e);
void nas_speech_noise_free(nas_speech_noise *nz); /* NULL-safe */

/* out = clip shifted by a random offset (vacated samples 0) plus, with probability
 * noise_prob, a random 1 s cut of a random noise recording times a random gain, clamped to
 * [-1, 1]. clip, out: [NAS_SPEECH_CLIP], may not alias. nz may be NULL or empty (no noise).
 * Deterministic given r: draws shift, then (if any noise) the mix decision, and when mixing
 * the recording, offset and gain, in that order. */
void nas_speech_augment(const float *clip, float *out, const nas_speech_aug *a,
                        const nas_speech_noise *nz, nas_rng *r);

#endif
