/* tests/test_rnn.c: the LSTM and GRU ops and layers.
 *
 *  - parity with PyTorch 1.13: forward output and the gradients of x and of every weight,
 *    for LSTM and GRU returning every step or the last one (tests/fixtures/rnn.txt, written
 *    in float64 by tests/fixtures/make_rnn_fixture.py; same format as parity.txt), within
 *    1e-4 * max(1, max |ref|) per tensor. Each case also runs with x fed through a batched
 *    input node at a batch smaller than the graph's maximum.
 *  - gradient check of stacked layers (LSTM every step -> GRU last step -> dense), so the
 *    gradient reaches a recurrent op through another one (op_grad_fresh / op_grad_acc).
 *  - the arch JSON layers: counts, sequence reshapes (input, CRNN), stacking, errors.
 *  - end to end: an LSTM classifies which of 3 frequencies a noisy sine sequence has.
 *  - the reference architectures in search_spaces/reference/ build. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/fileio.h"
#include "tests/gradcheck.h"
#include "train/net.h"
#include "train/ops.h"
#include "train/trainer.h"
#include "tests/test_util.h"

#define REL_TOL 1e-4

/* ---- fixture ------------------------------------------------------------------------------ */

typedef struct rec {
  char key[64];      /* "<case>.<tensor>" */
  nas_shape shape;   /* dims as stored */
  size_t n;          /* values */
  float *v;          /* [n] */
} rec;

static rec *recs;    /* every record of rnn.txt (loaded by the group setup) */
static int n_recs;
static char load_err[1024]; /* empty when loaded */

static char *src_path(const char *rel) {
  static char buf[4096];
  const char *dir = getenv("NAS_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : NAS_SOURCE_DIR, rel);
  return buf;
}

/* Parses one line "<key> <nd> <dims> <values>" (text is modified). */
static int parse_rec(char *line, rec *r) {
  char *save = NULL, *tok = strtok_r(line, " \n", &save);
  if (!tok) return 1;
  snprintf(r->key, sizeof r->key, "%s", tok);
  tok = strtok_r(NULL, " \n", &save);
  r->shape.nd = tok ? atoi(tok) : 0;
  if (r->shape.nd < 1 || r->shape.nd > NAS_MAX_DIMS) return 1;
  r->n = 1;
  for (int i = 0; i < r->shape.nd; i++) {
    tok = strtok_r(NULL, " \n", &save);
    r->shape.d[i] = tok ? atoi(tok) : 0;
    if (r->shape.d[i] < 1) return 1;
    r->n *= (size_t)r->shape.d[i];
  }
  r->v = malloc(r->n * sizeof *r->v);
  if (!r->v) return 1;
  for (size_t i = 0; i < r->n; i++) {
    tok = strtok_r(NULL, " \n", &save);
    char *end = NULL;
    r->v[i] = tok ? strtof(tok, &end) : 0;
    if (!tok || *end) return 1;
  }
  return strtok_r(NULL, " \n", &save) != NULL;
}

static int group_setup(void **state) {
  (void)state;
  const char *path = src_path("tests/fixtures/rnn.txt");
  char *text = NULL;
  nas_err e = {0};
  if (nas_read_file(path, &text, NULL, &e) != NAS_OK) {
    snprintf(load_err, sizeof load_err, "%.512s (run tests/fixtures/make_rnn_fixture.py)", e.msg);
    return 0;
  }
  int cap = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#' || !line[0]) continue;
    if (n_recs == cap) {
      cap = cap ? 2 * cap : 64;
      rec *p = realloc(recs, (size_t)cap * sizeof *p);
      if (!p) break;
      recs = p;
    }
    memset(&recs[n_recs], 0, sizeof recs[n_recs]);
    if (parse_rec(line, &recs[n_recs])) {
      snprintf(load_err, sizeof load_err, "%.900s: malformed record %d", path, n_recs + 1);
      free(recs[n_recs].v);
      break;
    }
    n_recs++;
  }
  free(text);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  for (int i = 0; i < n_recs; i++) free(recs[i].v);
  free(recs);
  return 0;
}

static const rec *find(const char *c, const char *t) {
  char key[64];
  snprintf(key, sizeof key, "%s.%s", c, t);
  for (int i = 0; i < n_recs; i++)
    if (!strcmp(recs[i].key, key)) return &recs[i];
  return NULL;
}

