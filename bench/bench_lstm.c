/* bench/bench_lstm.c: training throughput of lstm-kws (one LSTM of 118 units over a 49x10
 * MFCC input read as 49 steps of 10 features, last step, fc 12; search_spaces/reference/
 * lstm-s.json), batch 100, Adam lr 0.002, random data (normal inputs, uniform labels, fixed
 * seed, four batches cycled). bench/torch_lstm.py measures the same model in PyTorch.
 *
 *   bench_lstm [THREADS [SECONDS]]
 *
 * THREADS sets both the OpenMP and OpenBLAS thread counts (default: the environment decides;
 * use 2 to match torch_lstm.py). After a warm-up, steps are timed for at least SECONDS
 * (default 3). Prints one JSON line:
 *   {"model":"lstm-kws","ours":<samples/s>,"batch":100,"steps":..,"seconds":..,"threads":..,
 *    "final_loss":..}
 * Exit status 1 on any error, 2 on usage errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <omp.h>

#include "core/error.h"
#include "core/rng.h"
#include "train/graph.h"
#include "train/net.h"
#include "train/optim.h"

#define BATCH 100
#define N_BATCHES 4
#define WARMUP_STEPS 5
#define LR 0.002f

static const char *ARCH =
    "{\"name\":\"lstm-kws\",\"input\":[49,10,1],\"classes\":12,\"layers\":["
    "{\"op\":\"lstm\",\"units\":118,\"return_sequences\":false},{\"op\":\"fc\",\"out\":12}]}";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float train_step(nas_net *net, nas_optim *opt, const float *xs, const float *ys,
                        size_t x_per_batch, int b) {
  nas_graph *g = net->g;
  memcpy(g->nodes[net->input].val, xs + (size_t)b * x_per_batch, x_per_batch * sizeof(float));
  memcpy(g->nodes[net->labels].val, ys + (size_t)b * BATCH, (size_t)BATCH * sizeof(float));
  g->training = 1;
  nas_graph_forward(g, BATCH, -1);
  nas_graph_backward(g, net->loss);
  nas_optim_step(opt, g, LR);
  return g->nodes[net->loss].val[0];
}

int main(int argc, char **argv) {
  if (argc > 3 || (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
    fprintf(stderr, "usage: bench_lstm [THREADS [SECONDS]]\n");
    return 2;
  }
  int threads = 0;
  double seconds = 3.0;
  if (argc >= 2) {
    char *end = NULL;
    long t = strtol(argv[1], &end, 10);
    if (!*argv[1] || *end || t < 1 || t > 1024) {
      fprintf(stderr, "bench_lstm: THREADS must be a positive integer, got '%s'\n", argv[1]);
      return 2;
    }
    threads = (int)t;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
  }
  if (argc >= 3) {
    char *end = NULL;
    seconds = strtod(argv[2], &end);
    if (!*argv[2] || *end || !(seconds > 0)) {
      fprintf(stderr, "bench_lstm: SECONDS must be positive, got '%s'\n", argv[2]);
      return 2;
    }
  }
  if (!threads) threads = omp_get_max_threads();

  nas_err e = {0};
  nas_net *net = NULL;
  nas_optim *opt = NULL;
  float *xs = NULL, *ys = NULL;
  int rc = 1;
  if (nas_net_build(ARCH, "lstm-kws", BATCH, 1, &net, &e) != NAS_OK) goto done;
  nas_optim_cfg oc;
  nas_optim_cfg_default(&oc, NAS_ADAM);
  opt = nas_optim_new(net->g, &oc, &e);
  if (!opt) goto done;
  size_t x_per_batch = (size_t)BATCH * net->in_h * net->in_w * net->in_c;
  xs = malloc(N_BATCHES * x_per_batch * sizeof *xs);
  ys = malloc((size_t)N_BATCHES * BATCH * sizeof *ys);
  if (!xs || !ys) {
    nas_errf(&e, NAS_ENOMEM, "out of memory for the random batches");
    goto done;
  }
  nas_rng rng;
  nas_rng_seed(&rng, 1234);
  for (size_t i = 0; i < N_BATCHES * x_per_batch; i++) xs[i] = nas_rng_normal(&rng);
  for (int i = 0; i < N_BATCHES * BATCH; i++) ys[i] = (float)nas_rng_below(&rng, 12);

  for (int s = 0; s < WARMUP_STEPS; s++) train_step(net, opt, xs, ys, x_per_batch, s % N_BATCHES);
  long steps = 0;
  float loss = 0;
  double t0 = now_s(), elapsed = 0;
  do {
    loss = train_step(net, opt, xs, ys, x_per_batch, (int)(steps % N_BATCHES));
    steps++;
    elapsed = now_s() - t0;
  } while (elapsed < seconds || steps < 3);
  if (!isfinite(loss)) {
    nas_errf(&e, NAS_ENUMERIC, "training diverged (loss %g)", (double)loss);
    goto done;
  }
  printf("{\"model\":\"lstm-kws\",\"ours\":%.1f,\"batch\":%d,\"steps\":%ld,\"seconds\":%.3f,"
         "\"threads\":%d,\"final_loss\":%.4f}\n",
         (double)steps * BATCH / elapsed, BATCH, steps, elapsed, threads, (double)loss);
  rc = 0;
done:
  if (rc) fprintf(stderr, "bench_lstm: %s\n", e.msg);
  free(xs);
  free(ys);
  nas_optim_free(opt);
  nas_net_free(net);
  return rc;
}
