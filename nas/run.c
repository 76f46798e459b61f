/* nas/run.c: the one run driver (see nas/run.h): the configuration every run has (its option
 * table, reading, checking and storing it), the set-up of a new or resumed run (objectives,
 * space, target, dataset), the strategy's body, and the end of a run (summary, status, final
 * event). The proposal loop is in run_propose.c. Never prints. */
#include "nas/run.h"
#include "nas/measure_emu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "train/net.h"

/* ---- configuration ----------------------------------------------------------------------- */

void nas_search_cfg_default(nas_search_cfg *c) {
  memset(c, 0, sizeof *c);
  c->budget = 20;
  c->epochs = 1;
  c->batch = 128;
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

/* Expands and parses spec into obj; an error is NAS_EUSAGE prefixed "option --objectives". */
static int parse_objectives(const char *spec, nas_objectives *obj, nas_err *e) {
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

int nas_config_set(cJSON *j, const char *k, cJSON *item) {
  if (!item) return -1;
  cJSON_DeleteItemFromObjectCaseSensitive(j, k);
  if (!cJSON_AddItemToObject(j, k, item)) return cJSON_Delete(item), -1;
  return 0;
}

/* --runtime: one of latency/target.h's runtimes. */
static int runtime_option(const char *text, cJSON *config, nas_err *e) {
  if (nas_runtime_from_name(text) < 0)
    return nas_errf(e, NAS_EUSAGE, "--runtime: '%s' is not tflm-cmsis-nn, tflm-reference or nas-c", text);
  if (nas_config_set(config, "runtime", cJSON_CreateString(text))) return nas_errf(e, NAS_ENOMEM, "out of memory");
  return NAS_OK;
}

/* --measure: the back end measuring every done candidate ("emulator"). */
static int measure_option(const char *text, cJSON *config, nas_err *e) {
  if (strcmp(text, "emulator"))
    return nas_errf(e, NAS_EUSAGE, "--measure: '%s' is not a measurement back end (emulator)", text);
  if (nas_config_set(config, "measure", cJSON_CreateString(text))) return nas_errf(e, NAS_ENOMEM, "out of memory");
  return NAS_OK;
}

/* --objectives: checked when given, stored as written (the run stores the expanded list). */
static int objectives_option(const char *text, cJSON *config, nas_err *e) {
  nas_objectives ob;
  int rc = parse_objectives(text, &ob, e);
  if (rc == NAS_OK && nas_config_set(config, "objectives", cJSON_CreateString(text)))
    rc = nas_errf(e, NAS_ENOMEM, "out of memory");
  return rc;
}

const nas_opt nas_run_options[] = {
    {"--space", NAS_OPT_STR, "S", .help = "built-in space name or space JSON file", .key = "space"},
    {"--dataset", NAS_OPT_STR, "SPEC", .help = "dataset (fashion-mnist[:DIR], idx:DIR, speech-commands:DIR)",
     .key = "dataset"},
    {"--target", NAS_OPT_STR, "ID", .help = "MCU target id (nas targets), or --target-file FILE", .key = "target"},
    {"--target-file", NAS_OPT_STR, "FILE", .help = "a target JSON file", .key = "target_file"},
    {"--runtime", NAS_OPT_STR, "NAME",
     .help = "price for this runtime instead of the target's: tflm-cmsis-nn,\ntflm-reference or nas-c",
     .key = "runtime", .apply = runtime_option},
    {"--max-sram", NAS_OPT_SIZE, "B", .help = "peak SRAM budget (K/M suffixes)", .key = "max_sram"},
    {"--max-flash", NAS_OPT_SIZE, "B", .help = "flash budget (K/M suffixes)", .key = "max_flash"},
    {"--max-latency-ms", NAS_OPT_NUM, "X", 0, 1e9, 1, .what = "a positive number",
     .help = "predicted latency budget", .key = "max_latency_ms"},
    {"--max-macs", NAS_OPT_SIZE, "N", .help = "MACs budget (K/M suffixes)", .key = "max_macs"},
    {"--epochs", NAS_OPT_INT, "E", 1, 100000, .help = "training epochs per candidate (1)", .key = "epochs"},
    {"--batch", NAS_OPT_INT, "N", 1, 65536, .help = "training batch (128)", .key = "batch"},
    {"--train-limit", NAS_OPT_INT, "N", 1, 2147483647, .help = "training samples kept (all)",
     .key = "train_limit"},
    {"--seed", NAS_OPT_INT, "N", 0, 2147483647, .help = "run seed (1)", .key = "seed"},
    {"--objectives", NAS_OPT_STR, "LIST",
     .help = "(acc_int8_test:max,latency_pred_ms:min); aliases acc_int8,\nlatency_ms, sram, flash",
     .key = "objectives", .apply = objectives_option},
    {"--eval-limit", NAS_OPT_INT, "N", 1, 2147483647,
     .help = "score each candidate on the first N validation and test\nsamples (all)", .key = "eval_limit"},
    {"--calib-samples", NAS_OPT_INT, "N", 1, 2147483647,
     .help = "training samples calibrating each candidate's int8 ranges\n(1000)", .key = "calib_samples"},
    {"--measure", NAS_OPT_STR, "emulator",
     .help = "emulate every done candidate's int8 graph (the C export on\nthe target's core) and store "
             "latency_meas_ms and its per-operator\ninstruction counts with its metrics",
     .key = "measure", .apply = measure_option},
    {0}};

const nas_opt nas_propose_options[] = {
    {"--budget", NAS_OPT_INT, "N", 1, 1000000,
     .help = "candidates to propose, rejected ones included (20)", .key = "budget"},
    {"--retrain-front", NAS_OPT_INT, "E", 1, 100000,
     .help = "after the budget, retrain each Pareto-front member from scratch\n"
             "for E epochs, scored on all samples, stored as a new candidate\n"
             "with parent = the original and retrain_epochs = E",
     .key = "retrain_epochs"},
    {0}};

int nas_search_config_write(cJSON *j, const nas_search_cfg *g, const char *strategy,
                            const char *objectives) {
  int ok = cJSON_AddStringToObject(j, "space", g->space) != NULL;
  ok &= cJSON_AddStringToObject(j, "strategy", strategy) != NULL;
  ok &= cJSON_AddStringToObject(j, "dataset", g->dataset) != NULL;
  if (g->target) ok &= cJSON_AddStringToObject(j, "target", g->target) != NULL;
  if (g->target_file) ok &= cJSON_AddStringToObject(j, "target_file", g->target_file) != NULL;
  ok &= cJSON_AddNumberToObject(j, "max_sram", (double)g->max_sram) != NULL;
  ok &= cJSON_AddNumberToObject(j, "max_flash", (double)g->max_flash) != NULL;
  ok &= cJSON_AddNumberToObject(j, "max_macs", (double)g->max_macs) != NULL;
  ok &= cJSON_AddNumberToObject(j, "max_latency_ms", g->max_latency_ms) != NULL;
  ok &= cJSON_AddNumberToObject(j, "budget", g->budget) != NULL;
  ok &= cJSON_AddNumberToObject(j, "epochs", g->epochs) != NULL;
  ok &= cJSON_AddNumberToObject(j, "batch", g->batch) != NULL;
  ok &= cJSON_AddNumberToObject(j, "train_limit", g->train_limit) != NULL;
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)g->seed);
  ok &= cJSON_AddStringToObject(j, "seed", seed) != NULL; /* text: a double cannot hold every uint64 */
  ok &= cJSON_AddStringToObject(j, "objectives", objectives) != NULL;
  ok &= cJSON_AddNumberToObject(j, "eval_limit", g->eval_limit) != NULL;
  ok &= cJSON_AddNumberToObject(j, "calib_samples", g->calib_samples) != NULL;
  if (g->runtime) ok &= cJSON_AddStringToObject(j, "runtime", g->runtime) != NULL;
  if (g->measure) ok &= cJSON_AddStringToObject(j, "measure", g->measure) != NULL;
  return ok ? 0 : -1;
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
  else g->seed = (uint64_t)nas_config_num(j, "seed", (double)g->seed);
  if (nas_config_str(j, "objectives")) g->objectives = nas_config_str(j, "objectives");
  g->eval_limit = (int)nas_config_num(j, "eval_limit", 0);
  g->calib_samples = (int)nas_config_num(j, "calib_samples", 1000); /* runs before it: 1000 */
  g->runtime = nas_config_str(j, "runtime"), g->measure = nas_config_str(j, "measure");
}

