/* nas/cli/cmd_store.c: `nas runs`, `nas show`, `nas pareto`, `nas plot`: reading a search
 * store (results/store.h, results/pareto.h); the store is opened read-only, so these run
 * while a search writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "nas/cli/cli.h"
#include "nas/run.h"
#include "results/pareto.h"
#include "results/store.h"

static const nas_opt DB_OPT[] = {{"--db", NAS_OPT_STR, "FILE", .help = "the store"}, {0}};

/* ---- runs -------------------------------------------------------------------------------- */

static const nas_opt *const RUNS_TABLES[] = {DB_OPT, NULL};

static void runs_help(FILE *f) {
  nas_cli_help(f, "usage: nas runs --db FILE\n\nLists the runs of a store.\n\n", RUNS_TABLES, NULL);
}

static int cmd_runs(int argc, char **argv) {
  nas_args a = {.cmd = "runs", .tables = RUNS_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return runs_help(stdout), 0;
  if (nas_args_require(&a, "--db")) return NAS_EXIT_USAGE;
  nas_err e = {0};
  nas_store *st = NULL;
  if (nas_store_open_readonly(nas_arg_str(&a, "--db", NULL), &st, &e) != NAS_OK) return nas_cli_error(&e);
  int64_t *ids = NULL;
  int n = 0;
  if (nas_store_run_ids(st, &ids, &n, &e) != NAS_OK) return nas_store_close(st), nas_cli_error(&e);
  printf("%-4s %-11s %-9s %-16s %-14s %-20s %6s %6s %5s %5s %5s\n", "run", "status", "strategy",
         "space", "target", "dataset", "budget", "cands", "done", "rej", "fail");
  for (int i = 0; i < n; i++) {
    nas_run_row r;
    memset(&r, 0, sizeof r);
    if (nas_store_run_get(st, ids[i], &r, &e) != NAS_OK) break;
    int c[4] = {0};
    const char *states[4] = {NULL, "done", "rejected", "failed"};
    for (int k = 0; k < 4; k++) {
      int64_t *cid = NULL;
      nas_store_candidate_ids(st, ids[i], states[k], &cid, &c[k], &e);
      free(cid);
    }
    printf("%-4lld %-11s %-9s %-16s %-14s %-20s %6lld %6d %5d %5d %5d\n", (long long)r.id,
           r.status, r.strategy, r.space, r.target, r.dataset, r.budget, c[0], c[1], c[2], c[3]);
    nas_store_run_row_free(&r);
  }
  free(ids);
  nas_store_close(st);
  return 0;
}

const nas_cli_cmd nas_cli_runs = {"runs", "list the runs of a store", cmd_runs, runs_help};

/* ---- show -------------------------------------------------------------------------------- */

static const nas_opt SHOW_OPTS[] = {
    {"--candidate", NAS_OPT_INT, "N", 1, 2147483647, .help = "the candidate id"}, {0}};
static const nas_opt *const SHOW_TABLES[] = {DB_OPT, SHOW_OPTS, NULL};

static void show_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas show --db FILE --candidate N\n\n"
               "Prints one candidate: state, metrics, arch JSON, per-layer costs.\n\n",
               SHOW_TABLES, NULL);
}

static void num_or_null(const char *name, double v, int is_int) {
  if (!isfinite(v)) printf("  %-16s -\n", name);
  else if (is_int) printf("  %-16s %.0f\n", name, v);
  else printf("  %-16s %.6g\n", name, v);
}

