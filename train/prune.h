/* train/prune.h: pruning of a network built by train/net.h, configured by the arch JSON
 * (top-level "prune" object and per-layer "sparsity" / "channels" fields, docs/formats.md).
 *
 * Unstructured (per weight), on the weights of conv, pwconv, dsconv's pointwise part,
 * mbconv's expand and project convolutions and fc (depthwise weights stay dense):
 *   - magnitude: a STATE mask "<w>.mask" of the weight's shape multiplies the weight
 *     (MASK_MUL, so the gradient of a pruned weight is zero); during training the fraction of
 *     zeros rises from 0 to the target along the cubic schedule of Zhu & Gupta (2017),
 *     s(t) = S (1 - (1 - (t - t0) / (t1 - t0))^3) for t0 <= t <= t1 (t0 = begin, t1 = end as
 *     fractions of the training steps), recomputed every `every` steps from the smallest
 *     magnitudes, per layer or over all pruned layers at once (scope "global");
 *   - svdo: Sparse Variational Dropout (Molchanov et al. 2017). Training uses a separate
 *     form of the network (nas_prune_svdo_build: per-weight log sigma2 "<w>.ls2", the local
 *     reparameterisation trick and the KL term, train/ops_svdo.c); afterwards the weights with
 *     log alpha >= threshold are pruned and the result is written into the deploy form (the
 *     same masks as magnitude pruning), optionally topped up by magnitude to at least
 *     "sparsity" zeros per layer.
 * Structured (whole output channels) by the L1 penalty on batch-norm scales of network
 * slimming (Liu et al. 2017): it needs no extra parameters, every conv of the engine's spaces
 * has a batch-norm, and a channel whose BN gamma and beta are both masked to 0 outputs exactly
 * 0 after any of the engine's activations, so removing it (and its consumer's input slice)
 * changes no output. A STATE "<part>.bn.cmask" [C] masks gamma and beta of the producing
 * layer (and of depthwise layers that follow it channel for channel); the penalty
 * l1 * sign(gamma) is added to gamma's gradient until `channels_at` of the training, when the
 * `channels` fraction of each eligible layer's channels with the smallest |gamma| is masked
 * (at least one channel stays). nas_prune_compact then rewrites the architecture with the
 * smaller widths and copies the surviving weights: the lowered graph, its MACs, flash and
 * SRAM shrink. A layer's channels are eligible when it is a conv or pwconv with a
 * batch-norm or a dsconv, no add refers to it, and the next layer that reads its channels
 * (after depthwise convolutions with a batch-norm, pooling, dropout, gap and flatten) is a
 * conv, pwconv, dsconv or fc.
 *
 * Invariant: after every optimiser step, at the end of training and after nas_prune_bake,
 * every masked parameter holds exact zeros where its mask is 0, so readers of the weights
 * (lowering, folding, exporters) may read the parameter behind the mask (nas_prune_source).
 * Ownership: nas_prune_run is opaque (nas_prune_run_free, NULL-safe); networks are the
 * caller's. */
#ifndef NAS_TRAIN_PRUNE_H
#define NAS_TRAIN_PRUNE_H

#include "core/error.h"
#include "train/graph.h"

enum nas_prune_method {
  NAS_PRUNE_NONE = 0,      /* no unstructured pruning */
  NAS_PRUNE_MAGNITUDE = 1, /* gradual magnitude pruning */
  NAS_PRUNE_SVDO = 2       /* sparse variational dropout */
};

typedef struct nas_prune_cfg {
  int method;          /* enum nas_prune_method ("none") */
  double sparsity;     /* magnitude: target fraction of zero weights per pruned layer (0.5);
                          svdo: the least fraction pruned per layer (0: log alpha alone) */
  int global;          /* magnitude: 1 = one magnitude threshold over every pruned layer */
  double begin, end;   /* magnitude schedule window, fractions of the training steps (0, 0.75) */
  int every;           /* steps between mask updates (0: every 1/50 of the steps) */
  double threshold;    /* svdo: prune where log alpha >= threshold (3) */
  double kl_weight;    /* svdo: weight of the KL term, per training sample (1) */
  double kl_warmup;    /* svdo: fraction of the steps over which the KL weight rises from 0 (0.3) */
  double channels;     /* structured: fraction of each eligible layer's channels removed (0) */
  double l1;           /* structured: L1 penalty on batch-norm gammas (1e-4) */
  double channels_at;  /* structured: fraction of the steps at which channels are chosen (0.5) */
} nas_prune_cfg;

void nas_prune_cfg_default(nas_prune_cfg *c);
const char *nas_prune_method_name(int method); /* "none", "magnitude", "svdo" */
/* 1 when c asks for any pruning (unstructured or structured). */
int nas_prune_active(const nas_prune_cfg *c);

/* Parses the arch's "prune" object o (NULL: defaults) into c and writes every field with its
 * settled value into canon (a cJSON object; may be NULL). Unknown fields and out-of-range
 * values are errors naming src and the field ("arch: prune.sparsity: 1.5 is out of range"). */
struct cJSON;
int nas_prune_cfg_parse(const struct cJSON *o, const char *src, nas_prune_cfg *c,
                        struct cJSON *canon, nas_err *e);
/* Parses the `nas train --prune` text: either a JSON object (as the arch field) or
 * "key=value,key=value" with the same keys (method=magnitude,sparsity=0.8,scope=global). The
 * result replaces the arch's "prune" object: returns the canonical JSON object text in *out
 * (caller frees). NAS_EUSAGE naming the key on errors. */
