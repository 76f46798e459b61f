/* nas/strategies/sparse.c: SpArSe-style search (Fedorov et al. 2019): the architecture and its
 * pruning searched together by multi-objective Bayesian optimisation, through the run
 * driver's proposal loop (nas/run.h).
 *
 * A candidate is the space's decisions plus three pruning decisions: the unstructured target
 * sparsity (from --sparsities), the structured channel fraction (--channel-fractions) and,
 * with --prune-method both, the method (magnitude or svdo); they become the arch's "prune"
 * object (train/prune.h; none when both fractions are 0, so a dense candidate has the same
 * arch and hash as under the other strategies).
 *
 * Proposal of candidate k (batch b = k / Q of --batch-proposals Q; the candidates of earlier
 * batches are the data, those of batch b before k only count as taken):
 *   - fewer than --init done candidates: a uniform sample;
 *   - else one Gaussian process per objective (opt/gp.h: Matern 5/2 ARD, hyper-parameters by
 *     maximum marginal likelihood with restarts) over the encoding (space encoding, then the
 *     pruning decisions as index / (count - 1)); targets: error = 1 - value for a maximised
 *     objective, log(value) for a minimised one (costs); rejected candidates teach the cost
 *     objectives. A pool of --pool uniform samples and --morphs network morphisms of every
 *     member of the current Pareto front (one space decision moved to a neighbouring value,
 *     or more sparsity, or more channels removed) is priced on the target; over-budget
 *     members are dropped (the budgets prefilter as in the other strategies). A priced cost
 *     is that objective's value for the pool member (exact for magnitude and structured
 *     pruning, whose final sparsity and widths are known before training); otherwise (svdo,
 *     accuracy) the GP's mean and variance. The objectives are normalised to [0, 1] over the
 *     data, scalarised by an augmented Chebyshev function with weights drawn uniformly on the
 *     simplex for this k (random scalarisations, Paria et al. 2019), and the member with the
 *     best acquisition (UCB or Monte Carlo EI, opt/mobo.h) is proposed.
 *   - a morphism child is warm-started: it inherits its parent's trained weights
 *     (train/inherit.h) and is fine-tuned for --finetune-epochs instead of trained from
 *     scratch; the store records the parent and warm_start = 1.
 * Everything random comes from the generator the driver seeds from (run seed, k), and the
 * data are the stored candidates, so a resumed run rebuilds the same surrogates and proposes
 * the same candidates as an uninterrupted one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "nas/candidate.h"
#include "nas/strategies/strategy.h"
#include "opt/gp.h"
#include "opt/mobo.h"
#include "train/prune.h"

#define MAX_CHOICES 16
#define MAX_OBJ 8

static const char *const METHODS[] = {"magnitude", "svdo"};

typedef struct sparse_st {
  int init;                 /* uniform samples before the surrogate */
  int pool;                 /* uniform samples in the pool */
  int morphs;               /* morphisms per front member in the pool */
  int acq;                  /* enum nas_acq_kind */
  double beta;              /* UCB: sigma multiplier squared */
  int finetune_epochs;      /* epochs of a warm-started child */
  int batch;                /* Q */
  int method;               /* 0 magnitude, 1 svdo, 2 both (a decision) */
  double sp[MAX_CHOICES];   /* sparsity choices */
  int n_sp;
  double ch[MAX_CHOICES];   /* channel fraction choices */
  int n_ch;
  /* the pruning decisions of candidates 0..n (propose runs in k order, fresh and replayed) */
  int (*pd)[3];             /* [k] = {sparsity index, channel index, method index} */
  int n_pd, cap_pd;
} sparse_st;

/* ---- options ----------------------------------------------------------------------------- */

