/* datasets/cifar.c: the CIFAR-10 binary reader (datasets/cifar.h). Files are read whole,
 * checked record by record, then split and normalised exactly as the IDX sets are. */
#include "datasets/cifar.h"
#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"

#define SIDE 32                    /* image side */
#define PLANE (SIDE * SIDE)        /* bytes per colour plane */
#define CLASSES 10                 /* labels 0..9 */
#define PATH_CAP 4096

/* One file's records, checked. */
typedef struct part {
  char path[PATH_CAP];
  unsigned char *bytes; /* the whole file */
  int n;                /* records */
} part;

/* Reads DIR/name into p and checks its records. */
static int read_part(const char *dir, const char *name, part *p, nas_err *e) {
  snprintf(p->path, sizeof p->path, "%s/%s", dir, name);
  struct stat st;
  if (stat(p->path, &st) != 0 || S_ISDIR(st.st_mode))
    return nas_errf(e, NAS_EIO, "%s: missing (the cifar10 layout needs data_batch_1.bin .. "
                    "data_batch_5.bin and test_batch.bin)", p->path);
  char *text = NULL;
  long len = 0;
  int rc = nas_read_file(p->path, &text, &len, e);
  if (rc) return rc;
  p->bytes = (unsigned char *)text;
  if (len == 0) return nas_errf(e, NAS_EFORMAT, "%s: empty file (no records)", p->path);
  if (len % NAS_CIFAR_RECORD)
    return nas_errf(e, NAS_EFORMAT,
                    "%s: %ld bytes is not a whole number of %d-byte records (truncated after "
                    "record %ld)", p->path, len, NAS_CIFAR_RECORD, len / NAS_CIFAR_RECORD);
  if (len / NAS_CIFAR_RECORD > 10000000)
    return nas_errf(e, NAS_EFORMAT, "%s: %ld records exceed the limit of 10000000", p->path,
                    len / NAS_CIFAR_RECORD);
  p->n = (int)(len / NAS_CIFAR_RECORD);
  for (int i = 0; i < p->n; i++) {
    int label = p->bytes[(size_t)i * NAS_CIFAR_RECORD];
    if (label >= CLASSES)
      return nas_errf(e, NAS_EFORMAT, "%s: record %d: label %d out of range 0..%d", p->path, i,
                      label, CLASSES - 1);
  }
  return NAS_OK;
}

/* Record r of the training parts (concatenated in file order). */
static const unsigned char *train_record(const part *tr, int r) {
  int k = 0;
  while (r >= tr[k].n) r -= tr[k].n, k++;
  return tr[k].bytes + (size_t)r * NAS_CIFAR_RECORD;
}

/* Fills ds with records rec[0..n) (label byte first) through lut. */
static int fill(nas_dataset *ds, const unsigned char *const *rec, int n, const float lut[256],
                nas_err *e) {
  ds->n = n, ds->h = SIDE, ds->w = SIDE, ds->c = 3, ds->classes = CLASSES;
  if (n == 0) return NAS_OK;
  ds->x = nas_malloc((size_t)n * 3 * PLANE * sizeof(float));
  ds->y = nas_malloc((size_t)n * sizeof(int));
  if (!ds->x || !ds->y) return nas_errf(e, NAS_ENOMEM, "out of memory for %d samples", n);
  for (int i = 0; i < n; i++) {
    const unsigned char *r = rec[i];
    float *q = ds->x + (size_t)i * 3 * PLANE; /* [32,32,3] */
    for (int p = 0; p < PLANE; p++)
      for (int c = 0; c < 3; c++) q[p * 3 + c] = lut[r[1 + c * PLANE + p]];
    ds->y[i] = r[0];
  }
  return NAS_OK;
}

