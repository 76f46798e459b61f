/* tests/test_deploy.c: the int8 kernels and the memory planner. Fixed-point helpers against
 * hand-computed values; each kernel on small hand-checkable graphs; graph validation errors;
 * planner invariants on a synthetic graph with a skip connection. The reference models, the
 * TFLite reader and the Arm NN comparisons are in test_deploy_models.c and
 * test_deploy_armnn.c. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/graph8.h"
#include "tests/test_deploy_util.h"
#include "tests/test_util.h"

/* ---- helpers --------------------------------------------------------------------------- */

static char *dupstr(const char *s) {
  char *c = malloc(strlen(s) + 1);
  strcpy(c, s);
  return c;
}

/* Fills tensor i of g: type, shape, one scale/zp (or nq per-channel scales), data copied. */
static void mk(nas_g8_graph *g, int i, int type, int nd, const int *dims, int nq,
               const float *scale, int32_t zp, const void *data) {
  nas_g8_tensor *t = &g->tensors[i];
  t->name = dupstr("t");
  t->type = type;
  t->ndim = nd;
  memcpy(t->dims, dims, sizeof(int) * (size_t)nd);
  t->nq = nq;
  t->scale = malloc(sizeof(float) * (size_t)nq);
  t->zero_point = malloc(sizeof(int32_t) * (size_t)nq);
  for (int k = 0; k < nq; k++) t->scale[k] = scale[k], t->zero_point[k] = nq > 1 ? 0 : zp;
  t->qdim = 0;
  t->bytes = nas_g8_numel(t) * (type == NAS_G8_INT8 ? 1 : 4);
  if (data) {
    t->data = malloc(t->bytes);
    memcpy(t->data, data, t->bytes);
  }
}

static void graph_new(nas_g8_graph *g, int nt, int nops) {
  memset(g, 0, sizeof *g);
  g->ntensors = nt;
  g->tensors = calloc((size_t)nt, sizeof *g->tensors);
  g->nops = nops;
  g->ops = calloc((size_t)nops, sizeof *g->ops);
}

static nas_g8_op op_default(int kind) {
  nas_g8_op o = {.kind = kind, .stride_w = 1, .stride_h = 1, .dil_w = 1, .dil_h = 1,
                 .filter_w = 1, .filter_h = 1, .depth_mult = 1, .beta = 1.0f,
                 .padding = NAS_G8_PAD_VALID};
  return o;
}

/* Validates and runs g on in, writing out; the MCU runtime (runtime/, on the same prepared
 * parameters) must give the same bytes. */
static void run_graph(nas_g8_graph *g, const int8_t *in, int8_t *out) {
  nas_err e = {0};
  int rc = nas_g8_validate(g, &e);
  if (rc) fprintf(stderr, "validate: %s\n", e.msg);
  assert_int_equal(rc, NAS_OK);
  rc = nas_g8_run(g, in, out, &e);
  if (rc) fprintf(stderr, "run: %s\n", e.msg);
  assert_int_equal(rc, NAS_OK);
  const size_t no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *rt = malloc(no);
  assert_non_null(rt);
  assert_int_equal(nas_g8_rt_run(g, in, rt, &e), NAS_OK);
  assert_memory_equal(rt, out, no);
  free(rt);
}

static const float ONE = 1.0f;

/* ---- fixed point ----------------------------------------------------------------------- */

