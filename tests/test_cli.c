/* CLI end-to-end tests: usage errors exit 2 with one line on stderr, runtime errors exit 1
 * with one line, help exits 0, and a real train -> save -> eval round trip on an IDX dataset
 * the test writes. Runs the `nas` binary named by $NAS_BIN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"
#include "nas/strategies/strategy.h"
#include "results/store.h"
#include "tests/test_util.h"

static char dir[256];
static char out_path[300], err_path[300];

/* Runs `nas ARGS`, capturing stdout/stderr into files; returns the exit code. */
static int run(const char *args) { return test_run_nas(dir, args, out_path, err_path); }

/* stderr must be exactly one line starting with "nas: error: " and containing frag. */
static void expect_one_line_error(const char *frag) {
  char *e = test_slurp(err_path);
  if (strncmp(e, "nas: error: ", 12) != 0) fail_msg("stderr does not start with 'nas: error: ': %s", e);
  char *nl = strchr(e, '\n');
  if (!nl || nl[1] != 0) fail_msg("stderr is not exactly one line: %s", e);
  if (frag && !strstr(e, frag)) fail_msg("stderr lacks '%s': %s", frag, e);
}

/* The easy 3-class IDX set of test_util.h, in DIR/data. */
static void write_idx(const char *prefix, int n, uint64_t seed) {
  char d[300];
  snprintf(d, sizeof d, "%s/data", dir);
  test_write_bar_idx(d, prefix, n, seed);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-cli-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
  snprintf(err_path, sizeof err_path, "%s/err.txt", dir);
  char p[512];
  snprintf(p, sizeof p, "mkdir -p %s/data", dir);
  if (system(p) != 0) return -1;
  write_idx("train", 1200, 1);
  write_idx("t10k", 300, 2);
  snprintf(p, sizeof p, "%s/arch.json", dir);
  FILE *f = fopen(p, "w");
  fputs("{\"input\":[10,10,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":8},"
        "{\"op\":\"dsconv\",\"out\":16,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
        f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return test_rm_rf(dir);
}

/* A bad label in the test files: the error names that file, the label and the sample (it
 * said "training set has 201 classes, the architecture has 3"). */
static void test_bad_label(void **state) {
  (void)state;
  char d[400], p[500];
  snprintf(d, sizeof d, "%s/badlbl", dir);
  assert_int_equal(mkdir(d, 0777), 0);
  test_write_bar_idx(d, "train", 300, 1);
  test_write_bar_idx(d, "t10k", 50, 2);
  snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", d);
  FILE *f = fopen(p, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, 8 + 5, SEEK_SET), 0); /* sample 5, after the 8-byte header */
  assert_int_equal(fputc(200, f), 200);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(run("train --arch arch.json --dataset idx:badlbl --epochs 1 --threads 1"), 1);
  expect_one_line_error("badlbl/t10k-labels-idx1-ubyte: label 200 of sample 5");
  expect_one_line_error("201 classes");
}

/* Training too short to learn (1 step: 60 samples, the default batch of 128, 1 epoch) ends
 * with a note on stderr saying so and what to change; it used to give chance accuracy with
 * no hint. */
static void test_brief_training(void **state) {
  (void)state;
  assert_int_equal(run("train --arch arch.json --dataset idx:data --epochs 1 --train-limit 60 "
                       "--threads 1"), 0);
  const char *err = test_slurp(err_path);
  if (!strstr(err, "nas: note: val_acc ") || !strstr(err, "after only 1 optimiser steps (60 "
                                                           "training samples / batch 128 x 1 epochs)"))
    fail_msg("no note on brief training: %s", err);
}

