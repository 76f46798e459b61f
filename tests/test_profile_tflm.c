/* tests/test_profile_tflm.c: `nas profile --tflite M --target stm32f446re --json` (runtime
 * tflm-cmsis-nn) on every model of the shared TFLM + CMSIS-NN corpus (../shared/data/
 * tflm-cmsisnn next to the source tree, or $NAS_TFLM_CORPUS) through the built binary
 * ($NAS_BIN): arena_bytes equals the corpus' arena_used_bytes_m32 (TFLM's own figure on the
 * 32-bit build) and peak_sram_bytes is that plus the target's runtime_sram_bytes (what lives
 * outside the arena), nothing else; the same through the library (nas_price_tflite). Without
 * the corpus the check cannot run: the program prints SKIP and exits 77. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <zlib.h>

#include "core/fileio.h"
#include "latency/cost.h"
#include "tests/test_util.h"

static char corpus_dir[1024], tmp[64];
static int have_corpus;

/* Gunzips models/<id>.tflite.gz into path. */
static void gunzip_model(const char *id, const char *path) {
  char gz[1200];
  snprintf(gz, sizeof gz, "%s/models/%s.tflite.gz", corpus_dir, id);
  gzFile in = gzopen(gz, "rb");
  if (!in) fail_msg("%s: cannot open", gz);
  FILE *out = fopen(path, "wb");
  assert_non_null(out);
  char buf[1 << 15];
  int n;
  while ((n = gzread(in, buf, sizeof buf)) > 0) assert_int_equal(fwrite(buf, 1, (size_t)n, out), (size_t)n);
  assert_true(n == 0);
  gzclose(in);
  fclose(out);
}

/* Runs `nas profile --tflite path --target stm32f446re --json` and parses its output. */
static cJSON *profile(const char *path) {
  char cmd[2400], out[128];
  const char *bin = getenv("NAS_BIN");
  snprintf(out, sizeof out, "%s/out.json", tmp);
  snprintf(cmd, sizeof cmd, "%s profile --tflite %s --target stm32f446re --json > %s", bin ? bin : "nas",
           path, out);
  if (system(cmd) != 0) fail_msg("failed: %s", cmd);
  char *text = NULL;
  long len = 0;
  nas_err e = {0};
  assert_int_equal(nas_read_file(out, &text, &len, &e), NAS_OK);
  cJSON *j = cJSON_Parse(text);
  free(text);
  if (!j) fail_msg("%s: not JSON", out);
  return j;
}

static double num(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!cJSON_IsNumber(v)) fail_msg("profile output lacks '%s'", key);
  return v->valuedouble;
}

static void test_every_corpus_model(void **state) {
  (void)state;
  if (!have_corpus) test_skip("TFLM corpus not found in %s (set NAS_TFLM_CORPUS): profile of every corpus model", corpus_dir);
  char path[1200];
  snprintf(path, sizeof path, "%s/models.csv", corpus_dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[8192];
  assert_non_null(fgets(line, sizeof line, f));
  int col_id = -1, col_core = -1, col_arena = -1, k = 0;
  for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"), k++) {
    if (!strcmp(tok, "model_id")) col_id = k;
    if (!strcmp(tok, "core")) col_core = k;
    if (!strcmp(tok, "arena_used_bytes_m32")) col_arena = k;
  }
  assert_true(col_id >= 0 && col_core >= 0 && col_arena >= 0);
  nas_target *t = NULL;
  nas_err e = {0};
  assert_int_equal(nas_target_open("stm32f446re", NULL, &t, &e), NAS_OK);
  assert_int_equal(t->runtime, NAS_RT_TFLM_CMSIS_NN);
  int models = 0;
  char tfl[128];
  snprintf(tfl, sizeof tfl, "%s/m.tflite", tmp);
  while (fgets(line, sizeof line, f)) {
    char *fld[256];
    int n = 0;
    for (char *p = line, *c; n < 256; p = c + 1) {
      fld[n++] = p;
      if (!(c = strchr(p, ','))) break;
      *c = 0;
    }
    if (n <= col_arena || strcmp(fld[col_core], "cortex-m4")) continue; /* one row per model */
    const long arena = atol(fld[col_arena]);
    gunzip_model(fld[col_id], tfl);
    cJSON *j = profile(tfl);
    const double a = num(j, "arena_bytes"), peak = num(j, "peak_sram_bytes"), rt = num(j, "runtime_sram_bytes");
    if ((long)a != arena) fail_msg("%s: profile arena %.0f, TFLM's arena_used_bytes %ld", fld[col_id], a, arena);
    assert_true(rt == (double)t->rt_sram);
    assert_true(peak == a + rt);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "peak_sram_method");
    assert_true(cJSON_IsString(m) && !strcmp(m->valuestring, "tflm-arena"));
    cJSON_Delete(j);
    nas_price *p = NULL;
    if (nas_price_tflite(tfl, t, &p, &e)) fail_msg("%s: %s", fld[col_id], e.msg);
    assert_int_equal(p->arena_bytes, arena);
    assert_int_equal(p->peak_sram_bytes, arena + t->rt_sram);
    nas_price_free(p);
    models++;
  }
  fclose(f);
  print_message("%d corpus models: profile's arena = TFLM's arena_used_bytes, peak = arena + %lld\n",
                models, t->rt_sram);
  assert_int_equal(models, 284);
  unlink(tfl);
  nas_target_free(t);
}

int main(void) {
  have_corpus = test_find_corpus(corpus_dir, sizeof corpus_dir);
  snprintf(tmp, sizeof tmp, "/tmp/nas-profile-XXXXXX");
  if (!mkdtemp(tmp)) return 1;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_corpus_model)};
  int failed = test_exit(cmocka_run_group_tests(tests, NULL, NULL));
  char out[128];
  snprintf(out, sizeof out, "%s/out.json", tmp);
  unlink(out);
  rmdir(tmp);
  return failed;
}
