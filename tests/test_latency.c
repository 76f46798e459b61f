/* latency/: counts against hand-computed values, int8 flash, target loading errors, the
 * built-in targets, least-squares fitting, lookup overrides, DNAS expected-cost gradients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "latency/cost.h"
#include "latency/tflm.h"
#include "deploy/lower_shape.h"
#include "train/net.h"
#include "tests/test_util.h"

static const char *src_dir(void) {
  const char *d = getenv("NAS_SOURCE_DIR");
  return d ? d : NAS_SOURCE_DIR;
}

#define TGT_HEAD                                                                              \
  "{\"id\":\"t\",\"name\":\"T\",\"core\":\"cortex-m7\",\"clock_mhz\":100,\"sram_bytes\":65536," \
  "\"flash_bytes\":262144,\"source\":\"test\",\"kernel_library\":\"cmsis-nn\","             \
  "\"runtime_overhead_sram_bytes\":1000,\"runtime_overhead_flash_bytes\":2000,"              \
  "\"calibrated\":false,\"calibration\":\"test\","
static const char *TGT_OK = TGT_HEAD
    "\"latency_model\":\"linear\",\"linear\":{\"cycles_per_mac\":2,\"fixed_cycles\":100}}";
/* The same priced for the engine's own C export (its arena is the planner's). */
static const char *TGT_NAS_C = TGT_HEAD "\"runtime\":\"nas-c\","
    "\"latency_model\":\"linear\",\"linear\":{\"cycles_per_mac\":2,\"fixed_cycles\":100}}";

static nas_target *tgt(const char *text) {
  nas_target *t = NULL;
  nas_err e = {0};
  if (nas_target_parse(text, "t.json", NULL, &t, &e)) fail_msg("target: %s", e.msg);
  return t;
}

static nas_price *price_file(const char *rel, const nas_target *t) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", src_dir(), rel);
  char *text;
  long len;
  nas_err e = {0};
  if (nas_read_file(path, &text, &len, &e)) fail_msg("%s", e.msg);
  nas_price *p = NULL;
  if (nas_price_arch(text, path, t, &p, &e)) fail_msg("price: %s", e.msg);
  free(text);
  return p;
}

static void test_counts(void **st) {
  (void)st;
  nas_target *t = tgt(TGT_OK);
  nas_price *p = price_file("search_spaces/reference/dscnn-s.json", t);
  /* conv 25x5x64x(10*4) = 320000; dsconv: dw 25*5*64*9 + pw 25*5*64*64 = 584000, x4; fc 768 */
  assert_int_equal(p->macs, 320000 + 4 * 584000 + 768);
  assert_int_equal(p->macs, 2656768);
  assert_int_equal(p->layers[0].macs, 320000);
  assert_int_equal(p->layers[1].macs, 584000);
  assert_int_equal(p->params, 23180);
  assert_int_equal(p->n_calls, 1 + 8 + 1 + 1);
  /* linear model: 2 cycles/MAC + 100 fixed at 100 MHz */
  assert_true(fabs(p->latency_ms - (2.0 * 2656768 + 100) / 1e5) < 1e-9);
  nas_price_free(p);
  p = price_file("search_spaces/reference/fmnist-cnn.json", t);
  /* 28*28*16*9 + (14*14*16*9 + 14*14*16*32) + (7*7*32*9 + 7*7*32*64) + 64*10 */
  assert_int_equal(p->macs, 112896 + 28224 + 100352 + 14112 + 100352 + 640);
  assert_int_equal(p->params, 4106);
  nas_price_free(p);
  nas_target_free(t);
}

