/* core/arena.h: a bump allocator. Everything a graph needs for a training step (values,
 * gradients, saved state, scratch) is carved from one arena when the graph is allocated, so
 * the training step itself never calls malloc. Ownership: the arena owns its block; pointers
 * it returns die with nas_arena_free. */
#ifndef NAS_CORE_ARENA_H
#define NAS_CORE_ARENA_H

#include <stddef.h>

typedef struct nas_arena {
  char *base;   /* start of the block (64-byte aligned), NULL until reserved */
  size_t cap;   /* bytes reserved */
  size_t used;  /* bytes handed out so far */
} nas_arena;

/* Reserves cap bytes (zeroed). Returns NAS_OK or NAS_ENOMEM. */
int nas_arena_reserve(nas_arena *a, size_t cap);
/* Returns n bytes aligned to 64, or NULL when the arena is exhausted. */
void *nas_arena_take(nas_arena *a, size_t n);
/* Rounds n up to the arena's alignment (to size a reservation). */
size_t nas_arena_round(size_t n);
void nas_arena_free(nas_arena *a); /* NULL-safe; leaves the struct empty */

#endif
