/* latency/cycles_fit.c: the instruction-class mix from the corpus, the published board
 * measurements with their architectures, and the per-part fit of latency/cycles.h
 * (latency/cycles_fit.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "deploy/lower_shape.h"
#include "latency/cycles_fit.h"
#include "latency/measure.h"
#include "latency/target.h"
#include "train/net.h"

/* ---- the class mix ------------------------------------------------------------------------ */

static void add_mix(double acc[NAS_CYC_NCNT + 1], const nas_tflm_corpus_op *o) {
  const double *c = o->cls;
  acc[NAS_CYC_LDST] += c[NAS_TFLM_CLS_LOAD] + c[NAS_TFLM_CLS_STORE];
  acc[NAS_CYC_MUL] += c[NAS_TFLM_CLS_MUL];
  acc[NAS_CYC_BRANCH] += c[NAS_TFLM_CLS_BRANCH];
  acc[NAS_CYC_OTHER] += c[NAS_TFLM_CLS_SIMD] + c[NAS_TFLM_CLS_IT] + c[NAS_TFLM_CLS_VFP] +
                        c[NAS_TFLM_CLS_OTHER] + c[NAS_TFLM_CLS_DIV];
  acc[NAS_CYC_XFER] += c[NAS_TFLM_CLS_LOAD_REGS] - c[NAS_TFLM_CLS_LOAD] +
                       c[NAS_TFLM_CLS_STORE_REGS] - c[NAS_TFLM_CLS_STORE];
  acc[NAS_CYC_TAKEN] += c[NAS_TFLM_CLS_BRANCH_TAKEN];
  acc[NAS_CYC_DIV] += c[NAS_TFLM_CLS_DIV];
  for (int k = NAS_TFLM_CLS_LOAD; k <= NAS_TFLM_CLS_OTHER; k++) acc[NAS_CYC_NCNT] += c[k];
}

int nas_cycles_mix_fit(const nas_tflm_corpus *c, nas_cycles_model *m, nas_err *e) {
  double acc[NAS_TFLM_NCORE][NAS_TFLM_NPATH + 1][NAS_CYC_NCNT + 1];
  memset(acc, 0, sizeof acc);
  memset(m->mix, 0, sizeof m->mix), memset(m->has_mix, 0, sizeof m->has_mix);
  for (int k = 0; k < c->nops; k++) {
    const nas_tflm_corpus_op *o = &c->op[k];
    const nas_tflm_corpus_model *x = &c->model[o->model];
    if (x->heldout || x->mlperf) continue;
    nas_tflm_op d;
    int rc = nas_tflm_op_describe(&x->graph, o->op_index, NAS_TFLM_DSP, &d, e);
    if (rc) return nas_err_prefix(e, "corpus model %s operator %d", x->id, o->op_index);
    add_mix(acc[o->core][d.path], o);
    add_mix(acc[o->core][NAS_TFLM_NPATH], o);
  }
  for (int cr = 0; cr < NAS_TFLM_NCORE; cr++)
    for (int p = 0; p <= NAS_TFLM_NPATH; p++) {
      const double n = acc[cr][p][NAS_CYC_NCNT];
      if (n <= 0) continue;
      for (int k = 0; k < NAS_CYC_NCNT; k++) m->mix[cr][p][k] = acc[cr][p][k] / n;
      m->has_mix[cr][p] = 1;
    }
  return NAS_OK;
}

/* ---- published measurements ---------------------------------------------------------------- */

void nas_cycles_boards_free(nas_cycles_boards *b) {
  if (!b) return;
  for (int i = 0; i < b->ngraphs; i++) nas_g8_graph_free(&b->graph[i]);
  free(b->graph), free(b->graph_arch), free(b->row);
  memset(b, 0, sizeof *b);
}

typedef struct board_model {
  char model[48], csv[64], arch[96], build[24], ops[256];
  unsigned flags;
  int graph;
} board_model;

