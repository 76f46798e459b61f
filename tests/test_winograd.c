/* Winograd-aware convolutions, the training side: the transform tables of train/wino.h
 * checked in exact rational arithmetic (the 1-D algorithm on every basis pair, the 2-D nesting
 * on random integer tiles, At tied to the interpolation points), float mode equal to direct
 * convolution on random shapes (odd sizes, both paddings, F2 and F4), the arch JSON fields and
 * their errors, the fake quantisation of the transform-domain tensors (symmetric with bits,
 * power-of-two tables) and the QAT rewrite of a Winograd layer. The int8 side (lowering, host
 * and device kernels, export) is in tests/test_winograd_int8.c. */
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
#include "train/net.h"
#include "train/ops.h"
#include "train/qat.h"
#include "train/wino.h"

/* ---- exact rational arithmetic ------------------------------------------------------------ */

typedef struct rat {
  long long n, d; /* n/d, d > 0, reduced */
} rat;

static long long gcdll(long long a, long long b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b) {
    long long t = a % b;
    a = b, b = t;
  }
  return a ? a : 1;
}

static rat mk(long long n, long long d) {
  if (d < 0) n = -n, d = -d;
  long long g = gcdll(n, d);
  return (rat){n / g, d / g};
}
static rat radd(rat a, rat b) { return mk(a.n * b.d + b.n * a.d, a.d * b.d); }
static rat rmul(rat a, rat b) { return mk(a.n * b.n, a.d * b.d); }
static int req(rat a, rat b) { return a.n == b.n && a.d == b.d; }

/* The 1-D algorithm y = At ((G g) . (Bt d)) computes the correlation y[i] = sum_k d[i+k] g[k]
 * (i < m, k < 3) exactly: being bilinear, it is enough to check every pair of basis vectors
 * d = e_u, g = e_v, whose correlation is [u == i + v]. */
static void check_1d(const nas_wino_tf *t) {
  const int a = t->a, m = t->m;
  for (int u = 0; u < a; u++)
    for (int v = 0; v < 3; v++)
      for (int i = 0; i < m; i++) {
        rat y = mk(0, 1);
        for (int k = 0; k < a; k++) {
          rat term = rmul(mk(t->at[i * a + k], 1), rmul(mk(t->g[k * 3 + v], t->gden), mk(t->bt[k * a + u], 1)));
          y = radd(y, term);
        }
        if (!req(y, mk(u == i + v, 1)))
          fail_msg("F%d: d=e%d g=e%d: y[%d] = %lld/%lld, expected %d", m, u, v, i, y.n, y.d, u == i + v);
      }
}

/* 2-D: Y = At ((G g G^T) . (Bt d Bt^T)) At^T on random integer tiles, all in integers scaled by
 * gden^2 (no rounding anywhere), against the direct 3x3 correlation. */
static void check_2d(const nas_wino_tf *t, nas_rng *r) {
  const int a = t->a, m = t->m;
  for (int rep = 0; rep < 200; rep++) {
    long long d[NAS_WINO_MAXA][NAS_WINO_MAXA], g[3][3], U[NAS_WINO_MAXA][NAS_WINO_MAXA] = {{0}};
    long long V[NAS_WINO_MAXA][NAS_WINO_MAXA] = {{0}}, T1[NAS_WINO_MAXA][NAS_WINO_MAXA];
    for (int i = 0; i < a; i++)
      for (int j = 0; j < a; j++) d[i][j] = (long long)nas_rng_below(r, 511) - 255;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) g[i][j] = (long long)nas_rng_below(r, 255) - 127;
    for (int i = 0; i < a; i++) /* U = Gn g Gn^T (= gden^2 G g G^T) */
      for (int j = 0; j < a; j++)
        for (int p = 0; p < 3; p++)
          for (int q = 0; q < 3; q++) U[i][j] += t->g[i * 3 + p] * g[p][q] * t->g[j * 3 + q];
    for (int i = 0; i < a; i++)
      for (int j = 0; j < a; j++)
        for (int p = 0; p < a; p++)
          for (int q = 0; q < a; q++) V[i][j] += t->bt[i * a + p] * d[p][q] * t->bt[j * a + q];
    for (int i = 0; i < a; i++)
      for (int j = 0; j < a; j++) T1[i][j] = U[i][j] * V[i][j];
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        long long s = 0, direct = 0;
        for (int p = 0; p < a; p++)
          for (int q = 0; q < a; q++) s += t->at[y * a + p] * T1[p][q] * t->at[x * a + q];
        for (int p = 0; p < 3; p++)
          for (int q = 0; q < 3; q++) direct += d[y + p][x + q] * g[p][q];
        if (s != direct * t->gden * t->gden)
          fail_msg("F%d: 2-D tile %d, output (%d,%d): %lld != %lld * %d^2", m, rep, y, x, s, direct,
                   t->gden);
      }
  }
}

