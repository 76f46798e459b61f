/* tests/test_datasets_batch.c: epoch shuffling and batching of in-memory datasets: plain
 * copies, random flips and shifts (image augmentation), and the draw among a sample's
 * augmented variants (nas_dataset.x_aug). No files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "tests/test_util.h"

/* ---- shuffle and batch ---- */

/* A small in-memory dataset: n samples of [h,w,c], value of sample i at k = i * 100 + k. */
static nas_dataset small_set(int n, int h, int w, int c) {
  nas_dataset ds = {.n = n, .h = h, .w = w, .c = c, .classes = 5};
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
  free(ds->x_aug);
}

static void test_shuffle(void **state) {
  (void)state;
  nas_dataset ds = {.n = 100, .h = 1, .w = 1, .c = 1, .classes = 2};
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

/* Variants (speech-commands aug=N): training batches draw one of the n_aug + 1 versions of
 * each sample, uniformly, reproducibly for a seed; without an rng (evaluation) the clean
 * sample is used. Variant v of sample i holds -(i * 100 + v + 1) everywhere. */
static void test_batch_variants(void **state) {
  (void)state;
  enum { N = 4, NV = 3, SZ = 6 };
  nas_dataset ds = small_set(N, 1, 3, 2);
  ds.n_aug = NV;
  ds.x_aug = malloc(sizeof(float) * N * NV * SZ);
  assert_non_null(ds.x_aug);
  for (int i = 0; i < N; i++)
    for (int v = 0; v < NV; v++)
      for (int k = 0; k < SZ; k++) ds.x_aug[(i * NV + v) * SZ + k] = -(float)(i * 100 + v + 1);
  int idx[N] = {2, 0, 3, 1};
  float x[N * SZ], y[N];
  nas_data_batch(&ds, idx, N, x, y, NULL, NULL); /* evaluation: clean */
  for (int i = 0; i < N; i++) assert_memory_equal(x + i * SZ, ds.x + idx[i] * SZ, SZ * sizeof(float));
  int hist[NV + 1] = {0};
  nas_rng r1, r2;
  nas_rng_seed(&r1, 5);
  nas_rng_seed(&r2, 5);
  for (int rep = 0; rep < 400; rep++) {
    float x2[N * SZ], y2[N];
    nas_data_batch(&ds, idx, N, x, y, NULL, &r1);
    nas_data_batch(&ds, idx, N, x2, y2, NULL, &r2);
    assert_memory_equal(x, x2, sizeof x); /* same seed, same draws */
    for (int i = 0; i < N; i++) {
      assert_true(y[i] == (float)(idx[i] % 5)); /* labels never change */
      float v0 = x[i * SZ];
      int ver;
      if (v0 >= 0) { /* clean: the whole sample */
        assert_memory_equal(x + i * SZ, ds.x + idx[i] * SZ, SZ * sizeof(float));
        ver = 0;
      } else {
        ver = (int)(-v0) - idx[i] * 100; /* 1..NV */
        assert_in_range(ver, 1, NV);
        for (int k = 0; k < SZ; k++) assert_true(x[i * SZ + k] == v0);
      }
      hist[ver]++;
    }
  }
  /* 1600 draws over 4 versions: each about 400 (binomial sd 17) */
  for (int v = 0; v <= NV; v++) assert_in_range(hist[v], 300, 500);
  /* with image augmentation too: one version per sample, then shifted (fill = its min) */
  nas_augment sh = {1, 0};
  for (int rep = 0; rep < 50; rep++) {
    nas_data_batch(&ds, idx, N, x, y, &sh, &r1);
    for (int i = 0; i < N; i++) {
      float v0 = x[i * SZ];
      for (int k = 0; k < SZ; k++) {
        float v = x[i * SZ + k];
        if (v0 < 0) assert_true(v == v0); /* a constant variant stays constant */
        else assert_true(v >= idx[i] * 100 && v < idx[i] * 100 + SZ); /* clean values only */
      }
      if (v0 < 0) assert_in_range((int)(-v0) - idx[i] * 100, 1, NV);
    }
  }
  free_set(&ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shuffle),
      cmocka_unit_test(test_batch_copy),
      cmocka_unit_test(test_batch_flip),
      cmocka_unit_test(test_batch_shift),
      cmocka_unit_test(test_batch_variants),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
