/* train/ops_svdo.c: the ops of Sparse Variational Dropout (Molchanov et al. 2017) with the
 * local reparameterisation trick (LRT). A layer y = x (*) W with W_ij ~ N(theta_ij,
 * sigma2_ij) is trained as
 *   mean = x (*) SVDO_W(theta, ls2),  var = SQUARE(x) (*) EXP(ls2),  y = LRT(mean, var)
 * plus SVDO_KL(theta, ls2, scale) added to the loss, where ls2 = log sigma2 and
 * log alpha = ls2 - log(theta^2 + 1e-8) (clipped to [-10, 10] as the authors' code does).
 *   SQUARE    x -> x^2.
 *   EXP       x -> exp(x) (sigma2 from log sigma2).
 *   LRT       mean, var (equal shapes) -> training: mean + sqrt(var + 1e-8) * eps, eps ~ N(0,1)
 *             drawn from the graph RNG (saved for the backward pass); eval: mean.
 *   SVDO_W    theta, ls2 -> training: theta; eval: theta * [log alpha < t] (t = p.rate, 3 when
 *             0): the weights with log alpha >= t are pruned at test time. Gradient to theta
 *             only (the mask is piecewise constant).
 *   SVDO_KL   theta, ls2, scale:[1] (STATE, optional) -> [1]: training: scale * sum_ij
 *             KL(q(w_ij) || log-uniform prior) with the approximation
 *             KL ~ k1 - k1 sigmoid(k2 + k3 log alpha) + 0.5 log(1 + 1/alpha),
 *             k1 = 0.63576, k2 = 1.87320, k3 = 1.48695; eval: 0. */
#include <math.h>
#include <string.h>

#include "train/ops_impl.h"

#define SVDO_K1 0.63576
#define SVDO_K2 1.87320
#define SVDO_K3 1.48695
#define LA_MIN -10.0
#define LA_MAX 10.0
#define VAR_EPS 1e-8f

static size_t numel_now(const nas_graph *g, const nas_node *nd) {
  return nd->batched ? (size_t)g->batch * nas_node_sample_numel(nd) : nas_shape_numel(&nd->shape);
}

static int same_shape(const nas_node *a, const nas_node *b) {
  if (a->shape.nd != b->shape.nd || a->batched != b->batched) return 0;
  for (int i = 0; i < a->shape.nd; i++)
    if (a->shape.d[i] != b->shape.d[i]) return 0;
  return 1;
}

static int need_same(const nas_node *nd, const nas_node *a, const nas_node *b, nas_err *e) {
  if (same_shape(a, b)) return NAS_OK;
  char sa[64], sb[64];
  return nas_errf(e, NAS_EINVAL, "%s: inputs '%s' %s and '%s' %s differ in shape",
                  nas_op_name(nd->op), a->name, nas_shape_str(&a->shape, sa, sizeof sa), b->name,
                  nas_shape_str(&b->shape, sb, sizeof sb));
}

static void like_input(nas_graph *g, nas_node *nd) {
  const nas_node *x = op_in(g, nd, 0);
  nd->shape = x->shape;
  op_like_batch(nd, x);
}

/* log alpha of one weight, unclipped. */
static double log_alpha(float theta, float ls2) {
  return (double)ls2 - log((double)theta * theta + 1e-8);
}

static float threshold(const nas_node *nd) { return nd->p.rate != 0 ? nd->p.rate : 3.0f; }

/* ---- square ------------------------------------------------------------------------------ */

int square_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  (void)e;
  like_input(g, nd);
  return NAS_OK;
}

void square_forward(nas_graph *g, nas_node *nd) {
  const float *x = op_in(g, nd, 0)->val;
  float *y = nd->val;
  size_t n = numel_now(g, nd);
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = x[i] * x[i];
}

void square_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  size_t n = numel_now(g, nd);
  const float *dy = nd->grad, *xv = x->val;
  float *dx = x->grad;
  if (op_grad_fresh(g, x))
    for (size_t i = 0; i < n; i++) dx[i] = 2.0f * xv[i] * dy[i];
  else
    for (size_t i = 0; i < n; i++) dx[i] += 2.0f * xv[i] * dy[i];
}

/* ---- exp --------------------------------------------------------------------------------- */

int exp_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  (void)e;
  like_input(g, nd);
  return NAS_OK;
}

void exp_forward(nas_graph *g, nas_node *nd) {
  const float *x = op_in(g, nd, 0)->val;
  float *y = nd->val;
  size_t n = numel_now(g, nd);
  for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void exp_backward(nas_graph *g, nas_node *nd) {
  nas_node *x = op_in(g, nd, 0);
  if (!x->grad) return;
  size_t n = numel_now(g, nd);
  const float *dy = nd->grad, *y = nd->val;
  float *dx = x->grad;
  if (op_grad_fresh(g, x))
    for (size_t i = 0; i < n; i++) dx[i] = y[i] * dy[i];
  else
    for (size_t i = 0; i < n; i++) dx[i] += y[i] * dy[i];
}

/* ---- lrt --------------------------------------------------------------------------------- */

int lrt_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (need_same(nd, op_in(g, nd, 0), op_in(g, nd, 1), e)) return e->code;
  like_input(g, nd);
  nd->saved_bytes = nas_shape_numel(&nd->shape) * sizeof(float); /* eps */
  return NAS_OK;
}

void lrt_forward(nas_graph *g, nas_node *nd) {
  const float *mu = op_in(g, nd, 0)->val, *var = op_in(g, nd, 1)->val;
  float *y = nd->val, *eps = nd->saved;
  size_t n = numel_now(g, nd);
  if (!g->training) {
    memcpy(y, mu, n * sizeof *y);
    return;
  }
  for (size_t i = 0; i < n; i++) eps[i] = nas_rng_normal(&g->rng);
  for (size_t i = 0; i < n; i++) {
    float v = var[i] > 0 ? var[i] : 0.0f;
    y[i] = mu[i] + sqrtf(v + VAR_EPS) * eps[i];
  }
}

