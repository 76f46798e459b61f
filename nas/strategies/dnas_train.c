/* nas/strategies/dnas_train.c: the DNAS loop (dnas.h): per sweep point, alternating supernet
 * training with per-epoch checkpoints and "dnas_epoch" events (the architecture-parameter
 * history), then extraction, exact-cost check and greedy repair, and the candidate's
 * retraining from scratch, int8 evaluation and storage. The checkpoint format is in
 * nas/strategies/dnas_ckpt.c. Never prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "core/alloc.h"
#include "nas/artifacts.h"
#include "nas/candidate.h"
#include "nas/strategies/dnas_impl.h"
#include "train/ops.h"
#include "train/optim.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}


static int stopping(const dnas_ctx *c) { return c->hooks && c->hooks->stop && *c->hooks->stop; }

static void report(dnas_ctx *c, int k, int64_t cand, const char *state, const char *reason,
                   const nas_metrics *m) {
  if (!c->hooks || !c->hooks->progress) return;
  nas_search_progress p = {.k = k + 1, .budget = c->n_points, .run_id = c->run_id, .cand_id = cand,
                           .state = state, .reason = reason, .acc_int8 = NAN, .acc_float = NAN,
                           .latency_ms = NAN, .peak_sram = NAN, .flash = NAN, .macs = NAN,
                           .train_seconds = NAN, .best_acc = NAN};
  if (m) {
    p.acc_int8 = m->acc_int8_test, p.acc_float = m->acc_float_test, p.latency_ms = m->latency_pred_ms;
    p.peak_sram = m->peak_sram_bytes, p.flash = m->flash_bytes, p.macs = m->macs;
    p.train_seconds = m->train_seconds;
  }
  c->hooks->progress(&p, c->hooks->user);
}

/* ---- supernet training ------------------------------------------------------------------- */

static cJSON *num_array(const double *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
  return a;
}

static void gumbel(nas_rng *r, double *g, int n) {
  for (int i = 0; i < n; i++) {
    double u = ((double)nas_rng_uniform(r) + 0.5 / 16777216.0); /* in (0, 1) */
    g[i] = -log(-log(u));
  }
}

static int epoch_event(dnas_ctx *c, int k, const dnas_sn_state *s, double T, double loss, double val_acc,
                       const double *y, const nas_cost *E, nas_err *e) {
  const nas_supernet *sn = c->sn;
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "point", k);
  cJSON_AddNumberToObject(j, "epoch", s->epoch);
  cJSON_AddNumberToObject(j, "temperature", T);
  cJSON_AddNumberToObject(j, "train_loss", loss);
  cJSON_AddNumberToObject(j, "argmax_val_acc", val_acc);
  cJSON_AddNumberToObject(j, "samples", (double)s->samples);
  cJSON_AddNumberToObject(j, "seconds", s->seconds);
  cJSON *ex = cJSON_AddObjectToObject(j, "expected");
  cJSON_AddNumberToObject(ex, "macs", E->v[NAS_COST_MACS]);
  cJSON_AddNumberToObject(ex, "flash_bytes", E->v[NAS_COST_FLASH]);
  cJSON_AddNumberToObject(ex, "peak_sram_bytes", E->v[NAS_COST_SRAM]);
  cJSON_AddNumberToObject(ex, "latency_ms", E->v[NAS_COST_LATENCY]);
  cJSON *al = cJSON_AddObjectToObject(j, "alpha"), *pr = cJSON_AddObjectToObject(j, "probs");
  for (int i = 0; i < sn->n_dec; i++) {
    cJSON_AddItemToObject(al, sn->dec[i].path, num_array(s->alpha + c->rx->off[i], sn->dec[i].card));
    cJSON_AddItemToObject(pr, sn->dec[i].path, num_array(y + c->rx->off[i], sn->dec[i].card));
  }
  char *t = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  /* The event is written before the epoch's checkpoint: a process killed in between trains
     the epoch again on resume and comes here again. The run's last dnas_epoch event is then
     this one (same point and epoch): it is not written twice. */
  char *last = NULL;
  int rc = t ? nas_store_event_last(c->st, c->run_id, "dnas_epoch", &last, e)
             : nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  cJSON *lj = last ? cJSON_Parse(last) : NULL;
  int again = lj && nas_config_num(lj, "point", -1) == k && nas_config_num(lj, "epoch", -1) == s->epoch;
  cJSON_Delete(lj);
  free(last);
  if (rc == NAS_OK && !again) rc = nas_store_event_add(c->st, c->run_id, 0, "dnas_epoch", t, NULL, e);
  cJSON_free(t);
  return rc;
}

/* Validation accuracy of the argmax network inside the supernet (one-hot gates) on at most
 * 2048 samples. The supernet's BN running statistics were gathered under mixed gates, so
 * they are first recalibrated for the argmax network (cumulative average over RECAL training
 * batches, as one-shot NAS does) and restored afterwards: training is unaffected. */
#define RECAL 8
static int argmax_acc(dnas_ctx *c, nas_dnas_net *dn, const double *alpha, const int *perm,
                      double *y, double *acc, nas_err *e) {
  nas_net *net = dn->net;
  nas_graph *g = net->g;
  int *d = nas_malloc(sizeof(int) * (size_t)(c->sn->n_dec ? c->sn->n_dec : 1));
  size_t total = 0;
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_OP && g->nodes[i].op == NAS_OP_BATCHNORM)
      total += 2 * nas_shape_numel(&g->nodes[g->nodes[i].in[3]].shape);
  float *keep = nas_malloc(sizeof(float) * (total ? total : 1));
  if (!d || !keep) {
    free(d), free(keep);
    return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  }
  nas_dnas_argmax(c->rx, alpha, d);
  nas_dnas_onehot(c->rx, d, y);
  nas_dnas_net_set_gates(dn, y);
  size_t o = 0;
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    if (nd->kind != NAS_NODE_OP || nd->op != NAS_OP_BATCHNORM) continue;
    for (int j = 3; j < 5; j++) {
      const nas_node *st = &g->nodes[nd->in[j]];
      size_t n = nas_shape_numel(&st->shape);
      memcpy(keep + o, st->val, n * sizeof(float)), o += n;
    }
  }
  float *mom = nas_malloc(sizeof(float) * (size_t)g->n);
  int B = g->max_batch, rc = mom ? NAS_OK : nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  for (int i = 0; rc == NAS_OK && i < g->n; i++) mom[i] = g->nodes[i].p.momentum;
  g->training = 1;
  const int ntr = nas_dataset_head(&c->d->train, c->cfg.sn_limit).n; /* perm's length */
  for (int b = 0; rc == NAS_OK && b < RECAL && b * B < ntr; b++) {
    int n = ntr - b * B < B ? ntr - b * B : B;
    for (int i = 0; i < g->n; i++)
      if (g->nodes[i].kind == NAS_NODE_OP && g->nodes[i].op == NAS_OP_BATCHNORM)
        g->nodes[i].p.momentum = 1.0f / (float)(b + 1);
    nas_data_batch(&c->d->train, perm + b * B, n, g->nodes[net->input].val, g->nodes[net->labels].val,
                   NULL, NULL);
    nas_graph_forward(g, n, net->logits);
  }
  nas_dataset vsub = c->d->val;
  if (vsub.n > 2048) vsub.n = 2048;
  if (rc == NAS_OK) rc = nas_evaluate(net, &vsub, acc, NULL, e);
  o = 0;
  for (int i = 0; mom && i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    nd->p.momentum = mom[i];
    if (nd->kind != NAS_NODE_OP || nd->op != NAS_OP_BATCHNORM) continue;
    for (int j = 3; j < 5; j++) {
      nas_node *st = &g->nodes[nd->in[j]];
      size_t n = nas_shape_numel(&st->shape);
      memcpy(st->val, keep + o, n * sizeof(float)), o += n;
    }
  }
  free(d), free(keep), free(mom);
  return rc;
}

/* Trains point k's supernet to its last epoch (resuming from its checkpoint). */
static int train_supernet(dnas_ctx *c, int k, const double *w, dnas_sn_state *s, int *stopped, nas_err *e) {
  const nas_dnas_cfg *cf = &c->cfg;
  const nas_search_cfg *g = &cf->base;
  int n_p = c->rx->n_p, B = g->batch;
  uint64_t seed = nas_seed_mix(g->seed, (uint64_t)k, 0xD1A5ull);
  nas_dnas_net *dn = NULL;
  int rc = nas_dnas_net_build(c->rx, B, seed, &dn, e);
  if (rc != NAS_OK) return rc;
  nas_net *net = dn->net;
  nas_graph *gr = net->g;
  nas_optim_cfg oc;
  nas_optim_cfg_default(&oc, NAS_SGD);
  oc.weight_decay = 4e-5f;
  nas_optim *opt = nas_optim_new(gr, &oc, e);
  /* continue from the point's last epoch, else (later points) from the shared warm-up; the
     checkpoint restores weights, BN statistics, momentum, logits and their Adam moments */
  int lr_ = opt ? dnas_ckpt_load(c, k, dn, opt, s, e) : -1;
  if (lr_ == 0 && k > 0 && cf->warmup > 0) {
    lr_ = dnas_ckpt_load(c, -1, dn, opt, s, e);
    if (lr_ > 0) s->samples = 0, s->seconds = 0; /* the shared warm-up is counted in point 0 */
  }
  if (lr_ < 0 || s->epoch >= cf->sn_epochs) {
    nas_optim_free(opt);
    nas_dnas_net_free(dn);
    return lr_ < 0 ? e->code : NAS_OK;
  }
  /* the supernet's training set: the first sn_limit samples of the train split (all: 0) */
  const nas_dataset tr = nas_dataset_head(&c->d->train, cf->sn_limit);
  int *perm = nas_malloc(sizeof(int) * (size_t)tr.n), *vperm = nas_malloc(sizeof(int) * (size_t)c->d->val.n);
  double *y = nas_malloc(sizeof(double) * (size_t)n_p), *dy = nas_malloc(sizeof(double) * (size_t)n_p);
  double *da = nas_malloc(sizeof(double) * (size_t)n_p), *gn = nas_malloc(sizeof(double) * (size_t)n_p);
  if (!opt || !perm || !vperm || !y || !dy || !da || !gn)
    rc = e->code ? e->code : nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  long spe = (tr.n + B - 1) / B;
  nas_sched sched = {.kind = NAS_SCHED_COSINE, .base_lr = (float)cf->lr,
                     .total_steps = spe * cf->sn_epochs};
  int E = cf->sn_epochs;
  const double b1 = 0.5, b2 = 0.999, eps = 1e-8;
  for (int ep = s->epoch; rc == NAS_OK && ep < E && !*stopped; ep++) {
    double t_ep = now_s(), T = cf->t0 * pow(cf->t1 / cf->t0, E > 1 ? (double)ep / (E - 1) : 1.0);
    nas_rng rng;
    nas_rng_seed(&rng, nas_seed_mix(seed, (uint64_t)ep, 0xE90Cull));
    nas_rng_seed(&gr->rng, nas_seed_mix(seed, (uint64_t)ep, 0xD0ull));
    nas_data_shuffle(&tr, perm, &rng);
    nas_data_shuffle(&c->d->val, vperm, &rng);
    int arch = ep >= cf->warmup, vi = 0;
    double loss_sum = 0;
    long seen = 0;
    for (long st = 0; st < spe && rc == NAS_OK; st++) {
      if (stopping(c)) {
        *stopped = 1;
        break;
      }
      int off = (int)(st * B), n = tr.n - off < B ? tr.n - off : B;
      gr->training = 1;
      if (cf->sampling == NAS_DNAS_GUMBEL) gumbel(&rng, gn, n_p);
      nas_dnas_probs(c->rx, s->alpha, T, cf->sampling == NAS_DNAS_GUMBEL ? gn : NULL, y);
      nas_dnas_net_set_gates(dn, y);
      nas_data_batch(&tr, perm + off, n, gr->nodes[net->input].val, gr->nodes[net->labels].val,
                     NULL, NULL);
      nas_graph_forward(gr, n, net->loss);
      float loss = gr->nodes[net->loss].val[0];
      if (!isfinite(loss)) {
        rc = nas_errf(e, NAS_ENUMERIC, "supernet diverged: loss is %s at epoch %d step %ld",
                      isnan(loss) ? "NaN" : "Inf", ep + 1, st + 1);
        break;
      }
      nas_graph_backward(gr, net->loss);
      nas_optim_step(opt, gr, nas_sched_lr(&sched, ep * spe + st));
      loss_sum += (double)loss * n, seen += n, s->samples += n;
      if (!arch || (st + 1) % cf->arch_every) continue;
      /* architecture step on a validation batch (after every arch_every-th weight step) */
      int vn = c->d->val.n - vi < B ? c->d->val.n - vi : B;
      if (cf->sampling == NAS_DNAS_GUMBEL) gumbel(&rng, gn, n_p);
      nas_dnas_probs(c->rx, s->alpha, T, cf->sampling == NAS_DNAS_GUMBEL ? gn : NULL, y);
      nas_dnas_net_set_gates(dn, y);
      nas_data_batch(&c->d->val, vperm + vi, vn, gr->nodes[net->input].val, gr->nodes[net->labels].val,
                     NULL, NULL);
      vi = vi + vn >= c->d->val.n ? 0 : vi + vn;
      nas_graph_forward(gr, vn, net->loss);
      nas_graph_backward(gr, net->loss);
      memset(dy, 0, sizeof(double) * (size_t)n_p);
      nas_dnas_net_gate_grad(dn, y, dy);
      if (isnan(nas_dnas_cost_loss(c->rx, y, w, c->ref, c->budget, cf->hinge, NULL, dy))) {
        rc = nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
        break;
      }
      nas_dnas_chain(c->rx, y, dy, T, da);
      s->astep++;
      double bc1 = 1 - pow(b1, (double)s->astep), bc2 = 1 - pow(b2, (double)s->astep);
      for (int i = 0; i < n_p; i++) {
        if (!isfinite(da[i])) continue;
        s->m[i] = b1 * s->m[i] + (1 - b1) * da[i];
        s->v[i] = b2 * s->v[i] + (1 - b2) * da[i] * da[i];
        s->alpha[i] -= cf->arch_lr * (s->m[i] / bc1) / (sqrt(s->v[i] / bc2) + eps);
      }
      s->samples += vn;
    }
    s->seconds += now_s() - t_ep;
    if (rc != NAS_OK || *stopped) break;
    s->epoch = ep + 1;
    double vacc = NAN;
    rc = argmax_acc(c, dn, s->alpha, perm, y, &vacc, e);
    nas_cost Ec;
    nas_dnas_probs(c->rx, s->alpha, T, NULL, y);
    nas_dnas_expected(c->rx, y, &Ec, NULL);
    if (rc == NAS_OK) rc = epoch_event(c, k, s, T, seen ? loss_sum / seen : NAN, vacc, y, &Ec, e);
    /* the shared warm-up first: killed between the two, point 0 redoes this epoch and
       writes both again (else later points would find no warm-up to start from) */
    if (rc == NAS_OK && k == 0 && s->epoch == cf->warmup && c->n_points > 1)
      rc = dnas_ckpt_save(c, -1, dn, opt, s, e);
    if (rc == NAS_OK) rc = dnas_ckpt_save(c, k, dn, opt, s, e);
    if (rc == NAS_OK && c->hooks && c->hooks->progress) {
      char msg[256];
      snprintf(msg, sizeof msg, "supernet epoch %d/%d%s  T %.3f  loss %.4f  argmax val acc %.4f  "
               "E[sram] %.0f B  E[flash] %.0f B  E[macs] %.0f", s->epoch, E, arch ? "" : " (warm-up)",
               T, seen ? loss_sum / seen : NAN, vacc, Ec.v[NAS_COST_SRAM], Ec.v[NAS_COST_FLASH],
               Ec.v[NAS_COST_MACS]);
      report(c, k, 0, "supernet", msg, NULL);
    }
  }
  nas_optim_free(opt);
  free(perm), free(vperm), free(y), free(dy), free(da), free(gn);
  nas_dnas_net_free(dn);
  return rc;
}

/* ---- extraction -------------------------------------------------------------------------- */

static double violation(const dnas_ctx *c, const nas_price *p) {
  double v = 0, x[NAS_COST_COUNT] = {(double)p->macs, (double)p->flash_bytes,
                                     (double)p->peak_sram_bytes, p->latency_ms};
  for (int m = 0; m < NAS_COST_COUNT; m++)
    if (c->budget[m] > 0 && x[m] > c->budget[m]) v += x[m] / c->budget[m] - 1;
  return v;
}

static int price_d(const dnas_ctx *c, const int *d, char **arch, nas_price **p, nas_err *e) {
  *arch = NULL, *p = NULL;
  int rc = nas_space_materialize(c->sn->space, d, arch, e);
  if (rc == NAS_OK) rc = nas_price_arch(*arch, "extracted", c->t, p, e);
  if (rc != NAS_OK) free(*arch), *arch = NULL;
  return rc;
}

/* The argmax architecture; when it is over budget by the exact model, single-decision changes
 * are applied greedily (largest reduction of the summed relative excess, ties to the larger
 * logit) until it fits or no change helps. *repaired counts the changes. */
static int extract(dnas_ctx *c, const double *alpha, char **arch, int *repaired, nas_err *e) {
  const nas_supernet *sn = c->sn;
  int nd = sn->n_dec ? sn->n_dec : 1;
  int *d = nas_malloc(sizeof(int) * (size_t)nd);
  if (!d) return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  nas_dnas_argmax(c->rx, alpha, d);
  nas_price *p = NULL;
  *repaired = 0;
  int rc = price_d(c, d, arch, &p, e);
  double cur = rc == NAS_OK ? violation(c, p) : 0;
  nas_price_free(p);
  for (int it = 0; rc == NAS_OK && cur > 0 && it < 64; it++) {
    int bi = -1, bv = -1;
    double best = cur, bal = -INFINITY;
    for (int i = 0; i < sn->n_dec; i++)
      for (int v = 0; v < sn->dec[i].card; v++) {
        if (v == d[i]) continue;
        int keep = d[i];
        d[i] = v;
        char *a2 = NULL;
        nas_price *p2 = NULL;
        nas_err ce = {0};
        if (price_d(c, d, &a2, &p2, &ce) == NAS_OK) {
          double x = violation(c, p2), al = alpha[c->rx->off[i] + v];
          if (x < best - 1e-12 || (x <= best + 1e-12 && bi >= 0 && x < cur && al > bal))
            best = x, bi = i, bv = v, bal = al;
        }
        nas_price_free(p2), free(a2);
        d[i] = keep;
      }
    if (bi < 0) break;
    d[bi] = bv, cur = best, (*repaired)++;
  }
  if (rc == NAS_OK && *repaired) {
    free(*arch);
    rc = price_d(c, d, arch, &p, e);
    nas_price_free(p);
  }
  free(d);
  return rc;
}

/* The candidate step's progress: the DNAS progress line of point k's candidate. */
typedef struct step_user {
  dnas_ctx *c;
  int k;
  int64_t cand;
} step_user;

static void step_report(void *user, const char *state, const char *reason, const nas_metrics *m) {
  step_user *u = user;
  int priced = strcmp(state, "rejected") || m->macs > 0; /* an invalid arch has no costs */
  report(u->c, u->k, u->cand, state, reason, priced ? m : NULL);
}

/* Candidate cand of point k through the candidate step (nas/candidate.h): priced, checked,
 * trained from scratch, quantised, evaluated and stored exactly as the search core does for
 * its candidates. *stopped when a stop request left it proposed. */
static int process(dnas_ctx *c, int k, int64_t cand, const char *arch, int *stopped, nas_err *e) {
  const nas_search_cfg *g = &c->cfg.base;
  nas_candidate_cfg cc;
  nas_run_candidate_cfg(c->run, g->epochs, g->eval_limit, nas_seed_mix(g->seed, (uint64_t)k, 0x7EA1ull), &cc);
  step_user u = {c, k, cand};
  nas_candidate_hooks h = {step_report, &u, c->hooks ? c->hooks->stop : NULL};
  nas_candidate_outcome o;
  int rc = nas_candidate_step(c->st, c->run_id, cand, arch, &cc, &h, &o, e);
  if (rc == NAS_OK && !strcmp(o.state, "proposed")) *stopped = 1;
  return rc;
}

