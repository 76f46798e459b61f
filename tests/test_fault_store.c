/* The store under allocation fault injection (tests/test_fault_util.h; the rules are those
 * of test_fault.c). SQLite's allocations count too: results/store.c wraps its allocator
 * into the schedule at the first open. Cases:
 *   create opening a new store file: schema creation and both migrations (N steps by 4:
 *          SQLite makes some 4,400 allocations there; every N with NAS_FAULT_FULL=1);
 *   store  a round trip on an existing empty store: open, run, candidate, training, layer
 *          costs, the final transition with metrics and two blobs, the retrained twin, an
 *          event, run status, a Pareto query and read-backs, close.
 * After every run a fresh read-only SQLite connection must find the file intact
 * (integrity_check) with no partial candidate: absent, or complete in a state the operation
 * passes through (metrics and weights only with 'done'; the twin with all its layer costs),
 * the run 'done' only with everything before it; and nas_store_open must still open it. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results/pareto.h"
#include "results/store.h"
#include "tests/test_fault_util.h"
#include "tests/test_util.h"

/* ---- store ----------------------------------------------------------------------------- */

static const char *const CAND_ARCH = "{\"input\":[8,8,1],\"classes\":2,\"layers\":[]}";
static const char *const CAND_HASH = "00112233aabbccdd";
#define N_LAYER_ROWS 3
#define TWIN_EPOCHS 3 /* the retrained twin of the candidate */
#define BLOB_LEN 3000

typedef struct store_ctx {
  char path[300];                  /* the store of a run */
  char tmpl[300];                  /* an empty, migrated store copied to path before a run
                                      ("" to start from no file) */
  int body;                        /* run the round trip after opening (0: open only) */
  unsigned char blob[2][BLOB_LEN]; /* float, int8 weights */
  nas_metrics m;                   /* the metrics of the final transition */
} store_ctx;

static void rm_store(const char *p) {
  char x[320];
  remove(p);
  snprintf(x, sizeof x, "%s-wal", p);
  remove(x);
  snprintf(x, sizeof x, "%s-shm", p);
  remove(x);
}

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
  fclose(a);
  assert_int_equal(fclose(b), 0);
}

static void store_setup(void *p) {
  store_ctx *c = p;
  rm_store(c->path);
  if (c->tmpl[0]) copy_file(c->tmpl, c->path);
}

static int store_body(store_ctx *c, nas_store *s, nas_err *e) {
  nas_run_info ri = {.config_json = "{\"fault\":true}", .strategy = "random", .space = "kws",
                     .dataset = "idx:x", .target = "stm32f446re", .seed = 3, .budget = 1,
                     .objectives = "acc_int8_test:max,latency_pred_ms:min"};
  int64_t run, cand;
  int rc = nas_store_run_create(s, &ri, &run, e);
  if (!rc) rc = nas_store_candidate_add(s, run, CAND_ARCH, CAND_HASH, 0, 0, &cand, NULL, e);
  if (!rc) rc = nas_store_candidate_set_state(s, cand, "training", NULL, e);
  nas_layer_cost lc[N_LAYER_ROWS];
  for (int i = 0; i < N_LAYER_ROWS; i++)
    lc[i] = (nas_layer_cost){i, "conv", 100 * i, 10 * i, 20 * i, 30 * i, 0.5 * i};
  if (!rc) rc = nas_store_layer_costs_put(s, cand, lc, N_LAYER_ROWS, e);
  nas_store_blob b[2] = {{"float", c->blob[0], BLOB_LEN}, {"int8", c->blob[1], BLOB_LEN}};
  if (!rc) rc = nas_store_candidate_finish(s, cand, "done", NULL, &c->m, b, 2, e);
  int64_t twin = 0;
  if (!rc) rc = nas_store_candidate_add_retrain(s, cand, TWIN_EPOCHS, &twin, NULL, e);
  if (!rc) rc = nas_store_event_add(s, run, cand, "candidate_done", "{\"id\":1}", NULL, e);
  if (!rc) rc = nas_store_run_set_status(s, run, "done", e);
  /* read back */
  nas_objectives o;
  nas_pareto_row *rows = NULL;
  int n = 0;
  if (!rc) rc = nas_objectives_parse(ri.objectives, &o, e);
  if (!rc) rc = nas_pareto_front(s, &o, run, "macs < 100000", &rows, &n, e);
  if (!rc) {
    assert_int_equal(n, 1);
    assert_true(rows[0].id == cand);
  }
  free(rows);
  nas_candidate_row cr;
  if (!rc && !(rc = nas_store_candidate_get(s, cand, &cr, e))) {
    assert_string_equal(cr.state, "done");
    assert_string_equal(cr.arch_json, CAND_ARCH);
    nas_store_candidate_row_free(&cr);
  }
  void *data = NULL;
  size_t len = 0;
  if (!rc && !(rc = nas_store_weights_get(s, cand, "int8", &data, &len, e))) {
    assert_int_equal(len, BLOB_LEN);
    assert_memory_equal(data, c->blob[1], BLOB_LEN);
  }
  free(data);
  nas_layer_cost *got = NULL;
  if (!rc && !(rc = nas_store_layer_costs_get(s, cand, &got, &n, e))) {
    assert_int_equal(n, N_LAYER_ROWS);
    assert_true(got[2].macs == 200);
  }
  free(got);
  int64_t *ids = NULL;
  if (!rc && !(rc = nas_store_candidate_ids(s, run, "done", &ids, &n, e))) assert_int_equal(n, 1);
  free(ids);
  ids = NULL;
  if (!rc && !(rc = nas_store_search_candidate_ids(s, run, NULL, &ids, &n, e))) {
    assert_int_equal(n, 1);
    assert_true(ids[0] == cand);
  }
  free(ids);
  if (!rc && !(rc = nas_store_event_count(s, run, "candidate_done", &n, e))) assert_int_equal(n, 1);
  nas_run_row rr;
  if (!rc && !(rc = nas_store_run_get(s, run, &rr, e))) {
    assert_string_equal(rr.status, "done");
    nas_store_run_row_free(&rr);
  }
  return rc;
}

