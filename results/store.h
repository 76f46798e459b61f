/* results/store.h: the SQLite store of searches (one file per project of searches).
 * Tables: runs, candidates (every metric its own column), weights (BLOBs), layer_costs,
 * events; the schema is documented in README "Results store" and versioned with
 * `PRAGMA user_version` (migrations in store.c, one function per version; version 2 added
 * candidates.retrain_epochs, version 3 the measurements and op_measurements tables of
 * emulated measurements, version 4 candidates.warm_start). The file is in WAL
 * mode with a busy timeout, so readers (`nas pareto`, any sqlite3 client) may run while a
 * search writes. Every state change commits in its own BEGIN IMMEDIATE ... COMMIT.
 * Errors name the file and what failed; a file that is not a SQLite database, or whose
 * user_version is newer than this build knows, is refused and left untouched.
 * Out of memory (ours or SQLite's, whose allocator the first open wraps into core/alloc.h's
 * fault schedule) is NAS_ENOMEM, and the change that met it is rolled back.
 * Ownership: nas_store is opaque and owns its connection (internal to results/, see
 * store_impl.h; other code that needs raw SQL opens its own connection on the path);
 * free with nas_store_close.
 * Strings and blobs returned through pointers are malloc'd and owned by the caller. */
#ifndef NAS_RESULTS_STORE_H
#define NAS_RESULTS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define NAS_STORE_VERSION 4 /* the schema version this build writes (PRAGMA user_version) */

typedef struct nas_store nas_store;

/* Opens (creating and migrating as needed) the store at path for reading and writing. */
int nas_store_open(const char *path, nas_store **out, nas_err *e);
/* Opens an existing store read-only (no creation, no migration): for readers such as
 * `nas pareto`. A store at an older schema version is read as it is (a version-1 store reads
 * retrain_epochs as 0); opening it read-write once migrates it. */
int nas_store_open_readonly(const char *path, nas_store **out, nas_err *e);
void nas_store_close(nas_store *s); /* NULL-safe */
const char *nas_store_path(const nas_store *s);
/* The schema version of the open file (PRAGMA user_version). */
int nas_store_user_version(nas_store *s, int *version, nas_err *e);

/* ---- runs ---------------------------------------------------------------------------- */
typedef struct nas_run_info {
  const char *config_json; /* full configuration as JSON text ("{}" when NULL) */
  const char *strategy;    /* "random", "evolution", ... */
  const char *space;       /* search space name or path */
  const char *dataset;     /* dataset spec */
  const char *target;      /* MCU target name or path */
  uint64_t seed;           /* RNG seed of the run (stored as a signed 64-bit integer) */
  long long budget;        /* number of candidates to evaluate */
  const char *objectives;  /* e.g. "acc_int8_test:max,latency_pred_ms:min" ("" when NULL) */
} nas_run_info;

/* A run as read back (strings owned by the caller: free with nas_store_run_row_free). */
typedef struct nas_run_row {
  int64_t id;          /* runs.id */
  char *created_at;    /* ISO-8601 UTC */
  char *updated_at;    /* ISO-8601 UTC, bumped on every change */
  char *config_json;   /* configuration JSON */
  char *strategy;      /* strategy name */
  char *space;         /* space name */
  char *dataset;       /* dataset spec */
  char *target;        /* target name */
  uint64_t seed;       /* seed */
  long long budget;    /* budget */
  char *status;        /* running | interrupted | done | failed */
  char *objectives;    /* objective list */
} nas_run_row;

int nas_store_run_create(nas_store *s, const nas_run_info *info, int64_t *run_id, nas_err *e);
/* status: "running", "interrupted", "done" or "failed" (anything else is an error). */
int nas_store_run_set_status(nas_store *s, int64_t run_id, const char *status, nas_err *e);
int nas_store_run_get(nas_store *s, int64_t run_id, nas_run_row *out, nas_err *e);
void nas_store_run_row_free(nas_run_row *r); /* NULL-safe; frees the strings, not r */
/* All run ids in ascending order (*ids malloc'd, caller frees; NULL when *n == 0). */
int nas_store_run_ids(nas_store *s, int64_t **ids, int *n, nas_err *e);

/* ---- candidates ------------------------------------------------------------------------ */
/* The metric columns of candidates, in schema order. NAN in a field means SQL NULL
 * (unknown / not measured). Integer columns (macs, params, flash_bytes, peak_sram_bytes)
 * are stored as 64-bit integers. */
typedef struct nas_metrics {
  double acc_float_val;   /* float model, validation accuracy in [0,1] */
  double acc_float_test;  /* float model, test accuracy */
  double acc_int8_val;    /* int8 model (what is exported), validation accuracy */
  double acc_int8_test;   /* int8 model, test accuracy */
  double macs;            /* multiply-accumulates per inference (integer) */
  double params;          /* trainable parameters (integer) */
  double flash_bytes;     /* flash footprint: weights + graph + runtime (integer) */
  double peak_sram_bytes; /* peak SRAM: tensor arena + runtime overhead (integer) */
  double latency_pred_ms; /* latency predicted by the target's model, ms */
  double latency_meas_ms; /* latency measured (host, emulator or board), ms */
  double train_seconds;   /* wall time spent training this candidate */
} nas_metrics;

