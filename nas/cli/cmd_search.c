/* nas/cli/cmd_search.c: `nas search` and `nas resume`. The strategy comes from the table of
 * strategies (nas/strategies/strategy.h): by --strategy NAME for a search, by the name stored
 * with the run for a resume. A search's options are those every run has (nas_run_options),
 * the proposal loop's for proposal strategies and the strategy's own; they are parsed into
 * the run's configuration object and handed with the strategy to the run driver (nas/run.h).
 * Progress lines, SIGINT handling and the end-of-run summary are printed here. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nas/cli/cli.h"
#include "nas/job.h"
#include "nas/run.h"
#include "nas/strategies/strategy.h"

/* ---- progress and SIGINT ----------------------------------------------------------------- */

static volatile sig_atomic_t g_stop = 0;
static void on_sigint(int sig) {
  if (g_stop) { /* a second Ctrl-C: stop now (the store stays consistent; resume re-trains) */
    signal(sig, SIG_DFL);
    raise(sig);
  }
  g_stop = 1;
}

/* The first SIGINT/SIGTERM sets the flag the run polls (the current step finishes and the run
 * stays resumable); a second one stops the process at once. */
static volatile sig_atomic_t *stop_on_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  return &g_stop;
}

/* One line per candidate state change; user is the strategy, whose unit says whether lines
 * count candidates of the budget or sweep points (DNAS, with a line per supernet epoch). */
static void progress(const nas_search_progress *p, void *user) {
  const nas_strategy *s = user;
  int points = !strcmp(s->unit, "point");
  if (points && !strcmp(p->state, "supernet")) {
    printf("point %d/%d  %s\n", p->k, p->budget, p->reason ? p->reason : "");
    fflush(stdout);
    return;
  }
  if (!points && !strcmp(p->state, "proposed")) return;
  if (points) {
    printf("point %d/%d  candidate #%lld  %-8s", p->k, p->budget, (long long)p->cand_id, p->state);
  } else {
    if (p->retrain_epochs) printf("retrain (%d epochs) ", p->retrain_epochs);
    printf("candidate %d/%d  #%lld  %-8s", p->k, p->budget, (long long)p->cand_id, p->state);
  }
  if (!strcmp(p->state, "done"))
    printf("  acc_int8 %.4f  acc_float %.4f", p->acc_int8, p->acc_float);
  if (isfinite(p->latency_ms))
    printf("  latency %.3f ms  sram %.0f B  flash %.0f B  macs %.0f", p->latency_ms, p->peak_sram,
           p->flash, p->macs);
  if (p->reason) printf("  (%s)", p->reason);
  if (!points && isfinite(p->best_acc)) printf("  best so far %.4f (#%lld)", p->best_acc, (long long)p->best_id);
  printf("\n");
  fflush(stdout);
}

