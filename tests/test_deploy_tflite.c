/* tests/test_deploy_tflite.c: the deploy runtime against a second, independent third-party
 * runtime, TensorFlow Lite 2.9.0 (libtensorflowlite_c.so from the npm package
 * tfjs-tflite-node@0.0.2, installed by scripts/setup.sh into /opt/nas-tflite; driven by
 * tests/fixtures/tflite_run.py under /usr/bin/python3), on fixed seeded int8 inputs
 * (make_input seeds 0..NIN-1, as the Arm NN tests use):
 *   - kws_ref_model and vww_96_int8: our outputs equal TFLite's, every element;
 *   - ad01_int8 and pretrainedResnet_quant: within the measured maxima (AD01_MAX, RESNET_MAX
 *     output steps, AD01_NDIFF, RESNET_NDIFF differing elements); at the first operator where
 *     they differ, every difference is TFLite = ours + 1 with the exact result inside TFLite's
 *     double-rounding window around a half-integer (near-ties, see near_ties); resnet truncated after its FULLY_CONNECTED layer (the logits, written
 *     with the project's own reader and writer): TFLite and Arm NN 20.08 CpuRef
 *     (tests/fixtures/check_armnn.py) differ there by more than 2 steps, i.e. TFLite itself
 *     misses a "within 2 steps of Arm NN" bound on that model (skipped without pyarmnn);
 *   - the small networks the export tests lower with nas_quantize_net (every layer kind,
 *     per-tensor FC, softmax, the fmnist-cnn reference arch): each exported
 *     .tflite loads in TFLite and its outputs equal ours on calibration-like and uniform
 *     random inputs; except per-channel FULLY_CONNECTED, which TFLite 2.9 loads but does not
 *     implement (every output is the zero point): that behaviour is asserted instead.
 * Skipped (with a message) when /usr/bin/python3 or the TFLite library is missing, or the
 * reference models are absent (model parts only). */
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

#include "core/fileio.h"
#include "deploy/graph8.h"
#include "deploy/lower.h"
#include "export/export_tflite.h"
#include "tests/test_deploy_util.h"
#include "tests/test_util.h"

#define NIN 8 /* seeded inputs per reference model */
/* Measured maxima over the NIN inputs (ours vs TFLite 2.9, output steps). */
#define AD01_MAX 1          /* ad01_int8 output (9 of 5120 elements differ) */
#define AD01_NDIFF 9
#define RESNET_MAX 37       /* pretrainedResnet_quant softmax output (10 of 80 differ) */
#define RESNET_NDIFF 10
#define RESNET_LOGITS_MAX 2 /* pretrainedResnet_quant logits (its FULLY_CONNECTED output) */

static const char *src_dir(void) {
  const char *s = getenv("NAS_SOURCE_DIR");
  return s ? s : NAS_SOURCE_DIR;
}

/* 1 when tflite_run.py can load the library (checked once; prints its version). */
static int have_tflite(void) {
  static int cached = -1;
  if (cached < 0) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/fixtures/tflite_run.py' --version",
             src_dir());
    cached = access("/usr/bin/python3", X_OK) == 0 && system(cmd) == 0;
  }
  return cached;
}

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Runs the model file on `count` inputs x (nin bytes each) in TFLite, in scratch directory
 * dir; returns the count * nout output bytes (caller frees). Fails the test when TFLite
 * refuses the model (its one-line message is on stderr). */
static int8_t *tflite_outputs(const char *dir, const char *model, const int8_t *x, size_t nin,
                              int count, size_t nout) {
  char in[1100], out[1100], cmd[4096];
  snprintf(in, sizeof in, "%s/tfl_in.bin", dir);
  snprintf(out, sizeof out, "%s/tfl_out.bin", dir);
  write_file(in, x, nin * (size_t)count);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/fixtures/tflite_run.py' '%s' '%s' '%s'",
           src_dir(), model, in, out);
  int st = system(cmd);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("%s: TFLite did not run the model", model);
  size_t got = 0;
  uint8_t *y = slurp(out, &got);
  assert_non_null(y);
  assert_int_equal(got, nout * (size_t)count);
  return (int8_t *)y;
}

