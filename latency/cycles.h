/* latency/cycles.h: cycles of a TFLM + CMSIS-NN inference on a real board, from the
 * instructions the per-operator model of latency/tflm.h predicts.
 *
 * Per operator on a part p (a target: core, clock, memory system):
 *   cycles = p.scale * core_cycles + flash_stall
 *   core_cycles = insn * sum_k mix[core][path][k] * cpi[k]
 *     mix: the operator path's instruction-class mix on that core, measured on the training
 *          split of the shared corpus (loads + stores, multiplies, branches, other; extra
 *          registers of multiple transfers, taken branches, divides; per instruction);
 *     cpi: the core's per-class timings (latency/emulator.h nas_cpi_for_core: the Cortex-M4
 *          TRM table; the M33 and M7 figures as documented there);
 *   flash_stall = lines * ((wait states + 1) * (core clock / flash clock) - 1)
 *     lines: the weight bytes the kernel streams from flash divided by the part's line size
 *          (the weights are read once when the kernel's reuse set fits the part's cache that
 *          keeps flash data, else once per pass over the output, see nas_cycles_flash_bytes);
 *     a line costs one flash access of (wait states + 1) flash-clock cycles instead of the
 *          one cycle of a hit, with the wait states from the part's datasheet at its clock.
 *          Instruction fetches are assumed to hit the accelerator or cache (CMSIS-NN's inner
 *          loops are a few hundred bytes).
 *   scale: the one constant fitted per board on published measurements (MicroNets Table 4,
 *          the CMSIS-NN per-layer figures of the seed talk) by latency/calibration/cycles_fit.c:
 *          what the TRM table and the memory term leave out (pipeline overlap, the measured
 *          builds' compiler and kernel versions). A part without published measurements
 *          takes the scale of a calibrated part of the same pipeline ("transferred", with the
 *          reason in the file).
 * Invoke = sum over operators + the interpreter's instructions (latency/tflm.h) at the core's
 * all-path mix, times the scale.
 *
 * The coefficients, the parts and their provenance are latency/calibration/cycles.json
 * (format "nas-cycles-1"; docs/costs.md has the tables). Ownership: a nas_cycles_model owns
 * its parts (nas_cycles_model_free, NULL-safe); a nas_cycles_report owns its operator array
 * (nas_cycles_report_free, NULL-safe). Library code: never prints. */
#ifndef NAS_LATENCY_CYCLES_H
#define NAS_LATENCY_CYCLES_H

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/tflm.h"

/* Counters of the class mix, per instruction. */
enum nas_cyc_cnt {
  NAS_CYC_LDST = 0, /* loads and stores (LDR*, STR*, LDM/STM, PUSH/POP, LDRD/STRD) */
  NAS_CYC_MUL,      /* multiplies and MACs (SMLAD, MLA, ...) */
  NAS_CYC_BRANCH,   /* branches and PC writes */
  NAS_CYC_OTHER,    /* everything else: ALU, SIMD (SXTB16, QADD8, ...), IT, moves */
  NAS_CYC_XFER,     /* registers beyond the first of multiple transfers */
  NAS_CYC_TAKEN,    /* taken branches */
  NAS_CYC_DIV,      /* SDIV/UDIV (also in OTHER) */
  NAS_CYC_NCNT
};
const char *nas_cyc_cnt_name(int k); /* "ldst", "mul", ...; NULL out of range */

/* A part (a target) as the cycles model sees it. */
typedef struct nas_cycles_part {
  char id[32];              /* target id ("stm32f446re") */
  char core_name[16];       /* "cortex-m4", ... as the target names it */
  int core;                 /* enum nas_tflm_core; -1: a core without instruction data
                               (the part is listed, with why, but cannot be priced) */
  double clock_mhz;
  /* memory system, from the part's datasheet at clock_mhz */
  double flash_ws;          /* flash wait states (of the flash interface's clock) */
  double flash_clock_div;   /* core clock / flash interface clock (1, or 2 on a half-speed bus) */
  int line_bytes;           /* bytes one flash access brings into the cache/accelerator */
  long dcache_bytes;        /* cache that keeps flash data (0: none) */
  char memory_source[400];  /* datasheet references, ASSUMED where a figure is not published */
  /* the fitted constant */
  double scale;
  int calibrated;           /* 1: fitted on this part's published measurements */
  char from[32];            /* transferred: the calibrated part the scale is taken from */
  char calibration[600];    /* the rows it was fitted on, or why the transfer is sound */
  int rows;                 /* calibrated: measurement rows fitted */
  double err_median, err_max; /* calibrated: in-sample relative error over the rows */
} nas_cycles_part;

