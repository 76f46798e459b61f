/* Quantisation-aware training: the FAKEQUANT and ALPHA_BLEND ops (forward against the int8
 * arithmetic of train/quant.h, gradients against their documented surrogates: STE identity
 * for weights, STE with clipping for activations, (1-alpha) for alpha-blending), the EMA range
 * tracking, and the end-to-end contract: a QAT-trained network's fake-quant forward equals
 * the int8 graph deploy/ lowers from its weights and learned ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/gradcheck.h"
#include "tests/test_util.h"
#include "deploy/lower.h"
#include "train/ops.h"
#include "train/qat.h"
#include "train/quant.h"

static int param(nas_graph *g, const char *name, int nd, int d0, int d1, int d2, int d3) {
  int d[4] = {d0, d1, d2, d3};
  int id = nas_graph_param(g, name, nd, d, NULL);
  assert_true(id >= 0);
  return id;
}

static int state(nas_graph *g, const char *name, int n) {
  int id = nas_graph_state(g, name, 1, &n, NULL);
  assert_true(id >= 0);
  return id;
}

static int apply(nas_graph *g, int op, const int *in, int n_in, const nas_op_params *p, const char *nm) {
  nas_err e = {0};
  int id = nas_graph_apply(g, op, in, n_in, p, nm, &e);
  if (id < 0) fail_msg("%s: %s", nm, e.msg);
  return id;
}

static void fill_uniform(nas_node *n, nas_rng *r, float scale) {
  size_t k = nas_shape_numel(&n->shape);
  for (size_t i = 0; i < k; i++) n->val[i] = (nas_rng_uniform(r) * 2 - 1) * scale;
}

/* ---- forward: weights --------------------------------------------------------------------- */

/* FAKEQUANT on weights equals dequantised nas_q_weights (per channel along the given axis, or
 * per tensor), for conv [Cout,KH,KW,Cin] (axis 0), depthwise [KH,KW,C] (axis 2), dense (-1). */
static void test_weight_forward(void **st) {
  (void)st;
  struct { int nd, d[4], axis, C, per, cstride, kstride; } cases[] = {
      {4, {5, 3, 3, 2}, 0, 5, 18, 18, 1},
      {3, {3, 3, 4, 0}, 2, 4, 9, 1, 4},
      {2, {6, 7, 0, 0}, -1, 1, 42, 0, 1},
  };
  for (int t = 0; t < 3; t++) {
    nas_graph *g = nas_graph_new(1, 3);
    int w = param(g, "w", cases[t].nd, cases[t].d[0], cases[t].d[1], cases[t].d[2], cases[t].d[3]);
    nas_op_params p = {.kh = cases[t].axis};
    int y = apply(g, NAS_OP_FAKEQUANT, &w, 1, &p, "w.fq");
    nas_err e = {0};
    assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
    nas_rng r;
    nas_rng_seed(&r, 10 + (uint64_t)t);
    fill_uniform(&g->nodes[w], &r, 0.7f);
    g->nodes[w].val[0] = 0; /* an exact zero stays zero */
    nas_graph_forward(g, 1, y);
    size_t n = nas_shape_numel(&g->nodes[w].shape);
    int8_t *q = malloc(n);
    float sc[8];
    nas_q_weights(g->nodes[w].val, cases[t].C, cases[t].per, cases[t].cstride, cases[t].kstride, q, sc);
    for (int c = 0; c < cases[t].C; c++)
      for (int k = 0; k < cases[t].per; k++) {
        size_t i = (size_t)c * cases[t].cstride + (size_t)k * cases[t].kstride;
        float want = (float)q[i] * sc[c];
        if (fabsf(g->nodes[y].val[i] - want) > 1e-7f)
          fail_msg("case %d element %zu: %g, int8 arithmetic gives %g", t, i, g->nodes[y].val[i], want);
      }
    assert_true(g->nodes[y].val[0] == 0.0f);
    free(q);
    nas_graph_free(g);
  }
}

/* Per-channel symmetric quantisation commutes with a per-channel factor (the batch-norm fold):
 * q(w*s) = s*q(w). This is why the QAT network may quantise before the batch-norm. */
