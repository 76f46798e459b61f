/* latency/tflm_corpus.c: reads the shared TFLM + CMSIS-NN corpus (latency/tflm_fit.h):
 * models.csv (one row per model and core), ops.csv (one row per operator and core) and the
 * gzipped .tflite of every model, imported into the project's int8 graph. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "latency/tflm_fit.h"

int nas_tflm_heldout(const char *model_id) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)model_id; *p; p++) h = (h ^ *p) * 16777619u;
  return h % 5 == 0;
}

void nas_tflm_corpus_free(nas_tflm_corpus *c) {
  if (!c) return;
  for (int i = 0; i < c->nmodels; i++) nas_g8_graph_free(&c->model[i].graph);
  free(c->model), free(c->op);
  memset(c, 0, sizeof *c);
}

/* ---- CSV (no quoting: the corpus has none) --------------------------------------------- */
#define MAXCOL 128

typedef struct csv {
  char *text;          /* the whole file, split in place */
  char *next;          /* start of the next line */
  const char *path;
  int line;
  int ncol;
  char *col[MAXCOL];   /* fields of the current line */
  char *head[MAXCOL];  /* header names */
  int nhead;
} csv;

static int split_line(csv *r, char **out, int *n) {
  if (!r->next || !*r->next) return 0;
  char *s = r->next, *eol = strchr(s, '\n');
  if (eol) *eol = '\0', r->next = eol + 1;
  else r->next = s + strlen(s);
  if (eol && eol > s && eol[-1] == '\r') eol[-1] = '\0';
  r->line++;
  int k = 0;
  out[k++] = s;
  for (char *p = s; *p; p++)
    if (*p == ',') {
      *p = '\0';
      if (k == MAXCOL) return -1;
      out[k++] = p + 1;
    }
  *n = k;
  return 1;
}

static int csv_open(csv *r, const char *path, nas_err *e) {
  memset(r, 0, sizeof *r);
  r->path = path;
  long len;
  int rc = nas_read_file(path, &r->text, &len, e);
  if (rc) return rc;
  r->next = r->text;
  if (split_line(r, r->head, &r->nhead) != 1) return nas_errf(e, NAS_EFORMAT, "%s: no header line", path);
  return NAS_OK;
}

static int csv_col(csv *r, const char *name, nas_err *e) {
  for (int k = 0; k < r->nhead; k++)
    if (!strcmp(r->head[k], name)) return k;
  nas_errf(e, NAS_EFORMAT, "%s: no column '%s'", r->path, name);
  return -1;
}

/* Next data line; 0 at the end, <0 (error set) on a line with the wrong field count. */
static int csv_next(csv *r, nas_err *e) {
  int rc = split_line(r, r->col, &r->ncol);
  if (rc == 1 && r->ncol != r->nhead) {
    nas_errf(e, NAS_EFORMAT, "%s:%d: %d fields, the header has %d", r->path, r->line, r->ncol, r->nhead);
    return -1;
  }
  if (rc < 0) nas_errf(e, NAS_EFORMAT, "%s:%d: too many fields", r->path, r->line);
  return rc;
}

static int num(csv *r, int col, double *v, nas_err *e) {
  char *end;
  *v = strtod(r->col[col], &end);
  if (end == r->col[col] || *end)
    return nas_errf(e, NAS_EFORMAT, "%s:%d: column '%s': '%s' is not a number", r->path, r->line, r->head[col], r->col[col]);
  return NAS_OK;
}

/* ---- models ---------------------------------------------------------------------------- */

static int find_model(const nas_tflm_corpus *c, const char *id) {
  for (int i = c->nmodels - 1; i >= 0; i--)
    if (!strcmp(c->model[i].id, id)) return i;
  return -1;
}

