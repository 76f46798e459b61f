/* train/checkpoint.h: versioned binary checkpoints of a network.
 *
 * File layout (little-endian):
 *   magic "NASCKPT\0" (8 bytes), u32 version (=1), u32 flags (0),
 *   u32 arch_len, arch JSON bytes, u32 meta_len, meta JSON bytes,
 *   u32 n_tensors, then per tensor: u16 name_len, name, u8 kind (2 param, 3 state),
 *   u8 nd, nd x u32 dims, f32 data[prod(dims)],
 *   u32 CRC-32 (zlib) of every preceding byte.
 * Names are 1..47 bytes without NUL and unique within a file; nonzero flags are refused.
 * A wrong magic, unknown version, truncated file, bad checksum or a tensor whose name or
 * shape does not match the network is refused with an error naming the file and the field.
 * Ownership: the caller provides the nas_ckpt struct; it owns its strings and tensor data,
 * released with nas_ckpt_free. */
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

/* Writes every PARAM and STATE node of g, in tape order. Writes to path.tmp, fsyncs, then
 * renames, so a crash never leaves a half-written checkpoint under the real name. NULL JSON
 * strings are stored as empty. Errors: NAS_EIO (create/write/rename failed; the .tmp file is
 * removed), NAS_EINVAL (graph not allocated, a param/state name empty or repeated). */
int nas_ckpt_save(const char *path, const char *arch_json, const char *meta_json,
                  const nas_graph *g, nas_err *e);
/* Reads and checks the whole file (magic, version, length, CRC, then every field). On
 * failure c is left empty (nothing to free) and e names the file: NAS_EIO when it cannot be
 * opened or read, NAS_EFORMAT when malformed, NAS_ENOMEM. */
int nas_ckpt_load(const char *path, nas_ckpt *c, nas_err *e);
/* Copies the tensors into g's nodes of the same name; every PARAM/STATE node of g must be
 * present with the same kind and shape, and every tensor of c must have such a node.
 * Everything is checked before anything is copied, so a refusal (NAS_EINVAL, naming the
 * tensor and both shapes) leaves g untouched. The checkpoint does not record its path: callers
 * that want the file in the message add it with nas_err_prefix. */
int nas_ckpt_apply(const nas_ckpt *c, nas_graph *g, nas_err *e);
void nas_ckpt_free(nas_ckpt *c); /* NULL-safe; frees the contents and empties *c */

#endif
