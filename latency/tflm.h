/* latency/tflm.h: costs of a real TensorFlow Lite Micro + CMSIS-NN deployment of an int8 graph
 * (deploy/graph8.h): which CMSIS-NN function each operator reaches, TFLM's tensor arena on a
 * 32-bit Cortex-M byte for byte, and a per-operator instruction model fitted on the emulated
 * corpus of /work/shared/data/tflm-cmsisnn (method, sources and errors: docs/tflm.md).
 *
 * Pinned sources the rules were learned from: tensorflow/tflite-micro 90b983c2 (kernels/cmsis_nn,
 * micro_allocator.cc, micro_interpreter.cc, memory_planner/) and ARM-software/CMSIS-NN 4ab83cc3
 * (the *_wrapper_s8 dispatch and *_get_buffer_size functions), built with arm-none-eabi-gcc for
 * a core with the DSP extension (Cortex-M4/M7/M33) or without it (M0/M3), not for MVE (M55).
 *
 * Shapes: activations NHWC, batch 1. Ownership: nas_tflm_insn_model owns nothing; a
 * nas_tflm_insn_report owns its per-operator array (free with nas_tflm_insn_report_free,
 * NULL-safe). Library code: never prints; errors name the operator or file. */
#ifndef NAS_LATENCY_TFLM_H
#define NAS_LATENCY_TFLM_H

#include "core/error.h"
#include "deploy/graph8.h"

/* Build variants (flags of the functions below). */
#define NAS_TFLM_DSP 1u       /* the core has the DSP extension (__ARM_FEATURE_DSP): M4/M7/M33 */
#define NAS_TFLM_RECORDING 2u /* arena of a RecordingMicroInterpreter (104 B more allocator) */
#define NAS_TFLM_REFERENCE 4u /* TFLM's reference kernels instead of cmsis_nn: no scratch
                                 requests, so the head is the activation plan; the tail keeps
                                 the cmsis_nn kernels' op-data sizes (ASSUMED: the reference
                                 structs lack at most the 4-byte buffer index, which the
                                 16-byte alignment of persistent buffers absorbs) */

/* ---- the CMSIS-NN path TFLM's cmsis_nn kernels take ----------------------------------- */
enum nas_tflm_path {
  NAS_TFLM_CONV_1X1_FAST = 0, /* arm_convolve_1x1_s8_fast: 1x1, stride 1, no padding */
  NAS_TFLM_CONV_1X1,          /* arm_convolve_1x1_s8: 1x1 strided */
  NAS_TFLM_CONV_1XN,          /* arm_convolve_1_x_n_s8: input height 1, kernel height 1,
                                 stride_w * in_c % 4 == 0 (on DSP cores it runs convolve_s8) */
  NAS_TFLM_CONV_S8,           /* arm_convolve_s8: im2col + GEMM, every other conv */
  NAS_TFLM_DW_3X3,            /* arm_depthwise_conv_3x3_s8: 3x3, padding <= 1, multiplier 1 */
  NAS_TFLM_DW_OPT,            /* arm_depthwise_conv_s8_opt: other kernels, multiplier 1 */
  NAS_TFLM_DW_S8,             /* arm_depthwise_conv_s8: multiplier != 1 or dilation */
  NAS_TFLM_FC,                /* arm_fully_connected_s8 (per-tensor weights) */
  NAS_TFLM_FC_PER_CHANNEL,    /* arm_fully_connected_per_channel_s8 */
  NAS_TFLM_FC_1X1,            /* arm_convolve_1x1_s8_fast: output rank > 2, depth % 4 == 0 */
  NAS_TFLM_AVGPOOL,           /* arm_avgpool_s8 */
  NAS_TFLM_MAXPOOL,           /* arm_max_pool_s8 */
  NAS_TFLM_ADD,               /* arm_elementwise_add_s8 (equal shapes) */
  NAS_TFLM_SOFTMAX,           /* arm_softmax_s8 */
  NAS_TFLM_RESHAPE,           /* TFLM reference kernel (a memcpy) */
  NAS_TFLM_QUANTIZE,          /* TFLM reference kernel (int8 requantisation) */
  NAS_TFLM_NPATH
};
/* The CMSIS-NN function of a path as it appears in the corpus' cmsis_entry column
 * ("arm_convolve_1x1_s8_fast", ...); "" for TFLM reference kernels; NULL out of range. */
