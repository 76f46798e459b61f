/* Emulated measurement (latency/emulator.h) and the measurement formats (latency/measure.h):
 * the Thumb classifier on instructions assembled by arm-none-eabi-gcc; a small lowered net
 * cross-compiled for Cortex-M4/M7/M33 and run in Unicorn gives the bytes the host int8
 * runtime gives; the block-decode counts equal Unicorn's per-instruction hook plus exactly
 * the IT-block instructions whose condition failed (which the hook does not report and a core
 * still issues); counts repeat exactly run to run; per-layer counts sum to the total; a
 * missing toolchain is named; board CSV ingest, and its line-numbered errors; the emitted
 * board firmware tree cross-compiles. Tests that need the toolchain or Unicorn skip with the
 * packages to install. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"
#include "tests/test_util.h"
#include "deploy/lower.h"
#include "latency/cost.h"
#include "latency/emulator.h"
#include "latency/measure.h"

/* 1 when arm-none-eabi-gcc is found, else the part `what` is recorded as skipped. */
static int have_cc_for(const char *what) {
  char p[4096];
  nas_err e = {0};
  if (nas_emu_find_cc(NULL, p, sizeof p, &e) == NAS_OK) return 1;
  test_skip_part("%s: %s", what, e.msg);
  return 0;
}

/* 1 when the toolchain and Unicorn are there, else the part `what` is recorded as skipped. */
static int have_emu_for(const char *what) {
  if (!have_cc_for(what)) return 0;
  if (nas_emu_have_unicorn()) return 1;
  test_skip_part("%s: built without Unicorn (apt-get install libunicorn-dev, rebuild)", what);
  return 0;
}

/* Skips the current test unless arm-none-eabi-gcc is found. */
static void need_cc(void) {
  char p[4096];
  nas_err e = {0};
  if (nas_emu_find_cc(NULL, p, sizeof p, &e) != NAS_OK) test_skip("%s", e.msg);
}

/* Skips the current test unless the toolchain and Unicorn are there. */
static void need_emu(void) {
  need_cc();
  if (!nas_emu_have_unicorn())
    test_skip("built without Unicorn (apt-get install libunicorn-dev, rebuild)");
}

static void rm_rf(const char *dir) {
  if (test_rm_rf(dir)) print_message("could not remove %s\n", dir);
}

/* A small net with every kernel kind: conv (stride, relu6), pwconv, residual add, dwconv,
 * avgpool, maxpool, gap, fc, softmax. */
static const char *SMALL =
    "{\"input\":[12,10,3],\"classes\":5,\"layers\":[{\"op\":\"conv\",\"out\":8,\"k\":3,"
    "\"stride\":[2,1],\"act\":\"relu6\"},{\"op\":\"pwconv\",\"out\":8,\"bn\":false,\"act\":"
    "\"none\"},{\"op\":\"add\",\"from\":0,\"act\":\"relu\"},{\"op\":\"dwconv\",\"k\":3},"
    "{\"op\":\"maxpool\",\"k\":2,\"stride\":2},{\"op\":\"avgpool\",\"k\":2,\"stride\":1,"
    "\"padding\":\"same\"},{\"op\":\"dsconv\",\"out\":6,\"k\":3},{\"op\":\"gap\"},"
    "{\"op\":\"fc\",\"out\":7,\"act\":\"relu\"},{\"op\":\"fc\",\"out\":5}]}";

static void lowered(const char *json, nas_g8_graph *g) {
  nas_net *n = NULL;
  nas_err e = {0};
  if (nas_net_build(json, "t.json", 8, 7, &n, &e)) fail_msg("build: %s", e.msg);
  nas_dataset d = {0};
  test_make_noise(&d, 24, n->in_h, n->in_w, n->in_c, n->classes, 5);
  nas_lower_cfg lc = {.softmax = 1};
  if (nas_quantize_net(n, &d, NULL, &lc, g, &e)) fail_msg("lower: %s", e.msg);
  free(d.x), free(d.y);
  nas_net_free(n);
}

static nas_target *target(const char *id) {
  nas_target *t = NULL;
  nas_err e = {0};
  if (nas_target_open(id, NULL, &t, &e)) fail_msg("target %s: %s", id, e.msg);
  return t;
}

static void random_input(int8_t *in, size_t n, uint64_t seed) {
  nas_rng r;
  nas_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) in[i] = (int8_t)((int)nas_rng_below(&r, 256) - 128);
}

/* Assembles `src` with arm-none-eabi-gcc for cortex-m4 and classifies the raw bytes. */
static void classify_asm(const char *src, nas_icount *c, long long *n) {
  char dir[] = "/tmp/nas_emu_test_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp");
  char path[256], cmd[9400], cc[4096];
  nas_err e = {0};
  assert_int_equal(nas_emu_find_cc(NULL, cc, sizeof cc, &e), NAS_OK);
  snprintf(path, sizeof path, "%s/a.s", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, ".syntax unified\n.thumb\n.text\n%s\n", src);
  fclose(f);
  size_t l = strlen(cc);
  assert_true(l > 3);
  cc[l - 3] = 0; /* ...-gcc -> ...- */
  if (snprintf(cmd, sizeof cmd,
               "cd %s && %sgcc -mcpu=cortex-m4 -mthumb -c a.s -o a.o && %sobjcopy -O binary "
               "-j .text a.o a.bin",
               dir, cc, cc) >= (int)sizeof cmd)
    fail_msg("compiler path too long: %s", cc);
  assert_int_equal(system(cmd), 0);
  snprintf(path, sizeof path, "%s/a.bin", dir);
  f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t buf[512];
  size_t k = fread(buf, 1, sizeof buf, f);
  fclose(f);
  memset(c, 0, sizeof *c);
  *n = nas_thumb_classify(buf, k, c);
  rm_rf(dir);
}

