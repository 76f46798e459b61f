/* tests/test_speech.c: the Speech Commands reader (WAV decoding and its failure modes, list
 * splits, 12/35-class tasks), MFCC/log-mel against a torchaudio fixture
 * (tests/fixtures/mfcc.txt from tests/fixtures/make_mfcc_fixture.py), the feature cache
 * (parameter change, corruption), the spec, augmentation, and synth-kws with its N_UNKNOWN,
 * SPLIT=voice and LISTS_ONLY settings (skipped without espeak-ng and sox). Every test writes
 * its files under a fresh mkdtemp directory; augmentation in training: test_speech_aug.c. */
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

#include "datasets/features.h"
#include "datasets/speech.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Measured max |C - torchaudio| on the fixture (float32 FFT vs float64 reference), Release,
 * x86-64: mfcc 6.8e-6 (30 ms) / 6.1e-6 (40 ms), log-mel 1.7e-5 / 1.6e-5 (test_mfcc_fixture prints it).
 * The tolerance is about 6x the largest measurement. */
#define TOL_MFCC 1e-4
#define TOL_LOGMEL 1e-4

#include "tests/test_speech_util.h"
#include "tests/test_util.h"

/* ---- WAV decoding ---- */

static void test_wav_read(void **state) {
  (void)state;
  char dir[256], p[512];
  snprintf(dir, sizeof dir, "%s/wav", g_root);
  mkdirp(dir);
  float *x;
  int n;
  nas_err e = {0};

  snprintf(p, sizeof p, "%s/good.wav", dir);
  write_wav(p, 16000, 1, PCM16, 12000, 1);
  assert_int_equal(nas_wav_read(p, &x, &n, &e), NAS_OK);
  assert_int_equal(n, 12000);
  assert_true(fabsf(x[100] - 0.3f * (float)sin(2.0 * M_PI * 250.0 * 100 / 16000) - 0.001f) < 1e-4f);
  free(x);

  struct {
    const char *name, *want;
  } bad[] = {{"rate8k.wav", "8000"}, {"stereo.wav", "channels"}, {"float.wav", "not integer PCM"},
             {"trunc.wav", "truncated"}, {"text.wav", "not a readable"}, {"empty.wav", "not a readable"}};
  snprintf(p, sizeof p, "%s/%s", dir, bad[0].name);
  write_wav(p, 8000, 1, PCM16, 8000, 2);
  snprintf(p, sizeof p, "%s/%s", dir, bad[1].name);
  write_wav(p, 16000, 2, PCM16, 16000, 3);
  snprintf(p, sizeof p, "%s/%s", dir, bad[2].name);
  write_wav(p, 16000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 4);
  snprintf(p, sizeof p, "%s/%s", dir, bad[3].name);
  write_wav(p, 16000, 1, PCM16, 16000, 5);
  assert_int_equal(truncate(p, 10000), 0);
  snprintf(p, sizeof p, "%s/%s", dir, bad[4].name);
  write_text(p, "this is not a wav file at all\n");
  snprintf(p, sizeof p, "%s/%s", dir, bad[5].name);
  write_text(p, "");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, bad[i].name);
    nas_err_clear(&e);
    assert_int_not_equal(nas_wav_read(p, &x, &n, &e), NAS_OK);
    assert_null(x);
    if (!strstr(e.msg, bad[i].want) || !strstr(e.msg, bad[i].name)) fail_msg("%s: %s", bad[i].name, e.msg);
  }
}

