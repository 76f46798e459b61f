/* ONNX export (export/export_onnx.h): the written protobuf parses back with the generated
 * protobuf-c bindings and has the expected nodes and initializers; run in onnxruntime
 * (tests/onnx_check.js with onnxruntime-node from $NAS_ORT_DIR, default
 * /opt/nas-ort/node_modules; skipped with a message when absent), the float model matches our
 * eval-mode forward pass within 1e-4; the QDQ model matches a correctly rounded recomputation
 * of the int8 deployment graph (deploy/lower.h) within 1 step of the logits and the int8 runtime
 * itself (nas_g8_run) within 1 step (ARCH_A) or 2 steps (ARCH_B): see check_qdq. */
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

#include "deploy/lower.h"
#include "onnx.pb-c.h"
#include "export/export_onnx.h"
#include "tests/test_deploy_util.h"
#include "train/quant.h"
#include "tests/test_util.h"

/* conv (same, stride 2, odd/even input: asymmetric pads) + dsconv + mbconv with residual and
 * relu6 + maxpool/avgpool with same padding + gap + dropout + fc */
static const char *ARCH_A =
    "{\"input\":[9,10,3],\"classes\":5,\"layers\":["
    "{\"op\":\"conv\",\"out\":8,\"k\":3,\"stride\":2},"
    "{\"op\":\"dsconv\",\"out\":8,\"k\":3},"
    "{\"op\":\"mbconv\",\"out\":8,\"expand\":2,\"k\":3},"
    "{\"op\":\"maxpool\",\"k\":3,\"stride\":2,\"padding\":\"same\"},"
    "{\"op\":\"avgpool\",\"k\":2,\"stride\":1,\"padding\":\"same\"},"
    "{\"op\":\"gap\"},{\"op\":\"dropout\",\"rate\":0.3},{\"op\":\"fc\",\"out\":5}]}";
/* conv with bias and no batch-norm, valid padding; avgpool; flatten of a spatial map (NHWC
 * order); fc relu; fc without bias */
static const char *ARCH_B =
    "{\"input\":[8,8,2],\"classes\":3,\"layers\":["
    "{\"op\":\"conv\",\"out\":4,\"k\":3,\"padding\":\"valid\",\"bn\":false},"
    "{\"op\":\"avgpool\",\"k\":2},{\"op\":\"flatten\"},"
    "{\"op\":\"fc\",\"out\":16,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":3,\"bias\":false}]}";

#define BATCH 4

static char *src_path(const char *rel) {
  static char buf[1024];
  const char *dir = getenv("NAS_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", dir ? dir : NAS_SOURCE_DIR, rel);
  return buf;
}

/* Builds a net and gives its batch-norms non-trivial statistics and affine parameters. */
static nas_net *build(const char *json, uint64_t seed) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(json, "t.json", 16, seed, &n, &e)) fail_msg("build: %s", e.msg);
  nas_rng r;
  nas_rng_seed(&r, seed + 100);
  for (int i = 0; i < n->g->n; i++) {
    nas_node *nd = &n->g->nodes[i];
    const char *t = strrchr(nd->name, '.');
    if (!t || nd->kind == NAS_NODE_OP) continue;
    size_t cnt = nas_shape_numel(&nd->shape);
    for (size_t k = 0; k < cnt; k++) {
      float u = nas_rng_uniform(&r);
      if (!strcmp(t, ".mean") || !strcmp(t, ".beta")) nd->val[k] = (u - 0.5f) * 0.4f;
      if (!strcmp(t, ".var") || !strcmp(t, ".gamma")) nd->val[k] = 0.5f + u;
    }
  }
  n->g->training = 0;
  return n;
}

static void make_noise(nas_dataset *ds, const nas_net *n, int count, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  ds->n = count, ds->h = n->in_h, ds->w = n->in_w, ds->c = n->in_c, ds->classes = n->classes;
  size_t per = (size_t)ds->h * ds->w * ds->c;
  ds->x = malloc((size_t)count * per * sizeof(float));
  ds->y = malloc((size_t)count * sizeof(int));
  for (size_t i = 0; i < (size_t)count * per; i++) ds->x[i] = nas_rng_normal(&r);
  for (int i = 0; i < count; i++) ds->y[i] = (int)nas_rng_below(&r, (uint64_t)ds->classes);
}

/* Eval-mode float forward of the first `batch` samples of x; logits into out. */
static void forward(nas_net *n, const float *x, int batch, float *out) {
  size_t per = (size_t)n->in_h * n->in_w * n->in_c;
  memcpy(n->g->nodes[n->input].val, x, sizeof(float) * per * (size_t)batch);
  n->g->training = 0;
  nas_graph_forward(n->g, batch, n->logits);
  memcpy(out, n->g->nodes[n->logits].val, sizeof(float) * (size_t)batch * (size_t)n->classes);
}

