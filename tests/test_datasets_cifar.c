/* tests/test_datasets_cifar.c: the CIFAR-10 binary reader (datasets/cifar.h) on files the test
 * writes: values and NHWC layout, labels, the split and train_limit, normalisation, and the
 * one-line errors for a missing file, a truncated file, an empty file and a bad label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/cifar.h"
#include "datasets/dataset.h"
#include "tests/test_datasets_util.h"
#include "tests/test_util.h"

/* Byte of record i (global index), colour plane c, pixel p: bytes 0/1 of plane 0 carry i. */
static unsigned char cifar_byte(int i, int c, int p) {
  if (c == 0 && p == 0) return (unsigned char)(i & 255);
  if (c == 0 && p == 1) return (unsigned char)(i >> 8);
  return (unsigned char)((i * 5 + c * 71 + p * 3) % 256);
}

/* Writes dir/name with records first..first+n-1 (labels i % 10, or bad_label at bad_at). */
static void write_cifar(const char *dir, const char *name, int first, int n, int bad_at,
                        int bad_label, long cut) {
  size_t len = (size_t)n * NAS_CIFAR_RECORD;
  unsigned char *b = malloc(len ? len : 1);
  assert_non_null(b);
  for (int r = 0; r < n; r++) {
    unsigned char *q = b + (size_t)r * NAS_CIFAR_RECORD;
    int i = first + r;
    q[0] = (unsigned char)(r == bad_at ? bad_label : i % 10);
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < 1024; p++) q[1 + c * 1024 + p] = cifar_byte(i, c, p);
  }
  char path[1024];
  join(path, sizeof path, dir, name);
  write_raw(path, b, cut >= 0 ? (size_t)cut : len);
  free(b);
}

/* A complete set: 5 training files of per_file records, a test file of n_test. */
static void write_cifar_set(const char *dir, int per_file, int n_test) {
  for (int k = 0; k < 5; k++) {
    char name[32];
    snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
    write_cifar(dir, name, k * per_file, per_file, -1, 0, -1);
  }
  write_cifar(dir, "test_batch.bin", 10000, n_test, -1, 0, -1);
}

static int load(const char *dir, double val_frac, int limit, nas_data *d, nas_err *e) {
  char spec[1024];
  snprintf(spec, sizeof spec, "cifar10:%s", dir);
  nas_data_opts o;
  nas_data_opts_default(&o, spec);
  o.val_frac = val_frac, o.train_limit = limit;
  return nas_data_load(&o, d, e);
}

static int byte_back(const nas_data *d, float v) {
  return (int)lround(((double)v * d->std + d->mean) * 255.0);
}

/* Every value of every sample of ds equals its record's byte, laid out NHWC. */
static void check_split(const nas_data *d, const nas_dataset *ds, int lo, int hi) {
  assert_int_equal(ds->h, 32), assert_int_equal(ds->w, 32), assert_int_equal(ds->c, 3);
  assert_int_equal(ds->classes, 10);
  for (int s = 0; s < ds->n; s++) {
    const float *x = ds->x + (size_t)s * 3072;
    int id = byte_back(d, x[0]) | byte_back(d, x[3]) << 8; /* plane 0, pixels 0 and 1 */
    assert_in_range(id, lo, hi);
    assert_int_equal(ds->y[s], id % 10);
    for (int p = 0; p < 1024; p += 37)
      for (int c = 0; c < 3; c++)
        assert_float_equal(x[p * 3 + c], (cifar_byte(id, c, p) / 255.0 - d->mean) / d->std, 1e-5);
  }
}

