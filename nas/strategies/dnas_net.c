/* nas/strategies/dnas_net.c: the supernet graph of a relaxed space (dnas.h): every slot at its
 * largest size, with gate tensors (STATE nodes that receive gradients) for channel masks,
 * kernel masks, residual and presence mixtures and op mixtures; writing the gates from y and
 * reading their gradients back as d(loss)/dy. Parameter nodes are named
 * "s<slot>.<part>.<tensor>", gates "s<slot>.gate.<kind>". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/strategies/dnas.h"
#include "core/alloc.h"
#include "train/ops.h"

static const char *const GATE_NAMES[] = {"out", "hid", "in", "ker", "pres", "res", "op"};
_Static_assert(sizeof GATE_NAMES / sizeof GATE_NAMES[0] == NAS_GATE_OP + 1, "NAS_GATE_* names");

typedef struct sb {
  nas_graph *g;
  nas_err *e;
  const nas_dnas_relax *rx;
  nas_dnas_net *dn;
  int cap_gates;
  int s;                  /* slot being built */
  int h, w, c, flat;      /* physical shape of the current node */
  int pre;                /* branch prefix counter (op mixtures) */
} sb;

/* Per-branch facts over the combinations of the slot's table (restricted to one op value). */
typedef struct bstat {
  const nas_sn_layer *L0; /* first matching combination (fixed fields) */
  int out, hid, kh, kw;   /* maxima */
  int out_var, hid_var, in_var, k_var; /* a combination uses less than the maximum */
  int any_res, all_res;   /* residual adds */
  int exp1, expn;         /* some combination has expand 1 / > 1 */
} bstat;

static int op_dec_index(const nas_dnas_table *tb, int opd) {
  for (int i = 0; i < tb->n_rel; i++)
    if (tb->rel[i] == opd) return i;
  return -1;
}

static int matches(const nas_dnas_table *tb, int k, int ri, int opv) {
  return opv < 0 || ri < 0 || tb->vals[k * tb->n_rel + ri] == opv;
}

static void stats(const nas_dnas_table *tb, int ri, int opv, int cin, bstat *b) {
  memset(b, 0, sizeof *b);
  b->all_res = 1;
  for (int k = 0; k < tb->n; k++) {
    if (!matches(tb, k, ri, opv)) continue;
    const nas_sn_layer *L = &tb->L[k];
    if (!b->L0) b->L0 = L;
    if (L->out_c > b->out) b->out = L->out_c;
    if (L->hidden > b->hid) b->hid = L->hidden;
    if (L->kh > b->kh) b->kh = L->kh;
    if (L->kw > b->kw) b->kw = L->kw;
    b->any_res |= L->residual, b->all_res &= L->residual;
    b->exp1 |= L->expand == 1, b->expn |= L->expand > 1;
  }
  for (int k = 0; k < tb->n; k++) {
    if (!matches(tb, k, ri, opv)) continue;
    const nas_sn_layer *L = &tb->L[k];
    b->out_var |= L->out_c < b->out, b->hid_var |= L->hidden < b->hid;
    b->in_var |= L->in_c < cin, b->k_var |= L->kh < b->kh || L->kw < b->kw;
  }
}

/* ---- graph helpers ----------------------------------------------------------------------- */

static int fail_slot(sb *b) {
  nas_err_prefix(b->e, "dnas supernet: %s", b->rx->sn->slots[b->s].path);
  return -1;
}

static int param(sb *b, const char *part, const char *t, int nd, const int *d) {
  char name[48];
  snprintf(name, sizeof name, "s%d.%.20s.%.8s", b->s, part, t);
  int id = nas_graph_param(b->g, name, nd, d, b->e);
  return id < 0 ? fail_slot(b) : id;
}

static int state(sb *b, const char *part, const char *t, int n) {
  char name[48];
  snprintf(name, sizeof name, "s%d.%.20s.%.8s", b->s, part, t);
  int id = nas_graph_state(b->g, name, 1, &n, b->e);
  return id < 0 ? fail_slot(b) : id;
}