static void test_classify(void **state) {
  (void)state;
  need_cc();
  nas_icount c;
  long long n;
  /* 16-bit and 32-bit forms of each class. */
  classify_asm("1:\n"
               "ldr r0, [r1]\n ldr.w r0, [r1, #1024]\n strb r2, [r3, #1]\n ldrsh.w r4, [r5, r6]\n"
               "push {r4-r7, lr}\n pop {r4-r7}\n ldrd r0, r1, [r2]\n ldm r0!, {r1, r2}\n"
               "muls r0, r1, r0\n mla r0, r1, r2, r3\n smlad r0, r1, r2, r3\n smlabb r0, r1, r2, r3\n"
               "smull r0, r1, r2, r3\n"
               "b 1b\n bne 1b\n b.w 1b\n bl 1b\n bx lr\n cbz r0, 2f\n"
               "adds r0, r1, r2\n add.w r0, r1, r2, lsl #2\n movw r0, #4660\n sxtb r0, r1\n"
               "sdiv r0, r1, r2\n cmp r0, #3\n ssat r0, #8, r1\n"
               "2:\n nop\n",
               &c, &n);
  assert_int_equal(c.n[NAS_IC_LDST], 8);
  assert_int_equal(c.n[NAS_IC_MUL], 5);
  assert_int_equal(c.n[NAS_IC_BRANCH], 6);
  assert_int_equal(c.n[NAS_IC_OTHER], 8);
  assert_int_equal(n, 27);
  /* push 5 regs (+4), pop 4 (+3), ldrd (+1), ldm 2 (+1) */
  assert_int_equal(c.xfer, 9);
  assert_int_equal(c.div, 1);
  assert_int_equal(c.flow, 6);
  /* PC writes: pop {pc}, mov pc, ldr pc, tbb count as flow changes. */
  classify_asm("pop {r4, pc}\n mov pc, lr\n ldr.w pc, [sp], #4\n tbb [pc, r0]\n", &c, &n);
  assert_int_equal(n, 4);
  assert_int_equal(c.flow, 4);
  assert_int_equal(c.n[NAS_IC_BRANCH], 2);
  assert_int_equal(c.n[NAS_IC_LDST], 2);
}

static void check_core(const nas_g8_graph *g, const char *tid) {
  nas_target *t = target(tid);
  nas_emu_fw *fw = NULL;
  nas_err e = {0};
  if (nas_emu_build(g, t, NULL, &fw, &e)) fail_msg("%s: build: %s", tid, e.msg);
  const size_t ni = nas_g8_numel(&g->tensors[g->input]), no = nas_g8_numel(&g->tensors[g->output]);
  assert_int_equal(fw->in_n, ni);
  assert_int_equal(fw->out_n, no);
  int8_t *in = malloc(ni), *ref = malloc(no);
  for (int k = 0; k < 3; k++) {
    if (k == 0) memset(in, -128, ni);
    else random_input(in, ni, 100 + (uint64_t)k);
    if (nas_g8_run(g, in, ref, &e)) fail_msg("host run: %s", e.msg);
    nas_emu_result r, r2;
    if (nas_emu_run(fw, in, 0, &r, &e)) fail_msg("%s: run: %s", tid, e.msg);
    assert_int_equal(r.out_n, no);
    for (size_t i = 0; i < no; i++)
      if (r.output[i] != ref[i])
        fail_msg("%s: input %d output %zu: emulated %d, host runtime %d", tid, k, i, r.output[i], ref[i]);
    /* Per-layer rows sum to the total; the total equals what was counted while running. */
    assert_int_equal(r.n_layers, g->nops + 1);
    long long sum = 0, cls[NAS_IC_COUNT] = {0};
    double cyc = 0;
    for (int l = 0; l < r.n_layers; l++) {
      sum += r.layers[l].insns;
      cyc += r.layers[l].cycles;
      for (int c = 0; c < NAS_IC_COUNT; c++) cls[c] += r.layers[l].c.n[c];
      if (l < g->nops) assert_true(r.layers[l].insns > 0); /* every operator ran code */
    }
    assert_int_equal(sum, r.executed);
    assert_int_equal(sum, r.total.insns);
    for (int c = 0; c < NAS_IC_COUNT; c++) assert_int_equal(cls[c], r.total.c.n[c]);
    assert_true(cyc > 0.999 * r.total.cycles && cyc < 1.001 * r.total.cycles);
    assert_true(r.total.c.n[NAS_IC_MUL] > 0 && r.total.c.n[NAS_IC_LDST] > 0);
    assert_true(r.total.ms > 0);
    /* Run to run: identical counts. */
    if (nas_emu_run(fw, in, 0, &r2, &e)) fail_msg("%s: rerun: %s", tid, e.msg);
    assert_int_equal(r2.executed, r.executed);
    assert_int_equal(r2.blocks, r.blocks);
    for (int l = 0; l < r.n_layers; l++) {
      assert_memory_equal(&r2.layers[l].c, &r.layers[l].c, sizeof r.layers[l].c);
      assert_int_equal(r2.layers[l].taken, r.layers[l].taken);
    }
    assert_memory_equal(r2.output, r.output, no);
    nas_emu_result_free(&r);
    nas_emu_result_free(&r2);
  }
  /* A bound on instructions stops the run with an error. */
  nas_emu_result r;
  assert_int_equal(nas_emu_run(fw, in, 1000, &r, &e), NAS_ENUMERIC);
  assert_non_null(strstr(e.msg, "more than 1000 instructions"));
  free(in), free(ref);
  nas_emu_fw_free(fw);
  nas_target_free(t);
}

