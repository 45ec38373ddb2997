/* Page heap: runs of 8 KiB pages ("spans") for small-object spans and
 * large blocks, from mmap'ed memory.
 *
 * Free spans live on exact-size lists (1..256 pages, a bitmap finds the
 * first non-empty one) or on one best-fit list above 256 pages, split into
 * resident ("normal") and returned-to-the-OS lists.  Freed spans coalesce
 * with free neighbours of the same kind.  Free resident memory that stays
 * unused for a while goes back to the OS (madvise DONTNEED), by age.
 * Everything here runs under ph.lock; callers outside this file use the
 * pp_ph_* / pp_large_* functions, which take it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <link.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gperftools_glue.h"
#include "helper_threads.h"
#include "internal.h"
#include "malloc_extension.h"

static struct {
    pp_lock_t lock;
    span_list_t normal[MAX_PAGES_LISTS + 1], returned[MAX_PAGES_LISTS + 1];
    span_list_t large_normal, large_returned;
    size_t free_bytes, unmapped_bytes, system_bytes;
    size_t keep_bytes;              /* free resident bytes the decay leaves alone */
    uint64_t decay_ms;              /* free spans older than this go back to the OS */
    uint64_t last_decay;            /* ms, last decay pass */
    long scavenge_counter;          /* pages to free before the next steady release */
    int release_index;              /* round robin over the free lists */
    uint64_t nonempty[(MAX_PAGES_LISTS + 64) / 64];   /* bit k: normal[k] or returned[k] not empty */
    span_t *span_freelist;
} ph;

/* Knobs of gperftools' MallocExtension / tcmalloc flags (docs/gperftools-api.md):
 * - FLAGS_tcmalloc_release_rate (exported under tcmalloc's mangled name,
 *   TCMALLOC_RELEASE_RATE at start-up, MallocExtension::SetMemoryReleaseRate):
 *   the pace of the steady release below, relative to our default; 0 stops
 *   every release the page heap does by itself (steady release and decay),
 *   leaving only explicit ReleaseToSystem / ReleaseFreeMemory calls.
 * - aggressive decommit ("tcmalloc.aggressive_memory_decommit",
 *   TCMALLOC_AGGRESSIVE_DECOMMIT): every span that becomes free is released
 *   to the OS at once, so no free page stays resident. */
double pp_release_rate PP_FLAG_RELEASE_RATE = 1.0;
static int ph_aggressive;
/* - FLAGS_tcmalloc_heap_limit_mb ("tcmalloc.heap_limit_mb",
 *   TCMALLOC_HEAP_LIMIT_MB): when > 0, the page heap does not grow past
 *   this many MiB of resident heap (mapped minus released): it first
 *   releases free pages to make room, then fails the allocation (malloc
 *   returns NULL, operator new calls the new handler / throws). */
int64_t pp_heap_limit_mb PP_FLAG_HEAP_LIMIT_MB;

static span_t *span_new(uintptr_t start, size_t npages) {
    span_t *s = ph.span_freelist;
    if (s) ph.span_freelist = s->next;
    else {
        s = pp_meta_alloc(sizeof(span_t));
        if (!s) return NULL;
    }
    memset(s, 0, sizeof *s);
    s->start = start;
    s->npages = npages;
    return s;
}

static void span_delete(span_t *s) {
    s->location = SPAN_DEAD;
    s->next = ph.span_freelist;
    ph.span_freelist = s;
}

static span_list_t *free_list_for(span_t *s) {
    if (s->npages <= MAX_PAGES_LISTS)
        return s->location == SPAN_RETURNED ? &ph.returned[s->npages] : &ph.normal[s->npages];
    return s->location == SPAN_RETURNED ? &ph.large_returned : &ph.large_normal;
}

static void ph_link_free(span_t *s) {
    spanlist_push(free_list_for(s), s);
    if (s->npages <= MAX_PAGES_LISTS) ph.nonempty[s->npages >> 6] |= (uint64_t)1 << (s->npages & 63);
    if (s->location == SPAN_RETURNED) ph.unmapped_bytes += s->npages << PAGE_SHIFT;
    else ph.free_bytes += s->npages << PAGE_SHIFT;
}

static void ph_unlink_free(span_t *s) {
    spanlist_remove(s);
    size_t k = s->npages;
    if (k <= MAX_PAGES_LISTS && spanlist_empty(&ph.normal[k]) && spanlist_empty(&ph.returned[k]))
        ph.nonempty[k >> 6] &= ~((uint64_t)1 << (k & 63));
    if (s->location == SPAN_RETURNED) ph.unmapped_bytes -= s->npages << PAGE_SHIFT;
    else ph.free_bytes -= s->npages << PAGE_SHIFT;
}