/* At's columns are the interpolation points' powers (point p: (1, p, .., p^(m-1)); infinity:
 * the last unit vector), tying the tables to the documented points. */
static void check_points(const nas_wino_tf *t, const int *pts) {
  for (int k = 0; k < t->a; k++)
    for (int i = 0; i < t->m; i++) {
      long long want = 1;
      if (k == t->a - 1) /* infinity: +-1 in the last row (the sign is part of the scaling) */
        want = i == t->m - 1 ? (t->at[i * t->a + k] < 0 ? -1 : 1) : 0;
      else
        for (int e = 0; e < i; e++) want *= pts[k];
      if (t->at[i * t->a + k] != want)
        fail_msg("F%d: At[%d][%d] = %d, point %d gives %lld", t->m, i, k, t->at[i * t->a + k],
                 k == t->a - 1 ? 999 : pts[k], want);
    }
}

static void test_transforms_exact(void **st) {
  (void)st;
  static const int P2[] = {0, 1, -1}, P4[] = {0, 1, -1, 2, -2};
  nas_rng r;
  nas_rng_seed(&r, 5);
  assert_null(nas_wino_tf_get(3));
  assert_null(nas_wino_tf_get(6));
  for (int m = 2; m <= 4; m += 2) {
    const nas_wino_tf *t = nas_wino_tf_get(m);
    assert_non_null(t);
    assert_int_equal(t->a, m + 2);
    check_1d(t);
    check_2d(t, &r);
    check_points(t, m == 2 ? P2 : P4);
  }
}

/* ---- float mode == direct convolution ----------------------------------------------------- */

static int param(nas_graph *g, const char *name, int nd, const int *d) {
  nas_err e = {0};
  int id = nas_graph_param(g, name, nd, d, &e);
  if (id < 0) fail_msg("%s: %s", name, e.msg);
  return id;
}

static int apply(nas_graph *g, int op, const int *in, int n_in, const nas_op_params *p, const char *nm) {
  nas_err e = {0};
  int id = nas_graph_apply(g, op, in, n_in, p, nm, &e);
  if (id < 0) fail_msg("%s: %s", nm, e.msg);
  return id;
}

/* conv2d and the four Winograd steps on the same x, w, b; returns the largest |difference|
 * relative to max(1, |y|). */
