/* tests/test_datasets.c: the IDX reader and the dataset loader, split, shuffle and batch.
 * Every test writes its own files under a fresh mkdtemp directory, removed at the end;
 * the Fashion-MNIST test uses the real files when /usr/share/datasets/fashion-mnist exists
 * and is skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "datasets/dataset.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static char g_root[64]; /* the temporary directory of this run */

/* ---- file helpers ---- */

/* Removes a directory tree (no symlinks are created by these tests). */
static void rm_tree(const char *path) {
  DIR *dir = opendir(path);
  if (dir) {
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      char sub[1024];
      snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
      rm_tree(sub);
    }
    closedir(dir);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* Makes g_root/name and returns its path in out. */
static void make_dir(const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", g_root, name);
  assert_int_equal(mkdir(out, 0700), 0);
}

static void join(char *out, size_t cap, const char *dir, const char *file) {
  snprintf(out, cap, "%s/%s", dir, file);
}

static void write_raw(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const unsigned char *b, size_t n) {
  gzFile f = gzopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
  assert_int_equal(gzclose(f), Z_OK);
}

/* Reads a whole file into a new buffer; *n = its size. */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* An IDX byte image: magic 0x0000080<ndim>, the dims, then data; *len = its size. */
static unsigned char *idx_bytes(int ndim, const uint32_t *dims, const unsigned char *data,
                                size_t ndata, size_t *len) {
  *len = 4 + 4 * (size_t)ndim + ndata;
  unsigned char *b = malloc(*len);
  assert_non_null(b);
  put_be32(b, 0x800u | (uint32_t)ndim);
  for (int i = 0; i < ndim; i++) put_be32(b + 4 + 4 * i, dims[i]);
  if (ndata) memcpy(b + 4 + 4 * ndim, data, ndata);
  return b;
}

/* Writes an IDX file, gzip-compressed when gz. */
static void write_idx(const char *path, int gz, int ndim, const uint32_t *dims,
                      const unsigned char *data, size_t ndata) {
  size_t len;
  unsigned char *b = idx_bytes(ndim, dims, data, ndata, &len);
  if (gz)
    write_gz(path, b, len);
  else
    write_raw(path, b, len);
  free(b);
}

/* Byte k of synthetic sample i: bytes 0 and 1 encode i, the rest vary with i and k. */
static unsigned char pixel_of(int i, int k) {
  if (k == 0) return (unsigned char)(i & 255);
  if (k == 1) return (unsigned char)(i >> 8);
  return (unsigned char)((i * 7 + k * 13) % 256);
}

static unsigned char label_of(int i, int classes) { return (unsigned char)(i % classes); }

/* Writes the images or labels file `base` (under dir, + ".gz" when gz) with n samples. */
static void write_images(const char *dir, const char *base, int gz, int n, int rows, int cols) {
  size_t sz = (size_t)rows * cols;
  unsigned char *data = malloc((size_t)n * sz);
  assert_non_null(data);
  for (int i = 0; i < n; i++)
    for (size_t k = 0; k < sz; k++) data[(size_t)i * sz + k] = pixel_of(i, (int)k);
  char path[1024], name[256];
  snprintf(name, sizeof name, "%s%s", base, gz ? ".gz" : "");
  join(path, sizeof path, dir, name);
  uint32_t dims[3] = {(uint32_t)n, (uint32_t)rows, (uint32_t)cols};
  write_idx(path, gz, 3, dims, data, (size_t)n * sz);
  free(data);
}

static void write_labels(const char *dir, const char *base, int gz, int n, int classes) {
  unsigned char *data = malloc((size_t)n);
  assert_non_null(data);
  for (int i = 0; i < n; i++) data[i] = label_of(i, classes);
  char path[1024], name[256];
  snprintf(name, sizeof name, "%s%s", base, gz ? ".gz" : "");
  join(path, sizeof path, dir, name);
  uint32_t dims[1] = {(uint32_t)n};
  write_idx(path, gz, 1, dims, data, (size_t)n);
  free(data);
}

/* A complete set: train images gz, train labels raw, test images raw, test labels gz. */
static void write_set(const char *dir, int n_train, int n_test, int rows, int cols,
                      int classes) {
  write_images(dir, "train-images-idx3-ubyte", 1, n_train, rows, cols);
  write_labels(dir, "train-labels-idx1-ubyte", 0, n_train, classes);
  write_images(dir, "t10k-images-idx3-ubyte", 0, n_test, rows, cols);
  write_labels(dir, "t10k-labels-idx1-ubyte", 1, n_test, classes);
}

/* Builds the spec "kind:dir" into out. */
static const char *spec_of(char *out, size_t cap, const char *kind, const char *dir) {
  snprintf(out, cap, "%s:%s", kind, dir);
  return out;
}

#define assert_msg_has(e, s)                                                   \
  do {                                                                         \
    if (!strstr((e).msg, (s))) fail_msg("message '%s' lacks '%s'", (e).msg, (s)); \
  } while (0)

/* ---- IDX reader ---- */

static void test_idx_raw_images(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_raw", dir, sizeof dir);
  join(path, sizeof path, dir, "img");
  unsigned char data[18];
  for (int i = 0; i < 18; i++) data[i] = (unsigned char)(i * 10);
  uint32_t dims[3] = {3, 2, 3};
  write_idx(path, 0, 3, dims, data, 18);
  nas_idx x;
  nas_err e = {0};
  assert_int_equal(nas_idx_read(path, &x, &e), NAS_OK);
  assert_int_equal(x.ndim, 3);
  assert_int_equal(x.dims[0], 3);
  assert_int_equal(x.dims[1], 2);
  assert_int_equal(x.dims[2], 3);
  assert_memory_equal(x.data, data, 18);
  nas_idx_free(&x);
  assert_null(x.data);
  nas_idx_free(NULL);
}

static void test_idx_gzip_labels(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_gz", dir, sizeof dir);
  join(path, sizeof path, dir, "lbl.gz");
  unsigned char data[5] = {9, 0, 3, 3, 7};
  uint32_t dims[1] = {5};
  write_idx(path, 1, 1, dims, data, 5);
  nas_idx x;
  nas_err e = {0};
  assert_int_equal(nas_idx_read(path, &x, &e), NAS_OK);
  assert_int_equal(x.ndim, 1);
  assert_int_equal(x.dims[0], 5);
  assert_int_equal(x.dims[1], 1); /* unused dims are 1, so prod(dims) is the data size */
  assert_int_equal(x.dims[2], 1);
  assert_memory_equal(x.data, data, 5);
  nas_idx_free(&x);
}

/* Expects nas_idx_read(path) to fail with code, naming path and containing what. */
static void expect_idx_error(const char *path, int code, const char *what) {
  nas_idx x;
  nas_err e = {0};
  assert_int_equal(nas_idx_read(path, &x, &e), code);
  assert_int_equal(e.code, code);
  assert_null(x.data);
  assert_msg_has(e, path);
  if (what) assert_msg_has(e, what);
  assert_null(strchr(e.msg, '\n'));
}

static void test_idx_truncated_raw(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_trunc", dir, sizeof dir);
  join(path, sizeof path, dir, "img");
  unsigned char data[18] = {0};
  size_t len;
  uint32_t dims[3] = {3, 2, 3};
  unsigned char *b = idx_bytes(3, dims, data, 18, &len);
  write_raw(path, b, len - 8);
  expect_idx_error(path, NAS_EFORMAT, "truncated: expected 18 bytes of data, got 10");
  write_raw(path, b, 10); /* inside the header */
  expect_idx_error(path, NAS_EFORMAT, "truncated");
  write_raw(path, b, 2); /* inside the magic */
  expect_idx_error(path, NAS_EFORMAT, "truncated");
  write_raw(path, b, 0);
  expect_idx_error(path, NAS_EFORMAT, "truncated");
  free(b);
}

static void test_idx_truncated_gzip(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_truncgz", dir, sizeof dir);
  join(path, sizeof path, dir, "img.gz");
  enum { N = 50, R = 28, C = 28 };
  unsigned char *data = malloc(N * R * C);
  for (int i = 0; i < N * R * C; i++) data[i] = (unsigned char)((i * 2654435761u) >> 13);
  uint32_t dims[3] = {N, R, C};
  write_idx(path, 1, 3, dims, data, N * R * C);
  size_t n;
  unsigned char *gz = slurp(path, &n);
  write_raw(path, gz, n / 2);
  expect_idx_error(path, NAS_EFORMAT, "truncated: expected 39200 bytes of data, got");
  write_raw(path, gz, n - 4); /* only the gzip trailer's length field is missing */
  expect_idx_error(path, NAS_EFORMAT, NULL);
  free(gz);
  free(data);
}

static void test_idx_corrupt_gzip(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_corrupt", dir, sizeof dir);
  join(path, sizeof path, dir, "img.gz");
  enum { N = 20, R = 10, C = 10 };
  unsigned char data[N * R * C];
  for (int i = 0; i < N * R * C; i++) data[i] = (unsigned char)(i % 251);
  uint32_t dims[3] = {N, R, C};
  write_idx(path, 1, 3, dims, data, sizeof data);
  size_t n;
  unsigned char *gz = slurp(path, &n);
  for (size_t k = n / 3; k < n / 3 + 8; k++) gz[k] ^= 0xA5;
  write_raw(path, gz, n);
  expect_idx_error(path, NAS_EFORMAT, NULL);
  /* intact deflate data, but a flipped CRC in the trailer */
  for (size_t k = n / 3; k < n / 3 + 8; k++) gz[k] ^= 0xA5;
  gz[n - 8] ^= 1;
  write_raw(path, gz, n);
  expect_idx_error(path, NAS_EFORMAT, "gzip");
  free(gz);
}

static void test_idx_bad_magic(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_magic", dir, sizeof dir);
  join(path, sizeof path, dir, "img");
  unsigned char b[32] = {0};
  put_be32(b, 0x00000802); /* ubyte, 2-d */
  put_be32(b + 4, 1);
  put_be32(b + 8, 1);
  write_raw(path, b, 13);
  expect_idx_error(path, NAS_EFORMAT, "bad magic 0x00000802");
  put_be32(b, 0x00000D03); /* float, 3-d */
  write_raw(path, b, 32);
  expect_idx_error(path, NAS_EFORMAT, "bad magic");
  write_raw(path, (const unsigned char *)"hello, world, not an idx file", 29);
  expect_idx_error(path, NAS_EFORMAT, "bad magic");
}

static void test_idx_bad_dims(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_dims", dir, sizeof dir);
  join(path, sizeof path, dir, "img");
  unsigned char data[8] = {0};
  uint32_t zero_n[3] = {0, 2, 2}, zero_rows[3] = {2, 0, 2}, wide[3] = {1, 1, 5000},
           huge[3] = {0x7fffffffu, 4096, 4096}, neg[3] = {0x80000000u, 1, 1};
  const uint32_t *cases[] = {zero_n, zero_rows, wide, huge, neg};
  const char *what[] = {"bad count 0", "bad rows 0", "bad cols 5000", "exceed the limit",
                        "bad count"};
  for (int i = 0; i < 5; i++) {
    write_idx(path, 0, 3, cases[i], data, sizeof data);
    expect_idx_error(path, NAS_EFORMAT, what[i]);
  }
}

static void test_idx_trailing_data(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_trailing", dir, sizeof dir);
  join(path, sizeof path, dir, "lbl");
  unsigned char data[6] = {1, 2, 3, 4, 5, 6};
  uint32_t dims[1] = {5};
  write_idx(path, 0, 1, dims, data, 6);
  expect_idx_error(path, NAS_EFORMAT, "trailing data");
  join(path, sizeof path, dir, "lbl.gz");
  write_idx(path, 1, 1, dims, data, 6);
  expect_idx_error(path, NAS_EFORMAT, "trailing data");
}

static void test_idx_cannot_open(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("idx_open", dir, sizeof dir);
  join(path, sizeof path, dir, "no-such-file");
  expect_idx_error(path, NAS_EIO, "cannot open");
  expect_idx_error(dir, NAS_EIO, "not a regular file");
}

/* ---- loading ---- */

/* Mean and (population) std of all values of ds->x. */
static void stats_of(const nas_dataset *ds, double *mean, double *std) {
  size_t n = (size_t)ds->n * ds->h * ds->w * ds->c;
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) s += ds->x[i];
  *mean = s / n;
  for (size_t i = 0; i < n; i++) s2 += (ds->x[i] - *mean) * (ds->x[i] - *mean);
  *std = sqrt(s2 / n);
}

