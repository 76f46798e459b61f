/* nas/option.h: option descriptors, the declarative description of one command-line option
 * (name, kind, range, help text, and for search options the configuration key it sets).
 * Tables of them are written by the CLI for its commands (nas/cli/cmd_*.c), by the run driver
 * for the options every search has (nas/run.h) and by each strategy for its own
 * (nas/strategies/); nas/cli/opts.h parses argv against them, range-checks the values,
 * reports usage errors and prints the option list of `--help`. Data only: nothing here
 * parses or prints.
 *
 * A table is an array of nas_opt ended by an entry whose name is NULL. */
#ifndef NAS_NAS_OPTION_H
#define NAS_NAS_OPTION_H

#include "core/error.h"

struct cJSON;

typedef enum nas_opt_kind {
  NAS_OPT_FLAG, /* no value ("--json") */
  NAS_OPT_INT,  /* an integer in lo..hi */
  NAS_OPT_NUM,  /* a number in lo..hi (open: lo < x < hi) */
  NAS_OPT_SIZE, /* a byte or count size with an optional K/M/G suffix (nas_parse_size) */
  NAS_OPT_STR,  /* any text (checked by the command) */
  NAS_OPT_ENUM  /* one of the words of `choices` */
} nas_opt_kind;

typedef struct nas_opt {
  const char *name;     /* "--epochs"; NULL ends a table */
  nas_opt_kind kind;
  const char *arg;      /* the value's placeholder in help and messages ("N", "FILE"); NULL
                           for flags */
  double lo, hi;        /* INT and NUM: the accepted range */
  int open;             /* NUM: 1 when the range excludes lo and hi */
  const char *choices;  /* ENUM: the accepted words, "table|csv|json" */
  const char *what;     /* ENUM: the noun of the error ("format": "unknown format 'x' (table,
                           csv, json)"), NULL for "'x' (table, csv, json)"; INT and NUM: what
                           the value must be ("a positive number") instead of "an integer in
                           lo..hi" / "a number in lo..hi" */
  const char *help;     /* help text; '\n' starts a continuation line */
  const char *key;      /* search options: the key of the run's configuration JSON the value is
                           stored under (numbers for INT, NUM, SIZE; strings for STR, ENUM;
                           true for FLAG); NULL for options that are not configuration */
  /* Options with their own syntax: checks text and writes it into the configuration object
     (replacing what an earlier occurrence wrote); on error returns NAS_EUSAGE with one line
     naming the option. NULL: the value is stored under key as its kind says. */
  int (*apply)(const char *text, struct cJSON *config, nas_err *e);
} nas_opt;

#endif
