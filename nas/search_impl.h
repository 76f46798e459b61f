/* nas/search_impl.h: internal to nas/search*.c: the run context shared by the run loop
 * (search.c) and the front retraining (search_train.c). Not public. */
#ifndef NAS_NAS_SEARCH_IMPL_H
#define NAS_NAS_SEARCH_IMPL_H

#include <cjson/cJSON.h>

#include "core/rng.h"
#include "datasets/dataset.h"
#include "latency/target.h"
#include "nas/search.h"
#include "results/pareto.h"
#include "results/store.h"
#include "search_spaces/space.h"

typedef struct hist {
  int64_t id;         /* candidates.id */
  char hash[17];      /* arch hash */
  int *d;             /* decisions (replayed) */
  char state[16];     /* current state */
  nas_metrics m;      /* metrics */
  int generation;     /* generation */
} hist;

typedef struct ctx {
  nas_search_cfg cfg;      /* configuration (strings owned through `owned`) */
  cJSON *owned;            /* keeps the strings of a resumed configuration alive */
  nas_space *sp;           /* the space */
  nas_target *t;           /* the target */
  nas_data d;              /* the dataset */
  nas_store *st;           /* the store */
  nas_objectives obj;      /* the run's objectives */
  int64_t run_id;          /* the run */
  int nd;                  /* decisions of the space */
  hist *h;                 /* [n] search candidates in id order */
  int n, cap;
  const nas_search_hooks *hooks;
  nas_search_summary *sum;
} ctx;

/* 1 when a stop was requested. */
int search_stopping(const ctx *c);
/* Progress report for x (k 0-based of `of`; retrain_epochs > 0 in the retraining phase). */
void search_report(ctx *c, int k, int of, const hist *x, const char *reason, int retrain_epochs);

/* The candidate step's configuration for this run (nas/candidate.h): the run's target,
 * budgets, data and batch, with the given epochs, eval limit and training seed. */
struct nas_candidate_cfg;
void search_cand_cfg(const ctx *c, int epochs, int eval_limit, uint64_t seed,
                     struct nas_candidate_cfg *cc);

/* After the budget: retrains every member of the run's Pareto front (search candidates only)
 * from scratch for cfg.retrain_epochs epochs as its retrained twin (results/store.h);
 * idempotent and resumable. *stopped = 1 when a stop request interrupted it. */
int search_retrain_front(ctx *c, int *stopped, nas_err *e);

#endif