static void test_fixed_point(void **state) {
  (void)state;
  assert_int_equal(nas_q_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
  assert_int_equal(nas_q_srdhm(INT32_MIN, INT32_MAX), -INT32_MAX);
  assert_int_equal(nas_q_srdhm(1 << 30, 1 << 30), 1 << 29);
  assert_int_equal(nas_q_srdhm(3, 1 << 30), 2);     /* +1.5 -> 2 */
  assert_int_equal(nas_q_srdhm(-3, 1 << 30), -1);   /* -1.5 -> -1 (gemmlowp's nudge) */
  assert_int_equal(nas_q_srdhm(-5, 1 << 30), -2);   /* -2.5 -> -2 */
  assert_int_equal(nas_q_srdhm(-7, 1 << 29), -2);   /* -1.75 -> -2 */
  assert_int_equal(nas_q_rdbpot(3, 1), 2);          /* 1.5 -> 2 */
  assert_int_equal(nas_q_rdbpot(-3, 1), -2);        /* -1.5 -> -2 (away from zero) */
  assert_int_equal(nas_q_rdbpot(-5, 2), -1);        /* -1.25 -> -1 */
  assert_int_equal(nas_q_rdbpot(-6, 2), -2);        /* -1.5 -> -2 */
  assert_int_equal(nas_q_rdbpot(-7, 2), -2);        /* -1.75 -> -2 */
  assert_int_equal(nas_q_rdbpot(5, 0), 5);
  assert_int_equal(nas_q_rdbpot(INT32_MIN, 31), -1);
  int32_t q;
  int s;
  nas_q_quantize_multiplier(0.5, &q, &s);
  assert_int_equal(q, 1 << 30), assert_int_equal(s, 0);
  nas_q_quantize_multiplier(1.0, &q, &s);
  assert_int_equal(q, 1 << 30), assert_int_equal(s, 1);
  nas_q_quantize_multiplier(0.75, &q, &s);
  assert_int_equal(q, 1610612736), assert_int_equal(s, 0);
  nas_q_quantize_multiplier(0.1, &q, &s);
  assert_int_equal(q, 1717986918), assert_int_equal(s, -3); /* round(0.8 * 2^31) */
  nas_q_quantize_multiplier(1.0 - ldexp(1.0, -40), &q, &s);  /* rounds up to 2^31 */
  assert_int_equal(q, 1 << 30), assert_int_equal(s, 1);
  nas_q_quantize_multiplier(0.0, &q, &s);
  assert_int_equal(q, 0), assert_int_equal(s, 0);
  nas_q_quantize_multiplier(ldexp(1.0, -40), &q, &s);        /* shift < -31 -> 0 */
  assert_int_equal(q, 0), assert_int_equal(s, 0);
  assert_int_equal(nas_q_mul(100, 1 << 30, 0), 50);
  assert_int_equal(nas_q_mul(-7, 1 << 30, -1), -2);  /* srdhm -> -3, then -1.5 -> -2 */
  assert_int_equal(nas_q_mul(3, 1 << 30, 2), 6);     /* 3 * 4 * 0.5 */
  int32_t lo, hi;
  nas_q_act_range(NAS_G8_ACT_RELU6, 0.1f, -10, &lo, &hi);
  assert_int_equal(lo, -10), assert_int_equal(hi, 50);
  nas_q_act_range(NAS_G8_ACT_RELU, 0.1f, -10, &lo, &hi);
  assert_int_equal(lo, -10), assert_int_equal(hi, 127);
  nas_q_act_range(NAS_G8_ACT_RELU_N1_TO_1, 0.25f, 0, &lo, &hi);
  assert_int_equal(lo, -4), assert_int_equal(hi, 4);
  nas_q_act_range(NAS_G8_ACT_NONE, 0.1f, 3, &lo, &hi);
  assert_int_equal(lo, -128), assert_int_equal(hi, 127);
}

/* nas_q_requant_row (the kernels' vectorised requantisation) equals the scalar
 * clamp(nas_q_mul(acc, q, shift) + zp) for random accumulators and multipliers, shifts from
 * +30 to -40 (clamped like nas_q_quantize_multiplier does), exact ties of both roundings of
 * either sign, and the int32 extremes. */
static void test_requant_row(void **state) {
  (void)state;
  enum { N = 4096 };
  int32_t *acc = malloc(N * sizeof *acc), *m = malloc(N * sizeof *m), *lm = malloc(N * sizeof *lm);
  int32_t *rs = malloc(N * sizeof *rs), *mk = malloc(N * sizeof *mk);
  int *sh = malloc(N * sizeof *sh);
  int8_t *out = malloc(N);
  assert_true(acc && m && lm && rs && mk && sh && out);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double real = ldexp(0.5 + (double)(x % 1000003) / 2000006.0, (int)(x >> 40) % 71 - 40);
    if (i % 97 == 0) real = 0.0;
    nas_q_quantize_multiplier(real, &m[i], &sh[i]);
    int left = sh[i] > 0 ? sh[i] : 0, right = sh[i] > 0 ? 0 : -sh[i];
    lm[i] = (int32_t)((int64_t)1 << left), rs[i] = right > 31 ? 31 : right;
    mk[i] = (int32_t)(((int64_t)1 << rs[i]) - 1);
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    acc[i] = i % 5 == 0 ? (int32_t)(uint32_t)x : (int32_t)(x % 200001) - 100000;
    if (i % 7 == 1) { /* an exact tie of the rounding divide: h = +-(k * 2^r + 2^(r-1)) */
      int rr = 1 + i % 9;
      m[i] = 1 << 30, sh[i] = -rr, lm[i] = 1, rs[i] = rr, mk[i] = (1 << rr) - 1;
      int32_t h = (int32_t)(x % 1000) * (1 << rr) + (1 << (rr - 1));
      acc[i] = 2 * (i % 2 ? h : -h); /* srdhm(2h, 2^30) = h exactly */
    }
    if (i % 211 == 0) acc[i] = INT32_MIN;
    if (i % 213 == 0) acc[i] = INT32_MAX;
  }
  nas_q_rq r = {m, lm, rs, mk};
  const int32_t zp = -7;
  nas_q_requant_row(acc, N, &r, zp, -128, 127, out);
  for (int i = 0; i < N; i++) {
    int32_t v = nas_q_mul(acc[i], m[i], sh[i]) + zp;
    v = v < -128 ? -128 : v > 127 ? 127 : v;
    if (out[i] != v)
      fail_msg("requant_row[%d]: acc %d q %d shift %d gives %d, nas_q_mul %d", i, acc[i], m[i],
               sh[i], out[i], v);
  }
  free(acc), free(m), free(lm), free(rs), free(mk), free(sh), free(out);
}

