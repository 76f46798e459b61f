/* train/quant.c: batch-norm folding, calibration of activation ranges (min/max or a
 * percentile from a histogram) and the int8 parameter choices of train/quant.h. */
#include "train/quant.h"
#include "core/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/ops.h"
#include "train/prune.h"

/* ---- batch-norm folding ------------------------------------------------------------------ */

/* The spatial weights of a Winograd conv's output node (WINO_OUT <- WINO_MUL <- WINO_WT <- w),
 * or -1. */
static int wino_weights(const nas_graph *g, const nas_node *out) {
  int mul = out->in[0];
  if (g->nodes[mul].kind != NAS_NODE_OP || g->nodes[mul].op != NAS_OP_WINO_MUL) return -1;
  int wt = g->nodes[mul].in[1];
  if (g->nodes[wt].kind != NAS_NODE_OP || g->nodes[wt].op != NAS_OP_WINO_WT) return -1;
  return g->nodes[wt].in[0];
}

int nas_fold_bn(const nas_graph *g, int conv, int bn, float *w_out, float *b_out, nas_err *e) {
  if (conv < 0 || conv >= g->n || g->nodes[conv].kind != NAS_NODE_OP ||
      (g->nodes[conv].op != NAS_OP_CONV2D && g->nodes[conv].op != NAS_OP_DWCONV2D &&
       g->nodes[conv].op != NAS_OP_WINO_OUT))
    return nas_errf(e, NAS_EINVAL, "fold: node %d is not a convolution", conv);
  const nas_node *c = &g->nodes[conv];
  /* pruned weights and batch-norm parameters: read behind their masks (train/prune.h) */
  const int wi = c->op == NAS_OP_WINO_OUT ? wino_weights(g, c) : nas_prune_source(g, c->in[1]);
  if (wi < 0) return nas_errf(e, NAS_EINVAL, "fold: '%s' is not the output of a Winograd conv", c->name);
  const nas_node *w = &g->nodes[wi];
  const nas_node *b = c->n_in > 2 ? &g->nodes[c->in[2]] : NULL;
  const int dw = c->op == NAS_OP_DWCONV2D;
  const int co = dw ? w->shape.d[w->shape.nd - 1] : w->shape.d[0];
  const size_t nw = nas_shape_numel(&w->shape), per = nw / (size_t)co;
  if (bn >= 0) {
    const nas_node *n = &g->nodes[bn];
    if (n->kind != NAS_NODE_OP || n->op != NAS_OP_BATCHNORM || n->in[0] != conv)
      return nas_errf(e, NAS_EINVAL, "fold: node '%s' is not a batch-norm of '%s'", n->name, c->name);
  }
  for (int o = 0; o < co; o++) {
    double s = 1.0, shift = 0.0;
    if (bn >= 0) {
      const nas_node *n = &g->nodes[bn];
      const float *gamma = g->nodes[nas_prune_source(g, n->in[1])].val;
      const float *beta = g->nodes[nas_prune_source(g, n->in[2])].val;
      const float *mean = g->nodes[n->in[3]].val, *var = g->nodes[n->in[4]].val;
      float eps = n->p.eps > 0 ? n->p.eps : 1e-5f;
      s = gamma[o] / sqrt((double)var[o] + eps);
      shift = beta[o] - mean[o] * s;
    }
    b_out[o] = (float)(shift + (b ? b->val[o] * s : 0.0));
    for (size_t k = 0; k < per; k++) {
      size_t i = dw ? k * (size_t)co + (size_t)o : (size_t)o * per + k;
      w_out[i] = (float)(w->val[i] * s);
    }
  }
  return NAS_OK;
}

/* ---- calibration ------------------------------------------------------------------------- */

void nas_calib_cfg_default(nas_calib_cfg *c) {
  c->method = NAS_CALIB_MINMAX;
  c->percentile = 99.99;
  c->samples = 1000;
  c->bins = 2048;
}

int nas_calib_method_parse(const char *name, int *method, nas_err *e) {
  if (name && !strcmp(name, "minmax")) return *method = NAS_CALIB_MINMAX, NAS_OK;
  if (name && !strcmp(name, "percentile")) return *method = NAS_CALIB_PERCENTILE, NAS_OK;
  return nas_errf(e, NAS_EINVAL, "unknown calibration method '%s' (expected minmax or percentile)",
                  name ? name : "");
}

