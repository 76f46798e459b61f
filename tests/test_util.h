/* tests/test_util.h: helpers shared by test programs (header-only; each test is one
 * executable). */
#ifndef NAS_TESTS_TEST_UTIL_H
#define NAS_TESTS_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fileio.h" /* nas_read_file */
#include "core/rng.h"
#include "datasets/dataset.h"

/* ---- skips ------------------------------------------------------------------------------
 * A check that cannot run because a reference is missing (a third-party runtime or program, a
 * reference model, a corpus, a build option) is reported as a skip, never as a pass:
 *   test_skip(fmt, ...)       prints "SKIP: <message>", counts it and ends the current cmocka
 *                             test (cmocka's skip());
 *   test_skip_part(fmt, ...)  prints and counts it; the test goes on with its other checks.
 * The message names what is missing and where it was looked for. Every test program's main
 * returns test_exit(cmocka_run_group_tests(...)): 1 when a test failed, else 77 when any
 * check was skipped (CMake sets SKIP_RETURN_CODE 77 on every test, so ctest reports
 * "Skipped"), else 0. With CI=true (set by CI) or NAS_REQUIRE_ALL=1, a skip is a failure
 * instead: "required check not run: <message>". scripts/check_skips.sh (ctest check_skips)
 * fails on a test program that calls cmocka's skip() or returns 77 itself. */

/* 1 when every check must run (CI=true, or NAS_REQUIRE_ALL set and not "0"). */
static inline int test_require_all(void) {
  const char *ci = getenv("CI"), *all = getenv("NAS_REQUIRE_ALL");
  return (ci && !strcmp(ci, "true")) || (all && *all && strcmp(all, "0") != 0);
}

static inline int *test_skip_counter(void) {
  static int n;
  return &n;
}

__attribute__((format(printf, 1, 2))) static inline void test_skip_part(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (test_require_all())
    fail_msg("required check not run (CI=true or NAS_REQUIRE_ALL=1): %s", msg);
  ++*test_skip_counter();
  printf("SKIP: %s\n", msg);
  fflush(stdout);
}

#define test_skip(...)                                                                           \
  do {                                                                                           \
    test_skip_part(__VA_ARGS__);                                                                 \
    skip();                                                                                      \
  } while (0)

/* The exit code of a test program from the number of failed tests (see above). */
static inline int test_exit(int failed) {
  if (failed) return 1;
  if (*test_skip_counter()) {
    printf("%d check(s) skipped (SKIP lines above): exit 77, ctest reports Skipped\n",
           *test_skip_counter());
    return 77;
  }
  return 0;
}

/* NAS_TEST_FILTER=PATTERN runs only the cmocka tests whose names match (cmocka's wildcards *
 * and ?), e.g. NAS_TEST_FILTER=test_kill_and_resume_binary ./test_search. */
__attribute__((constructor)) static void test_filter_from_env(void) {
  const char *f = getenv("NAS_TEST_FILTER");
  if (f && *f) cmocka_set_test_filter(f);
}

/* The directory of the reference models (docs/testing.md "Test references"): $NAS_MODELS_DIR
 * (CMake's NAS_MODELS_DIR, default SOURCE/../shared/models, is passed to every test), else
 * $NAS_SOURCE_DIR/../shared/models. A static buffer. */
static inline const char *test_models_dir(void) {
  static char buf[1024];
  const char *env = getenv("NAS_MODELS_DIR"), *src = getenv("NAS_SOURCE_DIR");
  if (env && *env) snprintf(buf, sizeof buf, "%s", env);
  else snprintf(buf, sizeof buf, "%s/../shared/models", src ? src : NAS_SOURCE_DIR);
  return buf;
}

/* The shared TFLM + CMSIS-NN corpus (docs/testing.md): $NAS_TFLM_CORPUS, else
 * $NAS_SOURCE_DIR/../shared/data/tflm-cmsisnn, into dir; 1 when its models.csv can be read
 * (dir still holds the path otherwise, for the skip message). */
static inline int test_find_corpus(char *dir, size_t cap) {
  const char *env = getenv("NAS_TFLM_CORPUS"), *src = getenv("NAS_SOURCE_DIR");
  if (env && *env) snprintf(dir, cap, "%s", env);
  else snprintf(dir, cap, "%s/../shared/data/tflm-cmsisnn", src ? src : NAS_SOURCE_DIR);
  char probe[1200];
  snprintf(probe, sizeof probe, "%s/models.csv", dir);
  FILE *f = fopen(probe, "r");
  if (!f) return 0;
  fclose(f);
  return 1;
}

/* The path of reference model file in test_models_dir() into buf; 1 when it can be opened,
 * else 0 (buf still holds the path, for the skip message). */
static inline int test_model_path(const char *file, char *buf, size_t cap) {
  if (snprintf(buf, cap, "%s/%s", test_models_dir(), file) >= (int)cap) return 0;
  FILE *f = fopen(buf, "rb");
  if (!f) return 0;
  fclose(f);
  return 1;
}

