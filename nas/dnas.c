/* nas/dnas.c: the DNAS search (nas/dnas.h): alternating supernet training (weights on the
 * training split, architecture logits on the validation split, after warm-up epochs with
 * the architecture fixed), per-epoch checkpoints and architecture-parameter events, then
 * extraction of the argmax architecture, exact-cost check (with greedy repair when over
 * budget), retraining from scratch, int8 evaluation and storage as a candidate of the run.
 * Never prints: progress goes through the hooks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "datasets/dataset.h"
#include "deploy/lower.h"
#include "nas/dnas.h"
#include "nas/dnas_impl.h"
#include "results/store.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/trainer.h"

void nas_dnas_cfg_default(nas_dnas_cfg *c) {
  memset(c, 0, sizeof *c);
  nas_search_cfg_default(&c->base);
  c->base.strategy = "dnas";
  c->base.budget = 1;
  c->sn_epochs = 8;
  c->warmup = 2;
  c->arch_lr = 0.05;
  c->lr = 0.05;
  c->t0 = 5, c->t1 = 0.5;
  c->sampling = NAS_DNAS_GUMBEL;
  c->w[NAS_COST_SRAM] = 1;
  c->hinge = 5;
}

static const char *const COST_NAMES[NAS_COST_COUNT] = {"macs", "flash", "sram", "latency"};

int nas_dnas_parse_weights(const char *spec, double w[NAS_COST_COUNT], nas_err *e) {
  char buf[256];
  if (!spec || strlen(spec) >= sizeof buf) return nas_errf(e, NAS_EUSAGE, "cost weights: bad list");
  snprintf(buf, sizeof buf, "%s", spec);
  for (int m = 0; m < NAS_COST_COUNT; m++) w[m] = 0;
  char *save = NULL;
  for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(it, '='), *end;
    if (!eq) return nas_errf(e, NAS_EUSAGE, "cost weights: '%s' is not NAME=VALUE", it);
    *eq = 0;
    int m = -1;
    for (int k = 0; k < NAS_COST_COUNT; k++)
      if (!strcmp(it, COST_NAMES[k])) m = k;
    if (m < 0)
      return nas_errf(e, NAS_EUSAGE, "cost weights: unknown cost '%s' (macs, flash, sram, latency)", it);
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !(v >= 0 && v < 1e9))
      return nas_errf(e, NAS_EUSAGE, "cost weights: %s: '%s' is not a number >= 0", it, eq + 1);
    w[m] = v;
  }
  return NAS_OK;
}

int nas_dnas_parse_temperature(const char *spec, double *t0, double *t1, nas_err *e) {
  char *end;
  double a = spec ? strtod(spec, &end) : 0, b;
  if (!spec || end == spec || !(a > 0 && a < 1e6))
    return nas_errf(e, NAS_EUSAGE, "temperature: '%s' is not T0 or T0:T1 with T > 0", spec ? spec : "");
  b = a;
  if (*end == ':') {
    const char *s = end + 1;
    b = strtod(s, &end);
    if (end == s || !(b > 0 && b < 1e6))
      return nas_errf(e, NAS_EUSAGE, "temperature: '%s' is not T0 or T0:T1 with T > 0", spec);
  }
  if (*end) return nas_errf(e, NAS_EUSAGE, "temperature: '%s' is not T0 or T0:T1 with T > 0", spec);
  *t0 = a, *t1 = b;
  return NAS_OK;
}

int nas_dnas_parse_sweep(const char *spec, double *v, int *n, nas_err *e) {
  char buf[512];
  if (!spec || strlen(spec) >= sizeof buf) return nas_errf(e, NAS_EUSAGE, "sweep: bad list");
  snprintf(buf, sizeof buf, "%s", spec);
  *n = 0;
  char *save = NULL;
  for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
    char *end;
    double x = strtod(it, &end);
    if (end == it || *end || !(x >= 0 && x < 1e9))
      return nas_errf(e, NAS_EUSAGE, "sweep: '%s' is not a number >= 0", it);
    if (*n == NAS_DNAS_MAX_SWEEP)
      return nas_errf(e, NAS_EUSAGE, "sweep: more than %d points", NAS_DNAS_MAX_SWEEP);
    v[(*n)++] = x;
  }
  if (*n == 0) return nas_errf(e, NAS_EUSAGE, "sweep: empty list");
  return NAS_OK;
}

/* ---- configuration as JSON (stored with the run, read back on resume) -------------------- */