/* ---- kernels --------------------------------------------------------------------------- */

/* x [1,3,3,1] 1..9, filter [1,2,2,1] of ones: VALID gives 2x2 window sums, SAME gives 3x3
 * with the padding at the bottom/right (TFLite puts the smaller half top/left). */
static void test_conv(void **state) {
  (void)state;
  const int8_t x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const int8_t w[4] = {1, 1, 1, 1};
  const int32_t b[1] = {-2};
  for (int same = 0; same < 2; same++) {
    nas_g8_graph g;
    graph_new(&g, 4, 1);
    int dx[4] = {1, 3, 3, 1}, dw[4] = {1, 2, 2, 1}, db[1] = {1};
    int dy[4] = {1, same ? 3 : 2, same ? 3 : 2, 1};
    float half = 0.5f;
    mk(&g, 0, NAS_G8_INT8, 4, dx, 1, &half, 1, NULL);   /* real = (q-1)/2 */
    mk(&g, 1, NAS_G8_INT8, 4, dw, 1, &ONE, 0, w);
    mk(&g, 2, NAS_G8_INT32, 1, db, 1, &half, 0, b);
    mk(&g, 3, NAS_G8_INT8, 4, dy, 1, &ONE, 3, NULL);     /* out = acc * 0.5 + 3 */
    g.ops[0] = op_default(NAS_G8_CONV_2D);
    g.ops[0].nin = 3, g.ops[0].in[0] = 0, g.ops[0].in[1] = 1, g.ops[0].in[2] = 2, g.ops[0].out = 3;
    g.ops[0].padding = same ? NAS_G8_PAD_SAME : NAS_G8_PAD_VALID;
    g.input = 0, g.output = 3;
    int8_t y[9];
    run_graph(&g, x, y);
    /* acc = sum(x - 1) - 2; out = round_half_up(acc / 2) + 3 (positive ties go up) */
    if (!same) {
      const int8_t exp[4] = {6, 8, 12, 14}; /* accs 6,10,18,22 -> 3,5,9,11, + 3 */
      assert_memory_equal(y, exp, 4);
    } else {
      /* accs 6 10 5 / 18 22 11 / 11 13 6 -> halves 3 5 3(2.5) / 9 11 6(5.5) / 6(5.5) 7(6.5) 3 */
      const int8_t exp[9] = {6, 8, 6, 12, 14, 9, 9, 10, 6};
      assert_memory_equal(y, exp, 9);
    }
    nas_g8_graph_free(&g);
  }
}