static const rec *need(const char *c, const char *t) {
  const rec *r = find(c, t);
  if (!r) fail_msg("%s.%s missing from rnn.txt (regenerate it)", c, t);
  return r;
}

/* Max abs error of got against record <c>.<t>; 1 when over tolerance. */
static int compare(const char *c, const char *t, const float *got, size_t n) {
  const rec *r = need(c, t);
  if (!got || n != r->n) {
    print_error("%s.%s: engine holds %zu values, reference %zu\n", c, t, got ? n : 0, r->n);
    return 1;
  }
  double maxref = 0, maxerr = 0;
  for (size_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - r->v[i]);
    if (fabs(r->v[i]) > maxref) maxref = fabs(r->v[i]);
    if (!(err <= maxerr)) maxerr = isnan(err) ? INFINITY : err;
  }
  double tol = REL_TOL * (maxref > 1 ? maxref : 1);
  if (maxerr > tol) {
    print_error("%s.%s: max abs error %.3g > %.3g\n", c, t, maxerr, tol);
    return 1;
  }
  return 0;
}

static int param_like(nas_graph *g, const char *c, const char *t) {
  const rec *r = need(c, t);
  nas_err e = {0};
  int id = nas_graph_param(g, t, r->shape.nd, r->shape.d, &e);
  if (id < 0) fail_msg("%s.%s: %s", c, t, e.msg);
  return id;
}

static void feed(nas_graph *g, int id, const char *c, const char *t) {
  const rec *r = need(c, t);
  nas_node *nd = &g->nodes[id];
  if (nas_node_numel(g, nd) != r->n) fail_msg("%s.%s: size mismatch", c, t);
  memcpy(nd->val, r->v, r->n * sizeof(float));
}

