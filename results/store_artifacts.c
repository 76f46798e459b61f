/* results/store_artifacts.c: what the store keeps per candidate besides its row: weights
 * (BLOBs), per-layer costs, and the run's event log; the candidate's final transition with
 * its metrics and weights in one transaction; the retrained twins of front members. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/store_impl.h"
#include "core/alloc.h"

/* ---- weights, layer costs ---------------------------------------------------------------- */

static int check_kind(nas_store *s, int64_t cand_id, const char *kind, nas_err *e) {
  if (kind && (!strcmp(kind, "float") || !strcmp(kind, "int8"))) return NAS_OK;
  return nas_errf(e, NAS_EINVAL, "%s: candidate %lld: unknown weights kind '%s' (float, int8)",
                  s->path, (long long)cand_id, kind ? kind : "(null)");
}

/* INSERT OR REPLACE of one blob inside an open transaction. */
static int weights_put_tx(nas_store *s, int64_t cand_id, const char *kind, const void *data,
                          size_t len, nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "storing %s weights of candidate %lld", kind, (long long)cand_id);
  if (len > 0x7fffffff) return nas_errf(e, NAS_EINVAL, "%s: %s: blob too large", s->path, what);
  sqlite3_stmt *st;
  if (store_prep(s, "INSERT OR REPLACE INTO weights (candidate_id, kind, data) VALUES (?,?,?)", &st,
           what, e))
    return e->code;
  sqlite3_bind_int64(st, 1, cand_id);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  if (len == 0) sqlite3_bind_zeroblob(st, 3, 0);
  else sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
  return store_step_done(s, st, what, e);
}

