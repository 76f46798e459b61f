/* nasrt.h: the int8 runtime that models exported by `nas export --format c` run on (the
 * operators' prepared parameters, the kernels and the invoke loop). Standalone C99: needs
 * only <stdint.h>, <stddef.h> and <string.h> (memcpy, memmove, memset); no allocation, no
 * global state. The same files are compiled into the host library (nas), which fills the
 * parameter structs in deploy/ and checks the kernels against its own bit for bit.
 *
 * Arithmetic: TFLite's int8 scheme (real = scale * (q - zero_point); NHWC tensors; int32
 * accumulators requantised by a Q31 multiplier and a power-of-two shift, nasrt_fixed.h).
 * The fast kernels (nasrt_fast_*.c, docs/mcu-runtime.md) run every core from one source:
 * with __ARM_FEATURE_DSP (Cortex-M4/M7/M33) on the DSP instructions (SMLAD, SXTB16, ...) and
 * inline-assembly inner loops, elsewhere on plain C with the same results (nasrt_simd.h);
 * NASRT_NO_DSP / NASRT_NO_ASM force the plain versions.
 *
 * A model is a const table of operators (nasrt_op: a kind, its eval and a pointer to the
 * kind's parameter struct) run in order by nasrt_invoke over one arena; every activation has a
 * fixed byte offset in the arena (the memory planner's), constants are pointers. Nothing here
 * is derived at run time: multipliers, shifts, paddings, clamps and offsets are prepared.
 *
 * Adding an operator: one line in NASRT_OPS, its parameter struct and kernel here, the kernel
 * in a nasrt_*.c file, its eval in nasrt_invoke.c. A faster kernel for one core: a function
 * with the kernel's signature in its own file (compiled only under the core's feature macro,
 * e.g. __ARM_FEATURE_MVE) chosen in the kind's eval; if it wants another weight layout, a field
 * in the parameter struct that the host's prepare step fills.
 *
 * Layer marks: compiled with NAS_LAYER_MARK defined, nasrt_invoke calls
 * `void nas_layer_mark(int i)` (defined by the caller) before operator i and with i = <number
 * of operators> after the last one (the emulator and board firmware of nas measure time the
 * layers with it); without it the marks compile to nothing. */
#ifndef NASRT_H
#define NASRT_H

#include <stddef.h>
#include <stdint.h>

/* The operators, one line each: X(KIND, kernel, parameter struct). The kind enum, the evals'
 * declarations and nasrt_eval_of are expanded from this list, so they cannot drift. */
#define NASRT_OPS(X)                          \
  X(CONV_2D, conv, nasrt_conv_p)              \
  X(DEPTHWISE_CONV_2D, dwconv, nasrt_conv_p)  \
  X(FULLY_CONNECTED, fc, nasrt_fc_p)          \
  X(AVERAGE_POOL_2D, avgpool, nasrt_pool_p)   \
  X(MAX_POOL_2D, maxpool, nasrt_pool_p)       \
  X(ADD, add, nasrt_add_p)                    \
  X(SOFTMAX, softmax, nasrt_softmax_p)        \
  X(QUANTIZE, requantize, nasrt_requant_p)    \
  X(RESHAPE, copy, nasrt_copy_p)              \
  X(LOGISTIC, logistic, nasrt_act_p)          \
  X(TANH, tanh, nasrt_act_p)                  \
  X(MUL, elmul, nasrt_mul_p)                  \
  X(SUB, sub, nasrt_add_p)                    \
  X(STRIDED_SLICE, slice, nasrt_slice_p)      \
  X(CONCATENATION, concat, nasrt_concat_p)    \
  X(UNIDIRECTIONAL_SEQUENCE_LSTM, lstm, nasrt_lstm_p)   \
  X(SPARSE, sparse, nasrt_sparse_p)                   \
  X(WINOGRAD_CONV_2D, wino, nasrt_wino_p)

