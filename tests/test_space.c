/* Search spaces: parse errors with paths, size counting, sampling determinism, every sample
 * of every built-in space builds with nas_net_build, single-choice mutation, encoding round
 * trip, repeat/optional materialisation, and canonical arch hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search_spaces/space.h"
#include "train/net.h"
#include "tests/test_util.h"

static void parse_err(const char *json, const char *frag1, const char *frag2) {
  nas_space *s = NULL;
  nas_err e = {0};
  assert_int_not_equal(nas_space_parse(json, "t.json", &s, &e), NAS_OK);
  assert_null(s);
  if (!strstr(e.msg, frag1) || (frag2 && !strstr(e.msg, frag2)))
    fail_msg("message '%s' lacks '%s' / '%s'", e.msg, frag1, frag2 ? frag2 : "");
  assert_null(strchr(e.msg, '\n'));
}

static nas_space *parse_ok(const char *json) {
  nas_space *s = NULL;
  nas_err e = {0};
  if (nas_space_parse(json, "t.json", &s, &e)) fail_msg("parse: %s", e.msg);
  return s;
}

#define HEAD "{\"name\":\"sp\",\"input\":[8,8,1],\"classes\":3,\"layers\":["

static void test_parse_errors(void **state) {
  (void)state;
  parse_err(HEAD "{\"op\":\"conv\",\"out\":4},{\"op\":\"conv\",\"out\":{\"choice\":[]}}]}",
            "space sp: layers[1].out: choice list is empty", NULL);
  parse_err(HEAD "{\"op\":\"conv\",\"out\":{\"choice\":4}}]}", "layers[0].out", "must be a list");
  parse_err(HEAD "{\"op\":\"conv\",\"out\":{\"choice\":[4],\"x\":1}}]}", "layers[0].out",
            "may only hold");
  parse_err(HEAD "{\"op\":\"conv\",\"out\":{\"choice\":[{\"choice\":[1]}]}}]}", "layers[0].out",
            "nested");
  parse_err(HEAD "{\"op\":\"conv\",\"out\":4,\"repeat\":0}]}", "layers[0].repeat", "1..64");
  parse_err(HEAD "{\"op\":\"conv\",\"out\":4,\"repeat\":{\"choice\":[1,2.5]}}]}", "layers[0].repeat", NULL);
  parse_err(HEAD "{\"op\":\"conv\",\"out\":4,\"optional\":1}]}", "layers[0].optional", "true or false");
  parse_err(HEAD "{\"out\":4}]}", "layers[0]", "missing \"op\"");
  parse_err(HEAD "{\"block\":[{\"op\":\"conv\",\"out\":4},{\"op\":\"conv\",\"k\":{\"choice\":[]}}]}]}",
            "layers[0].block[1].k: choice list is empty", NULL);
  parse_err(HEAD "{\"block\":[],\"repeat\":2}]}", "layers[0].block", "non-empty");
  parse_err(HEAD "{\"block\":[{\"op\":\"gap\"}],\"out\":3}]}", "layers[0]", "unknown field 'out'");
  parse_err("{\"name\":\"sp\",\"input\":[8,8,1],\"classes\":3,\"layers\":[],\"x\":1}", "unknown field 'x'", NULL);
  parse_err("{\"name\":\"sp\",\"classes\":3,\"layers\":[{\"op\":\"gap\"}]}", "space sp: input: required", NULL);
  parse_err("{\"name\":\"sp\",\"input\":[8,8,1],\"classes\":3,\"layers\":[]}", "space sp: layers", "non-empty");
  parse_err("{\"input\":[8,8,1],\"classes\":3,\"layers\":{}}", "space t.json: layers", NULL);
  parse_err("{\"input\":", "space t.json", "not valid JSON");
  /* unknown built-in: lists the valid names */
  nas_space *s = NULL;
  nas_err e = {0};
  assert_int_not_equal(nas_space_load_builtin("kws-nope", &s, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "kws-nope"));
  assert_non_null(strstr(e.msg, "vision-mbnet-96"));
  assert_int_not_equal(nas_space_load("/nonexistent/space.json", &s, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "/nonexistent/space.json"));
}