/* Arm NN CpuRef's output for one input (nin bytes), nout values. */
static void armnn_output(const char *dir, const char *model, const int8_t *x, size_t nin,
                         size_t nout, int *y) {
  char in[1100], out[1100], cmd[4096];
  snprintf(in, sizeof in, "%s/arm_in.bin", dir);
  snprintf(out, sizeof out, "%s/arm_out.txt", dir);
  write_file(in, x, nin);
  /* stderr to a file: pyarmnn prints notices about parsers this build lacks */
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 '%s/tests/fixtures/check_armnn.py' '%s' '%s' > '%s' 2>'%s/arm_err.txt'",
           src_dir(), model, in, out, dir);
  if (system(cmd) != 0) {
    snprintf(cmd, sizeof cmd, "cat '%s/arm_err.txt' >&2", dir);
    if (system(cmd) != 0) fprintf(stderr, "(no error output)\n");
    fail_msg("%s: Arm NN could not load or run the model", model);
  }
  FILE *f = fopen(out, "r");
  assert_non_null(f);
  for (size_t k = 0; k < nout; k++)
    if (fscanf(f, "%d", &y[k]) != 1) fail_msg("%s: Arm NN printed too few values", model);
  fclose(f);
}

#define TFLITE_SKIP                                                                            \
  test_skip("TensorFlow Lite 2.9 C library or /usr/bin/python3 missing (scripts/setup.sh "     \
            "installs tfjs-tflite-node into /opt/nas-tflite)")

/* Largest |a - b| over n elements; *ndiff (may be NULL) += the count of differing ones. */
static int max_diff(const int8_t *a, const int8_t *b, size_t n, long *ndiff) {
  int worst = 0;
  for (size_t i = 0; i < n; i++) {
    int d = abs(a[i] - b[i]);
    if (d > worst) worst = d;
    if (ndiff) *ndiff += d != 0;
  }
  return worst;
}

/* Our runtime on the `count` inputs x; returns count * nout bytes (caller frees). */
static int8_t *our_outputs(const nas_g8_graph *g, const int8_t *x, int count) {
  const size_t nin = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *y = malloc(no * (size_t)count);
  nas_err e = {0};
  for (int k = 0; k < count; k++)
    if (nas_g8_run(g, x + (size_t)k * nin, y + (size_t)k * no, &e)) fail_msg("run: %s", e.msg);
  return y;
}

/* NIN seeded inputs for g's input tensor (caller frees). */
static int8_t *seeded_inputs(const nas_g8_graph *g) {
  const size_t nin = nas_g8_numel(&g->tensors[g->input]);
  int8_t *x = malloc(nin * NIN);
  for (int k = 0; k < NIN; k++) make_input(k, x + (size_t)k * nin, nin, g->tensors[g->input].zero_point[0]);
  return x;
}

/* Compares ours and TFLite on reference model m; returns the largest difference. */
static int compare_model(const char *mdir, int m, long *ndiff, size_t *nelem) {
  char path[1024], tmp[] = "/tmp/nas_tflite_XXXXXX";
  snprintf(path, sizeof path, "%s/%s", mdir, deploy_model_file(m));
  assert_non_null(mkdtemp(tmp));
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_tflite_read(path, &g, &e)) fail_msg("import: %s", e.msg);
  const size_t nin = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(&g.tensors[g.output]);
  int8_t *x = seeded_inputs(&g), *ours = our_outputs(&g, x, NIN);
  int8_t *tfl = tflite_outputs(tmp, path, x, nin, NIN, no);
  *ndiff = 0, *nelem = no * NIN;
  int worst = max_diff(ours, tfl, no * NIN, ndiff);
  free(x), free(ours), free(tfl);
  nas_g8_graph_free(&g);
  assert_int_equal(test_rm_rf(tmp), 0);
  return worst;
}

#define SKIP_UNLESS_READY(mdir)                                                                \
  do {                                                                                         \
    if (!have_tflite()) TFLITE_SKIP;                                                           \
    REQUIRE_MODELS(mdir);                                                                      \
  } while (0)

