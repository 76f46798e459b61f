/* nas/measure_emu.c: one emulated measurement of an int8 graph in the store's terms
 * (nas/measure_emu.h). */
#include "nas/measure_emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void nas_emu_measure_free(nas_emu_measure *m) {
  if (!m) return;
  free(m->ops);
  memset(m, 0, sizeof *m);
}

int nas_emu_measure_graph(const nas_g8_graph *g, const nas_target *t, const int8_t *in,
                          const nas_emu_cfg *cfg, nas_emu_measure *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  snprintf(out->target, sizeof out->target, "%s", t->id);
  snprintf(out->core, sizeof out->core, "%s", nas_core_name(t->core));
  out->m.backend = "emulator", out->m.runtime = "nas-c";
  out->m.target = out->target, out->m.core = out->core;
  const double t0 = now_s();
  nas_emu_fw *fw = NULL;
  nas_emu_result r;
  nas_err me = {0};
  int rc = nas_emu_build(g, t, cfg, &fw, &me);
  if (rc == NAS_OK) rc = nas_emu_run(fw, in, 0, &r, &me);
  nas_emu_fw_free(fw);
  out->m.seconds = now_s() - t0;
  if (rc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "emulator: %s", me.msg);
  if (rc) {
    snprintf(out->reason, sizeof out->reason, "%s%s", strncmp(me.msg, "emulator", 8) ? "emulator: " : "",
             me.msg);
    out->m.reason = out->reason;
    return NAS_OK;
  }
  out->ops = nas_calloc((size_t)g->nops + 1, sizeof *out->ops);
  if (!out->ops) {
    nas_emu_result_free(&r);
    return nas_errf(e, NAS_ENOMEM, "emulator: out of memory for %d operators", g->nops);
  }
  double cycles = 0;
  for (int i = 0; i < g->nops && i < r.n_layers; i++) {
    const nas_emu_layer *L = &r.layers[i];
    nas_op_meas *o = &out->ops[i];
    int layer = -1;
    const char *name = g->tensors[g->ops[i].out].name;
    if (!name || sscanf(name, "l%d.", &layer) != 1) layer = -1;
    o->op = i, o->layer = layer, o->insns = L->insns, o->taken = L->taken;
    snprintf(o->kind, sizeof o->kind, "%s", nas_g8_op_short(g->ops[i].kind));
    o->ldst = L->c.n[NAS_IC_LDST], o->mul = L->c.n[NAS_IC_MUL];
    o->branch = L->c.n[NAS_IC_BRANCH], o->other = L->c.n[NAS_IC_OTHER];
    o->cycles = L->cycles, o->ms = L->ms;
    cycles += L->cycles;
  }
  out->m.ok = 1, out->m.ops = out->ops, out->m.nops = g->nops;
  out->m.insns = r.total.insns, out->m.cycles = cycles, out->m.ms = r.total.ms;
  nas_emu_result_free(&r);
  return NAS_OK;
}

const char *nas_emu_cache_dir(char *buf, size_t n) {
  const char *d = getenv("NAS_CACHE_DIR");
  if (d) {
    if (!*d) return NULL;
    snprintf(buf, n, "%s", d);
  } else {
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (x && *x) {
      snprintf(buf, n, "%s/nas-emu", x);
    } else if (h && *h) {
      snprintf(buf, n, "%s/.cache", h);
      mkdir(buf, 0777);
      snprintf(buf, n, "%s/.cache/nas-emu", h);
    } else {
      return NULL;
    }
    mkdir(buf, 0777);
  }
  struct stat st;
  return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) && access(buf, W_OK) == 0 ? buf : NULL;
}