/* The fields every run uses: space, dataset and target given, epochs 1..100000, batch
 * 1..65536, no negative constraint or limit (NAS_EUSAGE naming the field). */
static int check_cfg(const nas_search_cfg *g, nas_err *e) {
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
  if (g->runtime && nas_runtime_from_name(g->runtime) < 0)
    return nas_errf(e, NAS_EUSAGE, "runtime '%s' is not tflm-cmsis-nn, tflm-reference or nas-c", g->runtime);
  if (g->measure && strcmp(g->measure, "emulator"))
    return nas_errf(e, NAS_EUSAGE, "measure '%s' is not a measurement back end (emulator)", g->measure);
  return NAS_OK;
}

/* ---- set-up ------------------------------------------------------------------------------ */

/* NAS_EINVAL naming both sides unless the space's input h x w x c and classes fit d (the
 * dataset may have fewer classes than the space). */
static int shape_fits(const char *space_name, int h, int w, int c, int classes, const char *dataset,
                      const nas_data *d, nas_err *e) {
  if (h == d->train.h && w == d->train.w && c == d->train.c && classes >= d->train.classes)
    return NAS_OK;
  const char *at = d->train.labels_at;
  return nas_errf(e, NAS_EINVAL,
                  "space %s expects input %dx%dx%d with %d classes, dataset %s has %dx%dx%d with "
                  "%d classes%s%s%s", space_name, h, w, c, classes, dataset, d->train.h, d->train.w,
                  d->train.c, d->train.classes, at[0] ? " (largest label: " : "", at,
                  at[0] ? ")" : "");
}

