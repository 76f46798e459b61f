/* nas/run_propose.c: the run driver's proposal loop (see nas/run.h): replay of the stored
 * candidates on resume, proposal of candidate k by the strategy, storage and the candidate
 * step, progress with the best so far, and the retraining of the run's Pareto front after the
 * budget; plus the helpers proposal strategies build on (take a proposal unless it is a
 * duplicate, uniform sampling). Never prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "nas/candidate.h"
#include "nas/run.h"

/* ---- helpers for proposal strategies ----------------------------------------------------- */

int nas_propose_take(const nas_run *r, int k, nas_proposal *p, int *fresh, nas_err *e) {
  *fresh = 0;
  int rc = nas_space_materialize(r->sp, p->d, &p->arch, e);
  if (rc == NAS_OK) rc = nas_arch_hash_hex(p->arch, p->hash, e);
  if (rc != NAS_OK) {
    free(p->arch), p->arch = NULL;
    return rc;
  }
  for (int i = 0; i < k; i++)
    if (!strcmp(r->h[i].hash, p->hash)) {
      free(p->arch), p->arch = NULL;
      return NAS_OK;
    }
  *fresh = 1;
  return NAS_OK;
}

int nas_propose_uniform(const nas_run *r, int k, nas_rng *rng, nas_proposal *p, int *found,
                        nas_err *e) {
  *found = 0;
  for (int t = 0; t < NAS_PROPOSE_TRIES; t++) {
    nas_space_sample(r->sp, rng, p->d);
    int rc = nas_propose_take(r, k, p, found, e);
    if (rc != NAS_OK || *found) return rc;
  }
  return NAS_OK;
}

/* Candidate k's proposal: the generator is seeded from (run seed, k) only. */
static int propose(nas_run *r, int k, nas_proposal *p, int *found, nas_err *e) {
  nas_rng rng;
  nas_rng_seed(&rng, nas_seed_mix(r->cfg.seed, (uint64_t)k, 0x5EA7C4ull));
  *found = 0, p->parent = 0, p->generation = 0, p->arch = NULL, p->warm = 0, p->epochs = 0;
  return r->strategy->propose(r, k, &rng, p, found, e);
}

/* ---- progress ---------------------------------------------------------------------------- */

/* Progress report for x (k 0-based of `of`; retrain_epochs > 0 in the retraining phase), with
 * the best done search candidate so far. */
static void report(nas_run *r, int k, int of, const nas_hist *x, const char *reason,
                   int retrain_epochs) {
  double best = NAN;
  int64_t best_id = 0;
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->h[i].state, "done") && isfinite(r->h[i].m.acc_int8_test) &&
        (best_id == 0 || r->h[i].m.acc_int8_test > best))
      best = r->h[i].m.acc_int8_test, best_id = r->h[i].id;
  if (!r->hooks || !r->hooks->progress) return;
  nas_search_progress p = {.k = k + 1, .budget = of, .run_id = r->run_id,
                           .cand_id = x->id, .state = x->state, .reason = reason,
                           .acc_int8 = x->m.acc_int8_test, .acc_float = x->m.acc_float_test,
                           .latency_ms = x->m.latency_pred_ms, .peak_sram = x->m.peak_sram_bytes,
                           .flash = x->m.flash_bytes, .macs = x->m.macs,
                           .train_seconds = x->m.train_seconds, .best_acc = best,
                           .best_id = best_id, .retrain_epochs = retrain_epochs};
  r->hooks->progress(&p, r->hooks->user);
}

/* The candidate step's progress: keeps candidate k's history entry current and reports it. */
typedef struct step_user {
  nas_run *r;
  int k;
} step_user;

static void step_report(void *user, const char *state, const char *reason, const nas_metrics *m) {
  step_user *u = user;
  nas_hist *x = &u->r->h[u->k];
  x->m = *m;
  snprintf(x->state, sizeof x->state, "%s", state);
  report(u->r, u->k, u->r->cfg.budget, x, reason, 0);
}

/* Candidate k (state proposed) through the candidate step (nas/candidate.h), warm-started
 * from p's parent when p->warm (its float weights read from the store) and trained for
 * p->epochs (0: the run's). *stopped = 1 when it was left proposed because of a stop
 * request. */
