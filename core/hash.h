/* core/hash.h: 64-bit FNV-1a, used for cache keys, checksums of cache files and architecture
 * hashes (de-duplication). Not cryptographic. */
#ifndef NAS_CORE_HASH_H
#define NAS_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define NAS_FNV_OFFSET 14695981039346656037ULL /* FNV-1a 64-bit offset basis */

/* Continues hash h over n bytes of data; start with NAS_FNV_OFFSET. */
static inline uint64_t nas_fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *b = data;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  return h;
}

#endif
