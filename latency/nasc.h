/* latency/nasc.h: the cost of the engine's own C export (runtime/, the `nas-c` runtime of
 * latency/target.h) on a Cortex-M core: a per-operator instruction model of the runtime's
 * kernels, fitted on emulated runs (latency/emulator.h), and its cycles on a part.
 *
 * Features follow the path each operator takes (the selection of runtime/nasrt_invoke.c on
 * the data deploy/prep8.c prepares) and that path's loops: CONV_2D 1x1 without scratch
 * (conv1x1_direct) or with it, im2col by its three cases (ci % 4 == 0, whole filter rows,
 * staged), per channel pair and pixel pair the groups of four depths and the remainder;
 * depthwise by groups of four channels (3x3 unrolled or per filter row inside the input,
 * gathered border windows), the leftover channels one at a time, a multiplier above 1 on the
 * portable kernel; FC by four channels (DSP cores) then pairs; pooling by words of four
 * channels; elementwise per element. Every kind also has a constant (the eval, the layer
 * mark). Cycles on a part use the latency/cycles.h scheme: instructions x
 * the class mix the emulator measured for the kind on that core x the core's CPI x the part's
 * scale (fitted on TFLM builds of the board and transferred: ASSUMED to hold for the C
 * export's gcc -O2 build too) + the flash term of the weights (a conv walks its filter per
 * pair of output pixels; depthwise and FC read it once).
 *
 * WINOGRAD_CONV_2D (runtime/nasrt_wino.c) has one kind per tile size (wino2, wino4), its
 * features following that kernel's loops: per input tile, per tile and input channel (the
 * input transform and V's requantisation), the flex tables' multiply-adds (0 for a static
 * layer), per four input channels of every tile position and output channel (two SMLAD; the
 * same loop of 4 products on a Cortex-M0+), per product (M's requantisation), per tile and
 * output channel (the output transform), per output value, per weight of a run-time weight
 * transform (0 with pre-transformed U) and per call. Its flash term reads U once per tile
 * unless U fits the data cache. Coefficients come from latency/calibration/nasc_wino_fit.c.
 *
 * Coefficients: latency/calibration/nasc_insn.json (format "nas-nasc-insn-2", written by
 * build/nasc_fit, docs/costs.md). Ownership: nas_nasc_model owns nothing. Never prints. */
#ifndef NAS_LATENCY_NASC_H
#define NAS_LATENCY_NASC_H

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/cycles.h"
#include "latency/tflm.h"

/* Cores the emulator runs (and the model has coefficients for). */
enum nas_nasc_core { NAS_NASC_M4 = 0, NAS_NASC_M7, NAS_NASC_M33, NAS_NASC_M0PLUS, NAS_NASC_NCORE };
const char *nas_nasc_core_name(int core);   /* "cortex-m4", ... */
int nas_nasc_core_from_name(const char *s); /* -1 when unknown */

/* Operator kinds of the runtime (its NASRT_OPS). */
enum nas_nasc_kind {
  NAS_NASC_CONV = 0, NAS_NASC_DWCONV, NAS_NASC_FC, NAS_NASC_AVGPOOL, NAS_NASC_MAXPOOL,
  NAS_NASC_ADD, NAS_NASC_SOFTMAX, NAS_NASC_REQUANT, NAS_NASC_COPY,
  NAS_NASC_WINO2, NAS_NASC_WINO4, /* WINOGRAD_CONV_2D, F(2x2,3x3) and F(4x4,3x3) */
  NAS_NASC_NKIND
};
const char *nas_nasc_kind_name(int kind); /* "conv", ...; NULL out of range */
#define NAS_NASC_MAXF 16

/* The kind of operator i of g (enum nas_g8_opkind -> nas_nasc_kind), or -1. */
int nas_nasc_kind_of(const nas_g8_graph *g, int i);
int nas_nasc_nfeat(int kind);
const char *nas_nasc_feat_name(int kind, int k);
/* Features of operator i on a core with (dsp = 1) or without the DSP extension; returns the
 * kind or -1 (error set) for an operator the runtime does not run. */
int nas_nasc_features(const nas_g8_graph *g, const nas_g8_plan *plan, int i, int dsp, double *f,
                      nas_err *e);

typedef struct nas_nasc_model {
  int fitted[NAS_NASC_NCORE][NAS_NASC_NKIND];
  double coef[NAS_NASC_NCORE][NAS_NASC_NKIND][NAS_NASC_MAXF];
  double mix[NAS_NASC_NCORE][NAS_NASC_NKIND][NAS_CYC_NCNT]; /* class mix per instruction */
} nas_nasc_model;

int nas_nasc_load(const char *path, nas_nasc_model *m, nas_err *e);
int nas_nasc_save(const char *path, const nas_nasc_model *m, const char *provenance, nas_err *e);
/* NAS_SOURCE_DIR "/latency/calibration/nasc_insn.json" */
const char *nas_nasc_default_path(void);

/* Instructions of operator i on core; plan: g's arena plan (nas_g8_plan_build: it says which
 * 1x1 convs run with scratch) or NULL (assumed they all do). NAS_EINVAL for a kind without
 * coefficients. */
int nas_nasc_op_insn(const nas_nasc_model *m, int core, const nas_g8_graph *g,
                     const nas_g8_plan *plan, int i, double *insn, nas_err *e);

/* Cycles of every operator of g on part p (its core must be one of enum nas_nasc_core: the
 * part's core_name decides), op_cycles[g->nops]; *total = their sum. The part's memory
 * system and scale are latency/cycles.h's. */
int nas_nasc_graph_cycles(const nas_nasc_model *m, const nas_cycles_part *p,
                          const nas_g8_graph *g, double *op_cycles, double *total, nas_err *e);

#endif
