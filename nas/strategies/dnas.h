/* nas/strategies/dnas.h: differentiable architecture search (MicroNets-style DNAS; README "DNAS").
 *
 * A supernet (search_spaces/supernet.h) holds every slot of the space at its largest size.
 * Each decision i has logits alpha_i (one per value); the relaxed choice y_i is
 * softmax(alpha_i / T) or, with Gumbel sampling, softmax((alpha_i + g) / T), g ~ Gumbel(0,1)
 * drawn per step; T is annealed geometrically from t0 to t1 over the supernet epochs.
 *
 * Relaxation: the decisions a slot depends on (its own fields and presence, and the
 * earlier decisions that set its input shape) are enumerated once per slot (a *table* of
 * combinations, each resolved with nas_sn_resolve and priced with nas_choice_cost). Under
 * independent per-decision distributions y, a combination has weight prod_i y_i[v_i], so
 *   - width choices are channel masks m[c] = sum_combo w [c < out(combo)] over the widest
 *     layer (mbconv hidden widths: [c < in_c * expand]; depthwise outputs: [c < in_c]);
 *   - kernel choices are masks over the largest kernel (centred windows);
 *   - depth choices (repeat, optional) mix the slot with an identity path:
 *     y = P(present) f(x) + P(absent) skip(x) (skip pads channels with zeros and, for a
 *     strided slot, average-pools: exact only when the slot keeps the shape);
 *   - op choices are weighted mixtures of one branch per op;
 *   - costs are expectations: E[MACs], E[flash] and E[latency] are exact expectations of the
 *     extracted net's totals (sums over slots; the constant part, e.g. the runtime, is the
 *     exact model's figure minus the slot sum for the first architecture); SRAM is relaxed as
 *     max over slots of the expected slot SRAM (input + output + scratch bytes of its kernel
 *     calls) plus the same constant: equal to the exact figure at a one-hot y, and by Jensen
 *     a lower bound of the expected peak otherwise.
 * With a one-hot y every mask and gate is 0/1, and the supernet computes exactly the
 * extracted architecture (with the corresponding slices of the supernet weights).
 *
 * Ownership: every object has a build/free pair; borrowed pointers are stated per field. */
#ifndef NAS_NAS_STRATEGIES_DNAS_H
#define NAS_NAS_STRATEGIES_DNAS_H

#include <stdint.h>

#include "core/error.h"
#include "latency/cost.h"
#include "latency/target.h"
#include "nas/run.h"
#include "search_spaces/supernet.h"
#include "train/net.h"

#define NAS_DNAS_MAX_REL 24     /* decisions one slot may depend on */
#define NAS_DNAS_MAX_COMBOS 200000 /* combinations one slot may enumerate */
#define NAS_DNAS_MAX_SWEEP 16

/* ---- relaxation (dnas_relax.c) ------------------------------------------------------- */

typedef struct nas_dnas_table {
  int n_rel;                 /* decisions this slot depends on */
  int rel[NAS_DNAS_MAX_REL]; /* their indices */
  int n;                     /* combinations (product of their cardinalities) */
  int *vals;                 /* [n * n_rel] value of each rel decision */
  nas_sn_layer *L;           /* [n] the slot resolved for that combination */
  double *cost;              /* [n * NAS_COST_COUNT]; 0 when the slot is absent */
} nas_dnas_table;

typedef struct nas_dnas_relax {
  const nas_supernet *sn;    /* borrowed */
  const nas_target *t;       /* borrowed */
  int n_p;                   /* length of a probability vector (sum of cardinalities) */
  int *off;                  /* [n_dec] offset of decision i's values */
  nas_dnas_table *tab;       /* [n_slots] */
  double offset[NAS_COST_COUNT]; /* constant part of each cost */
} nas_dnas_relax;

int nas_dnas_relax_build(const nas_supernet *sn, const nas_target *t, nas_dnas_relax **out,
                         nas_err *e);
void nas_dnas_relax_free(nas_dnas_relax *rx); /* NULL-safe */

/* y from logits alpha (both [n_p]) at temperature T; gumbel ([n_p] noise) may be NULL. */
void nas_dnas_probs(const nas_dnas_relax *rx, const double *alpha, double T, const double *gumbel,
                    double *y);
/* dalpha[n_p] = d/dalpha of a function whose gradient w.r.t. y is dy (softmax Jacobian). */
void nas_dnas_chain(const nas_dnas_relax *rx, const double *y, const double *dy, double T,
                    double *dalpha);
/* Expected costs E under y and, when grad is not NULL, dE[m]/dy in grad[m * n_p + j]. */
void nas_dnas_expected(const nas_dnas_relax *rx, const double *y, nas_cost *E, double *grad);
/* The one-hot y of decision vector d. */
void nas_dnas_onehot(const nas_dnas_relax *rx, const int *d, double *y);
/* Argmax decision vector of alpha (first maximum). */
void nas_dnas_argmax(const nas_dnas_relax *rx, const double *alpha, int *d);

/* Cost part of the architecture loss: sum_m w[m] E[m] / ref[m] + hinge * sum over budgeted m
 * of max(0, E[m] / budget[m] - 1); budget[m] <= 0 means none. Returns it and adds its
 * gradient w.r.t. y into dy (may be NULL); NAN, with dy unchanged, when out of memory. */
