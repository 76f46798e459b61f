/* nas/candidate.c: the one candidate step (see nas/candidate.h): pricing with the hard-budget
 * check, training from scratch, calibration and int8 lowering, float and int8 scoring, the
 * weight blobs, and the store writes (metrics + weights + the done transition in one
 * transaction). */
#include "nas/candidate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "deploy/lower.h"
#include "latency/cost.h"
#include "nas/artifacts.h"
#include "train/inherit.h"
#include "train/net.h"
#include "train/prune.h"
#include "train/quant.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- pricing ----------------------------------------------------------------------------- */

int nas_candidate_price_arch(const char *arch, const nas_candidate_cfg *c,
                             nas_candidate_price *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  nas_metrics_clear(&out->m);
  nas_err ce = {0};
  nas_price *p = NULL;
  /* A channel-pruned arch is priced at the widths it will have (a network of its own); any
   * other is priced on the network it will train, built once here (batch 1, c->seed). */
  char *priced = NULL;
  nas_net *net = NULL;
  int prc = nas_prune_expected_arch(arch, &priced, &ce);
  if (prc == NAS_OK && strcmp(priced, arch) != 0) {
    prc = nas_price_arch(priced, "candidate", c->target, &p, &ce);
  } else if (prc == NAS_OK) {
    prc = nas_net_build(arch, "candidate", 1, c->seed, &net, &ce);
    if (prc == NAS_OK) prc = nas_price_net(net, c->target, &p, &ce);
    if (prc == NAS_OK) out->net = net, net = NULL;
  }
  nas_net_free(net);
  free(priced);
  if (prc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "pricing: %s", ce.msg);
  if (prc != NAS_OK) {
    snprintf(out->reason, sizeof out->reason, "invalid architecture: %s", ce.msg);
    return NAS_OK;
  }
  out->valid = 1;
  nas_metrics *m = &out->m;
  m->macs = (double)p->macs, m->params = (double)p->params;
  m->flash_bytes = (double)p->flash_bytes, m->peak_sram_bytes = (double)p->peak_sram_bytes;
  m->latency_pred_ms = p->latency_ms;
  out->layers = nas_calloc((size_t)(p->n_layers ? p->n_layers : 1), sizeof *out->layers);
  if (!out->layers) {
    nas_price_free(p);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  out->n_layers = p->n_layers;
  for (int i = 0; i < p->n_layers; i++) {
    nas_layer_cost *r = &out->layers[i];
    r->layer = i;
    snprintf(r->op, sizeof r->op, "%s", p->layers[i].op);
    r->macs = p->layers[i].macs, r->params = p->layers[i].params;
    r->flash_bytes = p->layers[i].flash_bytes, r->sram_bytes = p->layers[i].sram_bytes;
    r->latency_ms = p->layers[i].latency_ms;
  }
  char *why = out->reason;
  size_t n = sizeof out->reason;
  if (c->max_sram && p->peak_sram_bytes > c->max_sram)
    snprintf(why, n, "peak SRAM %lld B > max %lld B", p->peak_sram_bytes, c->max_sram);
  else if (c->max_flash && p->flash_bytes > c->max_flash)
    snprintf(why, n, "flash %lld B > max %lld B", p->flash_bytes, c->max_flash);
  else if (c->max_macs && p->macs > c->max_macs)
    snprintf(why, n, "MACs %lld > max %lld", p->macs, c->max_macs);
  else if (c->max_latency_ms > 0 && p->latency_ms > c->max_latency_ms)
    snprintf(why, n, "latency %.3f ms > max %.3f ms", p->latency_ms, c->max_latency_ms);
  nas_price_free(p);
  return NAS_OK;
}

void nas_candidate_price_free(nas_candidate_price *p) {
  if (!p) return;
  free(p->layers);
  nas_net_free(p->net);
  p->layers = NULL, p->n_layers = 0, p->net = NULL;
}

int nas_candidate_store_price(nas_store *st, int64_t cand_id, const nas_candidate_price *p,
                              nas_err *e) {
  if (!p->valid) return NAS_OK;
  int rc = nas_store_candidate_set_metrics(st, cand_id, &p->m, e);
  if (rc == NAS_OK) rc = nas_store_layer_costs_put(st, cand_id, p->layers, p->n_layers, e);
  return rc;
}

/* ---- training, quantisation, evaluation -------------------------------------------------- */

/* Inherits the weights of the parent in c->warm_blob (train/inherit.h). */
static int warm_start(nas_net *net, const nas_candidate_cfg *c, nas_err *e) {
  nas_cand_float f;
  memset(&f, 0, sizeof f);
  int rc = nas_cand_unpack_float(c->warm_blob, c->warm_len, "warm-start parent", &f, e);
  nas_net *parent = NULL;
  if (rc == NAS_OK) rc = nas_net_build(f.ck.arch_json, "warm-start parent", 1, 1, &parent, e);
  if (rc == NAS_OK) rc = nas_ckpt_apply(&f.ck, parent->g, e);
  if (rc == NAS_OK) rc = nas_net_inherit(net, parent, NULL, e);
  nas_net_free(parent);
  nas_cand_float_free(&f);
  return rc;
}

/* A channel-pruned network becomes its compacted form (train/prune.h). */
static int compact(nas_net **net, int batch, nas_err *e) {
  nas_prune_stats st;
  nas_prune_stats_of(*net, &st);
  if (st.channels_removed == 0) return NAS_OK;
  nas_net *small = NULL;
  int rc = nas_prune_compact(*net, batch, &small, e);
  if (rc != NAS_OK) return rc;
  nas_net_free(*net);
  *net = small;
  return NAS_OK;
}

/* Trains net (owned: freed here) when given, else the network built from arch. */
static int train(const char *arch, nas_net *net, int64_t cand_id, const nas_candidate_cfg *c,
                 nas_candidate_result *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  out->acc_float_val = out->acc_float_test = out->acc_int8_val = out->acc_int8_test = NAN;
  out->flash_bytes = out->peak_sram_bytes = out->latency_pred_ms = NAN;
  nas_err ce = {0};
  nas_train_cfg tc;
  nas_train_cfg_default(&tc, 0);
  tc.epochs = c->epochs, tc.batch = c->batch, tc.seed = c->seed;
  /* the trainer sees no validation/test split, so its train_seconds is training steps only;
   * scoring below counts as time outside training */
  nas_data td = *c->data;
  td.val.n = 0, td.test.n = 0;
  nas_dataset val = nas_dataset_head(&c->data->val, c->eval_limit);
  nas_dataset test = nas_dataset_head(&c->data->test, c->eval_limit);
  nas_train_result tr;
  memset(&tr, 0, sizeof tr);
  nas_calib cal;
  memset(&cal, 0, sizeof cal);
  nas_g8_graph g8;
  memset(&g8, 0, sizeof g8);
  double fv = NAN, ft = NAN, v8 = NAN, t8 = NAN;
  const char *what = "training";
  double t0 = now_s(), t1, t2, t3, t4, t_cal = 0, t_low = 0;
  int crc = net ? nas_net_rebatch(net, c->batch, &ce)
                : nas_net_build(arch, "candidate", c->batch, c->seed, &net, &ce);
  if (crc == NAS_OK && c->warm_blob) crc = warm_start(net, c, &ce);
  if (crc == NAS_OK) crc = nas_train(net, &td, &tc, &tr, &ce);
  const int pruned = crc == NAS_OK && nas_prune_active(&net->prune);
  if (pruned) crc = compact(&net, c->batch, &ce);
  t1 = now_s();
  if (crc == NAS_OK) {
    what = "evaluation";
    if (val.n > 0) crc = nas_evaluate(net, &val, &fv, NULL, &ce);
    if (crc == NAS_OK && test.n > 0) crc = nas_evaluate(net, &test, &ft, NULL, &ce);
  }
  t2 = now_s();
  if (crc == NAS_OK) {
    what = "int8";
    nas_calib_cfg cc;
    nas_calib_cfg_default(&cc);
    if (c->calib_samples > 0) cc.samples = c->calib_samples;
    crc = nas_calibrate(net, &c->data->train, &cc, &cal, &ce);
    t_cal = now_s();
    if (crc == NAS_OK) crc = nas_lower(net, &cal, NULL, &g8, &ce);
    t_low = now_s();
    if (crc == NAS_OK && val.n > 0) crc = nas_g8_accuracy(&g8, &val, 0, &v8, &ce);
    if (crc == NAS_OK) crc = nas_g8_accuracy(&g8, &test, 0, &t8, &ce);
    /* a pruned net, or any net on the nas-c runtime (sparse weights), is priced again from
     * its trained int8 graph: the arch alone does not know which weights are zero */
    if (crc == NAS_OK && c->target && (pruned || c->target->runtime == NAS_RT_NAS_C)) {
      nas_price *gp = NULL;
      crc = nas_price_graph(&g8, c->target, &gp, &ce);
      if (crc == NAS_OK) {
        out->flash_bytes = (double)gp->flash_bytes, out->peak_sram_bytes = (double)gp->peak_sram_bytes;
        out->latency_pred_ms = gp->latency_ms;
      }
      nas_price_free(gp);
    }
  }
  t3 = now_s();
  if (crc == NAS_OK && c->measure) { /* the first test sample, as `nas measure` takes it */
    const size_t ni = nas_g8_numel(&g8.tensors[g8.input]);
    const size_t per = (size_t)c->data->test.h * c->data->test.w * c->data->test.c;
    int8_t *in = nas_malloc(ni ? ni : 1);
    nas_emu_cfg ec = {.cache_dir = c->emu_cache_dir};
    if (!in) {
      crc = nas_errf(&ce, NAS_ENOMEM, "measurement input: out of memory");
    } else {
      if (c->data->test.n > 0 && per == ni) nas_g8_quantize_input(&g8, c->data->test.x, in);
      else memset(in, (int)g8.tensors[g8.input].zero_point[0], ni);
      crc = nas_emu_measure_graph(&g8, c->target, in, &ec, &out->meas, &ce);
      out->measured = crc == NAS_OK;
      out->measure_s = out->meas.m.seconds;
    }
    free(in);
  }
  const double t3m = now_s(); /* after the measurement (t3 without one) */
  if (crc == NAS_OK) {
    what = "storing weights";
    char name[32];
    snprintf(name, sizeof name, "cand%lld", (long long)cand_id);
    nas_cand_info info = {.dataset = c->dataset, .train_limit = c->train_limit,
                          .eval_limit = c->eval_limit, .epochs = c->epochs, .seed = c->seed,
                          .norm_mean = c->data->mean, .norm_std = c->data->std,
                          .float_test_acc = ft};
    crc = nas_cand_pack(net, &info, &cal, &g8, name, &out->float_blob, &out->float_len,
                        &out->int8_blob, &out->int8_len, &ce);
  }
  nas_g8_graph_free(&g8);
  nas_calib_free(&cal);
  nas_net_free(net);
  t4 = now_s();
  out->build_train_s = t1 - t0, out->eval_float_s = t2 - t1, out->int8_s = t3 - t2;
  out->calib_s = t_cal ? t_cal - t2 : 0, out->lower_s = t_low ? t_low - t_cal : 0;
  out->pack_s = t4 - t3m;
  out->train_seconds = tr.train_seconds;
  if (crc == NAS_ENOMEM) {
    nas_candidate_result_free(out);
    return nas_errf(e, NAS_ENOMEM, "candidate %lld: %s", (long long)cand_id, ce.msg);
  }
  if (crc != NAS_OK) {
    nas_candidate_result_free(out);
    out->failed = 1;
    snprintf(out->reason, sizeof out->reason, "%s: %s", crc == NAS_ENUMERIC ? "diverged" : what, ce.msg);
    return NAS_OK;
  }
  out->acc_float_val = fv, out->acc_float_test = ft;
  out->acc_int8_val = v8, out->acc_int8_test = t8;
  return NAS_OK;
}

int nas_candidate_train(const char *arch, int64_t cand_id, const nas_candidate_cfg *c,
                        nas_candidate_result *out, nas_err *e) {
  return train(arch, NULL, cand_id, c, out, e);
}

int nas_candidate_train_net(const char *arch, nas_candidate_price *p, int64_t cand_id,
                            const nas_candidate_cfg *c, nas_candidate_result *out, nas_err *e) {
  nas_net *net = p->net;
  p->net = NULL;
  return train(arch, net, cand_id, c, out, e);
}

void nas_candidate_result_free(nas_candidate_result *r) {
  if (!r) return;
  free(r->float_blob), free(r->int8_blob);
  r->float_blob = r->int8_blob = NULL;
  r->float_len = r->int8_len = 0;
  nas_emu_measure_free(&r->meas);
  r->measured = 0;
}

int nas_candidate_store_result(nas_store *st, int64_t run_id, int64_t cand_id,
                               const nas_candidate_result *r, nas_metrics *m, nas_err *e) {
  double t0 = now_s();
  int rc;
  if (r->failed) {
    rc = nas_store_candidate_finish(st, cand_id, "failed", r->reason, m, NULL, 0, e);
  } else {
    m->acc_float_val = r->acc_float_val, m->acc_float_test = r->acc_float_test;
    m->acc_int8_val = r->acc_int8_val, m->acc_int8_test = r->acc_int8_test;
    m->train_seconds = r->train_seconds;
    if (isfinite(r->flash_bytes)) m->flash_bytes = r->flash_bytes;
    if (isfinite(r->peak_sram_bytes)) m->peak_sram_bytes = r->peak_sram_bytes;
    if (isfinite(r->latency_pred_ms)) m->latency_pred_ms = r->latency_pred_ms;
    if (r->measured && r->meas.m.ok) m->latency_meas_ms = r->meas.m.ms;
    nas_store_blob blobs[2] = {{"float", r->float_blob, r->float_len},
                               {"int8", r->int8_blob, r->int8_len}};
    rc = nas_store_candidate_finish_measured(st, cand_id, "done", NULL, m, blobs, 2,
                                             r->measured ? &r->meas.m : NULL, e);
  }
  if (rc == NAS_OK) { /* where the candidate's time went (bench/search100.sh sums these) */
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"train_s\":%.6f,\"build_train_s\":%.6f,\"eval_float_s\":%.6f,\"int8_s\":%.6f,"
             "\"calib_s\":%.6f,\"lower_s\":%.6f,\"pack_s\":%.6f,\"measure_s\":%.6f,\"store_s\":%.6f}",
             r->train_seconds, r->build_train_s, r->eval_float_s, r->int8_s,
             r->calib_s, r->lower_s, r->pack_s, r->measure_s, now_s() - t0);
    nas_err e2 = {0};
    nas_store_event_add(st, run_id, cand_id, "timing", payload, NULL, &e2);
  }
  return rc;
}

