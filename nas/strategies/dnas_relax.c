/* nas/strategies/dnas_relax.c: the continuous relaxation of a supernet (dnas.h): per-slot tables of
 * the decision combinations a slot depends on, expected costs and their gradients, the
 * (Gumbel-)softmax of the architecture logits and its Jacobian, and the cost loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/strategies/dnas.h"
#include "core/alloc.h"
#include "latency/cost_runtime.h"
#include "train/ops.h"

void nas_dnas_relax_free(nas_dnas_relax *rx) {
  if (!rx) return;
  for (int s = 0; rx->tab && s < rx->sn->n_slots; s++) {
    free(rx->tab[s].vals);
    free(rx->tab[s].L);
    free(rx->tab[s].cost);
  }
  free(rx->tab);
  free(rx->off);
  free(rx);
}

static int rel_add(nas_dnas_table *tb, int dec, const nas_supernet *sn, int s, nas_err *e) {
  for (int i = 0; i < tb->n_rel; i++)
    if (tb->rel[i] == dec) return NAS_OK;
  if (tb->n_rel == NAS_DNAS_MAX_REL)
    return nas_errf(e, NAS_EINVAL, "dnas: %s: depends on more than %d decisions", sn->slots[s].path,
                    NAS_DNAS_MAX_REL);
  tb->rel[tb->n_rel++] = dec;
  return NAS_OK;
}

/* The decisions slot s depends on: its own fields and presence, then, walking back, the
 * presence/op/out decisions that set its input channels (until an always-present layer
 * that sets channels) and those that set its spatial size (until an always-present gap or
 * fc). base: the layers resolved at the all-zero decision vector (for fixed ops). */
static int find_rel(const nas_supernet *sn, int s, const nas_sn_layer *base, nas_dnas_table *tb,
                    nas_err *e) {
  const nas_sn_slot *sl = &sn->slots[s];
  int rc = NAS_OK;
  for (int i = 0; rc == NAS_OK && i < sl->n_cond; i++) rc = rel_add(tb, sl->cond[i].dec, sn, s, e);
  for (int i = 0; rc == NAS_OK && i < sl->n_fields; i++) rc = rel_add(tb, sl->fields[i].dec, sn, s, e);
  int need_c = 1, need_hw = 1;
  for (int t = s - 1; rc == NAS_OK && t >= 0 && (need_c || need_hw); t--) {
    const nas_sn_slot *st = &sn->slots[t];
    for (int i = 0; rc == NAS_OK && i < st->n_cond; i++) rc = rel_add(tb, st->cond[i].dec, sn, s, e);
    int opd = nas_sn_field_dec(sn, t, "op"), outd = nas_sn_field_dec(sn, t, "out");
    int kd = nas_sn_field_dec(sn, t, "k");
    if (rc == NAS_OK && opd >= 0) rc = rel_add(tb, opd, sn, s, e);
    if (rc == NAS_OK && need_c && outd >= 0) rc = rel_add(tb, outd, sn, s, e);
    int op = base[t].op;
    int pool = op == NAS_SN_MAXPOOL || op == NAS_SN_AVGPOOL;
    if (rc == NAS_OK && need_hw && kd >= 0 && (pool || !base[t].same)) rc = rel_add(tb, kd, sn, s, e);
    if (st->n_cond == 0 && opd < 0) {
      if (op == NAS_SN_CONV || op == NAS_SN_PWCONV || op == NAS_SN_DSCONV || op == NAS_SN_MBCONV ||
          op == NAS_SN_FC)
        need_c = 0;
      if (op == NAS_SN_GAP || op == NAS_SN_FC) need_hw = 0;
    }
  }
  return rc;
}

static const char *cost_op(int op) {
  switch (op) {
    case NAS_SN_FLATTEN: case NAS_SN_DROPOUT: return NULL;
    default: return nas_sn_op_name(op);
  }
}

/* The slot's share of the planner's arena: the largest int8 working set (inputs + output
 * + a tensor kept for a residual add) over the slot's operators; the portable kernels the
 * planner is exact for use no scratch. */
