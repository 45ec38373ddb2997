/* gperftools' tcmalloc.h and nallocx.h functions that are not plain aliases
 * of the entry points (those are at the end of api.c), and the C side of
 * MallocExtension (gperftools_extension.cc forwards its methods here, so
 * everything that touches the allocator's internals is C).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gperftools_glue.h"
#include "heap.h"
#include "internal.h"
#include "malloc_extension.h"

#define EXPORT __attribute__((visibility("default")))

/* The gperftools release whose API this library provides. */
#define TC_MAJOR 2
#define TC_MINOR 10

volatile int pp_new_mode;

EXPORT const char *tc_version(int *major, int *minor, const char **patch) {
    if (major) *major = TC_MAJOR;
    if (minor) *minor = TC_MINOR;
    if (patch) *patch = "";
    /* exactly gperftools' PACKAGE_STRING: programs (and gperftools' own
       tests) compare it; pprofpy_* functions say it is pprof_py */
    return "gperftools 2.10";
}

/* 1: malloc failures call the C++ new handler (see api.c); returns the
   previous mode */
EXPORT int tc_set_new_mode(int flag) { return __atomic_exchange_n(&pp_new_mode, flag, __ATOMIC_RELAXED); }
EXPORT int tc_query_new_mode(void) { return pp_new_mode; }

/* Usable size malloc would give for a request; flags' low 6 bits are
   log2(alignment) (jemalloc's MALLOCX_LG_ALIGN), 0 = default alignment. */
EXPORT size_t nallocx(size_t size, int flags) {
    size_t align = flags ? (size_t)1 << (flags & 0x3f) : 0;
    if (!pp_inited) pp_init();
    if (size <= MAX_SMALL_SIZE && align <= PAGE_SIZE) {
        int cl = pp_size_class(size);
        if (align > 16)                 /* the same class search as alloc_raw */
            while (cl < pp_num_classes && pp_class_size[cl] % align) cl++;
        if (cl < pp_num_classes) return pp_class_size[cl];
    }
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}
EXPORT size_t tc_nallocx(size_t size, int flags) __attribute__((alias("nallocx")));

/* tcmalloc's names for glibc's statistics and tuning calls: the same
   answers as mallinfo, malloc_stats and mallopt (api.c, which documents
   the field mapping and the parameters mallopt applies). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
EXPORT struct mallinfo tc_mallinfo(void) { return mallinfo(); }
#pragma GCC diagnostic pop
EXPORT void tc_malloc_stats(void) { malloc_stats(); }
EXPORT int tc_mallopt(int cmd, int value) { return mallopt(cmd, value); }

/* ------------------------------------------------------------------ */
/* MallocExtension's C side                                             */

/* 1 owned (a block this allocator handed out and has not freed), 2 not
   owned: gperftools' MallocExtension::Ownership values. */
PP_GLUE int pp_ext_ownership(const void *p) {
    if (!p || !pp_inited) return 2;
    span_t *s = pp_span_of(p);
    if (!s || s->location != SPAN_IN_USE) return 2;
    return 1;
}

/* Usable size of an owned block, 0 for any other pointer. */
PP_GLUE size_t pp_ext_allocated_size(const void *p) {
    if (pp_ext_ownership(p) != 1) return 0;
    span_t *s = pp_span_of(p);
    return s->sizeclass ? pp_class_size[s->sizeclass] : s->npages << PAGE_SHIFT;
}

/* Bytes of free objects in the calling thread's cache (tcmalloc's
   GetThreadCacheSize: 0 right after MarkThreadIdle). */
PP_GLUE size_t pp_ext_thread_cache_size(void) {
    tcache_t *tc = pp_tc;
    return tc ? tc->size : 0;
}

/* tcmalloc's numeric properties (the ones this allocator can answer). */
PP_GLUE int pp_ext_get_property(const char *name, size_t *value) {
    if (!name || !value) return 0;
    if (pprofpy_malloc_get_numeric_property(name, value)) return 1;
    struct pprofpy_malloc_stats st;
    pp_get_stats(&st);
    if (strcmp(name, "generic.total_physical_bytes") == 0) {
        *value = st.heap_size + st.metadata_bytes - st.pageheap_unmapped_bytes;
    } else if (strcmp(name, "tcmalloc.slack_bytes") == 0) {
        *value = st.pageheap_free_bytes + st.pageheap_unmapped_bytes;
    } else if (strcmp(name, "tcmalloc.pageheap_committed_bytes") == 0) {
        *value = st.heap_size - st.pageheap_unmapped_bytes;
    } else if (strcmp(name, "tcmalloc.current_total_thread_cache_bytes") == 0) {
        *value = st.thread_cache_free_bytes;
    } else if (strcmp(name, "tcmalloc.max_total_thread_cache_bytes") == 0) {
        *value = pp_tc_overall_budget;
    } else if (strcmp(name, "tcmalloc.aggressive_memory_decommit") == 0) {
        *value = (size_t)pp_ph_aggressive_decommit();
    } else if (strcmp(name, "tcmalloc.heap_limit_mb") == 0) {
        *value = pp_heap_limit_mb > 0 ? (size_t)pp_heap_limit_mb : 0;
    } else {
        return 0;
    }
    return 1;
}

