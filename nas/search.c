/* nas/search.c: the search run loop, random and aging-evolution proposals, resume by replay
 * (see nas/search.h). Never prints: progress goes through the hooks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "latency/cost.h"
#include "core/alloc.h"
#include "results/store.h"

#include "datasets/dataset.h"
#include "deploy/lower.h"
#include "latency/target.h"
#include "nas/search.h"
#include "nas/search_impl.h"
#include "results/pareto.h"
#include "search_spaces/space.h"
#include "train/net.h"
#include "train/quant.h"
#include "train/trainer.h"

#define PROPOSE_TRIES 1000 /* draws before a space is considered exhausted */
#define MUTATE_TRIES 50    /* mutations of one parent before falling back to sampling */

/* The strategies this loop knows; propose() dispatches on the name. */
static const char *const STRATEGIES[] = {"random", "evolution", NULL};

void nas_search_cfg_default(nas_search_cfg *c) {
  memset(c, 0, sizeof *c);
  c->strategy = "random";
  c->budget = 20;
  c->epochs = 1;
  c->batch = 128;
  c->population = 8;
  c->sample_size = 3;
  c->calib_samples = 1000;
  c->seed = 1;
  c->objectives = "acc_int8_test:max,latency_pred_ms:min";
}

int nas_parse_size(const char *text, long long *out) {
  if (!text || !*text) return -1;
  char *end;
  double v = strtod(text, &end);
  if (end == text || !(v >= 0)) return -1;
  double mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1024, end++;
  else if (*end == 'M' || *end == 'm') mul = 1024.0 * 1024, end++;
  else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, end++;
  if (*end == 'B' || *end == 'b') end++;
  if (*end) return -1;
  v *= mul;
  if (v > 9e18) return -1;
  *out = (long long)llround(v);
  return 0;
}

int nas_objectives_expand(const char *spec, char *out, int cap, nas_err *e) {
  static const char *const alias[][2] = {
      {"acc_int8", "acc_int8_test"},     {"accuracy", "acc_int8_test"},
      {"acc", "acc_int8_test"},          {"acc_float", "acc_float_test"},
      {"latency_ms", "latency_pred_ms"}, {"latency", "latency_pred_ms"},
      {"sram", "peak_sram_bytes"},       {"peak_sram", "peak_sram_bytes"},
      {"flash", "flash_bytes"}};
  if (!spec || !*spec) return nas_errf(e, NAS_EINVAL, "objectives: empty list");
  char buf[512];
  snprintf(buf, sizeof buf, "%s", spec);
  int len = 0;
  out[0] = 0;
  char *save = NULL;
  for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
    while (*it == ' ') it++;
    char *colon = strchr(it, ':');
    if (!colon) return nas_errf(e, NAS_EINVAL, "objectives: '%s' lacks ':max' or ':min'", it);
    *colon = 0;
    char *end = colon - 1;
    while (end > it && *end == ' ') *end-- = 0;
    const char *name = it;
    for (size_t a = 0; a < sizeof alias / sizeof alias[0]; a++)
      if (!strcmp(name, alias[a][0])) name = alias[a][1];
    int w = snprintf(out + len, (size_t)(cap - len), "%s%s:%s", len ? "," : "", name, colon + 1);
    if (w < 0 || len + w >= cap) return nas_errf(e, NAS_EINVAL, "objectives: list too long");
    len += w;
  }
  return NAS_OK;
}


static void ctx_free(ctx *c) {
  for (int i = 0; i < c->n; i++) free(c->h[i].d);
  free(c->h);
  nas_store_close(c->st);
  nas_data_free(&c->d);
  nas_target_free(c->t);
  nas_space_free(c->sp);
  cJSON_Delete(c->owned);
}

int search_stopping(const ctx *c) { return c->hooks && c->hooks->stop && *c->hooks->stop; }