double nas_dnas_cost_loss(const nas_dnas_relax *rx, const double *y, const double w[NAS_COST_COUNT],
                          const double ref[NAS_COST_COUNT], const double budget[NAS_COST_COUNT],
                          double hinge, nas_cost *E, double *dy);

/* ---- the supernet graph (dnas_net.c) ------------------------------------------------- */

enum { NAS_GATE_OUT, NAS_GATE_HID, NAS_GATE_IN, NAS_GATE_KER, NAS_GATE_PRES, NAS_GATE_RES,
       NAS_GATE_OP };

typedef struct nas_dnas_gate {
  int node;                  /* STATE node holding the gate (needs_grad set) */
  int slot;                  /* slot */
  int type;                  /* NAS_GATE_* */
  int size;                  /* elements */
  int op;                    /* branch op the gate belongs to (-1: every combination) */
  int kh, kw;                /* kernel gates: the largest kernel */
} nas_dnas_gate;

typedef struct nas_dnas_net {
  nas_net *net;              /* graph + input/labels/logits/loss ids (owned; layers NULL) */
  const nas_dnas_relax *rx;  /* borrowed */
  int n_gates;
  nas_dnas_gate *gates;      /* [n_gates] owned */
  int *slot_out;             /* [n_slots] node id of each slot's output (owned) */
} nas_dnas_net;

int nas_dnas_net_build(const nas_dnas_relax *rx, int max_batch, uint64_t seed,
                       nas_dnas_net **out, nas_err *e);
void nas_dnas_net_free(nas_dnas_net *dn); /* NULL-safe */
/* Writes every gate from y. */
void nas_dnas_net_set_gates(nas_dnas_net *dn, const double *y);
/* After a backward sweep: adds d(loss)/dy (through every gate) into dy[n_p]. */
void nas_dnas_net_gate_grad(const nas_dnas_net *dn, const double *y, double *dy);

/* ---- the search (dnas.c, dnas_train.c; the strategy table entry "dnas") ------------------ */

enum { NAS_DNAS_GUMBEL = 0, NAS_DNAS_SOFTMAX = 1 };

typedef struct nas_dnas_cfg {
  nas_search_cfg base;       /* space, dataset, target, budgets, epochs and batch of the
                                retraining, train_limit, seed, objectives (the budget is the
                                number of sweep points) */
  int sn_epochs;             /* supernet epochs per sweep point (8) */
  int warmup;                /* of those, warm-up epochs with the architecture fixed (2) */
  int sn_limit;              /* supernet trains on the first sn_limit training samples (0: all
                                of the train split; the retraining always uses all) */
  int arch_every;            /* an architecture step after every arch_every-th weight step (1) */
  double arch_lr;            /* Adam learning rate of the logits (0.05) */
  double lr;                 /* SGD learning rate of the supernet weights (0.05) */
  double t0, t1;             /* temperature annealed from t0 to t1 (5 -> 0.5) */
  int sampling;              /* NAS_DNAS_GUMBEL or NAS_DNAS_SOFTMAX */
  double w[NAS_COST_COUNT];  /* cost weights (macs, flash, sram, latency) */
  double hinge;              /* weight of the budget penalty (5) */
  int n_sweep;               /* sweep points: 0 = one point with w */
  double sweep[NAS_DNAS_MAX_SWEEP]; /* multipliers of w, one candidate each */
} nas_dnas_cfg;

void nas_dnas_cfg_default(nas_dnas_cfg *c);
/* "macs=1,sram=0.5,flash=0,latency=2" into w (missing names stay 0). */
int nas_dnas_parse_weights(const char *spec, double w[NAS_COST_COUNT], nas_err *e);
/* "T0" or "T0:T1". */
int nas_dnas_parse_temperature(const char *spec, double *t0, double *t1, nas_err *e);
/* "0,0.5,1,2" */
int nas_dnas_parse_sweep(const char *spec, double *v, int *n, nas_err *e);

/* The options with their own syntax, as nas_opt apply functions (nas/option.h): each checks
 * text with the parser above and writes the configuration keys ("t0" and "t1",
 * "cost_weights", "sweep"). */
struct cJSON;
int nas_dnas_opt_temperature(const char *text, struct cJSON *config, nas_err *e);
int nas_dnas_opt_cost_weights(const char *text, struct cJSON *config, nas_err *e);
int nas_dnas_opt_sweep(const char *text, struct cJSON *config, nas_err *e);

/* Runs a DNAS search into the store at db_path under the run driver (nas/run.h): per sweep
 * point, trains the supernet (checkpointed per epoch next to the store), extracts the argmax
 * architecture, checks it with the exact cost model (repairing it greedily when over budget)
 * and sends it through the candidate step (retrained from scratch, quantised, evaluated as
 * int8, stored). Progress goes through the hooks (state "supernet" per epoch, then candidate
 * states). The same as `nas search --strategy dnas` with cfg's options. */
int nas_dnas_run(const char *db_path, const nas_dnas_cfg *cfg, const nas_search_hooks *h,
                 nas_search_summary *s, nas_err *e);
/* Continues an interrupted DNAS run from its stored configuration and checkpoints. */
int nas_dnas_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                    nas_search_summary *s, nas_err *e);

#endif
