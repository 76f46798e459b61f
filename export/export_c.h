/* export/export_c.h: writes an int8 graph (deploy/graph8.h) as C source for a
 * microcontroller: `<name>.h`/`<name>.c` with the weights and biases as const arrays, the
 * per-channel requantisation multipliers and shifts precomputed, one static arena of exactly
 * the memory planner's peak (every activation tensor at its planned offset), and
 * `int model_invoke(const int8_t *in, int8_t *out)` (also `<name>_invoke`), plus the portable
 * int8 kernels `nas_kernels.h`/`nas_kernels.c` (C11, only <stdint.h>/<string.h>; with
 * __ARM_FEATURE_DSP the conv and fully-connected MAC loops use SMLAD, unless NASK_NO_DSP is
 * defined). The generated code computes bit for bit what nas_g8_run computes.
 *
 * Macros in <name>.h (NAME = name upper-cased, '-' and '.' as '_', 'M' before a digit):
 *   NAME_ARENA_BYTES, NAME_INPUT_SIZE, NAME_OUTPUT_SIZE (int8 elements),
 *   NAME_INPUT_SCALE, NAME_INPUT_ZERO_POINT, NAME_OUTPUT_SCALE, NAME_OUTPUT_ZERO_POINT.
 * Define NAME_NO_MODEL_INVOKE to link several exported models (then call <name>_invoke).
 * Define NAS_LAYER_MARK to have <name>_invoke call `void nas_layer_mark(int i)` (defined by
 * the caller) before operator i and with i = <operator count> after the last one: the layer
 * boundaries the emulator and the board firmware of latency/ measure (without the define the
 * marks compile to nothing).
 * Ownership: the graph is only read. */
#ifndef NAS_EXPORT_EXPORT_C_H
#define NAS_EXPORT_EXPORT_C_H

#include "deploy/graph8.h"

/* Writes out_dir/<name>.h, out_dir/<name>.c, out_dir/nas_kernels.h and
 * out_dir/nas_kernels.c (out_dir must exist). g must pass nas_g8_validate (checked). name:
 * 1..64 characters of [A-Za-z0-9_.-], not starting with '.' (NAS_EINVAL otherwise).
 * NAS_EIO names the file that cannot be written. */
int nas_c_export(const nas_g8_graph *g, const char *name, const char *out_dir, nas_err *e);

#endif
