/* tests/test_speech_aug.c: augmentation of Speech Commands training clips: the waveform
 * augmentation's noise level, mixing probability and shift range; the augmented feature
 * variants a load with aug_n > 0 attaches to the training split (differ from the clean
 * features, deterministic for a seed, follow train_limit, never on val/test); their cache
 * (key changes with every augmentation parameter, corruption rebuilds); the aug_* spec keys;
 * and that training draws from the variants. Files go under a fresh mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/speech.h"
#include "tests/test_speech_util.h"
#include "train/net.h"
#include "train/trainer.h"
#include "tests/test_util.h"

#define FS 490 /* 49 x 10 MFCC values per clip */

/* ---- waveform augmentation ---- */

/* Noise: gain within [0, noise_volume], mixed with probability noise_prob; no noise at all
 * with prob 0. A zero clip and a noise recording of constant magnitude 0.5 make the gain
 * visible: out = +-0.5 g. */
static void test_noise_level_and_prob(void **state) {
  (void)state;
  float *zero = calloc(16000, sizeof(float)), *out = malloc(sizeof(float) * 16000);
  float *nx = malloc(sizeof(float) * 32000);
  assert_non_null(zero);
  assert_non_null(out);
  assert_non_null(nx);
  for (int i = 0; i < 32000; i++) nx[i] = (i % 2) ? 0.5f : -0.5f;
  int len = 32000;
  nas_speech_noise nz = {1, &nx, &len};
  nas_speech_aug ag = {0.3f, 0.05f, 0};
  nas_rng r;
  nas_rng_seed(&r, 9);
  int mixed = 0;
  float gmax = 0.0f;
  for (int k = 0; k < 2000; k++) {
    nas_speech_augment(zero, out, &ag, &nz, &r);
    float g = 2.0f * fabsf(out[0]);
    for (int i = 0; i < 16000; i++) assert_true(fabsf(2.0f * fabsf(out[i]) - g) < 1e-7f);
    assert_true(g <= 0.05f + 1e-7f);
    if (g > 0.0f) mixed++;
    if (g > gmax) gmax = g;
  }
  /* 2000 draws at p 0.3: 600 expected, sd 20 */
  assert_in_range(mixed, 500, 700);
  assert_true(gmax > 0.045f); /* the range is used up to its top */
  ag.noise_prob = 0.0f;
  for (int k = 0; k < 100; k++) {
    nas_speech_augment(zero, out, &ag, &nz, &r);
    for (int i = 0; i < 16000; i++) assert_true(out[i] == 0.0f);
  }
  free(zero);
  free(out);
  free(nx);
}

/* Shift: uniform in [-shift_ms, shift_ms]: never beyond, both directions, up to the edge. */
static void test_shift_range(void **state) {
  (void)state;
  float *clip = malloc(sizeof(float) * 16000), *out = malloc(sizeof(float) * 16000);
  assert_non_null(clip);
  assert_non_null(out);
  for (int i = 0; i < 16000; i++) clip[i] = (float)(i + 1) / 16000.0f; /* all distinct, > 0 */
  nas_speech_aug ag = {0.0f, 0.0f, 10}; /* 10 ms = 160 samples */
  nas_rng r;
  nas_rng_seed(&r, 3);
  int lo = 0, hi = 0;
  for (int k = 0; k < 400; k++) {
    nas_speech_augment(clip, out, &ag, NULL, &r);
    /* s >= 0: s zeros, then clip[0]; s < 0: out[0] is clip[-s] */
    int j = 0;
    while (j < 16000 && out[j] == 0.0f) j++;
    int s = j > 0 ? j : -((int)lroundf(out[0] * 16000.0f) - 1);
    assert_in_range(s + 160, 0, 320);
    for (int i = 0; i < 16000; i++) {
      int src = i - s;
      assert_true(out[i] == (src >= 0 && src < 16000 ? clip[src] : 0.0f));
    }
    lo = s < lo ? s : lo;
    hi = s > hi ? s : hi;
  }
  assert_true(lo < -140 && hi > 140); /* 400 draws over 321 values reach near both ends */
  free(clip);
  free(out);
}

/* ---- variants in a load ---- */

