/* nas/cli/cmd_search.c: `nas search`, `nas resume`, `nas runs`, `nas show`, `nas pareto`,
 * `nas plot`: running searches (nas/search.h) and reading the store (results/). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nas/cli/cli.h"
#include "core/alloc.h"
#include "nas/strategies/dnas.h"
#include "nas/search.h"
#include "results/pareto.h"
#include "results/store.h"

int nas_cli_search_fail(const nas_err *e) {
  fprintf(stderr, "nas: error: %s\n", e->msg);
  return e->code == NAS_EUSAGE ? NAS_EXIT_USAGE : 1;
}

/* "--name value" or "--name=value"; returns the value or NULL (and sets *err) */
typedef struct opts {
  int argc, i;
  char **argv;
  const char *cmd;
} opts;

static int next_opt(opts *o, const char **name, const char **val, char *buf, int cap) {
  if (o->i >= o->argc) return 0;
  const char *a = o->argv[o->i++];
  const char *eq = strchr(a, '=');
  snprintf(buf, (size_t)cap, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
  *name = buf;
  *val = eq ? eq + 1 : (o->i < o->argc && strncmp(o->argv[o->i], "--", 2) ? o->argv[o->i++] : NULL);
  return 1;
}

static int need(const char *cmd, const char *name, const char *v) {
  if (!v) return nas_cli_usage_error(cmd, "option %s needs a value", name);
  return 0;
}

static int parse_int(const char *cmd, const char *name, const char *v, long lo, long hi, long *out) {
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || *end || end == v || x < lo || x > hi)
    return nas_cli_usage_error(cmd, "option %s: '%s' is not an integer in %ld..%ld", name,
                               v ? v : "", lo, hi);
  *out = x;
  return 0;
}

static int parse_sz(const char *cmd, const char *name, const char *v, long long *out) {
  if (nas_parse_size(v, out))
    return nas_cli_usage_error(cmd, "option %s: '%s' is not a size (N, NK, NM)", name, v ? v : "");
  return 0;
}

/* ---- progress and SIGINT -------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop = 0;
static void on_sigint(int sig) {
  if (g_stop) { /* a second Ctrl-C: stop now (the store stays consistent; resume re-trains) */
    signal(sig, SIG_DFL);
    raise(sig);
  }
  g_stop = 1;
}

static void progress(const nas_search_progress *p, void *user) {
  (void)user;
  if (!strcmp(p->state, "proposed")) return;
  if (p->retrain_epochs) printf("retrain (%d epochs) ", p->retrain_epochs);
  printf("candidate %d/%d  #%lld  %-8s", p->k, p->budget, (long long)p->cand_id, p->state);
  if (!strcmp(p->state, "done"))
    printf("  acc_int8 %.4f  acc_float %.4f", p->acc_int8, p->acc_float);
  if (isfinite(p->latency_ms))
    printf("  latency %.3f ms  sram %.0f B  flash %.0f B  macs %.0f", p->latency_ms, p->peak_sram,
           p->flash, p->macs);
  if (p->reason) printf("  (%s)", p->reason);
  if (isfinite(p->best_acc)) printf("  best so far %.4f (#%lld)", p->best_acc, (long long)p->best_id);
  printf("\n");
  fflush(stdout);
}

int nas_cli_search_finish(const char *db, const nas_search_summary *s) {
  if (s->interrupted)
    printf("interrupted: run %lld is resumable with `nas resume --db %s --run %lld`\n",
           (long long)s->run_id, db, (long long)s->run_id);
  else
    printf("run %lld done%s: %d candidates (%d done, %d rejected, %d failed)\n", (long long)s->run_id,
           s->exhausted ? " (space exhausted)" : "", s->candidates, s->done, s->rejected, s->failed);
  if (s->retrained) printf("front retrained: %d candidates\n", s->retrained);
  if (s->best_id) printf("best: candidate %lld, int8 test accuracy %.4f\n", (long long)s->best_id, s->best_acc);
  return 0;
}