static int cmd_show(int argc, char **argv) {
  nas_args a = {.cmd = "show", .tables = SHOW_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return show_help(stdout), 0;
  if (nas_args_require(&a, "--db") || nas_args_require(&a, "--candidate")) return NAS_EXIT_USAGE;
  int64_t cand = nas_arg_int(&a, "--candidate", 0);
  nas_err e = {0};
  nas_store *st = NULL;
  if (nas_store_open_readonly(nas_arg_str(&a, "--db", NULL), &st, &e) != NAS_OK) return nas_cli_error(&e);
  nas_candidate_row r;
  memset(&r, 0, sizeof r);
  if (nas_store_candidate_get(st, cand, &r, &e) != NAS_OK) return nas_store_close(st), nas_cli_error(&e);
  printf("candidate %lld (run %lld)  state %s%s%s\n", (long long)r.id, (long long)r.run_id, r.state,
         r.reason ? "  reason: " : "", r.reason ? r.reason : "");
  printf("  hash %s  parent %lld  generation %d", r.arch_hash, (long long)r.parent_id, r.generation);
  if (r.retrain_epochs) printf("  retrained from scratch for %d epochs", r.retrain_epochs);
  printf("\n  created %s  updated %s\n", r.created_at, r.updated_at);
  for (int i = 0; i < NAS_N_METRICS; i++)
    num_or_null(nas_metric_name(i), *nas_metrics_at(&r.m, i), nas_metric_is_int(i));
  printf("  arch %s\n", r.arch_json);
  nas_layer_cost *lc = NULL;
  int nl = 0;
  if (nas_store_layer_costs_get(st, cand, &lc, &nl, &e) == NAS_OK && nl) {
    printf("  %-5s %-8s %10s %8s %8s %8s %10s\n", "layer", "op", "macs", "params", "flash", "sram",
           "ms");
    for (int i = 0; i < nl; i++)
      printf("  %-5d %-8s %10lld %8lld %8lld %8lld %10.4f\n", lc[i].layer, lc[i].op, lc[i].macs,
             lc[i].params, lc[i].flash_bytes, lc[i].sram_bytes, lc[i].latency_ms);
  }
  free(lc);
  nas_store_candidate_row_free(&r);
  nas_store_close(st);
  return 0;
}

const nas_cli_cmd nas_cli_show = {"show", "print one stored candidate", cmd_show, show_help};

/* ---- pareto ------------------------------------------------------------------------------ */

static const nas_opt PARETO_OPTS[] = {
    {"--run", NAS_OPT_INT, "N", 1, 2147483647, .help = "one run (default: every run)"},
    {"--objectives", NAS_OPT_STR, "LIST",
     .help = "column:max|min,... (acc_int8_test:max,latency_pred_ms:min)"},
    {"--where", NAS_OPT_STR, "SQL", .help = "an expression over the candidate columns"},
    {"--format", NAS_OPT_ENUM, "table|csv|json", .choices = "table|csv|json", .what = "format",
     .help = "output (table)"},
    {0}};
static const nas_opt *const PARETO_TABLES[] = {DB_OPT, PARETO_OPTS, NULL};

static void pareto_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas pareto --db FILE [--run N] [--objectives LIST] [--where SQL]\n"
               "                  [--format table|csv|json]\n"
               "\n"
               "The non-dominated done candidates. LIST is column:max|min,... over the metric columns\n"
               "(default acc_int8_test:max,latency_pred_ms:min; aliases acc_int8, latency_ms, sram,\n"
               "flash); SQL is an expression over the candidate columns (peak_sram_bytes <= 65536).\n"
               "\n",
               PARETO_TABLES, NULL);
}

