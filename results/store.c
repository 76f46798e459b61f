/* results/store.c: the SQLite store (see store.h and docs/store.md): connection, runs and
 * candidates; the schema and its migrations are in store_schema.c, weights, layer costs and
 * events in store_artifacts.c, measurements in store_measure.c. */
#include "results/store.h"
#include "core/alloc.h"

#include "results/store_impl.h"

#define BUSY_TIMEOUT_MS 10000

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metric table ------------------------------------------------------------------------ */

static const struct {
  const char *name; /* column name */
  int is_int;       /* INTEGER column */
} METRICS[] = {
    {"acc_float_val", 0}, {"acc_float_test", 0},  {"acc_int8_val", 0},
    {"acc_int8_test", 0}, {"macs", 1},            {"params", 1},
    {"flash_bytes", 1},   {"peak_sram_bytes", 1}, {"latency_pred_ms", 0},
    {"latency_meas_ms", 0}, {"train_seconds", 0},
};
_Static_assert(sizeof METRICS / sizeof METRICS[0] == NAS_N_METRICS, "one row per metric");
_Static_assert(sizeof(nas_metrics) == NAS_N_METRICS * sizeof(double),
               "nas_metrics fields and METRICS must match");

const char *nas_metric_name(int i) { return i >= 0 && i < NAS_N_METRICS ? METRICS[i].name : NULL; }
int nas_metric_is_int(int i) { return i >= 0 && i < NAS_N_METRICS && METRICS[i].is_int; }
int nas_metric_index(const char *name) {
  for (int i = 0; name && i < NAS_N_METRICS; i++)
    if (strcmp(name, METRICS[i].name) == 0) return i;
  return -1;
}
double *nas_metrics_at(nas_metrics *m, int i) { return &((double *)m)[i]; }
void nas_metrics_clear(nas_metrics *m) {
  for (int i = 0; i < NAS_N_METRICS; i++) *nas_metrics_at(m, i) = NAN;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* NAS_ENOMEM for SQLite's out-of-memory code, else NAS_EIO. */
static int status_of(int sqlite_rc) {
  return (sqlite_rc & 0xff) == SQLITE_NOMEM ? NAS_ENOMEM : NAS_EIO;
}

int store_dberr(nas_store *s, nas_err *e, const char *what) {
  return nas_errf(e, status_of(sqlite3_errcode(s->db)), "%s: %s: %s", s->path, what,
                  sqlite3_errmsg(s->db));
}

int store_exec(nas_store *s, const char *sql, const char *what, nas_err *e) {
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    int code = nas_errf(e, status_of(rc), "%s: %s: %s", s->path, what,
                        msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return code;
  }
  return NAS_OK;
}

int store_prep(nas_store *s, const char *sql, sqlite3_stmt **st, const char *what, nas_err *e) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
    *st = NULL;
    return store_dberr(s, e, what);
  }
  return NAS_OK;
}

int store_begin(nas_store *s, const char *what, nas_err *e) {
  if (s->readonly) return nas_errf(e, NAS_EINVAL, "%s: %s: store is open read-only", s->path, what);
  return store_exec(s, "BEGIN IMMEDIATE", what, e);
}
int store_commit(nas_store *s, const char *what, nas_err *e) {
  return store_exec(s, "COMMIT", what, e);
}
void store_rollback(nas_store *s) {
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_dup_col(sqlite3_stmt *st, int i, char **out) {
  *out = NULL;
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return 0;
  const unsigned char *t = sqlite3_column_text(st, i); /* NULL: SQLite out of memory */
  if (t) *out = nas_strdup((const char *)t);
  return *out ? 0 : -1;
}

int store_col_buf(sqlite3_stmt *st, int i, char *buf, size_t cap) {
  buf[0] = '\0';
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return 0;
  const unsigned char *t = sqlite3_column_text(st, i);
  if (!t) return -1;
  snprintf(buf, cap, "%s", (const char *)t);
  return 0;
}

/* Runs a statement that returns no rows; finalizes it. */
int store_step_done(nas_store *s, sqlite3_stmt *st, const char *what, nas_err *e) {
  int rc = sqlite3_step(st);
  int out = rc == SQLITE_DONE ? NAS_OK : store_dberr(s, e, what);
  sqlite3_finalize(st);
  return out;
}

int store_step_row(nas_store *s, sqlite3_stmt *st, const char *noun, long long id,
                   const char *what, nas_err *e) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return NAS_OK;
  int code = rc == SQLITE_DONE ? nas_errf(e, NAS_EINVAL, "%s: no %s %lld", s->path, noun, id)
                               : store_dberr(s, e, what);
  sqlite3_finalize(st);
  return code;
}

