/* Pruning (train/prune.h): the cubic schedule, the arch and --prune fields, gradual magnitude
 * pruning per layer and global (exact zero counts, masks in checkpoints, kept through QAT and
 * lowering), Sparse Variational Dropout (training form vs deploy form), structured pruning
 * (channel masks; the compacted network computes the same float and int8 outputs as the
 * masked dense one, with fewer MACs and parameters) and the channel plan's refusals. The
 * pruning ops' gradient checks are in tests/test_gradcheck.c. */
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

#include "deploy/lower.h"
#include "tests/test_util.h"
#include "train/checkpoint.h"
#include "train/net.h"
#include "train/prune.h"
#include "train/qat.h"
#include "train/trainer.h"

static nas_data blob_data(int ntrain) {
  nas_data d;
  memset(&d, 0, sizeof d);
  test_make_blob_task(&d.train, ntrain, 1);
  test_make_blob_task(&d.val, 200, 2);
  test_make_blob_task(&d.test, 200, 3);
  return d;
}

static void free_data(nas_data *d) {
  free(d->train.x), free(d->train.y), free(d->val.x), free(d->val.y);
  free(d->test.x), free(d->test.y);
}

static nas_net *build(const char *arch) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(arch, "test", 32, 5, &n, &e) != NAS_OK) fail_msg("%s", e.msg);
  return n;
}

static void train(nas_net *n, nas_data *d, int epochs, nas_train_result *r) {
  nas_train_cfg tc;
  nas_train_cfg_default(&tc, 1); /* adam */
  tc.epochs = epochs, tc.batch = 32, tc.seed = 3, tc.lr = 0.01f;
  nas_err e = {0};
  if (nas_train(n, d, &tc, r, &e) != NAS_OK) fail_msg("%s", e.msg);
}

static const nas_node *node(const nas_net *n, const char *name) {
  int i = nas_graph_find(n->g, name);
  if (i < 0) fail_msg("no node '%s'", name);
  return &n->g->nodes[i];
}

static size_t zeros(const nas_node *x) {
  size_t z = 0, k = nas_shape_numel(&x->shape);
  for (size_t i = 0; i < k; i++) z += x->val[i] == 0.0f;
  return z;
}

/* every weight with mask 0 is 0 */
static void check_baked(const nas_net *n, const char *w) {
  char m[64];
  snprintf(m, sizeof m, "%s.mask", w);
  const nas_node *wn = node(n, w), *mn = node(n, m);
  size_t k = nas_shape_numel(&wn->shape);
  for (size_t i = 0; i < k; i++)
    if (mn->val[i] == 0.0f) assert_true(wn->val[i] == 0.0f);
}

static void test_schedule(void **state) {
  (void)state;
  nas_prune_cfg c;
  nas_prune_cfg_default(&c);
  c.begin = 0.1, c.end = 0.6;
  assert_true(nas_prune_schedule(&c, 0.8, 0, 100) == 0);
  assert_true(nas_prune_schedule(&c, 0.8, 10, 100) == 0);
  assert_true(fabs(nas_prune_schedule(&c, 0.8, 35, 100) - 0.8 * (1 - 0.125)) < 1e-12);
  assert_true(fabs(nas_prune_schedule(&c, 0.8, 60, 100) - 0.8) < 1e-12);
  assert_true(fabs(nas_prune_schedule(&c, 0.8, 100, 100) - 0.8) < 1e-12);
  double last = 0; /* monotone */
  for (long t = 0; t <= 100; t++) {
    double s = nas_prune_schedule(&c, 0.8, t, 100);
    assert_true(s >= last - 1e-15);
    last = s;
  }
}

#define STEM "{\"input\":[8,8,1],\"classes\":4,\"layers\":[" \
             "{\"op\":\"conv\",\"out\":8,\"k\":3}," \
             "{\"op\":\"conv\",\"out\":16,\"k\":3,\"stride\":2}," \
             "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]"

