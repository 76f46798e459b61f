/* core/datadir.c: finding the data directory (core/datadir.h). */
#include "core/datadir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Set by CMakeLists.txt: NAS_INSTALL_DATADIR is absolute (the configured prefix's share/nas),
 * NAS_INSTALL_BIN_TO_DATA relative to the installed bindir ("../share/nas"), NAS_SOURCE_DIR the
 * source tree. */
#if !defined(NAS_INSTALL_DATADIR) || !defined(NAS_INSTALL_BIN_TO_DATA) || !defined(NAS_SOURCE_DIR)
#error "core/datadir.c needs NAS_INSTALL_DATADIR, NAS_INSTALL_BIN_TO_DATA and NAS_SOURCE_DIR"
#endif

static int is_dir(const char *p) {
  struct stat st;
  return p[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int put(char *buf, size_t cap, const char *what, const char *a, const char *b, nas_err *e) {
  int k = snprintf(buf, cap, "%s%s%s", a, b[0] ? "/" : "", b);
  if (k < 0 || (size_t)k >= cap)
    return nas_errf(e, NAS_EINVAL, "%s: the path %s%s%s is longer than %zu bytes", what, a,
                    b[0] ? "/" : "", b, cap - 1);
  return NAS_OK;
}

/* <directory of the running program>/<rel>, each leading "../" of rel taken off the directory
 * ("/opt/nas/bin/nas" and "../share/nas" give "/opt/nas/share/nas"). 0 when not known (no
 * /proc/self/exe, or rel empty). */
static int beside_program(const char *rel, char *buf, size_t cap) {
  char exe[4096];
  if (!rel[0]) return 0;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return 0;
  *slash = '\0';
  while (!strncmp(rel, "../", 3)) {
    if (!(slash = strrchr(exe, '/'))) return 0;
    *slash = '\0';
    rel += 3;
  }
  int k = snprintf(buf, cap, "%s/%s", exe, rel);
  return k > 0 && (size_t)k < cap;
}

int nas_data_dir(char *buf, size_t cap, nas_err *e) {
  const char *env = getenv("NAS_DATA_DIR");
  if (env && env[0]) {
    if (!is_dir(env)) return nas_errf(e, NAS_EIO, "NAS_DATA_DIR=%s: not a directory", env);
    return put(buf, cap, "NAS_DATA_DIR", env, "", e);
  }
  char p[4096];
  if (beside_program(NAS_INSTALL_BIN_TO_DATA, p, sizeof p) && is_dir(p))
    return put(buf, cap, "data directory", p, "", e);
  if (is_dir(NAS_INSTALL_DATADIR))
    return put(buf, cap, "data directory", NAS_INSTALL_DATADIR, "", e);
  if (is_dir(NAS_SOURCE_DIR)) return put(buf, cap, "data directory", NAS_SOURCE_DIR, "", e);
  return nas_errf(e, NAS_EIO,
                  "no data directory (targets, search spaces): set NAS_DATA_DIR (looked for "
                  "%s beside the program, in '%s' and in the source tree '%s')",
                  NAS_INSTALL_BIN_TO_DATA, NAS_INSTALL_DATADIR, NAS_SOURCE_DIR);
}

int nas_data_path(const char *rel, char *buf, size_t cap, nas_err *e) {
  char dir[4096];
  int rc = nas_data_dir(dir, sizeof dir, e);
  return rc ? rc : put(buf, cap, "data file", dir, rel, e);
}
