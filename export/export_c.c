/* export/export_c.c: C source export of an int8 graph (see export_c.h). The graph is planned
 * and prepared exactly as the host runtime prepares it (nas_g8_plan_build, nas_g8_prep_build);
 * this file only prints: the constant tensors the device reads, each operator's prepared
 * runtime struct as a C initialiser (a pointer field names the constant tensor or the prepared
 * array it points to; data a fast kernel replaced, such as a repacked filter's original, is not
 * printed), the operator table and the model, then copies the runtime files embedded in the
 * library. nas_c_export_data_bytes sums what the model source puts in flash. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "export/export_c.h"

/* ---- printing ----------------------------------------------------------------------------- */

/* The runtime's kind and eval names, from its operator list. */
static const char *const KIND[NASRT_NKINDS] = {
#define KIND_NAME(K, k, T) #K,
    NASRT_OPS(KIND_NAME)
#undef KIND_NAME
};
static const char *const EVAL[NASRT_NKINDS] = {
#define EVAL_NAME(K, k, T) #k,
    NASRT_OPS(EVAL_NAME)
#undef EVAL_NAME
};

static void put_i32(FILE *f, int32_t v) {
  if (v == INT32_MIN) fputs("(-2147483647 - 1)", f);
  else fprintf(f, "%ld", (long)v);
}

static void emit_i32_array(FILE *f, const char *decl, const int32_t *v, size_t n) {
  fprintf(f, "static const int32_t %s[%zu] = {", decl, n);
  for (size_t i = 0; i < n; i++) {
    if (i % 10 == 0) fputs("\n  ", f);
    put_i32(f, v[i]);
    fputs(i + 1 < n ? ", " : "", f);
  }
  fputs("\n};\n", f);
}

static void emit_i8_array(FILE *f, const char *decl, const int8_t *v, size_t n) {
  fprintf(f, "static const int8_t %s[%zu] = {", decl, n);
  for (size_t i = 0; i < n; i++) {
    if (i % 20 == 0) fputs("\n  ", f);
    fprintf(f, "%d", v[i]);
    fputs(i + 1 < n ? ", " : "", f);
  }
  fputs("\n};\n", f);
}

static void emit_u8_array(FILE *f, const char *decl, const uint8_t *v, size_t n) {
  fprintf(f, "static const uint8_t %s[%zu] = {", decl, n);
  for (size_t i = 0; i < n; i++) {
    if (i % 20 == 0) fputs("\n  ", f);
    fprintf(f, "%u", v[i]);
    fputs(i + 1 < n ? ", " : "", f);
  }
  fputs("\n};\n", f);
}

static void emit_shape_comment(FILE *f, const nas_g8_tensor *t, int idx) {
  fprintf(f, "/* tensor %d \"", idx);
  for (const char *s = t->name; s && *s; s++)
    if (*s != '*' && *s != '/' && (unsigned char)*s >= 32 && (unsigned char)*s < 127) fputc(*s, f);
  fputs("\" [", f);
  for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%d", d ? "," : "", t->dims[d]);
  fputs("] */\n", f);
}

static int valid_name(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 64 || s[0] == '.') return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return 0;
  return 1;
}

static void fmt_float(char *buf, size_t n, float v) { snprintf(buf, n, "%.9ef", (double)v); }

static int emit_header(const nas_g8_graph *g, const nas_g8_plan *p, const char *name,
                       const char *id, const char *up, const char *dir, nas_err *e) {
  char file[300];
  snprintf(file, sizeof file, "%s.h", name);
  FILE *f;
  int rc = nas_file_create(dir, file, &f, e);
  if (rc != NAS_OK) return rc;
  const nas_g8_tensor *in = &g->tensors[g->input], *out = &g->tensors[g->output];
  char is[64], os[64];
  fmt_float(is, sizeof is, in->scale[0]);
  fmt_float(os, sizeof os, out->scale[0]);
  fprintf(f,
          "/* %s.h: int8 model exported by nas (C source export). %d operators, %d tensors.\n"
          " * Input: int8, real = %s_INPUT_SCALE * (q - %s_INPUT_ZERO_POINT); output likewise. */\n"
          "#ifndef %s_MODEL_H\n#define %s_MODEL_H\n\n#include <stdint.h>\n\n",
          name, g->nops, g->ntensors, up, up, up, up);
  fprintf(f, "#define %s_ARENA_BYTES %zu /* tensor arena, the memory planner's peak */\n", up,
          p->peak);
  fprintf(f, "#define %s_INPUT_SIZE %zu\n#define %s_OUTPUT_SIZE %zu\n", up, nas_g8_numel(in), up,
          nas_g8_numel(out));
  fprintf(f, "#define %s_INPUT_SCALE %s\n#define %s_INPUT_ZERO_POINT %ld\n", up, is, up,
          (long)in->zero_point[0]);
  fprintf(f, "#define %s_OUTPUT_SCALE %s\n#define %s_OUTPUT_ZERO_POINT %ld\n", up, os, up,
          (long)out->zero_point[0]);
  fprintf(f, "#define %s_INPUT_DIMS {", up);
  for (int d = 0; d < in->ndim; d++) fprintf(f, "%s%d", d ? ", " : "", in->dims[d]);
  fprintf(f, "}\n#define %s_OUTPUT_DIMS {", up);
  for (int d = 0; d < out->ndim; d++) fprintf(f, "%s%d", d ? ", " : "", out->dims[d]);
  fprintf(f,
          "}\n\n/* Runs the model on %s_INPUT_SIZE int8 values, writes %s_OUTPUT_SIZE; returns 0. "
          "*/\nint %s_invoke(const int8_t *in, int8_t *out);\n"
          "#ifndef %s_NO_MODEL_INVOKE\nint model_invoke(const int8_t *in, int8_t *out);\n#endif\n"
          "\n#endif\n",
          up, up, id, up);
  return nas_file_finish(dir, file, f, e);
}

