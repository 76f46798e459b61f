/* Weight inheritance for network morphisms (train/inherit.h): the same architecture copies
 * everything; a wider layer, a larger kernel, an inserted identity layer and a wider layer
 * before flatten -> fc leave the eval-mode outputs unchanged (function-preserving); a narrower
 * or shallower child still takes what overlaps; masks and counts follow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"
#include "train/inherit.h"
#include "train/net.h"

static nas_net *build(const char *arch, uint64_t seed) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(arch, "t", 8, seed, &n, &e)) fail_msg("%s", e.msg);
  return n;
}

/* Gives every batch-norm non-trivial running statistics and scales. */
static void perturb_bn(nas_net *n) {
  nas_rng r;
  nas_rng_seed(&r, 99);
  for (int i = 0; i < n->g->n; i++) {
    nas_node *d = &n->g->nodes[i];
    size_t k = nas_shape_numel(&d->shape);
    if (strstr(d->name, ".bn.var"))
      for (size_t j = 0; j < k; j++) d->val[j] = 0.5f + nas_rng_uniform(&r);
    if (strstr(d->name, ".bn.mean") || strstr(d->name, ".bn.beta"))
      for (size_t j = 0; j < k; j++) d->val[j] = 0.2f * nas_rng_normal(&r);
  }
}

static void logits(nas_net *n, const float *x, int B, float *out) {
  n->g->training = 0;
  memcpy(n->g->nodes[n->input].val, x, (size_t)B * n->in_h * n->in_w * n->in_c * sizeof(float));
  nas_graph_forward(n->g, B, n->logits);
  memcpy(out, n->g->nodes[n->logits].val, (size_t)B * n->classes * sizeof(float));
}

/* child inherits from parent; the logits agree within tol (tol < 0: not compared). */
static nas_inherit_stats morph(const char *parent_arch, const char *child_arch, float tol) {
  nas_net *p = build(parent_arch, 3), *c = build(child_arch, 4);
  perturb_bn(p);
  nas_err e = {0};
  nas_inherit_stats st;
  assert_int_equal(nas_net_inherit(c, p, &st, &e), NAS_OK);
  if (tol >= 0) {
    nas_dataset d = {0};
    test_make_noise(&d, 8, p->in_h, p->in_w, p->in_c, p->classes, 7);
    float a[8 * 8], b[8 * 8];
    logits(p, d.x, 8, a);
    logits(c, d.x, 8, b);
    for (int i = 0; i < 8 * p->classes; i++)
      if (fabsf(a[i] - b[i]) > tol) fail_msg("%s -> %s: logit %d: %g vs %g", parent_arch, child_arch, i, a[i], b[i]);
    free(d.x), free(d.y);
  }
  nas_net_free(p), nas_net_free(c);
  return st;
}

#define HEAD "{\"input\":[8,8,3],\"classes\":5,\"layers\":["

static void test_same(void **state) {
  (void)state;
  const char *a = HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"dsconv\",\"out\":12},"
                  "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}";
  nas_inherit_stats st = morph(a, a, 0.0f);
  assert_int_equal(st.copied, st.total);
  assert_int_equal(st.matched, 4);
  assert_int_equal(st.inserted + st.dropped, 0);
}

static void test_wider_and_kernel(void **state) {
  (void)state;
  /* wider first conv: the next conv's new input channels are 0 */
  nas_inherit_stats st = morph(
      HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"conv\",\"out\":6,\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
      HEAD "{\"op\":\"conv\",\"out\":12,\"k\":3},{\"op\":\"conv\",\"out\":6,\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
      1e-4f);
  assert_true(st.copied < st.total && st.copied > st.total / 2);
  /* a larger kernel ("same" padding): the new taps are 0 */
  morph(HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"dsconv\",\"out\":6,\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
        HEAD "{\"op\":\"conv\",\"out\":8,\"k\":5},{\"op\":\"dsconv\",\"out\":6,\"k\":5},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
        1e-4f);
  /* a wider conv before flatten -> fc: per position, by channel */
  morph(HEAD "{\"op\":\"conv\",\"out\":4,\"k\":3,\"stride\":2},{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":5}]}",
        HEAD "{\"op\":\"conv\",\"out\":7,\"k\":3,\"stride\":2},{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":5}]}",
        1e-4f);
  /* wider dsconv feeding a pwconv */
  morph(HEAD "{\"op\":\"dsconv\",\"out\":8},{\"op\":\"pwconv\",\"out\":6},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
        HEAD "{\"op\":\"dsconv\",\"out\":16},{\"op\":\"pwconv\",\"out\":6},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
        1e-4f);
}

static void test_deeper_shallower(void **state) {
  (void)state;
  const char *p = HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"dsconv\",\"out\":8},"
                  "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}";
  const char *c = HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"dsconv\",\"out\":8},"
                  "{\"op\":\"dsconv\",\"out\":8},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}";
  nas_inherit_stats st = morph(p, c, 1e-4f); /* the inserted dsconv starts as the identity */
  assert_int_equal(st.inserted, 1);
  assert_int_equal(st.identity, 1);
  assert_int_equal(st.matched, 4);
  st = morph(c, p, -1); /* shallower: the first dsconv kept, the second dropped */
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.matched, 4);
  assert_int_equal(st.copied, st.total);
  /* an inserted layer that changes the shape keeps its initialisation */
  const char *c2 = HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"dsconv\",\"out\":8},"
                   "{\"op\":\"dsconv\",\"out\":16,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}";
  st = morph(p, c2, -1);
  assert_int_equal(st.inserted, 1);
  assert_int_equal(st.identity, 0);
}

/* Masks are inherited with their weights; a narrower child takes the overlap. */
static void test_masks_narrower(void **state) {
  (void)state;
  const char *p = HEAD "{\"op\":\"conv\",\"out\":8,\"k\":3},{\"op\":\"conv\",\"out\":8,\"k\":3},"
                  "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}],\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.5}}";
  const char *c = HEAD "{\"op\":\"conv\",\"out\":6,\"k\":3},{\"op\":\"conv\",\"out\":8,\"k\":3},"
                  "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}],\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.8}}";
  nas_net *pn = build(p, 3), *cn = build(c, 4);
  nas_err e = {0};
  assert_int_equal(nas_prune_apply_targets(pn, 1.0, &e), NAS_OK);
  nas_inherit_stats st;
  assert_int_equal(nas_net_inherit(cn, pn, &st, &e), NAS_OK);
  const nas_node *pm = &pn->g->nodes[nas_graph_find(pn->g, "l1.conv.w.mask")];
  const nas_node *cm = &cn->g->nodes[nas_graph_find(cn->g, "l1.conv.w.mask")];
  const nas_node *cw = &cn->g->nodes[nas_graph_find(cn->g, "l1.conv.w")];
  /* child [8,3,3,6] takes the parent's [8,3,3,8] input channels 0..5 */
  for (int o = 0; o < 8; o++)
    for (int t = 0; t < 9; t++)
      for (int i = 0; i < 6; i++) {
        float m = cm->val[(o * 9 + t) * 6 + i];
        assert_true(m == pm->val[(o * 9 + t) * 8 + i]);
        if (m == 0.0f) assert_true(cw->val[(o * 9 + t) * 6 + i] == 0.0f); /* baked */
      }
  nas_net_free(pn), nas_net_free(cn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same),
      cmocka_unit_test(test_wider_and_kernel),
      cmocka_unit_test(test_deeper_shallower),
      cmocka_unit_test(test_masks_narrower),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
