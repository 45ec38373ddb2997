/* gperftools' stacktrace.h: GetStackTrace, GetStackFrames and their
 * WithContext forms, in both libraries (libtcmalloc and libprofiler both
 * export them; each library binds to its own copy).  The functions have C++
 * linkage in gperftools, so they are defined here under their mangled names.
 *
 * Unwinding: DWARF call-frame rules (cfi.c) of the object holding each
 * return address, found with glibc's _dl_find_object (lock-free, does not
 * allocate: usable in signal handlers and malloc hooks); frames without
 * rules, or a glibc before 2.35, fall back to frame pointers.  Every stack
 * read stays inside the thread's stack [sp, top): top is the thread
 * descriptor, which glibc places just above the stack of every thread it
 * creates, or __libc_stack_end for the main thread.  On any other stack
 * (an alternate signal stack, a user-provided stack) only the first frame
 * is reported.
 */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "cfi.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_STACK_BYTES ((uintptr_t)1 << 30)

#if defined(__x86_64__) && defined(DLFO_STRUCT_HAS_EH_DBASE)
#define HAVE_DL_FIND_OBJECT 1
extern int _dl_find_object(void *pc, struct dl_find_object *result) __attribute__((weak));
#endif
extern void *__libc_stack_end;

/* The top (highest address) of the stack holding sp, 0 if unknown. */
static uintptr_t stack_top(uintptr_t sp) {
    uintptr_t self = (uintptr_t)pthread_self();
    if (self > sp && self - sp < MAX_STACK_BYTES) return self;
    uintptr_t main_end = (uintptr_t)__libc_stack_end;
    /* arguments and environment lie above __libc_stack_end, also mapped */
    if (main_end > sp && main_end - sp < MAX_STACK_BYTES) return main_end + 4096;
    return 0;
}

struct byte_range {
    uintptr_t lo, hi;
};

static int range_readable(const void *ctx, uintptr_t addr, size_t len) {
    const struct byte_range *r = ctx;
    return addr >= r->lo && addr <= r->hi && len <= r->hi - addr;
}

/* One frame up: pc, sp, fp become the caller's.  1 done, 0 at the end. */
static int step(uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, int exact, uintptr_t lo, uintptr_t hi) {
#ifdef HAVE_DL_FIND_OBJECT
    struct dl_find_object fo;
    if (_dl_find_object && _dl_find_object((void *)(exact ? *pc : *pc - 1), &fo) == 0 && fo.dlfo_eh_frame) {
        struct byte_range r = {(uintptr_t)fo.dlfo_eh_frame, (uintptr_t)fo.dlfo_map_end};
        uintptr_t table, count;
        if (range_readable(&r, r.lo, 12) && pp_cfi_parse_hdr(r.lo, &table, &count)) {
            struct pp_cfi_source src = {r.lo, table, count, range_readable, &r};
            int res = pp_cfi_step(&src, pc, sp, fp, exact, lo, hi);
            if (res != 0) return res > 0;
        }
    }
#endif
    /* frame pointers: [fp] = caller's fp, [fp + 8] = return address */
    uintptr_t f = *fp;
    if ((f & 7) || f < *sp || f + 16 > hi || f - *sp > ((uintptr_t)8 << 20)) return 0;
    *pc = ((uintptr_t *)f)[1];
    *fp = ((uintptr_t *)f)[0];
    *sp = f + 16;
    return 1;
}

/* Walks from a frame whose caller resumes at pc with sp/fp; stores the
 * return addresses after skipping skip of them. */
static int walk(uintptr_t pc, uintptr_t sp, uintptr_t fp, int exact, void **result, int *sizes, int max_depth,
                int skip) {
    uintptr_t lo = sp, hi = stack_top(sp);
    int n = 0;
    while (n < max_depth) {
        uintptr_t before = sp;
        if (!hi || !step(&pc, &sp, &fp, exact, lo, hi) || pc < 4096) break;
        exact = 0;
        if (skip > 0) {
            skip--;
            continue;
        }
        result[n] = (void *)pc;
        if (sizes) sizes[n] = (int)(sp - before);
        n++;
    }
    return n;
}

/* The caller of the function owning `frame` (built with frame pointers)
 * resumes at [frame + 8] with sp = frame + 16 and fp = [frame]. */
__attribute__((noinline)) static int walk_from_frame(void *frame, void **result, int *sizes, int max_depth,
                                                     int skip) {
    if (max_depth <= 0) return 0;
    uintptr_t f = (uintptr_t)frame;
    uintptr_t pc = ((uintptr_t *)f)[1], fp = ((uintptr_t *)f)[0], sp = f + 16;
    if (skip == 0) {
        result[0] = (void *)pc;
        if (sizes) sizes[0] = 0;
        return 1 + walk(pc, sp, fp, 0, result + 1, sizes ? sizes + 1 : NULL, max_depth - 1, 0);
    }
    return walk(pc, sp, fp, 0, result, sizes, max_depth, skip - 1);
}

/* From a signal handler's context: the interrupted function's callers. */
static int walk_from_context(const void *ucv, void **result, int *sizes, int max_depth) {
#if defined(__x86_64__)
    const ucontext_t *uc = ucv;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    if (max_depth <= 0) return 0;
    return walk(pc, sp, fp, 1, result, sizes, max_depth, 0);
#else
    (void)ucv;
    (void)result;
    (void)sizes;
    (void)max_depth;
    return 0;
#endif
}

EXPORT __attribute__((noinline)) int pp_GetStackTrace(void **result, int max_depth, int skip_count)
    __asm__("_Z13GetStackTracePPvii");
int pp_GetStackTrace(void **result, int max_depth, int skip_count) {
    return walk_from_frame(__builtin_frame_address(0), result, NULL, max_depth, skip_count);
}

EXPORT __attribute__((noinline)) int pp_GetStackFrames(void **result, int *sizes, int max_depth, int skip_count)
    __asm__("_Z14GetStackFramesPPvPiii");
int pp_GetStackFrames(void **result, int *sizes, int max_depth, int skip_count) {
    return walk_from_frame(__builtin_frame_address(0), result, sizes, max_depth, skip_count);
}

/* With a context the frames of the signal handler are not walked, so
 * skip_count (which callers use to drop them) is not applied. */
EXPORT __attribute__((noinline)) int pp_GetStackTraceWithContext(void **result, int max_depth, int skip_count,
                                                                 const void *uc)
    __asm__("_Z24GetStackTraceWithContextPPviiPKv");
int pp_GetStackTraceWithContext(void **result, int max_depth, int skip_count, const void *uc) {
    if (uc) return walk_from_context(uc, result, NULL, max_depth);
    return walk_from_frame(__builtin_frame_address(0), result, NULL, max_depth, skip_count);
}

EXPORT __attribute__((noinline)) int pp_GetStackFramesWithContext(void **result, int *sizes, int max_depth,
                                                                  int skip_count, const void *uc)
    __asm__("_Z25GetStackFramesWithContextPPvPiiiPKv");
int pp_GetStackFramesWithContext(void **result, int *sizes, int max_depth, int skip_count, const void *uc) {
    if (uc) return walk_from_context(uc, result, sizes, max_depth);
    return walk_from_frame(__builtin_frame_address(0), result, sizes, max_depth, skip_count);
}