/* Bytes of operator pp's repacked weights (wq) and folded biases (bq). */
static size_t wq_bytes(const nas_g8_prep_op *pp) {
  if (!pp->wq) return 0;
  return pp->rt_kind == NASRT_FULLY_CONNECTED
             ? (size_t)pp->rt.fc.co * (size_t)pp->rt.fc.d
             : (size_t)pp->rt.conv.co * (size_t)(pp->rt.conv.kh * pp->rt.conv.kw * pp->rt.conv.ci);
}
static size_t bq_bytes(const nas_g8_prep_op *pp) {
  if (!pp->bq) return 0;
  return 4 * (size_t)(pp->rt_kind == NASRT_FULLY_CONNECTED ? pp->rt.fc.co
                      : pp->rt_kind == NASRT_SPARSE         ? pp->rt.sparse.c.co
                                                            : pp->rt.conv.co);
}

/* The first operator j <= i of ops[] whose prepared wq (which = 0) or bq (which = 1) holds the
 * same bytes as operator i's: the C source prints such an array once (the recurrent
 * FULLY_CONNECTED of an unrolled GRU repeat one weight tensor at every step). */
static int twin_of(const nas_g8_prep_op *ops, int i, int which) {
  const size_t n = which ? bq_bytes(&ops[i]) : wq_bytes(&ops[i]);
  const void *a = which ? (const void *)ops[i].bq : (const void *)ops[i].wq;
  for (int j = 0; n && j < i; j++) {
    const size_t m = which ? bq_bytes(&ops[j]) : wq_bytes(&ops[j]);
    const void *b = which ? (const void *)ops[j].bq : (const void *)ops[j].wq;
    if (m == n && !memcmp(a, b, n)) return j;
  }
  return i;
}

/* The C name of a pointer the prepared operator i holds: a constant tensor of the graph or
 * one of the operator's own prepared arrays; NAS_EINVAL for anything else (a prepare step
 * whose data this printer does not know). */
static int ptr_name(char *buf, size_t n, const nas_g8_graph *g, const nas_g8_prep_op *pp, int i,
                    const void *ptr, nas_err *e) {
  if (!ptr) return snprintf(buf, n, "NULL"), NAS_OK;
  if (ptr == pp->mult) return snprintf(buf, n, "op%d_mult", i), NAS_OK;
  if (ptr == pp->shift) return snprintf(buf, n, "op%d_shift", i), NAS_OK;
  if (pp->rt_kind == NASRT_WINOGRAD_CONV_2D) {
    const nasrt_wino_p *c = &pp->rt.wino;
    const struct { const void *p; const char *name; } w[] = {
        {pp->wino_u, "u"},       {c->u_mult, "u_mult"}, {c->u_shift, "u_shift"},
        {c->m_mult, "m_mult"},   {c->m_shift, "m_shift"}, {c->o_mult, "o_mult"},
        {c->o_shift, "o_shift"}};
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++)
      if (w[k].p && ptr == w[k].p) return snprintf(buf, n, "op%d_%s", i, w[k].name), NAS_OK;
  }
  if (pp->ebias && ptr == pp->ebias) return snprintf(buf, n, "op%d_bias", i), NAS_OK;
  /* pp is &ops[i] of the prepared graph's operator array */
  if (pp->wq && ptr == pp->wq) return snprintf(buf, n, "op%d_wq", twin_of(pp - i, i, 0)), NAS_OK;
  if (pp->bq && ptr == pp->bq) return snprintf(buf, n, "op%d_bq", twin_of(pp - i, i, 1)), NAS_OK;
  if (pp->sp_mask && ptr == pp->sp_mask) return snprintf(buf, n, "op%d_mask", i), NAS_OK;
  if (pp->sp_values && ptr == pp->sp_values) return snprintf(buf, n, "op%d_values", i), NAS_OK;
  for (int t = 0; t < g->ntensors; t++)
    if (g->tensors[t].data == ptr) return snprintf(buf, n, "t%d", t), NAS_OK;
  for (int t = 0; t < g->ntensors; t++) { /* a pointer into a constant (a flex layer's At) */
    const char *d = g->tensors[t].data;
    if (d && (const char *)ptr > d && (const char *)ptr < d + g->tensors[t].bytes)
      return snprintf(buf, n, "t%d + %ld", t, (long)((const char *)ptr - d)), NAS_OK;
  }
  return nas_errf(e, NAS_EINVAL, "operator %d: C export: a prepared pointer refers to no "
                  "constant tensor", i);
}

