/* train/qat.c: quantisation-aware training: rewriting a float network's tape into a QAT
 * network with fake-quant nodes, the alpha schedule, the QAT phase, and the export of the
 * learned weights and ranges (see train/qat.h). */
#include "train/qat.h"
#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ops.h"
#include "train/wino.h"

void nas_qat_cfg_default(nas_qat_cfg *c) {
  memset(c, 0, sizeof *c);
  c->mode = NAS_QAT_STE;
  c->ema_decay = 0.99f;
  c->alpha_ramp = 0.8f;
  c->calib_samples = 1000;
}

int nas_qat_mode_parse(const char *name, int *mode, nas_err *e) {
  if (name && !strcmp(name, "ste")) return *mode = NAS_QAT_STE, NAS_OK;
  if (name && !strcmp(name, "alpha")) return *mode = NAS_QAT_ALPHA, NAS_OK;
  return nas_errf(e, NAS_EINVAL, "unknown QAT method '%s' (expected ste or alpha)", name ? name : "");
}

const char *nas_qat_mode_name(int mode) {
  return mode == NAS_QAT_STE ? "ste" : mode == NAS_QAT_ALPHA ? "alpha" : "none";
}

void nas_qat_free(nas_qat *q) {
  if (!q) return;
  nas_net_free(q->net);
  free(q->map), free(q->range), free(q->cell);
  free(q);
}

/* ---- building ---------------------------------------------------------------------------- */

typedef struct qb {
  const nas_net *src;  /* source network */
  const nas_qat_cfg *cfg;
  nas_qat *q;          /* result being built */
  nas_graph *g;        /* its graph */
  nas_err *e;
} qb;

static void suffixed(char *buf, size_t n, const char *name, const char *suffix) {
  size_t room = n - 1 - strlen(suffix);
  snprintf(buf, n, "%.*s%s", (int)(strlen(name) < room ? strlen(name) : room), name, suffix);
}

/* Copies a leaf of the source graph; returns its id in the QAT graph or -1. */
static int copy_leaf(qb *B, const nas_node *s) {
  if (s->kind == NAS_NODE_INPUT)
    return nas_graph_input(B->g, s->name, s->shape.nd - 1, s->shape.d + 1, B->e);
  if (s->kind == NAS_NODE_PARAM) return nas_graph_param(B->g, s->name, s->shape.nd, s->shape.d, B->e);
  return nas_graph_state(B->g, s->name, s->shape.nd, s->shape.d, B->e);
}

/* Activation fake-quant of node x with a new range STATE; *range gets the state's id. bits 0:
 * int8 asymmetric; > 0: symmetric with that many bits (a Winograd-domain tensor). */
static int act_fq(qb *B, int x, const char *name, int bits, int *range) {
  char nm[48];
  int one[1] = {3};
  suffixed(nm, sizeof nm, name, ".qr");
  int r = nas_graph_state(B->g, nm, 1, one, B->e);
  if (r < 0) return -1;
  suffixed(nm, sizeof nm, name, ".fq");
  nas_op_params p = {.momentum = B->cfg->ema_decay, .bits = bits};
  int in[2] = {x, r};
  *range = r;
  return nas_graph_apply(B->g, NAS_OP_FAKEQUANT, in, 2, &p, nm, B->e);
}

/* The range STATE that quantises node id of the QAT graph: follows ops that keep their
 * input's quantisation back to an activation fake-quant; -1 when there is none. */
static int range_source(const nas_graph *g, int id) {
  while (id >= 0 && g->nodes[id].kind == NAS_NODE_OP) {
    const nas_node *n = &g->nodes[id];
    if (n->op == NAS_OP_FAKEQUANT && n->n_in == 2) return n->in[1];
    if (n->op != NAS_OP_MAXPOOL && n->op != NAS_OP_AVGPOOL && n->op != NAS_OP_GAP &&
        n->op != NAS_OP_RESHAPE && n->op != NAS_OP_DROPOUT)
      return -1;
    id = n->in[0];
  }
  return -1;
}

