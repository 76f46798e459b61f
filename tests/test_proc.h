/* tests/test_proc.h: helpers of the tests that drive the real `nas` binary and watch its store
 * from outside (header-only): start the program, poll the SQLite file read-only, sleep. */
#ifndef NAS_TESTS_TEST_PROC_H
#define NAS_TESTS_TEST_PROC_H
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Forks and execs bin with args (stdout to /dev/null); the child's pid. */
static inline pid_t test_spawn(const char *bin, char *const *args) {
  pid_t p = fork();
  if (p == 0) {
    FILE *f = freopen("/dev/null", "w", stdout);
    (void)f;
    execv(bin, args);
    _exit(127);
  }
  return p;
}

/* The first column of the first row of sql on store db as an int (a text column: 1 when it
 * equals want, else 0); -1 when the store cannot be read yet. */
static inline int test_sql_int(const char *db, const char *sql, const char *want) {
  sqlite3 *s = NULL;
  int n = -1;
  if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(s, 2000);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
      n = want ? sqlite3_column_text(q, 0) && !strcmp((const char *)sqlite3_column_text(q, 0), want)
               : sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
  }
  sqlite3_close(s);
  return n;
}

/* count(*) of the candidates matching an SQL condition; -1 when the store is not readable yet. */
static inline int test_count_where(const char *db, const char *cond) {
  char sql[400];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM candidates WHERE %s", cond);
  return test_sql_int(db, sql, NULL);
}

static inline void test_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#endif