static double slot_sram(const nas_sn_layer *L) {
  double in = (double)L->in_h * L->in_w * L->in_c, out = (double)L->out_h * L->out_w * L->out_c;
  switch (L->op) {
    case NAS_SN_DSCONV: {
      double mid = (double)L->out_h * L->out_w * L->in_c;
      return fmax(in + mid, mid + out);
    }
    case NAS_SN_MBCONV: {
      double res = L->residual ? in : 0, hin = (double)L->in_h * L->in_w * L->hidden;
      double hout = (double)L->out_h * L->out_w * L->hidden, m = 0;
      if (L->expand > 1) m = fmax(in + hin + res, hin + hout + res); /* expand, depthwise */
      else m = in + hout; /* the depthwise reads x itself, the tensor the residual keeps */
      m = fmax(m, hout + out + res);
      if (L->residual) m = fmax(m, 2 * in + out);
      return m;
    }
    case NAS_SN_FLATTEN: case NAS_SN_DROPOUT: return 0;
    default: return in + out;
  }
}

static int slot_cost(const nas_target *t, const nas_sn_layer *L, double *c, nas_err *e) {
  for (int m = 0; m < NAS_COST_COUNT; m++) c[m] = 0;
  const char *op = cost_op(L->op);
  if (!L->present || !op) return NAS_OK;
  if (L->sh != L->sw) return nas_errf(e, NAS_EINVAL, "dnas: non-square stride %dx%d", L->sh, L->sw);
  nas_choice ch = {.op = op, .in_h = L->in_h, .in_w = L->in_w, .in_c = L->in_c, .out_c = L->out,
                   .kh = L->kh, .kw = L->kw, .stride = L->sh, .expand = L->expand};
  nas_cost k;
  int rc = nas_choice_cost(t, &ch, &k, e);
  if (rc != NAS_OK) return rc;
  for (int m = 0; m < NAS_COST_COUNT; m++) c[m] = k.v[m];
  c[NAS_COST_SRAM] = slot_sram(L);
  return NAS_OK;
}

/* 1 when t's runtime prices latency from the int8 graph (the TFLM cycles model, the C
 * export's instruction model: latency/cost_runtime.h) rather than per kernel call. */
static int graph_latency(const nas_target *t) {
  return t->rt && (t->rt->have_cycles || t->rt->have_nasc);
}

/* Slot s's latency as the full pricing gives it (graph_latency targets): the architecture of
 * decision vector d is priced and the latency of its layer for slot s is taken (the layers of
 * an architecture are its present slots, in order). The runtime models are sums over
 * operators, each a function of its own shapes, so the slot's share depends on its resolved
 * layer only and a one-hot relaxation reproduces the exact figure. A conv slot's "algo"
 * decision is one of the slot's decisions like its "k": the table holds one latency per
 * algorithm, so the relaxed latency is the expected latency over the algorithm's
 * probabilities (as wiNAS); with a Winograd algorithm the layer's flash (*flash) is the full
 * price's as well. */
static int slot_latency(const nas_supernet *sn, const nas_target *t, int s, const int *d,
                        const nas_sn_layer *L, double *ms, double *flash, nas_err *e) {
  *ms = 0;
  if (!L[s].present || !cost_op(L[s].op)) return NAS_OK;
  int idx = 0, n_present = 0;
  for (int i = 0; i < sn->n_slots; i++)
    if (L[i].present) idx += i < s, n_present++;
  char *arch = NULL;
  nas_price *p = NULL;
  int rc = nas_space_materialize(sn->space, d, &arch, e);
  if (rc == NAS_OK) rc = nas_price_arch(arch, "supernet", t, &p, e);
  if (rc == NAS_OK && p->n_layers != n_present)
    rc = nas_errf(e, NAS_EINVAL, "dnas: %s: the architecture has %d layers for %d present slots",
                  sn->slots[s].path, p->n_layers, n_present);
  if (rc == NAS_OK) *ms = p->layers[idx].latency_ms;
  /* a Winograd algorithm changes the layer's flash too (nas-c: the prepared U), which the
     per-call model does not know: take the full price's */
  if (rc == NAS_OK && flash && L[s].algo != NAS_SN_IM2ROW) *flash = (double)p->layers[idx].flash_bytes;
  nas_price_free(p);
  free(arch);
  return rc;
}

