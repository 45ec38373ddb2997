/* Internal declarations shared by the allocator's translation units.
 *
 * Layout (tcmalloc's design, written from its public description), one
 * file per component, each opening with a comment on its role:
 *   api.c              entry points (malloc & co, operator new/delete,
 *                      statistics API) and the inlined fast paths
 *   thread_cache.c     per-thread free lists, no lock on the fast path
 *   central_freelist.c per size class: spans with free objects and a
 *                      transfer cache of whole batches
 *   page_heap.c        spans of 8 KiB pages, coalescing, release to the OS
 *   pagemap.c          page id -> span / size class (radix trees)
 *   size_map.c         request size -> size class
 *   system_alloc.c     mmap, metadata arena, owned-region registry
 *   init.c             start-up, environment, fork, statistics snapshot
 *   util.c             lock slow path, non-allocating output, fatal errors
 *   heapprof.c         heap profiler; heapcheck.c leak checker; their
 *                      stacks (stackwalk.c), output (heapfmt.c) and
 *                      environment (env.c); shared declarations in heap.h
 * Nothing here calls libc malloc; metadata lives in mmap'ed arenas.
 *
 * The tuning constants written `#ifndef NAME` (release rate and delay,
 * transfer-cache size, thread-cache sizing) can be overridden with -DNAME=...
 * to measure alternatives with bench/bench_malloc.py's workload; the values
 * in the sources are the measured choices, each explained where defined.
 */
#ifndef PPROFPY_MALLOC_INTERNAL_H
#define PPROFPY_MALLOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PP_LIKELY(x) __builtin_expect(!!(x), 1)
#define PP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PP_HIDDEN __attribute__((visibility("hidden")))

#define PAGE_SHIFT 13
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)
#define MAX_SMALL_SIZE ((size_t)256 * 1024)
#define MAX_CLASSES 256
#define MAX_PAGES_LISTS 256            /* exact free lists for spans of 1..256 pages */
#define MAX_STACK_DEPTH 32

/* ---- spin lock that never allocates ---- */
typedef struct { volatile int v; } pp_lock_t;
PP_HIDDEN void pp_lock_slow(pp_lock_t *l);
static inline void pp_lock(pp_lock_t *l) {
    if (PP_LIKELY(!__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))) return;
    pp_lock_slow(l);
}
static inline void pp_unlock(pp_lock_t *l) { __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE); }

/* ---- spans ---- */
enum { SPAN_IN_USE = 0, SPAN_FREE = 1, SPAN_RETURNED = 2, SPAN_DEAD = 3 };

typedef struct span {
    uintptr_t start;             /* first page id */
    size_t npages;
    struct span *next, *prev;    /* list links (page heap or central list) */
    void *freelist;              /* small spans: returned objects */
    char *bump, *limit;          /* small spans: not yet carved region */
    uint32_t refcount;           /* small spans: objects handed out */
    uint16_t sizeclass;          /* 0 = large allocation or free span */
    uint8_t location;            /* SPAN_* */
    uint8_t on_list;
    uint8_t fresh;               /* free spans: never used since mapped (all zero) */
    uint8_t owned;               /* small spans: carved by one thread only (central_freelist.c) */
    uint32_t sampled;            /* objects of this span in the profiler's table */
    uint64_t freed_at;           /* free spans: when last freed (ms, monotonic) */
} span_t;

