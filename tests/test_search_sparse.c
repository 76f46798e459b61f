/* The sparse strategy (nas/strategies/sparse.c) on a tiny generated IDX set and space:
 * pruning decisions become the arch's prune object, morphisms of the front are warm-started
 * from their parent's weights (recorded in the store, fine-tuned for --finetune-epochs), the
 * stored costs are the trained int8 graph's; the same seed gives the same run; the proposals
 * of one --batch-proposals batch do not depend on each other's results; and, through the real
 * binary, a run killed with SIGKILL and resumed ends with the same store as an uninterrupted
 * one. */
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

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "nas/artifacts.h"
#include "nas/run.h"
#include "nas/strategies/strategy.h"
#include "results/store.h"
#include "tests/test_proc.h"
#include "tests/test_util.h"

static char dir[256], data_spec[300], space_path[300];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-sparse-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char p[512];
  snprintf(p, sizeof p, "mkdir -p %s/data", dir);
  if (system(p) != 0) return -1;
  snprintf(p, sizeof p, "%s/data", dir);
  test_write_bar_idx(p, "train", 600, 1);
  test_write_bar_idx(p, "t10k", 200, 2);
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
  return test_rm_rf(dir);
}

static void db_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  unlink(buf);
}

/* A sparse search with configuration keys of nas/run.h and the strategy. */
static int run_sparse(const char *db, int budget, int batch, const nas_search_hooks *h,
                      nas_search_summary *s, nas_err *e) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "space", space_path);
  cJSON_AddStringToObject(j, "dataset", data_spec);
  cJSON_AddStringToObject(j, "target", "stm32l4r5zi");
  cJSON_AddStringToObject(j, "objectives", "acc_int8_test:max,flash_bytes:min,peak_sram_bytes:min");
  cJSON_AddNumberToObject(j, "budget", budget);
  cJSON_AddNumberToObject(j, "epochs", 2);
  cJSON_AddNumberToObject(j, "batch", 16);
  cJSON_AddNumberToObject(j, "seed", 3);
  cJSON_AddNumberToObject(j, "init", 3);
  cJSON_AddNumberToObject(j, "pool", 40);
  cJSON_AddNumberToObject(j, "morphs", 6);
  cJSON_AddNumberToObject(j, "finetune_epochs", 1);
  cJSON_AddNumberToObject(j, "batch_proposals", batch);
  int rc = nas_search_run(db, "sparse", j, h, s, e);
  cJSON_Delete(j);
  return rc;
}

/* "hash state acc flash sram parent warm" per candidate of run 1, in id order. */
static char *dump(const char *db) {
  nas_store *st = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open_readonly(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, 1, NULL, &ids, &n, &e), NAS_OK);
  size_t cap = (size_t)n * 200 + 1, len = 0;
  char *out = calloc(cap, 1);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    len += (size_t)snprintf(out + len, cap - len, "%s %s %.17g %.17g %.17g %lld %d\n",
                            r.arch_hash, r.state, r.m.acc_int8_test, r.m.flash_bytes,
                            r.m.peak_sram_bytes, (long long)r.parent_id, r.warm_start);
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_store_close(st);
  return out;
}

