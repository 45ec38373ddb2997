// gperftools internals that libtcmalloc.so exports and that code written
// against gperftools' source (its own tests, some tools) links to.  They are
// not in any installed header, but `nm -D libtcmalloc.so.4` lists them, so a
// drop-in must define them too:
//
//   base::internal::HookList<MallocHook::NewHook>  Add, Remove, Traverse,
//       FixupPrivEndLocked, ExchangeSingular: gperftools' fixed-size list
//       of hook pointers (malloc_hook-inl.h), as a container a program may
//       use itself.  Our own hook lists (gperftools_hooks.c) behave alike.
//   tcmalloc::Log(mode, file, line, a, b, c, d)  tcmalloc's logging (used by
//       its CHECK_CONDITION): the items on one stderr line; kCrash and
//       kCrashWithStats abort (the latter prints MALLOCSTATS first).
//
// The flags and TCMalloc_System* are in C beside the code that reads them
// (page_heap.c, heapprof.c, gperftools_tcmalloc.c).  Layouts follow
// gperftools 2.10's headers; no libstdc++ is needed (see setup.py).
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gperftools/malloc_hook.h"
#include "gperftools_glue.h"

#define EXPORT __attribute__((visibility("default")))

// ---------------------------------------------------------------------------
// base::internal::HookList

namespace base {
namespace internal {

static const int kHookListCapacity = 8;
static const int kHookListMaxValues = 7;    // slot 7: the deprecated Set*Hook
static const int kHookListSingularIdx = 7;

// The writers' lock (readers take none: every slot is one word written
// atomically).  A spin lock: Add/Remove are rare.
static volatile int hooklist_lock;
static void lock() {
  while (__atomic_exchange_n(&hooklist_lock, 1, __ATOMIC_ACQUIRE)) sched_yield();
}
static void unlock() { __atomic_store_n(&hooklist_lock, 0, __ATOMIC_RELEASE); }

// gperftools' layout: an aggregate (INIT_HOOK_LIST initializes it
// statically), priv_end = one past the last used slot.
template <typename T>
struct EXPORT HookList {
  bool Add(T value);
  void FixupPrivEndLocked();
  bool Remove(T value);
  int Traverse(T *output_array, int n) const;
  bool empty() const { return __atomic_load_n(&priv_end, __ATOMIC_RELAXED) == 0; }
  T GetSingular() const {
    return reinterpret_cast<T>(__atomic_load_n(&priv_data[kHookListSingularIdx], __ATOMIC_RELAXED));
  }
  T ExchangeSingular(T new_val);

  intptr_t priv_end;
  intptr_t priv_data[kHookListCapacity];
};

// Fills the first empty slot (duplicates allowed); false for NULL or when
// all kHookListMaxValues slots are taken.
template <typename T>
bool HookList<T>::Add(T value) {
  if (value == nullptr) return false;
  lock();
  int i = 0;
  while (i < kHookListMaxValues && priv_data[i] != 0) i++;
  if (i == kHookListMaxValues) {
    unlock();
    return false;
  }
  __atomic_store_n(&priv_data[i], reinterpret_cast<intptr_t>(value), __ATOMIC_RELEASE);
  if (priv_end <= i) __atomic_store_n(&priv_end, static_cast<intptr_t>(i + 1), __ATOMIC_RELEASE);
  unlock();
  return true;
}

// priv_end back to one past the last non-empty slot.
template <typename T>
void HookList<T>::FixupPrivEndLocked() {
  intptr_t end = priv_end;
  while (end > 0 && priv_data[end - 1] == 0) end--;
  __atomic_store_n(&priv_end, end, __ATOMIC_RELEASE);
}

// Clears the first slot holding value; false for NULL or when absent.
template <typename T>
bool HookList<T>::Remove(T value) {
  if (value == nullptr) return false;
  lock();
  intptr_t end = priv_end;
  int i = 0;
  while (i < end && priv_data[i] != reinterpret_cast<intptr_t>(value)) i++;
  if (i == end) {
    unlock();
    return false;
  }
  __atomic_store_n(&priv_data[i], 0, __ATOMIC_RELEASE);
  FixupPrivEndLocked();
  unlock();
  return true;
}

// Up to n values, in slot order; the number stored.
template <typename T>
int HookList<T>::Traverse(T *output_array, int n) const {
  intptr_t end = __atomic_load_n(&priv_end, __ATOMIC_ACQUIRE);
  int count = 0;
  for (intptr_t i = 0; i < end && n > 0; i++) {
    intptr_t v = __atomic_load_n(&priv_data[i], __ATOMIC_ACQUIRE);
    if (v != 0) {
      *output_array++ = reinterpret_cast<T>(v);
      count++;
      n--;
    }
  }
  return count;
}

// The deprecated single hook (MallocHook::SetNewHook & co): sets slot 7,
// returns the previous value.
template <typename T>
T HookList<T>::ExchangeSingular(T new_val) {
  lock();
  intptr_t old = __atomic_exchange_n(&priv_data[kHookListSingularIdx], reinterpret_cast<intptr_t>(new_val),
                                     __ATOMIC_ACQ_REL);
  if (new_val != nullptr) __atomic_store_n(&priv_end, static_cast<intptr_t>(kHookListCapacity), __ATOMIC_RELEASE);
  else FixupPrivEndLocked();
  unlock();
  return reinterpret_cast<T>(old);
}

// The one instantiation libtcmalloc exports.
template struct HookList<MallocHook::NewHook>;

}  // namespace internal
}  // namespace base