void search_report(ctx *c, int k, int of, const hist *x, const char *reason, int retrain_epochs) {
  double best = NAN;
  int64_t best_id = 0;
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->h[i].state, "done") && isfinite(c->h[i].m.acc_int8_test) &&
        (best_id == 0 || c->h[i].m.acc_int8_test > best))
      best = c->h[i].m.acc_int8_test, best_id = c->h[i].id;
  c->sum->best_acc = best, c->sum->best_id = best_id;
  if (!c->hooks || !c->hooks->progress) return;
  nas_search_progress p = {.k = k + 1, .budget = of, .run_id = c->run_id,
                           .cand_id = x->id, .state = x->state, .reason = reason,
                           .acc_int8 = x->m.acc_int8_test, .acc_float = x->m.acc_float_test,
                           .latency_ms = x->m.latency_pred_ms, .peak_sram = x->m.peak_sram_bytes,
                           .flash = x->m.flash_bytes, .macs = x->m.macs,
                           .train_seconds = x->m.train_seconds, .best_acc = best,
                           .best_id = best_id, .retrain_epochs = retrain_epochs};
  c->hooks->progress(&p, c->hooks->user);
}

static int is_dup(const ctx *c, int k, const char *hash) {
  for (int i = 0; i < k; i++)
    if (!strcmp(c->h[i].hash, hash)) return 1;
  return 0;
}

/* Materialises d and hashes it; *arch malloc'd. */
static int arch_of(const ctx *c, const int *d, char **arch, char hash[17], nas_err *e) {
  int rc = nas_space_materialize(c->sp, d, arch, e);
  if (rc == NAS_OK) rc = nas_arch_hash_hex(*arch, hash, e);
  if (rc != NAS_OK) free(*arch), *arch = NULL;
  return rc;
}

/* Evolution: index (into h) of the tournament winner among the last P done candidates, or
 * -1 when fewer than P exist. */
static int pick_parent(const ctx *c, int k, nas_rng *r) {
  int P = c->cfg.population, m = c->obj.n;
  int *pop = nas_malloc(sizeof(int) * (size_t)P);
  int np = 0;
  for (int i = k - 1; i >= 0 && np < P; i--) {
    if (strcmp(c->h[i].state, "done")) continue;
    int ok = 1;
    nas_metrics mm = c->h[i].m;
    for (int j = 0; j < m; j++) ok &= isfinite(*nas_metrics_at(&mm, c->obj.metric[j])) != 0;
    if (ok) pop[np++] = i;
  }
  if (np < P) return free(pop), -1;
  double *pts = nas_malloc(sizeof(double) * (size_t)(P * m));
  int *rank = nas_malloc(sizeof(int) * (size_t)P), *idx = nas_malloc(sizeof(int) * (size_t)P);
  double *crowd = nas_malloc(sizeof(double) * (size_t)P), *dist = nas_malloc(sizeof(double) * (size_t)P);
  for (int i = 0; i < P; i++) {
    nas_metrics mm = c->h[pop[i]].m;
    for (int j = 0; j < m; j++) pts[i * m + j] = *nas_metrics_at(&mm, c->obj.metric[j]);
  }
  int fronts = nas_pareto_ranks(pts, P, m, c->obj.maximize, rank);
  for (int f = 0; f < fronts; f++) {
    int kk = 0;
    for (int i = 0; i < P; i++)
      if (rank[i] == f) idx[kk++] = i;
    nas_pareto_crowding(pts, m, idx, kk, dist);
    for (int j = 0; j < kk; j++) crowd[idx[j]] = dist[j];
  }
  int best = -1;
  for (int s = 0; s < c->cfg.sample_size; s++) {
    int i = (int)nas_rng_below(r, (uint32_t)P);
    if (best < 0 || rank[i] < rank[best] || (rank[i] == rank[best] && crowd[i] > crowd[best]) ||
        (rank[i] == rank[best] && crowd[i] == crowd[best] && pop[i] < pop[best]))
      best = i;
  }
  int winner = pop[best];
  free(pts), free(rank), free(idx), free(crowd), free(dist), free(pop);
  return winner;
}

/* Proposal of candidate k from the history h[0..k): d, arch (malloc'd), hash, parent, gen.
 * *found = 0 when the space seems exhausted. */
