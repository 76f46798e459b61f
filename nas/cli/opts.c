/* nas/cli/opts.c: the option parser of the `nas` program and its one error printer (see
 * nas/cli/opts.h). */
#include "nas/cli/opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nas/run.h"

/* ---- errors ------------------------------------------------------------------------------ */

/* Every error line of the program: "nas: error: " + [CMD ": "] + message + [see-also]. */
static void error_line(const char *cmd, const char *fmt, va_list ap) {
  fprintf(stderr, "nas: error: ");
  if (cmd) fprintf(stderr, "%s: ", cmd);
  vfprintf(stderr, fmt, ap);
  if (cmd) fprintf(stderr, " (see nas %s --help)", cmd);
  fputc('\n', stderr);
}

int nas_cli_error(const nas_err *e) {
  return nas_cli_errorf(e->code == NAS_EUSAGE ? NAS_EXIT_USAGE : 1, "%s", e->msg);
}

int nas_cli_errorf(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_line(NULL, fmt, ap);
  va_end(ap);
  return code;
}

int nas_cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_line(cmd, fmt, ap);
  va_end(ap);
  return NAS_EXIT_USAGE;
}

void nas_cli_print_json(cJSON *j) {
  char *t = j ? cJSON_PrintUnformatted(j) : NULL;
  if (t) printf("%s\n", t);
  cJSON_free(t);
  cJSON_Delete(j);
}

/* ---- parsing ----------------------------------------------------------------------------- */

static int find(const nas_args *a, const char *name) {
  for (int i = 0; i < a->n; i++)
    if (!strcmp(a->opt[i]->name, name)) return i;
  return -1;
}

/* "a|b|c" -> "a, b, c" into buf. */
static const char *choice_list(const char *choices, char *buf, size_t cap) {
  size_t k = 0;
  for (const char *c = choices; *c && k + 3 < cap; c++) {
    if (*c == '|') buf[k++] = ',', buf[k++] = ' ';
    else buf[k++] = *c;
  }
  buf[k] = '\0';
  return buf;
}

/* 1 when word is one of the '|'-separated choices. */
static int is_choice(const char *choices, const char *word) {
  size_t n = strlen(word);
  for (const char *c = choices; *c;) {
    const char *bar = strchr(c, '|');
    size_t len = bar ? (size_t)(bar - c) : strlen(c);
    if (len == n && !strncmp(c, word, n)) return 1;
    if (!bar) break;
    c = bar + 1;
  }
  return 0;
}

/* Checks and converts v, the value of option o; prints the usage error. */
static int convert(const nas_args *a, const nas_opt *o, const char *v, nas_optval *out) {
  const char *cmd = a->cmd, *n = o->name;
  char *end = NULL;
  char buf[256];
  switch (o->kind) {
    case NAS_OPT_INT: {
      errno = 0;
      long long x = strtoll(v, &end, 10);
      if (errno || end == v || *end || (double)x < o->lo || (double)x > o->hi) {
        if (o->what) return nas_cli_usage_error(cmd, "option %s: '%s' is not %s", n, v, o->what);
        return nas_cli_usage_error(cmd, "option %s: '%s' is not an integer in %lld..%lld", n, v,
                                   (long long)o->lo, (long long)o->hi);
      }
      out->i = x, out->x = (double)x;
      return 0;
    }
    case NAS_OPT_NUM: {
      errno = 0;
      double x = strtod(v, &end);
      int in = o->open ? x > o->lo && x < o->hi : x >= o->lo && x <= o->hi;
      if (errno || end == v || *end || !in) {
        if (o->what) return nas_cli_usage_error(cmd, "option %s: '%s' is not %s", n, v, o->what);
        return nas_cli_usage_error(cmd, "option %s: '%s' is not a number in %g..%g", n, v, o->lo, o->hi);
      }
      out->x = x;
      return 0;
    }
    case NAS_OPT_SIZE: {
      long long x = 0;
      if (nas_parse_size(v, &x))
        return nas_cli_usage_error(cmd, "option %s: '%s' is not a size (N, NK, NM)", n, v);
      out->i = x, out->x = (double)x;
      return 0;
    }
    case NAS_OPT_ENUM:
      if (is_choice(o->choices, v)) return 0;
      choice_list(o->choices, buf, sizeof buf);
      if (o->what) return nas_cli_usage_error(cmd, "option %s: unknown %s '%s' (%s)", n, o->what, v, buf);
      return nas_cli_usage_error(cmd, "option %s: '%s' (%s)", n, v, buf);
    case NAS_OPT_STR:
    case NAS_OPT_FLAG:
      return 0;
  }
  return 0;
}

/* 1 for an argument that is an option name: "--x...", or "-x" that is not a number. */
static int is_option(const char *s) {
  if (s[0] != '-' || !s[1]) return 0;
  if (s[1] == '-') return 1;
  return !(s[1] >= '0' && s[1] <= '9') && s[1] != '.';
}

