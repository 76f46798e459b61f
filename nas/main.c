/* nas/main.c: the `nas` command-line program. Thin: each subcommand parses its options into
 * a config struct, calls one library function, and prints. Only main() exits.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nas/cli.h"
#include "nas/job.h"
#include "train/qat.h"

#define EXIT_USAGE NAS_EXIT_USAGE

static const char *TRAIN_USAGE =
    "usage: nas train --arch FILE --dataset SPEC [options]\n"
    "\n"
    "  --arch FILE         architecture JSON (see README, \"Architecture JSON\")\n"
    "  --dataset SPEC      fashion-mnist[:DIR] | idx:DIR |\n"
    "                      speech-commands:DIR[,key=value...] (README, \"Datasets\")\n"
    "  --epochs N          training epochs (10)\n"
    "  --batch N           batch size (128)\n"
    "  --lr X              peak learning rate (adam/adamw 0.002, sgd 0.05)\n"
    "  --optimizer NAME    adam | adamw | sgd (adam); sgd uses momentum 0.9\n"
    "  --weight-decay X    L2 (sgd, adam) or decoupled (adamw) weight decay (0)\n"
    "  --schedule NAME     cosine | step | const (cosine, per step)\n"
    "  --warmup EPOCHS     linear warm-up length in epochs, may be fractional (0)\n"
    "  --augment LIST      comma list of: shift (random shift by up to 2 px), flip\n"
    "  --seed N            seed of initialisation, shuffling, dropout (1)\n"
    "  --threads N         threads for OpenMP and OpenBLAS (all cores)\n"
    "  --train-limit N     use at most N training samples (all)\n"
    "  --save FILE         write a checkpoint after training\n"
    "  --qat METHOD        quantisation-aware training: ste (fake quant, straight-through\n"
    "                      estimator) | alpha (alpha-blending); the learned activation ranges\n"
    "                      are saved in the checkpoint and used by `nas export`\n"
    "  --qat-epochs N      the last N of --epochs are QAT epochs at 0.1x the learning rate (1);\n"
    "                      N = --epochs: the whole run is QAT at the full learning rate\n"
    "  --json              print one JSON object as the last line of stdout\n";

static const char *EVAL_USAGE =
    "usage: nas eval --checkpoint FILE [--dataset SPEC] [--threads N] [--json]\n"
    "\n"
    "  --checkpoint FILE   a checkpoint written by `nas train --save`\n"
    "  --dataset SPEC      dataset to test on (default: the one it was trained on)\n"
    "  --threads N         threads for OpenMP and OpenBLAS (all cores)\n"
    "  --json              print one JSON object as the last line of stdout\n";

/* ---- option parsing ---------------------------------------------------------------------- */

void nas_cli_warn(void *user, const char *line) {
  (void)user;
  fprintf(stderr, "%s\n", line);
}

int nas_cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nas: error: %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see nas %s --help)\n", cmd);
  va_end(ap);
  return EXIT_USAGE;
}

static int parse_long(const char *cmd, const char *name, const char *v, long lo, long hi,
                      long *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || end == v || x < lo || x > hi)
    return nas_cli_usage_error(cmd, "option %s: '%s' is not an integer in %ld..%ld", name, v, lo, hi);
  *out = x;
  return 0;
}

static int parse_double(const char *cmd, const char *name, const char *v, double lo, double hi,
                        double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || *end || end == v || !(x >= lo && x <= hi))
    return nas_cli_usage_error(cmd, "option %s: '%s' is not a number in %g..%g", name, v, lo, hi);
  *out = x;
  return 0;
}

/* Walks argv as "--name value" pairs (or "--name=value"; flags take no value). For each
 * option calls handle(name, value); value is NULL for flags. */
typedef int (*opt_handler)(const char *name, const char *value, void *ctx);

static int walk_opts(const char *cmd, int argc, char **argv, const char *const *flags,
                     opt_handler handle, void *ctx) {
  for (int i = 0; i < argc; i++) {
    char *a = argv[i], name[64];
    if (strncmp(a, "--", 2) != 0) return nas_cli_usage_error(cmd, "unexpected argument '%s'", a);
    const char *eq = strchr(a, '='), *val = NULL;
    snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
    int is_flag = 0;
    for (int k = 0; flags[k]; k++) is_flag |= !strcmp(flags[k], name);
    if (is_flag) {
      if (eq) return nas_cli_usage_error(cmd, "option %s takes no value", name);
    } else if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      return nas_cli_usage_error(cmd, "option %s needs a value", name);
    }
    int rc = handle(name, val, ctx);
    if (rc) return rc;
  }
  return 0;
}

