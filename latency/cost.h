/* latency/cost.h: pricing an architecture on a target (MACs, params, int8 flash, peak SRAM,
 * latency), per kernel call, per arch layer and in total; the latency models; least-squares
 * fitting from measurements; differentiable per-choice costs for DNAS.
 *
 * Counting (int8 deployment, TFLite scheme, DESIGN.md "Quantisation"):
 *   weights int8; bias int32 per output channel where the layer has a bias or a BN (BN is
 *   folded into the conv: a conv followed by BN gets a bias); per output channel of every
 *   weight tensor a float32 scale + int32 zero point (8 bytes); per activation tensor (the
 *   input and every kernel call's output) a scale + zero point (8 bytes); plus the target's
 *   runtime_overhead_flash_bytes. MACs and params are train/net.h's (README "Counting").
 *   A target whose runtime is nas-c (target.h) stores a conv / pwconv / fc filter in the
 *   runtime's sparse form where that is smaller (deploy/graph8.h nas_g8_sparse_pick): a graph
 *   is priced with the bytes of that form (bitmask + non-zero values, exactly the exported
 *   arrays), an architecture with the form its pruned layers will have at their target
 *   sparsity (train/prune.h; an estimate for scope global), and the call's cycles scaled by
 *   the sparse kernel's emulated cost (nas_kcall_sparse). TFLM targets price dense storage.
 * Peak SRAM (latency/cost_graph.c): the network is lowered to deploy/'s int8 graph by the
 *   real lowering (deploy/lower_shape.h: nas_lower with a synthetic calibration, no training)
 *   and deploy/'s memory planner places every activation tensor (graph input and output
 *   included; lifetimes in execution order). arena_bytes is the planner's peak: byte for
 *   byte the tensor arena the C export allocates (<NAME>_ARENA_BYTES; its portable kernels
 *   use no scratch buffers). peak_sram_bytes = arena_bytes + the target's
 *   runtime_overhead_sram_bytes (interpreter state), the figure budgets are checked against.
 *   A layer's sram_bytes is the arena in use (highest offset + size of a live tensor) while
 *   its operators run; the largest equals arena_bytes.
 *   Fallback, nets that do not lower to int8 (lstm/gru, or a lowering error, whose message
 *   goes to sram_note): sram_method "estimate", arena_bytes = the maximum over kernel
 *   calls of int8 input + output + CMSIS-NN scratch + tensors kept alive for a later
 *   residual add (lstm/gru gate and state buffers are not counted: an underestimate).
 * The runtime (target.h enum nas_runtime, latency/cost_runtime.h) decides the arena and,
 *   for tflm-cmsis-nn, the latency model: TFLM's arena (head + persistent tail) instead of
 *   the planner's peak, and the cycles model of latency/cycles.h instead of the coefficient
 *   model (nas-c keeps exactly the rules above).
 * A .tflite (nas_price_tflite) is priced from its int8 graph: one layer per operator, flash
 *   from the real constant buffers (+ 8 bytes per quantisation entry of a weight tensor and
 *   per activation tensor), peak SRAM from the same planner.
 * Ownership: nas_price owns its calls/layers arrays; free with nas_price_free (NULL-safe). */
#ifndef NAS_LATENCY_COST_H
#define NAS_LATENCY_COST_H

#include "core/error.h"
#include "latency/target.h"
#include "train/net.h"

/* One kernel call (an arch layer lowers to 0..4 of them: dsconv = dwconv + pwconv). */
typedef struct nas_kcall {
  int layer;                 /* arch layer index */
  int kop;                   /* enum nas_kop */
  int in_h, in_w, in_c;      /* input shape */
  int out_h, out_w, out_c;   /* output shape */
  int kh, kw;                /* kernel (1x1 for fc/add/gap) */
  long long macs;            /* MACs (0 for pool/gap/add) */
  long long ops;             /* NAS_LF_OPS feature */
  long long weights, biases; /* int8 weight and int32 bias counts */
  long long qch;             /* per-channel quantisation entries (scale + zp) */
  long long in_bytes, out_bytes, scratch_bytes, live_extra; /* SRAM terms (int8) */
  long long flash_bytes;     /* weights + 4*biases + 8*qch + 8 (output qparams) */
  double cycles;             /* predicted */
  int lat_src;               /* 0 per-layer, 1 linear, 2 lookup */
} nas_kcall;

