/* tests/test_tflm_insn.c: the TFLM + CMSIS-NN instruction model (latency/tflm.h,
 * latency/tflm_fit.h). Always: coefficient-file errors, unmodelled paths, and a worked
 * example pricing the MLPerf Tiny kws model of ../shared/models with both APIs (arena and
 * instructions), printed. On the shared corpus (../shared/data/tflm-cmsisnn, or
 * $NAS_TFLM_CORPUS): the CMSIS-NN path decided from each imported graph equals the function
 * the firmware called (cmsis_entry) in every operator row; Invoke without the profiler is
 * exactly the operators (hook excluded) + 31 per operator + 74 on every core; refitting gives
 * the committed latency/calibration/tflm_insn.json; and on the held-out 20% of the models the
 * committed model meets the goals of issue #14 (per-model median error <= 5%, per-operator
 * median <= 10%, per core) and the tighter figures it reaches (docs/tflm.md). Without the
 * corpus those checks are skipped (tests/test_util.h: exit 77, ctest "Skipped"; a failure with
 * CI=true). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "latency/tflm.h"
#include "latency/tflm_fit.h"
#include "tests/test_util.h"

static nas_tflm_corpus corpus;
static int have_corpus;
static char corpus_dir[1024], coef_path[1024];
static nas_tflm_insn_model model; /* the committed coefficients */

static const char *src_dir(void) {
  const char *s = getenv("NAS_SOURCE_DIR");
  return s ? s : NAS_SOURCE_DIR;
}

