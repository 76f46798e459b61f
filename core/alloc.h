/* core/alloc.h: the one allocation path of the library. Every heap allocation of the engine
 * goes through these functions, so that a test can make the N-th allocation fail and check
 * that every caller ends in a clean error (SQLite's fault-injection tests are the model).
 * cJSON allocates through nas_malloc too (core/json.h installs its hooks), and SQLite's
 * allocator is wrapped so that it follows the same fault schedule (results/store.c, first
 * store open); OpenBLAS, FFTW, libsndfile and zlib keep their own.
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

/* ---- fault injection (for tests; compiled in unless NAS_NO_FAULT_INJECTION is defined, which
 * the CMake option -DNAS_FAULT_INJECTION=OFF does; off, nothing ever fails on purpose and
 * the functions below return -1 / 0) ---------------------------------------------------------
 * nas_alloc_fault(k, persistent): the allocation after k more successful ones fails (k = 0:
 * the next one); with persistent != 0 every allocation after it fails too. k < 0 turns
 * injection off. nas_alloc_fault_hit() tells whether an injected failure happened since the
 * last nas_alloc_fault call, so that a test can stop once a run succeeds without one. Thread
 * safe (atomic counters). Returns 0, or -1 when the build has no fault injection. */
int nas_alloc_fault(long k, int persistent);
int nas_alloc_fault_hit(void);
/* For wrapping another allocator into the same schedule (SQLite's, results/store.c): counts
 * one allocation and returns 1 when it must fail. Always 0 without fault injection. */
int nas_alloc_fault_tick(void);

#endif