/* Undoes normalisation of one value back to its byte. */
static int byte_of(const nas_data *d, float v) {
  return (int)lround(((double)v * d->std + d->mean) * 255.0);
}

/* The synthetic index of sample i of ds (from its first two bytes). */
static int id_of(const nas_data *d, const nas_dataset *ds, int i) {
  const float *x = ds->x + (size_t)i * ds->h * ds->w * ds->c;
  return byte_of(d, x[0]) | byte_of(d, x[1]) << 8;
}

/* Checks every value and label of ds against the synthetic generator. */
static void check_samples(const nas_data *d, const nas_dataset *ds, int n_src, int classes) {
  int sz = ds->h * ds->w * ds->c;
  for (int i = 0; i < ds->n; i++) {
    int id = id_of(d, ds, i);
    assert_in_range(id, 0, n_src - 1);
    assert_int_equal(ds->y[i], label_of(id, classes));
    const float *x = ds->x + (size_t)i * sz;
    for (int k = 0; k < sz; k++) {
      float want = (float)((pixel_of(id, k) / 255.0 - d->mean) / d->std);
      assert_float_equal(x[k], want, 1e-5);
    }
  }
}

static int load_dir(const char *kind, const char *dir, double val_frac, int limit,
                    uint64_t seed, nas_data *d, nas_err *e) {
  char spec[1024];
  nas_data_opts o;
  nas_data_opts_default(&o, spec_of(spec, sizeof spec, kind, dir));
  o.val_frac = val_frac;
  o.train_limit = limit;
  o.split_seed = seed;
  return nas_data_load(&o, d, e);
}

