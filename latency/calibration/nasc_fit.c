/* latency/calibration/nasc_fit.c: the offline fit of latency/calibration/nasc_insn.json, the
 * instruction model of the engine's C export (latency/nasc.h).
 * Usage: nasc_fit [CORPUS_DIR [OUT.json [EVERY]]]   (defaults: ../shared/data/tflm-cmsisnn
 * next to the source tree, latency/calibration/nasc_insn.json, 3). Emulates the C export of
 * every EVERY-th non-MLPerf model of the corpus and of every one with a MAX_POOL_2D, SOFTMAX
 * or QUANTIZE (few models have them) (the graphs only: its TFLM counts are not
 * used) on the Cortex-M4, M7, M33 and M0+ (latency/emulator.h: arm-none-eabi-gcc -O2, Unicorn),
 * fits per core and kind by weighted least squares on relative error on the models of the
 * corpus' training split (latency/tflm_fit.h), measures the class mix per core and kind, and
 * prints the errors on the held-out models (markdown for docs/costs.md). */
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

#ifndef NAS_SOURCE_DIR
#define NAS_SOURCE_DIR "."
#endif

typedef struct row {
  int core, kind, heldout;
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
  int cap = 1 << 14, n = 0, nmodels = 0, failed = 0;
  row *rows = nas_malloc(sizeof *rows * (size_t)cap);
  if (!rows) return 1;
  const double t0 = (double)clock() / CLOCKS_PER_SEC;
  for (int mi = 0, seen = 0; mi < c.nmodels; mi++) {
    const nas_tflm_corpus_model *x = &c.model[mi];
    int rare = 0; /* kinds few models have: every model with one is taken */
    for (int i = 0; i < x->graph.nops; i++)
      rare |= x->graph.ops[i].kind == NAS_G8_MAX_POOL_2D || x->graph.ops[i].kind == NAS_G8_SOFTMAX ||
              x->graph.ops[i].kind == NAS_G8_QUANTIZE;
    if (x->mlperf || (seen++ % every && !rare)) continue;
    nmodels++;
    int8_t *in = nas_malloc((size_t)nas_g8_numel(&x->graph.tensors[x->graph.input]) + 1);
    nas_rng r;
    nas_rng_seed(&r, 1000);
    for (size_t i = 0; in && i < nas_g8_numel(&x->graph.tensors[x->graph.input]); i++)
      in[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
    for (int k = 0; in && k < NAS_NASC_NCORE; k++) {
      nas_emu_fw *fw = NULL;
      nas_emu_result res;
      if (nas_emu_build(&x->graph, t[k], &cfg, &fw, &e) || nas_emu_run(fw, in, 0, &res, &e)) {
        fprintf(stderr, "nasc_fit: %s on %s: %s (skipped)\n", x->id, TARGETS[k], e.msg);
        nas_emu_fw_free(fw);
        failed++;
        continue;
      }
      for (int i = 0; i < x->graph.nops && n < cap; i++) {
        row *w = &rows[n];
        w->core = k, w->heldout = x->heldout;
        w->kind = nas_nasc_features(&x->graph, i, k != NAS_NASC_M0PLUS, w->f, &e);
        if (w->kind < 0) continue;
        const nas_emu_layer *L = &res.layers[i];
        w->y = (double)L->insns;
        w->cnt[NAS_CYC_LDST] = (double)L->c.n[NAS_IC_LDST], w->cnt[NAS_CYC_MUL] = (double)L->c.n[NAS_IC_MUL];
        w->cnt[NAS_CYC_BRANCH] = (double)L->c.n[NAS_IC_BRANCH], w->cnt[NAS_CYC_OTHER] = (double)L->c.n[NAS_IC_OTHER];
        w->cnt[NAS_CYC_XFER] = (double)L->c.xfer, w->cnt[NAS_CYC_TAKEN] = (double)L->taken;
        w->cnt[NAS_CYC_DIV] = (double)L->c.div;
        if (w->y > 0) n++;
      }
      nas_emu_result_free(&res);
      nas_emu_fw_free(fw);
    }
    free(in);
    fprintf(stderr, "\r%d models, %d operator rows", nmodels, n);
  }
  fprintf(stderr, "\n");
  /* fit per core and kind on the training models */
  nas_nasc_model m;
  memset(&m, 0, sizeof m);
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
      if (mrows == 0) continue;
      if (nas_tflm_lstsq(A, b, mrows, p, m.coef[k][kd], &e)) {
        fprintf(stderr, "nasc_fit: %s\n", e.msg);
        return 1;
      }
      for (int j = 0; j < NAS_CYC_NCNT; j++) m.mix[k][kd][j] = mix[j] / tot;
      m.fitted[k][kd] = 1;
    }
  char prov[300];
  snprintf(prov, sizeof prov, "nasc_fit: the C export of every %d-th non-MLPerf model of the tflm-cmsisnn corpus and "
           "of every one with a max pool or softmax (%d models) emulated with arm-none-eabi-gcc -O2 and Unicorn; fitted on the training split "
           "(FNV-1a(model_id) %% 5 != 0)", every, nmodels);
  if (nas_nasc_save(out, &m, prov, &e)) {
    fprintf(stderr, "nasc_fit: %s\n", e.msg);
    return 1;
  }
  printf("%d models emulated (%d builds skipped), %d operator rows, %.0f s CPU\n", nmodels, failed, n,
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
  printf("\nwrote %s\n", out);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
  if (system(cmd)) {}
  free(A), free(b), free(err), free(rows);
  for (int k = 0; k < NAS_NASC_NCORE; k++) nas_target_free(t[k]);
  nas_tflm_corpus_free(&c);
  return 0;
}