static const char *const WN[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
static const char *const DWN[4] = {"dw_ih", "dw_hh", "db_ih", "db_hh"};

/* One fixture case. batched = 0: x is a PARAM holding the whole batch (x gets a gradient);
 * batched = 1: x comes through an input node sized for N+2 samples, run at batch N. */
static void run_case(const char *c, int op, int seq, int batched) {
  if (load_err[0]) fail_msg("%s", load_err);
  const rec *xr = need(c, "x");
  int N = xr->shape.d[0], nw = find(c, "b_ih") ? 4 : 2;
  nas_graph *g = nas_graph_new(batched ? N + 2 : N, 1);
  nas_err e = {0};
  int in[5];
  in[0] = batched ? nas_graph_input(g, "x", 2, xr->shape.d + 1, &e) : param_like(g, c, "x");
  for (int i = 0; i < nw; i++) in[1 + i] = param_like(g, c, WN[i]);
  nas_op_params p = {.kh = seq};
  int y = nas_graph_apply(g, op, in, 1 + nw, &p, "y", &e);
  if (y < 0) fail_msg("%s: %s", c, e.msg);
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  g->batch = N;
  feed(g, in[0], c, "x");
  for (int i = 0; i < nw; i++) feed(g, in[1 + i], c, WN[i]);
  nas_graph_forward(g, N, -1);
  int bad = compare(c, "y", g->nodes[y].val, nas_node_numel(g, &g->nodes[y]));
  const rec *dy = need(c, "dy");
  if (dy->n != nas_node_numel(g, &g->nodes[y])) fail_msg("%s.dy: size mismatch", c);
  nas_graph_backward_seed(g, y, dy->v);
  if (!batched) bad += compare(c, "dx", g->nodes[in[0]].grad, xr->n);
  for (int i = 0; i < nw; i++) {
    nas_node *w = &g->nodes[in[1 + i]];
    bad += compare(c, DWN[i], w->grad, nas_shape_numel(&w->shape));
  }
  nas_graph_free(g);
  if (bad) fail_msg("%s%s: %d tensor(s) differ from PyTorch", c, batched ? " (batched)" : "", bad);
}

static void test_lstm_seq(void **s) { (void)s; run_case("lstm_seq", NAS_OP_LSTM, 1, 0); run_case("lstm_seq", NAS_OP_LSTM, 1, 1); }
static void test_lstm_last(void **s) { (void)s; run_case("lstm_last", NAS_OP_LSTM, 0, 0); run_case("lstm_last", NAS_OP_LSTM, 0, 1); }
static void test_lstm_nobias(void **s) { (void)s; run_case("lstm_seq_nobias", NAS_OP_LSTM, 1, 0); }
static void test_gru_seq(void **s) { (void)s; run_case("gru_seq", NAS_OP_GRU, 1, 0); run_case("gru_seq", NAS_OP_GRU, 1, 1); }
static void test_gru_last(void **s) { (void)s; run_case("gru_last", NAS_OP_GRU, 0, 0); run_case("gru_last", NAS_OP_GRU, 0, 1); }

/* ---- stacked gradient check --------------------------------------------------------------- */

static int gparam(nas_graph *g, const char *name, int nd, int d0, int d1, int d2) {
  int d[3] = {d0, d1, d2};
  int id = nas_graph_param(g, name, nd, d, NULL);
  assert_true(id >= 0);
  return id;
}

static void test_stacked_gradcheck(void **state) {
  (void)state;
  for (int first = 0; first < 2; first++) { /* LSTM -> GRU, then GRU -> LSTM */
    nas_graph *g = nas_graph_new(1, 3);
    nas_err e = {0};
    int G1 = first == 0 ? 4 : 3, G2 = first == 0 ? 3 : 4, H1 = 4, H2 = 3;
    int op1 = first == 0 ? NAS_OP_LSTM : NAS_OP_GRU, op2 = first == 0 ? NAS_OP_GRU : NAS_OP_LSTM;
    int in1[5] = {gparam(g, "x", 3, 2, 5, 3), gparam(g, "wi1", 2, G1 * H1, 3, 0),
                  gparam(g, "wh1", 2, G1 * H1, H1, 0), gparam(g, "bi1", 1, G1 * H1, 0, 0),
                  gparam(g, "bh1", 1, G1 * H1, 0, 0)};
    nas_op_params seq = {.kh = 1}, last = {.kh = 0};
    int h1 = nas_graph_apply(g, op1, in1, 5, &seq, "r1", &e);
    assert_true(h1 >= 0);
    int in2[5] = {h1, gparam(g, "wi2", 2, G2 * H2, H1, 0), gparam(g, "wh2", 2, G2 * H2, H2, 0),
                  gparam(g, "bi2", 1, G2 * H2, 0, 0), gparam(g, "bh2", 1, G2 * H2, 0, 0)};
    int h2 = nas_graph_apply(g, op2, in2, 5, &last, "r2", &e);
    assert_true(h2 >= 0);
    int d[3] = {h2, gparam(g, "wd", 2, 2, H2, 0), gparam(g, "bd", 1, 2, 0, 0)};
    int out = nas_graph_apply(g, NAS_OP_DENSE, d, 3, NULL, "fc", &e);
    assert_true(out >= 0);
    assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
    nas_rng r;
    nas_rng_seed(&r, 9);
    for (int i = 0; i < g->n; i++) {
      nas_node *nd = &g->nodes[i];
      if (nd->kind != NAS_NODE_PARAM) continue;
      for (size_t k = 0; k < nas_shape_numel(&nd->shape); k++)
        nd->val[k] = nas_rng_uniform(&r) * 2 - 1;
    }
    char where[256];
    double err = nas_gradcheck(g, out, 1e-2f, 0, where, sizeof where);
    if (err > 2e-3) fail_msg("stacked %d: relative error %.3g at %s", first, err, where);
    nas_graph_free(g);
  }
}

static void test_shape_errors(void **state) {
  (void)state;
  nas_graph *g = nas_graph_new(2, 1);
  nas_err e = {0};
  int x = nas_graph_input(g, "x", 2, (int[]){6, 3}, &e);
  int wi = gparam(g, "wi", 2, 20, 4, 0), wh = gparam(g, "wh", 2, 20, 5, 0);
  int in[3] = {x, wi, wh};
  assert_int_equal(nas_graph_apply(g, NAS_OP_LSTM, in, 3, NULL, "l", &e), -1);
  assert_non_null(strstr(e.msg, "w_ih must be [20,3]"));
  in[1] = gparam(g, "wi2", 2, 20, 3, 0);
  in[2] = gparam(g, "wh2", 2, 15, 5, 0);
  assert_int_equal(nas_graph_apply(g, NAS_OP_LSTM, in, 3, NULL, "l", &e), -1);
  assert_non_null(strstr(e.msg, "w_hh must be [4*H,H]"));
  int x4 = nas_graph_input(g, "x4", 3, (int[]){6, 3, 1}, &e);
  in[0] = x4, in[2] = wh;
  assert_int_equal(nas_graph_apply(g, NAS_OP_GRU, in, 3, NULL, "l", &e), -1);
  assert_non_null(strstr(e.msg, "[N,T,F]"));
  nas_graph_free(g);
}

/* ---- arch JSON ---------------------------------------------------------------------------- */

static nas_net *build_ok(const char *json) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(json, "t.json", 4, 1, &n, &e) != NAS_OK) fail_msg("unexpected error: %s", e.msg);
  return n;
}