typedef struct nas_price_layer {
  char op[16];               /* arch op, or the int8 operator ("conv2d", "dwconv2d", ...) */
  int out_h, out_w, out_c;   /* output shape */
  long long macs, params, flash_bytes, sram_bytes; /* sram: this layer's live bytes */
  double latency_ms;
  const char *lat_src;       /* "per-layer", "linear", "lookup", "mixed" or "none" */
} nas_price_layer;

typedef struct nas_price {
  int n_calls;
  nas_kcall *calls;          /* [n_calls] owned */
  int n_layers;
  nas_price_layer *layers;    /* [n_layers] owned */
  long long macs, params;
  long long flash_bytes;     /* model bytes + target runtime overhead */
  long long model_flash_bytes; /* without the runtime overhead */
  long long arena_bytes;     /* tensor arena (planner peak; see the header comment) */
  long long peak_sram_bytes; /* arena_bytes + the target's runtime SRAM overhead */
  const char *sram_method;   /* "planner" or "estimate" (the net does not lower to int8) */
  char sram_note[200];       /* why it is an estimate ("layer 0 (lstm) does not lower to
                                int8"), "" for "planner" */
  int peak_call;             /* kernel call where the estimate peaks ("estimate" only) */
  int peak_layer;            /* layer whose operators reach the peak */
  int n_ops;                 /* int8 operators planned (0 for "estimate") */
  double latency_ms, cycles;
  const char *runtime;       /* the runtime priced (target.h: tflm-cmsis-nn, tflm-reference,
                                nas-c) */
  const char *latency_model; /* what priced the latency: "tflm-cycles" (latency/cycles.h) or
                                the target's coefficient model ("linear", "per-layer",
                                "lookup") */
  int calibrated;            /* that model's coefficients are fitted on this part's published
                                measurements (else transferred) */
  char latency_note[300];    /* why a tflm-cmsis-nn price uses the coefficient model, or "" */
  char arena_note[300];      /* why a tflm runtime's arena is the planner's (an operator TFLM's
                                arena model does not know, e.g. a recurrent one), or "" */
} nas_price;

/* Prices a built network (its canonical arch JSON gives kernels and strides); the int8 graph
 * is lowered with the default nas_lower_cfg (int8 logits, as `nas export` without --softmax
 * and the search loop). */
int nas_price_net(const nas_net *net, const nas_target *t, nas_price **out, nas_err *e);
/* Same with lowering options (lcfg may be NULL: defaults), e.g. softmax = 1 to match
 * `nas export --softmax`. */
struct nas_lower_cfg;
int nas_price_net_cfg(const nas_net *net, const nas_target *t, const struct nas_lower_cfg *lcfg,
                      nas_price **out, nas_err *e);
/* Loads a checkpoint (train/checkpoint.h), builds its network, applies the weights and
 * prices it (the weights do not change the price; a bad file is an error naming it). */
int nas_price_checkpoint(const char *path, const nas_target *t, nas_price **out, nas_err *e);
/* Prices an int8 graph (one layer per operator; see the header comment). */
struct nas_g8_graph;
int nas_price_graph(const struct nas_g8_graph *g, const nas_target *t, nas_price **out,
                    nas_err *e);
/* Reads a .tflite (deploy/tflite_read.c) and prices its int8 graph. */
int nas_price_tflite(const char *path, const nas_target *t, nas_price **out, nas_err *e);
/* Parses + validates arch JSON (through nas_net_build, batch 1) and prices it. */
int nas_price_arch(const char *arch_json, const char *source, const nas_target *t,
                   nas_price **out, nas_err *e);
