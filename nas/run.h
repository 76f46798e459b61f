/* nas/run.h: the one run driver every search strategy runs under (README "Search").
 *
 * A strategy (nas/strategies/, one table entry each) is handed to the driver as a
 * nas_strategy. For a new run the driver reads the configuration (a JSON object: the keys of
 * nas_run_options, of nas_propose_options for proposal strategies, and the strategy's own;
 * absent keys take their defaults), checks it, loads the space, the target and the dataset
 * (the dataset's input shape and classes must fit the space) BEFORE anything is stored, then
 * creates the run with its configuration made complete (runs.config_json, read back on
 * resume), runs the strategy's body, and ends the run: its summary, status (done, or
 * interrupted and resumable) and final event. For a resume it opens the run (it must not be
 * done), reads its stored configuration the same way, and continues.
 *
 * Two kinds of strategy body:
 *   - proposal strategies supply propose(k): candidate k from the history of candidates
 *     0..k-1; the driver's proposal loop (run_propose.c) stores each proposal, sends it
 *     through the candidate step (nas/candidate.h), and after the budget optionally retrains
 *     the run's Pareto front.
 *   - other strategies (DNAS) supply their own body, which uses the same set-up, stop flag,
 *     summary and candidate step.
 *
 * Determinism and resume (proposal loop): candidate k (0-based, in id order within the run) is
 * proposed with a generator seeded from (run seed, k) using only the history of candidates
 * 0..k-1 (hashes, states, metrics), and trained with a seed derived from (run seed, k).
 * Resuming replays the proposals of the stored candidates (checking each hash), re-queues a
 * candidate left in `training`, and continues: an interrupted and resumed run ends with the
 * same candidates as an uninterrupted one. The budget counts every proposed candidate
 * (rejected ones included). An architecture already in the run (same hash) is never proposed
 * again: after NAS_PROPOSE_TRIES draws without a new one the space counts as exhausted.
 *
 * Front retraining (retrain_epochs > 0, proposal strategies): once the budget is spent, every
 * member of the run's Pareto front over its objectives (search candidates only,
 * nas_pareto_front order) is trained again from scratch for retrain_epochs epochs (seed from
 * (run seed, index, salt)), quantised and scored on the full validation/test splits, and
 * stored as a new candidate of the run with parent_id = the original and retrain_epochs = E
 * (results/store.h). The run is done only when every twin is final; resume continues the
 * retraining, and a twin already final is never trained again.
 *
 * Stop (hooks->stop, e.g. set by SIGINT): the run stops at the next step boundary: a
 * candidate being trained finishes (trained, quantised, stored), no new candidate is started,
 * the run is marked interrupted. A process killed mid-training leaves the candidate in state
 * training, which resume re-queues and trains again from scratch with the same seed.
 *
 * Layering: the driver knows strategies only through nas_strategy; the table of strategies
 * (nas/strategies/strategy.h) and the CLI sit above it.
 * Library code: never prints; progress goes through the hooks.
 * Ownership: the configuration object and the strings of nas_search_cfg are borrowed for the
 * duration of a call; nas_run owns everything it loads. */
#ifndef NAS_NAS_RUN_H
#define NAS_NAS_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"
#include "datasets/dataset.h"
#include "latency/target.h"
#include "nas/candidate.h"
#include "nas/option.h"
#include "results/pareto.h"
#include "results/store.h"
#include "search_spaces/space.h"

struct cJSON;

#define NAS_PROPOSE_TRIES 1000 /* draws before a space counts as exhausted */

/* ---- configuration ----------------------------------------------------------------------- */

