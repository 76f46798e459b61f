/* Search tests (the run driver nas/run.h with the random and evolution strategies of the
 * strategy table) on a tiny generated IDX set and a tiny space: constraints reject without
 * training, states and metrics in the store, same seed -> same candidates,
 * and, through the real binary ($NAS_BIN, skipped until `nas search` is registered), a
 * SIGKILL + `nas resume` run compared with an uninterrupted one and a concurrent reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/rng.h"
#include "tests/test_proc.h"
#include "tests/test_util.h"
#include "core/alloc.h"
#include "nas/candidate.h"
#include "nas/job.h"
#include "nas/run.h"
#include "nas/strategies/strategy.h"
#include "results/pareto.h"
#include "results/store.h"
#include "train/checkpoint.h"
#include "train/net.h"

static char dir[256], data_spec[300], space_path[300];

/* The easy 3-class IDX set of test_util.h, in DIR/data. */
static void write_idx(const char *prefix, int n, uint64_t seed) {
  char d[300];
  snprintf(d, sizeof d, "%s/data", dir);
  test_write_bar_idx(d, prefix, n, seed);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-search-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char p[512];
  snprintf(p, sizeof p, "mkdir -p %s/data", dir);
  if (system(p) != 0) return -1;
  write_idx("train", 600, 1);
  write_idx("t10k", 200, 2);
  snprintf(data_spec, sizeof data_spec, "idx:%s/data", dir);
  snprintf(space_path, sizeof space_path, "%s/space.json", dir);
  FILE *f = fopen(space_path, "w");
  fputs("{\"name\":\"tiny\",\"input\":[10,10,1],\"classes\":3,\"layers\":["
        "{\"op\":\"conv\",\"out\":{\"choice\":[4,8,16]},\"k\":{\"choice\":[3,5]}},"
        "{\"op\":\"dsconv\",\"out\":{\"choice\":[8,16,32]},\"stride\":2,"
        "\"repeat\":{\"choice\":[1,2]}},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
        f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return test_rm_rf(dir);
}

/* A test search's settings, written as the run's configuration (JSON keys of nas/run.h and
 * the strategies) by run_search. */
typedef struct search_cfg {
  const char *space, *strategy, *dataset, *target, *objectives;
  long long max_sram;
  int budget, epochs, batch, population, sample_size, eval_limit, calib_samples, retrain_epochs;
  uint64_t seed;
} search_cfg;

static void base_cfg(search_cfg *c, const char *strategy) {
  memset(c, 0, sizeof *c);
  c->space = space_path, c->strategy = strategy, c->dataset = data_spec;
  c->target = "stm32f446re";
  c->budget = 6, c->epochs = 1, c->batch = 16, c->seed = 5;
  c->population = 3, c->sample_size = 2, c->calib_samples = 1000;
  c->objectives = "acc_int8_test:max,latency_pred_ms:min";
}

/* c as the JSON configuration nas_search_run takes. */
static cJSON *cfg_json(const search_cfg *c) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "space", c->space);
  cJSON_AddStringToObject(j, "dataset", c->dataset);
  cJSON_AddStringToObject(j, "target", c->target);
  cJSON_AddStringToObject(j, "objectives", c->objectives);
  cJSON_AddNumberToObject(j, "max_sram", (double)c->max_sram);
  cJSON_AddNumberToObject(j, "budget", c->budget);
  cJSON_AddNumberToObject(j, "epochs", c->epochs);
  cJSON_AddNumberToObject(j, "batch", c->batch);
  cJSON_AddNumberToObject(j, "seed", (double)c->seed);
  cJSON_AddNumberToObject(j, "population", c->population);
  cJSON_AddNumberToObject(j, "sample_size", c->sample_size);
  cJSON_AddNumberToObject(j, "eval_limit", c->eval_limit);
  cJSON_AddNumberToObject(j, "calib_samples", c->calib_samples);
  cJSON_AddNumberToObject(j, "retrain_epochs", c->retrain_epochs);
  return j;
}

/* nas_search_run (the strategy looked up by name in the table) with c as configuration. */
static int run_search(const char *db, const search_cfg *c, const nas_search_hooks *h,
                      nas_search_summary *s, nas_err *e) {
  cJSON *j = cfg_json(c);
  int rc = nas_search_run(db, c->strategy, j, h, s, e);
  cJSON_Delete(j);
  return rc;
}

