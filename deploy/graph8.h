/* deploy/graph8.h: the int8 graph (quantized IR) that runs on the MCU, its reference kernels
 * (TFLite Micro's int8 arithmetic, bit for bit where TFLM is integer-only), the memory
 * planner and the TFLite flatbuffer reader.
 *
 * Conventions: tensors are NHWC; real = scale * (q - zero_point); activations int8 with one
 * scale/zero point; weights int8 symmetric, per tensor or per output channel; biases int32
 * with scale input_scale * weight_scale. Ownership: a nas_g8_graph owns every array it points
 * to (tensor names, shapes, quantisation arrays, constant data); free it with
 * nas_g8_graph_free (NULL-safe). Library functions never print; they return a status of
 * enum nas_status and fill a nas_err. */
#ifndef NAS_DEPLOY_GRAPH8_H
#define NAS_DEPLOY_GRAPH8_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "runtime/nasrt.h"

#define NAS_G8_MAXDIM 6 /* most dimensions a tensor may have */
#define NAS_G8_MAXIN 24 /* most inputs of an operator (UNIDIRECTIONAL_SEQUENCE_LSTM: 24) */
#define NAS_G8_MAXIM 5  /* most intermediate tensors of an operator (the LSTM's 5) */

/* Element types (values follow TFLite's TensorType). */
enum nas_g8_type { NAS_G8_FLOAT32 = 0, NAS_G8_INT32 = 2, NAS_G8_INT16 = 7, NAS_G8_INT8 = 9 };
/* (FLOAT32 only for the LSTM's empty placeholder intermediates, as TFLite's converter writes) */

/* Operator kinds (values follow TFLite's BuiltinOperator). */
enum nas_g8_opkind {
  NAS_G8_ADD = 0,
  NAS_G8_AVERAGE_POOL_2D = 1,
  NAS_G8_CONCATENATION = 2,
  NAS_G8_CONV_2D = 3,
  NAS_G8_DEPTHWISE_CONV_2D = 4,
  NAS_G8_FULLY_CONNECTED = 9,
  NAS_G8_LOGISTIC = 14,
  NAS_G8_MAX_POOL_2D = 17,
  NAS_G8_MUL = 18,
  NAS_G8_RESHAPE = 22,
  NAS_G8_SOFTMAX = 25,
  NAS_G8_TANH = 28,
  NAS_G8_SUB = 41,
  NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM = 44, /* integer 8x8->16 (deploy/prep_rnn.c) */
  NAS_G8_STRIDED_SLICE = 45,
  NAS_G8_QUANTIZE = 114, /* int8 -> int8 requantisation only */
  /* Not a TFLite operator: a Winograd-aware 3x3 stride-1 convolution (deploy/wino8.h). Inputs:
   * 0 x; 1 the weights (static layer: spatial int8 [Co,3,3,Ci] per channel; flex layer: the
   * transformed U int8 [Co,P,Ci], P = (m+2)^2, per channel); 2 the bias int32 [Co], per channel
   * at 2^-bshift of the output transform's scale; 3 the tile scratch (an int8 activation of
   * NASRT_WINO_SCRATCH bytes that only this operator uses: the planner gives it arena space);
   * 4 a flex layer's tables int8 [(m+2)^2 + m(m+2)] (Bt then At), -1 for a static layer. */
  NAS_G8_WINOGRAD = 1000
};

/* Fused activations (values follow TFLite's ActivationFunctionType). */
enum nas_g8_act { NAS_G8_ACT_NONE = 0, NAS_G8_ACT_RELU = 1, NAS_G8_ACT_RELU_N1_TO_1 = 2,
                  NAS_G8_ACT_RELU6 = 3, NAS_G8_ACT_TANH = 4 /* LSTM's cell activation only */ };

/* Padding (values follow TFLite's Padding). */
enum nas_g8_pad { NAS_G8_PAD_SAME = 0, NAS_G8_PAD_VALID = 1 };

