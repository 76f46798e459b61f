/* search_spaces/space.c: space JSON parsing, decisions, sampling, mutation, encoding,
 * materialisation to arch JSON, and canonical arch hashing. One recursive walker reads the
 * template: with no decision vector it validates and records the decisions (taking the
 * first value of each), with one it resolves every decision to build the arch. */
#include "core/hash.h"
#include "core/alloc.h"
#include "search_spaces/space.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datadir.h"
#include "core/fileio.h"
#include "core/json.h"
#include "train/net.h"

enum { DEC_CHOICE, DEC_REPEAT, DEC_OPTIONAL };

typedef struct decision {
  char *path;           /* "layers[2].out" (owned) */
  int kind;             /* DEC_CHOICE, DEC_REPEAT or DEC_OPTIONAL */
  int card;             /* number of values */
} decision;

struct nas_space {
  char name[64];        /* the space's "name" (or the source) */
  cJSON *root;          /* the template (owned) */
  decision *dec;        /* [n_dec] */
  int n_dec;            /* number of decisions */
};

#define MAX_REPEAT 64

/* Walker state. */
typedef struct walk {
  nas_space *s;         /* the space (decisions are appended in enumerate mode) */
  const int *d;         /* decision vector, NULL = enumerate (and take value 0) */
  unsigned char *active;/* optional: filled with each decision's liveness */
  int k;                /* next decision index */
  int live;             /* 0 inside a skipped optional entry */
  nas_err *e;           /* error sink */
} walk;

static int werr(walk *w, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int werr(walk *w, const char *path, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return nas_errf(w->e, NAS_EINVAL, "space %s: %s: %s", w->s->name, path, msg);
}

/* Writes a sub-path for messages (truncated when absurdly deep). */
static void subpath(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void subpath(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
}

static int is_choice(const cJSON *v) {
  return cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "choice") != NULL;
}

static int contains_choice(const cJSON *v) {
  if (is_choice(v)) return 1;
  for (const cJSON *c = v ? v->child : NULL; c; c = c->next)
    if (contains_choice(c)) return 1;
  return 0;
}

/* Takes the next decision (card values) and returns the chosen index, or -1 on error. */
static int take(walk *w, const char *path, int kind, int card) {
  if (!w->d) {
    decision *p = nas_realloc(w->s->dec, (size_t)(w->s->n_dec + 1) * sizeof *p);
    char *ps = nas_malloc(strlen(path) + 1);
    if (!p || !ps) {
      if (p) w->s->dec = p;
      free(ps);
      nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
      return -1;
    }
    strcpy(ps, path);
    w->s->dec = p;
    p[w->s->n_dec++] = (decision){.path = ps, .kind = kind, .card = card};
    if (w->active) w->active[w->k] = (unsigned char)w->live;
    w->k++;
    return 0;
  }
  int i = w->k;
  if (i >= w->s->n_dec) {
    werr(w, path, "decision vector too short");
    return -1;
  }
  if (w->d[i] < 0 || w->d[i] >= w->s->dec[i].card) {
    werr(w, path, "decision %d: value %d is out of range 0..%d", i, w->d[i], w->s->dec[i].card - 1);
    return -1;
  }
  if (w->active) w->active[i] = (unsigned char)w->live;
  w->k++;
  return w->d[i];
}

/* Resolves a field value (choices anywhere inside it) into a new cJSON item, or NULL. */
static cJSON *resolve(walk *w, const cJSON *v, const char *path) {
  if (is_choice(v)) {
    if (cJSON_GetArraySize(v) != 1)
      return werr(w, path, "a choice object may only hold \"choice\""), NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(v, "choice");
    if (!cJSON_IsArray(list)) return werr(w, path, "\"choice\" must be a list"), NULL;
    int n = cJSON_GetArraySize(list);
    if (n == 0) return werr(w, path, "choice list is empty"), NULL;
    if (!w->d) {
      int i = 0;
      for (const cJSON *c = list->child; c; c = c->next, i++)
        if (contains_choice(c)) return werr(w, path, "choice %d: nested choices are not allowed", i), NULL;
    }
    int idx = take(w, path, DEC_CHOICE, n);
    if (idx < 0) return NULL;
    cJSON *r = cJSON_Duplicate(cJSON_GetArrayItem(list, idx), 1);
    if (!r) nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
    return r;
  }
  if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
    cJSON *r = cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!r) return nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name), NULL;
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
      char sub[256];
      if (cJSON_IsArray(v)) subpath(sub, sizeof sub, "%s[%d]", path, i);
      else subpath(sub, sizeof sub, "%s.%s", path, c->string);
      cJSON *x = resolve(w, c, sub);
      if (!x) {
        cJSON_Delete(r);
        return NULL;
      }
      if (cJSON_IsArray(v)) nas_json_push(r, x); /* a failure: see walk_space */
      else nas_json_add(r, c->string, x);
    }
    return r;
  }
  cJSON *r = cJSON_Duplicate(v, 1);
  if (!r) nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
  return r;
}

