/* tests/test_search_rnn.c: a tiny `kws-rnn` search on a synthetic keyword-spotting set
 * (datasets/tools/synth-kws) and `nas export --db` of its done candidates (issue 18): the
 * stored calibration holds the recurrent cells' internal ranges (blob calibration version 2),
 * so the tflite and C exports rebuild the int8 graph the search scored (its test accuracy
 * exactly, the stored .tflite bytes); a version-1 blob (no internal ranges) is still read and
 * exported, its cell ranges calibrated again. Every candidate's peak SRAM is the planner's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tests/test_util.h"
#include "nas/artifacts.h"
#include "nas/job.h"
#include "nas/run.h"
#include "nas/strategies/strategy.h"
#include "results/store.h"
#include "train/checkpoint.h"
#include "export/export_tflite.h"
#include "latency/cost.h"
#include "latency/target.h"
#include "deploy/lower.h"
#include "train/net.h"

static char dir[256], data_spec[400];
static int have_tools;

static int have(const char *prog) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
  return system(cmd) == 0;
}

/* The bytes of path must be exactly want[0..len). */
static void assert_file_bytes(const char *path, const void *want, size_t len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char *buf = malloc(len + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, len + 1, f), len);
  fclose(f);
  assert_memory_equal(buf, want, len);
  free(buf);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-search-rnn-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  have_tools = have("espeak-ng") && have("sox");
  if (!have_tools) return 0;
  const char *src = getenv("NAS_SOURCE_DIR");
  char cmd[1024];
  /* 16 utterances per keyword (N_UNKNOWN 4 per other word), split 80/10/10 by the lists */
  snprintf(cmd, sizeof cmd, "N_UNKNOWN=4 bash %s/datasets/tools/synth-kws %s/kws 16 1 >/dev/null 2>&1",
           src ? src : NAS_SOURCE_DIR, dir);
  if (system(cmd) != 0) return -1;
  snprintf(data_spec, sizeof data_spec, "speech-commands:%s/kws", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return test_rm_rf(dir);
}

static int run_search(const char *db, nas_search_summary *s, nas_err *e) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "space", "kws-rnn");
  cJSON_AddStringToObject(j, "dataset", data_spec);
  cJSON_AddStringToObject(j, "target", "stm32f446re");
  cJSON_AddStringToObject(j, "objectives", "acc_int8_test:max,latency_pred_ms:min");
  cJSON_AddNumberToObject(j, "budget", 3);
  cJSON_AddNumberToObject(j, "epochs", 1);
  cJSON_AddNumberToObject(j, "batch", 16);
  cJSON_AddNumberToObject(j, "seed", 7);
  cJSON_AddNumberToObject(j, "calib_samples", 1000);
  int rc = nas_search_run(db, "random", j, NULL, s, e);
  cJSON_Delete(j);
  return rc;
}

/* The float blob of a candidate rewritten as a version-1 blob: the same checkpoint with the
 * calibration's "version", "sub_lo" and "sub_hi" removed. */
static void make_v1_blob(const void *fb, size_t fl, void **out, size_t *outl) {
  char ck[400];
  snprintf(ck, sizeof ck, "%s/v2.ckpt", dir);
  FILE *f = fopen(ck, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(fb, 1, fl, f), fl);
  fclose(f);
  nas_ckpt k;
  nas_err e = {0};
  if (nas_ckpt_load(ck, &k, &e)) fail_msg("%s", e.msg);
  nas_net *net = NULL;
  if (nas_net_build(k.arch_json, "v1", 1, 1, &net, &e)) fail_msg("%s", e.msg);
  if (nas_ckpt_apply(&k, net->g, &e)) fail_msg("%s", e.msg);
  cJSON *m = cJSON_Parse(k.meta_json);
  cJSON *cal = cJSON_GetObjectItemCaseSensitive(m, "calib");
  assert_non_null(cal);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cal, "version");
  assert_true(cJSON_IsNumber(v) && v->valuedouble == NAS_CAND_CALIB_VERSION);
  assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cal, "sub_lo")) > 0);
  cJSON_DeleteItemFromObjectCaseSensitive(cal, "version");
  cJSON_DeleteItemFromObjectCaseSensitive(cal, "sub_lo");
  cJSON_DeleteItemFromObjectCaseSensitive(cal, "sub_hi");
  char *meta = cJSON_PrintUnformatted(m);
  cJSON_Delete(m);
  snprintf(ck, sizeof ck, "%s/v1.ckpt", dir);
  if (nas_ckpt_save(ck, k.arch_json, meta, net->g, &e)) fail_msg("%s", e.msg);
  cJSON_free(meta);
  nas_net_free(net);
  nas_ckpt_free(&k);
  f = fopen(ck, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *outl = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  *out = malloc(*outl);
  assert_non_null(*out);
  assert_int_equal(fread(*out, 1, *outl, f), *outl);
  fclose(f);
}

/* The stored blob's calibration as read back: version 2 with the cells' ranges, laid out on
 * the candidate's graph, from which lowering rebuilds the stored .tflite byte for byte
 * (qb[0..ql), written as "cand<id>"); the v1 blob reads with none, and lowering it alone
 * asks for a calibration. */
