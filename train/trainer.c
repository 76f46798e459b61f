/* train/trainer.c: epochs over shuffled batches with an optimiser and a per-step schedule;
 * validation after each epoch, test at the end. All buffers are allocated before the first
 * step; the step itself (batch copy, forward, backward, update) does not allocate. */
#include "train/trainer.h"
#include "core/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void nas_train_cfg_default(nas_train_cfg *c, int optimizer) {
  memset(c, 0, sizeof *c);
  c->epochs = 10;
  c->batch = 128;
  c->lr = optimizer == NAS_SGD ? 0.05f : 0.002f;
  nas_optim_cfg_default(&c->optim, optimizer);
  c->sched = NAS_SCHED_COSINE;
  c->seed = 1;
}

static int check_data(const nas_net *net, const nas_dataset *ds, const char *which, nas_err *e) {
  if (ds->n < 1) return nas_errf(e, NAS_EINVAL, "%s set is empty", which);
  if (ds->h != net->in_h || ds->w != net->in_w || ds->c != net->in_c)
    return nas_errf(e, NAS_EINVAL, "%s set has samples of %dx%dx%d, the architecture's input is %dx%dx%d",
                    which, ds->h, ds->w, ds->c, net->in_h, net->in_w, net->in_c);
  if (ds->classes > net->classes)
    return nas_errf(e, NAS_EINVAL, "%s set has %d classes%s%s%s, the architecture has %d", which,
                    ds->classes, ds->labels_at[0] ? " (largest label: " : "", ds->labels_at,
                    ds->labels_at[0] ? ")" : "", net->classes);
  return NAS_OK;
}

int nas_evaluate(nas_net *net, const nas_dataset *ds, double *acc, double *loss, nas_err *e) {
  if (check_data(net, ds, "evaluation", e)) return e->code;
  nas_graph *g = net->g;
  int saved_training = g->training, B = g->max_batch, K = net->classes;
  g->training = 0;
  int *idx = nas_malloc((size_t)B * sizeof *idx);
  if (!idx) {
    g->training = saved_training;
    return nas_errf(e, NAS_ENOMEM, "evaluate: out of memory");
  }
  long correct = 0;
  double total_loss = 0;
  for (int s = 0; s < ds->n; s += B) {
    int n = ds->n - s < B ? ds->n - s : B;
    for (int i = 0; i < n; i++) idx[i] = s + i;
    nas_data_batch(ds, idx, n, g->nodes[net->input].val, g->nodes[net->labels].val, NULL, NULL);
    nas_graph_forward(g, n, net->loss);
    total_loss += (double)g->nodes[net->loss].val[0] * n;
    const float *z = g->nodes[net->logits].val;
    for (int i = 0; i < n; i++) {
      int best = 0;
      for (int k = 1; k < K; k++)
        if (z[(size_t)i * K + k] > z[(size_t)i * K + best]) best = k;
      correct += best == ds->y[s + i];
    }
  }
  free(idx);
  g->training = saved_training;
  if (acc) *acc = (double)correct / ds->n;
  if (loss) *loss = total_loss / ds->n;
  return NAS_OK;
}