static void test_opts_default(void **state) {
  (void)state;
  nas_data_opts o;
  nas_data_opts_default(&o, "fashion-mnist");
  assert_string_equal(o.spec, "fashion-mnist");
  assert_true(o.val_frac == 0.1);
  assert_int_equal(o.train_limit, 0);
  assert_true(o.split_seed == 0);
}

static void test_load_values(void **state) {
  (void)state;
  char dir[512];
  make_dir("load", dir, sizeof dir);
  write_set(dir, 300, 40, 4, 5, 7);
  nas_data d;
  nas_err e = {0};
  assert_int_equal(load_dir("idx", dir, 0.2, 0, 0, &d, &e), NAS_OK);
  assert_string_equal(d.name, "idx");
  assert_int_equal(d.train.n, 240);
  assert_int_equal(d.val.n, 60);
  assert_int_equal(d.test.n, 40);
  const nas_dataset *all[3] = {&d.train, &d.val, &d.test};
  for (int s = 0; s < 3; s++) {
    assert_int_equal(all[s]->h, 4);
    assert_int_equal(all[s]->w, 5);
    assert_int_equal(all[s]->c, 1);
    assert_int_equal(all[s]->classes, 7);
  }
  check_samples(&d, &d.train, 300, 7);
  check_samples(&d, &d.val, 300, 7);
  check_samples(&d, &d.test, 40, 7);
  for (int i = 0; i < d.test.n; i++) assert_int_equal(id_of(&d, &d.test, i), i); /* file order */
  double m, s;
  stats_of(&d.train, &m, &s);
  assert_true(fabs(m) < 1e-4);
  assert_true(fabs(s - 1.0) < 1e-4);
  assert_true(d.mean > 0.0f && d.std > 0.0f);
  nas_data_free(&d);
  assert_null(d.train.x);
  nas_data_free(NULL);
}

