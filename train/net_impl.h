/* train/net_impl.h: internal to train/net*.c: the builder state while one architecture is
 * lowered to a graph, and the field readers of the arch JSON (train/net_fields.c). */
#ifndef NAS_TRAIN_NET_IMPL_H
#define NAS_TRAIN_NET_IMPL_H
#include <cjson/cJSON.h>

#include "train/net.h"
#include "train/prune.h"

/* Builder state while lowering one architecture. */
typedef struct bld {
  nas_graph *g;      /* graph being built */
  nas_err *e;        /* error sink */
  const char *src;   /* source name for messages */
  int li;            /* current layer index */
  const char *op;    /* current layer op */
  int cur;           /* node id of the current activation */
  int h, w, c;       /* its per-sample shape; flat = 1 when [N,c] */
  int flat;          /* 1 after gap/flatten/fc */
  int seq;           /* 1 when the activation is a sequence [N,T,F] (h = T, w = 1, c = F) */
  long long params;  /* trainable parameters of the current layer */
  long long macs;    /* MACs of the current layer */
  cJSON *canon;      /* canonical layer object being filled */
  const nas_prune_cfg *pc; /* the arch's pruning configuration */
  int svdo;          /* 1: build the SVDO training form (train/prune.h) */
  int wprune;        /* 1: the current layer's conv/fc weights get a pruning mask */
  double lsp;        /* its unstructured target (nas_layer_info.sparsity) */
  int own_cm;        /* 1: the current layer's producing batch-norm gets a channel mask */
  int chan_cur;      /* channel mask of the current activation's channels (-1: none) */
  int kl_scale;      /* SVDO form: the "svdo.kl_scale" STATE (-1 until created) */
  int kl[256], n_kl; /* SVDO form: the KL nodes added to the loss */
  const int *plan_own;      /* [layers] nas_prune_channel_plan own */
  const double *plan_frac;  /* [layers] its fractions */
} bld;

/* Fails the current layer with "<src>: layer <i> (<op>): field '<field>': <message>" (no field
 * part when field is NULL); returns -1, as the layer builders do on failure. */
int net_lerr(bld *b, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Field readers: each reads key of layer object o (absent: def), checks its range or names,
 * records the value it settled on in the canonical layer and returns 0, or -1 via lerr. */
int net_get_int(bld *b, const cJSON *o, const char *key, int def, int lo, int hi, int *out);
int net_get_pair(bld *b, const cJSON *o, const char *key, int def, int lo, int hi, int out[2]);
int net_get_bool(bld *b, const cJSON *o, const char *key, int def, int *out);
int net_get_float(bld *b, const cJSON *o, const char *key, double def, double lo, double hi,
                  double *out);
int net_get_enum(bld *b, const cJSON *o, const char *key, const char *const *names, int def,
                 int *out);

#endif
