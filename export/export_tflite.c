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
 * tensorflow/lite/schema/schema.fbs (see also deploy/tflite_read.c). */
#include "export/export_tflite.h"
#include "core/alloc.h"

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

/* Field ids (schema.fbs). */
enum { M_VERSION = 0, M_OPCODES = 1, M_SUBGRAPHS = 2, M_DESCRIPTION = 3, M_BUFFERS = 4 };
enum { OC_DEPRECATED = 0, OC_VERSION = 2, OC_BUILTIN = 3 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3, SG_NAME = 4 };
enum { T_SHAPE = 0, T_TYPE = 1, T_BUFFER = 2, T_NAME = 3, T_QUANT = 4 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_QDIM = 6 };
enum { OP_OPCODE = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPT_TYPE = 3, OP_OPT = 4 };
enum { OPT_CONV = 1, OPT_DWCONV = 2, OPT_POOL = 5, OPT_FC = 8, OPT_SOFTMAX = 9, OPT_ADD = 11,
       OPT_RESHAPE = 17 };

/* Operator versions TFLite registers for int8 kernels of each builtin. */
static int op_version(int kind) {
  switch (kind) {
    case NAS_G8_CONV_2D: return 3;
    case NAS_G8_DEPTHWISE_CONV_2D: return 3;
    case NAS_G8_FULLY_CONNECTED: return 4;
    case NAS_G8_AVERAGE_POOL_2D: case NAS_G8_MAX_POOL_2D: case NAS_G8_ADD:
    case NAS_G8_SOFTMAX: case NAS_G8_QUANTIZE: return 2;
    default: return 1;
  }
}

static size_t write_options(fbb *f, const nas_g8_graph *g, const nas_g8_op *op, int *type) {
  *type = 0;
  switch (op->kind) {
    case NAS_G8_CONV_2D:
      *type = OPT_CONV;
      tstart(f);
      f_i32(f, 1, op->stride_w), f_i32(f, 2, op->stride_h);
      f_i32(f, 4, op->dil_w), f_i32(f, 5, op->dil_h);
      f_u8(f, 0, (uint8_t)op->padding), f_u8(f, 3, (uint8_t)op->act);
      return tend(f);
    case NAS_G8_DEPTHWISE_CONV_2D:
      *type = OPT_DWCONV;
      tstart(f);
      f_i32(f, 1, op->stride_w), f_i32(f, 2, op->stride_h), f_i32(f, 3, op->depth_mult);
      f_i32(f, 5, op->dil_w), f_i32(f, 6, op->dil_h);
      f_u8(f, 0, (uint8_t)op->padding), f_u8(f, 4, (uint8_t)op->act);
      return tend(f);
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D:
      *type = OPT_POOL;
      tstart(f);
      f_i32(f, 1, op->stride_w), f_i32(f, 2, op->stride_h);
      f_i32(f, 3, op->filter_w), f_i32(f, 4, op->filter_h);
      f_u8(f, 0, (uint8_t)op->padding), f_u8(f, 5, (uint8_t)op->act);
      return tend(f);
    case NAS_G8_FULLY_CONNECTED:
      *type = OPT_FC;
      tstart(f);
      f_u8(f, 0, (uint8_t)op->act), f_u8(f, 1, 0);
      return tend(f);
    case NAS_G8_SOFTMAX:
      *type = OPT_SOFTMAX;
      tstart(f);
      f_f32(f, 0, op->beta);
      return tend(f);
    case NAS_G8_ADD:
      *type = OPT_ADD;
      tstart(f);
      f_u8(f, 0, (uint8_t)op->act);
      return tend(f);
    case NAS_G8_RESHAPE: {
      *type = OPT_RESHAPE;
      const nas_g8_tensor *y = &g->tensors[op->out];
      int32_t d[NAS_G8_MAXDIM];
      size_t nd = y->ndim > 0 && y->ndim <= NAS_G8_MAXDIM ? (size_t)y->ndim : 0;
      for (size_t k = 0; k < nd; k++) d[k] = y->dims[k];
      size_t v = vec_i32(f, d, nd);
      tstart(f);
      f_ref(f, 0, v);
      return tend(f);
    }
    default: return 0;
  }
}

