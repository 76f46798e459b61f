/* results/pareto.h: Pareto fronts over the metric columns of the store, and the generic
 * multi-objective tools evolution uses (non-dominated sorting ranks, crowding distance).
 * Objective lists are written "column:dir,column:dir" with dir "max" or "min" and columns
 * from nas_metric_name (results/store.h), e.g. "acc_int8_test:max,latency_pred_ms:min".
 * Ownership: rows returned by nas_pareto_front are malloc'd; free with free(). */
#ifndef NAS_RESULTS_PARETO_H
#define NAS_RESULTS_PARETO_H

#include <stdint.h>

#include "core/error.h"
#include "results/store.h"

#define NAS_PARETO_MAX_OBJ 8

typedef struct nas_objectives {
  int n;                              /* number of objectives (1..NAS_PARETO_MAX_OBJ) */
  int metric[NAS_PARETO_MAX_OBJ];     /* metric column index (nas_metric_name) */
  int maximize[NAS_PARETO_MAX_OBJ];   /* 1 = larger is better, 0 = smaller is better */
} nas_objectives;

/* Parses "col:max,col:min,..." (whitespace around items allowed; a missing ":dir" is an
 * error). Unknown columns are errors listing the valid ones; a repeated column is an error. */
int nas_objectives_parse(const char *spec, nas_objectives *o, nas_err *e);
/* Writes the list back as text ("acc_int8_test:max,macs:min") into buf. */
void nas_objectives_format(const nas_objectives *o, char *buf, int cap);

typedef struct nas_pareto_row {
  int64_t id;                         /* candidates.id */
  int64_t run_id;                     /* its run */
  double v[NAS_PARETO_MAX_OBJ];       /* objective values in the order of the objectives */
  int rank;                           /* 0 on the front (always 0 from nas_pareto_front) */
} nas_pareto_row;

/* The non-dominated candidates among those in state 'done' whose objective columns are all
 * non-NULL, of run run_id (0 = every run), optionally restricted by `where` (an SQL
 * expression over the candidates columns, e.g. "peak_sram_bytes <= 65536"; NULL or "" =
 * none). The filter is run inside a read-only SELECT; a filter containing ';' or one that
 * would write is refused. Rows are sorted by the first objective, best first, then by id. */
int nas_pareto_front(nas_store *s, const nas_objectives *o, int64_t run_id, const char *where,
                     nas_pareto_row **rows, int *n, nas_err *e);

/* pts: [n, m] row-major objective values; maximize[m]. 1 when a dominates b (no worse in
 * every objective, better in at least one). */
int nas_dominates(const double *a, const double *b, int m, const int *maximize);
/* Non-dominated sorting (NSGA-II): rank[i] = 0 for the front, 1 for the front of the rest,
 * ... Returns the number of fronts, or -1 when out of memory. */
int nas_pareto_ranks(const double *pts, int n, int m, const int *maximize, int *rank);
/* Crowding distance of the k points idx[0..k) (usually one front) within that set: the sum
 * over objectives of the normalised gap between each point's neighbours; boundary points
 * get INFINITY. dist[j] belongs to idx[j]. Returns 0, or -1 when out of memory. */
int nas_pareto_crowding(const double *pts, int m, const int *idx, int k, double *dist);

#endif
