/* gperftools' MallocHook (malloc_hook_c.h, malloc_hook.h): functions a
 * program registers to be called on every allocation and free, and around
 * mmap, munmap, mremap and sbrk.
 *
 * Each kind of hook has a list of HOOK_SLOTS function pointers, like
 * gperftools' (Add fills the first empty slot, Remove clears it, the
 * deprecated Set* form owns one extra slot).  Lists are read without a lock:
 * a slot is one pointer, written atomically under the writers' lock, so a
 * concurrent call sees the hook before or after the change.
 *
 * Allocations: api.c tests pp_hooks_on once per malloc/free and calls
 * pp_run_new_hooks / pp_run_delete_hooks.  The runners set a per-thread
 * guard while hooks run: a hook that allocates (or calls mmap) does not
 * re-enter the hooks, so it cannot recurse forever; those nested calls are
 * simply not reported, which is what gperftools' own hooks expect.
 *
 * mmap & co: like libtcmalloc, this library defines mmap, mmap64, munmap,
 * mremap and sbrk.  Without hooks they are the system calls (glibc's
 * wrappers add nothing else on x86_64 Linux); with hooks they call the
 * pre-hooks, the replacement if one is set, the system call and the
 * post-hooks.  The allocator's own mappings go through them too, as in
 * gperftools.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gperftools/malloc_hook_c.h"
#include "internal.h"

#define EXPORT __attribute__((visibility("default")))
#define HOOK_SLOTS 7                  /* gperftools' kHookListMaxValues */
#define SINGULAR HOOK_SLOTS           /* the slot of the deprecated Set*Hook() */

typedef void (*any_hook)(void);

struct hook_list {
    any_hook slot[HOOK_SLOTS + 1];
};

static pp_lock_t hooks_lock;
volatile int pp_hooks_on;
static __thread int in_hook __attribute__((tls_model("initial-exec")));

enum { NEW, DELETE, PRE_MMAP, MMAP, MMAP_REPLACE, MUNMAP, MUNMAP_REPLACE, MREMAP, PRE_SBRK, SBRK, KINDS };
static struct hook_list lists[KINDS];
static volatile int mmap_hooks_on;    /* some hook of the mmap family is set */

/* pp_hooks_on bits: user new/delete hooks (this file), the heap checker's
   tracking (PP_HOOKS_HEAPCHECK, set by gperftools_heapcheck.cc) */
#define ON_USER 1
_Static_assert(PP_HOOKS_HEAPCHECK != ON_USER, "distinct bits");

static int list_empty(int kind) {
    for (int i = 0; i <= HOOK_SLOTS; i++)
        if (__atomic_load_n(&lists[kind].slot[i], __ATOMIC_RELAXED)) return 0;
    return 1;
}

/* pp_hooks_on's mirror bit in free()'s one test; hooks_lock held */
static void store_hooks_on(int on) {
    __atomic_store_n(&pp_hooks_on, on, __ATOMIC_RELEASE);
    if (on) __atomic_fetch_or(&pp_free_checks, PP_FREE_CHECK_HOOKS, __ATOMIC_SEQ_CST);
    else __atomic_fetch_and(&pp_free_checks, ~PP_FREE_CHECK_HOOKS, __ATOMIC_SEQ_CST);
}

/* Recomputes the flags the entry points test; hooks_lock held. */
static void update_flags(void) {
    int user = !list_empty(NEW) || !list_empty(DELETE);
    int old = pp_hooks_on;
    store_hooks_on(user ? (old | ON_USER) : (old & ~ON_USER));
    int m = 0;
    for (int k = PRE_MMAP; k < KINDS; k++) m |= !list_empty(k);
    __atomic_store_n(&mmap_hooks_on, m, __ATOMIC_RELEASE);
}

void pp_hooks_set_bit(int bit, int on) {
    pp_lock(&hooks_lock);
    int old = pp_hooks_on;
    store_hooks_on(on ? (old | bit) : (old & ~bit));
    pp_unlock(&hooks_lock);
}