volatile sig_atomic_t *nas_cli_stop_on_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  return &g_stop;
}

/* ---- search --------------------------------------------------------------------------------- */

int nas_cli_search_opt(const char *cmd, const char *n, const char *v, nas_search_cfg *g,
                       const char **db) {
  long x = 0;
  if (!strcmp(n, "--space")) g->space = v;
  else if (!strcmp(n, "--dataset")) g->dataset = v;
  else if (!strcmp(n, "--target")) g->target = v;
  else if (!strcmp(n, "--target-file")) g->target_file = v;
  else if (!strcmp(n, "--db")) *db = v;
  else if (!strcmp(n, "--objectives")) g->objectives = v;
  else if (!strcmp(n, "--max-sram")) return parse_sz(cmd, n, v, &g->max_sram) ? NAS_EXIT_USAGE : 0;
  else if (!strcmp(n, "--max-flash")) return parse_sz(cmd, n, v, &g->max_flash) ? NAS_EXIT_USAGE : 0;
  else if (!strcmp(n, "--max-macs")) return parse_sz(cmd, n, v, &g->max_macs) ? NAS_EXIT_USAGE : 0;
  else if (!strcmp(n, "--max-latency-ms")) {
    char *end;
    double dx = strtod(v, &end);
    if (*end || end == v || !(dx > 0 && dx < 1e9))
      return nas_cli_usage_error(cmd, "option %s: '%s' is not a positive number", n, v);
    g->max_latency_ms = dx;
  } else if (!strcmp(n, "--epochs")) {
    if (parse_int(cmd, n, v, 1, 100000, &x)) return NAS_EXIT_USAGE;
    g->epochs = (int)x;
  } else if (!strcmp(n, "--batch")) {
    if (parse_int(cmd, n, v, 1, 65536, &x)) return NAS_EXIT_USAGE;
    g->batch = (int)x;
  } else if (!strcmp(n, "--train-limit")) {
    if (parse_int(cmd, n, v, 1, 2147483647L, &x)) return NAS_EXIT_USAGE;
    g->train_limit = (int)x;
  } else if (!strcmp(n, "--seed")) {
    if (parse_int(cmd, n, v, 0, 2147483647L, &x)) return NAS_EXIT_USAGE;
    g->seed = (uint64_t)x;
  } else if (!strcmp(n, "--eval-limit")) {
    if (parse_int(cmd, n, v, 1, 2147483647L, &x)) return NAS_EXIT_USAGE;
    g->eval_limit = (int)x;
  } else if (!strcmp(n, "--calib-samples")) {
    if (parse_int(cmd, n, v, 1, 2147483647L, &x)) return NAS_EXIT_USAGE;
    g->calib_samples = (int)x;
  } else
    return -1;
  return 0;
}

int nas_cli_search_required(const char *cmd, const nas_search_cfg *g, const char *db) {
  if (!g->space) return nas_cli_usage_error(cmd, "--space S is required");
  if (!g->dataset) return nas_cli_usage_error(cmd, "--dataset SPEC is required");
  if (!g->target && !g->target_file) return nas_cli_usage_error(cmd, "--target ID is required");
  if (!db) return nas_cli_usage_error(cmd, "--db FILE is required");
  return 0;
}

