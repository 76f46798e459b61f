/* search_spaces/supernet.c: the supernet description of a search space (see supernet.h):
 * a second walk over the space template, in space.c's decision order, that unrolls repeats
 * into slots, and the resolution of slots for one decision vector. */
#include "search_spaces/supernet.h"
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datadir.h"
#include "core/fileio.h"
#include "core/json.h"
#include "train/graph.h"
#include "train/net.h"
#include "train/ops.h"

static const char *const OPS[] = {"conv",    "dwconv",  "pwconv", "dsconv",
                                  "mbconv",  "maxpool", "avgpool", "gap",
                                  "flatten", "fc",      "dropout"};
_Static_assert(sizeof OPS / sizeof OPS[0] == NAS_SN_OP_COUNT, "one name per enum nas_sn_op");

const char *nas_sn_op_name(int op) { return op >= 0 && op < NAS_SN_OP_COUNT ? OPS[op] : "?"; }

static int op_index(const char *name) {
  for (int i = 0; i < NAS_SN_OP_COUNT; i++)
    if (!strcmp(OPS[i], name)) return i;
  return -1;
}

void nas_supernet_free(nas_supernet *sn) {
  if (!sn) return;
  nas_space_free(sn->space);
  cJSON_Delete(sn->root);
  free(sn->dec);
  free(sn->slots);
  free(sn);
}

/* ---- the walk ---------------------------------------------------------------------------- */

typedef struct walker {
  nas_supernet *sn;
  int cap_dec, cap_slots;
  nas_err *e;
} walker;

static int is_choice(const cJSON *v) {
  return cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "choice") != NULL;
}

static int add_dec(walker *w, const char *path, int kind, const char *field, const cJSON *vals,
                   int card) {
  nas_supernet *sn = w->sn;
  if (sn->n_dec == w->cap_dec) {
    int cap = w->cap_dec ? 2 * w->cap_dec : 16;
    nas_sn_dec *p = nas_realloc(sn->dec, (size_t)cap * sizeof *p);
    if (!p) return nas_errf(w->e, NAS_ENOMEM, "supernet: out of memory"), -1;
    sn->dec = p, w->cap_dec = cap;
  }
  nas_sn_dec *d = &sn->dec[sn->n_dec];
  memset(d, 0, sizeof *d);
  snprintf(d->path, sizeof d->path, "%s", path);
  snprintf(d->field, sizeof d->field, "%s", field);
  d->kind = kind, d->card = card, d->vals = vals;
  return sn->n_dec++;
}

static nas_sn_slot *add_slot(walker *w) {
  nas_supernet *sn = w->sn;
  if (sn->n_slots == w->cap_slots) {
    int cap = w->cap_slots ? 2 * w->cap_slots : 16;
    nas_sn_slot *p = nas_realloc(sn->slots, (size_t)cap * sizeof *p);
    if (!p) return nas_errf(w->e, NAS_ENOMEM, "supernet: out of memory"), NULL;
    sn->slots = p, w->cap_slots = cap;
  }
  nas_sn_slot *s = &sn->slots[sn->n_slots++];
  memset(s, 0, sizeof *s);
  return s;
}

static const char *const CHOICE_FIELDS[] = {"op", "out", "k", "expand", "rate", "algo", "flex", NULL};

static int walk_entry(walker *w, const cJSON *entry, const char *path, const nas_sn_cond *cond,
                      int n_cond);

static int walk_list(walker *w, const cJSON *list, const char *path, const nas_sn_cond *cond,
                     int n_cond) {
  int i = 0;
  for (const cJSON *c = list ? list->child : NULL; c; c = c->next, i++) {
    char sub[128];
    snprintf(sub, sizeof sub, "%.100s[%d]", path, i);
    if (walk_entry(w, c, sub, cond, n_cond) != NAS_OK) return w->e->code;
  }
  return NAS_OK;
}