#define MAX_GATE 4096 /* elements of one gate (channels or kernel window) */

static int gate(sb *b, int type, int size, int opv, int kh, int kw) {
  nas_dnas_net *dn = b->dn;
  if (size > MAX_GATE)
    return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: a %s gate of %d elements (more than %d)",
                    b->rx->sn->slots[b->s].path, GATE_NAMES[type], size, MAX_GATE), -1;
  if (dn->n_gates == b->cap_gates) {
    int cap = b->cap_gates ? 2 * b->cap_gates : 32;
    nas_dnas_gate *p = nas_realloc(dn->gates, sizeof *p * (size_t)cap);
    if (!p) return nas_errf(b->e, NAS_ENOMEM, "dnas: out of memory"), -1;
    dn->gates = p, b->cap_gates = cap;
  }
  char name[48];
  snprintf(name, sizeof name, "s%d.gate%d.%s", b->s, dn->n_gates, GATE_NAMES[type]);
  int id = nas_graph_state(b->g, name, 1, &size, b->e);
  if (id < 0) return fail_slot(b);
  b->g->nodes[id].needs_grad = 1; /* a gate receives a gradient but no optimiser step */
  dn->gates[dn->n_gates++] = (nas_dnas_gate){id, b->s, type, size, opv, kh, kw};
  return id;
}

static int apply(sb *b, int op, const int *in, int n_in, const nas_op_params *p, const char *part) {
  char name[48];
  snprintf(name, sizeof name, "s%d.%.36s", b->s, part);
  int id = nas_graph_apply(b->g, op, in, n_in, p, name, b->e);
  return id < 0 ? fail_slot(b) : id;
}

static int mask(sb *b, int x, int m, int inner, const char *part) {
  int in[2] = {x, m};
  nas_op_params p = {.kw = inner};
  return apply(b, NAS_OP_MASK_MUL, in, 2, &p, part);
}

static int act(sb *b, int x, int a, const char *part) {
  char p2[40];
  snprintf(p2, sizeof p2, "%.30s.act", part);
  if (a == NAS_ACT_RELU) return apply(b, NAS_OP_RELU, &x, 1, NULL, p2);
  if (a == NAS_ACT_RELU6) return apply(b, NAS_OP_RELU6, &x, 1, NULL, p2);
  return x;
}

/* conv or depthwise conv (cin -> cout, kernel kh x kw, masked by kgate when >= 0) + BN/bias +
 * activation. */
static int conv(sb *b, int x, int dw, int cin, int cout, int kh, int kw, const nas_sn_layer *L,
                int sh, int sw, int bn, int bias, int a, int kgate, const char *part) {
  int wd[4] = {cout, kh, kw, cin}, dwd[3] = {kh, kw, cin}, bd[1] = {dw ? cin : cout};
  int w = dw ? param(b, part, "w", 3, dwd) : param(b, part, "w", 4, wd);
  if (w < 0) return -1;
  if (kgate >= 0 && (w = mask(b, w, kgate, cin, part)) < 0) return -1;
  int in[3] = {x, w, -1}, n_in = 2;
  if (bias && (in[n_in++] = param(b, part, "b", 1, bd)) < 0) return -1;
  nas_op_params p = {.sh = sh, .sw = sw, .padding = L->same ? NAS_PAD_SAME : NAS_PAD_VALID};
  int y = apply(b, dw ? NAS_OP_DWCONV2D : NAS_OP_CONV2D, in, n_in, &p, part);
  if (y < 0) return -1;
  if (bn) {
    char p2[40];
    snprintf(p2, sizeof p2, "%.30s.bn", part);
    int c = dw ? cin : cout;
    int bi[5] = {y, param(b, p2, "gamma", 1, &c), param(b, p2, "beta", 1, &c),
                 state(b, p2, "mean", c), state(b, p2, "var", c)};
    for (int i = 1; i < 5; i++)
      if (bi[i] < 0) return -1;
    nas_op_params bp = {.act = a};
    return apply(b, NAS_OP_BATCHNORM, bi, 5, &bp, p2);
  }
  return act(b, y, a, part);
}

