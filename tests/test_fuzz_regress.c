/* tests/test_fuzz_regress.c: one regression test per defect the libFuzzer harnesses found
 * (fuzz/, docs/fuzzing.md lists them). Each feeds the minimised input through the API its
 * harness calls and asserts what must happen instead: a clean one-line error, or the defined
 * (saturated) result. The fuzzer's own inputs where they are binary are kept in
 * fuzz/corpus/<harness>/regress-* and read from the source tree. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "deploy/graph8.h"
#include "deploy/lower.h"
#include "latency/measure.h"
#include "latency/target.h"
#include "nas/artifacts.h"
#include "search_spaces/space.h"
#include "search_spaces/supernet.h"
#include "tests/test_util.h"
#include "train/checkpoint.h"
#include "train/net.h"
#include "train/quant.h"

/* Under AddressSanitizer (make test-asan) an allocation the runtime cannot serve returns NULL
 * instead of aborting, as in the fuzz harnesses that found these defects: the tests below
 * assert that the library turns it into NAS_ENOMEM with a message. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nas-fuzzreg-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return test_rm_rf(dir);
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* The error contract: a status, and one non-empty line. */
static void assert_one_line(int rc, const nas_err *e) {
  assert_int_not_equal(rc, NAS_OK);
  assert_true(e->msg[0] != '\0');
  assert_null(strchr(e->msg, '\n'));
  assert_null(strchr(e->msg, '\r'));
}

/* ---- messages echo user text: one line (fuzz_target, fuzz_space) ------------------------- */

/* fuzz_target: a JSON key holding a newline (raw, and as the escape \n) came back verbatim in
 * "unknown field '...'", so the message was two lines. */
static void test_target_key_with_newline(void **state) {
  (void)state;
  static const char *const inputs[] = {"{\"id\":\"x\",\" nm \nae\":1}", "{\"id\":\"x\",\"a\\nb\":1}"};
  for (int i = 0; i < 2; i++) {
    nas_target *t = NULL;
    nas_err e = {0};
    int rc = nas_target_parse(inputs[i], "fuzz.json", NULL, &t, &e);
    assert_null(t);
    assert_one_line(rc, &e);
    assert_non_null(strstr(e.msg, "unknown field"));
  }
}

/* fuzz_space: a space named "vision-mbnet-32\n" with an unknown layer field; the check's
 * message names the space, so it held the newline. */
static void test_space_name_with_newline(void **state) {
  (void)state;
  static const char *text =
      "{\"name\":\"tiny\n\",\"input\":[4,4,1],\"classes\":2,\"layers\":["
      "{\"op\":\"conv\",\"out\":{\"choice\":[2,3]},\"bogus\":true},{\"op\":\"gap\"},"
      "{\"op\":\"fc\",\"out\":2}]}";
  nas_space *s = NULL;
  nas_err e = {0};
  int rc = nas_space_parse(text, "fuzz.json", &s, &e);
  if (rc == NAS_OK) rc = nas_space_check(s, &e);
  nas_space_free(s);
  assert_one_line(rc, &e);
  assert_non_null(strstr(e.msg, "bogus"));
}

/* The same for a prefix added later (nas_err_prefix). */
static void test_err_prefix_with_newline(void **state) {
  (void)state;
  nas_err e = {0};
  nas_errf(&e, NAS_EINVAL, "field 'a\tb': bad");
  nas_err_prefix(&e, "file\nname.json");
  assert_string_equal(e.msg, "file?name.json: field 'a?b': bad");
}

/* ---- supernet: a choice value beyond int (fuzz_space) ------------------------------------ */

/* A middle choice of 1e999 (inf once parsed) passes the space check (it builds only the first
 * and last choices) and was converted to int when the supernet resolved it (undefined
 * behaviour; DNAS resolves every combination). It is now "a field has the wrong type". */
static void test_supernet_choice_beyond_int(void **state) {
  (void)state;
  char path[400];
  snprintf(path, sizeof path, "%s/inf.json", dir);
  static const char *text =
      "{\"name\":\"inf\",\"input\":[4,4,1],\"classes\":2,\"layers\":["
      "{\"op\":\"conv\",\"out\":{\"choice\":[2,1e999,3]}},{\"op\":\"gap\"},"
      "{\"op\":\"fc\",\"out\":2}]}";
  write_file(path, text, strlen(text));
  nas_supernet *sn = NULL;
  nas_err e = {0};
  if (nas_supernet_load(path, &sn, &e) != NAS_OK) fail_msg("%s", e.msg);
  if (nas_space_check(sn->space, &e) != NAS_OK) fail_msg("%s", e.msg);
  int d[1] = {1};
  assert_int_equal(sn->n_dec, 1);
  nas_sn_layer L[8];
  assert_true(sn->n_slots <= 8);
  int rc = nas_sn_resolve(sn, d, L, &e);
  assert_int_equal(rc, NAS_EINVAL);
  assert_one_line(rc, &e);
  assert_non_null(strstr(e.msg, "layers[0]: a field has the wrong type"));
  nas_supernet_free(sn);
}

