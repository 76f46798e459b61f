/* tests/test_deploy_models.c: the four MLPerf Tiny reference models (../shared/models, see
 * SOURCES.md there) import with the documented tensors and quantisation, plan, and run close to
 * Arm NN's CpuRef outputs stored in tests/fixtures/armnn_outputs.txt (made by
 * make_armnn_fixture.py; the bounds are explained above test_models_vs_armnn); the TFLite
 * reader refuses bad files with a clean error, including under a deterministic fuzz
 * (truncations and byte flips: success or a clean error, never an out-of-bounds read). */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/graph8.h"
#include "tests/test_deploy_util.h"
#include "tests/test_util.h"

/* ---- reference models ------------------------------------------------------------------ */

typedef struct model_info {
  const char *file;
  int ntensors, nops;
  const char *in_name;
  int in_nd, in_dims[4];
  float in_scale;
  int in_zp;
  const char *out_name;
  int out_nd, out_dims[2];
  float out_scale;
  int out_zp;
  int per_axis;      /* tensors with more than one scale */
  int nconv, ndw, nfc, nadd;
} model_info;

static const model_info MODELS[] = {
    {"kws_ref_model.tflite", 35, 13, "input_1", 4, {1, 49, 10, 1}, 0.5847029089927673f, 83,
     "Identity", 2, {1, 12}, 0.00390625f, -128, 18, 5, 4, 1, 0},
    {"vww_96_int8.tflite", 89, 31, "input_1_int8", 4, {1, 96, 96, 3}, 0.003921568859368563f, -128,
     "Identity_int8", 2, {1, 2}, 0.00390625f, -128, 54, 14, 13, 1, 0},
    {"pretrainedResnet_quant.tflite", 38, 16, "input_1_int8", 4, {1, 32, 32, 3}, 1.0f, -128,
     "Identity_int8", 2, {1, 10}, 0.00390625f, -128, 18, 9, 0, 1, 3},
    {"ad01_int8.tflite", 31, 10, "input_1", 2, {1, 640}, 0.3910152316093445f, 89, "Identity", 2,
     {1, 640}, 0.36449846625328064f, 96, 0, 0, 0, 10, 0},
};

static void test_models_import(void **state) {
  (void)state;
  char dir[800], path[1024];
  REQUIRE_MODELS(dir);
  for (int m = 0; m < NMODELS; m++) {
    const model_info *mi = &MODELS[m];
    snprintf(path, sizeof path, "%s/%s", dir, mi->file);
    nas_g8_graph g;
    nas_err e = {0};
    int rc = nas_tflite_read(path, &g, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, NAS_OK);
    assert_int_equal(g.ntensors, mi->ntensors);
    assert_int_equal(g.nops, mi->nops);
    const nas_g8_tensor *ti = &g.tensors[g.input], *to = &g.tensors[g.output];
    assert_string_equal(ti->name, mi->in_name);
    assert_int_equal(ti->ndim, mi->in_nd);
    assert_memory_equal(ti->dims, mi->in_dims, sizeof(int) * (size_t)mi->in_nd);
    assert_int_equal(ti->nq, 1);
    assert_true(ti->scale[0] == mi->in_scale);
    assert_int_equal(ti->zero_point[0], mi->in_zp);
    assert_string_equal(to->name, mi->out_name);
    assert_int_equal(to->ndim, mi->out_nd);
    assert_memory_equal(to->dims, mi->out_dims, sizeof(int) * (size_t)mi->out_nd);
    assert_true(to->scale[0] == mi->out_scale);
    assert_int_equal(to->zero_point[0], mi->out_zp);
    int per_axis = 0, nconv = 0, ndw = 0, nfc = 0, nadd = 0;
    for (int i = 0; i < g.ntensors; i++) {
      const nas_g8_tensor *t = &g.tensors[i];
      if (t->nq > 1) {
        per_axis++;
        assert_int_equal(t->qdim, t->ndim == 4 && t->dims[0] == 1 && g.tensors[i].type == NAS_G8_INT8 ? 3 : 0);
      }
    }
    for (int o = 0; o < g.nops; o++) {
      int k = g.ops[o].kind;
      nconv += k == NAS_G8_CONV_2D, ndw += k == NAS_G8_DEPTHWISE_CONV_2D;
      nfc += k == NAS_G8_FULLY_CONNECTED, nadd += k == NAS_G8_ADD;
    }
    assert_int_equal(per_axis, mi->per_axis);
    assert_int_equal(nconv, mi->nconv), assert_int_equal(ndw, mi->ndw);
    assert_int_equal(nfc, mi->nfc), assert_int_equal(nadd, mi->nadd);
    if (m == 3) /* ad01: 9 of the 10 FC layers have a fused RELU */
      for (int o = 0; o < 10; o++) assert_int_equal(g.ops[o].act, o < 9 ? NAS_G8_ACT_RELU : NAS_G8_ACT_NONE);
    check_plan(&g);
    nas_g8_graph_free(&g);
  }
}


