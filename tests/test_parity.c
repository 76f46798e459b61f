/* tests/test_parity.c: forward and backward of the main ops against PyTorch.
 *
 * Reads tests/fixtures/parity.txt (written by tests/fixtures/make_parity.py; the format is
 * documented there: "<case>.<tensor> <nd> <dims...> <values...>" per line, C layouts). For
 * every case it builds a small graph, feeds x through a PARAM leaf holding the whole batch
 * (so x receives a gradient), runs the forward pass, compares y, seeds the output gradient
 * with dy, runs the backward pass and compares every gradient (and, for batchnorm, the
 * running statistics and an eval-mode pass). One cmocka test per case.
 *
 * Tolerance: max |got - ref| <= 1e-4 * max(1, max |ref|) per tensor. The fixture is found at
 * $NAS_SOURCE_DIR/tests/fixtures/parity.txt (ctest sets NAS_SOURCE_DIR), falling back to the
 * source directory compiled into the library. NAS_PARITY_VERBOSE=1 prints every tensor's max
 * error. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train/graph.h"
#include "train/ops.h"
#include "tests/test_util.h"

#define REL_TOL 1e-4

/* ------------------------------------------------------------------ fixture file */

typedef struct record {
  char key[96];      /* "<case>.<tensor>" */
  nas_shape shape;   /* dims as stored */
  size_t n;          /* number of values */
  float *v;          /* values */
} record;

typedef struct fixture {
  record *r;         /* records in file order */
  int n, cap;        /* used / allocated */
  char err[8192];    /* load error, empty when loaded */
} fixture;

static fixture fx;   /* loaded once by the group setup */

static void fixture_free(fixture *f) {
  for (int i = 0; i < f->n; i++) free(f->r[i].v);
  free(f->r);
  f->r = NULL;
  f->n = f->cap = 0;
}

/* Parses one record line; returns 0 on success. */
static int parse_line(char *line, record *rec, char *err, size_t errn) {
  char *save = NULL;
  char *tok = strtok_r(line, " \t\r\n", &save);
  if (!tok) return 1;
  snprintf(rec->key, sizeof rec->key, "%s", tok);
  tok = strtok_r(NULL, " \t\r\n", &save);
  int nd = tok ? atoi(tok) : 0;
  if (nd < 1 || nd > NAS_MAX_DIMS) {
    snprintf(err, errn, "%s: bad number of dimensions", rec->key);
    return 1;
  }
  rec->shape.nd = nd;
  rec->n = 1;
  for (int i = 0; i < nd; i++) {
    tok = strtok_r(NULL, " \t\r\n", &save);
    int d = tok ? atoi(tok) : 0;
    if (d < 1) {
      snprintf(err, errn, "%s: bad dimension %d", rec->key, i);
      return 1;
    }
    rec->shape.d[i] = d;
    rec->n *= (size_t)d;
  }
  rec->v = malloc(rec->n * sizeof *rec->v);
  if (!rec->v) {
    snprintf(err, errn, "%s: out of memory", rec->key);
    return 1;
  }
  for (size_t i = 0; i < rec->n; i++) {
    tok = strtok_r(NULL, " \t\r\n", &save);
    char *end = NULL;
    double v = tok ? strtod(tok, &end) : 0;
    if (!tok || end == tok || *end) {
      snprintf(err, errn, "%s: expected %zu values, value %zu is missing or malformed",
               rec->key, rec->n, i);
      free(rec->v);
      rec->v = NULL;
      return 1;
    }
    rec->v[i] = (float)v;
  }
  if (strtok_r(NULL, " \t\r\n", &save)) {
    snprintf(err, errn, "%s: more values than the %zu its dimensions give", rec->key, rec->n);
    free(rec->v);
    rec->v = NULL;
    return 1;
  }
  return 0;
}

