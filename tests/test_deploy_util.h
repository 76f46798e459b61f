/* tests/test_deploy_util.h: helpers shared by the deploy tests (test_deploy.c: kernels and
 * planner; test_deploy_models.c: the reference models, the TFLite reader and the Arm NN
 * fixture; test_deploy_armnn.c: layer-by-layer comparison with a live Arm NN). Include after
 * <cmocka.h> and "deploy/graph8.h". Everything here is static inline so that a test file
 * that uses only some helpers compiles warning-free. */
#ifndef NAS_TESTS_TEST_DEPLOY_UTIL_H
#define NAS_TESTS_TEST_DEPLOY_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

/* The four MLPerf Tiny reference models in ../shared/models (see SOURCES.md there). */
#define NMODELS 4
static inline const char *deploy_model_file(int m) {
  static const char *const files[NMODELS] = {"kws_ref_model.tflite", "vww_96_int8.tflite",
                                             "pretrainedResnet_quant.tflite", "ad01_int8.tflite"};
  return files[m];
}


/* No two tensors with intersecting lifetimes overlap; every activation is placed; the peak
 * covers every placement and is at least the largest set of simultaneously live bytes. */
static inline void check_plan(const nas_g8_graph *g) {
  nas_g8_plan p;
  nas_err e = {0};
  assert_int_equal(nas_g8_plan_build(g, &p, &e), NAS_OK);
  size_t maxlive = 0;
  for (int i = 0; i < g->ntensors; i++) {
    const nas_g8_tensor *t = &g->tensors[i];
    if (t->data) {
      assert_true(p.offset[i] < 0);
      continue;
    }
    if (p.offset[i] < 0) continue; /* unused activation */
    assert_true(p.offset[i] % 16 == 0);
    assert_true((size_t)p.offset[i] + nas_g8_numel(t) <= p.peak);
    for (int j = i + 1; j < g->ntensors; j++) {
      if (p.offset[j] < 0 || g->tensors[j].data) continue;
      if (p.last[i] < p.first[j] || p.last[j] < p.first[i]) continue;
      size_t a0 = (size_t)p.offset[i], a1 = a0 + nas_g8_numel(t);
      size_t b0 = (size_t)p.offset[j], b1 = b0 + nas_g8_numel(&g->tensors[j]);
      assert_true(a1 <= b0 || b1 <= a0);
    }
  }
  for (int o = 0; o < g->nops; o++) {
    size_t live = 0;
    for (int i = 0; i < g->ntensors; i++)
      if (p.offset[i] >= 0 && p.first[i] <= o && o <= p.last[i]) live += nas_g8_numel(&g->tensors[i]);
    if (live > maxlive) maxlive = live;
  }
  assert_true(p.peak >= maxlive);
  for (int o = 0; o < g->nops; o++) { /* every op's tensors are live at that op */
    const nas_g8_op *op = &g->ops[o];
    assert_true(p.first[op->out] <= o && o <= p.last[op->out]);
    for (int k = 0; k < op->nin; k++)
      if (op->in[k] >= 0 && !g->tensors[op->in[k]].data)
        assert_true(p.first[op->in[k]] <= o && o <= p.last[op->in[k]]);
  }
  nas_g8_plan_free(&p);
}

/* The reference models' directory (tests/test_util.h test_models_dir) into buf; 1 when all four
 * models can be opened, else 0 with the first missing one's path in missing. */
static inline int models_dir(char *buf, size_t cap, char *missing, size_t mcap) {
  const char *d = test_models_dir();
  size_t l = strlen(d) < cap ? strlen(d) : cap - 1;
  memcpy(buf, d, l);
  buf[l] = 0;
  for (int m = 0; m < NMODELS; m++)
    if (!test_model_path(deploy_model_file(m), missing, mcap)) return 0;
  return 1;
}

/* Skips the current test (tests/test_util.h test_skip) unless the four reference models are
 * present; dir receives their directory. */
#define REQUIRE_MODELS(dir)                                                                      \
  do {                                                                                           \
    char missing_[1100];                                                                         \
    if (!models_dir(dir, sizeof dir, missing_, sizeof missing_))                                 \
      test_skip("reference model %s not found (MLPerf Tiny models: set NAS_MODELS_DIR, see "     \
                "docs/testing.md)", missing_);                                                   \
  } while (0)

static inline uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)sz + 1);
  *n = fread(b, 1, (size_t)sz, f);
  fclose(f);
  return b;
}

/* The input generator shared with make_armnn_fixture.py (seed 0: every byte the zero point;
 * seed s > 0: an LCG, byte = top 8 bits as int8). */