static char tmpdir[64];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nas-onnx-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- structure (no runtime needed) ----------------------------------------------------------- */

static Onnx__ModelProto *load(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static uint8_t buf[1 << 20];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(len > 0 && len < sizeof buf);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  assert_non_null(m);
  return m;
}

static int count_op(const Onnx__GraphProto *g, const char *op) {
  int k = 0;
  for (size_t i = 0; i < g->n_node; i++) k += !strcmp(g->node[i]->op_type, op);
  return k;
}

static void test_structure(void **state) {
  (void)state;
  nas_net *n = build(ARCH_A, 1);
  nas_err e = {0};
  char path[128];
  snprintf(path, sizeof path, "%s/a.onnx", tmpdir);
  assert_int_equal(nas_onnx_export_float(n, path, &e), NAS_OK);
  Onnx__ModelProto *m = load(path);
  assert_int_equal(m->ir_version, 8);
  assert_int_equal(m->n_opset_import, 1);
  assert_int_equal(m->opset_import[0]->version, 13);
  const Onnx__GraphProto *g = m->graph;
  /* conv, dw+pw, expand+dw+project = 6 Conv (BN folded); 2 weights + 2 biases... */
  assert_int_equal(count_op(g, "Conv"), 6);
  assert_int_equal(count_op(g, "BatchNormalization"), 0);
  assert_int_equal(count_op(g, "Relu"), 3);
  assert_int_equal(count_op(g, "Clip"), 2);
  assert_int_equal(count_op(g, "Add"), 1);
  assert_int_equal(count_op(g, "MaxPool"), 1);
  assert_int_equal(count_op(g, "AveragePool"), 1);
  assert_int_equal(count_op(g, "GlobalAveragePool"), 1);
  assert_int_equal(count_op(g, "Gemm"), 1);
  assert_int_equal(count_op(g, "Transpose"), 1);
  /* Transpose, 6 Conv, 3 Relu, 2 Clip, Add, 2 pools, GAP+Flatten, Gemm */
  assert_int_equal(g->n_node, 18);
  /* 6 x (w, b) + fc (w, b) + clip min/max */
  assert_int_equal(g->n_initializer, 16);
  assert_int_equal(g->n_input, 1);
  assert_string_equal(g->input[0]->name, "input");
  const Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
  assert_int_equal(s->n_dim, 4);
  assert_string_equal(s->dim[0]->dim_param, "N");
  assert_int_equal(s->dim[1]->dim_value, 9);
  assert_int_equal(s->dim[3]->dim_value, 3);
  assert_int_equal(g->n_output, 1);
  assert_string_equal(g->output[0]->name, "logits");
  /* the dwconv (second Conv) is grouped, its weight [8,1,3,3] */
  int conv = 0;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *nd = g->node[i];
    if (strcmp(nd->op_type, "Conv") || conv++ != 1) continue;
    int64_t group = 0;
    for (size_t a = 0; a < nd->n_attribute; a++)
      if (!strcmp(nd->attribute[a]->name, "group")) group = nd->attribute[a]->i;
    assert_int_equal(group, 8);
    for (size_t t = 0; t < g->n_initializer; t++)
      if (!strcmp(g->initializer[t]->name, nd->input[1])) {
        assert_int_equal(g->initializer[t]->n_dims, 4);
        assert_int_equal(g->initializer[t]->dims[1], 1);
      }
  }
  onnx__model_proto__free_unpacked(m, NULL);

  /* recurrent layers (once refused) export as ONNX's LSTM / GRU */
  nas_net *r = NULL;
  assert_int_equal(nas_net_build("{\"input\":[4,3,1],\"classes\":2,\"layers\":[{\"op\":\"lstm\","
                                 "\"units\":4},{\"op\":\"fc\",\"out\":2}]}", "r.json", 2, 1, &r, &e),
                   NAS_OK);
  assert_int_equal(nas_onnx_export_float(r, path, &e), NAS_OK);
  Onnx__ModelProto *mr = load(path);
  assert_int_equal(count_op(mr->graph, "LSTM"), 1);
  onnx__model_proto__free_unpacked(mr, NULL);
  nas_net_free(r);
  nas_net_free(n);
}