static inline void test_write_be32(FILE *f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  fwrite(b, 1, 4, f);
}

/* Writes DATA_DIR/<prefix>-images-idx3-ubyte and -labels-idx1-ubyte: n 10x10 images of an
 * easy 3-class task (class k has a bright vertical bar at columns 3k..3k+2, plus noise). */
static inline void test_write_bar_idx(const char *data_dir, const char *prefix, int n,
                                      uint64_t seed) {
  char p[512];
  nas_rng r;
  nas_rng_seed(&r, seed);
  unsigned char *img = malloc((size_t)n * 100), *lab = malloc((size_t)n);
  for (int i = 0; i < n; i++) {
    lab[i] = (unsigned char)nas_rng_below(&r, 3);
    for (int y = 0; y < 10; y++)
      for (int x = 0; x < 10; x++) {
        int bar = x >= 3 * lab[i] && x < 3 * lab[i] + 3;
        img[(size_t)i * 100 + y * 10 + x] =
            (unsigned char)(bar ? 150 + nas_rng_below(&r, 100) : nas_rng_below(&r, 80));
      }
  }
  if (snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", data_dir, prefix) >= (int)sizeof p) abort();
  FILE *f = fopen(p, "wb");
  test_write_be32(f, 0x803), test_write_be32(f, (uint32_t)n);
  test_write_be32(f, 10), test_write_be32(f, 10);
  fwrite(img, 1, (size_t)n * 100, f);
  fclose(f);
  if (snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", data_dir, prefix) >= (int)sizeof p) abort();
  f = fopen(p, "wb");
  test_write_be32(f, 0x801), test_write_be32(f, (uint32_t)n);
  fwrite(lab, 1, (size_t)n, f);
  fclose(f);
  free(img), free(lab);
}

/* Synthetic in-memory task: 4 classes of 8x8x1 images; class k has a bright 3x3 blob in
 * quadrant k (position jittered by one pixel) on N(0, 0.5) noise. Caller frees x and y. */
static inline void test_make_blob_task(nas_dataset *ds, int n, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  ds->n = n, ds->h = ds->w = 8, ds->c = 1, ds->classes = 4;
  ds->x = malloc((size_t)n * 64 * sizeof(float));
  ds->y = malloc((size_t)n * sizeof(int));
  for (int i = 0; i < n; i++) {
    int k = (int)nas_rng_below(&r, 4);
    ds->y[i] = k;
    float *x = ds->x + (size_t)i * 64;
    for (int p = 0; p < 64; p++) x[p] = nas_rng_normal(&r) * 0.5f;
    int oy = (k / 2) * 4 + (int)nas_rng_below(&r, 2), ox = (k % 2) * 4 + (int)nas_rng_below(&r, 2);
    for (int dy = 0; dy < 3; dy++)
      for (int dx = 0; dx < 3; dx++) x[(oy + dy) * 8 + ox + dx] += 1.5f;
  }
}

/* Random dataset of any shape (for structure tests): N(0,1) inputs, uniform labels. Caller
 * frees x and y. */
static inline void test_make_noise(nas_dataset *ds, int n, int h, int w, int c, int classes,
                                   uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  ds->n = n, ds->h = h, ds->w = w, ds->c = c, ds->classes = classes;
  size_t per = (size_t)h * w * c;
  ds->x = malloc((size_t)n * per * sizeof(float));
  ds->y = malloc((size_t)n * sizeof(int));
  for (size_t i = 0; i < (size_t)n * per; i++) ds->x[i] = nas_rng_normal(&r);
  for (int i = 0; i < n; i++) ds->y[i] = (int)nas_rng_below(&r, (uint64_t)classes);
}

/* 1 when /usr/bin/python3 can import pyarmnn (Arm NN checks run), else 0; asked once. */
static inline int test_have_armnn(void) {
  static int cached = -1;
  if (cached < 0)
    cached = access("/usr/bin/python3", X_OK) == 0 &&
             system("/usr/bin/python3 -c 'import pyarmnn' >/dev/null 2>&1") == 0;
  return cached;
}

/* Removes the directory tree dir; 0 on success, -1 otherwise. */
static inline int test_rm_rf(const char *dir) {
  char cmd[1200];
  if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd) abort();
  return system(cmd) == 0 ? 0 : -1;
}

/* Runs `cd DIR && $NAS_BIN ARGS >OUT 2>ERR` (`nas` when NAS_BIN is unset); returns the exit
 * code, or -1 when the command did not exit. */
static inline int test_run_nas(const char *dir, const char *args, const char *out,
                               const char *err) {
  char cmd[2048];
  const char *bin = getenv("NAS_BIN");
  if (snprintf(cmd, sizeof cmd, "cd %s && %s %s >%s 2>%s", dir, bin ? bin : "nas", args, out,
               err) >= (int)sizeof cmd)
    abort();
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first 64 KiB of a file as a string ("" when it cannot be read); a static buffer that the
 * next call overwrites. */
static inline char *test_slurp(const char *path) {
  static char buf[1 << 16];
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = 0;
  return buf;
}

#endif