static int build_table(const nas_dnas_relax *rx, int s, const nas_sn_layer *base, int *d,
                       nas_sn_layer *scratch, nas_err *e) {
  const nas_supernet *sn = rx->sn;
  nas_dnas_table *tb = &rx->tab[s];
  int rc = find_rel(sn, s, base, tb, e);
  if (rc != NAS_OK) return rc;
  double n = 1;
  for (int i = 0; i < tb->n_rel; i++) n *= sn->dec[tb->rel[i]].card;
  if (n > NAS_DNAS_MAX_COMBOS)
    return nas_errf(e, NAS_EINVAL, "dnas: %s: %.0f decision combinations (more than %d)",
                    sn->slots[s].path, n, NAS_DNAS_MAX_COMBOS);
  tb->n = (int)n;
  tb->vals = nas_malloc(sizeof(int) * (size_t)(tb->n * (tb->n_rel ? tb->n_rel : 1)));
  tb->L = nas_malloc(sizeof(nas_sn_layer) * (size_t)tb->n);
  tb->cost = nas_malloc(sizeof(double) * (size_t)tb->n * NAS_COST_COUNT);
  if (!tb->vals || !tb->L || !tb->cost) return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  memset(d, 0, sizeof(int) * (size_t)sn->n_dec);
  for (int k = 0; k < tb->n; k++) {
    int rem = k;
    for (int i = 0; i < tb->n_rel; i++) {
      int card = sn->dec[tb->rel[i]].card;
      tb->vals[k * tb->n_rel + i] = d[tb->rel[i]] = rem % card;
      rem /= card;
    }
    if ((rc = nas_sn_resolve(sn, d, scratch, e)) != NAS_OK) return rc;
    tb->L[k] = scratch[s];
    /* many combinations resolve the slot identically (they differ in decisions that only
       matter elsewhere): price each distinct layer once */
    int same = -1;
    for (int j = k - 1; j >= 0 && same < 0; j--)
      if (!memcmp(&tb->L[j], &tb->L[k], sizeof tb->L[k])) same = j;
    if (same >= 0) {
      memcpy(&tb->cost[k * NAS_COST_COUNT], &tb->cost[same * NAS_COST_COUNT], sizeof(double) * NAS_COST_COUNT);
      continue;
    }
    if ((rc = slot_cost(rx->t, &scratch[s], &tb->cost[k * NAS_COST_COUNT], e)) != NAS_OK) {
      nas_err_prefix(e, "dnas: %s", sn->slots[s].path);
      return rc;
    }
    if (graph_latency(rx->t) &&
        (rc = slot_latency(sn, rx->t, s, d, scratch, &tb->cost[k * NAS_COST_COUNT + NAS_COST_LATENCY],
                           &tb->cost[k * NAS_COST_COUNT + NAS_COST_FLASH], e)))
      return rc;
  }
  return NAS_OK;
}