static void test_load_values_and_split(void **state) {
  (void)state;
  char dir[512];
  make_dir("ok", dir, sizeof dir);
  write_cifar_set(dir, 8, 6);
  nas_data d;
  nas_err e = {0};
  assert_int_equal(load(dir, 0.25, 0, &d, &e), NAS_OK);
  assert_string_equal(d.name, "cifar10");
  assert_int_equal(d.train.n, 30);
  assert_int_equal(d.val.n, 10);
  assert_int_equal(d.test.n, 6);
  check_split(&d, &d.train, 0, 39);
  check_split(&d, &d.val, 0, 39);
  check_split(&d, &d.test, 10000, 10005);
  /* train and val are disjoint and cover the 40 training records */
  int seen[40] = {0};
  for (int s = 0; s < d.train.n; s++) seen[byte_back(&d, d.train.x[(size_t)s * 3072])]++;
  for (int s = 0; s < d.val.n; s++) seen[byte_back(&d, d.val.x[(size_t)s * 3072])]++;
  for (int i = 0; i < 40; i++) assert_int_equal(seen[i], 1);
  /* normalisation: the training split has mean 0 and std 1 over all channels */
  double m = 0, v = 0;
  size_t n = (size_t)d.train.n * 3072;
  for (size_t i = 0; i < n; i++) m += d.train.x[i];
  m /= (double)n;
  for (size_t i = 0; i < n; i++) v += (d.train.x[i] - m) * (d.train.x[i] - m);
  assert_true(fabs(m) < 1e-4 && fabs(sqrt(v / (double)n) - 1.0) < 1e-4);
  nas_data_free(&d);
  /* the same split twice; train_limit keeps a prefix of it */
  nas_data d2;
  assert_int_equal(load(dir, 0.25, 7, &d2, &e), NAS_OK);
  assert_int_equal(d2.train.n, 7);
  assert_int_equal(d2.val.n, 10);
  nas_data d3;
  assert_int_equal(load(dir, 0.25, 0, &d3, &e), NAS_OK);
  for (int s = 0; s < 7; s++)
    assert_int_equal(byte_back(&d2, d2.train.x[(size_t)s * 3072]),
                     byte_back(&d3, d3.train.x[(size_t)s * 3072]));
  nas_data_free(&d2);
  nas_data_free(&d3);
}

static void expect_error(const char *dir, int code, const char *part1, const char *part2) {
  nas_data d;
  nas_err e = {0};
  assert_int_equal(load(dir, 0.1, 0, &d, &e), code);
  if (!strstr(e.msg, part1) || (part2 && !strstr(e.msg, part2)))
    fail_msg("message '%s' lacks '%s' / '%s'", e.msg, part1, part2 ? part2 : "");
  assert_null(strchr(e.msg, '\n'));
  assert_null(d.train.x);
}

static void test_errors(void **state) {
  (void)state;
  char dir[512];
  make_dir("missing", dir, sizeof dir);
  write_cifar_set(dir, 2, 2);
  char path[1024];
  join(path, sizeof path, dir, "data_batch_4.bin");
  remove(path);
  expect_error(dir, NAS_EIO, "data_batch_4.bin", "missing");

  make_dir("truncated", dir, sizeof dir);
  write_cifar_set(dir, 2, 2);
  write_cifar(dir, "data_batch_2.bin", 2, 3, -1, 0, 2 * NAS_CIFAR_RECORD + 100);
  expect_error(dir, NAS_EFORMAT, "data_batch_2.bin", "truncated after record 2");

  make_dir("empty", dir, sizeof dir);
  write_cifar_set(dir, 2, 2);
  write_cifar(dir, "test_batch.bin", 0, 0, -1, 0, -1);
  expect_error(dir, NAS_EFORMAT, "test_batch.bin", "empty");

  make_dir("label", dir, sizeof dir);
  write_cifar_set(dir, 2, 2);
  write_cifar(dir, "data_batch_5.bin", 8, 3, 1, 10, -1);
  expect_error(dir, NAS_EFORMAT, "data_batch_5.bin", "record 1: label 10");

  nas_data d;
  nas_err e = {0};
  nas_data_opts o;
  nas_data_opts_default(&o, "cifar10:");
  assert_int_equal(nas_data_load(&o, &d, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "cifar10:DIR"));
  make_dir("nodir_parent", dir, sizeof dir);
  strcat(dir, "/absent");
  expect_error(dir, NAS_EIO, "data_batch_1.bin", "missing");
}

/* The built-in 3-channel space is searchable on a cifar10 set: one candidate is trained,
 * quantised and scored as int8 (the CLI end to end). */
static void test_search_vision_mbnet_32(void **state) {
  (void)state;
  char dir[512], args[2048], out[600], err[600];
  make_dir("search", dir, sizeof dir);
  write_cifar_set(dir, 12, 20);
  snprintf(args, sizeof args,
           "search --space vision-mbnet-32 --strategy random --dataset cifar10:%s --target "
           "stm32f446re --budget 1 --epochs 1 --batch 16 --calib-samples 16 --db %s/s.db",
           dir, dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  snprintf(err, sizeof err, "%s/err.txt", dir);
  int rc = test_run_nas(dir, args, out, err);
  if (rc != 0) fail_msg("nas search exited %d: %s", rc, test_slurp(err));
  assert_non_null(strstr(test_slurp(out), "1 done"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_values_and_split),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_search_vision_mbnet_32),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
