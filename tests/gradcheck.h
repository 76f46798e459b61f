/* tests/gradcheck.h: a gradient checker usable by every test program. For a graph whose
 * differentiable inputs are PARAM nodes, it compares the analytical gradient of
 * L = sum(out * R) (R random, fixed) with central differences accumulated in double.
 * The graph's RNG state is restored before every forward pass, so ops that draw random
 * numbers (dropout) see the same draws each time. */
#ifndef NAS_TESTS_GRADCHECK_H
#define NAS_TESTS_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/graph.h"

static double gc_objective(nas_graph *g, int out, const float *R, const nas_rng *rng0) {
  g->rng = *rng0;
  nas_graph_forward(g, g->batch, out);
  const nas_node *o = &g->nodes[out];
  size_t n = nas_node_numel(g, o);
  double L = 0;
  for (size_t i = 0; i < n; i++) L += (double)o->val[i] * R[i];
  return L;
}

/* Returns the largest relative error over all checked elements, and prints the worst one
 * into where (may be NULL). Checks at most max_per_param elements of each PARAM (spread). */
static double nas_gradcheck(nas_graph *g, int out, float eps, int max_per_param, char *where,
                            size_t where_n) {
  const nas_rng rng0 = g->rng;
  nas_node *o = &g->nodes[out];
  size_t n_out = nas_node_numel(g, o);
  float *R = malloc(n_out * sizeof *R);
  nas_rng r;
  nas_rng_seed(&r, 1234);
  for (size_t i = 0; i < n_out; i++) R[i] = nas_rng_uniform(&r) * 2 - 1;
  gc_objective(g, out, R, &rng0);
  nas_graph_backward_seed(g, out, R);
  /* copy the analytical gradients before the finite-difference passes overwrite nothing
     (forward does not touch grads, but keep the check independent of that) */
  double worst = 0;
  if (where && where_n) where[0] = 0;
  for (int id = 0; id < out; id++) {
    nas_node *p = &g->nodes[id];
    if (p->kind != NAS_NODE_PARAM) continue;
    size_t n = nas_shape_numel(&p->shape);
    size_t step = (max_per_param > 0 && n > (size_t)max_per_param) ? n / (size_t)max_per_param : 1;
    for (size_t i = 0; i < n; i += step) {
      float keep = p->val[i];
      p->val[i] = keep + eps;
      double lp = gc_objective(g, out, R, &rng0);
      p->val[i] = keep - eps;
      double lm = gc_objective(g, out, R, &rng0);
      p->val[i] = keep;
      double num = (lp - lm) / (2.0 * eps);
      double ana = p->grad[i];
      double err = fabs(num - ana) / fmax(1.0, fmax(fabs(num), fabs(ana)));
      if (err > worst) {
        worst = err;
        if (where) snprintf(where, where_n, "%s[%zu]: analytical %.6g numerical %.6g", p->name, i, ana, num);
      }
    }
  }
  g->rng = rng0;
  free(R);
  return worst;
}

#endif
