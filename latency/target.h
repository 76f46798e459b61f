/* latency/target.h: MCU targets (target JSON, see DESIGN.md "Target") and their latency
 * models. A target names a part (core, clock, SRAM, flash), the kernel library it runs, the
 * runtime's own SRAM/flash overhead and a latency model:
 *   "linear"    cycles = cycles_per_mac * MACs + fixed_cycles      (whole network)
 *   "per-layer" cycles = sum over kernel calls of coef[op] . features (see nas_kop, NAS_LF_*)
 *   "lookup"    like per-layer, but a kernel call that matches a row of the measured lookup
 *               table exactly takes the measured cycles (the lookup table may also be given
 *               with the other two models; a match always wins).
 * Ownership: nas_target owns its lookup rows; free with nas_target_free (NULL-safe). Loaders
 * never print; errors name the file and the field ("stm32f746.json: field 'clock_mhz': ..."). */
#ifndef NAS_LATENCY_TARGET_H
#define NAS_LATENCY_TARGET_H

#include <stddef.h>

#include "core/error.h"

/* Kernel-call kinds the per-layer model distinguishes (an arch layer lowers to one or more). */
enum nas_kop {
  NAS_KOP_CONV = 0, /* conv2d k x k (im2col + int8 GEMM in CMSIS-NN) */
  NAS_KOP_DWCONV,   /* depthwise conv2d */
  NAS_KOP_PWCONV,   /* 1x1 conv2d (pwconv layer, the pointwise halves of dsconv/mbconv) */
  NAS_KOP_FC,       /* fully connected */
  NAS_KOP_POOL,     /* max/avg pooling */
  NAS_KOP_GAP,      /* global average pooling */
  NAS_KOP_ADD,      /* element-wise add (residual) */
  NAS_KOP_RNN,      /* lstm/gru (whole sequence) */
  NAS_KOP_COUNT
};
/* JSON / CSV names of enum nas_kop ("conv", "dwconv", "pwconv", "fc", "pool", "gap", "add",
 * "rnn"); returns -1 for an unknown name. */
int nas_kop_from_name(const char *name);
const char *nas_kop_name(int kop);

/* Features of one kernel call, the per-layer model is linear in them. */
enum {
  NAS_LF_CALL = 0,   /* 1 per call (fixed overhead) */
  NAS_LF_OPS,        /* MACs (conv/fc/rnn), window reads (pool: out elems * kh*kw),
                        elements (gap: in elems, add: out elems) */
  NAS_LF_OPS_UNALIGNED, /* = OPS when the input channels are not a multiple of 4 (CMSIS-NN
                        leaves its SIMD path), else 0 */
  NAS_LF_IN_BYTES,   /* int8 input activation bytes */
  NAS_LF_OUT_BYTES,  /* int8 output activation bytes */
  NAS_LF_OUT_C,      /* output channels (per-channel requantisation set-up) */
  NAS_LF_COUNT
};
extern const char *const nas_lf_names[]; /* JSON keys of the features (NAS_LF_COUNT) */

enum nas_core { NAS_CORE_M0PLUS, NAS_CORE_M4, NAS_CORE_M7, NAS_CORE_M33, NAS_CORE_M55 };
enum nas_latmodel { NAS_LAT_LINEAR, NAS_LAT_PERLAYER, NAS_LAT_LOOKUP };
enum nas_kernlib { NAS_KLIB_CMSIS_NN, NAS_KLIB_TFLM_REF };
/* The runtime a target is priced for (field "runtime"; default: tflm-cmsis-nn when
 * kernel_library is cmsis-nn, tflm-reference when it is tflm-reference):
 *   tflm-cmsis-nn   TFLite Micro with the CMSIS-NN kernels: SRAM = TFLM's tensor arena
 *                   (latency/tflm.h) + runtime_overhead_sram_bytes outside it; latency from
 *                   the cycles model (latency/cycles.h) where the part has one
 *   tflm-reference  TFLite Micro with its reference kernels (no CMSIS-NN, e.g. a bare M0+
 *                   port): the arena without CMSIS-NN scratch; latency from the target's
 *                   coefficient model
 *   nas-c           the engine's own C export (runtime/): its planned arena
 *                   (<NAME>_ARENA_BYTES) + runtime_overhead_sram_bytes; latency from the
 *                   target's coefficient model; it stores conv / pointwise / fc weights
 *                   sparse where that is smaller (deploy/graph8.h, nas_g8_sparse_pick), so
 *                   its flash is priced from the sparse bytes. TFLM has no sparse kernels:
 *                   the two TFLM runtimes price dense weight storage. */
enum nas_runtime { NAS_RT_TFLM_CMSIS_NN, NAS_RT_TFLM_REFERENCE, NAS_RT_NAS_C, NAS_RT_COUNT };
const char *nas_runtime_name(int rt);      /* "tflm-cmsis-nn", ...; "?" out of range */
int nas_runtime_from_name(const char *s);  /* -1 when unknown */
struct nas_target_rt;                      /* the runtime's cost models (latency/cost_runtime.h) */

