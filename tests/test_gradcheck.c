/* Gradient check of every op of the op table, as a table of cases (and of a composite block).
 *
 * Each row of CASES is one op in one configuration: a builder that makes a small graph around
 * the op (its differentiable inputs are PARAMs), an optional set-up run after allocation, the
 * fill range of the PARAMs, the central-difference step and the largest relative error
 * allowed. An op whose gradient cannot be checked by plain central differences (piecewise
 * constant fake quantisation) or is checked with more context elsewhere has one row with
 * `checked_in` naming that file and its test functions instead. test_every_op_has_a_case fails
 * when an op of train/ops_list.h has no row, and checks that every `checked_in` test exists and
 * is registered. Each computed row runs as its own cmocka test ("gradcheck conv2d: ..."). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/gradcheck.h"
#include "train/ops.h"
#include "tests/test_util.h"

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

static int state(nas_graph *g, const char *name, int n) {
  int id = nas_graph_state(g, name, 1, (int[]){n}, NULL);
  assert_true(id >= 0);
  return id;
}

/* ---- builders: the op's inputs (PARAMs, plus STATE where the op needs one) and params; the
 * driver applies the op. v selects the configuration named in the case row. ---------------- */

typedef struct gc_graph {
  int in[NAS_MAX_INPUTS], n_in; /* inputs of the op under test */
  nas_op_params p;
} gc_graph;

static void add_in(gc_graph *b, int id) { b->in[b->n_in++] = id; }

/* x [2,5,6,3], w [4,KH,KW,3], b [4]. v0: 1x1, stride 1, valid; v1: 3x2, stride 2x1, same;
 * v2: 3x2, stride 2x1, valid. */
static void b_conv2d(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "x", 4, 2, 5, 6, 3));
  add_in(b, param(g, "w", 4, 4, v ? 3 : 1, v ? 2 : 1, 3));
  add_in(b, param(g, "b", 1, 4, 0, 0, 0));
  b->p.sh = v ? 2 : 1, b->p.sw = 1, b->p.padding = v == 1 ? NAS_PAD_SAME : NAS_PAD_VALID;
}

/* x [2,5,6,3], w [3,3,3], b [3]. v0: stride 1, valid; v1: stride 2, same. */
static void b_dwconv2d(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "x", 4, 2, 5, 6, 3));
  add_in(b, param(g, "w", 3, 3, 3, 3, 0));
  add_in(b, param(g, "b", 1, 3, 0, 0, 0));
  b->p.sh = b->p.sw = v ? 2 : 1, b->p.padding = v ? NAS_PAD_SAME : NAS_PAD_VALID;
}

/* x [3,7], w [4,7], b [4]. */
static void b_dense(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "x", 2, 3, 7, 0, 0));
  add_in(b, param(g, "w", 2, 4, 7, 0, 0));
  add_in(b, param(g, "b", 1, 4, 0, 0, 0));
}

/* a, b [2,3,3,2]. */
static void b_add(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "a", 4, 2, 3, 3, 2));
  add_in(b, param(g, "b", 4, 2, 3, 3, 2));
}

/* x [2,3,2,3], gamma, beta [3], running mean, var [3] (STATE; var set by init_bn_var).
 * v0: training, no activation; v1: eval, fused relu6; v2: training, fused relu. */
static void b_batchnorm(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "x", 4, 2, 3, 2, 3));
  add_in(b, param(g, "gamma", 1, 3, 0, 0, 0));
  add_in(b, param(g, "beta", 1, 3, 0, 0, 0));
  add_in(b, state(g, "mean", 3));
  add_in(b, state(g, "var", 3));
  g->training = v != 1;
  b->p.act = v == 2 ? NAS_ACT_RELU : v == 1 ? NAS_ACT_RELU6 : NAS_ACT_NONE;
}

/* x [2,3,3,4] (relu, relu6). */
static void b_clamp(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "x", 4, 2, 3, 3, 4));
}

