/* latency/cost_graph.c: peak SRAM of a lowered network, and pricing of an int8 graph
 * (.tflite) or a checkpoint. See cost.h ("Peak SRAM") and cost_runtime.h for the rules.
 *
 * An architecture is lowered by the real lowering (deploy/lower_shape.h) and its graph is
 * planned by nas_g8_plan_build, the function the C export sizes its arena with, so the two
 * figures cannot drift apart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/graph8.h"
#include "core/alloc.h"
#include "deploy/lower_shape.h"
#include "latency/cost.h"
#include "latency/cost_runtime.h"
#include "train/checkpoint.h"

/* Internal to latency/ (declared in cost.c): the planner's SRAM for a built network. */
int nas_price_net_sram(nas_price *p, const nas_net *net, const nas_lower_cfg *lcfg,
                       const nas_target *t, nas_err *e);
int nas_price_net_sram(nas_price *p, const nas_net *net, const nas_lower_cfg *lcfg,
                       const nas_target *t, nas_err *e) {
  nas_g8_graph g;
  int rc = nas_lower_structure(net, lcfg, &g, e);
  if (rc) return rc;
  int *op_layer = nas_malloc(sizeof *op_layer * (size_t)(g.nops + 1));
  if (!op_layer) {
    nas_g8_graph_free(&g);
    return nas_errf(e, NAS_ENOMEM, "pricing: out of memory for %d operators", g.nops);
  }
  /* An operator belongs to the arch layer named by its output tensor ("l3.pw.bn" -> 3);
   * operators without one (the final softmax) to the layer before them. */
  int prev = 0;
  for (int i = 0; i < g.nops; i++) {
    int li = -1;
    if (sscanf(g.tensors[g.ops[i].out].name, "l%d.", &li) != 1 || li < 0 || li >= p->n_layers)
      li = prev;
    op_layer[i] = prev = li;
  }
  rc = nas_price_runtime(p, &g, op_layer, t, e);
  free(op_layer);
  nas_g8_graph_free(&g);
  return rc;
}

/* ---- pricing an int8 graph --------------------------------------------------------------- */

static void dims_hwc(const nas_g8_tensor *x, int *h, int *w, int *c) {
  if (x->ndim == 4) *h = x->dims[1], *w = x->dims[2], *c = x->dims[3];
  else if (x->ndim == 3) *h = x->dims[1], *w = 1, *c = x->dims[2];
  else *h = *w = 1, *c = x->ndim >= 1 ? x->dims[x->ndim - 1] : 1;
}

/* Fills c for operator i; returns 1 when the operator is a priced kernel call, else 0. */
static int graph_call(const nas_g8_graph *g, int i, nas_kcall *c) {
  const nas_g8_op *op = &g->ops[i];
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  memset(c, 0, sizeof *c);
  c->layer = i;
  dims_hwc(x, &c->in_h, &c->in_w, &c->in_c);
  dims_hwc(y, &c->out_h, &c->out_w, &c->out_c);
  c->kh = c->kw = 1;
  long long oel = (long long)nas_g8_numel(y), iel = (long long)nas_g8_numel(x);
  c->in_bytes = iel, c->out_bytes = oel;
  const nas_g8_tensor *w = op->nin > 1 && op->in[1] >= 0 ? &g->tensors[op->in[1]] : NULL;
  switch (op->kind) {
    case NAS_G8_CONV_2D:
      c->kh = w->dims[1], c->kw = w->dims[2];
      c->kop = c->kh == 1 && c->kw == 1 ? NAS_KOP_PWCONV : NAS_KOP_CONV;
      c->macs = oel * c->kh * c->kw * w->dims[3];
      break;
    case NAS_G8_DEPTHWISE_CONV_2D:
      c->kh = w->dims[1], c->kw = w->dims[2], c->kop = NAS_KOP_DWCONV;
      c->macs = oel * c->kh * c->kw;
      break;
    case NAS_G8_FULLY_CONNECTED:
      c->kop = NAS_KOP_FC, c->in_c = w->dims[1];
      c->in_h = c->in_w = 1;
      c->macs = oel * w->dims[1];
      break;
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D:
      c->kh = op->filter_h, c->kw = op->filter_w;
      if (c->out_h == 1 && c->out_w == 1 && c->kh >= c->in_h && c->kw >= c->in_w)
        c->kop = NAS_KOP_GAP, c->ops = iel;
      else
        c->kop = NAS_KOP_POOL, c->ops = oel * c->kh * c->kw;
      break;
    case NAS_G8_ADD: c->kop = NAS_KOP_ADD, c->ops = oel, c->in_bytes = 2 * iel; break;
    default: return 0;
  }
  if (c->macs) c->ops = c->macs;
  return 1;
}

