/* tests/test_dnas.c: DNAS (nas/dnas.h): gradient checks of the gate ops (including the
 * gradients into the masks and mixture weights), the supernet description against
 * nas_net_build, expected costs at one-hot distributions against the exact cost model,
 * gradients of every expected-cost term and of the supernet loss w.r.t. the architecture
 * logits against finite differences, masks selecting a width/kernel reproducing the
 * standalone network, and a tiny DNAS run on generated data (the interrupted and resumed run is
 * in test_dnas_resume.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <unistd.h>

#include "nas/strategies/dnas.h"
#include "results/store.h"
#include "tests/gradcheck.h"
#include "tests/test_dnas_util.h"
#include "tests/test_util.h"
#include "train/ops.h"

/* ---- ops --------------------------------------------------------------------------------- */

static int prm(nas_graph *g, const char *name, int nd, int d0, int d1, int d2, int d3) {
  int d[4] = {d0, d1, d2, d3};
  int id = nas_graph_param(g, name, nd, d, NULL);
  assert_true(id >= 0);
  return id;
}

static void fill_params(nas_graph *g, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_PARAM)
      for (size_t k = 0; k < nas_shape_numel(&g->nodes[i].shape); k++)
        g->nodes[i].val[k] = nas_rng_uniform(&r) * 2 - 1;
}

static void check_graph(nas_graph *g, int out, const char *what) {
  nas_err e = {0};
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  fill_params(g, 11);
  char where[256];
  double err = nas_gradcheck(g, out, 1e-2f, 0, where, sizeof where);
  if (err > 1e-3) fail_msg("%s: relative error %.3g at %s", what, err, where);
}

static void test_gate_ops_gradcheck(void **state) {
  (void)state;
  nas_err e = {0};
  /* channel mask on an activation [2,3,3,4], mask [4]; both receive gradients */
  nas_graph *g = nas_graph_new(1, 1);
  int in[2] = {prm(g, "x", 4, 2, 3, 3, 4), prm(g, "m", 1, 4, 0, 0, 0)};
  nas_op_params p = {.kw = 1};
  int out = nas_graph_apply(g, NAS_OP_MASK_MUL, in, 2, &p, "y", &e);
  assert_true(out >= 0);
  check_graph(g, out, "mask_mul (channels)");
  nas_graph_free(g);
  /* kernel mask on conv weights [3,5,5,2] (inner = Cin 2), mask [25] */
  g = nas_graph_new(1, 1);
  in[0] = prm(g, "w", 4, 3, 5, 5, 2), in[1] = prm(g, "m", 1, 25, 0, 0, 0);
  p.kw = 2;
  out = nas_graph_apply(g, NAS_OP_MASK_MUL, in, 2, &p, "y", &e);
  assert_true(out >= 0);
  check_graph(g, out, "mask_mul (kernel)");
  nas_graph_free(g);
  /* a mask that does not tile is refused */
  g = nas_graph_new(1, 1);
  in[0] = prm(g, "x", 2, 3, 5, 0, 0), in[1] = prm(g, "m", 1, 4, 0, 0, 0);
  assert_true(nas_graph_apply(g, NAS_OP_MASK_MUL, in, 2, &p, "y", &e) < 0);
  assert_non_null(strstr(e.msg, "mask_mul"));
  nas_graph_free(g);
  /* mixture of three inputs with weights [3] */
  g = nas_graph_new(1, 1);
  int mi[4] = {prm(g, "w", 1, 3, 0, 0, 0), prm(g, "a", 2, 2, 6, 0, 0), prm(g, "b", 2, 2, 6, 0, 0),
               prm(g, "c", 2, 2, 6, 0, 0)};
  out = nas_graph_apply(g, NAS_OP_MIX, mi, 4, NULL, "y", &e);
  assert_true(out >= 0);
  check_graph(g, out, "mix");
  nas_graph_free(g);
  /* channel padding (wider) and truncation (narrower) */
  for (int v = 0; v < 2; v++) {
    g = nas_graph_new(1, 1);
    int x = prm(g, "x", 4, 2, 2, 2, 3);
    nas_op_params cp = {.kw = v ? 2 : 5};
    out = nas_graph_apply(g, NAS_OP_CHANPAD, &x, 1, &cp, "y", &e);
    assert_true(out >= 0);
    assert_int_equal(g->nodes[out].shape.d[3], cp.kw);
    check_graph(g, out, v ? "chanpad (truncate)" : "chanpad (pad)");
    nas_graph_free(g);
  }
}

