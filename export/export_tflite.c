/* export/export_tflite.c: a minimal flatbuffer builder and the TFLite model writer.
 *
 * Builder: the buffer is filled from its end towards its start, as flatbuffers builders do,
 * so that every reference (a u32 offset relative to where it is stored) points forward.
 * Objects are identified by their distance from the end ("off"); once the buffer is
 * complete, an object's position is size - off. Alignment is kept relative to the end and
 * the finished size is padded to the largest alignment used, so it is absolute too.
 * A table is written as: its fields (scalars aligned to their size, references as u32), an
 * i32 soffset to its vtable at the table start, and the vtable just before it (u16 vtable
 * size, u16 table size, one u16 field offset per field id, 0 = absent). Field ids follow
 * tensorflow/lite/schema/schema.fbs, written down once in deploy/tflite_schema.h. */
#include "export/export_tflite.h"
#include "deploy/wino8.h"
#include "core/alloc.h"
#include "deploy/tflite_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXF 16 /* most fields of any table we write */

typedef struct fbb {
  uint8_t *b;      /* storage; data occupies b[cap - size, cap) */
  size_t cap;      /* allocated bytes */
  size_t size;     /* bytes written */
  size_t minalign; /* largest alignment used */
  int oom;         /* 1 after a failed allocation (every later call is a no-op) */
  size_t tstart;   /* size when the open table started */
  size_t fpos[MAXF]; /* per field id: off of the field in the open table (0: absent) */
  int nf;          /* highest field id + 1 in the open table */
} fbb;

static int grow(fbb *f, size_t need) {
  if (f->oom) return -1;
  if (f->size + need <= f->cap) return 0;
  size_t cap = f->cap ? f->cap : 1024;
  while (cap < f->size + need) cap *= 2;
  uint8_t *nb = nas_malloc(cap);
  if (!nb) {
    f->oom = 1;
    return -1;
  }
  if (f->size) memcpy(nb + cap - f->size, f->b + f->cap - f->size, f->size);
  free(f->b);
  f->b = nb, f->cap = cap;
  return 0;
}

/* Pointer to the byte at distance off from the end. */
static uint8_t *at(fbb *f, size_t off) { return f->b + f->cap - off; }

static void pad(fbb *f, size_t n) {
  if (!n || grow(f, n)) return;
  f->size += n;
  memset(at(f, f->size), 0, n);
}

/* Pads so that after writing `extra` more bytes the size is a multiple of align. */
static void prep(fbb *f, size_t align, size_t extra) {
  if (align > f->minalign) f->minalign = align;
  size_t p = (align - ((f->size + extra) % align)) % align;
  pad(f, p);
}

static void put_bytes(fbb *f, const void *p, size_t n) {
  if (!n || grow(f, n)) return;
  f->size += n;
  memcpy(at(f, f->size), p, n);
}

static void le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static void put_u32(fbb *f, uint32_t v) {
  uint8_t b[4];
  le32(b, v);
  put_bytes(f, b, 4);
}
static void put_u16(fbb *f, unsigned v) {
  uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  put_bytes(f, b, 2);
}

/* A reference to the object at off, stored at the current position (u32, aligned). */
static void put_ref(fbb *f, size_t off) {
  prep(f, 4, 4);
  put_u32(f, (uint32_t)(f->size + 4 - off));
}

/* Vector of n scalar elements of elem bytes (already little-endian in p); align >= elem. */
static size_t vec_raw(fbb *f, const void *p, size_t n, size_t elem, size_t align) {
  prep(f, 4, n * elem);
  prep(f, align, n * elem);
  put_bytes(f, p, n * elem);
  put_u32(f, (uint32_t)n);
  return f->size;
}

static size_t vec_i32(fbb *f, const int32_t *v, size_t n) {
  uint8_t *t = nas_malloc(n * 4 + 1);
  if (!t) return f->oom = 1, 0;
  for (size_t i = 0; i < n; i++) le32(t + 4 * i, (uint32_t)v[i]);
  size_t off = vec_raw(f, t, n, 4, 4);
  free(t);
  return off;
}