/* ---- SQLite's allocator in the fault schedule ------------------------------------------- */

/* SQLite's own allocator (memsys), wrapped so that every SQLite allocation also counts in
 * core/alloc.h's fault schedule: a test that fails the N-th allocation reaches into SQLite
 * too. Installed before SQLite initialises, at the first store open; when something else in
 * the process initialised SQLite first, sqlite3_config refuses and SQLite keeps its
 * allocator unwrapped (nothing else changes). */
static sqlite3_mem_methods g_sqlite_mem;

static void *sqlite_malloc(int n) {
  return nas_alloc_fault_tick() ? NULL : g_sqlite_mem.xMalloc(n);
}
static void *sqlite_realloc(void *p, int n) {
  return nas_alloc_fault_tick() ? NULL : g_sqlite_mem.xRealloc(p, n);
}

static void wrap_sqlite_alloc(void) {
  if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_sqlite_mem) != SQLITE_OK) return;
  sqlite3_mem_methods m = g_sqlite_mem;
  m.xMalloc = sqlite_malloc;
  m.xRealloc = sqlite_realloc;
  sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}

static int open_impl(const char *path, int readonly, nas_store **out, nas_err *e) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, wrap_sqlite_alloc);
  *out = NULL;
  if (!path || !*path) return nas_errf(e, NAS_EINVAL, "store: empty file name");
  if (store_check_header(path, readonly, e)) return e->code;
  nas_store *s = nas_calloc(1, sizeof *s);
  if (!s || !(s->path = nas_strdup(path))) {
    free(s);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  }
  s->readonly = readonly;
  int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  int orc = sqlite3_open_v2(path, &s->db, flags, NULL);
  if (orc != SQLITE_OK) {
    int code = nas_errf(e, status_of(orc), "%s: cannot open: %s", path,
                        s->db ? sqlite3_errmsg(s->db) : "out of memory");
    nas_store_close(s);
    return code;
  }
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  int v = 0;
  if (store_read_version(s, &v, e)) goto fail;
  if (v > NAS_STORE_VERSION) {
    nas_errf(e, NAS_EFORMAT,
             "%s: store schema version %d is newer than this build supports (%d); use a newer nas",
             path, v, NAS_STORE_VERSION);
    goto fail;
  }
  if (store_check_foreign(s, v, e)) goto fail;
  if (readonly && v < 1) {
    nas_errf(e, NAS_EFORMAT, "%s: store schema version %d, expected %d (not a nas store)", path,
             v, NAS_STORE_VERSION);
    goto fail;
  }
  s->version = v; /* a read-only reader of an older store reads what that version has */
  if (!readonly) {
    /* An up-to-date file in WAL mode needs no lock here, so opening never waits on a writer. */
    int wal = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW)
        wal = sqlite3_column_text(st, 0) && !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
      sqlite3_finalize(st);
    }
    if ((!wal && store_exec(s, "PRAGMA journal_mode = WAL", "switching to WAL mode", e)) ||
        store_exec(s, "PRAGMA synchronous = NORMAL", "setting synchronous mode", e) ||
        store_exec(s, "PRAGMA foreign_keys = OFF", "disabling foreign keys", e) ||
        (v < NAS_STORE_VERSION && store_migrate(s, e)))
      goto fail;
    s->version = NAS_STORE_VERSION;
  }
  /* after the migrations: a table rebuild must not cascade deletes */
  if (store_exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys", e)) goto fail;
  *out = s;
  return NAS_OK;
fail:
  nas_store_close(s);
  return e ? e->code : NAS_EIO;
}

int nas_store_open(const char *path, nas_store **out, nas_err *e) {
  return open_impl(path, 0, out, e);
}
int nas_store_open_readonly(const char *path, nas_store **out, nas_err *e) {
  return open_impl(path, 1, out, e);
}

void nas_store_close(nas_store *s) {
  if (!s) return;
  if (s->db) sqlite3_close_v2(s->db);
  free(s->path);
  free(s);
}

