/* core/fileio.c: generated files in an output directory (core/fileio.h). */
#include "core/fileio.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int nas_file_create(const char *dir, const char *name, FILE **f, nas_err *e) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  *f = fopen(path, "w");
  return *f ? NAS_OK : nas_errf(e, NAS_EIO, "%s: cannot open for writing", path);
}

int nas_file_finish(const char *dir, const char *name, FILE *f, nas_err *e) {
  int bad = ferror(f) != 0;
  bad |= fclose(f) != 0;
  return bad ? nas_errf(e, NAS_EIO, "%s/%s: write failed", dir, name) : NAS_OK;
}

int nas_file_write_text(const char *dir, const char *name, const char *text, nas_err *e) {
  FILE *f;
  int rc = nas_file_create(dir, name, &f, e);
  if (rc != NAS_OK) return rc;
  size_t n = strlen(text);
  if (fwrite(text, 1, n, f) != n) {
    fclose(f);
    return nas_errf(e, NAS_EIO, "%s/%s: write failed", dir, name);
  }
  return nas_file_finish(dir, name, f, e);
}

int nas_read_file(const char *path, char **text, long *len, nas_err *e) {
  *text = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return nas_errf(e, NAS_EIO, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      char *p = nas_realloc(buf, cap);
      if (!p) {
        free(buf);
        fclose(f);
        return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
      }
      buf = p;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return nas_errf(e, NAS_EIO, "%s: read error", path);
  }
  buf[n] = '\0';
  *text = buf;
  if (len) *len = (long)n;
  return NAS_OK;
}
