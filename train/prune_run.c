/* train/prune_run.c: the pruning schedule during training (train/prune.h): magnitude masks
 * on the cubic schedule (per layer or global), the batch-norm L1 penalty and the channel
 * choice of structured pruning, the SVDO KL weight, and baking after every step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "train/net.h"
#include "train/ops.h"
#include "train/prune.h"

struct nas_prune_run {
  const nas_net *net;  /* the network trained (deploy form or SVDO form) */
  nas_graph *g;        /* its graph */
  nas_prune_cfg cfg;   /* its pruning configuration */
  long total;          /* optimiser steps of the training */
  long every;          /* steps between magnitude mask updates */
  int kl_scale;        /* SVDO form: node of the KL scale (-1: none) */
  double kl_per_sample;/* kl_weight / training samples */
  int chosen;          /* 1 once the channels are chosen */
  int n_prod;          /* producing layers with a channel mask */
  int *gamma, *cmask;  /* [n_prod] their gamma PARAM and cmask STATE nodes */
  double *frac;        /* [n_prod] their channel fractions */
};

double nas_prune_schedule(const nas_prune_cfg *c, double target, long step, long total) {
  double t0 = c->begin * (double)total, t1 = c->end * (double)total, t = (double)step;
  if (t <= t0 && t1 > t0) return 0.0;
  if (t >= t1) return target;
  double u = 1.0 - (t - t0) / (t1 - t0);
  return target * (1.0 - u * u * u);
}

/* Layer index of a node name "l<i>.<...>", or -1. */
static int layer_index(const char *name) {
  int li = -1;
  return sscanf(name, "l%d.", &li) == 1 ? li : -1;
}

typedef struct mag {
  float a;   /* |w| */
  int t;     /* tensor slot */
  size_t i;  /* element */
} mag;

static int cmp_mag(const void *x, const void *y) {
  const mag *p = x, *q = y;
  if (p->a != q->a) return p->a < q->a ? -1 : 1;
  if (p->t != q->t) return p->t < q->t ? -1 : 1;
  return (p->i > q->i) - (p->i < q->i);
}

int nas_prune_apply_targets(const nas_net *net, double frac, nas_err *e) {
  nas_graph *g = net->g;
  if (net->prune.method != NAS_PRUNE_MAGNITUDE && net->prune.method != NAS_PRUNE_SVDO) return NAS_OK;
  /* the masked weights (".mask", not channel masks) of pruned layers */
  int nt = 0;
  size_t total = 0, biggest = 0;
  for (int i = 0; i < g->n; i++) {
    if (!nas_prune_is_mask_op(g, i) || !strstr(g->nodes[g->nodes[i].in[1]].name, ".w.mask")) continue;
    int li = layer_index(g->nodes[i].name);
    if (li < 0 || li >= net->n_layers || !(net->layers[li].sparsity > 0)) continue;
    size_t k = nas_shape_numel(&g->nodes[g->nodes[i].in[0]].shape);
    total += k, nt++;
    if (k > biggest) biggest = k;
  }
  if (nt == 0) return NAS_OK;
  size_t cap = net->prune.global ? total : biggest;
  mag *m = nas_malloc(cap * sizeof *m);
  if (!m) return nas_errf(e, NAS_ENOMEM, "pruning: out of memory (%zu weights)", cap);
  size_t used = 0;
  int slot = 0;
  for (int i = 0; i < g->n; i++) {
    if (!nas_prune_is_mask_op(g, i) || !strstr(g->nodes[g->nodes[i].in[1]].name, ".w.mask")) continue;
    int li = layer_index(g->nodes[i].name);
    if (li < 0 || li >= net->n_layers || !(net->layers[li].sparsity > 0)) continue;
    const nas_node *w = &g->nodes[g->nodes[i].in[0]];
    nas_node *mk = &g->nodes[g->nodes[i].in[1]];
    size_t k = nas_shape_numel(&w->shape);
    if (!net->prune.global) used = 0;
    size_t first = used, rows = (size_t)w->shape.d[0], per = k / rows;
    for (size_t j = 0; j < k; j++) {
      /* a weight already pruned stays the smallest */
      m[used].a = mk->val[j] == 0.0f ? -1.0f : fabsf(w->val[j]);
      m[used].t = slot, m[used].i = j;
      used++;
    }
    /* every output channel keeps its largest weight: a channel left without weights outputs a
     * constant, its batch-norm statistics collapse and the folded int8 layer after it
     * amplifies rounding noise hundredfold (measured: 36% float, 15% int8) */
    for (size_t r = 0; r < rows; r++) {
      size_t best = first + r * per;
      for (size_t j = first + r * per; j < first + (r + 1) * per; j++)
        if (m[j].a > m[best].a) best = j;
      m[best].a = INFINITY;
    }
    slot++;
    if (!net->prune.global) {
      size_t cut = (size_t)floor(net->layers[li].sparsity * frac * (double)k + 1e-9);
      if (cut > k - rows) cut = k - rows;
      qsort(m, k, sizeof *m, cmp_mag);
      for (size_t j = 0; j < k; j++) mk->val[m[j].i] = j < cut ? 0.0f : 1.0f;
    }
  }
  if (net->prune.global) {
    size_t cut = (size_t)floor(net->prune.sparsity * frac * (double)total + 1e-9);
    size_t kept = 0; /* the protected largest weight of each output channel */
    for (size_t j = 0; j < total; j++) kept += isinf(m[j].a);
    if (cut > total - kept) cut = total - kept;
    qsort(m, total, sizeof *m, cmp_mag);
    /* slot -> mask node */
    int *mnode = nas_malloc((size_t)nt * sizeof *mnode);
    if (!mnode) {
      free(m);
      return nas_errf(e, NAS_ENOMEM, "pruning: out of memory");
    }
    slot = 0;
    for (int i = 0; i < g->n; i++) {
      if (!nas_prune_is_mask_op(g, i) || !strstr(g->nodes[g->nodes[i].in[1]].name, ".w.mask")) continue;
      int li = layer_index(g->nodes[i].name);
      if (li < 0 || li >= net->n_layers || !(net->layers[li].sparsity > 0)) continue;
      mnode[slot++] = g->nodes[i].in[1];
    }
    for (size_t j = 0; j < total; j++) g->nodes[mnode[m[j].t]].val[m[j].i] = j < cut ? 0.0f : 1.0f;
    free(mnode);
  }
  free(m);
  nas_prune_bake(g);
  return NAS_OK;
}

