/* latency/tflm_fit.h: the shared TFLM + CMSIS-NN corpus (/work/shared/data/tflm-cmsisnn:
 * models.csv, ops.csv, models/<id>.tflite.gz), the fit of the instruction model of
 * latency/tflm.h on it and its held-out evaluation (docs/tflm.md).
 *
 * Split: deterministic and by model. A model is held out when the FNV-1a 32-bit hash of its
 * id is 0 mod 5 (about 20%); MLPerf Tiny models (family "mlperf-tiny") are never fitted on
 * and are reported separately. Fit: per core and group, least squares on relative error
 * (each row weighted by 1 / measured instructions), solved by Householder QR; a feature whose
 * column is zero or linearly dependent on the others in the training rows gets coefficient 0.
 * Ownership: a nas_tflm_corpus owns its arrays and graphs; free with nas_tflm_corpus_free
 * (NULL-safe). Never prints. */
#ifndef NAS_LATENCY_TFLM_FIT_H
#define NAS_LATENCY_TFLM_FIT_H

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/tflm.h"

typedef struct nas_tflm_corpus_model {
  char id[64];
  char family[32];
  int nops;
  int heldout;                            /* in the 20% evaluation split */
  int mlperf;                             /* family mlperf-tiny: never fitted on */
  long arena_used, head, tail;            /* *_m32 */
  long head_host64;                       /* TFLM's activation plan (reference kernels) */
  /* the RecordingMicroInterpreter's tail and its recorded allocations ("used" bytes) */
  long rec_tail, rec_eval_tensors, rec_tensor_structs, rec_tensor_quant, rec_persistent_buffers,
       rec_node_registration, rec_persistent_count, rec_persistent_requested;
  double invoke[NAS_TFLM_NCORE];          /* insn_invoke_no_profiler, per core */
  int first_op[NAS_TFLM_NCORE];           /* first row of this model in ops (per core) */
  nas_g8_graph graph;                     /* the imported .tflite */
} nas_tflm_corpus_model;

/* Instruction-class columns of ops.csv (README of the corpus), in this order. They include
 * the 16 instructions of the profiler hook (its class split is not recorded). */
enum {
  NAS_TFLM_CLS_LOAD = 0, NAS_TFLM_CLS_STORE, NAS_TFLM_CLS_MUL, NAS_TFLM_CLS_DIV,
  NAS_TFLM_CLS_BRANCH, NAS_TFLM_CLS_SIMD, NAS_TFLM_CLS_IT, NAS_TFLM_CLS_VFP, NAS_TFLM_CLS_OTHER,
  NAS_TFLM_CLS_LOAD_REGS, NAS_TFLM_CLS_STORE_REGS, NAS_TFLM_CLS_BRANCH_TAKEN, NAS_TFLM_NCLS
};
const char *nas_tflm_cls_name(int k); /* the ops.csv column ("load", ...); NULL out of range */

typedef struct nas_tflm_corpus_op {
  int model, core, op_index;
  char entry[40];                         /* cmsis_entry */
  double insn;                            /* measured, profiler hook (16) excluded */
  double cls[NAS_TFLM_NCLS];              /* the class columns, hook included */
} nas_tflm_corpus_op;

typedef struct nas_tflm_corpus {
  int nmodels;
  nas_tflm_corpus_model *model;           /* [nmodels], owned */
  int nops;
  nas_tflm_corpus_op *op;                 /* [nops], owned, grouped by model and core */
} nas_tflm_corpus;

/* Least squares min |A x - b| for A [m x p] row-major (overwritten), b [m] (overwritten),
 * p <= NAS_TFLM_MAXF, by Householder QR with columns scaled to unit norm; a column that is zero
 * or (numerically) dependent on the ones before it gets x = 0 and the rest is refitted. */
int nas_tflm_lstsq(double *a, double *b, int m, int p, double *x, nas_err *e);

/* 1 when model id falls in the held-out 20%. */
int nas_tflm_heldout(const char *model_id);

/* Reads dir/models.csv, dir/ops.csv and every dir/models/<id>.tflite.gz (gunzipped in memory
 * with zlib and imported with nas_tflite_parse). Errors name the file, line and column. */
int nas_tflm_corpus_read(const char *dir, nas_tflm_corpus *c, nas_err *e);
void nas_tflm_corpus_free(nas_tflm_corpus *c); /* NULL-safe */

/* Fits m on the corpus' training models (not held out, not MLPerf Tiny): every group on every
 * core, and the interpreter overhead per core (production Invoke minus the operators, as a
 * line in nops). */
int nas_tflm_fit(const nas_tflm_corpus *c, nas_tflm_insn_model *m, nas_err *e);

/* Relative errors |pred - meas| / meas summarised. */
typedef struct nas_tflm_err_stats {
  int n;
  double median, p95, max;
} nas_tflm_err_stats;

/* Which models an evaluation covers. */
enum { NAS_TFLM_EVAL_HELDOUT = 0, NAS_TFLM_EVAL_TRAIN, NAS_TFLM_EVAL_MLPERF };

/* TFLite operator types of the paths: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
 * AVERAGE_POOL_2D, MAX_POOL_2D, ADD, SOFTMAX, RESHAPE, QUANTIZE (index 0..8). */
#define NAS_TFLM_NOPTYPE 9
int nas_tflm_path_optype(int path); /* index of the path's operator type, -1 out of range */
const char *nas_tflm_optype_name(int optype);

/* Errors of m on a split: per operator by path and core (all paths: index NAS_TFLM_NPATH),
 * by operator type and core (all types: NAS_TFLM_NOPTYPE), per model (production Invoke) by
 * core (all cores: index NAS_TFLM_NCORE). */
typedef struct nas_tflm_eval {
  nas_tflm_err_stats op[NAS_TFLM_NPATH + 1][NAS_TFLM_NCORE + 1];
  nas_tflm_err_stats optype[NAS_TFLM_NOPTYPE + 1][NAS_TFLM_NCORE + 1];
  nas_tflm_err_stats model[NAS_TFLM_NCORE + 1];
} nas_tflm_eval;
int nas_tflm_evaluate(const nas_tflm_corpus *c, const nas_tflm_insn_model *m, int split,
                      nas_tflm_eval *ev, nas_err *e);

#endif
