/* tests/test_qat_rnn.c: quantisation-aware training of LSTM layers (issue 18): the QAT form of
 * the LSTM op (train/ops_rnn.c, p.kw = 1) against a plain scalar reimplementation of its
 * documented fake quantisation and straight-through gradients (the rounding makes finite
 * differences meaningless, as for FAKEQUANT in test_qat.c), its EMA range tracking, the
 * ranges JSON with the cells' internal points, the refusal of GRU, and the end-to-end contract:
 * a QAT-trained LSTM network's fake-quant forward agrees with the int8 graph deploy/ lowers
 * from its weights and learned ranges. */
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
#include "deploy/lower.h"
#include "train/ops.h"
#include "train/qat.h"
#include "train/quant.h"
#include "train/trainer.h"

enum { N = 2, T = 4, F = 3, H = 5, G4 = 4 * H };

static float sg(double v) { return (float)(1.0 / (1.0 + exp(-v))); }

/* round half away from zero to a multiple of s, clamped to [qlo, qhi] steps */
static float fq(float v, float s, float qlo, float qhi) {
  float q = roundf(v / s);
  return (q < qlo ? qlo : q > qhi ? qhi : q) * s;
}

/* The reference QAT LSTM (every step returned), its STE backward for output gradient dy
 * [N,T,H]: gradients of x [N,T,F], w_ih [4H,F], w_hh [4H,H], b (= d b_ih = d b_hh) [4H]. */
typedef struct ref {
  float y[N][T][H];
  float dx[N][T][F], dwi[G4][F], dwh[G4][H], db[G4];
  int sat_gate, sat_h; /* saturated pre-activations, h values */
} ref;

static void reference(const float *x, const float *wi, const float *wh, const float *bi,
                      const float *bh, const float *r, const float *dy, ref *o) {
  const float gs = 1.0f / 4096, gmin = -32768 * gs, gmax = 32767 * gs;
  float hm = fmaxf(fabsf(r[0]), fabsf(r[1])), cm = fmaxf(fabsf(r[3]), fabsf(r[4]));
  float hs = hm > 0 ? hm / 127 : 1.0f / 127;
  int k = cm > 1 ? (int)ceilf(log2f(cm)) : 0;
  k = k < 0 ? 0 : k > 6 ? 6 : k;
  float cs = ldexpf(1, k - 15);
  static float P[N][T][G4], A[N][T][G4], C[N][T][H], CR[N][T][H], TC[N][T][H], HQ[N][T][H],
      HR[N][T][H];
  memset(o, 0, sizeof *o);
  for (int b = 0; b < N; b++)
    for (int t = 0; t < T; t++) {
      for (int j = 0; j < G4; j++) {
        float ax = bi[j] + bh[j], ah = 0;
        for (int f = 0; f < F; f++) ax += x[(b * T + t) * F + f] * wi[j * F + f];
        for (int i = 0; t > 0 && i < H; i++) ah += HQ[b][t - 1][i] * wh[j * H + i];
        P[b][t][j] = fq(ax, gs, -32768, 32767) + fq(ah, gs, -32768, 32767);
        float a = fminf(fmaxf(P[b][t][j], gmin), gmax);
        o->sat_gate += a != P[b][t][j];
        A[b][t][j] = j >= 2 * H && j < 3 * H ? tanhf(a) : sg(a);
      }
      for (int i = 0; i < H; i++) {
        float ig = A[b][t][i], fg = A[b][t][H + i], gg = A[b][t][2 * H + i], og = A[b][t][3 * H + i];
        CR[b][t][i] = ig * gg + fg * (t ? C[b][t - 1][i] : 0);
        C[b][t][i] = fq(CR[b][t][i], cs, -32768, 32767);
        TC[b][t][i] = tanhf(C[b][t][i]);
        HR[b][t][i] = og * TC[b][t][i];
        HQ[b][t][i] = fq(HR[b][t][i], hs, -128, 127);
        o->sat_h += HR[b][t][i] < -128 * hs || HR[b][t][i] > 127 * hs;
        o->y[b][t][i] = HQ[b][t][i];
      }
    }
  for (int b = 0; b < N; b++) {
    float dh[H] = {0}, dc[H] = {0};
    for (int t = T - 1; t >= 0; t--) {
      float dg[G4];
      for (int i = 0; i < H; i++) {
        float ig = A[b][t][i], fg = A[b][t][H + i], gg = A[b][t][2 * H + i], og = A[b][t][3 * H + i];
        float dhv = dh[i] + dy[(b * T + t) * H + i];
        if (HR[b][t][i] < -128 * hs || HR[b][t][i] > 127 * hs) dhv = 0;
        float dcv = dc[i] + dhv * og * (1 - TC[b][t][i] * TC[b][t][i]);
        if (CR[b][t][i] < -32768 * cs || CR[b][t][i] > 32767 * cs) dcv = 0;
        float cp = t ? C[b][t - 1][i] : 0;
        dg[i] = dcv * gg * ig * (1 - ig);
        dg[H + i] = dcv * cp * fg * (1 - fg);
        dg[2 * H + i] = dcv * ig * (1 - gg * gg);
        dg[3 * H + i] = dhv * TC[b][t][i] * og * (1 - og);
        dc[i] = dcv * fg;
      }
      for (int j = 0; j < G4; j++)
        if (P[b][t][j] < gmin || P[b][t][j] > gmax) dg[j] = 0;
      for (int i = 0; i < H; i++) {
        dh[i] = 0;
        for (int j = 0; t > 0 && j < G4; j++) dh[i] += dg[j] * wh[j * H + i];
      }
      for (int j = 0; j < G4; j++) {
        o->db[j] += dg[j];
        for (int f = 0; f < F; f++) {
          o->dwi[j][f] += dg[j] * x[(b * T + t) * F + f];
          o->dx[b][t][f] += dg[j] * wi[j * F + f];
        }
        for (int i = 0; t > 0 && i < H; i++) o->dwh[j][i] += dg[j] * HQ[b][t - 1][i];
      }
    }
  }
}

