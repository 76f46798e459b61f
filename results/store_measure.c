/* results/store_measure.c: a candidate's emulated measurement (tables measurements and
 * op_measurements, schema version 3; results/store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "results/store_impl.h"

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
  if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

int store_measurement_put_tx(nas_store *s, int64_t cand_id, const nas_measurement *m, nas_err *e) {
  char what[80];
  snprintf(what, sizeof what, "storing the measurement of candidate %lld", (long long)cand_id);
  if (!m->backend || !m->target || !m->core || !m->runtime || (!m->ok && !m->reason) ||
      (m->nops > 0 && !m->ops) || m->nops < 0)
    return nas_errf(e, NAS_EINVAL, "%s: %s: backend, target, core, runtime (and a reason when it "
                    "failed) are required", s->path, what);
  sqlite3_stmt *st;
  int rc = store_prep(s, "DELETE FROM op_measurements WHERE candidate_id = ?", &st, what, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, cand_id);
  if ((rc = store_step_done(s, st, what, e))) return rc;
  if ((rc = store_prep(s,
           "INSERT OR REPLACE INTO measurements (candidate_id, backend, target, core, runtime,"
           " status, reason, insns, cycles, ms, seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
           &st, what, e)))
    return rc;
  sqlite3_bind_int64(st, 1, cand_id);
  sqlite3_bind_text(st, 2, m->backend, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, m->target, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, m->core, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, m->runtime, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 6, m->ok ? "ok" : "failed", -1, SQLITE_STATIC);
  bind_text_or_null(st, 7, m->ok ? NULL : m->reason);
  if (m->ok) {
    sqlite3_bind_int64(st, 8, m->insns);
    sqlite3_bind_double(st, 9, m->cycles);
    sqlite3_bind_double(st, 10, m->ms);
  } else {
    sqlite3_bind_null(st, 8), sqlite3_bind_null(st, 9), sqlite3_bind_null(st, 10);
  }
  sqlite3_bind_double(st, 11, m->seconds);
  if ((rc = store_step_done(s, st, what, e))) return rc;
  if (!m->ok || m->nops == 0) return NAS_OK;
  if ((rc = store_prep(s,
           "INSERT INTO op_measurements (candidate_id, op, kind, layer, insns, ldst, mul, branch,"
           " other, taken, cycles, ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
           &st, what, e)))
    return rc;
  for (int i = 0; i < m->nops; i++) {
    const nas_op_meas *o = &m->ops[i];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, cand_id);
    sqlite3_bind_int(st, 2, o->op);
    sqlite3_bind_text(st, 3, o->kind, -1, SQLITE_TRANSIENT);
    if (o->layer >= 0) sqlite3_bind_int(st, 4, o->layer);
    else sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, o->insns);
    sqlite3_bind_int64(st, 6, o->ldst);
    sqlite3_bind_int64(st, 7, o->mul);
    sqlite3_bind_int64(st, 8, o->branch);
    sqlite3_bind_int64(st, 9, o->other);
    sqlite3_bind_int64(st, 10, o->taken);
    sqlite3_bind_double(st, 11, o->cycles);
    sqlite3_bind_double(st, 12, o->ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
      rc = store_dberr(s, e, what);
      sqlite3_finalize(st);
      return rc;
    }
  }
  sqlite3_finalize(st);
  return NAS_OK;
}

void nas_measurement_row_free(nas_measurement_row *r) {
  if (!r) return;
  free(r->backend), free(r->target), free(r->core), free(r->runtime), free(r->reason);
  free(r->ops);
  memset(r, 0, sizeof *r);
}

int nas_store_measurement_get(nas_store *s, int64_t cand_id, nas_measurement_row *row,
                              int *found, nas_err *e) {
  memset(row, 0, sizeof *row);
  *found = 0;
  if (s->version < 3) return NAS_OK; /* an older store (read-only open) has no measurements */
  char what[80];
  snprintf(what, sizeof what, "reading the measurement of candidate %lld", (long long)cand_id);
  sqlite3_stmt *st;
  int rc = store_prep(s,
      "SELECT backend, target, core, runtime, status, reason, insns, cycles, ms, seconds"
      " FROM measurements WHERE candidate_id = ?", &st, what, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, cand_id);
  int r = sqlite3_step(st);
  if (r == SQLITE_DONE) {
    sqlite3_finalize(st);
    return NAS_OK;
  }
  if (r != SQLITE_ROW) {
    rc = store_dberr(s, e, what);
    sqlite3_finalize(st);
    return rc;
  }
  char status[8];
  int bad = store_dup_col(st, 0, &row->backend) | store_dup_col(st, 1, &row->target) |
            store_dup_col(st, 2, &row->core) | store_dup_col(st, 3, &row->runtime) |
            store_col_buf(st, 4, status, sizeof status) | store_dup_col(st, 5, &row->reason);
  row->ok = !strcmp(status, "ok");
  row->insns = sqlite3_column_int64(st, 6);
  row->cycles = sqlite3_column_double(st, 7), row->ms = sqlite3_column_double(st, 8);
  row->seconds = sqlite3_column_double(st, 9);
  sqlite3_finalize(st);
  if (bad || !row->backend || !row->target || !row->core || !row->runtime || (!row->ok && !row->reason)) {
    nas_measurement_row_free(row);
    return nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, what);
  }
  *found = 1;
  if ((rc = store_prep(s,
           "SELECT op, kind, layer, insns, ldst, mul, branch, other, taken, cycles, ms"
           " FROM op_measurements WHERE candidate_id = ? ORDER BY op", &st, what, e))) {
    nas_measurement_row_free(row);
    return rc;
  }
  sqlite3_bind_int64(st, 1, cand_id);
  int cap = 0;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (row->nops == cap) {
      nas_op_meas *n = nas_realloc(row->ops, sizeof *n * (size_t)(cap = cap ? 2 * cap : 16));
      if (!n) {
        sqlite3_finalize(st);
        nas_measurement_row_free(row);
        return nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, what);
      }
      row->ops = n;
    }
    nas_op_meas *o = &row->ops[row->nops++];
    memset(o, 0, sizeof *o);
    o->op = sqlite3_column_int(st, 0);
    if (store_col_buf(st, 1, o->kind, sizeof o->kind)) {
      sqlite3_finalize(st);
      nas_measurement_row_free(row);
      return nas_errf(e, NAS_ENOMEM, "%s: %s: out of memory", s->path, what);
    }
    o->layer = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 2);
    o->insns = sqlite3_column_int64(st, 3), o->ldst = sqlite3_column_int64(st, 4);
    o->mul = sqlite3_column_int64(st, 5), o->branch = sqlite3_column_int64(st, 6);
    o->other = sqlite3_column_int64(st, 7), o->taken = sqlite3_column_int64(st, 8);
    o->cycles = sqlite3_column_double(st, 9), o->ms = sqlite3_column_double(st, 10);
  }
  if (r != SQLITE_DONE) {
    rc = store_dberr(s, e, what);
    sqlite3_finalize(st);
    nas_measurement_row_free(row);
    return rc;
  }
  sqlite3_finalize(st);
  return NAS_OK;
}
