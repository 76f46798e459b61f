/* latency/measure.c: operator features, measurement CSV rows and writer, host timing of the
 * int8 runtime, and the reader of the board firmware's CSV (see measure.h). The firmware
 * tree itself is written by latency/board.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "latency/measure.h"
#include "deploy/rnn8.h"
#include "core/alloc.h"

/* The table name of an operator without a latency-model kind ("other" for a kind without a
 * short name). */
static const char *other_name(int kind) {
  const char *s = nas_g8_op_short(kind);
  return strcmp(s, "?") ? s : "other";
}

void nas_g8_layer_info(const nas_g8_graph *g, int i, nas_g8_linfo *li) {
  memset(li, 0, sizeof *li);
  const nas_g8_op *op = &g->ops[i];
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const long long nx = (long long)nas_g8_numel(x), ny = (long long)nas_g8_numel(y);
  li->kop = -1, li->kh = li->kw = 1;
  li->in_bytes = nx, li->out_bytes = ny, li->macs = ny;
  li->cin = x->ndim ? x->dims[x->ndim - 1] : 1;
  li->cout = y->ndim ? y->dims[y->ndim - 1] : 1;
  switch (op->kind) {
    case NAS_G8_CONV_2D: {
      const nas_g8_tensor *w = &g->tensors[op->in[1]];
      li->kh = w->dims[1], li->kw = w->dims[2];
      li->macs = ny * li->kh * li->kw * li->cin;
      li->kop = li->kh == 1 && li->kw == 1 && op->stride_h == 1 && op->stride_w == 1
                    ? NAS_KOP_PWCONV : NAS_KOP_CONV;
      break;
    }
    case NAS_G8_DEPTHWISE_CONV_2D: {
      const nas_g8_tensor *w = &g->tensors[op->in[1]];
      li->kh = w->dims[1], li->kw = w->dims[2];
      li->macs = ny * li->kh * li->kw;
      li->kop = NAS_KOP_DWCONV;
      break;
    }
    case NAS_G8_FULLY_CONNECTED: {
      const nas_g8_tensor *w = &g->tensors[op->in[1]];
      li->cin = w->dims[1], li->cout = w->dims[0];
      li->macs = (nx / (w->dims[1] ? w->dims[1] : 1)) * (long long)w->dims[1] * w->dims[0];
      li->kop = NAS_KOP_FC;
      break;
    }
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D:
      if (op->kind == NAS_G8_AVERAGE_POOL_2D && y->dims[1] == 1 && y->dims[2] == 1 &&
          op->filter_h >= x->dims[1] && op->filter_w >= x->dims[2]) {
        li->kop = NAS_KOP_GAP, li->macs = nx;
      } else {
        li->kop = NAS_KOP_POOL, li->kh = op->filter_h, li->kw = op->filter_w;
        li->macs = ny * li->kh * li->kw;
      }
      break;
    case NAS_G8_ADD:
      li->kop = NAS_KOP_ADD, li->in_bytes = 2 * ny, li->macs = ny;
      break;
    case NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM: /* T steps of 4 gates: [H,F] and [H,H] weights */
      if (op->nin > NAS_LSTM_W_REC && x->ndim == 3) {
        const long long T = x->dims[1], F = x->dims[2];
        const long long H = g->tensors[op->in[NAS_LSTM_W_REC]].dims[0];
        li->cin = (int)F, li->cout = (int)H;
        li->macs = T * 4 * H * (F + H);
      }
      break;
    default:
      break;
  }
  if (li->kop >= 0) snprintf(li->op, sizeof li->op, "%s", nas_kop_name(li->kop));
  else snprintf(li->op, sizeof li->op, "%s", other_name(op->kind));
}

long long nas_g8_model_macs(const nas_g8_graph *g) {
  long long macs = 0;
  for (int i = 0; i < g->nops; i++) {
    nas_g8_linfo li;
    nas_g8_layer_info(g, i, &li);
    if (li.kop == NAS_KOP_CONV || li.kop == NAS_KOP_PWCONV || li.kop == NAS_KOP_DWCONV ||
        li.kop == NAS_KOP_FC)
      macs += li.macs;
  }
  return macs;
}

