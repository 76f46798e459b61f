/* core/json.c: cJSON hooks onto core/alloc.h and the failure mark (core/json.h). */
#include "core/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"

static _Thread_local unsigned long g_failed; /* cJSON allocations that failed on this thread */

static void *json_malloc(size_t n) {
  void *p = nas_malloc(n);
  if (!p) g_failed++;
  return p;
}

static void install(void) {
  cJSON_Hooks h = {json_malloc, free};
  cJSON_InitHooks(&h);
}

void nas_json_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, install);
}

unsigned long nas_json_mark(void) {
  nas_json_init();
  return g_failed;
}

int nas_json_failed(unsigned long mark) { return g_failed != mark; }

int nas_json_parse(const char *text, cJSON **out, int *line) {
  unsigned long m = nas_json_mark();
  if (line) *line = 0;
  *out = text ? cJSON_Parse(text) : NULL;
  if (*out) return NAS_OK;
  if (nas_json_failed(m)) return NAS_ENOMEM;
  if (line) {
    const char *at = text ? cJSON_GetErrorPtr() : NULL;
    int l = 1;
    for (const char *p = text; at && p < at && *p; p++) l += *p == '\n';
    *line = l;
  }
  return NAS_EINVAL;
}

int nas_json_add(cJSON *obj, const char *key, cJSON *item) {
  if (obj && item && cJSON_AddItemToObject(obj, key, item)) return 0;
  cJSON_Delete(item);
  return -1;
}

int nas_json_push(cJSON *arr, cJSON *item) {
  if (arr && item && cJSON_AddItemToArray(arr, item)) return 0;
  cJSON_Delete(item);
  return -1;
}

int nas_json_write_file(const char *path, const cJSON *root, nas_err *e) {
  nas_json_init();
  char *text = cJSON_Print(root);
  if (!text) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
  FILE *f = fopen(path, "w");
  int rc = NAS_OK;
  if (!f) {
    rc = nas_errf(e, NAS_EIO, "%s: cannot open for writing", path);
  } else {
    if (fputs(text, f) < 0 || fputc('\n', f) < 0) rc = nas_errf(e, NAS_EIO, "%s: write failed", path);
    if (fclose(f) && !rc) rc = nas_errf(e, NAS_EIO, "%s: write failed", path);
  }
  free(text);
  return rc;
}
