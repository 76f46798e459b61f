/* export/export_tflite.h: writes an int8 graph (deploy/graph8.h) as a TFLite flatbuffer
 * (schema version 3, file identifier "TFL3"): operator codes with both
 * deprecated_builtin_code and builtin_code, one subgraph, tensors with shape, type, buffer,
 * name and quantisation (scale, zero_point, quantized_dimension), operators with their
 * builtin options, buffers (buffer 0 empty; every constant tensor has its own 16-byte
 * aligned buffer; activations use buffer 0), and a description. The flatbuffer is built by
 * hand (no library), back to front, following the flatbuffers binary format.
 * Ownership: *buf from nas_tflite_write_mem is the caller's (free()); the graph is read. */
#ifndef NAS_EXPORT_EXPORT_TFLITE_H
#define NAS_EXPORT_EXPORT_TFLITE_H

#include <stddef.h>
#include <stdint.h>

#include "deploy/graph8.h"

/* Serialises g (which must pass nas_g8_validate) into a fresh buffer. description may be
 * NULL ("nas int8 export"). A static Winograd layer (WINOGRAD_CONV_2D, no TFLite operator) is
 * written as the standard CONV_2D of its int8 weights, and the description says so (standard
 * runtimes compute it directly: their int8 result differs from the Winograd-aware one; the
 * CLI prints the note, nas_g8_wino_count tells it); a flex layer is refused naming its layer
 * (its learned transforms are not a convolution). */
int nas_tflite_write_mem(const nas_g8_graph *g, const char *description, uint8_t **buf,
                         size_t *len, nas_err *e);
/* Serialises g into the file path (NAS_EIO naming the file when it cannot be written). */
int nas_tflite_write(const nas_g8_graph *g, const char *description, const char *path,
                     nas_err *e);

#endif