/* A scalar field of a parameter struct, and a pointer field with what it points to. */
typedef struct ival { const char *n; int32_t v; } ival;
typedef struct pval { const char *n; const void *p; } pval;

/* `static const T op<i> = {...};` with designated initialisers: the pointer fields (each named
 * by ptr_name) on one line, then the scalars, wrapped before column 96; INT32_MIN spelt as an
 * int32 constant. */
static int emit_struct(FILE *f, const char *type, const nas_g8_graph *g, const nas_g8_prep_op *pp,
                       int i, const pval *ptr, int np, const ival *v, int nv, nas_err *e) {
  fprintf(f, "static const %s op%d = {", type, i);
  for (int k = 0; k < np; k++) {
    char nm[48];
    int rc = ptr_name(nm, sizeof nm, g, pp, i, ptr[k].p, e);
    if (rc) return rc;
    fprintf(f, "%s.%s = %s", k ? ", " : "\n    ", ptr[k].n, nm);
  }
  int col = 0;
  for (int k = 0; k < nv; k++) {
    char item[64];
    if (v[k].v == INT32_MIN) snprintf(item, sizeof item, ".%s = (-2147483647 - 1)", v[k].n);
    else snprintf(item, sizeof item, ".%s = %ld", v[k].n, (long)v[k].v);
    const int len = (int)strlen(item);
    if (k == 0 || col + len + 2 > 96) {
      fputs(k || np ? ",\n    " : "\n    ", f);
      col = 4;
    } else {
      fputs(", ", f);
      col += 2;
    }
    fputs(item, f);
    col += len;
  }
  fputs("};\n", f);
  return NAS_OK;
}

#define NV(a) (int)(sizeof(a) / sizeof(a)[0])
#define MAXPTR 12

/* The pointer fields of prepared operator pp as the device reads them: the data a fast kernel
 * replaces (the filter it repacked, the bias it folded) is not printed (NULL), so the model
 * carries each weight once. Returns the number of fields written to out[MAXPTR]. */
static int op_ptrs(const nas_g8_prep_op *pp, pval *out) {
  int n = 0;
  switch (pp->rt_kind) {
    case NASRT_CONV_2D:
    case NASRT_DEPTHWISE_CONV_2D: {
      const nasrt_conv_p *c = &pp->rt.conv;
      out[n++] = (pval){"filter", c->wq ? NULL : c->filter};
      out[n++] = (pval){"bias", c->bq ? NULL : c->bias};
      out[n++] = (pval){"mult", c->mult}, out[n++] = (pval){"shift", c->shift};
      out[n++] = (pval){"wq", c->wq}, out[n++] = (pval){"bq", c->bq};
      break;
    }
    case NASRT_FULLY_CONNECTED: {
      const nasrt_fc_p *c = &pp->rt.fc;
      out[n++] = (pval){"filter", c->wq ? NULL : c->filter};
      out[n++] = (pval){"bias", c->bq ? NULL : c->bias};
      out[n++] = (pval){"mult", c->mult}, out[n++] = (pval){"shift", c->shift};
      out[n++] = (pval){"wq", c->wq}, out[n++] = (pval){"bq", c->bq};
      break;
    }
    case NASRT_ADD:
    case NASRT_SUB:
      out[n++] = (pval){"a_data", pp->rt.add.a_data}, out[n++] = (pval){"b_data", pp->rt.add.b_data};
      break;
    case NASRT_MUL:
      out[n++] = (pval){"a_data", pp->rt.mul.a_data}, out[n++] = (pval){"b_data", pp->rt.mul.b_data};
      break;
    case NASRT_SPARSE: { /* the mask and values replace the dense filter (not printed) */
      const nasrt_sparse_p *s = &pp->rt.sparse;
      out[n++] = (pval){"mask", s->mask}, out[n++] = (pval){"values", s->values};
      out[n++] = (pval){"c.bias", s->c.bias}, out[n++] = (pval){"c.mult", s->c.mult};
      out[n++] = (pval){"c.shift", s->c.shift};
      break;
    }
    case NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM: {
      const nasrt_lstm_p *c = &pp->rt.lstm;
      out[n++] = (pval){"w_ii", c->w_ii}, out[n++] = (pval){"w_if", c->w_if};
      out[n++] = (pval){"w_ic", c->w_ic}, out[n++] = (pval){"w_io", c->w_io};
      out[n++] = (pval){"w_ri", c->w_ri}, out[n++] = (pval){"w_rf", c->w_rf};
      out[n++] = (pval){"w_rc", c->w_rc}, out[n++] = (pval){"w_ro", c->w_ro};
      out[n++] = (pval){"bias", c->bias}, out[n++] = (pval){"mult", c->mult};
      out[n++] = (pval){"shift", c->shift};
      break;
    }
    case NASRT_WINOGRAD_CONV_2D: { /* U replaces the spatial weights unless wt is set */
      const nasrt_wino_p *c = &pp->rt.wino;
      out[n++] = (pval){"u", c->u}, out[n++] = (pval){"wt", c->wt};
      out[n++] = (pval){"u_mult", c->u_mult}, out[n++] = (pval){"u_shift", c->u_shift};
      out[n++] = (pval){"bt", c->bt}, out[n++] = (pval){"at", c->at};
      out[n++] = (pval){"bias", c->bias};
      out[n++] = (pval){"m_mult", c->m_mult}, out[n++] = (pval){"m_shift", c->m_shift};
      out[n++] = (pval){"o_mult", c->o_mult}, out[n++] = (pval){"o_shift", c->o_shift};
      break;
    }
    default: break;
  }
  return n;
}

