/* nas/search_train.c: the candidate step's configuration of a run (nas/candidate.h) and the
 * retraining of the run's Pareto front after the budget (nas/search.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploy/lower.h"
#include "core/alloc.h"
#include "latency/cost.h"
#include "nas/candidate.h"
#include "nas/search_impl.h"
#include "train/net.h"
#include "train/quant.h"
#include "train/trainer.h"

void search_cand_cfg(const ctx *c, int epochs, int eval_limit, uint64_t seed,
                     nas_candidate_cfg *cc) {
  const nas_search_cfg *g = &c->cfg;
  memset(cc, 0, sizeof *cc);
  cc->target = c->t;
  cc->max_sram = g->max_sram, cc->max_flash = g->max_flash, cc->max_macs = g->max_macs;
  cc->max_latency_ms = g->max_latency_ms;
  cc->data = &c->d, cc->dataset = g->dataset, cc->train_limit = g->train_limit;
  cc->epochs = epochs, cc->batch = g->batch, cc->seed = seed;
  cc->eval_limit = eval_limit, cc->calib_samples = g->calib_samples;
}

/* Index in c->h of search candidate id, or -1. */
static int index_of(const ctx *c, int64_t id) {
  for (int i = 0; i < c->n; i++)
    if (c->h[i].id == id) return i;
  return -1;
}

int search_retrain_front(ctx *c, int *stopped, nas_err *e) {
  int E = c->cfg.retrain_epochs;
  if (E <= 0) return NAS_OK;
  nas_pareto_row *rows = NULL;
  int n = 0;
  int rc = nas_pareto_front(c->st, &c->obj, c->run_id, "retrain_epochs = 0", &rows, &n, e);
  for (int i = 0; rc == NAS_OK && i < n; i++) {
    int k = index_of(c, rows[i].id);
    if (k < 0) {
      rc = nas_errf(e, NAS_EFORMAT, "run %lld: front member %lld is not a search candidate",
                    (long long)c->run_id, (long long)rows[i].id);
      break;
    }
    int64_t id = 0;
    if ((rc = nas_store_candidate_add_retrain(c->st, rows[i].id, E, &id, NULL, e)) != NAS_OK) break;
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    if ((rc = nas_store_candidate_get(c->st, id, &r, e)) != NAS_OK) break;
    hist x;
    memset(&x, 0, sizeof x);
    x.id = id, x.m = r.m, x.generation = r.generation;
    snprintf(x.hash, sizeof x.hash, "%s", r.arch_hash);
    snprintf(x.state, sizeof x.state, "%s", r.state);
    if (!strcmp(r.state, "done") || !strcmp(r.state, "failed")) { /* final: never again */
      c->sum->retrained++;
      nas_store_candidate_row_free(&r);
      continue;
    }
    if (search_stopping(c)) {
      *stopped = 1;
      nas_store_candidate_row_free(&r);
      break;
    }
    if (!strcmp(r.state, "training")) /* killed mid-training: re-queue, train again */
      rc = nas_store_candidate_set_state(c->st, id, "proposed", NULL, e);
    if (rc == NAS_OK) rc = nas_store_candidate_set_state(c->st, id, "training", NULL, e);
    nas_candidate_result res;
    memset(&res, 0, sizeof res);
    if (rc == NAS_OK) {
      snprintf(x.state, sizeof x.state, "training");
      search_report(c, i, n, &x, NULL, E);
      nas_candidate_cfg cc;
      search_cand_cfg(c, E, 0, nas_seed_mix(c->cfg.seed, (uint64_t)k, 0x2E72A1ull), &cc);
      rc = nas_candidate_train(r.arch_json, id, &cc, &res, e);
    }
    if (rc == NAS_OK) rc = nas_candidate_store_result(c->st, c->run_id, id, &res, &x.m, e);
    if (rc == NAS_OK) {
      snprintf(x.state, sizeof x.state, "%s", res.failed ? "failed" : "done");
      c->sum->retrained++;
      search_report(c, i, n, &x, res.failed ? res.reason : NULL, E);
    }
    nas_candidate_result_free(&res);
    nas_store_candidate_row_free(&r);
  }
  free(rows);
  return rc;
}
