/* deploy/wino8.c: the lowering constants of a Winograd-aware layer, the static weight
 * transform shared by the prepare step, and the rewrite of static layers as CONV_2D (see
 * deploy/wino8.h). */
#include "deploy/wino8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "runtime/nasrt_wfixed.h"
#include "train/ops.h"

/* ---- lowering constants ------------------------------------------------------------------- */

void nas_wino_lowered_free(nas_wino_lowered *r) {
  if (!r) return;
  free(r->wq), free(r->wscale), free(r->bias), free(r->bscale);
  r->wq = NULL, r->wscale = NULL, r->bias = NULL, r->bscale = NULL;
}

static int op_is(const nas_graph *g, int id, int op) {
  return id >= 0 && id < g->n && g->nodes[id].kind == NAS_NODE_OP && g->nodes[id].op == op;
}

static int32_t sat32(double v) {
  v = round(v);
  return v > 2147483647.0 ? INT32_MAX : v < -2147483648.0 ? INT32_MIN : (int32_t)v;
}

/* Flex: U [co][P][ci] = round(G (s_w g) G^T / s_u) per output channel, s_u = max|.|/127. */
static void flex_u(const float *G, int a, const int8_t *gq, const float *sw, int co, int ci,
                   int8_t *u, float *su, double *tmp) {
  const int P = a * a;
  for (int k = 0; k < co; k++) {
    double mx = 0;
    for (int c = 0; c < ci; c++)
      for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++) {
          double s = 0;
          for (int p = 0; p < 3; p++)
            for (int q = 0; q < 3; q++)
              s += (double)G[i * 3 + p] * gq[((size_t)k * 9 + p * 3 + q) * ci + c] * (double)G[j * 3 + q];
          s *= sw[k];
          tmp[((size_t)i * a + j) * ci + c] = s;
          if (fabs(s) > mx) mx = fabs(s);
        }
    su[k] = mx > 0 ? (float)(mx * NAS_WINO_UWIDE / 127.0) : 1.0f;
    for (int p = 0; p < P; p++)
      for (int c = 0; c < ci; c++) {
        double v = round(tmp[(size_t)p * ci + c] / su[k]);
        u[((size_t)k * P + p) * ci + c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
      }
  }
}