static void test_load_prefers_gz(void **state) {
  (void)state;
  char dir[512], path[1024];
  make_dir("prefer_gz", dir, sizeof dir);
  write_set(dir, 20, 5, 3, 3, 2);
  join(path, sizeof path, dir, "train-images-idx3-ubyte"); /* a broken raw twin is ignored */
  write_raw(path, (const unsigned char *)"junk", 4);
  nas_data d;
  nas_err e = {0};
  assert_int_equal(load_dir("idx", dir, 0.1, 0, 0, &d, &e), NAS_OK);
  assert_int_equal(d.train.n + d.val.n, 20);
  nas_data_free(&d);
}

/* Sorted synthetic ids of ds into out (ds->n entries). */
static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static void ids_of(const nas_data *d, const nas_dataset *ds, int *out) {
  for (int i = 0; i < ds->n; i++) out[i] = id_of(d, ds, i);
  qsort(out, (size_t)ds->n, sizeof *out, cmp_int);
}

static void test_split_deterministic(void **state) {
  (void)state;
  char dir[512];
  make_dir("split", dir, sizeof dir);
  write_set(dir, 500, 10, 2, 2, 3);
  nas_data a, b, c;
  nas_err e = {0};
  assert_int_equal(load_dir("idx", dir, 0.1, 0, 7, &a, &e), NAS_OK);
  assert_int_equal(load_dir("idx", dir, 0.1, 0, 7, &b, &e), NAS_OK);
  assert_int_equal(load_dir("idx", dir, 0.1, 0, 8, &c, &e), NAS_OK);
  assert_int_equal(a.val.n, 50);
  assert_memory_equal(a.val.x, b.val.x, sizeof(float) * 50 * 4);
  assert_memory_equal(a.val.y, b.val.y, sizeof(int) * 50);
  assert_memory_equal(a.train.x, b.train.x, sizeof(float) * 450 * 4);
  int va[50], vc[50], seen[500] = {0};
  ids_of(&a, &a.val, va);
  ids_of(&c, &c.val, vc);
  assert_memory_not_equal(va, vc, sizeof va);
  /* train and val partition the training files */
  for (int i = 0; i < a.train.n; i++) seen[id_of(&a, &a.train, i)]++;
  for (int i = 0; i < a.val.n; i++) seen[id_of(&a, &a.val, i)]++;
  for (int i = 0; i < 500; i++) assert_int_equal(seen[i], 1);
  nas_data_free(&a);
  nas_data_free(&b);
  nas_data_free(&c);
}

