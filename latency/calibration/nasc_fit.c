/* latency/calibration/nasc_fit.c: the offline fit of latency/calibration/nasc_insn.json, the
 * instruction model of the engine's C export (latency/nasc.h).
 * Usage: nasc_fit [CORPUS_DIR [OUT.json [EVERY]]]   (defaults: ../shared/data/tflm-cmsisnn
 * next to the source tree, latency/calibration/nasc_insn.json, 3). Emulates the C export of
 * every EVERY-th non-MLPerf model of the corpus and of every one with a MAX_POOL_2D, SOFTMAX
 * or QUANTIZE (few models have them) (the graphs only: its TFLM counts are not
 * used) on the Cortex-M4, M7, M33 and M0+ (latency/emulator.h: arm-none-eabi-gcc -O2, Unicorn),
 * fits per core and kind by weighted least squares on relative error on the models of the
 * corpus' training split (latency/tflm_fit.h), measures the class mix per core and kind, and
 * prints the errors on the held-out models (markdown for docs/costs.md). A few synthetic nets
 * (SYNTH below) add training rows for the kernel paths the corpus lacks. Kinds no corpus model
 * has (the Winograd kinds, fitted by nasc_wino_fit) keep the coefficients of the OUT file
 * being replaced.
 * With NASC_FIT_CACHE=FILE the emulated counts of every operator are kept in FILE (one line
 * per model, core and operator) and read back on the next run, so features can be refit
 * without emulating again (the cache is only valid for the same runtime kernels). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "latency/emulator.h"
#include "latency/nasc.h"
#include "latency/target.h"
#include "latency/tflm_fit.h"
#include "deploy/lower_shape.h"
#include "train/net.h"

#ifndef NAS_SOURCE_DIR
#define NAS_SOURCE_DIR "."
#endif

/* One cached measurement: model id, core, operator, then insns and the NAS_CYC_NCNT counts. */
typedef struct cached {
  char id[64];
  int core, op;
  double y, cnt[NAS_CYC_NCNT];
} cached;

/* Reads FILE's lines (missing file: none); *out owned by the caller. */
static int cache_read(const char *path, cached **out, int *n) {
  *out = NULL, *n = 0;
  FILE *f = path ? fopen(path, "r") : NULL;
  if (!f) return 0;
  int cap = 0;
  cached c;
  while (fscanf(f, "%63s %d %d %lf %lf %lf %lf %lf %lf %lf %lf", c.id, &c.core, &c.op, &c.y, &c.cnt[0],
                &c.cnt[1], &c.cnt[2], &c.cnt[3], &c.cnt[4], &c.cnt[5], &c.cnt[6]) == 11) {
    if (*n == cap) {
      cap = cap ? 2 * cap : 4096;
      cached *t = nas_realloc(*out, sizeof *t * (size_t)cap);
      if (!t) {
        fclose(f);
        return -1;
      }
      *out = t;
    }
    (*out)[(*n)++] = c;
  }
  fclose(f);
  return 0;
}

typedef struct row {
  int core, kind, heldout, model;
  double f[NAS_NASC_MAXF], y, cnt[NAS_CYC_NCNT];
} row;

static const char *const TARGETS[NAS_NASC_NCORE] = {"stm32f446re", "stm32f746", "nrf5340", "stm32g0b1"};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void stats(double *v, int n, double *med, double *p95, double *mx) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  *med = n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
  *p95 = n ? v[(int)ceil(0.95 * n) - 1] : 0, *mx = n ? v[n - 1] : 0;
}

/* What measure() needs across models. */
typedef struct fit_state {
  nas_target **t;
  const nas_emu_cfg *cfg;
  const cached *memo;
  int ncached;
  FILE *cache_out;
  row *rows;
  int cap, n, failed;
} fit_state;

/* Rows of graph g (id, split, model index) on every core: from the cache where it has them,
 * else emulated (random input, seed 1000) and appended to it. */