/* "0,0.5,0.9" -> a JSON array of numbers in [0,1) under key. */
static int apply_list(const char *text, const char *opt, const char *key, cJSON *config,
                      nas_err *e) {
  cJSON *a = cJSON_CreateArray();
  if (!a) return nas_errf(e, NAS_ENOMEM, "out of memory");
  const char *s = text;
  int n = 0;
  while (*s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0 && v < 1) || (*end && *end != ',')) {
      cJSON_Delete(a);
      return nas_errf(e, NAS_EUSAGE, "option %s: '%s' is not a list of numbers in [0,1)", opt, text);
    }
    if (++n > MAX_CHOICES) {
      cJSON_Delete(a);
      return nas_errf(e, NAS_EUSAGE, "option %s: more than %d values", opt, MAX_CHOICES);
    }
    cJSON_AddItemToArray(a, cJSON_CreateNumber(v));
    s = *end ? end + 1 : end;
  }
  if (!n) {
    cJSON_Delete(a);
    return nas_errf(e, NAS_EUSAGE, "option %s: empty list", opt);
  }
  return nas_config_set(config, key, a) ? nas_errf(e, NAS_ENOMEM, "out of memory") : NAS_OK;
}
static int apply_sp(const char *t, cJSON *c, nas_err *e) { return apply_list(t, "--sparsities", "sparsities", c, e); }
static int apply_ch(const char *t, cJSON *c, nas_err *e) { return apply_list(t, "--channel-fractions", "channel_fractions", c, e); }

static const nas_opt OPTIONS[] = {
    {"--init", NAS_OPT_INT, "N", 1, 100000, .help = "uniform samples before the surrogate (8)", .key = "init"},
    {"--pool", NAS_OPT_INT, "N", 1, 100000, .help = "uniform samples scored per proposal (200)", .key = "pool"},
    {"--morphs", NAS_OPT_INT, "N", 0, 1000, .help = "morphisms of each front member scored per\nproposal (4)", .key = "morphs"},
    {"--acquisition", NAS_OPT_ENUM, "A", .choices = "ucb|ei", .what = "acquisition", .help = "ucb or ei (ucb)", .key = "acquisition"},
    {"--beta", NAS_OPT_NUM, "B", 0, 1e6, .help = "UCB exploration: mean - sqrt(B) sigma (4)", .key = "beta"},
    {"--finetune-epochs", NAS_OPT_INT, "E", 1, 100000, .help = "epochs of a warm-started morphism (half of\n--epochs, at least 1)", .key = "finetune_epochs"},
    {"--batch-proposals", NAS_OPT_INT, "Q", 1, 1024, .help = "propose Q candidates from the same data (1)", .key = "batch_proposals"},
    {"--prune-method", NAS_OPT_ENUM, "M", .choices = "magnitude|svdo|both", .what = "prune method", .help = "unstructured pruning: magnitude, svdo or both\n(a decision) (magnitude)", .key = "prune_method"},
    {"--sparsities", NAS_OPT_STR, "LIST", .help = "target sparsity choices (0,0.5,0.7,0.8,0.9)", .key = "sparsities", .apply = apply_sp},
    {"--channel-fractions", NAS_OPT_STR, "LIST", .help = "removed channel fraction choices (0,0.25,0.5)", .key = "channel_fractions", .apply = apply_ch},
    {0}};

static int read_list(const cJSON *config, const char *key, const double *def, int ndef,
                     double *out, int *n, nas_err *e) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(config, key);
  if (!a) {
    memcpy(out, def, sizeof *out * (size_t)ndef);
    *n = ndef;
    return NAS_OK;
  }
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > MAX_CHOICES)
    return nas_errf(e, NAS_EUSAGE, "%s: expected 1..%d numbers in [0,1)", key, MAX_CHOICES);
  *n = 0;
  for (const cJSON *v = a->child; v; v = v->next) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1))
      return nas_errf(e, NAS_EUSAGE, "%s: expected numbers in [0,1)", key);
    out[(*n)++] = v->valuedouble;
  }
  return NAS_OK;
}

