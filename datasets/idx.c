/* datasets/idx.c: reader of IDX files (the MNIST container), gzip-compressed or raw.
 *
 * Layout, all integers big-endian: a 4-byte magic 0x00 0x00 TYPE NDIM, then NDIM 4-byte
 * sizes, then prod(sizes) data bytes in row-major order and nothing after them. Only TYPE
 * 0x08 (unsigned byte) with NDIM 1 (labels) or 3 (images) is accepted. zlib's gzread passes
 * raw files through unchanged, so compression is detected from the content, not the name.
 *
 * For 1-d (labels) files dims[1] and dims[2] are set to 1, so prod(dims) is always the data
 * size. Known limit: zlib ignores bytes after the end of a gzip member (as gzip(1) does),
 * so trailing data is detected inside the decompressed stream and in raw files only. */
#include "datasets/dataset.h"
#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_SIDE 4096          /* largest accepted rows or cols */
#define IDX_MAX_BYTES (1ull << 30) /* largest accepted data section: 1 GiB */
#define IDX_FIRST_BUF (1u << 20)   /* first size of the data buffer; doubled as data arrives */
#define IDX_MAX_READ (1u << 30)    /* largest single gzread request (it takes an unsigned) */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads until n bytes or end of input; *got = bytes read. Returns -1 on a zlib/I/O error. */
static int read_upto(gzFile f, unsigned char *buf, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t want = n - *got < IDX_MAX_READ ? n - *got : IDX_MAX_READ;
    int r = gzread(f, buf + *got, (unsigned)want);
    if (r < 0) return -1;
    if (r == 0) break;
    *got += (size_t)r;
  }
  return 0;
}

/* Turns zlib's error state after a failed read into a status and message. */
static int read_error(gzFile f, const char *path, nas_err *e) {
  int zerr = Z_OK;
  const char *zmsg = gzerror(f, &zerr);
  if (zerr == Z_ERRNO) return nas_errf(e, NAS_EIO, "%s: read error: %s", path, strerror(errno));
  if (zerr == Z_MEM_ERROR) return nas_errf(e, NAS_ENOMEM, "%s: out of memory in zlib", path);
  const char *sep = zmsg ? strstr(zmsg, ": ") : NULL;
  if (zmsg && zmsg[0] == '<' && sep) zmsg = sep + 2; /* drop zlib's "<fd:N>: " (gzdopen) */
  return nas_errf(e, NAS_EFORMAT, "%s: corrupt gzip stream: %s", path, zmsg ? zmsg : "?");
}

/* 1 when the input ended because a gzip stream was cut short. */
static int gzip_cut_short(gzFile f) {
  int zerr = Z_OK;
  gzerror(f, &zerr);
  return zerr == Z_BUF_ERROR;
}

static int check_magic(const unsigned char *m, const char *path, nas_err *e) {
  if (m[0] == 0 && m[1] == 0 && m[2] == 0x08 && (m[3] == 1 || m[3] == 3)) return NAS_OK;
  return nas_errf(e, NAS_EFORMAT,
                  "%s: bad magic 0x%08x (expected 0x00000803 for images or 0x00000801 for labels)",
                  path, (unsigned)be32(m));
}

/* Validates one size; what names it in the message ("count", "rows", "cols"). */
static int check_dim(uint32_t v, uint32_t max, const char *what, const char *path, nas_err *e) {
  if (v >= 1 && v <= max) return NAS_OK;
  return nas_errf(e, NAS_EFORMAT, "%s: bad %s %u (must be 1..%u)", path, what, (unsigned)v,
                  (unsigned)max);
}