/* capacity: HOOK_SLOTS for the lists, 1 for the replacements */
static int add_hook(int kind, any_hook h, int capacity) {
    if (!h) return 0;
    int ok = 0;
    pp_lock(&hooks_lock);
    for (int i = 0; i < capacity; i++)
        if (!lists[kind].slot[i]) {
            __atomic_store_n(&lists[kind].slot[i], h, __ATOMIC_RELEASE);
            ok = 1;
            break;
        }
    update_flags();
    pp_unlock(&hooks_lock);
    return ok;
}

static int remove_hook(int kind, any_hook h) {
    if (!h) return 0;
    int ok = 0;
    pp_lock(&hooks_lock);
    for (int i = 0; i <= HOOK_SLOTS; i++)
        if (lists[kind].slot[i] == h) {
            __atomic_store_n(&lists[kind].slot[i], NULL, __ATOMIC_RELEASE);
            ok = 1;
            break;
        }
    update_flags();
    pp_unlock(&hooks_lock);
    return ok;
}

static any_hook set_hook(int kind, any_hook h) {
    pp_lock(&hooks_lock);
    any_hook old = __atomic_exchange_n(&lists[kind].slot[SINGULAR], h, __ATOMIC_ACQ_REL);
    update_flags();
    pp_unlock(&hooks_lock);
    return old;
}

#define EACH_HOOK(kind, type, h) \
    for (int i_ = 0; i_ <= HOOK_SLOTS; i_++) \
        for (type h = (type)__atomic_load_n(&lists[kind].slot[i_], __ATOMIC_ACQUIRE); h; h = NULL)

/* ------------------------------------------------------------------ */
/* new / delete                                                         */

void pp_run_new_hooks(const void *p, size_t n) {
    if (in_hook) return;
    in_hook = 1;
    int on = pp_hooks_on;
    if (on & ~ON_USER) pp_hc_note_new(p);
    if (on & ON_USER) {
        EACH_HOOK(NEW, MallocHook_NewHook, h) h(p, n);
    }
    in_hook = 0;
}

void pp_run_delete_hooks(const void *p) {
    if (in_hook) return;
    in_hook = 1;
    int on = pp_hooks_on;
    if (on & ON_USER) {
        EACH_HOOK(DELETE, MallocHook_DeleteHook, h) h(p);
    }
    if (on & ~ON_USER) pp_hc_note_delete(p);
    in_hook = 0;
}

#define HOOK_API(Name, KIND, Type) \
    EXPORT int MallocHook_Add##Name##Hook(Type h) { return add_hook(KIND, (any_hook)h, HOOK_SLOTS); } \
    EXPORT int MallocHook_Remove##Name##Hook(Type h) { return remove_hook(KIND, (any_hook)h); } \
    EXPORT Type MallocHook_Set##Name##Hook(Type h) { return (Type)set_hook(KIND, (any_hook)h); }

HOOK_API(New, NEW, MallocHook_NewHook)
HOOK_API(Delete, DELETE, MallocHook_DeleteHook)
HOOK_API(PreMmap, PRE_MMAP, MallocHook_PreMmapHook)
HOOK_API(Mmap, MMAP, MallocHook_MmapHook)
HOOK_API(Munmap, MUNMAP, MallocHook_MunmapHook)
HOOK_API(Mremap, MREMAP, MallocHook_MremapHook)
HOOK_API(PreSbrk, PRE_SBRK, MallocHook_PreSbrkHook)
HOOK_API(Sbrk, SBRK, MallocHook_SbrkHook)

/* At most one replacement of each kind: Set fails while one is set. */
EXPORT int MallocHook_SetMmapReplacement(MallocHook_MmapReplacement h) {
    return add_hook(MMAP_REPLACE, (any_hook)h, 1);
}
EXPORT int MallocHook_RemoveMmapReplacement(MallocHook_MmapReplacement h) {
    return remove_hook(MMAP_REPLACE, (any_hook)h);
}
EXPORT int MallocHook_SetMunmapReplacement(MallocHook_MunmapReplacement h) {
    return add_hook(MUNMAP_REPLACE, (any_hook)h, 1);
}
EXPORT int MallocHook_RemoveMunmapReplacement(MallocHook_MunmapReplacement h) {
    return remove_hook(MUNMAP_REPLACE, (any_hook)h);
}

