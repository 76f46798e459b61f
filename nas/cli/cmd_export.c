/* nas/cli/cmd_export.c: `nas export`: a trained checkpoint -> an int8 model file. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "nas/cli/cli.h"
#include "nas/job.h"
#include "train/quant.h"

static const nas_opt EXPORT_OPTS[] = {
    {"--checkpoint", NAS_OPT_STR, "FILE", .help = "written by `nas train --save`"},
    {"--db", NAS_OPT_STR, "FILE",
     .help = "with --candidate N: a done candidate of a search store: its stored\n"
             "float weights and calibration rebuild the int8 model the search scored\n"
             "(DIR/candN.*; tflite: the stored bytes); accuracy is on the test\n"
             "samples the search used"},
    {"--candidate", NAS_OPT_INT, "N", 1, 9e18, .what = "a positive integer",
     .help = "the candidate of --db"},
    {"--format", NAS_OPT_ENUM, "tflite|c|onnx", .choices = "tflite|c|onnx", .what = "format",
     .help = "the model file to write"},
    {"--out", NAS_OPT_STR, "DIR", .help = "output directory (created; checked before any work)"},
    {"--dataset", NAS_OPT_STR, "SPEC", .help = "calibration/evaluation data (default: the checkpoint's)"},
    {"--calibration", NAS_OPT_STR, "NAME", .help = "minmax | percentile (minmax; percentile keeps 99.99%)"},
    {"--calib-samples", NAS_OPT_INT, "N", 1, 10000000,
     .help = "training samples used for calibration (1000)"},
    {"--softmax", NAS_OPT_FLAG, .help = "end the model with an int8 SOFTMAX (default: int8 logits)"},
    {"--dense-weights", NAS_OPT_FLAG,
     .help = "--format c: keep every filter dense (default: conv, pointwise and fc\n"
             "filters with enough zeros are stored sparse, the nas-c runtime's SPARSE)"},
    {"--recalibrate", NAS_OPT_FLAG,
     .help = "calibrate even when the checkpoint holds QAT ranges (`nas train\n"
             "--qat`); by default those learned ranges are used"},
    {"--threads", NAS_OPT_INT, "N", 1, 1024, .help = "threads for OpenMP and OpenBLAS (all cores)"},
    {"--json", NAS_OPT_FLAG, .help = "print one JSON object as the last line of stdout"},
    {0}};
static const nas_opt *const EXPORT_TABLES[] = {EXPORT_OPTS, NULL};

static void export_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas export --checkpoint FILE --format tflite|c|onnx --out DIR [options]\n"
               "       nas export --db FILE --candidate N --format tflite|c|onnx --out DIR\n"
               "\n"
               "Quantises a trained checkpoint to int8 (batch-norm folding, post-training calibration\n"
               "of activation ranges on training samples, per-channel int8 weights, int32 biases),\n"
               "evaluates the int8 model on the test split, and writes DIR/<arch name>.tflite\n"
               "(--format c: DIR/<name>.h, DIR/<name>.c and the runtime's DIR/nasrt*.c/.h;\n"
               " --format onnx: DIR/<name>.onnx in float and DIR/<name>.qdq.onnx with QDQ int8).\n"
               "\n",
               EXPORT_TABLES, NULL);
}

static int cmd_export(int argc, char **argv) {
  nas_args a = {.cmd = "export", .tables = EXPORT_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return export_help(stdout), 0;
  nas_export_job job = {.checkpoint = nas_arg_str(&a, "--checkpoint", NULL),
                        .db = nas_arg_str(&a, "--db", NULL),
                        .candidate = nas_arg_int(&a, "--candidate", 0),
                        .format = nas_arg_str(&a, "--format", NULL),
                        .out_dir = nas_arg_str(&a, "--out", NULL),
                        .dataset = nas_arg_str(&a, "--dataset", NULL),
                        .calib_samples = (int)nas_arg_int(&a, "--calib-samples", 1000),
                        .softmax = nas_arg_flag(&a, "--softmax"),
                        .recalibrate = nas_arg_flag(&a, "--recalibrate"),
                        .warn = nas_cli_warn,
                        .dense_weights = nas_arg_flag(&a, "--dense-weights")};
  const char *calib = nas_arg_str(&a, "--calibration", "minmax");
  int json = nas_arg_flag(&a, "--json");
  if (!job.checkpoint && !job.db)
    return nas_cli_usage_error("export", "--checkpoint FILE or --db FILE --candidate N is required");
  if (nas_args_exclusive(&a, "--checkpoint", "--db")) return NAS_EXIT_USAGE;
  if (job.db && !job.candidate) return nas_cli_usage_error("export", "--db needs --candidate N");
  if (job.candidate && !job.db) return nas_cli_usage_error("export", "--candidate needs --db FILE");
  if (!job.format) return nas_cli_usage_error("export", "--format tflite is required");
  if (nas_args_require(&a, "--out")) return NAS_EXIT_USAGE;
  nas_set_threads((int)nas_arg_int(&a, "--threads", 0));
  nas_err e = {0};
  if (nas_calib_method_parse(calib, &job.calib_method, &e) != NAS_OK)
    return nas_cli_usage_error("export", "option --calibration: %s", e.msg);
  nas_export_summary s;
  if ((job.db ? nas_export_store_run(&job, &s, &e) : nas_export_job_run(&job, &s, &e)) != NAS_OK)
    return nas_cli_error(&e);
  printf("wrote %s: %d int8 operators, tensor arena %lld bytes\n", s.path, s.ops, s.arena_bytes);
  printf("test accuracy: float %.4f  int8 %.4f  (%d samples, %s calibration)\n", s.float_test_acc,
         s.int8_test_acc, s.test_n, job.db ? "stored" : s.qat_ranges ? "QAT ranges, no" : calib);
  if (s.sparse_ops) printf("sparse weights: %d operators, %lld filter bytes saved\n", s.sparse_ops, s.sparse_saved);
  if (json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", s.path);
    cJSON_AddStringToObject(j, "format", job.format);
    cJSON_AddNumberToObject(j, "float_test_acc", s.float_test_acc);
    cJSON_AddNumberToObject(j, "int8_test_acc", s.int8_test_acc);
    cJSON_AddNumberToObject(j, "test_n", s.test_n);
    cJSON_AddNumberToObject(j, "ops", s.ops);
    cJSON_AddNumberToObject(j, "arena_bytes", (double)s.arena_bytes);
    cJSON_AddBoolToObject(j, "qat_ranges", s.qat_ranges);
    cJSON_AddNumberToObject(j, "sparse_ops", s.sparse_ops);
    cJSON_AddNumberToObject(j, "sparse_saved", (double)s.sparse_saved);
    nas_cli_print_json(j);
  }
  return 0;
}

const nas_cli_cmd nas_cli_export = {"export", "quantise a checkpoint to int8 and write a model file",
                                    cmd_export, export_help};