int nas_wino_lower_consts(const nas_graph *fg, int out, int bn, const nas_calib *c,
                          nas_wino_lowered *r, nas_err *e) {
  memset(r, 0, sizeof *r);
  const nas_node *on = &fg->nodes[out];
  const int mul = on->in[0], vn = op_is(fg, mul, NAS_OP_WINO_MUL) ? fg->nodes[mul].in[0] : -1;
  const int un = vn >= 0 ? fg->nodes[mul].in[1] : -1;
  if (!op_is(fg, out, NAS_OP_WINO_OUT) || !op_is(fg, vn, NAS_OP_WINO_IN) || !op_is(fg, un, NAS_OP_WINO_WT))
    return nas_errf(e, NAS_EINVAL, "node '%s' is not the output of a Winograd convolution", on->name);
  const nas_node *V = &fg->nodes[vn], *U = &fg->nodes[un], *W = &fg->nodes[U->in[0]];
  const nas_node *G = &fg->nodes[U->in[1]], *Bt = &fg->nodes[V->in[1]], *At = &fg->nodes[on->in[1]];
  const nas_node *cb = on->n_in > 2 ? &fg->nodes[on->in[2]] : NULL;
  if (W->kind == NAS_NODE_OP)
    return nas_errf(e, NAS_EINVAL, "'%s': the weights of a Winograd layer must be a tensor", on->name);
  r->m = At->shape.d[0], r->bits = V->p.bits > 0 ? V->p.bits : 8;
  r->flex = Bt->kind == NAS_NODE_PARAM || At->kind == NAS_NODE_PARAM || G->kind == NAS_NODE_PARAM;
  r->co = W->shape.d[0], r->ci = W->shape.d[3], r->x_node = V->in[0], r->w_node = U->in[0];
  const nas_wino_tf *tf = nas_wino_tf_get(r->m);
  if (!tf) return nas_errf(e, NAS_EINVAL, "'%s': tile %d is not 2 or 4", on->name, r->m);
  if (!c->point || !c->point[vn] || !c->point[mul])
    return nas_errf(e, NAS_EINVAL, "'%s': no calibrated range for V and M (calibrate this network first)",
                    on->name);
  const int a = tf->a, P = a * a, co = r->co, ci = r->ci;
  const size_t nw = (size_t)co * 9 * ci;
  float *wf = nas_malloc(sizeof *wf * nw), *sk = nas_malloc(sizeof *sk * (size_t)co);
  float *bf = nas_malloc(sizeof *bf * (size_t)co);
  int8_t *gq = nas_malloc(nw);
  double *tmp = r->flex ? nas_malloc(sizeof *tmp * (size_t)P * ci) : NULL;
  r->wscale = nas_malloc(sizeof *r->wscale * (size_t)co);
  r->bias = nas_malloc(sizeof *r->bias * (size_t)co);
  r->bscale = nas_malloc(sizeof *r->bscale * (size_t)co);
  r->wq = nas_malloc(r->flex ? (size_t)co * P * ci : nw);
  int rc = NAS_OK;
  if (!wf || !sk || !bf || !gq || (r->flex && !tmp) || !r->wscale || !r->bias || !r->bscale || !r->wq) {
    rc = nas_errf(e, NAS_ENOMEM, "'%s': out of memory lowering a Winograd layer", on->name);
    goto done;
  }
  /* batch-norm folding: w' = s_k w, b' = beta - mean s_k + b s_k */
  for (int k = 0; k < co; k++) {
    double s = 1, shift = 0;
    if (bn >= 0) {
      const nas_node *n = &fg->nodes[bn];
      const float *gamma = fg->nodes[n->in[1]].val, *beta = fg->nodes[n->in[2]].val;
      const float *mean = fg->nodes[n->in[3]].val, *var = fg->nodes[n->in[4]].val;
      s = gamma[k] / sqrt((double)var[k] + (n->p.eps > 0 ? n->p.eps : 1e-5f));
      shift = beta[k] - mean[k] * s;
    }
    sk[k] = (float)s;
    bf[k] = (float)(shift + (cb ? cb->val[k] * s : 0.0));
    for (size_t q = 0; q < (size_t)9 * ci; q++) wf[(size_t)k * 9 * ci + q] = (float)(W->val[(size_t)k * 9 * ci + q] * s);
  }
  nas_q_weights(wf, co, 9 * ci, 9 * ci, 1, gq, r->wscale);
  r->vscale = nas_wino_sym_scale(c->lo[vn], c->hi[vn], r->bits);
  const float sm = nas_wino_sym_scale(c->lo[mul], c->hi[mul], r->bits);
  if (r->flex) {
    r->fb = nas_wino_pow2(Bt->val, P, 127, r->tables);
    r->fa = nas_wino_pow2(At->val, r->m * a, nas_wino_alim(a, r->bits), r->tables + P);
    float *su = nas_malloc(sizeof *su * (size_t)co);
    if (!su) {
      rc = nas_errf(e, NAS_ENOMEM, "'%s': out of memory lowering a Winograd layer", on->name);
      goto done;
    }
    flex_u(G->val, a, gq, r->wscale, co, ci, r->wq, su, tmp);
    memcpy(r->wscale, su, sizeof *su * (size_t)co);
    free(su);
  } else {
    memcpy(r->wq, gq, nw);
  }
  double big = 0; /* the largest |bias| in accumulator units */
  for (int k = 0; k < co; k++) {
    double smk = fabs((double)sk[k]) * sm;
    if (!(smk > 0)) smk = sm; /* a zero channel: any scale */
    r->bscale[k] = (float)ldexp(smk, -2 * r->fa); /* the accumulator's, for now */
    if (fabs((double)bf[k] / r->bscale[k]) > big) big = fabs((double)bf[k] / r->bscale[k]);
  }
  r->bshift = 16;
  while (r->bshift > 0 && ldexp(big, r->bshift) >= 1073741824.0) r->bshift--;
  for (int k = 0; k < co; k++) {
    r->bscale[k] = (float)ldexp(r->bscale[k], -r->bshift);
    r->bias[k] = sat32((double)bf[k] / r->bscale[k]);
  }
done:
  free(wf), free(sk), free(bf), free(gq), free(tmp);
  if (rc) nas_wino_lowered_free(r);
  return rc;
}

