/* nas/strategies/dnas_impl.h: internal to nas/strategies/dnas*.c: the run context shared by the
 * setup (dnas.c) and the training/extraction loop (dnas_train.c). Not part of the public API. */
#ifndef NAS_NAS_STRATEGIES_DNAS_IMPL_H
#define NAS_NAS_STRATEGIES_DNAS_IMPL_H

#include <cjson/cJSON.h>

#include "datasets/dataset.h"
#include "nas/run.h"
#include "nas/strategies/dnas.h"
#include "results/pareto.h"
#include "results/store.h"
#include "train/optim.h"

typedef struct dnas_ctx {
  nas_dnas_cfg cfg;          /* configuration (base: the run's common configuration) */
  const char *db;            /* store path (checkpoints are written next to it) */
  nas_supernet *sn;          /* supernet description (owned) */
  nas_dnas_relax *rx;        /* relaxation (owned) */
  const nas_target *t;       /* target (the run's) */
  const nas_data *d;         /* dataset (the run's) */
  nas_run *run;              /* the run (the driver's, nas/run.h) */
  nas_store *st;             /* store (the run's, once the body runs) */
  int64_t run_id;            /* the run (once the body runs) */
  int n_points;              /* sweep points (candidates to extract) */
  double budget[NAS_COST_COUNT]; /* hard budgets (0: none) */
  double ref[NAS_COST_COUNT];    /* scale of each cost term (budget, else initial expectation) */
  const nas_search_hooks *hooks;
} dnas_ctx;

/* State of one sweep point's supernet training besides the weights (owned by the caller). */
typedef struct dnas_sn_state {
  double *alpha, *m, *v;   /* [n_p] logits and their Adam moments */
  long astep;              /* Adam steps taken (bias correction) */
  int epoch;               /* epochs completed */
  long long samples;       /* samples processed (training + architecture steps) */
  double seconds;          /* wall time of supernet training so far */
} dnas_sn_state;

/* Supernet checkpoints (nas/dnas_ckpt.c). Point k's file; k = -1: the warm-up shared by
 * every sweep point (the cost weights play no part before the architecture steps start, so
 * point 0's warm-up is reused). */
void dnas_ckpt_path(const dnas_ctx *c, int k, char *buf, size_t n);
/* Writes the weights and BN statistics of dn, the weight optimiser's state (opt) and s,
 * atomically (tmp file + rename), as a train/checkpoint file with the DNAS state in its meta
 * JSON (format in nas/dnas_ckpt.c). */
int dnas_ckpt_save(const dnas_ctx *c, int k, const nas_dnas_net *dn, const nas_optim *opt,
                   const dnas_sn_state *s, nas_err *e);
/* Loads point k's checkpoint when the file exists: 0 none, 1 loaded into dn, opt and s,
 * -1 refused (e names the file and what is wrong; dn, opt and s are then untouched). */
int dnas_ckpt_load(const dnas_ctx *c, int k, nas_dnas_net *dn, nas_optim *opt, dnas_sn_state *s,
                   nas_err *e);

/* Removes the checkpoint files a new run would read as its own (the warm-up's and every
 * point's): left beside a store path by an earlier store of the same name, they belong to
 * another run with the same id. NAS_EIO naming the file when one exists and cannot be
 * removed. */
int dnas_ckpt_clear(const dnas_ctx *c, nas_err *e);

/* The sweep points not done yet (nas/strategies/dnas_train.c); *stopped on a stop request. */
int dnas_points(dnas_ctx *c, int *stopped, nas_err *e);

#endif
