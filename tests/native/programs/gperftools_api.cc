// A program written against gperftools' own headers (/usr/include/gperftools,
// Debian's libgoogle-perftools-dev) and linked against pprof_py's libraries
// instead of libtcmalloc / libprofiler; test_gperftools_api.py runs it.
//
//   gperftools_api alloc       tcmalloc.h, nallocx.h, malloc_extension*.h,
//                              malloc_hook*.h, stacktrace.h
//   gperftools_api heapcheck   heap-checker.h (run with HEAPCHECK set)
//   gperftools_api profiler    profiler.h, stacktrace.h; built with -DPROFILER_ONLY and
//                              linked with the sampler alone, like a program
//                              linked with -lprofiler
//
// Each check prints "ok <what>"; a failed one prints "FAIL <what>: detail"
// and the program exits 1.
#include <dlfcn.h>
#include <signal.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gperftools/heap-checker.h>
#include <gperftools/malloc_extension.h>
#include <gperftools/malloc_extension_c.h>
#include <gperftools/malloc_hook.h>
#include <gperftools/nallocx.h>
#include <gperftools/profiler.h>
#include <gperftools/stacktrace.h>
#include <gperftools/tcmalloc.h>

extern "C" size_t malloc_size(void *);
extern "C" int __posix_memalign(void **, size_t, size_t);
extern "C" void *__libc_valloc(size_t);
extern "C" void *__libc_pvalloc(size_t);
extern "C" void __libc_cfree(void *);

static int failures;
static void *volatile sink;   // keeps the compiler from removing allocations

static void check(bool ok, const char *what, const char *detail = "") {
  if (ok) {
    printf("ok %s\n", what);
  } else {
    printf("FAIL %s: %s\n", what, detail);
    failures++;
  }
  fflush(stdout);
}


static size_t property(const char *name) {
  size_t v = 0;
  if (!MallocExtension::instance()->GetNumericProperty(name, &v)) return (size_t)-1;
  return v;
}

// ------------------------------------------------------------- stacktrace.h

// (global functions: dladdr names them in a -rdynamic program)
static void *trace[32];
static int sizes[32];
static int depth, frames_depth;

__attribute__((noinline)) void leaf() {
  depth = GetStackTrace(trace, 32, 0);
  frames_depth = GetStackFrames(trace + 16, sizes, 16, 0);
  asm volatile("");
}
__attribute__((noinline)) void middle() {
  leaf();
  asm volatile("");
}
__attribute__((noinline)) void outer() {
  middle();
  asm volatile("");
}

static const char *name_of(void *pc) {
  Dl_info info;
  return dladdr(pc, &info) && info.dli_sname ? info.dli_sname : "?";
}

static void *context_trace[32];
static int context_depth;

static void context_handler(int, siginfo_t *, void *uc) {
  context_depth = GetStackTraceWithContext(context_trace, 32, 0, uc);
}

__attribute__((noinline)) void signal_myself() {
  raise(SIGUSR1);
  asm volatile("");
}

static void test_stacktrace() {
  outer();
  bool ok = depth >= 4 && strstr(name_of(trace[0]), "leaf") && strstr(name_of(trace[1]), "middle") &&
            strstr(name_of(trace[2]), "outer");
  char detail[200];
  snprintf(detail, sizeof detail, "depth %d: %s %s %s", depth, name_of(trace[0]), depth > 1 ? name_of(trace[1]) : "",
           depth > 2 ? name_of(trace[2]) : "");
  check(ok, "GetStackTrace", detail);
  check(frames_depth >= 3 && strstr(name_of(trace[16]), "leaf"), "GetStackFrames");
  void *skipped[32];
  int n = GetStackTraceWithContext(skipped, 32, 1, nullptr);
  check(n > 0 && strstr(name_of(skipped[0]), "main"), "GetStackTraceWithContext skip_count");

  // from a signal handler's context: the interrupted code's callers
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = context_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, nullptr);
  signal_myself();
  bool seen = false;
  for (int i = 0; i < context_depth && i < 4; i++) seen |= strstr(name_of(context_trace[i]), "signal_myself") != nullptr;
  check(seen, "GetStackTraceWithContext from a signal handler");
}

