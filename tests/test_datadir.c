/* The data directory (core/datadir.h): $NAS_DATA_DIR wins and is used alone (a missing one is
 * an error naming the variable), an empty one counts as unset, short buffers are errors, and
 * the lookups of the targets (latency/target.h, with its $NAS_TARGET_DIR override) and of the
 * built-in spaces (search_spaces/space.h, supernet.h) read the directory it names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/datadir.h"
#include "core/fileio.h"
#include "latency/target.h"
#include "search_spaces/space.h"
#include "search_spaces/supernet.h"
#include "tests/test_util.h"

static char tmp[256];

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Copies SRC/rel to DIR/rel (the directories of rel must exist in DIR). */
static void copy_rel(const char *src, const char *dir, const char *rel) {
  char from[1024], to[1024], *text = NULL;
  long len = 0;
  nas_err e = {0};
  snprintf(from, sizeof from, "%s/%s", src, rel);
  snprintf(to, sizeof to, "%s/%s", dir, rel);
  if (nas_read_file(from, &text, &len, &e)) fail_msg("%s", e.msg);
  FILE *f = fopen(to, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, (size_t)len, f), (size_t)len);
  assert_int_equal(fclose(f), 0);
  free(text);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof tmp, "%s/nas-datadir-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmp)) return -1;
  char p[512];
  snprintf(p, sizeof p, "%s/latency", tmp);
  if (mkdir(p, 0777)) return -1;
  snprintf(p, sizeof p, "%s/latency/targets", tmp);
  if (mkdir(p, 0777)) return -1;
  snprintf(p, sizeof p, "%s/latency/calibration", tmp);
  if (mkdir(p, 0777)) return -1;
  snprintf(p, sizeof p, "%s/search_spaces", tmp);
  if (mkdir(p, 0777)) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_env_wins(void **state) {
  (void)state;
  char buf[1024], want[1024];
  nas_err e = {0};
  setenv("NAS_DATA_DIR", tmp, 1);
  assert_int_equal(nas_data_dir(buf, sizeof buf, &e), NAS_OK);
  assert_string_equal(buf, tmp);
  assert_int_equal(nas_data_path("search_spaces/x.json", buf, sizeof buf, &e), NAS_OK);
  snprintf(want, sizeof want, "%s/search_spaces/x.json", tmp);
  assert_string_equal(buf, want);
  /* Too small a buffer: an error naming the path, never a truncated path. */
  char small[8];
  assert_int_equal(nas_data_path("search_spaces/x.json", small, sizeof small, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "search_spaces/x.json"));
  assert_non_null(strstr(e.msg, "longer than 7 bytes"));
}

static void test_env_not_a_dir(void **state) {
  (void)state;
  char buf[1024], file[512];
  nas_err e = {0};
  snprintf(buf, sizeof buf, "%s/nope", tmp);
  setenv("NAS_DATA_DIR", buf, 1);
  assert_int_equal(nas_data_dir(buf, sizeof buf, &e), NAS_EIO);
  assert_non_null(strstr(e.msg, "NAS_DATA_DIR="));
  assert_non_null(strstr(e.msg, "/nope: not a directory"));
  /* A file is not a data directory either; no fallback to another one. */
  snprintf(file, sizeof file, "%s/file", tmp);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  setenv("NAS_DATA_DIR", file, 1);
  nas_err_clear(&e);
  assert_int_equal(nas_data_path("latency/targets", buf, sizeof buf, &e), NAS_EIO);
  assert_non_null(strstr(e.msg, file));
  unlink(file);
}

/* Unset or empty: the installed data or the source tree, a directory holding the targets. */
static void test_default(void **state) {
  (void)state;
  char buf[4096], a[4096], t[4200];
  nas_err e = {0};
  unsetenv("NAS_DATA_DIR");
  assert_int_equal(nas_data_dir(a, sizeof a, &e), NAS_OK);
  snprintf(t, sizeof t, "%s/latency/targets", a);
  assert_true(is_dir(t));
  setenv("NAS_DATA_DIR", "", 1);
  assert_int_equal(nas_data_dir(buf, sizeof buf, &e), NAS_OK);
  assert_string_equal(buf, a);
  if (strcmp(a, NAS_SOURCE_DIR) != 0)
    print_message("# data directory %s (an installed copy), not the source tree\n", a);
}

