/* train/optim.h: optimisers over every PARAM node of a graph, and learning-rate schedules.
 * Semantics follow PyTorch 1.13 (torch.optim.SGD with momentum/dampening 0/weight_decay
 * added to the gradient; Adam with L2 weight decay added to the gradient; AdamW with
 * decoupled decay lr*wd*w), so that accuracy can be compared like for like.
 * Ownership: nas_optim owns its state buffers (allocated once in nas_optim_new). */
#ifndef NAS_TRAIN_OPTIM_H
#define NAS_TRAIN_OPTIM_H

#include "train/graph.h"

enum nas_optim_kind { NAS_SGD = 0, NAS_ADAM = 1, NAS_ADAMW = 2 };

typedef struct nas_optim_cfg {
  int kind;           /* enum nas_optim_kind */
  float momentum;     /* SGD momentum (0.9) */
  int nesterov;       /* SGD Nesterov momentum (0) */
  float weight_decay; /* L2 (SGD, Adam) or decoupled (AdamW) */
  float beta1, beta2; /* Adam moments (0.9, 0.999) */
  float eps;          /* Adam epsilon (1e-8) */
} nas_optim_cfg;

typedef struct nas_optim {
  nas_optim_cfg cfg;  /* copy of the configuration */
  int n;              /* number of parameter tensors */
  int *ids;           /* node ids of the params */
  float **m, **v;     /* per-param state [n][numel]: m is the momentum buffer (SGD) or first
                         moment (Adam), v the second moment; v is NULL for SGD and m is NULL
                         for SGD without momentum */
  long step;          /* steps taken (Adam's bias-correction t after a step) */
} nas_optim;

void nas_optim_cfg_default(nas_optim_cfg *c, int kind);
/* Collects every PARAM node of g in tape order and allocates zeroed state once. Returns NULL
 * with e filled on allocation failure (NAS_ENOMEM) or on an invalid configuration or graph
 * (NAS_EINVAL: unknown kind, negative decay/momentum, betas outside [0,1), nesterov without
 * momentum, graph not allocated). */
nas_optim *nas_optim_new(const nas_graph *g, const nas_optim_cfg *cfg, nas_err *e);
/* One update of every param from its grad with learning rate lr. No allocation. node->grad
 * is read, never modified. A param whose grad is NULL is skipped (frozen). */
void nas_optim_step(nas_optim *o, nas_graph *g, float lr);
void nas_optim_free(nas_optim *o); /* NULL-safe */

enum nas_sched_kind { NAS_SCHED_CONST = 0, NAS_SCHED_COSINE = 1, NAS_SCHED_STEP = 2 };

typedef struct nas_sched {
  int kind;           /* enum nas_sched_kind */
  float base_lr;      /* peak learning rate */
  long total_steps;   /* steps of the whole run (cosine decays to min_lr at total_steps) */
  long warmup_steps;  /* linear warm-up from 0 to base_lr over these steps (0: none) */
  long step_size;     /* STEP: multiply by gamma every step_size steps after warm-up */
  float gamma;        /* STEP factor (0.1) */
  float min_lr;       /* COSINE floor (0) */
} nas_sched;

/* Learning rate for 0-based step `step`. During the first warmup_steps steps:
 * base_lr*(step+1)/warmup_steps. After that, with t = step - warmup_steps:
 *   CONST: base_lr;
 *   COSINE: min_lr + (base_lr-min_lr)*(1+cos(pi*t/T))/2, T = total_steps - warmup_steps,
 *           t clamped to T (min_lr from total_steps on, and throughout when T <= 0);
 *   STEP: base_lr * gamma^floor(t/step_size) (step_size <= 0: no decay).
 * An unknown kind yields NaN, so that it cannot pass unnoticed (validate with
 * nas_sched_parse). */
float nas_sched_lr(const nas_sched *s, long step);
/* Parses "cosine", "step", "const"; returns -1 for anything else. */
int nas_sched_parse(const char *name);

#endif
