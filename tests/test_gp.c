/* opt/: the GP surrogate (a hand-computed three-point posterior, LML and its gradient against
 * central differences, the LML fit on a smooth function, determinism, input errors), simplex
 * weights, the Chebyshev scalarisation, UCB/EI scores and the hypervolume on hand examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt/gp.h"
#include "opt/mobo.h"
#include "tests/test_util.h"

/* The three-point example, worked by hand (Rasmussen & Williams eq. 2.25-2.26, 2.30):
 * X = {0, 0.5, 1}, y = {1, -1, 0.5}, l = 0.5, sf2 = 1, sn2 = 0.01, zero mean, scale 1.
 * Scaled distances between training points are 1 and 2, so
 *   k(1) = (1 + sqrt5 + 5/3) e^-sqrt5        = 0.5239941088318203
 *   k(2) = (1 + 2 sqrt5 + 20/3) e^-(2 sqrt5) = 0.1386602191385043
 *   K = [[1.01, k1, k2], [k1, 1.01, k1], [k2, k1, 1.01]].
 * At x* = 0.25 the scaled distances are 0.5, 0.5, 1.5:
 *   k* = (0.8286491424181253, 0.8286491424181253, 0.2831632713397992).
 * With K^-1 from the 3x3 cofactor formula (det K, adjugate):
 *   mean = k*^T K^-1 y = -0.13541373974103665, var = 1 - k*^T K^-1 k* = 0.09690895106529152,
 *   LML = -y^T K^-1 y / 2 - log det K / 2 - 3/2 log 2 pi = -5.669535469004355. */
static void test_three_points(void **state) {
  (void)state;
  const double X[3] = {0, 0.5, 1}, y[3] = {1, -1, 0.5};
  double theta[3] = {log(0.5), 0.0, log(0.01)};
  assert_true(fabs(nas_gp_kernel(X, X + 1, 1, theta) - 0.5239941088318203) < 1e-14);
  assert_true(fabs(nas_gp_kernel(X, X + 2, 1, theta) - 0.1386602191385043) < 1e-14);
  nas_gp *g;
  nas_err e = {0};
  assert_int_equal(nas_gp_build(X, y, 3, 1, theta, 0.0, 1.0, &g, &e), NAS_OK);
  double xs = 0.25, mu, var;
  assert_int_equal(nas_gp_predict(g, &xs, 1, &mu, &var, &e), NAS_OK);
  assert_true(fabs(mu - -0.13541373974103665) < 1e-12);
  assert_true(fabs(var - 0.09690895106529152) < 1e-12);
  assert_true(fabs(nas_gp_lml_value(g) - -5.669535469004355) < 1e-12);
  double lml;
  assert_int_equal(nas_gp_lml(X, y, 3, 1, theta, &lml, NULL, &e), NAS_OK);
  assert_true(fabs(lml - -5.669535469004355) < 1e-12);
  /* mean and scale: y = 2 + 3 g(x) gives mean 2 + 3 mu and variance 9 var */
  double y2[3];
  for (int i = 0; i < 3; i++) y2[i] = 2 + 3 * y[i];
  nas_gp *g2;
  assert_int_equal(nas_gp_build(X, y2, 3, 1, theta, 2.0, 3.0, &g2, &e), NAS_OK);
  double mu2, var2;
  assert_int_equal(nas_gp_predict(g2, &xs, 1, &mu2, &var2, &e), NAS_OK);
  assert_true(fabs(mu2 - (2 + 3 * mu)) < 1e-12);
  assert_true(fabs(var2 - 9 * var) < 1e-12);
  /* at a training point the mean is close to its target and the variance small */
  double m0, v0;
  assert_int_equal(nas_gp_predict(g, X + 1, 1, &m0, &v0, &e), NAS_OK);
  assert_true(fabs(m0 - -1) < 0.05 && v0 < 0.01);
  /* far from the data: the prior */
  double xf = 50, mf, vf;
  assert_int_equal(nas_gp_predict(g, &xf, 1, &mf, &vf, &e), NAS_OK);
  assert_true(fabs(mf) < 1e-12 && fabs(vf - 1) < 1e-12);
  nas_gp_free(g);
  nas_gp_free(g2);
  nas_gp_free(NULL);
}