/* Kernel choices must be centred windows of the largest kernel under "same" padding. */
static int check_kernels(sb *b, const nas_dnas_table *tb, int ri, int opv, const bstat *st) {
  int pK, pk;
  for (int k = 0; k < tb->n; k++) {
    if (!matches(tb, k, ri, opv)) continue;
    const nas_sn_layer *L = &tb->L[k];
    int ok = L->same && (st->kh - L->kh) % 2 == 0 && (st->kw - L->kw) % 2 == 0;
    if (ok) {
      nas_conv_out_size(b->h, st->kh, L->sh, 1, &pK), nas_conv_out_size(b->h, L->kh, L->sh, 1, &pk);
      ok = pK - pk == (st->kh - L->kh) / 2;
      nas_conv_out_size(b->w, st->kw, L->sw, 1, &pK), nas_conv_out_size(b->w, L->kw, L->sw, 1, &pk);
      ok = ok && pK - pk == (st->kw - L->kw) / 2;
    }
    if (!ok)
      return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: kernel %dx%d is not a centred window of "
                      "%dx%d under same padding", b->rx->sn->slots[b->s].path, L->kh, L->kw,
                      st->kh, st->kw), -1;
  }
  return 0;
}

/* One branch (all combinations, or those with op value opv). Returns the output node and sets
 * *oc to its channels. */
