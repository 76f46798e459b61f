/* nas/cli/cmd_spaces.c: `nas spaces`: the built-in search spaces, their size and description. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/cli/cli.h"
#include "nas/space_info.h"
#include "search_spaces/space.h"

static const nas_opt SPACES_OPTS[] = {
    {"--json", NAS_OPT_FLAG, .help = "one JSON array: name, architectures, log10, exact, decisions, description"},
    {0}};
static const nas_opt *const SPACES_TABLES[] = {SPACES_OPTS, NULL};

static void spaces_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas spaces [--json]\n"
               "\n"
               "Lists the built-in search spaces (search_spaces/*.json): the number of distinct\n"
               "architectures each holds (decisions inside a skipped optional block do not count; shown\n"
               "as 10^x when above a billion), its number of decisions and its description.\n"
               "\n",
               SPACES_TABLES, NULL);
}

static int cmd_spaces(int argc, char **argv) {
  nas_args a = {.cmd = "spaces", .tables = SPACES_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return spaces_help(stdout), 0;
  int json = nas_arg_flag(&a, "--json");
  cJSON *arr = json ? cJSON_CreateArray() : NULL;
  if (!json) printf("%-16s %14s %9s  %s\n", "space", "architectures", "decisions", "description");
  int rc = 0;
  for (int i = 0; i < nas_space_builtin_count(); i++) {
    const char *name = nas_space_builtin_name(i);
    nas_err e = {0};
    nas_space *s = NULL;
    double count = 0;
    int exact = 0;
    char *desc = NULL;
    if (nas_space_load_builtin(name, &s, &e) != NAS_OK ||
        nas_space_distinct(s, &count, &exact, &e) != NAS_OK ||
        nas_space_description(name, &desc, &e) != NAS_OK) {
      nas_cli_error(&e);
      nas_space_free(s);
      free(desc);
      rc = 1;
      continue;
    }
    if (json) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", name);
      cJSON_AddNumberToObject(o, "architectures", count);
      cJSON_AddNumberToObject(o, "log10", log10(count));
      cJSON_AddBoolToObject(o, "exact", exact);
      cJSON_AddNumberToObject(o, "decisions", nas_space_n_decisions(s));
      cJSON_AddStringToObject(o, "description", desc);
      cJSON_AddItemToArray(arr, o);
    } else {
      char size[32];
      if (count < 1e9) snprintf(size, sizeof size, "%s%.0f", exact ? "" : "<=", count);
      else snprintf(size, sizeof size, "%s10^%.1f", exact ? "" : "<=", log10(count));
      /* the description's first sentence keeps the table to one line per space */
      const char *colon = strchr(desc, ':');
      int len = colon ? (int)(colon - desc) : (int)strlen(desc);
      printf("%-16s %14s %9d  %.*s\n", name, size, nas_space_n_decisions(s), len, desc);
    }
    nas_space_free(s);
    free(desc);
  }
  if (json) nas_cli_print_json(arr);
  return rc;
}

const nas_cli_cmd nas_cli_spaces = {"spaces", "list the built-in search spaces and their size",
                                    cmd_spaces, spaces_help};