static int configure(nas_run *r, const cJSON *config, nas_err *e) {
  sparse_st *s = nas_calloc(1, sizeof *s);
  if (!s) return nas_errf(e, NAS_ENOMEM, "out of memory");
  r->state = s;
  s->init = (int)nas_config_num(config, "init", 8);
  s->pool = (int)nas_config_num(config, "pool", 200);
  s->morphs = (int)nas_config_num(config, "morphs", 4);
  s->beta = nas_config_num(config, "beta", 4);
  s->batch = (int)nas_config_num(config, "batch_proposals", 1);
  int half = r->cfg.epochs / 2;
  s->finetune_epochs = (int)nas_config_num(config, "finetune_epochs", half > 0 ? half : 1);
  const char *a = nas_config_str(config, "acquisition");
  s->acq = a && !strcmp(a, "ei") ? NAS_ACQ_EI : NAS_ACQ_UCB;
  if (a && strcmp(a, "ei") && strcmp(a, "ucb"))
    return nas_errf(e, NAS_EUSAGE, "unknown acquisition '%s' (ucb, ei)", a);
  const char *m = nas_config_str(config, "prune_method");
  s->method = !m || !strcmp(m, "magnitude") ? 0 : !strcmp(m, "svdo") ? 1 : !strcmp(m, "both") ? 2 : -1;
  if (s->method < 0) return nas_errf(e, NAS_EUSAGE, "unknown prune method '%s' (magnitude, svdo, both)", m);
  if (s->init < 1 || s->pool < 1 || s->morphs < 0 || s->batch < 1 || s->finetune_epochs < 1 ||
      !(s->beta >= 0))
    return nas_errf(e, NAS_EUSAGE, "sparse: an option is out of range (init, pool, batch, "
                    "finetune epochs >= 1; morphs, beta >= 0)");
  static const double DSP[] = {0, 0.5, 0.7, 0.8, 0.9}, DCH[] = {0, 0.25, 0.5};
  int rc = read_list(config, "sparsities", DSP, 5, s->sp, &s->n_sp, e);
  if (rc == NAS_OK) rc = read_list(config, "channel_fractions", DCH, 3, s->ch, &s->n_ch, e);
  return rc;
}

static int save(const nas_run *r, cJSON *config) {
  const sparse_st *s = r->state;
  static const char *const M3[] = {"magnitude", "svdo", "both"};
  int ok = cJSON_AddNumberToObject(config, "init", s->init) != NULL;
  ok &= cJSON_AddNumberToObject(config, "pool", s->pool) != NULL;
  ok &= cJSON_AddNumberToObject(config, "morphs", s->morphs) != NULL;
  ok &= cJSON_AddStringToObject(config, "acquisition", s->acq == NAS_ACQ_EI ? "ei" : "ucb") != NULL;
  ok &= cJSON_AddNumberToObject(config, "beta", s->beta) != NULL;
  ok &= cJSON_AddNumberToObject(config, "finetune_epochs", s->finetune_epochs) != NULL;
  ok &= cJSON_AddNumberToObject(config, "batch_proposals", s->batch) != NULL;
  ok &= cJSON_AddStringToObject(config, "prune_method", M3[s->method]) != NULL;
  cJSON *a = cJSON_CreateDoubleArray(s->sp, s->n_sp), *b = cJSON_CreateDoubleArray(s->ch, s->n_ch);
  ok &= a && b;
  if (ok) cJSON_AddItemToObject(config, "sparsities", a), cJSON_AddItemToObject(config, "channel_fractions", b);
  else cJSON_Delete(a), cJSON_Delete(b);
  return ok ? 0 : -1;
}

static void release(nas_run *r) {
  sparse_st *s = r->state;
  if (s) free(s->pd);
  free(s);
  r->state = NULL;
}

/* ---- candidates: decisions, arch, encoding ----------------------------------------------- */

