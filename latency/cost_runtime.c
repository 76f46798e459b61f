/* latency/cost_runtime.c: the arena and latency of a graph under the target's runtime
 * (latency/cost_runtime.h), and loading each runtime's cost models with the target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/datadir.h"
#include "deploy/wino8.h"
#include "latency/cost_runtime.h"

void nas_target_rt_free(nas_target_rt *rt) {
  if (!rt) return;
  nas_cycles_model_free(&rt->cyc);
  free(rt);
}

int nas_target_rt_load(const nas_target *t, int runtime, nas_target_rt **out, nas_err *e) {
  *out = NULL;
  if (runtime < 0 || runtime >= NAS_RT_COUNT)
    return nas_errf(e, NAS_EINVAL, "target %s: runtime %d is unknown", t->id, runtime);
  nas_target_rt *rt = nas_calloc(1, sizeof *rt);
  if (!rt) return nas_errf(e, NAS_ENOMEM, "target %s: out of memory", t->id);
  rt->runtime = runtime;
  const int dsp = t->core == NAS_CORE_M4 || t->core == NAS_CORE_M7 || t->core == NAS_CORE_M33 ||
                  t->core == NAS_CORE_M55;
  rt->arena_flags = (dsp ? NAS_TFLM_DSP : 0u) | (runtime == NAS_RT_TFLM_REFERENCE ? NAS_TFLM_REFERENCE : 0u);
  int rc = NAS_OK;
  const char *id = t->cycles_part[0] ? t->cycles_part : t->id;
  if (runtime == NAS_RT_TFLM_REFERENCE) {
    snprintf(rt->latency_note, sizeof rt->latency_note,
             "%s has no instruction model: latency from the target's %s model", nas_runtime_name(runtime),
             nas_latmodel_name(t->model));
  } else if (t->n_lookup > 0) {
    snprintf(rt->latency_note, sizeof rt->latency_note,
             "the target has a measured lookup table: latency from it and the %s model",
             nas_latmodel_name(t->model));
  } else if (runtime == NAS_RT_NAS_C) {
    char cyc[4200], nasc[4200];
    rc = nas_data_path("latency/calibration/cycles.json", cyc, sizeof cyc, e);
    if (!rc) rc = nas_data_path("latency/calibration/nasc_insn.json", nasc, sizeof nasc, e);
    if (!rc) rc = nas_cycles_load(cyc, &rt->cyc, e);
    if (!rc) rc = nas_nasc_load(nasc, &rt->nasc, e);
    if (!rc) {
      rt->part = nas_cycles_find(&rt->cyc, id);
      const int core = rt->part ? nas_nasc_core_from_name(rt->part->core_name) : -1;
      if (!rt->part || rt->part->core < 0 || core < 0)
        snprintf(rt->latency_note, sizeof rt->latency_note,
                 "no cycles model for %s: latency of the C export from the target's %s model", id,
                 nas_latmodel_name(t->model));
      else
        rt->have_nasc = 1, snprintf(rt->latency_note, sizeof rt->latency_note,
                 "the C export's instruction model (latency/nasc.h) on part %s; its scale is %s's "
                 "TFLM fit, ASSUMED to carry over to the C export's build", id, rt->part->calibrated ? id : rt->part->from);
    }
  } else {
    char cyc[4200], insn[4200];
    rc = nas_data_path("latency/calibration/cycles.json", cyc, sizeof cyc, e);
    if (!rc) rc = nas_data_path("latency/calibration/tflm_insn.json", insn, sizeof insn, e);
    if (!rc) rc = nas_cycles_load(cyc, &rt->cyc, e);
    if (!rc) rc = nas_tflm_insn_load(insn, &rt->insn, e);
    if (!rc) {
      rt->part = nas_cycles_find(&rt->cyc, id);
      if (t->cycles_part[0] && !rt->part)
        rc = nas_errf(e, NAS_EINVAL, "target %s: field 'cycles_part': '%s' is not a part of "
                      "latency/calibration/cycles.json", t->id, id);
      else if (!rt->part)
        snprintf(rt->latency_note, sizeof rt->latency_note,
                 "no cycles model for %s (not in latency/calibration/cycles.json): latency from the "
                 "target's %s model", id, nas_latmodel_name(t->model));
      else if (rt->part->core < 0)
        snprintf(rt->latency_note, sizeof rt->latency_note, "no cycles model for %s: %.200s", id,
                 rt->part->calibration);
      else
        rt->have_cycles = 1;
    }
  }
  if (rc) {
    nas_target_rt_free(rt);
    return rc;
  }
  *out = rt;
  return NAS_OK;
}

int nas_target_set_runtime(nas_target *t, int runtime, nas_err *e) {
  nas_target_rt *rt = NULL;
  int rc = nas_target_rt_load(t, runtime, &rt, e);
  if (rc) return rc;
  nas_target_rt_free(t->rt);
  t->rt = rt, t->runtime = runtime;
  return NAS_OK;
}

/* ---- the arena ----------------------------------------------------------------------------- */