const char *nas_tflm_path_entry(int path);
/* Short stable name of a path ("conv_1x1_fast", "dw_3x3", ...); NULL out of range. */
const char *nas_tflm_path_name(int path);

/* One operator as the kernels see it. */
typedef struct nas_tflm_op {
  int kind;                  /* enum nas_g8_opkind */
  int path;                  /* enum nas_tflm_path */
  int in_h, in_w, in_c;      /* input (FC: 1 x 1 x depth) */
  int out_h, out_w, out_c;   /* output (FC: 1 x batches x units) */
  int k_h, k_w;              /* filter or pool window (1 x 1 otherwise) */
  int stride_h, stride_w, dil_h, dil_w, depth_mult;
  int pad_h, pad_w;          /* TFLite's padding (top/left; the odd pixel goes after) */
  int pad_h_odd, pad_w_odd;  /* 1 when the bottom/right padding is one larger */
  int out_rank;              /* rank of the output tensor */
  int per_channel;           /* weights have one scale per output channel */
  long long elems;           /* output elements */
  long long bytes;           /* input bytes (RESHAPE copies them) */
  long scratch;              /* scratch bytes the kernel requests in the arena (0: none) */
} nas_tflm_op;

/* Describes operator i of a validated graph (nas_g8_validate) for a core with (flags &
 * NAS_TFLM_DSP) or without the DSP extension. NAS_EINVAL for an operator TFLM's int8
 * resolver would reject ("operator 3 (ADD): broadcast add ..."). */
int nas_tflm_op_describe(const nas_g8_graph *g, int i, unsigned flags, nas_tflm_op *o,
                         nas_err *e);

/* ---- the tensor arena (TFLM's arena_used_bytes() on a 32-bit target) ------------------ */
/* Bytes by what holds them. Each figure includes the alignment padding its allocations
 * caused, as TFLM's RecordingMicroAllocator counts them ("used"), so they sum to tail. */
typedef struct nas_tflm_arena_report {
  long head;              /* non-persistent head: activations + CMSIS-NN scratch, planned */
  long head_activations;  /* the activations alone (the plan of TFLM's reference kernels) */
  int nscratch;           /* scratch buffers requested */
  long scratch_bytes;     /* their bytes (each rounded up to 16) */
  long tail;              /* persistent tail */
  long total;             /* head + tail = MicroInterpreter::arena_used_bytes() */
  /* the tail by kind */
  long runtime;           /* allocator, memory planner, MicroAllocator, builtin-data allocator,
                             SubgraphAllocations */
  long eval_tensors;      /* TfLiteEvalTensor[ntensors] */
  long node_registration; /* NodeAndRegistration[nops] */
  long builtin_data;      /* parsed operator options (TfLiteConvParams, ...) */
  long persistent_buffers;/* kernels' op data, per-channel multipliers and shifts, the
                             interpreter's input/output tensor pointer arrays */
  long scratch_handles;   /* ScratchBufferHandle[nscratch] */
  long tensor_structs;    /* the persistent TfLiteTensor of the graph input and output */
  long tensor_quant;      /* their TfLiteAffineQuantization and zero-point arrays */
  int persistent_buffer_count;
  long persistent_buffer_requested; /* bytes asked for (without padding) */
} nas_tflm_arena_report;

/* TFLM's arena for graph g (validated) on a 32-bit Cortex-M with the cmsis_nn kernels: head
 * from deploy/planner_tflm.h with the kernels' scratch requests, tail from the sequence of
 * persistent allocations AllocateTensors makes (sizes of a 32-bit arm-none-eabi build, short
 * enums). The arena is assumed to end on a 16-byte boundary (alignas(16) static array). */
int nas_tflm_arena(const nas_g8_graph *g, unsigned flags, nas_tflm_arena_report *r, nas_err *e);
/* The same, and op_head[i] (when not NULL, [g->nops]) = the head bytes in use while operator i
 * runs (the end of the highest buffer live at its scope; the tail is always in use). */
int nas_tflm_arena_ops(const nas_g8_graph *g, unsigned flags, nas_tflm_arena_report *r,
                       long *op_head, nas_err *e);