static size_t vec_f32(fbb *f, const float *v, size_t n) {
  uint8_t *t = nas_malloc(n * 4 + 1);
  if (!t) return f->oom = 1, 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &v[i], 4);
    le32(t + 4 * i, u);
  }
  size_t off = vec_raw(f, t, n, 4, 4);
  free(t);
  return off;
}

static size_t vec_i64(fbb *f, const int32_t *v, size_t n) {
  uint8_t *t = nas_malloc(n * 8 + 1);
  if (!t) return f->oom = 1, 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t u = (uint64_t)(int64_t)v[i];
    le32(t + 8 * i, (uint32_t)u), le32(t + 8 * i + 4, (uint32_t)(u >> 32));
  }
  size_t off = vec_raw(f, t, n, 8, 8);
  free(t);
  return off;
}

/* Vector of references to the objects offs[0..n). */
static size_t vec_refs(fbb *f, const size_t *offs, size_t n) {
  prep(f, 4, 4 * n);
  for (size_t i = n; i-- > 0;) put_ref(f, offs[i]);
  put_u32(f, (uint32_t)n);
  return f->size;
}

static size_t str(fbb *f, const char *s) {
  size_t n = strlen(s);
  prep(f, 4, n + 1);
  pad(f, 1); /* NUL terminator */
  put_bytes(f, s, n);
  put_u32(f, (uint32_t)n);
  return f->size;
}

static void tstart(fbb *f) {
  f->tstart = f->size;
  memset(f->fpos, 0, sizeof f->fpos);
  f->nf = 0;
}

static void mark(fbb *f, int id) {
  f->fpos[id] = f->size;
  if (id + 1 > f->nf) f->nf = id + 1;
}

static void f_u8(fbb *f, int id, uint8_t v) {
  prep(f, 1, 1);
  put_bytes(f, &v, 1);
  mark(f, id);
}
static void f_i32(fbb *f, int id, int32_t v) {
  prep(f, 4, 4);
  put_u32(f, (uint32_t)v);
  mark(f, id);
}
static void f_f32(fbb *f, int id, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  prep(f, 4, 4);
  put_u32(f, u);
  mark(f, id);
}
static void f_ref(fbb *f, int id, size_t off) {
  put_ref(f, off);
  mark(f, id);
}

static size_t tend(fbb *f) {
  prep(f, 4, 4);
  put_u32(f, 0); /* soffset placeholder */
  size_t tpos = f->size;
  unsigned tsize = (unsigned)(tpos - f->tstart);
  /* vtable, written back to front: field offsets (last id first), table size, vtable size */
  for (int id = f->nf - 1; id >= 0; id--)
    put_u16(f, f->fpos[id] ? (unsigned)(tpos - f->fpos[id]) : 0);
  put_u16(f, tsize);
  put_u16(f, (unsigned)(4 + 2 * f->nf));
  if (f->oom) return 0;
  /* soffset = table position - vtable position (vtable lies before the table) */
  le32(at(f, tpos), (uint32_t)(int32_t)(f->size - tpos));
  return tpos;
}

/* ---- TFLite ------------------------------------------------------------------------------ */

/* Writes op's options table as its schema entry describes it (deploy/tflite_schema.h): vectors
 * first (they precede the table), then the 4-byte fields by id, then the byte fields by id. */
