#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keeps a message one line: control characters (a newline in a user's JSON key or CSV field)
 * become '?'. */
static void one_line(char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 32 || *s == 127) *s = '?';
}

int nas_errf(nas_err *e, int code, const char *fmt, ...) {
  if (!e) return code;
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  one_line(e->msg);
  return code;
}

int nas_err_prefix(nas_err *e, const char *fmt, ...) {
  if (!e) return NAS_OK;
  char pre[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  size_t lp = strlen(pre) + 2, cap = sizeof e->msg - 1;
  if (lp > cap) lp = cap;
  size_t lm = strnlen(e->msg, cap);
  if (lp + lm > cap) lm = cap - lp; /* keep the start of the old message */
  memmove(e->msg + lp, e->msg, lm);
  memcpy(e->msg, pre, lp - 2 < cap ? lp - 2 : cap);
  if (lp >= 2) e->msg[lp - 2] = ':', e->msg[lp - 1] = ' ';
  e->msg[lp + lm] = '\0';
  one_line(e->msg);
  return e->code;
}

void nas_err_clear(nas_err *e) {
  if (!e) return;
  e->code = NAS_OK;
  e->msg[0] = '\0';
}
