// gperftools' MallocExtension (malloc_extension.h, malloc_extension_c.h),
// SysAllocator and the out-of-line parts of the C++ MallocHook class, for
// programs compiled against gperftools' headers.
//
// MallocExtension's virtual functions have gperftools' defaults (the base
// class a program may derive from); PprofPyExtension overrides them with
// this allocator's answers and is what instance() returns unless the
// program Register()s its own.  The C functions call instance(), so they
// follow a registered implementation too.  Everything that touches the
// allocator is in C (gperftools_tcmalloc.c, api.c, heapprof.c).
//
// No libstdc++ at run time (see setup.py): the allocator is preloaded into
// C programs.  So: no exceptions, no thread-safe static guards, no global
// objects with destructors, and the libstdc++ symbols this file refers to
// are weak (the .weak lines below): they are only used when a C++ caller
// hands us a std::string or std::vector, and then libstdc++ is loaded.
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <new>

#include "gperftools/malloc_extension.h"
#include "gperftools/malloc_extension_c.h"
#include "gperftools/malloc_hook.h"
#include "gperftools/nallocx.h"
#include "gperftools_glue.h"

#define EXPORT __attribute__((visibility("default")))

// Typeinfo vtables (RTTI of our classes), the pure-virtual trap of
// SysAllocator's vtable, and the container code the std:: arguments need.
// tests/native/test_gperftools_api.py checks that no other libstdc++
// symbol is needed (nm) and that ldd shows no libstdc++.
asm(".weak _ZTVN10__cxxabiv117__class_type_infoE\n"
    ".weak _ZTVN10__cxxabiv120__si_class_type_infoE\n"
    ".weak __cxa_pure_virtual\n"
    ".weak _ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE6appendEPKcm\n"
    ".weak _ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_appendEPKcm\n"
    ".weak _ZSt20__throw_length_errorPKc\n"
    ".weak _ZSt17__throw_bad_allocv\n"
    ".weak _ZSt28__throw_bad_array_new_lengthv\n");

// ---------------------------------------------------------------------------
// SysAllocator

SysAllocator::~SysAllocator() {}

