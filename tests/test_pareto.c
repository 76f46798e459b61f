/* Pareto: objective parsing (unknown column lists the valid ones), dominance, ranks and
 * crowding distance on known examples, and front queries on a store with a run filter and
 * a user WHERE filter (a filter with ';' or one that writes is refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/pareto.h"
#include "results/store.h"
#include "tests/test_util.h"

static void test_parse(void **state) {
  (void)state;
  nas_objectives o;
  nas_err e = {0};
  assert_int_equal(nas_objectives_parse("acc_int8_test:max, latency_pred_ms:min,macs:min", &o, &e), NAS_OK);
  assert_int_equal(o.n, 3);
  assert_int_equal(o.metric[0], nas_metric_index("acc_int8_test"));
  assert_int_equal(o.maximize[0], 1);
  assert_int_equal(o.maximize[1], 0);
  char buf[128];
  nas_objectives_format(&o, buf, sizeof buf);
  assert_string_equal(buf, "acc_int8_test:max,latency_pred_ms:min,macs:min");
  assert_int_not_equal(nas_objectives_parse("accuracy:max", &o, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "unknown column 'accuracy'"));
  assert_non_null(strstr(e.msg, "acc_int8_test"));
  assert_non_null(strstr(e.msg, "train_seconds"));
  assert_int_not_equal(nas_objectives_parse("macs:down", &o, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "'down'"));
  assert_int_not_equal(nas_objectives_parse("macs", &o, &e), NAS_OK);
  assert_int_not_equal(nas_objectives_parse("macs:min,macs:max", &o, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "twice"));
  assert_int_not_equal(nas_objectives_parse("macs:min,", &o, &e), NAS_OK);
  assert_int_not_equal(nas_objectives_parse("", &o, &e), NAS_OK);
}

/* Both minimised: (1,5) (2,3) (4,1) form the front; (3,4) is dominated by (2,3); (5,5) by
 * everything of rank 1; (2,3) duplicated is still non-dominated. */
static void test_ranks_crowding(void **state) {
  (void)state;
  const double pts[] = {1, 5, 2, 3, 4, 1, 3, 4, 5, 5, 2, 3};
  const int mn[2] = {0, 0};
  int rank[6];
  assert_int_equal(nas_pareto_ranks(pts, 6, 2, mn, rank), 3);
  const int want[6] = {0, 0, 0, 1, 2, 0};
  assert_memory_equal(rank, want, sizeof want);
  assert_true(nas_dominates(pts + 2, pts + 6, 2, mn));
  assert_false(nas_dominates(pts + 2, pts + 10, 2, mn)); /* equal points */
  const int mx[2] = {1, 1};                              /* maximising reverses the order */
  assert_int_equal(nas_pareto_ranks(pts, 6, 2, mx, rank), 3);
  const int want_mx[6] = {1, 2, 1, 1, 0, 2}; /* (5,5); then (1,5) (4,1) (3,4); then (2,3) x2 */
  assert_memory_equal(rank, want_mx, sizeof want_mx);
  /* crowding on the front {(1,5),(2,3),(4,1)}: the middle one gets
   * (4-1)/(4-1) + (5-1)/(5-1) = 2, the ends infinity */
  int idx[3] = {0, 1, 2};
  double dist[3];
  assert_int_equal(nas_pareto_crowding(pts, 2, idx, 3, dist), 0);
  assert_true(isinf(dist[0]) && isinf(dist[2]));
  assert_true(fabs(dist[1] - 2.0) < 1e-12);
  /* four points (0,3) (1,2) (3,1) (4,0): each inner one gets 3/4 + 2/3 */
  const double line[] = {0, 3, 1, 2, 3, 1, 4, 0};
  int id4[4] = {0, 1, 2, 3};
  double d4[4];
  assert_int_equal(nas_pareto_crowding(line, 2, id4, 4, d4), 0);
  assert_true(fabs(d4[1] - (3.0 / 4 + 2.0 / 3)) < 1e-12);
  assert_true(fabs(d4[2] - (3.0 / 4 + 2.0 / 3)) < 1e-12);
  assert_true(isinf(d4[0]) && isinf(d4[3]));
  /* two points: both boundaries */
  assert_int_equal(nas_pareto_crowding(line, 2, id4, 2, d4), 0);
  assert_true(isinf(d4[0]) && isinf(d4[1]));
}