static void test_fold_commutes(void **st) {
  (void)st;
  nas_graph *g = nas_graph_new(1, 3);
  int w = param(g, "w", 4, 4, 3, 3, 2), ws = param(g, "ws", 4, 4, 3, 3, 2);
  nas_op_params p = {.kh = 0};
  int a = apply(g, NAS_OP_FAKEQUANT, &w, 1, &p, "a"), b = apply(g, NAS_OP_FAKEQUANT, &ws, 1, &p, "b");
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  nas_rng r;
  nas_rng_seed(&r, 5);
  fill_uniform(&g->nodes[w], &r, 1.0f);
  const float s[4] = {0.37f, -1.9f, 2.5f, 0.011f};
  for (int i = 0; i < 4 * 18; i++) g->nodes[ws].val[i] = g->nodes[w].val[i] * s[i / 18];
  nas_graph_forward(g, 1, -1);
  int mism = 0;
  for (int i = 0; i < 4 * 18; i++) {
    float want = g->nodes[a].val[i] * s[i / 18], got = g->nodes[b].val[i];
    float step = fabsf(s[i / 18]) * 1.0f / 127.0f;
    if (fabsf(want - got) > 1e-5f * step * 127) mism++;
  }
  assert_true(mism <= 1); /* a float tie at a rounding boundary at most */
  nas_graph_free(g);
}

/* ---- forward: activations and the EMA ----------------------------------------------------- */

static void test_act_forward_and_ema(void **st) {
  (void)st;
  nas_graph *g = nas_graph_new(4, 3);
  int x = nas_graph_input(g, "x", 1, (int[]){6}, NULL);
  int rg = state(g, "r", 3);
  nas_op_params p = {.momentum = 0.9f};
  int in[2] = {x, rg};
  int y = apply(g, NAS_OP_FAKEQUANT, in, 2, &p, "y");
  nas_op_params pf = {.kw = 1};
  int y2 = apply(g, NAS_OP_FAKEQUANT, (int[]){y, rg}, 2, &pf, "y2");
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  float *xv = g->nodes[x].val, *r = g->nodes[rg].val;
  for (int i = 0; i < 12; i++) xv[i] = -1.0f + 0.25f * (float)i; /* -1 .. 1.75 */
  g->training = 1;
  nas_graph_forward(g, 2, -1);
  /* first batch sets the range */
  assert_true(r[0] == -1.0f && r[1] == 1.75f && r[2] == 1.0f);
  float s;
  int32_t zp;
  nas_q_choose(-1.0f, 1.75f, &s, &zp);
  for (int i = 0; i < 12; i++) {
    float want = (float)(nas_q_int8(xv[i], s, zp) - zp) * s;
    assert_true(g->nodes[y].val[i] == want);
    assert_true(g->nodes[y2].val[i] == want); /* on the grid: re-quantising changes nothing */
  }
  /* second batch: EMA with decay 0.9 (the frozen second use does not update) */
  for (int i = 0; i < 12; i++) xv[i] = -3.0f + 0.5f * (float)i; /* -3 .. 2.5 */
  nas_graph_forward(g, 2, -1);
  assert_true(fabsf(r[0] - (0.9f * -1.0f + 0.1f * -3.0f)) < 1e-6f);
  assert_true(fabsf(r[1] - (0.9f * 1.75f + 0.1f * 2.5f)) < 1e-6f);
  /* values outside the range saturate */
  nas_q_choose(r[0], r[1], &s, &zp);
  assert_true(fabsf(g->nodes[y].val[0] - (float)(-128 - zp) * s) < 1e-6f);
  /* eval mode: no update */
  float keep0 = r[0], keep1 = r[1];
  g->training = 0;
  nas_graph_forward(g, 2, -1);
  assert_true(r[0] == keep0 && r[1] == keep1);
  nas_graph_free(g);
}

/* ---- gradients against the documented surrogates ------------------------------------------ */

/* Activation STE: the gradient is that of clamp(x, rmin, rmax), rmin/rmax the real range the
 * int8 grid represents. Checked by central differences of that surrogate in double. */
