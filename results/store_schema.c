/* results/store_schema.c: the store's schema: the SQLite header check before a file is
 * opened, the user_version, the refusal of a database that is not an engine store, and the
 * migrations. MIGRATIONS[v] takes a file from user_version v to v + 1 inside one BEGIN
 * IMMEDIATE transaction; a new version is one more function in that list and
 * NAS_STORE_VERSION bumped. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/store.h"
#include "results/store_impl.h"

/* ---- migrations -------------------------------------------------------------------------- */

static int migrate_to_1(nas_store *s, nas_err *e) {
  static const char *const SQL =
      "CREATE TABLE runs ("
      " id INTEGER PRIMARY KEY,"
      " created_at TEXT NOT NULL DEFAULT (" NOW "),"
      " updated_at TEXT NOT NULL DEFAULT (" NOW "),"
      " config_json TEXT NOT NULL DEFAULT '{}',"
      " strategy TEXT NOT NULL,"
      " space TEXT NOT NULL,"
      " dataset TEXT NOT NULL,"
      " target TEXT NOT NULL,"
      " seed INTEGER NOT NULL,"
      " budget INTEGER NOT NULL,"
      " status TEXT NOT NULL DEFAULT 'running'"
      "  CHECK (status IN ('running','interrupted','done','failed')),"
      " objectives TEXT NOT NULL DEFAULT '');"
      "CREATE TABLE candidates ("
      " id INTEGER PRIMARY KEY,"
      " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
      " arch_json TEXT NOT NULL,"
      " arch_hash TEXT NOT NULL,"
      " parent_id INTEGER REFERENCES candidates(id) ON DELETE SET NULL,"
      " generation INTEGER NOT NULL DEFAULT 0,"
      " state TEXT NOT NULL DEFAULT 'proposed'"
      "  CHECK (state IN ('proposed','rejected','training','done','failed')),"
      " reason TEXT,"
      " acc_float_val REAL, acc_float_test REAL, acc_int8_val REAL, acc_int8_test REAL,"
      " macs INTEGER, params INTEGER, flash_bytes INTEGER, peak_sram_bytes INTEGER,"
      " latency_pred_ms REAL, latency_meas_ms REAL, train_seconds REAL,"
      " created_at TEXT NOT NULL DEFAULT (" NOW "),"
      " updated_at TEXT NOT NULL DEFAULT (" NOW "),"
      " UNIQUE (run_id, arch_hash));"
      "CREATE INDEX candidates_run_state ON candidates(run_id, state);"
      "CREATE TABLE weights ("
      " candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,"
      " kind TEXT NOT NULL CHECK (kind IN ('float','int8')),"
      " data BLOB NOT NULL,"
      " PRIMARY KEY (candidate_id, kind));"
      "CREATE TABLE layer_costs ("
      " candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,"
      " layer INTEGER NOT NULL,"
      " op TEXT NOT NULL,"
      " macs INTEGER, params INTEGER, flash_bytes INTEGER, sram_bytes INTEGER,"
      " latency_ms REAL,"
      " PRIMARY KEY (candidate_id, layer));"
      "CREATE TABLE events ("
      " id INTEGER PRIMARY KEY,"
      " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
      " candidate_id INTEGER REFERENCES candidates(id) ON DELETE CASCADE,"
      " time TEXT NOT NULL DEFAULT (" NOW "),"
      " kind TEXT NOT NULL,"
      " payload TEXT NOT NULL DEFAULT '{}');"
      "CREATE INDEX events_run ON events(run_id, id);";
  return store_exec(s, SQL, "creating schema version 1", e);
}

/* Version 2: candidates.retrain_epochs (0 for a search candidate, E for a Pareto-front member
 * retrained from scratch for E epochs after the search; such a row has parent_id = the
 * original), and the uniqueness key becomes (run_id, arch_hash, retrain_epochs). SQLite
 * cannot alter a UNIQUE constraint, so the table is rebuilt (foreign keys are off during
 * migrations, so dropping the old table cascades nothing; the other tables' references name
 * "candidates" and so point at the new table once it is renamed). */
#define V2_COLS                                                                                  \
  "id, run_id, arch_json, arch_hash, parent_id, generation, state, reason, acc_float_val,"       \
  " acc_float_test, acc_int8_val, acc_int8_test, macs, params, flash_bytes, peak_sram_bytes,"    \
  " latency_pred_ms, latency_meas_ms, train_seconds, created_at, updated_at"
static int migrate_to_2(nas_store *s, nas_err *e) {
  static const char *const SQL =
      "CREATE TABLE candidates_v2 ("
      " id INTEGER PRIMARY KEY,"
      " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
      " arch_json TEXT NOT NULL,"
      " arch_hash TEXT NOT NULL,"
      " parent_id INTEGER REFERENCES candidates(id) ON DELETE SET NULL,"
      " generation INTEGER NOT NULL DEFAULT 0,"
      " retrain_epochs INTEGER NOT NULL DEFAULT 0,"
      " state TEXT NOT NULL DEFAULT 'proposed'"
      "  CHECK (state IN ('proposed','rejected','training','done','failed')),"
      " reason TEXT,"
      " acc_float_val REAL, acc_float_test REAL, acc_int8_val REAL, acc_int8_test REAL,"
      " macs INTEGER, params INTEGER, flash_bytes INTEGER, peak_sram_bytes INTEGER,"
      " latency_pred_ms REAL, latency_meas_ms REAL, train_seconds REAL,"
      " created_at TEXT NOT NULL DEFAULT (" NOW "),"
      " updated_at TEXT NOT NULL DEFAULT (" NOW "),"
      " UNIQUE (run_id, arch_hash, retrain_epochs));"
      "INSERT INTO candidates_v2 (" V2_COLS ") SELECT " V2_COLS " FROM candidates;"
      "DROP TABLE candidates;"
      "ALTER TABLE candidates_v2 RENAME TO candidates;"
      "CREATE INDEX candidates_run_state ON candidates(run_id, state);";
  return store_exec(s, SQL, "migrating candidates to schema version 2", e);
}
#undef V2_COLS

