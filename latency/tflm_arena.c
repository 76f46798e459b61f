/* latency/tflm_arena.c: TFLM's arena_used_bytes() for an int8 graph on a 32-bit Cortex-M with
 * the cmsis_nn kernels (latency/tflm.h): the head is TFLM's greedy plan of the activations and
 * the kernels' scratch buffers (deploy/planner_tflm.h); the tail replays, in order, every
 * persistent allocation MicroInterpreter::AllocateTensors makes from the top of the arena
 * downwards (each one rounds the tail pointer down to its alignment, so the padding depends
 * on the order). Struct sizes are those of an arm-none-eabi-gcc build (ILP32, AAPCS short
 * enums: an enum whose values fit in a byte takes one byte), worked out from the pinned
 * TFLM headers and checked against the corpus' RecordingMicroAllocator figures. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "deploy/planner_tflm.h"
#include "latency/tflm.h"

/* ---- sizes on the 32-bit target (bytes) ------------------------------------------------ */
enum {
  /* SingleArenaBufferAllocator: 2 vtable pointers, buffer_head_/tail_, head_, tail_, temp_,
   * temp_buffer_ptr_check_sum_, temp_buffer_count_. The recording variant adds 4 size_t. */
  SZ_ARENA_ALLOCATOR = 36, SZ_REC_ARENA_ALLOCATOR = 52,
  /* GreedyMemoryPlanner: vtable, 2 counts, 5 array pointers, 2 list indices, a bool. */
  SZ_GREEDY_PLANNER = 44,
  /* MicroAllocator: vtable, 2 allocator pointers, builtin-data allocator, planner, bool,
   * scratch request count, scratch head, max head usage. The recording variant adds a
   * pointer and 7 RecordedAllocation {requested, used, count}. */
  SZ_MICRO_ALLOCATOR = 36, SZ_REC_MICRO_ALLOCATOR = 124,
  SZ_BUILTIN_DATA_ALLOCATOR = 8, /* vtable + persistent allocator pointer */
  SZ_SUBGRAPH_ALLOCATIONS = 8,   /* node_and_registrations, tensors */
  SZ_EVAL_TENSOR = 12,           /* data, dims, type (1-byte enum) */
  SZ_NODE_AND_REGISTRATION = 32, /* TfLiteNode (7 words) + registration pointer */
  SZ_SCRATCH_HANDLE = 4,         /* uint8_t *data */
  SZ_TFLITE_TENSOR = 32,         /* TF_LITE_STATIC_MEMORY TfLiteTensor */
  SZ_AFFINE_QUANT = 12,          /* scale, zero_point, quantized_dimension */
  /* builtin option structs (alignment in the comment) */
  SZ_CONV_PARAMS = 28,           /* TfLiteConvParams, 4 */
  SZ_DW_PARAMS = 28,             /* TfLiteDepthwiseConvParams, 4 */
  SZ_POOL_PARAMS = 40,           /* TfLitePoolParams (with computed padding), 4 */
  SZ_FC_PARAMS = 5,              /* TfLiteFullyConnectedParams: 3 one-byte enums, 2 bools; 1 */
  SZ_ADD_PARAMS = 2,             /* TfLiteAddParams: a one-byte enum and a bool; 1 */
  SZ_RESHAPE_PARAMS = 36,        /* TfLiteReshapeParams: int shape[8], num_dimensions; 4 */
  SZ_SOFTMAX_PARAMS = 4,         /* TfLiteSoftmaxParams: float beta; 4 */
  /* kernels' op data (allocated with alignment 16) */
  SZ_OPDATA_CONV = 60,           /* OpDataConv (56) + buffer_idx: conv and depthwise */
  SZ_OPDATA_FC = 72,             /* OpDataFullyConnected (48) + 2 buffer indices, kernel_sums,
                                    batches, accum_depth, output_depth */
  SZ_OPDATA_POOL = 36,           /* OpDataPooling (32) + buffer_idx */
  SZ_OPDATA_ADD = 60,            /* cmsis_nn add.cc OpData: a bool and 14 words */
  SZ_OPDATA_SOFTMAX = 64,        /* SoftmaxParams (a double, 7 words, 5 pointers: 56) + num_rows,
                                    row_size */
  SZ_OPDATA_QUANTIZE = 32        /* OpDataQuantizeReference (QuantizationParams has a double) */
};