char *dnas_config_json(const nas_dnas_cfg *c, const char *objectives) {
  const nas_search_cfg *g = &c->base;
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "space", g->space);
  cJSON_AddStringToObject(j, "strategy", "dnas");
  cJSON_AddStringToObject(j, "dataset", g->dataset);
  if (g->target) cJSON_AddStringToObject(j, "target", g->target);
  if (g->target_file) cJSON_AddStringToObject(j, "target_file", g->target_file);
  cJSON_AddNumberToObject(j, "max_sram", (double)g->max_sram);
  cJSON_AddNumberToObject(j, "max_flash", (double)g->max_flash);
  cJSON_AddNumberToObject(j, "max_macs", (double)g->max_macs);
  cJSON_AddNumberToObject(j, "max_latency_ms", g->max_latency_ms);
  cJSON_AddNumberToObject(j, "budget", g->budget);
  cJSON_AddNumberToObject(j, "epochs", g->epochs);
  cJSON_AddNumberToObject(j, "batch", g->batch);
  cJSON_AddNumberToObject(j, "train_limit", g->train_limit);
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)g->seed);
  cJSON_AddStringToObject(j, "seed", seed);
  cJSON_AddStringToObject(j, "objectives", objectives);
  cJSON_AddNumberToObject(j, "supernet_epochs", c->sn_epochs);
  cJSON_AddNumberToObject(j, "warmup", c->warmup);
  cJSON_AddNumberToObject(j, "arch_lr", c->arch_lr);
  cJSON_AddNumberToObject(j, "lr", c->lr);
  cJSON_AddNumberToObject(j, "t0", c->t0);
  cJSON_AddNumberToObject(j, "t1", c->t1);
  cJSON_AddStringToObject(j, "sampling", c->sampling == NAS_DNAS_GUMBEL ? "gumbel" : "softmax");
  cJSON_AddNumberToObject(j, "hinge", c->hinge);
  cJSON *w = cJSON_AddObjectToObject(j, "cost_weights");
  for (int m = 0; m < NAS_COST_COUNT; m++) cJSON_AddNumberToObject(w, COST_NAMES[m], c->w[m]);
  cJSON *sw = cJSON_AddArrayToObject(j, "sweep");
  for (int i = 0; i < c->n_sweep; i++) cJSON_AddItemToArray(sw, cJSON_CreateNumber(c->sweep[i]));
  char *t = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return t;
}

