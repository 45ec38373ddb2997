// Calls the gperftools internals libtcmalloc.so exports (and our allocator
// therefore exports too), declared here the way gperftools' own sources
// declare them.  One check group per argument; each check prints
// "ok <what>" or "FAIL <what>: detail".  Used by test_gperftools_internals.py.
#include <gperftools/heap-checker.h>
#include <gperftools/malloc_extension.h>
#include <gperftools/malloc_hook.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/mman.h>

#include <gperftools/tcmalloc.h>
#include <malloc.h>

#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

// --- declarations with gperftools 2.10's layouts and linkage names -------
namespace base {
namespace internal {
template <typename T>
struct HookList {
  bool Add(T value);
  void FixupPrivEndLocked();
  bool Remove(T value);
  int Traverse(T *output_array, int n) const;
  T ExchangeSingular(T new_val);
  intptr_t priv_end;
  intptr_t priv_data[8];
};
}  // namespace internal
}  // namespace base

namespace tcmalloc {
enum LogMode { kLog, kCrash, kCrashWithStats };
class LogItem {
 public:
  LogItem() : tag_(kEnd) {}
  LogItem(const char *v) : tag_(kStr) { u_.str = v; }
  LogItem(int v) : tag_(kSigned) { u_.snum = v; }
  LogItem(unsigned long v) : tag_(kUnsigned) { u_.unum = v; }
  LogItem(const void *v) : tag_(kPtr) { u_.ptr = v; }

 private:
  enum Tag { kStr, kSigned, kUnsigned, kPtr, kEnd };
  Tag tag_;
  union {
    const char *str;
    const void *ptr;
    int64_t snum;
    uint64_t unum;
  } u_;
};
void Log(LogMode mode, const char *filename, int line, LogItem a, LogItem b = LogItem(), LogItem c = LogItem(),
         LogItem d = LogItem());
}  // namespace tcmalloc

// memory_region_map.h's layout (the iterator type of its std::set; the
// comparator and allocator do not change the iterator's layout)
class MemoryRegionMap {
 public:
  struct Region {
    uintptr_t start_addr;
    uintptr_t end_addr;
    int call_stack_depth;
    const void *call_stack[32];
    bool is_stack;
    uintptr_t caller() const { return reinterpret_cast<uintptr_t>(call_stack_depth >= 1 ? call_stack[0] : nullptr); }
    bool operator<(const Region &o) const { return end_addr < o.end_addr; }
  };
  typedef std::set<Region>::const_iterator RegionIterator;
  static void Lock();
  static void Unlock();
  static bool LockIsHeld();
  static bool IsRecordingLocked();
  static RegionIterator BeginRegionLocked();
  static RegionIterator EndRegionLocked();
  static bool FindRegion(uintptr_t addr, Region *result);
};

namespace FLAG__namespace_do_not_use_directly_use_DECLARE_string_instead {
extern std::string FLAGS_heap_check;
}
using FLAG__namespace_do_not_use_directly_use_DECLARE_string_instead::FLAGS_heap_check;

void *TCMalloc_SystemAlloc(size_t bytes, size_t *actual_bytes, size_t alignment);
bool TCMalloc_SystemRelease(void *start, size_t length);
extern size_t TCMalloc_SystemTaken;

namespace FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead {
extern int64_t FLAGS_tcmalloc_sample_parameter;
}
namespace FLAG__namespace_do_not_use_directly_use_DECLARE_double_instead {
extern double FLAGS_tcmalloc_release_rate;
}
using FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead::FLAGS_tcmalloc_sample_parameter;
using FLAG__namespace_do_not_use_directly_use_DECLARE_double_instead::FLAGS_tcmalloc_release_rate;

