/* Winograd-aware convolutions, the int8 side: the host kernel (deploy/kernels_wino.c) and the
 * MCU runtime's (runtime/nasrt_wino.c) agree byte for byte on static (weights pre-transformed
 * or transformed at run time) and flex layers, F2 and F4, 8 to 16 bits, odd sizes and both
 * paddings; the C export compiles warning-free and computes the same bytes (host portable and
 * SMLAD paths, Cortex-M4 in the emulator); a QAT-trained Winograd network's fake-quant forward
 * equals the int8 graph (layer by layer and end to end, as tests/test_qat.c checks direct
 * convolutions); TFLite and ONNX export write a static layer as a standard convolution and
 * refuse a flex one. */
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

#include "tests/test_util.h"
#include "deploy/lower.h"
#include "deploy/wino8.h"
#include "export/export_c.h"
#include "export/export_onnx.h"
#include "export/export_tflite.h"
#include "latency/emulator.h"
#include "latency/target.h"
#include "train/qat.h"
#include "train/trainer.h"

/* Builds arch, optionally perturbs every flex table (PARAM At/Bt/G) so that the generic table
 * paths run with learned-looking values, calibrates on noise and lowers with wino_rt. */
static void lowered(const char *arch, int perturb, int wino_rt, nas_g8_graph *g) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(arch, "t.json", 8, 7, &n, &e)) fail_msg("build: %s", e.msg);
  nas_rng r;
  nas_rng_seed(&r, 77);
  for (int i = 0; perturb && i < n->g->n; i++) {
    nas_node *nd = &n->g->nodes[i];
    const char *t = strrchr(nd->name, '.');
    if (nd->kind != NAS_NODE_PARAM || !t || (strcmp(t, ".At") && strcmp(t, ".Bt") && strcmp(t, ".G")))
      continue;
    for (size_t k = 0; k < nas_shape_numel(&nd->shape); k++)
      nd->val[k] += (nas_rng_uniform(&r) * 2 - 1) * 0.15f * (fabsf(nd->val[k]) + 0.2f);
  }
  nas_dataset d = {0};
  test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
  nas_lower_cfg lc = {.softmax = 0, .wino_rt = wino_rt};
  if (nas_quantize_net(n, &d, NULL, &lc, g, &e)) fail_msg("lower: %s", e.msg);
  free(d.x), free(d.y);
  nas_net_free(n);
}

/* Architectures: every combination the kernels distinguish. */
static const char *const ARCHS[] = {
    /* F2 static, 8 bits, same; 3 input channels (not a multiple of 4); odd map */
    "{\"input\":[7,9,3],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":5,\"algo\":\"wino2\"},"
    "{\"op\":\"conv\",\"out\":6,\"algo\":\"wino4\",\"wino_bits\":12,\"padding\":\"valid\","
    "\"act\":\"relu6\"},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}",
    /* flex F4 (16 bits) and flex F2 (8 bits), a bias without batch-norm */
    "{\"input\":[9,6,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":7,\"algo\":\"wino4\","
    "\"flex\":true,\"wino_bits\":16},{\"op\":\"conv\",\"out\":4,\"algo\":\"wino2\",\"flex\":true,"
    "\"bn\":false,\"act\":\"none\"},{\"op\":\"maxpool\"},{\"op\":\"flatten\"},{\"op\":\"fc\","
    "\"out\":3}]}",
};

static void random_input(int8_t *in, size_t n, nas_rng *r, int k) {
  for (size_t i = 0; i < n; i++)
    in[i] = k == 0 ? -128 : k == 1 ? 127 : (int8_t)((int)nas_rng_below(r, 256) - 128);
}