static double wino_vs_direct(int N, int H, int W, int ci, int co, int pad, int m, nas_rng *r) {
  const nas_wino_tf *t = nas_wino_tf_get(m);
  const int a = t->a;
  nas_graph *g = nas_graph_new(N, 3);
  assert_non_null(g);
  int dx[4] = {N, H, W, ci}, dw[4] = {co, 3, 3, ci}, db[1] = {co}, dg[2] = {a, 3}, dbt[2] = {a, a},
      dat[2] = {m, a};
  int x = param(g, "x", 4, dx), w = param(g, "w", 4, dw), b = param(g, "b", 1, db);
  int G = param(g, "G", 2, dg), Bt = param(g, "Bt", 2, dbt), At = param(g, "At", 2, dat);
  nas_op_params pc = {.sh = 1, .sw = 1, .padding = pad};
  int cin[3] = {x, w, b};
  int y0 = apply(g, NAS_OP_CONV2D, cin, 3, &pc, "conv");
  int win[2] = {w, G}, vin[2] = {x, Bt};
  nas_op_params pv = {.padding = pad};
  int U = apply(g, NAS_OP_WINO_WT, win, 2, NULL, "U");
  int V = apply(g, NAS_OP_WINO_IN, vin, 2, &pv, "V");
  int min[2] = {V, U};
  int M = apply(g, NAS_OP_WINO_MUL, min, 2, NULL, "M");
  nas_op_params po = {.nd = 2, .d = {g->nodes[V].p.d[0], g->nodes[V].p.d[1]}};
  int oin[3] = {M, At, b};
  int y1 = apply(g, NAS_OP_WINO_OUT, oin, 3, &po, "y");
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  const int sizes[3] = {N * H * W * ci, co * 9 * ci, co};
  const int ids[3] = {x, w, b};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < sizes[k]; i++) g->nodes[ids[k]].val[i] = nas_rng_uniform(r) * 2 - 1;
  nas_wino_tf_float(t, g->nodes[Bt].val, g->nodes[G].val, g->nodes[At].val);
  nas_graph_forward(g, N, -1);
  size_t n = nas_node_numel(g, &g->nodes[y0]);
  assert_int_equal(n, nas_node_numel(g, &g->nodes[y1]));
  double worst = 0, big = 1;
  for (size_t i = 0; i < n; i++) big = fmax(big, fabs(g->nodes[y0].val[i]));
  for (size_t i = 0; i < n; i++) {
    double u = g->nodes[y0].val[i], v = g->nodes[y1].val[i];
    double err = fabs(u - v) / big;
    if (err > worst) worst = err;
  }
  nas_graph_free(g);
  return worst;
}

static void test_float_equals_direct(void **st) {
  (void)st;
  nas_rng r;
  nas_rng_seed(&r, 11);
  double worst[2] = {0, 0};
  for (int rep = 0; rep < 40; rep++) {
    const int m = rep % 2 ? 4 : 2, pad = (rep / 2) % 2 ? NAS_PAD_SAME : NAS_PAD_VALID;
    const int H = 3 + (int)nas_rng_below(&r, 10), W = 3 + (int)nas_rng_below(&r, 10);
    const int ci = 1 + (int)nas_rng_below(&r, 9), co = 1 + (int)nas_rng_below(&r, 7);
    const int N = 1 + (int)nas_rng_below(&r, 3);
    double err = wino_vs_direct(N, H, W, ci, co, pad, m, &r);
    if (err > worst[m == 4]) worst[m == 4] = err;
    if (err > 1e-5)
      fail_msg("F%d %s: x [%d,%d,%d,%d], %d outputs: relative error %.3g", m,
               pad == NAS_PAD_SAME ? "same" : "valid", N, H, W, ci, co, err);
  }
  print_message("largest relative error: F2 %.3g, F4 %.3g\n", worst[0], worst[1]);
}

/* The same architecture with algo im2row / wino2 / wino4 and the same seed has the same weights
 * (the Winograd tables draw nothing) and, in float, the same logits. */
#define ARCH_FMT                                                                          \
    "{\"input\":[11,9,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":5,\"algo\":\"%s\"}," \
    "{\"op\":\"conv\",\"out\":4,\"padding\":\"valid\",\"algo\":\"%s\"%s},{\"op\":\"gap\"},"   \
    "{\"op\":\"fc\",\"out\":3}]}"

static void build_algo(const char *algo, const char *extra, nas_net **out) {
  char arch[512];
  snprintf(arch, sizeof arch, ARCH_FMT, algo, algo, extra);
  nas_err e = {0};
  if (nas_net_build(arch, "t.json", 4, 9, out, &e)) fail_msg("%s: %s", algo, e.msg);
}