// --------------------------------------------------------------------------
// keeps the compiler from dropping a malloc/free pair it can see through
template <typename T>
static T noopt(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

static int failures;
#define CHECK(what, cond, ...)                        \
  do {                                                \
    if (cond) {                                       \
      printf("ok %s\n", what);                        \
    } else {                                          \
      printf("FAIL %s: ", what);                      \
      printf(__VA_ARGS__);                            \
      printf("\n");                                   \
      failures++;                                     \
    }                                                 \
  } while (0)

typedef base::internal::HookList<MallocHook::NewHook> List;
static MallocHook::NewHook H(intptr_t v) { return reinterpret_cast<MallocHook::NewHook>(v); }

static int values(const List &l, intptr_t *out, int n) {
  MallocHook::NewHook tmp[8];
  int k = l.Traverse(tmp, n);
  for (int i = 0; i < k; i++) out[i] = reinterpret_cast<intptr_t>(tmp[i]);
  return k;
}

static void hooklist() {
  List l = {1, {69}};                       // gperftools' INIT_HOOK_LIST(69)
  intptr_t v[8] = {0};
  CHECK("hooklist initial value", values(l, v, 8) == 1 && v[0] == 69 && l.priv_end == 1, "%ld", (long)l.priv_end);
  CHECK("hooklist add appends", l.Add(H(42)) && l.priv_end == 2 && values(l, v, 8) == 2 && v[1] == 42, "");
  CHECK("hooklist rejects NULL", !l.Add(nullptr) && !l.Remove(nullptr), "");
  CHECK("hooklist remove keeps end", l.Remove(H(69)) && l.priv_end == 2 && values(l, v, 8) == 1 && v[0] == 42,
        "end %ld", (long)l.priv_end);
  CHECK("hooklist add fills the hole", l.Add(H(7)) && l.priv_end == 2 && values(l, v, 8) == 2 && v[0] == 7, "");
  CHECK("hooklist remove absent", !l.Remove(H(1234)), "");
  l.Remove(H(7));
  l.Remove(H(42));
  CHECK("hooklist empty", l.priv_end == 0 && values(l, v, 8) == 0, "end %ld", (long)l.priv_end);
  int n = 0;
  while (l.Add(H(++n))) {
  }
  CHECK("hooklist holds 7", n == 8 && l.priv_end == 7 && values(l, v, 3) == 3, "n %d", n);
  CHECK("hooklist singular", l.ExchangeSingular(H(99)) == nullptr && l.priv_end == 8 &&
                                 l.ExchangeSingular(nullptr) == H(99) && l.priv_end == 7, "");
  // concurrent writers: each value is found after its Add and gone after its Remove
  List shared = {0, {0}};
  std::vector<std::thread> threads;
  int bad = 0;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&shared, &bad, t] {
      for (int i = 1; i < 500; i++) {
        intptr_t mine = (i << 4) + t, got[8];
        if (!shared.Add(H(mine))) __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
        int k = values(shared, got, 8), found = 0;
        for (int j = 0; j < k; j++) found |= got[j] == mine;
        if (!found || !shared.Remove(H(mine))) __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
      }
    });
  for (auto &th : threads) th.join();
  CHECK("hooklist threads", bad == 0 && shared.priv_end == 0, "bad %d end %ld", bad, (long)shared.priv_end);
}

static void log_line() {
  tcmalloc::Log(tcmalloc::kLog, "file.cc", 12, "text", -5, 7ul, reinterpret_cast<const void *>(0xbeef));
  printf("ok log returned\n");
}

static void log_crash() { tcmalloc::Log(tcmalloc::kCrash, "crash.cc", 3, "condition failed"); }

static size_t prop(const char *name) {
  size_t v = 12345;
  if (!MallocExtension::instance()->GetNumericProperty(name, &v)) return static_cast<size_t>(-1);
  return v;
}

