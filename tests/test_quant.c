/* Post-training quantisation and TFLite export: batch-norm folding, calibration ranges,
 * lowering a trained net to int8 (accuracy close to float), export -> import round trip
 * (identical int8 outputs), and loading the exported file in Arm NN 20.08 when installed. */
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

#include "core/fileio.h"
#include "tests/test_util.h"
#include "deploy/lower.h"
#include "export/export_tflite.h"
#include "train/quant.h"
#include "train/trainer.h"

static char *src_path(const char *rel) {
  static char buf[1024];
  const char *dir = getenv("NAS_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", dir ? dir : NAS_SOURCE_DIR, rel);
  return buf;
}

static nas_net *build(const char *json, int batch, uint64_t seed) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(json, "t.json", batch, seed, &n, &e)) fail_msg("build: %s", e.msg);
  return n;
}

static float *node_val(nas_net *n, const char *name) {
  int id = nas_graph_find(n->g, name);
  if (id < 0) fail_msg("no node %s", name);
  return n->g->nodes[id].val;
}

static void ds_free(nas_dataset *d) { free(d->x), free(d->y); }

/* ---- batch-norm folding ------------------------------------------------------------------ */

static void test_bn_fold(void **state) {
  (void)state;
  const char *with_bn =
      "{\"input\":[6,6,3],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":5,\"act\":\"none\",\"bias\":true},"
      "{\"op\":\"dwconv\",\"k\":3,\"stride\":2,\"act\":\"none\"},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";
  const char *folded =
      "{\"input\":[6,6,3],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":5,\"act\":\"none\",\"bn\":false,\"bias\":true},"
      "{\"op\":\"dwconv\",\"k\":3,\"stride\":2,\"act\":\"none\",\"bn\":false,\"bias\":true},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";
  nas_net *a = build(with_bn, 2, 1), *b = build(folded, 2, 1);
  nas_rng r;
  nas_rng_seed(&r, 9);
  const char *parts[2] = {"l0.conv", "l1.dw"};
  for (int l = 0; l < 2; l++) {
    char nm[64];
    snprintf(nm, sizeof nm, "%s.bn.gamma", parts[l]);
    float *gam = node_val(a, nm);
    snprintf(nm, sizeof nm, "%s.bn.beta", parts[l]);
    float *bet = node_val(a, nm);
    snprintf(nm, sizeof nm, "%s.bn.mean", parts[l]);
    float *mu = node_val(a, nm);
    snprintf(nm, sizeof nm, "%s.bn.var", parts[l]);
    float *var = node_val(a, nm);
    for (int c = 0; c < 5; c++) {
      gam[c] = 0.5f + nas_rng_uniform(&r), bet[c] = nas_rng_normal(&r);
      mu[c] = nas_rng_normal(&r), var[c] = 0.2f + 2 * nas_rng_uniform(&r);
    }
  }
  float *b0 = node_val(a, "l0.conv.b");
  for (int c = 0; c < 5; c++) b0[c] = nas_rng_normal(&r);
  nas_err e = {0};
  int c0 = nas_graph_find(a->g, "l0.conv"), bn0 = nas_graph_find(a->g, "l0.conv.bn");
  int c1 = nas_graph_find(a->g, "l1.dw"), bn1 = nas_graph_find(a->g, "l1.dw.bn");
  assert_int_equal(nas_fold_bn(a->g, c0, bn0, node_val(b, "l0.conv.w"), node_val(b, "l0.conv.b"), &e), NAS_OK);
  assert_int_equal(nas_fold_bn(a->g, c1, bn1, node_val(b, "l1.dw.w"), node_val(b, "l1.dw.b"), &e), NAS_OK);
  assert_int_not_equal(nas_fold_bn(a->g, bn0, -1, node_val(b, "l0.conv.w"), node_val(b, "l0.conv.b"), &e), NAS_OK);
  size_t nin = 2 * 6 * 6 * 3;
  for (size_t i = 0; i < nin; i++) a->g->nodes[a->input].val[i] = b->g->nodes[b->input].val[i] = nas_rng_normal(&r);
  a->g->training = b->g->training = 0;
  nas_graph_forward(a->g, 2, a->logits);
  nas_graph_forward(b->g, 2, b->logits);
  const float *ya = a->g->nodes[bn0].val, *yb = node_val(b, "l0.conv");
  for (size_t i = 0; i < 2 * 6 * 6 * 5; i++) assert_true(fabsf(ya[i] - yb[i]) <= 1e-5f * (1 + fabsf(ya[i])));
  ya = a->g->nodes[bn1].val, yb = node_val(b, "l1.dw");
  for (size_t i = 0; i < 2 * 3 * 3 * 5; i++) assert_true(fabsf(ya[i] - yb[i]) <= 1e-5f * (1 + fabsf(ya[i])));
  nas_net_free(a), nas_net_free(b);
}

