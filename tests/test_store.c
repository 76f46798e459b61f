/* SQLite store: schema creation and version, migration from an empty file, reopening,
 * refusing non-databases and newer versions (file untouched), candidates (dedupe, state
 * transitions, metrics NULL vs values), weights round trip, layer costs, events, and a
 * concurrent reader while a write transaction is open, migration of a version-1 file,
 * retrained twins, and the all-or-nothing final transition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/store.h"
#include "tests/test_util.h"

static char *tmp_path(const char *tag) {
  static char buf[4][256];
  static int k;
  char *p = buf[k++ & 3];
  snprintf(p, 256, "/tmp/nas_test_store_%d_%s.db", (int)getpid(), tag);
  return p;
}

static void rm_db(const char *p) {
  char x[300];
  remove(p);
  snprintf(x, sizeof x, "%s-wal", p);
  remove(x);
  snprintf(x, sizeof x, "%s-shm", p);
  remove(x);
}

/* A read-only connection of the test's own on a store file (close with sqlite3_close). */
static sqlite3 *ro_db(const char *path) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("%s: %s", path, sqlite3_errmsg(db));
  return db;
}

static nas_store *open_ok(const char *path) {
  nas_store *s = NULL;
  nas_err e = {0};
  if (nas_store_open(path, &s, &e) != NAS_OK) fail_msg("open %s: %s", path, e.msg);
  return s;
}

static int64_t make_run(nas_store *s) {
  nas_err e = {0};
  nas_run_info ri = {.config_json = "{\"budget\":10}", .strategy = "random", .space = "kws-dscnn",
                     .dataset = "fashion-mnist", .target = "cortex-m4", .seed = 7, .budget = 10,
                     .objectives = "acc_int8_test:max,latency_pred_ms:min"};
  int64_t id = 0;
  if (nas_store_run_create(s, &ri, &id, &e)) fail_msg("run_create: %s", e.msg);
  assert_true(id > 0);
  return id;
}

static void test_schema(void **state) {
  (void)state;
  char *p = tmp_path("schema");
  rm_db(p);
  nas_store *s = open_ok(p);
  nas_err e = {0};
  int v = -1;
  assert_int_equal(nas_store_user_version(s, &v, &e), NAS_OK);
  assert_int_equal(v, NAS_STORE_VERSION);
  /* the store's connection is internal: a read-only connection of our own on the file */
  sqlite3 *db = ro_db(p);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  /* foreign keys are on for the store's connection: a candidate of a missing run is refused */
  int64_t orphan = -1;
  assert_int_not_equal(nas_store_candidate_add(s, 4242, "{}", "00000000000000ff", 0, 0, &orphan,
                                               NULL, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "FOREIGN KEY"));
  static const char *const TABLES[] = {"runs", "candidates", "weights", "layer_costs", "events"};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, TABLES[i], -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
  }
  /* every metric is a column */
  for (int i = 0; i < NAS_N_METRICS; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM candidates", nas_metric_name(i));
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  int64_t run = make_run(s);
  nas_store_close(s);
  /* reopen: data kept, no re-migration */
  s = open_ok(p);
  nas_run_row r;
  assert_int_equal(nas_store_run_get(s, run, &r, &e), NAS_OK);
  assert_string_equal(r.status, "running");
  assert_string_equal(r.strategy, "random");
  assert_string_equal(r.config_json, "{\"budget\":10}");
  assert_int_equal(r.seed, 7);
  assert_int_equal(r.budget, 10);
  nas_store_run_row_free(&r);
  assert_int_equal(nas_store_run_set_status(s, run, "interrupted", &e), NAS_OK);
  assert_int_equal(nas_store_run_get(s, run, &r, &e), NAS_OK);
  assert_string_equal(r.status, "interrupted");
  nas_store_run_row_free(&r);
  assert_int_not_equal(nas_store_run_set_status(s, run, "paused", &e), NAS_OK);
  assert_non_null(strstr(e.msg, "unknown status 'paused'"));
  assert_int_not_equal(nas_store_run_set_status(s, 999, "done", &e), NAS_OK);
  assert_non_null(strstr(e.msg, "no such run"));
  int64_t *ids;
  int n;
  assert_int_equal(nas_store_run_ids(s, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0], run);
  free(ids);
  nas_store_close(s);
  /* read-only open works on a migrated store and refuses writes */
  assert_int_equal(nas_store_open_readonly(p, &s, &e), NAS_OK);
  assert_int_not_equal(nas_store_run_set_status(s, run, "done", &e), NAS_OK);
  assert_non_null(strstr(e.msg, "read-only"));
  nas_store_close(s);
  rm_db(p);
}

