/* tests/test_measure_emu.c: one emulated measurement in the store's terms (nas/measure_emu.h):
 * a lowered net measured on the stm32f446re has every operator with its arch layer and class
 * counts that add up, totals that bound the operators, and goes through the store with the
 * candidate's done transition; a model that does not fit the target's flash is a failed
 * measurement with the linker's reason, not an error. `nas measure` through the binary
 * ($NAS_BIN) on a .tflite and on a stored candidate's int8 graph: per-layer rows with the
 * tflm-cmsis-nn prediction beside the emulated figures, the same counts either way, and the
 * usage errors. Needs arm-none-eabi-gcc and Unicorn (skipped, naming what is missing,
 * otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sys/wait.h>

#include "deploy/lower_shape.h"
#include "export/export_tflite.h"
#include "nas/measure_emu.h"
#include "train/net.h"
#include "tests/test_util.h"

static const char *ARCH =
    "{\"input\":[12,10,1],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":3},"
    "{\"op\":\"dsconv\",\"out\":8,\"k\":3,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}";

static int have_emu(void) {
  char cc[4096];
  nas_err e = {0};
  if (nas_emu_find_cc(NULL, cc, sizeof cc, &e)) {
    test_skip_part("emulated measurement: %s", e.msg);
    return 0;
  }
  if (!nas_emu_have_unicorn()) {
    test_skip_part("emulated measurement: built without Unicorn (apt-get install libunicorn-dev, rebuild)");
    return 0;
  }
  return 1;
}

static void test_measure_and_store(void **state) {
  (void)state;
  if (!have_emu()) return;
  nas_net *net = NULL;
  nas_err e = {0};
  nas_g8_graph g;
  assert_int_equal(nas_net_build(ARCH, "m", 1, 1, &net, &e), NAS_OK);
  assert_int_equal(nas_lower_structure(net, NULL, &g, &e), NAS_OK);
  nas_target *t = NULL;
  assert_int_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_OK);
  int8_t in[120];
  for (int i = 0; i < 120; i++) in[i] = (int8_t)(i * 7 - 100);
  nas_emu_measure m;
  assert_int_equal(nas_emu_measure_graph(&g, t, in, NULL, &m, &e), NAS_OK);
  if (!m.m.ok) fail_msg("%s", m.m.reason);
  assert_string_equal(m.m.backend, "emulator");
  assert_string_equal(m.m.runtime, "nas-c");
  assert_string_equal(m.m.core, "cortex-m4");
  assert_int_equal(m.m.nops, g.nops);
  long long sum = 0;
  double cyc = 0;
  for (int i = 0; i < g.nops; i++) {
    const nas_op_meas *o = &m.ops[i];
    assert_int_equal(o->op, i);
    assert_true(o->insns > 0);
    assert_int_equal(o->ldst + o->mul + o->branch + o->other, o->insns);
    assert_true(o->layer >= 0 && o->layer < net->n_layers); /* lowered from an arch */
    sum += o->insns, cyc += o->cycles;
  }
  assert_true(sum < m.m.insns); /* start-up and copies are outside the operators */
  assert_float_equal(m.m.cycles, cyc, 1e-6 * cyc);
  assert_true(m.m.ms > 0 && m.m.seconds > 0);
  /* through the store with the done transition */
  char path[128];
  snprintf(path, sizeof path, "/tmp/nas_test_measure_emu_%d.db", (int)getpid());
  remove(path);
  nas_store *s = NULL;
  assert_int_equal(nas_store_open(path, &s, &e), NAS_OK);
  nas_run_info ri = {.strategy = "random", .space = "s", .dataset = "d", .target = t->id, .seed = 1, .budget = 1};
  int64_t run = 0, c = 0;
  assert_int_equal(nas_store_run_create(s, &ri, &run, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_add(s, run, ARCH, "00000000000000ff", 0, 0, &c, NULL, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_set_state(s, c, "training", NULL, &e), NAS_OK);
  nas_metrics mt;
  nas_metrics_clear(&mt);
  mt.latency_meas_ms = m.m.ms;
  assert_int_equal(nas_store_candidate_finish_measured(s, c, "done", NULL, &mt, NULL, 0, &m.m, &e), NAS_OK);
  nas_measurement_row row;
  int found = 0;
  assert_int_equal(nas_store_measurement_get(s, c, &row, &found, &e), NAS_OK);
  assert_true(found && row.ok && row.nops == g.nops);
  assert_int_equal(row.ops[0].insns, m.ops[0].insns);
  nas_measurement_row_free(&row);
  nas_store_close(s);
  char x[160];
  remove(path);
  snprintf(x, sizeof x, "%s-wal", path), remove(x);
  snprintf(x, sizeof x, "%s-shm", path), remove(x);
  nas_emu_measure_free(&m);
  nas_emu_measure_free(&m);
  /* a model that does not fit the part's flash: a failed measurement with the reason */
  t->flash_bytes = 2048;
  assert_int_equal(nas_emu_measure_graph(&g, t, in, NULL, &m, &e), NAS_OK);
  assert_false(m.m.ok);
  assert_non_null(strstr(m.m.reason, "emulator: "));
  assert_int_equal(m.m.nops, 0);
  print_message("failed measurement: %.160s\n", m.m.reason);
  nas_emu_measure_free(&m);
  nas_target_free(t);
  nas_g8_graph_free(&g);
  nas_net_free(net);
}

static int run_nas(const char *args, const char *out) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "NAS_CACHE_DIR= %s %s > %s 2>&1", getenv("NAS_BIN"), args, out);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state) {
  (void)state;
  if (!getenv("NAS_BIN")) test_skip("the CLI check: NAS_BIN not set (run through ctest)");
  if (!have_emu()) return;
  char dir[] = "/tmp/nas_measure_cli_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char tfl[256], db[256], out[256], args[1024];
  snprintf(tfl, sizeof tfl, "%s/m.tflite", dir);
  snprintf(db, sizeof db, "%s/s.db", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  nas_net *net = NULL;
  nas_err e = {0};
  nas_g8_graph g;
  assert_int_equal(nas_net_build(ARCH, "m", 1, 1, &net, &e), NAS_OK);
  assert_int_equal(nas_lower_structure(net, NULL, &g, &e), NAS_OK);
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(nas_tflite_write_mem(&g, "test", &buf, &len, &e), NAS_OK);
  FILE *f = fopen(tfl, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, len, f), len);
  fclose(f);
  /* a store holding it as a candidate's int8 weights */
  nas_store *s = NULL;
  assert_int_equal(nas_store_open(db, &s, &e), NAS_OK);
  nas_run_info ri = {.strategy = "random", .space = "s", .dataset = "d", .target = "stm32f446re", .seed = 1, .budget = 1};
  int64_t run = 0, c = 0;
  assert_int_equal(nas_store_run_create(s, &ri, &run, &e), NAS_OK);
  assert_int_equal(nas_store_candidate_add(s, run, ARCH, "00000000000000ee", 0, 0, &c, NULL, &e), NAS_OK);
  assert_int_equal(nas_store_weights_put(s, c, "int8", buf, len, &e), NAS_OK);
  nas_store_close(s);
  free(buf);
  /* the .tflite: per-layer rows, the tflm prediction beside them */
  snprintf(args, sizeof args, "measure --tflite %s --target stm32f446re --json", tfl);
  assert_int_equal(run_nas(args, out), 0);
  char *j = test_slurp(out);
  assert_non_null(strstr(j, "\"runtime\":\"nas-c\""));
  assert_non_null(strstr(j, "\"tflm_invoke_ms\":"));
  assert_non_null(strstr(j, "\"tflm_ms\":"));
  char first[4096];
  snprintf(first, sizeof first, "%s", strstr(j, "\"layers\""));
  /* the stored candidate: the same graph and input, so the same counts */
  snprintf(args, sizeof args, "measure --db %s --candidate %lld --target stm32f446re --json", db, (long long)c);
  assert_int_equal(run_nas(args, out), 0);
  j = test_slurp(out);
  assert_string_equal(strstr(j, "\"layers\""), first);
  snprintf(args, sizeof args, "measure --db %s --candidate %lld --target stm32f446re", db, (long long)c);
  assert_int_equal(run_nas(args, out), 0);
  j = test_slurp(out);
  assert_non_null(strstr(j, "tflm ms"));
  assert_non_null(strstr(j, "cand"));
  /* usage */
  snprintf(args, sizeof args, "measure --db %s --target stm32f446re", db);
  assert_int_equal(run_nas(args, out), 2);
  assert_non_null(strstr(test_slurp(out), "--db and --candidate N go together"));
  snprintf(args, sizeof args, "measure --tflite %s --checkpoint x --target stm32f446re", tfl);
  assert_int_equal(run_nas(args, out), 2);
  snprintf(args, sizeof args, "measure --tflite %s --softmax --target stm32f446re", tfl);
  assert_int_equal(run_nas(args, out), 2);
  assert_non_null(strstr(test_slurp(out), "int8 already"));
  snprintf(args, sizeof args, "measure --db %s --candidate 99 --target stm32f446re", db);
  assert_int_equal(run_nas(args, out), 1);
  nas_g8_graph_free(&g);
  nas_net_free(net);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_measure_and_store), cmocka_unit_test(test_cli)};
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