int nas_prune_spec_parse(const char *spec, char **out, nas_err *e);
/* Returns arch JSON text arch with its "prune" object replaced by the JSON object text
 * prune_json (caller frees *out). */
int nas_prune_arch_with(const char *arch, const char *prune_json, char **out, nas_err *e);

/* ---- the channel plan (used by train/net.c while building) ------------------------------- */

/* For the layers array of an arch (cJSON array) and the settled default fraction: own[i] = 1
 * when layer i's output channels get a channel mask, follow[i] = the producing layer whose
 * mask also masks layer i's leading depthwise batch-norm (-1: none). frac[i] receives the
 * fraction of layer i (its "channels" field, else def). A layer whose own "channels" field is
 * > 0 but which is not eligible is an error naming it and the reason. */
int nas_prune_channel_plan(const struct cJSON *layers, double def, int *own, int *follow,
                           double *frac, const char *src, nas_err *e);

/* ---- masks on a graph --------------------------------------------------------------------- */

/* Sets every "*.mask" / "*.cmask" STATE to 1 and every "*.ls2" PARAM to -10 (the SVDO
 * initialisation of log sigma2). */
void nas_prune_init(nas_graph *g);
/* 1 when g has a pruning mask. */
int nas_prune_has_masks(const nas_graph *g);
/* Multiplies every masked parameter by its mask (the invariant above). */
void nas_prune_bake(nas_graph *g);
/* The node whose value the weight reader should use for node id: the parameter behind a
 * pruning MASK_MUL (in[0] a PARAM, in[1] a "*.mask"/"*.cmask" STATE), else id itself. */
int nas_prune_source(const nas_graph *g, int id);
/* 1 when node id is a pruning MASK_MUL (lowering and exporters skip it). */
int nas_prune_is_mask_op(const nas_graph *g, int id);

/* Zero and total counts over the unstructured-prunable weights of net (those with a
 * "<w>.mask"), and of every conv/fc weight (dense ones included). */
struct nas_net;
typedef struct nas_prune_stats {
  long long masked_zero, masked_total; /* zeros / elements of the weights with a mask */
  long long weights_zero, weights_total; /* over every conv, depthwise and fc weight */
  int channels_removed, channels_total; /* channel-masked channels (cmask 0) / eligible */
} nas_prune_stats;
void nas_prune_stats_of(const struct nas_net *net, nas_prune_stats *s);

/* ---- training hooks (train/trainer.c) ----------------------------------------------------- */

typedef struct nas_prune_run nas_prune_run;

/* Prepares the schedule of net->prune over total_steps optimiser steps on net's graph (which
 * may be the SVDO training form; svdo_train = 1 then). *out is NULL when nothing is to be
 * done but masks must still be kept (the caller bakes after each step if the graph has
 * masks). */
int nas_prune_run_begin(const struct nas_net *net, long total_steps, int train_samples,
                        int svdo_train, nas_prune_run **out, nas_err *e);
/* After backward, before the optimiser step t (0-based): the L1 subgradient on the
 * batch-norm gammas of eligible layers (until channels are chosen) and the KL scale. */
void nas_prune_run_pre_step(nas_prune_run *r, long step);
/* After the optimiser step t: mask updates on the schedule, the channel choice at
 * channels_at, then nas_prune_bake. */
int nas_prune_run_post_step(nas_prune_run *r, long step, nas_err *e);
/* At the end of training: masks at their final targets, channels chosen, baked. */
int nas_prune_run_end(nas_prune_run *r, nas_err *e);
void nas_prune_run_free(nas_prune_run *r);

/* Target sparsity of the schedule at step (0-based) of total: 0 before begin, S after end. */
double nas_prune_schedule(const nas_prune_cfg *c, double target, long step, long total);

/* Sets the masks of the magnitude-pruned layers of net so that each has its target
 * fraction of zeros (layer scope) or all of them together have the global target, from the
 * current magnitudes; bakes. Used for pricing an untrained candidate and by the schedule. */
int nas_prune_apply_targets(const struct nas_net *net, double fraction_of_target, nas_err *e);

/* ---- SVDO forms --------------------------------------------------------------------------- */

/* Builds the SVDO training form of net's architecture (same names; "<w>.ls2" added, KL in
 * the loss) for max_batch and copies every tensor the two share from net. */
int nas_prune_svdo_build(const struct nas_net *net, int max_batch, uint64_t seed,
                         struct nas_net **out, nas_err *e);
/* Writes the trained SVDO form t into the deploy form net: weights theta with log alpha >=
 * threshold (and, up to cfg->sparsity, the smallest remaining magnitudes) set to 0 and
 * masked; every other shared tensor copied. */
int nas_prune_svdo_export(const struct nas_net *t, struct nas_net *net, nas_err *e);

/* ---- structured compaction ---------------------------------------------------------------- */

/* The network without its masked channels: arch rewritten with the smaller widths ("out" of
 * each producing layer = its kept channels, prune.channels 0 so they are not pruned again),
 * built for max_batch, and every tensor copied from net with the removed channels left out
 * (weights, biases, batch-norm statistics, masks). *out is a network of its own; when net has
 * no removed channel it is a plain copy. */
int nas_prune_compact(const struct nas_net *net, int max_batch, struct nas_net **out,
                      nas_err *e);

/* The architecture a channel-pruned arch will have after training and compaction: each
 * layer that gets a channel mask keeps C - floor(fraction * C) channels (at least 1), the
 * count choose_channels leaves; "channels" fields and prune.channels become 0. Without channel
 * pruning *out is a copy of arch. Used to price a candidate before it is trained. The text is
 * the caller's. */
int nas_prune_expected_arch(const char *arch, char **out, nas_err *e);

#endif