static void test_emulated_equals_host(void **state) {
  (void)state;
  need_emu();
  nas_g8_graph g;
  lowered(SMALL, &g);
  check_core(&g, "stm32f446re"); /* cortex-m4 */
  check_core(&g, "stm32f746");   /* cortex-m7 */
  check_core(&g, "nrf5340");     /* cortex-m33 */
  nas_g8_graph_free(&g);
}

/* The SMLAD (DSP) path and a no-DSP core: cortex-m0plus runs the portable loops. */
static void test_m0plus(void **state) {
  (void)state;
  need_emu();
  nas_g8_graph g;
  lowered("{\"input\":[8,8,2],\"classes\":3,\"layers\":[{\"op\":\"conv\",\"out\":4,\"k\":3},"
          "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":3}]}",
          &g);
  check_core(&g, "stm32g0b1");
  nas_g8_graph_free(&g);
}

#ifdef NAS_HAVE_UNICORN
#include <unicorn/unicorn.h>
/* A per-instruction count (UC_HOOK_CODE) that also finds the instructions of IT blocks the
 * hook did not report: at every IT it decodes the addresses of the 1-4 instructions the IT
 * covers from the image, and counts those the hook never reached before leaving the block. */
typedef struct per_insn {
  const nas_emu_fw *fw;
  nas_icount c;          /* instructions the hook reported, by class */
  long long n, it;       /* reported; IT instructions among them */
  nas_icount skipped_c;  /* IT-block instructions not reported, by class */
  long long skipped;
  uint32_t blk[4];       /* the open IT block's instruction addresses */
  int nblk, seen[4];
} per_insn;
static unsigned hw_at(const nas_emu_fw *fw, uint64_t a) {
  const uint8_t *p = fw->flash + (a - fw->flash_base);
  return (unsigned)p[0] | (unsigned)p[1] << 8;
}
static uint32_t insn_len(const nas_emu_fw *fw, uint64_t a) { return (hw_at(fw, a) >> 11) >= 0x1du ? 4 : 2; }
static void close_it_block(per_insn *s) {
  for (int k = 0; k < s->nblk; k++)
    if (!s->seen[k])
      s->skipped += nas_thumb_classify(s->fw->flash + (s->blk[k] - s->fw->flash_base),
                                       insn_len(s->fw, s->blk[k]), &s->skipped_c);
  s->nblk = 0;
}
static void on_code(uc_engine *uc, uint64_t a, uint32_t size, void *u) {
  per_insn *s = u;
  (void)uc;
  int in_blk = 0;
  for (int k = 0; k < s->nblk; k++)
    if (s->blk[k] == a) s->seen[k] = 1, in_blk = 1;
  if (s->nblk && !in_blk) close_it_block(s);
  s->n += nas_thumb_classify(s->fw->flash + (a - s->fw->flash_base), size, &s->c);
  const unsigned hw = hw_at(s->fw, a);
  if (size == 2 && (hw & 0xff00u) == 0xbf00u && (hw & 0xfu)) { /* IT: mask gives 1..4 */
    s->it++;
    int n = 4;
    while (!(hw >> (4 - n) & 1u)) n--;
    uint32_t x = (uint32_t)a + 2;
    for (int k = 0; k < n; k++) s->blk[k] = x, s->seen[k] = 0, x += insn_len(s->fw, x);
    s->nblk = n;
  }
}

/* Runs fw once with the per-instruction hook on Unicorn CPU model cpu. */
static void run_per_insn(const nas_emu_fw *fw, int cpu, const int8_t *in, per_insn *s) {
  uc_engine *uc;
  assert_int_equal(uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &uc), UC_ERR_OK);
  assert_int_equal(uc_ctl_set_cpu_model(uc, cpu), UC_ERR_OK);
  assert_int_equal(uc_mem_map(uc, fw->flash_base, fw->flash_size, UC_PROT_ALL), UC_ERR_OK);
  assert_int_equal(uc_mem_write(uc, fw->flash_base, fw->flash, fw->flash_size), UC_ERR_OK);
  assert_int_equal(uc_mem_map(uc, fw->sram_base, fw->sram_size, UC_PROT_ALL), UC_ERR_OK);
  assert_int_equal(uc_mem_map(uc, 0xE000E000, 0x1000, UC_PROT_ALL), UC_ERR_OK); /* SCS (CPACR) */
  assert_int_equal(uc_mem_write(uc, fw->in_addr, in, fw->in_n), UC_ERR_OK);
  assert_int_equal(uc_reg_write(uc, UC_ARM_REG_SP, &fw->sp), UC_ERR_OK);
  memset(s, 0, sizeof *s);
  s->fw = fw;
  uc_hook h;
  assert_int_equal(uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)on_code, s, 1, 0), UC_ERR_OK);
  assert_int_equal(uc_emu_start(uc, fw->entry | 1u, fw->halt, 0, 0), UC_ERR_OK);
  close_it_block(s);
  uc_close(uc);
}
#endif

/* Unicorn's per-instruction hook (UC_HOOK_CODE) reports every executed instruction, the IT
 * instruction itself included, except an instruction inside an IT block whose condition
 * fails; a real core still issues that one, and the block-decode count (nas_emu_run) counts
 * it. So: on cortex-m0plus (ARMv6-M has no IT) both counts are equal class by class; on
 * cortex-m4 the block count is the hook's count plus exactly the IT-block instructions the
 * hook skipped, and the hook does report IT instructions. */