static void load(const char *dir, const nas_speech_opts *o, nas_data *d, nas_speech_stats *st) {
  nas_err e = {0};
  if (nas_speech_load_dir(dir, o, d, st, &e)) fail_msg("%s", e.msg);
}

static void make_dirs(const char *name, char *dir, char *cache) {
  snprintf(dir, 256, "%s/%s", g_root, name);
  snprintf(cache, 256, "%s/%s-cache", g_root, name);
  make_tree(dir, 0);
  mkdirp(cache);
}

/* Share of the variants that differ from their clean clip. */
static double share_differing(const nas_dataset *ds) {
  int diff = 0;
  for (int i = 0; i < ds->n; i++)
    for (int v = 0; v < ds->n_aug; v++)
      diff += memcmp(ds->x_aug + ((size_t)i * ds->n_aug + v) * FS, ds->x + (size_t)i * FS,
                     sizeof(float) * FS) != 0;
  return (double)diff / ((double)ds->n * ds->n_aug);
}

static void test_variants(void **state) {
  (void)state;
  char dir[256], cache[256];
  make_dirs("var", dir, cache);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  nas_data clean, d, d2;
  nas_speech_stats st;
  load(dir, &o, &clean, &st);
  assert_int_equal(clean.train.n_aug, 0);
  assert_null(clean.train.x_aug);
  o.aug_n = 3;
  load(dir, &o, &d, &st);
  /* the clean part is unchanged: same clips, same normalisation */
  assert_int_equal(d.train.n, clean.train.n);
  assert_true(d.mean == clean.mean && d.std == clean.std);
  assert_memory_equal(d.train.x, clean.train.x, sizeof(float) * FS * (size_t)d.train.n);
  assert_memory_equal(d.test.x, clean.test.x, sizeof(float) * FS * (size_t)d.test.n);
  assert_int_equal(d.train.n_aug, 3);
  assert_non_null(d.train.x_aug);
  assert_int_equal(d.val.n_aug, 0); /* never on val or test */
  assert_null(d.val.x_aug);
  assert_int_equal(d.test.n_aug, 0);
  assert_null(d.test.x_aug);
  assert_true(share_differing(&d.train) > 0.95);
  /* variants of one clip differ from each other */
  int same = 0;
  for (int i = 0; i < d.train.n; i++)
    same += !memcmp(d.train.x_aug + (size_t)i * 3 * FS, d.train.x_aug + ((size_t)i * 3 + 1) * FS,
                    sizeof(float) * FS);
  assert_true(same <= d.train.n / 20);
  /* deterministic: computed again from the WAV files, bit for bit */
  load(dir, &o, &d2, &st);
  assert_memory_equal(d.train.x_aug, d2.train.x_aug, sizeof(float) * FS * 3 * (size_t)d.train.n);
  nas_data_free(&d2);
  /* another seed, other variants */
  o.aug_seed = 2;
  load(dir, &o, &d2, &st);
  assert_memory_not_equal(d.train.x_aug, d2.train.x_aug, sizeof(float) * FS * 3 * (size_t)d.train.n);
  nas_data_free(&d2);
  /* no noise and no shift: every variant is the clean clip */
  o.aug.noise_volume = 0.0f;
  o.aug.shift_ms = 0;
  load(dir, &o, &d2, &st);
  assert_true(share_differing(&d2.train) == 0.0);
  nas_data_free(&d2);
  /* noise only (no shift), at a tiny volume: close to clean, still different */
  o.aug.noise_volume = 0.001f;
  o.aug.noise_prob = 1.0f;
  load(dir, &o, &d2, &st);
  assert_true(share_differing(&d2.train) > 0.95);
  nas_data_free(&d2);
  /* train_limit keeps the variants of the kept clips */
  nas_speech_opts_default(&o);
  o.aug_n = 3;
  o.train_limit = 7;
  load(dir, &o, &d2, &st);
  assert_int_equal(d2.train.n, 7);
  /* the normalisation differs (another training subset): compare de-normalised values */
  for (int k = 0; k < 7; k++) {
    int found = -1;
    for (int i = 0; i < d.train.n && found < 0; i++) {
      int eq = 1;
      for (int j = 0; j < FS && eq; j++) {
        float a = d.train.x[(size_t)i * FS + j] * d.std + d.mean;
        float b = d2.train.x[(size_t)k * FS + j] * d2.std + d2.mean;
        eq = fabsf(a - b) <= 1e-3f * (1.0f + fabsf(a));
      }
      if (eq) found = i;
    }
    assert_true(found >= 0);
    for (int j = 0; j < 3 * FS; j++) {
      float a = d.train.x_aug[(size_t)found * 3 * FS + j] * d.std + d.mean;
      float b = d2.train.x_aug[(size_t)k * 3 * FS + j] * d2.std + d2.mean;
      assert_true(fabsf(a - b) <= 1e-3f * (1.0f + fabsf(a)));
    }
  }
  nas_data_free(&d2);
  nas_data_free(&d);
  nas_data_free(&clean);
}

