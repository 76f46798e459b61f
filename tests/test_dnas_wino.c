/* tests/test_dnas_wino.c: the convolution algorithm as a search decision (issue 17 item 5): a
 * space with "algo" and "flex" choices parses, samples and materialises to architectures that
 * build; the built-in vision-wino space; the supernet reads algo/flex and refuses a Winograd
 * algorithm on a slot that is not a 3x3 stride-1 conv and flex without one; DNAS's relaxed
 * costs at one-hot distributions are the full price's (latency and flash) under nas-c and
 * tflm-cmsis-nn; the relaxed latency of a slot is the expected latency over its algorithm's
 * probabilities, with one latency per algorithm under nas-c (its Winograd kernels) and the
 * direct convolution's for every algorithm under TFLM (no Winograd kernel). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "latency/cost.h"
#include "latency/cost_runtime.h"
#include "nas/strategies/dnas.h"
#include "search_spaces/space.h"
#include "search_spaces/supernet.h"
#include "tests/test_util.h"
#include "train/net.h"

static const char *SPACE =
    "{\"name\":\"wino-t\",\"input\":[12,12,4],\"classes\":3,\"layers\":["
    "{\"op\":\"conv\",\"out\":{\"choice\":[8,16]},\"k\":3,\"algo\":{\"choice\":[\"im2row\",\"wino2\",\"wino4\"]}},"
    "{\"op\":\"conv\",\"out\":16,\"k\":3,\"algo\":\"wino2\",\"flex\":{\"choice\":[false,true]}},"
    "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";

static void test_grammar(void **state) {
  (void)state;
  nas_space *s = NULL;
  nas_err e = {0};
  if (nas_space_parse(SPACE, "t", &s, &e)) fail_msg("%s", e.msg);
  assert_int_equal(nas_space_n_decisions(s), 3);
  assert_string_equal(nas_space_decision_path(s, 1), "layers[0].algo");
  assert_int_equal(nas_space_card(s, 1), 3);
  assert_string_equal(nas_space_decision_path(s, 2), "layers[1].flex");
  int seen[3][2] = {{0}};
  for (int a = 0; a < 3; a++)
    for (int f = 0; f < 2; f++) {
      const int d[3] = {1, a, f};
      char *arch = NULL;
      if (nas_space_materialize(s, d, &arch, &e)) fail_msg("%s", e.msg);
      nas_net *net = NULL;
      if (nas_net_build(arch, "t", 1, 1, &net, &e)) fail_msg("%s\n%s", e.msg, arch);
      static const char *const A[3] = {"\"im2row\"", "\"wino2\"", "\"wino4\""};
      seen[a][f] = strstr(arch, A[a]) != NULL && strstr(arch, f ? "true" : "false") != NULL;
      nas_net_free(net);
      free(arch);
    }
  for (int a = 0; a < 3; a++) assert_true(seen[a][0] && seen[a][1]);
  nas_space_free(s);
}

static void test_builtin(void **state) {
  (void)state;
  nas_space *s = NULL;
  nas_err e = {0};
  if (nas_space_load_builtin("vision-wino", &s, &e)) fail_msg("%s", e.msg);
  int algos = 0;
  for (int i = 0; i < nas_space_n_decisions(s); i++) algos += strstr(nas_space_decision_path(s, i), ".algo") != NULL;
  assert_int_equal(algos, 3);
  if (nas_space_check(s, &e)) fail_msg("%s", e.msg);
  nas_space_free(s);
}

static void test_supernet_refusals(void **state) {
  (void)state;
  static const char *const BAD[3] = {
      "{\"name\":\"b\",\"input\":[8,8,2],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4,\"k\":"
      "{\"choice\":[3,5]},\"algo\":\"wino2\"},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
      "{\"name\":\"b\",\"input\":[8,8,2],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4,\"stride\":2,"
      "\"algo\":{\"choice\":[\"im2row\",\"wino4\"]}},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
      "{\"name\":\"b\",\"input\":[8,8,2],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":4,"
      "\"algo\":{\"choice\":[\"im2row\",\"wino4\"]},\"flex\":true},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}"};
  static const char *const WHY[3] = {"needs a 3x3 conv with stride 1", "needs a 3x3 conv with stride 1",
                                     "flex needs algo"};
  for (int k = 0; k < 3; k++) {
    char dir[] = "/tmp/nas_dnas_wino_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/b.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(BAD[k], f);
    fclose(f);
    nas_supernet *sn = NULL;
    nas_err e = {0};
    int rc = nas_supernet_load(path, &sn, &e);
    if (rc == NAS_OK) { /* the walk accepts it; resolving an offending vector must not */
      int *d = calloc((size_t)sn->n_dec + 1, sizeof(int));
      nas_sn_layer *L = calloc((size_t)sn->n_slots, sizeof *L);
      rc = nas_sn_resolve(sn, d, L, &e); /* the first values, then the last ones */
      for (int i = 0; i < sn->n_dec; i++) d[i] = sn->dec[i].card - 1;
      if (rc == NAS_OK) rc = nas_sn_resolve(sn, d, L, &e);
      free(d), free(L);
    }
    if (rc != NAS_EINVAL) fail_msg("%d: accepted (%d: %s)", k, rc, e.msg);
    if (!strstr(e.msg, WHY[k]) || !strstr(e.msg, "layers[0]")) fail_msg("%d: %s", k, e.msg);
    nas_supernet_free(sn);
    unlink(path), rmdir(dir);
  }
}

