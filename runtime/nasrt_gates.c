/* nasrt_gates.c: the int8 runtime's element-wise kernels of an unrolled recurrent cell
 * (TFLite Micro's reference arithmetic): LOGISTIC and TANH (gemmlowp's int32 fixed point on
 * Q4.27 inputs), MUL, SUB (ADD's rescaling with the second input subtracted) and
 * STRIDED_SLICE (a strided copy), CONCATENATION (copies), with their evals. */
#include <stdint.h>
#include <string.h>

#include "nasrt.h"
#include "nasrt_fixed.h"
#include "nasrt_fxp.h"

void nasrt_logistic(const nasrt_act_p *p, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < p->n; i++) {
    const int32_t x = in[i] - p->in_zp;
    if (x <= -p->radius) {
      out[i] = -128;
    } else if (x >= p->radius) {
      out[i] = 127;
    } else {
      const int32_t q = nasrt_fx_logistic(nasrt_mul(x, p->mult, p->shift), 4, 32);
      out[i] = (int8_t)nasrt_clamp(nasrt_rdbpot(q, 23) - 128, -128, 127);
    }
  }
}

void nasrt_tanh(const nasrt_act_p *p, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < p->n; i++) {
    const int32_t x = in[i] - p->in_zp;
    if (x <= -p->radius) {
      out[i] = -128;
    } else if (x >= p->radius) {
      out[i] = 127;
    } else {
      const int32_t q = nasrt_fx_tanh(nasrt_mul(x, p->mult, p->shift), 4, 32);
      out[i] = (int8_t)nasrt_clamp(nasrt_rdbpot(q, 24), -128, 127);
    }
  }
}

void nasrt_elmul(const nasrt_mul_p *p, const int8_t *a, const int8_t *b, int8_t *out) {
  for (int32_t i = 0; i < p->n; i++) {
    const int32_t v = (a[i] + p->a_off) * (b[i] + p->b_off);
    out[i] = (int8_t)nasrt_out8(nasrt_mul(v, p->mult, p->shift), p->out_zp, p->lo, p->hi);
  }
}

void nasrt_sub(const nasrt_add_p *p, const int8_t *a, const int8_t *b, int8_t *out) {
  const int32_t ls = (int32_t)1 << p->left_shift;
  for (int32_t i = 0; i < p->n; i++) {
    const int32_t va = (a[i] + p->a_off) * ls, vb = (b[i] + p->b_off) * ls;
    const int32_t d = nasrt_mul(va, p->a_mult, p->a_shift) - nasrt_mul(vb, p->b_mult, p->b_shift);
    out[i] = (int8_t)nasrt_out8(nasrt_mul(d, p->out_mult, p->out_shift), p->out_zp, p->lo, p->hi);
  }
}

void nasrt_slice(const nasrt_slice_p *p, const int8_t *in, int8_t *out) {
  int8_t *o = out;
  for (int32_t i0 = 0; i0 < p->o0; i0++)
    for (int32_t i1 = 0; i1 < p->o1; i1++)
      for (int32_t i2 = 0; i2 < p->o2; i2++) {
        const int8_t *row = in + (((long)(p->b0 + i0 * p->s0) * p->d1 + p->b1 + i1 * p->s1) * p->d2 +
                                  p->b2 + i2 * p->s2) * p->d3 + p->b3;
        for (int32_t i3 = 0; i3 < p->o3; i3++) *o++ = row[(long)i3 * p->s3];
      }
}

void nasrt_eval_logistic(const void *p, int8_t *arena) {
  const nasrt_act_p *c = p;
  nasrt_logistic(c, arena + c->in, arena + c->out);
}
void nasrt_eval_tanh(const void *p, int8_t *arena) {
  const nasrt_act_p *c = p;
  nasrt_tanh(c, arena + c->in, arena + c->out);
}
void nasrt_eval_elmul(const void *p, int8_t *arena) {
  const nasrt_mul_p *c = p;
  nasrt_elmul(c, c->a_data ? c->a_data : arena + c->a, c->b_data ? c->b_data : arena + c->b,
              arena + c->out);
}
void nasrt_eval_sub(const void *p, int8_t *arena) {
  const nasrt_add_p *c = p;
  nasrt_sub(c, c->a_data ? c->a_data : arena + c->a, c->b_data ? c->b_data : arena + c->b,
            arena + c->out);
}
void nasrt_eval_slice(const void *p, int8_t *arena) {
  const nasrt_slice_p *c = p;
  nasrt_slice(c, arena + c->in, arena + c->out);
}

/* (pointer level on the arena: the inputs are read at their offsets) */
void nasrt_concat(const nasrt_concat_p *p, int8_t *arena) {
  const int32_t in[10] = {p->in0, p->in1, p->in2, p->in3, p->in4,
                          p->in5, p->in6, p->in7, p->in8, p->in9};
  const int32_t n[10] = {p->n0, p->n1, p->n2, p->n3, p->n4, p->n5, p->n6, p->n7, p->n8, p->n9};
  int8_t *o = arena + p->out;
  for (int32_t k = 0; k < p->outer; k++)
    for (int32_t i = 0; i < p->count; i++) {
      memmove(o, arena + in[i] + (long)k * n[i], (size_t)n[i]);
      o += n[i];
    }
}

void nasrt_eval_concat(const void *p, int8_t *arena) { nasrt_concat(p, arena); }