static void test_tree_12(void **state) {
  (void)state;
  char dir[256];
  snprintf(dir, sizeof dir, "%s/sc12", g_root);
  make_tree(dir, 1);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  warnings w = {0};
  o.warn = on_warn;
  o.warn_user = &w;
  nas_data d;
  nas_speech_stats st;
  nas_err e = {0};
  int rc = nas_speech_load_dir(dir, &o, &d, &st, &e);
  if (rc) fail_msg("%s", e.msg);
  assert_int_equal(st.skipped, 5);
  assert_int_equal(w.n, 6); /* one per file, then the count */
  assert_non_null(strstr(w.last, "5 files skipped"));
  assert_int_equal(st.files_seen, 60 + 10 + 5);
  assert_int_equal(d.train.h, 49);
  assert_int_equal(d.train.w, 10);
  assert_int_equal(d.train.c, 1);
  assert_int_equal(d.train.classes, 12);
  int c[12];
  /* train: 16 per keyword; K = 48 + 5 broken planned = 53 -> 5 unknown, 5 silence */
  count_labels(&d.train, c, 12);
  assert_int_equal(c[0], 16);
  assert_int_equal(c[1], 16);
  assert_int_equal(c[9], 16);
  assert_int_equal(c[10], 5);
  assert_int_equal(c[11], 5);
  assert_int_equal(c[2] + c[3] + c[4] + c[5] + c[6] + c[7] + c[8], 0);
  /* validation: 2 per keyword, K = 6 -> 1 unknown (cat/c0 is the only candidate), 1 silence */
  count_labels(&d.val, c, 12);
  assert_int_equal(c[0] + c[1] + c[9], 6);
  assert_int_equal(c[10], 1);
  assert_int_equal(c[11], 1);
  assert_int_equal(d.val.n, 8);
  count_labels(&d.test, c, 12);
  assert_int_equal(c[0], 2);
  assert_int_equal(c[10], 1);
  assert_int_equal(c[11], 1);
  assert_int_equal(d.test.n, 8);
  /* normalised train features: mean 0, std 1 */
  double s1 = 0, s2 = 0;
  size_t m = (size_t)d.train.n * 490;
  for (size_t i = 0; i < m; i++) {
    s1 += d.train.x[i];
    s2 += (double)d.train.x[i] * d.train.x[i];
  }
  assert_true(fabs(s1 / m) < 1e-4);
  assert_true(fabs(s2 / m - 1.0) < 1e-3);
  /* same seed, same data; the same warnings again, to another receiver */
  nas_data d2;
  warnings w2 = {0};
  o.warn_user = &w2;
  assert_int_equal(nas_speech_load_dir(dir, &o, &d2, NULL, &e), NAS_OK);
  assert_int_equal(d2.train.n, d.train.n);
  assert_memory_equal(d2.train.x, d.train.x, sizeof(float) * m);
  assert_memory_equal(d2.train.y, d.train.y, sizeof(int) * (size_t)d.train.n);
  assert_int_equal(w2.n, 6);
  nas_data_free(&d2);
  /* train_limit */
  o.warn = NULL;
  o.train_limit = 10;
  assert_int_equal(nas_speech_load_dir(dir, &o, &d2, NULL, &e), NAS_OK);
  assert_int_equal(d2.train.n, 10);
  assert_int_equal(d2.val.n, 8);
  nas_data_free(&d2);
  /* through a dataset spec, nas_data_opts carries the warning callback */
  char spec[400];
  snprintf(spec, sizeof spec, "speech-commands:%s,cache=none", dir);
  nas_data_opts dopts;
  nas_data_opts_default(&dopts, spec);
  warnings w3 = {0};
  dopts.warn = on_warn, dopts.warn_user = &w3;
  assert_int_equal(nas_data_load(&dopts, &d2, &e), NAS_OK);
  assert_int_equal(w3.n, 6);
  assert_non_null(strstr(w3.last, "5 files skipped"));
  nas_data_free(&d2);
  nas_data_free(&d);
}

static void test_tree_35(void **state) {
  (void)state;
  char dir[256];
  snprintf(dir, sizeof dir, "%s/sc35", g_root);
  make_tree(dir, 0);
  char p[512];
  snprintf(p, sizeof p, "%s/notaword", dir);
  mkdirp(p);
  snprintf(p, sizeof p, "%s/notaword/x.wav", dir);
  write_wav(p, 16000, 1, PCM16, 16000, 1);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  o.task = 35;
  warnings w = {0};
  o.warn = on_warn;
  o.warn_user = &w;
  nas_data d;
  nas_err e = {0};
  if (nas_speech_load_dir(dir, &o, &d, NULL, &e)) fail_msg("%s", e.msg);
  assert_int_equal(w.n, 1); /* the folder that is not a word */
  assert_non_null(strstr(w.last, "notaword"));
  assert_int_equal(d.train.classes, 35);
  int c[35];
  count_labels(&d.train, c, 35);
  assert_int_equal(c[33], 16); /* yes */
  assert_int_equal(c[18], 16); /* no */
  assert_int_equal(c[11], 16); /* go */
  assert_int_equal(c[3], 4);   /* cat: c0 is in validation */
  assert_int_equal(c[4], 4);   /* dog: d0 is in testing */
  assert_int_equal(d.train.n, 56);
  count_labels(&d.val, c, 35);
  assert_int_equal(c[3], 1);
  assert_int_equal(d.val.n, 7);
  count_labels(&d.test, c, 35);
  assert_int_equal(c[4], 1);
  assert_int_equal(d.test.n, 7);
  nas_data_free(&d);
}