static void test_flash_tiny(void **st) {
  (void)st;
  nas_target *t = tgt(TGT_NAS_C);
  nas_price *p = NULL;
  nas_err e = {0};
  const char *arch = "{\"input\":[4,4,2],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4,"
                     "\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}";
  if (nas_price_arch(arch, "tiny", t, &p, &e)) fail_msg("%s", e.msg);
  /* conv: 72 int8 weights + 4 int32 folded-BN biases + 4*(scale+zp) + out qparams 8 = 128;
   * gap: 8; fc: 8 weights + 2*4 bias + 2*8 + 8 = 40; input qparams 8 */
  assert_int_equal(p->layers[0].flash_bytes, 128);
  assert_int_equal(p->layers[1].flash_bytes, 8);
  assert_int_equal(p->layers[2].flash_bytes, 40);
  assert_int_equal(p->model_flash_bytes, 184);
  assert_int_equal(p->flash_bytes, 184 + 2000);
  /* SRAM: the planner's arena over the int8 graph. Tensors (bytes, op lifetime): input 32
   * [0,0], conv out 64 [0,1], gap pool 4 [1,2], its reshape 4 [2,3], fc out 2 [3,3].
   * Largest first: conv out @0, input @64 (overlaps conv out in time), pool @64, reshape
   * @0, fc out @16 (after the reshape, 16-aligned): activations 64 + 32 = 96. The 3x3 conv's
   * im2col scratch (deploy/planner.c: two int16 columns 4 * 18 B and an int8 staging column
   * of 20 B, ci = 2 not being a multiple of four) lives at op 0 beside both: placed first (the
   * largest) @0, conv out @96, input @160: arena 192, + runtime 1000. */
  assert_string_equal(p->sram_method, "planner");
  assert_int_equal(p->arena_bytes, 192);
  assert_int_equal(p->peak_sram_bytes, 192 + 1000);
  assert_string_equal(p->runtime, "nas-c");
  nas_price_free(p);
  nas_target_free(t);
  /* The same target priced for TFLM + CMSIS-NN (the default): TFLM's arena of the lowered
   * graph (head with the conv's im2col scratch + persistent tail) + the runtime outside it. */
  t = tgt(TGT_OK);
  assert_int_equal(t->runtime, NAS_RT_TFLM_CMSIS_NN);
  if (nas_price_arch(arch, "tiny", t, &p, &e)) fail_msg("%s", e.msg);
  nas_net *net = NULL;
  nas_g8_graph g;
  nas_tflm_arena_report r;
  assert_int_equal(nas_net_build(arch, "tiny", 1, 1, &net, &e), NAS_OK);
  assert_int_equal(nas_lower_structure(net, NULL, &g, &e), NAS_OK);
  assert_int_equal(nas_tflm_arena(&g, NAS_TFLM_DSP, &r, &e), NAS_OK);
  assert_string_equal(p->sram_method, "tflm-arena");
  assert_string_equal(p->runtime, "tflm-cmsis-nn");
  assert_int_equal(p->arena_bytes, r.total);
  assert_true(r.scratch_bytes > 0 && r.tail > 0);
  assert_int_equal(p->peak_sram_bytes, r.total + 1000);
  /* target "t" has no part in cycles.json: its linear model prices latency, and says so */
  assert_string_equal(p->latency_model, "linear");
  assert_non_null(strstr(p->latency_note, "no cycles model for t"));
  nas_g8_graph_free(&g);
  nas_net_free(net);
  nas_price_free(p);
  nas_target_free(t);
}

static void expect_err(const char *text, const char *frag) {
  nas_target *t = NULL;
  nas_err e = {0};
  int rc = nas_target_parse(text, "bad.json", NULL, &t, &e);
  assert_int_not_equal(rc, NAS_OK);
  assert_null(t);
  if (!strstr(e.msg, frag) || !strstr(e.msg, "bad.json"))
    fail_msg("message '%s' lacks '%s'", e.msg, frag);
}

static void test_target_errors(void **st) {
  (void)st;
  expect_err(TGT_HEAD "\"latency_model\":\"linear\",\"linear\":{\"cycles_per_mac\":2,"
             "\"fixed_cycles\":0},\"colour\":1}", "unknown field 'colour'");
  expect_err("{\"id\":\"t\"}", "missing field 'name'");
  expect_err(TGT_HEAD "\"latency_model\":\"linear\"}", "missing field 'linear'");
  expect_err(TGT_HEAD "\"latency_model\":\"linear\",\"linear\":{\"cycles_per_mac\":\"2\","
             "\"fixed_cycles\":0}}", "field 'cycles_per_mac': expected a number");
  expect_err(TGT_HEAD "\"latency_model\":\"linear\",\"linear\":{\"cycles_per_mac\":2,"
             "\"fixed_cycles\":0,\"slope\":1}}", "unknown field 'slope'");
  expect_err(TGT_HEAD "\"latency_model\":\"per-layer\",\"linear\":{\"cycles_per_mac\":2,"
             "\"fixed_cycles\":0}}", "missing field 'per_layer'");
  expect_err(TGT_HEAD "\"latency_model\":\"quantum\",\"linear\":{}}", "field 'latency_model'");
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", TGT_OK);
  char *c = strstr(buf, "\"clock_mhz\":100");
  memcpy(c, "\"clock_mhz\":-10", 15);
  expect_err(buf, "field 'clock_mhz'");
  snprintf(buf, sizeof buf, "%s", TGT_OK);
  c = strstr(buf, "cortex-m7");
  memcpy(c, "cortex-m9", 9);
  expect_err(buf, "field 'core'");
  nas_target *t = NULL;
  nas_err e = {0};
  assert_int_not_equal(nas_target_open("no-such-mcu", NULL, &t, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "stm32f746"));
}