/* What every run has (configuration keys in brackets). */
typedef struct nas_search_cfg {
  const char *space;        /* built-in space name or space JSON file ("space") */
  const char *dataset;      /* dataset spec, datasets/dataset.h ("dataset") */
  const char *target;       /* target id, latency/target.h ("target"), or NULL with target_file */
  const char *target_file;  /* target JSON file, or NULL ("target_file") */
  long long max_sram;       /* peak SRAM budget in bytes, 0: none ("max_sram") */
  long long max_flash;      /* flash budget in bytes, 0: none ("max_flash") */
  long long max_macs;       /* MACs budget, 0: none ("max_macs") */
  double max_latency_ms;    /* predicted latency budget, 0: none ("max_latency_ms") */
  int budget;               /* candidates to propose (20; "budget"); DNAS: its sweep points */
  int epochs;               /* training epochs per candidate (1; "epochs") */
  int batch;                /* training batch (128; "batch") */
  int train_limit;          /* training samples kept, 0: all ("train_limit") */
  uint64_t seed;            /* run seed (1; "seed", stored as text) */
  const char *objectives;   /* "acc_int8_test:max,latency_pred_ms:min" (aliases allowed;
                               "objectives") */
  int eval_limit;           /* validation/test samples scoring a candidate, 0: all
                               ("eval_limit") */
  int calib_samples;        /* training samples calibrating each candidate's int8 ranges
                               (1000; "calib_samples") */
  const char *runtime;      /* the runtime the target is priced for (latency/target.h:
                               tflm-cmsis-nn, tflm-reference, nas-c), NULL: the target's own
                               ("runtime") */
  const char *measure;      /* "emulator": every done candidate's int8 graph is measured in the
                               emulator (nas-c runtime, the target's core) and stored with its
                               metrics; NULL: none ("measure") */
} nas_search_cfg;

void nas_search_cfg_default(nas_search_cfg *c);

/* The options of every search (--space, --dataset, --target, --target-file, --runtime,
 * --max-sram, --max-flash, --max-macs, --max-latency-ms, --epochs, --batch, --train-limit,
 * --seed, --objectives, --eval-limit, --calib-samples, --measure), with their configuration
 * keys. */
extern const nas_opt nas_run_options[];
/* The proposal loop's options (--budget, --retrain-front), for proposal strategies. */
extern const nas_opt nas_propose_options[];

/* Writes the fields of g every run stores (space, strategy, dataset, target, budgets, budget,
 * epochs, batch, train_limit, seed as text, objectives, eval_limit, calib_samples, runtime
 * and measure when given) into j, in
 * that order (-1 when out of memory, else 0); nas_search_config_read reads them back into g, keeping g's value where a key is
 * absent (strings: NULL where absent; objectives kept; the seed may be a number or text). */
int nas_search_config_write(struct cJSON *j, const nas_search_cfg *g, const char *strategy,
                            const char *objectives);
void nas_search_config_read(const struct cJSON *j, nas_search_cfg *g);
/* Readers of a configuration object: the string key k (NULL when absent or not a string), the
 * number key k (def when absent or not a number). */
const char *nas_config_str(const struct cJSON *j, const char *k);
double nas_config_num(const struct cJSON *j, const char *k, double def);
/* Sets key k of j to item, replacing an earlier value (item is owned by j afterwards, or freed
 * on failure). -1 when item is NULL or cannot be added (out of memory), else 0. */
int nas_config_set(struct cJSON *j, const char *k, struct cJSON *item);

/* Rewrites an objective list with the short aliases expanded (acc_int8 -> acc_int8_test,
 * acc_float -> acc_float_test, latency_ms/latency -> latency_pred_ms, sram ->
 * peak_sram_bytes, flash -> flash_bytes; "accuracy" -> acc_int8_test) into out. A missing
 * direction is an error. */
int nas_objectives_expand(const char *spec, char *out, int cap, nas_err *e);
/* Parses a byte or count size with an optional K/M/G suffix (powers of 1024 for K/M/G,
 * "k"/"m" too); 0 on success. */
int nas_parse_size(const char *text, long long *out);

/* ---- progress, stop, summary ------------------------------------------------------------- */