static void test_host_equals_runtime(void **st) {
  (void)st;
  nas_rng r;
  nas_rng_seed(&r, 3);
  for (size_t a = 0; a < sizeof ARCHS / sizeof ARCHS[0]; a++) {
    nas_g8_graph g[2];
    lowered(ARCHS[a], 1, 0, &g[0]);
    lowered(ARCHS[a], 1, 1, &g[1]);
    int flex = 0, n = nas_g8_wino_count(&g[0], &flex);
    assert_int_equal(n, 2);
    assert_int_equal(flex, a == 1 ? 2 : 0);
    const size_t ni = nas_g8_numel(&g[0].tensors[g[0].input]), no = nas_g8_numel(&g[0].tensors[g[0].output]);
    int8_t *in = malloc(ni), *o[4];
    for (int k = 0; k < 4; k++) o[k] = malloc(no);
    nas_err e = {0};
    int differs = 0;
    int8_t *first = malloc(no);
    for (int s = 0; s < 12; s++) {
      random_input(in, ni, &r, s);
      assert_int_equal(nas_g8_run(&g[0], in, o[0], &e), NAS_OK);
      assert_int_equal(nas_g8_rt_run(&g[0], in, o[1], &e), NAS_OK);
      assert_int_equal(nas_g8_run(&g[1], in, o[2], &e), NAS_OK);
      assert_int_equal(nas_g8_rt_run(&g[1], in, o[3], &e), NAS_OK);
      for (int k = 1; k < 4; k++)
        if (memcmp(o[0], o[k], no)) fail_msg("arch %zu, input %d: result %d differs from the host's", a, s, k);
      if (s == 0) memcpy(first, o[0], no);
      else differs |= memcmp(first, o[0], no) != 0;
    }
    assert_true(differs); /* the outputs depend on the input */
    free(in), free(first);
    for (int k = 0; k < 4; k++) free(o[k]);
    nas_g8_graph_free(&g[0]), nas_g8_graph_free(&g[1]);
  }
}

/* The run-time weight transform costs arena, not flash: the scratch tensor grows by
 * co * P * ci4 bytes and the pre-transformed U leaves the C export. */
static void test_weight_modes(void **st) {
  (void)st;
  nas_g8_graph g[2];
  lowered(ARCHS[0], 0, 0, &g[0]);
  lowered(ARCHS[0], 0, 1, &g[1]);
  for (int k = 0; k < 2; k++) {
    const nas_g8_op *op = &g[k].ops[0];
    assert_int_equal(op->kind, NAS_G8_WINOGRAD);
    assert_int_equal(op->wino_rt, k);
    const nas_g8_tensor *sc = &g[k].tensors[op->in[3]];
    assert_int_equal((int)nas_g8_numel(sc), NASRT_WINO_SCRATCH(2, 3, 5, k));
  }
  assert_int_equal(NASRT_WINO_SCRATCH(2, 3, 5, 1) - NASRT_WINO_SCRATCH(2, 3, 5, 0), 5 * 16 * 4);
  nas_g8_graph_free(&g[0]), nas_g8_graph_free(&g[1]);
}

/* ---- C export ----------------------------------------------------------------------------- */

static int run_cmd(const char *dir, const char *cmd) {
  char buf[4096];
  snprintf(buf, sizeof buf, "cd '%s' && %s > log.txt 2>&1", dir, cmd);
  return system(buf);
}

static void fail_with_log(const char *dir, const char *what) {
  char p[1200];
  snprintf(p, sizeof p, "%s/log.txt", dir);
  fail_msg("%s failed:\n%.3000s", what, test_slurp(p));
}

static void compare_file(const char *dir, const char *file, const int8_t *ref, size_t n, const char *what) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  int8_t *got = malloc(n + 1);
  size_t k = fread(got, 1, n + 1, f);
  fclose(f);
  if (k != n) fail_msg("%s: %zu bytes, expected %zu", what, k, n);
  for (size_t i = 0; i < n; i++)
    if (got[i] != ref[i]) fail_msg("%s: byte %zu is %d, the host computes %d", what, i, got[i], ref[i]);
  free(got);
}