static double frand(nas_rng *r) { return nas_rng_uniform(r); }

/* dLML/dtheta against central differences on random data, d = 3, n = 9. */
static void test_lml_gradient(void **state) {
  (void)state;
  nas_rng r;
  nas_rng_seed(&r, 7);
  enum { N = 9, D = 3, P = D + 2 };
  double X[N * D], y[N];
  for (int i = 0; i < N * D; i++) X[i] = frand(&r);
  for (int i = 0; i < N; i++) y[i] = sin(4 * X[i * D]) + X[i * D + 1] - 0.5 + 0.1 * frand(&r);
  double theta[P] = {log(0.3), log(0.7), log(2.0), log(1.3), log(0.05)};
  double lml, g[P];
  nas_err e = {0};
  assert_int_equal(nas_gp_lml(X, y, N, D, theta, &lml, g, &e), NAS_OK);
  for (int k = 0; k < P; k++) {
    double h = 1e-5, tp[P], tm[P], lp, lm;
    memcpy(tp, theta, sizeof tp);
    memcpy(tm, theta, sizeof tm);
    tp[k] += h, tm[k] -= h;
    assert_int_equal(nas_gp_lml(X, y, N, D, tp, &lp, NULL, &e), NAS_OK);
    assert_int_equal(nas_gp_lml(X, y, N, D, tm, &lm, NULL, &e), NAS_OK);
    double num = (lp - lm) / (2 * h);
    assert_true(fabs(num - g[k]) < 1e-6 * (1 + fabs(num)));
  }
}

/* Fitting on f(x) = sin(6 x0) + 0.2 x1 (x2 irrelevant): the fit beats the default start's
 * LML, predicts held-out points with RMSE < 0.1, finds the irrelevant dimension's length
 * scale longer than the first one's, and is the same bit for bit with the same seed. */
static double fsmooth(const double *x) { return sin(6 * x[0]) + 0.2 * x[1]; }

static void test_fit(void **state) {
  (void)state;
  enum { N = 30, D = 3, M = 50 };
  nas_rng r;
  nas_rng_seed(&r, 11);
  double X[N * D], y[N], Xt[M * D], mu[M], var[M];
  for (int i = 0; i < N * D; i++) X[i] = frand(&r);
  for (int i = 0; i < N; i++) y[i] = fsmooth(X + i * D);
  for (int i = 0; i < M * D; i++) Xt[i] = frand(&r);
  nas_gp *g, *g2;
  nas_err e = {0};
  nas_rng r1, r2;
  nas_rng_seed(&r1, 3);
  nas_rng_seed(&r2, 3);
  assert_int_equal(nas_gp_fit(X, y, N, D, NULL, &r1, &g, &e), NAS_OK);
  assert_int_equal(nas_gp_fit(X, y, N, D, NULL, &r2, &g2, &e), NAS_OK);
  assert_memory_equal(nas_gp_theta(g), nas_gp_theta(g2), (D + 2) * sizeof(double));
  /* LML at the default start, on the same standardised targets */
  double mean = 0, sd = 0, ys[N];
  for (int i = 0; i < N; i++) mean += y[i] / N;
  for (int i = 0; i < N; i++) sd += (y[i] - mean) * (y[i] - mean) / (N - 1);
  sd = sqrt(sd);
  for (int i = 0; i < N; i++) ys[i] = (y[i] - mean) / sd;
  double th0[D + 2] = {log(0.5), log(0.5), log(0.5), 0, log(1e-2)}, l0;
  assert_int_equal(nas_gp_lml(X, ys, N, D, th0, &l0, NULL, &e), NAS_OK);
  assert_true(nas_gp_lml_value(g) > l0);
  const double *th = nas_gp_theta(g);
  assert_true(th[2] > th[0]);
  assert_int_equal(nas_gp_predict(g, Xt, M, mu, var, &e), NAS_OK);
  double se = 0;
  for (int i = 0; i < M; i++) {
    double d = mu[i] - fsmooth(Xt + i * D);
    se += d * d;
    assert_true(var[i] >= 0);
  }
  assert_true(sqrt(se / M) < 0.1);
  assert_int_equal(nas_gp_n(g), N);
  assert_int_equal(nas_gp_dim(g), D);
  nas_gp_free(g);
  nas_gp_free(g2);
  /* constant targets and a single point still fit (scale 1) */
  double yc[N];
  for (int i = 0; i < N; i++) yc[i] = 4.0;
  assert_int_equal(nas_gp_fit(X, yc, N, D, NULL, &r1, &g, &e), NAS_OK);
  assert_int_equal(nas_gp_predict(g, Xt, 1, mu, var, &e), NAS_OK);
  assert_true(fabs(mu[0] - 4.0) < 1e-6);
  nas_gp_free(g);
  assert_int_equal(nas_gp_fit(X, y, 1, D, NULL, &r1, &g, &e), NAS_OK);
  nas_gp_free(g);
}

