/* Int8 recurrent layers: the fixed-point logistic/tanh of the runtime against the real
 * functions, the lowering of LSTM and GRU (alone, stacked, after a conv front end) against
 * the float network, the host kernels against the MCU runtime byte for byte, the memory plan
 * of the state tensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "deploy/lower.h"
#include "export/export_tflite.h"
#include "runtime/nasrt_fxp.h"
#include "train/quant.h"

static nas_net *build(const char *json, int batch, uint64_t seed) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(json, "t.json", batch, seed, &n, &e)) fail_msg("build: %s", e.msg);
  return n;
}

static void ds_free(nas_dataset *d) { free(d->x), free(d->y); }

/* ---- fixed point ----------------------------------------------------------------------------- */

static void test_fxp(void **state) {
  (void)state;
  double worst16 = 0, worst32 = 0;
  /* int16 Q3.12 (the LSTM gates) and Q<ib>.<15-ib> (its cell), results Q0.15 */
  for (int ib = 0; ib <= 6; ib++)
    for (int32_t v = -32768; v <= 32767; v += 7) {
      const double x = ldexp(v, ib - 15);
      const double s = nasrt_fx_logistic(v, ib, 16) / 32768.0, t = nasrt_fx_tanh(v, ib, 16) / 32768.0;
      const double es = fabs(s - 1 / (1 + exp(-x))), et = fabs(t - tanh(x));
      worst16 = fmax(worst16, fmax(es, et));
    }
  /* int32 Q4.27 (LOGISTIC, TANH on int8), results Q0.31 */
  for (int64_t v = -((int64_t)1 << 31); v < ((int64_t)1 << 31); v += 12345679) {
    const double x = ldexp((double)v, -27);
    const double s = nasrt_fx_logistic((int32_t)v, 4, 32) / 2147483648.0;
    const double t = nasrt_fx_tanh((int32_t)v, 4, 32) / 2147483648.0;
    worst32 = fmax(worst32, fmax(fabs(s - 1 / (1 + exp(-x))), fabs(t - tanh(x))));
  }
  print_message("fixed-point logistic/tanh: worst error int16 %.2e, int32 %.2e\n", worst16, worst32);
  assert_true(worst16 < 5e-4); /* gemmlowp int16: ~12 steps of 2^-15 at worst (measured 3.7e-4) */
  assert_true(worst32 < 1e-6);
  assert_int_equal(nasrt_fx_logistic(0, 3, 16), 16384);
  assert_int_equal(nasrt_fx_tanh(0, 3, 16), 0);
  assert_int_equal(nasrt_fx_logistic(-32768, 3, 16), nasrt_fx_logistic(-32767, 3, 16));
}

static size_t arena_of(const nas_g8_graph *g) {
  nas_g8_plan p;
  nas_err e = {0};
  if (nas_g8_plan_build(g, &p, &e)) fail_msg("plan: %s", e.msg);
  size_t peak = p.peak;
  nas_g8_plan_free(&p);
  return peak;
}

/* ---- TFLite -------------------------------------------------------------------------------- */

static const char *src_dir(void) {
  const char *s = getenv("NAS_SOURCE_DIR");
  return s ? s : NAS_SOURCE_DIR;
}

/* 1 when tests/fixtures/tflite_run.py can load TensorFlow Lite 2.9 (checked once). */
static int have_tflite(void) {
  static int cached = -1;
  if (cached < 0) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/fixtures/tflite_run.py' --version",
             src_dir());
    cached = access("/usr/bin/python3", X_OK) == 0 && system(cmd) == 0;
  }
  return cached;
}

static char g_dir[256]; /* scratch directory of this test program */

/* Writes g as a .tflite, reads it back (the same operators, and byte-identical outputs on x)
 * and, when TensorFlow Lite 2.9 is there, runs the file in it on the count inputs x; returns
 * the number of output elements that differ from ours and the largest difference in steps
 * (-1 when TFLite is missing). */