/* 3 widths x repeat {1,2} x optional x 2 kernels x input choice of 2 = 48 */
static const char *SMALL =
    "{\"name\":\"small\",\"input\":{\"choice\":[[8,8,1],[12,12,1]]},\"classes\":3,\"layers\":["
    "{\"op\":\"conv\",\"out\":{\"choice\":[4,8,16]},\"stride\":2,\"repeat\":{\"choice\":[1,2]}},"
    "{\"block\":[{\"op\":\"dsconv\",\"out\":8,\"k\":{\"choice\":[3,5]}},{\"op\":\"maxpool\"}],\"optional\":true},"
    "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";

static void test_size_and_materialize(void **state) {
  (void)state;
  nas_space *s = parse_ok(SMALL);
  assert_string_equal(nas_space_name(s), "small");
  assert_int_equal(nas_space_n_decisions(s), 5);
  assert_true(nas_space_size(s) == 48.0);
  assert_string_equal(nas_space_decision_path(s, 0), "input");
  assert_string_equal(nas_space_decision_path(s, 1), "layers[0].repeat");
  assert_string_equal(nas_space_decision_path(s, 2), "layers[0].out");
  assert_string_equal(nas_space_decision_path(s, 3), "layers[1].optional");
  assert_string_equal(nas_space_decision_path(s, 4), "layers[1].block[0].k");
  int d[5] = {1, 1, 2, 0, 1};
  char *arch;
  nas_err e = {0};
  assert_int_equal(nas_space_materialize(s, d, &arch, &e), NAS_OK);
  assert_string_equal(arch,
                      "{\"input\":[12,12,1],\"classes\":3,\"layers\":["
                      "{\"op\":\"conv\",\"out\":16,\"stride\":2},{\"op\":\"conv\",\"out\":16,\"stride\":1},"
                      "{\"op\":\"dsconv\",\"out\":8,\"k\":5},{\"op\":\"maxpool\"},"
                      "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}");
  nas_net *n = NULL;
  assert_int_equal(nas_net_build(arch, "arch", 1, 1, &n, &e), NAS_OK);
  nas_net_free(n);
  free(arch);
  unsigned char act[5];
  assert_int_equal(nas_space_active(s, d, act, &e), NAS_OK);
  for (int i = 0; i < 5; i++) assert_int_equal(act[i], 1);
  d[3] = 1; /* skip the block: its kernel decision becomes inactive */
  assert_int_equal(nas_space_materialize(s, d, &arch, &e), NAS_OK);
  assert_null(strstr(arch, "dsconv"));
  free(arch);
  assert_int_equal(nas_space_active(s, d, act, &e), NAS_OK);
  assert_int_equal(act[4], 0);
  assert_int_equal(act[2], 1);
  d[2] = 3; /* out of range */
  assert_int_not_equal(nas_space_materialize(s, d, &arch, &e), NAS_OK);
  assert_null(arch);
  assert_non_null(strstr(e.msg, "layers[0].out"));
  assert_int_equal(nas_space_check(s, &e), NAS_OK);
  nas_space_free(s);
}

static void test_sample_determinism(void **state) {
  (void)state;
  nas_space *s;
  nas_err e = {0};
  assert_int_equal(nas_space_load_builtin("kws-dscnn", &s, &e), NAS_OK);
  int n = nas_space_n_decisions(s);
  int *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
  nas_rng r1, r2, r3;
  nas_rng_seed(&r1, 42), nas_rng_seed(&r2, 42), nas_rng_seed(&r3, 43);
  int differ = 0;
  for (int t = 0; t < 20; t++) {
    nas_space_sample(s, &r1, a);
    nas_space_sample(s, &r2, b);
    assert_memory_equal(a, b, (size_t)n * sizeof *a);
    nas_space_sample(s, &r3, b);
    differ |= memcmp(a, b, (size_t)n * sizeof *a) != 0;
    for (int i = 0; i < n; i++) assert_true(a[i] >= 0 && a[i] < nas_space_card(s, i));
  }
  assert_true(differ);
  free(a), free(b);
  nas_space_free(s);
}