static int branch(sb *b, int x, int opv, int *oc) {
  const nas_dnas_table *tb = &b->rx->tab[b->s];
  int opd = nas_sn_field_dec(b->rx->sn, b->s, "op");
  int ri = opd >= 0 ? op_dec_index(tb, opd) : -1;
  bstat st;
  stats(tb, ri, opv, b->c, &st);
  const nas_sn_layer *L = st.L0;
  if (!L) return nas_errf(b->e, NAS_EINVAL, "dnas supernet: empty branch"), -1;
  char part[24];
  snprintf(part, sizeof part, "b%d", b->pre++);
  int cin = b->c, y = x, kg = -1;
  *oc = cin;
  if ((L->op == NAS_SN_CONV || L->op == NAS_SN_DWCONV || L->op == NAS_SN_DSCONV ||
       L->op == NAS_SN_MBCONV) && st.k_var) {
    if (check_kernels(b, tb, ri, opv, &st)) return -1;
    if ((kg = gate(b, NAS_GATE_KER, st.kh * st.kw, opv, st.kh, st.kw)) < 0) return -1;
  }
  if (b->flat && L->op != NAS_SN_FC && L->op != NAS_SN_DROPOUT && L->op != NAS_SN_FLATTEN)
    return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: needs a spatial input",
                    b->rx->sn->slots[b->s].path), -1;
  char p2[32];
  switch (L->op) {
    case NAS_SN_CONV: case NAS_SN_PWCONV:
      if ((y = conv(b, x, 0, cin, st.out, L->op == NAS_SN_PWCONV ? 1 : st.kh,
                    L->op == NAS_SN_PWCONV ? 1 : st.kw, L, L->sh, L->sw, L->bn, L->bias, L->act, kg, part)) < 0)
        return -1;
      *oc = st.out;
      break;
    case NAS_SN_DWCONV: case NAS_SN_DSCONV: {
      snprintf(p2, sizeof p2, "%s.dw", part);
      int ds = L->op == NAS_SN_DSCONV, bn = ds ? 1 : L->bn, bias = ds ? 0 : L->bias;
      if ((y = conv(b, x, 1, cin, cin, st.kh, st.kw, L, L->sh, L->sw, bn, bias, L->act, kg, p2)) < 0)
        return -1;
      if (st.in_var) {
        int g = gate(b, NAS_GATE_IN, cin, opv, 0, 0);
        if (g < 0 || (y = mask(b, y, g, 1, p2)) < 0) return -1;
      }
      if (L->op == NAS_SN_DSCONV) {
        snprintf(p2, sizeof p2, "%s.pw", part);
        if ((y = conv(b, y, 0, cin, st.out, 1, 1, L, 1, 1, 1, 0, L->act, -1, p2)) < 0) return -1;
        *oc = st.out;
      }
      break;
    }
    case NAS_SN_MBCONV: {
      int h = y, hid = cin;
      if (st.expn) {
        if (st.exp1)
          return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: expand choices must not mix 1 "
                          "(no expansion layer) with larger values", b->rx->sn->slots[b->s].path), -1;
        hid = st.hid;
        snprintf(p2, sizeof p2, "%s.expand", part);
        if ((h = conv(b, y, 0, cin, hid, 1, 1, L, 1, 1, 1, 0, L->act, -1, p2)) < 0) return -1;
      }
      int hg = -1;
      if (st.expn ? st.hid_var : st.in_var) {
        if ((hg = gate(b, st.expn ? NAS_GATE_HID : NAS_GATE_IN, hid, opv, 0, 0)) < 0) return -1;
        if (st.expn && (h = mask(b, h, hg, 1, p2)) < 0) return -1;
      }
      snprintf(p2, sizeof p2, "%s.dw", part);
      if ((h = conv(b, h, 1, hid, hid, st.kh, st.kw, L, L->sh, L->sw, 1, 0, L->act, kg, p2)) < 0)
        return -1;
      if (hg >= 0 && (h = mask(b, h, hg, 1, p2)) < 0) return -1;
      snprintf(p2, sizeof p2, "%s.project", part);
      if ((y = conv(b, h, 0, hid, st.out, 1, 1, L, 1, 1, 1, 0, NAS_ACT_NONE, -1, p2)) < 0) return -1;
      *oc = st.out;
      if (st.out_var) {
        int g = gate(b, NAS_GATE_OUT, st.out, opv, 0, 0);
        if (g < 0 || (y = mask(b, y, g, 1, p2)) < 0) return -1;
      }
      if (st.any_res) {
        int sk = x;
        nas_op_params cp = {.kw = st.out};
        if (cin != st.out && (sk = apply(b, NAS_OP_CHANPAD, &x, 1, &cp, "res.pad")) < 0) return -1;
        if (!st.all_res) {
          int g = gate(b, NAS_GATE_RES, 1, opv, 0, 0);
          if (g < 0 || (sk = mask(b, sk, g, 1, "res")) < 0) return -1;
        }
        int in[2] = {y, sk};
        if ((y = apply(b, NAS_OP_ADD, in, 2, NULL, "res")) < 0) return -1;
      }
      return y; /* the output mask is already applied */
    }
    case NAS_SN_MAXPOOL: case NAS_SN_AVGPOOL: {
      nas_op_params p = {.kh = L->kh, .kw = L->kw, .sh = L->sh, .sw = L->sw,
                         .padding = L->same ? NAS_PAD_SAME : NAS_PAD_VALID};
      return apply(b, L->op == NAS_SN_MAXPOOL ? NAS_OP_MAXPOOL : NAS_OP_AVGPOOL, &x, 1, &p, part);
    }
    case NAS_SN_GAP: return apply(b, NAS_OP_GAP, &x, 1, NULL, part);
    case NAS_SN_FLATTEN: {
      nas_op_params p = {.nd = 1, .d = {b->h * b->w * b->c}};
      *oc = b->h * b->w * b->c;
      return apply(b, NAS_OP_RESHAPE, &x, 1, &p, part);
    }
    case NAS_SN_DROPOUT: {
      double rate = 1;
      for (int k = 0; k < tb->n; k++) rate = tb->L[k].rate < rate ? tb->L[k].rate : rate;
      nas_op_params p = {.rate = (float)rate};
      return apply(b, NAS_OP_DROPOUT, &x, 1, &p, part);
    }
    case NAS_SN_FC: {
      int k = b->flat ? b->c : b->h * b->w * b->c, wd[2] = {st.out, k}, bd[1] = {st.out};
      int in[3] = {x, param(b, part, "w", 2, wd), L->bias ? param(b, part, "b", 1, bd) : -1};
      if (in[1] < 0 || (L->bias && in[2] < 0)) return -1;
      if ((y = apply(b, NAS_OP_DENSE, in, L->bias ? 3 : 2, NULL, part)) < 0) return -1;
      if ((y = act(b, y, L->act, part)) < 0) return -1;
      *oc = st.out;
      break;
    }
    default: return nas_errf(b->e, NAS_EINVAL, "dnas supernet: unsupported op"), -1;
  }
  if (st.out_var && (L->op == NAS_SN_CONV || L->op == NAS_SN_PWCONV || L->op == NAS_SN_DSCONV ||
                      L->op == NAS_SN_FC)) {
    int g = gate(b, NAS_GATE_OUT, st.out, opv, 0, 0);
    if (g < 0 || (y = mask(b, y, g, 1, part)) < 0) return -1;
  }
  return y;
}