static void test_fields(void **state) {
  (void)state;
  nas_net *n = NULL;
  nas_err e = {0};
  /* without "prune" the canonical arch is unchanged (stored hashes stay valid) */
  n = build(STEM "}");
  assert_null(strstr(n->arch_json, "prune"));
  assert_null(strstr(n->arch_json, "sparsity"));
  assert_int_equal(nas_prune_has_masks(n->g), 0);
  nas_net_free(n);
  n = build(STEM ",\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.6}}");
  assert_non_null(strstr(n->arch_json, "\"method\":\"magnitude\""));
  assert_non_null(strstr(n->arch_json, "\"scope\":\"layer\""));
  assert_true(n->layers[0].sparsity == 0.6 && n->layers[3].sparsity == 0.6);
  assert_true(n->layers[2].sparsity == 0); /* gap */
  assert_int_equal(nas_prune_has_masks(n->g), 1);
  assert_true(nas_graph_find(n->g, "l1.conv.w.mask") >= 0);
  nas_net_free(n);
  assert_int_not_equal(nas_net_build(STEM ",\"prune\":{\"method\":\"lottery\"}}", "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "prune.method: unknown value 'lottery'"));
  assert_int_not_equal(nas_net_build(STEM ",\"prune\":{\"sparsity\":1.5}}", "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "prune.sparsity"));
  assert_int_not_equal(nas_net_build(STEM ",\"prune\":{\"rate\":1}}", "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "unknown field 'rate'"));
  assert_int_not_equal(nas_net_build(STEM ",\"prune\":{\"begin\":0.8,\"end\":0.2}}", "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "prune.end"));
  /* a per-layer sparsity needs a method */
  const char *bad = "{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8,"
                    "\"sparsity\":0.5},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}";
  assert_int_not_equal(nas_net_build(bad, "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "layer 0 (conv): field 'sparsity'"));
  /* --prune text */
  char *js = NULL;
  assert_int_equal(nas_prune_spec_parse("method=magnitude,sparsity=0.8,scope=global", &js, &e), NAS_OK);
  assert_non_null(strstr(js, "\"sparsity\":0.8"));
  assert_non_null(strstr(js, "\"scope\":\"global\""));
  char *arch = NULL;
  assert_int_equal(nas_prune_arch_with(STEM "}", js, &arch, &e), NAS_OK);
  n = build(arch);
  assert_int_equal(n->prune.global, 1);
  nas_net_free(n);
  free(arch), free(js);
  assert_int_equal(nas_prune_spec_parse("method=magnitude,sparsity", &js, &e), NAS_EUSAGE);
  assert_int_equal(nas_prune_spec_parse("{\"method\":\"svdo\",\"every\":1.5}", &js, &e), NAS_EUSAGE);
  assert_non_null(strstr(e.msg, "prune.every"));
  assert_int_equal(nas_prune_spec_parse("{\"method\":\"svdo\"}", &js, &e), NAS_OK);
  assert_non_null(strstr(js, "\"sparsity\":0,")); /* svdo: no magnitude floor by default */
  free(js);
}

/* Gradual magnitude pruning per layer: exact zero counts at the end, accuracy kept, masks in
 * the checkpoint, zeros kept through QAT and lowering. */
static void test_magnitude(void **state) {
  (void)state;
  nas_data d = blob_data(1200);
  nas_net *n = build(STEM ",\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.75,\"end\":0.6}}");
  nas_train_result r;
  train(n, &d, 4, &r);
  const char *ws[3] = {"l0.conv.w", "l1.conv.w", "l3.fc.w"};
  for (int i = 0; i < 3; i++) {
    const nas_node *w = node(n, ws[i]);
    size_t k = nas_shape_numel(&w->shape);
    assert_true(zeros(w) >= (size_t)floor(0.75 * k));
    char m[64];
    snprintf(m, sizeof m, "%s.mask", ws[i]);
    assert_int_equal(zeros(node(n, m)), (size_t)floor(0.75 * k));
    check_baked(n, ws[i]);
    /* every output channel keeps at least one weight */
    const nas_node *mn = node(n, m);
    size_t rows = (size_t)mn->shape.d[0], per = k / rows;
    for (size_t row = 0; row < rows; row++) {
      size_t alive = 0;
      for (size_t j = 0; j < per; j++) alive += mn->val[row * per + j] != 0.0f;
      assert_true(alive >= 1);
    }
  }
  printf("magnitude: test acc %.3f\n", r.test_acc);
  assert_true(r.test_acc > 0.8);
  nas_prune_stats st;
  nas_prune_stats_of(n, &st);
  assert_true(st.masked_total == 8 * 9 + 16 * 9 * 8 + 4 * 16);
  assert_true((double)st.masked_zero / st.masked_total >= 0.74);
  /* checkpoint: masks are STATE tensors, saved and restored */
  char path[] = "/tmp/nas_prune_ckptXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  nas_err e = {0};
  assert_int_equal(nas_ckpt_save(path, n->arch_json, NULL, n->g, &e), NAS_OK);
  nas_ckpt c;
  assert_int_equal(nas_ckpt_load(path, &c, &e), NAS_OK);
  nas_net *m = build(c.arch_json);
  assert_int_equal(nas_ckpt_apply(&c, m->g, &e), NAS_OK);
  assert_memory_equal(node(m, "l1.conv.w.mask")->val, node(n, "l1.conv.w.mask")->val, 16 * 72 * sizeof(float));
  nas_ckpt_free(&c);
  unlink(path);
  /* QAT keeps the masks: the exported weights still have every pruned zero */
  nas_qat_cfg qc;
  nas_qat_cfg_default(&qc);
  nas_train_cfg tc;
  nas_train_cfg_default(&tc, 1);
  tc.epochs = 1, tc.batch = 32, tc.lr = 1e-3f;
  nas_calib cal;
  memset(&cal, 0, sizeof cal);
  assert_int_equal(nas_qat_run(m, &d, &qc, &tc, &r, &cal, &e), NAS_OK);
  for (int i = 0; i < 3; i++) check_baked(m, ws[i]);
  nas_g8_graph g8;
  assert_int_equal(nas_lower(m, &cal, NULL, &g8, &e), NAS_OK);
  /* every int8 weight tensor of a pruned layer has at least the masked zeros */
  int seen = 0;
  for (int t = 0; t < g8.ntensors; t++) {
    const nas_g8_tensor *x = &g8.tensors[t];
    for (int i = 0; i < 3; i++)
      if (!strcmp(x->name, ws[i])) {
        size_t z = 0, k = nas_g8_numel(x);
        for (size_t j = 0; j < k; j++) z += ((const int8_t *)x->data)[j] == 0;
        assert_true(z >= zeros(node(m, ws[i])));
        assert_true(z >= (size_t)floor(0.75 * k));
        seen++;
      }
  }
  assert_int_equal(seen, 3);
  nas_g8_graph_free(&g8);
  nas_calib_free(&cal);
  nas_net_free(m);
  nas_net_free(n);
  free_data(&d);
}

/* Global scope: one threshold, the total zero count is exact. */
static void test_global(void **state) {
  (void)state;
  nas_data d = blob_data(600);
  nas_net *n = build(STEM ",\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.8,\"scope\":\"global\"}}");
  nas_train_result r;
  train(n, &d, 1, &r);
  nas_prune_stats st;
  nas_prune_stats_of(n, &st);
  long long masked = 0;
  const char *ms[3] = {"l0.conv.w.mask", "l1.conv.w.mask", "l3.fc.w.mask"};
  for (int i = 0; i < 3; i++) masked += (long long)zeros(node(n, ms[i]));
  assert_true(masked == (long long)floor(0.8 * st.masked_total));
  /* the layers end with different sparsities (one threshold, different magnitudes) */
  double s0 = (double)zeros(node(n, ms[0])) / 72, s1 = (double)zeros(node(n, ms[1])) / 1152;
  assert_true(fabs(s0 - s1) > 1e-3);
  nas_net_free(n);
  free_data(&d);
}

/* SVDO: the deploy form written from the training form computes what the training form
 * computes in eval mode (theta masked at log alpha >= 3), and the floor tops up sparsity. */
static void test_svdo(void **state) {
  (void)state;
  nas_data d = blob_data(1200);
  const char *arch = STEM ",\"prune\":{\"method\":\"svdo\"}}";
  nas_net *n = build(arch);
  nas_err e = {0};
  nas_net *t = NULL;
  assert_int_equal(nas_prune_svdo_build(n, 32, 1, &t, &e), NAS_OK);
  assert_true(nas_graph_find(t->g, "l1.conv.w.ls2") >= 0);
  assert_true(nas_graph_find(t->g, "svdo.kl_scale") >= 0);
  assert_true(nas_graph_find(n->g, "l1.conv.w.ls2") < 0);
  nas_train_cfg tc;
  nas_train_cfg_default(&tc, 1);
  tc.epochs = 3, tc.batch = 32, tc.lr = 0.01f;
  nas_train_result r;
  assert_int_equal(nas_train(t, &d, &tc, &r, &e), NAS_OK); /* the form trains like a net */
  assert_int_equal(nas_prune_svdo_export(t, n, &e), NAS_OK);
  /* same logits in eval mode */
  n->g->training = 0, t->g->training = 0;
  int B = 16;
  memcpy(n->g->nodes[n->input].val, d.test.x, (size_t)B * 64 * sizeof(float));
  memcpy(t->g->nodes[t->input].val, d.test.x, (size_t)B * 64 * sizeof(float));
  nas_graph_forward(n->g, B, n->logits);
  nas_graph_forward(t->g, B, t->logits);
  for (int i = 0; i < B * 4; i++)
    assert_true(fabsf(n->g->nodes[n->logits].val[i] - t->g->nodes[t->logits].val[i]) < 1e-4f);
  nas_prune_stats st;
  nas_prune_stats_of(n, &st);
  assert_true(st.masked_zero > 0); /* the KL drives some log alphas past 3 */
  nas_net_free(t);
  nas_net_free(n);
  /* nas_train on the deploy form does the whole round trip: measured 96% accuracy at 78%
   * zeros on this task after 3 epochs */
  n = build(arch);
  assert_int_equal(nas_train(n, &d, &tc, &r, &e), NAS_OK);
  nas_prune_stats_of(n, &st);
  printf("svdo: test acc %.3f, %lld of %lld weights zero\n", r.test_acc, st.masked_zero, st.masked_total);
  assert_true(r.test_acc > 0.85);
  assert_true(st.masked_zero > st.masked_total / 2);
  check_baked(n, "l1.conv.w");
  nas_net_free(n);
  /* the floor tops the sparsity up by magnitude */
  n = build(STEM ",\"prune\":{\"method\":\"svdo\",\"sparsity\":0.9}}");
  tc.epochs = 1;
  assert_int_equal(nas_train(n, &d, &tc, &r, &e), NAS_OK);
  assert_true(zeros(node(n, "l1.conv.w.mask")) >= (size_t)floor(0.9 * 1152));
  check_baked(n, "l1.conv.w");
  nas_net_free(n);
  free_data(&d);
}

/* The compacted network equals the channel-masked dense one: float logits and int8 outputs,
 * with fewer MACs and parameters. Covers conv -> dwconv -> conv, dsconv and flatten -> fc. */
static void test_structured(void **state) {
  (void)state;
  nas_data d = blob_data(800);
  const char *arch =
      "{\"input\":[8,8,1],\"classes\":4,\"layers\":["
      "{\"op\":\"conv\",\"out\":8,\"k\":3,\"channels\":0.5},"
      "{\"op\":\"dwconv\",\"k\":3},"
      "{\"op\":\"conv\",\"out\":12,\"k\":3,\"stride\":2,\"act\":\"relu6\"},"
      "{\"op\":\"dsconv\",\"out\":8,\"k\":3},"
      "{\"op\":\"maxpool\",\"k\":2},"
      "{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":4}],"
      "\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.5,\"channels\":0.25,\"channels_at\":0.4}}";
  nas_net *n = build(arch);
  /* the plan: layers 0 (explicit 0.5), 2 and 3 (default 0.25) own masks; 1 follows 0 */
  assert_true(n->layers[0].channels == 0.5 && n->layers[2].channels == 0.25);
  assert_true(n->layers[3].channels == 0.25 && n->layers[6].channels == 0);
  assert_true(nas_graph_find(n->g, "l0.conv.bn.cmask") >= 0);
  assert_true(nas_graph_find(n->g, "l3.pw.bn.cmask") >= 0);
  assert_true(nas_graph_find(n->g, "l1.dw.bn.gm") >= 0); /* the follower's gamma is masked */
  nas_train_result r;
  train(n, &d, 3, &r);
  assert_int_equal(zeros(node(n, "l0.conv.bn.cmask")), 4);
  assert_int_equal(zeros(node(n, "l2.conv.bn.cmask")), 3);
  assert_int_equal(zeros(node(n, "l3.pw.bn.cmask")), 2);
  nas_prune_stats st;
  nas_prune_stats_of(n, &st);
  assert_int_equal(st.channels_removed, 9);
  assert_int_equal(st.channels_total, 28);
  nas_net *s = NULL;
  nas_err e = {0};
  assert_int_equal(nas_prune_compact(n, 32, &s, &e), NAS_OK);
  assert_int_equal(s->layers[0].out_c, 4);
  assert_int_equal(s->layers[2].out_c, 9);
  assert_int_equal(s->layers[3].out_c, 6);
  assert_true(s->macs < n->macs && s->params < n->params);
  /* the expected arch (priced before training) has the compacted widths */
  char *ex = NULL;
  assert_int_equal(nas_prune_expected_arch(arch, &ex, &e), NAS_OK);
  nas_net *xn = build(ex);
  for (int i = 0; i < s->n_layers; i++) assert_int_equal(xn->layers[i].out_c, s->layers[i].out_c);
  assert_true(xn->macs == s->macs && xn->params == s->params);
  nas_net_free(xn);
  free(ex);
  assert_int_equal(nas_graph_find(s->g, "l0.conv.bn.cmask"), -1);
  /* float logits */
  n->g->training = 0, s->g->training = 0;
  int B = 32;
  memcpy(n->g->nodes[n->input].val, d.test.x, (size_t)B * 64 * sizeof(float));
  memcpy(s->g->nodes[s->input].val, d.test.x, (size_t)B * 64 * sizeof(float));
  nas_graph_forward(n->g, B, n->logits);
  nas_graph_forward(s->g, B, s->logits);
  for (int i = 0; i < B * 4; i++)
    assert_true(fabsf(n->g->nodes[n->logits].val[i] - s->g->nodes[s->logits].val[i]) < 1e-4f);
  /* int8: with the same activation ranges (the dense network's calibration, mapped by node
   * name) the two graphs give the same bytes */
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 200;
  nas_calib c1, c2;
  memset(&c1, 0, sizeof c1), memset(&c2, 0, sizeof c2);
  assert_int_equal(nas_calibrate(n, &d.train, &cc, &c1, &e), NAS_OK);
  assert_int_equal(nas_calibrate(s, &d.train, &cc, &c2, &e), NAS_OK);
  for (int i = 0; i < s->g->n; i++) {
    if (!c2.point[i]) continue;
    int j = nas_graph_find(n->g, s->g->nodes[i].name);
    assert_true(j >= 0 && c1.point[j]);
    assert_true(fabsf(c2.lo[i] - c1.lo[j]) <= 1e-4f * (1 + fabsf(c1.lo[j]))); /* up to float sums */
    c2.lo[i] = c1.lo[j], c2.hi[i] = c1.hi[j];
  }
  nas_g8_graph g1, g2;
  assert_int_equal(nas_lower(n, &c1, NULL, &g1, &e), NAS_OK);
  assert_int_equal(nas_lower(s, &c2, NULL, &g2, &e), NAS_OK);
  size_t b1 = 0, b2 = 0;
  for (int t = 0; t < g1.ntensors; t++) b1 += g1.tensors[t].data ? g1.tensors[t].bytes : 0;
  for (int t = 0; t < g2.ntensors; t++) b2 += g2.tensors[t].data ? g2.tensors[t].bytes : 0;
  assert_true(b2 < b1);
  int8_t q[64], o1[4], o2[4];
  for (int i = 0; i < 100; i++) {
    nas_g8_quantize_input(&g1, d.test.x + (size_t)i * 64, q);
    assert_int_equal(nas_g8_run(&g1, q, o1, &e), NAS_OK);
    assert_int_equal(nas_g8_run(&g2, q, o2, &e), NAS_OK);
    assert_memory_equal(o1, o2, 4);
  }
  nas_g8_graph_free(&g1), nas_g8_graph_free(&g2);
  nas_calib_free(&c1), nas_calib_free(&c2);
  nas_net_free(s);
  nas_net_free(n);
  free_data(&d);
}

static void test_plan_errors(void **state) {
  (void)state;
  nas_net *n = NULL;
  nas_err e = {0};
  const char *to_add = "{\"input\":[8,8,4],\"classes\":4,\"layers\":["
                       "{\"op\":\"conv\",\"out\":4,\"k\":3,\"channels\":0.5},"
                       "{\"op\":\"add\",\"from\":-1},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}";
  assert_int_not_equal(nas_net_build(to_add, "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "layer 0 (conv): field 'channels'"));
  const char *to_mb = "{\"input\":[8,8,1],\"classes\":4,\"layers\":["
                      "{\"op\":\"conv\",\"out\":4,\"k\":3,\"channels\":0.5},"
                      "{\"op\":\"mbconv\",\"out\":8},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}";
  assert_int_not_equal(nas_net_build(to_mb, "t", 4, 1, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "not a conv, pwconv, dsconv or fc"));
  /* the top-level default skips ineligible layers silently (documented) */
  const char *ok = "{\"input\":[8,8,1],\"classes\":4,\"layers\":["
                   "{\"op\":\"conv\",\"out\":4,\"k\":3},"
                   "{\"op\":\"mbconv\",\"out\":8},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}],"
                   "\"prune\":{\"channels\":0.5}}";
  assert_int_equal(nas_net_build(ok, "t", 4, 1, &n, &e), NAS_OK);
  assert_true(n->layers[0].channels == 0);
  assert_int_equal(nas_prune_has_masks(n->g), 0);
  nas_net_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schedule),  cmocka_unit_test(test_fields),
      cmocka_unit_test(test_magnitude), cmocka_unit_test(test_global),
      cmocka_unit_test(test_svdo),      cmocka_unit_test(test_structured),
      cmocka_unit_test(test_plan_errors),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
