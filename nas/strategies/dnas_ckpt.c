/* nas/strategies/dnas_ckpt.c: supernet checkpoints of a DNAS run (dnas_impl.h), written after every
 * supernet epoch so that `nas resume` continues a sweep point exactly where an uninterrupted
 * run would be. One file per point, in the train/checkpoint format (magic, version, CRC-32):
 * its tensors are the supernet's weights and BN running statistics, its meta JSON holds
 *   {"format":"dnas-supernet","version":2,"n_p":N,"epoch":E,"astep":A,"samples":S,
 *    "seconds":T,"alpha":B64,"m":B64,"v":B64,
 *    "opt":{"kind":K,"step":n,"m":{"<param>":B64,...},"v":{...}}}
 * where alpha/m/v (the architecture logits and their Adam moments) are base64 of N
 * little-endian IEEE-754 doubles and the optimiser buffers (SGD momentum; Adam's second
 * moment when the optimiser is Adam) base64 of little-endian floats, one entry per parameter
 * by name: bit-exact, unlike decimal JSON numbers. The RNG streams (Gumbel noise, shuffling,
 * dropout), the temperature and the learning-rate schedule are functions of (run seed, point,
 * epoch) and need no state. Everything is decoded and checked before anything is applied, so
 * a refused file leaves the supernet, the optimiser and the state untouched. Never prints. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nas/strategies/dnas_impl.h"
#include "core/alloc.h"
#include "train/checkpoint.h"

#define DNAS_CKPT_VERSION 2

void dnas_ckpt_path(const dnas_ctx *c, int k, char *buf, size_t n) {
  if (k < 0) snprintf(buf, n, "%s.dnas-r%lld-warmup.ckpt", c->db, (long long)c->run_id);
  else snprintf(buf, n, "%s.dnas-r%lld-p%d.ckpt", c->db, (long long)c->run_id, k);
}

int dnas_ckpt_clear(const dnas_ctx *c, nas_err *e) {
  for (int k = -1; k < c->n_points; k++) {
    char path[4200];
    dnas_ckpt_path(c, k, path, sizeof path);
    if (remove(path) != 0 && errno != ENOENT)
      return nas_errf(e, NAS_EIO, "%s: a stale checkpoint of an earlier store cannot be removed: %s",
                      path, strerror(errno));
  }
  return NAS_OK;
}

/* ---- base64 of little-endian numbers ----------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b[n] into a NUL-terminated string (malloc'd), NULL when out of memory. */
static char *b64_encode(const unsigned char *b, size_t n) {
  char *s = nas_malloc(4 * ((n + 2) / 3) + 1), *o = s;
  if (!s) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    unsigned x = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) |
                 (i + 2 < n ? b[i + 2] : 0);
    *o++ = B64[x >> 18 & 63], *o++ = B64[x >> 12 & 63];
    *o++ = i + 1 < n ? B64[x >> 6 & 63] : '=';
    *o++ = i + 2 < n ? B64[x & 63] : '=';
  }
  *o = '\0';
  return s;
}

static int b64_val(char ch) {
  const char *p = ch ? strchr(B64, ch) : NULL;
  return p ? (int)(p - B64) : -1;
}

/* Decodes s into exactly n bytes of b; -1 when s is not the base64 of n bytes. */
static int b64_decode(const char *s, unsigned char *b, size_t n) {
  if (strlen(s) != 4 * ((n + 2) / 3)) return -1;
  for (size_t i = 0, j = 0; i < n; i += 3, j += 4) {
    int v[4];
    for (int q = 0; q < 4; q++) {
      v[q] = b64_val(s[j + q]);
      /* padding only where the byte count needs it */
      if (v[q] < 0 && !(s[j + q] == '=' && q >= 2 && i + (size_t)q - 1 >= n)) return -1;
      if (v[q] < 0) v[q] = 0;
    }
    unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
    b[i] = (unsigned char)(x >> 16);
    if (i + 1 < n) b[i + 1] = (unsigned char)(x >> 8 & 0xff);
    if (i + 2 < n) b[i + 2] = (unsigned char)(x & 0xff);
  }
  return 0;
}

static char *enc_f64(const double *x, int n) {
  unsigned char *b = nas_malloc(8 * (size_t)(n ? n : 1));
  if (!b) return NULL;
  for (int i = 0; i < n; i++) {
    uint64_t u;
    memcpy(&u, &x[i], 8);
    for (int k = 0; k < 8; k++) b[8 * i + k] = (unsigned char)(u >> (8 * k) & 0xff);
  }
  char *s = b64_encode(b, 8 * (size_t)n);
  free(b);
  return s;
}

static char *enc_f32(const float *x, size_t n) {
  unsigned char *b = nas_malloc(4 * (n ? n : 1));
  if (!b) return NULL;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    for (int k = 0; k < 4; k++) b[4 * i + k] = (unsigned char)(u >> (8 * k) & 0xff);
  }
  char *s = b64_encode(b, 4 * n);
  free(b);
  return s;
}

