/* tests/test_nasc.c: the instruction and cycles model of the engine's C export
 * (latency/nasc.h) and the nas-c runtime's pricing. Always: the committed
 * latency/calibration/nasc_insn.json loads with every core; the features of a hand-made conv
 * (taps inside the input counted by hand); the coefficient file's errors; a nas-c price is the
 * sum of the model's operator cycles, marked transferred, with the assumption in its note.
 * With arm-none-eabi-gcc and Unicorn (else skipped, naming what is missing): a net with every
 * kind the searches produce, emulated on each core, against the model's instructions (the
 * operators' total within 5%, each operator within 30%). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/rng.h"
#include "deploy/lower_shape.h"
#include "latency/cost.h"
#include "latency/cost_runtime.h"
#include "latency/emulator.h"
#include "latency/nasc.h"
#include "train/net.h"
#include "tests/test_util.h"

static nas_nasc_model model;

static int setup(void **state) {
  (void)state;
  nas_err e = {0};
  if (nas_nasc_load(nas_nasc_default_path(), &model, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return -1;
  }
  return 0;
}

static void lower(const char *arch, nas_g8_graph *g) {
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(arch, "t.json", 1, 1, &net, &e)) fail_msg("%s", e.msg);
  nas_lower_cfg cfg = {.softmax = 1};
  if (nas_lower_structure(net, &cfg, g, &e)) fail_msg("%s", e.msg);
  nas_net_free(net);
}

/* conv, pwconv + residual add, dwconv, max and average pool, dsconv, gap, fc, softmax */
static const char *SMALL =
    "{\"input\":[12,10,3],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":3,"
    "\"stride\":[2,1],\"act\":\"relu6\"},{\"op\":\"pwconv\",\"out\":8,\"bn\":false,\"act\":"
    "\"none\"},{\"op\":\"add\",\"from\":0,\"act\":\"relu\"},{\"op\":\"dwconv\",\"k\":3},"
    "{\"op\":\"maxpool\",\"k\":2,\"stride\":2},{\"op\":\"avgpool\",\"k\":2,\"stride\":1,"
    "\"padding\":\"same\"},{\"op\":\"dsconv\",\"out\":6,\"k\":3},{\"op\":\"gap\"},"
    "{\"op\":\"fc\",\"out\":7,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":5}]}";

static void test_committed(void **state) {
  (void)state;
  for (int c = 0; c < NAS_NASC_NCORE; c++)
    for (int k = 0; k < NAS_NASC_NKIND; k++) {
      if (k == NAS_NASC_REQUANT) continue; /* no model lowers to a QUANTIZE */
      if (!model.fitted[c][k]) fail_msg("%s: no coefficients for %s", nas_nasc_core_name(c), nas_nasc_kind_name(k));
      double s = 0;
      for (int j = 0; j < NAS_CYC_NCNT; j++) s += j < NAS_CYC_XFER ? model.mix[c][k][j] : 0;
      assert_float_equal(s, 1, 1e-9); /* the four classes cover every instruction */
    }
}

