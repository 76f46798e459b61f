/* nas/strategies/evolution.c: aging evolution (Real et al. 2019), multi-objective, through
 * the run driver's proposal loop (nas/run.h). The population is the last P candidates in state
 * done whose objectives are all known; until P exist, candidates are sampled uniformly. A
 * parent is the best of S members drawn uniformly (with replacement) from the population,
 * "best" meaning lowest non-dominated rank over the run's objectives within the population,
 * then largest crowding distance, then oldest; the child is the parent with one decision
 * mutated (a duplicate of an earlier candidate is mutated again, up to MUTATE_TRIES times,
 * then the candidate is sampled uniformly). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "nas/strategies/strategy.h"

#define MUTATE_TRIES 50 /* mutations of one parent before falling back to sampling */

typedef struct evo {
  int population;  /* P (8) */
  int sample_size; /* S (3) */
} evo;

static const nas_opt OPTIONS[] = {
    {"--population", NAS_OPT_INT, "P", 2, 100000, .help = "population (8)", .key = "population"},
    {"--sample-size", NAS_OPT_INT, "S", 1, 100000, .help = "tournament size (3)", .key = "sample_size"},
    {0}};

static int configure(nas_run *r, const cJSON *config, nas_err *e) {
  evo *v = nas_calloc(1, sizeof *v);
  if (!v) return nas_errf(e, NAS_ENOMEM, "out of memory");
  r->state = v;
  v->population = (int)nas_config_num(config, "population", 8);
  v->sample_size = (int)nas_config_num(config, "sample_size", 3);
  if (v->population < 2 || v->population > 100000)
    return nas_errf(e, NAS_EUSAGE, "population %d is out of range 2..100000", v->population);
  if (v->sample_size < 1 || v->sample_size > 100000)
    return nas_errf(e, NAS_EUSAGE, "sample size %d is out of range 1..100000", v->sample_size);
  if (v->sample_size > v->population)
    return nas_errf(e, NAS_EUSAGE, "--sample-size %d is larger than --population %d", v->sample_size,
                    v->population);
  return NAS_OK;
}

static int save(const nas_run *r, cJSON *config) {
  const evo *v = r->state;
  int ok = cJSON_AddNumberToObject(config, "population", v->population) != NULL;
  ok &= cJSON_AddNumberToObject(config, "sample_size", v->sample_size) != NULL;
  return ok ? 0 : -1;
}

static void release(nas_run *r) {
  free(r->state);
  r->state = NULL;
}

/* Index (into r->h) of the tournament winner among the last P done candidates; -1 when fewer
 * than P exist, -2 when out of memory. */
static int pick_parent(const nas_run *r, int k, nas_rng *rng) {
  const evo *v = r->state;
  int P = v->population, m = r->obj.n;
  int *pop = nas_malloc(sizeof(int) * (size_t)P), *rank = nas_malloc(sizeof(int) * (size_t)P);
  int *idx = nas_malloc(sizeof(int) * (size_t)P);
  double *pts = nas_malloc(sizeof(double) * (size_t)(P * m));
  double *crowd = nas_malloc(sizeof(double) * (size_t)P), *dist = nas_malloc(sizeof(double) * (size_t)P);
  int winner = -2;
  if (!pop || !rank || !idx || !pts || !crowd || !dist) goto done;
  int np = 0;
  for (int i = k - 1; i >= 0 && np < P; i--) {
    if (strcmp(r->h[i].state, "done")) continue;
    int ok = 1;
    nas_metrics mm = r->h[i].m;
    for (int j = 0; j < m; j++) ok &= isfinite(*nas_metrics_at(&mm, r->obj.metric[j])) != 0;
    if (ok) pop[np++] = i;
  }
  if (np < P) {
    winner = -1;
    goto done;
  }
  for (int i = 0; i < P; i++) {
    nas_metrics mm = r->h[pop[i]].m;
    for (int j = 0; j < m; j++) pts[i * m + j] = *nas_metrics_at(&mm, r->obj.metric[j]);
  }
  int fronts = nas_pareto_ranks(pts, P, m, r->obj.maximize, rank);
  if (fronts < 0) goto done;
  for (int f = 0; f < fronts; f++) {
    int kk = 0;
    for (int i = 0; i < P; i++)
      if (rank[i] == f) idx[kk++] = i;
    if (nas_pareto_crowding(pts, m, idx, kk, dist) < 0) goto done;
    for (int j = 0; j < kk; j++) crowd[idx[j]] = dist[j];
  }
  int best = -1;
  for (int s = 0; s < v->sample_size; s++) {
    int i = (int)nas_rng_below(rng, (uint32_t)P);
    if (best < 0 || rank[i] < rank[best] || (rank[i] == rank[best] && crowd[i] > crowd[best]) ||
        (rank[i] == rank[best] && crowd[i] == crowd[best] && pop[i] < pop[best]))
      best = i;
  }
  winner = pop[best];
done:
  free(pts), free(rank), free(idx), free(crowd), free(dist), free(pop);
  return winner;
}

static int propose(const nas_run *r, int k, nas_rng *rng, nas_proposal *p, int *found,
                   nas_err *e) {
  int parent = pick_parent(r, k, rng);
  if (parent == -2) return nas_errf(e, NAS_ENOMEM, "evolution: out of memory");
  for (int t = 0; parent >= 0 && t < MUTATE_TRIES; t++) {
    int rc = nas_space_mutate(r->sp, rng, r->h[parent].d, p->d, NULL, e);
    if (rc == NAS_OK) rc = nas_propose_take(r, k, p, found, e);
    if (rc != NAS_OK) return rc;
    if (*found) {
      p->parent = r->h[parent].id, p->generation = r->h[parent].generation + 1;
      return NAS_OK;
    }
  }
  return nas_propose_uniform(r, k, rng, p, found, e);
}

const nas_strategy nas_strategy_evolution = {
    .name = "evolution",
    .summary = "aging evolution, Pareto rank + crowding",
    .options = OPTIONS,
    .unit = "candidate",
    .configure = configure,
    .save = save,
    .propose = propose,
    .release = release,
};