static int cmd_pareto(int argc, char **argv) {
  nas_args a = {.cmd = "pareto", .tables = PARETO_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return pareto_help(stdout), 0;
  if (nas_args_require(&a, "--db")) return NAS_EXIT_USAGE;
  const char *objs = nas_arg_str(&a, "--objectives", "acc_int8_test:max,latency_pred_ms:min");
  const char *format = nas_arg_str(&a, "--format", "table");
  int fmt = !strcmp(format, "table") ? 0 : !strcmp(format, "csv") ? 1 : 2;
  nas_err e = {0};
  char ex[512];
  nas_objectives ob;
  if (nas_objectives_expand(objs, ex, sizeof ex, &e) != NAS_OK ||
      nas_objectives_parse(ex, &ob, &e) != NAS_OK)
    return nas_cli_usage_error("pareto", "option --objectives: %s", e.msg);
  nas_store *st = NULL;
  if (nas_store_open_readonly(nas_arg_str(&a, "--db", NULL), &st, &e) != NAS_OK) return nas_cli_error(&e);
  nas_pareto_row *rows = NULL;
  int nr = 0;
  if (nas_pareto_front(st, &ob, nas_arg_int(&a, "--run", 0), nas_arg_str(&a, "--where", NULL), &rows,
                       &nr, &e) != NAS_OK)
    return nas_store_close(st), nas_cli_error(&e);
  if (fmt == 2) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < nr; i++) {
      cJSON *r = cJSON_CreateObject();
      cJSON_AddNumberToObject(r, "id", (double)rows[i].id);
      cJSON_AddNumberToObject(r, "run", (double)rows[i].run_id);
      for (int j = 0; j < ob.n; j++) cJSON_AddNumberToObject(r, nas_metric_name(ob.metric[j]), rows[i].v[j]);
      cJSON_AddItemToArray(arr, r);
    }
    nas_cli_print_json(arr);
  } else {
    printf(fmt ? "id,run" : "%-6s %-4s", "id", "run");
    for (int j = 0; j < ob.n; j++) printf(fmt ? ",%s" : " %16s", nas_metric_name(ob.metric[j]));
    printf("\n");
    for (int i = 0; i < nr; i++) {
      printf(fmt ? "%lld,%lld" : "%-6lld %-4lld", (long long)rows[i].id, (long long)rows[i].run_id);
      for (int j = 0; j < ob.n; j++) printf(fmt ? ",%.10g" : " %16.6g", rows[i].v[j]);
      printf("\n");
    }
  }
  free(rows);
  nas_store_close(st);
  return 0;
}

const nas_cli_cmd nas_cli_pareto = {"pareto", "the Pareto front of stored candidates", cmd_pareto,
                                    pareto_help};

/* ---- plot -------------------------------------------------------------------------------- */

static const nas_opt PLOT_OPTS[] = {
    {"--run", NAS_OPT_INT, "N", 1, 2147483647, .help = "the run"},
    {"--out", NAS_OPT_STR, "FILE.svg", .help = "the SVG file to write"},
    {"--x", NAS_OPT_ENUM, "latency|macs", .choices = "latency|macs", .help = "the x axis (latency)"},
    {0}};
static const nas_opt *const PLOT_TABLES[] = {DB_OPT, PLOT_OPTS, NULL};

static void plot_help(FILE *f) {
  nas_cli_help(f,
               "usage: nas plot --db FILE --run N --out FILE.svg [--x latency|macs]\n"
               "\n"
               "Scatter of the run's priced candidates: x = predicted latency (or MACs), y = int8 test\n"
               "accuracy (0 for candidates not trained); the Pareto front is highlighted and the run's\n"
               "latency or MACs budget is drawn as a line; a legend below the axis names them.\n"
               "\n",
               PLOT_TABLES, NULL);
}

/* The run's priced candidates: ids, x (latency or MACs), y (int8 test accuracy, 0 unless
 * done), done flags and front flags (the front is nas_pareto_front's over y:max, x:min);
 * arrays malloc'd [nc + 1], *m filled. */
typedef struct points {
  int64_t *id;
  double *x, *y;
  int *done, *front;
  int m;
} points;

static void points_free(points *p) { free(p->id), free(p->x), free(p->y), free(p->done), free(p->front); }

