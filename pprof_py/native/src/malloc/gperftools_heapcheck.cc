// gperftools' HeapLeakChecker and HeapCleaner (heap-checker.h) over
// pprof_py's leak checker (heapprof.c).
//
// What this file adds to the whole-program check at exit:
//  * named checkers: the constructor records the addresses of the blocks
//    live at that moment (the heap profiler's table, into an mmap'ed
//    sorted array); NoLeaks() runs the leak check and reports only
//    unreachable blocks that are not in that list.  Like gperftools, a
//    block freed and another allocated at the same address in between
//    counts as old;
//  * ignored blocks: IgnoreObject() and every allocation made by a thread
//    while a Disabler lives go into a hash set; the leak check treats them
//    as roots (they and what they point to are live).  Freed blocks leave
//    the set: while the set is not empty, or a Disabler lives, the
//    allocation entry points call pp_hc_note_new / pp_hc_note_delete
//    through the MallocHook runners (pp_hooks_on bit PP_HOOKS_HEAPCHECK);
//  * HEAPCHECK=local (no check at exit), CancelGlobalCheck() and the
//    HeapCleaner functions that run just before the check at exit.
// Nothing here allocates from the heap: the set and snapshots are mmap'ed.
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <new>

#include "gperftools/heap-checker.h"
#include "gperftools_glue.h"

namespace {

// A spin lock that never allocates (the allocator's own kind).
class Lock {
 public:
  void lock() {
    while (__atomic_exchange_n(&v_, 1, __ATOMIC_ACQUIRE))
      while (__atomic_load_n(&v_, __ATOMIC_RELAXED)) sched_yield();
  }
  void unlock() { __atomic_store_n(&v_, 0, __ATOMIC_RELEASE); }

 private:
  int v_ = 0;
};

struct Guard {
  explicit Guard(Lock &l) : l_(l) { l_.lock(); }
  ~Guard() { l_.unlock(); }
  Lock &l_;
};

void *map_pages(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// ---------------------------------------------------------------------------
// the set of ignored blocks: linear probing, 0 = empty slot, deletion by
// shifting the following entries back (no tombstones)

Lock set_lock;
uintptr_t *set_slots;
size_t set_cap, set_count;
int disablers;                                   // Disabler objects alive, all threads
__thread int thread_disabled __attribute__((tls_model("initial-exec")));

size_t slot_of(uintptr_t a) { return (a * 0x9e3779b97f4a7c15ull >> 17) & (set_cap - 1); }

// set_lock held
void update_tracking() { pp_hooks_set_bit(PP_HOOKS_HEAPCHECK, set_count > 0 || disablers > 0); }

bool set_grow() {
  size_t cap = set_cap ? set_cap * 2 : 4096;
  uintptr_t *slots = static_cast<uintptr_t *>(map_pages(cap * sizeof(uintptr_t)));
  if (!slots) return false;
  uintptr_t *old = set_slots;
  size_t old_cap = set_cap;
  set_slots = slots;
  set_cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i]) {
      size_t j = slot_of(old[i]);
      while (set_slots[j]) j = (j + 1) & (cap - 1);
      set_slots[j] = old[i];
    }
  if (old) munmap(old, old_cap * sizeof(uintptr_t));
  return true;
}

void set_add(uintptr_t a) {
  Guard g(set_lock);
  if ((set_count + 1) * 2 > set_cap && !set_grow()) return;
  size_t j = slot_of(a);
  while (set_slots[j]) {
    if (set_slots[j] == a) return;
    j = (j + 1) & (set_cap - 1);
  }
  set_slots[j] = a;
  set_count++;
  update_tracking();
}

void set_remove(uintptr_t a) {
  Guard g(set_lock);
  if (!set_count) return;
  size_t j = slot_of(a);
  while (set_slots[j] && set_slots[j] != a) j = (j + 1) & (set_cap - 1);
  if (!set_slots[j]) return;
  set_slots[j] = 0;
  set_count--;
  // shift back the entries of the run that probed past j
  for (size_t k = (j + 1) & (set_cap - 1); set_slots[k]; k = (k + 1) & (set_cap - 1)) {
    size_t home = slot_of(set_slots[k]);
    bool movable = (j <= k) ? (home <= j || home > k) : (home <= j && home > k);
    if (movable) {
      set_slots[j] = set_slots[k];
      set_slots[k] = 0;
      j = k;
    }
  }
  update_tracking();
}

