/* core/alloc.c: the library's allocation functions with the fault-injection hook (see
 * core/alloc.h). */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef NAS_NO_FAULT_INJECTION
static atomic_long g_left = -1;     /* successful allocations before the injected failure */
static atomic_int g_persistent = 0; /* keep failing after the first injected failure */
static atomic_int g_hit = 0;        /* an injected failure happened */

/* 1 when this allocation must fail. */
static int inject(void) {
  long left = atomic_load_explicit(&g_left, memory_order_relaxed);
  if (left < 0) return 0;
  left = atomic_fetch_sub(&g_left, 1);
  if (left > 0) return 0;
  if (left < 0 && !atomic_load(&g_persistent)) {
    atomic_store(&g_left, -1); /* a transient fault already happened */
    return 0;
  }
  atomic_store(&g_hit, 1);
  if (!atomic_load(&g_persistent)) atomic_store(&g_left, -1);
  else atomic_store(&g_left, 0);
  return 1;
}

int nas_alloc_fault(long k, int persistent) {
  atomic_store(&g_persistent, persistent != 0);
  atomic_store(&g_hit, 0);
  atomic_store(&g_left, k < 0 ? -1 : k);
  return 0;
}

int nas_alloc_fault_hit(void) { return atomic_load(&g_hit); }

int nas_alloc_fault_tick(void) { return inject(); }
#else
static int inject(void) { return 0; }
int nas_alloc_fault(long k, int persistent) {
  (void)k, (void)persistent;
  return -1;
}
int nas_alloc_fault_hit(void) { return 0; }
int nas_alloc_fault_tick(void) { return 0; }
#endif

void *nas_malloc(size_t n) { return inject() ? NULL : malloc(n ? n : 1); }

void *nas_calloc(size_t n, size_t size) { return inject() ? NULL : calloc(n ? n : 1, size ? size : 1); }

void *nas_realloc(void *p, size_t n) { return inject() ? NULL : realloc(p, n ? n : 1); }

void *nas_aligned_alloc(size_t align, size_t n) {
  if (inject()) return NULL;
  n = (n + align - 1) & ~(align - 1);
  return aligned_alloc(align, n ? n : align);
}

char *nas_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = nas_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void nas_free(void *p) { free(p); }