static int fixture_load(fixture *f, const char *path) {
  FILE *fp = fopen(path, "r");
  if (!fp) {
    snprintf(f->err, sizeof f->err, "%s: cannot open (run tests/fixtures/make_parity.py)", path);
    return 1;
  }
  size_t cap = 1 << 16;
  char *line = malloc(cap);
  int rc = 0;
  while (line && !rc) {
    /* read a whole line of any length */
    size_t len = 0;
    int got = 0;
    for (;;) {
      if (!fgets(line + len, (int)(cap - len), fp)) break;
      got = 1;
      len += strlen(line + len);
      if (len > 0 && line[len - 1] == '\n') break;
      char *bigger = realloc(line, cap * 2);
      if (!bigger) {
        rc = 1;
        snprintf(f->err, sizeof f->err, "%s: out of memory", path);
        break;
      }
      line = bigger;
      cap *= 2;
    }
    if (!got || rc) break;
    if (line[0] == '#' || line[0] == '\n') continue;
    if (f->n == f->cap) {
      int nc = f->cap ? f->cap * 2 : 64;
      record *p = realloc(f->r, (size_t)nc * sizeof *p);
      if (!p) {
        rc = 1;
        snprintf(f->err, sizeof f->err, "%s: out of memory", path);
        break;
      }
      f->r = p;
      f->cap = nc;
    }
    char msg[200];
    if (parse_line(line, &f->r[f->n], msg, sizeof msg)) {
      snprintf(f->err, sizeof f->err, "%s: %s", path, msg);
      rc = 1;
      break;
    }
    f->n++;
  }
  if (!line) {
    snprintf(f->err, sizeof f->err, "%s: out of memory", path);
    rc = 1;
  }
  free(line);
  fclose(fp);
  return rc;
}

/* The record "<c>.<t>", or NULL. */
static const record *find_rec(const char *c, const char *t) {
  char key[96];
  snprintf(key, sizeof key, "%s.%s", c, t);
  for (int i = 0; i < fx.n; i++)
    if (strcmp(fx.r[i].key, key) == 0) return &fx.r[i];
  return NULL;
}

/* The record "<c>.<t>"; fails the test when it is absent. */
static const record *need_rec(const char *c, const char *t) {
  const record *r = find_rec(c, t);
  if (!r) fail_msg("%s.%s: missing from parity.txt (regenerate it)", c, t);
  return r;
}

/* ------------------------------------------------------------------ graph helpers */

/* A leaf of the given kind shaped like record "<c>.<t>" (full shape, not batched). */
static int leaf(nas_graph *g, int kind, const char *c, const char *t) {
  const record *r = need_rec(c, t);
  nas_err e = {0};
  char name[64];
  snprintf(name, sizeof name, "%s.%s", c, t);
  int id = kind == NAS_NODE_STATE ? nas_graph_state(g, name, r->shape.nd, r->shape.d, &e)
                                  : nas_graph_param(g, name, r->shape.nd, r->shape.d, &e);
  if (id < 0) fail_msg("%s: cannot create leaf: %s", name, e.msg);
  return id;
}

/* Copies record "<c>.<t>" into node id's value. */
static void feed(nas_graph *g, int id, const char *c, const char *t) {
  const record *r = need_rec(c, t);
  nas_node *nd = &g->nodes[id];
  size_t n = nas_node_numel(g, nd);
  if (n != r->n) fail_msg("%s.%s: node holds %zu values, record %zu", c, t, n, r->n);
  memcpy(nd->val, r->v, n * sizeof(float));
}

static int apply(nas_graph *g, int op, const int *in, int n_in, const nas_op_params *p,
                 const char *name) {
  nas_err e = {0};
  int id = nas_graph_apply(g, op, in, n_in, p, name, &e);
  if (id < 0) fail_msg("%s: nas_graph_apply(%s) failed: %s", name, nas_op_name(op), e.msg);
  return id;
}

static void alloc_graph(nas_graph *g) {
  nas_err e = {0};
  if (nas_graph_alloc(g, &e) != NAS_OK) fail_msg("nas_graph_alloc: %s", e.msg);
}

/* Compares got[0..n) with record "<c>.<t>". Prints a line naming the case, tensor, the max
 * error and where it occurs; returns 1 when it is over tolerance (or shapes differ). With
 * shape != NULL the node's shape must equal the record's dims too. */