static void sysalloc() {
  size_t actual = 0, before = TCMalloc_SystemTaken;
  char *p = static_cast<char *>(TCMalloc_SystemAlloc(10000, &actual, 1 << 20));
  CHECK("sysalloc aligned", p && (reinterpret_cast<uintptr_t>(p) & ((1 << 20) - 1)) == 0 && actual >= 10000,
        "%p %zu", p, actual);
  CHECK("sysalloc counted", TCMalloc_SystemTaken - before == actual, "%zu", TCMalloc_SystemTaken - before);
  memset(p, 0xab, actual);
  CHECK("sysalloc not ours", MallocExtension::instance()->GetOwnership(p) != MallocExtension::kOwned, "");
  CHECK("sysrelease", TCMalloc_SystemRelease(p, actual), "");
  CHECK("sysrelease zeroes", p[0] == 0 && p[actual - 1] == 0, "%d", p[0]);
  CHECK("sysrelease less than a page", !TCMalloc_SystemRelease(p + 1, 100), "");
}

// gperftools' own TestReleaseToSystem sequence (tcmalloc_unittest.cc),
// with FLAGS_tcmalloc_release_rate = 0 so nothing is released behind it.
static void release() {
  const size_t MB = 1 << 20;
  FLAGS_tcmalloc_release_rate = 0;
  MallocExtension *m = MallocExtension::instance();
  CHECK("release rate flag is the extension's", m->GetMemoryReleaseRate() == 0.0, "%g", m->GetMemoryReleaseRate());
  void *a = noopt(malloc(MB)), *b = noopt(malloc(MB));
  m->ReleaseFreeMemory();
  size_t start = prop("tcmalloc.pageheap_unmapped_bytes");
  m->ReleaseFreeMemory();
  m->ReleaseToSystem(MB);
  CHECK("release nothing free", prop("tcmalloc.pageheap_unmapped_bytes") == start, "%zu", prop("tcmalloc.pageheap_unmapped_bytes") - start);
  free(a);
  m->ReleaseToSystem(MB / 2);
  CHECK("release a whole span for half", prop("tcmalloc.pageheap_unmapped_bytes") == start + MB, "%zd",
        (ssize_t)(prop("tcmalloc.pageheap_unmapped_bytes") - start));
  m->ReleaseToSystem(MB / 4);
  CHECK("release credit", prop("tcmalloc.pageheap_unmapped_bytes") == start + MB, "");
  free(b);
  m->ReleaseToSystem(MB / 2);
  CHECK("release after credit", prop("tcmalloc.pageheap_unmapped_bytes") == start + 2 * MB, "%zd",
        (ssize_t)(prop("tcmalloc.pageheap_unmapped_bytes") - start));
  m->ReleaseToSystem(MB / 2);
  m->ReleaseFreeMemory();
  CHECK("release credit again", prop("tcmalloc.pageheap_unmapped_bytes") == start + 2 * MB, "");
  a = noopt(malloc(MB));
  free(a);
  CHECK("release reuse", prop("tcmalloc.pageheap_unmapped_bytes") == start + MB, "");
  m->ReleaseToSystem(1);
  CHECK("release one byte releases a span", prop("tcmalloc.pageheap_unmapped_bytes") == start + 2 * MB, "");
}

static void aggressive() {
  const size_t MB = 1 << 20;
  MallocExtension *m = MallocExtension::instance();
  size_t old = 7;
  CHECK("aggressive readable", m->GetNumericProperty("tcmalloc.aggressive_memory_decommit", &old) && old == 0,
        "%zu", old);
  CHECK("aggressive writable", m->SetNumericProperty("tcmalloc.aggressive_memory_decommit", 1) &&
                                   prop("tcmalloc.aggressive_memory_decommit") == 1, "");
  void *a = noopt(malloc(MB)), *b = noopt(malloc(MB));
  size_t start = prop("tcmalloc.pageheap_unmapped_bytes");
  free(a);
  CHECK("aggressive free releases", prop("tcmalloc.pageheap_unmapped_bytes") == start + MB, "%zd",
        (ssize_t)(prop("tcmalloc.pageheap_unmapped_bytes") - start));
  free(b);
  CHECK("aggressive second", prop("tcmalloc.pageheap_unmapped_bytes") == start + 2 * MB, "");
  CHECK("aggressive no resident free pages", prop("tcmalloc.pageheap_free_bytes") == 0, "%zu",
        prop("tcmalloc.pageheap_free_bytes"));
  m->SetNumericProperty("tcmalloc.aggressive_memory_decommit", 0);
  CHECK("aggressive off", prop("tcmalloc.aggressive_memory_decommit") == 0, "");
}