/* Weight quantiser (FAKEQUANT or ALPHA_BLEND) in front of weight node w of op node s. */
static int weight_q(qb *B, const nas_node *s, int w) {
  const nas_node *wn = &B->g->nodes[w];
  nas_op_params p = {0};
  p.kh = s->op == NAS_OP_CONV2D || s->op == NAS_OP_WINO_WT ? 0
         : s->op == NAS_OP_DWCONV2D ? wn->shape.nd - 1
         : (s->op == NAS_OP_DENSE && B->cfg->fc_per_channel ? 0 : -1);
  if (s->op == NAS_OP_LSTM) p.sh = 4; /* one scale per gate block of rows, as deploy/ */
  char nm[48];
  suffixed(nm, sizeof nm, wn->name, B->q->mode == NAS_QAT_ALPHA ? ".ab" : ".fq");
  if (B->q->mode != NAS_QAT_ALPHA) return nas_graph_apply(B->g, NAS_OP_FAKEQUANT, &w, 1, &p, nm, B->e);
  if (B->q->alpha < 0) {
    int one[1] = {1};
    B->q->alpha = nas_graph_state(B->g, "qat.alpha", 1, one, B->e);
    if (B->q->alpha < 0) return -1;
  }
  int in[2] = {w, B->q->alpha};
  return nas_graph_apply(B->g, NAS_OP_ALPHA_BLEND, in, 2, &p, nm, B->e);
}

/* Fake quantisation of a Winograd conv's transform-domain tensors (train/wino.h) around
 * source op s: before it, its weights (WINO_WT) or a flex layer's table (Bt of WINO_IN, At of
 * WINO_OUT, int8 with a power-of-two scale) in in[]; after it (WINO_WT only, returned in *id),
 * the transformed weights, int8 per output channel. V and M are quantisation points (act_fq). */
static int wino_q_inputs(qb *B, const nas_node *s, int *in) {
  const nas_graph *sg = B->src->g;
  if (s->op == NAS_OP_WINO_WT) return (in[0] = weight_q(B, s, in[0])) < 0 ? -1 : NAS_OK;
  if ((s->op != NAS_OP_WINO_IN && s->op != NAS_OP_WINO_OUT) || sg->nodes[s->in[1]].kind != NAS_NODE_PARAM)
    return NAS_OK;
  const nas_node *t = &sg->nodes[s->in[1]];
  nas_op_params p = {.kh = -1, .bits = NAS_WINO_TBITS, .qmode = NAS_FQ_POW2, .qlim = 127};
  if (s->op == NAS_OP_WINO_OUT) {
    int bits = sg->nodes[s->in[0]].p.bits;
    p.qlim = nas_wino_alim(t->shape.d[1], bits > 0 ? bits : 8);
  }
  char nm[48];
  suffixed(nm, sizeof nm, t->name, ".fq");
  return (in[1] = nas_graph_apply(B->g, NAS_OP_FAKEQUANT, &in[1], 1, &p, nm, B->e)) < 0 ? -1 : NAS_OK;
}

static int wino_q_output(qb *B, const nas_node *s, int *id) {
  if (s->op != NAS_OP_WINO_WT) return NAS_OK;
  nas_op_params p = {.kh = 1, .bits = NAS_WINO_UBITS, .qmode = NAS_FQ_WIDE};
  char nm[48];
  suffixed(nm, sizeof nm, s->name, ".fq");
  return (*id = nas_graph_apply(B->g, NAS_OP_FAKEQUANT, id, 1, &p, nm, B->e)) < 0 ? -1 : NAS_OK;
}