static void test_blocks_equal_per_insn(void **state) {
  (void)state;
  need_emu();
#ifdef NAS_HAVE_UNICORN
  nas_g8_graph g;
  lowered(SMALL, &g);
  const char *ids[2] = {"stm32g0b1", "stm32f446re"};
  const int cpus[2] = {UC_CPU_ARM_CORTEX_M0, UC_CPU_ARM_CORTEX_M4};
  for (int v = 0; v < 2; v++) {
    nas_target *t = target(ids[v]);
    nas_emu_fw *fw = NULL;
    nas_err e = {0};
    if (nas_emu_build(&g, t, NULL, &fw, &e)) fail_msg("build: %s", e.msg);
    int8_t in[360];
    random_input(in, sizeof in, 77);
    nas_emu_result r;
    if (nas_emu_run(fw, in, 0, &r, &e)) fail_msg("run: %s", e.msg);
    per_insn *s = calloc(1, sizeof *s);
    assert_non_null(s);
    run_per_insn(fw, cpus[v], in, s);
    print_message("%s: blocks %lld, per-instruction hook %lld (IT %lld), IT-block instructions "
                  "not reported %lld\n", ids[v], r.total.insns, s->n, s->it, s->skipped);
    if (v == 0) {
      assert_int_equal(s->it, 0);
      assert_int_equal(s->skipped, 0);
    } else {
      assert_true(s->it > 0);      /* the hook reports IT instructions */
      assert_true(s->skipped > 0); /* and skips failed ones inside the block */
    }
    assert_int_equal(s->n + s->skipped, r.total.insns);
    for (int k = 0; k < NAS_IC_COUNT; k++) assert_int_equal(s->c.n[k] + s->skipped_c.n[k], r.total.c.n[k]);
    assert_int_equal(s->c.xfer + s->skipped_c.xfer, r.total.c.xfer);
    free(s);
    nas_emu_result_free(&r);
    nas_emu_fw_free(fw);
    nas_target_free(t);
  }
  nas_g8_graph_free(&g);
#endif
}

/* The kernel object cache: the second build links the cached kernels and gives the same
 * firmware behaviour (output and counts) as an uncached build. */
static void test_kernel_cache(void **state) {
  (void)state;
  need_emu();
  nas_g8_graph g;
  lowered(SMALL, &g);
  nas_target *t = target("stm32f446re");
  char cache[] = "/tmp/nas_emu_test_XXXXXX";
  if (!mkdtemp(cache)) fail_msg("mkdtemp");
  nas_emu_cfg cfg = {.cache_dir = cache};
  nas_emu_fw *fw[3] = {NULL, NULL, NULL};
  nas_err e = {0};
  if (nas_emu_build(&g, t, NULL, &fw[0], &e)) fail_msg("build: %s", e.msg);
  if (nas_emu_build(&g, t, &cfg, &fw[1], &e)) fail_msg("build (fills the cache): %s", e.msg);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "ls %s/nasrt-cortex-m4-*.o > /dev/null 2>&1", cache);
  assert_int_equal(system(cmd), 0);
  if (nas_emu_build(&g, t, &cfg, &fw[2], &e)) fail_msg("build (from the cache): %s", e.msg);
  int8_t in[360];
  random_input(in, sizeof in, 5);
  nas_emu_result r[3];
  for (int k = 0; k < 3; k++)
    if (nas_emu_run(fw[k], in, 0, &r[k], &e)) fail_msg("run %d: %s", k, e.msg);
  for (int k = 1; k < 3; k++) {
    assert_memory_equal(r[k].output, r[0].output, r[0].out_n);
    assert_int_equal(r[k].executed, r[0].executed);
    for (int l = 0; l < r[0].n_layers; l++)
      assert_memory_equal(&r[k].layers[l].c, &r[0].layers[l].c, sizeof r[0].layers[l].c);
  }
  for (int k = 0; k < 3; k++) nas_emu_result_free(&r[k]), nas_emu_fw_free(fw[k]);
  rm_rf(cache);
  nas_target_free(t);
  nas_g8_graph_free(&g);
}