static int propose(ctx *c, int k, int *d, char **arch, char hash[17], int64_t *parent, int *gen,
                   int *found, nas_err *e) {
  nas_rng r;
  nas_rng_seed(&r, nas_seed_mix(c->cfg.seed, (uint64_t)k, 0x5EA7C4ull));
  *found = 0, *parent = 0, *gen = 0, *arch = NULL;
  if (!strcmp(c->cfg.strategy, "evolution")) {
    int p = pick_parent(c, k, &r);
    if (p >= 0) {
      for (int t = 0; t < MUTATE_TRIES; t++) {
        int rc = nas_space_mutate(c->sp, &r, c->h[p].d, d, NULL, e);
        if (rc == NAS_OK) rc = arch_of(c, d, arch, hash, e);
        if (rc != NAS_OK) return rc;
        if (!is_dup(c, k, hash)) {
          *found = 1, *parent = c->h[p].id, *gen = c->h[p].generation + 1;
          return NAS_OK;
        }
        free(*arch), *arch = NULL;
      }
    }
  }
  for (int t = 0; t < PROPOSE_TRIES; t++) {
    nas_space_sample(c->sp, &r, d);
    int rc = arch_of(c, d, arch, hash, e);
    if (rc != NAS_OK) return rc;
    if (!is_dup(c, k, hash)) return *found = 1, NAS_OK;
    free(*arch), *arch = NULL;
  }
  return NAS_OK;
}

static int set_state(ctx *c, int k, const char *state, const char *reason, nas_err *e) {
  int rc = nas_store_candidate_set_state(c->st, c->h[k].id, state, reason, e);
  if (rc == NAS_OK) snprintf(c->h[k].state, sizeof c->h[k].state, "%s", state);
  search_report(c, k, c->cfg.budget, &c->h[k], reason, 0);
  return rc;
}

/* Prices, checks constraints, trains, quantises and evaluates candidate k (state proposed).
 * *stopped = 1 when it was left proposed because of a stop request. */
static int process(ctx *c, int k, const char *arch, int *stopped, nas_err *e) {
  hist *x = &c->h[k];
  nas_metrics_clear(&x->m);
  char reason[600];
  const nas_search_cfg *g = &c->cfg;
  int rc = nas_search_price_candidate(c->st, x->id, arch, c->t, g, &x->m, reason, e);
  if (rc != NAS_OK) return rc;
  if (reason[0]) return set_state(c, k, "rejected", reason, e);
  if (search_stopping(c)) return *stopped = 1, NAS_OK; /* stays proposed; resume trains it */
  if ((rc = set_state(c, k, "training", NULL, e)) != NAS_OK) return rc;

  uint64_t tseed = nas_seed_mix(g->seed, (uint64_t)k, 0x7EA1ull);
  rc = search_train_store(c, x, arch, g->epochs, g->eval_limit, tseed, reason, e);
  if (rc == NAS_OK) search_report(c, k, g->budget, x, reason[0] ? reason : NULL, 0);
  return rc;
}

static hist *push(ctx *c) {
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 64;
    hist *h = nas_realloc(c->h, sizeof *h * (size_t)cap);
    if (!h) return NULL;
    c->h = h, c->cap = cap;
  }
  hist *x = &c->h[c->n];
  memset(x, 0, sizeof *x);
  x->d = nas_calloc((size_t)(c->nd ? c->nd : 1), sizeof(int));
  if (!x->d) return NULL;
  c->n++;
  return x;
}