namespace {

// The allocator's memory source: anonymous mappings, aligned by
// over-mapping and trimming.
class MmapSysAllocator : public SysAllocator {
 public:
  void *Alloc(size_t size, size_t *actual_size, size_t alignment) override {
    if (alignment < 4096) alignment = 4096;
    size = (size + 4095) & ~(size_t)4095;
    size_t extra = alignment - 4096;
    if (size + extra < size) return nullptr;
    char *p = static_cast<char *>(mmap(nullptr, size + extra, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return nullptr;
    uintptr_t a = (reinterpret_cast<uintptr_t>(p) + alignment - 1) & ~(alignment - 1);
    char *start = reinterpret_cast<char *>(a);
    if (start > p) munmap(p, static_cast<size_t>(start - p));
    size_t tail = static_cast<size_t>((p + size + extra) - (start + size));
    if (tail) munmap(start + size, tail);
    if (actual_size) *actual_size = size;
    return start;
  }
};

alignas(MmapSysAllocator) unsigned char sys_storage[sizeof(MmapSysAllocator)];
SysAllocator *volatile sys_allocator;

}  // namespace

// ---------------------------------------------------------------------------
// MallocExtension: gperftools' base-class behaviour

MallocExtension::~MallocExtension() {}
void MallocExtension::Initialize() { instance(); }
bool MallocExtension::VerifyAllMemory() { return true; }
bool MallocExtension::VerifyNewMemory(const void *) { return true; }
bool MallocExtension::VerifyArrayNewMemory(const void *) { return true; }
bool MallocExtension::VerifyMallocMemory(const void *) { return true; }
bool MallocExtension::MallocMemoryStats(int *blocks, size_t *total, int histogram[kMallocHistogramSize]) {
  *blocks = 0;
  *total = 0;
  memset(histogram, 0, sizeof(int) * kMallocHistogramSize);
  return false;
}
void MallocExtension::GetStats(char *buffer, int length) {
  if (buffer && length > 0) buffer[0] = '\0';
}
void MallocExtension::GetHeapSample(MallocExtensionWriter *writer) {
  writer->append("This malloc implementation does not support sampling.\n");
}
void MallocExtension::GetHeapGrowthStacks(MallocExtensionWriter *writer) {
  writer->append("This malloc implementation does not support sampling.\n");
}
void MallocExtension::Ranges(void *, RangeFunction) {}
bool MallocExtension::GetNumericProperty(const char *, size_t *) { return false; }
bool MallocExtension::SetNumericProperty(const char *, size_t) { return false; }
void MallocExtension::MarkThreadIdle() {}
void MallocExtension::MarkThreadBusy() {}
SysAllocator *MallocExtension::GetSystemAllocator() { return nullptr; }
void MallocExtension::SetSystemAllocator(SysAllocator *) {}
void MallocExtension::ReleaseToSystem(size_t) {}
void MallocExtension::ReleaseFreeMemory() { ReleaseToSystem(static_cast<size_t>(-1)); }
void MallocExtension::SetMemoryReleaseRate(double) {}
double MallocExtension::GetMemoryReleaseRate() { return -1.0; }
size_t MallocExtension::GetEstimatedAllocatedSize(size_t size) { return size; }
size_t MallocExtension::GetAllocatedSize(const void *) { return 0; }
MallocExtension::Ownership MallocExtension::GetOwnership(const void *) { return kUnknownOwnership; }
void MallocExtension::GetFreeListSizes(std::vector<FreeListInfo> *v) { v->clear(); }
void **MallocExtension::ReadStackTraces(int *) { return nullptr; }
void **MallocExtension::ReadHeapGrowthStackTraces() { return nullptr; }
size_t MallocExtension::GetThreadCacheSize() { return 0; }
void MallocExtension::MarkThreadTemporarilyIdle() { MarkThreadIdle(); }

// ---------------------------------------------------------------------------
// pprof_py's implementation

namespace {

class PprofPyExtension : public MallocExtension {
 public:
  void GetStats(char *buffer, int length) override {
    if (buffer && length > 0) pprofpy_malloc_stats_text(buffer, static_cast<size_t>(length));
  }

  // The heap profiler's current table: sampled when TCMALLOC_SAMPLE_PARAMETER
  // is set (header heap_v2/<rate>), every object under HEAPPROFILE or
  // HEAPCHECK, and only the header when neither records anything.
  void GetHeapSample(MallocExtensionWriter *writer) override {
    char *text = GetHeapProfile();
    if (text) {
      writer->append(text, strlen(text));
      free(text);
    }
  }

  // Every growth of the page heap with the stack that caused it
  // (gperftools_growth.c), in time order.
  void GetHeapGrowthStacks(MallocExtensionWriter *writer) override {
    char *text = pp_growth_profile();
    if (text) {
      writer->append(text, strlen(text));
      free(text);
    }
  }

  bool GetNumericProperty(const char *name, size_t *value) override {
    return pp_ext_get_property(name, value) != 0;
  }

  // tcmalloc.max_total_thread_cache_bytes, tcmalloc.aggressive_memory_decommit
  // (gperftools_tcmalloc.c); false for anything else.
  bool SetNumericProperty(const char *name, size_t value) override {
    return pp_ext_set_property(name, value) != 0;
  }

  // The caller's cache goes back to the central lists (and free pages to
  // the OS): the thread's next allocation refills it.
  void MarkThreadIdle() override { pp_release_free_memory(); }
  void MarkThreadBusy() override {}
  void MarkThreadTemporarilyIdle() override { pp_release_free_memory(); }

  SysAllocator *GetSystemAllocator() override {
    if (!sys_allocator) sys_allocator = new (sys_storage) MmapSysAllocator();
    return sys_allocator;
  }
  // The page heap grows through the program's SysAllocator from now on
  // (system_alloc.c); our own (or NULL) means our mmap again.
  void SetSystemAllocator(SysAllocator *a) override {
    sys_allocator = a;
    bool ours = a == nullptr || a == reinterpret_cast<SysAllocator *>(sys_storage);
    pp_user_sys_alloc = ours ? nullptr : +[](size_t size, size_t *actual, size_t align) -> void * {
      SysAllocator *s = sys_allocator;
      return s ? s->Alloc(size, actual, align) : nullptr;
    };
  }