/* The training loop on net (which may be the SVDO training form of the caller's network). */
static int train_loop(nas_net *net, const nas_data *d, const nas_train_cfg *cfg, nas_train_result *r,
                      nas_err *e) {
  memset(r, 0, sizeof *r);
  if (check_data(net, &d->train, "training", e)) return e->code;
  if (cfg->batch < 1 || cfg->batch > net->g->max_batch)
    return nas_errf(e, NAS_EINVAL, "batch %d must be 1..%d", cfg->batch, net->g->max_batch);
  if (cfg->epochs < 1) return nas_errf(e, NAS_EINVAL, "epochs %d must be at least 1", cfg->epochs);
  nas_graph *g = net->g;
  long steps_per_epoch = (d->train.n + cfg->batch - 1) / cfg->batch;
  nas_prune_run *pr = NULL;
  if (nas_prune_run_begin(net, steps_per_epoch * cfg->epochs, d->train.n, net->svdo_form, &pr, e))
    return e->code;
  const int masks = nas_prune_has_masks(g); /* keep masked weights at zero after each step */
  nas_optim *opt = nas_optim_new(g, &cfg->optim, e);
  if (!opt) {
    nas_prune_run_free(pr);
    return e->code;
  }
  int *perm = nas_malloc((size_t)d->train.n * sizeof *perm);
  if (!perm) {
    nas_optim_free(opt);
    nas_prune_run_free(pr);
    return nas_errf(e, NAS_ENOMEM, "train: out of memory for the order of %d samples",
                    d->train.n);
  }
  nas_rng rng;
  nas_rng_seed(&rng, cfg->seed);
  nas_rng_seed(&g->rng, cfg->seed ^ 0x5DEECE66Dull); /* dropout draws */
  nas_sched sched = {.kind = cfg->sched,
                     .base_lr = cfg->lr,
                     .total_steps = steps_per_epoch * cfg->epochs,
                     .warmup_steps = (long)(cfg->warmup_epochs * steps_per_epoch),
                     .step_size = steps_per_epoch * (cfg->epochs > 3 ? cfg->epochs / 3 : 1),
                     .gamma = 0.1f};
  const nas_augment *aug = (cfg->aug.shift || cfg->aug.flip) ? &cfg->aug : NULL;
  int rc = NAS_OK;
  long step = 0;
  double t0 = now_s(), train_only = 0;
  for (int ep = 1; ep <= cfg->epochs && rc == NAS_OK; ep++) {
    g->training = 1;
    nas_data_shuffle(&d->train, perm, &rng);
    double te = now_s(), loss_sum = 0;
    long seen = 0;
    for (long s = 0; s < steps_per_epoch; s++, step++) {
      int off = (int)(s * cfg->batch), n = d->train.n - off < cfg->batch ? d->train.n - off : cfg->batch;
      nas_data_batch(&d->train, perm + off, n, g->nodes[net->input].val,
                     g->nodes[net->labels].val, aug, &rng);
      nas_graph_forward(g, n, net->loss);
      float loss = g->nodes[net->loss].val[0];
      if (!isfinite(loss)) {
        rc = nas_errf(e, NAS_ENUMERIC, "training diverged: loss is %s at epoch %d step %ld",
                      isnan(loss) ? "NaN" : "Inf", ep, s + 1);
        break;
      }
      nas_graph_backward(g, net->loss);
      nas_prune_run_pre_step(pr, step);
      float lr = nas_sched_lr(&sched, step);
      nas_optim_step(opt, g, lr);
      if (pr && (rc = nas_prune_run_post_step(pr, step, e)) != NAS_OK) break;
      if (!pr && masks) nas_prune_bake(g);
      loss_sum += (double)loss * n;
      seen += n;
      if (cfg->progress) {
        nas_epoch_report rep = {ep, cfg->epochs, (int)s + 1, (int)steps_per_epoch, loss_sum / seen,
                                -1, seen / (now_s() - te + 1e-9), lr};
        cfg->progress(&rep, cfg->user);
      }
    }
    if (rc != NAS_OK) break;
    double secs = now_s() - te;
    train_only += secs;
    r->samples += seen;
    r->final_loss = loss_sum / seen;
    if (d->val.n > 0 && (rc = nas_evaluate(net, &d->val, &r->val_acc, NULL, e)) != NAS_OK) break;
    if (cfg->progress) {
      nas_epoch_report rep = {ep, cfg->epochs, (int)steps_per_epoch, (int)steps_per_epoch,
                              r->final_loss, d->val.n > 0 ? r->val_acc : 0, seen / secs,
                              nas_sched_lr(&sched, step - 1)};
      cfg->progress(&rep, cfg->user);
    }
  }
  if (rc == NAS_OK) rc = nas_prune_run_end(pr, e);
  r->train_seconds = now_s() - t0;
  r->samples_per_s = train_only > 0 ? (double)r->samples / train_only : 0;
  if (rc == NAS_OK && d->test.n > 0) rc = nas_evaluate(net, &d->test, &r->test_acc, NULL, e);
  nas_optim_free(opt);
  nas_prune_run_free(pr);
  free(perm);
  return rc;
}

int nas_train(nas_net *net, const nas_data *d, const nas_train_cfg *cfg, nas_train_result *r,
              nas_err *e) {
  if (net->prune.method != NAS_PRUNE_SVDO || net->svdo_form) return train_loop(net, d, cfg, r, e);
  /* Sparse Variational Dropout: train the SVDO form, then write it into net (train/prune.h) */
  memset(r, 0, sizeof *r);
  if (check_data(net, &d->train, "training", e)) return e->code;
  nas_net *t = NULL;
  int rc = nas_prune_svdo_build(net, net->g->max_batch, cfg->seed, &t, e);
  if (rc == NAS_OK) rc = train_loop(t, d, cfg, r, e);
  if (rc == NAS_OK) rc = nas_prune_svdo_export(t, net, e);
  nas_net_free(t);
  if (rc == NAS_OK && d->val.n > 0) rc = nas_evaluate(net, &d->val, &r->val_acc, NULL, e);
  if (rc == NAS_OK && d->test.n > 0) rc = nas_evaluate(net, &d->test, &r->test_acc, NULL, e);
  return rc;
}