/* Replays the stored candidates, then proposes and processes up to the budget. */
static int loop(ctx *c, nas_err *e) {
  int64_t *ids = NULL;
  int nids = 0, rc = nas_store_search_candidate_ids(c->st, c->run_id, NULL, &ids, &nids, e);
  if (rc != NAS_OK) return rc;
  int *d = nas_calloc((size_t)(c->nd ? c->nd : 1), sizeof(int));
  int pending = -1; /* a stored candidate that is not final yet */
  char *pending_arch = NULL;
  for (int k = 0; rc == NAS_OK && k < nids; k++) {
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    if ((rc = nas_store_candidate_get(c->st, ids[k], &row, e)) != NAS_OK) break;
    char *arch = NULL, hash[17];
    int64_t parent;
    int gen, found;
    rc = propose(c, k, d, &arch, hash, &parent, &gen, &found, e);
    if (rc == NAS_OK && (!found || strcmp(hash, row.arch_hash)))
      rc = nas_errf(e, NAS_EFORMAT,
                    "run %lld: candidate %lld (#%d) does not match the replayed proposal (the "
                    "space, seed or build changed)", (long long)c->run_id, (long long)ids[k], k + 1);
    hist *x = rc == NAS_OK ? push(c) : NULL;
    if (rc == NAS_OK && !x) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    if (rc == NAS_OK) {
      x->id = row.id, x->generation = row.generation, x->m = row.m;
      snprintf(x->hash, sizeof x->hash, "%s", row.arch_hash);
      snprintf(x->state, sizeof x->state, "%s", row.state);
      memcpy(x->d, d, sizeof(int) * (size_t)c->nd);
      if (!strcmp(row.state, "training"))
        rc = nas_store_candidate_set_state(c->st, row.id, "proposed", NULL, e),
        snprintf(x->state, sizeof x->state, "proposed");
      if (!strcmp(x->state, "proposed")) {
        if (pending >= 0)
          rc = nas_errf(e, NAS_EFORMAT, "run %lld: two unfinished candidates", (long long)c->run_id);
        pending = k, free(pending_arch), pending_arch = arch, arch = NULL;
      } else if (pending >= 0) {
        rc = nas_errf(e, NAS_EFORMAT, "run %lld: unfinished candidate before a finished one",
                      (long long)c->run_id);
      }
    }
    free(arch);
    nas_store_candidate_row_free(&row);
  }
  free(ids);
  int stopped = 0;
  if (rc == NAS_OK && pending >= 0) {
    if (search_stopping(c)) stopped = 1;
    else rc = process(c, pending, pending_arch, &stopped, e);
  }
  free(pending_arch);
  for (int k = c->n; rc == NAS_OK && !stopped && k < c->cfg.budget; k++) {
    if (search_stopping(c)) {
      stopped = 1;
      break;
    }
    char *arch = NULL, hash[17];
    int64_t parent, id;
    int gen, found, existed = 0;
    rc = propose(c, k, d, &arch, hash, &parent, &gen, &found, e);
    if (rc != NAS_OK) break;
    if (!found) {
      c->sum->exhausted = 1;
      break;
    }
    rc = nas_store_candidate_add(c->st, c->run_id, arch, hash, parent, gen, &id, &existed, e);
    if (rc == NAS_OK && existed)
      rc = nas_errf(e, NAS_EFORMAT, "run %lld: candidate %s already stored", (long long)c->run_id, hash);
    hist *x = rc == NAS_OK ? push(c) : NULL;
    if (rc == NAS_OK && !x) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    if (rc == NAS_OK) {
      x->id = id, x->generation = gen;
      nas_metrics_clear(&x->m);
      snprintf(x->hash, sizeof x->hash, "%s", hash);
      snprintf(x->state, sizeof x->state, "proposed");
      memcpy(x->d, d, sizeof(int) * (size_t)c->nd);
      search_report(c, k, c->cfg.budget, x, NULL, 0);
      rc = process(c, k, arch, &stopped, e);
    }
    free(arch);
  }
  free(d);
  if (rc == NAS_OK && !stopped) rc = search_retrain_front(c, &stopped, e);
  c->sum->interrupted = stopped;
  c->sum->candidates = c->n;
  for (int i = 0; i < c->n; i++) {
    c->sum->done += !strcmp(c->h[i].state, "done");
    c->sum->rejected += !strcmp(c->h[i].state, "rejected");
    c->sum->failed += !strcmp(c->h[i].state, "failed");
  }
  nas_err e2 = {0};
  const char *status = rc != NAS_OK ? "failed" : stopped ? "interrupted" : "done";
  /* a store failure (e.g. disk full) leaves the run resumable rather than failed */
  if (rc != NAS_OK) status = "interrupted";
  char payload[128];
  snprintf(payload, sizeof payload, "{\"candidates\":%d,\"done\":%d}", c->n, c->sum->done);
  nas_store_event_add(c->st, c->run_id, 0, stopped ? "interrupt" : rc ? "error" : "run_done",
                      payload, NULL, &e2);
  int rc2 = nas_store_run_set_status(c->st, c->run_id, status, &e2);
  if (rc == NAS_OK && rc2 != NAS_OK) *e = e2, rc = rc2;
  return rc;
}