static const char SEARCH_USAGE[] =
    "usage: nas search --space S --strategy random|evolution --dataset D --target T --db FILE\n"
    "                  [options]\n"
    "\n"
    "Proposes architectures from the space, prices each on the target (over-budget ones are\n"
    "rejected without training), trains the rest, quantises them to int8 and stores all of\n"
    "it in the SQLite store FILE. Ctrl-C finishes the current candidate and leaves a\n"
    "resumable run (`nas resume`); a second Ctrl-C stops at once (resume trains the\n"
    "unfinished candidate again).\n"
    "\n"
    "  --space S            built-in space name or space JSON file\n"
    "  --strategy NAME      random | evolution (aging evolution, Pareto rank + crowding)\n"
    "                       | dnas (differentiable; see nas search --strategy dnas --help)\n"
    "  --dataset SPEC       dataset (fashion-mnist[:DIR], idx:DIR, speech-commands:DIR)\n"
    "  --target ID          MCU target id (nas targets), or --target-file FILE\n"
    "  --db FILE            SQLite store (created if missing)\n"
    "  --max-sram B         peak SRAM budget (K/M suffixes)\n"
    "  --max-flash B        flash budget (K/M suffixes)\n"
    "  --max-latency-ms X   predicted latency budget\n"
    "  --max-macs N         MACs budget (K/M suffixes)\n"
    "  --budget N           candidates to propose, rejected ones included (20)\n"
    "  --epochs E           training epochs per candidate (1)\n"
    "  --batch N            training batch (128)\n"
    "  --train-limit N      training samples kept (all)\n"
    "  --population P       evolution population (8)\n"
    "  --sample-size S      evolution tournament size (3)\n"
    "  --seed N             run seed (1)\n"
    "  --objectives LIST    (acc_int8_test:max,latency_pred_ms:min); aliases acc_int8,\n"
    "                       latency_ms, sram, flash\n"
    "  --eval-limit N       score each candidate on the first N validation and test\n"
    "                       samples (all)\n"
    "  --calib-samples N    training samples calibrating each candidate's int8 ranges\n"
    "                       (1000)\n"
    "  --retrain-front E    after the budget, retrain each Pareto-front member from scratch\n"
    "                       for E epochs, scored on all samples, stored as a new candidate\n"
    "                       with parent = the original and retrain_epochs = E\n";

static int cmd_search(int argc, char **argv) {
  for (int i = 0; i < argc; i++) /* DNAS has its own options (nas/cmd_dnas.c) */
    if (!strcmp(argv[i], "--strategy=dnas") ||
        (!strcmp(argv[i], "--strategy") && i + 1 < argc && !strcmp(argv[i + 1], "dnas")))
      return nas_cli_dnas_search(argc, argv);
  nas_search_cfg cfg;
  nas_search_cfg_default(&cfg);
  cfg.strategy = NULL;
  const char *db = NULL, *cmd = "search";
  opts o = {argc, 0, argv, cmd};
  const char *n, *v;
  char nb[64];
  long x = 0;
  while (next_opt(&o, &n, &v, nb, sizeof nb)) {
    if (!strcmp(n, "--help")) return fputs(SEARCH_USAGE, stdout), 0;
    if (strncmp(n, "--", 2)) return nas_cli_usage_error(cmd, "unexpected argument '%s'", n);
    if (need(cmd, n, v)) return NAS_EXIT_USAGE;
    int rc = nas_cli_search_opt(cmd, n, v, &cfg, &db);
    if (rc >= 0) {
      if (rc) return rc;
    } else if (!strcmp(n, "--strategy")) cfg.strategy = v;
    else if (!strcmp(n, "--budget")) {
      if (parse_int(cmd, n, v, 1, 1000000, &x)) return NAS_EXIT_USAGE;
      cfg.budget = (int)x;
    } else if (!strcmp(n, "--population")) {
      if (parse_int(cmd, n, v, 2, 100000, &x)) return NAS_EXIT_USAGE;
      cfg.population = (int)x;
    } else if (!strcmp(n, "--sample-size")) {
      if (parse_int(cmd, n, v, 1, 100000, &x)) return NAS_EXIT_USAGE;
      cfg.sample_size = (int)x;
    } else if (!strcmp(n, "--retrain-front")) {
      if (parse_int(cmd, n, v, 1, 100000, &x)) return NAS_EXIT_USAGE;
      cfg.retrain_epochs = (int)x;
    } else
      return nas_cli_usage_error(cmd, "unknown option '%s'", n);
  }
  if (!cfg.space) return nas_cli_usage_error(cmd, "--space S is required");
  if (!cfg.strategy) return nas_cli_usage_error(cmd, "--strategy random|evolution is required");
  if (strcmp(cfg.strategy, "random") && strcmp(cfg.strategy, "evolution"))
    return nas_cli_usage_error(cmd, "option --strategy: unknown strategy '%s' (random, evolution)", cfg.strategy);
  if (nas_cli_search_required(cmd, &cfg, db)) return NAS_EXIT_USAGE;
  if (cfg.sample_size > cfg.population)
    return nas_cli_usage_error(cmd, "--sample-size %d is larger than --population %d", cfg.sample_size, cfg.population);
  nas_err e = {0};
  char obj[512];
  nas_objectives ob;
  if (nas_objectives_expand(cfg.objectives, obj, sizeof obj, &e) != NAS_OK ||
      nas_objectives_parse(obj, &ob, &e) != NAS_OK)
    return nas_cli_usage_error(cmd, "option --objectives: %s", e.msg);
  nas_search_hooks h = {progress, NULL, nas_cli_stop_on_sigint()};
  nas_search_summary s;
  if (nas_search_run(db, &cfg, &h, &s, &e) != NAS_OK) return nas_cli_search_fail(&e);
  return nas_cli_search_finish(db, &s);
}