/* x [2,5,5,2] (maxpool, avgpool). v0: 2x2, stride 2, valid; v1: 3x3, stride 2, same. */
static void b_pool(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "x", 4, 2, 5, 5, 2));
  b->p.kh = b->p.kw = v ? 3 : 2, b->p.sh = b->p.sw = 2;
  b->p.padding = v ? NAS_PAD_SAME : NAS_PAD_VALID;
}

/* x [2,3,4,5]. */
static void b_gap(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "x", 4, 2, 3, 4, 5));
}

/* x [2,3,2,2] -> [2,12]. */
static void b_reshape(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "x", 4, 2, 3, 2, 2));
  b->p.nd = 1, b->p.d[0] = 12;
}

/* x [3,8], rate 0.25. v0: training (the mask is replayed from the restored RNG); v1: eval. */
static void b_dropout(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "x", 2, 3, 8, 0, 0));
  b->p.rate = 0.25f;
  g->training = v == 0;
}

/* logits [4,5], labels [4] (STATE, set by init_labels). */
static void b_softmax_xent(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "z", 2, 4, 5, 0, 0));
  add_in(b, state(g, "labels", 4));
}

/* N=2, T=4, F=3, H=5 (lstm: 4 gates, gru: 3). v0: output every step; v1: last step only;
 * v2: every step, without biases. */
static void b_rnn(nas_graph *g, gc_graph *b, int op, int v) {
  int G = op == NAS_OP_LSTM ? 4 : 3;
  add_in(b, param(g, "x", 3, 2, 4, 3, 0));
  add_in(b, param(g, "w_ih", 2, G * 5, 3, 0, 0));
  add_in(b, param(g, "w_hh", 2, G * 5, 5, 0, 0));
  if (v != 2) {
    add_in(b, param(g, "b_ih", 1, G * 5, 0, 0, 0));
    add_in(b, param(g, "b_hh", 1, G * 5, 0, 0, 0));
  }
  b->p.kh = v != 1;
}

/* Winograd steps (train/ops_wino.c); the transforms are PARAMs (a flex layer), filled at
 * random like the data. WINO_WT: w [3,3,3,2], G [alpha,3]; v0: alpha 4, v1: alpha 6. */
static void b_wino_wt(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "w", 4, 3, 3, 3, 2));
  add_in(b, param(g, "G", 2, v ? 6 : 4, 3, 0, 0));
}

/* WINO_IN: x [2,5,7,3], Bt [alpha,alpha]. v0: alpha 4, same; v1: alpha 6, valid; v2: alpha 6,
 * same (partial tiles at the bottom and the right). */
static void b_wino_in(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  const int a = v ? 6 : 4;
  add_in(b, param(g, "x", 4, 2, 5, 7, 3));
  add_in(b, param(g, "Bt", 2, a, a, 0, 0));
  b->p.padding = v == 1 ? NAS_PAD_VALID : NAS_PAD_SAME;
}

/* WINO_MUL: V [2,4,3,3], U [4,5,3]. */
static void b_wino_mul(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "V", 4, 2, 4, 3, 3));
  add_in(b, param(g, "U", 3, 4, 5, 3, 0));
}

/* WINO_OUT with bias [3]. v0: m 2, output 3x5 (6 tiles, M [2,16,6,3]); v1: m 4, output 5x3
 * (2 tiles, M [2,36,2,3]); both crop partial tiles. */
static void b_wino_out(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  const int m = v ? 4 : 2, a = m + 2;
  add_in(b, param(g, "M", 4, 2, a * a, v ? 2 : 6, 3));
  add_in(b, param(g, "At", 2, m, a, 0, 0));
  add_in(b, param(g, "b", 1, 3, 0, 0, 0));
  b->p.nd = 2, b->p.d[0] = v ? 5 : 3, b->p.d[1] = v ? 3 : 5;
}

/* x [3,5] (square, exp). */
static void b_unary(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op, (void)v;
  add_in(b, param(g, "x", 2, 3, 5, 0, 0));
}

