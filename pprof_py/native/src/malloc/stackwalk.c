/* Stack capture for the heap profiler and the leak checker.
 *
 * Allocation stacks are unwound from the allocation entry point's frame
 * with DWARF call-frame information (common/cfi.c), the object holding each
 * return address found with glibc's _dl_find_object (lock-free and
 * allocation-free, made for unwinders), so stacks are complete in code
 * built without frame pointers; frames without unwind tables (or a glibc
 * before 2.35) fall back to frame pointers.  Every stack read is bounded by
 * the thread's stack ([lo, hi) from __libc_stack_end for the main thread,
 * pthread_getattr_np for others) and the walk must move up the stack, so a
 * damaged stack ends the walk instead of faulting.
 *
 * The leak checker asks one more thing (pp_live_boundary): where the
 * program's live stack begins when the check runs inside exit(), i.e. the
 * stack pointer and callee-saved registers of the frame that called exit.
 * Everything below it (exit's own frames, the exit handlers, our frames and
 * the dead frames of functions that returned long ago) must not be roots,
 * or stale copies of pointers there hide leaks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <ucontext.h>

#include "cfi.h"
#include "heap.h"
#include "internal.h"

#if defined(__x86_64__) && defined(DLFO_STRUCT_HAS_EH_DBASE)
#define HAVE_DL_FIND_OBJECT 1
extern int _dl_find_object(void *pc, struct dl_find_object *result) __attribute__((weak));
#endif

struct byte_range {
    uintptr_t lo, hi;
};

static int range_readable(const void *ctx, uintptr_t addr, size_t len) {
    const struct byte_range *r = ctx;
    return addr >= r->lo && addr <= r->hi && len <= r->hi - addr;
}

/* Unwind rows by return address.  Decoding a frame's rule (finding the
   object, its FDE and CIE, running the call-frame program) costs about
   200 ns, and the same call sites allocate over and over, so computed rows
   are kept in a direct-mapped cache shared by all threads.  Each entry is
   guarded by a sequence number: a writer takes it from even to odd with a
   compare-and-swap (and skips the entry if another writer holds it), a
   reader retries nothing and treats a changing or odd number as a miss.
   "No rule here" is cached too, so frames without tables cost one lookup.
   A library unloaded and another loaded at the same address could leave
   stale rows; they can only make a stack wrong (every stack read is still
   bounds-checked), never fault. */
#define ROW_CACHE 4096
enum { ROW_NONE = 0, ROW_OK = 1 };
struct row_entry {
    uint32_t seq;
    uint32_t state;
    uintptr_t pc;
    struct pp_cfi_row row;
};
static struct row_entry row_cache[ROW_CACHE];

static int row_lookup(uintptr_t pc, struct pp_cfi_row *row, uint32_t *state) {
    struct row_entry *e = &row_cache[(pc * 0x9e3779b97f4a7c15ull) >> 52];
    uint32_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
    if (s1 & 1) return 0;
    uintptr_t key = e->pc;
    uint32_t st = e->state;
    struct pp_cfi_row r = e->row;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != s1 || key != pc || s1 == 0) return 0;
    *row = r;
    *state = st;
    return 1;
}

