/* results/pareto.c: objective parsing, Pareto front queries on the store, non-dominated
 * sorting and crowding distance (NSGA-II, Deb et al. 2002). */
#include "results/pareto.h"
#include "core/alloc.h"
#include "results/store_impl.h"

#include <ctype.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void valid_list(char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < NAS_N_METRICS && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", nas_metric_name(i));
}

int nas_objectives_parse(const char *spec, nas_objectives *o, nas_err *e) {
  memset(o, 0, sizeof *o);
  if (!spec || !*spec) return nas_errf(e, NAS_EINVAL, "objectives: empty list");
  const char *p = spec;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[96];
    if (len >= sizeof item) return nas_errf(e, NAS_EINVAL, "objectives: item too long");
    memcpy(item, p, len);
    item[len] = '\0';
    char *a = item, *z = item + len;
    while (*a && isspace((unsigned char)*a)) a++;
    while (z > a && isspace((unsigned char)z[-1])) *--z = '\0';
    char *colon = strchr(a, ':');
    if (!*a) return nas_errf(e, NAS_EINVAL, "objectives '%s': empty item", spec);
    if (!colon)
      return nas_errf(e, NAS_EINVAL, "objectives: '%s': expected column:max or column:min", a);
    *colon = '\0';
    const char *dir = colon + 1;
    int m = nas_metric_index(a);
    if (m < 0) {
      char list[400];
      valid_list(list, sizeof list);
      return nas_errf(e, NAS_EINVAL, "objectives: unknown column '%s' (valid: %s)", a, list);
    }
    int mx;
    if (!strcmp(dir, "max")) mx = 1;
    else if (!strcmp(dir, "min")) mx = 0;
    else
      return nas_errf(e, NAS_EINVAL, "objectives: '%s': direction '%s' is not max or min", a, dir);
    for (int i = 0; i < o->n; i++)
      if (o->metric[i] == m) return nas_errf(e, NAS_EINVAL, "objectives: '%s' given twice", a);
    if (o->n == NAS_PARETO_MAX_OBJ)
      return nas_errf(e, NAS_EINVAL, "objectives: more than %d", NAS_PARETO_MAX_OBJ);
    o->metric[o->n] = m, o->maximize[o->n] = mx, o->n++;
    if (!end) break;
    p = end + 1;
    if (!*p) return nas_errf(e, NAS_EINVAL, "objectives '%s': trailing ','", spec);
  }
  return NAS_OK;
}

void nas_objectives_format(const nas_objectives *o, char *buf, int cap) {
  int len = 0;
  if (cap > 0) buf[0] = '\0';
  for (int i = 0; i < o->n && len < cap; i++)
    len += snprintf(buf + len, (size_t)(cap - len), "%s%s:%s", i ? "," : "",
                    nas_metric_name(o->metric[i]), o->maximize[i] ? "max" : "min");
}

int nas_dominates(const double *a, const double *b, int m, const int *maximize) {
  int better = 0;
  for (int j = 0; j < m; j++) {
    double x = maximize[j] ? a[j] : -a[j], y = maximize[j] ? b[j] : -b[j];
    if (x < y) return 0;
    if (x > y) better = 1;
  }
  return better;
}

int nas_pareto_ranks(const double *pts, int n, int m, const int *maximize, int *rank) {
  if (n <= 0) return 0;
  int *cnt = nas_calloc((size_t)n, sizeof *cnt); /* how many points dominate i */
  int *cur = nas_malloc((size_t)n * sizeof *cur), *next = nas_malloc((size_t)n * sizeof *next);
  if (!cnt || !cur || !next) {
    free(cnt), free(cur), free(next);
    return -1;
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j && nas_dominates(pts + (size_t)j * m, pts + (size_t)i * m, m, maximize)) cnt[i]++;
  int nc = 0, fronts = 0;
  for (int i = 0; i < n; i++)
    if (cnt[i] == 0) cur[nc++] = i, rank[i] = 0;
  while (nc > 0) {
    int nn = 0;
    for (int a = 0; a < nc; a++) {
      int p = cur[a];
      for (int q = 0; q < n; q++)
        if (q != p && nas_dominates(pts + (size_t)p * m, pts + (size_t)q * m, m, maximize) &&
            --cnt[q] == 0)
          next[nn++] = q, rank[q] = fronts + 1;
    }
    fronts++;
    int *t = cur;
    cur = next, next = t, nc = nn;
  }
  free(cnt), free(cur), free(next);
  return fronts;
}

typedef struct sort_key {
  double v; /* value of the objective being sorted */
  int j;    /* position in idx */
} sort_key;

static int cmp_key(const void *a, const void *b) {
  const sort_key *x = a, *y = b;
  if (x->v < y->v) return -1;
  if (x->v > y->v) return 1;
  return x->j - y->j; /* stable order among ties */
}

int nas_pareto_crowding(const double *pts, int m, const int *idx, int k, double *dist) {
  for (int j = 0; j < k; j++) dist[j] = 0;
  if (k <= 2) {
    for (int j = 0; j < k; j++) dist[j] = INFINITY;
    return 0;
  }
  sort_key *ks = nas_malloc((size_t)k * sizeof *ks);
  if (!ks) return -1;
  for (int o = 0; o < m; o++) {
    for (int j = 0; j < k; j++) ks[j].v = pts[(size_t)idx[j] * m + o], ks[j].j = j;
    qsort(ks, (size_t)k, sizeof *ks, cmp_key);
    double lo = ks[0].v, hi = ks[k - 1].v;
    dist[ks[0].j] = dist[ks[k - 1].j] = INFINITY;
    if (hi - lo <= 0) continue;
    for (int j = 1; j < k - 1; j++)
      if (!isinf(dist[ks[j].j])) dist[ks[j].j] += (ks[j + 1].v - ks[j - 1].v) / (hi - lo);
  }
  free(ks);
  return 0;
}