/* Reads magic and sizes into out->ndim/dims; *total = data bytes that must follow. */
static int read_header(gzFile f, const char *path, nas_idx *out, size_t *total, nas_err *e) {
  static const char *const what[3] = {"count", "rows", "cols"};
  unsigned char h[16];
  size_t got = 0;
  if (read_upto(f, h, 4, &got) < 0) return read_error(f, path, e);
  if (got < 4)
    return nas_errf(e, NAS_EFORMAT, "%s: truncated: expected a 4-byte magic, got %zu bytes", path,
                    got);
  int rc = check_magic(h, path, e);
  if (rc) return rc;
  int nd = h[3];
  if (read_upto(f, h + 4, 4 * (size_t)nd, &got) < 0) return read_error(f, path, e);
  if (got < 4 * (size_t)nd)
    return nas_errf(e, NAS_EFORMAT, "%s: truncated: expected %d sizes in the header, got %zu bytes",
                    path, nd, got);
  uint64_t prod = 1;
  for (int i = 0; i < 3; i++) {
    uint32_t v = i < nd ? be32(h + 4 + 4 * i) : 1;
    rc = check_dim(v, i == 0 ? (uint32_t)INT_MAX : IDX_MAX_SIDE, what[i], path, e);
    if (rc) return rc;
    out->dims[i] = (int)v;
    prod *= v; /* at most 2^31 * 2^12 * 2^12: no overflow in 64 bits */
  }
  if (prod > IDX_MAX_BYTES)
    return nas_errf(e, NAS_EFORMAT, "%s: %llu data bytes exceed the limit of %llu", path,
                    (unsigned long long)prod, (unsigned long long)IDX_MAX_BYTES);
  out->ndim = nd;
  *total = (size_t)prod;
  return NAS_OK;
}

/* Grows *buf from *cap to min(2 * *cap, total). */
static int grow(unsigned char **buf, size_t *cap, size_t total, const char *path, nas_err *e) {
  size_t ncap = *cap > total / 2 ? total : 2 * *cap;
  unsigned char *nb = nas_realloc(*buf, ncap);
  if (!nb) return nas_errf(e, NAS_ENOMEM, "%s: out of memory for %zu bytes", path, ncap);
  *buf = nb;
  *cap = ncap;
  return NAS_OK;
}

/* After total data bytes: the input must end here. Reading one byte more also makes zlib
 * check the gzip trailer (CRC and length). */
static int check_end(gzFile f, const char *path, size_t total, nas_err *e) {
  unsigned char extra;
  int r = gzread(f, &extra, 1);
  if (r < 0) return read_error(f, path, e);
  if (r > 0)
    return nas_errf(e, NAS_EFORMAT, "%s: trailing data after the %zu data bytes", path, total);
  if (gzip_cut_short(f))
    return nas_errf(e, NAS_EFORMAT, "%s: truncated: gzip stream ends early (its trailer is cut)",
                    path);
  return NAS_OK;
}

/* Reads exactly total bytes into a new buffer *out, then checks the input ends there. The
 * buffer grows as data arrives, so a header that lies about the size costs at most about
 * twice the data the file really holds. */
static int read_data(gzFile f, const char *path, size_t total, unsigned char **out, nas_err *e) {
  size_t cap = total < IDX_FIRST_BUF ? total : IDX_FIRST_BUF, got = 0, n = 0;
  unsigned char *buf = nas_malloc(cap);
  if (!buf) return nas_errf(e, NAS_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
  int rc = NAS_OK;
  for (;;) {
    if (read_upto(f, buf + got, cap - got, &n) < 0) {
      rc = read_error(f, path, e);
      break;
    }
    got += n;
    if (got < cap || cap == total) break;
    if ((rc = grow(&buf, &cap, total, path, e)) != NAS_OK) break;
  }
  if (!rc && got < total)
    rc = nas_errf(e, NAS_EFORMAT, "%s: truncated: expected %zu bytes of data, got %zu%s", path,
                  total, got, gzip_cut_short(f) ? " (gzip stream ends early)" : "");
  if (!rc) rc = check_end(f, path, total, e);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  return NAS_OK;
}

/* Opens a regular file for gzread into *out. Non-blocking open plus the S_ISREG check mean
 * a FIFO or device path fails at once instead of blocking or streaming forever. */
static int open_regular(const char *path, gzFile *out, nas_err *e) {
  int fd = open(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return nas_errf(e, NAS_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return nas_errf(e, NAS_EIO, "%s: cannot open: not a regular file", path);
  }
  *out = gzdopen(fd, "rb");
  if (*out) return NAS_OK;
  close(fd);
  return nas_errf(e, NAS_ENOMEM, "%s: cannot open: out of memory", path);
}

int nas_idx_read(const char *path, nas_idx *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  if (!path) return nas_errf(e, NAS_EINVAL, "idx: no path given");
  gzFile f = NULL;
  int rc = open_regular(path, &f, e);
  if (rc) return rc;
  gzbuffer(f, 1u << 17);
  size_t total = 0;
  rc = read_header(f, path, out, &total, e);
  if (!rc) rc = read_data(f, path, total, &out->data, e);
  gzclose(f);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

void nas_idx_free(nas_idx *x) {
  if (!x) return;
  free(x->data);
  memset(x, 0, sizeof *x);
}