static int setup(void **state) {
  (void)state;
  nas_err e = {0};
  snprintf(coef_path, sizeof coef_path, "%s/latency/calibration/tflm_insn.json", src_dir());
  if (nas_tflm_insn_load(coef_path, &model, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return -1;
  }
  if (have_corpus && nas_tflm_corpus_read(corpus_dir, &corpus, &e)) {
    fprintf(stderr, "corpus: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  nas_tflm_corpus_free(&corpus);
  return 0;
}

/* ---- without the corpus ---------------------------------------------------------------- */

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_coef_file_errors(void **state) {
  (void)state;
  nas_tflm_insn_model m;
  nas_err e = {0};
  char path[] = "/tmp/nas_tflm_insn_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(nas_tflm_insn_load("/nonexistent/tflm_insn.json", &m, &e), NAS_EIO);
  write_text(path, "{\"format\": \"nas-tflm-insn-1\", ");
  assert_int_equal(nas_tflm_insn_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "not valid JSON"));
  write_text(path, "{\"format\": \"other\"}");
  assert_int_equal(nas_tflm_insn_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "format"));
  /* Saved, reloaded: identical; then one group with a coefficient missing. */
  assert_int_equal(nas_tflm_insn_save(path, &model, "test", &e), NAS_OK);
  assert_int_equal(nas_tflm_insn_load(path, &m, &e), NAS_OK);
  assert_memory_equal(&m, &model, sizeof m);
  write_text(path, "{\"format\": \"nas-tflm-insn-1\", \"features\": {\"matmul\": [\"x\"]}}");
  assert_int_equal(nas_tflm_insn_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "features.matmul"));
  char *text = NULL;
  {
    FILE *f = fopen(coef_path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
  }
  char *reshape = strstr(strstr(text, "\"cores\""), "\"reshape\":");
  assert_non_null(reshape);
  char *comma = strchr(reshape, ',');
  memmove(reshape + 12, comma + 1, strlen(comma + 1) + 1); /* drop the first coefficient */
  write_text(path, text);
  free(text);
  assert_int_equal(nas_tflm_insn_load(path, &m, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "cores.cortex-m4.groups.reshape: 1 coefficients, expected 2"));
  unlink(path);
}

static void test_unmodelled_paths(void **state) {
  (void)state;
  nas_tflm_op o;
  memset(&o, 0, sizeof o);
  o.kind = NAS_G8_DEPTHWISE_CONV_2D, o.path = NAS_TFLM_DW_S8;
  double insn = 1;
  nas_err e = {0};
  assert_int_equal(nas_tflm_insn_op_predict(&model, NAS_TFLM_M4, &o, &insn, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "dw_s8"));
  assert_true(insn == 0);
  o.path = NAS_TFLM_ADD, o.elems = 64;
  assert_int_equal(nas_tflm_insn_op_predict(&model, 7, &o, &insn, &e), NAS_EINVAL);
  assert_int_equal(nas_tflm_insn_op_predict(&model, NAS_TFLM_M33, &o, &insn, &e), NAS_OK);
  assert_true(insn > 1000 && insn < 10000); /* about 81.5 per element + a constant */
  assert_string_equal(nas_tflm_path_entry(NAS_TFLM_CONV_1X1_FAST), "arm_convolve_1x1_s8_fast");
  assert_string_equal(nas_tflm_path_entry(NAS_TFLM_RESHAPE), "");
  assert_null(nas_tflm_path_entry(NAS_TFLM_NPATH));
  assert_int_equal(nas_tflm_core_from_name("cortex-m7"), NAS_TFLM_M7);
  assert_int_equal(nas_tflm_core_from_name("cortex-m0"), -1);
}

/* The worked example: pricing MLPerf Tiny's kws_ref_model, imported from its .tflite, for a
 * TFLM + CMSIS-NN deployment on a Cortex-M4 (arena and instructions). */
static void test_example_kws(void **state) {
  (void)state;
  char path[1100];
  if (!test_model_path("kws_ref_model.tflite", path, sizeof path))
    test_skip("reference model %s not found (set NAS_MODELS_DIR, see docs/testing.md)", path);
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_tflite_read(path, &g, &e)) fail_msg("%s", e.msg);
  nas_tflm_arena_report a;
  nas_tflm_insn_report r;
  assert_int_equal(nas_tflm_arena(&g, NAS_TFLM_DSP, &a, &e), NAS_OK);
  assert_int_equal(nas_tflm_insn(&model, &g, NAS_TFLM_M4, &r, &e), NAS_OK);
  printf("kws_ref_model on TFLM + CMSIS-NN, Cortex-M4:\n");
  printf("  arena %ld B = head %ld (activations %ld, %d scratch buffers of %ld B) + tail %ld\n",
         a.total, a.head, a.head_activations, a.nscratch, a.scratch_bytes, a.tail);
  printf("  tail: runtime %ld, eval tensors %ld, nodes %ld, options %ld, op data and "
         "quantisation %ld, scratch handles %ld, I/O tensors %ld + %ld\n", a.runtime,
         a.eval_tensors, a.node_registration, a.builtin_data, a.persistent_buffers,
         a.scratch_handles, a.tensor_structs, a.tensor_quant);
  for (int i = 0; i < r.nops; i++)
    printf("  op %2d %-26s %10.0f instructions\n", i, nas_tflm_path_entry(r.op[i].path)[0] ? nas_tflm_path_entry(r.op[i].path) : "(TFLM reference)", r.op[i].insn);
  printf("  Invoke (no profiler): %.0f = operators %.0f + interpreter %.0f\n", r.invoke, r.ops_total, r.overhead);
  assert_int_equal(a.total, a.head + a.tail);
  assert_true(r.invoke > r.ops_total);
  if (have_corpus) {
    for (int m = 0; m < corpus.nmodels; m++) {
      const nas_tflm_corpus_model *x = &corpus.model[m];
      if (strcmp(x->id, "mlperf_kws_ref_model")) continue;
      printf("  corpus: arena %ld B, Invoke %.0f instructions (error %.2f%%)\n", x->arena_used,
             x->invoke[NAS_TFLM_M4], 100 * (r.invoke - x->invoke[NAS_TFLM_M4]) / x->invoke[NAS_TFLM_M4]);
      assert_int_equal(a.total, x->arena_used);
      assert_true(fabs(r.invoke - x->invoke[NAS_TFLM_M4]) < 0.02 * x->invoke[NAS_TFLM_M4]);
    }
  }
  nas_tflm_insn_report_free(&r);
  nas_tflm_insn_report_free(NULL);
  nas_g8_graph_free(&g);
}

/* ---- the corpus ------------------------------------------------------------------------ */

static void test_paths_vs_corpus(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  int rows = 0, agree = 0;
  nas_err e = {0};
  for (int k = 0; k < corpus.nops; k++) {
    const nas_tflm_corpus_op *o = &corpus.op[k];
    nas_tflm_op d;
    assert_int_equal(nas_tflm_op_describe(&corpus.model[o->model].graph, o->op_index, NAS_TFLM_DSP, &d, &e), NAS_OK);
    rows++;
    if (!strcmp(nas_tflm_path_entry(d.path), o->entry)) agree++;
    else fprintf(stderr, "%s op %d: %s, firmware %s\n", corpus.model[o->model].id, o->op_index, nas_tflm_path_entry(d.path), o->entry);
  }
  printf("CMSIS-NN path: %d of %d operator rows agree with cmsis_entry\n", agree, rows);
  assert_int_equal(agree, rows);
}

