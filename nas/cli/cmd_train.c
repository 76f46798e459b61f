/* nas/cli/cmd_train.c: `nas train` (an arch JSON trained on a dataset, optionally saved as a
 * checkpoint) and `nas eval` (a checkpoint scored on a dataset's test split); the jobs are
 * nas/job.h's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nas/cli/cli.h"
#include "nas/job.h"
#include "train/optim.h"
#include "train/qat.h"

/* ---- train ------------------------------------------------------------------------------- */

static const nas_opt TRAIN_OPTS[] = {
    {"--arch", NAS_OPT_STR, "FILE", .help = "architecture JSON (see README, \"Architecture JSON\")"},
    {"--dataset", NAS_OPT_STR, "SPEC",
     .help = "fashion-mnist[:DIR] | idx:DIR |\nspeech-commands:DIR[,key=value...] (README, \"Datasets\")"},
    {"--epochs", NAS_OPT_INT, "N", 1, 100000, .help = "training epochs (10)"},
    {"--batch", NAS_OPT_INT, "N", 1, 65536, .help = "batch size (128)"},
    {"--lr", NAS_OPT_NUM, "X", 1e-9, 100, .help = "peak learning rate (adam/adamw 0.002, sgd 0.05)"},
    {"--optimizer", NAS_OPT_ENUM, "NAME", .choices = "sgd|adam|adamw", .what = "optimiser",
     .help = "adam | adamw | sgd (adam); sgd uses momentum 0.9"},
    {"--weight-decay", NAS_OPT_NUM, "X", 0, 10,
     .help = "L2 (sgd, adam) or decoupled (adamw) weight decay (0)"},
    {"--schedule", NAS_OPT_ENUM, "NAME", .choices = "cosine|step|const", .what = "schedule",
     .help = "cosine | step | const (cosine, per step)"},
    {"--warmup", NAS_OPT_NUM, "EPOCHS", 0, 100000,
     .help = "linear warm-up length in epochs, may be fractional (0)"},
    {"--augment", NAS_OPT_STR, "LIST",
     .help = "comma list of: shift (random shift by up to 2 px), flip"},
    {"--seed", NAS_OPT_INT, "N", 0, 2147483647, .help = "seed of initialisation, shuffling, dropout (1)"},
    {"--threads", NAS_OPT_INT, "N", 1, 1024, .help = "threads for OpenMP and OpenBLAS (all cores)"},
    {"--train-limit", NAS_OPT_INT, "N", 1, 2147483647, .help = "use at most N training samples (all)"},
    {"--save", NAS_OPT_STR, "FILE", .help = "write a checkpoint after training"},
    {"--qat", NAS_OPT_STR, "METHOD",
     .help = "quantisation-aware training: ste (fake quant, straight-through\n"
             "estimator) | alpha (alpha-blending); the learned activation ranges\n"
             "are saved in the checkpoint and used by `nas export`"},
    {"--qat-epochs", NAS_OPT_INT, "N", 1, 100000,
     .help = "the last N of --epochs are QAT epochs at 0.1x the learning rate (1);\n"
             "N = --epochs: the whole run is QAT at the full learning rate"},
    {"--prune", NAS_OPT_STR, "SPEC",
     .help = "pruning: key=value,... or a JSON object, replacing the arch's \"prune\"\n"
             "(method=magnitude|svdo, sparsity, scope=layer|global, begin, end, every,\n"
             "threshold, kl_weight, kl_warmup, channels, l1, channels_at; docs/formats.md)"},
    {"--json", NAS_OPT_FLAG, .help = "print one JSON object as the last line of stdout"},
    {0}};
static const nas_opt *const TRAIN_TABLES[] = {TRAIN_OPTS, NULL};