static void check_c_export(const nas_g8_graph *g, const char *tag) {
  char dir[] = "/tmp/nas_wino_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  nas_err e = {0};
  if (nas_c_export(g, "wm", dir, &e)) fail_msg("%s: export: %s", tag, e.msg);
  enum { NIN = 6 };
  const size_t ni = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *in = malloc(ni * NIN), *ref = malloc(no * NIN);
  nas_rng r;
  nas_rng_seed(&r, 9);
  for (int k = 0; k < NIN; k++) {
    random_input(in + k * ni, ni, &r, k);
    if (nas_g8_run(g, in + k * ni, ref + k * no, &e)) fail_msg("%s: run: %s", tag, e.msg);
  }
  char p[1200];
  snprintf(p, sizeof p, "%s/in.bin", dir);
  FILE *f = fopen(p, "wb");
  assert_int_equal(fwrite(in, 1, ni * NIN, f), ni * NIN);
  fclose(f);
  snprintf(p, sizeof p, "%s/main.c", dir);
  f = fopen(p, "w");
  fputs("#include <stdio.h>\n#include \"wm.h\"\n"
        "int main(int argc, char **argv) {\n"
        "  static int8_t in[WM_INPUT_SIZE], out[WM_OUTPUT_SIZE];\n"
        "  FILE *fi = fopen(argv[1], \"rb\"), *fo = fopen(argv[2], \"wb\");\n"
        "  if (argc != 3 || !fi || !fo) return 3;\n"
        "  while (fread(in, 1, sizeof in, fi) == sizeof in) {\n"
        "    if (model_invoke(in, out)) return 4;\n"
        "    if (fwrite(out, 1, sizeof out, fo) != sizeof out) return 5;\n  }\n"
        "  fclose(fi);\n  return fclose(fo) ? 6 : 0;\n}\n", f);
  fclose(f);
  /* host, portable loops; the runtime also as pedantic C99 */
  if (run_cmd(dir, "cc -std=c11 -Wall -Wextra -Werror -O1 -o prog main.c wm.c nasrt_*.c && "
                   "cc -std=c99 -pedantic -Wall -Wextra -Wshadow -Wstrict-prototypes "
                   "-Wmissing-prototypes -Werror -O1 -c nasrt_*.c && ./prog in.bin out.bin"))
    fail_with_log(dir, tag);
  compare_file(dir, "out.bin", ref, no * NIN, tag);
  /* host, the DSP path with a stand-in arm_acle.h (the intrinsics of runtime/nasrt_simd.h,
     as tests/test_export_c.c) */
  snprintf(p, sizeof p, "%s/arm_acle.h", dir);
  f = fopen(p, "w");
  fputs("#include <stdint.h>\n"
        "static inline uint32_t __smlad(uint32_t x, uint32_t y, uint32_t acc) {\n"
        "  int32_t p = (int32_t)(int16_t)(x & 0xffffu) * (int16_t)(y & 0xffffu) +\n"
        "              (int32_t)(int16_t)(x >> 16) * (int16_t)(y >> 16);\n"
        "  return acc + (uint32_t)p;\n}\n"
        "static inline uint32_t __sxtb16(uint32_t x) {\n"
        "  return (uint16_t)(int16_t)(int8_t)(x & 0xffu) |\n"
        "         ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xffu) << 16);\n}\n"
        "static inline int32_t __qadd(int32_t a, int32_t b) {\n"
        "  int64_t s = (int64_t)a + b;\n"
        "  return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : (int32_t)s;\n}\n"
        "static inline uint32_t __sxtab16(uint32_t a, uint32_t x) {\n"
        "  uint32_t e = __sxtb16(x);\n"
        "  return (uint16_t)(a + e) | ((((a >> 16) + (e >> 16)) & 0xffffu) << 16);\n}\n"
        "static inline int32_t __smlabb(int32_t x, int32_t y, int32_t acc) {\n"
        "  return (int32_t)((uint32_t)acc + (uint32_t)((int16_t)(x & 0xffff) * (int16_t)(y & 0xffff)));\n}\n"
        "static inline int32_t __smlatt(int32_t x, int32_t y, int32_t acc) {\n"
        "  return (int32_t)((uint32_t)acc + (uint32_t)((int16_t)((uint32_t)x >> 16) *\n"
        "                                              (int16_t)((uint32_t)y >> 16)));\n}\n", f);
  fclose(f);
  if (run_cmd(dir, "cc -std=c11 -Wall -Wextra -Werror -O1 -D__ARM_FEATURE_DSP=1 -I. -o prog_dsp "
                   "main.c wm.c nasrt_*.c && ./prog_dsp in.bin out_dsp.bin"))
    fail_with_log(dir, tag);
  compare_file(dir, "out_dsp.bin", ref, no * NIN, tag);
  /* Cortex-M0+ and M4, warning-free */
  char cc[4096];
  if (nas_emu_find_cc(NULL, cc, sizeof cc, &e) == NAS_OK) {
    static const char *const cores[] = {"cortex-m0plus", "cortex-m4"};
    for (int c = 0; c < 2; c++) {
      char cmd[600];
      snprintf(cmd, sizeof cmd,
               "for s in wm.c nasrt_*.c; do arm-none-eabi-gcc -mcpu=%s -mthumb -O2 -std=c11 -Wall "
               "-Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -DNAS_LAYER_MARK "
               "-c $s -o $s.o || exit 1; done", cores[c]);
      if (run_cmd(dir, cmd)) fail_with_log(dir, cores[c]);
    }
  } else {
    test_skip_part("%s: cross compile: %s", tag, e.msg);
  }
  free(in), free(ref);
  if (test_rm_rf(dir)) print_message("could not remove %s\n", dir);
}