/* ---- the whole step ---------------------------------------------------------------------- */

static void report(const nas_candidate_hooks *h, const char *state, const char *reason,
                   const nas_metrics *m) {
  if (h && h->report) h->report(h->user, state, reason, m);
}

/* Sets the stored state and reports it. */
static int set_state(nas_store *st, int64_t cand_id, const char *state, const char *reason,
                     const nas_candidate_hooks *h, nas_candidate_outcome *out, nas_err *e) {
  int rc = nas_store_candidate_set_state(st, cand_id, state, reason, e);
  if (rc != NAS_OK) return rc;
  snprintf(out->state, sizeof out->state, "%s", state);
  report(h, state, reason, &out->m);
  return NAS_OK;
}

int nas_candidate_step(nas_store *st, int64_t run_id, int64_t cand_id, const char *arch,
                       const nas_candidate_cfg *c, const nas_candidate_hooks *h,
                       nas_candidate_outcome *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  snprintf(out->state, sizeof out->state, "proposed");
  nas_metrics_clear(&out->m);
  nas_candidate_price p;
  int rc = nas_candidate_price_arch(arch, c, &p, e);
  if (rc == NAS_OK) rc = nas_candidate_store_price(st, cand_id, &p, e);
  out->m = p.m;
  snprintf(out->reason, sizeof out->reason, "%s", p.reason);
  if (rc == NAS_OK && out->reason[0]) rc = set_state(st, cand_id, "rejected", out->reason, h, out, e);
  if (rc != NAS_OK || out->reason[0] || (h && h->stop && *h->stop)) {
    nas_candidate_price_free(&p); /* a stopped candidate stays proposed; a resumed run trains it */
    return rc;
  }
  if ((rc = set_state(st, cand_id, "training", NULL, h, out, e)) != NAS_OK) {
    nas_candidate_price_free(&p);
    return rc;
  }
  nas_candidate_result r;
  rc = nas_candidate_train_net(arch, &p, cand_id, c, &r, e);
  nas_candidate_price_free(&p);
  if (rc == NAS_OK) rc = nas_candidate_store_result(st, run_id, cand_id, &r, &out->m, e);
  if (rc == NAS_OK) {
    snprintf(out->state, sizeof out->state, "%s", r.failed ? "failed" : "done");
    snprintf(out->reason, sizeof out->reason, "%s", r.reason);
    report(h, out->state, r.failed ? out->reason : NULL, &out->m);
  }
  nas_candidate_result_free(&r);
  return rc;
}
