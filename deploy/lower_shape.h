/* deploy/lower_shape.h: the int8 graph of a network without data, for pricing.
 *
 * nas_lower_structure runs the real lowering (deploy/lower.c, nas_lower) on a built network,
 * trained or freshly initialised, with a synthetic calibration: every quantisation point
 * (train/quant.h, nas_quant_points) and every internal point of a recurrent cell gets the range
 * [-1, 1]. Which tensors and operators the
 * graph has, their shapes and their order depend only on the network's structure, never on
 * the weights or the ranges, so this graph plans to exactly the arena of the graph that
 * `nas export` lowers from the trained, calibrated network (same nas_lower_cfg). Only its
 * numbers (scales, quantised weights) are meaningless.
 * Ownership: the graph is the caller's (nas_g8_graph_free); net is only read. */
#ifndef NAS_DEPLOY_LOWER_SHAPE_H
#define NAS_DEPLOY_LOWER_SHAPE_H

#include "deploy/lower.h"

/* Index of the first arch layer that nas_lower refuses, or -1 when every layer lowers to
 * int8 (now always: lstm and gru lower too). */
int nas_lower_unsupported_layer(const nas_net *net);

/* The int8 graph of net's structure (see above). cfg may be NULL (defaults, as nas_lower).
 * Errors are nas_lower's ("layer 3 (gru): 80 steps: at most 64 are supported"). */
int nas_lower_structure(const nas_net *net, const nas_lower_cfg *cfg, nas_g8_graph *out,
                        nas_err *e);

#endif
