/* tests/test_datasets.c: the dataset loader (specs, files, the deterministic split,
 * train_limit, normalisation, error messages) on IDX sets the tests write under a fresh
 * mkdtemp directory, removed at the end; the Fashion-MNIST test uses the real files when
 * /usr/share/datasets/fashion-mnist exists and is skipped otherwise. The IDX reader is
 * tested in test_datasets_idx.c, shuffling and batching in test_datasets_batch.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/dataset.h"
#include "tests/test_datasets_util.h"
#include "tests/test_util.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

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
  expect_load_error("cifar100:/tmp", 0.1, 0, NAS_EINVAL,
                    "dataset 'cifar100:/tmp': unknown kind 'cifar100' (expected "
                    "fashion-mnist[:DIR], idx:DIR, cifar10:DIR or speech-commands:DIR)");
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
/* ---- the real Fashion-MNIST ---- */

static void test_fashion_mnist_real(void **state) {
  (void)state;
  struct stat st;
  if (stat(FMNIST_DIR, &st) != 0 || !S_ISDIR(st.st_mode))
    test_skip("Fashion-MNIST not installed in %s (scripts/setup.sh)", FMNIST_DIR);
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

int main(void) {
  const struct CMUnitTest tests[] = {
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
      cmocka_unit_test(test_fashion_mnist_real),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
