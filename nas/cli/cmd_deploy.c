/* nas/cli/cmd_deploy.c: `nas import` (show an int8 .tflite model as the int8 graph sees it, with
 * the planner's peak arena) and `nas run` (execute it on raw int8 input bytes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/graph8.h"
#include "core/alloc.h"
#include "nas/cli/cli.h"

static const nas_opt IMPORT_OPTS[] = {
    {"--json", NAS_OPT_FLAG, .help = "print one JSON object instead of the table"}, {0}};
static const nas_opt *const IMPORT_TABLES[] = {IMPORT_OPTS, NULL};

static void import_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas import MODEL.tflite [--json]\n"
               "\n"
               "Reads an int8 TFLite model and prints its layers (index, op, input and output shapes,\n"
               "quantisation, fused activation) and the peak tensor-arena bytes of the memory plan.\n",
               IMPORT_TABLES, NULL);
}

static const nas_opt RUN_OPTS[] = {
    {"--input", NAS_OPT_STR, "FILE", .help = "raw int8 bytes of the input tensor (exactly its element count)"},
    {"--output", NAS_OPT_STR, "FILE", .help = "where to write the raw int8 bytes of the output tensor"},
    {0}};
static const nas_opt *const RUN_TABLES[] = {RUN_OPTS, NULL};

static void run_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas run MODEL.tflite --input FILE --output FILE\n"
               "\n"
               "Executes an int8 TFLite model with the reference int8 kernels (TFLite Micro arithmetic).\n",
               RUN_TABLES, NULL);
}

static void pshape(FILE *f, const nas_g8_tensor *t) {
  fputc('[', f);
  for (int i = 0; i < t->ndim; i++) fprintf(f, "%s%d", i ? "," : "", t->dims[i]);
  fputc(']', f);
}

static void jstr(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 32) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void jtensor(FILE *f, const nas_g8_tensor *t) {
  fputs("{\"name\":", f);
  jstr(f, t->name);
  fputs(",\"shape\":", f);
  pshape(f, t);
  fprintf(f, ",\"type\":\"%s\"", t->type == NAS_G8_INT8 ? "int8" : "int32");
  if (t->nq == 1) fprintf(f, ",\"scale\":%.9g,\"zero_point\":%d", (double)t->scale[0], (int)t->zero_point[0]);
  else if (t->nq > 1) fprintf(f, ",\"scales\":%d,\"quantized_dimension\":%d", t->nq, t->qdim);
  fputc('}', f);
}

/* "per-channel (64)" / "per-tensor" for an op's weights, or NULL without weights. */
static const char *wq(const nas_g8_graph *g, const nas_g8_op *op, char *buf, size_t cap) {
  if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_DEPTHWISE_CONV_2D &&
      op->kind != NAS_G8_FULLY_CONNECTED)
    return NULL;
  const nas_g8_tensor *w = &g->tensors[op->in[1]];
  if (w->nq > 1) snprintf(buf, cap, "per-channel(%d)", w->nq);
  else snprintf(buf, cap, "per-tensor");
  return buf;
}

