/* nas/strategies/registry.c: the table of search strategies (see strategy.h) and the search
 * entry points that look a strategy up in it. */
#include "nas/strategies/strategy.h"

#include <stdio.h>
#include <string.h>

extern const nas_strategy nas_strategy_random;    /* random.c: uniform sampling */
extern const nas_strategy nas_strategy_evolution; /* evolution.c: aging evolution */
extern const nas_strategy nas_strategy_dnas;      /* dnas.c: differentiable search */
extern const nas_strategy nas_strategy_sparse;    /* sparse.c: SpArSe-style Bayesian optimisation */

/* Every strategy, in `nas search --help` order; a new one is declared above and added here. */
static const nas_strategy *const STRATEGIES[] = {&nas_strategy_random, &nas_strategy_evolution,
                                                 &nas_strategy_dnas, &nas_strategy_sparse};
#define N_STRATEGIES (int)(sizeof STRATEGIES / sizeof STRATEGIES[0])

int nas_strategy_count(void) { return N_STRATEGIES; }

const nas_strategy *nas_strategy_at(int i) { return i >= 0 && i < N_STRATEGIES ? STRATEGIES[i] : NULL; }

const nas_strategy *nas_strategy_find(const char *name) {
  for (int i = 0; name && i < N_STRATEGIES; i++)
    if (!strcmp(STRATEGIES[i]->name, name)) return STRATEGIES[i];
  return NULL;
}

const char *nas_strategy_names(char *buf, size_t cap, const char *sep) {
  size_t len = 0;
  if (cap) buf[0] = '\0';
  for (int i = 0; i < N_STRATEGIES && len < cap; i++) {
    int w = snprintf(buf + len, cap - len, "%s%s", i ? sep : "", STRATEGIES[i]->name);
    if (w < 0) break;
    len += (size_t)w;
  }
  return buf;
}

int nas_search_run(const char *db_path, const char *strategy, const struct cJSON *config,
                   const nas_search_hooks *h, nas_search_summary *s, nas_err *e) {
  const nas_strategy *st = nas_strategy_find(strategy);
  if (!st) {
    char names[256];
    memset(s, 0, sizeof *s);
    return nas_errf(e, NAS_EUSAGE, "unknown strategy '%s' (%s)", strategy ? strategy : "",
                    nas_strategy_names(names, sizeof names, ", "));
  }
  return nas_run_start(db_path, st, config, h, s, e);
}

int nas_search_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                      nas_search_summary *s, nas_err *e) {
  char name[64];
  memset(s, 0, sizeof *s);
  int rc = nas_run_strategy_of(db_path, &run_id, name, sizeof name, e);
  if (rc != NAS_OK) return rc;
  const nas_strategy *st = nas_strategy_find(name);
  if (!st) {
    char names[256];
    return nas_errf(e, NAS_EINVAL, "%s: run %lld has strategy '%s', which this build does not have (%s)",
                    db_path, (long long)run_id, name, nas_strategy_names(names, sizeof names, ", "));
  }
  return nas_run_resume(db_path, st, run_id, h, s, e);
}