enum nasrt_kind {
#define NASRT_KIND_ENUM(K, k, T) NASRT_##K,
  NASRT_OPS(NASRT_KIND_ENUM)
#undef NASRT_KIND_ENUM
  NASRT_NKINDS
};

/* ---- prepared parameters (one struct per kernel; offsets are arena bytes) ---------------- */

/* CONV_2D (filter [co,kh,kw,ci]) and DEPTHWISE_CONV_2D (filter [1,kh,kw,co], co = ci * M). */
typedef struct nasrt_conv_p {
  int32_t in, out;            /* arena offsets: input [n,h,w,ci], output [n,ho,wo,co] */
  const int8_t *filter;       /* int8 weights, symmetric */
  const int32_t *bias;        /* [co] int32, or NULL */
  const int32_t *mult;        /* [co] Q31 requantisation multipliers */
  const int8_t *shift;        /* [co] their power-of-two shifts (> 0: left) */
  int32_t n, h, w, ci;        /* input shape */
  int32_t ho, wo, co;         /* output shape */
  int32_t kh, kw;             /* filter size */
  int32_t sh, sw, dh, dw;     /* strides, dilations */
  int32_t pt, pl;             /* top/left padding (TFLite: the smaller half) */
  int32_t in_off, out_off;    /* -input zero point, output zero point */
  int32_t lo, hi;             /* fused activation clamp, quantised */
  /* The fast kernels' data (NULL / -1 when the operator runs the portable kernel above):
   * CONV_2D: wq = the filter repacked in output-channel pairs (layout: nasrt_fast_conv.c), bq = the bias
   * with the input offset folded in, scratch = arena offset of the im2col columns;
   * DEPTHWISE_CONV_2D (multiplier 1): filter as above, bq likewise, no scratch. */
  const int8_t *wq;           /* repacked filter, or NULL */
  const int32_t *bq;          /* [co] bias + in_off * (sum of the channel's weights), or NULL */
  int32_t scratch;            /* arena offset of the scratch, -1 for none */
  int32_t qstep;              /* fast kernels: channel c's multiplier is mult[c * qstep] (0: one
                                 for every channel, per-tensor weights) */
} nasrt_conv_p;

/* FULLY_CONNECTED: weights [co,d]; b rows of d inputs. */
typedef struct nasrt_fc_p {
  int32_t in, out;            /* arena offsets: input [b,d], output [b,co] */
  const int8_t *filter;       /* [co,d] int8 weights */
  const int32_t *bias;        /* [co] or NULL */
  const int32_t *mult;        /* [co] Q31 multipliers */
  const int8_t *shift;        /* [co] shifts */
  int32_t b, d, co;
  int32_t in_off, w_off, out_off; /* -input zero point, -weight zero point, output zero point */
  int32_t lo, hi;
  /* The fast kernel's data (NULL when the portable kernel runs; needs w_off = 0): the weights
   * repacked in output-channel pairs and the bias with the input offset folded in. */
  const int8_t *wq;           /* repacked [co,d] weights, or NULL */
  const int32_t *bq;          /* [co] bias + in_off * (sum of the row's weights), or NULL */
  int32_t qstep;              /* fast kernel: row c's multiplier is mult[c * qstep] */
} nasrt_fc_p;

/* AVERAGE_POOL_2D, MAX_POOL_2D (input and output share the quantisation). */
typedef struct nasrt_pool_p {
  int32_t in, out;            /* arena offsets: input [n,h,w,c], output [n,ho,wo,c] */
  int32_t n, h, w, c, ho, wo; /* shapes */
  int32_t fh, fw, sh, sw;     /* window, strides */
  int32_t pt, pl;             /* top/left padding */
  int32_t lo, hi;             /* activation clamp */
} nasrt_pool_p;

/* ADD of two same-shape tensors (TFLite: both inputs scaled to 2 * max(scale) after a left
 * shift, then the sum requantised to the output). */
