/* fuzz/fuzz_util.h: what the libFuzzer harnesses share (header-only; each harness is one
 * program): the sanitizer options that cap single allocations, the scratch file or folder a
 * path-taking reader is pointed at, the check of the library's error contract, and zlib's
 * CRC-32 for the checkpoint harnesses.
 *
 * Allocation cap: the runtime options below make AddressSanitizer return NULL (instead of
 * aborting) for any single allocation above FUZZ_MAX_ALLOC_MB, so an input that asks for a
 * huge tensor, buffer or arena must end in the library's NAS_ENOMEM path; the fuzzer then
 * spends its time on shapes, not on allocations. */
#ifndef NAS_FUZZ_FUZZ_UTIL_H
#define NAS_FUZZ_FUZZ_UTIL_H

#define _GNU_SOURCE /* memfd_create */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"

#ifndef FUZZ_MAX_ALLOC_MB /* a harness may set a lower cap before including this file */
#define FUZZ_MAX_ALLOC_MB 64
#endif
#define FUZZ_STR_(x) #x
#define FUZZ_STR(x) FUZZ_STR_(x)

/* Read by the AddressSanitizer runtime at start-up (ASAN_OPTIONS may still override). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "allocator_may_return_null=1:max_allocation_size_mb=" FUZZ_STR(FUZZ_MAX_ALLOC_MB)
         ":detect_leaks=1";
}
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "print_stacktrace=1:halt_on_error=1"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Stops the run as a crash (libFuzzer saves the input). */
#define FUZZ_FAIL(...)                                      \
  do {                                                      \
    fprintf(stderr, "fuzz: contract violated: " __VA_ARGS__); \
    fputc('\n', stderr);                                    \
    abort();                                                \
  } while (0)

/* The error contract of core/error.h: a failing call returns a known status and leaves one
 * non-empty line in e; a successful one returns NAS_OK. */
static inline void fuzz_check_err(int rc, const nas_err *e, const char *api) {
  if (rc == NAS_OK) return;
  if (rc < NAS_EINVAL || rc > NAS_ENUMERIC) FUZZ_FAIL("%s returned unknown status %d", api, rc);
  if (!e->msg[0]) FUZZ_FAIL("%s failed (status %d) with an empty message", api, rc);
  if (memchr(e->msg, '\n', sizeof e->msg) || !memchr(e->msg, '\0', sizeof e->msg))
    FUZZ_FAIL("%s: message is not one NUL-terminated line: %.200s", api, e->msg);
}

/* An in-memory file (memfd) holding the current input, reachable by path as /proc/self/fd/N:
 * no disk traffic, no clean-up. Returns the path; aborts when the system has no memfd (the
 * harness cannot run at all then). */
static inline const char *fuzz_memfile(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("nas-fuzz", 0);
    if (fd < 0) FUZZ_FAIL("memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0) FUZZ_FAIL("ftruncate failed");
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
    if (k <= 0) FUZZ_FAIL("pwrite failed");
    done += (size_t)k;
  }
  return path;
}

/* Writes data to path (aborts on failure: the harness's own set-up is broken). */
static inline void fuzz_write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
    FUZZ_FAIL("cannot write %s", path);
}

/* A fresh folder under $TMPDIR (else /dev/shm when present, else /tmp), made once per
 * process. */
static inline const char *fuzz_tmpdir(void) {
  static char dir[512];
  if (!dir[0]) {
    const char *t = getenv("TMPDIR");
    if (!t || !t[0]) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/nas-fuzz-XXXXXX", t);
    if (!mkdtemp(dir)) FUZZ_FAIL("mkdtemp %s failed", dir);
  }
  return dir;
}

/* Removes a folder made by the harness (one level of files and sub-folders, as the harnesses
 * make them); best effort, for atexit handlers. */
static inline void fuzz_rm_tree(const char *dir) {
  char cmd[1100];
  if (!dir || !dir[0] || strncmp(dir, "/", 1) || strstr(dir, "nas-fuzz-") == NULL) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

/* CRC-32 (zlib polynomial, as the checkpoint trailer) of p[n], bitwise: the harness must not
 * share code with the reader it checks. */
static inline uint32_t fuzz_crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
  }
  return c ^ 0xffffffffu;
}

/* data followed by its little-endian CRC-32 (malloc'd, size + 4 bytes). */
static inline uint8_t *fuzz_with_crc(const uint8_t *data, size_t size) {
  uint8_t *b = malloc(size + 4);
  if (!b) FUZZ_FAIL("out of memory");
  if (size) memcpy(b, data, size);
  uint32_t c = fuzz_crc32(data, size);
  for (int k = 0; k < 4; k++) b[size + (size_t)k] = (uint8_t)(c >> (8 * k));
  return b;
}

/* A NUL-terminated copy of the input (for the text parsers). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) FUZZ_FAIL("out of memory");
  if (size) memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif
