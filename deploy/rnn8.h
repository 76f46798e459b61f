/* deploy/rnn8.h: the int8 graph's recurrent operators, inside deploy/: validation, prepare and
 * host execution of UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite's integer 8x8->16 LSTM) and of the
 * element-wise operators an unrolled GRU is made of (LOGISTIC, TANH, MUL, SUB,
 * STRIDED_SLICE). graph8.c, prep8.c and kernels8.c hand these kinds over to the functions
 * here; the kernels themselves are the MCU runtime's (runtime/nasrt_gates.c,
 * runtime/nasrt_lstm.c), run on the host's buffers. Not a public interface of deploy/. */
#ifndef NAS_DEPLOY_RNN8_H
#define NAS_DEPLOY_RNN8_H

#include "deploy/graph8.h"

/* LSTM input slots (TFLite's order). */
enum {
  NAS_LSTM_IN = 0,          /* input [B,T,F] */
  NAS_LSTM_W_IN = 1,        /* 1..4: input-to-gate weights i,f,c,o [H,F] */
  NAS_LSTM_W_REC = 5,       /* 5..8: recurrent weights i,f,c,o [H,H] */
  NAS_LSTM_PEEPHOLE = 9,    /* 9..11: cell-to-gate weights (not supported) */
  NAS_LSTM_BIAS = 12,       /* 12..15: gate biases i,f,c,o [H] int32 */
  NAS_LSTM_PROJ_W = 16,     /* 16, 17: projection weights and bias (not supported) */
  NAS_LSTM_HSTATE = 18,     /* output state, variable int8 [B,H] */
  NAS_LSTM_CSTATE = 19,     /* cell state, variable int16 [B,H], power-of-two scale */
  NAS_LSTM_LAYER_NORM = 20, /* 20..23: layer-norm coefficients (not supported) */
  NAS_LSTM_HIDDEN_IM = 4    /* intermediate 4: the hidden state's scale and zero point */
};

/* 1 when kind is one of the operators here. */
int nas_g8_is_rnn_kind(int kind);
/* Checks operator i (a kind of this file) as nas_g8_validate does; "operator 3 (TANH): ...". */
int nas_g8_validate_rnn(const nas_g8_graph *g, int i, nas_err *e);
/* Fills p (rt_kind, rt, owned arrays) for operator op of a kind of this file. */
int nas_g8_prep_rnn(const nas_g8_graph *g, const nas_g8_plan *plan, const nas_g8_op *op,
                    nas_g8_prep_op *p);
/* Runs prepared operator i on the host's tensor pointers act[] (constants from the graph). */
int nas_g8_run_rnn(const nas_g8_graph *g, const nas_g8_prep_op *pp, int i, int8_t *const *act,
                   nas_err *e);

/* log2 of a power-of-two scale (TFLite's CheckedLog2: rounded, 1e-3 tolerance); 0 when the
 * scale is not a power of two. */
int nas_g8_pot_log2(float scale, int *log2);

#endif