/* ---- calibration ------------------------------------------------------------------------- */

static void test_calibration(void **state) {
  (void)state;
  nas_net *n = build("{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":4},"
                     "{\"op\":\"conv\",\"out\":4,\"bn\":false,\"act\":\"relu6\"},{\"op\":\"gap\"},"
                     "{\"op\":\"fc\",\"out\":4}]}", 16, 2);
  nas_dataset d = {0};
  test_make_blob_task(&d, 100, 3);
  float mn = d.x[0], mx = d.x[0];
  for (int i = 0; i < 100 * 64; i++) mn = fminf(mn, d.x[i]), mx = fmaxf(mx, d.x[i]);
  nas_calib c, p;
  nas_err e = {0};
  nas_calib_cfg cfg;
  nas_calib_cfg_default(&cfg);
  cfg.samples = 0;
  assert_int_equal(nas_calibrate(n, &d, &cfg, &c, &e), NAS_OK);
  assert_int_equal(c.samples, 100);
  assert_true(c.point[n->input]);
  assert_float_equal(c.lo[n->input], fminf(mn, 0), 0);
  assert_float_equal(c.hi[n->input], fmaxf(mx, 0), 0);
  int conv0 = nas_graph_find(n->g, "l0.conv"), bn0 = nas_graph_find(n->g, "l0.conv.bn");
  int conv1 = nas_graph_find(n->g, "l1.conv"), act1 = nas_graph_find(n->g, "l1.conv.act");
  assert_false(c.point[conv0]);
  assert_true(c.point[bn0]);
  assert_false(c.point[conv1]);
  assert_true(c.point[act1]);
  assert_true(c.point[n->logits]);
  assert_float_equal(c.lo[bn0], 0, 0); /* after the fused ReLU */
  assert_true(c.hi[bn0] > 0);
  assert_true(c.hi[act1] <= 6.0f);
  cfg.method = NAS_CALIB_PERCENTILE;
  cfg.percentile = 99.0;
  assert_int_equal(nas_calibrate(n, &d, &cfg, &p, &e), NAS_OK);
  for (int i = 0; i < n->g->n; i++) {
    if (!c.point[i]) continue;
    assert_true(p.lo[i] >= c.lo[i] && p.hi[i] <= c.hi[i]);
    assert_true(p.lo[i] <= 0 && p.hi[i] >= 0);
  }
  assert_true(p.hi[n->input] < c.hi[n->input]); /* 1% of the pixels are cut */
  /* scale/zero point: 0 is exactly representable, the range is covered */
  float s;
  int32_t zp;
  nas_q_choose(-1.0f, 3.0f, &s, &zp);
  assert_float_equal(s, 4.0f / 255, 1e-7);
  assert_int_equal(zp, -128 + 64);
  nas_q_choose(0.5f, 2.0f, &s, &zp); /* widened to include 0 */
  assert_int_equal(zp, -128);
  int m;
  assert_int_not_equal(nas_calib_method_parse("mse", &m, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "'mse'"));
  nas_calib_free(&c), nas_calib_free(&p), nas_calib_free(NULL);
  ds_free(&d);
  nas_net_free(n);
}

/* ---- round trip and Arm NN ---------------------------------------------------------------- */

/* Exports g, reads it back, runs both on `count` samples of ds: outputs must be identical;
 * with Arm NN, its outputs must agree within 2 steps. */