static void test_builtin_targets(void **st) {
  (void)st;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/latency/targets", src_dir());
  setenv("NAS_TARGET_DIR", dir, 1);
  char **ids;
  int n;
  nas_err e = {0};
  assert_int_equal(nas_target_list(NULL, &ids, &n, &e), NAS_OK);
  const char *want[] = {"cortex-m55", "nrf52840", "nrf5340", "stm32f446re", "stm32f746",
                        "stm32f767", "stm32g0b1", "stm32h743", "stm32l4r5zi"};
  assert_int_equal(n, 9);
  for (int i = 0; i < n; i++) {
    assert_string_equal(ids[i], want[i]);
    nas_target *t = NULL;
    if (nas_target_open(ids[i], NULL, &t, &e)) fail_msg("%s: %s", ids[i], e.msg);
    nas_price *p = price_file("search_spaces/reference/dscnn-s.json", t);
    assert_true(p->latency_ms > 0 && p->flash_bytes > p->model_flash_bytes);
    /* round trip through the serialiser */
    char *js = nas_target_to_json(t);
    nas_target *t2 = NULL;
    if (nas_target_parse(js, "rt", NULL, &t2, &e)) fail_msg("round trip %s: %s", ids[i], e.msg);
    assert_true(t2->cycles_per_mac == t->cycles_per_mac && t2->model == t->model);
    free(js);
    nas_target_free(t2);
    nas_price_free(p);
    nas_target_free(t);
  }
  char *tab = nas_targets_table(NULL, &e);
  assert_non_null(tab);
  assert_non_null(strstr(tab, "stm32h743"));
  free(tab);
  nas_target_ids_free(ids, n);
}

static void test_lstsq_fit(void **st) {
  (void)st;
  /* synthetic conv + pool measurements from known coefficients */
  const double a_conv = 1.3, a_unal = 0.9, a_pool = 4.5, a_call = 2000;
  nas_rng r;
  nas_rng_seed(&r, 7);
  for (int noisy = 0; noisy < 2; noisy++) {
    nas_meas rows[60];
    int n = 0;
    for (int i = 0; i < 40; i++, n++) {
      nas_meas *m = &rows[n];
      memset(m, 0, sizeof *m);
      strcpy(m->target, "t"), snprintf(m->model, sizeof m->model, "m%d", i % 5);
      m->kop = i < 30 ? NAS_KOP_CONV : NAS_KOP_POOL;
      m->cin = (i % 3 == 0) ? 3 : 16 + 4 * (int)nas_rng_below(&r, 8);
      m->cout = 16, m->kh = m->kw = 3;
      m->macs = 10000 + (long long)nas_rng_below(&r, 1000000);
      m->in_bytes = m->out_bytes = 1000;
      double y = m->kop == NAS_KOP_CONV ? a_call + a_conv * m->macs + (m->cin % 4 ? a_unal * m->macs : 0)
                                        : a_pool * m->macs;
      m->cycles = y * (noisy ? 1 + 0.01 * nas_rng_normal(&r) : 1);
    }
    nas_target *t = tgt(TGT_OK);
    nas_fit_opts o = {0};
    o.feat_mask[NAS_KOP_CONV] = 1u << NAS_LF_CALL | 1u << NAS_LF_OPS | 1u << NAS_LF_OPS_UNALIGNED;
    nas_fit_report rep;
    nas_err e = {0};
    if (nas_fit_target(t, rows, n, &o, &rep, &e)) fail_msg("%s", e.msg);
    double tol = noisy ? 0.02 : 1e-9;
    assert_true(fabs(t->coef[NAS_KOP_CONV][NAS_LF_OPS] - a_conv) < tol * a_conv);
    assert_true(fabs(t->coef[NAS_KOP_CONV][NAS_LF_OPS_UNALIGNED] - a_unal) < 3 * tol * a_unal);
    assert_true(fabs(t->coef[NAS_KOP_POOL][NAS_LF_OPS] - a_pool) < tol * a_pool);
    if (!noisy) assert_true(fabs(t->coef[NAS_KOP_CONV][NAS_LF_CALL] - a_call) < 1e-4);
    assert_true(t->has_coef[NAS_KOP_CONV] && t->has_coef[NAS_KOP_POOL] && !t->has_coef[NAS_KOP_FC]);
    assert_int_equal(rep.n_models, 5);
    if (!noisy) assert_true(rep.layer_max_ape < 1e-9);
    nas_target_free(t);
  }
  /* collinear features are refused with a message */
  double A[6] = {1, 2, 2, 4, 3, 6}, b[3] = {1, 2, 3}, x[2];
  nas_err e = {0};
  assert_int_equal(nas_lstsq(A, b, 3, 2, x, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "collinear"));
}

