/* nasrt_invoke.c: the int8 runtime's invoke loop: runs a model's const operator table over
 * its arena, each operator through the eval of its kind (which resolves the arena offsets and
 * calls the kind's kernel), with the layer marks of nasrt.h around the operators. */
#include <stdint.h>
#include <string.h>

#include "nasrt.h"

#ifndef NAS_MARK
#ifdef NAS_LAYER_MARK
void nas_layer_mark(int i);
#define NAS_MARK(i) nas_layer_mark(i)
#else
#define NAS_MARK(i) ((void)0)
#endif
#endif

/* ---- evals: one per kind; the place to choose a kernel variant for a core ---------------- */

static void eval_conv(const nasrt_conv_p *p, int8_t *arena) {
  nasrt_conv(p, arena + p->in, arena + p->out);
}
static void eval_dwconv(const nasrt_conv_p *p, int8_t *arena) {
  nasrt_dwconv(p, arena + p->in, arena + p->out);
}
static void eval_fc(const nasrt_fc_p *p, int8_t *arena) {
  nasrt_fc(p, arena + p->in, arena + p->out);
}
static void eval_avgpool(const nasrt_pool_p *p, int8_t *arena) {
  nasrt_avgpool(p, arena + p->in, arena + p->out);
}
static void eval_maxpool(const nasrt_pool_p *p, int8_t *arena) {
  nasrt_maxpool(p, arena + p->in, arena + p->out);
}
static void eval_add(const nasrt_add_p *p, int8_t *arena) {
  nasrt_add(p, p->a_data ? p->a_data : arena + p->a, p->b_data ? p->b_data : arena + p->b,
            arena + p->out);
}
static void eval_softmax(const nasrt_softmax_p *p, int8_t *arena) {
  nasrt_softmax(p, arena + p->in, arena + p->out);
}
static void eval_requantize(const nasrt_requant_p *p, int8_t *arena) {
  nasrt_requantize(p, arena + p->in, arena + p->out);
}
static void eval_copy(const nasrt_copy_p *p, int8_t *arena) {
  nasrt_copy(p, arena + p->in, arena + p->out);
}

int nasrt_run_op(const nasrt_op *op, int8_t *arena) {
  switch (op->kind) {
#define NASRT_KIND_CASE(K, k, T) \
  case NASRT_##K:                \
    eval_##k((const T *)op->p, arena); \
    return 0;
    NASRT_OPS(NASRT_KIND_CASE)
#undef NASRT_KIND_CASE
    default:
      return -1;
  }
}

int nasrt_invoke(const nasrt_model *m, int8_t *arena, const int8_t *in, int8_t *out) {
  memcpy(arena + m->in, in, (size_t)m->in_size);
  for (int32_t i = 0; i < m->nops; i++) {
    NAS_MARK((int)i);
    if (nasrt_run_op(&m->ops[i], arena)) return -1;
  }
  NAS_MARK((int)m->nops);
  memcpy(out, arena + m->out, (size_t)m->out_size);
  return 0;
}

const char *nasrt_kind_name(int kind) {
  static const char *const names[NASRT_NKINDS] = {
#define NASRT_KIND_NAME(K, k, T) #K,
      NASRT_OPS(NASRT_KIND_NAME)
#undef NASRT_KIND_NAME
  };
  return kind >= 0 && kind < NASRT_NKINDS ? names[kind] : NULL;
}
