/* The engine's MCU runtime on one .tflite and one target, emulated (bench/mcu_runtime.sh runs it
 * per model and core and sets it beside the TFLM + CMSIS-NN corpus): imports the model, exports
 * it as C, cross-compiles it for the target's core, runs one inference in Unicorn on a fixed
 * pseudo-random input and prints one JSON line: per operator the executed instructions and the
 * estimated cycles (the core's CPI table), their sums, the classes, whether the output equals
 * `nas run` (nas_g8_run) byte for byte, the planner's arena (and the part of it that is
 * activations), the exported model data in flash and the .tflite's size.
 *
 *   bench_mcu_runtime TARGET MODEL.tflite [NAME]
 *   bench_mcu_runtime --plan MODEL.tflite [NAME]     (the planner's arena only)
 *
 * BENCH_KEEP=DIR (an existing directory) keeps the generated sources and the ELF there.
 * The operator rows include the invoke loop and the layer-mark call between operators (a few
 * instructions each); the input and output copies are outside them (row "other"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "export/export_c.h"
#include "latency/emulator.h"

/* --plan: the planner's arena only (no emulation): {"model","arena","arena_tensors"}. */
static int plan_only(const char *path, const char *name) {
  nas_err e = {0};
  nas_g8_graph g;
  nas_g8_plan plan;
  if (nas_tflite_read(path, &g, &e)) {
    fprintf(stderr, "bench_mcu_runtime: %s\n", e.msg);
    return 1;
  }
  if (nas_g8_plan_build(&g, &plan, &e)) {
    fprintf(stderr, "bench_mcu_runtime: %s: %s\n", name, e.msg);
    nas_g8_graph_free(&g);
    return 1;
  }
  size_t tens = 0;
  for (int k = 0; k < g.ntensors; k++)
    if (plan.offset[k] >= 0 && (size_t)plan.offset[k] + nas_g8_numel(&g.tensors[k]) > tens)
      tens = (size_t)plan.offset[k] + nas_g8_numel(&g.tensors[k]);
  nas_g8_plan act;
  if (nas_g8_plan_activations(&g, &act, &e)) {
    fprintf(stderr, "bench_mcu_runtime: %s: %s\n", name, e.msg);
    nas_g8_plan_free(&plan), nas_g8_graph_free(&g);
    return 1;
  }
  printf("{\"model\":\"%s\",\"arena\":%zu,\"arena_tensors\":%zu,\"arena_activations\":%zu}\n",
         name, plan.peak, tens, act.peak);
  nas_g8_plan_free(&act);
  nas_g8_plan_free(&plan);
  nas_g8_graph_free(&g);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_mcu_runtime TARGET MODEL.tflite [NAME]\n"
                    "       bench_mcu_runtime --plan MODEL.tflite [NAME]\n");
    return 2;
  }
  if (!strcmp(argv[1], "--plan")) return plan_only(argv[2], argc > 3 ? argv[3] : argv[2]);
  const char *tid = argv[1], *path = argv[2], *name = argc > 3 ? argv[3] : argv[2];
  nas_err e = {0};
  nas_g8_graph g;
  nas_target *t = NULL;
  nas_emu_fw *fw = NULL;
  const char *cache = getenv("NAS_CACHE_DIR");
  const char *keep = getenv("BENCH_KEEP"); /* an existing directory: keep the firmware there */
  nas_emu_cfg cfg = {.cache_dir = cache && *cache ? cache : NULL, .work_dir = keep && *keep ? keep : NULL};
  if (nas_tflite_read(path, &g, &e)) {
    fprintf(stderr, "bench_mcu_runtime: %s\n", e.msg);
    return 1;
  }
  if (nas_target_open(tid, NULL, &t, &e) || nas_emu_build(&g, t, &cfg, &fw, &e)) {
    fprintf(stderr, "bench_mcu_runtime: %s: %s\n", name, e.msg);
    nas_target_free(t), nas_g8_graph_free(&g);
    return 1;
  }
  const size_t ni = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(&g.tensors[g.output]);
  int8_t *in = malloc(ni), *ref = malloc(no);
  uint64_t s = 1000;
  for (size_t i = 0; i < ni; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    in[i] = (int8_t)(s >> 56);
  }
  nas_emu_result r;
  nas_g8_plan plan;
  long long data = 0;
  int rc = !in || !ref || nas_g8_run(&g, in, ref, &e) || nas_emu_run(fw, in, 0, &r, &e) ||
           nas_g8_plan_build(&g, &plan, &e) || nas_c_export_data_bytes(&g, &data, &e);
  if (rc) {
    fprintf(stderr, "bench_mcu_runtime: %s: %s\n", name, e.msg);
    free(in), free(ref), nas_emu_fw_free(fw), nas_target_free(t), nas_g8_graph_free(&g);
    return 1;
  }
  const int exact = r.out_n == no && memcmp(r.output, ref, no) == 0;
  long long ins = 0, cls[NAS_IC_COUNT] = {0}, xfer = 0, taken = 0;
  double cyc = 0;
  size_t tens = 0;
  for (int k = 0; k < g.ntensors; k++)
    if (plan.offset[k] >= 0 && (size_t)plan.offset[k] + nas_g8_numel(&g.tensors[k]) > tens)
      tens = (size_t)plan.offset[k] + nas_g8_numel(&g.tensors[k]);
  struct stat st;
  const long long tfl = stat(path, &st) == 0 ? (long long)st.st_size : -1;
  printf("{\"model\":\"%s\",\"target\":\"%s\",\"core\":\"%s\",\"exact\":%d,\"n_ops\":%d,\"ops\":[",
         name, tid, nas_core_name(t->core), exact, g.nops);
  for (int l = 0; l < r.n_layers; l++) {
    const nas_emu_layer *L = &r.layers[l];
    if (L->op < 0) continue;
    const char *k = nas_g8_op_name(g.ops[L->op].kind);
    printf("%s{\"op\":\"%s\",\"insn\":%lld,\"cycles\":%.0f}", L->op ? "," : "", k ? k : "?",
           L->insns, L->cycles);
    ins += L->insns, cyc += L->cycles, xfer += L->c.xfer, taken += L->taken;
    for (int c = 0; c < NAS_IC_COUNT; c++) cls[c] += L->c.n[c];
  }
  nas_cpi cpi = {0};
  if (nas_cpi_for_core(t->core, &cpi, &e) == NAS_OK)
    printf("],\"cpi\":{\"ldst\":%g,\"mul\":%g,\"branch\":%g,\"other\":%g,\"xfer\":%g,"
           "\"div_extra\":%g,\"taken_extra\":%g", cpi.cls[NAS_IC_LDST], cpi.cls[NAS_IC_MUL],
           cpi.cls[NAS_IC_BRANCH], cpi.cls[NAS_IC_OTHER], cpi.xfer, cpi.div_extra, cpi.taken_extra);
  printf("%s,\"insn_ops\":%lld,\"cycles_ops\":%.0f,\"ldst\":%lld,\"mul\":%lld,\"branch\":%lld,"
         "\"other\":%lld,\"xfer\":%lld,\"taken\":%lld,\"insn_outside\":%lld,\"arena\":%zu,"
         "\"arena_tensors\":%zu,\"data_bytes\":%lld,\"tflite_bytes\":%lld}\n",
         cpi.source ? "}" : "]", ins, cyc, cls[NAS_IC_LDST], cls[NAS_IC_MUL], cls[NAS_IC_BRANCH], cls[NAS_IC_OTHER], xfer,
         taken, r.total.insns - ins, plan.peak, tens, data, tfl);
  nas_g8_plan_free(&plan);
  nas_emu_result_free(&r);
  free(in), free(ref);
  nas_emu_fw_free(fw), nas_target_free(t), nas_g8_graph_free(&g);
  return exact ? 0 : 3;
}
