/* latency/emu_run.c: the emulation half of the emulated measurement (see emulator.h): maps the
 * firmware into Unicorn (Thumb, M-class, CPU model = the target core), runs from the reset
 * handler to the halt loop, and counts executed instructions per layer.
 *
 * Counting: a UC_HOOK_BLOCK callback sees every executed translation block (address, size).
 * A block is decoded once (nas_thumb_classify) into a cache entry keyed by (address, size);
 * each execution only increments that entry's counter for the current layer, and counts are
 * multiplied out at the end. The current layer changes when the block at nas_layer_mark's
 * address runs (its argument is in R0). A block that does not start where the previous one
 * ended was reached by a taken branch (or a PC write): that is the taken-branch count. The
 * run is deterministic: same firmware and input, same counts. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "latency/emulator.h"
#include "core/alloc.h"

#ifdef NAS_HAVE_UNICORN
#include <unicorn/unicorn.h>
#endif

int nas_emu_have_unicorn(void) {
#ifdef NAS_HAVE_UNICORN
  return 1;
#else
  return 0;
#endif
}

void nas_emu_result_free(nas_emu_result *r) {
  if (!r) return;
  free(r->layers);
  free(r->output);
  memset(r, 0, sizeof *r);
}

/* Layer totals from counts and the core's CPI table. */
static void finish_layer(nas_emu_layer *l, const nas_cpi *cpi, double clock_mhz) {
  l->insns = 0;
  double cyc = 0;
  for (int k = 0; k < NAS_IC_COUNT; k++) l->insns += l->c.n[k], cyc += cpi->cls[k] * (double)l->c.n[k];
  cyc += cpi->xfer * (double)l->c.xfer + cpi->div_extra * (double)l->c.div +
         cpi->taken_extra * (double)l->taken;
  l->cycles = cyc;
  l->ms = clock_mhz > 0 ? cyc / (clock_mhz * 1e3) : 0;
}

#ifndef NAS_HAVE_UNICORN

int nas_emu_run(const nas_emu_fw *fw, const int8_t *in, long long max_insns, nas_emu_result *r,
                nas_err *e) {
  (void)fw, (void)in, (void)max_insns, (void)finish_layer;
  memset(r, 0, sizeof *r);
  return nas_errf(e, NAS_EINVAL, "emulator: this nas was built without the Unicorn engine: "
                  "install libunicorn-dev (apt-get install libunicorn-dev) and rebuild");
}

#else

typedef struct blk {
  uint32_t addr, size;  /* key; size 0 = empty slot */
  nas_icount c;         /* decoded counts */
  long long insns;      /* instructions in the block */
} blk;

typedef struct emu_state {
  const nas_emu_fw *fw;
  uc_engine *uc;
  int nl;               /* layers (nops + 1) */
  blk *tab;             /* open-addressing table [cap] */
  long long *exec;      /* [cap * nl] executions of block i in layer l */
  long long *taken;     /* [nl] taken branches per layer */
  size_t cap, used;
  int layer;            /* current layer row (nops = outside every operator) */
  uint32_t prev_end;    /* end address of the previous block */
  long long insns, max_insns, blocks;
  int fault, over, bad_mark, oom;
} emu_state;

static size_t slot_of(uint32_t addr, uint32_t size, size_t cap) {
  uint32_t h = (addr >> 1) * 2654435761u ^ size * 40503u;
  return (size_t)h & (cap - 1);
}

static int grow(emu_state *s) {
  size_t ncap = s->cap ? s->cap * 2 : 1024;
  blk *nt = nas_calloc(ncap, sizeof *nt);
  long long *ne = nas_calloc(ncap * (size_t)s->nl, sizeof *ne);
  if (!nt || !ne) {
    free(nt), free(ne);
    return -1;
  }
  for (size_t i = 0; i < s->cap; i++) {
    if (!s->tab[i].size) continue;
    size_t j = slot_of(s->tab[i].addr, s->tab[i].size, ncap);
    while (nt[j].size) j = (j + 1) & (ncap - 1);
    nt[j] = s->tab[i];
    memcpy(ne + j * (size_t)s->nl, s->exec + i * (size_t)s->nl, sizeof *ne * (size_t)s->nl);
  }
  free(s->tab), free(s->exec);
  s->tab = nt, s->exec = ne, s->cap = ncap;
  return 0;
}

