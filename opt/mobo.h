/* opt/mobo.h: the multi-objective pieces of Bayesian optimisation around opt/gp.h: random
 * weights on the simplex, the augmented Chebyshev scalarisation (random scalarisations,
 * Paria et al. 2019; augmentation as in ParEGO, Knowles 2006), acquisition functions over a
 * pool of candidate points from one GP per objective (a lower confidence bound or a Monte
 * Carlo expected improvement of the scalarised objectives), and the hypervolume of a set of
 * points (1 to 3 objectives) for comparing fronts.
 * Every objective is MINIMISED here (negate a maximised one before use).
 * Ownership: callers own every array; nothing here keeps a pointer. */
#ifndef NAS_OPT_MOBO_H
#define NAS_OPT_MOBO_H

#include "core/error.h"
#include "core/rng.h"

/* w[k] drawn uniformly on the simplex {w >= 0, sum w = 1} (Dirichlet(1, ..., 1): normalised
 * exponential draws). Uses k uniforms from r. */
void nas_simplex_weights(nas_rng *r, int k, double *w);

/* Augmented Chebyshev scalarisation of objective vector f[k] (minimised) with weights w[k]
 * and ideal point z[k]:  s = max_i w_i (f_i - z_i) + rho * sum_i w_i (f_i - z_i).
 * Smaller is better. rho >= 0 (0.05 is usual) breaks ties between weakly dominated points. */
double nas_chebyshev(const double *f, const double *w, const double *z, int k, double rho);

enum nas_acq_kind {
  NAS_ACQ_UCB = 0, /* confidence bound (Paria et al.): score = -s(mu - sqrt(beta) sigma) */
  NAS_ACQ_EI = 1   /* expected improvement of the scalarisation over `best`, Monte Carlo */
};

typedef struct nas_acq {
  int kind;        /* enum nas_acq_kind */
  int k;           /* objectives (1..8) */
  const double *w; /* [k] scalarisation weights */
  const double *z; /* [k] ideal point */
  double rho;      /* Chebyshev augmentation */
  double beta;     /* UCB: exploration weight (sigma multiplier is sqrt(beta)), >= 0 */
  double best;     /* EI: smallest scalarised value observed so far */
  int samples;     /* EI: Monte Carlo draws per point (>= 1); the same draws (common random
                      numbers) serve every pool point, so scores are comparable */
} nas_acq;

/* Scores m pool points: mean and var are [m, k] row-major (point-major) posterior means and
 * variances of the k objectives; score[m] receives the acquisition value, LARGER is better.
 * EI draws acq->samples * k standard normals from r; UCB uses no randomness. NAS_EINVAL on a
 * bad configuration, NAS_ENOMEM. */
int nas_acq_score(const nas_acq *acq, const double *mean, const double *var, int m,
                  nas_rng *r, double *score, nas_err *e);

/* Hypervolume dominated by the points pts[n, k] (minimised) and bounded by the reference
 * point ref[k]: the Lebesgue measure of { y : y <= ref, some p in pts with p <= y }. Points
 * not strictly below ref in every objective add nothing; dominated and duplicate points are
 * allowed. k = 1, 2 or 3 (exact; 3 by slicing along the third objective). */
int nas_hypervolume(const double *pts, int n, int k, const double *ref, double *hv, nas_err *e);

#endif
