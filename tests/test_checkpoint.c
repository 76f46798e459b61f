/* tests/test_checkpoint.c: checkpoint round trip (bit for bit), the on-disk layout, and every
 * way a file or a network can be refused: missing, empty, bad magic, unknown version, every
 * truncation, every flipped byte, malformed fields behind a valid checksum, and name/shape/
 * kind mismatches on apply. Files live in a mkdtemp directory removed afterwards. */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "train/checkpoint.h"
#include "train/graph.h"
#include "tests/test_util.h"

/* One leaf of a test network. */
typedef struct leaf {
  const char *name;  /* node name */
  int kind;          /* NAS_NODE_INPUT, NAS_NODE_PARAM or NAS_NODE_STATE */
  int nd;            /* dims given to nas_graph_* */
  int d[4];          /* dims */
} leaf;

#define NLEAF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The reference network: an input (not saved), params and state in tape order. */
static const leaf NET[] = {
    {"x", NAS_NODE_INPUT, 3, {6, 6, 1}},
    {"l0.conv.w", NAS_NODE_PARAM, 4, {4, 3, 3, 1}},
    {"l0.conv.b", NAS_NODE_PARAM, 1, {4}},
    {"l0.bn.mean", NAS_NODE_STATE, 1, {4}},
    {"l0.bn.var", NAS_NODE_STATE, 1, {4}},
    {"l1.fc.w", NAS_NODE_PARAM, 2, {5, 4}},
};
#define NET_SAVED 5 /* leaves of NET that a checkpoint holds */

static const char *ARCH = "{\"input\":[6,6,1],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":4,"
                          "\"k\":3},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":5}]}";
static const char *META = "{\"dataset\":\"toy\",\"mean\":[0.5],\"std\":[0.25],\"val_acc\":0.875}";