/* Marks in used[] the constant tensor that ptr points to or into (a flex layer's At is a row
 * of its tensor); a pointer to an operator's own prepared array marks nothing. */
static void mark_used(const nas_g8_graph *g, const void *ptr, unsigned char *used) {
  for (int t = 0; ptr && t < g->ntensors; t++) {
    const char *d = g->tensors[t].data;
    if (d && (const char *)ptr >= d && (const char *)ptr < d + g->tensors[t].bytes) used[t] = 1;
  }
}

/* Output channels of a prepared operator with per-channel multipliers (8 for an LSTM). */
static int op_co(const nas_g8_prep_op *pp) {
  switch (pp->rt_kind) {
    case NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM: return 8;
    case NASRT_FULLY_CONNECTED: return pp->rt.fc.co;
    case NASRT_SPARSE: return pp->rt.sparse.c.co;
    default: return pp->rt.conv.co;
  }
}

/* Multipliers (and shifts) the device reads: one when a fast kernel shares it (qstep 0); the
 * SPARSE kernel reads one per output channel. */
static int qcount(const nas_g8_prep_op *pp) {
  if (pp->rt_kind == NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM) return 8; /* one per gate product */
  if (pp->rt_kind == NASRT_SPARSE) return pp->rt.sparse.c.co;
  const int fc = pp->rt_kind == NASRT_FULLY_CONNECTED;
  const int co = fc ? pp->rt.fc.co : pp->rt.conv.co;
  const int shared = fc ? pp->rt.fc.bq && !pp->rt.fc.qstep : pp->rt.conv.bq && !pp->rt.conv.qstep;
  return shared ? 1 : co;
}

