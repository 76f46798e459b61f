/* tests/test_dnas_resume.c: a DNAS run interrupted twice (stop flag of the hooks) and resumed
 * ends bit-identical (candidates, metrics, architecture history) to an uninterrupted one; a
 * truncated, corrupt, old-format or malformed supernet checkpoint is refused naming the file
 * (and the field). */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <unistd.h>

#include "nas/strategies/dnas.h"
#include "results/store.h"
#include "tests/test_dnas_util.h"
#include "tests/test_util.h"
#include "train/checkpoint.h"

/* ---- interruption and exact resume ------------------------------------------------------ */

/* Stops the run (through the hooks' stop flag) after the stop_at-th supernet epoch report. */
typedef struct stopper {
  int seen, stop_at;
  volatile sig_atomic_t flag;
} stopper;

static void stop_after_epochs(const nas_search_progress *p, void *user) {
  stopper *st = user;
  if (!strcmp(p->state, "supernet") && ++st->seen == st->stop_at) st->flag = 1;
}

/* Runs (or resumes, run > 0) with a hook stopping after stop_at supernet epochs (0: never). */
static int run_until(const char *db, const nas_dnas_cfg *c, int64_t run, int stop_at,
                     nas_search_summary *s, nas_err *e) {
  stopper st = {0, stop_at, 0};
  nas_search_hooks h = {stop_after_epochs, &st, &st.flag};
  return run ? nas_dnas_resume(db, run, &h, s, e) : nas_dnas_run(db, c, &h, s, e);
}

/* The run's candidates (architecture, state, every metric but the wall time) and its
 * "dnas_epoch"/"dnas_point" events (payloads without wall times), as one text. */
static char *run_digest(const char *db, int64_t run) {
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  out[0] = '\0';
#define PUT(...)                                                                             \
  do {                                                                                       \
    int need_ = snprintf(NULL, 0, __VA_ARGS__);                                              \
    while (len + (size_t)need_ + 1 > cap) assert_non_null(out = realloc(out, cap *= 2));     \
    len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__);                              \
  } while (0)
  nas_store *st = NULL;
  nas_err e = {0};
  assert_int_equal(nas_store_open(db, &st, &e), NAS_OK);
  int64_t *ids = NULL;
  int n = 0;
  assert_int_equal(nas_store_candidate_ids(st, run, NULL, &ids, &n, &e), NAS_OK);
  for (int i = 0; i < n; i++) {
    nas_candidate_row row;
    memset(&row, 0, sizeof row);
    assert_int_equal(nas_store_candidate_get(st, ids[i], &row, &e), NAS_OK);
    PUT("candidate %lld %s %s\n", (long long)row.id, row.state, row.arch_json);
    for (int m = 0; m < NAS_N_METRICS; m++)
      if (strcmp(nas_metric_name(m), "train_seconds"))
        PUT("  %s %a\n", nas_metric_name(m), *nas_metrics_at(&row.m, m)); /* bit-exact */
    nas_store_candidate_row_free(&row);
  }
  free(ids);
  nas_store_close(st);
  sqlite3 *q = NULL;
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(q, "SELECT kind, candidate_id, payload FROM events WHERE "
                                      "run_id = ? AND kind IN ('dnas_epoch', 'dnas_point') "
                                      "ORDER BY id", -1, &stmt, NULL), SQLITE_OK);
  sqlite3_bind_int64(stmt, 1, run);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    cJSON *j = cJSON_Parse((const char *)sqlite3_column_text(stmt, 2));
    assert_non_null(j);
    cJSON_DeleteItemFromObjectCaseSensitive(j, "seconds");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "supernet_seconds");
    char *t = cJSON_PrintUnformatted(j);
    PUT("%s %lld %s\n", (const char *)sqlite3_column_text(stmt, 0),
        (long long)sqlite3_column_int64(stmt, 1), t);
    cJSON_free(t);
    cJSON_Delete(j);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(q);
#undef PUT
  return out;
}

