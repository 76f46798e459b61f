/* deploy/lower_shape.c: the int8 graph of a network's structure through nas_lower with a
 * synthetic calibration (see lower_shape.h). */
#include "deploy/lower_shape.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

int nas_lower_unsupported_layer(const nas_net *net) {
  (void)net; /* every arch layer lowers (lstm and gru too, deploy/lower_rnn.c) */
  return -1;
}

int nas_lower_structure(const nas_net *net, const nas_lower_cfg *cfg, nas_g8_graph *out,
                        nas_err *e) {
  memset(out, 0, sizeof *out);
  const int n = net->g->n;
  nas_calib c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.point = nas_calloc((size_t)n, 1);
  c.lo = nas_malloc(sizeof *c.lo * (size_t)n);
  c.hi = nas_malloc(sizeof *c.hi * (size_t)n);
  if (!c.point || !c.lo || !c.hi || nas_calib_alloc_sub(net->g, &c)) {
    nas_calib_free(&c);
    return nas_errf(e, NAS_ENOMEM, "lowering: out of memory");
  }
  nas_quant_points(net, c.point);
  for (int i = 0; i < n; i++) c.lo[i] = -1.0f, c.hi[i] = 1.0f;
  for (int k = 0; k < c.nsub; k++) c.sub_lo[k] = -1.0f, c.sub_hi[k] = 1.0f;
  int rc = nas_lower(net, &c, cfg, out, e);
  nas_calib_free(&c);
  return rc;
}
