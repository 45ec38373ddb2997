/* Start-up and whole-allocator operations: initialisation (and the
 * environment variables that configure the allocator), fork's lock-all,
 * the statistics snapshot and "release all free memory".
 *
 * Lock order (never reversed): heap profiler -> thread-cache registry ->
 * central list (by class) -> page heap -> metadata arena -> region
 * registry -> MemoryRegionMap's (taken inside mmap, which the page heap
 * and the arena call with their locks held).  pp_lock_all() takes them all
 * in that order for fork() and the leak checker.
 *
 * Environment (read once, at initialisation, without allocating):
 *   PPROFPY_MALLOC_DECAY_MS            free pages unused this long go back
 *                                      to the OS (default 1000; page_heap.c)
 *   PPROFPY_MALLOC_RELEASE_THRESHOLD   bytes of free pages kept resident
 *                                      whatever their age (default 0; also
 *                                      mallopt(M_TRIM_THRESHOLD))
 *   PPROFPY_MALLOC_BACKGROUND_THREAD   0: no background release thread;
 *                                      aged pages are then released on the
 *                                      page heap's next operation
 *   TCMALLOC_RELEASE_RATE, TCMALLOC_AGGRESSIVE_DECOMMIT,
 *   TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES   tcmalloc's knobs
 *                                      (gperftools_tcmalloc.c)
 */
#define _GNU_SOURCE
#include <string.h>

#include "gperftools_glue.h"
#include "internal.h"
#include "malloc_extension.h"

int pp_inited;
static pp_lock_t init_lock;

/* decimal value of an environment variable, or dflt when unset/invalid */
static size_t env_size(const char *name, size_t dflt) {
    const char *v = pp_getenv(name);
    if (!v || *v < '0' || *v > '9') return dflt;
    size_t n = 0;
    for (; *v >= '0' && *v <= '9'; v++) n = n * 10 + (size_t)(*v - '0');
    return n;
}

void pp_init(void) {
    pp_lock(&init_lock);
    if (pp_inited) {
        pp_unlock(&init_lock);
        return;
    }
    pp_size_map_init();
    pp_ph_init(env_size("PPROFPY_MALLOC_RELEASE_THRESHOLD", 0), env_size("PPROFPY_MALLOC_DECAY_MS", 1000),
               env_size("PPROFPY_MALLOC_BACKGROUND_THREAD", 1) != 0);
    pp_central_init();
    pp_tc_init();
    __atomic_store_n(&pp_inited, 1, __ATOMIC_RELEASE);
    pp_unlock(&init_lock);
    pp_ext_init_from_env();
    pp_prof_init_from_env();
}

void pp_lock_all(void) {
    pp_prof_lock_all();
    pp_tc_lock_all();
    pp_central_lock_all();
    pp_ph_lock_all();
    pp_sys_lock_all();
    pp_regions_lock();
}

void pp_unlock_all(void) {
    pp_regions_unlock();
    pp_sys_unlock_all();
    pp_ph_unlock_all();
    pp_central_unlock_all();
    pp_tc_unlock_all();
    pp_prof_unlock_all();
}

void pp_after_fork_child(void) {
    pp_unlock_all();
    pp_ph_after_fork_child();
}

size_t pp_release_free_memory(void) {
    if (!pp_inited) return 0;
    tcache_t *tc = pp_tc;
    if (tc) pp_tc_flush(tc);
    pp_tc_flush_parked_all();    /* caches of exited threads */
    pp_central_flush();          /* so that empty spans go back to the page heap */
    return pp_ph_release_all();
}

void pp_get_stats(struct pprofpy_malloc_stats *st) {
    memset(st, 0, sizeof *st);
    if (!pp_inited) return;
    pp_ph_stats(st);
    pp_central_stats(st);
    pp_tc_stats(st);
    st->metadata_bytes = pp_metadata_bytes;
    size_t free_all = st->pageheap_free_bytes + st->pageheap_unmapped_bytes + st->central_cache_free_bytes +
                      st->transfer_cache_free_bytes + st->thread_cache_free_bytes;
    st->allocated_bytes = st->heap_size > free_all ? st->heap_size - free_all : 0;
    size_t resident = st->heap_size - st->pageheap_unmapped_bytes;
    st->fragmentation = resident ? 1.0 - (double)st->allocated_bytes / (double)resident : 0.0;
    st->size_classes = (size_t)(pp_num_classes - 1);
}
