/* latency/measure.h: measuring an int8 graph (deploy/graph8.h) per layer and turning the
 * measurements into rows of the measurement CSV that `nas latency fit` and the lookup table
 * read (nas_meas_read_csv in target.h):
 *   - the features of an operator as the latency models see a kernel call (kop, MACs / ops,
 *     int8 bytes, kernel, channels), matching latency/cost.c's rules so that a measured row
 *     matches the priced kernel call of the same layer exactly;
 *   - the host back end: median wall time per operator of the deploy/ int8 runtime;
 *   - the board back end: a firmware source tree that times each operator with DWT->CYCCNT
 *     and prints CSV lines over a retargetable putchar, and the reader of that CSV.
 *
 * Board CSV (printed by the emitted firmware; other serial output is ignored):
 *   NAS-BEGIN,v1,<model>,<target>,<operators>,<runs>
 *   NAS,<run>,<op index>,<layer id>,<op>,<macs>,<in_bytes>,<out_bytes>,<k>,<cin>,<cout>,<cycles>
 *   NAS,<run>,-1,total,model,<macs>,0,0,1,0,0,<cycles>     (one per run, the whole invoke)
 *   NAS-END
 * op is a nas_kop name, or reshape/softmax/quantize (no latency-model kop: these rows count
 * in the total only). Ingest takes the median over runs per layer.
 * Ownership: rows arrays are the caller's (free()); the graph and target are only read. */
#ifndef NAS_LATENCY_MEASURE_H
#define NAS_LATENCY_MEASURE_H

#include <stdint.h>

#include "core/error.h"
#include "deploy/graph8.h"
#include "latency/target.h"

/* An operator as a kernel call of the latency models. */
typedef struct nas_g8_linfo {
  int kop;              /* enum nas_kop, or -1 (RESHAPE, SOFTMAX, QUANTIZE, the recurrent ops) */
  char op[16];          /* nas_kop name, or "reshape"/"softmax"/"quantize", "lstm" (macs: T*4H*
                           (F+H)), "logistic"/"tanh"/"mul"/"sub"/"slice"/"concat" (elements),
                           "other" */
  long long macs;       /* NAS_LF_OPS: MACs (conv/fc), window reads (pool), in elements (gap),
                           out elements (add), elements (others) */
  long long in_bytes, out_bytes; /* int8 activation bytes read / written (add: both inputs) */
  int kh, kw;           /* kernel (1x1 for fc, gap, add and the others) */
  int cin, cout;        /* input channels (fc: input features), output channels */
} nas_g8_linfo;

/* Features of operator i. 1x1 stride-1 CONV_2D is "pwconv"; an AVERAGE_POOL_2D over the
 * whole map to 1x1 is "gap". */
void nas_g8_layer_info(const nas_g8_graph *g, int i, nas_g8_linfo *li);

/* MACs of g's multiply-accumulate operators (conv, pwconv, dwconv, fc): the "model" row's
 * macs of a measurement. */
long long nas_g8_model_macs(const nas_g8_graph *g);

/* Splits a CSV line in place at commas into at most max fields f (spaces, tabs and line
 * ends around each field trimmed); returns the field count, or -1 when there are more. */
int nas_csv_split(char *line, char **f, int max);

/* Measurement rows of one model: one per operator with a kop (cycles[i], the operator's
 * cycles), then one op "model" row (macs = sum of MACs, cycles = total_cycles). target and
 * model are copied (truncated to the field sizes). Caller frees *rows. */
int nas_meas_from_graph(const nas_g8_graph *g, const char *target, const char *model,
                        const double *cycles, double total_cycles, nas_meas **rows, int *n,
                        nas_err *e);
/* Writes rows as a measurement CSV (header, then one line per row): cycles, and ms = cycles /
 * (clock_mhz * 1000) with 6 decimals (empty when clock_mhz <= 0; the reader uses cycles when
 * both are given). path "-" writes to stdout. */
int nas_meas_write_csv(const char *path, const nas_meas *rows, int n, double clock_mhz,
                       nas_err *e);

/* Host back end: runs the graph `runs` times on in (one arena, as nas_g8_run) and gives the
 * median wall ms per operator (layer_ms[nops]) and of the whole run (total_ms). */
int nas_host_time(const nas_g8_graph *g, const int8_t *in, int runs, double *layer_ms,
                  double *total_ms, nas_err *e);

/* Board back end: writes into dir (created if missing) the C export (<model>.h/.c,
 * runtime nasrt*.c/.h), main.c (DWT->CYCCNT per operator, `runs` inferences on `in`, CSV as
 * above through nas_putchar: a weak default writes to ITM stimulus port 0 (SWO); define
 * nas_putchar (and nas_board_init for clocks/UART) in another file to retarget), startup.c,
 * link.ld (flash/SRAM of t), a Makefile for arm-none-eabi-gcc and README.txt. */
int nas_board_emit(const nas_g8_graph *g, const nas_target *t, const char *model,
                   const int8_t *in, int runs, const char *dir, nas_err *e);

/* Reads a board CSV (format above). Rows carry target_id (the CSV's own target must match
 * it when target_id is non-NULL; NULL keeps the CSV's). Errors name "FILE:LINE:". */
int nas_board_ingest(const char *path, const char *target_id, nas_meas **rows, int *n,
                     nas_err *e);

#endif
