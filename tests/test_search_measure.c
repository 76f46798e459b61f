/* tests/test_search_measure.c: `nas search --measure emulator` through the binary ($NAS_BIN)
 * on Fashion-MNIST (/usr/share/datasets/fashion-mnist): every done candidate has
 * latency_meas_ms and an ok measurement with its operators' instruction counts (their arch
 * layers set), stored with its metrics; `nas pareto --objectives
 * acc_int8_test:max,latency_meas_ms:min` answers; a target whose flash cannot hold the
 * emulated firmware gives done candidates with failed measurements (the linker's reason) and
 * the search goes on; --runtime nas-c is stored with the run and prices the candidates with
 * the C export's model. Skipped (with the reason) without the dataset, the toolchain or
 * Unicorn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "latency/emulator.h"
#include "tests/test_util.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static char dir[] = "/tmp/nas_search_measure_XXXXXX";

static int ready(void) {
  char cc[4096];
  nas_err e = {0};
  if (!getenv("NAS_BIN")) return test_skip_part("measured search: NAS_BIN not set (run through ctest)"), 0;
  if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK))
    return test_skip_part("measured search: %s not present (Debian's dataset-fashion-mnist)", FMNIST_DIR), 0;
  if (nas_emu_find_cc(NULL, cc, sizeof cc, &e)) return test_skip_part("measured search: %s", e.msg), 0;
  if (!nas_emu_have_unicorn()) return test_skip_part("measured search: built without Unicorn"), 0;
  return 1;
}

static int run_nas(const char *args) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cd %s && OMP_NUM_THREADS=2 NAS_CACHE_DIR=%s %s %s > out.txt 2> err.txt", dir,
           dir, getenv("NAS_BIN"), args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *file) {
  static char buf[1 << 16];
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

/* One integer from a query on the store. */
static long long q(const char *db, const char *sql) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, db);
  sqlite3 *h;
  assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(h));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

static const char *COMMON =
    "--space vision-mbnet --strategy random --dataset fashion-mnist --budget 3 --epochs 1 "
    "--train-limit 256 --eval-limit 100 --calib-samples 32 --seed 5";

static void test_measured_search(void **state) {
  (void)state;
  if (!ready()) return;
  char args[2048];
  snprintf(args, sizeof args, "search %s --target stm32f446re --db m.db --measure emulator", COMMON);
  if (run_nas(args)) fail_msg("search failed: %s", slurp("err.txt"));
  const long long done = q("m.db", "SELECT count(*) FROM candidates WHERE state = 'done'");
  assert_true(done >= 1);
  assert_int_equal(q("m.db", "SELECT count(*) FROM candidates WHERE state = 'done' AND latency_meas_ms > 0"), done);
  assert_int_equal(q("m.db", "SELECT count(*) FROM measurements m JOIN candidates c ON c.id = m.candidate_id "
                             "WHERE c.state = 'done' AND m.status = 'ok' AND m.ms = c.latency_meas_ms "
                             "AND m.runtime = 'nas-c' AND m.core = 'cortex-m4'"), done);
  assert_int_equal(q("m.db", "SELECT count(*) FROM candidates c WHERE c.state = 'done' AND NOT EXISTS "
                             "(SELECT 1 FROM op_measurements o WHERE o.candidate_id = c.id)"), 0);
  assert_int_equal(q("m.db", "SELECT count(*) FROM op_measurements WHERE insns <= 0 OR "
                             "ldst + mul + branch + other != insns"), 0);
  assert_true(q("m.db", "SELECT count(*) FROM op_measurements WHERE layer >= 0") > 0);
  assert_true(q("m.db", "SELECT count(*) FROM events WHERE kind = 'timing' AND payload LIKE '%measure_s%'") >= done);
  assert_int_equal(run_nas("pareto --db m.db --objectives acc_int8_test:max,latency_meas_ms:min"), 0);
  assert_non_null(strstr(slurp("out.txt"), "latency_meas_ms"));
  /* the measurement is stored with the run's configuration */
  assert_int_equal(q("m.db", "SELECT count(*) FROM runs WHERE config_json LIKE '%\"measure\":\"emulator\"%'"), 1);
}

/* A part too small for the emulated firmware: every measurement fails with the linker's
 * reason, the candidates are done and the search goes on; priced for nas-c. */
static void test_failed_measurements(void **state) {
  (void)state;
  if (!ready()) return;
  char src[1024], args[4096];
  snprintf(src, sizeof src, "%s/latency/targets/stm32f446re.json",
           getenv("NAS_SOURCE_DIR") ? getenv("NAS_SOURCE_DIR") : NAS_SOURCE_DIR);
  snprintf(args, sizeof args,
           "sed -e 's/\"id\": \"stm32f446re\"/\"id\": \"tiny\"/' -e 's/\"flash_bytes\": 524288/\"flash_bytes\": 4096/' "
           "%s > %s/tiny.json", src, dir);
  assert_int_equal(system(args), 0);
  snprintf(args, sizeof args, "search %s --target-file tiny.json --db f.db --measure emulator --runtime nas-c", COMMON);
  if (run_nas(args)) fail_msg("search failed: %s", slurp("err.txt"));
  const long long done = q("f.db", "SELECT count(*) FROM candidates WHERE state = 'done'");
  assert_true(done >= 1);
  assert_int_equal(q("f.db", "SELECT count(*) FROM candidates WHERE latency_meas_ms IS NOT NULL"), 0);
  assert_int_equal(q("f.db", "SELECT count(*) FROM measurements WHERE status = 'failed' AND reason LIKE "
                             "'%overflowed%'"), done);
  assert_int_equal(q("f.db", "SELECT count(*) FROM op_measurements"), 0);
  assert_int_equal(q("f.db", "SELECT count(*) FROM runs WHERE config_json LIKE '%\"runtime\":\"nas-c\"%'"), 1);
}

static void test_usage(void **state) {
  (void)state;
  if (!getenv("NAS_BIN")) test_skip("usage check: NAS_BIN not set (run through ctest)");
  char args[2048];
  snprintf(args, sizeof args, "search %s --target stm32f446re --db u.db --measure board", COMMON);
  assert_int_equal(run_nas(args), 2);
  assert_non_null(strstr(slurp("err.txt"), "not a measurement back end"));
  snprintf(args, sizeof args, "search %s --target stm32f446re --db u.db --runtime tflm", COMMON);
  assert_int_equal(run_nas(args), 2);
  assert_non_null(strstr(slurp("err.txt"), "--runtime"));
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_measured_search),
                                     cmocka_unit_test(test_failed_measurements),
                                     cmocka_unit_test(test_usage)};
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
  return test_exit(rc);
}