/* ---- supernet description ---------------------------------------------------------------- */

static void check_resolve(const char *spec, int draws) {
  nas_supernet *sn = NULL;
  nas_err e = {0};
  if (nas_supernet_load(spec, &sn, &e) != NAS_OK) fail_msg("%s: %s", spec, e.msg);
  nas_rng r;
  nas_rng_seed(&r, 3);
  int *d = calloc((size_t)sn->n_dec + 1, sizeof(int));
  nas_sn_layer *L = calloc((size_t)sn->n_slots, sizeof *L);
  for (int it = 0; it < draws; it++) {
    nas_space_sample(sn->space, &r, d);
    char *arch = NULL;
    nas_net *net = NULL;
    assert_int_equal(nas_space_materialize(sn->space, d, &arch, &e), NAS_OK);
    if (nas_net_build(arch, "t", 1, 1, &net, &e) != NAS_OK) fail_msg("%s", e.msg);
    assert_int_equal(nas_sn_resolve(sn, d, L, &e), NAS_OK);
    int li = 0;
    for (int s = 0; s < sn->n_slots; s++) {
      if (!L[s].present) continue;
      assert_true(li < net->n_layers);
      assert_string_equal(net->layers[li].op, nas_sn_op_name(L[s].op));
      if (net->layers[li].out_c != L[s].out_c || net->layers[li].out_h != L[s].out_h ||
          net->layers[li].out_w != L[s].out_w)
        fail_msg("%s: slot %s: %dx%dx%d, net layer %d: %dx%dx%d", spec, sn->slots[s].path,
                 L[s].out_h, L[s].out_w, L[s].out_c, li, net->layers[li].out_h,
                 net->layers[li].out_w, net->layers[li].out_c);
      li++;
    }
    assert_int_equal(li, net->n_layers);
    nas_net_free(net);
    free(arch);
  }
  free(d), free(L);
  nas_supernet_free(sn);
}

static void test_supernet_matches_space(void **state) {
  (void)state;
  check_resolve(small_path, 20);
  check_resolve("vision-mbnet", 20);
  check_resolve("kws-dscnn", 20);
  /* a choice DNAS cannot relax is refused with its path */
  char p[300];
  snprintf(p, sizeof p, "%s/bad.json", dir);
  write_text(p, "{\"name\":\"bad\",\"input\":[8,8,1],\"classes\":2,\"layers\":[{\"op\":\"conv\","
                "\"out\":4,\"stride\":{\"choice\":[1,2]}},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}");
  nas_supernet *sn = NULL;
  nas_err e = {0};
  assert_int_equal(nas_supernet_load(p, &sn, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "layers[0].stride"));
}

/* ---- costs ------------------------------------------------------------------------------- */

typedef struct fixture {
  nas_supernet *sn;
  nas_target *t;
  nas_dnas_relax *rx;
} fixture;

static void fx_open(fixture *f, const char *spec) {
  nas_err e = {0};
  memset(f, 0, sizeof *f);
  if (nas_supernet_load(spec, &f->sn, &e) || nas_target_open("stm32f446re", NULL, &f->t, &e) ||
      nas_dnas_relax_build(f->sn, f->t, &f->rx, &e))
    fail_msg("%s: %s", spec, e.msg);
}
static void fx_close(fixture *f) {
  nas_dnas_relax_free(f->rx);
  nas_target_free(f->t);
  nas_supernet_free(f->sn);
}