static int tflite_check(const char *tag, const nas_g8_graph *g, const int8_t *x, int count,
                        const int8_t *ours, int *max_diff) {
  char model[400], in[400], out[400], cmd[1600];
  snprintf(model, sizeof model, "%s/%s.tflite", g_dir, tag);
  nas_err e = {0};
  if (nas_tflite_write(g, tag, model, &e)) fail_msg("%s: write: %s", tag, e.msg);
  nas_g8_graph r;
  if (nas_tflite_read(model, &r, &e)) fail_msg("%s: read back: %s", tag, e.msg);
  assert_int_equal(r.nops, g->nops);
  assert_int_equal(r.ntensors, g->ntensors);
  const size_t ni = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *y = malloc(no);
  for (int s = 0; s < count; s++) {
    if (nas_g8_run(&r, x + (size_t)s * ni, y, &e)) fail_msg("%s: read back: %s", tag, e.msg);
    if (memcmp(y, ours + (size_t)s * no, no)) fail_msg("%s: the file read back computes otherwise", tag);
  }
  free(y);
  nas_g8_graph_free(&r);
  *max_diff = -1;
  if (!have_tflite()) return -1;
  snprintf(in, sizeof in, "%s/%s.in", g_dir, tag);
  snprintf(out, sizeof out, "%s/%s.out", g_dir, tag);
  FILE *f = fopen(in, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(x, 1, ni * (size_t)count, f), ni * (size_t)count);
  assert_int_equal(fclose(f), 0);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/fixtures/tflite_run.py' '%s' '%s' '%s'",
           src_dir(), model, in, out);
  const int st = system(cmd);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("%s: TFLite 2.9 did not run the model", tag);
  f = fopen(out, "rb");
  assert_non_null(f);
  int8_t *t = malloc(no * (size_t)count);
  assert_int_equal(fread(t, 1, no * (size_t)count, f), no * (size_t)count);
  fclose(f);
  int ndiff = 0;
  *max_diff = 0;
  for (size_t k = 0; k < no * (size_t)count; k++) {
    const int d = abs(t[k] - ours[k]);
    ndiff += d != 0;
    if (d > *max_diff) *max_diff = d;
  }
  free(t);
  return ndiff;
}

/* ---- lowering ------------------------------------------------------------------------------- */

/* Lowers net calibrated on d, runs every sample through the int8 graph (host kernels) and the
 * MCU runtime, checks they agree byte for byte, and returns the share of samples whose int8
 * class equals the float network's and the largest logit difference in output steps. */
static void check_net(const char *tag, nas_net *n, const nas_dataset *d, double *agree,
                      double *max_steps, int *tfl_ndiff, int *tfl_max) {
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_quantize_net(n, d, NULL, NULL, &g, &e)) fail_msg("%s: %s", tag, e.msg);
  const nas_g8_tensor *to = &g.tensors[g.output];
  const size_t ni = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(to);
  int8_t *xs = malloc(ni * (size_t)d->n), *ys = malloc(no * (size_t)d->n);
  int8_t *in = malloc(ni), *y = malloc(no), *y2 = malloc(no);
  nas_graph *fg = n->g;
  fg->training = 0;
  int same = 0;
  *max_steps = 0;
  for (int s = 0; s < d->n; s++) {
    nas_g8_quantize_input(&g, d->x + (size_t)s * ni, in);
    if (nas_g8_run(&g, in, y, &e)) fail_msg("%s: %s", tag, e.msg);
    if (nas_g8_rt_run(&g, in, y2, &e)) fail_msg("%s: %s", tag, e.msg);
    if (memcmp(y, y2, no)) fail_msg("%s: sample %d: host and MCU runtime differ", tag, s);
    memcpy(fg->nodes[n->input].val, d->x + (size_t)s * ni, sizeof(float) * ni);
    nas_graph_forward(fg, 1, n->logits);
    const float *lf = fg->nodes[n->logits].val;
    int bf = 0, bq = 0;
    for (size_t k = 0; k < no; k++) {
      const double q = (lf[k] / to->scale[0]) + to->zero_point[0];
      *max_steps = fmax(*max_steps, fabs(q - y[k]));
      if (lf[k] > lf[bf]) bf = (int)k;
      if (y[k] > y[bq]) bq = (int)k;
    }
    same += bf == bq;
    memcpy(xs + (size_t)s * ni, in, ni), memcpy(ys + (size_t)s * no, y, no);
  }
  *agree = (double)same / d->n;
  *tfl_ndiff = tflite_check(tag, &g, xs, d->n, ys, tfl_max);
  print_message("%s: TFLite 2.9: %d of %zu output values differ, by at most %d\n", tag, *tfl_ndiff,
                no * (size_t)d->n, *tfl_max);
  free(xs), free(ys);
  print_message("%s: %d ops, %d tensors, arena %zu B: int8 class = float class for %.0f%%, "
                "logits within %.1f steps\n", tag, g.nops, g.ntensors, arena_of(&g), 100 * *agree,
                *max_steps);
  free(in), free(y), free(y2);
  nas_g8_graph_free(&g);
}

