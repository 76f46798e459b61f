/* C source export (export/export_c.h) and the MCU runtime (runtime/): export small lowered
 * nets and the four MLPerf Tiny models, compile the generated model and the copied runtime
 * files with the host cc (-Wall -Wextra -Werror; the runtime also as C99 -pedantic) beside a
 * small generated main.c, run it on fixed inputs and require output bytes identical to the
 * host int8 runtime (nas_g8_run), also with the SMLAD paths on the host (a stand-in
 * arm_acle.h) and with the runtime linked into this program (nas_g8_rt_run); the arena macro
 * must equal the planner's peak; the copied files must be the tree's runtime/ byte for byte.
 * With arm-none-eabi-gcc installed, the sources must also compile warning-free for Cortex-M0+,
 * M4, M7 and M33. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, strdup */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "tests/test_util.h"
#include "deploy/lower.h"
#include "export/export_c.h"

#define NIN 6 /* inputs per model */

static const char *src_dir(void) {
  const char *d = getenv("NAS_SOURCE_DIR");
  return d ? d : NAS_SOURCE_DIR;
}

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *b = malloc(cap + 1);
  size_t k;
  while (b && (k = fread(b + len, 1, cap - len, f)) > 0) {
    len += k;
    if (len == cap) {
      char *nb = realloc(b, 2 * cap + 1);
      if (!nb) free(b);
      b = nb, cap *= 2;
    }
  }
  fclose(f);
  if (b) b[len] = 0;
  if (n) *n = len;
  return b;
}

static int have_tool(const char *tool) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

static void rm_rf(const char *dir) {
  if (test_rm_rf(dir)) print_message("could not remove %s\n", dir);
}

static void compare_output(const char *dir, const char *file, const char *name, const char *tag,
                           const int8_t *ref, size_t no) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  size_t got_n = 0;
  char *got = read_all(path, &got_n);
  assert_non_null(got);
  assert_int_equal(got_n, no * NIN);
  for (int k = 0; k < NIN; k++)
    for (size_t i = 0; i < no; i++)
      if ((int8_t)got[k * no + i] != ref[k * no + i])
        fail_msg("%s%s: input %d, output %zu: C export %d, runtime %d", name, tag, k, i,
                 (int8_t)got[k * no + i], ref[k * no + i]);
  free(got);
}

/* Compiles dir's model `name` and runtime files with arm-none-eabi-gcc for core, warnings as
 * errors (a visible skip without the toolchain). */
static void cross_compile(const char *dir, const char *name, const char *core) {
  if (!have_tool("arm-none-eabi-gcc")) {
    test_skip_part("the %s compile of %s: arm-none-eabi-gcc not found (apt-get install "
                   "gcc-arm-none-eabi libnewlib-arm-none-eabi)", core, name);
    return;
  }
  char cmd[4096], path[1200];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && for s in %s.c nasrt_*.c; do arm-none-eabi-gcc -mcpu=%s -mthumb -O2 "
           "-std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror "
           "-DNAS_LAYER_MARK -c $s -o $s.o || exit 1; done > arm.log 2>&1",
           dir, name, core);
  if (system(cmd) != 0) {
    snprintf(path, sizeof path, "%s/arm.log", dir);
    char *log = read_all(path, NULL);
    fail_msg("%s: arm-none-eabi-gcc -mcpu=%s failed:\n%.3000s", name, core, log ? log : "");
  }
}