static int lower_arch(const char *dir, const char *arch, nas_g8_graph *g, nas_err *e) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, arch);
  char *text = NULL;
  long len = 0;
  int rc = nas_read_file(path, &text, &len, e);
  if (rc) return rc;
  nas_net *net = NULL;
  rc = nas_net_build(text, path, 1, 1, &net, e);
  free(text);
  if (rc) return rc;
  nas_lower_cfg cfg = {.softmax = 1, .fc_per_channel = 0};
  rc = nas_lower_structure(net, &cfg, g, e);
  nas_net_free(net);
  if (rc) nas_err_prefix(e, "%s", path);
  return rc;
}

static int read_map(const char *dir, board_model **out, int *n, nas_err *e) {
  char path[1200];
  snprintf(path, sizeof path, "%s/board_models.csv", dir);
  char *text = NULL;
  long len = 0;
  int rc = nas_read_file(path, &text, &len, e), lineno = 0, have_header = 0, cap = 0;
  if (rc) return rc;
  board_model *v = NULL;
  *n = 0;
  for (char *line = text, *next; !rc && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    lineno++;
    if (line[0] == '#' || line[0] == '\0' || line[0] == '\r') continue;
    char *f[8];
    int nf = nas_csv_split(line, f, 8);
    if (!have_header) {
      if (nf != 6 || strcmp(f[0], "model") || strcmp(f[1], "csv") || strcmp(f[2], "arch") ||
          strcmp(f[3], "build") || strcmp(f[4], "weights") || strcmp(f[5], "ops"))
        rc = nas_errf(e, NAS_EFORMAT, "%s:%d: header must be model,csv,arch,build,weights,ops", path, lineno);
      have_header = 1;
      continue;
    }
    if (nf != 6) {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: %d fields, expected 6", path, lineno, nf);
      break;
    }
    if (*n == cap) {
      board_model *nv = nas_realloc(v, sizeof *nv * (size_t)(cap = cap ? cap * 2 : 16));
      if (!nv) {
        rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
        break;
      }
      v = nv;
    }
    board_model *b = &v[*n];
    memset(b, 0, sizeof *b);
    if (strlen(f[0]) >= sizeof b->model || strlen(f[1]) >= sizeof b->csv ||
        strlen(f[2]) >= sizeof b->arch || strlen(f[3]) >= sizeof b->build ||
        strlen(f[5]) >= sizeof b->ops || !*f[3]) {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: a field is empty or too long", path, lineno);
      break;
    }
    strcpy(b->model, f[0]), strcpy(b->csv, f[1]), strcpy(b->arch, f[2]);
    strcpy(b->build, f[3]), strcpy(b->ops, f[5]);
    if (!strcmp(f[4], "sram")) b->flags = NAS_CYC_WEIGHTS_SRAM;
    else if (strcmp(f[4], "flash"))
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: column 'weights': '%s' is not flash or sram", path, lineno, f[4]);
    (*n)++;
  }
  free(text);
  if (!rc && !have_header) rc = nas_errf(e, NAS_EFORMAT, "%s: no header line", path);
  if (rc) free(v), v = NULL, *n = 0;
  *out = v;
  return rc;
}

/* Operator index of layer id `layer` in "conv1=0;pool1=1;...", or -1. */
static int layer_op(const char *ops, const char *layer) {
  size_t n = strlen(layer);
  for (const char *p = ops; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL)
    if (!strncmp(p, layer, n) && p[n] == '=') return atoi(p + n + 1);
  return -1;
}

static int kop_matches(int kop, int kind) {
  switch (kop) {
    case NAS_KOP_CONV:
    case NAS_KOP_PWCONV: return kind == NAS_G8_CONV_2D;
    case NAS_KOP_DWCONV: return kind == NAS_G8_DEPTHWISE_CONV_2D;
    case NAS_KOP_FC: return kind == NAS_G8_FULLY_CONNECTED;
    case NAS_KOP_POOL: return kind == NAS_G8_MAX_POOL_2D || kind == NAS_G8_AVERAGE_POOL_2D;
    case NAS_KOP_ADD: return kind == NAS_G8_ADD;
    default: return 0;
  }
}