/* An input side of 1e932 (inf) was read with cJSON's saturating valueint as INT_MAX, and
 * resolving a slot overflowed in the output-size arithmetic; the supernet now checks the
 * input and classes ranges the network builder uses. */
static void test_supernet_input_out_of_range(void **state) {
  (void)state;
  static const char *const inputs[] = {"[1e932,10,1]", "[10,0,1]", "[10,10,5000]"};
  for (int i = 0; i < 3; i++) {
    char path[400], text[400];
    snprintf(path, sizeof path, "%s/in%d.json", dir, i);
    snprintf(text, sizeof text,
             "{\"name\":\"in\",\"input\":%s,\"classes\":12,\"layers\":["
             "{\"op\":\"conv\",\"k\":{\"choice\":[3,5]}},{\"op\":\"gap\"},"
             "{\"op\":\"fc\",\"out\":12}]}", inputs[i]);
    write_file(path, text, strlen(text));
    nas_supernet *sn = NULL;
    nas_err e = {0};
    int rc = nas_supernet_load(path, &sn, &e);
    assert_null(sn);
    assert_one_line(rc, &e);
    assert_non_null(strstr(e.msg, "supernet in: input must be a fixed [H,W,C] (1..4096)"));
  }
}

/* ---- arch JSON: a network too large to allocate (fuzz_arch's allocation cap) ---------------- */

/* "graph: cannot allocate N bytes for M nodes" did not say which file or layer; the message
 * now names both. Under the sanitizers a terabyte request aborts instead of failing, so the
 * test is skipped there. */
static void test_arch_too_large_names_layer(void **state) {
  (void)state;
  static const char *arch =
      "{\"input\":[4096,4096,3],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":3},"
      "{\"op\":\"conv\",\"out\":4096,\"k\":1},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}";
  nas_net *n = NULL;
  nas_err e = {0};
  int rc = nas_net_build(arch, "huge.json", 4, 1, &n, &e);
  assert_null(n);
  assert_int_equal(rc, NAS_ENOMEM);
  assert_one_line(rc, &e);
  assert_non_null(strstr(e.msg, "huge.json: graph: cannot allocate"));
  assert_non_null(strstr(e.msg, "layer 1 (conv), 4096x4096x4096 per sample, batch 4"));
}

/* ---- measurement CSV: numbers out of the integer range (fuzz_meas_csv) ------------------- */

/* macs = 2.65e93 was converted to long long (undefined behaviour); cin/cout to int likewise. */
static void test_meas_csv_huge_numbers(void **state) {
  (void)state;
  static const char *const rows[] = {
      "t,m,,model,2650009999999999999999999999999999999999999999999999999999999999999999999999999999999999999990,,,,,,,181\n",
      "t,m,l,conv,10,1,1,3,30000000000,1,5,\n",
      "t,m,l,conv,10,1e19,1,3,1,1,5,\n",
      "t,m,l,pool,9216,4096,1024,3,64,64,,0.21e308\n"};
  /* the last: ms * clock overflowed to an infinite cycle count, which the CSV writer then
   * wrote as "inf" and the reader refused (fuzz_meas_csv's round trip) */
  static const char *const col[] = {"'macs'", "'cin'", "'in_bytes'", "'ms'"};
  for (int i = 0; i < 4; i++) {
    char path[400], text[600];
    snprintf(path, sizeof path, "%s/m%d.csv", dir, i);
    snprintf(text, sizeof text, "target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms\n%s",
             rows[i]);
    write_file(path, text, strlen(text));
    nas_meas *r = NULL;
    int n = 0;
    nas_err e = {0};
    int rc = nas_meas_read_csv(path, NULL, 180.0, &r, &n, &e);
    assert_null(r);
    assert_int_equal(rc, NAS_EFORMAT);
    assert_one_line(rc, &e);
    assert_non_null(strstr(e.msg, col[i]));
    assert_non_null(strstr(e.msg, ":2:"));
  }
}

/* ---- board log: a target id that is no id (fuzz_board_log) -------------------------------- */