static int walk_entry(walker *w, const cJSON *entry, const char *path, const nas_sn_cond *cond0,
                      int n_cond0) {
  nas_sn_cond cond[NAS_SN_MAX_COND];
  int n_cond = n_cond0;
  if (n_cond0) memcpy(cond, cond0, sizeof(nas_sn_cond) * (size_t)n_cond0);
  char sub[160];
  const char *name = nas_space_name(w->sn->space);
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(entry, "optional"))) {
    snprintf(sub, sizeof sub, "%.100s.optional", path);
    int k = add_dec(w, sub, NAS_SN_OPTIONAL, "optional", NULL, 2);
    if (k < 0) return w->e->code;
    if (n_cond == NAS_SN_MAX_COND)
      return nas_errf(w->e, NAS_EINVAL, "supernet %s: %s: optional/repeat nested too deeply", name, path);
    cond[n_cond++] = (nas_sn_cond){k, 0};
  }
  const cJSON *rep = cJSON_GetObjectItemCaseSensitive(entry, "repeat");
  int rep_dec = -1, max_rep = 1, min_rep = 1;
  if (is_choice(rep)) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(rep, "choice");
    snprintf(sub, sizeof sub, "%.100s.repeat", path);
    rep_dec = add_dec(w, sub, NAS_SN_REPEAT, "repeat", list, cJSON_GetArraySize(list));
    if (rep_dec < 0) return w->e->code;
    min_rep = 1 << 30, max_rep = 0;
    for (const cJSON *c = list->child; c; c = c->next) {
      int v = (int)c->valuedouble;
      if (v > max_rep) max_rep = v;
      if (v < min_rep) min_rep = v;
    }
  } else if (cJSON_IsNumber(rep)) {
    max_rep = min_rep = (int)rep->valuedouble;
  }
  int first = w->sn->n_slots;
  const cJSON *block = cJSON_GetObjectItemCaseSensitive(entry, "block");
  if (block) {
    snprintf(sub, sizeof sub, "%.100s.block", path);
    if (walk_list(w, block, sub, cond, n_cond) != NAS_OK) return w->e->code;
  } else {
    nas_sn_slot *s = add_slot(w);
    if (!s) return w->e->code;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->layer = entry;
    s->n_cond = n_cond;
    memcpy(s->cond, cond, sizeof(nas_sn_cond) * (size_t)n_cond);
    int slot_id = w->sn->n_slots - 1;
    for (const cJSON *f = entry->child; f; f = f->next) {
      if (!strcmp(f->string, "repeat") || !strcmp(f->string, "optional")) continue;
      if (!is_choice(f)) continue;
      snprintf(sub, sizeof sub, "%.100s.%.20s", path, f->string);
      int ok = 0;
      for (int i = 0; CHOICE_FIELDS[i]; i++) ok |= !strcmp(f->string, CHOICE_FIELDS[i]);
      if (!ok)
        return nas_errf(w->e, NAS_EINVAL,
                        "supernet %s: %s: DNAS does not relax choices on field '%s' (only op, "
                        "out, k, expand, rate, algo, flex, repeat, optional)", name, sub, f->string);
      const cJSON *list = cJSON_GetObjectItemCaseSensitive(f, "choice");
      int k = add_dec(w, sub, NAS_SN_CHOICE, f->string, list, cJSON_GetArraySize(list));
      if (k < 0) return w->e->code;
      s = &w->sn->slots[slot_id]; /* add_dec does not move slots, but stay explicit */
      if (s->n_fields == NAS_SN_MAX_FIELDS)
        return nas_errf(w->e, NAS_EINVAL, "supernet %s: %s: too many choices", name, path);
      snprintf(s->fields[s->n_fields].name, sizeof s->fields[0].name, "%s", f->string);
      s->fields[s->n_fields++].dec = k;
    }
  }
  int last = w->sn->n_slots;
  for (int r = 1; r < max_rep; r++)
    for (int i = first; i < last; i++) {
      nas_sn_slot *s = add_slot(w);
      if (!s) return w->e->code;
      *s = w->sn->slots[i];
      s->copy = r, s->stride1 = 1;
      if (rep_dec >= 0 && r >= min_rep) {
        if (s->n_cond == NAS_SN_MAX_COND)
          return nas_errf(w->e, NAS_EINVAL, "supernet %s: %s: repeats nested too deeply", name, path);
        s->cond[s->n_cond++] = (nas_sn_cond){rep_dec, r};
      }
    }
  return NAS_OK;
}

static int read_spec(const char *spec, char **text, nas_err *e) {
  char path[4096], rel[4096];
  size_t n = strlen(spec);
  if (strchr(spec, '/') || (n > 5 && !strcmp(spec + n - 5, ".json")))
    snprintf(path, sizeof path, "%s", spec);
  else {
    snprintf(rel, sizeof rel, "search_spaces/%s.json", spec);
    int rc = nas_data_path(rel, path, sizeof path, e);
    if (rc) return rc;
  }
  long len;
  return nas_read_file(path, text, &len, e);
}

