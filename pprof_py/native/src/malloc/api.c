/* Public allocation entry points: the C allocation surface, operator
 * new/delete under their Itanium-mangled names, fork handling, the
 * statistics API and the MALLOCSTATS report.
 *
 * operator new failure: C cannot throw.  The throwing forms look up the C++
 * runtime with dlsym(RTLD_DEFAULT): while std::get_new_handler() returns a
 * handler it is called and the allocation retried (as the standard says);
 * without one a std::bad_alloc is built and thrown through __cxa_throw
 * (our C frames have unwind tables).  If the process has no C++ runtime the
 * message "operator new: out of memory" is written to stderr and we abort.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "malloc_extension.h"

#define EXPORT __attribute__((visibility("default")))
#define NOINLINE __attribute__((noinline))
/* free and operator delete: no stack is taken below them (the heap
   profiler records allocations only, a delete hook's
   MallocHook_GetCallerStackTrace skips this library's frames by address),
   so they need neither the frame pointer nor the call kept by the
   library-wide -fno-omit-frame-pointer -fno-optimize-sibling-calls: the
   fast path then saves no register and the slow path is a jump
   (3 instructions of about 40 per free) */
#define FREE_ENTRY EXPORT __attribute__((optimize("omit-frame-pointer", "optimize-sibling-calls")))

/* ------------------------------------------------------------------ */
/* allocation core shared by every entry point                          */

static NOINLINE void *alloc_slow(size_t n, size_t align, void *frame);

/* malloc's fast path, inlined into every entry point.  Cost when the
 * thread's list for the class is non-empty: one TLS load (pp_tc,
 * initial-exec: %fs-relative), the size-map byte and class-size loads (L1),
 * the list head and the object's first word (the object is written by the
 * caller next anyway), and three stores to this thread's own cache: no
 * lock, no atomic, about 20 instructions.  Any miss (no cache yet, empty
 * list, a profiler sample due, a large or aligned request) goes to
 * alloc_slow. */
static inline void *small_fast(size_t n) {
    tcache_t *tc = pp_tc;
    if (PP_LIKELY(tc != NULL && n <= MAX_SMALL_SIZE)) {
        int cl = pp_size_class(n);
        freelist_t *fl = &tc->lists[cl];
        void *p = fl->head;
        size_t sz = pp_class_size[cl];
        if (PP_LIKELY(p != NULL) && PP_LIKELY((tc->sample_left -= (ssize_t)sz) >= 0)) {
            fl->head = *(void **)p;
            if (PP_UNLIKELY(--fl->length < fl->low_water)) fl->low_water = fl->length;
            tc->size -= sz;
            return p;
        }
    }
    return NULL;
}

/* Small or large allocation without profiling. */
static void *alloc_raw(size_t n, size_t align, int *zeroed) {
    if (zeroed) *zeroed = 0;
    if (n <= MAX_SMALL_SIZE && align <= PAGE_SIZE) {
        int cl = pp_size_class(n);
        if (align > 16)
            while (cl < pp_num_classes && pp_class_size[cl] % align) cl++;
        if (cl < pp_num_classes) {
            tcache_t *tc = pp_tc ? pp_tc : pp_tc_get_slow();
            if (tc) {
                freelist_t *fl = &tc->lists[cl];
                void *p = fl->head;
                if (p) {
                    fl->head = *(void **)p;
                    if (--fl->length < fl->low_water) fl->low_water = fl->length;
                    tc->size -= pp_class_size[cl];
                    return p;
                }
                return pp_tc_fetch(tc, cl);
            }
            return pp_central_alloc_one(cl);
        }
    }
    if (!pp_inited) pp_init();
    return pp_large_alloc(n, align, zeroed);
}

static NOINLINE void *alloc_slow(size_t n, size_t align, void *frame) {
    if (!pp_inited) pp_init();
    tcache_t *tc = pp_tc ? pp_tc : pp_tc_get_slow();
    int sample = 0;
    if (tc && !pp_busy && pp_prof_mode != PROF_OFF) {
        /* small_fast already charged the size when it got this far */
        if (tc->sample_left < 0) {
            sample = 1;
            tc->sample_left = pp_next_sample_interval(tc);
        } else {
            /* small_fast did not charge this request (cache miss, large or aligned) */
            tc->sample_left -= (ssize_t)n;
            if (tc->sample_left < 0) {
                sample = 1;
                tc->sample_left = pp_next_sample_interval(tc);
            }
        }
    } else if (tc && tc->sample_left < 0) {
        tc->sample_left = pp_next_sample_interval(tc);
    }
    /* sampling with FLAGS_tcmalloc_sample_parameter = 0: nothing is sampled */
    if (sample && pp_prof_mode == PROF_SAMPLED && !pp_sample_rate) sample = 0;
    /* for the leak checker, a spare byte where the block would fill its slot (pp_leak_pad) */
    void *p = alloc_raw(sample ? pp_leak_padded(n) : n, align, NULL);
    if (PP_UNLIKELY(!p)) {
        errno = ENOMEM;
        return NULL;
    }
    if (sample) pp_prof_record(p, n, frame);
    return p;
}