static void test_errors(void **state) {
  (void)state;
  nas_gp *g = (nas_gp *)1;
  nas_err e = {0};
  double X[2] = {0, 1}, y[2] = {0, NAN}, th[3] = {0, 0, -4};
  nas_rng r;
  nas_rng_seed(&r, 1);
  assert_int_equal(nas_gp_fit(X, y, 0, 1, NULL, &r, &g, &e), NAS_EINVAL);
  assert_null(g);
  assert_int_equal(nas_gp_fit(X, y, 2, 1, NULL, &r, &g, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "target 1"));
  assert_int_equal(nas_gp_build(X, y, 2, 1, th, 0, 0, &g, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "scale"));
  nas_gp_fit_opts o;
  nas_gp_fit_opts_default(&o);
  o.restarts = 0;
  y[1] = 1;
  assert_int_equal(nas_gp_fit(X, y, 2, 1, &o, &r, &g, &e), NAS_EINVAL);
  /* two identical inputs and no noise: not positive definite */
  double Xd[2] = {0.5, 0.5}, thn[3] = {0, 0, -200}, l;
  assert_int_equal(nas_gp_lml(Xd, y, 2, 1, thn, &l, NULL, &e), NAS_ENUMERIC);
  assert_non_null(strstr(e.msg, "positive definite"));
}

static void test_simplex_chebyshev(void **state) {
  (void)state;
  nas_rng r;
  nas_rng_seed(&r, 5);
  double w[3], mean[3] = {0};
  const int T = 20000;
  for (int t = 0; t < T; t++) {
    nas_simplex_weights(&r, 3, w);
    double s = 0;
    for (int i = 0; i < 3; i++) {
      assert_true(w[i] >= 0);
      s += w[i], mean[i] += w[i] / T;
    }
    assert_true(fabs(s - 1) < 1e-12);
  }
  for (int i = 0; i < 3; i++) assert_true(fabs(mean[i] - 1.0 / 3) < 0.01);
  /* Dirichlet(1,1,1): P(w0 > 1/2) = (1/2)^2 = 1/4 */
  int above = 0;
  for (int t = 0; t < T; t++) {
    nas_simplex_weights(&r, 3, w);
    above += w[0] > 0.5;
  }
  assert_true(fabs((double)above / T - 0.25) < 0.015);
  /* s = max(0.2 * (0.5 - 0), 0.8 * (0.25 - 0.1)) + 0.05 * (0.1 + 0.12) = 0.12 + 0.011 */
  const double f[2] = {0.5, 0.25}, ww[2] = {0.2, 0.8}, z[2] = {0, 0.1};
  assert_true(fabs(nas_chebyshev(f, ww, z, 2, 0.05) - 0.131) < 1e-12);
  assert_true(fabs(nas_chebyshev(f, ww, z, 2, 0.0) - 0.12) < 1e-12);
  /* with rho > 0 a weakly dominated point scores strictly worse */
  const double fb[2] = {0.5, 0.2}, wz[2] = {0.2, 0.8}, z0[2] = {0, 0};
  const double fa[2] = {0.4, 0.2};
  assert_true(nas_chebyshev(fa, wz, z0, 2, 0.05) < nas_chebyshev(fb, wz, z0, 2, 0.05));
  assert_true(nas_chebyshev(fa, wz, z0, 2, 0.0) == nas_chebyshev(fb, wz, z0, 2, 0.0));
}