static void test_c_export(void **st) {
  (void)st;
  for (int rt = 0; rt < 2; rt++)
    for (size_t a = 0; a < sizeof ARCHS / sizeof ARCHS[0]; a++) {
      nas_g8_graph g;
      lowered(ARCHS[a], 1, rt, &g);
      char tag[64];
      snprintf(tag, sizeof tag, "arch %zu%s", a, rt ? " (run-time weights)" : "");
      check_c_export(&g, tag);
      nas_g8_graph_free(&g);
    }
}

/* The SMLAD path on the emulated Cortex-M4 (the real intrinsics) and the M0+ (portable) compute
 * the host's bytes. */
static void test_emulated(void **st) {
  (void)st;
  char cc[4096];
  nas_err e = {0};
  if (nas_emu_find_cc(NULL, cc, sizeof cc, &e) != NAS_OK || !nas_emu_have_unicorn()) {
    test_skip("%s", e.msg[0] ? e.msg : "built without Unicorn");
  }
  static const char *const targets[] = {"stm32l4r5zi", "stm32g0b1"};
  for (size_t a = 0; a < sizeof ARCHS / sizeof ARCHS[0]; a++)
    for (int t = 0; t < 2; t++) {
      nas_g8_graph g;
      lowered(ARCHS[a], 1, t, &g); /* run-time weights on the M0+ */
      nas_target *tg = NULL;
      if (nas_target_open(targets[t], NULL, &tg, &e)) fail_msg("%s", e.msg);
      nas_emu_fw *fw = NULL;
      if (nas_emu_build(&g, tg, NULL, &fw, &e)) fail_msg("%s: build: %s", targets[t], e.msg);
      const size_t ni = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(&g.tensors[g.output]);
      int8_t *in = malloc(ni), *ref = malloc(no);
      nas_rng r;
      nas_rng_seed(&r, 21);
      random_input(in, ni, &r, 2);
      assert_int_equal(nas_g8_run(&g, in, ref, &e), NAS_OK);
      nas_emu_result res;
      if (nas_emu_run(fw, in, 0, &res, &e)) fail_msg("%s: run: %s", targets[t], e.msg);
      assert_int_equal(res.out_n, no);
      if (memcmp(res.output, ref, no)) fail_msg("arch %zu on %s: emulated output differs", a, targets[t]);
      nas_emu_result_free(&res);
      nas_emu_fw_free(fw);
      nas_target_free(tg);
      free(in), free(ref);
      nas_g8_graph_free(&g);
    }
}

/* ---- QAT network == int8 graph ------------------------------------------------------------ */

static const char *QARCH =
    "{\"input\":[8,8,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8,\"algo\":\"wino2\"},"
    "{\"op\":\"conv\",\"out\":8,\"algo\":\"wino4\",\"flex\":true,\"wino_bits\":12},"
    "{\"op\":\"maxpool\"},{\"op\":\"conv\",\"out\":12,\"algo\":\"wino4\",\"padding\":\"valid\"},"
    "{\"op\":\"conv\",\"out\":12,\"algo\":\"wino2\",\"flex\":true,\"act\":\"relu6\"},"
    "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}";