static void test_exact_models(void **state) {
  (void)state;
  char mdir[800];
  SKIP_UNLESS_READY(mdir);
  for (int m = 0; m < 2; m++) { /* kws_ref_model, vww_96_int8 */
    long nd;
    size_t ne;
    int worst = compare_model(mdir, m, &nd, &ne);
    print_message("%-30s ours vs TFLite 2.9: %ld of %zu output elements differ, max %d\n",
                  deploy_model_file(m), nd, ne, worst);
    if (worst != 0) fail_msg("%s: ours and TFLite differ by %d steps", deploy_model_file(m), worst);
  }
}

static void test_near_models(void **state) {
  (void)state;
  char mdir[800];
  SKIP_UNLESS_READY(mdir);
  const int ms[2] = {3, 2}, bound[2] = {AD01_MAX, RESNET_MAX};
  const long nbound[2] = {AD01_NDIFF, RESNET_NDIFF};
  for (int k = 0; k < 2; k++) {
    long nd;
    size_t ne;
    int worst = compare_model(mdir, ms[k], &nd, &ne);
    print_message("%-30s ours vs TFLite 2.9: %ld of %zu output elements differ, max %d (bound %d)\n",
                  deploy_model_file(ms[k]), nd, ne, worst, bound[k]);
    if (worst > bound[k] || nd > nbound[k])
      fail_msg("%s: ours and TFLite differ in %ld elements, by up to %d steps (bounds %ld, %d)",
               deploy_model_file(ms[k]), nd, worst, nbound[k], bound[k]);
  }
}

/* pretrainedResnet_quant cut after its FULLY_CONNECTED layer: ours vs TFLite, and TFLite vs
 * Arm NN (which must exceed 2 steps: the bound is not met by TFLite itself). */
static void test_resnet_logits(void **state) {
  (void)state;
  char mdir[800], path[1024], cut[1100], tmp[] = "/tmp/nas_tflite_XXXXXX";
  SKIP_UNLESS_READY(mdir);
  snprintf(path, sizeof path, "%s/%s", mdir, deploy_model_file(2));
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_tflite_read(path, &g, &e)) fail_msg("import: %s", e.msg);
  int fc = -1;
  for (int o = 0; o < g.nops; o++)
    if (g.ops[o].kind == NAS_G8_FULLY_CONNECTED) fc = o;
  assert_true(fc >= 0 && fc < g.nops - 1); /* the logits feed the SOFTMAX */
  const int nops = g.nops, output = g.output;
  g.nops = fc + 1, g.output = g.ops[fc].out;
  assert_non_null(mkdtemp(tmp));
  snprintf(cut, sizeof cut, "%s/resnet_logits.tflite", tmp);
  if (nas_tflite_write(&g, "resnet cut after FULLY_CONNECTED", cut, &e)) fail_msg("write: %s", e.msg);
  nas_g8_graph c;
  if (nas_tflite_read(cut, &c, &e)) fail_msg("import of the cut model: %s", e.msg);
  g.nops = nops, g.output = output;
  const size_t nin = nas_g8_numel(&c.tensors[c.input]), no = nas_g8_numel(&c.tensors[c.output]);
  int8_t *x = seeded_inputs(&c), *ours = our_outputs(&c, x, NIN);
  int8_t *tfl = tflite_outputs(tmp, cut, x, nin, NIN, no);
  long nd = 0;
  int ot = max_diff(ours, tfl, no * NIN, &nd);
  print_message("resnet logits (op %d of %d, %zu values x %d inputs): ours vs TFLite 2.9: %ld "
                "differ, max %d (bound %d)\n", fc, nops, no, NIN, nd, ot, RESNET_LOGITS_MAX);
  if (ot > RESNET_LOGITS_MAX)
    fail_msg("resnet logits: ours and TFLite differ by %d steps (bound %d)", ot, RESNET_LOGITS_MAX);
  if (test_have_armnn()) {
    int *arm = malloc(sizeof(int) * no), ta = 0, oa = 0;
    for (int k = 0; k < NIN; k++) {
      armnn_output(tmp, cut, x + (size_t)k * nin, nin, no, arm);
      int tk = 0, okk = 0;
      for (size_t i = 0; i < no; i++) {
        int d1 = abs(tfl[(size_t)k * no + i] - arm[i]), d2 = abs(ours[(size_t)k * no + i] - arm[i]);
        tk = d1 > tk ? d1 : tk, okk = d2 > okk ? d2 : okk;
      }
      print_message("  seed %d: max |TFLite - Arm NN| %d, |ours - Arm NN| %d\n", k, tk, okk);
      ta = tk > ta ? tk : ta, oa = okk > oa ? okk : oa;
    }
    print_message("resnet logits over %d inputs: TFLite 2.9 vs Arm NN CpuRef max %d, ours vs "
                  "Arm NN max %d\n", NIN, ta, oa);
    if (ta <= 2) fail_msg("resnet logits: TFLite and Arm NN agree within %d steps", ta);
    free(arm);
  } else {
    test_skip_part("pyarmnn not importable by /usr/bin/python3: the TFLite vs Arm NN check of "
                   "resnet's logits (apt-get install python3-pyarmnn)");
  }
  free(x), free(ours), free(tfl);
  nas_g8_graph_free(&c), nas_g8_graph_free(&g);
  assert_int_equal(test_rm_rf(tmp), 0);
}

