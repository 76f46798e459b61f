/* deploy/planner_tflm.c: TFLM's greedy arena planner and its buffer lifetimes, reproduced
 * (rules in deploy/planner_tflm.h). Written from the behaviour of TFLM's code, not from it. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "deploy/planner_tflm.h"

void nas_tflm_plan_free(nas_tflm_plan *p) {
  if (!p) return;
  free(p->buf);
  memset(p, 0, sizeof *p);
}

static int live_together(const nas_tflm_buf *a, const nas_tflm_buf *b) {
  return !(a->first > b->last || b->first > a->last);
}

int nas_tflm_greedy(nas_tflm_buf *b, int n, long *peak, nas_err *e) {
  *peak = 0;
  if (n <= 0) return NAS_OK;
  for (int i = 0; i < n; i++)
    if (b[i].size < 0) return nas_errf(e, NAS_EINVAL, "TFLM plan: buffer %d has size %ld", i, b[i].size);
  int *order = nas_malloc(sizeof *order * (size_t)n);
  int *ent_buf = nas_malloc(sizeof *ent_buf * (size_t)n); /* list entry -> buffer */
  int *ent_next = nas_malloc(sizeof *ent_next * (size_t)n);
  if (!order || !ent_buf || !ent_next) {
    free(order), free(ent_buf), free(ent_next);
    return nas_errf(e, NAS_ENOMEM, "TFLM plan: out of memory for %d buffers", n);
  }
  /* Placement order: size descending, ties by descending id. An insertion sort keeps the
   * order stable on the id-descending start sequence, which is what TFLM's sort gives. */
  for (int k = 0; k < n; k++) {
    int id = n - 1 - k, j = k;
    while (j > 0 && b[order[j - 1]].size < b[id].size) order[j] = order[j - 1], j--;
    order[j] = id;
  }
  /* Entries form a list sorted by offset; equal offsets keep their insertion order. */
  int head = 0, nent = 1;
  ent_buf[0] = order[0], ent_next[0] = -1;
  b[order[0]].offset = 0;
  for (int k = 1; k < n; k++) {
    nas_tflm_buf *w = &b[order[k]];
    long cand = 0;
    int prior = -1;
    for (;;) {
      /* Next entry after prior (in offset order) live at the same time as w. */
      int nx = prior < 0 ? head : ent_next[prior];
      while (nx >= 0 && !live_together(&b[ent_buf[nx]], w)) nx = ent_next[nx];
      if (prior >= 0) {
        long end = b[ent_buf[prior]].offset + b[ent_buf[prior]].size;
        if (end > cand) cand = end;
      }
      if (nx < 0) break;
      if (b[ent_buf[nx]].offset - cand >= w->size) break;
      prior = nx;
    }
    w->offset = cand;
    int ne = nent++;
    ent_buf[ne] = order[k];
    if (b[ent_buf[head]].offset > cand) {
      ent_next[ne] = head, head = ne;
    } else {
      int cur = head;
      while (ent_next[cur] >= 0 && b[ent_buf[ent_next[cur]]].offset <= cand) cur = ent_next[cur];
      ent_next[ne] = ent_next[cur], ent_next[cur] = ne;
    }
  }
  long mx = 0;
  for (int i = 0; i < n; i++)
    if (b[i].offset + b[i].size > mx) mx = b[i].offset + b[i].size;
  *peak = mx;
  free(order), free(ent_buf), free(ent_next);
  return NAS_OK;
}

static long round_up(long x) { return (x + NAS_TFLM_ALIGN - 1) / NAS_TFLM_ALIGN * NAS_TFLM_ALIGN; }

int nas_tflm_plan_build(const nas_g8_graph *g, const nas_tflm_scratch *s, int ns,
                        nas_tflm_plan *p, nas_err *e) {
  memset(p, 0, sizeof *p);
  const int nt = g->ntensors, nops = g->nops;
  for (int k = 0; k < ns; k++) {
    if (s[k].op < 0 || s[k].op >= nops || s[k].bytes < 0)
      return nas_errf(e, NAS_EINVAL, "TFLM plan: scratch request %d (operator %d, %ld bytes) is invalid",
                      k, s[k].op, s[k].bytes);
    if (k > 0 && s[k].op < s[k - 1].op)
      return nas_errf(e, NAS_EINVAL, "TFLM plan: scratch request %d is out of operator order", k);
  }
  int *first = nas_malloc(sizeof *first * (size_t)(nt + 1));
  int *last = nas_malloc(sizeof *last * (size_t)(nt + 1));
  p->buf = nas_calloc((size_t)(nt + ns + 1), sizeof *p->buf);
  if (!first || !last || !p->buf) {
    free(first), free(last), nas_tflm_plan_free(p);
    return nas_errf(e, NAS_ENOMEM, "TFLM plan: out of memory for %d tensors", nt);
  }
  for (int t = 0; t < nt; t++) first[t] = last[t] = -1;
  /* The graph input: created and used at scope 0. */
  if (g->input >= 0 && g->input < nt) first[g->input] = last[g->input] = 0;
  for (int i = 0; i < nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    const int scope = i + 1;
    if (op->out >= 0 && op->out < nt && first[op->out] < 0) first[op->out] = scope;
    for (int k = 0; k < op->nin; k++)
      if (op->in[k] >= 0 && op->in[k] < nt) last[op->in[k]] = scope;
    if (op->out >= 0 && op->out < nt) last[op->out] = scope;
  }
  if (g->output >= 0 && g->output < nt) {
    if (first[g->output] < 0) first[g->output] = nops;
    last[g->output] = nops;
  }
  int n = 0;
  for (int t = 0; t < nt; t++) {
    const nas_g8_tensor *x = &g->tensors[t];
    if (x->data || x->bytes == 0) continue;
    nas_tflm_buf *b = &p->buf[n++];
    b->size = round_up((long)x->bytes);
    b->first = first[t], b->last = last[t];
    b->tensor = t, b->op = -1;
  }
  p->ntensor_bufs = n;
  for (int k = 0; k < ns; k++) {
    nas_tflm_buf *b = &p->buf[n++];
    b->size = round_up(s[k].bytes);
    b->first = b->last = s[k].op + 1;
    b->tensor = -1, b->op = s[k].op;
  }
  p->nbuf = n;
  free(first), free(last);
  int rc = nas_tflm_greedy(p->buf, n, &p->peak, e);
  if (rc) nas_tflm_plan_free(p);
  return rc;
}
