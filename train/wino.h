/* train/wino.h: the Winograd convolution transforms and the quantisation rules of the
 * Winograd-aware layers, shared by training (train/ops_wino.c, train/qat.c), the lowering and
 * the host int8 kernels (deploy/). See docs/winograd.md.
 *
 * Tiles (Lavin and Gray 2016; Cook-Toom interpolation points): F(2x2,3x3) with points
 * {0, 1, -1, inf} (input tile 4x4) and F(4x4,3x3) with {0, 1, -1, 2, -2, inf} (6x6). For one
 * output tile Y [m,m] of a 3x3 correlation y[i][j] = sum_{a,b} d[i+a][j+b] g[a][b] of an input
 * tile d [alpha,alpha] (alpha = m + 2):
 *     Y = At * ((G g G^T) (.) (Bt d Bt^T)) * At^T        ((.) element-wise)
 * Bt and At are integer matrices; G has the common denominator gden, so the tables hold
 * G * gden (integers) and G = g_num / gden. tests/test_winograd.c checks the identity in exact
 * rational arithmetic and derives the tables from the points.
 *
 * Quantisation of a Winograd-aware layer (int8 deployment): the layer input (int8 asymmetric,
 * as every activation), the weights (int8 per output channel, as a conv), the transformed
 * weights U = G g G^T (int8 symmetric per output channel: NAS_WINO_UBITS, scale widened by
 * NAS_WINO_UWIDE), the transformed
 * input V = Bt d Bt^T and the product M = sum over input channels of U (.) V (both symmetric
 * per tensor with `bits` bits, 8..16: scale nas_wino_sym_scale of the tracked range), the
 * layer output (int8); the output transform is not quantised separately. Flex layers learn
 * At, Bt and G; their At and Bt are int8 tables with a power-of-two scale (nas_wino_pow2), so
 * the int8 kernels apply them in integer arithmetic (At's magnitude limit nas_wino_alim keeps
 * the output transform within int32); G only feeds the pre-transformed weights (computed
 * offline), so it stays float. */
#ifndef NAS_TRAIN_WINO_H
#define NAS_TRAIN_WINO_H

#include <stdint.h>

#define NAS_WINO_UBITS 8   /* bits of the transformed weights U (int8 per output channel) */
#define NAS_WINO_TBITS 8   /* bits of a flex layer's At and Bt tables */
#define NAS_WINO_MAXA 6    /* largest input tile (F4) */
/* U's scale is max|U| / 127 times this: G g G^T of int8 weights lies on a lattice of 1/gden^2
 * (and, when the channel's largest value is a corner tap, exactly on quarter steps of the
 * max-abs scale), so about a quarter of its values would be exactly halfway between two
 * steps, where float rounding in training and integer rounding in the kernels part ways.
 * With the scale widened by 1025/1024 no value of a static layer is halfway (wmax <= 73152),
 * at the cost of 0.1% of the range. */
#define NAS_WINO_UWIDE (1025.0 / 1024.0)

typedef struct nas_wino_tf {
  int m;          /* output tile (2 or 4) */
  int a;          /* input tile alpha = m + 2 */
  const int *bt;  /* [a][a] Bt, integers */
  const int *g;   /* [a][3] G * gden, integers */
  int gden;       /* G's common denominator */
  const int *at;  /* [m][a] At, integers */
} nas_wino_tf;

/* The transforms of output tile m (2 or 4); NULL for any other m. */
const nas_wino_tf *nas_wino_tf_get(int m);

/* Float copies into bt [a*a], g [a*3], at [m*a] (any of them may be NULL). */
void nas_wino_tf_float(const nas_wino_tf *t, float *bt, float *g, float *at);

/* Largest magnitude of a `bits`-bit symmetric integer: 2^(bits-1) - 1. */
static inline int32_t nas_wino_qmax(int bits) { return (int32_t)((1L << (bits - 1)) - 1); }

/* Symmetric scale of a tensor with range [lo, hi] at `bits` bits: max(|lo|, |hi|) / qmax
 * (1 / qmax for an empty range). */
float nas_wino_sym_scale(float lo, float hi, int bits);

/* Power-of-two quantisation of a table x[n]: the largest exponent f (-30..30) with
 * max|x| * 2^f <= qlim; q[i] = round(x[i] * 2^f) (half away from zero) in -qlim..qlim;
 * returns f (real = q * 2^-f). q may be NULL. */
int nas_wino_pow2(const float *x, int n, int qlim, int8_t *q);

/* Magnitude limit of a flex layer's At table for alpha and `bits`: the output transform
 * At M At^T of a product M with |M| <= qmax(bits) stays below 2^31 when every |At| <= the
 * limit: min(127, floor(sqrt((2^31 - 1) / qmax) / alpha)). */
int nas_wino_alim(int alpha, int bits);

#endif