/* A board log for target "#tm32f446re" was ingested; written as a measurement CSV its rows
 * began with '#' and read back as comments (2 rows ingested, 0 read back). */
static void test_board_log_target_not_an_id(void **state) {
  (void)state;
  static const char *const ids[] = {"#tm32f446re", "stm32\x1b", "a b"};
  for (int i = 0; i < 3; i++) {
    char path[400], text[400];
    snprintf(path, sizeof path, "%s/board%d.txt", dir, i);
    snprintf(text, sizeof text,
             "NAS-BEGIN,v1,kws,%s,1,1\nNAS,0,0,op0,conv,1000,490,800,3x3,1,8,5000\n"
             "NAS,0,-1,total,model,1000,0,0,1,0,0,5100\nNAS-END\n", ids[i]);
    write_file(path, text, strlen(text));
    nas_meas *rows = NULL;
    int n = 0;
    nas_err e = {0};
    int rc = nas_board_ingest(path, NULL, &rows, &n, &e);
    assert_null(rows);
    assert_int_equal(rc, NAS_EFORMAT);
    assert_one_line(rc, &e);
    assert_non_null(strstr(e.msg, ":1: target id"));
  }
}

/* ---- target JSON written back (fuzz_target) ---------------------------------------------- */

/* A per-layer target with an empty "per_layer" object loads, but nas_target_to_json left the
 * object out, so what it wrote did not load ("missing field 'per_layer'"). */