static inline void make_input(int seed, int8_t *x, size_t n, int zp) {
  uint32_t s = (uint32_t)seed;
  for (size_t i = 0; i < n; i++) {
    if (seed == 0) {
      x[i] = (int8_t)zp;
      continue;
    }
    s = s * 1664525u + 1013904223u;
    x[i] = (int8_t)(int)((s >> 24) >= 128 ? (int)(s >> 24) - 256 : (int)(s >> 24));
  }
}

/* An independent recomputation of one operator in double precision: ex[i] receives the exact
 * real-valued quantised result (before rounding and clamping) of element i of operator op's
 * output from the int8 inputs in act (act[t] for activations, else the tensor's data); NAN for
 * operators without a closed form here (RESHAPE, MAX_POOL_2D, SOFTMAX, QUANTIZE). slack[i]
 * receives how far beyond 0.5 TFLite's fixed-point requantisation may land from ex[i]:
 * 0.5 * 2^min(0, shift) for the double rounding (SRDHM rounds to an integer that the rounding
 * divide by 2^-shift then rounds again), plus 1e-6 (1e-3 for ADD, whose inputs are rescaled
 * at 2^-20); AVERAGE_POOL_2D averages the raw int8 values, rounded once (slack 1e-9). */
static inline void deploy_exact_op(const nas_g8_graph *g, const nas_g8_op *op, int8_t *const *act, double *ex,
                     double *slack) {
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const size_t ny = nas_g8_numel(y);
  const int8_t *in = act[op->in[0]] ? act[op->in[0]] : (const int8_t *)x->data;
  const double so = y->scale[0];
  const int zx = x->zero_point[0], zo = y->zero_point[0];
  for (size_t i = 0; i < ny; i++) ex[i] = NAN, slack[i] = 0;
  if (op->kind == NAS_G8_CONV_2D || op->kind == NAS_G8_DEPTHWISE_CONV_2D ||
      op->kind == NAS_G8_FULLY_CONNECTED) {
    const nas_g8_tensor *w = &g->tensors[op->in[1]];
    const int8_t *wd = w->data;
    const int32_t *bias = op->nin > 2 && op->in[2] >= 0 ? g->tensors[op->in[2]].data : NULL;
    const int fc = op->kind == NAS_G8_FULLY_CONNECTED, dw = op->kind == NAS_G8_DEPTHWISE_CONV_2D;
    const int Co = fc ? w->dims[0] : y->dims[3];
    double *mult = malloc(sizeof(double) * (size_t)Co), *sl = malloc(sizeof(double) * (size_t)Co);
    for (int c = 0; c < Co; c++) {
      mult[c] = (double)x->scale[0] * w->scale[w->nq > 1 ? c : 0] / so;
      int32_t q;
      int sh;
      nas_q_quantize_multiplier(mult[c], &q, &sh);
      sl[c] = 0.5 * ldexp(1.0, sh < 0 ? sh : 0) + 1e-6;
    }
    if (fc) {
      const int D = w->dims[1], wz = w->zero_point[0];
      const size_t B = nas_g8_numel(x) / (size_t)D;
      for (size_t b = 0; b < B; b++)
        for (int oc = 0; oc < Co; oc++) {
          int64_t acc = bias ? bias[oc] : 0;
          for (int d = 0; d < D; d++)
            acc += (int64_t)(in[b * (size_t)D + d] - zx) * (wd[(size_t)oc * D + d] - wz);
          ex[b * (size_t)Co + oc] = (double)acc * mult[oc] + zo, slack[b * (size_t)Co + oc] = sl[oc];
        }
    } else {
      const int H = x->dims[1], W = x->dims[2], Ci = x->dims[3], Ho = y->dims[1], Wo = y->dims[2];
      const int Kh = w->dims[1], Kw = w->dims[2], M = dw ? Co / Ci : 1;
      int pt = 0, pl = 0;
      if (op->padding == NAS_G8_PAD_SAME) {
        pt = ((Ho - 1) * op->stride_h + (Kh - 1) * op->dil_h + 1 - H) / 2;
        pl = ((Wo - 1) * op->stride_w + (Kw - 1) * op->dil_w + 1 - W) / 2;
        pt = pt < 0 ? 0 : pt, pl = pl < 0 ? 0 : pl;
      }
      for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++)
          for (int oc = 0; oc < Co; oc++) {
            int64_t acc = bias ? bias[oc] : 0;
            for (int ky = 0; ky < Kh; ky++)
              for (int kx = 0; kx < Kw; kx++) {
                int iy = oy * op->stride_h - pt + ky * op->dil_h;
                int ix = ox * op->stride_w - pl + kx * op->dil_w;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const int8_t *px = in + ((size_t)iy * W + ix) * Ci;
                if (dw)
                  acc += (int64_t)(px[oc / M] - zx) * wd[((size_t)ky * Kw + kx) * Co + oc];
                else
                  for (int ic = 0; ic < Ci; ic++)
                    acc += (int64_t)(px[ic] - zx) * wd[(((size_t)oc * Kh + ky) * Kw + kx) * Ci + ic];
              }
            size_t i = ((size_t)oy * Wo + ox) * Co + oc;
            ex[i] = (double)acc * mult[oc] + zo, slack[i] = sl[oc];
          }
    }
    free(mult), free(sl);
  } else if (op->kind == NAS_G8_ADD) {
    const nas_g8_tensor *b = &g->tensors[op->in[1]];
    const int8_t *pb = act[op->in[1]] ? act[op->in[1]] : (const int8_t *)b->data;
    double sa = x->scale[0], sb = b->scale[0], tw = 2.0 * (sa > sb ? sa : sb);
    int32_t q;
    int sh;
    nas_q_quantize_multiplier(tw / ((double)(1 << 20) * so), &q, &sh);
    for (size_t i = 0; i < ny; i++) {
      ex[i] = ((in[i] - zx) * sa + (pb[i] - b->zero_point[0]) * sb) / so + zo;
      slack[i] = 0.5 * ldexp(1.0, sh < 0 ? sh : 0) + 1e-3; /* + the 2^-20 input rescaling */
    }
  } else if (op->kind == NAS_G8_AVERAGE_POOL_2D) {
    /* TFLite averages the raw int8 values (input and output share scale and zero point). */
    const int H = x->dims[1], W = x->dims[2], C = x->dims[3], Ho = y->dims[1], Wo = y->dims[2];
    int pt = 0, pl = 0;
    if (op->padding == NAS_G8_PAD_SAME) {
      pt = ((Ho - 1) * op->stride_h + op->filter_h - H) / 2;
      pl = ((Wo - 1) * op->stride_w + op->filter_w - W) / 2;
      pt = pt < 0 ? 0 : pt, pl = pl < 0 ? 0 : pl;
    }
    for (int oy = 0; oy < Ho; oy++)
      for (int ox = 0; ox < Wo; ox++)
        for (int c = 0; c < C; c++) {
          double s = 0;
          int cnt = 0;
          for (int fy = 0; fy < op->filter_h; fy++)
            for (int fx = 0; fx < op->filter_w; fx++) {
              int iy = oy * op->stride_h - pt + fy, ix = ox * op->stride_w - pl + fx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              s += in[((size_t)iy * W + ix) * C + c], cnt++;
            }
          size_t i = ((size_t)oy * Wo + ox) * C + c;
          ex[i] = s / cnt, slack[i] = 1e-9;
        }
  }
}