static void test_qat_equals_int8(void **st) {
  (void)st;
  nas_data d = {0};
  test_make_blob_task(&d.train, 1200, 11);
  test_make_blob_task(&d.val, 200, 12);
  test_make_blob_task(&d.test, 400, 13);
  nas_net *net = NULL;
  nas_err e = {0};
  if (nas_net_build(QARCH, "t.json", 32, 4, &net, &e)) fail_msg("build: %s", e.msg);
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 1, cfg.batch = 32, cfg.lr = 0.01f, cfg.seed = 4;
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
  cfg.lr = 0.002f;
  if (nas_train(q->net, &d, &cfg, &tr, &e)) fail_msg("qat train: %s", e.msg);
  if (nas_qat_export(q, net, &c, &e)) fail_msg("export: %s", e.msg);
  nas_g8_graph g8;
  if (nas_lower(net, &c, NULL, &g8, &e)) fail_msg("lower: %s", e.msg);
  assert_int_equal(nas_g8_wino_count(&g8, NULL), 4);
  /* layer by layer, every operator fed the QAT network's values of its inputs */
  nas_graph *qg = q->net->g;
  qg->training = 0;
  int8_t **act = calloc((size_t)g8.ntensors, sizeof *act);
  int *node = malloc(sizeof *node * (size_t)g8.ntensors);
  for (int t = 0; t < g8.ntensors; t++) {
    const nas_g8_tensor *T = &g8.tensors[t];
    node[t] = -1;
    if (T->data) continue;
    act[t] = calloc(nas_g8_numel(T), 1);
    if (strstr(T->name, ".tiles")) continue; /* a Winograd operator's scratch */
    char nm[64];
    snprintf(nm, sizeof nm, "%s.fq", T->name);
    if ((node[t] = nas_graph_find(qg, nm)) < 0) node[t] = nas_graph_find(qg, T->name);
    if (node[t] < 0 && strstr(T->name, ".pool")) {
      snprintf(nm, sizeof nm, "%.*s.fq", (int)(strstr(T->name, ".pool") - T->name), T->name);
      node[t] = nas_graph_find(qg, nm);
    }
    if (node[t] < 0) fail_msg("int8 tensor '%s' has no QAT node", T->name);
  }
  long exact = 0, off1 = 0, worse = 0;
  static int8_t exp_out[8 * 8 * 32];
  for (int s = 0; s < 50; s++) {
    memcpy(qg->nodes[q->net->input].val, d.test.x + (size_t)s * 64, 64 * sizeof(float));
    nas_graph_forward(qg, 1, -1);
    for (int t = 0; t < g8.ntensors; t++) {
      if (node[t] < 0) continue;
      const nas_g8_tensor *T = &g8.tensors[t];
      for (size_t k = 0; k < nas_g8_numel(T); k++) {
        double v = (double)qg->nodes[node[t]].val[k] / T->scale[0] + T->zero_point[0];
        if (fabs(v - round(v)) > 1e-3 || v < -128.5 || v > 127.5)
          fail_msg("QAT value of '%s' is off the int8 grid: %g steps", T->name, v);
        act[t][k] = (int8_t)lround(v);
      }
    }
    for (int o = 0; o < g8.nops; o++) {
      int t = g8.ops[o].out;
      size_t n = nas_g8_numel(&g8.tensors[t]);
      assert_true(n <= sizeof exp_out);
      memcpy(exp_out, act[t], n);
      assert_int_equal(nas_g8_run_op(&g8, o, act, &e), NAS_OK);
      for (size_t k = 0; k < n; k++) {
        int dv = abs((int)act[t][k] - exp_out[k]);
        exact += dv == 0, off1 += dv == 1, worse += dv > 1;
        if (dv > 1 && getenv("NAS_WINO_DEBUG"))
          print_message("op %d (%s) elem %zu: int8 %d, QAT %d\n", o, g8.tensors[t].name, k, act[t][k], exp_out[k]);
      }
      memcpy(act[t], exp_out, n);
    }
  }
  print_message("layer by layer: %ld equal, %ld one step apart, %ld more\n", exact, off1, worse);
  assert_true(worse == 0);
  assert_true(exact >= (exact + off1) * 97 / 100);
  for (int t = 0; t < g8.ntensors; t++) free(act[t]);
  free(act), free(node);
  int agree = 0;
  int8_t qin[64], qout[4];
  for (int s = 0; s < 200; s++) {
    memcpy(qg->nodes[q->net->input].val, d.test.x + (size_t)s * 64, 64 * sizeof(float));
    nas_graph_forward(qg, 1, q->net->logits);
    const float *z = qg->nodes[q->net->logits].val;
    nas_g8_quantize_input(&g8, d.test.x + (size_t)s * 64, qin);
    assert_int_equal(nas_g8_run(&g8, qin, qout, &e), NAS_OK);
    int bf = 0, bq = 0;
    for (int k = 1; k < 4; k++) {
      if (z[k] > z[bf]) bf = k;
      if (qout[k] > qout[bq]) bq = k;
    }
    agree += bf == bq;
  }
  print_message("argmax agrees on %d/200\n", agree);
  assert_true(agree >= 196);
  double acc_q, acc8;
  assert_int_equal(nas_evaluate(q->net, &d.test, &acc_q, NULL, &e), NAS_OK);
  assert_int_equal(nas_g8_accuracy(&g8, &d.test, 0, &acc8, &e), NAS_OK);
  print_message("QAT fake-quant accuracy %.4f, int8 graph %.4f\n", acc_q, acc8);
  assert_true(fabs(acc_q - acc8) <= 0.01);
  assert_true(acc8 > 0.8);
  nas_g8_graph_free(&g8);
  nas_calib_free(&c);
  nas_qat_free(q);
  nas_net_free(net);
  free(d.train.x), free(d.train.y), free(d.val.x), free(d.val.y), free(d.test.x), free(d.test.y);
}

