/* deploy/tflite_read.c: a hand-written reader of TFLite flatbuffers (schema v3) into the int8
 * graph. No flatbuffers library: every offset, vtable, vector length and string is checked
 * against the buffer size before it is read, and all reads are byte-wise little-endian, so a
 * malformed, truncated or hostile file gives a one-line error, never an out-of-bounds read.
 *
 * Flatbuffer layout used: the root is a u32 offset to a table; a table starts with an i32
 * "soffset" (vtable = table - soffset); a vtable is u16 vtable_size, u16 table_size, then one
 * u16 per field (offset of the field inside the table, 0 = absent). Reference fields (tables,
 * vectors, strings) hold a u32 offset relative to the field itself; vectors and strings start
 * with a u32 element count. Field ids and options tables: deploy/tflite_schema.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/graph8.h"
#include "deploy/tflite_schema.h"
#include "core/alloc.h"

typedef struct rd {
  int rank0;          /* rank of the operator being read's first input (negative axes) */
  const uint8_t *p;   /* file bytes */
  size_t n;           /* file size */
  const char *file;   /* for messages */
  nas_err *e;         /* error sink */
  char where[128];    /* "tensor 5", "operator 3", ... */
} rd;

typedef struct tab {
  size_t pos;     /* table start */
  size_t vt;      /* vtable start */
  unsigned nvt;   /* vtable size in bytes */
  unsigned ntab;  /* table size in bytes */
} tab;