static void props() {
  MallocExtension *m = MallocExtension::instance();
  printf("initial release rate %g\n", m->GetMemoryReleaseRate());
  CHECK("max thread cache readable", prop("tcmalloc.max_total_thread_cache_bytes") > 0, "");
  CHECK("max thread cache writable", m->SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", 32 << 20) &&
                                         prop("tcmalloc.max_total_thread_cache_bytes") == (32 << 20), "");
  CHECK("unknown property not writable", !m->SetNumericProperty("tcmalloc.no_such_thing", 1), "");
  CHECK("read-only property not writable", !m->SetNumericProperty("tcmalloc.pageheap_free_bytes", 1), "");
  m->SetMemoryReleaseRate(2.5);
  CHECK("release rate", FLAGS_tcmalloc_release_rate == 2.5 && m->GetMemoryReleaseRate() == 2.5, "%g",
        FLAGS_tcmalloc_release_rate);
  printf("sample parameter %lld\n", static_cast<long long>(FLAGS_tcmalloc_sample_parameter));
}

// The page heap grows through the program's SysAllocator; one that fails
// makes malloc fail.
struct CountingSysAlloc : public SysAllocator {
  SysAllocator *child;
  int calls = 0, fail = 0;
  void *Alloc(size_t size, size_t *actual, size_t align) override {
    calls++;
    return fail ? nullptr : child->Alloc(size, actual, align);
  }
};

static void sysallocator() {
  static CountingSysAlloc counting;
  counting.child = MallocExtension::instance()->GetSystemAllocator();
  MallocExtension::instance()->SetSystemAllocator(&counting);
  void *big = noopt(malloc(64 << 20));
  CHECK("page heap grows through SysAllocator", big && counting.calls > 0, "%d", counting.calls);
  memset(big, 1, 64 << 20);
  free(big);
  counting.fail = 1;
  void *huge = noopt(malloc(size_t(1) << 32));
  CHECK("failing SysAllocator fails malloc", huge == nullptr, "%p", huge);
  counting.fail = 0;
  MallocExtension::instance()->SetSystemAllocator(counting.child);
  int before = counting.calls;
  void *again = noopt(malloc(size_t(256) << 20));
  CHECK("own allocator back", again && counting.calls == before, "%d", counting.calls - before);
  free(again);
}

// nothrow new calls the new handler; one that throws makes it return NULL.
// tc_set_new_mode(1): memalign & co call the handler too.
static int handler_calls;
static void throwing_handler() {
  handler_calls++;
  throw std::bad_alloc();
}
static void giving_up_handler() {
  handler_calls++;
  std::set_new_handler(nullptr);
}

