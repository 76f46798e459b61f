/* train/prune.c: pruning configuration (arch "prune" object, `--prune` text), the channel
 * plan, masks on a graph (initialise, bake, look through), statistics, the magnitude
 * schedule and the training hooks (train/prune.h). SVDO forms and compaction: prune_forms.c. */
#include "train/prune.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "train/net.h"
#include "train/ops.h"

void nas_prune_cfg_default(nas_prune_cfg *c) {
  memset(c, 0, sizeof *c);
  c->method = NAS_PRUNE_NONE;
  c->sparsity = 0.5;
  c->begin = 0.0, c->end = 0.75;
  c->threshold = 3.0;
  c->kl_weight = 1.0, c->kl_warmup = 0.3;
  c->l1 = 1e-4;
  c->channels_at = 0.5;
}

static const char *const METHODS[] = {"none", "magnitude", "svdo", NULL};

const char *nas_prune_method_name(int m) { return m >= 0 && m <= 2 ? METHODS[m] : "?"; }

int nas_prune_active(const nas_prune_cfg *c) {
  return c->method != NAS_PRUNE_NONE || c->channels > 0;
}

/* ---- configuration ------------------------------------------------------------------------ */

typedef struct numkey {
  const char *key;
  double lo, hi; /* accepted range [lo, hi] */
  int hi_open;   /* 1: hi itself is excluded */
  int integer;   /* 1: must be integral */
  size_t off;    /* offset of the double (or int when integer) in nas_prune_cfg */
} numkey;

#define OFF(f) offsetof(nas_prune_cfg, f)
static const numkey NUMKEYS[] = {
    {"sparsity", 0, 1, 1, 0, OFF(sparsity)},   {"begin", 0, 1, 0, 0, OFF(begin)},
    {"end", 0, 1, 0, 0, OFF(end)},             {"every", 0, 1e9, 0, 1, OFF(every)},
    {"threshold", -10, 10, 0, 0, OFF(threshold)}, {"kl_weight", 0, 1e6, 0, 0, OFF(kl_weight)},
    {"kl_warmup", 0, 1, 0, 0, OFF(kl_warmup)}, {"channels", 0, 1, 1, 0, OFF(channels)},
    {"l1", 0, 1, 0, 0, OFF(l1)},               {"channels_at", 0, 1, 0, 0, OFF(channels_at)},
};
#define N_NUMKEYS (int)(sizeof NUMKEYS / sizeof NUMKEYS[0])

static int set_num(nas_prune_cfg *c, const numkey *k, double v, const char *src, nas_err *e) {
  if (!isfinite(v) || v < k->lo || v > k->hi || (k->hi_open && v >= k->hi) ||
      (k->integer && v != floor(v)))
    return nas_errf(e, NAS_EINVAL, "%s: prune.%s: %g is out of range %s%g,%g%s", src, k->key, v,
                    k->integer ? "integer " : "[", k->lo, k->hi, k->hi_open ? ")" : "]");
  if (k->integer) *(int *)((char *)c + k->off) = (int)v;
  else *(double *)((char *)c + k->off) = v;
  return NAS_OK;
}

static int set_str(nas_prune_cfg *c, const char *key, const char *v, const char *src, nas_err *e) {
  if (!strcmp(key, "method")) {
    for (int i = 0; METHODS[i]; i++)
      if (!strcmp(v, METHODS[i])) return c->method = i, NAS_OK;
    return nas_errf(e, NAS_EINVAL, "%s: prune.method: unknown value '%s' (none, magnitude, svdo)",
                    src, v);
  }
  if (!strcmp(v, "layer") || !strcmp(v, "global")) return c->global = v[0] == 'g', NAS_OK;
  return nas_errf(e, NAS_EINVAL, "%s: prune.scope: unknown value '%s' (layer, global)", src, v);
}

static int check_cfg(const nas_prune_cfg *c, const char *src, nas_err *e) {
  if (c->end < c->begin)
    return nas_errf(e, NAS_EINVAL, "%s: prune.end %g is before prune.begin %g", src, c->end, c->begin);
  return NAS_OK;
}