/* ------------------------------------------------------------------ */
/* MallocHook_GetCallerStackTrace: the stack above this library's frames  */

int pp_GetStackTrace(void **result, int max_depth, int skip_count) __asm__("_Z13GetStackTracePPvii");

static uintptr_t lib_lo, lib_hi;     /* this library's mapping */

/* With glibc's _dl_find_object: lock-free and allocation-free, so safe
   inside the allocator (the page heap calls this with its lock held). */
extern int _dl_find_object(void *pc, struct dl_find_object *result) __attribute__((weak));

static void find_own_mapping(void) {
    struct dl_find_object fo;
    if (_dl_find_object && _dl_find_object((void *)(uintptr_t)&find_own_mapping, &fo) == 0) {
        lib_lo = (uintptr_t)fo.dlfo_map_start;
        lib_hi = (uintptr_t)fo.dlfo_map_end;
    }
}

#define CALLER_DEPTH 64

int pp_stack_above_library(void **result, int max_depth, int skip_count) {
    if (max_depth <= 0) return 0;
    if (!lib_hi) find_own_mapping();
    void *pcs[CALLER_DEPTH];
    int n = pp_GetStackTrace(pcs, CALLER_DEPTH, 0);
    /* frames up to the last one in this library are the hook, the runner
       and the allocation function; the rest is the caller's stack */
    int first = 0;
    for (int i = 0; i < n; i++)
        if ((uintptr_t)pcs[i] >= lib_lo && (uintptr_t)pcs[i] < lib_hi) first = i + 1;
    int out = 0;
    for (int i = first + skip_count; i < n && out < max_depth; i++) result[out++] = pcs[i];
    return out;
}

EXPORT int MallocHook_GetCallerStackTrace(void **result, int max_depth, int skip_count) {
    if (!in_hook) return 0;
    return pp_stack_above_library(result, max_depth, skip_count);
}

/* ------------------------------------------------------------------ */
/* the invokers (MallocHook::Invoke*Slow in gperftools; also used below) */

void pp_invoke_new_hook(const void *p, size_t n) { EACH_HOOK(NEW, MallocHook_NewHook, h) h(p, n); }
void pp_invoke_delete_hook(const void *p) { EACH_HOOK(DELETE, MallocHook_DeleteHook, h) h(p); }
void pp_invoke_pre_mmap_hook(const void *start, size_t size, int prot, int flags, int fd, off_t off) {
    EACH_HOOK(PRE_MMAP, MallocHook_PreMmapHook, h) h(start, size, prot, flags, fd, off);
}
void pp_invoke_mmap_hook(const void *result, const void *start, size_t size, int prot, int flags, int fd,
                         off_t off) {
    EACH_HOOK(MMAP, MallocHook_MmapHook, h) h(result, start, size, prot, flags, fd, off);
}
int pp_invoke_mmap_replacement(const void *start, size_t size, int prot, int flags, int fd, off_t off,
                               void **result) {
    EACH_HOOK(MMAP_REPLACE, MallocHook_MmapReplacement, h) {
        if (h(start, size, prot, flags, fd, off, result)) return 1;
    }
    return 0;
}
void pp_invoke_munmap_hook(const void *p, size_t size) {
    EACH_HOOK(MUNMAP, MallocHook_MunmapHook, h) h(p, size);
}
int pp_invoke_munmap_replacement(const void *p, size_t size, int *result) {
    EACH_HOOK(MUNMAP_REPLACE, MallocHook_MunmapReplacement, h) {
        if (h(p, size, result)) return 1;
    }
    return 0;
}
void pp_invoke_mremap_hook(const void *result, const void *old, size_t old_size, size_t new_size, int flags,
                           const void *new_addr) {
    EACH_HOOK(MREMAP, MallocHook_MremapHook, h) h(result, old, old_size, new_size, flags, new_addr);
}
void pp_invoke_pre_sbrk_hook(ptrdiff_t increment) { EACH_HOOK(PRE_SBRK, MallocHook_PreSbrkHook, h) h(increment); }
void pp_invoke_sbrk_hook(const void *result, ptrdiff_t increment) {
    EACH_HOOK(SBRK, MallocHook_SbrkHook, h) h(result, increment);
}

