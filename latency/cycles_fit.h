/* latency/cycles_fit.h: fitting the cycles model of latency/cycles.h.
 *
 * Two inputs:
 *  - the instruction-class mix per core and CMSIS-NN path, from the training split of the
 *    shared corpus (latency/tflm_fit.h: not held out, not MLPerf Tiny);
 *  - published board measurements: the measurement CSVs of latency/calibration (rows as
 *    nas_meas_read_csv reads them) for the models that latency/calibration/board_models.csv
 *    gives an architecture (model,csv,arch,weights,ops: the arch JSON is lowered by the
 *    engine, nas_lower_structure; "weights" is flash or sram; "ops" maps the layer ids of
 *    per-layer rows to operator indices, "conv1=0;pool1=1;..."). MLPerf Tiny results are
 *    never among them: they stay an independent check.
 * The parts come from latency/calibration/parts.json: each target's memory system from its
 * datasheet, and for a part without measurements the calibrated part its scale is taken
 * from and why. A scale is fitted per part and build: it minimises
 * sum_i w_i ((scale * b_i + f_i - y_i) / y_i)^2 over the rows of that part and build (b: core
 * cycles, f: flash stall, y: measured cycles; w = 1 for a whole-model row, a layer row's
 * share of its model's measured time otherwise, so that every published model weighs the
 * same). A part is calibrated when it has rows of build NAS_CYCLES_BUILD ("tflm": TFLM with
 * the CMSIS-NN kernels, the runtime the model prices); its scale is that build's. Other
 * builds (the 2018 CMSIS-NN example, whose legacy q7 kernels run other code than the
 * instruction model's) get their own scale and are reported, not priced.
 * Ownership: a nas_cycles_boards owns its rows and graphs (nas_cycles_boards_free,
 * NULL-safe). Never prints. */
#ifndef NAS_LATENCY_CYCLES_FIT_H
#define NAS_LATENCY_CYCLES_FIT_H

#include "latency/cycles.h"
#include "latency/tflm_fit.h"

/* Reads parts.json (datasheet facts; no fitted numbers) into m->part (m->mix untouched).
 * Errors name the file and field. */
int nas_cycles_parts_load(const char *path, nas_cycles_model *m, nas_err *e);

/* The class mix of every core and path from the corpus' training split (paths without a
 * training operator have none). */
int nas_cycles_mix_fit(const nas_tflm_corpus *c, nas_cycles_model *m, nas_err *e);

/* One published measurement (a whole model or one layer of it) on one part. */
#define NAS_CYCLES_BUILD "tflm"

typedef struct nas_cycles_row {
  char target[32], model[48], layer[32];
  char build[24];           /* board_models.csv's build */
  int graph;                /* index into nas_cycles_boards.graph */
  int op_first, op_last;    /* operators it covers; a whole-model row: 0 .. nops-1 */
  int whole;                /* 1: a whole-model row (the interpreter's overhead included) */
  unsigned flags;           /* NAS_CYC_WEIGHTS_SRAM when the weights were in SRAM */
  double measured;          /* cycles (ms x the part's clock) */
  double weight;            /* w_i above */
  /* filled by nas_cycles_fit_parts with the fitted model */
  double insn, core_cycles, flash_cycles, predicted, err;
} nas_cycles_row;

typedef struct nas_cycles_boards {
  int ngraphs;
  nas_g8_graph *graph;      /* [ngraphs], owned: the lowered architectures */
  char (*graph_arch)[96];   /* [ngraphs] the arch file of each (relative to the dir) */
  int nrows;
  nas_cycles_row *row;      /* [nrows], owned */
  int nskipped;             /* measurement rows of models without an architecture */
} nas_cycles_boards;

/* Reads dir/board_models.csv and the measurement CSVs it names, keeping the rows of parts
 * in m (clocks from m). Rows of models without an architecture are counted in nskipped. */
int nas_cycles_boards_read(const char *dir, const nas_cycles_model *m, nas_cycles_boards *b,
                           nas_err *e);
void nas_cycles_boards_free(nas_cycles_boards *b); /* NULL-safe */

/* Summary of the fit of one part and build. */
typedef struct nas_cycles_fit_stats {
  char target[32], build[24];
  double scale;
  int rows, models;
  double median, max;       /* in-sample relative error over the rows */
  double loo_median, loo_max; /* leaving each model out in turn (parts with >= 2 models) */
} nas_cycles_fit_stats;

/* Fits every part and build that has rows (a part with NAS_CYCLES_BUILD rows becomes
 * calibrated: scale, rows, errors and a generated calibration text), leaves the others to
 * their 'from' part (whose scale they take) and fills the rows' predictions (each with its
 * own build's scale). *stats (owned by the caller, free()) gets one entry per fitted part
 * and build, *nstats their count; stats may be NULL. m->mix must be set. */
int nas_cycles_fit_parts(nas_cycles_model *m, const nas_tflm_insn_model *im,
                         nas_cycles_boards *b, nas_cycles_fit_stats **stats, int *nstats,
                         nas_err *e);

#endif
