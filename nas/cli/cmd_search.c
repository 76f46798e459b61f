/* nas/cli/cmd_search.c: `nas search` and `nas resume`: running searches (nas/search.h). */
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

static void search_help(FILE *f) { fputs(SEARCH_USAGE, f); }
static void resume_help(FILE *f) { fputs(RESUME_USAGE, f); }

const nas_cli_cmd nas_cli_search = {"search", "search a space for architectures that fit a target",
                                    cmd_search, search_help};
const nas_cli_cmd nas_cli_resume = {"resume", "continue an interrupted search", cmd_resume,
                                    resume_help};

