/* nas/job.c: the train and eval jobs (load, build, run, save). */
#include "nas/job.h"
#include "core/alloc.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "deploy/lower.h"
#include "export/export_c.h"
#include "export/export_onnx.h"
#include "export/export_tflite.h"
#include "train/checkpoint.h"
#include "train/qat.h"
#include "train/quant.h"

void nas_set_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

/* qat: the "qat" object of a QAT run ({"method", "epochs", "ranges"}), taken over; or NULL. */
static char *meta_json(const nas_train_job *job, const nas_data *d, const nas_train_summary *s,
                       cJSON *qat) {
  cJSON *m = cJSON_CreateObject();
  if (qat) cJSON_AddItemToObject(m, "qat", qat);
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

/* The float phase of a QAT run counts its epochs out of the run's --epochs, as the QAT phase
 * does (epoch 1/3, 2/3 of float, then 3/3 of QAT; not 1/2, 2/2, 3/3). */
typedef struct phase_progress {
  void (*fn)(const nas_epoch_report *r, void *user);
  void *user;
  int total;
} phase_progress;

static void float_phase_progress(const nas_epoch_report *r, void *user) {
  const phase_progress *p = user;
  nas_epoch_report x = *r;
  x.epochs = p->total;
  p->fn(&x, p->user);
}

/* Float epochs, then (job->qat) the QAT epochs; the QAT ranges go to *qc. */
static int train_phases(const nas_train_job *job, nas_net *net, const nas_data *d,
                        nas_train_summary *s, nas_calib *qc, nas_err *e) {
  if (!job->qat) return nas_train(net, d, &job->cfg, &s->r, e);
  const int qe = job->qat_epochs > 0 ? job->qat_epochs : 1, fe = job->cfg.epochs - qe;
  if (qe > job->cfg.epochs)
    return nas_errf(e, NAS_EUSAGE, "--qat-epochs %d exceeds --epochs %d", qe, job->cfg.epochs);
  if (fe > 0) {
    nas_train_cfg fc = job->cfg;
    fc.epochs = fe;
    phase_progress pp = {job->cfg.progress, job->cfg.user, job->cfg.epochs};
    if (fc.progress) fc.progress = float_phase_progress, fc.user = &pp;
    int rc = nas_train(net, d, &fc, &s->float_r, e);
    if (rc) return rc;
  }
  nas_train_cfg tc = job->cfg;
  tc.epochs = qe;
  if (fe > 0) tc.lr *= job->qat_lr_scale > 0 ? job->qat_lr_scale : 0.1f, tc.warmup_epochs = 0;
  nas_qat_cfg q;
  nas_qat_cfg_default(&q);
  q.mode = job->qat;
  q.epoch_offset = fe, q.epochs_total = job->cfg.epochs;
  return nas_qat_run(net, d, &q, &tc, &s->r, qc, e);
}

/* Pruning figures of the trained net, then the net without its pruned channels. */
static int compact(nas_net **net, const nas_train_job *job, nas_train_summary *s, nas_err *e) {
  s->pruned = nas_prune_active(&(*net)->prune);
  nas_prune_stats_of(*net, &s->prune);
  s->params_compact = (*net)->params, s->macs_compact = (*net)->macs;
  if (s->prune.channels_removed == 0) return NAS_OK;
  nas_net *small = NULL;
  int rc = nas_prune_compact(*net, job->cfg.batch, &small, e);
  if (rc != NAS_OK) return rc;
  nas_net_free(*net);
  *net = small;
  s->params_compact = small->params, s->macs_compact = small->macs;
  return NAS_OK;
}

int nas_train_job_run(const nas_train_job *job, nas_train_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  nas_calib qat_calib;
  memset(&qat_calib, 0, sizeof qat_calib);
  char *text = NULL;
  nas_net *net = NULL;
  nas_data d = {0};
  int rc = nas_read_file(job->arch_path, &text, NULL, e);
  if (rc == NAS_OK && job->prune) { /* --prune replaces the arch's "prune" object */
    char *pj = NULL, *pruned = NULL;
    rc = nas_prune_spec_parse(job->prune, &pj, e);
    if (rc == NAS_OK) rc = nas_prune_arch_with(text, pj, &pruned, e);
    if (rc == NAS_OK) free(text), text = pruned;
    cJSON_free(pj);
  }
  if (rc == NAS_OK) rc = nas_net_build(text, job->arch_path, job->cfg.batch, job->cfg.seed, &net, e);
  if (rc == NAS_OK) {
    nas_data_opts o;
    nas_data_opts_default(&o, job->dataset);
    o.train_limit = job->train_limit;
    o.warn = job->warn, o.warn_user = job->warn_user; /* skipped files */
    rc = nas_data_load(&o, &d, e);
  }
  if (rc == NAS_OK) {
    s->params = net->params, s->macs = net->macs, s->classes = net->classes;
    s->train_n = d.train.n, s->val_n = d.val.n, s->test_n = d.test.n;
    /* the arch's "name", else its file name */
    cJSON *a = cJSON_Parse(net->arch_json);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
    const char *slash = strrchr(job->arch_path, '/');
    snprintf(s->arch_name, sizeof s->arch_name, "%s",
             cJSON_IsString(nm) ? nm->valuestring : slash ? slash + 1 : job->arch_path);
    cJSON_Delete(a);
    rc = train_phases(job, net, &d, s, &qat_calib, e);
  }
  if (rc == NAS_OK && job->save_path) {
    cJSON *qat = NULL;
    if (job->qat) {
      qat = cJSON_CreateObject();
      cJSON_AddStringToObject(qat, "method", nas_qat_mode_name(job->qat));
      cJSON_AddNumberToObject(qat, "epochs", job->qat_epochs > 0 ? job->qat_epochs : 1);
      cJSON_AddItemToObject(qat, "ranges", nas_qat_ranges_to_json(net, &qat_calib));
    }
    char *meta = meta_json(job, &d, s, qat);
    rc = compact(&net, job, s, e); /* the checkpoint holds the network without its pruned channels */
    if (rc == NAS_OK) rc = nas_ckpt_save(job->save_path, net->arch_json, meta ? meta : "{}", net->g, e);
    cJSON_free(meta);
  } else if (rc == NAS_OK) {
    rc = compact(&net, job, s, e);
  }
  nas_calib_free(&qat_calib);
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

/* A checkpoint's network with its weights, and its dataset normalised as at training time
 * (spec: the given one, else the one recorded in the checkpoint). */
typedef struct loaded {
  nas_ckpt c;      /* the checkpoint */
  nas_net *net;    /* its network, weights applied */
  nas_data d;      /* the dataset */
  char name[64];   /* the arch's name, or "model" */
} loaded;

static void loaded_free(loaded *l) {
  nas_data_free(&l->d);
  nas_net_free(l->net);
  nas_ckpt_free(&l->c);
}

/* Builds the network of the checkpoint already in l->c (path names it in errors) and loads
 * its dataset with the recorded train_limit, so the normalisation is the training one. */
static int finish_load(const char *path, const char *spec, int batch, nas_warn_fn warn,
                       void *warn_user, loaded *l, nas_err *e) {
  cJSON *meta = NULL;
  int rc = NAS_OK, train_limit = 0;
  {
    rc = nas_net_build(l->c.arch_json, path, batch > 0 ? batch : 256, 1, &l->net, e);
    if (rc == NAS_OK && (rc = nas_ckpt_apply(&l->c, l->net->g, e)) != NAS_OK)
      nas_err_prefix(e, "%s", path);
  }
  if (rc == NAS_OK) {
    meta = cJSON_Parse(l->c.meta_json);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(meta, "dataset");
    if (!spec && cJSON_IsString(ds)) spec = ds->valuestring;
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(meta, "train_limit");
    if (cJSON_IsNumber(tl) && tl->valuedouble > 0) train_limit = (int)tl->valuedouble;
    if (!spec) rc = nas_errf(e, NAS_EUSAGE, "%s: names no dataset; pass --dataset", path);
    cJSON *a = cJSON_Parse(l->c.arch_json);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
    snprintf(l->name, sizeof l->name, "%s", cJSON_IsString(nm) ? nm->valuestring : "model");
    cJSON_Delete(a);
  }
  if (rc == NAS_OK) {
    nas_data_opts o;
    nas_data_opts_default(&o, spec);
    o.train_limit = train_limit;
    o.warn = warn, o.warn_user = warn_user;
    rc = nas_data_load(&o, &l->d, e);
  }
  if (rc == NAS_OK) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "norm_mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(meta, "norm_std");
    if (cJSON_IsNumber(m) && cJSON_IsNumber(sd) && sd->valuedouble > 0 &&
        ((float)m->valuedouble != l->d.mean || (float)sd->valuedouble != l->d.std)) {
      float m1 = (float)m->valuedouble, s1 = (float)sd->valuedouble;
      renormalise(&l->d.train, l->d.mean, l->d.std, m1, s1);
      renormalise(&l->d.val, l->d.mean, l->d.std, m1, s1);
      renormalise(&l->d.test, l->d.mean, l->d.std, m1, s1);
    }
  }
  cJSON_Delete(meta);
  if (rc != NAS_OK) loaded_free(l);
  return rc;
}

static int load_trained(const char *path, const char *spec, int batch, nas_warn_fn warn,
                        void *warn_user, loaded *l, nas_err *e) {
  memset(l, 0, sizeof *l);
  int rc = nas_ckpt_load(path, &l->c, e);
  if (rc != NAS_OK) return rc;
  return finish_load(path, spec, batch, warn, warn_user, l, e);
}

int nas_eval_job_run(const nas_eval_job *job, nas_eval_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  loaded l;
  int rc = load_trained(job->checkpoint, job->dataset, job->batch, job->warn, job->warn_user, &l,
                        e);
  if (rc != NAS_OK) return rc;
  s->params = l.net->params, s->macs = l.net->macs, s->test_n = l.d.test.n;
  rc = nas_evaluate(l.net, &l.d.test, &s->test_acc, &s->test_loss, e);
  if (rc == NAS_OK && l.d.val.n > 0) rc = nas_evaluate(l.net, &l.d.val, &s->val_acc, NULL, e);
  loaded_free(&l);
  return rc;
}

int nas_export_out_check(const char *dir, nas_err *e) {
  if (!dir || !*dir) return nas_errf(e, NAS_EUSAGE, "export: no output directory given");
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return nas_errf(e, NAS_EIO, "%s: not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0)
      return nas_errf(e, NAS_EIO, "%s: cannot write into directory: %s", dir, strerror(errno));
    return NAS_OK;
  }
  if (errno != ENOENT)
    return nas_errf(e, NAS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--; /* "a/b/" is created as "a/b" */
  while (n > 0 && dir[n - 1] != '/') n--;
  char parent[4096];
  if (n == 0) snprintf(parent, sizeof parent, ".");
  else if (n >= sizeof parent) return NAS_OK; /* mkdir will tell */
  else memcpy(parent, dir, n), parent[n] = '\0';
  if (stat(parent, &st) != 0)
    return nas_errf(e, NAS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return nas_errf(e, NAS_EIO, "%s: cannot create directory: %s", dir, strerror(ENOTDIR));
  if (access(parent, W_OK | X_OK) != 0)
    return nas_errf(e, NAS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  return NAS_OK;
}

/* Writes the requested format into out_dir; s->path names the (main) file written. */
int nas_export_write(const nas_export_job *job, const char *name, const nas_net *net,
                     const nas_calib *c, const nas_g8_graph *g, const void *tflite,
                     size_t tflite_len, nas_export_summary *s, nas_err *e) {
  if (mkdir(job->out_dir, 0777) != 0 && errno != EEXIST)
    return nas_errf(e, NAS_EIO, "%s: cannot create directory: %s", job->out_dir, strerror(errno));
  if (!strcmp(job->format, "tflite")) {
    snprintf(s->path, sizeof s->path, "%s/%s.tflite", job->out_dir, name);
    if (!tflite) return nas_tflite_write(g, name, s->path, e);
    FILE *o = fopen(s->path, "wb");
    int ok = o && fwrite(tflite, 1, tflite_len, o) == tflite_len;
    if (o && fclose(o) != 0) ok = 0;
    return ok ? NAS_OK : nas_errf(e, NAS_EIO, "%s: cannot write: %s", s->path, strerror(errno));
  }
  if (!strcmp(job->format, "c")) { /* <name>.h/.c and the runtime nasrt*.c/.h */
    snprintf(s->path, sizeof s->path, "%s/%s.c", job->out_dir, name);
    nas_g8_graph gs = *g; /* the same graph, prepared with the nas-c runtime's sparse storage */
    gs.sparse = job->dense_weights ? 0 : 1;
    for (int i = 0; gs.sparse && i < gs.nops; i++)
      if (nas_g8_sparse_pick(&gs, i)) {
        s->sparse_ops++;
        s->sparse_saved += (long long)gs.tensors[gs.ops[i].in[1]].bytes - nas_g8_sparse_bytes(&gs, i, NULL);
      }
    return nas_c_export(&gs, name, job->out_dir, e);
  }
  /* onnx: the float network and its QDQ int8 twin */
  char qdq[4200];
  snprintf(s->path, sizeof s->path, "%s/%s.onnx", job->out_dir, name);
  snprintf(qdq, sizeof qdq, "%s/%s.qdq.onnx", job->out_dir, name);
  int rc = nas_onnx_export_float(net, s->path, e);
  if (rc == NAS_OK) rc = nas_onnx_export_qdq(net, c, qdq, e);
  return rc;
}

int nas_export_graph_stats(const nas_g8_graph *g, nas_export_summary *s, nas_err *e) {
  nas_g8_plan plan;
  int rc = nas_g8_plan_build(g, &plan, e);
  if (rc == NAS_OK) {
    s->arena_bytes = (long long)plan.peak;
    nas_g8_plan_free(&plan);
  }
  s->ops = g->nops;
  return rc;
}

/* The calibration options of job (method, samples). */
static void job_calib_cfg(const nas_export_job *job, nas_calib_cfg *cc) {
  nas_calib_cfg_default(cc);
  cc->method = job->calib_method;
  if (job->calib_samples > 0) cc->samples = job->calib_samples;
}

/* The activation ranges for lowering: the QAT ranges stored in the checkpoint's metadata
 * ("qat": {"ranges": ...}) unless job->recalibrate, else a fresh calibration. */
static int export_calib(const nas_export_job *job, const loaded *l, const nas_calib_cfg *cc,
                        nas_calib *c, int *used_qat, nas_err *e) {
  *used_qat = 0;
  cJSON *meta = job->recalibrate ? NULL : cJSON_Parse(l->c.meta_json);
  const cJSON *qat = cJSON_GetObjectItemCaseSensitive(meta, "qat");
  const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(qat, "ranges");
  int rc;
  if (ranges) {
    rc = nas_qat_ranges_from_json(l->net, ranges, c, e);
    if (rc) nas_err_prefix(e, "%s", job->checkpoint);
    else *used_qat = 1;
  } else {
    rc = nas_calibrate(l->net, &l->d.train, cc, c, e);
  }
  cJSON_Delete(meta);
  return rc;
}

int nas_export_job_run(const nas_export_job *job, nas_export_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  if (strcmp(job->format, "tflite") && strcmp(job->format, "onnx") && strcmp(job->format, "c"))
    return nas_errf(e, NAS_EUSAGE, "unknown export format '%s' (tflite, c, onnx)", job->format);
  if (nas_export_out_check(job->out_dir, e) != NAS_OK) return e->code; /* before the work */
  loaded l;
  int rc = load_trained(job->checkpoint, job->dataset, 256, job->warn, job->warn_user, &l, e);
  if (rc != NAS_OK) return rc;
  nas_calib_cfg cc;
  job_calib_cfg(job, &cc);
  nas_lower_cfg lc = {.softmax = job->softmax};
  nas_calib calib;
  memset(&calib, 0, sizeof calib);
  nas_g8_graph g;
  memset(&g, 0, sizeof g);
  s->test_n = l.d.test.n;
  rc = nas_evaluate(l.net, &l.d.test, &s->float_test_acc, NULL, e);
  if (rc == NAS_OK) rc = export_calib(job, &l, &cc, &calib, &s->qat_ranges, e);
  if (rc == NAS_OK) rc = nas_lower(l.net, &calib, &lc, &g, e);
  if (rc == NAS_OK) rc = nas_g8_accuracy(&g, &l.d.test, 0, &s->int8_test_acc, e);
  if (rc == NAS_OK) rc = nas_export_graph_stats(&g, s, e);
  if (rc == NAS_OK) rc = nas_export_write(job, l.name, l.net, &calib, &g, NULL, 0, s, e);
  nas_g8_graph_free(&g);
  nas_calib_free(&calib);
  loaded_free(&l);
  return rc;
}

int nas_checkpoint_lower(const nas_export_job *job, nas_g8_graph *g, char name[64],
                         int8_t **sample, nas_err *e) {
  memset(g, 0, sizeof *g);
  if (sample) *sample = NULL;
  loaded l;
  int rc = load_trained(job->checkpoint, job->dataset, 256, job->warn, job->warn_user, &l, e);
  if (rc != NAS_OK) return rc;
  nas_calib_cfg cc;
  job_calib_cfg(job, &cc);
  nas_lower_cfg lc = {.softmax = job->softmax};
  nas_calib calib;
  memset(&calib, 0, sizeof calib);
  int used_qat; /* as nas export: a QAT checkpoint's learned ranges, else calibration */
  rc = export_calib(job, &l, &cc, &calib, &used_qat, e);
  if (rc == NAS_OK) rc = nas_lower(l.net, &calib, &lc, g, e);
  if (rc == NAS_OK && sample) {
    const size_t ni = nas_g8_numel(&g->tensors[g->input]);
    const size_t per = (size_t)l.d.test.h * l.d.test.w * l.d.test.c;
    *sample = nas_malloc(ni ? ni : 1);
    if (!*sample) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    else if (l.d.test.n > 0 && per == ni) nas_g8_quantize_input(g, l.d.test.x, *sample);
    else memset(*sample, (int)g->tensors[g->input].zero_point[0], ni);
  }
  snprintf(name, 64, "%s", l.name);
  nas_calib_free(&calib);
  loaded_free(&l);
  if (rc != NAS_OK) {
    nas_g8_graph_free(g);
    if (sample) free(*sample), *sample = NULL;
  }
  return rc;
}