/* The space's input shape and classes (those of its first architecture) must be the
 * dataset's. */
static int check_shape(const nas_run *r, nas_err *e) {
  int *d = nas_calloc((size_t)(r->nd ? r->nd : 1), sizeof(int));
  char *arch = NULL;
  nas_net *net = NULL;
  int rc = d ? nas_space_materialize(r->sp, d, &arch, e) : nas_errf(e, NAS_ENOMEM, "out of memory");
  if (rc == NAS_OK) rc = nas_net_build(arch, nas_space_name(r->sp), 1, 1, &net, e);
  if (rc == NAS_OK)
    rc = shape_fits(nas_space_name(r->sp), net->in_h, net->in_w, net->in_c, net->classes,
                    r->cfg.dataset, &r->d, e);
  nas_net_free(net);
  free(arch), free(d);
  return rc;
}

/* Reads r->config (onto r->cfg's defaults) and loads and checks everything the run needs,
 * without touching the store. */
static int setup(nas_run *r, nas_err *e) {
  const nas_strategy *s = r->strategy;
  nas_search_cfg *g = &r->cfg;
  nas_search_config_read(r->config, g);
  int rc = check_cfg(g, e);
  if (rc != NAS_OK) return rc;
  if (s->propose && (g->budget < 1 || g->budget > 1000000))
    return nas_errf(e, NAS_EUSAGE, "budget %d is out of range 1..1000000", g->budget);
  if (s->configure && (rc = s->configure(r, r->config, e)) != NAS_OK) return rc;
  if (s->propose) {
    r->retrain_epochs = (int)nas_config_num(r->config, "retrain_epochs", 0);
    if (r->retrain_epochs < 0 || r->retrain_epochs > 100000)
      return nas_errf(e, NAS_EUSAGE, "retrain epochs %d is out of range 0..100000", r->retrain_epochs);
  }
  if ((rc = parse_objectives(g->objectives, &r->obj, e)) != NAS_OK) return rc;
  if ((rc = nas_space_load(g->space, &r->sp, e)) != NAS_OK) return rc;
  if ((rc = nas_space_check(r->sp, e)) != NAS_OK) return rc;
  r->nd = nas_space_n_decisions(r->sp);
  if ((rc = nas_target_open(g->target, g->target_file, &r->t, e)) != NAS_OK) return rc;
  if (g->runtime && (rc = nas_target_set_runtime(r->t, nas_runtime_from_name(g->runtime), e)) != NAS_OK)
    return rc;
  if (g->measure) { /* the toolchain and the emulator, checked before any candidate */
    char cc[4096];
    if ((rc = nas_emu_find_cc(NULL, cc, sizeof cc, e)) != NAS_OK) return nas_err_prefix(e, "--measure emulator");
    if (!nas_emu_have_unicorn())
      return nas_errf(e, NAS_EINVAL, "--measure emulator: this build has no Unicorn (apt-get install "
                      "libunicorn-dev, rebuild)");
    if (r->t->core == NAS_CORE_M55)
      return nas_errf(e, NAS_EINVAL, "--measure emulator: target %s: Unicorn cannot emulate a %s",
                      r->t->id, nas_core_name(r->t->core));
    if (!nas_emu_cache_dir(r->emu_cache, sizeof r->emu_cache)) r->emu_cache[0] = '\0';
  }
  nas_data_opts o;
  nas_data_opts_default(&o, g->dataset);
  o.train_limit = g->train_limit;
  if ((rc = nas_data_load(&o, &r->d, e)) != NAS_OK) return rc;
  if ((rc = check_shape(r, e)) != NAS_OK) return rc;
  if (s->prepare) rc = s->prepare(r, e);
  return rc;
}