static void measure(fit_state *st, const nas_g8_graph *g, const char *id, int heldout, int model) {
  nas_err e = {0};
  int8_t *in = nas_malloc((size_t)nas_g8_numel(&g->tensors[g->input]) + 1);
  nas_rng r;
  nas_rng_seed(&r, 1000);
  for (size_t i = 0; in && i < nas_g8_numel(&g->tensors[g->input]); i++)
    in[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
  nas_g8_plan plan;
  const int planned = !nas_g8_plan_build(g, &plan, &e);
  for (int k = 0; in && k < NAS_NASC_NCORE; k++) {
    int hit = 0; /* cached measurements of this graph on core k */
    for (int j = 0; j < st->ncached; j++) {
      const cached *q = &st->memo[j];
      if (q->core != k || strcmp(q->id, id) || q->op < 0 || q->op >= g->nops || st->n >= st->cap) continue;
      row *w = &st->rows[st->n];
      w->core = k, w->heldout = heldout, w->model = model;
      w->kind = nas_nasc_features(g, planned ? &plan : NULL, q->op, k != NAS_NASC_M0PLUS, w->f, &e);
      hit = 1;
      if (w->kind < 0) continue;
      w->y = q->y;
      memcpy(w->cnt, q->cnt, sizeof w->cnt);
      if (w->y > 0) st->n++;
    }
    if (hit) continue;
    nas_emu_fw *fw = NULL;
    nas_emu_result res;
    if (nas_emu_build(g, st->t[k], st->cfg, &fw, &e) || nas_emu_run(fw, in, 0, &res, &e)) {
      fprintf(stderr, "nasc_fit: %s on %s: %s (skipped)\n", id, TARGETS[k], e.msg);
      nas_emu_fw_free(fw);
      st->failed++;
      continue;
    }
    for (int i = 0; i < g->nops && st->n < st->cap; i++) {
      row *w = &st->rows[st->n];
      w->core = k, w->heldout = heldout, w->model = model;
      const nas_emu_layer *L = &res.layers[i];
      if (st->cache_out)
        fprintf(st->cache_out, "%s %d %d %lld %lld %lld %lld %lld %lld %lld %lld\n", id, k, i, L->insns,
                L->c.n[NAS_IC_LDST], L->c.n[NAS_IC_MUL], L->c.n[NAS_IC_BRANCH], L->c.n[NAS_IC_OTHER],
                L->c.xfer, L->taken, L->c.div);
      w->kind = nas_nasc_features(g, planned ? &plan : NULL, i, k != NAS_NASC_M0PLUS, w->f, &e);
      if (w->kind < 0) continue;
      w->y = (double)L->insns;
      w->cnt[NAS_CYC_LDST] = (double)L->c.n[NAS_IC_LDST], w->cnt[NAS_CYC_MUL] = (double)L->c.n[NAS_IC_MUL];
      w->cnt[NAS_CYC_BRANCH] = (double)L->c.n[NAS_IC_BRANCH], w->cnt[NAS_CYC_OTHER] = (double)L->c.n[NAS_IC_OTHER];
      w->cnt[NAS_CYC_XFER] = (double)L->c.xfer, w->cnt[NAS_CYC_TAKEN] = (double)L->taken;
      w->cnt[NAS_CYC_DIV] = (double)L->c.div;
      if (w->y > 0) st->n++;
    }
    nas_emu_result_free(&res);
    nas_emu_fw_free(fw);
    if (st->cache_out) fflush(st->cache_out);
  }
  if (planned) nas_g8_plan_free(&plan);
  free(in);
}

/* Synthetic nets (lowered from their structure, deploy/lower_shape.h) for the paths the corpus
 * lacks: depthwise and pools whose channels are not a multiple of four, 7x7 depthwise, small
 * pooling windows over many pixels, FC depths not a multiple of four, odd output channels,
 * strided 1x1 convs. */
static const char *const SYNTH[] = {
    "{\"input\":[12,12,6],\"classes\":5,\"layers\":[{\"op\":\"dwconv\",\"k\":3},{\"op\":\"dwconv\","
    "\"k\":5,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
    "{\"input\":[10,10,3],\"classes\":5,\"layers\":[{\"op\":\"dwconv\",\"k\":3},{\"op\":\"conv\","
    "\"out\":7,\"k\":3},{\"op\":\"dwconv\",\"k\":3,\"stride\":2},{\"op\":\"maxpool\",\"k\":2,"
    "\"stride\":2},{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":5}]}",
    "{\"input\":[16,16,10],\"classes\":5,\"layers\":[{\"op\":\"avgpool\",\"k\":3,\"stride\":1,"
    "\"padding\":\"same\"},{\"op\":\"maxpool\",\"k\":3,\"stride\":2,\"padding\":\"same\"},"
    "{\"op\":\"avgpool\",\"k\":2,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":7},"
    "{\"op\":\"fc\",\"out\":5}]}",
    "{\"input\":[3,3,5],\"classes\":5,\"layers\":[{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":13},"
    "{\"op\":\"fc\",\"out\":9},{\"op\":\"fc\",\"out\":5}]}",
    "{\"input\":[12,12,12],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":9,\"k\":1,"
    "\"stride\":2},{\"op\":\"pwconv\",\"out\":11},{\"op\":\"dwconv\",\"k\":3},{\"op\":\"conv\","
    "\"out\":6,\"k\":5,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
    "{\"input\":[14,14,8],\"classes\":5,\"layers\":[{\"op\":\"dwconv\",\"k\":7},{\"op\":\"conv\","
    "\"out\":5,\"k\":2,\"stride\":2},{\"op\":\"maxpool\",\"k\":2,\"stride\":1,\"padding\":\"same\"},"
    "{\"op\":\"dwconv\",\"k\":3,\"stride\":2},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
    "{\"input\":[20,6,1],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":10,\"k\":3},"
    "{\"op\":\"dwconv\",\"k\":3},{\"op\":\"avgpool\",\"k\":2,\"stride\":2},{\"op\":\"pwconv\","
    "\"out\":14},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}",
    NULL};

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : NAS_SOURCE_DIR "/../shared/data/tflm-cmsisnn";
  const char *out = argc > 2 ? argv[2] : NAS_SOURCE_DIR "/latency/calibration/nasc_insn.json";
  const int every = argc > 3 ? atoi(argv[3]) : 3;
  nas_err e = {0};
  nas_tflm_corpus c;
  if (every < 1 || nas_tflm_corpus_read(dir, &c, &e)) {
    fprintf(stderr, "nasc_fit: %s\n", every < 1 ? "EVERY must be >= 1" : e.msg);
    return 1;
  }
  nas_target *t[NAS_NASC_NCORE] = {NULL};
  for (int k = 0; k < NAS_NASC_NCORE; k++) {
    if (nas_target_open(TARGETS[k], NULL, &t[k], &e)) {
      fprintf(stderr, "nasc_fit: %s\n", e.msg);
      return 1;
    }
    t[k]->sram_bytes = 8 << 20, t[k]->flash_bytes = 16 << 20; /* room for every corpus model */
  }
  char cache[] = "/tmp/nasc_fit_XXXXXX";
  if (!mkdtemp(cache)) return 1;
  nas_emu_cfg cfg = {.cache_dir = cache};
  int cap = 1 << 14, n = 0, nmodels = 0, nsynth = 0, failed = 0, ncached = 0;
  const char *cache_path = getenv("NASC_FIT_CACHE");
  cached *memo = NULL;
  if (cache_read(cache_path, &memo, &ncached)) return 1;
  FILE *cache_out = cache_path ? fopen(cache_path, "a") : NULL;
  row *rows = nas_malloc(sizeof *rows * (size_t)cap);
  if (!rows) return 1;
  const double t0 = (double)clock() / CLOCKS_PER_SEC;
  fit_state st = {.t = t, .cfg = &cfg, .memo = memo, .ncached = ncached, .cache_out = cache_out,
                  .rows = rows, .cap = cap};
  for (int mi = 0, seen = 0; mi < c.nmodels; mi++) {
    const nas_tflm_corpus_model *x = &c.model[mi];
    int rare = 0; /* kinds few models have: every model with one is taken */
    for (int i = 0; i < x->graph.nops; i++)
      rare |= x->graph.ops[i].kind == NAS_G8_MAX_POOL_2D || x->graph.ops[i].kind == NAS_G8_SOFTMAX ||
              x->graph.ops[i].kind == NAS_G8_QUANTIZE;
    if (x->mlperf || (seen++ % every && !rare)) continue;
    nmodels++;
    measure(&st, &x->graph, x->id, x->heldout, mi);
    fprintf(stderr, "\r%d models, %d operator rows", nmodels, st.n);
  }
  /* the synthetic nets: training rows only */
  for (int si = 0; SYNTH[si]; si++) {
    nas_net *net = NULL;
    nas_g8_graph g;
    nas_lower_cfg lc = {.softmax = 1};
    if (nas_net_build(SYNTH[si], "synth.json", 1, 1, &net, &e) || nas_lower_structure(net, &lc, &g, &e)) {
      fprintf(stderr, "nasc_fit: synthetic net %d: %s\n", si, e.msg);
      nas_net_free(net);
      return 1;
    }
    nas_net_free(net);
    char id[64];
    uint32_t h = 2166136261u; /* FNV-1a of the architecture: a changed net is measured again */
    for (const char *q = SYNTH[si]; *q; q++) h = (h ^ (uint8_t)*q) * 16777619u;
    snprintf(id, sizeof id, "synth%02d_%08x", si, (unsigned)h);
    measure(&st, &g, id, 0, c.nmodels + si);
    nas_g8_graph_free(&g);
    nsynth++;
    fprintf(stderr, "\r%d models, %d synthetic, %d operator rows", nmodels, nsynth, st.n);
  }
  n = st.n, failed = st.failed;
  fprintf(stderr, "\n");
  /* fit per core and kind on the training models */
  nas_nasc_model m, prev;
  memset(&m, 0, sizeof m);
  nas_err pe = {0}; /* kinds the corpus has no rows for (the Winograd kinds, nasc_wino_fit) */
  const int have_prev = nas_nasc_load(out, &prev, &pe) == NAS_OK;
  double *A = nas_malloc(sizeof *A * (size_t)n * NAS_NASC_MAXF), *b = nas_malloc(sizeof *b * (size_t)n);
  double *err = nas_malloc(sizeof *err * (size_t)n);
  if (!A || !b || !err) return 1;
  for (int k = 0; k < NAS_NASC_NCORE; k++)
    for (int kd = 0; kd < NAS_NASC_NKIND; kd++) {
      const int p = nas_nasc_nfeat(kd);
      int mrows = 0;
      double mix[NAS_CYC_NCNT] = {0}, tot = 0;
      for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (w->core != k || w->kind != kd || w->heldout) continue;
        for (int j = 0; j < p; j++) A[(size_t)mrows * p + j] = w->f[j] / w->y;
        b[mrows++] = 1;
        for (int j = 0; j < NAS_CYC_NCNT; j++) mix[j] += w->cnt[j];
        tot += w->y;
      }
      if (mrows == 0) { /* kept from the file this fit replaces */
        if (have_prev && prev.fitted[k][kd]) {
          memcpy(m.coef[k][kd], prev.coef[k][kd], sizeof m.coef[k][kd]);
          memcpy(m.mix[k][kd], prev.mix[k][kd], sizeof m.mix[k][kd]);
          m.fitted[k][kd] = 1;
        }
        continue;
      }
      if (nas_tflm_lstsq(A, b, mrows, p, m.coef[k][kd], &e)) {
        fprintf(stderr, "nasc_fit: %s\n", e.msg);
        return 1;
      }
      for (int j = 0; j < NAS_CYC_NCNT; j++) m.mix[k][kd][j] = mix[j] / tot;
      m.fitted[k][kd] = 1;
    }
  char prov[400];
  snprintf(prov, sizeof prov, "nasc_fit: the C export of every %d-th non-MLPerf model of the tflm-cmsisnn corpus and "
           "of every one with a max pool or softmax (%d models) and of %d synthetic nets (nasc_fit.c) emulated with "
           "arm-none-eabi-gcc -O2 and Unicorn; fitted on the training split (FNV-1a(model_id) %% 5 != 0, and the "
           "synthetic nets)", every, nmodels, nsynth);
  if (nas_nasc_save(out, &m, prov, &e)) {
    fprintf(stderr, "nasc_fit: %s\n", e.msg);
    return 1;
  }
  printf("%d models and %d synthetic nets emulated (%d builds skipped), %d operator rows, %.0f s CPU\n", nmodels, nsynth, failed, n,
         (double)clock() / CLOCKS_PER_SEC - t0);
  printf("\n### Held-out operators: relative error of the predicted instructions (median / p95 / max)\n\n"
         "| kind | cortex-m4 | cortex-m7 | cortex-m33 | cortex-m0plus |\n|---|---|---|---|---|\n");
  for (int kd = 0; kd <= NAS_NASC_NKIND; kd++) {
    printf("| %s |", kd < NAS_NASC_NKIND ? nas_nasc_kind_name(kd) : "all");
    for (int k = 0; k < NAS_NASC_NCORE; k++) {
      int ne = 0;
      for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (w->core != k || (kd < NAS_NASC_NKIND && w->kind != kd) || !w->heldout || !m.fitted[k][w->kind]) continue;
        double y = 0;
        for (int j = 0; j < nas_nasc_nfeat(w->kind); j++) y += m.coef[k][w->kind][j] * w->f[j];
        err[ne++] = fabs(y - w->y) / w->y;
      }
      double med, p95, mx;
      stats(err, ne, &med, &p95, &mx);
      if (ne) printf(" %.1f / %.1f / %.1f%% (%d) |", 100 * med, 100 * p95, 100 * mx, ne);
      else printf(" |");
    }
    printf("\n");
  }
  /* whole models: the sum of their operators, predicted against emulated */
  printf("\n### Held-out models: relative error of the operators' total (median / p95 / max)\n\n"
         "| | cortex-m4 | cortex-m7 | cortex-m33 | cortex-m0plus |\n|---|---|---|---|---|\n| models |");
  for (int k = 0; k < NAS_NASC_NCORE; k++) {
    int ne = 0;
    for (int mi = 0; mi < c.nmodels; mi++) {
      double py = 0, my = 0;
      int any = 0, ok = 1;
      for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (w->core != k || w->model != mi || !w->heldout) continue;
        any = 1, ok &= m.fitted[k][w->kind];
        for (int j = 0; ok && j < nas_nasc_nfeat(w->kind); j++) py += m.coef[k][w->kind][j] * w->f[j];
        my += w->y;
      }
      if (any && ok && my > 0) err[ne++] = fabs(py - my) / my;
    }
    double med, p95, mx;
    stats(err, ne, &med, &p95, &mx);
    if (ne) printf(" %.1f / %.1f / %.1f%% (%d) |", 100 * med, 100 * p95, 100 * mx, ne);
    else printf(" |");
  }
  printf("\n\nwrote %s\n", out);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
  if (system(cmd)) {}
  free(A), free(b), free(err), free(rows), free(memo);
  if (cache_out) fclose(cache_out);
  for (int k = 0; k < NAS_NASC_NCORE; k++) nas_target_free(t[k]);
  nas_tflm_corpus_free(&c);
  return 0;
}
