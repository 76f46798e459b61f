/* latency/calibration/nasc_wino_fit.c: the offline fit of the Winograd kinds (wino2, wino4) of
 * latency/calibration/nasc_insn.json (latency/nasc.h) and the measurement of where Winograd
 * pays against the direct convolution in the engine's C export.
 * Usage: nasc_wino_fit [OUT.json]   (default latency/calibration/nasc_insn.json: its other
 * kinds are kept, the wino kinds replaced, the provenance extended).
 * Every probe network has three 3x3 stride-1 "same" convolutions: F(2x2,3x3) ci -> co,
 * F(4x4,3x3) co -> ci and direct (im2row) ci -> co; with ci = co all three have one shape (the
 * comparison table lists those probes). Probes vary the channels, the map and the Winograd
 * variant (static with pre-transformed U, static with the run-time weight transform, flex). Each is lowered without data (deploy/lower_shape.h: the instruction counts of these
 * kernels do not depend on the values), exported as C and emulated (latency/emulator.h:
 * arm-none-eabi-gcc -O2, Unicorn) on the Cortex-M4, M7, M33 and M0+; the coefficients are
 * fitted per core and kind by weighted least squares on relative error on the probes not
 * held out (every fourth), the class mix measured; printed: the held-out errors and, per core,
 * the emulated cycles of the three layers side by side (markdown for docs/winograd.md). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "deploy/lower_shape.h"
#include "latency/emulator.h"
#include "latency/nasc.h"
#include "latency/target.h"
#include "latency/tflm_fit.h"
#include "train/net.h"

#ifndef NAS_SOURCE_DIR
#define NAS_SOURCE_DIR "."
#endif

typedef struct row {
  int core, kind, heldout;
  double f[NAS_NASC_MAXF], y, cnt[NAS_CYC_NCNT];
} row;

/* One probe: map h x w, channels ci and co; variant 0 static pre-transformed, 1 static run-time
 * transform, 2 flex. Emulated cycles of the F2, F4 and direct layers per core. */
typedef struct probe {
  int h, w, ci, co, variant;
  double cyc[NAS_NASC_NCORE][3];
} probe;

static const char *const TARGETS[NAS_NASC_NCORE] = {"stm32f446re", "stm32f746", "nrf5340", "stm32g0b1"};
static const char *const VARIANT[3] = {"static", "static, run-time U", "flex"};

static int build_graph(const probe *pr, nas_g8_graph *g, nas_err *e) {
  char arch[1024];
  const char *fx = pr->variant == 2 ? ",\"flex\":true" : "";
  snprintf(arch, sizeof arch,
           "{\"input\":[%d,%d,%d],\"classes\":4,\"layers\":["
           "{\"op\":\"conv\",\"out\":%d,\"algo\":\"wino2\"%s},"
           "{\"op\":\"conv\",\"out\":%d,\"algo\":\"wino4\"%s},"
           "{\"op\":\"conv\",\"out\":%d},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}",
           pr->h, pr->w, pr->ci, pr->co, fx, pr->ci, fx, pr->co);
  nas_net *net = NULL;
  int rc = nas_net_build(arch, "probe", 1, 1, &net, e);
  if (rc) return rc;
  nas_lower_cfg cfg = {.wino_rt = pr->variant == 1};
  rc = nas_lower_structure(net, &cfg, g, e);
  nas_net_free(net);
  return rc;
}

/* The provenance string of an existing coefficient file ("" when it has none). */
static void old_provenance(const char *path, char *buf, size_t n) {
  char *text = NULL;
  long len = 0;
  nas_err e = {0};
  buf[0] = 0;
  if (nas_read_file(path, &text, &len, &e)) return;
  cJSON *root = NULL;
  int line = 0;
  if (!nas_json_parse(text, &root, &line)) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "provenance");
    if (cJSON_IsString(p)) snprintf(buf, n, "%s", p->valuestring);
    cJSON_Delete(root);
  }
  free(text);
}