typedef struct fixture {
  nas_supernet *sn;
  nas_target *t;
  nas_dnas_relax *rx;
} fixture;

static void fx_open(fixture *f, const char *spec, int runtime) {
  nas_err e = {0};
  memset(f, 0, sizeof *f);
  if (nas_supernet_load(spec, &f->sn, &e) || nas_target_open("stm32f446re", NULL, &f->t, &e) ||
      nas_target_set_runtime(f->t, runtime, &e) || nas_dnas_relax_build(f->sn, f->t, &f->rx, &e))
    fail_msg("%s: %s", spec, e.msg);
}
static void fx_close(fixture *f) {
  nas_dnas_relax_free(f->rx);
  nas_target_free(f->t);
  nas_supernet_free(f->sn);
}

/* One-hot: MACs, flash and latency are the full price's. */
static void check_onehot(const char *spec, int runtime, int n) {
  fixture f;
  fx_open(&f, spec, runtime);
  nas_rng r;
  nas_rng_seed(&r, 17);
  int *d = calloc((size_t)f.sn->n_dec + 1, sizeof(int));
  double *y = calloc((size_t)f.rx->n_p, sizeof(double));
  for (int it = 0; it < n; it++) {
    nas_space_sample(f.sn->space, &r, d);
    char *arch = NULL;
    nas_price *p = NULL;
    nas_err e = {0};
    assert_int_equal(nas_space_materialize(f.sn->space, d, &arch, &e), NAS_OK);
    if (nas_price_arch(arch, "t", f.t, &p, &e)) fail_msg("%s", e.msg);
    nas_dnas_onehot(f.rx, d, y);
    nas_cost E;
    nas_dnas_expected(f.rx, y, &E, NULL);
    const double ex[NAS_COST_COUNT] = {(double)p->macs, (double)p->flash_bytes, 0, p->latency_ms};
    for (int m = 0; m < NAS_COST_COUNT; m++)
      if (m != NAS_COST_SRAM && fabs(E.v[m] - ex[m]) > 1e-6 * fmax(1, fabs(ex[m])))
        fail_msg("%s (%s): %s: cost %d: expected %.6f, exact %.6f", spec, nas_runtime_name(runtime), arch, m,
                 E.v[m], ex[m]);
    nas_price_free(p);
    free(arch);
  }
  free(d), free(y);
  fx_close(&f);
}

static void test_onehot_exact(void **state) {
  (void)state;
  check_onehot("vision-wino", NAS_RT_NAS_C, 12);
  check_onehot("vision-wino", NAS_RT_TFLM_CMSIS_NN, 12);
}

/* The latency of slot 0 at one-hot algorithm a (the other decisions at 0). */
static double slot0_latency(const fixture *f, int algo_dec, int a, double *y) {
  int *d = calloc((size_t)f->sn->n_dec + 1, sizeof(int));
  d[algo_dec] = a;
  nas_dnas_onehot(f->rx, d, y);
  nas_cost E;
  nas_dnas_expected(f->rx, y, &E, NULL);
  free(d);
  return E.v[NAS_COST_LATENCY];
}

static void test_expected_latency_per_algo(void **state) {
  (void)state;
  static const int RT[2] = {NAS_RT_NAS_C, NAS_RT_TFLM_CMSIS_NN};
  for (int r = 0; r < 2; r++) {
    fixture f;
    fx_open(&f, "vision-wino", RT[r]);
    int ad = -1;
    for (int i = 0; i < f.sn->n_dec && ad < 0; i++)
      if (!strcmp(f.sn->dec[i].path, "layers[0].algo")) ad = i;
    assert_true(ad >= 0);
    double *y = calloc((size_t)f.rx->n_p, sizeof(double));
    double lat[3];
    for (int a = 0; a < 3; a++) lat[a] = slot0_latency(&f, ad, a, y);
    if (RT[r] == NAS_RT_NAS_C) { /* one latency per algorithm */
      assert_true(fabs(lat[1] - lat[0]) > 1e-6 && fabs(lat[2] - lat[1]) > 1e-6);
    } else { /* TFLM runs the direct convolution whatever the algorithm */
      assert_float_equal(lat[1], lat[0], 1e-9), assert_float_equal(lat[2], lat[0], 1e-9);
    }
    /* a mixture: the algorithm's probabilities weigh the per-algorithm latencies */
    static const double P[3] = {0.5, 0.3, 0.2};
    int *d = calloc((size_t)f.sn->n_dec + 1, sizeof(int));
    nas_dnas_onehot(f.rx, d, y);
    for (int a = 0; a < 3; a++) y[f.rx->off[ad] + a] = P[a];
    nas_cost E;
    nas_dnas_expected(f.rx, y, &E, NULL);
    assert_float_equal(E.v[NAS_COST_LATENCY], P[0] * lat[0] + P[1] * lat[1] + P[2] * lat[2],
                       1e-9 * fabs(lat[0]));
    print_message("%s: slot 0 latency im2row %.4f, wino2 %.4f, wino4 %.4f ms\n", nas_runtime_name(RT[r]),
                  lat[0], lat[1], lat[2]);
    free(d), free(y);
    fx_close(&f);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grammar),          cmocka_unit_test(test_builtin),
      cmocka_unit_test(test_supernet_refusals), cmocka_unit_test(test_onehot_exact),
      cmocka_unit_test(test_expected_latency_per_algo),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
