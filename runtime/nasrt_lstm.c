/* nasrt_lstm.c: the int8 runtime's UNIDIRECTIONAL_SEQUENCE_LSTM, TFLite's integer 8x8->16 LSTM
 * step (lstm_eval's Integer8x8_16 path without CIFG, peephole, projection or layer norm), unit
 * by unit: each unit's four gates are computed, its cell updated in place and its hidden
 * value written to the output sequence at step t; step t+1 reads h_t back from there. The
 * order of the units does not change any value (every gate reads only h_{t-1} and its own
 * cell), so the results are TFLite's bit for bit. */
#include <stdint.h>

#include "nasrt.h"
#include "nasrt_fixed.h"
#include "nasrt_fxp.h"

static inline int32_t clamp16(int32_t v) { return v < -32768 ? -32768 : v > 32767 ? 32767 : v; }

static inline int32_t dot8(const int8_t *a, const int8_t *w, int32_t n) {
  int32_t acc = 0;
  for (int32_t k = 0; k < n; k++) acc += a[k] * w[k];
  return acc;
}

void nasrt_lstm(const nasrt_lstm_p *p, const int8_t *in, int8_t *out, int16_t *cell) {
  const int32_t F = p->f, H = p->h, T = p->t, B = p->b;
  const int8_t *const wi[4] = {p->w_ii, p->w_if, p->w_ic, p->w_io};
  const int8_t *const wr[4] = {p->w_ri, p->w_rf, p->w_rc, p->w_ro};
  const int cell_ib = 15 + p->cell_shift;
  for (int32_t b = 0; b < B; b++) {
    int16_t *c = cell + (long)b * H;
    for (int32_t j = 0; j < H; j++) c[j] = 0;
    for (int32_t t = 0; t < T; t++) {
      const long xs = p->time_major ? (long)t * B + b : (long)b * T + t; /* row of x and y */
      const long hs = p->time_major ? (long)(t - 1) * B + b : (long)b * T + t - 1;
      const int8_t *x = in + xs * F, *hp = t > 0 ? out + hs * H : 0;
      int8_t *y = out + xs * H;
      for (int32_t j = 0; j < H; j++) {
        int32_t gate[4];
        for (int g = 0; g < 4; g++) {
          int32_t v = p->bias[g * H + j] + dot8(x, wi[g] + (long)j * F, F);
          v = clamp16(nasrt_mul(v, p->mult[g], p->shift[g]));
          if (hp) { /* at t = 0, h = its zero point: the recurrent sum cancels its bias to 0 */
            int32_t r = p->bias[(4 + g) * H + j] + dot8(hp, wr[g] + (long)j * H, H);
            v = clamp16(nasrt_mul(r, p->mult[4 + g], p->shift[4 + g]) + v);
          }
          gate[g] = g == 2 ? nasrt_fx_tanh(v, 3, 16) : nasrt_fx_logistic(v, 3, 16);
        }
        /* cell: f * c in Q0.15 * cell, i * c~ rescaled to the cell's scale */
        int32_t cf = (int16_t)nasrt_rdbpot(gate[1] * c[j], 15);
        int32_t ic = (int16_t)nasrt_rdbpot(gate[0] * gate[2], 30 + p->cell_shift);
        int32_t cv = clamp16(cf + ic);
        if (p->cell_clip > 0) cv = nasrt_clamp(cv, -p->cell_clip, p->cell_clip);
        c[j] = (int16_t)cv;
        const int32_t th = nasrt_fx_tanh(cv, cell_ib, 16);
        const int32_t hv = nasrt_mul(gate[3] * th, p->hid_mult, p->hid_shift) - p->hid_zp;
        y[j] = (int8_t)nasrt_clamp(hv, -128, 127);
      }
    }
  }
}

void nasrt_eval_lstm(const void *p, int8_t *arena) {
  const nasrt_lstm_p *c = p;
  nasrt_lstm(c, arena + c->in, arena + c->out, (int16_t *)(void *)(arena + c->cstate));
}
