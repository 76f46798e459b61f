/* Allocation fault injection (core/alloc.h), in the style of SQLite's faultsim: each
 * operation is run with the N-th allocation failing, N = 0, 1, 2, ..., once with a transient
 * fault (only that allocation fails) and once with a persistent one (it and every later one
 * fail), until a run succeeds without an injected failure. Every run must end in NAS_OK or
 * NAS_ENOMEM with a one-line message (no crash; no leak: the ASan build runs this too), and a
 * run that succeeds although a fault was injected (a failure absorbed on the way) must give
 * the reference result. Operations:
 *   train  loading a test-written IDX set, building a small net from arch JSON, training it
 *          for a few steps, a checkpoint round trip into a second net;
 *   price  loading a target, pricing an arch on it, its JSON and text reports;
 *   space  loading a built-in search space, sampling, materialising and hashing an arch;
 *   create opening a new store file (schema creation and both migrations);
 *   store  a round trip on an existing empty store: open, run, candidate, training, layer
 *          costs, the final transition with metrics and two blobs, an event, run status, a
 *          Pareto query and read-backs, close;
 *          after every create or store run a fresh read-only SQLite connection must find the
 *          file intact (integrity_check) and no partial candidate (absent, or complete in a
 *          state the operation passes through; weights and metrics only with 'done'), and
 *          nas_store_open must still open it. SQLite's allocations count too (results/store.c
 *          wraps its allocator into the schedule);
 *   export calibration, lowering, TFLite (in memory) and C export of the train net.
 * The store's schema creation (create) steps N by 4 unless NAS_FAULT_FULL=1 (see there).
 * NAS_FAULT_ONLY=<test name pattern> runs some cases; NAS_FAULT_VERBOSE=1 prints every
 * error message. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <sndfile.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "datasets/dataset.h"
#include "datasets/speech.h"
#include "deploy/lower.h"
#include "export/export_c.h"
#include "export/export_tflite.h"
#include "latency/cost.h"
#include "latency/measure.h"
#include "results/pareto.h"
#include "results/store.h"
#include "search_spaces/space.h"
#include "search_spaces/supernet.h"
#include "tests/test_util.h"
#include "train/checkpoint.h"
#include "train/net.h"
#include "train/qat.h"
#include "train/quant.h"
#include "train/trainer.h"

#define MAX_RUNS 1000000L /* more allocations than any operation here makes */

static char g_dir[256]; /* scratch directory of this process */
static char g_fast[256]; /* the same in memory (/dev/shm) when there is one, for the store:
                            thousands of new databases, each synced on creation */

/* ---- the driver ---------------------------------------------------------------------- */

typedef struct fault_case {
  const char *name;
  void *ctx;
  void (*setup)(void *ctx);                  /* before every run (may be NULL) */
  int (*run)(void *ctx, nas_err *e);         /* the operation */
  void (*check)(void *ctx, int rc, int hit); /* after every run, injection off (may be NULL) */
  int stride;                                /* N advances by this (0: 1, every N) */
} fault_case;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs c with N = 0, 1, ... failing (every stride-th N; every N with NAS_FAULT_FULL=1),
 * transient then persistent. */
static void faultsim(const fault_case *c) {
  const char *full = getenv("NAS_FAULT_FULL");
  long stride = c->stride > 1 && !(full && !strcmp(full, "1")) ? c->stride : 1;
  const char *verbose = getenv("NAS_FAULT_VERBOSE"); /* 1: print every error message */
  for (int persistent = 0; persistent <= 1; persistent++) {
    const char *mode = persistent ? "persistent" : "transient";
    double t0 = now_s(), t_run = 0;
    long n, absorbed = 0;
    long runs = 0;
    for (n = 0; n < MAX_RUNS; n += stride, runs++) {
      if (c->setup) c->setup(c->ctx);
      nas_err e = {0};
      double t1 = now_s();
      nas_alloc_fault(n, persistent);
      int rc = c->run(c->ctx, &e);
      int hit = nas_alloc_fault_hit();
      nas_alloc_fault(-1, 0);
      t_run += now_s() - t1;
      if (rc != NAS_OK && !hit)
        fail_msg("%s: N=%ld %s: failed without an injected fault: %d %s", c->name, n, mode, rc,
                 e.msg);
      if (rc != NAS_OK && (rc != NAS_ENOMEM || !e.msg[0] || strchr(e.msg, '\n')))
        fail_msg("%s: N=%ld %s: an allocation failure must end in NAS_ENOMEM with one line; "
                 "got %d '%s'", c->name, n, mode, rc, e.msg);
      if (verbose && !strcmp(verbose, "1") && rc != NAS_OK)
        printf("# %s %s N=%ld: %s\n", c->name, mode, n, e.msg);
      if (c->check) c->check(c->ctx, rc, hit);
      absorbed += rc == NAS_OK && hit;
      if (rc == NAS_OK && !hit) break;
    }
    if (n == MAX_RUNS) fail_msg("%s: no success after %ld runs", c->name, n);
    printf("# %-6s %-10s: %6ld allocations, %ld runs (N step %ld; %ld absorbed a fault), %.2f s "
           "(%.2f s in the operation)\n", c->name, mode, n, runs + 1, stride, absorbed,
           now_s() - t0, t_run);
  }
}

