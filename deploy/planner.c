/* deploy/planner.c: the tensor-arena planner. Every activation tensor (no constant data)
 * gets a byte offset in one arena. Lifetimes are operator indices in execution order: from
 * the operator that writes the tensor (0 for the graph input) to the last operator that
 * reads it (the last operator for the graph output). Greedy by size: tensors sorted largest
 * first (ties by index), each placed at the lowest 16-byte-aligned offset where it overlaps
 * no already placed tensor whose lifetime intersects its own. The peak is the arena size. */
#include <stdlib.h>
#include <string.h>

#include "deploy/graph8.h"
#include "core/alloc.h"

#define ALIGN 16

void nas_g8_plan_free(nas_g8_plan *p) {
  if (!p) return;
  free(p->offset), free(p->first), free(p->last);
  memset(p, 0, sizeof *p);
}

typedef struct item {
  int t;          /* tensor index */
  size_t size;    /* bytes */
} item;

/* Bytes of a tensor (int16 cell states and int32 take 2 and 4 bytes per element). */
static size_t tbytes(const nas_g8_tensor *t) {
  return nas_g8_numel(t) * (t->type == NAS_G8_INT32 ? 4 : t->type == NAS_G8_INT16 ? 2 : 1);
}

static int by_size_desc(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->t - y->t;
}

static int cmp_size_t(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

int nas_g8_plan_build(const nas_g8_graph *g, nas_g8_plan *p, nas_err *e) {
  memset(p, 0, sizeof *p);
  const int nt = g->ntensors;
  p->ntensors = nt;
  p->offset = nas_malloc(sizeof *p->offset * (size_t)(nt + 1));
  p->first = nas_malloc(sizeof *p->first * (size_t)(nt + 1));
  p->last = nas_malloc(sizeof *p->last * (size_t)(nt + 1));
  item *items = nas_malloc(sizeof *items * (size_t)(nt + 1));
  size_t *placed = nas_malloc(sizeof *placed * (size_t)(nt + 1));     /* tensor ids placed */
  size_t *ends = nas_malloc(sizeof *ends * 2 * (size_t)(nt + 1));     /* candidate offsets */
  if (!p->offset || !p->first || !p->last || !items || !placed || !ends) {
    free(items), free(placed), free(ends), nas_g8_plan_free(p);
    return nas_errf(e, NAS_ENOMEM, "out of memory planning %d tensors", nt);
  }
  for (int t = 0; t < nt; t++) p->offset[t] = -1, p->first[t] = -1, p->last[t] = -1;
  const int lastop = g->nops > 0 ? g->nops - 1 : 0;
  for (int i = 0; i < g->nops; i++) {
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
  int n = 0;
  for (int t = 0; t < nt; t++)
    if (p->first[t] >= 0) items[n].t = t, items[n].size = tbytes(&g->tensors[t]), n++;
  qsort(items, (size_t)n, sizeof *items, by_size_desc);
  size_t peak = 0;
  int np = 0;
  for (int k = 0; k < n; k++) {
    const int t = items[k].t;
    const size_t sz = items[k].size;
    /* Candidates: 0 and the (aligned) end of every conflicting placed tensor. */
    int nc = 0;
    ends[nc++] = 0;
    for (int j = 0; j < np; j++) {
      int u = (int)placed[j];
      if (p->last[u] < p->first[t] || p->first[u] > p->last[t]) continue;
      size_t end = (size_t)p->offset[u] + tbytes(&g->tensors[u]);
      ends[nc++] = (end + ALIGN - 1) / ALIGN * ALIGN;
    }
    qsort(ends, (size_t)nc, sizeof *ends, cmp_size_t);
    size_t best = 0;
    for (int c = 0; c < nc; c++) {
      size_t off = ends[c];
      int ok = 1;
      for (int j = 0; j < np && ok; j++) {
        int u = (int)placed[j];
        if (p->last[u] < p->first[t] || p->first[u] > p->last[t]) continue;
        size_t uo = (size_t)p->offset[u], us = tbytes(&g->tensors[u]);
        if (off < uo + us && uo < off + sz) ok = 0;
      }
      if (ok) {
        best = off;
        break;
      }
    }
    p->offset[t] = (long)best;
    placed[np++] = (size_t)t;
    if (best + sz > peak) peak = best + sz;
  }
  p->peak = peak;
  free(items), free(placed), free(ends);
  return NAS_OK;
}