static int read_models(nas_tflm_corpus *c, const char *path, nas_err *e) {
  csv r;
  int rc = csv_open(&r, path, e);
  if (rc) return rc;
  enum { NCOL = 16 };
  int ci[NCOL];
  const char *names[NCOL] = {"model_id", "family", "core", "n_ops", "insn_invoke_no_profiler",
      "arena_used_bytes_m32", "head_bytes_m32", "head_bytes_host64", "rec_tail_bytes_m32",
      "eval_tensor_data_used_m32", "persistent_tensor_data_used_m32",
      "persistent_tensor_quant_data_used_m32", "persistent_buffer_data_used_m32",
      "node_and_registration_used_m32", "persistent_buffer_data_count_m32",
      "persistent_buffer_data_requested_m32"};
  for (int k = 0; k < NCOL; k++)
    if ((ci[k] = csv_col(&r, names[k], e)) < 0) return free(r.text), NAS_EFORMAT;
  int cap = 0;
  while ((rc = csv_next(&r, e)) == 1) {
    const int core = nas_tflm_core_from_name(r.col[ci[2]]);
    if (core < 0) {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: unknown core '%s'", path, r.line, r.col[ci[2]]);
      break;
    }
    int m = find_model(c, r.col[ci[0]]);
    if (m < 0) {
      if (c->nmodels == cap) {
        cap = cap ? 2 * cap : 64;
        nas_tflm_corpus_model *nm = nas_realloc(c->model, sizeof *nm * (size_t)cap);
        if (!nm) {
          rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
          break;
        }
        c->model = nm;
      }
      m = c->nmodels++;
      nas_tflm_corpus_model *x = &c->model[m];
      memset(x, 0, sizeof *x);
      snprintf(x->id, sizeof x->id, "%s", r.col[ci[0]]);
      snprintf(x->family, sizeof x->family, "%s", r.col[ci[1]]);
      x->heldout = nas_tflm_heldout(x->id);
      x->mlperf = !strcmp(x->family, "mlperf-tiny");
      for (int k = 0; k < NAS_TFLM_NCORE; k++) x->first_op[k] = -1;
    }
    nas_tflm_corpus_model *x = &c->model[m];
    double v[NCOL];
    int bad = NAS_OK;
    for (int k = 3; !bad && k < NCOL; k++) bad = num(&r, ci[k], &v[k], e);
    if (bad) {
      rc = bad;
      break;
    }
    x->nops = (int)v[3], x->invoke[core] = v[4];
    x->arena_used = (long)v[5], x->head = (long)v[6], x->tail = x->arena_used - x->head;
    x->head_host64 = (long)v[7], x->rec_tail = (long)v[8];
    x->rec_eval_tensors = (long)v[9], x->rec_tensor_structs = (long)v[10];
    x->rec_tensor_quant = (long)v[11], x->rec_persistent_buffers = (long)v[12];
    x->rec_node_registration = (long)v[13], x->rec_persistent_count = (long)v[14];
    x->rec_persistent_requested = (long)v[15];
  }
  free(r.text);
  return rc < 0 ? NAS_EFORMAT : rc;
}

/* ---- operators ------------------------------------------------------------------------- */

static const char *const CLS_NAMES[NAS_TFLM_NCLS] = {
    "load", "store", "mul", "div", "branch", "simd", "it", "vfp", "other",
    "load_regs", "store_regs", "branch_taken"};

const char *nas_tflm_cls_name(int k) { return k >= 0 && k < NAS_TFLM_NCLS ? CLS_NAMES[k] : NULL; }

static int by_model_core_op(const void *a, const void *b) {
  const nas_tflm_corpus_op *x = a, *y = b;
  if (x->model != y->model) return x->model - y->model;
  if (x->core != y->core) return x->core - y->core;
  return x->op_index - y->op_index;
}