#ifndef PROFILER_ONLY
// ---------------------------------------------------------------- tcmalloc.h

static int handler_calls;
static void give_up() {
  handler_calls++;
  std::set_new_handler(nullptr);
}

static void test_tcmalloc_h() {
  int major = 0, minor = 0;
  const char *patch = nullptr;
  const char *v = tc_version(&major, &minor, &patch);
  check(v && major == TC_VERSION_MAJOR && minor == TC_VERSION_MINOR && patch, "tc_version");

  void *p = tc_malloc(100);
  check(p && tc_malloc_size(p) >= 100 && malloc_size(p) == tc_malloc_size(p), "tc_malloc/tc_malloc_size");
  p = tc_realloc(p, 5000);
  check(p && tc_malloc_size(p) >= 5000, "tc_realloc");
  tc_free(p);
  p = tc_calloc(10, 10);
  check(p && ((char *)p)[99] == 0, "tc_calloc");
  tc_cfree(p);
  p = tc_memalign(4096, 10);
  check(p && ((uintptr_t)p & 4095) == 0, "tc_memalign");
  tc_free(p);
  void *q = nullptr;
  check(tc_posix_memalign(&q, 256, 10) == 0 && ((uintptr_t)q & 255) == 0, "tc_posix_memalign");
  tc_free_sized(q, 10);
  check(__posix_memalign(&q, 64, 10) == 0 && ((uintptr_t)q & 63) == 0, "__posix_memalign");
  free(q);
  q = __libc_valloc(10);
  check(q && ((uintptr_t)q & 4095) == 0, "__libc_valloc");
  __libc_cfree(q);
  q = __libc_pvalloc(5000);
  check(q && ((uintptr_t)q & 4095) == 0 && malloc_usable_size(q) >= 8192, "__libc_pvalloc");
  free(q);
  q = tc_valloc(1);
  check(q && ((uintptr_t)q & 4095) == 0, "tc_valloc");
  tc_free(q);
  q = tc_pvalloc(1);
  check(q && ((uintptr_t)q & 4095) == 0, "tc_pvalloc");
  tc_free(q);

  int *n = static_cast<int *>(tc_new(sizeof(int)));
  tc_delete(n);
  n = static_cast<int *>(tc_newarray(10 * sizeof(int)));
  tc_deletearray_sized(n, 10 * sizeof(int));
  n = static_cast<int *>(tc_new_nothrow(4, std::nothrow));
  tc_delete_nothrow(n, std::nothrow);
  void *a = tc_new_aligned(100, std::align_val_t(512));
  check(a && ((uintptr_t)a & 511) == 0, "tc_new_aligned");
  tc_delete_sized_aligned(a, 100, std::align_val_t(512));
  check(true, "tc_new/tc_delete");

  check(tc_set_new_mode(1) == 0 && tc_set_new_mode(0) == 1, "tc_set_new_mode");
  // new mode 1: a failing malloc calls the new handler (which gives up)
  std::set_new_handler(give_up);
  tc_set_new_mode(1);
  sink = malloc((size_t)1 << 50);
  bool called = handler_calls == 1 && sink == nullptr;
  sink = tc_malloc_skip_new_handler((size_t)1 << 50);
  called = called && handler_calls == 1;
  tc_set_new_mode(0);
  sink = malloc((size_t)1 << 50);
  check(called && handler_calls == 1 && sink == nullptr, "new mode calls the new handler");
  std::set_new_handler(nullptr);
  struct mallinfo mi = tc_mallinfo();
  check(mi.arena > 0 && mi.uordblks > 0, "tc_mallinfo");
  check(tc_mallopt(1, 1) == 1, "tc_mallopt");

  check(nallocx(100, 0) >= 100 && tc_nallocx(100, 0) == nallocx(100, 0), "nallocx");
  void *r = malloc(100);
  check(malloc_usable_size(r) == nallocx(100, 0), "nallocx matches malloc");
  free(r);
  check(nallocx(1000, MALLOCX_LG_ALIGN(12)) % 4096 == 0, "nallocx aligned");
}