/* Merge free neighbours into s (s is not on a list); returns the survivor. */
static span_t *ph_coalesce(span_t *s) {
    int merged = 0;
    for (int side = 0; side < 2; side++) {
        span_t *o = side == 0 ? pp_pagemap_get(s->start - 1) : pp_pagemap_get(s->start + s->npages);
        /* merge only spans of the same kind (resident with resident,
           released with released), like gperftools: a resident span stays
           all resident, so reusing it faults nothing in, and released
           pages are reused only when no resident span fits */
        if (!o || o->location != s->location) continue;
        /* a stale entry (a recycled span struct) is not a neighbour */
        if (side == 0 ? o->start + o->npages != s->start : o->start != s->start + s->npages) continue;
        ph_unlink_free(o);
        int loc = s->location;
        span_t *keep = o->npages >= s->npages ? o : s;
        span_t *gone = keep == o ? s : o;
        uintptr_t start = s->start < o->start ? s->start : o->start;
        keep->start = start;
        keep->npages = s->npages + o->npages;
        keep->location = (uint8_t)loc;
        keep->fresh = s->fresh && o->fresh;
        span_delete(gone);
        s = keep;
        merged = 1;
    }
    if (merged) pp_pagemap_set_ends(s);     /* once, after both sides */
    return s;
}

/* ------------------------------------------------------------------ */
/* returning free memory to the OS: by age                              */

/* A resident free span that stays unused for decay_ms goes back to the OS
 * (madvise MADV_DONTNEED; the pages stay mapped and fault in again, zero,
 * when reused).  Releasing by age rather than by the amount freed keeps a
 * program that frees and soon reuses big blocks from paying page faults
 * for memory it needs again at once (releasing in bulk above
 * 4x a threshold cost malloc-large 6x tcmalloc's page faults), while a
 * program that frees memory and goes idle gets its RSS back within about
 * 1.5 x decay_ms.  The check runs at most every decay_ms / 2: when the
 * page heap next takes a free span back, and from a background thread (below) so
 * that an idle program releases too.  Free spans record when they were
 * freed (freed_at, ms); a list's tail is its oldest span.  The decay
 * stops once no more than keep_bytes of free pages are resident
 * (PPROFPY_MALLOC_RELEASE_THRESHOLD, mallopt(M_TRIM_THRESHOLD); 0 by
 * default). */
static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);     /* vDSO: no system call, no lock */
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Returns the released span after merging with its released neighbours. */
static span_t *ph_release_span(span_t *s) {
    ph_unlink_free(s);
    madvise((void *)(s->start << PAGE_SHIFT), s->npages << PAGE_SHIFT, MADV_DONTNEED);
    s->location = SPAN_RETURNED;
    s->fresh = 0;
    s = ph_coalesce(s);
    ph_link_free(s);
    return s;
}

/* Release every resident free span (pprofpy_release_free_memory, malloc_trim). */
static void ph_release_all_locked(void) {
    while (!spanlist_empty(&ph.large_normal)) ph_release_span(ph.large_normal.head.next);
    for (int n = 1; n <= MAX_PAGES_LISTS; n++)
        while (!spanlist_empty(&ph.normal[n])) ph_release_span(ph.normal[n].head.next);
}

/* Release the spans free for at least decay_ms, oldest first in each list,
   while more than keep_bytes of free pages are resident. */
static void ph_decay_locked(uint64_t now) {
    ph.last_decay = now;
    for (int n = 0; n <= MAX_PAGES_LISTS && ph.free_bytes > ph.keep_bytes; n++) {
        span_list_t *l = n == 0 ? &ph.large_normal : &ph.normal[n];
        while (!spanlist_empty(l) && ph.free_bytes > ph.keep_bytes && now - l->head.prev->freed_at >= ph.decay_ms)
            ph_release_span(l->head.prev);
    }
}

static inline void ph_maybe_decay(uint64_t now) {
    if (PP_UNLIKELY(pp_release_rate <= 0)) return;
    if (PP_UNLIKELY(now - ph.last_decay >= ph.decay_ms / 2) && ph.free_bytes > ph.keep_bytes) ph_decay_locked(now);
}

/* The background thread: wakes every decay_ms / 2 and releases what has
 * aged.  Started the first time free pages stay in the page heap, from a
 * point where the caller holds no allocator lock (pthread_create may call
 * malloc), with every signal blocked so it never runs the program's
 * handlers; it calls nothing that allocates.  Each tick it also empties
 * the caches of exited threads parked since the last tick and the transfer
 * caches of size classes that saw no traffic since then
 * (pp_tc_flush_parked_idle, pp_central_flush_idle).  Named "pprof_py-release"
 * in ps/top.  PPROFPY_MALLOC_BACKGROUND_THREAD=0 turns it off, and it is
 * not started while the heap profiler or leak checker is on; the release
 * then happens on the page heap's next operation only.  After
 * fork() the child starts its own when it needs one. */
