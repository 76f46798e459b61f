/* bench/bench_hv.c: the Pareto front of one run of a store over up to three objectives and
 * its hypervolume (opt/mobo.h), for the benchmarks that compare search strategies.
 *   bench_hv DB RUN OBJECTIVES REF [WHERE]
 * OBJECTIVES as `nas pareto` takes them ("acc_int8_test:max,flash_bytes:min,
 * peak_sram_bytes:min"); a maximised objective in [0,1] enters as 1 - value (error). REF is
 * the reference point in those minimised units ("1,32768,16384"); each coordinate is divided
 * by its reference value, so the hypervolume is the dominated fraction of the unit box. WHERE
 * is an optional SQL filter (default: search candidates only, "retrain_epochs = 0").
 * Prints one JSON line: {"run":R,"objectives":"...","ref":[...],"hv":H,"front":[{"id":I,
 * "v":[...]},...]}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt/mobo.h"
#include "results/pareto.h"
#include "results/store.h"

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_hv DB RUN OBJECTIVES REF [WHERE]\n");
    return 2;
  }
  nas_err e = {0};
  nas_objectives o;
  if (nas_objectives_parse(argv[3], &o, &e) || o.n > 3) {
    fprintf(stderr, "bench_hv: %s\n", o.n > 3 ? "at most 3 objectives" : e.msg);
    return 2;
  }
  double ref[3];
  const char *s = argv[4];
  for (int j = 0; j < o.n; j++) {
    char *end;
    ref[j] = strtod(s, &end);
    if (end == s || !(ref[j] > 0)) {
      fprintf(stderr, "bench_hv: REF needs %d positive numbers\n", o.n);
      return 2;
    }
    s = *end == ',' ? end + 1 : end;
  }
  nas_store *st = NULL;
  if (nas_store_open_readonly(argv[1], &st, &e)) {
    fprintf(stderr, "bench_hv: %s\n", e.msg);
    return 1;
  }
  nas_pareto_row *rows = NULL;
  int n = 0;
  int rc = nas_pareto_front(st, &o, atoll(argv[2]), argc > 5 ? argv[5] : "retrain_epochs = 0",
                            &rows, &n, &e);
  if (rc) {
    fprintf(stderr, "bench_hv: %s\n", e.msg);
    nas_store_close(st);
    return 1;
  }
  double *pts = malloc(sizeof(double) * (size_t)(n + 1) * 3);
  double one[3] = {1, 1, 1}, hv = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < o.n; j++) {
      double v = rows[i].v[j];
      if (o.maximize[j]) v = v >= 0 && v <= 1 ? 1 - v : -v;
      pts[i * o.n + j] = v / ref[j];
    }
  if (nas_hypervolume(pts, n, o.n, one, &hv, &e)) {
    fprintf(stderr, "bench_hv: %s\n", e.msg);
    rc = 1;
  } else {
    printf("{\"run\":%s,\"objectives\":\"%s\",\"ref\":[", argv[2], argv[3]);
    for (int j = 0; j < o.n; j++) printf("%s%.17g", j ? "," : "", ref[j]);
    printf("],\"hv\":%.6f,\"front\":[", hv);
    for (int i = 0; i < n; i++) {
      printf("%s{\"id\":%lld,\"v\":[", i ? "," : "", (long long)rows[i].id);
      for (int j = 0; j < o.n; j++) printf("%s%.17g", j ? "," : "", rows[i].v[j]);
      printf("]}");
    }
    printf("]}\n");
  }
  free(pts), free(rows);
  nas_store_close(st);
  return rc;
}