static void test_features_by_hand(void **state) {
  (void)state;
  nas_g8_graph g;
  /* conv 3x3 "same" on 4x4x2 -> 4x4x4 with its scratch (no plan): 8 pixel pairs x 2 channel
   * pairs, depth 18 = 4 groups + 2; ci % 4 != 0 and a filter row (6 bytes) is not whole
   * groups: staged. Kernel rows inside the input 2,3,3,2 per output row (10), so 40 of the 48
   * (pixel, row) rows are inside; output columns 1 and 2 have their whole filter row inside
   * (20 rows copied as a row), the other 20 tap by tap (60 taps); bytes: 8 rows set, 40
   * copied, 6 each */
  lower("{\"input\":[4,4,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":4,\"k\":3},"
        "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}", &g);
  double f[NAS_NASC_MAXF], f0[NAS_NASC_MAXF];
  nas_err e = {0};
  assert_int_equal(nas_nasc_features(&g, NULL, 0, 1, f, &e), NAS_NASC_CONV);
  const double want[15] = {0, 0, 0, 0, 16, 64, 32, 16, 64, 32, 0, 48, 60, 288, 1};
  for (int k = 0; k < 15; k++) assert_float_equal(f[k], want[k], 0);
  assert_int_equal(nas_nasc_features(&g, NULL, 0, 0, f0, &e), NAS_NASC_CONV); /* M0+: same loops */
  assert_memory_equal(f, f0, sizeof f);
  /* the gap is an average pool over the whole 4x4 map: one pixel, 4 outputs, one word of 4
   * channels down 4 window rows, 16 taps */
  assert_int_equal(nas_nasc_features(&g, NULL, 1, 1, f, &e), NAS_NASC_AVGPOOL);
  const double wpool[6] = {1, 1, 4, 4, 16, 0};
  for (int k = 0; k < 6; k++) assert_float_equal(f[k], wpool[k], 0);
  /* fc 4 -> 3 after the reshape: no pass of four channels, a pair and a half of one group */
  int fc = g.nops - 2; /* the last operator is the softmax */
  assert_int_equal(nas_nasc_features(&g, NULL, fc, 1, f, &e), NAS_NASC_FC);
  const double wfc[9] = {1, 0, 0, 1.5, 1.5, 0, 0, 0, 1};
  for (int k = 0; k < 9; k++) assert_float_equal(f[k], wfc[k], 0);
  nas_g8_graph_free(&g);
  /* a 1x1 conv: with its scratch the pixel is widened (2 groups of 8 channels), without it
   * (the planner had no room) conv1x1_direct runs, its stride-2 pixels found by division */
  lower("{\"input\":[4,4,8],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":6,\"k\":1,"
        "\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}", &g);
  assert_int_equal(g.ops[0].kind, NAS_G8_CONV_2D);
  assert_int_equal(nas_nasc_features(&g, NULL, 0, 1, f, &e), NAS_NASC_CONV);
  const double wpw[15] = {0, 0, 0, 0, 6, 12, 0, 4, 8, 0, 0, 0, 4, 0, 1};
  for (int k = 0; k < 15; k++) assert_float_equal(f[k], wpw[k], 0);
  long none[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
  nas_g8_plan pl = {.nops = g.nops, .scratch = none};
  assert_int_equal(nas_nasc_features(&g, &pl, 0, 1, f, &e), NAS_NASC_CONV);
  const double wd[15] = {6, 12, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  for (int k = 0; k < 15; k++) assert_float_equal(f[k], wd[k], 0);
  nas_g8_graph_free(&g);
}

static void test_file_errors(void **state) {
  (void)state;
  char path[] = "/tmp/nas_nasc_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  nas_nasc_model m;
  nas_err e = {0};
  assert_int_equal(nas_nasc_save(path, &model, "test", &e), NAS_OK);
  assert_int_equal(nas_nasc_load(path, &m, &e), NAS_OK);
  assert_memory_equal(&m, &model, sizeof m);
  FILE *f = fopen(path, "w");
  fputs("{\"format\":\"nas-nasc-insn-2\",\"features\":{\"conv\":[\"out\"]},\"cores\":{}}", f);
  fclose(f);
  assert_int_equal(nas_nasc_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "features.conv"));
  f = fopen(path, "w");
  fputs("{\"format\":\"x\"}", f);
  fclose(f);
  assert_int_equal(nas_nasc_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "format"));
  assert_int_equal(nas_nasc_load("/nonexistent/nasc.json", &m, &e), NAS_EIO);
  unlink(path);
}