typedef struct nas_g8_tensor {
  char *name;                   /* owned, NUL-terminated ("" when the file has none) */
  int type;                     /* enum nas_g8_type */
  int ndim;                     /* 0..NAS_G8_MAXDIM */
  int dims[NAS_G8_MAXDIM];      /* shape, NHWC for 4-D activations */
  int nq;                       /* number of scales (1: per tensor, >1: per channel) */
  float *scale;                 /* [nq], owned */
  int32_t *zero_point;          /* [nq], owned */
  int qdim;                     /* quantized dimension when nq > 1 */
  void *data;                   /* owned constant data (weights, bias), NULL for activations */
  int variable;                 /* 1: TFLite variable tensor (LSTM state, set by its operator) */
  size_t bytes;                 /* element count * element size */
} nas_g8_tensor;

typedef struct nas_g8_op {
  int kind;                     /* enum nas_g8_opkind */
  int nin;                      /* inputs used */
  int in[NAS_G8_MAXIN];         /* tensor indices; -1 for an absent optional input (bias) */
  int out;                      /* output tensor index */
  int nim;                      /* intermediate tensors (LSTM: 5, TFLite's order) */
  int im[NAS_G8_MAXIM];         /* their indices (quantisation only, never planned) */
  int padding;                  /* enum nas_g8_pad (conv, dwconv, pools) */
  int stride_w, stride_h;       /* strides (conv, dwconv, pools) */
  int dil_w, dil_h;             /* dilation factors (conv, dwconv), 1 by default */
  int filter_w, filter_h;       /* pool window */
  int depth_mult;               /* depthwise channel multiplier */
  int act;                      /* enum nas_g8_act, fused */
  float beta;                   /* softmax beta */
  int wino_m;                   /* WINOGRAD: output tile, 2 (F2) or 4 (F4) */
  int wino_bits;                /* WINOGRAD: bits of the transformed input V and product M */
  int wino_rt;                  /* WINOGRAD, static: 1 = weights transformed at run time into
                                   the scratch, 0 = pre-transformed by the prepare step */
  int wino_fb, wino_fa;         /* WINOGRAD, flex: power-of-two exponents of the Bt, At tables
                                   (real = table * 2^-f) */
  float wino_vscale;            /* WINOGRAD: scale of V (symmetric, zero point 0) */
  int wino_bshift;              /* WINOGRAD: the bias is at 2^-bshift (0..16) of the output
                                   transform's accumulator scale */
  float cell_clip, proj_clip;   /* LSTM clips (0: none) */
  int time_major;               /* LSTM: input [T,B,F] when 1 */
  int axis;                     /* CONCATENATION axis */
  int begin_mask, end_mask;     /* STRIDED_SLICE masks (bit per axis) */
  int ellipsis_mask, new_axis_mask, shrink_axis_mask;
} nas_g8_op;

typedef struct nas_g8_graph {
  int ntensors;                 /* tensors */
  nas_g8_tensor *tensors;       /* [ntensors], owned */
  int nops;                     /* operators in execution order */
  nas_g8_op *ops;               /* [nops], owned */
  int input, output;            /* the graph's (single) input and output tensor */
  int sparse;                   /* 1: prepare CONV_2D / FULLY_CONNECTED operators whose sparse
                                   form is smaller than their int8 filter as the runtime's
                                   SPARSE (the nas-c runtime's storage, nas_g8_sparse_pick);
                                   2: every operator that has a sparse form (tests and
                                   measurements); 0: dense (TFLite, TFLM). Set by the caller. */
} nas_g8_graph;

void nas_g8_graph_free(nas_g8_graph *g); /* NULL-safe; frees what g points to, not g */

/* Element count of a tensor (product of dims; 1 for a scalar). */
size_t nas_g8_numel(const nas_g8_tensor *t);
/* Bytes of t's values (int16 and int32 tensors take 2 and 4 bytes an element). */
size_t nas_g8_tensor_bytes(const nas_g8_tensor *t);
/* "CONV_2D" etc. for any TFLite BuiltinOperator code; NULL when unknown. */
const char *nas_g8_op_name(int builtin_code);
/* The short lowercase name of an operator kind in per-layer tables ("conv2d", "dwconv2d",
 * "fc", "avgpool", ...; "?" for a kind without one). */
const char *nas_g8_op_short(int kind);
const char *nas_g8_act_name(int act);

