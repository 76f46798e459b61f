/* latency/calibration/tflm_fit.c: the offline fit of latency/calibration/tflm_insn.json.
 * Usage: tflm_fit [CORPUS_DIR [OUT.json]]   (defaults: ../shared/data/tflm-cmsisnn relative
 * to the source tree, and latency/calibration/tflm_insn.json there). Reads the corpus, fits
 * the instruction model on the training split (latency/tflm_fit.h), writes the coefficients
 * and prints the error tables of docs/tflm.md (markdown) and the arena check. */
#include <stdio.h>
#include <stdlib.h>

#include "latency/tflm_fit.h"

#ifndef NAS_SOURCE_DIR
#define NAS_SOURCE_DIR "."
#endif

static void print_stats(const char *what, const char *core, nas_tflm_err_stats s) {
  if (s.n) printf("| %s | %s | %d | %.1f%% | %.1f%% | %.1f%% |\n", what, core, s.n, 100 * s.median, 100 * s.p95, 100 * s.max);
}

static void print_eval(const char *title, const nas_tflm_eval *ev) {
  printf("\n### %s: per model (production Invoke)\n\n| models | core | n | median | p95 | max |\n|---|---|---:|---:|---:|---:|\n", title);
  for (int c = 0; c <= NAS_TFLM_NCORE; c++) print_stats("all", c < NAS_TFLM_NCORE ? nas_tflm_core_name(c) : "all", ev->model[c]);
  printf("\n### %s: per operator, by type\n\n| type | core | n | median | p95 | max |\n|---|---|---:|---:|---:|---:|\n", title);
  for (int t = 0; t <= NAS_TFLM_NOPTYPE; t++)
    for (int c = 0; c <= NAS_TFLM_NCORE; c++)
      print_stats(t < NAS_TFLM_NOPTYPE ? nas_tflm_optype_name(t) : "all", c < NAS_TFLM_NCORE ? nas_tflm_core_name(c) : "all", ev->optype[t][c]);
  printf("\n### %s: per operator, by CMSIS-NN path\n\n| path | core | n | median | p95 | max |\n|---|---|---:|---:|---:|---:|\n", title);
  for (int p = 0; p <= NAS_TFLM_NPATH; p++)
    for (int c = 0; c <= NAS_TFLM_NCORE; c++)
      print_stats(p < NAS_TFLM_NPATH ? nas_tflm_path_name(p) : "all", c < NAS_TFLM_NCORE ? nas_tflm_core_name(c) : "all", ev->op[p][c]);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : NAS_SOURCE_DIR "/../shared/data/tflm-cmsisnn";
  const char *out = argc > 2 ? argv[2] : NAS_SOURCE_DIR "/latency/calibration/tflm_insn.json";
  nas_err e = {0};
  nas_tflm_corpus c;
  if (nas_tflm_corpus_read(dir, &c, &e)) {
    fprintf(stderr, "tflm_fit: %s\n", e.msg);
    return 1;
  }
  int held = 0, train = 0, mlperf = 0, arena_ok = 0;
  for (int k = 0; k < c.nmodels; k++) {
    const nas_tflm_corpus_model *x = &c.model[k];
    mlperf += x->mlperf, held += !x->mlperf && x->heldout, train += !x->mlperf && !x->heldout;
    nas_tflm_arena_report r;
    if (nas_tflm_arena(&x->graph, NAS_TFLM_DSP, &r, &e)) {
      fprintf(stderr, "tflm_fit: %s: %s\n", x->id, e.msg);
      nas_tflm_corpus_free(&c);
      return 1;
    }
    if (r.total == x->arena_used && r.head == x->head && r.tail == x->tail) arena_ok++;
    else printf("arena differs: %s: %ld (head %ld, tail %ld), TFLM %ld (%ld, %ld)\n", x->id, r.total, r.head, r.tail, x->arena_used, x->head, x->tail);
  }
  printf("corpus: %d models (%d training, %d held out, %d MLPerf Tiny), %d operator rows\n", c.nmodels, train, held, mlperf, c.nops);
  printf("arena: %d of %d models equal to the byte (head, tail and total)\n", arena_ok, c.nmodels);
  nas_tflm_insn_model m;
  nas_tflm_eval ev;
  int rc = nas_tflm_fit(&c, &m, &e);
  if (!rc) rc = nas_tflm_insn_save(out, &m, "tflm_fit on the tflm-cmsisnn corpus; training split: FNV-1a(model_id) % 5 != 0, MLPerf Tiny excluded", &e);
  for (int k = 0; !rc && k < NAS_TFLM_NCORE; k++)
    printf("interpreter %s: %.3f per operator + %.3f per Invoke\n", nas_tflm_core_name(k), m.per_op[k], m.per_invoke[k]);
  if (!rc) rc = nas_tflm_evaluate(&c, &m, NAS_TFLM_EVAL_HELDOUT, &ev, &e);
  if (!rc) print_eval("Held out", &ev);
  if (!rc) rc = nas_tflm_evaluate(&c, &m, NAS_TFLM_EVAL_MLPERF, &ev, &e);
  if (!rc) print_eval("MLPerf Tiny", &ev);
  if (!rc) rc = nas_tflm_evaluate(&c, &m, NAS_TFLM_EVAL_TRAIN, &ev, &e);
  if (!rc) print_eval("Training", &ev);
  if (rc) fprintf(stderr, "tflm_fit: %s\n", e.msg);
  else printf("\nwrote %s\n", out);
  nas_tflm_corpus_free(&c);
  return rc ? 1 : 0;
}
