/* latency/emu_decode.c: classifying Thumb/Thumb-2 instructions for the emulator's counts
 * (see emulator.h), and the per-core CPI tables that turn counts into cycles.
 *
 * The classifier follows the encoding tables of the ARMv7-M Architecture Reference Manual
 * (A5.2 "16-bit Thumb instruction encoding", A5.3 "32-bit Thumb instruction encoding"); it
 * only needs the instruction length and the group, not the operands, except the register
 * lists of multiple transfers and whether an instruction writes the PC. */
#include <string.h>

#include "latency/emulator.h"

const char *const nas_icls_names[] = {"ldst", "mul", "branch", "other"};
_Static_assert(sizeof nas_icls_names / sizeof nas_icls_names[0] == NAS_IC_COUNT, "class names");

static int popcount16(unsigned v) {
  int n = 0;
  for (v &= 0xffffu; v; v &= v - 1) n++;
  return n;
}

/* One 16-bit instruction. */
static void classify16(unsigned hw, nas_icount *c) {
  const unsigned op6 = hw >> 10;
  int cls = NAS_IC_OTHER;
  if (op6 <= 0x0f) { /* shift (immediate), add, subtract, move, compare */
    cls = NAS_IC_OTHER;
  } else if (op6 == 0x10) { /* data processing; MULS is opcode 1101 */
    cls = (hw & 0xffc0u) == 0x4340u ? NAS_IC_MUL : NAS_IC_OTHER;
  } else if (op6 == 0x11) { /* special data processing, BX/BLX */
    if ((hw & 0xff00u) == 0x4700u) {
      cls = NAS_IC_BRANCH, c->flow++;
    } else if ((hw & 0xff00u) == 0x4400u || (hw & 0xff00u) == 0x4600u) { /* ADD/MOV (high) */
      unsigned rd = ((hw >> 4) & 8u) | (hw & 7u);
      if (rd == 15) cls = NAS_IC_BRANCH, c->flow++;
    }
  } else if (op6 <= 0x27) { /* 0x12..0x13 LDR literal; 0x14..0x27 load/store single */
    cls = NAS_IC_LDST;
  } else if (op6 <= 0x2b) { /* ADR, ADD (SP plus immediate) */
    cls = NAS_IC_OTHER;
  } else if (op6 <= 0x2f) { /* miscellaneous 16-bit */
    if ((hw & 0xf500u) == 0xb100u) { /* CBZ/CBNZ */
      cls = NAS_IC_BRANCH, c->flow++;
    } else if ((hw & 0xfe00u) == 0xb400u) { /* PUSH */
      cls = NAS_IC_LDST;
      int n = popcount16(hw & 0x1ffu);
      if (n > 1) c->xfer += n - 1;
    } else if ((hw & 0xfe00u) == 0xbc00u) { /* POP */
      cls = NAS_IC_LDST;
      int n = popcount16(hw & 0x1ffu);
      if (n > 1) c->xfer += n - 1;
      if (hw & 0x100u) c->flow++;
    }
  } else if (op6 <= 0x33) { /* STM / LDM */
    cls = NAS_IC_LDST;
    int n = popcount16(hw & 0xffu);
    if (n > 1) c->xfer += n - 1;
  } else if (op6 <= 0x37) { /* conditional branch, UDF (cond 1110), SVC (cond 1111) */
    unsigned cond = (hw >> 8) & 0xfu;
    if (cond < 0xe) cls = NAS_IC_BRANCH, c->flow++;
  } else if (op6 <= 0x39) { /* unconditional branch */
    cls = NAS_IC_BRANCH, c->flow++;
  }
  c->n[cls]++;
}

/* One 32-bit instruction (hw1 first halfword, hw2 second). */
static void classify32(unsigned hw1, unsigned hw2, nas_icount *c) {
  const unsigned op1 = (hw1 >> 11) & 3u, op2 = (hw1 >> 4) & 0x7fu, op = hw2 >> 15;
  int cls = NAS_IC_OTHER;
  if (op1 == 1) {
    if ((op2 & 0x64u) == 0x00u) { /* load/store multiple (LDM, STM, PUSH.W, POP.W) */
      cls = NAS_IC_LDST;
      int n = popcount16(hw2);
      if (n > 1) c->xfer += n - 1;
      if ((hw1 & 0x10u) && (hw2 & 0x8000u)) c->flow++; /* load with PC in the list */
    } else if ((op2 & 0x64u) == 0x04u) { /* load/store dual, exclusive, table branch */
      if ((hw1 & 0xfff0u) == 0xe8d0u && (hw2 & 0xffe0u) == 0xf000u) {
        cls = NAS_IC_BRANCH, c->flow++; /* TBB/TBH */
      } else {
        cls = NAS_IC_LDST;
        if (hw1 & 0x40u) c->xfer += 1; /* LDRD/STRD move two registers */
      }
    } else {
      cls = NAS_IC_OTHER; /* data processing (shifted register), coprocessor */
    }
  } else if (op1 == 2) {
    if (op) { /* branches and miscellaneous control */
      const unsigned b = (hw2 >> 12) & 7u;
      if ((b & 5u) == 0) { /* B<c>.W unless op = x111xxx (MSR, MRS, hints, barriers) */
        if (((hw1 >> 7) & 7u) != 7u) cls = NAS_IC_BRANCH, c->flow++;
      } else {
        cls = NAS_IC_BRANCH, c->flow++; /* B.W, BL */
      }
    }
  } else if (op1 == 3) {
    if ((op2 & 0x71u) == 0x00u) { /* store single */
      cls = NAS_IC_LDST;
    } else if ((op2 & 0x67u) == 0x01u || (op2 & 0x67u) == 0x03u) { /* load byte/half, PLD */
      cls = NAS_IC_LDST;
    } else if ((op2 & 0x67u) == 0x05u) { /* load word */
      cls = NAS_IC_LDST;
      if ((hw2 >> 12) == 15u) c->flow++; /* LDR PC */
    } else if ((op2 & 0x78u) == 0x30u) { /* multiply, MAC, dual 16-bit MACs (SMLAD..) */
      cls = NAS_IC_MUL;
    } else if ((op2 & 0x78u) == 0x38u) { /* long multiply/MAC, divide */
      const unsigned lop = (hw1 >> 4) & 7u;
      if (lop == 1u || lop == 3u) cls = NAS_IC_OTHER, c->div++; /* SDIV, UDIV */
      else cls = NAS_IC_MUL;
    } else {
      cls = NAS_IC_OTHER; /* data processing (register), parallel add/sub, coprocessor */
    }
  }
  c->n[cls]++;
}