static int walk_entry(walk *w, const cJSON *entry, const char *path, cJSON *out);

/* Walks a list of entries at path (e.g. "layers" or "layers[3].block") into out. */
static int walk_list(walk *w, const cJSON *list, const char *path, cJSON *out) {
  if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
    return werr(w, path, "expected a non-empty list of layers");
  int i = 0;
  for (const cJSON *c = list->child; c; c = c->next, i++) {
    char sub[256];
    subpath(sub, sizeof sub, "%s[%d]", path, i);
    if (walk_entry(w, c, sub, out)) return w->e->code;
  }
  return NAS_OK;
}

static int walk_entry(walk *w, const cJSON *entry, const char *path, cJSON *out) {
  char sub[256];
  if (!cJSON_IsObject(entry)) return werr(w, path, "expected a layer object");
  const cJSON *block = cJSON_GetObjectItemCaseSensitive(entry, "block");
  const cJSON *op = cJSON_GetObjectItemCaseSensitive(entry, "op");
  if (block && op) return werr(w, path, "a layer has either \"op\" or \"block\", not both");
  if (!block && !op) return werr(w, path, "missing \"op\" (or \"block\")");
  if (block)
    for (const cJSON *f = entry->child; f; f = f->next)
      if (strcmp(f->string, "block") && strcmp(f->string, "repeat") && strcmp(f->string, "optional"))
        return werr(w, path, "unknown field '%s' in a block (block, repeat, optional)", f->string);
  /* optional */
  int include = 1, saved_live = w->live;
  const cJSON *opt = cJSON_GetObjectItemCaseSensitive(entry, "optional");
  subpath(sub, sizeof sub, "%s.optional", path);
  if (opt && !cJSON_IsBool(opt)) return werr(w, sub, "expected true or false");
  if (cJSON_IsTrue(opt)) {
    int idx = take(w, sub, DEC_OPTIONAL, 2); /* 0 = included, 1 = skipped */
    if (idx < 0) return w->e->code;
    include = idx == 0;
    if (!include) w->live = 0; /* everything below (repeat, fields, block) is inactive */
  }
  /* repeat */
  int count = 1;
  const cJSON *rep = cJSON_GetObjectItemCaseSensitive(entry, "repeat");
  subpath(sub, sizeof sub, "%s.repeat", path);
  if (rep) {
    const cJSON *list = is_choice(rep) ? cJSON_GetObjectItemCaseSensitive(rep, "choice") : NULL;
    if (is_choice(rep) && !w->d) {
      if (cJSON_GetArraySize(rep) != 1) return werr(w, sub, "a choice object may only hold \"choice\"");
      if (!cJSON_IsArray(list)) return werr(w, sub, "\"choice\" must be a list");
      if (cJSON_GetArraySize(list) == 0) return werr(w, sub, "choice list is empty");
    }
    const cJSON *check = list ? list->child : rep;
    for (; check; check = list ? check->next : NULL) {
      double v = cJSON_IsNumber(check) ? check->valuedouble : -1;
      if (v != floor(v) || v < 1 || v > MAX_REPEAT)
        return werr(w, sub, "expected an integer 1..%d (or a choice of them)", MAX_REPEAT);
    }
    if (list) {
      int idx = take(w, sub, DEC_REPEAT, cJSON_GetArraySize(list));
      if (idx < 0) return w->e->code;
      count = (int)cJSON_GetArrayItem(list, idx)->valuedouble;
    } else {
      count = (int)rep->valuedouble;
    }
  }
  /* the body, resolved once (decisions consumed once whatever the count) */
  cJSON *body = cJSON_CreateArray();
  if (!body) return nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
  int rc = NAS_OK;
  if (block) {
    subpath(sub, sizeof sub, "%s.block", path);
    rc = walk_list(w, block, sub, body);
  } else {
    cJSON *layer = cJSON_CreateObject();
    if (!layer) rc = nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
    for (const cJSON *f = entry->child; rc == NAS_OK && f; f = f->next) {
      if (!strcmp(f->string, "repeat") || !strcmp(f->string, "optional")) continue;
      subpath(sub, sizeof sub, "%s.%s", path, f->string);
      cJSON *x = resolve(w, f, sub);
      if (!x) rc = w->e->code ? w->e->code : NAS_EINVAL;
      else nas_json_add(layer, f->string, x);
    }
    if (layer) nas_json_push(body, layer);
  }
  w->live = saved_live;
  if (rc == NAS_OK && include) {
    for (int r = 0; r < count && rc == NAS_OK; r++)
      for (const cJSON *l = body->child; l; l = l->next) {
        cJSON *copy = cJSON_Duplicate(l, 1);
        if (!copy) {
          rc = nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
          break;
        }
        if (r > 0 && cJSON_GetObjectItemCaseSensitive(copy, "stride")) {
          cJSON *one = cJSON_CreateNumber(1);
          if (!one || !cJSON_ReplaceItemInObjectCaseSensitive(copy, "stride", one)) {
            cJSON_Delete(one); /* not taken over by copy */
            cJSON_Delete(copy);
            rc = nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name);
            break;
          }
        }
        nas_json_push(out, copy);
      }
  }
  cJSON_Delete(body);
  return rc;
}

