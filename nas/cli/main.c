/* nas/cli/main.c: the `nas` command-line program: the table of subcommands (nas/cli/cli.h),
 * `nas --help` and `nas help <command>`. Only main() ends the process. Exit codes: 0 ok,
 * 1 runtime failure, 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "nas/cli/cli.h"

/* Every subcommand, in `nas --help` order; add new ones (declared in cli.h) here. */
static const nas_cli_cmd *const COMMANDS[] = {
    &nas_cli_train,  &nas_cli_eval,    &nas_cli_import, &nas_cli_run,   &nas_cli_targets,
    &nas_cli_profile, &nas_cli_latency, &nas_cli_export, &nas_cli_search, &nas_cli_resume,
    &nas_cli_runs,   &nas_cli_show,    &nas_cli_pareto, &nas_cli_plot,  &nas_cli_measure,
    &nas_cli_spaces};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void print_usage(FILE *f) {
  fputs("usage: nas <command> [options]\n\ncommands:\n", f);
  for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-8s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
  fputs("  help     show this help, or `nas help <command>`\n\n"
        "Run `nas <command> --help` for the options of a command.\n", f);
}

static const nas_cli_cmd *find_cmd(const char *name) {
  for (int i = 0; i < N_COMMANDS; i++)
    if (!strcmp(COMMANDS[i]->name, name)) return COMMANDS[i];
  return NULL;
}

static int unknown_command(const char *name) {
  return nas_cli_errorf(NAS_EXIT_USAGE, "unknown command '%s' (see nas --help)", name);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return NAS_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    if (argc > 3) {
      return nas_cli_errorf(NAS_EXIT_USAGE, "help takes one command name ('%s' and '%s')", argv[2], argv[3]);
    }
    if (argc == 3) {
      const nas_cli_cmd *c = find_cmd(argv[2]);
      if (!c) return unknown_command(argv[2]);
      c->help(stdout);
      return 0;
    }
    print_usage(stdout);
    return 0;
  }
  const nas_cli_cmd *c = find_cmd(cmd);
  if (!c) return unknown_command(cmd);
  return c->run(argc - 2, argv + 2);
}