/* The writable properties (MallocExtension::SetNumericProperty):
 *   tcmalloc.max_total_thread_cache_bytes  bytes all thread caches together
 *       may grow to beyond their first 2 MiB each (thread_cache.c; caches
 *       already bigger shrink as they overflow, not at once)
 *   tcmalloc.aggressive_memory_decommit    nonzero: free pages go back to
 *       the OS as soon as they are free (page_heap.c)
 *   tcmalloc.heap_limit_mb                 the resident heap's limit in MiB,
 *       0 = none (page_heap.c)
 * Anything else returns 0. */
PP_GLUE int pp_ext_set_property(const char *name, size_t value) {
    if (!name) return 0;
    if (!pp_inited) pp_init();
    if (strcmp(name, "tcmalloc.max_total_thread_cache_bytes") == 0) {
        pp_tc_overall_budget = value;
        return 1;
    }
    if (strcmp(name, "tcmalloc.aggressive_memory_decommit") == 0) {
        pp_ph_set_aggressive_decommit(value != 0);
        return 1;
    }
    if (strcmp(name, "tcmalloc.heap_limit_mb") == 0) {
        pp_heap_limit_mb = value > (size_t)INT64_MAX ? INT64_MAX : (int64_t)value;
        return 1;
    }
    return 0;
}

/* MallocExtension::ReleaseToSystem(n), as tcmalloc counts it: free pages
 * are released a whole span at a time, so a call usually releases more than
 * asked; the excess is credited to the next calls, which release nothing
 * until they ask for more than the credit.  At least one span goes back
 * whenever the credit does not cover the request (even for n < one page).
 * Only the page heap's free pages are considered (the caches are left
 * alone); ReleaseFreeMemory() empties the caches first and releases all,
 * which clears the credit. */
static pp_lock_t release_lock;
static size_t release_credit;

PP_GLUE void pp_ext_release_to_system(size_t bytes) {
    if (!pp_inited) return;
    pp_lock(&release_lock);
    if (bytes <= release_credit) {
        release_credit -= bytes;
    } else {
        bytes -= release_credit;
        size_t pages = bytes >> PAGE_SHIFT;
        size_t done = pp_ph_release_at_least(pages ? pages : 1) << PAGE_SHIFT;
        release_credit = done > bytes ? done - bytes : 0;
    }
    pp_unlock(&release_lock);
}

PP_GLUE void pp_ext_release_free_memory(void) {
    pp_release_free_memory();
    pp_lock(&release_lock);
    release_credit = 0;
    pp_unlock(&release_lock);
}

/* TCMALLOC_RELEASE_RATE (a decimal number; FLAGS_tcmalloc_release_rate),
 * TCMALLOC_AGGRESSIVE_DECOMMIT (true/1), TCMALLOC_HEAP_LIMIT_MB and
 * TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES, as gperftools reads them;
 * init.c calls this once the page heap is up.  Parsed by hand: strtod may
 * allocate. */
PP_GLUE void pp_ext_init_from_env(void) {
    const char *v = pp_getenv("TCMALLOC_RELEASE_RATE");
    if (v && ((*v >= '0' && *v <= '9') || *v == '.')) {
        double r = 0, scale = 1;
        for (; *v >= '0' && *v <= '9'; v++) r = r * 10 + (*v - '0');
        if (*v == '.')
            for (v++; *v >= '0' && *v <= '9'; v++) r += (*v - '0') * (scale /= 10);
        pp_release_rate = r;
    }
    if (pp_env_bool("TCMALLOC_AGGRESSIVE_DECOMMIT", 0)) pp_ph_set_aggressive_decommit(1);
    pp_heap_limit_mb = (int64_t)pp_env_size("TCMALLOC_HEAP_LIMIT_MB", 0);
    size_t budget = pp_env_size("TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES", 0);
    if (budget) pp_tc_overall_budget = budget;
}