/* Decodes string item key of j into x[n] (finite doubles); -1 when missing or malformed. */
static int dec_f64(const cJSON *j, const char *key, double *x, int n) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key);
  unsigned char *b = nas_malloc(8 * (size_t)(n ? n : 1));
  int rc = b && cJSON_IsString(it) && !b64_decode(it->valuestring, b, 8 * (size_t)n) ? 0 : -1;
  for (int i = 0; rc == 0 && i < n; i++) {
    uint64_t u = 0;
    for (int k = 0; k < 8; k++) u |= (uint64_t)b[8 * i + k] << (8 * k);
    memcpy(&x[i], &u, 8);
    if (!isfinite(x[i])) rc = -1;
  }
  free(b);
  return rc;
}

static int dec_f32(const cJSON *it, float *x, size_t n) {
  unsigned char *b = nas_malloc(4 * (n ? n : 1));
  int rc = b && cJSON_IsString(it) && !b64_decode(it->valuestring, b, 4 * n) ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint32_t u = 0;
    for (int k = 0; k < 4; k++) u |= (uint32_t)b[4 * i + k] << (8 * k);
    memcpy(&x[i], &u, 4);
  }
  free(b);
  return rc;
}

/* ---- saving ------------------------------------------------------------------------------ */

/* {"<param name>": base64 of buf[i], ...} over the optimiser's parameters; NULL on OOM. */
static cJSON *opt_bufs(const nas_graph *g, const nas_optim *o, float *const *buf) {
  cJSON *j = cJSON_CreateObject();
  for (int i = 0; j && i < o->n; i++) {
    const nas_node *nd = &g->nodes[o->ids[i]];
    char *s = enc_f32(buf[i], nas_shape_numel(&nd->shape));
    cJSON *str = s ? cJSON_CreateString(s) : NULL;
    free(s);
    if (!str) {
      cJSON_Delete(j);
      return NULL;
    }
    cJSON_AddItemToObject(j, nd->name, str);
  }
  return j;
}

static int add_f64(cJSON *j, const char *key, const double *x, int n) {
  char *s = enc_f64(x, n);
  cJSON *str = s ? cJSON_CreateString(s) : NULL;
  free(s);
  if (!str) return -1;
  cJSON_AddItemToObject(j, key, str);
  return 0;
}

int dnas_ckpt_save(const dnas_ctx *c, int k, const nas_dnas_net *dn, const nas_optim *opt,
                   const dnas_sn_state *s, nas_err *e) {
  char path[4200];
  dnas_ckpt_path(c, k, path, sizeof path);
  const nas_graph *g = dn->net->g;
  int n = c->rx->n_p, bad = 0;
  cJSON *j = cJSON_CreateObject(), *oj = NULL;
  if (j) {
    cJSON_AddStringToObject(j, "format", "dnas-supernet");
    cJSON_AddNumberToObject(j, "version", DNAS_CKPT_VERSION);
    cJSON_AddNumberToObject(j, "n_p", n);
    cJSON_AddNumberToObject(j, "epoch", s->epoch);
    cJSON_AddNumberToObject(j, "astep", (double)s->astep);
    cJSON_AddNumberToObject(j, "samples", (double)s->samples);
    cJSON_AddNumberToObject(j, "seconds", s->seconds);
    bad = add_f64(j, "alpha", s->alpha, n) || add_f64(j, "m", s->m, n) || add_f64(j, "v", s->v, n);
    oj = cJSON_AddObjectToObject(j, "opt");
  }
  if (oj) {
    cJSON_AddNumberToObject(oj, "kind", opt->cfg.kind);
    cJSON_AddNumberToObject(oj, "step", (double)opt->step);
    cJSON *b;
    if (opt->m && (b = opt_bufs(g, opt, opt->m))) cJSON_AddItemToObject(oj, "m", b);
    else if (opt->m) bad = 1;
    if (opt->v && (b = opt_bufs(g, opt, opt->v))) cJSON_AddItemToObject(oj, "v", b);
    else if (opt->v) bad = 1;
  }
  char *meta = j && oj && !bad ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  int rc = meta ? nas_ckpt_save(path, nas_space_name(c->sn->space), meta, g, e)
                : nas_errf(e, NAS_ENOMEM, "%s: out of memory writing the supernet checkpoint", path);
  cJSON_free(meta);
  return rc;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* Decodes the optimiser buffers object ob (key name) into fresh copies *out[o->n]. */
static int read_bufs(const cJSON *oj, const char *name, const nas_graph *g, const nas_optim *o,
                     float ***out) {
  const cJSON *ob = cJSON_GetObjectItemCaseSensitive(oj, name);
  if (!cJSON_IsObject(ob) || cJSON_GetArraySize(ob) != o->n) return -1;
  float **b = nas_calloc((size_t)(o->n ? o->n : 1), sizeof *b);
  if (!b) return -1;
  *out = b;
  for (int i = 0; i < o->n; i++) {
    const nas_node *nd = &g->nodes[o->ids[i]];
    size_t numel = nas_shape_numel(&nd->shape);
    if (!(b[i] = nas_malloc(sizeof(float) * (numel ? numel : 1)))) return -1;
    if (dec_f32(cJSON_GetObjectItemCaseSensitive(ob, nd->name), b[i], numel)) return -1;
  }
  return 0;
}

static void free_bufs(float **b, int n) {
  for (int i = 0; b && i < n; i++) free(b[i]);
  free(b);
}

/* A number item of j in [lo, hi] into *v; -1 when missing, not integral or out of range. */
static int read_int(const cJSON *j, const char *key, double lo, double hi, double *v) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!cJSON_IsNumber(it) || it->valuedouble < lo || it->valuedouble > hi ||
      it->valuedouble != floor(it->valuedouble))
    return -1;
  *v = it->valuedouble;
  return 0;
}

