/* nas/cli/cmd_measure.c: `nas measure`: measures an int8 graph (a trained checkpoint's, a
 * .tflite, or a stored candidate's) per layer on an emulated Cortex-M (Unicorn), on the host
 * (the deploy/ int8 runtime) or prepares a board measurement (a firmware source tree); beside
 * the emulated figures, the tflm-cmsis-nn cycles model's prediction. See latency/emulator.h,
 * latency/measure.h and latency/cost_runtime.h. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latency/emulator.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "latency/cost_runtime.h"
#include "latency/measure.h"
#include "nas/cli/cli.h"
#include "nas/job.h"
#include "nas/measure_emu.h"
#include "results/store.h"
#include "train/quant.h"

/* MACs of a layer as `nas profile` counts them: conv, pwconv, dwconv and fc; 0 for the others
 * (nas_g8_linfo's macs field counts elements or window reads for them). */
static long long layer_macs(const nas_g8_linfo *li) {
  return li->kop == NAS_KOP_CONV || li->kop == NAS_KOP_PWCONV || li->kop == NAS_KOP_DWCONV ||
                 li->kop == NAS_KOP_FC
             ? li->macs
             : 0;
}

static const nas_opt MEASURE_OPTS[] = {
    {"--checkpoint", NAS_OPT_STR, "FILE", .help = "written by `nas train --save`"},
    {"--tflite", NAS_OPT_STR, "FILE", .help = "an int8 .tflite (the ops `nas import` accepts)"},
    {"--db", NAS_OPT_STR, "FILE", .help = "a search store; with --candidate N: that candidate's int8 graph"},
    {"--candidate", NAS_OPT_INT, "N", 1, 9223372036854775807LL, .help = "the candidate id in --db"},
    {"--backend", NAS_OPT_ENUM, "NAME", .choices = "emulator|host|board", .what = "back end",
     .help = "emulator (default), host or board"},
    {"--emit", NAS_OPT_STR, "DIR", .help = "board: directory for the firmware tree (created)"},
    {"--runs", NAS_OPT_INT, "N", 1, 10000,
     .help = "host: runs (50); board: inferences the firmware times (10)"},
    {"--opt", NAS_OPT_STR, "FLAG", .help = "emulator: optimisation flag for arm-none-eabi-gcc (-O2; -Os, -O3)"},
    {"--csv", NAS_OPT_STR, "FILE",
     .help = "emulator: write the per-layer cycles as a measurement CSV\n"
             "(`nas latency fit --measurements`), model id <name>@emulator"},
    {"--dataset", NAS_OPT_STR, "SPEC",
     .help = "calibration data and the measured sample (default: the\ncheckpoint's)"},
    {"--calibration", NAS_OPT_STR, "NAME", .help = "minmax | percentile (minmax)"},
    {"--calib-samples", NAS_OPT_INT, "N", 1, 10000000,
     .help = "training samples used for calibration (1000)"},
    {"--softmax", NAS_OPT_FLAG, .help = "end the model with an int8 SOFTMAX"},
    {"--threads", NAS_OPT_INT, "N", 1, 1024, .help = "threads for OpenMP and OpenBLAS (all cores)"},
    {"--json", NAS_OPT_FLAG, .help = "print one JSON object instead of the table"},
    {0}};
static const nas_opt *const MEASURE_TABLES[] = {MEASURE_OPTS, nas_cli_target_opts, NULL};

static void measure_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas measure (--checkpoint FILE | --tflite FILE | --db FILE --candidate N)\n"
               "                   (--target ID | --target-file FILE)\n"
               "                   [--backend emulator|host|board] [--emit DIR] [--json] [--csv FILE]\n"
               "\n"
               "Measures one inference of an int8 model per layer (int8 operator): a checkpoint\n"
               "quantised as `nas export` does (the measured input is its first test sample), an int8\n"
               ".tflite, or the int8 graph a search stored for a candidate (their measured input is a\n"
               "fixed pseudo-random int8 tensor, seed 1: the counts barely depend on the data):\n"
               "  emulator  cross-compiles the C export for the target's core (arm-none-eabi-gcc) and\n"
               "            runs it in the Unicorn engine: instructions by class (ldst, mul, branch,\n"
               "            other), estimated cycles (per-core CPI table) and ms at the target clock; the\n"
               "            emulated output is checked against the host int8 runtime. Beside it, the\n"
               "            tflm-cmsis-nn cycles model's ms per layer (the same graph under TFLite Micro\n"
               "            with CMSIS-NN on the target's board), where the target's part has one\n"
               "  host      median wall time per layer of the deploy/ int8 runtime on this machine\n"
               "  board     --emit DIR writes a firmware tree (C export, main.c timing each layer with\n"
               "            DWT->CYCCNT and printing CSV through a retargetable putchar, Makefile); run\n"
               "            it on the board and read its output with `nas latency ingest`\n"
               "\n",
               MEASURE_TABLES,
               "\n"
               "The emulator keeps the compiled kernels per core and flags in $NAS_CACHE_DIR (set it\n"
               "empty to disable), else $XDG_CACHE_HOME/nas-emu or ~/.cache/nas-emu.\n");
}

