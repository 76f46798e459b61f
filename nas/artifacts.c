/* nas/artifacts.c: a candidate's stored blobs (float checkpoint bytes with the calibration in
 * its meta JSON, int8 .tflite bytes) and the int8 evaluation used by the search (see
 * nas/artifacts.h). Checkpoint bytes go through a private temporary file (train/checkpoint.c
 * reads and writes files), preferably in /dev/shm. */
#include "nas/artifacts.h"
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy/lower.h"
#include "export/export_tflite.h"

/* A fresh empty file name (the file exists, mode 0600); 0 on success. */
static int temp_file(char *buf, size_t cap) {
  const char *dirs[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    if (!dirs[i] || access(dirs[i], W_OK) != 0) continue;
    snprintf(buf, cap, "%s/nas-cand-XXXXXX", dirs[i]);
    int fd = mkstemp(buf);
    if (fd >= 0) {
      close(fd);
      return 0;
    }
  }
  return -1;
}

static int read_bytes(const char *path, uint8_t **buf, size_t *len, nas_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *buf = nas_malloc(n > 0 ? (size_t)n : 1);
  if (!*buf) return fclose(f), nas_errf(e, NAS_ENOMEM, "out of memory");
  *len = n > 0 ? fread(*buf, 1, (size_t)n, f) : 0;
  fclose(f);
  if ((long)*len != n) {
    free(*buf), *buf = NULL;
    return nas_errf(e, NAS_EIO, "%s: short read", path);
  }
  return NAS_OK;
}

static char *meta_text(const nas_cand_info *info, const nas_calib *c) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "dataset", info->dataset ? info->dataset : "");
  cJSON_AddNumberToObject(m, "train_limit", info->train_limit);
  cJSON_AddNumberToObject(m, "eval_limit", info->eval_limit);
  cJSON_AddNumberToObject(m, "norm_mean", info->norm_mean);
  cJSON_AddNumberToObject(m, "norm_std", info->norm_std);
  cJSON_AddNumberToObject(m, "epochs", info->epochs);
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)info->seed);
  cJSON_AddStringToObject(m, "seed", seed);
  cJSON_AddNumberToObject(m, "test_acc", info->float_test_acc);
  cJSON *cal = cJSON_AddObjectToObject(m, "calib");
  cJSON_AddNumberToObject(cal, "version", NAS_CAND_CALIB_VERSION);
  cJSON_AddNumberToObject(cal, "method", c->method);
  cJSON_AddNumberToObject(cal, "samples", c->samples);
  cJSON_AddNumberToObject(cal, "n", c->n);
  cJSON *nodes = cJSON_AddArrayToObject(cal, "nodes"), *lo = cJSON_AddArrayToObject(cal, "lo"),
        *hi = cJSON_AddArrayToObject(cal, "hi");
  for (int i = 0; i < c->n; i++) {
    if (!c->point[i]) continue;
    /* a float widened to double prints (cJSON: 15 or 17 digits) and reads back exactly */
    cJSON_AddItemToArray(nodes, cJSON_CreateNumber(i));
    cJSON_AddItemToArray(lo, cJSON_CreateNumber((double)c->lo[i]));
    cJSON_AddItemToArray(hi, cJSON_CreateNumber((double)c->hi[i]));
  }
  /* version 2: the recurrent cells' internal points, in nas_calib_alloc_sub's order */
  cJSON *slo = cJSON_AddArrayToObject(cal, "sub_lo"), *shi = cJSON_AddArrayToObject(cal, "sub_hi");
  for (int k = 0; k < c->nsub; k++) {
    cJSON_AddItemToArray(slo, cJSON_CreateNumber((double)c->sub_lo[k]));
    cJSON_AddItemToArray(shi, cJSON_CreateNumber((double)c->sub_hi[k]));
  }
  char *t = cJSON_PrintUnformatted(m);
  cJSON_Delete(m);
  return t;
}

