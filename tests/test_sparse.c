/* Sparse int8 weights (the nas-c runtime's SPARSE operator, runtime/nasrt.h): at 0, 50, 90 and
 * 100% zero weights the sparse kernel gives the dense kernels' outputs bit for bit (host
 * kernels and the runtime in process; conv with padding, stride and channel counts that are
 * not multiples of 8, pointwise conv, per-tensor and per-channel fully connected); the
 * prepare step picks the sparse form only where it is smaller; the C export's mask and values
 * arrays hold exactly nas_g8_sparse_bytes bytes and replace the dense filter; pricing on a
 * nas-c target counts the sparse bytes, on a TFLM target the dense ones. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "deploy/lower.h"
#include "export/export_c.h"
#include "latency/cost.h"
#include "tests/test_util.h"

/* conv 3x3 same over 3 channels, conv 3x2 valid stride 2 over 12, pwconv 12 -> 20, dsconv,
 * flatten, fc 20 (per tensor), fc 5. */
static const char *ARCH =
    "{\"input\":[9,8,3],\"classes\":5,\"layers\":["
    "{\"op\":\"conv\",\"out\":12,\"k\":3},"
    "{\"op\":\"conv\",\"out\":12,\"k\":[3,2],\"stride\":2,\"padding\":\"valid\",\"act\":\"relu6\"},"
    "{\"op\":\"pwconv\",\"out\":20},{\"op\":\"dsconv\",\"out\":9,\"k\":3},"
    "{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":20,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":5}]}";

static void lowered(int fc_per_channel, nas_g8_graph *g) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(ARCH, "t", 8, 7, &n, &e)) fail_msg("build: %s", e.msg);
  nas_dataset d = {0};
  test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
  nas_lower_cfg lc = {.fc_per_channel = fc_per_channel};
  if (nas_quantize_net(n, &d, NULL, &lc, g, &e)) fail_msg("lower: %s", e.msg);
  free(d.x), free(d.y);
  nas_net_free(n);
}

/* Zeroes the fraction s of every conv / fc filter (random positions), returns the zeros set. */
static long long zero_weights(nas_g8_graph *g, double s, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  long long z = 0;
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_FULLY_CONNECTED) continue;
    nas_g8_tensor *w = &g->tensors[op->in[1]];
    int8_t *d = w->data;
    size_t n = nas_g8_numel(w);
    for (size_t k = 0; k < n; k++)
      if (s >= 1.0 || nas_rng_uniform(&r) < s) d[k] = 0, z++;
  }
  return z;
}

static int count_sparse(const nas_g8_graph *g) {
  nas_g8_prep p;
  nas_err e = {0};
  assert_int_equal(nas_g8_prep_build(g, NULL, &p, &e), NAS_OK);
  int k = 0;
  for (int i = 0; i < p.nops; i++) k += p.op[i].rt_kind == NASRT_SPARSE;
  nas_g8_prep_free(&p);
  return k;
}

/* Dense (host kernels, runtime kernels) and sparse (host path, runtime) give the same bytes. */
static void check_equal(nas_g8_graph *g, const char *what) {
  const size_t ni = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *in = malloc(ni), *ref = malloc(no), *rt = malloc(no), *sp = malloc(no), *sprt = malloc(no);
  nas_rng r;
  nas_rng_seed(&r, 11);
  nas_err e = {0};
  for (int k = 0; k < 8; k++) {
    for (size_t i = 0; i < ni; i++)
      in[i] = k == 0 ? -128 : k == 1 ? 127 : (int8_t)((int)nas_rng_below(&r, 256) - 128);
    g->sparse = 0;
    assert_int_equal(nas_g8_run(g, in, ref, &e), NAS_OK);
    assert_int_equal(nas_g8_rt_run(g, in, rt, &e), NAS_OK);
    g->sparse = 2;
    assert_int_equal(nas_g8_run(g, in, sp, &e), NAS_OK);
    assert_int_equal(nas_g8_rt_run(g, in, sprt, &e), NAS_OK);
    for (size_t i = 0; i < no; i++)
      if (rt[i] != ref[i] || sp[i] != ref[i] || sprt[i] != ref[i])
        fail_msg("%s: input %d output %zu: dense %d, runtime %d, sparse %d, sparse runtime %d",
                 what, k, i, ref[i], rt[i], sp[i], sprt[i]);
  }
  g->sparse = 0;
  free(in), free(ref), free(rt), free(sp), free(sprt);
}

