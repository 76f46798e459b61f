/* nas/cli_latency.c: `nas targets`, `nas profile` and `nas latency fit`: pricing an
 * architecture on an MCU target without training it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency/cost.h"
#include "latency/target.h"
#include "nas/cli.h"
#include "train/net.h"

static int fail(const nas_err *e) {
  fprintf(stderr, "nas: error: %s\n", e->msg);
  return e->code == NAS_EUSAGE ? NAS_EXIT_USAGE : 1;
}

/* ---- nas targets ------------------------------------------------------------------------- */

static const char TARGETS_USAGE[] =
    "usage: nas targets\n"
    "\n"
    "Lists the built-in MCU targets (latency/targets/*.json; NAS_TARGET_DIR replaces the\n"
    "directory). Add a target by dropping a JSON file there, or pass --target-file to the\n"
    "commands that take a target.\n";

static int cmd_targets(int argc, char **argv) {
  if (argc == 1 && !strcmp(argv[0], "--help")) return fputs(TARGETS_USAGE, stdout), 0;
  if (argc > 0) return nas_cli_usage_error("targets", "unexpected argument '%s'", argv[0]);
  nas_err e = {0};
  char *t = nas_targets_table(NULL, &e);
  if (!t) return fail(&e);
  fputs(t, stdout);
  free(t);
  return 0;
}

const nas_cli_cmd nas_cli_targets = {"targets", "list the MCU targets", cmd_targets,
                                     TARGETS_USAGE};

/* ---- nas profile ------------------------------------------------------------------------- */

static const char PROFILE_USAGE[] =
    "usage: nas profile --arch FILE (--target ID | --target-file FILE) [--json]\n"
    "\n"
    "Prices an architecture on a target before any training: per layer (kernel call) the\n"
    "op, output shape, MACs, parameters, flash bytes, SRAM working set and predicted ms,\n"
    "then totals and the binding budget. With --json, one JSON object whose totals are\n"
    "macs, params, flash_bytes, peak_sram_bytes and latency_ms, plus a layers array.\n"
    "Peak SRAM is provisional (a per-kernel working-set rule) until pricing goes through\n"
    "the int8 graph's memory planner.\n";

static int cmd_profile(int argc, char **argv) {
  const char *arch = NULL, *target = NULL, *target_file = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) return fputs(PROFILE_USAGE, stdout), 0;
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    const char **slot = !strcmp(a, "--arch")          ? &arch
                        : !strcmp(a, "--target")      ? &target
                        : !strcmp(a, "--target-file") ? &target_file
                                                      : NULL;
    if (!slot) return nas_cli_usage_error("profile", "unknown option '%s'", a);
    if (i + 1 >= argc) return nas_cli_usage_error("profile", "option %s needs a value", a);
    *slot = argv[++i];
  }
  if (!arch) return nas_cli_usage_error("profile", "--arch FILE is required");
  if (!target && !target_file)
    return nas_cli_usage_error("profile", "--target ID or --target-file FILE is required");
  nas_err e = {0};
  nas_target *t = NULL;
  nas_price *p = NULL;
  char *text = NULL, *out = NULL;
  int rc = nas_target_open(target, target_file, &t, &e);
  if (rc == NAS_OK) rc = nas_read_file(arch, &text, NULL, &e);
  if (rc == NAS_OK) rc = nas_price_arch(text, arch, t, &p, &e);
  if (rc == NAS_OK) {
    const char *slash = strrchr(arch, '/');
    out = json ? nas_price_json(p, t, slash ? slash + 1 : arch)
               : nas_price_table(p, t, slash ? slash + 1 : arch);
    if (out) {
      fputs(out, stdout);
      if (out[0] && out[strlen(out) - 1] != '\n') fputc('\n', stdout);
    }
  }
  free(out);
  free(text);
  nas_price_free(p);
  nas_target_free(t);
  return rc == NAS_OK ? 0 : fail(&e);
}

const nas_cli_cmd nas_cli_profile = {"profile", "price an architecture on an MCU target",
                                     cmd_profile, PROFILE_USAGE};

/* ---- nas latency fit --------------------------------------------------------------------- */

static const char LATENCY_USAGE[] =
    "usage: nas latency fit --measurements FILE.csv --target ID|--target-file FILE --out FILE\n"
    "\n"
    "Fits the target's latency models (linear in MACs from whole-model rows; per-layer\n"
    "coefficients per op from layer rows, least squares) to measurements and writes the\n"
    "updated target JSON to --out. CSV columns:\n"
    "target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms\n";

static int cmd_latency(int argc, char **argv) {
  if (argc < 1 || strcmp(argv[0], "fit") != 0) {
    if (argc >= 1 && !strcmp(argv[0], "--help")) return fputs(LATENCY_USAGE, stdout), 0;
    return nas_cli_usage_error("latency", "expected the subcommand 'fit'");
  }
  const char *meas = NULL, *target = NULL, *target_file = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) return fputs(LATENCY_USAGE, stdout), 0;
    const char **slot = !strcmp(a, "--measurements")  ? &meas
                        : !strcmp(a, "--target")      ? &target
                        : !strcmp(a, "--target-file") ? &target_file
                        : !strcmp(a, "--out")         ? &out
                                                      : NULL;
    if (!slot) return nas_cli_usage_error("latency", "unknown option '%s'", a);
    if (i + 1 >= argc) return nas_cli_usage_error("latency", "option %s needs a value", a);
    *slot = argv[++i];
  }
  if (!meas || !out || (!target && !target_file))
    return nas_cli_usage_error("latency", "--measurements, --target (or --target-file) and --out are required");
  char path[4096];
  if (!target_file) {
    snprintf(path, sizeof path, "%s/%s.json", nas_targets_dir(), target);
    target_file = path;
  }
  nas_fit_opts o;
  memset(&o, 0, sizeof o);
  nas_fit_report rep;
  nas_err e = {0};
  if (nas_fit_target_file(target_file, meas, out, &o, &rep, &e) != NAS_OK) return fail(&e);
  printf("wrote %s: per-layer in-sample error mean %.2f%% max %.2f%%; linear (model totals) "
         "mean %.2f%% max %.2f%%\n",
         out, 100 * rep.layer_mape, 100 * rep.layer_max_ape, 100 * rep.model_mape,
         100 * rep.model_max_ape);
  return 0;
}

const nas_cli_cmd nas_cli_latency = {"latency", "fit a target's latency model to measurements",
                                     cmd_latency, LATENCY_USAGE};
