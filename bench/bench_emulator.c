/* Emulated measurement speed and counts: dscnn-s (search_spaces/reference/dscnn-s.json) as
 * an UNTRAINED network (seeded random weights) quantised to int8 with min/max calibration on
 * 64 random normal samples, cross-compiled for cortex-m4 (stm32f446re) and cortex-m7
 * (stm32f746) and run once per target in Unicorn (median of 5 runs for the wall time).
 * Untrained weights change no instruction count that matters here (the kernels have no
 * data-dependent work except the activation clamps). Prints a table per target and one JSON
 * line per target; the issue's target is < 0.5 s wall for one emulated inference. The
 * cross compile is timed cold and with the kernel object cache (latency/emulator.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "deploy/lower.h"
#include "latency/emulator.h"

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int bench_target(const nas_g8_graph *g, const char *tid, const int8_t *in,
                        const char *cache) {
  nas_err e = {0};
  nas_target *t = NULL;
  nas_emu_fw *fw = NULL;
  nas_emu_cfg cfg = {.cache_dir = cache};
  double cold = 0;
  if (nas_target_open(tid, NULL, &t, &e) || nas_emu_build(g, t, &cfg, &fw, &e)) {
    fprintf(stderr, "bench_emulator: %s\n", e.msg);
    nas_target_free(t);
    return 1;
  }
  cold = fw->compile_s; /* the first build fills the kernel cache; the second uses it */
  nas_emu_fw_free(fw);
  if (nas_emu_build(g, t, &cfg, &fw, &e)) {
    fprintf(stderr, "bench_emulator: %s\n", e.msg);
    nas_target_free(t);
    return 1;
  }
  enum { RUNS = 5 };
  double wall[RUNS], cpu[RUNS];
  nas_emu_result r = {0};
  for (int k = 0; k < RUNS; k++) {
    nas_emu_result_free(&r);
    if (nas_emu_run(fw, in, 0, &r, &e)) {
      fprintf(stderr, "bench_emulator: %s\n", e.msg);
      nas_emu_fw_free(fw), nas_target_free(t);
      return 1;
    }
    wall[k] = r.run_s, cpu[k] = r.run_cpu_s;
  }
  qsort(wall, RUNS, sizeof *wall, cmp_d);
  qsort(cpu, RUNS, sizeof *cpu, cmp_d);
  printf("dscnn-s on %s (%s @ %.0f MHz): flash %lld B text, SRAM %lld B bss\n", tid,
         nas_core_name(t->core), t->clock_mhz, fw->text_bytes, fw->bss_bytes);
  printf("  %-6s %12s %10s %10s %10s %10s %12s %9s\n", "layer", "insns", "ldst", "mul", "branch",
         "other", "cycles", "ms");
  for (int l = 0; l < r.n_layers; l++) {
    const nas_emu_layer *L = &r.layers[l];
    char id[16];
    if (L->op >= 0) snprintf(id, sizeof id, "op%d", L->op);
    else snprintf(id, sizeof id, "other");
    printf("  %-6s %12lld %10lld %10lld %10lld %10lld %12.0f %9.3f\n", id, L->insns,
           L->c.n[NAS_IC_LDST], L->c.n[NAS_IC_MUL], L->c.n[NAS_IC_BRANCH], L->c.n[NAS_IC_OTHER],
           L->cycles, L->ms);
  }
  printf("  %-6s %12lld %10lld %10lld %10lld %10lld %12.0f %9.3f\n", "total", r.total.insns,
         r.total.c.n[NAS_IC_LDST], r.total.c.n[NAS_IC_MUL], r.total.c.n[NAS_IC_BRANCH],
         r.total.c.n[NAS_IC_OTHER], r.total.cycles, r.total.ms);
  printf("  cross compile %.3f s (%.3f s with the kernels cached); emulation of one inference %.3f s wall (median of %d, min "
         "%.3f), %.3f s CPU (median); %lld blocks executed, %lld distinct\n",
         cold, fw->compile_s, wall[RUNS / 2], RUNS, wall[0], cpu[RUNS / 2], r.blocks,
         r.distinct_blocks);
  printf("{\"bench\":\"emulator\",\"model\":\"dscnn-s\",\"target\":\"%s\",\"core\":\"%s\","
         "\"insns\":%lld,\"ldst\":%lld,\"mul\":%lld,\"branch\":%lld,\"other\":%lld,"
         "\"cycles\":%.0f,\"ms\":%.3f,\"emulate_s\":%.4f,\"emulate_cpu_s\":%.4f,\"compile_s\":%.3f,\"compile_cached_s\":%.3f,"
         "\"target_s\":0.5}\n",
         tid, nas_core_name(t->core), r.total.insns, r.total.c.n[NAS_IC_LDST],
         r.total.c.n[NAS_IC_MUL], r.total.c.n[NAS_IC_BRANCH], r.total.c.n[NAS_IC_OTHER],
         r.total.cycles, r.total.ms, wall[RUNS / 2], cpu[RUNS / 2], cold, fw->compile_s);
  nas_emu_result_free(&r);
  nas_emu_fw_free(fw);
  nas_target_free(t);
  return 0;
}

int main(void) {
  nas_err e = {0};
  char *text = NULL;
  long len;
  nas_net *n = NULL;
  if (nas_read_file(NAS_SOURCE_DIR "/search_spaces/reference/dscnn-s.json", &text, &len, &e) ||
      nas_net_build(text, "dscnn-s.json", 8, 1, &n, &e)) {
    fprintf(stderr, "bench_emulator: %s\n", e.msg);
    return 1;
  }
  free(text);
  nas_dataset d = {0};
  nas_rng r;
  nas_rng_seed(&r, 11);
  d.n = 64, d.h = n->in_h, d.w = n->in_w, d.c = n->in_c, d.classes = n->classes;
  size_t per = (size_t)d.h * d.w * d.c;
  d.x = malloc(sizeof *d.x * per * (size_t)d.n);
  d.y = calloc((size_t)d.n, sizeof *d.y);
  if (!d.x || !d.y) return fprintf(stderr, "bench_emulator: out of memory\n"), 1;
  for (size_t i = 0; i < per * (size_t)d.n; i++) d.x[i] = nas_rng_normal(&r);
  nas_g8_graph g;
  nas_lower_cfg lc = {0};
  if (nas_quantize_net(n, &d, NULL, &lc, &g, &e)) {
    fprintf(stderr, "bench_emulator: %s\n", e.msg);
    return 1;
  }
  int8_t *in = malloc(per);
  nas_g8_quantize_input(&g, d.x, in);
  if (!nas_emu_have_unicorn()) {
    fprintf(stderr, "bench_emulator: built without Unicorn (apt-get install libunicorn-dev)\n");
    return 1;
  }
  char cache[] = "/tmp/nas_bench_emu_XXXXXX";
  if (!mkdtemp(cache)) return fprintf(stderr, "bench_emulator: mkdtemp failed\n"), 1;
  int rc = bench_target(&g, "stm32f446re", in, cache) || bench_target(&g, "stm32f746", in, cache);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
  if (system(cmd) != 0) fprintf(stderr, "bench_emulator: could not remove %s\n", cache);
  free(in), free(d.x), free(d.y);
  nas_g8_graph_free(&g);
  nas_net_free(n);
  return rc;
}
