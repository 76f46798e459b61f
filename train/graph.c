/* train/graph.c: the tape, leaves, shape inference dispatch, one-arena allocation, and the
 * forward / backward sweeps. The ops themselves live in train/ops_*.c. */
#include "train/graph.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ops.h"

nas_graph *nas_graph_new(int max_batch, uint64_t seed) {
  if (max_batch < 1) return NULL;
  nas_graph *g = nas_calloc(1, sizeof *g);
  if (!g) return NULL;
  g->max_batch = max_batch;
  g->batch = max_batch;
  g->training = 1;
  nas_rng_seed(&g->rng, seed);
  return g;
}

void nas_graph_free(nas_graph *g) {
  if (!g) return;
  nas_arena_free(&g->arena);
  free(g->nodes);
  free(g);
}

size_t nas_shape_numel(const nas_shape *s) {
  size_t n = 1;
  for (int i = 0; i < s->nd; i++) n *= (size_t)s->d[i];
  return n;
}

size_t nas_node_sample_numel(const nas_node *nd) {
  size_t n = 1;
  for (int i = 1; i < nd->shape.nd; i++) n *= (size_t)nd->shape.d[i];
  return n;
}

size_t nas_node_numel(const nas_graph *g, const nas_node *nd) {
  if (nd->batched) return (size_t)g->batch * nas_node_sample_numel(nd);
  return nas_shape_numel(&nd->shape);
}