typedef struct nasrt_add_p {
  int32_t a, b, out;          /* arena offsets of the inputs (when not constant) and output */
  const int8_t *a_data, *b_data; /* a constant input's data, or NULL (then at its offset) */
  int32_t n;                  /* elements */
  int32_t a_off, b_off;       /* -zero point of each input */
  int32_t left_shift;         /* applied to both inputs first (20) */
  int32_t a_mult, a_shift, b_mult, b_shift; /* input rescaling */
  int32_t out_mult, out_shift, out_zp;      /* output requantisation */
  int32_t lo, hi;             /* activation clamp */
} nasrt_add_p;

/* SOFTMAX over the last dimension (TFLM's int8 softmax: output scale 1/256, zero point -128,
 * gemmlowp's fixed-point exp and reciprocal). */
typedef struct nasrt_softmax_p {
  int32_t in, out;            /* arena offsets: [rows, depth] */
  int32_t rows, depth;
  int32_t mult, lshift;       /* input difference -> Q5.26 (beta * scale folded in) */
  int32_t diff_min;           /* differences below this give exactly 0 */
} nasrt_softmax_p;

/* QUANTIZE int8 -> int8: out = clamp(mul(in - in_zp) + out_zp). */
typedef struct nasrt_requant_p {
  int32_t in, out, n;
  int32_t in_zp, mult, shift, out_zp;
} nasrt_requant_p;

/* RESHAPE: a copy of n bytes (none when the planner gave input and output one offset). */
typedef struct nasrt_copy_p {
  int32_t in, out, n;
} nasrt_copy_p;

/* SPARSE: a CONV_2D, or a FULLY_CONNECTED read as a 1x1 conv over its b rows (n = b, h = w =
 * ho = wo = kh = kw = 1, ci = d; weight zero point 0), whose int8 filter [co,kh,kw,ci] is
 * stored as a bitmask of its non-zero entries plus their values, so that a zero weight costs
 * one bit of flash and no multiply:
 *   mask    [co][kh*kw][mb] bytes, mb = (ci + 7) / 8: bit ic % 8 of byte ic / 8 of row
 *           (oc, ky*kw + kx) is 1 when filter[oc][ky][kx][ic] != 0;
 *   values  the non-zero weights in (oc, ky, kx, ic) order.
 * Flash: co * kh * kw * mb + nnz bytes (nasrt_sparse_bytes). The kernel adds the same int32
 * products as the dense kernel minus the zero ones: the outputs are equal bit for bit. */
typedef struct nasrt_sparse_p {
  nasrt_conv_p c;             /* as CONV_2D (c.filter is NULL) */
  const uint8_t *mask;        /* [co * kh * kw * mb] */
  const int8_t *values;       /* [nnz] */
  int32_t mb;                 /* mask bytes per (output channel, tap) row */
  int32_t nnz;                /* non-zero weights */
} nasrt_sparse_p;

/* Bytes of the sparse form of a [co,kh,kw,ci] filter with nnz non-zero weights. */
static inline int32_t nasrt_sparse_bytes(int32_t co, int32_t taps, int32_t ci, int32_t nnz) {
  return co * taps * ((ci + 7) / 8) + nnz;
}

/* LOGISTIC and TANH on int8 (TFLite Micro's reference kernels): x - in_zp rescaled to Q4.27 by
 * mult * 2^shift (frexp form, shift > 0: left), gemmlowp's logistic / tanh in int32, the
 * result rounded to the output's fixed quantisation (LOGISTIC 1/256 and -128, TANH 1/128 and
 * 0); |x - in_zp| >= radius saturates. */
typedef struct nasrt_act_p {
  int32_t in, out, n;         /* arena offsets, elements */
  int32_t in_zp, mult, shift, radius;
} nasrt_act_p;

/* MUL of two same-shape int8 tensors: clamp(mul((a + a_off) * (b + b_off)) + out_zp). */
typedef struct nasrt_mul_p {
  int32_t a, b, out;          /* arena offsets of the inputs (when not constant) and output */
  const int8_t *a_data, *b_data; /* a constant input's data, or NULL */
  int32_t n;                  /* elements */
  int32_t a_off, b_off;       /* -zero point of each input */
  int32_t mult, shift, out_zp;/* a_scale * b_scale / out_scale */
  int32_t lo, hi;             /* activation clamp */
} nasrt_mul_p;