/* Depthwise with depth multiplier 2, per-channel scales, stride 2 and RELU. */
static void test_depthwise(void **state) {
  (void)state;
  nas_g8_graph g;
  graph_new(&g, 3, 1);
  int dx[4] = {1, 3, 3, 2}, dw[4] = {1, 1, 1, 4}, dy[4] = {1, 2, 2, 4};
  const float ws[4] = {1, 1, 0.5f, 2};
  const int8_t w[4] = {1, 2, 3, -4};
  mk(&g, 0, NAS_G8_INT8, 4, dx, 1, &ONE, 0, NULL);
  mk(&g, 1, NAS_G8_INT8, 4, dw, 4, ws, 0, w);
  g.tensors[1].qdim = 3;
  mk(&g, 2, NAS_G8_INT8, 4, dy, 1, &ONE, 0, NULL);
  g.ops[0] = op_default(NAS_G8_DEPTHWISE_CONV_2D);
  g.ops[0].nin = 2, g.ops[0].in[0] = 0, g.ops[0].in[1] = 1, g.ops[0].out = 2;
  g.ops[0].stride_w = g.ops[0].stride_h = 2, g.ops[0].padding = NAS_G8_PAD_SAME;
  g.ops[0].depth_mult = 2, g.ops[0].act = NAS_G8_ACT_RELU;
  g.input = 0, g.output = 2;
  int8_t x[18], y[16];
  for (int i = 0; i < 9; i++) x[2 * i] = (int8_t)(i + 1), x[2 * i + 1] = (int8_t)-(i + 1);
  run_graph(&g, x, y);
  /* Outputs at pixels (0,0),(0,2),(2,0),(2,2): c0 = v, c1 = 2v, c2 = 0.5*3*(-v), c3 = 2*(-4)*(-v) */
  const int pix[4] = {1, 3, 7, 9};
  for (int p = 0; p < 4; p++) {
    int v = pix[p];
    assert_int_equal(y[4 * p + 0], v);
    assert_int_equal(y[4 * p + 1], 2 * v);
    assert_int_equal(y[4 * p + 2], 0); /* negative: clamped by RELU */
    assert_int_equal(y[4 * p + 3], 8 * v > 127 ? 127 : 8 * v);
  }
  nas_g8_graph_free(&g);
}

static void test_fully_connected(void **state) {
  (void)state;
  for (int relu = 0; relu < 2; relu++) {
    nas_g8_graph g;
    graph_new(&g, 4, 1);
    int dx[2] = {1, 3}, dw[2] = {2, 3}, db[1] = {2}, dy[2] = {1, 2};
    const int8_t w[6] = {1, 1, 1, 2, 0, -1};
    const int32_t b[2] = {10, 0};
    mk(&g, 0, NAS_G8_INT8, 2, dx, 1, &ONE, 1, NULL);
    mk(&g, 1, NAS_G8_INT8, 2, dw, 1, &ONE, 0, w);
    mk(&g, 2, NAS_G8_INT32, 1, db, 1, &ONE, 0, b);
    mk(&g, 3, NAS_G8_INT8, 2, dy, 1, &ONE, 5, NULL);
    g.ops[0] = op_default(NAS_G8_FULLY_CONNECTED);
    g.ops[0].nin = 3, g.ops[0].in[0] = 0, g.ops[0].in[1] = 1, g.ops[0].in[2] = 2, g.ops[0].out = 3;
    g.ops[0].act = relu ? NAS_G8_ACT_RELU : NAS_G8_ACT_NONE;
    g.input = 0, g.output = 3;
    const int8_t x[3] = {1, 2, 3};
    int8_t y[2];
    run_graph(&g, x, y);
    assert_int_equal(y[0], 18);             /* (0+1+2) + 10 + 5 */
    assert_int_equal(y[1], relu ? 5 : 3);   /* (0+0-2) + 0 + 5, RELU clamps at the zero point */
    nas_g8_graph_free(&g);
  }
}