/* Runs every operator with one buffer per activation (no planner) and returns them. */
static int8_t **run_collect(const nas_g8_graph *g, const int8_t *x) {
  int8_t **act = calloc((size_t)g->ntensors, sizeof *act);
  for (int i = 0; i < g->ntensors; i++)
    if (!g->tensors[i].data) act[i] = calloc(nas_g8_numel(&g->tensors[i]) + 1, 1);
  memcpy(act[g->input], x, nas_g8_numel(&g->tensors[g->input]));
  nas_err e = {0};
  for (int o = 0; o < g->nops; o++) assert_int_equal(nas_g8_run_op(g, o, act, &e), NAS_OK);
  return act;
}

/* Agreement with Arm NN CpuRef on the fixture (4 inputs per model), in quantisation steps.
 *
 * Why the bounds are not 1: Arm NN's CpuRef dequantises, computes each layer in float and
 * rounds the result once, i.e. it is correctly rounded; TFLite Micro (and this runtime)
 * requantise with a Q31 multiplier and two roundings (saturating rounding doubling high
 * multiply, then rounding divide by 2^right_shift), which can land one step off the correctly
 * rounded value when the exact result is within 0.5 * 2^-right_shift of a half-integer.
 * test_deploy_armnn.c shows, layer by layer with a live Arm NN, that every single layer agrees
 * within 1 step and that every disagreement is such a near-tie. Through the chain a 1-step flip
 * in a layer's input moves the next layers by up to (input scale x weight mass / output
 * scale) steps: on noise inputs the differences grow to 5 steps in pretrainedResnet's logits
 * (its ADD and FC layers have gains above 1; a correctly rounded per-layer emulation differs from
 * Arm NN there too, from exact ties in the 8x8 AVERAGE_POOL that float breaks either way).
 *
 * TOL_LOGITS bounds the last tensor before SOFTMAX (ad01 has no softmax: its output). The
 * softmax output is then bounded from the measured logit difference D, not guessed: a change
 * of at most d = beta * input_scale * D in every logit moves a probability by at most
 * tanh(d / 2) (the worst case moves one logit up and the others down), i.e.
 * 256 * tanh(d / 2) output steps of 1/256, plus 1 step for each side's output rounding and
 * the fixed-point exp. Near a tie between the top two classes this is the amplification that
 * turns 5 logit steps of pretrainedResnet into tens of output steps. */
static const int TOL_LOGITS[NMODELS] = {2, 2, 5, 2};

typedef struct armnn_record {
  int model, seed, logits, n; /* logits: 1 for the pre-softmax tensor, 0 for the output */
  long sum;                   /* byte sum of the generated input */
  int *v;                     /* [n] Arm NN's int8 values, owned */
} armnn_record;

/* Reads tests/fixtures/armnn_outputs.txt; returns the record count. */
static int read_armnn_fixture(armnn_record *rec, int cap) {
  char path[1024];
  const char *src = getenv("NAS_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/fixtures/armnn_outputs.txt", src ? src : NAS_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char line[65536];
  char file[128], what[16];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    assert_true(n < cap);
    armnn_record *r = &rec[n++];
    int pos = 0;
    assert_int_equal(sscanf(line, "%127s %d %ld %15s %d%n", file, &r->seed, &r->sum, what, &r->n, &pos), 5);
    r->model = -1;
    for (int k = 0; k < NMODELS; k++) if (!strcmp(MODELS[k].file, file)) r->model = k;
    assert_true(r->model >= 0);
    r->logits = !strcmp(what, "logits");
    assert_true(r->logits || !strcmp(what, "out"));
    assert_true(r->n > 0 && r->n <= 4096);
    r->v = malloc(sizeof(int) * (size_t)r->n);
    const char *p = line + pos;
    for (int i = 0; i < r->n; i++) {
      char *end;
      r->v[i] = (int)strtol(p, &end, 10);
      assert_true(end != p);
      p = end;
    }
  }
  fclose(f);
  return n;
}