static void layer_json(cJSON *o, const nas_emu_layer *L) {
  cJSON_AddNumberToObject(o, "insns", (double)L->insns);
  for (int k = 0; k < NAS_IC_COUNT; k++) cJSON_AddNumberToObject(o, nas_icls_names[k], (double)L->c.n[k]);
  cJSON_AddNumberToObject(o, "taken_branches", (double)L->taken);
  cJSON_AddNumberToObject(o, "cycles", L->cycles);
  cJSON_AddNumberToObject(o, "ms", L->ms);
}

static int run_emulator(const nas_g8_graph *g, const nas_target *t, const char *name,
                        const int8_t *in, const char *opt, const char *csv, int json) {
  nas_err e = {0};
  nas_cpi cpi;
  if (nas_cpi_for_core(t->core, &cpi, &e)) return nas_cli_error(&e);
  nas_emu_fw *fw = NULL;
  char cache[4096];
  nas_emu_cfg cfg = {.opt = opt, .cache_dir = nas_emu_cache_dir(cache, sizeof cache)};
  if (nas_emu_build(g, t, &cfg, &fw, &e)) return nas_cli_error(&e);
  nas_emu_result r;
  if (nas_emu_run(fw, in, 0, &r, &e)) {
    nas_emu_fw_free(fw);
    return nas_cli_error(&e);
  }
  /* The emulated bytes must be the host runtime's. */
  int8_t *ref = nas_malloc(r.out_n ? r.out_n : 1);
  int rc = ref ? nas_g8_run(g, in, ref, &e) : nas_errf(&e, NAS_ENOMEM, "out of memory");
  int same = rc == NAS_OK && !memcmp(ref, r.output, r.out_n);
  free(ref);
  if (rc == NAS_OK && !same)
    rc = nas_errf(&e, NAS_ENUMERIC, "emulated output differs from the host int8 runtime's "
                  "(a C export or emulator bug; report it)");
  /* the tflm-cmsis-nn prediction of the same graph on the target's part */
  double *tflm = rc == NAS_OK ? nas_malloc(sizeof *tflm * (size_t)(g->nops + 1)) : NULL, tflm_total = 0;
  char tflm_note[400] = "";
  if (rc == NAS_OK && !tflm) rc = nas_errf(&e, NAS_ENOMEM, "out of memory");
  if (rc == NAS_OK) {
    nas_err te = {0};
    int trc = nas_price_tflm_ops(t, g, tflm, &tflm_total, &te);
    if (trc == NAS_ENOMEM) rc = nas_errf(&e, NAS_ENOMEM, "%s", te.msg);
    else if (trc) snprintf(tflm_note, sizeof tflm_note, "%.390s", te.msg), free(tflm), tflm = NULL;
  }
  if (rc == NAS_OK && csv) {
    double *cyc = nas_malloc(sizeof *cyc * (size_t)(g->nops + 1));
    nas_meas *rows = NULL;
    int n = 0;
    char model[64];
    snprintf(model, sizeof model, "%.37s@emulator", name);
    if (!cyc) rc = nas_errf(&e, NAS_ENOMEM, "out of memory");
    for (int i = 0; cyc && i < g->nops; i++) cyc[i] = r.layers[i].cycles;
    if (rc == NAS_OK) rc = nas_meas_from_graph(g, t->id, model, cyc, r.total.cycles, &rows, &n, &e);
    if (rc == NAS_OK) rc = nas_meas_write_csv(csv, rows, n, t->clock_mhz, &e);
    free(cyc), free(rows);
  }
  if (rc == NAS_OK && json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", name);
    cJSON_AddStringToObject(j, "target", t->id);
    cJSON_AddStringToObject(j, "core", nas_core_name(t->core));
    cJSON_AddNumberToObject(j, "clock_mhz", t->clock_mhz);
    cJSON_AddStringToObject(j, "backend", "emulator");
    cJSON_AddStringToObject(j, "cpi_source", cpi.source);
    cJSON_AddBoolToObject(j, "output_matches_host", same);
    cJSON_AddNumberToObject(j, "text_bytes", (double)fw->text_bytes);
    cJSON_AddNumberToObject(j, "bss_bytes", (double)fw->bss_bytes);
    cJSON_AddNumberToObject(j, "compile_s", fw->compile_s);
    cJSON_AddNumberToObject(j, "emulate_s", r.run_s);
    cJSON_AddStringToObject(j, "runtime", "nas-c");
    if (tflm) cJSON_AddNumberToObject(j, "tflm_invoke_ms", tflm_total);
    else cJSON_AddStringToObject(j, "tflm_note", tflm_note);
    cJSON *tot = cJSON_AddObjectToObject(j, "total");
    layer_json(tot, &r.total);
    cJSON *arr = cJSON_AddArrayToObject(j, "layers");
    for (int l = 0; l < r.n_layers; l++) {
      cJSON *o = cJSON_CreateObject();
      nas_g8_linfo li;
      if (r.layers[l].op >= 0) nas_g8_layer_info(g, r.layers[l].op, &li);
      cJSON_AddNumberToObject(o, "index", r.layers[l].op);
      cJSON_AddStringToObject(o, "op", r.layers[l].op >= 0 ? li.op : "outside");
      cJSON_AddNumberToObject(o, "macs", r.layers[l].op >= 0 ? (double)layer_macs(&li) : 0);
      layer_json(o, &r.layers[l]);
      if (tflm && r.layers[l].op >= 0) cJSON_AddNumberToObject(o, "tflm_ms", tflm[r.layers[l].op]);
      cJSON_AddItemToArray(arr, o);
    }
    nas_cli_print_json(j);
  } else if (rc == NAS_OK) {
    printf("%s on %s (%s @ %.0f MHz), emulated (Unicorn, one inference, %s): the C export (nas-c)\n",
           name, t->id, nas_core_name(t->core), t->clock_mhz, opt ? opt : "-O2");
    printf("%-8s %-8s %10s %11s %10s %10s %10s %10s %12s %9s %9s\n", "layer", "op", "macs", "insns",
           "ldst", "mul", "branch", "other", "cycles", "ms", "tflm ms");
    for (int l = 0; l <= r.n_layers; l++) {
      const nas_emu_layer *L = l < r.n_layers ? &r.layers[l] : &r.total;
      char id[16], op[16] = "";
      long long macs = 0;
      if (l == r.n_layers) snprintf(id, sizeof id, "total");
      else if (L->op < 0) snprintf(id, sizeof id, "(other)"), snprintf(op, sizeof op, "-");
      else {
        nas_g8_linfo li;
        nas_g8_layer_info(g, L->op, &li);
        snprintf(id, sizeof id, "op%d", L->op), snprintf(op, sizeof op, "%s", li.op);
        macs = layer_macs(&li);
      }
      if (l == r.n_layers) macs = -1;
      char mbuf[24] = "";
      if (macs >= 0) snprintf(mbuf, sizeof mbuf, "%lld", macs);
      char tbuf[24] = "";
      if (tflm && l == r.n_layers) snprintf(tbuf, sizeof tbuf, "%.3f", tflm_total);
      else if (tflm && L->op >= 0) snprintf(tbuf, sizeof tbuf, "%.3f", tflm[L->op]);
      printf("%-8s %-8s %10s %11lld %10lld %10lld %10lld %10lld %12.0f %9.3f %9s\n", id, op, mbuf,
             L->insns, L->c.n[NAS_IC_LDST], L->c.n[NAS_IC_MUL], L->c.n[NAS_IC_BRANCH],
             L->c.n[NAS_IC_OTHER], L->cycles, L->ms, tbuf);
    }
    printf("(other) = reset, start-up, input/output copies and call overhead outside the operators\n");
    printf("cycles: %s\n", cpi.source);
    if (tflm)
      printf("tflm ms: the tflm-cmsis-nn cycles model's prediction for the same graph on the target's "
             "board (TFLite Micro + CMSIS-NN; total = Invoke)\n");
    else
      printf("tflm ms: no prediction (%s)\n", tflm_note);
    /* the emulator firmware's ELF sections, not `nas profile`'s priced flash and peak SRAM */
    printf("output identical to the host int8 runtime: yes; firmware sections: .text+.rodata "
           "%lld B, .bss %lld B (not the priced flash and peak SRAM of nas profile); cross "
           "compile %.2f s, emulation %.3f s\n",
           fw->text_bytes, fw->bss_bytes, fw->compile_s, r.run_s);
    if (csv) printf("wrote %s\n", csv);
  }
  free(tflm);
  nas_emu_result_free(&r);
  nas_emu_fw_free(fw);
  return rc == NAS_OK ? 0 : nas_cli_error(&e);
}