int nas_supernet_load(const char *spec, nas_supernet **out, nas_err *e) {
  *out = NULL;
  nas_supernet *sn = nas_calloc(1, sizeof *sn);
  if (!sn) return nas_errf(e, NAS_ENOMEM, "supernet: out of memory");
  char *text = NULL;
  int rc = nas_space_load(spec, &sn->space, e);
  if (rc == NAS_OK) rc = read_spec(spec, &text, e);
  int jr = rc == NAS_OK ? nas_json_parse(text, &sn->root, NULL) : NAS_OK;
  if (jr == NAS_ENOMEM) rc = nas_errf(e, NAS_ENOMEM, "supernet %s: out of memory", spec);
  else if (jr) rc = nas_errf(e, NAS_EFORMAT, "supernet %s: not valid JSON", spec);
  free(text);
  const char *name = rc == NAS_OK ? nas_space_name(sn->space) : spec;
  if (rc == NAS_OK) {
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(sn->root, "input");
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(sn->root, "classes");
    int ok = cJSON_IsArray(in) && cJSON_GetArraySize(in) == 3 && cJSON_IsNumber(cl) &&
             cl->valuedouble >= 2 && cl->valuedouble <= 100000; /* net.c's ranges */
    for (int i = 0; ok && i < 3; i++) {
      const cJSON *v = cJSON_GetArrayItem(in, i);
      ok = cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 4096;
    }
    if (!ok)
      rc = nas_errf(e, NAS_EINVAL, "supernet %s: input must be a fixed [H,W,C] (1..4096) and "
                    "classes a fixed number (2..100000, no choices)", name);
    else {
      sn->in_h = cJSON_GetArrayItem(in, 0)->valueint, sn->in_w = cJSON_GetArrayItem(in, 1)->valueint;
      sn->in_c = cJSON_GetArrayItem(in, 2)->valueint, sn->classes = cl->valueint;
    }
  }
  if (rc == NAS_OK) {
    walker w = {.sn = sn, .e = e};
    rc = walk_list(&w, cJSON_GetObjectItemCaseSensitive(sn->root, "layers"), "layers", NULL, 0);
  }
  /* the decisions must be nas_space's, one for one */
  if (rc == NAS_OK && sn->n_dec != nas_space_n_decisions(sn->space))
    rc = nas_errf(e, NAS_EINVAL, "supernet %s: %d decisions, the space has %d", name, sn->n_dec,
                  nas_space_n_decisions(sn->space));
  for (int i = 0; rc == NAS_OK && i < sn->n_dec; i++)
    if (strcmp(sn->dec[i].path, nas_space_decision_path(sn->space, i)) ||
        sn->dec[i].card != nas_space_card(sn->space, i))
      rc = nas_errf(e, NAS_EINVAL, "supernet %s: decision %d is %s (%d values), the space has %s "
                    "(%d values)", name, i, sn->dec[i].path, sn->dec[i].card,
                    nas_space_decision_path(sn->space, i), nas_space_card(sn->space, i));
  if (rc == NAS_OK && sn->n_slots == 0) rc = nas_errf(e, NAS_EINVAL, "supernet %s: no layers", name);
  if (rc != NAS_OK) {
    nas_supernet_free(sn);
    return rc;
  }
  *out = sn;
  return NAS_OK;
}

/* ---- resolution -------------------------------------------------------------------------- */

int nas_sn_field_dec(const nas_supernet *sn, int s, const char *name) {
  const nas_sn_slot *sl = &sn->slots[s];
  for (int i = 0; i < sl->n_fields; i++)
    if (!strcmp(sl->fields[i].name, name)) return sl->fields[i].dec;
  return -1;
}

int nas_sn_present(const nas_supernet *sn, int s, const int *d) {
  const nas_sn_slot *sl = &sn->slots[s];
  for (int i = 0; i < sl->n_cond; i++) {
    const nas_sn_dec *dc = &sn->dec[sl->cond[i].dec];
    int v = d[sl->cond[i].dec];
    if (dc->kind == NAS_SN_OPTIONAL) {
      if (v != 0) return 0;
    } else if ((int)cJSON_GetArrayItem(dc->vals, v)->valuedouble <= sl->cond[i].copy) {
      return 0;
    }
  }
  return 1;
}

