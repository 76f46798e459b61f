/* train/prune_forms.c: the Sparse Variational Dropout training form and its export into the
 * deploy form, and the compaction of a channel-pruned network into the smaller architecture
 * (train/prune.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "train/net.h"
#include "train/prune.h"

static int same_shape(const nas_shape *a, const nas_shape *b) {
  if (a->nd != b->nd) return 0;
  for (int i = 0; i < a->nd; i++)
    if (a->d[i] != b->d[i]) return 0;
  return 1;
}

/* Copies every PARAM/STATE of src into the node of dst with the same name and shape. */
static void copy_shared(const nas_graph *src, nas_graph *dst) {
  for (int i = 0; i < dst->n; i++) {
    nas_node *d = &dst->nodes[i];
    if (d->kind != NAS_NODE_PARAM && d->kind != NAS_NODE_STATE) continue;
    int j = nas_graph_find(src, d->name);
    if (j < 0 || src->nodes[j].kind != d->kind || !same_shape(&src->nodes[j].shape, &d->shape))
      continue;
    memcpy(d->val, src->nodes[j].val, nas_shape_numel(&d->shape) * sizeof *d->val);
  }
}

int nas_prune_svdo_build(const nas_net *net, int max_batch, uint64_t seed, nas_net **out,
                         nas_err *e) {
  int rc = nas_net_build_form(net->arch_json, "svdo training form", max_batch, seed, 1, out, e);
  if (rc != NAS_OK) return rc;
  copy_shared(net->g, (*out)->g);
  return NAS_OK;
}

typedef struct mag {
  float a;
  size_t i;
} mag;

static int cmp_mag(const void *x, const void *y) {
  const mag *p = x, *q = y;
  if (p->a != q->a) return p->a < q->a ? -1 : 1;
  return (p->i > q->i) - (p->i < q->i);
}

int nas_prune_svdo_export(const nas_net *t, nas_net *net, nas_err *e) {
  nas_graph *g = net->g;
  const nas_graph *tg = t->g;
  copy_shared(tg, g);
  double thr = net->prune.threshold;
  for (int i = 0; i < g->n; i++) {
    nas_node *mk = &g->nodes[i];
    size_t ln = strlen(mk->name);
    if (mk->kind != NAS_NODE_STATE || ln < 7 || strcmp(mk->name + ln - 7, ".w.mask")) continue;
    char wn[48], ln2[48];
    snprintf(wn, sizeof wn, "%.*s", (int)(ln - 5), mk->name);      /* "<...>.w" */
    snprintf(ln2, sizeof ln2, "%.*s.ls2", (int)(ln - 5), mk->name); /* "<...>.w.ls2" */
    int th = nas_graph_find(tg, wn), ls = nas_graph_find(tg, ln2), w = nas_graph_find(g, wn);
    if (th < 0 || ls < 0 || w < 0)
      return nas_errf(e, NAS_EINVAL, "svdo export: '%s' has no trained '%s'", mk->name, ln2);
    const float *tv = tg->nodes[th].val, *lv = tg->nodes[ls].val;
    size_t n = nas_shape_numel(&mk->shape), zeros = 0;
    for (size_t k = 0; k < n; k++) {
      double la = (double)lv[k] - log((double)tv[k] * tv[k] + 1e-8);
      mk->val[k] = la < thr ? 1.0f : 0.0f;
      zeros += mk->val[k] == 0.0f;
    }
    /* every output channel keeps its largest theta (a channel without weights outputs a
     * constant: see train/prune_run.c) */
    size_t rows = (size_t)mk->shape.d[0], per = n / rows;
    for (size_t r = 0; r < rows; r++) {
      size_t best = r * per, alive = 0;
      for (size_t j = r * per; j < (r + 1) * per; j++) {
        alive += mk->val[j] != 0.0f;
        if (fabsf(tv[j]) > fabsf(tv[best])) best = j;
      }
      if (!alive) mk->val[best] = 1.0f, zeros--;
    }
    /* the sparsity floor of the layer, by magnitude among the kept weights */
    int li = -1;
    double floor_s = sscanf(mk->name, "l%d.", &li) == 1 && li >= 0 && li < net->n_layers
                         ? net->layers[li].sparsity : 0;
    size_t want = (size_t)floor(floor_s * (double)n + 1e-9);
    if (want > zeros) {
      mag *m = nas_malloc(n * sizeof *m);
      if (!m) return nas_errf(e, NAS_ENOMEM, "svdo export: out of memory");
      for (size_t k = 0; k < n; k++) m[k].a = mk->val[k] == 0.0f ? -1.0f : fabsf(tv[k]), m[k].i = k;
      for (size_t r = 0; r < rows; r++) { /* keep each row's largest */
        size_t best = r * per;
        for (size_t j = r * per; j < (r + 1) * per; j++)
          if (m[j].a > m[best].a) best = j;
        m[best].a = INFINITY;
      }
      if (want > n - rows) want = n - rows;
      qsort(m, n, sizeof *m, cmp_mag);
      for (size_t k = 0; k < want; k++) mk->val[m[k].i] = 0.0f;
      free(m);
    }
  }
  nas_prune_bake(g);
  return NAS_OK;
}