/* ---- run setup shared by the strategies (search.h) ------------------------------------ */

int nas_search_check_cfg(const nas_search_cfg *g, nas_err *e) {
  if (!g->space) return nas_errf(e, NAS_EUSAGE, "no search space given");
  if (!g->dataset) return nas_errf(e, NAS_EUSAGE, "no dataset given");
  if (!g->target && !g->target_file) return nas_errf(e, NAS_EUSAGE, "no target given");
  if (g->epochs < 1 || g->epochs > 100000)
    return nas_errf(e, NAS_EUSAGE, "epochs %d is out of range 1..100000", g->epochs);
  if (g->batch < 1 || g->batch > 65536)
    return nas_errf(e, NAS_EUSAGE, "batch %d is out of range 1..65536", g->batch);
  if (g->max_sram < 0 || g->max_flash < 0 || g->max_macs < 0 || !(g->max_latency_ms >= 0))
    return nas_errf(e, NAS_EUSAGE, "a constraint is negative");
  if (g->train_limit < 0) return nas_errf(e, NAS_EUSAGE, "train limit is negative");
  if (g->eval_limit < 0) return nas_errf(e, NAS_EUSAGE, "eval limit is negative");
  if (g->calib_samples < 1)
    return nas_errf(e, NAS_EUSAGE, "calibration samples %d must be at least 1", g->calib_samples);
  return NAS_OK;
}

int nas_search_objectives(const char *spec, nas_objectives *obj, nas_err *e) {
  char buf[512];
  int rc = nas_objectives_expand(spec, buf, sizeof buf, e);
  if (rc == NAS_OK) rc = nas_objectives_parse(buf, obj, e);
  if (rc != NAS_OK) {
    nas_err_prefix(e, "option --objectives");
    if (e) e->code = NAS_EUSAGE;
    return NAS_EUSAGE;
  }
  return NAS_OK;
}

int nas_search_load_data(const nas_search_cfg *g, nas_data *d, nas_err *e) {
  nas_data_opts o;
  nas_data_opts_default(&o, g->dataset);
  o.train_limit = g->train_limit;
  return nas_data_load(&o, d, e);
}

int nas_search_check_shape(const char *space_name, int h, int w, int c, int classes,
                           const char *dataset, const nas_data *d, nas_err *e) {
  if (h == d->train.h && w == d->train.w && c == d->train.c && classes >= d->train.classes)
    return NAS_OK;
  return nas_errf(e, NAS_EINVAL,
                  "space %s expects input %dx%dx%d with %d classes, dataset %s has %dx%dx%d with "
                  "%d classes", space_name, h, w, c, classes, dataset, d->train.h, d->train.w,
                  d->train.c, d->train.classes);
}

void nas_search_config_write(cJSON *j, const nas_search_cfg *g, const char *strategy,
                             const char *objectives) {
  cJSON_AddStringToObject(j, "space", g->space);
  cJSON_AddStringToObject(j, "strategy", strategy);
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
  cJSON_AddStringToObject(j, "seed", seed); /* text: a double cannot hold every uint64 */
  cJSON_AddStringToObject(j, "objectives", objectives);
  cJSON_AddNumberToObject(j, "eval_limit", g->eval_limit);
  cJSON_AddNumberToObject(j, "calib_samples", g->calib_samples);
}