static void test_interpreter_overhead(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  for (int m = 0; m < corpus.nmodels; m++) {
    const nas_tflm_corpus_model *x = &corpus.model[m];
    for (int c = 0; c < NAS_TFLM_NCORE; c++) {
      double ops = 0;
      for (int i = 0; i < x->nops; i++) ops += corpus.op[x->first_op[c] + i].insn;
      assert_true(x->invoke[c] == ops + 31.0 * x->nops + 74);
    }
  }
  for (int c = 0; c < NAS_TFLM_NCORE; c++) {
    assert_true(fabs(model.per_op[c] - 31) < 1e-6);
    assert_true(fabs(model.per_invoke[c] - 74) < 1e-6);
  }
}

/* The committed coefficients are what the fit gives now (same predictions to 1e-6). */
static void test_refit_matches_committed(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  nas_tflm_insn_model m;
  nas_err e = {0};
  assert_int_equal(nas_tflm_fit(&corpus, &m, &e), NAS_OK);
  for (int k = 0; k < corpus.nmodels; k++) {
    const nas_g8_graph *g = &corpus.model[k].graph;
    for (int c = 0; c < NAS_TFLM_NCORE; c++) {
      nas_tflm_insn_report a, b;
      assert_int_equal(nas_tflm_insn(&m, g, c, &a, &e), NAS_OK);
      assert_int_equal(nas_tflm_insn(&model, g, c, &b, &e), NAS_OK);
      for (int i = 0; i < a.nops; i++) assert_true(fabs(a.op[i].insn - b.op[i].insn) <= 1e-6 * (1 + fabs(b.op[i].insn)));
      nas_tflm_insn_report_free(&a), nas_tflm_insn_report_free(&b);
    }
  }
}

static void print_row(const char *what, int core, nas_tflm_err_stats s) {
  if (s.n)
    printf("  %-18s %-10s n=%4d median %5.2f%%  p95 %5.2f%%  max %5.2f%%\n", what,
           core < NAS_TFLM_NCORE ? nas_tflm_core_name(core) : "all", s.n, 100 * s.median,
           100 * s.p95, 100 * s.max);
}

static void test_heldout_goals(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  nas_tflm_eval ev;
  nas_err e = {0};
  assert_int_equal(nas_tflm_evaluate(&corpus, &model, NAS_TFLM_EVAL_HELDOUT, &ev, &e), NAS_OK);
  printf("held-out models, production Invoke:\n");
  for (int c = 0; c <= NAS_TFLM_NCORE; c++) print_row("model", c, ev.model[c]);
  printf("held-out operators by type:\n");
  for (int t = 0; t <= NAS_TFLM_NOPTYPE; t++)
    for (int c = 0; c <= NAS_TFLM_NCORE; c++) print_row(t < NAS_TFLM_NOPTYPE ? nas_tflm_optype_name(t) : "all", c, ev.optype[t][c]);
  for (int c = 0; c < NAS_TFLM_NCORE; c++) {
    assert_true(ev.model[c].n >= 40);
    assert_true(ev.model[c].median <= 0.05);          /* issue #14's goal */
    assert_true(ev.op[NAS_TFLM_NPATH][c].median <= 0.10);
    /* what the model reaches (docs/tflm.md), with a margin: */
    assert_true(ev.model[c].median <= 0.01);
    assert_true(ev.model[c].max <= 0.05);
    assert_true(ev.op[NAS_TFLM_NPATH][c].median <= 0.02);
    assert_true(ev.op[NAS_TFLM_NPATH][c].p95 <= 0.05);
  }
  /* MLPerf Tiny, never fitted on: the whole-model figure. */
  assert_int_equal(nas_tflm_evaluate(&corpus, &model, NAS_TFLM_EVAL_MLPERF, &ev, &e), NAS_OK);
  printf("MLPerf Tiny models (not fitted on):\n");
  for (int c = 0; c <= NAS_TFLM_NCORE; c++) print_row("model", c, ev.model[c]);
  assert_int_equal(ev.model[NAS_TFLM_NCORE].n, 12);
  assert_true(ev.model[NAS_TFLM_NCORE].max <= 0.02);
}

int main(void) {
  have_corpus = test_find_corpus(corpus_dir, sizeof corpus_dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_coef_file_errors),      cmocka_unit_test(test_unmodelled_paths),
      cmocka_unit_test(test_example_kws),           cmocka_unit_test(test_paths_vs_corpus),
      cmocka_unit_test(test_interpreter_overhead),  cmocka_unit_test(test_refit_matches_committed),
      cmocka_unit_test(test_heldout_goals),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