static int store_run(void *p, nas_err *e) {
  store_ctx *c = p;
  nas_store *s = NULL;
  int rc = nas_store_open(c->path, &s, e);
  if (!rc && c->body) rc = store_body(c, s, e);
  nas_store_close(s);
  return rc;
}

/* One integer from a query on db. */
static long long q_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void store_check(void *p, int rc, int hit) {
  store_ctx *c = p;
  (void)hit;
  struct stat sb;
  if (stat(c->path, &sb) != 0) return; /* failed before the file was created */
  sqlite3 *db;
  if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("%s: %s", c->path, sqlite3_errmsg(db));
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  long long v = q_int(db, "PRAGMA user_version"); /* each migration step commits on its own */
  assert_true(v >= 0 && v <= NAS_STORE_VERSION);
  if (v >= 1) {
    assert_true(q_int(db, "SELECT count(*) FROM runs") <= 1);
    long long n_cand = q_int(db, "SELECT count(*) FROM candidates");
    assert_true(n_cand <= 2);
    long long run_done = q_int(db, "SELECT count(*) FROM runs WHERE status = 'done'");
    assert_int_equal(q_int(db, "SELECT count(*) FROM runs WHERE status NOT IN ('running','done')"), 0);
    long long events = q_int(db, "SELECT count(*) FROM events");
    assert_true(events <= 1);
    long long layers = q_int(db, "SELECT count(*) FROM layer_costs");
    long long weights = q_int(db, "SELECT count(*) FROM weights");
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT arch_json, arch_hash, state, reason, "
                                            "acc_float_val, acc_int8_test, macs, latency_pred_ms, "
                                            "train_seconds FROM candidates ORDER BY id LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
      assert_string_equal((const char *)sqlite3_column_text(st, 0), CAND_ARCH);
      assert_string_equal((const char *)sqlite3_column_text(st, 1), CAND_HASH);
      const char *state = (const char *)sqlite3_column_text(st, 2);
      assert_int_equal(sqlite3_column_type(st, 3), SQLITE_NULL);
      if (!strcmp(state, "done")) { /* the final transition is all there */
        assert_true(sqlite3_column_double(st, 4) == c->m.acc_float_val);
        assert_true(sqlite3_column_double(st, 5) == c->m.acc_int8_test);
        assert_int_equal(sqlite3_column_int64(st, 6), (long long)c->m.macs);
        assert_true(sqlite3_column_double(st, 7) == c->m.latency_pred_ms);
        assert_true(sqlite3_column_double(st, 8) == c->m.train_seconds);
        assert_int_equal(weights, 2);
        assert_int_equal(q_int(db, "SELECT count(*) FROM weights WHERE length(data) = 3000 AND "
                                   "((kind = 'float' AND hex(substr(data, 1, 4)) = '01020304') OR "
                                   "(kind = 'int8' AND hex(substr(data, 2999, 2)) = 'FEFF'))"),
                         2);
        /* the twin, when there: whole (the row and its copied layer costs) */
        assert_int_equal(layers, N_LAYER_ROWS * n_cand);
        if (n_cand == 2) {
          char sql[400];
          snprintf(sql, sizeof sql, "SELECT count(*) FROM candidates t JOIN candidates p ON"
                   " t.parent_id = p.id WHERE t.retrain_epochs = %d AND t.state = 'proposed' AND"
                   " t.arch_hash = p.arch_hash AND t.macs = p.macs AND t.acc_int8_test IS NULL",
                   TWIN_EPOCHS);
          assert_int_equal(q_int(db, sql), 1);
        }
      } else { /* proposed or training: none of it */
        assert_true(!strcmp(state, "proposed") || !strcmp(state, "training"));
        for (int i = 4; i <= 8; i++) assert_int_equal(sqlite3_column_type(st, i), SQLITE_NULL);
        assert_true(layers == 0 || layers == N_LAYER_ROWS);
        assert_int_equal(weights + run_done, 0);
        assert_int_equal(n_cand, 1);
      }
    } else {
      assert_int_equal(weights + layers + events + run_done, 0);
    }
    sqlite3_finalize(st);
    if (run_done) assert_true(events == 1 && n_cand == 2);
  }
  sqlite3_close(db);
  /* and the library still opens it (migrating a version-0 file) */
  nas_store *s = NULL;
  nas_err e = {0};
  if (nas_store_open(c->path, &s, &e)) fail_msg("after rc %d: reopen: %s", rc, e.msg);
  nas_store_close(s);
}