/* ---- the variant cache ---- */

static void test_variant_cache(void **state) {
  (void)state;
  char dir[256], cache[256];
  make_dirs("vc", dir, cache);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  o.cache_dir = cache;
  o.aug_n = 2;
  nas_data d0, d;
  nas_speech_stats st;
  load(dir, &o, &d0, &st);
  assert_int_equal(st.from_cache, 0);
  assert_int_equal(st.aug_from_cache, 0);
  assert_int_equal(st.aug_cache_written, 1);
  char feat[4096], first[4096];
  snprintf(feat, sizeof feat, "%s", st.cache_path);
  snprintf(first, sizeof first, "%s", st.aug_cache_path);
  assert_non_null(strstr(first, "/nas-speech-aug-"));
  /* a hit for both */
  load(dir, &o, &d, &st);
  assert_int_equal(st.from_cache, 1);
  assert_int_equal(st.aug_from_cache, 1);
  assert_memory_equal(d.train.x_aug, d0.train.x_aug, sizeof(float) * FS * 2 * (size_t)d0.train.n);
  nas_data_free(&d);
  /* every augmentation parameter changes the variant key, not the feature key */
  for (int k = 0; k < 5; k++) {
    nas_speech_opts q = o;
    if (k == 0) q.aug_n = 3;
    if (k == 1) q.aug.noise_prob = 0.5f;
    if (k == 2) q.aug.noise_volume = 0.2f;
    if (k == 3) q.aug.shift_ms = 50;
    if (k == 4) q.aug_seed = 7;
    load(dir, &q, &d, &st);
    assert_string_equal(st.cache_path, feat);
    assert_string_not_equal(st.aug_cache_path, first);
    assert_int_equal(st.aug_from_cache, 0);
    assert_int_equal(st.from_cache, 0); /* features are recomputed with their variants */
    assert_int_equal(st.aug_cache_written, 1);
    nas_data_free(&d);
  }
  /* without variants: the feature cache alone, no variant file named */
  nas_speech_opts q = o;
  q.aug_n = 0;
  load(dir, &q, &d, &st);
  assert_int_equal(st.from_cache, 1);
  assert_string_equal(st.aug_cache_path, "");
  assert_null(d.train.x_aug);
  nas_data_free(&d);
  /* a corrupt variant cache: detected, both recomputed, the same values */
  FILE *f = fopen(first, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, 3000, SEEK_SET), 0);
  int ch = fgetc(f);
  assert_int_equal(fseek(f, 3000, SEEK_SET), 0);
  fputc(ch ^ 0x10, f);
  fclose(f);
  load(dir, &o, &d, &st);
  assert_int_equal(st.aug_from_cache, 0);
  assert_int_equal(st.aug_cache_written, 1);
  assert_memory_equal(d.train.x_aug, d0.train.x_aug, sizeof(float) * FS * 2 * (size_t)d0.train.n);
  nas_data_free(&d);
  load(dir, &o, &d, &st);
  assert_int_equal(st.aug_from_cache, 1);
  nas_data_free(&d);
  nas_data_free(&d0);
}

/* ---- spec ---- */

