/*
 * DWARF call-frame (CFI) unwinding of one frame, x86_64; shared by the CPU
 * sampler (inside its signal handler) and the heap profiler (inside
 * malloc).  Both libraries compile their own copy, hidden, so they never
 * bind to each other's.
 *
 * Every ELF object carries .eh_frame (the rules that give a caller's
 * registers from a callee's at any instruction) and .eh_frame_hdr, a table
 * sorted by function start address that the loader maps into memory.  To
 * unwind a frame we binary-search the table for the FDE (frame description
 * entry) covering the PC, decode it and its CIE (common information entry),
 * run their call-frame instructions up to the PC, and apply the resulting
 * rules: CFA (canonical frame address, the caller's stack pointer) = rsp
 * or rbp + offset, return address and rbp read from the stack at
 * CFA + offset.  Formats: the LSB "Exception Frames" chapter and DWARF 4
 * section 6.4.
 *
 * Nothing here allocates, locks or calls libc: reads of unwind data go
 * through the caller's `readable` check and reads of the stack stay in
 * [lo, hi), and the CFA must move up the stack, so bad tables or stacks end
 * the walk instead of faulting.
 */
#ifndef PPROF_PY_CFI_H_
#define PPROF_PY_CFI_H_

#include <stddef.h>
#include <stdint.h>

#define PP_CFI_HIDDEN __attribute__((visibility("hidden")))

/* The unwind tables of one loaded object. */
struct pp_cfi_source {
  uintptr_t hdr;    /* .eh_frame_hdr in memory */
  uintptr_t table;  /* its search table: pairs of int32 offsets from hdr */
  uintptr_t count;  /* entries in the table */
  /* 1 if [addr, addr + len) may be read */
  int (*readable)(const void *ctx, uintptr_t addr, size_t len);
  const void *ctx;
};

/* Fills table/count from the .eh_frame_hdr at `hdr` (readable for 12
 * bytes); 0 if it is not in the usual form (version 1, datarel sdata4
 * table). */
PP_CFI_HIDDEN int pp_cfi_parse_hdr(uintptr_t hdr, uintptr_t *table, uintptr_t *count);

/* The unwind rule at one PC, in the form the walk applies:
 * CFA = (rbp or rsp) + cfa_off; return address at CFA + ra_off; the
 * caller's rbp unchanged, saved at CFA + rbp_off, or equal to
 * CFA + rbp_off. */
enum { PP_CFI_RBP_SAME = 0, PP_CFI_RBP_SAVED = 1, PP_CFI_RBP_VALUE = 2 };
#define PP_CFI_SAVED_REGS 5
struct pp_cfi_row {
  uint8_t cfa_from_rbp;
  uint8_t outermost;     /* return address undefined: the last frame */
  uint8_t rbp_rule;
  int32_t cfa_off, ra_off, rbp_off;
  /* The other callee-saved registers, rbx and r12-r15 (bit i of the masks,
   * saved_off[i]), which the walks above do not need but the leak checker
   * does (a caller's pointer held in a register lives in the slot where a
   * callee saved it): saved_mask, saved at CFA + saved_off[i];
   * unknown_mask, a rule the row cannot express; neither, unchanged. */
  uint8_t saved_mask, unknown_mask;
  int32_t saved_off[PP_CFI_SAVED_REGS];
};

/* Computes the row for pc (exact: an interrupted instruction, not a return
 * address); 0 when no usable rule covers it. */
PP_CFI_HIDDEN int pp_cfi_row(const struct pp_cfi_source *src, uintptr_t pc, int exact, struct pp_cfi_row *out);

/* Applies a row: pc/sp/fp become the caller's.  [lo, hi): the thread's
 * stack.  1 done, 0 a stack read out of bounds, -1 outermost frame or
 * inconsistent stack. */
PP_CFI_HIDDEN int pp_cfi_apply(const struct pp_cfi_row *row, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp,
                               uintptr_t lo, uintptr_t hi);

/* Unwinds one frame: pc/sp/fp become the caller's.  exact: pc is an
 * interrupted instruction, not a return address.  [lo, hi): the thread's
 * stack.  Returns 1 on success, 0 when no usable rule covers pc (the
 * caller may try frame pointers), -1 at the outermost frame or when the
 * stack is inconsistent. */
PP_CFI_HIDDEN int pp_cfi_step(const struct pp_cfi_source *src, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp,
                              int exact, uintptr_t lo, uintptr_t hi);

#endif