/* Sparse weights (the nas-c runtime's SPARSE, runtime/nasrt.h): bytes of the sparse form of
 * operator i's filter (bitmask + non-zero values), or -1 when it has none (not CONV_2D /
 * FULLY_CONNECTED, or a non-zero weight zero point); *nnz (may be NULL) gets its non-zero
 * weights. nas_g8_sparse_pick: 1 when the sparse form exists and is smaller than the dense
 * int8 filter (the rule the prepare step applies when g->sparse is set). */
long long nas_g8_sparse_bytes(const nas_g8_graph *g, int i, long long *nnz);
int nas_g8_sparse_pick(const nas_g8_graph *g, int i);

/* Checks every operator's tensors (types, ranks, shapes, quantisation) so the kernels can
 * run without further checks. Messages: "operator 3 (CONV_2D): ...". */
int nas_g8_validate(const nas_g8_graph *g, nas_err *e);

/* ---- fixed-point helpers (TFLite / gemmlowp semantics) ---------------------------------- */
/* Splits a real multiplier into a Q31 significand and a power-of-two shift
 * (m ~= q * 2^(shift-31)); 0 gives q = 0, shift = 0. */
void nas_q_quantize_multiplier(double m, int32_t *q, int *shift);
/* The runtime's arithmetic (runtime/nasrt_fixed.h, one definition for host and device):
 * nas_q_srdhm is gemmlowp's SaturatingRoundingDoublingHighMul ((a*b + nudge) / 2^31
 * truncated, nudge = 2^30 for a*b >= 0 else 1 - 2^30, so -1.5 -> -1, +1.5 -> 2;
 * INT32_MIN*INT32_MIN -> INT32_MAX); nas_q_rdbpot is x / 2^exponent rounded to nearest, ties
 * away from zero (0 <= exponent <= 31); nas_q_mul is TFLite's MultiplyByQuantizedMultiplier. */
int32_t nas_q_srdhm(int32_t a, int32_t b);
int32_t nas_q_rdbpot(int32_t x, int exponent);
int32_t nas_q_mul(int32_t x, int32_t q, int shift);
/* Activation clamp range in the output's quantised domain. */
void nas_q_act_range(int act, float scale, int32_t zero_point, int32_t *lo, int32_t *hi);

/* Requantises n int32 accumulators per channel c: clamp(nas_q_mul(acc[c], q[c], shift[c]) +
 * out_off, lo, hi), written as int8 (the vectorisable form of nas_q_mul, same results). */
typedef struct nas_q_rq {
  int32_t *mult;  /* [n] Q31 significands (>= 0) */
  int32_t *lmul;  /* [n] 2^left shift */
  int32_t *rsh;   /* [n] right shift 0..31 */
  int32_t *mask;  /* [n] 2^rsh - 1 */
} nas_q_rq;
void nas_q_requant_row(const int32_t *acc, int n, const nas_q_rq *r, int32_t out_off, int32_t lo,
                       int32_t hi, int8_t *out);
/* One entry of nas_q_rq from a multiplier and shift of nas_q_quantize_multiplier. */
void nas_q_rq_consts(int32_t mult, int shift, int32_t *lmul, int32_t *qm, int32_t *rsh,
                     int32_t *mask);

/* ---- prepare --------------------------------------------------------------------------- */
/* The planner's arena (needed by the prepare step for the runtime's offsets). */
typedef struct nas_g8_plan {
  int ntensors;      /* = graph's */
  long *offset;      /* [ntensors] byte offset in the arena; -1 for constants; owned */
  int *first, *last; /* [ntensors] lifetime in operator indices (inclusive); owned */
  size_t peak;       /* arena bytes = max(offset + size), scratch buffers included */
  int nops;          /* = graph's */
  long *scratch;     /* [nops] offset of operator i's scratch (nas_g8_op_scratch bytes, live
                        during operator i only), -1 when it has none; owned */
} nas_g8_plan;
/* Bytes of arena scratch the device runtime's kernel for operator i uses (0: none). With
 * optional non-NULL, *optional = 1 when the kernel also runs without it (slower): the planner
 * then gives it only where it fits below the peak of everything else. */
size_t nas_g8_op_scratch(const nas_g8_graph *g, int i, int *optional);

