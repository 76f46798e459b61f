/* tests/test_wino_cost.c: pricing of Winograd layers (issue 17 item 4). Always: the features of
 * the wino2/wino4 kinds of the C export's instruction model (latency/nasc.h) counted by hand;
 * the committed coefficients for them on every core; a coefficient file written before the
 * kinds existed still loads (they stay unfitted) while a kind without a features list is
 * refused; under nas-c a Winograd layer's flash is its prepared U (pre-transformed) or its
 * spatial weights plus multipliers (run-time transform) and its latency the model's cycles;
 * under tflm-cmsis-nn / tflm-reference a static Winograd layer costs exactly the direct
 * convolution the TFLite export writes (arena and latency), with a note saying so; a flex
 * layer is priced with a note that it has no TFLite form. With arm-none-eabi-gcc and Unicorn
 * (else skipped, naming what is missing): the model's instructions for every Winograd variant
 * against the emulated C export on the Cortex-M4 and M7 (each within 5%). */
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
#include "tests/test_util.h"
#include "train/net.h"

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

static void lower(const char *arch, int wino_rt, nas_g8_graph *g) {
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(arch, "t.json", 1, 1, &net, &e)) fail_msg("%s", e.msg);
  nas_lower_cfg cfg = {.wino_rt = wino_rt};
  if (nas_lower_structure(net, &cfg, g, &e)) fail_msg("%s", e.msg);
  nas_net_free(net);
}

/* F2 on 4x4x4 -> 5 (same) then F4 on 4x4x5 -> 3 (valid: 2x2 output), gap, fc */
static const char *TWO =
    "{\"input\":[4,4,4],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":5,\"algo\":\"wino2\"},"
    "{\"op\":\"conv\",\"out\":3,\"algo\":\"wino4\",\"padding\":\"valid\"},{\"op\":\"gap\"},"
    "{\"op\":\"fc\",\"out\":3}]}";

static void test_features_by_hand(void **state) {
  (void)state;
  nas_g8_graph g;
  lower(TWO, 0, &g);
  double f[NAS_NASC_MAXF];
  nas_err e = {0};
  assert_int_equal(g.ops[0].kind, NAS_G8_WINOGRAD);
  assert_int_equal(nas_nasc_features(&g, NULL, 0, 1, f, &e), NAS_NASC_WINO2);
  /* 2x2 tiles of 2x2 outputs; P = 16; ci4 = 4: one group of four per position */
  const double w2[9] = {4, 4 * 4, 0, 4 * 5 * 16 * 1, 4 * 5 * 16, 4 * 5, 16 * 5, 0, 1};
  for (int k = 0; k < 9; k++) assert_float_equal(f[k], w2[k], 0);
  assert_int_equal(nas_nasc_features(&g, NULL, 1, 1, f, &e), NAS_NASC_WINO4);
  /* one tile (2x2 valid outputs in a 4x4 tile); P = 36; ci = 5 -> ci4 = 8: two groups */
  const double w4[9] = {1, 5, 0, 3 * 36 * 2, 3 * 36, 3, 4 * 3, 0, 1};
  for (int k = 0; k < 9; k++) assert_float_equal(f[k], w4[k], 0);
  nas_g8_graph_free(&g);
  /* the run-time transform: one transform per weight pair (co * ci) */
  lower(TWO, 1, &g);
  assert_int_equal(nas_nasc_features(&g, NULL, 0, 1, f, &e), NAS_NASC_WINO2);
  assert_float_equal(f[7], 5 * 4, 0);
  nas_g8_graph_free(&g);
  /* flex: the tables' multiply-adds, 2 a^3 per input channel and m a^2 + m^2 a per output
     channel and tile */
  lower("{\"input\":[4,4,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":3,\"algo\":"
        "\"wino2\",\"flex\":true},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}", 1, &g);
  assert_int_equal(nas_nasc_features(&g, NULL, 0, 1, f, &e), NAS_NASC_WINO2);
  assert_float_equal(f[2], 4 * (2 * 2 * 64 + 3 * (2 * 16 + 4 * 4)), 0);
  assert_float_equal(f[7], 0, 0); /* flex U is prepared, never transformed at run time */
  nas_g8_graph_free(&g);
}

static void test_committed(void **state) {
  (void)state;
  for (int c = 0; c < NAS_NASC_NCORE; c++)
    for (int k = NAS_NASC_WINO2; k <= NAS_NASC_WINO4; k++) {
      if (!model.fitted[c][k]) fail_msg("%s: no coefficients for %s", nas_nasc_core_name(c), nas_nasc_kind_name(k));
      double s = 0;
      for (int j = 0; j < NAS_CYC_NCNT; j++) s += j < NAS_CYC_XFER ? model.mix[c][k][j] : 0;
      assert_float_equal(s, 1, 1e-9);
    }
}