static void add_done(nas_store *s, int64_t run, int k, double acc, double lat, double sram) {
  nas_err e = {0};
  char hash[17], arch[32];
  snprintf(hash, sizeof hash, "%016x", (unsigned)(k + 1000 * run));
  snprintf(arch, sizeof arch, "{\"k\":%d}", k);
  int64_t id;
  assert_int_equal(nas_store_candidate_add(s, run, arch, hash, 0, 0, &id, NULL, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_set_state(s, id, "training", NULL, &e), NAS_OK);
  nas_metrics m;
  nas_metrics_clear(&m);
  m.acc_int8_test = acc, m.latency_pred_ms = lat, m.peak_sram_bytes = sram;
  assert_int_equal(nas_store_candidate_set_metrics(s, id, &m, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_set_state(s, id, isnan(acc) ? "failed" : "done", NULL, &e), NAS_OK);
}

static void test_front_query(void **state) {
  (void)state;
  char p[128];
  snprintf(p, sizeof p, "/tmp/nas_test_pareto_%d.db", (int)getpid());
  remove(p);
  nas_store *s;
  nas_err e = {0};
  assert_int_equal(nas_store_open(p, &s, &e), NAS_OK);
  nas_run_info ri = {.strategy = "random", .space = "x", .dataset = "d", .target = "t", .budget = 5};
  int64_t r1, r2;
  assert_int_equal(nas_store_run_create(s, &ri, &r1, &e), NAS_OK);
  assert_int_equal(nas_store_run_create(s, &ri, &r2, &e), NAS_OK);
  add_done(s, r1, 1, 0.90, 20, 60000); /* id 1: front */
  add_done(s, r1, 2, 0.85, 10, 30000); /* id 2: front */
  add_done(s, r1, 3, 0.80, 15, 20000); /* id 3: dominated by 2 */
  add_done(s, r1, 4, 0.95, 40, 90000); /* id 4: front */
  add_done(s, r1, 5, NAN, 1, 1000);    /* id 5: failed, ignored */
  add_done(s, r2, 1, 0.99, 1, 1000);   /* id 6: another run */
  int64_t pid;                         /* id 7: proposed only: ignored */
  assert_int_equal(nas_store_candidate_add(s, r1, "{}", "77", 0, 0, &pid, NULL, &e), NAS_OK);
  nas_objectives o;
  assert_int_equal(nas_objectives_parse("acc_int8_test:max,latency_pred_ms:min", &o, &e), NAS_OK);
  nas_pareto_row *rows;
  int n;
  assert_int_equal(nas_pareto_front(s, &o, r1, NULL, &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 3);
  assert_int_equal(rows[0].id, 4); /* best accuracy first */
  assert_int_equal(rows[1].id, 1);
  assert_int_equal(rows[2].id, 2);
  assert_true(rows[2].v[0] == 0.85 && rows[2].v[1] == 10);
  free(rows);
  /* every run: id 6 dominates all */
  assert_int_equal(nas_pareto_front(s, &o, 0, NULL, &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(rows[0].id, 6);
  assert_int_equal(rows[0].run_id, r2);
  free(rows);
  /* WHERE filter: the SRAM budget removes 1 and 4; 2 still dominates 3 */
  assert_int_equal(nas_pareto_front(s, &o, r1, "peak_sram_bytes <= 50000", &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(rows[0].id, 2);
  free(rows);
  assert_int_equal(nas_pareto_front(s, &o, r1, "peak_sram_bytes < 25000", &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(rows[0].id, 3);
  free(rows);
  assert_int_equal(nas_pareto_front(s, &o, r1, "macs > 0", &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 0);
  assert_null(rows);
  /* refused filters */
  assert_int_not_equal(nas_pareto_front(s, &o, r1, "1; DELETE FROM runs", &rows, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "';'"));
  assert_int_not_equal(nas_pareto_front(s, &o, r1, "no_such_column > 1", &rows, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "no_such_column"));
  assert_int_not_equal(nas_pareto_front(s, &o, r1, "1) OR (1", &rows, &n, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "unbalanced"));
  assert_int_equal(nas_pareto_front(s, &o, r1, "reason IS NULL OR reason = ')'", &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 3);
  free(rows);
  /* a single objective: the best ones */
  assert_int_equal(nas_objectives_parse("peak_sram_bytes:min", &o, &e), NAS_OK);
  assert_int_equal(nas_pareto_front(s, &o, r1, NULL, &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(rows[0].id, 3);
  free(rows);
  nas_store_close(s);
  /* read-only handle answers too */
  assert_int_equal(nas_store_open_readonly(p, &s, &e), NAS_OK);
  assert_int_equal(nas_pareto_front(s, &o, r1, NULL, &rows, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  free(rows);
  nas_store_close(s);
  char x[160];
  remove(p);
  snprintf(x, sizeof x, "%s-wal", p);
  remove(x);
  snprintf(x, sizeof x, "%s-shm", p);
  remove(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_ranks_crowding),
      cmocka_unit_test(test_front_query),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
