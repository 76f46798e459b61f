/* train/quant.h: post-training quantisation of a trained float network: batch-norm folding,
 * calibration of activation ranges, and the TFLite int8 parameter choices (DESIGN.md
 * "Quantisation"): activations int8 asymmetric per tensor, weights int8 symmetric per output
 * channel (zero point 0, -127..127), biases int32 with scale input_scale * weight_scale.
 *
 * Quantisation points (where calibration records a range, one per graph node id): the network
 * input, every layer output after its fused activation (the output of a batch-norm, of a
 * RELU/RELU6, or of a conv/dense/add that no batch-norm or activation follows), the add
 * outputs and the logits; in a Winograd conv also the transformed input V (WINO_IN) and the
 * product M (WINO_MUL), which the int8 graph quantises symmetrically (train/wino.h), and its
 * output (WINO_OUT) as a conv's. Pooling, GAP, reshape and dropout keep their input's quantisation
 * (as TFLite requires), so they are not points.
 * Ownership: nas_calib owns its arrays (nas_calib_free, NULL-safe); the net is only read
 * (calibration runs it in eval mode and restores its training flag). */
#ifndef NAS_TRAIN_QUANT_H
#define NAS_TRAIN_QUANT_H

#include <stdint.h>

#include "datasets/dataset.h"
#include "train/net.h"

/* ---- batch-norm folding ------------------------------------------------------------------ */
/* Folds the eval-mode batch-norm node `bn` (may be -1: none) into the conv or depthwise conv
 * node `conv` (or a Winograd conv's WINO_OUT node, whose spatial weights are folded): w' = w * gamma/sqrt(var+eps) per output channel, b' = beta - mean*gamma/
 * sqrt(var+eps) + b*gamma/sqrt(var+eps) (b = 0 when the conv has no bias). w_out has the
 * conv weight's element count (conv [Cout,KH,KW,Cin], depthwise [KH,KW,C]), b_out one value
 * per output channel. Without bn the weights are copied and the bias is the conv's (or 0).
 * Errors name the nodes when they are not a conv and its batch-norm. */
int nas_fold_bn(const nas_graph *g, int conv, int bn, float *w_out, float *b_out, nas_err *e);

/* ---- calibration ------------------------------------------------------------------------- */
enum nas_calib_method {
  NAS_CALIB_MINMAX = 0,     /* the observed minimum and maximum */
  NAS_CALIB_PERCENTILE = 1  /* the p and 1-p quantiles of the observed values (histogram) */
};

typedef struct nas_calib_cfg {
  int method;        /* enum nas_calib_method (NAS_CALIB_MINMAX) */
  double percentile; /* for NAS_CALIB_PERCENTILE: upper quantile in percent (99.99) */
  int samples;       /* training samples used, the first ones of the dataset (1000; 0: all) */
  int bins;          /* histogram bins per tensor (2048) */
} nas_calib_cfg;

void nas_calib_cfg_default(nas_calib_cfg *c);
/* "minmax" / "percentile" -> enum; NAS_EINVAL naming the value otherwise. */
int nas_calib_method_parse(const char *name, int *method, nas_err *e);

typedef struct nas_calib {
  int n;               /* graph nodes (= net->g->n) */
  unsigned char *point;/* [n] 1 when the node is a quantisation point */
  float *lo, *hi;      /* [n] calibrated range (includes 0) at quantisation points */
  int method;          /* enum nas_calib_method used */
  int samples;         /* samples actually used */
  int nsub;            /* internal points of the recurrent nodes (nas_rnn_npoints each) */
  int *sub;            /* [n] index of node i's first internal point, -1 (NULL when nsub 0) */
  float *sub_lo, *sub_hi; /* [nsub] their ranges (include 0) */
} nas_calib;

/* Internal quantisation points of a recurrent node, over every step and sample (the values the
 * int8 lowering quantises inside the cell). LSTM: the hidden state h (all steps, also when the
 * layer returns the last one only) and the cell state c (int16, power-of-two scale from
 * max |c|). GRU (unrolled: r = s(ar), z = s(az), n = tanh(an), h' = n + z (h - n)):
 * gxr, gxz, gxn the input projections (biases b_ir+b_hr, b_iz+b_hz, b_in), ghr, ghz, ghn the
 * recurrent ones (ghn with b_hn; from step 1 on), ar, az the gate sums (step 1 on),
 * m = r * ghn, an = gxn + m, d = h - n (step 1 on), e = z * d (step 0: z * n, h = n - e), and h. */
enum { NAS_LSTM_P_H = 0, NAS_LSTM_P_C = 1, NAS_LSTM_NPOINTS = 2 };
enum { NAS_GRU_P_GXR = 0, NAS_GRU_P_GXZ, NAS_GRU_P_GXN, NAS_GRU_P_GHR, NAS_GRU_P_GHZ,
       NAS_GRU_P_GHN, NAS_GRU_P_AR, NAS_GRU_P_AZ, NAS_GRU_P_M, NAS_GRU_P_AN, NAS_GRU_P_D,
       NAS_GRU_P_E, NAS_GRU_P_H, NAS_GRU_NPOINTS };
/* Points of an op (enum nas_op): 2 for LSTM, 13 for GRU, 0 otherwise. */
int nas_rnn_npoints(int op);
/* After a forward pass of n samples, recomputes recurrent node `node` step by step in float
 * and writes point k's values to vals[k] (room for n*T*H floats each), their number to cnt[k].
 * NAS_ENOMEM on allocation failure. */
int nas_rnn_point_values(const nas_graph *g, int node, int n, float *const *vals, size_t *cnt);
/* Allocates c->sub / sub_lo / sub_hi for net's recurrent nodes (ranges 0); NAS_ENOMEM. */
int nas_calib_alloc_sub(const nas_graph *g, nas_calib *c);

/* Marks the quantisation points of net into point[0..g->n) (see the header comment). */
void nas_quant_points(const nas_net *net, unsigned char *point);

/* Runs net in eval mode over the first cfg->samples samples of ds and records the range of
 * every quantisation point with cfg->method. ds must match the net's input shape. */
int nas_calibrate(nas_net *net, const nas_dataset *ds, const nas_calib_cfg *cfg, nas_calib *c,
                  nas_err *e);
void nas_calib_free(nas_calib *c); /* NULL-safe */

/* ---- int8 parameters ---------------------------------------------------------------------- */
/* Asymmetric int8 scale and zero point for the real range [lo,hi] widened to include 0
 * (TFLite's choice: scale = (hi-lo)/255, zero point = round(-128 - lo/scale) in -128..127).
 * The scale is always positive (an empty range [0,0] is treated as [0,1]). */
void nas_q_choose(float lo, float hi, float *scale, int32_t *zero_point);
/* Symmetric per-channel int8 weights: channel c's elements are w[c*cstride + k*kstride] for
 * k < per; scale[c] = max|w|/127 (1 for an all-zero channel), q = round(w/scale) in -127..127.
 * q uses the same layout as w. */
void nas_q_weights(const float *w, int channels, int per, int cstride, int kstride, int8_t *q,
                   float *scale);
/* int32 bias: q[c] = round(b[c] / (in_scale * w_scale[c])), saturated. */
void nas_q_bias(const float *b, int channels, float in_scale, const float *w_scale, int32_t *q);
/* Float to int8 with scale/zero point, rounded half away from zero and saturated. */
int8_t nas_q_int8(float x, float scale, int32_t zero_point);

#endif