/* `nas latency fit` refuses to lie (issue #14 item 7): an op without enough rows is not
 * fitted and keeps its previous coefficients (here: none, so the linear stand-in prices it);
 * an op without rows keeps its coefficients and is not marked calibrated; the target is not
 * calibrated; the in-sample error covers every layer row and the whole model. */
static void test_fit_refuses_to_lie(void **st) {
  (void)st;
  char text[2048];
  snprintf(text, sizeof text, TGT_HEAD "\"latency_model\":\"per-layer\",\"linear\":{\"cycles_per_mac\":2,"
           "\"fixed_cycles\":0},\"per_layer\":{\"fc\":{\"call\":5,\"ops\":1.5,\"ops_unaligned\":0,"
           "\"in_bytes\":0,\"out_bytes\":0,\"out_c\":0}},\"per_layer_missing\":\"linear\"}");
  nas_target *t = tgt(text);
  assert_false(t->calibrated_op[NAS_KOP_FC]); /* "calibrated": false and no calibrated_ops */
  nas_meas rows[5];
  memset(rows, 0, sizeof rows);
  for (int i = 0; i < 5; i++) {
    snprintf(rows[i].target, sizeof rows[i].target, "t");
    snprintf(rows[i].model, sizeof rows[i].model, "m1");
    rows[i].kh = rows[i].kw = 3, rows[i].cin = rows[i].cout = 3;
  }
  rows[0].kop = NAS_KOP_CONV, rows[0].macs = 1000, rows[0].cycles = 5000; /* cin 3: 2 features */
  for (int i = 1; i <= 3; i++) rows[i].kop = NAS_KOP_POOL, rows[i].macs = 100 * i;
  rows[1].cycles = 210, rows[2].cycles = 400, rows[3].cycles = 630;
  rows[4].kop = -1, rows[4].macs = 1000, rows[4].cycles = 7000;
  nas_fit_report rep;
  nas_err e = {0};
  assert_int_equal(nas_fit_target(t, rows, 5, NULL, &rep, &e), NAS_OK);
  assert_int_equal(rep.status[NAS_KOP_CONV], NAS_FIT_TOO_FEW);
  assert_int_equal(rep.status[NAS_KOP_POOL], NAS_FIT_OK);
  assert_int_equal(rep.status[NAS_KOP_FC], NAS_FIT_NO_ROWS);
  assert_true(rep.linear_exact);
  assert_false(t->has_coef[NAS_KOP_CONV]);
  assert_true(t->has_coef[NAS_KOP_FC] && t->coef[NAS_KOP_FC][NAS_LF_OPS] == 1.5); /* kept */
  assert_true(t->calibrated_op[NAS_KOP_POOL] && !t->calibrated_op[NAS_KOP_FC] &&
              !t->calibrated_op[NAS_KOP_CONV] && t->calibrated_linear);
  assert_false(t->calibrated);
  /* pool: 290000 / 140000 cycles per window read; linear 7000 / 1000 MACs prices the conv */
  const double a = 290000.0 / 140000.0;
  assert_float_equal(t->coef[NAS_KOP_POOL][NAS_LF_OPS], a, 1e-12);
  assert_float_equal(t->cycles_per_mac, 7.0, 1e-12);
  const double ape[4] = {2000.0 / 5000, fabs(100 * a - 210) / 210, fabs(200 * a - 400) / 400,
                         fabs(300 * a - 630) / 630};
  assert_float_equal(rep.layer_mape, (ape[0] + ape[1] + ape[2] + ape[3]) / 4, 1e-12);
  assert_float_equal(rep.layer_max_ape, 0.4, 1e-12);
  assert_int_equal(rep.n_whole, 1);
  assert_float_equal(rep.whole_mape, (7000 + 600 * a - 7000) / 7000, 1e-12);
  assert_float_equal(rep.model_mape, 0, 1e-12); /* the linear model alone: exact, says nothing */
  char *txt = nas_fit_report_text(&rep);
  assert_non_null(txt);
  assert_non_null(strstr(txt, "conv       1 rows, 2 features: too few rows - NOT fitted"));
  assert_non_null(strstr(txt, "exact by construction"));
  free(txt);
  nas_target_free(t);
}

