/* nas/dnas_impl.h: internal to nas/dnas*.c: the run context shared by the setup (dnas.c)
 * and the training/extraction loop (dnas_train.c). Not part of the public API. */
#ifndef NAS_NAS_DNAS_IMPL_H
#define NAS_NAS_DNAS_IMPL_H

#include <cjson/cJSON.h>

#include "datasets/dataset.h"
#include "nas/dnas.h"
#include "results/pareto.h"
#include "results/store.h"

typedef struct dnas_ctx {
  nas_dnas_cfg cfg;          /* configuration (strings borrowed, or owned through `owned`) */
  cJSON *owned;              /* keeps a resumed configuration's strings alive */
  const char *db;            /* store path (checkpoints are written next to it) */
  nas_supernet *sn;          /* supernet description (owned) */
  nas_dnas_relax *rx;        /* relaxation (owned) */
  nas_target *t;             /* target (owned) */
  nas_data d;                /* dataset (owned) */
  nas_store *st;             /* store (owned) */
  nas_objectives obj;        /* run objectives */
  int64_t run_id;            /* the run */
  int n_points;              /* sweep points (candidates to extract) */
  double budget[NAS_COST_COUNT]; /* hard budgets (0: none) */
  double ref[NAS_COST_COUNT];    /* scale of each cost term (budget, else initial expectation) */
  const nas_search_hooks *hooks;
  nas_search_summary *sum;
} dnas_ctx;

int dnas_prepare(dnas_ctx *c, nas_err *e);
void dnas_ctx_free(dnas_ctx *c);
char *dnas_config_json(const nas_dnas_cfg *c, const char *objectives);
void dnas_config_read(const cJSON *j, nas_dnas_cfg *c);
/* Runs the remaining sweep points of the run and closes it (status, summary). */
int dnas_loop(dnas_ctx *c, nas_err *e);

#endif