static int param(nas_graph *g, const char *name, int nd, int d0, int d1, int d2) {
  int d[3] = {d0, d1, d2};
  int id = nas_graph_param(g, name, nd, d, NULL);
  assert_true(id >= 0);
  return id;
}

static void fill(nas_node *n, nas_rng *r, float scale) {
  for (size_t i = 0; i < nas_shape_numel(&n->shape); i++)
    n->val[i] = (nas_rng_uniform(r) * 2 - 1) * scale;
}

/* max |a - b| relative to max |b| (at least 1e-3) */
static double rel_err(const float *a, const float *b, size_t n) {
  double m = 1e-3, d = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(b[i])), d = fmax(d, fabs(a[i] - b[i]));
  return d / m;
}

/* The QAT LSTM op's output and gradients equal the reference: with a wide range (nothing
 * clipped but the rounding), with a narrow h range (many h saturated: zero gradients), and
 * with large weights (gate pre-activations saturated at +-8). */
static void test_lstm_qat_op(void **st) {
  (void)st;
  static const struct { float hlo, hhi, clo, chi, wscale; const char *what; } cases[] = {
      {-0.9f, 0.9f, -3.0f, 3.0f, 0.8f, "wide ranges"},
      {-0.05f, 0.04f, -0.5f, 0.5f, 0.8f, "narrow h range"},
      {-0.9f, 0.9f, -40.0f, 40.0f, 6.0f, "saturated gates"},
  };
  for (int c = 0; c < 3; c++) {
    nas_graph *g = nas_graph_new(1, 5);
    int x = param(g, "x", 3, N, T, F);
    int wi = param(g, "wi", 2, G4, F, 0), wh = param(g, "wh", 2, G4, H, 0);
    int bi = param(g, "bi", 1, G4, 0, 0), bh = param(g, "bh", 1, G4, 0, 0);
    int rg = nas_graph_state(g, "r", 1, (int[]){6}, NULL);
    nas_op_params p = {.kh = 1, .kw = 1};
    nas_err e = {0};
    int y = nas_graph_apply(g, NAS_OP_LSTM, (int[]){x, wi, wh, bi, bh, rg}, 6, &p, "y", &e);
    if (y < 0) fail_msg("%s", e.msg);
    assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
    nas_rng r;
    nas_rng_seed(&r, 11 + (uint64_t)c);
    fill(&g->nodes[x], &r, 1.5f);
    fill(&g->nodes[wi], &r, cases[c].wscale), fill(&g->nodes[wh], &r, cases[c].wscale);
    fill(&g->nodes[bi], &r, 0.3f), fill(&g->nodes[bh], &r, 0.3f);
    float *rv = g->nodes[rg].val;
    rv[0] = cases[c].hlo, rv[1] = cases[c].hhi, rv[2] = 1;
    rv[3] = cases[c].clo, rv[4] = cases[c].chi, rv[5] = 1;
    float dy[N * T * H];
    for (int i = 0; i < N * T * H; i++) dy[i] = nas_rng_uniform(&r) * 2 - 1;
    g->training = 0;
    nas_graph_forward(g, 1, y);
    nas_graph_backward_seed(g, y, dy);
    static ref o;
    reference(g->nodes[x].val, g->nodes[wi].val, g->nodes[wh].val, g->nodes[bi].val,
              g->nodes[bh].val, rv, dy, &o);
    const double ey = rel_err(g->nodes[y].val, &o.y[0][0][0], N * T * H);
    const double ex = rel_err(g->nodes[x].grad, &o.dx[0][0][0], N * T * F);
    const double ewi = rel_err(g->nodes[wi].grad, &o.dwi[0][0], G4 * F);
    const double ewh = rel_err(g->nodes[wh].grad, &o.dwh[0][0], G4 * H);
    const double eb = fmax(rel_err(g->nodes[bi].grad, o.db, G4), rel_err(g->nodes[bh].grad, o.db, G4));
    print_message("%s: relative errors y %.1e, dx %.1e, dw_ih %.1e, dw_hh %.1e, db %.1e "
                  "(%d gates, %d h saturated)\n", cases[c].what, ey, ex, ewi, ewh, eb, o.sat_gate, o.sat_h);
    /* float summation order only (a rounding decision flipped by it would show as >= 1e-3) */
    if (ey > 1e-5 || ex > 1e-4 || ewi > 1e-4 || ewh > 1e-4 || eb > 1e-4) fail_msg("%s", cases[c].what);
    /* the case does what it says */
    if (c == 0) assert_true(o.sat_gate == 0 && o.sat_h == 0);
    if (c == 1) assert_true(o.sat_h > N * T * H / 4);
    if (c == 2) assert_true(o.sat_gate > 0);
    nas_graph_free(g);
  }
}