/* Emits the prepared arrays and the parameter struct `op<i>` of operator i. */
static int emit_op(FILE *f, const nas_g8_graph *g, const nas_g8_prep_op *pp, int i, nas_err *e) {
  const nas_g8_op *op = &g->ops[i];
  const char *nm = nas_g8_op_name(op->kind);
  fprintf(f, "/* op %d: %s, tensor %d -> %d */\n", i, nm ? nm : "?", op->in[0], op->out);
  if (pp->mult) {
    const int lstm = pp->rt_kind == NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM;
    const int co = op_co(pp);
    const int nq = qcount(pp);
    char name[32];
    snprintf(name, sizeof name, "op%d_mult", i);
    emit_i32_array(f, name, pp->mult, (size_t)nq);
    snprintf(name, sizeof name, "op%d_shift", i);
    emit_i8_array(f, name, pp->shift, (size_t)nq);
    if (lstm) {
      snprintf(name, sizeof name, "op%d_bias", i);
      emit_i32_array(f, name, pp->ebias, 8 * (size_t)pp->rt.lstm.h);
    }
    if (pp->bq && twin_of(pp - i, i, 1) == i) {
      snprintf(name, sizeof name, "op%d_bq", i);
      emit_i32_array(f, name, pp->bq, (size_t)co);
    }
    if (pp->wq && twin_of(pp - i, i, 0) == i) {
      snprintf(name, sizeof name, "op%d_wq", i);
      emit_i8_array(f, name, pp->wq, wq_bytes(pp));
    }
  }
  pval p[MAXPTR];
  const int np = op_ptrs(pp, p);
  switch (pp->rt_kind) {
    case NASRT_CONV_2D:
    case NASRT_DEPTHWISE_CONV_2D: {
      const nasrt_conv_p *c = &pp->rt.conv;
      const ival v[] = {
          {"in", c->in}, {"out", c->out}, {"n", c->n}, {"h", c->h}, {"w", c->w}, {"ci", c->ci},
          {"ho", c->ho}, {"wo", c->wo}, {"co", c->co}, {"kh", c->kh}, {"kw", c->kw},
          {"sh", c->sh}, {"sw", c->sw}, {"dh", c->dh}, {"dw", c->dw}, {"pt", c->pt},
          {"pl", c->pl}, {"in_off", c->in_off}, {"out_off", c->out_off}, {"lo", c->lo},
          {"hi", c->hi}, {"scratch", c->scratch}, {"qstep", c->qstep}};
      return emit_struct(f, "nasrt_conv_p", g, pp, i, p, np, v, NV(v), e);
    }
    case NASRT_FULLY_CONNECTED: {
      const nasrt_fc_p *c = &pp->rt.fc;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"b", c->b}, {"d", c->d},
                        {"co", c->co}, {"in_off", c->in_off}, {"w_off", c->w_off},
                        {"out_off", c->out_off}, {"lo", c->lo}, {"hi", c->hi},
                        {"qstep", c->qstep}};
      return emit_struct(f, "nasrt_fc_p", g, pp, i, p, np, v, NV(v), e);
    }
    case NASRT_AVERAGE_POOL_2D:
    case NASRT_MAX_POOL_2D: {
      const nasrt_pool_p *c = &pp->rt.pool;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"n", c->n}, {"h", c->h}, {"w", c->w},
                        {"c", c->c}, {"ho", c->ho}, {"wo", c->wo}, {"fh", c->fh}, {"fw", c->fw},
                        {"sh", c->sh}, {"sw", c->sw}, {"pt", c->pt}, {"pl", c->pl},
                        {"lo", c->lo}, {"hi", c->hi}};
      return emit_struct(f, "nasrt_pool_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_ADD:
    case NASRT_SUB: { /* one parameter struct */
      const nasrt_add_p *c = &pp->rt.add;
      const ival v[] = {
          {"a", c->a}, {"b", c->b}, {"out", c->out}, {"n", c->n}, {"a_off", c->a_off},
          {"b_off", c->b_off}, {"left_shift", c->left_shift}, {"a_mult", c->a_mult},
          {"a_shift", c->a_shift}, {"b_mult", c->b_mult}, {"b_shift", c->b_shift},
          {"out_mult", c->out_mult}, {"out_shift", c->out_shift}, {"out_zp", c->out_zp},
          {"lo", c->lo}, {"hi", c->hi}};
      return emit_struct(f, "nasrt_add_p", g, pp, i, p, np, v, NV(v), e);
    }
    case NASRT_SOFTMAX: {
      const nasrt_softmax_p *c = &pp->rt.softmax;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"rows", c->rows}, {"depth", c->depth},
                        {"mult", c->mult}, {"lshift", c->lshift}, {"diff_min", c->diff_min}};
      return emit_struct(f, "nasrt_softmax_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_QUANTIZE: {
      const nasrt_requant_p *c = &pp->rt.requant;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"n", c->n}, {"in_zp", c->in_zp},
                        {"mult", c->mult}, {"shift", c->shift}, {"out_zp", c->out_zp}};
      return emit_struct(f, "nasrt_requant_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_WINOGRAD_CONV_2D: {
      const nasrt_wino_p *c = &pp->rt.wino;
      const size_t co = (size_t)c->co, P = (size_t)(c->m + 2) * (c->m + 2);
      char name[32];
      if (c->u) {
        snprintf(name, sizeof name, "op%d_u", i);
        emit_i8_array(f, name, c->u, co * P * (size_t)NASRT_WINO_CI4(c->ci));
      }
      if (c->u_mult) {
        snprintf(name, sizeof name, "op%d_u_mult", i);
        emit_i32_array(f, name, c->u_mult, co);
        snprintf(name, sizeof name, "op%d_u_shift", i);
        emit_i8_array(f, name, c->u_shift, co);
      }
      snprintf(name, sizeof name, "op%d_m_mult", i);
      emit_i32_array(f, name, c->m_mult, co);
      snprintf(name, sizeof name, "op%d_m_shift", i);
      emit_i8_array(f, name, c->m_shift, co);
      snprintf(name, sizeof name, "op%d_o_mult", i);
      emit_i32_array(f, name, c->o_mult, co);
      snprintf(name, sizeof name, "op%d_o_shift", i);
      emit_i8_array(f, name, c->o_shift, co);
      const ival v[] = {
          {"in", c->in},         {"out", c->out},         {"scratch", c->scratch},
          {"v_mult", c->v_mult}, {"v_shift", c->v_shift}, {"n", c->n},
          {"h", c->h},           {"w", c->w},             {"ci", c->ci},
          {"ho", c->ho},         {"wo", c->wo},           {"co", c->co},
          {"m", c->m},           {"pt", c->pt},           {"pl", c->pl},
          {"in_off", c->in_off}, {"out_off", c->out_off}, {"qmax", c->qmax},
          {"lo", c->lo},         {"hi", c->hi},           {"bshift", c->bshift}};
      return emit_struct(f, "nasrt_wino_p", g, pp, i, p, np, v, NV(v), e);
    }
    case NASRT_RESHAPE: {
      const nasrt_copy_p *c = &pp->rt.copy;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"n", c->n}};
      return emit_struct(f, "nasrt_copy_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_SPARSE: { /* the mask and values replace the dense filter (not emitted) */
      const nasrt_sparse_p *s = &pp->rt.sparse;
      const nasrt_conv_p *c = &s->c;
      const size_t rows = (size_t)c->co * (size_t)c->kh * (size_t)c->kw;
      char name[32];
      snprintf(name, sizeof name, "op%d_mask", i);
      emit_u8_array(f, name, s->mask, rows * (size_t)s->mb);
      snprintf(name, sizeof name, "op%d_values", i);
      if (s->nnz > 0) emit_i8_array(f, name, s->values, (size_t)s->nnz);
      const ival v[] = {
          {"mb", s->mb}, {"nnz", s->nnz}, {"c.in", c->in}, {"c.out", c->out}, {"c.n", c->n},
          {"c.h", c->h}, {"c.w", c->w}, {"c.ci", c->ci}, {"c.ho", c->ho}, {"c.wo", c->wo},
          {"c.co", c->co}, {"c.kh", c->kh}, {"c.kw", c->kw}, {"c.sh", c->sh}, {"c.sw", c->sw},
          {"c.dh", c->dh}, {"c.dw", c->dw}, {"c.pt", c->pt}, {"c.pl", c->pl},
          {"c.in_off", c->in_off}, {"c.out_off", c->out_off}, {"c.lo", c->lo}, {"c.hi", c->hi},
          {"c.scratch", c->scratch}, {"c.qstep", c->qstep}};
      return emit_struct(f, "nasrt_sparse_p", g, pp, i, p, np, v, NV(v), e);
    }
    case NASRT_LOGISTIC:
    case NASRT_TANH: {
      const nasrt_act_p *c = &pp->rt.act;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"n", c->n}, {"in_zp", c->in_zp},
                        {"mult", c->mult}, {"shift", c->shift}, {"radius", c->radius}};
      return emit_struct(f, "nasrt_act_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_MUL: {
      const nasrt_mul_p *c = &pp->rt.mul;
      const ival v[] = {{"a", c->a}, {"b", c->b}, {"out", c->out}, {"n", c->n},
                        {"a_off", c->a_off}, {"b_off", c->b_off}, {"mult", c->mult},
                        {"shift", c->shift}, {"out_zp", c->out_zp}, {"lo", c->lo}, {"hi", c->hi}};
      return emit_struct(f, "nasrt_mul_p", g, pp, i, p, np, v, NV(v), e);
    }
    case NASRT_STRIDED_SLICE: {
      const nasrt_slice_p *c = &pp->rt.slice;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"d0", c->d0}, {"d1", c->d1},
                        {"d2", c->d2}, {"d3", c->d3}, {"o0", c->o0}, {"o1", c->o1},
                        {"o2", c->o2}, {"o3", c->o3}, {"b0", c->b0}, {"b1", c->b1},
                        {"b2", c->b2}, {"b3", c->b3}, {"s0", c->s0}, {"s1", c->s1},
                        {"s2", c->s2}, {"s3", c->s3}};
      return emit_struct(f, "nasrt_slice_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_CONCATENATION: {
      const nasrt_concat_p *c = &pp->rt.concat;
      const ival v[] = {{"out", c->out}, {"count", c->count}, {"outer", c->outer},
                        {"in0", c->in0}, {"in1", c->in1}, {"in2", c->in2}, {"in3", c->in3},
                        {"in4", c->in4}, {"in5", c->in5}, {"in6", c->in6}, {"in7", c->in7},
                        {"in8", c->in8}, {"in9", c->in9}, {"n0", c->n0}, {"n1", c->n1},
                        {"n2", c->n2}, {"n3", c->n3}, {"n4", c->n4}, {"n5", c->n5},
                        {"n6", c->n6}, {"n7", c->n7}, {"n8", c->n8}, {"n9", c->n9}};
      return emit_struct(f, "nasrt_concat_p", g, pp, i, NULL, 0, v, NV(v), e);
    }
    case NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM: {
      const nasrt_lstm_p *c = &pp->rt.lstm;
      const ival v[] = {{"in", c->in}, {"out", c->out}, {"cstate", c->cstate},
                        {"hid_mult", c->hid_mult}, {"hid_shift", c->hid_shift},
                        {"hid_zp", c->hid_zp}, {"cell_shift", c->cell_shift},
                        {"cell_clip", c->cell_clip}, {"b", c->b}, {"t", c->t}, {"f", c->f},
                        {"h", c->h}, {"time_major", c->time_major}};
      return emit_struct(f, "nasrt_lstm_p", g, pp, i, p, np, v, NV(v), e);
    }
    default:
      return nas_errf(e, NAS_EINVAL, "operator %d: unsupported op %s for C export", i,
                      nm ? nm : "?");
  }
}