int nas_price_graph(const nas_g8_graph *g, const nas_target *t, nas_price **out, nas_err *e) {
  *out = NULL;
  int rc = nas_g8_validate(g, e);
  if (rc) return rc;
  if (g->tensors[g->input].data || g->tensors[g->output].data)
    return nas_errf(e, NAS_EINVAL, "pricing: the graph's input and output must be activations");
  nas_price *p = nas_calloc(1, sizeof *p);
  int n = g->nops;
  if (p) p->calls = nas_calloc((size_t)n + 1, sizeof *p->calls), p->layers = nas_calloc((size_t)n + 1, sizeof *p->layers);
  int *op_layer = nas_malloc(sizeof *op_layer * ((size_t)n + 1));
  unsigned char *counted = nas_calloc((size_t)g->ntensors + 1, 1);
  if (!p || !p->calls || !p->layers || !op_layer || !counted) {
    rc = nas_errf(e, NAS_ENOMEM, "pricing: out of memory for %d operators", n);
    goto done;
  }
  p->n_layers = n;
  nas_price_defaults(p, t);
  p->model_flash_bytes = 8; /* the input's quantisation parameters */
  for (int i = 0; i < n; i++) {
    const nas_g8_op *op = &g->ops[i];
    nas_price_layer *L = &p->layers[i];
    op_layer[i] = i;
    snprintf(L->op, sizeof L->op, "%s", nas_g8_op_short(op->kind));
    dims_hwc(&g->tensors[op->out], &L->out_h, &L->out_w, &L->out_c);
    L->flash_bytes = 8; /* the output's quantisation parameters */
    /* nas-c stores a conv / fc filter sparse where that is smaller (deploy/graph8.h) */
    long long nnz = 0, sparse = t->runtime == NAS_RT_NAS_C && nas_g8_sparse_pick(g, i)
                                    ? nas_g8_sparse_bytes(g, i, &nnz) : -1;
    for (int k = 0; k < op->nin; k++) {
      int ti = op->in[k];
      if (ti < 0 || !g->tensors[ti].data || counted[ti]) continue;
      const nas_g8_tensor *c = &g->tensors[ti];
      counted[ti] = 1;
      L->params += (long long)nas_g8_numel(c);
      L->flash_bytes += (k == 1 && sparse >= 0 ? sparse : (long long)c->bytes) +
                        (c->type == NAS_G8_INT8 ? 8LL * c->nq : 0);
    }
    nas_kcall *c = &p->calls[p->n_calls];
    if (graph_call(g, i, c)) {
      c->flash_bytes = L->flash_bytes;
      if (sparse >= 0) nas_kcall_sparse(c, t, nnz, (long long)nas_g8_numel(&g->tensors[op->in[1]]));
      if ((rc = nas_kcall_cycles(t, c, &c->cycles, &c->lat_src, e))) {
        nas_err_prefix(e, "operator %d (%s)", i, nas_g8_op_name(op->kind));
        goto done;
      }
      static const char *const SRC[] = {"per-layer", "linear", "lookup"};
      L->macs = c->macs;
      L->latency_ms = c->cycles / (t->clock_mhz * 1e3);
      L->lat_src = SRC[c->lat_src];
      p->cycles += c->cycles;
      p->n_calls++;
    } else {
      L->lat_src = "none";
    }
    p->macs += L->macs, p->params += L->params, p->model_flash_bytes += L->flash_bytes;
  }
  if (t->model == NAS_LAT_LINEAR) p->cycles += t->fixed_cycles;
  if (p->cycles < 0) p->cycles = 0;
  p->latency_ms = p->cycles / (t->clock_mhz * 1e3);
  p->flash_bytes = p->model_flash_bytes + t->rt_flash;
  rc = nas_price_runtime(p, g, op_layer, t, e);
done:
  free(op_layer), free(counted);
  if (rc) nas_price_free(p);
  else *out = p;
  return rc;
}

int nas_price_tflite(const char *path, const nas_target *t, nas_price **out, nas_err *e) {
  nas_g8_graph g;
  *out = NULL;
  int rc = nas_tflite_read(path, &g, e);
  if (rc) return rc;
  rc = nas_price_graph(&g, t, out, e);
  if (rc) nas_err_prefix(e, "%s", path);
  nas_g8_graph_free(&g);
  return rc;
}

int nas_price_checkpoint(const char *path, const nas_target *t, nas_price **out, nas_err *e) {
  nas_ckpt c;
  nas_net *net = NULL;
  *out = NULL;
  int rc = nas_ckpt_load(path, &c, e);
  if (rc) return rc;
  rc = nas_net_build(c.arch_json, path, 1, 1, &net, e);
  if (rc == NAS_OK && (rc = nas_ckpt_apply(&c, net->g, e)) != NAS_OK) nas_err_prefix(e, "%s", path);
  if (rc == NAS_OK) rc = nas_price_net(net, t, out, e);
  nas_net_free(net);
  nas_ckpt_free(&c);
  return rc;
}