static size_t write_options(fbb *f, const nas_g8_graph *g, const nas_g8_op *op,
                            const nas_tfs_op *so) {
  if (so->options == NAS_TFS_OPT_NONE) return 0;
  size_t vec[NAS_TFS_MAXFIELDS] = {0};
  for (int k = 0; k < so->nfields; k++)
    if (so->fields[k].type == NAS_TFS_SHAPE) {
      const nas_g8_tensor *y = &g->tensors[op->out];
      int32_t d[NAS_G8_MAXDIM];
      size_t nd = y->ndim > 0 && y->ndim <= NAS_G8_MAXDIM ? (size_t)y->ndim : 0;
      for (size_t i = 0; i < nd; i++) d[i] = y->dims[i];
      vec[k] = vec_i32(f, d, nd);
    }
  tstart(f);
  for (int pass = 0; pass < 2; pass++)
    for (int k = 0; k < so->nfields; k++) {
      const nas_tfs_field *fd = &so->fields[k];
      const char *m = (const char *)op + fd->member;
      const int byte = fd->type == NAS_TFS_BYTE || fd->type == NAS_TFS_ZERO;
      if (byte != pass) continue;
      switch (fd->type) {
        case NAS_TFS_BYTE: f_u8(f, fd->id, (uint8_t) * (const int *)m); break;
        case NAS_TFS_ZERO: f_u8(f, fd->id, 0); break;
        case NAS_TFS_I32: f_i32(f, fd->id, *(const int *)m); break;
        case NAS_TFS_F32: f_f32(f, fd->id, *(const float *)m); break;
        case NAS_TFS_SHAPE: f_ref(f, fd->id, vec[k]); break;
        default: break;
      }
    }
  return tend(f);
}

static int write_graph(const nas_g8_graph *g, const char *description, uint8_t **buf, size_t *len,
                       nas_err *e);

/* Static Winograd layers are written as the CONV_2D a standard runtime computes (deploy/
 * wino8.h nas_g8_wino_as_conv, with a note in the description), flex ones refused. */