static void test_train_limit(void **state) {
  (void)state;
  char dir[512];
  make_dir("limit", dir, sizeof dir);
  write_set(dir, 200, 10, 3, 3, 4);
  nas_data full, lim;
  nas_err e = {0};
  assert_int_equal(load_dir("idx", dir, 0.25, 0, 3, &full, &e), NAS_OK);
  assert_int_equal(load_dir("idx", dir, 0.25, 17, 3, &lim, &e), NAS_OK);
  assert_int_equal(full.train.n, 150);
  assert_int_equal(lim.train.n, 17);
  assert_int_equal(lim.val.n, 50); /* the limit applies after the split */
  int vf[50], vl[50];
  ids_of(&full, &full.val, vf);
  ids_of(&lim, &lim.val, vl);
  assert_memory_equal(vf, vl, sizeof vf);
  for (int i = 0; i < 17; i++) /* the first 17 of the same shuffled train part */
    assert_int_equal(id_of(&lim, &lim.train, i), id_of(&full, &full.train, i));
  double m, s;
  stats_of(&lim.train, &m, &s); /* normalised over the limited set */
  assert_true(fabs(m) < 1e-4 && fabs(s - 1.0) < 1e-4);
  nas_data_free(&full);
  nas_data_free(&lim);
  assert_int_equal(load_dir("idx", dir, 0.25, 1000, 3, &lim, &e), NAS_OK);
  assert_int_equal(lim.train.n, 150);
  nas_data_free(&lim);
}

static void test_val_frac_zero(void **state) {
  (void)state;
  char dir[512];
  make_dir("noval", dir, sizeof dir);
  write_set(dir, 30, 5, 2, 3, 3);
  nas_data d;
  nas_err e = {0};
  assert_int_equal(load_dir("idx", dir, 0.0, 0, 0, &d, &e), NAS_OK);
  assert_int_equal(d.train.n, 30);
  assert_int_equal(d.val.n, 0);
  assert_null(d.val.x);
  nas_data_free(&d);
}

/* Expects loading spec to fail with code and a message containing what. */
static void expect_load_error(const char *spec, double val_frac, int limit, int code,
                              const char *what) {
  nas_data_opts o;
  nas_data_opts_default(&o, spec);
  o.val_frac = val_frac;
  o.train_limit = limit;
  nas_data d;
  nas_err e = {0};
  assert_int_equal(nas_data_load(&o, &d, &e), code);
  assert_int_equal(e.code, code);
  assert_null(d.train.x);
  assert_null(d.test.x);
  if (what) assert_msg_has(e, what);
  assert_null(strchr(e.msg, '\n'));
}

static void test_count_mismatch(void **state) {
  (void)state;
  char dir[512], spec[1024];
  make_dir("mismatch", dir, sizeof dir);
  write_set(dir, 50, 10, 2, 2, 2);
  write_labels(dir, "t10k-labels-idx1-ubyte", 1, 9, 2);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.1, 0, NAS_EFORMAT, "t10k-images-idx3-ubyte");
  expect_load_error(spec, 0.1, 0, NAS_EFORMAT, "t10k-labels-idx1-ubyte.gz has 9 labels");
}

static void test_missing_file(void **state) {
  (void)state;
  char dir[512], spec[1024], path[1024];
  make_dir("missing", dir, sizeof dir);
  write_set(dir, 20, 10, 2, 2, 2);
  join(path, sizeof path, dir, "t10k-labels-idx1-ubyte.gz");
  assert_int_equal(unlink(path), 0);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.1, 0, NAS_EIO, "t10k-labels-idx1-ubyte");
}

static void test_empty_and_missing_dir(void **state) {
  (void)state;
  char dir[512], spec[1024];
  make_dir("empty", dir, sizeof dir);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.1, 0, NAS_EIO, "train-images-idx3-ubyte");
  spec_of(spec, sizeof spec, "fashion-mnist", "/nonexistent/nas-test-dir");
  expect_load_error(spec, 0.1, 0, NAS_EIO, "/nonexistent/nas-test-dir");
}