/* Walks the whole template; returns the arch object (caller deletes) or NULL. A cJSON
 * allocation that failed on the way (an item missing from the arch) is NAS_ENOMEM. */
static cJSON *walk_space(walk *w) {
  const cJSON *root = w->s->root;
  unsigned long jm = nas_json_mark();
  cJSON *arch = cJSON_CreateObject(), *layers = cJSON_CreateArray();
  if (!arch || !layers) {
    cJSON_Delete(arch), cJSON_Delete(layers);
    return nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name), NULL;
  }
  static const char *const KEYS[] = {"input", "classes"};
  for (int i = 0; i < 2; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, KEYS[i]);
    if (!v) {
      werr(w, KEYS[i], "required");
      cJSON_Delete(arch), cJSON_Delete(layers);
      return NULL;
    }
    cJSON *x = resolve(w, v, KEYS[i]);
    if (!x) {
      cJSON_Delete(arch), cJSON_Delete(layers);
      return NULL;
    }
    nas_json_add(arch, KEYS[i], x);
  }
  if (nas_json_add(arch, "layers", layers)) { /* layers is gone */
    cJSON_Delete(arch);
    return nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name), NULL;
  }
  if (walk_list(w, cJSON_GetObjectItemCaseSensitive(root, "layers"), "layers", layers)) {
    cJSON_Delete(arch);
    return NULL;
  }
  if (nas_json_failed(jm)) {
    cJSON_Delete(arch);
    return nas_errf(w->e, NAS_ENOMEM, "space %s: out of memory", w->s->name), NULL;
  }
  if (w->d && w->k != w->s->n_dec) {
    werr(w, "layers", "decision vector length mismatch");
    cJSON_Delete(arch);
    return NULL;
  }
  return arch;
}

/* ---- parse / load ------------------------------------------------------------------------ */