int nas_prune_cfg_parse(const cJSON *o, const char *src, nas_prune_cfg *c, cJSON *canon,
                        nas_err *e) {
  nas_prune_cfg_default(c);
  if (!o) return NAS_OK;
  if (!cJSON_IsObject(o)) return nas_errf(e, NAS_EINVAL, "%s: field 'prune': expected an object", src);
  for (const cJSON *f = o->child; f; f = f->next) {
    int rc = -1;
    if (!strcmp(f->string, "method") || !strcmp(f->string, "scope")) {
      if (!cJSON_IsString(f))
        return nas_errf(e, NAS_EINVAL, "%s: prune.%s: expected a string", src, f->string);
      rc = set_str(c, f->string, f->valuestring, src, e);
    }
    for (int k = 0; rc < 0 && k < N_NUMKEYS; k++)
      if (!strcmp(f->string, NUMKEYS[k].key)) {
        if (!cJSON_IsNumber(f))
          return nas_errf(e, NAS_EINVAL, "%s: prune.%s: expected a number", src, f->string);
        rc = set_num(c, &NUMKEYS[k], f->valuedouble, src, e);
      }
    if (rc < 0)
      return nas_errf(e, NAS_EINVAL, "%s: prune: unknown field '%s' (method, sparsity, scope, "
                      "begin, end, every, threshold, kl_weight, kl_warmup, channels, l1, "
                      "channels_at)", src, f->string);
    if (rc != NAS_OK) return rc;
  }
  if (c->method == NAS_PRUNE_SVDO && !cJSON_GetObjectItemCaseSensitive(o, "sparsity"))
    c->sparsity = 0; /* svdo: no magnitude floor unless asked */
  if (check_cfg(c, src, e)) return e->code;
  if (canon) {
    cJSON_AddStringToObject(canon, "method", METHODS[c->method]);
    cJSON_AddStringToObject(canon, "scope", c->global ? "global" : "layer");
    for (int k = 0; k < N_NUMKEYS; k++) {
      const numkey *nk = &NUMKEYS[k];
      double v = nk->integer ? *(const int *)((const char *)c + nk->off)
                             : *(const double *)((const char *)c + nk->off);
      cJSON_AddNumberToObject(canon, nk->key, v);
    }
  }
  return NAS_OK;
}

int nas_prune_spec_parse(const char *spec, char **out, nas_err *e) {
  *out = NULL;
  cJSON *o = NULL;
  while (spec && (*spec == ' ' || *spec == '\t')) spec++;
  if (!spec || !*spec) return nas_errf(e, NAS_EUSAGE, "option --prune: empty");
  unsigned long jm = nas_json_mark();
  if (*spec == '{') {
    int prc = nas_json_parse(spec, &o, NULL);
    if (prc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "option --prune: out of memory");
    if (prc != NAS_OK) return nas_errf(e, NAS_EUSAGE, "option --prune: not valid JSON");
  } else {
    o = cJSON_CreateObject();
    char *text = nas_strdup(spec);
    if (!o || !text) {
      cJSON_Delete(o);
      free(text);
      return nas_errf(e, NAS_ENOMEM, "option --prune: out of memory");
    }
    int rc = NAS_OK;
    for (char *save = NULL, *it = strtok_r(text, ",", &save); it && !rc; it = strtok_r(NULL, ",", &save)) {
      char *eq = strchr(it, '=');
      if (!eq || eq == it) {
        rc = nas_errf(e, NAS_EUSAGE, "option --prune: '%s' is not key=value", it);
        break;
      }
      *eq = 0;
      char *end;
      double v = strtod(eq + 1, &end);
      if (eq[1] && !*end) cJSON_AddNumberToObject(o, it, v);
      else cJSON_AddStringToObject(o, it, eq + 1);
    }
    free(text);
    if (rc) {
      cJSON_Delete(o);
      return rc;
    }
  }
  if (nas_json_failed(jm)) {
    cJSON_Delete(o);
    return nas_errf(e, NAS_ENOMEM, "option --prune: out of memory");
  }
  nas_prune_cfg c;
  cJSON *canon = cJSON_CreateObject();
  int rc = canon ? nas_prune_cfg_parse(o, "option --prune", &c, canon, e)
                 : nas_errf(e, NAS_ENOMEM, "option --prune: out of memory");
  cJSON_Delete(o);
  if (rc == NAS_OK && nas_json_failed(jm)) rc = nas_errf(e, NAS_ENOMEM, "option --prune: out of memory");
  if (rc == NAS_ENOMEM) {
    cJSON_Delete(canon);
    return rc;
  }
  if (rc != NAS_OK) {
    cJSON_Delete(canon);
    if (e) e->code = NAS_EUSAGE;
    return NAS_EUSAGE;
  }
  *out = cJSON_PrintUnformatted(canon);
  cJSON_Delete(canon);
  return *out ? NAS_OK : nas_errf(e, NAS_ENOMEM, "option --prune: out of memory");
}

