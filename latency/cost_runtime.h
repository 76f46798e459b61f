/* latency/cost_runtime.h: the costs of a deployment under the runtime a target is priced for
 * (latency/target.h, enum nas_runtime): the tensor arena the runtime allocates, and the
 * runtime's own latency model where it has one.
 *
 *   tflm-cmsis-nn   arena = TFLM's arena_used_bytes() on a 32-bit core (latency/tflm.h:
 *                   the planned head with the CMSIS-NN kernels' scratch buffers, plus the
 *                   persistent tail), the DSP build on cores with the DSP extension (M4, M7,
 *                   M33, M55); latency = the cycles model (latency/cycles.h) of the part named
 *                   by the target's cycles_part (default: its id) in
 *                   latency/calibration/cycles.json, with the instruction model of
 *                   latency/calibration/tflm_insn.json; a part without one (Cortex-M0+, M55,
 *                   a target not in the file) keeps the target's coefficient model, and the
 *                   price says why (latency_note).
 *   tflm-reference  arena = the same without CMSIS-NN scratch (NAS_TFLM_REFERENCE); latency =
 *                   the target's coefficient model.
 *   nas-c           arena = deploy/'s planner peak, byte for byte the C export's
 *                   <NAME>_ARENA_BYTES; latency = the C export's instruction model
 *                   (latency/nasc.h) on the target's part of cycles.json (its memory system
 *                   and scale: the scale is fitted on TFLM builds, so this latency is marked
 *                   transferred); a part without one keeps the coefficient model.
 * In every case peak_sram_bytes = arena_bytes + the target's runtime_overhead_sram_bytes (what
 * lives outside the arena: the interpreter and resolver objects, the stack).
 * A layer's sram_bytes is the arena in use while its operators run (for TFLM: the planned head
 * in use plus the whole tail).
 * Ownership: nas_target_rt belongs to its nas_target (nas_target_free frees it). */
#ifndef NAS_LATENCY_COST_RUNTIME_H
#define NAS_LATENCY_COST_RUNTIME_H

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/cost.h"
#include "latency/cycles.h"
#include "latency/nasc.h"
#include "latency/target.h"

typedef struct nas_target_rt {
  int runtime;                /* enum nas_runtime these models are for */
  unsigned arena_flags;       /* NAS_TFLM_* flags of the TFLM arena (TFLM runtimes) */
  int have_cycles;            /* 1: the cycles model prices latency (tflm-cmsis-nn) */
  int have_nasc;              /* 1: the C export's model prices latency (nas-c) */
  nas_nasc_model nasc;        /* when have_nasc */
  nas_tflm_insn_model insn;   /* when have_cycles */
  nas_cycles_model cyc;       /* when have_cycles (owns its parts) */
  const nas_cycles_part *part;/* into cyc */
  char latency_note[300];     /* why latency comes from the coefficient model ("" with cycles) */
} nas_target_rt;

/* Loads the cost models of runtime for target t (reads latency/calibration/cycles.json and
 * tflm_insn.json for tflm-cmsis-nn). */
int nas_target_rt_load(const nas_target *t, int runtime, nas_target_rt **out, nas_err *e);
void nas_target_rt_free(nas_target_rt *rt); /* NULL-safe */

/* Fills p's arena_bytes, peak_sram_bytes, sram_method, n_ops, per-layer sram_bytes and
 * peak_layer for graph g (validated) under t's runtime, and, when the runtime has its own
 * latency model, p's cycles, latency_ms, per-layer latency_ms and lat_src ("cycles"),
 * latency_model and calibrated. op_layer[i] is the layer of operator i (p->n_layers layers). */
int nas_price_runtime(nas_price *p, const nas_g8_graph *g, const int *op_layer,
                      const nas_target *t, nas_err *e);
/* The tflm-cmsis-nn cycles model's prediction for every operator of g (validated) on t's part,
 * whatever runtime t is priced for: op_ms[g->nops] (each operator with its share of the
 * interpreter's per-operator code) and the whole Invoke. NAS_EINVAL with the reason when t's
 * part has no cycles model (`nas measure` prints it beside the emulated nas-c figures). */
int nas_price_tflm_ops(const nas_target *t, const nas_g8_graph *g, double *op_ms,
                       double *invoke_ms, nas_err *e);
/* A new price's runtime, latency model, calibrated flag and note as t's runtime gives them
 * before any graph is priced (latency/cost.c, cost_graph.c). */
void nas_price_defaults(nas_price *p, const nas_target *t);

#endif
