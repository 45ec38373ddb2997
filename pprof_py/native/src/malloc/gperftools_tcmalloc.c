/* gperftools' tcmalloc.h and nallocx.h functions that are not plain aliases
 * of the entry points (those are at the end of api.c), and the C side of
 * MallocExtension (gperftools_extension.cc forwards its methods here, so
 * everything that touches the allocator's internals is C).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <string.h>
#include <unistd.h>

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
    return "gperftools 2.10 (pprof_py)";
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
    } else {
        return 0;
    }
    return 1;
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
