/* nas/search_train.c: the steps every strategy's candidate goes through (nas/search.h):
 * pricing and the hard-budget check before any training, then training from scratch,
 * quantising, scoring float and int8, storing metrics + weights + the done transition in one
 * transaction; and the retraining of the run's Pareto front after the budget. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploy/lower.h"
#include "core/alloc.h"
#include "latency/cost.h"
#include "nas/artifacts.h"
#include "nas/search_impl.h"
#include "train/net.h"
#include "train/quant.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int search_train_store(ctx *c, hist *x, const char *arch, int epochs, int eval_limit,
                       uint64_t seed, char reason[600], nas_err *e) {
  const nas_search_cfg *g = &c->cfg;
  nas_err ce = {0};
  reason[0] = 0;
  nas_train_cfg tc;
  nas_train_cfg_default(&tc, 0);
  tc.epochs = epochs, tc.batch = g->batch, tc.seed = seed;
  /* the trainer sees no validation/test split, so its train_seconds is training steps only;
   * scoring below counts as time outside training */
  nas_data td = c->d;
  td.val.n = 0, td.test.n = 0;
  nas_dataset val = nas_dataset_head(&c->d.val, eval_limit);
  nas_dataset test = nas_dataset_head(&c->d.test, eval_limit);
  nas_train_result tr;
  memset(&tr, 0, sizeof tr);
  nas_calib cal;
  memset(&cal, 0, sizeof cal);
  nas_g8_graph g8;
  memset(&g8, 0, sizeof g8);
  nas_net *net = NULL;
  double fv = NAN, ft = NAN, v8 = NAN, t8 = NAN;
  const char *what = "training";
  double t[6] = {now_s()}; /* phase boundaries: build+train, float eval, int8, pack, store */
  double t_cal = 0, t_low = 0; /* inside the int8 phase: calibration, lowering */
  int crc = nas_net_build(arch, "candidate", g->batch, seed, &net, &ce);
  if (crc == NAS_OK) crc = nas_train(net, &td, &tc, &tr, &ce);
  t[1] = now_s();
  if (crc == NAS_OK) {
    what = "evaluation";
    if (val.n > 0) crc = nas_evaluate(net, &val, &fv, NULL, &ce);
    if (crc == NAS_OK && test.n > 0) crc = nas_evaluate(net, &test, &ft, NULL, &ce);
  }
  t[2] = now_s();
  if (crc == NAS_OK) {
    what = "int8";
    nas_calib_cfg cc;
    nas_calib_cfg_default(&cc);
    if (g->calib_samples > 0) cc.samples = g->calib_samples;
    crc = nas_calibrate(net, &c->d.train, &cc, &cal, &ce);
    t_cal = now_s();
    if (crc == NAS_OK) crc = nas_lower(net, &cal, NULL, &g8, &ce);
    t_low = now_s();
    if (crc == NAS_OK && val.n > 0) crc = nas_g8_accuracy(&g8, &val, 0, &v8, &ce);
    if (crc == NAS_OK) crc = nas_g8_accuracy(&g8, &test, 0, &t8, &ce);
  }
  t[3] = now_s();
  uint8_t *fb = NULL, *qb = NULL;
  size_t fl = 0, ql = 0;
  if (crc == NAS_OK) {
    what = "storing weights";
    char name[32];
    snprintf(name, sizeof name, "cand%lld", (long long)x->id);
    nas_cand_info info = {.dataset = g->dataset, .train_limit = g->train_limit,
                          .eval_limit = eval_limit, .epochs = epochs, .seed = seed,
                          .norm_mean = c->d.mean, .norm_std = c->d.std, .float_test_acc = ft};
    crc = nas_cand_pack(net, &info, &cal, &g8, name, &fb, &fl, &qb, &ql, &ce);
  }
  nas_g8_graph_free(&g8);
  nas_calib_free(&cal);
  nas_net_free(net);
  t[4] = now_s();
  int rc;
  if (crc == NAS_ENOMEM) {
    rc = nas_errf(e, NAS_ENOMEM, "candidate %lld: %s", (long long)x->id, ce.msg);
  } else if (crc != NAS_OK) {
    snprintf(reason, 600, "%s: %s", crc == NAS_ENUMERIC ? "diverged" : what, ce.msg);
    rc = nas_store_candidate_finish(c->st, x->id, "failed", reason, &x->m, NULL, 0, e);
    if (rc == NAS_OK) snprintf(x->state, sizeof x->state, "failed");
  } else {
    x->m.acc_float_val = fv, x->m.acc_float_test = ft;
    x->m.acc_int8_val = v8, x->m.acc_int8_test = t8;
    x->m.train_seconds = tr.train_seconds;
    nas_store_blob blobs[2] = {{"float", fb, fl}, {"int8", qb, ql}};
    rc = nas_store_candidate_finish(c->st, x->id, "done", NULL, &x->m, blobs, 2, e);
    if (rc == NAS_OK) snprintf(x->state, sizeof x->state, "done");
  }
  free(fb), free(qb);
  t[5] = now_s();
  if (rc == NAS_OK) { /* where the candidate's time went (bench/search100.sh sums these) */
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"train_s\":%.6f,\"build_train_s\":%.6f,\"eval_float_s\":%.6f,\"int8_s\":%.6f,"
             "\"calib_s\":%.6f,\"lower_s\":%.6f,\"pack_s\":%.6f,\"store_s\":%.6f}",
             tr.train_seconds, t[1] - t[0], t[2] - t[1], t[3] - t[2], t_cal - t[2], t_low - t_cal,
             t[4] - t[3], t[5] - t[4]);
    nas_err e2 = {0};
    nas_store_event_add(c->st, c->run_id, x->id, "timing", payload, NULL, &e2);
  }
  return rc;
}