static void db_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  unlink(buf);
}

/* All candidates of a run: "hash state acc_int8_test acc_int8_val latency" lines. */
static char *dump(const char *db, int64_t run) {
  nas_store *st = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, run, NULL, &ids, &n, &e), NAS_OK);
  size_t cap = (size_t)n * 240 + 1, len = 0;
  char *out = calloc(cap, 1);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    /* the weights: length and FNV-1a of each blob ("-" when none) */
    char wf[2][40];
    const char *kinds[2] = {"float", "int8"};
    for (int k = 0; k < 2; k++) {
      void *b = NULL;
      size_t bl = 0;
      nas_err we = {0};
      if (nas_store_weights_get(st, ids[i], kinds[k], &b, &bl, &we) == NAS_OK) {
        uint64_t h = 1469598103934665603ull;
        for (size_t j = 0; j < bl; j++) h = (h ^ ((unsigned char *)b)[j]) * 1099511628211ull;
        snprintf(wf[k], sizeof wf[k], "%zu:%016llx", bl, (unsigned long long)h);
      } else {
        snprintf(wf[k], sizeof wf[k], "-");
      }
      free(b);
    }
    len += (size_t)snprintf(out + len, cap - len, "%s %s %.17g %.17g %.17g %lld %d %s %s\n",
                            r.arch_hash, r.state, r.m.acc_int8_test, r.m.acc_int8_val,
                            r.m.latency_pred_ms, (long long)r.parent_id, r.retrain_epochs, wf[0],
                            wf[1]);
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_store_close(st);
  return out;
}

static void test_parse_helpers(void **state) {
  (void)state;
  long long v;
  assert_int_equal(nas_parse_size("64K", &v), 0);
  assert_int_equal(v, 65536);
  assert_int_equal(nas_parse_size("1M", &v), 0);
  assert_int_equal(v, 1048576);
  assert_int_equal(nas_parse_size("300", &v), 0);
  assert_int_equal(v, 300);
  assert_int_not_equal(nas_parse_size("12Q", &v), 0);
  char out[256];
  nas_err e = {0};
  assert_int_equal(nas_objectives_expand("acc_int8:max, latency_ms:min,sram:min", out, sizeof out, &e), NAS_OK);
  assert_string_equal(out, "acc_int8_test:max,latency_pred_ms:min,peak_sram_bytes:min");
  assert_int_not_equal(nas_objectives_expand("acc_int8", out, sizeof out, &e), NAS_OK);
}

static void test_invalid_config_creates_no_run(void **state) {
  (void)state;
  char db[400];
  db_path(db, sizeof db, "bad.db");
  search_cfg c;
  nas_search_summary s;
  nas_err e = {0};
  base_cfg(&c, "random");
  c.target = "no-such-target";
  assert_int_not_equal(run_search(db, &c, NULL, &s, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "no-such-target"));
  base_cfg(&c, "annealing");
  assert_int_not_equal(run_search(db, &c, NULL, &s, &e), NAS_OK);
  base_cfg(&c, "random");
  c.objectives = "bogus:max";
  assert_int_not_equal(run_search(db, &c, NULL, &s, &e), NAS_OK);
  base_cfg(&c, "random");
  c.space = "/nonexistent/space.json";
  assert_int_not_equal(run_search(db, &c, NULL, &s, &e), NAS_OK);
  assert_int_not_equal(access(db, F_OK), 0); /* nothing was created */
}

static int trained_while_rejected;
static void watch(const nas_search_progress *p, void *user) {
  (void)user;
  if (!strcmp(p->state, "training") && p->peak_sram > 6600) trained_while_rejected++;
}

