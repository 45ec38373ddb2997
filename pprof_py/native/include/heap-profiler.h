/* pprof_py heap profiler: the same C API as gperftools' heap-profiler.h.
 *
 * Provided by pprof_py's allocator library (LD_PRELOAD it, or use
 * `pprof-run --heap PREFIX -- ./prog`).  Profiles are written in the
 * gperftools heap profile text format, readable by pprof_py's `pprof`
 * and by google-pprof.
 *
 * Environment (read at start-up):
 *   HEAPPROFILE=<prefix>              profile the whole run; files <prefix>.0001.heap, ...
 *   TCMALLOC_SAMPLE_PARAMETER=<bytes> sample on average once every <bytes> allocated
 *                                     (header "heap_v2/<bytes>", pprof un-samples);
 *                                     0 or unset: record every allocation
 *   HEAP_PROFILE_ALLOCATION_INTERVAL  dump after this many bytes allocated (default 1 GiB)
 *   HEAP_PROFILE_INUSE_INTERVAL       dump when in-use bytes grow by this much (default 100 MiB)
 */
#ifndef PPROFPY_HEAP_PROFILER_H
#define PPROFPY_HEAP_PROFILER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start recording allocations; dumps go to <prefix>.NNNN.heap. */
void HeapProfilerStart(const char *prefix);

/* 1 while the profiler records allocations. */
int IsHeapProfilerRunning(void);

/* Stop recording (allocations made so far stay in the tables). */
void HeapProfilerStop(void);

/* Write the next <prefix>.NNNN.heap now; reason is logged on stderr. */
void HeapProfilerDump(const char *reason);

/* The current profile as a NUL-terminated string; free() it. */
char *GetHeapProfile(void);

#ifdef __cplusplus
}
#endif

#endif
