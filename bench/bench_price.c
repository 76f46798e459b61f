/* Pricing speed: builds + prices dscnn-s on stm32f746 repeatedly; prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/fileio.h"
#include "latency/cost.h"

int main(void) {
  nas_err e = {0};
  nas_target *t = NULL;
  char *text;
  long len;
  if (nas_target_open("stm32f746", NULL, &t, &e) ||
      nas_read_file(NAS_SOURCE_DIR "/search_spaces/reference/dscnn-s.json", &text, &len, &e)) {
    fprintf(stderr, "bench_price: %s\n", e.msg);
    return 1;
  }
  int iters = 200;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < iters; i++) {
    nas_price *p;
    if (nas_price_arch(text, "dscnn-s", t, &p, &e)) { fprintf(stderr, "bench_price: %s\n", e.msg); return 1; }
    nas_price_free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double us = ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3) / iters;
  printf("{\"bench\":\"price\",\"model\":\"dscnn-s\",\"target\":\"stm32f746\",\"us_per_arch\":%.1f}\n", us);
  free(text);
  nas_target_free(t);
  return 0;
}