int nas_meas_from_graph(const nas_g8_graph *g, const char *target, const char *model,
                        const double *cycles, double total_cycles, nas_meas **rows, int *n,
                        nas_err *e) {
  *rows = NULL, *n = 0;
  nas_meas *v = nas_calloc((size_t)g->nops + 1, sizeof *v);
  if (!v) return nas_errf(e, NAS_ENOMEM, "measurement rows: out of memory");
  int k = 0;
  long long macs = nas_g8_model_macs(g);
  for (int i = 0; i < g->nops; i++) {
    nas_g8_linfo li;
    nas_g8_layer_info(g, i, &li);
    if (li.kop < 0) continue;
    nas_meas *m = &v[k++];
    snprintf(m->target, sizeof m->target, "%s", target);
    snprintf(m->model, sizeof m->model, "%s", model);
    snprintf(m->layer, sizeof m->layer, "op%d", i);
    m->kop = li.kop, m->macs = li.macs, m->in_bytes = li.in_bytes, m->out_bytes = li.out_bytes;
    m->kh = li.kh, m->kw = li.kw, m->cin = li.cin, m->cout = li.cout, m->cycles = cycles[i];
  }
  nas_meas *m = &v[k++];
  snprintf(m->target, sizeof m->target, "%s", target);
  snprintf(m->model, sizeof m->model, "%s", model);
  m->kop = -1, m->macs = macs, m->kh = m->kw = 1, m->cycles = total_cycles;
  *rows = v, *n = k;
  return NAS_OK;
}

int nas_meas_write_csv(const char *path, const nas_meas *rows, int n, double clock_mhz,
                       nas_err *e) {
  FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open for writing", path);
  fputs("target,model,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles,ms\n", f);
  for (int i = 0; i < n; i++) {
    const nas_meas *m = &rows[i];
    char ms[48] = "";
    if (clock_mhz > 0) snprintf(ms, sizeof ms, "%.6f", m->cycles / (clock_mhz * 1e3));
    if (m->kop < 0)
      fprintf(f, "%s,%s,%s,model,%lld,,,,,,%.0f,%s\n", m->target, m->model, m->layer, m->macs,
              m->cycles, ms);
    else
      fprintf(f, "%s,%s,%s,%s,%lld,%lld,%lld,%dx%d,%d,%d,%.0f,%s\n", m->target, m->model,
              m->layer, nas_kop_name(m->kop), m->macs, m->in_bytes, m->out_bytes, m->kh, m->kw,
              m->cin, m->cout, m->cycles, ms);
  }
  int bad = ferror(f) != 0;
  if (f != stdout) bad |= fclose(f) != 0;
  else bad |= fflush(f) != 0;
  return bad ? nas_errf(e, NAS_EIO, "%s: write failed", path) : NAS_OK;
}

/* ---- host back end ----------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int nas_host_time(const nas_g8_graph *g, const int8_t *in, int runs, double *layer_ms,
                  double *total_ms, nas_err *e) {
  if (runs < 1) return nas_errf(e, NAS_EINVAL, "host timing: runs must be >= 1");
  nas_g8_exec x; /* plan, prepared operators and arena, built once outside the timing */
  int rc = nas_g8_exec_init(&x, g, e);
  if (rc) return rc;
  double *t = nas_malloc(sizeof *t * (size_t)runs * (size_t)(g->nops + 1));
  if (!t) {
    nas_g8_exec_free(&x);
    return nas_errf(e, NAS_ENOMEM, "host measurement: out of memory for %d runs", runs);
  }
  const int nl = g->nops + 1;
  for (int r = 0; r < runs && !rc; r++) {
    double t0 = now_s(), tot = 0;
    memcpy(x.act[g->input], in, nas_g8_numel(&g->tensors[g->input]));
    for (int i = 0; i < g->nops && !rc; i++) {
      double a = now_s();
      rc = nas_g8_run_op_prep(g, &x.prep, i, x.act, x.scratch, e);
      t[(size_t)i * (size_t)runs + (size_t)r] = (now_s() - a) * 1e3;
    }
    tot = (now_s() - t0) * 1e3;
    t[(size_t)g->nops * (size_t)runs + (size_t)r] = tot;
  }
  if (!rc) {
    for (int i = 0; i < g->nops; i++) layer_ms[i] = median(t + (size_t)i * (size_t)runs, runs);
    *total_ms = median(t + (size_t)(nl - 1) * (size_t)runs, runs);
  }
  free(t);
  nas_g8_exec_free(&x);
  return rc;
}

/* ---- board CSV ingest -------------------------------------------------------------------- */