static const char RESUME_USAGE[] =
    "usage: nas resume --db FILE [--run N]\n"
    "\n"
    "Continues an interrupted run (default: the latest run not done) from its stored\n"
    "configuration: finished candidates are kept, one left in training is trained again, and\n"
    "with the run's seed the run ends with the same candidates as an uninterrupted one.\n";

static int cmd_resume(int argc, char **argv) {
  const char *db = NULL, *cmd = "resume", *n, *v;
  long run = 0;
  opts o = {argc, 0, argv, cmd};
  char nb[64];
  while (next_opt(&o, &n, &v, nb, sizeof nb)) {
    if (!strcmp(n, "--help")) return fputs(RESUME_USAGE, stdout), 0;
    if (need(cmd, n, v)) return NAS_EXIT_USAGE;
    if (!strcmp(n, "--db")) db = v;
    else if (!strcmp(n, "--run")) {
      if (parse_int(cmd, n, v, 1, 2147483647L, &run)) return NAS_EXIT_USAGE;
    } else
      return nas_cli_usage_error(cmd, "unknown option '%s'", n);
  }
  if (!db) return nas_cli_usage_error(cmd, "--db FILE is required");
  if (nas_dnas_is_dnas_run(db, run)) return nas_cli_dnas_resume(db, run);
  nas_search_hooks h = {progress, NULL, nas_cli_stop_on_sigint()};
  nas_search_summary s;
  nas_err e = {0};
  if (nas_search_resume(db, run, &h, &s, &e) != NAS_OK) return nas_cli_search_fail(&e);
  return nas_cli_search_finish(db, &s);
}

/* ---- runs, show ----------------------------------------------------------------------------- */

static const char RUNS_USAGE[] = "usage: nas runs --db FILE\n\nLists the runs of a store.\n";

static int db_only(const char *cmd, const char *usage, int argc, char **argv, const char **db,
                   long *num, const char *numopt) {
  const char *n, *v;
  opts o = {argc, 0, argv, cmd};
  char nb[64];
  while (next_opt(&o, &n, &v, nb, sizeof nb)) {
    if (!strcmp(n, "--help")) return fputs(usage, stdout), -1;
    if (need(cmd, n, v)) return NAS_EXIT_USAGE;
    if (!strcmp(n, "--db")) *db = v;
    else if (numopt && !strcmp(n, numopt)) {
      if (parse_int(cmd, n, v, 1, 2147483647L, num)) return NAS_EXIT_USAGE;
    } else
      return nas_cli_usage_error(cmd, "unknown option '%s'", n);
  }
  if (!*db) return nas_cli_usage_error(cmd, "--db FILE is required");
  if (numopt && !*num) return nas_cli_usage_error(cmd, "%s N is required", numopt);
  return 0;
}

