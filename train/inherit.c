/* train/inherit.c: weight inheritance from a trained parent network into a morphed child
 * (train/inherit.h): layer alignment, per-axis index maps, identity initialisation of inserted
 * layers. */
#include "train/inherit.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"

/* Index map entries besides a parent index. */
#define KEEP (-1) /* an entry the parent did not have: the child's initialisation stays */
#define ZERO (-2) /* a new input channel or kernel tap: 0 (1 for a mask) */

/* Channels and spatial positions feeding layer j of n (what an fc after flatten reads). */
static void fc_input(const nas_net *n, int j, int *pos, int *ch) {
  int k = j - 1;
  while (k >= 0 && (!strcmp(n->layers[k].op, "dropout") || !strcmp(n->layers[k].op, "flatten")))
    k--;
  if (k < 0) *pos = n->in_h * n->in_w, *ch = n->in_c;
  else if (!strcmp(n->layers[k].op, "gap") || !strcmp(n->layers[k].op, "fc"))
    *pos = 1, *ch = n->layers[k].out_c;
  else *pos = n->layers[k].out_h * n->layers[k].out_w, *ch = n->layers[k].out_c;
}

/* map[c] for an output-like axis (copy the channels both have, KEEP the child's others). */
static void map_out(int *map, int cd, int pd) {
  for (int c = 0; c < cd; c++) map[c] = c < pd ? c : KEEP;
}
/* ... for an input axis (new channels ZERO). */
static void map_in(int *map, int cd, int pd) {
  for (int c = 0; c < cd; c++) map[c] = c < pd ? c : ZERO;
}
/* ... for a kernel axis: centred, new taps ZERO. */
static void map_tap(int *map, int cd, int pd) {
  int off = (cd - pd) / 2;
  for (int c = 0; c < cd; c++) map[c] = c - off >= 0 && c - off < pd ? c - off : ZERO;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

/* Copies parent tensor s into child tensor d of aligned layers (child j, parent i). Returns
 * the values copied. */
static long long copy_tensor(const nas_net *child, int j, const nas_net *parent, int i,
                             const nas_node *s, nas_node *d, const char *rest) {
  const int nd = d->shape.nd, mask = ends_with(rest, ".mask") || ends_with(rest, ".cmask");
  if (nd != s->shape.nd || nd < 1 || nd > 4) return 0;
  int same = 1;
  for (int a = 0; a < nd; a++) same &= d->shape.d[a] == s->shape.d[a];
  size_t n = nas_shape_numel(&d->shape);
  if (same) {
    memcpy(d->val, s->val, n * sizeof *d->val);
    return (long long)n;
  }
  if (strncmp(rest, "lstm.", 5) == 0 || strncmp(rest, "gru.", 4) == 0) return 0;
  int D[4] = {1, 1, 1, 1}, S[4] = {1, 1, 1, 1};
  for (int a = 0; a < nd; a++) D[a] = d->shape.d[a], S[a] = s->shape.d[a];
  int *map[4] = {NULL, NULL, NULL, NULL};
  int total = D[0] + D[1] + D[2] + D[3];
  int *buf = nas_malloc((size_t)total * sizeof *buf);
  if (!buf) return -1;
  for (int a = 0, o = 0; a < 4; o += D[a], a++) map[a] = buf + o;
  const int fc = strncmp(rest, "fc.", 3) == 0;
  if (nd == 4) { /* conv / pw weight [Co,KH,KW,Ci] */
    map_out(map[0], D[0], S[0]), map_tap(map[1], D[1], S[1]), map_tap(map[2], D[2], S[2]);
    map_in(map[3], D[3], S[3]);
  } else if (nd == 3) { /* depthwise [KH,KW,C]: its channels follow its input */
    map_tap(map[0], D[0], S[0]), map_tap(map[1], D[1], S[1]), map_out(map[2], D[2], S[2]);
  } else if (nd == 2 && fc) { /* fc [M, P*C] */
    map_out(map[0], D[0], S[0]);
    int pc, cc, pp, cp;
    fc_input(child, j, &pc, &cc);
    fc_input(parent, i, &pp, &cp);
    if (pc != pp || pc * cc != D[1] || pp * cp != S[1]) {
      free(buf);
      return 0; /* the spatial positions differ: nothing lines up */
    }
    for (int p = 0; p < pc; p++)
      for (int c = 0; c < cc; c++) map[1][p * cc + c] = c < cp ? p * cp + c : ZERO;
  } else if (nd == 1) {
    map_out(map[0], D[0], S[0]);
  } else {
    free(buf);
    return 0;
  }
  long long copied = 0;
  size_t o = 0;
  for (int i0 = 0; i0 < D[0]; i0++)
    for (int i1 = 0; i1 < D[1]; i1++)
      for (int i2 = 0; i2 < D[2]; i2++)
        for (int i3 = 0; i3 < D[3]; i3++, o++) {
          int idx[4] = {i0, i1, i2, i3}, src[4] = {0, 0, 0, 0}, keep = 0, zero = 0;
          for (int a = 0; a < nd; a++) {
            int m = map[a][idx[a]];
            if (m == KEEP) keep = 1;
            else if (m == ZERO) zero = 1;
            else src[a] = m;
          }
          if (keep) continue;
          if (zero) {
            d->val[o] = mask ? 1.0f : 0.0f;
            continue;
          }
          size_t sidx = (((size_t)src[0] * S[1] + src[1]) * S[2] + src[2]) * S[3] + src[3];
          d->val[o] = s->val[sidx];
          copied++;
        }
  free(buf);
  return copied;
}

/* Identity initialisation of inserted layer j when its op allows it. */
static int identity(nas_net *n, const cJSON *layer, int j) {
  const nas_layer_info *L = &n->layers[j];
  int in_c = j > 0 ? n->layers[j - 1].out_c : n->in_c;
  int in_h = j > 0 ? n->layers[j - 1].out_h : n->in_h, in_w = j > 0 ? n->layers[j - 1].out_w : n->in_w;
  const char *op = L->op;
  if (strcmp(op, "conv") && strcmp(op, "pwconv") && strcmp(op, "dwconv") && strcmp(op, "dsconv"))
    return 0;
  if (L->out_c != in_c || L->out_h != in_h || L->out_w != in_w) return 0; /* stride 1, same */
  const cJSON *bn = cJSON_GetObjectItemCaseSensitive(layer, "bn");
  if (cJSON_IsFalse(bn)) return 0;
  static const char *const PARTS[] = {"conv", "pw", "dw"};
  int done = 0;
  for (int p = 0; p < 3; p++) {
    char nm[48];
    snprintf(nm, sizeof nm, "l%d.%s.w", j, PARTS[p]);
    int w = nas_graph_find(n->g, nm);
    if (w < 0) continue;
    nas_node *wn = &n->g->nodes[w];
    size_t k = nas_shape_numel(&wn->shape);
    memset(wn->val, 0, k * sizeof *wn->val);
    if (wn->shape.nd == 4) { /* [C,KH,KW,C]: centre tap, channel to itself */
      int C = wn->shape.d[0], KH = wn->shape.d[1], KW = wn->shape.d[2];
      for (int c = 0; c < C; c++)
        wn->val[(((size_t)c * KH + KH / 2) * KW + KW / 2) * C + c] = 1.0f;
    } else { /* depthwise [KH,KW,C] */
      int KH = wn->shape.d[0], KW = wn->shape.d[1], C = wn->shape.d[2];
      for (int c = 0; c < C; c++) wn->val[((size_t)(KH / 2) * KW + KW / 2) * C + c] = 1.0f;
    }
    static const char *const BN[4] = {"gamma", "beta", "mean", "var"};
    for (int b = 0; b < 4; b++) {
      snprintf(nm, sizeof nm, "l%d.%s.bn.%s", j, PARTS[p], BN[b]);
      int id = nas_graph_find(n->g, nm);
      if (id < 0) continue;
      nas_node *bn_node = &n->g->nodes[id];
      float eps = 1e-5f, v = b == 0 ? sqrtf(1.0f + eps) : b == 3 ? 1.0f : 0.0f;
      for (size_t c = 0; c < nas_shape_numel(&bn_node->shape); c++) bn_node->val[c] = v;
    }
    done = 1;
  }
  return done;
}

int nas_net_inherit(nas_net *child, const nas_net *parent, nas_inherit_stats *s, nas_err *e) {
  nas_inherit_stats st;
  memset(&st, 0, sizeof st);
  int nc = child->n_layers, np = parent->n_layers;
  int *pj = nas_malloc((size_t)(nc > 0 ? nc : 1) * sizeof *pj);
  cJSON *root = NULL;
  int prc = pj ? nas_json_parse(child->arch_json, &root, NULL) : NAS_ENOMEM;
  if (prc != NAS_OK) {
    free(pj);
    cJSON_Delete(root);
    return prc == NAS_ENOMEM ? nas_errf(e, NAS_ENOMEM, "inherit: out of memory")
                             : nas_errf(e, NAS_EINVAL, "inherit: the child's arch is not valid JSON");
  }
  int i = 0;
  for (int j = 0; j < nc; j++) {
    if (i < np && !strcmp(child->layers[j].op, parent->layers[i].op)) {
      pj[j] = i++;
      st.matched++;
    } else {
      /* a parent layer without a counterpart before the next match is dropped */
      int k = i;
      while (k < np && strcmp(child->layers[j].op, parent->layers[k].op)) k++;
      int later = 0; /* does a later child layer still want parent layer i? */
      for (int jj = j + 1; jj < nc && i < np; jj++) later |= !strcmp(child->layers[jj].op, parent->layers[i].op);
      if (k < np && !later) {
        st.dropped += k - i;
        pj[j] = k, i = k + 1;
        st.matched++;
      } else {
        pj[j] = -1;
        st.inserted++;
      }
    }
  }
  st.dropped += np - i;
  int rc = NAS_OK;
  const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
  for (int j = 0; j < nc && rc == NAS_OK; j++)
    if (pj[j] < 0) st.identity += identity(child, cJSON_GetArrayItem(layers, j), j);
  for (int id = 0; id < child->g->n && rc == NAS_OK; id++) {
    nas_node *d = &child->g->nodes[id];
    if (d->kind != NAS_NODE_PARAM && d->kind != NAS_NODE_STATE) continue;
    if (d->kind == NAS_NODE_PARAM) st.total += (long long)nas_shape_numel(&d->shape);
    int j = -1, off = 0;
    if (sscanf(d->name, "l%d.%n", &j, &off) != 1 || j < 0 || j >= nc || pj[j] < 0) continue;
    char nm[64];
    snprintf(nm, sizeof nm, "l%d.%s", pj[j], d->name + off);
    int sid = nas_graph_find(parent->g, nm);
    if (sid < 0 || parent->g->nodes[sid].kind != d->kind) continue;
    long long c = copy_tensor(child, j, parent, pj[j], &parent->g->nodes[sid], d, d->name + off);
    if (c < 0) rc = nas_errf(e, NAS_ENOMEM, "inherit: out of memory");
    else if (d->kind == NAS_NODE_PARAM) st.copied += c;
  }
  free(pj);
  cJSON_Delete(root);
  if (rc == NAS_OK) nas_prune_bake(child->g);
  if (s) *s = st;
  return rc;
}