/* A refused checkpoint is not skipped silently (that would retrain the point from its start
 * and break the exact-resume guarantee without notice): the run fails, stays resumable, and
 * the message says how to restart the point deliberately. */
static int refused(nas_err *e) {
  char m[sizeof e->msg];
  snprintf(m, sizeof m, "%s", e->msg);
  nas_errf(e, e->code, "%s (delete the file to restart this sweep point's supernet)", m);
  return -1;
}

int dnas_ckpt_load(const dnas_ctx *c, int k, nas_dnas_net *dn, nas_optim *opt, dnas_sn_state *s,
                   nas_err *e) {
  char path[4200];
  dnas_ckpt_path(c, k, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fclose(f);
  nas_ckpt ck;
  if (nas_ckpt_load(path, &ck, e) != NAS_OK) return refused(e); /* e names the file */
  nas_graph *g = dn->net->g;
  int n = c->rx->n_p;
  const char *what = NULL;
  int code = NAS_EFORMAT;
  double *x = nas_malloc(sizeof(double) * 3 * (size_t)(n ? n : 1));
  float **om = NULL, **ov = NULL;
  double ep = 0, as = 0, sa = 0, np = 0, ver = 0, okind = 0, ostep = 0;
  cJSON *j = cJSON_Parse(ck.meta_json);
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
  const cJSON *sec = cJSON_GetObjectItemCaseSensitive(j, "seconds");
  const cJSON *oj = cJSON_GetObjectItemCaseSensitive(j, "opt");
  if (!x) what = "out of memory", code = NAS_ENOMEM;
  else if (!j) what = "the DNAS state (meta JSON) does not parse";
  else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "dnas-supernet") ||
           read_int(j, "version", 0, 1e9, &ver))
    what = "written by an older build (no optimiser state): it cannot be resumed exactly";
  else if (ver != DNAS_CKPT_VERSION)
    what = "unsupported DNAS checkpoint version";
  else if (read_int(j, "n_p", n, n, &np))
    what = "field n_p: the number of architecture logits differs (the space changed?)";
  else if (read_int(j, "epoch", 0, c->cfg.sn_epochs, &ep))
    what = "field epoch missing or out of range";
  else if (read_int(j, "astep", 0, 9e15, &as) || read_int(j, "samples", 0, 9e15, &sa))
    what = "field astep or samples missing or invalid";
  else if (!cJSON_IsNumber(sec) || !isfinite(sec->valuedouble) || sec->valuedouble < 0)
    what = "field seconds missing or invalid";
  else if (dec_f64(j, "alpha", x, n) || dec_f64(j, "m", x + n, n) || dec_f64(j, "v", x + 2 * n, n))
    what = "field alpha, m or v: not the base64 of n_p finite doubles";
  else if (!cJSON_IsObject(oj) || read_int(oj, "kind", opt->cfg.kind, opt->cfg.kind, &okind) ||
           read_int(oj, "step", 0, 9e15, &ostep))
    what = "field opt: missing or of another optimiser";
  else if ((opt->m && read_bufs(oj, "m", g, opt, &om)) || (opt->v && read_bufs(oj, "v", g, opt, &ov)))
    what = "field opt: optimiser buffers missing or not matching the supernet's parameters";
  int rc = what ? nas_errf(e, code, "%s: %s", path, what) : nas_ckpt_apply(&ck, g, e);
  if (rc == NAS_OK) {
    memcpy(s->alpha, x, sizeof(double) * (size_t)n);
    memcpy(s->m, x + n, sizeof(double) * (size_t)n);
    memcpy(s->v, x + 2 * n, sizeof(double) * (size_t)n);
    s->epoch = (int)ep, s->astep = (long)as, s->samples = (long long)sa, s->seconds = sec->valuedouble;
    opt->step = (long)ostep;
    for (int i = 0; i < opt->n; i++) {
      size_t numel = nas_shape_numel(&g->nodes[opt->ids[i]].shape);
      if (om) memcpy(opt->m[i], om[i], sizeof(float) * numel);
      if (ov) memcpy(opt->v[i], ov[i], sizeof(float) * numel);
    }
  } else if (!strstr(e->msg, path)) {
    nas_err_prefix(e, "%s", path);
  }
  free_bufs(om, opt->n), free_bufs(ov, opt->n);
  free(x);
  cJSON_Delete(j);
  nas_ckpt_free(&ck);
  return rc == NAS_OK ? 1 : refused(e);
}
