/* Allocation fault injection (core/alloc.h), in the style of SQLite's faultsim
 * (tests/test_fault_util.h): each operation runs with the N-th allocation failing, N = 0, 1,
 * 2, ..., once with a transient fault (only that allocation fails) and once with a
 * persistent one (it and every later one fail), until a run succeeds without an injected
 * failure. Every run must end in NAS_OK or NAS_ENOMEM with a one-line message (no crash; no
 * leak: the ASan build runs this too), and a run that succeeds although a fault was injected
 * (a failure absorbed on the way, e.g. a cache that could not be written) must give the
 * reference result. Operations:
 *   train  loading a test-written IDX set, building a small net from arch JSON, training it
 *          for a few steps, a checkpoint round trip into a second net;
 *   qat    calibration, the QAT network, one epoch of QAT, the learned ranges;
 *   speech a tiny Speech Commands tree (a broken file, noise, variants) loaded twice:
 *          computing and writing the caches, then from the caches;
 *   price  loading a target, pricing an arch on it (lowered and planned), its reports;
 *   fit    reading measurements, fitting a target's latency models, writing and reloading it;
 *   space  a built-in search space: sample, materialise, hash, mutate; its supernet;
 *   export calibration (percentile), lowering, TFLite (in memory) and C export, the .tflite
 *          parsed back and run on one sample.
 * The store's cases are in test_fault_store.c. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "datasets/speech.h"
#include "deploy/lower.h"
#include "export/export_c.h"
#include "export/export_tflite.h"
#include "latency/cost.h"
#include "latency/measure.h"
#include "search_spaces/space.h"
#include "search_spaces/supernet.h"
#include "tests/test_fault_util.h"
#include "train/checkpoint.h"
#include "train/net.h"
#include "train/qat.h"
#include "train/quant.h"
#include "train/trainer.h"
#include "tests/test_util.h"

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
  /* lowered, planned: TFLM's arena, the default runtime of the target (tflm-cmsis-nn) */
  assert_non_null(strstr(c.json, "\"peak_sram_method\":\"tflm-arena\""));
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
  char tdir[256];
  nas_err te = {0};
  assert_int_equal(nas_targets_dir(tdir, sizeof tdir, &te), NAS_OK);
  snprintf(c.target, sizeof c.target, "%s/stm32f446re.json", tdir);
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
  if (nas_meas_write_csv(c.csv, rows, n, 180, &e)) fail_msg("%s", e.msg);
  if (fit_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  strcpy(c.ref, c.got);
  fault_case fc = {"fit", &c, NULL, fit_run, fit_check, 1};
  faultsim(&fc);
}

/* ---- export ---------------------------------------------------------------------------- */

/* Calibration on a test-written set, lowering, and the TFLite and C exporters. */
typedef struct export_ctx {
  nas_net *net;   /* built once */
  nas_data d;     /* calibration set */
  char out[300];  /* C export directory */
  size_t ref_len, len;        /* the .tflite's size */
  int8_t ref_y[3], y[3];      /* the parsed-back graph's output on the first test sample */
} export_ctx;

/* ... and the .tflite parsed back and run on one sample. */
static int export_run(void *p, nas_err *e) {
  export_ctx *c = p;
  nas_g8_graph g = {0}, back = {0};
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 16;
  cc.method = NAS_CALIB_PERCENTILE, cc.percentile = 99.9; /* histograms too */
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = nas_quantize_net(c->net, &c->d.train, &cc, NULL, &g, e);
  if (!rc) rc = nas_tflite_write_mem(&g, "fault", &buf, &len, e);
  if (!rc) rc = nas_c_export(&g, "fault_net", c->out, e);
  if (!rc) rc = nas_tflite_parse(buf, len, "fault.tflite", &back, e);
  int8_t x[100];
  if (!rc) {
    assert_int_equal(nas_g8_numel(&back.tensors[back.input]), sizeof x);
    assert_int_equal(nas_g8_numel(&back.tensors[back.output]), sizeof c->y);
    nas_g8_quantize_input(&back, c->d.test.x, x);
    rc = nas_g8_run(&back, x, c->y, e);
  }
  if (!rc) c->len = len;
  free(buf);
  nas_g8_graph_free(&back);
  nas_g8_graph_free(&g);
  return rc;
}

static void export_check(void *p, int rc, int hit) {
  export_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_int_equal(c->len, c->ref_len);
  assert_memory_equal(c->y, c->ref_y, sizeof c->y);
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
  memcpy(c.ref_y, c.y, sizeof c.y);
  fault_case fc = {"export", &c, NULL, export_run, export_check, 1};
  faultsim(&fc);
  nas_net_free(c.net);
  nas_data_free(&c.d);
}

static int setup(void **st) {
  (void)st;
  if (fault_setup()) return -1;
  char dir[300]; /* the IDX set of train, qat and export */
  snprintf(dir, sizeof dir, "%s/idx", g_dir);
  if (mkdir(dir, 0755)) return -1;
  test_write_bar_idx(dir, "train", 24, 1);
  test_write_bar_idx(dir, "t10k", 8, 2);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  return fault_teardown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train), cmocka_unit_test(test_qat), cmocka_unit_test(test_speech),
      cmocka_unit_test(test_price), cmocka_unit_test(test_fit), cmocka_unit_test(test_space),
      cmocka_unit_test(test_export),
  };
  fault_filter();
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