/* An operator prepared once: every parameter its kernels need, derived here and nowhere else.
 * rt is the MCU runtime's parameter struct (runtime/nasrt.h) for kind rt_kind: shapes,
 * paddings, zero-point offsets, activation clamp, per-channel multipliers and shifts, ADD's and
 * SOFTMAX's fixed-point parameters, arena offsets (the plan's; -1 without a plan) and pointers
 * to the graph's constant data. The host kernels read it and the C export prints it.
 * The rest is the host's own layout for its vectorised kernels: the requantisation in
 * branch-free form (from rt's multipliers and shifts) and, for conv and depthwise conv
 * (multiplier 1), int16 filters and an int32 bias with the output channels padded to a
 * multiple of 16 (zeros), filters laid out [Kh,Kw,Ci,Cop] / [Kh,Kw,Cop] so every channel loop
 * is whole vectors; a conv with few output channels over many pixels keeps its
 * [Co,Kh,Kw,Ci] order and runs with the pixels on the vector axis. Owned arrays; rt points
 * into them and into the graph (which must outlive it). */
typedef struct nas_g8_prep_op {
  int rt_kind;     /* enum nasrt_kind */
  union {          /* by rt_kind */
    nasrt_conv_p conv;       /* CONV_2D, DEPTHWISE_CONV_2D */
    nasrt_fc_p fc;           /* FULLY_CONNECTED */
    nasrt_pool_p pool;       /* AVERAGE_POOL_2D, MAX_POOL_2D */
    nasrt_add_p add;         /* ADD */
    nasrt_softmax_p softmax; /* SOFTMAX */
    nasrt_requant_p requant; /* QUANTIZE */
    nasrt_copy_p copy;       /* RESHAPE */
    nasrt_wino_p wino;       /* WINOGRAD (prep_wino in prep8.c) */
    nasrt_act_p act;         /* LOGISTIC, TANH */
    nasrt_mul_p mul;         /* MUL */
    nasrt_slice_p slice;     /* STRIDED_SLICE */
    nasrt_lstm_p lstm;       /* UNIDIRECTIONAL_SEQUENCE_LSTM (ADD's struct serves SUB) */
    nasrt_concat_p concat;   /* CONCATENATION */
    nasrt_sparse_p sparse;   /* SPARSE (CONV_2D / FULLY_CONNECTED with g->sparse) */
  } rt;
  int32_t *mult;   /* [channels] rt.conv/rt.fc multipliers, owned (LSTM: [8]; NULL for other
                      kinds) */
  int8_t *shift;   /* [channels] their shifts, owned */
  int32_t *ebias;  /* LSTM: [8][units] effective biases (rt.lstm.bias), owned; else NULL */
  nas_q_rq rq;     /* host requantisation, one entry per output channel; NULL arrays when unused */
  int cop;         /* padded output channels (0 when w16 is unused; Co when pixel) */
  int pixel;       /* CONV_2D run with pixels on the vector axis: w16 is [Co,Kh*Kw*Ci] */
  int stage_h, stage_w; /* depthwise staging: input rows/columns the windows cover */
  int16_t *w16;    /* repacked filter, or NULL */
  int32_t *bias;   /* [cop] bias (0 where absent), or NULL */
  int8_t *wino_u;  /* WINOGRAD: U [co][P][ci4] (pre-transformed or repacked), or NULL */
  int32_t *wino_i32; /* WINOGRAD: u_mult, m_mult, o_mult, wmax [co] each (rt.wino points here) */
  int8_t *wino_i8; /* WINOGRAD: u_shift, m_shift, o_shift [co] each */
  int8_t *wq;      /* the device's fast-kernel filter (rt.conv.wq / rt.fc.wq), or NULL */
  int32_t *bq;     /* its bias with the input offset folded in (rt.*.bq), or NULL */
  uint8_t *sp_mask;   /* SPARSE: rt.sparse.mask, owned */
  int8_t *sp_values;  /* SPARSE: rt.sparse.values, owned */
} nas_g8_prep_op;
typedef struct nas_g8_prep {
  int nops;
  nas_g8_prep_op *op;   /* [nops], owned */
  size_t scratch_bytes; /* scratch the host kernels need (accumulators, depthwise staging) */
} nas_g8_prep;
/* Prepares every operator of a validated graph; plan (from nas_g8_plan_build on g) gives the
 * arena offsets, NULL leaves them -1 (the host kernels address tensors by pointer). */
