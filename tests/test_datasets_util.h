/* tests/test_datasets_util.h: the temporary directory and the IDX file writers shared by
 * the dataset tests (test_datasets.c, test_datasets_idx.c). Header-only: each test is one
 * executable; include after <cmocka.h>. */
#ifndef NAS_TESTS_TEST_DATASETS_UTIL_H
#define NAS_TESTS_TEST_DATASETS_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/test_util.h"
#include "datasets/dataset.h"

static char g_root[64]; /* the temporary directory of this run */

/* ---- file helpers ---- */

/* Makes g_root/name and returns its path in out. */
static inline void make_dir(const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", g_root, name);
  assert_int_equal(mkdir(out, 0700), 0);
}

static inline void join(char *out, size_t cap, const char *dir, const char *file) {
  snprintf(out, cap, "%s/%s", dir, file);
}

static inline void write_raw(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static inline void write_gz(const char *path, const unsigned char *b, size_t n) {
  gzFile f = gzopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
  assert_int_equal(gzclose(f), Z_OK);
}

/* Reads a whole file into a new buffer; *n = its size. */
static inline unsigned char *slurp(const char *path, size_t *n) {
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

static inline void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* An IDX byte image: magic 0x0000080<ndim>, the dims, then data; *len = its size. */
static inline unsigned char *idx_bytes(int ndim, const uint32_t *dims, const unsigned char *data,
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
static inline void write_idx(const char *path, int gz, int ndim, const uint32_t *dims,
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
static inline unsigned char pixel_of(int i, int k) {
  if (k == 0) return (unsigned char)(i & 255);
  if (k == 1) return (unsigned char)(i >> 8);
  return (unsigned char)((i * 7 + k * 13) % 256);
}

static inline unsigned char label_of(int i, int classes) { return (unsigned char)(i % classes); }

/* Writes the images or labels file `base` (under dir, + ".gz" when gz) with n samples. */
static inline void write_images(const char *dir, const char *base, int gz, int n, int rows, int cols) {
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

static inline void write_labels(const char *dir, const char *base, int gz, int n, int classes) {
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
static inline void write_set(const char *dir, int n_train, int n_test, int rows, int cols,
                      int classes) {
  write_images(dir, "train-images-idx3-ubyte", 1, n_train, rows, cols);
  write_labels(dir, "train-labels-idx1-ubyte", 0, n_train, classes);
  write_images(dir, "t10k-images-idx3-ubyte", 0, n_test, rows, cols);
  write_labels(dir, "t10k-labels-idx1-ubyte", 1, n_test, classes);
}

/* Builds the spec "kind:dir" into out. */
static inline const char *spec_of(char *out, size_t cap, const char *kind, const char *dir) {
  snprintf(out, cap, "%s:%s", kind, dir);
  return out;
}

#define assert_msg_has(e, s)                                                   \
  do {                                                                         \
    if (!strstr((e).msg, (s))) fail_msg("message '%s' lacks '%s'", (e).msg, (s)); \
  } while (0)

/* cmocka group setup/teardown: a fresh g_root, removed at the end. */
static inline int setup(void **state) {
  (void)state;
  strcpy(g_root, "/tmp/nas_test_datasets_XXXXXX");
  return mkdtemp(g_root) ? 0 : -1;
}

static inline int teardown(void **state) {
  (void)state;
  test_rm_rf(g_root);
  return 0;
}

#endif