int nas_args_parse(nas_args *a, int argc, char **argv) {
  a->help = 0, a->n = 0, a->npos = 0;
  for (int t = 0; a->tables && a->tables[t]; t++)
    for (const nas_opt *o = a->tables[t]; o->name; o++) {
      if (a->n == NAS_ARGS_MAX) {
        fprintf(stderr, "nas: internal error: %s: more than %d options\n", a->cmd, NAS_ARGS_MAX);
        abort();
      }
      a->opt[a->n] = o;
      memset(&a->val[a->n], 0, sizeof a->val[a->n]);
      a->n++;
    }
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help")) return a->help = 1, 0;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (!is_option(arg)) {
      if (a->npos >= a->max_pos || a->npos >= NAS_ARGS_MAX_POS)
        return nas_cli_usage_error(a->cmd, "unexpected argument '%s'", arg);
      a->pos[a->npos++] = arg;
      continue;
    }
    const char *eq = strchr(arg, '=');
    char name[64];
    snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    int k = arg[1] == '-' ? find(a, name) : -1;
    if (k < 0)
      return nas_cli_usage_error(a->cmd, "unknown option '%s'%s", name, a->context ? a->context : "");
    const nas_opt *o = a->opt[k];
    const char *v = NULL;
    if (o->kind == NAS_OPT_FLAG) {
      if (eq) return nas_cli_usage_error(a->cmd, "option %s takes no value", name);
    } else if (eq) {
      v = eq + 1;
    } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
      v = argv[++i];
    } else {
      return nas_cli_usage_error(a->cmd, "option %s needs a value", name);
    }
    nas_optval val = {1, v, 0, 0};
    if (v && convert(a, o, v, &val)) return NAS_EXIT_USAGE;
    a->val[k] = val;
  }
  return 0;
}

const char *nas_args_peek(int argc, char **argv, const char *name) {
  const char *v = NULL;
  size_t n = strlen(name);
  for (int i = 0; i < argc; i++) {
    if (!strncmp(argv[i], name, n) && argv[i][n] == '=') v = argv[i] + n + 1;
    else if (!strcmp(argv[i], name) && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) v = argv[++i];
  }
  return v;
}

const nas_optval *nas_arg(const nas_args *a, const char *name) {
  int k = find(a, name);
  if (k < 0) { /* a command asking for an option its tables lack: a bug, not a user error */
    fprintf(stderr, "nas: internal error: %s: option %s is not in the option tables\n", a->cmd, name);
    abort();
  }
  return a->val[k].given ? &a->val[k] : NULL;
}

const char *nas_arg_str(const nas_args *a, const char *name, const char *def) {
  const nas_optval *v = nas_arg(a, name);
  return v ? v->text : def;
}

long long nas_arg_int(const nas_args *a, const char *name, long long def) {
  const nas_optval *v = nas_arg(a, name);
  return v ? v->i : def;
}

double nas_arg_num(const nas_args *a, const char *name, double def) {
  const nas_optval *v = nas_arg(a, name);
  return v ? v->x : def;
}

int nas_arg_flag(const nas_args *a, const char *name) { return nas_arg(a, name) != NULL; }

int nas_args_require(const nas_args *a, const char *name) {
  if (nas_arg(a, name)) return 0;
  const nas_opt *o = a->opt[find(a, name)];
  return nas_cli_usage_error(a->cmd, "%s%s%s is required", name, o->arg ? " " : "", o->arg ? o->arg : "");
}

int nas_args_exclusive(const nas_args *a, const char *x, const char *y) {
  if (nas_arg(a, x) && nas_arg(a, y)) return nas_cli_usage_error(a->cmd, "%s and %s exclude each other", x, y);
  return 0;
}

int nas_args_to_config(const nas_args *a, const nas_opt *table, cJSON *config) {
  for (const nas_opt *o = table; o && o->name; o++) {
    const nas_optval *v = nas_arg(a, o->name);
    if (!v || !o->key) continue;
    if (o->apply) {
      nas_err e = {0};
      if (o->apply(v->text, config, &e) != NAS_OK)
        return e.code == NAS_EUSAGE ? nas_cli_usage_error(a->cmd, "%s", e.msg) : nas_cli_error(&e);
      continue;
    }
    cJSON *item = o->kind == NAS_OPT_FLAG                            ? cJSON_CreateTrue()
                  : o->kind == NAS_OPT_INT || o->kind == NAS_OPT_SIZE ? cJSON_CreateNumber((double)v->i)
                  : o->kind == NAS_OPT_NUM                           ? cJSON_CreateNumber(v->x)
                                                                     : cJSON_CreateString(v->text);
    if (nas_config_set(config, o->key, item)) {
      return nas_cli_errorf(1, "out of memory");
    }
  }
  return 0;
}

/* ---- help -------------------------------------------------------------------------------- */

void nas_opts_print(FILE *f, const nas_opt *const *tables) {
  int col = 0;
  for (int t = 0; tables && tables[t]; t++)
    for (const nas_opt *o = tables[t]; o->name; o++) {
      int w = (int)strlen(o->name) + (o->arg ? 1 + (int)strlen(o->arg) : 0);
      if (w > col) col = w;
    }
  col = col < 16 ? 16 : col > 24 ? 24 : col;
  for (int t = 0; tables && tables[t]; t++)
    for (const nas_opt *o = tables[t]; o->name; o++) {
      char head[96];
      snprintf(head, sizeof head, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
      const char *h = o->help ? o->help : "";
      if ((int)strlen(head) > col) fprintf(f, "  %s\n  %-*s", head, col, "");
      else fprintf(f, "  %-*s", col, head);
      /* the help text, '\n' continuing at the same column */
      for (;;) {
        const char *nl = strchr(h, '\n');
        int len = nl ? (int)(nl - h) : (int)strlen(h);
        fprintf(f, "  %.*s\n", len, h);
        if (!nl) break;
        h = nl + 1;
        fprintf(f, "  %-*s", col, "");
      }
    }
}

void nas_cli_help(FILE *f, const char *head, const nas_opt *const *tables, const char *tail) {
  if (head) fputs(head, f);
  if (tables) nas_opts_print(f, tables);
  if (tail) fputs(tail, f);
}

void nas_cli_warn(void *user, const char *line) {
  (void)user;
  fprintf(stderr, "%s\n", line);
}