typedef struct nas_cycles_model {
  /* class mix per core and path; [NAS_TFLM_NPATH] = all paths (the interpreter's code) */
  double mix[NAS_TFLM_NCORE][NAS_TFLM_NPATH + 1][NAS_CYC_NCNT];
  int has_mix[NAS_TFLM_NCORE][NAS_TFLM_NPATH + 1];
  char provenance[300];
  int nparts;
  nas_cycles_part *part;    /* [nparts], owned */
} nas_cycles_model;

/* Reads latency/calibration/cycles.json. NAS_EFORMAT names the file and the field
 * ("cycles.json: parts.nrf5340.from: 'stm32f999' is not a calibrated part"). A transferred
 * part's scale is taken from its calibrated source at load time. */
int nas_cycles_load(const char *path, nas_cycles_model *m, nas_err *e);
/* Writes it (the fit tool). */
int nas_cycles_save(const char *path, const nas_cycles_model *m, nas_err *e);
void nas_cycles_model_free(nas_cycles_model *m); /* NULL-safe */
/* The default file: NAS_SOURCE_DIR "/latency/calibration/cycles.json". */
const char *nas_cycles_default_path(void);
/* The part with this id, or NULL. */
const nas_cycles_part *nas_cycles_find(const nas_cycles_model *m, const char *id);

/* Weight bytes an operator reads from flash in one inference on a cache of dcache_bytes
 * (0 for pools, ADD, SOFTMAX, RESHAPE). Reuse set and passes per path (CMSIS-NN 4ab83cc3):
 * 1x1 convs hold two filter rows while they walk the pixels in pairs, plus one pass for the
 * filter sums; im2col convs walk the whole filter per pixel pair; depthwise walks the whole
 * filter per output pixel; FC reads it once. When the reuse set fits the cache the filter
 * is read once per call, else once per pass. */
double nas_cycles_flash_bytes(const nas_tflm_op *o, long dcache_bytes);

/* Cycles of one operator. */
typedef struct nas_cycles_op {
  int path;                 /* enum nas_tflm_path */
  double insn;              /* instructions (the instruction model's) */
  double core_cycles;       /* insn x class mix x CPI (before the scale) */
  double flash_bytes;       /* weight bytes read from flash */
  double flash_cycles;      /* their stall */
  double cycles;            /* scale x core_cycles + flash_cycles */
} nas_cycles_op;

/* Flags of the predictions. */
#define NAS_CYC_WEIGHTS_SRAM 1u /* weights in SRAM (no flash term), as the legacy CMSIS-NN
                                   examples' non-const arrays */

/* One operator with insn instructions on part p (its core's mix and CPI). NAS_EINVAL for a
 * part without a core, or a path without a class mix on that core. */
int nas_cycles_op_predict(const nas_cycles_model *m, const nas_cycles_part *p,
                          const nas_tflm_op *o, double insn, unsigned flags, nas_cycles_op *r,
                          nas_err *e);
/* Core cycles (before the scale) of n interpreter instructions on part p. */
int nas_cycles_overhead(const nas_cycles_model *m, const nas_cycles_part *p, double insn,
                        double *core_cycles, nas_err *e);

typedef struct nas_cycles_report {
  int nops;
  nas_cycles_op *op;        /* [nops], owned */
  double overhead_insn, overhead_cycles; /* the interpreter (scaled) */
  double insn;              /* production Invoke instructions */
  double core_cycles;       /* before the scale, interpreter included */
  double flash_cycles;
  double cycles;            /* Invoke */
  double ms;                /* cycles / clock */
} nas_cycles_report;

/* Every operator of g (validated) and the production Invoke on part p, instructions from im
 * for p's core. Errors name the operator ("operator 3: no data for path dw_s8 ..."). */
int nas_cycles_graph(const nas_cycles_model *m, const nas_tflm_insn_model *im,
                     const nas_cycles_part *p, const nas_g8_graph *g, unsigned flags,
                     nas_cycles_report *r, nas_err *e);
void nas_cycles_report_free(nas_cycles_report *r); /* NULL-safe */

#endif