/* Exports g as `name`, compiles and runs it on NIN inputs, compares with nas_g8_run. */
static void check_export(const nas_g8_graph *g, const char *name, const char *up) {
  char dir[] = "/tmp/nas_cexp_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  nas_err e = {0};
  if (nas_c_export(g, name, dir, &e)) fail_msg("%s: export: %s", name, e.msg);

  /* The arena macro is the planner's peak. */
  nas_g8_plan p;
  assert_int_equal(nas_g8_plan_build(g, &p, &e), NAS_OK);
  char path[1200], want[160];
  snprintf(path, sizeof path, "%s/%s.h", dir, name);
  char *hdr = read_all(path, NULL);
  assert_non_null(hdr);
  snprintf(want, sizeof want, "#define %s_ARENA_BYTES %zu ", up, p.peak);
  if (!strstr(hdr, want)) fail_msg("%s: header lacks '%s'", name, want);
  snprintf(path, sizeof path, "%s/%s.c", dir, name);
  char *csrc = read_all(path, NULL);
  assert_non_null(csrc);
  snprintf(want, sizeof want, "static _Alignas(16) int8_t arena[%s_ARENA_BYTES];", up);
  assert_non_null(strstr(csrc, want));
  free(hdr), free(csrc);

  /* Inputs: extremes and random bytes; reference outputs from the deploy runtime. */
  const size_t ni = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  int8_t *in = malloc(ni * NIN), *ref = malloc(no * NIN);
  nas_rng r;
  nas_rng_seed(&r, 42);
  for (int k = 0; k < NIN; k++)
    for (size_t i = 0; i < ni; i++)
      in[k * ni + i] = k == 0 ? -128 : k == 1 ? 127 : (int8_t)((int)nas_rng_below(&r, 256) - 128);
  int8_t *rt = malloc(no);
  for (int k = 0; k < NIN; k++) {
    if (nas_g8_run(g, in + k * ni, ref + k * no, &e)) fail_msg("%s: run: %s", name, e.msg);
    if (nas_g8_rt_run(g, in + k * ni, rt, &e)) fail_msg("%s: runtime run: %s", name, e.msg);
    for (size_t i = 0; i < no; i++)
      if (rt[i] != ref[k * no + i])
        fail_msg("%s: input %d, output %zu: runtime (in process) %d, host %d", name, k, i, rt[i],
                 ref[k * no + i]);
  }
  free(rt);
  snprintf(path, sizeof path, "%s/in.bin", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(in, 1, ni * NIN, f), ni * NIN);
  fclose(f);

  snprintf(path, sizeof path, "%s/main.c", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "#include <stdio.h>\n#include \"%s.h\"\n"
          "int main(int argc, char **argv) {\n"
          "  static int8_t in[%s_INPUT_SIZE], out[%s_OUTPUT_SIZE];\n"
          "  if (argc != 3) return 2;\n"
          "  FILE *fi = fopen(argv[1], \"rb\"), *fo = fopen(argv[2], \"wb\");\n"
          "  if (!fi || !fo) return 3;\n"
          "  while (fread(in, 1, sizeof in, fi) == sizeof in) {\n"
          "    if (model_invoke(in, out)) return 4;\n"
          "    if (fwrite(out, 1, sizeof out, fo) != sizeof out) return 5;\n"
          "  }\n"
          "  fclose(fi);\n  return fclose(fo) ? 6 : 0;\n}\n",
          name, up, up);
  fclose(f);

  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && cc -std=c11 -Wall -Wextra -Werror -O1 -o prog main.c %s.c nasrt_*.c "
           "> cc.log 2>&1 && cc -std=c99 -pedantic -Wall -Wextra -Wshadow -Wstrict-prototypes "
           "-Wmissing-prototypes -Werror -O1 -c nasrt_*.c >> cc.log 2>&1",
           dir, name);
  if (system(cmd) != 0) {
    snprintf(path, sizeof path, "%s/cc.log", dir);
    char *log = read_all(path, NULL);
    fail_msg("%s: host compile failed:\n%.3000s", name, log ? log : "");
  }
  snprintf(cmd, sizeof cmd, "cd '%s' && ./prog in.bin out.bin", dir);
  assert_int_equal(system(cmd), 0);
  compare_output(dir, "out.bin", name, "", ref, no);

  /* The SMLAD paths on the host: __ARM_FEATURE_DSP with a stand-in arm_acle.h. */
  snprintf(path, sizeof path, "%s/arm_acle.h", dir);
  f = fopen(path, "w");
  assert_non_null(f);
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
  snprintf(cmd, sizeof cmd,
           "cd '%s' && cc -std=c11 -Wall -Wextra -Werror -O1 -D__ARM_FEATURE_DSP=1 -I. -o prog_dsp "
           "main.c %s.c nasrt_*.c > cc.log 2>&1 && ./prog_dsp in.bin out_dsp.bin",
           dir, name);
  assert_int_equal(system(cmd), 0);
  compare_output(dir, "out_dsp.bin", name, " (DSP path)", ref, no);

  /* Cortex-M4 (DSP extension: the SMLAD paths), warning-free; the other cores in
   * test_runtime_files (the runtime is the same for every model). */
  cross_compile(dir, name, "cortex-m4");
  free(in), free(ref);
  nas_g8_plan_free(&p);
  if (getenv("NAS_KEEP_CEXP")) print_message("kept %s\n", dir); /* for debugging */
  else rm_rf(dir);
}

