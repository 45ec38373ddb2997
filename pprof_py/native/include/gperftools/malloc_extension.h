/* pprof_py: gperftools-compatible MallocExtension (C++).
 *
 * MallocExtension::instance() is pprof_py's allocator seen through
 * tcmalloc's extension interface: statistics, tcmalloc's numeric
 * properties, releasing memory, ownership and sizes of blocks, the sampled
 * heap profile.  The class layout and virtual function order are those of
 * gperftools 2.10, so programs compiled against gperftools' header (or a
 * subclass registered with Register()) work unchanged.
 * docs/gperftools-api.md lists what each method does here.
 */
#ifndef PPROFPY_GPERFTOOLS_MALLOC_EXTENSION_H_
#define PPROFPY_GPERFTOOLS_MALLOC_EXTENSION_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

static const int kMallocHistogramSize = 64;

// GetHeapSample() and GetHeapGrowthStacks() append text to one of these.
typedef std::string MallocExtensionWriter;

namespace base {
struct MallocRange;
}

// Where an allocator gets its memory from (tcmalloc lets a program supply
// one).  Alloc returns size bytes aligned to alignment, sets *actual_size
// to the bytes really obtained, or returns NULL.
class PERFTOOLS_DLL_DECL SysAllocator {
 public:
  SysAllocator() {}
  virtual ~SysAllocator();
  virtual void *Alloc(size_t size, size_t *actual_size, size_t alignment) = 0;
};

class PERFTOOLS_DLL_DECL MallocExtension {
 public:
  virtual ~MallocExtension();

  // Sets the allocator up (pprof_py's is ready before main()).
  static void Initialize();

  // Heap consistency checks: true when nothing wrong was found.
  virtual bool VerifyAllMemory();
  virtual bool VerifyNewMemory(const void *p);
  virtual bool VerifyArrayNewMemory(const void *p);
  virtual bool VerifyMallocMemory(const void *p);
  // Block counts and a size histogram; false when not supported.
  virtual bool MallocMemoryStats(int *blocks, size_t *total, int histogram[kMallocHistogramSize]);

  // Human-readable statistics into buffer (NUL-terminated).
  virtual void GetStats(char *buffer, int buffer_length);
  // The sampled heap profile (gperftools heap profile text) appended to writer.
  virtual void GetHeapSample(MallocExtensionWriter *writer);
  // Stacks that made the heap grow, as a heap profile.
  virtual void GetHeapGrowthStacks(MallocExtensionWriter *writer);

  // Calls func(arg, range) for each span of the heap.
  typedef void(RangeFunction)(void *, const base::MallocRange *);
  virtual void Ranges(void *arg, RangeFunction func);

  // tcmalloc's named statistics ("generic.current_allocated_bytes",
  // "generic.heap_size", "tcmalloc.pageheap_free_bytes", ...); false for
  // names the allocator does not know.
  virtual bool GetNumericProperty(const char *property, size_t *value);
  virtual bool SetNumericProperty(const char *property, size_t value);

  // The calling thread will not allocate for a while: give its cached
  // memory back.  MarkThreadBusy undoes MarkThreadIdle.
  virtual void MarkThreadIdle();
  virtual void MarkThreadBusy();

  virtual SysAllocator *GetSystemAllocator();
  virtual void SetSystemAllocator(SysAllocator *a);

  // Return free memory to the operating system: at least num_bytes, or all.
  virtual void ReleaseToSystem(size_t num_bytes);
  virtual void ReleaseFreeMemory();
  virtual void SetMemoryReleaseRate(double rate);
  virtual double GetMemoryReleaseRate();

  // Bytes a request of size would really get.
  virtual size_t GetEstimatedAllocatedSize(size_t size);
  // Usable bytes of a block this allocator owns.
  virtual size_t GetAllocatedSize(const void *p);

  enum Ownership { kUnknownOwnership = 0, kOwned, kNotOwned };
  virtual Ownership GetOwnership(const void *p);

  // The process's extension, and a way to put another in its place.
  static MallocExtension *instance();
  static void Register(MallocExtension *implementation);

  // One entry per kind of free memory the allocator holds.
  struct FreeListInfo {
    size_t min_object_size;
    size_t max_object_size;
    size_t total_bytes_free;
    const char *type;
  };
  virtual void GetFreeListSizes(std::vector<FreeListInfo> *v);

  // Raw sampled stacks (tcmalloc's internal format); NULL when not available.
  virtual void **ReadStackTraces(int *sample_period);
  virtual void **ReadHeapGrowthStackTraces();

  // Bytes of free objects in the calling thread's cache.
  virtual size_t GetThreadCacheSize();
  // Like MarkThreadIdle, for a shorter pause.
  virtual void MarkThreadTemporarilyIdle();
};

namespace base {
// One range reported by MallocExtension::Ranges().
struct MallocRange {
  enum Type { INUSE, FREE, UNMAPPED, UNKNOWN };
  uintptr_t address;
  size_t length;
  Type type;
  double fraction;  // share of the range in use (INUSE only)
};
}  // namespace base

#endif