/* deploy/'s planner (the nas-c runtime): the C export's arena. */
static int plan_nas_c(nas_price *p, const nas_g8_graph *g, const int *op_layer, nas_err *e) {
  nas_g8_plan pl;
  int rc = nas_g8_plan_build(g, &pl, e);
  if (rc) return rc;
  long long best = -1;
  for (int i = 0; i < g->nops; i++) {
    long long ext = 0; /* arena bytes in use while operator i runs */
    for (int k = 0; k < g->ntensors; k++) {
      if (pl.offset[k] < 0 || pl.first[k] > i || pl.last[k] < i) continue;
      long long end = pl.offset[k] + (long long)nas_g8_tensor_bytes(&g->tensors[k]);
      if (end > ext) ext = end;
    }
    if (pl.scratch && pl.scratch[i] >= 0) { /* the operator's scratch (deploy/planner.c) */
      long long end = pl.scratch[i] + (long long)nas_g8_op_scratch(g, i, NULL);
      if (end > ext) ext = end;
    }
    int L = op_layer[i];
    if (L >= 0 && L < p->n_layers && ext > p->layers[L].sram_bytes) p->layers[L].sram_bytes = ext;
    if (ext > best) best = ext, p->peak_layer = L;
  }
  p->arena_bytes = (long long)pl.peak;
  p->sram_method = "planner";
  nas_g8_plan_free(&pl);
  return NAS_OK;
}

/* TFLM's arena: head (planned, with the kernels' scratch) + persistent tail. */
static int plan_tflm(nas_price *p, const nas_g8_graph *g, const int *op_layer, unsigned flags,
                     nas_err *e) {
  long *head = nas_malloc(sizeof *head * ((size_t)g->nops + 1));
  if (!head) return nas_errf(e, NAS_ENOMEM, "pricing: out of memory for %d operators", g->nops);
  nas_tflm_arena_report r;
  int rc = nas_tflm_arena_ops(g, flags, &r, head, e);
  if (!rc) {
    long long best = -1;
    for (int i = 0; i < g->nops; i++) {
      const long long use = head[i] + r.tail;
      int L = op_layer[i];
      if (L >= 0 && L < p->n_layers && use > p->layers[L].sram_bytes) p->layers[L].sram_bytes = use;
      if (use > best) best = use, p->peak_layer = L;
    }
    p->arena_bytes = r.total;
    p->sram_method = flags & NAS_TFLM_REFERENCE ? "tflm-arena (reference kernels)" : "tflm-arena";
  }
  free(head);
  return rc;
}

/* ---- latency ------------------------------------------------------------------------------- */

static int cycles_latency(nas_price *p, const nas_g8_graph *g, const int *op_layer,
                          const nas_target *t, nas_err *e) {
  const nas_target_rt *rt = t->rt;
  nas_cycles_report r;
  int rc = nas_cycles_graph(&rt->cyc, &rt->insn, rt->part, g, 0, &r, e);
  if (rc) return rc;
  double per_op = 0; /* the interpreter's per-operator instructions, as cycles */
  const int core = rt->part->core;
  rc = nas_cycles_overhead(&rt->cyc, rt->part, rt->insn.per_op[core], &per_op, e);
  if (!rc) {
    const double khz = t->clock_mhz * 1e3;
    for (int i = 0; i < p->n_layers; i++) p->layers[i].latency_ms = 0, p->layers[i].lat_src = "none";
    for (int i = 0; i < g->nops; i++) {
      int L = op_layer[i];
      if (L < 0 || L >= p->n_layers) continue;
      p->layers[L].latency_ms += (r.op[i].cycles + rt->part->scale * per_op) / khz;
      p->layers[L].lat_src = "cycles";
    }
    p->cycles = r.cycles, p->latency_ms = r.cycles / khz;
    p->latency_model = "tflm-cycles";
    p->calibrated = rt->part->calibrated;
  }
  nas_cycles_report_free(&r);
  return rc;
}

