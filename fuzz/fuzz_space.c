/* fuzz/fuzz_space.c: libFuzzer harness of space JSON (search_spaces/space.c) and of the DNAS
 * supernet description read from the same file (search_spaces/supernet.c). The input is a
 * space file. A space that loads is checked (nas_space_check builds its first and last
 * architectures), sampled, mutated, encoded and decoded, and one sample is materialised and
 * hashed; its supernet description is then derived and resolved for the same sample.
 * Single allocations are capped at 32 MB (fuzz_util.h): the largest architectures of the
 * built-in spaces then stop at NAS_ENOMEM instead of spending the run on initialising them
 * (libFuzzer itself needs single allocations of about 20 MB). */
#define FUZZ_MAX_ALLOC_MB 32
#include "fuzz/fuzz_util.h"

#include "search_spaces/space.h"
#include "search_spaces/supernet.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

/* Everything one loaded space offers, on sample vectors drawn with a fixed seed. */
static void exercise(const nas_space *s, const char *path) {
  nas_err e = {0};
  int rc = nas_space_check(s, &e);
  fuzz_check_err(rc, &e, "nas_space_check");
  int n = nas_space_n_decisions(s);
  if (n < 0) FUZZ_FAIL("negative decision count %d", n);
  for (int i = 0; i < n; i++) {
    if (nas_space_card(s, i) < 1) FUZZ_FAIL("decision %d has %d values", i, nas_space_card(s, i));
    if (!nas_space_decision_path(s, i)) FUZZ_FAIL("decision %d has no path", i);
  }
  (void)nas_space_size(s);
  (void)nas_space_name(s);
  int *d = calloc((size_t)n + 1, sizeof *d), *c = calloc((size_t)n + 1, sizeof *c);
  unsigned char *act = calloc((size_t)n + 1, 1);
  double *x = calloc((size_t)n + 1, sizeof *x);
  if (!d || !c || !act || !x) FUZZ_FAIL("out of memory");
  nas_rng r;
  nas_rng_seed(&r, 7);
  nas_space_sample(s, &r, d);
  for (int i = 0; i < n; i++)
    if (d[i] < 0 || d[i] >= nas_space_card(s, i)) FUZZ_FAIL("sample out of range at %d", i);
  nas_err me = {0};
  (void)nas_space_mutate(s, &r, d, c, NULL, &me);
  nas_err e2 = {0};
  rc = nas_space_active(s, c, act, &e2);
  fuzz_check_err(rc, &e2, "nas_space_active");
  nas_space_encode(s, d, x);
  nas_space_decode(s, x, c);
  for (int i = 0; i < n; i++)
    if (c[i] != d[i]) FUZZ_FAIL("decode(encode(d)) differs at decision %d", i);
  char *arch = NULL;
  nas_err e3 = {0};
  rc = nas_space_materialize(s, d, &arch, &e3);
  fuzz_check_err(rc, &e3, "nas_space_materialize");
  if (rc == NAS_OK) {
    char hex[17];
    nas_err e4 = {0};
    if (nas_arch_hash_hex(arch, hex, &e4) != NAS_OK)
      FUZZ_FAIL("a materialised arch does not hash: %s", e4.msg);
  }
  free(arch);
  nas_supernet *sn = NULL;
  nas_err e5 = {0};
  rc = nas_supernet_load(path, &sn, &e5);
  fuzz_check_err(rc, &e5, "nas_supernet_load");
  if (rc == NAS_OK) {
    if (sn->n_dec != n) FUZZ_FAIL("supernet has %d decisions, the space %d", sn->n_dec, n);
    nas_sn_layer *L = calloc((size_t)sn->n_slots + 1, sizeof *L);
    if (!L) FUZZ_FAIL("out of memory");
    nas_err e6 = {0};
    rc = nas_sn_resolve(sn, d, L, &e6);
    fuzz_check_err(rc, &e6, "nas_sn_resolve");
    free(L);
  }
  nas_supernet_free(sn);
  free(d), free(c), free(act), free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_memfile(data, size);
  nas_space *s = NULL;
  nas_err e = {0};
  int rc = nas_space_load_file(path, &s, &e);
  fuzz_check_err(rc, &e, "nas_space_load_file");
  if (rc == NAS_OK) exercise(s, path);
  nas_space_free(s);
  return 0;
}