/* Index in c->h of search candidate id, or -1. */
static int index_of(const ctx *c, int64_t id) {
  for (int i = 0; i < c->n; i++)
    if (c->h[i].id == id) return i;
  return -1;
}

int search_retrain_front(ctx *c, int *stopped, nas_err *e) {
  int E = c->cfg.retrain_epochs;
  if (E <= 0) return NAS_OK;
  nas_pareto_row *rows = NULL;
  int n = 0;
  int rc = nas_pareto_front(c->st, &c->obj, c->run_id, "retrain_epochs = 0", &rows, &n, e);
  for (int i = 0; rc == NAS_OK && i < n; i++) {
    int k = index_of(c, rows[i].id);
    if (k < 0) {
      rc = nas_errf(e, NAS_EFORMAT, "run %lld: front member %lld is not a search candidate",
                    (long long)c->run_id, (long long)rows[i].id);
      break;
    }
    int64_t id = 0;
    if ((rc = nas_store_candidate_add_retrain(c->st, rows[i].id, E, &id, NULL, e)) != NAS_OK) break;
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    if ((rc = nas_store_candidate_get(c->st, id, &r, e)) != NAS_OK) break;
    hist x;
    memset(&x, 0, sizeof x);
    x.id = id, x.m = r.m, x.generation = r.generation;
    snprintf(x.hash, sizeof x.hash, "%s", r.arch_hash);
    snprintf(x.state, sizeof x.state, "%s", r.state);
    if (!strcmp(r.state, "done") || !strcmp(r.state, "failed")) { /* final: never again */
      c->sum->retrained++;
      nas_store_candidate_row_free(&r);
      continue;
    }
    if (search_stopping(c)) {
      *stopped = 1;
      nas_store_candidate_row_free(&r);
      break;
    }
    if (!strcmp(r.state, "training")) /* killed mid-training: re-queue, train again */
      rc = nas_store_candidate_set_state(c->st, id, "proposed", NULL, e);
    if (rc == NAS_OK) rc = nas_store_candidate_set_state(c->st, id, "training", NULL, e);
    char reason[600];
    if (rc == NAS_OK) {
      snprintf(x.state, sizeof x.state, "training");
      search_report(c, i, n, &x, NULL, E);
      uint64_t seed = nas_seed_mix(c->cfg.seed, (uint64_t)k, 0x2E72A1ull);
      rc = search_train_store(c, &x, r.arch_json, E, 0, seed, reason, e);
    }
    if (rc == NAS_OK) {
      c->sum->retrained++;
      search_report(c, i, n, &x, reason[0] ? reason : NULL, E);
    }
    nas_store_candidate_row_free(&r);
  }
  free(rows);
  return rc;
}

