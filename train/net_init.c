/* train/net_init.c: parameter initialisation of a built network (PyTorch defaults) and its
 * loss node (train/net.h); split from train/net.c. */
#include "train/net.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/ops.h"
#include "train/wino.h"

/* A Winograd transform ("G" [a,3], "Bt" [a,a], "At" [m,a]) gets its Cook-Toom table; returns 1
 * when nd is one. */
static int wino_fill(nas_node *nd, const char *t) {
  const nas_shape *s = &nd->shape;
  if (s->nd != 2) return 0;
  const nas_wino_tf *tf = NULL;
  if (!strcmp(t, "G") && s->d[1] == 3) tf = nas_wino_tf_get(s->d[0] - 2);
  else if (!strcmp(t, "Bt") && s->d[0] == s->d[1]) tf = nas_wino_tf_get(s->d[0] - 2);
  else if (!strcmp(t, "At") && s->d[1] == s->d[0] + 2) tf = nas_wino_tf_get(s->d[0]);
  if (!tf) return 0;
  nas_wino_tf_float(tf, !strcmp(t, "Bt") ? nd->val : NULL, !strcmp(t, "G") ? nd->val : NULL,
                    !strcmp(t, "At") ? nd->val : NULL);
  return 1;
}

void nas_net_init_params(nas_graph *g, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    if (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE) continue;
    size_t cnt = nas_shape_numel(&nd->shape);
    const char *t = strrchr(nd->name, '.');
    t = t ? t + 1 : nd->name;
    float fill = -1;
    if (!strcmp(t, "gamma") || !strcmp(t, "var")) fill = 1;
    if (!strcmp(t, "beta") || !strcmp(t, "mean")) fill = 0;
    if (fill >= 0) {
      for (size_t k = 0; k < cnt; k++) nd->val[k] = fill;
      continue;
    }
    if (wino_fill(nd, t)) continue;
    if (nd->kind != NAS_NODE_PARAM) continue; /* other state (e.g. DNAS gates) is the caller's */
    /* recurrent layers (PyTorch): every tensor uniform in +-1/sqrt(units) */
    if (!strcmp(t, "w_ih") || !strcmp(t, "w_hh") || !strcmp(t, "b_ih") || !strcmp(t, "b_hh")) {
      char wn[48];
      snprintf(wn, sizeof wn, "%.*sw_hh", (int)(t - nd->name), nd->name);
      int wi = nas_graph_find(g, wn);
      float bound = wi >= 0 ? 1.0f / sqrtf((float)g->nodes[wi].shape.d[1]) : 0.1f;
      for (size_t k = 0; k < cnt; k++) nd->val[k] = (nas_rng_uniform(&r) * 2 - 1) * bound;
      continue;
    }
    /* fan_in of the weight this tensor belongs to: w itself, or the sibling w of a bias */
    const nas_node *w = nd;
    if (!strcmp(t, "b")) {
      char wn[48];
      snprintf(wn, sizeof wn, "%.*sw", (int)(t - nd->name), nd->name);
      int wi = nas_graph_find(g, wn);
      if (wi >= 0) w = &g->nodes[wi];
    }
    size_t fan_in = w->shape.nd == 3 ? (size_t)w->shape.d[0] * w->shape.d[1] /* depthwise */
                                     : nas_shape_numel(&w->shape) / (size_t)w->shape.d[0];
    float bound = 1.0f / sqrtf((float)fan_in); /* kaiming_uniform(a=sqrt(5)) == 1/sqrt(fan_in) */
    for (size_t k = 0; k < cnt; k++) nd->val[k] = (nas_rng_uniform(&r) * 2 - 1) * bound;
  }
}

int nas_net_add_loss(nas_net *n, nas_err *e) {
  int one[1] = {1};
  n->labels = nas_graph_input(n->g, "labels", 1, one, e);
  int xin[2] = {n->logits, n->labels};
  n->loss = n->labels < 0 ? -1 : nas_graph_apply(n->g, NAS_OP_SOFTMAX_XENT, xin, 2, NULL, "loss", e);
  return n->loss < 0 ? e->code : NAS_OK;
}