static int cmd_runs(int argc, char **argv) {
  const char *db = NULL;
  int rc = db_only("runs", RUNS_USAGE, argc, argv, &db, NULL, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  nas_err e = {0};
  nas_store *st = NULL;
  if (nas_store_open_readonly(db, &st, &e) != NAS_OK) return nas_cli_search_fail(&e);
  int64_t *ids = NULL;
  int n = 0;
  if (nas_store_run_ids(st, &ids, &n, &e) != NAS_OK)
    return nas_store_close(st), nas_cli_search_fail(&e);
  printf("%-4s %-11s %-9s %-16s %-14s %-20s %6s %6s %5s %5s %5s\n", "run", "status", "strategy",
         "space", "target", "dataset", "budget", "cands", "done", "rej", "fail");
  for (int i = 0; i < n; i++) {
    nas_run_row r;
    memset(&r, 0, sizeof r);
    if (nas_store_run_get(st, ids[i], &r, &e) != NAS_OK) break;
    int c[4] = {0};
    const char *states[4] = {NULL, "done", "rejected", "failed"};
    for (int k = 0; k < 4; k++) {
      int64_t *cid = NULL;
      nas_store_candidate_ids(st, ids[i], states[k], &cid, &c[k], &e);
      free(cid);
    }
    printf("%-4lld %-11s %-9s %-16s %-14s %-20s %6lld %6d %5d %5d %5d\n", (long long)r.id,
           r.status, r.strategy, r.space, r.target, r.dataset, r.budget, c[0], c[1], c[2], c[3]);
    nas_store_run_row_free(&r);
  }
  free(ids);
  nas_store_close(st);
  return 0;
}

static const char SHOW_USAGE[] =
    "usage: nas show --db FILE --candidate N\n\nPrints one candidate: state, metrics, arch JSON, per-layer costs.\n";

static void num_or_null(const char *name, double v, int is_int) {
  if (!isfinite(v)) printf("  %-16s -\n", name);
  else if (is_int) printf("  %-16s %.0f\n", name, v);
  else printf("  %-16s %.6g\n", name, v);
}

static int cmd_show(int argc, char **argv) {
  const char *db = NULL;
  long cand = 0;
  int rc = db_only("show", SHOW_USAGE, argc, argv, &db, &cand, "--candidate");
  if (rc) return rc < 0 ? 0 : rc;
  nas_err e = {0};
  nas_store *st = NULL;
  if (nas_store_open_readonly(db, &st, &e) != NAS_OK) return nas_cli_search_fail(&e);
  nas_candidate_row r;
  memset(&r, 0, sizeof r);
  if (nas_store_candidate_get(st, cand, &r, &e) != NAS_OK)
    return nas_store_close(st), nas_cli_search_fail(&e);
  printf("candidate %lld (run %lld)  state %s%s%s\n", (long long)r.id, (long long)r.run_id, r.state,
         r.reason ? "  reason: " : "", r.reason ? r.reason : "");
  printf("  hash %s  parent %lld  generation %d", r.arch_hash, (long long)r.parent_id, r.generation);
  if (r.retrain_epochs) printf("  retrained from scratch for %d epochs", r.retrain_epochs);
  printf("\n  created %s  updated %s\n", r.created_at, r.updated_at);
  for (int i = 0; i < NAS_N_METRICS; i++)
    num_or_null(nas_metric_name(i), *nas_metrics_at(&r.m, i), nas_metric_is_int(i));
  printf("  arch %s\n", r.arch_json);
  nas_layer_cost *lc = NULL;
  int nl = 0;
  if (nas_store_layer_costs_get(st, cand, &lc, &nl, &e) == NAS_OK && nl) {
    printf("  %-5s %-8s %10s %8s %8s %8s %10s\n", "layer", "op", "macs", "params", "flash", "sram",
           "ms");
    for (int i = 0; i < nl; i++)
      printf("  %-5d %-8s %10lld %8lld %8lld %8lld %10.4f\n", lc[i].layer, lc[i].op, lc[i].macs,
             lc[i].params, lc[i].flash_bytes, lc[i].sram_bytes, lc[i].latency_ms);
  }
  free(lc);
  nas_store_candidate_row_free(&r);
  nas_store_close(st);
  return 0;
}

/* ---- pareto --------------------------------------------------------------------------------- */

static const char PARETO_USAGE[] =
    "usage: nas pareto --db FILE [--run N] [--objectives LIST] [--where SQL]\n"
    "                  [--format table|csv|json]\n"
    "\n"
    "The non-dominated done candidates. LIST is column:max|min,... over the metric columns\n"
    "(default acc_int8_test:max,latency_pred_ms:min; aliases acc_int8, latency_ms, sram,\n"
    "flash); SQL is an expression over the candidate columns (peak_sram_bytes <= 65536).\n";

static int cmd_pareto(int argc, char **argv) {
  const char *db = NULL, *objs = "acc_int8_test:max,latency_pred_ms:min", *where = NULL,
             *format = "table", *cmd = "pareto", *n, *v;
  long run = 0;
  opts o = {argc, 0, argv, cmd};
  char nb[64];
  while (next_opt(&o, &n, &v, nb, sizeof nb)) {
    if (!strcmp(n, "--help")) return fputs(PARETO_USAGE, stdout), 0;
    if (need(cmd, n, v)) return NAS_EXIT_USAGE;
    if (!strcmp(n, "--db")) db = v;
    else if (!strcmp(n, "--objectives")) objs = v;
    else if (!strcmp(n, "--where")) where = v;
    else if (!strcmp(n, "--format")) format = v;
    else if (!strcmp(n, "--run")) {
      if (parse_int(cmd, n, v, 1, 2147483647L, &run)) return NAS_EXIT_USAGE;
    } else
      return nas_cli_usage_error(cmd, "unknown option '%s'", n);
  }
  if (!db) return nas_cli_usage_error(cmd, "--db FILE is required");
  int fmt = !strcmp(format, "table") ? 0 : !strcmp(format, "csv") ? 1 : !strcmp(format, "json") ? 2 : -1;
  if (fmt < 0) return nas_cli_usage_error(cmd, "option --format: unknown format '%s' (table, csv, json)", format);
  nas_err e = {0};
  char ex[512];
  nas_objectives ob;
  if (nas_objectives_expand(objs, ex, sizeof ex, &e) != NAS_OK ||
      nas_objectives_parse(ex, &ob, &e) != NAS_OK)
    return nas_cli_usage_error(cmd, "option --objectives: %s", e.msg);
  nas_store *st = NULL;
  if (nas_store_open_readonly(db, &st, &e) != NAS_OK) return nas_cli_search_fail(&e);
  nas_pareto_row *rows = NULL;
  int nr = 0;
  if (nas_pareto_front(st, &ob, run, where, &rows, &nr, &e) != NAS_OK)
    return nas_store_close(st), nas_cli_search_fail(&e);
  if (fmt == 2) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < nr; i++) {
      cJSON *r = cJSON_CreateObject();
      cJSON_AddNumberToObject(r, "id", (double)rows[i].id);
      cJSON_AddNumberToObject(r, "run", (double)rows[i].run_id);
      for (int j = 0; j < ob.n; j++) cJSON_AddNumberToObject(r, nas_metric_name(ob.metric[j]), rows[i].v[j]);
      cJSON_AddItemToArray(a, r);
    }
    char *t = cJSON_PrintUnformatted(a);
    if (t) printf("%s\n", t);
    cJSON_free(t);
    cJSON_Delete(a);
  } else {
    printf(fmt ? "id,run" : "%-6s %-4s", "id", "run");
    for (int j = 0; j < ob.n; j++) printf(fmt ? ",%s" : " %16s", nas_metric_name(ob.metric[j]));
    printf("\n");
    for (int i = 0; i < nr; i++) {
      printf(fmt ? "%lld,%lld" : "%-6lld %-4lld", (long long)rows[i].id, (long long)rows[i].run_id);
      for (int j = 0; j < ob.n; j++) printf(fmt ? ",%.10g" : " %16.6g", rows[i].v[j]);
      printf("\n");
    }
  }
  free(rows);
  nas_store_close(st);
  return 0;
}

