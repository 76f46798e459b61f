/* Pricing against deployment (latency/cost_graph.c): for every reference architecture that
 * lowers to int8, the priced arena equals the planner's peak over the graph lowered from the
 * calibrated network, equals the <NAME>_ARENA_BYTES the C export writes (lstm/gru nets too,
 * since they lower: their state and gate tensors are planned). Planner invariants (no two tensors alive at once overlap; the per-layer
 * arena in use peaks at the arena). Checkpoint and .tflite pricing (the four reference models
 * of ../shared/models: MACs and parameters against hand counts from their layer shapes), and
 * `nas profile` with each input through the built binary ($NAS_BIN). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"
#include "deploy/lower_shape.h"
#include "latency/cost.h"
#include "export/export_c.h"
#include "train/checkpoint.h"
#include "tests/test_util.h"

static const char *src_dir(void) {
  const char *d = getenv("NAS_SOURCE_DIR");
  return d ? d : NAS_SOURCE_DIR;
}

static char tmp[256];

static int setup(void **st) {
  (void)st;
  snprintf(tmp, sizeof tmp, "/tmp/nas-price-XXXXXX");
  return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **st) {
  (void)st;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static nas_target *target(const char *id) {
  nas_target *t = NULL;
  nas_err e = {0};
  if (nas_target_open(id, NULL, &t, &e)) fail_msg("target %s: %s", id, e.msg);
  return t;
}

/* The target priced for the engine's own C export (runtime nas-c): its arena is the
 * planner's, byte for byte the export's <NAME>_ARENA_BYTES, which the checks below compare. */
static nas_target *target_nas_c(const char *id) {
  nas_target *t = target(id);
  nas_err e = {0};
  if (nas_target_set_runtime(t, NAS_RT_NAS_C, &e)) fail_msg("target %s: %s", id, e.msg);
  return t;
}

/* A whole file, NUL-terminated (caller frees). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("%s: cannot open", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = 0;
  return buf;
}

/* No two planned tensors whose lifetimes intersect share a byte; an operator's scratch
 * overlaps no tensor live at that operator; every activation tensor some operator touches is
 * placed; the peak is the largest end. */
static void check_plan(const nas_g8_graph *g, const nas_g8_plan *p) {
  size_t maxend = 0;
  assert_int_equal(p->nops, g->nops);
  for (int i = 0; i < g->nops; i++) {
    int opt = 0;
    const size_t sz = nas_g8_op_scratch(g, i, &opt);
    if (!sz || (opt && p->scratch[i] < 0)) {
      assert_int_equal(p->scratch[i], -1);
      continue;
    }
    assert_true(p->scratch[i] >= 0 && p->scratch[i] % 16 == 0);
    const size_t s0 = (size_t)p->scratch[i], s1 = s0 + sz;
    if (s1 > maxend) maxend = s1;
    for (int t = 0; t < g->ntensors; t++) {
      if (p->offset[t] < 0 || p->first[t] > i || p->last[t] < i) continue;
      const size_t t0 = (size_t)p->offset[t], t1 = t0 + nas_g8_numel(&g->tensors[t]);
      if (t0 < s1 && s0 < t1) fail_msg("operator %d's scratch overlaps tensor %d", i, t);
    }
  }
  for (int a = 0; a < g->ntensors; a++) {
    if (p->offset[a] < 0) continue;
    assert_null(g->tensors[a].data);
    assert_true(p->offset[a] % 16 == 0);
    size_t ea = (size_t)p->offset[a] + nas_g8_numel(&g->tensors[a]);
    if (ea > maxend) maxend = ea;
    for (int b = a + 1; b < g->ntensors; b++) {
      if (p->offset[b] < 0 || p->last[a] < p->first[b] || p->last[b] < p->first[a]) continue;
      size_t eb = (size_t)p->offset[b] + nas_g8_numel(&g->tensors[b]);
      if ((size_t)p->offset[a] < eb && (size_t)p->offset[b] < ea)
        fail_msg("tensors %d '%s' [%ld,%zu) and %d '%s' [%ld,%zu) overlap while both alive", a,
                 g->tensors[a].name, p->offset[a], ea, b, g->tensors[b].name, p->offset[b], eb);
    }
  }
  for (int i = 0; i < g->nops; i++) {
    assert_true(p->offset[g->ops[i].out] >= 0);
    for (int k = 0; k < g->ops[i].nin; k++) {
      int t = g->ops[i].in[k];
      if (t >= 0 && !g->tensors[t].data) assert_true(p->offset[t] >= 0 && p->first[t] <= i && p->last[t] >= i);
    }
  }
  assert_true(p->offset[g->input] >= 0 && p->offset[g->output] >= 0);
  assert_int_equal(p->last[g->output], g->nops - 1);
  assert_int_equal(p->peak, maxend);
}