static void test_migrate_empty_file(void **state) {
  (void)state;
  char *p = tmp_path("empty");
  rm_db(p);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  fclose(f);
  nas_store *s = open_ok(p);
  nas_err e = {0};
  int v;
  assert_int_equal(nas_store_user_version(s, &v, &e), NAS_OK);
  assert_int_equal(v, NAS_STORE_VERSION);
  make_run(s);
  nas_store_close(s);
  rm_db(p);
  /* read-only open of a missing file is an error naming it */
  assert_int_not_equal(nas_store_open_readonly(p, &s, &e), NAS_OK);
  assert_null(s);
  assert_non_null(strstr(e.msg, p));
}

static void file_bytes(const char *p, char *buf, size_t cap, size_t *n) {
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  *n = fread(buf, 1, cap, f);
  fclose(f);
}

static void test_refuse(void **state) {
  (void)state;
  char *p = tmp_path("notdb");
  rm_db(p);
  static const char text[] = "this is not a database, just some text in a file\n";
  FILE *f = fopen(p, "wb");
  fputs(text, f);
  fclose(f);
  nas_store *s = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open(p, &s, &e), NAS_EFORMAT);
  assert_null(s);
  assert_non_null(strstr(e.msg, p));
  assert_non_null(strstr(e.msg, "not a SQLite database"));
  assert_null(strchr(e.msg, '\n'));
  char buf[256];
  size_t n;
  file_bytes(p, buf, sizeof buf, &n);
  assert_int_equal(n, strlen(text));
  assert_memory_equal(buf, text, n);
  rm_db(p);

  /* a newer user_version: refused, not modified */
  p = tmp_path("newer");
  rm_db(p);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a); PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  char before[8192], after[8192];
  size_t nb, na;
  file_bytes(p, before, sizeof before, &nb);
  assert_int_equal(nas_store_open(p, &s, &e), NAS_EFORMAT);
  assert_null(s);
  assert_non_null(strstr(e.msg, "version 99 is newer"));
  assert_non_null(strstr(e.msg, p));
  file_bytes(p, after, sizeof after, &na);
  assert_int_equal(nb, na);
  assert_memory_equal(before, after, nb);
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", p);
  assert_int_not_equal(access(wal, F_OK), 0); /* not switched to WAL */
  assert_int_equal(nas_store_open_readonly(p, &s, &e), NAS_EFORMAT);
  rm_db(p);

  /* another application's database (user_version 0, its own tables, rollback journal) and one
     that claims a store version without the store's tables: refused by writer and reader with
     one line naming the file, byte for byte untouched, no WAL, no journal left */
  static const char *const FOREIGN[] = {
      "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES('x')",
      "CREATE TABLE runs(a); PRAGMA user_version = 2"};
  for (int k = 0; k < 2; k++) {
    p = tmp_path(k ? "claims" : "other-app");
    rm_db(p);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, FOREIGN[k], NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    file_bytes(p, before, sizeof before, &nb);
    for (int ro = 0; ro < 2; ro++) {
      nas_err_clear(&e);
      assert_int_equal(ro ? nas_store_open_readonly(p, &s, &e) : nas_store_open(p, &s, &e),
                       NAS_EFORMAT);
      assert_null(s);
      assert_non_null(strstr(e.msg, p));
      assert_non_null(strstr(e.msg, "not a nas store"));
      assert_null(strchr(e.msg, '\n'));
    }
    if (!k) assert_non_null(strstr(e.msg, "'notes'"));
    file_bytes(p, after, sizeof after, &na);
    assert_int_equal(nb, na);
    assert_memory_equal(before, after, nb);
    snprintf(wal, sizeof wal, "%s-wal", p);
    assert_int_not_equal(access(wal, F_OK), 0);
    snprintf(wal, sizeof wal, "%s-journal", p);
    assert_int_not_equal(access(wal, F_OK), 0);
    rm_db(p);
  }
  /* an empty SQLite database (no table, version 0) becomes a store */
  p = tmp_path("emptydb");
  rm_db(p);
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 0; VACUUM", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(nas_store_open(p, &s, &e), NAS_OK);
  nas_store_close(s);
  assert_int_equal(nas_store_open_readonly(p, &s, &e), NAS_OK);
  nas_store_close(s);
  rm_db(p);
}

