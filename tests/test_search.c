/* Search loop tests (nas/search.h) on a tiny generated IDX set and a tiny space: constraints
 * reject without training, states and metrics in the store, same seed -> same candidates,
 * and, through the real binary ($NAS_BIN, skipped until `nas search` is registered), a
 * SIGKILL + `nas resume` run compared with an uninterrupted one and a concurrent reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/rng.h"
#include "tests/test_util.h"
#include "nas/search.h"
#include "results/store.h"

static char dir[256], data_spec[300], space_path[300];

/* The easy 3-class IDX set of test_util.h, in DIR/data. */
static void write_idx(const char *prefix, int n, uint64_t seed) {
  char d[300];
  snprintf(d, sizeof d, "%s/data", dir);
  test_write_bar_idx(d, prefix, n, seed);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-search-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char p[512];
  snprintf(p, sizeof p, "mkdir -p %s/data", dir);
  if (system(p) != 0) return -1;
  write_idx("train", 600, 1);
  write_idx("t10k", 200, 2);
  snprintf(data_spec, sizeof data_spec, "idx:%s/data", dir);
  snprintf(space_path, sizeof space_path, "%s/space.json", dir);
  FILE *f = fopen(space_path, "w");
  fputs("{\"name\":\"tiny\",\"input\":[10,10,1],\"classes\":3,\"layers\":["
        "{\"op\":\"conv\",\"out\":{\"choice\":[4,8,16]},\"k\":{\"choice\":[3,5]}},"
        "{\"op\":\"dsconv\",\"out\":{\"choice\":[8,16,32]},\"stride\":2,"
        "\"repeat\":{\"choice\":[1,2]}},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
        f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void base_cfg(nas_search_cfg *c, const char *strategy) {
  nas_search_cfg_default(c);
  c->space = space_path, c->strategy = strategy, c->dataset = data_spec;
  c->target = "stm32f446re";
  c->budget = 6, c->epochs = 1, c->batch = 16, c->seed = 5;
  c->population = 3, c->sample_size = 2;
}

static void db_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  unlink(buf);
}

/* All candidates of a run: "hash state acc_int8_test acc_int8_val latency" lines. */
static char *dump(const char *db, int64_t run) {
  nas_store *st = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, run, NULL, &ids, &n, &e), NAS_OK);
  size_t cap = (size_t)n * 160 + 1, len = 0;
  char *out = calloc(cap, 1);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    len += (size_t)snprintf(out + len, cap - len, "%s %s %.17g %.17g %.17g %lld\n", r.arch_hash,
                            r.state, r.m.acc_int8_test, r.m.acc_int8_val, r.m.latency_pred_ms,
                            (long long)r.parent_id);
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_store_close(st);
  return out;
}

static void test_parse_helpers(void **state) {
  (void)state;
  long long v;
  assert_int_equal(nas_parse_size("64K", &v), 0);
  assert_int_equal(v, 65536);
  assert_int_equal(nas_parse_size("1M", &v), 0);
  assert_int_equal(v, 1048576);
  assert_int_equal(nas_parse_size("300", &v), 0);
  assert_int_equal(v, 300);
  assert_int_not_equal(nas_parse_size("12Q", &v), 0);
  char out[256];
  nas_err e = {0};
  assert_int_equal(nas_objectives_expand("acc_int8:max, latency_ms:min,sram:min", out, sizeof out, &e), NAS_OK);
  assert_string_equal(out, "acc_int8_test:max,latency_pred_ms:min,peak_sram_bytes:min");
  assert_int_not_equal(nas_objectives_expand("acc_int8", out, sizeof out, &e), NAS_OK);
}

