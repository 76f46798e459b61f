/* latency/emulator.h: emulated measurement of an int8 graph on a Cortex-M core.
 *
 * The graph is written with the C export (export/export_c.h, compiled with NAS_LAYER_MARK),
 * cross-compiled with arm-none-eabi-gcc for the target's core (-mthumb -mcpu=cortex-m4/m7/m33
 * /m0plus, soft float) beside a generated startup (vector table, reset handler that copies
 * .data, clears .bss, runs model_invoke on an input buffer and stops at a halt loop) and a
 * generated linker script (flash at 0x08000000, SRAM at 0x20000000, sized from the target).
 * The ELF is loaded into the Unicorn engine (Thumb, M-class, CPU model = the target core)
 * in-process and one inference is run. Every executed basic block is decoded once (cached by
 * address) into instruction counts by class (nas_thumb_classify); the counts of each
 * execution go to the layer whose nas_layer_mark call came last. Cycles = counts x the
 * core's CPI table (nas_cpi_for_core, approximations from Arm's TRMs), ms = cycles / clock.
 *
 * Availability: the toolchain is looked up at run time ($NAS_ARM_GCC, else arm-none-eabi-gcc
 * on PATH); Unicorn at build time (NAS_HAVE_UNICORN, pkg-config unicorn). When either is
 * missing the functions fail with NAS_EINVAL and one line naming what is missing and the
 * Debian packages to install.
 * Ownership: nas_emu_fw owns its image and symbol addresses (nas_emu_fw_free, NULL-safe);
 * nas_emu_result owns its layers and output (nas_emu_result_free, NULL-safe). The graph and
 * the target are only read. Nothing here prints. */
#ifndef NAS_LATENCY_EMULATOR_H
#define NAS_LATENCY_EMULATOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/target.h"

/* Instruction classes (the counts the emulator reports). */
enum nas_icls {
  NAS_IC_LDST = 0, /* loads and stores: LDR*, STR*, LDM/STM, PUSH/POP, LDRD/STRD, PLD */
  NAS_IC_MUL,      /* multiply, MAC, long multiply, DSP multiplies (SMLAD, SMLABB, SMULL..) */
  NAS_IC_BRANCH,   /* B, BL, BX, BLX, CBZ/CBNZ, TBB/TBH, writes to PC other than POP/LDR */
  NAS_IC_OTHER,    /* everything else (ALU, shifts, moves, compares, IT, SDIV/UDIV, ...) */
  NAS_IC_COUNT
};
extern const char *const nas_icls_names[]; /* NAS_IC_COUNT: "ldst", "mul", "branch", "other" */

/* Decoded counts of a straight run of Thumb code. */
typedef struct nas_icount {
  long long n[NAS_IC_COUNT]; /* instructions per class */
  long long xfer;            /* extra register transfers of LDM/STM/PUSH/POP/LDRD/STRD
                                (registers beyond the first) */
  long long div;             /* SDIV/UDIV (counted in OTHER too) */
  long long flow;            /* instructions that may change the PC (the block's last one) */
} nas_icount;

/* Classifies the Thumb/Thumb-2 code in buf[0..len) (little-endian halfwords), adding to *c.
 * Returns the number of instructions decoded; a 32-bit instruction cut at the end counts as
 * one. Rules: ARMv7-M ARM, A5.2 (16-bit) and A5.3 (32-bit) encoding tables. */
long long nas_thumb_classify(const uint8_t *buf, size_t len, nas_icount *c);

/* Approximate cycles per instruction of a core (see latency/cpi.c for the sources). */
typedef struct nas_cpi {
  double cls[NAS_IC_COUNT]; /* cycles per instruction of each class (branch: not taken) */
  double xfer;              /* per extra register of a multiple transfer */
  double div_extra;         /* added per SDIV/UDIV on top of cls[OTHER] */
  double taken_extra;       /* added per taken branch / PC write (pipeline refill) */
  const char *source;       /* where the figures come from */
} nas_cpi;
/* NAS_EINVAL for cores without a table or a Unicorn model (cortex-m55). */
int nas_cpi_for_core(int core, nas_cpi *out, nas_err *e);

/* ---- firmware --------------------------------------------------------------------------- */