int nas_dnas_relax_build(const nas_supernet *sn, const nas_target *t, nas_dnas_relax **out,
                         nas_err *e) {
  *out = NULL;
  nas_dnas_relax *rx = nas_calloc(1, sizeof *rx);
  if (!rx) return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  rx->sn = sn, rx->t = t;
  rx->off = nas_malloc(sizeof(int) * (size_t)(sn->n_dec ? sn->n_dec : 1));
  rx->tab = nas_calloc((size_t)sn->n_slots, sizeof *rx->tab);
  int *d = nas_calloc((size_t)(sn->n_dec ? sn->n_dec : 1), sizeof(int));
  nas_sn_layer *base = nas_malloc(sizeof *base * (size_t)sn->n_slots);
  nas_sn_layer *scratch = nas_malloc(sizeof *scratch * (size_t)sn->n_slots);
  int rc = rx->off && rx->tab && d && base && scratch ? NAS_OK
                                                       : nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  for (int i = 0; rc == NAS_OK && i < sn->n_dec; i++) rx->off[i] = rx->n_p, rx->n_p += sn->dec[i].card;
  if (rc == NAS_OK) rc = nas_sn_resolve(sn, d, base, e);
  for (int s = 0; rc == NAS_OK && s < sn->n_slots; s++) rc = build_table(rx, s, base, d, scratch, e);
  /* the constant part: exact model minus the slot sum, at the all-zero decision vector */
  char *arch = NULL;
  nas_price *p = NULL;
  if (rc == NAS_OK) {
    memset(d, 0, sizeof(int) * (size_t)(sn->n_dec ? sn->n_dec : 1));
    rc = nas_space_materialize(sn->space, d, &arch, e);
  }
  if (rc == NAS_OK) rc = nas_price_arch(arch, "supernet", t, &p, e);
  if (rc == NAS_OK) {
    double *y = nas_calloc((size_t)rx->n_p, sizeof(double));
    if (!y) rc = nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
    else {
      nas_dnas_onehot(rx, d, y);
      for (int m = 0; m < NAS_COST_COUNT; m++) rx->offset[m] = 0;
      nas_cost E;
      nas_dnas_expected(rx, y, &E, NULL);
      rx->offset[NAS_COST_MACS] = (double)p->macs - E.v[NAS_COST_MACS];
      rx->offset[NAS_COST_FLASH] = (double)p->flash_bytes - E.v[NAS_COST_FLASH];
      /* SRAM: the relaxed figure is a working-set bound of the planner's arena (see dnas.h);
         its constant is the runtime's share only */
      rx->offset[NAS_COST_SRAM] = (double)t->rt_sram;
      rx->offset[NAS_COST_LATENCY] = p->latency_ms - E.v[NAS_COST_LATENCY];
      free(y);
    }
  }
  nas_price_free(p);
  free(arch);
  free(d), free(base), free(scratch);
  if (rc != NAS_OK) {
    nas_dnas_relax_free(rx);
    return rc;
  }
  *out = rx;
  return NAS_OK;
}

/* ---- probabilities ----------------------------------------------------------------------- */

void nas_dnas_probs(const nas_dnas_relax *rx, const double *alpha, double T, const double *gumbel,
                    double *y) {
  for (int i = 0; i < rx->sn->n_dec; i++) {
    int o = rx->off[i], n = rx->sn->dec[i].card;
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < n; v++) {
      y[o + v] = (alpha[o + v] + (gumbel ? gumbel[o + v] : 0)) / T;
      if (y[o + v] > mx) mx = y[o + v];
    }
    for (int v = 0; v < n; v++) z += (y[o + v] = exp(y[o + v] - mx));
    for (int v = 0; v < n; v++) y[o + v] /= z;
  }
}

void nas_dnas_chain(const nas_dnas_relax *rx, const double *y, const double *dy, double T,
                    double *dalpha) {
  for (int i = 0; i < rx->sn->n_dec; i++) {
    int o = rx->off[i], n = rx->sn->dec[i].card;
    double s = 0;
    for (int v = 0; v < n; v++) s += y[o + v] * dy[o + v];
    for (int v = 0; v < n; v++) dalpha[o + v] = y[o + v] * (dy[o + v] - s) / T;
  }
}

void nas_dnas_onehot(const nas_dnas_relax *rx, const int *d, double *y) {
  memset(y, 0, sizeof(double) * (size_t)rx->n_p);
  for (int i = 0; i < rx->sn->n_dec; i++) y[rx->off[i] + d[i]] = 1;
}

void nas_dnas_argmax(const nas_dnas_relax *rx, const double *alpha, int *d) {
  for (int i = 0; i < rx->sn->n_dec; i++) {
    int o = rx->off[i], best = 0;
    for (int v = 1; v < rx->sn->dec[i].card; v++)
      if (alpha[o + v] > alpha[o + best]) best = v;
    d[i] = best;
  }
}

/* ---- expected costs ---------------------------------------------------------------------- */

/* Weight of combination k of table tb under y, and (when loo is not NULL) the leave-one-out
 * products loo[i] = prod_{j != i} y_j. */
