/* nas/cli/cli.h: the subcommands of the `nas` program. Each lives in a nas/cli/cmd_*.c file,
 * describes its options with a table (nas/option.h) parsed by nas/cli/opts.h, calls library
 * functions and prints; it returns the process exit code (0 ok, 1 runtime failure, 2 usage)
 * and never exits itself. main.c dispatches by name. */
#ifndef NAS_NAS_CLI_CLI_H
#define NAS_NAS_CLI_CLI_H

#include <stdio.h>

#include "nas/cli/opts.h"

typedef struct nas_cli_cmd {
  const char *name;                      /* e.g. "import" */
  const char *summary;                   /* one line for `nas --help` */
  int (*run)(int argc, char **argv);     /* argv excludes the program and command names */
  void (*help)(FILE *f);                 /* prints `nas <name> --help` */
} nas_cli_cmd;

/* The commands (main.c lists them in its COMMANDS table, in `nas --help` order). A new
 * command is a `const nas_cli_cmd` defined in a cmd_*.c file, declared here and listed there. */
extern const nas_cli_cmd nas_cli_train;   /* cmd_train.c: train an arch on a dataset */
extern const nas_cli_cmd nas_cli_eval;    /* cmd_train.c: score a checkpoint */
extern const nas_cli_cmd nas_cli_import;  /* cmd_deploy.c: read a .tflite into the int8 graph */
extern const nas_cli_cmd nas_cli_run;     /* cmd_deploy.c: run a .tflite on raw int8 input */
extern const nas_cli_cmd nas_cli_targets; /* cmd_latency.c: list MCU targets */
extern const nas_cli_cmd nas_cli_profile; /* cmd_latency.c: price an arch on a target */
extern const nas_cli_cmd nas_cli_latency; /* cmd_latency.c: fit latency models, ingest logs */
extern const nas_cli_cmd nas_cli_export;  /* cmd_export.c: checkpoint -> int8 model file */
extern const nas_cli_cmd nas_cli_search;  /* cmd_search.c: run a search */
extern const nas_cli_cmd nas_cli_resume;  /* cmd_search.c: continue an interrupted search */
extern const nas_cli_cmd nas_cli_runs;    /* cmd_store.c: list runs */
extern const nas_cli_cmd nas_cli_show;    /* cmd_store.c: print a candidate */
extern const nas_cli_cmd nas_cli_pareto;  /* cmd_store.c: Pareto front */
extern const nas_cli_cmd nas_cli_plot;    /* cmd_store.c: SVG plot of a run */
extern const nas_cli_cmd nas_cli_measure; /* cmd_measure.c: per-layer measurement */
extern const nas_cli_cmd nas_cli_spaces;  /* cmd_spaces.c: list built-in search spaces */

/* cmd_latency.c: --target ID and --target-file FILE, for the commands that take a target; and
 * the check that exactly one was given (a usage error naming both when both were, msg when
 * neither was): 0 or NAS_EXIT_USAGE. */
extern const nas_opt nas_cli_target_opts[];
int nas_cli_one_target(const nas_args *a, const char *msg);

#endif