static void test_usage_errors(void **state) {
  (void)state;
  assert_int_equal(run(""), 2);
  assert_int_equal(run("frobnicate"), 2);
  expect_one_line_error("unknown command 'frobnicate'");
  assert_int_equal(run("train --dataset idx:data"), 2);
  expect_one_line_error("--arch FILE is required");
  assert_int_equal(run("train --arch arch.json"), 2);
  expect_one_line_error("--dataset SPEC is required");
  assert_int_equal(run("train --arch arch.json --dataset idx:data --epochs zero"), 2);
  expect_one_line_error("--epochs");
  assert_int_equal(run("train --arch arch.json --dataset idx:data --bogus 1"), 2);
  expect_one_line_error("unknown option '--bogus'");
  assert_int_equal(run("train --arch arch.json --dataset idx:data --optimizer rmsprop"), 2);
  expect_one_line_error("rmsprop");
  assert_int_equal(run("train --arch arch.json --dataset idx:data --epochs"), 2);
  expect_one_line_error("needs a value");
  assert_int_equal(run("eval"), 2);
  expect_one_line_error("--checkpoint FILE is required");
  /* an unknown option is reported as unknown also when it is the last argument */
  assert_int_equal(run("train --arch arch.json --dataset idx:data --bogus"), 2);
  expect_one_line_error("unknown option '--bogus'");
  assert_int_equal(run("export --checkpoint m.ckpt --format c --out x --bogus"), 2);
  expect_one_line_error("unknown option '--bogus'");
  /* help for a command that does not exist is a usage error naming it */
  assert_int_equal(run("help nosuch"), 2);
  expect_one_line_error("unknown command 'nosuch'");
  /* --target together with --target-file is a usage error, not a silent preference */
  static const char *const both[] = {
      "profile --arch arch.json --target stm32f746 --target-file t.json",
      "measure --checkpoint m.ckpt --target stm32f746 --target-file t.json",
      "latency fit --measurements m.csv --target stm32f746 --target-file t.json --out o.json",
      "latency ingest board.log --target stm32f746 --target-file t.json"};
  for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
    if (run(both[i]) != 2) fail_msg("`nas %s` did not exit 2", both[i]);
    expect_one_line_error("--target and --target-file exclude each other");
  }
  /* --threads is range-checked where it is an option */
  assert_int_equal(run("export --checkpoint m.ckpt --format c --out x --threads 0"), 2);
  expect_one_line_error("--threads");
  assert_int_equal(run("measure --checkpoint m.ckpt --target stm32f746 --threads 0"), 2);
  expect_one_line_error("--threads");
}

static void test_help(void **state) {
  (void)state;
  assert_int_equal(run("--help"), 0);
  assert_non_null(strstr(test_slurp(out_path), "train"));
  assert_int_equal(run("train --help"), 0);
  assert_non_null(strstr(test_slurp(out_path), "--train-limit"));
  assert_int_equal(run("eval --help"), 0);
  assert_non_null(strstr(test_slurp(out_path), "--checkpoint"));
}

static void test_runtime_errors(void **state) {
  (void)state;
  assert_int_equal(run("train --arch missing.json --dataset idx:data"), 1);
  expect_one_line_error("missing.json");
  assert_int_equal(run("train --arch arch.json --dataset idx:nowhere"), 1);
  expect_one_line_error("nowhere");
  assert_int_equal(run("train --arch arch.json --dataset mnist-ish"), 1);
  expect_one_line_error("mnist-ish");
  FILE *f;
  char p[512];
  snprintf(p, sizeof p, "%s/bad.json", dir);
  f = fopen(p, "w");
  fputs("{\"input\":[10,10,1],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":20,\"padding\":\"valid\"}]}", f);
  fclose(f);
  assert_int_equal(run("train --arch bad.json --dataset idx:data"), 1);
  expect_one_line_error("layer 0 (conv)");
  snprintf(p, sizeof p, "%s/junk.ckpt", dir);
  f = fopen(p, "w");
  fputs("not a checkpoint at all", f);
  fclose(f);
  assert_int_equal(run("eval --checkpoint junk.ckpt --dataset idx:data"), 1);
  expect_one_line_error("junk.ckpt");
}

