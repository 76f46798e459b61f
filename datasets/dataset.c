/* datasets/dataset.c: loading MNIST-layout IDX sets (fashion-mnist, idx), the deterministic
 * train/validation split, normalisation, epoch shuffling and batching with augmentation.
 *
 * Split: the training files' indices are shuffled with nas_rng seeded by split_seed; the
 * last floor(n * val_frac) of them become val, the rest train (in shuffled order), and
 * train_limit then keeps the first train_limit of those. val may be empty (n 0, x/y NULL).
 *
 * Normalisation: mean and std (population) of pixel/255 over the final training set; every
 * split stores x = (pixel/255 - mean) / std. A constant training set (std 0) gets std 1.
 *
 * Augmentation fill: the header asks that shifted-in pixels take the normalised value of a
 * 0 pixel, -mean/std, but nas_dataset does not carry mean or std. Instead batch fills them
 * with the smallest value in that sample. Normalisation is increasing, so that is exactly
 * -mean/std whenever the sample has a black (0) pixel, as Fashion-MNIST images with their
 * black backgrounds do; for a sample without one it is the sample's darkest pixel. */
#include "datasets/dataset.h"
#include "core/alloc.h"

#include "datasets/cifar.h"
#include "datasets/speech.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_CLASSES 10  /* labels of fashion-mnist are 0..9 */
#define MAX_CLASSES 1000   /* largest class count accepted from an idx set */
#define PATH_CAP 4096      /* room for one file path */
#define MAX_SHIFT (1 << 20) /* cap on the augmentation shift, in pixels */

/* The four files of an MNIST-layout set. */
enum { TRAIN_IMG, TRAIN_LBL, TEST_IMG, TEST_LBL, NFILES };
static const char *const file_base[] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte"};
_Static_assert(sizeof file_base / sizeof file_base[0] == NFILES, "one name per file");

/* Everything one load holds until the splits are built. */
typedef struct loader {
  const char *spec;          /* the spec string, for messages */
  int fmnist;                /* 1: fashion-mnist (labels must be 0..9); 0: idx */
  char dir[PATH_CAP - 64];   /* directory with the four files (room left for a name) */
  char path[NFILES][PATH_CAP]; /* resolved file paths (.gz preferred) */
  nas_idx f[NFILES];         /* file contents */
  int *perm;                 /* [n training files]: shuffled indices; train part first */
  int n_train, n_val;        /* samples in train (after limit) and val */
} loader;

void nas_data_opts_default(nas_data_opts *o, const char *spec) {
  memset(o, 0, sizeof *o);
  o->spec = spec;
  o->val_frac = 0.1;
  o->train_limit = 0;
  o->split_seed = 0;
}