static double combo_weight(const nas_dnas_relax *rx, const nas_dnas_table *tb, int k, const double *y,
                           double *loo) {
  double pre[NAS_DNAS_MAX_REL + 1], f[NAS_DNAS_MAX_REL];
  pre[0] = 1;
  for (int i = 0; i < tb->n_rel; i++) {
    f[i] = y[rx->off[tb->rel[i]] + tb->vals[k * tb->n_rel + i]];
    pre[i + 1] = pre[i] * f[i];
  }
  if (loo) {
    double suf = 1;
    for (int i = tb->n_rel - 1; i >= 0; i--) {
      loo[i] = pre[i] * suf;
      suf *= f[i];
    }
  }
  return pre[tb->n_rel];
}

void nas_dnas_expected(const nas_dnas_relax *rx, const double *y, nas_cost *E, double *grad) {
  const nas_supernet *sn = rx->sn;
  for (int m = 0; m < NAS_COST_COUNT; m++) E->v[m] = rx->offset[m];
  if (grad) memset(grad, 0, sizeof(double) * NAS_COST_COUNT * (size_t)rx->n_p);
  double best_sram = 0;
  int best_slot = -1;
  double loo[NAS_DNAS_MAX_REL];
  for (int s = 0; s < sn->n_slots; s++) {
    const nas_dnas_table *tb = &rx->tab[s];
    double sram = 0;
    for (int k = 0; k < tb->n; k++) {
      const double *c = &tb->cost[k * NAS_COST_COUNT];
      if (!tb->L[k].present) continue;
      double w = combo_weight(rx, tb, k, y, grad ? loo : NULL);
      for (int m = 0; m < NAS_COST_COUNT; m++)
        if (m != NAS_COST_SRAM) E->v[m] += w * c[m];
      sram += w * c[NAS_COST_SRAM];
      if (grad)
        for (int i = 0; i < tb->n_rel; i++) {
          int j = rx->off[tb->rel[i]] + tb->vals[k * tb->n_rel + i];
          for (int m = 0; m < NAS_COST_COUNT; m++)
            if (m != NAS_COST_SRAM) grad[m * rx->n_p + j] += loo[i] * c[m];
        }
    }
    if (best_slot < 0 || sram > best_sram) best_sram = sram, best_slot = s;
  }
  E->v[NAS_COST_SRAM] += best_sram;
  if (grad && best_slot >= 0) { /* the max's (sub)gradient: that of the binding slot */
    const nas_dnas_table *tb = &rx->tab[best_slot];
    for (int k = 0; k < tb->n; k++) {
      if (!tb->L[k].present) continue;
      combo_weight(rx, tb, k, y, loo);
      for (int i = 0; i < tb->n_rel; i++)
        grad[NAS_COST_SRAM * rx->n_p + rx->off[tb->rel[i]] + tb->vals[k * tb->n_rel + i]] +=
            loo[i] * tb->cost[k * NAS_COST_COUNT + NAS_COST_SRAM];
    }
  }
}

double nas_dnas_cost_loss(const nas_dnas_relax *rx, const double *y, const double w[NAS_COST_COUNT],
                          const double ref[NAS_COST_COUNT], const double budget[NAS_COST_COUNT],
                          double hinge, nas_cost *E, double *dy) {
  double *grad = dy ? nas_malloc(sizeof(double) * NAS_COST_COUNT * (size_t)rx->n_p) : NULL;
  if (dy && !grad) return NAN;
  nas_cost Ev;
  nas_dnas_expected(rx, y, &Ev, grad);
  if (E) *E = Ev;
  double L = 0;
  for (int m = 0; m < NAS_COST_COUNT; m++) {
    double coef = ref[m] > 0 ? w[m] / ref[m] : 0;
    L += coef * Ev.v[m];
    if (budget[m] > 0 && Ev.v[m] > budget[m]) {
      L += hinge * (Ev.v[m] / budget[m] - 1);
      coef += hinge / budget[m];
    }
    if (grad && coef != 0)
      for (int j = 0; j < rx->n_p; j++) dy[j] += coef * grad[m * rx->n_p + j];
  }
  free(grad);
  return L;
}