static void test_nothing_usable(void **state) {
  (void)state;
  char dir[256], p[512];
  snprintf(dir, sizeof dir, "%s/broken", g_root);
  mkdirp(dir);
  snprintf(p, sizeof p, "%s/yes", dir);
  mkdirp(p);
  snprintf(p, sizeof p, "%s/yes/a.wav", dir);
  write_wav(p, 8000, 1, PCM16, 8000, 1);
  snprintf(p, sizeof p, "%s/validation_list.txt", dir);
  write_text(p, "");
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  nas_data d;
  nas_err e = {0};
  /* no testing_list.txt */
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, NULL, &e), NAS_EIO);
  assert_non_null(strstr(e.msg, "testing_list.txt"));
  snprintf(p, sizeof p, "%s/testing_list.txt", dir);
  write_text(p, "");
  nas_err_clear(&e);
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, NULL, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, dir));
  assert_non_null(strstr(e.msg, "no usable"));
  nas_err_clear(&e);
  snprintf(p, sizeof p, "%s/missing", g_root);
  assert_int_equal(nas_speech_load_dir(p, &o, &d, NULL, &e), NAS_EIO);
}

/* ---- MFCC against torchaudio ---- */

static void test_signal(float *x) {
  uint64_t s = 12345;
  for (int i = 0; i < 16000; i++) {
    s = (s * 1103515245ULL + 12345ULL) % (1ULL << 31);
    double u = (double)s / (double)(1ULL << 31) - 0.5;
    double t = i / 16000.0;
    double env = t < 0.75 ? 1.0 : 0.001;
    x[i] = (float)(env * (0.3 * sin(2 * M_PI * 440 * t) +
                          0.2 * sin(2 * M_PI * (200 * t + 1500 * t * t)) + 0.1 * u));
  }
}