int nas_csv_split(char *line, char **f, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return -1;
    f[n++] = p;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = 0, p = c + 1;
  }
  for (int i = 0; i < n; i++) { /* trim */
    while (*f[i] == ' ' || *f[i] == '\t') f[i]++;
    size_t l = strlen(f[i]);
    while (l && (f[i][l - 1] == ' ' || f[i][l - 1] == '\r' || f[i][l - 1] == '\n' ||
                 f[i][l - 1] == '\t'))
      f[i][--l] = 0;
  }
  return n;
}

static int int_field(const char *s, long long lo, long long hi, long long *v) {
  char *end;
  if (!*s) return -1;
  long long x = strtoll(s, &end, 10);
  if (*end || x < lo || x > hi) return -1;
  *v = x;
  return 0;
}

typedef struct brow { /* one layer of the board log (meta from its first run) */
  int seen;           /* 1 once any run gave it */
  nas_meas m;         /* features; cycles unused */
} brow;

int nas_board_ingest(const char *path, const char *target_id, nas_meas **rows, int *n,
                     nas_err *e) {
  *rows = NULL, *n = 0;
  FILE *f = fopen(path, "r");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open", path);
  char line[4096], model[48] = "", target[32] = "";
  int lineno = 0, state = 0, rc = NAS_OK; /* state 0 before BEGIN, 1 inside, 2 after END */
  long long nops = 0, runs = 0;
  double *cyc = NULL; /* [(nops + 1) * runs], -1 = missing; layer nops is the total */
  brow *meta = NULL;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\r\n")] = 0;
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "NAS,", 4) && strncmp(p, "NAS-", 4)) continue; /* other serial output */
    char buf[4096], *fl[16];
    snprintf(buf, sizeof buf, "%s", p);
    int nf = nas_csv_split(buf, fl, 16);
    if (!strcmp(fl[0], "NAS-BEGIN")) {
      if (state != 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: a second NAS-BEGIN (one measurement per file)", path, lineno); break; }
      if (nf != 6 || strcmp(fl[1], "v1")) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: expected NAS-BEGIN,v1,MODEL,TARGET,OPERATORS,RUNS", path, lineno); break; }
      if (!*fl[2] || strlen(fl[2]) >= sizeof model || !*fl[3] || strlen(fl[3]) >= sizeof target) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: model or target id empty or too long", path, lineno); break; }
      /* the target id leads every CSV row written from the log: '#' there would make a comment */
      if (strspn(fl[3], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(fl[3])) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: target id '%s' has characters other than letters, digits, '-', '_' and '.'", path, lineno, fl[3]); break; }
      if (int_field(fl[4], 1, 100000, &nops) || int_field(fl[5], 1, 10000, &runs) || nops * runs > 10000000) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: operators must be 1..100000 and runs 1..10000", path, lineno); break; }
      snprintf(model, sizeof model, "%s", fl[2]);
      snprintf(target, sizeof target, "%s", fl[3]);
      if (target_id && strcmp(target_id, target)) { rc = nas_errf(e, NAS_EINVAL, "%s:%d: the firmware was emitted for target '%s', not '%s'", path, lineno, target, target_id); break; }
      cyc = nas_malloc(sizeof *cyc * (size_t)(nops + 1) * (size_t)runs);
      meta = nas_calloc((size_t)nops + 1, sizeof *meta);
      if (!cyc || !meta) { rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path); break; }
      for (long long i = 0; i < (nops + 1) * runs; i++) cyc[i] = -1;
      state = 1;
    } else if (!strcmp(fl[0], "NAS-END")) {
      if (state != 1 || nf != 1) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: NAS-END without NAS-BEGIN", path, lineno); break; }
      for (long long i = 0; i <= nops && !rc; i++)
        for (long long r = 0; r < runs && !rc; r++)
          if (cyc[i * runs + r] < 0)
            rc = nas_errf(e, NAS_EFORMAT, "%s:%d: run %lld has no line for %s %lld", path, lineno, r, i == nops ? "the total, layer" : "operator", i == nops ? -1LL : i);
      state = 2;
    } else if (!strcmp(fl[0], "NAS")) {
      if (state != 1) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: a NAS line outside NAS-BEGIN .. NAS-END", path, lineno); break; }
      if (nf != 12) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: %d fields, a NAS line has 12 (NAS,run,index,layer,op,macs,in_bytes,out_bytes,k,cin,cout,cycles)", path, lineno, nf); break; }
      long long run, idx, v[5], cy;
      const char *names[5] = {"macs", "in_bytes", "out_bytes", "cin", "cout"};
      const int at[5] = {5, 6, 7, 9, 10};
      if (int_field(fl[1], 0, runs - 1, &run)) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field 'run': '%s' is not in 0..%lld", path, lineno, fl[1], runs - 1); break; }
      if (int_field(fl[2], -1, nops - 1, &idx)) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field 'index': '%s' is not in -1..%lld", path, lineno, fl[2], nops - 1); break; }
      for (int k = 0; k < 5 && !rc; k++)
        if (int_field(fl[at[k]], 0, (long long)1 << 50, &v[k]))
          rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field '%s': '%s' is not an integer >= 0", path, lineno, names[k], fl[at[k]]);
      if (rc) break;
      if (int_field(fl[11], 0, (long long)1 << 50, &cy)) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field 'cycles': '%s' is not an integer >= 0", path, lineno, fl[11]); break; }
      const char *op = fl[4];
      int kop = nas_kop_from_name(op);
      int ok = idx < 0 ? !strcmp(op, "model")
                       : kop >= 0 || !strcmp(op, "reshape") || !strcmp(op, "softmax") ||
                             !strcmp(op, "quantize") || !strcmp(op, "other");
      if (!ok) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field 'op': unknown op '%s'", path, lineno, op); break; }
      int kh = 0, kw = 0;
      char tail;
      if (sscanf(fl[8], "%dx%d%c", &kh, &kw, &tail) != 2) {
        if (sscanf(fl[8], "%d%c", &kh, &tail) == 1) kw = kh;
        else kh = 0;
      }
      if (kh < 1 || kw < 1) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field 'k': expected K or KHxKW", path, lineno); break; }
      if (!*fl[3] || strlen(fl[3]) >= sizeof meta[0].m.layer) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: field 'layer': empty or too long", path, lineno); break; }
      long long li = idx < 0 ? nops : idx;
      if (cyc[li * runs + run] >= 0) { rc = nas_errf(e, NAS_EFORMAT, "%s:%d: run %lld gives layer %lld twice", path, lineno, run, idx); break; }
      cyc[li * runs + run] = (double)cy;
      nas_meas *m = &meta[li].m;
      const char *lid = idx < 0 ? "" : fl[3]; /* the total row has no layer id */
      if (meta[li].seen && (strcmp(m->layer, lid) || m->macs != v[0] || m->kop != (idx < 0 ? -1 : kop))) {
        rc = nas_errf(e, NAS_EFORMAT, "%s:%d: layer %lld differs from its first run", path, lineno, idx);
        break;
      }
      if (!meta[li].seen) {
        meta[li].seen = 1;
        snprintf(m->target, sizeof m->target, "%s", target);
        snprintf(m->model, sizeof m->model, "%s", model);
        snprintf(m->layer, sizeof m->layer, "%s", lid);
        m->kop = idx < 0 ? -1 : kop, m->macs = v[0], m->in_bytes = v[1], m->out_bytes = v[2];
        m->kh = kh, m->kw = kw, m->cin = (int)v[3], m->cout = (int)v[4], m->line = lineno;
      }
    } else {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: unknown record '%s' (NAS-BEGIN, NAS, NAS-END)", path, lineno, fl[0]);
    }
  }
  fclose(f);
  if (!rc && state == 0) rc = nas_errf(e, NAS_EFORMAT, "%s: no NAS-BEGIN line (not the log of nas board firmware)", path);
  if (!rc && state == 1) rc = nas_errf(e, NAS_EFORMAT, "%s:%d: no NAS-END (log truncated?)", path, lineno);
  nas_meas *v = NULL;
  int k = 0;
  if (!rc) {
    v = nas_calloc((size_t)nops + 1, sizeof *v);
    if (!v) rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  }
  for (long long i = 0; !rc && i <= nops; i++) {
    long long li = i < nops ? i : nops; /* layers first, the total last */
    if (meta[li].m.kop < 0 && li < nops) continue; /* reshape/softmax/quantize: total only */
    v[k] = meta[li].m;
    v[k].cycles = median(cyc + li * runs, (int)runs);
    k++;
  }
  free(cyc), free(meta);
  if (rc) {
    free(v);
    return rc;
  }
  *rows = v, *n = k;
  return NAS_OK;
}