static NOINLINE void *new_mode_retry(size_t n, size_t align);

/* Every allocation and free below passes the MallocHook test: one load of
   pp_hooks_on (gperftools_hooks.c), nonzero only while a program installed
   a new/delete hook or the heap checker follows objects.  It sits in the
   fast path's condition, so that path still saves no registers and makes
   no call; the rest is a tail call.  c_malloc: the caller is malloc, which
   tc_set_new_mode(1) lets call the new handler on failure. */
static NOINLINE void *malloc_tail(void *p, size_t n, void *frame, int c_malloc) {
    if (p == NULL) {
        /* A large block while no heap profiler runs: straight to the page
           heap (alloc_slow's sampling and class lookup would do nothing
           for it; they were a quarter of the instructions of a 256 KiB-
           1 MiB malloc/free pair, bench-malloc's largemix) */
        if (n > MAX_SMALL_SIZE && pp_prof_mode == PROF_OFF && PP_LIKELY(pp_inited)) {
            p = pp_large_alloc(n, 0, NULL);
            if (PP_UNLIKELY(p == NULL)) errno = ENOMEM;
        } else {
            p = alloc_slow(n, 0, frame);
        }
        /* the retry's own allocation runs the hooks */
        if (PP_UNLIKELY(p == NULL) && c_malloc && pp_new_mode) return new_mode_retry(n, 0);
    }
    if (PP_UNLIKELY(pp_hooks_on)) pp_run_new_hooks(p, n);
    return p;
}

static inline __attribute__((always_inline)) void *malloc_ex(size_t n, void *frame, int c_malloc) {
    void *p = small_fast(n);
    if (PP_LIKELY(p != NULL) && PP_LIKELY(!pp_hooks_on)) return p;
    return malloc_tail(p, n, frame, c_malloc);
}

static inline void *do_malloc(size_t n, void *frame) { return malloc_ex(n, frame, 0); }

static NOINLINE __attribute__((noreturn)) void bad_free(void *p) {
    span_t *s = pp_span_containing(p);
    if (s == NULL) pp_fatal("free(): invalid pointer (not allocated by this malloc)", p);
    if (s->location == SPAN_IN_USE && s->sizeclass == 0)
        pp_fatal("free(): invalid pointer (inside a large block)", p);
    pp_fatal("free(): double free or invalid pointer", p);
}

static NOINLINE void free_slow(void *p, const void *caller) {
    if (PP_UNLIKELY(pp_hooks_on)) pp_run_delete_hooks(p);   /* before the block can be reused */
    if (PP_UNLIKELY(p == NULL)) return;
    span_t *s = pp_span_of(p);
    if (PP_UNLIKELY(s == NULL || s->location != SPAN_IN_USE)) bad_free(p);
    if (s->sampled) pp_prof_forget(p, s);
    int cl = s->sizeclass;
    if (cl == 0) {
        if (PP_UNLIKELY((uintptr_t)p != (s->start << PAGE_SHIFT)))
            pp_fatal("free(): invalid pointer (inside a large block)", p);
        pp_large_free(s, caller);
        return;
    }
    tcache_t *tc = pp_tc ? pp_tc : pp_tc_get_slow();
    if (!tc) {
        pp_central_free_one(p, cl);
        return;
    }
    freelist_t *fl = &tc->lists[cl];
    *(void **)p = fl->head;
    fl->head = p;
    tc->size += pp_class_size[cl];
    if (++fl->length > fl->max_length) pp_tc_list_too_long(tc, cl, caller);
    else if (tc->size > tc->max_size) pp_tc_scavenge(tc);
}

/* free's fast path.  Cost for a small object: the class byte from the
 * class map (pp_class_of_page), one TLS load, and a push on this thread's
 * list (the object's first word, the list head, length and size): no span
 * access, no lock, no atomic.  Once the heap profiler holds sampled
 * objects (PP_FREE_CHECK_SAMPLED) one more load reads the span's sampled
 * count. */