int nas_tflite_write_mem(const nas_g8_graph *g, const char *description, uint8_t **buf,
                         size_t *len, nas_err *e) {
  *buf = NULL, *len = 0;
  if (!nas_g8_wino_count(g, NULL)) return write_graph(g, description, buf, len, e);
  nas_g8_graph conv;
  int n = 0, rc = nas_g8_wino_as_conv(g, &conv, &n, e);
  if (rc) return nas_err_prefix(e, "tflite export"), rc;
  char desc[512];
  snprintf(desc, sizeof desc,
           "%s; %d Winograd-aware layer%s written as CONV_2D: standard runtimes compute %s "
           "directly, so their int8 result differs from the Winograd-aware one",
           description ? description : "nas int8 export", n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
  rc = write_graph(&conv, desc, buf, len, e);
  nas_g8_graph_free(&conv);
  return rc;
}

static int write_graph(const nas_g8_graph *g, const char *description, uint8_t **buf, size_t *len,
                       nas_err *e) {
  *buf = NULL, *len = 0;
  int rc = nas_g8_validate(g, e);
  if (rc) return nas_err_prefix(e, "tflite export"), rc;
  fbb f = {0};
  const int nt = g->ntensors, no = g->nops;
  /* distinct operator codes in order of first use */
  int codes[64], ncodes = 0;
  int *opc = nas_malloc(sizeof *opc * (size_t)(no + 1));
  int *tbuf = nas_malloc(sizeof *tbuf * (size_t)(nt + 1));
  size_t *offs = nas_malloc(sizeof *offs * (size_t)(nt + no + 64 + 1));
  if (!opc || !tbuf || !offs) {
    free(opc), free(tbuf), free(offs);
    return nas_errf(e, NAS_ENOMEM, "tflite export: out of memory");
  }
  for (int i = 0; i < no; i++) {
    int k = 0;
    while (k < ncodes && codes[k] != g->ops[i].kind) k++;
    if (k == 64) k = 63; /* cannot happen: at most 16 kinds pass validation */
    if (k == ncodes) codes[ncodes++] = g->ops[i].kind;
    opc[i] = k;
  }
  /* buffers: 0 empty, then one per constant tensor */
  int nbuf = 1;
  for (int i = 0; i < nt; i++) tbuf[i] = g->tensors[i].data ? nbuf++ : 0;
  size_t *boffs = nas_malloc(sizeof *boffs * (size_t)nbuf);
  if (!boffs) {
    free(opc), free(tbuf), free(offs);
    return nas_errf(e, NAS_ENOMEM, "tflite export: out of memory");
  }
  for (int i = nt - 1; i >= 0; i--) {
    const nas_g8_tensor *t = &g->tensors[i];
    if (!t->data) continue;
    size_t data;
    if (t->type == NAS_G8_INT32) { /* raw little-endian bytes */
      size_t cnt = nas_g8_numel(t);
      uint8_t *tmp = nas_malloc(cnt * 4 + 1);
      if (!tmp) {
        f.oom = 1;
        continue;
      }
      for (size_t k = 0; k < cnt; k++) le32(tmp + 4 * k, (uint32_t)((const int32_t *)t->data)[k]);
      data = vec_raw(&f, tmp, cnt * 4, 1, 16);
      free(tmp);
    } else if (t->type == NAS_G8_INT16) {
      size_t cnt = nas_g8_numel(t);
      uint8_t *tmp = nas_malloc(cnt * 2 + 1);
      if (!tmp) {
        f.oom = 1;
        continue;
      }
      for (size_t k = 0; k < cnt; k++) {
        const uint16_t v = (uint16_t)((const int16_t *)t->data)[k];
        tmp[2 * k] = (uint8_t)v, tmp[2 * k + 1] = (uint8_t)(v >> 8);
      }
      data = vec_raw(&f, tmp, cnt * 2, 1, 16);
      free(tmp);
    } else {
      data = vec_raw(&f, t->data, t->bytes, 1, 16);
    }
    tstart(&f);
    f_ref(&f, NAS_TFS_BUF_DATA, data);
    boffs[tbuf[i]] = tend(&f);
  }
  tstart(&f);
  boffs[0] = tend(&f);
  size_t buffers = vec_refs(&f, boffs, (size_t)nbuf);
  free(boffs);
  /* tensors */
  for (int i = 0; i < nt; i++) {
    const nas_g8_tensor *t = &g->tensors[i];
    size_t q = 0;
    if (t->nq > 0) {
      size_t sc = vec_f32(&f, t->scale, (size_t)t->nq);
      size_t zp = vec_i64(&f, t->zero_point, (size_t)t->nq);
      tstart(&f);
      f_ref(&f, NAS_TFS_Q_SCALE, sc), f_ref(&f, NAS_TFS_Q_ZERO_POINT, zp);
      if (t->nq > 1 || t->qdim) f_i32(&f, NAS_TFS_Q_QDIM, t->qdim);
      q = tend(&f);
    }
    int32_t d[NAS_G8_MAXDIM];
    size_t nd = t->ndim > 0 && t->ndim <= NAS_G8_MAXDIM ? (size_t)t->ndim : 0;
    for (size_t k = 0; k < nd; k++) d[k] = t->dims[k];
    size_t shape = vec_i32(&f, d, nd);
    size_t name = str(&f, t->name ? t->name : "");
    tstart(&f);
    f_ref(&f, NAS_TFS_T_SHAPE, shape);
    f_i32(&f, NAS_TFS_T_BUFFER, tbuf[i]);
    f_ref(&f, NAS_TFS_T_NAME, name);
    if (q) f_ref(&f, NAS_TFS_T_QUANT, q);
    f_u8(&f, NAS_TFS_T_TYPE, (uint8_t)t->type);
    if (t->variable) f_u8(&f, NAS_TFS_T_IS_VARIABLE, 1);
    offs[i] = tend(&f);
  }
  size_t tensors = vec_refs(&f, offs, (size_t)nt);
  /* operators */
  for (int i = 0; i < no; i++) {
    const nas_g8_op *op = &g->ops[i];
    const nas_tfs_op *so = nas_tfs_op_find(op->kind); /* validated: supported */
    size_t opt = so ? write_options(&f, g, op, so) : 0;
    size_t ins = vec_i32(&f, op->in, op->nin > 0 && op->nin <= NAS_G8_MAXIN ? (size_t)op->nin : 0);
    int32_t o = op->out;
    size_t outs = vec_i32(&f, &o, 1);
    size_t ims = op->nim > 0 ? vec_i32(&f, op->im, (size_t)op->nim) : 0;
    tstart(&f);
    if (ims) f_ref(&f, NAS_TFS_OP_INTERMEDIATES, ims);
    f_i32(&f, NAS_TFS_OP_OPCODE, opc[i]);
    f_ref(&f, NAS_TFS_OP_INPUTS, ins), f_ref(&f, NAS_TFS_OP_OUTPUTS, outs);
    if (opt) f_ref(&f, NAS_TFS_OP_OPT, opt), f_u8(&f, NAS_TFS_OP_OPT_TYPE, (uint8_t)so->options);
    offs[i] = tend(&f);
  }
  size_t ops = vec_refs(&f, offs, (size_t)no);
  int32_t io = g->input;
  size_t sin = vec_i32(&f, &io, 1);
  io = g->output;
  size_t sout = vec_i32(&f, &io, 1);
  size_t sgname = str(&f, "main");
  tstart(&f);
  f_ref(&f, NAS_TFS_SG_TENSORS, tensors), f_ref(&f, NAS_TFS_SG_INPUTS, sin), f_ref(&f, NAS_TFS_SG_OUTPUTS, sout);
  f_ref(&f, NAS_TFS_SG_OPERATORS, ops), f_ref(&f, NAS_TFS_SG_NAME, sgname);
  offs[0] = tend(&f);
  size_t subgraphs = vec_refs(&f, offs, 1);
  /* operator codes */
  for (int k = 0; k < ncodes; k++) {
    tstart(&f);
    f_i32(&f, NAS_TFS_OC_BUILTIN, codes[k]);
    const nas_tfs_op *so = nas_tfs_op_find(codes[k]);
    f_i32(&f, NAS_TFS_OC_VERSION, so ? so->version : 1);
    f_u8(&f, NAS_TFS_OC_DEPRECATED_BUILTIN, (uint8_t)(codes[k] < 127 ? codes[k] : 127));
    offs[k] = tend(&f);
  }
  size_t opcodes = vec_refs(&f, offs, (size_t)ncodes);
  size_t desc = str(&f, description ? description : "nas int8 export");
  tstart(&f);
  f_i32(&f, NAS_TFS_MODEL_VERSION, 3);
  f_ref(&f, NAS_TFS_MODEL_OPCODES, opcodes), f_ref(&f, NAS_TFS_MODEL_SUBGRAPHS, subgraphs);
  f_ref(&f, NAS_TFS_MODEL_DESCRIPTION, desc), f_ref(&f, NAS_TFS_MODEL_BUFFERS, buffers);
  size_t model = tend(&f);
  /* root: u32 offset to the model, then the file identifier */
  prep(&f, f.minalign > 8 ? f.minalign : 8, 8);
  put_bytes(&f, "TFL3", 4);
  put_ref(&f, model);
  free(opc), free(tbuf), free(offs);
  if (f.oom) {
    free(f.b);
    return nas_errf(e, NAS_ENOMEM, "tflite export: out of memory");
  }
  uint8_t *out = nas_malloc(f.size);
  if (!out) {
    free(f.b);
    return nas_errf(e, NAS_ENOMEM, "tflite export: out of memory");
  }
  memcpy(out, at(&f, f.size), f.size);
  *buf = out, *len = f.size;
  free(f.b);
  return NAS_OK;
}

int nas_tflite_write(const nas_g8_graph *g, const char *description, const char *path,
                     nas_err *e) {
  uint8_t *b;
  size_t n;
  int rc = nas_tflite_write_mem(g, description, &b, &n, e);
  if (rc) return rc;
  FILE *fp = fopen(path, "wb");
  if (!fp) {
    free(b);
    return nas_errf(e, NAS_EIO, "%s: cannot open for writing: %s", path, strerror(errno));
  }
  size_t w = fwrite(b, 1, n, fp);
  int bad = w != n;
  if (fclose(fp)) bad = 1;
  free(b);
  if (bad) return nas_errf(e, NAS_EIO, "%s: write error", path);
  return NAS_OK;
}
