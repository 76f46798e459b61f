/* tests/test_fault_util.h: the fault-injection driver shared by test_fault.c and
 * test_fault_store.c (header-only; include after <cmocka.h>): faultsim runs an operation
 * with the N-th allocation failing, N = 0, 1, ..., transient then persistent, until a run
 * succeeds without an injected failure, and requires every failed run to end in NAS_ENOMEM
 * with a one-line message (see test_fault.c). Environment: NAS_FAULT_FULL=1 (every N, also
 * in cases that step N), NAS_FAULT_VERBOSE=1 (print every message), NAS_FAULT_ONLY=PATTERN
 * (run the matching tests only). */
#ifndef NAS_TESTS_TEST_FAULT_UTIL_H
#define NAS_TESTS_TEST_FAULT_UTIL_H

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tests/test_util.h"
#include "core/json.h"
#include "tests/test_util.h"

#define MAX_RUNS 1000000L /* more allocations than any operation here makes */

static char g_dir[256]; /* scratch directory of this process (under /tmp) */
static char g_fast[256]; /* the same in memory (/dev/shm) when there is one: for the store
                            cases, thousands of new databases, each synced on creation */

/* ---- the driver ---------------------------------------------------------------------- */

typedef struct fault_case {
  const char *name;
  void *ctx;
  void (*setup)(void *ctx);                  /* before every run (may be NULL) */
  int (*run)(void *ctx, nas_err *e);         /* the operation */
  void (*check)(void *ctx, int rc, int hit); /* after every run, injection off (may be NULL) */
  int stride;                                /* N advances by this (0: 1, every N) */
} fault_case;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs c with N = 0, 1, ... failing (every stride-th N; every N with NAS_FAULT_FULL=1),
 * transient then persistent. */
static void faultsim(const fault_case *c) {
  const char *full = getenv("NAS_FAULT_FULL");
  long stride = c->stride > 1 && !(full && !strcmp(full, "1")) ? c->stride : 1;
  const char *verbose = getenv("NAS_FAULT_VERBOSE"); /* 1: print every error message */
  for (int persistent = 0; persistent <= 1; persistent++) {
    const char *mode = persistent ? "persistent" : "transient";
    double t0 = now_s(), t_run = 0;
    long n, absorbed = 0;
    long runs = 0;
    for (n = 0; n < MAX_RUNS; n += stride, runs++) {
      if (c->setup) c->setup(c->ctx);
      nas_err e = {0};
      double t1 = now_s();
      nas_alloc_fault(n, persistent);
      int rc = c->run(c->ctx, &e);
      int hit = nas_alloc_fault_hit();
      nas_alloc_fault(-1, 0);
      t_run += now_s() - t1;
      if (rc != NAS_OK && !hit)
        fail_msg("%s: N=%ld %s: failed without an injected fault: %d %s", c->name, n, mode, rc,
                 e.msg);
      if (rc != NAS_OK && (rc != NAS_ENOMEM || !e.msg[0] || strchr(e.msg, '\n')))
        fail_msg("%s: N=%ld %s: an allocation failure must end in NAS_ENOMEM with one line; "
                 "got %d '%s'", c->name, n, mode, rc, e.msg);
      if (verbose && !strcmp(verbose, "1") && rc != NAS_OK)
        printf("# %s %s N=%ld: %s\n", c->name, mode, n, e.msg);
      if (c->check) c->check(c->ctx, rc, hit);
      absorbed += rc == NAS_OK && hit;
      if (rc == NAS_OK && !hit) break;
    }
    if (n == MAX_RUNS) fail_msg("%s: no success after %ld runs", c->name, n);
    printf("# %-6s %-10s: %6ld allocations, %ld runs (N step %ld; %ld absorbed a fault), %.2f s "
           "(%.2f s in the operation)\n", c->name, mode, n, runs + 1, stride, absorbed,
           now_s() - t0, t_run);
  }
}

#define NEED_FAULTS()                                                                    \
  do {                                                                                   \
    if (nas_alloc_fault(-1, 0) != 0)                                                     \
      test_skip("built without fault injection (configure with -DNAS_FAULT_INJECTION=ON)"); \
  } while (0)

/* Creates the scratch directories (g_fast in /dev/shm when there is one), routes cJSON
 * through core/alloc.h from the start, and runs one thread: the loop reruns each operation
 * thousands of times, and what it tests does not depend on the thread count (OpenMP's own
 * allocations are not ours). */
static int fault_setup(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/nas-fault-XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  snprintf(g_fast, sizeof g_fast, "/dev/shm/nas-fault-XXXXXX");
  if (!mkdtemp(g_fast)) snprintf(g_fast, sizeof g_fast, "%s", g_dir);
  nas_json_init();
  omp_set_num_threads(1);
  return 0;
}

static int fault_teardown(void) {
  if (strcmp(g_fast, g_dir) && test_rm_rf(g_fast)) return -1;
  return test_rm_rf(g_dir);
}

/* NAS_FAULT_ONLY=PATTERN: run the matching tests only (call before running the group). */
static void fault_filter(void) {
  const char *only = getenv("NAS_FAULT_ONLY"); /* e.g. NAS_FAULT_ONLY=test_store */
  if (only && *only) cmocka_set_test_filter(only);
}

#endif