/* ---- instruction model ---------------------------------------------------------------- */
enum nas_tflm_core { NAS_TFLM_M4 = 0, NAS_TFLM_M7, NAS_TFLM_M33, NAS_TFLM_NCORE };
/* "cortex-m4", "cortex-m7", "cortex-m33" -> enum nas_tflm_core; -1 when unknown. */
int nas_tflm_core_from_name(const char *name);
const char *nas_tflm_core_name(int core);

/* Fit groups: operators that run the same CMSIS-NN loops share coefficients. */
enum nas_tflm_group {
  NAS_TFLM_G_MATMUL = 0, /* 1x1 fast and strided (arm_nn_mat_mult_nt_t_s8) */
  NAS_TFLM_G_IM2COL,     /* convolve_s8 and 1_x_n (im2col + arm_nn_mat_mult_kernel_s8_s16) */
  NAS_TFLM_G_DW3X3,
  NAS_TFLM_G_DWOPT,
  NAS_TFLM_G_FC,
  NAS_TFLM_G_AVGPOOL,
  NAS_TFLM_G_MAXPOOL,
  NAS_TFLM_G_ADD,
  NAS_TFLM_G_SOFTMAX,
  NAS_TFLM_G_RESHAPE,
  NAS_TFLM_NGROUP
};
#define NAS_TFLM_MAXF 16 /* most features of a group */

/* The group of a path, or -1 when the corpus has no operator of it (DW_S8, FC_PER_CHANNEL,
 * FC_1X1, QUANTIZE: the model cannot price them). */
int nas_tflm_path_group(int path);
const char *nas_tflm_group_name(int group);
/* Number of features of a group and the name of feature k ("macs", "pixels", ...). */
int nas_tflm_group_nfeat(int group);
const char *nas_tflm_feat_name(int group, int k);
/* Features of an operator (f[0..nfeat-1]); returns the group or -1 (see above). */
int nas_tflm_features(const nas_tflm_op *o, double *f);

/* Coefficients per core and group: instructions of an operator without the profiler hook =
 * coef . features. Interpreter overhead of a production Invoke (no profiler) =
 * per_op * nops + per_invoke. */
typedef struct nas_tflm_insn_model {
  int nfeat[NAS_TFLM_NGROUP];
  int fitted[NAS_TFLM_NCORE][NAS_TFLM_NGROUP];
  double coef[NAS_TFLM_NCORE][NAS_TFLM_NGROUP][NAS_TFLM_MAXF];
  double per_op[NAS_TFLM_NCORE], per_invoke[NAS_TFLM_NCORE];
} nas_tflm_insn_model;

/* Reads the committed coefficients (latency/calibration/tflm_insn.json); NAS_EFORMAT names
 * the field ("tflm_insn.json: cores.cortex-m4.groups.dw_3x3: 5 coefficients, expected 7"). */
int nas_tflm_insn_load(const char *path, nas_tflm_insn_model *m, nas_err *e);
/* Writes them (the fit tool); the file records the features by name. */
int nas_tflm_insn_save(const char *path, const nas_tflm_insn_model *m, const char *provenance,
                       nas_err *e);

typedef struct nas_tflm_insn_op {
  int path;
  double insn;            /* predicted instructions, profiler hook excluded */
} nas_tflm_insn_op;
typedef struct nas_tflm_insn_report {
  int nops;
  nas_tflm_insn_op *op;   /* [nops], owned */
  double ops_total;       /* sum over operators */
  double overhead;        /* interpreter: per_op * nops + per_invoke */
  double invoke;          /* production Invoke = ops_total + overhead */
} nas_tflm_insn_report;

/* Predicted instructions of one operator (no profiler hook); NAS_EINVAL for a path the
 * corpus has no data for or a group the model has not fitted for this core. */
int nas_tflm_insn_op_predict(const nas_tflm_insn_model *m, int core, const nas_tflm_op *o,
                             double *insn, nas_err *e);
/* Every operator of g and the production Invoke (see nas_tflm_insn_model). */
int nas_tflm_insn(const nas_tflm_insn_model *m, const nas_g8_graph *g, int core,
                  nas_tflm_insn_report *r, nas_err *e);
void nas_tflm_insn_report_free(nas_tflm_insn_report *r); /* NULL-safe */

#endif