static int build_tape(qb *B, const unsigned char *point) {
  const nas_graph *sg = B->src->g;
  nas_qat *q = B->q;
  for (int i = 0; i < sg->n; i++) {
    const nas_node *s = &sg->nodes[i];
    int id;
    if (s->kind != NAS_NODE_OP) {
      id = copy_leaf(B, s);
      if (id < 0) return -1;
      q->map[i] = id;
    } else {
      int in[NAS_MAX_INPUTS];
      for (int k = 0; k < s->n_in; k++) in[k] = q->map[s->in[k]];
      if ((s->op == NAS_OP_CONV2D || s->op == NAS_OP_DWCONV2D || s->op == NAS_OP_DENSE ||
           s->op == NAS_OP_LSTM) && s->n_in > 1 &&
          (in[1] = weight_q(B, s, in[1])) < 0)
        return -1;
      if (wino_q_inputs(B, s, in)) return -1;
      int n_in = s->n_in;
      nas_op_params sp = s->p;
      if (s->op == NAS_OP_LSTM) { /* recurrent weights, and the cell's ranges STATE */
        char nm[48];
        int six[1] = {6};
        suffixed(nm, sizeof nm, s->name, ".qr");
        if ((in[2] = weight_q(B, s, in[2])) < 0 || (in[n_in] = nas_graph_state(B->g, nm, 1, six, B->e)) < 0)
          return -1;
        q->cell[i] = in[n_in++];
        sp.kw = 1, sp.momentum = B->cfg->ema_decay;
      }
      id = nas_graph_apply(B->g, s->op, in, n_in, &sp, s->name, B->e);
      if (id < 0 || wino_q_output(B, s, &id)) return -1;
      if (s->op == NAS_OP_AVGPOOL || s->op == NAS_OP_GAP) {
        int r = range_source(B->g, in[0]);
        if (r >= 0) {
          char nm[48];
          suffixed(nm, sizeof nm, s->name, ".fq");
          nas_op_params p = {.kw = 1};
          int fin[2] = {id, r};
          if ((id = nas_graph_apply(B->g, NAS_OP_FAKEQUANT, fin, 2, &p, nm, B->e)) < 0) return -1;
        }
      }
      q->map[i] = id;
    }
    if (point[i]) { /* consumers read the fake-quantised value */
      const int sym = s->kind == NAS_NODE_OP && (s->op == NAS_OP_WINO_IN || s->op == NAS_OP_WINO_MUL);
      if ((id = act_fq(B, id, s->name, sym ? (s->p.bits > 0 ? s->p.bits : 8) : 0, &q->range[i])) < 0)
        return -1;
      q->map[i] = id;
    }
  }
  return NAS_OK;
}

/* Leaf ids of the QAT graph stay those of the copied leaves (the input is fed there). */
static int leaf_id(const nas_graph *g, const char *name) { return nas_graph_find(g, name); }