static int max_abs_diff(const int *ref, const int8_t *ours, int n) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    int d = abs(ref[i] - ours[i]);
    if (d > m) m = d;
  }
  return m;
}

/* Output steps a SOFTMAX (output scale 1/256) may move when each logit moves by <= D steps. */
static int softmax_bound(const nas_g8_graph *g, int D) {
  const nas_g8_op *sm = &g->ops[g->nops - 1];
  double d = (double)sm->beta * g->tensors[sm->in[0]].scale[0] * D;
  return (int)ceil(256.0 * tanh(d / 2.0)) + 2;
}

static void test_models_vs_armnn(void **state) {
  (void)state;
  char dir[800], path[1024];
  REQUIRE_MODELS(dir);
  static armnn_record rec[64];
  int nrec = read_armnn_fixture(rec, 64);
  int maxsm[NMODELS] = {0}, maxout[NMODELS] = {0}, maxlog[NMODELS] = {0}, maxbound[NMODELS] = {0}, cases[NMODELS] = {0};
  for (int m = 0; m < NMODELS; m++) {
    nas_g8_graph g;
    nas_err e = {0};
    snprintf(path, sizeof path, "%s/%s", dir, MODELS[m].file);
    assert_int_equal(nas_tflite_read(path, &g, &e), NAS_OK);
    const int has_sm = g.ops[g.nops - 1].kind == NAS_G8_SOFTMAX;
    const int t_log = has_sm ? g.ops[g.nops - 1].in[0] : g.output;
    for (int r = 0; r < nrec; r++) {
      if (rec[r].model != m || rec[r].logits) continue;
      const armnn_record *out = &rec[r], *lg = NULL;
      for (int k = 0; k < nrec; k++)
        if (rec[k].model == m && rec[k].seed == out->seed && rec[k].logits) lg = &rec[k];
      assert_true(!has_sm || lg != NULL); /* every softmax model has its logits recorded */
      size_t nin = nas_g8_numel(&g.tensors[g.input]);
      int8_t *x = malloc(nin), *y = malloc(nas_g8_numel(&g.tensors[g.output]));
      make_input(out->seed, x, nin, g.tensors[g.input].zero_point[0]);
      long s = 0;
      for (size_t i = 0; i < nin; i++) s += x[i];
      assert_int_equal(s, out->sum);
      assert_int_equal((size_t)out->n, nas_g8_numel(&g.tensors[g.output]));
      int rc = nas_g8_run(&g, x, y, &e);
      if (rc) fprintf(stderr, "%s\n", e.msg);
      assert_int_equal(rc, NAS_OK);
      int8_t **act = run_collect(&g, x); /* the planned arena and separate buffers agree */
      assert_memory_equal(act[g.output], y, (size_t)out->n);
      int8_t *yr = malloc((size_t)out->n); /* and the MCU runtime, linked in, byte for byte */
      assert_int_equal(nas_g8_rt_run(&g, x, yr, &e), NAS_OK);
      assert_memory_equal(yr, y, (size_t)out->n);
      free(yr);
      int dout = max_abs_diff(out->v, y, out->n);
      int dlog = dout;
      if (lg) {
        assert_int_equal((size_t)lg->n, nas_g8_numel(&g.tensors[t_log]));
        dlog = max_abs_diff(lg->v, act[t_log], lg->n);
      }
      assert_true(dlog <= TOL_LOGITS[m]);
      if (has_sm) {
        int bound = softmax_bound(&g, dlog);
        assert_true(dout <= bound);
        if (bound > maxbound[m]) maxbound[m] = bound;
        /* Our SOFTMAX on Arm NN's own logits: the kernel alone agrees within 1 step. */
        int8_t **a2 = calloc((size_t)g.ntensors, sizeof *a2), *lq = malloc((size_t)lg->n);
        for (int i = 0; i < lg->n; i++) lq[i] = (int8_t)lg->v[i];
        a2[t_log] = lq, a2[g.output] = y;
        assert_int_equal(nas_g8_run_op(&g, g.nops - 1, a2, &e), NAS_OK);
        int dsm = max_abs_diff(out->v, y, out->n);
        assert_true(dsm <= 1);
        if (dsm > maxsm[m]) maxsm[m] = dsm;
        free(lq), free(a2);
      }
      if (dout > maxout[m]) maxout[m] = dout;
      if (dlog > maxlog[m]) maxlog[m] = dlog;
      cases[m]++;
      for (int i = 0; i < g.ntensors; i++) free(act[i]);
      free(act), free(x), free(y);
    }
    assert_true(cases[m] > 0);
    if (has_sm)
      printf("%-30s vs Arm NN CpuRef (%d inputs): pre-softmax max diff %d steps (bound %d); "
             "softmax output max diff %d steps (bound from the logit diff, worst input: %d); "
             "our SOFTMAX on Arm NN's logits max diff %d step\n",
             MODELS[m].file, cases[m], maxlog[m], TOL_LOGITS[m], maxout[m], maxbound[m], maxsm[m]);
    else
      printf("%-30s vs Arm NN CpuRef (%d inputs): output max diff %d steps (bound %d)\n",
             MODELS[m].file, cases[m], maxout[m], TOL_LOGITS[m]);
    nas_g8_graph_free(&g);
  }
  for (int r = 0; r < nrec; r++) free(rec[r].v);
}