static int write_runtime(const char *dir, nas_err *e) {
  for (int k = 0; k < nas_c_nruntime; k++) {
    FILE *f;
    int rc = nas_file_create(dir, nas_c_runtime[k].name, &f, e);
    if (rc) return rc;
    fwrite(nas_c_runtime[k].data, 1, nas_c_runtime[k].len, f);
    if ((rc = nas_file_finish(dir, nas_c_runtime[k].name, f, e))) return rc;
  }
  return NAS_OK;
}

/* The model source: constant tensors, prepared operators, the operator table and the model. */
static int emit_source(const nas_g8_graph *g, const nas_g8_plan *p, const nas_g8_prep *prep,
                       const char *name, const char *id, const char *up, const char *dir,
                       nas_err *e) {
  char file[300];
  snprintf(file, sizeof file, "%s.c", name);
  FILE *f;
  int rc = nas_file_create(dir, file, &f, e);
  if (rc) return rc;
  fprintf(f,
          "/* %s.c: int8 model exported by nas (C source export): constant data, every operator's\n"
          " * prepared parameters and the operator table; the runtime is nasrt.h / nasrt_*.c. */\n"
          "#include <stddef.h>\n#include <stdint.h>\n\n"
          "#include \"nasrt.h\"\n#include \"%s.h\"\n\n"
          "/* Every activation tensor lives at its planned offset in this arena. */\n"
          "static _Alignas(16) int8_t arena[%s_ARENA_BYTES];\n\n",
          name, name, up);
  /* Constant tensors that some printed operator points to. */
  unsigned char *used = nas_calloc((size_t)g->ntensors + 1, 1);
  if (!used) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
  for (int i = 0; !rc && i < g->nops; i++) {
    pval pv[MAXPTR];
    const int np = op_ptrs(&prep->op[i], pv);
    for (int k = 0; k < np; k++) mark_used(g, pv[k].p, used);
  }
  for (int t = 0; !rc && t < g->ntensors; t++) {
    if (!used[t]) continue;
    const nas_g8_tensor *T = &g->tensors[t];
    char nm[32];
    snprintf(nm, sizeof nm, "t%d", t);
    emit_shape_comment(f, T, t);
    if (T->type == NAS_G8_INT32) emit_i32_array(f, nm, T->data, nas_g8_numel(T));
    else emit_i8_array(f, nm, T->data, nas_g8_numel(T));
  }
  free(used);
  for (int i = 0; !rc && i < g->nops; i++) {
    fputc('\n', f);
    if (g->tensors[g->ops[i].out].data)
      rc = nas_errf(e, NAS_EINVAL, "operator %d: writes a constant tensor", i);
    else rc = emit_op(f, g, &prep->op[i], i, e);
  }
  if (!rc) {
    if (g->nops) {
      fprintf(f, "\nstatic const nasrt_op ops[%d] = {\n", g->nops);
      for (int i = 0; i < g->nops; i++)
        fprintf(f, "    {NASRT_%s, nasrt_eval_%s, &op%d},\n", KIND[prep->op[i].rt_kind],
                EVAL[prep->op[i].rt_kind], i);
      fputs("};\n", f);
    }
    fprintf(f,
            "\nstatic const nasrt_model model = {\n    .ops = %s, .nops = %d, .in = %ld, "
            ".in_size = %s_INPUT_SIZE, .out = %ld,\n    .out_size = %s_OUTPUT_SIZE, "
            ".arena_bytes = %s_ARENA_BYTES};\n",
            g->nops ? "ops" : "NULL", g->nops, p->offset[g->input], up, p->offset[g->output], up,
            up);
    fprintf(f,
            "\nint %s_invoke(const int8_t *in, int8_t *out) {\n"
            "  return nasrt_invoke(&model, arena, in, out);\n}\n"
            "\n#ifndef %s_NO_MODEL_INVOKE\nint model_invoke(const int8_t *in, int8_t *out) "
            "{ return %s_invoke(in, out); }\n#endif\n",
            id, up, id);
  }
  int wrc = nas_file_finish(dir, file, f, e);
  return rc ? rc : wrc;
}