/* ---- static weight transform ---------------------------------------------------------------- */

void nas_wino_static_u(int m, const int8_t *w, int co, int ci, int32_t *wmax, int32_t *u_mult,
                       int8_t *u_shift, int8_t *u) {
  const nas_wino_tf *tf = nas_wino_tf_get(m);
  const int a = tf->a, P = a * a, ci4 = NASRT_WINO_CI4(ci);
  int32_t ug[NAS_WINO_MAXA * NAS_WINO_MAXA];
  if (u) memset(u, 0, (size_t)co * P * ci4);
  for (int k = 0; k < co; k++) {
    int32_t mx = 0;
    for (int pass = 0; pass < 2; pass++) /* the maximum, then U */
      for (int c = 0; c < ci; c++) {
        for (int i = 0; i < a; i++)
          for (int j = 0; j < a; j++) {
            int32_t s = 0;
            for (int p = 0; p < 3; p++)
              for (int q = 0; q < 3; q++)
                s += tf->g[i * 3 + p] * w[((size_t)k * 9 + p * 3 + q) * ci + c] * tf->g[j * 3 + q];
            ug[i * a + j] = s;
          }
        for (int p = 0; p < P; p++) {
          if (pass == 0) {
            if (abs(ug[p]) > mx) mx = abs(ug[p]);
          } else if (u) {
            int32_t q = nasrt_mul_round(ug[p], u_mult[k], u_shift[k]);
            u[((size_t)k * P + p) * ci4 + c] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
          }
        }
        if (pass == 0 && c == ci - 1) {
          int sh = 0;
          nas_q_quantize_multiplier(mx > 0 ? 127.0 / (mx * NAS_WINO_UWIDE) : 0.0, &u_mult[k], &sh);
          u_shift[k] = (int8_t)sh;
        }
      }
    wmax[k] = mx;
  }
}

/* ---- static layers as CONV_2D ---------------------------------------------------------------- */

int nas_g8_wino_count(const nas_g8_graph *g, int *flex) {
  int n = 0, f = 0;
  for (int i = 0; i < g->nops; i++)
    if (g->ops[i].kind == NAS_G8_WINOGRAD) n++, f += g->ops[i].nin > 4 && g->ops[i].in[4] >= 0;
  if (flex) *flex = f;
  return n;
}

/* "l3.conv" -> "layer 3" for messages; the tensor name otherwise. */
static void layer_name(const char *tensor, char *buf, size_t n) {
  int li;
  if (sscanf(tensor, "l%d.", &li) == 1) snprintf(buf, n, "layer %d (conv)", li);
  else snprintf(buf, n, "operator '%s'", tensor);
}

static int copy_tensor(const nas_g8_tensor *s, nas_g8_tensor *d) {
  memset(d, 0, sizeof *d);
  *d = *s;
  d->name = nas_strdup(s->name ? s->name : "");
  d->scale = nas_malloc(sizeof *d->scale * (size_t)(s->nq > 0 ? s->nq : 1));
  d->zero_point = nas_malloc(sizeof *d->zero_point * (size_t)(s->nq > 0 ? s->nq : 1));
  d->data = s->data ? nas_malloc(s->bytes ? s->bytes : 1) : NULL;
  if (!d->name || !d->scale || !d->zero_point || (s->data && !d->data)) return NAS_ENOMEM;
  memcpy(d->scale, s->scale, sizeof *d->scale * (size_t)(s->nq > 0 ? s->nq : 1));
  memcpy(d->zero_point, s->zero_point, sizeof *d->zero_point * (size_t)(s->nq > 0 ? s->nq : 1));
  if (s->data) memcpy(d->data, s->data, s->bytes);
  return NAS_OK;
}