static int read_ops(nas_tflm_corpus *c, const char *path, nas_err *e) {
  csv r;
  int rc = csv_open(&r, path, e);
  if (rc) return rc;
  int ci[6], cc[NAS_TFLM_NCLS];
  const char *names[6] = {"model_id", "core", "op_index", "cmsis_entry", "insn", "insn_profiler_hook"};
  for (int k = 0; k < 6; k++)
    if ((ci[k] = csv_col(&r, names[k], e)) < 0) return free(r.text), NAS_EFORMAT;
  for (int k = 0; k < NAS_TFLM_NCLS; k++)
    if ((cc[k] = csv_col(&r, CLS_NAMES[k], e)) < 0) return free(r.text), NAS_EFORMAT;
  int cap = 0, m = -1;
  while ((rc = csv_next(&r, e)) == 1) {
    if (m < 0 || strcmp(c->model[m].id, r.col[ci[0]])) m = find_model(c, r.col[ci[0]]);
    const int core = nas_tflm_core_from_name(r.col[ci[1]]);
    if (m < 0 || core < 0) {
      rc = nas_errf(e, NAS_EFORMAT, "%s:%d: model '%s' / core '%s' not in models.csv", path, r.line, r.col[ci[0]], r.col[ci[1]]);
      break;
    }
    if (c->nops == cap) {
      cap = cap ? 2 * cap : 4096;
      nas_tflm_corpus_op *no = nas_realloc(c->op, sizeof *no * (size_t)cap);
      if (!no) {
        rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
        break;
      }
      c->op = no;
    }
    nas_tflm_corpus_op *o = &c->op[c->nops++];
    double idx, insn, hook;
    if ((rc = num(&r, ci[2], &idx, e)) || (rc = num(&r, ci[4], &insn, e)) || (rc = num(&r, ci[5], &hook, e))) break;
    for (int k = 0; !rc && k < NAS_TFLM_NCLS; k++) rc = num(&r, cc[k], &o->cls[k], e);
    if (rc) break;
    o->model = m, o->core = core, o->op_index = (int)idx, o->insn = insn - hook;
    snprintf(o->entry, sizeof o->entry, "%s", r.col[ci[3]]);
  }
  free(r.text);
  if (rc) return rc < 0 ? NAS_EFORMAT : rc;
  qsort(c->op, (size_t)c->nops, sizeof *c->op, by_model_core_op);
  for (int k = 0; k < c->nops; k++) {
    const nas_tflm_corpus_op *o = &c->op[k];
    nas_tflm_corpus_model *x = &c->model[o->model];
    if (o->op_index == 0) x->first_op[o->core] = k;
    if (x->first_op[o->core] < 0 || k - x->first_op[o->core] != o->op_index || o->op_index >= x->nops)
      return nas_errf(e, NAS_EFORMAT, "%s: model %s core %s: operator rows are not 0..%d", path, x->id,
                      nas_tflm_core_name(o->core), x->nops - 1);
  }
  for (int m2 = 0; m2 < c->nmodels; m2++)
    for (int k = 0; k < NAS_TFLM_NCORE; k++)
      if (c->model[m2].first_op[k] < 0)
        return nas_errf(e, NAS_EFORMAT, "%s: model %s has no rows for %s", path, c->model[m2].id, nas_tflm_core_name(k));
  return NAS_OK;
}

/* ---- graphs ---------------------------------------------------------------------------- */

static int read_graph(const char *dir, nas_tflm_corpus_model *x, nas_err *e) {
  char path[1024];
  snprintf(path, sizeof path, "%s/models/%s.tflite.gz", dir, x->id);
  gzFile f = gzopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open", path);
  size_t n = 0, cap = 1 << 16;
  uint8_t *buf = nas_malloc(cap);
  int rc = buf ? NAS_OK : nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  while (!rc) {
    if (n == cap) {
      uint8_t *nb = cap < ((size_t)1 << 30) ? nas_realloc(buf, cap * 2) : NULL;
      if (!nb) {
        rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
        break;
      }
      buf = nb, cap *= 2;
    }
    int k = gzread(f, buf + n, (unsigned)(cap - n));
    if (k < 0) rc = nas_errf(e, NAS_EFORMAT, "%s: not a valid gzip stream", path);
    if (k <= 0) break;
    n += (size_t)k;
  }
  gzclose(f);
  if (!rc) rc = nas_tflite_parse(buf, n, path, &x->graph, e);
  free(buf);
  if (!rc && x->graph.nops != x->nops)
    rc = nas_errf(e, NAS_EFORMAT, "%s: %d operators, models.csv says %d", path, x->graph.nops, x->nops);
  return rc;
}

int nas_tflm_corpus_read(const char *dir, nas_tflm_corpus *c, nas_err *e) {
  memset(c, 0, sizeof *c);
  char path[1024];
  snprintf(path, sizeof path, "%s/models.csv", dir);
  int rc = read_models(c, path, e);
  if (!rc) {
    snprintf(path, sizeof path, "%s/ops.csv", dir);
    rc = read_ops(c, path, e);
  }
  for (int m = 0; !rc && m < c->nmodels; m++) rc = read_graph(dir, &c->model[m], e);
  if (rc) nas_tflm_corpus_free(c);
  return rc;
}
