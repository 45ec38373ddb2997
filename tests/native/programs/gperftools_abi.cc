// Prints the ABI facts of the gperftools headers it is compiled against:
// the vtable slot of every MallocExtension / SysAllocator virtual function
// (Itanium C++ ABI: a pointer to a virtual member function holds 1 + the
// slot's byte offset) and the sizes of the public structures.
// test_gperftools_api.py compiles it once against gperftools' headers and
// once against ours and requires the same output.
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <gperftools/heap-checker.h>
#include <gperftools/malloc_extension.h>
#include <gperftools/malloc_extension_c.h>
#include <gperftools/malloc_hook.h>
#include <gperftools/profiler.h>

template <typename F>
static long slot(F f) {
  long raw[2];
  static_assert(sizeof(f) == sizeof(raw), "Itanium member function pointer");
  memcpy(raw, &f, sizeof raw);
  return (raw[0] - 1) / (long)sizeof(void *);
}

#define SLOT(cls, fn) printf("%s::%s slot %ld\n", #cls, #fn, slot(&cls::fn))
#define SIZE(type) printf("sizeof(%s) %zu\n", #type, sizeof(type))

int main() {
  SLOT(MallocExtension, VerifyAllMemory);
  SLOT(MallocExtension, VerifyNewMemory);
  SLOT(MallocExtension, VerifyArrayNewMemory);
  SLOT(MallocExtension, VerifyMallocMemory);
  SLOT(MallocExtension, MallocMemoryStats);
  SLOT(MallocExtension, GetStats);
  SLOT(MallocExtension, GetHeapSample);
  SLOT(MallocExtension, GetHeapGrowthStacks);
  SLOT(MallocExtension, Ranges);
  SLOT(MallocExtension, GetNumericProperty);
  SLOT(MallocExtension, SetNumericProperty);
  SLOT(MallocExtension, MarkThreadIdle);
  SLOT(MallocExtension, MarkThreadBusy);
  SLOT(MallocExtension, GetSystemAllocator);
  SLOT(MallocExtension, SetSystemAllocator);
  SLOT(MallocExtension, ReleaseToSystem);
  SLOT(MallocExtension, ReleaseFreeMemory);
  SLOT(MallocExtension, SetMemoryReleaseRate);
  SLOT(MallocExtension, GetMemoryReleaseRate);
  SLOT(MallocExtension, GetEstimatedAllocatedSize);
  SLOT(MallocExtension, GetAllocatedSize);
  SLOT(MallocExtension, GetOwnership);
  SLOT(MallocExtension, GetFreeListSizes);
  SLOT(MallocExtension, ReadStackTraces);
  SLOT(MallocExtension, ReadHeapGrowthStackTraces);
  SLOT(MallocExtension, GetThreadCacheSize);
  SLOT(MallocExtension, MarkThreadTemporarilyIdle);
  SLOT(SysAllocator, Alloc);
  SIZE(MallocExtension);
  SIZE(SysAllocator);
  SIZE(MallocExtension::FreeListInfo);
  printf("offsetof(FreeListInfo, type) %zu\n", offsetof(MallocExtension::FreeListInfo, type));
  SIZE(base::MallocRange);
  printf("offsetof(MallocRange, fraction) %zu\n", offsetof(base::MallocRange, fraction));
  SIZE(HeapLeakChecker);
  SIZE(HeapLeakChecker::Disabler);
  SIZE(HiddenPointer<int>);
  SIZE(HeapCleaner);
  SIZE(MallocHook);
  SIZE(ProfilerOptions);
  SIZE(ProfilerState);
  printf("offsetof(ProfilerState, samples_gathered) %zu\n", offsetof(ProfilerState, samples_gathered));
  printf("MallocExtension_kNotOwned %d kMallocExtensionHistogramSize %d\n", (int)MallocExtension_kNotOwned,
         (int)kMallocExtensionHistogramSize);
  return 0;
}