int nas_cand_pack(const nas_net *net, const nas_cand_info *info, const nas_calib *c,
                  const nas_g8_graph *g8, const char *name, uint8_t **fbuf, size_t *flen,
                  uint8_t **qbuf, size_t *qlen, nas_err *e) {
  *fbuf = *qbuf = NULL, *flen = *qlen = 0;
  char *meta = meta_text(info, c);
  if (!meta) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", name);
  char path[512];
  int rc = NAS_OK;
  if (temp_file(path, sizeof path) != 0)
    rc = nas_errf(e, NAS_EIO, "%s: cannot create a temporary file: %s", name, strerror(errno));
  else {
    rc = nas_ckpt_save(path, net->arch_json, meta, net->g, e);
    if (rc == NAS_OK) rc = read_bytes(path, fbuf, flen, e);
    unlink(path);
  }
  cJSON_free(meta);
  if (rc == NAS_OK) rc = nas_tflite_write_mem(g8, name, qbuf, qlen, e);
  if (rc != NAS_OK) {
    free(*fbuf), free(*qbuf);
    *fbuf = *qbuf = NULL, *flen = *qlen = 0;
    nas_err_prefix(e, "%s", name);
  }
  return rc;
}

/* The calibration's version and (version 2) its recurrent sub-ranges into c->nsub, sub_lo,
 * sub_hi (c->sub stays NULL: nas_cand_calib lays them out on the graph). */
static int unpack_sub(const cJSON *cal, const char *what, nas_calib *c, int *version, nas_err *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cal, "version");
  *version = 1; /* blobs written before the field existed */
  if (v && (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble != (int)v->valuedouble))
    return nas_errf(e, NAS_EFORMAT, "%s: float weights: calibration version is not a positive integer",
                    what);
  if (v) *version = (int)v->valuedouble;
  if (*version > NAS_CAND_CALIB_VERSION)
    return nas_errf(e, NAS_EFORMAT,
                    "%s: float weights: calibration version %d is newer than this program's (%d)",
                    what, *version, NAS_CAND_CALIB_VERSION);
  if (*version < 2) return NAS_OK;
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(cal, "sub_lo"),
              *hi = cJSON_GetObjectItemCaseSensitive(cal, "sub_hi");
  const int k = cJSON_GetArraySize(lo);
  if (!cJSON_IsArray(lo) || !cJSON_IsArray(hi) || cJSON_GetArraySize(hi) != k || k > c->n * NAS_GRU_NPOINTS)
    return nas_errf(e, NAS_EFORMAT, "%s: float weights: malformed recurrent calibration (sub_lo, sub_hi)",
                    what);
  if (k == 0) return NAS_OK;
  c->sub_lo = nas_malloc(sizeof(float) * (size_t)k);
  c->sub_hi = nas_malloc(sizeof(float) * (size_t)k);
  if (!c->sub_lo || !c->sub_hi) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", what);
  c->nsub = k;
  const cJSON *l = lo->child, *h = hi->child;
  for (int j = 0; j < k; j++, l = l->next, h = h->next) {
    if (!cJSON_IsNumber(l) || !cJSON_IsNumber(h) || !(l->valuedouble <= h->valuedouble))
      return nas_errf(e, NAS_EFORMAT,
                      "%s: float weights: recurrent calibration entry %d is not a range lo <= hi",
                      what, j);
    c->sub_lo[j] = (float)l->valuedouble, c->sub_hi[j] = (float)h->valuedouble;
  }
  return NAS_OK;
}