static void test_pools(void **state) {
  (void)state;
  for (int kind = 0; kind < 2; kind++)
    for (int same = 0; same < 2; same++) {
      nas_g8_graph g;
      graph_new(&g, 2, 1);
      int dx[4] = {1, 2, 2, 2}, dy[4] = {1, same ? 2 : 1, same ? 2 : 1, 2};
      mk(&g, 0, NAS_G8_INT8, 4, dx, 1, &ONE, 0, NULL);
      mk(&g, 1, NAS_G8_INT8, 4, dy, 1, &ONE, 0, NULL);
      g.ops[0] = op_default(kind ? NAS_G8_MAX_POOL_2D : NAS_G8_AVERAGE_POOL_2D);
      g.ops[0].nin = 1, g.ops[0].in[0] = 0, g.ops[0].out = 1;
      g.ops[0].filter_w = g.ops[0].filter_h = same ? 3 : 2;
      g.ops[0].padding = same ? NAS_G8_PAD_SAME : NAS_G8_PAD_VALID;
      g.input = 0, g.output = 1;
      /* channel 0: 1 2 / 3 5; channel 1: -1 -2 / -3 -5 */
      const int8_t x[8] = {1, -1, 2, -2, 3, -3, 5, -5};
      int8_t y[8];
      run_graph(&g, x, y);
      if (!kind) {
        /* every window (clipped) covers all 4 pixels: (11+2)/4 = 3, (-11-2)/4 = -3 */
        for (int p = 0; p < (same ? 4 : 1); p++) assert_int_equal(y[2 * p], 3), assert_int_equal(y[2 * p + 1], -3);
      } else {
        for (int p = 0; p < (same ? 4 : 1); p++) assert_int_equal(y[2 * p], 5), assert_int_equal(y[2 * p + 1], -1);
      }
      nas_g8_graph_free(&g);
    }
  /* SAME 2x2 window, stride 1 on 2x2: windows clip at the bottom/right edge. */
  nas_g8_graph g;
  graph_new(&g, 2, 1);
  int dx[4] = {1, 2, 2, 1};
  mk(&g, 0, NAS_G8_INT8, 4, dx, 1, &ONE, 0, NULL);
  mk(&g, 1, NAS_G8_INT8, 4, dx, 1, &ONE, 0, NULL);
  g.ops[0] = op_default(NAS_G8_AVERAGE_POOL_2D);
  g.ops[0].nin = 1, g.ops[0].in[0] = 0, g.ops[0].out = 1;
  g.ops[0].filter_w = g.ops[0].filter_h = 2, g.ops[0].padding = NAS_G8_PAD_SAME;
  g.input = 0, g.output = 1;
  const int8_t x[4] = {1, 2, 4, 7};
  int8_t y[4];
  run_graph(&g, x, y);
  const int8_t exp[4] = {4, 5, 6, 7}; /* (14+2)/4, (9+1)/2, (11+1)/2, 7 */
  assert_memory_equal(y, exp, 4);
  nas_g8_graph_free(&g);
}

