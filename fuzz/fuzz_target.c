/* fuzz/fuzz_target.c: libFuzzer harness of target JSON (latency/target.c nas_target_parse).
 * The input is a target file; its "lookup_table" resolves in a scratch folder holding one
 * valid measurement CSV, lut.csv, so the lookup path is reachable (the CSV reader itself has
 * its own harness, fuzz_meas_csv). A target that loads is written back (nas_target_to_json)
 * and must load again with the same figures. Inputs whose lookup_table is an absolute path
 * are skipped: they would make the harness read arbitrary files of the machine. */
#include "fuzz/fuzz_util.h"

#include <cjson/cJSON.h>

#include "latency/target.h"

static char g_dir[600];

static void cleanup(void) { fuzz_rm_tree(g_dir); }

static const char LUT[] =
    "target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms\n"
    "fuzz,m,l0,conv,1000,490,800,3,1,8,5000,\n"
    "fuzz,m,l1,dwconv,720,800,800,3x3,8,8,2100,\n"
    "fuzz,m,,model,1720,0,0,1,0,0,,0.05\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(g_dir, sizeof g_dir, "%s", fuzz_tmpdir());
  char p[700];
  snprintf(p, sizeof p, "%s/lut.csv", g_dir);
  fuzz_write_file(p, LUT, sizeof LUT - 1);
  atexit(cleanup);
  return 0;
}

/* 1 when the input names an absolute lookup table. */
static int absolute_lookup(const char *text) {
  cJSON *j = cJSON_Parse(text);
  const cJSON *lt = cJSON_GetObjectItemCaseSensitive(j, "lookup_table");
  int abs = cJSON_IsString(lt) && lt->valuestring && lt->valuestring[0] == '/';
  cJSON_Delete(j);
  return abs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  if (absolute_lookup(text)) {
    free(text);
    return 0;
  }
  nas_target *t = NULL;
  nas_err e = {0};
  int rc = nas_target_parse(text, "fuzz.json", g_dir, &t, &e);
  fuzz_check_err(rc, &e, "nas_target_parse");
  if (rc == NAS_OK) {
    char *back = nas_target_to_json(t);
    if (back) {
      nas_target *t2 = NULL;
      nas_err e2 = {0};
      if (nas_target_parse(back, "fuzz-rewritten.json", g_dir, &t2, &e2) != NAS_OK)
        FUZZ_FAIL("a written target does not load: %s (from %.300s)", e2.msg, back);
      if (t2->core != t->core || t2->model != t->model || t2->clock_mhz != t->clock_mhz ||
          t2->sram_bytes != t->sram_bytes || t2->n_lookup != t->n_lookup)
        FUZZ_FAIL("a written target loads with other figures");
      nas_target_free(t2);
      free(back);
    }
  }
  nas_target_free(t);
  free(text);
  return 0;
}