static void newhandler() {
  const size_t too_big = ~static_cast<size_t>(0) - 100000;
  std::set_new_handler(throwing_handler);
  void *p = noopt(::operator new(too_big, std::nothrow));
  CHECK("nothrow new calls the handler", p == nullptr && handler_calls == 1, "%p %d", p, handler_calls);
  p = noopt(::operator new[](too_big, std::nothrow));
  CHECK("nothrow new[] calls the handler", p == nullptr && handler_calls == 2, "%d", handler_calls);
  p = noopt(::operator new(too_big, std::align_val_t(64), std::nothrow));
  CHECK("aligned nothrow new calls the handler", p == nullptr && handler_calls == 3, "%d", handler_calls);
  std::set_new_handler(nullptr);
  p = noopt(::operator new(too_big, std::nothrow));
  CHECK("nothrow new without handler", p == nullptr && handler_calls == 3, "");
  int old = tc_set_new_mode(1);
  std::set_new_handler(giving_up_handler);
  p = noopt(memalign(64, too_big));
  CHECK("new mode memalign calls the handler", p == nullptr && handler_calls == 4, "%d", handler_calls);
  std::set_new_handler(giving_up_handler);
  void *q = nullptr;
  CHECK("new mode posix_memalign calls the handler",
        posix_memalign(&q, 64, too_big) == ENOMEM && handler_calls == 5, "%d", handler_calls);
  tc_set_new_mode(old);
  int major = 0, minor = 0;
  const char *patch = nullptr;
  const char *v = tc_version(&major, &minor, &patch);
  CHECK("tc_version is the release's", !strcmp(v, TC_VERSION_STRING) && major == 2 && minor == 10 && !strcmp(patch, ""),
        "%s", v);
}

// tcmalloc.heap_limit_mb: the page heap stops growing at the limit.
static void heaplimit() {
  MallocExtension *m = MallocExtension::instance();
  CHECK("heap limit off", prop("tcmalloc.heap_limit_mb") == 0, "%zu", prop("tcmalloc.heap_limit_mb"));
  CHECK("heap limit writable", m->SetNumericProperty("tcmalloc.heap_limit_mb", 64) &&
                                   prop("tcmalloc.heap_limit_mb") == 64, "");
  void *fits = noopt(malloc(32 << 20));
  void *over = noopt(malloc(64 << 20));
  CHECK("under the limit", fits != nullptr, "");
  CHECK("over the limit fails", over == nullptr, "%p", over);
  free(fits);
  void *after_free = noopt(malloc(48 << 20));
  CHECK("freed memory counts again", after_free != nullptr, "");
  free(after_free);
  m->SetNumericProperty("tcmalloc.heap_limit_mb", 0);
  over = noopt(malloc(64 << 20));
  CHECK("limit lifted", over != nullptr, "");
  free(over);
}

