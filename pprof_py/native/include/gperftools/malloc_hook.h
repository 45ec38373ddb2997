/* pprof_py: gperftools-compatible MallocHook C++ interface.
 *
 * The class is a namespace of static functions over the C interface in
 * malloc_hook_c.h (its symbols and layout are those of gperftools 2.10, so
 * code compiled against gperftools' header links against pprof_py).
 *
 *   static void MyNewHook(const void *p, size_t n) { ... }
 *   MallocHook::AddNewHook(&MyNewHook);
 */
#ifndef PPROFPY_GPERFTOOLS_MALLOC_HOOK_H_
#define PPROFPY_GPERFTOOLS_MALLOC_HOOK_H_

#include <stddef.h>
#include <sys/types.h>

extern "C" {
#include "malloc_hook_c.h"
}

class PERFTOOLS_DLL_DECL MallocHook {
 public:
  typedef MallocHook_NewHook NewHook;
  typedef MallocHook_DeleteHook DeleteHook;
  typedef MallocHook_PreMmapHook PreMmapHook;
  typedef MallocHook_MmapReplacement MmapReplacement;
  typedef MallocHook_MmapHook MmapHook;
  typedef MallocHook_MunmapReplacement MunmapReplacement;
  typedef MallocHook_MunmapHook MunmapHook;
  typedef MallocHook_MremapHook MremapHook;
  typedef MallocHook_PreSbrkHook PreSbrkHook;
  typedef MallocHook_SbrkHook SbrkHook;

  // Add / remove hooks; see malloc_hook_c.h for when each kind runs.
  static bool AddNewHook(NewHook h) { return MallocHook_AddNewHook(h); }
  static bool RemoveNewHook(NewHook h) { return MallocHook_RemoveNewHook(h); }
  static bool AddDeleteHook(DeleteHook h) { return MallocHook_AddDeleteHook(h); }
  static bool RemoveDeleteHook(DeleteHook h) { return MallocHook_RemoveDeleteHook(h); }
  static bool AddPreMmapHook(PreMmapHook h) { return MallocHook_AddPreMmapHook(h); }
  static bool RemovePreMmapHook(PreMmapHook h) { return MallocHook_RemovePreMmapHook(h); }
  static bool SetMmapReplacement(MmapReplacement h) { return MallocHook_SetMmapReplacement(h); }
  static bool RemoveMmapReplacement(MmapReplacement h) { return MallocHook_RemoveMmapReplacement(h); }
  static bool AddMmapHook(MmapHook h) { return MallocHook_AddMmapHook(h); }
  static bool RemoveMmapHook(MmapHook h) { return MallocHook_RemoveMmapHook(h); }
  static bool SetMunmapReplacement(MunmapReplacement h) { return MallocHook_SetMunmapReplacement(h); }
  static bool RemoveMunmapReplacement(MunmapReplacement h) { return MallocHook_RemoveMunmapReplacement(h); }
  static bool AddMunmapHook(MunmapHook h) { return MallocHook_AddMunmapHook(h); }
  static bool RemoveMunmapHook(MunmapHook h) { return MallocHook_RemoveMunmapHook(h); }
  static bool AddMremapHook(MremapHook h) { return MallocHook_AddMremapHook(h); }
  static bool RemoveMremapHook(MremapHook h) { return MallocHook_RemoveMremapHook(h); }
  static bool AddPreSbrkHook(PreSbrkHook h) { return MallocHook_AddPreSbrkHook(h); }
  static bool RemovePreSbrkHook(PreSbrkHook h) { return MallocHook_RemovePreSbrkHook(h); }
  static bool AddSbrkHook(SbrkHook h) { return MallocHook_AddSbrkHook(h); }
  static bool RemoveSbrkHook(SbrkHook h) { return MallocHook_RemoveSbrkHook(h); }