#define NAS_N_METRICS 11
/* Column name of metric i (0 <= i < NAS_N_METRICS), or NULL out of range. */
const char *nas_metric_name(int i);
/* Index of a metric column by name, or -1. */
int nas_metric_index(const char *name);
/* 1 for integer-valued columns. */
int nas_metric_is_int(int i);
/* Pointer to metric i inside m. */
double *nas_metrics_at(nas_metrics *m, int i);
/* All fields NAN (all NULL). */
void nas_metrics_clear(nas_metrics *m);

/* Candidate states: proposed -> rejected | training | failed; training -> done | failed |
 * proposed (re-queued after an interruption). done, rejected and failed are final. */
typedef struct nas_candidate_row {
  int64_t id;          /* candidates.id */
  int64_t run_id;      /* its run */
  char *arch_json;     /* arch JSON text */
  char *arch_hash;     /* 16 hex digits */
  int64_t parent_id;   /* 0 when none */
  int generation;      /* generation (evolution) or 0 */
  int retrain_epochs;  /* 0: a search candidate; E: parent_id's arch retrained from scratch
                          for E epochs after the search (--retrain-front) */
  int warm_start;      /* 1: trained from parent_id's weights (a network morphism, the
                          sparse strategy), not from scratch; 0 otherwise (schema 4) */
  char state[16];      /* proposed | rejected | training | done | failed */
  char *reason;        /* why rejected/failed, NULL when none */
  nas_metrics m;       /* metrics (NAN = NULL) */
  char *created_at;    /* ISO-8601 UTC */
  char *updated_at;    /* ISO-8601 UTC */
} nas_candidate_row;

/* Adds a candidate in state "proposed" with NULL metrics. arch_hash is the hex hash of the
 * canonical arch (nas_arch_hash_hex in search_spaces/space.h); parent_id 0 = none. When the
 * run already holds this hash, nothing is written, *id is the existing candidate and
 * *existed is set to 1 (existed may be NULL). */
int nas_store_candidate_add(nas_store *s, int64_t run_id, const char *arch_json,
                            const char *arch_hash, int64_t parent_id, int generation,
                            int64_t *id, int *existed, nas_err *e);
/* Moves a candidate to state (see the transitions above; others are errors naming both
 * states); reason may be NULL (kept as NULL) and is stored for rejected/failed. */
int nas_store_candidate_set_state(nas_store *s, int64_t cand_id, const char *state,
                                  const char *reason, nas_err *e);
/* Marks a candidate warm-started (1) from its parent's weights or not (0). */
int nas_store_candidate_set_warm(nas_store *s, int64_t cand_id, int warm, nas_err *e);
/* Writes every metric column from m (NAN -> NULL). */
int nas_store_candidate_set_metrics(nas_store *s, int64_t cand_id, const nas_metrics *m,
                                    nas_err *e);
int nas_store_candidate_get(nas_store *s, int64_t cand_id, nas_candidate_row *out, nas_err *e);
void nas_store_candidate_row_free(nas_candidate_row *r); /* NULL-safe; frees strings */
/* The candidate of run with this hash: *id = 0 when there is none. */
int nas_store_candidate_find(nas_store *s, int64_t run_id, const char *arch_hash, int64_t *id,
                             nas_err *e);
/* Ids of a run's candidates in ascending order, optionally only those in `state` (NULL =
 * all). *ids malloc'd (caller frees; NULL when *n == 0). */
int nas_store_candidate_ids(nas_store *s, int64_t run_id, const char *state, int64_t **ids,
                            int *n, nas_err *e);

/* Ids of a run's search candidates (retrain_epochs = 0) in ascending order, optionally only
 * those in `state`; the same contract as nas_store_candidate_ids. */
int nas_store_search_candidate_ids(nas_store *s, int64_t run_id, const char *state,
                                   int64_t **ids, int *n, nas_err *e);

/* The retrained twin of search candidate parent_id: a candidate of the same run with the same
 * arch, hash, generation and cost columns (MACs, params, flash, SRAM, latencies) and layer
 * costs, parent_id = parent_id, retrain_epochs = epochs (>= 1), state "proposed", accuracy
 * columns NULL. Idempotent: when the run already holds it, nothing is written, *id is it and
 * *existed is set to 1 (existed may be NULL). */
int nas_store_candidate_add_retrain(nas_store *s, int64_t parent_id, int epochs, int64_t *id,
                                    int *existed, nas_err *e);

/* A blob for nas_store_candidate_finish. */
typedef struct nas_store_blob {
  const char *kind;   /* "float" or "int8" */
  const void *data;   /* bytes (borrowed) */
  size_t len;         /* byte count */
} nas_store_blob;

/* In ONE transaction: writes every metric column from m (when m is not NULL), replaces the
 * weights of blobs[0..nblobs) and moves the candidate to state (reason as for set_state).
 * Either all of it is stored or none of it (a crash leaves the previous state). */
