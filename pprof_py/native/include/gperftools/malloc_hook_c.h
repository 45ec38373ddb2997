/* pprof_py: gperftools-compatible MallocHook C interface.
 *
 * Hooks are functions the allocator calls on every allocation and free
 * and around mmap, munmap, mremap and sbrk.  Up to 7 hooks of each kind
 * may be added.  A hook runs in the allocating thread with the allocator
 * unlocked; allocations made inside a hook are not reported to the hooks.
 * See docs/gperftools-api.md for where pprof_py differs from gperftools.
 */
#ifndef PPROFPY_GPERFTOOLS_MALLOC_HOOK_C_H_
#define PPROFPY_GPERFTOOLS_MALLOC_HOOK_C_H_

#include <stddef.h>
#include <sys/types.h>

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Return addresses of the code that called the allocation function which
 * is running the current hook (innermost first), after skipping
 * skip_count frames.  Returns the number stored, 0 outside a hook. */
PERFTOOLS_DLL_DECL int MallocHook_GetCallerStackTrace(void **result, int max_depth, int skip_count);

/* Add* returns 1 on success, 0 if the list is full or hook is NULL;
 * Remove* returns 1 if the hook was in the list. */

/* After each allocation: the block and the requested size. */
typedef void (*MallocHook_NewHook)(const void *ptr, size_t size);
PERFTOOLS_DLL_DECL int MallocHook_AddNewHook(MallocHook_NewHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemoveNewHook(MallocHook_NewHook hook);

/* Before each free (also free(NULL)). */
typedef void (*MallocHook_DeleteHook)(const void *ptr);
PERFTOOLS_DLL_DECL int MallocHook_AddDeleteHook(MallocHook_DeleteHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemoveDeleteHook(MallocHook_DeleteHook hook);

/* Before mmap(), with its arguments. */
typedef void (*MallocHook_PreMmapHook)(const void *start, size_t size, int protection, int flags, int fd,
                                       off_t offset);
PERFTOOLS_DLL_DECL int MallocHook_AddPreMmapHook(MallocHook_PreMmapHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemovePreMmapHook(MallocHook_PreMmapHook hook);

/* After mmap(): its result and arguments. */
typedef void (*MallocHook_MmapHook)(const void *result, const void *start, size_t size, int protection,
                                    int flags, int fd, off_t offset);
PERFTOOLS_DLL_DECL int MallocHook_AddMmapHook(MallocHook_MmapHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemoveMmapHook(MallocHook_MmapHook hook);

/* Instead of mmap(): return nonzero and set *result to handle the call.
 * One replacement at a time (Set fails while another is set). */
typedef int (*MallocHook_MmapReplacement)(const void *start, size_t size, int protection, int flags, int fd,
                                          off_t offset, void **result);
int MallocHook_SetMmapReplacement(MallocHook_MmapReplacement hook);
int MallocHook_RemoveMmapReplacement(MallocHook_MmapReplacement hook);

/* Before munmap(). */
typedef void (*MallocHook_MunmapHook)(const void *ptr, size_t size);
PERFTOOLS_DLL_DECL int MallocHook_AddMunmapHook(MallocHook_MunmapHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemoveMunmapHook(MallocHook_MunmapHook hook);

/* Instead of munmap(): return nonzero and set *result to handle the call. */
typedef int (*MallocHook_MunmapReplacement)(const void *ptr, size_t size, int *result);
int MallocHook_SetMunmapReplacement(MallocHook_MunmapReplacement hook);
int MallocHook_RemoveMunmapReplacement(MallocHook_MunmapReplacement hook);

/* After mremap(). */
typedef void (*MallocHook_MremapHook)(const void *result, const void *old_addr, size_t old_size,
                                      size_t new_size, int flags, const void *new_addr);
PERFTOOLS_DLL_DECL int MallocHook_AddMremapHook(MallocHook_MremapHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemoveMremapHook(MallocHook_MremapHook hook);

/* Before and after sbrk(). */
typedef void (*MallocHook_PreSbrkHook)(ptrdiff_t increment);
PERFTOOLS_DLL_DECL int MallocHook_AddPreSbrkHook(MallocHook_PreSbrkHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemovePreSbrkHook(MallocHook_PreSbrkHook hook);
typedef void (*MallocHook_SbrkHook)(const void *result, ptrdiff_t increment);
PERFTOOLS_DLL_DECL int MallocHook_AddSbrkHook(MallocHook_SbrkHook hook);
PERFTOOLS_DLL_DECL int MallocHook_RemoveSbrkHook(MallocHook_SbrkHook hook);

/* Deprecated single-hook interface: each kind has one extra slot that
 * Set* replaces, returning the previous occupant. */
PERFTOOLS_DLL_DECL MallocHook_NewHook MallocHook_SetNewHook(MallocHook_NewHook hook);
PERFTOOLS_DLL_DECL MallocHook_DeleteHook MallocHook_SetDeleteHook(MallocHook_DeleteHook hook);
PERFTOOLS_DLL_DECL MallocHook_PreMmapHook MallocHook_SetPreMmapHook(MallocHook_PreMmapHook hook);
PERFTOOLS_DLL_DECL MallocHook_MmapHook MallocHook_SetMmapHook(MallocHook_MmapHook hook);
PERFTOOLS_DLL_DECL MallocHook_MunmapHook MallocHook_SetMunmapHook(MallocHook_MunmapHook hook);
PERFTOOLS_DLL_DECL MallocHook_MremapHook MallocHook_SetMremapHook(MallocHook_MremapHook hook);
PERFTOOLS_DLL_DECL MallocHook_PreSbrkHook MallocHook_SetPreSbrkHook(MallocHook_PreSbrkHook hook);
PERFTOOLS_DLL_DECL MallocHook_SbrkHook MallocHook_SetSbrkHook(MallocHook_SbrkHook hook);

#ifdef __cplusplus
}
#endif

#endif
