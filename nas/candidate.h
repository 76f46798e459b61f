/* nas/candidate.h: the one candidate step every strategy's candidates go through:
 *
 *   price on the target (hard budgets checked before any training: an over-budget or invalid
 *   architecture is rejected with its reason) -> train from scratch -> calibrate and quantise
 *   to int8 -> evaluate float and int8 -> measure (with c->measure: the int8 graph emulated,
 *   nas/measure_emu.h; a failed measurement keeps the candidate done, with the reason) ->
 *   store.
 *
 * The computation is pure: nas_candidate_price and nas_candidate_train take an architecture,
 * a configuration, a seed and the data and return metrics, per-layer costs, weight blobs and a
 * failure reason without touching the store; nas_candidate_store_price and
 * nas_candidate_store_result write their outcome (the result in ONE transaction: metrics,
 * both weight blobs and the state done or failed). nas_candidate_step runs them in order with
 * the state changes and progress reports in between; a distributed run can instead compute
 * on workers and store on the process that owns the store.
 *
 * Pruned architectures (train/prune.h): a channel-pruned arch is priced at the widths it will
 * have after training (nas_prune_expected_arch) and compacted after training (the float blob
 * holds the compacted network); pruned candidates and every candidate on a nas-c target store
 * the costs of their trained int8 graph. A warm-started candidate (cfg warm_blob) inherits its
 * parent's weights and is fine-tuned instead of trained from scratch.
 *
 * The architecture is parsed once per candidate: pricing builds the network at batch 1 with
 * the training seed and keeps it (nas_candidate_price.net); training re-sizes that network
 * for the training batch (nas_net_rebatch: the same parameters as a network built at that
 * batch) instead of building it again. A rejected candidate never allocates the training
 * arena. (A channel-pruned arch is the exception: it is priced on a network of its expected
 * widths, and its training network is built from the arch.)
 *
 * Library code: never prints. Ownership: strings and pointers in nas_candidate_cfg are
 * borrowed; results own their arrays (free with the _free functions, NULL-safe). */
#ifndef NAS_NAS_CANDIDATE_H
#define NAS_NAS_CANDIDATE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "datasets/dataset.h"
#include "latency/target.h"
#include "nas/measure_emu.h"
#include "results/store.h"

#define NAS_REASON_MAX 600 /* bytes of a rejection or failure reason */

/* Everything a candidate step needs besides the architecture. */
typedef struct nas_candidate_cfg {
  const nas_target *target;  /* pricing target (NULL: nas_candidate_train trains and scores
                                only, the trained graph is not priced) */
  long long max_sram;        /* peak SRAM budget in bytes (0: none) */
  long long max_flash;       /* flash budget in bytes (0: none) */
  long long max_macs;        /* MACs budget (0: none) */
  double max_latency_ms;     /* predicted latency budget (0: none) */
  const nas_data *data;      /* train/val/test splits */
  const char *dataset;       /* the data's spec, recorded with the weights */
  int train_limit;           /* training samples kept (recorded with the weights) */
  int epochs, batch;         /* training from scratch */
  uint64_t seed;             /* training seed (initialisation, shuffling, dropout) */
  int eval_limit;            /* validation/test samples scored (0: all) */
  int calib_samples;         /* training samples calibrating the int8 ranges (0: 1000) */
  int measure;               /* 1: the int8 graph of a done candidate is measured in the
                                emulator (nas/measure_emu.h: the C export on the target's
                                core, the first test sample) and stored with its metrics
                                (latency_meas_ms, per-operator counts); 0: not measured */
  const char *emu_cache_dir; /* the emulator's kernel cache (NULL: none) */
  const void *warm_blob;     /* a parent's float blob (nas/artifacts.h): the network inherits
                                its weights (train/inherit.h) before training, a morphism
                                fine-tuned for `epochs`; NULL: trained from scratch */
  size_t warm_len;
} nas_candidate_cfg;

/* ---- pricing (pure) ---------------------------------------------------------------------- */

typedef struct nas_candidate_price {
  int valid;                 /* 0: the architecture does not build; reason says why, no costs */
  nas_metrics m;             /* the cost columns (macs, params, flash_bytes, peak_sram_bytes,
                                latency_pred_ms); the others NAN */
  nas_layer_cost *layers;    /* [n_layers] per-layer costs (owned) */
  int n_layers;
  char reason[NAS_REASON_MAX]; /* why it must be rejected ("invalid architecture: ...", "peak
                                  SRAM 70000 B > max 65536 B", ...), "" when it fits */
  struct nas_net *net;       /* the network priced: built at batch 1 with c->seed (owned; NULL
                                when invalid or channel-pruned); nas_candidate_train_net takes it */
} nas_candidate_price;

/* Prices arch on c->target and checks c's hard budgets. Returns out-of-memory only (an
 * architecture that does not build or price is out->valid = 0 with the reason; running out
 * of memory while pricing is an error, not a rejection). */