/* Rewrites checkpoint path (valid) with its meta JSON edited by edit(meta) and a fresh CRC. */
static void rewrite_meta(const char *path, void (*edit)(cJSON *)) {
  nas_ckpt ck;
  nas_err e = {0};
  assert_int_equal(nas_ckpt_load(path, &ck, &e), NAS_OK);
  nas_graph *g = nas_graph_new(1, 1);
  for (int i = 0; i < ck.n; i++)
    assert_true((ck.t[i].kind == NAS_NODE_PARAM
                     ? nas_graph_param(g, ck.t[i].name, ck.t[i].shape.nd, ck.t[i].shape.d, &e)
                     : nas_graph_state(g, ck.t[i].name, ck.t[i].shape.nd, ck.t[i].shape.d, &e)) >= 0);
  assert_int_equal(nas_graph_alloc(g, &e), NAS_OK);
  for (int i = 0; i < ck.n; i++)
    memcpy(g->nodes[i].val, ck.t[i].data, sizeof(float) * nas_shape_numel(&ck.t[i].shape));
  cJSON *j = cJSON_Parse(ck.meta_json);
  assert_non_null(j);
  edit(j);
  char *meta = cJSON_PrintUnformatted(j);
  assert_int_equal(nas_ckpt_save(path, ck.arch_json, meta, g, &e), NAS_OK);
  cJSON_free(meta);
  cJSON_Delete(j);
  nas_graph_free(g);
  nas_ckpt_free(&ck);
}

static void drop_format(cJSON *j) { cJSON_DeleteItemFromObjectCaseSensitive(j, "format"); }
static void drop_momentum(cJSON *j) {
  cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "opt"), "m");
}
static void cut_alpha(cJSON *j) {
  cJSON_ReplaceItemInObjectCaseSensitive(j, "alpha", cJSON_CreateString("AAAA"));
}

static void copy_file(const char *from, const char *to) {
  char cmd[1000];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
  assert_int_equal(system(cmd), 0);
}

/* With a fixed seed, a run stopped twice (in point 0 after its first architecture epoch, in
 * point 1 after its first epoch past the shared warm-up) and resumed each time ends with the
 * same candidates, metrics and architecture-parameter history, bit for bit, as an
 * uninterrupted run: the checkpoints carry the SGD momentum, the logits' Adam state and the
 * counters. A truncated, corrupt, old-format or malformed checkpoint is refused with an
 * error naming the file, and the run stays resumable. */