static int collect(nas_store *st, int64_t run, int use_macs, points *p, nas_err *e) {
  int64_t *ids = NULL;
  int nc = 0, rc = nas_store_candidate_ids(st, run, NULL, &ids, &nc, e);
  if (rc != NAS_OK) return rc;
  size_t n = (size_t)nc + 1;
  p->id = nas_calloc(n, sizeof *p->id), p->x = nas_calloc(n, sizeof *p->x), p->y = nas_calloc(n, sizeof *p->y);
  p->done = nas_calloc(n, sizeof *p->done), p->front = nas_calloc(n, sizeof *p->front);
  if (!p->id || !p->x || !p->y || !p->done || !p->front) rc = nas_errf(e, NAS_ENOMEM, "plot: out of memory");
  for (int i = 0; rc == NAS_OK && i < nc; i++) {
    nas_candidate_row r;
    memset(&r, 0, sizeof r);
    if (nas_store_candidate_get(st, ids[i], &r, e) != NAS_OK) continue;
    double x = use_macs ? r.m.macs : r.m.latency_pred_ms;
    if (isfinite(x)) {
      int k = p->m++;
      p->id[k] = r.id, p->x[k] = x;
      p->done[k] = !strcmp(r.state, "done") && isfinite(r.m.acc_int8_test);
      p->y[k] = p->done[k] ? r.m.acc_int8_test : 0;
    }
    nas_store_candidate_row_free(&r);
  }
  free(ids);
  nas_objectives ob;
  nas_pareto_row *rows = NULL;
  int nr = 0;
  if (rc == NAS_OK)
    rc = nas_objectives_parse(use_macs ? "acc_int8_test:max,macs:min" : "acc_int8_test:max,latency_pred_ms:min",
                              &ob, e);
  if (rc == NAS_OK) rc = nas_pareto_front(st, &ob, run, NULL, &rows, &nr, e);
  for (int j = 0; rc == NAS_OK && j < nr; j++)
    for (int i = 0; i < p->m; i++)
      if (p->id[i] == rows[j].id) p->front[i] = 1;
  free(rows);
  return rc;
}

/* The budget of the run's configuration on the x axis (0: none). */
static double budget_of(const nas_run_row *rr, int use_macs) {
  double budget = 0;
  cJSON *cfg = cJSON_Parse(rr->config_json);
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, use_macs ? "max_macs" : "max_latency_ms");
  if (cJSON_IsNumber(b)) budget = b->valuedouble;
  cJSON_Delete(cfg);
  return budget;
}