  // Deprecated single-hook forms; return the previous hook.
  static NewHook SetNewHook(NewHook h) { return MallocHook_SetNewHook(h); }
  static DeleteHook SetDeleteHook(DeleteHook h) { return MallocHook_SetDeleteHook(h); }
  static PreMmapHook SetPreMmapHook(PreMmapHook h) { return MallocHook_SetPreMmapHook(h); }
  static MmapHook SetMmapHook(MmapHook h) { return MallocHook_SetMmapHook(h); }
  static MunmapHook SetMunmapHook(MunmapHook h) { return MallocHook_SetMunmapHook(h); }
  static MremapHook SetMremapHook(MremapHook h) { return MallocHook_SetMremapHook(h); }
  static PreSbrkHook SetPreSbrkHook(PreSbrkHook h) { return MallocHook_SetPreSbrkHook(h); }
  static SbrkHook SetSbrkHook(SbrkHook h) { return MallocHook_SetSbrkHook(h); }

  // Stack of the code that called the allocation function running the hook.
  static int GetCallerStackTrace(void **result, int max_depth, int skip_count) {
    return MallocHook_GetCallerStackTrace(result, max_depth, skip_count);
  }

  // For allocators built on top of this one: call the installed hooks.
  static void InvokeNewHook(const void *p, size_t s) { InvokeNewHookSlow(p, s); }
  static void InvokeDeleteHook(const void *p) { InvokeDeleteHookSlow(p); }
  static void InvokePreMmapHook(const void *start, size_t size, int protection, int flags, int fd,
                                off_t offset) {
    InvokePreMmapHookSlow(start, size, protection, flags, fd, offset);
  }
  static bool InvokeMmapReplacement(const void *start, size_t size, int protection, int flags, int fd,
                                    off_t offset, void **result) {
    return InvokeMmapReplacementSlow(start, size, protection, flags, fd, offset, result);
  }
  static void InvokeMmapHook(const void *result, const void *start, size_t size, int protection, int flags,
                             int fd, off_t offset) {
    InvokeMmapHookSlow(result, start, size, protection, flags, fd, offset);
  }
  static bool InvokeMunmapReplacement(const void *p, size_t size, int *result) {
    return InvokeMunmapReplacementSlow(p, size, result);
  }
  static void InvokeMunmapHook(const void *p, size_t size) { InvokeMunmapHookSlow(p, size); }
  static void InvokeMremapHook(const void *result, const void *old_addr, size_t old_size, size_t new_size,
                               int flags, const void *new_addr) {
    InvokeMremapHookSlow(result, old_addr, old_size, new_size, flags, new_addr);
  }
  static void InvokePreSbrkHook(ptrdiff_t increment) { InvokePreSbrkHookSlow(increment); }
  static void InvokeSbrkHook(const void *result, ptrdiff_t increment) { InvokeSbrkHookSlow(result, increment); }

  // mmap / munmap without running any hook.
  static void *UnhookedMMap(void *start, size_t length, int prot, int flags, int fd, off_t offset);
  static int UnhookedMUnmap(void *start, size_t length);

 private:
  static void InvokeNewHookSlow(const void *p, size_t s);
  static void InvokeDeleteHookSlow(const void *p);
  static void InvokePreMmapHookSlow(const void *start, size_t size, int protection, int flags, int fd,
                                    off_t offset);
  static void InvokeMmapHookSlow(const void *result, const void *start, size_t size, int protection,
                                 int flags, int fd, off_t offset);
  static bool InvokeMmapReplacementSlow(const void *start, size_t size, int protection, int flags, int fd,
                                        off_t offset, void **result);
  static void InvokeMunmapHookSlow(const void *p, size_t size);
  static bool InvokeMunmapReplacementSlow(const void *p, size_t size, int *result);
  static void InvokeMremapHookSlow(const void *result, const void *old_addr, size_t old_size,
                                   size_t new_size, int flags, const void *new_addr);
  static void InvokePreSbrkHookSlow(ptrdiff_t increment);
  static void InvokeSbrkHookSlow(const void *result, ptrdiff_t increment);
};

#endif