/* ---- compaction ----------------------------------------------------------------------------- */

typedef struct keep {
  int n;     /* kept channels */
  int *idx;  /* [n] their indices in the dense layer (NULL: not a producer) */
  int full;  /* channels of the dense layer */
} keep;

/* The producing part of a layer op ("conv" -> "conv", "pwconv"/"dsconv" -> "pw"). */
static const char *producer_part(const char *op) { return !strcmp(op, "conv") ? "conv" : "pw"; }

/* dst[...] = src[k0[i0], k1[i1], ...] over up to 4 axes; k[a] NULL = identity. */
static void gather(const nas_node *src, nas_node *dst, int *const k[4]) {
  int nd = dst->shape.nd, D[4] = {1, 1, 1, 1}, S[4] = {1, 1, 1, 1};
  for (int a = 0; a < nd; a++) D[a] = dst->shape.d[a], S[a] = src->shape.d[a];
  size_t o = 0;
  for (int i0 = 0; i0 < D[0]; i0++)
    for (int i1 = 0; i1 < D[1]; i1++)
      for (int i2 = 0; i2 < D[2]; i2++)
        for (int i3 = 0; i3 < D[3]; i3++) {
          int j0 = k[0] ? k[0][i0] : i0, j1 = k[1] ? k[1][i1] : i1;
          int j2 = k[2] ? k[2][i2] : i2, j3 = k[3] ? k[3][i3] : i3;
          size_t s = (((size_t)j0 * S[1] + j1) * S[2] + j2) * S[3] + j3;
          dst->val[o++] = src->val[s];
        }
}