enum { BG_NONE = 0, BG_STARTING, BG_RUNNING, BG_OFF };
static int bg_state;

/* Set and woken by pp_ph_thread_exited: a thread ended, maybe the
   program's last (helper_threads.h); the release thread then looks more
   often for a while, as an ending thread is still listed for a moment. */
static unsigned bg_exit_poke;
static int bg_long_wait;             /* the release thread is in its long wait: a poke wakes it */

static void *bg_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, PP_HELPER_PREFIX "release", 0, 0, 0);
    int quick = 0;                   /* short waits left after a poke */
    uint64_t next_tick = now_ms() + (ph.decay_ms / 2 ? ph.decay_ms / 2 : 1);
    for (;;) {
        /* the tick's work every decay_ms / 2 whatever the pokes; after a
           poke, looks for the program's end every 5 ms for 200 ms */
        uint64_t now = now_ms(), wait = next_tick > now ? next_tick - now : 0;
        if (quick > 0 && wait > 5) wait = 5;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000};
        if (wait) {
            /* a poke after this store wakes the wait; one before it makes
               the wait return at once (bg_exit_poke is no longer 0) */
            __atomic_store_n(&bg_long_wait, quick == 0, __ATOMIC_SEQ_CST);
            syscall(SYS_futex, &bg_exit_poke, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
            __atomic_store_n(&bg_long_wait, 0, __ATOMIC_RELAXED);
        }
        if (__atomic_exchange_n(&bg_exit_poke, 0, __ATOMIC_ACQ_REL)) quick = 40;
        if (quick > 0) quick--;
        if (pp_program_threads_gone()) {
            /* end, so that the process does; no new release thread */
            __atomic_store_n(&bg_state, BG_OFF, __ATOMIC_RELEASE);
            return NULL;
        }
        if (now_ms() < next_tick) continue;
        next_tick = now_ms() + (ph.decay_ms / 2 ? ph.decay_ms / 2 : 1);
        /* FLAGS_tcmalloc_release_rate = 0: the allocator gives nothing back
           by itself, not even cached objects to the page heap (a program
           counting free pages, as gperftools' tests do, sees only its own
           frees and releases) */
        if (pp_release_rate <= 0) continue;
        pp_tc_flush_parked_idle();
        pp_central_flush_idle();
        pp_lock(&ph.lock);
        if (ph.free_bytes > ph.keep_bytes && pp_release_rate > 0) ph_decay_locked(now_ms());
        pp_unlock(&ph.lock);
    }
    return NULL;
}

/* The dynamic loader's (ld.so's) address range, from the auxiliary
 * vector's AT_BASE and its program headers; set once by pp_ph_init, and
 * empty when ld.so was run as the program (AT_BASE is 0 then). */
static uintptr_t ldso_lo, ldso_hi;

static void find_dynamic_loader(void) {
    uintptr_t base = (uintptr_t)getauxval(AT_BASE);
    if (!base) return;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)(base + eh->e_phoff);
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (phdr[i].p_type != PT_LOAD) continue;
        uintptr_t a = base + phdr[i].p_vaddr;
        if (a < lo) lo = a;
        if (a + phdr[i].p_memsz > hi) hi = a + phdr[i].p_memsz;
    }
    if (lo < hi) ldso_lo = lo, ldso_hi = hi;
}

/* Starts the release thread the first time free pages stay in the page
 * heap.  Callers hold no allocator lock, and caller is the return address
 * of the free that got here: none from the dynamic loader, since glibc's
 * thread exit and pthread_join free the stacks they cache, and with them
 * each thread's TLS blocks (_dl_deallocate_tls calls free), while holding
 * the stack-cache lock that pthread_create takes: creating the thread
 * there deadlocked the program (tests/native/test_malloc_threads.py, 40
 * threads joined).  A later free starts it. */
