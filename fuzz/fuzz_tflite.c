/* fuzz/fuzz_tflite.c: libFuzzer harness of the TFLite reader (deploy/tflite_read.c). The input
 * is a .tflite file: nas_tflite_parse must accept it or refuse it with one line; a graph it
 * accepts (which has passed nas_g8_validate) is then
 *   - described per operator as the latency models see it (nas_g8_layer_info, model MACs),
 *   - run once on a zero input (nas_g8_run) when its work is small (below FUZZ_WORK operator
 *     element-steps, so that the fuzzer explores shapes rather than long convolutions),
 *   - written back (nas_tflite_write_mem) and, when the writer accepts it, read again: the
 *     reader must accept what the exporter writes, with the same tensor and operator counts.
 * With NAS_FUZZ_SEEDS=DIR in the environment the harness writes seed models (the tiny nets of
 * fuzz_nets.h, lowered and exported) into DIR and exits. */
#include "fuzz/fuzz_nets.h"

#include <sys/stat.h>

#include "deploy/graph8.h"
#include "export/export_tflite.h"
#include "latency/measure.h"

#define FUZZ_WORK 2e7        /* largest estimated operator work that is run */
#define FUZZ_IO (1 << 22)    /* largest input/output element count that is run */

/* Rough work of one operator: output elements times what each reads. */
static double op_work(const nas_g8_graph *g, const nas_g8_op *op) {
  double out = (double)nas_g8_numel(&g->tensors[op->out]), k = 1;
  const nas_g8_tensor *w = op->nin > 1 && op->in[1] >= 0 ? &g->tensors[op->in[1]] : NULL;
  switch (op->kind) {
    case NAS_G8_CONV_2D:
    case NAS_G8_FULLY_CONNECTED:
      if (w && w->ndim > 0) k = (double)nas_g8_numel(w) / w->dims[0];
      break;
    case NAS_G8_DEPTHWISE_CONV_2D:
      if (w && w->ndim > 0) k = (double)nas_g8_numel(w) / w->dims[w->ndim - 1];
      break;
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D: k = (double)op->filter_w * op->filter_h; break;
    default: k = (double)nas_g8_numel(&g->tensors[op->in[0]]) / (out > 0 ? out : 1) + 1;
  }
  return out * k;
}

static void seeds(const char *dir) {
  mkdir(dir, 0777);
  for (int i = 0; i < FUZZ_N_NETS; i++) {
    nas_calib c;
    nas_g8_graph g;
    nas_net *n = fuzz_net_lowered(i, &c, &g);
    uint8_t *buf = NULL;
    size_t len = 0;
    nas_err e = {0};
    if (nas_tflite_write_mem(&g, FUZZ_NETS[i].name, &buf, &len, &e) != NAS_OK)
      FUZZ_FAIL("seed %s: %s", FUZZ_NETS[i].name, e.msg);
    char p[1200];
    snprintf(p, sizeof p, "%s/%s.tflite", dir, FUZZ_NETS[i].name);
    fuzz_write_file(p, buf, len);
    free(buf);
    nas_g8_graph_free(&g);
    nas_calib_free(&c);
    nas_net_free(n);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *sd = getenv("NAS_FUZZ_SEEDS");
  if (sd && sd[0]) {
    seeds(sd);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nas_g8_graph g;
  nas_err e = {0};
  int rc = nas_tflite_parse(data, size, "fuzz.tflite", &g, &e);
  fuzz_check_err(rc, &e, "nas_tflite_parse");
  if (rc != NAS_OK) return 0;
  for (int i = 0; i < g.nops; i++) {
    nas_g8_linfo li;
    nas_g8_layer_info(&g, i, &li);
  }
  (void)nas_g8_model_macs(&g);
  double work = 0;
  for (int i = 0; i < g.nops; i++) work += op_work(&g, &g.ops[i]);
  size_t nin = nas_g8_numel(&g.tensors[g.input]), nout = nas_g8_numel(&g.tensors[g.output]);
  if (work <= FUZZ_WORK && nin <= FUZZ_IO && nout <= FUZZ_IO) {
    int8_t *in = calloc(nin, 1), *out = malloc(nout);
    if (!in || !out) FUZZ_FAIL("out of memory");
    nas_err e2 = {0};
    rc = nas_g8_run(&g, in, out, &e2);
    fuzz_check_err(rc, &e2, "nas_g8_run");
    free(in), free(out);
  }
  uint8_t *buf = NULL;
  size_t len = 0;
  nas_err e3 = {0};
  rc = nas_tflite_write_mem(&g, "fuzz", &buf, &len, &e3);
  fuzz_check_err(rc, &e3, "nas_tflite_write_mem");
  if (rc == NAS_OK) {
    nas_g8_graph g2;
    nas_err e4 = {0};
    rc = nas_tflite_parse(buf, len, "fuzz-rewritten.tflite", &g2, &e4);
    if (rc != NAS_OK) FUZZ_FAIL("the reader refuses what the exporter wrote: %s", e4.msg);
    if (g2.ntensors > g.ntensors || g2.nops != g.nops)
      FUZZ_FAIL("round trip changed the graph: %d/%d tensors, %d/%d operators", g.ntensors,
                g2.ntensors, g.nops, g2.nops);
    nas_g8_graph_free(&g2);
  }
  free(buf);
  nas_g8_graph_free(&g);
  return 0;
}