/* 1 when node i is the channel mask applied to a batch-norm gamma ("<...>.bn.gm"). */
static int ends_with_cmask(const nas_graph *g, int i) {
  if (!nas_prune_is_mask_op(g, i)) return 0;
  const char *mn = g->nodes[g->nodes[i].in[1]].name, *nn = g->nodes[i].name;
  size_t l = strlen(mn), k = strlen(nn);
  return l > 6 && !strcmp(mn + l - 6, ".cmask") && k > 3 && !strcmp(nn + k - 3, ".gm");
}

int nas_prune_run_begin(const nas_net *net, long total_steps, int train_samples, int svdo_train,
                        nas_prune_run **out, nas_err *e) {
  *out = NULL;
  const nas_prune_cfg *c = &net->prune;
  if (!nas_prune_active(c)) return NAS_OK;
  nas_prune_run *r = nas_calloc(1, sizeof *r);
  if (!r) return nas_errf(e, NAS_ENOMEM, "pruning: out of memory");
  r->net = net, r->g = net->g, r->cfg = *c, r->total = total_steps > 0 ? total_steps : 1;
  r->every = c->every > 0 ? c->every : (r->total / 50 > 0 ? r->total / 50 : 1);
  r->kl_scale = svdo_train ? nas_graph_find(net->g, "svdo.kl_scale") : -1;
  r->kl_per_sample = train_samples > 0 ? c->kl_weight / train_samples : 0;
  nas_graph *g = net->g;
  int cap = 0;
  for (int i = 0; i < g->n; i++) cap += ends_with_cmask(g, i);
  r->gamma = nas_malloc((size_t)(cap + 1) * sizeof *r->gamma);
  r->cmask = nas_malloc((size_t)(cap + 1) * sizeof *r->cmask);
  r->frac = nas_malloc((size_t)(cap + 1) * sizeof *r->frac);
  if (!r->gamma || !r->cmask || !r->frac) {
    nas_prune_run_free(r);
    return nas_errf(e, NAS_ENOMEM, "pruning: out of memory");
  }
  /* producers: the gamma mask op "l<i>.<part>.bn.gm" whose mask is "l<i>.<part>.bn.cmask" */
  for (int i = 0; i < g->n; i++) {
    if (!ends_with_cmask(g, i)) continue;
    const nas_node *n = &g->nodes[i];
    char own[48];
    snprintf(own, sizeof own, "%.*s.cmask", (int)(strlen(n->name) - 3), n->name);
    if (strcmp(own, g->nodes[n->in[1]].name)) continue;
    int li = layer_index(n->name);
    if (li < 0 || li >= net->n_layers) continue;
    r->gamma[r->n_prod] = n->in[0], r->cmask[r->n_prod] = n->in[1];
    r->frac[r->n_prod++] = net->layers[li].channels;
  }
  if (r->kl_scale >= 0) g->nodes[r->kl_scale].val[0] = c->kl_warmup > 0 ? 0.0f : (float)r->kl_per_sample;
  *out = r;
  return NAS_OK;
}