static void logits_of(nas_net *n, const float *x, float *z) {
  memcpy(n->g->nodes[n->input].val, x, sizeof *x * 4 * 11 * 9 * 2);
  nas_graph_forward(n->g, 4, n->logits);
  memcpy(z, n->g->nodes[n->logits].val, sizeof *z * 12);
}

static void test_net_algos_agree(void **st) {
  (void)st;
  nas_net *d = NULL, *w2 = NULL, *w4 = NULL, *fx = NULL;
  build_algo("im2row", "", &d);
  build_algo("wino2", "", &w2);
  build_algo("wino4", ",\"flex\":true,\"wino_bits\":12", &fx);
  build_algo("wino4", "", &w4);
  assert_int_equal(d->params, w2->params);
  assert_int_equal(d->macs, w4->macs);
  assert_true(fx->params == d->params + 36 + 18 + 24); /* flex: Bt, G, At of layer 1 */
  assert_non_null(strstr(fx->arch_json, "\"flex\":true"));
  assert_non_null(strstr(fx->arch_json, "\"wino_bits\":12"));
  assert_non_null(strstr(w2->arch_json, "\"flex\":false"));
  assert_null(strstr(d->arch_json, "flex")); /* im2row layers keep their canonical form */
  float x[4 * 11 * 9 * 2], z[4][12];
  nas_rng r;
  nas_rng_seed(&r, 2);
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = nas_rng_uniform(&r) * 2 - 1;
  nas_net *nets[4] = {d, w2, w4, fx};
  for (int k = 0; k < 4; k++) logits_of(nets[k], x, z[k]);
  for (int k = 1; k < 4; k++)
    for (int i = 0; i < 12; i++)
      if (fabsf(z[k][i] - z[0][i]) > 1e-5f * fmaxf(1.0f, fabsf(z[0][i])))
        fail_msg("net %d logit %d: %g vs im2row %g", k, i, (double)z[k][i], (double)z[0][i]);
  /* the static tables are STATE, the flex ones PARAM */
  int gi = nas_graph_find(w2->g, "l0.conv.G"), fi = nas_graph_find(fx->g, "l1.conv.Bt");
  assert_true(gi >= 0 && fi >= 0);
  assert_int_equal(w2->g->nodes[gi].kind, NAS_NODE_STATE);
  assert_int_equal(fx->g->nodes[fi].kind, NAS_NODE_PARAM);
  nas_net_free(d), nas_net_free(w2), nas_net_free(w4), nas_net_free(fx);
}

static void expect_error(const char *layer, const char *needle) {
  char arch[512];
  snprintf(arch, sizeof arch,
           "{\"input\":[8,8,1],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4},%s,"
           "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
           layer);
  nas_net *n = NULL;
  nas_err e = {0};
  assert_int_not_equal(nas_net_build(arch, "a.json", 2, 1, &n, &e), NAS_OK);
  assert_null(n);
  if (!strstr(e.msg, needle)) fail_msg("'%s': message '%s' lacks '%s'", layer, e.msg, needle);
}

static void test_arch_errors(void **st) {
  (void)st;
  expect_error("{\"op\":\"conv\",\"out\":4,\"stride\":2,\"algo\":\"wino2\"}",
               "layer 1 (conv): field 'algo': 'wino2' needs a 3x3 kernel with stride 1");
  expect_error("{\"op\":\"conv\",\"out\":4,\"k\":5,\"algo\":\"wino4\"}", "layer 1 (conv): field 'algo'");
  expect_error("{\"op\":\"conv\",\"out\":4,\"flex\":true}", "field 'flex': needs algo wino2 or wino4");
  expect_error("{\"op\":\"conv\",\"out\":4,\"algo\":\"im2row\",\"wino_bits\":10}", "field 'wino_bits'");
  expect_error("{\"op\":\"conv\",\"out\":4,\"algo\":\"wino2\",\"wino_bits\":17}", "out of range 8..16");
  expect_error("{\"op\":\"conv\",\"out\":4,\"algo\":\"wino6\"}", "unknown value 'wino6'");
  expect_error("{\"op\":\"dwconv\",\"algo\":\"wino2\"}", "unknown field");
}

