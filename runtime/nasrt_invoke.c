/* nasrt_invoke.c: the int8 runtime's evals (one per kind: resolve the arena offsets, call the
 * kind's kernel) and the invoke loop, which runs a model's const operator table over its arena
 * with the layer marks of nasrt.h around the operators. */
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

/* The fast kernels (nasrt_fast_*.c) run when the prepare step gave them their data. */
void nasrt_eval_conv(const void *p, int8_t *arena) {
  const nasrt_conv_p *c = p;
  if (c->wq && c->bq && (c->scratch >= 0 || (c->kh == 1 && c->kw == 1)))
    nasrt_conv_fast(c, arena + c->in, arena + c->out, c->scratch >= 0 ? arena + c->scratch : NULL);
  else nasrt_conv(c, arena + c->in, arena + c->out);
}
void nasrt_eval_dwconv(const void *p, int8_t *arena) {
  const nasrt_conv_p *c = p;
  if (c->bq && c->co == c->ci) nasrt_dwconv_fast(c, arena + c->in, arena + c->out);
  else nasrt_dwconv(c, arena + c->in, arena + c->out);
}
void nasrt_eval_fc(const void *p, int8_t *arena) {
  const nasrt_fc_p *c = p;
  if (c->wq && c->bq) nasrt_fc_fast(c, arena + c->in, arena + c->out);
  else nasrt_fc(c, arena + c->in, arena + c->out);
}
void nasrt_eval_avgpool(const void *p, int8_t *arena) {
  const nasrt_pool_p *c = p;
  nasrt_avgpool(c, arena + c->in, arena + c->out);
}
void nasrt_eval_maxpool(const void *p, int8_t *arena) {
  const nasrt_pool_p *c = p;
  nasrt_maxpool(c, arena + c->in, arena + c->out);
}
void nasrt_eval_add(const void *p, int8_t *arena) {
  const nasrt_add_p *c = p;
  nasrt_add(c, c->a_data ? c->a_data : arena + c->a, c->b_data ? c->b_data : arena + c->b,
            arena + c->out);
}
void nasrt_eval_softmax(const void *p, int8_t *arena) {
  const nasrt_softmax_p *c = p;
  nasrt_softmax(c, arena + c->in, arena + c->out);
}
void nasrt_eval_requantize(const void *p, int8_t *arena) {
  const nasrt_requant_p *c = p;
  nasrt_requantize(c, arena + c->in, arena + c->out);
}
void nasrt_eval_copy(const void *p, int8_t *arena) {
  const nasrt_copy_p *c = p;
  nasrt_copy(c, arena + c->in, arena + c->out);
}

void nasrt_eval_sparse(const void *p, int8_t *arena) {
  const nasrt_sparse_p *c = p;
  nasrt_sparse(c, arena + c->c.in, arena + c->c.out);
}

void nasrt_eval_wino(const void *p, int8_t *arena) {
  const nasrt_wino_p *c = p;
  nasrt_wino(c, arena + c->in, arena + c->out, arena + c->scratch);
}

nasrt_eval_fn nasrt_eval_of(int kind) {
  static const nasrt_eval_fn evals[NASRT_NKINDS] = {
#define NASRT_EVAL_ENTRY(K, k, T) nasrt_eval_##k,
      NASRT_OPS(NASRT_EVAL_ENTRY)
#undef NASRT_EVAL_ENTRY
  };
  return kind >= 0 && kind < NASRT_NKINDS ? evals[kind] : NULL;
}

int nasrt_invoke(const nasrt_model *m, int8_t *arena, const int8_t *in, int8_t *out) {
  memcpy(arena + m->in, in, (size_t)m->in_size);
  for (int32_t i = 0; i < m->nops; i++) {
    NAS_MARK((int)i);
    if (!m->ops[i].eval) return -1;
    m->ops[i].eval(m->ops[i].p, arena);
  }
  NAS_MARK((int)m->nops);
  memcpy(out, arena + m->out, (size_t)m->out_size);
  return 0;
}
