/* nas/search.h: the search run loop (README "Search"): propose an architecture from a search
 * space (random sampling or aging evolution), store it as proposed, price it on the target
 * (hard constraints are checked before any training: an over-budget candidate is rejected
 * with its reason), train it, quantise it to int8 and evaluate the int8 graph, store metrics
 * and state done. A diverging candidate (NaN) is stored as failed and the search goes on.
 *
 * Determinism and resume: candidate k (0-based, in id order within the run) is proposed by a
 * generator seeded from (run seed, k) using only the history of candidates 0..k-1 (hashes,
 * states, metrics), and trained with a seed derived from (run seed, k). Resuming replays the
 * proposals of the stored candidates (checking each hash), re-queues a candidate left in
 * `training`, and continues: an interrupted and resumed run ends with the same candidates as
 * an uninterrupted one. The budget counts every proposed candidate (rejected ones included).
 *
 * Evolution (aging evolution, Real et al. 2019, multi-objective): the population is the last
 * P candidates in state done; until P exist, candidates are sampled uniformly. A parent is the
 * best of S members drawn uniformly (with replacement) from the population, "best" meaning
 * lowest non-dominated rank over the run's objectives within the population, then largest
 * crowding distance, then oldest; the child is the parent with one decision mutated.
 * Duplicates (same canonical arch hash within the run) are skipped by drawing again.
 *
 * Front retraining (cfg.retrain_epochs > 0): once the budget is spent, every member of the
 * run's Pareto front over its objectives (search candidates only, nas_pareto_front order) is
 * trained again from scratch for retrain_epochs epochs (seed from (run seed, index, salt)),
 * quantised and scored on the full validation/test splits, and stored as a new candidate of
 * the run with parent_id = the original and retrain_epochs = E (results/store.h). The run is
 * done only when every twin is final; resume continues the retraining, and a twin already
 * final is never trained again.
 *
 * SIGINT (hooks->stop): the loop stops at the next step boundary: a candidate being trained
 * finishes (trained, quantised, stored), no new candidate is started, the run is marked
 * interrupted. A process killed mid-training leaves the candidate in state training, which
 * resume re-queues and trains again from scratch with the same seed.
 *
 * Strategies are named in one place (STRATEGIES in search.c); the proposal of candidate k is
 * one function (propose) that dispatches on the strategy.
 *
 * Library code: never prints; progress goes through the callback.
 * Ownership: strings in nas_search_cfg are borrowed for the duration of the call. */
#ifndef NAS_NAS_SEARCH_H
#define NAS_NAS_SEARCH_H

#include <signal.h>
#include <stdint.h>

#include "core/error.h"
#include "datasets/dataset.h"
#include "results/store.h"

typedef struct nas_search_cfg {
  const char *space;        /* built-in space name or space JSON file */
  const char *strategy;     /* "random" | "evolution" */
  const char *dataset;      /* dataset spec (datasets/dataset.h) */
  const char *target;       /* target id (latency/target.h), or NULL with target_file */
  const char *target_file;  /* target JSON file, or NULL */
  long long max_sram;       /* peak SRAM budget in bytes (0: none) */
  long long max_flash;      /* flash budget in bytes (0: none) */
  long long max_macs;       /* MACs budget (0: none) */
  double max_latency_ms;    /* predicted latency budget (0: none) */
  int budget;               /* candidates to propose (20) */
  int epochs;               /* training epochs per candidate (1) */
  int batch;                /* training batch (128) */
  int train_limit;          /* training samples kept (0: all) */
  int population;           /* evolution population P (8) */
  int sample_size;          /* evolution tournament size S (3) */
  uint64_t seed;            /* run seed (1) */
  const char *objectives;   /* "acc_int8_test:max,latency_pred_ms:min" (aliases allowed) */
  int eval_limit;           /* validation/test samples scoring a search candidate (0: all) */
  int calib_samples;        /* training samples calibrating each candidate's int8 ranges (1000) */
  int retrain_epochs;       /* after the budget, retrain the front for this many epochs (0:
                               no retraining); retrained twins are scored on all samples */
} nas_search_cfg;

void nas_search_cfg_default(nas_search_cfg *c);

/* One progress report per candidate state change (state "proposed", "training", "done",
 * "rejected", "failed") and once per run event (state "replayed" on resume). */
typedef struct nas_search_progress {
  int k;                    /* candidate index, 1-based */
  int budget;               /* run budget */
  int64_t run_id;           /* run */
  int64_t cand_id;          /* candidate id */
  const char *state;        /* new state */
  const char *reason;       /* why rejected/failed, or NULL */
  double acc_int8;          /* int8 test accuracy (NAN unless done) */
  double acc_float;         /* float test accuracy (NAN unless done) */
  double latency_ms;        /* predicted latency (NAN before pricing) */
  double peak_sram, flash, macs; /* costs (NAN before pricing) */
  double train_seconds;     /* training wall time (NAN unless done) */
  double best_acc;          /* best int8 test accuracy so far in the run (NAN: none yet) */
  int64_t best_id;          /* its candidate (0: none) */
  int retrain_epochs;       /* > 0 in the front retraining phase: k of budget are then the
                               front member and the front size */
} nas_search_progress;