// ------------------------------------------------------- malloc_extension.h

// A program's own extension, compiled against gperftools' header: the C
// functions of our library must reach its overrides through the vtable.
class CountingExtension : public MallocExtension {
 public:
  bool GetNumericProperty(const char *name, size_t *value) override {
    if (strcmp(name, "test.answer") == 0) {
      *value = 42;
      return true;
    }
    return base_->GetNumericProperty(name, value);
  }
  size_t GetThreadCacheSize() override { return 12345; }
  MallocExtension *base_ = nullptr;
};

// The type of the range Ranges() reports around p (UNKNOWN if none).
struct RangeQuery {
  uintptr_t p;
  base::MallocRange::Type type;
};
static void range_callback(void *arg, const base::MallocRange *r) {
  RangeQuery *q = static_cast<RangeQuery *>(arg);
  if (q->p >= r->address && q->p < r->address + r->length) q->type = r->type;
}
static base::MallocRange::Type range_type_of(void *p) {
  RangeQuery q = {reinterpret_cast<uintptr_t>(p), base::MallocRange::UNKNOWN};
  MallocExtension::instance()->Ranges(&q, range_callback);
  return q.type;
}

static void test_malloc_extension() {
  MallocExtension *ext = MallocExtension::instance();
  MallocExtension::Initialize();
  check(ext != nullptr && MallocExtension::instance() == ext, "instance");

  size_t before = property("generic.current_allocated_bytes");
  void *big = malloc(8 << 20);
  memset(big, 1, 8 << 20);
  size_t after = property("generic.current_allocated_bytes");
  size_t heap = property("generic.heap_size");
  char detail[160];
  snprintf(detail, sizeof detail, "before %zu after %zu heap %zu", before, after, heap);
  check(before != (size_t)-1 && after >= before + (8 << 20) && heap >= after,
        "generic.current_allocated_bytes / heap_size", detail);
  static const char *names[] = {"tcmalloc.pageheap_free_bytes", "tcmalloc.pageheap_unmapped_bytes",
                                "tcmalloc.central_cache_free_bytes", "tcmalloc.transfer_cache_free_bytes",
                                "tcmalloc.thread_cache_free_bytes", "tcmalloc.current_total_thread_cache_bytes",
                                "generic.total_physical_bytes", "tcmalloc.slack_bytes"};
  bool all = true;
  for (const char *name : names) {
    size_t v = property(name);
    if (v == (size_t)-1 || v > heap + (64 << 20)) {
      snprintf(detail, sizeof detail, "%s = %zu", name, v);
      all = false;
    }
  }
  check(all, "tcmalloc properties", detail);
  size_t v;
  check(!ext->GetNumericProperty("no.such.property", &v), "unknown property is false");

  check(ext->GetOwnership(big) == MallocExtension::kOwned, "GetOwnership owned");
  int on_stack;
  check(ext->GetOwnership(&on_stack) == MallocExtension::kNotOwned, "GetOwnership stack");
  check(ext->GetOwnership(const_cast<void **>(&sink)) == MallocExtension::kNotOwned, "GetOwnership global");
  check(ext->GetAllocatedSize(big) >= (8u << 20), "GetAllocatedSize");
  check(range_type_of(big) == base::MallocRange::INUSE, "Ranges: a live block is INUSE");
  check(ext->GetEstimatedAllocatedSize(33) >= 33, "GetEstimatedAllocatedSize");
  free(big);
  ext->ReleaseFreeMemory();
  check(property("tcmalloc.pageheap_free_bytes") == 0, "ReleaseFreeMemory empties the page heap");
  check(range_type_of(big) == base::MallocRange::UNMAPPED, "Ranges: a freed and released block is UNMAPPED");
  ext->ReleaseToSystem(1 << 20);
  ext->MarkThreadIdle();
  ext->MarkThreadBusy();
  ext->MarkThreadTemporarilyIdle();
  check(ext->GetThreadCacheSize() > 0 || true, "MarkThreadIdle/Busy");
  check(ext->VerifyAllMemory() && ext->VerifyMallocMemory(&v), "Verify*Memory");

  char stats[4096];
  ext->GetStats(stats, sizeof stats);
  check(strstr(stats, "Bytes in use by application") != nullptr, "GetStats");

  std::vector<MallocExtension::FreeListInfo> lists;
  ext->GetFreeListSizes(&lists);
  check(!lists.empty() && lists[0].type != nullptr, "GetFreeListSizes");

  for (int i = 0; i < 2000; i++) sink = malloc(1000);   // sampled with TCMALLOC_SAMPLE_PARAMETER
  std::string sample;
  ext->GetHeapSample(&sample);
  check(sample.compare(0, 14, "heap profile: ") == 0 && sample.find("heap_v2/") != std::string::npos &&
            sample.find("MAPPED_LIBRARIES:") != std::string::npos,
        "GetHeapSample", sample.substr(0, 80).c_str());
  FILE *f = fopen(getenv("SAMPLE_FILE") ? getenv("SAMPLE_FILE") : "/dev/null", "w");
  if (f) {
    fwrite(sample.data(), 1, sample.size(), f);
    fclose(f);
  }

  std::string growth;
  ext->GetHeapGrowthStacks(&growth);
  check(growth.compare(0, 14, "heap profile: ") == 0 && growth.find(" growth\n") != std::string::npos &&
            growth.find("] @ 0x") != std::string::npos,
        "GetHeapGrowthStacks", growth.substr(0, 80).c_str());
  f = fopen(getenv("GROWTH_FILE") ? getenv("GROWTH_FILE") : "/dev/null", "w");
  if (f) {
    fwrite(growth.data(), 1, growth.size(), f);
    fclose(f);
  }

  ext->SetMemoryReleaseRate(5.0);
  check(ext->GetMemoryReleaseRate() == 5.0, "MemoryReleaseRate");
  SysAllocator *sys = ext->GetSystemAllocator();
  size_t got = 0;
  void *mem = sys ? sys->Alloc(100000, &got, 65536) : nullptr;
  check(mem && got >= 100000 && ((uintptr_t)mem & 65535) == 0, "GetSystemAllocator()->Alloc");

  CountingExtension mine;
  mine.base_ = ext;
  MallocExtension::Register(&mine);
  size_t answer = 0;
  check(MallocExtension_GetNumericProperty("test.answer", &answer) && answer == 42,
        "Register: C API dispatches through the vtable");
  check(MallocExtension_GetThreadCacheSize() == 12345, "Register: later vtable slot");
  MallocExtension::Register(ext);
}

