/* pprof_py: gperftools-compatible HeapLeakChecker.
 *
 * Leak checking needs HEAPCHECK in the environment when the program starts
 * (pprof-run --heapcheck, or HEAPCHECK=normal with pprof_py's allocator
 * preloaded or linked):
 *   normal, strict, draconian  check the whole program at exit (and allow
 *                              named checkers); a leak makes the exit code 1
 *   local                      only named checkers, no check at exit
 *   as-is                      like normal
 * Without HEAPCHECK every checker is inactive and reports no leaks.
 *
 *   HeapLeakChecker check("my_loop");
 *   ... code that should not leak ...
 *   if (!check.NoLeaks()) abort();     // reports the leaks on stderr
 *
 * A leak is a heap block allocated after the checker was made that no
 * pointer in the roots (globals, stacks, registers) or in reachable blocks
 * refers to.  The class layout is gperftools 2.10's.
 */
#ifndef PPROFPY_GPERFTOOLS_HEAP_CHECKER_H_
#define PPROFPY_GPERFTOOLS_HEAP_CHECKER_H_

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include <vector>

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

class PERFTOOLS_DLL_DECL HeapLeakChecker {
 public:
  // True when HEAPCHECK turned leak checking on.
  static bool IsActive();
  // The checker of the whole-program check (NULL when there is none).
  static HeapLeakChecker *GlobalChecker();
  // Runs the whole-program check now; true when no leaks were found.
  static bool NoGlobalLeaks();
  // No whole-program check at exit.
  static void CancelGlobalCheck();

  // Starts a named check: blocks live now are never reported by it.
  explicit HeapLeakChecker(const char *name);
  ~HeapLeakChecker();

  // Checks for leaks since the constructor; true when there are none.
  // All forms do the same check.
  bool NoLeaks() { return DoNoLeaks(DO_NOT_SYMBOLIZE); }
  bool QuickNoLeaks() { return NoLeaks(); }
  bool BriefNoLeaks() { return NoLeaks(); }
  bool SameHeap() { return NoLeaks(); }
  bool QuickSameHeap() { return NoLeaks(); }
  bool BriefSameHeap() { return NoLeaks(); }

  // Results of the last NoLeaks() (it must have run).
  ssize_t BytesLeaked() const;
  ssize_t ObjectsLeaked() const;

  // While an object of this class lives, the thread's allocations are not
  // leaks (nor is what they point to).
  class Disabler {
   public:
    Disabler();
    ~Disabler();

   private:
    Disabler(const Disabler &);
    void operator=(const Disabler &);
  };

  // ptr (the start of a live heap block) and what it points to are never
  // leaks, until UnIgnoreObject(ptr) or the block is freed.
  template <typename T>
  static T *IgnoreObject(T *ptr) {
    DoIgnoreObject(static_cast<const void *>(const_cast<const T *>(ptr)));
    return ptr;
  }
  static void UnIgnoreObject(const void *ptr);

  class Allocator;
  struct RangeValue;

 private:
  enum ShouldSymbolize { SYMBOLIZE, DO_NOT_SYMBOLIZE };
  bool DoNoLeaks(ShouldSymbolize should_symbolize);
  static void DoIgnoreObject(const void *ptr);
  HeapLeakChecker();
  // Return address into the function that allocated ptr, NULL if unknown
  // (private in gperftools too; its tests reach it through this friend).
  static const void *GetAllocCaller(void *ptr);
  friend void VerifyHeapProfileTableStackGet();

  class SpinLock *lock_;
  const char *name_;
  void *start_snapshot_;
  bool has_checked_;
  ssize_t inuse_bytes_increase_;
  ssize_t inuse_allocs_increase_;
  bool keep_profiles_;

  HeapLeakChecker(const HeapLeakChecker &);
  void operator=(const HeapLeakChecker &);
};

// A pointer stored so that the leak checker does not see it.
template <class T>
class HiddenPointer {
 public:
  explicit HiddenPointer(T *t) : masked_t_(reinterpret_cast<uintptr_t>(t) ^ kHideMask) {}
  T *get() const { return reinterpret_cast<T *>(masked_t_ ^ kHideMask); }

 private:
  static const uintptr_t kHideMask = static_cast<uintptr_t>(0x5A17C3E9A5E83C17ull);
  uintptr_t masked_t_;
};

// Functions run just before the whole-program check at exit (to free
// what is only reachable from places the checker cannot see).
class PERFTOOLS_DLL_DECL HeapCleaner {
 public:
  typedef void (*void_function)(void);
  HeapCleaner(void_function f);
  static void RunHeapCleanups();
};

#define REGISTER_HEAPCHECK_CLEANUP(name, body)                             \
  namespace {                                                              \
  void heapcheck_cleanup_##name() { body; }                                \
  static HeapCleaner heapcheck_cleaner_##name(&heapcheck_cleanup_##name); \
  }

#endif