/* Prints j as one line on stdout and frees it. */
static void print_json_line(cJSON *j) {
  char *t = j ? cJSON_PrintUnformatted(j) : NULL;
  if (t) printf("%s\n", t);
  cJSON_free(t);
  cJSON_Delete(j);
}

static int runtime_error(const nas_err *e) {
  fprintf(stderr, "nas: error: %s\n", e->msg);
  return e->code == NAS_EUSAGE ? EXIT_USAGE : 1;
}

/* ---- train ------------------------------------------------------------------------------- */

typedef struct train_ctx {
  nas_train_job job;   /* what to run */
  int optimizer;       /* enum nas_optim_kind */
  double lr;           /* -1: optimiser default */
  double wd;           /* weight decay */
  int threads;         /* 0: default */
  int json;            /* --json */
  int help;            /* --help */
} train_ctx;

static int train_opt(const char *n, const char *v, void *p) {
  train_ctx *c = p;
  long x = 0;
  double d = 0;
  const char *cmd = "train";
  if (!strcmp(n, "--help")) c->help = 1;
  else if (!strcmp(n, "--json")) c->json = 1;
  else if (!strcmp(n, "--arch")) c->job.arch_path = v;
  else if (!strcmp(n, "--dataset")) c->job.dataset = v;
  else if (!strcmp(n, "--save")) c->job.save_path = v;
  else if (!strcmp(n, "--epochs")) {
    if (parse_long(cmd, n, v, 1, 100000, &x)) return EXIT_USAGE;
    c->job.cfg.epochs = (int)x;
  } else if (!strcmp(n, "--batch")) {
    if (parse_long(cmd, n, v, 1, 65536, &x)) return EXIT_USAGE;
    c->job.cfg.batch = (int)x;
  } else if (!strcmp(n, "--seed")) {
    if (parse_long(cmd, n, v, 0, 2147483647L, &x)) return EXIT_USAGE;
    c->job.cfg.seed = (uint64_t)x;
  } else if (!strcmp(n, "--threads")) {
    if (parse_long(cmd, n, v, 1, 1024, &x)) return EXIT_USAGE;
    c->threads = (int)x;
  } else if (!strcmp(n, "--train-limit")) {
    if (parse_long(cmd, n, v, 1, 2147483647L, &x)) return EXIT_USAGE;
    c->job.train_limit = (int)x;
  } else if (!strcmp(n, "--lr")) {
    if (parse_double(cmd, n, v, 1e-9, 100, &d)) return EXIT_USAGE;
    c->lr = d;
  } else if (!strcmp(n, "--weight-decay")) {
    if (parse_double(cmd, n, v, 0, 10, &d)) return EXIT_USAGE;
    c->wd = d;
  } else if (!strcmp(n, "--warmup")) {
    if (parse_double(cmd, n, v, 0, 100000, &d)) return EXIT_USAGE;
    c->job.cfg.warmup_epochs = (float)d;
  } else if (!strcmp(n, "--optimizer")) {
    if (!strcmp(v, "sgd")) c->optimizer = NAS_SGD;
    else if (!strcmp(v, "adam")) c->optimizer = NAS_ADAM;
    else if (!strcmp(v, "adamw")) c->optimizer = NAS_ADAMW;
    else return nas_cli_usage_error(cmd, "option --optimizer: unknown optimiser '%s' (sgd, adam, adamw)", v);
  } else if (!strcmp(n, "--schedule")) {
    int k = nas_sched_parse(v);
    if (k < 0) return nas_cli_usage_error(cmd, "option --schedule: unknown schedule '%s' (cosine, step, const)", v);
    c->job.cfg.sched = k;
  } else if (!strcmp(n, "--qat")) {
    nas_err qe = {0};
    if (nas_qat_mode_parse(v, &c->job.qat, &qe)) return nas_cli_usage_error(cmd, "option --qat: %s", qe.msg);
  } else if (!strcmp(n, "--qat-epochs")) {
    if (parse_long(cmd, n, v, 1, 100000, &x)) return EXIT_USAGE;
    c->job.qat_epochs = (int)x;
  } else if (!strcmp(n, "--augment")) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
      if (!strcmp(t, "shift")) c->job.cfg.aug.shift = 2;
      else if (!strcmp(t, "flip")) c->job.cfg.aug.flip = 1;
      else return nas_cli_usage_error(cmd, "option --augment: unknown augmentation '%s' (shift, flip)", t);
    }
  } else {
    return nas_cli_usage_error(cmd, "unknown option '%s'", n);
  }
  return 0;
}