static void test_train_save_eval(void **state) {
  (void)state;
  int rc = run("train --arch arch.json --dataset idx:data --epochs 3 --batch 32 --lr 0.01 --seed 4 "
               "--threads 1 --save m.ckpt --json");
  if (rc != 0) fail_msg("train exited %d: %s", rc, test_slurp(err_path));
  char *out = test_slurp(out_path);
  assert_non_null(strstr(out, "epoch 3/3"));
  char *last = out + strlen(out) - 1;
  while (last > out && last[-1] != '\n') last--;
  assert_true(last[0] == '{');
  double test_acc = -1;
  char *t = strstr(last, "\"test_acc\":");
  assert_non_null(t);
  test_acc = atof(t + 11);
  if (test_acc < 0.9) fail_msg("test_acc %.3f below 0.9 on an easy task", test_acc);
  for (const char *k = "val_acc\0params\0macs\0train_seconds\0samples_per_s\0"; *k; k += strlen(k) + 1)
    if (!strstr(last, k)) fail_msg("JSON lacks %s: %s", k, last);
  rc = run("eval --checkpoint m.ckpt --json");
  if (rc != 0) fail_msg("eval exited %d: %s", rc, test_slurp(err_path));
  out = test_slurp(out_path);
  t = strstr(out, "\"test_acc\":");
  assert_non_null(t);
  /* the same weights on the same test set give the same accuracy */
  assert_true(fabs(atof(t + 11) - test_acc) < 1e-6);

  /* int8 export: the stored int8 accuracy is close to float, and the file imports and runs */
  rc = run("export --checkpoint m.ckpt --format tflite --out exp --threads 1 --json");
  if (rc != 0) fail_msg("export exited %d: %s", rc, test_slurp(err_path));
  out = test_slurp(out_path);
  t = strstr(out, "\"int8_test_acc\":");
  assert_non_null(t);
  double int8_acc = atof(t + 16);
  if (int8_acc < test_acc - 0.05) fail_msg("int8 accuracy %.3f far below float %.3f", int8_acc, test_acc);
  assert_int_equal(run("import exp/model.tflite"), 0);
  assert_non_null(strstr(test_slurp(out_path), "CONV_2D"));
  char p[512];
  snprintf(p, sizeof p, "%s/in.bin", dir);
  FILE *f = fopen(p, "wb");
  for (int i = 0; i < 100; i++) fputc(i, f);
  fclose(f);
  assert_int_equal(run("run exp/model.tflite --input in.bin --output out.bin"), 0);
  snprintf(p, sizeof p, "%s/out.bin", dir);
  f = fopen(p, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  assert_int_equal(ftell(f), 3); /* three int8 logits */
  fclose(f);
  assert_int_equal(run("export --checkpoint m.ckpt --format onnx --out exp"), 0);
  assert_int_equal(run("export --checkpoint m.ckpt --format c --out exp"), 0);
  assert_int_equal(access(strcat(strcpy(p, dir), "/exp/model.c"), R_OK), 0);
  assert_int_equal(access(strcat(strcpy(p, dir), "/exp/nasrt_invoke.c"), R_OK), 0);
  /* --out is checked before the work: the bad dataset is never loaded */
  assert_int_equal(run("export --checkpoint m.ckpt --format tflite --out nodir/sub "
                       "--dataset idx:nodata"), 1);
  expect_one_line_error("nodir/sub: cannot create directory: No such file or directory");
  assert_int_equal(run("export --checkpoint m.ckpt --format tflite --out m.ckpt"), 1);
  expect_one_line_error("m.ckpt: not a directory");
  assert_int_equal(run("export --checkpoint m.ckpt --format pdf --out exp"), 2);
  expect_one_line_error("unknown format 'pdf'");
  /* measure on the host back end, with --threads */
  rc = run("measure --checkpoint m.ckpt --target stm32f746 --backend host --runs 3 --threads 1 --json");
  if (rc != 0) fail_msg("measure exited %d: %s", rc, test_slurp(err_path));
  assert_non_null(strstr(test_slurp(out_path), "\"backend\":\"host\""));
}

static void test_pricing(void **state) {
  (void)state;
  assert_int_equal(run("targets"), 0);
  assert_non_null(strstr(test_slurp(out_path), "stm32f446re"));
  assert_int_equal(run("profile --arch arch.json --target stm32f746 --json"), 0);
  char *out = test_slurp(out_path);
  for (const char *k = "macs\0params\0flash_bytes\0peak_sram_bytes\0latency_ms\0layers\0"; *k; k += strlen(k) + 1)
    if (!strstr(out, k)) fail_msg("profile JSON lacks %s: %s", k, out);
  assert_int_equal(run("profile --arch arch.json --target nosuchchip"), 1);
  expect_one_line_error("nosuchchip");
  assert_int_equal(run("profile --arch arch.json"), 2);
  expect_one_line_error("--target");
}

/* nas search and nas resume: the help lists every strategy of the table; --target with
 * --target-file and a bad --threads are usage errors; a search whose candidates are all over
 * budget (no training) runs with --threads; resume says which run it continues. */
static void test_search_cli(void **state) {
  (void)state;
  char p[512];
  snprintf(p, sizeof p, "%s/space.json", dir);
  FILE *f = fopen(p, "w");
  fputs("{\"name\":\"tiny\",\"input\":[10,10,1],\"classes\":3,\"layers\":["
        "{\"op\":\"conv\",\"out\":{\"choice\":[4,8]}},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
        f);
  fclose(f);
  assert_int_equal(run("search --help"), 0);
  char *out = test_slurp(out_path);
  for (int i = 0; i < nas_strategy_count(); i++) {
    const nas_strategy *s = nas_strategy_at(i);
    char line[160];
    snprintf(line, sizeof line, "  %-10s %s\n", s->name, s->summary);
    if (!strstr(out, line)) fail_msg("search --help lacks strategy %s: %s", s->name, out);
  }
  assert_int_equal(run("search --strategy dnas --help"), 0);
  out = test_slurp(out_path);
  assert_non_null(strstr(out, "--supernet-epochs"));
  assert_null(strstr(out, "--population"));
  assert_int_equal(run("search --strategy nosuch --space space.json"), 2);
  expect_one_line_error("unknown strategy 'nosuch' (random, evolution, dnas, sparse)");
  const char *base = "search --strategy random --space space.json --dataset idx:data --db s.db "
                     "--budget 2 --epochs 1 --batch 32 --train-limit 100 --max-sram 1";
  snprintf(p, sizeof p, "%s --target stm32f446re --target-file t.json", base);
  assert_int_equal(run(p), 2);
  expect_one_line_error("--target and --target-file exclude each other");
  snprintf(p, sizeof p, "%s --target stm32f446re --threads 0", base);
  assert_int_equal(run(p), 2);
  expect_one_line_error("--threads");
  snprintf(p, sizeof p, "%s --target stm32f446re --threads 1", base);
  int rc = run(p);
  if (rc != 0) fail_msg("search exited %d: %s", rc, test_slurp(err_path));
  assert_non_null(strstr(test_slurp(out_path), "run 1 done: 2 candidates (0 done, 2 rejected, 0 failed)"));
  /* resume names the run, its strategy and the store before anything else */
  nas_store *st = NULL;
  nas_err e = {0};
  snprintf(p, sizeof p, "%s/s.db", dir);
  assert_int_equal(nas_store_open(p, &st, &e), NAS_OK);
  assert_int_equal(nas_store_run_set_status(st, 1, "interrupted", &e), NAS_OK);
  nas_store_close(st);
  rc = run("resume --db s.db --threads 1");
  if (rc != 0) fail_msg("resume exited %d: %s", rc, test_slurp(err_path));
  out = test_slurp(out_path);
  if (strncmp(out, "resuming run 1 (strategy random) of s.db\n", 41)) fail_msg("resume printed: %s", out);
  assert_int_equal(run("resume --db s.db --threads 0"), 2);
  expect_one_line_error("--threads");
  assert_int_equal(run("resume --db s.db --run 1"), 1);
  expect_one_line_error("run 1 is already done");
  assert_int_equal(run("resume --db s.db"), 1);
  expect_one_line_error("no run to resume");
  /* the plot has a legend naming its three kinds of point */
  assert_int_equal(run("plot --db s.db --run 1 --out p.svg"), 0);
  snprintf(p, sizeof p, "%s/p.svg", dir);
  char *svg = test_slurp(p);
  for (const char *k = ">Pareto front<\0>trained<\0>not trained (accuracy 0)<\0"; *k; k += strlen(k) + 1)
    if (!strstr(svg, k)) fail_msg("the plot has no legend entry %s", k);
}

/* Another application's SQLite database given as --db: every command that takes a store
 * refuses it with one line naming it, and nothing is written (the file byte for byte, no WAL,
 * no journal, no checkpoint beside it). */
static void test_foreign_db(void **state) {
  (void)state;
  char p[512], before[8192], after[8192];
  snprintf(p, sizeof p, "%s/space.json", dir);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs("{\"name\":\"tiny\",\"input\":[10,10,1],\"classes\":3,\"layers\":["
        "{\"op\":\"conv\",\"out\":{\"choice\":[4,8]}},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
        f);
  fclose(f);
  snprintf(p, sizeof p, "%s/other-app.db", dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT);"
                                    "INSERT INTO contacts(name) VALUES('ada')",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  f = fopen(p, "rb");
  assert_non_null(f);
  size_t nb = fread(before, 1, sizeof before, f);
  fclose(f);
  static const char *const CMDS[] = {
      "search --strategy random --space space.json --dataset idx:data --target stm32f446re "
      "--budget 1 --epochs 1 --train-limit 100 --threads 1 --db other-app.db",
      "search --strategy dnas --space space.json --dataset idx:data --target stm32f446re "
      "--train-limit 100 --threads 1 --db other-app.db",
      "resume --db other-app.db",
      "runs --db other-app.db",
      "show --db other-app.db --candidate 1",
      "pareto --db other-app.db",
      "plot --db other-app.db --run 1 --out plot.svg",
      "export --db other-app.db --candidate 1 --format tflite --out xout"};
  for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) {
    int rc = run(CMDS[i]);
    if (rc != 1) fail_msg("`nas %s` exited %d: %s", CMDS[i], rc, test_slurp(err_path));
    expect_one_line_error("other-app.db: not a nas store");
    f = fopen(p, "rb");
    assert_non_null(f);
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    if (na != nb || memcmp(before, after, nb)) fail_msg("`nas %s` changed the file", CMDS[i]);
    static const char *const SIDE[] = {"other-app.db-wal", "other-app.db-journal",
                                       "other-app.db-shm", "plot.svg", "xout"};
    for (size_t k = 0; k < sizeof SIDE / sizeof SIDE[0]; k++) {
      char q[600];
      snprintf(q, sizeof q, "%s/%s", dir, SIDE[k]);
      if (access(q, F_OK) == 0) fail_msg("`nas %s` left %s", CMDS[i], SIDE[k]);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_runtime_errors),
      cmocka_unit_test(test_train_save_eval),
      cmocka_unit_test(test_pricing),
      cmocka_unit_test(test_search_cli),
      cmocka_unit_test(test_foreign_db),
      cmocka_unit_test(test_bad_label),
      cmocka_unit_test(test_brief_training),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