/* The arena the C export of g declares: "#define <UP>_ARENA_BYTES N" in NAME.h, used by
 * "int8_t arena[<UP>_ARENA_BYTES]" in NAME.c. */
static long long exported_arena(const nas_g8_graph *g, const char *name) {
  nas_err e = {0};
  if (nas_c_export(g, name, tmp, &e)) fail_msg("C export: %s", e.msg);
  char path[512], up[64], def[128], use[128];
  size_t i = 0;
  for (; name[i] && i < sizeof up - 1; i++) up[i] = (char)(name[i] == '-' ? '_' : name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
  up[i] = 0;
  snprintf(def, sizeof def, "#define %s_ARENA_BYTES ", up);
  snprintf(use, sizeof use, "int8_t arena[%s_ARENA_BYTES];", up);
  snprintf(path, sizeof path, "%s/%s.c", tmp, name);
  char *c = slurp(path);
  if (!strstr(c, use)) fail_msg("%s does not declare '%s'", path, use);
  free(c);
  snprintf(path, sizeof path, "%s/%s.h", tmp, name);
  char *h = slurp(path);
  const char *d = strstr(h, def);
  if (!d) fail_msg("%s lacks '%s'", path, def);
  long long v = strtoll(d + strlen(def), NULL, 10);
  free(h);
  return v;
}

static void noise(nas_dataset *ds, int n, const nas_net *net, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  ds->n = n, ds->h = net->in_h, ds->w = net->in_w, ds->c = net->in_c, ds->classes = net->classes;
  size_t per = (size_t)ds->h * ds->w * ds->c;
  ds->x = malloc((size_t)n * per * sizeof(float));
  ds->y = malloc((size_t)n * sizeof(int));
  for (size_t i = 0; i < (size_t)n * per; i++) ds->x[i] = nas_rng_normal(&r);
  for (int i = 0; i < n; i++) ds->y[i] = (int)nas_rng_below(&r, (uint64_t)net->classes);
}

/* Price of arch == planner peak of the calibrated lowering == C export's arena (every
 * reference arch lowers, lstm/gru included); returns 1. */
static int check_arch(const char *json, const char *name, const nas_target *t, int softmax) {
  nas_err e = {0};
  nas_net *net = NULL;
  nas_price *p = NULL;
  nas_lower_cfg lc = {.softmax = softmax};
  if (nas_net_build(json, name, 4, 3, &net, &e)) fail_msg("%s: %s", name, e.msg);
  if (nas_price_net_cfg(net, t, &lc, &p, &e)) fail_msg("%s: price: %s", name, e.msg);
  assert_int_equal(p->peak_sram_bytes, p->arena_bytes + t->rt_sram);
  assert_int_equal(nas_lower_unsupported_layer(net), -1);
  assert_string_equal(p->sram_method, "planner");
  assert_string_equal(p->sram_note, "");
  /* the deployment path: calibrate on data, lower, plan, export */
  nas_dataset d = {0};
  noise(&d, 4, net, 11);
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = 4;
  nas_g8_graph g;
  if (nas_quantize_net(net, &d, &cc, &lc, &g, &e)) fail_msg("%s: lower: %s", name, e.msg);
  free(d.x), free(d.y);
  nas_g8_plan plan;
  assert_int_equal(nas_g8_plan_build(&g, &plan, &e), NAS_OK);
  check_plan(&g, &plan);
  if ((long long)plan.peak != p->arena_bytes)
    fail_msg("%s: priced arena %lld, planner over the calibrated graph %zu", name, p->arena_bytes, plan.peak);
  assert_int_equal(p->n_ops, g.nops);
  long long exp = exported_arena(&g, "m");
  if (exp != p->arena_bytes) fail_msg("%s: priced arena %lld, C export %lld", name, p->arena_bytes, exp);
  /* the per-layer arena in use peaks at the arena, on the layer named */
  long long mx = 0;
  for (int i = 0; i < p->n_layers; i++) mx = p->layers[i].sram_bytes > mx ? p->layers[i].sram_bytes : mx;
  assert_int_equal(mx, p->arena_bytes);
  assert_int_equal(p->layers[p->peak_layer].sram_bytes, p->arena_bytes);
  nas_g8_plan_free(&plan);
  nas_g8_graph_free(&g);
  nas_price_free(p), nas_net_free(net);
  return 1;
}

static void test_reference_archs(void **st) {
  (void)st;
  nas_target *t = target_nas_c("stm32f746");
  char dir[600];
  snprintf(dir, sizeof dir, "%s/search_spaces/reference", src_dir());
  DIR *D = opendir(dir);
  assert_non_null(D);
  int lowered = 0, rnn = 0;
  for (struct dirent *de; (de = readdir(D));) {
    size_t n = strlen(de->d_name);
    if (n < 6 || strcmp(de->d_name + n - 5, ".json")) continue;
    char path[1000];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    char *json = slurp(path);
    if (check_arch(json, de->d_name, t, 0)) lowered++;
    if (strstr(json, "\"lstm\"") || strstr(json, "\"gru\"")) rnn++;
    free(json);
  }
  closedir(D);
  assert_true(lowered >= 7); /* dscnn-s/m/l, fmnist-cnn, crnn-s, gru-s, lstm-s */
  assert_true(rnn >= 3);     /* crnn-s, gru-s, lstm-s: planned too */
  nas_target_free(t);
}

/* Residual adds (mbconv, add from an earlier layer) keep tensors alive across layers;
 * pools and a softmax tail; a target without runtime overhead. */
static void test_residual_softmax(void **st) {
  (void)st;
  nas_target *t = target_nas_c("stm32f767");
  const char *a =
      "{\"input\":[16,12,3],\"classes\":4,\"layers\":[{\"op\":\"conv\",\"out\":8,\"stride\":2},"
      "{\"op\":\"mbconv\",\"out\":8,\"expand\":3,\"residual\":true},{\"op\":\"conv\",\"out\":8},"
      "{\"op\":\"add\",\"from\":0},{\"op\":\"maxpool\"},{\"op\":\"dsconv\",\"out\":12},"
      "{\"op\":\"avgpool\",\"k\":2},{\"op\":\"flatten\"},{\"op\":\"dropout\"},{\"op\":\"fc\",\"out\":4}]}";
  assert_int_equal(check_arch(a, "residual", t, 0), 1);
  assert_int_equal(check_arch(a, "residual+softmax", t, 1), 1);
  nas_target_free(t);
}

static void test_checkpoint(void **st) {
  (void)st;
  nas_target *t = target("stm32f446re");
  char path[400], ap[600];
  snprintf(ap, sizeof ap, "%s/search_spaces/reference/dscnn-s.json", src_dir());
  char *json = slurp(ap);
  nas_err e = {0};
  nas_net *net = NULL;
  if (nas_net_build(json, "dscnn-s", 2, 42, &net, &e)) fail_msg("%s", e.msg);
  snprintf(path, sizeof path, "%s/m.ckpt", tmp);
  if (nas_ckpt_save(path, net->arch_json, "{}", net->g, &e)) fail_msg("%s", e.msg);
  nas_price *a = NULL, *c = NULL;
  if (nas_price_arch(json, "dscnn-s", t, &a, &e)) fail_msg("%s", e.msg);
  if (nas_price_checkpoint(path, t, &c, &e)) fail_msg("%s", e.msg);
  assert_int_equal(c->macs, 2656768);
  assert_int_equal(c->macs, a->macs);
  assert_int_equal(c->params, a->params);
  assert_int_equal(c->flash_bytes, a->flash_bytes);
  assert_int_equal(c->arena_bytes, a->arena_bytes);
  assert_int_equal(c->peak_sram_bytes, a->peak_sram_bytes);
  assert_true(fabs(c->latency_ms - a->latency_ms) < 1e-12);
  nas_price_free(a), nas_price_free(c);
  /* a corrupt checkpoint is an error naming the file */
  FILE *f = fopen(path, "r+b");
  fseek(f, 20, SEEK_SET);
  fputc('#', f);
  fclose(f);
  assert_int_not_equal(nas_price_checkpoint(path, t, &c, &e), NAS_OK);
  assert_null(c);
  if (!strstr(e.msg, "m.ckpt")) fail_msg("message lacks the file: %s", e.msg);
  free(json), nas_net_free(net), nas_target_free(t);
}

/* ---- the reference .tflite models ---------------------------------------------------------- */

typedef struct ref { const char *file; long long macs, params, arena; } ref;

/* MACs and parameters (weights + biases) from the published layer shapes. */
static void hand_counts(ref *r) {
  /* kws_ref_model: MLPerf Tiny DS-CNN, input 49x10x1: conv 10x4 /2 -> 25x5x64, 4 x (dw 3x3 +
   * pw 64->64), avgpool, fc 64->12 */
  long long hw = 25 * 5;
  r[0].macs = hw * 64 * 10 * 4 + 4 * (hw * 64 * 9 + hw * 64 * 64) + 64 * 12;
  r[0].params = (64 * 40 + 64) + 4 * ((9 * 64 + 64) + (64 * 64 + 64)) + (64 * 12 + 12);
  /* vww_96_int8: MobileNetV1 x0.25, input 96x96x3: conv 3x3 /2 -> 8 ch, 13 dw+pw blocks,
   * avgpool, fc 256->2 */
  static const int blk[13][2] = {{1, 16}, {2, 32}, {1, 32}, {2, 64}, {1, 64}, {2, 128}, {1, 128},
                                 {1, 128}, {1, 128}, {1, 128}, {1, 128}, {2, 256}, {1, 256}};
  int s = 48, c = 8;
  long long m = (long long)s * s * 8 * 9 * 3, p = 8 * 27 + 8;
  for (int i = 0; i < 13; i++) {
    s = (s + blk[i][0] - 1) / blk[i][0];
    m += (long long)s * s * c * 9 + (long long)s * s * c * blk[i][1];
    p += (9LL * c + c) + ((long long)c * blk[i][1] + blk[i][1]);
    c = blk[i][1];
  }
  r[1].macs = m + 256 * 2, r[1].params = p + 256 * 2 + 2;
  /* pretrainedResnet_quant: MLPerf Tiny ResNet-8, input 32x32x3: conv 3x3 16; stack 1: 2 x conv
   * 3x3 16->16; stacks 2, 3: conv 3x3 /2, conv 3x3, 1x1 /2 shortcut (16->32 at 16x16,
   * 32->64 at 8x8); avgpool; fc 64->10 */
  r[2].macs = 1024LL * 16 * 27 + 2 * 1024LL * 16 * 144 + 256LL * 32 * (144 + 288 + 16) +
              64LL * 64 * (288 + 576 + 32) + 640;
  r[2].params = (16 * 27 + 16) + 2 * (16 * 144 + 16) + (32 * 144 + 32) + (32 * 288 + 32) +
                (32 * 16 + 32) + (64 * 288 + 64) + (64 * 576 + 64) + (64 * 32 + 64) + 650;
  /* ad01_int8: MLPerf Tiny anomaly-detection auto-encoder: fc 640-128-128-128-128-8-128-128-
   * 128-128-640 */
  static const int fc[11] = {640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640};
  r[3].macs = r[3].params = 0;
  for (int i = 0; i < 10; i++) r[3].macs += (long long)fc[i] * fc[i + 1], r[3].params += (long long)fc[i] * fc[i + 1] + fc[i + 1];
}

static void test_tflite_models(void **st) {
  (void)st;
  /* arenas by hand: DS-CNN ping-pongs two 25x5x64 tensors (2 x 8000 B); ResNet-8 keeps a
   * stack's 32x32x16 input alive beside two 32x32x16 conv outputs (3 x 16384 B) plus a 3x3x16
   * conv's im2col scratch (the device kernel's two int16 columns, 4 x 144 B, live beside those
   * three); the auto-encoder's input 640 B beside the first fc output 128 B; VWW: planner only
   * (-1) */
  ref r[4] = {{"kws_ref_model.tflite", 0, 0, 16000}, {"vww_96_int8.tflite", 0, 0, -1},
              {"pretrainedResnet_quant.tflite", 0, 0, 3 * 16384 + 4 * 144}, {"ad01_int8.tflite", 0, 0, 768}};
  hand_counts(r);
  assert_int_equal(r[0].macs, 2656768); /* MLPerf Tiny's DS-CNN: ~2.66 M MACs */
  assert_int_equal(r[3].macs, 264192);
  nas_target *t = target_nas_c("stm32f446re"), *tref = target("stm32f446re");
  nas_err re = {0};
  if (nas_target_set_runtime(tref, NAS_RT_TFLM_REFERENCE, &re)) fail_msg("%s", re.msg);
  for (int i = 0; i < 4; i++) {
    char path[1100];
    if (!test_model_path(r[i].file, path, sizeof path)) {
      test_skip_part("reference model %s not found (set NAS_MODELS_DIR, see docs/testing.md)",
                     path);
      continue;
    }
    nas_err e = {0};
    nas_g8_graph g;
    if (nas_tflite_read(path, &g, &e)) fail_msg("%s", e.msg);
    nas_price *p = NULL;
    if (nas_price_tflite(path, t, &p, &e)) fail_msg("%s", e.msg);
    if (p->macs != r[i].macs || p->params != r[i].params)
      fail_msg("%s: priced %lld MACs %lld params, by hand %lld / %lld", r[i].file, p->macs,
               p->params, r[i].macs, r[i].params);
    assert_int_equal(p->n_layers, g.nops);
    /* flash: every byte of a constant buffer an operator reads (the C export's constant
     * arrays; a RESHAPE's shape tensor is not needed), 8 per weight quantisation entry, 8 per
     * activation (input + each operator's output) */
    long long fl = 8 + 8LL * g.nops;
    unsigned char *read = calloc((size_t)g.ntensors, 1); /* constants an operator reads */
    for (int o = 0; o < g.nops; o++)
      for (int k = 0; k < g.ops[o].nin; k++)
        if (g.ops[o].in[k] >= 0) read[g.ops[o].in[k]] = 1;
    for (int k = 0; k < g.ntensors; k++)
      if (g.tensors[k].data && read[k])
        fl += (long long)g.tensors[k].bytes + (g.tensors[k].type == NAS_G8_INT8 ? 8LL * g.tensors[k].nq : 0);
    free(read);
    /* nas-c stores a conv / fc filter sparse where that is smaller (the C export's SPARSE):
     * those filters count their mask + values instead of their dense bytes */
    long long saved = 0;
    for (int o = 0; o < g.nops; o++)
      if (nas_g8_sparse_pick(&g, o))
        saved += (long long)g.tensors[g.ops[o].in[1]].bytes - nas_g8_sparse_bytes(&g, o, NULL);
    if (saved) print_message("%s: nas-c stores sparse filters, %lld bytes saved\n", r[i].file, saved);
    fl -= saved;
    assert_int_equal(p->model_flash_bytes, fl);
    assert_int_equal(p->flash_bytes, p->model_flash_bytes + t->rt_flash);
    nas_g8_plan plan;
    assert_int_equal(nas_g8_plan_build(&g, &plan, &e), NAS_OK);
    check_plan(&g, &plan);
    assert_int_equal(p->arena_bytes, plan.peak);
    if (r[i].arena >= 0) assert_int_equal(p->arena_bytes, r[i].arena);
    assert_int_equal(p->peak_sram_bytes, p->arena_bytes + t->rt_sram);
    assert_int_equal(exported_arena(&g, "ref"), p->arena_bytes);
    assert_int_equal(p->layers[p->peak_layer].sram_bytes, p->arena_bytes);
    /* linear target (the coefficient model prices tflm-reference): latency = cycles/MAC x
     * MACs / clock; nas-c is priced by the C export's model (tests/test_nasc.c) */
    nas_price *q = NULL;
    if (nas_price_tflite(path, tref, &q, &e)) fail_msg("%s", e.msg);
    assert_string_equal(q->latency_model, "linear");
    assert_true(fabs(q->latency_ms - (tref->cycles_per_mac * (double)q->macs + tref->fixed_cycles) /
                                         (tref->clock_mhz * 1e3)) < 1e-9);
    nas_price_free(q);
    assert_string_equal(p->latency_model, "nas-c-cycles");
    nas_g8_plan_free(&plan);
    nas_g8_graph_free(&g);
    nas_price_free(p);
  }
  nas_target_free(t);
  nas_target_free(tref);
}

/* ---- `nas profile` through the binary ------------------------------------------------------ */

static int run(const char *args, char **out) {
  char cmd[3000], op[400], ep[400];
  const char *bin = getenv("NAS_BIN");
  snprintf(op, sizeof op, "%s/out.txt", tmp);
  snprintf(ep, sizeof ep, "%s/err.txt", tmp);
  snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", bin ? bin : "nas", args, op, ep);
  int s = system(cmd);
  *out = slurp(op);
  return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

static char *err_text(void) {
  char ep[400];
  snprintf(ep, sizeof ep, "%s/err.txt", tmp);
  return slurp(ep);
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(v)) fail_msg("profile JSON: '%s' is not a number", k);
  return v->valuedouble;
}

/* Runs profile --json on one input and compares with the library's price p. */
static void cli_matches(const char *args, const nas_price *p) {
  char *out;
  int rc = run(args, &out);
  if (rc != 0) fail_msg("nas %s exited %d: %s", args, rc, err_text());
  cJSON *o = cJSON_Parse(out);
  if (!o) fail_msg("not JSON: %s", out);
  assert_true(num(o, "macs") == (double)p->macs);
  assert_true(num(o, "params") == (double)p->params);
  assert_true(num(o, "flash_bytes") == (double)p->flash_bytes);
  assert_true(num(o, "peak_sram_bytes") == (double)p->peak_sram_bytes);
  assert_true(num(o, "arena_bytes") == (double)p->arena_bytes);
  assert_true(fabs(num(o, "latency_ms") - p->latency_ms) < 1e-9 * (1 + p->latency_ms));
  const cJSON *L = cJSON_GetObjectItemCaseSensitive(o, "layers");
  assert_int_equal(cJSON_GetArraySize(L), p->n_layers);
  double mx = 0, macs = 0;
  for (const cJSON *x = L ? L->child : NULL; x; x = x->next) {
    macs += num(x, "macs");
    mx = num(x, "sram_bytes") > mx ? num(x, "sram_bytes") : mx;
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x, "op")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(x, "out")), 3);
  }
  assert_true(macs == (double)p->macs);
  assert_true(mx == (double)p->arena_bytes);
  cJSON_Delete(o);
  free(out);
}