static void round_trip(const nas_g8_graph *g, const nas_dataset *ds, int count, const char *tag) {
  nas_err e = {0};
  char path[256], inpath[256], outpath[256];
  snprintf(path, sizeof path, "/tmp/nas_test_quant_%d_%s.tflite", (int)getpid(), tag);
  snprintf(inpath, sizeof inpath, "/tmp/nas_test_quant_%d_%s.in", (int)getpid(), tag);
  snprintf(outpath, sizeof outpath, "/tmp/nas_test_quant_%d_%s.out", (int)getpid(), tag);
  if (nas_tflite_write(g, "test", path, &e)) fail_msg("export: %s", e.msg);
  nas_g8_graph r;
  if (nas_tflite_read(path, &r, &e)) fail_msg("import of the export: %s", e.msg);
  assert_int_equal(r.nops, g->nops);
  assert_int_equal(r.ntensors, g->ntensors);
  size_t ni = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *q = malloc(ni), *y1 = malloc(no), *y2 = malloc(no);
  int armnn = test_have_armnn(), worst = 0;
  for (int s = 0; s < count; s++) {
    nas_g8_quantize_input(g, ds->x + (size_t)(s % ds->n) * ni, q);
    assert_int_equal(nas_g8_run(g, q, y1, &e), NAS_OK);
    assert_int_equal(nas_g8_run(&r, q, y2, &e), NAS_OK);
    assert_memory_equal(y1, y2, no);
    if (armnn && s < 3) {
      FILE *f = fopen(inpath, "wb");
      assert_non_null(f);
      assert_int_equal(fwrite(q, 1, ni, f), ni);
      fclose(f);
      char cmd[2048];
      snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s > %s", src_path("tests/fixtures/check_armnn.py"),
               path, inpath, outpath);
      if (system(cmd) != 0) fail_msg("%s: Arm NN could not load or run the exported model", tag);
      f = fopen(outpath, "r");
      assert_non_null(f);
      for (size_t k = 0; k < no; k++) {
        int v;
        if (fscanf(f, "%d", &v) != 1) fail_msg("%s: Arm NN printed too few values", tag);
        int d = abs(v - y1[k]);
        if (d > worst) worst = d;
      }
      fclose(f);
    }
  }
  if (armnn) {
    if (worst > 2) fail_msg("%s: Arm NN differs by %d steps", tag, worst);
    print_message("%s: Arm NN CpuRef agrees within %d step(s)\n", tag, worst);
  } else {
    test_skip_part("%s: the Arm NN check: pyarmnn not importable by /usr/bin/python3 "
                   "(apt-get install python3-pyarmnn)", tag);
  }
  free(q), free(y1), free(y2);
  nas_g8_graph_free(&r);
  remove(path), remove(inpath), remove(outpath);
}

static void test_lower_trained(void **state) {
  (void)state;
  const char *arch =
      "{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8},"
      "{\"op\":\"mbconv\",\"out\":8,\"expand\":2},{\"op\":\"maxpool\"},"
      "{\"op\":\"dsconv\",\"out\":16},{\"op\":\"gap\"},{\"op\":\"dropout\",\"rate\":0.1},"
      "{\"op\":\"fc\",\"out\":4}]}";
  nas_data d = {0};
  test_make_blob_task(&d.train, 2000, 11);
  test_make_blob_task(&d.val, 300, 12);
  test_make_blob_task(&d.test, 1000, 13);
  nas_net *n = build(arch, 32, 4);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 3, cfg.batch = 32, cfg.lr = 0.01f, cfg.seed = 4;
  nas_train_result tr;
  nas_err e = {0};
  if (nas_train(n, &d, &cfg, &tr, &e)) fail_msg("%s", e.msg);
  nas_g8_graph g, gs;
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 500;
  if (nas_quantize_net(n, &d.train, &cc, NULL, &g, &e)) fail_msg("lower: %s", e.msg);
  double acc8;
  assert_int_equal(nas_g8_accuracy(&g, &d.test, 0, &acc8, &e), NAS_OK);
  print_message("float %.4f  int8 min/max %.4f\n", tr.test_acc, acc8);
  assert_true(tr.test_acc > 0.9);
  assert_true(fabs(acc8 - tr.test_acc) <= 0.02);
  /* structure: ADD for the residual, AVERAGE_POOL_2D + RESHAPE for gap, no dropout */
  int nadd = 0, nresh = 0;
  for (int i = 0; i < g.nops; i++) nadd += g.ops[i].kind == NAS_G8_ADD, nresh += g.ops[i].kind == NAS_G8_RESHAPE;
  assert_int_equal(nadd, 1);
  assert_int_equal(nresh, 1);
  assert_int_equal(g.ops[g.nops - 1].kind, NAS_G8_FULLY_CONNECTED);
  round_trip(&g, &d.test, 20, "trained");
  nas_lower_cfg lc = {.softmax = 1};
  cc.method = NAS_CALIB_PERCENTILE;
  if (nas_quantize_net(n, &d.train, &cc, &lc, &gs, &e)) fail_msg("lower: %s", e.msg);
  assert_int_equal(gs.ops[gs.nops - 1].kind, NAS_G8_SOFTMAX);
  assert_int_equal(gs.tensors[gs.output].zero_point[0], -128);
  double accs;
  assert_int_equal(nas_g8_accuracy(&gs, &d.test, 0, &accs, &e), NAS_OK);
  print_message("int8 percentile + softmax %.4f\n", accs);
  assert_true(fabs(accs - tr.test_acc) <= 0.03);
  round_trip(&gs, &d.test, 10, "softmax");
  nas_g8_graph_free(&g), nas_g8_graph_free(&gs);
  nas_net_free(n);
  ds_free(&d.train), ds_free(&d.val), ds_free(&d.test);
}