/* STRIDED_SLICE: a strided copy, shapes padded to 4-D with leading 1s (begin and strides
 * resolved from the masks at prepare time; a shrunk axis is an output extent of 1). */
typedef struct nasrt_slice_p {
  int32_t in, out;            /* arena offsets */
  int32_t d0, d1, d2, d3;     /* input shape */
  int32_t o0, o1, o2, o3;     /* output extents */
  int32_t b0, b1, b2, b3;     /* first index per axis */
  int32_t s0, s1, s2, s3;     /* strides (>= 1) */
} nasrt_slice_p;

/* CONCATENATION of up to 10 tensors with one quantisation: per outer index, each input's
 * next n<k> bytes in turn (n<k> = its extent along the axis times the inner size). */
typedef struct nasrt_concat_p {
  int32_t out, count, outer;  /* arena offset of the output, inputs, outer iterations */
  int32_t in0, in1, in2, in3, in4, in5, in6, in7, in8, in9; /* arena offsets of the inputs */
  int32_t n0, n1, n2, n3, n4, n5, n6, n7, n8, n9;           /* bytes per outer index */
} nasrt_concat_p;

/* UNIDIRECTIONAL_SEQUENCE_LSTM, TFLite's integer 8x8->16 LSTM (no CIFG, peephole, projection
 * or layer norm): int8 input and weights, gates int16 in Q3.12, the cell state int16 with a
 * power-of-two scale 2^cell_shift, gemmlowp's int16 logistic / tanh, the hidden state int8.
 * Per step t and unit j: gate g = clamp16(mul(b_in[g] + W_in[g] x_t) ) then
 * clamp16(+ mul(b_rec[g] + W_rec[g] h_{t-1})), i,f,o = logistic, c~ = tanh; c = rdbpot(f c, 15)
 * + rdbpot(i c~, 30 + cell_shift) (saturated, clipped when cell_clip > 0); h = clamp8(mul(o *
 * tanh(c)) - hid_zp). The state starts at h = its zero point (the recurrent term is then 0) and
 * c = 0 on every invoke; h_t is written to the output sequence, which is also where step t+1
 * reads h_t from, so the kernel needs no buffer besides the cell state. */
typedef struct nasrt_lstm_p {
  int32_t in, out;            /* arena offsets: input [b,t,f], output [b,t,h] (int8) */
  int32_t cstate;             /* arena offset of the cell state, int16 [b,h] */
  const int8_t *w_ii, *w_if, *w_ic, *w_io; /* input-to-gate weights [h,f] (gates i,f,c,o) */
  const int8_t *w_ri, *w_rf, *w_rc, *w_ro; /* recurrent weights [h,h] */
  const int32_t *bias;        /* [8][h]: input biases minus in_zp * row sums (i,f,c,o), then
                                 -h_zp * recurrent row sums (i,f,c,o) */
  const int32_t *mult;        /* [8] multipliers into Q3.12: input i,f,c,o, recurrent i,f,c,o */
  const int8_t *shift;        /* [8] their shifts */
  int32_t hid_mult, hid_shift, hid_zp; /* o * tanh(c) (Q0.15 * Q0.15) -> int8 hidden */
  int32_t cell_shift;         /* log2 of the cell state's scale (-15..-9) */
  int32_t cell_clip;          /* quantised cell clip, 0: none */
  int32_t b, t, f, h;         /* batch, steps, input features, units */
  int32_t time_major;         /* 1: input [t,b,f] */
} nasrt_lstm_p;