static int bad(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(rd *r, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (r->where[0])
    return nas_errf(r->e, NAS_EFORMAT, "%s: %s: malformed flatbuffer: %s", r->file, r->where, msg);
  return nas_errf(r->e, NAS_EFORMAT, "%s: malformed flatbuffer: %s", r->file, msg);
}

static int unsup(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int unsup(rd *r, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return nas_errf(r->e, NAS_EINVAL, "%s: %s", r->file, msg);
}

static uint32_t u32at(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static unsigned u16at(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* Opens the table at pos. */
static int tab_open(rd *r, size_t pos, tab *t) {
  if (pos > r->n || r->n - pos < 4) return bad(r, "table offset %zu outside the file", pos);
  int32_t so = (int32_t)u32at(r->p + pos);
  int64_t vt = (int64_t)pos - so;
  if (vt < 0 || (uint64_t)vt > r->n - 4) return bad(r, "vtable offset outside the file");
  t->pos = pos, t->vt = (size_t)vt;
  t->nvt = u16at(r->p + t->vt), t->ntab = u16at(r->p + t->vt + 2);
  if (t->nvt < 4 || t->nvt % 2 || t->vt + t->nvt > r->n) return bad(r, "bad vtable size %u", t->nvt);
  if (t->ntab < 4 || t->pos + t->ntab > r->n) return bad(r, "bad table size %u", t->ntab);
  return NAS_OK;
}

/* Position of field id (size bytes) or 0 when absent; -1 on a malformed field. */
static int64_t tab_field(rd *r, const tab *t, int id, unsigned size) {
  unsigned slot = 4 + 2 * (unsigned)id;
  if (slot + 2 > t->nvt) return 0;
  unsigned off = u16at(r->p + t->vt + slot);
  if (!off) return 0;
  if (off < 4 || off + size > t->ntab) {
    bad(r, "field %d at offset %u outside its %u-byte table", id, off, t->ntab);
    return -1;
  }
  return (int64_t)(t->pos + off);
}

static int get_u8(rd *r, const tab *t, int id, int def, int *out) {
  int64_t f = tab_field(r, t, id, 1);
  if (f < 0) return NAS_EFORMAT;
  *out = f ? r->p[f] : def;
  return NAS_OK;
}
static int get_i8(rd *r, const tab *t, int id, int def, int *out) {
  int64_t f = tab_field(r, t, id, 1);
  if (f < 0) return NAS_EFORMAT;
  *out = f ? (int)(int8_t)r->p[f] : def;
  return NAS_OK;
}
static int get_i32(rd *r, const tab *t, int id, int64_t def, int64_t *out) {
  int64_t f = tab_field(r, t, id, 4);
  if (f < 0) return NAS_EFORMAT;
  *out = f ? (int64_t)(int32_t)u32at(r->p + f) : def;
  return NAS_OK;
}
static int get_u32(rd *r, const tab *t, int id, int64_t def, int64_t *out) {
  int64_t f = tab_field(r, t, id, 4);
  if (f < 0) return NAS_EFORMAT;
  *out = f ? (int64_t)u32at(r->p + f) : def;
  return NAS_OK;
}
static int get_f32(rd *r, const tab *t, int id, float def, float *out) {
  int64_t f = tab_field(r, t, id, 4);
  if (f < 0) return NAS_EFORMAT;
  if (!f) {
    *out = def;
    return NAS_OK;
  }
  uint32_t u = u32at(r->p + f);
  memcpy(out, &u, 4);
  return NAS_OK;
}

/* Follows a reference field; *pos = 0 when absent. */
static int get_ref(rd *r, const tab *t, int id, size_t *pos) {
  int64_t f = tab_field(r, t, id, 4);
  if (f < 0) return NAS_EFORMAT;
  if (!f) {
    *pos = 0;
    return NAS_OK;
  }
  uint64_t target = (uint64_t)f + u32at(r->p + f);
  if (target >= r->n) return bad(r, "field %d points outside the file", id);
  *pos = (size_t)target;
  return NAS_OK;
}

/* A vector of elem-byte elements: *start = first element, *len = count (0/0 when absent). */
static int get_vec(rd *r, const tab *t, int id, unsigned elem, size_t *start, uint32_t *len) {
  size_t pos = 0;
  int rc = get_ref(r, t, id, &pos);
  if (rc) return rc;
  *start = 0, *len = 0;
  if (!pos) return NAS_OK;
  if (r->n - pos < 4) return bad(r, "vector (field %d) header outside the file", id);
  uint32_t n = u32at(r->p + pos);
  if ((uint64_t)n * elem > r->n - pos - 4)
    return bad(r, "vector (field %d) of %u elements runs past the end of the file", id, n);
  *start = pos + 4, *len = n;
  return NAS_OK;
}

/* Element k of a vector of tables. */
static int vec_table(rd *r, size_t start, uint32_t k, tab *t) {
  size_t f = start + 4 * (size_t)k;
  uint64_t target = (uint64_t)f + u32at(r->p + f);
  if (target >= r->n) return bad(r, "table %u of a vector points outside the file", k);
  return tab_open(r, (size_t)target, t);
}

/* A string field copied to a fresh NUL-terminated buffer ("" when absent). */
static int get_str(rd *r, const tab *t, int id, char **out) {
  size_t s;
  uint32_t len;
  *out = NULL;
  int rc = get_vec(r, t, id, 1, &s, &len);
  if (rc) return rc;
  if (len > 4096) return bad(r, "string of %u bytes", len);
  char *c = nas_malloc((size_t)len + 1);
  if (!c) return nas_errf(r->e, NAS_ENOMEM, "out of memory");
  if (len) memcpy(c, r->p + s, len);
  c[len] = '\0';
  for (uint32_t i = 0; i < len; i++)
    if ((unsigned char)c[i] < 32 || c[i] == 127) c[i] = '?'; /* keep messages one line */
  *out = c;
  return NAS_OK;
}

/* ---- tensors --------------------------------------------------------------------------- */

static const char *type_name(int ty) {
  static const char *const names[] = {"FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING",
                                      "BOOL", "INT16", "COMPLEX64", "INT8", "FLOAT64"};
  return ty >= 0 && ty < (int)(sizeof names / sizeof names[0]) ? names[ty] : "unknown type";
}

static int read_tensor(rd *r, const tab *t, int idx, size_t bufs, uint32_t nbufs,
                       nas_g8_tensor *x) {
  int rc;
  snprintf(r->where, sizeof r->where, "tensor %d", idx);
  if ((rc = get_str(r, t, NAS_TFS_T_NAME, &x->name))) return rc;
  int ty;
  if ((rc = get_i8(r, t, NAS_TFS_T_TYPE, 0, &ty))) return rc;
  size_t s;
  uint32_t nd;
  if ((rc = get_vec(r, t, NAS_TFS_T_SHAPE, 4, &s, &nd))) return rc;
  if (nd > NAS_G8_MAXDIM)
    return unsup(r, "tensor %d '%s': %u dimensions (at most %d)", idx, x->name, nd, NAS_G8_MAXDIM);
  x->ndim = (int)nd;
  uint64_t numel = 1;
  for (uint32_t i = 0; i < nd; i++) {
    int32_t d = (int32_t)u32at(r->p + s + 4 * i);
    if (d < 0 || d > (1 << 24))
      return unsup(r, "tensor %d '%s': dimension %u is %d", idx, x->name, i, (int)d);
    x->dims[i] = d;
    numel *= (uint64_t)d;
    if (numel > (1u << 28)) return unsup(r, "tensor %d '%s': too many elements", idx, x->name);
  }
  size_t sp;
  if ((rc = get_ref(r, t, NAS_TFS_T_SPARSITY, &sp))) return rc;
  if (sp) return unsup(r, "tensor %d '%s': sparse tensors are not supported", idx, x->name);
  if (ty == NAS_G8_FLOAT32 && numel != 0)
    return unsup(r, "tensor %d '%s': float tensors are not supported (only the LSTM's empty "
                 "placeholders)", idx, x->name);
  if (ty != NAS_G8_INT8 && ty != NAS_G8_INT32 && ty != NAS_G8_INT16 && ty != NAS_G8_FLOAT32)
    return unsup(r, "tensor %d '%s': type %s is not supported (int8, int16, int32)", idx, x->name, type_name(ty));
  x->type = ty;
  int var;
  if ((rc = get_u8(r, t, NAS_TFS_T_IS_VARIABLE, 0, &var))) return rc;
  x->variable = var != 0;
  size_t esz = ty == NAS_G8_INT8 ? 1 : ty == NAS_G8_INT16 ? 2 : 4;
  x->bytes = (size_t)numel * esz;
  /* Buffer: index 0 (or an empty buffer) means no constant data. */
  int64_t bi;
  if ((rc = get_u32(r, t, NAS_TFS_T_BUFFER, 0, &bi))) return rc;
  if (bi >= nbufs && bi != 0) return bad(r, "buffer index %lld out of range (%u buffers)", (long long)bi, nbufs);
  if (bi > 0) {
    tab bt;
    snprintf(r->where, sizeof r->where, "buffer %lld (tensor %d)", (long long)bi, idx);
    if ((rc = vec_table(r, bufs, (uint32_t)bi, &bt))) return rc;
    size_t ds;
    uint32_t dl;
    if ((rc = get_vec(r, &bt, NAS_TFS_BUF_DATA, 1, &ds, &dl))) return rc;
    snprintf(r->where, sizeof r->where, "tensor %d", idx);
    if (dl) {
      if (dl != x->bytes)
        return bad(r, "tensor '%s' has %zu bytes of shape but its buffer holds %u", x->name, x->bytes, dl);
      x->data = nas_malloc(x->bytes);
      if (!x->data) return nas_errf(r->e, NAS_ENOMEM, "out of memory");
      if (ty == NAS_G8_INT8) {
        memcpy(x->data, r->p + ds, dl);
      } else if (ty == NAS_G8_INT16) {
        int16_t *d = x->data;
        for (size_t i = 0; i < numel; i++)
          d[i] = (int16_t)(uint16_t)(r->p[ds + 2 * i] | (unsigned)r->p[ds + 2 * i + 1] << 8);
      } else {
        int32_t *d = x->data;
        for (size_t i = 0; i < numel; i++) d[i] = (int32_t)u32at(r->p + ds + 4 * i);
      }
    }
  }
  /* Quantisation. */
  size_t qp;
  if ((rc = get_ref(r, t, NAS_TFS_T_QUANT, &qp))) return rc;
  x->nq = 0;
  if (qp) {
    tab q;
    if ((rc = tab_open(r, qp, &q))) return rc;
    size_t ss, zs;
    uint32_t ns, nz;
    int dt;
    int64_t qd;
    if ((rc = get_vec(r, &q, NAS_TFS_Q_SCALE, 4, &ss, &ns)) || (rc = get_vec(r, &q, NAS_TFS_Q_ZERO_POINT, 8, &zs, &nz)) ||
        (rc = get_u8(r, &q, NAS_TFS_Q_DETAILS_TYPE, 0, &dt)) || (rc = get_i32(r, &q, NAS_TFS_Q_QDIM, 0, &qd)))
      return rc;
    if (dt) return unsup(r, "tensor %d '%s': custom quantisation is not supported", idx, x->name);
    if (ns) {
      if (nz != ns && nz != 1)
        return unsup(r, "tensor %d '%s': %u scales but %u zero points", idx, x->name, ns, nz);
      if (ns > 1 && (qd < 0 || qd >= x->ndim || (uint32_t)x->dims[qd] != ns))
        return unsup(r, "tensor %d '%s': %u scales do not match quantized_dimension %lld", idx, x->name, ns, (long long)qd);
      x->scale = nas_malloc(sizeof *x->scale * ns);
      x->zero_point = nas_malloc(sizeof *x->zero_point * ns);
      if (!x->scale || !x->zero_point) return nas_errf(r->e, NAS_ENOMEM, "out of memory");
      for (uint32_t i = 0; i < ns; i++) {
        uint32_t u = u32at(r->p + ss + 4 * i);
        memcpy(&x->scale[i], &u, 4);
        uint64_t z = (uint64_t)u32at(r->p + zs + 8 * (nz == 1 ? 0 : i)) |
                     (uint64_t)u32at(r->p + zs + 8 * (nz == 1 ? 0 : i) + 4) << 32;
        int64_t zi = (int64_t)z;
        if (!(x->scale[i] > 0) || !isfinite(x->scale[i]))
          return unsup(r, "tensor %d '%s': scale %g is not a positive number", idx, x->name, (double)x->scale[i]);
        int64_t lo = ty == NAS_G8_INT8 ? -128 : ty == NAS_G8_INT16 ? -32768 : INT32_MIN;
        int64_t hi = ty == NAS_G8_INT8 ? 127 : ty == NAS_G8_INT16 ? 32767 : INT32_MAX;
        if (zi < lo || zi > hi)
          return unsup(r, "tensor %d '%s': zero point %lld out of range", idx, x->name, (long long)zi);
        x->zero_point[i] = (int32_t)zi;
      }
      x->nq = (int)ns;
      x->qdim = (int)qd;
    }
  }
  if (ty == NAS_G8_INT8 && x->nq == 0)
    return unsup(r, "tensor %d '%s': int8 tensor without quantisation parameters", idx, x->name);
  return NAS_OK;
}

/* ---- operators ------------------------------------------------------------------------- */

typedef struct opcode {
  int code;       /* builtin code */
  char *custom;   /* custom_code or NULL */
} opcode;

static const char *opname(const opcode *oc, char *buf, size_t cap) {
  if (oc->code == 32 && oc->custom) {
    snprintf(buf, cap, "CUSTOM '%s'", oc->custom);
    return buf;
  }
  const char *n = nas_g8_op_name(oc->code);
  if (n) return n;
  snprintf(buf, cap, "builtin %d", oc->code);
  return buf;
}

/* Reads operator op's options table as its schema entry describes it (field by field into
 * the operator's members); defaults for an operator without options: strides, dilations,
 * filter and depth multiplier 1, beta 1. */
static int read_options(rd *r, const tab *ot, int idx, const char *name, const nas_tfs_op *so,
                        nas_g8_op *op) {
  int rc, ty;
  size_t pos = 0;
  op->stride_w = op->stride_h = op->dil_w = op->dil_h = 1;
  op->filter_w = op->filter_h = 1;
  op->depth_mult = 1;
  op->beta = 1.0f;
  if ((rc = get_u8(r, ot, NAS_TFS_OP_OPT_TYPE, 0, &ty)) || (rc = get_ref(r, ot, NAS_TFS_OP_OPT, &pos))) return rc;
  if (!pos || so->options == NAS_TFS_OPT_NONE) {
    if (so->required) return unsup(r, "operator %d (%s): missing options", idx, name);
    return NAS_OK;
  }
  if (ty != so->options) return bad(r, "options of type %d, expected %d", ty, so->options);
  tab t;
  if ((rc = tab_open(r, pos, &t))) return rc;
  int out_of_range = 0;
  const char *nonzero = NULL;
  for (int k = 0; k < so->nfields; k++) {
    const nas_tfs_field *f = &so->fields[k];
    char *m = (char *)op + f->member;
    int b;
    int64_t v;
    switch (f->type) {
      case NAS_TFS_BYTE:
        if ((rc = get_i8(r, &t, f->id, f->def, &b))) return rc;
        *(int *)m = b;
        break;
      case NAS_TFS_ZERO:
        if ((rc = get_i8(r, &t, f->id, 0, &b))) return rc;
        if (b != 0) nonzero = f->name;
        break;
      case NAS_TFS_I32:
        if ((rc = get_i32(r, &t, f->id, f->def, &v))) return rc;
        *(int *)m = (int)v;
        if (f->bounded && (v < 0 || v > 4096)) out_of_range = 1;
        break;
      case NAS_TFS_F32:
        if ((rc = get_f32(r, &t, f->id, (float)f->def, (float *)m))) return rc;
        break;
      default: break; /* NAS_TFS_SHAPE: the output tensor has the shape */
    }
  }
  if (nonzero && so->code == NAS_G8_FULLY_CONNECTED)
    return unsup(r, "operator %d (%s): shuffled weights format is not supported", idx, name);
  if (nonzero) return unsup(r, "operator %d (%s): option %s is not supported", idx, name, nonzero);
  if (so->code == NAS_G8_CONCATENATION && op->axis < 0 && op->nin > 0 && op->in[0] >= 0)
    op->axis += r->rank0; /* a negative axis counts from the end */
  if (so->code == NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM) {
    if (op->act != NAS_G8_ACT_TANH)
      return unsup(r, "operator %d (%s): activation %d is not supported (TANH)", idx, name, op->act);
    return NAS_OK;
  }
  if (so->options == NAS_TFS_OPT_SOFTMAX && (!(op->beta > 0) || !isfinite(op->beta)))
    return unsup(r, "operator %d (%s): beta %g is not supported", idx, name, (double)op->beta);
  if (op->padding != NAS_G8_PAD_SAME && op->padding != NAS_G8_PAD_VALID)
    return unsup(r, "operator %d (%s): unknown padding %d", idx, name, op->padding);
  if (op->act != NAS_G8_ACT_NONE && op->act != NAS_G8_ACT_RELU && op->act != NAS_G8_ACT_RELU6 &&
      op->act != NAS_G8_ACT_RELU_N1_TO_1)
    return unsup(r, "operator %d (%s): fused activation %d is not supported", idx, name, op->act);
  if (out_of_range)
    return unsup(r, "operator %d (%s): stride, filter or dilation out of range", idx, name);
  return NAS_OK;
}

/* Reads a vector of int32 tensor indices. */
static int read_idx(rd *r, const tab *t, int id, int ntensors, int allow_neg, int *out, int max,
                    int *n) {
  size_t s;
  uint32_t len;
  int rc = get_vec(r, t, id, 4, &s, &len);
  if (rc) return rc;
  if ((int64_t)len > max) return unsup(r, "%s: %u tensors (at most %d)", r->where, len, max);
  for (uint32_t i = 0; i < len; i++) {
    int32_t v = (int32_t)u32at(r->p + s + 4 * i);
    if (v >= ntensors || v < (allow_neg ? -1 : 0))
      return bad(r, "tensor index %d out of range (%d tensors)", (int)v, ntensors);
    out[i] = v;
  }
  *n = (int)len;
  return NAS_OK;
}

static int parse(rd *r, nas_g8_graph *g, opcode **ocs_out, uint32_t *nocs_out) {
  int rc;
  if (r->n < 8) return bad(r, "%zu bytes is too short", r->n);
  if (memcmp(r->p + 4, "TFL3", 4))
    return nas_errf(r->e, NAS_EFORMAT, "%s: not a TFLite model (file identifier is not TFL3)", r->file);
  tab model;
  snprintf(r->where, sizeof r->where, "model");
  if ((rc = tab_open(r, u32at(r->p), &model))) return rc;
  size_t ocs, sgs, bufs;
  uint32_t nocs, nsgs, nbufs;
  if ((rc = get_vec(r, &model, NAS_TFS_MODEL_OPCODES, 4, &ocs, &nocs)) ||
      (rc = get_vec(r, &model, NAS_TFS_MODEL_SUBGRAPHS, 4, &sgs, &nsgs)) ||
      (rc = get_vec(r, &model, NAS_TFS_MODEL_BUFFERS, 4, &bufs, &nbufs)))
    return rc;
  if (nsgs < 1) return bad(r, "no subgraphs");
  /* Operator codes. */
  opcode *oc = nas_calloc(nocs + 1, sizeof *oc);
  if (!oc) return nas_errf(r->e, NAS_ENOMEM, "out of memory");
  *ocs_out = oc, *nocs_out = nocs;
  for (uint32_t i = 0; i < nocs; i++) {
    tab t;
    snprintf(r->where, sizeof r->where, "operator code %u", i);
    int dep;
    int64_t bc;
    if ((rc = vec_table(r, ocs, i, &t)) || (rc = get_i8(r, &t, NAS_TFS_OC_DEPRECATED_BUILTIN, 0, &dep)) ||
        (rc = get_i32(r, &t, NAS_TFS_OC_BUILTIN, 0, &bc)) || (rc = get_str(r, &t, NAS_TFS_OC_CUSTOM, &oc[i].custom)))
      return rc;
    /* TFLite: the larger of the two fields (deprecated_builtin_code stops at 127). */
    oc[i].code = (int)(bc > dep ? bc : dep);
    if (!oc[i].custom[0]) free(oc[i].custom), oc[i].custom = NULL;
  }
  tab sg;
  snprintf(r->where, sizeof r->where, "subgraph 0");
  if ((rc = vec_table(r, sgs, 0, &sg))) return rc;
  size_t ts, os;
  uint32_t nt, no;
  if ((rc = get_vec(r, &sg, NAS_TFS_SG_TENSORS, 4, &ts, &nt)) || (rc = get_vec(r, &sg, NAS_TFS_SG_OPERATORS, 4, &os, &no)))
    return rc;
  if (nt > 100000 || no > 100000) return unsup(r, "%u tensors, %u operators: too many", nt, no);
  g->tensors = nas_calloc(nt + 1, sizeof *g->tensors);
  g->ops = nas_calloc(no + 1, sizeof *g->ops);
  if (!g->tensors || !g->ops) return nas_errf(r->e, NAS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < nt; i++) {
    tab t;
    snprintf(r->where, sizeof r->where, "tensor %u", i);
    g->ntensors = (int)i + 1;
    if ((rc = vec_table(r, ts, i, &t)) || (rc = read_tensor(r, &t, (int)i, bufs, nbufs, &g->tensors[i])))
      return rc;
  }
  int io[8], nio;
  snprintf(r->where, sizeof r->where, "subgraph 0 inputs");
  if ((rc = read_idx(r, &sg, NAS_TFS_SG_INPUTS, (int)nt, 0, io, 8, &nio))) return rc;
  if (nio != 1) return unsup(r, "the graph has %d inputs (exactly 1 is supported)", nio);
  g->input = io[0];
  snprintf(r->where, sizeof r->where, "subgraph 0 outputs");
  if ((rc = read_idx(r, &sg, NAS_TFS_SG_OUTPUTS, (int)nt, 0, io, 8, &nio))) return rc;
  if (nio != 1) return unsup(r, "the graph has %d outputs (exactly 1 is supported)", nio);
  g->output = io[0];
  for (uint32_t i = 0; i < no; i++) {
    tab t;
    nas_g8_op *op = &g->ops[i];
    snprintf(r->where, sizeof r->where, "operator %u", i);
    int64_t oci;
    if ((rc = vec_table(r, os, i, &t)) || (rc = get_u32(r, &t, NAS_TFS_OP_OPCODE, 0, &oci))) return rc;
    if (oci >= nocs) return bad(r, "opcode index %lld out of range (%u codes)", (long long)oci, nocs);
    char nb[128];
    const char *name = opname(&oc[oci], nb, sizeof nb);
    const nas_tfs_op *so = nas_tfs_op_find(oc[oci].code);
    if (!so || oc[oci].custom) return unsup(r, "operator %u: unsupported op %s", i, name);
    op->kind = oc[oci].code;
    int outs[4], nouts;
    if ((rc = read_idx(r, &t, NAS_TFS_OP_INPUTS, (int)nt, 1, op->in, NAS_G8_MAXIN, &op->nin)) ||
        (rc = read_idx(r, &t, NAS_TFS_OP_OUTPUTS, (int)nt, 0, outs, 4, &nouts)))
      return rc;
    if (nouts != 1) return unsup(r, "operator %u (%s): %d outputs (1 expected)", i, name, nouts);
    op->out = outs[0];
    if (op->kind == NAS_G8_RESHAPE && op->nin > 1) op->nin = 1; /* shape tensor: not needed */
    r->rank0 = op->nin > 0 && op->in[0] >= 0 ? g->tensors[op->in[0]].ndim : 0;
    size_t imp;
    if ((rc = get_ref(r, &t, NAS_TFS_OP_INTERMEDIATES, &imp))) return rc;
    if (imp && (rc = read_idx(r, &t, NAS_TFS_OP_INTERMEDIATES, (int)nt, 0, op->im, NAS_G8_MAXIM, &op->nim)))
      return rc;
    if ((rc = read_options(r, &t, (int)i, name, so, op))) return rc;
    g->nops = (int)i + 1;
  }
  r->where[0] = '\0';
  /* Softmax output must use TFLite's fixed int8 convention. */
  for (int i = 0; i < g->nops; i++) {
    const nas_g8_op *op = &g->ops[i];
    const nas_g8_tensor *y = &g->tensors[op->out];
    if (op->kind == NAS_G8_SOFTMAX && y->nq >= 1 &&
        (y->zero_point[0] != -128 || y->scale[0] != 1.0f / 256))
      return unsup(r, "operator %d (SOFTMAX): output tensor '%s' must have scale 1/256 and zero point -128", i, y->name);
    if (op->kind == NAS_G8_QUANTIZE && g->tensors[op->in[0]].type != NAS_G8_INT8)
      return unsup(r, "operator %d (QUANTIZE): only int8 -> int8 requantisation is supported", i);
  }
  rc = nas_g8_validate(g, r->e);
  if (rc) nas_err_prefix(r->e, "%s", r->file);
  return rc;
}

int nas_tflite_parse(const uint8_t *buf, size_t n, const char *name, nas_g8_graph *g, nas_err *e) {
  memset(g, 0, sizeof *g);
  rd r = {.p = buf, .n = n, .file = name ? name : "model", .e = e};
  opcode *ocs = NULL;
  uint32_t nocs = 0;
  int rc = parse(&r, g, &ocs, &nocs);
  if (ocs)
    for (uint32_t i = 0; i < nocs; i++) free(ocs[i].custom);
  free(ocs);
  if (rc) nas_g8_graph_free(g);
  return rc;
}

int nas_tflite_read(const char *path, nas_g8_graph *g, nas_err *e) {
  memset(g, 0, sizeof *g);
  FILE *f = fopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: %s", path, strerror(errno));
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      if (cap > ((size_t)1 << 31)) {
        free(buf), fclose(f);
        return nas_errf(e, NAS_EFORMAT, "%s: file larger than 2 GiB", path);
      }
      cap = cap ? cap * 2 : 1 << 16;
      uint8_t *nb = nas_realloc(buf, cap);
      if (!nb) {
        free(buf), fclose(f);
        return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
      }
      buf = nb;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return nas_errf(e, NAS_EIO, "%s: read error", path);
  }
  int rc = nas_tflite_parse(buf, n, path, g, e);
  free(buf);
  return rc;
}
