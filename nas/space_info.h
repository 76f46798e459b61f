/* nas/space_info.h: facts about search spaces for `nas spaces`: how many distinct
 * architectures a space holds and its one-line description.
 * Library code: never prints. */
#ifndef NAS_NAS_SPACE_INFO_H
#define NAS_NAS_SPACE_INFO_H

#include "core/error.h"
#include "search_spaces/space.h"

/* The number of distinct decision assignments of s once decisions inside skipped optional
 * entries are ignored (they do not change the architecture): the number of architectures
 * the space can produce (two assignments giving the same arch JSON, e.g. through equal
 * values in a choice list, are counted twice). Computed exactly by enumerating the optional
 * decisions (*exact = 1) when there are at most 24 of them; otherwise *count is the product
 * of all cardinalities (an upper bound, *exact = 0). */
int nas_space_distinct(const nas_space *s, double *count, int *exact, nas_err *e);

/* The "description" of a space file or built-in name (spec as nas_space_load), "" when it
 * has none; *out malloc'd. */
int nas_space_description(const char *spec, char **out, nas_err *e);

#endif
