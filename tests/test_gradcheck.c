/* Gradient check of every entry of the op table (and of composite blocks built from them).
 * One case per op: the test fails when an op is added without a case here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/gradcheck.h"
#include "train/ops.h"

#define TOL 2e-3

/* Fills a PARAM with uniform values in [-scale, scale], nudged away from the kinks of relu
 * and relu6 (0 and 6) so central differences never straddle one. */
static void fill(nas_node *p, nas_rng *r, float scale) {
  size_t n = nas_shape_numel(&p->shape);
  for (size_t i = 0; i < n; i++) {
    float v = (nas_rng_uniform(r) * 2 - 1) * scale;
    if (fabsf(v) < 0.05f) v = v < 0 ? -0.05f - v : 0.05f + v;
    if (fabsf(v - 6) < 0.05f) v += 0.1f;
    p->val[i] = v;
  }
}

static int param(nas_graph *g, const char *name, int nd, int d0, int d1, int d2, int d3) {
  int d[4] = {d0, d1, d2, d3};
  int id = nas_graph_param(g, name, nd, d, NULL);
  assert_true(id >= 0);
  return id;
}

/* Builds a graph for op (with variant v = 0, 1, 2: stride/padding or mode variants; ops
 * without variants ignore v), returns the output node id. Leaves are PARAMs. */
static int build_case(nas_graph *g, int op, int v) {
  nas_op_params p = {0};
  nas_err e = {0};
  int in[6], n_in = 0, x;
  switch (op) {
    case NAS_OP_CONV2D:
      x = param(g, "x", 4, 2, 5, 6, 3);
      in[n_in++] = x;
      in[n_in++] = param(g, "w", 4, 4, v ? 3 : 1, v ? 2 : 1, 3);
      in[n_in++] = param(g, "b", 1, 4, 0, 0, 0);
      p.sh = v ? 2 : 1, p.sw = v ? 1 : 1, p.padding = v == 1 ? NAS_PAD_SAME : NAS_PAD_VALID;
      break;
    case NAS_OP_DWCONV2D:
      in[n_in++] = param(g, "x", 4, 2, 5, 6, 3);
      in[n_in++] = param(g, "w", 3, 3, 3, 3, 0);
      in[n_in++] = param(g, "b", 1, 3, 0, 0, 0);
      p.sh = p.sw = v ? 2 : 1, p.padding = v ? NAS_PAD_SAME : NAS_PAD_VALID;
      break;
    case NAS_OP_DENSE:
      in[n_in++] = param(g, "x", 2, 3, 7, 0, 0);
      in[n_in++] = param(g, "w", 2, 4, 7, 0, 0);
      in[n_in++] = param(g, "b", 1, 4, 0, 0, 0);
      break;
    case NAS_OP_ADD:
      in[n_in++] = param(g, "a", 4, 2, 3, 3, 2);
      in[n_in++] = param(g, "b", 4, 2, 3, 3, 2);
      break;
    case NAS_OP_BATCHNORM: {
      int c[1] = {3};
      in[n_in++] = param(g, "x", 4, 2, 3, 2, 3);
      in[n_in++] = param(g, "gamma", 1, 3, 0, 0, 0);
      in[n_in++] = param(g, "beta", 1, 3, 0, 0, 0);
      in[n_in++] = nas_graph_state(g, "mean", 1, c, NULL);
      in[n_in++] = nas_graph_state(g, "var", 1, c, NULL);
      g->training = v != 1;
      p.act = v == 2 ? NAS_ACT_RELU : v == 1 ? NAS_ACT_RELU6 : NAS_ACT_NONE;
      break;
    }
    case NAS_OP_RELU:
    case NAS_OP_RELU6:
      in[n_in++] = param(g, "x", 4, 2, 3, 3, 4);
      break;
    case NAS_OP_MAXPOOL:
    case NAS_OP_AVGPOOL:
      in[n_in++] = param(g, "x", 4, 2, 5, 5, 2);
      p.kh = p.kw = v ? 3 : 2, p.sh = p.sw = 2, p.padding = v ? NAS_PAD_SAME : NAS_PAD_VALID;
      break;
    case NAS_OP_GAP:
      in[n_in++] = param(g, "x", 4, 2, 3, 4, 5);
      break;
    case NAS_OP_RESHAPE:
      in[n_in++] = param(g, "x", 4, 2, 3, 2, 2);
      p.nd = 1, p.d[0] = 12;
      break;
    case NAS_OP_DROPOUT:
      in[n_in++] = param(g, "x", 2, 3, 8, 0, 0);
      p.rate = 0.25f;
      g->training = v == 0;
      break;
    case NAS_OP_SOFTMAX_XENT: {
      int n[1] = {4};
      in[n_in++] = param(g, "z", 2, 4, 5, 0, 0);
      in[n_in++] = nas_graph_state(g, "labels", 1, n, NULL);
      break;
    }
    case NAS_OP_SQUARE:
    case NAS_OP_EXP:
      in[n_in++] = param(g, "x", 2, 3, 5, 0, 0);
      break;
    case NAS_OP_LRT: /* v0: training (eps replayed from the restored RNG), v1: eval */
      in[n_in++] = param(g, "mu", 4, 2, 3, 3, 2);
      in[n_in++] = param(g, "v", 4, 2, 3, 3, 2); /* made positive by the set-up */
      g->training = v != 1;
      break;
    case NAS_OP_SVDO_W: /* v0: training (identity), v1: eval (log alpha mask) */
    case NAS_OP_SVDO_KL: { /* v0: training, v1: eval (0), v2: training with a scale */
      int one[1] = {1};
      in[n_in++] = param(g, "theta", 2, 4, 6, 0, 0);
      in[n_in++] = param(g, "ls2", 2, 4, 6, 0, 0); /* set so that log alpha avoids kinks */
      if (op == NAS_OP_SVDO_KL && v == 2) in[n_in++] = nas_graph_state(g, "scale", 1, one, NULL);
      g->training = v != 1;
      break;
    }
    case NAS_OP_LSTM:
    case NAS_OP_GRU: {
      /* N=2, T=4, F=3, H=5; v0: every step, v1: last step, v2: every step without biases */
      int G = op == NAS_OP_LSTM ? 4 : 3;
      in[n_in++] = param(g, "x", 3, 2, 4, 3, 0);
      in[n_in++] = param(g, "w_ih", 2, G * 5, 3, 0, 0);
      in[n_in++] = param(g, "w_hh", 2, G * 5, 5, 0, 0);
      if (v != 2) {
        in[n_in++] = param(g, "b_ih", 1, G * 5, 0, 0, 0);
        in[n_in++] = param(g, "b_hh", 1, G * 5, 0, 0, 0);
      }
      p.kh = v != 1;
      break;
    }
    default:
      fail_msg("op '%s' has no gradient-check case", nas_op_name(op));
  }
  int out = nas_graph_apply(g, op, in, n_in, &p, "out", &e);
  if (out < 0) fail_msg("%s: %s", nas_op_name(op), e.msg);
  return out;
}