int nas_space_parse(const char *json, const char *source, nas_space **out, nas_err *e) {
  *out = NULL;
  const char *src = source ? source : "(text)";
  nas_space *s = nas_calloc(1, sizeof *s);
  if (!s) return nas_errf(e, NAS_ENOMEM, "space %s: out of memory", src);
  snprintf(s->name, sizeof s->name, "%s", src);
  int jr = nas_json_parse(json, &s->root, NULL);
  if (jr) {
    nas_space_free(s);
    return jr == NAS_ENOMEM ? nas_errf(e, NAS_ENOMEM, "space %s: out of memory", src)
                            : nas_errf(e, NAS_EINVAL, "space %s: not valid JSON", src);
  }
  if (!cJSON_IsObject(s->root)) {
    nas_space_free(s);
    return nas_errf(e, NAS_EINVAL, "space %s: expected a JSON object", src);
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(s->root, "name");
  if (name) {
    if (!cJSON_IsString(name) || !name->valuestring[0]) {
      nas_space_free(s);
      return nas_errf(e, NAS_EINVAL, "space %s: name: expected a non-empty string", src);
    }
    snprintf(s->name, sizeof s->name, "%s", name->valuestring);
  }
  static const char *const TOP[] = {"name", "description", "input", "classes", "layers", NULL};
  for (const cJSON *f = s->root->child; f; f = f->next) {
    int ok = 0;
    for (int i = 0; TOP[i]; i++) ok |= !strcmp(f->string, TOP[i]);
    if (!ok) {
      nas_errf(e, NAS_EINVAL, "space %s: unknown field '%s' (name, description, input, classes, layers)",
               s->name, f->string);
      nas_space_free(s);
      return NAS_EINVAL;
    }
  }
  walk w = {.s = s, .live = 1, .e = e};
  cJSON *arch = walk_space(&w);
  if (!arch) {
    nas_space_free(s);
    return e->code ? e->code : NAS_EINVAL;
  }
  cJSON_Delete(arch);
  *out = s;
  return NAS_OK;
}

int nas_space_load_file(const char *path, nas_space **out, nas_err *e) {
  char *text = NULL;
  *out = NULL;
  if (nas_read_file(path, &text, NULL, e)) return e->code;
  int rc = nas_space_parse(text, path, out, e);
  free(text);
  return rc;
}

static const char *const BUILTINS[] = {"kws-dscnn", "kws-rnn", "vision-mbnet", "vision-mbnet-32",
                                       "vision-mbnet-96", "vision-wino"};
#define N_BUILTINS (int)(sizeof BUILTINS / sizeof BUILTINS[0])

int nas_space_builtin_count(void) { return N_BUILTINS; }
const char *nas_space_builtin_name(int i) { return i >= 0 && i < N_BUILTINS ? BUILTINS[i] : NULL; }

int nas_space_load_builtin(const char *name, nas_space **out, nas_err *e) {
  *out = NULL;
  for (int i = 0; i < N_BUILTINS; i++)
    if (name && !strcmp(name, BUILTINS[i])) {
      char rel[64], path[4096];
      snprintf(rel, sizeof rel, "search_spaces/%s.json", BUILTINS[i]);
      int rc = nas_data_path(rel, path, sizeof path, e);
      return rc ? rc : nas_space_load_file(path, out, e);
    }
  char list[256];
  size_t len = 0;
  list[0] = '\0';
  for (int i = 0; i < N_BUILTINS; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", BUILTINS[i]);
  return nas_errf(e, NAS_EINVAL, "unknown search space '%s' (built-in: %s; or a path to a .json file)",
                  name ? name : "(null)", list);
}

int nas_space_load(const char *spec, nas_space **out, nas_err *e) {
  size_t n = spec ? strlen(spec) : 0;
  if (spec && (strchr(spec, '/') || (n > 5 && !strcmp(spec + n - 5, ".json"))))
    return nas_space_load_file(spec, out, e);
  return nas_space_load_builtin(spec, out, e);
}

void nas_space_free(nas_space *s) {
  if (!s) return;
  for (int i = 0; i < s->n_dec; i++) free(s->dec[i].path);
  free(s->dec);
  cJSON_Delete(s->root);
  free(s);
}

/* ---- decisions --------------------------------------------------------------------------- */

const char *nas_space_name(const nas_space *s) { return s->name; }
int nas_space_n_decisions(const nas_space *s) { return s->n_dec; }
int nas_space_card(const nas_space *s, int i) { return i >= 0 && i < s->n_dec ? s->dec[i].card : 0; }
const char *nas_space_decision_path(const nas_space *s, int i) {
  return i >= 0 && i < s->n_dec ? s->dec[i].path : NULL;
}

double nas_space_size(const nas_space *s) {
  double n = 1;
  for (int i = 0; i < s->n_dec; i++) n *= s->dec[i].card;
  return n;
}

void nas_space_sample(const nas_space *s, nas_rng *r, int *d) {
  for (int i = 0; i < s->n_dec; i++) d[i] = (int)nas_rng_below(r, (uint32_t)s->dec[i].card);
}

int nas_space_active(const nas_space *s, const int *d, unsigned char *active, nas_err *e) {
  walk w = {.s = (nas_space *)s, .d = d, .active = active, .live = 1, .e = e};
  cJSON *arch = walk_space(&w);
  if (!arch) return e->code ? e->code : NAS_EINVAL;
  cJSON_Delete(arch);
  return NAS_OK;
}

int nas_space_mutate(const nas_space *s, nas_rng *r, const int *parent, int *child,
                     int *changed, nas_err *e) {
  int n = s->n_dec;
  if (changed) *changed = -1;
  memcpy(child, parent, (size_t)n * sizeof *child);
  if (n == 0) return NAS_OK;
  unsigned char *act = nas_malloc((size_t)n);
  int *cand = nas_malloc((size_t)n * sizeof *cand);
  if (!act || !cand) {
    free(act), free(cand);
    return nas_errf(e, NAS_ENOMEM, "space %s: out of memory mutating", s->name);
  }
  nas_err ae = {0};
  int arc = nas_space_active(s, parent, act, &ae);
  if (arc == NAS_ENOMEM) {
    free(act), free(cand);
    return nas_errf(e, NAS_ENOMEM, "%s", ae.msg);
  }
  if (arc) memset(act, 1, (size_t)n); /* a parent the space does not accept: all active */
  int nc = 0;
  for (int i = 0; i < n; i++)
    if (act[i] && s->dec[i].card >= 2) cand[nc++] = i;
  if (nc == 0)
    for (int i = 0; i < n; i++)
      if (s->dec[i].card >= 2) cand[nc++] = i;
  if (nc > 0) {
    int pick = cand[nas_rng_below(r, (uint32_t)nc)];
    int v = (int)nas_rng_below(r, (uint32_t)(s->dec[pick].card - 1));
    child[pick] = v >= parent[pick] ? v + 1 : v; /* uniform over the other values */
    if (changed) *changed = pick;
  }
  free(act);
  free(cand);
  return NAS_OK;
}

void nas_space_encode(const nas_space *s, const int *d, double *x) {
  for (int i = 0; i < s->n_dec; i++)
    x[i] = s->dec[i].card > 1 ? (double)d[i] / (s->dec[i].card - 1) : 0.0;
}

void nas_space_decode(const nas_space *s, const double *x, int *d) {
  for (int i = 0; i < s->n_dec; i++) {
    int n = s->dec[i].card;
    double v = x[i] != x[i] ? 0 : x[i]; /* NaN -> 0 */
    long k = lround(v * (n - 1));
    d[i] = k < 0 ? 0 : k > n - 1 ? n - 1 : (int)k;
  }
}

int nas_space_materialize(const nas_space *s, const int *d, char **arch_json, nas_err *e) {
  *arch_json = NULL;
  walk w = {.s = (nas_space *)s, .d = d, .live = 1, .e = e};
  cJSON *arch = walk_space(&w);
  if (!arch) return e->code ? e->code : NAS_EINVAL;
  *arch_json = cJSON_PrintUnformatted(arch);
  cJSON_Delete(arch);
  if (!*arch_json) return nas_errf(e, NAS_ENOMEM, "space %s: out of memory", s->name);
  return NAS_OK;
}

int nas_space_check(const nas_space *s, nas_err *e) {
  int *d = nas_calloc((size_t)s->n_dec + 1, sizeof *d);
  if (!d) return nas_errf(e, NAS_ENOMEM, "space %s: out of memory", s->name);
  int rc = NAS_OK;
  for (int pass = 0; pass < 2 && rc == NAS_OK; pass++) {
    for (int i = 0; i < s->n_dec; i++) d[i] = pass ? s->dec[i].card - 1 : 0;
    char *arch = NULL;
    nas_net *n = NULL;
    rc = nas_space_materialize(s, d, &arch, e);
    if (rc == NAS_OK) {
      char src[96];
      snprintf(src, sizeof src, "space %s (%s choices)", s->name, pass ? "last" : "first");
      rc = nas_net_build(arch, src, 1, 1, &n, e);
    }
    nas_net_free(n);
    free(arch);
  }
  free(d);
  return rc;
}

/* ---- canonical hashing ------------------------------------------------------------------- */

typedef struct sbuf {
  char *p;   /* text (owned) */
  size_t n;  /* length */
  size_t cap;/* capacity */
  int oom;   /* an allocation failed */
} sbuf;

static void put(sbuf *b, const char *t, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->n + n + 1 > cap) cap *= 2;
    char *p = nas_realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, t, n);
  b->n += n;
  b->p[b->n] = '\0';
}
static void puts_(sbuf *b, const char *t) { put(b, t, strlen(t)); }