int nas_store_weights_put(nas_store *s, int64_t cand_id, const char *kind, const void *data,
                          size_t len, nas_err *e) {
  if (check_kind(s, cand_id, kind, e)) return e->code;
  char what[80];
  snprintf(what, sizeof what, "storing %s weights of candidate %lld", kind, (long long)cand_id);
  if (store_begin(s, what, e)) return e->code;
  if (weights_put_tx(s, cand_id, kind, data, len, e) || store_commit(s, what, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int nas_store_candidate_finish(nas_store *s, int64_t cand_id, const char *state,
                               const char *reason, const nas_metrics *m,
                               const nas_store_blob *blobs, int nblobs, nas_err *e) {
  return nas_store_candidate_finish_measured(s, cand_id, state, reason, m, blobs, nblobs, NULL, e);
}

int nas_store_candidate_finish_measured(nas_store *s, int64_t cand_id, const char *state,
                                        const char *reason, const nas_metrics *m,
                                        const nas_store_blob *blobs, int nblobs,
                                        const nas_measurement *meas, nas_err *e) {
  for (int i = 0; i < nblobs; i++)
    if (check_kind(s, cand_id, blobs[i].kind, e)) return e->code;
  char what[80];
  snprintf(what, sizeof what, "finishing candidate %lld", (long long)cand_id);
  if (store_begin(s, what, e)) return e->code;
  int rc = m ? store_set_metrics_tx(s, cand_id, m, e) : NAS_OK;
  for (int i = 0; rc == NAS_OK && i < nblobs; i++)
    rc = weights_put_tx(s, cand_id, blobs[i].kind, blobs[i].data, blobs[i].len, e);
  if (rc == NAS_OK && meas) rc = store_measurement_put_tx(s, cand_id, meas, e);
  if (rc == NAS_OK) rc = store_set_state_tx(s, cand_id, state, reason, e);
  if (rc == NAS_OK) rc = store_commit(s, what, e);
  if (rc != NAS_OK) store_rollback(s);
  return rc;
}

int nas_store_candidate_add_retrain(nas_store *s, int64_t parent_id, int epochs, int64_t *id,
                                    int *existed, nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "adding the retrained twin of candidate %lld", (long long)parent_id);
  *id = 0;
  if (existed) *existed = 0;
  if (epochs < 1) return nas_errf(e, NAS_EINVAL, "%s: %s: epochs %d < 1", s->path, what, epochs);
  if (store_begin(s, what, e)) return e->code;
  sqlite3_stmt *st;
  int rc = store_prep(s,
      "SELECT t.id FROM candidates p JOIN candidates t ON t.run_id = p.run_id AND"
      " t.arch_hash = p.arch_hash AND t.retrain_epochs = ? WHERE p.id = ?", &st, what, e);
  if (rc == NAS_OK) {
    sqlite3_bind_int(st, 1, epochs);
    sqlite3_bind_int64(st, 2, parent_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    else if (r != SQLITE_DONE) rc = store_dberr(s, e, what);
    sqlite3_finalize(st);
  }
  if (rc == NAS_OK && *id) {
    store_rollback(s);
    if (existed) *existed = 1;
    return NAS_OK;
  }
  if (rc == NAS_OK)
    rc = store_prep(s,
        "INSERT INTO candidates (run_id, arch_json, arch_hash, parent_id, generation,"
        " retrain_epochs, macs, params, flash_bytes, peak_sram_bytes, latency_pred_ms,"
        " latency_meas_ms) SELECT run_id, arch_json, arch_hash, id, generation, ?, macs, params,"
        " flash_bytes, peak_sram_bytes, latency_pred_ms, latency_meas_ms FROM candidates"
        " WHERE id = ? AND retrain_epochs = 0", &st, what, e);
  if (rc == NAS_OK) {
    sqlite3_bind_int(st, 1, epochs);
    sqlite3_bind_int64(st, 2, parent_id);
    rc = store_step_done(s, st, what, e);
    if (rc == NAS_OK && sqlite3_changes(s->db) != 1)
      rc = nas_errf(e, NAS_EINVAL, "%s: %s: no such search candidate", s->path, what);
  }
  if (rc == NAS_OK) {
    *id = sqlite3_last_insert_rowid(s->db);
    rc = store_prep(s,
        "INSERT INTO layer_costs (candidate_id, layer, op, macs, params, flash_bytes, sram_bytes,"
        " latency_ms) SELECT ?, layer, op, macs, params, flash_bytes, sram_bytes, latency_ms"
        " FROM layer_costs WHERE candidate_id = ?", &st, what, e);
    if (rc == NAS_OK) {
      sqlite3_bind_int64(st, 1, *id);
      sqlite3_bind_int64(st, 2, parent_id);
      rc = store_step_done(s, st, what, e);
    }
  }
  if (rc == NAS_OK) rc = store_commit(s, what, e);
  if (rc != NAS_OK) store_rollback(s), *id = 0;
  return rc;
}

int nas_store_weights_get(nas_store *s, int64_t cand_id, const char *kind, void **data,
                          size_t *len, nas_err *e) {
  *data = NULL, *len = 0;
  if (check_kind(s, cand_id, kind, e)) return e->code;
  char what[80];
  snprintf(what, sizeof what, "reading %s weights of candidate %lld", kind, (long long)cand_id);
  sqlite3_stmt *st;
  if (store_prep(s, "SELECT data FROM weights WHERE candidate_id = ? AND kind = ?", &st, what, e))
    return e->code;
  sqlite3_bind_int64(st, 1, cand_id);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    int code = rc == SQLITE_DONE ? nas_errf(e, NAS_EINVAL, "%s: %s: none stored", s->path, what)
                                 : store_dberr(s, e, what);
    sqlite3_finalize(st);
    return code;
  }
  const void *b = sqlite3_column_blob(st, 0); /* NULL: empty, or SQLite out of memory */
  int n = sqlite3_column_bytes(st, 0);
  int oom = !b && (sqlite3_errcode(s->db) & 0xff) == SQLITE_NOMEM;
  *data = oom ? NULL : nas_malloc(n > 0 ? (size_t)n : 1);
  if (!*data) {
    sqlite3_finalize(st);
    return nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, what);
  }
  if (n > 0) memcpy(*data, b, (size_t)n);
  *len = (size_t)n;
  sqlite3_finalize(st);
  return NAS_OK;
}

int nas_store_layer_costs_put(nas_store *s, int64_t cand_id, const nas_layer_cost *rows, int n,
                              nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "storing layer costs of candidate %lld", (long long)cand_id);
  if (store_begin(s, what, e)) return e->code;
  sqlite3_stmt *st;
  if (store_prep(s, "DELETE FROM layer_costs WHERE candidate_id = ?", &st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  sqlite3_bind_int64(st, 1, cand_id);
  if (store_step_done(s, st, what, e) ||
      store_prep(s,
           "INSERT INTO layer_costs (candidate_id, layer, op, macs, params, flash_bytes,"
           " sram_bytes, latency_ms) VALUES (?,?,?,?,?,?,?,?)",
           &st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  for (int i = 0; i < n; i++) {
    const nas_layer_cost *r = &rows[i];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, cand_id);
    sqlite3_bind_int(st, 2, r->layer);
    sqlite3_bind_text(st, 3, r->op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->macs);
    sqlite3_bind_int64(st, 5, r->params);
    sqlite3_bind_int64(st, 6, r->flash_bytes);
    sqlite3_bind_int64(st, 7, r->sram_bytes);
    if (isnan(r->latency_ms)) sqlite3_bind_null(st, 8);
    else sqlite3_bind_double(st, 8, r->latency_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
      int code = store_dberr(s, e, what);
      sqlite3_finalize(st);
      store_rollback(s);
      return code;
    }
  }
  sqlite3_finalize(st);
  if (store_commit(s, what, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int nas_store_layer_costs_get(nas_store *s, int64_t cand_id, nas_layer_cost **rows, int *n,
                              nas_err *e) {
  *rows = NULL, *n = 0;
  sqlite3_stmt *st;
  static const char *const W = "reading layer costs";
  if (store_prep(s,
           "SELECT layer, op, macs, params, flash_bytes, sram_bytes, latency_ms FROM layer_costs"
           " WHERE candidate_id = ? ORDER BY layer",
           &st, W, e))
    return e->code;
  sqlite3_bind_int64(st, 1, cand_id);
  int cap = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      nas_layer_cost *p = nas_realloc(*rows, (size_t)cap * sizeof *p);
      if (!p) {
        rc = SQLITE_NOMEM;
        break;
      }
      *rows = p;
    }
    nas_layer_cost *r = &(*rows)[(*n)++];
    r->layer = sqlite3_column_int(st, 0);
    if (store_col_buf(st, 1, r->op, sizeof r->op)) {
      rc = SQLITE_NOMEM;
      break;
    }
    r->macs = sqlite3_column_int64(st, 2);
    r->params = sqlite3_column_int64(st, 3);
    r->flash_bytes = sqlite3_column_int64(st, 4);
    r->sram_bytes = sqlite3_column_int64(st, 5);
    r->latency_ms = sqlite3_column_type(st, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 6);
  }
  if (rc != SQLITE_DONE) {
    if (rc == SQLITE_NOMEM) nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, W);
    else store_dberr(s, e, W);
    sqlite3_finalize(st);
    free(*rows), *rows = NULL, *n = 0;
    return e ? e->code : NAS_EIO;
  }
  sqlite3_finalize(st);
  return NAS_OK;
}

/* ---- events ------------------------------------------------------------------------------ */

int nas_store_event_add(nas_store *s, int64_t run_id, int64_t cand_id, const char *kind,
                        const char *payload_json, int64_t *id, nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "adding an event to run %lld", (long long)run_id);
  if (!kind || !*kind) return nas_errf(e, NAS_EINVAL, "%s: %s: empty kind", s->path, what);
  if (store_begin(s, what, e)) return e->code;
  sqlite3_stmt *st;
  if (store_prep(s, "INSERT INTO events (run_id, candidate_id, kind, payload) VALUES (?,?,?,?)", &st,
           what, e)) {
    store_rollback(s);
    return e->code;
  }
  sqlite3_bind_int64(st, 1, run_id);
  if (cand_id > 0) sqlite3_bind_int64(st, 2, cand_id);
  else sqlite3_bind_null(st, 2);
  sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, payload_json ? payload_json : "{}", -1, SQLITE_STATIC);
  if (store_step_done(s, st, what, e)) {
    store_rollback(s);
    return e->code;
  }
  if (id) *id = sqlite3_last_insert_rowid(s->db);
  if (store_commit(s, what, e)) {
    store_rollback(s);
    return e->code;
  }
  return NAS_OK;
}

int nas_store_event_count(nas_store *s, int64_t run_id, const char *kind, int *n, nas_err *e) {
  sqlite3_stmt *st;
  *n = 0;
  if (store_prep(s,
           kind ? "SELECT count(*) FROM events WHERE run_id = ? AND kind = ?"
                : "SELECT count(*) FROM events WHERE run_id = ?",
           &st, "counting events", e))
    return e->code;
  sqlite3_bind_int64(st, 1, run_id);
  if (kind) sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) {
    int code = store_dberr(s, e, "counting events");
    sqlite3_finalize(st);
    return code;
  }
  *n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return NAS_OK;
}

int nas_store_event_last(nas_store *s, int64_t run_id, const char *kind, char **payload,
                         nas_err *e) {
  sqlite3_stmt *st;
  *payload = NULL;
  if (store_prep(s, "SELECT payload FROM events WHERE run_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                 &st, "reading the last event", e))
    return e->code;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && store_dup_col(st, 0, payload)) {
    sqlite3_finalize(st);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory reading the last event", s->path);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    int code = store_dberr(s, e, "reading the last event");
    sqlite3_finalize(st);
    return code;
  }
  sqlite3_finalize(st);
  return NAS_OK;
}