/* At a one-hot distribution every expected cost is the exact model's figure. */
static void check_onehot(const char *spec) {
  fixture f;
  fx_open(&f, spec);
  nas_rng r;
  nas_rng_seed(&r, 9);
  int *d = calloc((size_t)f.sn->n_dec + 1, sizeof(int));
  double *y = calloc((size_t)f.rx->n_p, sizeof(double));
  double min_ratio = 1, sum_ratio = 0;
  int n_ratio = 0;
  for (int it = 0; it < 25; it++) {
    nas_space_sample(f.sn->space, &r, d);
    char *arch = NULL;
    nas_price *p = NULL;
    nas_err e = {0};
    assert_int_equal(nas_space_materialize(f.sn->space, d, &arch, &e), NAS_OK);
    if (nas_price_arch(arch, "t", f.t, &p, &e)) fail_msg("%s", e.msg);
    nas_dnas_onehot(f.rx, d, y);
    nas_cost E;
    nas_dnas_expected(f.rx, y, &E, NULL);
    double ex[NAS_COST_COUNT] = {(double)p->macs, (double)p->flash_bytes, (double)p->peak_sram_bytes,
                                 p->latency_ms};
    for (int m = 0; m < NAS_COST_COUNT; m++)
      if (m != NAS_COST_SRAM && fabs(E.v[m] - ex[m]) > 1e-6 * fmax(1, fabs(ex[m])))
        fail_msg("%s: %s: cost %d: expected %.6f, exact %.6f", spec, arch, m, E.v[m], ex[m]);
    /* SRAM: the relaxation is the largest operator working set, a lower bound of the
       planner's arena (which must hold it); the arena adds placement fragmentation */
    if (E.v[NAS_COST_SRAM] > ex[NAS_COST_SRAM] + 1e-6)
      fail_msg("%s: %s: relaxed SRAM %.0f above the planner's %.0f", spec, arch,
               E.v[NAS_COST_SRAM], ex[NAS_COST_SRAM]);
    double ratio = E.v[NAS_COST_SRAM] / ex[NAS_COST_SRAM];
    if (ratio < min_ratio) min_ratio = ratio;
    sum_ratio += ratio, n_ratio++;
    nas_price_free(p);
    free(arch);
  }
  print_message("%s: relaxed/planner SRAM over 25 archs: mean %.3f, min %.3f\n", spec,
                sum_ratio / n_ratio, min_ratio);
  free(d), free(y);
  fx_close(&f);
}

static void test_onehot_costs_are_exact(void **state) {
  (void)state;
  check_onehot(small_path);
  check_onehot("vision-mbnet");
  check_onehot("kws-dscnn");
}

/* d E_m / d alpha (through the softmax) against central differences, for every term. */
static void check_cost_grad(const char *spec) {
  fixture f;
  fx_open(&f, spec);
  int n = f.rx->n_p;
  double *a = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
  double *g = malloc(sizeof(double) * NAS_COST_COUNT * (size_t)n), *da = malloc(sizeof(double) * (size_t)n);
  nas_rng r;
  nas_rng_seed(&r, 5);
  for (int i = 0; i < n; i++) a[i] = (nas_rng_uniform(&r) * 2 - 1) * 1.5;
  const double T = 1.3, h = 1e-5;
  nas_dnas_probs(f.rx, a, T, NULL, y);
  nas_cost E;
  nas_dnas_expected(f.rx, y, &E, g);
  for (int m = 0; m < NAS_COST_COUNT; m++) {
    nas_dnas_chain(f.rx, y, g + (size_t)m * n, T, da);
    for (int i = 0; i < n; i++) {
      double keep = a[i], Ep, Em;
      nas_cost C;
      a[i] = keep + h, nas_dnas_probs(f.rx, a, T, NULL, y), nas_dnas_expected(f.rx, y, &C, NULL);
      Ep = C.v[m];
      a[i] = keep - h, nas_dnas_probs(f.rx, a, T, NULL, y), nas_dnas_expected(f.rx, y, &C, NULL);
      Em = C.v[m];
      a[i] = keep;
      double num = (Ep - Em) / (2 * h), scale = fmax(1e-6 * fabs(E.v[m]), 1e-9);
      if (fabs(num - da[i]) > 1e-4 * fmax(fabs(num), scale) + scale)
        fail_msg("%s: cost %d, logit %d: analytical %.9g, numerical %.9g", spec, m, i, da[i], num);
    }
  }
  free(a), free(y), free(g), free(da);
  fx_close(&f);
}

static void test_cost_gradients(void **state) {
  (void)state;
  check_cost_grad(small_path);
  check_cost_grad("vision-mbnet");
}