int nas_cifar_load(const char *dir, const nas_data_opts *o, nas_data *d, nas_err *e) {
  memset(d, 0, sizeof *d);
  if (!dir || !*dir)
    return nas_errf(e, NAS_EINVAL, "dataset '%s': cifar10 needs a directory (cifar10:DIR)", o->spec);
  part parts[NAS_CIFAR_TRAIN_FILES + 1];
  memset(parts, 0, sizeof parts);
  const unsigned char **rec = NULL;
  int *perm = NULL, rc = NAS_OK, n = 0;
  for (int k = 0; rc == NAS_OK && k <= NAS_CIFAR_TRAIN_FILES; k++) {
    char name[32];
    if (k < NAS_CIFAR_TRAIN_FILES) snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
    else snprintf(name, sizeof name, "test_batch.bin");
    rc = read_part(dir, name, &parts[k], e);
    if (rc == NAS_OK && k < NAS_CIFAR_TRAIN_FILES) {
      if (n > 2000000000 - parts[k].n)
        rc = nas_errf(e, NAS_EFORMAT, "dataset '%s': too many training records", o->spec);
      n += parts[k].n;
    }
  }
  int n_val = 0, n_train = 0, n_test = parts[NAS_CIFAR_TRAIN_FILES].n;
  if (rc == NAS_OK) {
    n_val = (int)floor((double)n * o->val_frac + 1e-6);
    if (n_val >= n)
      rc = nas_errf(e, NAS_EINVAL, "dataset '%s': val_frac %g leaves no training samples of %d",
                    o->spec, o->val_frac, n);
  }
  if (rc == NAS_OK) {
    perm = nas_malloc((size_t)n * sizeof *perm);
    rec = nas_malloc((size_t)(n > n_test ? n : n_test) * sizeof *rec);
    if (!perm || !rec) rc = nas_errf(e, NAS_ENOMEM, "dataset '%s': out of memory", o->spec);
  }
  if (rc == NAS_OK) {
    for (int i = 0; i < n; i++) perm[i] = i;
    nas_rng r;
    nas_rng_seed(&r, o->split_seed);
    nas_rng_shuffle(&r, perm, n);
    n_train = n - n_val;
    if (o->train_limit > 0 && o->train_limit < n_train) n_train = o->train_limit;
    /* one mean and std of pixel/255 over the final training set, from a byte histogram */
    uint64_t hist[256] = {0};
    for (int i = 0; i < n_train; i++) {
      const unsigned char *p = train_record(parts, perm[i]) + 1;
      for (int k = 0; k < 3 * PLANE; k++) hist[p[k]]++;
    }
    double cnt = (double)n_train * 3 * PLANE, m = 0, v = 0;
    for (int b = 0; b < 256; b++) m += (double)hist[b] * (b / 255.0);
    m /= cnt;
    for (int b = 0; b < 256; b++) v += (double)hist[b] * (b / 255.0 - m) * (b / 255.0 - m);
    double s = sqrt(v / cnt);
    d->mean = (float)m;
    d->std = s > 1e-12 ? (float)s : 1.0f;
    float lut[256];
    for (int b = 0; b < 256; b++) lut[b] = (float)((b / 255.0 - d->mean) / d->std);
    for (int i = 0; i < n_train; i++) rec[i] = train_record(parts, perm[i]);
    rc = fill(&d->train, rec, n_train, lut, e);
    for (int i = 0; rc == NAS_OK && i < n_val; i++) rec[i] = train_record(parts, perm[n - n_val + i]);
    if (rc == NAS_OK) rc = fill(&d->val, rec, n_val, lut, e);
    for (int i = 0; rc == NAS_OK && i < n_test; i++)
      rec[i] = parts[NAS_CIFAR_TRAIN_FILES].bytes + (size_t)i * NAS_CIFAR_RECORD;
    if (rc == NAS_OK) rc = fill(&d->test, rec, n_test, lut, e);
    if (rc) nas_err_prefix(e, "dataset '%s'", o->spec);
  }
  snprintf(d->name, sizeof d->name, "cifar10");
  for (int k = 0; k <= NAS_CIFAR_TRAIN_FILES; k++) free(parts[k].bytes);
  free(perm);
  free(rec);
  if (rc) nas_data_free(d);
  return rc;
}