static void test_act_ste_gradient(void **st) {
  (void)st;
  nas_graph *g = nas_graph_new(1, 3);
  int x = param(g, "x", 4, 2, 3, 3, 2);
  int rg = state(g, "r", 3);
  int y = apply(g, NAS_OP_FAKEQUANT, (int[]){x, rg}, 2, NULL, "y");
  /* followed by a differentiable op so the surrogate is checked through the tape */
  int z = apply(g, NAS_OP_RELU, &y, 1, NULL, "z");
  (void)z;
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  float *r = g->nodes[rg].val;
  r[0] = -0.5f, r[1] = 0.7f, r[2] = 1;
  g->training = 0;
  float s;
  int32_t zp;
  nas_q_choose(r[0], r[1], &s, &zp);
  const double rmin = s * (-128.0 - zp), rmax = s * (127.0 - zp);
  nas_rng rn;
  nas_rng_seed(&rn, 9);
  nas_node *xn = &g->nodes[x];
  size_t n = nas_shape_numel(&xn->shape);
  int inside = 0, outside = 0;
  for (size_t i = 0; i < n; i++) {
    float v;
    do v = (nas_rng_uniform(&rn) * 2 - 1) * 1.2f;
    while (fabs(v - rmin) < 0.01 || fabs(v - rmax) < 0.01 || fabsf(v) < 0.02f);
    xn->val[i] = v;
    inside += v > rmin && v < rmax, outside += !(v > rmin && v < rmax);
  }
  assert_true(inside > 5 && outside > 5);
  float R[36];
  for (size_t i = 0; i < n; i++) R[i] = nas_rng_uniform(&rn) * 2 - 1;
  nas_graph_forward(g, 1, y);
  nas_graph_backward_seed(g, y, R);
  const double eps = 1e-3;
  for (size_t i = 0; i < n; i++) {
    double v = xn->val[i];
    double fp = R[i] * fmin(fmax(v + eps, rmin), rmax), fm = R[i] * fmin(fmax(v - eps, rmin), rmax);
    double num = (fp - fm) / (2 * eps);
    if (fabs(num - xn->grad[i]) > 1e-4)
      fail_msg("x[%zu] = %g: analytical %g, surrogate %g", i, v, (double)xn->grad[i], num);
  }
  nas_graph_free(g);
}

/* Weight STE: conv(x, fq(w)) has, with respect to w, the gradient conv has with respect to
 * its weight evaluated at fq(w) (the identity surrogate); the conv gradient itself is checked
 * numerically here on the twin graph. */