int nas_qat_build(const nas_net *src, const nas_qat_cfg *cfg, nas_qat **out, nas_err *e) {
  *out = NULL;
  nas_qat_cfg def;
  nas_qat_cfg_default(&def);
  if (!cfg) cfg = &def;
  if (cfg->mode != NAS_QAT_STE && cfg->mode != NAS_QAT_ALPHA)
    return nas_errf(e, NAS_EINVAL, "qat: unknown method %d", cfg->mode);
  if (!(cfg->ema_decay >= 0 && cfg->ema_decay < 1))
    return nas_errf(e, NAS_EINVAL, "qat: EMA decay %g must be in [0,1)", (double)cfg->ema_decay);
  if (!(cfg->alpha_ramp > 0 && cfg->alpha_ramp <= 1))
    return nas_errf(e, NAS_EINVAL, "qat: alpha ramp %g must be in (0,1]", (double)cfg->alpha_ramp);
  const nas_graph *sg = src->g;
  for (int i = 0; i < sg->n; i++)
    if (sg->nodes[i].kind == NAS_NODE_OP && sg->nodes[i].op == NAS_OP_GRU)
      return nas_errf(e, NAS_EINVAL, "qat: node '%s' (gru): quantisation-aware training of GRU layers is not "
                      "supported yet (nas export quantises them post-training)", sg->nodes[i].name);
  nas_qat *q = nas_calloc(1, sizeof *q);
  nas_net *n = q ? nas_calloc(1, sizeof *n) : NULL;
  unsigned char *point = nas_malloc((size_t)sg->n);
  if (q) {
    q->net = n, q->mode = cfg->mode, q->src_n = sg->n, q->alpha = -1, q->ramp = cfg->alpha_ramp;
    q->map = nas_malloc(sizeof *q->map * (size_t)sg->n);
    q->range = nas_malloc(sizeof *q->range * (size_t)sg->n);
    q->cell = nas_malloc(sizeof *q->cell * (size_t)sg->n);
  }
  if (n) {
    *n = *src;
    n->g = NULL, n->layers = NULL, n->arch_json = NULL;
    n->g = nas_graph_new(sg->max_batch, 1);
    n->layers = nas_malloc(sizeof *n->layers * (size_t)(src->n_layers > 0 ? src->n_layers : 1));
    n->arch_json = nas_malloc(strlen(src->arch_json ? src->arch_json : "") + 1);
  }
  if (!q || !n || !point || !q->map || !q->range || !q->cell || !n->g || !n->layers || !n->arch_json) {
    free(point);
    nas_qat_free(q);
    return nas_errf(e, NAS_ENOMEM, "qat: out of memory");
  }
  memcpy(n->layers, src->layers, sizeof *n->layers * (size_t)src->n_layers);
  strcpy(n->arch_json, src->arch_json ? src->arch_json : "");
  n->g->training = sg->training;
  for (int i = 0; i < sg->n; i++) q->map[i] = q->range[i] = q->cell[i] = -1;
  nas_quant_points(src, point);
  qb B = {src, cfg, q, n->g, e};
  int rc = build_tape(&B, point) < 0 ? (e->code ? e->code : NAS_EINVAL) : NAS_OK;
  free(point);
  if (rc == NAS_OK) rc = nas_graph_alloc(n->g, e);
  if (rc != NAS_OK) {
    nas_err_prefix(e, "qat");
    nas_qat_free(q);
    return rc;
  }
  /* values: params and state copied; the QAT net's handles point at its own nodes */
  for (int i = 0; i < sg->n; i++) {
    const nas_node *s = &sg->nodes[i];
    if (s->kind != NAS_NODE_PARAM && s->kind != NAS_NODE_STATE) continue;
    memcpy(n->g->nodes[q->map[i]].val, s->val, nas_shape_numel(&s->shape) * sizeof(float));
  }
  n->input = leaf_id(n->g, sg->nodes[src->input].name);
  n->labels = src->labels >= 0 ? leaf_id(n->g, sg->nodes[src->labels].name) : -1;
  n->logits = q->map[src->logits];
  n->loss = src->loss >= 0 ? q->map[src->loss] : -1;
  *out = q;
  return NAS_OK;
}

/* ---- ranges, alpha, export -------------------------------------------------------------- */

int nas_qat_set_ranges(nas_qat *q, const nas_calib *c, nas_err *e) {
  if (!c || c->n != q->src_n) return nas_errf(e, NAS_EINVAL, "qat: the calibration does not belong to this network");
  for (int i = 0; i < q->src_n; i++) {
    if (q->range[i] < 0) continue;
    float *r = q->net->g->nodes[q->range[i]].val;
    r[0] = c->lo[i], r[1] = c->hi[i], r[2] = 1;
  }
  for (int i = 0; i < q->src_n; i++) { /* LSTM cells: h and c from the internal points */
    if (q->cell[i] < 0) continue;
    if (!c->sub || c->sub[i] < 0 || c->sub[i] + NAS_LSTM_NPOINTS > c->nsub)
      return nas_errf(e, NAS_EINVAL, "qat: the calibration has no ranges inside recurrent node %d", i);
    float *r = q->net->g->nodes[q->cell[i]].val;
    const int k = c->sub[i];
    r[0] = c->sub_lo[k + NAS_LSTM_P_H], r[1] = c->sub_hi[k + NAS_LSTM_P_H], r[2] = 1;
    r[3] = c->sub_lo[k + NAS_LSTM_P_C], r[4] = c->sub_hi[k + NAS_LSTM_P_C], r[5] = 1;
  }
  return NAS_OK;
}

void nas_qat_set_alpha(nas_qat *q, float alpha) {
  if (q->alpha >= 0) q->net->g->nodes[q->alpha].val[0] = alpha < 0 ? 0 : alpha > 1 ? 1 : alpha;
}

