/* core/arena.c: the bump allocator of core/arena.h (one aligned block per graph). */
#include "core/arena.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define ALIGN 64

size_t nas_arena_round(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

int nas_arena_reserve(nas_arena *a, size_t cap) {
  a->base = NULL;
  a->used = 0;
  a->cap = 0;
  cap = nas_arena_round(cap ? cap : ALIGN);
  void *p = nas_aligned_alloc(ALIGN, cap);
  if (!p) return NAS_ENOMEM;
  memset(p, 0, cap);
  a->base = p;
  a->cap = cap;
  return NAS_OK;
}

void *nas_arena_take(nas_arena *a, size_t n) {
  n = nas_arena_round(n);
  if (!a->base || a->used + n > a->cap) return NULL;
  void *p = a->base + a->used;
  a->used += n;
  return p;
}

void nas_arena_free(nas_arena *a) {
  if (!a) return;
  free(a->base);
  a->base = NULL;
  a->cap = a->used = 0;
}