/* The end-of-run summary (interrupted and resumable, or the counts and the best). */
static int finish(const char *db, const nas_search_summary *s) {
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

/* ---- search ------------------------------------------------------------------------------ */

static const nas_opt SEARCH_OPTS[] = {
    {"--strategy", NAS_OPT_STR, "NAME", .help = "the search strategy (below)"},
    {"--db", NAS_OPT_STR, "FILE", .help = "SQLite store (created if missing)"},
    {"--threads", NAS_OPT_INT, "N", 1, 1024, .help = "threads for OpenMP and OpenBLAS (all cores)"},
    {0}};

static const char SEARCH_HEAD[] =
    "usage: nas search --space S --strategy NAME --dataset D --target T --db FILE [options]\n"
    "\n";
static const char SEARCH_ABOUT[] =
    "Proposes architectures from the space, prices each on the target (over-budget ones are\n"
    "rejected without training), trains the rest, quantises them to int8 and stores all of\n"
    "it in the SQLite store FILE. Ctrl-C finishes the current candidate and leaves a\n"
    "resumable run (`nas resume`); a second Ctrl-C stops at once (resume trains the\n"
    "unfinished candidate again).\n"
    "\n";

/* The option tables of a search with strategy s (NULL: the options every strategy has). */
static void tables_for(const nas_strategy *s, const nas_opt *t[5]) {
  int n = 0;
  t[n++] = nas_run_options, t[n++] = SEARCH_OPTS;
  if (s && s->propose) t[n++] = nas_propose_options;
  if (s && s->options) t[n++] = s->options;
  t[n] = NULL;
}

/* `nas search --help`: the options of every strategy, then every strategy of the table with
 * its options; with --strategy NAME only that one. */
static void help_for(FILE *f, const nas_strategy *only) {
  fputs(SEARCH_HEAD, f);
  fputs(only && only->help ? only->help : SEARCH_ABOUT, f);
  if (only && only->help) fputc('\n', f);
  const nas_opt *common[] = {nas_run_options, SEARCH_OPTS, NULL};
  nas_opts_print(f, common);
  fputs(only ? "\nstrategy:\n" : "\nstrategies (--strategy NAME):\n", f);
  for (int i = 0; i < nas_strategy_count(); i++) {
    const nas_strategy *s = nas_strategy_at(i);
    if (!only || s == only) fprintf(f, "  %-10s %s\n", s->name, s->summary);
  }
  char group[128] = "";
  for (int i = 0; i < nas_strategy_count(); i++) { /* the proposal strategies share a loop */
    const nas_strategy *s = nas_strategy_at(i);
    if (s->propose && (!only || s == only))
      snprintf(group + strlen(group), sizeof group - strlen(group), "%s%s", group[0] ? ", " : "", s->name);
  }
  if (group[0]) {
    fprintf(f, "\noptions of %s (the proposal loop):\n", group);
    const nas_opt *t[] = {nas_propose_options, NULL};
    nas_opts_print(f, t);
  }
  for (int i = 0; i < nas_strategy_count(); i++) {
    const nas_strategy *s = nas_strategy_at(i);
    if (!s->options || (only && s != only)) continue;
    fprintf(f, "\noptions of %s:\n", s->name);
    const nas_opt *t[] = {s->options, NULL};
    nas_opts_print(f, t);
  }
  if (!only) fputs("\nRun `nas search --strategy NAME --help` for one strategy.\n", f);
}

static void search_help(FILE *f) { help_for(f, NULL); }

static int cmd_search(int argc, char **argv) {
  const char *cmd = "search";
  char names[256], pipe_names[256];
  nas_strategy_names(names, sizeof names, ", ");
  nas_strategy_names(pipe_names, sizeof pipe_names, "|");
  const char *name = nas_args_peek(argc, argv, "--strategy");
  const nas_strategy *s = nas_strategy_find(name);
  if (name && !s) return nas_cli_usage_error(cmd, "option --strategy: unknown strategy '%s' (%s)", name, names);
  if (!s) {
    for (int i = 0; i < argc; i++)
      if (!strcmp(argv[i], "--help")) return search_help(stdout), 0;
    return nas_cli_usage_error(cmd, "--strategy %s is required", pipe_names);
  }
  const nas_opt *tables[5];
  tables_for(s, tables);
  char context[64];
  snprintf(context, sizeof context, " for --strategy %s", s->name);
  nas_args a = {.cmd = cmd, .tables = tables, .context = context};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return help_for(stdout, s), 0;
  if (nas_args_require(&a, "--space") || nas_args_require(&a, "--dataset")) return NAS_EXIT_USAGE;
  if (nas_args_exclusive(&a, "--target", "--target-file")) return NAS_EXIT_USAGE;
  if (!nas_arg(&a, "--target") && !nas_arg(&a, "--target-file"))
    return nas_cli_usage_error(cmd, "--target ID is required");
  if (nas_args_require(&a, "--db")) return NAS_EXIT_USAGE;
  cJSON *config = cJSON_CreateObject();
  if (!config) return nas_cli_errorf(1, "out of memory");
  int rc = 0;
  for (int t = 0; !rc && tables[t]; t++) rc = nas_args_to_config(&a, tables[t], config);
  if (rc) return cJSON_Delete(config), rc;
  nas_set_threads((int)nas_arg_int(&a, "--threads", 0));
  const char *db = nas_arg_str(&a, "--db", NULL);
  nas_search_hooks h = {progress, (void *)s, stop_on_sigint()};
  nas_search_summary sum;
  nas_err e = {0};
  rc = nas_run_start(db, s, config, &h, &sum, &e);
  cJSON_Delete(config);
  if (rc != NAS_OK)
    return e.code == NAS_EUSAGE ? nas_cli_usage_error(cmd, "%s", e.msg) : nas_cli_error(&e);
  return finish(db, &sum);
}

const nas_cli_cmd nas_cli_search = {"search", "search a space for architectures that fit a target",
                                    cmd_search, search_help};

/* ---- resume ------------------------------------------------------------------------------ */

static const nas_opt RESUME_OPTS[] = {
    {"--db", NAS_OPT_STR, "FILE", .help = "the store"},
    {"--run", NAS_OPT_INT, "N", 1, 2147483647, .help = "the run (default: the latest run not done)"},
    {"--threads", NAS_OPT_INT, "N", 1, 1024, .help = "threads for OpenMP and OpenBLAS (all cores)"},
    {0}};
static const nas_opt *const RESUME_TABLES[] = {RESUME_OPTS, NULL};

static void resume_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas resume --db FILE [--run N]\n"
               "\n"
               "Continues an interrupted run (default: the latest run not done) from its stored\n"
               "configuration with the strategy it was started with: finished candidates are kept,\n"
               "one left in training is trained again, and with the run's seed the run ends with the\n"
               "same candidates as an uninterrupted one.\n"
               "\n",
               RESUME_TABLES, NULL);
}

static int cmd_resume(int argc, char **argv) {
  nas_args a = {.cmd = "resume", .tables = RESUME_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return resume_help(stdout), 0;
  if (nas_args_require(&a, "--db")) return NAS_EXIT_USAGE;
  const char *db = nas_arg_str(&a, "--db", NULL);
  int64_t run = nas_arg_int(&a, "--run", 0);
  nas_set_threads((int)nas_arg_int(&a, "--threads", 0));
  nas_err e = {0};
  char name[64], names[256];
  if (nas_run_strategy_of(db, &run, name, sizeof name, &e) != NAS_OK) return nas_cli_error(&e);
  const nas_strategy *s = nas_strategy_find(name);
  if (!s) {
    nas_errf(&e, NAS_EINVAL, "%s: run %lld has strategy '%s', which this build does not have (%s)", db,
             (long long)run, name, nas_strategy_names(names, sizeof names, ", "));
    return nas_cli_error(&e);
  }
  printf("resuming run %lld (strategy %s) of %s\n", (long long)run, s->name, db);
  fflush(stdout);
  nas_search_hooks h = {progress, (void *)s, stop_on_sigint()};
  nas_search_summary sum;
  if (nas_run_resume(db, s, run, &h, &sum, &e) != NAS_OK) return nas_cli_error(&e);
  return finish(db, &sum);
}

const nas_cli_cmd nas_cli_resume = {"resume", "continue an interrupted search", cmd_resume,
                                    resume_help};