static void test_lookup_overrides(void **st) {
  (void)st;
  char csv[] = "/tmp/nas_test_lookup_XXXXXX";
  int fd = mkstemp(csv);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  /* the tiny net's conv: 4x4x2 -> 4x4x4, k3, macs 4*4*4*9*2 = 1152 */
  fprintf(f, "target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms\n"
             "t,tiny,l0,conv,1152,32,64,3x3,2,4,777777,\n");
  fclose(f);
  char text[2048];
  snprintf(text, sizeof text, TGT_HEAD "\"latency_model\":\"lookup\",\"linear\":{\"cycles_per_mac\":2,"
           "\"fixed_cycles\":0},\"per_layer\":{\"fc\":{\"call\":5,\"ops\":1,\"ops_unaligned\":0,"
           "\"in_bytes\":0,\"out_bytes\":0,\"out_c\":0}},\"per_layer_missing\":\"linear\","
           "\"lookup_table\":\"%s\"}", csv);
  nas_target *t = tgt(text);
  nas_price *p = NULL;
  nas_err e = {0};
  const char *arch = "{\"input\":[4,4,2],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4,"
                     "\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}";
  if (nas_price_arch(arch, "tiny", t, &p, &e)) fail_msg("%s", e.msg);
  assert_true(p->calls[0].cycles == 777777 && p->calls[0].lat_src == 2);
  assert_string_equal(p->layers[0].lat_src, "lookup");
  assert_true(p->calls[2].cycles == 5 + 8 && p->calls[2].lat_src == 0); /* per-layer fc */
  assert_string_equal(p->layers[1].lat_src, "linear");                /* gap: no coef */
  char *js = nas_price_json(p, t, "tiny");
  assert_non_null(strstr(js, "\"peak_sram_bytes\""));
  free(js);
  nas_price_free(p);
  nas_target_free(t);
  remove(csv);
}

static void test_expected_cost_grad(void **st) {
  (void)st;
  nas_target *t = tgt(TGT_OK);
  nas_choice ch[4] = {{"conv", 16, 16, 8, 16, 3, 3, 1, 0}, {"dsconv", 16, 16, 8, 16, 3, 3, 1, 0},
                      {"mbconv", 16, 16, 8, 8, 5, 5, 1, 4}, {"skip", 16, 16, 8, 8, 0, 0, 1, 0}};
  nas_cost c[4];
  nas_err e = {0};
  for (int i = 0; i < 4; i++)
    if (nas_choice_cost(t, &ch[i], &c[i], &e)) fail_msg("%s", e.msg);
  assert_true(c[0].v[NAS_COST_MACS] == 16.0 * 16 * 16 * 9 * 8);
  assert_true(c[1].v[NAS_COST_MACS] == 16.0 * 16 * 8 * 9 + 16.0 * 16 * 8 * 16);
  assert_true(c[3].v[NAS_COST_MACS] == 0);
  double lg[4] = {0.3, -0.2, 1.1, 0.0}, grad[4 * NAS_COST_COUNT];
  nas_cost E;
  nas_expected_cost_softmax(c, 4, lg, 0.7, &E, grad);
  for (int i = 0; i < 4; i++)
    for (int m = 0; m < NAS_COST_COUNT; m++) {
      double h = 1e-5, l2[4];
      memcpy(l2, lg, sizeof l2);
      nas_cost Ep, Em;
      l2[i] = lg[i] + h;
      nas_expected_cost_softmax(c, 4, l2, 0.7, &Ep, NULL);
      l2[i] = lg[i] - h;
      nas_expected_cost_softmax(c, 4, l2, 0.7, &Em, NULL);
      double fd = (Ep.v[m] - Em.v[m]) / (2 * h), an = grad[i * NAS_COST_COUNT + m];
      assert_true(fabs(fd - an) <= 1e-6 * (1 + fabs(an)));
    }
  /* linear expectation: dE/dw_i = cost_i */
  double w[4] = {0.1, 0.2, 0.3, 0.4};
  nas_cost E0, E1;
  nas_expected_cost(c, 4, w, &E0);
  w[2] += 1e-3;
  nas_expected_cost(c, 4, w, &E1);
  assert_true(fabs((E1.v[NAS_COST_FLASH] - E0.v[NAS_COST_FLASH]) / 1e-3 - c[2].v[NAS_COST_FLASH]) < 1e-6 * c[2].v[NAS_COST_FLASH]);
  nas_target_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counts),          cmocka_unit_test(test_flash_tiny),
      cmocka_unit_test(test_target_errors),   cmocka_unit_test(test_builtin_targets),
      cmocka_unit_test(test_lstsq_fit),       cmocka_unit_test(test_lookup_overrides),
      cmocka_unit_test(test_fit_refuses_to_lie),
      cmocka_unit_test(test_expected_cost_grad),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
