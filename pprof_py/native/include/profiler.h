/*
 * pprof_py CPU sampler: C interface.
 *
 * Source-compatible with the CPU profiler interface of gperftools
 * (<gperftools/profiler.h>): a program written against that header can be
 * compiled with this one and linked with pprof_py's _libprofiler library
 * instead of -lprofiler.  The profile files use the same binary format and
 * are read by `pprof` (ours) and by `google-pprof`.
 *
 * Quick use without changing the program:
 *
 *     CPUPROFILE=out.prof LD_PRELOAD=$(pprof-run --print-lib profiler) ./prog
 *
 * Environment (read when the library is loaded):
 *   CPUPROFILE=<file>            start at load time, write <file> at exit
 *   CPUPROFILE_FREQUENCY=<hz>    samples per second (default 100)
 *   CPUPROFILE_REALTIME=1        sample wall-clock time (SIGALRM)
 *   CPUPROFILESIGNAL=<n>         do not start at load; each signal <n>
 *                                toggles profiling into <file>.0, <file>.1...
 *   CPUPROFILE_PER_THREAD_TIMERS=1  one POSIX CPU timer per thread
 *   PPROF_PY_CPU_TIMER=perf|itimer|posix  force a timer source
 */
#ifndef PPROF_PY_PROFILER_H_
#define PPROF_PY_PROFILER_H_

#include <time.h> /* time_t */

#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Options for ProfilerStartWithOptions().  Zero-initialise the structure
 * and set the fields you need. */
struct ProfilerOptions {
  /* When not NULL, called from the signal handler on every tick with
   * filter_in_thread_arg; the sample is kept only if it returns nonzero.
   * It runs inside a signal handler, so it must be async-signal-safe. */
  int (*filter_in_thread)(void *arg);
  void *filter_in_thread_arg;
};

/* Start profiling into fname (truncated).  Returns nonzero on success, 0 if
 * profiling is already running or the file cannot be created. */
PERFTOOLS_DLL_DECL int ProfilerStart(const char *fname);

/* Like ProfilerStart(); options may be NULL. */
PERFTOOLS_DLL_DECL int ProfilerStartWithOptions(const char *fname,
                                                const struct ProfilerOptions *options);

/* Stop profiling and finish the file (trailer and memory map).  Profiling
 * can be started again afterwards with another file name. */
PERFTOOLS_DLL_DECL void ProfilerStop(void);

/* Write all samples collected so far to the file. */
PERFTOOLS_DLL_DECL void ProfilerFlush(void);

/* Deprecated per-thread switches; like in gperftools they do nothing. */
PERFTOOLS_DLL_DECL void ProfilerEnable(void);
PERFTOOLS_DLL_DECL void ProfilerDisable(void);

/* Nonzero while profiling is running. */
PERFTOOLS_DLL_DECL int ProfilingIsEnabledForAllThreads(void);

/* Tell the profiler about the calling thread (records its stack bounds and,
 * with per-thread timer sources, gives it its own timer).  Threads created
 * with pthread_create while the library is preloaded or linked are
 * registered automatically; calling this again is harmless. */
PERFTOOLS_DLL_DECL void ProfilerRegisterThread(void);

/* Current status of the profiler. */
struct ProfilerState {
  int enabled;               /* nonzero while profiling */
  time_t start_time;         /* when profiling was started, if enabled */
  char profile_name[1024];   /* file being written, or "" */
  int samples_gathered;      /* samples taken so far in this run */
};
PERFTOOLS_DLL_DECL void ProfilerGetCurrentState(struct ProfilerState *state);

/* Stack of the code interrupted by a signal: uc is the third argument of an
 * SA_SIGINFO handler (ucontext_t *), or NULL for the caller's own stack.
 * Stores at most max_depth return addresses (leaf first) after dropping
 * skip_count frames; returns how many were stored. */
PERFTOOLS_DLL_DECL int ProfilerGetStackTrace(void **result, int max_depth,
                                             int skip_count, const void *uc);

/* pprof_py extensions (not in gperftools). */

/* Sampling frequency in Hz for the next ProfilerStart(); returns the
 * previous value.  Values outside 1..100000 are ignored. */
PERFTOOLS_DLL_DECL int PprofPySetFrequency(int hz);

/* Name of the timer source of the current (or last) run: "perf",
 * "itimer", "posix", "realtime", or "" before the first run. */
PERFTOOLS_DLL_DECL const char *PprofPyTimerSource(void);

/* Sampling period in microseconds written in the profile header of the
 * current (or last) run. */
PERFTOOLS_DLL_DECL long PprofPyPeriodMicros(void);

/* Samples dropped because the eviction buffers were full (should be 0). */
PERFTOOLS_DLL_DECL long PprofPyDroppedSamples(void);

#ifdef __cplusplus
}
#endif

#endif /* PPROF_PY_PROFILER_H_ */