static void test_builtins_build(void **state) {
  (void)state;
  nas_err e = {0};
  for (int k = 0; k < nas_space_builtin_count(); k++) {
    const char *name = nas_space_builtin_name(k);
    nas_space *s;
    if (nas_space_load_builtin(name, &s, &e)) fail_msg("%s", e.msg);
    assert_string_equal(nas_space_name(s), name);
    assert_true(nas_space_size(s) > 100);
    if (nas_space_check(s, &e)) fail_msg("%s", e.msg);
    int n = nas_space_n_decisions(s);
    int *d = malloc((size_t)n * sizeof *d);
    nas_rng r;
    nas_rng_seed(&r, 1000 + (uint64_t)k);
    int samples = strcmp(name, "vision-mbnet-96") ? 30 : 12; /* the 96x96 graphs are large */
    for (int t = 0; t < samples; t++) {
      nas_space_sample(s, &r, d);
      char *arch;
      if (nas_space_materialize(s, d, &arch, &e)) fail_msg("%s", e.msg);
      nas_net *net = NULL;
      if (nas_net_build(arch, name, 1, 1, &net, &e)) fail_msg("%s sample %d: %s\n%s", name, t, e.msg, arch);
      assert_int_equal(net->classes, strncmp(name, "kws", 3) ? 10 : 12);
      nas_net_free(net);
      free(arch);
    }
    free(d);
    nas_space_free(s);
  }
}