/* One progress report per candidate state change (state "proposed", "training", "done",
 * "rejected", "failed") and strategy event (DNAS: "supernet" per epoch). */
typedef struct nas_search_progress {
  int k;                    /* candidate index (DNAS: sweep point), 1-based */
  int budget;               /* run budget */
  int64_t run_id;           /* run */
  int64_t cand_id;          /* candidate id */
  const char *state;        /* new state */
  const char *reason;       /* why rejected/failed (DNAS "supernet": the epoch line), or NULL */
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
  volatile sig_atomic_t *stop;       /* when it becomes non-zero, the run stops after the
                                        current step and is marked interrupted (may be NULL) */
} nas_search_hooks;

typedef struct nas_search_summary {
  int64_t run_id;           /* the run */
  int candidates;           /* search candidates stored in the run */
  int done, rejected, failed; /* of them, by final state */
  int interrupted;          /* 1 when stopped by hooks->stop */
  int exhausted;            /* 1 when no new architecture could be found before the budget */
  int retrained;            /* retrained twins stored in the run (done or failed) */
  int64_t best_id;          /* best done search candidate by int8 test accuracy (0: none) */
  double best_acc;          /* its int8 test accuracy (NAN: none) */
} nas_search_summary;

/* ---- the run and the strategy interface -------------------------------------------------- */

/* A search candidate as the proposal loop keeps it. */
typedef struct nas_hist {
  int64_t id;               /* candidates.id */
  char hash[17];            /* arch hash */
  int *d;                   /* decisions (replayed) */
  char state[16];           /* current state */
  nas_metrics m;            /* metrics */
  int generation;           /* generation */
} nas_hist;

typedef struct nas_strategy nas_strategy;

/* A run being driven. Everything is set up by the driver before the strategy's body runs
 * (st and run_id once the run exists) and freed by it; a strategy keeps its own state in
 * `state`. */
typedef struct nas_run {
  const nas_strategy *strategy;
  const char *db_path;      /* the store's path (DNAS keeps checkpoints next to it) */
  nas_search_cfg cfg;       /* the common configuration (strings point into config) */
  struct cJSON *config;     /* the configuration given or stored (owned) */
  nas_objectives obj;       /* the run's objectives */
  nas_space *sp;            /* the space */
  int nd;                   /* its decisions */
  nas_target *t;            /* the target */
  nas_data d;               /* the dataset */
  nas_store *st;            /* the store */
  int64_t run_id;           /* the run */
  int fresh;                /* 1: a new run (nas_run_start); 0: resumed */
  int retrain_epochs;       /* proposal loop: retrain the front for this many epochs (0: no) */
  nas_hist *h;              /* proposal loop: the search candidates in id order [n] */
  int n, cap;
  void *state;              /* the strategy's (configure allocates it, release frees it) */
  const nas_search_hooks *hooks;
  nas_search_summary *sum;
  char emu_cache[1024];     /* with cfg.measure: the emulator's kernel cache ("" = none) */
} nas_run;

/* A proposal: decisions d (a buffer of r->nd, owned by the driver), their arch JSON (malloc'd;
 * set by nas_propose_take, or by the strategy itself when the arch carries more than the
 * space's decisions) and hash, the parent candidate and the generation; warm = 1 when the
 * candidate inherits the parent's trained weights (train/inherit.h) and is fine-tuned for
 * `epochs` (0: the run's) instead of trained from scratch (the store records warm_start). */
typedef struct nas_proposal {
  int *d;
  char *arch;
  char hash[17];
  int64_t parent;           /* 0: none */
  int generation;
  int warm;                 /* 1: warm-started from parent (a done candidate of the run) */
  int epochs;               /* training epochs of this candidate (0: the run's --epochs) */
} nas_proposal;

/* What the driver calls. A strategy is one table entry (nas/strategies/registry.c) with
 * either propose or body set. */
