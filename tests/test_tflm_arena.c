/* tests/test_tflm_arena.c: TFLM's tensor arena reproduced byte for byte (deploy/planner_tflm.h,
 * latency/tflm.h). Always: the greedy planner's order, tie-break and gap filling on hand-made
 * buffers, its argument errors, and clean failures under injected allocation failures (on the
 * MLPerf Tiny kws model of ../shared/models when present). On the shared corpus
 * (../shared/data/tflm-cmsisnn next to the source tree, or $NAS_TFLM_CORPUS): for every model
 * the activation-only plan equals TFLM's plan in plans_host64.csv buffer by buffer (size,
 * offset, first and last use), and the head, tail and total equal head_bytes_m32,
 * tail_bytes_m32 and arena_used_bytes_m32 to the byte, as do the RecordingMicroInterpreter's
 * tail and recorded allocations; and the same architectures lowered by the engine itself
 * (nas_lower_structure from models/<id>.arch.json) give the same arena and operators. Without the corpus those checks are skipped
 * (tests/test_util.h: exit 77, ctest "Skipped"; a failure with CI=true). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "deploy/lower_shape.h"
#include "deploy/planner_tflm.h"
#include "latency/tflm.h"
#include "latency/tflm_fit.h"
#include "train/net.h"
#include "tests/test_util.h"

static nas_tflm_corpus corpus;
static int have_corpus;
static char corpus_dir[1024];

/* ---- the planner on hand-made buffers (no corpus needed) ------------------------------- */

static nas_tflm_buf buf(long size, int first, int last) {
  nas_tflm_buf b = {size, first, last, -1, -1, -1};
  return b;
}

static void test_greedy_rules(void **state) {
  (void)state;
  nas_err e = {0};
  long peak;
  /* Equal sizes, all live together: placed in descending id order. */
  nas_tflm_buf a[3] = {buf(32, 0, 2), buf(32, 0, 2), buf(32, 0, 2)};
  assert_int_equal(nas_tflm_greedy(a, 3, &peak, &e), NAS_OK);
  assert_int_equal(a[2].offset, 0);
  assert_int_equal(a[1].offset, 32);
  assert_int_equal(a[0].offset, 64);
  assert_int_equal(peak, 96);
  /* Largest first; a buffer goes into the first gap among buffers live at the same time:
   * 64@[0,1] at 0; 48@[1,2] after it at 64; 32@[0,0] overlaps only the first: 64; 16@[2,3]
   * overlaps only the 48 at 64, so the gap below it (64 bytes) takes it at 0. */
  nas_tflm_buf b[4] = {buf(64, 0, 1), buf(48, 1, 2), buf(16, 2, 3), buf(32, 0, 0)};
  assert_int_equal(nas_tflm_greedy(b, 4, &peak, &e), NAS_OK);
  assert_int_equal(b[0].offset, 0);
  assert_int_equal(b[1].offset, 64);
  assert_int_equal(b[2].offset, 0);
  assert_int_equal(b[3].offset, 64);
  assert_int_equal(peak, 112);
  /* No room between two live buffers that touch: 48@[0,1] at 0, 32@[1,2] at 48, and the
   * 16@[1,1] (live with both) goes above them at 80. */
  nas_tflm_buf c[3] = {buf(48, 0, 1), buf(16, 1, 1), buf(32, 1, 2)};
  assert_int_equal(nas_tflm_greedy(c, 3, &peak, &e), NAS_OK);
  assert_int_equal(c[0].offset, 0);
  assert_int_equal(c[2].offset, 48);
  assert_int_equal(c[1].offset, 80);
  assert_int_equal(peak, 96);
  assert_int_equal(nas_tflm_greedy(c, 0, &peak, &e), NAS_OK);
  assert_int_equal(peak, 0);
}