/* Copies tensor d of the compact net from net: axes by the channel lists of its layer. */
static int copy_compact(const nas_net *net, const cJSON *layers, const keep *own, const keep *in,
                        nas_node *d, nas_err *e) {
  int j = nas_graph_find(net->g, d->name);
  if (j < 0) return NAS_OK; /* nothing to copy (left at its initial value) */
  const nas_node *s = &net->g->nodes[j];
  int li = -1;
  char part[48] = "";
  int *k[4] = {NULL, NULL, NULL, NULL}, *tmp = NULL;
  if (sscanf(d->name, "l%d.%47[^.]", &li, part) == 2 && li >= 0 && li < net->n_layers) {
    const char *op = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(layers, li), "op")->valuestring;
    const keep *o = &own[li], *x = &in[li];
    int prod = o->idx && !strcmp(part, producer_part(op));
    int last = d->shape.nd - 1;
    if (!strcmp(part, "dw")) {
      if (x->idx) k[last] = x->idx; /* depthwise w [KH,KW,C], b and bn [C] */
    } else if (!strcmp(part, "fc")) {
      if (x->idx && d->shape.nd == 2) { /* w [M, P*C]: keep p*C + c for kept c */
        int C = x->full, P = s->shape.d[1] / C;
        tmp = nas_malloc((size_t)P * x->n * sizeof *tmp);
        if (!tmp) return nas_errf(e, NAS_ENOMEM, "compact: out of memory");
        for (int p = 0; p < P; p++)
          for (int c = 0; c < x->n; c++) tmp[p * x->n + c] = p * C + x->idx[c];
        k[1] = tmp;
      }
    } else if (prod || (x->idx && !strcmp(part, producer_part(op)))) {
      if (d->shape.nd == 4) { /* w [Co,KH,KW,Ci] */
        if (prod) k[0] = o->idx;
        if (x->idx) k[3] = x->idx;
      } else if (prod) {
        k[0] = o->idx; /* b, bn.* [Co] */
      }
    }
  }
  size_t want = 1;
  for (int a = 0; a < d->shape.nd; a++) want *= (size_t)d->shape.d[a];
  int ok = d->shape.nd == s->shape.nd;
  for (int a = 0; ok && a < d->shape.nd; a++)
    ok = k[a] ? 1 : d->shape.d[a] == s->shape.d[a];
  if (!ok) {
    free(tmp);
    return nas_errf(e, NAS_EINVAL, "compact: tensor '%s' does not map onto the dense network", d->name);
  }
  gather(s, d, k);
  free(tmp);
  (void)want;
  return NAS_OK;
}

int nas_prune_expected_arch(const char *arch, char **out, nas_err *e) {
  *out = NULL;
  cJSON *root = NULL;
  unsigned long jm = nas_json_mark();
  if (nas_json_parse(arch, &root, NULL) == NAS_ENOMEM)
    return nas_errf(e, NAS_ENOMEM, "arch: out of memory");
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return nas_errf(e, NAS_EINVAL, "arch: not a JSON object");
  }
  cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
  cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "prune");
  const cJSON *ch = pr ? cJSON_GetObjectItemCaseSensitive(pr, "channels") : NULL;
  int n = cJSON_IsArray(layers) ? cJSON_GetArraySize(layers) : 0, rc = NAS_OK;
  int *own = nas_calloc((size_t)(n > 0 ? n : 1) * 2, sizeof *own);
  double *frac = nas_calloc((size_t)(n > 0 ? n : 1), sizeof *frac);
  if (!own || !frac) rc = nas_errf(e, NAS_ENOMEM, "arch: out of memory");
  if (rc == NAS_OK && n > 0)
    rc = nas_prune_channel_plan(layers, cJSON_IsNumber(ch) ? ch->valuedouble : 0, own, own + n,
                                frac, "arch", e);
  for (int i = 0; rc == NAS_OK && i < n; i++) {
    cJSON *l = cJSON_GetArrayItem(layers, i);
    if (cJSON_GetObjectItemCaseSensitive(l, "channels"))
      cJSON_ReplaceItemInObjectCaseSensitive(l, "channels", cJSON_CreateNumber(0));
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(l, "out");
    if (!own[i] || !cJSON_IsNumber(o)) continue;
    int C = (int)o->valuedouble, cut = (int)floor(frac[i] * C + 1e-9);
    if (cut > C - 1) cut = C - 1;
    cJSON_ReplaceItemInObjectCaseSensitive(l, "out", cJSON_CreateNumber(C - (cut > 0 ? cut : 0)));
  }
  if (rc == NAS_OK && cJSON_IsNumber(ch))
    cJSON_ReplaceItemInObjectCaseSensitive(pr, "channels", cJSON_CreateNumber(0));
  if (rc == NAS_OK && (nas_json_failed(jm) || !(*out = cJSON_PrintUnformatted(root)))) {
    free(*out), *out = NULL;
    rc = nas_errf(e, NAS_ENOMEM, "arch: out of memory");
  }
  free(own), free(frac);
  cJSON_Delete(root);
  return rc;
}

