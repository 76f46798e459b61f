/* export/export_c.h: writes an int8 graph (deploy/graph8.h) as C source for a
 * microcontroller: `<name>.h`/`<name>.c` hold the model's data (weights and biases as const
 * arrays, every operator's prepared parameters as the MCU runtime's structs, one static arena
 * of exactly the memory planner's peak) and its call sequence (a const operator table run by
 * nasrt_invoke), plus `int model_invoke(const int8_t *in, int8_t *out)` (also
 * `<name>_invoke`). Beside them the export copies the MCU runtime, the files of runtime/
 * (nasrt.h and nasrt_*.c/.h: C99 needing only <stdint.h>, <stddef.h> and <string.h>; with
 * __ARM_FEATURE_DSP the conv and fully-connected MAC loops use SMLAD, unless NASRT_NO_DSP is
 * defined), which the library carries embedded so that the installed program needs no source
 * tree. A build compiles <name>.c and every nasrt_*.c. The parameters are the ones the host
 * runtime's prepare step derives (nas_g8_prep_build), so the generated code computes bit for
 * bit what nas_g8_run computes.
 *
 * Macros in <name>.h (NAME = name upper-cased, '-' and '.' as '_', 'M' before a digit):
 *   NAME_ARENA_BYTES, NAME_INPUT_SIZE, NAME_OUTPUT_SIZE (int8 elements),
 *   NAME_INPUT_SCALE, NAME_INPUT_ZERO_POINT, NAME_OUTPUT_SCALE, NAME_OUTPUT_ZERO_POINT.
 * Define NAME_NO_MODEL_INVOKE to link several exported models (then call <name>_invoke; the
 * runtime files are the same for every model). Compile the runtime with NAS_LAYER_MARK
 * defined to have nasrt_invoke call `void nas_layer_mark(int i)` (defined by the caller)
 * before operator i and with i = <operator count> after the last one: the layer boundaries
 * the emulator and the board firmware of latency/ measure (without the define the marks
 * compile to nothing).
 * Ownership: the graph is only read; the runtime file table is static. */
#ifndef NAS_EXPORT_EXPORT_C_H
#define NAS_EXPORT_EXPORT_C_H

#include <stddef.h>

#include "deploy/graph8.h"

/* One file of the MCU runtime as embedded at build time (generated from runtime/). */
typedef struct nas_c_file {
  const char *name;           /* file name, e.g. "nasrt_conv.c" */
  const unsigned char *data;  /* its bytes */
  size_t len;
} nas_c_file;
extern const nas_c_file nas_c_runtime[]; /* sorted by name */
extern const int nas_c_nruntime;

/* Writes out_dir/<name>.h, out_dir/<name>.c and the runtime files (out_dir must exist). g must
 * pass nas_g8_validate (checked). name: 1..64 characters of [A-Za-z0-9_.-], not starting with
 * '.' (NAS_EINVAL otherwise). NAS_EIO names the file that cannot be written. */
int nas_c_export(const nas_g8_graph *g, const char *name, const char *out_dir, nas_err *e);

/* The read-only model data the export of g puts in flash, in bytes on a 32-bit target: the
 * constant arrays it prints (weights as the device kernels read them, biases, multipliers,
 * shifts), the parameter structs, the operator table and the model struct (not the runtime's
 * code). The exact sum of the sizes of those C objects. */
int nas_c_export_data_bytes(const nas_g8_graph *g, long long *bytes, nas_err *e);

#endif