void nas_price_free(nas_price *p);

/* Predicted cycles of one kernel call on t (lookup > per-layer > linear as the target says);
 * *src gets 0 per-layer, 1 linear, 2 lookup. Error when per-layer lacks the op and
 * per_layer_missing is "error". */
int nas_kcall_cycles(const nas_target *t, const nas_kcall *c, double *cycles, int *src,
                     nas_err *e);
/* Features of a kernel call (enum NAS_LF_*). */
void nas_kcall_features(const nas_kcall *c, double f[NAS_LF_COUNT]);
/* A conv / pwconv / fc kernel call whose filter of `weights` entries the nas-c runtime stores
 * sparse with nnz non-zero ones (runtime/nasrt.h SPARSE): its latency features become those
 * of the sparse kernel (see cost.c for the measured rule). Flash is the caller's. */
void nas_kcall_sparse(nas_kcall *c, const nas_target *t, long long nnz, long long weights);
/* The same rule as a factor: emulated cycles of the SPARSE kernel over those of the dense
 * kernel for a kop call of macs MACs over a filter of `weights` entries (out_c x kh x kw x ci)
 * with nnz non-zero ones; 1 when the shapes say nothing. */
double nas_sparse_cycle_ratio(const nas_target *t, int kop, long long macs, long long weights,
                              long long nnz, int out_c, int kh, int kw);

/* Text and JSON reports for `nas profile` (caller frees). JSON: {"arch","target","macs",
 * "params","flash_bytes","peak_sram_bytes","latency_ms","binding",..., "layers":[...]} */
char *nas_price_json(const nas_price *p, const nas_target *t, const char *arch_name);
char *nas_price_table(const nas_price *p, const nas_target *t, const char *arch_name);
/* `nas targets` listing: one line per built-in target (caller frees). */
char *nas_targets_table(const char *dir, nas_err *e);

/* ---- fitting (latency/model.c) --------------------------------------------------------- */

/* Solves min ||A x - b||^2 (A row-major [m,n]) through the normal equations with column
 * scaling and a Cholesky factorisation (n is small). NAS_EINVAL when m < n or A'A is not
 * positive definite (collinear or all-zero features). */
int nas_lstsq(const double *A, const double *b, int m, int n, double *x, nas_err *e);

/* Which features the fit uses per op (others stay 0): a bit mask over NAS_LF_*. */
typedef struct nas_fit_opts {
  unsigned feat_mask[NAS_KOP_COUNT]; /* 0 = default mask for that op */
  int fit_fixed;             /* linear model: fit fixed_cycles (needs >= 2 models), else 0 */
} nas_fit_opts;

/* What the fit did with one op's per-layer coefficients. */
enum nas_fit_status {
  NAS_FIT_NO_ROWS = 0, /* no rows: the op keeps its previous coefficients (or none) */
  NAS_FIT_TOO_FEW,     /* fewer rows than features: kept as before, not fitted */
  NAS_FIT_OK,          /* fitted on more rows than features */
  NAS_FIT_EXACT        /* fitted on exactly as many rows as features: exact by construction,
                          so its in-sample error says nothing */
};
const char *nas_fit_status_name(int s); /* "no rows", "too few rows", "fitted", "exact" */

