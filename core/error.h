/* core/error.h: status codes and the error struct every library function fills.
 * Library code never prints, exits or aborts on anything a user can cause: it returns a
 * status and writes one line naming the cause into a nas_err. Only main() exits. */
#ifndef NAS_CORE_ERROR_H
#define NAS_CORE_ERROR_H

enum nas_status {
  NAS_OK = 0,
  NAS_EINVAL = 1,   /* bad input from the user: file contents, JSON fields, shapes */
  NAS_EIO = 2,      /* a file could not be opened, read or written */
  NAS_ENOMEM = 3,   /* an allocation failed */
  NAS_EFORMAT = 4,  /* a file is malformed, truncated or of the wrong version */
  NAS_EUSAGE = 5,   /* wrong command-line usage (the CLI maps it to exit code 2) */
  NAS_ENUMERIC = 6  /* training diverged (NaN or Inf) */
};

typedef struct nas_err {
  int code;       /* one of enum nas_status; NAS_OK when nothing went wrong */
  char msg[512];  /* one line, no trailing newline, naming file/field/layer and what is wrong */
} nas_err;

/* Sets e->code and e->msg (printf-style); returns code so callers can `return nas_errf(...)`.
 * NULL-safe: with e == NULL only the code is returned. */
int nas_errf(nas_err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "prefix: " to an existing message (for adding the file or layer context). */
int nas_err_prefix(nas_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void nas_err_clear(nas_err *e);

/* Warnings (something skipped or degraded, not an error): library code hands each one, one
 * line without a trailing newline, to a callback its caller chose, never to a FILE; the CLI
 * passes a printer. A NULL callback drops them. */
typedef void (*nas_warn_fn)(void *user, const char *line);

#endif