static void test_acquisition(void **state) {
  (void)state;
  const double w[2] = {0.5, 0.5}, z[2] = {0, 0};
  /* three points, two objectives: point 1 is worse in mean than point 0 but uncertain */
  const double mean[6] = {0.4, 0.4, 0.7, 0.7, 0.9, 0.9};
  const double var[6] = {0, 0, 0.04, 0.04, 0, 0};
  double sc[3];
  nas_err e = {0};
  nas_rng r;
  nas_rng_seed(&r, 9);
  nas_acq a = {NAS_ACQ_UCB, 2, w, z, 0.0, 4.0, 0, 0};
  assert_int_equal(nas_acq_score(&a, mean, var, 3, &r, sc, &e), NAS_OK);
  assert_true(fabs(sc[0] - -0.2) < 1e-12);              /* -max(0.5*0.4, 0.5*0.4) */
  assert_true(fabs(sc[1] - -0.5 * (0.7 - 2 * 0.2)) < 1e-12); /* lcb = 0.7 - 2*0.2 */
  assert_true(sc[1] > sc[0] && sc[0] > sc[2]);
  /* EI with zero variance is exactly max(best - s, 0) */
  a.kind = NAS_ACQ_EI, a.best = 0.3, a.samples = 4000;
  assert_int_equal(nas_acq_score(&a, mean, var, 3, &r, sc, &e), NAS_OK);
  assert_true(fabs(sc[0] - 0.1) < 1e-12);
  assert_true(sc[2] == 0);
  assert_true(sc[1] > 0); /* a mean above best still has a chance to improve */
  /* one objective, w = 1: EI of N(mu, s^2) below best has the closed form
   * (best - mu) Phi(u) + s phi(u), u = (best - mu) / s */
  const double w1[1] = {1}, z1[1] = {0}, m1[1] = {0.5}, v1[1] = {0.01};
  nas_acq a1 = {NAS_ACQ_EI, 1, w1, z1, 0.0, 0, 0.45, 200000};
  double s1;
  assert_int_equal(nas_acq_score(&a1, m1, v1, 1, &r, &s1, &e), NAS_OK);
  const double sqrt_2pi = 2.5066282746310002;
  double u = -0.5, want = -0.05 * 0.5 * erfc(-u / sqrt(2)) + 0.1 * exp(-u * u / 2) / sqrt_2pi;
  assert_true(fabs(s1 - want) < 1e-3);
  /* deterministic with the same RNG state */
  nas_rng ra, rb;
  nas_rng_seed(&ra, 2);
  nas_rng_seed(&rb, 2);
  double sa[3], sb[3];
  a.samples = 16;
  assert_int_equal(nas_acq_score(&a, mean, var, 3, &ra, sa, &e), NAS_OK);
  assert_int_equal(nas_acq_score(&a, mean, var, 3, &rb, sb, &e), NAS_OK);
  assert_memory_equal(sa, sb, sizeof sa);
  /* bad configurations */
  a.samples = 0;
  assert_int_equal(nas_acq_score(&a, mean, var, 3, &r, sc, &e), NAS_EINVAL);
  a.k = 9;
  assert_int_equal(nas_acq_score(&a, mean, var, 3, &r, sc, &e), NAS_EINVAL);
}

