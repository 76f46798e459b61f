#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int nas_errf(nas_err *e, int code, const char *fmt, ...) {
  if (!e) return code;
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return code;
}

int nas_err_prefix(nas_err *e, const char *fmt, ...) {
  if (!e) return NAS_OK;
  char pre[256], old[sizeof e->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof old);
  snprintf(e->msg, sizeof e->msg, "%s: %s", pre, old);
  return e->code;
}

void nas_err_clear(nas_err *e) {
  if (!e) return;
  e->code = NAS_OK;
  e->msg[0] = '\0';
}
