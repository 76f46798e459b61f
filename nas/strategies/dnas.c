/* nas/strategies/dnas.c: the DNAS strategy (dnas.h): its entry in the strategy table (options,
 * configuration read from and written to the run's JSON, set-up of the supernet and its
 * relaxation, the body that runs the sweep points of dnas_train.c under the run driver,
 * nas/run.h), and the library entry points nas_dnas_run / nas_dnas_resume. Never prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "nas/run.h"
#include "nas/strategies/dnas.h"
#include "nas/strategies/dnas_impl.h"
#include "nas/strategies/strategy.h"

void nas_dnas_cfg_default(nas_dnas_cfg *c) {
  memset(c, 0, sizeof *c);
  nas_search_cfg_default(&c->base);
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

/* ---- options (their special syntax as library functions, nas/option.h apply) ----------- */

int nas_dnas_opt_temperature(const char *text, cJSON *config, nas_err *e) {
  double t0 = 0, t1 = 0;
  int rc = nas_dnas_parse_temperature(text, &t0, &t1, e);
  if (rc != NAS_OK) return rc;
  if (nas_config_set(config, "t0", cJSON_CreateNumber(t0)) ||
      nas_config_set(config, "t1", cJSON_CreateNumber(t1)))
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  return NAS_OK;
}

int nas_dnas_opt_cost_weights(const char *text, cJSON *config, nas_err *e) {
  double w[NAS_COST_COUNT];
  int rc = nas_dnas_parse_weights(text, w, e);
  if (rc != NAS_OK) return rc;
  cJSON *o = cJSON_CreateObject();
  int ok = o != NULL;
  for (int m = 0; ok && m < NAS_COST_COUNT; m++) ok = cJSON_AddNumberToObject(o, COST_NAMES[m], w[m]) != NULL;
  if (!ok) cJSON_Delete(o);
  if (!ok || nas_config_set(config, "cost_weights", o)) return nas_errf(e, NAS_ENOMEM, "out of memory");
  return NAS_OK;
}

int nas_dnas_opt_sweep(const char *text, cJSON *config, nas_err *e) {
  double v[NAS_DNAS_MAX_SWEEP];
  int n = 0;
  int rc = nas_dnas_parse_sweep(text, v, &n, e);
  if (rc != NAS_OK) return rc;
  cJSON *a = cJSON_CreateArray();
  int ok = a != NULL;
  for (int i = 0; ok && i < n; i++) {
    cJSON *x = cJSON_CreateNumber(v[i]);
    ok = x && cJSON_AddItemToArray(a, x);
    if (!ok) cJSON_Delete(x);
  }
  if (!ok) cJSON_Delete(a);
  if (!ok || nas_config_set(config, "sweep", a)) return nas_errf(e, NAS_ENOMEM, "out of memory");
  return NAS_OK;
}

static const nas_opt OPTIONS[] = {
    {"--supernet-epochs", NAS_OPT_INT, "E", 1, 10000, .help = "supernet training epochs per sweep point (8)",
     .key = "supernet_epochs"},
    {"--warmup", NAS_OPT_INT, "E", 0, 10000, .help = "of those, epochs with the architecture fixed (2)",
     .key = "warmup"},
    {"--supernet-limit", NAS_OPT_INT, "N", 1, 2147483647,
     .help = "the supernet trains on the first N training samples (all);\n"
             "the extracted candidates are retrained on all of them",
     .key = "supernet_limit"},
    {"--arch-every", NAS_OPT_INT, "K", 1, 1000000,
     .help = "one architecture step after every K-th weight step (1)", .key = "arch_every"},
    {"--arch-lr", NAS_OPT_NUM, "X", 1e-9, 100, .help = "Adam learning rate of the architecture logits (0.05)",
     .key = "arch_lr"},
    {"--lr", NAS_OPT_NUM, "X", 1e-9, 100, .help = "SGD learning rate of the supernet weights (0.05)", .key = "lr"},
    {"--temperature", NAS_OPT_STR, "T0[:T1]", .help = "softmax temperature, annealed geometrically (5:0.5)",
     .key = "t0", .apply = nas_dnas_opt_temperature},
    {"--sampling", NAS_OPT_ENUM, "NAME", .choices = "gumbel|softmax", .help = "gumbel | softmax relaxation (gumbel)",
     .key = "sampling"},
    {"--cost-weights", NAS_OPT_STR, "LIST", .help = "macs=..,flash=..,sram=..,latency=.. (sram=1)",
     .key = "cost_weights", .apply = nas_dnas_opt_cost_weights},
    {"--hinge", NAS_OPT_NUM, "X", 0, 1e9, .help = "weight of the over-budget penalty (5)", .key = "hinge"},
    {"--sweep", NAS_OPT_STR, "LIST", .help = "multipliers of the cost weights, one candidate each (1)",
     .key = "sweep", .apply = nas_dnas_opt_sweep},
    {0}};