void lrt_backward(nas_graph *g, nas_node *nd) {
  nas_node *mu = op_in(g, nd, 0), *var = op_in(g, nd, 1);
  size_t n = numel_now(g, nd);
  const float *dy = nd->grad, *eps = nd->saved;
  if (mu->grad) {
    float *d = mu->grad;
    if (op_grad_fresh(g, mu)) memcpy(d, dy, n * sizeof *d);
    else
      for (size_t i = 0; i < n; i++) d[i] += dy[i];
  }
  if (var->grad) {
    float *d = op_grad_acc(g, var);
    if (!g->training) return;
    for (size_t i = 0; i < n; i++) {
      float v = var->val[i];
      if (v < 0) continue; /* clamped: no gradient */
      d[i] += dy[i] * eps[i] / (2.0f * sqrtf(v + VAR_EPS));
    }
  }
}

/* ---- svdo_w ------------------------------------------------------------------------------ */

int svdo_w_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (need_same(nd, op_in(g, nd, 0), op_in(g, nd, 1), e)) return e->code;
  like_input(g, nd);
  return NAS_OK;
}

void svdo_w_forward(nas_graph *g, nas_node *nd) {
  const float *th = op_in(g, nd, 0)->val, *ls2 = op_in(g, nd, 1)->val;
  float *y = nd->val, t = threshold(nd);
  size_t n = numel_now(g, nd);
  if (g->training) {
    memcpy(y, th, n * sizeof *y);
    return;
  }
  for (size_t i = 0; i < n; i++) y[i] = log_alpha(th[i], ls2[i]) < t ? th[i] : 0.0f;
}

void svdo_w_backward(nas_graph *g, nas_node *nd) {
  nas_node *th = op_in(g, nd, 0), *ls2 = op_in(g, nd, 1);
  size_t n = numel_now(g, nd);
  const float *dy = nd->grad;
  float t = threshold(nd);
  if (ls2->grad) op_grad_acc(g, ls2); /* piecewise constant in ls2: zero */
  if (!th->grad) return;
  int fresh = op_grad_fresh(g, th);
  for (size_t i = 0; i < n; i++) {
    float v = g->training || log_alpha(th->val[i], ls2->val[i]) < t ? dy[i] : 0.0f;
    th->grad[i] = fresh ? v : th->grad[i] + v;
  }
}

/* ---- svdo_kl ----------------------------------------------------------------------------- */

int svdo_kl_infer(nas_graph *g, nas_node *nd, nas_err *e) {
  if (need_same(nd, op_in(g, nd, 0), op_in(g, nd, 1), e)) return e->code;
  if (op_in(g, nd, 0)->batched) return nas_errf(e, NAS_EINVAL, "svdo_kl: weights must not be batched");
  if (nd->n_in > 2 && nas_shape_numel(&op_in(g, nd, 2)->shape) != 1)
    return nas_errf(e, NAS_EINVAL, "svdo_kl: the scale must have one element");
  nd->shape.nd = 1;
  nd->shape.d[0] = 1;
  nd->batched = 0;
  return NAS_OK;
}

static float kl_scale(nas_graph *g, const nas_node *nd) {
  return nd->n_in > 2 ? op_in(g, nd, 2)->val[0] : 1.0f;
}

void svdo_kl_forward(nas_graph *g, nas_node *nd) {
  if (!g->training) {
    nd->val[0] = 0;
    return;
  }
  const nas_node *th = op_in(g, nd, 0), *ls2 = op_in(g, nd, 1);
  size_t n = nas_shape_numel(&th->shape);
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    double la = log_alpha(th->val[i], ls2->val[i]);
    la = la < LA_MIN ? LA_MIN : la > LA_MAX ? LA_MAX : la;
    s += SVDO_K1 - SVDO_K1 / (1.0 + exp(-(SVDO_K2 + SVDO_K3 * la))) + 0.5 * log1p(exp(-la));
  }
  nd->val[0] = (float)(s * kl_scale(g, nd));
}

void svdo_kl_backward(nas_graph *g, nas_node *nd) {
  nas_node *th = op_in(g, nd, 0), *ls2 = op_in(g, nd, 1);
  if (nd->n_in > 2 && op_in(g, nd, 2)->grad) op_grad_acc(g, op_in(g, nd, 2)); /* not learned */
  float *dth = th->grad ? op_grad_acc(g, th) : NULL, *dls = ls2->grad ? op_grad_acc(g, ls2) : NULL;
  if (!g->training || (!dth && !dls)) return;
  size_t n = nas_shape_numel(&th->shape);
  double c = (double)nd->grad[0] * kl_scale(g, nd);
  for (size_t i = 0; i < n; i++) {
    double t = th->val[i], la = log_alpha(th->val[i], ls2->val[i]);
    if (la <= LA_MIN || la >= LA_MAX) continue; /* clipped: no gradient */
    double sg = 1.0 / (1.0 + exp(-(SVDO_K2 + SVDO_K3 * la)));
    /* d/dla [-k1 sigmoid(k2 + k3 la) + 0.5 log(1 + e^-la)] */
    double dla = -SVDO_K1 * SVDO_K3 * sg * (1.0 - sg) - 0.5 / (1.0 + exp(la));
    if (dls) dls[i] += (float)(c * dla);
    if (dth) dth[i] += (float)(c * dla * (-2.0 * t / (t * t + 1e-8)));
  }
}
