/* tests/test_dnas_util.h: what the DNAS test programs share (header-only; each test is one
 * executable): a temporary directory and a small space JSON with width, kernel, expansion, op,
 * depth and optional choices, written by the cmocka group setup. */
#ifndef NAS_TESTS_TEST_DNAS_UTIL_H
#define NAS_TESTS_TEST_DNAS_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "tests/test_util.h"

static char dir[256];

static inline void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A small space on 10x10x1 inputs (3 classes) with width, kernel, expansion, op, depth and
 * optional choices. */
static const char SMALL_SPACE[] =
    "{\"name\":\"dnas-small\",\"input\":[10,10,1],\"classes\":3,\"layers\":["
    "{\"op\":\"conv\",\"out\":{\"choice\":[4,8]},\"k\":{\"choice\":[3,5]},\"stride\":1},"
    "{\"op\":\"mbconv\",\"out\":{\"choice\":[4,8]},\"expand\":{\"choice\":[2,3]},\"k\":{\"choice\":[3,5]}},"
    "{\"op\":{\"choice\":[\"dsconv\",\"conv\"]},\"out\":{\"choice\":[6,8]},\"k\":{\"choice\":[3,5]}},"
    "{\"op\":\"dsconv\",\"out\":{\"choice\":[8,12]},\"k\":{\"choice\":[3,5]},\"stride\":2,"
    "\"repeat\":{\"choice\":[1,2]}},"
    "{\"op\":\"dsconv\",\"out\":{\"choice\":[12,16]},\"k\":3,\"optional\":true},"
    "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";

static char small_path[300];

static inline int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-dnas-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(small_path, sizeof small_path, "%s/small.json", dir);
  write_text(small_path, SMALL_SPACE);
  return 0;
}

static inline int teardown(void **state) {
  (void)state;
  return test_rm_rf(dir);
}

#endif