/* Writes g cut after operator k (its output becomes the graph output) to path. */
static void write_cut(nas_g8_graph *g, int k, const char *path) {
  const int nops = g->nops, output = g->output;
  nas_err e = {0};
  g->nops = k + 1, g->output = g->ops[k].out;
  int rc = nas_tflite_write(g, "cut", path, &e);
  g->nops = nops, g->output = output;
  if (rc) fail_msg("write %s: %s", path, e.msg);
}

/* Where the 1-step differences come from: the first operator at which TFLite and we differ
 * (op k of the model; its input tensors agree exactly, checked by running the model cut after
 * op k-1 in TFLite). Every differing element of op k must be TFLite = ours + 1 with the exact
 * real-valued result within TFLite's double-rounding window 0.5 * 2^shift of the half-integer
 * between them (deploy_exact_op's slack): near-ties, broken in opposite directions by the two
 * fixed-point implementations, not an arithmetic error on either side. Reports how many of
 * them each side rounds correctly. */
static void near_ties(const char *mdir, int m, int k, long expect_diff) {
  char path[1024], cut[1100], tmp[] = "/tmp/nas_tflite_XXXXXX";
  snprintf(path, sizeof path, "%s/%s", mdir, deploy_model_file(m));
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_tflite_read(path, &g, &e)) fail_msg("import: %s", e.msg);
  assert_true(k > 0 && k < g.nops);
  assert_non_null(mkdtemp(tmp));
  const size_t nin = nas_g8_numel(&g.tensors[g.input]);
  const nas_g8_op *op = &g.ops[k];
  const size_t nprev = nas_g8_numel(&g.tensors[g.ops[k - 1].out]), no = nas_g8_numel(&g.tensors[op->out]);
  int8_t *x = seeded_inputs(&g);
  snprintf(cut, sizeof cut, "%s/prev.tflite", tmp);
  write_cut(&g, k - 1, cut);
  int8_t *tprev = tflite_outputs(tmp, cut, x, nin, NIN, nprev);
  snprintf(cut, sizeof cut, "%s/cut.tflite", tmp);
  write_cut(&g, k, cut);
  int8_t *tk = tflite_outputs(tmp, cut, x, nin, NIN, no);
  long nd = 0, ours_cr = 0, tfl_cr = 0;
  double far = 0, near = INFINITY; /* largest |exact - half-integer| / window; smallest
                                   * |exact - half-integer| among the differing elements */
  for (int s = 0; s < NIN; s++) {
    int8_t **act = calloc((size_t)g.ntensors, sizeof *act);
    for (int i = 0; i < g.ntensors; i++)
      if (!g.tensors[i].data) act[i] = calloc(nas_g8_numel(&g.tensors[i]) + 1, 1);
    memcpy(act[g.input], x + (size_t)s * nin, nin);
    for (int o = 0; o <= k; o++) assert_int_equal(nas_g8_run_op(&g, o, act, &e), NAS_OK);
    if (max_diff(act[g.ops[k - 1].out], tprev + (size_t)s * nprev, nprev, NULL) != 0)
      fail_msg("%s seed %d: TFLite already differs before operator %d", deploy_model_file(m), s, k);
    double *ex = malloc(sizeof(double) * no), *slack = malloc(sizeof(double) * no);
    deploy_exact_op(&g, op, act, ex, slack);
    const int8_t *ours = act[op->out], *tf = tk + (size_t)s * no;
    for (size_t i = 0; i < no; i++) {
      if (ours[i] == tf[i]) continue;
      nd++;
      assert_false(isnan(ex[i]));
      double half = ours[i] + 0.5, dist = fabs(ex[i] - half);
      if (tf[i] != ours[i] + 1 || dist > slack[i])
        fail_msg("%s seed %d op %d (%s) element %zu: ours %d, TFLite %d, exact %.6f: not a "
                 "near-tie (window %.6f)", deploy_model_file(m), s, k, nas_g8_op_name(op->kind),
                 i, ours[i], tf[i], ex[i], slack[i]);
      if (dist / slack[i] > far) far = dist / slack[i];
      if (dist < near) near = dist;
      ours_cr += ours[i] == (int)nearbyint(ex[i]), tfl_cr += tf[i] == (int)nearbyint(ex[i]);
    }
    for (int i = 0; i < g.ntensors; i++) free(act[i]);
    free(act), free(ex), free(slack);
  }
  print_message("%-30s first differing op %d (%s): %ld of %zu elements, all TFLite = ours + 1; "
                "|exact - half-integer| >= %.2g (no exact tie) and <= %.2f x the double-rounding "
                "window; correctly rounded: ours %ld, TFLite %ld\n",
                deploy_model_file(m), k, nas_g8_op_name(op->kind), nd, no * NIN,
                nd ? near : 0.0, far, ours_cr, tfl_cr);
  if (nd) assert_true(near > 0);
  assert_int_equal(nd, expect_diff); /* fixed inputs: the measured count */
  free(x), free(tprev), free(tk);
  nas_g8_graph_free(&g);
  assert_int_equal(test_rm_rf(tmp), 0);
}