static void test_weight_ste_gradient(void **st) {
  (void)st;
  nas_graph *g = nas_graph_new(1, 3);
  int x = param(g, "x", 4, 2, 5, 5, 3), w = param(g, "w", 4, 4, 3, 3, 3);
  nas_op_params pq = {.kh = 0}, pc = {.sh = 1, .sw = 1, .padding = NAS_PAD_SAME};
  int wq = apply(g, NAS_OP_FAKEQUANT, &w, 1, &pq, "wq");
  int y = apply(g, NAS_OP_CONV2D, (int[]){x, wq}, 2, &pc, "y");
  nas_graph *t = nas_graph_new(1, 3);
  int tx = param(t, "x", 4, 2, 5, 5, 3), tw = param(t, "w", 4, 4, 3, 3, 3);
  int ty = apply(t, NAS_OP_CONV2D, (int[]){tx, tw}, 2, &pc, "y");
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  assert_int_equal(nas_graph_alloc(t, &e), NAS_OK);
  nas_rng r;
  nas_rng_seed(&r, 21);
  fill_uniform(&g->nodes[x], &r, 1);
  fill_uniform(&g->nodes[w], &r, 0.5f);
  nas_graph_forward(g, 1, wq);
  size_t nx = nas_shape_numel(&g->nodes[x].shape), nw = nas_shape_numel(&g->nodes[w].shape);
  memcpy(t->nodes[tx].val, g->nodes[x].val, nx * sizeof(float));
  memcpy(t->nodes[tw].val, g->nodes[wq].val, nw * sizeof(float));
  char where[200];
  double err = nas_gradcheck(t, ty, 1e-2f, 0, where, sizeof where);
  if (err > 2e-3) fail_msg("conv twin: %g at %s", err, where);
  size_t ny = nas_node_numel(g, &g->nodes[y]);
  float *R = malloc(ny * sizeof *R);
  for (size_t i = 0; i < ny; i++) R[i] = nas_rng_uniform(&r) * 2 - 1;
  nas_graph_forward(g, 1, y);
  nas_graph_backward_seed(g, y, R);
  nas_graph_forward(t, 1, ty);
  nas_graph_backward_seed(t, ty, R);
  for (size_t i = 0; i < nw; i++)
    if (fabsf(g->nodes[w].grad[i] - t->nodes[tw].grad[i]) > 1e-5f * (1 + fabsf(t->nodes[tw].grad[i])))
      fail_msg("w[%zu]: %g, surrogate %g", i, (double)g->nodes[w].grad[i], (double)t->nodes[tw].grad[i]);
  for (size_t i = 0; i < nx; i++) /* and x sees the quantised weights */
    assert_true(fabsf(g->nodes[x].grad[i] - t->nodes[tx].grad[i]) <= 1e-5f * (1 + fabsf(t->nodes[tx].grad[i])));
  free(R);
  nas_graph_free(g);
  nas_graph_free(t);
}

/* Alpha-blending: y = (1-a) w + a q(w). Forward against the formula; the gradient (1-a)*dy is
 * checked against central differences of the op itself at weights that are not the largest of
 * their channel (where q is locally constant, so the true derivative is exactly 1-a); the
 * channel maxima, which move the scale, are where the paper's "no gradient through q" is a
 * choice rather than the derivative, and are left out. */
static void test_alpha_blend(void **st) {
  (void)st;
  const float alphas[3] = {0.0f, 0.35f, 1.0f};
  for (int t = 0; t < 3; t++) {
    nas_graph *g = nas_graph_new(1, 3);
    int w = param(g, "w", 4, 3, 2, 2, 4);
    int al = state(g, "alpha", 1);
    nas_op_params p = {.kh = 0};
    int y = apply(g, NAS_OP_ALPHA_BLEND, (int[]){w, al}, 2, &p, "y");
    int fq = apply(g, NAS_OP_FAKEQUANT, &w, 1, &p, "fq");
    nas_err e = {0};
    assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
    g->nodes[al].val[0] = alphas[t];
    nas_rng r;
    nas_rng_seed(&r, 31);
    nas_node *wn = &g->nodes[w];
    const int per = 16;
    /* channel c: max 1+c, other weights in the middle of a quantisation step */
    for (int c = 0; c < 3; c++) {
      float step = (1.0f + (float)c) / 127.0f;
      for (int k = 0; k < per; k++) {
        int lev = (int)nas_rng_below(&r, 200) - 100;
        wn->val[c * per + k] = k == 5 ? (1.0f + (float)c) * (c == 1 ? -1 : 1) : ((float)lev + 0.5f) * step * 0.9f;
      }
    }
    nas_graph_forward(g, 1, -1);
    for (int i = 0; i < 3 * per; i++) {
      float want = (1 - alphas[t]) * wn->val[i] + alphas[t] * g->nodes[fq].val[i];
      assert_true(fabsf(g->nodes[y].val[i] - want) <= 1e-6f);
    }
    float R[48];
    for (int i = 0; i < 48; i++) R[i] = nas_rng_uniform(&r) * 2 - 1;
    nas_graph_backward_seed(g, y, R);
    const float eps = 1e-4f;
    for (int i = 0; i < 3 * per; i++) {
      assert_true(fabsf(wn->grad[i] - (1 - alphas[t]) * R[i]) <= 1e-6f);
      if (i % per == 5) continue; /* channel maximum: see above */
      float keep = wn->val[i];
      double L[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        wn->val[i] = keep + (sgn ? -eps : eps);
        nas_graph_forward(g, 1, y);
        L[sgn] = 0;
        for (int k = 0; k < 48; k++) L[sgn] += (double)R[k] * g->nodes[y].val[k];
      }
      wn->val[i] = keep;
      double num = (L[0] - L[1]) / (2 * eps);
      if (fabs(num - wn->grad[i]) > 2e-3) fail_msg("alpha %g w[%d]: analytical %g numerical %g", alphas[t], i, (double)wn->grad[i], num);
    }
    nas_graph_free(g);
  }
}

