/* nas/cli.h: subcommands of the `nas` program. Each lives in nas/cli_<name>.c, parses its
 * options, calls one library function and prints; it returns the process exit code
 * (0 ok, 1 runtime failure, 2 usage) and never exits itself. main.c dispatches by name. */
#ifndef NAS_NAS_CLI_H
#define NAS_NAS_CLI_H

#include <signal.h>
#include <stdio.h>

#define NAS_EXIT_USAGE 2

typedef struct nas_cli_cmd {
  const char *name;                      /* e.g. "import" */
  const char *summary;                   /* one line for `nas --help` */
  int (*run)(int argc, char **argv);     /* argv excludes the program and command names */
  const char *usage;                     /* full help text for `nas <name> --help` */
} nas_cli_cmd;

/* The library's warning callback (core/error.h nas_warn_fn): prints the line on stderr. */
void nas_cli_warn(void *user, const char *line);

/* Prints "nas: error: CMD: MESSAGE (see nas CMD --help)" on stderr; returns NAS_EXIT_USAGE. */
int nas_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Commands defined in cli_*.c files (main.c lists them in its COMMANDS table). A new
 * command adds `extern const nas_cli_cmd nas_cli_<name>;` here. */
extern const nas_cli_cmd nas_cli_import; /* cli_deploy.c: read a .tflite into the int8 graph */
extern const nas_cli_cmd nas_cli_run;    /* cli_deploy.c: run a .tflite on raw int8 input */
extern const nas_cli_cmd nas_cli_targets; /* cli_latency.c: list MCU targets */
extern const nas_cli_cmd nas_cli_profile; /* cli_latency.c: price an arch on a target */
extern const nas_cli_cmd nas_cli_latency; /* cli_latency.c: fit latency models */
extern const nas_cli_cmd nas_cli_export;  /* cli_export.c: checkpoint -> int8 model file */
extern const nas_cli_cmd nas_cli_search;  /* cli_search.c: run a search */
extern const nas_cli_cmd nas_cli_resume;  /* cli_search.c: continue an interrupted search */
extern const nas_cli_cmd nas_cli_runs;    /* cli_search.c: list runs */
extern const nas_cli_cmd nas_cli_show;    /* cli_search.c: print a candidate */
extern const nas_cli_cmd nas_cli_pareto;  /* cli_search.c: Pareto front */
extern const nas_cli_cmd nas_cli_plot;    /* cli_search.c: SVG plot of a run */
extern const nas_cli_cmd nas_cli_spaces;  /* cli_spaces.c: list built-in search spaces */
extern const nas_cli_cmd nas_cli_measure; /* cli_measure.c: per-layer measurement */

/* cli_dnas.c: `nas search --strategy dnas` and `nas resume` of a DNAS run (cli_search.c
 * hands these over). */
int nas_cli_dnas_search(int argc, char **argv);
int nas_cli_dnas_resume(const char *db, long run);

/* cli_search.c: what `nas search` shares with every strategy's command line. */
struct nas_search_cfg;
struct nas_search_summary;
struct nas_err;
/* Takes option n with value v when it is one every strategy has (--space, --dataset, --target,
 * --target-file, --db, --objectives, --max-sram/-flash/-macs, --max-latency-ms, --epochs,
 * --batch, --train-limit, --seed) into g or *db: 0 when taken, NAS_EXIT_USAGE (message
 * printed) when its value is bad, -1 when n is not one of them. */
int nas_cli_search_opt(const char *cmd, const char *n, const char *v, struct nas_search_cfg *g,
                       const char **db);
/* Usage error unless --space, --dataset, --target (or --target-file) and --db were given. */
int nas_cli_search_required(const char *cmd, const struct nas_search_cfg *g, const char *db);
/* Prints "nas: error: MSG"; returns the exit code (2 for NAS_EUSAGE, else 1). */
int nas_cli_search_fail(const struct nas_err *e);
/* Prints the end-of-run summary (interrupted and resumable, or the counts and the best). */
int nas_cli_search_finish(const char *db, const struct nas_search_summary *s);
/* Installs the search commands' SIGINT/SIGTERM handler (the first signal sets the returned
 * flag, which the search hooks poll: the current step finishes and the run stays resumable;
 * a second one stops the process at once) and returns that flag. */
volatile sig_atomic_t *nas_cli_stop_on_sigint(void);

#endif