struct nas_strategy {
  const char *name;         /* --strategy NAME; runs.strategy */
  const char *summary;      /* one line for `nas search --help` */
  const char *help;         /* a paragraph for `nas search --strategy NAME --help`, or NULL */
  const nas_opt *options;   /* its own options (configuration keys), or NULL */
  const char *unit;         /* what a progress line counts: "candidate" (k of the budget) or
                               "point" (DNAS sweep points) */
  /* Reads the strategy's keys of config (absent ones take their defaults) into r->state
     (allocating it), checks them (NAS_EUSAGE naming the option or field) and may set
     r->cfg.budget. May be NULL. */
  int (*configure)(nas_run *r, const struct cJSON *config, nas_err *e);
  /* Appends the strategy's keys, defaults filled in, to the configuration stored with a new
     run (after the common keys); -1 when out of memory, else 0. May be NULL. */
  int (*save)(const nas_run *r, struct cJSON *config);
  /* After the space, target and dataset are loaded and checked, before the run is created or
     opened. May be NULL. */
  int (*prepare)(nas_run *r, nas_err *e);
  /* Proposal strategies: fills p with candidate k from the history r->h[0..k), using only rng
     (seeded from the run seed and k) for randomness; *found = 0 when the space seems
     exhausted. */
  int (*propose)(const nas_run *r, int k, nas_rng *rng, nas_proposal *p, int *found, nas_err *e);
  /* Other strategies: the run's body, for new and resumed runs alike (it must continue a
     resumed run where it stopped); *stopped = 1 when a stop request ended it early. */
  int (*body)(nas_run *r, int *stopped, nas_err *e);
  void (*release)(nas_run *r); /* frees r->state (NULL-safe); may be NULL */
};

/* Validates config (see the header comment) BEFORE creating a run, then creates the run in
 * the store at db_path (created if missing) with strategy s and runs it to its end. */
int nas_run_start(const char *db_path, const nas_strategy *s, const struct cJSON *config,
                  const nas_search_hooks *h, nas_search_summary *sum, nas_err *e);
/* Continues run run_id (0: the latest run not done) of the store at db_path, which must exist
 * and be a run of strategy s (nas_run_strategy_of), from its stored configuration; a run
 * already done is an error naming it. */
int nas_run_resume(const char *db_path, const nas_strategy *s, int64_t run_id,
                   const nas_search_hooks *h, nas_search_summary *sum, nas_err *e);
/* Which run `nas resume` would continue: *run_id (0: the latest run not done, resolved) of the
 * store at db_path (which must exist), its strategy name into name; errors when there is no
 * such run or it is already done. Reads only. */
int nas_run_strategy_of(const char *db_path, int64_t *run_id, char *name, size_t cap,
                        nas_err *e);

/* ---- for strategies ---------------------------------------------------------------------- */

/* 1 when a stop was requested. */
int nas_run_stopping(const nas_run *r);
/* The candidate step's configuration for this run: target, budgets, data and batch of the
 * run, with the given epochs, eval limit and training seed. */
void nas_run_candidate_cfg(const nas_run *r, int epochs, int eval_limit, uint64_t seed,
                           nas_candidate_cfg *cc);
/* Proposal strategies: materialises p->d into p->arch and p->hash; *fresh = 1 when none of the
 * candidates r->h[0..k) has that hash (else p->arch is freed and NULL). */
int nas_propose_take(const nas_run *r, int k, nas_proposal *p, int *fresh, nas_err *e);
/* Proposal strategies: uniform sampling, up to NAS_PROPOSE_TRIES draws for a fresh
 * architecture (*found = 0 when none). */
int nas_propose_uniform(const nas_run *r, int k, nas_rng *rng, nas_proposal *p, int *found,
                        nas_err *e);

/* Internal to nas/run*.c: the proposal loop's body (run_propose.c). */
int nas_propose_loop(nas_run *r, int *stopped, nas_err *e);

#endif
