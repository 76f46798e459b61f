/* opt/gp.h: Gaussian-process regression for Bayesian optimisation: a constant-mean GP with a
 * Matern 5/2 kernel with one length scale per input dimension (ARD) and Gaussian noise, its
 * log marginal likelihood (LML) with the analytic gradient, hyper-parameters fitted by
 * maximising the LML (projected L-BFGS from several starts), and the posterior mean and
 * variance. Linear algebra through LAPACKE (Cholesky dpotrf, dpotri, triangular solves
 * dtrtrs) of the LAPACK that OpenBLAS provides.
 *
 * Kernel: k(a, b) = sf2 * (1 + sqrt5 r + 5 r^2 / 3) * exp(-sqrt5 r),
 *         r^2 = sum_i (a_i - b_i)^2 / l_i^2;  K = k(X, X) + sn2 * I.
 * Hyper-parameter vector theta (the unit the optimiser works in), length d + 2:
 *   theta[i] = log l_i (i < d), theta[d] = log sf2, theta[d+1] = log sn2.
 * Targets are modelled as y = mean + scale * g(x), g ~ GP(0, k): nas_gp_fit takes mean and
 * scale from the data (sample mean and standard deviation), nas_gp_build takes them given.
 *
 * Inputs X: [n, d] row-major doubles (the search-space encoding lies in [0, 1]).
 * Deterministic: the same data, options and RNG state give the same fit bit for bit.
 * Ownership: nas_gp is opaque, owns copies of X and y; free with nas_gp_free (NULL-safe). */
#ifndef NAS_OPT_GP_H
#define NAS_OPT_GP_H

#include "core/error.h"
#include "core/rng.h"

typedef struct nas_gp nas_gp;

typedef struct nas_gp_fit_opts {
  int restarts;        /* LML optimiser starts: the default point, then random ones (5) */
  int max_iter;        /* L-BFGS iterations per start (80) */
  double ls_min, ls_max;   /* length-scale bounds (0.01, 20) */
  double sf2_min, sf2_max; /* signal-variance bounds on standardised targets (0.05, 20) */
  double sn2_min, sn2_max; /* noise-variance bounds on standardised targets (1e-6, 1) */
} nas_gp_fit_opts;

void nas_gp_fit_opts_default(nas_gp_fit_opts *o);

/* The Matern 5/2 ARD kernel value k(a, b) under theta (layout above, d inputs). */
double nas_gp_kernel(const double *a, const double *b, int d, const double *theta);

/* LML of targets y[n] (zero prior mean, taken as given) at X[n, d] under theta, into *lml;
 * when grad is not NULL, grad[d + 2] receives dLML/dtheta. NAS_ENUMERIC when K is not
 * positive definite; NAS_ENOMEM; NAS_EINVAL on n < 1 or d < 1. */
int nas_gp_lml(const double *X, const double *y, int n, int d, const double *theta,
               double *lml, double *grad, nas_err *e);

/* A GP conditioned on (X, y) with fixed theta, prior mean `mean`, output scale `scale` > 0
 * (targets are divided by scale after subtracting mean; the kernel acts on that). */
int nas_gp_build(const double *X, const double *y, int n, int d, const double *theta,
                 double mean, double scale, nas_gp **out, nas_err *e);

/* Standardises y (sample mean, standard deviation; scale 1 when all y are equal), maximises
 * the LML over theta within the bounds of o (NULL: defaults) from o->restarts starts (the
 * first at l = 0.5, sf2 = 1, sn2 = 1e-2 clamped to the bounds, the rest drawn uniformly in
 * log space with r), keeps the best and conditions the GP on it. */
int nas_gp_fit(const double *X, const double *y, int n, int d, const nas_gp_fit_opts *o,
               nas_rng *r, nas_gp **out, nas_err *e);

/* Posterior mean[m] and variance var[m] (of the latent function, noise excluded, in the
 * units of y; never negative) at Xs[m, d]. var may be NULL. */
int nas_gp_predict(const nas_gp *g, const double *Xs, int m, double *mean, double *var,
                   nas_err *e);

int nas_gp_dim(const nas_gp *g);              /* d */
int nas_gp_n(const nas_gp *g);                /* n */
const double *nas_gp_theta(const nas_gp *g);  /* theta[d + 2] */
double nas_gp_lml_value(const nas_gp *g);     /* LML at theta of the standardised targets */
void nas_gp_free(nas_gp *g);

#endif