const char *nas_config_str(const cJSON *j, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
double nas_config_num(const cJSON *j, const char *k, double def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
  return cJSON_IsNumber(v) ? v->valuedouble : def;
}

void nas_search_config_read(const cJSON *j, nas_search_cfg *g) {
  g->space = nas_config_str(j, "space"), g->dataset = nas_config_str(j, "dataset");
  g->target = nas_config_str(j, "target"), g->target_file = nas_config_str(j, "target_file");
  g->max_sram = (long long)nas_config_num(j, "max_sram", 0), g->max_flash = (long long)nas_config_num(j, "max_flash", 0);
  g->max_macs = (long long)nas_config_num(j, "max_macs", 0), g->max_latency_ms = nas_config_num(j, "max_latency_ms", 0);
  g->budget = (int)nas_config_num(j, "budget", g->budget), g->epochs = (int)nas_config_num(j, "epochs", g->epochs);
  g->batch = (int)nas_config_num(j, "batch", g->batch), g->train_limit = (int)nas_config_num(j, "train_limit", 0);
  const char *sd = nas_config_str(j, "seed");
  if (sd) g->seed = strtoull(sd, NULL, 10);
  if (nas_config_str(j, "objectives")) g->objectives = nas_config_str(j, "objectives");
  g->eval_limit = (int)nas_config_num(j, "eval_limit", 0);
  g->calib_samples = (int)nas_config_num(j, "calib_samples", 1000); /* runs before it: 1000 */
}

int nas_search_create_run(const char *db_path, const nas_search_cfg *g, const char *strategy,
                          int budget, const char *objectives, const char *config_json,
                          nas_store **st, int64_t *run_id, nas_err *e) {
  int rc = nas_store_open(db_path, st, e);
  if (rc == NAS_OK) {
    nas_run_info info = {.config_json = config_json, .strategy = strategy, .space = g->space,
                         .dataset = g->dataset, .target = g->target ? g->target : g->target_file,
                         .seed = g->seed, .budget = budget, .objectives = objectives};
    rc = nas_store_run_create(*st, &info, run_id, e);
  }
  if (rc == NAS_OK) nas_store_event_add(*st, *run_id, 0, "run_start", "{}", NULL, e);
  return rc;
}

int nas_search_find_run(nas_store *st, const char *db_path, int64_t *run_id, nas_err *e) {
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

int nas_search_open_resume(const char *db_path, const char *strategy, int64_t *run_id,
                           nas_store **st, nas_run_row *r, cJSON **config, nas_err *e) {
  /* the store must exist: resuming never creates one */
  FILE *f = fopen(db_path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open the store", db_path);
  fclose(f);
  int rc = nas_store_open(db_path, st, e);
  if (rc == NAS_OK) rc = nas_search_find_run(*st, db_path, run_id, e);
  if (rc == NAS_OK) rc = nas_store_run_get(*st, *run_id, r, e);
  if (rc == NAS_OK && !strcmp(r->status, "done"))
    rc = nas_errf(e, NAS_EINVAL, "%s: run %lld is already done", db_path, (long long)*run_id);
  if (rc == NAS_OK && strategy && strcmp(r->strategy, strategy))
    rc = nas_errf(e, NAS_EINVAL, "%s: run %lld is not a %s run", db_path, (long long)*run_id,
                  !strcmp(strategy, "dnas") ? "DNAS" : strategy);
  if (rc == NAS_OK && !(*config = cJSON_Parse(r->config_json)))
    rc = nas_errf(e, NAS_EFORMAT, "run %lld: bad configuration JSON", (long long)*run_id);
  return rc;
}

/* Loads and validates everything a run needs (no store access). */
static int prepare(ctx *c, nas_err *e) {
  nas_search_cfg *g = &c->cfg;
  int known = 0;
  for (int i = 0; g->strategy && STRATEGIES[i]; i++) known |= !strcmp(g->strategy, STRATEGIES[i]);
  if (!known)
    return nas_errf(e, NAS_EUSAGE, "unknown strategy '%s' (random, evolution)",
                    g->strategy ? g->strategy : "");
  int rc = nas_search_check_cfg(g, e);
  if (rc != NAS_OK) return rc;
  if (g->budget < 1 || g->budget > 1000000)
    return nas_errf(e, NAS_EUSAGE, "budget %d is out of range 1..1000000", g->budget);
  if (g->population < 2 || g->population > 100000)
    return nas_errf(e, NAS_EUSAGE, "population %d is out of range 2..100000", g->population);
  if (g->sample_size < 1 || g->sample_size > g->population)
    return nas_errf(e, NAS_EUSAGE, "sample size %d is out of range 1..%d", g->sample_size,
                    g->population);
  if (g->retrain_epochs < 0 || g->retrain_epochs > 100000)
    return nas_errf(e, NAS_EUSAGE, "retrain epochs %d is out of range 0..100000", g->retrain_epochs);
  if ((rc = nas_search_objectives(g->objectives, &c->obj, e)) != NAS_OK) return rc;
  if ((rc = nas_space_load(g->space, &c->sp, e)) != NAS_OK) return rc;
  if ((rc = nas_space_check(c->sp, e)) != NAS_OK) return rc;
  c->nd = nas_space_n_decisions(c->sp);
  if ((rc = nas_target_open(g->target, g->target_file, &c->t, e)) != NAS_OK) return rc;
  if ((rc = nas_search_load_data(g, &c->d, e)) != NAS_OK) return rc;
  /* the space's input shape and classes must be the dataset's */
  int *d = nas_calloc((size_t)(c->nd ? c->nd : 1), sizeof(int));
  char *arch = NULL;
  nas_net *net = NULL;
  rc = d ? nas_space_materialize(c->sp, d, &arch, e) : nas_errf(e, NAS_ENOMEM, "out of memory");
  if (rc == NAS_OK) rc = nas_net_build(arch, nas_space_name(c->sp), 1, 1, &net, e);
  if (rc == NAS_OK)
    rc = nas_search_check_shape(nas_space_name(c->sp), net->in_h, net->in_w, net->in_c,
                                net->classes, g->dataset, &c->d, e);
  nas_net_free(net);
  free(arch), free(d);
  return rc;
}

static char *config_json(const nas_search_cfg *g, const char *objectives) {
  cJSON *j = cJSON_CreateObject();
  nas_search_config_write(j, g, g->strategy, objectives);
  cJSON_AddNumberToObject(j, "population", g->population);
  cJSON_AddNumberToObject(j, "sample_size", g->sample_size);
  cJSON_AddNumberToObject(j, "retrain_epochs", g->retrain_epochs);
  char *t = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return t;
}

int nas_search_run(const char *db_path, const nas_search_cfg *cfg, const nas_search_hooks *h,
                   nas_search_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  s->best_acc = NAN;
  ctx c;
  memset(&c, 0, sizeof c);
  c.cfg = *cfg, c.hooks = h, c.sum = s;
  int rc = prepare(&c, e);
  char obj[512];
  if (rc == NAS_OK) {
    nas_objectives_format(&c.obj, obj, sizeof obj);
    char *conf = config_json(cfg, obj);
    rc = nas_search_create_run(db_path, cfg, cfg->strategy, cfg->budget, obj, conf, &c.st,
                               &c.run_id, e);
    cJSON_free(conf);
  }
  if (rc == NAS_OK) {
    s->run_id = c.run_id;
    rc = loop(&c, e);
  }
  ctx_free(&c);
  return rc;
}

int nas_search_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                      nas_search_summary *s, nas_err *e) {
  memset(s, 0, sizeof *s);
  s->best_acc = NAN;
  ctx c;
  memset(&c, 0, sizeof c);
  c.hooks = h, c.sum = s;
  nas_store *st = NULL;
  nas_run_row r;
  memset(&r, 0, sizeof r);
  int rc = nas_search_open_resume(db_path, NULL, &run_id, &st, &r, &c.owned, e);
  if (rc == NAS_OK) {
    nas_search_cfg *g = &c.cfg;
    nas_search_cfg_default(g);
    const cJSON *j = c.owned;
    g->seed = r.seed;
    nas_search_config_read(j, g);
    g->strategy = nas_config_str(j, "strategy");
    g->population = (int)nas_config_num(j, "population", 8), g->sample_size = (int)nas_config_num(j, "sample_size", 3);
    g->retrain_epochs = (int)nas_config_num(j, "retrain_epochs", 0);
    rc = prepare(&c, e);
    if (rc != NAS_OK) nas_err_prefix(e, "run %lld", (long long)run_id);
  }
  nas_store_run_row_free(&r);
  c.st = st, c.run_id = run_id, s->run_id = run_id;
  if (rc == NAS_OK) rc = nas_store_run_set_status(st, run_id, "running", e);
  if (rc == NAS_OK) {
    nas_store_event_add(st, run_id, 0, "run_resume", "{}", NULL, e);
    rc = loop(&c, e);
  }
  ctx_free(&c);
  return rc;
}
