/* Allocation fault injection (tests/test_fault_util.h) in the pruning and sparse-search code:
 * every run with the N-th allocation failing must end in NAS_OK or NAS_ENOMEM with one line,
 * and a run that absorbed a fault must give the reference result. Operations:
 *   prune   a network with magnitude and channel pruning trained for one epoch, compacted;
 *           an SVDO network trained (its training form) and written back; a wider child
 *           inheriting the weights; the --prune text and the expected arch;
 *   sparse  a pruned network lowered to int8, prepared and run with sparse weights, priced
 *           on a nas-c target;
 *   gp      a Gaussian-process fit and prediction, acquisition scores, a hypervolume. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/dataset.h"
#include "deploy/lower.h"
#include "latency/cost.h"
#include "opt/gp.h"
#include "opt/mobo.h"
#include "tests/test_fault_util.h"
#include "train/inherit.h"
#include "train/net.h"
#include "train/prune.h"
#include "train/trainer.h"

#define BASE "{\"input\":[10,10,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":6,\"k\":3,\"stride\":2}," \
             "{\"op\":\"dsconv\",\"out\":8},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]"

/* ---- prune ------------------------------------------------------------------------------- */

typedef struct prune_ctx {
  char spec[320];
  double ref[4], got[4]; /* losses (magnitude, svdo), zero counts, the child's copied values */
} prune_ctx;

static int train1(nas_net *n, const nas_data *d, double *loss, nas_err *e) {
  nas_train_cfg cfg;
  nas_train_cfg_default(&cfg, NAS_ADAM);
  cfg.epochs = 1, cfg.batch = 8;
  nas_train_result r;
  int rc = nas_train(n, d, &cfg, &r, e);
  *loss = r.final_loss;
  return rc;
}

static int prune_run(void *p, nas_err *e) {
  prune_ctx *c = p;
  nas_data_opts o;
  nas_data_opts_default(&o, c->spec);
  nas_data d;
  int rc = nas_data_load(&o, &d, e);
  if (rc) return rc;
  nas_net *m = NULL, *s = NULL, *v = NULL, *child = NULL;
  char *pj = NULL, *arch = NULL, *ex = NULL;
  rc = nas_prune_spec_parse("method=magnitude,sparsity=0.5,channels=0.5", &pj, e);
  if (!rc) rc = nas_prune_arch_with(BASE "}", pj, &arch, e);
  if (!rc) rc = nas_prune_expected_arch(arch, &ex, e);
  if (!rc) rc = nas_net_build(arch, "fault-prune", 8, 3, &m, e);
  if (!rc) rc = train1(m, &d, &c->got[0], e);
  if (!rc) rc = nas_prune_compact(m, 8, &s, e);
  if (!rc) rc = nas_net_build(BASE ",\"prune\":{\"method\":\"svdo\",\"sparsity\":0.3}}", "fault-svdo", 8,
                              3, &v, e);
  if (!rc) rc = train1(v, &d, &c->got[1], e);
  if (!rc) {
    nas_prune_stats st;
    nas_prune_stats_of(v, &st);
    c->got[2] = (double)st.masked_zero;
    rc = nas_net_build("{\"input\":[10,10,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":9,"
                       "\"k\":3,\"stride\":2},{\"op\":\"dsconv\",\"out\":8},{\"op\":\"gap\"},"
                       "{\"op\":\"fc\",\"out\":3}]}", "fault-child", 4, 5, &child, e);
  }
  nas_inherit_stats is;
  if (!rc) rc = nas_net_inherit(child, s, &is, e);
  if (!rc) c->got[3] = (double)is.copied;
  nas_net_free(m), nas_net_free(s), nas_net_free(v), nas_net_free(child);
  free(pj), free(arch), free(ex);
  nas_data_free(&d);
  return rc;
}

static void prune_check(void *p, int rc, int hit) {
  prune_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_memory_equal(c->got, c->ref, sizeof c->ref);
}