static void build_err(const char *json, const char *frag1, const char *frag2) {
  nas_net *n = NULL;
  nas_err e = {0};
  assert_int_not_equal(nas_net_build(json, "t.json", 4, 1, &n, &e), NAS_OK);
  assert_null(n);
  if (!strstr(e.msg, frag1) || (frag2 && !strstr(e.msg, frag2)))
    fail_msg("message '%s' lacks '%s' / '%s'", e.msg, frag1, frag2 ? frag2 : "");
}

static void test_arch_layers(void **state) {
  (void)state;
  /* 49x10 MFCC: 49 steps of 10 features; LSTM 118 -> fc 12 */
  nas_net *n = build_ok("{\"input\":[49,10,1],\"classes\":12,\"layers\":["
                        "{\"op\":\"lstm\",\"units\":118},{\"op\":\"fc\",\"out\":12}]}");
  assert_int_equal(n->layers[0].macs, 49LL * 4 * 118 * (10 + 118));
  assert_int_equal(n->layers[0].params, 4LL * 118 * (10 + 118) + 8 * 118);
  assert_int_equal(n->layers[0].out_c, 118);
  assert_int_equal(n->macs, 49LL * 4 * 118 * 128 + 118 * 12);
  assert_non_null(strstr(n->arch_json, "\"return_sequences\":false"));
  nas_net_free(n);
  /* stacked GRU (every step) -> GRU -> fc; and return_sequences -> fc flattens */
  n = build_ok("{\"input\":[20,3,2],\"classes\":4,\"layers\":["
               "{\"op\":\"gru\",\"units\":8,\"return_sequences\":true},"
               "{\"op\":\"dropout\",\"rate\":0.1},"
               "{\"op\":\"gru\",\"units\":5,\"return_sequences\":true},"
               "{\"op\":\"fc\",\"out\":4}]}");
  assert_int_equal(n->layers[0].out_h, 20);
  assert_int_equal(n->layers[0].out_c, 8);
  assert_int_equal(n->layers[0].macs, 20LL * 3 * 8 * (6 + 8));
  assert_int_equal(n->layers[2].macs, 20LL * 3 * 5 * (8 + 5));
  assert_int_equal(n->layers[2].params, 3LL * 5 * 13 + 6 * 5);
  assert_int_equal(n->layers[3].macs, 20LL * 5 * 4);
  nas_net_free(n);
  /* CRNN: conv stack, then the [H,W,C] activation is read as H steps of W*C features */
  n = build_ok("{\"input\":[49,10,1],\"classes\":12,\"layers\":["
               "{\"op\":\"conv\",\"out\":16,\"k\":[10,4],\"stride\":[2,2]},"
               "{\"op\":\"gru\",\"units\":32},{\"op\":\"fc\",\"out\":12}]}");
  assert_int_equal(n->layers[0].out_h, 25);
  assert_int_equal(n->layers[1].macs, 25LL * 3 * 32 * (5 * 16 + 32));
  nas_graph_forward(n->g, 2, -1);
  assert_true(isfinite(n->g->nodes[n->loss].val[0]));
  nas_net_free(n);
  build_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\"}]}", "layer 0 (lstm)",
            "'units': required");
  build_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"gru\",\"units\":4,\"bidirectional\":true}]}",
            "layer 0 (gru)", "'bidirectional'");
  build_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\",\"units\":0}]}",
            "layer 0 (lstm)", "'units'");
  build_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\",\"units\":4,\"return_sequences\":1}]}",
            "layer 0 (lstm)", "'return_sequences'");
  build_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"gap\"},{\"op\":\"lstm\",\"units\":4}]}",
            "layer 1 (lstm)", "flat");
  build_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\",\"units\":4,\"return_sequences\":true},"
            "{\"op\":\"conv\",\"out\":4}]}",
            "layer 1 (conv)", "sequence");
}