/* The emulator's prerequisites, checked before the (slower) quantisation. */
static int emu_ready(const nas_target *t, nas_err *e) {
  nas_cpi cpi;
  char cc[4096];
  int rc = nas_cpi_for_core(t->core, &cpi, e);
  if (rc) return nas_err_prefix(e, "target %s", t->id), rc;
  if (!nas_emu_have_unicorn()) {
    nas_emu_result r;
    return nas_emu_run(NULL, NULL, 0, &r, e); /* fails with the "built without Unicorn" line */
  }
  return nas_emu_find_cc(NULL, cc, sizeof cc, e);
}

static int run_host(const nas_g8_graph *g, const nas_target *t, const char *name,
                    const int8_t *in, int runs, int json) {
  nas_err e = {0};
  double *ms = nas_malloc(sizeof *ms * (size_t)(g->nops + 1)), total = 0;
  if (!ms) return nas_errf(&e, NAS_ENOMEM, "out of memory"), nas_cli_error(&e);
  if (nas_host_time(g, in, runs, ms, &total, &e)) {
    free(ms);
    return nas_cli_error(&e);
  }
  if (json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", name);
    cJSON_AddStringToObject(j, "target", t->id);
    cJSON_AddStringToObject(j, "backend", "host");
    cJSON_AddNumberToObject(j, "runs", runs);
    cJSON_AddNumberToObject(j, "total_ms", total);
    cJSON *arr = cJSON_AddArrayToObject(j, "layers");
    for (int i = 0; i < g->nops; i++) {
      nas_g8_linfo li;
      nas_g8_layer_info(g, i, &li);
      cJSON *o = cJSON_CreateObject();
      cJSON_AddNumberToObject(o, "index", i);
      cJSON_AddStringToObject(o, "op", li.op);
      cJSON_AddNumberToObject(o, "macs", (double)li.macs);
      cJSON_AddNumberToObject(o, "ms", ms[i]);
      cJSON_AddItemToArray(arr, o);
    }
    nas_cli_print_json(j);
  } else {
    printf("%s: host int8 runtime (deploy/), median of %d runs on this machine\n", name, runs);
    printf("%-8s %-8s %10s %10s\n", "layer", "op", "macs", "ms");
    for (int i = 0; i < g->nops; i++) {
      nas_g8_linfo li;
      nas_g8_layer_info(g, i, &li);
      char id[16];
      snprintf(id, sizeof id, "op%d", i);
      printf("%-8s %-8s %10lld %10.4f\n", id, li.op, li.macs, ms[i]);
    }
    printf("%-8s %-8s %10s %10.4f\n", "total", "", "", total);
  }
  free(ms);
  return 0;
}

