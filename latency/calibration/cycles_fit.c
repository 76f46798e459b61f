/* latency/calibration/cycles_fit.c: the offline fit of latency/calibration/cycles.json.
 * Usage: cycles_fit [CORPUS_DIR [OUT.json]]   (defaults: ../shared/data/tflm-cmsisnn next to
 * the source tree, and latency/calibration/cycles.json). Reads the parts (parts.json), the
 * instruction-class mix from the corpus' training split, the published board measurements
 * with their architectures (board_models.csv), the committed instruction model
 * (tflm_insn.json); fits every board's scale (latency/cycles_fit.h), writes the file and
 * prints the tables of docs/costs.md (markdown). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency/cost.h"
#include "latency/cycles_fit.h"
#include "latency/target.h"

#ifndef NAS_SOURCE_DIR
#define NAS_SOURCE_DIR "."
#endif
#define CAL NAS_SOURCE_DIR "/latency/calibration"

static long long graph_macs(const nas_g8_graph *g, int first, int last) {
  long long macs = 0;
  for (int i = first; i <= last; i++) {
    nas_tflm_op o;
    nas_err e = {0};
    if (nas_tflm_op_describe(g, i, NAS_TFLM_DSP, &o, &e)) continue;
    if (o.kind == NAS_G8_CONV_2D) macs += (long long)o.out_h * o.out_w * o.out_c * o.k_h * o.k_w * o.in_c;
    else if (o.kind == NAS_G8_DEPTHWISE_CONV_2D) macs += (long long)o.out_h * o.out_w * o.out_c * o.k_h * o.k_w;
    else if (o.kind == NAS_G8_FULLY_CONNECTED) macs += (long long)o.in_c * o.out_c * (o.out_w > 1 ? o.out_w : 1);
  }
  return macs;
}

static void print_tables(const nas_cycles_model *m, const nas_cycles_boards *b,
                         const nas_cycles_fit_stats *st, int ns) {
  printf("\n### Per part\n\n| target | core, clock | flash wait states, line, D-cache | scale | "
         "calibration |\n|---|---|---|---:|---|\n");
  for (int i = 0; i < m->nparts; i++) {
    const nas_cycles_part *p = &m->part[i];
    if (p->core < 0) {
      printf("| %s | %s, %g MHz | | | not priced (no instruction data for the core) |\n", p->id,
             p->core_name, p->clock_mhz);
      continue;
    }
    printf("| %s | %s, %g MHz | %g%s, %d B, %ld B | %.4f | %s%s |\n", p->id, p->core_name,
           p->clock_mhz, p->flash_ws, p->flash_clock_div > 1 ? " (half-speed bus)" : "",
           p->line_bytes, p->dcache_bytes, p->scale,
           p->calibrated ? "calibrated" : "transferred from ", p->calibrated ? "" : p->from);
  }
  printf("\n### Per part and build\n\n| target | build | scale | rows (models) | in-sample median / max "
         "| leave-one-model-out median / max |\n|---|---|---:|---|---|---|\n");
  for (int i = 0; i < ns; i++) {
    printf("| %s | %s | %.4f | %d (%d) | %.1f%% / %.1f%% | ", st[i].target, st[i].build, st[i].scale,
           st[i].rows, st[i].models, 100 * st[i].median, 100 * st[i].max);
    if (st[i].models >= 2) printf("%.1f%% / %.1f%% |\n", 100 * st[i].loo_median, 100 * st[i].loo_max);
    else printf("(one model) |\n");
  }
  printf("\n### Per measurement row\n\n| target | build | model | layer | measured ms | predicted ms | error | "
         "instructions | core cycles / instruction | flash stall share | linear model ms (error) |\n"
         "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int i = 0; i < b->nrows; i++) {
    const nas_cycles_row *x = &b->row[i];
    const nas_cycles_part *p = nas_cycles_find(m, x->target);
    const double clk = p->clock_mhz * 1e3;
    nas_target *t = NULL;
    nas_err e = {0};
    char lin[48] = "";
    if (!nas_target_open(x->target, NULL, &t, &e) && x->whole) {
      double y = t->cycles_per_mac * (double)graph_macs(&b->graph[x->graph], x->op_first, x->op_last) + t->fixed_cycles;
      snprintf(lin, sizeof lin, "%.1f (%+.0f%%)", y / clk, 100 * (y - x->measured) / x->measured);
    }
    nas_target_free(t);
    const double sc = x->core_cycles > 0 ? (x->predicted - x->flash_cycles) / x->core_cycles : 0;
    printf("| %s | %s | %s | %s | %.1f | %.1f | %+.1f%% | %.0f | %.3f | %.1f%% | %s |\n", x->target,
           x->build, x->model, x->whole ? "(model)" : x->layer, x->measured / clk, x->predicted / clk,
           100 * (x->predicted - x->measured) / x->measured, x->insn,
           sc * x->core_cycles / x->insn, 100 * x->flash_cycles / x->predicted, lin);
  }
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : NAS_SOURCE_DIR "/../shared/data/tflm-cmsisnn";
  const char *out = argc > 2 ? argv[2] : CAL "/cycles.json";
  nas_err e = {0};
  nas_cycles_model m;
  memset(&m, 0, sizeof m);
  nas_tflm_corpus c;
  nas_tflm_insn_model im;
  nas_cycles_boards b;
  memset(&b, 0, sizeof b);
  nas_cycles_fit_stats *st = NULL;
  int ns = 0;
  int rc = nas_tflm_corpus_read(dir, &c, &e);
  if (rc) {
    fprintf(stderr, "cycles_fit: %s\n", e.msg);
    return 1;
  }
  rc = nas_cycles_parts_load(CAL "/parts.json", &m, &e);
  if (!rc) rc = nas_cycles_mix_fit(&c, &m, &e);
  if (!rc) rc = nas_tflm_insn_load(CAL "/tflm_insn.json", &im, &e);
  if (!rc) rc = nas_cycles_boards_read(CAL, &m, &b, &e);
  if (!rc) rc = nas_cycles_fit_parts(&m, &im, &b, &st, &ns, &e);
  if (!rc) {
    snprintf(m.provenance, sizeof m.provenance,
             "cycles_fit: class mix from the tflm-cmsisnn corpus' training split (FNV-1a(model_id) %% 5 != 0, "
             "MLPerf Tiny excluded); scales fitted on %d published rows (board_models.csv), %d rows of "
             "models without an architecture not used; no MLPerf Tiny result used",
             b.nrows, b.nskipped);
    rc = nas_cycles_save(out, &m, &e);
  }
  if (!rc) {
    printf("board rows: %d used, %d without an architecture\n", b.nrows, b.nskipped);
    print_tables(&m, &b, st, ns);
    printf("\nwrote %s\n", out);
  } else {
    fprintf(stderr, "cycles_fit: %s\n", e.msg);
  }
  free(st);
  nas_cycles_boards_free(&b);
  nas_cycles_model_free(&m);
  nas_tflm_corpus_free(&c);
  return rc ? 1 : 0;
}
