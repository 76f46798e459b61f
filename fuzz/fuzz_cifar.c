/* fuzz/fuzz_cifar.c: libFuzzer harness of the CIFAR-10 binary reader (datasets/cifar.c, spec
 * cifar10:DIR): record size, labels, split and normalisation.
 *
 * The input's first byte picks which of the six files it replaces (byte % 6: data_batch_1..5,
 * test_batch); the rest is that file's content. The other five are small valid files (2
 * records each) written once. nas_data_load reads the folder; on success every sample must be
 * 32x32x3 with a label in 0..9 and finite values.
 * With NAS_FUZZ_SEEDS=DIR in the environment the harness writes seed inputs into DIR (one
 * and three records for a training file and for the test file, a bad label, a truncated
 * record) and exits. */
#include "fuzz/fuzz_util.h" /* first: it defines _GNU_SOURCE */

#include <math.h>

#include "datasets/cifar.h"

static char g_dir[600], g_spec[700];
static uint8_t g_valid[2 * NAS_CIFAR_RECORD];

static void cleanup(void) { fuzz_rm_tree(g_dir); }

static void name_of(int k, char *buf, size_t cap) {
  if (k < NAS_CIFAR_TRAIN_FILES) snprintf(buf, cap, "%s/data_batch_%d.bin", g_dir, k + 1);
  else snprintf(buf, cap, "%s/test_batch.bin", g_dir);
}

/* Writes seed DIR/name: selector byte sel, then n records (label of record 1 = bad when
 * bad >= 0), cut to len bytes of records when len >= 0. */
static void seed(const char *dir, const char *name, int sel, int n, int bad, long len) {
  size_t total = 1 + (size_t)n * NAS_CIFAR_RECORD;
  uint8_t *b = malloc(total);
  if (!b) FUZZ_FAIL("out of memory");
  b[0] = (uint8_t)sel;
  for (int r = 0; r < n; r++) {
    uint8_t *q = b + 1 + (size_t)r * NAS_CIFAR_RECORD;
    q[0] = (uint8_t)(r == 1 && bad >= 0 ? bad : r % 10);
    for (int i = 1; i < NAS_CIFAR_RECORD; i++) q[i] = (uint8_t)(i * 29 + r * 3);
  }
  char p[800];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  fuzz_write_file(p, b, len >= 0 ? 1 + (size_t)len : total);
  free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *sd = getenv("NAS_FUZZ_SEEDS");
  if (sd && sd[0]) {
    seed(sd, "train1", 0, 1, -1, -1);
    seed(sd, "train3", 2, 3, -1, -1);
    seed(sd, "test3", 5, 3, -1, -1);
    seed(sd, "badlabel", 1, 3, 10, -1);
    seed(sd, "truncated", 4, 2, -1, NAS_CIFAR_RECORD + 100);
    exit(0);
  }
  snprintf(g_dir, sizeof g_dir, "%s", fuzz_tmpdir());
  snprintf(g_spec, sizeof g_spec, "cifar10:%s", g_dir);
  for (int r = 0; r < 2; r++) {
    uint8_t *q = g_valid + (size_t)r * NAS_CIFAR_RECORD;
    q[0] = (uint8_t)(r * 7);
    for (int i = 1; i < NAS_CIFAR_RECORD; i++) q[i] = (uint8_t)(i * 13 + r);
  }
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int which = data[0] % (NAS_CIFAR_TRAIN_FILES + 1);
  for (int k = 0; k <= NAS_CIFAR_TRAIN_FILES; k++) {
    char path[700];
    name_of(k, path, sizeof path);
    if (k == which) fuzz_write_file(path, data + 1, size - 1);
    else fuzz_write_file(path, g_valid, sizeof g_valid);
  }
  nas_data_opts o;
  nas_data_opts_default(&o, g_spec);
  nas_data d;
  memset(&d, 0, sizeof d);
  nas_err e = {0};
  int rc = nas_data_load(&o, &d, &e);
  fuzz_check_err(rc, &e, "nas_data_load");
  if (rc == NAS_OK) {
    const nas_dataset *sets[3] = {&d.train, &d.val, &d.test};
    for (int k = 0; k < 3; k++) {
      const nas_dataset *s = sets[k];
      if (s->n && (s->h != 32 || s->w != 32 || s->c != 3))
        FUZZ_FAIL("nas_data_load: sample shape %dx%dx%d", s->h, s->w, s->c);
      for (int i = 0; i < s->n; i++) {
        if (s->y[i] < 0 || s->y[i] > 9) FUZZ_FAIL("label %d of sample %d", s->y[i], i);
        for (int j = 0; j < 3072; j++)
          if (!isfinite(s->x[(size_t)i * 3072 + j])) FUZZ_FAIL("sample %d value %d not finite", i, j);
      }
    }
  }
  nas_data_free(&d);
  return 0;
}