/* ---- the front query --------------------------------------------------------------------- */

/* 1 when the parentheses of an SQL expression balance outside string literals (so a filter
 * cannot close the "AND (...)" it is wrapped in and widen the query). */
static int balanced(const char *w) {
  int depth = 0;
  char q = 0;
  for (; *w; w++) {
    if (q) {
      if (*w == q) q = 0;
    } else if (*w == '\'' || *w == '"' || *w == '`' || *w == '[') {
      q = *w == '[' ? ']' : *w;
    } else if (*w == '(') {
      depth++;
    } else if (*w == ')' && --depth < 0) {
      return 0;
    }
  }
  return depth == 0 && !q;
}

int nas_pareto_front(nas_store *s, const nas_objectives *o, int64_t run_id, const char *where,
                     nas_pareto_row **rows, int *n, nas_err *e) {
  *rows = NULL, *n = 0;
  const char *path = nas_store_path(s);
  if (o->n < 1 || o->n > NAS_PARETO_MAX_OBJ)
    return nas_errf(e, NAS_EINVAL, "%s: pareto: need 1..%d objectives", path, NAS_PARETO_MAX_OBJ);
  if (where && strchr(where, ';'))
    return nas_errf(e, NAS_EINVAL, "%s: pareto: the filter may not contain ';'", path);
  if (where && !balanced(where))
    return nas_errf(e, NAS_EINVAL, "%s: pareto: the filter has unbalanced parentheses or quotes",
                    path);
  size_t cap = 1024 + (where ? strlen(where) : 0);
  char *sql = nas_malloc(cap);
  if (!sql) return nas_errf(e, NAS_ENOMEM, "%s: pareto: out of memory", path);
  size_t len = (size_t)snprintf(sql, cap, "SELECT id, run_id");
  for (int i = 0; i < o->n; i++)
    len += (size_t)snprintf(sql + len, cap - len, ", %s", nas_metric_name(o->metric[i]));
  len += (size_t)snprintf(sql + len, cap - len, " FROM candidates WHERE state = 'done'");
  for (int i = 0; i < o->n; i++)
    len += (size_t)snprintf(sql + len, cap - len, " AND %s IS NOT NULL",
                            nas_metric_name(o->metric[i]));
  if (run_id > 0) len += (size_t)snprintf(sql + len, cap - len, " AND run_id = ?1");
  if (where && *where) len += (size_t)snprintf(sql + len, cap - len, " AND (%s\n)", where);
  snprintf(sql + len, cap - len, " ORDER BY id");
  sqlite3 *db = s->db;
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
  int trailing = rc == SQLITE_OK && tail && *tail;
  free(sql);
  if ((rc & 0xff) == SQLITE_NOMEM) return nas_errf(e, NAS_ENOMEM, "%s: pareto: out of memory", path);
  if (rc != SQLITE_OK)
    return nas_errf(e, NAS_EINVAL, "%s: pareto: bad filter or query: %s", path, sqlite3_errmsg(db));
  if (!sqlite3_stmt_readonly(st) || trailing) {
    sqlite3_finalize(st);
    return nas_errf(e, NAS_EINVAL, "%s: pareto: the filter must be a read-only expression", path);
  }
  if (run_id > 0) sqlite3_bind_int64(st, 1, run_id);
  nas_pareto_row *all = NULL;
  int na = 0, acap = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (na == acap) {
      acap = acap ? acap * 2 : 64;
      nas_pareto_row *p = nas_realloc(all, (size_t)acap * sizeof *p);
      if (!p) {
        rc = SQLITE_NOMEM;
        break;
      }
      all = p;
    }
    nas_pareto_row *r = &all[na++];
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->run_id = sqlite3_column_int64(st, 1);
    for (int i = 0; i < o->n; i++) r->v[i] = sqlite3_column_double(st, 2 + i);
  }
  if (rc != SQLITE_DONE) {
    int code = rc == SQLITE_NOMEM ? nas_errf(e, NAS_ENOMEM, "%s: pareto: out of memory", path)
                                  : nas_errf(e, NAS_EIO, "%s: pareto: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    free(all);
    return code;
  }
  sqlite3_finalize(st);
  /* Keep the non-dominated rows (O(n^2 m), fine for the thousands of candidates of a run). */
  int keep = 0;
  for (int i = 0; i < na; i++) {
    int dominated = 0;
    for (int j = 0; j < na && !dominated; j++)
      dominated = j != i && nas_dominates(all[j].v, all[i].v, o->n, o->maximize);
    if (!dominated) all[keep++] = all[i];
  }
  /* Insertion sort by the first objective, best first, then by id (fronts are small). */
  for (int i = 1; i < keep; i++) {
    nas_pareto_row t = all[i];
    int j = i - 1;
    for (; j >= 0; j--) {
      double a = all[j].v[0], b = t.v[0];
      int after = o->maximize[0] ? a < b : a > b;
      if (!after && !(a == b && all[j].id > t.id)) break;
      all[j + 1] = all[j];
    }
    all[j + 1] = t;
  }
  if (keep == 0) {
    free(all);
    all = NULL;
  }
  *rows = all, *n = keep;
  return NAS_OK;
}
