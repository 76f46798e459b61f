/* deploy/wino8.h: the int8 side of the Winograd-aware layers (train/wino.h, docs/winograd.md):
 * the constants the lowering derives from a trained layer, the static weight transform the
 * prepare step (prep8.c) and the run-time transform of the MCU runtime share bit for bit, the
 * host's kernel for WINOGRAD_CONV_2D (deploy/kernels_wino.c), and the rewrite of static
 * Winograd layers as standard CONV_2D for runtimes that have no Winograd operator (TFLite).
 *
 * Arithmetic of a lowered layer (what the QAT network computes in evaluation): batch-norm is
 * folded into the weights and bias (per output channel k: s_k = gamma/sqrt(var+eps)); the
 * folded weights are int8 per output channel (scale s_w[k]); U = G g G^T is int8 per output
 * channel with the max-abs scale widened by NAS_WINO_UWIDE: for a static layer Gn g Gn^T
 * (Gn = gden * G integer; wmax[k] the channel's largest magnitude) is requantised by the
 * multiplier 127 / (wmax[k] * NAS_WINO_UWIDE) (runtime/nasrt_wfixed.h, one rounding; scale
 * s_w[k] * wmax[k] * NAS_WINO_UWIDE / (gden^2 * 127)); for a flex layer (G learned, float) U is
 * computed in double from the int8 weights; V's scale is the symmetric scale of
 * its calibrated or learned range; M's scale is |s_k| times that of its range (the range was
 * taken before the batch-norm); the output transform's accumulator scale is M's times 2^-2fa
 * (flex At table exponent; 0 for static); the bias is the folded bias at 2^-bshift of that
 * scale (bshift 16, less when a bias would not fit int32 at 2^-16).
 * Ownership: nas_wino_lowered owns its arrays (nas_wino_lowered_free, NULL-safe); graphs are
 * read; nas_g8_wino_as_conv fills a new graph the caller frees (nas_g8_graph_free). */
#ifndef NAS_DEPLOY_WINO8_H
#define NAS_DEPLOY_WINO8_H

#include <stddef.h>
#include <stdint.h>

#include "deploy/graph8.h"
#include "train/graph.h"
#include "train/quant.h"
#include "train/wino.h"

/* The constants of one Winograd layer, from its WINO_OUT node (and the batch-norm bn fused
 * after it, -1 for none). */
typedef struct nas_wino_lowered {
  int m, bits, flex;      /* tile, bits of V and M, 1 for a flex layer */
  int ci, co;             /* channels */
  int x_node;             /* the layer's input node (WINO_IN's input) */
  int w_node;             /* the spatial weights' node (names the weight tensor) */
  int8_t *wq;             /* static: folded int8 weights [co][3][3][ci]; flex: U [co][P][ci] */
  float *wscale;          /* [co] their scales */
  int32_t *bias;          /* [co] folded bias at bscale */
  float *bscale;          /* [co] the output transform's accumulator scale */
  float vscale;           /* scale of V */
  int8_t tables[NAS_WINO_MAXA * NAS_WINO_MAXA + 4 * NAS_WINO_MAXA]; /* flex: Bt then At */
  int fb, fa;             /* flex: their power-of-two exponents */
  int bshift;             /* bias fraction bits (bscale = accumulator scale * 2^-bshift) */
} nas_wino_lowered;

int nas_wino_lower_consts(const nas_graph *fg, int out_node, int bn, const nas_calib *c,
                          nas_wino_lowered *r, nas_err *e);
void nas_wino_lowered_free(nas_wino_lowered *r);

/* Static weight transform: for int8 weights w [co][3][3][ci] of tile m, wmax[k] (the largest
 * |Gn w_k Gn^T|), the requantisation u_mult/u_shift [co] and, when u is not NULL, U
 * [co][P][ci4] (ci4 = ci rounded up to 4, zero padded) as the runtime's run-time transform
 * computes it. */
void nas_wino_static_u(int m, const int8_t *w, int co, int ci, int32_t *wmax, int32_t *u_mult,
                       int8_t *u_shift, int8_t *u);

/* Host kernel of a prepared WINOGRAD_CONV_2D (deploy/kernels_wino.c): generic integer
 * transforms over all tiles at once, the runtime's arithmetic; scratch of
 * nas_g8_wino_host_scratch bytes (64-byte aligned). */
void nas_g8_wino_run(const nas_g8_prep_op *pp, const int8_t *in, int8_t *out, void *scratch);
size_t nas_g8_wino_host_scratch(const nasrt_wino_p *c);

/* Copies g with every static WINOGRAD_CONV_2D written as the CONV_2D a standard runtime runs
 * (same int8 weights; the bias requantised to input scale * weight scale; the scratch dropped):
 * a standard runtime computes it directly, so its int8 result differs from the Winograd-aware
 * one. A flex layer is refused naming its layer (its arithmetic is not a convolution).
 * *converted gets the number of layers rewritten (may be NULL). */
int nas_g8_wino_as_conv(const nas_g8_graph *g, nas_g8_graph *out, int *converted, nas_err *e);

/* Number of WINOGRAD_CONV_2D operators of g, and of those flex (either may be NULL). */
int nas_g8_wino_count(const nas_g8_graph *g, int *flex);

#endif