static const cJSON *field(const nas_supernet *sn, int s, const char *name, const int *d) {
  int k = nas_sn_field_dec(sn, s, name);
  if (k >= 0) return cJSON_GetArrayItem(sn->dec[k].vals, d[k]);
  return cJSON_GetObjectItemCaseSensitive(sn->slots[s].layer, name);
}

/* A JSON number that converts to int (the conversion of anything else is undefined). */
static int is_int(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX;
}
static int get_int(const cJSON *v, int def, int *out) {
  if (!v) return *out = def, 0;
  if (!is_int(v)) return -1;
  *out = (int)v->valuedouble;
  return 0;
}
static int get_pair(const cJSON *v, int def, int out[2]) {
  if (!v) return out[0] = out[1] = def, 0;
  if (is_int(v)) return out[0] = out[1] = (int)v->valuedouble, 0;
  if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && is_int(v->child) && is_int(v->child->next))
    return out[0] = (int)v->child->valuedouble, out[1] = (int)v->child->next->valuedouble, 0;
  return -1;
}
static int get_bool(const cJSON *v, int def, int *out) {
  if (!v) return *out = def, 0;
  if (!cJSON_IsBool(v)) return -1;
  *out = cJSON_IsTrue(v);
  return 0;
}
static int get_act(const cJSON *v, int def, int *out) {
  if (!v) return *out = def, 0;
  if (!cJSON_IsString(v)) return -1;
  if (!strcmp(v->valuestring, "none")) *out = NAS_ACT_NONE;
  else if (!strcmp(v->valuestring, "relu")) *out = NAS_ACT_RELU;
  else if (!strcmp(v->valuestring, "relu6")) *out = NAS_ACT_RELU6;
  else return -1;
  return 0;
}

