/* deploy/lower_impl.h: the lowering's state and the tensor/operator builders that
 * deploy/lower.c and deploy/lower_rnn.c share. Internal to deploy/ (not a public interface):
 * every builder returns the new index, or -1 with L->e filled (errors name the layer). */
#ifndef NAS_DEPLOY_LOWER_IMPL_H
#define NAS_DEPLOY_LOWER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "deploy/lower.h"

/* Lowering state. */
typedef struct lw {
  const nas_net *net;   /* source network */
  const nas_graph *fg;  /* its graph */
  const nas_calib *c;   /* ranges per node */
  nas_lower_cfg cfg;    /* options */
  nas_err *e;           /* error sink */
  nas_g8_graph *g;      /* graph being built */
  int tcap, ocap;       /* allocated tensors / ops */
  int *tmap;            /* [fg->n] node -> int8 tensor (-1: none yet) */
  unsigned char *done;  /* [fg->n] 1 when the node was fused into an earlier op */
} lw;

/* "layer 3 (lstm): <message>" for the layer of node (the node's name otherwise); returns code. */
int nas_lw_lerr(lw *L, int node, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int nas_lw_oom(lw *L);
/* A tensor (nq scales, zero points 0) / an operator with up to three inputs (-1: none). */
int nas_lw_add_tensor(lw *L, const char *name, int type, int ndim, const int *dims, int nq);
int nas_lw_add_op(lw *L, int kind, int out, int nin, int i0, int i1, int i2);
/* An int8 activation with tensor `like`'s quantisation. */
int nas_lw_same_q_tensor(lw *L, const char *name, int like, int nd, const int *dims);
/* The int8 tensor of node's input k (an error when it was not lowered). */
int nas_lw_input_of(lw *L, int node, int k);
/* Constant int8 weights (nq scales, quantized dimension qdim) / int32 bias of scale
 * in_scale * w_scale. */
int nas_lw_weight_tensor(lw *L, const char *name, int nd, const int *dims, const int8_t *q,
                         const float *scale, int nq, int qdim);
int nas_lw_bias_tensor(lw *L, const char *name, int co, const float *b, float in_scale,
                       const float *w_scale, int per_channel);
/* base (cut to 40 characters) + suffix into buf. */
void nas_lw_tname(char *buf, size_t cap, const char *base, const char *suffix);

/* Lowers LSTM / GRU node i (deploy/lower_rnn.c). */
int nas_lw_lower_rnn(lw *L, int i);

#endif