/* Version 3: emulated measurements of candidates (results/store_measure.c). */
static int migrate_to_3(nas_store *s, nas_err *e) {
  static const char *const SQL =
      "CREATE TABLE measurements ("
      " candidate_id INTEGER PRIMARY KEY REFERENCES candidates(id) ON DELETE CASCADE,"
      " backend TEXT NOT NULL, target TEXT NOT NULL, core TEXT NOT NULL, runtime TEXT NOT NULL,"
      " status TEXT NOT NULL CHECK (status IN ('ok','failed')), reason TEXT,"
      " insns INTEGER, cycles REAL, ms REAL, seconds REAL,"
      " created_at TEXT NOT NULL DEFAULT (" NOW "));"
      "CREATE TABLE op_measurements ("
      " candidate_id INTEGER NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,"
      " op INTEGER NOT NULL, kind TEXT NOT NULL, layer INTEGER,"
      " insns INTEGER, ldst INTEGER, mul INTEGER, branch INTEGER, other INTEGER,"
      " taken INTEGER, cycles REAL, ms REAL,"
      " PRIMARY KEY (candidate_id, op));";
  return store_exec(s, SQL, "migrating to schema version 3 (measurements)", e);
}

/* Version 4: candidates.warm_start (1 for a candidate trained from its parent's weights, a
 * network morphism of the sparse strategy; 0 for everything before). */
static int migrate_to_4(nas_store *s, nas_err *e) {
  return store_exec(s, "ALTER TABLE candidates ADD COLUMN warm_start INTEGER NOT NULL DEFAULT 0;",
                    "migrating candidates to schema version 4", e);
}

/* MIGRATIONS[v] takes user_version v to v + 1. */
static int (*const MIGRATIONS[])(nas_store *, nas_err *) = {migrate_to_1, migrate_to_2,
                                                            migrate_to_3, migrate_to_4};
_Static_assert(sizeof MIGRATIONS / sizeof MIGRATIONS[0] == NAS_STORE_VERSION,
               "one migration per schema version");

int store_read_version(nas_store *s, int *v, nas_err *e) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
    int code = sqlite3_errcode(s->db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
      return nas_errf(e, NAS_EFORMAT, "%s: not a SQLite database", s->path);
    return store_dberr(s, e, "reading the schema version");
  }
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    int code = sqlite3_errcode(s->db);
    sqlite3_finalize(st);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
      return nas_errf(e, NAS_EFORMAT, "%s: not a SQLite database", s->path);
    return store_dberr(s, e, "reading the schema version");
  }
  *v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return NAS_OK;
}

int store_migrate(nas_store *s, nas_err *e) {
  for (;;) {
    int v;
    if (store_begin(s, "starting a schema migration", e)) return e->code;
    if (store_read_version(s, &v, e)) { /* re-read: another process may have migrated meanwhile */
      store_rollback(s);
      return e->code;
    }
    if (v >= NAS_STORE_VERSION) return store_commit(s, "finishing schema migration", e);
    char what[64], pragma[48];
    snprintf(what, sizeof what, "migrating schema %d -> %d", v, v + 1);
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
    if (MIGRATIONS[v](s, e) || store_exec(s, pragma, what, e) || store_commit(s, what, e)) {
      store_rollback(s);
      return e->code;
    }
  }
}

/* A SQLite file that is not an engine store is refused before anything is written to it (no
 * WAL switch, no schema): at user_version 0 it must hold no table (a new, empty database); at a
 * known version it must have the store's tables. Reads only. */
int store_check_foreign(nas_store *s, int v, nas_err *e) {
  static const char *const TABLES[] = {"runs", "candidates", "weights", "layer_costs", "events"};
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                         "'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                         -1, &st, NULL) != SQLITE_OK)
    return store_dberr(s, e, "reading the table list");
  int ntab = 0, found = 0, rc;
  char first[64] = "";
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    if (!name) continue;
    if (!ntab++) snprintf(first, sizeof first, "%s", name);
    for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++) found += !strcmp(name, TABLES[i]);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return store_dberr(s, e, "reading the table list");
  if (v == 0 && ntab > 0)
    return nas_errf(e, NAS_EFORMAT,
                    "%s: not a nas store (a SQLite database with %d table(s) of its own, e.g. "
                    "'%s'); refusing to touch it",
                    s->path, ntab, first);
  if (v > 0 && found < (int)(sizeof TABLES / sizeof TABLES[0]))
    return nas_errf(e, NAS_EFORMAT,
                    "%s: not a nas store (schema version %d without the store's tables); "
                    "refusing to touch it",
                    s->path, v);
  return NAS_OK;
}

/* A non-empty file must start with the SQLite header; checked before SQLite touches it. */
int store_check_header(const char *path, int must_exist, nas_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT && !must_exist) return NAS_OK;
    return nas_errf(e, NAS_EIO, "%s: cannot open: %s", path, strerror(errno));
  }
  char h[16];
  size_t n = fread(h, 1, sizeof h, f);
  fclose(f);
  if (n == 0 && !must_exist) return NAS_OK;
  if (n < sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
    return nas_errf(e, NAS_EFORMAT, "%s: not a SQLite database (refusing to touch it)", path);
  return NAS_OK;
}
