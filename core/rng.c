#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nas_rng_seed(nas_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t nas_rng_u64(nas_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float nas_rng_uniform(nas_rng *r) { return (float)(nas_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint32_t nas_rng_below(nas_rng *r, uint32_t n) {
  /* Lemire's multiply-shift with rejection. */
  uint64_t m = (uint64_t)(uint32_t)(nas_rng_u64(r) >> 32) * n;
  uint32_t lo = (uint32_t)m;
  if (lo < n) {
    uint32_t t = (uint32_t)(-n) % n;
    while (lo < t) {
      m = (uint64_t)(uint32_t)(nas_rng_u64(r) >> 32) * n;
      lo = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

float nas_rng_normal(nas_rng *r) {
  double u1 = ((double)(nas_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0,1] */
  double u2 = (double)(nas_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void nas_rng_split(nas_rng *r, nas_rng *child) { nas_rng_seed(child, nas_rng_u64(r)); }

void nas_rng_shuffle(nas_rng *r, int *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)nas_rng_below(r, (uint32_t)(i + 1));
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

uint64_t nas_seed_mix(uint64_t seed, uint64_t k, uint64_t salt) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (k + 1) * 0xBF58476D1CE4E5B9ull ^ salt;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