const char *nas_shape_str(const nas_shape *s, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < s->nd && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%d" : "%d", s->d[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

int nas_graph_find(const nas_graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

/* Appends a zeroed node; returns its id or -1. */
static int push_node(nas_graph *g, const char *name, nas_err *e) {
  if (g->allocated) {
    nas_errf(e, NAS_EINVAL, "graph: cannot add node '%s' after allocation", name ? name : "");
    return -1;
  }
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 64;
    nas_node *p = nas_realloc(g->nodes, (size_t)cap * sizeof *p);
    if (!p) {
      nas_errf(e, NAS_ENOMEM, "graph: out of memory adding node '%s'", name ? name : "");
      return -1;
    }
    g->nodes = p;
    g->cap = cap;
  }
  nas_node *nd = &g->nodes[g->n];
  memset(nd, 0, sizeof *nd);
  snprintf(nd->name, sizeof nd->name, "%s", name ? name : "");
  return g->n++;
}

static int add_leaf(nas_graph *g, int kind, const char *name, int nd, const int *dims,
                    nas_err *e) {
  int batched = kind == NAS_NODE_INPUT;
  int total = nd + batched;
  if (nd < (batched ? 0 : 1) || total > NAS_MAX_DIMS)
    return nas_errf(e, NAS_EINVAL, "graph: tensor '%s': %d dimensions not supported", name, nd),
           -1;
  for (int i = 0; i < nd; i++)
    if (dims[i] < 1)
      return nas_errf(e, NAS_EINVAL, "graph: tensor '%s': dimension %d is %d", name, i, dims[i]),
             -1;
  int id = push_node(g, name, e);
  if (id < 0) return -1;
  nas_node *n = &g->nodes[id];
  n->kind = kind;
  n->batched = batched;
  n->needs_grad = kind == NAS_NODE_PARAM;
  n->shape.nd = total;
  if (batched) n->shape.d[0] = g->max_batch;
  for (int i = 0; i < nd; i++) n->shape.d[i + batched] = dims[i];
  return id;
}

int nas_graph_input(nas_graph *g, const char *name, int nd, const int *dims, nas_err *e) {
  return add_leaf(g, NAS_NODE_INPUT, name, nd, dims, e);
}
int nas_graph_param(nas_graph *g, const char *name, int nd, const int *dims, nas_err *e) {
  return add_leaf(g, NAS_NODE_PARAM, name, nd, dims, e);
}
int nas_graph_state(nas_graph *g, const char *name, int nd, const int *dims, nas_err *e) {
  return add_leaf(g, NAS_NODE_STATE, name, nd, dims, e);
}

int nas_graph_apply(nas_graph *g, int op, const int *inputs, int n_in, const nas_op_params *p,
                    const char *name, nas_err *e) {
  if (op < 0 || op >= NAS_OP_COUNT)
    return nas_errf(e, NAS_EINVAL, "graph: unknown op %d", op), -1;
  const nas_op_def *def = &nas_op_table[op];
  if (n_in < def->min_in || n_in > def->max_in)
    return nas_errf(e, NAS_EINVAL, "%s: takes %d..%d inputs, got %d", def->name, def->min_in,
                    def->max_in, n_in),
           -1;
  for (int i = 0; i < n_in; i++)
    if (inputs[i] < 0 || inputs[i] >= g->n)
      return nas_errf(e, NAS_EINVAL, "%s: input %d is not a node of the graph", def->name, i), -1;
  int id = push_node(g, name, e);
  if (id < 0) return -1;
  nas_node *nd = &g->nodes[id];
  nd->kind = NAS_NODE_OP;
  nd->op = op;
  nd->n_in = n_in;
  for (int i = 0; i < n_in; i++) {
    nd->in[i] = inputs[i];
    if (g->nodes[inputs[i]].needs_grad) nd->needs_grad = 1;
  }
  if (p) nd->p = *p;
  if (def->infer(g, nd, e) != NAS_OK) {
    g->n--; /* drop the half-built node */
    return -1;
  }
  return id;
}

int nas_graph_alloc(nas_graph *g, nas_err *e) {
  if (g->allocated) return NAS_OK;
  size_t total = 0, scratch = 0;
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    size_t bytes = nas_arena_round(nas_shape_numel(&nd->shape) * sizeof(float));
    total += bytes * (nd->needs_grad ? 2 : 1) + nas_arena_round(nd->saved_bytes);
    if (nd->scratch_bytes > scratch) scratch = nd->scratch_bytes;
  }
  total += nas_arena_round(scratch);
  if (nas_arena_reserve(&g->arena, total) != NAS_OK)
    return nas_errf(e, NAS_ENOMEM, "graph: cannot allocate %zu bytes for %d nodes", total, g->n);
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    size_t bytes = nas_shape_numel(&nd->shape) * sizeof(float);
    nd->val = nas_arena_take(&g->arena, bytes);
    if (nd->needs_grad) nd->grad = nas_arena_take(&g->arena, bytes);
    if (nd->saved_bytes) nd->saved = nas_arena_take(&g->arena, nd->saved_bytes);
  }
  g->scratch_bytes = scratch;
  g->scratch = scratch ? nas_arena_take(&g->arena, scratch) : NULL;
  g->allocated = 1;
  return NAS_OK;
}