int nas_tflite_write_mem(const nas_g8_graph *g, const char *description, uint8_t **buf,
                         size_t *len, nas_err *e) {
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
    if (k == 64) k = 63; /* cannot happen: at most 9 kinds pass validation */
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
    } else {
      data = vec_raw(&f, t->data, t->bytes, 1, 16);
    }
    tstart(&f);
    f_ref(&f, 0, data);
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
      f_ref(&f, Q_SCALE, sc), f_ref(&f, Q_ZERO_POINT, zp);
      if (t->nq > 1 || t->qdim) f_i32(&f, Q_QDIM, t->qdim);
      q = tend(&f);
    }
    int32_t d[NAS_G8_MAXDIM];
    size_t nd = t->ndim > 0 && t->ndim <= NAS_G8_MAXDIM ? (size_t)t->ndim : 0;
    for (size_t k = 0; k < nd; k++) d[k] = t->dims[k];
    size_t shape = vec_i32(&f, d, nd);
    size_t name = str(&f, t->name ? t->name : "");
    tstart(&f);
    f_ref(&f, T_SHAPE, shape);
    f_i32(&f, T_BUFFER, tbuf[i]);
    f_ref(&f, T_NAME, name);
    if (q) f_ref(&f, T_QUANT, q);
    f_u8(&f, T_TYPE, (uint8_t)t->type);
    offs[i] = tend(&f);
  }
  size_t tensors = vec_refs(&f, offs, (size_t)nt);
  /* operators */
  for (int i = 0; i < no; i++) {
    const nas_g8_op *op = &g->ops[i];
    int ty;
    size_t opt = write_options(&f, g, op, &ty);
    size_t ins = vec_i32(&f, op->in, op->nin > 0 && op->nin <= NAS_G8_MAXIN ? (size_t)op->nin : 0);
    int32_t o = op->out;
    size_t outs = vec_i32(&f, &o, 1);
    tstart(&f);
    f_i32(&f, OP_OPCODE, opc[i]);
    f_ref(&f, OP_INPUTS, ins), f_ref(&f, OP_OUTPUTS, outs);
    if (opt) f_ref(&f, OP_OPT, opt), f_u8(&f, OP_OPT_TYPE, (uint8_t)ty);
    offs[i] = tend(&f);
  }
  size_t ops = vec_refs(&f, offs, (size_t)no);
  int32_t io = g->input;
  size_t sin = vec_i32(&f, &io, 1);
  io = g->output;
  size_t sout = vec_i32(&f, &io, 1);
  size_t sgname = str(&f, "main");
  tstart(&f);
  f_ref(&f, SG_TENSORS, tensors), f_ref(&f, SG_INPUTS, sin), f_ref(&f, SG_OUTPUTS, sout);
  f_ref(&f, SG_OPERATORS, ops), f_ref(&f, SG_NAME, sgname);
  offs[0] = tend(&f);
  size_t subgraphs = vec_refs(&f, offs, 1);
  /* operator codes */
  for (int k = 0; k < ncodes; k++) {
    tstart(&f);
    f_i32(&f, OC_BUILTIN, codes[k]);
    f_i32(&f, OC_VERSION, op_version(codes[k]));
    f_u8(&f, OC_DEPRECATED, (uint8_t)(codes[k] < 127 ? codes[k] : 127));
    offs[k] = tend(&f);
  }
  size_t opcodes = vec_refs(&f, offs, (size_t)ncodes);
  size_t desc = str(&f, description ? description : "nas int8 export");
  tstart(&f);
  f_i32(&f, M_VERSION, 3);
  f_ref(&f, M_OPCODES, opcodes), f_ref(&f, M_SUBGRAPHS, subgraphs);
  f_ref(&f, M_DESCRIPTION, desc), f_ref(&f, M_BUFFERS, buffers);
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