/* Finds or decodes the block; NULL when out of memory. */
static blk *lookup(emu_state *s, uint32_t addr, uint32_t size, size_t *idx) {
  if ((s->used + 1) * 2 > s->cap && grow(s)) return NULL;
  size_t j = slot_of(addr, size, s->cap);
  while (s->tab[j].size && (s->tab[j].addr != addr || s->tab[j].size != size))
    j = (j + 1) & (s->cap - 1);
  blk *b = &s->tab[j];
  if (!b->size) {
    const nas_emu_fw *fw = s->fw;
    uint8_t tmp[4096];
    const uint8_t *code = NULL;
    if (addr >= fw->flash_base && addr - fw->flash_base < fw->flash_size &&
        size <= fw->flash_size - (addr - fw->flash_base))
      code = fw->flash + (addr - fw->flash_base);
    else if (size <= sizeof tmp && uc_mem_read(s->uc, addr, tmp, size) == UC_ERR_OK)
      code = tmp;
    memset(&b->c, 0, sizeof b->c);
    b->insns = code ? nas_thumb_classify(code, size, &b->c) : 0;
    b->addr = addr, b->size = size;
    s->used++;
  }
  *idx = j;
  return b;
}

static void on_block(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
  emu_state *s = user;
  const uint32_t a = (uint32_t)address;
  if (a == s->fw->mark) {
    int32_t r0 = 0;
    uc_reg_read(uc, UC_ARM_REG_R0, &r0);
    if (r0 < 0 || r0 >= s->nl) {
      s->bad_mark = 1;
      uc_emu_stop(uc);
      return;
    }
    if (a != s->prev_end) s->taken[s->layer]++; /* the call, charged to the layer that made it */
    s->layer = r0;
  } else if (a != s->prev_end) {
    s->taken[s->layer]++;
  }
  if (a == s->fw->fault) {
    s->fault = 1;
    uc_emu_stop(uc);
    return;
  }
  size_t idx;
  blk *b = lookup(s, a, size, &idx);
  if (!b) {
    s->oom = 1;
    uc_emu_stop(uc);
    return;
  }
  s->exec[idx * (size_t)s->nl + (size_t)s->layer]++;
  s->blocks++;
  s->insns += b->insns;
  s->prev_end = a + size;
  if (s->insns > s->max_insns) {
    s->over = 1;
    uc_emu_stop(uc);
  }
}