/* One pool member. */
typedef struct cand {
  int *d;                   /* space decisions [nd] (owned by the pool buffer) */
  int pd[3];                /* pruning decisions */
  int parent;               /* index into r->h of the front member it morphs, or -1 */
  char *arch;               /* arch JSON with its prune object (owned) */
  char hash[17];
  double cost[MAX_OBJ];     /* priced value per objective (NAN: not a priced column) */
  int exact;                /* 1: the priced costs are the values after training */
} cand;

static int n_methods(const sparse_st *s) { return s->method == 2 ? 2 : 1; }
static int method_of(const sparse_st *s, const int pd[3]) { return s->method == 2 ? pd[2] : s->method; }

/* Arch JSON of (d, pd): the space's arch plus the prune object when anything is pruned. */
static int make_arch(const nas_run *r, const sparse_st *s, const int *d, const int pd[3],
                     char **out, char hash[17], nas_err *e) {
  char *a = NULL;
  int rc = nas_space_materialize(r->sp, d, &a, e);
  if (rc != NAS_OK) return rc;
  double sp = s->sp[pd[0]], ch = s->ch[pd[1]];
  if (sp > 0 || ch > 0) {
    char pj[200];
    snprintf(pj, sizeof pj, "{\"method\":\"%s\",\"sparsity\":%.17g,\"channels\":%.17g}",
             sp > 0 ? METHODS[method_of(s, pd)] : "none", sp, ch);
    char *b = NULL;
    rc = nas_prune_arch_with(a, pj, &b, e);
    free(a);
    a = b;
  }
  if (rc == NAS_OK) rc = nas_arch_hash_hex(a, hash, e);
  if (rc != NAS_OK) free(a), a = NULL;
  *out = a;
  return rc;
}

/* Encoding: the space's (index / (count - 1)), then the pruning decisions likewise. */
static int enc_dim(const nas_run *r, const sparse_st *s) {
  return r->nd + (s->n_sp > 1) + (s->n_ch > 1) + (n_methods(s) > 1);
}
static void encode(const nas_run *r, const sparse_st *s, const int *d, const int pd[3], double *x) {
  nas_space_encode(r->sp, d, x);
  int j = r->nd;
  if (s->n_sp > 1) x[j++] = (double)pd[0] / (s->n_sp - 1);
  if (s->n_ch > 1) x[j++] = (double)pd[1] / (s->n_ch - 1);
  if (n_methods(s) > 1) x[j++] = pd[2];
}

static int taken(const nas_run *r, int k, const char *hash) {
  for (int i = 0; i < k; i++)
    if (!strcmp(r->h[i].hash, hash)) return 1;
  return 0;
}

/* Records candidate k's pruning decisions (propose is called in k order). */
static int record(sparse_st *s, int k, const int pd[3], nas_err *e) {
  if (k >= s->cap_pd) {
    int cap = k + 64;
    int(*p)[3] = nas_realloc(s->pd, sizeof *p * (size_t)cap);
    if (!p) return nas_errf(e, NAS_ENOMEM, "sparse: out of memory");
    s->pd = p, s->cap_pd = cap;
  }
  memcpy(s->pd[k], pd, sizeof s->pd[k]);
  if (k >= s->n_pd) s->n_pd = k + 1;
  return NAS_OK;
}

static void draw_pd(const sparse_st *s, nas_rng *rng, int pd[3]) {
  pd[0] = (int)nas_rng_below(rng, (uint32_t)s->n_sp);
  pd[1] = (int)nas_rng_below(rng, (uint32_t)s->n_ch);
  pd[2] = (int)nas_rng_below(rng, (uint32_t)n_methods(s));
}