/* The cost loss with budgets: its gradient (penalty included) against differences. */
static void test_cost_loss_gradient(void **state) {
  (void)state;
  fixture f;
  fx_open(&f, "vision-mbnet");
  int n = f.rx->n_p;
  double *a = calloc((size_t)n, sizeof(double)), *y = malloc(sizeof(double) * (size_t)n);
  double *dy = calloc((size_t)n, sizeof(double)), *da = malloc(sizeof(double) * (size_t)n);
  nas_rng r;
  nas_rng_seed(&r, 8);
  for (int i = 0; i < n; i++) a[i] = nas_rng_uniform(&r) - 0.5;
  double w[NAS_COST_COUNT] = {1, 0.5, 2, 1}, ref[NAS_COST_COUNT], bud[NAS_COST_COUNT];
  nas_cost E;
  nas_dnas_probs(f.rx, a, 1, NULL, y);
  nas_dnas_expected(f.rx, y, &E, NULL);
  for (int m = 0; m < NAS_COST_COUNT; m++) ref[m] = E.v[m], bud[m] = 0.8 * E.v[m]; /* all over */
  nas_dnas_cost_loss(f.rx, y, w, ref, bud, 5, NULL, dy);
  nas_dnas_chain(f.rx, y, dy, 1, da);
  for (int i = 0; i < n; i++) {
    double keep = a[i];
    a[i] = keep + 1e-5, nas_dnas_probs(f.rx, a, 1, NULL, y);
    double Lp = nas_dnas_cost_loss(f.rx, y, w, ref, bud, 5, NULL, NULL);
    a[i] = keep - 1e-5, nas_dnas_probs(f.rx, a, 1, NULL, y);
    double Lm = nas_dnas_cost_loss(f.rx, y, w, ref, bud, 5, NULL, NULL);
    a[i] = keep;
    double num = (Lp - Lm) / 2e-5;
    if (fabs(num - da[i]) > 1e-4 * fmax(1, fabs(num))) fail_msg("logit %d: %.9g vs %.9g", i, da[i], num);
  }
  free(a), free(y), free(dy), free(da);
  fx_close(&f);
}

/* ---- supernet graph ---------------------------------------------------------------------- */

/* Copies the supernet's weights for decision vector d into the standalone net: channel dims
 * from 0, kernel dims centred. */
static void copy_slice(const nas_node *src, nas_node *dst, int kernel_lo, int kernel_hi) {
  int nd = dst->shape.nd, off[4] = {0}, sd[4] = {1, 1, 1, 1}, dd[4] = {1, 1, 1, 1};
  for (int i = 0; i < nd; i++) {
    sd[4 - nd + i] = src->shape.d[i], dd[4 - nd + i] = dst->shape.d[i];
    if (i >= kernel_lo && i <= kernel_hi) off[4 - nd + i] = (src->shape.d[i] - dst->shape.d[i]) / 2;
  }
  for (int a = 0; a < dd[0]; a++)
    for (int b = 0; b < dd[1]; b++)
      for (int c = 0; c < dd[2]; c++)
        for (int x = 0; x < dd[3]; x++)
          dst->val[((a * dd[1] + b) * dd[2] + c) * dd[3] + x] =
              src->val[(((a + off[0]) * sd[1] + b + off[1]) * sd[2] + c + off[2]) * sd[3] + x + off[3]];
}