/* The C export's instruction model on the part: each operator's cycles to its layer. */
static int nasc_latency(nas_price *p, const nas_g8_graph *g, const int *op_layer,
                        const nas_target *t, nas_err *e) {
  const nas_target_rt *rt = t->rt;
  double *cyc = nas_malloc(sizeof *cyc * ((size_t)g->nops + 1)), total = 0;
  if (!cyc) return nas_errf(e, NAS_ENOMEM, "pricing: out of memory for %d operators", g->nops);
  int rc = nas_nasc_graph_cycles(&rt->nasc, rt->part, g, cyc, &total, e);
  for (int i = 0; !rc && i < g->nops; i++) { /* filters the C export stores sparse */
    long long nnz = 0;
    if (!nas_g8_sparse_pick(g, i) || nas_g8_sparse_bytes(g, i, &nnz) < 0) continue;
    const nas_g8_tensor *w = &g->tensors[g->ops[i].in[1]];
    const long long weights = (long long)nas_g8_numel(w);
    const int fc = g->ops[i].kind == NAS_G8_FULLY_CONNECTED;
    const int co = w->dims[0], kh = fc ? 1 : w->dims[1], kw = fc ? 1 : w->dims[2];
    const long long macs = (long long)(nas_g8_numel(&g->tensors[g->ops[i].out]) / (size_t)co) *
                           (weights / co) * co;
    const int kop = fc ? NAS_KOP_FC : kh * kw == 1 ? NAS_KOP_PWCONV : NAS_KOP_CONV;
    const double before = cyc[i];
    cyc[i] *= nas_sparse_cycle_ratio(t, kop, macs, weights, nnz, co, kh, kw);
    total += cyc[i] - before;
  }
  if (!rc) {
    const double khz = t->clock_mhz * 1e3;
    for (int i = 0; i < p->n_layers; i++) p->layers[i].latency_ms = 0, p->layers[i].lat_src = "none";
    for (int i = 0; i < g->nops; i++) {
      int L = op_layer[i];
      if (L < 0 || L >= p->n_layers) continue;
      p->layers[L].latency_ms += cyc[i] / khz;
      p->layers[L].lat_src = "nas-c-cycles";
    }
    p->cycles = total, p->latency_ms = total / khz;
    p->latency_model = "nas-c-cycles";
    p->calibrated = 0; /* the part's scale is fitted on TFLM builds */
  }
  free(cyc);
  return rc;
}

/* The C export's flash for its Winograd layers: the prepared U [co][P][ci4] replaces the
 * spatial int8 weights (unless they are transformed at run time, which keeps them and adds
 * their u_mult/u_shift), plus the product and output requantisations (int32 + int8 per output
 * channel each); to the layer of each operator and the totals. */
static void wino_flash(nas_price *p, const nas_g8_graph *g, const int *op_layer) {
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    if (op->kind != NAS_G8_WINOGRAD) continue;
    const nas_g8_tensor *x = &g->tensors[op->in[0]], *w = &g->tensors[op->in[1]];
    const long long co = g->tensors[op->out].dims[3], a = op->wino_m + 2;
    const int rt = op->wino_rt && op->in[4] < 0;
    long long d = 10 * co;
    if (rt) d += 5 * co;
    else d += co * a * a * ((x->dims[3] + 3) / 4 * 4) - (long long)w->bytes;
    const int L = op_layer[i];
    if (L >= 0 && L < p->n_layers) p->layers[L].flash_bytes += d;
    p->model_flash_bytes += d, p->flash_bytes += d;
  }
}

static int price_runtime(nas_price *p, const nas_g8_graph *g, const int *op_layer,
                         const nas_target *t, nas_err *e);

int nas_price_runtime(nas_price *p, const nas_g8_graph *g, const int *op_layer,
                      const nas_target *t, nas_err *e) {
  const int rt = t->rt ? t->rt->runtime : NAS_RT_NAS_C;
  int flex = 0;
  if (!nas_g8_wino_count(g, &flex)) return price_runtime(p, g, op_layer, t, e);
  if (rt == NAS_RT_NAS_C) {
    wino_flash(p, g, op_layer);
    return price_runtime(p, g, op_layer, t, e);
  }
  /* TFLM has no Winograd kernel: the TFLite export writes a static layer as CONV_2D, so it is
     priced as that direct convolution; a flex layer has no TFLite form at all */
  if (flex) {
    int rc = price_runtime(p, g, op_layer, t, e);
    if (!rc)
      snprintf(p->latency_note, sizeof p->latency_note, "%d flex Winograd layer(s): no TFLite "
               "form (only --format c runs them); priced from the target's %s model", flex,
               nas_latmodel_name(t->model));
    return rc;
  }
  nas_g8_graph d;
  int rc = nas_g8_wino_as_conv(g, &d, NULL, e);
  if (rc) return rc;
  rc = price_runtime(p, &d, op_layer, t, e);
  nas_g8_graph_free(&d);
  if (!rc && !p->latency_note[0])
    snprintf(p->latency_note, sizeof p->latency_note, "%s has no Winograd kernel: the Winograd "
             "layers priced as the direct CONV_2D the TFLite export writes", nas_runtime_name(rt));
  return rc;
}