/* Uniform proposal (space and pruning decisions). */
static int uniform(const nas_run *r, sparse_st *s, int k, nas_rng *rng, nas_proposal *p,
                   int *found, nas_err *e) {
  *found = 0;
  for (int t = 0; t < NAS_PROPOSE_TRIES; t++) {
    int pd[3];
    nas_space_sample(r->sp, rng, p->d);
    draw_pd(s, rng, pd);
    int rc = make_arch(r, s, p->d, pd, &p->arch, p->hash, e);
    if (rc != NAS_OK) return rc;
    if (taken(r, k, p->hash)) {
      free(p->arch), p->arch = NULL;
      continue;
    }
    *found = 1;
    return record(s, k, pd, e);
  }
  return NAS_OK;
}

/* ---- the surrogate proposal -------------------------------------------------------------- */

/* The objective's surrogate target of a metric value (NAN when unusable). */
static double target_of(double v, int maximize) {
  if (!isfinite(v)) return NAN;
  if (maximize) return v >= 0 && v <= 1 ? 1.0 - v : -v;
  return log(v > 1e-9 ? v : 1e-9);
}

/* 1 when metric column col is one the pricing fills (a cost). */
static int priced_column(int col) {
  static const char *const COSTS[] = {"macs", "params", "flash_bytes", "peak_sram_bytes",
                                      "latency_pred_ms", NULL};
  for (int i = 0; COSTS[i]; i++)
    if (col == nas_metric_index(COSTS[i])) return 1;
  return 0;
}

/* A neighbouring value of one active space decision, or more pruning: a morphism of front
 * member f into c (decisions in c->d). Returns 0 when none could be made. */
static int morph(const nas_run *r, const sparse_st *s, int f, nas_rng *rng, cand *c) {
  memcpy(c->d, r->h[f].d, sizeof(int) * (size_t)r->nd);
  memcpy(c->pd, s->pd[f], sizeof c->pd);
  c->parent = f;
  int kind = (int)nas_rng_below(rng, 4); /* 0, 1: a space decision; 2: sparsity; 3: channels */
  if (kind == 2 && c->pd[0] + 1 < s->n_sp) return c->pd[0]++, 1;
  if (kind == 3 && c->pd[1] + 1 < s->n_ch) return c->pd[1]++, 1;
  unsigned char act[256];
  nas_err e0 = {0};
  if (r->nd <= 0 || r->nd > 256 || nas_space_active(r->sp, c->d, act, &e0) != NAS_OK) return 0;
  for (int t = 0; t < 8; t++) {
    int i = (int)nas_rng_below(rng, (uint32_t)r->nd), card = nas_space_card(r->sp, i);
    if (!act[i] || card < 2) continue;
    int step = nas_rng_below(rng, 2) ? 1 : -1;
    if (c->d[i] + step < 0 || c->d[i] + step >= card) step = -step;
    c->d[i] += step;
    return 1;
  }
  return 0;
}

typedef struct work {
  cand *pool;
  int n, cap;
  int *dbuf;                /* decisions of the pool members */
  double *X, *y, *Xp, *mean, *var, *mu, *sd, *score;
  nas_gp *gp[MAX_OBJ];
} work;

static void work_free(work *w) {
  for (int i = 0; i < w->n; i++) free(w->pool[i].arch);
  for (int j = 0; j < MAX_OBJ; j++) nas_gp_free(w->gp[j]);
  free(w->pool), free(w->dbuf), free(w->X), free(w->y), free(w->Xp), free(w->mean);
  free(w->var), free(w->mu), free(w->sd), free(w->score);
}

