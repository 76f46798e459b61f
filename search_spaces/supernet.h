/* search_spaces/supernet.h: the supernet description of a search space, for DNAS
 * (nas/dnas.h). The space JSON is read a second time, in the same order as space.c reads it,
 * and unrolled into *slots*: one per layer the largest architecture of the space can hold
 * (a repeated entry gives max(repeat) copies, a block one slot per layer and copy). Each
 * slot records which decisions set its fields and which decide whether it is present
 * (an optional entry, or a repeat count that must exceed the copy index). The decision list
 * is checked against nas_space's (same paths, same cardinalities), so a decision index means
 * the same thing here, in nas_space_materialize and in the store.
 *
 * nas_sn_resolve() evaluates the description for one decision vector: per slot whether it is
 * present, its fields with net.c's defaults, and its input and output shapes (the output as
 * if the slot were present, so that masks of absent slots are defined). Its shapes for the
 * present slots are those of nas_net_build on the materialised arch (tests/test_dnas.c).
 *
 * Choices are supported on "op", "out", "k", "expand", "rate" (dropout), "algo" and "flex"
 * (a conv's convolution algorithm: im2row, or Winograd F2/F4, static or flex; the float
 * supernet computes every algorithm alike, the costs tell them apart) fields and on
 * repeat/optional; a choice on any other field is refused at load with its path.
 * Ownership: nas_supernet owns its space, template and arrays; free with nas_supernet_free.
 * Pointers into the template (vals, layer) stay valid until then. */
#ifndef NAS_SEARCH_SPACES_SUPERNET_H
#define NAS_SEARCH_SPACES_SUPERNET_H

#include "core/error.h"
#include "search_spaces/space.h"

struct cJSON;

enum nas_sn_dec_kind { NAS_SN_CHOICE = 0, NAS_SN_REPEAT = 1, NAS_SN_OPTIONAL = 2 };

/* Layer ops a supernet slot may hold (a subset of the arch ops). */
enum nas_sn_op {
  NAS_SN_CONV, NAS_SN_DWCONV, NAS_SN_PWCONV, NAS_SN_DSCONV, NAS_SN_MBCONV, NAS_SN_MAXPOOL,
  NAS_SN_AVGPOOL, NAS_SN_GAP, NAS_SN_FLATTEN, NAS_SN_FC, NAS_SN_DROPOUT, NAS_SN_OP_COUNT
};
const char *nas_sn_op_name(int op); /* "conv", ...; "?" out of range */

typedef struct nas_sn_dec {
  char path[128];            /* as nas_space_decision_path: "layers[2].out" */
  int kind;                  /* enum nas_sn_dec_kind */
  int card;                  /* number of values */
  char field[16];            /* "out", "k", "op", ... for CHOICE; "repeat"; "optional" */
  const struct cJSON *vals;  /* the choice list (CHOICE, REPEAT); NULL for OPTIONAL */
} nas_sn_dec;

#define NAS_SN_MAX_COND 6
#define NAS_SN_MAX_FIELDS 12

typedef struct nas_sn_cond {
  int dec;                   /* an OPTIONAL decision (present iff d == 0) or a REPEAT one */
  int copy;                  /* REPEAT: present iff the chosen count > copy */
} nas_sn_cond;

typedef struct nas_sn_slot {
  char path[128];            /* template path of the layer, e.g. "layers[2]" */
  int copy;                  /* copy index of the innermost repeat (0 first) */
  int stride1;               /* 1 for a later copy of a repeat: stride forced to 1 */
  int n_cond;                /* presence conditions (all must hold) */
  nas_sn_cond cond[NAS_SN_MAX_COND];
  const struct cJSON *layer; /* template layer object */
  int n_fields;              /* fields set by a decision */
  struct {
    char name[16];           /* field name */
    int dec;                 /* its decision */
  } fields[NAS_SN_MAX_FIELDS];
} nas_sn_slot;

typedef struct nas_supernet {
  nas_space *space;          /* the space (owned) */
  struct cJSON *root;        /* its template (owned) */
  int in_h, in_w, in_c;      /* input shape */
  int classes;               /* classes */
  int n_dec;                 /* decisions (= nas_space_n_decisions) */
  nas_sn_dec *dec;           /* [n_dec] */
  int n_slots;               /* slots */
  nas_sn_slot *slots;        /* [n_slots] */
} nas_supernet;

/* A conv slot's algorithm ("algo" field). */
enum nas_sn_algo { NAS_SN_IM2ROW = 0, NAS_SN_WINO2, NAS_SN_WINO4 };

/* One slot resolved for a decision vector. Fields follow net.c's defaults. */
typedef struct nas_sn_layer {
  int present;               /* 1 when the slot is part of the architecture */
  int op;                    /* enum nas_sn_op */
  int out;                   /* output channels / units (conv, pwconv, dsconv, mbconv, fc) */
  int kh, kw, sh, sw;        /* kernel and stride (1 when not applicable) */
  int same;                  /* 1: same padding */
  int act;                   /* enum nas_act */
  int bn, bias;              /* batch norm, bias */
  int expand;                /* mbconv expansion */
  int residual;              /* mbconv: residual add resolved */
  double rate;               /* dropout rate */
  int algo, flex;            /* conv: enum nas_sn_algo; 1 = flex Winograd transforms */
  int in_h, in_w, in_c, in_flat;     /* input shape (flat: [C] only) */
  int out_h, out_w, out_c, out_flat; /* output shape as if present */
  int hidden;                /* mbconv hidden channels (in_c * expand), else out_c */
} nas_sn_layer;

/* Loads the space (nas_space_load rules: a file or a built-in name) and derives its supernet
 * description. Errors name the space and path. */
int nas_supernet_load(const char *spec, nas_supernet **out, nas_err *e);
void nas_supernet_free(nas_supernet *sn); /* NULL-safe */

/* Resolves every slot for decision vector d (L: [n_slots]). Errors name the slot path. */
int nas_sn_resolve(const nas_supernet *sn, const int *d, nas_sn_layer *L, nas_err *e);
/* Whether slot s is present under d. */
int nas_sn_present(const nas_supernet *sn, int s, const int *d);
/* The decision that sets field `name` of slot s, or -1 when the field is fixed. */
int nas_sn_field_dec(const nas_supernet *sn, int s, const char *name);

#endif