static void test_alpha_schedule(void **st) {
  (void)st;
  assert_true(nas_qat_alpha_at(0, 100, 0.8f) == 0.0f);
  float prev = 0;
  for (long s = 1; s <= 100; s++) {
    float a = nas_qat_alpha_at(s, 100, 0.8f);
    assert_true(a >= prev && a <= 1.0f);
    prev = a;
  }
  assert_true(nas_qat_alpha_at(80, 100, 0.8f) == 1.0f);
  assert_true(fabsf(nas_qat_alpha_at(40, 100, 0.8f) - 0.875f) < 1e-6f);
}

/* ---- end to end: QAT network == exported int8 graph --------------------------------------- */

static const char *ARCH =
    "{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8},"
    "{\"op\":\"mbconv\",\"out\":8,\"expand\":2},{\"op\":\"maxpool\"},"
    "{\"op\":\"dsconv\",\"out\":16},{\"op\":\"avgpool\",\"k\":2,\"stride\":1},{\"op\":\"gap\"},"
    "{\"op\":\"dropout\",\"rate\":0.1},{\"op\":\"fc\",\"out\":4}]}";

static void qat_equals_int8(int mode) {
  nas_data d = {0};
  test_make_blob_task(&d.train, 1200, 11);
  test_make_blob_task(&d.val, 200, 12);
  test_make_blob_task(&d.test, 400, 13);
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(ARCH, "t.json", 32, 4, &net, &e)) fail_msg("build: %s", e.msg);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 1, cfg.batch = 32, cfg.lr = 0.01f, cfg.seed = 4;
  nas_train_result tr;
  if (nas_train(net, &d, &cfg, &tr, &e)) fail_msg("%s", e.msg);
  /* QAT phase by hand, to keep the QAT network for the comparison */
  nas_qat_cfg qc;
  nas_qat_cfg_default(&qc);
  qc.mode = mode;
  nas_qat *q = NULL;
  nas_calib c0, c;
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 500;
  if (nas_calibrate(net, &d.train, &cc, &c0, &e)) fail_msg("%s", e.msg);
  if (nas_qat_build(net, &qc, &q, &e)) fail_msg("qat build: %s", e.msg);
  assert_int_equal(nas_qat_set_ranges(q, &c0, &e), NAS_OK);
  nas_calib_free(&c0);
  cfg.lr = 0.002f;
  if (mode == NAS_QAT_ALPHA) nas_qat_set_alpha(q, 0.5f);
  if (nas_train(q->net, &d, &cfg, &tr, &e)) fail_msg("qat train: %s", e.msg);
  nas_qat_set_alpha(q, 1);
  if (nas_qat_export(q, net, &c, &e)) fail_msg("export: %s", e.msg);
  nas_g8_graph g8;
  if (nas_lower(net, &c, NULL, &g8, &e)) fail_msg("lower: %s", e.msg);
  /* Layer by layer: every int8 operator, fed the QAT network's (fake-quantised) values of its
     inputs, must reproduce the QAT network's value of its output within one step (float
     rounding at ties and the int32 bias rounding); without this forcing, a one-step difference
     in one layer is amplified by the scale ratios of the next ones. */
  nas_graph *qg = q->net->g;
  qg->training = 0;
  int8_t **act = calloc((size_t)g8.ntensors, sizeof *act);
  int *node = malloc(sizeof *node * (size_t)g8.ntensors);
  for (int t = 0; t < g8.ntensors; t++) {
    const nas_g8_tensor *T = &g8.tensors[t];
    node[t] = -1;
    if (T->data) continue;
    act[t] = malloc(nas_g8_numel(T));
    char nm[64];
    snprintf(nm, sizeof nm, "%s.fq", T->name);
    if ((node[t] = nas_graph_find(qg, nm)) < 0) node[t] = nas_graph_find(qg, T->name);
    if (node[t] < 0 && strstr(T->name, ".pool")) { /* GAP's pooled [1,1,1,C] before the reshape */
      snprintf(nm, sizeof nm, "%.*s.fq", (int)(strstr(T->name, ".pool") - T->name), T->name);
      node[t] = nas_graph_find(qg, nm);
    }
    if (node[t] < 0) fail_msg("int8 tensor '%s' has no QAT node", T->name);
  }
  const int N = 50;
  long exact = 0, off1 = 0, worse = 0;
  int8_t exp_out[8 * 8 * 32];
  for (int s = 0; s < N; s++) {
    memcpy(qg->nodes[q->net->input].val, d.test.x + (size_t)s * 64, 64 * sizeof(float));
    nas_graph_forward(qg, 1, -1);
    for (int t = 0; t < g8.ntensors; t++) {
      if (!act[t]) continue;
      const nas_g8_tensor *T = &g8.tensors[t];
      for (size_t k = 0; k < nas_g8_numel(T); k++) {
        double v = (double)qg->nodes[node[t]].val[k] / T->scale[0] + T->zero_point[0];
        if (fabs(v - round(v)) > 1e-3 || v < -128.5 || v > 127.5)
          fail_msg("QAT value of '%s' is off the int8 grid: %g steps", T->name, v);
        act[t][k] = (int8_t)lround(v);
      }
    }
    for (int o = 0; o < g8.nops; o++) {
      int t = g8.ops[o].out;
      size_t n = nas_g8_numel(&g8.tensors[t]);
      assert_true(n <= sizeof exp_out);
      memcpy(exp_out, act[t], n);
      assert_int_equal(nas_g8_run_op(&g8, o, act, &e), NAS_OK);
      for (size_t k = 0; k < n; k++) {
        int dv = abs((int)act[t][k] - exp_out[k]);
        exact += dv == 0, off1 += dv == 1, worse += dv > 1;
      }
      memcpy(act[t], exp_out, n);
    }
  }
  print_message("%s, layer by layer: %ld equal, %ld one step apart, %ld more\n", nas_qat_mode_name(mode),
                exact, off1, worse);
  assert_true(worse == 0);
  assert_true(exact >= (exact + off1) * 97 / 100);
  for (int t = 0; t < g8.ntensors; t++) free(act[t]);
  free(act), free(node);
  /* end to end (int8 graph run freely): the same predictions */
  int agree = 0;
  int8_t qin[64], qout[4];
  for (int s = 0; s < 200; s++) {
    memcpy(qg->nodes[q->net->input].val, d.test.x + (size_t)s * 64, 64 * sizeof(float));
    nas_graph_forward(qg, 1, q->net->logits);
    const float *z = qg->nodes[q->net->logits].val;
    nas_g8_quantize_input(&g8, d.test.x + (size_t)s * 64, qin);
    assert_int_equal(nas_g8_run(&g8, qin, qout, &e), NAS_OK);
    int bf = 0, bq = 0;
    for (int k = 1; k < 4; k++) {
      if (z[k] > z[bf]) bf = k;
      if (qout[k] > qout[bq]) bq = k;
    }
    agree += bf == bq;
  }
  print_message("argmax agrees on %d/200\n", agree);
  assert_true(agree >= 196);
  /* and the accuracies match (the QAT network is what deploy/ ships) */
  double acc_q, acc8;
  assert_int_equal(nas_evaluate(q->net, &d.test, &acc_q, NULL, &e), NAS_OK);
  assert_int_equal(nas_g8_accuracy(&g8, &d.test, 0, &acc8, &e), NAS_OK);
  print_message("QAT fake-quant accuracy %.4f, int8 graph %.4f\n", acc_q, acc8);
  assert_true(fabs(acc_q - acc8) <= 0.01);
  assert_true(acc8 > 0.8);
  nas_g8_graph_free(&g8);
  nas_calib_free(&c);
  nas_qat_free(q);
  nas_net_free(net);
  free(d.train.x), free(d.train.y), free(d.val.x), free(d.val.y), free(d.test.x), free(d.test.y);
}

