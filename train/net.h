/* train/net.h: builds a trainable network from an architecture (arch JSON, see README
 * "Architecture JSON"). Every layer becomes a few ops on one graph; parameter nodes are named
 * "l<index>.<part>.<tensor>" (e.g. "l1.dw.w", "l1.dw.bn.mean"), which checkpoints and the
 * exporters use. Errors name the layer index, its op and the field ("layer 2 (dsconv):
 * field 'stride': ...").
 * Ownership: nas_net owns its graph and strings; free with nas_net_free. */
#ifndef NAS_TRAIN_NET_H
#define NAS_TRAIN_NET_H

#include <stdint.h>

#include "train/graph.h"
#include "train/prune.h"

typedef struct nas_layer_info {
  char op[16];        /* the arch op name ("conv", "dsconv", ...) */
  int out_h, out_w, out_c; /* output shape per sample (h=w=1 after gap/fc) */
  long long params;   /* trainable parameters of this layer */
  long long macs;     /* multiply-accumulates of one forward pass, one sample */
  double sparsity;    /* unstructured pruning target of its masked weights (0: none) */
  double channels;    /* fraction of its output channels removed by structured pruning (0) */
} nas_layer_info;

typedef struct nas_net {
  nas_graph *g;       /* the graph (owned) */
  int input;          /* node id of the input [N,H,W,C] */
  int labels;         /* node id of the labels [N] */
  int logits;         /* node id of the logits [N,classes] */
  int loss;           /* node id of the mean cross-entropy [1] */
  int in_h, in_w, in_c; /* input shape */
  int classes;        /* number of classes */
  int n_layers;       /* arch layers */
  nas_layer_info *layers; /* [n_layers] */
  long long params;   /* total trainable parameters */
  long long macs;     /* total MACs per sample (forward) */
  char *arch_json;    /* canonical arch JSON (defaults filled in), owned */
  nas_prune_cfg prune;/* the arch's "prune" object (train/prune.h; method none when absent) */
  int svdo_form;      /* 1: built as the SVDO training form (nas_prune_svdo_build) */
} nas_net;

/* Parses and validates arch JSON text, builds and allocates the graph for max_batch samples,
 * and initialises parameters with rng seed `seed` (PyTorch default init: kaiming-uniform
 * weights, uniform biases bounded by 1/sqrt(fan_in), BN gamma 1 beta 0). `source` names the
 * text in errors (a file name). */
int nas_net_build(const char *arch_json, const char *source, int max_batch, uint64_t seed,
                  nas_net **out, nas_err *e);
void nas_net_free(nas_net *n); /* NULL-safe */
/* Re-sizes n's graph for max_batch samples keeping its parameters and state
 * (nas_graph_rebatch): a network built at batch 1 to be priced is trained without being
 * built again. */
int nas_net_rebatch(nas_net *n, int max_batch, nas_err *e);
/* As nas_net_build; svdo_form = 1 builds the Sparse Variational Dropout training form of an
 * arch whose prune method is svdo (train/prune.h): per pruned weight a "<w>.ls2" parameter,
 * the local reparameterisation branch, and the KL terms added to the loss. */
int nas_net_build_form(const char *arch_json, const char *source, int max_batch, uint64_t seed,
                       int svdo_form, nas_net **out, nas_err *e);

/* The pieces of nas_net_build that other network builders (the DNAS supernet, nas/dnas_net.c)
 * share. nas_net_add_loss: n->logits set, adds the "labels" input [N] and the mean softmax
 * cross-entropy "loss" (n->labels, n->loss). nas_net_init_params: after nas_graph_alloc,
 * initialises g's parameters named "<prefix>.<part>.<tensor>" as nas_net_build does (w, b
 * with the fan-in of its sibling w, w_ih/w_hh/b_ih/b_hh, BN gamma/beta/mean/var); other state
 * nodes are left unchanged. */
int nas_net_add_loss(nas_net *n, nas_err *e);
void nas_net_init_params(nas_graph *g, uint64_t seed);


#endif