int nas_prune_arch_with(const char *arch, const char *prune_json, char **out, nas_err *e) {
  *out = NULL;
  cJSON *a = NULL, *p = NULL;
  int ra = nas_json_parse(arch, &a, NULL), rp = nas_json_parse(prune_json, &p, NULL);
  int rc = NAS_OK;
  if (ra == NAS_ENOMEM || rp == NAS_ENOMEM) rc = nas_errf(e, NAS_ENOMEM, "arch: out of memory");
  else if (!a || !cJSON_IsObject(a)) rc = nas_errf(e, NAS_EINVAL, "arch: not a JSON object");
  else if (!p || !cJSON_IsObject(p)) rc = nas_errf(e, NAS_EINVAL, "prune: not a JSON object");
  if (rc == NAS_OK) {
    cJSON_DeleteItemFromObjectCaseSensitive(a, "prune");
    int bad = nas_json_add(a, "prune", p); /* p is owned by a, or deleted */
    p = NULL;
    if (bad) rc = nas_errf(e, NAS_ENOMEM, "arch: out of memory");
  }
  if (rc == NAS_OK) {
    *out = cJSON_PrintUnformatted(a);
    if (!*out) rc = nas_errf(e, NAS_ENOMEM, "arch: out of memory");
  }
  cJSON_Delete(a);
  cJSON_Delete(p);
  return rc;
}

/* ---- channel plan -------------------------------------------------------------------------- */

static const char *layer_op(const cJSON *l) {
  const cJSON *op = cJSON_GetObjectItemCaseSensitive(l, "op");
  return cJSON_IsString(op) ? op->valuestring : "";
}

static int is_op(const cJSON *l, const char *op) { return !strcmp(layer_op(l), op); }

static int has_bn(const cJSON *l) {
  const cJSON *bn = cJSON_GetObjectItemCaseSensitive(l, "bn");
  return !cJSON_IsFalse(bn);
}

/* Why layer i's channels cannot be removed (NULL: they can); *consumer gets the index of the
 * layer that reads them. */
static const char *channel_block(const cJSON *layers, int n, int i, int *consumer) {
  const cJSON *l = cJSON_GetArrayItem(layers, i);
  *consumer = -1;
  if (!(is_op(l, "conv") && has_bn(l)) && !(is_op(l, "pwconv") && has_bn(l)) && !is_op(l, "dsconv"))
    return "only conv and pwconv layers with a batch-norm and dsconv layers can lose channels";
  for (int j = i + 1; j < n; j++) { /* an add that names layer i */
    const cJSON *a = cJSON_GetArrayItem(layers, j);
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(a, "from");
    if (is_op(a, "add") && cJSON_IsNumber(from)) {
      int src = (int)from->valuedouble;
      if ((src < 0 ? j + src : src) == i) return "an add layer reads its output";
    }
  }
  for (int j = i + 1; j < n; j++) {
    const cJSON *c = cJSON_GetArrayItem(layers, j);
    if (is_op(c, "dwconv")) {
      if (!has_bn(c)) return "a following dwconv has no batch-norm";
      continue;
    }
    if (is_op(c, "maxpool") || is_op(c, "avgpool") || is_op(c, "dropout") || is_op(c, "gap") ||
        is_op(c, "flatten"))
      continue;
    if (is_op(c, "conv") || is_op(c, "pwconv") || is_op(c, "dsconv") || is_op(c, "fc")) {
      *consumer = j;
      return NULL;
    }
    return "the next layer reading its channels is not a conv, pwconv, dsconv or fc";
  }
  return "no later layer reads its channels";
}

int nas_prune_channel_plan(const cJSON *layers, double def, int *own, int *follow, double *frac,
                           const char *src, nas_err *e) {
  int n = cJSON_GetArraySize(layers);
  for (int i = 0; i < n; i++) own[i] = 0, follow[i] = -1, frac[i] = 0;
  for (int i = 0; i < n; i++) {
    const cJSON *l = cJSON_GetArrayItem(layers, i);
    const cJSON *ch = cJSON_IsObject(l) ? cJSON_GetObjectItemCaseSensitive(l, "channels") : NULL;
    if (ch && (!cJSON_IsNumber(ch) || !(ch->valuedouble >= 0 && ch->valuedouble < 1)))
      return nas_errf(e, NAS_EINVAL, "%s: layer %d (%s): field 'channels': expected a number in "
                      "[0,1)", src, i, layer_op(l));
    double f = ch ? ch->valuedouble : def;
    frac[i] = f;
    if (!(f > 0)) continue;
    int consumer;
    const char *why = channel_block(layers, n, i, &consumer);
    if (why) {
      if (ch) return nas_errf(e, NAS_EINVAL, "%s: layer %d (%s): field 'channels': %s", src, i,
                              layer_op(l), why);
      continue; /* the top-level default applies to the eligible layers only */
    }
    own[i] = 1;
    for (int j = i + 1; j <= consumer; j++) {
      const cJSON *c = cJSON_GetArrayItem(layers, j);
      if (is_op(c, "dwconv") || is_op(c, "dsconv")) follow[j] = i;
    }
  }
  return NAS_OK;
}