static int pad_to(sb *b, int x, int have, int want, const char *part) {
  if (have == want) return x;
  nas_op_params p = {.kw = want};
  return apply(b, NAS_OP_CHANPAD, &x, 1, &p, part);
}

static void node_shape(sb *b, int id) {
  const nas_node *nd = &b->g->nodes[id];
  if (nd->shape.nd == 4) b->h = nd->shape.d[1], b->w = nd->shape.d[2], b->c = nd->shape.d[3], b->flat = 0;
  else b->h = b->w = 1, b->c = (int)nas_node_sample_numel(nd), b->flat = 1;
}

static int slot(sb *b, int x) {
  const nas_supernet *sn = b->rx->sn;
  const nas_dnas_table *tb = &b->rx->tab[b->s];
  int opd = nas_sn_field_dec(sn, b->s, "op"), any_absent = 0;
  for (int k = 0; k < tb->n; k++) any_absent |= !tb->L[k].present;
  int y, oc;
  if (opd < 0) {
    if ((y = branch(b, x, -1, &oc)) < 0) return -1;
  } else {
    int n = sn->dec[opd].card, br[NAS_MAX_INPUTS], bc[NAS_MAX_INPUTS], mx = 0;
    if (n > NAS_MAX_INPUTS - 1)
      return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: at most %d op choices", sn->slots[b->s].path,
                      NAS_MAX_INPUTS - 1), -1;
    for (int v = 0; v < n; v++) {
      if ((br[v + 1] = branch(b, x, v, &bc[v])) < 0) return -1;
      mx = bc[v] > mx ? bc[v] : mx;
    }
    for (int v = 0; v < n; v++)
      if ((br[v + 1] = pad_to(b, br[v + 1], bc[v], mx, "op.pad")) < 0) return -1;
    if ((br[0] = gate(b, NAS_GATE_OP, n, -1, 0, 0)) < 0) return -1;
    if ((y = apply(b, NAS_OP_MIX, br, n + 1, NULL, "op.mix")) < 0) return -1;
    oc = mx;
  }
  if (any_absent) {
    const nas_node *yn = &b->g->nodes[y];
    int yflat = yn->shape.nd != 4, sk = x, want = oc > b->c ? oc : b->c;
    if (yflat != b->flat)
      return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: an optional layer must keep the "
                      "input's rank", sn->slots[b->s].path), -1;
    if (!yflat && (yn->shape.d[1] != b->h || yn->shape.d[2] != b->w)) {
      const nas_sn_layer *L = &tb->L[0];
      nas_op_params p = {.kh = L->sh, .kw = L->sw, .sh = L->sh, .sw = L->sw, .padding = NAS_PAD_SAME};
      if ((sk = apply(b, NAS_OP_AVGPOOL, &x, 1, &p, "skip.pool")) < 0) return -1;
      const nas_node *sn2 = &b->g->nodes[sk];
      if (sn2->shape.d[1] != yn->shape.d[1] || sn2->shape.d[2] != yn->shape.d[2])
        return nas_errf(b->e, NAS_EINVAL, "dnas supernet: %s: the skip path cannot match the "
                        "layer's output size", sn->slots[b->s].path), -1;
    }
    if ((sk = pad_to(b, sk, b->c, want, "skip.pad")) < 0 || (y = pad_to(b, y, oc, want, "pad")) < 0)
      return -1;
    int in[3] = {gate(b, NAS_GATE_PRES, 2, -1, 0, 0), y, sk};
    if (in[0] < 0 || (y = apply(b, NAS_OP_MIX, in, 3, NULL, "skip.mix")) < 0) return -1;
  }
  node_shape(b, y);
  return y;
}