bool set_has(uintptr_t a) {
  Guard g(set_lock);
  if (!set_count) return false;
  for (size_t j = slot_of(a); set_slots[j]; j = (j + 1) & (set_cap - 1))
    if (set_slots[j] == a) return true;
  return false;
}

// ---------------------------------------------------------------------------
// snapshots of the live blocks, for named checkers

struct Snapshot {
  size_t map_bytes;
  size_t n, cap;
  char name[256];
  uintptr_t addrs[1];
};

void count_one(uintptr_t, size_t, void *ctx) { ++*static_cast<size_t *>(ctx); }

void add_one(uintptr_t addr, size_t, void *ctx) {
  Snapshot *s = static_cast<Snapshot *>(ctx);
  if (s->n < s->cap) s->addrs[s->n++] = addr;
}

void sort_addrs(uintptr_t *a, size_t n) {   // heap sort: qsort may allocate
  auto sift = [a](size_t root, size_t end) {
    for (;;) {
      size_t child = 2 * root + 1;
      if (child >= end) return;
      if (child + 1 < end && a[child + 1] > a[child]) child++;
      if (a[root] >= a[child]) return;
      uintptr_t t = a[root];
      a[root] = a[child];
      a[child] = t;
      root = child;
    }
  };
  if (n < 2) return;
  for (size_t i = n / 2; i-- > 0;) sift(i, n);
  for (size_t end = n - 1; end > 0; end--) {
    uintptr_t t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(0, end);
  }
}

Snapshot *take_snapshot(const char *name) {
  size_t live = 0;
  pp_prof_each_object(count_one, &live);
  size_t cap = live + live / 4 + 1024;     // blocks other threads allocate meanwhile
  size_t bytes = sizeof(Snapshot) + cap * sizeof(uintptr_t);
  Snapshot *s = static_cast<Snapshot *>(map_pages(bytes));
  if (!s) return nullptr;
  s->map_bytes = bytes;
  s->n = 0;
  s->cap = cap;
  snprintf(s->name, sizeof s->name, "%s", name);
  pp_prof_each_object(add_one, s);
  sort_addrs(s->addrs, s->n);
  return s;
}

int not_in_snapshot(uintptr_t addr, void *ctx) {
  const Snapshot *s = static_cast<const Snapshot *>(ctx);
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (s->addrs[mid] < addr) lo = mid + 1;
    else hi = mid;
  }
  return !(lo < s->n && s->addrs[lo] == addr);
}

// ---------------------------------------------------------------------------
// global state

int global_cancelled;
alignas(HeapLeakChecker) unsigned char global_storage[sizeof(HeapLeakChecker)];
HeapLeakChecker *global_checker;

Lock cleaners_lock;
HeapCleaner::void_function cleaners[64];
int ncleaners;

