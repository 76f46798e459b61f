/* train/checkpoint.h: versioned binary checkpoints of a network.
 *
 * File layout (little-endian):
 *   magic "NASCKPT\0" (8 bytes), u32 version (=1), u32 flags (0),
 *   u32 arch_len, arch JSON bytes, u32 meta_len, meta JSON bytes,
 *   u32 n_tensors, then per tensor: u16 name_len, name, u8 kind (2 param, 3 state),
 *   u8 nd, nd x u32 dims, f32 data[prod(dims)],
 *   u32 CRC-32 (zlib) of every preceding byte.
 * A wrong magic, unknown version, truncated file, bad checksum or a tensor whose name or
 * shape does not match the network is refused with an error naming the file and the field.
 * Ownership: nas_ckpt owns its strings and tensor data; free with nas_ckpt_free. */
#ifndef NAS_TRAIN_CHECKPOINT_H
#define NAS_TRAIN_CHECKPOINT_H

#include "train/graph.h"

#define NAS_CKPT_VERSION 1

typedef struct nas_ckpt_tensor {
  char name[48];      /* node name */
  int kind;           /* NAS_NODE_PARAM or NAS_NODE_STATE */
  nas_shape shape;    /* full shape */
  float *data;        /* prod(shape) floats */
} nas_ckpt_tensor;

typedef struct nas_ckpt {
  char *arch_json;    /* the architecture the weights belong to (NUL-terminated) */
  char *meta_json;    /* free-form metadata: dataset, normalisation, metrics (NUL-terminated) */
  int n;              /* tensors */
  nas_ckpt_tensor *t; /* [n] */
} nas_ckpt;

/* Writes every PARAM and STATE node of g. Writes to path.tmp then renames, so a crash never
 * leaves a half-written checkpoint under the real name. */
int nas_ckpt_save(const char *path, const char *arch_json, const char *meta_json,
                  const nas_graph *g, nas_err *e);
int nas_ckpt_load(const char *path, nas_ckpt *c, nas_err *e);
/* Copies the tensors into g's nodes of the same name; every PARAM/STATE node of g must be
 * present with the same shape. */
int nas_ckpt_apply(const nas_ckpt *c, nas_graph *g, nas_err *e);
void nas_ckpt_free(nas_ckpt *c); /* NULL-safe */

#endif
