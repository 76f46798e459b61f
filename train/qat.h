/* train/qat.h: quantisation-aware training (QAT) of a network built by train/net.h.
 *
 * nas_qat_build rewrites a float network's tape into a QAT network (the same nodes, names and
 * values, plus fake-quant nodes, train/ops_quant.c):
 *   - every conv / depthwise conv weight goes through FAKEQUANT (per output channel, symmetric
 *     int8) or ALPHA_BLEND, every dense weight likewise with one scale for the tensor (deploy/
 *     lowers FULLY_CONNECTED per tensor; per channel with cfg->fc_per_channel);
 *   - every quantisation point of train/quant.h (network input, layer outputs after their
 *     fused activation, adds, logits) is followed by an activation FAKEQUANT whose range (a
 *     STATE "<node>.qr") is tracked by an EMA of batch min/max; average pooling and GAP
 *     outputs are fake-quantised again with their input's range (int8 pooling rounds to it).
 *   - every LSTM layer (train/ops_rnn.c, QAT form): w_ih and w_hh fake-quantised with one
 *     symmetric scale per gate block of rows (as deploy/ lowers them), and the cell quantised
 *     inside at the points of the integer LSTM (gate pre-activations int16 2^-12, cell state
 *     int16 power of two, hidden state int8 symmetric) with a ranges STATE "<node>.qr" [6]
 *     initialised from the calibration's internal points (nas_calib sub_lo/sub_hi) and
 *     tracked by EMA. GRU layers are refused (not supported yet);
 *   - a Winograd conv (train/wino.h) also fake-quantises its transformed weights U (int8 per
 *     output channel), its transformed input V and product M (symmetric, with the layer's
 *     wino_bits; ranges tracked like activations, quantisation points of train/quant.h) and,
 *     in a flex layer, its Bt and At tables (int8 with a power-of-two scale).
 * Batch-norm: the convolution weights are fake-quantised before the batch-norm, which stays a
 * normal (training-mode) batch-norm. With per-output-channel symmetric scales this equals
 * fake-quantising the folded weights: q(w*s) = s*q(w) for a per-channel factor s (the scale
 * is max|w*s|/127 = |s|*max|w|/127 and rounding half away from zero is odd-symmetric), so in
 * eval mode the QAT network computes conv(x, q(w_folded)) + b_folded, exactly what deploy/
 * exports after folding (nas_fold_bn + nas_q_weights), up to float rounding.
 * nas_qat_export copies the trained weights back into a network of the same architecture and
 * returns the learned ranges as a nas_calib, so nas_lower produces the int8 graph the QAT
 * network evaluated.
 * Ownership: nas_qat owns its QAT network (nas_qat_free, NULL-safe); the source network is
 * only read by nas_qat_build. */
#ifndef NAS_TRAIN_QAT_H
#define NAS_TRAIN_QAT_H

#include <cjson/cJSON.h>

#include "train/net.h"
#include "train/quant.h"
#include "train/trainer.h"

enum nas_qat_mode {
  NAS_QAT_NONE = 0,  /* no QAT */
  NAS_QAT_STE = 1,   /* fake quantisation with the straight-through estimator */
  NAS_QAT_ALPHA = 2  /* alpha-blending of the weights (Liu and Mattina 2019) */
};

typedef struct nas_qat_cfg {
  int mode;            /* enum nas_qat_mode (NAS_QAT_STE) */
  float ema_decay;     /* EMA decay of the activation ranges (0.99) */
  int fc_per_channel;  /* 1: dense weights per output channel (0: per tensor, deploy's default) */
  float alpha_ramp;    /* alpha mode: share of the QAT steps over which alpha rises 0 -> 1 (0.8) */
  int calib_samples;   /* training samples for the initial ranges (min/max calibration; 1000) */
  int epoch_offset;    /* added to the epoch numbers passed to the progress callback (0) */
  int epochs_total;    /* epochs reported as the total to the progress callback (0: QAT's) */
} nas_qat_cfg;

typedef struct nas_qat {
  nas_net *net;        /* the QAT network (owned) */
  int mode;            /* enum nas_qat_mode */
  int src_n;           /* nodes of the source network */
  int *map;            /* [src_n] source node -> QAT node with the same value (-1: none) */
  int *range;          /* [src_n] quantisation point -> its range STATE in the QAT net (-1) */
  int *cell;           /* [src_n] LSTM node -> its cell ranges STATE [6] (h lo, hi, set, c lo,
                          hi, set) in the QAT net (-1) */
  int alpha;           /* node id of the alpha STATE (-1 unless alpha mode) */
  float ramp;          /* alpha_ramp of the configuration */
} nas_qat;

void nas_qat_cfg_default(nas_qat_cfg *c);
/* "ste" / "alpha" -> enum; NAS_EINVAL naming the value otherwise. */
int nas_qat_mode_parse(const char *name, int *mode, nas_err *e);
const char *nas_qat_mode_name(int mode); /* "none", "ste", "alpha" */

/* Builds the QAT network of src (values copied; ranges not yet initialised: the first training
 * batch sets them unless nas_qat_set_ranges is called). */
int nas_qat_build(const nas_net *src, const nas_qat_cfg *cfg, nas_qat **out, nas_err *e);
void nas_qat_free(nas_qat *q); /* NULL-safe */

/* Initial ranges from a calibration of the source network (c->n must be src_n; with LSTM
 * layers it must hold their internal points, as nas_calibrate's does). */
int nas_qat_set_ranges(nas_qat *q, const nas_calib *c, nas_err *e);
/* Sets alpha (alpha mode; no effect otherwise). */
void nas_qat_set_alpha(nas_qat *q, float alpha);
/* The alpha schedule: 1 - (1 - step/(ramp*total))^3 while step < ramp*total, then 1. */
float nas_qat_alpha_at(long step, long total, float ramp);

/* Copies the QAT network's parameters and state into dst (built from the same architecture
 * as the source) and fills c with the learned ranges at dst's quantisation points (and the
 * LSTM cells' h and c ranges as c's internal points). */
int nas_qat_export(const nas_qat *q, nas_net *dst, nas_calib *c, nas_err *e);

/* The whole QAT phase on net (float-trained or freshly initialised): builds the QAT network,
 * initialises its ranges by min/max calibration on d->train, trains it with cfg (in alpha
 * mode alpha follows nas_qat_alpha_at over the phase's steps and ends at 1), and exports the
 * result into net and c (c is the caller's, free with nas_calib_free). r reports the QAT
 * network's (fake-quantised) accuracies. */
int nas_qat_run(nas_net *net, const nas_data *d, const nas_qat_cfg *qc, const nas_train_cfg *cfg,
                nas_train_result *r, nas_calib *c, nas_err *e);

/* Ranges as JSON: {"<node name>": [lo, hi], ...} over the quantisation points of net, plus
 * "<node name>:<point>": [lo, hi] for the internal points of its recurrent nodes when c has
 * them (LSTM "h", "c"; GRU the point names of train/quant.h). */
cJSON *nas_qat_ranges_to_json(const nas_net *net, const nas_calib *c);
/* The reverse; every quantisation point (and recurrent internal point) of net must be present
 * with two finite numbers lo <= hi, and no other name may appear (errors name the entry). */
int nas_qat_ranges_from_json(const nas_net *net, const cJSON *j, nas_calib *c, nas_err *e);

#endif