static void ph_background_poke(const void *caller) {
    if (PP_LIKELY(bg_state != BG_NONE) || !__atomic_load_n(&ph.free_bytes, __ATOMIC_RELAXED)) return;
    if ((uintptr_t)caller >= ldso_lo && (uintptr_t)caller < ldso_hi) return;   /* from ld.so */
    /* Not while the heap profiler or leak checker runs: the leak checker
       signals every thread for its registers and would wait for this one,
       which blocks all signals, until its timeout (the next call releases
       aged pages meanwhile). */
    if (pp_prof_mode != PROF_OFF) return;
    /* nothing for it to do while FLAGS_tcmalloc_release_rate is 0 (and
       starting it allocates: glibc's thread set-up takes pages the program
       just freed) */
    if (pp_release_rate <= 0) return;
    int expect = BG_NONE;
    if (!__atomic_compare_exchange_n(&bg_state, &expect, BG_STARTING, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_t th;
    /* its stack comes from the metadata mappings (system_alloc.c), not
       from a mapping of glibc's, which the kernel would put right below
       the heap's reservation where the next one should join it (realloc's
       growth to 64 MiB then copied 1.4x its final size in one run of six);
       never freed, like the thread.  256 KiB, untouched but for what it
       uses, since glibc also puts the thread's static TLS in a stack it is
       given; if that does not fit, glibc's own 64 KiB stack it is. */
    size_t stack = (size_t)256 << 10;
    void *mem = pp_os_map(stack);
    int ok = 0;
    for (int own = mem != NULL; !ok && own >= 0; own--) {
        if (pthread_attr_init(&attr) != 0) break;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int set = own ? pthread_attr_setstack(&attr, mem, stack) : pthread_attr_setstacksize(&attr, (size_t)64 << 10);
        ok = set == 0 && pthread_create(&th, &attr, bg_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    __atomic_store_n(&bg_state, ok ? BG_RUNNING : BG_OFF, __ATOMIC_RELEASE);
}

void pp_ph_background_poke(const void *caller) { ph_background_poke(caller); }

/* Only once the main thread has ended (pthread_exit: its cache goes too)
   can a thread's end be the program's: before that nothing is poked, so a
   program that starts and ends thousands of threads a second never wakes
   the release thread (larson-like bench: 3.5% more CPU time when every
   end poked it).  And only a release thread in its long wait is woken; in
   its short waits it sees the flag at the next one. */
static int main_thread_gone;

void pp_ph_thread_exited(void) {
    if (!main_thread_gone) {
        if (syscall(SYS_gettid) != getpid()) return;
        __atomic_store_n(&main_thread_gone, 1, __ATOMIC_RELAXED);
    }
    if (__atomic_load_n(&bg_state, __ATOMIC_ACQUIRE) != BG_RUNNING) return;
    __atomic_store_n(&bg_exit_poke, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&bg_long_wait, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &bg_exit_poke, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void pp_ph_after_fork_child(void) {
    main_thread_gone = 0;                           /* the forking thread is the child's main one */
    if (bg_state != BG_OFF) bg_state = BG_NONE;     /* the thread did not survive fork */
}

/* Besides the decay, a slow steady release bounds RSS in a program that
 * frees and allocates faster than the decay (as gperftools does): after
 * a span of n pages is returned, the next one goes after RELEASE_RATE * n
 * more pages were freed (RELEASE_DELAY when there was nothing to
 * release), taking the oldest span of the next size list, round robin.
 * Measured on bench_malloc.py's largemix (8 B-1 MiB, 10 M operations;
 * tcmalloc: 14.6 k page faults, 20 MB peak RSS, 21.1 ns per operation):
 * 1 page per 500 freed: 22.0 k faults, 17 MB, 24.2 ns; per 1000: 19.4 k,
 * 17.6 MB, 23.6 ns; per 2000: 15.0 k, 19.4 MB, 22.1 ns (no release at all:
 * 27 MB).  malloc-large keeps tcmalloc's page-fault count (123 k) at each
 * of these rates.  Releasing in bulk above a threshold instead cost
 * malloc-large 6x tcmalloc's page faults, and a cap at 1/4
 * of the pages in use 8x. */
#ifndef RELEASE_RATE
#define RELEASE_RATE 2000
#endif
#ifndef RELEASE_DELAY
#define RELEASE_DELAY ((long)1 << 14)
#endif
#define MAX_RELEASE_DELAY ((size_t)1 << 20)

static size_t ph_release_one(void) {
    for (int i = 0; i <= MAX_PAGES_LISTS; i++) {
        int k = ph.release_index;
        ph.release_index = k >= MAX_PAGES_LISTS ? 0 : k + 1;
        span_list_t *l = k == 0 ? &ph.large_normal : &ph.normal[k];
        if (spanlist_empty(l)) continue;
        size_t n = l->head.prev->npages;
        ph_release_span(l->head.prev);       /* the list's oldest */
        return n;
    }
    return 0;
}

static void ph_steady_release(size_t freed) {
    ph.scavenge_counter -= (long)freed;
    if (PP_LIKELY(ph.scavenge_counter >= 0)) return;
    ph.scavenge_counter = RELEASE_DELAY;
    double rate = pp_release_rate;
    if (rate <= 0) return;                  /* FLAGS_tcmalloc_release_rate = 0: never by itself */
    size_t n = ph_release_one();
    if (n) {
        /* RELEASE_RATE pages freed per page released at rate 1.0 (the
           default), proportionally fewer at a higher rate */
        double wait = (double)n * RELEASE_RATE / rate;
        ph.scavenge_counter = (long)(wait > (double)MAX_RELEASE_DELAY ? MAX_RELEASE_DELAY : (size_t)wait);
    }
}

#define FORCED_COALESCE_BYTES ((size_t)128 << 20)

/* Give a span back to the page heap.  Caller holds ph.lock. */
static void ph_free_locked(span_t *s) {
    if (s->sizeclass) pp_classmap_set_range(s->start, s->npages, 0);
    s->sizeclass = 0;
    s->freelist = NULL;
    s->refcount = 0;
    s->location = SPAN_FREE;
    s->fresh = 0;
    size_t freed = s->npages;
    s = ph_coalesce(s);
    uint64_t now = now_ms();
    s->freed_at = now;
    ph_link_free(s);
    if (ph_aggressive) {
        ph_release_span(s);
        return;
    }
    ph_maybe_decay(now);
    ph_steady_release(freed);
}

static int ph_grow(size_t npages) {
    size_t bytes = npages << PAGE_SHIFT;
    size_t min = (size_t)4 << 20;
    if (bytes < min) bytes = min;
    if ((bytes >> PAGE_SHIFT) < npages || bytes > ((size_t)1 << 46)) return 0;
    int64_t limit_mb = pp_heap_limit_mb;
    if (limit_mb > 0) {
        size_t limit = (size_t)limit_mb << 20;
        if (ph.system_bytes - ph.unmapped_bytes + bytes > limit) {
            bytes = npages << PAGE_SHIFT;          /* no 4 MiB minimum near the limit */
            if (ph.system_bytes - ph.unmapped_bytes + bytes > limit) ph_release_all_locked();
            if (ph.system_bytes - ph.unmapped_bytes + bytes > limit) return 0;
        }
    }
    size_t got;
    int zero;
    void *p = pp_heap_source(bytes, &got, &zero);
    if (!p) return 0;
    bytes = got;
    uintptr_t a = (uintptr_t)p;
    uintptr_t page = a >> PAGE_SHIFT;
    if (!pp_pagemap_ensure(page, bytes >> PAGE_SHIFT)) {
        munmap((void *)a, bytes);
        return 0;
    }
    pp_register_region((void *)a, bytes);
    span_t *s = span_new(page, bytes >> PAGE_SHIFT);
    if (!s) return 0;
    ph.system_bytes += bytes;
    pp_note_heap_growth(bytes);            /* MallocExtension::GetHeapGrowthStacks */
    pp_pagemap_set_ends(s);
    /* Fresh memory counts as resident-free (as in gperftools), so that it
       coalesces with the resident free span next to it: mmap places a new
       region right below the previous one, and a free span at the heap's
       edge plus the new region often fit a request that neither fits
       alone (without this, malloc-large's heap grew to 1.25x tcmalloc's).
       `fresh` remembers that it is still all zero for calloc. */
    s->location = SPAN_FREE;
    s->fresh = zero != 0;
    s->freed_at = now_ms();
    s = ph_coalesce(s);
    ph_link_free(s);
    if (ph_aggressive) ph_release_span(s);
    return 1;
}

static span_t *ph_find(size_t n) {
    if (n <= MAX_PAGES_LISTS) {
        /* first non-empty exact list of >= n pages, found in the bitmap */
        size_t w = n >> 6;
        uint64_t bits = ph.nonempty[w] & (~(uint64_t)0 << (n & 63));
        for (;;) {
            if (bits) {
                size_t k = (w << 6) + (size_t)__builtin_ctzll(bits);
                if (!spanlist_empty(&ph.normal[k])) return ph.normal[k].head.next;
                return ph.returned[k].head.next;
            }
            if (++w >= sizeof ph.nonempty / sizeof ph.nonempty[0]) break;
            bits = ph.nonempty[w];
        }
    }
    /* best fit over resident and returned spans together (ties: resident,
       then lower address), as gperftools does: a tight returned span
       faults its pages in, but taking a loose resident one instead would
       leave a hole and grow the heap (RSS) */
    span_t *best = NULL;
    for (int pass = 0; pass < 2; pass++) {
        span_list_t *l = pass == 0 ? &ph.large_normal : &ph.large_returned;
        for (span_t *s = l->head.next; s != &l->head; s = s->next)
            if (s->npages >= n && (!best || s->npages < best->npages ||
                                   (s->npages == best->npages && pass == 0 && s->start < best->start)))
                best = s;
    }
    return best;
}

static inline int is_free_kind(const span_t *t) {
    return t->location == SPAN_FREE || t->location == SPAN_RETURNED;
}

/* Before the heap grows for n pages.  ph_coalesce keeps resident and
 * released free spans apart, so a run of adjacent free pages can hold n
 * pages while no single span does (a block that the steady release gave
 * back between resident neighbours: 8 freed 4 MiB blocks could not take a
 * 30 MiB one, and the heap grew by 30 MiB).  Find the first run of both
 * kinds with n pages and release its resident spans, which then merge with
 * the released ones into one span; their pages fault in again when used,
 * as fresh ones from growing would, but the heap does not grow.  Scans at
 * most MAX_JOIN_SCAN free spans (this runs only when the heap must grow).
 * Returns whether it made such a span. */
#define MAX_JOIN_SCAN 4096
static int ph_join_mixed_run(size_t n) {
    if (!ph.free_bytes || !ph.unmapped_bytes || ((ph.free_bytes + ph.unmapped_bytes) >> PAGE_SHIFT) < n) return 0;
    int scanned = 0;
    for (int k = 0; k < 2 * (MAX_PAGES_LISTS + 1) && scanned < MAX_JOIN_SCAN; k++) {
        /* large lists first, then the exact ones */
        span_list_t *l = k == 0 ? &ph.large_normal : k == 1 ? &ph.large_returned
                       : k % 2 ? &ph.returned[k / 2] : &ph.normal[k / 2];
        for (span_t *s = l->head.next; s != &l->head && scanned < MAX_JOIN_SCAN; s = s->next, scanned++) {
            span_t *left = pp_pagemap_get(s->start - 1);
            if (left && is_free_kind(left) && left->start + left->npages == s->start)
                continue;                               /* not the first span of its run */
            size_t total = 0;
            int mixed = 0;
            uintptr_t end = s->start;
            for (span_t *t = s; t && t->start == end && is_free_kind(t) && total < n; t = pp_pagemap_get(end)) {
                total += t->npages;
                mixed |= t->location != s->location;
                end += t->npages;
            }
            if (total < n || !mixed) continue;
            /* release the run's resident spans, left to right; each merges
               with the released spans next to it */
            for (uintptr_t page = s->start; page < end;) {
                span_t *t = pp_pagemap_get(page);      /* a free span starts at page */
                if (t->location == SPAN_FREE) t = ph_release_span(t);
                page = t->start + t->npages;
            }
            return 1;
        }
    }
    return 0;
}

/* Allocate a span of n pages; *zeroed tells whether all of it is fresh
   from the OS.  When the heap must grow it maps `reserve` pages (>= n; a
   growing block asks for room after itself), or n if that fails. */
static span_t *ph_alloc_reserve_locked(size_t n, size_t reserve, int *zeroed, int may_grow) {
    /* no decay check here: allocating makes no free span older, and the
       check runs on every free and from the background thread (one clock
       read less per large malloc/free pair) */
    span_t *s = ph_find(n);
    if (!s && ph.unmapped_bytes > 0 && ph.free_bytes + ph.unmapped_bytes >= ph.system_bytes / 4 &&
        ph.system_bytes / FORCED_COALESCE_BYTES != (ph.system_bytes + (n << PAGE_SHIFT)) / FORCED_COALESCE_BYTES) {
        /* about to grow while many pages are free but split into resident
           and released pieces: release everything so they coalesce */
        ph_release_all_locked();
        s = ph_find(n);
    }
    if (!s && ph_join_mixed_run(n)) s = ph_find(n);
    if (!s) {
        if (!may_grow) return NULL;
        if (!(reserve > n && ph_grow(reserve)) && !ph_grow(n)) return NULL;
        s = ph_find(n);
        if (!s) return NULL;
    }
    ph_unlink_free(s);
    int was_returned = s->location == SPAN_RETURNED;
    if (zeroed) *zeroed = was_returned || s->fresh;
    if (s->npages > n) {
        /* carve the front; the remainder keeps the old span struct so only n
           page-map entries change */
        span_t *r = span_new(s->start, n);
        if (r) r->fresh = s->fresh;
        if (!r) {
            ph_link_free(s);
            return NULL;
        }
        s->start += n;
        s->npages -= n;
        pp_pagemap_set(s->start, s);          /* its last page is unchanged */
        ph_link_free(s);
        s = r;
        pp_pagemap_set_ends(s);
    }
    s->location = SPAN_IN_USE;
    s->sizeclass = 0;
    s->sampled = 0;
    return s;
}

static span_t *ph_alloc_locked(size_t n, int *zeroed) { return ph_alloc_reserve_locked(n, n, zeroed, 1); }

/* Before the heap grows for a block of GROW_FLUSH_PAGES or more, the
 * calling thread's cache and the transfer caches go back to their spans:
 * a span whose free objects were all cached then returns to the page heap
 * and coalesces with its neighbours, and the block often fits in what that
 * frees.  Cached objects are spread over the whole heap, so without this a
 * program that frees many small objects and then needs one big block
 * grows the heap for it (tests/native/test_malloc_release.py: 48 MiB after
 * 64 MiB of 1-4 KiB objects, +48 MiB without the flush, +0 with it; the
 * bench's CPython json round trip, 29 MiB cached when its 44 MiB string
 * comes: peak RSS 337 -> 294 MiB in the runs where it was 337).  The
 * flush costs a refill of the caller's lists, at most once per growth
 * (every 4 MiB or more).  Not while the heap profiler or leak checker runs
 * (they allocate on their own paths). */
#define GROW_FLUSH_PAGES 128

void *pp_large_alloc(size_t bytes, size_t align, int *zeroed) {
    if (bytes > ((size_t)1 << 46)) return NULL;
    size_t n = (bytes + PAGE_SIZE - 1) >> PAGE_SHIFT;
    if (n == 0) n = 1;
    size_t align_pages = align > PAGE_SIZE ? align >> PAGE_SHIFT : 1;
    size_t want = n + align_pages - 1;
    int flush_first = want >= GROW_FLUSH_PAGES && pp_prof_mode == PROF_OFF;
    pp_lock(&ph.lock);
    span_t *s = ph_alloc_reserve_locked(want, want, zeroed, !flush_first);
    if (!s && flush_first) {
        pp_unlock(&ph.lock);
        if (pp_tc) pp_tc_flush(pp_tc);
        pp_central_flush();
        pp_lock(&ph.lock);
        s = ph_alloc_reserve_locked(want, want, zeroed, 1);
    }
    if (s && align_pages > 1) {
        uintptr_t aligned = (s->start + align_pages - 1) & ~(uintptr_t)(align_pages - 1);
        size_t lead = aligned - s->start, trail = s->npages - lead - n;
        span_t *l = lead ? span_new(s->start, lead) : NULL;
        span_t *t = trail ? span_new(aligned + n, trail) : NULL;
        s->start = aligned;
        s->npages = n;
        pp_pagemap_set_ends(s);
        if (l) {
            pp_pagemap_set_ends(l);
            ph_free_locked(l);
        }
        if (t) {
            pp_pagemap_set_ends(t);
            ph_free_locked(t);
        }
    }
    pp_unlock(&ph.lock);
    if (!s) return NULL;
    return (void *)(s->start << PAGE_SHIFT);
}

/* A block that realloc moves because it grows: when the heap must grow
   for it, map twice its size, so that the free pages right after it let
   the next growth steps happen in place (pp_large_resize) instead of
   moving again. */
void *pp_large_alloc_growing(size_t bytes) {
    if (bytes > ((size_t)1 << 45)) return NULL;
    size_t n = (bytes + PAGE_SIZE - 1) >> PAGE_SHIFT;
    pp_lock(&ph.lock);
    span_t *s = ph_alloc_reserve_locked(n, 2 * n, NULL, 1);
    pp_unlock(&ph.lock);
    return s ? (void *)(s->start << PAGE_SHIFT) : NULL;
}

void pp_large_free(span_t *s, const void *caller) {
    pp_lock(&ph.lock);
    if (s->location != SPAN_IN_USE) {
        pp_unlock(&ph.lock);
        pp_fatal("free(): double free or invalid pointer", (void *)(s->start << PAGE_SHIFT));
    }
    ph_free_locked(s);
    pp_unlock(&ph.lock);
    ph_background_poke(caller);
}

/* realloc of a large block without copying: resize the in-use span s to
 * n pages.  Shrinking gives the tail pages back to the page heap; growing
 * takes the pages right after s when they are one free span (resident or
 * returned) big enough.  Returns 1 when s now has n pages, 0 when the
 * caller must move the block.  Only the first and last pages' page-map
 * entries change (see pagemap.c). */
int pp_large_resize(span_t *s, size_t n) {
    if (n == s->npages) return 1;
    if (n == 0) return 0;
    pp_lock(&ph.lock);
    if (s->location != SPAN_IN_USE || s->sizeclass != 0) {
        pp_unlock(&ph.lock);
        return 0;
    }
    if (n < s->npages) {
        span_t *tail = span_new(s->start + n, s->npages - n);
        if (!tail) {
            pp_unlock(&ph.lock);
            return 0;
        }
        s->npages = n;
        pp_pagemap_set_ends(s);
        pp_pagemap_set_ends(tail);
        ph_free_locked(tail);           /* coalesces with what follows */
        pp_unlock(&ph.lock);
        return 1;
    }
    size_t extra = n - s->npages;
    uintptr_t next = s->start + s->npages;
    span_t *o = pp_pagemap_get(next);
    if (!o || o->start != next || (o->location != SPAN_FREE && o->location != SPAN_RETURNED) ||
        o->npages < extra) {
        pp_unlock(&ph.lock);
        return 0;
    }
    ph_unlink_free(o);
    if (o->npages > extra) {
        o->start += extra;              /* the rest stays free; its last page is unchanged */
        o->npages -= extra;
        pp_pagemap_set(o->start, o);
        ph_link_free(o);
    } else {
        span_delete(o);
    }
    s->npages = n;
    pp_pagemap_set_ends(s);
    pp_unlock(&ph.lock);
    return 1;
}


/* ------------------------------------------------------------------ */
/* small-object spans, start-up, fork, statistics                       */

span_t *pp_ph_alloc_small(int cl) {
    int zeroed;
    pp_lock(&ph.lock);
    span_t *s = ph_alloc_locked(pp_class_pages[cl], &zeroed);
    if (s) {
        s->sizeclass = (uint16_t)cl;
        pp_pagemap_set_range(s->start, s->npages, s);
        pp_classmap_set_range(s->start, s->npages, cl);
        s->bump = (char *)(s->start << PAGE_SHIFT);
        s->limit = s->bump + pp_class_objs[cl] * pp_class_size[cl];
    }
    pp_unlock(&ph.lock);
    return s;
}

void pp_ph_free(span_t *s) {
    pp_lock(&ph.lock);
    ph_free_locked(s);
    pp_unlock(&ph.lock);
}

void pp_ph_init(size_t keep_bytes, uint64_t decay_ms, int background) {
    for (int i = 0; i <= MAX_PAGES_LISTS; i++) {
        spanlist_init(&ph.normal[i]);
        spanlist_init(&ph.returned[i]);
    }
    spanlist_init(&ph.large_normal);
    spanlist_init(&ph.large_returned);
    ph.keep_bytes = keep_bytes;
    ph.decay_ms = decay_ms;
    ph.last_decay = now_ms();
    if (!background) bg_state = BG_OFF;
    find_dynamic_loader();
}

size_t pp_ph_release_all(void) {
    pp_lock(&ph.lock);
    size_t before = ph.unmapped_bytes;
    ph_release_all_locked();
    size_t released = ph.unmapped_bytes - before;
    pp_unlock(&ph.lock);
    return released;
}

/* MallocExtension::ReleaseToSystem(n): release whole free spans, one at a
   time from the size lists in turn (oldest span of each), until at least
   `pages` pages went back; returns the pages released (the caller keeps
   tcmalloc's credit of bytes released beyond what was asked). */
size_t pp_ph_release_at_least(size_t pages) {
    pp_lock(&ph.lock);
    size_t done = 0;
    while (done < pages) {
        size_t n = ph_release_one();
        if (!n) break;
        done += n;
    }
    pp_unlock(&ph.lock);
    return done;
}

void pp_ph_set_aggressive_decommit(int on) {
    pp_lock(&ph.lock);
    ph_aggressive = on != 0;
    if (ph_aggressive) ph_release_all_locked();   /* from now on no free page is resident */
    pp_unlock(&ph.lock);
}

int pp_ph_aggressive_decommit(void) { return ph_aggressive; }

void pp_ph_set_keep_bytes(size_t bytes) {
    pp_lock(&ph.lock);
    ph.keep_bytes = bytes;
    pp_unlock(&ph.lock);
}

void pp_ph_lock_all(void) { pp_lock(&ph.lock); }
void pp_ph_unlock_all(void) { pp_unlock(&ph.lock); }

void pp_ph_stats(struct pprofpy_malloc_stats *st) {
    pp_lock(&ph.lock);
    st->heap_size = ph.system_bytes;
    st->pageheap_free_bytes = ph.free_bytes;
    st->pageheap_unmapped_bytes = ph.unmapped_bytes;
    st->release_threshold = ph.keep_bytes;
    pp_unlock(&ph.lock);
}