static int cmd_import(int argc, char **argv) {
  nas_args a = {.cmd = "import", .tables = IMPORT_TABLES, .max_pos = 1};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return import_help(stdout), 0;
  if (a.npos < 1) return nas_cli_usage_error("import", "missing MODEL.tflite");
  const char *path = a.pos[0];
  int json = nas_arg_flag(&a, "--json");
  nas_err e = {0};
  nas_g8_graph g;
  nas_g8_plan p;
  if (nas_tflite_read(path, &g, &e)) return nas_cli_error(&e);
  if (nas_g8_plan_build(&g, &p, &e)) {
    nas_g8_graph_free(&g);
    return nas_cli_error(&e);
  }
  char wb[64];
  const nas_g8_tensor *ti = &g.tensors[g.input], *to = &g.tensors[g.output];
  if (json) {
    printf("{\"model\":");
    jstr(stdout, path);
    printf(",\"input\":");
    jtensor(stdout, ti);
    printf(",\"output\":");
    jtensor(stdout, to);
    printf(",\"layers\":[");
    for (int i = 0; i < g.nops; i++) {
      const nas_g8_op *op = &g.ops[i];
      printf("%s{\"index\":%d,\"op\":\"%s\",\"inputs\":[", i ? "," : "", i, nas_g8_op_name(op->kind));
      int first = 1;
      for (int k = 0; k < op->nin; k++) {
        if (op->in[k] < 0) continue;
        printf("%s", first ? "" : ","), first = 0;
        jtensor(stdout, &g.tensors[op->in[k]]);
      }
      printf("],\"output\":");
      jtensor(stdout, &g.tensors[op->out]);
      const char *w = wq(&g, op, wb, sizeof wb);
      if (w) printf(",\"weights\":\"%s\"", w);
      printf(",\"activation\":\"%s\"}", nas_g8_act_name(op->act));
    }
    printf("],\"tensors\":%d,\"operators\":%d,\"peak_arena_bytes\":%zu}\n", g.ntensors, g.nops, p.peak);
  } else {
    printf("model %s: %d tensors, %d operators\n", path, g.ntensors, g.nops);
    printf("input  '%s' ", ti->name), pshape(stdout, ti);
    printf(" int8 scale %.9g zero_point %d\n", (double)ti->scale[0], (int)ti->zero_point[0]);
    printf("output '%s' ", to->name), pshape(stdout, to);
    printf(" int8 scale %.9g zero_point %d\n", (double)to->scale[0], (int)to->zero_point[0]);
    printf("%3s  %-18s %-16s %-16s %-30s %-16s %s\n", "#", "op", "input", "output",
           "quant in -> out (scale/zp)", "weights", "act");
    for (int i = 0; i < g.nops; i++) {
      const nas_g8_op *op = &g.ops[i];
      const nas_g8_tensor *x = &g.tensors[op->in[0]], *y = &g.tensors[op->out];
      char s1[64], s2[64], q[96];
      int k = snprintf(s1, sizeof s1, "[");
      for (int d = 0; d < x->ndim; d++) k += snprintf(s1 + k, sizeof s1 - (size_t)k, "%s%d", d ? "," : "", x->dims[d]);
      snprintf(s1 + k, sizeof s1 - (size_t)k, "]");
      k = snprintf(s2, sizeof s2, "[");
      for (int d = 0; d < y->ndim; d++) k += snprintf(s2 + k, sizeof s2 - (size_t)k, "%s%d", d ? "," : "", y->dims[d]);
      snprintf(s2 + k, sizeof s2 - (size_t)k, "]");
      snprintf(q, sizeof q, "%.4g/%d -> %.4g/%d", (double)x->scale[0], (int)x->zero_point[0],
               (double)y->scale[0], (int)y->zero_point[0]);
      const char *w = wq(&g, op, wb, sizeof wb);
      printf("%3d  %-18s %-16s %-16s %-30s %-16s %s\n", i, nas_g8_op_name(op->kind), s1, s2, q,
             w ? w : "-", nas_g8_act_name(op->act));
    }
    printf("peak arena: %zu bytes\n", p.peak);
  }
  nas_g8_plan_free(&p);
  nas_g8_graph_free(&g);
  return 0;
}

static int cmd_run(int argc, char **argv) {
  nas_args a = {.cmd = "run", .tables = RUN_TABLES, .max_pos = 1};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return run_help(stdout), 0;
  const char *path = a.npos ? a.pos[0] : NULL, *inp = nas_arg_str(&a, "--input", NULL),
             *outp = nas_arg_str(&a, "--output", NULL);
  if (!path) return nas_cli_usage_error("run", "missing MODEL.tflite");
  if (!inp) return nas_cli_usage_error("run", "missing --input FILE");
  if (!outp) return nas_cli_usage_error("run", "missing --output FILE");
  nas_err e = {0};
  nas_g8_graph g;
  if (nas_tflite_read(path, &g, &e)) return nas_cli_error(&e);
  size_t nin = nas_g8_numel(&g.tensors[g.input]), nout = nas_g8_numel(&g.tensors[g.output]);
  int8_t *x = nas_malloc(nin + 1), *y = nas_malloc(nout);
  int rc = 1;
  FILE *f = NULL;
  if (!x || !y) {
    nas_errf(&e, NAS_ENOMEM, "out of memory");
    goto done;
  }
  f = fopen(inp, "rb");
  if (!f) {
    nas_errf(&e, NAS_EIO, "%s: %s", inp, strerror(errno));
    goto done;
  }
  size_t got = fread(x, 1, nin + 1, f);
  fclose(f), f = NULL;
  if (got != nin) {
    nas_errf(&e, NAS_EINVAL, "%s: input tensor '%s' needs exactly %zu int8 bytes, the file has %s%zu",
             inp, g.tensors[g.input].name, nin, got > nin ? "more than " : "", got > nin ? nin : got);
    goto done;
  }
  if (nas_g8_run(&g, x, y, &e)) goto done;
  f = fopen(outp, "wb");
  if (!f || fwrite(y, 1, nout, f) != nout) {
    nas_errf(&e, NAS_EIO, "%s: cannot write: %s", outp, strerror(errno));
    goto done;
  }
  if (fclose(f)) {
    f = NULL;
    nas_errf(&e, NAS_EIO, "%s: cannot write: %s", outp, strerror(errno));
    goto done;
  }
  f = NULL;
  rc = 0;
done:
  if (f) fclose(f);
  free(x), free(y);
  nas_g8_graph_free(&g);
  return rc ? nas_cli_error(&e) : 0;
}

const nas_cli_cmd nas_cli_import = {"import", "show an int8 .tflite model's layers and arena size",
                                    cmd_import, import_help};
const nas_cli_cmd nas_cli_run = {"run", "run an int8 .tflite model on raw int8 input bytes",
                                 cmd_run, run_help};