static void test_bad_spec_and_opts(void **state) {
  (void)state;
  expect_load_error("cifar10:/tmp", 0.1, 0, NAS_EINVAL,
                    "dataset 'cifar10:/tmp': unknown kind 'cifar10' (expected "
                    "fashion-mnist[:DIR], idx:DIR or speech-commands:DIR)");
  expect_load_error("mnist", 0.1, 0, NAS_EINVAL, "unknown kind 'mnist'");
  expect_load_error("", 0.1, 0, NAS_EINVAL, "unknown kind ''");
  expect_load_error("idx", 0.1, 0, NAS_EINVAL, "idx:DIR");
  expect_load_error("idx:", 0.1, 0, NAS_EINVAL, "empty directory");
  expect_load_error("fashion-mnist", 1.0, 0, NAS_EINVAL, "val_frac");
  expect_load_error("fashion-mnist", -0.1, 0, NAS_EINVAL, "val_frac");
  expect_load_error("fashion-mnist", NAN, 0, NAS_EINVAL, "val_frac");
  expect_load_error("fashion-mnist", 0.1, -1, NAS_EINVAL, "train_limit");
  nas_data d;
  nas_err e = {0};
  assert_int_equal(nas_data_load(NULL, &d, &e), NAS_EINVAL);
}

static void test_val_frac_leaves_nothing(void **state) {
  (void)state;
  char dir[512], spec[1024];
  make_dir("tiny", dir, sizeof dir);
  write_set(dir, 1, 1, 2, 2, 1);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.9999999999, 0, NAS_EINVAL, "no training samples");
}

static void test_labels_and_classes(void **state) {
  (void)state;
  char dir[512], spec[1024];
  make_dir("labels", dir, sizeof dir);
  write_set(dir, 30, 12, 2, 2, 10);
  write_labels(dir, "t10k-labels-idx1-ubyte", 1, 12, 11); /* label 10 at index 10 */
  spec_of(spec, sizeof spec, "fashion-mnist", dir);
  expect_load_error(spec, 0.1, 0, NAS_EINVAL, "t10k-labels-idx1-ubyte.gz: label 10 of sample 10");
  nas_data d;
  nas_err e = {0};
  assert_int_equal(load_dir("idx", dir, 0.1, 0, 0, &d, &e), NAS_OK);
  assert_int_equal(d.train.classes, 11); /* max label + 1 over train and test */
  nas_data_free(&d);
  write_labels(dir, "train-labels-idx1-ubyte", 0, 30, 256); /* labels 0..29 */
  assert_int_equal(load_dir("idx", dir, 0.1, 0, 0, &d, &e), NAS_OK);
  assert_int_equal(d.test.classes, 30);
  nas_data_free(&d);
}

static void test_shape_mismatch(void **state) {
  (void)state;
  char dir[512], spec[1024];
  make_dir("shape", dir, sizeof dir);
  write_set(dir, 20, 10, 4, 5, 2);
  write_images(dir, "t10k-images-idx3-ubyte", 0, 10, 5, 4);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.1, 0, NAS_EFORMAT, "has 4x5 images but");
  expect_load_error(spec, 0.1, 0, NAS_EFORMAT, "t10k-images-idx3-ubyte has 5x4");
}

static void test_wrong_file_kind(void **state) {
  (void)state;
  char dir[512], spec[1024];
  make_dir("kind", dir, sizeof dir);
  write_set(dir, 20, 10, 2, 2, 2);
  write_labels(dir, "train-images-idx3-ubyte", 1, 20, 2);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.1, 0, NAS_EFORMAT, "train-images-idx3-ubyte.gz: expected images");
}

static void test_load_truncated(void **state) {
  (void)state;
  char dir[512], spec[1024], path[1024];
  make_dir("load_trunc", dir, sizeof dir);
  write_set(dir, 20, 10, 8, 8, 2);
  join(path, sizeof path, dir, "t10k-images-idx3-ubyte");
  size_t n;
  unsigned char *b = slurp(path, &n);
  write_raw(path, b, n - 1);
  free(b);
  spec_of(spec, sizeof spec, "idx", dir);
  expect_load_error(spec, 0.1, 0, NAS_EFORMAT, "t10k-images-idx3-ubyte: truncated: expected 640 "
                                               "bytes of data, got 639");
}

/* ---- shuffle and batch ---- */