static int price_runtime(nas_price *p, const nas_g8_graph *g, const int *op_layer,
                         const nas_target *t, nas_err *e) {
  for (int i = 0; i < p->n_layers; i++) p->layers[i].sram_bytes = 0;
  p->peak_layer = 0;
  const int rt = t->rt ? t->rt->runtime : NAS_RT_NAS_C;
  int rc;
  if (rt == NAS_RT_NAS_C) {
    rc = plan_nas_c(p, g, op_layer, e);
  } else {
    nas_err te = {0};
    rc = plan_tflm(p, g, op_layer, t->rt->arena_flags, &te);
    if (rc == NAS_EINVAL) { /* an operator TFLM's arena model does not know: the planner's */
      snprintf(p->arena_note, sizeof p->arena_note, "TFLM's arena is not modelled for %.200s: "
               "the C export's planned arena instead", te.msg);
      for (int i = 0; i < p->n_layers; i++) p->layers[i].sram_bytes = 0;
      rc = plan_nas_c(p, g, op_layer, e);
    } else if (rc) {
      nas_errf(e, rc, "%s", te.msg);
    }
  }
  if (rc) return rc;
  p->peak_sram_bytes = p->arena_bytes + t->rt_sram;
  p->n_ops = g->nops;
  if (t->rt && t->rt->have_cycles) {
    nas_err ce = {0};
    rc = cycles_latency(p, g, op_layer, t, &ce);
    if (rc == NAS_EINVAL) { /* a path the instruction model has no data for */
      snprintf(p->latency_note, sizeof p->latency_note, "%.200s: latency from the target's %s model",
               ce.msg, nas_latmodel_name(t->model));
      rc = NAS_OK;
    } else if (rc) {
      nas_errf(e, rc, "%s", ce.msg);
    }
  }
  else if (t->rt && t->rt->have_nasc) {
    nas_err ne = {0};
    rc = nasc_latency(p, g, op_layer, t, &ne);
    if (rc == NAS_EINVAL) { /* an operator the model has no coefficients for: say so, keep the
                               coefficient model's latency */
      snprintf(p->latency_note, sizeof p->latency_note, "%.200s: latency from the target's %s model",
               ne.msg, nas_latmodel_name(t->model));
      rc = NAS_OK;
    } else if (rc) {
      nas_errf(e, rc, "%s", ne.msg);
    }
  }
  return rc;
}

int nas_price_tflm_ops(const nas_target *t, const nas_g8_graph *g, double *op_ms,
                       double *invoke_ms, nas_err *e) {
  nas_target_rt *own = NULL;
  const nas_target_rt *rt = t->rt;
  int rc = NAS_OK;
  if (!rt || rt->runtime != NAS_RT_TFLM_CMSIS_NN) {
    nas_target tt = *t; /* a shallow copy priced for TFLM: only its fields are read */
    tt.runtime = NAS_RT_TFLM_CMSIS_NN, tt.n_lookup = 0;
    if ((rc = nas_target_rt_load(&tt, NAS_RT_TFLM_CMSIS_NN, &own, e))) return rc;
    rt = own;
  }
  if (!rt->have_cycles) {
    rc = nas_errf(e, NAS_EINVAL, "target %s: %s", t->id, rt->latency_note);
  } else {
    nas_cycles_report r;
    double per_op = 0;
    rc = nas_cycles_graph(&rt->cyc, &rt->insn, rt->part, g, 0, &r, e);
    if (!rc) {
      rc = nas_cycles_overhead(&rt->cyc, rt->part, rt->insn.per_op[rt->part->core], &per_op, e);
      const double khz = t->clock_mhz * 1e3;
      for (int i = 0; !rc && i < g->nops; i++) op_ms[i] = (r.op[i].cycles + rt->part->scale * per_op) / khz;
      if (!rc) *invoke_ms = r.cycles / khz;
      nas_cycles_report_free(&r);
    }
  }
  nas_target_rt_free(own);
  return rc;
}
