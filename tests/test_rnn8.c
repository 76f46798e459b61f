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
#include "tests/test_deploy_util.h"

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

/* Runs the .tflite file model in TensorFlow Lite 2.9 on count inputs x (ni bytes each);
 * returns its outputs (no bytes each; caller frees). */
static int8_t *tflite_run_file(const char *tag, const char *model, const int8_t *x, size_t ni,
                               int count, size_t no) {
  char in[400], out[400], cmd[1600];
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
  return t;
}

/* Writes g as a .tflite, reads it back (the same operators, and byte-identical outputs on x)
 * and, when TensorFlow Lite 2.9 is there, runs the file in it on the count inputs x; returns
 * the number of output elements that differ from ours and the largest difference in steps
 * (-1 when TFLite is missing). */
static int tflite_check(const char *tag, const nas_g8_graph *g, const int8_t *x, int count,
                        const int8_t *ours, int *max_diff) {
  char model[400];
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
  int8_t *t = tflite_run_file(tag, model, x, ni, count, no);
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

/* For a model ending in a FULLY_CONNECTED that TFLite 2.9 runs with differences from ours
 * (ys, on the count inputs xs): the model cut before that operator (the recurrent layers and
 * the slice of their last step) gives identical bytes in TFLite, and every differing output
 * is TFLite = ours +- 1 with the exact real-valued result (deploy_exact_op) within TFLite's
 * double-rounding window of the half-integer between the two: near-ties of the FC's
 * requantisation, as for CONV_2D in test_deploy_tflite.c (docs/agreement.md). Returns the
 * differences checked. */
static int fc_near_ties(const char *tag, nas_g8_graph *g, const int8_t *xs, int count,
                        const int8_t *ys) {
  const int k = g->nops - 1;
  const nas_g8_op *op = &g->ops[k];
  assert_int_equal(op->kind, NAS_G8_FULLY_CONNECTED);
  const int pt = op->in[0];
  const size_t ni = nas_g8_numel(&g->tensors[g->input]), np = nas_g8_numel(&g->tensors[pt]),
               no = nas_g8_numel(&g->tensors[g->output]);
  char cut[400], full[400], ctag[64];
  snprintf(ctag, sizeof ctag, "%s-cut", tag);
  snprintf(cut, sizeof cut, "%s/%s.tflite", g_dir, ctag);
  snprintf(full, sizeof full, "%s/%s.tflite", g_dir, tag);
  int8_t *ourp = malloc(np * (size_t)count);
  const int nops = g->nops, output = g->output;
  g->nops = k, g->output = pt;
  nas_err e = {0};
  int rc = nas_tflite_write(g, ctag, cut, &e);
  for (int s = 0; rc == NAS_OK && s < count; s++)
    rc = nas_g8_run(g, xs + (size_t)s * ni, ourp + (size_t)s * np, &e);
  g->nops = nops, g->output = output;
  if (rc) fail_msg("%s: cut before the last operator: %s", tag, e.msg);
  int8_t *tp = tflite_run_file(ctag, cut, xs, ni, count, np);
  if (memcmp(tp, ourp, np * (size_t)count))
    fail_msg("%s: TFLite 2.9 already differs before the final FULLY_CONNECTED", tag);
  int8_t *tf = tflite_run_file(tag, full, xs, ni, count, no);
  int8_t **act = calloc((size_t)g->ntensors, sizeof *act);
  double *ex = malloc(sizeof(double) * no), *slack = malloc(sizeof(double) * no);
  int nd = 0;
  double near = INFINITY;
  for (int s = 0; s < count; s++) {
    act[pt] = ourp + (size_t)s * np;
    deploy_exact_op(g, op, act, ex, slack);
    const int8_t *o = ys + (size_t)s * no, *t = tf + (size_t)s * no;
    for (size_t i = 0; i < no; i++) {
      if (o[i] == t[i]) continue;
      nd++;
      const double half = (o[i] < t[i] ? o[i] : t[i]) + 0.5, dist = fabs(ex[i] - half);
      if (abs(o[i] - t[i]) != 1 || dist > slack[i])
        fail_msg("%s sample %d output %zu: ours %d, TFLite %d, exact %.6f: not a near-tie "
                 "(window %.6f)", tag, s, i, o[i], t[i], ex[i], slack[i]);
      near = fmin(near, dist);
    }
  }
  print_message("%s: the recurrent layers agree with TFLite 2.9 exactly; %d differing output(s) "
                "of the final FULLY_CONNECTED, each a near-tie (|exact - half-integer| >= %.2g)\n",
                tag, nd, nd ? near : 0.0);
  free(act), free(ex), free(slack), free(tp), free(tf), free(ourp);
  return nd;
}

/* ---- lowering ------------------------------------------------------------------------------- */

/* Lowers net calibrated on d, runs every sample through the int8 graph (host kernels) and the
 * MCU runtime, checks they agree byte for byte, and returns the share of samples whose int8
 * class equals the float network's and the largest logit difference in output steps. */
static void check_net(const char *tag, nas_net *n, const nas_dataset *d, double *agree,
                      double *max_steps, int *tfl_ndiff, int *tfl_max, int near_fc) {
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
  if (near_fc && *tfl_ndiff > 0) assert_int_equal(fc_near_ties(tag, &g, xs, d->n, ys), *tfl_ndiff);
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
                       double max_steps_ok, int tfl_ndiff, int tfl_steps, int near_fc) {
  nas_net *n = build(json, 16, 3);
  nas_dataset d = {0};
  test_make_noise(&d, 48, h, w, c, n->classes, 7);
  double agree, steps;
  int nd, md;
  check_net(tag, n, &d, &agree, &steps, &nd, &md, near_fc);
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
             "{\"op\":\"fc\",\"out\":4}]}", 7, 5, 1, 0.85, 6, 0, 0, 0);
  lower_case("lstm-seq-lstm", "{\"input\":[6,4,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\",\"units\":8,"
             "\"return_sequences\":true},{\"op\":\"lstm\",\"units\":6},{\"op\":\"fc\",\"out\":3}]}",
             6, 4, 1, 0.85, 6, 1, 1, 0);
}