/* ---- reader fuzz ----------------------------------------------------------------------- */

static void test_reader_fuzz(void **state) {
  (void)state;
  char dir[800], path[1024];
  REQUIRE_MODELS(dir);
  uint32_t rng = 12345;
  int ok = 0, errs = 0, runs = 0;
  for (int m = 0; m < NMODELS; m++) {
    snprintf(path, sizeof path, "%s/%s", dir, MODELS[m].file);
    size_t n = 0;
    uint8_t *orig = slurp(path, &n);
    assert_non_null(orig);
    /* Truncations: every length below 64, then 150 lengths spread over the file; each
     * truncated copy lives in its own exact-size allocation so ASan sees any overread. */
    for (int k = 0; k < 64 + 150; k++) {
      size_t len = k < 64 ? (size_t)k : (size_t)((double)(k - 64) / 150 * (double)n);
      uint8_t *b = malloc(len ? len : 1);
      memcpy(b, orig, len);
      nas_g8_graph g;
      nas_err e = {0};
      int rc = nas_tflite_parse(b, len, MODELS[m].file, &g, &e);
      if (rc == NAS_OK) ok++, nas_g8_graph_free(&g);
      else {
        errs++;
        assert_true(rc == NAS_EFORMAT || rc == NAS_EINVAL);
        assert_true(strlen(e.msg) > 0 && !strchr(e.msg, '\n'));
      }
      free(b);
    }
    /* Byte flips: 600 per model, biased to the first 4 KiB and the last 16 KiB where the
     * flatbuffer's tables and vtables live; successes on the small models are also run. */
    uint8_t *b = malloc(n);
    int8_t *x = malloc(1 << 15), *y = malloc(1 << 12), *yrt = malloc(1 << 12);
    for (int k = 0; k < 600; k++) {
      memcpy(b, orig, n);
      rng = rng * 1664525u + 1013904223u;
      size_t at;
      if (k % 3 == 0) at = (rng >> 8) % (n < 4096 ? n : 4096);
      else if (k % 3 == 1) at = n - 1 - (rng >> 8) % (n < 16384 ? n : 16384);
      else at = (rng >> 4) % n;
      rng = rng * 1664525u + 1013904223u;
      b[at] ^= (uint8_t)(1u + (rng >> 24) % 255u);
      nas_g8_graph g;
      nas_err e = {0};
      int rc = nas_tflite_parse(b, n, MODELS[m].file, &g, &e);
      if (rc == NAS_OK) {
        ok++;
        size_t ni = nas_g8_numel(&g.tensors[g.input]), no = nas_g8_numel(&g.tensors[g.output]);
        if (m != 1 && runs < 300 && ni <= (1 << 15) && no <= (1 << 12)) {
          memset(x, 1, ni);
          rc = nas_g8_run(&g, x, y, &e);
          assert_true(rc == NAS_OK || rc == NAS_ENOMEM);
          if (rc == NAS_OK) { /* the MCU runtime computes the same bytes on odd parameters */
            assert_int_equal(nas_g8_rt_run(&g, x, yrt, &e), NAS_OK);
            assert_memory_equal(yrt, y, no);
          }
          runs++;
        }
        nas_g8_graph_free(&g);
      } else {
        errs++;
        assert_true(rc == NAS_EFORMAT || rc == NAS_EINVAL);
        assert_true(strlen(e.msg) > 0 && !strchr(e.msg, '\n'));
      }
    }
    free(b), free(x), free(y), free(yrt), free(orig);
  }
  printf("reader fuzz: %d parsed, %d refused cleanly, %d mutated models run\n", ok, errs, runs);
}