static void run_free(nas_run *r) {
  if (r->strategy->release) r->strategy->release(r);
  for (int i = 0; i < r->n; i++) free(r->h[i].d);
  free(r->h);
  nas_store_close(r->st);
  nas_data_free(&r->d);
  nas_target_free(r->t);
  nas_space_free(r->sp);
  cJSON_Delete(r->config);
}

static void run_init(nas_run *r, const char *db_path, const nas_strategy *s,
                     const nas_search_hooks *h, nas_search_summary *sum) {
  memset(sum, 0, sizeof *sum);
  sum->best_acc = NAN;
  memset(r, 0, sizeof *r);
  r->strategy = s, r->db_path = db_path, r->hooks = h, r->sum = sum;
  nas_search_cfg_default(&r->cfg);
}

/* The configuration stored with a new run: the common keys, then the strategy's (NULL when
 * out of memory). */
static char *stored_config(const nas_run *r, const char *objectives) {
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  int bad = nas_search_config_write(j, &r->cfg, r->strategy->name, objectives);
  if (!bad && r->strategy->save) bad = r->strategy->save(r, j);
  if (!bad && r->strategy->propose) bad = !cJSON_AddNumberToObject(j, "retrain_epochs", r->retrain_epochs);
  char *t = bad ? NULL : cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return t;
}

/* *run_id 0: sets it to the latest run of st that is not done (NAS_EINVAL when none). */
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