void nas_prune_run_pre_step(nas_prune_run *r, long step) {
  (void)step;
  if (!r || r->chosen || !(r->cfg.l1 > 0)) return;
  nas_graph *g = r->g;
  float l1 = (float)r->cfg.l1;
  for (int k = 0; k < r->n_prod; k++) {
    if (!(r->frac[k] > 0)) continue;
    nas_node *gm = &g->nodes[r->gamma[k]];
    if (!gm->grad) continue;
    size_t n = nas_shape_numel(&gm->shape);
    for (size_t j = 0; j < n; j++) gm->grad[j] += gm->val[j] > 0 ? l1 : gm->val[j] < 0 ? -l1 : 0.0f;
  }
}

typedef struct gidx {
  float a; /* |gamma| */
  int c;   /* channel */
} gidx;

static int cmp_gidx(const void *x, const void *y) {
  const gidx *p = x, *q = y;
  if (p->a != q->a) return p->a < q->a ? -1 : 1;
  return (p->c > q->c) - (p->c < q->c);
}

/* Masks the channels with the smallest |gamma| of every producer (at least one kept). */
static int choose_channels(nas_prune_run *r, nas_err *e) {
  nas_graph *g = r->g;
  r->chosen = 1;
  for (int k = 0; k < r->n_prod; k++) {
    nas_node *gm = &g->nodes[r->gamma[k]], *cm = &g->nodes[r->cmask[k]];
    int C = (int)nas_shape_numel(&gm->shape);
    int cut = (int)floor(r->frac[k] * C + 1e-9);
    if (cut > C - 1) cut = C - 1;
    if (cut <= 0) continue;
    gidx *v = nas_malloc((size_t)C * sizeof *v);
    if (!v) return nas_errf(e, NAS_ENOMEM, "pruning: out of memory");
    for (int c = 0; c < C; c++) v[c].a = cm->val[c] == 0.0f ? -1.0f : fabsf(gm->val[c]), v[c].c = c;
    qsort(v, (size_t)C, sizeof *v, cmp_gidx);
    for (int j = 0; j < C; j++) cm->val[v[j].c] = j < cut ? 0.0f : 1.0f;
    free(v);
  }
  return NAS_OK;
}

int nas_prune_run_post_step(nas_prune_run *r, long step, nas_err *e) {
  if (!r) return NAS_OK;
  long done = step + 1;
  int rc = NAS_OK;
  if (r->cfg.method == NAS_PRUNE_MAGNITUDE && r->kl_scale < 0 &&
      (done % r->every == 0 || done == r->total))
    rc = nas_prune_apply_targets(r->net, nas_prune_schedule(&r->cfg, 1.0, done, r->total), e);
  if (rc == NAS_OK && !r->chosen && r->n_prod > 0 && (double)done >= r->cfg.channels_at * r->total)
    rc = choose_channels(r, e);
  if (r->kl_scale >= 0) {
    double w = r->cfg.kl_warmup > 0 ? (double)done / (r->cfg.kl_warmup * r->total) : 1.0;
    r->g->nodes[r->kl_scale].val[0] = (float)(r->kl_per_sample * (w < 1 ? w : 1));
  }
  nas_prune_bake(r->g);
  return rc;
}

int nas_prune_run_end(nas_prune_run *r, nas_err *e) {
  if (!r) return NAS_OK;
  int rc = NAS_OK;
  if (r->cfg.method == NAS_PRUNE_MAGNITUDE && r->kl_scale < 0) rc = nas_prune_apply_targets(r->net, 1.0, e);
  if (rc == NAS_OK && !r->chosen && r->n_prod > 0) rc = choose_channels(r, e);
  nas_prune_bake(r->g);
  return rc;
}

void nas_prune_run_free(nas_prune_run *r) {
  if (!r) return;
  free(r->gamma);
  free(r->cmask);
  free(r->frac);
  free(r);
}