static void test_mfcc_fixture(void **state) {
  (void)state;
  const char *src = getenv("NAS_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/mfcc.txt", src ? src : NAS_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("missing %s (run tests/fixtures/make_mfcc_fixture.py)", path);
  float *x = malloc(sizeof(float) * 16000), *got = malloc(sizeof(float) * 49 * 40);
  double *want = malloc(sizeof(double) * 49 * 40);
  test_signal(x);
  char line[4096];
  int blocks = 0;
  while (fgets(line, sizeof line, f)) {
    char name[16];
    int wms, rows, cols;
    if (line[0] == '#') continue;
    assert_int_equal(sscanf(line, "%15s %d %d %d", name, &wms, &rows, &cols), 4);
    assert_true(rows * cols <= 49 * 40);
    for (int i = 0; i < rows * cols; i++) assert_int_equal(fscanf(f, "%lf", &want[i]), 1);
    if (!fgets(line, sizeof line, f)) break; /* rest of the last row */
    nas_feat_params p;
    nas_feat_params_default(&p);
    p.window_ms = wms;
    p.kind = strcmp(name, "mfcc") ? NAS_FEAT_LOGMEL : NAS_FEAT_MFCC;
    nas_feat *fx;
    nas_err e = {0};
    assert_int_equal(nas_feat_build(&p, 16000, &fx, &e), NAS_OK);
    int fr, w;
    nas_feat_shape(fx, &fr, &w);
    assert_int_equal(fr, rows);
    assert_int_equal(w, cols);
    nas_feat_compute(fx, x, got);
    double maxd = 0;
    for (int i = 0; i < rows * cols; i++) {
      double dd = fabs(got[i] - want[i]);
      maxd = dd > maxd ? dd : maxd;
    }
    printf("# %s %d ms: max |C - torchaudio| = %.3g\n", name, wms, maxd);
    assert_true(maxd < (p.kind == NAS_FEAT_MFCC ? TOL_MFCC : TOL_LOGMEL));
    nas_feat_free(fx);
    blocks++;
  }
  fclose(f);
  assert_int_equal(blocks, 4);
  free(x);
  free(got);
  free(want);
}

static void test_feat_params(void **state) {
  (void)state;
  nas_feat_params p;
  nas_feat *fx;
  nas_err e = {0};
  nas_feat_params_default(&p);
  p.n_mfcc = 41;
  assert_int_equal(nas_feat_build(&p, 16000, &fx, &e), NAS_EINVAL);
  assert_null(fx);
  nas_feat_params_default(&p);
  p.f_max = 9000;
  assert_int_equal(nas_feat_build(&p, 16000, &fx, &e), NAS_EINVAL);
  nas_feat_params_default(&p);
  nas_feat_params q = p;
  q.window_ms = 40;
  assert_true(nas_feat_params_hash(&p, 1) != nas_feat_params_hash(&q, 1));
  nas_feat_free(NULL);
}

/* ---- cache ---- */

static void test_cache(void **state) {
  (void)state;
  char dir[256], cache[256];
  snprintf(dir, sizeof dir, "%s/scc", g_root);
  snprintf(cache, sizeof cache, "%s/cache", g_root);
  make_tree(dir, 1);
  mkdirp(cache);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  o.cache_dir = cache;
  nas_data d0, d;
  nas_speech_stats st;
  nas_err e = {0};
  assert_int_equal(nas_speech_load_dir(dir, &o, &d0, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 0);
  assert_int_equal(st.cache_written, 1);
  char first[4096];
  snprintf(first, sizeof first, "%s", st.cache_path);
  /* hit: the same data, skipped count remembered */
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 1);
  assert_int_equal(st.skipped, 5);
  assert_int_equal(d.train.n, d0.train.n);
  assert_memory_equal(d.train.x, d0.train.x, sizeof(float) * 490 * (size_t)d0.train.n);
  assert_memory_equal(d.test.y, d0.test.y, sizeof(int) * (size_t)d0.test.n);
  nas_data_free(&d);
  /* a changed parameter: another key, recomputed */
  o.feat.window_ms = 40;
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 0);
  assert_int_equal(st.cache_written, 1);
  assert_string_not_equal(st.cache_path, first);
  nas_data_free(&d);
  o.feat.window_ms = 30;
  o.feat.kind = NAS_FEAT_LOGMEL;
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 0);
  assert_int_equal(d.train.w, 40);
  nas_data_free(&d);
  o.feat.kind = NAS_FEAT_MFCC;
  /* a changed file list: another key */
  char p[512];
  snprintf(p, sizeof p, "%s/no/extra.wav", dir);
  write_wav(p, 16000, 1, PCM16, 16000, 77);
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 0);
  assert_string_not_equal(st.cache_path, first);
  nas_data_free(&d);
  unlink(p);
  /* corrupt one byte of the features: detected by the checksum, rebuilt */
  FILE *f = fopen(first, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, 4000, SEEK_SET), 0);
  int ch = fgetc(f);
  assert_int_equal(fseek(f, 4000, SEEK_SET), 0);
  fputc(ch ^ 0x40, f);
  fclose(f);
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_string_equal(st.cache_path, first);
  assert_int_equal(st.from_cache, 0);
  assert_int_equal(st.cache_written, 1);
  assert_memory_equal(d.train.x, d0.train.x, sizeof(float) * 490 * (size_t)d0.train.n);
  nas_data_free(&d);
  /* truncated cache: rebuilt too; then a hit again */
  assert_int_equal(truncate(first, 100), 0);
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 0);
  nas_data_free(&d);
  assert_int_equal(nas_speech_load_dir(dir, &o, &d, &st, &e), NAS_OK);
  assert_int_equal(st.from_cache, 1);
  nas_data_free(&d);
  nas_data_free(&d0);
}

/* ---- spec ---- */

static void test_spec(void **state) {
  (void)state;
  char dir[256], spec[600];
  snprintf(dir, sizeof dir, "%s/scs", g_root);
  make_tree(dir, 0);
  nas_data_opts o;
  nas_data_opts_default(&o, "speech-commands");
  nas_data d;
  nas_err e = {0};
  snprintf(spec, sizeof spec, "%s,task=35,window_ms=40,features=logmel,cache=none", dir);
  if (nas_speech_load(spec, &o, &d, &e)) fail_msg("%s", e.msg);
  assert_int_equal(d.train.h, 49);
  assert_int_equal(d.train.w, 40);
  assert_int_equal(d.train.classes, 35);
  assert_string_equal(d.name, "speech-commands");
  nas_data_free(&d);
  /* default cache: a file in DIR */
  snprintf(spec, sizeof spec, "%s", dir);
  assert_int_equal(nas_speech_load(spec, &o, &d, &e), NAS_OK);
  assert_int_equal(d.train.w, 10);
  nas_data_free(&d);
  int found = 0;
  DIR *dd = opendir(dir);
  struct dirent *de;
  while ((de = readdir(dd)) != NULL) found += strncmp(de->d_name, "nas-speech-", 11) == 0;
  closedir(dd);
  assert_int_equal(found, 1);
  /* Each bad spec: the directory (or none) followed by the rest. */
  const struct {
    int with_dir;
    const char *rest;
  } bad[] = {{0, ",task=12"},    {1, ",task=20"},    {1, ",window_ms=25"}, {1, ",features=mel"},
             {1, ",colour=red"}, {1, ",task"},       {0, ""}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(spec, sizeof spec, "%s%s", bad[i].with_dir ? dir : "", bad[i].rest);
    nas_err_clear(&e);
    assert_int_equal(nas_speech_load(spec, &o, &d, &e), NAS_EINVAL);
    assert_true(strlen(e.msg) > 0);
  }
}