static void check_unpack(const char *arch, long long id, const void *fb, size_t fl,
                         int want_version, const void *qb, size_t ql) {
  nas_cand_float f;
  nas_err e = {0};
  if (nas_cand_unpack_float(fb, fl, "cand", &f, &e)) fail_msg("%s", e.msg);
  assert_int_equal(f.calib_version, want_version);
  nas_net *net = NULL;
  if (nas_net_build(arch, "c", 1, 1, &net, &e)) fail_msg("%s", e.msg);
  if (nas_ckpt_apply(&f.ck, net->g, &e)) fail_msg("%s", e.msg);
  nas_calib c;
  if (nas_cand_calib(&f, net->g, &c, &e)) fail_msg("%s", e.msg);
  nas_g8_graph g8;
  memset(&g8, 0, sizeof g8);
  if (want_version >= 2) {
    assert_true(c.nsub > 0);
    assert_non_null(c.sub);
    for (int k = 0; k < c.nsub; k++) assert_true(c.sub_lo[k] <= 0 && c.sub_hi[k] >= 0);
    if (nas_lower(net, &c, NULL, &g8, &e)) fail_msg("%s", e.msg);
    char name[32];
    snprintf(name, sizeof name, "cand%lld", id);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (nas_tflite_write_mem(&g8, name, &buf, &len, &e)) fail_msg("%s", e.msg);
    assert_int_equal(len, ql);
    assert_memory_equal(buf, qb, ql);
    free(buf);
  } else {
    assert_int_equal(c.nsub, 0);
    assert_int_equal(nas_lower(net, &c, NULL, &g8, &e), NAS_EINVAL);
    assert_non_null(strstr(e.msg, "calibrate"));
  }
  nas_g8_graph_free(&g8);
  nas_calib_free(&c);
  nas_net_free(net);
  nas_cand_float_free(&f);
}

static void test_export_recurrent_candidates(void **state) {
  (void)state;
  if (!have_tools) test_skip("espeak-ng or sox not found (apt-get install espeak-ng sox)");
  char db[400], out[400];
  snprintf(db, sizeof db, "%s/rnn.db", dir);
  snprintf(out, sizeof out, "%s/export", dir);
  nas_search_summary s;
  nas_err e = {0};
  if (run_search(db, &s, &e)) fail_msg("search: %s", e.msg);
  assert_true(s.done >= 1);
  nas_store *st = NULL;
  assert_int_equal(nas_store_open(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0, exported = 0;
  assert_int_equal(nas_store_candidate_ids(st, s.run_id, NULL, &ids, &n, &e), NAS_OK);
  for (int i = 0; i < n; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &r, &e), NAS_OK);
    if (strcmp(r.state, "done")) {
      nas_store_candidate_row_free(&r);
      continue;
    }
    assert_true(strstr(r.arch_json, "lstm") || strstr(r.arch_json, "gru"));
    void *fb = NULL, *qb = NULL;
    size_t fl = 0, ql = 0;
    assert_int_equal(nas_store_weights_get(st, ids[i], "float", &fb, &fl, &e), NAS_OK);
    assert_int_equal(nas_store_weights_get(st, ids[i], "int8", &qb, &ql, &e), NAS_OK);
    check_unpack(r.arch_json, (long long)ids[i], fb, fl, 2, qb, ql);
    /* the candidate was priced by the planner (state, gate and scratch tensors planned) */
    char tp[600];
    const char *src = getenv("NAS_SOURCE_DIR");
    snprintf(tp, sizeof tp, "%s/latency/targets/stm32f446re.json", src ? src : NAS_SOURCE_DIR);
    nas_target *t = NULL;
    nas_price *pr = NULL;
    if (nas_target_load(tp, &t, &e) || nas_price_arch(r.arch_json, "cand", t, &pr, &e))
      fail_msg("%s", e.msg);
    assert_string_equal(pr->sram_method, "planner");
    assert_true((double)pr->peak_sram_bytes == r.m.peak_sram_bytes);
    nas_price_free(pr);
    nas_target_free(t);
    static const char *const formats[] = {"tflite", "c"};
    for (int k = 0; k < 2; k++) {
      nas_export_job job = {.db = db, .candidate = ids[i], .format = formats[k], .out_dir = out};
      nas_export_summary es;
      nas_err xe = {0};
      if (nas_export_store_run(&job, &es, &xe))
        fail_msg("export %s of candidate %lld: %s", formats[k], (long long)ids[i], xe.msg);
      print_message("candidate %lld %s: stored int8 %.4f, exported %.4f (%d samples)\n",
                    (long long)ids[i], formats[k], r.m.acc_int8_test, es.int8_test_acc, es.test_n);
      assert_true(es.int8_test_acc == r.m.acc_int8_test); /* exactly */
      assert_true(es.float_test_acc == r.m.acc_float_test);
      if (k == 0) assert_file_bytes(es.path, qb, ql); /* the stored int8 blob */
    }
    if (!exported) { /* an old (version-1) blob of the same candidate exports the same model */
      void *v1 = NULL;
      size_t v1l = 0;
      make_v1_blob(fb, fl, &v1, &v1l);
      check_unpack(r.arch_json, (long long)ids[i], v1, v1l, 1, NULL, 0);
      assert_int_equal(nas_store_weights_put(st, ids[i], "float", v1, v1l, &e), NAS_OK);
      /* the C export is generated from the graph lowered with the recalibrated cell ranges */
      nas_export_job job = {.db = db, .candidate = ids[i], .format = "c", .out_dir = out};
      nas_export_summary es;
      nas_err xe = {0};
      if (nas_export_store_run(&job, &es, &xe)) fail_msg("export of the v1 blob: %s", xe.msg);
      assert_true(es.int8_test_acc == r.m.acc_int8_test);
      free(v1);
    }
    exported++;
    free(fb), free(qb);
    nas_store_candidate_row_free(&r);
  }
  assert_true(exported >= 1);
  free(ids);
  nas_store_close(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_export_recurrent_candidates),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