static void test_targets(void **state) {
  (void)state;
  char buf[4096], want[1024];
  nas_err e = {0};
  const char *src = NAS_SOURCE_DIR;
  setenv("NAS_DATA_DIR", tmp, 1);
  unsetenv("NAS_TARGET_DIR");
  assert_int_equal(nas_targets_dir(buf, sizeof buf, &e), NAS_OK);
  snprintf(want, sizeof want, "%s/latency/targets", tmp);
  assert_string_equal(buf, want);
  nas_target *t = NULL;
  assert_int_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "unknown target 'stm32f446re'"));
  copy_rel(src, tmp, "latency/targets/stm32f446re.json");
  /* a target reads its runtime's cost models from the same data directory */
  assert_int_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_EIO);
  assert_non_null(strstr(e.msg, "latency/calibration/cycles.json"));
  copy_rel(src, tmp, "latency/calibration/cycles.json");
  copy_rel(src, tmp, "latency/calibration/tflm_insn.json");
  copy_rel(src, tmp, "latency/calibration/nasc_insn.json");
  if (nas_target_open("stm32f446re", NULL, &t, &e)) fail_msg("%s", e.msg);
  assert_string_equal(t->id, "stm32f446re");
  nas_target_free(t);
  char **ids;
  int n;
  assert_int_equal(nas_target_list(NULL, &ids, &n, &e), NAS_OK);
  assert_int_equal(n, 1);
  nas_target_ids_free(ids, n);
  /* $NAS_TARGET_DIR still replaces the targets directory alone. */
  snprintf(want, sizeof want, "%s/latency/targets", src);
  setenv("NAS_TARGET_DIR", want, 1);
  assert_int_equal(nas_targets_dir(buf, sizeof buf, &e), NAS_OK);
  assert_string_equal(buf, want);
  assert_int_equal(nas_target_list(NULL, &ids, &n, &e), NAS_OK);
  assert_true(n > 1);
  nas_target_ids_free(ids, n);
  unsetenv("NAS_TARGET_DIR");
  /* A target file whose id is not its file name is refused by name, naming the field. */
  {
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/latency/targets/stm32f446re.json", tmp);
    snprintf(to, sizeof to, "%s/latency/targets/renamed.json", tmp);
    assert_int_equal(link(from, to), 0);
    assert_int_equal(nas_target_open("renamed", NULL, &t, &e), NAS_EINVAL);
    assert_null(t);
    if (!strstr(e.msg, "renamed.json: field 'id': 'stm32f446re' differs from the file name"))
      fail_msg("%s", e.msg);
    assert_int_equal(unlink(to), 0);
  }
  /* A data directory without targets: the error names the directory looked in. */
  snprintf(want, sizeof want, "%s/search_spaces", tmp);
  setenv("NAS_DATA_DIR", want, 1);
  assert_int_not_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_OK);
  assert_non_null(strstr(e.msg, want));
}

static void test_spaces(void **state) {
  (void)state;
  nas_err e = {0};
  char want[1024];
  setenv("NAS_DATA_DIR", tmp, 1);
  nas_space *s = NULL;
  assert_int_equal(nas_space_load_builtin("kws-dscnn", &s, &e), NAS_EIO);
  snprintf(want, sizeof want, "%s/search_spaces/kws-dscnn.json", tmp);
  assert_non_null(strstr(e.msg, want));
  copy_rel(NAS_SOURCE_DIR, tmp, "search_spaces/kws-dscnn.json");
  assert_int_equal(nas_space_load("kws-dscnn", &s, &e), NAS_OK);
  assert_string_equal(nas_space_name(s), "kws-dscnn");
  nas_space_free(s);
  nas_supernet *sn = NULL;
  if (nas_supernet_load("kws-dscnn", &sn, &e)) fail_msg("%s", e.msg);
  nas_supernet_free(sn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_env_wins), cmocka_unit_test(test_env_not_a_dir),
      cmocka_unit_test(test_default),  cmocka_unit_test(test_targets),
      cmocka_unit_test(test_spaces),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