static int fusing_consumer(const nas_node *n, int id) {
  return n->kind == NAS_NODE_OP && n->in[0] == id &&
         (n->op == NAS_OP_BATCHNORM || n->op == NAS_OP_RELU || n->op == NAS_OP_RELU6);
}

void nas_quant_points(const nas_net *net, unsigned char *point) {
  const nas_graph *g = net->g;
  memset(point, 0, (size_t)g->n);
  point[net->input] = 1;
  for (int i = 0; i < g->n; i++) {
    const nas_node *n = &g->nodes[i];
    if (n->kind != NAS_NODE_OP) continue;
    switch (n->op) {
      case NAS_OP_CONV2D: case NAS_OP_DWCONV2D: case NAS_OP_DENSE: case NAS_OP_ADD:
      case NAS_OP_BATCHNORM: case NAS_OP_RELU: case NAS_OP_RELU6: case NAS_OP_WINO_OUT: break;
      case NAS_OP_WINO_IN: case NAS_OP_WINO_MUL: point[i] = 1; continue; /* symmetric */
      default: continue;
    }
    int fused = 0;
    for (int j = i + 1; j < g->n && !fused; j++) fused = fusing_consumer(&g->nodes[j], i);
    point[i] = !fused;
  }
}

void nas_calib_free(nas_calib *c) {
  if (!c) return;
  free(c->point), free(c->lo), free(c->hi);
  free(c->sub), free(c->sub_lo), free(c->sub_hi);
  memset(c, 0, sizeof *c);
}

int nas_calib_alloc_sub(const nas_graph *g, nas_calib *c) {
  int nsub = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_OP) nsub += nas_rnn_npoints(g->nodes[i].op);
  c->nsub = nsub;
  if (!nsub) return NAS_OK;
  c->sub = nas_malloc(sizeof *c->sub * (size_t)g->n);
  c->sub_lo = nas_calloc((size_t)nsub, sizeof *c->sub_lo);
  c->sub_hi = nas_calloc((size_t)nsub, sizeof *c->sub_hi);
  if (!c->sub || !c->sub_lo || !c->sub_hi) return NAS_ENOMEM;
  for (int i = 0, k = 0; i < g->n; i++) {
    const int np = g->nodes[i].kind == NAS_NODE_OP ? nas_rnn_npoints(g->nodes[i].op) : 0;
    c->sub[i] = np ? k : -1;
    k += np;
  }
  return NAS_OK;
}

static int check_ds(const nas_net *net, const nas_dataset *ds, nas_err *e) {
  if (!ds || ds->n < 1) return nas_errf(e, NAS_EINVAL, "calibration: the dataset is empty");
  if (ds->h != net->in_h || ds->w != net->in_w || ds->c != net->in_c)
    return nas_errf(e, NAS_EINVAL, "calibration: samples are %dx%dx%d, the network expects %dx%dx%d",
                    ds->h, ds->w, ds->c, net->in_h, net->in_w, net->in_c);
  return NAS_OK;
}

/* Pass 0 widens [*lo,*hi] to the values; pass 1 adds them to the histogram h over [lo,hi]. */
static void observe(int pass, const float *v, size_t cnt, float *plo, float *phi, double *h,
                    int bins) {
  if (pass == 0) {
    float lo = *plo, hi = *phi;
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (size_t k = 0; k < cnt; k++) {
      if (v[k] < lo) lo = v[k];
      if (v[k] > hi) hi = v[k];
    }
    *plo = lo, *phi = hi;
    return;
  }
  double lo = *plo, w = ((double)*phi - lo) / bins;
  for (size_t k = 0; k < cnt; k++) {
    int b = w > 0 ? (int)((v[k] - lo) / w) : 0;
    h[b < 0 ? 0 : b >= bins ? bins - 1 : b] += 1;
  }
}

/* Narrows [*lo,*hi] to the q and 1-q quantiles of histogram h. */
static void narrow(const double *h, int bins, double q, float *plo, float *phi) {
  double total = 0;
  for (int b = 0; b < bins; b++) total += h[b];
  double lo = *plo, w = ((double)*phi - lo) / bins, cum = 0;
  int bhi = bins - 1, blo = 0;
  for (int b = 0; b < bins; b++) { /* first bin where the share at or below reaches q */
    cum += h[b];
    if (cum >= q * total) { bhi = b; break; }
  }
  cum = 0;
  for (int b = bins - 1; b >= 0; b--) { /* symmetric from the top */
    cum += h[b];
    if (cum >= q * total) { blo = b; break; }
  }
  float nlo = (float)(lo + w * blo), nhi = (float)(lo + w * (bhi + 1));
  if (nlo > *plo) *plo = nlo;
  if (nhi < *phi) *phi = nhi;
}