/* ---- TFLite ---------------------------------------------------------------------------------- */

static void test_tflite(void **st) {
  (void)st;
  nas_g8_graph g, back;
  lowered(ARCHS[0], 0, 0, &g);
  uint8_t *buf = NULL;
  size_t len = 0;
  nas_err e = {0};
  if (nas_tflite_write_mem(&g, "t", &buf, &len, &e)) fail_msg("tflite: %s", e.msg);
  assert_int_equal(nas_tflite_parse(buf, len, "t.tflite", &back, &e), NAS_OK);
  int convs = 0;
  for (int i = 0; i < back.nops; i++) convs += back.ops[i].kind == NAS_G8_CONV_2D;
  assert_int_equal(convs, 2);
  assert_int_equal(nas_g8_wino_count(&back, NULL), 0);
  int noted = 0;
  for (size_t k = 0; k + 18 <= len && !noted; k++) noted = !memcmp(buf + k, "written as CONV_2D", 18);
  assert_true(noted); /* the description carries the note */
  /* the direct result is close to (not equal to) the Winograd-aware one */
  const size_t ni = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(&g.tensors[g.output]);
  int8_t in[7 * 9 * 3], a[8], b[8];
  assert_true(ni <= sizeof in && no <= sizeof a);
  nas_rng r;
  nas_rng_seed(&r, 5);
  int maxd = 0;
  for (int s = 0; s < 10; s++) {
    random_input(in, ni, &r, 2);
    assert_int_equal(nas_g8_run(&g, in, a, &e), NAS_OK);
    assert_int_equal(nas_g8_run(&back, in, b, &e), NAS_OK);
    for (size_t k = 0; k < no; k++) maxd = abs(a[k] - b[k]) > maxd ? abs(a[k] - b[k]) : maxd;
  }
  print_message("static Winograd vs its CONV_2D rewrite: largest logit difference %d steps\n", maxd);
  assert_true(maxd <= 24);
  free(buf);
  nas_g8_graph_free(&back), nas_g8_graph_free(&g);
  /* flex: refused, naming the layer */
  lowered(ARCHS[1], 0, 0, &g);
  assert_int_equal(nas_tflite_write_mem(&g, "t", &buf, &len, &e), NAS_EINVAL);
  assert_null(buf);
  if (!strstr(e.msg, "layer 0 (conv)") || !strstr(e.msg, "flex"))
    fail_msg("message '%s' does not name the flex layer", e.msg);
  nas_g8_graph_free(&g);
}