static void lowered(const char *json, int softmax, int fc_per_channel, nas_g8_graph *g) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(json, "t.json", 8, 7, &n, &e)) fail_msg("build: %s", e.msg);
  nas_dataset d = {0};
  test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
  nas_lower_cfg lc = {.softmax = softmax, .fc_per_channel = fc_per_channel};
  if (nas_quantize_net(n, &d, NULL, &lc, g, &e)) fail_msg("lower: %s", e.msg);
  free(d.x), free(d.y);
  nas_net_free(n);
}

/* conv (stride, non-square kernel, relu6), pwconv, residual add, dwconv VALID, avgpool SAME,
 * flatten, two fc, softmax. */
static void test_tiny_kinds(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[9,7,2],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":6,\"k\":[3,2],"
          "\"stride\":[2,1],\"act\":\"relu6\"},{\"op\":\"pwconv\",\"out\":6,\"bn\":false,\"act\":"
          "\"none\"},{\"op\":\"add\",\"from\":0,\"act\":\"relu\"},{\"op\":\"dwconv\",\"k\":3,"
          "\"padding\":\"valid\"},{\"op\":\"avgpool\",\"k\":2,\"stride\":1,\"padding\":\"same\"},"
          "{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":8,\"act\":\"relu\"},"
          "{\"op\":\"fc\",\"out\":5}]}",
          1, 0, &g);
  check_export(&g, "tiny", "TINY");
  nas_g8_graph_free(&g);
}

/* Recurrent layers: an LSTM returning its sequence into a GRU (UNIDIRECTIONAL_SEQUENCE_LSTM,
 * the unrolled GRU's FULLY_CONNECTED, STRIDED_SLICE, LOGISTIC, TANH, MUL, SUB, ADD), and a
 * GRU returning its sequence (CONCATENATION) into an LSTM (its last step sliced). */
static void test_recurrent(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[6,5,1],\"classes\":4,\"layers\":[{\"op\":\"lstm\",\"units\":7,"
          "\"return_sequences\":true},{\"op\":\"gru\",\"units\":6},{\"op\":\"fc\",\"out\":4}]}",
          0, 0, &g);
  check_export(&g, "lstm_gru", "LSTM_GRU");
  /* the GRU's 3 recurrent weight tensors, used by 3 FULLY_CONNECTED at each of steps 1..5,
     are printed once each: at most 7 repacked weight arrays (3 recurrent, 3 input
     projections, the final fc) */
  char dir[] = "/tmp/nas_cexp_XXXXXX", path[300];
  if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  nas_err e = {0};
  if (nas_c_export(&g, "lstm_gru", dir, &e)) fail_msg("%s", e.msg);
  snprintf(path, sizeof path, "%s/lstm_gru.c", dir);
  size_t len = 0;
  char *src = read_all(path, &len);
  assert_non_null(src);
  int nwq = 0, nfc = 0;
  for (const char *q = src; (q = strstr(q, "_wq[")) != NULL; q++) nwq++; /* declarations */
  for (const char *q = src; (q = strstr(q, "nasrt_fc_p op")) != NULL; q++) nfc++;
  print_message("lstm_gru: %d FULLY_CONNECTED, %d repacked weight arrays\n", nfc, nwq);
  assert_true(nfc >= 16 && nwq >= 1 && nwq <= 7);
  free(src);
  test_rm_rf(dir);
  nas_g8_graph_free(&g);
  lowered("{\"input\":[5,4,1],\"classes\":3,\"layers\":[{\"op\":\"gru\",\"units\":5,"
          "\"return_sequences\":true},{\"op\":\"lstm\",\"units\":6},{\"op\":\"fc\",\"out\":3}]}",
          1, 0, &g);
  check_export(&g, "gru_lstm", "GRU_LSTM");
  nas_g8_graph_free(&g);
}