int nas_candidate_price_arch(const char *arch, const nas_candidate_cfg *c,
                             nas_candidate_price *out, nas_err *e);
void nas_candidate_price_free(nas_candidate_price *p);

/* ---- training, quantisation, evaluation (pure) ------------------------------------------- */

typedef struct nas_candidate_result {
  int failed;                /* 1: training, evaluation or quantisation failed (not for lack of
                                memory, which is an error); reason says why */
  char reason[NAS_REASON_MAX]; /* "diverged: ...", "int8: ...", or "" */
  double acc_float_val, acc_float_test, acc_int8_val, acc_int8_test; /* NAN when not scored */
  /* the costs of the int8 graph that was trained and lowered, when they can differ from the
     price before training (a pruned architecture: its real zeros and compacted widths; any
     candidate on a nas-c target: sparse storage); NAN otherwise (the price stands) */
  double flash_bytes, peak_sram_bytes, latency_pred_ms;
  double train_seconds;      /* training steps only (of the part that ran when failed) */
  uint8_t *float_blob, *int8_blob; /* nas/artifacts.h blobs (owned; NULL when failed) */
  size_t float_len, int8_len;
  /* wall times of the phases (the "timing" event): build + train, float evaluation, int8
     (calibration + lowering + int8 evaluation), of which calibration and lowering, packing,
     and the measurement (0 without one) */
  double build_train_s, eval_float_s, int8_s, calib_s, lower_s, pack_s, measure_s;
  int measured;              /* 1: meas holds the measurement (ok or failed with its reason) */
  nas_emu_measure meas;      /* owned (freed by nas_candidate_result_free) */
} nas_candidate_result;

/* Trains arch from scratch on c->data's training split (c->epochs, c->batch, c->seed),
 * scores float on the first c->eval_limit validation/test samples, calibrates on
 * c->calib_samples training samples, lowers to int8, scores the int8 graph likewise and packs
 * both weight blobs (named "cand<cand_id>"). Returns out-of-memory (naming the candidate) and
 * configuration errors only; a failing candidate is out->failed = 1 with the reason. */
int nas_candidate_train(const char *arch, int64_t cand_id, const nas_candidate_cfg *c,
                        nas_candidate_result *out, nas_err *e);
/* The same, training the network p->net of a pricing of arch with the same c when it has one
 * (taken from p, which keeps its other fields): re-sized for c->batch, not built again. A
 * channel-pruned arch (priced at its expected widths) has none and is built from arch. */
int nas_candidate_train_net(const char *arch, nas_candidate_price *p, int64_t cand_id,
                            const nas_candidate_cfg *c, nas_candidate_result *out, nas_err *e);
void nas_candidate_result_free(nas_candidate_result *r);

/* ---- store writes ------------------------------------------------------------------------ */

/* Stores p's cost metrics and per-layer costs for candidate cand_id (nothing for an invalid
 * architecture); the state is not changed. */
int nas_candidate_store_price(nas_store *st, int64_t cand_id, const nas_candidate_price *p,
                              nas_err *e);
/* Stores r for candidate cand_id (state training) of run run_id: state done with its metrics
 * (m: the cost metrics on entry, every metric on return; latency_meas_ms from a successful
 * measurement), both blobs and the measurement in one transaction, or failed with the
 * reason; then the candidate's "timing" event (with measure_s). */
int nas_candidate_store_result(nas_store *st, int64_t run_id, int64_t cand_id,
                               const nas_candidate_result *r, nas_metrics *m, nas_err *e);

/* ---- the whole step ---------------------------------------------------------------------- */

typedef struct nas_candidate_hooks {
  /* After each stored state change of the candidate ("rejected", "training", "done",
     "failed"): its metrics so far and the reason (NULL unless rejected or failed). May be
     NULL. */
  void (*report)(void *user, const char *state, const char *reason, const nas_metrics *m);
  void *user;
  volatile sig_atomic_t *stop; /* non-zero: a candidate that fits is left "proposed" (priced,
                                  not trained; a resumed run trains it). May be NULL. */
} nas_candidate_hooks;

typedef struct nas_candidate_outcome {
  char state[16];            /* "done", "failed", "rejected", or "proposed" when stopped */
  char reason[NAS_REASON_MAX]; /* why rejected or failed, "" otherwise */
  nas_metrics m;             /* costs (unless invalid) and, once trained, the accuracies */
} nas_candidate_outcome;

/* The step for candidate cand_id of run run_id (state proposed): price and store the costs;
 * over budget or invalid: state rejected; stop requested: left proposed; else state training,
 * train, store the result. Returns store errors and out-of-memory only. */
int nas_candidate_step(nas_store *st, int64_t run_id, int64_t cand_id, const char *arch,
                       const nas_candidate_cfg *c, const nas_candidate_hooks *h,
                       nas_candidate_outcome *out, nas_err *e);

#endif
