/* nas/space_info.c: distinct-architecture counts and descriptions of search spaces (see
 * nas/space_info.h). */
#include "nas/space_info.h"
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datadir.h"
#include "core/fileio.h"

#define MAX_OPTIONAL 24

int nas_space_distinct(const nas_space *s, double *count, int *exact, nas_err *e) {
  int n = nas_space_n_decisions(s);
  *count = nas_space_size(s), *exact = 0;
  int no = 0, opt[MAX_OPTIONAL];
  for (int i = 0; i < n; i++) {
    const char *p = nas_space_decision_path(s, i);
    size_t len = strlen(p);
    if (len >= 9 && !strcmp(p + len - 9, ".optional")) {
      if (no == MAX_OPTIONAL) return NAS_OK; /* too many to enumerate: the upper bound */
      opt[no++] = i;
    }
  }
  int *d = nas_calloc((size_t)(n ? n : 1), sizeof *d);
  unsigned char *active = nas_calloc((size_t)(n ? n : 1), 1);
  if (!d || !active) {
    free(d), free(active);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  /* activity depends only on the optional decisions (a skipped entry deactivates what it
   * holds): enumerate them, count each pattern whose inactive optional decisions are 0 once,
   * times the values of its active non-optional decisions */
  double total = 0;
  int rc = NAS_OK;
  for (long m = 0; m < (1L << no) && rc == NAS_OK; m++) {
    memset(d, 0, sizeof *d * (size_t)n);
    for (int j = 0; j < no; j++) d[opt[j]] = (int)((m >> j) & 1);
    if ((rc = nas_space_active(s, d, active, e)) != NAS_OK) break;
    int canonical = 1;
    for (int j = 0; j < no; j++)
      if (!active[opt[j]] && d[opt[j]]) canonical = 0;
    if (!canonical) continue;
    double prod = 1;
    for (int i = 0, j = 0; i < n; i++) {
      if (j < no && opt[j] == i) {
        j++;
        continue;
      }
      if (active[i]) prod *= nas_space_card(s, i);
    }
    total += prod;
  }
  free(d), free(active);
  if (rc == NAS_OK) *count = total, *exact = 1;
  return rc;
}

int nas_space_description(const char *spec, char **out, nas_err *e) {
  *out = NULL;
  char path[4096], rel[4096];
  size_t n = spec ? strlen(spec) : 0;
  int rc = NAS_OK;
  if (spec && (strchr(spec, '/') || (n > 5 && !strcmp(spec + n - 5, ".json")))) {
    snprintf(path, sizeof path, "%s", spec);
  } else {
    snprintf(rel, sizeof rel, "search_spaces/%s.json", spec ? spec : "");
    rc = nas_data_path(rel, path, sizeof path, e);
  }
  char *text = NULL;
  if (rc == NAS_OK) rc = nas_read_file(path, &text, NULL, e);
  if (rc != NAS_OK) return rc;
  cJSON *j = cJSON_Parse(text);
  free(text);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "description");
  const char *t = cJSON_IsString(d) ? d->valuestring : "";
  *out = nas_malloc(strlen(t) + 1);
  if (*out) strcpy(*out, t);
  cJSON_Delete(j);
  return *out ? NAS_OK : nas_errf(e, NAS_ENOMEM, "out of memory");
}