/* A coefficient file of the current format written before the Winograd kinds existed (as
 * nasc_fit writes it from the corpus alone) loads with them unfitted; a kind with coefficients
 * but no features list is refused. */
static void test_old_file(void **state) {
  (void)state;
  char path[] = "/tmp/nas_wino_cost_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  FILE *f = fopen(path, "w");
  fputs("{\"format\":\"nas-nasc-insn-2\",\"features\":{\"add\":[\"elems\",\"one\"]},\"cores\":{"
        "\"cortex-m4\":{\"add\":{\"coef\":[2,30],\"mix\":{\"ldst\":0.5,\"mul\":0,\"branch\":0.2,"
        "\"other\":0.3,\"xfer\":0,\"taken\":0.1,\"div\":0}}}}}", f);
  fclose(f);
  nas_nasc_model m;
  nas_err e = {0};
  if (nas_nasc_load(path, &m, &e)) fail_msg("%s", e.msg);
  assert_true(m.fitted[NAS_NASC_M4][NAS_NASC_ADD]);
  assert_false(m.fitted[NAS_NASC_M4][NAS_NASC_WINO2]);
  f = fopen(path, "w");
  fputs("{\"format\":\"nas-nasc-insn-2\",\"features\":{},\"cores\":{\"cortex-m4\":{\"wino4\":"
        "{\"coef\":[1,1,1,1,1,1,1,1,1],\"mix\":{}}}}}", f);
  fclose(f);
  assert_int_equal(nas_nasc_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "cores.cortex-m4.wino4"));
  unlink(path);
}

static nas_price *price(const char *arch, const char *tid, int runtime, int wino_rt) {
  nas_target *t = NULL;
  nas_err e = {0};
  if (nas_target_open(tid, NULL, &t, &e) || nas_target_set_runtime(t, runtime, &e)) fail_msg("%s", e.msg);
  nas_net *net = NULL;
  if (nas_net_build(arch, "t.json", 1, 1, &net, &e)) fail_msg("%s", e.msg);
  nas_lower_cfg cfg = {.wino_rt = wino_rt};
  nas_price *p = NULL;
  if (nas_price_net_cfg(net, t, &cfg, &p, &e)) fail_msg("%s", e.msg);
  nas_net_free(net);
  nas_target_free(t);
  return p;
}

/* The same net with algo im2row / wino2 / wino4 (and flex) on its middle layer. */
static void arch_with(char *buf, size_t n, const char *algo) {
  snprintf(buf, n,
           "{\"input\":[12,12,8],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":16,\"k\":3},"
           "{\"op\":\"conv\",\"out\":16,%s},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}", algo);
}

static void test_pricing_nas_c(void **state) {
  (void)state;
  char direct[512], w2[512], w4[512];
  arch_with(direct, sizeof direct, "\"algo\":\"im2row\"");
  arch_with(w2, sizeof w2, "\"algo\":\"wino2\"");
  arch_with(w4, sizeof w4, "\"algo\":\"wino4\"");
  nas_price *d = price(direct, "stm32f446re", NAS_RT_NAS_C, 0);
  nas_price *p2 = price(w2, "stm32f446re", NAS_RT_NAS_C, 0);
  nas_price *p4 = price(w4, "stm32f446re", NAS_RT_NAS_C, 0);
  nas_price *r2 = price(w2, "stm32f446re", NAS_RT_NAS_C, 1);
  const long long co = 16, ci = 16, spatial = co * 9 * ci;
  /* pre-transformed: U [co][P][ci4] replaces the spatial weights; + m/o multipliers */
  assert_int_equal(p2->layers[1].flash_bytes, d->layers[1].flash_bytes - spatial + co * 16 * ci + 10 * co);
  assert_int_equal(p4->layers[1].flash_bytes, d->layers[1].flash_bytes - spatial + co * 36 * ci + 10 * co);
  assert_int_equal(p4->flash_bytes - d->flash_bytes, co * 36 * ci - spatial + 10 * co);
  /* run-time transform: the spatial weights stay, u multipliers added; the arena grows by U */
  assert_int_equal(r2->layers[1].flash_bytes, d->layers[1].flash_bytes + 15 * co);
  assert_true(r2->arena_bytes >= p2->arena_bytes + co * 16 * ci);
  /* latency: the model's, > 0, layers summing to the total */
  for (int k = 0; k < 3; k++) {
    const nas_price *p = k == 0 ? p2 : k == 1 ? p4 : r2;
    assert_string_equal(p->latency_model, "nas-c-cycles");
    assert_true(p->layers[1].latency_ms > 0);
    double s = 0;
    for (int i = 0; i < p->n_layers; i++) s += p->layers[i].latency_ms;
    assert_float_equal(s, p->latency_ms, 1e-9 * p->latency_ms);
    assert_float_equal(p->layers[0].latency_ms, d->layers[0].latency_ms, 1e-12); /* untouched */
  }
  /* the run-time transform costs cycles on top of the pre-transformed layer */
  assert_true(r2->layers[1].latency_ms > p2->layers[1].latency_ms);
  nas_price_free(d), nas_price_free(p2), nas_price_free(p4), nas_price_free(r2);
}