static void test_qdq_structure(void **state) {
  (void)state;
  nas_net *n = build(ARCH_B, 2);
  nas_dataset d;
  make_noise(&d, n, 64, 3);
  nas_calib c;
  nas_err e = {0};
  assert_int_equal(nas_calibrate(n, &d, NULL, &c, &e), NAS_OK);
  char path[128];
  snprintf(path, sizeof path, "%s/bq.onnx", tmpdir);
  assert_int_equal(nas_onnx_export_qdq(n, &c, path, &e), NAS_OK);
  Onnx__ModelProto *m = load(path);
  const Onnx__GraphProto *g = m->graph;
  /* points: input, conv+relu, fc1 relu, fc2 (logits); plus the avgpool's requantisation */
  assert_int_equal(count_op(g, "QuantizeLinear"), 5);
  /* 5 activations + 3 weights + 2 biases */
  assert_int_equal(count_op(g, "DequantizeLinear"), 10);
  assert_int_equal(count_op(g, "Gemm"), 2);
  assert_int_equal(count_op(g, "Transpose"), 2); /* the input, and NHWC before flatten */
  assert_string_equal(g->output[0]->name, "logits");
  onnx__model_proto__free_unpacked(m, NULL);
  nas_calib_free(&c);
  free(d.x), free(d.y);
  nas_net_free(n);
}

/* ---- onnxruntime ----------------------------------------------------------------------------- */

static const char *ort_dir(void) {
  const char *d = getenv("NAS_ORT_DIR");
  return d && *d ? d : "/opt/nas-ort/node_modules";
}

/* Skips the current test unless onnxruntime-node and node are there. */
static void need_ort(void) {
  char p[1024];
  snprintf(p, sizeof p, "%s/onnxruntime-node/package.json", ort_dir());
  if (access(p, R_OK) != 0 || system("command -v node >/dev/null 2>&1") != 0)
    test_skip("onnxruntime-node not found in %s (or no node); install with: mkdir -p "
              "/opt/nas-ort && cd /opt/nas-ort && ONNXRUNTIME_NODE_INSTALL=skip npm install "
              "onnxruntime-node@1.30.0 (or set NAS_ORT_DIR)", ort_dir());
}

/* Runs model on x [batch,H,W,C] in onnxruntime; logits into out. */
static void ort_run(const char *model, const nas_net *n, const float *x, int batch, float *out) {
  char in[256], outp[256], cmd[2048];
  snprintf(in, sizeof in, "%s/in.bin", tmpdir);
  snprintf(outp, sizeof outp, "%s/out.bin", tmpdir);
  size_t nx = (size_t)batch * n->in_h * n->in_w * n->in_c, ny = (size_t)batch * n->classes;
  FILE *f = fopen(in, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(x, sizeof(float), nx, f), nx);
  fclose(f);
  snprintf(cmd, sizeof cmd, "NODE_PATH='%s' node '%s' '%s' '%s' '%s' %d,%d,%d,%d", ort_dir(),
           src_path("tests/onnx_check.js"), model, in, outp, batch, n->in_h, n->in_w, n->in_c);
  assert_int_equal(system(cmd), 0);
  f = fopen(outp, "rb");
  assert_non_null(f);
  assert_int_equal(fread(out, sizeof(float), ny, f), ny);
  fclose(f);
}

static void check_float(const char *arch, uint64_t seed, const char *file) {
  nas_net *n = build(arch, seed);
  nas_dataset d;
  make_noise(&d, n, BATCH, seed + 7);
  nas_err e = {0};
  char path[128];
  snprintf(path, sizeof path, "%s/%s", tmpdir, file);
  assert_int_equal(nas_onnx_export_float(n, path, &e), NAS_OK);
  float want[BATCH * 8], got[BATCH * 8];
  forward(n, d.x, BATCH, want);
  ort_run(path, n, d.x, BATCH, got);
  double worst = 0;
  for (int i = 0; i < BATCH * n->classes; i++) {
    double diff = fabs((double)want[i] - got[i]);
    if (diff > worst) worst = diff;
  }
  print_message("%s: float max |onnxruntime - nas| = %.3g over %d logits\n", file, worst,
                BATCH * n->classes);
  assert_true(worst <= 1e-4);
  free(d.x), free(d.y);
  nas_net_free(n);
}

static void test_ort_float(void **state) {
  (void)state;
  need_ort();
  check_float(ARCH_A, 1, "fa.onnx");
  check_float(ARCH_B, 2, "fb.onnx");
  /* recurrent: an LSTM, a GRU, a conv front end into a sequence GRU into an LSTM */
  check_float("{\"input\":[6,4,1],\"classes\":3,\"layers\":[{\"op\":\"lstm\",\"units\":5},"
              "{\"op\":\"fc\",\"out\":3}]}", 3, "flstm.onnx");
  check_float("{\"input\":[6,4,1],\"classes\":3,\"layers\":[{\"op\":\"gru\",\"units\":5},"
              "{\"op\":\"fc\",\"out\":3}]}", 4, "fgru.onnx");
  check_float("{\"input\":[8,6,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":3,"
              "\"k\":[3,3],\"padding\":\"valid\",\"bn\":false},{\"op\":\"gru\",\"units\":6,"
              "\"return_sequences\":true},{\"op\":\"lstm\",\"units\":5},{\"op\":\"fc\",\"out\":4}]}",
              5, "fcrnn.onnx");
}