float nas_qat_alpha_at(long step, long total, float ramp) {
  double end = (double)total * ramp;
  if (total <= 0 || step >= end) return 1.0f;
  if (step <= 0) return 0.0f;
  double t = 1.0 - (double)step / end;
  return (float)(1.0 - t * t * t);
}

int nas_qat_export(const nas_qat *q, nas_net *dst, nas_calib *c, nas_err *e) {
  memset(c, 0, sizeof *c);
  const nas_graph *dg = dst->g, *qg = q->net->g;
  if (dg->n != q->src_n) return nas_errf(e, NAS_EINVAL, "qat export: the network does not match the QAT source");
  for (int i = 0; i < dg->n; i++) {
    const nas_node *d = &dg->nodes[i];
    if (d->kind == NAS_NODE_OP) continue;
    int j = nas_graph_find(qg, d->name);
    if (j < 0 || qg->nodes[j].kind != d->kind || nas_shape_numel(&qg->nodes[j].shape) != nas_shape_numel(&d->shape))
      return nas_errf(e, NAS_EINVAL, "qat export: tensor '%s' does not match the QAT network", d->name);
  }
  c->n = dg->n, c->method = NAS_CALIB_MINMAX, c->samples = 0;
  c->point = nas_malloc((size_t)dg->n);
  c->lo = nas_calloc((size_t)dg->n, sizeof *c->lo);
  c->hi = nas_calloc((size_t)dg->n, sizeof *c->hi);
  if (!c->point || !c->lo || !c->hi) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "qat export: out of memory");
  }
  nas_quant_points(dst, c->point);
  for (int i = 0; i < dg->n; i++) {
    if (!c->point[i]) continue;
    if (q->range[i] < 0) {
      nas_calib_free(c);
      return nas_errf(e, NAS_EINVAL, "qat export: node '%s' has no learned range", dg->nodes[i].name);
    }
    const float *r = qg->nodes[q->range[i]].val;
    c->lo[i] = r[0] < 0 ? r[0] : 0, c->hi[i] = r[1] > 0 ? r[1] : 0;
  }
  if (nas_calib_alloc_sub(dg, c) != NAS_OK) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "qat export: out of memory");
  }
  for (int i = 0; i < dg->n; i++) { /* the LSTM cells' learned h and c ranges */
    if (!c->sub || c->sub[i] < 0) continue;
    if (q->cell[i] < 0) {
      nas_calib_free(c);
      return nas_errf(e, NAS_EINVAL, "qat export: recurrent node '%s' has no learned ranges", dg->nodes[i].name);
    }
    const float *r = qg->nodes[q->cell[i]].val;
    for (int k = 0; k < NAS_LSTM_NPOINTS; k++) {
      const float lo = r[3 * k], hi = r[3 * k + 1];
      c->sub_lo[c->sub[i] + k] = lo < 0 ? lo : 0, c->sub_hi[c->sub[i] + k] = hi > 0 ? hi : 0;
    }
  }
  for (int i = 0; i < dg->n; i++) {
    nas_node *d = &dst->g->nodes[i];
    if (d->kind != NAS_NODE_PARAM && d->kind != NAS_NODE_STATE) continue;
    memcpy(d->val, qg->nodes[nas_graph_find(qg, d->name)].val, nas_shape_numel(&d->shape) * sizeof(float));
  }
  return NAS_OK;
}

/* ---- the QAT phase ------------------------------------------------------------------------ */

typedef struct qat_prog {
  nas_qat *q;                 /* network whose alpha is scheduled */
  const nas_qat_cfg *qc;
  long total;                 /* steps of the phase */
  void (*user_fn)(const nas_epoch_report *r, void *user);
  void *user;
} qat_prog;

/* Called by nas_train after every batch: sets alpha for the next step, forwards the report. */
static void qat_progress(const nas_epoch_report *r, void *p) {
  qat_prog *s = p;
  if (r->val_acc < 0) {
    long done = (long)(r->epoch - 1) * r->steps + r->step;
    nas_qat_set_alpha(s->q, nas_qat_alpha_at(done, s->total, s->q->ramp));
  }
  if (!s->user_fn) return;
  nas_epoch_report rep = *r;
  rep.epoch += s->qc->epoch_offset;
  if (s->qc->epochs_total > 0) rep.epochs = s->qc->epochs_total;
  s->user_fn(&rep, s->user);
}

