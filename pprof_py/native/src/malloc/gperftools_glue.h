/* The C interface between the allocator core (api.c, heapprof.c) and the
 * gperftools compatibility layer (gperftools_*.c, gperftools_*.cc), in a
 * header both C and C++ include.  Hidden: none of this is exported.
 */
#ifndef PPROFPY_GPERFTOOLS_GLUE_H
#define PPROFPY_GPERFTOOLS_GLUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PP_GLUE __attribute__((visibility("hidden")))

#ifdef __cplusplus
extern "C" {
#endif

/* ---- MallocHook (gperftools_hooks.c) ---- */
/* Nonzero while a new/delete hook is installed or the heap checker follows
   allocations (Disabler, IgnoreObject).  Every allocation entry point in
   api.c tests it once and then calls the runners, which invoke the hooks
   under a per-thread guard, so a hook that allocates is not re-entered. */
extern PP_GLUE volatile int pp_hooks_on;
PP_GLUE void pp_run_new_hooks(const void *p, size_t n);
PP_GLUE void pp_run_delete_hooks(const void *p);
#define PP_HOOKS_HEAPCHECK 2          /* pp_hooks_on bit of the heap checker */
PP_GLUE void pp_hooks_set_bit(int bit, int on);
/* Invoke one kind of hook (no guard): MallocHook::Invoke*Slow */
PP_GLUE void pp_invoke_new_hook(const void *p, size_t n);
PP_GLUE void pp_invoke_delete_hook(const void *p);
PP_GLUE void pp_invoke_pre_mmap_hook(const void *start, size_t size, int prot, int flags, int fd, off_t off);
PP_GLUE void pp_invoke_mmap_hook(const void *result, const void *start, size_t size, int prot, int flags,
                                 int fd, off_t off);
PP_GLUE int pp_invoke_mmap_replacement(const void *start, size_t size, int prot, int flags, int fd, off_t off,
                                       void **result);
PP_GLUE void pp_invoke_munmap_hook(const void *p, size_t size);
PP_GLUE int pp_invoke_munmap_replacement(const void *p, size_t size, int *result);
PP_GLUE void pp_invoke_mremap_hook(const void *result, const void *old, size_t old_size, size_t new_size,
                                   int flags, const void *new_addr);
PP_GLUE void pp_invoke_pre_sbrk_hook(ptrdiff_t increment);
PP_GLUE void pp_invoke_sbrk_hook(const void *result, ptrdiff_t increment);
/* mmap / munmap without hooks (MallocHook::UnhookedMMap) */
PP_GLUE void *pp_raw_mmap(void *start, size_t len, int prot, int flags, int fd, off_t off);
PP_GLUE int pp_raw_munmap(void *start, size_t len);

/* FLAGS_tcmalloc_release_rate (page_heap.c), exported under tcmalloc's name */
#define PP_FLAG_RELEASE_RATE \
    __asm__("_ZN62FLAG__namespace_do_not_use_directly_use_DECLARE_double_instead27FLAGS_tcmalloc_release_rateE") \
    __attribute__((visibility("default")))
extern double pp_release_rate PP_FLAG_RELEASE_RATE;
/* FLAGS_tcmalloc_heap_limit_mb (page_heap.c) */
#define PP_FLAG_HEAP_LIMIT_MB \
    __asm__("_ZN61FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead27FLAGS_tcmalloc_heap_limit_mbE") \
    __attribute__((visibility("default")))
extern int64_t pp_heap_limit_mb PP_FLAG_HEAP_LIMIT_MB;

/* MallocExtension::SetSystemAllocator: the page heap grows through this
   (system_alloc.c) when set; NULL = its own mmap */
extern PP_GLUE void *(*volatile pp_user_sys_alloc)(size_t size, size_t *actual, size_t align);

/* ---- tcmalloc.h (gperftools_tcmalloc.c) ---- */
/* tc_set_new_mode(1): malloc calls the C++ new handler on failure */
extern PP_GLUE volatile int pp_new_mode;

/* MallocExtension's C side (gperftools_tcmalloc.c) */
PP_GLUE int pp_ext_ownership(const void *p);           /* 1 owned, 2 not owned */
PP_GLUE size_t pp_ext_allocated_size(const void *p);   /* 0 if not owned */
PP_GLUE size_t pp_ext_thread_cache_size(void);
PP_GLUE int pp_ext_get_property(const char *name, size_t *value);
PP_GLUE int pp_ext_set_property(const char *name, size_t value);
PP_GLUE void pp_ext_release_to_system(size_t bytes);   /* about `bytes`, with tcmalloc's credit */
PP_GLUE void pp_ext_release_free_memory(void);         /* caches and every free page; clears the credit */
PP_GLUE void pp_ext_init_from_env(void);
/* calls fn for every span: type 0 in use, 1 free, 2 released to the OS */
PP_GLUE void pp_ext_ranges(void (*fn)(void *arg, uintptr_t start, size_t len, int type, double fraction),
                           void *arg);
/* gperftools_growth.c: page_heap.c calls this each time the page heap grows
   (page-heap lock held: it does not allocate or take allocator locks) */
PP_GLUE void pp_note_heap_growth(size_t bytes);
/* the growth stacks as a heap profile ("@ growth"); free() it */
PP_GLUE char *pp_growth_profile(void);
/* return addresses of the code that called into this library (frames of
   the library itself dropped), innermost first */
PP_GLUE int pp_stack_above_library(void **result, int max_depth, int skip_count);
/* api.c / init.c pieces the C++ layer calls */
PP_GLUE size_t pp_release_free_memory(void);         /* init.c: bytes given back */
char *GetHeapProfile(void);                           /* heapprof.c (exported) */
size_t pprofpy_malloc_stats_text(char *buf, size_t len);

/* ---- MemoryRegionMap (gperftools_regions.c) ---- */
/* MemoryRegionMap::Region, gperftools 2.10's layout */
#define PP_REGION_MAX_STACK 32
struct pp_region {
    uintptr_t start_addr, end_addr;
    int call_stack_depth;
    const void *call_stack[PP_REGION_MAX_STACK];
#ifdef __cplusplus
    bool is_stack;
#else
    _Bool is_stack;
#endif
};
/* libstdc++'s std::_Rb_tree_node<Region>: the base's color and links, then the value */
struct pp_rb_node {
    int color;
    struct pp_rb_node *parent, *left, *right;
    struct pp_region value;
};
extern PP_GLUE volatile int pp_regions_on;     /* recording (the leak checker is on) */
PP_GLUE void pp_regions_lock(void);           /* recursive */
PP_GLUE void pp_regions_unlock(void);
PP_GLUE int pp_regions_lock_held(void);
PP_GLUE struct pp_rb_node *pp_regions_header(void);   /* the set's end(); header->left = begin() */
PP_GLUE void pp_regions_mapped(const void *p, size_t len, const void *caller);
PP_GLUE void pp_regions_unmapped(const void *p, size_t len);
PP_GLUE void pp_regions_start(void);

/* ---- HeapLeakChecker support ---- */
/* A leak check (heapprof.c) asks the heap-checker layer
   (gperftools_heapcheck.cc) which objects are ignored roots (IgnoreObject,
   allocations under a Disabler) and, for a named checker, which objects it
   may report (those not live when the checker was made). */
struct pp_leak_query {
    const char *name;                              /* "_main_" for the whole-program check */
    int (*may_report)(uintptr_t addr, void *ctx);  /* NULL: every unreachable object */
    void *ctx;
    int at_exit;                                   /* the check at exit: its report ends the process */
    size_t leaked_bytes, leaked_objects;           /* results */
};
/* heapprof.c: */
PP_GLUE int pp_leak_check_run(struct pp_leak_query *q);     /* 1: leaks found and reported */
PP_GLUE int pp_leak_check_on(void);                         /* HEAPCHECK is set */
/* fn for every object the heap profiler knows (fn must not allocate) */
PP_GLUE void pp_prof_each_object(void (*fn)(uintptr_t addr, size_t size, void *ctx), void *ctx);
/* the return address into the function that allocated p, or NULL */
PP_GLUE void *pp_prof_alloc_caller(const void *p);
/* gperftools_heapcheck.cc: */
PP_GLUE int pp_hc_is_ignored(uintptr_t addr);
PP_GLUE void pp_hc_note_new(const void *p);        /* called by the hook runners */
PP_GLUE void pp_hc_note_delete(const void *p);
PP_GLUE int pp_hc_global_check_wanted(void);       /* at exit; runs HeapCleaner functions first */

#ifdef __cplusplus
}
#endif

#endif