static int add_rows(const char *dir, const board_model *bm, int nbm, const nas_cycles_part *p,
                    const char *csv, nas_cycles_boards *b, nas_err *e) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, csv);
  nas_meas *rows = NULL;
  int n = 0, rc = nas_meas_read_csv(path, p->id, p->clock_mhz, &rows, &n, e);
  if (rc) return rc;
  nas_cycles_row *nr = n ? nas_realloc(b->row, sizeof *nr * (size_t)(b->nrows + n)) : b->row;
  if (n && !nr) rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  else b->row = nr;
  for (int i = 0; !rc && i < n; i++) {
    const nas_meas *r = &rows[i];
    int k = 0;
    while (k < nbm && (strcmp(bm[k].model, r->model) || strcmp(bm[k].csv, csv))) k++;
    if (k == nbm) {
      b->nskipped++;
      continue;
    }
    const nas_g8_graph *g = &b->graph[bm[k].graph];
    nas_cycles_row *x = &b->row[b->nrows];
    memset(x, 0, sizeof *x);
    snprintf(x->target, sizeof x->target, "%s", p->id);
    snprintf(x->model, sizeof x->model, "%s", r->model);
    snprintf(x->layer, sizeof x->layer, "%s", r->layer);
    snprintf(x->build, sizeof x->build, "%s", bm[k].build);
    x->graph = bm[k].graph, x->flags = bm[k].flags, x->measured = r->cycles;
    if (r->kop < 0) {
      x->whole = 1, x->op_first = 0, x->op_last = g->nops - 1;
    } else {
      int op = layer_op(bm[k].ops, r->layer);
      if (op < 0 || op >= g->nops || !kop_matches(r->kop, g->ops[op].kind)) {
        rc = nas_errf(e, NAS_EFORMAT, "%s:%d: layer '%s' of %s: board_models.csv maps it to no operator of kind %s",
                      path, r->line, r->layer, r->model, nas_kop_name(r->kop));
        break;
      }
      x->op_first = x->op_last = op;
    }
    if (!(x->measured > 0)) {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: measured time must be > 0", path, r->line);
      break;
    }
    b->nrows++;
  }
  free(rows);
  return rc;
}

int nas_cycles_boards_read(const char *dir, const nas_cycles_model *m, nas_cycles_boards *b,
                           nas_err *e) {
  memset(b, 0, sizeof *b);
  board_model *bm = NULL;
  int nbm = 0, rc = read_map(dir, &bm, &nbm, e);
  if (!rc && nbm) {
    b->graph = nas_calloc((size_t)nbm, sizeof *b->graph);
    b->graph_arch = nas_calloc((size_t)nbm, sizeof *b->graph_arch);
    if (!b->graph || !b->graph_arch) rc = nas_errf(e, NAS_ENOMEM, "board models: out of memory");
  }
  for (int k = 0; !rc && k < nbm; k++) { /* one graph per distinct architecture */
    int g = 0;
    while (g < b->ngraphs && strcmp(b->graph_arch[g], bm[k].arch)) g++;
    if (g == b->ngraphs) {
      rc = lower_arch(dir, bm[k].arch, &b->graph[g], e);
      if (rc) break;
      snprintf(b->graph_arch[g], sizeof b->graph_arch[g], "%s", bm[k].arch);
      b->ngraphs++;
    }
    bm[k].graph = g;
  }
  for (int k = 0; !rc && k < nbm; k++) { /* every measurement CSV once, for every part */
    int seen = 0;
    for (int j = 0; j < k; j++) seen |= !strcmp(bm[j].csv, bm[k].csv);
    for (int i = 0; !seen && !rc && i < m->nparts; i++)
      rc = add_rows(dir, bm, nbm, &m->part[i], bm[k].csv, b, e);
  }
  for (int i = 0; !rc && i < b->nrows; i++) { /* layer rows weigh by their share of the model */
    nas_cycles_row *x = &b->row[i];
    if (x->whole) {
      x->weight = 1;
      continue;
    }
    double tot = 0;
    for (int j = 0; j < b->nrows; j++)
      if (!b->row[j].whole && !strcmp(b->row[j].target, x->target) && !strcmp(b->row[j].model, x->model))
        tot += b->row[j].measured;
    x->weight = x->measured / tot;
  }
  free(bm);
  if (rc) nas_cycles_boards_free(b);
  return rc;
}

