/* train/checkpoint.c: writing, reading and applying versioned binary checkpoints.
 * The layout is documented in checkpoint.h. Every multi-byte field is written and read
 * byte by byte in little-endian order (never by dumping structs), so files move between
 * hosts unchanged. Loading reads the whole file, checks magic, version, length and CRC
 * before parsing, and bounds-checks every length against the bytes that remain. */
#include "train/checkpoint.h"
#include "core/alloc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static const unsigned char MAGIC[8] = {'N', 'A', 'S', 'C', 'K', 'P', 'T', '\0'};

/* magic, version, flags, arch_len, meta_len, n_tensors, crc: the smallest version-1 file. */
#define MIN_FILE 32
/* name_len, 1-byte name, kind, nd, one dim, one float: the smallest tensor record. */
#define MIN_TENSOR 13
#define NAME_MAX_LEN ((int)sizeof(((nas_ckpt_tensor *)0)->name) - 1)

/* ---- little-endian helpers ---------------------------------------------------------- */

static void le16(unsigned char *b, unsigned v) {
  b[0] = (unsigned char)(v & 0xff);
  b[1] = (unsigned char)((v >> 8) & 0xff);
}

static void le32(unsigned char *b, uint32_t v) {
  for (int i = 0; i < 4; i++) b[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static uint32_t rd32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static unsigned rd16(const unsigned char *b) { return (unsigned)b[0] | (unsigned)b[1] << 8; }

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* zlib's crc32 takes a uInt length: feed large buffers in pieces. */
static uLong crc_update(uLong crc, const unsigned char *p, size_t n) {
  while (n > 0) {
    uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
    crc = crc32(crc, p, k);
    p += k;
    n -= k;
  }
  return crc;
}

/* ---- saving ------------------------------------------------------------------------- */

typedef struct writer {
  FILE *f;      /* destination (the .tmp file) */
  uLong crc;    /* running CRC-32 of every byte written so far */
  int failed;   /* 1 after the first failed write */
  int err;      /* errno of that failure */
} writer;

static void put(writer *w, const void *p, size_t n) {
  if (w->failed || n == 0) return;
  w->crc = crc_update(w->crc, p, n);
  if (fwrite(p, 1, n, w->f) != n) {
    w->failed = 1;
    w->err = errno ? errno : EIO;
  }
}

static void put_u8(writer *w, unsigned v) {
  unsigned char b = (unsigned char)v;
  put(w, &b, 1);
}

static void put_u16(writer *w, unsigned v) {
  unsigned char b[2];
  le16(b, v);
  put(w, b, 2);
}

static void put_u32(writer *w, uint32_t v) {
  unsigned char b[4];
  le32(b, v);
  put(w, b, 4);
}

/* x: n floats, written as little-endian IEEE-754 bit patterns through a small buffer. */
static void put_f32s(writer *w, const float *x, size_t n) {
  unsigned char b[4096];
  while (n > 0) {
    size_t k = n > sizeof b / 4 ? sizeof b / 4 : n;
    for (size_t i = 0; i < k; i++) le32(b + 4 * i, f32_bits(x[i]));
    put(w, b, 4 * k);
    x += k;
    n -= k;
  }
}

static int is_leaf(const nas_node *nd) {
  return nd->kind == NAS_NODE_PARAM || nd->kind == NAS_NODE_STATE;
}

static const char *kind_name(int kind) { return kind == NAS_NODE_PARAM ? "param" : "state"; }

/* Index of the first PARAM/STATE node whose name repeats an earlier one's, or -1; *first
 * receives the earlier node. */
static int dup_leaf(const nas_graph *g, int *first) {
  for (int i = 0; i < g->n; i++) {
    if (!is_leaf(&g->nodes[i])) continue;
    for (int j = 0; j < i; j++)
      if (is_leaf(&g->nodes[j]) && strcmp(g->nodes[i].name, g->nodes[j].name) == 0) {
        *first = j;
        return i;
      }
  }
  return -1;
}

/* Checks that g can be written: allocated, names 1..47 chars and unique, shapes valid. */
static int check_savable(const char *path, const nas_graph *g, uint32_t *count, nas_err *e) {
  if (!g->allocated)
    return nas_errf(e, NAS_EINVAL, "%s: cannot save: the graph is not allocated", path);
  uint32_t n = 0;
  for (int i = 0; i < g->n; i++) {
    const nas_node *nd = &g->nodes[i];
    if (!is_leaf(nd)) continue;
    size_t len = strnlen(nd->name, sizeof nd->name);
    if (len == 0 || len > (size_t)NAME_MAX_LEN)
      return nas_errf(e, NAS_EINVAL, "%s: cannot save node %d: %s name of %zu characters "
                      "(expected 1..%d)", path, i, kind_name(nd->kind), len, NAME_MAX_LEN);
    if (nd->shape.nd < 1 || nd->shape.nd > NAS_MAX_DIMS)
      return nas_errf(e, NAS_EINVAL, "%s: cannot save '%s': nd %d outside 1..%d", path,
                      nd->name, nd->shape.nd, NAS_MAX_DIMS);
    for (int k = 0; k < nd->shape.nd; k++)
      if (nd->shape.d[k] < 1)
        return nas_errf(e, NAS_EINVAL, "%s: cannot save '%s': dimension %d is %d", path,
                        nd->name, k, nd->shape.d[k]);
    if (!nd->val)
      return nas_errf(e, NAS_EINVAL, "%s: cannot save '%s': it has no value buffer", path,
                      nd->name);
    n++;
  }
  int first, dup = dup_leaf(g, &first);
  if (dup >= 0)
    return nas_errf(e, NAS_EINVAL, "%s: cannot save: nodes %d and %d are both named '%s'", path,
                    first, dup, g->nodes[dup].name);
  *count = n;
  return NAS_OK;
}

int nas_ckpt_save(const char *path, const char *arch_json, const char *meta_json,
                  const nas_graph *g, nas_err *e) {
  if (!path || !g)
    return nas_errf(e, NAS_EINVAL, "checkpoint save: %s is NULL", path ? "graph" : "path");
  if (!arch_json) arch_json = "";
  if (!meta_json) meta_json = "";
  size_t alen = strlen(arch_json), mlen = strlen(meta_json);
  if (alen > UINT32_MAX || mlen > UINT32_MAX)
    return nas_errf(e, NAS_EINVAL, "%s: cannot save: %s JSON longer than 4 GiB", path,
                    alen > UINT32_MAX ? "arch" : "meta");
  uint32_t count = 0;
  int rc = check_savable(path, g, &count, e);
  if (rc != NAS_OK) return rc;

  size_t plen = strlen(path);
  char *tmp = nas_malloc(plen + 5);
  if (!tmp) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);

  FILE *f = fopen(tmp, "wb");
  if (!f) {
    rc = nas_errf(e, NAS_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(tmp);
    return rc;
  }
  writer w = {f, crc32(0L, Z_NULL, 0), 0, 0};
  put(&w, MAGIC, sizeof MAGIC);
  put_u32(&w, NAS_CKPT_VERSION);
  put_u32(&w, 0); /* flags */
  put_u32(&w, (uint32_t)alen);
  put(&w, arch_json, alen);
  put_u32(&w, (uint32_t)mlen);
  put(&w, meta_json, mlen);
  put_u32(&w, count);
  for (int i = 0; i < g->n; i++) {
    const nas_node *nd = &g->nodes[i];
    if (!is_leaf(nd)) continue;
    size_t len = strnlen(nd->name, sizeof nd->name);
    put_u16(&w, (unsigned)len);
    put(&w, nd->name, len);
    put_u8(&w, (unsigned)nd->kind);
    put_u8(&w, (unsigned)nd->shape.nd);
    for (int k = 0; k < nd->shape.nd; k++) put_u32(&w, (uint32_t)nd->shape.d[k]);
    put_f32s(&w, nd->val, nas_shape_numel(&nd->shape));
  }
  unsigned char crc[4];
  le32(crc, (uint32_t)w.crc);
  if (!w.failed && fwrite(crc, 1, 4, f) != 4) {
    w.failed = 1;
    w.err = errno ? errno : EIO;
  }
  /* Flush to the disk before the rename so that the real name never points at a file whose
   * data is still only in the page cache. */
  if (!w.failed && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
    w.failed = 1;
    w.err = errno ? errno : EIO;
  }
  if (fclose(f) != 0 && !w.failed) {
    w.failed = 1;
    w.err = errno ? errno : EIO;
  }
  if (w.failed) {
    rc = nas_errf(e, NAS_EIO, "%s: write to %s failed: %s", path, tmp, strerror(w.err));
    remove(tmp);
    free(tmp);
    return rc;
  }
  if (rename(tmp, path) != 0) {
    rc = nas_errf(e, NAS_EIO, "%s: cannot rename %s into place: %s", path, tmp,
                  strerror(errno));
    remove(tmp);
    free(tmp);
    return rc;
  }
  free(tmp);
  return NAS_OK;
}

/* ---- loading ------------------------------------------------------------------------ */

/* Reads the whole file into *out (malloc'd, *len bytes). */
static int read_all(const char *path, unsigned char **out, size_t *len, nas_err *e) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  unsigned char *b = nas_malloc(cap);
  if (!b) {
    fclose(f);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  }
  for (;;) {
    if (n == cap) {
      unsigned char *nb = cap <= SIZE_MAX / 2 ? nas_realloc(b, cap * 2) : NULL;
      if (!nb) {
        free(b);
        fclose(f);
        return nas_errf(e, NAS_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
      }
      b = nb;
      cap *= 2;
    }
    size_t want = cap - n, got = fread(b + n, 1, want, f);
    n += got;
    if (got < want) { /* short read: end of file or an error */
      if (ferror(f)) {
        int err = errno ? errno : EIO;
        free(b);
        fclose(f);
        return nas_errf(e, NAS_EIO, "%s: read failed: %s", path, strerror(err));
      }
      break;
    }
  }
  fclose(f);
  *out = b;
  *len = n;
  return NAS_OK;
}

typedef struct reader {
  const unsigned char *p; /* next unread byte */
  size_t left;            /* bytes left before the trailing CRC */
} reader;

/* Returns a pointer to the next n bytes and advances, or NULL when fewer remain. */
static const unsigned char *take(reader *r, size_t n) {
  if (n > r->left) return NULL;
  const unsigned char *p = r->p;
  r->p += n;
  r->left -= n;
  return p;
}

/* Reads a u32-length-prefixed JSON string into a NUL-terminated copy. */
static int take_json(const char *path, reader *r, const char *what, char **out, nas_err *e) {
  const unsigned char *b = take(r, 4);
  if (!b) return nas_errf(e, NAS_EFORMAT, "%s: truncated before the %s JSON length", path, what);
  uint32_t n = rd32(b);
  if (n > r->left)
    return nas_errf(e, NAS_EFORMAT, "%s: truncated in the %s JSON (length %u, %zu bytes left)",
                    path, what, (unsigned)n, r->left);
  b = take(r, n);
  if (memchr(b, 0, n))
    return nas_errf(e, NAS_EFORMAT, "%s: the %s JSON contains a NUL byte", path, what);
  *out = nas_malloc((size_t)n + 1);
  if (!*out) return nas_errf(e, NAS_ENOMEM, "%s: out of memory for the %s JSON", path, what);
  memcpy(*out, b, n);
  (*out)[n] = '\0';
  return NAS_OK;
}

/* Parses tensor record i into t. */
static int take_tensor(const char *path, reader *r, const nas_ckpt *c, uint32_t i,
                       nas_ckpt_tensor *t, nas_err *e) {
  const unsigned char *b = take(r, 2);
  if (!b) return nas_errf(e, NAS_EFORMAT, "%s: truncated at tensor %u (name length)", path, i);
  unsigned nlen = rd16(b);
  if (nlen < 1 || nlen > (unsigned)NAME_MAX_LEN)
    return nas_errf(e, NAS_EFORMAT, "%s: tensor %u: name length %u outside 1..%d", path, i, nlen,
                    NAME_MAX_LEN);
  if (!(b = take(r, nlen)))
    return nas_errf(e, NAS_EFORMAT, "%s: truncated at tensor %u (name of %u bytes, %zu left)",
                    path, i, nlen, r->left);
  if (memchr(b, 0, nlen))
    return nas_errf(e, NAS_EFORMAT, "%s: tensor %u: name contains a NUL byte", path, i);
  memcpy(t->name, b, nlen);
  t->name[nlen] = '\0';
  for (uint32_t j = 0; j < i; j++)
    if (strcmp(c->t[j].name, t->name) == 0)
      return nas_errf(e, NAS_EFORMAT, "%s: tensor %u ('%s'): same name as tensor %u", path, i,
                      t->name, j);
  if (!(b = take(r, 2)))
    return nas_errf(e, NAS_EFORMAT, "%s: truncated at tensor %u ('%s') (kind and nd)", path, i,
                    t->name);
  if (b[0] != NAS_NODE_PARAM && b[0] != NAS_NODE_STATE)
    return nas_errf(e, NAS_EFORMAT, "%s: tensor %u ('%s'): kind %u is neither %d (param) nor "
                    "%d (state)", path, i, t->name, b[0], NAS_NODE_PARAM, NAS_NODE_STATE);
  t->kind = b[0];
  unsigned nd = b[1];
  if (nd < 1 || nd > NAS_MAX_DIMS)
    return nas_errf(e, NAS_EFORMAT, "%s: tensor %u ('%s'): nd %u outside 1..%d", path, i,
                    t->name, nd, NAS_MAX_DIMS);
  if (!(b = take(r, 4 * (size_t)nd)))
    return nas_errf(e, NAS_EFORMAT, "%s: truncated at tensor %u ('%s') (dims)", path, i,
                    t->name);
  t->shape.nd = (int)nd;
  size_t numel = 1;
  for (unsigned k = 0; k < nd; k++) {
    uint32_t d = rd32(b + 4 * k);
    if (d < 1 || d > INT_MAX)
      return nas_errf(e, NAS_EFORMAT, "%s: tensor %u ('%s'): dimension %u is %u", path, i,
                      t->name, k, (unsigned)d);
    t->shape.d[k] = (int)d;
    /* Every element takes 4 bytes: a shape larger than what remains is a truncation (or an
     * absurd size); checking before multiplying also rules out overflow. */
    if (d > r->left / 4 / numel)
      return nas_errf(e, NAS_EFORMAT, "%s: truncated at tensor %u ('%s'): its data needs more "
                      "than the %zu bytes left", path, i, t->name, r->left);
    numel *= d;
  }
  b = take(r, 4 * numel);
  t->data = nas_malloc(numel * sizeof *t->data);
  if (!t->data)
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory for tensor %u ('%s')", path, i, t->name);
  for (size_t k = 0; k < numel; k++) t->data[k] = bits_f32(rd32(b + 4 * k));
  return NAS_OK;
}

/* The bytes the fields of b[len] declare (header, JSON lengths, tensor names and shapes, CRC),
 * walked without the checksum; a value above len means the file ends before its fields do (a
 * truncated file; or a corrupt length). Stops early, past len, once a field does not fit. */
static size_t declared_len(const unsigned char *b, size_t len) {
  size_t at = 16; /* magic, version, flags */
  for (int j = 0; j < 2; j++) { /* arch and meta JSON */
    if (at + 4 > len) return at + 4;
    uint32_t jl = rd32(b + at);
    if (jl > len - at - 4) return len + 1;
    at += 4 + (size_t)jl;
  }
  if (at + 4 > len) return at + 4;
  uint32_t n = rd32(b + at);
  at += 4;
  for (uint32_t i = 0; i < n; i++) {
    if (at + 2 > len) return at + 2;
    at += 2 + (size_t)rd16(b + at) + 2; /* name, kind, nd */
    if (at > len) return at;
    unsigned nd = b[at - 1];
    size_t bytes = 4;
    for (unsigned k = 0; k < nd; k++) {
      if (at + 4 > len) return at + 4;
      uint32_t d = rd32(b + at);
      at += 4;
      if (d && bytes > len / d) return len + 1; /* the data alone exceeds the file */
      bytes *= d;
    }
    if (bytes > len - at) return len + 1;
    at += bytes;
  }
  return at + 4; /* the CRC */
}

/* Parses a whole file image b[len] into c (c zeroed by the caller). */
static int parse(const char *path, const unsigned char *b, size_t len, nas_ckpt *c, nas_err *e) {
  if (len == 0) return nas_errf(e, NAS_EFORMAT, "%s: empty file (not a nas checkpoint)", path);
  if (memcmp(b, MAGIC, len < sizeof MAGIC ? len : sizeof MAGIC) != 0)
    return nas_errf(e, NAS_EFORMAT, "%s: not a nas checkpoint (bad magic)", path);
  if (len < sizeof MAGIC + 4)
    return nas_errf(e, NAS_EFORMAT, "%s: truncated in the header (%zu bytes)", path, len);
  uint32_t version = rd32(b + 8);
  if (version != NAS_CKPT_VERSION)
    return nas_errf(e, NAS_EFORMAT, "%s: checkpoint version %u not supported (expected %d)",
                    path, (unsigned)version, NAS_CKPT_VERSION);
  if (len < MIN_FILE)
    return nas_errf(e, NAS_EFORMAT, "%s: truncated (%zu bytes; a version %d checkpoint has at "
                    "least %d)", path, len, NAS_CKPT_VERSION, MIN_FILE);
  uLong crc = crc_update(crc32(0L, Z_NULL, 0), b, len - 4);
  if ((uint32_t)crc != rd32(b + len - 4)) {
    if (declared_len(b, len) > len)
      return nas_errf(e, NAS_EFORMAT, "%s: checksum mismatch (file corrupt): %zu bytes, its "
                      "fields need more (truncated)", path, len);
    return nas_errf(e, NAS_EFORMAT, "%s: checksum mismatch (file corrupt)", path);
  }

  reader r = {b + 12, len - 16};
  uint32_t flags = rd32(take(&r, 4));
  if (flags != 0)
    return nas_errf(e, NAS_EFORMAT, "%s: unknown flags 0x%x (expected 0)", path,
                    (unsigned)flags);
  int rc = take_json(path, &r, "arch", &c->arch_json, e);
  if (rc == NAS_OK) rc = take_json(path, &r, "meta", &c->meta_json, e);
  if (rc != NAS_OK) return rc;
  const unsigned char *p = take(&r, 4);
  if (!p) return nas_errf(e, NAS_EFORMAT, "%s: truncated before the tensor count", path);
  uint32_t n = rd32(p);
  if (n > r.left / MIN_TENSOR || n > INT_MAX)
    return nas_errf(e, NAS_EFORMAT, "%s: %u tensors cannot fit in the %zu bytes left", path,
                    (unsigned)n, r.left);
  c->t = nas_calloc(n ? n : 1, sizeof *c->t);
  if (!c->t) return nas_errf(e, NAS_ENOMEM, "%s: out of memory for %u tensors", path, n);
  for (uint32_t i = 0; i < n; i++) {
    rc = take_tensor(path, &r, c, i, &c->t[i], e);
    c->n = (int)i + 1; /* so that nas_ckpt_free releases what tensor i allocated */
    if (rc != NAS_OK) return rc;
  }
  c->n = (int)n;
  if (r.left != 0)
    return nas_errf(e, NAS_EFORMAT, "%s: %zu unexpected bytes after the last tensor", path,
                    r.left);
  return NAS_OK;
}

int nas_ckpt_load(const char *path, nas_ckpt *c, nas_err *e) {
  if (!c) return nas_errf(e, NAS_EINVAL, "checkpoint load: output is NULL");
  memset(c, 0, sizeof *c);
  if (!path) return nas_errf(e, NAS_EINVAL, "checkpoint load: path is NULL");
  unsigned char *b;
  size_t len;
  int rc = read_all(path, &b, &len, e);
  if (rc != NAS_OK) return rc;
  rc = parse(path, b, len, c, e);
  free(b);
  if (rc != NAS_OK) nas_ckpt_free(c);
  return rc;
}

void nas_ckpt_free(nas_ckpt *c) {
  if (!c) return;
  free(c->arch_json);
  free(c->meta_json);
  if (c->t)
    for (int i = 0; i < c->n; i++) free(c->t[i].data);
  free(c->t);
  memset(c, 0, sizeof *c);
}

/* ---- applying ----------------------------------------------------------------------- */

static int shape_eq(const nas_shape *a, const nas_shape *b) {
  if (a->nd != b->nd) return 0;
  for (int k = 0; k < a->nd; k++)
    if (a->d[k] != b->d[k]) return 0;
  return 1;
}

/* Index of the checkpoint tensor named name, or -1. */
static int find_tensor(const nas_ckpt *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->t[i].name, name) == 0) return i;
  return -1;
}

