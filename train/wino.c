/* train/wino.c: the Winograd transform tables F(2x2,3x3) and F(4x4,3x3) and the quantisation
 * rules of the Winograd-aware layers (see train/wino.h). */
#include "train/wino.h"

#include <math.h>
#include <stddef.h>

/* F(2x2,3x3), points {0, 1, -1, inf}. */
static const int F2_BT[16] = {1, 0, -1, 0,  /**/ 0, 1, 1, 0, /**/ 0, -1, 1, 0, /**/ 0, 1, 0, -1};
static const int F2_G[12] = {2, 0, 0, /**/ 1, 1, 1, /**/ 1, -1, 1, /**/ 0, 0, 2}; /* / 2 */
static const int F2_AT[8] = {1, 1, 1, 0, /**/ 0, 1, -1, -1};

/* F(4x4,3x3), points {0, 1, -1, 2, -2, inf}. */
static const int F4_BT[36] = {4, 0, -5, 0,  1, 0, /**/ 0, -4, -4, 1, 1, 0, /**/ 0, 4, -4, -1, 1, 0,
                              0, -2, -1, 2, 1, 0, /**/ 0, 2, -1, -2, 1, 0, /**/ 0, 4, 0, -5, 0, 1};
static const int F4_G[18] = {6, 0, 0,  /**/ -4, -4, -4, /**/ -4, 4, -4,
                             1, 2, 4,  /**/ 1,  -2, 4,  /**/ 0,  0, 24}; /* / 24 */
static const int F4_AT[24] = {1, 1, 1, 1, 1, 0, /**/ 0, 1, -1, 2, -2, 0,
                              0, 1, 1, 4, 4, 0, /**/ 0, 1, -1, 8, -8, 1};

static const nas_wino_tf TF[2] = {{2, 4, F2_BT, F2_G, 2, F2_AT}, {4, 6, F4_BT, F4_G, 24, F4_AT}};

const nas_wino_tf *nas_wino_tf_get(int m) {
  return m == 2 ? &TF[0] : m == 4 ? &TF[1] : NULL;
}

void nas_wino_tf_float(const nas_wino_tf *t, float *bt, float *g, float *at) {
  for (int i = 0; bt && i < t->a * t->a; i++) bt[i] = (float)t->bt[i];
  for (int i = 0; g && i < t->a * 3; i++) g[i] = (float)((double)t->g[i] / t->gden);
  for (int i = 0; at && i < t->m * t->a; i++) at[i] = (float)t->at[i];
}

float nas_wino_sym_scale(float lo, float hi, int bits) {
  double m = fabs((double)lo) > fabs((double)hi) ? fabs((double)lo) : fabs((double)hi);
  if (!(m > 0)) m = 1;
  return (float)(m / (double)nas_wino_qmax(bits));
}

int nas_wino_pow2(const float *x, int n, int qlim, int8_t *q) {
  double m = 0;
  for (int i = 0; i < n; i++)
    if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
  int f = 30;
  if (m > 0) {
    f = (int)floor(log2((double)qlim / m));
    while (f < 30 && ldexp(m, f + 1) <= qlim) f++; /* log2 may round just below an integer */
    while (f > -30 && ldexp(m, f) > qlim) f--;
  }
  if (f > 30) f = 30;
  if (f < -30) f = -30;
  for (int i = 0; q && i < n; i++) {
    double v = round(ldexp((double)x[i], f)); /* half away from zero */
    q[i] = (int8_t)(v > qlim ? qlim : v < -qlim ? -qlim : v);
  }
  return f;
}

int nas_wino_alim(int alpha, int bits) {
  double l = floor(sqrt(2147483647.0 / (double)nas_wino_qmax(bits)) / alpha);
  return l > 127 ? 127 : l < 1 ? 1 : (int)l;
}