/* Adds c (decisions already in c->d) to the pool unless taken, a duplicate or over budget. */
static int add_pool(const nas_run *r, const sparse_st *s, int k, work *w, cand *c, nas_err *e) {
  int rc = make_arch(r, s, c->d, c->pd, &c->arch, c->hash, e);
  if (rc != NAS_OK) return rc;
  int dup = taken(r, k, c->hash);
  for (int i = 0; !dup && i < w->n; i++) dup = !strcmp(w->pool[i].hash, c->hash);
  if (dup) {
    free(c->arch), c->arch = NULL;
    return NAS_OK;
  }
  /* price: the budgets prefilter; a channel-pruned arch at its compacted widths */
  char *priced = NULL;
  rc = nas_prune_expected_arch(c->arch, &priced, e);
  nas_candidate_cfg cc;
  nas_run_candidate_cfg(r, r->cfg.epochs, r->cfg.eval_limit, 0, &cc);
  nas_candidate_price pr;
  memset(&pr, 0, sizeof pr);
  if (rc == NAS_OK) rc = nas_candidate_price_arch(priced, &cc, &pr, e);
  free(priced);
  if (rc == NAS_OK && pr.valid && !pr.reason[0]) {
    for (int j = 0; j < r->obj.n; j++) {
      nas_metrics m = pr.m;
      c->cost[j] = priced_column(r->obj.metric[j]) ? *nas_metrics_at(&m, r->obj.metric[j]) : NAN;
    }
    c->exact = method_of(s, c->pd) != 1 || s->sp[c->pd[0]] == 0; /* svdo: known after training */
    w->pool[w->n++] = *c;
    c->arch = NULL;
  } else {
    free(c->arch), c->arch = NULL;
  }
  nas_candidate_price_free(&pr);
  return rc;
}

/* The current Pareto front (rank 0) of the done candidates among r->h[0..k0) with every
 * objective known: their indices into front[], the count. -1 when out of memory. */
static int front_of(const nas_run *r, int k0, int *front) {
  int m = r->obj.n, n = 0;
  int *idx = nas_malloc(sizeof(int) * (size_t)(k0 + 1)), *rank = nas_malloc(sizeof(int) * (size_t)(k0 + 1));
  double *pts = nas_malloc(sizeof(double) * (size_t)(k0 + 1) * (size_t)m);
  if (!idx || !rank || !pts) {
    free(idx), free(rank), free(pts);
    return -1;
  }
  for (int i = 0; i < k0; i++) {
    if (strcmp(r->h[i].state, "done")) continue;
    int ok = 1;
    nas_metrics mm = r->h[i].m;
    for (int j = 0; j < m; j++) {
      double v = *nas_metrics_at(&mm, r->obj.metric[j]);
      ok &= isfinite(v) != 0;
      pts[n * m + j] = v;
    }
    if (ok) idx[n++] = i;
  }
  int nf = 0;
  if (n > 0 && nas_pareto_ranks(pts, n, m, r->obj.maximize, rank) >= 0)
    for (int i = 0; i < n; i++)
      if (rank[i] == 0) front[nf++] = idx[i];
  free(idx), free(rank), free(pts);
  return nf;
}

static int grow_pool(work *w, int need, int nd) {
  if (w->n + need <= w->cap) return 0;
  int cap = w->n + need + 64;
  cand *p = nas_realloc(w->pool, sizeof *p * (size_t)cap);
  if (!p) return -1;
  w->pool = p;
  int *d = nas_realloc(w->dbuf, sizeof(int) * (size_t)cap * (size_t)(nd ? nd : 1));
  if (!d) return -1;
  w->dbuf = d;
  for (int i = 0; i < w->n; i++) w->pool[i].d = w->dbuf + (size_t)i * (size_t)nd;
  w->cap = cap;
  return 0;
}

