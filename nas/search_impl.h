/* nas/search_impl.h: internal to nas/search*.c: the run context shared by the run loop
 * (search.c) and the training step and front retraining (search_train.c). Not public. */
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

/* Trains arch from scratch for `epochs` with seed, quantises it (calibration, lowering),
 * scores float and int8 on the first eval_limit validation/test samples (0: all), and stores
 * the outcome: state done with metrics and both weight blobs in ONE transaction, or failed
 * with the reason (diverged, int8). x->id is the candidate (state training), x->m holds its
 * costs on entry and its metrics on return; x->state is updated. A store error or
 * out-of-memory is returned; a training failure is not (the candidate is failed and reason
 * says why; reason is "" when done). */
int search_train_store(ctx *c, hist *x, const char *arch, int epochs, int eval_limit,
                       uint64_t seed, char reason[600], nas_err *e);

/* After the budget: retrains every member of the run's Pareto front (search candidates only)
 * from scratch for cfg.retrain_epochs epochs as its retrained twin (results/store.h);
 * idempotent and resumable. *stopped = 1 when a stop request interrupted it. */
int search_retrain_front(ctx *c, int *stopped, nas_err *e);

#endif
