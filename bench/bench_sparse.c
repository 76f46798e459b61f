/* bench/bench_sparse.c: bytes and emulated cycles of the nas-c runtime's SPARSE operator
 * (bitmask + non-zero values, runtime/nasrt.h) against the dense kernels, per layer shape and
 * sparsity, on the emulated Cortex-M4 (SMLAD dense paths) and Cortex-M0+ (latency/emulator.h).
 * The weights of a lowered network are zeroed at random positions; the same graph is
 * emulated with dense and with sparse storage (the outputs must agree) and each operator's
 * cycles are printed as JSON lines.
 *   bench_sparse [levels...]      (default 0.5 0.7 0.9) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/lower.h"
#include "latency/emulator.h"
#include "latency/target.h"

static const char *ARCH =
    "{\"input\":[16,16,16],\"classes\":10,\"layers\":["
    "{\"op\":\"conv\",\"out\":32,\"k\":3},{\"op\":\"pwconv\",\"out\":32},"
    "{\"op\":\"maxpool\",\"k\":2},{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":64},"
    "{\"op\":\"fc\",\"out\":10}]}";

static int lowered(nas_g8_graph *g, nas_err *e) {
  nas_net *n = NULL;
  int rc = nas_net_build(ARCH, "bench", 8, 7, &n, e);
  if (rc) return rc;
  nas_dataset d = {0};
  size_t per = (size_t)n->in_h * n->in_w * n->in_c;
  d.n = 32, d.h = n->in_h, d.w = n->in_w, d.c = n->in_c, d.classes = n->classes;
  d.x = malloc((size_t)d.n * per * sizeof(float));
  d.y = calloc((size_t)d.n, sizeof(int));
  nas_rng r;
  nas_rng_seed(&r, 3);
  for (size_t i = 0; i < (size_t)d.n * per; i++) d.x[i] = nas_rng_normal(&r);
  rc = nas_quantize_net(n, &d, NULL, NULL, g, e);
  free(d.x), free(d.y);
  nas_net_free(n);
  return rc;
}

static void zero(nas_g8_graph *g, double s, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    if (op->kind != NAS_G8_CONV_2D && op->kind != NAS_G8_FULLY_CONNECTED) continue;
    nas_g8_tensor *w = &g->tensors[op->in[1]];
    int8_t *d = w->data;
    for (size_t k = 0; k < nas_g8_numel(w); k++)
      if (nas_rng_uniform(&r) < s) d[k] = 0;
  }
}

static int emulate(nas_g8_graph *g, const nas_target *t, const int8_t *in, nas_emu_result *res,
                   nas_err *e) {
  nas_emu_fw *fw = NULL;
  int rc = nas_emu_build(g, t, NULL, &fw, e);
  if (rc == NAS_OK) rc = nas_emu_run(fw, in, 0, res, e);
  nas_emu_fw_free(fw);
  return rc;
}

int main(int argc, char **argv) {
  double levels[8] = {0.5, 0.7, 0.9};
  int nl = 3;
  if (argc > 1) {
    nl = 0;
    for (int i = 1; i < argc && nl < 8; i++) levels[nl++] = atof(argv[i]);
  }
  static const char *const targets[2] = {"stm32l4r5zi", "stm32g0b1"};
  nas_err e = {0};
  for (int ti = 0; ti < 2; ti++) {
    nas_target *t = NULL;
    if (nas_target_open(targets[ti], NULL, &t, &e)) {
      fprintf(stderr, "bench_sparse: %s\n", e.msg);
      return 1;
    }
    for (int l = 0; l < nl; l++) {
      nas_g8_graph g;
      if (lowered(&g, &e)) {
        fprintf(stderr, "bench_sparse: %s\n", e.msg);
        return 1;
      }
      zero(&g, levels[l], 5 + (uint64_t)l);
      int8_t *in = calloc(nas_g8_numel(&g.tensors[g.input]), 1);
      for (size_t i = 0; i < nas_g8_numel(&g.tensors[g.input]); i++) in[i] = (int8_t)(i * 37 % 251 - 125);
      nas_emu_result rd, rs;
      memset(&rd, 0, sizeof rd), memset(&rs, 0, sizeof rs);
      g.sparse = 0;
      int rc = emulate(&g, t, in, &rd, &e);
      g.sparse = 2;
      if (rc == NAS_OK) rc = emulate(&g, t, in, &rs, &e);
      if (rc) {
        fprintf(stderr, "bench_sparse: %s\n", e.msg);
        return 1;
      }
      if (rd.out_n != rs.out_n || memcmp(rd.output, rs.output, rd.out_n)) {
        fprintf(stderr, "bench_sparse: sparse and dense outputs differ\n");
        return 1;
      }
      for (int i = 0; i < g.nops; i++) {
        long long nnz, sb = nas_g8_sparse_bytes(&g, i, &nnz);
        if (sb < 0) continue;
        const nas_g8_tensor *w = &g.tensors[g.ops[i].in[1]];
        const nas_g8_tensor *y = &g.tensors[g.ops[i].out];
        long long pix = (long long)(nas_g8_numel(y) / (size_t)w->dims[0]);
        printf("{\"core\":\"%s\",\"op\":%d,\"kind\":\"%s\",\"shape\":[%d,%d,%d,%d],"
               "\"sparsity\":%.2f,\"dense_bytes\":%zu,\"sparse_bytes\":%lld,\"nnz\":%lld,"
               "\"dense_macs\":%lld,\"nnz_macs\":%lld,\"dense_cycles\":%.0f,"
               "\"sparse_cycles\":%.0f}\n",
               ti ? "cortex-m0plus" : "cortex-m4", i, nas_g8_op_name(g.ops[i].kind), w->dims[0],
               w->ndim > 2 ? w->dims[1] : 1, w->ndim > 2 ? w->dims[2] : 1,
               w->dims[w->ndim - 1], levels[l], w->bytes, sb, nnz,
               pix * (long long)nas_g8_numel(w), pix * nnz, rd.layers[i].cycles,
               rs.layers[i].cycles);
      }
      fflush(stdout);
      nas_emu_result_free(&rd), nas_emu_result_free(&rs);
      free(in);
      nas_g8_graph_free(&g);
    }
    nas_target_free(t);
  }
  return 0;
}
