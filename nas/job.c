/* nas/job.c: the train and eval jobs (load, build, run, save). */
#include "nas/job.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/checkpoint.h"

void nas_set_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

static char *meta_json(const nas_train_job *job, const nas_data *d, const nas_train_summary *s) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "dataset", job->dataset);
  cJSON_AddNumberToObject(m, "norm_mean", d->mean);
  cJSON_AddNumberToObject(m, "norm_std", d->std);
  cJSON_AddNumberToObject(m, "epochs", job->cfg.epochs);
  cJSON_AddNumberToObject(m, "seed", (double)job->cfg.seed);
  cJSON_AddNumberToObject(m, "val_acc", s->r.val_acc);
  cJSON_AddNumberToObject(m, "test_acc", s->r.test_acc);
  char *t = cJSON_PrintUnformatted(m);
  cJSON_Delete(m);
  return t;
}

int nas_train_job_run(const nas_train_job *job, nas_train_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  char *text = NULL;
  nas_net *net = NULL;
  nas_data d = {0};
  int rc = nas_read_file(job->arch_path, &text, NULL, e);
  if (rc == NAS_OK) rc = nas_net_build(text, job->arch_path, job->cfg.batch, job->cfg.seed, &net, e);
  if (rc == NAS_OK) {
    nas_data_opts o;
    nas_data_opts_default(&o, job->dataset);
    o.train_limit = job->train_limit;
    o.warn = stderr; /* skipped files are reported to the user */
    rc = nas_data_load(&o, &d, e);
  }
  if (rc == NAS_OK) {
    s->params = net->params, s->macs = net->macs;
    s->train_n = d.train.n, s->val_n = d.val.n, s->test_n = d.test.n;
    /* the arch's "name", else its file name */
    cJSON *a = cJSON_Parse(net->arch_json);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
    const char *slash = strrchr(job->arch_path, '/');
    snprintf(s->arch_name, sizeof s->arch_name, "%s",
             cJSON_IsString(nm) ? nm->valuestring : slash ? slash + 1 : job->arch_path);
    cJSON_Delete(a);
    rc = nas_train(net, &d, &job->cfg, &s->r, e);
  }
  if (rc == NAS_OK && job->save_path) {
    char *meta = meta_json(job, &d, s);
    rc = nas_ckpt_save(job->save_path, net->arch_json, meta ? meta : "{}", net->g, e);
    cJSON_free(meta);
  }
  nas_data_free(&d);
  nas_net_free(net);
  free(text);
  return rc;
}

/* Re-expresses a split normalised with (m0, s0) in the checkpoint's normalisation (m1, s1). */
static void renormalise(nas_dataset *ds, float m0, float s0, float m1, float s1) {
  size_t n = (size_t)ds->n * ds->h * ds->w * ds->c;
  for (size_t i = 0; i < n; i++) ds->x[i] = ((ds->x[i] * s0 + m0) - m1) / s1;
}

int nas_eval_job_run(const nas_eval_job *job, nas_eval_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  nas_ckpt c = {0};
  nas_net *net = NULL;
  nas_data d = {0};
  cJSON *meta = NULL;
  int rc = nas_ckpt_load(job->checkpoint, &c, e);
  if (rc == NAS_OK) {
    rc = nas_net_build(c.arch_json, job->checkpoint, job->batch > 0 ? job->batch : 256, 1, &net, e);
    if (rc == NAS_OK && (rc = nas_ckpt_apply(&c, net->g, e)) != NAS_OK)
      nas_err_prefix(e, "%s", job->checkpoint);
  }
  const char *spec = job->dataset;
  if (rc == NAS_OK) {
    meta = cJSON_Parse(c.meta_json);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(meta, "dataset");
    if (!spec && cJSON_IsString(ds)) spec = ds->valuestring;
    if (!spec)
      rc = nas_errf(e, NAS_EUSAGE, "%s: names no dataset; pass --dataset", job->checkpoint);
  }
  if (rc == NAS_OK) {
    nas_data_opts o;
    nas_data_opts_default(&o, spec);
    o.warn = stderr;
    rc = nas_data_load(&o, &d, e);
  }
  if (rc == NAS_OK) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "norm_mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(meta, "norm_std");
    if (cJSON_IsNumber(m) && cJSON_IsNumber(sd) && sd->valuedouble > 0) {
      renormalise(&d.test, d.mean, d.std, (float)m->valuedouble, (float)sd->valuedouble);
      renormalise(&d.val, d.mean, d.std, (float)m->valuedouble, (float)sd->valuedouble);
    }
    s->params = net->params, s->macs = net->macs, s->test_n = d.test.n;
    rc = nas_evaluate(net, &d.test, &s->test_acc, &s->test_loss, e);
    if (rc == NAS_OK && d.val.n > 0) rc = nas_evaluate(net, &d.val, &s->val_acc, NULL, e);
  }
  cJSON_Delete(meta);
  nas_data_free(&d);
  nas_net_free(net);
  nas_ckpt_free(&c);
  return rc;
}
