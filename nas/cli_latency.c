/* nas/cli_latency.c: `nas targets`, `nas profile` and `nas latency fit`: pricing an
 * architecture on an MCU target without training it; `nas latency ingest`: a board's log
 * (latency/measure.h) into measurement CSV rows for the fit. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "latency/cost.h"
#include "latency/measure.h"
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
    "usage: nas profile (--arch FILE | --checkpoint FILE | --tflite FILE)\n"
    "                   (--target ID | --target-file FILE) [--json]\n"
    "\n"
    "Prices a model on a target without training it: an architecture (arch JSON), the\n"
    "network of a checkpoint, or an int8 .tflite (one row per operator, flash from its real\n"
    "buffers). Per layer: op, output shape, MACs, parameters, flash bytes, the tensor arena\n"
    "in use while it runs and predicted ms; then totals and the binding budget. Peak SRAM\n"
    "is the int8 graph's tensor arena from deploy/'s memory planner (byte for byte what\n"
    "`nas export --format c` allocates) plus the target's runtime SRAM overhead; a net that\n"
    "does not lower to int8 (lstm/gru) gets a working-set estimate instead and says why.\n"
    "With --json, one JSON object whose totals are macs, params, flash_bytes,\n"
    "peak_sram_bytes (arena_bytes + runtime_sram_bytes) and latency_ms, plus a layers array.\n";

static int cmd_profile(int argc, char **argv) {
  const char *arch = NULL, *target = NULL, *target_file = NULL, *ckpt = NULL, *tfl = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) return fputs(PROFILE_USAGE, stdout), 0;
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    const char **slot = !strcmp(a, "--arch")          ? &arch
                        : !strcmp(a, "--checkpoint")  ? &ckpt
                        : !strcmp(a, "--tflite")      ? &tfl
                        : !strcmp(a, "--target")      ? &target
                        : !strcmp(a, "--target-file") ? &target_file
                                                      : NULL;
    if (!slot) return nas_cli_usage_error("profile", "unknown option '%s'", a);
    if (i + 1 >= argc) return nas_cli_usage_error("profile", "option %s needs a value", a);
    *slot = argv[++i];
  }
  if (!!arch + !!ckpt + !!tfl != 1)
    return nas_cli_usage_error("profile", "exactly one of --arch, --checkpoint or --tflite FILE is required");
  const char *model = arch ? arch : ckpt ? ckpt : tfl;
  if (!target && !target_file)
    return nas_cli_usage_error("profile", "--target ID or --target-file FILE is required");
  nas_err e = {0};
  nas_target *t = NULL;
  nas_price *p = NULL;
  char *text = NULL, *out = NULL;
  int rc = nas_target_open(target, target_file, &t, &e);
  if (rc == NAS_OK && arch) rc = nas_read_file(arch, &text, NULL, &e);
  if (rc == NAS_OK && arch) rc = nas_price_arch(text, arch, t, &p, &e);
  if (rc == NAS_OK && ckpt) rc = nas_price_checkpoint(ckpt, t, &p, &e);
  if (rc == NAS_OK && tfl) rc = nas_price_tflite(tfl, t, &p, &e);
  if (rc == NAS_OK) {
    const char *slash = strrchr(model, '/');
    out = json ? nas_price_json(p, t, slash ? slash + 1 : model)
               : nas_price_table(p, t, slash ? slash + 1 : model);
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

const nas_cli_cmd nas_cli_profile = {"profile", "price an arch, checkpoint or .tflite on an MCU target",
                                     cmd_profile, PROFILE_USAGE};

/* ---- nas latency fit --------------------------------------------------------------------- */

static const char LATENCY_USAGE[] =
    "usage: nas latency fit --measurements FILE.csv --target ID|--target-file FILE --out FILE\n"
    "\n"
    "Fits the target's latency models (linear in MACs from whole-model rows; per-layer\n"
    "coefficients per op from layer rows, least squares) to measurements and writes the\n"
    "updated target JSON to --out. CSV columns:\n"
    "target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms\n"
    "\n"
    "usage: nas latency ingest LOG --target ID|--target-file FILE [--out FILE.csv]\n"
    "\n"
    "Reads the serial log of the firmware `nas measure --backend board --emit DIR` writes\n"
    "(NAS-BEGIN / NAS,... / NAS-END lines; other output is ignored), takes the median cycles\n"
    "per layer over the runs and writes the measurement CSV above (stdout without --out).\n";

/* nas latency ingest LOG --target T [--out CSV] (argv after "ingest"). */
static int cmd_ingest(int argc, char **argv) {
  const char *log = NULL, *target = NULL, *target_file = NULL, *out = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) return fputs(LATENCY_USAGE, stdout), 0;
    const char **slot = !strcmp(a, "--target") ? &target : !strcmp(a, "--target-file") ? &target_file
                        : !strcmp(a, "--out") ? &out : NULL;
    if (!slot && a[0] == '-' && a[1]) return nas_cli_usage_error("latency", "unknown option '%s'", a);
    if (!slot) {
      if (log) return nas_cli_usage_error("latency", "ingest takes one LOG file ('%s' and '%s')", log, a);
      log = a;
      continue;
    }
    if (i + 1 >= argc) return nas_cli_usage_error("latency", "option %s needs a value", a);
    *slot = argv[++i];
  }
  if (!log || (!target && !target_file))
    return nas_cli_usage_error("latency", "ingest needs LOG and --target (or --target-file)");
  nas_err e = {0};
  nas_target *t = NULL;
  nas_meas *rows = NULL;
  int n = 0, rc = nas_target_open(target, target_file, &t, &e);
  if (rc == NAS_OK) rc = nas_board_ingest(log, t->id, &rows, &n, &e);
  if (rc == NAS_OK) rc = nas_meas_write_csv(out ? out : "-", rows, n, &e);
  if (rc == NAS_OK && out) printf("wrote %s: %d rows (median cycles per layer) for %s\n", out, n, t->id);
  free(rows);
  nas_target_free(t);
  return rc == NAS_OK ? 0 : fail(&e);
}

static int cmd_latency(int argc, char **argv) {
  if (argc >= 1 && !strcmp(argv[0], "ingest")) return cmd_ingest(argc - 1, argv + 1);
  if (argc < 1 || strcmp(argv[0], "fit") != 0) {
    if (argc >= 1 && !strcmp(argv[0], "--help")) return fputs(LATENCY_USAGE, stdout), 0;
    return nas_cli_usage_error("latency", "expected the subcommand 'fit' or 'ingest'");
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
  char *txt = nas_fit_report_text(&rep);
  printf("wrote %s\n%s", out, txt ? txt : "");
  free(txt);
  return 0;
}

const nas_cli_cmd nas_cli_latency = {"latency", "fit a target's latency model; ingest board logs",
                                     cmd_latency, LATENCY_USAGE};