static void row_store(uintptr_t pc, const struct pp_cfi_row *row, uint32_t state) {
    struct row_entry *e = &row_cache[(pc * 0x9e3779b97f4a7c15ull) >> 52];
    uint32_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
    if ((s & 1) || !__atomic_compare_exchange_n(&e->seq, &s, s + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    e->pc = pc;
    e->state = state;
    e->row = *row;
    __atomic_store_n(&e->seq, s + 2, __ATOMIC_RELEASE);
}

/* The unwind row for return address pc from the tables of the object
   holding it; 0 when there are none. */
static int row_for(uintptr_t pc, struct pp_cfi_row *row) {
    uint32_t state;
    if (row_lookup(pc, row, &state)) return state == ROW_OK;
    int ok = 0;
#ifdef HAVE_DL_FIND_OBJECT
    struct dl_find_object fo;
    if (_dl_find_object && _dl_find_object((void *)(pc - 1), &fo) == 0 && fo.dlfo_eh_frame) {
        /* .eh_frame follows .eh_frame_hdr in the object's read-only segment */
        struct byte_range r = {(uintptr_t)fo.dlfo_eh_frame, (uintptr_t)fo.dlfo_map_end};
        uintptr_t table, count;
        if (range_readable(&r, r.lo, 12) && pp_cfi_parse_hdr(r.lo, &table, &count)) {
            struct pp_cfi_source src = {r.lo, table, count, range_readable, &r};
            ok = pp_cfi_row(&src, pc, 0, row);
        }
    }
#endif
    if (!ok) memset(row, 0, sizeof *row);
    row_store(pc, row, ok ? ROW_OK : ROW_NONE);
    return ok;
}

/* One frame up with DWARF rules; 0 when there are none for pc
   (pp_cfi_apply's other results pass through). */
static int cfi_step(uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, uintptr_t lo, uintptr_t hi) {
    struct pp_cfi_row row;
    if (!row_for(*pc, &row)) return 0;
    return pp_cfi_apply(&row, pc, sp, fp, lo, hi);
}

/* frame: the allocation entry point's own frame (built with a frame
   pointer): [frame] = the caller's rbp, [frame + 8] = the return address
   into the caller, whose stack pointer after the return is frame + 16. */
int pp_walk_stack(void *frame, uintptr_t lo, uintptr_t hi, void **pcs, int max) {
    uintptr_t f = (uintptr_t)frame;
    uintptr_t pc = ((uintptr_t *)f)[1], sp = f + 16, fp = ((uintptr_t *)f)[0];
    int n = 0;
    pcs[n++] = (void *)pc;
    if (!hi || f >= hi || f < lo) return n;
    while (n < max) {
        int r = cfi_step(&pc, &sp, &fp, lo, hi);
        if (r < 0) break;
        if (r == 0) {
            /* frame pointers: [fp] = caller's rbp, [fp + 8] = return address */
            if ((fp & 7) || fp < sp || fp + 16 > hi || fp - sp > ((size_t)8 << 20)) break;
            uintptr_t next = ((uintptr_t *)fp)[0];
            pc = ((uintptr_t *)fp)[1];
            sp = fp + 16;
            fp = next;
        }
        if (pc < 4096) break;
        pcs[n++] = (void *)pc;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* the live stack boundary for the leak checker                         */

#if defined(__x86_64__) && defined(HAVE_DL_FIND_OBJECT)
/* Which frame is this: ours (this library), glibc's exit(), or another. */
enum { FRAME_OTHER, FRAME_OURS, FRAME_EXIT };
static int frame_kind(uintptr_t pc) {
    static void *own_base;
    Dl_info info;
    if (!own_base && dladdr((void *)&pp_walk_stack, &info)) own_base = info.dli_fbase;
    if (!dladdr((void *)(pc - 1), &info)) return FRAME_OTHER;
    if (info.dli_fbase == own_base) return FRAME_OURS;
    if (info.dli_sname && strcmp(info.dli_sname, "exit") == 0) return FRAME_EXIT;
    return FRAME_OTHER;
}

__attribute__((noinline)) int pp_live_boundary(int through_exit, uintptr_t *sp_out, uintptr_t regs[PP_LIVE_REGS]) {
    ucontext_t uc;
    getcontext(&uc);      /* this frame's registers, and its pc and sp */
    const greg_t *g = uc.uc_mcontext.gregs;
    uintptr_t pc = (uintptr_t)g[REG_RIP], sp = (uintptr_t)g[REG_RSP], fp = (uintptr_t)g[REG_RBP];
    /* rbx, r12-r15: the order of pp_cfi_row's saved_off */
    uintptr_t cs[PP_CFI_SAVED_REGS] = {(uintptr_t)g[REG_RBX], (uintptr_t)g[REG_R12], (uintptr_t)g[REG_R13],
                                       (uintptr_t)g[REG_R14], (uintptr_t)g[REG_R15]};
    *sp_out = sp;
    tcache_t *tc = pp_tc;
    uintptr_t lo = sp, hi = tc ? tc->stack_hi : 0;
    /* on the thread's own stack only (not a signal stack): every read below
       stays in [sp, hi), memory that is mapped */
    if (!hi || sp >= hi || (tc->stack_lo && sp < tc->stack_lo)) return 0;
    int passed_exit = 0;
    for (int depth = 0; depth < 128; depth++) {
        /* (pc, sp, fp, cs): one frame's state; is it the program's? */
        int kind = frame_kind(pc);
        if (passed_exit || (!through_exit && kind == FRAME_OTHER)) {
            *sp_out = sp;
            for (int i = 0; i < PP_CFI_SAVED_REGS; i++) regs[i] = cs[i];
            regs[PP_CFI_SAVED_REGS] = fp;
            return PP_LIVE_REGS;
        }
        if (kind == FRAME_EXIT) passed_exit = 1;   /* its caller is the boundary */
        struct pp_cfi_row row;
        if (!row_for(pc, &row)) return 0;
        uintptr_t cfa = (row.cfa_from_rbp ? fp : sp) + (uintptr_t)(intptr_t)row.cfa_off;
        for (int i = 0; i < PP_CFI_SAVED_REGS; i++) {
            if (row.unknown_mask & (1u << i)) cs[i] = 0;      /* lost: not a root */
            if (!(row.saved_mask & (1u << i))) continue;
            uintptr_t slot = cfa + (uintptr_t)(intptr_t)row.saved_off[i];
            if (slot < lo || slot + 8 > hi || (slot & 7)) return 0;
            cs[i] = *(const uintptr_t *)slot;
        }
        if (pp_cfi_apply(&row, &pc, &sp, &fp, lo, hi) != 1) return 0;
    }
    return 0;
}
#else
int pp_live_boundary(int through_exit, uintptr_t *sp_out, uintptr_t regs[PP_LIVE_REGS]) {
    (void)through_exit;
    (void)regs;
    volatile uintptr_t marker = 0;
    *sp_out = (uintptr_t)&marker;
    return 0;
}
#endif
