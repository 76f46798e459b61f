/* core/fileio.h: reading a whole file (nas_read_file), and writing generated files into an
 * output directory (exported models, firmware projects, linker scripts) with one error
 * convention: "DIR/NAME: cannot open for writing" or "DIR/NAME: write failed", as NAS_EIO.
 * Never prints.
 * Ownership: nas_file_create hands the caller a FILE that nas_file_finish closes. */
#ifndef NAS_CORE_FILEIO_H
#define NAS_CORE_FILEIO_H

#include <stdio.h>

#include "core/error.h"

/* Opens DIR/NAME for writing (truncating) into *f. */
int nas_file_create(const char *dir, const char *name, FILE **f, nas_err *e);

/* Closes f (opened by nas_file_create as DIR/NAME); an error while writing or closing is
 * NAS_EIO. f is closed in every case. */
int nas_file_finish(const char *dir, const char *name, FILE *f, nas_err *e);

/* Writes the string text as DIR/NAME. */
int nas_file_write_text(const char *dir, const char *name, const char *text, nas_err *e);

/* Reads a whole file into a NUL-terminated buffer (caller frees). Errors name the file. */
int nas_read_file(const char *path, char **text, long *len, nas_err *e);

#endif