// ----------------------------------------------------- malloc_extension_c.h

static void test_malloc_extension_c() {
  void *p = malloc(200);
  check(MallocExtension_VerifyAllMemory() == 1 && MallocExtension_VerifyNewMemory(p) == 1 &&
            MallocExtension_VerifyArrayNewMemory(p) == 1 && MallocExtension_VerifyMallocMemory(p) == 1,
        "MallocExtension_Verify*");
  int blocks;
  size_t total;
  int hist[kMallocExtensionHistogramSize];
  MallocExtension_MallocMemoryStats(&blocks, &total, hist);
  char buf[2048];
  MallocExtension_GetStats(buf, sizeof buf);
  check(strstr(buf, "MALLOC:") != nullptr, "MallocExtension_GetStats");
  size_t v = 0;
  check(MallocExtension_GetNumericProperty("generic.heap_size", &v) == 1 && v > 0,
        "MallocExtension_GetNumericProperty");
  MallocExtension_SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", 1 << 20);
  MallocExtension_MarkThreadIdle();
  MallocExtension_MarkThreadBusy();
  MallocExtension_MarkThreadTemporarilyIdle();
  MallocExtension_ReleaseToSystem(1 << 20);
  MallocExtension_ReleaseFreeMemory();
  check(MallocExtension_GetEstimatedAllocatedSize(200) >= 200, "MallocExtension_GetEstimatedAllocatedSize");
  check(MallocExtension_GetAllocatedSize(p) >= 200, "MallocExtension_GetAllocatedSize");
  MallocExtension_GetThreadCacheSize();
  check(MallocExtension_GetOwnership(p) == MallocExtension_kOwned &&
            MallocExtension_GetOwnership(buf) == MallocExtension_kNotOwned,
        "MallocExtension_GetOwnership");
  free(p);
}

