/* fuzz/fuzz_meas_csv.c: libFuzzer harness of the measurement CSV (latency/target.c
 * nas_meas_read_csv), the file `nas latency fit` and lookup tables read. The input is a CSV
 * file; it is read twice (all targets at 216 MHz, then only target "fuzz" with no clock, so
 * "ms" columns must be refused). Rows it accepts are written back at 216 MHz (cycles and ms;
 * the reader takes cycles) and must read again as the same number of rows with the same cycles. */
#include "fuzz/fuzz_util.h"

#include "latency/measure.h"
#include "latency/target.h"

/* the clock the rows are written back with (their ms column) */
#define CLOCK 216.0

static char g_dir[600], g_back[700];

static void cleanup(void) { fuzz_rm_tree(g_dir); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(g_dir, sizeof g_dir, "%s", fuzz_tmpdir());
  snprintf(g_back, sizeof g_back, "%s/back.csv", g_dir);
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_memfile(data, size);
  nas_meas *rows = NULL;
  int n = 0;
  nas_err e = {0};
  int rc = nas_meas_read_csv(path, NULL, 216.0, &rows, &n, &e);
  fuzz_check_err(rc, &e, "nas_meas_read_csv");
  if (rc == NAS_OK) {
    if (n < 0 || (n > 0 && !rows)) FUZZ_FAIL("nas_meas_read_csv: %d rows", n);
    nas_err e2 = {0};
    rc = nas_meas_write_csv(g_back, rows, n, CLOCK, &e2);
    fuzz_check_err(rc, &e2, "nas_meas_write_csv");
    if (rc == NAS_OK) {
      nas_meas *r2 = NULL;
      int n2 = 0;
      nas_err e3 = {0};
      if (nas_meas_read_csv(g_back, NULL, 216.0, &r2, &n2, &e3) != NAS_OK)
        FUZZ_FAIL("rows written by nas_meas_write_csv do not read back: %s", e3.msg);
      if (n2 != n) FUZZ_FAIL("%d rows written, %d read back", n, n2);
      for (int i = 0; i < n; i++)
        if (r2[i].kop != rows[i].kop || r2[i].macs != rows[i].macs)
          FUZZ_FAIL("row %d reads back differently", i);
      free(r2);
    }
  }
  free(rows);
  rows = NULL;
  nas_err e4 = {0};
  rc = nas_meas_read_csv(path, "fuzz", 0.0, &rows, &n, &e4);
  fuzz_check_err(rc, &e4, "nas_meas_read_csv");
  free(rows);
  return 0;
}