/* ---- the fit ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  if (n == 0) return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Scale minimising the weighted relative error of the rows of part id and build, without
 * model skip (NULL: none). */
static double fit_scale(const nas_cycles_boards *b, const char *id, const char *build,
                        const char *skip) {
  double num = 0, den = 0;
  for (int i = 0; i < b->nrows; i++) {
    const nas_cycles_row *x = &b->row[i];
    if (strcmp(x->target, id) || strcmp(x->build, build) || (skip && !strcmp(x->model, skip))) continue;
    const double y2 = x->measured * x->measured;
    num += x->weight * x->core_cycles * (x->measured - x->flash_cycles) / y2;
    den += x->weight * x->core_cycles * x->core_cycles / y2;
  }
  return den > 0 ? num / den : 0;
}

/* Instructions, core and flash cycles of every row (independent of the scale). */
static int row_terms(const nas_cycles_model *m, const nas_tflm_insn_model *im,
                     nas_cycles_boards *b, nas_err *e) {
  for (int i = 0; i < b->nrows; i++) {
    nas_cycles_row *x = &b->row[i];
    const nas_cycles_part *p = nas_cycles_find(m, x->target);
    nas_cycles_report r;
    int rc = nas_cycles_graph(m, im, p, &b->graph[x->graph], x->flags, &r, e);
    if (rc) return nas_err_prefix(e, "%s on %s", x->model, x->target);
    x->insn = x->core_cycles = x->flash_cycles = 0;
    for (int k = x->op_first; k <= x->op_last; k++)
      x->insn += r.op[k].insn, x->core_cycles += r.op[k].core_cycles, x->flash_cycles += r.op[k].flash_cycles;
    double oc = 0;
    if (x->whole && (rc = nas_cycles_overhead(m, p, r.overhead_insn, &oc, e)) == NAS_OK)
      x->insn += r.overhead_insn, x->core_cycles += oc;
    nas_cycles_report_free(&r);
    if (rc) return rc;
  }
  return NAS_OK;
}

/* Models of part id and build that have rows (their names into models, comma-separated). */
static int count_models(const nas_cycles_boards *b, const char *id, const char *build,
                        char *models, size_t cap) {
  int n = 0;
  size_t len = 0;
  if (cap) models[0] = '\0';
  for (int i = 0; i < b->nrows; i++) {
    const nas_cycles_row *x = &b->row[i];
    if (strcmp(x->target, id) || strcmp(x->build, build)) continue;
    int dup = 0;
    for (int j = 0; j < i; j++)
      dup |= !strcmp(b->row[j].target, id) && !strcmp(b->row[j].build, build) && !strcmp(b->row[j].model, x->model);
    if (dup) continue;
    n++;
    if (len + strlen(x->model) + 3 < cap)
      len += (size_t)snprintf(models + len, cap - len, "%s%s", len ? ", " : "", x->model);
  }
  return n;
}

/* Fits part p on build's rows: the scale, the rows' predictions and the stats. */
static void fit_build(nas_cycles_boards *b, const nas_cycles_part *p, const char *build,
                      double *err, nas_cycles_fit_stats *s) {
  memset(s, 0, sizeof *s);
  snprintf(s->target, sizeof s->target, "%s", p->id);
  snprintf(s->build, sizeof s->build, "%s", build);
  s->scale = fit_scale(b, p->id, build, NULL);
  char models[8];
  s->models = count_models(b, p->id, build, models, sizeof models);
  for (int k = 0; k < b->nrows; k++) {
    nas_cycles_row *x = &b->row[k];
    if (strcmp(x->target, p->id) || strcmp(x->build, build)) continue;
    x->predicted = s->scale * x->core_cycles + x->flash_cycles;
    x->err = fabs(x->predicted - x->measured) / x->measured;
    if (x->err > s->max) s->max = x->err;
    err[s->rows++] = x->err;
  }
  s->median = median(err, s->rows);
  if (s->models < 2) return;
  int nl = 0; /* leave each model out in turn */
  for (int k = 0; k < b->nrows; k++) {
    const nas_cycles_row *x = &b->row[k];
    if (strcmp(x->target, p->id) || strcmp(x->build, build)) continue;
    const double sc = fit_scale(b, p->id, build, x->model);
    const double le = fabs(sc * x->core_cycles + x->flash_cycles - x->measured) / x->measured;
    err[nl++] = le;
    if (le > s->loo_max) s->loo_max = le;
  }
  s->loo_median = median(err, nl);
}