// ------------------------------------------------------------ malloc_hook.h

static int new_calls, delete_calls, nested_allocs;
static const void *last_new;
static size_t last_size;
static const void *last_delete;
static void *caller_stack[32];
static int caller_depth;

static void NewHook(const void *p, size_t s) {
  new_calls++;
  last_new = p;
  last_size = s;
}
static void DeleteHook(const void *p) {
  delete_calls++;
  last_delete = p;
}
// A hook that allocates itself: must not be re-entered.
static void AllocatingHook(const void *, size_t) {
  nested_allocs++;
  void *p = malloc(16);
  free(p);
}
static void StackHook(const void *, size_t) { caller_depth = MallocHook::GetCallerStackTrace(caller_stack, 32, 0); }

static int mmap_calls, munmap_calls, pre_mmap_calls;
static void MmapHook(const void *, const void *, size_t, int, int, int, off_t) { mmap_calls++; }
static void PreMmapHook(const void *, size_t, int, int, int, off_t) { pre_mmap_calls++; }
static void MunmapHook(const void *, size_t) { munmap_calls++; }
static int MmapReplacement(const void *, size_t, int, int, int fd, off_t, void **result) {
  if (fd != 12345) return 0;
  *result = reinterpret_cast<void *>(0x1000);
  return 1;
}

__attribute__((noinline)) void allocate_from_here() {
  sink = malloc(24);
  free(sink);
}