/* ---- augmentation ---- */

static void test_augment(void **state) {
  (void)state;
  float *clip = malloc(sizeof(float) * 16000), *a = malloc(sizeof(float) * 16000),
        *b = malloc(sizeof(float) * 16000);
  for (int i = 0; i < 16000; i++) clip[i] = (float)(i % 100) / 200.0f;
  float *nx = malloc(sizeof(float) * 20000);
  for (int i = 0; i < 20000; i++) nx[i] = (i % 2) ? 0.5f : -0.5f;
  int len = 20000;
  nas_speech_noise nz = {1, &nx, &len};
  nas_speech_aug ag = {0.8f, 0.1f, 100};
  nas_rng r1, r2;
  nas_rng_seed(&r1, 42);
  nas_rng_seed(&r2, 42);
  for (int k = 0; k < 20; k++) {
    nas_speech_augment(clip, a, &ag, &nz, &r1);
    nas_speech_augment(clip, b, &ag, &nz, &r2);
    assert_memory_equal(a, b, sizeof(float) * 16000);
  }
  /* without noise: a pure shift of at most 1600 samples */
  ag.noise_prob = 0.0f;
  for (int k = 0; k < 50; k++) {
    nas_speech_augment(clip, a, &ag, NULL, &r1);
    int shift = -100000;
    for (int s = -1600; s <= 1600 && shift == -100000; s++) {
      int ok = 1;
      for (int i = 2000; i < 14000 && ok; i++) ok = a[i] == clip[i - s];
      if (ok) shift = s;
    }
    assert_true(shift != -100000);
  }
  free(clip);
  free(a);
  free(b);
  free(nx);
}

/* ---- synth-kws ---- */

static int have(const char *prog) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
  return system(cmd) == 0;
}

static void test_synth_kws(void **state) {
  (void)state;
  if (!have("espeak-ng") || !have("sox"))
    test_skip("espeak-ng or sox not found (apt-get install espeak-ng sox)");
  const char *src = getenv("NAS_SOURCE_DIR");
  char dir[256], cmd[1024];
  snprintf(dir, sizeof dir, "%s/synth", g_root);
  snprintf(cmd, sizeof cmd, "bash %s/datasets/tools/synth-kws %s 3 >/dev/null 2>&1",
           src ? src : NAS_SOURCE_DIR, dir);
  assert_int_equal(system(cmd), 0);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  nas_data d;
  nas_speech_stats st;
  nas_err e = {0};
  if (nas_speech_load_dir(dir, &o, &d, &st, &e)) fail_msg("%s", e.msg);
  assert_int_equal(st.skipped, 0);
  assert_true(d.train.n > 0 && d.val.n + d.test.n > 0);
  int c[12];
  count_labels(&d.train, c, 12);
  for (int k = 0; k < 12; k++)
    if (c[k] == 0 && k != 10 && k != 11) fail_msg("class %d has no training clip", k);
  nas_data_free(&d);
}

/* Lines of a list file as "speaker" prefixes (the file name up to "_nohash_"), '\n'-joined
 * into out with a leading and trailing '\n' so " \nSPK\n" lookups are exact. */
static int speakers_of_list(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[512];
  int n = 0;
  snprintf(out, cap, "\n");
  while (fgets(line, sizeof line, f)) {
    char *slash = strchr(line, '/'), *cut = strstr(line, "_nohash_");
    assert_non_null(slash);
    assert_non_null(cut);
    *cut = 0;
    char key[300];
    snprintf(key, sizeof key, "\n%s\n", slash + 1);
    if (!strstr(out, key)) strncat(out, key + 1, cap - strlen(out) - 1);
    n++;
  }
  fclose(f);
  return n;
}

