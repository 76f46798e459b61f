/* deploy/planner.c: the tensor-arena planner. Every activation tensor (no constant data)
 * gets a byte offset in one arena, and so does every operator's scratch buffer (the device
 * kernels' im2col columns, nas_g8_op_scratch). Lifetimes are operator indices in execution
 * order: from the operator that writes the tensor (0 for the graph input) to the last operator
 * that reads it (the last operator for the graph output); a scratch buffer lives during its
 * operator only. Offsets are 16-byte aligned; two buffers whose lifetimes intersect never
 * overlap. The peak is the arena size.
 *
 * Several placements are tried and the smallest peak is kept (the first on ties):
 *   1. size descending (ties by index), each buffer at the lowest aligned offset (0 or the
 *      end of a conflicting placed buffer) where it overlaps no conflicting placed buffer;
 *   2. TFLite Micro's GreedyMemoryPlanner on the same buffers (deploy/planner_tflm.h: sizes
 *      rounded to 16, size descending with ties by descending index, first fit in the gaps),
 *      so the arena is never larger than TFLM's plan of the same buffers;
 *   3. as 1, with the buffers ordered by lifetime length (longest first, then size).
 * Optional scratch (a kernel that also runs without it, nas_g8_op_scratch) is placed after
 * the best plan is chosen, and only where it does not raise the peak. */
#include <stdlib.h>
#include <string.h>

#include "deploy/graph8.h"
#include "deploy/planner_tflm.h"
#include "core/alloc.h"

#define ALIGN 16

void nas_g8_plan_free(nas_g8_plan *p) {
  if (!p) return;
  free(p->offset), free(p->first), free(p->last), free(p->scratch);
  memset(p, 0, sizeof *p);
}

/* One buffer to place: a tensor (id < ntensors) or operator id - ntensors's scratch. */
typedef struct buf {
  size_t size;
  int first, last;
  long off;
} buf;

typedef struct item {
  int id;       /* buffer index */
  size_t size;  /* bytes */
  int span;     /* lifetime length */
} item;

static int by_size_desc(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->id - y->id;
}

static int by_span_desc(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->span != y->span) return x->span < y->span ? 1 : -1;
  return by_size_desc(a, b);
}