/* ------------------------------------------------------------------ */
/* tcmalloc's system allocator (system-alloc.h): libtcmalloc exports it and
 * gperftools' tests call it.  Memory comes from the page heap's source
 * (pp_os_map_heap) but is the caller's: the page heap never sees it. */
size_t pp_system_taken __asm__("TCMalloc_SystemTaken") __attribute__((visibility("default")));

/* void *TCMalloc_SystemAlloc(size_t bytes, size_t *actual_bytes, size_t alignment) */
EXPORT void *pp_tcmalloc_system_alloc(size_t bytes, size_t *actual, size_t align) __asm__("_Z20TCMalloc_SystemAllocmPmm");
EXPORT void *pp_tcmalloc_system_alloc(size_t bytes, size_t *actual, size_t align) {
    if (align < PAGE_SIZE) align = PAGE_SIZE;
    if (align & (align - 1)) return NULL;
    size_t n = (bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (n < bytes || n == 0) n = bytes ? 0 : PAGE_SIZE;
    if (!n) return NULL;
    void *p = pp_os_map_heap(n, align);
    if (!p) return NULL;
    __atomic_add_fetch(&pp_system_taken, n, __ATOMIC_RELAXED);
    if (actual) *actual = n;
    return p;
}

/* bool TCMalloc_SystemRelease(void *start, size_t length): the whole pages
   inside the range go back to the OS (they stay mapped and read as zero
   when touched again); true when something was released. */
EXPORT int pp_tcmalloc_system_release(void *start, size_t len) __asm__("_Z22TCMalloc_SystemReleasePvm");
EXPORT int pp_tcmalloc_system_release(void *start, size_t len) {
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = pg > 0 ? (uintptr_t)pg : 4096;
    uintptr_t a = ((uintptr_t)start + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)start + len) & ~(page - 1);
    if (!start || e <= a) return 0;
    return madvise((void *)a, e - a, MADV_DONTNEED) == 0;
}

/* void TCMalloc_SystemCommit(void *start, size_t length): released pages
   fault back in when touched, so there is nothing to do. */
EXPORT void pp_tcmalloc_system_commit(void *start, size_t len) __asm__("_Z21TCMalloc_SystemCommitPvm");
EXPORT void pp_tcmalloc_system_commit(void *start, size_t len) {
    (void)start;
    (void)len;
}

/* MallocExtension::Ranges: every span of the page heap, found by walking the
 * page map over the allocator's regions (pages of its metadata regions map
 * to no span and are skipped a radix leaf at a time where the leaf is
 * absent).  No allocator lock is taken, so spans that change meanwhile may
 * be reported in their old or new state; span structures are never
 * unmapped, so reading them is safe.  type: 0 in use, 1 free, 2 released
 * (base::MallocRange::Type). */
#define RANGE_REGIONS 4096
static pp_lock_t ranges_lock;
static uintptr_t range_starts[RANGE_REGIONS], range_ends[RANGE_REGIONS];

PP_GLUE void pp_ext_ranges(void (*fn)(void *arg, uintptr_t start, size_t len, int type, double fraction),
                           void *arg) {
    if (!pp_inited) return;
    pp_lock(&ranges_lock);
    size_t n = pp_owned_regions(range_starts, range_ends, RANGE_REGIONS);
    for (size_t r = 0; r < n; r++) {
        uintptr_t page = range_starts[r] >> PAGE_SHIFT, end = range_ends[r] >> PAGE_SHIFT;
        while (page < end) {
            uintptr_t i1 = page >> PM_LEAF_BITS;
            if (i1 >= ((uintptr_t)1 << PM_ROOT_BITS)) break;
            if (!__atomic_load_n(&pp_pagemap_root[i1], __ATOMIC_ACQUIRE)) {
                page = (i1 + 1) << PM_LEAF_BITS;         /* no leaf: no span in these pages */
                continue;
            }
            span_t *s = pp_span_of((void *)(page << PAGE_SHIFT));
            if (!s || s->start != page || !s->npages) {
                page++;
                continue;
            }
            int type = s->location == SPAN_IN_USE ? 0 : s->location == SPAN_FREE ? 1 : 2;
            double fraction = 0.0;
            if (type == 0)
                fraction = s->sizeclass ? (double)s->refcount * (double)pp_class_size[s->sizeclass] /
                                              (double)(s->npages << PAGE_SHIFT)
                                        : 1.0;
            if (s->location != SPAN_DEAD) fn(arg, s->start << PAGE_SHIFT, s->npages << PAGE_SHIFT, type, fraction);
            page = s->start + s->npages;
        }
    }
    pp_unlock(&ranges_lock);
}