/* Runs graph g on the int8 input x with every closed-form operator of deploy_exact_op
 * rounded once, half to even, from its exact value (AVERAGE_POOL_2D: in the zero-point-
 * relative domain, as a float DequantizeLinear/AveragePool/QuantizeLinear chain does), and the
 * others (RESHAPE, MAX_POOL_2D, SOFTMAX) by the deploy kernels: the int8 graph as a correctly
 * rounded float runtime (onnxruntime's QDQ simulation, Arm NN's CpuRef) would compute it.
 * Returns one buffer per activation tensor (free each, then the array). */
static inline int8_t **deploy_emulate_rounded(const nas_g8_graph *g, const int8_t *x) {
  int8_t **act = calloc((size_t)g->ntensors, sizeof *act);
  for (int i = 0; i < g->ntensors; i++)
    if (!g->tensors[i].data) act[i] = calloc(nas_g8_numel(&g->tensors[i]) + 1, 1);
  memcpy(act[g->input], x, nas_g8_numel(&g->tensors[g->input]));
  nas_err e = {0};
  for (int o = 0; o < g->nops; o++) {
    const nas_g8_op *op = &g->ops[o];
    const nas_g8_tensor *y = &g->tensors[op->out];
    const size_t n = nas_g8_numel(y);
    assert_int_equal(nas_g8_run_op(g, o, act, &e), NAS_OK);
    double *ex = malloc(sizeof(double) * n), *slack = malloc(sizeof(double) * n);
    deploy_exact_op(g, op, act, ex, slack);
    int32_t lo, hi;
    nas_q_act_range(op->act, y->scale[0], y->zero_point[0], &lo, &hi);
    const int zp = y->zero_point[0], avg = op->kind == NAS_G8_AVERAGE_POOL_2D;
    for (size_t i = 0; i < n; i++) {
      if (isnan(ex[i])) continue;
      double r = avg ? nearbyint(ex[i] - zp) + zp : nearbyint(ex[i]);
      act[op->out][i] = (int8_t)(r < lo ? lo : r > hi ? hi : r);
    }
    free(ex), free(slack);
  }
  return act;
}

#endif