static void test_candidates(void **state) {
  (void)state;
  char *p = tmp_path("cand");
  rm_db(p);
  nas_store *s = open_ok(p);
  nas_err e = {0};
  int64_t run = make_run(s), run2 = make_run(s);
  int64_t a, b, c, d;
  int existed = -1;
  assert_int_equal(nas_store_candidate_add(s, run, "{\"x\":1}", "00000000000000aa", 0, 0, &a, &existed, &e), NAS_OK);
  assert_int_equal(existed, 0);
  assert_int_equal(nas_store_candidate_add(s, run, "{\"x\":2}", "00000000000000bb", a, 1, &b, &existed, &e), NAS_OK);
  assert_int_equal(existed, 0);
  /* duplicate hash in the same run: existing id, nothing written */
  assert_int_equal(nas_store_candidate_add(s, run, "{\"x\":1}", "00000000000000aa", 0, 3, &c, &existed, &e), NAS_OK);
  assert_int_equal(existed, 1);
  assert_int_equal(c, a);
  /* same hash in another run is a new candidate */
  assert_int_equal(nas_store_candidate_add(s, run2, "{\"x\":1}", "00000000000000aa", 0, 0, &d, &existed, &e), NAS_OK);
  assert_int_equal(existed, 0);
  assert_int_not_equal(d, a);
  int64_t *ids;
  int n;
  assert_int_equal(nas_store_candidate_ids(s, run, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 2);
  free(ids);
  int64_t found;
  assert_int_equal(nas_store_candidate_find(s, run, "00000000000000bb", &found, &e), NAS_OK);
  assert_int_equal(found, b);
  assert_int_equal(nas_store_candidate_find(s, run, "ffff", &found, &e), NAS_OK);
  assert_int_equal(found, 0);

  nas_candidate_row r;
  assert_int_equal(nas_store_candidate_get(s, b, &r, &e), NAS_OK);
  assert_string_equal(r.state, "proposed");
  assert_int_equal(r.parent_id, a);
  assert_int_equal(r.generation, 1);
  assert_null(r.reason);
  for (int i = 0; i < NAS_N_METRICS; i++) assert_true(isnan(*nas_metrics_at(&r.m, i)));
  nas_store_candidate_row_free(&r);

  /* transitions */
  assert_int_equal(nas_store_candidate_set_state(s, a, "training", NULL, &e), NAS_OK);
  assert_int_not_equal(nas_store_candidate_set_state(s, a, "rejected", "x", &e), NAS_OK);
  assert_non_null(strstr(e.msg, "cannot go from 'training' to 'rejected'"));
  assert_int_equal(nas_store_candidate_set_state(s, a, "done", NULL, &e), NAS_OK);
  assert_int_not_equal(nas_store_candidate_set_state(s, a, "training", NULL, &e), NAS_OK);
  assert_int_not_equal(nas_store_candidate_set_state(s, a, "finished", NULL, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "unknown state 'finished'"));
  assert_int_equal(nas_store_candidate_set_state(s, b, "rejected", "peak SRAM 80 KB > 64 KB", &e), NAS_OK);
  assert_int_equal(nas_store_candidate_get(s, b, &r, &e), NAS_OK);
  assert_string_equal(r.state, "rejected");
  assert_string_equal(r.reason, "peak SRAM 80 KB > 64 KB");
  nas_store_candidate_row_free(&r);
  assert_int_not_equal(nas_store_candidate_set_state(s, 12345, "training", NULL, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "no such candidate"));
  assert_int_equal(nas_store_candidate_ids(s, run, "done", &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0], a);
  free(ids);

  /* metrics: values and NULLs */
  nas_metrics m;
  nas_metrics_clear(&m);
  m.acc_int8_test = 0.875;
  m.macs = 2656768;
  m.peak_sram_bytes = 65536;
  m.latency_pred_ms = 12.5;
  assert_int_equal(nas_store_candidate_set_metrics(s, a, &m, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_get(s, a, &r, &e), NAS_OK);
  assert_true(r.m.acc_int8_test == 0.875);
  assert_true(r.m.macs == 2656768);
  assert_true(r.m.peak_sram_bytes == 65536);
  assert_true(r.m.latency_pred_ms == 12.5);
  assert_true(isnan(r.m.acc_float_val));
  assert_true(isnan(r.m.latency_meas_ms));
  assert_true(isnan(r.m.train_seconds));
  nas_store_candidate_row_free(&r);
  sqlite3_stmt *st;
  sqlite3 *db = ro_db(p);
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT typeof(macs), typeof(acc_int8_test), typeof(flash_bytes)"
                                      " FROM candidates WHERE id = ?", -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_int64(st, 1, a);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "integer");
  assert_string_equal((const char *)sqlite3_column_text(st, 1), "real");
  assert_string_equal((const char *)sqlite3_column_text(st, 2), "null");
  sqlite3_finalize(st);
  sqlite3_close(db);
  assert_int_not_equal(nas_store_candidate_set_metrics(s, 999, &m, &e), NAS_OK);

  /* weights */
  unsigned char blob[1000];
  for (int i = 0; i < 1000; i++) blob[i] = (unsigned char)(i * 37 + 1);
  assert_int_equal(nas_store_weights_put(s, a, "int8", blob, sizeof blob, &e), NAS_OK);
  float fw[3] = {1.5f, -2.0f, 3.25f};
  assert_int_equal(nas_store_weights_put(s, a, "float", fw, sizeof fw, &e), NAS_OK);
  void *got;
  size_t len;
  assert_int_equal(nas_store_weights_get(s, a, "int8", &got, &len, &e), NAS_OK);
  assert_int_equal(len, sizeof blob);
  assert_memory_equal(got, blob, len);
  free(got);
  blob[0] = 99; /* replace */
  assert_int_equal(nas_store_weights_put(s, a, "int8", blob, 10, &e), NAS_OK);
  assert_int_equal(nas_store_weights_get(s, a, "int8", &got, &len, &e), NAS_OK);
  assert_int_equal(len, 10);
  assert_memory_equal(got, blob, 10);
  free(got);
  assert_int_equal(nas_store_weights_get(s, a, "float", &got, &len, &e), NAS_OK);
  assert_int_equal(len, sizeof fw);
  assert_memory_equal(got, fw, len);
  free(got);
  assert_int_not_equal(nas_store_weights_get(s, b, "float", &got, &len, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "none stored"));
  assert_int_not_equal(nas_store_weights_put(s, a, "fp16", blob, 4, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "unknown weights kind 'fp16'"));
  assert_int_not_equal(nas_store_weights_put(s, 4242, "float", blob, 4, &e), NAS_OK); /* FK */

  /* layer costs */
  nas_layer_cost lc[2] = {{0, "conv", 320000, 2688, 2700, 16000, 1.25},
                          {1, "dsconv", 584000, 4928, 5000, 24000, NAN}};
  assert_int_equal(nas_store_layer_costs_put(s, a, lc, 2, &e), NAS_OK);
  assert_int_equal(nas_store_layer_costs_put(s, a, lc, 2, &e), NAS_OK); /* replaces */
  nas_layer_cost *rows;
  assert_int_equal(nas_store_layer_costs_get(s, a, &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 2);
  assert_string_equal(rows[1].op, "dsconv");
  assert_int_equal(rows[1].macs, 584000);
  assert_true(rows[0].latency_ms == 1.25);
  assert_true(isnan(rows[1].latency_ms));
  free(rows);

  /* events */
  int64_t ev;
  assert_int_equal(nas_store_event_add(s, run, 0, "run_start", NULL, &ev, &e), NAS_OK);
  assert_int_equal(nas_store_event_add(s, run, a, "candidate_done", "{\"acc\":0.875}", NULL, &e), NAS_OK);
  assert_int_equal(nas_store_event_add(s, run, b, "candidate_rejected", "{}", NULL, &e), NAS_OK);
  int cnt;
  assert_int_equal(nas_store_event_count(s, run, NULL, &cnt, &e), NAS_OK);
  assert_int_equal(cnt, 3);
  assert_int_equal(nas_store_event_count(s, run, "candidate_done", &cnt, &e), NAS_OK);
  assert_int_equal(cnt, 1);
  assert_int_not_equal(nas_store_event_add(s, 777, 0, "x", NULL, NULL, &e), NAS_OK); /* FK */
  nas_store_close(s);
  rm_db(p);
}

/* A second connection reads while another holds an open write transaction. */
static void test_concurrent_reader(void **state) {
  (void)state;
  char *p = tmp_path("conc");
  rm_db(p);
  nas_store *w = open_ok(p);
  nas_err e = {0};
  int64_t run = make_run(w), a;
  assert_int_equal(nas_store_candidate_add(w, run, "{}", "0000000000000001", 0, 0, &a, NULL, &e), NAS_OK);
  sqlite3 *db; /* a writer of our own: the store's connection is internal */
  assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO candidates (run_id, arch_json,"
                                    " arch_hash) VALUES (1, '{}', 'pending');", NULL, NULL, NULL),
                   SQLITE_OK);
  nas_store *r = NULL;
  assert_int_equal(nas_store_open(p, &r, &e), NAS_OK); /* a second writer-capable handle opens */
  nas_store *ro = NULL;
  assert_int_equal(nas_store_open_readonly(p, &ro, &e), NAS_OK);
  int64_t *ids;
  int n;
  assert_int_equal(nas_store_candidate_ids(ro, run, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 1); /* the uncommitted row is not visible */
  free(ids);
  nas_candidate_row row;
  assert_int_equal(nas_store_candidate_get(r, a, &row, &e), NAS_OK);
  nas_store_candidate_row_free(&row);
  assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(nas_store_candidate_ids(ro, run, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 2);
  free(ids);
  /* the second handle can write once the first is done */
  assert_int_equal(nas_store_event_add(r, run, 0, "reader_write", NULL, NULL, &e), NAS_OK);
  nas_store_close(ro);
  nas_store_close(r);
  nas_store_close(w);
  rm_db(p);
}


/* A version-1 file (the schema before retrain_epochs) with a run, candidates, weights and
 * layer costs: readable read-only as it is; a read-write open migrates it to the current
 * version keeping every row (the table rebuild cascades no delete), and the new uniqueness
 * key lets a retrained twin share its parent's hash. */
static void test_migrate_v1(void **state) {
  (void)state;
  char *p = tmp_path("v1");
  rm_db(p);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  const char *v1 =
      "CREATE TABLE runs (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL DEFAULT 'x',"
      " updated_at TEXT NOT NULL DEFAULT 'x', config_json TEXT NOT NULL DEFAULT '{}',"
      " strategy TEXT NOT NULL, space TEXT NOT NULL, dataset TEXT NOT NULL, target TEXT NOT NULL,"
      " seed INTEGER NOT NULL, budget INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'running',"
      " objectives TEXT NOT NULL DEFAULT '');"
      "CREATE TABLE candidates (id INTEGER PRIMARY KEY,"
      " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, arch_json TEXT NOT NULL,"
      " arch_hash TEXT NOT NULL, parent_id INTEGER REFERENCES candidates(id) ON DELETE SET NULL,"
      " generation INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'proposed',"
      " reason TEXT, acc_float_val REAL, acc_float_test REAL, acc_int8_val REAL,"
      " acc_int8_test REAL, macs INTEGER, params INTEGER, flash_bytes INTEGER,"
      " peak_sram_bytes INTEGER, latency_pred_ms REAL, latency_meas_ms REAL, train_seconds REAL,"
      " created_at TEXT NOT NULL DEFAULT 'x', updated_at TEXT NOT NULL DEFAULT 'x',"
      " UNIQUE (run_id, arch_hash));"
      "CREATE INDEX candidates_run_state ON candidates(run_id, state);"
      "CREATE TABLE weights (candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON DELETE"
      " CASCADE, kind TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (candidate_id, kind));"
      "CREATE TABLE layer_costs (candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON"
      " DELETE CASCADE, layer INTEGER NOT NULL, op TEXT NOT NULL, macs INTEGER, params INTEGER,"
      " flash_bytes INTEGER, sram_bytes INTEGER, latency_ms REAL, PRIMARY KEY (candidate_id,"
      " layer));"
      "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id)"
      " ON DELETE CASCADE, candidate_id INTEGER REFERENCES candidates(id) ON DELETE CASCADE,"
      " time TEXT NOT NULL DEFAULT 'x', kind TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}');"
      "INSERT INTO runs (strategy, space, dataset, target, seed, budget) VALUES"
      " ('random','s','d','t',1,2);"
      "INSERT INTO candidates (run_id, arch_json, arch_hash, state, acc_int8_test, macs) VALUES"
      " (1, '{}', 'aaaaaaaaaaaaaaaa', 'done', 0.5, 1000);"
      "INSERT INTO candidates (run_id, arch_json, arch_hash, parent_id, state) VALUES"
      " (1, '{}', 'bbbbbbbbbbbbbbbb', 1, 'proposed');"
      "INSERT INTO weights VALUES (1, 'float', x'0102'), (1, 'int8', x'03');"
      "INSERT INTO layer_costs VALUES (1, 0, 'conv', 10, 2, 3, 4, NULL);"
      "INSERT INTO events (run_id, candidate_id, kind) VALUES (1, 1, 'x');"
      "PRAGMA user_version = 1;";
  assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  nas_err e = {0};
  nas_store *s = NULL;
  /* read-only: read as version 1 */
  assert_int_equal(nas_store_open_readonly(p, &s, &e), NAS_OK);
  nas_candidate_row r;
  assert_int_equal(nas_store_candidate_get(s, 1, &r, &e), NAS_OK);
  assert_int_equal(r.retrain_epochs, 0);
  assert_true(r.m.acc_int8_test == 0.5);
  nas_store_candidate_row_free(&r);
  int64_t *ids;
  int n;
  assert_int_equal(nas_store_search_candidate_ids(s, 1, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 2);
  free(ids);
  int v;
  assert_int_equal(nas_store_user_version(s, &v, &e), NAS_OK);
  assert_int_equal(v, 1);
  nas_store_close(s);
  /* read-write: migrated, nothing lost */
  s = open_ok(p);
  assert_int_equal(nas_store_user_version(s, &v, &e), NAS_OK);
  assert_int_equal(v, NAS_STORE_VERSION);
  assert_int_equal(nas_store_candidate_get(s, 2, &r, &e), NAS_OK);
  assert_int_equal(r.parent_id, 1);
  assert_int_equal(r.warm_start, 0); /* version 4: warm_start, 0 for older candidates */
  assert_string_equal(r.arch_hash, "bbbbbbbbbbbbbbbb");
  nas_store_candidate_row_free(&r);
  assert_int_equal(nas_store_candidate_set_warm(s, 2, 1, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_get(s, 2, &r, &e), NAS_OK);
  assert_int_equal(r.warm_start, 1);
  nas_store_candidate_row_free(&r);
  assert_int_equal(nas_store_candidate_set_warm(s, 99, 1, &e), NAS_EINVAL);
  void *w;
  size_t wl;
  assert_int_equal(nas_store_weights_get(s, 1, "float", &w, &wl, &e), NAS_OK);
  assert_int_equal(wl, 2);
  free(w);
  nas_layer_cost *lc;
  assert_int_equal(nas_store_layer_costs_get(s, 1, &lc, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  free(lc);
  int cnt;
  assert_int_equal(nas_store_event_count(s, 1, NULL, &cnt, &e), NAS_OK);
  assert_int_equal(cnt, 1);
  sqlite3_stmt *st;
  db = ro_db(p);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE); /* no dangling reference */
  sqlite3_finalize(st);
  sqlite3_close(db);
  /* foreign keys are back on for the store's connection after the migration */
  assert_int_not_equal(nas_store_event_add(s, 777, 0, "x", NULL, NULL, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "FOREIGN KEY"));
  /* a retrained twin: same hash, parent = the original, costs copied, idempotent */
  int64_t t1, t2;
  int existed = -1;
  assert_int_equal(nas_store_candidate_add_retrain(s, 1, 5, &t1, &existed, &e), NAS_OK);
  assert_int_equal(existed, 0);
  assert_int_equal(nas_store_candidate_add_retrain(s, 1, 5, &t2, &existed, &e), NAS_OK);
  assert_int_equal(existed, 1);
  assert_int_equal(t1, t2);
  assert_int_equal(nas_store_candidate_get(s, t1, &r, &e), NAS_OK);
  assert_int_equal(r.retrain_epochs, 5);
  assert_int_equal(r.parent_id, 1);
  assert_string_equal(r.arch_hash, "aaaaaaaaaaaaaaaa");
  assert_string_equal(r.state, "proposed");
  assert_true(r.m.macs == 1000);
  assert_true(isnan(r.m.acc_int8_test));
  nas_store_candidate_row_free(&r);
  assert_int_equal(nas_store_layer_costs_get(s, t1, &lc, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  free(lc);
  int64_t found;
  assert_int_equal(nas_store_candidate_find(s, 1, "aaaaaaaaaaaaaaaa", &found, &e), NAS_OK);
  assert_int_equal(found, 1); /* the search candidate, not the twin */
  assert_int_equal(nas_store_candidate_ids(s, 1, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 3);
  free(ids);
  assert_int_equal(nas_store_search_candidate_ids(s, 1, NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 2);
  free(ids);
  assert_int_not_equal(nas_store_candidate_add_retrain(s, 999, 5, &t2, NULL, &e), NAS_OK);
  nas_store_close(s);
  rm_db(p);
}

/* nas_store_candidate_finish is all or nothing: a refused transition stores neither the
 * metrics nor the weights; an accepted one stores all three. */
static void test_finish_atomic(void **state) {
  (void)state;
  char *p = tmp_path("finish");
  rm_db(p);
  nas_store *s = open_ok(p);
  nas_err e = {0};
  int64_t run = make_run(s), a;
  assert_int_equal(nas_store_candidate_add(s, run, "{}", "00000000000000aa", 0, 0, &a, NULL, &e), NAS_OK);
  nas_metrics m;
  nas_metrics_clear(&m);
  m.acc_int8_test = 0.75;
  unsigned char blob[3] = {1, 2, 3};
  nas_store_blob b[2] = {{"float", blob, 3}, {"int8", blob, 2}};
  /* proposed -> done is not a transition: nothing written */
  assert_int_not_equal(nas_store_candidate_finish(s, a, "done", NULL, &m, b, 2, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "cannot go from 'proposed' to 'done'"));
  void *w = NULL;
  size_t wl;
  assert_int_not_equal(nas_store_weights_get(s, a, "float", &w, &wl, &e), NAS_OK);
  nas_candidate_row r;
  assert_int_equal(nas_store_candidate_get(s, a, &r, &e), NAS_OK);
  assert_true(isnan(r.m.acc_int8_test));
  assert_string_equal(r.state, "proposed");
  nas_store_candidate_row_free(&r);
  /* a bad blob kind is refused before anything */
  nas_store_blob bad = {"fp16", blob, 3};
  assert_int_not_equal(nas_store_candidate_finish(s, a, "failed", "x", &m, &bad, 1, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_set_state(s, a, "training", NULL, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_finish(s, a, "done", NULL, &m, b, 2, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_get(s, a, &r, &e), NAS_OK);
  assert_true(r.m.acc_int8_test == 0.75);
  assert_string_equal(r.state, "done");
  nas_store_candidate_row_free(&r);
  assert_int_equal(nas_store_weights_get(s, a, "int8", &w, &wl, &e), NAS_OK);
  assert_int_equal(wl, 2);
  free(w);
  nas_store_close(s);
  rm_db(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema),           cmocka_unit_test(test_migrate_empty_file),
      cmocka_unit_test(test_refuse),           cmocka_unit_test(test_candidates),
      cmocka_unit_test(test_concurrent_reader),
      cmocka_unit_test(test_migrate_v1),       cmocka_unit_test(test_finish_atomic),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