/* Unsupported ops and missing files are named. */
static void test_reader_errors(void **state) {
  (void)state;
  nas_g8_graph g;
  nas_err e = {0};
  assert_int_equal(nas_tflite_read("/nonexistent/x.tflite", &g, &e), NAS_EIO);
  assert_non_null(strstr(e.msg, "/nonexistent/x.tflite"));
  const uint8_t junk[16] = {1, 2, 3, 4, 'X', 'Y', 'Z', 'W'};
  assert_int_equal(nas_tflite_parse(junk, sizeof junk, "junk.tflite", &g, &e), NAS_EFORMAT);
  assert_non_null(strstr(e.msg, "junk.tflite"));
  char dir[800], path[1024];
  REQUIRE_MODELS(dir);
  /* Turn kws's SOFTMAX opcode into MUL (18): the deprecated_builtin_code byte. */
  snprintf(path, sizeof path, "%s/%s", dir, MODELS[0].file);
  size_t n = 0;
  uint8_t *b = slurp(path, &n);
  assert_non_null(b);
  nas_g8_graph ok;
  assert_int_equal(nas_tflite_parse(b, n, "kws.tflite", &ok, &e), NAS_OK);
  nas_g8_graph_free(&ok);
  int changed = 0;
  /* Locate operator_codes: model root table, field 1. */
  uint32_t root = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  int32_t so = (int32_t)((uint32_t)b[root] | (uint32_t)b[root + 1] << 8 | (uint32_t)b[root + 2] << 16 | (uint32_t)b[root + 3] << 24);
  uint32_t vt = root - (uint32_t)so;
  uint32_t foff = (uint32_t)b[vt + 6] | (uint32_t)b[vt + 7] << 8;
  uint32_t fpos = root + foff;
  uint32_t vec = fpos + ((uint32_t)b[fpos] | (uint32_t)b[fpos + 1] << 8 | (uint32_t)b[fpos + 2] << 16 | (uint32_t)b[fpos + 3] << 24);
  uint32_t count = b[vec] | (uint32_t)b[vec + 1] << 8;
  for (uint32_t i = 0; i < count && !changed; i++) {
    uint32_t ep = vec + 4 + 4 * i;
    uint32_t t = ep + ((uint32_t)b[ep] | (uint32_t)b[ep + 1] << 8 | (uint32_t)b[ep + 2] << 16 | (uint32_t)b[ep + 3] << 24);
    int32_t s2 = (int32_t)((uint32_t)b[t] | (uint32_t)b[t + 1] << 8 | (uint32_t)b[t + 2] << 16 | (uint32_t)b[t + 3] << 24);
    uint32_t v2 = t - (uint32_t)s2;
    uint32_t vlen = b[v2] | (uint32_t)b[v2 + 1] << 8;
    uint32_t o_dep = vlen > 4 ? (b[v2 + 4] | (uint32_t)b[v2 + 5] << 8) : 0;
    uint32_t o_bc = vlen > 10 ? (b[v2 + 10] | (uint32_t)b[v2 + 11] << 8) : 0;
    int code = o_dep ? (int8_t)b[t + o_dep] : 0;
    if (o_bc) {
      int bc = (int)b[t + o_bc];
      if (bc > code) code = bc;
    }
    if (code == 25) {
      if (o_dep) b[t + o_dep] = 42; /* DIV (MUL became supported with the recurrent ops) */
      if (o_bc) b[t + o_bc] = 42, b[t + o_bc + 1] = 0, b[t + o_bc + 2] = 0, b[t + o_bc + 3] = 0;
      changed = 1;
    }
  }
  assert_true(changed);
  assert_int_equal(nas_tflite_parse(b, n, "kws.tflite", &g, &e), NAS_EINVAL);
  assert_string_equal(e.msg, "kws.tflite: operator 12: unsupported op DIV");
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_models_import),     cmocka_unit_test(test_models_vs_armnn),
      cmocka_unit_test(test_reader_errors),     cmocka_unit_test(test_reader_fuzz),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