static void store_init(store_ctx *c) {
  for (int i = 0; i < BLOB_LEN; i++) c->blob[0][i] = (unsigned char)(i % 4 + 1);
  for (int i = 0; i < BLOB_LEN; i++) c->blob[1][i] = (unsigned char)(0xff - (BLOB_LEN - 1 - i));
  nas_metrics_clear(&c->m);
  c->m.acc_float_val = 0.75, c->m.acc_int8_test = 0.625, c->m.macs = 12345;
  c->m.latency_pred_ms = 1.5, c->m.train_seconds = 2.25;
}

/* Creating a store: a new file, its schema and both migrations. */
static void test_store_create(void **state) {
  (void)state;
  NEED_FAULTS();
  static store_ctx c;
  store_init(&c);
  snprintf(c.path, sizeof c.path, "%s/create.db", g_fast);
  nas_err e = {0};
  store_setup(&c);
  if (store_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  store_check(&c, NAS_OK, 0);
  /* SQLite makes some 4,400 allocations creating the schema and migrating it, the longest
   * case by far: every 4th N by default, every N with NAS_FAULT_FULL=1. Both end in the same
   * set of distinct failures (each of the store's calls spans more than four of SQLite's
   * allocations; compared with NAS_FAULT_VERBOSE=1 when this was written). */
  fault_case fc = {"create", &c, store_setup, store_run, store_check, 4};
  faultsim(&fc);
  rm_store(c.path);
}

/* The round trip on an existing (empty, migrated) store. */
static void test_store(void **state) {
  (void)state;
  NEED_FAULTS();
  static store_ctx c;
  store_init(&c);
  snprintf(c.tmpl, sizeof c.tmpl, "%s/template.db", g_fast);
  snprintf(c.path, sizeof c.path, "%s/fault.db", g_fast);
  nas_err e = {0};
  nas_store *s = NULL;
  rm_store(c.tmpl);
  if (nas_store_open(c.tmpl, &s, &e)) fail_msg("%s", e.msg);
  nas_store_close(s); /* checkpointed: the whole store is in the main file */
  c.body = 1;
  store_setup(&c);
  if (store_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  store_check(&c, NAS_OK, 0);
  fault_case fc = {"store", &c, store_setup, store_run, store_check, 1};
  faultsim(&fc);
  rm_store(c.path);
  rm_store(c.tmpl);
}

static int setup(void **st) {
  (void)st;
  return fault_setup();
}

static int teardown(void **st) {
  (void)st;
  return fault_teardown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_create),
      cmocka_unit_test(test_store),
  };
  fault_filter();
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