static int process(nas_run *r, int k, const char *arch, const nas_proposal *p, int *stopped,
                   nas_err *e) {
  nas_hist *x = &r->h[k];
  nas_metrics_clear(&x->m);
  const nas_search_cfg *g = &r->cfg;
  nas_candidate_cfg cc;
  nas_run_candidate_cfg(r, p->epochs > 0 ? p->epochs : g->epochs, g->eval_limit,
                        nas_seed_mix(g->seed, (uint64_t)k, 0x7EA1ull), &cc);
  void *blob = NULL;
  size_t blen = 0;
  int rc = NAS_OK;
  if (p->warm && p->parent > 0) {
    rc = nas_store_weights_get(r->st, p->parent, "float", &blob, &blen, e);
    cc.warm_blob = blob, cc.warm_len = blen;
  }
  step_user u = {r, k};
  nas_candidate_hooks h = {step_report, &u, r->hooks ? r->hooks->stop : NULL};
  nas_candidate_outcome o;
  if (rc == NAS_OK) rc = nas_candidate_step(r->st, r->run_id, x->id, arch, &cc, &h, &o, e);
  free(blob);
  if (rc != NAS_OK) return rc;
  x->m = o.m;
  if (rc == NAS_OK && !strcmp(o.state, "proposed")) *stopped = 1;
  return rc;
}

/* A new history entry (its decisions zeroed), or NULL when out of memory. */
static nas_hist *push(nas_run *r) {
  if (r->n == r->cap) {
    int cap = r->cap ? 2 * r->cap : 64;
    nas_hist *h = nas_realloc(r->h, sizeof *h * (size_t)cap);
    if (!h) return NULL;
    r->h = h, r->cap = cap;
  }
  nas_hist *x = &r->h[r->n];
  memset(x, 0, sizeof *x);
  x->d = nas_calloc((size_t)(r->nd ? r->nd : 1), sizeof(int));
  if (!x->d) return NULL;
  r->n++;
  return x;
}

/* ---- front retraining -------------------------------------------------------------------- */

/* Index in r->h of search candidate id, or -1. */
static int index_of(const nas_run *r, int64_t id) {
  for (int i = 0; i < r->n; i++)
    if (r->h[i].id == id) return i;
  return -1;
}

/* After the budget: retrains every member of the run's Pareto front (search candidates only)
 * from scratch for r->retrain_epochs epochs as its retrained twin (results/store.h);
 * idempotent and resumable. *stopped = 1 when a stop request interrupted it. */
