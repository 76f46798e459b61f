/* deploy/planner_tflm.h: TensorFlow Lite Micro's non-persistent arena plan, reproduced: the
 * lifetimes TFLM's AllocationInfoBuilder gives the tensors of an int8 graph and the scratch
 * buffers its kernels request, and the placement of TFLM's GreedyMemoryPlanner (buffer order,
 * tie-break, first fit into the gaps among buffers live at the same time). The result is
 * TFLM's "head" of the tensor arena, byte for byte (docs/tflm.md).
 *
 * Rules (learned from tensorflow/tflite-micro at 90b983c2, micro_allocation_info.cc,
 * micro_allocator.cc and memory_planner/greedy_memory_planner.cc):
 *   - Lifetimes are allocation scopes: the graph input is created and used at scope 0,
 *     operator i runs in scope i + 1 (its outputs are created there, its inputs and outputs
 *     used there), and the graph output lives until scope nops. A scratch buffer lives in its
 *     operator's scope only.
 *   - Buffers: every tensor without constant data and with bytes > 0, in tensor index order,
 *     then the scratch buffers in request order; sizes rounded up to 16 bytes.
 *   - Placement order: size descending; equal sizes in descending buffer id (TFLM fills its
 *     sort array from the end and bubble-sorts it, which is stable).
 *   - Each buffer goes to the lowest offset (from 0, in the gaps between the already placed
 *     buffers that are live at an overlapping scope, walked in offset order) where it fits.
 *   - head = max(offset + size).
 * Ownership: nas_tflm_plan owns its buffer array; free with nas_tflm_plan_free (NULL-safe).
 * Never prints. */
#ifndef NAS_DEPLOY_PLANNER_TFLM_H
#define NAS_DEPLOY_PLANNER_TFLM_H

#include "core/error.h"
#include "deploy/graph8.h"

#define NAS_TFLM_ALIGN 16 /* MicroArenaBufferAlignment() */

/* One planned buffer. */
typedef struct nas_tflm_buf {
  long size;       /* bytes, a multiple of NAS_TFLM_ALIGN */
  int first, last; /* allocation scopes (see above), inclusive */
  int tensor;      /* graph tensor index, or -1 for a scratch buffer */
  int op;          /* the operator of a scratch buffer, -1 for a tensor */
  long offset;     /* planned offset from the arena head, bytes */
} nas_tflm_buf;

/* A kernel's scratch request: bytes as the kernel asks (not yet rounded) for operator op. */
typedef struct nas_tflm_scratch {
  int op;
  long bytes;
} nas_tflm_scratch;

typedef struct nas_tflm_plan {
  int nbuf;
  nas_tflm_buf *buf; /* [nbuf] in TFLM's buffer id order (tensors, then scratch); owned */
  int ntensor_bufs;  /* buffers 0..ntensor_bufs-1 are tensors */
  long peak;         /* the head: max(offset + size), bytes */
} nas_tflm_plan;

/* Places b[0..n-1] (size, first, last set; sizes already rounded) exactly as TFLM's
 * GreedyMemoryPlanner does, writing b[i].offset; *peak gets max(offset + size) (0 for n = 0).
 * NAS_ENOMEM on allocation failure, NAS_EINVAL for a negative size. */
int nas_tflm_greedy(nas_tflm_buf *b, int n, long *peak, nas_err *e);

/* TFLM's plan of graph g (validated: nas_g8_validate) plus the scratch requests s[0..ns-1]
 * (ns = 0: the activations only, as TFLM's reference kernels plan them). Requests must be
 * given in operator order (the order TFLM's Prepare calls make them); an op outside the graph
 * or negative bytes is NAS_EINVAL. */
int nas_tflm_plan_build(const nas_g8_graph *g, const nas_tflm_scratch *s, int ns,
                        nas_tflm_plan *p, nas_err *e);
void nas_tflm_plan_free(nas_tflm_plan *p); /* NULL-safe */

#endif
