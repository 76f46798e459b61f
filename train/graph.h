/* train/graph.h: tensors and tape-based reverse-mode autodiff.
 *
 * A network is a nas_graph: an ordered list of nodes (the tape). Leaves are inputs (data fed
 * each step), params (trainable) and state (non-trainable tensors that persist, such as
 * batch-norm running statistics). Every other node applies one entry of the op table
 * (train/ops.h) to earlier nodes. nas_graph_alloc() sizes every value, gradient, saved buffer
 * and the shared scratch once, in one arena, for the largest batch; after that a training
 * step (forward, backward, optimiser) performs no allocation.
 *
 * Layout: float32, NHWC. A batched node's shape d[0] is the batch; at run time the batch may
 * be anything from 1 to max_batch (g->batch). Param and state leaves are not batched.
 *
 * Gradients accumulate into node->grad. A backward sweep does not clear every gradient: the
 * first contribution to an op node's gradient overwrites it, later ones add (see
 * op_grad_fresh in ops_impl.h), and a node that received no gradient is skipped. Param
 * gradients are zeroed at the start of the sweep and always accumulate.
 * Ownership: the graph owns every node and buffer; free it with nas_graph_free. */
#ifndef NAS_TRAIN_GRAPH_H
#define NAS_TRAIN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"

#define NAS_MAX_DIMS 4
#define NAS_MAX_INPUTS 6

typedef struct nas_shape {
  int nd;                /* number of dimensions (1..NAS_MAX_DIMS) */
  int d[NAS_MAX_DIMS];   /* sizes; d[0] is the batch for batched nodes */
} nas_shape;

enum nas_leaf {
  NAS_NODE_OP = 0,     /* result of an op */
  NAS_NODE_INPUT = 1,  /* data fed each step (batched, no gradient) */
  NAS_NODE_PARAM = 2,  /* trainable parameter (not batched, has a gradient) */
  NAS_NODE_STATE = 3   /* persistent non-trainable tensor, e.g. BN running mean */
};

enum nas_padding { NAS_PAD_VALID = 0, NAS_PAD_SAME = 1 };

/* Activations fused into an op (batchnorm), as TFLite fuses them into its kernels. */
enum nas_act { NAS_ACT_NONE = 0, NAS_ACT_RELU = 1, NAS_ACT_RELU6 = 2 };

/* Parameters of an op application. Each op reads the fields it documents in ops.h. */
typedef struct nas_op_params {
  int kh, kw;          /* kernel / pool window */
  int sh, sw;          /* strides */
  int padding;         /* enum nas_padding */
  int pad_top, pad_left; /* derived by shape inference (TFLite/TensorFlow "same" rule) */
  float rate;          /* dropout rate */
  float eps, momentum; /* batchnorm epsilon and running-statistics momentum (PyTorch sense) */
  int act;             /* fused activation of batchnorm: enum nas_act */
  int nd, d[NAS_MAX_DIMS]; /* reshape target per sample (without the batch dim) */
  int bits;            /* fake-quant bit width (0: 8); Winograd ops: their tensor's bits */
  int qmode;           /* weight fake-quant scale: enum nas_fq_mode (train/ops.h) */
  int qlim;            /* NAS_FQ_POW2: largest magnitude (0: 2^(bits-1) - 1) */
} nas_op_params;

typedef struct nas_node {
  int kind;            /* enum nas_leaf */
  int op;              /* enum nas_op when kind == NAS_NODE_OP */
  int n_in;            /* number of inputs */
  int in[NAS_MAX_INPUTS]; /* input node ids (earlier on the tape) */
  nas_shape shape;     /* shape at max batch */
  int batched;         /* 1 when d[0] is the batch */
  int needs_grad;      /* 1 when a gradient flows into this node */
  nas_op_params p;     /* op parameters */
  float *val;          /* value, size = numel at max batch */
  float *grad;         /* gradient (NULL when needs_grad == 0) */
  int grad_written;    /* during a backward sweep: 1 once grad holds a value (see ops_impl.h) */
  void *saved;         /* op-owned state kept from forward to backward (mask, argmax, stats) */
  size_t saved_bytes;  /* size of saved, set by shape inference */
  size_t scratch_bytes;/* transient scratch this op needs (shared across the graph) */
  char name[48];       /* for error messages and checkpoints: e.g. "l3.conv.w" */
} nas_node;

typedef struct nas_graph {
  nas_node *nodes;     /* the tape, in execution order */
  int n, cap;          /* nodes used / allocated */
  int max_batch;       /* batch the buffers are sized for */
  int batch;           /* batch of the current step (1..max_batch) */
  int training;        /* 1: training mode (dropout on, BN batch statistics) */
  nas_rng rng;         /* for dropout and initialisation */
  void *scratch;       /* shared transient buffer (im2row columns and the like) */
  size_t scratch_bytes;/* its size */
  nas_arena arena;     /* owns every buffer once allocated */
  int allocated;       /* 1 after nas_graph_alloc */
} nas_graph;

/* Creates an empty graph. Returns NULL on allocation failure. */
nas_graph *nas_graph_new(int max_batch, uint64_t seed);
void nas_graph_free(nas_graph *g); /* NULL-safe */

/* Leaves. dims are per sample for inputs (the batch is prepended), full shape otherwise.
 * Return the node id, or -1 with e filled. */
int nas_graph_input(nas_graph *g, const char *name, int nd, const int *dims, nas_err *e);
int nas_graph_param(nas_graph *g, const char *name, int nd, const int *dims, nas_err *e);
int nas_graph_state(nas_graph *g, const char *name, int nd, const int *dims, nas_err *e);

/* Applies op to the given input nodes; infers the output shape. Returns the new node id, or
 * -1 with e naming the op and the shape problem. */
int nas_graph_apply(nas_graph *g, int op, const int *inputs, int n_in,
                    const nas_op_params *p, const char *name, nas_err *e);

/* Allocates every buffer in one arena. Values of params/state are zero afterwards. */
int nas_graph_alloc(nas_graph *g, nas_err *e);
/* Re-sizes an allocated graph for max_batch samples: shapes, saved state and scratch are
 * inferred again, the arena is allocated anew, and the values of params and state nodes are
 * kept (everything else is zero). The RNG is untouched, so a network built at batch 1 and
 * re-batched equals one built at max_batch with the same seed. On failure (NAS_ENOMEM naming
 * the bytes) g keeps its old size and values. */
int nas_graph_rebatch(nas_graph *g, int max_batch, nas_err *e);

/* Runs the tape up to and including node `upto` (-1: the whole tape) for `batch` samples. */
void nas_graph_forward(nas_graph *g, int batch, int upto);
/* Zeroes gradients, seeds d(loss)/d(loss) = 1 for the scalar node `loss` and runs the tape
 * backwards. */
void nas_graph_backward(nas_graph *g, int loss);
/* As above, but seeds node `from` with the gradient `seed` (numel of that node at g->batch);
 * used by the gradient checker. */
void nas_graph_backward_seed(nas_graph *g, int from, const float *seed);

/* Elements of a node at the current batch (batched) or in total (unbatched). */
size_t nas_node_numel(const nas_graph *g, const nas_node *nd);
size_t nas_shape_numel(const nas_shape *s);
/* Elements per sample of a batched node (product of d[1..]). */
size_t nas_node_sample_numel(const nas_node *nd);
/* Writes "[a,b,c]" into buf. */
const char *nas_shape_str(const nas_shape *s, char *buf, size_t n);

/* Finds a node by name; -1 when absent. */
int nas_graph_find(const nas_graph *g, const char *name);

#endif
