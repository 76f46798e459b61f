/* nas/cli_export.c: `nas export`: a trained checkpoint -> an int8 model file. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/cli.h"
#include "nas/job.h"
#include "train/quant.h"

static const char EXPORT_USAGE[] =
    "usage: nas export --checkpoint FILE --format tflite|c|onnx --out DIR [options]\n"
    "       nas export --db FILE --candidate N --format tflite|c|onnx --out DIR\n"
    "\n"
    "Quantises a trained checkpoint to int8 (batch-norm folding, post-training calibration\n"
    "of activation ranges on training samples, per-channel int8 weights, int32 biases),\n"
    "evaluates the int8 model on the test split, and writes DIR/<arch name>.tflite\n"
    "(--format c: DIR/<name>.h, DIR/<name>.c and the runtime's DIR/nasrt*.c/.h;\n"
    " --format onnx: DIR/<name>.onnx in float and DIR/<name>.qdq.onnx with QDQ int8).\n"
    "\n"
    "  --checkpoint FILE     written by `nas train --save`\n"
    "  --db FILE --candidate N  a done candidate of a search store: its stored float weights\n"
    "                        and calibration rebuild the int8 model the search scored\n"
    "                        (DIR/candN.*; tflite: the stored bytes); accuracy is on the\n"
    "                        test samples the search used\n"
    "  --format tflite|c|onnx\n"
    "  --out DIR             output directory (created)\n"
    "  --dataset SPEC        calibration/evaluation data (default: the checkpoint's)\n"
    "  --calibration NAME    minmax | percentile (minmax; percentile keeps 99.99%)\n"
    "  --calib-samples N     training samples used for calibration (1000)\n"
    "  --softmax             end the model with an int8 SOFTMAX (default: int8 logits)\n"
    "  --recalibrate         calibrate even when the checkpoint holds QAT ranges (`nas train\n"
    "                        --qat`); by default those learned ranges are used\n"
    "  --json                print one JSON object as the last line of stdout\n";

static int cmd_export(int argc, char **argv) {
  nas_export_job job = {.format = NULL, .calib_samples = 1000};
  int json = 0;
  const char *calib = "minmax";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) return fputs(EXPORT_USAGE, stdout), 0;
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    if (!strcmp(a, "--softmax")) {
      job.softmax = 1;
      continue;
    }
    if (!strcmp(a, "--recalibrate")) {
      job.recalibrate = 1;
      continue;
    }
    const char *samples = NULL, *cand = NULL;
    const char **slot = !strcmp(a, "--checkpoint")      ? &job.checkpoint
                        : !strcmp(a, "--format")        ? &job.format
                        : !strcmp(a, "--out")           ? &job.out_dir
                        : !strcmp(a, "--dataset")       ? &job.dataset
                        : !strcmp(a, "--calibration")   ? &calib
                        : !strcmp(a, "--calib-samples") ? &samples
                        : !strcmp(a, "--db")            ? &job.db
                        : !strcmp(a, "--candidate")     ? &cand
                                                        : NULL;
    if (!slot) return nas_cli_usage_error("export", "unknown option '%s'", a);
    if (i + 1 >= argc) return nas_cli_usage_error("export", "option %s needs a value", a);
    *slot = argv[++i];
    if (cand) {
      char *end;
      long long n = strtoll(cand, &end, 10);
      if (*end || end == cand || n < 1)
        return nas_cli_usage_error("export", "option --candidate: '%s' is not a positive integer", cand);
      job.candidate = n;
    }
    if (samples) {
      char *end;
      long n = strtol(samples, &end, 10);
      if (*end || end == samples || n < 1 || n > 10000000)
        return nas_cli_usage_error("export", "option --calib-samples: '%s' is not an integer in 1..10000000", samples);
      job.calib_samples = (int)n;
    }
  }
  if (!job.checkpoint && !job.db)
    return nas_cli_usage_error("export", "--checkpoint FILE or --db FILE --candidate N is required");
  if (job.checkpoint && job.db)
    return nas_cli_usage_error("export", "--checkpoint and --db exclude each other");
  if (job.db && !job.candidate) return nas_cli_usage_error("export", "--db needs --candidate N");
  if (job.candidate && !job.db) return nas_cli_usage_error("export", "--candidate needs --db FILE");
  if (!job.format) return nas_cli_usage_error("export", "--format tflite is required");
  if (!job.out_dir) return nas_cli_usage_error("export", "--out DIR is required");
  if (strcmp(job.format, "tflite") && strcmp(job.format, "c") && strcmp(job.format, "onnx"))
    return nas_cli_usage_error("export", "option --format: unknown format '%s' (tflite, c, onnx)", job.format);
  nas_err e = {0};
  if (nas_calib_method_parse(calib, &job.calib_method, &e) != NAS_OK)
    return nas_cli_usage_error("export", "option --calibration: %s", e.msg);
  nas_export_summary s;
  if ((job.db ? nas_export_store_run(&job, &s, &e) : nas_export_job_run(&job, &s, &e)) != NAS_OK) {
    fprintf(stderr, "nas: error: %s\n", e.msg);
    return e.code == NAS_EUSAGE ? NAS_EXIT_USAGE : 1;
  }
  printf("wrote %s: %d int8 operators, tensor arena %lld bytes\n", s.path, s.ops, s.arena_bytes);
  printf("test accuracy: float %.4f  int8 %.4f  (%d samples, %s calibration)\n", s.float_test_acc,
         s.int8_test_acc, s.test_n, job.db ? "stored" : s.qat_ranges ? "QAT ranges, no" : calib);
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
    char *t = cJSON_PrintUnformatted(j);
    if (t) printf("%s\n", t);
    cJSON_free(t);
    cJSON_Delete(j);
  }
  return 0;
}

const nas_cli_cmd nas_cli_export = {"export", "quantise a checkpoint to int8 and write a model file",
                                    cmd_export, EXPORT_USAGE};