static void test_errors(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered("{\"input\":[6,6,1],\"classes\":2,\"layers\":[{\"op\":\"conv\",\"out\":2},"
          "{\"op\":\"gap\"},{\"op\":\"fc\",\"out\":2}]}",
          &g);
  nas_target *t = target("stm32f446re");
  nas_emu_fw *fw = NULL;
  nas_err e = {0};
  /* Missing toolchain: named, with the packages to install. */
  nas_emu_cfg cfg = {.cc = "/nonexistent/bin/arm-none-eabi-gcc"};
  assert_int_equal(nas_emu_build(&g, t, &cfg, &fw, &e), NAS_EINVAL);
  assert_null(fw);
  assert_non_null(strstr(e.msg, "/nonexistent/bin/arm-none-eabi-gcc not found"));
  assert_non_null(strstr(e.msg, "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"));
  cfg.cc = "no-such-arm-gcc-xyz";
  assert_int_equal(nas_emu_build(&g, t, &cfg, &fw, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "no-such-arm-gcc-xyz not found on PATH"));
  /* A core without emulation. */
  nas_target *m55 = target("cortex-m55");
  assert_int_equal(nas_emu_build(&g, m55, NULL, &fw, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "cortex-m55"));
  nas_target_free(m55);
  /* A model that does not fit the target's SRAM: the linker's overflow, one line. */
  if (have_cc_for("the SRAM/flash overflow check")) {
    long long sram = t->sram_bytes;
    t->sram_bytes = 2048 + 16;
    assert_int_equal(nas_emu_build(&g, t, NULL, &fw, &e), NAS_EINVAL);
    assert_non_null(strstr(e.msg, "stm32f446re"));
    assert_non_null(strstr(e.msg, "SRAM overflow"));
    assert_null(strchr(e.msg, '\n'));
    t->sram_bytes = sram, t->flash_bytes = 1024; /* and flash */
    assert_int_equal(nas_emu_build(&g, t, NULL, &fw, &e), NAS_EINVAL);
    assert_non_null(strstr(e.msg, "FLASH"));
    assert_non_null(strstr(e.msg, "overflow"));
  }
  nas_target_free(t);
  nas_g8_graph_free(&g);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A board log: serial noise, two operators (a conv and a reshape), three runs. */
static const char *BOARD_LOG =
    "boot v1.2\r\n"
    "NAS-BEGIN,v1,kws,stm32f446re,2,3\r\n"
    "NAS,0,0,op0,conv,1000,490,800,3x3,1,8,5000\r\n"
    "NAS,0,1,op1,reshape,800,800,800,1x1,8,8,40\r\n"
    "NAS,0,-1,total,model,1000,0,0,1,0,0,5100\r\n"
    "uart: noise line\r\n"
    "NAS,1,0,op0,conv,1000,490,800,3x3,1,8,5200\r\n"
    "NAS,1,1,op1,reshape,800,800,800,1x1,8,8,41\r\n"
    "NAS,1,-1,total,model,1000,0,0,1,0,0,5300\r\n"
    "NAS,2,0,op0,conv,1000,490,800,3x3,1,8,4900\r\n"
    "NAS,2,1,op1,reshape,800,800,800,1x1,8,8,39\r\n"
    "NAS,2,-1,total,model,1000,0,0,1,0,0,5000\r\n"
    "NAS-END\r\n";

static void expect_ingest_error(const char *dir, const char *text, const char *want) {
  char path[256];
  snprintf(path, sizeof path, "%s/bad.txt", dir);
  write_text(path, text);
  nas_meas *rows = NULL;
  int n = 0;
  nas_err e = {0};
  int rc = nas_board_ingest(path, "stm32f446re", &rows, &n, &e);
  if (rc == NAS_OK) fail_msg("accepted a malformed log, wanted '%s'", want);
  if (!strstr(e.msg, want)) fail_msg("error '%s' lacks '%s'", e.msg, want);
  assert_null(rows);
}

static void test_ingest(void **state) {
  (void)state;
  char dir[] = "/tmp/nas_emu_test_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp");
  char path[256], csv[256];
  snprintf(path, sizeof path, "%s/log.txt", dir);
  snprintf(csv, sizeof csv, "%s/m.csv", dir);
  write_text(path, BOARD_LOG);
  nas_meas *rows = NULL;
  int n = 0;
  nas_err e = {0};
  if (nas_board_ingest(path, "stm32f446re", &rows, &n, &e)) fail_msg("ingest: %s", e.msg);
  assert_int_equal(n, 2); /* the conv and the model total; the reshape only counts in the total */
  assert_int_equal(rows[0].kop, NAS_KOP_CONV);
  assert_string_equal(rows[0].layer, "op0");
  assert_string_equal(rows[0].target, "stm32f446re");
  assert_string_equal(rows[0].model, "kws");
  assert_true(rows[0].cycles == 5000); /* median of 5000, 5200, 4900 */
  assert_int_equal(rows[0].macs, 1000);
  assert_int_equal(rows[0].kh, 3);
  assert_int_equal(rows[0].cout, 8);
  assert_int_equal(rows[1].kop, -1);
  assert_true(rows[1].cycles == 5100);
  /* The CSV it becomes is what `nas latency fit` reads. */
  assert_int_equal(nas_meas_write_csv(csv, rows, n, 180, &e), NAS_OK);
  { /* its ms column: cycles / 180 MHz (5000 cycles: 0.027778 ms) */
    char text[1024];
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    assert_non_null(strstr(text, ",5000,0.027778\n"));
    assert_non_null(strstr(text, ",5100,0.028333\n"));
  }
  nas_meas *back = NULL;
  int nb = 0;
  if (nas_meas_read_csv(csv, "stm32f446re", 180, &back, &nb, &e)) fail_msg("read back: %s", e.msg);
  assert_int_equal(nb, 2);
  assert_int_equal(back[0].kop, NAS_KOP_CONV);
  assert_int_equal(back[0].in_bytes, 490);
  assert_int_equal(back[0].out_bytes, 800);
  assert_int_equal(back[0].cin, 1);
  assert_true(back[0].cycles == 5000 && back[1].cycles == 5100);
  free(back), free(rows);
  /* Wrong target. */
  assert_int_equal(nas_board_ingest(path, "stm32f746", &rows, &n, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "for target 'stm32f446re', not 'stm32f746'"));
  /* Malformed logs: line-numbered errors. */
  expect_ingest_error(dir, "x\nNAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,0,op0,conv,1,2,3,1,1,1\nNAS-END\n",
                      "bad.txt:3: 11 fields");
  expect_ingest_error(dir, "NAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,0,op0,conv,1,2,3,1,1,1,abc\nNAS-END\n",
                      "bad.txt:2: field 'cycles': 'abc'");
  expect_ingest_error(dir, "NAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,0,op0,conv,1,2,3,1,1,1,5\n",
                      "bad.txt:2: no NAS-END");
  expect_ingest_error(dir, "NAS-BEGIN,v1,m,stm32f446re,1,2\nNAS,0,0,op0,conv,1,2,3,1,1,1,5\n"
                      "NAS,0,-1,total,model,1,0,0,1,0,0,6\nNAS-END\n",
                      "bad.txt:4: run 1 has no line for operator 0");
  expect_ingest_error(dir, "NAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,3,op0,conv,1,2,3,1,1,1,5\nNAS-END\n",
                      "bad.txt:2: field 'index': '3' is not in -1..0");
  expect_ingest_error(dir, "NAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,0,op0,lstmx,1,2,3,1,1,1,5\nNAS-END\n",
                      "bad.txt:2: field 'op': unknown op 'lstmx'");
  expect_ingest_error(dir, "NAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,0,op0,conv,1,2,3,0x3,1,1,5\nNAS-END\n",
                      "bad.txt:2: field 'k'");
  expect_ingest_error(dir, "hello\nworld\n", "no NAS-BEGIN line");
  expect_ingest_error(dir, "NAS,0,0,op0,conv,1,2,3,1,1,1,5\n", "bad.txt:1: a NAS line outside");
  rm_rf(dir);
}