/* An int8 graph from a .tflite, or from the int8 weights a search stored for candidate cand
 * of store db; its measured input: a fixed pseudo-random int8 tensor (seed 1). */
static int load_int8(const char *tfl, const char *db, long long cand, nas_g8_graph *g,
                     char name[64], int8_t **in, nas_err *e) {
  int rc;
  if (tfl) {
    rc = nas_tflite_read(tfl, g, e);
    const char *slash = strrchr(tfl, '/');
    snprintf(name, 64, "%.50s", slash ? slash + 1 : tfl);
  } else {
    nas_store *s = NULL;
    void *buf = NULL;
    size_t len = 0;
    rc = nas_store_open_readonly(db, &s, e);
    if (rc == NAS_OK) rc = nas_store_weights_get(s, (int64_t)cand, "int8", &buf, &len, e);
    snprintf(name, 64, "cand%lld", cand);
    if (rc == NAS_OK) rc = nas_tflite_parse(buf, len, name, g, e);
    free(buf);
    nas_store_close(s);
  }
  if (rc) return rc;
  const size_t n = nas_g8_numel(&g->tensors[g->input]);
  *in = nas_malloc(n ? n : 1);
  if (!*in) {
    nas_g8_graph_free(g);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  nas_rng r;
  nas_rng_seed(&r, 1);
  for (size_t i = 0; i < n; i++) (*in)[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
  return NAS_OK;
}

static int cmd_measure(int argc, char **argv) {
  nas_args a = {.cmd = "measure", .tables = MEASURE_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return measure_help(stdout), 0;
  nas_export_job job = {.format = "c",
                        .checkpoint = nas_arg_str(&a, "--checkpoint", NULL),
                        .dataset = nas_arg_str(&a, "--dataset", NULL),
                        .calib_samples = (int)nas_arg_int(&a, "--calib-samples", 1000),
                        .softmax = nas_arg_flag(&a, "--softmax"),
                        .warn = nas_cli_warn};
  const char *backend = nas_arg_str(&a, "--backend", "emulator"), *emit = nas_arg_str(&a, "--emit", NULL);
  const char *csv = nas_arg_str(&a, "--csv", NULL), *calib = nas_arg_str(&a, "--calibration", "minmax");
  const char *opt = nas_arg_str(&a, "--opt", NULL);
  int json = nas_arg_flag(&a, "--json");
  const char *ckpt = nas_arg_str(&a, "--checkpoint", NULL), *tfl = nas_arg_str(&a, "--tflite", NULL),
             *db = nas_arg_str(&a, "--db", NULL);
  if (!ckpt && !tfl && !db)
    return nas_cli_usage_error("measure", "--checkpoint FILE is required (or --tflite FILE, or --db FILE "
                               "--candidate N)");
  if (!!ckpt + !!tfl + !!db > 1)
    return nas_cli_usage_error("measure", "give one of --checkpoint, --tflite and --db");
  if (!!db != !!nas_arg(&a, "--candidate")) return nas_cli_usage_error("measure", "--db and --candidate N go together");
  if (!ckpt) {
    static const char *const ck_only[] = {"--dataset", "--calibration", "--calib-samples", "--softmax"};
    for (int k = 0; k < 4; k++)
      if (nas_arg(&a, ck_only[k]))
        return nas_cli_usage_error("measure", "%s quantises a checkpoint; a .tflite or a stored "
                                   "candidate is int8 already", ck_only[k]);
  }
  if (nas_cli_one_target(&a, "--target ID or --target-file FILE is required")) return NAS_EXIT_USAGE;
  int be = !strcmp(backend, "emulator") ? 0 : !strcmp(backend, "host") ? 1 : 2;
  if (be == 2 && !emit) return nas_cli_usage_error("measure", "--backend board needs --emit DIR");
  if (be != 2 && emit) return nas_cli_usage_error("measure", "--emit is for --backend board");
  if (csv && be != 0)
    return nas_cli_usage_error("measure", "--csv is for --backend emulator (host times are not MCU "
                               "cycles; board logs become CSV with `nas latency ingest`)");
  if (opt && strcmp(opt, "-O2") && strcmp(opt, "-Os") && strcmp(opt, "-O3") && strcmp(opt, "-O1"))
    return nas_cli_usage_error("measure", "option --opt: '%s' is not -O1, -O2, -O3 or -Os", opt);
  int runs = (int)nas_arg_int(&a, "--runs", be == 1 ? 50 : 10);
  nas_set_threads((int)nas_arg_int(&a, "--threads", 0));
  nas_err e = {0};
  if (nas_calib_method_parse(calib, &job.calib_method, &e) != NAS_OK)
    return nas_cli_usage_error("measure", "option --calibration: %s", e.msg);
  nas_target *t = NULL;
  if (nas_target_open(nas_arg_str(&a, "--target", NULL), nas_arg_str(&a, "--target-file", NULL), &t, &e))
    return nas_cli_error(&e);
  if (be == 0 && emu_ready(t, &e)) {
    nas_target_free(t);
    return nas_cli_error(&e);
  }
  nas_g8_graph g;
  char name[64];
  int8_t *in = NULL;
  if ((ckpt ? nas_checkpoint_lower(&job, &g, name, &in, &e)
            : load_int8(tfl, db, nas_arg_int(&a, "--candidate", 0), &g, name, &in, &e))) {
    nas_target_free(t);
    return nas_cli_error(&e);
  }
  int rc;
  if (be == 0) {
    rc = run_emulator(&g, t, name, in, opt, csv, json);
  } else if (be == 1) {
    rc = run_host(&g, t, name, in, runs, json);
  } else {
    rc = nas_board_emit(&g, t, name, in, runs, emit, &e) ? nas_cli_error(&e) : 0;
    if (!rc)
      printf("wrote %s: firmware tree for %s (%d operators, %d timed runs); build with `make -C "
             "%s`, capture its output, then `nas latency ingest LOG --target %s`\n",
             emit, t->id, g.nops, runs, emit, t->id);
  }
  free(in);
  nas_g8_graph_free(&g);
  nas_target_free(t);
  return rc;
}

const nas_cli_cmd nas_cli_measure = {"measure", "measure a checkpoint per layer (emulated Cortex-M, host, board)",
                                     cmd_measure, measure_help};