int nas_store_candidate_finish(nas_store *s, int64_t cand_id, const char *state,
                               const char *reason, const nas_metrics *m,
                               const nas_store_blob *blobs, int nblobs, nas_err *e);

/* ---- measurements (results/store_measure.c) ----------------------------------------------- */
/* One measured operator of a candidate's int8 graph. */
typedef struct nas_op_meas {
  int op;                 /* operator index in the int8 graph */
  char kind[16];          /* "conv2d", "dwconv2d", "fc", "avgpool", "maxpool", "add", ... */
  int layer;              /* the arch layer it belongs to (-1: none) */
  long long insns;        /* executed instructions */
  long long ldst, mul, branch, other; /* of which by class (latency/emulator.h) */
  long long taken;        /* taken branches */
  double cycles, ms;      /* estimated from the core's CPI table, at the target clock */
} nas_op_meas;

/* A measurement of a candidate: how and where it was taken, its outcome and totals, and its
 * operators. A failed measurement has ok = 0, the reason, and no operators. */
typedef struct nas_measurement {
  const char *backend;    /* "emulator" */
  const char *target;     /* target id */
  const char *core;       /* the emulated core ("cortex-m4", ...) */
  const char *runtime;    /* the runtime measured ("nas-c": the engine's C export) */
  int ok;                 /* 1: measured; 0: failed (reason) */
  const char *reason;     /* why it failed, NULL when ok */
  long long insns;        /* the whole inference (start-up and copies included) */
  double cycles, ms;      /* the operators' sum and the whole inference's ms */
  double seconds;         /* wall time the measurement took (build + emulation) */
  const nas_op_meas *ops; /* [nops] (borrowed) */
  int nops;
} nas_measurement;

/* As nas_store_candidate_finish, and in the same transaction the candidate's measurement
 * (replacing a previous one; meas may be NULL: none). */
int nas_store_candidate_finish_measured(nas_store *s, int64_t cand_id, const char *state,
                                        const char *reason, const nas_metrics *m,
                                        const nas_store_blob *blobs, int nblobs,
                                        const nas_measurement *meas, nas_err *e);

/* A stored measurement as read back (strings and ops malloc'd: nas_measurement_row_free). */
typedef struct nas_measurement_row {
  char *backend, *target, *core, *runtime, *reason;
  int ok;
  long long insns;
  double cycles, ms, seconds;
  nas_op_meas *ops;
  int nops;
} nas_measurement_row;
/* The measurement of cand_id; *found = 0 (row zeroed) when it has none. */
int nas_store_measurement_get(nas_store *s, int64_t cand_id, nas_measurement_row *row,
                              int *found, nas_err *e);
void nas_measurement_row_free(nas_measurement_row *r); /* NULL-safe */

/* ---- weights and per-layer costs --------------------------------------------------------- */
/* kind: "float" or "int8". Replaces an existing blob of that kind. */
int nas_store_weights_put(nas_store *s, int64_t cand_id, const char *kind, const void *data,
                          size_t len, nas_err *e);
/* *data malloc'd (caller frees). A missing blob is an error (NAS_EINVAL) naming it. */
int nas_store_weights_get(nas_store *s, int64_t cand_id, const char *kind, void **data,
                          size_t *len, nas_err *e);

typedef struct nas_layer_cost {
  int layer;              /* arch layer index */
  char op[16];            /* arch op name */
  long long macs;         /* MACs of this layer */
  long long params;       /* parameters */
  long long flash_bytes;  /* flash bytes of this layer's weights and metadata */
  long long sram_bytes;   /* SRAM live while this layer runs */
  double latency_ms;      /* predicted or measured latency (NAN = NULL) */
} nas_layer_cost;

/* Replaces all layer cost rows of a candidate with rows[0..n). */
int nas_store_layer_costs_put(nas_store *s, int64_t cand_id, const nas_layer_cost *rows, int n,
                              nas_err *e);
/* Reads them back ordered by layer (*rows malloc'd, caller frees). */
int nas_store_layer_costs_get(nas_store *s, int64_t cand_id, nas_layer_cost **rows, int *n,
                              nas_err *e);

/* ---- events ------------------------------------------------------------------------------ */
/* Appends an event (kind e.g. "run_start", "candidate_done", "interrupt"; payload JSON text,
 * "{}" when NULL); cand_id 0 = not about one candidate. *id may be NULL. */
int nas_store_event_add(nas_store *s, int64_t run_id, int64_t cand_id, const char *kind,
                        const char *payload_json, int64_t *id, nas_err *e);
/* Number of events of a run, optionally of one kind (NULL = all). */
int nas_store_event_count(nas_store *s, int64_t run_id, const char *kind, int *n, nas_err *e);
/* The payload of the run's latest event of kind (*payload malloc'd, caller frees; NULL when
 * the run has none). */
int nas_store_event_last(nas_store *s, int64_t run_id, const char *kind, char **payload,
                         nas_err *e);

#endif
