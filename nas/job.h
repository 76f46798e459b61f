/* nas/job.h: whole jobs behind the CLI subcommands, as library functions so that the CLI
 * stays a parser and printer. */
#ifndef NAS_NAS_JOB_H
#define NAS_NAS_JOB_H

#include "train/trainer.h"

typedef struct nas_train_job {
  const char *arch_path;     /* arch JSON file */
  const char *dataset;       /* dataset spec */
  const char *save_path;     /* checkpoint to write, or NULL */
  int train_limit;           /* 0: all training samples */
  nas_train_cfg cfg;         /* training configuration */
} nas_train_job;

typedef struct nas_train_summary {
  nas_train_result r;        /* accuracies and timings */
  long long params, macs;    /* of the network */
  int train_n, val_n, test_n;/* split sizes */
  char arch_name[64];        /* "name" of the arch, or the file name */
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
  const char *format;        /* "tflite", "c" (<name>.h/.c + nas_kernels.h/.c) or "onnx"
                                (float <name>.onnx + QDQ <name>.qdq.onnx) */
  const char *out_dir;       /* directory to write <arch name>.<ext> into (created) */
  int calib_method;          /* enum nas_calib_method */
  int calib_samples;         /* training samples for calibration (1000) */
  int softmax;               /* append an int8 SOFTMAX after the logits */
} nas_export_job;

typedef struct nas_export_summary {
  double float_test_acc;     /* float network on the test split */
  double int8_test_acc;      /* the exported int8 graph on the test split */
  int test_n;                /* test samples */
  int ops;                   /* operators of the int8 graph */
  long long arena_bytes;     /* peak tensor arena of the int8 graph (memory planner) */
  char path[4096];           /* file written */
} nas_export_summary;

/* Quantises a trained checkpoint (BN folding, post-training calibration), evaluates the int8
 * graph, and writes it in the requested format. */
int nas_export_job_run(const nas_export_job *job, nas_export_summary *s, nas_err *e);

#endif