static void put_string(sbuf *b, const char *s) {
  puts_(b, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char esc[8];
    if (*c == '"' || *c == '\\') snprintf(esc, sizeof esc, "\\%c", *c);
    else if (*c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *c);
    else esc[0] = (char)*c, esc[1] = '\0';
    puts_(b, esc);
  }
  puts_(b, "\"");
}

static int cmp_items(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void canon(sbuf *b, const cJSON *v) {
  char num[40];
  if (cJSON_IsNumber(v)) {
    double x = v->valuedouble;
    if (x == floor(x) && fabs(x) < 9007199254740992.0) snprintf(num, sizeof num, "%.0f", x);
    else snprintf(num, sizeof num, "%.17g", x);
    puts_(b, num);
  } else if (cJSON_IsString(v)) {
    put_string(b, v->valuestring);
  } else if (cJSON_IsTrue(v)) {
    puts_(b, "true");
  } else if (cJSON_IsFalse(v)) {
    puts_(b, "false");
  } else if (cJSON_IsArray(v)) {
    puts_(b, "[");
    for (const cJSON *c = v->child; c; c = c->next) {
      canon(b, c);
      if (c->next) puts_(b, ",");
    }
    puts_(b, "]");
  } else if (cJSON_IsObject(v)) {
    int n = cJSON_GetArraySize(v), i = 0;
    const cJSON **items = nas_malloc((size_t)(n ? n : 1) * sizeof *items);
    if (!items) {
      b->oom = 1;
      return;
    }
    for (const cJSON *c = v->child; c; c = c->next) items[i++] = c;
    qsort(items, (size_t)n, sizeof *items, cmp_items);
    puts_(b, "{");
    for (i = 0; i < n; i++) {
      put_string(b, items[i]->string);
      puts_(b, ":");
      canon(b, items[i]);
      if (i + 1 < n) puts_(b, ",");
    }
    puts_(b, "}");
    free(items);
  } else {
    puts_(b, "null");
  }
}

int nas_arch_hash(const char *arch_json, uint64_t *h, nas_err *e) {
  *h = 0;
  cJSON *root;
  int jr = nas_json_parse(arch_json, &root, NULL);
  if (jr == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "arch hash: out of memory");
  if (jr) return nas_errf(e, NAS_EINVAL, "arch hash: not valid JSON");
  sbuf b = {0};
  canon(&b, root);
  cJSON_Delete(root);
  if (b.oom) {
    free(b.p);
    return nas_errf(e, NAS_ENOMEM, "arch hash: out of memory");
  }
  uint64_t x = nas_fnv1a(NAS_FNV_OFFSET, b.p, b.n);
  free(b.p);
  *h = x;
  return NAS_OK;
}

int nas_arch_hash_hex(const char *arch_json, char hex[17], nas_err *e) {
  uint64_t h;
  hex[0] = '\0';
  if (nas_arch_hash(arch_json, &h, e)) return e->code;
  snprintf(hex, 17, "%016llx", (unsigned long long)h);
  return NAS_OK;
}