static void test_constraints_and_states(void **state) {
  (void)state;
  char db[400];
  db_path(db, sizeof db, "c.db");
  search_cfg c;
  base_cfg(&c, "random");
  c.max_sram = 6600; /* about half the space (TFLM arena + 4096 B runtime: 5908..8564 B) */
  nas_search_summary s;
  nas_err e = {0};
  nas_search_hooks h = {watch, NULL, NULL};
  assert_int_equal(run_search(db, &c, &h, &s, &e), NAS_OK);
  assert_int_equal(s.candidates, 6);
  assert_int_equal(s.done + s.rejected + s.failed, 6);
  assert_int_equal(trained_while_rejected, 0);
  nas_store *st = NULL;
  assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, s.run_id, NULL, &ids, &n, &e), NAS_OK);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    assert_true(isfinite(r.m.peak_sram_bytes));
    if (r.m.peak_sram_bytes > 6600) {
      assert_string_equal(r.state, "rejected");
      assert_non_null(r.reason);
      assert_non_null(strstr(r.reason, "SRAM"));
      assert_true(isnan(r.m.train_seconds)); /* never trained */
    } else {
      assert_string_equal(r.state, "done");
      assert_true(r.m.acc_int8_test >= 0 && r.m.acc_int8_test <= 1);
      assert_true(isfinite(r.m.acc_float_val));
    }
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_run_row rr;
  memset(&rr, 0, sizeof rr);
  assert_int_equal(nas_store_run_get(st, s.run_id, &rr, &e), NAS_OK);
  assert_string_equal(rr.status, "done");
  nas_store_run_row_free(&rr);
  nas_store_close(st);
}

static void test_same_seed_same_run(void **state) {
  (void)state;
  const char *strategies[] = {"random", "evolution"};
  for (int k = 0; k < 2; k++) {
    char a[400], b[400];
    db_path(a, sizeof a, "a.db");
    db_path(b, sizeof b, "b.db");
    search_cfg c;
    base_cfg(&c, strategies[k]);
    c.budget = 7;
    nas_search_summary s1, s2;
    nas_err e = {0};
    assert_int_equal(run_search(a, &c, NULL, &s1, &e), NAS_OK);
    assert_int_equal(run_search(b, &c, NULL, &s2, &e), NAS_OK);
    char *da = dump(a, s1.run_id), *dbb = dump(b, s2.run_id);
    assert_string_equal(da, dbb);
    free(da), free(dbb);
  }
}

/* Stop requested from the progress callback after the 3rd candidate is done; resume ends
 * with the same candidates as an uninterrupted run. */
static volatile sig_atomic_t stop_flag;
static void stop_after3(const nas_search_progress *p, void *user) {
  (void)user;
  if (!strcmp(p->state, "done") && p->k >= 3) stop_flag = 1;
}

static void test_stop_and_resume_in_process(void **state) {
  (void)state;
  char a[400], b[400];
  db_path(a, sizeof a, "u.db");
  db_path(b, sizeof b, "i.db");
  search_cfg c;
  base_cfg(&c, "evolution");
  c.budget = 8;
  nas_search_summary s1, s2;
  nas_err e = {0};
  assert_int_equal(run_search(a, &c, NULL, &s1, &e), NAS_OK);
  stop_flag = 0;
  nas_search_hooks h = {stop_after3, NULL, &stop_flag};
  assert_int_equal(run_search(b, &c, &h, &s2, &e), NAS_OK);
  assert_int_equal(s2.interrupted, 1);
  assert_true(s2.candidates < 8);
  stop_flag = 0;
  nas_search_hooks h2 = {NULL, NULL, &stop_flag};
  assert_int_equal(nas_search_resume(b, 0, &h2, &s2, &e), NAS_OK);
  assert_int_equal(s2.interrupted, 0);
  char *da = dump(a, s1.run_id), *dbb = dump(b, s2.run_id);
  assert_string_equal(da, dbb);
  free(da), free(dbb);
  /* a done run is not resumed again */
  assert_int_not_equal(nas_search_resume(b, s2.run_id, NULL, &s2, &e), NAS_OK);
}


/* Every done candidate has both blobs; the float blob is a checkpoint file's bytes; `nas
 * export --db` (nas_export_store_run) reproduces the stored int8 test accuracy exactly and
 * writes the stored .tflite bytes; a rejected candidate has no weights and exporting it is an
 * error naming it. With an eval limit the export scores the same samples; the calibration used
 * the configured number of training samples. */