/* WINOGRAD_CONV_2D: a 3x3 stride-1 convolution through F(m x m, 3x3) tiles (m = 2: 4x4 input
 * tiles; m = 4: 6x6), the arithmetic of a Winograd-aware layer (nas docs/winograd.md): per
 * input tile and channel V = Bt (x - zp) Bt^T in int32, requantised by v_mult/v_shift to
 * +-qmax; per output channel k and tile position p the product sum_c U[k][p][c] V[p][c] in
 * int32, requantised by m_mult[k]/m_shift[k] to +-qmax; Y = At M At^T in int32 with bias[k]
 * (at 2^-bshift of Y's scale) requantised by o_mult[k]/o_shift[k], plus the output zero point,
 * clamped. Every requantisation rounds once (nasrt_wfixed.h), not twice as TFLite's
 * MultiplyByQuantizedMultiplier does. Static layers use
 * the Cook-Toom integer Bt, At (F2: points 0, 1, -1, inf; F4: 0, +-1, +-2, inf); a flex layer
 * gives its int8 tables bt [a][a] and at [m][a]. U is int8 [co][a*a][ci4] (ci4 = ci rounded up
 * to 4, zero padded): pre-transformed in flash (u), or transformed from the spatial weights wt
 * [co][3][3][ci] into the scratch at every invoke (static layers: U = Gn w Gn^T requantised
 * by u_mult[k]/u_shift[k], Gn = gden * G integer). The scratch (tile buffers and, at run
 * time, U) is NASRT_WINO_SCRATCH bytes at arena offset scratch. */
typedef struct nasrt_wino_p {
  int32_t in, out, scratch;   /* arena offsets: input [n,h,w,ci], output [n,ho,wo,co], scratch */
  const int8_t *u;            /* pre-transformed weights [co][a*a][ci4], or NULL */
  const int8_t *wt;           /* with u NULL: spatial weights [co][3][3][ci] */
  const int32_t *u_mult;      /* with u NULL: [co] Gn w Gn^T -> U multipliers */
  const int8_t *u_shift;      /* with u NULL: [co] their shifts */
  const int8_t *bt, *at;      /* flex: Bt [a][a], At [m][a]; NULL: the static tables */
  const int32_t *bias;        /* [co] at 2^-bshift of the output transform's scale */
  const int32_t *m_mult;      /* [co] product -> M multipliers */
  const int8_t *m_shift;      /* [co] their shifts */
  const int32_t *o_mult;      /* [co] output multipliers */
  const int8_t *o_shift;      /* [co] their shifts */
  int32_t v_mult, v_shift;    /* transformed input -> V */
  int32_t n, h, w, ci;        /* input shape */
  int32_t ho, wo, co;         /* output shape */
  int32_t m, pt, pl;          /* output tile (2 or 4), top/left padding */
  int32_t in_off, out_off;    /* -input zero point, output zero point */
  int32_t qmax;               /* V and M lie in -qmax..qmax (2^(bits-1) - 1) */
  int32_t bshift;             /* 0..16: the bias's extra fraction bits */
  int32_t lo, hi;             /* fused activation clamp */
} nasrt_wino_p;

/* Scratch bytes of a WINOGRAD_CONV_2D (rt: U transformed at run time): M [a*a] and the
 * output transform's rows [m*a] int32, V [a*a][ci4] int16, U [co][a*a][ci4] int8 at run time. */
#define NASRT_WINO_CI4(ci) (((ci) + 3) / 4 * 4)
#define NASRT_WINO_SCRATCH(m, ci, co, rt)                                                   \
  (4 * ((m) + 2) * ((m) + 2) + 4 * (m) * ((m) + 2) +                                       \
   2 * ((m) + 2) * ((m) + 2) * NASRT_WINO_CI4(ci) +                                         \
   ((rt) ? (co) * ((m) + 2) * ((m) + 2) * NASRT_WINO_CI4(ci) : 0))

/* ---- kernels (pointer level: the host runtime calls them on its own buffers) -------------- */

