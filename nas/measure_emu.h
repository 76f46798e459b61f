/* nas/measure_emu.h: one emulated measurement of an int8 graph, as the store keeps it
 * (results/store.h nas_measurement): the engine's C export (runtime nas-c) cross-compiled for
 * the target's core and run once in Unicorn (latency/emulator.h), per operator instructions
 * by class and the cycles of the core's CPI table at the target clock. A build or emulation
 * that fails is a failed measurement with its reason, not an error: a search stores it and
 * goes on. Each operator is attributed to the arch layer named by its output tensor
 * ("l3.pw.bn" -> 3; -1 for an imported graph).
 * Ownership: nas_emu_measure owns its operators and strings (nas_emu_measure_free,
 * NULL-safe); m points into them. Never prints. */
#ifndef NAS_NAS_MEASURE_EMU_H
#define NAS_NAS_MEASURE_EMU_H

#include <stdint.h>

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/emulator.h"
#include "latency/target.h"
#include "results/store.h"

typedef struct nas_emu_measure {
  nas_measurement m;      /* what the store writes (ops, strings point below) */
  nas_op_meas *ops;       /* [m.nops] owned */
  char target[32], core[16], reason[600];
} nas_emu_measure;

/* Measures g on t (in: the graph's input, nas_g8_numel bytes); cfg as nas_emu_build (NULL:
 * defaults). Returns NAS_ENOMEM only; a failure to build or run is out->m.ok = 0 with the
 * reason ("emulator: ..."). out->m.seconds is the wall time of build + run. */
int nas_emu_measure_graph(const nas_g8_graph *g, const nas_target *t, const int8_t *in,
                          const nas_emu_cfg *cfg, nas_emu_measure *out, nas_err *e);
void nas_emu_measure_free(nas_emu_measure *m); /* NULL-safe */

/* The emulator's kernel cache directory: $NAS_CACHE_DIR (set and empty: none), else
 * $XDG_CACHE_HOME/nas-emu, else $HOME/.cache/nas-emu (created); written into buf. NULL when
 * there is none or it is not a writable directory. */
const char *nas_emu_cache_dir(char *buf, size_t n);

#endif