static int cmp_size_t(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static int conflict(const buf *u, const buf *t) { return !(u->last < t->first || u->first > t->last); }

/* Lowest-offset placement in the order of items[0..n-1]; writes b[].off, returns the peak.
 * placed and ends are work arrays of n and n + 1 entries. */
static size_t place_lowest(buf *b, const item *items, int n, size_t *placed, size_t *ends) {
  size_t peak = 0;
  int np = 0;
  for (int k = 0; k < n; k++) {
    buf *t = &b[items[k].id];
    int nc = 0;
    ends[nc++] = 0;
    for (int j = 0; j < np; j++) {
      const buf *u = &b[placed[j]];
      if (!conflict(u, t)) continue;
      ends[nc++] = ((size_t)u->off + u->size + ALIGN - 1) / ALIGN * ALIGN;
    }
    qsort(ends, (size_t)nc, sizeof *ends, cmp_size_t);
    size_t best = 0;
    for (int c = 0; c < nc; c++) {
      const size_t off = ends[c];
      int ok = 1;
      for (int j = 0; j < np && ok; j++) {
        const buf *u = &b[placed[j]];
        if (conflict(u, t) && off < (size_t)u->off + u->size && (size_t)u->off < off + t->size) ok = 0;
      }
      if (ok) {
        best = off;
        break;
      }
    }
    t->off = (long)best;
    placed[np++] = (size_t)items[k].id;
    if (best + t->size > peak) peak = best + t->size;
  }
  return peak;
}

/* Optional scratch buffers (largest first) at the lowest aligned offset free of every buffer
 * live at their operator, kept only where they end within the peak. b[].size and off must hold
 * the final plan (off = off[]). */
static void place_optional(const nas_g8_graph *g, buf *b, const long *off, int nt, int no,
                           size_t peak, long *scratch) {
  const int nb = nt + no;
  for (int k = 0; k < nb; k++) b[k].off = off[k];
  for (;;) {
    int pick = -1;
    for (int i = 0; i < no; i++) {
      int opt = 0;
      if (b[nt + i].off >= 0 || !nas_g8_op_scratch(g, i, &opt) || !opt || b[nt + i].first < 0) continue;
      if (pick < 0 || b[nt + i].size > b[nt + pick].size) pick = i;
    }
    if (pick < 0) return;
    buf *t = &b[nt + pick];
    size_t cand = 0;
    for (int moved = 1; moved;) { /* first fit: move past every overlapping live buffer */
      moved = 0;
      for (int k = 0; k < nb; k++) {
        const buf *u = &b[k];
        if (k == nt + pick || u->off < 0 || !conflict(u, t)) continue;
        if (cand < (size_t)u->off + u->size && (size_t)u->off < cand + t->size) {
          cand = ((size_t)u->off + u->size + ALIGN - 1) / ALIGN * ALIGN;
          moved = 1;
        }
      }
    }
    if (cand + t->size <= peak) t->off = (long)cand, scratch[pick] = (long)cand;
    else t->first = -1; /* does not fit: the kernel runs without it */
  }
}

static int plan(const nas_g8_graph *g, int with_scratch, nas_g8_plan *p, nas_err *e);

int nas_g8_plan_build(const nas_g8_graph *g, nas_g8_plan *p, nas_err *e) { return plan(g, 1, p, e); }
int nas_g8_plan_activations(const nas_g8_graph *g, nas_g8_plan *p, nas_err *e) {
  return plan(g, 0, p, e);
}

static int plan(const nas_g8_graph *g, int with_scratch, nas_g8_plan *p, nas_err *e) {
  memset(p, 0, sizeof *p);
  const int nt = g->ntensors, no = g->nops, nb = nt + no;
  p->ntensors = nt, p->nops = no;
  p->offset = nas_malloc(sizeof *p->offset * (size_t)(nt + 1));
  p->first = nas_malloc(sizeof *p->first * (size_t)(nt + 1));
  p->last = nas_malloc(sizeof *p->last * (size_t)(nt + 1));
  p->scratch = nas_malloc(sizeof *p->scratch * (size_t)(no + 1));
  buf *b = nas_calloc((size_t)nb + 1, sizeof *b);
  long *best_off = nas_malloc(sizeof *best_off * ((size_t)nb + 1));
  item *items = nas_malloc(sizeof *items * ((size_t)nb + 1));
  size_t *placed = nas_malloc(sizeof *placed * ((size_t)nb + 1));
  size_t *ends = nas_malloc(sizeof *ends * ((size_t)nb + 2));
  nas_tflm_buf *tb = nas_calloc((size_t)nb + 1, sizeof *tb);
  if (!p->offset || !p->first || !p->last || !p->scratch || !b || !best_off || !items ||
      !placed || !ends || !tb) {
    free(b), free(best_off), free(items), free(placed), free(ends), free(tb);
    nas_g8_plan_free(p);
    return nas_errf(e, NAS_ENOMEM, "out of memory planning %d tensors", nt);
  }
  for (int t = 0; t < nt; t++) p->offset[t] = -1, p->first[t] = -1, p->last[t] = -1;
  const int lastop = no > 0 ? no - 1 : 0;
  for (int i = 0; i < no; i++) {
    const nas_g8_op *op = &g->ops[i];
    for (int k = 0; k < op->nin; k++) {
      int t = op->in[k];
      if (t < 0 || g->tensors[t].data) continue;
      if (p->first[t] < 0) p->first[t] = i;
      p->last[t] = i;
    }
    int t = op->out;
    if (p->first[t] < 0 || p->first[t] > i) p->first[t] = i;
    if (p->last[t] < i) p->last[t] = i;
  }
  if (!g->tensors[g->input].data) p->first[g->input] = 0, p->last[g->input] = p->last[g->input] < 0 ? 0 : p->last[g->input];
  if (!g->tensors[g->output].data) {
    if (p->first[g->output] < 0) p->first[g->output] = 0;
    p->last[g->output] = lastop;
  }
  /* the buffers: tensors, then scratch */
  int n = 0;
  for (int t = 0; t < nt; t++) {
    b[t].first = p->first[t], b[t].last = p->last[t], b[t].off = -1;
    b[t].size = p->first[t] >= 0 ? nas_g8_tensor_bytes(&g->tensors[t]) : 0;
    if (p->first[t] >= 0) items[n].id = t, items[n].size = b[t].size, items[n].span = b[t].last - b[t].first, n++;
  }
  int nopt = 0; /* optional scratch: placed last, only below the peak */
  for (int i = 0; i < no; i++) {
    buf *s = &b[nt + i];
    int opt = 0;
    s->first = s->last = i, s->off = -1, s->size = with_scratch ? nas_g8_op_scratch(g, i, &opt) : 0;
    if (s->size && !opt) items[n].id = nt + i, items[n].size = s->size, items[n].span = 0, n++;
    nopt += s->size && opt;
  }
  /* 1: size descending, lowest offset */
  qsort(items, (size_t)n, sizeof *items, by_size_desc);
  size_t peak = place_lowest(b, items, n, placed, ends);
  for (int k = 0; k < nb; k++) best_off[k] = b[k].off;
  /* 2: TFLM's greedy planner on the same buffers (its buffer ids: tensors, then scratch) */
  int m = 0;
  for (int k = 0; k < nb; k++) {
    if (b[k].off < 0) continue;
    tb[m].size = (long)((b[k].size + ALIGN - 1) / ALIGN * ALIGN);
    tb[m].first = b[k].first, tb[m].last = b[k].last, tb[m].tensor = k, tb[m].op = -1;
    m++;
  }
  long tpeak = 0;
  int rc = nas_tflm_greedy(tb, m, &tpeak, e);
  if (rc == NAS_OK) {
    size_t pk = 0;
    for (int k = 0; k < m; k++) {
      const size_t end = (size_t)tb[k].offset + b[tb[k].tensor].size;
      if (end > pk) pk = end;
    }
    if (pk < peak) {
      peak = pk;
      for (int k = 0; k < m; k++) best_off[tb[k].tensor] = tb[k].offset;
    }
    /* 3: longest lifetime first */
    qsort(items, (size_t)n, sizeof *items, by_span_desc);
    pk = place_lowest(b, items, n, placed, ends);
    if (pk < peak) {
      peak = pk;
      for (int k = 0; k < nb; k++) best_off[k] = b[k].off;
    }
    for (int t = 0; t < nt; t++) p->offset[t] = p->first[t] >= 0 ? best_off[t] : -1;
    for (int i = 0; i < no; i++) p->scratch[i] = best_off[nt + i];
    if (nopt) place_optional(g, b, best_off, nt, no, peak, p->scratch);
    p->peak = peak;
  }
  free(b), free(best_off), free(items), free(placed), free(ends), free(tb);
  if (rc) nas_g8_plan_free(p);
  return rc;
}
