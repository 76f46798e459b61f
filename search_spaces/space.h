/* search_spaces/space.h: search spaces (space JSON, README "Search spaces"): an arch template
 * whose field values may be {"choice":[...]}, whose layers (or {"block":[...]} groups) may
 * carry "repeat": N | {"choice":[...]} and "optional": true. Every choice, repeat choice and
 * optional flag is one *decision*; an architecture of the space is a decision vector d with
 * 0 <= d[i] < nas_space_card(s, i), in the order the template is read (depth first, per
 * layer entry: optional, repeat, then its fields or block in file order). Decisions inside a
 * skipped optional entry are kept in the vector (fixed length) but are inactive.
 * A repeated entry copies the same resolved layer(s) N times; "stride" applies to the first
 * copy only (later copies use stride 1), as in MobileNetV2's stages.
 * Ownership: nas_space is opaque and owns its template; free with nas_space_free. Arch text
 * returned by nas_space_materialize is malloc'd and owned by the caller. */
#ifndef NAS_SEARCH_SPACES_SPACE_H
#define NAS_SEARCH_SPACES_SPACE_H

#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"

typedef struct nas_space nas_space;

/* Parses and validates space JSON text; `source` names it in errors when it has no "name".
 * Errors name the space and the path: "space kws-dscnn: layers[2].out: choice list is empty". */
int nas_space_parse(const char *json, const char *source, nas_space **out, nas_err *e);
int nas_space_load_file(const char *path, nas_space **out, nas_err *e);
/* A built-in space by name (<data directory>/search_spaces/<name>.json, core/datadir.h); an
 * unknown name is an error listing the built-ins. */
int nas_space_load_builtin(const char *name, nas_space **out, nas_err *e);
/* A spec that contains '/' or ends in ".json" is a file, anything else a built-in name. */
int nas_space_load(const char *spec, nas_space **out, nas_err *e);
void nas_space_free(nas_space *s); /* NULL-safe */

/* Built-in names: i in [0, nas_space_builtin_count()). */
int nas_space_builtin_count(void);
const char *nas_space_builtin_name(int i);

const char *nas_space_name(const nas_space *s);
int nas_space_n_decisions(const nas_space *s);
int nas_space_card(const nas_space *s, int i);          /* number of values of decision i */
const char *nas_space_decision_path(const nas_space *s, int i); /* "layers[2].out", ".repeat" */
/* Product of all decision cardinalities (counts every vector, including those that differ
 * only in inactive decisions). */
double nas_space_size(const nas_space *s);

/* Uniform sample of every decision. d: [n_decisions]. */
void nas_space_sample(const nas_space *s, nas_rng *r, int *d);
/* child = parent with exactly one decision changed to a different value, chosen uniformly
 * among the active decisions with at least two values (any decision with two values when
 * none is active). *changed (may be NULL) gets the index changed, or -1 when the space has
 * no such decision (child is then a copy of parent). Returns NAS_OK or NAS_ENOMEM. */
int nas_space_mutate(const nas_space *s, nas_rng *r, const int *parent, int *child,
                     int *changed, nas_err *e);
/* active[i] = 1 when decision i affects the architecture of d (not inside a skipped entry). */
int nas_space_active(const nas_space *s, const int *d, unsigned char *active, nas_err *e);
/* Fixed-length encoding: x[i] = d[i] / (card - 1) in [0, 1] (0 when card == 1). */
void nas_space_encode(const nas_space *s, const int *d, double *x);
/* Inverse: d[i] = round(x[i] * (card - 1)), clamped to the valid range. */
void nas_space_decode(const nas_space *s, const double *x, int *d);

/* The arch JSON text of d (README "Architecture JSON"; top level input, classes, layers).
 * A decision out of range is an error naming it. */
int nas_space_materialize(const nas_space *s, const int *d, char **arch_json, nas_err *e);
/* Builds the smallest-index and largest-index architectures with nas_net_build, so a space
 * whose choices produce invalid architectures is refused before a search starts. */
int nas_space_check(const nas_space *s, nas_err *e);

/* 64-bit FNV-1a of the canonical form of arch JSON text (object keys sorted, no whitespace,
 * integral numbers without a fraction): the same architecture written differently hashes
 * the same. */
int nas_arch_hash(const char *arch_json, uint64_t *h, nas_err *e);
/* The same as 16 lower-case hex digits and a NUL. */
int nas_arch_hash_hex(const char *arch_json, char hex[17], nas_err *e);

#endif