/* The tail pointer walks down from a 16-aligned end; each allocation returns what it used
 * (its bytes plus the padding that rounding down to its alignment cost). */
typedef struct tail_sim {
  unsigned long t;
} tail_sim;

static long take(tail_sim *s, long bytes, unsigned long align) {
  const unsigned long before = s->t;
  s->t = (s->t - (unsigned long)bytes) & ~(align - 1);
  return (long)(before - s->t);
}

/* context->AllocatePersistentBuffer: alignment 16, counted as persistent buffer data. */
static void persistent(tail_sim *s, nas_tflm_arena_report *r, long bytes) {
  r->persistent_buffers += take(s, bytes, NAS_TFLM_ALIGN);
  r->persistent_buffer_count++;
  r->persistent_buffer_requested += bytes;
}

static void builtin_data(tail_sim *s, nas_tflm_arena_report *r, int kind) {
  switch (kind) {
    case NAS_G8_CONV_2D: r->builtin_data += take(s, SZ_CONV_PARAMS, 4); break;
    case NAS_G8_DEPTHWISE_CONV_2D: r->builtin_data += take(s, SZ_DW_PARAMS, 4); break;
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D: r->builtin_data += take(s, SZ_POOL_PARAMS, 4); break;
    case NAS_G8_FULLY_CONNECTED: r->builtin_data += take(s, SZ_FC_PARAMS, 1); break;
    case NAS_G8_ADD: r->builtin_data += take(s, SZ_ADD_PARAMS, 1); break;
    case NAS_G8_RESHAPE: r->builtin_data += take(s, SZ_RESHAPE_PARAMS, 4); break;
    case NAS_G8_SOFTMAX: r->builtin_data += take(s, SZ_SOFTMAX_PARAMS, 4); break;
    default: break; /* QUANTIZE has no options struct */
  }
}

static void init_op_data(tail_sim *s, nas_tflm_arena_report *r, int kind) {
  switch (kind) {
    case NAS_G8_CONV_2D:
    case NAS_G8_DEPTHWISE_CONV_2D: persistent(s, r, SZ_OPDATA_CONV); break;
    case NAS_G8_FULLY_CONNECTED: persistent(s, r, SZ_OPDATA_FC); break;
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D: persistent(s, r, SZ_OPDATA_POOL); break;
    case NAS_G8_ADD: persistent(s, r, SZ_OPDATA_ADD); break;
    case NAS_G8_SOFTMAX: persistent(s, r, SZ_OPDATA_SOFTMAX); break;
    case NAS_G8_QUANTIZE: persistent(s, r, SZ_OPDATA_QUANTIZE); break;
    default: break; /* RESHAPE has no Init */
  }
}

/* Prepare: conv and depthwise keep a multiplier and a shift per output channel (always);
 * fully connected only with per-channel weights. */
static void prepare(tail_sim *s, nas_tflm_arena_report *r, const nas_g8_graph *g, int i) {
  const nas_g8_op *op = &g->ops[i];
  const nas_g8_tensor *w = op->nin > 1 && op->in[1] >= 0 ? &g->tensors[op->in[1]] : NULL;
  long ch = 0;
  if (op->kind == NAS_G8_CONV_2D && w) ch = w->dims[0];
  if (op->kind == NAS_G8_DEPTHWISE_CONV_2D && w) ch = w->dims[3];
  if (op->kind == NAS_G8_FULLY_CONNECTED && w && w->nq > 1) ch = w->nq;
  if (ch > 0) {
    persistent(s, r, ch * 4);
    persistent(s, r, ch * 4);
  }
}

/* MicroInterpreter's input/output: a pointer array, then per tensor a TfLiteTensor and its
 * quantisation (TfLiteAffineQuantization, then a TfLiteIntArray of zero points). */
static void io_tensor(tail_sim *s, nas_tflm_arena_report *r, const nas_g8_tensor *t) {
  persistent(s, r, 4);
  r->tensor_structs += take(s, SZ_TFLITE_TENSOR, 4);
  if (t->nq > 0) {
    r->tensor_quant += take(s, SZ_AFFINE_QUANT, 4);
    r->tensor_quant += take(s, 4 + 4L * t->nq, 4);
  }
}