static void test_malloc_hook() {
  check(MallocHook::AddNewHook(&NewHook) && MallocHook::AddDeleteHook(&DeleteHook), "AddNewHook/AddDeleteHook");
  void *p = malloc(123);
  check(new_calls == 1 && last_new == p && last_size == 123, "new hook on malloc");
  free(p);
  check(delete_calls == 1 && last_delete == p, "delete hook on free");
  void *volatile no_block = NULL;  // volatile: the compiler drops a literal free(NULL)
  free(no_block);  // tcmalloc reports it too (our free's fast path sends it to the hooks by its class 0)
  check(delete_calls == 2 && last_delete == NULL, "delete hook on free(NULL)");
  int *q = new int[7];
  check(new_calls == 2 && last_new == q, "new hook on operator new[]");
  delete[] q;
  check(delete_calls == 3 && last_delete == q, "delete hook on operator delete[]");
  p = calloc(3, 5);
  p = realloc(p, 100000);
  check(new_calls == 4 && last_new == p, "new hook on calloc and moving realloc");
  free(p);
  check(MallocHook::RemoveNewHook(&NewHook) && MallocHook::RemoveDeleteHook(&DeleteHook) &&
            !MallocHook::RemoveNewHook(&NewHook),
        "RemoveNewHook/RemoveDeleteHook");
  int calls = new_calls;
  sink = malloc(10);
  free(sink);
  check(new_calls == calls, "removed hook not called");

  MallocHook_AddNewHook(&AllocatingHook);
  sink = malloc(10);
  free(sink);
  check(nested_allocs == 1, "allocating hook is not re-entered");
  MallocHook_RemoveNewHook(&AllocatingHook);

  MallocHook_NewHook old = MallocHook::SetNewHook(&NewHook);
  calls = new_calls;
  sink = malloc(10);
  free(sink);
  MallocHook_NewHook was = MallocHook::SetNewHook(nullptr);
  char detail[100];
  snprintf(detail, sizeof detail, "old %p calls %d -> %d, replaced %p", (void *)old, calls, new_calls, (void *)was);
  check(old == nullptr && new_calls == calls + 1 && was == &NewHook, "SetNewHook (deprecated form)", detail);

  MallocHook::AddNewHook(&StackHook);
  allocate_from_here();
  MallocHook::RemoveNewHook(&StackHook);
  Dl_info info;
  bool found = false;
  for (int i = 0; i < caller_depth && i < 3; i++)
    if (dladdr(caller_stack[i], &info) && info.dli_sname && strstr(info.dli_sname, "allocate_from_here"))
      found = true;
  check(found, "GetCallerStackTrace starts at the allocating function");

  MallocHook::AddMmapHook(&MmapHook);
  MallocHook::AddPreMmapHook(&PreMmapHook);
  MallocHook::AddMunmapHook(&MunmapHook);
  void *m = mmap(nullptr, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(m, 65536);
  check(m != MAP_FAILED && mmap_calls == 1 && pre_mmap_calls == 1 && munmap_calls == 1, "mmap/munmap hooks");
  MallocHook::RemoveMmapHook(&MmapHook);
  MallocHook::RemovePreMmapHook(&PreMmapHook);
  MallocHook::RemoveMunmapHook(&MunmapHook);
  check(MallocHook::SetMmapReplacement(&MmapReplacement), "SetMmapReplacement");
  void *fake = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, 12345, 0);
  check(fake == reinterpret_cast<void *>(0x1000), "mmap replacement used");
  check(MallocHook::RemoveMmapReplacement(&MmapReplacement), "RemoveMmapReplacement");
  void *real = MallocHook::UnhookedMMap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  check(real != MAP_FAILED && MallocHook::UnhookedMUnmap(real, 4096) == 0, "UnhookedMMap/UnhookedMUnmap");
}

// ------------------------------------------------------------ heap-checker.h

static void *hidden_roots[4];

__attribute__((noinline)) static void leak_bytes(size_t n) {
  void *p = malloc(n);
  memset(p, 0xab, n);          // no pointer to it survives this function
  asm volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) static void leak_disabled() {
  HeapLeakChecker::Disabler disabler;
  leak_bytes(777);
}

__attribute__((noinline)) static void leak_ignored() {
  void *p = malloc(555);
  HeapLeakChecker::IgnoreObject(p);
  // the only pointer is hidden (xor-ed), so only IgnoreObject keeps it live
  hidden_roots[0] = reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(p) ^ 0x5555);
}

// GetAllocCaller is private; the header makes this function a friend.
static const void *alloc_caller;
__attribute__((noinline)) void VerifyHeapProfileTableStackGet() {
  void *live = malloc(64);
  sink = live;
  alloc_caller = HeapLeakChecker::GetAllocCaller(live);
}

__attribute__((noinline)) static void leak_unignored() {
  void *p = malloc(333);
  HeapLeakChecker::IgnoreObject(p);
  HeapLeakChecker::UnIgnoreObject(p);
  hidden_roots[1] = reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(p) ^ 0x5555);
}