static void test_bit_exact(void **state) {
  (void)state;
  const double levels[4] = {0.0, 0.5, 0.9, 1.0};
  for (int pc = 0; pc < 2; pc++)
    for (int l = 0; l < 4; l++) {
      nas_g8_graph g;
      lowered(pc, &g);
      long long z = zero_weights(&g, levels[l], 3 + (uint64_t)l);
      if (l == 0) assert_true(z == 0);
      g.sparse = 2;
      assert_int_equal(count_sparse(&g), 6); /* conv, conv, pwconv, dsconv's pw, fc, fc */
      g.sparse = 0;
      assert_int_equal(count_sparse(&g), 0);
      char what[64];
      snprintf(what, sizeof what, "%s fc, %.0f%% zeros", pc ? "per-channel" : "per-tensor",
               100 * levels[l]);
      check_equal(&g, what);
      nas_g8_graph_free(&g);
    }
}

/* The pick rule: sparse only where mask + values < dense bytes. */
static void test_pick(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered(0, &g);
  zero_weights(&g, 0.5, 9);
  for (int i = 0; i < g.nops; i++) {
    long long nnz, b = nas_g8_sparse_bytes(&g, i, &nnz);
    const nas_g8_op *op = &g.ops[i];
    if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_FULLY_CONNECTED) {
      assert_true(b == -1);
      continue;
    }
    const nas_g8_tensor *w = &g.tensors[op->in[1]];
    const int conv = op->kind == NAS_G8_CONV_2D;
    long long co = w->dims[0], taps = conv ? w->dims[1] * w->dims[2] : 1;
    long long ci = conv ? w->dims[3] : w->dims[1];
    assert_true(b == co * taps * ((ci + 7) / 8) + nnz);
    assert_int_equal(nas_g8_sparse_pick(&g, i), b < (long long)w->bytes);
  }
  g.sparse = 1;
  assert_int_equal(count_sparse(&g), 6); /* half the weights zero: every filter is smaller */
  nas_g8_graph_free(&g);
  /* without zero weights the mask only adds bytes: nothing is sparse */
  lowered(0, &g);
  g.sparse = 1;
  assert_int_equal(count_sparse(&g), 0);
  nas_g8_graph_free(&g);
}

/* stm32l4r5zi as built in (TFLM + CMSIS-NN) and the same part with "runtime": "nas-c". */
static void targets(nas_target **tf, nas_target **nc) {
  nas_err e = {0};
  assert_int_equal(nas_target_open("stm32l4r5zi", NULL, tf, &e), NAS_OK);
  assert_int_equal((*tf)->runtime, NAS_RT_TFLM_CMSIS_NN);
  char *js = nas_target_to_json(*tf);
  cJSON *o = cJSON_Parse(js);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "runtime")->valuestring, "tflm-cmsis-nn");
  cJSON_ReplaceItemInObject(o, "runtime", cJSON_CreateString("nas-c"));
  char *js2 = cJSON_PrintUnformatted(o);
  assert_int_equal(nas_target_parse(js2, "nas-c target", NULL, nc, &e), NAS_OK);
  cJSON_Delete(o);
  free(js), free(js2);
  /* an unknown runtime is refused, naming the field */
  nas_target *bad = NULL;
  char *js3 = nas_target_to_json(*tf);
  char *at = strstr(js3, "tflm-cmsis-nn");
  memcpy(at, "tflm-cmsis-xx", 13);
  assert_int_equal(nas_target_parse(js3, "bad", NULL, &bad, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "field 'runtime'"));
  free(js3);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (b) b[n] = 0;
  fclose(f);
  return b;
}

/* Element count of `static const <type> <name>[N]` in src, or -1. */
static long array_len(const char *src, const char *type, const char *name) {
  char want[96];
  snprintf(want, sizeof want, "static const %s %s[", type, name);
  const char *p = strstr(src, want);
  return p ? strtol(p + strlen(want), NULL, 10) : -1;
}

/* The exported mask and values arrays are exactly the counted bytes; the dense filter of a
 * sparse operator is not exported; pricing counts the same bytes on a nas-c target. */