/* ---- configuration as JSON (stored with the run, read back on resume) -------------------- */

/* Appends the DNAS keys of c to j (after the common ones); -1 when out of memory. */
static int write_keys(const nas_dnas_cfg *c, cJSON *j) {
  int ok = cJSON_AddNumberToObject(j, "supernet_epochs", c->sn_epochs) != NULL;
  ok &= cJSON_AddNumberToObject(j, "warmup", c->warmup) != NULL;
  ok &= cJSON_AddNumberToObject(j, "supernet_limit", c->sn_limit) != NULL;
  ok &= cJSON_AddNumberToObject(j, "arch_every", c->arch_every) != NULL;
  ok &= cJSON_AddNumberToObject(j, "arch_lr", c->arch_lr) != NULL;
  ok &= cJSON_AddNumberToObject(j, "lr", c->lr) != NULL;
  ok &= cJSON_AddNumberToObject(j, "t0", c->t0) != NULL;
  ok &= cJSON_AddNumberToObject(j, "t1", c->t1) != NULL;
  ok &= cJSON_AddStringToObject(j, "sampling", c->sampling == NAS_DNAS_GUMBEL ? "gumbel" : "softmax") != NULL;
  ok &= cJSON_AddNumberToObject(j, "hinge", c->hinge) != NULL;
  cJSON *w = cJSON_AddObjectToObject(j, "cost_weights");
  ok &= w != NULL;
  for (int m = 0; ok && m < NAS_COST_COUNT; m++) ok = cJSON_AddNumberToObject(w, COST_NAMES[m], c->w[m]) != NULL;
  cJSON *sw = cJSON_AddArrayToObject(j, "sweep");
  ok &= sw != NULL;
  for (int i = 0; ok && i < c->n_sweep; i++) {
    cJSON *x = cJSON_CreateNumber(c->sweep[i]);
    ok = x && cJSON_AddItemToArray(sw, x);
    if (!ok) cJSON_Delete(x);
  }
  return ok ? 0 : -1;
}

/* Fills c's DNAS fields from j; absent keys keep their defaults. */
static void read_keys(const cJSON *j, nas_dnas_cfg *c) {
  nas_dnas_cfg_default(c);
  c->sn_epochs = (int)nas_config_num(j, "supernet_epochs", c->sn_epochs);
  c->warmup = (int)nas_config_num(j, "warmup", c->warmup);
  c->sn_limit = (int)nas_config_num(j, "supernet_limit", 0);
  c->arch_every = (int)nas_config_num(j, "arch_every", 1);
  c->arch_lr = nas_config_num(j, "arch_lr", c->arch_lr), c->lr = nas_config_num(j, "lr", c->lr);
  c->t0 = nas_config_num(j, "t0", c->t0), c->t1 = nas_config_num(j, "t1", c->t1);
  c->hinge = nas_config_num(j, "hinge", c->hinge);
  const char *smp = nas_config_str(j, "sampling");
  c->sampling = smp && !strcmp(smp, "softmax") ? NAS_DNAS_SOFTMAX : NAS_DNAS_GUMBEL;
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "cost_weights");
  if (cJSON_IsObject(w))
    for (int m = 0; m < NAS_COST_COUNT; m++) c->w[m] = nas_config_num(w, COST_NAMES[m], 0);
  const cJSON *sw = cJSON_GetObjectItemCaseSensitive(j, "sweep"), *it;
  c->n_sweep = 0;
  cJSON_ArrayForEach(it, sw) if (c->n_sweep < NAS_DNAS_MAX_SWEEP && cJSON_IsNumber(it))
      c->sweep[c->n_sweep++] = it->valuedouble;
}

/* ---- the strategy ------------------------------------------------------------------------ */