/* One measured kernel call (a CSV row, see nas_meas_read_csv). */
typedef struct nas_meas {
  char target[32];    /* target id the row was measured on */
  char model[48];     /* model id ("cifar10-cmsis-nn"); rows of one model sum to it */
  char layer[32];     /* layer id within the model ("conv1"), or "" for a whole-model row */
  int kop;            /* enum nas_kop, or -1 for op "model" (a whole-network total) */
  long long macs;     /* MACs (pool: window reads, see NAS_LF_OPS) */
  long long in_bytes, out_bytes; /* int8 activation bytes */
  int kh, kw;         /* kernel */
  int cin, cout;      /* channels */
  double cycles;      /* measured cycles (ms * clock when the CSV gave ms) */
  int line;           /* CSV line (for messages) */
} nas_meas;

typedef struct nas_target {
  char id[32];          /* lowercase part name, the file name without .json */
  char name[96];        /* human name */
  int core;             /* enum nas_core */
  double clock_mhz;     /* core clock */
  long long sram_bytes, flash_bytes; /* on-chip memories of the part */
  char source[512];     /* where the figures come from (datasheet ids) */
  int kernel_library;   /* enum nas_kernlib */
  int runtime;          /* enum nas_runtime: what pricing, budgets and `nas profile` price */
  char cycles_part[32]; /* "cycles_part": the part of latency/calibration/cycles.json whose
                           cycles model prices a tflm-cmsis-nn target ("" = the target's id) */
  struct nas_target_rt *rt; /* the runtime's cost models, loaded with the target (owned) */
  long long rt_sram, rt_flash; /* runtime_overhead_{sram,flash}_bytes: TFLM + kernels */
  int model;            /* enum nas_latmodel */
  double cycles_per_mac, fixed_cycles; /* "linear": always present (also the per-layer
                                          model's stand-in, see missing_linear) */
  double coef[NAS_KOP_COUNT][NAS_LF_COUNT]; /* "per_layer" coefficients (cycles per feature) */
  int has_coef[NAS_KOP_COUNT]; /* 1 when "per_layer" gives this op */
  int missing_linear;   /* "per_layer_missing": 1 = "linear" (ops without coefficients are
                           priced cycles_per_mac * ops), 0 = "error" */
  int calibrated;       /* "calibrated": coefficients fitted on this part's measurements (all
                           of them: the linear model and every op with coefficients) */
  int calibrated_linear;/* "calibrated_ops" lists "linear": cycles_per_mac fitted on this part */
  int calibrated_op[NAS_KOP_COUNT]; /* "calibrated_ops" lists the op: its per-layer
                           coefficients are fitted on this part (absent field: every op with
                           coefficients and the linear model when "calibrated" is true) */
  char calibration[512];/* how the coefficients were obtained */
  char lookup_path[1024]; /* resolved "lookup_table" path, "" when none */
  nas_meas *lookup;     /* [n_lookup] rows of the lookup table (owned) */
  int n_lookup;
} nas_target;

/* Loads and validates a target file. Unknown/missing fields, wrong types and out-of-range
 * values are NAS_EINVAL naming the file and field. "lookup_table" is relative to the file's
 * directory; its rows are loaded. */
int nas_target_load(const char *path, nas_target **out, nas_err *e);
/* Same from text; `source` names it in messages, `dir` resolves lookup_table (may be NULL). */
int nas_target_parse(const char *text, const char *source, const char *dir, nas_target **out,
                     nas_err *e);
void nas_target_free(nas_target *t); /* NULL-safe */
/* Prices t for another runtime (--runtime): sets t->runtime and loads that runtime's cost
 * models (latency/cost_runtime.c). */
int nas_target_set_runtime(nas_target *t, int runtime, nas_err *e);

/* Writes the directory of the built-in targets into buf: $NAS_TARGET_DIR if set and non-empty,
 * else <data directory>/latency/targets (core/datadir.h: $NAS_DATA_DIR, the install, the
 * source tree). */
int nas_targets_dir(char *buf, size_t cap, nas_err *e);
/* Sorted ids of the *.json files in dir (NULL = nas_targets_dir()); caller frees with
 * nas_target_ids_free. */
int nas_target_list(const char *dir, char ***ids, int *n, nas_err *e);
void nas_target_ids_free(char **ids, int n);
/* Loads a target by id from dir (NULL = built-in dir); an unknown id is an error listing the
 * known ids. With `file` non-NULL (--target-file) the file is loaded instead and id ignored. */
int nas_target_open(const char *id, const char *file, nas_target **out, nas_err *e);

/* Serialises a target back to JSON text (caller frees); nas_target_parse reads it back. */
char *nas_target_to_json(const nas_target *t);

/* Reads a measurements CSV (header line required, columns by name, any order):
 *   target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms
 * op is a nas_kop name or "model" (a whole-network total: only macs and cycles/ms needed);
 * k is "K" or "KHxKW"; cycles or ms is non-empty per row (cycles is used when both are; ms
 * alone is converted with clock_mhz, which must then be > 0); lines starting with '#' and blank lines are skipped.
 * With only_target non-NULL, rows of other targets are dropped. Caller frees *rows. */
int nas_meas_read_csv(const char *path, const char *only_target, double clock_mhz,
                      nas_meas **rows, int *n, nas_err *e);

const char *nas_core_name(int core);
const char *nas_latmodel_name(int m);

#endif