static void test_interrupt_and_resume(void **state) {
  (void)state;
  char data[300], a[300], b[300], spec[320], ck[400], keep[420];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(ck, sizeof ck, "mkdir -p %s", data);
  assert_int_equal(system(ck), 0);
  test_write_bar_idx(data, "train", 300, 1);
  test_write_bar_idx(data, "t10k", 100, 2);
  snprintf(spec, sizeof spec, "idx:%s", data);
  snprintf(a, sizeof a, "%s/straight.db", dir);
  snprintf(b, sizeof b, "%s/resumed.db", dir);
  nas_dnas_cfg c;
  nas_dnas_cfg_default(&c);
  c.base.space = small_path, c.base.dataset = spec, c.base.target = "stm32f446re";
  c.base.batch = 32, c.base.epochs = 1, c.base.train_limit = 160, c.base.seed = 7;
  c.sn_epochs = 3, c.warmup = 1; /* Gumbel sampling (the default) */
  c.w[NAS_COST_FLASH] = 1;
  c.n_sweep = 2, c.sweep[0] = 0.2, c.sweep[1] = 5;
  nas_search_summary s;
  nas_err e = {0};
  if (run_until(a, &c, 0, 0, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_false(s.interrupted);
  assert_true(s.candidates >= 1);
  char *want = run_digest(a, s.run_id);

  /* stopped after point 0's epoch 2 (warm-up + one architecture epoch) */
  if (run_until(b, &c, 0, 2, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_true(s.interrupted);
  assert_int_equal(s.candidates, 0);
  int64_t run = s.run_id;
  { /* `nas resume` would continue this run, as a DNAS run */
    int64_t latest = 0;
    char strategy[32];
    assert_int_equal(nas_run_strategy_of(b, &latest, strategy, sizeof strategy, &e), NAS_OK);
    assert_int_equal(latest, run);
    assert_string_equal(strategy, "dnas");
  }
  /* a truncated checkpoint, then one with a flipped byte: refused, naming the file */
  snprintf(ck, sizeof ck, "%s.dnas-r%lld-p0.ckpt", b, (long long)run);
  snprintf(keep, sizeof keep, "%s.keep", ck);
  copy_file(ck, keep);
  FILE *f = fopen(ck, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  fclose(f);
  assert_int_equal(truncate(ck, size / 2), 0);
  e = (nas_err){0};
  assert_int_not_equal(run_until(b, &c, run, 0, &s, &e), NAS_OK);
  assert_non_null(strstr(e.msg, ck));
  assert_null(strchr(e.msg, '\n'));
  copy_file(keep, ck);
  f = fopen(ck, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, size / 3, SEEK_SET), 0);
  int ch = fgetc(f);
  assert_int_equal(fseek(f, size / 3, SEEK_SET), 0);
  fputc(ch ^ 0x10, f);
  fclose(f);
  e = (nas_err){0};
  assert_int_not_equal(run_until(b, &c, run, 0, &s, &e), NAS_OK);
  assert_non_null(strstr(e.msg, ck));
  /* intact files whose DNAS state is from an older build, lacks the momentum or has
     malformed logits: refused, naming the file and the field */
  static const struct {
    void (*edit)(cJSON *);
    const char *says;
  } BAD[] = {{drop_format, "older build"}, {drop_momentum, "field opt"}, {cut_alpha, "field alpha"}};
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
    copy_file(keep, ck);
    rewrite_meta(ck, BAD[i].edit);
    e = (nas_err){0};
    assert_int_not_equal(run_until(b, &c, run, 0, &s, &e), NAS_OK);
    if (!strstr(e.msg, ck) || !strstr(e.msg, BAD[i].says)) fail_msg("%s", e.msg);
  }
  copy_file(keep, ck);
  nas_store *st = NULL;
  int ev = 0;
  assert_int_equal(nas_store_open(b, &st, &e), NAS_OK);
  assert_int_equal(nas_store_event_count(st, run, "dnas_epoch", &ev, &e), NAS_OK);
  assert_int_equal(ev, 2);
  nas_store_close(st);

  /* resumed: point 0's epoch 3, its candidate, then point 1's epoch 2 from the warm-up; stop */
  if (run_until(b, &c, run, 2, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_true(s.interrupted);
  assert_int_equal(s.run_id, run);
  assert_int_equal(nas_store_open(b, &st, &e), NAS_OK);
  assert_int_equal(nas_store_event_count(st, run, "dnas_epoch", &ev, &e), NAS_OK);
  assert_int_equal(ev, 4);
  nas_store_close(st);
  /* resumed again: point 1's epoch 3 and its candidate */
  if (run_until(b, &c, run, 0, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_false(s.interrupted);
  char *got = run_digest(b, run);
  if (strcmp(want, got)) {
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    size_t from = i > 200 ? i - 200 : 0;
    fail_msg("resumed run differs from the uninterrupted one at byte %zu:\n"
             "uninterrupted: ...%.400s\nresumed:       ...%.400s", i, want + from, got + from);
  }
  free(want), free(got);
  assert_int_equal(nas_store_open(b, &st, &e), NAS_OK);
  assert_int_equal(nas_store_event_count(st, run, "dnas_epoch", &ev, &e), NAS_OK);
  assert_int_equal(ev, 5); /* every epoch once: continued from the checkpoints, not restarted */
  nas_store_close(st);
  assert_int_not_equal(nas_dnas_resume(b, run, NULL, &s, &e), NAS_OK); /* done */
}

/* Copies point 0's checkpoint aside after its first supernet epoch and stops after its
 * second: replacing the checkpoint with the copy gives the store and files of a process
 * killed after the second epoch's dnas_epoch event was written but before its checkpoint. */
typedef struct crash_window {
  int seen;
  char ck[400], prev[420];
  volatile sig_atomic_t flag;
} crash_window;

static void keep_first_epoch(const nas_search_progress *p, void *user) {
  crash_window *w = user;
  if (strcmp(p->state, "supernet")) return;
  if (++w->seen == 1) {
    snprintf(w->ck, sizeof w->ck, "%s/window.db.dnas-r%lld-p0.ckpt", dir, (long long)p->run_id);
    snprintf(w->prev, sizeof w->prev, "%s.prev", w->ck);
    copy_file(w->ck, w->prev);
  }
  if (w->seen == 2) w->flag = 1;
}

/* Killed between an epoch's event and its checkpoint, a resumed run trains that epoch again:
 * its dnas_epoch event is stored once, and the run ends as the uninterrupted one. */
static void test_event_checkpoint_window(void **state) {
  (void)state;
  char data[300], a[300], b[300], spec[320], cmd[320];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p %s", data);
  assert_int_equal(system(cmd), 0);
  test_write_bar_idx(data, "train", 300, 1);
  test_write_bar_idx(data, "t10k", 100, 2);
  snprintf(spec, sizeof spec, "idx:%s", data);
  snprintf(a, sizeof a, "%s/window-straight.db", dir);
  snprintf(b, sizeof b, "%s/window.db", dir);
  nas_dnas_cfg c;
  nas_dnas_cfg_default(&c);
  c.base.space = small_path, c.base.dataset = spec, c.base.target = "stm32f446re";
  c.base.batch = 32, c.base.epochs = 1, c.base.train_limit = 160, c.base.seed = 7;
  c.sn_epochs = 3, c.warmup = 1;
  c.w[NAS_COST_FLASH] = 1;
  c.n_sweep = 2, c.sweep[0] = 0.2, c.sweep[1] = 5;
  nas_search_summary s;
  nas_err e = {0};
  if (run_until(a, &c, 0, 0, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  char *want = run_digest(a, s.run_id);
  crash_window w = {0};
  nas_search_hooks h = {keep_first_epoch, &w, &w.flag};
  if (nas_dnas_run(b, &c, &h, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_true(s.interrupted);
  int64_t run = s.run_id;
  copy_file(w.prev, w.ck); /* the checkpoint of epoch 1 beside the event of epoch 2 */
  nas_store *st = NULL;
  int ev = 0;
  assert_int_equal(nas_store_open(b, &st, &e), NAS_OK);
  assert_int_equal(nas_store_event_count(st, run, "dnas_epoch", &ev, &e), NAS_OK);
  assert_int_equal(ev, 2);
  nas_store_close(st);
  if (run_until(b, &c, run, 0, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_false(s.interrupted);
  assert_int_equal(nas_store_open(b, &st, &e), NAS_OK);
  assert_int_equal(nas_store_event_count(st, run, "dnas_epoch", &ev, &e), NAS_OK);
  nas_store_close(st);
  assert_int_equal(ev, 5); /* not 6: epoch 2 of point 0 once */
  char *got = run_digest(b, run);
  assert_string_equal(want, got);
  free(want), free(got);
}

/* A new store at the path of a deleted one: the old store's supernet checkpoints, left beside
 * it, have the same names (run 1) and were taken for the new run's (its supernets were not
 * trained: no dnas_epoch events, other weights). A new run removes them first. The deleted
 * store is test_interrupt_and_resume's uninterrupted run (run here when that test did not). */
static void test_stale_checkpoints(void **state) {
  (void)state;
  char data[300], a[300], spec[320], cmd[1024];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(spec, sizeof spec, "idx:%s", data);
  snprintf(a, sizeof a, "%s/straight.db", dir);
  nas_dnas_cfg c;
  nas_dnas_cfg_default(&c);
  c.base.space = small_path, c.base.dataset = spec, c.base.target = "stm32f446re";
  c.base.batch = 32, c.base.epochs = 1, c.base.train_limit = 160, c.base.seed = 7;
  c.sn_epochs = 3, c.warmup = 1;
  c.w[NAS_COST_FLASH] = 1;
  c.n_sweep = 2, c.sweep[0] = 0.2, c.sweep[1] = 5;
  nas_search_summary s;
  nas_err e = {0};
  if (access(a, F_OK) != 0) {
    snprintf(cmd, sizeof cmd, "mkdir -p %s", data);
    assert_int_equal(system(cmd), 0);
    test_write_bar_idx(data, "train", 300, 1);
    test_write_bar_idx(data, "t10k", 100, 2);
    if (run_until(a, &c, 0, 0, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  }
  char *want = run_digest(a, 1);
  char ck[400];
  snprintf(ck, sizeof ck, "%s.dnas-r1-p0.ckpt", a);
  assert_int_equal(access(ck, F_OK), 0); /* the finished run leaves its checkpoints */
  snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", a, a, a);
  assert_int_equal(system(cmd), 0);
  if (run_until(a, &c, 0, 0, &s, &e) != NAS_OK) fail_msg("%s", e.msg);
  assert_int_equal(s.run_id, 1);
  char *got = run_digest(a, s.run_id);
  assert_string_equal(want, got);
  free(want), free(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interrupt_and_resume),
      cmocka_unit_test(test_event_checkpoint_window),
      cmocka_unit_test(test_stale_checkpoints),
  };
  return test_exit(cmocka_run_group_tests(tests, setup, teardown));
}