/* ---- plot ----------------------------------------------------------------------------------- */

static const char PLOT_USAGE[] =
    "usage: nas plot --db FILE --run N --out FILE.svg [--x latency|macs]\n"
    "\n"
    "Scatter of the run's priced candidates: x = predicted latency (or MACs), y = int8 test\n"
    "accuracy (0 for candidates not trained); the Pareto front is highlighted and the run's\n"
    "latency or MACs budget is drawn as a line.\n";

static int cmd_plot(int argc, char **argv) {
  const char *db = NULL, *out = NULL, *xs = "latency", *cmd = "plot", *n, *v;
  long run = 0;
  opts o = {argc, 0, argv, cmd};
  char nb[64];
  while (next_opt(&o, &n, &v, nb, sizeof nb)) {
    if (!strcmp(n, "--help")) return fputs(PLOT_USAGE, stdout), 0;
    if (need(cmd, n, v)) return NAS_EXIT_USAGE;
    if (!strcmp(n, "--db")) db = v;
    else if (!strcmp(n, "--out")) out = v;
    else if (!strcmp(n, "--x")) xs = v;
    else if (!strcmp(n, "--run")) {
      if (parse_int(cmd, n, v, 1, 2147483647L, &run)) return NAS_EXIT_USAGE;
    } else
      return nas_cli_usage_error(cmd, "unknown option '%s'", n);
  }
  if (!db) return nas_cli_usage_error(cmd, "--db FILE is required");
  if (!run) return nas_cli_usage_error(cmd, "--run N is required");
  if (!out) return nas_cli_usage_error(cmd, "--out FILE.svg is required");
  int use_macs = !strcmp(xs, "macs");
  if (!use_macs && strcmp(xs, "latency")) return nas_cli_usage_error(cmd, "option --x: '%s' (latency, macs)", xs);
  nas_err e = {0};
  nas_store *st = NULL;
  if (nas_store_open_readonly(db, &st, &e) != NAS_OK) return nas_cli_search_fail(&e);
  nas_run_row rr;
  memset(&rr, 0, sizeof rr);
  int64_t *ids = NULL;
  int nc = 0;
  if (nas_store_run_get(st, run, &rr, &e) != NAS_OK ||
      nas_store_candidate_ids(st, run, NULL, &ids, &nc, &e) != NAS_OK)
    return nas_store_close(st), nas_cli_search_fail(&e);
  double *X = nas_calloc((size_t)nc + 1, sizeof(double)), *Y = nas_calloc((size_t)nc + 1, sizeof(double));
  int *done = nas_calloc((size_t)nc + 1, sizeof(int)), *front = nas_calloc((size_t)nc + 1, sizeof(int));
  int m = 0;
  for (int i = 0; i < nc; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    if (nas_store_candidate_get(st, ids[i], &r, &e) != NAS_OK) continue;
    double x = use_macs ? r.m.macs : r.m.latency_pred_ms;
    if (isfinite(x)) {
      X[m] = x, done[m] = !strcmp(r.state, "done") && isfinite(r.m.acc_int8_test);
      Y[m] = done[m] ? r.m.acc_int8_test : 0;
      m++;
    }
    nas_store_candidate_row_free(&r);
  }
  for (int i = 0; i < m; i++) {
    front[i] = done[i];
    for (int j = 0; j < m && front[i]; j++)
      if (j != i && done[j] && X[j] <= X[i] && Y[j] >= Y[i] && (X[j] < X[i] || Y[j] > Y[i])) front[i] = 0;
  }
  double budget = 0;
  cJSON *cfg = cJSON_Parse(rr.config_json);
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, use_macs ? "max_macs" : "max_latency_ms");
  if (cJSON_IsNumber(b)) budget = b->valuedouble;
  cJSON_Delete(cfg);
  double xmax = budget * 1.05;
  for (int i = 0; i < m; i++) xmax = X[i] > xmax ? X[i] : xmax;
  if (xmax <= 0) xmax = 1;
  xmax *= 1.05;
  FILE *f = fopen(out, "w");
  if (!f) {
    nas_errf(&e, NAS_EIO, "%s: cannot write", out);
    free(X), free(Y), free(done), free(front), free(ids), nas_store_run_row_free(&rr), nas_store_close(st);
    return nas_cli_search_fail(&e);
  }
  const int W = 640, H = 440, L = 70, R = 20, T = 40, B = 60;
  double pw = W - L - R, ph = H - T - B;