/* Progress: a bar on a terminal (stderr), plain per-epoch lines on stdout otherwise. */
static void train_progress(const nas_epoch_report *r, void *user) {
  int tty = *(int *)user;
  if (r->val_acc < 0) {
    if (!tty || (r->step % 10 && r->step != r->steps)) return;
    int width = 30, fill = (int)((double)r->step / r->steps * width);
    fprintf(stderr, "\repoch %d/%d [%.*s%*s] %d/%d loss %.4f %.0f samples/s", r->epoch, r->epochs,
            fill, "##############################", width - fill, "", r->step, r->steps,
            r->train_loss, r->samples_per_s);
    fflush(stderr);
    return;
  }
  if (tty) fprintf(stderr, "\r%*s\r", 100, "");
  printf("epoch %d/%d  train_loss %.4f  val_acc %.4f  lr %.5f  %.0f samples/s\n", r->epoch,
         r->epochs, r->train_loss, r->val_acc, (double)r->lr, r->samples_per_s);
  fflush(stdout);
}

static int cmd_train(int argc, char **argv) {
  train_ctx c = {.optimizer = NAS_ADAM, .lr = -1};
  nas_train_cfg_default(&c.job.cfg, NAS_ADAM);
  static const char *const flags[] = {"--json", "--help", NULL};
  int rc = walk_opts("train", argc, argv, flags, train_opt, &c);
  if (rc) return rc;
  if (c.help) return fputs(TRAIN_USAGE, stdout), 0;
  if (!c.job.arch_path) return nas_cli_usage_error("train", "--arch FILE is required");
  if (!c.job.dataset) return nas_cli_usage_error("train", "--dataset SPEC is required");
  if (c.job.qat_epochs && !c.job.qat) return nas_cli_usage_error("train", "--qat-epochs needs --qat ste|alpha");
  if (c.job.qat_epochs > c.job.cfg.epochs)
    return nas_cli_usage_error("train", "--qat-epochs %d exceeds --epochs %d", c.job.qat_epochs, c.job.cfg.epochs);
  nas_train_cfg keep = c.job.cfg;
  nas_train_cfg_default(&c.job.cfg, c.optimizer);
  c.job.cfg.epochs = keep.epochs, c.job.cfg.batch = keep.batch, c.job.cfg.seed = keep.seed;
  c.job.cfg.sched = keep.sched, c.job.cfg.warmup_epochs = keep.warmup_epochs;
  c.job.cfg.aug = keep.aug;
  if (c.lr > 0) c.job.cfg.lr = (float)c.lr;
  c.job.cfg.optim.weight_decay = (float)c.wd;
  nas_set_threads(c.threads);
  int tty = isatty(fileno(stderr));
  c.job.cfg.progress = train_progress;
  c.job.cfg.user = &tty;
  c.job.warn = nas_cli_warn;
  nas_train_summary s;
  nas_err e = {0};
  if (nas_train_job_run(&c.job, &s, &e) != NAS_OK) return runtime_error(&e);
  printf("%s: params %lld  MACs %lld  train %d  val %d  test %d\n", s.arch_name, s.params, s.macs,
         s.train_n, s.val_n, s.test_n);
  printf("val_acc %.4f  test_acc %.4f  train %.1f s  %.0f samples/s\n", s.r.val_acc, s.r.test_acc,
         s.r.train_seconds, s.r.samples_per_s);
  if (c.job.qat && s.float_r.samples > 0)
    printf("float phase: val_acc %.4f  test_acc %.4f\n", s.float_r.val_acc, s.float_r.test_acc);
  if (c.job.qat) printf("qat (%s): val_acc %.4f  test_acc %.4f (fake-quantised network)\n",
                        nas_qat_mode_name(c.job.qat), s.r.val_acc, s.r.test_acc);
  if (c.job.save_path) printf("checkpoint: %s\n", c.job.save_path);
  if (c.json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "arch", s.arch_name);
    cJSON_AddNumberToObject(j, "val_acc", s.r.val_acc);
    cJSON_AddNumberToObject(j, "test_acc", s.r.test_acc);
    cJSON_AddNumberToObject(j, "final_loss", s.r.final_loss);
    cJSON_AddNumberToObject(j, "params", (double)s.params);
    cJSON_AddNumberToObject(j, "macs", (double)s.macs);
    cJSON_AddNumberToObject(j, "train_seconds", s.r.train_seconds);
    cJSON_AddNumberToObject(j, "samples_per_s", s.r.samples_per_s);
    cJSON_AddNumberToObject(j, "epochs", c.job.cfg.epochs);
    cJSON_AddNumberToObject(j, "seed", (double)c.job.cfg.seed);
    if (c.job.qat) {
      cJSON_AddStringToObject(j, "qat", nas_qat_mode_name(c.job.qat));
      if (s.float_r.samples > 0) cJSON_AddNumberToObject(j, "float_test_acc", s.float_r.test_acc);
    }
    print_json_line(j);
  }
  return 0;
}

