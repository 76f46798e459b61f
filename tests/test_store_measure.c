/* tests/test_store_measure.c: a candidate's emulated measurement in the store (schema
 * version 3, results/store_measure.c): stored with its metrics, weights and the done state in
 * one transaction and read back field by field; a failed measurement keeps its reason and no
 * operators (the candidate is still done); a measurement that cannot be stored (no backend)
 * rolls back the whole transition; a candidate without one reads as not found. */
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

#include "results/store.h"
#include "tests/test_util.h"

static void rm_db(const char *p) {
  char x[300];
  remove(p);
  snprintf(x, sizeof x, "%s-wal", p);
  remove(x);
  snprintf(x, sizeof x, "%s-shm", p);
  remove(x);
}

static void test_measurement_round_trip(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "/tmp/nas_test_store_measure_%d.db", (int)getpid());
  rm_db(path);
  nas_store *s = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open(path, &s, &e), NAS_OK);
  int v = 0;
  assert_int_equal(nas_store_user_version(s, &v, &e), NAS_OK);
  assert_int_equal(v, NAS_STORE_VERSION); /* 3 added the measurements, 4 warm_start */
  assert_true(NAS_STORE_VERSION >= 3);
  nas_run_info ri = {.strategy = "random", .space = "s", .dataset = "d", .target = "stm32f446re",
                     .seed = 1, .budget = 3};
  int64_t run = 0, c1 = 0, c2 = 0;
  assert_int_equal(nas_store_run_create(s, &ri, &run, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_add(s, run, "{}", "0000000000000001", 0, 0, &c1, NULL, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_add(s, run, "{\"a\":1}", "0000000000000002", 0, 0, &c2, NULL, &e), NAS_OK);
  for (int k = 0; k < 2; k++)
    assert_int_equal(nas_store_candidate_set_state(s, k ? c2 : c1, "training", NULL, &e), NAS_OK);
  nas_metrics m;
  nas_metrics_clear(&m);
  m.acc_int8_test = 0.75, m.latency_meas_ms = 12.5;
  nas_op_meas ops[2] = {{.op = 0, .kind = "conv2d", .layer = 0, .insns = 1000, .ldst = 300,
                         .mul = 200, .branch = 100, .other = 400, .taken = 50, .cycles = 1500, .ms = 0.5},
                        {.op = 1, .kind = "reshape", .layer = -1, .insns = 40, .ldst = 20,
                         .branch = 5, .other = 15, .taken = 4, .cycles = 60, .ms = 0.02}};
  nas_measurement meas = {.backend = "emulator", .target = "stm32f446re", .core = "cortex-m4",
                          .runtime = "nas-c", .ok = 1, .insns = 1100, .cycles = 1560, .ms = 12.5,
                          .seconds = 0.8, .ops = ops, .nops = 2};
  const char blob[] = "w";
  nas_store_blob blobs[1] = {{"int8", blob, 1}};
  /* no backend: refused, and nothing of the transition is stored */
  meas.backend = NULL;
  assert_int_equal(nas_store_candidate_finish_measured(s, c1, "done", NULL, &m, blobs, 1, &meas, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "backend"));
  nas_candidate_row row;
  assert_int_equal(nas_store_candidate_get(s, c1, &row, &e), NAS_OK);
  assert_string_equal(row.state, "training");
  assert_true(isnan(row.m.latency_meas_ms));
  nas_store_candidate_row_free(&row);
  meas.backend = "emulator";
  assert_int_equal(nas_store_candidate_finish_measured(s, c1, "done", NULL, &m, blobs, 1, &meas, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_get(s, c1, &row, &e), NAS_OK);
  assert_string_equal(row.state, "done");
  assert_float_equal(row.m.latency_meas_ms, 12.5, 0);
  nas_store_candidate_row_free(&row);
  nas_measurement_row r;
  int found = 0;
  assert_int_equal(nas_store_measurement_get(s, c1, &r, &found, &e), NAS_OK);
  assert_int_equal(found, 1);
  assert_string_equal(r.backend, "emulator");
  assert_string_equal(r.target, "stm32f446re");
  assert_string_equal(r.core, "cortex-m4");
  assert_string_equal(r.runtime, "nas-c");
  assert_int_equal(r.ok, 1);
  assert_null(r.reason);
  assert_int_equal(r.insns, 1100);
  assert_float_equal(r.cycles, 1560, 0);
  assert_float_equal(r.ms, 12.5, 0);
  assert_float_equal(r.seconds, 0.8, 0);
  assert_int_equal(r.nops, 2);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(r.ops[i].op, ops[i].op);
    assert_string_equal(r.ops[i].kind, ops[i].kind);
    assert_int_equal(r.ops[i].layer, ops[i].layer);
    assert_int_equal(r.ops[i].insns, ops[i].insns);
    assert_int_equal(r.ops[i].ldst, ops[i].ldst);
    assert_int_equal(r.ops[i].mul, ops[i].mul);
    assert_int_equal(r.ops[i].branch, ops[i].branch);
    assert_int_equal(r.ops[i].other, ops[i].other);
    assert_int_equal(r.ops[i].taken, ops[i].taken);
    assert_float_equal(r.ops[i].cycles, ops[i].cycles, 0);
    assert_float_equal(r.ops[i].ms, ops[i].ms, 0);
  }
  nas_measurement_row_free(&r);
  nas_measurement_row_free(&r);
  /* a failed measurement: the reason, no totals, no operators; it is still done */
  nas_measurement bad = {.backend = "emulator", .target = "stm32f446re", .core = "cortex-m4",
                         .runtime = "nas-c", .ok = 0, .reason = "emulation: fault at 0x8000100",
                         .seconds = 0.1};
  nas_metrics_clear(&m);
  m.acc_int8_test = 0.5;
  assert_int_equal(nas_store_candidate_finish_measured(s, c2, "done", NULL, &m, NULL, 0, &bad, &e), NAS_OK);
  assert_int_equal(nas_store_measurement_get(s, c2, &r, &found, &e), NAS_OK);
  assert_int_equal(found, 1);
  assert_int_equal(r.ok, 0);
  assert_string_equal(r.reason, "emulation: fault at 0x8000100");
  assert_int_equal(r.nops, 0);
  nas_measurement_row_free(&r);
  /* done is final: the measurement stays with it; a read-only open reads it */
  assert_int_equal(nas_store_candidate_set_state(s, c1, "failed", "x", &e), NAS_EINVAL);
  nas_store_close(s);
  s = NULL;
  assert_int_equal(nas_store_open_readonly(path, &s, &e), NAS_OK);
  assert_int_equal(nas_store_measurement_get(s, c2, &r, &found, &e), NAS_OK);
  assert_int_equal(found, 1);
  nas_measurement_row_free(&r);
  nas_store_close(s);
  rm_db(path);
}

static void test_no_measurement(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "/tmp/nas_test_store_measure_none_%d.db", (int)getpid());
  rm_db(path);
  nas_store *s = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open(path, &s, &e), NAS_OK);
  nas_run_info ri = {.strategy = "random", .space = "s", .dataset = "d", .target = "t", .seed = 1, .budget = 1};
  int64_t run = 0, c = 0;
  assert_int_equal(nas_store_run_create(s, &ri, &run, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_add(s, run, "{}", "00000000000000aa", 0, 0, &c, NULL, &e), NAS_OK);
  nas_measurement_row r;
  int found = 1;
  assert_int_equal(nas_store_measurement_get(s, c, &r, &found, &e), NAS_OK);
  assert_int_equal(found, 0);
  assert_null(r.backend);
  nas_store_close(s);
  rm_db(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_measurement_round_trip),
                                     cmocka_unit_test(test_no_measurement)};
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
