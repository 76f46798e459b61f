/* bench/bench_train.c: training throughput of the reference architectures (the "ours" figure
 * of bench/run.sh; bench/torch_train.py measures the same models in PyTorch).
 *
 *   bench_train SOURCE_DIR [THREADS [SECONDS]]
 *
 * For search_spaces/reference/dscnn-s.json (batch 100) and fmnist-cnn.json (batch 128) under
 * SOURCE_DIR: builds the net, draws four random batches (normal inputs, uniform labels; fixed
 * seed), and runs training steps (forward in training mode, backward from the loss, Adam at
 * lr 0.002), cycling over the batches. After a warm-up it times steps for at least SECONDS
 * (default 3) and prints one JSON line per model:
 *   {"model":"dscnn-s","ours":<samples/s>,"batch":100,"steps":..,"seconds":..,"threads":..,
 *    "final_loss":..}
 * THREADS (optional) sets both the OpenMP and the OpenBLAS thread counts; without it the
 * environment (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) decides. Exit status 1 on any error. */
#include <math.h>
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
#include "train/graph.h"
#include "train/net.h"
#include "train/optim.h"

#define N_BATCHES 4
#define WARMUP_STEPS 5
#define LR 0.002f

typedef struct bench_model {
  const char *name;  /* model name in the JSON output */
  const char *arch;  /* arch JSON, relative to the source dir */
  int batch;         /* samples per step */
} bench_model;

static const bench_model models[] = {
    {"dscnn-s", "search_spaces/reference/dscnn-s.json", 100},
    {"fmnist-cnn", "search_spaces/reference/fmnist-cnn.json", 128},
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One training step on batch b of the pre-drawn data; returns the loss. */
static float train_step(nas_net *net, nas_optim *opt, const float *xs, const float *ys,
                        size_t x_per_batch, int batch, int b) {
  nas_graph *g = net->g;
  memcpy(g->nodes[net->input].val, xs + (size_t)b * x_per_batch, x_per_batch * sizeof(float));
  memcpy(g->nodes[net->labels].val, ys + (size_t)b * batch, (size_t)batch * sizeof(float));
  g->training = 1;
  nas_graph_forward(g, batch, -1);
  nas_graph_backward(g, net->loss);
  nas_optim_step(opt, g, LR);
  return g->nodes[net->loss].val[0];
}

/* Benchmarks one model; prints its JSON line. Returns 0 or 1 (message on stderr). */
static int bench_one(const char *src, const bench_model *m, double seconds, int threads) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", src, m->arch);
  nas_err e = {0};
  char *text = NULL;
  long len = 0;
  nas_net *net = NULL;
  nas_optim *opt = NULL;
  float *xs = NULL, *ys = NULL;
  int rc = 1;
  if (nas_read_file(path, &text, &len, &e) != NAS_OK) goto fail;
  if (nas_net_build(text, path, m->batch, 1, &net, &e) != NAS_OK) goto fail;
  nas_optim_cfg oc;
  nas_optim_cfg_default(&oc, NAS_ADAM);
  opt = nas_optim_new(net->g, &oc, &e);
  if (!opt) goto fail;

  size_t x_per_batch = (size_t)m->batch * net->in_h * net->in_w * net->in_c;
  xs = malloc(N_BATCHES * x_per_batch * sizeof *xs);
  ys = malloc((size_t)N_BATCHES * m->batch * sizeof *ys);
  if (!xs || !ys) {
    nas_errf(&e, NAS_ENOMEM, "out of memory for the random batches");
    goto fail;
  }
  nas_rng rng;
  nas_rng_seed(&rng, 1234);
  for (size_t i = 0; i < N_BATCHES * x_per_batch; i++) xs[i] = nas_rng_normal(&rng);
  for (int i = 0; i < N_BATCHES * m->batch; i++)
    ys[i] = (float)nas_rng_below(&rng, (uint32_t)net->classes);

  for (int s = 0; s < WARMUP_STEPS; s++)
    train_step(net, opt, xs, ys, x_per_batch, m->batch, s % N_BATCHES);
  long steps = 0;
  float loss = 0;
  double t0 = now_s(), elapsed = 0;
  do {
    loss = train_step(net, opt, xs, ys, x_per_batch, m->batch, (int)(steps % N_BATCHES));
    steps++;
    elapsed = now_s() - t0;
  } while (elapsed < seconds || steps < 3);
  if (!isfinite(loss)) {
    nas_errf(&e, NAS_ENUMERIC, "training diverged (loss %g)", (double)loss);
    goto fail;
  }
  printf("{\"model\":\"%s\",\"ours\":%.1f,\"batch\":%d,\"steps\":%ld,\"seconds\":%.3f,"
         "\"threads\":%d,\"final_loss\":%.4f}\n",
         m->name, (double)steps * m->batch / elapsed, m->batch, steps, elapsed, threads,
         (double)loss);
  fflush(stdout);
  rc = 0;
fail:
  if (rc) fprintf(stderr, "bench_train: %s: %s\n", m->name, e.msg);
  free(xs);
  free(ys);
  nas_optim_free(opt);
  nas_net_free(net);
  free(text);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fprintf(stderr, "usage: bench_train SOURCE_DIR [THREADS [SECONDS]]\n");
    return 2;
  }
  int threads = 0;
  double seconds = 3.0;
  if (argc >= 3) {
    char *end = NULL;
    long t = strtol(argv[2], &end, 10);
    if (!*argv[2] || *end || t < 1 || t > 1024) {
      fprintf(stderr, "bench_train: THREADS must be a positive integer, got '%s'\n", argv[2]);
      return 2;
    }
    threads = (int)t;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
  }
  if (argc >= 4) {
    char *end = NULL;
    seconds = strtod(argv[3], &end);
    if (!*argv[3] || *end || !(seconds > 0)) {
      fprintf(stderr, "bench_train: SECONDS must be positive, got '%s'\n", argv[3]);
      return 2;
    }
  }
  if (!threads) threads = omp_get_max_threads();
  int rc = 0;
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
    rc |= bench_one(argv[1], &models[i], seconds, threads);
  return rc;
}