static void test_cli_profile(void **st) {
  (void)st;
  nas_target *t = target("stm32f446re");
  nas_err e = {0};
  char arch[600], ck[400], tfl[1100], args[2000];
  snprintf(arch, sizeof arch, "%s/search_spaces/reference/fmnist-cnn.json", src_dir());
  nas_price *p = NULL;
  char *json = slurp(arch);
  if (nas_price_arch(json, "fmnist-cnn", t, &p, &e)) fail_msg("%s", e.msg);
  snprintf(args, sizeof args, "profile --arch %s --target stm32f446re --json", arch);
  cli_matches(args, p);
  /* checkpoint of the same arch: same price */
  nas_net *net = NULL;
  if (nas_net_build(json, "fmnist-cnn", 1, 9, &net, &e)) fail_msg("%s", e.msg);
  snprintf(ck, sizeof ck, "%s/f.ckpt", tmp);
  if (nas_ckpt_save(ck, net->arch_json, "{}", net->g, &e)) fail_msg("%s", e.msg);
  snprintf(args, sizeof args, "profile --checkpoint %s --target stm32f446re --json", ck);
  cli_matches(args, p);
  nas_net_free(net), nas_price_free(p), free(json);
  /* a .tflite */
  if (!test_model_path("kws_ref_model.tflite", tfl, sizeof tfl)) {
    test_skip_part("nas profile --tflite: reference model %s not found (set NAS_MODELS_DIR, see "
                   "docs/testing.md)", tfl);
  } else {
    if (nas_price_tflite(tfl, t, &p, &e)) fail_msg("%s", e.msg);
    snprintf(args, sizeof args, "profile --tflite %s --target stm32f446re --json", tfl);
    cli_matches(args, p);
    nas_price_free(p);
    char *out;
    snprintf(args, sizeof args, "profile --tflite %s --target stm32f446re", tfl);
    assert_int_equal(run(args, &out), 0);
    if (!strstr(out, "dwconv2d") || !strstr(out, "tensor arena") || !strstr(out, "binding budget"))
      fail_msg("table: %s", out);
    free(out);
  }
  /* an lstm net's SRAM is planned (its state tensors included), no longer estimated */
  char *out;
  snprintf(args, sizeof args, "profile --arch %s/search_spaces/reference/lstm-s.json --target stm32f446re", src_dir());
  assert_int_equal(run(args, &out), 0);
  if (strstr(out, "estimate") || !strstr(out, "tensor arena")) fail_msg("lstm table: %s", out);
  free(out);
  /* usage and runtime errors: one line, exit 2 / 1 */
  snprintf(args, sizeof args, "profile --arch %s --tflite %s --target stm32f446re", arch, tfl);
  assert_int_equal(run(args, &out), 2);
  free(out);
  char *er = err_text();
  if (!strstr(er, "exactly one of")) fail_msg("%s", er);
  free(er);
  snprintf(args, sizeof args, "profile --tflite %s/nope.tflite --target stm32f446re", tmp);
  assert_int_equal(run(args, &out), 1);
  free(out);
  er = err_text();
  if (strncmp(er, "nas: error: ", 12) || !strstr(er, "nope.tflite") || strchr(er, '\n') != er + strlen(er) - 1)
    fail_msg("error: %s", er);
  free(er);
  snprintf(args, sizeof args, "profile --checkpoint %s --target stm32f446re", arch); /* not a ckpt */
  assert_int_equal(run(args, &out), 1);
  free(out);
  nas_target_free(t);
}

