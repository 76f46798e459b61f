/* nas/cli/cmd_dnas.c: `nas search --strategy dnas` and `nas resume` of a DNAS run
 * cmd_search.c hands these over: the same constraints, store and progress lines as the other
 * strategies, plus the DNAS options. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/cli/cli.h"
#include "nas/strategies/dnas.h"
#include "nas/search.h"

static const char USAGE[] =
    "usage: nas search --strategy dnas --space S --dataset D --target T --db FILE [options]\n"
    "\n"
    "Differentiable search (MicroNets-style DNAS): trains one supernet whose width, kernel,\n"
    "depth and op choices are relaxed into architecture logits, with expected MACs, flash,\n"
    "peak SRAM and latency in the loss; then extracts the argmax architecture, checks it\n"
    "with the exact cost model (repairing it when over budget), retrains it from scratch,\n"
    "quantises it and stores it as a candidate. Ctrl-C leaves a resumable run.\n"
    "\n"
    "  --space, --dataset, --target/--target-file, --db, --max-sram, --max-flash,\n"
    "  --max-latency-ms, --max-macs, --epochs (retraining), --batch, --train-limit,\n"
    "  --seed, --objectives, --eval-limit, --calib-samples   as for the other strategies\n"
    "  --supernet-epochs E  supernet training epochs per sweep point (8)\n"
    "  --warmup E           of those, epochs with the architecture fixed (2)\n"
    "  --supernet-limit N   the supernet trains on the first N training samples (all);\n"
    "                       the extracted candidates are retrained on all of them\n"
    "  --arch-every K       one architecture step after every K-th weight step (1)\n"
    "  --arch-lr X          Adam learning rate of the architecture logits (0.05)\n"
    "  --lr X               SGD learning rate of the supernet weights (0.05)\n"
    "  --temperature T0[:T1]  softmax temperature, annealed geometrically (5:0.5)\n"
    "  --sampling gumbel|softmax  relaxation (gumbel)\n"
    "  --cost-weights LIST  macs=..,flash=..,sram=..,latency=.. (sram=1)\n"
    "  --hinge X            weight of the over-budget penalty (5)\n"
    "  --sweep LIST         multipliers of the cost weights, one candidate each (1)\n";

static void progress(const nas_search_progress *p, void *user) {
  (void)user;
  if (!strcmp(p->state, "supernet")) {
    printf("point %d/%d  %s\n", p->k, p->budget, p->reason ? p->reason : "");
  } else {
    printf("point %d/%d  candidate #%lld  %-8s", p->k, p->budget, (long long)p->cand_id, p->state);
    if (!strcmp(p->state, "done")) printf("  acc_int8 %.4f  acc_float %.4f", p->acc_int8, p->acc_float);
    if (isfinite(p->latency_ms))
      printf("  latency %.3f ms  sram %.0f B  flash %.0f B  macs %.0f", p->latency_ms, p->peak_sram,
             p->flash, p->macs);
    if (p->reason) printf("  (%s)", p->reason);
    printf("\n");
  }
  fflush(stdout);
}

static int num(const char *cmd, const char *n, const char *v, double lo, double hi, double *out) {
  char *end;
  double x = v ? strtod(v, &end) : 0;
  if (!v || end == v || *end || !(x >= lo && x <= hi))
    return nas_cli_usage_error(cmd, "option %s: '%s' is not a number in %g..%g", n, v ? v : "", lo, hi);
  *out = x;
  return 0;
}

int nas_cli_dnas_search(int argc, char **argv) {
  const char *cmd = "search", *db = NULL;
  nas_dnas_cfg c;
  nas_dnas_cfg_default(&c);
  nas_search_cfg *g = &c.base;
  nas_err e = {0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *eq = strchr(a, '='), *v = NULL;
    char n[64];
    if (!strcmp(a, "--help")) return fputs(USAGE, stdout), 0;
    if (strncmp(a, "--", 2)) return nas_cli_usage_error(cmd, "unexpected argument '%s'", a);
    snprintf(n, sizeof n, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
    if (eq) v = eq + 1;
    else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) v = argv[++i];
    if (!v) return nas_cli_usage_error(cmd, "option %s needs a value", n);
    double x = 0;
    int rc = nas_cli_search_opt(cmd, n, v, g, &db);
    if (rc >= 0) {
      if (rc) return rc;
    } else if (!strcmp(n, "--strategy")) {
      if (strcmp(v, "dnas")) return nas_cli_usage_error(cmd, "option --strategy: expected dnas");
    } else if (!strcmp(n, "--supernet-epochs")) {
      if (num(cmd, n, v, 1, 10000, &x)) return NAS_EXIT_USAGE;
      c.sn_epochs = (int)x;
    } else if (!strcmp(n, "--warmup")) {
      if (num(cmd, n, v, 0, 10000, &x)) return NAS_EXIT_USAGE;
      c.warmup = (int)x;
    } else if (!strcmp(n, "--supernet-limit")) {
      if (num(cmd, n, v, 1, 2147483647.0, &x)) return NAS_EXIT_USAGE;
      c.sn_limit = (int)x;
    } else if (!strcmp(n, "--arch-every")) {
      if (num(cmd, n, v, 1, 1000000, &x)) return NAS_EXIT_USAGE;
      c.arch_every = (int)x;
    } else if (!strcmp(n, "--arch-lr")) {
      if (num(cmd, n, v, 1e-9, 100, &c.arch_lr)) return NAS_EXIT_USAGE;
    } else if (!strcmp(n, "--lr")) {
      if (num(cmd, n, v, 1e-9, 100, &c.lr)) return NAS_EXIT_USAGE;
    } else if (!strcmp(n, "--hinge")) {
      if (num(cmd, n, v, 0, 1e9, &c.hinge)) return NAS_EXIT_USAGE;
    } else if (!strcmp(n, "--temperature")) {
      if (nas_dnas_parse_temperature(v, &c.t0, &c.t1, &e)) return nas_cli_usage_error(cmd, "%s", e.msg);
    } else if (!strcmp(n, "--cost-weights")) {
      if (nas_dnas_parse_weights(v, c.w, &e)) return nas_cli_usage_error(cmd, "%s", e.msg);
    } else if (!strcmp(n, "--sweep")) {
      if (nas_dnas_parse_sweep(v, c.sweep, &c.n_sweep, &e)) return nas_cli_usage_error(cmd, "%s", e.msg);
    } else if (!strcmp(n, "--sampling")) {
      if (strcmp(v, "gumbel") && strcmp(v, "softmax"))
        return nas_cli_usage_error(cmd, "option --sampling: '%s' (gumbel, softmax)", v);
      c.sampling = !strcmp(v, "gumbel") ? NAS_DNAS_GUMBEL : NAS_DNAS_SOFTMAX;
    } else
      return nas_cli_usage_error(cmd, "unknown option '%s' for --strategy dnas", n);
  }
  if (nas_cli_search_required(cmd, g, db)) return NAS_EXIT_USAGE;
  if (c.warmup >= c.sn_epochs)
    return nas_cli_usage_error(cmd, "--warmup %d must be below --supernet-epochs %d", c.warmup, c.sn_epochs);
  nas_search_hooks h = {progress, NULL, nas_cli_stop_on_sigint()};
  nas_search_summary s;
  if (nas_dnas_run(db, &c, &h, &s, &e) != NAS_OK) return nas_cli_search_fail(&e);
  return nas_cli_search_finish(db, &s);
}

int nas_cli_dnas_resume(const char *db, long run) {
  nas_search_hooks h = {progress, NULL, nas_cli_stop_on_sigint()};
  nas_search_summary s;
  nas_err e = {0};
  if (nas_dnas_resume(db, run, &h, &s, &e) != NAS_OK) return nas_cli_search_fail(&e);
  return nas_cli_search_finish(db, &s);
}