// ---------------------------------------------------------------------------
// tcmalloc::Log

namespace tcmalloc {

enum LogMode { kLog, kCrash, kCrashWithStats };

// internal_logging.h's LogItem: a tag and a 64-bit value, passed by value.
class LogItem {
 public:
  enum Tag { kStr, kSigned, kUnsigned, kPtr, kEnd };
  Tag tag_;
  union {
    const char *str;
    const void *ptr;
    int64_t snum;
    uint64_t unum;
  } u_;
};

static size_t put_u(char *out, uint64_t v, unsigned base) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

// "file:line] a b c d\n" on stderr, formatted without allocating (the
// allocator may be what failed).
EXPORT void Log(LogMode mode, const char *filename, int line, LogItem a, LogItem b, LogItem c, LogItem d) {
  char buf[512];
  size_t n = 0;
  auto add = [&](const char *s, size_t len) {
    if (len > sizeof buf - 1 - n) len = sizeof buf - 1 - n;
    memcpy(buf + n, s, len);
    n += len;
  };
  char num[24];
  if (filename) add(filename, strlen(filename));
  add(":", 1);
  add(num, put_u(num, static_cast<uint64_t>(line < 0 ? 0 : line), 10));
  add("]", 1);
  const LogItem *items[] = {&a, &b, &c, &d};
  for (const LogItem *it : items) {
    switch (it->tag_) {
      case LogItem::kStr:
        add(" ", 1);
        if (it->u_.str) add(it->u_.str, strlen(it->u_.str));
        break;
      case LogItem::kSigned:
        add(" ", 1);
        if (it->u_.snum < 0) {
          add("-", 1);
          add(num, put_u(num, 0 - static_cast<uint64_t>(it->u_.snum), 10));
        } else {
          add(num, put_u(num, static_cast<uint64_t>(it->u_.snum), 10));
        }
        break;
      case LogItem::kUnsigned:
        add(" ", 1);
        add(num, put_u(num, it->u_.unum, 10));
        break;
      case LogItem::kPtr:
        add(" 0x", 3);
        add(num, put_u(num, reinterpret_cast<uintptr_t>(it->u_.ptr), 16));
        break;
      default:
        break;
    }
  }
  add("\n", 1);
  ssize_t w = write(2, buf, n);
  (void)w;
  if (mode == kLog) return;
  if (mode == kCrashWithStats) {
    static char stats[16384];
    size_t len = pprofpy_malloc_stats_text(stats, sizeof stats);
    if (len > sizeof stats) len = sizeof stats;
    w = write(2, stats, len);
    (void)w;
  }
  abort();
}

}  // namespace tcmalloc

// ---------------------------------------------------------------------------
// MemoryRegionMap: the regions mapped through our mmap family while the leak
// checker runs (gperftools_regions.c keeps them).  Only the static members
// gperftools' code calls from outside are defined; the iterators are
// libstdc++'s std::set<Region>::const_iterator, one node pointer.

class EXPORT MemoryRegionMap {
 public:
  struct Region : pp_region {};
  struct RegionIterator {                  // std::_Rb_tree_const_iterator<Region>'s layout
    const pp_rb_node *node;
  };
  static void Lock();
  static void Unlock();
  static bool LockIsHeld();
  static bool IsRecordingLocked();
  static RegionIterator BeginRegionLocked();
  static RegionIterator EndRegionLocked();
  static bool FindRegion(uintptr_t addr, Region *result);
};

void MemoryRegionMap::Lock() { pp_regions_lock(); }
void MemoryRegionMap::Unlock() { pp_regions_unlock(); }
bool MemoryRegionMap::LockIsHeld() { return pp_regions_lock_held() != 0; }
bool MemoryRegionMap::IsRecordingLocked() { return pp_regions_on != 0; }
MemoryRegionMap::RegionIterator MemoryRegionMap::BeginRegionLocked() { return {pp_regions_header()->left}; }
MemoryRegionMap::RegionIterator MemoryRegionMap::EndRegionLocked() { return {pp_regions_header()}; }

// The region containing addr (copied out), if any.
bool MemoryRegionMap::FindRegion(uintptr_t addr, Region *result) {
  pp_regions_lock();
  bool found = false;
  for (const pp_rb_node *n = pp_regions_header()->parent; n; n = n->right)
    if (n->value.start_addr <= addr && addr < n->value.end_addr) {
      *static_cast<pp_region *>(result) = n->value;
      found = true;
      break;
    }
  pp_regions_unlock();
  return found;
}
