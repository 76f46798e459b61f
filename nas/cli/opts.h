/* nas/cli/opts.h: the option parser of the `nas` program, and its one error printer. Every
 * command describes its options with tables of descriptors (nas/option.h); nas_args_parse
 * reads argv against them ("--name value" or "--name=value"; a flag takes no value; a value
 * given as a separate argument may not start with "--"), range-checks the values, reports the
 * first problem as a usage error and returns the parsed values; nas_cli_help prints the
 * option list of `--help` from the same tables. Only the CLI parses argv, prints and chooses
 * exit codes: 0 ok, 1 runtime failure, 2 usage error. */
#ifndef NAS_NAS_CLI_OPTS_H
#define NAS_NAS_CLI_OPTS_H

#include <stdio.h>

#include "core/error.h"
#include "nas/option.h"

#define NAS_EXIT_USAGE 2
#define NAS_ARGS_MAX 64    /* options of one command line's tables */
#define NAS_ARGS_MAX_POS 4 /* positional arguments kept */

struct cJSON;

/* The value of one option after parsing. */
typedef struct nas_optval {
  int given;            /* 1 when given (a repeated option: the last one counts) */
  const char *text;     /* its text (points into argv; NULL for a flag) */
  long long i;          /* INT, SIZE: the value */
  double x;             /* INT, NUM, SIZE: the value */
} nas_optval;

/* One command line. The caller sets cmd, tables, max_pos and context (a designated
 * initializer); nas_args_parse fills the rest. */
typedef struct nas_args {
  const char *cmd;                  /* command name for messages ("search") */
  const nas_opt *const *tables;     /* option tables, the list ended by NULL */
  int max_pos;                      /* positional arguments allowed */
  const char *context;              /* appended to "unknown option '--x'" (" for --strategy
                                       dnas"), or NULL */
  int help;                         /* --help was given (then nothing else is checked) */
  int n;                            /* options of the tables */
  const nas_opt *opt[NAS_ARGS_MAX]; /* them, in table order */
  nas_optval val[NAS_ARGS_MAX];     /* their values */
  int npos;                         /* positional arguments given */
  const char *pos[NAS_ARGS_MAX_POS];
} nas_args;

/* Parses argv (the arguments after the command name). "--help" anywhere sets a->help and ends
 * the parse. Errors, each printed as a usage error naming the option: an unknown option, a
 * missing value, a value of a flag, a value out of range or not of its kind, more positional
 * arguments than max_pos. Returns 0 or NAS_EXIT_USAGE. */
int nas_args_parse(nas_args *a, int argc, char **argv);

/* The value of option name in argv by the parser's rules (the last "--name value" or
 * "--name=value"), or NULL; for choosing the tables of a command line before parsing it (the
 * strategy of `nas search`). */
const char *nas_args_peek(int argc, char **argv, const char *name);

/* The value of option name (one of the tables' options) when given, else NULL. A name that no
 * table has is a programming error: it is reported and the program aborts. */
const nas_optval *nas_arg(const nas_args *a, const char *name);
const char *nas_arg_str(const nas_args *a, const char *name, const char *def);
long long nas_arg_int(const nas_args *a, const char *name, long long def);
double nas_arg_num(const nas_args *a, const char *name, double def);
int nas_arg_flag(const nas_args *a, const char *name);
/* Usage error "NAME ARG is required" unless name was given; returns 0 or NAS_EXIT_USAGE. */
int nas_args_require(const nas_args *a, const char *name);
/* Usage error "X and Y exclude each other" when both were given; 0 or NAS_EXIT_USAGE. */
int nas_args_exclusive(const nas_args *a, const char *x, const char *y);
/* Writes every given option of table that has a configuration key into config (through its
 * apply function when it has one). Returns 0, or prints apply's message as a usage error and
 * returns NAS_EXIT_USAGE (1 when out of memory). */
int nas_args_to_config(const nas_args *a, const nas_opt *table, struct cJSON *config);

/* The option list of tables, one option per line (continuation lines indented). */
void nas_opts_print(FILE *f, const nas_opt *const *tables);
/* head, then the option list of tables (when not NULL), then tail (when not NULL). */
void nas_cli_help(FILE *f, const char *head, const nas_opt *const *tables, const char *tail);

/* The error printer: "nas: error: MESSAGE" on stderr; returns the exit code (2 for a
 * NAS_EUSAGE error, else 1). nas_cli_errorf prints a formatted message the same way and
 * returns code. */
int nas_cli_error(const nas_err *e);
int nas_cli_errorf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error of command cmd: "nas: error: CMD: MESSAGE (see nas CMD --help)"; returns
 * NAS_EXIT_USAGE. */
/* The library's warning callback (core/error.h nas_warn_fn): prints the line on stderr. */
void nas_cli_warn(void *user, const char *line);

int nas_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints j as one line on stdout and frees it (NULL-safe). */
void nas_cli_print_json(struct cJSON *j);

#endif