#define NEED_FAULTS()                                                                    \
  do {                                                                                   \
    if (nas_alloc_fault(-1, 0) != 0) {                                                   \
      printf("# skipped: built without fault injection (-DNAS_FAULT_INJECTION=OFF)\n"); \
      skip();                                                                            \
    }                                                                                    \
  } while (0)

/* ---- train ----------------------------------------------------------------------------- */

static const char *const TRAIN_ARCH =
    "{\"name\":\"fault\",\"input\":[10,10,1],\"classes\":3,\"layers\":["
    "{\"op\":\"conv\",\"out\":4,\"k\":3,\"stride\":2},"
    "{\"op\":\"dsconv\",\"out\":6,\"k\":[3,3]},"
    "{\"op\":\"maxpool\",\"k\":2,\"padding\":\"same\"},"
    "{\"op\":\"dropout\",\"rate\":0.1},"
    "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";

typedef struct train_out {
  double loss, val_acc, test_acc;
  float w[8];     /* the first weights of the reloaded net's fc layer */
  char arch[1024]; /* its canonical arch */
} train_out;

typedef struct train_ctx {
  char spec[320], ckpt[300];
  train_out ref, got; /* reference (no faults) and the last run */
} train_ctx;

static int train_run(void *p, nas_err *e) {
  train_ctx *c = p;
  nas_data_opts o;
  nas_data_opts_default(&o, c->spec);
  o.val_frac = 0.25;
  nas_data d;
  nas_net *net = NULL, *back = NULL;
  nas_ckpt ck = {0};
  int rc = nas_data_load(&o, &d, e);
  if (rc) return rc;
  rc = nas_net_build(TRAIN_ARCH, "fault-arch", 8, 3, &net, e);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 1, cfg.batch = 8;
  nas_train_result r;
  if (!rc) rc = nas_train(net, &d, &cfg, &r, e);
  if (!rc) rc = nas_ckpt_save(c->ckpt, net->arch_json, "{\"fault\":1}", net->g, e);
  if (!rc) rc = nas_ckpt_load(c->ckpt, &ck, e);
  if (!rc) rc = nas_net_build(ck.arch_json, c->ckpt, 4, 9, &back, e);
  if (!rc) rc = nas_ckpt_apply(&ck, back->g, e);
  if (!rc) {
    memset(&c->got, 0, sizeof c->got);
    c->got.loss = r.final_loss, c->got.val_acc = r.val_acc, c->got.test_acc = r.test_acc;
    int w = nas_graph_find(back->g, "l5.fc.w");
    assert_true(w >= 0);
    memcpy(c->got.w, back->g->nodes[w].val, sizeof c->got.w);
    assert_true(strlen(back->arch_json) < sizeof c->got.arch);
    strcpy(c->got.arch, back->arch_json);
  }
  nas_ckpt_free(&ck);
  nas_net_free(back);
  nas_net_free(net);
  nas_data_free(&d);
  return rc;
}

static void train_check(void *p, int rc, int hit) {
  train_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_true(c->got.loss == c->ref.loss);
  assert_true(c->got.val_acc == c->ref.val_acc && c->got.test_acc == c->ref.test_acc);
  assert_memory_equal(c->got.w, c->ref.w, sizeof c->ref.w);
  assert_string_equal(c->got.arch, c->ref.arch);
}

static void test_train(void **state) {
  (void)state;
  NEED_FAULTS();
  train_ctx c = {0};
  snprintf(c.spec, sizeof c.spec, "idx:%s/idx", g_dir);
  snprintf(c.ckpt, sizeof c.ckpt, "%s/fault.ckpt", g_dir);
  nas_err e = {0};
  if (train_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  c.ref = c.got;
  fault_case fc = {"train", &c, NULL, train_run, train_check, 1};
  faultsim(&fc);
}

/* ---- price ----------------------------------------------------------------------------- */

static const char *const PRICE_ARCH =
    "{\"name\":\"fault-price\",\"input\":[16,16,1],\"classes\":4,\"layers\":["
    "{\"op\":\"conv\",\"out\":8,\"k\":3,\"stride\":2},"
    "{\"op\":\"mbconv\",\"out\":8,\"expand\":2,\"k\":3},"
    "{\"op\":\"add\",\"from\":0},"
    "{\"op\":\"avgpool\",\"k\":2},"
    "{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":4}]}";