static void test_heapcheck() {
  check(HeapLeakChecker::IsActive(), "IsActive");
  VerifyHeapProfileTableStackGet();
  check(alloc_caller && strstr(name_of(const_cast<void *>(alloc_caller)), "VerifyHeapProfileTableStackGet"),
        "GetAllocCaller");
  {
    HeapLeakChecker clean("clean_region");
    void *p = malloc(100);
    free(p);
    check(clean.NoLeaks() && clean.BytesLeaked() == 0, "named checker: no leaks");
  }
  {
    HeapLeakChecker leaky("leaky_region");
    leak_bytes(4321);
    bool none = leaky.NoLeaks();
    char detail[100];
    snprintf(detail, sizeof detail, "NoLeaks %d bytes %zd objects %zd", none, leaky.BytesLeaked(),
             leaky.ObjectsLeaked());
    check(!none && leaky.BytesLeaked() == 4321 && leaky.ObjectsLeaked() == 1, "named checker finds a leak", detail);
  }
  {
    HeapLeakChecker quiet("disabled_and_ignored");
    leak_disabled();
    leak_ignored();
    bool none = quiet.SameHeap();
    char detail[100];
    snprintf(detail, sizeof detail, "bytes %zd", quiet.BytesLeaked());
    check(none, "disabled leak and ignored object not reported", detail);
  }
  {
    HeapLeakChecker again("unignored");
    leak_unignored();
    check(!again.BriefNoLeaks() && again.BytesLeaked() == 333, "UnIgnoreObject");
  }
  if (getenv("GLOBAL_CHECK_NOW"))   // the leaks of the named regions are still there
    check(HeapLeakChecker::GlobalChecker() != nullptr && !HeapLeakChecker::NoGlobalLeaks(), "NoGlobalLeaks");
  if (getenv("CANCEL_GLOBAL")) HeapLeakChecker::CancelGlobalCheck();
  if (getenv("LEAK_AT_EXIT")) leak_bytes(999);
}

#else  // PROFILER_ONLY

// --------------------------------------------------------------- profiler.h

static volatile double spin_sink;

static void test_profiler(const char *path) {
  ProfilerState st;
  ProfilerGetCurrentState(&st);
  check(!st.enabled && !ProfilingIsEnabledForAllThreads(), "not profiling before start");
  ProfilerOptions opts;
  memset(&opts, 0, sizeof opts);
  check(ProfilerStartWithOptions(path, &opts) != 0, "ProfilerStartWithOptions");
  ProfilerRegisterThread();
  ProfilerGetCurrentState(&st);
  check(st.enabled && strcmp(st.profile_name, path) == 0 && ProfilingIsEnabledForAllThreads(),
        "ProfilerGetCurrentState while running");
  ProfilerEnable();
  ProfilerDisable();
  double x = 0;
  for (long i = 0; i < 60000000; i++) x += i * 0.5;
  spin_sink = x;
  ProfilerFlush();
  ProfilerStop();
  ProfilerGetCurrentState(&st);
  check(!st.enabled, "ProfilerStop");
  int fd = open(path, O_RDONLY);
  char head[40] = {0};
  ssize_t n = fd >= 0 ? read(fd, head, sizeof head) : -1;
  if (fd >= 0) close(fd);
  // the gperftools CPU profile header: words 0, 3, 0 (64-bit slots)
  long *w = reinterpret_cast<long *>(head);
  check(n == (ssize_t)sizeof head && w[0] == 0 && w[1] == 3 && w[2] == 0, "profile file header");
  std::string second = std::string(path) + ".2";
  check(ProfilerStart(second.c_str()) != 0, "ProfilerStart again");
  ProfilerStop();
}

#endif  // PROFILER_ONLY

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (0) {
#ifndef PROFILER_ONLY
  } else if (strcmp(mode, "alloc") == 0) {
    test_tcmalloc_h();
    test_malloc_extension();
    test_malloc_extension_c();
    test_malloc_hook();
    test_stacktrace();
  } else if (strcmp(mode, "heapcheck") == 0) {
    test_heapcheck();
#else
  } else if (strcmp(mode, "profiler") == 0 && argc > 2) {
    test_profiler(argv[2]);
    test_stacktrace();        // libprofiler exports stacktrace.h too
#endif
  } else {
    fprintf(stderr, "usage: %s alloc | heapcheck | profiler FILE\n", argv[0]);
    return 2;
  }
  printf("%s: %d failures\n", mode, failures);
  return failures ? 1 : 0;
}