int nas_g8_prep_build(const nas_g8_graph *g, const nas_g8_plan *plan, nas_g8_prep *p, nas_err *e);
void nas_g8_prep_free(nas_g8_prep *p); /* NULL-safe */
/* Prepares operator i alone into *p (its scratch need in *scratch); free with
 * nas_g8_prep_op_free (NULL-safe). */
int nas_g8_prep_op_build(const nas_g8_graph *g, const nas_g8_plan *plan, int i,
                         nas_g8_prep_op *p, size_t *scratch, nas_err *e);
void nas_g8_prep_op_free(nas_g8_prep_op *p);
/* The runtime's operator table entry of a prepared operator (points into p). */
nasrt_op nas_g8_prep_rt_op(const nas_g8_prep_op *p);

/* ---- execution ------------------------------------------------------------------------- */
/* Runs one operator; act[i] points at tensor i's activation storage (NULL for constants).
 * The graph must have passed nas_g8_validate. nas_g8_run_op prepares the operator itself
 * (for one-off calls); nas_g8_run_op_prep uses p from nas_g8_prep_build on the same graph
 * and scratch of p->scratch_bytes + 128 bytes (64-byte aligned), not shared between threads. */
int nas_g8_run_op(const nas_g8_graph *g, int op, int8_t *const *act, nas_err *e);
int nas_g8_run_op_prep(const nas_g8_graph *g, const nas_g8_prep *p, int op, int8_t *const *act,
                       void *scratch, nas_err *e);

/* Runs g once through the MCU runtime itself (runtime/, compiled into this library): plan,
 * prepare, an operator table over the prepared parameters, nasrt_invoke on one arena. The
 * host check that the device's kernels compute what nas_g8_run computes. */
int nas_g8_rt_run(const nas_g8_graph *g, const int8_t *in, int8_t *out, nas_err *e);

/* ---- memory planner -------------------------------------------------------------------- */
/* Plans every activation tensor and every operator's scratch (deploy/planner.c: the smallest
 * of several greedy placements, one of them TFLite Micro's). Offsets are aligned to 16 bytes. */
int nas_g8_plan_build(const nas_g8_graph *g, nas_g8_plan *p, nas_err *e);
/* The same planner over the activation tensors alone (no scratch; every scratch offset -1):
 * the figure to compare with another runtime's activation plan. */
int nas_g8_plan_activations(const nas_g8_graph *g, nas_g8_plan *p, nas_err *e);
void nas_g8_plan_free(nas_g8_plan *p); /* NULL-safe */

/* A graph ready to run many times: its plan, prepared operators and one arena. Not shared
 * between threads (one exec per thread; the graph itself is only read). */
typedef struct nas_g8_exec {
  const nas_g8_graph *g; /* borrowed; must outlive the exec */
  nas_g8_plan plan;
  nas_g8_prep prep;
  int8_t *arena;         /* plan.peak bytes, owned */
  int8_t **act;          /* [ntensors + 1] pointers into arena (NULL for constants), owned */
  void *scratch;         /* prep.scratch_bytes + 128, 64-byte aligned, owned */
} nas_g8_exec;
int nas_g8_exec_init(nas_g8_exec *x, const nas_g8_graph *g, nas_err *e);
/* Quantised input bytes in, output bytes out (nas_g8_numel of the graph's input / output). */
int nas_g8_exec_run(nas_g8_exec *x, const int8_t *in, int8_t *out, nas_err *e);
void nas_g8_exec_free(nas_g8_exec *x); /* NULL-safe */

/* Runs the whole graph once: nas_g8_exec_init, nas_g8_exec_run, nas_g8_exec_free. */
int nas_g8_run(const nas_g8_graph *g, const int8_t *in, int8_t *out, nas_err *e);

/* ---- TFLite import --------------------------------------------------------------------- */
/* Parses a .tflite flatbuffer held in memory (buf is only read; the graph copies what it
 * keeps). name is used in messages. NAS_EFORMAT for a malformed file, NAS_EINVAL for an
 * unsupported op/type/quantisation. */
int nas_tflite_parse(const uint8_t *buf, size_t n, const char *name, nas_g8_graph *g,
                     nas_err *e);
/* Reads and parses a file (NAS_EIO when it cannot be read). */
int nas_tflite_read(const char *path, nas_g8_graph *g, nas_err *e);

#endif