static int compare(const char *c, const char *t, const float *got, size_t n,
                   const nas_shape *shape) {
  const record *r = find_rec(c, t);
  if (!r) {
    print_error("%s.%s: missing from parity.txt\n", c, t);
    return 1;
  }
  if (!got) {
    print_error("%s.%s: the engine holds no tensor (gradient not allocated?)\n", c, t);
    return 1;
  }
  if (n != r->n) {
    print_error("%s.%s: engine has %zu values, reference %zu\n", c, t, n, r->n);
    return 1;
  }
  if (shape) {
    int same = shape->nd == r->shape.nd;
    for (int i = 0; same && i < shape->nd; i++) same = shape->d[i] == r->shape.d[i];
    if (!same) {
      char a[64], b[64];
      print_error("%s.%s: engine shape %s, reference %s\n", c, t,
                  nas_shape_str(shape, a, sizeof a), nas_shape_str(&r->shape, b, sizeof b));
      return 1;
    }
  }
  double maxref = 0, maxerr = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    double ref = r->v[i], err = fabs((double)got[i] - ref);
    if (fabs(ref) > maxref) maxref = fabs(ref);
    if (!(err <= maxerr)) { /* also catches NaN */
      maxerr = isnan(err) ? INFINITY : err;
      at = i;
    }
  }
  double tol = REL_TOL * (maxref > 1 ? maxref : 1);
  const char *verbose = getenv("NAS_PARITY_VERBOSE");
  if (verbose && *verbose && strcmp(verbose, "0") != 0)
    print_message("%s.%s: max abs error %.3g (tol %.3g)\n", c, t, maxerr, tol);
  if (maxerr > tol) {
    print_error("%s.%s: max abs error %.3g > tol %.3g at index %zu (got %.9g, ref %.9g)\n", c,
                t, maxerr, tol, at, (double)got[at], (double)r->v[at]);
    return 1;
  }
  return 0;
}

/* Compares a node's value (y) or gradient with a record. */
static int cmp_val(nas_graph *g, int id, const char *c, const char *t, int check_shape) {
  nas_node *nd = &g->nodes[id];
  return compare(c, t, nd->val, nas_node_numel(g, nd), check_shape ? &nd->shape : NULL);
}
static int cmp_grad(nas_graph *g, int id, const char *c, const char *t) {
  nas_node *nd = &g->nodes[id];
  return compare(c, t, nd->grad, nas_node_numel(g, nd), NULL);
}

/* Seeds the gradient of node `out` with record "<c>.dy" and runs the backward pass. */
static void backward_dy(nas_graph *g, int out, const char *c) {
  const record *dy = need_rec(c, "dy");
  nas_node *nd = &g->nodes[out];
  if (!nd->grad) fail_msg("%s: output node has no gradient buffer", c);
  if (nas_node_numel(g, nd) != dy->n)
    fail_msg("%s.dy: %zu values, output has %zu", c, dy->n, nas_node_numel(g, nd));
  nas_graph_backward_seed(g, out, dy->v);
}

/* ------------------------------------------------------------------ cases */

enum case_kind {
  CASE_LAYER,   /* x [, w [, b]] -> op -> y; gradients dx [, dw [, db]] */
  CASE_BN,      /* batchnorm, training step then eval */
  CASE_XENT,    /* softmax cross-entropy with labels */
  CASE_DSCONV   /* dw3x3 + bn + relu + pw + bn + relu */
};

typedef struct pcase {
  int kind;         /* enum case_kind */
  int op;           /* enum nas_op (CASE_LAYER) */
  int k[2], s[2];   /* window (pools) and strides */
  int padding;      /* enum nas_padding */
} pcase;

static nas_op_params params_of(const pcase *pc) {
  nas_op_params p;
  memset(&p, 0, sizeof p);
  p.kh = pc->k[0];
  p.kw = pc->k[1];
  p.sh = pc->s[0];
  p.sw = pc->s[1];
  p.padding = pc->padding;
  return p;
}

static int batch_of(const char *c) { return need_rec(c, "x")->shape.d[0]; }

static void run_layer(const char *c, const pcase *pc) {
  int N = batch_of(c);
  nas_graph *g = nas_graph_new(N, 1);
  assert_non_null(g);
  int in[3], n_in = 0;
  in[n_in++] = leaf(g, NAS_NODE_PARAM, c, "x");
  int has_w = find_rec(c, "w") != NULL, has_b = find_rec(c, "b") != NULL;
  if (has_w) in[n_in++] = leaf(g, NAS_NODE_PARAM, c, "w");
  if (has_b) in[n_in++] = leaf(g, NAS_NODE_PARAM, c, "b");
  nas_op_params p = params_of(pc);
  int y = apply(g, pc->op, in, n_in, &p, c);
  alloc_graph(g);
  feed(g, in[0], c, "x");
  if (has_w) feed(g, in[1], c, "w");
  if (has_b) feed(g, in[2], c, "b");
  g->training = 1;
  nas_graph_forward(g, N, -1);
  int bad = cmp_val(g, y, c, "y", 1);
  backward_dy(g, y, c);
  bad += cmp_grad(g, in[0], c, "dx");
  if (has_w) bad += cmp_grad(g, in[1], c, "dw");
  if (has_b) bad += cmp_grad(g, in[2], c, "db");
  nas_graph_free(g);
  if (bad) fail_msg("%s: %d tensor(s) differ from PyTorch", c, bad);
}