static void test_hypervolume(void **state) {
  (void)state;
  nas_err e = {0};
  double hv;
  /* 2-D: (1,3) (2,2) (3,1), ref (4,4): staircase 3 + 2 + 1 = 6 */
  const double p2[] = {1, 3, 2, 2, 3, 1, 2.5, 2.5, 5, 0, 1, 3};
  const double r2[2] = {4, 4};
  assert_int_equal(nas_hypervolume(p2, 3, 2, r2, &hv, &e), NAS_OK);
  assert_true(fabs(hv - 6) < 1e-12);
  /* a dominated point (2.5,2.5), a point beyond ref (5,0) and a duplicate change nothing */
  assert_int_equal(nas_hypervolume(p2, 6, 2, r2, &hv, &e), NAS_OK);
  assert_true(fabs(hv - 6) < 1e-12);
  /* 1-D */
  const double p1[] = {3, 1, 7}, r1[1] = {5};
  assert_int_equal(nas_hypervolume(p1, 3, 1, r1, &hv, &e), NAS_OK);
  assert_true(fabs(hv - 4) < 1e-12);
  /* 3-D, ref (1,1,1): a = (0.5,0.5,0.5) alone is 0.125; with b = (0.2,0.8,0.3) and
   * c = (0.7,0.1,0.6): |A|=0.125, |B|=0.8*0.2*0.7=0.112, |C|=0.3*0.9*0.4=0.108;
   * A^B=(0.5,0.8,0.5) -> 0.5*0.2*0.5=0.05, A^C=(0.7,0.5,0.6) -> 0.3*0.5*0.4=0.06,
   * B^C=(0.7,0.8,0.6) -> 0.3*0.2*0.4=0.024, A^B^C = B^C = 0.024:
   * union = 0.125+0.112+0.108-0.05-0.06-0.024+0.024 = 0.235 */
  const double p3[] = {0.5, 0.5, 0.5, 0.2, 0.8, 0.3, 0.7, 0.1, 0.6, 0.9, 0.9, 0.9};
  const double r3[3] = {1, 1, 1};
  assert_int_equal(nas_hypervolume(p3, 1, 3, r3, &hv, &e), NAS_OK);
  assert_true(fabs(hv - 0.125) < 1e-12);
  assert_int_equal(nas_hypervolume(p3, 3, 3, r3, &hv, &e), NAS_OK);
  assert_true(fabs(hv - 0.235) < 1e-12);
  assert_int_equal(nas_hypervolume(p3, 4, 3, r3, &hv, &e), NAS_OK); /* + dominated point */
  assert_true(fabs(hv - 0.235) < 1e-12);
  /* points with one z: the 2-D volume times the depth */
  const double p3f[] = {1, 3, 0, 2, 2, 0, 3, 1, 0};
  const double r3f[3] = {4, 4, 0.5};
  assert_int_equal(nas_hypervolume(p3f, 3, 3, r3f, &hv, &e), NAS_OK);
  assert_true(fabs(hv - 3) < 1e-12);
  /* random 3-D sets against a Monte Carlo estimate */
  nas_rng r;
  nas_rng_seed(&r, 4);
  double pts[20 * 3];
  for (int i = 0; i < 60; i++) pts[i] = 0.3 + 0.7 * frand(&r);
  assert_int_equal(nas_hypervolume(pts, 20, 3, r3, &hv, &e), NAS_OK);
  int in = 0;
  const int T = 200000;
  for (int t = 0; t < T; t++) {
    double q[3] = {frand(&r), frand(&r), frand(&r)};
    for (int j = 0; j < 20; j++)
      if (pts[j * 3] <= q[0] && pts[j * 3 + 1] <= q[1] && pts[j * 3 + 2] <= q[2]) {
        in++;
        break;
      }
  }
  assert_true(fabs(hv - (double)in / T) < 0.005);
  assert_int_equal(nas_hypervolume(p3, 3, 4, r3, &hv, &e), NAS_EINVAL);
  assert_int_equal(nas_hypervolume(p3, 0, 3, r3, &hv, &e), NAS_OK);
  assert_true(hv == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_three_points), cmocka_unit_test(test_lml_gradient),
      cmocka_unit_test(test_fit),          cmocka_unit_test(test_errors),
      cmocka_unit_test(test_simplex_chebyshev), cmocka_unit_test(test_acquisition),
      cmocka_unit_test(test_hypervolume),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
