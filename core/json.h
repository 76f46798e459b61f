/* core/json.h: cJSON on the library's allocator, and the checks cJSON leaves to its caller.
 * nas_json_init routes cJSON's allocations through nas_malloc (cJSON_InitHooks, once per
 * process; every function below calls it, so library code that starts with one of them
 * allocates its JSON through core/alloc.h, fault injection included). cJSON's builders
 * (cJSON_Create*, cJSON_Add*) return NULL on allocation failure and leave the object without
 * the item; instead of testing each result, a builder takes a mark before it starts and asks
 * nas_json_failed(mark) at the end, as SQLite keeps one mallocFailed flag per connection.
 * The count is per thread. Never prints. */
#ifndef NAS_CORE_JSON_H
#define NAS_CORE_JSON_H

#include <cjson/cJSON.h>

/* Installs the cJSON hooks (idempotent, thread safe). */
void nas_json_init(void);

/* Parses text into *out (caller frees with cJSON_Delete). Returns NAS_OK, NAS_ENOMEM when an
 * allocation failed, or NAS_EINVAL when the text is not JSON; *line (may be NULL) gets the
 * 1-based line of the syntax error. Fills no nas_err: callers name their source. */
int nas_json_parse(const char *text, cJSON **out, int *line);

/* Failed cJSON allocations on this thread so far (a mark), and whether any failed since. */
unsigned long nas_json_mark(void);
int nas_json_failed(unsigned long mark);

/* Adds item under key to obj / appends it to arr; on failure (obj/arr or item NULL, or the
 * key copy failed) item is deleted, so it never leaks. Returns 0 or -1. */
int nas_json_add(cJSON *obj, const char *key, cJSON *item);
int nas_json_push(cJSON *arr, cJSON *item);

/* Writes root, indented, and a newline to path (created or truncated). NAS_ENOMEM when
 * printing fails, NAS_EIO naming path when it cannot be written. */
struct nas_err;
int nas_json_write_file(const char *path, const cJSON *root, struct nas_err *e);

#endif