/* Measurement rows of a graph carry the features the pricing gives the same layers, so a
 * measured row matches its priced kernel call exactly (the lookup table's rule). */
static void test_rows_match_pricing(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered(SMALL, &g);
  nas_target *t = target("stm32f446re");
  nas_price *p = NULL;
  nas_err e = {0};
  if (nas_price_arch(SMALL, "small", t, &p, &e)) fail_msg("price: %s", e.msg);
  double *cyc = calloc((size_t)g.nops + 1, sizeof *cyc);
  for (int i = 0; i < g.nops; i++) cyc[i] = 100.0 * (i + 1);
  nas_meas *rows = NULL;
  int n = 0;
  assert_int_equal(nas_meas_from_graph(&g, "stm32f446re", "small", cyc, 1e6, &rows, &n, &e), NAS_OK);
  assert_int_equal(n, p->n_calls + 1); /* + the model row; RESHAPE/SOFTMAX give no row */
  for (int c = 0; c < p->n_calls; c++) {
    const nas_kcall *k = &p->calls[c];
    int found = 0;
    for (int r = 0; r < n - 1 && !found; r++)
      found = rows[r].kop == k->kop && rows[r].macs == k->ops && rows[r].in_bytes == k->in_bytes &&
              rows[r].out_bytes == k->out_bytes && rows[r].kh == k->kh && rows[r].kw == k->kw &&
              rows[r].cin == k->in_c && rows[r].cout == k->out_c;
    if (!found) fail_msg("kernel call %d (%s, ops %lld) has no matching measured row", c,
                         nas_kop_name(k->kop), k->ops);
  }
  assert_int_equal(rows[n - 1].kop, -1);
  assert_int_equal(rows[n - 1].macs, p->macs);
  free(rows), free(cyc);
  nas_price_free(p);
  nas_target_free(t);
  nas_g8_graph_free(&g);
}

#ifdef NAS_HAVE_UNICORN
/* Runs the board firmware (raw flash image) in Unicorn as a stand-in board: DWT->CYCCNT reads
 * give the number of instructions executed so far, ITM port 0 writes are the serial log. */
typedef struct fake_board { long long icount; char log[1 << 16]; int n; } fake_board;
static void fb_code(uc_engine *uc, uint64_t a, uint32_t sz, void *u) {
  (void)uc, (void)a, (void)sz;
  ((fake_board *)u)->icount++;
}
static void fb_read(uc_engine *uc, uc_mem_type t, uint64_t a, int size, int64_t v, void *u) {
  (void)t, (void)size, (void)v;
  uint32_t c = (uint32_t)((fake_board *)u)->icount;
  uc_mem_write(uc, a, &c, 4); /* a read hook runs before the load */
}
static void fb_write(uc_engine *uc, uc_mem_type t, uint64_t a, int size, int64_t v, void *u) {
  (void)t, (void)size, (void)a;
  fake_board *b = u;
  if (b->n < (int)sizeof b->log - 1) b->log[b->n++] = (char)v, b->log[b->n] = 0;
  if (strstr(b->log, "NAS-END")) uc_emu_stop(uc);
}
static void run_fake_board(const char *bin, fake_board *b) {
  FILE *f = fopen(bin, "rb");
  assert_non_null(f);
  static uint8_t fl[1 << 20];
  size_t n = fread(fl, 1, sizeof fl, f);
  fclose(f);
  uc_engine *uc;
  assert_int_equal(uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &uc), UC_ERR_OK);
  assert_int_equal(uc_ctl_set_cpu_model(uc, UC_CPU_ARM_CORTEX_M7), UC_ERR_OK);
  assert_int_equal(uc_mem_map(uc, 0x08000000, 1 << 20, UC_PROT_ALL), UC_ERR_OK);
  assert_int_equal(uc_mem_write(uc, 0x08000000, fl, n), UC_ERR_OK);
  assert_int_equal(uc_mem_map(uc, 0x20000000, 320 << 10, UC_PROT_ALL), UC_ERR_OK);
  assert_int_equal(uc_mem_map(uc, 0xE0000000, 0x10000, UC_PROT_ALL), UC_ERR_OK); /* ITM, DWT, SCS */
  uint32_t one = 1, sp, pc;
  uc_mem_write(uc, 0xE0000000, &one, 4); /* ITM port 0 ready */
  uc_mem_write(uc, 0xE0000E00, &one, 4); /* ITM_TER */
  uc_mem_write(uc, 0xE0000E80, &one, 4); /* ITM_TCR */
  memcpy(&sp, fl, 4), memcpy(&pc, fl + 4, 4);
  uc_reg_write(uc, UC_ARM_REG_SP, &sp);
  uc_hook h1, h2, h3;
  uc_hook_add(uc, &h1, UC_HOOK_CODE, (void *)fb_code, b, 1, 0);
  uc_hook_add(uc, &h2, UC_HOOK_MEM_READ, (void *)fb_read, b, 0xE0001004, 0xE0001004);
  uc_hook_add(uc, &h3, UC_HOOK_MEM_WRITE, (void *)fb_write, b, 0xE0000000, 0xE0000000);
  assert_int_equal(uc_emu_start(uc, pc | 1u, 0xffffffffu, 0, 200000000), UC_ERR_OK);
  uc_close(uc);
}
#endif