static void write_svg(FILE *f, const nas_run_row *rr, const points *p, int use_macs, double budget) {
  const double *X = p->x, *Y = p->y;
  double xmax = budget * 1.05;
  for (int i = 0; i < p->m; i++) xmax = X[i] > xmax ? X[i] : xmax;
  if (xmax <= 0) xmax = 1;
  xmax *= 1.05;
  const int W = 640, H = 460, L = 70, R = 20, T = 40, B = 80; /* legend in the bottom row */
  double pw = W - L - R, ph = H - T - B;
#define PX(x) (L + (x) / xmax * pw)
#define PY(y) (T + (1 - (y)) * ph)
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
  fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"14\">run %lld: %s on %s (%s)</text>\n", L,
          (long long)rr->id, rr->space, rr->target, rr->strategy);
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", L, T, pw, ph);
  for (int t = 0; t <= 5; t++) {
    double y = t / 5.0, x = xmax * t / 5.0;
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, PY(y) + 4, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3g</text>\n", PX(x), H - B + 16, x);
  }
  fprintf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 38,
          use_macs ? "MACs" : "predicted latency (ms)");
  fprintf(f, "<text transform=\"translate(18,%.0f) rotate(-90)\" text-anchor=\"middle\">int8 test accuracy</text>\n", T + ph / 2);
  if (budget > 0)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"red\" stroke-dasharray=\"6,4\"/>"
               "<text x=\"%.1f\" y=\"%d\" fill=\"red\">budget %.3g</text>\n",
            PX(budget), T, PX(budget), T + ph, PX(budget) + 4, T + 14, budget);
  for (int i = 0; i < p->m; i++)
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" stroke=\"%s\"/>\n", PX(X[i]), PY(Y[i]),
            p->front[i] ? 5 : 3, p->front[i] ? "orange" : p->done[i] ? "steelblue" : "lightgray",
            p->front[i] ? "black" : "none");
  /* the legend: the three kinds of point, and the budget line when drawn */
  static const char *const KIND[3][3] = {{"orange", "black", "Pareto front"},
                                         {"steelblue", "none", "trained"},
                                         {"lightgray", "none", "not trained (accuracy 0)"}};
  double lx = L;
  for (int k = 0; k < 3; k++) {
    fprintf(f, "<circle cx=\"%.0f\" cy=\"%d\" r=\"%d\" fill=\"%s\" stroke=\"%s\"/>"
               "<text x=\"%.0f\" y=\"%d\">%s</text>\n",
            lx + 5, H - 16, k ? 3 : 5, KIND[k][0], KIND[k][1], lx + 14, H - 12, KIND[k][2]);
    lx += 14 + 6.6 * (double)strlen(KIND[k][2]) + 16;
  }
  if (budget > 0)
    fprintf(f, "<line x1=\"%.0f\" y1=\"%d\" x2=\"%.0f\" y2=\"%d\" stroke=\"red\" "
               "stroke-dasharray=\"6,4\"/><text x=\"%.0f\" y=\"%d\">budget</text>\n",
            lx, H - 16, lx + 18, H - 16, lx + 22, H - 12);
  /* the front as a step line, by increasing x */
  int prev = -1;
  for (;;) {
    int nx = -1;
    for (int i = 0; i < p->m; i++)
      if (p->front[i] && (prev < 0 || X[i] > X[prev] || (X[i] == X[prev] && i > prev)) &&
          (nx < 0 || X[i] < X[nx]))
        nx = i;
    if (nx < 0) break;
    if (prev >= 0)
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"orange\"/>\n", PX(X[prev]),
              PY(Y[prev]), PX(X[nx]), PY(Y[nx]));
    prev = nx;
  }
  fprintf(f, "</svg>\n");
#undef PX
#undef PY
}

static int cmd_plot(int argc, char **argv) {
  nas_args a = {.cmd = "plot", .tables = PLOT_TABLES};
  if (nas_args_parse(&a, argc, argv)) return NAS_EXIT_USAGE;
  if (a.help) return plot_help(stdout), 0;
  if (nas_args_require(&a, "--db") || nas_args_require(&a, "--run") || nas_args_require(&a, "--out"))
    return NAS_EXIT_USAGE;
  const char *out = nas_arg_str(&a, "--out", NULL);
  int64_t run = nas_arg_int(&a, "--run", 0);
  int use_macs = !strcmp(nas_arg_str(&a, "--x", "latency"), "macs");
  nas_err e = {0};
  nas_store *st = NULL;
  if (nas_store_open_readonly(nas_arg_str(&a, "--db", NULL), &st, &e) != NAS_OK) return nas_cli_error(&e);
  nas_run_row rr;
  memset(&rr, 0, sizeof rr);
  points p;
  memset(&p, 0, sizeof p);
  int rc = nas_store_run_get(st, run, &rr, &e);
  if (rc == NAS_OK) rc = collect(st, run, use_macs, &p, &e);
  FILE *f = NULL;
  if (rc == NAS_OK && !(f = fopen(out, "w"))) rc = nas_errf(&e, NAS_EIO, "%s: cannot write", out);
  if (rc == NAS_OK) {
    write_svg(f, &rr, &p, use_macs, budget_of(&rr, use_macs));
    if (fclose(f) != 0) rc = nas_errf(&e, NAS_EIO, "%s: write failed", out);
    printf("wrote %s: %d candidates\n", out, p.m);
  }
  points_free(&p);
  nas_store_run_row_free(&rr);
  nas_store_close(st);
  return rc == NAS_OK ? 0 : nas_cli_error(&e);
}

const nas_cli_cmd nas_cli_plot = {"plot", "SVG scatter of a run with its front", cmd_plot, plot_help};
