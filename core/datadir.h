/* core/datadir.h: where the engine finds the files it reads at run time (the MCU targets
 * latency/targets/<id>.json, the built-in spaces search_spaces/<name>.json). The data
 * directory has the layout of the source tree; the first of these that applies is used, alone:
 *   1. $NAS_DATA_DIR, when set and non-empty (an error if it is not a directory);
 *   2. the installed data, found from the running program: <bindir>/../share/nas (the
 *      relative path of the configured install layout), so an install under any
 *      `cmake --install --prefix` works;
 *   3. the installed data at the configured prefix (CMAKE_INSTALL_FULL_DATADIR/nas);
 *   4. the source tree the program was built from (NAS_SOURCE_DIR), for running from a
 *      build directory.
 * Never prints. Paths are written into caller buffers; nothing is allocated or cached. */
#ifndef NAS_CORE_DATADIR_H
#define NAS_CORE_DATADIR_H

#include <stddef.h>

#include "core/error.h"

/* Writes the data directory into buf (cap bytes). NAS_EIO when $NAS_DATA_DIR is set but is not
 * a directory, or when no candidate exists; NAS_EINVAL when the path does not fit. */
int nas_data_dir(char *buf, size_t cap, nas_err *e);

/* Writes <data directory>/<rel> into buf; rel is relative ("search_spaces/kws-dscnn.json").
 * The file itself is not checked: opening it reports a missing file with its full path. */
int nas_data_path(const char *rel, char *buf, size_t cap, nas_err *e);

#endif
