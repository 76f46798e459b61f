/* fuzz/fuzz_ckpt.c: libFuzzer harness of network checkpoints (train/checkpoint.c) and of the
 * store's float blobs that hold the same bytes (nas/artifacts.c nas_cand_unpack_float).
 *
 * The input is a checkpoint file WITHOUT its trailing CRC-32: the harness appends the right
 * one, so that mutations reach the fields behind the checksum (a wrong checksum is a single
 * comparison, covered by tests/test_checkpoint.c). A checkpoint that loads is applied to the
 * network its arch JSON builds (nas_ckpt_apply); the blob's stored calibration, when it fits
 * that network, lowers it to int8 (nas_lower), which is run once on a zero input when small.
 * Allocations are capped as in every harness (fuzz_util.h).
 * With NAS_FUZZ_SEEDS=DIR in the environment the harness writes seed inputs into DIR (per tiny
 * net of fuzz_nets.h: a plain checkpoint and a store blob with calibration, CRC stripped) and
 * exits. */
#include "fuzz/fuzz_nets.h"

#include <sys/stat.h>

#include "deploy/graph8.h"
#include "deploy/lower.h"
#include "nas/artifacts.h"
#include "train/checkpoint.h"
#include "train/net.h"

#define FUZZ_MACS 2000000LL

/* Writes b[n - 4] (the bytes before the CRC) as DIR/name. */
static void seed_file(const char *dir, const char *name, const uint8_t *b, size_t n) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  if (n < 4) FUZZ_FAIL("seed %s: %zu bytes", name, n);
  fuzz_write_file(p, b, n - 4);
}

static void seeds(const char *dir) {
  mkdir(dir, 0777);
  for (int i = 0; i < FUZZ_N_NETS; i++) {
    nas_calib c;
    nas_g8_graph g;
    nas_net *n = fuzz_net_lowered(i, &c, &g);
    nas_err e = {0};
    char p[1200], name[200];
    snprintf(p, sizeof p, "%s/tmp.ckpt", dir);
    if (nas_ckpt_save(p, n->arch_json, "{\"dataset\":\"idx:/nowhere\"}", n->g, &e) != NAS_OK)
      FUZZ_FAIL("seed %s: %s", FUZZ_NETS[i].name, e.msg);
    FILE *f = fopen(p, "rb");
    static uint8_t buf[1 << 20];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    remove(p);
    snprintf(name, sizeof name, "%s.ckpt", FUZZ_NETS[i].name);
    seed_file(dir, name, buf, len);
    nas_cand_info info = {.dataset = "idx:/nowhere", .epochs = 1, .seed = 1, .norm_mean = 0.5f,
                          .norm_std = 0.25f, .float_test_acc = 0.5};
    uint8_t *fb = NULL, *qb = NULL;
    size_t fl = 0, ql = 0;
    if (nas_cand_pack(n, &info, &c, &g, FUZZ_NETS[i].name, &fb, &fl, &qb, &ql, &e) != NAS_OK)
      FUZZ_FAIL("seed %s: %s", FUZZ_NETS[i].name, e.msg);
    snprintf(name, sizeof name, "%s.blob", FUZZ_NETS[i].name);
    seed_file(dir, name, fb, fl);
    free(fb), free(qb);
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

/* Lowers net with the calibration stored in f and runs the int8 graph once. */
static void lower_and_run(const nas_net *net, const nas_cand_float *f) {
  nas_calib c;
  memset(&c, 0, sizeof c);
  nas_err e = {0};
  int rc = nas_cand_calib(f, net->g, &c, &e);
  fuzz_check_err(rc, &e, "nas_cand_calib");
  if (rc != NAS_OK) return;
  nas_g8_graph g8;
  memset(&g8, 0, sizeof g8);
  nas_err e2 = {0};
  rc = nas_lower(net, &c, NULL, &g8, &e2);
  fuzz_check_err(rc, &e2, "nas_lower");
  if (rc == NAS_OK) {
    size_t nin = nas_g8_numel(&g8.tensors[g8.input]), nout = nas_g8_numel(&g8.tensors[g8.output]);
    int8_t *in = calloc(nin, 1), *out = malloc(nout);
    if (!in || !out) FUZZ_FAIL("out of memory");
    nas_err e3 = {0};
    rc = nas_g8_run(&g8, in, out, &e3);
    fuzz_check_err(rc, &e3, "nas_g8_run");
    free(in), free(out);
  }
  nas_g8_graph_free(&g8);
  nas_calib_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *file = fuzz_with_crc(data, size);
  const char *path = fuzz_memfile(file, size + 4);
  nas_ckpt ck;
  nas_err e = {0};
  int rc = nas_ckpt_load(path, &ck, &e);
  fuzz_check_err(rc, &e, "nas_ckpt_load");
  if (rc == NAS_OK) {
    nas_net *net = NULL;
    nas_err e2 = {0};
    rc = nas_net_build(ck.arch_json, "fuzz checkpoint arch", 1, 1, &net, &e2);
    fuzz_check_err(rc, &e2, "nas_net_build");
    if (rc == NAS_OK) {
      nas_err e3 = {0};
      rc = nas_ckpt_apply(&ck, net->g, &e3);
      fuzz_check_err(rc, &e3, "nas_ckpt_apply");
      nas_cand_float f;
      nas_err e4 = {0};
      rc = nas_cand_unpack_float(file, size + 4, "fuzz candidate", &f, &e4);
      fuzz_check_err(rc, &e4, "nas_cand_unpack_float");
      if (rc == NAS_OK) {
        if (net->macs >= 0 && net->macs <= FUZZ_MACS) lower_and_run(net, &f);
        nas_cand_float_free(&f);
      }
    }
    nas_net_free(net);
    nas_ckpt_free(&ck);
  }
  free(file);
  return 0;
}
