/* bench/bench_infer8.c: host inference time at batch 1 of the int8 deploy runtime (deploy/)
 * beside the float engine (train/), and of the runtime on the imported MLPerf Tiny KWS model
 * (bench/armnn_infer.py measures Arm NN CpuRef on the same file).
 *
 *   bench_infer8 SOURCE_DIR [SECONDS [TFLITE_MODEL]]
 *
 * dscnn-s (search_spaces/reference/dscnn-s.json under SOURCE_DIR) is built untrained (seed 1;
 * weights from the initialiser, batch-norm statistics at their defaults), calibrated with
 * min/max on 64 random normal inputs and lowered to int8 (deploy/lower.h): timing does not
 * depend on the weights' values. Three figures are measured on one fixed input each:
 *   dscnn-s float: nas_graph_forward in eval mode, batch 1, one thread (OpenMP and OpenBLAS
 *     set to 1 thread, as the int8 runtime is single-threaded);
 *   dscnn-s int8: nas_g8_exec_run (every operator; the memory plan, prepared constants and
 *     arena are built once before timing, as a deployed model has them);
 *   kws_ref_model int8: the same on TFLITE_MODEL (default SOURCE_DIR/../shared/models/
 *     kws_ref_model.tflite; skipped with a message when absent).
 * Each is warmed up (3 runs), then timed one inference at a time for at least SECONDS
 * (default 2) and at least 20 runs; one JSON line per figure on stdout:
 *   {"bench":"infer8","model":"dscnn-s","runtime":"int8","median_ms":M,"min_ms":m,"runs":N}
 * Exit status 1 on any error, 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <omp.h>

#include "core/fileio.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "deploy/graph8.h"
#include "deploy/lower.h"
#include "train/graph.h"
#include "train/net.h"
#include "train/quant.h"

#define WARMUP 3
#define MIN_RUNS 20
#define CALIB_N 64

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* What one timed inference runs. */
typedef struct bench_case {
  nas_net *net;             /* float: the network (input node filled) */
  nas_g8_exec *x8;         /* int8: the prepared graph */
  const int8_t *in;         /* int8: input bytes */
  int8_t *out;              /* int8: output bytes */
} bench_case;

static int run_once(bench_case *c, nas_err *e) {
  if (c->net) {
    nas_graph_forward(c->net->g, 1, c->net->logits);
    return NAS_OK;
  }
  return nas_g8_exec_run(c->x8, c->in, c->out, e);
}

/* Times c; prints its JSON line. */
static int time_case(bench_case *c, const char *model, const char *runtime, double seconds,
                     nas_err *e) {
  for (int i = 0; i < WARMUP; i++)
    if (run_once(c, e)) return e->code;
  size_t cap = 1024, n = 0;
  double *t = malloc(cap * sizeof *t);
  if (!t) return nas_errf(e, NAS_ENOMEM, "out of memory");
  double start = now_ms();
  while (n < MIN_RUNS || now_ms() - start < seconds * 1e3) {
    if (n == cap) {
      double *nt = realloc(t, 2 * cap * sizeof *t);
      if (!nt) {
        free(t);
        return nas_errf(e, NAS_ENOMEM, "out of memory");
      }
      t = nt, cap *= 2;
    }
    double t0 = now_ms();
    if (run_once(c, e)) {
      free(t);
      return e->code;
    }
    t[n++] = now_ms() - t0;
  }
  qsort(t, n, sizeof *t, cmp_double);
  double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  printf("{\"bench\":\"infer8\",\"model\":\"%s\",\"runtime\":\"%s\",\"median_ms\":%.4f,"
         "\"min_ms\":%.4f,\"runs\":%zu}\n", model, runtime, med, t[0], n);
  fflush(stdout);
  free(t);
  return NAS_OK;
}