/* Training mode: the first pass sets unset ranges from the batch (no quantisation of that
 * point during it), later passes move them by the EMA; eval mode leaves them alone. */
static void test_lstm_qat_ema(void **st) {
  (void)st;
  nas_graph *g = nas_graph_new(1, 5);
  int x = param(g, "x", 3, N, T, F);
  int wi = param(g, "wi", 2, G4, F, 0), wh = param(g, "wh", 2, G4, H, 0);
  int rg = nas_graph_state(g, "r", 1, (int[]){6}, NULL);
  nas_op_params p = {.kh = 1, .kw = 1, .momentum = 0.5f};
  nas_err e = {0};
  int y = nas_graph_apply(g, NAS_OP_LSTM, (int[]){x, wi, wh, rg}, 4, &p, "y", &e);
  if (y < 0) fail_msg("%s", e.msg);
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  nas_rng r;
  nas_rng_seed(&r, 5);
  fill(&g->nodes[x], &r, 1.0f), fill(&g->nodes[wi], &r, 0.7f), fill(&g->nodes[wh], &r, 0.7f);
  float *rv = g->nodes[rg].val;
  g->training = 1;
  nas_graph_forward(g, 1, y);
  assert_true(rv[2] == 1 && rv[5] == 1);
  /* unquantised first pass: the range is the output's min/max */
  float lo = 1e9f, hi = -1e9f;
  for (int i = 0; i < N * T * H; i++)
    lo = fminf(lo, g->nodes[y].val[i]), hi = fmaxf(hi, g->nodes[y].val[i]);
  assert_true(rv[0] == lo && rv[1] == hi);
  const float h0 = rv[1], c0 = rv[4];
  fill(&g->nodes[x], &r, 3.0f); /* larger inputs: larger states */
  nas_graph_forward(g, 1, y);
  assert_true(rv[1] != h0 && rv[4] != c0);
  float saved[6];
  memcpy(saved, rv, sizeof saved);
  g->training = 0;
  nas_graph_forward(g, 1, y);
  assert_memory_equal(saved, rv, sizeof saved);
  nas_graph_free(g);
  /* a GRU takes no QAT ranges */
  g = nas_graph_new(1, 5);
  x = param(g, "x", 3, N, T, F);
  int wg = param(g, "wg", 2, 3 * H, F, 0), wgh = param(g, "wgh", 2, 3 * H, H, 0);
  rg = nas_graph_state(g, "r", 1, (int[]){6}, NULL);
  assert_true(nas_graph_apply(g, NAS_OP_GRU, (int[]){x, wg, wgh, rg}, 4, &p, "gru", &e) < 0);
  assert_non_null(strstr(e.msg, "QAT"));
  nas_graph_free(g);
}

