/* core/alloc.h: the one allocation path of the library. Every heap allocation of the engine
 * (not of the libraries it links: SQLite, cJSON, OpenBLAS keep their own) goes through these
 * functions, so that a test can make the N-th allocation fail and check that every caller
 * ends in a clean error (SQLite's fault-injection tests are the model).
 * Free with free() (or nas_free, the same). Never prints. */
#ifndef NAS_CORE_ALLOC_H
#define NAS_CORE_ALLOC_H

#include <stddef.h>

void *nas_malloc(size_t n);
void *nas_calloc(size_t n, size_t size);
void *nas_realloc(void *p, size_t n);
/* n bytes aligned to align (a power of two, a multiple of sizeof(void *)); n is rounded up to a
 * multiple of align. */
void *nas_aligned_alloc(size_t align, size_t n);
char *nas_strdup(const char *s);
void nas_free(void *p); /* free(p) */

/* ---- fault injection (tests only; compiled in unless NAS_NO_FAULT_INJECTION) -------------
 * nas_alloc_fault(k, persistent): the allocation after k more successful ones fails (k = 0:
 * the next one); with persistent != 0 every allocation after it fails too. k < 0 turns
 * injection off. nas_alloc_fault_hit() tells whether an injected failure happened since the
 * last nas_alloc_fault call, so that a test can stop once a run succeeds without one. Thread
 * safe (atomic counters). Returns 0, or -1 when the build has no fault injection. */
int nas_alloc_fault(long k, int persistent);
int nas_alloc_fault_hit(void);

#endif