/* A small in-memory dataset: n samples of [h,w,c], value of sample i at k = i * 100 + k. */
static nas_dataset small_set(int n, int h, int w, int c) {
  nas_dataset ds = {n, h, w, c, 5, NULL, NULL};
  size_t sz = (size_t)h * w * c;
  ds.x = malloc((size_t)n * sz * sizeof(float));
  ds.y = malloc((size_t)n * sizeof(int));
  assert_non_null(ds.x);
  assert_non_null(ds.y);
  for (int i = 0; i < n; i++) {
    for (size_t k = 0; k < sz; k++) ds.x[i * sz + k] = (float)(i * 100 + (int)k);
    ds.y[i] = i % 5;
  }
  return ds;
}

static void free_set(nas_dataset *ds) {
  free(ds->x);
  free(ds->y);
}

static void test_shuffle(void **state) {
  (void)state;
  nas_dataset ds = {100, 1, 1, 1, 2, NULL, NULL};
  int p1[100], p2[100], p3[100], seen[100] = {0};
  nas_rng r, r2;
  nas_rng_seed(&r, 42);
  nas_rng_seed(&r2, 42);
  nas_data_shuffle(&ds, p1, &r);
  nas_data_shuffle(&ds, p2, &r);
  nas_data_shuffle(&ds, p3, &r2);
  for (int i = 0; i < 100; i++) {
    assert_in_range(p1[i], 0, 99);
    seen[p1[i]]++;
  }
  for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
  assert_memory_not_equal(p1, p2, sizeof p1); /* a new order each epoch */
  assert_memory_equal(p1, p3, sizeof p1);     /* same seed, same order */
}

static void test_batch_copy(void **state) {
  (void)state;
  nas_dataset ds = small_set(8, 2, 3, 2);
  int idx[3] = {5, 0, 7};
  float x[3 * 12], y[3];
  nas_data_batch(&ds, idx, 3, x, y, NULL, NULL);
  for (int i = 0; i < 3; i++) {
    assert_memory_equal(x + i * 12, ds.x + idx[i] * 12, 12 * sizeof(float));
    assert_true(y[i] == (float)(idx[i] % 5));
  }
  nas_augment off = {0, 0};
  nas_rng r;
  nas_rng_seed(&r, 1);
  float x2[3 * 12], y2[3];
  nas_data_batch(&ds, idx, 3, x2, y2, &off, &r); /* shift 0, no flip: identity */
  assert_memory_equal(x, x2, sizeof x);
  assert_memory_equal(y, y2, sizeof y);
  free_set(&ds);
}

/* 1 when out is src ([h,w,c]) mirrored along W. */
static int is_mirror(const float *src, const float *out, int h, int w, int c) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++)
        if (out[(y * w + x) * c + k] != src[(y * w + (w - 1 - x)) * c + k]) return 0;
  return 1;
}

static void test_batch_flip(void **state) {
  (void)state;
  nas_dataset ds = small_set(4, 3, 4, 2);
  enum { N = 64, SZ = 24 };
  int idx[N];
  for (int i = 0; i < N; i++) idx[i] = i % 4;
  float *x = malloc(N * SZ * sizeof(float)), y[N];
  nas_augment aug = {0, 1};
  nas_rng r;
  nas_rng_seed(&r, 9);
  nas_data_batch(&ds, idx, N, x, y, &aug, &r);
  int flipped = 0, same = 0;
  for (int i = 0; i < N; i++) {
    const float *src = ds.x + idx[i] * SZ, *out = x + i * SZ;
    if (memcmp(src, out, SZ * sizeof(float)) == 0)
      same++;
    else if (is_mirror(src, out, 3, 4, 2))
      flipped++;
    else
      fail_msg("sample %d is neither the source nor its mirror", i);
    assert_true(y[i] == (float)(idx[i] % 5));
  }
  assert_true(flipped > 10 && same > 10);
  free(x);
  free_set(&ds);
}

/* Which shift (dy, dx) in [-s, s]^2 turns src ([h,w,1]) into out, fill = min of src;
 * returns (dy + s) * (2s + 1) + (dx + s), or -1 when none does. */
static int which_shift(const float *src, const float *out, int h, int w, int s) {
  float fill = src[0];
  for (int k = 1; k < h * w; k++) fill = src[k] < fill ? src[k] : fill;
  for (int dy = -s; dy <= s; dy++) {
    for (int dx = -s; dx <= s; dx++) {
      int ok = 1;
      for (int y = 0; y < h && ok; y++) {
        for (int x = 0; x < w && ok; x++) {
          int sy = y - dy, sx = x - dx;
          float want = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[sy * w + sx] : fill;
          ok = out[y * w + x] == want;
        }
      }
      if (ok) return (dy + s) * (2 * s + 1) + (dx + s);
    }
  }
  return -1;
}

