/* nas/cli/cmd_latency.c: `nas targets`, `nas profile` and `nas latency fit`: pricing an
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
#include "nas/cli/cli.h"
#include "train/net.h"

/* ---- nas targets ------------------------------------------------------------------------- */

static void targets_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas targets\n"
               "\n"
               "Lists the built-in MCU targets (latency/targets/*.json; NAS_TARGET_DIR replaces the\n"
               "directory). Add a target by dropping a JSON file there, or pass --target-file to the\n"
               "commands that take a target.\n",
               NULL, NULL);
}

static int cmd_targets(int argc, char **argv) {
  nas_args a = {.cmd = "targets"};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return targets_help(stdout), 0;
  nas_err e = {0};
  char *t = nas_targets_table(NULL, &e);
  if (!t) return nas_cli_error(&e);
  fputs(t, stdout);
  free(t);
  return 0;
}

const nas_cli_cmd nas_cli_targets = {"targets", "list the MCU targets", cmd_targets,
                                     targets_help};

/* ---- nas profile ------------------------------------------------------------------------- */

const nas_opt nas_cli_target_opts[] = {
    {"--target", NAS_OPT_STR, "ID", .help = "built-in MCU target (see `nas targets`)"},
    {"--target-file", NAS_OPT_STR, "FILE", .help = "a target JSON file instead"},
    {0}};

int nas_cli_one_target(const nas_args *a, const char *msg) {
  if (nas_args_exclusive(a, "--target", "--target-file")) return NAS_EXIT_USAGE;
  if (!nas_arg(a, "--target") && !nas_arg(a, "--target-file")) return nas_cli_usage_error(a->cmd, "%s", msg);
  return 0;
}

static const nas_opt PROFILE_OPTS[] = {
    {"--arch", NAS_OPT_STR, "FILE", .help = "an architecture (arch JSON)"},
    {"--checkpoint", NAS_OPT_STR, "FILE", .help = "the network of a checkpoint"},
    {"--tflite", NAS_OPT_STR, "FILE", .help = "an int8 .tflite (one row per operator)"},
    {"--runtime", NAS_OPT_ENUM, "NAME", .choices = "tflm-cmsis-nn|tflm-reference|nas-c", .what = "runtime",
     .help = "price for this runtime instead of the target's"},
    {"--json", NAS_OPT_FLAG, .help = "print one JSON object instead of the table"},
    {0}};
static const nas_opt *const PROFILE_TABLES[] = {PROFILE_OPTS, nas_cli_target_opts, NULL};

static void profile_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas profile (--arch FILE | --checkpoint FILE | --tflite FILE)\n"
               "                   (--target ID | --target-file FILE) [--runtime NAME] [--json]\n"
               "\n"
               "Prices a model on a target without training it: an architecture (arch JSON), the\n"
               "network of a checkpoint, or an int8 .tflite (one row per operator, flash from its real\n"
               "buffers). Per layer: op, output shape, MACs, parameters, flash bytes, the tensor arena\n"
               "in use while it runs and predicted ms; then totals and the binding budget. The target's\n"
               "runtime (or --runtime) decides the arena and the latency model: tflm-cmsis-nn prices\n"
               "TFLite Micro's arena (CMSIS-NN scratch and persistent tail included) and the cycles\n"
               "model of the target's board; tflm-reference the arena without CMSIS-NN scratch; nas-c\n"
               "the arena `nas export --format c` allocates and the C export's instruction model. Peak\n"
               "SRAM is the arena plus the target's runtime SRAM outside it; a net that does not lower\n"
               "to int8 gets a working-set estimate instead and says why.\n"
               "With --json, one JSON object whose totals are macs, params, flash_bytes,\n"
               "peak_sram_bytes (arena_bytes + runtime_sram_bytes) and latency_ms, plus a layers array.\n"
               "\n",
               PROFILE_TABLES, NULL);
}