/* Untrained networks: every supported layer kind, and the fmnist-cnn reference arch. */
static void test_export_structures(void **state) {
  (void)state;
  const char *archs[2] = {
      "{\"input\":[9,7,2],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":6,\"k\":[3,2],\"stride\":[2,1],\"act\":\"relu6\"},"
      "{\"op\":\"pwconv\",\"out\":6,\"bn\":false,\"act\":\"none\"},{\"op\":\"add\",\"from\":0,\"act\":\"relu\"},"
      "{\"op\":\"dwconv\",\"k\":3,\"padding\":\"valid\"},{\"op\":\"avgpool\",\"k\":2,\"stride\":1,\"padding\":\"same\"},"
      "{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":8,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":5}]}",
      NULL};
  char *fm = NULL;
  nas_err e = {0};
  assert_int_equal(nas_read_file(src_path("search_spaces/reference/fmnist-cnn.json"), &fm, NULL, &e), NAS_OK);
  archs[1] = fm;
  const char *tags[2] = {"kinds", "fmnist"};
  for (int a = 0; a < 2; a++) {
    nas_net *n = build(archs[a], 8, 7);
    nas_dataset d = {0};
    test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
    nas_g8_graph g;
    nas_lower_cfg lc = {.softmax = a == 1};
    if (nas_quantize_net(n, &d, NULL, &lc, &g, &e)) fail_msg("%s: %s", tags[a], e.msg);
    round_trip(&g, &d, 6, tags[a]);
    nas_g8_graph_free(&g);
    ds_free(&d);
    nas_net_free(n);
  }
  free(fm);
}

/* A GRU net lowers (once refused; tests/test_rnn8.c checks the recurrent lowering itself): its
 * calibration has the cell's internal points, the graph unrolls the cell into builtins. */
static void test_rnn_lowers(void **state) {
  (void)state;
  nas_net *n = build("{\"input\":[4,3,1],\"classes\":2,\"layers\":[{\"op\":\"gru\",\"units\":4},"
                     "{\"op\":\"fc\",\"out\":2}]}", 4, 1);
  nas_dataset d = {0};
  test_make_noise(&d, 8, 4, 3, 1, 2, 1);
  nas_g8_graph g;
  nas_err e = {0};
  nas_calib c;
  assert_int_equal(nas_calibrate(n, &d, NULL, &c, &e), NAS_OK);
  assert_int_equal(c.nsub, NAS_GRU_NPOINTS);
  nas_calib_free(&c);
  if (nas_quantize_net(n, &d, NULL, NULL, &g, &e)) fail_msg("message: %s", e.msg);
  int logistic = 0;
  for (int i = 0; i < g.nops; i++) logistic += g.ops[i].kind == NAS_G8_LOGISTIC;
  assert_int_equal(logistic, 2 * 4); /* r and z gates of 4 steps */
  nas_g8_graph_free(&g);
  ds_free(&d);
  nas_net_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bn_fold),          cmocka_unit_test(test_calibration),
      cmocka_unit_test(test_lower_trained),    cmocka_unit_test(test_export_structures),
      cmocka_unit_test(test_rnn_lowers),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
