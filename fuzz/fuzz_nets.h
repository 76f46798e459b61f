/* fuzz/fuzz_nets.h: tiny networks for the seed inputs of the TFLite and checkpoint harnesses
 * (header-only): arch JSON covering every int8 operator the reader accepts (conv, depthwise,
 * pointwise, max/avg pooling, global average pooling + reshape, residual add, fully connected,
 * softmax), built, calibrated on normal noise and lowered. */
#ifndef NAS_FUZZ_FUZZ_NETS_H
#define NAS_FUZZ_FUZZ_NETS_H

#include "fuzz/fuzz_util.h"

#include "core/rng.h"
#include "datasets/dataset.h"
#include "deploy/lower.h"
#include "train/net.h"
#include "train/quant.h"

static const struct {
  const char *name;
  const char *arch;
  nas_lower_cfg lower;
} FUZZ_NETS[] = {
    {"conv-pool",
     "{\"input\":[6,6,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":4,\"k\":3},"
     "{\"op\":\"maxpool\",\"k\":2,\"stride\":2},{\"op\":\"flatten\"},{\"op\":\"fc\",\"out\":3}]}",
     {.softmax = 1}},
    {"ds-gap",
     "{\"input\":[5,4,1],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":3,\"k\":[3,2],"
     "\"stride\":[2,1],\"act\":\"relu6\"},{\"op\":\"dsconv\",\"out\":4,\"k\":3},"
     "{\"op\":\"avgpool\",\"k\":2,\"stride\":1},{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
     {.fc_per_channel = 1}},
    {"mbconv-res",
     "{\"input\":[4,4,4],\"classes\":2,\"layers\":[{\"op\":\"mbconv\",\"out\":4,\"expand\":2,"
     "\"k\":3},{\"op\":\"dwconv\",\"k\":3,\"stride\":2},{\"op\":\"pwconv\",\"out\":3},"
     "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
     {.softmax = 0}},
};
#define FUZZ_N_NETS (int)(sizeof FUZZ_NETS / sizeof FUZZ_NETS[0])

/* Builds net i, calibrates it on 8 noise samples into *c and lowers it into *g8. */
static inline nas_net *fuzz_net_lowered(int i, nas_calib *c, nas_g8_graph *g8) {
  nas_err e = {0};
  nas_net *n = NULL;
  if (nas_net_build(FUZZ_NETS[i].arch, FUZZ_NETS[i].name, 8, 3, &n, &e) != NAS_OK)
    FUZZ_FAIL("seed net %s: %s", FUZZ_NETS[i].name, e.msg);
  nas_dataset d = {.n = 8, .h = n->in_h, .w = n->in_w, .c = n->in_c, .classes = n->classes};
  size_t per = (size_t)d.h * d.w * d.c;
  d.x = malloc(sizeof(float) * per * 8);
  d.y = calloc(8, sizeof(int));
  if (!d.x || !d.y) FUZZ_FAIL("out of memory");
  nas_rng r;
  nas_rng_seed(&r, 11);
  for (size_t k = 0; k < per * 8; k++) d.x[k] = nas_rng_normal(&r);
  nas_calib_cfg cc;
  nas_calib_cfg_default(&cc);
  memset(c, 0, sizeof *c);
  if (nas_calibrate(n, &d, &cc, c, &e) != NAS_OK || nas_lower(n, c, &FUZZ_NETS[i].lower, g8, &e))
    FUZZ_FAIL("seed net %s: %s", FUZZ_NETS[i].name, e.msg);
  free(d.x), free(d.y);
  return n;
}

#endif