/* The store at db_path must exist: resuming never creates one. */
static int store_exists(const char *db_path, nas_err *e) {
  FILE *f = fopen(db_path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open the store", db_path);
  fclose(f);
  return NAS_OK;
}

/* The run row of *run_id (0: the latest not done) into r (zeroed; caller frees), which must
 * not be done. */
static int resumable_run(nas_store *st, const char *db_path, int64_t *run_id, nas_run_row *r,
                         nas_err *e) {
  int rc = find_run(st, db_path, run_id, e);
  if (rc == NAS_OK) rc = nas_store_run_get(st, *run_id, r, e);
  if (rc == NAS_OK && !strcmp(r->status, "done"))
    rc = nas_errf(e, NAS_EINVAL, "%s: run %lld is already done", db_path, (long long)*run_id);
  return rc;
}

int nas_run_strategy_of(const char *db_path, int64_t *run_id, char *name, size_t cap,
                        nas_err *e) {
  int rc = store_exists(db_path, e);
  nas_store *st = NULL;
  nas_run_row r;
  memset(&r, 0, sizeof r);
  if (rc == NAS_OK) rc = nas_store_open_readonly(db_path, &st, e);
  if (rc == NAS_OK) rc = resumable_run(st, db_path, run_id, &r, e);
  if (rc == NAS_OK) snprintf(name, cap, "%s", r.strategy ? r.strategy : "");
  nas_store_run_row_free(&r);
  nas_store_close(st);
  return rc;
}

/* ---- the run ----------------------------------------------------------------------------- */

int nas_run_stopping(const nas_run *r) { return r->hooks && r->hooks->stop && *r->hooks->stop; }

void nas_run_candidate_cfg(const nas_run *r, int epochs, int eval_limit, uint64_t seed,
                           nas_candidate_cfg *cc) {
  const nas_search_cfg *g = &r->cfg;
  memset(cc, 0, sizeof *cc);
  cc->target = r->t;
  cc->max_sram = g->max_sram, cc->max_flash = g->max_flash, cc->max_macs = g->max_macs;
  cc->max_latency_ms = g->max_latency_ms;
  cc->data = &r->d, cc->dataset = g->dataset, cc->train_limit = g->train_limit;
  cc->epochs = epochs, cc->batch = g->batch, cc->seed = seed;
  cc->eval_limit = eval_limit, cc->calib_samples = g->calib_samples;
  cc->measure = g->measure != NULL;
  cc->emu_cache_dir = r->emu_cache[0] ? r->emu_cache : NULL;
}

/* The summary of the run's search candidates, from the store. */
static int summarise(nas_run *r, nas_err *e) {
  nas_search_summary *s = r->sum;
  int64_t *ids = NULL;
  int n = 0;
  s->candidates = s->done = s->rejected = s->failed = 0;
  s->best_id = 0, s->best_acc = NAN;
  int rc = nas_store_search_candidate_ids(r->st, r->run_id, NULL, &ids, &n, e);
  if (rc == NAS_OK) s->candidates = n;
  for (int i = 0; rc == NAS_OK && i < n; i++) {
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    if ((rc = nas_store_candidate_get(r->st, ids[i], &row, e)) == NAS_OK) {
      s->done += !strcmp(row.state, "done");
      s->rejected += !strcmp(row.state, "rejected");
      s->failed += !strcmp(row.state, "failed");
      if (!strcmp(row.state, "done") && isfinite(row.m.acc_int8_test) &&
          (!s->best_id || row.m.acc_int8_test > s->best_acc))
        s->best_id = row.id, s->best_acc = row.m.acc_int8_test;
    }
    nas_store_candidate_row_free(&row);
  }
  free(ids);
  return rc;
}

/* Runs the strategy's body and ends the run: summary, final event and status. A failure (a
 * full disk, no memory left for the summary) leaves the run interrupted and resumable rather
 * than failed. */
static int run_body(nas_run *r, nas_err *e) {
  int stopped = 0;
  int rc = r->strategy->propose ? nas_propose_loop(r, &stopped, e) : r->strategy->body(r, &stopped, e);
  nas_err e2 = {0};
  r->sum->interrupted = stopped;
  int src = summarise(r, rc == NAS_OK ? e : &e2);
  if (rc == NAS_OK) rc = src;
  const char *status = rc != NAS_OK || stopped ? "interrupted" : "done";
  char payload[128];
  snprintf(payload, sizeof payload, "{\"candidates\":%d,\"done\":%d}", r->sum->candidates, r->sum->done);
  nas_store_event_add(r->st, r->run_id, 0, stopped ? "interrupt" : rc ? "error" : "run_done", payload,
                      NULL, &e2);
  int rc2 = nas_store_run_set_status(r->st, r->run_id, status, &e2);
  if (rc == NAS_OK && rc2 != NAS_OK) *e = e2, rc = rc2;
  return rc;
}

int nas_run_start(const char *db_path, const nas_strategy *s, const cJSON *config,
                  const nas_search_hooks *h, nas_search_summary *sum, nas_err *e) {
  nas_run r;
  run_init(&r, db_path, s, h, sum);
  r.fresh = 1;
  r.config = config ? cJSON_Duplicate(config, 1) : cJSON_CreateObject();
  int rc = r.config ? setup(&r, e) : nas_errf(e, NAS_ENOMEM, "out of memory");
  if (rc == NAS_OK) {
    char obj[512];
    nas_objectives_format(&r.obj, obj, sizeof obj);
    char *conf = stored_config(&r, obj);
    if (!conf) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    if (rc == NAS_OK) rc = nas_store_open(db_path, &r.st, e);
    if (rc == NAS_OK) {
      const nas_search_cfg *g = &r.cfg;
      nas_run_info info = {.config_json = conf, .strategy = s->name, .space = g->space,
                           .dataset = g->dataset, .target = g->target ? g->target : g->target_file,
                           .seed = g->seed, .budget = g->budget, .objectives = obj};
      rc = nas_store_run_create(r.st, &info, &r.run_id, e);
    }
    if (rc == NAS_OK) nas_store_event_add(r.st, r.run_id, 0, "run_start", "{}", NULL, e);
    cJSON_free(conf);
  }
  if (rc == NAS_OK) {
    sum->run_id = r.run_id;
    rc = run_body(&r, e);
  }
  run_free(&r);
  return rc;
}

int nas_run_resume(const char *db_path, const nas_strategy *s, int64_t run_id,
                   const nas_search_hooks *h, nas_search_summary *sum, nas_err *e) {
  nas_run r;
  run_init(&r, db_path, s, h, sum);
  nas_run_row row;
  memset(&row, 0, sizeof row);
  int rc = store_exists(db_path, e);
  if (rc == NAS_OK) rc = nas_store_open(db_path, &r.st, e);
  if (rc == NAS_OK) rc = resumable_run(r.st, db_path, &run_id, &row, e);
  if (rc == NAS_OK && strcmp(row.strategy ? row.strategy : "", s->name))
    rc = nas_errf(e, NAS_EINVAL, "%s: run %lld is not a %s run", db_path, (long long)run_id, s->name);
  if (rc == NAS_OK && !(r.config = cJSON_Parse(row.config_json)))
    rc = nas_errf(e, NAS_EFORMAT, "run %lld: bad configuration JSON", (long long)run_id);
  if (rc == NAS_OK) {
    r.cfg.seed = row.seed;
    if ((rc = setup(&r, e)) != NAS_OK) nas_err_prefix(e, "run %lld", (long long)run_id);
  }
  nas_store_run_row_free(&row);
  r.run_id = run_id, sum->run_id = run_id;
  if (rc == NAS_OK) rc = nas_store_run_set_status(r.st, run_id, "running", e);
  if (rc == NAS_OK) {
    nas_store_event_add(r.st, run_id, 0, "run_resume", "{}", NULL, e);
    rc = run_body(&r, e);
  }
  run_free(&r);
  return rc;
}