static void test_masks_reproduce_standalone(void **state) {
  (void)state;
  fixture f;
  fx_open(&f, small_path);
  nas_err e = {0};
  nas_dnas_net *dn = NULL;
  assert_int_equal(nas_dnas_net_build(f.rx, 4, 7, &dn, &e), NAS_OK);
  nas_graph *sg = dn->net->g;
  nas_rng r;
  nas_rng_seed(&r, 21);
  /* non-trivial BN statistics (eval mode uses them) */
  for (int i = 0; i < sg->n; i++) {
    nas_node *nd = &sg->nodes[i];
    const char *t = strrchr(nd->name, '.');
    if (t && (!strcmp(t, ".mean") || !strcmp(t, ".beta")))
      for (size_t k = 0; k < nas_shape_numel(&nd->shape); k++) nd->val[k] = nas_rng_uniform(&r) - 0.5f;
    if (t && !strcmp(t, ".var"))
      for (size_t k = 0; k < nas_shape_numel(&nd->shape); k++) nd->val[k] = 0.5f + nas_rng_uniform(&r);
  }
  float *x = malloc(4 * 100 * sizeof(float));
  for (int i = 0; i < 400; i++) x[i] = nas_rng_normal(&r);
  int *d = calloc((size_t)f.sn->n_dec, sizeof(int));
  double *y = malloc(sizeof(double) * (size_t)f.rx->n_p);
  nas_sn_layer *L = calloc((size_t)f.sn->n_slots, sizeof *L);
  int total = 1;
  for (int i = 0; i < f.sn->n_dec; i++) total *= f.sn->dec[i].card;
  for (int code = 0; code < total; code += 31) { /* a spread of the space's vectors */
    int rem = code;
    for (int i = 0; i < f.sn->n_dec; i++) d[i] = rem % f.sn->dec[i].card, rem /= f.sn->dec[i].card;
    char *arch = NULL;
    nas_net *net = NULL;
    assert_int_equal(nas_space_materialize(f.sn->space, d, &arch, &e), NAS_OK);
    assert_int_equal(nas_net_build(arch, "t", 4, 1, &net, &e), NAS_OK);
    assert_int_equal(nas_sn_resolve(f.sn, d, L, &e), NAS_OK);
    /* map every param/state of the standalone net onto the supernet's */
    int li = -1;
    for (int s = 0; s < f.sn->n_slots; s++) {
      if (!L[s].present) continue;
      li++;
      for (int i = 0; i < net->g->n; i++) {
        nas_node *nd = &net->g->nodes[i];
        if (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE) continue;
        char pre[16];
        snprintf(pre, sizeof pre, "l%d.", li);
        if (strncmp(nd->name, pre, strlen(pre))) continue;
        const char *rest = nd->name + strlen(pre), *dot = strchr(rest, '.');
        char part[16], sname[64];
        snprintf(part, sizeof part, "%.*s", (int)(dot - rest), rest);
        /* branch b<v> of an op mixture (v = the op decision's value), b0 otherwise */
        int opd = nas_sn_field_dec(f.sn, s, "op"), v = opd >= 0 ? d[opd] : 0;
        if (!strcmp(part, "conv") || !strcmp(part, "fc"))
          snprintf(sname, sizeof sname, "s%d.b%d%s", s, v, dot);
        else
          snprintf(sname, sizeof sname, "s%d.b%d.%s", s, v, rest);
        int sid = nas_graph_find(sg, sname);
        if (sid < 0) fail_msg("no supernet tensor %s for %s", sname, nd->name);
        int is_w = !strcmp(strrchr(nd->name, '.'), ".w");
        int klo = nd->shape.nd == 4 ? 1 : 0, khi = nd->shape.nd == 4 ? 2 : 1;
        if (!is_w || nd->shape.nd < 3) klo = 9, khi = -1;
        copy_slice(&sg->nodes[sid], nd, klo, khi);
      }
    }
    nas_dnas_onehot(f.rx, d, y);
    nas_dnas_net_set_gates(dn, y);
    sg->training = 0, net->g->training = 0;
    memcpy(sg->nodes[dn->net->input].val, x, 400 * sizeof(float));
    memcpy(net->g->nodes[net->input].val, x, 400 * sizeof(float));
    nas_graph_forward(sg, 4, dn->net->logits);
    nas_graph_forward(net->g, 4, net->logits);
    const float *a = sg->nodes[dn->net->logits].val, *b = net->g->nodes[net->logits].val;
    for (int i = 0; i < 12; i++)
      if (fabsf(a[i] - b[i]) > 1e-4f * fmaxf(1, fabsf(b[i])))
        fail_msg("%s: logit %d: supernet %.7g, standalone %.7g", arch, i, a[i], b[i]);
    nas_net_free(net);
    free(arch);
  }
  free(x), free(d), free(y), free(L);
  nas_dnas_net_free(dn);
  fx_close(&f);
}