static void test_weights_and_export(void **state) {
  (void)state;
  for (int pass = 0; pass < 2; pass++) {
    char db[400], out[400];
    db_path(db, sizeof db, pass ? "w2.db" : "w.db");
    snprintf(out, sizeof out, "%s/export%d", dir, pass);
    search_cfg c;
    base_cfg(&c, "random");
    c.budget = 5;
    c.max_sram = 6600;
    c.eval_limit = pass ? 37 : 0;
    c.calib_samples = pass ? 50 : 1000; /* 50, or all the training split */
    nas_search_summary s;
    nas_err e = {0};
    assert_int_equal(run_search(db, &c, NULL, &s, &e), NAS_OK);
    assert_true(s.done >= 1);
    nas_store *st = NULL;
    assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
    int64_t *ids = NULL;
    int n = 0, exported = 0, refused = 0;
    assert_int_equal(nas_store_candidate_ids(st, s.run_id, NULL, &ids, &n, &e), NAS_OK);
    for (int i = 0; i < n; i++) {
      nas_candidate_row r;
      memset(&r, 0, sizeof r);
      assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
      void *fb = NULL, *qb = NULL;
      size_t fl = 0, ql = 0;
      int hasf = nas_store_weights_get(st, ids[i], "float", &fb, &fl, &e) == NAS_OK;
      int hasq = nas_store_weights_get(st, ids[i], "int8", &qb, &ql, &e) == NAS_OK;
      nas_export_job job = {.db = db, .candidate = ids[i], .format = "tflite", .out_dir = out};
      nas_export_summary es;
      nas_err xe = {0};
      int xrc = nas_export_store_run(&job, &es, &xe);
      if (!strcmp(r.state, "done")) {
        assert_true(hasf && hasq);
        /* the float blob is a checkpoint, byte for byte */
        char ck[400];
        snprintf(ck, sizeof ck, "%s/blob.ckpt", dir);
        FILE *f = fopen(ck, "wb");
        assert_int_equal(fwrite(fb, 1, fl, f), fl);
        fclose(f);
        nas_ckpt k;
        assert_int_equal(nas_ckpt_load(ck, &k, &e), NAS_OK);
        nas_net *net = NULL; /* the checkpoint's arch is the candidate's, normalised */
        assert_int_equal(nas_net_build(r.arch_json, "c", 1, 1, &net, &e), NAS_OK);
        assert_string_equal(k.arch_json, net->arch_json);
        assert_int_equal(nas_ckpt_apply(&k, net->g, &e), NAS_OK);
        nas_net_free(net);
        assert_non_null(strstr(k.meta_json, "\"calib\""));
        assert_true(!strstr(k.meta_json, "\"samples\":50,") == !pass);
        nas_ckpt_free(&k);
        if (xrc != NAS_OK) fail_msg("export of candidate %lld: %s", (long long)ids[i], xe.msg);
        assert_true(es.int8_test_acc == r.m.acc_int8_test); /* exactly */
        assert_true(es.float_test_acc == r.m.acc_float_test);
        assert_int_equal(es.test_n, pass ? 37 : 200);
        /* the .tflite written is the stored int8 blob */
        f = fopen(es.path, "rb");
        assert_non_null(f);
        unsigned char *buf = malloc(ql + 1);
        assert_int_equal(fread(buf, 1, ql + 1, f), ql);
        fclose(f);
        assert_memory_equal(buf, qb, ql);
        free(buf);
        if (!exported && !pass) { /* the other formats from the same stored weights */
          job.format = "c";
          assert_int_equal(nas_export_store_run(&job, &es, &xe), NAS_OK);
          assert_true(es.int8_test_acc == r.m.acc_int8_test);
          job.format = "onnx";
          assert_int_equal(nas_export_store_run(&job, &es, &xe), NAS_OK);
        }
        exported++;
      } else {
        assert_false(hasf || hasq);
        assert_int_not_equal(xrc, NAS_OK);
        char idtxt[32];
        snprintf(idtxt, sizeof idtxt, "candidate %lld", (long long)ids[i]);
        assert_non_null(strstr(xe.msg, idtxt));
        /* the reason in parentheses, closed */
        if (r.reason) assert_non_null(strstr(xe.msg, "): only done candidates have weights"));
        refused++;
      }
      free(fb), free(qb);
      nas_store_candidate_row_free(&r);
    }
    assert_true(exported >= 1);
    if (!pass) assert_true(refused >= 1);
    nas_export_job job = {.db = db, .candidate = 9999, .format = "tflite", .out_dir = out};
    nas_export_summary es;
    assert_int_not_equal(nas_export_store_run(&job, &es, &e), NAS_OK);
    assert_non_null(strstr(e.msg, "9999"));
    free(ids);
    nas_store_close(st);
  }
}

/* --retrain-front: each member of the front (search candidates) gets one retrained twin
 * (parent = it, same hash, retrain_epochs = E, done with weights); stopping during the
 * retraining and resuming ends with the same store, and no twin is trained twice. */