static void test_target_empty_per_layer_round_trip(void **state) {
  (void)state;
  static const char *text =
      "{\"id\":\"x\",\"name\":\"X\",\"core\":\"cortex-m7\",\"clock_mhz\":216,\"sram_bytes\":327680,"
      "\"flash_bytes\":1048576,\"source\":\"s\",\"kernel_library\":\"cmsis-nn\","
      "\"runtime_overhead_sram_bytes\":2048,\"runtime_overhead_flash_bytes\":40960,"
      "\"latency_model\":\"per-layer\",\"linear\":{\"cycles_per_mac\":1.5,\"fixed_cycles\":0},"
      "\"per_layer\":{},\"per_layer_missing\":\"linear\",\"calibrated\":true,\"calibration\":\"c\"}";
  nas_target *t = NULL, *t2 = NULL;
  nas_err e = {0};
  if (nas_target_parse(text, "x.json", NULL, &t, &e) != NAS_OK) fail_msg("%s", e.msg);
  char *back = nas_target_to_json(t);
  assert_non_null(back);
  if (nas_target_parse(back, "x-written.json", NULL, &t2, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_int_equal(t2->model, NAS_LAT_PERLAYER);
  assert_int_equal(t2->missing_linear, 1);
  nas_target_free(t2);
  nas_target_free(t);
  free(back);
}

/* ---- int8 kernels: int32 overflow (fuzz_ckpt, via nas_lower on a stored calibration) ------ */

static char *dupstr(const char *s) {
  char *c = malloc(strlen(s) + 1);
  strcpy(c, s);
  return c;
}

static void tensor(nas_g8_graph *g, int i, int type, int nd, const int *dims, float scale,
                   int32_t zp, const void *data, size_t esize) {
  nas_g8_tensor *t = &g->tensors[i];
  t->name = dupstr(i ? "t" : "in");
  t->type = type, t->ndim = nd, t->nq = 1;
  memcpy(t->dims, dims, sizeof(int) * (size_t)nd);
  t->scale = malloc(sizeof(float)), t->zero_point = malloc(sizeof(int32_t));
  t->scale[0] = scale, t->zero_point[0] = zp;
  t->bytes = nas_g8_numel(t) * esize;
  if (data) {
    t->data = malloc(t->bytes);
    memcpy(t->data, data, t->bytes);
  }
}

/* input [1,4] -> FULLY_CONNECTED(weights [1,4], bias [1]) -> output [1,1]. */
static void fc_graph(nas_g8_graph *g, int8_t w, int32_t bias, float out_scale, int32_t out_zp) {
  memset(g, 0, sizeof *g);
  g->ntensors = 4, g->nops = 1;
  g->tensors = calloc(4, sizeof *g->tensors);
  g->ops = calloc(1, sizeof *g->ops);
  const int xd[2] = {1, 4}, wd[2] = {1, 4}, bd[1] = {1}, yd[2] = {1, 1};
  const int8_t wv[4] = {w, w, w, w};
  tensor(g, 0, NAS_G8_INT8, 2, xd, 1.0f, 0, NULL, 1);
  tensor(g, 1, NAS_G8_INT8, 2, wd, 1.0f, 0, wv, 1);
  tensor(g, 2, NAS_G8_INT32, 1, bd, 1.0f, 0, &bias, 4);
  tensor(g, 3, NAS_G8_INT8, 2, yd, out_scale, out_zp, NULL, 1);
  g->ops[0] = (nas_g8_op){.kind = NAS_G8_FULLY_CONNECTED, .nin = 3, .in = {0, 1, 2}, .out = 3};
  g->input = 0, g->output = 3;
}

/* A bias next to INT32_MAX (from a calibration with a near-zero range) made the FC
 * accumulator overflow; such a graph is now refused, and a normal one still passes. */
static void test_g8_accumulator_overflow_refused(void **state) {
  (void)state;
  nas_g8_graph g;
  nas_err e = {0};
  fc_graph(&g, 127, INT32_MAX - 100, 1.0f, 0);
  int rc = nas_g8_validate(&g, &e);
  assert_int_equal(rc, NAS_EINVAL);
  assert_one_line(rc, &e);
  assert_non_null(strstr(e.msg, "operator 0 (FULLY_CONNECTED)"));
  assert_non_null(strstr(e.msg, "int32 accumulator"));
  nas_g8_graph_free(&g);
  fc_graph(&g, 127, 1000, 1.0f, 0);
  assert_int_equal(nas_g8_validate(&g, &e), NAS_OK);
  nas_g8_graph_free(&g);
}

/* A requantisation multiplier >= 2^30 (output scale 2^-31) saturates the product at
 * INT32_MAX - 1; adding the output zero point 64 overflowed int32 and the result wrapped to
 * -128. The defined result is the top of the range. */
static void test_g8_requant_saturates(void **state) {
  (void)state;
  nas_g8_graph g;
  nas_err e = {0};
  fc_graph(&g, 1, 0, 0x1p-31f, 64);
  if (nas_g8_validate(&g, &e) != NAS_OK) fail_msg("%s", e.msg);
  const int8_t in[4] = {100, 100, 100, 100};
  int8_t out = 0;
  if (nas_g8_run(&g, in, &out, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_int_equal(out, 127);
  nas_g8_graph_free(&g);
}

/* The same for QUANTIZE (int8 -> int8 with the same huge ratio of scales). */
static void test_g8_quantize_saturates(void **state) {
  (void)state;
  nas_g8_graph g;
  memset(&g, 0, sizeof g);
  g.ntensors = 2, g.nops = 1;
  g.tensors = calloc(2, sizeof *g.tensors);
  g.ops = calloc(1, sizeof *g.ops);
  const int d[2] = {1, 2};
  tensor(&g, 0, NAS_G8_INT8, 2, d, 1.0f, 0, NULL, 1);
  tensor(&g, 1, NAS_G8_INT8, 2, d, 0x1p-31f, 64, NULL, 1);
  g.ops[0] = (nas_g8_op){.kind = NAS_G8_QUANTIZE, .nin = 1, .in = {0}, .out = 1};
  g.input = 0, g.output = 1;
  nas_err e = {0};
  const int8_t in[2] = {100, -100};
  int8_t out[2] = {0, 0};
  if (nas_g8_run(&g, in, out, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_int_equal(out[0], 127);
  assert_int_equal(out[1], -128);
  nas_g8_graph_free(&g);
}

/* The fuzzer's checkpoint inputs (CRC appended as the harness does) through the harness's
 * path: load, build, unpack the blob, stored calibration, lower, run. */
static int ckpt_path(const char *name, char *path, size_t cap) {
  const char *src = getenv("NAS_SOURCE_DIR");
  char in[1024];
  snprintf(in, sizeof in, "%s/fuzz/corpus/ckpt/%s", src ? src : NAS_SOURCE_DIR, name);
  FILE *f = fopen(in, "rb");
  if (!f) return -1;
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 4, f);
  fclose(f);
  uLong c = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)n);
  for (int k = 0; k < 4; k++) buf[n + (size_t)k] = (unsigned char)(c >> (8 * k));
  snprintf(path, cap, "%s/%s.ckpt", dir, name);
  write_file(path, buf, n + 4);
  return 0;
}

static int lower_stored(const char *name, nas_err *e) {
  char path[600];
  if (ckpt_path(name, path, sizeof path)) fail_msg("fuzz/corpus/ckpt/%s not found", name);
  nas_ckpt ck;
  if (nas_ckpt_load(path, &ck, e) != NAS_OK) fail_msg("%s", e->msg);
  nas_net *net = NULL;
  if (nas_net_build(ck.arch_json, name, 1, 1, &net, e) != NAS_OK) fail_msg("%s", e->msg);
  if (nas_ckpt_apply(&ck, net->g, e) != NAS_OK) fail_msg("%s", e->msg);
  FILE *f = fopen(path, "rb");
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  nas_cand_float cf;
  if (nas_cand_unpack_float(buf, n, name, &cf, e) != NAS_OK) fail_msg("%s", e->msg);
  nas_calib c;
  memset(&c, 0, sizeof c);
  if (nas_cand_calib(&cf, net->g, &c, e) != NAS_OK) fail_msg("%s", e->msg);
  nas_g8_graph g8;
  int rc = nas_lower(net, &c, NULL, &g8, e);
  if (rc == NAS_OK) {
    size_t nin = nas_g8_numel(&g8.tensors[g8.input]), nout = nas_g8_numel(&g8.tensors[g8.output]);
    int8_t *x = calloc(nin, 1), *y = malloc(nout);
    rc = nas_g8_run(&g8, x, y, e);
    free(x), free(y);
    nas_g8_graph_free(&g8);
  }
  nas_calib_free(&c);
  nas_cand_float_free(&cf);
  nas_net_free(net);
  nas_ckpt_free(&ck);
  return rc;
}

static void test_ckpt_fuzz_inputs(void **state) {
  (void)state;
  nas_err e = {0};
  int rc = lower_stored("regress-fc-bias-overflow", &e);
  assert_int_equal(rc, NAS_EINVAL);
  assert_one_line(rc, &e);
  assert_non_null(strstr(e.msg, "int32 accumulator"));
  nas_err e2 = {0};
  assert_int_equal(lower_stored("regress-requant-overflow", &e2), NAS_OK);
  /* A BN running mean of NaN (checkpoints keep values bit for bit, NaN included) made the
   * folded bias NaN, converted to int32 (undefined behaviour); lowering now refuses it. */
  nas_err e3 = {0};
  rc = lower_stored("regress-bn-mean-nan", &e3);
  assert_int_equal(rc, NAS_EINVAL);
  assert_one_line(rc, &e3);
  assert_non_null(strstr(e3.msg, "layer 0 (conv): weights, bias or batch-norm statistics are not finite"));
  /* A BN gamma of 1.8e-43 folded into weights so small that their int8 scale m / 127
   * underflowed to 0; the zero bias over that zero scale was 0/0 = NaN, converted to int32.
   * It lowers now (the tiny weights quantise to 0). */
  nas_err e4 = {0};
  if (lower_stored("regress-bn-gamma-denormal", &e4) != NAS_OK) fail_msg("%s", e4.msg);
}

/* The same two conversions directly: a weight channel whose scale would underflow gets scale
 * 1 (its weights quantise to 0), and a zero bias over a zero scale is 0. */
static void test_quant_degenerate_scales(void **state) {
  (void)state;
  const float w[4] = {1e-44f, -1e-44f, 0.5f, -0.25f};
  int8_t q[4];
  float ws[2];
  nas_q_weights(w, 2, 2, 2, 1, q, ws);
  assert_true(ws[0] == 1.0f);
  assert_int_equal(q[0], 0);
  assert_int_equal(q[1], 0);
  assert_true(ws[1] == 0.5f / 127.0f);
  assert_int_equal(q[2], 127);
  const float b[2] = {0.0f, 3.0f}, zero[2] = {0.0f, 0.0f};
  int32_t qb[2] = {7, 7};
  nas_q_bias(b, 2, 0.0f, zero, qb);
  assert_int_equal(qb[0], 0);
  assert_int_equal(qb[1], INT32_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_target_key_with_newline),
      cmocka_unit_test(test_space_name_with_newline),
      cmocka_unit_test(test_err_prefix_with_newline),
      cmocka_unit_test(test_supernet_choice_beyond_int),
      cmocka_unit_test(test_supernet_input_out_of_range),
      cmocka_unit_test(test_arch_too_large_names_layer),
      cmocka_unit_test(test_meas_csv_huge_numbers),
      cmocka_unit_test(test_board_log_target_not_an_id),
      cmocka_unit_test(test_target_empty_per_layer_round_trip),
      cmocka_unit_test(test_g8_accumulator_overflow_refused),
      cmocka_unit_test(test_g8_requant_saturates),
      cmocka_unit_test(test_g8_quantize_saturates),
      cmocka_unit_test(test_ckpt_fuzz_inputs),
      cmocka_unit_test(test_quant_degenerate_scales),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
