/* nas/job_store.c: `nas export --db FILE --candidate N`: a stored candidate -> a model file
 * (see nas_export_store_run in nas/job.h and nas/artifacts.h for what is stored). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/lower.h"
#include "nas/artifacts.h"
#include "nas/job.h"
#include "results/store.h"
#include "train/trainer.h"

/* Re-expresses a split normalised with (m0, s0) in the stored normalisation (m1, s1). */
static void renormalise(nas_dataset *ds, float m0, float s0, float m1, float s1) {
  size_t n = (size_t)ds->n * ds->h * ds->w * ds->c;
  for (size_t i = 0; i < n; i++) ds->x[i] = ((ds->x[i] * s0 + m0) - m1) / s1;
}

/* 1 when g has a recurrent cell (whose internal points need calibrated ranges). */
static int has_cells(const nas_graph *g) {
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i].kind == NAS_NODE_OP && nas_rnn_npoints(g->nodes[i].op) > 0) return 1;
  return 0;
}

/* A version-1 blob (written before the recurrent sub-ranges were stored) of a recurrent net:
 * the cells' internal ranges are calibrated again on the training data with the stored method
 * and sample count (the calibration is deterministic, so they are the ones the search used
 * when the data is the same); the stored per-node ranges are kept. */
static int recalibrate_cells(nas_net *net, const nas_dataset *train, nas_calib *c, nas_err *e) {
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.method = c->method;
  if (c->samples > 0) cc.samples = c->samples;
  nas_calib fresh;
  memset(&fresh, 0, sizeof fresh);
  int rc = nas_calibrate(net, train, &cc, &fresh, e);
  if (rc != NAS_OK) return rc;
  free(c->sub), free(c->sub_lo), free(c->sub_hi);
  c->nsub = fresh.nsub, c->sub = fresh.sub, c->sub_lo = fresh.sub_lo, c->sub_hi = fresh.sub_hi;
  fresh.nsub = 0, fresh.sub = NULL, fresh.sub_lo = fresh.sub_hi = NULL;
  nas_calib_free(&fresh);
  return NAS_OK;
}

/* The candidate's two blobs; errors name the candidate and why it has none. */
static int read_blobs(const nas_export_job *job, void **fb, size_t *fl, void **qb, size_t *ql,
                      nas_err *e) {
  nas_store *st = NULL;
  int rc = nas_store_open_readonly(job->db, &st, e);
  if (rc != NAS_OK) return rc;
  nas_candidate_row r;
  memset(&r, 0, sizeof r);
  rc = nas_store_candidate_get(st, (int64_t)job->candidate, &r, e);
  if (rc == NAS_OK && strcmp(r.state, "done"))
    rc = nas_errf(e, NAS_EINVAL, "%s: candidate %lld is %s%s%s%s: only done candidates have weights",
                  job->db, job->candidate, r.state, r.reason ? " (" : "", r.reason ? r.reason : "",
                  r.reason ? ")" : "");
  if (rc == NAS_OK) {
    nas_err we = {0};
    if (nas_store_weights_get(st, (int64_t)job->candidate, "float", fb, fl, &we) != NAS_OK ||
        nas_store_weights_get(st, (int64_t)job->candidate, "int8", qb, ql, &we) != NAS_OK) {
      free(*fb), *fb = NULL;
      rc = nas_errf(e, NAS_EINVAL,
                    "%s: candidate %lld has no stored weights (the store predates stored weights, "
                    "or they were deleted): %s", job->db, job->candidate, we.msg);
    }
  }
  nas_store_candidate_row_free(&r);
  nas_store_close(st);
  return rc;
}

