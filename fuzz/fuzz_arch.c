/* fuzz/fuzz_arch.c: libFuzzer harness of arch JSON (README "Architecture JSON") through the
 * network builder (train/net.c nas_net_build) and the canonical hash (nas_arch_hash). The
 * input is arch JSON text. A network that builds is run forward and backward once on a zero
 * batch of 2 when it is small (at most FUZZ_MACS multiply-accumulates per sample), so the
 * kernels see every shape the builder accepts. Single allocations above FUZZ_MAX_ALLOC_MB fail
 * (fuzz_util.h): an architecture whose tensors exceed that must be refused with NAS_ENOMEM
 * and a message, never crash. */
#include "fuzz/fuzz_util.h"

#include "search_spaces/space.h"
#include "train/net.h"

#define FUZZ_MACS 2000000LL

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  nas_err e = {0};
  uint64_t h;
  int rc = nas_arch_hash(text, &h, &e);
  fuzz_check_err(rc, &e, "nas_arch_hash");
  nas_net *n = NULL;
  nas_err e2 = {0};
  rc = nas_net_build(text, "fuzz.json", 2, 1, &n, &e2);
  fuzz_check_err(rc, &e2, "nas_net_build");
  if (rc == NAS_OK) {
    if (!n || !n->arch_json) FUZZ_FAIL("nas_net_build succeeded without a network");
    /* the canonical form must build again */
    nas_net *n2 = NULL;
    nas_err e3 = {0};
    if (nas_net_build(n->arch_json, "canonical", 1, 1, &n2, &e3) != NAS_OK)
      FUZZ_FAIL("the canonical arch does not build: %s", e3.msg);
    nas_net_free(n2);
    if (n->macs >= 0 && n->macs <= FUZZ_MACS) {
      nas_graph *g = n->g;
      memset(g->nodes[n->input].val, 0, nas_shape_numel(&g->nodes[n->input].shape) * sizeof(float));
      for (int b = 0; b < 2; b++) g->nodes[n->labels].val[b] = (float)(b % n->classes);
      nas_graph_forward(g, 2, -1);
      nas_graph_backward(g, n->loss);
    }
  } else if (n) {
    FUZZ_FAIL("nas_net_build failed but returned a network");
  }
  nas_net_free(n);
  free(text);
  return 0;
}