/* d(loss)/d(alpha) through the gates, against central differences (softmax relaxation). */
static void test_supernet_alpha_gradient(void **state) {
  (void)state;
  fixture f;
  fx_open(&f, small_path);
  nas_err e = {0};
  nas_dnas_net *dn = NULL;
  assert_int_equal(nas_dnas_net_build(f.rx, 3, 7, &dn, &e), NAS_OK);
  nas_graph *g = dn->net->g;
  g->training = 0; /* eval-mode BN: a smooth function of the gates */
  nas_rng r;
  nas_rng_seed(&r, 4);
  for (int i = 0; i < g->n; i++)
    if (strrchr(g->nodes[i].name, '.') && !strcmp(strrchr(g->nodes[i].name, '.'), ".var"))
      for (size_t k = 0; k < nas_shape_numel(&g->nodes[i].shape); k++) g->nodes[i].val[k] = 0.7f;
  for (int i = 0; i < 300; i++) g->nodes[dn->net->input].val[i] = nas_rng_normal(&r);
  for (int i = 0; i < 3; i++) g->nodes[dn->net->labels].val[i] = (float)i;
  int n = f.rx->n_p;
  double *a = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
  double *dy = calloc((size_t)n, sizeof(double)), *da = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) a[i] = nas_rng_uniform(&r) - 0.5;
  const double T = 0.9;
  nas_dnas_probs(f.rx, a, T, NULL, y);
  nas_dnas_net_set_gates(dn, y);
  nas_graph_forward(g, 3, dn->net->loss);
  nas_graph_backward(g, dn->net->loss);
  nas_dnas_net_gate_grad(dn, y, dy);
  nas_dnas_chain(f.rx, y, dy, T, da);
  for (int i = 0; i < n; i++) {
    double keep = a[i], L2[2];
    for (int s = 0; s < 2; s++) {
      a[i] = keep + (s ? -1e-3 : 1e-3);
      nas_dnas_probs(f.rx, a, T, NULL, y);
      nas_dnas_net_set_gates(dn, y);
      nas_graph_forward(g, 3, dn->net->loss);
      L2[s] = g->nodes[dn->net->loss].val[0];
    }
    a[i] = keep;
    double num = (L2[0] - L2[1]) / 2e-3;
    if (fabs(num - da[i]) > 2e-2 * fmax(fabs(num), 1e-2))
      fail_msg("logit %d (%s): analytical %.6g, numerical %.6g", i, "gate", da[i], num);
  }
  free(a), free(y), free(dy), free(da);
  nas_dnas_net_free(dn);
  fx_close(&f);
}

/* ---- a tiny run -------------------------------------------------------------------------- */