int nas_c_export(const nas_g8_graph *g, const char *name, const char *out_dir, nas_err *e) {
  if (!valid_name(name))
    return nas_errf(e, NAS_EINVAL,
                    "C export: model name '%s' must be 1-64 characters of [A-Za-z0-9_.-], not "
                    "starting with '.'", name ? name : "");
  int rc = nas_g8_validate(g, e);
  if (rc) return rc;
  if (g->tensors[g->input].data || g->tensors[g->output].data)
    return nas_errf(e, NAS_EINVAL, "C export: the graph's input and output must be activations");
  /* C identifiers: '-' and '.' become '_', a leading digit gets an 'm' before it. */
  char id[72], up[72];
  size_t n = strlen(name), k = 0;
  if (isdigit((unsigned char)name[0])) id[k] = 'm', up[k] = 'M', k++;
  for (size_t i = 0; i <= n; i++, k++) {
    char c = name[i] == '-' || name[i] == '.' ? '_' : name[i];
    id[k] = c, up[k] = (char)toupper((unsigned char)c);
  }
  nas_g8_plan p;
  nas_g8_prep prep;
  if ((rc = nas_g8_plan_build(g, &p, e))) return rc;
  if ((rc = nas_g8_prep_build(g, &p, &prep, e))) {
    nas_g8_plan_free(&p);
    return rc;
  }
  if (!(rc = write_runtime(out_dir, e)) && !(rc = emit_header(g, &p, name, id, up, out_dir, e)))
    rc = emit_source(g, &p, &prep, name, id, up, out_dir, e);
  nas_g8_prep_free(&prep);
  nas_g8_plan_free(&p);
  return rc;
}

