/* core/rng.h: an explicit, seeded random number generator (xoshiro256**, seeded by
 * splitmix64). No global state: every user owns a nas_rng. Same seed, same stream, on every
 * platform, bit for bit. */
#ifndef NAS_CORE_RNG_H
#define NAS_CORE_RNG_H

#include <stdint.h>

typedef struct nas_rng {
  uint64_t s[4]; /* xoshiro256** state; never all zero */
} nas_rng;

void nas_rng_seed(nas_rng *r, uint64_t seed);
uint64_t nas_rng_u64(nas_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float nas_rng_uniform(nas_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint32_t nas_rng_below(nas_rng *r, uint32_t n);
/* Standard normal (Box-Muller; uses two uniforms per call, no cached state). */
float nas_rng_normal(nas_rng *r);
/* Derives an independent generator (for a sub-task) from this one. */
void nas_rng_split(nas_rng *r, nas_rng *child);
/* A seed for sub-task k of a job seeded with seed (salt tells tasks of different kinds
 * apart): a splitmix64-style finaliser of the three, so neighbouring k give unrelated
 * seeds. The search strategies derive candidate k's proposal and training seeds with it. */
uint64_t nas_seed_mix(uint64_t seed, uint64_t k, uint64_t salt);
/* Fisher-Yates shuffle of an int array. */
void nas_rng_shuffle(nas_rng *r, int *a, int n);

#endif