/* Pruning (train/prune.h) has no masks for the Winograd steps: a Winograd layer under a prune
 * method is refused unless its "sparsity" is 0, which keeps it dense. */
static void test_prune_refused(void **st) {
  (void)st;
  static const char *const FMT =
      "{\"input\":[8,8,1],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4},"
      "{\"op\":\"conv\",\"out\":4,\"algo\":\"wino2\"%s},{\"op\":\"gap\"},{\"op\":\"fc\","
      "\"out\":2}],\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.5}}";
  char arch[512];
  nas_net *n = NULL;
  nas_err e = {0};
  snprintf(arch, sizeof arch, FMT, "");
  assert_int_not_equal(nas_net_build(arch, "p.json", 2, 1, &n, &e), NAS_OK);
  assert_null(n);
  if (!strstr(e.msg, "layer 1 (conv): field 'sparsity': 'wino2' layers cannot be pruned"))
    fail_msg("message '%s'", e.msg);
  snprintf(arch, sizeof arch, FMT, ",\"sparsity\":0");
  if (nas_net_build(arch, "p.json", 2, 1, &n, &e)) fail_msg("%s", e.msg);
  nas_net_free(n);
}

/* ---- fake quantisation of the transform domain -------------------------------------------- */

/* Symmetric activation fake-quant with bits: scale max(|lo|,|hi|)/(2^(b-1)-1), zero point 0,
 * clipped; power-of-two weight tables with a magnitude limit. */
static void test_fakequant_bits(void **st) {
  (void)st;
  for (int bits = 8; bits <= 16; bits += 4) {
    nas_graph *g = nas_graph_new(1, 1);
    int dx[2] = {1, 64}, dr[1] = {3};
    int x = param(g, "x", 2, dx);
    nas_err e = {0};
    int r = nas_graph_state(g, "r", 1, dr, &e);
    nas_op_params p = {.bits = bits, .kw = 1};
    int in[2] = {x, r};
    int y = apply(g, NAS_OP_FAKEQUANT, in, 2, &p, "y");
    assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
    float *rv = g->nodes[r].val;
    rv[0] = -0.5f, rv[1] = 2.0f, rv[2] = 1;
    const long qm = nas_wino_qmax(bits);
    const float s = nas_wino_sym_scale(-0.5f, 2.0f, bits);
    assert_true(fabs((double)s - 2.0 / (double)qm) <= 1e-7 * (2.0 / (double)qm));
    for (int i = 0; i < 64; i++) g->nodes[x].val[i] = -3.0f + 6.0f * (float)i / 63.0f;
    nas_graph_forward(g, 1, -1);
    int clipped = 0;
    for (int i = 0; i < 64; i++) {
      long q = lroundf(g->nodes[x].val[i] / s);
      clipped += q > qm || q < -qm;
      q = q > qm ? qm : q < -qm ? -qm : q;
      assert_true(g->nodes[y].val[i] == (float)q * s);
    }
    assert_true(clipped > 10); /* |x| > 2 on both sides, zero point 0 */
    nas_graph_free(g);
  }
  /* power-of-two tables */
  float t[6] = {0.3f, -1.7f, 5.0f, 0.0f, -5.0f, 2.49f};
  int8_t q[6];
  int f = nas_wino_pow2(t, 6, 127, q);
  assert_int_equal(f, 4); /* 5 * 16 = 80 <= 127 < 160 */
  assert_int_equal(q[2], 80), assert_int_equal(q[1], -27), assert_int_equal(q[0], 5);
  f = nas_wino_pow2(t, 6, 32, q);
  assert_int_equal(f, 2); /* 5 * 4 = 20 <= 32 < 40 */
  float small[2] = {1e-3f, -2e-3f};
  f = nas_wino_pow2(small, 2, 127, q);
  assert_int_equal(f, 15); /* 2e-3 * 2^15 = 65.5 */
  assert_int_equal(q[1], -66);
  assert_int_equal(nas_wino_alim(6, 8), 127);
  assert_int_equal(nas_wino_alim(6, 16), 42);
  assert_int_equal(nas_wino_alim(4, 16), 64);
  /* the static tables are exact in their power-of-two form */
  for (int m = 2; m <= 4; m += 2) {
    const nas_wino_tf *tf = nas_wino_tf_get(m);
    float bt[36], at[24];
    int8_t qb[36], qa[24];
    nas_wino_tf_float(tf, bt, NULL, at);
    int fb = nas_wino_pow2(bt, tf->a * tf->a, 127, qb), fa = nas_wino_pow2(at, tf->m * tf->a, 127, qa);
    for (int i = 0; i < tf->a * tf->a; i++) assert_int_equal(qb[i], tf->bt[i] * (1 << fb));
    for (int i = 0; i < tf->m * tf->a; i++) assert_int_equal(qa[i], tf->at[i] * (1 << fa));
  }
}