static inline __attribute__((always_inline)) void do_free(void *p) {
    /* fast path: class from the byte map, no span access; free(NULL)
       (page 0 is never ours: class 0), large blocks, bad pointers, calls
       with hooks installed and objects the profiler may know about go
       slow.  One load (pp_free_checks) covers the last two. */
    int cl = pp_class_of_page((uintptr_t)p >> PAGE_SHIFT);
    tcache_t *tc = pp_tc;
    if (PP_LIKELY(cl != 0 && tc != NULL) &&
        PP_LIKELY(!pp_free_checks || (!(pp_free_checks & PP_FREE_CHECK_HOOKS) && !pp_span_of(p)->sampled))) {
        freelist_t *fl = &tc->lists[cl];
        *(void **)p = fl->head;
        fl->head = p;
        tc->size += pp_class_size[cl];
        if (PP_UNLIKELY(++fl->length > fl->max_length)) pp_tc_list_too_long(tc, cl, __builtin_return_address(0));
        else if (PP_UNLIKELY(tc->size > tc->max_size)) pp_tc_scavenge(tc);
        return;
    }
    free_slow(p, __builtin_return_address(0));
}

static size_t usable_size(const void *p) {
    span_t *s = pp_span_of(p);
    if (!s || s->location != SPAN_IN_USE) pp_fatal("malloc_usable_size(): invalid pointer", p);
    if (s->sizeclass) return pp_class_size[s->sizeclass];
    return s->npages << PAGE_SHIFT;
}

static void *do_memalign(size_t align, size_t n, void *frame) {
    if (align <= 16) return do_malloc(n, frame);
    if (n > ((size_t)1 << 46)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = alloc_slow(n, align, frame);
    if (PP_UNLIKELY(pp_hooks_on)) pp_run_new_hooks(p, n);
    return p;
}

/* memalign & co for the C entry points: tc_set_new_mode(1) calls the new
   handler on failure, as for malloc */
static void *memalign_c(size_t align, size_t n, void *frame) {
    void *p = do_memalign(align, n, frame);
    if (PP_UNLIKELY(p == NULL) && pp_new_mode) p = new_mode_retry(n, align);
    return p;
}

static void *calloc_unhooked(size_t a, size_t b, void *frame) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = small_fast(n);
    if (p) {
        memset(p, 0, n);
        return p;
    }
    if (n > MAX_SMALL_SIZE && pp_prof_mode == PROF_OFF && pp_inited) {
        int zeroed;
        p = alloc_raw(n, 0, &zeroed);
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
        if (!zeroed) memset(p, 0, n);
        return p;
    }
    p = alloc_slow(n, 0, frame);
    if (p) memset(p, 0, n);
    return p;
}

static inline void *do_calloc(size_t a, size_t b, void *frame) {
    void *p = calloc_unhooked(a, b, frame);
    if (PP_UNLIKELY(pp_hooks_on)) pp_run_new_hooks(p, a * b);
    return p;
}

/* realloc.  Growing a buffer step by step must cost amortised O(1) per
 * byte (allocating exactly the new size and copying every
 * time made 4 KiB steps to 64 MiB quadratic):
 *   - a request that still fits, and uses at least half of the block,
 *     keeps it;
 *   - a large block (whole pages) is resized in place when possible:
 *     shrinking returns the tail pages, growing takes the free pages right
 *     after it (pp_large_resize);
 *   - otherwise the block moves, and a growing one gets 25% headroom (as
 *     tcmalloc does), so a buffer grown in small steps moves O(log n)
 *     times and copies at most about 5x its final size in total; a large
 *     one is placed where the pages after it are free
 *     (pp_large_alloc_growing), so its next steps are in place again.
 * A block the heap profiler sampled keeps its recorded size while the
 * request fits (as in gperftools), but is never resized in place beyond
 * that: it moves, so that the profiler records the new size and site. */
static inline __attribute__((always_inline)) void *do_realloc(void *old, size_t n, void *frame) {
    if (!old) return do_malloc(n, frame);
    if (n == 0) {
        do_free(old);
        return NULL;
    }
    /* a small block's size from the class map alone (free's lookup): a
       request that still fits returns without touching the span, which
       is most calls of a program growing strings in small steps (sqlite3's
       string builder: a million reallocs in bench-malloc's workload) */
    int cl = pp_class_of_page((uintptr_t)old >> PAGE_SHIFT);
    size_t have;
    span_t *s = NULL;                 /* looked up for large blocks only */
    if (cl) {
        have = pp_class_size[cl];
    } else {
        s = pp_span_of(old);
        if (!s || s->location != SPAN_IN_USE) pp_fatal("realloc(): invalid pointer", old);
        have = s->sizeclass ? pp_class_size[s->sizeclass] : s->npages << PAGE_SHIFT;
    }
    if (n <= have && n >= have / 2) return old;
    if (s && !s->sampled && s->sizeclass == 0 && n > MAX_SMALL_SIZE && n <= ((size_t)1 << 46) &&
        pp_large_resize(s, (n + PAGE_SIZE - 1) >> PAGE_SHIFT))
        return old;
    void *p = NULL;
    size_t want = n > have && n - have < have / 4 && have + have / 4 > have ? have + have / 4 : n;
    if (want > MAX_SMALL_SIZE && n > have && pp_prof_mode == PROF_OFF && !pp_hooks_on && pp_inited)
        p = pp_large_alloc_growing(want);       /* with room to grow in place next time */
    if (!p && want != n) p = do_malloc(want, frame);
    if (!p) p = do_malloc(n, frame);
    if (!p) return NULL;
    memcpy(p, old, n < have ? n : have);
    do_free(old);
    return p;
}

/* ------------------------------------------------------------------ */
/* C entry points                                                       */

#define FRAME __builtin_frame_address(0)

/* tc_set_new_mode(1) makes malloc, calloc and realloc call the C++ new
   handler on failure, like operator new (nothrow); tc_malloc_skip_new_handler
   is malloc without that. */
EXPORT void *tc_malloc_skip_new_handler(size_t n) { return do_malloc(n, FRAME); }
EXPORT void *malloc(size_t n) { return malloc_ex(n, FRAME, 1); }
FREE_ENTRY void free(void *p) { do_free(p); }
FREE_ENTRY void cfree(void *p) { do_free(p); }
EXPORT void *calloc(size_t a, size_t b) {
    void *p = do_calloc(a, b, FRAME);
    size_t n;
    if (PP_UNLIKELY(p == NULL) && pp_new_mode && !__builtin_mul_overflow(a, b, &n)) {
        p = new_mode_retry(n, 0);
        if (p) memset(p, 0, n);
    }
    return p;
}
EXPORT void *realloc(void *p, size_t n) {
    void *r = do_realloc(p, n, FRAME);
    if (PP_UNLIKELY(r == NULL) && n && pp_new_mode) {
        /* allocate through the handler loop, then move as realloc would */
        r = new_mode_retry(n, 0);
        if (r && p) {
            size_t have = usable_size(p);
            memcpy(r, p, n < have ? n : have);
            do_free(p);
        }
    }
    return r;
}

EXPORT void *reallocarray(void *p, size_t a, size_t b) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(p, n, FRAME);
}

static int pow2(size_t a) { return a && !(a & (a - 1)); }

EXPORT void *memalign(size_t align, size_t n) {
    if (!pow2(align)) {
        /* glibc rounds up a non-power-of-two alignment */
        size_t a = 1;
        while (a < align && a) a <<= 1;
        if (!a) { errno = EINVAL; return NULL; }
        align = a;
    }
    return memalign_c(align, n, FRAME);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    if (!pow2(align) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = memalign_c(align, n, FRAME);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return memalign_c(align, n, FRAME);
}

EXPORT void *valloc(size_t n) { return memalign_c(4096, n, FRAME); }

EXPORT void *pvalloc(size_t n) {
    size_t r = (n + 4095) & ~(size_t)4095;
    if (r < n) {
        errno = ENOMEM;
        return NULL;
    }
    return memalign_c(4096, r ? r : 4096, FRAME);
}

EXPORT size_t malloc_usable_size(void *p) { return p ? usable_size(p) : 0; }

/* glibc-internal names some programs call directly */
EXPORT void *__libc_malloc(size_t n) { return do_malloc(n, FRAME); }
FREE_ENTRY void __libc_free(void *p) { do_free(p); }
EXPORT void *__libc_calloc(size_t a, size_t b) { return do_calloc(a, b, FRAME); }
EXPORT void *__libc_realloc(void *p, size_t n) { return do_realloc(p, n, FRAME); }
EXPORT void *__libc_memalign(size_t align, size_t n) { return do_memalign(align, n, FRAME); }

/* ------------------------------------------------------------------ */
/* operator new / delete                                               */

typedef void (*new_handler_t)(void);

static NOINLINE void *new_failed(size_t n, size_t align, void *frame) {
    for (;;) {
        new_handler_t (*get_handler)(void) = (new_handler_t(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
        new_handler_t h = get_handler ? get_handler() : NULL;
        if (!h) break;
        h();
        void *p = align > 16 ? do_memalign(align, n, frame) : do_malloc(n, frame);
        if (p) return p;
    }
    void *(*alloc_exc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__cxa_allocate_exception");
    void (*throw_fn)(void *, void *, void (*)(void *)) =
        (void (*)(void *, void *, void (*)(void *)))dlsym(RTLD_DEFAULT, "__cxa_throw");
    char *vtable = dlsym(RTLD_DEFAULT, "_ZTVSt9bad_alloc");
    void *tinfo = dlsym(RTLD_DEFAULT, "_ZTISt9bad_alloc");
    void (*dtor)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "_ZNSt9bad_allocD1Ev");
    if (alloc_exc && throw_fn && vtable && tinfo && dtor) {
        void *exc = alloc_exc(sizeof(void *));
        *(void **)exc = vtable + 2 * sizeof(void *);   /* std::bad_alloc's vptr */
        throw_fn(exc, tinfo, dtor);
    }
    pp_write_str(2, "pprof_py malloc: operator new: out of memory\n");
    abort();
}

/* malloc under tc_set_new_mode(1): call the new handler until it fails to
   free memory (returns NULL) instead of throwing. */
static NOINLINE void *new_mode_retry(size_t n, size_t align) {
    for (;;) {
        new_handler_t (*get_handler)(void) = (new_handler_t(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
        new_handler_t h = get_handler ? get_handler() : NULL;
        if (!h) return NULL;
        h();
        void *p = align ? do_memalign(align, n, FRAME) : do_malloc(n, FRAME);
        if (p) return p;
    }
}

/* nothrow operator new (the standard's "as if" the throwing form, but
   returning NULL): on failure call the new handler until the allocation
   succeeds, there is no handler, or the handler throws (caught in
   gperftools_nothrow_eh.cc). */
int pp_call_new_handler_nothrow(void (*handler)(void));

static NOINLINE void *new_nothrow_failed(size_t n, size_t align, void *frame) {
    for (;;) {
        new_handler_t (*get_handler)(void) = (new_handler_t(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
        new_handler_t h = get_handler ? get_handler() : NULL;
        if (!h || !pp_call_new_handler_nothrow(h)) return NULL;
        void *p = align > 16 ? do_memalign(align, n, frame) : do_malloc(n, frame);
        if (p) return p;
    }
}

static inline void *new_nothrow_impl(size_t n, size_t align, void *frame) {
    void *p = align > 16 ? do_memalign(align, n, frame) : do_malloc(n, frame);
    if (PP_UNLIKELY(!p)) p = new_nothrow_failed(n, align, frame);
    return p;
}

static inline void *new_impl(size_t n, size_t align, void *frame) {
    void *p = align > 16 ? do_memalign(align, n, frame) : do_malloc(n, frame);
    if (PP_UNLIKELY(!p)) p = new_failed(n, align, frame);
    return p;
}

EXPORT void *_Znwm(size_t n) { return new_impl(n, 0, FRAME); }
EXPORT void *_Znam(size_t n) { return new_impl(n, 0, FRAME); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return new_nothrow_impl(n, 0, FRAME); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return new_nothrow_impl(n, 0, FRAME); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al) { return new_impl(n, al, FRAME); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al) { return new_impl(n, al, FRAME); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) {
    (void)nt;
    return new_nothrow_impl(n, al, FRAME);
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) {
    (void)nt;
    return new_nothrow_impl(n, al, FRAME);
}
FREE_ENTRY void _ZdlPv(void *p) { do_free(p); }
FREE_ENTRY void _ZdaPv(void *p) { do_free(p); }
FREE_ENTRY void _ZdlPvm(void *p, size_t n) { (void)n; do_free(p); }
FREE_ENTRY void _ZdaPvm(void *p, size_t n) { (void)n; do_free(p); }
FREE_ENTRY void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; do_free(p); }
FREE_ENTRY void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; do_free(p); }
FREE_ENTRY void _ZdlPvSt11align_val_t(void *p, size_t al) { (void)al; do_free(p); }
FREE_ENTRY void _ZdaPvSt11align_val_t(void *p, size_t al) { (void)al; do_free(p); }
FREE_ENTRY void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) { (void)n; (void)al; do_free(p); }
FREE_ENTRY void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) { (void)n; (void)al; do_free(p); }
FREE_ENTRY void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) {
    (void)al; (void)nt;
    do_free(p);
}
FREE_ENTRY void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) {
    (void)al; (void)nt;
    do_free(p);
}

/* ------------------------------------------------------------------ */
/* gperftools' tcmalloc.h names: the same functions under tc_* (aliases,
   so stacks and costs are identical); the rest of tcmalloc.h is in
   gperftools_tcmalloc.c                                                 */

#define ALIAS(name, target) EXPORT __typeof__(target) name __attribute__((alias(#target), copy(target)))
ALIAS(tc_malloc, malloc);
ALIAS(tc_free, free);
ALIAS(tc_cfree, cfree);
ALIAS(tc_calloc, calloc);
ALIAS(tc_realloc, realloc);
ALIAS(tc_memalign, memalign);
ALIAS(tc_posix_memalign, posix_memalign);
ALIAS(tc_valloc, valloc);
ALIAS(tc_pvalloc, pvalloc);
ALIAS(tc_malloc_size, malloc_usable_size);
ALIAS(malloc_size, malloc_usable_size);           /* BSD / macOS name */
ALIAS(__posix_memalign, posix_memalign);
ALIAS(__libc_valloc, valloc);
ALIAS(__libc_pvalloc, pvalloc);
ALIAS(__libc_cfree, cfree);
ALIAS(tc_new, _Znwm);
ALIAS(tc_newarray, _Znam);
ALIAS(tc_new_nothrow, _ZnwmRKSt9nothrow_t);
ALIAS(tc_newarray_nothrow, _ZnamRKSt9nothrow_t);
ALIAS(tc_delete, _ZdlPv);
ALIAS(tc_deletearray, _ZdaPv);
ALIAS(tc_delete_sized, _ZdlPvm);
ALIAS(tc_deletearray_sized, _ZdaPvm);
ALIAS(tc_free_sized, _ZdlPvm);
ALIAS(tc_delete_nothrow, _ZdlPvRKSt9nothrow_t);
ALIAS(tc_deletearray_nothrow, _ZdaPvRKSt9nothrow_t);
ALIAS(tc_new_aligned, _ZnwmSt11align_val_t);
ALIAS(tc_newarray_aligned, _ZnamSt11align_val_t);
ALIAS(tc_new_aligned_nothrow, _ZnwmSt11align_val_tRKSt9nothrow_t);
ALIAS(tc_newarray_aligned_nothrow, _ZnamSt11align_val_tRKSt9nothrow_t);
ALIAS(tc_delete_aligned, _ZdlPvSt11align_val_t);
ALIAS(tc_deletearray_aligned, _ZdaPvSt11align_val_t);
ALIAS(tc_delete_sized_aligned, _ZdlPvmSt11align_val_t);
ALIAS(tc_deletearray_sized_aligned, _ZdaPvmSt11align_val_t);
ALIAS(tc_delete_aligned_nothrow, _ZdlPvSt11align_val_tRKSt9nothrow_t);
ALIAS(tc_deletearray_aligned_nothrow, _ZdaPvSt11align_val_tRKSt9nothrow_t);

/* ------------------------------------------------------------------ */
/* statistics API                                                       */

EXPORT int pprofpy_malloc_stats(struct pprofpy_malloc_stats *st) {
    pp_get_stats(st);
    return 0;
}

static size_t append(char *buf, size_t len, size_t at, const char *s) {
    while (*s && at + 1 < len) buf[at++] = *s++;
    if (len) buf[at < len ? at : len - 1] = 0;
    return at;
}

static size_t append_line(char *buf, size_t len, size_t at, const char *label, size_t v) {
    char num[32], mib[40];
    at = append(buf, len, at, "MALLOC: ");
    pp_fmt_u(num, v);
    for (size_t k = strlen(num); k < 14; k++) at = append(buf, len, at, " ");
    at = append(buf, len, at, num);
    at = append(buf, len, at, " (");
    size_t m = v * 10 / (1 << 20);
    size_t n = pp_fmt_u(mib, m / 10);
    mib[n++] = '.';
    mib[n++] = (char)('0' + m % 10);
    mib[n] = 0;
    for (size_t k = n; k < 8; k++) at = append(buf, len, at, " ");
    at = append(buf, len, at, mib);
    at = append(buf, len, at, " MiB) ");
    at = append(buf, len, at, label);
    return append(buf, len, at, "\n");
}

static size_t append_count(char *buf, size_t len, size_t at, const char *label, size_t v) {
    char num[32];
    at = append(buf, len, at, "MALLOC: ");
    pp_fmt_u(num, v);
    for (size_t k = strlen(num); k < 14; k++) at = append(buf, len, at, " ");
    at = append(buf, len, at, num);
    at = append(buf, len, at, "              ");
    at = append(buf, len, at, label);
    return append(buf, len, at, "\n");
}

EXPORT size_t pprofpy_malloc_stats_text(char *buf, size_t len) {
    struct pprofpy_malloc_stats st;
    pp_get_stats(&st);
    size_t at = 0;
    if (len) buf[0] = 0;
    at = append(buf, len, at, "------------------------------------------------\n");
    at = append_line(buf, len, at, "Bytes in use by application", st.allocated_bytes);
    at = append_line(buf, len, at, "Bytes in page heap freelist", st.pageheap_free_bytes);
    at = append_line(buf, len, at, "Bytes in central cache freelist", st.central_cache_free_bytes);
    at = append_line(buf, len, at, "Bytes in transfer cache freelist", st.transfer_cache_free_bytes);
    at = append_line(buf, len, at, "Bytes in thread cache freelists", st.thread_cache_free_bytes);
    at = append_line(buf, len, at, "Bytes released to OS (aka unmapped)", st.pageheap_unmapped_bytes);
    at = append_line(buf, len, at, "Heap size (bytes reserved from the OS)", st.heap_size);
    at = append_line(buf, len, at, "Bytes of allocator metadata", st.metadata_bytes);
    at = append_count(buf, len, at, "Thread caches in use", st.thread_caches);
    at = append_count(buf, len, at, "Size classes", st.size_classes);
    char pct[32];
    size_t f = (size_t)(st.fragmentation * 1000.0 + 0.5);
    size_t n = pp_fmt_u(pct, f / 10);
    pct[n++] = '.';
    pct[n++] = (char)('0' + f % 10);
    pct[n] = 0;
    at = append(buf, len, at, "MALLOC: fragmentation ");
    at = append(buf, len, at, pct);
    at = append(buf, len, at, "% of the resident heap is free\n");
    at = append(buf, len, at, "------------------------------------------------\n");
    return at;
}

EXPORT void pprofpy_release_free_memory(void) { pp_release_free_memory(); }

/* ------------------------------------------------------------------ */
/* glibc's statistics and tuning calls, answered from our statistics    */

/* glibc's fields, as they map onto this allocator (the same mapping as
 * gperftools' tcmalloc):
 *   arena     bytes the page heap got from the OS (heap_size)
 *   ordblks   1 (the page heap), smblks 0: we keep no chunk counts
 *   hblks, hblkhd  0: large blocks come from the page heap, not from
 *             separate mmaps
 *   usmblks   0 (glibc too, since 2.24), fsmblks: free bytes in thread,
 *             transfer and central caches
 *   uordblks  bytes in use by the application (rounded to size classes)
 *   fordblks  free bytes in the page heap, resident or returned to the OS
 *   keepcost  free resident bytes in the page heap (what malloc_trim
 *             would give back)
 * so that uordblks + fsmblks + fordblks = arena. */
EXPORT struct mallinfo2 mallinfo2(void) {
    struct pprofpy_malloc_stats st;
    pp_get_stats(&st);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.heap_size;
    mi.ordblks = 1;
    mi.fsmblks = st.thread_cache_free_bytes + st.transfer_cache_free_bytes + st.central_cache_free_bytes;
    mi.uordblks = st.allocated_bytes;
    mi.fordblks = st.pageheap_free_bytes + st.pageheap_unmapped_bytes;
    mi.keepcost = st.pageheap_free_bytes;
    return mi;
}

/* The old interface: the same numbers truncated to int, as glibc does. */
EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    mi.arena = (int)m2.arena;
    mi.ordblks = (int)m2.ordblks;
    mi.smblks = (int)m2.smblks;
    mi.hblks = (int)m2.hblks;
    mi.hblkhd = (int)m2.hblkhd;
    mi.usmblks = (int)m2.usmblks;
    mi.fsmblks = (int)m2.fsmblks;
    mi.uordblks = (int)m2.uordblks;
    mi.fordblks = (int)m2.fordblks;
    mi.keepcost = (int)m2.keepcost;
    return mi;
}

/* The MALLOCSTATS report, on stderr like glibc's malloc_stats. */
EXPORT void malloc_stats(void) {
    char buf[2048];
    pprofpy_malloc_stats_text(buf, sizeof buf);
    pp_write_str(2, buf);
}

/* Returns 1 when memory was given back to the OS, like glibc.  pad (bytes
 * glibc keeps at the top of its heap) has no meaning here: every free
 * page is released. */
EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    return pp_release_free_memory() > 0;
}

/* M_TRIM_THRESHOLD sets the free resident bytes the page heap keeps
 * whatever their age (PPROFPY_MALLOC_RELEASE_THRESHOLD, page_heap.c).
 * glibc's other parameters (fastbins, top pad, mmap threshold and count,
 * check action, perturb, arenas) have no counterpart in this design; like
 * tcmalloc, mallopt accepts them (returns 1) without effect, so programs
 * tuned for glibc run unchanged.  An unknown parameter returns 0. */
EXPORT int mallopt(int param, int value) {
    if (param == M_TRIM_THRESHOLD) {
        if (value < 0) return 0;
        if (!pp_inited) pp_init();
        pp_ph_set_keep_bytes((size_t)value);
        return 1;
    }
    switch (param) {
    case M_MXFAST: case M_TOP_PAD: case M_MMAP_THRESHOLD: case M_MMAP_MAX: case M_CHECK_ACTION:
    case M_PERTURB: case M_ARENA_TEST: case M_ARENA_MAX:
        return 1;
    default:
        return 0;
    }
}

EXPORT int pprofpy_malloc_get_numeric_property(const char *name, size_t *value) {
    struct pprofpy_malloc_stats st;
    pp_get_stats(&st);
    static const struct { const char *name; size_t off; } props[] = {
        {"generic.current_allocated_bytes", offsetof(struct pprofpy_malloc_stats, allocated_bytes)},
        {"generic.heap_size", offsetof(struct pprofpy_malloc_stats, heap_size)},
        {"tcmalloc.pageheap_free_bytes", offsetof(struct pprofpy_malloc_stats, pageheap_free_bytes)},
        {"tcmalloc.pageheap_unmapped_bytes", offsetof(struct pprofpy_malloc_stats, pageheap_unmapped_bytes)},
        {"tcmalloc.central_cache_free_bytes", offsetof(struct pprofpy_malloc_stats, central_cache_free_bytes)},
        {"tcmalloc.transfer_cache_free_bytes", offsetof(struct pprofpy_malloc_stats, transfer_cache_free_bytes)},
        {"tcmalloc.thread_cache_free_bytes", offsetof(struct pprofpy_malloc_stats, thread_cache_free_bytes)},
        {"tcmalloc.metadata_bytes", offsetof(struct pprofpy_malloc_stats, metadata_bytes)},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (strcmp(name, props[i].name) == 0) {
            *value = *(size_t *)((char *)&st + props[i].off);
            return 1;
        }
    return 0;
}

EXPORT size_t pprofpy_malloc_good_size(size_t n) {
    if (!pp_inited) pp_init();
    if (n <= MAX_SMALL_SIZE) return pp_class_size[pp_size_class(n)];
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

EXPORT int pprofpy_malloc_is_active(void) {
    void *(*m)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
    return m == malloc;
}

/* ------------------------------------------------------------------ */
/* start-up, fork, exit                                                 */

static void fork_prepare(void) { pp_lock_all(); }
static void fork_parent(void) { pp_unlock_all(); }
static void fork_child(void) { pp_after_fork_child(); }

__attribute__((constructor)) static void malloc_ctor(void) {
    if (!pp_inited) pp_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* The MALLOCSTATS report's first line names the process: a program run
   through a wrapper (pyenv's shims, shell scripts) prints one report per
   process that exits, and they must be told apart.  The name is argv[0]
   (glibc's program_invocation_name) as the user typed it. */
static void write_stats_header(void) {
    char pid[24];
    pp_fmt_u(pid, (size_t)getpid());
    pp_write_str(2, "MALLOCSTATS: pid ");
    pp_write_str(2, pid);
    pp_write_str(2, " (");
    pp_write_str(2, program_invocation_name ? program_invocation_name : "?");
    pp_write_str(2, ")\n");
}

__attribute__((destructor)) static void malloc_dtor(void) {
    const char *ms = pp_getenv("MALLOCSTATS");
    if (ms && *ms && *ms != '0') {
        char buf[2048];
        pprofpy_malloc_stats_text(buf, sizeof buf);
        write_stats_header();
        pp_write_str(2, buf);
    }
    pp_prof_at_exit();
}
