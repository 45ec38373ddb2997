/* pprof_py allocator: statistics and controls (in the spirit of tcmalloc's
 * MallocExtension).  Available in a process that runs with pprof_py's
 * allocator (_libmalloc*.so) in LD_PRELOAD, or linked against it.
 */
#ifndef PPROFPY_MALLOC_EXTENSION_H
#define PPROFPY_MALLOC_EXTENSION_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pprofpy_malloc_stats {
    size_t allocated_bytes;           /* bytes handed to the application (rounded to size classes) */
    size_t heap_size;                 /* bytes reserved from the OS by the page heap */
    size_t pageheap_free_bytes;       /* free, still resident spans */
    size_t pageheap_unmapped_bytes;   /* free spans returned to the OS (or never touched) */
    size_t central_cache_free_bytes;  /* free objects inside spans owned by central lists */
    size_t transfer_cache_free_bytes; /* free objects in central transfer batches */
    size_t thread_cache_free_bytes;   /* free objects held by thread caches */
    size_t metadata_bytes;            /* allocator's own bookkeeping (spans, caches, page map) */
    size_t thread_caches;             /* live thread caches */
    size_t size_classes;              /* number of small-object size classes */
    size_t release_threshold;         /* free resident bytes kept whatever their age (M_TRIM_THRESHOLD) */
    double fragmentation;             /* 1 - allocated / resident heap */
};

/* Fill *stats.  Returns 0. */
int pprofpy_malloc_stats(struct pprofpy_malloc_stats *stats);

/* Human-readable statistics into buf (NUL-terminated, truncated to len).
 * Returns the number of bytes written without the NUL. */
size_t pprofpy_malloc_stats_text(char *buf, size_t len);

/* Move the calling thread's cached objects and every idle span back to the
 * page heap and return all free pages to the OS (madvise MADV_DONTNEED). */
void pprofpy_release_free_memory(void);

/* tcmalloc-style numeric properties: "generic.current_allocated_bytes",
 * "generic.heap_size", "tcmalloc.pageheap_free_bytes",
 * "tcmalloc.pageheap_unmapped_bytes", "tcmalloc.central_cache_free_bytes",
 * "tcmalloc.transfer_cache_free_bytes", "tcmalloc.thread_cache_free_bytes",
 * "tcmalloc.metadata_bytes".  Returns 1 and sets *value if known, else 0. */
int pprofpy_malloc_get_numeric_property(const char *name, size_t *value);

/* Size class of a request (0 = served by whole pages) and bytes reserved
 * for it; the allocator never returns fewer usable bytes than requested. */
size_t pprofpy_malloc_good_size(size_t size);

/* 1 when this library's malloc is the process's malloc. */
int pprofpy_malloc_is_active(void);

#ifdef __cplusplus
}
#endif

#endif