/* ---- end to end --------------------------------------------------------------------------- */

/* Class k: sin(2 pi f_k t + phase) over T = 20 steps, f in {0.05, 0.1, 0.2} cycles per step,
 * random phase and amplitude 0.6..1.4, plus Gaussian noise (sigma 0.4). */
static void make_sines(nas_dataset *ds, int n, uint64_t seed) {
  static const float freq[3] = {0.05f, 0.1f, 0.2f};
  nas_rng r;
  nas_rng_seed(&r, seed);
  ds->n = n, ds->h = 20, ds->w = 1, ds->c = 1, ds->classes = 3;
  ds->x = malloc((size_t)n * 20 * sizeof(float));
  ds->y = malloc((size_t)n * sizeof(int));
  assert_non_null(ds->x);
  assert_non_null(ds->y);
  for (int i = 0; i < n; i++) {
    int k = (int)nas_rng_below(&r, 3);
    float ph = nas_rng_uniform(&r) * 6.2831853f, amp = 0.6f + 0.8f * nas_rng_uniform(&r);
    ds->y[i] = k;
    for (int t = 0; t < 20; t++)
      ds->x[(size_t)i * 20 + t] =
          amp * sinf(6.2831853f * freq[k] * (float)t + ph) + 0.4f * nas_rng_normal(&r);
  }
}

static void test_lstm_learns_frequencies(void **state) {
  (void)state;
  nas_data d = {0};
  make_sines(&d.train, 3000, 21);
  make_sines(&d.val, 300, 22);
  make_sines(&d.test, 600, 23);
  nas_net *n = NULL;
  nas_err e = {0};
  const char *arch = "{\"input\":[20,1,1],\"classes\":3,\"layers\":["
                     "{\"op\":\"lstm\",\"units\":24},{\"op\":\"fc\",\"out\":3}]}";
  assert_int_equal(nas_net_build(arch, "sines", 32, 4, &n, &e), NAS_OK);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 6, cfg.batch = 32, cfg.lr = 0.01f, cfg.seed = 4;
  nas_train_result r;
  int rc = nas_train(n, &d, &cfg, &r, &e);
  if (rc != NAS_OK) fail_msg("%s", e.msg);
  print_message("lstm sines: test accuracy %.3f, final loss %.3f\n", r.test_acc, r.final_loss);
  if (r.test_acc < 0.90) fail_msg("test accuracy %.3f below 0.90", r.test_acc);
  nas_net_free(n);
  free(d.train.x), free(d.train.y), free(d.val.x), free(d.val.y), free(d.test.x), free(d.test.y);
}

/* ---- reference architectures --------------------------------------------------------------- */

static void test_reference_archs(void **state) {
  (void)state;
  static const char *const names[] = {"lstm-s", "gru-s", "crnn-s", "dscnn-m", "dscnn-l"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char rel[128], *text = NULL;
    snprintf(rel, sizeof rel, "search_spaces/reference/%s.json", names[i]);
    nas_err e = {0};
    if (nas_read_file(src_path(rel), &text, NULL, &e) != NAS_OK) fail_msg("%s", e.msg);
    nas_net *n = NULL;
    if (nas_net_build(text, rel, 2, 1, &n, &e) != NAS_OK) fail_msg("%s", e.msg);
    print_message("%-8s params %lld  MACs %lld\n", names[i], n->params, n->macs);
    nas_graph_forward(n->g, 2, -1);
    assert_true(isfinite(n->g->nodes[n->loss].val[0]));
    nas_net_free(n);
    free(text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lstm_seq),          cmocka_unit_test(test_lstm_last),
      cmocka_unit_test(test_lstm_nobias),       cmocka_unit_test(test_gru_seq),
      cmocka_unit_test(test_gru_last),          cmocka_unit_test(test_stacked_gradcheck),
      cmocka_unit_test(test_shape_errors),      cmocka_unit_test(test_arch_layers),
      cmocka_unit_test(test_lstm_learns_frequencies), cmocka_unit_test(test_reference_archs),
  };
  return test_exit(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