  // About n bytes of free pages, whole spans, with tcmalloc's credit for
  // what a call released beyond its request (gperftools_tcmalloc.c).
  void ReleaseToSystem(size_t n) override { pp_ext_release_to_system(n); }
  void ReleaseFreeMemory() override { pp_ext_release_free_memory(); }

  // FLAGS_tcmalloc_release_rate: the page heap's pace of releasing free
  // pages by itself, 0 = never (page_heap.c).
  void SetMemoryReleaseRate(double rate) override { pp_release_rate = rate; }
  double GetMemoryReleaseRate() override { return pp_release_rate; }

  size_t GetEstimatedAllocatedSize(size_t size) override { return nallocx(size, 0); }
  size_t GetAllocatedSize(const void *p) override { return pp_ext_allocated_size(p); }
  Ownership GetOwnership(const void *p) override {
    return pp_ext_ownership(p) == 1 ? kOwned : kNotOwned;
  }

  // One entry per kind of free memory, over all size classes together.
  void GetFreeListSizes(std::vector<FreeListInfo> *v) override {
    static const struct {
      const char *type, *property;
      size_t min, max;
    } kinds[] = {
        {"tcmalloc.thread", "tcmalloc.thread_cache_free_bytes", 0, 256 << 10},
        {"tcmalloc.transfer", "tcmalloc.transfer_cache_free_bytes", 0, 256 << 10},
        {"tcmalloc.central", "tcmalloc.central_cache_free_bytes", 0, 256 << 10},
        {"tcmalloc.page", "tcmalloc.pageheap_free_bytes", 8192, static_cast<size_t>(-1)},
        {"tcmalloc.page_unmapped", "tcmalloc.pageheap_unmapped_bytes", 8192, static_cast<size_t>(-1)},
    };
    v->clear();
    for (const auto &k : kinds) {
      FreeListInfo info;
      info.min_object_size = k.min;
      info.max_object_size = k.max;
      info.total_bytes_free = 0;
      pp_ext_get_property(k.property, &info.total_bytes_free);
      info.type = k.type;
      v->push_back(info);
    }
  }

  size_t GetThreadCacheSize() override { return pp_ext_thread_cache_size(); }