/* Head bytes in use while each operator runs: the end of the highest buffer live at its
 * scope (operator i runs in scope i + 1). */
static void op_heads(const nas_g8_graph *g, const nas_tflm_plan *plan, long *op_head) {
  for (int i = 0; i < g->nops; i++) {
    long h = 0;
    for (int k = 0; k < plan->nbuf; k++) {
      const nas_tflm_buf *b = &plan->buf[k];
      if (b->first <= i + 1 && b->last >= i + 1 && b->offset + b->size > h) h = b->offset + b->size;
    }
    op_head[i] = h;
  }
}

int nas_tflm_arena(const nas_g8_graph *g, unsigned flags, nas_tflm_arena_report *r, nas_err *e) {
  return nas_tflm_arena_ops(g, flags, r, NULL, e);
}

int nas_tflm_arena_ops(const nas_g8_graph *g, unsigned flags, nas_tflm_arena_report *r,
                       long *op_head, nas_err *e) {
  memset(r, 0, sizeof *r);
  int rc;
  nas_tflm_scratch *req = nas_calloc((size_t)g->nops + 1, sizeof *req);
  if (!req) return nas_errf(e, NAS_ENOMEM, "TFLM arena: out of memory");
  int ns = 0;
  for (int i = 0; i < g->nops; i++) {
    nas_tflm_op o;
    if ((rc = nas_tflm_op_describe(g, i, flags, &o, e))) {
      free(req);
      return rc;
    }
    if (o.scratch > 0 && !(flags & NAS_TFLM_REFERENCE)) req[ns].op = i, req[ns].bytes = o.scratch, ns++;
  }
  nas_tflm_plan plan;
  if ((rc = nas_tflm_plan_build(g, NULL, 0, &plan, e))) {
    free(req);
    return rc;
  }
  r->head_activations = plan.peak;
  nas_tflm_plan_free(&plan);
  rc = nas_tflm_plan_build(g, req, ns, &plan, e);
  free(req);
  if (rc) return rc;
  r->head = plan.peak;
  if (op_head) op_heads(g, &plan, op_head);
  r->nscratch = ns;
  for (int k = plan.ntensor_bufs; k < plan.nbuf; k++) r->scratch_bytes += plan.buf[k].size;
  nas_tflm_plan_free(&plan);

  const int rec = (flags & NAS_TFLM_RECORDING) != 0;
  tail_sim s = {.t = 1ul << 30};
  const unsigned long top = s.t;
  /* MicroAllocator::Create: the arena allocator, the planner, the MicroAllocator itself. */
  r->runtime += take(&s, rec ? SZ_REC_ARENA_ALLOCATOR : SZ_ARENA_ALLOCATOR, 4);
  r->runtime += take(&s, SZ_GREEDY_PLANNER, 4);
  r->runtime += take(&s, rec ? SZ_REC_MICRO_ALLOCATOR : SZ_MICRO_ALLOCATOR, 4);
  /* StartModelAllocation. */
  r->runtime += take(&s, SZ_BUILTIN_DATA_ALLOCATOR, 4);
  r->runtime += take(&s, SZ_SUBGRAPH_ALLOCATIONS, 4);
  r->eval_tensors += take(&s, (long)SZ_EVAL_TENSOR * g->ntensors, 4);
  r->node_registration += take(&s, (long)SZ_NODE_AND_REGISTRATION * g->nops, 4);
  /* Operator options, then every kernel's Init, then every Prepare. */
  for (int i = 0; i < g->nops; i++) builtin_data(&s, r, g->ops[i].kind);
  for (int i = 0; i < g->nops; i++) init_op_data(&s, r, g->ops[i].kind);
  for (int i = 0; i < g->nops; i++) prepare(&s, r, g, i);
  /* FinishModelAllocation: the scratch handles (the plan itself is temporary). */
  if (ns > 0) r->scratch_handles += take(&s, (long)SZ_SCRATCH_HANDLE * ns, 4);
  io_tensor(&s, r, &g->tensors[g->input]);
  io_tensor(&s, r, &g->tensors[g->output]);
  r->tail = (long)(top - s.t);
  r->total = r->head + r->tail;
  return NAS_OK;
}