/* PyTorch default initialisation, as train/net.c (gates are left to set_gates). */
void nas_dnas_net_free(nas_dnas_net *dn) {
  if (!dn) return;
  nas_net_free(dn->net);
  free(dn->gates);
  free(dn->slot_out);
  free(dn);
}

int nas_dnas_net_build(const nas_dnas_relax *rx, int max_batch, uint64_t seed, nas_dnas_net **out,
                       nas_err *e) {
  *out = NULL;
  const nas_supernet *sn = rx->sn;
  nas_dnas_net *dn = nas_calloc(1, sizeof *dn);
  nas_net *n = dn ? nas_calloc(1, sizeof *n) : NULL;
  if (dn) dn->net = n, dn->rx = rx, dn->slot_out = nas_calloc((size_t)sn->n_slots, sizeof(int));
  if (n) n->g = nas_graph_new(max_batch, seed);
  if (!dn || !n || !n->g || !dn->slot_out) {
    nas_dnas_net_free(dn);
    return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  }
  n->in_h = sn->in_h, n->in_w = sn->in_w, n->in_c = sn->in_c, n->classes = sn->classes;
  int in[3] = {sn->in_h, sn->in_w, sn->in_c};
  sb b = {.g = n->g, .e = e, .rx = rx, .dn = dn, .h = in[0], .w = in[1], .c = in[2]};
  int x = n->input = nas_graph_input(n->g, "input", 3, in, e);
  int rc = x < 0 ? e->code : NAS_OK;
  for (int s = 0; rc == NAS_OK && s < sn->n_slots; s++) {
    b.s = s, b.pre = 0;
    if ((x = slot(&b, x)) < 0) rc = e->code ? e->code : NAS_EINVAL;
    else dn->slot_out[s] = x;
  }
  if (rc == NAS_OK && !(b.flat && b.c == sn->classes))
    rc = nas_errf(e, NAS_EINVAL, "dnas supernet %s: the last slot outputs %d values, expected %d "
                  "classes", nas_space_name(sn->space), b.h * b.w * b.c, sn->classes);
  if (rc == NAS_OK) {
    n->logits = x;
    rc = nas_net_add_loss(n, e);
  }
  if (rc == NAS_OK) rc = nas_graph_alloc(n->g, e);
  if (rc != NAS_OK) {
    nas_dnas_net_free(dn);
    return rc;
  }
  nas_net_init_params(n->g, seed);
  *out = dn;
  return NAS_OK;
}

/* ---- gates ------------------------------------------------------------------------------- */

/* Indicator of gate element j for combination L. */
static int ind(const nas_dnas_gate *gt, const nas_sn_layer *L, int j) {
  switch (gt->type) {
    case NAS_GATE_OUT: return j < L->out_c;
    case NAS_GATE_HID: return j < L->hidden;
    case NAS_GATE_IN: return j < L->in_c;
    case NAS_GATE_KER: {
      int a = j / gt->kw, c = j % gt->kw, a0 = (gt->kh - L->kh) / 2, c0 = (gt->kw - L->kw) / 2;
      return a >= a0 && a < a0 + L->kh && c >= c0 && c < c0 + L->kw;
    }
    case NAS_GATE_PRES: return j == 0 ? L->present : !L->present;
    case NAS_GATE_RES: return L->residual;
    default: return 0;
  }
}