/* ------------------------------------------------------------------ */
/* mmap family                                                          */

void *pp_raw_mmap(void *start, size_t len, int prot, int flags, int fd, off_t off) {
    return (void *)syscall(SYS_mmap, start, len, prot, flags, fd, off);
}

int pp_raw_munmap(void *start, size_t len) { return (int)syscall(SYS_munmap, start, len); }

static void *hooked_mmap(void *start, size_t len, int prot, int flags, int fd, off_t off) {
    if (in_hook) return pp_raw_mmap(start, len, prot, flags, fd, off);
    in_hook = 1;
    pp_invoke_pre_mmap_hook(start, len, prot, flags, fd, off);
    void *r;
    if (!pp_invoke_mmap_replacement(start, len, prot, flags, fd, off, &r))
        r = pp_raw_mmap(start, len, prot, flags, fd, off);
    int saved = errno;
    pp_invoke_mmap_hook(r, start, len, prot, flags, fd, off);
    errno = saved;
    in_hook = 0;
    return r;
}

/* MemoryRegionMap's record (gperftools_regions.c), while the leak checker
   runs: every mapping with the return address of mmap's caller */
static __attribute__((noinline)) void *record_mmap(void *r, size_t len, const void *caller) {
    if (r != MAP_FAILED) {
        int saved = errno;
        pp_regions_mapped(r, len, caller);
        errno = saved;
    }
    return r;
}

EXPORT void *mmap(void *start, size_t len, int prot, int flags, int fd, off_t off) {
    void *r = PP_UNLIKELY(mmap_hooks_on) ? hooked_mmap(start, len, prot, flags, fd, off)
                                         : pp_raw_mmap(start, len, prot, flags, fd, off);
    if (PP_UNLIKELY(pp_regions_on)) return record_mmap(r, len, __builtin_return_address(0));
    return r;
}

EXPORT void *mmap64(void *start, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

static int unhooked_munmap(void *start, size_t len) {
    int r = pp_raw_munmap(start, len);
    if (PP_UNLIKELY(pp_regions_on) && r == 0) pp_regions_unmapped(start, len);
    return r;
}

EXPORT int munmap(void *start, size_t len) {
    if (PP_LIKELY(!mmap_hooks_on) || in_hook) return unhooked_munmap(start, len);
    in_hook = 1;
    pp_invoke_munmap_hook(start, len);
    int r;
    if (!pp_invoke_munmap_replacement(start, len, &r)) r = unhooked_munmap(start, len);
    in_hook = 0;
    return r;
}

EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...) {
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    void *r = (void *)syscall(SYS_mremap, old, old_size, new_size, flags, new_addr);
    if (PP_UNLIKELY(pp_regions_on) && r != MAP_FAILED) {
        int saved = errno;
        pp_regions_unmapped(old, old_size);
        pp_regions_mapped(r, new_size, __builtin_return_address(0));
        errno = saved;
    }
    if (PP_UNLIKELY(mmap_hooks_on) && !in_hook) {
        int saved = errno;
        in_hook = 1;
        pp_invoke_mremap_hook(r, old, old_size, new_size, flags, new_addr);
        in_hook = 0;
        errno = saved;
    }
    return r;
}

extern void *__sbrk(intptr_t increment);   /* glibc's sbrk */

EXPORT void *sbrk(intptr_t increment) {
    if (PP_LIKELY(!mmap_hooks_on) || in_hook) return __sbrk(increment);
    in_hook = 1;
    pp_invoke_pre_sbrk_hook(increment);
    void *r = __sbrk(increment);
    int saved = errno;
    pp_invoke_sbrk_hook(r, increment);
    errno = saved;
    in_hook = 0;
    return r;
}