/* N_UNKNOWN sets the utterances per _unknown_ word; SPLIT=voice LISTS_ONLY=1 writes
 * speaker-disjoint lists for the same audio (here into a twin of symlinked folders). */
static void test_synth_kws_voice_split(void **state) {
  (void)state;
  if (!have("espeak-ng") || !have("sox"))
    test_skip("espeak-ng or sox not found (apt-get install espeak-ng sox)");
  const char *src = getenv("NAS_SOURCE_DIR");
  src = src ? src : NAS_SOURCE_DIR;
  char dir[256], twin[256], cmd[2048], p[512];
  snprintf(dir, sizeof dir, "%s/synthv", g_root);
  snprintf(twin, sizeof twin, "%s/synthv-voice", g_root);
  snprintf(cmd, sizeof cmd, "N_UNKNOWN=2 bash %s/datasets/tools/synth-kws %s 4 >/dev/null 2>&1",
           src, dir);
  assert_int_equal(system(cmd), 0);
  const char *words[2] = {"yes", "bed"};
  for (int k = 0; k < 2; k++) { /* 4 per keyword, 2 per unknown word */
    snprintf(p, sizeof p, "%s/%s", dir, words[k]);
    DIR *dd = opendir(p);
    assert_non_null(dd);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dd)) != NULL) n += strstr(de->d_name, ".wav") != NULL;
    closedir(dd);
    assert_int_equal(n, k == 0 ? 4 : 2);
  }
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s && for d in %s/*/; do ln -s \"$d\" %s/$(basename \"$d\"); done && "
           "SPLIT=voice LISTS_ONLY=1 N_UNKNOWN=2 bash %s/datasets/tools/synth-kws %s 4 >/dev/null 2>&1",
           twin, dir, twin, src, twin);
  assert_int_equal(system(cmd), 0);
  static char val[8192], test[8192];
  snprintf(p, sizeof p, "%s/validation_list.txt", twin);
  int nv = speakers_of_list(p, val, sizeof val);
  snprintf(p, sizeof p, "%s/testing_list.txt", twin);
  int nt = speakers_of_list(p, test, sizeof test);
  assert_true(nv > 0 && nt > 0);
  /* validation is one voice, testing two; none of them speaks a training clip */
  int lines = 0;
  for (const char *c = val; *c; c++) lines += *c == '\n';
  assert_int_equal(lines, 2);
  lines = 0;
  for (const char *c = test; *c; c++) lines += *c == '\n';
  assert_int_equal(lines, 3);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  nas_data d;
  nas_err e = {0};
  if (nas_speech_load_dir(twin, &o, &d, NULL, &e)) fail_msg("%s", e.msg);
  assert_true(d.train.n > 0 && d.val.n > 0 && d.test.n > 0);
  nas_data_free(&d);
  DIR *top = opendir(twin);
  assert_non_null(top);
  struct dirent *w;
  int train_files = 0;
  while ((w = readdir(top)) != NULL) {
    if (w->d_name[0] == '.' || w->d_name[0] == '_' || strstr(w->d_name, ".txt")) continue;
    snprintf(p, sizeof p, "%s/%s", twin, w->d_name);
    DIR *wd = opendir(p);
    assert_non_null(wd);
    struct dirent *f;
    while ((f = readdir(wd)) != NULL) {
      char *cut = strstr(f->d_name, "_nohash_");
      if (!cut) continue;
      char key[300];
      snprintf(key, sizeof key, "\n%.*s\n", (int)(cut - f->d_name), f->d_name);
      int in_val = strstr(val, key) != NULL, in_test = strstr(test, key) != NULL;
      assert_false(in_val && in_test);
      train_files += !in_val && !in_test;
    }
    closedir(wd);
  }
  closedir(top);
  assert_int_equal(train_files, 60 - nv - nt); /* every other clip is training data */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wav_read),     cmocka_unit_test(test_tree_12),
      cmocka_unit_test(test_tree_35),      cmocka_unit_test(test_nothing_usable),
      cmocka_unit_test(test_mfcc_fixture), cmocka_unit_test(test_feat_params),
      cmocka_unit_test(test_cache),        cmocka_unit_test(test_spec),
      cmocka_unit_test(test_augment),      cmocka_unit_test(test_synth_kws),
      cmocka_unit_test(test_synth_kws_voice_split),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