typedef struct nas_emu_cfg {
  const char *cc;       /* cross compiler; NULL: $NAS_ARM_GCC, else arm-none-eabi-gcc on PATH */
  const char *opt;      /* optimisation flag, NULL = "-O2" */
  const char *work_dir; /* existing directory for the sources and the ELF; NULL: a temporary
                           directory, removed after the build */
  const char *cache_dir;/* existing directory where the compiled runtime (nasrt_*.c, the same
                           for every model) is kept per compiler, core and flags, so that later
                           builds only compile the model; NULL: no cache */
} nas_emu_cfg;

typedef struct nas_emu_fw {
  int core;                 /* enum nas_core */
  double clock_mhz;         /* the target's clock */
  char target[32];          /* target id */
  uint32_t flash_base, flash_size, sram_base, sram_size; /* memory map */
  uint8_t *flash;           /* [flash_size] flash image (owned) */
  uint8_t *sram_init;       /* [sram_size] initial SRAM (zero; owned) */
  uint32_t entry, sp;       /* reset handler (Thumb bit clear) and initial stack pointer */
  uint32_t halt;            /* address of the halt loop (run stops there) */
  uint32_t fault;           /* address of the fault loop (the fault vectors point there) */
  uint32_t mark;            /* address of nas_layer_mark */
  uint32_t in_addr, out_addr; /* input/output buffers in SRAM */
  size_t in_n, out_n;       /* their sizes (int8 elements) */
  int nops;                 /* operators of the graph (layers) */
  long long text_bytes, data_bytes, bss_bytes; /* section sizes of the ELF */
  double compile_s;         /* wall time of the cross compile */
} nas_emu_fw;

/* Exports g (C export with NAS_LAYER_MARK), writes the startup and linker script for t, and
 * cross-compiles. Errors: toolchain missing (names the packages), core without emulation,
 * the model does not fit the target's flash/SRAM (the linker's overflow line), I/O. */
int nas_emu_build(const nas_g8_graph *g, const nas_target *t, const nas_emu_cfg *cfg,
                  nas_emu_fw **out, nas_err *e);
void nas_emu_fw_free(nas_emu_fw *fw);
/* Loads an ELF written by the build (used by nas_emu_build; exposed for tests). */
int nas_emu_load_elf(const char *path, nas_emu_fw *fw, nas_err *e);

/* ---- emulation -------------------------------------------------------------------------- */

typedef struct nas_emu_layer {
  int op;                   /* operator index; -1 for the row outside every operator (reset,
                               startup, input/output copies, call overhead) */
  nas_icount c;             /* executed instruction counts */
  long long insns;          /* sum of c.n */
  long long taken;          /* taken branches / PC writes */
  double cycles, ms;        /* estimate from the core's CPI table */
} nas_emu_layer;

typedef struct nas_emu_result {
  int n_layers;             /* nops + 1: operators 0..nops-1, then the row with op -1 */
  nas_emu_layer *layers;    /* [n_layers] owned */
  nas_emu_layer total;      /* everything executed from reset to the halt loop */
  int8_t *output;           /* [out_n] output bytes of the inference (owned) */
  size_t out_n;
  long long executed;       /* instructions counted as blocks ran (independent of the
                               per-layer split; equals total.insns) */
  long long blocks;         /* basic blocks executed */
  long long distinct_blocks;/* blocks decoded (cache entries) */
  double run_s;             /* wall time of the emulation */
  double run_cpu_s;         /* CPU time of the calling thread during it (what the wall time
                               would be on an idle core) */
} nas_emu_result;

/* Runs one inference of fw on in[fw->in_n] (fresh memory each call). NAS_EINVAL when built
 * without Unicorn; NAS_ENUMERIC when the emulated code faults or exceeds max_insns (0: 2e9). */
int nas_emu_run(const nas_emu_fw *fw, const int8_t *in, long long max_insns,
                nas_emu_result *r, nas_err *e);
void nas_emu_result_free(nas_emu_result *r);

/* 1 when this build has Unicorn. */
int nas_emu_have_unicorn(void);
/* Resolves the cross compiler into path (NAS_OK) or fails naming the packages to install. */
int nas_emu_find_cc(const char *cc, char *path, size_t n, nas_err *e);

#endif