typedef struct nas_search_hooks {
  void (*progress)(const nas_search_progress *p, void *user); /* may be NULL */
  void *user;                        /* passed to progress */
  volatile sig_atomic_t *stop;       /* when it becomes non-zero, the loop stops after the
                                        current step, marks the run interrupted (may be NULL) */
} nas_search_hooks;

typedef struct nas_search_summary {
  int64_t run_id;           /* the run */
  int candidates;           /* candidates stored in the run */
  int done, rejected, failed; /* by final state */
  int interrupted;          /* 1 when stopped by hooks->stop */
  int exhausted;            /* 1 when no new architecture could be found before the budget */
  int retrained;            /* retrained twins stored in the run (done or failed) */
  int64_t best_id;          /* best done candidate by int8 test accuracy (0: none) */
  double best_acc;          /* its int8 test accuracy (NAN: none) */
} nas_search_summary;

/* Validates the configuration, the space (nas_space_check), the target and the dataset (its
 * input shape and classes must match the space) BEFORE creating the run; then creates the run
 * in the store at db_path (created if missing) and runs it to its budget. */
int nas_search_run(const char *db_path, const nas_search_cfg *cfg, const nas_search_hooks *h,
                   nas_search_summary *s, nas_err *e);

/* Continues run run_id (0: the latest run not done) of the store from its stored
 * configuration; a run already done is an error naming it. */
int nas_search_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                      nas_search_summary *s, nas_err *e);

/* ---- run setup shared by the strategies (search.c and dnas.c) ---------------------------
 * One implementation of the steps every strategy's run and resume take. */

/* Checks the fields every strategy uses: space, dataset and target given, epochs 1..100000,
 * batch 1..65536, no negative constraint, train limit >= 0 (NAS_EUSAGE naming the field). */
int nas_search_check_cfg(const nas_search_cfg *g, nas_err *e);

/* Expands (nas_objectives_expand) and parses spec into obj; an error is NAS_EUSAGE prefixed
 * "option --objectives". */
struct nas_objectives;
int nas_search_objectives(const char *spec, struct nas_objectives *obj, nas_err *e);

/* Loads g->dataset with g->train_limit training samples into d (caller frees d). */
int nas_search_load_data(const nas_search_cfg *g, nas_data *d, nas_err *e);

/* NAS_EINVAL naming both sides unless the space's input h x w x c and classes fit d (the
 * dataset may have fewer classes than the space). */
int nas_search_check_shape(const char *space_name, int h, int w, int c, int classes,
                           const char *dataset, const nas_data *d, nas_err *e);

/* Adds the fields of g every strategy stores (space, dataset, target, budgets, budget,
 * epochs, batch, train_limit, seed as text, objectives) and strategy to the JSON object j;
 * nas_search_config_read reads them back into g, keeping g's value where a field is absent
 * (strings: NULL where absent; objectives kept). */
struct cJSON;
void nas_search_config_write(struct cJSON *j, const nas_search_cfg *g, const char *strategy,
                             const char *objectives);
void nas_search_config_read(const struct cJSON *j, nas_search_cfg *g);
/* Readers of a stored config object: the string field k (NULL when absent or not a string),
 * the number field k (def when absent or not a number). */
const char *nas_config_str(const struct cJSON *j, const char *k);
double nas_config_num(const struct cJSON *j, const char *k, double def);

/* Opens (creating if missing) the store at db_path into *st (caller closes it, also on
 * error), creates a run of g's space/dataset/target/seed with strategy, budget, objectives
 * and config_json into *run_id, and adds its run_start event. */
int nas_search_create_run(const char *db_path, const nas_search_cfg *g, const char *strategy,
                          int budget, const char *objectives, const char *config_json,
                          nas_store **st, int64_t *run_id, nas_err *e);

/* *run_id 0: sets it to the latest run of st that is not done (NAS_EINVAL when none). */
int nas_search_find_run(nas_store *st, const char *db_path, int64_t *run_id, nas_err *e);

/* Resume setup: the store at db_path must exist; opens it into *st (caller closes it, also
 * on error), picks *run_id (nas_search_find_run), reads its row into r (caller frees it with
 * nas_store_run_row_free, also on error; r must be zeroed), checks it is not done and, when
 * strategy is not NULL, that it is a run of that strategy, and parses its configuration
 * into *config (caller frees with cJSON_Delete). */
int nas_search_open_resume(const char *db_path, const char *strategy, int64_t *run_id,
                           nas_store **st, nas_run_row *r, struct cJSON **config, nas_err *e);

/* Rewrites an objective list with the short aliases expanded (acc_int8 -> acc_int8_test,
 * acc_float -> acc_float_test, latency_ms/latency -> latency_pred_ms, sram ->
 * peak_sram_bytes, flash -> flash_bytes; "accuracy" -> acc_int8_test) into out. A missing
 * direction is an error. */
int nas_objectives_expand(const char *spec, char *out, int cap, nas_err *e);

/* Parses a byte or count size with an optional K/M/G suffix (powers of 1024 for K/M/G,
 * "k"/"m" too); 0 on success. */
int nas_parse_size(const char *text, long long *out);

#endif