static void test_run(void **state) {
  (void)state;
  char a[400], b[400];
  db_path(a, sizeof a, "a.db");
  db_path(b, sizeof b, "b.db");
  nas_search_summary s1, s2;
  nas_err e = {0};
  assert_int_equal(run_sparse(a, 10, 1, NULL, &s1, &e), NAS_OK);
  assert_int_equal(s1.candidates, 10);
  nas_store *st = NULL;
  assert_int_equal(nas_store_open_readonly(a, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0, pruned = 0, warm = 0;
  assert_int_equal(nas_store_candidate_ids(st, 1, NULL, &ids, &n, &e), NAS_OK);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    pruned += strstr(r.arch_json, "\"prune\"") != NULL;
    if (r.warm_start) {
      warm++;
      nas_candidate_row p;
      assert_int_equal(nas_store_candidate_get(st, r.parent_id, &p, &e), NAS_OK);
      assert_string_equal(p.state, "done"); /* a morphism of a trained front member */
      assert_true(p.id < r.id);
      nas_store_candidate_row_free(&p);
      if (!strcmp(r.state, "done")) { /* fine-tuned for --finetune-epochs, not --epochs */
        void *blob = NULL;
        size_t len = 0;
        assert_int_equal(nas_store_weights_get(st, r.id, "float", &blob, &len, &e), NAS_OK);
        nas_cand_float f;
        assert_int_equal(nas_cand_unpack_float(blob, len, "c", &f, &e), NAS_OK);
        cJSON *meta = cJSON_Parse(f.ck.meta_json);
        assert_non_null(meta);
        assert_int_equal((int)cJSON_GetObjectItem(meta, "epochs")->valuedouble, 1);
        cJSON_Delete(meta);
        nas_cand_float_free(&f);
        free(blob);
      }
    }
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_store_close(st);
  assert_true(pruned > 0);
  assert_true(warm > 0);
  /* the same seed: the same candidates and results */
  assert_int_equal(run_sparse(b, 10, 1, NULL, &s2, &e), NAS_OK);
  char *da = dump(a), *dbb = dump(b);
  assert_string_equal(da, dbb);
  free(da), free(dbb);
}

/* With --batch-proposals 3 the proposals of batch 1 (candidates 3, 4, 5) use the results of
 * batch 0 only: a run whose candidate 3 scored differently and whose candidates 4 and 5 are
 * proposed again on resume proposes the same 4 and 5. */
static void test_batch_independent(void **state) {
  (void)state;
  char a[400], b[400];
  db_path(a, sizeof a, "qa.db");
  db_path(b, sizeof b, "qb.db");
  nas_search_summary s;
  nas_err e = {0};
  assert_int_equal(run_sparse(a, 6, 3, NULL, &s, &e), NAS_OK);
  char cmd[900];
  snprintf(cmd, sizeof cmd, "cp %s %s", a, b);
  assert_int_equal(system(cmd), 0);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(b, &db), SQLITE_OK);
  const char *sql =
      "UPDATE candidates SET acc_int8_test = 1 - coalesce(acc_int8_test, 0.5),"
      " flash_bytes = 3 * coalesce(flash_bytes, 1000) WHERE id = 4;"
      "DELETE FROM weights WHERE candidate_id IN (5, 6);"
      "DELETE FROM layer_costs WHERE candidate_id IN (5, 6);"
      "DELETE FROM events WHERE candidate_id IN (5, 6);"
      "DELETE FROM candidates WHERE id IN (5, 6);"
      "UPDATE runs SET status = 'interrupted' WHERE id = 1;";
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(nas_search_resume(b, 1, NULL, &s, &e), NAS_OK);
  char *da = dump(a), *dbb = dump(b);
  /* compare the hashes of candidates 5 and 6 (lines 5 and 6) */
  char ha[2][17], hb[2][17];
  const char *pa = da, *pb = dbb;
  for (int line = 0; line < 6; line++) {
    if (line >= 4) {
      memcpy(ha[line - 4], pa, 16), ha[line - 4][16] = 0;
      memcpy(hb[line - 4], pb, 16), hb[line - 4][16] = 0;
    }
    pa = strchr(pa, '\n') + 1, pb = strchr(pb, '\n') + 1;
  }
  assert_string_equal(ha[0], hb[0]);
  assert_string_equal(ha[1], hb[1]);
  free(da), free(dbb);
}

/* ---- through the real binary: SIGKILL mid-training, nas resume ---------------------------- */

static const char *nas_bin(void) {
  const char *bin = getenv("NAS_BIN");
  if (!bin) return NULL;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s search --help >/dev/null 2>&1", bin);
  int st = system(cmd);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? bin : NULL;
}

static void test_kill_and_resume(void **state) {
  (void)state;
  const char *bin = nas_bin();
  if (!bin) test_skip("NAS_BIN does not name a runnable nas binary (ctest sets it)");
  char u[400], k[400];
  db_path(u, sizeof u, "ku.db");
  db_path(k, sizeof k, "kk.db");
  char *args[] = {(char *)bin, "search", "--space", space_path, "--strategy", "sparse",
                  "--dataset", data_spec, "--target", "stm32l4r5zi", "--objectives",
                  "acc_int8_test:max,flash_bytes:min,peak_sram_bytes:min", "--budget", "9",
                  "--epochs", "2", "--batch", "16", "--seed", "7", "--init", "3", "--pool", "40",
                  "--morphs", "6", "--finetune-epochs", "1", "--db", u, NULL};
  int st;
  pid_t p = test_spawn(bin, args);
  waitpid(p, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* killed while a candidate of the surrogate phase (after the 3 uniform ones) trains: frozen
   * with SIGSTOP first and killed only if it is still mid-training (as tests/test_search.c) */
  args[29] = k;
  p = test_spawn(bin, args);
  int due = 0;
  for (time_t t0 = time(NULL); !due && time(NULL) - t0 < 900;) {
    if (test_count_where(k, "state IN ('done','rejected','failed')") >= 5 &&
        test_count_where(k, "state = 'training'") > 0) {
      assert_int_equal(kill(p, SIGSTOP), 0);
      assert_int_equal(waitpid(p, &st, WUNTRACED), p);
      if (!WIFSTOPPED(st)) fail_msg("the search ended (status %d) before the kill", st);
      if (test_count_where(k, "state = 'training'") > 0) due = 1;
      else assert_int_equal(kill(p, SIGCONT), 0);
    }
    if (!due && waitpid(p, &st, WNOHANG) == p)
      fail_msg("the search ended (status %d) before the kill due after 5 final candidates", st);
    test_sleep_ms(2);
  }
  if (!due) fail_msg("no candidate of the surrogate phase was training within 900 s");
  assert_int_equal(kill(p, SIGKILL), 0); /* a stopped process dies by SIGKILL at once */
  assert_int_equal(waitpid(p, &st, 0), p);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  assert_true(test_count_where(k, "state = 'training'") > 0);
  char *rargs[] = {(char *)bin, "resume", "--db", k, NULL};
  p = test_spawn(bin, rargs);
  waitpid(p, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(test_count_where(k, "state NOT IN ('done','rejected','failed')"), 0);
  char *du = dump(u), *dk = dump(k);
  assert_string_equal(du, dk);
  free(du), free(dk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_run),
      cmocka_unit_test(test_batch_independent),
      cmocka_unit_test(test_kill_and_resume),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