const char *nas_store_path(const nas_store *s) { return s->path; }
int nas_store_user_version(nas_store *s, int *version, nas_err *e) {
  return store_read_version(s, version, e);
}

/* ---- runs -------------------------------------------------------------------------------- */

static const char *or_empty(const char *p, const char *def) { return p ? p : def; }

int nas_store_run_create(nas_store *s, const nas_run_info *info, int64_t *run_id, nas_err *e) {
  static const char *const W = "creating a run";
  sqlite3_stmt *st;
  if (!info->strategy || !info->space || !info->dataset || !info->target)
    return nas_errf(e, NAS_EINVAL, "%s: %s: strategy, space, dataset and target are required",
                    s->path, W);
  if (store_begin(s, W, e)) return e->code;
  if (store_prep(s,
           "INSERT INTO runs (config_json, strategy, space, dataset, target, seed, budget,"
           " objectives) VALUES (?,?,?,?,?,?,?,?)",
           &st, W, e)) {
    store_rollback(s);
    return e->code;
  }
  sqlite3_bind_text(st, 1, or_empty(info->config_json, "{}"), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, info->strategy, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, info->space, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, info->dataset, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, info->target, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)info->seed);
  sqlite3_bind_int64(st, 7, info->budget);
  sqlite3_bind_text(st, 8, or_empty(info->objectives, ""), -1, SQLITE_STATIC);
  if (store_step_done(s, st, W, e)) {
    store_rollback(s);
    return e->code;
  }
  *run_id = sqlite3_last_insert_rowid(s->db);
  if (store_commit(s, W, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int nas_store_run_set_status(nas_store *s, int64_t run_id, const char *status, nas_err *e) {
  static const char *const OK[] = {"running", "interrupted", "done", "failed", NULL};
  int ok = 0;
  for (int i = 0; status && OK[i]; i++) ok |= !strcmp(status, OK[i]);
  if (!ok)
    return nas_errf(e, NAS_EINVAL,
                    "%s: run %lld: unknown status '%s' (running, interrupted, done, failed)",
                    s->path, (long long)run_id, status ? status : "(null)");
  char what[64];
  snprintf(what, sizeof what, "setting the status of run %lld", (long long)run_id);
  sqlite3_stmt *st;
  if (store_begin(s, what, e)) return e->code;
  if (store_prep(s, "UPDATE runs SET status = ?, updated_at = " NOW " WHERE id = ?", &st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, run_id);
  if (store_step_done(s, st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  if (sqlite3_changes(s->db) != 1) {
    store_rollback(s);
    return nas_errf(e, NAS_EINVAL, "%s: %s: no such run", s->path, what);
  }
  if (store_commit(s, what, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int nas_store_run_get(nas_store *s, int64_t run_id, nas_run_row *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  if (store_prep(s,
           "SELECT id, created_at, updated_at, config_json, strategy, space, dataset, target,"
           " seed, budget, status, objectives FROM runs WHERE id = ?",
           &st, "reading a run", e))
    return e->code;
  sqlite3_bind_int64(st, 1, run_id);
  if (store_step_row(s, st, "run", (long long)run_id, "reading a run", e)) return e->code;
  out->id = sqlite3_column_int64(st, 0);
  int bad = store_dup_col(st, 1, &out->created_at);
  bad |= store_dup_col(st, 2, &out->updated_at);
  bad |= store_dup_col(st, 3, &out->config_json);
  bad |= store_dup_col(st, 4, &out->strategy);
  bad |= store_dup_col(st, 5, &out->space);
  bad |= store_dup_col(st, 6, &out->dataset);
  bad |= store_dup_col(st, 7, &out->target);
  out->seed = (uint64_t)sqlite3_column_int64(st, 8);
  out->budget = sqlite3_column_int64(st, 9);
  bad |= store_dup_col(st, 10, &out->status);
  bad |= store_dup_col(st, 11, &out->objectives);
  sqlite3_finalize(st);
  if (bad) {
    nas_store_run_row_free(out);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", s->path);
  }
  return NAS_OK;
}

void nas_store_run_row_free(nas_run_row *r) {
  if (!r) return;
  free(r->created_at), free(r->updated_at), free(r->config_json), free(r->strategy);
  free(r->space), free(r->dataset), free(r->target), free(r->status), free(r->objectives);
  memset(r, 0, sizeof *r);
}

/* Collects the int64 column 0 of every row of st (bound by the caller); finalizes st. */
static int collect_ids(nas_store *s, sqlite3_stmt *st, int64_t **ids, int *n, const char *what,
                       nas_err *e) {
  int cap = 0, rc;
  *ids = NULL, *n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      int64_t *p = nas_realloc(*ids, (size_t)cap * sizeof *p);
      if (!p) {
        sqlite3_finalize(st);
        free(*ids), *ids = NULL, *n = 0;
        return nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, what);
      }
      *ids = p;
    }
    (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
  }
  if (rc != SQLITE_DONE) {
    int code = store_dberr(s, e, what);
    sqlite3_finalize(st);
    free(*ids), *ids = NULL, *n = 0;
    return code;
  }
  sqlite3_finalize(st);
  return NAS_OK;
}

int nas_store_run_ids(nas_store *s, int64_t **ids, int *n, nas_err *e) {
  sqlite3_stmt *st;
  *ids = NULL, *n = 0;
  if (store_prep(s, "SELECT id FROM runs ORDER BY id", &st, "listing runs", e)) return e->code;
  return collect_ids(s, st, ids, n, "listing runs", e);
}

/* ---- candidates -------------------------------------------------------------------------- */

static int find_hash(nas_store *s, int64_t run_id, const char *hash, int64_t *id, nas_err *e) {
  sqlite3_stmt *st;
  *id = 0;
  if (store_prep(s,
           s->version >= 2 ? "SELECT id FROM candidates WHERE run_id = ? AND arch_hash = ?"
                             " AND retrain_epochs = 0"
                           : "SELECT id FROM candidates WHERE run_id = ? AND arch_hash = ?",
           &st, "looking up a candidate", e))
    return e->code;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
  else if (rc != SQLITE_DONE) {
    int code = store_dberr(s, e, "looking up a candidate");
    sqlite3_finalize(st);
    return code;
  }
  sqlite3_finalize(st);
  return NAS_OK;
}

int nas_store_candidate_find(nas_store *s, int64_t run_id, const char *arch_hash, int64_t *id,
                             nas_err *e) {
  return find_hash(s, run_id, arch_hash, id, e);
}

int nas_store_candidate_add(nas_store *s, int64_t run_id, const char *arch_json,
                            const char *arch_hash, int64_t parent_id, int generation,
                            int64_t *id, int *existed, nas_err *e) {
  char what[64];
  snprintf(what, sizeof what, "adding a candidate to run %lld", (long long)run_id);
  if (existed) *existed = 0;
  *id = 0;
  if (!arch_json || !arch_hash || !*arch_hash)
    return nas_errf(e, NAS_EINVAL, "%s: %s: arch JSON and hash are required", s->path, what);
  if (store_begin(s, what, e)) return e->code;
  int64_t old;
  if (find_hash(s, run_id, arch_hash, &old, e)) {
    store_rollback(s);
    return e->code;
  }
  if (old) {
    store_rollback(s);
    *id = old;
    if (existed) *existed = 1;
    return NAS_OK;
  }
  sqlite3_stmt *st;
  if (store_prep(s,
           "INSERT INTO candidates (run_id, arch_json, arch_hash, parent_id, generation)"
           " VALUES (?,?,?,?,?)",
           &st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, arch_json, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, arch_hash, -1, SQLITE_STATIC);
  if (parent_id > 0) sqlite3_bind_int64(st, 4, parent_id);
  else sqlite3_bind_null(st, 4);
  sqlite3_bind_int(st, 5, generation);
  if (store_step_done(s, st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  *id = sqlite3_last_insert_rowid(s->db);
  if (store_commit(s, what, e)) {
    store_rollback(s);
    *id = 0;
    return e->code;
  }
  return NAS_OK;
}

static int transition_ok(const char *from, const char *to) {
  static const char *const T[][2] = {
      {"proposed", "rejected"}, {"proposed", "training"}, {"proposed", "failed"},
      {"training", "done"},     {"training", "failed"},   {"training", "proposed"},
  };
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
    if (!strcmp(T[i][0], from) && !strcmp(T[i][1], to)) return 1;
  return 0;
}

int nas_store_candidate_set_state(nas_store *s, int64_t cand_id, const char *state,
                                  const char *reason, nas_err *e) {
  static const char *const OK[] = {"proposed", "rejected", "training", "done", "failed", NULL};
  int ok = 0;
  for (int i = 0; state && OK[i]; i++) ok |= !strcmp(state, OK[i]);
  if (!ok)
    return nas_errf(e, NAS_EINVAL,
                    "%s: candidate %lld: unknown state '%s' (proposed, rejected, training, "
                    "done, failed)",
                    s->path, (long long)cand_id, state ? state : "(null)");
  char what[80];
  snprintf(what, sizeof what, "setting the state of candidate %lld", (long long)cand_id);
  if (store_begin(s, what, e)) return e->code;
  if (store_set_state_tx(s, cand_id, state, reason, e) || store_commit(s, what, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int store_set_state_tx(nas_store *s, int64_t cand_id, const char *state, const char *reason,
                       nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "setting the state of candidate %lld", (long long)cand_id);
  sqlite3_stmt *st;
  if (store_prep(s, "SELECT state FROM candidates WHERE id = ?", &st, what, e)) return e->code;
  sqlite3_bind_int64(st, 1, cand_id);
  int rc = sqlite3_step(st);
  char from[16] = "";
  if (rc == SQLITE_ROW && store_col_buf(st, 0, from, sizeof from)) {
    sqlite3_finalize(st);
    return nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, what);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? nas_errf(e, NAS_EINVAL, "%s: %s: no such candidate", s->path, what)
                             : store_dberr(s, e, what);
  if (!transition_ok(from, state))
    return nas_errf(e, NAS_EINVAL, "%s: candidate %lld: cannot go from '%s' to '%s'", s->path,
                    (long long)cand_id, from, state);
  if (store_prep(s, "UPDATE candidates SET state = ?, reason = ?, updated_at = " NOW " WHERE id = ?",
           &st, what, e))
    return e->code;
  sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
  if (reason) sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 2);
  sqlite3_bind_int64(st, 3, cand_id);
  return store_step_done(s, st, what, e);
}

int nas_store_candidate_set_metrics(nas_store *s, int64_t cand_id, const nas_metrics *m,
                                    nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "storing the metrics of candidate %lld", (long long)cand_id);
  if (store_begin(s, what, e)) return e->code;
  if (store_set_metrics_tx(s, cand_id, m, e) || store_commit(s, what, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int store_set_metrics_tx(nas_store *s, int64_t cand_id, const nas_metrics *m, nas_err *e) {
  char what[80], sql[1024];
  snprintf(what, sizeof what, "storing the metrics of candidate %lld", (long long)cand_id);
  size_t len = (size_t)snprintf(sql, sizeof sql, "UPDATE candidates SET ");
  for (int i = 0; i < NAS_N_METRICS; i++)
    len += (size_t)snprintf(sql + len, sizeof sql - len, "%s = ?, ", METRICS[i].name);
  snprintf(sql + len, sizeof sql - len, "%s", "updated_at = " NOW " WHERE id = ?");
  sqlite3_stmt *st;
  if (store_prep(s, sql, &st, what, e)) return e->code;
  for (int i = 0; i < NAS_N_METRICS; i++) {
    double v = ((const double *)m)[i];
    if (isnan(v)) sqlite3_bind_null(st, i + 1);
    else if (METRICS[i].is_int) sqlite3_bind_int64(st, i + 1, (sqlite3_int64)llround(v));
    else sqlite3_bind_double(st, i + 1, v);
  }
  sqlite3_bind_int64(st, NAS_N_METRICS + 1, cand_id);
  if (store_step_done(s, st, what, e)) return e->code;
  if (sqlite3_changes(s->db) != 1)
    return nas_errf(e, NAS_EINVAL, "%s: %s: no such candidate", s->path, what);
  return NAS_OK;
}

int nas_store_candidate_set_warm(nas_store *s, int64_t cand_id, int warm, nas_err *e) {
  const char *what = "marking a candidate warm-started";
  if (s->version < 4)
    return nas_errf(e, NAS_EFORMAT, "%s: %s: the store's schema %d has no warm_start", s->path,
                    what, s->version);
  sqlite3_stmt *st;
  if (store_prep(s, "UPDATE candidates SET warm_start = ? WHERE id = ?", &st, what, e))
    return e->code;
  sqlite3_bind_int(st, 1, warm ? 1 : 0);
  sqlite3_bind_int64(st, 2, cand_id);
  if (store_step_done(s, st, what, e)) return e->code;
  if (sqlite3_changes(s->db) != 1)
    return nas_errf(e, NAS_EINVAL, "%s: %s: no such candidate", s->path, what);
  return NAS_OK;
}

int nas_store_candidate_get(nas_store *s, int64_t cand_id, nas_candidate_row *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  char sql[1024];
  size_t len = (size_t)snprintf(sql, sizeof sql,
                                "SELECT id, run_id, arch_json, arch_hash, parent_id, generation,"
                                " state, reason, created_at, updated_at, %s, %s",
                                s->version >= 2 ? "retrain_epochs" : "0",
                                s->version >= 4 ? "warm_start" : "0");
  for (int i = 0; i < NAS_N_METRICS; i++)
    len += (size_t)snprintf(sql + len, sizeof sql - len, ", %s", METRICS[i].name);
  snprintf(sql + len, sizeof sql - len, " FROM candidates WHERE id = ?");
  sqlite3_stmt *st;
  if (store_prep(s, sql, &st, "reading a candidate", e)) return e->code;
  sqlite3_bind_int64(st, 1, cand_id);
  if (store_step_row(s, st, "candidate", (long long)cand_id, "reading a candidate", e))
    return e->code;
  out->id = sqlite3_column_int64(st, 0);
  out->run_id = sqlite3_column_int64(st, 1);
  int bad = store_dup_col(st, 2, &out->arch_json);
  bad |= store_dup_col(st, 3, &out->arch_hash);
  out->parent_id = sqlite3_column_int64(st, 4); /* NULL reads as 0 */
  out->generation = sqlite3_column_int(st, 5);
  bad |= store_col_buf(st, 6, out->state, sizeof out->state);
  bad |= store_dup_col(st, 7, &out->reason);
  bad |= store_dup_col(st, 8, &out->created_at);
  bad |= store_dup_col(st, 9, &out->updated_at);
  out->retrain_epochs = sqlite3_column_int(st, 10);
  out->warm_start = sqlite3_column_int(st, 11);
  for (int i = 0; i < NAS_N_METRICS; i++) {
    int c = 12 + i;
    *nas_metrics_at(&out->m, i) =
        sqlite3_column_type(st, c) == SQLITE_NULL ? NAN : sqlite3_column_double(st, c);
  }
  sqlite3_finalize(st);
  if (bad) {
    nas_store_candidate_row_free(out);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", s->path);
  }
  return NAS_OK;
}

void nas_store_candidate_row_free(nas_candidate_row *r) {
  if (!r) return;
  free(r->arch_json), free(r->arch_hash), free(r->reason), free(r->created_at);
  free(r->updated_at);
  memset(r, 0, sizeof *r);
}

int nas_store_candidate_ids(nas_store *s, int64_t run_id, const char *state, int64_t **ids,
                            int *n, nas_err *e) {
  sqlite3_stmt *st;
  *ids = NULL, *n = 0;
  if (store_prep(s,
           state ? "SELECT id FROM candidates WHERE run_id = ? AND state = ? ORDER BY id"
                 : "SELECT id FROM candidates WHERE run_id = ? ORDER BY id",
           &st, "listing candidates", e))
    return e->code;
  sqlite3_bind_int64(st, 1, run_id);
  if (state) sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
  return collect_ids(s, st, ids, n, "listing candidates", e);
}


int nas_store_search_candidate_ids(nas_store *s, int64_t run_id, const char *state,
                                   int64_t **ids, int *n, nas_err *e) {
  if (s->version < 2) return nas_store_candidate_ids(s, run_id, state, ids, n, e);
  sqlite3_stmt *st;
  *ids = NULL, *n = 0;
  if (store_prep(s,
           state ? "SELECT id FROM candidates WHERE run_id = ? AND retrain_epochs = 0"
                   " AND state = ? ORDER BY id"
                 : "SELECT id FROM candidates WHERE run_id = ? AND retrain_epochs = 0 ORDER BY id",
           &st, "listing candidates", e))
    return e->code;
  sqlite3_bind_int64(st, 1, run_id);
  if (state) sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
  return collect_ids(s, st, ids, n, "listing candidates", e);
}