int nas_cand_unpack_float(const void *buf, size_t len, const char *what, nas_cand_float *out,
                          nas_err *e) {
  memset(out, 0, sizeof *out);
  char path[512];
  if (temp_file(path, sizeof path) != 0)
    return nas_errf(e, NAS_EIO, "%s: cannot create a temporary file: %s", what, strerror(errno));
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(buf, 1, len, f) == len;
  if (f && fclose(f) != 0) ok = 0;
  int rc = ok ? nas_ckpt_load(path, &out->ck, e)
              : nas_errf(e, NAS_EIO, "%s: cannot write a temporary file", what);
  unlink(path);
  if (rc != NAS_OK) {
    nas_err_prefix(e, "%s: float weights", what);
    return rc;
  }
  cJSON *m = cJSON_Parse(out->ck.meta_json);
  const cJSON *v;
  if ((v = cJSON_GetObjectItemCaseSensitive(m, "dataset")) && cJSON_IsString(v))
    snprintf(out->dataset, sizeof out->dataset, "%s", v->valuestring);
  if ((v = cJSON_GetObjectItemCaseSensitive(m, "train_limit")) && cJSON_IsNumber(v))
    out->train_limit = (int)v->valuedouble;
  if ((v = cJSON_GetObjectItemCaseSensitive(m, "eval_limit")) && cJSON_IsNumber(v))
    out->eval_limit = (int)v->valuedouble;
  const cJSON *cal = cJSON_GetObjectItemCaseSensitive(m, "calib");
  if (cal) {
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(cal, "nodes"),
                *lo = cJSON_GetObjectItemCaseSensitive(cal, "lo"),
                *hi = cJSON_GetObjectItemCaseSensitive(cal, "hi"),
                *n = cJSON_GetObjectItemCaseSensitive(cal, "n");
    int k = cJSON_GetArraySize(nodes);
    if (!cJSON_IsNumber(n) || n->valuedouble < 1 || n->valuedouble > 1e7 ||
        cJSON_GetArraySize(lo) != k || cJSON_GetArraySize(hi) != k) {
      rc = nas_errf(e, NAS_EFORMAT, "%s: float weights: malformed calibration", what);
    } else {
      nas_calib *c = &out->calib;
      c->n = (int)n->valuedouble;
      c->point = nas_calloc((size_t)c->n, 1);
      c->lo = nas_calloc((size_t)c->n, sizeof(float));
      c->hi = nas_calloc((size_t)c->n, sizeof(float));
      const cJSON *mm = cJSON_GetObjectItemCaseSensitive(cal, "method"),
                  *ss = cJSON_GetObjectItemCaseSensitive(cal, "samples");
      c->method = cJSON_IsNumber(mm) ? (int)mm->valuedouble : 0;
      c->samples = cJSON_IsNumber(ss) ? (int)ss->valuedouble : 0;
      if (!c->point || !c->lo || !c->hi) rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", what);
      const cJSON *a = nodes ? nodes->child : NULL, *l = lo ? lo->child : NULL,
                  *h = hi ? hi->child : NULL;
      for (; rc == NAS_OK && a; a = a->next, l = l->next, h = h->next) {
        int i = cJSON_IsNumber(a) ? (int)a->valuedouble : -1;
        if (i < 0 || i >= c->n || !cJSON_IsNumber(l) || !cJSON_IsNumber(h)) {
          rc = nas_errf(e, NAS_EFORMAT, "%s: float weights: malformed calibration", what);
          break;
        }
        c->point[i] = 1, c->lo[i] = (float)l->valuedouble, c->hi[i] = (float)h->valuedouble;
      }
      if (rc == NAS_OK) rc = unpack_sub(cal, what, c, &out->calib_version, e);
    }
  }
  cJSON_Delete(m);
  if (rc != NAS_OK) nas_cand_float_free(out);
  return rc;
}

void nas_cand_float_free(nas_cand_float *f) {
  if (!f) return;
  nas_ckpt_free(&f->ck);
  nas_calib_free(&f->calib);
  memset(f, 0, sizeof *f);
}

int nas_cand_calib(const nas_cand_float *f, const nas_graph *g, nas_calib *c, nas_err *e) {
  memset(c, 0, sizeof *c);
  const int n = g->n;
  if (f->calib.n == 0) return nas_errf(e, NAS_EFORMAT, "no calibration stored with the weights");
  if (f->calib.n != n)
    return nas_errf(e, NAS_EFORMAT, "stored calibration covers %d graph nodes, the network has %d",
                    f->calib.n, n);
  c->n = n, c->method = f->calib.method, c->samples = f->calib.samples;
  c->point = nas_malloc((size_t)n);
  c->lo = nas_malloc(sizeof(float) * (size_t)n);
  c->hi = nas_malloc(sizeof(float) * (size_t)n);
  if (!c->point || !c->lo || !c->hi) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  memcpy(c->point, f->calib.point, (size_t)n);
  memcpy(c->lo, f->calib.lo, sizeof(float) * (size_t)n);
  memcpy(c->hi, f->calib.hi, sizeof(float) * (size_t)n);
  if (f->calib_version < 2) return NAS_OK; /* no sub-ranges stored: c->nsub 0 */
  if (nas_calib_alloc_sub(g, c) != NAS_OK) {
    nas_calib_free(c);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  if (c->nsub != f->calib.nsub) {
    const int want = c->nsub;
    nas_calib_free(c);
    return nas_errf(e, NAS_EFORMAT,
                    "stored calibration has %d recurrent internal ranges, the network's cells have %d",
                    f->calib.nsub, want);
  }
  if (c->nsub) {
    memcpy(c->sub_lo, f->calib.sub_lo, sizeof(float) * (size_t)c->nsub);
    memcpy(c->sub_hi, f->calib.sub_hi, sizeof(float) * (size_t)c->nsub);
  }
  return NAS_OK;
}

nas_dataset nas_dataset_head(const nas_dataset *ds, int limit) {
  nas_dataset v = *ds;
  if (limit > 0 && limit < v.n) v.n = limit;
  return v;
}