/* ---- masks on a graph ---------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

static int is_mask_state(const nas_node *n) {
  return n->kind == NAS_NODE_STATE && (ends_with(n->name, ".mask") || ends_with(n->name, ".cmask"));
}

void nas_prune_init(nas_graph *g) {
  for (int i = 0; i < g->n; i++) {
    nas_node *n = &g->nodes[i];
    float v;
    if (is_mask_state(n)) v = 1.0f;
    else if (n->kind == NAS_NODE_PARAM && ends_with(n->name, ".ls2")) v = -10.0f;
    else continue;
    size_t k = nas_shape_numel(&n->shape);
    for (size_t j = 0; j < k; j++) n->val[j] = v;
  }
}

int nas_prune_is_mask_op(const nas_graph *g, int id) {
  if (id < 0 || id >= g->n) return 0;
  const nas_node *n = &g->nodes[id];
  if (n->kind != NAS_NODE_OP || n->op != NAS_OP_MASK_MUL || n->n_in != 2 ||
      !is_mask_state(&g->nodes[n->in[1]]))
    return 0;
  return g->nodes[n->in[0]].kind == NAS_NODE_PARAM || nas_prune_is_mask_op(g, n->in[0]);
}

int nas_prune_source(const nas_graph *g, int id) {
  while (nas_prune_is_mask_op(g, id)) id = g->nodes[id].in[0];
  return id;
}

int nas_prune_has_masks(const nas_graph *g) {
  for (int i = 0; i < g->n; i++)
    if (nas_prune_is_mask_op(g, i)) return 1;
  return 0;
}

void nas_prune_bake(nas_graph *g) {
  for (int i = 0; i < g->n; i++) {
    if (!nas_prune_is_mask_op(g, i)) continue;
    nas_node *p = &g->nodes[nas_prune_source(g, i)];
    const nas_node *m = &g->nodes[g->nodes[i].in[1]];
    size_t n = nas_shape_numel(&p->shape), M = nas_shape_numel(&m->shape);
    size_t inner = g->nodes[i].p.kw > 0 ? (size_t)g->nodes[i].p.kw : 1;
    for (size_t k = 0; k < n; k++)
      if (m->val[(k / inner) % M] == 0.0f) p->val[k] = 0.0f;
  }
}

void nas_prune_stats_of(const nas_net *net, nas_prune_stats *s) {
  memset(s, 0, sizeof *s);
  const nas_graph *g = net->g;
  for (int i = 0; i < g->n; i++) {
    const nas_node *n = &g->nodes[i];
    if (n->kind != NAS_NODE_OP) continue;
    if (n->op == NAS_OP_CONV2D || n->op == NAS_OP_DWCONV2D || n->op == NAS_OP_DENSE) {
      if (strstr(n->name, ".var")) continue; /* the SVDO variance branch */
      int w = nas_prune_source(g, n->in[1]);
      if (g->nodes[w].kind == NAS_NODE_OP) w = g->nodes[w].in[0]; /* SVDO_W(theta, ls2) */
      const nas_node *wn = &g->nodes[w];
      size_t k = nas_shape_numel(&wn->shape), z = 0;
      for (size_t j = 0; j < k; j++) z += wn->val[j] == 0.0f;
      s->weights_zero += (long long)z, s->weights_total += (long long)k;
      if (nas_prune_is_mask_op(g, n->in[1])) s->masked_zero += (long long)z, s->masked_total += (long long)k;
    }
    if (nas_prune_is_mask_op(g, i) && ends_with(g->nodes[n->in[1]].name, ".cmask") &&
        strstr(n->name, ".gm")) {
      const nas_node *m = &g->nodes[n->in[1]];
      char own[48];
      snprintf(own, sizeof own, "%.*s.cmask", (int)(strlen(n->name) - 3), n->name);
      if (strcmp(own, m->name)) continue; /* a follower: counted at its producer */
      size_t k = nas_shape_numel(&m->shape);
      for (size_t j = 0; j < k; j++) s->channels_removed += m->val[j] == 0.0f;
      s->channels_total += (int)k;
    }
  }
}