  // Every span of the page heap (gperftools_tcmalloc.c).
  void Ranges(void *arg, RangeFunction func) override {
    struct Call {
      void *arg;
      RangeFunction *func;
    } call = {arg, func};
    pp_ext_ranges(
        [](void *c, uintptr_t start, size_t len, int type, double fraction) {
          base::MallocRange r;
          r.address = start;
          r.length = len;
          r.type = static_cast<base::MallocRange::Type>(type);
          r.fraction = fraction;
          static_cast<Call *>(c)->func(static_cast<Call *>(c)->arg, &r);
        },
        &call);
  }

};

alignas(PprofPyExtension) unsigned char ext_storage[sizeof(PprofPyExtension)];
MallocExtension *volatile current;

}  // namespace

// Construction only writes the vtable pointer and one double, so two
// threads racing on the first call construct the same object harmlessly.
MallocExtension *MallocExtension::instance() {
  MallocExtension *e = current;
  if (!e) {
    e = new (ext_storage) PprofPyExtension();
    current = e;
  }
  return e;
}

// A program linked with -ltcmalloc and run with this library preloaded
// loads libtcmalloc too, and its start-up code registers tcmalloc's own
// implementation, whose allocator never sees an allocation (ours serves
// them all): that registration is ignored.
void MallocExtension::Register(MallocExtension *implementation) {
  Dl_info info;
  if (dladdr(__builtin_return_address(0), &info) && info.dli_fname) {
    const char *base = strrchr(info.dli_fname, '/');
    if (strncmp(base ? base + 1 : info.dli_fname, "libtcmalloc", 11) == 0) return;
  }
  if (implementation) current = implementation;
}

// ---------------------------------------------------------------------------
// malloc_extension_c.h

#define C_FN(ret, name, params, call) \
  extern "C" EXPORT ret MallocExtension_##name params { return MallocExtension::instance()->call; }

C_FN(int, VerifyAllMemory, (void), VerifyAllMemory())
C_FN(int, VerifyNewMemory, (const void *p), VerifyNewMemory(p))
C_FN(int, VerifyArrayNewMemory, (const void *p), VerifyArrayNewMemory(p))
C_FN(int, VerifyMallocMemory, (const void *p), VerifyMallocMemory(p))
C_FN(int, MallocMemoryStats, (int *blocks, size_t *total, int histogram[kMallocExtensionHistogramSize]),
     MallocMemoryStats(blocks, total, histogram))
C_FN(void, GetStats, (char *buffer, int length), GetStats(buffer, length))
C_FN(int, GetNumericProperty, (const char *name, size_t *value), GetNumericProperty(name, value))
C_FN(int, SetNumericProperty, (const char *name, size_t value), SetNumericProperty(name, value))
C_FN(void, MarkThreadIdle, (void), MarkThreadIdle())
C_FN(void, MarkThreadBusy, (void), MarkThreadBusy())
C_FN(void, ReleaseToSystem, (size_t n), ReleaseToSystem(n))
C_FN(void, ReleaseFreeMemory, (void), ReleaseFreeMemory())
C_FN(size_t, GetEstimatedAllocatedSize, (size_t size), GetEstimatedAllocatedSize(size))
C_FN(size_t, GetAllocatedSize, (const void *p), GetAllocatedSize(p))
C_FN(size_t, GetThreadCacheSize, (void), GetThreadCacheSize())
C_FN(void, MarkThreadTemporarilyIdle, (void), MarkThreadTemporarilyIdle())

extern "C" EXPORT MallocExtension_Ownership MallocExtension_GetOwnership(const void *p) {
  return static_cast<MallocExtension_Ownership>(MallocExtension::instance()->GetOwnership(p));
}

// ---------------------------------------------------------------------------
// MallocHook's out-of-line members (the C interface is gperftools_hooks.c)

void *MallocHook::UnhookedMMap(void *start, size_t length, int prot, int flags, int fd, off_t offset) {
  return pp_raw_mmap(start, length, prot, flags, fd, offset);
}
int MallocHook::UnhookedMUnmap(void *start, size_t length) { return pp_raw_munmap(start, length); }
void MallocHook::InvokeNewHookSlow(const void *p, size_t s) { pp_invoke_new_hook(p, s); }
void MallocHook::InvokeDeleteHookSlow(const void *p) { pp_invoke_delete_hook(p); }
void MallocHook::InvokePreMmapHookSlow(const void *start, size_t size, int prot, int flags, int fd, off_t off) {
  pp_invoke_pre_mmap_hook(start, size, prot, flags, fd, off);
}
void MallocHook::InvokeMmapHookSlow(const void *result, const void *start, size_t size, int prot, int flags,
                                    int fd, off_t off) {
  pp_invoke_mmap_hook(result, start, size, prot, flags, fd, off);
}
bool MallocHook::InvokeMmapReplacementSlow(const void *start, size_t size, int prot, int flags, int fd,
                                           off_t off, void **result) {
  return pp_invoke_mmap_replacement(start, size, prot, flags, fd, off, result) != 0;
}
void MallocHook::InvokeMunmapHookSlow(const void *p, size_t size) { pp_invoke_munmap_hook(p, size); }
bool MallocHook::InvokeMunmapReplacementSlow(const void *p, size_t size, int *result) {
  return pp_invoke_munmap_replacement(p, size, result) != 0;
}
void MallocHook::InvokeMremapHookSlow(const void *result, const void *old_addr, size_t old_size,
                                      size_t new_size, int flags, const void *new_addr) {
  pp_invoke_mremap_hook(result, old_addr, old_size, new_size, flags, new_addr);
}
void MallocHook::InvokePreSbrkHookSlow(ptrdiff_t increment) { pp_invoke_pre_sbrk_hook(increment); }
void MallocHook::InvokeSbrkHookSlow(const void *result, ptrdiff_t increment) {
  pp_invoke_sbrk_hook(result, increment);
}
