/* nas/job.h: whole jobs behind the CLI subcommands, as library functions so that the CLI
 * stays a parser and printer. */
#ifndef NAS_NAS_JOB_H
#define NAS_NAS_JOB_H

#include "deploy/graph8.h"
#include "train/trainer.h"

typedef struct nas_train_job {
  const char *arch_path;     /* arch JSON file */
  const char *dataset;       /* dataset spec */
  const char *save_path;     /* checkpoint to write, or NULL */
  int train_limit;           /* 0: all training samples */
  nas_train_cfg cfg;         /* training configuration */
  int qat;                   /* enum nas_qat_mode (train/qat.h): 0 none, ste, alpha */
  int qat_epochs;            /* QAT: the last qat_epochs of cfg.epochs are QAT epochs (1); equal to
                                cfg.epochs: the whole run is QAT */
  float qat_lr_scale;        /* QAT after float epochs: learning rate = cfg.lr * this (0.1) */
  nas_warn_fn warn;          /* dataset warnings (skipped files), NULL: dropped */
  void *warn_user;           /* passed to warn */
  const char *prune;         /* `--prune` text (train/prune.h nas_prune_spec_parse): replaces
                                the arch's "prune" object; NULL keeps the arch's */
} nas_train_job;

typedef struct nas_train_summary {
  nas_train_result r;        /* accuracies and timings (of the QAT network when QAT ran) */
  nas_train_result float_r;  /* the float phase when QAT followed it (zero otherwise) */
  long long params, macs;    /* of the network */
  int train_n, val_n, test_n;/* split sizes */
  int classes;               /* of the network */
  char arch_name[64];        /* "name" of the arch, or the file name */
  nas_prune_stats prune;     /* zero weights and removed channels after training (pruning) */
  int pruned;                /* 1 when the arch asked for pruning */
  long long params_compact, macs_compact; /* after removing pruned channels (= params, macs
                                             without channel pruning) */
} nas_train_summary;

/* Sets the number of threads for OpenMP and OpenBLAS (0: leave the default). Call before
 * building networks. */
void nas_set_threads(int n);

/* Loads the arch and the dataset, trains, evaluates, and saves a checkpoint if asked. */
int nas_train_job_run(const nas_train_job *job, nas_train_summary *s, nas_err *e);

typedef struct nas_eval_job {
  const char *checkpoint;    /* checkpoint file */
  const char *dataset;       /* dataset spec, or NULL for the one the checkpoint was trained on */
  int batch;                 /* evaluation batch (256) */
  nas_warn_fn warn;          /* dataset warnings (skipped files), NULL: dropped */
  void *warn_user;           /* passed to warn */
} nas_eval_job;

typedef struct nas_eval_summary {
  double test_acc, test_loss; /* on the test split */
  double val_acc;             /* on the validation split */
  int test_n;                 /* test samples */
  long long params, macs;     /* of the network */
} nas_eval_summary;

int nas_eval_job_run(const nas_eval_job *job, nas_eval_summary *s, nas_err *e);

typedef struct nas_export_job {
  const char *checkpoint;    /* trained float checkpoint */
  const char *dataset;       /* calibration and evaluation data, or NULL: the checkpoint's */
  const char *format;        /* "tflite", "c" (<name>.h/.c + runtime nasrt*.c/.h) or "onnx"
                                (float <name>.onnx + QDQ <name>.qdq.onnx) */
  const char *out_dir;       /* directory to write <arch name>.<ext> into (created) */
  int calib_method;          /* enum nas_calib_method */
  int calib_samples;         /* training samples for calibration (1000) */
  int softmax;               /* append an int8 SOFTMAX after the logits */
  int recalibrate;           /* 1: calibrate even when the checkpoint holds QAT ranges */
  int dense_weights;         /* --format c: 1 = every filter dense; 0 = conv / pointwise / fc
                                filters stored sparse where that is smaller (the nas-c
                                runtime's SPARSE operator, deploy/graph8.h) */
  const char *db;            /* nas_export_store_run: the SQLite store */
  long long candidate;       /* nas_export_store_run: the candidate id */
  nas_warn_fn warn;          /* dataset warnings (skipped files), NULL: dropped */
  void *warn_user;           /* passed to warn */
} nas_export_job;

typedef struct nas_export_summary {
  double float_test_acc;     /* float network on the test split */
  double int8_test_acc;      /* the exported int8 graph on the test split */
  int test_n;                /* test samples */
  int ops;                   /* operators of the int8 graph */
  long long arena_bytes;     /* peak tensor arena of the int8 graph (memory planner) */
  int qat_ranges;            /* 1: the checkpoint's QAT ranges were used instead of calibration */
  int sparse_ops;            /* --format c: operators whose filters are stored sparse */
  long long sparse_saved;    /* --format c: filter bytes saved by the sparse storage */
  char path[4096];           /* file written */
} nas_export_summary;

/* Quantises a trained checkpoint (BN folding, post-training calibration), evaluates the int8
 * graph, and writes it in the requested format. */
int nas_export_job_run(const nas_export_job *job, nas_export_summary *s, nas_err *e);

/* Exports candidate job->candidate of the store job->db (nas/job_store.c): the stored float
 * weights lowered with the stored calibration rebuild the int8 graph the search evaluated;
 * it is scored on the same test samples (the candidate's eval_limit) and written as
 * job->format (tflite: the stored .tflite bytes themselves unless job->softmax). A candidate
 * that is not done or has no stored weights (a store written before weights were kept) is an
 * error naming it. job->dataset overrides the stored dataset spec; calibration options are
 * unused. */
int nas_export_store_run(const nas_export_job *job, nas_export_summary *s, nas_err *e);

/* Shared by nas_export_job_run and nas_export_store_run: s->ops and s->arena_bytes (the
 * memory planner's peak) of g. */
int nas_export_graph_stats(const nas_g8_graph *g, nas_export_summary *s, nas_err *e);

/* Checked by nas_export_job_run and nas_export_store_run before any work: dir is a writable
 * directory, or does not exist and its parent is one (nothing is created). Errors (NAS_EIO)
 * name dir. */
int nas_export_out_check(const char *dir, nas_err *e);

/* Shared by nas_export_job_run and nas_export_store_run: creates job->out_dir and writes
 * job->format there as name: tflite (the bytes tflite[0..tflite_len) when tflite is not NULL,
 * else g serialised), c (g: name.h/.c and the runtime nasrt*), onnx (net in float and its QDQ
 * int8 twin with the ranges c); s->path receives the file written. */
struct nas_calib;
int nas_export_write(const nas_export_job *job, const char *name, const nas_net *net,
                     const struct nas_calib *c, const nas_g8_graph *g, const void *tflite,
                     size_t tflite_len, nas_export_summary *s, nas_err *e);

/* Quantises a trained checkpoint as nas_export_job_run does (QAT ranges when the checkpoint
 * has them, else calibration; job->format and job->out_dir are unused) without evaluating or writing anything: *g receives the int8 graph (caller
 * frees with nas_g8_graph_free), name the arch's name ("model" when it has none), and
 * *sample, when sample is non-NULL, the first test sample quantised with the graph's input
 * scale and zero point (caller frees; all zero points when the test split is empty). */
int nas_checkpoint_lower(const nas_export_job *job, nas_g8_graph *g, char name[64],
                         int8_t **sample, nas_err *e);

#endif