static volatile sig_atomic_t stop_rt;
static void stop_after_first_retrain(const nas_search_progress *p, void *user) {
  (void)user;
  if (p->retrain_epochs && !strcmp(p->state, "done")) stop_rt = 1;
}

static int timing_events(const char *db, int64_t run) {
  nas_store *st = NULL;
  nas_err e = {0};
  int n = -1;
  assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
  assert_int_equal(nas_store_event_count(st, run, "timing", &n, &e), NAS_OK);
  nas_store_close(st);
  return n;
}

static void test_retrain_front(void **state) {
  (void)state;
  char a[400], b[400];
  db_path(a, sizeof a, "ra.db");
  db_path(b, sizeof b, "rb.db");
  search_cfg c;
  base_cfg(&c, "evolution");
  c.budget = 6;
  c.retrain_epochs = 2;
  c.objectives = "acc_int8_test:max,macs:min";
  nas_search_summary s1, s2;
  nas_err e = {0};
  assert_int_equal(run_search(a, &c, NULL, &s1, &e), NAS_OK);
  assert_true(s1.retrained >= 1);
  assert_int_equal(s1.candidates, 6); /* the budget counts search candidates only */
  nas_store *st = NULL;
  assert_int_equal(nas_store_open_readonly(a, &st, &e), NAS_OK);
  int64_t *ids = NULL, *sids = NULL;
  int n = 0, ns = 0, twins = 0;
  assert_int_equal(nas_store_candidate_ids(st, s1.run_id, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(nas_store_search_candidate_ids(st, s1.run_id, NULL, &sids, &ns, &e), NAS_OK);
  assert_int_equal(ns, 6);
  assert_int_equal(n, 6 + s1.retrained);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r, p;
    memset(&r, 0, sizeof r);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    if (r.retrain_epochs) {
      twins++;
      assert_int_equal(r.retrain_epochs, 2);
      assert_string_equal(r.state, "done");
      assert_int_equal(nas_store_candidate_get(st, r.parent_id, &p, &e), NAS_OK);
      assert_int_equal(p.retrain_epochs, 0);
      assert_string_equal(p.state, "done");
      assert_string_equal(p.arch_hash, r.arch_hash);
      assert_true(p.m.macs == r.m.macs && p.m.latency_pred_ms == r.m.latency_pred_ms);
      assert_true(isfinite(r.m.acc_int8_test) && isfinite(r.m.train_seconds));
      void *w = NULL;
      size_t wl = 0;
      assert_int_equal(nas_store_weights_get(st, ids[i], "int8", &w, &wl, &e), NAS_OK);
      free(w);
      nas_store_candidate_row_free(&p);
    }
    nas_store_candidate_row_free(&r);
  }
  assert_int_equal(twins, s1.retrained);
  /* the twins are exactly the front of the search candidates */
  nas_objectives ob;
  assert_int_equal(nas_objectives_parse("acc_int8_test:max,macs:min", &ob, &e), NAS_OK);
  nas_pareto_row *rows = NULL;
  int nr = 0;
  assert_int_equal(nas_pareto_front(st, &ob, s1.run_id, "retrain_epochs = 0", &rows, &nr, &e), NAS_OK);
  assert_int_equal(nr, twins);
  free(rows), free(ids), free(sids);
  nas_store_close(st);

  stop_rt = 0;
  nas_search_hooks h = {stop_after_first_retrain, NULL, &stop_rt};
  assert_int_equal(run_search(b, &c, &h, &s2, &e), NAS_OK);
  if (s1.retrained > 1) assert_int_equal(s2.interrupted, 1);
  stop_rt = 0;
  nas_search_hooks h2 = {NULL, NULL, &stop_rt};
  if (s2.interrupted) assert_int_equal(nas_search_resume(b, 0, &h2, &s2, &e), NAS_OK);
  assert_int_equal(s2.retrained, s1.retrained);
  char *da = dump(a, s1.run_id), *dbb = dump(b, s2.run_id);
  assert_string_equal(da, dbb);
  free(da), free(dbb);
  /* every done candidate was trained exactly once in both */
  assert_int_equal(timing_events(a, s1.run_id), timing_events(b, s2.run_id));
}


/* The candidate step's pure training (nas_candidate_train) and its store write
 * (nas_candidate_store_result), as a strategy or a distributed worker uses them: a candidate in
 * state training ends done with metrics and weights, and exports to its stored accuracy. */
static void test_train_candidate_api(void **state) {
  (void)state;
  char db[400], out[400];
  db_path(db, sizeof db, "api.db");
  snprintf(out, sizeof out, "%s/export_api", dir);
  nas_store *st = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open(db, &st, &e), NAS_OK);
  nas_run_info ri = {.strategy = "dnas", .space = "tiny", .dataset = data_spec,
                     .target = "stm32f446re", .seed = 3, .budget = 1};
  int64_t run, id;
  assert_int_equal(nas_store_run_create(st, &ri, &run, &e), NAS_OK);
  const char *arch = "{\"input\":[10,10,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":4,"
                     "\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";
  assert_int_equal(nas_store_candidate_add(st, run, arch, "00000000000000ab", 0, 0, &id, NULL, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_set_state(st, id, "training", NULL, &e), NAS_OK);
  nas_data_opts o;
  nas_data_opts_default(&o, data_spec);
  nas_data d;
  assert_int_equal(nas_data_load(&o, &d, &e), NAS_OK);
  nas_metrics m;
  nas_metrics_clear(&m);
  m.macs = 1234;
  nas_candidate_cfg g = {.data = &d, .dataset = data_spec, .epochs = 1, .batch = 16, .seed = 7,
                         .calib_samples = 1000};
  nas_candidate_result res;
  assert_int_equal(nas_candidate_train(arch, id, &g, &res, &e), NAS_OK);
  assert_string_equal(res.reason, "");
  assert_int_equal(nas_candidate_store_result(st, run, id, &res, &m, &e), NAS_OK);
  nas_candidate_result_free(&res);
  assert_true(m.macs == 1234 && isfinite(m.acc_int8_test) && isfinite(m.train_seconds));
  nas_candidate_row r;
  assert_int_equal(nas_store_candidate_get(st, id, &r, &e), NAS_OK);
  assert_string_equal(r.state, "done");
  assert_true(r.m.acc_int8_test == m.acc_int8_test);
  nas_store_candidate_row_free(&r);
  nas_store_close(st);
  nas_data_free(&d);
  nas_export_job job = {.db = db, .candidate = id, .format = "tflite", .out_dir = out};
  nas_export_summary es;
  assert_int_equal(nas_export_store_run(&job, &es, &e), NAS_OK);
  assert_true(es.int8_test_acc == m.acc_int8_test);
}


/* Fault injection (core/alloc.h), SQLite style: a small search whose candidates are all over
 * budget (priced, never trained) is run with the 1st, 2nd, ... allocation failing, once
 * persistently (every later one fails too) and once alone, until a run needs no failure. Each
 * run ends cleanly: NAS_OK or NAS_ENOMEM, nothing leaked (under ASan), and a run that
 * succeeds despite a failure has not recorded it as a candidate's reason (running out of
 * memory while pricing is an error, not an "invalid architecture"). */
static void test_fault_injection(void **state) {
  (void)state;
  if (nas_alloc_fault(-1, 0) != 0)
    test_skip("built without fault injection (configure with -DNAS_FAULT_INJECTION=ON)");
  char db[400];
  search_cfg c;
  base_cfg(&c, "evolution");
  c.budget = 3, c.max_sram = 1;
  /* hundreds of stores are created: in memory-backed /dev/shm when there is one */
  char shm[64] = "";
  if (access("/dev/shm", W_OK) == 0) {
    snprintf(shm, sizeof shm, "/dev/shm/nas-fault-XXXXXX");
    if (!mkdtemp(shm)) shm[0] = '\0';
  }
  cJSON *j = cfg_json(&c);
  for (int persistent = 1; persistent >= 0; persistent--) {
    long k = 0;
    for (;; k++) {
      if (shm[0]) snprintf(db, sizeof db, "%s/fault.db", shm);
      else snprintf(db, sizeof db, "%s/fault.db", dir);
      for (int f = 0; f < 3; f++) { /* a fresh store each time: no WAL of the last one */
        char p[460];
        snprintf(p, sizeof p, "%s%s", db, f == 0 ? "" : f == 1 ? "-wal" : "-shm");
        unlink(p);
      }
      nas_search_summary s;
      nas_err e = {0};
      nas_alloc_fault(k, persistent); /* the configuration is built before: not the engine's */
      int rc = nas_search_run(db, c.strategy, j, NULL, &s, &e);
      int hit = nas_alloc_fault_hit();
      nas_alloc_fault(-1, 0);
      if (rc != NAS_OK && rc != NAS_ENOMEM) fail_msg("allocation %ld failing: %d %s", k, rc, e.msg);
      if (!hit) {
        assert_int_equal(rc, NAS_OK);
        break;
      }
      /* A run may succeed despite a failure, even a persistent one: SQLite tolerates running
       * out of memory in the WAL checkpoint it tries when the store is closed (the data stays
       * in the WAL and is read back on the next open). Then the store must hold the whole
       * run, and no candidate's reason may be the failure. */
      if (rc == NAS_OK) {
        assert_int_equal(test_count_where(db, "reason LIKE '%out of memory%'"), 0);
        assert_int_equal(test_count_where(db, "state = 'rejected'"), 3);
      }
    }
    assert_true(k > 100); /* the whole path was exercised */
  }
  cJSON_Delete(j);
  if (shm[0]) test_rm_rf(shm);
}

/* ---- through the real binary ------------------------------------------------------------- */

#define RUN_STATUS "SELECT status FROM runs WHERE id = 1" /* with test_sql_int's want */
#define FINISHED "state IN ('done','rejected','failed')"

static const char *nas_bin(void) {
  const char *bin = getenv("NAS_BIN");
  if (!bin) return NULL;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s search --help >/dev/null 2>&1", bin);
  int st = system(cmd);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("%s search --help failed", bin);
  return bin;
}

static void test_kill_and_resume_binary(void **state) {
  (void)state;
  const char *bin = nas_bin();
  if (!bin) test_skip("NAS_BIN not set (run through ctest)");
  char u[400], budget[] = "8", seed[] = "9";
  db_path(u, sizeof u, "bu.db");
  for (int at = 1; at <= 5; at += 2) {
    char k[400];
    db_path(k, sizeof k, "bk.db");
    char *args_u[] = {(char *)bin, "search", "--space", space_path, "--strategy", "evolution",
                      "--population", "3", "--sample-size", "2", "--dataset", data_spec,
                      "--target", "stm32f446re", "--budget", budget, "--epochs", "2",
                      "--batch", "16", "--seed", seed, "--db", u, NULL};
    int st;
    if (at == 1) { /* the reference run, with readers running all along: they never fail */
      pid_t p = test_spawn(bin, args_u);
      int reads = 0;
      while (waitpid(p, &st, WNOHANG) != p) {
        if (test_count_where(u, "1") >= 0) {
          char cmd[1200];
          snprintf(cmd, sizeof cmd, "%s pareto --db %s >/dev/null && %s runs --db %s >/dev/null",
                   bin, u, bin, u);
          int rs = system(cmd);
          assert_true(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
          reads++;
        }
        test_sleep_ms(5);
      }
      assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
      assert_true(reads > 0);
    }
    char *args_k[sizeof args_u / sizeof args_u[0]];
    memcpy(args_k, args_u, sizeof args_u);
    args_k[23] = k;
    pid_t p = test_spawn(bin, args_k);
    /* a reader while the search writes: never fails */
    int reads = 0, due = 0;
    for (time_t t0 = time(NULL); time(NULL) - t0 < 900;) {
      int n = test_count_where(k, FINISHED);
      /* kill mid-training (a candidate in state training) once `at` candidates are final */
      if (n >= at && test_count_where(k, "state = 'training'") > 0) {
        /* freeze it, and kill it only if it is still mid-training (else let it go on) */
        assert_int_equal(kill(p, SIGSTOP), 0);
        assert_int_equal(waitpid(p, &st, WUNTRACED), p);
        if (!WIFSTOPPED(st)) fail_msg("the search ended (status %d) before the kill", st);
        if (test_count_where(k, "state = 'training'") > 0) {
          due = 1;
          break;
        }
        assert_int_equal(kill(p, SIGCONT), 0);
      }
      if (n >= 0 && reads < 3) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "%s pareto --db %s >/dev/null 2>&1", bin, k);
        int rs = system(cmd);
        assert_true(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
        reads++;
      }
      if (waitpid(p, &st, WNOHANG) == p)
        fail_msg("the search ended (status %d) before the kill due after %d final candidates",
                 st, at);
      test_sleep_ms(1);
    }
    if (!due) fail_msg("no candidate was training after %d final ones within 900 s", at);
    /* the kill happened, mid-training: the process died by SIGKILL and left a candidate in
       training (nothing can have changed the store after the signal) */
    assert_int_equal(kill(p, SIGKILL), 0); /* a stopped process dies by SIGKILL at once */
    assert_int_equal(waitpid(p, &st, 0), p);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_true(test_count_where(k, "state = 'training'") > 0);
    assert_false(test_sql_int(k, RUN_STATUS, "done"));
    char *args_r[] = {(char *)bin, "resume", "--db", k, NULL};
    p = test_spawn(bin, args_r);
    waitpid(p, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(test_count_where(k, "state NOT IN ('done','rejected','failed')"), 0);
    char *du = dump(u, 1), *dk = dump(k, 1);
    assert_string_equal(du, dk);
    free(du), free(dk);
  }
}


/* SIGINT to a real `nas search` while a candidate trains: the candidate finishes (it is done,
 * nothing is left in training), the process exits 0 with the run interrupted, and `nas
 * resume` ends with the same store as an uninterrupted run of the same seed. Two SIGINTs stop
 * at once (the process dies by the signal, the candidate stays in training) and resume trains
 * it again from scratch: same store again. */
static void test_sigint_binary(void **state) {
  (void)state;
  const char *bin = nas_bin();
  if (!bin) test_skip("NAS_BIN not set (run through ctest)");
  char u[400];
  db_path(u, sizeof u, "su.db");
  char *args[] = {(char *)bin, "search", "--space", space_path, "--strategy", "evolution",
                  "--population", "3", "--sample-size", "2", "--dataset", data_spec,
                  "--target", "stm32f446re", "--budget", "6", "--epochs", "4", "--batch", "16",
                  "--seed", "11", "--retrain-front", "1", "--db", u, NULL};
  const int DB_ARG = 25;
  int st;
  pid_t p = test_spawn(bin, args);
  waitpid(p, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  char *du = dump(u, 1);
  for (int twice = 0; twice < 2; twice++) {
    char k[400];
    db_path(k, sizeof k, twice ? "s2.db" : "s1.db");
    char *a2[sizeof args / sizeof args[0]];
    memcpy(a2, args, sizeof args);
    a2[DB_ARG] = k;
    p = test_spawn(bin, a2);
    int signalled = 0;
    for (int t = 0; t < 60000 && !signalled; t++) {
      if (test_count_where(k, "state = 'training' AND retrain_epochs = 0") > 0 &&
          test_count_where(k, FINISHED) >= 1) {
        kill(p, SIGINT);
        if (twice) test_sleep_ms(2), kill(p, SIGINT);
        signalled = 1;
      } else if (waitpid(p, &st, WNOHANG) == p) {
        p = 0;
        break;
      } else {
        test_sleep_ms(1);
      }
    }
    assert_true(signalled);
    waitpid(p, &st, 0);
    if (!twice) {
      assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
      /* nothing is left mid-training; when the signal lands just after the candidate it was
         aimed at finished, the next one may already be proposed (priced, not trained): it
         stays proposed and resume trains it */
      assert_int_equal(test_count_where(k, "state = 'training'"), 0);
      assert_true(test_count_where(k, "state = 'proposed'") <= 1);
      assert_true(test_sql_int(k, RUN_STATUS, "interrupted"));
      assert_true(test_count_where(k, "1") < 6); /* stopped before the budget */
    } else if (WIFSIGNALED(st)) {
      assert_int_equal(WTERMSIG(st), SIGINT);
      assert_false(test_sql_int(k, RUN_STATUS, "done"));
    }
    char *args_r[] = {(char *)bin, "resume", "--db", k, NULL};
    pid_t r = test_spawn(bin, args_r);
    waitpid(r, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(test_sql_int(k, RUN_STATUS, "done"));
    char *dk = dump(k, 1);
    assert_string_equal(du, dk);
    free(dk);
  }
  free(du);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_helpers),
      cmocka_unit_test(test_invalid_config_creates_no_run),
      cmocka_unit_test(test_constraints_and_states),
      cmocka_unit_test(test_same_seed_same_run),
      cmocka_unit_test(test_stop_and_resume_in_process),
      cmocka_unit_test(test_weights_and_export),
      cmocka_unit_test(test_retrain_front),
      cmocka_unit_test(test_train_candidate_api),
      cmocka_unit_test(test_fault_injection),
      cmocka_unit_test(test_kill_and_resume_binary),
      cmocka_unit_test(test_sigint_binary),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