static void test_near_ties(void **state) {
  (void)state;
  char mdir[800];
  SKIP_UNLESS_READY(mdir);
  near_ties(mdir, 3, 9, 9);   /* ad01_int8: its last FULLY_CONNECTED */
  near_ties(mdir, 2, 2, 159); /* pretrainedResnet_quant: its second CONV_2D */
}

/* The small networks of the export tests (tests/test_export_c.c, tests/test_quant.c), lowered
 * from untrained weights calibrated on noise, exported, run in TFLite. */
static void test_exports(void **state) {
  (void)state;
  if (!have_tflite()) TFLITE_SKIP;
  char *fm = NULL, fmpath[1024];
  nas_err e = {0};
  snprintf(fmpath, sizeof fmpath, "%s/search_spaces/reference/fmnist-cnn.json", src_dir());
  assert_int_equal(nas_read_file(fmpath, &fm, NULL, &e), NAS_OK);
  const struct {
    const char *tag, *json;
    int softmax, fc_per_channel;
  } nets[] = {
      {"tiny-kinds",
       "{\"input\":[9,7,2],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":6,\"k\":[3,2],"
       "\"stride\":[2,1],\"act\":\"relu6\"},{\"op\":\"pwconv\",\"out\":6,\"bn\":false,\"act\":"
       "\"none\"},{\"op\":\"add\",\"from\":0,\"act\":\"relu\"},{\"op\":\"dwconv\",\"k\":3,"
       "\"padding\":\"valid\"},{\"op\":\"avgpool\",\"k\":2,\"stride\":1,\"padding\":\"same\"},"
       "{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":8,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":5}]}",
       1, 0},
      {"tiny-kinds-logits", NULL, 0, 0}, /* same arch, no softmax */
      {"tiny-pool",
       "{\"input\":[10,10,3],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":3},"
       "{\"op\":\"maxpool\",\"k\":2,\"stride\":2},{\"op\":\"dwconv\",\"k\":3,\"stride\":2},"
       "{\"op\":\"pwconv\",\"out\":5},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}",
       0, 1},
      {"tiny-pool-fc-tensor", NULL, 0, 0}, /* same arch, per-tensor FC */
      {"mbconv",
       "{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8},"
       "{\"op\":\"mbconv\",\"out\":8,\"expand\":2},{\"op\":\"maxpool\"},"
       "{\"op\":\"dsconv\",\"out\":16},{\"op\":\"gap\"},{\"op\":\"dropout\",\"rate\":0.1},"
       "{\"op\":\"fc\",\"out\":4}]}",
       1, 0},
      {"fmnist-cnn", NULL, 1, 0},
  };
  const int nnets = (int)(sizeof nets / sizeof nets[0]);
  for (int a = 0; a < nnets; a++) {
    const char *json = nets[a].json ? nets[a].json : a == 1 ? nets[0].json : a == 3 ? nets[2].json : fm;
    nas_net *n = NULL;
    if (nas_net_build(json, "t.json", 8, 7, &n, &e)) fail_msg("%s: build: %s", nets[a].tag, e.msg);
    nas_dataset d = {0};
    test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
    nas_lower_cfg lc = {.softmax = nets[a].softmax, .fc_per_channel = nets[a].fc_per_channel};
    nas_g8_graph g;
    if (nas_quantize_net(n, &d, NULL, &lc, &g, &e)) fail_msg("%s: lower: %s", nets[a].tag, e.msg);
    char tmp[] = "/tmp/nas_tflite_XXXXXX", path[1100];
    assert_non_null(mkdtemp(tmp));
    snprintf(path, sizeof path, "%s/%s.tflite", tmp, nets[a].tag);
    if (nas_tflite_write(&g, nets[a].tag, path, &e)) fail_msg("%s: export: %s", nets[a].tag, e.msg);
    /* 8 calibration samples quantised, then 4 uniform random inputs */
    const int count = 12;
    const size_t nin = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(&g.tensors[g.output]);
    int8_t *x = malloc(nin * (size_t)count);
    for (int k = 0; k < 8; k++) nas_g8_quantize_input(&g, d.x + (size_t)k * nin, x + (size_t)k * nin);
    for (int k = 8; k < count; k++) make_input(k, x + (size_t)k * nin, nin, 0);
    int8_t *ours = our_outputs(&g, x, count), *tfl = tflite_outputs(tmp, path, x, nin, count, no);
    long nd = 0;
    int worst = max_diff(ours, tfl, no * (size_t)count, &nd);
    print_message("export %-18s (%d ops) ours vs TFLite 2.9: %ld of %zu output elements differ, "
                  "max %d\n", nets[a].tag, g.nops, nd, no * (size_t)count, worst);
    if (nets[a].fc_per_channel) {
      /* TFLite 2.9 does not implement per-channel FULLY_CONNECTED: it loads such a file
       * without complaint but computes every output as the output zero point, whatever the
       * input (observed; consistent with its FC kernel reading the tensor's legacy per-tensor
       * scale, which TFLite leaves 0 when a tensor has several scales). So the export cannot
       * be checked there: assert exactly that behaviour (the final op is the FC). */
      const nas_g8_op *last = &g.ops[g.nops - 1];
      assert_int_equal(last->kind, NAS_G8_FULLY_CONNECTED);
      assert_true(g.tensors[last->in[1]].nq > 1);
      const int zp = g.tensors[g.output].zero_point[0];
      for (size_t i = 0; i < no * (size_t)count; i++)
        if (tfl[i] != zp) fail_msg("export %s: TFLite output %zu is %d, not the zero point %d",
                                   nets[a].tag, i, tfl[i], zp);
      assert_true(worst > 0);
      print_message("  per-channel FULLY_CONNECTED: TFLite 2.9 outputs the zero point %d for every "
                    "element (not supported there); not compared\n", zp);
      worst = 0;
    }
    if (worst != 0) fail_msg("export %s: ours and TFLite differ by %d steps", nets[a].tag, worst);
    free(x), free(ours), free(tfl), free(d.x), free(d.y);
    nas_g8_graph_free(&g);
    nas_net_free(n);
    assert_int_equal(test_rm_rf(tmp), 0);
  }
  free(fm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_models),
      cmocka_unit_test(test_near_models),
      cmocka_unit_test(test_near_ties),
      cmocka_unit_test(test_resnet_logits),
      cmocka_unit_test(test_exports),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