static void test_qat_ste_equals_int8(void **st) {
  (void)st;
  qat_equals_int8(NAS_QAT_STE);
}

static void test_qat_alpha_equals_int8(void **st) {
  (void)st;
  qat_equals_int8(NAS_QAT_ALPHA);
}

/* nas_qat_run (the CLI's path) and the ranges JSON round trip; malformed ranges refused. */
static void test_run_and_ranges_json(void **st) {
  (void)st;
  nas_data d = {0};
  test_make_blob_task(&d.train, 600, 1);
  test_make_blob_task(&d.val, 100, 2);
  test_make_blob_task(&d.test, 100, 3);
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(ARCH, "t.json", 32, 4, &net, &e)) fail_msg("build: %s", e.msg);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 1, cfg.batch = 32, cfg.lr = 0.005f;
  nas_qat_cfg qc;
  nas_qat_cfg_default(&qc);
  qc.mode = NAS_QAT_ALPHA;
  nas_train_result r;
  nas_calib c, c2;
  if (nas_qat_run(net, &d, &qc, &cfg, &r, &c, &e)) fail_msg("run: %s", e.msg);
  cJSON *j = nas_qat_ranges_to_json(net, &c);
  assert_non_null(j);
  assert_int_equal(nas_qat_ranges_from_json(net, j, &c2, &e), NAS_OK);
  int pts = 0;
  for (int i = 0; i < c.n; i++) {
    assert_int_equal(c.point[i], c2.point[i]);
    if (!c.point[i]) continue;
    pts++;
    assert_true(c.lo[i] == c2.lo[i] && c.hi[i] == c2.hi[i]);
    assert_true(c.lo[i] <= 0 && c.hi[i] >= 0 && c.hi[i] > c.lo[i]);
  }
  assert_true(pts >= 8);
  nas_calib_free(&c2);
  /* a missing point and an unknown name are refused, naming the entry */
  cJSON *first = j->child;
  char name[64];
  snprintf(name, sizeof name, "%s", first->string);
  cJSON_DeleteItemFromObjectCaseSensitive(j, name);
  assert_int_equal(nas_qat_ranges_from_json(net, j, &c2, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, name));
  double v[2] = {0, 1};
  cJSON_AddItemToObject(j, name, cJSON_CreateDoubleArray(v, 2));
  cJSON_AddItemToObject(j, "l99.nothing", cJSON_CreateDoubleArray(v, 2));
  assert_int_equal(nas_qat_ranges_from_json(net, j, &c2, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "l99.nothing"));
  cJSON_DeleteItemFromObjectCaseSensitive(j, "l99.nothing");
  double bad[2] = {1, -1};
  cJSON_ReplaceItemInObjectCaseSensitive(j, name, cJSON_CreateDoubleArray(bad, 2));
  assert_int_equal(nas_qat_ranges_from_json(net, j, &c2, &e), NAS_EFORMAT);
  cJSON_Delete(j);
  /* unknown method names are refused */
  int m;
  assert_int_equal(nas_qat_mode_parse("lsq", &m, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "lsq"));
  nas_calib_free(&c);
  nas_net_free(net);
  free(d.train.x), free(d.train.y), free(d.val.x), free(d.val.y), free(d.test.x), free(d.test.y);
}

