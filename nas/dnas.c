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
#include "core/alloc.h"
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
  c->arch_every = 1;
  c->arch_lr = 0.05;
  c->lr = 0.05;
  c->t0 = 5, c->t1 = 0.5;
  c->sampling = NAS_DNAS_GUMBEL;
  c->w[NAS_COST_SRAM] = 1;
  c->hinge = 5;
}

static const char *const COST_NAMES[] = {"macs", "flash", "sram", "latency"};
_Static_assert(sizeof COST_NAMES / sizeof COST_NAMES[0] == NAS_COST_COUNT, "cost names");

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
  cJSON *j = cJSON_CreateObject();
  nas_search_config_write(j, &c->base, "dnas", objectives);
  cJSON_AddNumberToObject(j, "supernet_epochs", c->sn_epochs);
  cJSON_AddNumberToObject(j, "warmup", c->warmup);
  cJSON_AddNumberToObject(j, "supernet_limit", c->sn_limit);
  cJSON_AddNumberToObject(j, "arch_every", c->arch_every);
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


/* Fills c from stored JSON j (strings point into j, which must outlive c). */
void dnas_config_read(const cJSON *j, nas_dnas_cfg *c) {
  nas_dnas_cfg_default(c);
  nas_search_config_read(j, &c->base);
  c->sn_epochs = (int)nas_config_num(j, "supernet_epochs", c->sn_epochs);
  c->warmup = (int)nas_config_num(j, "warmup", c->warmup);
  c->sn_limit = (int)nas_config_num(j, "supernet_limit", 0);
  c->arch_every = (int)nas_config_num(j, "arch_every", 1);
  c->arch_lr = nas_config_num(j, "arch_lr", c->arch_lr), c->lr = nas_config_num(j, "lr", c->lr);
  c->t0 = nas_config_num(j, "t0", c->t0), c->t1 = nas_config_num(j, "t1", c->t1), c->hinge = nas_config_num(j, "hinge", c->hinge);
  const char *smp = nas_config_str(j, "sampling");
  c->sampling = smp && !strcmp(smp, "softmax") ? NAS_DNAS_SOFTMAX : NAS_DNAS_GUMBEL;
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "cost_weights");
  for (int m = 0; m < NAS_COST_COUNT; m++) c->w[m] = nas_config_num(w, COST_NAMES[m], 0);
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
  int rc = nas_search_check_cfg(g, e);
  if (rc != NAS_OK) return rc;
  if (k->sn_epochs < 1 || k->sn_epochs > 10000)
    return nas_errf(e, NAS_EUSAGE, "supernet epochs %d is out of range 1..10000", k->sn_epochs);
  if (k->sn_limit < 0) return nas_errf(e, NAS_EUSAGE, "supernet limit %d is negative", k->sn_limit);
  if (k->arch_every < 1 || k->arch_every > 1000000)
    return nas_errf(e, NAS_EUSAGE, "arch-every %d is out of range 1..1000000", k->arch_every);
  if (k->warmup < 0 || k->warmup >= k->sn_epochs)
    return nas_errf(e, NAS_EUSAGE, "warm-up %d must be 0..%d (below the supernet epochs)", k->warmup,
                    k->sn_epochs - 1);
  if (!(k->arch_lr > 0 && k->arch_lr < 100) || !(k->lr > 0 && k->lr < 100))
    return nas_errf(e, NAS_EUSAGE, "learning rates must be in (0, 100)");
  if (!(k->t0 > 0) || !(k->t1 > 0)) return nas_errf(e, NAS_EUSAGE, "temperatures must be > 0");
  c->n_points = k->n_sweep ? k->n_sweep : 1;
  g->budget = c->n_points;
  if ((rc = nas_search_objectives(g->objectives, &c->obj, e)) != NAS_OK) return rc;
  if ((rc = nas_supernet_load(g->space, &c->sn, e)) != NAS_OK) return rc;
  if ((rc = nas_space_check(c->sn->space, e)) != NAS_OK) return rc;
  if ((rc = nas_target_open(g->target, g->target_file, &c->t, e)) != NAS_OK) return rc;
  if ((rc = nas_dnas_relax_build(c->sn, c->t, &c->rx, e)) != NAS_OK) return rc;
  /* the supernet must build (this checks every relaxation rule before the run exists) */
  nas_dnas_net *dn = NULL;
  if ((rc = nas_dnas_net_build(c->rx, 1, 1, &dn, e)) != NAS_OK) return rc;
  nas_dnas_net_free(dn);
  if ((rc = nas_search_load_data(g, &c->d, e)) != NAS_OK) return rc;
  if (c->d.val.n < 1)
    return nas_errf(e, NAS_EINVAL, "dataset %s: DNAS needs a validation split", g->dataset);
  if ((rc = nas_search_check_shape(nas_space_name(c->sn->space), c->sn->in_h, c->sn->in_w,
                                   c->sn->in_c, c->sn->classes, g->dataset, &c->d, e)) != NAS_OK)
    return rc;
  /* budgets and reference scales of the cost terms */
  c->budget[NAS_COST_MACS] = (double)g->max_macs, c->budget[NAS_COST_FLASH] = (double)g->max_flash;
  c->budget[NAS_COST_SRAM] = (double)g->max_sram, c->budget[NAS_COST_LATENCY] = g->max_latency_ms;
  double *y = nas_calloc((size_t)c->rx->n_p, sizeof(double)), *a = nas_calloc((size_t)c->rx->n_p, sizeof(double));
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
  if (rc == NAS_OK) {
    nas_objectives_format(&c.obj, obj, sizeof obj);
    char *conf = dnas_config_json(&c.cfg, obj);
    rc = nas_search_create_run(db_path, &c.cfg.base, "dnas", c.n_points, obj, conf, &c.st,
                               &c.run_id, e);
    cJSON_free(conf);
  }
  if (rc == NAS_OK) {
    s->run_id = c.run_id;
    rc = dnas_loop(&c, e);
  }
  dnas_ctx_free(&c);
  return rc;
}

int nas_dnas_is_dnas_run(const char *db_path, int64_t run_id) {
  FILE *f = fopen(db_path, "rb");
  if (!f) return 0;
  fclose(f);
  nas_store *st = NULL;
  nas_err e = {0};
  int yes = 0;
  if (nas_store_open_readonly(db_path, &st, &e) == NAS_OK &&
      nas_search_find_run(st, db_path, &run_id, &e) == NAS_OK) {
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
  nas_store *st = NULL;
  nas_run_row r;
  memset(&r, 0, sizeof r);
  int rc = nas_search_open_resume(db_path, "dnas", &run_id, &st, &r, &c.owned, e);
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