static void test_prune(void **state) {
  (void)state;
  NEED_FAULTS();
  prune_ctx c = {0};
  snprintf(c.spec, sizeof c.spec, "idx:%s/idx", g_dir);
  nas_err e = {0};
  if (prune_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  memcpy(c.ref, c.got, sizeof c.ref);
  fault_case fc = {"prune", &c, NULL, prune_run, prune_check, 3};
  faultsim(&fc);
}

/* ---- sparse ------------------------------------------------------------------------------ */

typedef struct sparse_ctx {
  nas_net *net;            /* pruned, weights at their masks */
  nas_dataset calib;
  nas_target *t;           /* a nas-c target */
  int8_t y[3], ref_y[3];
  long long flash, ref_flash;
} sparse_ctx;

static int sparse_run(void *p, nas_err *e) {
  sparse_ctx *c = p;
  nas_g8_graph g;
  memset(&g, 0, sizeof g);
  nas_price *pr = NULL;
  int rc = nas_quantize_net(c->net, &c->calib, NULL, NULL, &g, e);
  if (!rc) {
    g.sparse = 2;
    int8_t x[100];
    for (int i = 0; i < 100; i++) x[i] = (int8_t)(i * 7 % 256 - 128);
    rc = nas_g8_run(&g, x, c->y, e);
  }
  if (!rc) rc = nas_price_graph(&g, c->t, &pr, e);
  if (!rc) c->flash = pr->flash_bytes;
  nas_price_free(pr);
  nas_g8_graph_free(&g);
  return rc;
}

static void sparse_check(void *p, int rc, int hit) {
  sparse_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_memory_equal(c->y, c->ref_y, sizeof c->y);
  assert_true(c->flash == c->ref_flash);
}

static void test_sparse(void **state) {
  (void)state;
  NEED_FAULTS();
  static sparse_ctx c;
  nas_err e = {0};
  if (nas_net_build(BASE ",\"prune\":{\"method\":\"magnitude\",\"sparsity\":0.8}}", "fault", 4, 3,
                    &c.net, &e))
    fail_msg("%s", e.msg);
  if (nas_prune_apply_targets(c.net, 1.0, &e)) fail_msg("%s", e.msg);
  test_make_noise(&c.calib, 16, 10, 10, 1, 3, 4);
  if (nas_target_parse("{\"id\":\"t\",\"name\":\"t\",\"core\":\"cortex-m4\",\"clock_mhz\":80,"
                       "\"sram_bytes\":65536,\"flash_bytes\":262144,\"source\":\"test\","
                       "\"kernel_library\":\"cmsis-nn\",\"runtime\":\"nas-c\","
                       "\"runtime_overhead_sram_bytes\":0,\"runtime_overhead_flash_bytes\":0,"
                       "\"latency_model\":\"linear\",\"linear\":{\"cycles_per_mac\":2,"
                       "\"fixed_cycles\":0},\"calibrated\":false,\"calibration\":\"none\"}",
                       "fault target", NULL, &c.t, &e))
    fail_msg("%s", e.msg);
  if (sparse_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  memcpy(c.ref_y, c.y, sizeof c.y);
  c.ref_flash = c.flash;
  fault_case fc = {"sparse", &c, NULL, sparse_run, sparse_check, 1};
  faultsim(&fc);
  nas_net_free(c.net);
  nas_target_free(c.t);
  free(c.calib.x), free(c.calib.y);
}

/* ---- gp ---------------------------------------------------------------------------------- */

typedef struct gp_ctx {
  double out[12], ref[12];
} gp_ctx;

static int gp_run(void *p, nas_err *e) {
  gp_ctx *c = p;
  enum { N = 12, D = 2 };
  double X[N * D], y[N], xs[4 * D] = {0.1, 0.2, 0.5, 0.5, 0.9, 0.3, 0.3, 0.8}, mu[4], var[4];
  for (int i = 0; i < N; i++) {
    X[i * D] = (i % 4) / 3.0, X[i * D + 1] = (i / 4) / 2.0;
    y[i] = sin(3 * X[i * D]) + X[i * D + 1];
  }
  nas_rng r;
  nas_rng_seed(&r, 1);
  nas_gp_fit_opts o;
  nas_gp_fit_opts_default(&o);
  o.restarts = 2, o.max_iter = 20;
  nas_gp *g = NULL;
  int rc = nas_gp_fit(X, y, N, D, &o, &r, &g, e);
  if (!rc) rc = nas_gp_predict(g, xs, 4, mu, var, e);
  double w[2] = {0.5, 0.5}, z[2] = {0, 0}, sc[2], mean[4] = {mu[0], mu[1], mu[2], mu[3]};
  double vv[4] = {var[0], var[1], var[2], var[3]};
  nas_acq a = {NAS_ACQ_EI, 2, w, z, 0.05, 1, 0.5, 8};
  if (!rc) rc = nas_acq_score(&a, mean, vv, 2, &r, sc, e);
  double hv = 0, pts[6] = {0.1, 0.5, 0.2, 0.3, 0.3, 0.1}, ref[3] = {1, 1, 1};
  if (!rc) rc = nas_hypervolume(pts, 2, 3, ref, &hv, e);
  if (!rc) {
    memcpy(c->out, mu, sizeof mu), memcpy(c->out + 4, var, sizeof var);
    c->out[8] = sc[0], c->out[9] = sc[1], c->out[10] = hv, c->out[11] = nas_gp_lml_value(g);
  }
  nas_gp_free(g);
  return rc;
}

static void gp_check(void *p, int rc, int hit) {
  gp_ctx *c = p;
  if (rc != NAS_OK || !hit) return;
  assert_memory_equal(c->out, c->ref, sizeof c->ref);
}

static void test_gp(void **state) {
  (void)state;
  NEED_FAULTS();
  gp_ctx c;
  memset(&c, 0, sizeof c);
  nas_err e = {0};
  if (gp_run(&c, &e)) fail_msg("reference run: %s", e.msg);
  memcpy(c.ref, c.out, sizeof c.ref);
  fault_case fc = {"gp", &c, NULL, gp_run, gp_check, 1};
  faultsim(&fc);
}

static int setup(void **st) {
  (void)st;
  if (fault_setup()) return -1;
  char dir[300];
  snprintf(dir, sizeof dir, "%s/idx", g_dir);
  if (mkdir(dir, 0755)) return -1;
  test_write_bar_idx(dir, "train", 24, 1);
  test_write_bar_idx(dir, "t10k", 8, 2);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  return fault_teardown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prune),
      cmocka_unit_test(test_sparse),
      cmocka_unit_test(test_gp),
  };
  fault_filter();
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