static void train_help(FILE *f) {
  nas_cli_help(f, "usage: nas train --arch FILE --dataset SPEC [options]\n\n", TRAIN_TABLES, NULL);
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

/* The job of the parsed command line: *job filled, 0 or a usage error. */
static int train_job(const nas_args *a, nas_train_job *job) {
  const char *cmd = "train";
  memset(job, 0, sizeof *job);
  const char *opt = nas_arg_str(a, "--optimizer", "adam");
  int optimizer = !strcmp(opt, "sgd") ? NAS_SGD : !strcmp(opt, "adamw") ? NAS_ADAMW : NAS_ADAM;
  nas_train_cfg_default(&job->cfg, optimizer);
  job->arch_path = nas_arg_str(a, "--arch", NULL);
  job->dataset = nas_arg_str(a, "--dataset", NULL);
  job->save_path = nas_arg_str(a, "--save", NULL);
  job->prune = nas_arg_str(a, "--prune", NULL);
  if (job->prune) { /* checked here so that a bad spec is a usage error */
    char *pj = NULL;
    nas_err pe = {0};
    if (nas_prune_spec_parse(job->prune, &pj, &pe) != NAS_OK) return nas_cli_usage_error(cmd, "%s", pe.msg);
    free(pj);
  }
  job->train_limit = (int)nas_arg_int(a, "--train-limit", 0);
  job->qat_epochs = (int)nas_arg_int(a, "--qat-epochs", 0);
  job->cfg.epochs = (int)nas_arg_int(a, "--epochs", job->cfg.epochs);
  job->cfg.batch = (int)nas_arg_int(a, "--batch", job->cfg.batch);
  job->cfg.seed = (uint64_t)nas_arg_int(a, "--seed", (long long)job->cfg.seed);
  job->cfg.warmup_epochs = (float)nas_arg_num(a, "--warmup", job->cfg.warmup_epochs);
  if (nas_arg(a, "--lr")) job->cfg.lr = (float)nas_arg_num(a, "--lr", 0);
  job->cfg.optim.weight_decay = (float)nas_arg_num(a, "--weight-decay", 0);
  if (nas_arg(a, "--schedule")) job->cfg.sched = nas_sched_parse(nas_arg_str(a, "--schedule", NULL));
  const char *qat = nas_arg_str(a, "--qat", NULL);
  nas_err qe = {0};
  if (qat && nas_qat_mode_parse(qat, &job->qat, &qe)) return nas_cli_usage_error(cmd, "option --qat: %s", qe.msg);
  const char *aug = nas_arg_str(a, "--augment", NULL);
  if (aug) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", aug);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      if (!strcmp(t, "shift")) job->cfg.aug.shift = 2;
      else if (!strcmp(t, "flip")) job->cfg.aug.flip = 1;
      else return nas_cli_usage_error(cmd, "option --augment: unknown augmentation '%s' (shift, flip)", t);
    }
  }
  if (nas_args_require(a, "--arch") || nas_args_require(a, "--dataset")) return NAS_EXIT_USAGE;
  if (job->qat_epochs && !job->qat) return nas_cli_usage_error(cmd, "--qat-epochs needs --qat ste|alpha");
  if (job->qat_epochs > job->cfg.epochs)
    return nas_cli_usage_error(cmd, "--qat-epochs %d exceeds --epochs %d", job->qat_epochs, job->cfg.epochs);
  return 0;
}

/* Below this many optimiser steps in all, an accuracy near chance gets a note on stderr. */
#define FEW_STEPS 200

/* A hint when training was too short to learn: few optimiser steps (e.g. --train-limit 500
 * with the default batch of 128: 4 per epoch) and a validation accuracy below twice chance. */
static void brief_training_note(const nas_train_job *job, const nas_train_summary *s) {
  int b = job->cfg.batch > 0 ? job->cfg.batch : 1;
  long long steps = (long long)job->cfg.epochs * ((s->train_n + b - 1) / b);
  if (steps >= FEW_STEPS || s->classes < 2 || s->r.val_acc >= 2.0 / s->classes) return;
  fprintf(stderr, "nas: note: val_acc %.4f is near chance (%d classes) after only %lld optimiser "
          "steps (%d training samples / batch %d x %d epochs); use a smaller --batch, more "
          "--epochs or more --train-limit\n", s->r.val_acc, s->classes, steps, s->train_n, b,
          job->cfg.epochs);
}