void nasrt_conv(const nasrt_conv_p *p, const int8_t *in, int8_t *out);
void nasrt_dwconv(const nasrt_conv_p *p, const int8_t *in, int8_t *out);
void nasrt_fc(const nasrt_fc_p *p, const int8_t *in, int8_t *out);
void nasrt_avgpool(const nasrt_pool_p *p, const int8_t *in, int8_t *out);
void nasrt_maxpool(const nasrt_pool_p *p, const int8_t *in, int8_t *out);
void nasrt_add(const nasrt_add_p *p, const int8_t *a, const int8_t *b, int8_t *out);
void nasrt_softmax(const nasrt_softmax_p *p, const int8_t *in, int8_t *out);
void nasrt_requantize(const nasrt_requant_p *p, const int8_t *in, int8_t *out);
void nasrt_copy(const nasrt_copy_p *p, const int8_t *in, int8_t *out);
void nasrt_sparse(const nasrt_sparse_p *p, const int8_t *in, int8_t *out);

void nasrt_logistic(const nasrt_act_p *p, const int8_t *in, int8_t *out);
void nasrt_tanh(const nasrt_act_p *p, const int8_t *in, int8_t *out);
void nasrt_elmul(const nasrt_mul_p *p, const int8_t *a, const int8_t *b, int8_t *out);
void nasrt_sub(const nasrt_add_p *p, const int8_t *a, const int8_t *b, int8_t *out);
void nasrt_slice(const nasrt_slice_p *p, const int8_t *in, int8_t *out);
void nasrt_concat(const nasrt_concat_p *p, int8_t *arena);
void nasrt_lstm(const nasrt_lstm_p *p, const int8_t *in, int8_t *out, int16_t *cell);
void nasrt_wino(const nasrt_wino_p *p, const int8_t *in, int8_t *out, void *scratch);
/* The fast kernels (nasrt_fast_conv.c, nasrt_fast_dw.c): the same results from the prepared
 * wq / bq. scratch: nasrt_conv_scratch_bytes bytes, 4-byte aligned; NULL for a 1x1 filter
 * runs it without (slower). */
void nasrt_conv_fast(const nasrt_conv_p *p, const int8_t *in, int8_t *out, void *scratch);
void nasrt_dwconv_fast(const nasrt_conv_p *p, const int8_t *in, int8_t *out);
void nasrt_fc_fast(const nasrt_fc_p *p, const int8_t *in, int8_t *out);
/* Bytes of scratch nasrt_conv_fast needs for a kh x kw filter over ci input channels. */
int32_t nasrt_conv_scratch_bytes(int32_t kh, int32_t kw, int32_t ci);

/* ---- models ---------------------------------------------------------------------------- */

/* An operator's eval: resolves its arena offsets and runs its kernel. One per kind,
 * nasrt_eval_<kernel> (nasrt_eval_conv, ...); an operator table names the evals it uses, so a
 * firmware linked with --gc-sections carries only the kernels its model runs. */
typedef void (*nasrt_eval_fn)(const void *p, int8_t *arena);
#define NASRT_EVAL_DECL(K, k, T) void nasrt_eval_##k(const void *p, int8_t *arena);
NASRT_OPS(NASRT_EVAL_DECL)
#undef NASRT_EVAL_DECL

typedef struct nasrt_op {
  int32_t kind;               /* enum nasrt_kind */
  nasrt_eval_fn eval;         /* the kind's eval */
  const void *p;              /* the kind's parameter struct (nasrt_<kernel>_p) */
} nasrt_op;

typedef struct nasrt_model {
  const nasrt_op *ops;        /* [nops] in execution order */
  int32_t nops;
  int32_t in, in_size;        /* arena offset and bytes of the input */
  int32_t out, out_size;      /* arena offset and bytes of the output */
  int32_t arena_bytes;        /* the arena nasrt_invoke needs (16-byte aligned) */
} nasrt_model;

/* The eval of a kind; NULL for an unknown kind. (It names every eval: a firmware that calls it
 * links every kernel.) */
nasrt_eval_fn nasrt_eval_of(int kind);
/* Copies in[in_size] to the input's offset, runs every operator, copies the output to
 * out[out_size]. Returns 0, or -1 when an operator has no eval. */
int nasrt_invoke(const nasrt_model *m, int8_t *arena, const int8_t *in, int8_t *out);

#endif