/* ---- eval -------------------------------------------------------------------------------- */

typedef struct eval_ctx {
  nas_eval_job job;  /* what to run */
  int threads;       /* 0: default */
  int json, help;    /* flags */
} eval_ctx;

static int eval_opt(const char *n, const char *v, void *p) {
  eval_ctx *c = p;
  long x = 0;
  if (!strcmp(n, "--help")) c->help = 1;
  else if (!strcmp(n, "--json")) c->json = 1;
  else if (!strcmp(n, "--checkpoint")) c->job.checkpoint = v;
  else if (!strcmp(n, "--dataset")) c->job.dataset = v;
  else if (!strcmp(n, "--threads")) {
    if (parse_long("eval", n, v, 1, 1024, &x)) return EXIT_USAGE;
    c->threads = (int)x;
  } else {
    return nas_cli_usage_error("eval", "unknown option '%s'", n);
  }
  return 0;
}

static int cmd_eval(int argc, char **argv) {
  eval_ctx c = {0};
  static const char *const flags[] = {"--json", "--help", NULL};
  int rc = walk_opts("eval", argc, argv, flags, eval_opt, &c);
  if (rc) return rc;
  if (c.help) return fputs(EVAL_USAGE, stdout), 0;
  if (!c.job.checkpoint) return nas_cli_usage_error("eval", "--checkpoint FILE is required");
  nas_set_threads(c.threads);
  c.job.warn = nas_cli_warn;
  nas_eval_summary s;
  nas_err e = {0};
  if (nas_eval_job_run(&c.job, &s, &e) != NAS_OK) return runtime_error(&e);
  printf("test_acc %.4f  test_loss %.4f  val_acc %.4f  (%d test samples; params %lld, MACs %lld)\n",
         s.test_acc, s.test_loss, s.val_acc, s.test_n, s.params, s.macs);
  if (c.json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "test_acc", s.test_acc);
    cJSON_AddNumberToObject(j, "test_loss", s.test_loss);
    cJSON_AddNumberToObject(j, "val_acc", s.val_acc);
    cJSON_AddNumberToObject(j, "test_n", s.test_n);
    cJSON_AddNumberToObject(j, "params", (double)s.params);
    cJSON_AddNumberToObject(j, "macs", (double)s.macs);
    print_json_line(j);
  }
  return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static const nas_cli_cmd CMD_TRAIN = {"train", "train an architecture (arch JSON) on a dataset",
                                      cmd_train, NULL};
static const nas_cli_cmd CMD_EVAL = {"eval", "evaluate a checkpoint on a dataset's test split",
                                     cmd_eval, NULL};

/* Every subcommand; add new ones (declared in cli.h) here. */
static const nas_cli_cmd *const COMMANDS[] = {&CMD_TRAIN,      &CMD_EVAL,        &nas_cli_import,
                                              &nas_cli_run,    &nas_cli_targets, &nas_cli_profile,
                                              &nas_cli_latency, &nas_cli_export,  &nas_cli_search,
                                              &nas_cli_resume, &nas_cli_runs,    &nas_cli_show,
                                              &nas_cli_pareto, &nas_cli_plot,   &nas_cli_measure, &nas_cli_spaces};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static const char *usage_of(const nas_cli_cmd *c) {
  if (c == &CMD_TRAIN) return TRAIN_USAGE;
  if (c == &CMD_EVAL) return EVAL_USAGE;
  return c->usage;
}

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

int main(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    const nas_cli_cmd *c = argc > 2 ? find_cmd(argv[2]) : NULL;
    if (c) return fputs(usage_of(c), stdout), 0;
    print_usage(stdout);
    return 0;
  }
  const nas_cli_cmd *c = find_cmd(cmd);
  if (!c) {
    fprintf(stderr, "nas: error: unknown command '%s' (see nas --help)\n", cmd);
    return EXIT_USAGE;
  }
  return c->run(argc - 2, argv + 2);
}
