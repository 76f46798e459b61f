/* fuzz/fuzz_dnas_ckpt.c: libFuzzer harness of DNAS supernet checkpoints (the loader of
 * nas/dnas_ckpt.c, declared in nas/dnas_impl.h, that `nas resume` runs on every sweep point).
 *
 * Set-up, once: a tiny space (fuzz-dnas: 6x6x1 input, 2 classes, width, kernel and optional
 * choices), its supernet, relaxation and supernet graph (batch 1) on the stm32f746 target, an
 * SGD optimiser with momentum, and a run context whose store path is in a scratch folder.
 * Per input: the input is a checkpoint WITHOUT its trailing CRC-32 (the harness appends the
 * right one, as in fuzz_ckpt), written as sweep point 0's checkpoint file; dnas_ckpt_load
 * must load it (1) or refuse it (-1) with one line, and leave the state untouched when it
 * refuses. With NAS_FUZZ_SEEDS=DIR in the environment the harness instead writes seed inputs
 * (a checkpoint of the set-up, CRC stripped) into DIR and exits. */
#include "fuzz/fuzz_util.h"

#include <sys/stat.h>

#include "nas/strategies/dnas_impl.h"
#include "train/checkpoint.h"

static const char SPACE[] =
    "{\"name\":\"fuzz-dnas\",\"input\":[6,6,1],\"classes\":2,\"layers\":["
    "{\"op\":\"conv\",\"out\":{\"choice\":[2,4]},\"k\":{\"choice\":[1,3]}},"
    "{\"op\":\"dsconv\",\"out\":{\"choice\":[2,3]},\"k\":3,\"optional\":true},"
    "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}";

static dnas_ctx g_c;
static nas_target *g_t; /* g_c.t (const there) */
static nas_dnas_net *g_dn;
static nas_optim *g_opt;
static dnas_sn_state g_s;
static char g_dir[600], g_db[700], g_ck[4200];

static void cleanup(void) {
  nas_optim_free(g_opt);
  nas_dnas_net_free(g_dn);
  nas_dnas_relax_free(g_c.rx);
  nas_supernet_free(g_c.sn);
  nas_target_free(g_t);
  free(g_s.alpha), free(g_s.m), free(g_s.v);
  fuzz_rm_tree(g_dir);
}

#define SETUP(call)                                                     \
  do {                                                                  \
    if ((call) != NAS_OK) FUZZ_FAIL("set-up: %s: %s", #call, e.msg);    \
  } while (0)

static void setup(void) {
  nas_err e = {0};
  snprintf(g_dir, sizeof g_dir, "%s", fuzz_tmpdir());
  char space[700];
  snprintf(space, sizeof space, "%s/fuzz-dnas.json", g_dir);
  fuzz_write_file(space, SPACE, sizeof SPACE - 1);
  snprintf(g_db, sizeof g_db, "%s/run.db", g_dir);
  memset(&g_c, 0, sizeof g_c);
  nas_dnas_cfg_default(&g_c.cfg);
  g_c.cfg.sn_epochs = 4;
  g_c.db = g_db, g_c.run_id = 1;
  SETUP(nas_supernet_load(space, &g_c.sn, &e));
  SETUP(nas_target_open("stm32f746", NULL, &g_t, &e));
  g_c.t = g_t;
  SETUP(nas_dnas_relax_build(g_c.sn, g_c.t, &g_c.rx, &e));
  SETUP(nas_dnas_net_build(g_c.rx, 1, 1, &g_dn, &e));
  nas_optim_cfg oc;
  nas_optim_cfg_default(&oc, NAS_SGD);
  if (!(g_opt = nas_optim_new(g_dn->net->g, &oc, &e))) FUZZ_FAIL("set-up: optimiser: %s", e.msg);
  size_t n = (size_t)g_c.rx->n_p;
  g_s.alpha = calloc(n, sizeof(double)), g_s.m = calloc(n, sizeof(double));
  g_s.v = calloc(n, sizeof(double));
  if (!g_s.alpha || !g_s.m || !g_s.v) FUZZ_FAIL("out of memory");
  dnas_ckpt_path(&g_c, 0, g_ck, sizeof g_ck);
  atexit(cleanup);
}

/* Writes the checkpoint of the current state, minus its CRC, as seed file DIR/name. */
static void write_seed(const char *dir, const char *name) {
  nas_err e = {0};
  SETUP(dnas_ckpt_save(&g_c, 0, g_dn, g_opt, &g_s, &e));
  FILE *f = fopen(g_ck, "rb");
  static uint8_t buf[1 << 22];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  if (n < 4 || n == sizeof buf) FUZZ_FAIL("seed checkpoint %s: %zu bytes", g_ck, n);
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  fuzz_write_file(p, buf, n - 4);
}

static void seeds(const char *dir) {
  mkdir(dir, 0777);
  write_seed(dir, "epoch0");
  for (int i = 0; i < g_c.rx->n_p; i++) g_s.alpha[i] = 0.25 * i, g_s.m[i] = -0.5, g_s.v[i] = 1e-3;
  g_s.epoch = 2, g_s.astep = 17, g_s.samples = 340, g_s.seconds = 1.5;
  g_opt->step = 17;
  for (int i = 0; i < g_opt->n && g_opt->m; i++) g_opt->m[i][0] = 0.125f;
  write_seed(dir, "epoch2");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setup();
  const char *sd = getenv("NAS_FUZZ_SEEDS");
  if (sd && sd[0]) {
    seeds(sd);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *file = fuzz_with_crc(data, size);
  fuzz_write_file(g_ck, file, size + 4);
  free(file);
  /* a refusal must leave the state as it was: compare the logits before and after */
  size_t n = (size_t)g_c.rx->n_p;
  double *before = malloc(n * sizeof(double));
  if (!before) FUZZ_FAIL("out of memory");
  memcpy(before, g_s.alpha, n * sizeof(double));
  int epoch = g_s.epoch;
  long step = g_opt->step;
  nas_err e = {0};
  int r = dnas_ckpt_load(&g_c, 0, g_dn, g_opt, &g_s, &e);
  if (r != 1 && r != -1) FUZZ_FAIL("dnas_ckpt_load returned %d for an existing file", r);
  if (r < 0) {
    fuzz_check_err(e.code ? e.code : NAS_EINVAL, &e, "dnas_ckpt_load");
    if (memcmp(before, g_s.alpha, n * sizeof(double)) || epoch != g_s.epoch || step != g_opt->step)
      FUZZ_FAIL("a refused DNAS checkpoint changed the state: %s", e.msg);
  }
  free(before);
  return 0;
}