static void test_flash_accounting(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered(0, &g);
  zero_weights(&g, 0.7, 21);
  g.sparse = 1;
  char dir[] = "/tmp/nas_sparse_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  nas_err e = {0};
  assert_int_equal(nas_c_export(&g, "sp", dir, &e), NAS_OK);
  char path[1200];
  snprintf(path, sizeof path, "%s/sp.c", dir);
  char *src = read_all(path);
  assert_non_null(src);
  long long saved = 0;
  int n_sparse = 0;
  for (int i = 0; i < g.nops; i++) {
    char m[32], v[32], t[32];
    snprintf(m, sizeof m, "op%d_mask", i), snprintf(v, sizeof v, "op%d_values", i);
    snprintf(t, sizeof t, "t%d", g.ops[i].in[1]);
    long ml = array_len(src, "uint8_t", m), vl = array_len(src, "int8_t", v);
    if (!nas_g8_sparse_pick(&g, i)) {
      assert_true(ml == -1 && vl == -1);
      continue;
    }
    n_sparse++;
    long long nnz, b = nas_g8_sparse_bytes(&g, i, &nnz);
    assert_true(ml > 0 && vl == nnz);
    assert_true(ml + vl == b);
    assert_true(array_len(src, "int8_t", t) == -1); /* the dense filter is not exported */
    saved += (long long)g.tensors[g.ops[i].in[1]].bytes - b;
  }
  assert_true(n_sparse >= 3);
  free(src);
  test_rm_rf(dir);
  /* pricing: a nas-c target counts the sparse bytes, a TFLM one the dense */
  nas_target *tf = NULL, *nc = NULL;
  targets(&tf, &nc);
  assert_int_equal(nc->runtime, NAS_RT_NAS_C);
  assert_int_equal(tf->runtime, NAS_RT_TFLM_CMSIS_NN);
  nas_price *pd = NULL, *ps = NULL;
  g.sparse = 0;
  assert_int_equal(nas_price_graph(&g, tf, &pd, &e), NAS_OK);
  assert_int_equal(nas_price_graph(&g, nc, &ps, &e), NAS_OK);
  assert_true(pd->model_flash_bytes - ps->model_flash_bytes == saved);
  /* SRAM is the runtime's (TFLM's arena model against the planner since the runtime-aware
   * costs): sparse storage leaves the nas-c arena at the planner's peak, as dense */
  nas_g8_plan plan;
  assert_int_equal(nas_g8_plan_build(&g, &plan, &e), NAS_OK);
  assert_true(ps->arena_bytes == (long long)plan.peak);
  nas_g8_plan_free(&plan);
  nas_price_free(pd), nas_price_free(ps);
  nas_target_free(tf), nas_target_free(nc);
  nas_g8_graph_free(&g);
}

/* An architecture with 75% magnitude pruning: on nas-c the priced flash of the untrained
 * arch (its target sparsity) matches the lowered graph whose masks are at the target (up to
 * the extra zeros of int8 rounding), and is below the dense price. */
static void test_arch_estimate(void **state) {
  (void)state;
  nas_err e = {0};
  nas_target *tf = NULL, *nc = NULL;
  targets(&tf, &nc);
  char arch[1024];
  snprintf(arch, sizeof arch, "%.*s,\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.75}}",
           (int)strlen(ARCH) - 1, ARCH);
  nas_net *n = NULL;
  assert_int_equal(nas_net_build(arch, "t", 8, 7, &n, &e), NAS_OK);
  assert_int_equal(nas_prune_apply_targets(n, 1.0, &e), NAS_OK);
  nas_price *ad = NULL, *as = NULL, *gd = NULL, *gs = NULL;
  assert_int_equal(nas_price_net(n, tf, &ad, &e), NAS_OK);
  assert_int_equal(nas_price_net(n, nc, &as, &e), NAS_OK);
  assert_true(as->model_flash_bytes < ad->model_flash_bytes);
  { /* pruning leaves the working memory alone: the same SRAM as the unpruned arch on nas-c */
    nas_net *dn = NULL;
    nas_price *an = NULL;
    assert_int_equal(nas_net_build(ARCH, "t", 8, 7, &dn, &e), NAS_OK);
    assert_int_equal(nas_price_net(dn, nc, &an, &e), NAS_OK);
    assert_true(as->peak_sram_bytes == an->peak_sram_bytes);
    assert_true(as->model_flash_bytes < an->model_flash_bytes);
    nas_price_free(an);
    nas_net_free(dn);
  }
  nas_dataset d = {0};
  test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
  nas_g8_graph g;
  assert_int_equal(nas_quantize_net(n, &d, NULL, NULL, &g, &e), NAS_OK);
  assert_int_equal(nas_price_graph(&g, tf, &gd, &e), NAS_OK);
  assert_int_equal(nas_price_graph(&g, nc, &gs, &e), NAS_OK);
  long long rounding = 0; /* zeros the int8 rounding adds beyond the masks */
  for (int i = 0; i < g.nops; i++)
    if (nas_g8_sparse_pick(&g, i)) {
      long long nnz;
      nas_g8_sparse_bytes(&g, i, &nnz);
      size_t k = nas_g8_numel(&g.tensors[g.ops[i].in[1]]);
      rounding += (long long)k - (long long)floor(0.75 * (double)k + 1e-9) - nnz;
    }
  assert_true(rounding >= 0);
  assert_true(as->model_flash_bytes - gs->model_flash_bytes ==
              ad->model_flash_bytes - gd->model_flash_bytes + rounding);
  nas_price_free(ad), nas_price_free(as), nas_price_free(gd), nas_price_free(gs);
  nas_g8_graph_free(&g);
  free(d.x), free(d.y);
  nas_net_free(n);
  nas_target_free(tf), nas_target_free(nc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bit_exact),
      cmocka_unit_test(test_pick),
      cmocka_unit_test(test_flash_accounting),
      cmocka_unit_test(test_arch_estimate),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