/* One sweep point: supernet, extraction, candidate. *stopped on a stop request. */
static int point(dnas_ctx *c, int k, int *stopped, nas_err *e) {
  const nas_dnas_cfg *cf = &c->cfg;
  int n_p = c->rx->n_p;
  double w[NAS_COST_COUNT];
  for (int m = 0; m < NAS_COST_COUNT; m++) w[m] = cf->w[m] * (cf->n_sweep ? cf->sweep[k] : 1);
  dnas_sn_state s = {0};
  s.alpha = nas_calloc((size_t)n_p, sizeof(double));
  s.m = nas_calloc((size_t)n_p, sizeof(double));
  s.v = nas_calloc((size_t)n_p, sizeof(double));
  int rc = s.alpha && s.m && s.v ? NAS_OK : nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  if (rc == NAS_OK) rc = train_supernet(c, k, w, &s, stopped, e);
  char *arch = NULL, hash[17];
  int repaired = 0, existed = 0, own = 0;
  int64_t cand = 0;
  if (rc == NAS_OK && !*stopped) rc = extract(c, s.alpha, &arch, &repaired, e);
  if (rc == NAS_OK && arch) rc = nas_arch_hash_hex(arch, hash, e);
  if (rc == NAS_OK && arch)
    rc = nas_store_candidate_add(c->st, c->run_id, arch, hash, 0, k, &cand, &existed, e);
  int fresh = !existed;
  if (rc == NAS_OK && arch && existed) { /* resumed after a crash, or a duplicate of a point */
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    if ((rc = nas_store_candidate_get(c->st, cand, &row, e)) == NAS_OK) {
      if (!strcmp(row.state, "training")) rc = nas_store_candidate_set_state(c->st, cand, "proposed", NULL, e);
      fresh = !strcmp(row.state, "training") || !strcmp(row.state, "proposed");
      own = row.generation == k; /* this point's own candidate, stored before a crash */
    }
    nas_store_candidate_row_free(&row);
  }
  if (rc == NAS_OK && arch && fresh) {
    report(c, k, cand, "proposed", NULL, NULL);
    if (stopping(c)) *stopped = 1;
    else rc = process(c, k, cand, arch, stopped, e);
  }
  if (rc == NAS_OK && arch && !*stopped) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "point", k);
    cJSON_AddNumberToObject(j, "candidate", (double)cand);
    cJSON_AddBoolToObject(j, "duplicate", existed && !fresh && !own);
    cJSON_AddNumberToObject(j, "repaired_decisions", repaired);
    cJSON_AddNumberToObject(j, "supernet_samples", (double)s.samples);
    cJSON_AddNumberToObject(j, "supernet_seconds", s.seconds);
    cJSON *wj = cJSON_AddObjectToObject(j, "cost_weights");
    static const char *const NM[] = {"macs", "flash", "sram", "latency"};
    _Static_assert(sizeof NM / sizeof NM[0] == NAS_COST_COUNT, "cost names");
    for (int m = 0; m < NAS_COST_COUNT; m++) cJSON_AddNumberToObject(wj, NM[m], w[m]);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    rc = t ? nas_store_event_add(c->st, c->run_id, cand, "dnas_point", t, NULL, e)
           : nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
    cJSON_free(t);
  }
  free(arch);
  free(s.alpha), free(s.m), free(s.v);
  return rc;
}

int dnas_points(dnas_ctx *c, int *stopped, nas_err *e) {
  int done = 0;
  int rc = nas_store_event_count(c->st, c->run_id, "dnas_point", &done, e);
  for (int k = done; rc == NAS_OK && k < c->n_points && !*stopped; k++) {
    if (stopping(c)) {
      *stopped = 1;
      break;
    }
    rc = point(c, k, stopped, e);
  }
  return rc;
}
