/* results/store_impl.h: internal to results/store*.c: the store handle and the SQLite
 * helpers shared by the store's files. Not part of the public API. */
#ifndef NAS_RESULTS_STORE_IMPL_H
#define NAS_RESULTS_STORE_IMPL_H

#include <sqlite3.h>

#include "results/store.h"

struct nas_store {
  sqlite3 *db;  /* the connection (owned) */
  char *path;   /* file name for messages (owned) */
  int readonly; /* opened with nas_store_open_readonly */
  int version;  /* schema version of the file (older only for read-only opens) */
};


/* One-line error naming the file, the operation and SQLite's message; returns NAS_ENOMEM when
 * SQLite ran out of memory, else NAS_EIO.
 * Text and blobs are bound SQLITE_STATIC (the data outlives the statement's step), so a bind
 * never allocates and cannot fail for memory. */
int store_dberr(nas_store *s, nas_err *e, const char *what);
/* Runs SQL without results. */
int store_exec(nas_store *s, const char *sql, const char *what, nas_err *e);
/* Prepares a statement (*st NULL on failure). */
int store_prep(nas_store *s, const char *sql, sqlite3_stmt **st, const char *what, nas_err *e);
/* BEGIN IMMEDIATE (refused on a read-only store) / COMMIT / ROLLBACK if a transaction is open. */
int store_begin(nas_store *s, const char *what, nas_err *e);
int store_commit(nas_store *s, const char *what, nas_err *e);
void store_rollback(nas_store *s);
/* *out = malloc'd copy of text column i (NULL for SQL NULL); -1 when out of memory (ours, or
 * SQLite's while converting the value), else 0. */
int store_dup_col(sqlite3_stmt *st, int i, char **out);
/* Text column i into buf (cap bytes, truncated; "" for SQL NULL); -1 when out of memory. */
int store_col_buf(sqlite3_stmt *st, int i, char *buf, size_t cap);
/* Steps a statement that returns no rows, then finalizes it. */
int store_step_done(nas_store *s, sqlite3_stmt *st, const char *what, nas_err *e);
/* Steps a statement that looks up one row by id: NAS_OK on a row (st stays open for the
 * caller to read and finalize); otherwise finalizes st and fails with "<path>: no <noun>
 * <id>" when there is no such row, or the database error. */
int store_step_row(nas_store *s, sqlite3_stmt *st, const char *noun, long long id,
                   const char *what, nas_err *e);

/* results/store_schema.c. SQL for the current UTC time with milliseconds. */
#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
/* A non-empty file must start with the SQLite header (must_exist: an empty or missing file is
 * an error too); checked before SQLite touches it. */
int store_check_header(const char *path, int must_exist, nas_err *e);
/* PRAGMA user_version into *v. */
int store_read_version(nas_store *s, int *v, nas_err *e);
/* Refuses a database of user_version v that is not an engine store, naming it. */
int store_check_foreign(nas_store *s, int v, nas_err *e);
/* Migrates from the file's version to NAS_STORE_VERSION, one transaction per step. */
int store_migrate(nas_store *s, nas_err *e);

/* Inside an open transaction (no BEGIN/COMMIT of their own): the state transition and the
 * metric columns of nas_store_candidate_set_state / _set_metrics. */
int store_set_state_tx(nas_store *s, int64_t cand_id, const char *state, const char *reason,
                       nas_err *e);
int store_set_metrics_tx(nas_store *s, int64_t cand_id, const nas_metrics *m, nas_err *e);
/* Inside an open transaction: replaces the candidate's measurement (results/store_measure.c). */
int store_measurement_put_tx(nas_store *s, int64_t cand_id, const nas_measurement *m, nas_err *e);

#endif