int nas_search_train_candidate(nas_store *st, int64_t run_id, int64_t cand_id, const char *arch,
                               const nas_data *d, const nas_search_cfg *cfg, uint64_t seed,
                               nas_metrics *m, char reason[600], nas_err *e) {
  nas_search_summary sum;
  memset(&sum, 0, sizeof sum);
  ctx c; /* only what search_train_store reads; nothing here is owned */
  memset(&c, 0, sizeof c);
  c.cfg = *cfg;
  c.d = *d, c.st = st, c.run_id = run_id, c.sum = &sum;
  hist x;
  memset(&x, 0, sizeof x);
  x.id = cand_id, x.m = *m;
  snprintf(x.state, sizeof x.state, "training");
  int rc = search_train_store(&c, &x, arch, cfg->epochs, cfg->eval_limit, seed, reason, e);
  *m = x.m;
  return rc;
}

int nas_search_price_candidate(nas_store *st, int64_t cand_id, const char *arch,
                               const struct nas_target *t, const nas_search_cfg *g,
                               nas_metrics *m, char reason[600], nas_err *e) {
  nas_err ce = {0};
  nas_price *p = NULL;
  reason[0] = 0;
  if (nas_price_arch(arch, "candidate", t, &p, &ce) != NAS_OK) {
    snprintf(reason, 600, "invalid architecture: %s", ce.msg);
    return NAS_OK;
  }
  m->macs = (double)p->macs, m->params = (double)p->params;
  m->flash_bytes = (double)p->flash_bytes, m->peak_sram_bytes = (double)p->peak_sram_bytes;
  m->latency_pred_ms = p->latency_ms;
  nas_layer_cost *rows = nas_calloc((size_t)(p->n_layers ? p->n_layers : 1), sizeof *rows);
  if (!rows) {
    nas_price_free(p);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  for (int i = 0; i < p->n_layers; i++) {
    rows[i].layer = i;
    snprintf(rows[i].op, sizeof rows[i].op, "%s", p->layers[i].op);
    rows[i].macs = p->layers[i].macs, rows[i].params = p->layers[i].params;
    rows[i].flash_bytes = p->layers[i].flash_bytes, rows[i].sram_bytes = p->layers[i].sram_bytes;
    rows[i].latency_ms = p->layers[i].latency_ms;
  }
  int rc = nas_store_candidate_set_metrics(st, cand_id, m, e);
  if (rc == NAS_OK) rc = nas_store_layer_costs_put(st, cand_id, rows, p->n_layers, e);
  free(rows);
  if (g->max_sram && p->peak_sram_bytes > g->max_sram)
    snprintf(reason, 600, "peak SRAM %lld B > max %lld B", p->peak_sram_bytes, g->max_sram);
  else if (g->max_flash && p->flash_bytes > g->max_flash)
    snprintf(reason, 600, "flash %lld B > max %lld B", p->flash_bytes, g->max_flash);
  else if (g->max_macs && p->macs > g->max_macs)
    snprintf(reason, 600, "MACs %lld > max %lld", p->macs, g->max_macs);
  else if (g->max_latency_ms > 0 && p->latency_ms > g->max_latency_ms)
    snprintf(reason, 600, "latency %.3f ms > max %.3f ms", p->latency_ms, g->max_latency_ms);
  nas_price_free(p);
  return rc;
}