static int retrain_front(nas_run *r, int *stopped, nas_err *e) {
  int E = r->retrain_epochs;
  if (E <= 0) return NAS_OK;
  nas_pareto_row *rows = NULL;
  int n = 0;
  int rc = nas_pareto_front(r->st, &r->obj, r->run_id, "retrain_epochs = 0", &rows, &n, e);
  for (int i = 0; rc == NAS_OK && i < n; i++) {
    int k = index_of(r, rows[i].id);
    if (k < 0) {
      rc = nas_errf(e, NAS_EFORMAT, "run %lld: front member %lld is not a search candidate",
                    (long long)r->run_id, (long long)rows[i].id);
      break;
    }
    int64_t id = 0;
    if ((rc = nas_store_candidate_add_retrain(r->st, rows[i].id, E, &id, NULL, e)) != NAS_OK) break;
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    if ((rc = nas_store_candidate_get(r->st, id, &row, e)) != NAS_OK) break;
    nas_hist x;
    memset(&x, 0, sizeof x);
    x.id = id, x.m = row.m, x.generation = row.generation;
    snprintf(x.hash, sizeof x.hash, "%s", row.arch_hash);
    snprintf(x.state, sizeof x.state, "%s", row.state);
    if (!strcmp(row.state, "done") || !strcmp(row.state, "failed")) { /* final: never again */
      r->sum->retrained++;
      nas_store_candidate_row_free(&row);
      continue;
    }
    if (nas_run_stopping(r)) {
      *stopped = 1;
      nas_store_candidate_row_free(&row);
      break;
    }
    if (!strcmp(row.state, "training")) /* killed mid-training: re-queue, train again */
      rc = nas_store_candidate_set_state(r->st, id, "proposed", NULL, e);
    if (rc == NAS_OK) rc = nas_store_candidate_set_state(r->st, id, "training", NULL, e);
    nas_candidate_result res;
    memset(&res, 0, sizeof res);
    if (rc == NAS_OK) {
      snprintf(x.state, sizeof x.state, "training");
      report(r, i, n, &x, NULL, E);
      nas_candidate_cfg cc;
      nas_run_candidate_cfg(r, E, 0, nas_seed_mix(r->cfg.seed, (uint64_t)k, 0x2E72A1ull), &cc);
      rc = nas_candidate_train(row.arch_json, id, &cc, &res, e);
    }
    if (rc == NAS_OK) rc = nas_candidate_store_result(r->st, r->run_id, id, &res, &x.m, e);
    if (rc == NAS_OK) {
      snprintf(x.state, sizeof x.state, "%s", res.failed ? "failed" : "done");
      r->sum->retrained++;
      report(r, i, n, &x, res.failed ? res.reason : NULL, E);
    }
    nas_candidate_result_free(&res);
    nas_store_candidate_row_free(&row);
  }
  free(rows);
  return rc;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Replays the stored search candidates (each must be the proposal the strategy makes again);
 * *pending receives the one left unfinished (-1: none) and *pending_arch its arch. */
static int replay(nas_run *r, nas_proposal *p, int *pending, char **pending_arch,
                  nas_proposal *pending_p, nas_err *e) {
  int64_t *ids = NULL;
  int nids = 0, rc = nas_store_search_candidate_ids(r->st, r->run_id, NULL, &ids, &nids, e);
  for (int k = 0; rc == NAS_OK && k < nids; k++) {
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    if ((rc = nas_store_candidate_get(r->st, ids[k], &row, e)) != NAS_OK) break;
    int found = 0;
    rc = propose(r, k, p, &found, e);
    if (rc == NAS_OK && (!found || strcmp(p->hash, row.arch_hash)))
      rc = nas_errf(e, NAS_EFORMAT,
                    "run %lld: candidate %lld (#%d) does not match the replayed proposal (the "
                    "space, seed or build changed)", (long long)r->run_id, (long long)ids[k], k + 1);
    nas_hist *x = rc == NAS_OK ? push(r) : NULL;
    if (rc == NAS_OK && !x) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    if (rc == NAS_OK) {
      x->id = row.id, x->generation = row.generation, x->m = row.m;
      snprintf(x->hash, sizeof x->hash, "%s", row.arch_hash);
      snprintf(x->state, sizeof x->state, "%s", row.state);
      memcpy(x->d, p->d, sizeof(int) * (size_t)r->nd);
      if (!strcmp(row.state, "training"))
        rc = nas_store_candidate_set_state(r->st, row.id, "proposed", NULL, e),
        snprintf(x->state, sizeof x->state, "proposed");
      if (!strcmp(x->state, "proposed")) {
        if (*pending >= 0)
          rc = nas_errf(e, NAS_EFORMAT, "run %lld: two unfinished candidates", (long long)r->run_id);
        *pending = k, free(*pending_arch), *pending_arch = p->arch, p->arch = NULL;
        pending_p->parent = p->parent, pending_p->warm = p->warm, pending_p->epochs = p->epochs;
      } else if (*pending >= 0) {
        rc = nas_errf(e, NAS_EFORMAT, "run %lld: unfinished candidate before a finished one",
                      (long long)r->run_id);
      }
    }
    free(p->arch), p->arch = NULL;
    nas_store_candidate_row_free(&row);
  }
  free(ids);
  return rc;
}

int nas_propose_loop(nas_run *r, int *stopped, nas_err *e) {
  nas_proposal p;
  memset(&p, 0, sizeof p);
  p.d = nas_calloc((size_t)(r->nd ? r->nd : 1), sizeof(int));
  if (!p.d) return nas_errf(e, NAS_ENOMEM, "out of memory");
  int pending = -1; /* a stored candidate that is not final yet */
  char *pending_arch = NULL;
  nas_proposal pending_p;
  memset(&pending_p, 0, sizeof pending_p);
  int rc = replay(r, &p, &pending, &pending_arch, &pending_p, e);
  if (rc == NAS_OK && pending >= 0) {
    if (nas_run_stopping(r)) *stopped = 1;
    else rc = process(r, pending, pending_arch, &pending_p, stopped, e);
  }
  free(pending_arch);
  for (int k = r->n; rc == NAS_OK && !*stopped && k < r->cfg.budget; k++) {
    if (nas_run_stopping(r)) {
      *stopped = 1;
      break;
    }
    int found = 0, existed = 0;
    int64_t id = 0;
    rc = propose(r, k, &p, &found, e);
    if (rc != NAS_OK) break;
    if (!found) {
      r->sum->exhausted = 1;
      break;
    }
    rc = nas_store_candidate_add(r->st, r->run_id, p.arch, p.hash, p.parent, p.generation, &id,
                                 &existed, e);
    if (rc == NAS_OK && existed)
      rc = nas_errf(e, NAS_EFORMAT, "run %lld: candidate %s already stored", (long long)r->run_id, p.hash);
    if (rc == NAS_OK && p.warm) rc = nas_store_candidate_set_warm(r->st, id, 1, e);
    nas_hist *x = rc == NAS_OK ? push(r) : NULL;
    if (rc == NAS_OK && !x) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    if (rc == NAS_OK) {
      x->id = id, x->generation = p.generation;
      nas_metrics_clear(&x->m);
      snprintf(x->hash, sizeof x->hash, "%s", p.hash);
      snprintf(x->state, sizeof x->state, "proposed");
      memcpy(x->d, p.d, sizeof(int) * (size_t)r->nd);
      report(r, k, r->cfg.budget, x, NULL, 0);
      rc = process(r, k, p.arch, &p, stopped, e);
    }
    free(p.arch), p.arch = NULL;
  }
  free(p.d);
  if (rc == NAS_OK && !*stopped) rc = retrain_front(r, stopped, e);
  return rc;
}