static int cpu_model(int core) {
  switch (core) {
    case NAS_CORE_M0PLUS: return UC_CPU_ARM_CORTEX_M0;
    case NAS_CORE_M4: return UC_CPU_ARM_CORTEX_M4;
    case NAS_CORE_M7: return UC_CPU_ARM_CORTEX_M7;
    case NAS_CORE_M33: return UC_CPU_ARM_CORTEX_M33;
    default: return -1;
  }
}

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nas_emu_run(const nas_emu_fw *fw, const int8_t *in, long long max_insns, nas_emu_result *r,
                nas_err *e) {
  memset(r, 0, sizeof *r);
  nas_cpi cpi;
  int rc = nas_cpi_for_core(fw->core, &cpi, e);
  if (rc) return rc;
  const double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
  emu_state s;
  memset(&s, 0, sizeof s);
  s.fw = fw, s.nl = fw->nops + 1, s.layer = fw->nops;
  s.max_insns = max_insns > 0 ? max_insns : 2000000000LL;
  s.prev_end = fw->entry;
  s.taken = nas_calloc((size_t)s.nl, sizeof *s.taken);
  if (!s.taken || grow(&s)) {
    free(s.taken), free(s.tab), free(s.exec);
    return nas_errf(e, NAS_ENOMEM, "out of memory");
  }
  uc_err err = uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &s.uc);
  const char *what = "uc_open";
  if (err == UC_ERR_OK) what = "cpu model", err = uc_ctl_set_cpu_model(s.uc, cpu_model(fw->core));
  if (err == UC_ERR_OK)
    what = "map flash", err = uc_mem_map(s.uc, fw->flash_base, fw->flash_size, UC_PROT_READ | UC_PROT_EXEC);
  if (err == UC_ERR_OK) err = uc_mem_write(s.uc, fw->flash_base, fw->flash, fw->flash_size);
  if (err == UC_ERR_OK) what = "map SRAM", err = uc_mem_map(s.uc, fw->sram_base, fw->sram_size, UC_PROT_ALL);
  if (err == UC_ERR_OK) err = uc_mem_write(s.uc, fw->sram_base, fw->sram_init, fw->sram_size);
  if (err == UC_ERR_OK) what = "write input", err = uc_mem_write(s.uc, fw->in_addr, in, fw->in_n);
  uint32_t sp = fw->sp;
  if (err == UC_ERR_OK) what = "set SP", err = uc_reg_write(s.uc, UC_ARM_REG_SP, &sp);
  uc_hook hh;
  if (err == UC_ERR_OK) what = "hook", err = uc_hook_add(s.uc, &hh, UC_HOOK_BLOCK, (void *)on_block, &s, 1, 0);
  if (err == UC_ERR_OK) what = "run", err = uc_emu_start(s.uc, fw->entry | 1u, fw->halt, 0, 0);
  uint32_t pc = 0;
  if (s.uc) uc_reg_read(s.uc, UC_ARM_REG_PC, &pc);
  if (err != UC_ERR_OK)
    rc = nas_errf(e, NAS_ENUMERIC, "emulator (%s): %s at pc 0x%08x", what, uc_strerror(err), pc);
  else if (s.oom) rc = nas_errf(e, NAS_ENOMEM, "emulator: out of memory for the block cache");
  else if (s.fault) rc = nas_errf(e, NAS_ENUMERIC, "emulator: the firmware faulted (fault vector taken) in layer %d", s.layer == fw->nops ? -1 : s.layer);
  else if (s.over) rc = nas_errf(e, NAS_ENUMERIC, "emulator: more than %lld instructions executed; stopped", s.max_insns);
  else if (s.bad_mark) rc = nas_errf(e, NAS_ENUMERIC, "emulator: nas_layer_mark called with a layer outside 0..%d", fw->nops);
  else if ((pc & ~1u) != fw->halt) rc = nas_errf(e, NAS_ENUMERIC, "emulator: stopped at 0x%08x before the halt loop", pc);
  if (rc == NAS_OK) {
    r->n_layers = s.nl;
    r->layers = nas_calloc((size_t)s.nl, sizeof *r->layers);
    r->output = nas_malloc(fw->out_n ? fw->out_n : 1);
    r->out_n = fw->out_n;
    if (!r->layers || !r->output) rc = nas_errf(e, NAS_ENOMEM, "out of memory");
    else if ((err = uc_mem_read(s.uc, fw->out_addr, r->output, fw->out_n)) != UC_ERR_OK)
      rc = nas_errf(e, NAS_ENUMERIC, "emulator: reading the output: %s", uc_strerror(err));
  }
  if (rc == NAS_OK) {
    for (int l = 0; l < s.nl; l++) r->layers[l].op = l < fw->nops ? l : -1, r->layers[l].taken = s.taken[l];
    for (size_t i = 0; i < s.cap; i++) {
      const blk *b = &s.tab[i];
      if (!b->size) continue;
      for (int l = 0; l < s.nl; l++) {
        long long x = s.exec[i * (size_t)s.nl + (size_t)l];
        if (!x) continue;
        nas_icount *c = &r->layers[l].c;
        for (int k = 0; k < NAS_IC_COUNT; k++) c->n[k] += x * b->c.n[k];
        c->xfer += x * b->c.xfer, c->div += x * b->c.div, c->flow += x * b->c.flow;
      }
    }
    memset(&r->total, 0, sizeof r->total);
    r->total.op = -1;
    for (int l = 0; l < s.nl; l++) {
      finish_layer(&r->layers[l], &cpi, fw->clock_mhz);
      nas_icount *c = &r->total.c;
      const nas_icount *lc = &r->layers[l].c;
      for (int k = 0; k < NAS_IC_COUNT; k++) c->n[k] += lc->n[k];
      c->xfer += lc->xfer, c->div += lc->div, c->flow += lc->flow;
      r->total.taken += r->layers[l].taken;
    }
    finish_layer(&r->total, &cpi, fw->clock_mhz);
    r->executed = s.insns;
    r->blocks = s.blocks;
    r->distinct_blocks = (long long)s.used;
  }
  if (s.uc) uc_close(s.uc);
  free(s.taken), free(s.tab), free(s.exec);
  r->run_s = clock_s(CLOCK_MONOTONIC) - t0;
  r->run_cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
  if (rc != NAS_OK) nas_emu_result_free(r);
  return rc;
}

#endif