static void test_pricing_nas_c(void **state) {
  (void)state;
  nas_target *t = NULL;
  nas_err e = {0};
  assert_int_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_OK);
  assert_int_equal(nas_target_set_runtime(t, NAS_RT_NAS_C, &e), NAS_OK);
  assert_true(t->rt->have_nasc);
  nas_price *p = NULL;
  assert_int_equal(nas_price_arch(SMALL, "small", t, &p, &e), NAS_OK);
  assert_string_equal(p->runtime, "nas-c");
  assert_string_equal(p->latency_model, "nas-c-cycles");
  assert_false(p->calibrated);
  assert_non_null(strstr(p->latency_note, "ASSUMED"));
  nas_g8_graph g;
  nas_net *net = NULL;
  assert_int_equal(nas_net_build(SMALL, "small", 1, 1, &net, &e), NAS_OK);
  assert_int_equal(nas_lower_structure(net, NULL, &g, &e), NAS_OK);
  double *cyc = calloc((size_t)g.nops, sizeof *cyc), total = 0, sum = 0;
  assert_int_equal(nas_nasc_graph_cycles(&model, t->rt->part, &g, cyc, &total, &e), NAS_OK);
  assert_float_equal(p->cycles, total, 1e-6 * total);
  for (int i = 0; i < p->n_layers; i++) sum += p->layers[i].latency_ms;
  assert_float_equal(sum, p->latency_ms, 1e-9 * p->latency_ms);
  free(cyc);
  nas_g8_graph_free(&g);
  nas_net_free(net);
  nas_price_free(p);
  nas_target_free(t);
}

/* The model against the emulator on a net it was not fitted on, on every core. */
static void test_against_emulator(void **state) {
  (void)state;
  char cc[4096];
  nas_err e = {0};
  if (nas_emu_find_cc(NULL, cc, sizeof cc, &e) || !nas_emu_have_unicorn()) {
    test_skip("model against the emulator: %s", e.msg[0] ? e.msg : "built without Unicorn");
  }
  nas_g8_graph g;
  lower(SMALL, &g);
  const char *ids[NAS_NASC_NCORE] = {"stm32f446re", "stm32f746", "nrf5340", "stm32g0b1"};
  int8_t in[360];
  nas_rng r;
  nas_rng_seed(&r, 3);
  for (int i = 0; i < 360; i++) in[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
  for (int c = 0; c < NAS_NASC_NCORE; c++) {
    nas_target *t = NULL;
    assert_int_equal(nas_target_open(ids[c], NULL, &t, &e), NAS_OK);
    nas_emu_fw *fw = NULL;
    nas_emu_result res;
    if (nas_emu_build(&g, t, NULL, &fw, &e) || nas_emu_run(fw, in, 0, &res, &e)) fail_msg("%s: %s", ids[c], e.msg);
    double pred = 0, meas = 0, worst = 0;
    nas_g8_plan pl;
    assert_int_equal(nas_g8_plan_build(&g, &pl, &e), NAS_OK); /* the export's plan */
    for (int i = 0; i < g.nops; i++) {
      double y;
      assert_int_equal(nas_nasc_op_insn(&model, c, &g, &pl, i, &y, &e), NAS_OK);
      const double err = fabs(y - (double)res.layers[i].insns) / (double)res.layers[i].insns;
      if (err > 0.1) print_message("  %s operator %d (%s): %.0f predicted, %lld emulated\n", ids[c], i,
                                   nas_g8_op_name(g.ops[i].kind), y, res.layers[i].insns);
      if (err > worst) worst = err;
      pred += y, meas += (double)res.layers[i].insns;
    }
    print_message("%s: operators %.0f predicted, %.0f emulated (%.1f%%), worst operator %.1f%%\n",
                  ids[c], pred, meas, 100 * (pred - meas) / meas, 100 * worst);
    /* the total within 5%; each operator within 30%: ADD's rounding and, on the M0+, the
     * software division of average pooling depend on the data */
    assert_true(fabs(pred - meas) / meas < 0.05);
    assert_true(worst < 0.30);
    nas_g8_plan_free(&pl);
    nas_emu_result_free(&res);
    nas_emu_fw_free(fw);
    nas_target_free(t);
  }
  nas_g8_graph_free(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_committed),    cmocka_unit_test(test_features_by_hand),
      cmocka_unit_test(test_file_errors),  cmocka_unit_test(test_pricing_nas_c),
      cmocka_unit_test(test_against_emulator),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, NULL));
}