// MemoryRegionMap: what this program mmaps, with the caller, while the
// leak checker runs (HEAPCHECK); FLAGS_heap_check is the mode.
__attribute__((noinline)) static void *mapper(uintptr_t *after) {
  void *p = mmap(nullptr, 64 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  asm volatile("" ::: "memory");
  *after = reinterpret_cast<uintptr_t>(&&done);    // an address after the call (GCC's label value)
done:
  return p;
}

static int regions_matching(uintptr_t start, uintptr_t end, uintptr_t *caller) {
  int n = 0;
  MemoryRegionMap::Lock();
  MemoryRegionMap::Lock();                 // recursive
  bool held = MemoryRegionMap::LockIsHeld();
  for (MemoryRegionMap::RegionIterator i = MemoryRegionMap::BeginRegionLocked();
       i != MemoryRegionMap::EndRegionLocked(); ++i)
    if (i->start_addr < end && i->end_addr > start) {
      n++;
      if (caller) *caller = i->caller();
    }
  MemoryRegionMap::Unlock();
  MemoryRegionMap::Unlock();
  return held ? n : -1;
}

static void regions() {
  printf("heap_check flag \"%s\"\n", FLAGS_heap_check.c_str());
  if (!MemoryRegionMap::IsRecordingLocked()) {
    printf("not recording\n");
    return;
  }
  uintptr_t after = 0, caller = 0;
  char *p = static_cast<char *>(mapper(&after));
  uintptr_t a = reinterpret_cast<uintptr_t>(p), fn = reinterpret_cast<uintptr_t>(&mapper);
  CHECK("region recorded once", regions_matching(a, a + (64 << 12), &caller) == 1, "");
  CHECK("region caller is in mapper", caller > fn && caller <= after, "%lx not in (%lx, %lx]", (unsigned long)caller,
        (unsigned long)fn, (unsigned long)after);
  // ordered by end address, as std::set<Region, RegionCmp>
  uintptr_t last = 0;
  bool ordered = true;
  int count = 0;
  MemoryRegionMap::Lock();
  for (auto i = MemoryRegionMap::BeginRegionLocked(); i != MemoryRegionMap::EndRegionLocked(); ++i) {
    ordered &= i->end_addr > last;
    last = i->end_addr;
    count++;
  }
  MemoryRegionMap::Unlock();
  CHECK("regions in order", ordered && count >= 1, "%d", count);
  munmap(p + (16 << 12), 8 << 12);          // a hole: two regions remain
  CHECK("hole splits the region", regions_matching(a, a + (64 << 12), nullptr) == 2, "");
  MemoryRegionMap::Region r;
  CHECK("find region", MemoryRegionMap::FindRegion(a + (40 << 12), &r) && r.start_addr == a + (24 << 12) &&
                           r.end_addr == a + (64 << 12), "");
  CHECK("hole not found", !MemoryRegionMap::FindRegion(a + (17 << 12), &r), "");
  munmap(p, 64 << 12);
  CHECK("unmapped region gone", regions_matching(a, a + (64 << 12), nullptr) == 0, "");
}

// Named checks while other threads keep calling into libc, which
// allocates and frees as it goes (getgrgid opens, reads and closes
// /etc/group: a FILE and its buffer in flight), and keep their newest block
// only in a register, like gperftools' heap-checker_unittest's busy
// threads: no check reports their in-flight blocks, and the threads the
// checks stop (parked in the register signal's handler) go on afterwards.
// This does not reproduce the race the parking fixed on its own (gperftools'
// heap-checker_unittest.sh did, in 3 of 3 runs before it, 0 of 11 after).
static volatile int stop_busy;
static void busy_worker() {
  while (!stop_busy) {
    struct group *g = getgrgid(0);
    asm volatile("" : : "r"(g));
    void *p = malloc(64);
    for (int i = 0; i < 50; i++) asm volatile("" : "+r"(p));   // p stays in a register
    free(p);
  }
}

static void busythreads() {
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) threads.emplace_back(busy_worker);
  int clean = 0;
  for (int round = 0; round < 20; round++) {
    HeapLeakChecker check("busy");
    clean += check.NoLeaks();
  }
  stop_busy = 1;
  for (auto &th : threads) th.join();
  CHECK("no false leaks with busy threads", clean == 20, "%d of 20 checks clean", clean);
}

// HEAPCHECK set but empty: tracked until start-up is over, then off.
static void checkstate() {
  printf("active %d flag \"%s\" recording %d\n", HeapLeakChecker::IsActive() ? 1 : 0, FLAGS_heap_check.c_str(),
         MemoryRegionMap::IsRecordingLocked() ? 1 : 0);
  void *leak = malloc(100);                 // never freed: a leak if a check ran at exit
  asm volatile("" : : "r"(leak) : "memory");
  leak = nullptr;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "hooklist")) hooklist();
    else if (!strcmp(argv[i], "log")) log_line();
    else if (!strcmp(argv[i], "crash")) log_crash();
    else if (!strcmp(argv[i], "sysalloc")) sysalloc();
    else if (!strcmp(argv[i], "release")) release();
    else if (!strcmp(argv[i], "aggressive")) aggressive();
    else if (!strcmp(argv[i], "props")) props();
    else if (!strcmp(argv[i], "sysallocator")) sysallocator();
    else if (!strcmp(argv[i], "newhandler")) newhandler();
    else if (!strcmp(argv[i], "heaplimit")) heaplimit();
    else if (!strcmp(argv[i], "regions")) regions();
    else if (!strcmp(argv[i], "busythreads")) busythreads();
    else if (!strcmp(argv[i], "checkstate")) checkstate();
  }
  fflush(stdout);
  return failures ? 1 : 0;
}