static void test_invalid_config_creates_no_run(void **state) {
  (void)state;
  char db[400];
  db_path(db, sizeof db, "bad.db");
  nas_search_cfg c;
  nas_search_summary s;
  nas_err e = {0};
  base_cfg(&c, "random");
  c.target = "no-such-target";
  assert_int_not_equal(nas_search_run(db, &c, NULL, &s, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "no-such-target"));
  base_cfg(&c, "annealing");
  assert_int_not_equal(nas_search_run(db, &c, NULL, &s, &e), NAS_OK);
  base_cfg(&c, "random");
  c.objectives = "bogus:max";
  assert_int_not_equal(nas_search_run(db, &c, NULL, &s, &e), NAS_OK);
  base_cfg(&c, "random");
  c.space = "/nonexistent/space.json";
  assert_int_not_equal(nas_search_run(db, &c, NULL, &s, &e), NAS_OK);
  assert_int_not_equal(access(db, F_OK), 0); /* nothing was created */
}

static int trained_while_rejected;
static void watch(const nas_search_progress *p, void *user) {
  (void)user;
  if (!strcmp(p->state, "training") && p->peak_sram > 5500) trained_while_rejected++;
}

static void test_constraints_and_states(void **state) {
  (void)state;
  char db[400];
  db_path(db, sizeof db, "c.db");
  nas_search_cfg c;
  base_cfg(&c, "random");
  c.max_sram = 5500;
  nas_search_summary s;
  nas_err e = {0};
  nas_search_hooks h = {watch, NULL, NULL};
  assert_int_equal(nas_search_run(db, &c, &h, &s, &e), NAS_OK);
  assert_int_equal(s.candidates, 6);
  assert_int_equal(s.done + s.rejected + s.failed, 6);
  assert_int_equal(trained_while_rejected, 0);
  nas_store *st = NULL;
  assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, s.run_id, NULL, &ids, &n, &e), NAS_OK);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    assert_true(isfinite(r.m.peak_sram_bytes));
    if (r.m.peak_sram_bytes > 5500) {
      assert_string_equal(r.state, "rejected");
      assert_non_null(r.reason);
      assert_non_null(strstr(r.reason, "SRAM"));
      assert_true(isnan(r.m.train_seconds)); /* never trained */
    } else {
      assert_string_equal(r.state, "done");
      assert_true(r.m.acc_int8_test >= 0 && r.m.acc_int8_test <= 1);
      assert_true(isfinite(r.m.acc_float_val));
    }
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_run_row rr;
  memset(&rr, 0, sizeof rr);
  assert_int_equal(nas_store_run_get(st, s.run_id, &rr, &e), NAS_OK);
  assert_string_equal(rr.status, "done");
  nas_store_run_row_free(&rr);
  nas_store_close(st);
}

static void test_same_seed_same_run(void **state) {
  (void)state;
  const char *strategies[] = {"random", "evolution"};
  for (int k = 0; k < 2; k++) {
    char a[400], b[400];
    db_path(a, sizeof a, "a.db");
    db_path(b, sizeof b, "b.db");
    nas_search_cfg c;
    base_cfg(&c, strategies[k]);
    c.budget = 7;
    nas_search_summary s1, s2;
    nas_err e = {0};
    assert_int_equal(nas_search_run(a, &c, NULL, &s1, &e), NAS_OK);
    assert_int_equal(nas_search_run(b, &c, NULL, &s2, &e), NAS_OK);
    char *da = dump(a, s1.run_id), *dbb = dump(b, s2.run_id);
    assert_string_equal(da, dbb);
    free(da), free(dbb);
  }
}

/* Stop requested from the progress callback after the 3rd candidate is done; resume ends
 * with the same candidates as an uninterrupted run. */
static volatile sig_atomic_t stop_flag;
static void stop_after3(const nas_search_progress *p, void *user) {
  (void)user;
  if (!strcmp(p->state, "done") && p->k >= 3) stop_flag = 1;
}