static const char *jstr(const cJSON *j, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static double jnum(const cJSON *j, const char *k, double def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
  return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Fills c from stored JSON j (strings point into j, which must outlive c). */
void dnas_config_read(const cJSON *j, nas_dnas_cfg *c) {
  nas_dnas_cfg_default(c);
  nas_search_cfg *g = &c->base;
  g->space = jstr(j, "space"), g->dataset = jstr(j, "dataset");
  g->target = jstr(j, "target"), g->target_file = jstr(j, "target_file");
  g->max_sram = (long long)jnum(j, "max_sram", 0), g->max_flash = (long long)jnum(j, "max_flash", 0);
  g->max_macs = (long long)jnum(j, "max_macs", 0), g->max_latency_ms = jnum(j, "max_latency_ms", 0);
  g->budget = (int)jnum(j, "budget", 1), g->epochs = (int)jnum(j, "epochs", 1);
  g->batch = (int)jnum(j, "batch", 128), g->train_limit = (int)jnum(j, "train_limit", 0);
  const char *sd = jstr(j, "seed");
  g->seed = sd ? strtoull(sd, NULL, 10) : 1;
  if (jstr(j, "objectives")) g->objectives = jstr(j, "objectives");
  c->sn_epochs = (int)jnum(j, "supernet_epochs", c->sn_epochs);
  c->warmup = (int)jnum(j, "warmup", c->warmup);
  c->arch_lr = jnum(j, "arch_lr", c->arch_lr), c->lr = jnum(j, "lr", c->lr);
  c->t0 = jnum(j, "t0", c->t0), c->t1 = jnum(j, "t1", c->t1), c->hinge = jnum(j, "hinge", c->hinge);
  const char *smp = jstr(j, "sampling");
  c->sampling = smp && !strcmp(smp, "softmax") ? NAS_DNAS_SOFTMAX : NAS_DNAS_GUMBEL;
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "cost_weights");
  for (int m = 0; m < NAS_COST_COUNT; m++) c->w[m] = jnum(w, COST_NAMES[m], 0);
  const cJSON *sw = cJSON_GetObjectItemCaseSensitive(j, "sweep"), *it;
  c->n_sweep = 0;
  cJSON_ArrayForEach(it, sw) if (c->n_sweep < NAS_DNAS_MAX_SWEEP && cJSON_IsNumber(it))
      c->sweep[c->n_sweep++] = it->valuedouble;
}

/* ---- run setup --------------------------------------------------------------------------- */

void dnas_ctx_free(dnas_ctx *c) {
  nas_dnas_relax_free(c->rx);
  nas_supernet_free(c->sn);
  nas_store_close(c->st);
  nas_data_free(&c->d);
  nas_target_free(c->t);
  cJSON_Delete(c->owned);
}

int dnas_prepare(dnas_ctx *c, nas_err *e) {
  nas_dnas_cfg *k = &c->cfg;
  nas_search_cfg *g = &k->base;
  if (!g->space) return nas_errf(e, NAS_EUSAGE, "no search space given");
  if (!g->dataset) return nas_errf(e, NAS_EUSAGE, "no dataset given");
  if (!g->target && !g->target_file) return nas_errf(e, NAS_EUSAGE, "no target given");
  if (g->epochs < 1 || g->epochs > 100000)
    return nas_errf(e, NAS_EUSAGE, "epochs %d is out of range 1..100000", g->epochs);
  if (g->batch < 1 || g->batch > 65536)
    return nas_errf(e, NAS_EUSAGE, "batch %d is out of range 1..65536", g->batch);
  if (k->sn_epochs < 1 || k->sn_epochs > 10000)
    return nas_errf(e, NAS_EUSAGE, "supernet epochs %d is out of range 1..10000", k->sn_epochs);
  if (k->warmup < 0 || k->warmup >= k->sn_epochs)
    return nas_errf(e, NAS_EUSAGE, "warm-up %d must be 0..%d (below the supernet epochs)", k->warmup,
                    k->sn_epochs - 1);
  if (!(k->arch_lr > 0 && k->arch_lr < 100) || !(k->lr > 0 && k->lr < 100))
    return nas_errf(e, NAS_EUSAGE, "learning rates must be in (0, 100)");
  if (!(k->t0 > 0) || !(k->t1 > 0)) return nas_errf(e, NAS_EUSAGE, "temperatures must be > 0");
  if (g->max_sram < 0 || g->max_flash < 0 || g->max_macs < 0 || !(g->max_latency_ms >= 0))
    return nas_errf(e, NAS_EUSAGE, "a constraint is negative");
  if (g->train_limit < 0) return nas_errf(e, NAS_EUSAGE, "train limit is negative");
  c->n_points = k->n_sweep ? k->n_sweep : 1;
  g->budget = c->n_points;
  char obj[512];
  int rc = nas_objectives_expand(g->objectives, obj, sizeof obj, e);
  if (rc == NAS_OK) rc = nas_objectives_parse(obj, &c->obj, e);
  if (rc != NAS_OK) {
    nas_err_prefix(e, "option --objectives");
    if (e) e->code = NAS_EUSAGE;
    return NAS_EUSAGE;
  }
  if ((rc = nas_supernet_load(g->space, &c->sn, e)) != NAS_OK) return rc;
  if ((rc = nas_space_check(c->sn->space, e)) != NAS_OK) return rc;
  if ((rc = nas_target_open(g->target, g->target_file, &c->t, e)) != NAS_OK) return rc;
  if ((rc = nas_dnas_relax_build(c->sn, c->t, &c->rx, e)) != NAS_OK) return rc;
  /* the supernet must build (this checks every relaxation rule before the run exists) */
  nas_dnas_net *dn = NULL;
  if ((rc = nas_dnas_net_build(c->rx, 1, 1, &dn, e)) != NAS_OK) return rc;
  nas_dnas_net_free(dn);
  nas_data_opts o;
  nas_data_opts_default(&o, g->dataset);
  o.train_limit = g->train_limit;
  if ((rc = nas_data_load(&o, &c->d, e)) != NAS_OK) return rc;
  if (c->d.val.n < 1)
    return nas_errf(e, NAS_EINVAL, "dataset %s: DNAS needs a validation split", g->dataset);
  if (c->sn->in_h != c->d.train.h || c->sn->in_w != c->d.train.w || c->sn->in_c != c->d.train.c ||
      c->sn->classes < c->d.train.classes)
    return nas_errf(e, NAS_EINVAL, "space %s expects input %dx%dx%d with %d classes, dataset %s has "
                    "%dx%dx%d with %d classes", nas_space_name(c->sn->space), c->sn->in_h,
                    c->sn->in_w, c->sn->in_c, c->sn->classes, g->dataset, c->d.train.h,
                    c->d.train.w, c->d.train.c, c->d.train.classes);
  /* budgets and reference scales of the cost terms */
  c->budget[NAS_COST_MACS] = (double)g->max_macs, c->budget[NAS_COST_FLASH] = (double)g->max_flash;
  c->budget[NAS_COST_SRAM] = (double)g->max_sram, c->budget[NAS_COST_LATENCY] = g->max_latency_ms;
  double *y = calloc((size_t)c->rx->n_p, sizeof(double)), *a = calloc((size_t)c->rx->n_p, sizeof(double));
  if (!y || !a) {
    free(y), free(a);
    return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  }
  nas_dnas_probs(c->rx, a, 1, NULL, y);
  nas_cost E;
  nas_dnas_expected(c->rx, y, &E, NULL);
  for (int m = 0; m < NAS_COST_COUNT; m++)
    c->ref[m] = c->budget[m] > 0 ? c->budget[m] : E.v[m] > 0 ? E.v[m] : 1;
  free(y), free(a);
  return NAS_OK;
}

/* ---- entry points ------------------------------------------------------------------------ */

int nas_dnas_run(const char *db_path, const nas_dnas_cfg *cfg, const nas_search_hooks *h,
                 nas_search_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  s->best_acc = NAN;
  dnas_ctx c;
  memset(&c, 0, sizeof c);
  c.cfg = *cfg, c.hooks = h, c.sum = s, c.db = db_path;
  int rc = dnas_prepare(&c, e);
  char obj[512];
  if (rc == NAS_OK) nas_objectives_format(&c.obj, obj, sizeof obj);
  if (rc == NAS_OK) rc = nas_store_open(db_path, &c.st, e);
  char *conf = rc == NAS_OK ? dnas_config_json(&c.cfg, obj) : NULL;
  if (rc == NAS_OK) {
    const nas_search_cfg *g = &c.cfg.base;
    nas_run_info info = {.config_json = conf, .strategy = "dnas", .space = g->space,
                         .dataset = g->dataset, .target = g->target ? g->target : g->target_file,
                         .seed = g->seed, .budget = c.n_points, .objectives = obj};
    rc = nas_store_run_create(c.st, &info, &c.run_id, e);
  }
  cJSON_free(conf);
  if (rc == NAS_OK) {
    s->run_id = c.run_id;
    nas_store_event_add(c.st, c.run_id, 0, "run_start", "{}", NULL, e);
    rc = dnas_loop(&c, e);
  }
  dnas_ctx_free(&c);
  return rc;
}

static int find_run(nas_store *st, const char *db_path, int64_t *run_id, nas_err *e) {
  if (*run_id) return NAS_OK;
  int64_t *ids = NULL;
  int n = 0, rc = nas_store_run_ids(st, &ids, &n, e);
  for (int i = n - 1; rc == NAS_OK && i >= 0 && !*run_id; i--) {
    nas_run_row r;
    memset(&r, 0, sizeof r);
    if ((rc = nas_store_run_get(st, ids[i], &r, e)) == NAS_OK && strcmp(r.status, "done"))
      *run_id = ids[i];
    nas_store_run_row_free(&r);
  }
  free(ids);
  if (rc == NAS_OK && !*run_id) rc = nas_errf(e, NAS_EINVAL, "%s: no run to resume", db_path);
  return rc;
}

int nas_dnas_is_dnas_run(const char *db_path, int64_t run_id) {
  FILE *f = fopen(db_path, "rb");
  if (!f) return 0;
  fclose(f);
  nas_store *st = NULL;
  nas_err e = {0};
  int yes = 0;
  if (nas_store_open_readonly(db_path, &st, &e) == NAS_OK && find_run(st, db_path, &run_id, &e) == NAS_OK) {
    nas_run_row r;
    memset(&r, 0, sizeof r);
    if (nas_store_run_get(st, run_id, &r, &e) == NAS_OK) yes = r.strategy && !strcmp(r.strategy, "dnas");
    nas_store_run_row_free(&r);
  }
  nas_store_close(st);
  return yes;
}

int nas_dnas_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                    nas_search_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  s->best_acc = NAN;
  dnas_ctx c;
  memset(&c, 0, sizeof c);
  c.hooks = h, c.sum = s, c.db = db_path;
  FILE *f = fopen(db_path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open the store", db_path);
  fclose(f);
  nas_store *st = NULL;
  int rc = nas_store_open(db_path, &st, e);
  if (rc == NAS_OK) rc = find_run(st, db_path, &run_id, e);
  nas_run_row r;
  memset(&r, 0, sizeof r);
  if (rc == NAS_OK) rc = nas_store_run_get(st, run_id, &r, e);
  if (rc == NAS_OK && !strcmp(r.status, "done"))
    rc = nas_errf(e, NAS_EINVAL, "%s: run %lld is already done", db_path, (long long)run_id);
  if (rc == NAS_OK && strcmp(r.strategy, "dnas"))
    rc = nas_errf(e, NAS_EINVAL, "%s: run %lld is not a DNAS run", db_path, (long long)run_id);
  if (rc == NAS_OK && !(c.owned = cJSON_Parse(r.config_json)))
    rc = nas_errf(e, NAS_EFORMAT, "run %lld: bad configuration JSON", (long long)run_id);
  if (rc == NAS_OK) {
    dnas_config_read(c.owned, &c.cfg);
    if ((rc = dnas_prepare(&c, e)) != NAS_OK) nas_err_prefix(e, "run %lld", (long long)run_id);
  }
  nas_store_run_row_free(&r);
  c.st = st, c.run_id = run_id, s->run_id = run_id;
  if (rc == NAS_OK) rc = nas_store_run_set_status(st, run_id, "running", e);
  if (rc == NAS_OK) {
    nas_store_event_add(st, run_id, 0, "run_resume", "{}", NULL, e);
    rc = dnas_loop(&c, e);
  }
  dnas_ctx_free(&c);
  return rc;
}