int nas_prune_compact(const nas_net *net, int max_batch, nas_net **out, nas_err *e) {
  *out = NULL;
  cJSON *root = NULL;
  unsigned long jm = nas_json_mark();
  int prc = nas_json_parse(net->arch_json, &root, NULL);
  if (prc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "compact: out of memory");
  if (prc != NAS_OK) return nas_errf(e, NAS_EINVAL, "compact: the network's arch is not valid JSON");
  cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
  int n = net->n_layers, rc = NAS_OK;
  int *own = nas_calloc((size_t)n * 2, sizeof *own);
  double *frac = nas_calloc((size_t)n, sizeof *frac);
  keep *ko = nas_calloc((size_t)n * 2, sizeof *ko), *ki = ko ? ko + n : NULL;
  if (!own || !frac || !ko) {
    rc = nas_errf(e, NAS_ENOMEM, "compact: out of memory");
    goto done;
  }
  if ((rc = nas_prune_channel_plan(layers, net->prune.channels, own, own + n, frac, "compact", e)))
    goto done;
  const keep *cur = NULL;
  for (int i = 0; i < n && rc == NAS_OK; i++) {
    cJSON *l = cJSON_GetArrayItem(layers, i);
    const char *op = cJSON_GetObjectItemCaseSensitive(l, "op")->valuestring;
    if (cur) ki[i] = *cur;
    if (own[i]) {
      char nm[48];
      snprintf(nm, sizeof nm, "l%d.%s.bn.cmask", i, producer_part(op));
      int m = nas_graph_find(net->g, nm);
      if (m < 0) {
        rc = nas_errf(e, NAS_EINVAL, "compact: layer %d has no channel mask '%s'", i, nm);
        break;
      }
      const nas_node *mk = &net->g->nodes[m];
      int C = (int)nas_shape_numel(&mk->shape);
      ko[i].idx = nas_malloc((size_t)C * sizeof *ko[i].idx);
      if (!ko[i].idx) {
        rc = nas_errf(e, NAS_ENOMEM, "compact: out of memory");
        break;
      }
      ko[i].full = C;
      for (int c = 0; c < C; c++)
        if (mk->val[c] != 0.0f) ko[i].idx[ko[i].n++] = c;
      if (ko[i].n == 0) ko[i].idx[ko[i].n++] = 0; /* never empty */
      cJSON_ReplaceItemInObjectCaseSensitive(l, "out", cJSON_CreateNumber(ko[i].n));
      if (cJSON_GetObjectItemCaseSensitive(l, "channels"))
        cJSON_ReplaceItemInObjectCaseSensitive(l, "channels", cJSON_CreateNumber(0));
      cur = &ko[i];
    } else if (strcmp(op, "dwconv") && strcmp(op, "maxpool") && strcmp(op, "avgpool") &&
               strcmp(op, "dropout") && strcmp(op, "gap") && strcmp(op, "flatten")) {
      cur = NULL;
    }
  }
  if (rc) goto done;
  cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "prune");
  if (pr && cJSON_GetObjectItemCaseSensitive(pr, "channels"))
    cJSON_ReplaceItemInObjectCaseSensitive(pr, "channels", cJSON_CreateNumber(0));
  char *arch = nas_json_failed(jm) ? NULL : cJSON_PrintUnformatted(root);
  if (!arch) {
    rc = nas_errf(e, NAS_ENOMEM, "compact: out of memory");
    goto done;
  }
  rc = nas_net_build(arch, "compacted arch", max_batch, 1, out, e);
  free(arch);
  for (int i = 0; rc == NAS_OK && i < (*out)->g->n; i++) {
    nas_node *d = &(*out)->g->nodes[i];
    if (d->kind == NAS_NODE_PARAM || d->kind == NAS_NODE_STATE)
      rc = copy_compact(net, layers, ko, ki, d, e);
  }
  if (rc != NAS_OK) {
    nas_net_free(*out);
    *out = NULL;
  } else {
    nas_prune_bake((*out)->g);
  }
done:
  for (int i = 0; ko && i < n; i++) free(ko[i].idx);
  free(ko), free(own), free(frac);
  cJSON_Delete(root);
  return rc;
}