static int resolve_slot(const nas_supernet *sn, int s, const int *d, nas_sn_layer *L, nas_err *e) {
  const char *path = sn->slots[s].path, *name = nas_space_name(sn->space);
  const cJSON *opj = field(sn, s, "op", d);
  L->op = cJSON_IsString(opj) ? op_index(opj->valuestring) : -1;
  if (L->op < 0)
    return nas_errf(e, NAS_EINVAL, "supernet %s: %s: op '%s' is not supported by DNAS (conv, "
                    "dwconv, pwconv, dsconv, mbconv, maxpool, avgpool, gap, flatten, fc, dropout)",
                    name, path, cJSON_IsString(opj) ? opj->valuestring : "?");
  int pool = L->op == NAS_SN_MAXPOOL || L->op == NAS_SN_AVGPOOL;
  int k[2], st[2], bad = 0, act_def = L->op == NAS_SN_MBCONV ? NAS_ACT_RELU6
                                      : L->op == NAS_SN_FC ? NAS_ACT_NONE : NAS_ACT_RELU;
  bad |= get_pair(field(sn, s, "k", d), pool ? 2 : L->op == NAS_SN_PWCONV ? 1 : 3, k);
  const cJSON *sj = field(sn, s, "stride", d);
  bad |= get_pair(sj, pool ? 0 : 1, st);
  if (pool && !sj) st[0] = k[0], st[1] = k[1];
  if (L->op == NAS_SN_PWCONV) k[0] = k[1] = st[0] = st[1] = 1;
  if (sn->slots[s].stride1 && sj) st[0] = st[1] = 1;
  const cJSON *pj = field(sn, s, "padding", d);
  L->same = !pool;
  if (pj) {
    if (!cJSON_IsString(pj)) bad = 1;
    else L->same = !strcmp(pj->valuestring, "same");
  }
  bad |= get_act(field(sn, s, "act", d), act_def, &L->act);
  bad |= get_bool(field(sn, s, "bn", d), L->op != NAS_SN_FC, &L->bn);
  bad |= get_bool(field(sn, s, "bias", d), L->op == NAS_SN_FC || !L->bn, &L->bias);
  bad |= get_int(field(sn, s, "expand", d), L->op == NAS_SN_MBCONV ? 6 : 1, &L->expand);
  bad |= get_int(field(sn, s, "out", d), L->in_c, &L->out);
  const cJSON *rj = field(sn, s, "rate", d);
  L->rate = cJSON_IsNumber(rj) ? rj->valuedouble : 0.5;
  const cJSON *aj = field(sn, s, "algo", d);
  L->algo = NAS_SN_IM2ROW;
  if (aj && !cJSON_IsString(aj)) bad = 1;
  else if (aj && !strcmp(aj->valuestring, "wino2")) L->algo = NAS_SN_WINO2;
  else if (aj && !strcmp(aj->valuestring, "wino4")) L->algo = NAS_SN_WINO4;
  else if (aj && strcmp(aj->valuestring, "im2row")) bad = 1;
  bad |= get_bool(field(sn, s, "flex", d), 0, &L->flex);
  if (bad) return nas_errf(e, NAS_EINVAL, "supernet %s: %s: a field has the wrong type", name, path);
  if (L->algo != NAS_SN_IM2ROW && (L->op != NAS_SN_CONV || k[0] != 3 || k[1] != 3 || st[0] != 1 || st[1] != 1))
    return nas_errf(e, NAS_EINVAL, "supernet %s: %s: algo %s needs a 3x3 conv with stride 1", name,
                    path, aj->valuestring);
  if (L->flex && L->algo == NAS_SN_IM2ROW)
    return nas_errf(e, NAS_EINVAL, "supernet %s: %s: flex needs algo wino2 or wino4", name, path);
  L->kh = k[0], L->kw = k[1], L->sh = st[0], L->sw = st[1];
  L->out_h = L->in_h, L->out_w = L->in_w, L->out_c = L->in_c, L->out_flat = L->in_flat;
  L->residual = 0;
  switch (L->op) {
    case NAS_SN_CONV: case NAS_SN_DWCONV: case NAS_SN_PWCONV: case NAS_SN_DSCONV:
    case NAS_SN_MBCONV: case NAS_SN_MAXPOOL: case NAS_SN_AVGPOOL: {
      if (L->in_flat) return nas_errf(e, NAS_EINVAL, "supernet %s: %s: needs a spatial input", name, path);
      int pt;
      L->out_h = nas_conv_out_size(L->in_h, L->kh, L->sh, L->same, &pt);
      L->out_w = nas_conv_out_size(L->in_w, L->kw, L->sw, L->same, &pt);
      if (L->out_h < 1 || L->out_w < 1)
        return nas_errf(e, NAS_EINVAL, "supernet %s: %s: window does not fit", name, path);
      if (L->op == NAS_SN_CONV || L->op == NAS_SN_PWCONV || L->op == NAS_SN_DSCONV ||
          L->op == NAS_SN_MBCONV)
        L->out_c = L->out;
      if (L->op == NAS_SN_MBCONV) {
        int can = L->sh == 1 && L->sw == 1 && L->out == L->in_c;
        if (get_bool(cJSON_GetObjectItemCaseSensitive(sn->slots[s].layer, "residual"), can,
                     &L->residual) || (L->residual && !can))
          L->residual = can;
      }
      break;
    }
    case NAS_SN_GAP: L->out_h = L->out_w = 1, L->out_flat = 1; break;
    case NAS_SN_FLATTEN:
      L->out_c = L->in_h * L->in_w * L->in_c, L->out_h = L->out_w = 1, L->out_flat = 1;
      break;
    case NAS_SN_FC:
      L->out_c = L->out, L->out_h = L->out_w = 1, L->out_flat = 1;
      break;
    default: break;
  }
  L->hidden = L->op == NAS_SN_MBCONV ? L->in_c * L->expand : L->out_c;
  return NAS_OK;
}

int nas_sn_resolve(const nas_supernet *sn, const int *d, nas_sn_layer *L, nas_err *e) {
  int h = sn->in_h, w = sn->in_w, c = sn->in_c, flat = 0;
  for (int s = 0; s < sn->n_slots; s++) {
    memset(&L[s], 0, sizeof L[s]);
    L[s].in_h = h, L[s].in_w = w, L[s].in_c = c, L[s].in_flat = flat;
    int rc = resolve_slot(sn, s, d, &L[s], e);
    if (rc != NAS_OK) return rc;
    L[s].present = nas_sn_present(sn, s, d);
    if (L[s].present) h = L[s].out_h, w = L[s].out_w, c = L[s].out_c, flat = L[s].out_flat;
  }
  return NAS_OK;
}