static void test_tiny_run(void **state) {
  (void)state;
  char data[300], db[300], cmd[400];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p %s", data);
  assert_int_equal(system(cmd), 0);
  test_write_bar_idx(data, "train", 300, 1);
  test_write_bar_idx(data, "t10k", 100, 2);
  char spec[320];
  snprintf(spec, sizeof spec, "idx:%s", data);
  snprintf(db, sizeof db, "%s/runs.db", dir);
  nas_dnas_cfg c;
  nas_dnas_cfg_default(&c);
  c.base.space = small_path, c.base.dataset = spec, c.base.target = "stm32f446re";
  c.base.batch = 32, c.base.epochs = 1;
  /* a flash budget a third of the way from the smallest to the largest sampled architecture */
  double lo = INFINITY, hi = 0;
  {
    fixture f;
    fx_open(&f, small_path);
    nas_rng r;
    nas_rng_seed(&r, 2);
    int d[64];
    for (int it = 0; it < 60; it++) {
      nas_space_sample(f.sn->space, &r, d);
      char *arch = NULL;
      nas_price *p = NULL;
      nas_err e0 = {0};
      assert_int_equal(nas_space_materialize(f.sn->space, d, &arch, &e0), NAS_OK);
      assert_int_equal(nas_price_arch(arch, "t", f.t, &p, &e0), NAS_OK);
      lo = fmin(lo, (double)p->flash_bytes), hi = fmax(hi, (double)p->flash_bytes);
      nas_price_free(p), free(arch);
    }
    fx_close(&f);
  }
  long long budget = (long long)(lo + (hi - lo) / 3);
  c.base.max_flash = budget;
  c.sn_epochs = 3, c.warmup = 1;
  c.w[NAS_COST_FLASH] = 1;
  c.n_sweep = 2, c.sweep[0] = 0.2, c.sweep[1] = 2;
  nas_search_summary s;
  nas_err e = {0};
  if (nas_dnas_run(db, &c, NULL, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_false(s.interrupted);
  assert_true(s.candidates >= 1);
  nas_store *st = NULL;
  assert_int_equal(nas_store_open(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, s.run_id, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, s.candidates);
  for (int i = 0; i < n; i++) {
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &row, &e), NAS_OK);
    if (strcmp(row.state, "done")) fail_msg("candidate %s: %s", row.state, row.reason ? row.reason : "");
    assert_true(row.m.flash_bytes <= (double)budget);
    assert_true(row.m.acc_int8_test >= 0 && row.m.acc_int8_test <= 1);
    /* the stored figure is the exact model's */
    nas_target *t = NULL;
    nas_price *p = NULL;
    assert_int_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_OK);
    assert_int_equal(nas_price_arch(row.arch_json, "t", t, &p, &e), NAS_OK);
    assert_true((double)p->flash_bytes == row.m.flash_bytes);
    /* weights stored as for the other strategies (nas export --db --candidate) */
    void *blob = NULL;
    size_t len = 0;
    assert_int_equal(nas_store_weights_get(st, ids[i], "float", &blob, &len, &e), NAS_OK);
    assert_true(len > 0);
    free(blob);
    assert_int_equal(nas_store_weights_get(st, ids[i], "int8", &blob, &len, &e), NAS_OK);
    assert_true(len > 0);
    free(blob);
    nas_price_free(p);
    nas_target_free(t);
    nas_store_candidate_row_free(&row);
  }
  free(ids);
  int ev = 0;
  assert_int_equal(nas_store_event_count(st, s.run_id, "dnas_epoch", &ev, &e), NAS_OK);
  /* the architecture-parameter history, one event per epoch: point 0 runs 3 epochs; point 1
     starts from point 0's shared warm-up epoch and runs the 2 architecture epochs */
  assert_int_equal(ev, 3 + 2);
  assert_int_equal(nas_store_event_count(st, s.run_id, "dnas_point", &ev, &e), NAS_OK);
  assert_int_equal(ev, 2);
  nas_run_row rr;
  memset(&rr, 0, sizeof rr);
  assert_int_equal(nas_store_run_get(st, s.run_id, &rr, &e), NAS_OK);
  assert_string_equal(rr.strategy, "dnas");
  assert_string_equal(rr.status, "done");
  nas_store_run_row_free(&rr);
  nas_store_close(st);
  /* a finished run is not resumable; a bad configuration is refused before a run exists */
  assert_int_not_equal(nas_dnas_resume(db, s.run_id, NULL, &s, &e), NAS_OK);
  c.warmup = 3;
  assert_int_equal(nas_dnas_run(db, &c, NULL, &s, &e), NAS_EUSAGE);
  c.warmup = 1, c.arch_every = 0;
  assert_int_equal(nas_dnas_run(db, &c, NULL, &s, &e), NAS_EUSAGE);
  /* --supernet-limit 64 --arch-every 2: the supernet's epochs see 64 training samples (the
     warm-up epoch's cumulative "samples" is 64), and an architecture epoch of 2 weight steps
     takes one architecture step on one validation batch (1..32 samples more) */
  c.sn_limit = 64, c.arch_every = 2, c.sn_epochs = 2, c.n_sweep = 0;
  if (nas_dnas_run(db, &c, NULL, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  sqlite3 *q = NULL;
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(q, "SELECT json_extract(payload, '$.samples') FROM events "
                                         "WHERE run_id = ? AND kind = 'dnas_epoch' ORDER BY id",
                                      -1, &stmt, NULL), SQLITE_OK);
  sqlite3_bind_int64(stmt, 1, s.run_id);
  long long smp[2] = {-1, -1};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    smp[k] = sqlite3_column_int64(stmt, 0);
  }
  assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
  sqlite3_finalize(stmt);
  sqlite3_close(q);
  assert_int_equal(smp[0], 64);
  assert_true(smp[1] - smp[0] - 64 >= 1 && smp[1] - smp[0] - 64 <= 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gate_ops_gradcheck),
      cmocka_unit_test(test_supernet_matches_space),
      cmocka_unit_test(test_onehot_costs_are_exact),
      cmocka_unit_test(test_cost_gradients),
      cmocka_unit_test(test_cost_loss_gradient),
      cmocka_unit_test(test_masks_reproduce_standalone),
      cmocka_unit_test(test_supernet_alpha_gradient),
      cmocka_unit_test(test_tiny_run),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