static void test_plan_errors(void **state) {
  (void)state;
  nas_err e = {0};
  long peak;
  nas_tflm_buf a[1] = {buf(-16, 0, 0)};
  assert_int_equal(nas_tflm_greedy(a, 1, &peak, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "size"));
  /* A one-operator graph: input -> RESHAPE -> output. */
  nas_g8_tensor t[2];
  memset(t, 0, sizeof t);
  for (int i = 0; i < 2; i++) t[i].type = NAS_G8_INT8, t[i].ndim = 2, t[i].dims[0] = 1, t[i].dims[1] = 20, t[i].bytes = 20;
  nas_g8_op op;
  memset(&op, 0, sizeof op);
  op.kind = NAS_G8_RESHAPE, op.nin = 1, op.in[0] = 0, op.in[1] = op.in[2] = -1, op.out = 1;
  nas_g8_graph g = {2, t, 1, &op, 0, 1, 0};
  nas_tflm_plan p;
  nas_tflm_scratch bad = {3, 64};
  assert_int_equal(nas_tflm_plan_build(&g, &bad, 1, &p, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "scratch request 0"));
  nas_tflm_scratch s = {0, 40};
  assert_int_equal(nas_tflm_plan_build(&g, &s, 1, &p, &e), NAS_OK);
  assert_int_equal(p.nbuf, 3);
  assert_int_equal(p.ntensor_bufs, 2);
  /* input@[0,1] 32 B, output@[1,1] 32 B, scratch@[1,1] 48 B: the scratch is placed first. */
  assert_int_equal(p.buf[0].first, 0);
  assert_int_equal(p.buf[0].last, 1);
  assert_int_equal(p.buf[2].size, 48);
  assert_int_equal(p.buf[2].offset, 0);
  assert_int_equal(p.peak, 48 + 32 + 32);
  nas_tflm_plan_free(&p);
  nas_tflm_plan_free(NULL);
}

/* Every allocation failure ends in NAS_ENOMEM with a message, nothing leaks (ASan). */
static void test_fault_injection(void **state) {
  (void)state;
  char path[1024];
  if (!test_model_path("kws_ref_model.tflite", path, sizeof path))
    test_skip("reference model %s not found (set NAS_MODELS_DIR, see docs/testing.md)", path);
  nas_g8_graph g;
  nas_err e = {0};
  if (nas_tflite_read(path, &g, &e)) fail_msg("%s", e.msg);
  nas_tflm_arena_report ref, r;
  assert_int_equal(nas_tflm_arena(&g, NAS_TFLM_DSP, &ref, &e), NAS_OK);
  if (nas_alloc_fault(-1, 0) < 0) {
    nas_g8_graph_free(&g);
    test_skip("no fault injection in this build (configure with -DNAS_FAULT_INJECTION=ON)");
  }
  int k = 0;
  for (;; k++) {
    nas_alloc_fault(k, 0);
    nas_err_clear(&e);
    int rc = nas_tflm_arena(&g, NAS_TFLM_DSP, &r, &e);
    int hit = nas_alloc_fault_hit();
    nas_alloc_fault(-1, 0);
    if (!hit) {
      assert_int_equal(rc, NAS_OK);
      assert_int_equal(r.total, ref.total);
      break;
    }
    assert_int_equal(rc, NAS_ENOMEM);
    assert_true(e.msg[0] != '\0');
  }
  assert_true(k > 0);
  nas_g8_graph_free(&g);
}

/* ---- the corpus ------------------------------------------------------------------------ */