int nas_graph_rebatch(nas_graph *g, int max_batch, nas_err *e) {
  if (max_batch < 1) return nas_errf(e, NAS_EINVAL, "graph: batch %d must be >= 1", max_batch);
  if (max_batch == g->max_batch) return NAS_OK;
  /* the leaves' values (params and state: small) are copied out first */
  size_t keep = 0;
  for (int i = 0; i < g->n; i++) {
    const nas_node *nd = &g->nodes[i];
    if (g->allocated && (nd->kind == NAS_NODE_PARAM || nd->kind == NAS_NODE_STATE))
      keep += nas_shape_numel(&nd->shape);
  }
  float *saved = nas_malloc(sizeof(float) * (keep ? keep : 1));
  nas_node *old = nas_malloc(sizeof *old * (size_t)(g->n ? g->n : 1));
  if (!saved || !old) {
    free(saved), free(old);
    return nas_errf(e, NAS_ENOMEM, "graph: out of memory re-batching %d nodes", g->n);
  }
  memcpy(old, g->nodes, sizeof *old * (size_t)g->n);
  for (size_t k = 0, i = 0; i < (size_t)g->n; i++) {
    const nas_node *nd = &g->nodes[i];
    if (!g->allocated || (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE)) continue;
    size_t n = nas_shape_numel(&nd->shape);
    memcpy(saved + k, nd->val, n * sizeof(float));
    k += n;
  }
  const int old_batch = g->max_batch, was = g->allocated;
  nas_arena arena = g->arena;
  memset(&g->arena, 0, sizeof g->arena);
  g->max_batch = max_batch, g->allocated = 0;
  int rc = NAS_OK;
  for (int i = 0; rc == NAS_OK && i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    nd->val = NULL, nd->grad = NULL, nd->saved = NULL;
    if (nd->kind == NAS_NODE_OP) rc = nas_op_table[nd->op].infer(g, nd, e);
    else if (nd->batched) nd->shape.d[0] = max_batch;
  }
  if (rc == NAS_OK && was) rc = nas_graph_alloc(g, e);
  if (rc != NAS_OK) { /* back to the old size, values untouched */
    nas_arena_free(&g->arena);
    memcpy(g->nodes, old, sizeof *old * (size_t)g->n);
    g->arena = arena, g->max_batch = old_batch, g->allocated = was;
  } else {
    nas_arena_free(&arena);
    for (size_t k = 0, i = 0; was && i < (size_t)g->n; i++) {
      nas_node *nd = &g->nodes[i];
      if (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE) continue;
      size_t n = nas_shape_numel(&nd->shape);
      memcpy(nd->val, saved + k, n * sizeof(float));
      k += n;
    }
  }
  if (g->batch > g->max_batch) g->batch = g->max_batch;
  free(saved), free(old);
  return rc;
}

void nas_graph_forward(nas_graph *g, int batch, int upto) {
  if (batch < 1) batch = 1;
  if (batch > g->max_batch) batch = g->max_batch;
  g->batch = batch;
  int last = (upto < 0 || upto >= g->n) ? g->n - 1 : upto;
  for (int i = 0; i <= last; i++) {
    nas_node *nd = &g->nodes[i];
    if (nd->kind == NAS_NODE_OP) nas_op_table[nd->op].forward(g, nd);
  }
}

/* Params (small) are zeroed and marked written; op-node gradients are marked unwritten, so
 * their first contribution overwrites them instead of a memset of every activation. */
static void reset_grads(nas_graph *g, int upto) {
  for (int i = 0; i <= upto; i++) {
    nas_node *nd = &g->nodes[i];
    if (!nd->grad) continue;
    if (nd->kind == NAS_NODE_OP) {
      nd->grad_written = 0;
    } else {
      memset(nd->grad, 0, nas_node_numel(g, nd) * sizeof(float));
      nd->grad_written = 1;
    }
  }
}

static void sweep_back(nas_graph *g, int from) {
  for (int i = from; i >= 0; i--) {
    nas_node *nd = &g->nodes[i];
    /* a node no gradient reached contributes nothing */
    if (nd->kind == NAS_NODE_OP && nd->needs_grad && nd->grad_written)
      nas_op_table[nd->op].backward(g, nd);
  }
}

void nas_graph_backward(nas_graph *g, int loss) {
  if (loss < 0 || loss >= g->n || !g->nodes[loss].grad) return;
  reset_grads(g, loss);
  g->nodes[loss].grad[0] = 1.0f;
  g->nodes[loss].grad_written = 1;
  sweep_back(g, loss);
}

void nas_graph_backward_seed(nas_graph *g, int from, const float *seed) {
  if (from < 0 || from >= g->n || !g->nodes[from].grad) return;
  reset_grads(g, from);
  nas_node *nd = &g->nodes[from];
  memcpy(nd->grad, seed, nas_node_numel(g, nd) * sizeof(float));
  nd->grad_written = 1;
  sweep_back(g, from);
}