/* maxpool, gap (avgpool + reshape), per-channel fc, no softmax; a name needing mangling. */
static void test_tiny_pool(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[10,10,3],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":3},"
          "{\"op\":\"maxpool\",\"k\":2,\"stride\":2},{\"op\":\"dwconv\",\"k\":3,\"stride\":2},"
          "{\"op\":\"pwconv\",\"out\":5},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}",
          0, 1, &g);
  check_export(&g, "2pool-net.v1", "M2POOL_NET_V1");
  nas_g8_graph_free(&g);
}

/* The MLPerf Tiny reference models (kws is required by the brief; the others add ADD with
 * requantisation, MobileNet strides and a plain FC stack). */
static int export_ref_model(const char *file, const char *name, const char *up) {
  char path[1024];
  if (!test_model_path(file, path, sizeof path)) {
    test_skip_part("reference model %s not found (set NAS_MODELS_DIR, see docs/testing.md)",
                   path);
    return 0;
  }
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_tflite_read(path, &g, &e)) fail_msg("import: %s", e.msg);
  check_export(&g, name, up);
  nas_g8_graph_free(&g);
  return 1;
}

static void test_kws_ref_model(void **state) {
  (void)state;
  export_ref_model("kws_ref_model.tflite", "kws_ref_model", "KWS_REF_MODEL");
}

static void test_other_ref_models(void **state) {
  (void)state;
  /* each missing one is a recorded skip; the ones present are checked */
  export_ref_model("pretrainedResnet_quant.tflite", "resnet", "RESNET");
  export_ref_model("vww_96_int8.tflite", "vww", "VWW");
  export_ref_model("ad01_int8.tflite", "ad01", "AD01");
}

/* A QUANTIZE (int8 -> int8) appended to a lowered graph. */
static void test_quantize_op(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[6,6,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":3},"
          "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
          0, 0, &g);
  nas_g8_tensor *nt = realloc(g.tensors, sizeof *nt * (size_t)(g.ntensors + 1));
  nas_g8_op *nop = realloc(g.ops, sizeof *nop * (size_t)(g.nops + 1));
  assert_non_null(nt);
  if (nop) g.ops = nop;
  g.tensors = nt;
  assert_non_null(nop);
  const nas_g8_tensor *o = &g.tensors[g.output];
  nas_g8_tensor q = *o;
  q.name = strdup("requantized");
  q.scale = malloc(sizeof *q.scale), q.zero_point = malloc(sizeof *q.zero_point);
  q.scale[0] = o->scale[0] * 1.7f, q.zero_point[0] = 5;
  q.nq = 1, q.data = NULL;
  g.tensors[g.ntensors] = q;
  nas_g8_op op = {.kind = NAS_G8_QUANTIZE, .nin = 1, .in = {g.output, -1, -1},
                  .out = g.ntensors};
  g.ops[g.nops++] = op;
  g.output = g.ntensors++;
  nas_err e = {0};
  if (nas_g8_validate(&g, &e)) fail_msg("validate: %s", e.msg);
  check_export(&g, "requant", "REQUANT");
  nas_g8_graph_free(&g);
}

/* Sparse storage (the runtime's SPARSE, nas-c): 70% of the conv / pwconv / fc weights zero;
 * the export (mask and values instead of the dense filters) compiles and computes what the
 * host computes, with and without the SMLAD paths. */
static void test_tiny_sparse(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[7,6,9],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":10,\"k\":3},"
          "{\"op\":\"pwconv\",\"out\":12},{\"op\":\"conv\",\"out\":8,\"k\":[3,2],\"stride\":2,"
          "\"padding\":\"valid\"},{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":4}]}",
          0, 0, &g);
  nas_rng r;
  nas_rng_seed(&r, 17);
  for (int i = 0; i < g.nops; i++) {
    const nas_g8_op *op = &g.ops[i];
    if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_FULLY_CONNECTED) continue;
    int8_t *d = g.tensors[op->in[1]].data;
    for (size_t k = 0; k < nas_g8_numel(&g.tensors[op->in[1]]); k++)
      if (nas_rng_uniform(&r) < 0.7f) d[k] = 0;
  }
  g.sparse = 1;
  for (int i = 0; i < g.nops; i++)
    if (g.ops[i].kind == NAS_G8_CONV_2D || g.ops[i].kind == NAS_G8_FULLY_CONNECTED)
      assert_true(nas_g8_sparse_pick(&g, i));
  check_export(&g, "sparse", "SPARSE");
  nas_g8_graph_free(&g);
}

