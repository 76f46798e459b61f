/* deploy/lower.h: lowers a trained, calibrated float network (train/) to the int8 graph of
 * deploy/graph8.h, and measures the int8 graph's accuracy.
 *
 * Lowering walks the network's tape: conv/dwconv/pwconv (batch-norm folded, train/quant.h)
 * -> CONV_2D / DEPTHWISE_CONV_2D with per-channel int8 weights and int32 biases; fc ->
 * FULLY_CONNECTED (per-tensor int8 weights, as TFLite Micro's int8 kernel expects); add (and
 * mbconv's residual) -> ADD; maxpool/avgpool -> MAX_POOL_2D / AVERAGE_POOL_2D; gap ->
 * AVERAGE_POOL_2D over the whole map + RESHAPE to [1,C]; flatten -> RESHAPE; dropout is
 * dropped; a Winograd conv (algo wino2/wino4) -> WINOGRAD_CONV_2D (deploy/wino8.h: weights,
 * folded bias, a tile scratch tensor, a flex layer's tables). ReLU/ReLU6 (fused into
 * batch-norm or following a conv/fc/add) become the op's fused activation. lstm ->
 * UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite's integer LSTM), gru -> the unrolled cell in builtins
 * (deploy/lower_rnn.c), with the ranges of the calibration's internal cell points
 * (nas_calib.sub_lo/sub_hi).
 * The graph runs one sample (batch 1): input [1,H,W,C] int8, output the logits [1,classes]
 * int8, or with softmax the probabilities (scale 1/256, zero point -128).
 * Ownership: the graph is the caller's (nas_g8_graph_free); net and calibration are read. */
#ifndef NAS_DEPLOY_LOWER_H
#define NAS_DEPLOY_LOWER_H

#include "datasets/dataset.h"
#include "deploy/graph8.h"
#include "train/net.h"
#include "train/quant.h"

typedef struct nas_lower_cfg {
  int softmax;        /* 1: append SOFTMAX after the logits (0) */
  int fc_per_channel; /* 1: per-output-channel FULLY_CONNECTED weights (0: per tensor) */
  int wino_rt;        /* 1: static Winograd layers keep their spatial int8 weights in flash
                         and the runtime transforms them into the arena at every invoke;
                         0: the prepare step stores them pre-transformed (deploy/wino8.h) */
} nas_lower_cfg;

/* Lowers net with the ranges of c (from nas_calibrate on the same net). cfg may be NULL
 * (defaults). The result has passed nas_g8_validate. Errors name the layer. */
int nas_lower(const nas_net *net, const nas_calib *c, const nas_lower_cfg *cfg,
              nas_g8_graph *out, nas_err *e);

/* Calibrates (ccfg may be NULL: min/max over 1000 samples) on calib_ds and lowers. */
int nas_quantize_net(nas_net *net, const nas_dataset *calib_ds, const nas_calib_cfg *ccfg,
                     const nas_lower_cfg *lcfg, nas_g8_graph *out, nas_err *e);

/* Quantises one float sample (the graph input's element count) with the input tensor's
 * scale and zero point. */
void nas_g8_quantize_input(const nas_g8_graph *g, const float *x, int8_t *q);

/* Accuracy of the int8 graph over the first `limit` samples of ds (0: all): every sample is
 * quantised with the input tensor's scale/zero point and run through every operator (as
 * nas_g8_exec_run, plan and prepared operators built once per thread), and its class is the argmax of the int8
 * output (the first of equal values). Samples are shared among OpenMP threads, each with its
 * own arena; the figure does not depend on the thread count. */
int nas_g8_accuracy(const nas_g8_graph *g, const nas_dataset *ds, int limit, double *acc,
                    nas_err *e);

#endif