typedef struct price_ctx {
  char *ref_json, *ref_table; /* reference reports */
  char *json, *table;         /* of the last successful run */
} price_ctx;

static int price_run(void *p, nas_err *e) {
  price_ctx *c = p;
  nas_target *t = NULL;
  nas_price *pr = NULL;
  int rc = nas_target_open("stm32f446re", NULL, &t, e);
  if (!rc) rc = nas_price_arch(PRICE_ARCH, "fault-price", t, &pr, e);
  char *json = NULL, *table = NULL;
  if (!rc && !(json = nas_price_json(pr, t, "fault-price")))
    rc = nas_errf(e, NAS_ENOMEM, "price report: out of memory");
  if (!rc && !(table = nas_price_table(pr, t, "fault-price")))
    rc = nas_errf(e, NAS_ENOMEM, "price table: out of memory");
  if (!rc) {
    free(c->json), free(c->table);
    c->json = strdup(json), c->table = strdup(table);
  }
  free(json), free(table);
  nas_price_free(pr);
  nas_target_free(t);
  return rc;
}

static void price_check(void *p, int rc, int hit) {
  price_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_string_equal(c->json, c->ref_json);
  assert_string_equal(c->table, c->ref_table);
}

static void test_price(void **state) {
  (void)state;
  NEED_FAULTS();
  price_ctx c = {0};
  nas_err e = {0};
  if (price_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  assert_non_null(strstr(c.json, "\"peak_sram_method\":\"planner\"")); /* lowered, planned */
  c.ref_json = c.json, c.ref_table = c.table;
  c.json = c.table = NULL;
  fault_case fc = {"price", &c, NULL, price_run, price_check, 1};
  faultsim(&fc);
  free(c.ref_json), free(c.ref_table), free(c.json), free(c.table);
}

/* ---- space ----------------------------------------------------------------------------- */

typedef struct space_ctx {
  char ref_arch[8192], arch[8192], ref_hex[17], hex[17];
  int ref_changed, changed, ref_value, value; /* the mutation */
} space_ctx;

static int space_run(void *p, nas_err *e) {
  space_ctx *c = p;
  nas_space *s = NULL;
  int rc = nas_space_load_builtin("kws-dscnn", &s, e);
  int d[256];
  char *arch = NULL, hex[17] = "";
  if (!rc) {
    assert_true(nas_space_n_decisions(s) <= 256);
    nas_rng r;
    nas_rng_seed(&r, 5);
    nas_space_sample(s, &r, d);
    rc = nas_space_materialize(s, d, &arch, e);
  }
  if (!rc) rc = nas_arch_hash_hex(arch, hex, e);
  int d2[256], changed = -1;
  if (!rc) {
    nas_rng r;
    nas_rng_seed(&r, 6);
    rc = nas_space_mutate(s, &r, d, d2, &changed, e);
  }
  nas_supernet *sn = NULL;
  if (!rc) rc = nas_supernet_load("kws-dscnn", &sn, e);
  if (!rc) {
    assert_true(strlen(arch) < sizeof c->arch);
    strcpy(c->arch, arch), strcpy(c->hex, hex);
    c->changed = changed, c->value = d2[changed];
  }
  nas_supernet_free(sn);
  free(arch);
  nas_space_free(s);
  return rc;
}

static void space_check(void *p, int rc, int hit) {
  space_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_string_equal(c->arch, c->ref_arch);
  assert_string_equal(c->hex, c->ref_hex);
  assert_int_equal(c->changed, c->ref_changed);
  assert_int_equal(c->value, c->ref_value);
}

static void test_space(void **state) {
  (void)state;
  NEED_FAULTS();
  static space_ctx c;
  nas_err e = {0};
  if (space_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  strcpy(c.ref_arch, c.arch), strcpy(c.ref_hex, c.hex);
  c.ref_changed = c.changed, c.ref_value = c.value;
  assert_true(c.changed >= 0);
  fault_case fc = {"space", &c, NULL, space_run, space_check, 1};
  faultsim(&fc);
}

/* ---- qat ------------------------------------------------------------------------------- */

typedef struct qat_ctx {
  char spec[320];
  nas_data d;            /* loaded once */
  float ref_lo[256], ref_hi[256], lo[256], hi[256]; /* learned ranges */
  int n;
} qat_ctx;

/* Calibration, the QAT network, one epoch of QAT, the learned ranges back as a calibration. */
static int qat_run(void *p, nas_err *e) {
  qat_ctx *c = p;
  nas_net *net = NULL;
  nas_calib cal = {0};
  int rc = nas_net_build(TRAIN_ARCH, "fault-arch", 8, 3, &net, e);
  nas_qat_cfg qc;
  nas_qat_cfg_default(&qc);
  qc.calib_samples = 16;
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 1, cfg.batch = 8;
  nas_train_result r;
  if (!rc) rc = nas_qat_run(net, &c->d, &qc, &cfg, &r, &cal, e);
  if (!rc) {
    assert_true(cal.n <= 256);
    c->n = cal.n;
    memcpy(c->lo, cal.lo, sizeof(float) * (size_t)cal.n);
    memcpy(c->hi, cal.hi, sizeof(float) * (size_t)cal.n);
  }
  nas_calib_free(&cal);
  nas_net_free(net);
  return rc;
}

static void qat_check(void *p, int rc, int hit) {
  qat_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_memory_equal(c->lo, c->ref_lo, sizeof(float) * (size_t)c->n);
  assert_memory_equal(c->hi, c->ref_hi, sizeof(float) * (size_t)c->n);
}

static void test_qat(void **state) {
  (void)state;
  NEED_FAULTS();
  static qat_ctx c;
  snprintf(c.spec, sizeof c.spec, "idx:%s/idx", g_dir);
  nas_data_opts o;
  nas_data_opts_default(&o, c.spec);
  nas_err e = {0};
  if (nas_data_load(&o, &c.d, &e)) fail_msg("%s", e.msg);
  if (qat_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  memcpy(c.ref_lo, c.lo, sizeof c.lo), memcpy(c.ref_hi, c.hi, sizeof c.hi);
  fault_case fc = {"qat", &c, NULL, qat_run, qat_check, 1};
  faultsim(&fc);
  nas_data_free(&c.d);
}

/* ---- speech ---------------------------------------------------------------------------- */

/* A tiny Speech Commands tree: yes (4 clips: one validation, one test), no (2), cat (2,
 * unknown), a broken file, and 1.5 s of noise. */
static void write_tone(const char *path, int n, int id) {
  SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  assert_non_null(f);
  float x[24000];
  assert_true(n <= 24000);
  for (int i = 0; i < n; i++)
    x[i] = 0.3f * (float)sin(6.283185307179586 * (200.0 + 50.0 * id) * i / 16000.0) +
           0.05f * (float)((i * 7919 + id * 104729) % 1000) / 1000.0f;
  assert_int_equal(sf_writef_float(f, x, n), n);
  assert_int_equal(sf_close(f), 0);
}

static void write_str(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

typedef struct speech_ctx {
  char dir[300], cache[300];
  nas_speech_opts o;
  size_t n;          /* floats compared */
  float *ref, *got;  /* the first training features of the cached load */
  int ref_n, got_n;  /* training clips */
} speech_ctx;

static void speech_setup(void *p) { /* an empty cache directory */
  speech_ctx *c = p;
  DIR *d = opendir(c->cache);
  assert_non_null(d);
  struct dirent *de;
  char f[600];
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') {
      snprintf(f, sizeof f, "%s/%s", c->cache, de->d_name);
      assert_int_equal(remove(f), 0);
    }
  closedir(d);
}

/* Loads the tree twice: computing (and writing the caches), then from the caches. */
static int speech_run(void *p, nas_err *e) {
  speech_ctx *c = p;
  nas_data d1, d2;
  nas_speech_stats st;
  int rc = nas_speech_load_dir(c->dir, &c->o, &d1, &st, e);
  if (!rc) rc = nas_speech_load_dir(c->dir, &c->o, &d2, &st, e);
  if (!rc) {
    assert_int_equal(d1.train.n, d2.train.n);
    assert_memory_equal(d1.train.x, d2.train.x, sizeof(float) * c->n);
    assert_non_null(d2.train.x_aug);
    c->got_n = d2.train.n;
    memcpy(c->got, d2.train.x, sizeof(float) * c->n);
    nas_data_free(&d2);
  }
  if (rc != NAS_OK || d1.train.x) nas_data_free(&d1);
  return rc;
}

static void speech_check(void *p, int rc, int hit) {
  speech_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_int_equal(c->got_n, c->ref_n);
  assert_memory_equal(c->got, c->ref, sizeof(float) * c->n);
}

static void test_speech(void **state) {
  (void)state;
  NEED_FAULTS();
  static speech_ctx c;
  char p[400];
  snprintf(c.dir, sizeof c.dir, "%s/speech", g_dir);
  snprintf(c.cache, sizeof c.cache, "%s/speech-cache", g_dir);
  assert_int_equal(mkdir(c.dir, 0755), 0);
  static const char *const words[] = {"yes", "no", "cat", "_background_noise_"};
  static const int count[] = {4, 2, 2, 0};
  for (int w = 0, id = 0; w < 4; w++) {
    snprintf(p, sizeof p, "%s/%s", c.dir, words[w]);
    assert_int_equal(mkdir(p, 0755), 0);
    for (int i = 0; i < count[w]; i++, id++) {
      snprintf(p, sizeof p, "%s/%s/%c%d.wav", c.dir, words[w], words[w][0], i);
      write_tone(p, 16000, id);
    }
  }
  snprintf(p, sizeof p, "%s/_background_noise_/white.wav", c.dir);
  write_tone(p, 24000, 50);
  snprintf(p, sizeof p, "%s/yes/broken.wav", c.dir);
  write_str(p, "not a wav\n");
  snprintf(p, sizeof p, "%s/validation_list.txt", c.dir);
  write_str(p, "yes/y0.wav\n");
  snprintf(p, sizeof p, "%s/testing_list.txt", c.dir);
  write_str(p, "yes/y1.wav\n");
  nas_speech_opts_default(&c.o);
  c.o.cache_dir = c.cache;
  c.o.aug_n = 1;
  c.o.silence_frac = 0.5;
  c.o.unknown_frac = 0.5;
  assert_int_equal(mkdir(c.cache, 0755), 0);
  nas_err e = {0};
  nas_data d;
  if (nas_speech_load_dir(c.dir, &c.o, &d, NULL, &e)) fail_msg("%s", e.msg);
  c.n = (size_t)d.train.n * d.train.h * d.train.w;
  nas_data_free(&d);
  c.ref = calloc(c.n, sizeof(float)), c.got = calloc(c.n, sizeof(float));
  speech_setup(&c);
  if (speech_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  memcpy(c.ref, c.got, sizeof(float) * c.n);
  c.ref_n = c.got_n;
  fault_case fc = {"speech", &c, speech_setup, speech_run, speech_check, 1};
  faultsim(&fc);
  free(c.ref), free(c.got);
}

/* ---- fit ------------------------------------------------------------------------------- */

typedef struct fit_ctx {
  char target[400], csv[300], out[300];
  char ref[8192], got[8192]; /* the written target JSON */
} fit_ctx;

/* Reads the measurements, fits, writes the target JSON, and reads the fitted target back. */
static int fit_run(void *p, nas_err *e) {
  fit_ctx *c = p;
  nas_fit_report rep;
  int rc = nas_fit_target_file(c->target, c->csv, c->out, NULL, &rep, e);
  nas_target *t = NULL;
  if (!rc) rc = nas_target_load(c->out, &t, e);
  if (!rc) {
    assert_true(t->calibrated);
    FILE *f = fopen(c->out, "rb");
    assert_non_null(f);
    size_t n = fread(c->got, 1, sizeof c->got - 1, f);
    c->got[n] = '\0';
    fclose(f);
  }
  nas_target_free(t);
  return rc;
}

static void fit_check(void *p, int rc, int hit) {
  fit_ctx *c = p;
  if (rc == NAS_OK && hit) assert_string_equal(c->got, c->ref);
}

static void test_fit(void **state) {
  (void)state;
  NEED_FAULTS();
  static fit_ctx c;
  snprintf(c.target, sizeof c.target, "%s/stm32f446re.json", nas_targets_dir());
  snprintf(c.csv, sizeof c.csv, "%s/meas.csv", g_dir);
  snprintf(c.out, sizeof c.out, "%s/fitted.json", g_dir);
  /* three models of conv, pwconv and fc layers: cycles linear in the MACs (conv with an
   * unaligned-channel term), plus a whole-model row each */
  nas_meas rows[32];
  int n = 0;
  for (int m = 0; m < 3; m++) {
    double total = 0;
    long long macs_total = 0;
    for (int l = 0; l < 6; l++) {
      nas_meas *r = &rows[n++];
      memset(r, 0, sizeof *r);
      snprintf(r->target, sizeof r->target, "stm32f446re");
      snprintf(r->model, sizeof r->model, "model%d", m);
      snprintf(r->layer, sizeof r->layer, "l%d", l);
      r->kop = l < 3 ? NAS_KOP_CONV : l < 5 ? NAS_KOP_PWCONV : NAS_KOP_FC;
      r->cin = 3 + l + m, r->cout = 8 + 4 * l;
      r->kh = r->kw = r->kop == NAS_KOP_CONV ? 3 : 1;
      r->macs = 1000LL * (l + 1) * (m + 2) + 37 * l * l;
      r->in_bytes = 100 * (l + 1), r->out_bytes = 80 * (l + 2);
      r->cycles = 2.5 * (double)r->macs + (r->cin % 4 ? 0.7 * (double)r->macs : 0) + 11 * l;
      total += r->cycles, macs_total += r->macs;
    }
    nas_meas *r = &rows[n++];
    memset(r, 0, sizeof *r);
    snprintf(r->target, sizeof r->target, "stm32f446re");
    snprintf(r->model, sizeof r->model, "model%d", m);
    r->kop = -1, r->macs = macs_total, r->kh = r->kw = 1, r->cycles = total + 5000;
  }
  nas_err e = {0};
  if (nas_meas_write_csv(c.csv, rows, n, &e)) fail_msg("%s", e.msg);
  if (fit_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  strcpy(c.ref, c.got);
  fault_case fc = {"fit", &c, NULL, fit_run, fit_check, 1};
  faultsim(&fc);
}

/* ---- store ----------------------------------------------------------------------------- */

static const char *const CAND_ARCH = "{\"input\":[8,8,1],\"classes\":2,\"layers\":[]}";
static const char *const CAND_HASH = "00112233aabbccdd";
#define N_LAYER_ROWS 3
#define BLOB_LEN 3000

typedef struct store_ctx {
  char path[300];                  /* the store of a run */
  char tmpl[300];                  /* an empty, migrated store copied to path before a run
                                      ("" to start from no file) */
  int body;                        /* run the round trip after opening (0: open only) */
  unsigned char blob[2][BLOB_LEN]; /* float, int8 weights */
  nas_metrics m;                   /* the metrics of the final transition */
} store_ctx;

static void rm_store(const char *p) {
  char x[320];
  remove(p);
  snprintf(x, sizeof x, "%s-wal", p);
  remove(x);
  snprintf(x, sizeof x, "%s-shm", p);
  remove(x);
}

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
  fclose(a);
  assert_int_equal(fclose(b), 0);
}

static void store_setup(void *p) {
  store_ctx *c = p;
  rm_store(c->path);
  if (c->tmpl[0]) copy_file(c->tmpl, c->path);
}

static int store_body(store_ctx *c, nas_store *s, nas_err *e) {
  nas_run_info ri = {.config_json = "{\"fault\":true}", .strategy = "random", .space = "kws",
                     .dataset = "idx:x", .target = "stm32f446re", .seed = 3, .budget = 1,
                     .objectives = "acc_int8_test:max,latency_pred_ms:min"};
  int64_t run, cand;
  int rc = nas_store_run_create(s, &ri, &run, e);
  if (!rc) rc = nas_store_candidate_add(s, run, CAND_ARCH, CAND_HASH, 0, 0, &cand, NULL, e);
  if (!rc) rc = nas_store_candidate_set_state(s, cand, "training", NULL, e);
  nas_layer_cost lc[N_LAYER_ROWS];
  for (int i = 0; i < N_LAYER_ROWS; i++)
    lc[i] = (nas_layer_cost){i, "conv", 100 * i, 10 * i, 20 * i, 30 * i, 0.5 * i};
  if (!rc) rc = nas_store_layer_costs_put(s, cand, lc, N_LAYER_ROWS, e);
  nas_store_blob b[2] = {{"float", c->blob[0], BLOB_LEN}, {"int8", c->blob[1], BLOB_LEN}};
  if (!rc) rc = nas_store_candidate_finish(s, cand, "done", NULL, &c->m, b, 2, e);
  if (!rc) rc = nas_store_event_add(s, run, cand, "candidate_done", "{\"id\":1}", NULL, e);
  if (!rc) rc = nas_store_run_set_status(s, run, "done", e);
  /* read back */
  nas_objectives o;
  nas_pareto_row *rows = NULL;
  int n = 0;
  if (!rc) rc = nas_objectives_parse(ri.objectives, &o, e);
  if (!rc) rc = nas_pareto_front(s, &o, run, "macs < 100000", &rows, &n, e);
  if (!rc) {
    assert_int_equal(n, 1);
    assert_true(rows[0].id == cand);
  }
  free(rows);
  nas_candidate_row cr;
  if (!rc && !(rc = nas_store_candidate_get(s, cand, &cr, e))) {
    assert_string_equal(cr.state, "done");
    assert_string_equal(cr.arch_json, CAND_ARCH);
    nas_store_candidate_row_free(&cr);
  }
  void *data = NULL;
  size_t len = 0;
  if (!rc && !(rc = nas_store_weights_get(s, cand, "int8", &data, &len, e))) {
    assert_int_equal(len, BLOB_LEN);
    assert_memory_equal(data, c->blob[1], BLOB_LEN);
  }
  free(data);
  nas_layer_cost *got = NULL;
  if (!rc && !(rc = nas_store_layer_costs_get(s, cand, &got, &n, e))) {
    assert_int_equal(n, N_LAYER_ROWS);
    assert_true(got[2].macs == 200);
  }
  free(got);
  int64_t *ids = NULL;
  if (!rc && !(rc = nas_store_candidate_ids(s, run, "done", &ids, &n, e))) assert_int_equal(n, 1);
  free(ids);
  nas_run_row rr;
  if (!rc && !(rc = nas_store_run_get(s, run, &rr, e))) {
    assert_string_equal(rr.status, "done");
    nas_store_run_row_free(&rr);
  }
  return rc;
}

static int store_run(void *p, nas_err *e) {
  store_ctx *c = p;
  nas_store *s = NULL;
  int rc = nas_store_open(c->path, &s, e);
  if (!rc && c->body) rc = store_body(c, s, e);
  nas_store_close(s);
  return rc;
}

/* One integer from a query on db. */
static long long q_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void store_check(void *p, int rc, int hit) {
  store_ctx *c = p;
  (void)hit;
  struct stat sb;
  if (stat(c->path, &sb) != 0) return; /* failed before the file was created */
  sqlite3 *db;
  if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("%s: %s", c->path, sqlite3_errmsg(db));
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  long long v = q_int(db, "PRAGMA user_version"); /* each migration step commits on its own */
  assert_true(v >= 0 && v <= NAS_STORE_VERSION);
  if (v >= 1) {
    assert_true(q_int(db, "SELECT count(*) FROM runs") <= 1);
    assert_true(q_int(db, "SELECT count(*) FROM candidates") <= 1);
    long long run_done = q_int(db, "SELECT count(*) FROM runs WHERE status = 'done'");
    assert_int_equal(q_int(db, "SELECT count(*) FROM runs WHERE status NOT IN ('running','done')"), 0);
    long long events = q_int(db, "SELECT count(*) FROM events");
    assert_true(events <= 1);
    long long layers = q_int(db, "SELECT count(*) FROM layer_costs");
    assert_true(layers == 0 || layers == N_LAYER_ROWS);
    long long weights = q_int(db, "SELECT count(*) FROM weights");
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT arch_json, arch_hash, state, reason, "
                                            "acc_float_val, acc_int8_test, macs, latency_pred_ms, "
                                            "train_seconds FROM candidates", -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
      assert_string_equal((const char *)sqlite3_column_text(st, 0), CAND_ARCH);
      assert_string_equal((const char *)sqlite3_column_text(st, 1), CAND_HASH);
      const char *state = (const char *)sqlite3_column_text(st, 2);
      assert_int_equal(sqlite3_column_type(st, 3), SQLITE_NULL);
      if (!strcmp(state, "done")) { /* the final transition is all there */
        assert_true(sqlite3_column_double(st, 4) == c->m.acc_float_val);
        assert_true(sqlite3_column_double(st, 5) == c->m.acc_int8_test);
        assert_int_equal(sqlite3_column_int64(st, 6), (long long)c->m.macs);
        assert_true(sqlite3_column_double(st, 7) == c->m.latency_pred_ms);
        assert_true(sqlite3_column_double(st, 8) == c->m.train_seconds);
        assert_int_equal(weights, 2);
        assert_int_equal(layers, N_LAYER_ROWS);
        assert_int_equal(q_int(db, "SELECT count(*) FROM weights WHERE length(data) = 3000 AND "
                                   "((kind = 'float' AND hex(substr(data, 1, 4)) = '01020304') OR "
                                   "(kind = 'int8' AND hex(substr(data, 2999, 2)) = 'FEFF'))"),
                         2);
      } else { /* proposed or training: none of it */
        assert_true(!strcmp(state, "proposed") || !strcmp(state, "training"));
        for (int i = 4; i <= 8; i++) assert_int_equal(sqlite3_column_type(st, i), SQLITE_NULL);
        assert_int_equal(weights, 0);
        assert_int_equal(run_done, 0);
      }
    } else {
      assert_int_equal(weights + layers + events + run_done, 0);
    }
    sqlite3_finalize(st);
    if (run_done) assert_int_equal(events, 1);
  }
  sqlite3_close(db);
  /* and the library still opens it (migrating a version-0 file) */
  nas_store *s = NULL;
  nas_err e = {0};
  if (nas_store_open(c->path, &s, &e)) fail_msg("after rc %d: reopen: %s", rc, e.msg);
  nas_store_close(s);
}

static void store_init(store_ctx *c) {
  for (int i = 0; i < BLOB_LEN; i++) c->blob[0][i] = (unsigned char)(i % 4 + 1);
  for (int i = 0; i < BLOB_LEN; i++) c->blob[1][i] = (unsigned char)(0xff - (BLOB_LEN - 1 - i));
  nas_metrics_clear(&c->m);
  c->m.acc_float_val = 0.75, c->m.acc_int8_test = 0.625, c->m.macs = 12345;
  c->m.latency_pred_ms = 1.5, c->m.train_seconds = 2.25;
}

/* Creating a store: a new file, its schema and both migrations. */
static void test_store_create(void **state) {
  (void)state;
  NEED_FAULTS();
  static store_ctx c;
  store_init(&c);
  snprintf(c.path, sizeof c.path, "%s/create.db", g_fast);
  nas_err e = {0};
  store_setup(&c);
  if (store_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  store_check(&c, NAS_OK, 0);
  /* SQLite makes some 4,400 allocations creating the schema and migrating it, the longest
   * case by far: every 4th N by default (each of the store's own calls spans more than four
   * of SQLite's allocations), all of them with NAS_FAULT_FULL=1. */
  fault_case fc = {"create", &c, store_setup, store_run, store_check, 4};
  faultsim(&fc);
  rm_store(c.path);
}

/* The round trip on an existing (empty, migrated) store. */
static void test_store(void **state) {
  (void)state;
  NEED_FAULTS();
  static store_ctx c;
  store_init(&c);
  snprintf(c.tmpl, sizeof c.tmpl, "%s/template.db", g_fast);
  snprintf(c.path, sizeof c.path, "%s/fault.db", g_fast);
  nas_err e = {0};
  nas_store *s = NULL;
  rm_store(c.tmpl);
  if (nas_store_open(c.tmpl, &s, &e)) fail_msg("%s", e.msg);
  nas_store_close(s); /* checkpointed: the whole store is in the main file */
  c.body = 1;
  store_setup(&c);
  if (store_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  store_check(&c, NAS_OK, 0);
  fault_case fc = {"store", &c, store_setup, store_run, store_check, 1};
  faultsim(&fc);
  rm_store(c.path);
  rm_store(c.tmpl);
}

/* ---- export ---------------------------------------------------------------------------- */

/* Calibration on a test-written set, lowering, and the TFLite and C exporters. */
typedef struct export_ctx {
  nas_net *net;   /* built once */
  nas_data d;     /* calibration set */
  char out[300];  /* C export directory */
  size_t ref_len, len;
} export_ctx;

static int export_run(void *p, nas_err *e) {
  export_ctx *c = p;
  nas_g8_graph g = {0};
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 16;
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = nas_quantize_net(c->net, &c->d.train, &cc, NULL, &g, e);
  if (!rc) rc = nas_tflite_write_mem(&g, "fault", &buf, &len, e);
  if (!rc) rc = nas_c_export(&g, "fault_net", c->out, e);
  if (!rc) c->len = len;
  free(buf);
  nas_g8_graph_free(&g);
  return rc;
}

static void export_check(void *p, int rc, int hit) {
  export_ctx *c = p;
  if (rc == NAS_OK && hit) assert_int_equal(c->len, c->ref_len);
}

static void test_export(void **state) {
  (void)state;
  NEED_FAULTS();
  static export_ctx c;
  char spec[320];
  snprintf(spec, sizeof spec, "idx:%s/idx", g_dir);
  nas_data_opts o;
  nas_data_opts_default(&o, spec);
  nas_err e = {0};
  if (nas_data_load(&o, &c.d, &e)) fail_msg("%s", e.msg);
  if (nas_net_build(TRAIN_ARCH, "fault-arch", 8, 3, &c.net, &e)) fail_msg("%s", e.msg);
  snprintf(c.out, sizeof c.out, "%s/c-export", g_dir);
  assert_int_equal(mkdir(c.out, 0755), 0);
  if (export_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  c.ref_len = c.len;
  fault_case fc = {"export", &c, NULL, export_run, export_check, 1};
  faultsim(&fc);
  nas_net_free(c.net);
  nas_data_free(&c.d);
}

static int setup(void **st) {
  (void)st;
  snprintf(g_dir, sizeof g_dir, "/tmp/nas-fault-XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  char dir[300]; /* the IDX set of train, qat and export */
  snprintf(dir, sizeof dir, "%s/idx", g_dir);
  if (mkdir(dir, 0755)) return -1;
  test_write_bar_idx(dir, "train", 24, 1);
  test_write_bar_idx(dir, "t10k", 8, 2);
  snprintf(g_fast, sizeof g_fast, "/dev/shm/nas-fault-XXXXXX");
  if (!mkdtemp(g_fast)) snprintf(g_fast, sizeof g_fast, "%s", g_dir);
  nas_json_init();
  /* One thread: the loop reruns each operation thousands of times, and what it tests does
   * not depend on the thread count (OpenMP's own allocations are not ours). */
  omp_set_num_threads(1);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  if (strcmp(g_fast, g_dir) && test_rm_rf(g_fast)) return -1;
  return test_rm_rf(g_dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train), cmocka_unit_test(test_qat), cmocka_unit_test(test_speech),
      cmocka_unit_test(test_price), cmocka_unit_test(test_fit), cmocka_unit_test(test_space),
      cmocka_unit_test(test_store_create), cmocka_unit_test(test_store),
      cmocka_unit_test(test_export),
  };
  const char *only = getenv("NAS_FAULT_ONLY"); /* e.g. NAS_FAULT_ONLY=test_store */
  if (only && *only) cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, setup, teardown);
}