static void run_bn(const char *c) {
  int N = batch_of(c);
  nas_graph *g = nas_graph_new(N, 1);
  assert_non_null(g);
  int in[5];
  in[0] = leaf(g, NAS_NODE_PARAM, c, "x");
  in[1] = leaf(g, NAS_NODE_PARAM, c, "gamma");
  in[2] = leaf(g, NAS_NODE_PARAM, c, "beta");
  in[3] = leaf(g, NAS_NODE_STATE, c, "rmean");
  in[4] = leaf(g, NAS_NODE_STATE, c, "rvar");
  nas_op_params p;
  memset(&p, 0, sizeof p);
  p.eps = 1e-5f;
  p.momentum = 0.1f;
  int y = apply(g, NAS_OP_BATCHNORM, in, 5, &p, c);
  alloc_graph(g);
  static const char *const names[5] = {"x", "gamma", "beta", "rmean", "rvar"};
  for (int i = 0; i < 5; i++) feed(g, in[i], c, names[i]);
  g->training = 1;
  nas_graph_forward(g, N, -1);
  int bad = cmp_val(g, y, c, "y", 1);
  bad += cmp_val(g, in[3], c, "rmean_out", 1);
  bad += cmp_val(g, in[4], c, "rvar_out", 1);
  backward_dy(g, y, c);
  bad += cmp_grad(g, in[0], c, "dx");
  bad += cmp_grad(g, in[1], c, "dgamma");
  bad += cmp_grad(g, in[2], c, "dbeta");
  g->training = 0;
  nas_graph_forward(g, N, -1);
  bad += cmp_val(g, y, c, "y_eval", 1);
  /* eval mode must leave the running statistics alone */
  bad += cmp_val(g, in[3], c, "rmean_out", 1);
  bad += cmp_val(g, in[4], c, "rvar_out", 1);
  nas_graph_free(g);
  if (bad) fail_msg("%s: %d tensor(s) differ from PyTorch", c, bad);
}

static void run_xent(const char *c) {
  int N = batch_of(c);
  nas_graph *g = nas_graph_new(N, 1);
  assert_non_null(g);
  int in[2];
  in[0] = leaf(g, NAS_NODE_PARAM, c, "x");
  in[1] = leaf(g, NAS_NODE_STATE, c, "labels");
  int y = apply(g, NAS_OP_SOFTMAX_XENT, in, 2, NULL, c);
  alloc_graph(g);
  feed(g, in[0], c, "x");
  feed(g, in[1], c, "labels");
  g->training = 1;
  nas_graph_forward(g, N, -1);
  int bad = cmp_val(g, y, c, "y", 1);
  backward_dy(g, y, c);
  bad += cmp_grad(g, in[0], c, "dx");
  nas_graph_free(g);
  if (bad) fail_msg("%s: %d tensor(s) differ from PyTorch", c, bad);
}

/* BN on x with params <c>.g<i>, b<i>, m<i>, v<i>; returns the BN node, fills ids[0..4). */
static int bn_block(nas_graph *g, const char *c, int x, int i, int ids[4], const char *name) {
  char t[8];
  snprintf(t, sizeof t, "g%d", i);
  ids[0] = leaf(g, NAS_NODE_PARAM, c, t);
  snprintf(t, sizeof t, "b%d", i);
  ids[1] = leaf(g, NAS_NODE_PARAM, c, t);
  snprintf(t, sizeof t, "m%d", i);
  ids[2] = leaf(g, NAS_NODE_STATE, c, t);
  snprintf(t, sizeof t, "v%d", i);
  ids[3] = leaf(g, NAS_NODE_STATE, c, t);
  nas_op_params p;
  memset(&p, 0, sizeof p);
  p.eps = 1e-5f;
  p.momentum = 0.1f;
  int in[5] = {x, ids[0], ids[1], ids[2], ids[3]};
  return apply(g, NAS_OP_BATCHNORM, in, 5, &p, name);
}

