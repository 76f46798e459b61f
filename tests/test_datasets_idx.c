/* tests/test_datasets_idx.c: the IDX reader (raw and gzip files, truncation, corruption,
 * bad magic or dims, trailing data, unreadable paths). Every test writes its own files
 * under a fresh mkdtemp directory, removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "tests/test_datasets_util.h"
#include "tests/test_util.h"

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
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
