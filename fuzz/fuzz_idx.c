/* fuzz/fuzz_idx.c: libFuzzer harness of IDX files (datasets/idx.c nas_idx_read, raw or gzip)
 * and of the idx:DIR dataset loader that reads four of them (datasets/dataset.c
 * nas_data_load: count, shape and label checks, split, normalisation).
 *
 * The input's first byte picks which of the four files it replaces (byte % 4: train images,
 * train labels, test images, test labels); the rest is that file's content. The other three
 * are small valid files (5 train and 3 test images of 4x3 pixels, labels 0..2) written once.
 * nas_idx_read reads the fuzzed file, then nas_data_load reads the folder. */
#include "fuzz/fuzz_util.h"

#include "datasets/dataset.h"

static const char *const NAMES[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
static char g_dir[600], g_spec[700];
static uint8_t g_valid[4][128];
static size_t g_len[4];

static void cleanup(void) { fuzz_rm_tree(g_dir); }

/* A valid IDX file: images (n x 4 x 3, pixel = 17 * i mod 256) or labels (i mod 3). */
static size_t make_idx(uint8_t *b, int images, int n) {
  size_t k = 0;
  b[k++] = 0, b[k++] = 0, b[k++] = 8, b[k++] = images ? 3 : 1;
  int dims[3] = {n, 4, 3};
  for (int d = 0; d < (images ? 3 : 1); d++)
    for (int s = 3; s >= 0; s--) b[k++] = (uint8_t)(dims[d] >> (8 * s));
  int cnt = images ? n * 12 : n;
  for (int i = 0; i < cnt; i++) b[k++] = (uint8_t)(images ? 17 * i : i % 3);
  return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(g_dir, sizeof g_dir, "%s", fuzz_tmpdir());
  snprintf(g_spec, sizeof g_spec, "idx:%s", g_dir);
  for (int i = 0; i < 4; i++) g_len[i] = make_idx(g_valid[i], i % 2 == 0, i < 2 ? 5 : 3);
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int which = data[0] % 4;
  char path[4][700];
  for (int i = 0; i < 4; i++) {
    snprintf(path[i], sizeof path[i], "%s/%s", g_dir, NAMES[i]);
    if (i == which) fuzz_write_file(path[i], data + 1, size - 1);
    else fuzz_write_file(path[i], g_valid[i], g_len[i]);
  }
  nas_idx x;
  memset(&x, 0, sizeof x);
  nas_err e = {0};
  int rc = nas_idx_read(path[which], &x, &e);
  fuzz_check_err(rc, &e, "nas_idx_read");
  if (rc == NAS_OK) {
    if (x.ndim != 1 && x.ndim != 3) FUZZ_FAIL("nas_idx_read: %d dimensions", x.ndim);
    size_t total = (size_t)x.dims[0] * (size_t)x.dims[1] * (size_t)x.dims[2];
    if (total && !x.data) FUZZ_FAIL("nas_idx_read: %zu bytes but no data", total);
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < total; i++) sink ^= x.data[i]; /* every byte must be readable */
    (void)sink;
  }
  nas_idx_free(&x);
  nas_data_opts o;
  nas_data_opts_default(&o, g_spec);
  nas_data d;
  memset(&d, 0, sizeof d);
  nas_err e2 = {0};
  rc = nas_data_load(&o, &d, &e2);
  fuzz_check_err(rc, &e2, "nas_data_load");
  if (rc == NAS_OK) {
    const nas_dataset *sets[3] = {&d.train, &d.val, &d.test};
    for (int k = 0; k < 3; k++)
      for (int i = 0; i < sets[k]->n; i++)
        if (sets[k]->y[i] < 0 || sets[k]->y[i] >= sets[k]->classes)
          FUZZ_FAIL("nas_data_load: label %d of sample %d outside 0..%d", sets[k]->y[i], i,
                    sets[k]->classes - 1);
  }
  nas_data_free(&d);
  return 0;
}