int nas_qat_run(nas_net *net, const nas_data *d, const nas_qat_cfg *qc, const nas_train_cfg *cfg,
                nas_train_result *r, nas_calib *c, nas_err *e) {
  memset(c, 0, sizeof *c);
  nas_qat_cfg def;
  nas_qat_cfg_default(&def);
  if (!qc) qc = &def;
  nas_calib cal;
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  cc.samples = qc->calib_samples > 0 ? qc->calib_samples : cc.samples;
  int rc = nas_calibrate(net, &d->train, &cc, &cal, e);
  if (rc) return rc;
  nas_qat *q = NULL;
  rc = nas_qat_build(net, qc, &q, e);
  if (rc == NAS_OK) rc = nas_qat_set_ranges(q, &cal, e);
  nas_calib_free(&cal);
  if (rc == NAS_OK) {
    nas_qat_set_alpha(q, 0);
    qat_prog s = {q, qc, (long)cfg->epochs * ((d->train.n + cfg->batch - 1) / (cfg->batch > 0 ? cfg->batch : 1)),
                  cfg->progress, cfg->user};
    nas_train_cfg tc = *cfg;
    tc.progress = qat_progress;
    tc.user = &s;
    rc = nas_train(q->net, d, &tc, r, e);
    if (rc) nas_err_prefix(e, "QAT (%s)", nas_qat_mode_name(q->mode));
  }
  if (rc == NAS_OK) {
    nas_qat_set_alpha(q, 1);
    rc = nas_qat_export(q, net, c, e);
  }
  nas_qat_free(q);
  return rc;
}

/* ---- ranges as JSON ----------------------------------------------------------------------- */

/* The JSON key of internal point k of recurrent node i: "<node>:h", "<node>:c" (LSTM) or
 * "<node>:<point>" (GRU, the names of train/quant.h). */
static void sub_key(const nas_graph *g, int i, int k, char *buf, size_t cap) {
  static const char *const lstm[NAS_LSTM_NPOINTS] = {"h", "c"};
  static const char *const gru[NAS_GRU_NPOINTS] = {"gxr", "gxz", "gxn", "ghr", "ghz", "ghn", "ar",
                                                   "az", "m", "an", "d", "e", "h"};
  snprintf(buf, cap, "%s:%s", g->nodes[i].name, g->nodes[i].op == NAS_OP_LSTM ? lstm[k] : gru[k]);
}

cJSON *nas_qat_ranges_to_json(const nas_net *net, const nas_calib *c) {
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  const nas_graph *g = net->g;
  for (int i = 0; i < c->n && i < g->n; i++) {
    const int np = c->sub && c->sub[i] >= 0 ? nas_rnn_npoints(g->nodes[i].op) : 0;
    for (int k = -1; k < np; k++) { /* k = -1: the node's own point */
      if (k < 0 && !c->point[i]) continue;
      char key[96];
      double v[2] = {k < 0 ? c->lo[i] : c->sub_lo[c->sub[i] + k],
                     k < 0 ? c->hi[i] : c->sub_hi[c->sub[i] + k]};
      if (k >= 0) sub_key(g, i, k, key, sizeof key);
      cJSON *a = cJSON_CreateDoubleArray(v, 2);
      if (!a || !cJSON_AddItemToObject(j, k < 0 ? g->nodes[i].name : key, a)) {
        cJSON_Delete(a);
        cJSON_Delete(j);
        return NULL;
      }
    }
  }
  return j;
}

/* The internal point "<node>:<point>" names: its index into c->sub_lo, or -1. */
static int sub_index(const nas_graph *g, const nas_calib *c, const char *key) {
  const char *colon = strrchr(key, ':');
  if (!colon || !c->sub) return -1;
  for (int i = 0; i < g->n; i++) {
    if (c->sub[i] < 0 || strncmp(g->nodes[i].name, key, (size_t)(colon - key)) ||
        g->nodes[i].name[colon - key])
      continue;
    for (int k = 0; k < nas_rnn_npoints(g->nodes[i].op); k++) {
      char want[96];
      sub_key(g, i, k, want, sizeof want);
      if (!strcmp(want, key)) return c->sub[i] + k;
    }
  }
  return -1;
}