static void test_pricing_tflm(void **state) {
  (void)state;
  char direct[512], w4[512], flex[512];
  arch_with(direct, sizeof direct, "\"algo\":\"im2row\"");
  arch_with(w4, sizeof w4, "\"algo\":\"wino4\"");
  arch_with(flex, sizeof flex, "\"algo\":\"wino2\",\"flex\":true");
  static const int RT[2] = {NAS_RT_TFLM_CMSIS_NN, NAS_RT_TFLM_REFERENCE};
  for (int r = 0; r < 2; r++) {
    nas_price *d = price(direct, "stm32f446re", RT[r], 0), *w = price(w4, "stm32f446re", RT[r], 0);
    assert_int_equal(w->arena_bytes, d->arena_bytes);
    assert_string_equal(w->sram_method, d->sram_method);
    assert_int_equal(w->flash_bytes, d->flash_bytes);
    assert_float_equal(w->latency_ms, d->latency_ms, 1e-12);
    for (int i = 0; i < d->n_layers; i++) assert_float_equal(w->layers[i].latency_ms, d->layers[i].latency_ms, 1e-12);
    if (r == 0) assert_non_null(strstr(w->latency_note, "priced as the direct CONV_2D"));
    nas_price_free(d), nas_price_free(w);
  }
  nas_price *f = price(flex, "stm32f446re", NAS_RT_TFLM_CMSIS_NN, 0);
  assert_non_null(strstr(f->latency_note, "flex Winograd"));
  assert_true(f->latency_ms > 0);
  nas_price_free(f);
}

/* Every Winograd variant emulated on the M4 and M7 against the model. */
static void test_against_emulator(void **state) {
  (void)state;
  char cc[4096];
  nas_err e = {0};
  if (nas_emu_find_cc(NULL, cc, sizeof cc, &e) || !nas_emu_have_unicorn())
    test_skip("Winograd model against the emulator: %s", e.msg[0] ? e.msg : "built without Unicorn");
  static const char *const ARCH[2] = {
      "{\"input\":[10,9,6],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":12,\"algo\":\"wino2\"},"
      "{\"op\":\"conv\",\"out\":20,\"algo\":\"wino4\"},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
      "{\"input\":[10,9,6],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":12,\"algo\":\"wino2\","
      "\"flex\":true},{\"op\":\"conv\",\"out\":20,\"algo\":\"wino4\",\"flex\":true},{\"op\":\"gap\"},"
      "{\"op\":\"fc\",\"out\":3}]}"};
  static const char *const ids[2] = {"stm32f446re", "stm32f746"};
  static const int core[2] = {NAS_NASC_M4, NAS_NASC_M7};
  for (int a = 0; a < 3; a++) {
    nas_g8_graph g;
    lower(ARCH[a ? a - 1 : 0], a == 0, &g); /* a 0: run-time U; 1: pre-transformed; 2: flex */
    int8_t in[540];
    nas_rng r;
    nas_rng_seed(&r, 5);
    for (int i = 0; i < 540; i++) in[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
    for (int c = 0; c < 2; c++) {
      nas_target *t = NULL;
      assert_int_equal(nas_target_open(ids[c], NULL, &t, &e), NAS_OK);
      nas_emu_fw *fw = NULL;
      nas_emu_result res;
      if (nas_emu_build(&g, t, NULL, &fw, &e) || nas_emu_run(fw, in, 0, &res, &e)) fail_msg("%s: %s", ids[c], e.msg);
      for (int i = 0; i < 2; i++) {
        double y;
        assert_int_equal(nas_nasc_op_insn(&model, core[c], &g, NULL, i, &y, &e), NAS_OK);
        const double meas = (double)res.layers[i].insns, err = fabs(y - meas) / meas;
        print_message("%s, variant %d, operator %d: %.0f predicted, %.0f emulated (%.2f%%)\n", ids[c], a, i,
                      y, meas, 100 * err);
        assert_true(err < 0.05);
      }
      nas_emu_result_free(&res);
      nas_emu_fw_free(fw);
      nas_target_free(t);
    }
    nas_g8_graph_free(&g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_features_by_hand), cmocka_unit_test(test_committed),
      cmocka_unit_test(test_old_file),         cmocka_unit_test(test_pricing_nas_c),
      cmocka_unit_test(test_pricing_tflm),     cmocka_unit_test(test_against_emulator),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, NULL));
}