/* dscnn-s: float forward and int8 runtime. */
static int bench_dscnn(const char *src, double seconds, nas_err *e) {
  char path[4096];
  snprintf(path, sizeof path, "%s/search_spaces/reference/dscnn-s.json", src);
  char *text = NULL;
  nas_net *net = NULL;
  nas_dataset ds = {0};
  nas_calib cal = {0};
  nas_g8_graph g8 = {0};
  int8_t *qin = NULL, *qout = NULL;
  int rc = nas_read_file(path, &text, NULL, e);
  if (!rc) rc = nas_net_build(text, path, CALIB_N, 1, &net, e);
  if (rc) goto done;
  ds.n = CALIB_N, ds.h = net->in_h, ds.w = net->in_w, ds.c = net->in_c, ds.classes = net->classes;
  const size_t per = (size_t)ds.h * ds.w * ds.c;
  ds.x = malloc(sizeof(float) * per * CALIB_N);
  ds.y = calloc(CALIB_N, sizeof(int));
  qin = malloc(per);
  qout = malloc((size_t)net->classes);
  if (!ds.x || !ds.y || !qin || !qout) {
    rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    goto done;
  }
  nas_rng r;
  nas_rng_seed(&r, 7);
  for (size_t i = 0; i < per * CALIB_N; i++) ds.x[i] = nas_rng_normal(&r);
  net->g->training = 0;
  if ((rc = nas_calibrate(net, &ds, NULL, &cal, e))) goto done;
  if ((rc = nas_lower(net, &cal, NULL, &g8, e))) goto done;
  /* the float input: sample 0 in the input node, batch 1 */
  memcpy(net->g->nodes[net->input].val, ds.x, sizeof(float) * per);
  net->g->training = 0;
  bench_case fc = {.net = net};
  if ((rc = time_case(&fc, "dscnn-s", "float", seconds, e))) goto done;
  nas_g8_quantize_input(&g8, ds.x, qin);
  nas_g8_exec x8;
  if ((rc = nas_g8_exec_init(&x8, &g8, e))) goto done;
  bench_case ic = {.x8 = &x8, .in = qin, .out = qout};
  rc = time_case(&ic, "dscnn-s", "int8", seconds, e);
  nas_g8_exec_free(&x8);
done:
  free(qin), free(qout), free(ds.x), free(ds.y), free(text);
  nas_g8_graph_free(&g8);
  nas_calib_free(&cal);
  nas_net_free(net);
  return rc;
}

/* The imported .tflite on the int8 runtime; input bytes from an LCG (seed 1; s = s * 1664525 +
 * 1013904223, byte = s >> 24, as bench/armnn_infer.py). */
static int bench_tflite(const char *path, double seconds, nas_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "bench_infer8: %s not found, skipping the imported model\n", path);
    return NAS_OK;
  }
  fclose(f);
  nas_g8_graph g = {0};
  int rc = nas_tflite_read(path, &g, e);
  if (rc) return rc;
  size_t nin = nas_g8_numel(&g.tensors[g.input]), nout = nas_g8_numel(&g.tensors[g.output]);
  int8_t *in = malloc(nin), *out = malloc(nout);
  if (!in || !out) {
    rc = nas_errf(e, NAS_ENOMEM, "out of memory");
  } else {
    uint32_t s = 1;
    for (size_t i = 0; i < nin; i++) s = s * 1664525u + 1013904223u, in[i] = (int8_t)(s >> 24);
    const char *base = strrchr(path, '/'), *name = base ? base + 1 : path;
    const char *dot = strrchr(name, '.');
    int len = dot ? (int)(dot - name) : (int)strlen(name);
    char model[256];
    snprintf(model, sizeof model, "%.*s", len < 200 ? len : 200, name);
    nas_g8_exec x8;
    rc = nas_g8_exec_init(&x8, &g, e);
    bench_case c = {.x8 = &x8, .in = in, .out = out};
    if (!rc) rc = time_case(&c, model, "int8", seconds, e);
    nas_g8_exec_free(&x8);
  }
  free(in), free(out);
  nas_g8_graph_free(&g);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    fprintf(stderr, "usage: bench_infer8 SOURCE_DIR [SECONDS [TFLITE_MODEL]]\n");
    return 2;
  }
  double seconds = 2.0;
  if (argc >= 3) {
    char *end = NULL;
    seconds = strtod(argv[2], &end);
    if (!*argv[2] || *end || !(seconds > 0)) {
      fprintf(stderr, "bench_infer8: SECONDS must be positive, got '%s'\n", argv[2]);
      return 2;
    }
  }
  char model[4096];
  if (argc >= 4) snprintf(model, sizeof model, "%s", argv[3]);
  else snprintf(model, sizeof model, "%s/../shared/models/kws_ref_model.tflite", argv[1]);
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  nas_err e = {0};
  int rc = bench_dscnn(argv[1], seconds, &e);
  if (!rc) rc = bench_tflite(model, seconds, &e);
  if (rc) {
    fprintf(stderr, "bench_infer8: %s\n", e.msg);
    return 1;
  }
  return 0;
}