static void test_stop_and_resume_in_process(void **state) {
  (void)state;
  char a[400], b[400];
  db_path(a, sizeof a, "u.db");
  db_path(b, sizeof b, "i.db");
  nas_search_cfg c;
  base_cfg(&c, "evolution");
  c.budget = 8;
  nas_search_summary s1, s2;
  nas_err e = {0};
  assert_int_equal(nas_search_run(a, &c, NULL, &s1, &e), NAS_OK);
  stop_flag = 0;
  nas_search_hooks h = {stop_after3, NULL, &stop_flag};
  assert_int_equal(nas_search_run(b, &c, &h, &s2, &e), NAS_OK);
  assert_int_equal(s2.interrupted, 1);
  assert_true(s2.candidates < 8);
  stop_flag = 0;
  nas_search_hooks h2 = {NULL, NULL, &stop_flag};
  assert_int_equal(nas_search_resume(b, 0, &h2, &s2, &e), NAS_OK);
  assert_int_equal(s2.interrupted, 0);
  char *da = dump(a, s1.run_id), *dbb = dump(b, s2.run_id);
  assert_string_equal(da, dbb);
  free(da), free(dbb);
  /* a done run is not resumed again */
  assert_int_not_equal(nas_search_resume(b, s2.run_id, NULL, &s2, &e), NAS_OK);
}

/* ---- through the real binary ------------------------------------------------------------- */

static const char *nas_bin(void) {
  const char *bin = getenv("NAS_BIN");
  if (!bin) return NULL;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s search --help >/dev/null 2>&1", bin);
  int st = system(cmd);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? bin : NULL;
}

static pid_t spawn(const char *bin, char *const *args) {
  pid_t p = fork();
  if (p == 0) {
    FILE *f = freopen("/dev/null", "w", stdout);
    (void)f;
    execv(bin, args);
    _exit(127);
  }
  return p;
}

static int count_finished(const char *db) {
  sqlite3 *s = NULL;
  int n = -1;
  if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(s, 2000);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s, "SELECT count(*) FROM candidates WHERE state IN ('done','rejected','failed')",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
      n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
  }
  sqlite3_close(s);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void test_kill_and_resume_binary(void **state) {
  (void)state;
  const char *bin = nas_bin();
  if (!bin) skip();
  char u[400], budget[] = "8", seed[] = "9";
  db_path(u, sizeof u, "bu.db");
  for (int at = 1; at <= 5; at += 2) {
    char k[400];
    db_path(k, sizeof k, "bk.db");
    char *args_u[] = {(char *)bin, "search", "--space", space_path, "--strategy", "evolution",
                      "--population", "3", "--sample-size", "2", "--dataset", data_spec,
                      "--target", "stm32f446re", "--budget", budget, "--epochs", "2",
                      "--batch", "16", "--seed", seed, "--db", u, NULL};
    int st;
    if (at == 1) {
      pid_t p = spawn(bin, args_u);
      waitpid(p, &st, 0);
      assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    char *args_k[sizeof args_u / sizeof args_u[0]];
    memcpy(args_k, args_u, sizeof args_u);
    args_k[23] = k;
    pid_t p = spawn(bin, args_k);
    /* a reader while the search writes: never fails */
    int reads = 0;
    for (int t = 0; t < 20000; t++) {
      int n = count_finished(k);
      if (n >= at) break;
      if (n >= 0 && reads < 3) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "%s pareto --db %s >/dev/null 2>&1", bin, k);
        int rs = system(cmd);
        assert_true(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
        reads++;
      }
      if (waitpid(p, &st, WNOHANG) == p) {
        p = 0;
        break;
      }
      sleep_ms(1);
    }
    if (p) {
      kill(p, SIGKILL);
      waitpid(p, &st, 0);
    }
    char *args_r[] = {(char *)bin, "resume", "--db", k, NULL};
    p = spawn(bin, args_r);
    waitpid(p, &st, 0);
    /* resuming a run that had already finished is refused; otherwise it must succeed */
    assert_true(WIFEXITED(st));
    char *du = dump(u, 1), *dk = dump(k, 1);
    assert_string_equal(du, dk);
    free(du), free(dk);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_helpers),
      cmocka_unit_test(test_invalid_config_creates_no_run),
      cmocka_unit_test(test_constraints_and_states),
      cmocka_unit_test(test_same_seed_same_run),
      cmocka_unit_test(test_stop_and_resume_in_process),
      cmocka_unit_test(test_kill_and_resume_binary),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
