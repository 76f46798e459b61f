/* tests/test_deploy_armnn.c: the deploy runtime against a live Arm NN (CpuRef backend, Debian
 * python3-pyarmnn, run with /usr/bin/python3), layer by layer, on the four MLPerf Tiny reference
 * models (../shared/models) and the fixture's four inputs (seeds 0..3 of make_input).
 *
 * tests/fixtures/armnn_tensors.py returns every operator's output tensor as Arm NN computes it.
 * Each of our operators is then run alone on Arm NN's own input tensors (so differences do not
 * accumulate) and its output must
 *   - agree with Arm NN's within 1 quantisation step per element (every operator);
 *   - equal it exactly for RESHAPE and MAX_POOL_2D;
 *   - lie within TFLite's double-rounding error of an independent recomputation in double
 *     precision (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, AVERAGE_POOL_2D): the exact
 *     real-valued result r, clamped to the activation range, satisfies
 *     |ours - r| <= 0.5 + 0.5 * 2^min(0, shift) (+1e-6) where shift is the requantisation
 *     exponent: the first rounding (SRDHM, to an integer before the rounding divide by
 *     2^-shift) can move the value by at most half a unit of that intermediate. So every 1-step
 *     disagreement with Arm NN (which rounds the float result once) is a near-tie, not a bug.
 * Skipped when the models are absent or pyarmnn cannot be imported. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "deploy/graph8.h"
#include "tests/test_deploy_util.h"
#include "tests/test_util.h"

#define NSEEDS 4

/* Runs armnn_tensors.py on the NSEEDS inputs of model file; 0 done, 3 pyarmnn missing. */
static int run_armnn(const char *model, const char *inputs, const char *outdir) {
  const char *src = getenv("NAS_SOURCE_DIR");
  char cmd[4096];
  /* stderr goes to a file (pyarmnn prints notices about parsers this build lacks), shown
   * only when the script fails. */
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 '%s/tests/fixtures/armnn_tensors.py' '%s' '%s' '%s' 2>'%s/err.txt'",
           src ? src : NAS_SOURCE_DIR, model, inputs, outdir, outdir);
  if (access("/usr/bin/python3", X_OK) != 0) return 3;
  int st = system(cmd);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  if (rc != 0 && rc != 3) {
    snprintf(cmd, sizeof cmd, "cat '%s/err.txt' >&2", outdir);
    if (system(cmd) != 0) fprintf(stderr, "(no error output)\n");
  }
  return rc;
}

static int8_t *read_tensor(const char *dir, int k, int t, size_t n) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%d_t%d.bin", dir, k, t);
  size_t got = 0;
  uint8_t *b = slurp(path, &got);
  assert_non_null(b);
  assert_int_equal(got, n);
  return (int8_t *)b;
}

static void remove_dir(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_layers_vs_armnn(void **state) {
  (void)state;
  char mdir[800], path[1024];
  REQUIRE_MODELS(mdir);
  for (int m = 0; m < NMODELS; m++) {
    nas_g8_graph g;
    nas_err e = {0};
    snprintf(path, sizeof path, "%s/%s", mdir, deploy_model_file(m));
    assert_int_equal(nas_tflite_read(path, &g, &e), NAS_OK);
    char tmp[] = "/tmp/nas_armnn_XXXXXX", inputs[64];
    assert_non_null(mkdtemp(tmp));
    snprintf(inputs, sizeof inputs, "%s/in.bin", tmp);
    const size_t nin = nas_g8_numel(&g.tensors[g.input]);
    int8_t *x = malloc(nin * NSEEDS);
    for (int k = 0; k < NSEEDS; k++) make_input(k, x + k * nin, nin, g.tensors[g.input].zero_point[0]);
    FILE *f = fopen(inputs, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(x, 1, nin * NSEEDS, f), nin * NSEEDS);
    fclose(f);
    int rc = run_armnn(path, inputs, tmp);
    if (rc == 3) {
      remove_dir(tmp), free(x), nas_g8_graph_free(&g);
      test_skip("pyarmnn not importable by /usr/bin/python3 (apt-get install python3-pyarmnn)");
    }
    assert_int_equal(rc, 0);
    long nelem = 0, ndiff = 0, arm_off = 0;
    double worst = 0; /* largest |ours - exact| - 0.5, over the closed-form operators */
    for (int k = 0; k < NSEEDS; k++) {
      int8_t **arm = calloc((size_t)g.ntensors, sizeof *arm);
      arm[g.input] = x + k * nin;
      for (int o = 0; o < g.nops; o++) {
        int t = g.ops[o].out;
        arm[t] = read_tensor(tmp, k, t, nas_g8_numel(&g.tensors[t]));
      }
      for (int o = 0; o < g.nops; o++) {
        const nas_g8_op *op = &g.ops[o];
        const size_t n = nas_g8_numel(&g.tensors[op->out]);
        int8_t **a2 = calloc((size_t)g.ntensors, sizeof *a2), *ours = malloc(n);
        for (int i = 0; i < op->nin; i++)
          if (op->in[i] >= 0 && !g.tensors[op->in[i]].data) a2[op->in[i]] = arm[op->in[i]];
        a2[op->out] = ours;
        assert_int_equal(nas_g8_run_op(&g, o, a2, &e), NAS_OK);
        double *ex = malloc(sizeof(double) * n), *slack = malloc(sizeof(double) * n);
        deploy_exact_op(&g, op, a2, ex, slack);
        int32_t lo, hi;
        nas_q_act_range(op->act, g.tensors[op->out].scale[0], g.tensors[op->out].zero_point[0],
                        &lo, &hi);
        const int8_t *ref = arm[op->out];
        for (size_t i = 0; i < n; i++) {
          int d = abs(ours[i] - ref[i]);
          if (d > 1 || ((op->kind == NAS_G8_RESHAPE || op->kind == NAS_G8_MAX_POOL_2D) && d))
            fail_msg("%s seed %d operator %d (%s) element %zu: ours %d, Arm NN %d",
                     deploy_model_file(m), k, o, nas_g8_op_name(op->kind), i, ours[i], ref[i]);
          ndiff += d != 0;
          if (isnan(ex[i])) continue;
          double r = ex[i] < lo ? lo : ex[i] > hi ? hi : ex[i];
          double exc = fabs(ours[i] - r) - 0.5;
          if (exc > slack[i])
            fail_msg("%s seed %d operator %d (%s) element %zu: ours %d, exact %.6f: beyond "
                     "double rounding (allowed %.6f over 0.5)", deploy_model_file(m), k, o,
                     nas_g8_op_name(op->kind), i, ours[i], r, slack[i]);
          if (exc > worst) worst = exc;
          arm_off += fabs(ref[i] - r) > 0.5 + 1e-4;
        }
        nelem += (long)n;
        free(ex), free(slack), free(ours), free(a2);
      }
      for (int o = 0; o < g.nops; o++) free(arm[g.ops[o].out]);
      free(arm);
    }
    printf("%-30s %d ops x %d inputs, each op on Arm NN's inputs: %ld of %ld elements differ "
           "(all by 1 step); ours within 0.5+%.4f of the exact value; Arm NN off the correctly "
           "rounded value in %ld elements\n", deploy_model_file(m), g.nops, NSEEDS, ndiff, nelem,
           worst, arm_off);
    remove_dir(tmp);
    free(x);
    nas_g8_graph_free(&g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layers_vs_armnn),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