long long nas_thumb_classify(const uint8_t *buf, size_t len, nas_icount *c) {
  long long n = 0;
  size_t i = 0;
  while (i + 1 < len) {
    unsigned hw = (unsigned)buf[i] | ((unsigned)buf[i + 1] << 8);
    if ((hw >> 11) >= 0x1du) {
      unsigned hw2 = i + 3 < len ? ((unsigned)buf[i + 2] | ((unsigned)buf[i + 3] << 8)) : 0;
      classify32(hw, hw2, c);
      i += 4;
    } else {
      classify16(hw, c);
      i += 2;
    }
    n++;
  }
  return n;
}

/* ---- CPI tables -------------------------------------------------------------------------- *
 * Approximations, zero wait states (code and data in single-cycle memory):
 *  cortex-m4: Cortex-M4 TRM (Arm DDI 0439B r0p1, section 3.3.1, table 3-1): data processing
 *    and every multiply/MAC incl. SMULL/SMLAL and the DSP MACs 1 cycle; LDR/STR 2 (neighbouring
 *    loads/stores can pipeline to 1, so this is an upper bound); LDM/STM/PUSH/POP 1+N; branch
 *    1 not taken, 1+P taken with P = 1..3 (we take 2); SDIV/UDIV 2..12 (we take 7).
 *  cortex-m33: the Cortex-M33 TRM gives no full instruction timing table; ASSUMED equal to the
 *    Cortex-M4 figures (same three-stage, single-issue class of pipeline, single-cycle MACs
 *    with the DSP extension).
 *  cortex-m7: the Cortex-M7 TRM publishes no instruction timing table; ASSUMED from its
 *    pipeline description (six stages, dual issue, branch prediction, 64-bit TCM loads):
 *    0.6 cycles per ALU instruction (partial dual issue), 1 per load/store, multiply/MAC and
 *    not-taken branch, 1 per extra transferred register, 0.5 extra per taken branch (mostly
 *    predicted loop branches), SDIV 2..12 (7).
 *  cortex-m0plus: Cortex-M0+ TRM (Arm DDI 0484C, table 3-1 "Cortex-M0+ instruction
 *    summary"): 1 cycle data processing, 2 LDR/STR, 1+N LDM/STM/PUSH/POP, 1 MULS (single-cycle
 *    multiplier option, as STM32G0 has), branch 2 taken / 1 not taken, BL 3 (we take 2).
 * Counts are of instructions issued: an instruction inside an IT block whose condition fails
 * still counts (a core issues it; Unicorn's per-instruction hook would not report it, which is
 * why the emulator decodes whole blocks, see tests/test_emulator.c). */
int nas_cpi_for_core(int core, nas_cpi *out, nas_err *e) {
  memset(out, 0, sizeof *out);
  switch (core) {
    case NAS_CORE_M4:
    case NAS_CORE_M33:
      out->cls[NAS_IC_LDST] = 2, out->cls[NAS_IC_MUL] = 1, out->cls[NAS_IC_BRANCH] = 1;
      out->cls[NAS_IC_OTHER] = 1, out->xfer = 1, out->div_extra = 6, out->taken_extra = 2;
      out->source = core == NAS_CORE_M4
                        ? "Cortex-M4 TRM r0p1 table 3-1 (approximation, zero wait states)"
                        : "ASSUMED equal to Cortex-M4 TRM r0p1 table 3-1 (no M33 table)";
      return NAS_OK;
    case NAS_CORE_M7:
      out->cls[NAS_IC_LDST] = 1, out->cls[NAS_IC_MUL] = 1, out->cls[NAS_IC_BRANCH] = 1;
      out->cls[NAS_IC_OTHER] = 0.6, out->xfer = 1, out->div_extra = 6.4, out->taken_extra = 0.5;
      out->source = "ASSUMED from the Cortex-M7 TRM pipeline description (dual issue, branch "
                    "prediction); no published instruction timing table";
      return NAS_OK;
    case NAS_CORE_M0PLUS:
      out->cls[NAS_IC_LDST] = 2, out->cls[NAS_IC_MUL] = 1, out->cls[NAS_IC_BRANCH] = 1;
      out->cls[NAS_IC_OTHER] = 1, out->xfer = 1, out->div_extra = 0, out->taken_extra = 1;
      out->source = "Cortex-M0+ TRM table 3-1 (approximation, single-cycle multiplier)";
      return NAS_OK;
    default:
      return nas_errf(e, NAS_EINVAL,
                      "core %s: no emulation (Unicorn 2.0 models cortex-m0plus/m4/m7/m33 only)",
                      nas_core_name(core));
  }
}