/* ---- ONNX ---------------------------------------------------------------------------------- */

/* A static Winograd layer is written as the standard Conv (batch-norm folded): onnxruntime's
 * float result equals the network's float forward (Winograd in float is the convolution); a
 * flex layer is refused naming its layer. */
static void test_onnx(void **st) {
  (void)st;
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(ARCHS[0], "t.json", 4, 7, &n, &e)) fail_msg("%s", e.msg);
  n->g->training = 0;
  uint8_t *buf = NULL;
  size_t len = 0;
  if (nas_onnx_export_mem(n, NULL, &buf, &len, &e)) fail_msg("onnx: %s", e.msg);
  char ort[1024];
  const char *od = getenv("NAS_ORT_DIR");
  snprintf(ort, sizeof ort, "%s/onnxruntime-node/package.json", od && *od ? od : "/opt/nas-ort/node_modules");
  if (access(ort, R_OK) == 0 && system("command -v node >/dev/null 2>&1") == 0) {
    char dir[] = "/tmp/nas_wonnx_XXXXXX";
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
    char model[1200], in[1200], out[1200], cmd[4096];
    snprintf(model, sizeof model, "%s/m.onnx", dir);
    snprintf(in, sizeof in, "%s/in.bin", dir);
    snprintf(out, sizeof out, "%s/out.bin", dir);
    FILE *f = fopen(model, "wb");
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    enum { B = 4, NX = 7 * 9 * 3 };
    float x[B * NX], want[B * 4], got[B * 4];
    nas_rng r;
    nas_rng_seed(&r, 8);
    for (int i = 0; i < B * NX; i++) x[i] = nas_rng_uniform(&r) * 2 - 1;
    memcpy(n->g->nodes[n->input].val, x, sizeof x);
    nas_graph_forward(n->g, B, n->logits);
    memcpy(want, n->g->nodes[n->logits].val, sizeof want);
    f = fopen(in, "wb");
    assert_int_equal(fwrite(x, sizeof(float), B * NX, f), (size_t)(B * NX));
    fclose(f);
    const char *src = getenv("NAS_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "NODE_PATH='%s' node '%s/tests/onnx_check.js' '%s' '%s' '%s' %d,7,9,3",
             od && *od ? od : "/opt/nas-ort/node_modules", src ? src : NAS_SOURCE_DIR, model, in, out, B);
    assert_int_equal(system(cmd), 0);
    f = fopen(out, "rb");
    assert_int_equal(fread(got, sizeof(float), B * 4, f), (size_t)(B * 4));
    fclose(f);
    double worst = 0;
    for (int i = 0; i < B * 4; i++) worst = fmax(worst, fabs((double)want[i] - got[i]));
    print_message("static Winograd as ONNX Conv: max |onnxruntime - nas| = %.3g\n", worst);
    assert_true(worst <= 1e-4);
    test_rm_rf(dir);
  } else {
    print_message("onnxruntime-node not found: only the export itself checked\n");
  }
  free(buf);
  nas_net_free(n);
  if (nas_net_build(ARCHS[1], "t.json", 4, 7, &n, &e)) fail_msg("%s", e.msg);
  assert_int_equal(nas_onnx_export_mem(n, NULL, &buf, &len, &e), NAS_EINVAL);
  if (!strstr(e.msg, "layer 0 (conv)") || !strstr(e.msg, "flex")) fail_msg("message: %s", e.msg);
  nas_net_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_equals_runtime), cmocka_unit_test(test_weight_modes),
      cmocka_unit_test(test_c_export),            cmocka_unit_test(test_emulated),
      cmocka_unit_test(test_qat_equals_int8),     cmocka_unit_test(test_tflite),
      cmocka_unit_test(test_onnx),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