/* Weight of combination k without the factor of decision index skip (-1: none); loo[i] the
 * same without factor i as well. */
static double weight(const nas_dnas_relax *rx, const nas_dnas_table *tb, int k, int skip,
                     const double *y, double *loo) {
  double f[NAS_DNAS_MAX_REL], w = 1;
  for (int i = 0; i < tb->n_rel; i++) {
    f[i] = i == skip ? 1 : y[rx->off[tb->rel[i]] + tb->vals[k * tb->n_rel + i]];
    w *= f[i];
  }
  if (loo)
    for (int i = 0; i < tb->n_rel; i++) {
      double p = 1;
      for (int j = 0; j < tb->n_rel; j++)
        if (j != i) p *= f[j];
      loo[i] = p;
    }
  return w;
}

void nas_dnas_net_set_gates(nas_dnas_net *dn, const double *y) {
  const nas_dnas_relax *rx = dn->rx;
  nas_graph *g = dn->net->g;
  for (int q = 0; q < dn->n_gates; q++) {
    const nas_dnas_gate *gt = &dn->gates[q];
    float *v = g->nodes[gt->node].val;
    const nas_dnas_table *tb = &rx->tab[gt->slot];
    int opd = nas_sn_field_dec(rx->sn, gt->slot, "op");
    if (gt->type == NAS_GATE_OP) {
      for (int j = 0; j < gt->size; j++) v[j] = (float)y[rx->off[opd] + j];
      continue;
    }
    int ri = gt->op >= 0 ? op_dec_index(tb, opd) : -1;
    double acc[MAX_GATE];
    int n = gt->size;
    memset(acc, 0, sizeof(double) * (size_t)n);
    for (int k = 0; k < tb->n; k++) {
      if (!matches(tb, k, ri, gt->op)) continue;
      double w = weight(rx, tb, k, ri, y, NULL);
      for (int j = 0; j < n; j++)
        if (ind(gt, &tb->L[k], j)) acc[j] += w;
    }
    for (int j = 0; j < n; j++) v[j] = (float)acc[j];
  }
}

void nas_dnas_net_gate_grad(const nas_dnas_net *dn, const double *y, double *dy) {
  const nas_dnas_relax *rx = dn->rx;
  const nas_graph *g = dn->net->g;
  double loo[NAS_DNAS_MAX_REL];
  for (int q = 0; q < dn->n_gates; q++) {
    const nas_dnas_gate *gt = &dn->gates[q];
    const nas_node *nd = &g->nodes[gt->node];
    const float *gr = nd->grad;
    if (!gr || !nd->grad_written) continue;
    const nas_dnas_table *tb = &rx->tab[gt->slot];
    int opd = nas_sn_field_dec(rx->sn, gt->slot, "op");
    if (gt->type == NAS_GATE_OP) {
      for (int j = 0; j < gt->size; j++) dy[rx->off[opd] + j] += gr[j];
      continue;
    }
    int ri = gt->op >= 0 ? op_dec_index(tb, opd) : -1;
    for (int k = 0; k < tb->n; k++) {
      if (!matches(tb, k, ri, gt->op)) continue;
      double s = 0;
      for (int j = 0; j < gt->size; j++)
        if (ind(gt, &tb->L[k], j)) s += gr[j];
      if (s == 0) continue;
      weight(rx, tb, k, ri, y, loo);
      for (int i = 0; i < tb->n_rel; i++)
        if (i != ri) dy[rx->off[tb->rel[i]] + tb->vals[k * tb->n_rel + i]] += loo[i] * s;
    }
  }
}