static int configure(nas_run *r, const cJSON *config, nas_err *e) {
  dnas_ctx *c = nas_calloc(1, sizeof *c);
  if (!c) return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  r->state = c;
  c->run = r, c->db = r->db_path, c->hooks = r->hooks;
  nas_dnas_cfg *k = &c->cfg;
  read_keys(config, k);
  if (k->sn_epochs < 1 || k->sn_epochs > 10000)
    return nas_errf(e, NAS_EUSAGE, "supernet epochs %d is out of range 1..10000", k->sn_epochs);
  if (k->sn_limit < 0) return nas_errf(e, NAS_EUSAGE, "supernet limit %d is negative", k->sn_limit);
  if (k->arch_every < 1 || k->arch_every > 1000000)
    return nas_errf(e, NAS_EUSAGE, "arch-every %d is out of range 1..1000000", k->arch_every);
  if (k->warmup < 0 || k->warmup >= k->sn_epochs)
    return nas_errf(e, NAS_EUSAGE, "--warmup %d must be below --supernet-epochs %d", k->warmup,
                    k->sn_epochs);
  if (!(k->arch_lr > 0 && k->arch_lr < 100) || !(k->lr > 0 && k->lr < 100))
    return nas_errf(e, NAS_EUSAGE, "learning rates must be in (0, 100)");
  if (!(k->t0 > 0) || !(k->t1 > 0)) return nas_errf(e, NAS_EUSAGE, "temperatures must be > 0");
  c->n_points = k->n_sweep ? k->n_sweep : 1;
  r->cfg.budget = c->n_points; /* one candidate per sweep point */
  return NAS_OK;
}

static int save(const nas_run *r, cJSON *config) { return write_keys(&((const dnas_ctx *)r->state)->cfg, config); }

static void release(nas_run *r) {
  dnas_ctx *c = r->state;
  if (!c) return;
  nas_dnas_relax_free(c->rx);
  nas_supernet_free(c->sn);
  free(c);
  r->state = NULL;
}

/* The supernet and its relaxation (every relaxation rule is checked before the run exists),
 * the validation split, and the budgets and reference scales of the cost terms. */
static int prepare(nas_run *r, nas_err *e) {
  dnas_ctx *c = r->state;
  c->cfg.base = r->cfg;
  c->t = r->t, c->d = &r->d;
  const nas_search_cfg *g = &c->cfg.base;
  int rc = nas_supernet_load(g->space, &c->sn, e);
  if (rc == NAS_OK) rc = nas_dnas_relax_build(c->sn, c->t, &c->rx, e);
  nas_dnas_net *dn = NULL;
  if (rc == NAS_OK) rc = nas_dnas_net_build(c->rx, 1, 1, &dn, e);
  nas_dnas_net_free(dn);
  if (rc != NAS_OK) return rc;
  if (c->d->val.n < 1)
    return nas_errf(e, NAS_EINVAL, "dataset %s: DNAS needs a validation split", g->dataset);
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

static int body(nas_run *r, int *stopped, nas_err *e) {
  dnas_ctx *c = r->state;
  c->st = r->st, c->run_id = r->run_id;
  /* a new run's checkpoint files cannot exist yet: any found are another store's (of the same
   * path, deleted), whose supernets would be taken for this run's */
  if (r->fresh && dnas_ckpt_clear(c, e) != NAS_OK) return e->code;
  return dnas_points(c, stopped, e);
}

const nas_strategy nas_strategy_dnas = {
    .name = "dnas",
    .summary = "differentiable (MicroNets-style) supernet search",
    .help = "Differentiable search (MicroNets-style DNAS): trains one supernet whose width, kernel,\n"
            "depth and op choices are relaxed into architecture logits, with expected MACs, flash,\n"
            "peak SRAM and latency in the loss; then extracts the argmax architecture, checks it\n"
            "with the exact cost model (repairing it when over budget), retrains it from scratch\n"
            "(--epochs), quantises it and stores it as a candidate. One candidate per --sweep point.\n",
    .options = OPTIONS,
    .unit = "point",
    .configure = configure,
    .save = save,
    .prepare = prepare,
    .body = body,
    .release = release,
};

/* ---- entry points ------------------------------------------------------------------------ */

int nas_dnas_run(const char *db_path, const nas_dnas_cfg *cfg, const nas_search_hooks *h,
                 nas_search_summary *s, nas_err *e) {
  cJSON *j = cJSON_CreateObject();
  if (!j) {
    memset(s, 0, sizeof *s);
    return nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  }
  int rc = NAS_OK;
  if (nas_search_config_write(j, &cfg->base, "dnas", cfg->base.objectives) || write_keys(cfg, j)) {
    memset(s, 0, sizeof *s);
    rc = nas_errf(e, NAS_ENOMEM, "dnas: out of memory");
  }
  if (rc == NAS_OK) rc = nas_run_start(db_path, &nas_strategy_dnas, j, h, s, e);
  cJSON_Delete(j);
  return rc;
}

int nas_dnas_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                    nas_search_summary *s, nas_err *e) {
  return nas_run_resume(db_path, &nas_strategy_dnas, run_id, h, s, e);
}