static const char *ARCH = "{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"lstm\",\"units\":16},"
                          "{\"op\":\"fc\",\"out\":4}]}";

/* QAT of an LSTM network (the blob task read row by row), exported with its learned ranges
 * (the ranges JSON round trip included), lowered to int8: the int8 graph's class equals the
 * QAT network's (fake-quantised, eval mode) for >= 97% of the test samples and the two
 * accuracies are within 1 point, the logits within 2 output steps. */
static void test_qat_lstm_equals_int8(void **st) {
  (void)st;
  nas_data d = {0};
  test_make_blob_task(&d.train, 1200, 21);
  test_make_blob_task(&d.val, 100, 22);
  test_make_blob_task(&d.test, 400, 23);
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(ARCH, "t.json", 32, 4, &net, &e)) fail_msg("build: %s", e.msg);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 3, cfg.batch = 32, cfg.lr = 0.01f, cfg.seed = 4;
  nas_train_result tr;
  if (nas_train(net, &d, &cfg, &tr, &e)) fail_msg("%s", e.msg);
  nas_qat_cfg qc;
  nas_qat_cfg_default(&qc);
  nas_qat *q = NULL;
  nas_calib c0, c;
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 500;
  if (nas_calibrate(net, &d.train, &cc, &c0, &e)) fail_msg("%s", e.msg);
  if (nas_qat_build(net, &qc, &q, &e)) fail_msg("qat build: %s", e.msg);
  assert_int_equal(nas_qat_set_ranges(q, &c0, &e), NAS_OK);
  nas_calib_free(&c0);
  cfg.epochs = 1, cfg.lr = 0.002f;
  if (nas_train(q->net, &d, &cfg, &tr, &e)) fail_msg("qat train: %s", e.msg);
  if (nas_qat_export(q, net, &c, &e)) fail_msg("export: %s", e.msg);
  assert_true(c.nsub == NAS_LSTM_NPOINTS && c.sub_hi[NAS_LSTM_P_H] > 0 && c.sub_hi[NAS_LSTM_P_C] > 0);
  /* the ranges survive the checkpoint's JSON, cell points included */
  cJSON *j = nas_qat_ranges_to_json(net, &c);
  assert_non_null(j);
  char key[96];
  int lstm = -1;
  for (int i = 0; i < net->g->n; i++)
    if (net->g->nodes[i].kind == NAS_NODE_OP && net->g->nodes[i].op == NAS_OP_LSTM) lstm = i;
  assert_true(lstm >= 0);
  snprintf(key, sizeof key, "%s:c", net->g->nodes[lstm].name);
  assert_non_null(cJSON_GetObjectItemCaseSensitive(j, key));
  nas_calib c2;
  if (nas_qat_ranges_from_json(net, j, &c2, &e)) fail_msg("%s", e.msg);
  assert_int_equal(c2.nsub, c.nsub);
  for (int k = 0; k < c.nsub; k++)
    assert_true(c2.sub_lo[k] == c.sub_lo[k] && c2.sub_hi[k] == c.sub_hi[k]);
  cJSON_DeleteItemFromObjectCaseSensitive(j, key);
  nas_calib c3;
  assert_int_equal(nas_qat_ranges_from_json(net, j, &c3, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, key));
  cJSON_Delete(j);
  nas_calib_free(&c2);
  nas_g8_graph g8;
  if (nas_lower(net, &c, NULL, &g8, &e)) fail_msg("lower: %s", e.msg);
  nas_graph *qg = q->net->g;
  qg->training = 0;
  const size_t ni = nas_g8_numel(&g8.tensors[g8.input]), no = nas_g8_numel(&g8.tensors[g8.output]);
  int8_t *in = malloc(ni), *out = malloc(no);
  int same = 0, right_q = 0, right_8 = 0;
  double steps = 0; /* largest logit difference, in output quantisation steps */
  const nas_g8_tensor *to = &g8.tensors[g8.output];
  for (int s = 0; s < d.test.n; s++) {
    const float *xs = d.test.x + (size_t)s * ni;
    nas_g8_quantize_input(&g8, xs, in);
    if (nas_g8_run(&g8, in, out, &e)) fail_msg("%s", e.msg);
    memcpy(qg->nodes[q->net->input].val, xs, sizeof(float) * ni);
    nas_graph_forward(qg, 1, q->net->logits);
    const float *lq = qg->nodes[q->net->logits].val;
    int bq = 0, b8 = 0;
    for (size_t k = 0; k < no; k++) {
      steps = fmax(steps, fabs(lq[k] / to->scale[0] + to->zero_point[0] - out[k]));
      if (lq[k] > lq[bq]) bq = (int)k;
      if (out[k] > out[b8]) b8 = (int)k;
    }
    same += bq == b8, right_q += bq == d.test.y[s], right_8 += b8 == d.test.y[s];
  }
  const double aq = (double)right_q / d.test.n, a8 = (double)right_8 / d.test.n;
  print_message("QAT LSTM: fake-quant test %.4f, int8 %.4f, same class %d of %d, logits within "
                "%.1f steps\n", aq, a8, same, d.test.n, steps);
  assert_true(aq > 0.8);
  assert_true(fabs(aq - a8) <= 0.01);
  assert_true(same >= 0.97 * d.test.n);
  assert_true(steps <= 2); /* measured 1 (the gate sigmoids/tanh are float here, Q0.15 there) */
  free(in), free(out);
  nas_g8_graph_free(&g8);
  nas_calib_free(&c);
  nas_qat_free(q);
  /* GRU layers are refused, naming the node */
  nas_net *gn = NULL;
  if (nas_net_build("{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"gru\",\"units\":8},"
                    "{\"op\":\"fc\",\"out\":4}]}", "g.json", 8, 1, &gn, &e))
    fail_msg("%s", e.msg);
  assert_int_equal(nas_qat_build(gn, &qc, &q, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "gru"));
  nas_net_free(gn);
  nas_net_free(net);
  free(d.train.x), free(d.train.y), free(d.val.x), free(d.val.y), free(d.test.x), free(d.test.y);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lstm_qat_op),
      cmocka_unit_test(test_lstm_qat_ema),
      cmocka_unit_test(test_qat_lstm_equals_int8),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