static void run_dsconv(const char *c) {
  int N = batch_of(c);
  nas_graph *g = nas_graph_new(N, 1);
  assert_non_null(g);
  int x = leaf(g, NAS_NODE_PARAM, c, "x");
  int w1 = leaf(g, NAS_NODE_PARAM, c, "w1");
  nas_op_params p;
  memset(&p, 0, sizeof p);
  p.kh = p.kw = 3;
  p.sh = p.sw = 1;
  p.padding = NAS_PAD_SAME;
  int in[2] = {x, w1};
  int t = apply(g, NAS_OP_DWCONV2D, in, 2, &p, "dsconv.dw");
  int bn1[4], bn2[4];
  t = bn_block(g, c, t, 1, bn1, "dsconv.bn1");
  t = apply(g, NAS_OP_RELU, &t, 1, NULL, "dsconv.relu1");
  int w2 = leaf(g, NAS_NODE_PARAM, c, "w2");
  memset(&p, 0, sizeof p);
  p.kh = p.kw = 1;
  p.sh = p.sw = 1;
  p.padding = NAS_PAD_VALID;
  int in2[2] = {t, w2};
  t = apply(g, NAS_OP_CONV2D, in2, 2, &p, "dsconv.pw");
  t = bn_block(g, c, t, 2, bn2, "dsconv.bn2");
  int y = apply(g, NAS_OP_RELU, &t, 1, NULL, "dsconv.relu2");
  alloc_graph(g);
  feed(g, x, c, "x");
  feed(g, w1, c, "w1");
  feed(g, w2, c, "w2");
  static const char *const n1[4] = {"g1", "b1", "m1", "v1"}, *const n2[4] = {"g2", "b2", "m2", "v2"};
  for (int i = 0; i < 4; i++) {
    feed(g, bn1[i], c, n1[i]);
    feed(g, bn2[i], c, n2[i]);
  }
  g->training = 1;
  nas_graph_forward(g, N, -1);
  int bad = cmp_val(g, y, c, "y", 1);
  bad += cmp_val(g, bn1[2], c, "m1_out", 1);
  bad += cmp_val(g, bn1[3], c, "v1_out", 1);
  bad += cmp_val(g, bn2[2], c, "m2_out", 1);
  bad += cmp_val(g, bn2[3], c, "v2_out", 1);
  backward_dy(g, y, c);
  bad += cmp_grad(g, x, c, "dx");
  bad += cmp_grad(g, w1, c, "dw1");
  bad += cmp_grad(g, bn1[0], c, "dg1");
  bad += cmp_grad(g, bn1[1], c, "db1");
  bad += cmp_grad(g, w2, c, "dw2");
  bad += cmp_grad(g, bn2[0], c, "dg2");
  bad += cmp_grad(g, bn2[1], c, "db2");
  nas_graph_free(g);
  if (bad) fail_msg("%s: %d tensor(s) differ from PyTorch", c, bad);
}

#define LAYER(nm, op_, kh, kw, sh, sw, pad) \
  {nm, {CASE_LAYER, op_, {kh, kw}, {sh, sw}, pad}}

typedef struct named_case {
  const char *name;  /* fixture case name = test name */
  pcase pc;          /* how to build it */
} named_case;