/* Splits "kind[:DIR]" into L->fmnist and L->dir, and names d. */
static int parse_spec(loader *L, nas_data *d, nas_err *e) {
  const char *s = L->spec, *colon = strchr(s, ':');
  size_t klen = colon ? (size_t)(colon - s) : strlen(s);
  const char *dir = colon ? colon + 1 : NULL;
  if (klen == 13 && strncmp(s, "fashion-mnist", klen) == 0) {
    L->fmnist = 1;
    if (!dir) dir = FMNIST_DIR;
  } else if (klen == 3 && strncmp(s, "idx", klen) == 0) {
    if (!dir) return nas_errf(e, NAS_EINVAL, "dataset '%s': idx needs a directory (idx:DIR)", s);
  } else {
    return nas_errf(e, NAS_EINVAL,
                    "dataset '%s': unknown kind '%.*s' (expected fashion-mnist[:DIR], idx:DIR, cifar10:DIR or speech-commands:DIR)",
                    s, (int)(klen > 200 ? 200 : klen), s);
  }
  if (!*dir) return nas_errf(e, NAS_EINVAL, "dataset '%s': empty directory after ':'", s);
  if (strlen(dir) >= sizeof L->dir)
    return nas_errf(e, NAS_EINVAL, "dataset '%s': directory path too long", s);
  strcpy(L->dir, dir);
  snprintf(d->name, sizeof d->name, "%s", L->fmnist ? "fashion-mnist" : "idx");
  return NAS_OK;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Resolves L->path[i]: DIR/base.gz if present, else DIR/base. */
static int find_files(loader *L, nas_err *e) {
  struct stat st;
  if (stat(L->dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return nas_errf(e, NAS_EIO, "dataset '%s': directory %s does not exist", L->spec, L->dir);
  for (int i = 0; i < NFILES; i++) {
    snprintf(L->path[i], PATH_CAP, "%s/%s.gz", L->dir, file_base[i]);
    if (is_file(L->path[i])) continue;
    snprintf(L->path[i], PATH_CAP, "%s/%s", L->dir, file_base[i]);
    if (is_file(L->path[i])) continue;
    return nas_errf(e, NAS_EIO, "dataset '%s': missing %s/%s[.gz]", L->spec, L->dir,
                    file_base[i]);
  }
  return NAS_OK;
}

/* Reads the four files and checks each is the kind (images or labels) its name says. */
static int read_files(loader *L, nas_err *e) {
  for (int i = 0; i < NFILES; i++) {
    int rc = nas_idx_read(L->path[i], &L->f[i], e);
    if (rc) return rc; /* the message already names the file */
    int want = (i == TRAIN_IMG || i == TEST_IMG) ? 3 : 1;
    if (L->f[i].ndim != want)
      return nas_errf(e, NAS_EFORMAT, "%s: expected %s (magic 0x%08x), found %s", L->path[i],
                      want == 3 ? "images" : "labels", want == 3 ? 0x803u : 0x801u,
                      want == 3 ? "labels" : "images");
  }
  return NAS_OK;
}

/* Image and label counts match in train and test; train and test images share a shape. */
static int check_shapes(const loader *L, nas_err *e) {
  for (int i = TRAIN_IMG; i <= TEST_IMG; i += 2) {
    if (L->f[i].dims[0] != L->f[i + 1].dims[0])
      return nas_errf(e, NAS_EFORMAT, "%s has %d images but %s has %d labels", L->path[i],
                      L->f[i].dims[0], L->path[i + 1], L->f[i + 1].dims[0]);
  }
  const int *a = L->f[TRAIN_IMG].dims, *b = L->f[TEST_IMG].dims;
  if (a[1] != b[1] || a[2] != b[2])
    return nas_errf(e, NAS_EFORMAT, "%s has %dx%d images but %s has %dx%d", L->path[TRAIN_IMG],
                    a[1], a[2], L->path[TEST_IMG], b[1], b[2]);
  return NAS_OK;
}

/* classes = max label + 1 over train and test; fashion-mnist labels must be 0..9. */
static int check_labels(const loader *L, int *classes, char *at, size_t at_size, nas_err *e) {
  int maxl = 0, max_file = TRAIN_LBL, max_sample = 0;
  for (int i = TRAIN_LBL; i <= TEST_LBL; i += 2) {
    for (int j = 0; j < L->f[i].dims[0]; j++) {
      int v = L->f[i].data[j];
      if (L->fmnist && v >= FMNIST_CLASSES)
        return nas_errf(e, NAS_EINVAL, "%s: label %d of sample %d out of range (fashion-mnist "
                        "labels are 0..%d)", L->path[i], v, j, FMNIST_CLASSES - 1);
      if (v > maxl) maxl = v, max_file = i, max_sample = j;
    }
  }
  snprintf(at, at_size, "%s: label %d of sample %d", L->path[max_file], maxl, max_sample);
  /* Unreachable with ubyte labels (at most 256 classes); guards wider label types. */
  if (maxl + 1 > MAX_CLASSES)
    return nas_errf(e, NAS_EINVAL, "dataset '%s': %d classes exceed the limit of %d", L->spec,
                    maxl + 1, MAX_CLASSES);
  *classes = maxl + 1;
  return NAS_OK;
}

/* Shuffles the training files' indices and sizes the train and val parts. */
static int split(loader *L, const nas_data_opts *o, nas_err *e) {
  int n = L->f[TRAIN_IMG].dims[0];
  int n_val = (int)floor((double)n * o->val_frac + 1e-6); /* tolerance for 0.29 * 100 etc. */
  if (n_val >= n)
    return nas_errf(e, NAS_EINVAL, "dataset '%s': val_frac %g leaves no training samples of %d",
                    L->spec, o->val_frac, n);
  L->perm = nas_malloc((size_t)n * sizeof *L->perm);
  if (!L->perm) return nas_errf(e, NAS_ENOMEM, "dataset '%s': out of memory", L->spec);
  for (int i = 0; i < n; i++) L->perm[i] = i;
  nas_rng r;
  nas_rng_seed(&r, o->split_seed);
  nas_rng_shuffle(&r, L->perm, n);
  L->n_val = n_val;
  L->n_train = n - n_val;
  if (o->train_limit > 0 && o->train_limit < L->n_train) L->n_train = o->train_limit;
  return NAS_OK;
}

/* Mean and std of pixel/255 over the training samples, from a histogram of byte values. */
static void train_stats(const loader *L, float *mean, float *std) {
  const nas_idx *img = &L->f[TRAIN_IMG];
  size_t sz = (size_t)img->dims[1] * (size_t)img->dims[2];
  uint64_t hist[256] = {0};
  for (int i = 0; i < L->n_train; i++) {
    const unsigned char *p = img->data + (size_t)L->perm[i] * sz;
    for (size_t k = 0; k < sz; k++) hist[p[k]]++;
  }
  double cnt = (double)L->n_train * (double)sz, m = 0, v = 0;
  for (int b = 0; b < 256; b++) m += (double)hist[b] * (b / 255.0);
  m /= cnt;
  for (int b = 0; b < 256; b++) v += (double)hist[b] * (b / 255.0 - m) * (b / 255.0 - m);
  double s = sqrt(v / cnt);
  *mean = (float)m;
  *std = s > 1e-12 ? (float)s : 1.0f;
}

/* Fills ds with samples idx[0..n) (identity when idx is NULL) of img/lbl via lut. */
static int fill(nas_dataset *ds, const nas_idx *img, const nas_idx *lbl, const int *idx, int n,
                const float lut[256], nas_err *e) {
  size_t sz = (size_t)img->dims[1] * (size_t)img->dims[2];
  ds->n = n;
  ds->h = img->dims[1];
  ds->w = img->dims[2];
  ds->c = 1;
  if (n == 0) return NAS_OK;
  if ((size_t)n > SIZE_MAX / sizeof(float) / sz)
    return nas_errf(e, NAS_ENOMEM, "%d samples of %zu floats do not fit in memory", n, sz);
  ds->x = nas_malloc((size_t)n * sz * sizeof(float));
  ds->y = nas_malloc((size_t)n * sizeof(int));
  if (!ds->x || !ds->y) return nas_errf(e, NAS_ENOMEM, "out of memory for %d samples", n);
  for (int i = 0; i < n; i++) {
    size_t s = idx ? (size_t)idx[i] : (size_t)i;
    const unsigned char *p = img->data + s * sz;
    float *q = ds->x + (size_t)i * sz;
    for (size_t k = 0; k < sz; k++) q[k] = lut[p[k]];
    ds->y[i] = lbl->data[s];
  }
  return NAS_OK;
}

/* Computes normalisation from train and builds the three splits. */
static int build(const loader *L, nas_data *d, int classes, const char *labels_at, nas_err *e) {
  train_stats(L, &d->mean, &d->std);
  float lut[256];
  for (int b = 0; b < 256; b++) lut[b] = (float)((b / 255.0 - d->mean) / d->std);
  const nas_idx *f = L->f;
  int rc = fill(&d->train, &f[TRAIN_IMG], &f[TRAIN_LBL], L->perm, L->n_train, lut, e);
  if (!rc) {
    int first_val = f[TRAIN_IMG].dims[0] - L->n_val;
    rc = fill(&d->val, &f[TRAIN_IMG], &f[TRAIN_LBL], L->perm + first_val, L->n_val, lut, e);
  }
  if (!rc) rc = fill(&d->test, &f[TEST_IMG], &f[TEST_LBL], NULL, f[TEST_IMG].dims[0], lut, e);
  if (rc) return nas_err_prefix(e, "dataset '%s'", L->spec);
  d->train.classes = d->val.classes = d->test.classes = classes;
  nas_dataset *sets[3] = {&d->train, &d->val, &d->test};
  for (int i = 0; i < 3; i++) snprintf(sets[i]->labels_at, sizeof sets[i]->labels_at, "%s", labels_at);
  return NAS_OK;
}

static int check_opts(const nas_data_opts *o, nas_err *e) {
  if (!o || !o->spec) return nas_errf(e, NAS_EINVAL, "dataset: no spec given");
  if (!(o->val_frac >= 0.0 && o->val_frac < 1.0))
    return nas_errf(e, NAS_EINVAL, "dataset '%s': val_frac %g must be in [0, 1)", o->spec,
                    o->val_frac);
  if (o->train_limit < 0)
    return nas_errf(e, NAS_EINVAL, "dataset '%s': train_limit %d must be >= 0", o->spec,
                    o->train_limit);
  return NAS_OK;
}

int nas_data_load(const nas_data_opts *o, nas_data *d, nas_err *e) {
  memset(d, 0, sizeof *d);
  int rc = check_opts(o, e);
  if (rc) return rc;
  if (strncmp(o->spec, "speech-commands:", 16) == 0)
    return nas_speech_load(o->spec + 16, o, d, e);
  if (strncmp(o->spec, "cifar10:", 8) == 0) return nas_cifar_load(o->spec + 8, o, d, e);
  loader *L = nas_calloc(1, sizeof *L);
  if (!L) return nas_errf(e, NAS_ENOMEM, "dataset '%s': out of memory", o->spec);
  L->spec = o->spec;
  int classes = 0;
  char labels_at[sizeof d->train.labels_at] = "";
  rc = parse_spec(L, d, e);
  if (!rc) rc = find_files(L, e);
  if (!rc) rc = read_files(L, e);
  if (!rc) rc = check_shapes(L, e);
  if (!rc) rc = check_labels(L, &classes, labels_at, sizeof labels_at, e);
  if (!rc) rc = split(L, o, e);
  if (!rc) rc = build(L, d, classes, labels_at, e);
  for (int i = 0; i < NFILES; i++) nas_idx_free(&L->f[i]);
  free(L->perm);
  free(L);
  if (rc) nas_data_free(d);
  return rc;
}

static void dataset_free(nas_dataset *ds) {
  free(ds->x);
  free(ds->y);
  free(ds->x_aug);
  memset(ds, 0, sizeof *ds);
}

void nas_data_free(nas_data *d) {
  if (!d) return;
  dataset_free(&d->train);
  dataset_free(&d->val);
  dataset_free(&d->test);
  memset(d, 0, sizeof *d);
}

void nas_data_shuffle(const nas_dataset *ds, int *perm, nas_rng *r) {
  for (int i = 0; i < ds->n; i++) perm[i] = i;
  nas_rng_shuffle(r, perm, ds->n);
}

static float sample_min(const float *s, size_t sz) {
  float m = s[0];
  for (size_t k = 1; k < sz; k++) m = s[k] < m ? s[k] : m;
  return m;
}

/* dst = src shifted by (dy, dx) pixels, then mirrored along W if flip; src, dst: [h,w,c].
 * Pixels shifted in from outside get fill (see the comment at the top). */
static void augment_one(const nas_dataset *ds, const float *src, float *dst, int dy, int dx,
                        int flip) {
  int h = ds->h, w = ds->w, c = ds->c;
  float fill = sample_min(src, (size_t)h * w * c);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      int sy = y - dy, sx = (flip ? w - 1 - x : x) - dx;
      float *q = dst + ((size_t)y * w + x) * c;
      if (sy >= 0 && sy < h && sx >= 0 && sx < w)
        memcpy(q, src + ((size_t)sy * w + sx) * c, (size_t)c * sizeof(float));
      else
        for (int k = 0; k < c; k++) q[k] = fill;
    }
  }
}

/* Draws one sample's shift and flip from r: shift first (dy, then dx), then flip. Shifts
 * are capped at MAX_SHIFT (far beyond any image side) so the arithmetic cannot overflow. */
static void draw_aug(const nas_augment *aug, nas_rng *r, int *dy, int *dx, int *flip) {
  *dy = *dx = *flip = 0;
  if (aug->shift > 0) {
    int s = aug->shift < MAX_SHIFT ? aug->shift : MAX_SHIFT;
    uint32_t span = 2u * (uint32_t)s + 1u;
    *dy = (int)nas_rng_below(r, span) - s;
    *dx = (int)nas_rng_below(r, span) - s;
  }
  if (aug->flip) *flip = (int)nas_rng_below(r, 2);
}

/* x: [n,h,w,c]; y: [n]. Augmentation needs r; with r NULL samples are copied unchanged. */
void nas_data_batch(const nas_dataset *ds, const int *idx, int n, float *x, float *y,
                    const nas_augment *aug, nas_rng *r) {
  size_t sz = (size_t)ds->h * ds->w * ds->c;
  int active = aug && r && (aug->shift > 0 || aug->flip);
  int variants = r && ds->n_aug > 0 && ds->x_aug ? ds->n_aug : 0;
  for (int i = 0; i < n; i++) {
    const float *src = ds->x + (size_t)idx[i] * sz;
    if (variants) {
      uint32_t v = nas_rng_below(r, (uint32_t)variants + 1u);
      if (v > 0) src = ds->x_aug + ((size_t)idx[i] * (size_t)variants + (v - 1)) * sz;
    }
    float *dst = x + (size_t)i * sz;
    y[i] = (float)ds->y[idx[i]];
    if (!active) {
      memcpy(dst, src, sz * sizeof(float));
      continue;
    }
    int dy, dx, flip;
    draw_aug(aug, r, &dy, &dx, &flip);
    augment_one(ds, src, dst, dy, dx, flip);
  }
}