/* ---- MicroNets calibration ----------------------------------------------------------------- */

/* The shipped targets' linear coefficients are what `nas latency fit` gives on
 * latency/calibration/micronets.csv, and our counter reproduces the published op counts of
 * the MicroNet architectures (Table 5 of the paper, written as arch JSON). */
static void test_micronets_calibration(void **st) {
  (void)st;
  const char *ids[2] = {"stm32f446re", "stm32f767"};
  const int rows[2] = {7, 16};
  char csv[600], tp[600], out[400];
  snprintf(csv, sizeof csv, "%s/latency/calibration/micronets.csv", src_dir());
  for (int i = 0; i < 2; i++) {
    snprintf(tp, sizeof tp, "%s/latency/targets/%s.json", src_dir(), ids[i]);
    snprintf(out, sizeof out, "%s/%s.json", tmp, ids[i]);
    nas_fit_opts o;
    memset(&o, 0, sizeof o);
    nas_fit_report rep;
    nas_err e = {0};
    if (nas_fit_target_file(tp, csv, out, &o, &rep, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rep.n_models, rows[i]);
    nas_target *shipped = NULL, *fitted = NULL;
    assert_int_equal(nas_target_load(tp, &shipped, &e), NAS_OK);
    assert_int_equal(nas_target_load(out, &fitted, &e), NAS_OK);
    if (fabs(shipped->cycles_per_mac - fitted->cycles_per_mac) > 1e-9 * fitted->cycles_per_mac)
      fail_msg("%s ships %.9g cycles/MAC, the fit gives %.9g", ids[i], shipped->cycles_per_mac, fitted->cycles_per_mac);
    assert_true(shipped->calibrated && shipped->model == NAS_LAT_LINEAR);
    nas_target_free(shipped), nas_target_free(fitted);
  }
  /* published Mops (2 ops per MAC) of Table 4 */
  const char *arch[6] = {"micronet-ad-s", "micronet-ad-m", "micronet-ad-l", "micronet-kws-s",
                         "micronet-kws-m", "micronet-kws-l"};
  const double mops[6] = {37.5, 124.7, 129, 16.4, 30.6, 129};
  nas_target *t = target("stm32f767");
  for (int i = 0; i < 6; i++) {
    snprintf(tp, sizeof tp, "%s/latency/calibration/micronets_arch/%s.json", src_dir(), arch[i]);
    char *json = slurp(tp);
    nas_price *p = NULL;
    nas_err e = {0};
    if (nas_price_arch(json, arch[i], t, &p, &e)) fail_msg("%s: %s", arch[i], e.msg);
    double ours = 2.0 * (double)p->macs / 1e6;
    if (i < 3 ? fabs(ours - mops[i]) > 0.05 : fabs(ours - mops[i]) / mops[i] > 0.02)
      fail_msg("%s: %.2f Mops counted, %.1f published", arch[i], ours, mops[i]);
    nas_price_free(p);
    free(json);
  }
  nas_target_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_archs), cmocka_unit_test(test_residual_softmax),
      cmocka_unit_test(test_checkpoint),      cmocka_unit_test(test_tflite_models),
      cmocka_unit_test(test_cli_profile),     cmocka_unit_test(test_micronets_calibration),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