/* Widens a finished range to include 0; 0 when it is not finite. */
static int finish(float *lo, float *hi) {
  if (!isfinite(*lo) || !isfinite(*hi)) return 0;
  if (*lo > 0) *lo = 0;
  if (*hi < 0) *hi = 0;
  return 1;
}

int nas_calibrate(nas_net *net, const nas_dataset *ds, const nas_calib_cfg *cfg, nas_calib *c,
                  nas_err *e) {
  memset(c, 0, sizeof *c);
  if (check_ds(net, ds, e)) return e->code;
  nas_calib_cfg def;
  nas_calib_cfg_default(&def);
  if (!cfg) cfg = &def;
  if (cfg->method != NAS_CALIB_MINMAX && cfg->method != NAS_CALIB_PERCENTILE)
    return nas_errf(e, NAS_EINVAL, "calibration: unknown method %d", cfg->method);
  if (cfg->method == NAS_CALIB_PERCENTILE && !(cfg->percentile > 50 && cfg->percentile <= 100))
    return nas_errf(e, NAS_EINVAL, "calibration: percentile %g is out of range (50,100]", cfg->percentile);
  nas_graph *g = net->g;
  const int N = cfg->samples > 0 && cfg->samples < ds->n ? cfg->samples : ds->n;
  const int bins = cfg->bins > 0 ? cfg->bins : 2048;
  c->n = g->n, c->method = cfg->method, c->samples = N;
  c->point = nas_malloc((size_t)g->n);
  c->lo = nas_malloc(sizeof *c->lo * (size_t)g->n);
  c->hi = nas_malloc(sizeof *c->hi * (size_t)g->n);
  int *idx = nas_malloc(sizeof *idx * (size_t)g->max_batch);
  double *hist = NULL;
  int *slot = NULL;
  float *sbuf[NAS_GRU_NPOINTS] = {NULL};
  size_t scnt[NAS_GRU_NPOINTS];
  const int saved = g->training;
  if (!c->point || !c->lo || !c->hi || !idx || nas_calib_alloc_sub(g, c)) goto oom;
  nas_quant_points(net, c->point);
  for (int i = 0; i < g->n; i++) c->lo[i] = INFINITY, c->hi[i] = -INFINITY;
  for (int k = 0; k < c->nsub; k++) c->sub_lo[k] = INFINITY, c->sub_hi[k] = -INFINITY;
  if (c->nsub) { /* buffers for one recurrent node's internal points: batch * T * H each */
    size_t most = 1;
    for (int i = 0; i < g->n; i++) {
      if (!c->sub || c->sub[i] < 0) continue;
      const nas_node *x = &g->nodes[g->nodes[i].in[0]], *wh = &g->nodes[g->nodes[i].in[2]];
      size_t sz = (size_t)g->max_batch * (size_t)x->shape.d[1] * (size_t)wh->shape.d[1];
      if (sz > most) most = sz;
    }
    for (int k = 0; k < NAS_GRU_NPOINTS; k++)
      if (!(sbuf[k] = nas_malloc(sizeof(float) * most))) goto oom;
  }
  g->training = 0;
  const int passes = cfg->method == NAS_CALIB_PERCENTILE ? 2 : 1;
  int np = 0;
  if (passes == 2) {
    slot = nas_malloc(sizeof *slot * (size_t)g->n);
    if (!slot) goto oom;
    for (int i = 0; i < g->n; i++) slot[i] = c->point[i] ? np++ : -1;
    hist = nas_calloc((size_t)(np + c->nsub) * (size_t)bins, sizeof *hist);
    if (!hist) goto oom;
  }
  for (int pass = 0; pass < passes; pass++) {
    for (int s = 0; s < N; s += g->max_batch) {
      int n = N - s < g->max_batch ? N - s : g->max_batch;
      for (int i = 0; i < n; i++) idx[i] = s + i;
      nas_data_batch(ds, idx, n, g->nodes[net->input].val, g->nodes[net->labels].val, NULL, NULL);
      nas_graph_forward(g, n, net->logits);
      for (int t = 0; t < g->n; t++) {
        if (c->point[t])
          observe(pass, g->nodes[t].val, nas_node_numel(g, &g->nodes[t]), &c->lo[t], &c->hi[t],
                  hist ? hist + (size_t)slot[t] * (size_t)bins : NULL, bins);
        if (!c->sub || c->sub[t] < 0) continue;
        if (nas_rnn_point_values(g, t, n, sbuf, scnt)) goto oom;
        for (int k = 0, j = c->sub[t]; k < nas_rnn_npoints(g->nodes[t].op); k++, j++)
          observe(pass, sbuf[k], scnt[k], &c->sub_lo[j], &c->sub_hi[j],
                  hist ? hist + (size_t)(np + j) * (size_t)bins : NULL, bins);
      }
    }
  }
  if (passes == 2) {
    const double q = cfg->percentile / 100.0;
    for (int t = 0; t < g->n; t++)
      if (c->point[t]) narrow(hist + (size_t)slot[t] * (size_t)bins, bins, q, &c->lo[t], &c->hi[t]);
    for (int j = 0; j < c->nsub; j++)
      narrow(hist + (size_t)(np + j) * (size_t)bins, bins, q, &c->sub_lo[j], &c->sub_hi[j]);
  }
  g->training = saved;
  free(idx), free(hist), free(slot);
  for (int k = 0; k < NAS_GRU_NPOINTS; k++) free(sbuf[k]);
  for (int t = 0; t < g->n; t++) {
    if (!c->point[t]) {
      c->lo[t] = c->hi[t] = 0;
      continue;
    }
    if (!finish(&c->lo[t], &c->hi[t])) {
      nas_errf(e, NAS_ENUMERIC, "calibration: node '%s' has a non-finite value", g->nodes[t].name);
      nas_calib_free(c);
      return NAS_ENUMERIC;
    }
  }
  for (int t = 0; c->sub && t < g->n; t++)
    for (int k = 0, j = c->sub[t]; j >= 0 && k < nas_rnn_npoints(g->nodes[t].op); k++, j++)
      if (!finish(&c->sub_lo[j], &c->sub_hi[j])) {
        if (c->sub_lo[j] == INFINITY) { /* a point without values (T = 1): no range needed */
          c->sub_lo[j] = 0, c->sub_hi[j] = 0;
          continue;
        }
        nas_errf(e, NAS_ENUMERIC, "calibration: node '%s' (internal point %d) has a non-finite value",
                 g->nodes[t].name, k);
        nas_calib_free(c);
        return NAS_ENUMERIC;
      }
  return NAS_OK;
oom:
  g->training = saved;
  free(idx), free(hist), free(slot);
  for (int k = 0; k < NAS_GRU_NPOINTS; k++) free(sbuf[k]);
  nas_calib_free(c);
  return nas_errf(e, NAS_ENOMEM, "calibration: out of memory");
}