static const named_case cases[] = {
    LAYER("conv_same_s1", NAS_OP_CONV2D, 3, 3, 1, 1, NAS_PAD_SAME),
    LAYER("conv_same_s2", NAS_OP_CONV2D, 3, 3, 2, 2, NAS_PAD_SAME),
    LAYER("conv_valid_s21", NAS_OP_CONV2D, 4, 3, 2, 1, NAS_PAD_VALID),
    LAYER("conv_1x1", NAS_OP_CONV2D, 1, 1, 1, 1, NAS_PAD_VALID),
    LAYER("conv_same_s2_nobias", NAS_OP_CONV2D, 3, 3, 2, 2, NAS_PAD_SAME),
    LAYER("dw_same_s1", NAS_OP_DWCONV2D, 3, 3, 1, 1, NAS_PAD_SAME),
    LAYER("dw_same_s2", NAS_OP_DWCONV2D, 3, 3, 2, 2, NAS_PAD_SAME),
    LAYER("dw_valid_k32", NAS_OP_DWCONV2D, 3, 2, 1, 1, NAS_PAD_VALID),
    LAYER("dense", NAS_OP_DENSE, 0, 0, 0, 0, NAS_PAD_VALID),
    {"bn", {CASE_BN, NAS_OP_BATCHNORM, {0, 0}, {0, 0}, 0}},
    LAYER("maxpool_2_s2", NAS_OP_MAXPOOL, 2, 2, 2, 2, NAS_PAD_VALID),
    LAYER("maxpool_3_s2_same", NAS_OP_MAXPOOL, 3, 3, 2, 2, NAS_PAD_SAME),
    LAYER("avgpool_2_s2", NAS_OP_AVGPOOL, 2, 2, 2, 2, NAS_PAD_VALID),
    LAYER("avgpool_3_s2_same", NAS_OP_AVGPOOL, 3, 3, 2, 2, NAS_PAD_SAME),
    LAYER("gap", NAS_OP_GAP, 0, 0, 0, 0, NAS_PAD_VALID),
    LAYER("relu", NAS_OP_RELU, 0, 0, 0, 0, NAS_PAD_VALID),
    LAYER("relu6", NAS_OP_RELU6, 0, 0, 0, 0, NAS_PAD_VALID),
    {"xent", {CASE_XENT, NAS_OP_SOFTMAX_XENT, {0, 0}, {0, 0}, 0}},
    {"dsconv", {CASE_DSCONV, 0, {0, 0}, {0, 0}, 0}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* The cmocka test name is the fixture case name; the named_case rides in the state. */
static void run_case(void **state) {
  const named_case *nc = *state;
  if (fx.err[0]) fail_msg("%s", fx.err);
  switch (nc->pc.kind) {
    case CASE_LAYER: run_layer(nc->name, &nc->pc); break;
    case CASE_BN: run_bn(nc->name); break;
    case CASE_XENT: run_xent(nc->name); break;
    case CASE_DSCONV: run_dsconv(nc->name); break;
    default: fail_msg("%s: unknown case kind", nc->name);
  }
}

/* Every case of the fixture file must have a test (a case added to make_parity.py without a
 * C counterpart would otherwise go unchecked). */
static void all_fixture_cases_covered(void **state) {
  (void)state;
  if (fx.err[0]) fail_msg("%s", fx.err);
  int missing = 0;
  for (int i = 0; i < fx.n; i++) {
    const char *dot = strchr(fx.r[i].key, '.');
    size_t len = dot ? (size_t)(dot - fx.r[i].key) : strlen(fx.r[i].key);
    int found = 0;
    for (int k = 0; k < N_CASES && !found; k++)
      found = strlen(cases[k].name) == len && strncmp(cases[k].name, fx.r[i].key, len) == 0;
    if (!found) {
      print_error("%s: no test case in test_parity.c\n", fx.r[i].key);
      missing++;
    }
  }
  assert_int_equal(missing, 0);
}

static int group_setup(void **state) {
  (void)state;
  const char *dir = getenv("NAS_SOURCE_DIR");
  if (!dir || !*dir) dir = NAS_SOURCE_DIR;
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/fixtures/parity.txt", dir);
  fx.err[0] = 0;
  if (fixture_load(&fx, path) == 0 && fx.n == 0)
    snprintf(fx.err, sizeof fx.err, "%s: no records", path);
  return 0; /* a load error fails every test with its message */
}

static int group_teardown(void **state) {
  (void)state;
  fixture_free(&fx);
  return 0;
}

int main(void) {
  struct CMUnitTest tests[N_CASES + 1];
  memset(tests, 0, sizeof tests);
  for (int i = 0; i < N_CASES; i++) {
    tests[i].name = cases[i].name;
    tests[i].test_func = run_case;
    tests[i].initial_state = (void *)&cases[i];
  }
  tests[N_CASES].name = "all_fixture_cases_covered";
  tests[N_CASES].test_func = all_fixture_cases_covered;
  return test_exit(_cmocka_run_group_tests("parity", tests, N_CASES + 1, group_setup, group_teardown));
}
