/* train/optim.c: SGD (momentum, Nesterov), Adam and AdamW over the PARAM nodes of a graph,
 * and learning-rate schedules.
 *
 * The update formulas follow PyTorch 1.13's single-tensor code paths (the default on CPU)
 * operation by operation, in float32 for per-element work and in double for the per-step
 * scalars (bias corrections, step size), as Python computes those. See optim.h. */
#include "train/optim.h"
#include "core/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nas_optim_cfg_default(nas_optim_cfg *c, int kind) {
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->momentum = 0.9f;
  c->nesterov = 0;
  c->weight_decay = 0.0f;
  c->beta1 = 0.9f;
  c->beta2 = 0.999f;
  c->eps = 1e-8f;
}

/* Checks a configuration the way torch.optim's constructors do. */
static int check_cfg(const nas_optim_cfg *c, nas_err *e) {
  if (c->kind != NAS_SGD && c->kind != NAS_ADAM && c->kind != NAS_ADAMW)
    return nas_errf(e, NAS_EINVAL, "optimizer: unknown kind %d (expected 0 sgd, 1 adam, 2 adamw)",
                    c->kind);
  if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
    return nas_errf(e, NAS_EINVAL, "optimizer: weight_decay %g must be finite and >= 0",
                    (double)c->weight_decay);
  if (c->kind == NAS_SGD) {
    if (!(c->momentum >= 0.0f) || !isfinite(c->momentum))
      return nas_errf(e, NAS_EINVAL, "optimizer sgd: momentum %g must be finite and >= 0",
                      (double)c->momentum);
    if (c->nesterov && c->momentum == 0.0f)
      return nas_errf(e, NAS_EINVAL, "optimizer sgd: nesterov needs a momentum > 0");
  } else {
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f))
      return nas_errf(e, NAS_EINVAL, "optimizer adam: beta1 %g outside [0,1)", (double)c->beta1);
    if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f))
      return nas_errf(e, NAS_EINVAL, "optimizer adam: beta2 %g outside [0,1)", (double)c->beta2);
    if (!(c->eps >= 0.0f) || !isfinite(c->eps))
      return nas_errf(e, NAS_EINVAL, "optimizer adam: eps %g must be finite and >= 0",
                      (double)c->eps);
  }
  return NAS_OK;
}

/* Allocates per-param zeroed buffers for every param (arr[i] of numel(param i) floats). */
static float **alloc_bufs(const nas_graph *g, const int *ids, int n) {
  float **b = nas_calloc((size_t)(n ? n : 1), sizeof *b);
  if (!b) return NULL;
  for (int i = 0; i < n; i++) {
    size_t k = nas_shape_numel(&g->nodes[ids[i]].shape);
    b[i] = nas_calloc(k ? k : 1, sizeof **b);
    if (!b[i]) {
      for (int j = 0; j < i; j++) free(b[j]);
      free(b);
      return NULL;
    }
  }
  return b;
}

static void free_bufs(float **b, int n) {
  if (!b) return;
  for (int i = 0; i < n; i++) free(b[i]);
  free(b);
}

nas_optim *nas_optim_new(const nas_graph *g, const nas_optim_cfg *cfg, nas_err *e) {
  if (!g || !cfg) {
    nas_errf(e, NAS_EINVAL, "optimizer: %s is NULL", g ? "configuration" : "graph");
    return NULL;
  }
  if (check_cfg(cfg, e) != NAS_OK) return NULL;
  if (!g->allocated) {
    nas_errf(e, NAS_EINVAL, "optimizer: the graph is not allocated (call nas_graph_alloc first)");
    return NULL;
  }
  int n_params = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_PARAM) n_params++;
  nas_optim *o = nas_calloc(1, sizeof *o);
  if (!o) goto oom;
  o->cfg = *cfg;
  o->n = n_params;
  o->ids = nas_malloc((size_t)(o->n ? o->n : 1) * sizeof *o->ids);
  if (!o->ids) goto oom;
  for (int i = 0, k = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_PARAM) o->ids[k++] = i;
  int need_m = cfg->kind != NAS_SGD || cfg->momentum != 0.0f;
  int need_v = cfg->kind != NAS_SGD;
  if (need_m && !(o->m = alloc_bufs(g, o->ids, o->n))) goto oom;
  if (need_v && !(o->v = alloc_bufs(g, o->ids, o->n))) goto oom;
  return o;
oom:
  nas_optim_free(o);
  nas_errf(e, NAS_ENOMEM, "optimizer: out of memory for the state of %d parameter tensors",
           n_params);
  return NULL;
}