/* ---- the CLI: nas train --qat, nas export with the learned ranges ------------------------- */

static char cdir[256], out_path[300], err_path[300];

static int run(const char *args) { return test_run_nas(cdir, args, out_path, err_path); }

static double json_num(const char *text, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *t = strstr(text, k);
  if (!t) fail_msg("no %s in: %s", key, text);
  return atof(t + strlen(k));
}

static void expect_usage(const char *args, const char *frag) {
  assert_int_equal(run(args), 2);
  char *e = test_slurp(err_path), *nl = strchr(e, '\n');
  if (strncmp(e, "nas: error: ", 12) || !nl || nl[1] || !strstr(e, frag))
    fail_msg("%s: expected one error line with '%s', got: %s", args, frag, e);
}

static void test_cli_qat(void **st) {
  (void)st;
  snprintf(cdir, sizeof cdir, "/tmp/nas-qat-XXXXXX");
  assert_non_null(mkdtemp(cdir));
  snprintf(out_path, sizeof out_path, "%s/out.txt", cdir);
  snprintf(err_path, sizeof err_path, "%s/err.txt", cdir);
  char p[512];
  snprintf(p, sizeof p, "%s/data", cdir);
  assert_int_equal(mkdir(p, 0777), 0);
  test_write_bar_idx(p, "train", 1200, 1);
  test_write_bar_idx(p, "t10k", 300, 2);
  snprintf(p, sizeof p, "%s/arch.json", cdir);
  FILE *f = fopen(p, "w");
  fputs("{\"input\":[10,10,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":8},"
        "{\"op\":\"dsconv\",\"out\":16,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}", f);
  fclose(f);
  expect_usage("train --arch arch.json --dataset idx:data --qat lsq", "unknown QAT method 'lsq'");
  expect_usage("train --arch arch.json --dataset idx:data --epochs 2 --qat ste --qat-epochs 3", "exceeds --epochs");
  expect_usage("train --arch arch.json --dataset idx:data --qat-epochs 1", "needs --qat");
  for (int m = 0; m < 2; m++) {
    const char *meth = m ? "alpha" : "ste";
    char args[512];
    snprintf(args, sizeof args, "train --arch arch.json --dataset idx:data --epochs 3 --qat-epochs %d --qat %s "
             "--batch 32 --lr 0.01 --seed 4 --threads 1 --save q.ckpt --json", m ? 3 : 1, meth);
    if (run(args)) fail_msg("%s: %s", args, test_slurp(err_path));
    char *out = test_slurp(out_path);
    if (!strstr(out, "epoch 3/3") || !strstr(out, meth)) fail_msg("train output: %s", out);
    /* every epoch counted out of --epochs (the float phase said 1/2, 2/2, then QAT 3/3) */
    if (!strstr(out, "epoch 1/3") || !strstr(out, "epoch 2/3") || strstr(out, "epoch 1/2"))
      fail_msg("train output: %s", out);
    double qat_acc = json_num(out, "test_acc");
    if (m == 0) json_num(out, "float_test_acc"); /* a float phase ran before the QAT epoch */
    assert_int_equal(run("export --checkpoint q.ckpt --format tflite --out exp --json"), 0);
    out = test_slurp(out_path);
    if (!strstr(out, "QAT ranges")) fail_msg("export did not use the QAT ranges: %s", out);
    double int8_acc = json_num(out, "int8_test_acc");
    print_message("%s: QAT fake-quant test %.4f, exported int8 %.4f\n", meth, qat_acc, int8_acc);
    if (qat_acc < 0.9 || fabs(int8_acc - qat_acc) > 0.01)
      fail_msg("%s: QAT %.4f vs int8 %.4f", meth, qat_acc, int8_acc);
    assert_int_equal(run("export --checkpoint q.ckpt --format tflite --out exp --recalibrate"), 0);
    assert_non_null(strstr(test_slurp(out_path), "minmax calibration"));
  }
  snprintf(p, sizeof p, "rm -rf %s", cdir);
  assert_int_equal(system(p), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weight_forward),        cmocka_unit_test(test_fold_commutes),
      cmocka_unit_test(test_act_forward_and_ema),   cmocka_unit_test(test_act_ste_gradient),
      cmocka_unit_test(test_weight_ste_gradient),   cmocka_unit_test(test_alpha_blend),
      cmocka_unit_test(test_alpha_schedule),        cmocka_unit_test(test_qat_ste_equals_int8),
      cmocka_unit_test(test_qat_alpha_equals_int8), cmocka_unit_test(test_run_and_ranges_json),
      cmocka_unit_test(test_cli_qat),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
