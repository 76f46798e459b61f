/* fuzz/fuzz_board_log.c: libFuzzer harness of the board log reader (latency/measure.c
 * nas_board_ingest), the serial output of the measurement firmware that `nas measure
 * --backend board --ingest` reads. The input is a log; it is read without a target check and
 * then against target "stm32f446re". Rows it accepts are written as a measurement CSV
 * (nas_meas_write_csv), which must read back (nas_meas_read_csv) as the same rows. */
#include "fuzz/fuzz_util.h"

#include "latency/measure.h"
#include "latency/target.h"

/* written back without a clock: ms column empty, cycles only */
#define CLOCK 0.0

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
  int rc = nas_board_ingest(path, NULL, &rows, &n, &e);
  fuzz_check_err(rc, &e, "nas_board_ingest");
  if (rc == NAS_OK) {
    if (n < 1 || !rows) FUZZ_FAIL("nas_board_ingest: %d rows", n);
    nas_err e2 = {0};
    rc = nas_meas_write_csv(g_back, rows, n, CLOCK, &e2);
    fuzz_check_err(rc, &e2, "nas_meas_write_csv");
    if (rc == NAS_OK) {
      nas_meas *r2 = NULL;
      int n2 = 0;
      nas_err e3 = {0};
      if (nas_meas_read_csv(g_back, NULL, 0.0, &r2, &n2, &e3) != NAS_OK)
        FUZZ_FAIL("ingested rows do not read back as a measurement CSV: %s", e3.msg);
      if (n2 != n) FUZZ_FAIL("%d rows ingested, %d read back", n, n2);
      free(r2);
    }
  }
  free(rows);
  rows = NULL;
  nas_err e4 = {0};
  rc = nas_board_ingest(path, "stm32f446re", &rows, &n, &e4);
  fuzz_check_err(rc, &e4, "nas_board_ingest");
  free(rows);
  return 0;
}