static void check_op(int op, int variant) {
  nas_graph *g = nas_graph_new(1, 7);
  int out = build_case(g, op, variant);
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  nas_rng r;
  nas_rng_seed(&r, 42 + (uint64_t)op);
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    if (nd->kind == NAS_NODE_PARAM) fill(nd, &r, op == NAS_OP_RELU6 ? 8.0f : 1.0f);
  }
  int lab = nas_graph_find(g, "labels");
  if (lab >= 0)
    for (int i = 0; i < 4; i++) g->nodes[lab].val[i] = (float)(i % 5);
  int var = nas_graph_find(g, "var");
  if (var >= 0)
    for (int i = 0; i < 3; i++) g->nodes[var].val[i] = 0.5f + (float)i;
  if (op == NAS_OP_MAXPOOL) { /* distinct values, at least 0.01 apart: no ties in a window */
    nas_node *x = &g->nodes[nas_graph_find(g, "x")];
    size_t n = nas_shape_numel(&x->shape);
    int *perm = malloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++) perm[i] = (int)i;
    nas_rng_shuffle(&r, perm, (int)n);
    for (size_t i = 0; i < n; i++) x->val[i] = 0.02f * (float)perm[i] - 0.5f;
    free(perm);
  }
  int vn = nas_graph_find(g, "v");
  if (op == NAS_OP_LRT) /* variances in [0.1, 1.1] */
    for (int i = 0; i < 36; i++) g->nodes[vn].val[i] = 0.6f + 0.5f * g->nodes[vn].val[i];
  int th = nas_graph_find(g, "theta"), ls2 = nas_graph_find(g, "ls2");
  if (th >= 0) { /* log alpha alternating -4 and 5 (mask threshold 3, KL clip at +-10) */
    for (int i = 0; i < 24; i++) {
      float t = g->nodes[th].val[i];
      g->nodes[ls2].val[i] = (i % 2 ? 5.0f : -4.0f) + logf(t * t + 1e-8f);
    }
    int sc = nas_graph_find(g, "scale");
    if (sc >= 0) g->nodes[sc].val[0] = 0.25f;
  }
  char where[256];
  /* a fused activation after BN sees outputs near its kink: use a smaller step there */
  /* (and for the KL, whose log alpha curves as -2 log|theta|) */
  double err = nas_gradcheck(g, out, (op == NAS_OP_BATCHNORM && variant) || op == NAS_OP_SVDO_KL ? 1e-3f : 1e-2f,
                             0, where, sizeof where);
  if (err > TOL) fail_msg("%s (variant %d): relative error %.3g at %s", nas_op_name(op), variant, err, where);
  nas_graph_free(g);
}

static void test_every_op(void **state) {
  (void)state;
  for (int op = 0; op < NAS_OP_COUNT; op++) {
    /* fake quantisation is piecewise constant: its documented surrogate gradients (STE,
       alpha-blending) are checked in tests/test_qat.c */
    if (op == NAS_OP_FAKEQUANT || op == NAS_OP_ALPHA_BLEND) continue;
    /* the DNAS gate ops are checked, with their mask/weight gradients, in tests/test_dnas.c */
    if (op == NAS_OP_MASK_MUL || op == NAS_OP_MIX || op == NAS_OP_CHANPAD) continue;
    for (int v = 0; v < 3; v++) check_op(op, v); /* variants: see build_case */
  }
}

/* A composite block (dsconv: dw + bn + relu + pw + bn + relu6) checked end to end. */
static void test_dsconv_block(void **state) {
  (void)state;
  nas_graph *g = nas_graph_new(1, 3);
  nas_err e = {0};
  nas_op_params p = {0};
  int c3[1] = {3}, c4[1] = {4};
  int x = param(g, "x", 4, 2, 4, 4, 3);
  int dw = param(g, "dw", 3, 3, 3, 3, 0);
  p.sh = p.sw = 1, p.padding = NAS_PAD_SAME;
  int in[5] = {x, dw};
  int h = nas_graph_apply(g, NAS_OP_DWCONV2D, in, 2, &p, "dw", &e);
  int bn1[5] = {h, param(g, "g1", 1, 3, 0, 0, 0), param(g, "b1", 1, 3, 0, 0, 0),
                nas_graph_state(g, "m1", 1, c3, NULL), nas_graph_state(g, "v1", 1, c3, NULL)};
  h = nas_graph_apply(g, NAS_OP_BATCHNORM, bn1, 5, NULL, "bn1", &e);
  h = nas_graph_apply(g, NAS_OP_RELU, &h, 1, NULL, "r1", &e);
  int pw[2] = {h, param(g, "pw", 4, 4, 1, 1, 3)};
  h = nas_graph_apply(g, NAS_OP_CONV2D, pw, 2, &p, "pw", &e);
  int bn2[5] = {h, param(g, "g2", 1, 4, 0, 0, 0), param(g, "b2", 1, 4, 0, 0, 0),
                nas_graph_state(g, "m2", 1, c4, NULL), nas_graph_state(g, "v2", 1, c4, NULL)};
  h = nas_graph_apply(g, NAS_OP_BATCHNORM, bn2, 5, NULL, "bn2", &e);
  int out = nas_graph_apply(g, NAS_OP_RELU6, &h, 1, NULL, "r2", &e);
  assert_true(out >= 0);
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  nas_rng r;
  nas_rng_seed(&r, 5);
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_PARAM) fill(&g->nodes[i], &r, 1.0f);
  char where[256];
  double err = nas_gradcheck(g, out, 1e-3f, 0, where, sizeof where);
  if (err > 5e-3) fail_msg("dsconv block: relative error %.3g at %s", err, where);
  nas_graph_free(g);
}

/* Shape errors are reported, not crashed on. */
static void test_shape_errors(void **state) {
  (void)state;
  nas_graph *g = nas_graph_new(2, 1);
  nas_err e = {0};
  int x = nas_graph_input(g, "x", 3, (int[]){4, 4, 3}, &e);
  int w = param(g, "w", 4, 8, 3, 3, 2);
  int in[2] = {x, w};
  nas_op_params p = {.sh = 1, .sw = 1};
  assert_int_equal(nas_graph_apply(g, NAS_OP_CONV2D, in, 2, &p, "c", &e), -1);
  assert_non_null(strstr(e.msg, "3 input channels, weights expect 2"));
  int w2 = param(g, "w2", 4, 8, 5, 5, 3);
  in[1] = w2;
  assert_int_equal(nas_graph_apply(g, NAS_OP_CONV2D, in, 2, &p, "c", &e), -1);
  assert_non_null(strstr(e.msg, "does not fit"));
  assert_int_equal(nas_graph_apply(g, NAS_OP_ADD, in, 1, NULL, "a", &e), -1);
  nas_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_op),
      cmocka_unit_test(test_dsconv_block),
      cmocka_unit_test(test_shape_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