static void test_lower_gru(void **state) {
  (void)state;
  lower_case("gru", "{\"input\":[7,5,1],\"classes\":4,\"layers\":[{\"op\":\"gru\",\"units\":12},"
             "{\"op\":\"fc\",\"out\":4}]}", 7, 5, 1, 0.85, 6, 5, 1, 0);
  lower_case("crnn", "{\"input\":[12,6,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":4,"
             "\"k\":[3,3],\"stride\":[1,1],\"padding\":\"valid\",\"bn\":false,\"act\":\"relu\"},"
             "{\"op\":\"gru\",\"units\":8,\"return_sequences\":true},{\"op\":\"gru\",\"units\":6},"
             "{\"op\":\"fc\",\"out\":5,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":4}]}", 12, 6, 1, 0.8, 8, 8, 1, 0);
  lower_case("gru-seq-lstm", "{\"input\":[6,4,1],\"classes\":3,\"layers\":[{\"op\":\"gru\",\"units\":8,"
             "\"return_sequences\":true},{\"op\":\"lstm\",\"units\":6},{\"op\":\"fc\",\"out\":3}]}",
             6, 4, 1, 0.8, 8, 1, 1, 0);
}

/* The reference architectures of search_spaces/reference (random weights, calibrated on
 * noise): lstm-s (UNIDIRECTIONAL_SEQUENCE_LSTM, STRIDED_SLICE, FULLY_CONNECTED), gru-s (the
 * unrolled GRU, 25 steps) and crnn-s (conv, two unrolled GRU of 20 steps, two fc): TFLite
 * 2.9 runs each exported file; the differences from our outputs are asserted at the measured
 * counts (docs/agreement.md "Recurrent models"); lstm-s's are traced to near-ties of its final
 * FULLY_CONNECTED, its LSTM being bit-exact (fc_near_ties). */
static void test_lower_reference(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int h, w;
    double agree, steps;
    int ndiff, dsteps, near_fc;
  } R[] = {
      {"lstm-s", 49, 10, 0.85, 6, 1, 1, 1},
      {"gru-s", 25, 10, 0.8, 8, 190, 2, 0},
      {"crnn-s", 49, 10, 0.8, 8, 152, 2, 0},
  };
  for (int i = 0; i < 3; i++) {
    char path[600];
    snprintf(path, sizeof path, "%s/search_spaces/reference/%s.json", src_dir(), R[i].name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char json[8192];
    size_t n = fread(json, 1, sizeof json - 1, f);
    fclose(f);
    json[n] = 0;
    lower_case(R[i].name, json, R[i].h, R[i].w, 1, R[i].agree, R[i].steps, R[i].ndiff, R[i].dsteps,
               R[i].near_fc);
  }
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/nas_test_rnn8_XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fxp),
      cmocka_unit_test(test_lower_lstm),
      cmocka_unit_test(test_lower_gru),
      cmocka_unit_test(test_lower_reference),
  };
  const int rc = cmocka_run_group_tests(tests, NULL, NULL);
  test_rm_rf(g_dir);
  return test_exit(rc);
}
