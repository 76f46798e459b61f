/* nas/strategies/strategy.h: the table of search strategies. Each strategy is one file here
 * defining a `const nas_strategy` (the interface the run driver calls, nas/run.h: name,
 * summary, option descriptors, configure/save/prepare, and either propose or its own body)
 * and one entry in the table of registry.c. `nas search` finds a strategy by name, `nas resume`
 * by the name stored with the run, and `--help` and error messages list the names from this
 * table.
 *
 * Adding a strategy: write nas/strategies/<name>.c defining `const nas_strategy
 * nas_strategy_<name> = {...}` and add it to the table in registry.c (its declaration and its
 * entry, two lines). */
#ifndef NAS_NAS_STRATEGIES_STRATEGY_H
#define NAS_NAS_STRATEGIES_STRATEGY_H

#include <stddef.h>

#include "nas/run.h"

/* The strategies, in table order. */
int nas_strategy_count(void);
const nas_strategy *nas_strategy_at(int i);
/* The strategy called name, or NULL. */
const nas_strategy *nas_strategy_find(const char *name);
/* The names joined by sep ("random, evolution, dnas") into buf. */
const char *nas_strategy_names(char *buf, size_t cap, const char *sep);

/* A new search with strategy `strategy` (a name of the table; an unknown one is NAS_EUSAGE
 * listing the names) and configuration config: nas_run_start. */
int nas_search_run(const char *db_path, const char *strategy, const struct cJSON *config,
                   const nas_search_hooks *h, nas_search_summary *s, nas_err *e);
/* Continues run run_id (0: the latest run not done) with the strategy it was started with:
 * nas_run_strategy_of, then nas_run_resume. */
int nas_search_resume(const char *db_path, int64_t run_id, const nas_search_hooks *h,
                      nas_search_summary *s, nas_err *e);

#endif
