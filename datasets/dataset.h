/* datasets/dataset.h: image-like datasets in memory, loaded from a spec string, split
 * deterministically, normalised, and turned into batches (shuffled per epoch, optionally
 * augmented). Ownership: nas_data owns its arrays; free with nas_data_free.
 *
 * Specs:
 *   fashion-mnist[:DIR]  DIR defaults to /usr/share/datasets/fashion-mnist (Debian
 *                        dataset-fashion-mnist); files train-images-idx3-ubyte[.gz],
 *                        train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz],
 *                        t10k-labels-idx1-ubyte[.gz]
 *   idx:DIR              any MNIST-layout set with the same four files
 *   cifar10:DIR          CIFAR-10 binary layout (datasets/cifar.h): 32x32x3, 10 classes
 *   speech-commands:DIR[,options]  Speech Commands v2 layout (datasets/speech.h) */
#ifndef NAS_DATASETS_DATASET_H
#define NAS_DATASETS_DATASET_H

#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"

typedef struct nas_dataset {
  int n;        /* samples */
  int h, w, c;  /* per-sample shape, NHWC */
  int classes;  /* number of classes (labels are 0..classes-1) */
  float *x;     /* [n,h,w,c], normalised */
  int *y;       /* [n] */
  int n_aug;    /* augmented variants per sample in x_aug (0: none; speech-commands aug=N) */
  float *x_aug; /* [n,n_aug,h,w,c] normalised like x, or NULL; owned, freed with the set */
  char labels_at[320]; /* for messages: where the largest label of the files is ("FILE: label
                        * L of sample J"; idx and fashion-mnist), "" when not known */
} nas_dataset;

typedef struct nas_data {
  nas_dataset train, val, test; /* val is a deterministic hold-out of the training files */
  char name[64];                /* "fashion-mnist", "idx" */
  float mean, std;              /* normalisation x = (pixel/255 - mean) / std, from train */
} nas_data;

typedef struct nas_data_opts {
  const char *spec;      /* see above */
  double val_frac;       /* share of the training files held out for validation (0.1) */
  int train_limit;       /* keep at most this many training samples (0: all); applied after the split */
  uint64_t split_seed;   /* seed of the train/validation split (fixed: 0 by default) */
  nas_warn_fn warn;      /* gets each skipped file, one line per call (NULL: dropped) */
  void *warn_user;       /* passed to warn */
} nas_data_opts;

/* Fills opts with defaults (val_frac 0.1, no limit, split_seed 0). */
void nas_data_opts_default(nas_data_opts *o, const char *spec);

/* Loads, splits and normalises. Errors name the file and the problem (missing, truncated,
 * bad magic, count mismatch between images and labels, label out of range). */
int nas_data_load(const nas_data_opts *o, nas_data *d, nas_err *e);
void nas_data_free(nas_data *d); /* NULL-safe */

/* Raw IDX file: magic 0x00000803 (ubyte images) or 0x00000801 (ubyte labels), big-endian
 * dims. Gzip or raw, detected from content. */
typedef struct nas_idx {
  int ndim;          /* 1 (labels) or 3 (images) */
  int dims[3];       /* n, rows, cols */
  unsigned char *data; /* prod(dims) bytes */
} nas_idx;
int nas_idx_read(const char *path, nas_idx *out, nas_err *e);
void nas_idx_free(nas_idx *x);

typedef struct nas_augment {
  int shift;  /* max random shift in pixels along H and W (0: off); vacated pixels get the
                 normalised value of a 0 pixel */
  int flip;   /* 1: random horizontal flip with probability 1/2 */
} nas_augment;

/* Epoch order: fills perm[0..n) with a shuffled permutation of the dataset's indices. */
void nas_data_shuffle(const nas_dataset *ds, int *perm, nas_rng *r);

/* Copies samples idx[0..n) into x ([n,h,w,c]) and labels into y (as float class indices),
 * applying aug (may be NULL) with rng r (may be NULL when aug is NULL). When the set has
 * variants (n_aug > 0, x_aug) and r is given, each sample is first drawn uniformly among its
 * n_aug + 1 versions (version 0 the clean x, version v variant v-1; one nas_rng_below draw
 * per sample, before that sample's aug draws); without r (evaluation) x is used. */
void nas_data_batch(const nas_dataset *ds, const int *idx, int n, float *x, float *y,
                    const nas_augment *aug, nas_rng *r);

#endif
