/* nas/strategies/random.c: random search: every candidate is a uniform sample of the space's
 * decisions (a duplicate of an earlier candidate is drawn again), through the run driver's
 * proposal loop (nas/run.h). */
#include "nas/strategies/strategy.h"

static int propose(const nas_run *r, int k, nas_rng *rng, nas_proposal *p, int *found,
                   nas_err *e) {
  return nas_propose_uniform(r, k, rng, p, found, e);
}

const nas_strategy nas_strategy_random = {
    .name = "random",
    .summary = "each decision uniform",
    .unit = "candidate",
    .propose = propose,
};