/* ---- int8 parameters ---------------------------------------------------------------------- */

void nas_q_choose(float lo, float hi, float *scale, int32_t *zero_point) {
  if (lo > 0) lo = 0;
  if (hi < 0) hi = 0;
  if (hi - lo <= 0) hi = 1;
  double s = ((double)hi - lo) / 255.0;
  double z = -128.0 - lo / s;
  long zp = lround(z);
  if (zp < -128) zp = -128;
  if (zp > 127) zp = 127;
  *scale = (float)s, *zero_point = (int32_t)zp;
}

void nas_q_weights(const float *w, int channels, int per, int cstride, int kstride, int8_t *q,
                   float *scale) {
  for (int c = 0; c < channels; c++) {
    float m = 0;
    for (int k = 0; k < per; k++) {
      float a = fabsf(w[(size_t)c * cstride + (size_t)k * kstride]);
      if (a > m) m = a;
    }
    float s = m / 127.0f;
    if (!(s > 0)) s = 1.0f; /* an all-zero channel, or one so small that m / 127 underflows */
    scale[c] = s;
    for (int k = 0; k < per; k++) {
      size_t i = (size_t)c * cstride + (size_t)k * kstride;
      long v = lroundf(w[i] / s);
      q[i] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
    }
  }
}

void nas_q_bias(const float *b, int channels, float in_scale, const float *w_scale, int32_t *q) {
  for (int c = 0; c < channels; c++) {
    double v = round((double)b[c] / ((double)in_scale * w_scale[c]));
    if (v != v) v = 0; /* 0/0: a zero bias over a zero (underflowed) scale */
    q[c] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
  }
}

int8_t nas_q_int8(float x, float scale, int32_t zero_point) {
  long v = lroundf(x / scale) + zero_point;
  return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}