static void test_add(void **state) {
  (void)state;
  nas_g8_graph g;
  graph_new(&g, 3, 1);
  int d[2] = {1, 4};
  float sa = 0.5f, sb = 0.25f, so = 1.0f;
  mk(&g, 0, NAS_G8_INT8, 2, d, 1, &sa, 0, NULL);
  const int8_t bconst[4] = {4, -4, 10, 127};
  mk(&g, 1, NAS_G8_INT8, 2, d, 1, &sb, 2, bconst); /* a constant second operand */
  mk(&g, 2, NAS_G8_INT8, 2, d, 1, &so, -1, NULL);
  g.ops[0] = op_default(NAS_G8_ADD);
  g.ops[0].nin = 2, g.ops[0].in[0] = 0, g.ops[0].in[1] = 1, g.ops[0].out = 2;
  g.input = 0, g.output = 2;
  const int8_t x[4] = {4, 4, -3, 127};
  int8_t y[4];
  run_graph(&g, x, y);
  /* reals: 2 + 0.5 = 2.5 -> 3 (-1 zp: 2); 2 - 1.5 = 0.5 -> 1 (0); -1.5 + 2 = 0.5 (0);
   * 63.5 + 31.25 = 94.75 -> 95 (94) */
  assert_int_equal(y[0], 2);
  assert_int_equal(y[1], 0);
  assert_int_equal(y[2], 0);
  assert_int_equal(y[3], 94);
  /* RELU6 clamps at zp + 6 */
  g.ops[0].act = NAS_G8_ACT_RELU6;
  run_graph(&g, x, y);
  assert_int_equal(y[3], 5);
  nas_g8_graph_free(&g);
}

static void test_reshape_quantize(void **state) {
  (void)state;
  nas_g8_graph g;
  graph_new(&g, 3, 2);
  int d4[4] = {1, 1, 2, 2}, d2[2] = {1, 4};
  float s2 = 2.0f;
  mk(&g, 0, NAS_G8_INT8, 4, d4, 1, &ONE, 0, NULL);
  mk(&g, 1, NAS_G8_INT8, 2, d2, 1, &ONE, 0, NULL);
  mk(&g, 2, NAS_G8_INT8, 2, d2, 1, &s2, 1, NULL);
  g.ops[0] = op_default(NAS_G8_RESHAPE);
  g.ops[0].nin = 1, g.ops[0].in[0] = 0, g.ops[0].out = 1;
  g.ops[1] = op_default(NAS_G8_QUANTIZE);
  g.ops[1].nin = 1, g.ops[1].in[0] = 1, g.ops[1].out = 2;
  g.input = 0, g.output = 2;
  const int8_t x[4] = {5, -5, 127, -128};
  int8_t y[4];
  run_graph(&g, x, y);
  /* q = round(x/2) + 1 with srdhm's rounding: 2.5 -> 3, -2.5 -> -2, 63.5 -> 64, -64 */
  const int8_t exp[4] = {4, -1, 65, -63};
  assert_memory_equal(y, exp, 4);
  nas_g8_graph_free(&g);
}

static void test_softmax(void **state) {
  (void)state;
  nas_g8_graph g;
  graph_new(&g, 2, 1);
  int d[2] = {1, 5};
  float sx = 0.1f, sy = 1.0f / 256;
  mk(&g, 0, NAS_G8_INT8, 2, d, 1, &sx, 0, NULL);
  mk(&g, 1, NAS_G8_INT8, 2, d, 1, &sy, -128, NULL);
  g.ops[0] = op_default(NAS_G8_SOFTMAX);
  g.ops[0].nin = 1, g.ops[0].in[0] = 0, g.ops[0].out = 1;
  g.input = 0, g.output = 1;
  int8_t y[5];
  const int8_t x0[5] = {7, 7, 7, 7, 7};
  run_graph(&g, x0, y);
  for (int i = 0; i < 5; i++) assert_int_equal(y[i], (int)lround(256.0 / 5) - 128); /* 0.2 */
  /* against float softmax: within 1 step */
  const int8_t xs[4][5] = {{0, 10, 20, 30, 40}, {-128, 127, 0, 5, -5}, {100, 90, 80, -50, 3},
                           {1, 2, 3, 4, 5}};
  for (int k = 0; k < 4; k++) {
    run_graph(&g, xs[k], y);
    double mx = -1e9, sum = 0;
    for (int i = 0; i < 5; i++) mx = fmax(mx, xs[k][i] * 0.1);
    for (int i = 0; i < 5; i++) sum += exp(xs[k][i] * 0.1 - mx);
    for (int i = 0; i < 5; i++) {
      double p = exp(xs[k][i] * 0.1 - mx) / sum;
      long q = lround(p * 256) - 128;
      if (q > 127) q = 127;
      assert_true(labs(q - y[i]) <= 1);
    }
  }
  nas_g8_graph_free(&g);
}