static void test_mutation(void **state) {
  (void)state;
  nas_err e = {0};
  for (int k = 0; k < nas_space_builtin_count(); k++) {
    nas_space *s;
    assert_int_equal(nas_space_load_builtin(nas_space_builtin_name(k), &s, &e), NAS_OK);
    int n = nas_space_n_decisions(s);
    int *p = malloc((size_t)n * sizeof *p), *c = malloc((size_t)n * sizeof *c);
    unsigned char *act = malloc((size_t)n);
    nas_rng r;
    nas_rng_seed(&r, 5);
    for (int t = 0; t < 50; t++) {
      nas_space_sample(s, &r, p);
      int i = -2;
      assert_int_equal(nas_space_mutate(s, &r, p, c, &i, &e), NAS_OK);
      assert_true(i >= 0 && i < n);
      int changed = 0;
      for (int j = 0; j < n; j++) changed += p[j] != c[j];
      assert_int_equal(changed, 1);
      assert_int_not_equal(p[i], c[i]);
      assert_true(c[i] >= 0 && c[i] < nas_space_card(s, i));
      assert_int_equal(nas_space_active(s, p, act, &e), NAS_OK);
      assert_int_equal(act[i], 1); /* only decisions that change the architecture */
      char *a1, *a2, h1[17], h2[17];
      assert_int_equal(nas_space_materialize(s, p, &a1, &e), NAS_OK);
      assert_int_equal(nas_space_materialize(s, c, &a2, &e), NAS_OK);
      assert_int_equal(nas_arch_hash_hex(a1, h1, &e), NAS_OK);
      assert_int_equal(nas_arch_hash_hex(a2, h2, &e), NAS_OK);
      if (!strcmp(h1, h2)) fail_msg("%s: %s unchanged\n%s\n%s", nas_space_name(s), nas_space_decision_path(s, i), a1, a2);
      free(a1), free(a2);
    }
    free(p), free(c), free(act);
    nas_space_free(s);
  }
  /* a space without a real decision cannot mutate */
  nas_space *s = parse_ok(HEAD "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":{\"choice\":[3]}}]}");
  int p[1] = {0}, c[1] = {7};
  nas_rng r;
  nas_rng_seed(&r, 1);
  int i = -2;
  assert_int_equal(nas_space_mutate(s, &r, p, c, &i, &e), NAS_OK);
  assert_int_equal(i, -1);
  assert_int_equal(c[0], 0);
  nas_space_free(s);
}

static void test_encoding(void **state) {
  (void)state;
  nas_space *s = parse_ok(SMALL);
  int d[5] = {1, 0, 2, 1, 0}, back[5];
  double x[5];
  nas_space_encode(s, d, x);
  assert_true(x[0] == 1.0 && x[1] == 0.0 && x[2] == 1.0 && x[3] == 1.0 && x[4] == 0.0);
  d[2] = 1;
  nas_space_encode(s, d, x);
  assert_true(x[2] == 0.5);
  nas_space_decode(s, x, back);
  assert_memory_equal(d, back, sizeof d);
  double y[5] = {0.49, 0.51, 0.74, 2.0, -1.0};
  nas_space_decode(s, y, back);
  assert_int_equal(back[0], 0);
  assert_int_equal(back[1], 1);
  assert_int_equal(back[2], 1);
  assert_int_equal(back[3], 1);
  assert_int_equal(back[4], 0);
  nas_space_free(s);
  /* round trip on samples of a built-in */
  nas_err e = {0};
  assert_int_equal(nas_space_load_builtin("vision-mbnet", &s, &e), NAS_OK);
  int n = nas_space_n_decisions(s);
  int *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
  double *v = malloc((size_t)n * sizeof *v);
  nas_rng r;
  nas_rng_seed(&r, 9);
  for (int t = 0; t < 50; t++) {
    nas_space_sample(s, &r, a);
    nas_space_encode(s, a, v);
    for (int i = 0; i < n; i++) assert_true(v[i] >= 0 && v[i] <= 1);
    nas_space_decode(s, v, b);
    assert_memory_equal(a, b, (size_t)n * sizeof *a);
  }
  free(a), free(b), free(v);
  nas_space_free(s);
}

static void test_hash(void **state) {
  (void)state;
  nas_err e = {0};
  char h1[17], h2[17], h3[17];
  const char *a = "{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}";
  const char *b = "{ \"layers\": [ {\"op\":\"gap\"}, {\"out\":3.0, \"op\":\"fc\"} ],\n \"classes\":3, \"input\":[8, 8, 1] }";
  const char *c = "{\"input\":[8,8,1],\"classes\":3,\"layers\":[{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":4}]}";
  assert_int_equal(nas_arch_hash_hex(a, h1, &e), NAS_OK);
  assert_int_equal(nas_arch_hash_hex(b, h2, &e), NAS_OK);
  assert_int_equal(nas_arch_hash_hex(c, h3, &e), NAS_OK);
  assert_int_equal(strlen(h1), 16);
  assert_string_equal(h1, h2);     /* key order, whitespace, 3.0 vs 3 do not matter */
  assert_string_not_equal(h1, h3); /* a different width does */
  /* stable across builds and platforms: a fixed value */
  char hx[17];
  assert_int_equal(nas_arch_hash_hex("{\"a\":1}", hx, &e), NAS_OK);
  assert_string_equal(hx, "9c3e82dd6fcae8b1"); /* FNV-1a 64 of the text itself */
  char again[17];
  assert_int_equal(nas_arch_hash_hex("{\"a\":1}", again, &e), NAS_OK);
  assert_string_equal(hx, again);
  assert_int_not_equal(nas_arch_hash_hex("{bad", hx, &e), NAS_OK);
  assert_non_null(strstr(e.msg, "not valid JSON"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_size_and_materialize),
      cmocka_unit_test(test_sample_determinism), cmocka_unit_test(test_builtins_build),
      cmocka_unit_test(test_mutation), cmocka_unit_test(test_encoding),
      cmocka_unit_test(test_hash),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