static void test_batch_shift(void **state) {
  (void)state;
  nas_dataset ds = small_set(3, 5, 6, 1);
  enum { N = 300, SZ = 30 };
  int idx[N], hits[25] = {0};
  for (int i = 0; i < N; i++) idx[i] = i % 3;
  float *x = malloc(N * SZ * sizeof(float)), y[N];
  nas_augment aug = {2, 0};
  nas_rng r;
  nas_rng_seed(&r, 5);
  nas_data_batch(&ds, idx, N, x, y, &aug, &r);
  for (int i = 0; i < N; i++) {
    int s = which_shift(ds.x + idx[i] * SZ, x + i * SZ, 5, 6, 2);
    if (s < 0) fail_msg("sample %d is no shift of its source", i);
    hits[s]++;
  }
  for (int s = 0; s < 25; s++) assert_true(hits[s] > 0); /* every shift in [-2,2]^2 occurs */
  float *x2 = malloc(N * SZ * sizeof(float));
  nas_rng_seed(&r, 5);
  nas_data_batch(&ds, idx, N, x2, y, &aug, &r); /* same seed, same batch */
  assert_memory_equal(x, x2, N * SZ * sizeof(float));
  free(x2);
  free(x);
  free_set(&ds);
}

/* ---- the real Fashion-MNIST ---- */

static void test_fashion_mnist_real(void **state) {
  (void)state;
  struct stat st;
  if (stat(FMNIST_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) skip();
  nas_data_opts o;
  nas_data_opts_default(&o, "fashion-mnist");
  nas_data d;
  nas_err e = {0};
  int rc = nas_data_load(&o, &d, &e);
  if (rc) fail_msg("%s", e.msg);
  assert_string_equal(d.name, "fashion-mnist");
  assert_int_equal(d.train.n, 54000);
  assert_int_equal(d.val.n, 6000);
  assert_int_equal(d.test.n, 10000);
  assert_int_equal(d.train.h, 28);
  assert_int_equal(d.train.w, 28);
  assert_int_equal(d.train.c, 1);
  assert_int_equal(d.test.classes, 10);
  assert_true(fabs(d.mean - 0.2860) < 0.005); /* the published mean and std of the set */
  assert_true(fabs(d.std - 0.3530) < 0.005);
  double m, s;
  stats_of(&d.train, &m, &s);
  assert_true(fabs(m) < 1e-3 && fabs(s - 1.0) < 1e-3);
  int count[10] = {0};
  for (int i = 0; i < d.test.n; i++) count[d.test.y[i]]++;
  for (int k = 0; k < 10; k++) assert_int_equal(count[k], 1000);
  nas_data_free(&d);
}

static int setup(void **state) {
  (void)state;
  strcpy(g_root, "/tmp/nas_test_datasets_XXXXXX");
  return mkdtemp(g_root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rm_tree(g_root);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idx_raw_images),
      cmocka_unit_test(test_idx_gzip_labels),
      cmocka_unit_test(test_idx_truncated_raw),
      cmocka_unit_test(test_idx_truncated_gzip),
      cmocka_unit_test(test_idx_corrupt_gzip),
      cmocka_unit_test(test_idx_bad_magic),
      cmocka_unit_test(test_idx_bad_dims),
      cmocka_unit_test(test_idx_trailing_data),
      cmocka_unit_test(test_idx_cannot_open),
      cmocka_unit_test(test_opts_default),
      cmocka_unit_test(test_load_values),
      cmocka_unit_test(test_load_prefers_gz),
      cmocka_unit_test(test_split_deterministic),
      cmocka_unit_test(test_train_limit),
      cmocka_unit_test(test_val_frac_zero),
      cmocka_unit_test(test_count_mismatch),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_empty_and_missing_dir),
      cmocka_unit_test(test_bad_spec_and_opts),
      cmocka_unit_test(test_val_frac_leaves_nothing),
      cmocka_unit_test(test_labels_and_classes),
      cmocka_unit_test(test_shape_mismatch),
      cmocka_unit_test(test_wrong_file_kind),
      cmocka_unit_test(test_load_truncated),
      cmocka_unit_test(test_shuffle),
      cmocka_unit_test(test_batch_copy),
      cmocka_unit_test(test_batch_flip),
      cmocka_unit_test(test_batch_shift),
      cmocka_unit_test(test_fashion_mnist_real),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