/* The board firmware tree cross-compiles with its own Makefile; run on a stand-in board
 * (Unicorn), its log goes through ingest into rows with the graph's features. */
static void test_board_emit(void **state) {
  (void)state;
  nas_g8_graph g;
  lowered(SMALL, &g);
  nas_target *t = target("stm32f746");
  char dir[] = "/tmp/nas_emu_test_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp");
  char sub[256];
  snprintf(sub, sizeof sub, "%s/fw", dir);
  nas_err e = {0};
  int8_t in[360];
  random_input(in, sizeof in, 9);
  if (nas_board_emit(&g, t, "small", in, 3, sub, &e)) fail_msg("emit: %s", e.msg);
  nas_target *m0 = target("stm32g0b1");
  assert_int_equal(nas_board_emit(&g, m0, "small", in, 7, sub, &e), NAS_EINVAL);
  assert_non_null(strstr(e.msg, "no DWT cycle counter"));
  nas_target_free(m0);
  if (have_cc_for("building the emitted board firmware")) {
    char cc[4096], cmd[9000];
    assert_int_equal(nas_emu_find_cc(NULL, cc, sizeof cc, &e), NAS_OK);
    size_t l = strlen(cc);
    cc[l - 3] = 0;
    snprintf(cmd, sizeof cmd, "make -s -C %s CC=%sgcc OBJCOPY=%sobjcopy > %s/make.log 2>&1", sub,
             cc, cc, dir);
    if (system(cmd) != 0) {
      snprintf(cmd, sizeof cmd, "cat %s/make.log", dir);
      if (system(cmd)) {}
      fail_msg("the emitted firmware tree does not build");
    }
    snprintf(cmd, sizeof cmd, "%s/fw.bin", sub);
    assert_int_equal(access(cmd, R_OK), 0);
#ifdef NAS_HAVE_UNICORN
    fake_board *b = calloc(1, sizeof *b);
    run_fake_board(cmd, b);
    char log[512];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_text(log, b->log);
    free(b);
    nas_meas *rows = NULL, *want = NULL;
    int n = 0, nw = 0;
    if (nas_board_ingest(log, "stm32f746", &rows, &n, &e)) fail_msg("ingest: %s", e.msg);
    double *cyc = calloc((size_t)g.nops + 1, sizeof *cyc);
    assert_int_equal(nas_meas_from_graph(&g, "stm32f746", "small", cyc, 0, &want, &nw, &e), NAS_OK);
    assert_int_equal(n, nw);
    double sum = 0;
    for (int i = 0; i < n; i++) {
      assert_string_equal(rows[i].layer, want[i].layer);
      assert_int_equal(rows[i].kop, want[i].kop);
      assert_int_equal(rows[i].macs, want[i].macs);
      assert_int_equal(rows[i].in_bytes, want[i].in_bytes);
      assert_int_equal(rows[i].out_bytes, want[i].out_bytes);
      assert_int_equal(rows[i].cin, want[i].cin);
      assert_int_equal(rows[i].cout, want[i].cout);
      assert_true(rows[i].cycles > 0);
      if (i < n - 1) sum += rows[i].cycles;
    }
    assert_true(sum < rows[n - 1].cycles); /* the total covers every layer */
    free(rows), free(want), free(cyc);
#else
    test_skip_part("the board firmware run in Unicorn: built without Unicorn (apt-get install "
                   "libunicorn-dev, rebuild)");
#endif
  }
  rm_rf(dir);
  nas_target_free(t);
  nas_g8_graph_free(&g);
}

/* Runs `nas ARGS` in dir with stdout/stderr to dir/out.txt and dir/err.txt; the exit code. */
static int run_nas(const char *dir, const char *args) {
  const char *bin = getenv("NAS_BIN");
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cd %s && OMP_NUM_THREADS=1 NAS_CACHE_DIR= %s %s > out.txt 2> err.txt", dir, bin,
           args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *dir, const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  return test_slurp(path);
}

/* The CLI end to end: a checkpoint trained for a moment on Fashion-MNIST, measured on the
 * emulator (JSON, CSV), on the host and prepared for a board; usage and ingest errors. */