static int cmd_train(int argc, char **argv) {
  nas_args a = {.cmd = "train", .tables = TRAIN_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return train_help(stdout), 0;
  nas_train_job job;
  if (train_job(&a, &job)) return NAS_EXIT_USAGE;
  nas_set_threads((int)nas_arg_int(&a, "--threads", 0));
  int tty = isatty(fileno(stderr));
  job.cfg.progress = train_progress;
  job.cfg.user = &tty;
  job.warn = nas_cli_warn;
  nas_train_summary s;
  nas_err e = {0};
  if (nas_train_job_run(&job, &s, &e) != NAS_OK) return nas_cli_error(&e);
  printf("%s: params %lld  MACs %lld  train %d  val %d  test %d\n", s.arch_name, s.params, s.macs,
         s.train_n, s.val_n, s.test_n);
  printf("val_acc %.4f  test_acc %.4f  train %.1f s  %.0f samples/s\n", s.r.val_acc, s.r.test_acc,
         s.r.train_seconds, s.r.samples_per_s);
  if (job.qat && s.float_r.samples > 0)
    printf("float phase: val_acc %.4f  test_acc %.4f\n", s.float_r.val_acc, s.float_r.test_acc);
  if (job.qat) printf("qat (%s): val_acc %.4f  test_acc %.4f (fake-quantised network)\n",
                      nas_qat_mode_name(job.qat), s.r.val_acc, s.r.test_acc);
  if (s.pruned) {
    printf("pruned: %lld of %lld prunable weights zero (%.1f%%), %lld of %lld weights in all",
           s.prune.masked_zero, s.prune.masked_total,
           s.prune.masked_total ? 100.0 * (double)s.prune.masked_zero / (double)s.prune.masked_total : 0.0,
           s.prune.weights_zero, s.prune.weights_total);
    if (s.prune.channels_total)
      printf("; %d of %d channels removed (params %lld, MACs %lld after)", s.prune.channels_removed,
             s.prune.channels_total, s.params_compact, s.macs_compact);
    printf("\n");
  }
  if (job.save_path) printf("checkpoint: %s\n", job.save_path);
  brief_training_note(&job, &s);
  if (nas_arg_flag(&a, "--json")) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "arch", s.arch_name);
    cJSON_AddNumberToObject(j, "val_acc", s.r.val_acc);
    cJSON_AddNumberToObject(j, "test_acc", s.r.test_acc);
    cJSON_AddNumberToObject(j, "final_loss", s.r.final_loss);
    cJSON_AddNumberToObject(j, "params", (double)s.params);
    cJSON_AddNumberToObject(j, "macs", (double)s.macs);
    cJSON_AddNumberToObject(j, "train_seconds", s.r.train_seconds);
    cJSON_AddNumberToObject(j, "samples_per_s", s.r.samples_per_s);
    cJSON_AddNumberToObject(j, "epochs", job.cfg.epochs);
    cJSON_AddNumberToObject(j, "seed", (double)job.cfg.seed);
    if (s.pruned) {
      cJSON_AddNumberToObject(j, "pruned_zero", (double)s.prune.masked_zero);
      cJSON_AddNumberToObject(j, "pruned_total", (double)s.prune.masked_total);
      cJSON_AddNumberToObject(j, "channels_removed", s.prune.channels_removed);
      cJSON_AddNumberToObject(j, "params_compact", (double)s.params_compact);
      cJSON_AddNumberToObject(j, "macs_compact", (double)s.macs_compact);
    }
    if (job.qat) {
      cJSON_AddStringToObject(j, "qat", nas_qat_mode_name(job.qat));
      if (s.float_r.samples > 0) cJSON_AddNumberToObject(j, "float_test_acc", s.float_r.test_acc);
    }
    nas_cli_print_json(j);
  }
  return 0;
}

const nas_cli_cmd nas_cli_train = {"train", "train an architecture (arch JSON) on a dataset",
                                   cmd_train, train_help};

/* ---- eval -------------------------------------------------------------------------------- */

static const nas_opt EVAL_OPTS[] = {
    {"--checkpoint", NAS_OPT_STR, "FILE", .help = "a checkpoint written by `nas train --save`"},
    {"--dataset", NAS_OPT_STR, "SPEC", .help = "dataset to test on (default: the one it was trained on)"},
    {"--threads", NAS_OPT_INT, "N", 1, 1024, .help = "threads for OpenMP and OpenBLAS (all cores)"},
    {"--json", NAS_OPT_FLAG, .help = "print one JSON object as the last line of stdout"},
    {0}};
static const nas_opt *const EVAL_TABLES[] = {EVAL_OPTS, NULL};

static void eval_help(FILE *f) {
  nas_cli_help(f, "usage: nas eval --checkpoint FILE [--dataset SPEC] [--threads N] [--json]\n\n",
               EVAL_TABLES, NULL);
}

static int cmd_eval(int argc, char **argv) {
  nas_args a = {.cmd = "eval", .tables = EVAL_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return eval_help(stdout), 0;
  if (nas_args_require(&a, "--checkpoint")) return NAS_EXIT_USAGE;
  nas_eval_job job = {.checkpoint = nas_arg_str(&a, "--checkpoint", NULL),
                      .dataset = nas_arg_str(&a, "--dataset", NULL),
                      .warn = nas_cli_warn};
  nas_set_threads((int)nas_arg_int(&a, "--threads", 0));
  nas_eval_summary s;
  nas_err e = {0};
  if (nas_eval_job_run(&job, &s, &e) != NAS_OK) return nas_cli_error(&e);
  printf("test_acc %.4f  test_loss %.4f  val_acc %.4f  (%d test samples; params %lld, MACs %lld)\n",
         s.test_acc, s.test_loss, s.val_acc, s.test_n, s.params, s.macs);
  if (nas_arg_flag(&a, "--json")) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "test_acc", s.test_acc);
    cJSON_AddNumberToObject(j, "test_loss", s.test_loss);
    cJSON_AddNumberToObject(j, "val_acc", s.val_acc);
    cJSON_AddNumberToObject(j, "test_n", s.test_n);
    cJSON_AddNumberToObject(j, "params", (double)s.params);
    cJSON_AddNumberToObject(j, "macs", (double)s.macs);
    nas_cli_print_json(j);
  }
  return 0;
}

const nas_cli_cmd nas_cli_eval = {"eval", "evaluate a checkpoint on a dataset's test split",
                                  cmd_eval, eval_help};
