/* pprof_py: gperftools-compatible tcmalloc.h.
 *
 * The tc_* names are pprof_py's malloc, free, operator new/delete and
 * friends under tcmalloc's names (the same code: calling tc_malloc is
 * calling malloc).  pprof_py provides the API of gperftools 2.10.
 */
#ifndef PPROFPY_GPERFTOOLS_TCMALLOC_H_
#define PPROFPY_GPERFTOOLS_TCMALLOC_H_

#include <stddef.h>

#ifdef __cplusplus
#include <new>
#endif

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

#define TC_VERSION_MAJOR 2
#define TC_VERSION_MINOR 10
#define TC_VERSION_PATCH ""
#define TC_VERSION_STRING "gperftools 2.10"

#ifdef __cplusplus
#define PERFTOOLS_NOTHROW noexcept
#else
#define PERFTOOLS_NOTHROW
#endif

struct mallinfo;

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the API provided; major/minor/patch may be NULL. */
PERFTOOLS_DLL_DECL const char *tc_version(int *major, int *minor, const char **patch) PERFTOOLS_NOTHROW;

PERFTOOLS_DLL_DECL void *tc_malloc(size_t size) PERFTOOLS_NOTHROW;
/* malloc that never calls the new handler, whatever tc_set_new_mode says */
PERFTOOLS_DLL_DECL void *tc_malloc_skip_new_handler(size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_free(void *ptr) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_free_sized(void *ptr, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_realloc(void *ptr, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_calloc(size_t nmemb, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_cfree(void *ptr) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_memalign(size_t alignment, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL int tc_posix_memalign(void **ptr, size_t align, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_valloc(size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_pvalloc(size_t size) PERFTOOLS_NOTHROW;

/* the MALLOCSTATS report on stderr */
PERFTOOLS_DLL_DECL void tc_malloc_stats(void) PERFTOOLS_NOTHROW;
/* accepted and ignored (returns 1), as in tcmalloc */
PERFTOOLS_DLL_DECL int tc_mallopt(int cmd, int value) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL struct mallinfo tc_mallinfo(void) PERFTOOLS_NOTHROW;

/* usable size of a block (malloc_usable_size) */
PERFTOOLS_DLL_DECL size_t tc_malloc_size(void *ptr) PERFTOOLS_NOTHROW;

/* flag 1: malloc, calloc and realloc call the C++ new handler on failure
 * until it gives up; returns the previous flag */
PERFTOOLS_DLL_DECL int tc_set_new_mode(int flag) PERFTOOLS_NOTHROW;

#ifdef __cplusplus
PERFTOOLS_DLL_DECL void *tc_new(size_t size);
PERFTOOLS_DLL_DECL void *tc_new_nothrow(size_t size, const std::nothrow_t &) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_delete(void *p) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_delete_sized(void *p, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_delete_nothrow(void *p, const std::nothrow_t &) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_newarray(size_t size);
PERFTOOLS_DLL_DECL void *tc_newarray_nothrow(size_t size, const std::nothrow_t &) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_deletearray(void *p) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_deletearray_sized(void *p, size_t size) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_deletearray_nothrow(void *p, const std::nothrow_t &) PERFTOOLS_NOTHROW;
#if __cplusplus >= 201703L
PERFTOOLS_DLL_DECL void *tc_new_aligned(size_t size, std::align_val_t al);
PERFTOOLS_DLL_DECL void *tc_new_aligned_nothrow(size_t size, std::align_val_t al,
                                                const std::nothrow_t &) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_delete_aligned(void *p, std::align_val_t al) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_delete_sized_aligned(void *p, size_t size, std::align_val_t al) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_delete_aligned_nothrow(void *p, std::align_val_t al,
                                                  const std::nothrow_t &) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void *tc_newarray_aligned(size_t size, std::align_val_t al);
PERFTOOLS_DLL_DECL void *tc_newarray_aligned_nothrow(size_t size, std::align_val_t al,
                                                     const std::nothrow_t &) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_deletearray_aligned(void *p, std::align_val_t al) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_deletearray_sized_aligned(void *p, size_t size, std::align_val_t al) PERFTOOLS_NOTHROW;
PERFTOOLS_DLL_DECL void tc_deletearray_aligned_nothrow(void *p, std::align_val_t al,
                                                       const std::nothrow_t &) PERFTOOLS_NOTHROW;
#endif
#endif /* __cplusplus: the C++-only functions */

#ifdef __cplusplus
}
#endif

#endif