int nas_export_store_run(const nas_export_job *job, nas_export_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  if (!job->format || (strcmp(job->format, "tflite") && strcmp(job->format, "onnx") &&
                       strcmp(job->format, "c")))
    return nas_errf(e, NAS_EUSAGE, "unknown export format '%s' (tflite, c, onnx)",
                    job->format ? job->format : "");
  void *fb = NULL, *qb = NULL;
  size_t fl = 0, ql = 0;
  int rc = read_blobs(job, &fb, &fl, &qb, &ql, e);
  if (rc == NAS_OK) rc = nas_export_out_check(job->out_dir, e); /* before the work */
  if (rc != NAS_OK) return free(fb), free(qb), rc;
  char what[64], name[32];
  snprintf(what, sizeof what, "candidate %lld", job->candidate);
  snprintf(name, sizeof name, "cand%lld", job->candidate);
  nas_cand_float f;
  nas_net *net = NULL;
  nas_data d;
  memset(&d, 0, sizeof d);
  nas_calib calib;
  memset(&calib, 0, sizeof calib);
  nas_g8_graph g;
  memset(&g, 0, sizeof g);
  rc = nas_cand_unpack_float(fb, fl, what, &f, e);
  free(fb);
  if (rc != NAS_OK) return free(qb), rc;
  rc = nas_net_build(f.ck.arch_json, what, 256, 1, &net, e);
  if (rc == NAS_OK && (rc = nas_ckpt_apply(&f.ck, net->g, e)) != NAS_OK) nas_err_prefix(e, "%s", what);
  if (rc == NAS_OK && (rc = nas_cand_calib(&f, net->g, &calib, e)) != NAS_OK)
    nas_err_prefix(e, "%s", what);
  const char *spec = job->dataset ? job->dataset : f.dataset;
  if (rc == NAS_OK && !*spec) rc = nas_errf(e, NAS_EUSAGE, "%s names no dataset; pass --dataset", what);
  if (rc == NAS_OK) {
    nas_data_opts o;
    nas_data_opts_default(&o, spec);
    o.train_limit = f.train_limit;
    o.warn = job->warn, o.warn_user = job->warn_user;
    rc = nas_data_load(&o, &d, e);
  }
  if (rc == NAS_OK) { /* the training normalisation (identical when the dataset is the same) */
    cJSON *meta = cJSON_Parse(f.ck.meta_json);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "norm_mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(meta, "norm_std");
    const int old_sub = calib.nsub == 0 && has_cells(net->g);
    if (cJSON_IsNumber(m) && cJSON_IsNumber(sd) && sd->valuedouble > 0 &&
        ((float)m->valuedouble != d.mean || (float)sd->valuedouble != d.std)) {
      renormalise(&d.test, d.mean, d.std, (float)m->valuedouble, (float)sd->valuedouble);
      if (old_sub) renormalise(&d.train, d.mean, d.std, (float)m->valuedouble, (float)sd->valuedouble);
    }
    cJSON_Delete(meta);
    if (old_sub && (rc = recalibrate_cells(net, &d.train, &calib, e)) != NAS_OK)
      nas_err_prefix(e, "%s: version-1 blob without recurrent ranges", what);
  }
  nas_lower_cfg lc = {.softmax = job->softmax};
  if (rc == NAS_OK) rc = nas_lower(net, &calib, &lc, &g, e);
  nas_dataset test = rc == NAS_OK ? nas_dataset_head(&d.test, f.eval_limit) : d.test;
  s->test_n = test.n;
  if (rc == NAS_OK) rc = nas_evaluate(net, &test, &s->float_test_acc, NULL, e);
  if (rc == NAS_OK) rc = nas_g8_accuracy(&g, &test, 0, &s->int8_test_acc, e);
  if (rc == NAS_OK) rc = nas_export_graph_stats(&g, s, e);
  /* tflite: the bytes that were evaluated during the search, unless a softmax is appended */
  if (rc == NAS_OK)
    rc = nas_export_write(job, name, net, &calib, &g, job->softmax ? NULL : qb, ql, s, e);
  free(qb);
  nas_g8_graph_free(&g);
  nas_calib_free(&calib);
  nas_data_free(&d);
  nas_net_free(net);
  nas_cand_float_free(&f);
  return rc;
}
