/* nas/artifacts.h: what the store keeps of a trained candidate, and the fast int8 evaluation
 * the search uses.
 *
 * Two blobs per done candidate (weights table, README "Results store"):
 *   "float": the float checkpoint bytes exactly as train/checkpoint.c writes them (a file
 *            `nas eval --checkpoint` and `nas export --checkpoint` read), whose meta JSON holds
 *            the dataset spec, train_limit, normalisation (norm_mean, norm_std), eval_limit,
 *            epochs, training seed and the calibration the int8 model was built from
 *            ("calib": {"method", "samples", "nodes": [graph node ids], "lo": [...], "hi":
 *            [...], "version": 2, "sub_lo": [...], "sub_hi": [...]}; floats written so that
 *            they read back bit for bit). "version" 2 added the internal points of the
 *            recurrent cells (nas_calib sub_lo/sub_hi, in nas_calib_alloc_sub's order over
 *            the graph); a blob without "version" is version 1 and has none of them;
 *   "int8":  the .tflite flatbuffer of the int8 graph that was evaluated.
 * Lowering the float weights with the stored calibration rebuilds that int8 graph exactly, so
 * `nas export --db` reproduces the stored int8 accuracy.
 * Ownership: buffers returned are malloc'd and the caller's; nas_cand_float frees with
 * nas_cand_float_free. Library code: never prints. */
#ifndef NAS_NAS_ARTIFACTS_H
#define NAS_NAS_ARTIFACTS_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/dataset.h"
#include "deploy/graph8.h"
#include "train/checkpoint.h"
#include "train/net.h"
#include "train/quant.h"

/* The calibration layout nas_cand_pack writes (see above); older versions are read. */
#define NAS_CAND_CALIB_VERSION 2

/* How a candidate was trained and scored (recorded in the float blob's meta JSON). */
typedef struct nas_cand_info {
  const char *dataset;   /* dataset spec */
  int train_limit;       /* training samples kept (0: all) */
  int eval_limit;        /* validation/test samples scored (0: all) */
  int epochs;            /* training epochs */
  uint64_t seed;         /* training seed */
  float norm_mean, norm_std; /* the dataset's normalisation */
  double float_test_acc; /* float test accuracy (on the eval_limit subset) */
} nas_cand_info;

/* Serialises the float checkpoint (arch, info, calibration, weights of net) into *fbuf and
 * the int8 graph g8 as .tflite into *qbuf (description = name). */
int nas_cand_pack(const nas_net *net, const nas_cand_info *info, const nas_calib *c,
                  const nas_g8_graph *g8, const char *name, uint8_t **fbuf, size_t *flen,
                  uint8_t **qbuf, size_t *qlen, nas_err *e);

/* A float blob read back. */
typedef struct nas_cand_float {
  nas_ckpt ck;           /* the checkpoint (arch JSON, meta JSON, tensors) */
  nas_calib calib;       /* the calibration the int8 model was built from (calib.n == 0 when
                            the blob has none; version 2: nsub, sub_lo, sub_hi as stored, sub
                            NULL) */
  int calib_version;     /* "version" of the stored calibration (1 when absent) */
  char dataset[1024];    /* dataset spec ("" when absent) */
  int train_limit, eval_limit; /* as recorded (0 when absent) */
} nas_cand_float;

/* Parses a float blob (checked like a checkpoint file: magic, version, CRC, fields); what
 * names it in errors ("candidate 42"). */
int nas_cand_unpack_float(const void *buf, size_t len, const char *what, nas_cand_float *out,
                          nas_err *e);
void nas_cand_float_free(nas_cand_float *f); /* NULL-safe */
/* Copies the stored calibration into c for the graph g of a net built from f->ck.arch_json:
 * NAS_EFORMAT when the blob has none or it does not fit g (node count; number of recurrent
 * internal ranges). A version-1 blob gives c->nsub 0 (lowering a recurrent net then asks for
 * a calibration; nas export --db recalibrates those ranges, nas/job_store.c). */
int nas_cand_calib(const nas_cand_float *f, const nas_graph *g, nas_calib *c, nas_err *e);


/* A view of the first `limit` samples of ds (limit 0 or >= n: all); shares ds's arrays. */
nas_dataset nas_dataset_head(const nas_dataset *ds, int limit);

#endif