/* mean, var [2,3,3,2] (var made positive by init_lrt_var). v0: training (the noise is
 * replayed from the restored RNG); v1: eval. */
static void b_lrt(nas_graph *g, gc_graph *b, int op, int v) {
  (void)op;
  add_in(b, param(g, "mu", 4, 2, 3, 3, 2));
  add_in(b, param(g, "v", 4, 2, 3, 3, 2));
  g->training = v != 1;
}

/* theta, ls2 [2,3] (ls2 set by init_log_alpha; few elements keep the float sum exact enough); svdo_w v0: training, v1: eval (log alpha
 * mask); svdo_kl v0: training, v1: eval (0), v2: training with a scale STATE. */
static void b_svdo(nas_graph *g, gc_graph *b, int op, int v) {
  add_in(b, param(g, "theta", 2, 2, 3, 0, 0));
  add_in(b, param(g, "ls2", 2, 2, 3, 0, 0));
  if (op == NAS_OP_SVDO_KL && v == 2) add_in(b, state(g, "scale", 1));
  g->training = v != 1;
}

/* ---- set-ups after allocation (after the PARAMs are filled) --------------------------------- */

/* Variances in [0.5, 1.5]. */
static void init_lrt_var(nas_graph *g, nas_rng *r) {
  (void)r;
  nas_node *v = &g->nodes[nas_graph_find(g, "v")];
  for (int i = 0; i < 36; i++) v->val[i] = 1.0f + 0.5f * v->val[i];
}

/* log alpha alternating -4 and 5 (away from the mask threshold 3 and the KL clip at +-10);
 * the KL scale 0.25 when present. */
static void init_log_alpha(nas_graph *g, nas_rng *r) {
  (void)r;
  nas_node *th = &g->nodes[nas_graph_find(g, "theta")], *ls = &g->nodes[nas_graph_find(g, "ls2")];
  for (int i = 0; i < 6; i++) ls->val[i] = (i % 2 ? 5.0f : -4.0f) + logf(th->val[i] * th->val[i] + 1e-8f);
  int sc = nas_graph_find(g, "scale");
  if (sc >= 0) g->nodes[sc].val[0] = 0.25f;
}

static void init_labels(nas_graph *g, nas_rng *r) {
  (void)r;
  nas_node *lab = &g->nodes[nas_graph_find(g, "labels")];
  for (int i = 0; i < 4; i++) lab->val[i] = (float)(i % 5);
}

static void init_bn_var(nas_graph *g, nas_rng *r) {
  (void)r;
  nas_node *var = &g->nodes[nas_graph_find(g, "var")];
  for (int i = 0; i < 3; i++) var->val[i] = 0.5f + (float)i;
}

/* Distinct values of x, at least 0.01 apart: no ties in a max-pool window. */
static void init_distinct(nas_graph *g, nas_rng *r) {
  nas_node *x = &g->nodes[nas_graph_find(g, "x")];
  size_t n = nas_shape_numel(&x->shape);
  int *perm = malloc(n * sizeof *perm);
  assert_non_null(perm);
  for (size_t i = 0; i < n; i++) perm[i] = (int)i;
  nas_rng_shuffle(r, perm, (int)n);
  for (size_t i = 0; i < n; i++) x->val[i] = 0.02f * (float)perm[i] - 0.5f;
  free(perm);
}

/* ---- the case table --------------------------------------------------------------------- */

typedef struct gc_case {
  int op;             /* enum nas_op */
  int v;              /* configuration passed to build */
  const char *config; /* what v selects, for the test name */
  void (*build)(nas_graph *g, gc_graph *b, int op, int v);
  void (*init)(nas_graph *g, nas_rng *r); /* after the PARAMs are filled; may be NULL */
  float scale;        /* PARAMs are uniform in [-scale, scale] */
  float eps;          /* central-difference step */
  double tol;         /* largest relative error, |num - ana| / max(1, |num|, |ana|) */
  /* NULL: computed here. Otherwise "tests/file.c: test_a, test_b": the op's gradient is
   * checked by those tests (build must be NULL). */
  const char *checked_in;
} gc_case;