/* Id of the PARAM/STATE node named name, or -1 (op nodes of the same name are ignored). */
static int find_leaf(const nas_graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (is_leaf(&g->nodes[i]) && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

int nas_ckpt_apply(const nas_ckpt *c, nas_graph *g, nas_err *e) {
  if (!c || !g)
    return nas_errf(e, NAS_EINVAL, "checkpoint apply: %s is NULL", c ? "graph" : "checkpoint");
  if (!g->allocated)
    return nas_errf(e, NAS_EINVAL, "checkpoint apply: the graph is not allocated");
  int first, dup = dup_leaf(g, &first);
  if (dup >= 0)
    return nas_errf(e, NAS_EINVAL, "checkpoint apply: network nodes %d and %d are both named "
                    "'%s'", first, dup, g->nodes[dup].name);
  char s1[64], s2[64];
  /* Check everything first, so that a refused checkpoint leaves the network untouched. */
  for (int i = 0; i < g->n; i++) {
    const nas_node *nd = &g->nodes[i];
    if (!is_leaf(nd)) continue;
    int j = find_tensor(c, nd->name);
    if (j < 0)
      return nas_errf(e, NAS_EINVAL, "checkpoint: network %s '%s' %s is missing from the "
                      "checkpoint", kind_name(nd->kind), nd->name,
                      nas_shape_str(&nd->shape, s1, sizeof s1));
    const nas_ckpt_tensor *t = &c->t[j];
    if (t->kind != nd->kind)
      return nas_errf(e, NAS_EINVAL, "checkpoint tensor '%s' is a %s in the checkpoint, a %s "
                      "in the network", t->name, kind_name(t->kind), kind_name(nd->kind));
    if (!shape_eq(&t->shape, &nd->shape))
      return nas_errf(e, NAS_EINVAL, "checkpoint tensor '%s': shape %s in the checkpoint, %s in "
                      "the network", t->name, nas_shape_str(&t->shape, s1, sizeof s1),
                      nas_shape_str(&nd->shape, s2, sizeof s2));
    if (!t->data || !nd->val)
      return nas_errf(e, NAS_EINVAL, "checkpoint tensor '%s': no data", t->name);
  }
  for (int j = 0; j < c->n; j++) {
    const nas_ckpt_tensor *t = &c->t[j];
    if (find_leaf(g, t->name) < 0)
      return nas_errf(e, NAS_EINVAL, "checkpoint tensor '%s' (%s %s) has no counterpart in the "
                      "network", t->name, kind_name(t->kind),
                      nas_shape_str(&t->shape, s1, sizeof s1));
  }
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    if (!is_leaf(nd)) continue;
    const nas_ckpt_tensor *t = &c->t[find_tensor(c, nd->name)];
    memcpy(nd->val, t->data, nas_shape_numel(&nd->shape) * sizeof *nd->val);
  }
  return NAS_OK;
}