/* 32-bit words of each kind's parameter struct (every field is int32_t or a pointer). */
static long long struct_words(int kind) {
  switch (kind) {
    case NASRT_CONV_2D:
    case NASRT_DEPTHWISE_CONV_2D: return 6 + 23;
    case NASRT_FULLY_CONNECTED: return 6 + 11;
    case NASRT_AVERAGE_POOL_2D:
    case NASRT_MAX_POOL_2D: return 16;
    case NASRT_ADD: return 2 + 16;
    case NASRT_SOFTMAX: return 7;
    case NASRT_QUANTIZE: return 7;
    case NASRT_RESHAPE: return 3;
    case NASRT_LOGISTIC:
    case NASRT_TANH: return 7;
    case NASRT_MUL: return 2 + 11;
    case NASRT_SUB: return 2 + 16;
    case NASRT_STRIDED_SLICE: return 18;
    case NASRT_CONCATENATION: return 23;
    case NASRT_UNIDIRECTIONAL_SEQUENCE_LSTM: return 11 + 13;
    case NASRT_WINOGRAD_CONV_2D: return 11 + 21;
    case NASRT_SPARSE: return 6 + 23 + 2 + 2; /* conv's, mask, values, mb, nnz */
    default: return 0;
  }
}

int nas_c_export_data_bytes(const nas_g8_graph *g, long long *bytes, nas_err *e) {
  *bytes = 0;
  int rc = nas_g8_validate(g, e);
  if (rc) return rc;
  nas_g8_plan p;
  nas_g8_prep prep;
  if ((rc = nas_g8_plan_build(g, &p, e))) return rc;
  if ((rc = nas_g8_prep_build(g, &p, &prep, e))) {
    nas_g8_plan_free(&p);
    return rc;
  }
  unsigned char *used = nas_calloc((size_t)g->ntensors + 1, 1);
  long long n = 7 * 4 + 12LL * g->nops; /* the model struct, the operator table */
  if (!used) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
  for (int i = 0; !rc && i < g->nops; i++) {
    const nas_g8_prep_op *pp = &prep.op[i];
    pval pv[MAXPTR];
    const int np = op_ptrs(pp, pv);
    for (int k = 0; k < np; k++) mark_used(g, pv[k].p, used);
    n += 4 * struct_words(pp->rt_kind);
    if (pp->rt_kind == NASRT_SPARSE) { /* the mask rows and the non-zero values */
      const nasrt_sparse_p *sp = &pp->rt.sparse;
      n += (long long)sp->c.co * sp->c.kh * sp->c.kw * sp->mb + sp->nnz;
    }
    if (pp->mult) {
      n += 5LL * qcount(pp);                         /* mult, shift */
      if (twin_of(prep.op, i, 1) == i) n += (long long)bq_bytes(pp); /* printed once */
      if (pp->ebias) n += 4LL * 8 * pp->rt.lstm.h;     /* an LSTM's effective biases */
      if (twin_of(prep.op, i, 0) == i) n += (long long)wq_bytes(pp);
    }
    if (pp->rt_kind == NASRT_WINOGRAD_CONV_2D) { /* its prepared arrays (emit_op) */
      const nasrt_wino_p *c = &pp->rt.wino;
      const long long co = c->co, P = (long long)(c->m + 2) * (c->m + 2);
      n += 10 * co + (c->u_mult ? 5 * co : 0) + (c->u ? co * P * NASRT_WINO_CI4(c->ci) : 0);
    }
  }
  for (int t = 0; !rc && t < g->ntensors; t++)
    if (used[t]) n += (long long)g->tensors[t].bytes;
  free(used);
  nas_g8_prep_free(&prep);
  nas_g8_plan_free(&p);
  if (!rc) *bytes = n;
  return rc;
}