static void test_aug_spec(void **state) {
  (void)state;
  char dir[256], spec[700];
  snprintf(dir, sizeof dir, "%s/sp", g_root);
  make_tree(dir, 0);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  assert_int_equal(o.aug_n, 0);
  assert_true(o.aug.noise_prob == 0.8f && o.aug.noise_volume == 0.1f && o.aug.shift_ms == 100);
  assert_true(o.aug_seed == 1);
  char d[512];
  nas_err e = {0};
  snprintf(spec, sizeof spec, "%s,aug=4,aug_noise=0.5,aug_volume=0.25,aug_shift_ms=40,aug_seed=99", dir);
  assert_int_equal(nas_speech_parse_spec(spec, d, sizeof d, &o, &e), NAS_OK);
  assert_string_equal(d, dir);
  assert_int_equal(o.aug_n, 4);
  assert_true(o.aug.noise_prob == 0.5f && o.aug.noise_volume == 0.25f && o.aug.shift_ms == 40);
  assert_true(o.aug_seed == 99);
  nas_data_opts dopts;
  nas_data_opts_default(&dopts, "speech-commands");
  nas_data data;
  snprintf(spec, sizeof spec, "%s,aug=2,cache=none", dir);
  if (nas_speech_load(spec, &dopts, &data, &e)) fail_msg("%s", e.msg);
  assert_int_equal(data.train.n_aug, 2);
  assert_non_null(data.train.x_aug);
  nas_data_free(&data);
  const char *bad[] = {"aug=65", "aug=-1", "aug=x", "aug=", "aug_noise=1.5", "aug_noise=nan",
                       "aug_volume=-0.1", "aug_volume=2", "aug_shift_ms=2000",
                       "aug_shift_ms=5.5", "aug_seed=abc", "aug_seed=-3", "aug_colour=1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(spec, sizeof spec, "%s,%s", dir, bad[i]);
    nas_err_clear(&e);
    assert_int_equal(nas_speech_load(spec, &dopts, &data, &e), NAS_EINVAL);
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)strcspn(bad[i], "="), bad[i]);
    if (!strstr(e.msg, key)) fail_msg("message '%s' does not name '%s'", e.msg, key);
  }
  /* out-of-range options given directly are refused too */
  nas_speech_opts_default(&o);
  o.aug_n = 2;
  o.aug.noise_volume = 3.0f;
  nas_err_clear(&e);
  assert_int_equal(nas_speech_load_dir(dir, &o, &data, NULL, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "aug_volume"));
}

/* ---- training uses the variants ---- */

static double train_loss(const nas_data *d) {
  static const char *ARCH =
      "{\"input\":[49,10,1],\"classes\":12,\"layers\":[{\"op\":\"conv\",\"out\":4,\"k\":3,"
      "\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":12}]}";
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(ARCH, "tiny.json", 16, 3, &net, &e)) fail_msg("%s", e.msg);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 2;
  cfg.batch = 16;
  nas_train_result r;
  if (nas_train(net, d, &cfg, &r, &e)) fail_msg("%s", e.msg);
  nas_net_free(net);
  return r.final_loss;
}

/* The trainer's batches draw from the variants (a different, reproducible run); without
 * them, the same run as before. */
static void test_training_draws_variants(void **state) {
  (void)state;
  char dir[256], cache[256];
  make_dirs("tr", dir, cache);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  o.aug_n = 2;
  nas_data d;
  load(dir, &o, &d, NULL);
  double with1 = train_loss(&d), with2 = train_loss(&d);
  assert_true(with1 == with2); /* deterministic for a seed */
  float *xa = d.train.x_aug;
  int na = d.train.n_aug;
  d.train.x_aug = NULL;
  d.train.n_aug = 0;
  double without = train_loss(&d);
  assert_true(without != with1);
  /* the same draws (same rng sequence) over variants replaced by clean copies: another loss,
   * so what the variants hold reaches training, not only the extra rng draws */
  for (int i = 0; i < d.train.n; i++)
    for (int v = 0; v < na; v++)
      memcpy(xa + ((size_t)i * na + v) * FS, d.train.x + (size_t)i * FS, sizeof(float) * FS);
  d.train.x_aug = xa;
  d.train.n_aug = na;
  double clean_copies = train_loss(&d);
  assert_true(clean_copies != with1); /* the variants' content reaches the loss */
  nas_data_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_noise_level_and_prob),
      cmocka_unit_test(test_shift_range),
      cmocka_unit_test(test_variants),
      cmocka_unit_test(test_variant_cache),
      cmocka_unit_test(test_aug_spec),
      cmocka_unit_test(test_training_draws_variants),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