/* onnxruntime runs the QDQ graph as a float simulation: DequantizeLinear, the float op, then
 * QuantizeLinear rounding half to even, so every layer is correctly rounded from float. The
 * int8 runtime follows TFLite Micro instead: requantisation by a Q31 multiplier with two
 * roundings (one step off near a tie, by up to 0.5 * 2^-right_shift of a step) and an
 * AVERAGE_POOL_2D that rounds exact ties of the raw int8 mean away from zero, where the float
 * chain breaks them by rounding noise. A 2x2 average pool has such ties in about one output of
 * eight, and a following fc amplifies a one-step flip of its inputs (ARCH_B: avgpool -> fc16 ->
 * fc3 reaches 2 steps on these inputs; ARCH_A stays within 1). So two checks:
 *   - the export carries exactly the deployed graph's arithmetic content (weights, biases,
 *     scales, zero points, per-channel axes, layouts): onnxruntime agrees within 1 step with a
 *     correctly rounded double-precision recomputation of the lowered int8 graph
 *     (deploy_emulate_rounded; 0 steps on ARCH_A, 1 on ARCH_B from one float-noise tie);
 *   - the int8 runtime's logits are within tol_steps of onnxruntime's. */
static void check_qdq(const char *arch, uint64_t seed, const char *file, double tol_steps) {
  nas_net *n = build(arch, seed);
  nas_dataset d;
  make_noise(&d, n, 64, seed + 7);
  nas_err e = {0};
  nas_calib c;
  assert_int_equal(nas_calibrate(n, &d, NULL, &c, &e), NAS_OK);
  char path[128];
  snprintf(path, sizeof path, "%s/%s", tmpdir, file);
  assert_int_equal(nas_onnx_export_qdq(n, &c, path, &e), NAS_OK);
  nas_g8_graph g8 = {0};
  if (nas_lower(n, &c, NULL, &g8, &e)) fail_msg("lower: %s", e.msg);
  const nas_g8_tensor *ot = &g8.tensors[g8.output];
  float got[BATCH * 8];
  ort_run(path, n, d.x, BATCH, got);
  size_t per = (size_t)n->in_h * n->in_w * n->in_c;
  int8_t *qi = malloc(per), qo[8];
  double worst = 0, worst_emu = 0;
  for (int s = 0; s < BATCH; s++) {
    nas_g8_quantize_input(&g8, d.x + (size_t)s * per, qi);
    assert_int_equal(nas_g8_run(&g8, qi, qo, &e), NAS_OK);
    int8_t **emu = deploy_emulate_rounded(&g8, qi);
    for (int k = 0; k < n->classes; k++) {
      double deq = ot->scale[0] * (qo[k] - ot->zero_point[0]);
      double steps = fabs(deq - got[s * n->classes + k]) / ot->scale[0];
      if (steps > worst) worst = steps;
      deq = ot->scale[0] * (emu[g8.output][k] - ot->zero_point[0]);
      steps = fabs(deq - got[s * n->classes + k]) / ot->scale[0];
      if (steps > worst_emu) worst_emu = steps;
    }
    for (int i = 0; i < g8.ntensors; i++) free(emu[i]);
    free(emu);
  }
  print_message("%s: QDQ max |onnxruntime - int8 runtime| = %.3g steps (bound %g), "
                "|onnxruntime - correctly rounded int8 graph| = %.3g steps (bound 1; scale %g)\n",
                file, worst, tol_steps, worst_emu, ot->scale[0]);
  assert_true(worst_emu <= 1.0 + 1e-3);
  assert_true(worst <= tol_steps + 1e-3);
  free(qi);
  nas_g8_graph_free(&g8);
  nas_calib_free(&c);
  free(d.x), free(d.y);
  nas_net_free(n);
}

static void test_ort_qdq(void **state) {
  (void)state;
  need_ort();
  check_qdq(ARCH_A, 1, "qa.onnx", 1.0);
  check_qdq(ARCH_B, 2, "qb.onnx", 2.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_structure),
      cmocka_unit_test(test_qdq_structure),
      cmocka_unit_test(test_ort_float),
      cmocka_unit_test(test_ort_qdq),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