/* The QAT rewrite of a Winograd layer: the weights, U (per channel, 8 bits), V and M
 * (symmetric ranges with the layer's bits) are fake-quantised; a flex layer's Bt and At go
 * through power-of-two tables, G does not. */
static void test_qat_rewrite(void **st) {
  (void)st;
  nas_net *n = NULL;
  build_algo("wino4", ",\"flex\":true,\"wino_bits\":10", &n);
  nas_qat *q = NULL;
  nas_err e = {0};
  if (nas_qat_build(n, NULL, &q, &e)) fail_msg("%s", e.msg);
  const nas_graph *g = q->net->g;
  struct { const char *name; int bits, qmode, in2; } want[] = {
      {"l0.conv.w.fq", 0, NAS_FQ_MAXABS, 0}, {"l0.conv.wu.fq", 8, NAS_FQ_WIDE, 0},
      {"l0.conv.wv.fq", 8, 0, 1},            {"l0.conv.wm.fq", 8, 0, 1},
      {"l1.conv.wv.fq", 10, 0, 1},           {"l1.conv.wm.fq", 10, 0, 1},
      {"l1.conv.Bt.fq", 8, NAS_FQ_POW2, 0},  {"l1.conv.At.fq", 8, NAS_FQ_POW2, 0}};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    int id = nas_graph_find(g, want[k].name);
    if (id < 0) fail_msg("no node '%s'", want[k].name);
    const nas_node *nd = &g->nodes[id];
    assert_int_equal(nd->op, NAS_OP_FAKEQUANT);
    assert_int_equal(nd->p.bits, want[k].bits);
    assert_int_equal(nd->p.qmode, want[k].qmode);
    assert_int_equal(nd->n_in, want[k].in2 ? 2 : 1);
  }
  assert_int_equal(g->nodes[nas_graph_find(g, "l1.conv.At.fq")].p.qlim, nas_wino_alim(6, 10));
  assert_true(nas_graph_find(g, "l0.conv.Bt.fq") < 0); /* static layer */
  assert_true(nas_graph_find(g, "l1.conv.G.fq") < 0);  /* G feeds the offline weights only */
  nas_qat_free(q);
  nas_net_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transforms_exact),  cmocka_unit_test(test_float_equals_direct),
      cmocka_unit_test(test_net_algos_agree),   cmocka_unit_test(test_arch_errors),
      cmocka_unit_test(test_prune_refused),
      cmocka_unit_test(test_fakequant_bits),    cmocka_unit_test(test_qat_rewrite),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