/* min_agree, max_steps_ok: int8 vs float; tfl_ndiff, tfl_steps: the most output values that
 * may differ from TensorFlow Lite 2.9 and by how many steps (measured, see docs/agreement.md). */
static void lower_case(const char *tag, const char *json, int h, int w, int c, double min_agree,
                       double max_steps_ok, int tfl_ndiff, int tfl_steps) {
  nas_net *n = build(json, 16, 3);
  nas_dataset d = {0};
  test_make_noise(&d, 48, h, w, c, n->classes, 7);
  double agree, steps;
  int nd, md;
  check_net(tag, n, &d, &agree, &steps, &nd, &md);
  assert_true(agree >= min_agree);
  assert_true(steps <= max_steps_ok);
  if (nd >= 0) { /* TFLite 2.9 ran it */
    if (nd > tfl_ndiff || md > tfl_steps)
      fail_msg("%s: %d values differ from TFLite 2.9 by up to %d (allowed %d, %d)", tag, nd, md,
               tfl_ndiff, tfl_steps);
  }
  ds_free(&d);
  nas_net_free(n);
}

static void test_lower_lstm(void **state) {
  (void)state;
  lower_case("lstm", "{\"input\":[7,5,1],\"classes\":4,\"layers\":[{\"op\":\"lstm\",\"units\":12},"
             "{\"op\":\"fc\",\"out\":4}]}", 7, 5, 1, 0.85, 6, 0, 0);
  lower_case("lstm-seq-lstm", "{\"input\":[6,4,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\",\"units\":8,"
             "\"return_sequences\":true},{\"op\":\"lstm\",\"units\":6},{\"op\":\"fc\",\"out\":3}]}",
             6, 4, 1, 0.85, 6, 1, 1);
}

static void test_lower_gru(void **state) {
  (void)state;
  lower_case("gru", "{\"input\":[7,5,1],\"classes\":4,\"layers\":[{\"op\":\"gru\",\"units\":12},"
             "{\"op\":\"fc\",\"out\":4}]}", 7, 5, 1, 0.85, 6, 5, 1);
  lower_case("crnn", "{\"input\":[12,6,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":4,"
             "\"k\":[3,3],\"stride\":[1,1],\"padding\":\"valid\",\"bn\":false,\"act\":\"relu\"},"
             "{\"op\":\"gru\",\"units\":8,\"return_sequences\":true},{\"op\":\"gru\",\"units\":6},"
             "{\"op\":\"fc\",\"out\":5,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":4}]}", 12, 6, 1, 0.8, 8, 8, 1);
  lower_case("gru-seq-lstm", "{\"input\":[6,4,1],\"classes\":3,\"layers\":[{\"op\":\"gru\",\"units\":8,"
             "\"return_sequences\":true},{\"op\":\"lstm\",\"units\":6},{\"op\":\"fc\",\"out\":3}]}",
             6, 4, 1, 0.8, 8, 1, 1);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/nas_test_rnn8_XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fxp),
      cmocka_unit_test(test_lower_lstm),
      cmocka_unit_test(test_lower_gru),
  };
  const int rc = cmocka_run_group_tests(tests, NULL, NULL);
  test_rm_rf(g_dir);
  return test_exit(rc);
}