#define PX(x) (L + (x) / xmax * pw)
#define PY(y) (T + (1 - (y)) * ph)
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
  fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"14\">run %lld: %s on %s (%s)</text>\n", L,
          (long long)run, rr.space, rr.target, rr.strategy);
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", L, T, pw, ph);
  for (int t = 0; t <= 5; t++) {
    double y = t / 5.0, x = xmax * t / 5.0;
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, PY(y) + 4, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3g</text>\n", PX(x), H - B + 16, x);
  }
  fprintf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 18,
          use_macs ? "MACs" : "predicted latency (ms)");
  fprintf(f, "<text transform=\"translate(18,%.0f) rotate(-90)\" text-anchor=\"middle\">int8 test accuracy</text>\n", T + ph / 2);
  if (budget > 0)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"red\" stroke-dasharray=\"6,4\"/>"
               "<text x=\"%.1f\" y=\"%d\" fill=\"red\">budget %.3g</text>\n",
            PX(budget), T, PX(budget), T + ph, PX(budget) + 4, T + 14, budget);
  for (int i = 0; i < m; i++)
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" stroke=\"%s\"/>\n", PX(X[i]), PY(Y[i]),
            front[i] ? 5 : 3, front[i] ? "orange" : done[i] ? "steelblue" : "lightgray", front[i] ? "black" : "none");
  /* the front as a step line, by increasing x */
  int prev = -1;
  for (;;) {
    int nx = -1;
    for (int i = 0; i < m; i++)
      if (front[i] && (prev < 0 || X[i] > X[prev] || (X[i] == X[prev] && i > prev)) &&
          (nx < 0 || X[i] < X[nx]))
        nx = i;
    if (nx < 0) break;
    if (prev >= 0)
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"orange\"/>\n", PX(X[prev]),
              PY(Y[prev]), PX(X[nx]), PY(Y[nx]));
    prev = nx;
  }
  fprintf(f, "</svg>\n");
#undef PX
#undef PY
  int bad = fclose(f) != 0;
  printf("wrote %s: %d candidates\n", out, m);
  free(X), free(Y), free(done), free(front), free(ids);
  nas_store_run_row_free(&rr);
  nas_store_close(st);
  if (bad) return nas_errf(&e, NAS_EIO, "%s: write failed", out), nas_cli_search_fail(&e);
  return 0;
}

const nas_cli_cmd nas_cli_search = {"search", "search a space for architectures that fit a target",
                                    cmd_search, SEARCH_USAGE};
const nas_cli_cmd nas_cli_resume = {"resume", "continue an interrupted search", cmd_resume,
                                    RESUME_USAGE};
const nas_cli_cmd nas_cli_runs = {"runs", "list the runs of a store", cmd_runs, RUNS_USAGE};
const nas_cli_cmd nas_cli_show = {"show", "print one stored candidate", cmd_show, SHOW_USAGE};
const nas_cli_cmd nas_cli_pareto = {"pareto", "the Pareto front of stored candidates", cmd_pareto,
                                    PARETO_USAGE};
const nas_cli_cmd nas_cli_plot = {"plot", "SVG scatter of a run with its front", cmd_plot,
                                  PLOT_USAGE};
