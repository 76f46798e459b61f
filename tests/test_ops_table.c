/* The op table (train/ops_list.h expanded in train/ops.h and train/ops.c): every slot has a
 * unique name, shape inference, forward and backward, and input counts nas_graph_apply
 * enforces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "train/graph.h"
#include "train/ops.h"
#include "tests/test_util.h"

/* Every slot is filled: name, functions, a sensible input range. */
static void test_every_slot_is_complete(void **state) {
  (void)state;
  assert_true(NAS_OP_COUNT > 0);
  for (int op = 0; op < NAS_OP_COUNT; op++) {
    const nas_op_def *d = &nas_op_table[op];
    if (!d->name || !d->name[0]) fail_msg("op %d has no name", op);
    for (const char *c = d->name; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
        fail_msg("op %d: name '%s' is not a lower-case identifier", op, d->name);
    assert_string_equal(nas_op_name(op), d->name);
    if (!d->infer) fail_msg("op '%s' has no shape inference", d->name);
    if (!d->forward) fail_msg("op '%s' has no forward", d->name);
    /* every op is differentiable: inputs, parameters and state are leaves (enum nas_leaf),
       not ops, so no slot may lack a backward */
    if (!d->backward) fail_msg("op '%s' has no backward", d->name);
    if (d->min_in < 1 || d->min_in > d->max_in || d->max_in > NAS_MAX_INPUTS)
      fail_msg("op '%s': input range %d..%d is not within 1..%d", d->name, d->min_in, d->max_in,
               NAS_MAX_INPUTS);
    for (int k = 0; k < op; k++)
      if (!strcmp(nas_op_table[k].name, d->name))
        fail_msg("ops %d and %d are both '%s'", k, op, d->name);
  }
  assert_string_equal(nas_op_name(-1), "?");
  assert_string_equal(nas_op_name(NAS_OP_COUNT), "?");
}

/* nas_graph_apply refuses an unknown op and input counts outside each slot's range, naming
 * the op; the range check comes before shape inference, so any inputs do. */
static void test_input_counts_are_enforced(void **state) {
  (void)state;
  nas_graph *g = nas_graph_new(1, 1);
  assert_non_null(g);
  nas_err e = {0};
  int in[NAS_MAX_INPUTS + 1];
  for (int i = 0; i <= NAS_MAX_INPUTS; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    in[i] = nas_graph_param(g, name, 1, (int[]){4}, &e);
    assert_true(in[i] >= 0);
  }
  assert_int_equal(nas_graph_apply(g, NAS_OP_COUNT, in, 1, NULL, "y", &e), -1);
  assert_non_null(strstr(e.msg, "unknown op"));
  assert_int_equal(nas_graph_apply(g, -1, in, 1, NULL, "y", &e), -1);
  for (int op = 0; op < NAS_OP_COUNT; op++) {
    const nas_op_def *d = &nas_op_table[op];
    int bad[2] = {d->min_in - 1, d->max_in + 1};
    for (int k = 0; k < 2; k++) {
      int n = bad[k];
      if (n < 0 || n > NAS_MAX_INPUTS + 1) continue;
      e.msg[0] = 0;
      if (nas_graph_apply(g, op, in, n, NULL, "y", &e) != -1)
        fail_msg("op '%s' accepted %d inputs (range %d..%d)", d->name, n, d->min_in, d->max_in);
      if (strncmp(e.msg, d->name, strlen(d->name)) || !strstr(e.msg, "inputs"))
        fail_msg("op '%s' with %d inputs: message '%s' does not name the op and the count", d->name,
                 n, e.msg);
    }
  }
  assert_int_equal(g->n, NAS_MAX_INPUTS + 1); /* nothing was added */
  nas_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_slot_is_complete),
      cmocka_unit_test(test_input_counts_are_enforced),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