typedef struct nas_fit_report {
  int n_rows;                /* layer rows read (all ops) */
  int n_models;              /* whole-model totals used for the linear fit */
  int fitted[NAS_KOP_COUNT]; /* rows per op fitted (0 = not fitted) */
  int rows[NAS_KOP_COUNT];   /* rows per op read */
  int nfeat[NAS_KOP_COUNT];  /* features of the op's fit (non-zero columns) */
  int status[NAS_KOP_COUNT]; /* enum nas_fit_status */
  int linear_exact;          /* the linear model was fitted on one model: exact by construction */
  /* In-sample errors with the fitted target, over EVERY layer row (ops that were not fitted
     are priced as the target prices them: their previous coefficients, or the linear
     stand-in) and every whole model (the sum of its predicted layer rows against its
     measured total, which includes operators without rows: reshapes, softmax, the runtime) */
  double layer_mape;         /* mean |pred - meas| / meas over layer rows */
  double layer_max_ape;
  int n_layer_unpriced;      /* layer rows the fitted target cannot price (per_layer_missing
                                "error" and no coefficients): not in the mean */
  double whole_mape;         /* over models with layer rows */
  double whole_max_ape;
  int n_whole;
  double model_mape;         /* linear model over model totals */
  double model_max_ape;
} nas_fit_report;

/* Fits t's linear model (from whole-model totals: op "model" rows, else sums of a model's
 * layer rows) and per-layer coefficients (for each op with at least as many rows as
 * features in its mask) from rows. An op that is not fitted keeps its previous
 * coefficients (or none) and its previous calibration mark; a fitted op is marked
 * calibrated (t->calibrated_op); the linear model likewise (t->calibrated_linear). A linear
 * target that gains per-layer coefficients becomes per-layer (per_layer_missing "linear").
 * t->calibrated is set only when the linear model and every op with coefficients are
 * calibrated and every op with rows was fitted. */
int nas_fit_target(nas_target *t, const nas_meas *rows, int n, const nas_fit_opts *o,
                   nas_fit_report *rep, nas_err *e);
/* The report as text for `nas latency fit` (caller frees; NULL when out of memory): the linear
 * model, each op with rows (fitted, exact by construction, or not fitted), the in-sample error
 * over all layer rows and over whole models. */
char *nas_fit_report_text(const nas_fit_report *r);
/* Reads the CSV (rows of t's id), fits, and writes the updated target JSON to out_path
 * (the `nas latency fit --measurements FILE --target T` back end). */
int nas_fit_target_file(const char *target_path, const char *csv_path, const char *out_path,
                        const nas_fit_opts *o, nas_fit_report *rep, nas_err *e);

/* ---- differentiable costs for DNAS ----------------------------------------------------- */

/* One candidate choice of a layer: a plain function of these parameters. */
typedef struct nas_choice {
  const char *op;            /* "conv", "dwconv", "pwconv", "dsconv", "mbconv", "maxpool",
                                "avgpool", "gap", "fc", "skip" (identity, cost 0) */
  int in_h, in_w, in_c;      /* input shape */
  int out_c;                 /* output channels (ignored by dwconv/pools/gap) */
  int kh, kw;                /* kernel (0 = op default) */
  int stride;                /* 1.. (same padding) */
  int expand;                /* mbconv expansion (0 = 6) */
} nas_choice;

enum { NAS_COST_MACS, NAS_COST_FLASH, NAS_COST_SRAM, NAS_COST_LATENCY, NAS_COST_COUNT };
typedef struct nas_cost {
  double v[NAS_COST_COUNT];  /* MACs, flash bytes (weights, biases, qparams; no runtime),
                                SRAM bytes (max over its calls of in+out+scratch), latency ms */
} nas_cost;

int nas_choice_cost(const nas_target *t, const nas_choice *c, nas_cost *out, nas_err *e);
/* E = sum_i w_i cost_i (w: any weights, usually softmax probabilities); dE/dw_i = cost_i. */
void nas_expected_cost(const nas_cost *costs, int n, const double *w, nas_cost *E);
/* Expected cost under p = softmax(logits / temperature) and, for each metric m, its gradient
 * with respect to the logits: grad[i*NAS_COST_COUNT+m] = p_i (cost_i[m] - E[m]) / T. */
void nas_expected_cost_softmax(const nas_cost *costs, int n, const double *logits,
                               double temperature, nas_cost *E, double *grad);

#endif