int main(int argc, char **argv) {
  const char *out = argc > 1 ? argv[1] : NAS_SOURCE_DIR "/latency/calibration/nasc_insn.json";
  nas_err e = {0};
  nas_nasc_model m;
  if (nas_nasc_load(out, &m, &e)) {
    fprintf(stderr, "nasc_wino_fit: %s\n", e.msg);
    return 1;
  }
  /* the probes: every channel count on two maps (static, ci = co), then ci != co on odd maps,
     and the other variants */
  static const int CH[] = {4, 8, 12, 16, 24, 32, 48, 64};
  static const int ODD[][4] = {{10, 9, 3, 8}, {9, 11, 6, 12}, {12, 12, 16, 32}, {7, 13, 20, 10}};
  static const int VAR[][4] = {{12, 12, 4, 4}, {12, 12, 8, 8},  {12, 12, 16, 16}, {12, 12, 32, 32},
                               {10, 9, 3, 8},  {9, 11, 6, 12}, {11, 7, 24, 12}};
  enum { NCH = sizeof CH / sizeof CH[0], NODD = sizeof ODD / sizeof ODD[0], NVAR = sizeof VAR / sizeof VAR[0],
         MAXP = 2 * NCH + NODD + 2 * NVAR };
  probe pr[MAXP];
  int np = 0;
  for (int i = 0; i < NCH; i++)
    for (int s = 8; s <= 16; s += 8) pr[np++] = (probe){.h = s, .w = s, .ci = CH[i], .co = CH[i]};
  for (int i = 0; i < NODD; i++) pr[np++] = (probe){.h = ODD[i][0], .w = ODD[i][1], .ci = ODD[i][2], .co = ODD[i][3]};
  for (int v = 1; v <= 2; v++)
    for (int i = 0; i < NVAR; i++)
      pr[np++] = (probe){.h = VAR[i][0], .w = VAR[i][1], .ci = VAR[i][2], .co = VAR[i][3], .variant = v};
  nas_target *t[NAS_NASC_NCORE] = {NULL};
  for (int k = 0; k < NAS_NASC_NCORE; k++) {
    if (nas_target_open(TARGETS[k], NULL, &t[k], &e)) {
      fprintf(stderr, "nasc_wino_fit: %s\n", e.msg);
      return 1;
    }
    t[k]->sram_bytes = 8 << 20, t[k]->flash_bytes = 16 << 20;
  }
  char cache[] = "/tmp/nasc_wino_fit_XXXXXX";
  if (!mkdtemp(cache)) return 1;
  nas_emu_cfg cfg = {.cache_dir = cache};
  row *rows = nas_malloc(sizeof *rows * (size_t)MAXP * NAS_NASC_NCORE * 2);
  if (!rows) return 1;
  int n = 0;
  for (int p = 0; p < np; p++) {
    nas_g8_graph g;
    if (build_graph(&pr[p], &g, &e)) {
      fprintf(stderr, "nasc_wino_fit: probe %d: %s\n", p, e.msg);
      return 1;
    }
    int8_t *in = nas_malloc(nas_g8_numel(&g.tensors[g.input]));
    if (!in) return 1;
    nas_rng r;
    nas_rng_seed(&r, 1000 + (uint64_t)p);
    for (size_t i = 0; i < nas_g8_numel(&g.tensors[g.input]); i++) in[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
    for (int k = 0; k < NAS_NASC_NCORE; k++) {
      nas_emu_fw *fw = NULL;
      nas_emu_result res;
      if (nas_emu_build(&g, t[k], &cfg, &fw, &e) || nas_emu_run(fw, in, 0, &res, &e)) {
        fprintf(stderr, "nasc_wino_fit: probe %d on %s: %s\n", p, TARGETS[k], e.msg);
        return 1;
      }
      for (int i = 0; i < 3; i++) pr[p].cyc[k][i] = res.layers[i].cycles;
      for (int i = 0; i < 2; i++) { /* the two Winograd operators */
        row *w = &rows[n];
        w->core = k, w->heldout = p % 4 == 3;
        w->kind = nas_nasc_features(&g, NULL, i, k != NAS_NASC_M0PLUS, w->f, &e);
        if (w->kind != NAS_NASC_WINO2 && w->kind != NAS_NASC_WINO4) {
          fprintf(stderr, "nasc_wino_fit: probe %d: operator %d is not a Winograd layer\n", p, i);
          return 1;
        }
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
    nas_g8_graph_free(&g);
    fprintf(stderr, "\r%d of %d probes", p + 1, np);
  }
  fprintf(stderr, "\n");
  double *A = nas_malloc(sizeof *A * (size_t)n * NAS_NASC_MAXF), *b = nas_malloc(sizeof *b * (size_t)n);
  if (!A || !b) return 1;
  for (int k = 0; k < NAS_NASC_NCORE; k++)
    for (int kd = NAS_NASC_WINO2; kd <= NAS_NASC_WINO4; kd++) {
      const int nf = nas_nasc_nfeat(kd);
      int mr = 0;
      double mix[NAS_CYC_NCNT] = {0}, tot = 0;
      for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (w->core != k || w->kind != kd || w->heldout) continue;
        for (int j = 0; j < nf; j++) A[(size_t)mr * nf + j] = w->f[j] / w->y;
        b[mr++] = 1;
        for (int j = 0; j < NAS_CYC_NCNT; j++) mix[j] += w->cnt[j];
        tot += w->y;
      }
      if (!mr || nas_tflm_lstsq(A, b, mr, nf, m.coef[k][kd], &e)) {
        fprintf(stderr, "nasc_wino_fit: %s %s: %s\n", TARGETS[k], nas_nasc_kind_name(kd), mr ? e.msg : "no rows");
        return 1;
      }
      for (int j = 0; j < NAS_CYC_NCNT; j++) m.mix[k][kd][j] = mix[j] / tot;
      m.fitted[k][kd] = 1;
    }
  char prov[2048], old[1536];
  old_provenance(out, old, sizeof old);
  snprintf(prov, sizeof prov, "%s%swino2/wino4: nasc_wino_fit, %d probe networks (3x3 convolutions F2, F4 "
           "and direct, 3..64 channels) emulated with arm-none-eabi-gcc -O2 and Unicorn; "
           "fitted on the probes not held out (every fourth)", old, old[0] ? "; " : "", np);
  if (nas_nasc_save(out, &m, prov, &e)) {
    fprintf(stderr, "nasc_wino_fit: %s\n", e.msg);
    return 1;
  }
  printf("### Held-out Winograd operators: relative error of the predicted instructions (max)\n\n"
         "| kind | cortex-m4 | cortex-m7 | cortex-m33 | cortex-m0plus |\n|---|---|---|---|---|\n");
  for (int kd = NAS_NASC_WINO2; kd <= NAS_NASC_WINO4; kd++) {
    printf("| %s |", nas_nasc_kind_name(kd));
    for (int k = 0; k < NAS_NASC_NCORE; k++) {
      double worst = 0;
      int ne = 0;
      for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (w->core != k || w->kind != kd || !w->heldout) continue;
        double y = 0;
        for (int j = 0; j < nas_nasc_nfeat(kd); j++) y += m.coef[k][kd][j] * w->f[j];
        worst = fmax(worst, fabs(y - w->y) / w->y), ne++;
      }
      printf(" %.1f%% (%d) |", 100 * worst, ne);
    }
    printf("\n");
  }
  for (int k = 0; k < NAS_NASC_NCORE; k++) {
    printf("\n### %s (%s): emulated kilocycles of one 3x3 convolution, HxWxC -> C\n\n"
           "| map | C | variant | direct | F2 | F4 | direct/F2 | direct/F4 |\n"
           "|---|---|---|---|---|---|---|---|\n", nas_nasc_core_name(k), TARGETS[k]);
    for (int p = 0; p < np; p++) {
      const double *c = pr[p].cyc[k];
      if (pr[p].ci != pr[p].co) continue;
      printf("| %dx%d | %d | %s | %.1f | %.1f | %.1f | %.2f | %.2f |\n", pr[p].h, pr[p].w, pr[p].ci,
             VARIANT[pr[p].variant], c[2] / 1e3, c[0] / 1e3, c[1] / 1e3, c[2] / c[0], c[2] / c[1]);
    }
  }
  printf("\nwrote %s\n", out);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
  if (system(cmd)) {}
  free(A), free(b), free(rows);
  for (int k = 0; k < NAS_NASC_NCORE; k++) nas_target_free(t[k]);
  return 0;
}