static void test_cli(void **state) {
  (void)state;
  if (!getenv("NAS_BIN")) test_skip("NAS_BIN not set (run through ctest)");
  char dir[] = "/tmp/nas_emu_test_XXXXXX";
  if (!mkdtemp(dir)) fail_msg("mkdtemp");
  assert_int_equal(run_nas(dir, "measure --target stm32f446re"), 2);
  assert_non_null(strstr(slurp(dir, "err.txt"), "--checkpoint FILE is required"));
  assert_int_equal(run_nas(dir, "measure --checkpoint x --target stm32f446re --backend qemu"), 2);
  assert_non_null(strstr(slurp(dir, "err.txt"), "unknown back end 'qemu'"));
  assert_int_equal(run_nas(dir, "measure --checkpoint x --target stm32f446re --backend host --csv a.csv"), 2);
  assert_int_equal(run_nas(dir, "measure --checkpoint x --target stm32f446re --backend board"), 2);
  assert_non_null(strstr(slurp(dir, "err.txt"), "needs --emit DIR"));
  assert_int_equal(run_nas(dir, "measure --checkpoint missing.ckpt --target stm32f446re --backend host"), 1);
  char path[512];
  snprintf(path, sizeof path, "%s/log.txt", dir);
  write_text(path, BOARD_LOG);
  assert_int_equal(run_nas(dir, "latency ingest log.txt --target stm32f446re --out m.csv"), 0);
  assert_non_null(strstr(slurp(dir, "m.csv"), "stm32f446re,kws,op0,conv,1000,490,800,3x3,1,8,5000,"));
  assert_int_equal(run_nas(dir, "latency ingest log.txt --target stm32f746"), 1);
  snprintf(path, sizeof path, "%s/bad.txt", dir);
  write_text(path, "NAS-BEGIN,v1,m,stm32f446re,1,1\nNAS,0,0,op0,conv,1,2,3,1,1,1\nNAS-END\n");
  assert_int_equal(run_nas(dir, "latency ingest bad.txt --target stm32f446re"), 1);
  const char *err = slurp(dir, "err.txt");
  assert_non_null(strstr(err, "bad.txt:2: 11 fields"));
  assert_ptr_equal(strchr(err, '\n'), strrchr(err, '\n')); /* one line */
  assert_int_equal(run_nas(dir, "latency ingest --target stm32f446re"), 2);

  /* A checkpoint (skipped when Fashion-MNIST is not installed). */
  snprintf(path, sizeof path, "%s/arch.json", dir);
  write_text(path, "{\"name\":\"tiny\",\"input\":[28,28,1],\"classes\":10,\"layers\":["
                   "{\"op\":\"conv\",\"out\":4,\"k\":3,\"stride\":2,\"act\":\"relu\"},"
                   "{\"op\":\"dsconv\",\"out\":8,\"k\":3,\"stride\":2},{\"op\":\"gap\"},"
                   "{\"op\":\"fc\",\"out\":10}]}");
  if (access("/usr/share/datasets/fashion-mnist", R_OK) != 0) {
    rm_rf(dir);
    test_skip("the checkpoint part: Fashion-MNIST not installed in /usr/share/datasets/"
              "fashion-mnist (scripts/setup.sh)");
  }
  if (run_nas(dir, "train --arch arch.json --dataset fashion-mnist --epochs 1 --train-limit 300 "
                   "--threads 1 --save t.ckpt") != 0)
    fail_msg("nas train: %s", slurp(dir, "err.txt"));
  assert_int_equal(run_nas(dir, "measure --checkpoint t.ckpt --target stm32f446re --backend host "
                                "--runs 3 --calib-samples 100"), 0);
  assert_non_null(strstr(slurp(dir, "out.txt"), "median of 3 runs"));
  assert_int_equal(run_nas(dir, "measure --checkpoint t.ckpt --target stm32f746 --backend board "
                                "--emit fw --runs 2 --calib-samples 100"), 0);
  snprintf(path, sizeof path, "%s/fw/main.c", dir);
  assert_int_equal(access(path, R_OK), 0);
  if (have_emu_for("nas measure on the emulator")) {
    assert_int_equal(run_nas(dir, "measure --checkpoint t.ckpt --target stm32f446re --json "
                                  "--csv e.csv --calib-samples 100"), 0);
    const char *out = slurp(dir, "out.txt");
    assert_non_null(strstr(out, "\"output_matches_host\":true"));
    assert_non_null(strstr(out, "\"core\":\"cortex-m4\""));
    /* MACs as nas profile counts them: none for gap, reshape (it said "macs 16", the element
     * count; the lowering puts a reshape between gap and fc) */
    assert_non_null(strstr(out, "\"op\":\"gap\",\"macs\":0,"));
    assert_non_null(strstr(out, "\"op\":\"reshape\",\"macs\":0,"));
    /* the text report names the firmware's sections, not "SRAM" (profile's peak SRAM) */
    assert_int_equal(run_nas(dir, "measure --checkpoint t.ckpt --target stm32f446re "
                                  "--calib-samples 100"), 0);
    out = slurp(dir, "out.txt");
    assert_non_null(strstr(out, ".bss "));
    assert_null(strstr(out, ", SRAM "));
    snprintf(path, sizeof path, "%s/e.csv", dir);
    nas_meas *rows = NULL;
    int n = 0;
    nas_err e = {0};
    if (nas_meas_read_csv(path, "stm32f446re", 180, &rows, &n, &e)) fail_msg("csv: %s", e.msg);
    assert_int_equal(n, 6); /* conv, dwconv, pwconv, gap, fc + the model row */
    assert_string_equal(rows[0].model, "tiny@emulator");
    assert_true(rows[0].cycles > 0 && rows[n - 1].kop == -1);
    free(rows);
    assert_int_equal(run_nas(dir, "measure --checkpoint t.ckpt --target cortex-m55 --calib-samples 100"), 1);
    assert_non_null(strstr(slurp(dir, "err.txt"), "no emulation"));
  }
  rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_emulated_equals_host),
      cmocka_unit_test(test_m0plus),
      cmocka_unit_test(test_blocks_equal_per_insn),
      cmocka_unit_test(test_kernel_cache),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_ingest),
      cmocka_unit_test(test_rows_match_pricing),
      cmocka_unit_test(test_board_emit),
      cmocka_unit_test(test_cli),
  };
  return test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