static nas_graph *build(const leaf *spec, int n) {
  nas_err e = {0};
  nas_graph *g = nas_graph_new(2, 42);
  assert_non_null(g);
  for (int i = 0; i < n; i++) {
    const leaf *l = &spec[i];
    int id = l->kind == NAS_NODE_INPUT   ? nas_graph_input(g, l->name, l->nd, l->d, &e)
             : l->kind == NAS_NODE_PARAM ? nas_graph_param(g, l->name, l->nd, l->d, &e)
                                         : nas_graph_state(g, l->name, l->nd, l->d, &e);
    if (id < 0) fail_msg("building the test graph: %s", e.msg);
  }
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  return g;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Fills every param/state with distinct values, including ones a text format or a careless
 * conversion would lose: -0, infinities, a NaN with a payload, a denormal, FLT_MAX. */
static void fill(nas_graph *g) {
  const float special[] = {-0.0f, INFINITY, -INFINITY, from_bits(0x7fc12345u), 1e-40f, FLT_MAX,
                           -FLT_MIN};
  int k = 0;
  for (int i = 0; i < g->n; i++) {
    nas_node *nd = &g->nodes[i];
    if (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE) continue;
    size_t n = nas_shape_numel(&nd->shape);
    for (size_t j = 0; j < n; j++, k++)
      nd->val[j] = k < NLEAF(special) ? special[k] : nas_rng_normal(&g->rng) * (float)(i + 1);
  }
}

static const char *in_dir(void **state, const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", (const char *)*state, name);
  return buf;
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char *b = malloc(1 << 20);
  assert_non_null(b);
  *len = fread(b, 1, 1 << 20, f);
  assert_true(feof(f));
  fclose(f);
  return b;
}

static void spit(const char *path, const unsigned char *b, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (len) assert_int_equal(fwrite(b, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static uint32_t rd32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr32(unsigned char *b, uint32_t v) {
  for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the trailing CRC of a file image so that only the field under test is wrong. */
static void fix_crc(unsigned char *b, size_t len) {
  wr32(b + len - 4, (uint32_t)crc32(0L, b, (uInt)(len - 4)));
}

/* Saves the reference network (filled) to dir/name; returns the graph. */
static nas_graph *save_reference(void **state, const char *name, char *path, size_t n) {
  nas_graph *g = build(NET, NLEAF(NET));
  fill(g);
  nas_err e = {0};
  in_dir(state, name, path, n);
  if (nas_ckpt_save(path, ARCH, META, g, &e) != NAS_OK) fail_msg("save: %s", e.msg);
  return g;
}

/* Offset of the first tensor record in a file saved with ARCH and META. */
static size_t first_tensor_offset(void) {
  return 8 + 4 + 4 + 4 + strlen(ARCH) + 4 + strlen(META) + 4;
}

/* Loading path must fail with code, a message naming the file and containing cause, and
 * leave the checkpoint empty. */
static void expect_load_fail(const char *path, int code, const char *cause) {
  nas_ckpt c;
  nas_err e = {0};
  memset(&c, 0xab, sizeof c);
  int rc = nas_ckpt_load(path, &c, &e);
  if (rc != code) fail_msg("%s: code %d, expected %d (%s)", path, rc, code, e.msg);
  assert_int_equal(e.code, code);
  if (strncmp(e.msg, path, strlen(path)) != 0 || e.msg[strlen(path)] != ':')
    fail_msg("message does not start with the file name: %s", e.msg);
  if (cause && !strstr(e.msg, cause)) fail_msg("message lacks '%s': %s", cause, e.msg);
  assert_null(strchr(e.msg, '\n'));
  assert_null(c.t);
  assert_null(c.arch_json);
  assert_null(c.meta_json);
  assert_int_equal(c.n, 0);
}

/* ---- round trip --------------------------------------------------------------------- */

static void test_round_trip(void **state) {
  char path[512], tmp[520];
  nas_graph *g = save_reference(state, "ok.ckpt", path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  assert_int_not_equal(access(path, F_OK), -1);
  assert_int_equal(access(tmp, F_OK), -1); /* renamed away */

  nas_ckpt c;
  nas_err e = {0};
  if (nas_ckpt_load(path, &c, &e) != NAS_OK) fail_msg("load: %s", e.msg);
  assert_string_equal(c.arch_json, ARCH);
  assert_string_equal(c.meta_json, META);
  assert_int_equal(c.n, NET_SAVED);
  for (int i = 0; i < NET_SAVED; i++) { /* tape order, input skipped */
    const leaf *l = &NET[i + 1];
    assert_string_equal(c.t[i].name, l->name);
    assert_int_equal(c.t[i].kind, l->kind);
    assert_int_equal(c.t[i].shape.nd, l->nd);
    for (int k = 0; k < l->nd; k++) assert_int_equal(c.t[i].shape.d[k], l->d[k]);
  }

  nas_graph *h = build(NET, NLEAF(NET));
  if (nas_ckpt_apply(&c, h, &e) != NAS_OK) fail_msg("apply: %s", e.msg);
  for (int i = 0; i < g->n; i++) {
    const nas_node *a = &g->nodes[i], *b = &h->nodes[i];
    if (a->kind != NAS_NODE_PARAM && a->kind != NAS_NODE_STATE) continue;
    assert_memory_equal(a->val, b->val, nas_shape_numel(&a->shape) * sizeof(float));
  }

  /* Saving the restored network gives the same bytes: the format has no hidden state. */
  char path2[512];
  in_dir(state, "again.ckpt", path2, sizeof path2);
  assert_int_equal(nas_ckpt_save(path2, c.arch_json, c.meta_json, h, &e), NAS_OK);
  size_t l1, l2;
  unsigned char *b1 = slurp(path, &l1), *b2 = slurp(path2, &l2);
  assert_int_equal(l1, l2);
  assert_memory_equal(b1, b2, l1);

  /* Overwriting an existing checkpoint works (rename over the old file). */
  assert_int_equal(nas_ckpt_save(path2, "{}", "{}", h, &e), NAS_OK);

  free(b1);
  free(b2);
  nas_ckpt_free(&c);
  nas_ckpt_free(&c); /* freeing twice is harmless: the struct was emptied */
  nas_ckpt_free(NULL);
  nas_graph_free(g);
  nas_graph_free(h);
}

/* The bytes on disk follow checkpoint.h field by field. */
static void test_layout(void **state) {
  char path[512];
  nas_graph *g = save_reference(state, "layout.ckpt", path, sizeof path);
  size_t len;
  unsigned char *b = slurp(path, &len);
  size_t want = first_tensor_offset() + 4;
  for (int i = 1; i < NLEAF(NET); i++) {
    size_t numel = 1;
    for (int k = 0; k < NET[i].nd; k++) numel *= (size_t)NET[i].d[k];
    want += 2 + strlen(NET[i].name) + 1 + 1 + 4 * (size_t)NET[i].nd + 4 * numel;
  }
  assert_int_equal(len, want);
  assert_memory_equal(b, "NASCKPT\0", 8);
  assert_int_equal(rd32(b + 8), 1);  /* version */
  assert_int_equal(rd32(b + 12), 0); /* flags */
  assert_int_equal(rd32(b + 16), strlen(ARCH));
  assert_memory_equal(b + 20, ARCH, strlen(ARCH));
  size_t p = 20 + strlen(ARCH);
  assert_int_equal(rd32(b + p), strlen(META));
  p += 4 + strlen(META);
  assert_int_equal(rd32(b + p), NET_SAVED);
  p += 4;
  /* first tensor: "l0.conv.w", param, [4,3,3,1], data starting with -0.0f (0x80000000) */
  assert_int_equal(b[p] | b[p + 1] << 8, 9);
  assert_memory_equal(b + p + 2, "l0.conv.w", 9);
  p += 11;
  assert_int_equal(b[p], NAS_NODE_PARAM);
  assert_int_equal(b[p + 1], 4);
  assert_int_equal(rd32(b + p + 2), 4);
  assert_int_equal(rd32(b + p + 14), 1);
  assert_int_equal(rd32(b + p + 18), 0x80000000u);
  assert_int_equal(rd32(b + p + 22), 0x7f800000u); /* +inf */
  assert_int_equal(rd32(b + p + 30), 0x7fc12345u); /* NaN payload kept */
  assert_int_equal(rd32(b + len - 4), (uint32_t)crc32(0L, b, (uInt)(len - 4)));
  free(b);
  nas_graph_free(g);
}

/* NULL JSON strings are stored as empty strings. */
static void test_empty_strings(void **state) {
  char path[512];
  nas_graph *g = build(NET, NLEAF(NET));
  nas_err e = {0};
  in_dir(state, "nulls.ckpt", path, sizeof path);
  assert_int_equal(nas_ckpt_save(path, NULL, NULL, g, &e), NAS_OK);
  nas_ckpt c;
  assert_int_equal(nas_ckpt_load(path, &c, &e), NAS_OK);
  assert_string_equal(c.arch_json, "");
  assert_string_equal(c.meta_json, "");
  nas_ckpt_free(&c);
  nas_graph_free(g);
}

/* ---- refused files ------------------------------------------------------------------ */

static void test_missing_file(void **state) {
  char path[512];
  in_dir(state, "does-not-exist.ckpt", path, sizeof path);
  expect_load_fail(path, NAS_EIO, "cannot open");
  expect_load_fail(path, NAS_EIO, "No such file");
}

static void test_empty_file(void **state) {
  char path[512];
  in_dir(state, "empty.ckpt", path, sizeof path);
  spit(path, NULL, 0);
  expect_load_fail(path, NAS_EFORMAT, "empty file");
}

static void test_bad_magic(void **state) {
  char path[512];
  nas_graph *g = save_reference(state, "magic.ckpt", path, sizeof path);
  size_t len;
  unsigned char *b = slurp(path, &len);
  b[0] = 'M';
  fix_crc(b, len);
  spit(path, b, len);
  expect_load_fail(path, NAS_EFORMAT, "not a nas checkpoint (bad magic)");
  const char *text = "{\"this is\": \"a JSON file, not a checkpoint\"}\n";
  spit(path, (const unsigned char *)text, strlen(text));
  expect_load_fail(path, NAS_EFORMAT, "not a nas checkpoint (bad magic)");
  free(b);
  nas_graph_free(g);
}

static void test_bad_version(void **state) {
  char path[512];
  nas_graph *g = save_reference(state, "v99.ckpt", path, sizeof path);
  size_t len;
  unsigned char *b = slurp(path, &len);
  wr32(b + 8, 99);
  spit(path, b, len); /* the version is checked before the checksum ... */
  expect_load_fail(path, NAS_EFORMAT, "checkpoint version 99 not supported (expected 1)");
  fix_crc(b, len); /* ... and refused with a valid one too */
  spit(path, b, len);
  expect_load_fail(path, NAS_EFORMAT, "checkpoint version 99 not supported (expected 1)");
  free(b);
  nas_graph_free(g);
}

/* Every proper prefix of a valid file is refused cleanly (never a crash or a leak). */
static void test_every_truncation(void **state) {
  char path[512], cut[512];
  nas_graph *g = save_reference(state, "whole.ckpt", path, sizeof path);
  in_dir(state, "cut.ckpt", cut, sizeof cut);
  size_t len;
  unsigned char *b = slurp(path, &len);
  for (size_t n = 0; n < len; n++) {
    spit(cut, b, n);
    /* beyond the header: named truncated, not only a checksum mismatch */
    const char *cause = n == 0 ? "empty file" : n < 32 ? "truncated" : "checksum mismatch (file corrupt): ";
    if (n >= 32) expect_load_fail(cut, NAS_EFORMAT, "fields need more (truncated)");
    expect_load_fail(cut, NAS_EFORMAT, cause);
  }
  free(b);
  nas_graph_free(g);
}

/* Flipping any single byte is detected: in the magic, the version, or by the checksum. */
static void test_every_flipped_byte(void **state) {
  char path[512], bad[512];
  nas_graph *g = save_reference(state, "flip-src.ckpt", path, sizeof path);
  in_dir(state, "flipped.ckpt", bad, sizeof bad);
  size_t len;
  unsigned char *b = slurp(path, &len);
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit += 7) { /* lowest and highest bit of each byte */
      b[i] ^= (unsigned char)(1u << bit);
      spit(bad, b, len);
      const char *cause = i < 8    ? "bad magic"
                          : i < 12 ? "not supported"
                                   : "checksum mismatch (file corrupt)";
      expect_load_fail(bad, NAS_EFORMAT, cause);
      b[i] ^= (unsigned char)(1u << bit);
    }
  }
  free(b);
  nas_graph_free(g);
}

/* Malformed fields behind a valid checksum: each is refused naming the field. */
static void test_malformed_fields(void **state) {
  char path[512], bad[512];
  nas_graph *g = save_reference(state, "src.ckpt", path, sizeof path);
  in_dir(state, "malformed.ckpt", bad, sizeof bad);
  size_t len;
  unsigned char *orig = slurp(path, &len);
  unsigned char *b = malloc(len + 16);
  assert_non_null(b);
  const size_t t0 = first_tensor_offset();      /* first tensor record */
  const size_t nd0 = t0 + 2 + strlen("l0.conv.w") + 1; /* its nd byte */

  /* Cut inside the last tensor's data, then re-seal: the data length exceeds what is left. */
  memcpy(b, orig, len);
  size_t n = len - 4 - 8;
  fix_crc(b, n + 4);
  spit(bad, b, n + 4);
  expect_load_fail(bad, NAS_EFORMAT, "truncated at tensor 4 ('l1.fc.w')");

  /* Cut inside the second tensor's name. */
  size_t t1 = nd0 + 1 + 4 * 4 + 4 * 36;
  assert_int_equal(orig[t1], strlen("l0.conv.b"));
  memcpy(b, orig, t1 + 5);
  fix_crc(b, t1 + 5 + 4);
  spit(bad, b, t1 + 5 + 4);
  expect_load_fail(bad, NAS_EFORMAT, "truncated at tensor 1");

  struct {
    size_t off;         /* byte offset to overwrite */
    int width;          /* 1 or 4 bytes */
    uint32_t value;     /* new value */
    const char *cause;  /* expected in the message */
  } cases[] = {
      {12, 4, 1, "unknown flags 0x1"},
      {16, 4, 0xfffffff0u, "truncated in the arch JSON"},
      {20 + 3, 1, 0, "arch JSON contains a NUL byte"},
      {20 + strlen(ARCH), 4, 0x7fffffffu, "truncated in the meta JSON"},
      {t0 - 4, 4, 0xffffffffu, "4294967295 tensors cannot fit"},
      {t0 - 4, 4, NET_SAVED - 1, "unexpected bytes after the last tensor"},
      {t0 - 4, 4, NET_SAVED + 1, "truncated at tensor 5"},
      {t0, 1, 0, "tensor 0: name length 0 outside 1..47"},
      {t0, 1, 48, "tensor 0: name length 48 outside 1..47"},
      {t0 + 2, 1, 0, "tensor 0: name contains a NUL byte"},
      {nd0 - 1, 1, 7, "tensor 0 ('l0.conv.w'): kind 7 is neither 2 (param) nor 3 (state)"},
      {nd0, 1, 0, "tensor 0 ('l0.conv.w'): nd 0 outside 1..4"},
      {nd0, 1, 5, "tensor 0 ('l0.conv.w'): nd 5 outside 1..4"},
      {nd0 + 1, 4, 0, "tensor 0 ('l0.conv.w'): dimension 0 is 0"},
      {nd0 + 1, 4, 0xffffffffu, "tensor 0 ('l0.conv.w'): dimension 0 is 4294967295"},
      {nd0 + 1, 4, 0x7fffffffu, "truncated at tensor 0 ('l0.conv.w')"},
      {nd0 + 5, 4, 0x40000000u, "truncated at tensor 0 ('l0.conv.w')"},
      {t1 + 2 + 8, 1, 'w', "tensor 1 ('l0.conv.w'): same name as tensor 0"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    memcpy(b, orig, len);
    if (cases[k].width == 1)
      b[cases[k].off] = (unsigned char)cases[k].value;
    else
      wr32(b + cases[k].off, cases[k].value);
    fix_crc(b, len);
    spit(bad, b, len);
    expect_load_fail(bad, NAS_EFORMAT, cases[k].cause);
  }

  /* Trailing bytes before the checksum. */
  memcpy(b, orig, len - 4);
  memset(b + len - 4, 0, 3);
  fix_crc(b, len + 3);
  spit(bad, b, len + 3);
  expect_load_fail(bad, NAS_EFORMAT, "3 unexpected bytes after the last tensor");

  /* A header alone, shorter than the smallest file. */
  memcpy(b, orig, 16);
  spit(bad, b, 16);
  expect_load_fail(bad, NAS_EFORMAT, "truncated (16 bytes");

  free(b);
  free(orig);
  nas_graph_free(g);
}

/* ---- refused networks --------------------------------------------------------------- */

/* Loads path, applies it to a network built from spec and expects a refusal naming cause1
 * and cause2 that leaves the network untouched. */
static void expect_apply_fail(const char *path, const leaf *spec, int n, const char *cause1,
                              const char *cause2) {
  nas_ckpt c;
  nas_err e = {0};
  assert_int_equal(nas_ckpt_load(path, &c, &e), NAS_OK);
  nas_graph *h = build(spec, n);
  int rc = nas_ckpt_apply(&c, h, &e);
  if (rc != NAS_EINVAL) fail_msg("apply: code %d, expected %d (%s)", rc, NAS_EINVAL, e.msg);
  assert_int_equal(e.code, NAS_EINVAL);
  if (!strstr(e.msg, cause1) || (cause2 && !strstr(e.msg, cause2)))
    fail_msg("message lacks '%s'/'%s': %s", cause1, cause2 ? cause2 : "", e.msg);
  /* The mismatch is found before anything is copied. */
  for (int i = 0; i < h->n; i++) {
    const nas_node *nd = &h->nodes[i];
    if (nd->kind != NAS_NODE_PARAM && nd->kind != NAS_NODE_STATE) continue;
    for (size_t j = 0; j < nas_shape_numel(&nd->shape); j++) assert_true(nd->val[j] == 0.0f);
  }
  nas_graph_free(h);
  nas_ckpt_free(&c);
}

static void test_apply_refused(void **state) {
  char path[512];
  nas_graph *g = save_reference(state, "apply.ckpt", path, sizeof path);

  const leaf shape[] = {
      NET[0], NET[1], NET[2], NET[3], NET[4], {"l1.fc.w", NAS_NODE_PARAM, 2, {5, 6}},
  };
  expect_apply_fail(path, shape, NLEAF(shape), "'l1.fc.w': shape [5,4] in the checkpoint",
                    "[5,6] in the network");

  const leaf rank[] = {
      NET[0], NET[1], {"l0.conv.b", NAS_NODE_PARAM, 2, {4, 1}}, NET[3], NET[4], NET[5],
  };
  expect_apply_fail(path, rank, NLEAF(rank), "'l0.conv.b': shape [4] in the checkpoint",
                    "[4,1] in the network");

  const leaf missing[] = {
      NET[0], NET[1], NET[2], NET[3], NET[4], NET[5], {"l2.fc.w", NAS_NODE_PARAM, 2, {3, 5}},
  };
  expect_apply_fail(path, missing, NLEAF(missing), "param 'l2.fc.w' [3,5]",
                    "missing from the checkpoint");

  const leaf extra[] = {NET[0], NET[1], NET[2], NET[3], NET[5]};
  expect_apply_fail(path, extra, NLEAF(extra), "'l0.bn.var' (state [4])",
                    "has no counterpart in the network");

  const leaf kind[] = {
      NET[0], NET[1], NET[2], {"l0.bn.mean", NAS_NODE_PARAM, 1, {4}}, NET[4], NET[5],
  };
  expect_apply_fail(path, kind, NLEAF(kind), "'l0.bn.mean' is a state in the checkpoint",
                    "a param in the network");

  /* A network whose leaves share a name is ambiguous. */
  const leaf dup[] = {
      NET[0], NET[1], NET[2], NET[3], NET[4], NET[5], {"l0.conv.b", NAS_NODE_STATE, 1, {4}},
  };
  expect_apply_fail(path, dup, NLEAF(dup), "both named 'l0.conv.b'", NULL);

  nas_graph_free(g);
}

/* ---- refused saves ------------------------------------------------------------------ */

static void test_save_refused(void **state) {
  char path[512], tmp[520];
  nas_err e = {0};
  nas_graph *g = build(NET, NLEAF(NET));

  in_dir(state, "no-such-dir/x.ckpt", path, sizeof path);
  assert_int_equal(nas_ckpt_save(path, ARCH, META, g, &e), NAS_EIO);
  assert_int_equal(e.code, NAS_EIO);
  assert_true(strncmp(e.msg, path, strlen(path)) == 0);
  assert_non_null(strstr(e.msg, "cannot create"));

  /* A directory in the way of the rename: the error names it, no .tmp is left behind. */
  in_dir(state, "a-directory", path, sizeof path);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  nas_err_clear(&e);
  assert_int_equal(nas_ckpt_save(path, ARCH, META, g, &e), NAS_EIO);
  assert_true(strncmp(e.msg, path, strlen(path)) == 0);
  assert_non_null(strstr(e.msg, "cannot rename"));
  assert_int_equal(access(tmp, F_OK), -1);
  assert_int_equal(rmdir(path), 0);

  /* Duplicate names cannot be saved (they could not be told apart on loading). */
  const leaf dup[] = {NET[1], {"l0.conv.w", NAS_NODE_STATE, 1, {2}}};
  nas_graph *d = build(dup, NLEAF(dup));
  in_dir(state, "dup.ckpt", path, sizeof path);
  nas_err_clear(&e);
  assert_int_equal(nas_ckpt_save(path, ARCH, META, d, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "both named 'l0.conv.w'"));
  assert_int_equal(access(path, F_OK), -1);

  /* An unallocated graph has no values to save. */
  nas_graph *u = nas_graph_new(1, 1);
  int dims[1] = {3};
  assert_true(nas_graph_param(u, "w", 1, dims, &e) >= 0);
  nas_err_clear(&e);
  assert_int_equal(nas_ckpt_save(path, ARCH, META, u, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "not allocated"));

  nas_graph_free(u);
  nas_graph_free(d);
  nas_graph_free(g);
}

/* ---- fixture directory -------------------------------------------------------------- */

static int make_dir(void **state) {
  const char *base = getenv("TMPDIR");
  char *dir = malloc(512);
  if (!dir) return -1;
  snprintf(dir, 512, "%s/nas-ckpt-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(dir)) {
    free(dir);
    return -1;
  }
  *state = dir;
  return 0;
}

static int remove_dir(void **state) {
  char *dir = *state;
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *ent;
    char p[1024];
    while ((ent = readdir(d)) != NULL) {
      if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
      snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
      remove(p);
    }
    closedir(d);
  }
  int rc = rmdir(dir);
  free(dir);
  return rc;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_layout),
      cmocka_unit_test(test_empty_strings),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_empty_file),
      cmocka_unit_test(test_bad_magic),
      cmocka_unit_test(test_bad_version),
      cmocka_unit_test(test_every_truncation),
      cmocka_unit_test(test_every_flipped_byte),
      cmocka_unit_test(test_malformed_fields),
      cmocka_unit_test(test_apply_refused),
      cmocka_unit_test(test_save_refused),
  };
  return test_exit(cmocka_run_group_tests(tests, make_dir, remove_dir));
}