/* ---- span lists (doubly linked, circular, with a sentinel) ---- */
typedef struct { span_t head; } span_list_t;
static inline void spanlist_init(span_list_t *l) { l->head.next = l->head.prev = &l->head; }
static inline int spanlist_empty(span_list_t *l) { return l->head.next == &l->head; }
static inline void spanlist_push(span_list_t *l, span_t *s) {
    s->next = l->head.next;
    s->prev = &l->head;
    l->head.next->prev = s;
    l->head.next = s;
}
static inline void spanlist_remove(span_t *s) {
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* ---- size map ---- */
extern PP_HIDDEN unsigned char pp_class_array[];
extern PP_HIDDEN size_t pp_class_size[MAX_CLASSES];
extern PP_HIDDEN size_t pp_class_pages[MAX_CLASSES];
extern PP_HIDDEN uint32_t pp_class_batch[MAX_CLASSES];
extern PP_HIDDEN uint32_t pp_class_objs[MAX_CLASSES];
extern PP_HIDDEN int pp_num_classes;
PP_HIDDEN void pp_size_map_init(void);

static inline size_t pp_class_index(size_t s) {
    return s <= 1024 ? (s + 7) >> 3 : (s + 127 + (120 << 7)) >> 7;
}
static inline int pp_size_class(size_t s) { return pp_class_array[pp_class_index(s)]; }

/* ---- page map ---- */
#define PM_LEAF_BITS 18
#define PM_ROOT_BITS 17
extern PP_HIDDEN span_t **pp_pagemap_root[1 << PM_ROOT_BITS];
static inline span_t *pp_pagemap_get(uintptr_t page) {
    uintptr_t i1 = page >> PM_LEAF_BITS;
    if (PP_UNLIKELY(i1 >= ((uintptr_t)1 << PM_ROOT_BITS))) return NULL;
    span_t **leaf = __atomic_load_n(&pp_pagemap_root[i1], __ATOMIC_ACQUIRE);
    if (PP_UNLIKELY(!leaf)) return NULL;
    return leaf[page & ((1 << PM_LEAF_BITS) - 1)];
}
/* Every page of a small-object span maps to its span; large and free spans
   map only their first and last pages (see pagemap.c), so other entries may
   be stale.  pp_span_of() checks that the span found really covers the
   page (span structs are never unmapped, so reading a stale one is safe)
   and returns NULL otherwise. */
static inline span_t *pp_span_of(const void *p) {
    uintptr_t page = (uintptr_t)p >> PAGE_SHIFT;
    span_t *s = pp_pagemap_get(page);
    if (PP_UNLIKELY(!s || s->location == SPAN_DEAD || page - s->start >= s->npages)) return NULL;
    return s;
}
/* Slow: the span containing p even where its page-map entry is stale
   (diagnostics for bad frees only). */
PP_HIDDEN span_t *pp_span_containing(const void *p);

/* page id -> size class byte (0 = large, free or unknown), same radix shape;
   lets free() find the class without touching the span */
extern PP_HIDDEN unsigned char *pp_classmap_root[1 << PM_ROOT_BITS];
static inline int pp_classmap_get(uintptr_t page) {
    uintptr_t i1 = page >> PM_LEAF_BITS;
    if (PP_UNLIKELY(i1 >= ((uintptr_t)1 << PM_ROOT_BITS))) return 0;
    unsigned char *leaf = __atomic_load_n(&pp_classmap_root[i1], __ATOMIC_ACQUIRE);
    if (PP_UNLIKELY(!leaf)) return 0;
    return leaf[page & ((1 << PM_LEAF_BITS) - 1)];
}
/* free()'s class lookup: two dependent loads (the root entry for the
   heap's 2 GiB range stays in L1).  An earlier version kept one flat byte
   array for all 2^35 pages, reserved at load with MAP_NORESERVE: one load
   less, but 32 GiB of address space, which made every later mmap fail in
   a program that lowers RLIMIT_AS. */
static inline int pp_class_of_page(uintptr_t page) { return pp_classmap_get(page); }
/* free()'s single test for its rarer checks (api.c's do_free): the bits
   below, set while new/delete hooks run (pp_hooks_on != 0) and once some
   object is in the heap profiler's table (its span then counts it). */
#define PP_FREE_CHECK_HOOKS 1
#define PP_FREE_CHECK_SAMPLED 2
extern PP_HIDDEN volatile int pp_free_checks;

/* ---- thread cache ---- */
typedef struct {
    void *head;
    uint32_t length, max_length, low_water, overages;
} freelist_t;

/* Classes whose objects are smaller than a cache line (16, 32, 48 bytes):
   each thread carves them from spans of its own (central_freelist.c). */
#define OWN_CLASSES 4

typedef struct tcache {
    freelist_t lists[MAX_CLASSES];
    struct span *own[OWN_CLASSES];   /* the span this thread carves class cl from (central_freelist.c) */
    size_t size;                 /* bytes held in the lists */
    size_t max_size;
    ssize_t sample_left;         /* bytes until the next profiler sample */
    uint64_t rng;
    uintptr_t stack_lo, stack_hi;  /* thread stack, bounds frame-pointer walks (0: not resolved yet) */
    uintptr_t stack_probe;         /* an address in the thread's stack (thread_cache.c) */
    uintptr_t thread_pointer;      /* pthread_self(): TCB, static TLS just below */
    struct tcache *next_all, *prev_all;
    int in_use;
    int parked_seen;             /* parked (thread exited): seen by the background thread */
} tcache_t;

extern PP_HIDDEN __thread tcache_t *pp_tc __attribute__((tls_model("initial-exec")));
extern PP_HIDDEN __thread int pp_busy __attribute__((tls_model("initial-exec")));   /* recursion guard */

struct pprofpy_malloc_stats;

/* ---- start-up and whole-allocator operations (init.c) ---- */
PP_HIDDEN void pp_init(void);
extern PP_HIDDEN int pp_inited;
PP_HIDDEN void pp_lock_all(void);
PP_HIDDEN void pp_unlock_all(void);
PP_HIDDEN void pp_after_fork_child(void);
PP_HIDDEN size_t pp_release_free_memory(void);  /* returns the bytes given back */
PP_HIDDEN void pp_get_stats(struct pprofpy_malloc_stats *st);

/* ---- thread cache (thread_cache.c) ---- */
PP_HIDDEN void pp_tc_init(void);
PP_HIDDEN tcache_t *pp_tc_get_slow(void);        /* may return NULL (during setup / thread exit) */
PP_HIDDEN void *pp_tc_fetch(tcache_t *tc, int cl);   /* list empty: refill from central, pop one */
PP_HIDDEN void pp_tc_list_too_long(tcache_t *tc, int cl, const void *caller);
PP_HIDDEN void pp_tc_scavenge(tcache_t *tc);
PP_HIDDEN void pp_tc_flush(tcache_t *tc);
PP_HIDDEN void pp_tc_flush_parked_idle(void);   /* background thread */
PP_HIDDEN void pp_tc_flush_parked_all(void);
PP_HIDDEN void pp_tc_reset_all_samples(void);
PP_HIDDEN size_t pp_dead_stacks(uintptr_t *starts, uintptr_t *ends, uintptr_t *tps, size_t max);
PP_HIDDEN void pp_tc_lock_all(void);
PP_HIDDEN void pp_tc_unlock_all(void);
PP_HIDDEN void pp_tc_stats(struct pprofpy_malloc_stats *st);

/* ---- central free lists (central_freelist.c) ---- */
PP_HIDDEN void pp_central_init(void);
PP_HIDDEN void pp_central_insert(int cl, void *head, void *tail, uint32_t n);
PP_HIDDEN uint32_t pp_central_remove(int cl, uint32_t n, void **head, void **tail, span_t **own);
PP_HIDDEN void pp_central_disown(int cl, span_t **own);
PP_HIDDEN void *pp_central_alloc_one(int cl);
PP_HIDDEN void pp_central_free_one(void *p, int cl);
PP_HIDDEN void pp_central_flush(void);
PP_HIDDEN void pp_central_flush_idle(void);     /* background thread: idle classes' transfer caches */
PP_HIDDEN void pp_central_lock_all(void);
PP_HIDDEN void pp_central_unlock_all(void);
PP_HIDDEN void pp_central_stats(struct pprofpy_malloc_stats *st);

/* ---- page heap (page_heap.c) ---- */
PP_HIDDEN void pp_ph_init(size_t keep_bytes, uint64_t decay_ms, int background);
PP_HIDDEN span_t *pp_ph_alloc_small(int cl);     /* a span carved for class cl, page maps set */
PP_HIDDEN void pp_ph_free(span_t *s);
PP_HIDDEN void *pp_large_alloc(size_t bytes, size_t align, int *zeroed);
PP_HIDDEN void *pp_large_alloc_growing(size_t bytes);   /* realloc moving a growing block */
PP_HIDDEN void pp_large_free(span_t *s, const void *caller);
PP_HIDDEN int pp_large_resize(span_t *s, size_t npages);   /* in place; 1 on success */
PP_HIDDEN size_t pp_ph_release_all(void);       /* returns the bytes given back */
PP_HIDDEN void pp_ph_set_keep_bytes(size_t bytes);
PP_HIDDEN void pp_ph_background_poke(const void *caller);   /* caller: free's return address; holds no allocator lock */
PP_HIDDEN void pp_ph_thread_exited(void);        /* a thread's cache was given up (thread_cache.c) */
PP_HIDDEN void pp_ph_after_fork_child(void);
PP_HIDDEN void pp_ph_lock_all(void);
PP_HIDDEN void pp_ph_unlock_all(void);
PP_HIDDEN void pp_ph_stats(struct pprofpy_malloc_stats *st);

/* ---- page map writers (pagemap.c; callers hold the page heap's lock) ---- */
PP_HIDDEN int pp_pagemap_ensure(uintptr_t page, size_t n);   /* leaves for n pages from page */
PP_HIDDEN void pp_pagemap_set(uintptr_t page, span_t *s);
PP_HIDDEN void pp_pagemap_set_range(uintptr_t page, size_t n, span_t *s);
PP_HIDDEN void pp_pagemap_set_ends(span_t *s);
PP_HIDDEN void pp_classmap_set_range(uintptr_t page, size_t n, int cl);

/* ---- OS memory and metadata (system_alloc.c) ---- */
PP_HIDDEN void *pp_meta_alloc(size_t bytes);
PP_HIDDEN void *pp_meta_zone_hint(size_t bytes);   /* where metadata mappings go (system_alloc.c) */
PP_HIDDEN void *pp_os_map(size_t bytes);       /* raw mmap, registered as allocator-owned region */
PP_HIDDEN void pp_register_region(void *p, size_t bytes);
PP_HIDDEN void *pp_os_map_heap(size_t bytes, size_t align);   /* aligned anonymous memory, not registered */
PP_HIDDEN void *pp_heap_source(size_t bytes, size_t *actual, int *zeroed);   /* the page heap's growth: SysAllocator or mmap */
PP_HIDDEN size_t pp_ph_release_at_least(size_t pages);        /* pages released */
PP_HIDDEN void pp_ph_set_aggressive_decommit(int on);
PP_HIDDEN int pp_ph_aggressive_decommit(void);
/* thread_cache.c: what all thread caches together may hold beyond their
   first MIN_TC_SIZE ("tcmalloc.max_total_thread_cache_bytes") */
extern PP_HIDDEN volatile size_t pp_tc_overall_budget;
PP_HIDDEN int pp_owned_region(uintptr_t addr, uintptr_t *end);   /* for the leak checker */
PP_HIDDEN size_t pp_owned_regions(uintptr_t *starts, uintptr_t *ends, size_t max);
extern PP_HIDDEN size_t pp_metadata_bytes;
PP_HIDDEN void pp_sys_lock_all(void);
PP_HIDDEN void pp_sys_unlock_all(void);

/* ---- helpers (util.c) ---- */
PP_HIDDEN void pp_fatal(const char *msg, const void *ptr) __attribute__((noreturn));
PP_HIDDEN void pp_write_str(int fd, const char *s);
PP_HIDDEN size_t pp_fmt_u(char *out, unsigned long long v);
PP_HIDDEN size_t pp_fmt_x(char *out, unsigned long long v);
PP_HIDDEN uint64_t pp_random(uint64_t *state);

/* ---- profiler hooks (heapprof.c) ---- */
enum { PROF_OFF = 0, PROF_ALL = 1, PROF_SAMPLED = 2 };
extern PP_HIDDEN volatile int pp_prof_mode;
/* the mean sampling interval in bytes; exported as tcmalloc's
   FLAGS_tcmalloc_sample_parameter (0 while sampling: nothing is sampled) */
extern volatile size_t pp_sample_rate
    __asm__("_ZN61FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead31FLAGS_tcmalloc_sample_parameterE")
    __attribute__((visibility("default")));
PP_HIDDEN ssize_t pp_next_sample_interval(tcache_t *tc);
PP_HIDDEN void pp_prof_record(void *p, size_t size, void *frame);
PP_HIDDEN void pp_prof_forget(void *p, span_t *s);
PP_HIDDEN void pp_prof_init_from_env(void);
PP_HIDDEN void pp_prof_at_exit(void);
PP_HIDDEN void pp_prof_lock_all(void);
PP_HIDDEN void pp_prof_unlock_all(void);
PP_HIDDEN const char *pp_getenv(const char *name);
PP_HIDDEN void pp_prof_track_all(void);          /* record every allocation (leak checker) */
PP_HIDDEN void pp_prof_untrack_all(void);        /* the leak checker stopped (empty HEAPCHECK) */

/* ---- leak checker (heapcheck.c) ---- */
PP_HIDDEN void pp_heapcheck_init_from_env(void); /* HEAPCHECK and HEAP_CHECK_* */
PP_HIDDEN int pp_leak_check_on(void);        /* HEAPCHECK set: allocations are tracked */
/* 1 while the leak checker tracks allocations: a recorded block whose size
 * fills its slot exactly (a size class's size, a whole number of pages) is
 * allocated one byte larger, so a pointer one past its end (a buffer's end
 * pointer, std::vector's end) still points into its own slot and never at
 * the start of the block that follows, which would keep a leak alive.
 * Other sizes already leave slack after the block. */
extern PP_HIDDEN volatile int pp_leak_pad;
static inline size_t pp_leak_padded(size_t n) {
    if (!pp_leak_pad || n == (size_t)-1) return n;
    int exact = n <= MAX_SMALL_SIZE ? pp_class_size[pp_size_class(n)] == n : (n & (PAGE_SIZE - 1)) == 0;
    return n + (size_t)exact;
}
PP_HIDDEN void pp_leak_check_at_exit(void);      /* the whole-program check; _exit(1) on leaks */
/* One leak check now, from the caller's live stack (through_exit: the
 * caller is inside exit(); else the boundary is the first frame outside
 * this library).  Reports the objects no root reaches under `name` (stderr
 * and the dump <name>-end.heap).  Objects pp_hc_is_ignored() accepts are
 * roots (IgnoreObject, Disabler; gperftools_heapcheck.cc, when linked in);
 * with may_report, only the objects it accepts count as leaks.  Returns the
 * number of leaked objects (0: none), -1 when no check could run (HEAPCHECK
 * off, out of memory); leaked_bytes and leaked_objects (may be NULL) get
 * the leak's size.
 * The C++ HeapLeakChecker calls it. */
PP_HIDDEN long pp_leak_check(const char *name, int through_exit, int (*may_report)(uintptr_t addr, void *ctx),
                             void *ctx, size_t *leaked_bytes, size_t *leaked_objects);
/* Calls fn for every object the heap profiler knows (fn must not allocate). */
PP_HIDDEN void pp_prof_each_object(void (*fn)(uintptr_t addr, size_t size, void *ctx), void *ctx);
/* the return address into the function that allocated p, or NULL */
PP_HIDDEN void *pp_prof_alloc_caller(const void *p);

/* ---- gperftools compatibility layer (gperftools_*.c/.cc) ---- */
#include "gperftools_glue.h"

#endif