static int cmd_profile(int argc, char **argv) {
  nas_args a = {.cmd = "profile", .tables = PROFILE_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return profile_help(stdout), 0;
  const char *arch = nas_arg_str(&a, "--arch", NULL), *ckpt = nas_arg_str(&a, "--checkpoint", NULL),
             *tfl = nas_arg_str(&a, "--tflite", NULL), *target = nas_arg_str(&a, "--target", NULL),
             *target_file = nas_arg_str(&a, "--target-file", NULL);
  int json = nas_arg_flag(&a, "--json");
  if (!!arch + !!ckpt + !!tfl != 1)
    return nas_cli_usage_error("profile", "exactly one of --arch, --checkpoint or --tflite FILE is required");
  const char *model = arch ? arch : ckpt ? ckpt : tfl;
  if (nas_cli_one_target(&a, "--target ID or --target-file FILE is required")) return NAS_EXIT_USAGE;
  nas_err e = {0};
  nas_target *t = NULL;
  nas_price *p = NULL;
  char *text = NULL, *out = NULL;
  int rc = nas_target_open(target, target_file, &t, &e);
  const char *runtime = nas_arg_str(&a, "--runtime", NULL);
  if (rc == NAS_OK && runtime) rc = nas_target_set_runtime(t, nas_runtime_from_name(runtime), &e);
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
  return rc == NAS_OK ? 0 : nas_cli_error(&e);
}

const nas_cli_cmd nas_cli_profile = {"profile", "price an arch, checkpoint or .tflite on an MCU target",
                                     cmd_profile, profile_help};

/* ---- nas latency fit --------------------------------------------------------------------- */

static const char LATENCY_HEAD[] =
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
    "per layer over the runs and writes the measurement CSV above (stdout without --out).\n"
    "\n";

static const nas_opt FIT_OPTS[] = {
    {"--measurements", NAS_OPT_STR, "FILE.csv", .help = "fit: the measurement CSV"},
    {"--out", NAS_OPT_STR, "FILE", .help = "fit: the target JSON to write; ingest: the CSV (stdout)"},
    {0}};
static const nas_opt INGEST_OPTS[] = {
    {"--out", NAS_OPT_STR, "FILE", .help = "the CSV to write (stdout without it)"}, {0}};
static const nas_opt *const FIT_TABLES[] = {FIT_OPTS, nas_cli_target_opts, NULL};
static const nas_opt *const INGEST_TABLES[] = {INGEST_OPTS, nas_cli_target_opts, NULL};

static void latency_help(FILE *f) { nas_cli_help(f, LATENCY_HEAD, FIT_TABLES, NULL); }

/* nas latency ingest LOG --target T [--out CSV] (argv after "ingest"). */
static int cmd_ingest(int argc, char **argv) {
  nas_args a = {.cmd = "latency", .tables = INGEST_TABLES, .max_pos = 2};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return latency_help(stdout), 0;
  if (a.npos > 1)
    return nas_cli_usage_error("latency", "ingest takes one LOG file ('%s' and '%s')", a.pos[0], a.pos[1]);
  const char *log = a.npos ? a.pos[0] : NULL, *out = nas_arg_str(&a, "--out", NULL);
  if (nas_args_exclusive(&a, "--target", "--target-file")) return NAS_EXIT_USAGE;
  if (!log || (!nas_arg(&a, "--target") && !nas_arg(&a, "--target-file")))
    return nas_cli_usage_error("latency", "ingest needs LOG and --target (or --target-file)");
  nas_err e = {0};
  nas_target *t = NULL;
  nas_meas *rows = NULL;
  int n = 0, rc = nas_target_open(nas_arg_str(&a, "--target", NULL), nas_arg_str(&a, "--target-file", NULL), &t, &e);
  if (rc == NAS_OK) rc = nas_board_ingest(log, t->id, &rows, &n, &e);
  if (rc == NAS_OK) rc = nas_meas_write_csv(out ? out : "-", rows, n, t->clock_mhz, &e);
  if (rc == NAS_OK && out) printf("wrote %s: %d rows (median cycles per layer) for %s\n", out, n, t->id);
  free(rows);
  nas_target_free(t);
  return rc == NAS_OK ? 0 : nas_cli_error(&e);
}

static int cmd_latency(int argc, char **argv) {
  if (argc >= 1 && !strcmp(argv[0], "ingest")) return cmd_ingest(argc - 1, argv + 1);
  if (argc < 1 || strcmp(argv[0], "fit") != 0) {
    if (argc >= 1 && !strcmp(argv[0], "--help")) return latency_help(stdout), 0;
    return nas_cli_usage_error("latency", "expected the subcommand 'fit' or 'ingest'");
  }
  nas_args a = {.cmd = "latency", .tables = FIT_TABLES};
  if (nas_args_parse(&a, argc - 1, argv + 1)) return NAS_EXIT_USAGE;
  if (a.help) return latency_help(stdout), 0;
  const char *meas = nas_arg_str(&a, "--measurements", NULL), *target = nas_arg_str(&a, "--target", NULL),
             *target_file = nas_arg_str(&a, "--target-file", NULL), *out = nas_arg_str(&a, "--out", NULL);
  if (nas_args_exclusive(&a, "--target", "--target-file")) return NAS_EXIT_USAGE;
  if (!meas || !out || (!target && !target_file))
    return nas_cli_usage_error("latency", "--measurements, --target (or --target-file) and --out are required");
  char path[4200], dir[4096];
  nas_err e = {0};
  if (!target_file) {
    if (nas_targets_dir(dir, sizeof dir, &e) != NAS_OK) return nas_cli_error(&e);
    snprintf(path, sizeof path, "%s/%s.json", dir, target);
    target_file = path;
  }
  nas_fit_opts o;
  memset(&o, 0, sizeof o);
  nas_fit_report rep;
  if (nas_fit_target_file(target_file, meas, out, &o, &rep, &e) != NAS_OK) return nas_cli_error(&e);
  char *txt = nas_fit_report_text(&rep);
  if (!txt) return nas_cli_errorf(1, "out of memory");
  printf("wrote %s\n%s", out, txt);
  free(txt);
  return 0;
}

const nas_cli_cmd nas_cli_latency = {"latency", "fit a target's latency model; ingest board logs",
                                     cmd_latency, latency_help};
