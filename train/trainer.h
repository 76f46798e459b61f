/* train/trainer.h: the training loop (epochs over shuffled batches, optimiser, schedule,
 * validation after each epoch) and evaluation. */
#ifndef NAS_TRAIN_TRAINER_H
#define NAS_TRAIN_TRAINER_H

#include "datasets/dataset.h"
#include "train/net.h"
#include "train/optim.h"

typedef struct nas_epoch_report {
  int epoch;            /* 1-based */
  int epochs;           /* total */
  int step, steps;      /* batch within the epoch (progress callbacks) */
  double train_loss;    /* mean training loss so far this epoch */
  double val_acc;       /* validation accuracy after the epoch (-1 while in progress) */
  double samples_per_s; /* training throughput this epoch */
  float lr;             /* current learning rate */
} nas_epoch_report;

typedef struct nas_train_cfg {
  int epochs;           /* 10 */
  int batch;            /* 128 */
  float lr;             /* base learning rate (0.05 sgd / 0.002 adam) */
  nas_optim_cfg optim;  /* optimiser */
  int sched;            /* enum nas_sched_kind (cosine) */
  float warmup_epochs;  /* linear warm-up (0) */
  uint64_t seed;        /* shuffling, dropout, augmentation */
  nas_augment aug;      /* augmentation (off) */
  /* Called after every batch (report->val_acc < 0) and after every epoch; may be NULL. */
  void (*progress)(const nas_epoch_report *r, void *user);
  void *user;           /* passed to progress */
} nas_train_cfg;

typedef struct nas_train_result {
  double val_acc, test_acc;  /* accuracies in [0,1] after the last epoch */
  double final_loss;         /* mean training loss of the last epoch */
  double train_seconds;      /* wall time of the training loop, validation included */
  double samples_per_s;      /* training samples per second (training steps only) */
  long long samples;         /* training samples processed */
} nas_train_result;

void nas_train_cfg_default(nas_train_cfg *c, int optimizer);
/* Trains net on d->train, validating on d->val and finally testing on d->test. Returns
 * NAS_ENUMERIC when the loss becomes NaN/Inf (the message names the epoch and step). */
int nas_train(nas_net *net, const nas_data *d, const nas_train_cfg *cfg, nas_train_result *r,
              nas_err *e);
/* Accuracy and mean loss of net on ds in eval mode. */
int nas_evaluate(nas_net *net, const nas_dataset *ds, double *acc, double *loss, nas_err *e);

#endif