#define CASE(OP, v, config, build, init, scale, eps, tol) \
  {NAS_OP_##OP, v, config, build, init, scale, eps, tol, NULL}
#define ELSEWHERE(OP, where) {NAS_OP_##OP, 0, NULL, NULL, NULL, 0, 0, 0, where}

/* Tolerances are at least ten times the worst error measured (the same in the Release and the
 * ASan build): ~1e-6 for the element-wise and pooling ops, ~3e-5 for conv, dense, softmax and
 * batch norm, 1e-4 for the recurrent ops and 1.5e-4 for batch norm with a fused relu; the
 * former single tolerance was 2e-3. */
static const gc_case CASES[] = {
    CASE(CONV2D, 0, "1x1, stride 1, valid", b_conv2d, NULL, 1, 1e-2f, 5e-4),
    CASE(CONV2D, 1, "3x2, stride 2x1, same", b_conv2d, NULL, 1, 1e-2f, 5e-4),
    CASE(CONV2D, 2, "3x2, stride 2x1, valid", b_conv2d, NULL, 1, 1e-2f, 5e-4),
    CASE(DWCONV2D, 0, "3x3, stride 1, valid", b_dwconv2d, NULL, 1, 1e-2f, 5e-4),
    CASE(DWCONV2D, 1, "3x3, stride 2, same", b_dwconv2d, NULL, 1, 1e-2f, 5e-4),
    CASE(DENSE, 0, "with bias", b_dense, NULL, 1, 1e-2f, 5e-4),
    CASE(ADD, 0, "same shapes", b_add, NULL, 1, 1e-2f, 5e-5),
    CASE(BATCHNORM, 0, "training", b_batchnorm, init_bn_var, 1, 1e-2f, 5e-4),
    /* a fused activation after BN sees outputs near its kink: a smaller step */
    CASE(BATCHNORM, 1, "eval, fused relu6", b_batchnorm, init_bn_var, 1, 1e-3f, 5e-4),
    CASE(BATCHNORM, 2, "training, fused relu", b_batchnorm, init_bn_var, 1, 1e-3f, 2e-3),
    CASE(RELU, 0, "away from 0", b_clamp, NULL, 1, 1e-2f, 5e-5),
    /* wide range so that values lie on both sides of 6 */
    CASE(RELU6, 0, "both sides of 0 and 6", b_clamp, NULL, 8, 1e-2f, 2e-4),
    CASE(MAXPOOL, 0, "2x2, stride 2, valid", b_pool, init_distinct, 1, 1e-2f, 5e-5),
    CASE(MAXPOOL, 1, "3x3, stride 2, same", b_pool, init_distinct, 1, 1e-2f, 5e-5),
    CASE(AVGPOOL, 0, "2x2, stride 2, valid", b_pool, NULL, 1, 1e-2f, 5e-5),
    CASE(AVGPOOL, 1, "3x3, stride 2, same", b_pool, NULL, 1, 1e-2f, 5e-5),
    CASE(GAP, 0, "4-D input", b_gap, NULL, 1, 1e-2f, 5e-5),
    CASE(RESHAPE, 0, "flatten", b_reshape, NULL, 1, 1e-2f, 5e-5),
    CASE(DROPOUT, 0, "training", b_dropout, NULL, 1, 1e-2f, 5e-5),
    CASE(DROPOUT, 1, "eval", b_dropout, NULL, 1, 1e-2f, 5e-5),
    CASE(SOFTMAX_XENT, 0, "mean loss", b_softmax_xent, init_labels, 1, 1e-2f, 5e-4),
    CASE(LSTM, 0, "every step", b_rnn, NULL, 1, 1e-2f, 1e-3),
    CASE(LSTM, 1, "last step", b_rnn, NULL, 1, 1e-2f, 1e-3),
    CASE(LSTM, 2, "every step, no biases", b_rnn, NULL, 1, 1e-2f, 1e-3),
    /* LSTM's QAT form (p.kw = 1) rounds, so finite differences do not apply: its
       straight-through gradients are checked against a reference in tests/test_qat_rnn.c
       (test_lstm_qat_op) */
    CASE(GRU, 0, "every step", b_rnn, NULL, 1, 1e-2f, 1e-3),
    CASE(GRU, 1, "last step", b_rnn, NULL, 1, 1e-2f, 1e-3),
    CASE(GRU, 2, "every step, no biases", b_rnn, NULL, 1, 1e-2f, 1e-3),
    CASE(WINO_WT, 0, "G [4,3]", b_wino_wt, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_WT, 1, "G [6,3]", b_wino_wt, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_IN, 0, "4x4 tiles, same", b_wino_in, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_IN, 1, "6x6 tiles, valid", b_wino_in, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_IN, 2, "6x6 tiles, same, partial", b_wino_in, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_MUL, 0, "4 positions", b_wino_mul, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_OUT, 0, "m 2, cropped, bias", b_wino_out, NULL, 1, 1e-2f, 5e-4),
    CASE(WINO_OUT, 1, "m 4, cropped, bias", b_wino_out, NULL, 1, 1e-2f, 5e-4),
    CASE(SQUARE, 0, "x^2", b_unary, NULL, 1, 1e-2f, 5e-5),
    CASE(EXP, 0, "exp x", b_unary, NULL, 1, 1e-2f, 2e-4),
    CASE(LRT, 0, "training", b_lrt, init_lrt_var, 1, 1e-2f, 5e-4),
    CASE(LRT, 1, "eval", b_lrt, init_lrt_var, 1, 1e-2f, 5e-5),
    CASE(SVDO_W, 0, "training", b_svdo, init_log_alpha, 1, 1e-2f, 5e-5),
    CASE(SVDO_W, 1, "eval, log alpha mask", b_svdo, init_log_alpha, 1, 1e-2f, 5e-5),
    /* pruning (train/prune.h): tolerances 10x the measured errors; the KL's log alpha curves
       as -2 log|theta| and its float sum limits the difference quotient (1.2e-4 measured) */
    CASE(SVDO_KL, 0, "training", b_svdo, init_log_alpha, 1, 2e-3f, 2e-3),
    CASE(SVDO_KL, 1, "eval", b_svdo, init_log_alpha, 1, 2e-3f, 5e-5),
    CASE(SVDO_KL, 2, "training, scale", b_svdo, init_log_alpha, 1, 2e-3f, 2e-3),
    /* fake quantisation is piecewise constant: its documented surrogate gradients (STE,
       alpha-blending) are checked against those surrogates */
    ELSEWHERE(FAKEQUANT, "tests/test_qat.c: test_act_ste_gradient, test_weight_ste_gradient"),
    ELSEWHERE(ALPHA_BLEND, "tests/test_qat.c: test_alpha_blend"),
    /* the DNAS gate ops, with their mask and mixture-weight gradients */
    ELSEWHERE(MASK_MUL, "tests/test_dnas.c: test_gate_ops_gradcheck"),
    ELSEWHERE(MIX, "tests/test_dnas.c: test_gate_ops_gradcheck"),
    ELSEWHERE(CHANPAD, "tests/test_dnas.c: test_gate_ops_gradcheck"),
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static void run_case(void **state) {
  const gc_case *c = *state;
  const char *name = nas_op_name(c->op);
  nas_graph *g = nas_graph_new(1, 7);
  assert_non_null(g);
  gc_graph b = {.n_in = 0};
  c->build(g, &b, c->op, c->v);
  nas_err e = {0};
  int out = nas_graph_apply(g, c->op, b.in, b.n_in, &b.p, "out", &e);
  if (out < 0) fail_msg("%s (%s): %s", name, c->config, e.msg);
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  nas_rng r;
  nas_rng_seed(&r, 42 + (uint64_t)c->op);
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_PARAM) fill(&g->nodes[i], &r, c->scale);
  if (c->init) c->init(g, &r);
  char where[256];
  double err = nas_gradcheck(g, out, c->eps, 0, where, sizeof where);
  if (err > c->tol)
    fail_msg("%s (%s): relative error %.3g > %.3g at %s", name, c->config, err, c->tol, where);
  nas_graph_free(g);
}

/* Reads a source file of the tree into a NUL-terminated buffer (caller frees). */
static char *read_source(const char *rel) {
  char path[1024];
  const char *src = getenv("NAS_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/%s", src ? src : NAS_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("%s: cannot open", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* "tests/test_x.c: test_a, test_b": the file exists and defines and registers every test. */
static void check_elsewhere(const gc_case *c) {
  const char *colon = strchr(c->checked_in, ':');
  if (!colon || colon == c->checked_in)
    fail_msg("%s: checked_in '%s' is not 'file: test, ...'", nas_op_name(c->op), c->checked_in);
  char file[256];
  snprintf(file, sizeof file, "%.*s", (int)(colon - c->checked_in), c->checked_in);
  char *text = read_source(file);
  int n_tests = 0;
  for (const char *s = colon + 1; *s;) {
    while (*s == ' ' || *s == ',') s++;
    size_t len = strcspn(s, ", ");
    if (!len) break;
    char def[160], reg[160];
    snprintf(def, sizeof def, "static void %.*s(void **", (int)len, s);
    snprintf(reg, sizeof reg, "cmocka_unit_test(%.*s)", (int)len, s);
    if (!strstr(text, def) || !strstr(text, reg))
      fail_msg("%s: '%.*s' is not a registered test of %s", nas_op_name(c->op), (int)len, s, file);
    n_tests++;
    s += len;
  }
  if (!n_tests) fail_msg("%s: checked_in '%s' names no test", nas_op_name(c->op), c->checked_in);
  free(text);
}

/* Every op of the list has a case; every row is well formed; every reference resolves. */
static void test_every_op_has_a_case(void **state) {
  (void)state;
  int rows[NAS_OP_COUNT] = {0};
  for (int i = 0; i < N_CASES; i++) {
    const gc_case *c = &CASES[i];
    assert_true(c->op >= 0 && c->op < NAS_OP_COUNT);
    rows[c->op]++;
    if (c->checked_in) {
      if (c->build) fail_msg("%s: a row is either computed here or checked_in", nas_op_name(c->op));
      check_elsewhere(c);
    } else {
      if (!c->build || !c->config || !*c->config)
        fail_msg("%s: row %d has no builder or no description", nas_op_name(c->op), i);
      if (!(c->eps > 0 && c->tol > 0 && c->scale > 0))
        fail_msg("%s (%s): step, tolerance and fill range must be positive", nas_op_name(c->op),
                 c->config);
    }
  }
  for (int op = 0; op < NAS_OP_COUNT; op++) {
    if (!rows[op]) fail_msg("op '%s' has no gradient-check case", nas_op_name(op));
    /* an op checked elsewhere has exactly that one row */
    for (int i = 0; i < N_CASES; i++)
      if (CASES[i].op == op && CASES[i].checked_in && rows[op] != 1)
        fail_msg("op '%s': a checked_in row must be its only row", nas_op_name(op));
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
  static char names[N_CASES][96];
  struct CMUnitTest tests[N_CASES + 3] = {
      cmocka_unit_test(test_every_op_has_a_case),
      cmocka_unit_test(test_dsconv_block),
      cmocka_unit_test(test_shape_errors),
  };
  int n = 3;
  for (int i = 0; i < N_CASES; i++) {
    if (!CASES[i].build) continue; /* checked_in rows: see test_every_op_has_a_case */
    snprintf(names[i], sizeof names[i], "gradcheck %s: %s", nas_op_name(CASES[i].op),
             CASES[i].config);
    tests[n++] = (struct CMUnitTest){names[i], run_case, NULL, NULL, (void *)&CASES[i]};
  }
  /* cmocka skips the slots left empty (one per checked_in row) */
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