int nas_g8_wino_as_conv(const nas_g8_graph *g, nas_g8_graph *out, int *converted, nas_err *e) {
  memset(out, 0, sizeof *out);
  if (converted) *converted = 0;
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    if (op->kind == NAS_G8_WINOGRAD && op->in[4] >= 0) {
      char ln[96];
      layer_name(g->tensors[op->out].name, ln, sizeof ln);
      return nas_errf(e, NAS_EINVAL,
                      "%s: a flex Winograd layer learns its own transforms, so its arithmetic is "
                      "not a convolution and no standard operator computes it (use --format c, "
                      "or train it with flex false)", ln);
    }
  }
  /* tensors the rewritten operators read (the scratch and the tables go) */
  int *map = nas_malloc(sizeof *map * (size_t)(g->ntensors + 1));
  unsigned char *keep = nas_calloc((size_t)g->ntensors + 1, 1);
  if (!map || !keep) {
    free(map), free(keep);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  keep[g->input] = keep[g->output] = 1;
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    int nin = op->kind == NAS_G8_WINOGRAD ? 3 : op->nin;
    for (int k = 0; k < nin; k++)
      if (op->in[k] >= 0) keep[op->in[k]] = 1;
    keep[op->out] = 1;
  }
  int nt = 0;
  for (int t = 0; t < g->ntensors; t++) map[t] = keep[t] ? nt++ : -1;
  out->tensors = nas_calloc((size_t)(nt > 0 ? nt : 1), sizeof *out->tensors);
  out->ops = nas_calloc((size_t)(g->nops > 0 ? g->nops : 1), sizeof *out->ops);
  int rc = out->tensors && out->ops ? NAS_OK : NAS_ENOMEM;
  for (int t = 0; rc == NAS_OK && t < g->ntensors; t++) {
    if (map[t] < 0) continue;
    out->ntensors++;
    rc = copy_tensor(&g->tensors[t], &out->tensors[map[t]]);
  }
  out->nops = g->nops;
  for (int i = 0; rc == NAS_OK && i < g->nops; i++) {
    nas_g8_op *o = &out->ops[i];
    *o = g->ops[i];
    for (int k = 0; k < NAS_G8_MAXIN; k++) o->in[k] = k < o->nin && o->in[k] >= 0 ? map[o->in[k]] : -1;
    o->out = map[o->out];
    if (g->ops[i].kind != NAS_G8_WINOGRAD) continue;
    /* CONV_2D: stride 1, the same padding and activation; bias at input scale * weight scale */
    o->kind = NAS_G8_CONV_2D, o->nin = 3, o->in[3] = o->in[4] = -1;
    o->stride_w = o->stride_h = o->dil_w = o->dil_h = 1;
    o->wino_m = o->wino_bits = o->wino_rt = o->wino_fa = o->wino_fb = o->wino_bshift = 0, o->wino_vscale = 0;
    const float sx = g->tensors[g->ops[i].in[0]].scale[0];
    const nas_g8_tensor *w = &out->tensors[o->in[1]];
    nas_g8_tensor *b = &out->tensors[o->in[2]];
    int32_t *bd = b->data;
    for (int k = 0; k < b->nq; k++) {
      const double real = (double)bd[k] * b->scale[k], s = (double)sx * w->scale[k];
      bd[k] = sat32(real / s);
      b->scale[k] = (float)s;
    }
    if (converted) (*converted)++;
  }
  if (rc == NAS_OK) out->input = map[g->input], out->output = map[g->output];
  free(map), free(keep);
  if (rc != NAS_OK) {
    nas_g8_graph_free(out);
    return nas_errf(e, NAS_ENOMEM, "out of memory rewriting the Winograd layers");
  }
  return nas_g8_validate(out, e);
}