void nas_optim_free(nas_optim *o) {
  if (!o) return;
  free_bufs(o->m, o->n);
  free_bufs(o->v, o->n);
  free(o->ids);
  free(o);
}

/* torch.optim.SGD, dampening 0. A zero-initialised buffer makes the first step's
 * buf = momentum*0 + g equal to PyTorch's buf = clone(g), bit for bit. */
static void sgd_step(const nas_optim_cfg *c, float *w, const float *grad, float *buf, size_t n,
                     float lr) {
  const float wd = c->weight_decay, mom = c->momentum, neg_lr = -lr;
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    if (wd != 0.0f) g = g + wd * w[i];
    if (buf) {
      buf[i] = buf[i] * mom + g;
      g = c->nesterov ? g + mom * buf[i] : buf[i];
    }
    w[i] = w[i] + neg_lr * g;
  }
}

/* torch.optim.Adam (L2 decay added to the gradient when l2 != 0). AdamW calls it after its
 * decoupled decay with l2 = 0. */
static void adam_step(const nas_optim_cfg *c, float *w, const float *grad, float *m, float *v,
                      size_t n, float l2, long t, float lr) {
  const double b1 = c->beta1, b2 = c->beta2;
  const double bc1 = 1.0 - pow(b1, (double)t);
  const double bc2_sqrt = sqrt(1.0 - pow(b2, (double)t));
  const float b1f = c->beta1, b2f = c->beta2;
  const float omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
  const float neg_step = (float)(-((double)lr / bc1));
  const float bc2s = (float)bc2_sqrt, eps = c->eps;
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    if (l2 != 0.0f) g = g + l2 * w[i];
    m[i] = m[i] * b1f + omb1 * g;
    v[i] = v[i] * b2f + omb2 * g * g;
    float denom = sqrtf(v[i]) / bc2s + eps;
    w[i] = w[i] + neg_step * m[i] / denom;
  }
}

void nas_optim_step(nas_optim *o, nas_graph *g, float lr) {
  o->step++;
  const nas_optim_cfg *c = &o->cfg;
  for (int k = 0; k < o->n; k++) {
    nas_node *nd = &g->nodes[o->ids[k]];
    /* A param without a gradient buffer is frozen: like a PyTorch param whose grad is None
     * it is left alone (its Adam step count still advances with the others). */
    if (!nd->grad || !nd->val) continue;
    size_t n = nas_shape_numel(&nd->shape);
    float *w = nd->val;
    switch (c->kind) {
      case NAS_SGD:
        sgd_step(c, w, nd->grad, o->m ? o->m[k] : NULL, n, lr);
        break;
      case NAS_ADAM:
        adam_step(c, w, nd->grad, o->m[k], o->v[k], n, c->weight_decay, o->step, lr);
        break;
      case NAS_ADAMW: {
        if (c->weight_decay != 0.0f) {
          const float keep = (float)(1.0 - (double)lr * (double)c->weight_decay);
          for (size_t i = 0; i < n; i++) w[i] *= keep;
        }
        adam_step(c, w, nd->grad, o->m[k], o->v[k], n, 0.0f, o->step, lr);
        break;
      }
      default:
        break; /* unreachable: nas_optim_new rejects other kinds */
    }
  }
}

float nas_sched_lr(const nas_sched *s, long step) {
  if (step < 0) step = 0;
  const double base = s->base_lr;
  if (s->warmup_steps > 0 && step < s->warmup_steps)
    return (float)(base * (double)(step + 1) / (double)s->warmup_steps);
  const long warm = s->warmup_steps > 0 ? s->warmup_steps : 0;
  const long t = step - warm;
  switch (s->kind) {
    case NAS_SCHED_CONST:
      return s->base_lr;
    case NAS_SCHED_COSINE: {
      const long T = s->total_steps - warm;
      if (T <= 0 || t >= T) return s->min_lr;
      const double pi = 3.14159265358979323846;
      const double lo = s->min_lr;
      return (float)(lo + (base - lo) * (1.0 + cos(pi * (double)t / (double)T)) / 2.0);
    }
    case NAS_SCHED_STEP:
      if (s->step_size <= 0) return s->base_lr;
      return (float)(base * pow((double)s->gamma, (double)(t / s->step_size)));
    default:
      return NAN;
  }
}

int nas_sched_parse(const char *name) {
  if (!name) return -1;
  if (strcmp(name, "const") == 0) return NAS_SCHED_CONST;
  if (strcmp(name, "cosine") == 0) return NAS_SCHED_COSINE;
  if (strcmp(name, "step") == 0) return NAS_SCHED_STEP;
  return -1;
}