static int surrogate(const nas_run *r, sparse_st *s, int k, int k0, nas_rng *rng,
                     nas_proposal *p, int *found, nas_err *e) {
  const int m = r->obj.n, D = enc_dim(r, s), nd = r->nd;
  work w;
  memset(&w, 0, sizeof w);
  int rc = NAS_OK;
  int *front = nas_malloc(sizeof(int) * (size_t)(k0 + 1));
  w.X = nas_malloc(sizeof(double) * (size_t)(k0 + 1) * (size_t)D);
  w.y = nas_malloc(sizeof(double) * (size_t)(k0 + 1));
  if (!front || !w.X || !w.y || m > MAX_OBJ) {
    rc = m > MAX_OBJ ? nas_errf(e, NAS_EUSAGE, "sparse: at most %d objectives", MAX_OBJ)
                     : nas_errf(e, NAS_ENOMEM, "sparse: out of memory");
    goto done;
  }
  /* one GP per objective over the stored data (earlier batches only) */
  double lo[MAX_OBJ], hi[MAX_OBJ];
  for (int j = 0; j < m && rc == NAS_OK; j++) {
    int n = 0;
    lo[j] = INFINITY, hi[j] = -INFINITY;
    for (int i = 0; i < k0; i++) {
      int done = !strcmp(r->h[i].state, "done");
      if (!done && !(priced_column(r->obj.metric[j]) && !strcmp(r->h[i].state, "rejected"))) continue;
      nas_metrics mm = r->h[i].m;
      double t = target_of(*nas_metrics_at(&mm, r->obj.metric[j]), r->obj.maximize[j]);
      if (!isfinite(t)) continue;
      encode(r, s, r->h[i].d, s->pd[i], w.X + (size_t)n * D);
      w.y[n++] = t;
      if (done) lo[j] = t < lo[j] ? t : lo[j], hi[j] = t > hi[j] ? t : hi[j];
    }
    if (n == 0) continue;
    nas_gp_fit_opts go;
    nas_gp_fit_opts_default(&go);
    go.restarts = 3, go.max_iter = 60;
    rc = nas_gp_fit(w.X, w.y, n, D, &go, rng, &w.gp[j], e);
    if (rc == NAS_ENUMERIC) rc = NAS_OK, w.gp[j] = NULL; /* no usable fit: the objective is skipped */
  }
  if (rc != NAS_OK) goto done;
  /* the pool: uniform samples, then morphisms of the front */
  int nf = front_of(r, k0, front);
  if (nf < 0) {
    rc = nas_errf(e, NAS_ENOMEM, "sparse: out of memory");
    goto done;
  }
  for (int t = 0; rc == NAS_OK && t < s->pool + nf * s->morphs; t++) {
    if (grow_pool(&w, 1, nd)) {
      rc = nas_errf(e, NAS_ENOMEM, "sparse: out of memory");
      break;
    }
    cand c;
    memset(&c, 0, sizeof c);
    c.d = w.dbuf + (size_t)w.n * (size_t)nd;
    c.parent = -1;
    if (t < s->pool) {
      nas_space_sample(r->sp, rng, c.d);
      draw_pd(s, rng, c.pd);
    } else if (!morph(r, s, front[(t - s->pool) / (s->morphs ? s->morphs : 1)], rng, &c)) {
      continue;
    }
    rc = add_pool(r, s, k, &w, &c, e);
  }
  if (rc != NAS_OK) goto done;
  if (w.n == 0) { /* nothing in the pool fits: sample (the driver rejects what does not fit) */
    rc = uniform(r, s, k, rng, p, found, e);
    goto done;
  }
  /* predictions, normalised to [0,1] over the data's range */
  w.Xp = nas_malloc(sizeof(double) * (size_t)w.n * (size_t)D);
  w.mu = nas_malloc(sizeof(double) * (size_t)w.n), w.sd = nas_malloc(sizeof(double) * (size_t)w.n);
  w.mean = nas_malloc(sizeof(double) * (size_t)w.n * (size_t)m);
  w.var = nas_malloc(sizeof(double) * (size_t)w.n * (size_t)m);
  w.score = nas_malloc(sizeof(double) * (size_t)w.n);
  if (!w.Xp || !w.mu || !w.sd || !w.mean || !w.var || !w.score) {
    rc = nas_errf(e, NAS_ENOMEM, "sparse: out of memory");
    goto done;
  }
  for (int i = 0; i < w.n; i++) encode(r, s, w.pool[i].d, w.pool[i].pd, w.Xp + (size_t)i * D);
  for (int j = 0; j < m && rc == NAS_OK; j++) {
    double span = hi[j] > lo[j] ? hi[j] - lo[j] : 1.0, base = isfinite(lo[j]) ? lo[j] : 0.0;
    if (w.gp[j]) rc = nas_gp_predict(w.gp[j], w.Xp, w.n, w.mu, w.sd, e);
    for (int i = 0; rc == NAS_OK && i < w.n; i++) {
      double mu = w.gp[j] ? w.mu[i] : base + 0.5 * span, v = w.gp[j] ? w.sd[i] : 0.25 * span * span;
      const cand *c = &w.pool[i];
      if (isfinite(c->cost[j]) && c->exact) mu = target_of(c->cost[j], r->obj.maximize[j]), v = 0;
      w.mean[(size_t)i * m + j] = (mu - base) / span;
      w.var[(size_t)i * m + j] = v / (span * span);
    }
  }
  if (rc != NAS_OK) goto done;
  double wt[MAX_OBJ], z[MAX_OBJ] = {0};
  nas_simplex_weights(rng, m, wt);
  nas_acq a = {s->acq, m, wt, z, 0.05, s->beta, 0, 64};
  if (s->acq == NAS_ACQ_EI) { /* the best scalarised value of the data */
    a.best = INFINITY;
    for (int i = 0; i < k0; i++) {
      if (strcmp(r->h[i].state, "done")) continue;
      double f[MAX_OBJ];
      int ok = 1;
      for (int j = 0; j < m; j++) {
        nas_metrics mm = r->h[i].m;
        double t = target_of(*nas_metrics_at(&mm, r->obj.metric[j]), r->obj.maximize[j]);
        double span = hi[j] > lo[j] ? hi[j] - lo[j] : 1.0;
        ok &= isfinite(t) != 0;
        f[j] = (t - (isfinite(lo[j]) ? lo[j] : 0)) / span;
      }
      double sv = nas_chebyshev(f, wt, z, m, 0.05);
      if (ok && sv < a.best) a.best = sv;
    }
    if (!isfinite(a.best)) a.best = 1.0;
  }
  if ((rc = nas_acq_score(&a, w.mean, w.var, w.n, rng, w.score, e)) != NAS_OK) goto done;
  int best = 0;
  for (int i = 1; i < w.n; i++)
    if (w.score[i] > w.score[best]) best = i;
  cand *c = &w.pool[best];
  memcpy(p->d, c->d, sizeof(int) * (size_t)nd);
  p->arch = c->arch, c->arch = NULL;
  memcpy(p->hash, c->hash, sizeof p->hash);
  if (c->parent >= 0) { /* a morphism: warm-started from its parent */
    p->parent = r->h[c->parent].id, p->generation = r->h[c->parent].generation + 1;
    p->warm = 1, p->epochs = s->finetune_epochs;
  }
  *found = 1;
  rc = record(s, k, c->pd, e);
done:
  work_free(&w);
  free(front);
  return rc;
}

static int propose(const nas_run *r, int k, nas_rng *rng, nas_proposal *p, int *found,
                   nas_err *e) {
  sparse_st *s = r->state;
  int k0 = k - k % s->batch, ndone = 0;
  for (int i = 0; i < k0; i++) ndone += !strcmp(r->h[i].state, "done");
  if (ndone < s->init) return uniform(r, s, k, rng, p, found, e);
  return surrogate(r, s, k, k0, rng, p, found, e);
}

const nas_strategy nas_strategy_sparse = {
    .name = "sparse",
    .summary = "SpArSe: multi-objective BO over architecture + pruning",
    .help = "Gaussian processes (Matern 5/2) per objective over the space's decisions and the\n"
            "pruning decisions, random Chebyshev scalarisations, UCB or EI over a pool of\n"
            "samples and morphisms of the front; morphisms inherit their parent's weights.",
    .options = OPTIONS,
    .unit = "candidate",
    .configure = configure,
    .save = save,
    .propose = propose,
    .release = release,
};