static int corpus_setup(void **state) {
  (void)state;
  if (!have_corpus) return 0;
  nas_err e = {0};
  if (nas_tflm_corpus_read(corpus_dir, &corpus, &e)) {
    fprintf(stderr, "corpus: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static int corpus_teardown(void **state) {
  (void)state;
  nas_tflm_corpus_free(&corpus);
  return 0;
}

static int model_index(const char *id) {
  for (int m = 0; m < corpus.nmodels; m++)
    if (!strcmp(corpus.model[m].id, id)) return m;
  return -1;
}

/* plans_host64.csv: model_id,buffer,size,offset,first_used,last_used. */
static void test_corpus_plans_host64(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  char path[1100];
  snprintf(path, sizeof path, "%s/plans_host64.csv", corpus_dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[512], id[128];
  assert_non_null(fgets(line, sizeof line, f));
  int cur = -1, models = 0, rows = 0, bad = 0, seen_bufs = 0;
  nas_tflm_plan p = {0};
  nas_err e = {0};
  long b, size, off, first, last;
  while (fgets(line, sizeof line, f)) {
    assert_int_equal(sscanf(line, "%127[^,],%ld,%ld,%ld,%ld,%ld", id, &b, &size, &off, &first, &last), 6);
    int m = model_index(id);
    assert_true(m >= 0);
    if (m != cur) {
      if (cur >= 0) assert_int_equal(seen_bufs, p.nbuf);
      nas_tflm_plan_free(&p);
      assert_int_equal(nas_tflm_plan_build(&corpus.model[m].graph, NULL, 0, &p, &e), NAS_OK);
      cur = m, models++, seen_bufs = 0;
    }
    rows++, seen_bufs++;
    assert_true(b >= 0 && b < p.nbuf);
    const nas_tflm_buf *x = &p.buf[b];
    if (x->size != size || x->offset != off || x->first != first || x->last != last) {
      bad++;
      fprintf(stderr, "%s buffer %ld: size %ld offset %ld use %d-%d, TFLM %ld %ld %ld-%ld\n", id, b,
              x->size, x->offset, x->first, x->last, size, off, first, last);
    }
  }
  if (cur >= 0) assert_int_equal(seen_bufs, p.nbuf);
  nas_tflm_plan_free(&p);
  fclose(f);
  printf("activation plans: %d models, %d buffers, %d differ from TFLM's plan\n", models, rows, bad);
  assert_int_equal(models, corpus.nmodels);
  assert_int_equal(bad, 0);
}

static void test_corpus_arena(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  int exact = 0, rec_exact = 0;
  nas_err e = {0};
  for (int m = 0; m < corpus.nmodels; m++) {
    const nas_tflm_corpus_model *x = &corpus.model[m];
    nas_tflm_arena_report r, rr;
    assert_int_equal(nas_tflm_arena(&x->graph, NAS_TFLM_DSP, &r, &e), NAS_OK);
    assert_int_equal(nas_tflm_arena(&x->graph, NAS_TFLM_DSP | NAS_TFLM_RECORDING, &rr, &e), NAS_OK);
    const long kinds = r.runtime + r.eval_tensors + r.node_registration + r.builtin_data +
                       r.persistent_buffers + r.scratch_handles + r.tensor_structs + r.tensor_quant;
    assert_int_equal(kinds, r.tail);
    assert_int_equal(r.total, r.head + r.tail);
    assert_int_equal(rr.head, r.head);
    const int ok = r.total == x->arena_used && r.head == x->head && r.tail == x->tail &&
                   r.head_activations == x->head_host64;
    const int rec_ok = rr.tail == x->rec_tail && rr.eval_tensors == x->rec_eval_tensors &&
                       rr.tensor_structs == x->rec_tensor_structs &&
                       rr.tensor_quant == x->rec_tensor_quant &&
                       rr.persistent_buffers == x->rec_persistent_buffers &&
                       rr.node_registration == x->rec_node_registration &&
                       rr.persistent_buffer_count == x->rec_persistent_count &&
                       rr.persistent_buffer_requested == x->rec_persistent_requested;
    if (!ok)
      fprintf(stderr, "%s: arena %ld (head %ld + tail %ld), TFLM %ld (%ld + %ld)\n", x->id, r.total,
              r.head, r.tail, x->arena_used, x->head, x->tail);
    if (!rec_ok) fprintf(stderr, "%s: recording tail %ld, TFLM %ld\n", x->id, rr.tail, x->rec_tail);
    exact += ok, rec_exact += rec_ok;
  }
  printf("arena_used_bytes: %d of %d models equal to the byte (head, tail, total); recording "
         "allocator figures: %d of %d\n", exact, corpus.nmodels, rec_exact, corpus.nmodels);
  assert_int_equal(exact, corpus.nmodels);
  assert_int_equal(rec_exact, corpus.nmodels);
}

/* The engine's own candidates: every corpus model made by nas has its arch JSON beside it;
 * lowered by the real lowering (nas_lower_structure, no training) it must give TFLM's arena
 * and the same operators (paths and features) as the exported .tflite. */
static void test_corpus_lowered(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (models.csv; set NAS_TFLM_CORPUS, see docs/testing.md)", corpus_dir);
  int lowered = 0, exact = 0;
  nas_err e = {0};
  for (int m = 0; m < corpus.nmodels; m++) {
    const nas_tflm_corpus_model *x = &corpus.model[m];
    char path[1200], *text = NULL;
    long len;
    snprintf(path, sizeof path, "%s/models/%s.arch.json", corpus_dir, x->id);
    if (access(path, R_OK) != 0) {
      assert_true(x->mlperf); /* only the MLPerf Tiny files come without an architecture */
      continue;
    }
    assert_int_equal(nas_read_file(path, &text, &len, &e), NAS_OK);
    nas_net *net = NULL;
    assert_int_equal(nas_net_build(text, path, 1, 1, &net, &e), NAS_OK);
    nas_lower_cfg cfg = {0};
    cfg.softmax = x->graph.ops[x->graph.nops - 1].kind == NAS_G8_SOFTMAX;
    nas_g8_graph g;
    assert_int_equal(nas_lower_structure(net, &cfg, &g, &e), NAS_OK);
    nas_tflm_arena_report r;
    assert_int_equal(nas_tflm_arena(&g, NAS_TFLM_DSP, &r, &e), NAS_OK);
    assert_int_equal(g.nops, x->graph.nops);
    for (int i = 0; i < g.nops; i++) {
      nas_tflm_op a, b;
      double fa[NAS_TFLM_MAXF], fb[NAS_TFLM_MAXF];
      assert_int_equal(nas_tflm_op_describe(&g, i, NAS_TFLM_DSP, &a, &e), NAS_OK);
      assert_int_equal(nas_tflm_op_describe(&x->graph, i, NAS_TFLM_DSP, &b, &e), NAS_OK);
      assert_int_equal(a.path, b.path);
      assert_int_equal(nas_tflm_features(&a, fa), nas_tflm_features(&b, fb));
      assert_memory_equal(fa, fb, sizeof fa);
    }
    lowered++;
    if (r.total == x->arena_used) exact++;
    else fprintf(stderr, "%s lowered: arena %ld, TFLM %ld\n", x->id, r.total, x->arena_used);
    nas_g8_graph_free(&g);
    nas_net_free(net);
    free(text);
  }
  printf("lowered candidates: %d of %d equal to TFLM's arena_used_bytes\n", exact, lowered);
  assert_true(lowered >= corpus.nmodels - 4);
  assert_int_equal(exact, lowered);
}

/* The engine's own planner (deploy/planner.c) on every corpus model: its activation plan is
 * never larger than TFLM's (head_bytes_host64), and its whole arena (activations and the
 * device kernels' scratch) against TFLM's head with CMSIS-NN's scratch (head_bytes_m32) is
 * larger on at most one model (probe2d_c017: a staging column for a 3-channel 3x3 conv). */
static void test_corpus_engine_planner(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found: the engine's planner against TFLM's plans");
  int better = 0, worse_m32 = 0, better_m32 = 0;
  nas_err e = {0};
  for (int m = 0; m < corpus.nmodels; m++) {
    const nas_tflm_corpus_model *x = &corpus.model[m];
    nas_g8_plan act, all;
    assert_int_equal(nas_g8_plan_activations(&x->graph, &act, &e), NAS_OK);
    assert_int_equal(nas_g8_plan_build(&x->graph, &all, &e), NAS_OK);
    if ((long)act.peak > x->head_host64)
      fail_msg("%s: activation plan %zu B, TFLM's %ld B", x->id, act.peak, x->head_host64);
    better += (long)act.peak < x->head_host64;
    assert_true(all.peak >= act.peak);
    worse_m32 += (long)all.peak > x->head, better_m32 += (long)all.peak < x->head;
    nas_g8_plan_free(&act), nas_g8_plan_free(&all);
  }
  printf("engine planner: activations never above TFLM's, below on %d of %d; with scratch "
         "above TFLM's head on %d, below on %d\n", better, corpus.nmodels, worse_m32, better_m32);
  assert_true(worse_m32 <= 1);
}

int main(void) {
  have_corpus = test_find_corpus(corpus_dir, sizeof corpus_dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greedy_rules),        cmocka_unit_test(test_plan_errors),
      cmocka_unit_test(test_fault_injection),     cmocka_unit_test(test_corpus_plans_host64),
      cmocka_unit_test(test_corpus_arena),        cmocka_unit_test(test_corpus_lowered),
      cmocka_unit_test(test_corpus_engine_planner),
  };
  return test_exit(cmocka_run_group_tests(tests, corpus_setup, corpus_teardown));
}