/* Bad shapes are refused by validation with the operator named. */
static void test_validate_errors(void **state) {
  (void)state;
  nas_g8_graph g;
  graph_new(&g, 3, 1);
  int dx[4] = {1, 3, 3, 2}, dw[4] = {1, 2, 2, 1}, dy[4] = {1, 2, 2, 1};
  int8_t w[4] = {0};
  mk(&g, 0, NAS_G8_INT8, 4, dx, 1, &ONE, 0, NULL);
  mk(&g, 1, NAS_G8_INT8, 4, dw, 1, &ONE, 0, w);
  mk(&g, 2, NAS_G8_INT8, 4, dy, 1, &ONE, 0, NULL);
  g.ops[0] = op_default(NAS_G8_CONV_2D);
  g.ops[0].nin = 2, g.ops[0].in[0] = 0, g.ops[0].in[1] = 1, g.ops[0].out = 2;
  g.input = 0, g.output = 2;
  nas_err e = {0};
  assert_int_equal(nas_g8_validate(&g, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "operator 0 (CONV_2D)"));
  assert_non_null(strstr(e.msg, "2 input channels"));
  nas_g8_graph_free(&g);
}

/* A synthetic chain with a skip connection: the skip tensor must not be overwritten. */
static void test_planner_synthetic(void **state) {
  (void)state;
  nas_g8_graph g;
  graph_new(&g, 5, 3);
  int d[2] = {1, 64}, d2[2] = {1, 100};
  mk(&g, 0, NAS_G8_INT8, 2, d, 1, &ONE, 0, NULL);
  mk(&g, 1, NAS_G8_INT8, 2, d, 1, &ONE, 0, NULL);
  mk(&g, 2, NAS_G8_INT8, 2, d, 1, &ONE, 0, NULL);
  mk(&g, 3, NAS_G8_INT8, 2, d, 1, &ONE, 0, NULL);
  mk(&g, 4, NAS_G8_INT8, 2, d2, 1, &ONE, 0, NULL); /* unused */
  /* ops: 0 -> 1, 1 -> 2, (0, 2) -> 3 */
  for (int o = 0; o < 2; o++) {
    g.ops[o] = op_default(NAS_G8_RESHAPE);
    g.ops[o].nin = 1, g.ops[o].in[0] = o, g.ops[o].out = o + 1;
  }
  g.ops[2] = op_default(NAS_G8_ADD);
  g.ops[2].nin = 2, g.ops[2].in[0] = 0, g.ops[2].in[1] = 2, g.ops[2].out = 3;
  g.input = 0, g.output = 3;
  check_plan(&g);
  nas_g8_plan p;
  nas_err e = {0};
  assert_int_equal(nas_g8_plan_build(&g, &p, &e), NAS_OK);
  assert_int_equal(p.first[0], 0), assert_int_equal(p.last[0], 2);
  assert_true(p.offset[0] != p.offset[2]); /* the skip input survives until the ADD */
  int8_t x[64], y[64];
  for (int i = 0; i < 64; i++) x[i] = (int8_t)(i - 32);
  run_graph(&g, x, y);
  for (int i = 0; i < 64; i++) assert_int_equal(y[i], 2 * (i - 32)); /* reshape, reshape, x + x */
  assert_true(p.peak >= 3 * 64);
  assert_true(p.offset[4] < 0);
  nas_g8_plan_free(&p);
  nas_g8_graph_free(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed_point),       cmocka_unit_test(test_requant_row),
      cmocka_unit_test(test_conv),
      cmocka_unit_test(test_depthwise),         cmocka_unit_test(test_fully_connected),
      cmocka_unit_test(test_pools),             cmocka_unit_test(test_add),
      cmocka_unit_test(test_reshape_quantize),  cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_validate_errors),   cmocka_unit_test(test_planner_synthetic),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