bool local_mode() {
  const char *mode = getenv("HEAPCHECK");
  return mode && strcmp(mode, "local") == 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// the C side heapprof.c and the hook runners call

extern "C" {

int pp_hc_is_ignored(uintptr_t addr) { return set_has(addr); }

void pp_hc_note_new(const void *p) {
  if (p && thread_disabled > 0) set_add(reinterpret_cast<uintptr_t>(p));
}

void pp_hc_note_delete(const void *p) {
  if (p && __atomic_load_n(&set_count, __ATOMIC_RELAXED)) set_remove(reinterpret_cast<uintptr_t>(p));
}

int pp_hc_global_check_wanted(void) {
  HeapCleaner::RunHeapCleanups();
  return !global_cancelled && !local_mode();
}

}  // extern "C"

// ---------------------------------------------------------------------------
// HeapLeakChecker

bool HeapLeakChecker::IsActive() { return pp_leak_check_on() != 0; }

// The whole-program checker: no snapshot, every unreachable block counts.
HeapLeakChecker::HeapLeakChecker()
    : lock_(nullptr), name_("_main_"), start_snapshot_(nullptr), has_checked_(false),
      inuse_bytes_increase_(0), inuse_allocs_increase_(0), keep_profiles_(false) {}

HeapLeakChecker *HeapLeakChecker::GlobalChecker() {
  if (!IsActive() || global_cancelled || local_mode()) return nullptr;
  if (!global_checker) global_checker = new (global_storage) HeapLeakChecker();
  return global_checker;
}

bool HeapLeakChecker::NoGlobalLeaks() {
  HeapLeakChecker *main = GlobalChecker();
  return main ? main->DoNoLeaks(DO_NOT_SYMBOLIZE) : true;
}

// Said on stderr as gperftools says it (its death test matches the line).
void HeapLeakChecker::CancelGlobalCheck() {
  if (IsActive() && !global_cancelled && !local_mode()) {
    static const char msg[] = "Canceling the automatic at-exit whole-program memory leak check\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
  }
  global_cancelled = 1;
}

HeapLeakChecker::HeapLeakChecker(const char *name)
    : lock_(nullptr), name_(nullptr), start_snapshot_(nullptr), has_checked_(false),
      inuse_bytes_increase_(0), inuse_allocs_increase_(0), keep_profiles_(false) {
  if (!IsActive()) return;
  Snapshot *s = take_snapshot(name ? name : "");
  if (!s) {
    fprintf(stderr, "pprof_py heap checker: out of memory, check \"%s\" disabled\n", name ? name : "");
    return;
  }
  start_snapshot_ = s;
  name_ = s->name;
}

HeapLeakChecker::~HeapLeakChecker() {
  Snapshot *s = static_cast<Snapshot *>(start_snapshot_);
  if (!s) return;
  // gperftools makes this fatal too: a checker whose result nobody asked
  // for is a forgotten check
  if (!has_checked_) {
    fprintf(stderr, "heap checker \"%s\": destroyed without calling NoLeaks() or SameHeap()\n", s->name);
    abort();
  }
  munmap(s, s->map_bytes);
}

namespace {

// The stack below the caller still holds the locals of functions it
// called before, among them pointers to blocks that are leaks now; the
// check's own frames would cover them with slots they never write, and the
// root scan would find those pointers.  So the check runs on freshly
// zeroed stack.
__attribute__((noinline)) void clear_stack_below() {
  volatile char area[64 << 10];
  memset(const_cast<char *>(area), 0, sizeof area);
  asm volatile("" : : "r"(area) : "memory");
}

__attribute__((noinline)) void run_check(pp_leak_query *q) { pp_leak_check_run(q); }

}  // namespace

bool HeapLeakChecker::DoNoLeaks(ShouldSymbolize) {
  has_checked_ = true;
  inuse_bytes_increase_ = inuse_allocs_increase_ = 0;
  if (!IsActive() || !name_) return true;
  pp_leak_query q = {name_, nullptr, nullptr, 0, 0, 0};
  if (start_snapshot_) {
    q.may_report = not_in_snapshot;
    q.ctx = start_snapshot_;
  }
  clear_stack_below();
  run_check(&q);
  inuse_bytes_increase_ = static_cast<ssize_t>(q.leaked_bytes);
  inuse_allocs_increase_ = static_cast<ssize_t>(q.leaked_objects);
  return q.leaked_objects == 0;
}

ssize_t HeapLeakChecker::BytesLeaked() const {
  if (!has_checked_) {
    fprintf(stderr, "heap checker: BytesLeaked() before NoLeaks()\n");
    abort();
  }
  return inuse_bytes_increase_;
}

ssize_t HeapLeakChecker::ObjectsLeaked() const {
  if (!has_checked_) {
    fprintf(stderr, "heap checker: ObjectsLeaked() before NoLeaks()\n");
    abort();
  }
  return inuse_allocs_increase_;
}

HeapLeakChecker::Disabler::Disabler() {
  thread_disabled++;
  Guard g(set_lock);
  disablers++;
  update_tracking();
}

HeapLeakChecker::Disabler::~Disabler() {
  thread_disabled--;
  Guard g(set_lock);
  disablers--;
  update_tracking();
}

void HeapLeakChecker::DoIgnoreObject(const void *ptr) {
  if (ptr) set_add(reinterpret_cast<uintptr_t>(ptr));
}

void HeapLeakChecker::UnIgnoreObject(const void *ptr) {
  if (ptr) set_remove(reinterpret_cast<uintptr_t>(ptr));
}

const void *HeapLeakChecker::GetAllocCaller(void *ptr) { return pp_prof_alloc_caller(ptr); }

// ---------------------------------------------------------------------------
// HeapCleaner

HeapCleaner::HeapCleaner(void_function f) {
  Guard g(cleaners_lock);
  if (ncleaners < static_cast<int>(sizeof cleaners / sizeof cleaners[0])) cleaners[ncleaners++] = f;
  else fprintf(stderr, "pprof_py heap checker: too many HeapCleaner functions, one ignored\n");
}

void HeapCleaner::RunHeapCleanups() {
  for (;;) {
    HeapCleaner::void_function f;
    {
      Guard g(cleaners_lock);
      if (ncleaners == 0) return;
      f = cleaners[--ncleaners];
    }
    f();
  }
}