int nas_cycles_fit_parts(nas_cycles_model *m, const nas_tflm_insn_model *im,
                         nas_cycles_boards *b, nas_cycles_fit_stats **stats, int *nstats,
                         nas_err *e) {
  if (stats) *stats = NULL, *nstats = 0;
  for (int i = 0; i < m->nparts; i++) { /* which parts have rows */
    nas_cycles_part *p = &m->part[i];
    int n = 0, nt = 0;
    for (int k = 0; k < b->nrows; k++)
      if (!strcmp(b->row[k].target, p->id)) n++, nt += !strcmp(b->row[k].build, NAS_CYCLES_BUILD);
    if (n && p->core < 0)
      return nas_errf(e, NAS_EINVAL, "part %s: has measurements but core %s has no instruction model", p->id, p->core_name);
    if (nt && p->from[0])
      return nas_errf(e, NAS_EINVAL, "part %s: has %s measurements, so it is calibrated: drop 'from' (%s)",
                      p->id, NAS_CYCLES_BUILD, p->from);
    p->calibrated = nt > 0, p->rows = nt;
    if (nt) p->scale = 1;
  }
  int rc = row_terms(m, im, b, e), ns = 0;
  double *err = rc ? NULL : nas_malloc(sizeof *err * (size_t)(b->nrows + 1));
  nas_cycles_fit_stats *st = rc ? NULL : nas_calloc((size_t)b->nrows + 1, sizeof *st);
  if (!rc && (!err || !st)) rc = nas_errf(e, NAS_ENOMEM, "cycles fit: out of memory");
  for (int k = 0; !rc && k < b->nrows; k++) { /* every (part, build) once */
    const nas_cycles_row *x = &b->row[k];
    int seen = 0;
    for (int j = 0; j < k; j++) seen |= !strcmp(b->row[j].target, x->target) && !strcmp(b->row[j].build, x->build);
    if (seen) continue;
    nas_cycles_part *p = (nas_cycles_part *)nas_cycles_find(m, x->target);
    nas_cycles_fit_stats *s = &st[ns++];
    fit_build(b, p, x->build, err, s);
    if (!(s->scale > 0)) {
      rc = nas_errf(e, NAS_EINVAL, "part %s, build %s: the fitted scale is not positive", p->id, x->build);
      break;
    }
    if (strcmp(x->build, NAS_CYCLES_BUILD)) continue;
    char models[300];
    count_models(b, p->id, x->build, models, sizeof models);
    p->scale = s->scale, p->err_median = s->median, p->err_max = s->max, p->from[0] = '\0';
    snprintf(p->calibration, sizeof p->calibration,
             "scale fitted by cycles_fit on %d published measurements of TFLM + CMSIS-NN on this board "
             "(%s; sources in latency/calibration/SOURCES.md); in-sample error median %.1f%%, max %.1f%%",
             s->rows, models, 100 * s->median, 100 * s->max);
  }
  for (int i = 0; !rc && i < m->nparts; i++) { /* transfers */
    nas_cycles_part *p = &m->part[i];
    if (p->core < 0 || p->calibrated) continue;
    const nas_cycles_part *src = nas_cycles_find(m, p->from);
    if (!p->from[0] || !src || !src->calibrated)
      rc = nas_errf(e, NAS_EINVAL, "part %s: no %s measurements and 'from' (%s) names no calibrated part",
                    p->id, NAS_CYCLES_BUILD, p->from[0] ? p->from : "none");
    else
      p->scale = src->scale;
  }
  free(err);
  if (!rc && stats) *stats = st, *nstats = ns;
  else free(st);
  return rc;
}