/* The runtime files the export copies are the tree's runtime/ files, byte for byte, and every
 * .c/.h file of runtime/ is among them (the library embeds them when it is built). */
static void test_runtime_files(void **state) {
  (void)state;
  char rt[1024];
  snprintf(rt, sizeof rt, "%s/runtime", src_dir());
  DIR *d = opendir(rt);
  if (!d) test_skip("%s absent (NAS_SOURCE_DIR should be the source tree)", rt);
  int ntree = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l < 3 || (strcmp(de->d_name + l - 2, ".c") && strcmp(de->d_name + l - 2, ".h"))) continue;
    int found = 0;
    for (int k = 0; k < nas_c_nruntime; k++) found |= !strcmp(nas_c_runtime[k].name, de->d_name);
    if (!found) fail_msg("runtime/%s is not embedded in the library", de->d_name);
    ntree++;
  }
  closedir(d);
  assert_int_equal(ntree, nas_c_nruntime);
  nas_g8_graph g;
  lowered("{\"input\":[4,4,1],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":2},"
          "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
          0, 0, &g);
  char dir[] = "/tmp/nas_cexp_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  nas_err e = {0};
  if (nas_c_export(&g, "m", dir, &e)) fail_msg("export: %s", e.msg);
  for (int k = 0; k < nas_c_nruntime; k++) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/%s", dir, nas_c_runtime[k].name);
    snprintf(b, sizeof b, "%s/%s", rt, nas_c_runtime[k].name);
    size_t na = 0, nb = 0;
    char *ca = read_all(a, &na), *cb = read_all(b, &nb);
    assert_non_null(ca);
    assert_non_null(cb);
    if (na != nb || memcmp(ca, cb, na)) fail_msg("%s differs from the tree's %s", a, b);
    free(ca), free(cb);
  }
  rm_rf(dir);
  nas_g8_graph_free(&g);
}

/* An export (model and runtime) compiles warning-free for every core nas targets: Cortex-M0+
 * (portable loops), M4, M7, M33 (SMLAD); the runtime is the same for every model. */
static void test_cores(void **state) {
  (void)state;
  if (!have_tool("arm-none-eabi-gcc"))
    test_skip("arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi "
              "libnewlib-arm-none-eabi)");
  nas_g8_graph g;
  lowered("{\"input\":[6,6,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":4},"
          "{\"op\":\"dwconv\",\"k\":3},{\"op\":\"add\",\"from\":0},{\"op\":\"maxpool\","
          "\"k\":2,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
          1, 0, &g);
  char dir[] = "/tmp/nas_cexp_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  nas_err e = {0};
  if (nas_c_export(&g, "m", dir, &e)) fail_msg("export: %s", e.msg);
  static const char *const cores[] = {"cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"};
  for (int c = 0; c < 4; c++) cross_compile(dir, "m", cores[c]);
  rm_rf(dir);
  nas_g8_graph_free(&g);
}

static void test_errors(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[4,4,1],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":2},"
          "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
          0, 0, &g);
  nas_err e = {0};
  assert_int_equal(nas_c_export(&g, "../x", "/tmp", &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "model name '../x'"));
  assert_int_equal(nas_c_export(&g, "", "/tmp", &e), NAS_EINVAL);
  assert_int_equal(nas_c_export(&g, "a/b", "/tmp", &e), NAS_EINVAL);
  assert_int_equal(nas_c_export(&g, "m", "/nonexistent/dir/x", &e), NAS_EIO);
  assert_non_null(strstr(e.msg, "/nonexistent/dir/x/nasrt.h"));
  nas_g8_graph_free(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_kinds),
      cmocka_unit_test(test_recurrent),
      cmocka_unit_test(test_tiny_pool),
      cmocka_unit_test(test_kws_ref_model),
      cmocka_unit_test(test_other_ref_models),
      cmocka_unit_test(test_quantize_op),
      cmocka_unit_test(test_tiny_sparse),
      cmocka_unit_test(test_runtime_files),
      cmocka_unit_test(test_cores),
      cmocka_unit_test(test_errors),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