int nas_qat_ranges_from_json(const nas_net *net, const cJSON *j, nas_calib *c, nas_err *e) {
  memset(c, 0, sizeof *c);
  const nas_graph *g = net->g;
  if (!cJSON_IsObject(j)) return nas_errf(e, NAS_EFORMAT, "qat ranges: expected an object");
  c->n = g->n, c->method = NAS_CALIB_MINMAX;
  c->point = nas_malloc((size_t)g->n);
  c->lo = nas_calloc((size_t)g->n, sizeof *c->lo);
  c->hi = nas_calloc((size_t)g->n, sizeof *c->hi);
  if (!c->point || !c->lo || !c->hi) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "qat ranges: out of memory");
  }
  nas_quant_points(net, c->point);
  if (nas_calib_alloc_sub(g, c) != NAS_OK) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "qat ranges: out of memory");
  }
  unsigned char *seen = c->nsub ? nas_calloc((size_t)c->nsub, 1) : NULL;
  if (c->nsub && !seen) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "qat ranges: out of memory");
  }
  for (const cJSON *it = j->child; it; it = it->next) {
    int id = it->string ? nas_graph_find(g, it->string) : -1;
    const int si = id < 0 && it->string ? sub_index(g, c, it->string) : -1;
    if (si >= 0) {
      const cJSON *lo = cJSON_GetArrayItem(it, 0), *hi = cJSON_GetArrayItem(it, 1);
      if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) ||
          !isfinite(lo->valuedouble) || !isfinite(hi->valuedouble) || lo->valuedouble > hi->valuedouble) {
        nas_errf(e, NAS_EFORMAT, "qat ranges: '%s' must be [lo, hi] with finite lo <= hi", it->string);
        free(seen);
        nas_calib_free(c);
        return NAS_EFORMAT;
      }
      c->sub_lo[si] = (float)lo->valuedouble, c->sub_hi[si] = (float)hi->valuedouble, seen[si] = 1;
      continue;
    }
    if (id < 0 || !c->point[id]) {
      free(seen);
      nas_errf(e, NAS_EFORMAT, "qat ranges: '%s' is not a quantisation point of the network",
               it->string ? it->string : "");
      nas_calib_free(c);
      return NAS_EFORMAT;
    }
    const cJSON *lo = cJSON_GetArrayItem(it, 0), *hi = cJSON_GetArrayItem(it, 1);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) ||
        !isfinite(lo->valuedouble) || !isfinite(hi->valuedouble) || lo->valuedouble > hi->valuedouble) {
      nas_errf(e, NAS_EFORMAT, "qat ranges: '%s' must be [lo, hi] with finite lo <= hi", it->string);
      free(seen);
      nas_calib_free(c);
      return NAS_EFORMAT;
    }
    c->lo[id] = (float)lo->valuedouble, c->hi[id] = (float)hi->valuedouble;
  }
  for (int i = 0; c->sub && i < g->n; i++)
    for (int k = 0; c->sub[i] >= 0 && k < nas_rnn_npoints(g->nodes[i].op); k++) {
      if (seen[c->sub[i] + k]) continue;
      char key[96];
      sub_key(g, i, k, key, sizeof key);
      nas_errf(e, NAS_EFORMAT, "qat ranges: no range for '%s'", key);
      free(seen);
      nas_calib_free(c);
      return NAS_EFORMAT;
    }
  free(seen);
  for (int i = 0; i < g->n; i++) {
    if (c->point[i] && !cJSON_GetObjectItemCaseSensitive(j, g->nodes[i].name)) {
      nas_errf(e, NAS_EFORMAT, "qat ranges: no range for '%s'", g->nodes[i].name);
      nas_calib_free(c);
      return NAS_EFORMAT;
    }
  }
  return NAS_OK;
}
