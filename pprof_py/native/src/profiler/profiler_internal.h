/*
 * Internal interfaces of the pprof_py CPU sampler.
 *
 *   collector.c  signal handler, stack walk, hash table of stacks, eviction
 *                buffers (everything that runs inside the signal handler)
 *   threads.c    registry of threads (stack bounds, per-thread timers),
 *                timer sources, pthread_create wrapper
 *   unwind.c     unwind tables of loaded objects for the handler (the
 *                DWARF decoding is ../common/cfi.c)
 *   profiler.c   public API, writer thread, file output, environment,
 *                fork handling, CPUPROFILESIGNAL toggling
 *   fds.c        our file descriptors, kept away from the program's
 *   signals.c    signal dispositions: forwarding, sigaction interposition,
 *                stand-ins for fatal default actions, exec
 */
#ifndef PPROF_PY_PROFILER_INTERNAL_H_
#define PPROF_PY_PROFILER_INTERNAL_H_

#define _GNU_SOURCE 1
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The library is built with -fvisibility=hidden: only what is marked
 * PP_EXPORT is visible to programs, i.e. the API of profiler.h and the
 * libc functions we interpose (pthread_create, exec*, sigaction, signal;
 * docs/sampler.md says why each one). */
#define PP_EXPORT __attribute__((visibility("default")))
#ifndef PERFTOOLS_DLL_DECL
#define PERFTOOLS_DLL_DECL PP_EXPORT
#endif
#include "profiler.h"

/* Functions that read other frames' stack memory: exempt them from
 * AddressSanitizer, whose redzones would turn legitimate reads of live
 * stack words into reports (tests/native/sanitize_sampler.sh). */
#if defined(__SANITIZE_ADDRESS__)
#define PP_NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PP_NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#endif
#endif
#ifndef PP_NO_SANITIZE_ADDRESS
#define PP_NO_SANITIZE_ADDRESS
#endif

/* Deepest stack recorded (leaf included).  libprofiler keeps 64. */
#define PP_MAX_DEPTH 128
/* Hash table of stacks: PP_SETS sets of PP_WAYS entries. */
#define PP_SETS 1024
#define PP_WAYS 4
/* Eviction buffers: a ring of PP_NBUF buffers of PP_BUF_WORDS 64-bit words. */
#define PP_NBUF 4
#define PP_BUF_WORDS 65536
/* Registry sizes. */
#define PP_MAX_THREADS 4096
#define PP_MAX_REGIONS 8192

enum pp_source {
  PP_SRC_NONE = 0,
  PP_SRC_PERF,     /* per-thread perf_event CPU clock (high resolution) */
  PP_SRC_ITIMER,   /* process-wide ITIMER_PROF / SIGPROF */
  PP_SRC_POSIX,    /* per-thread timer_create(thread CPU clock) / SIGPROF */
  PP_SRC_REALTIME  /* process-wide CLOCK_MONOTONIC POSIX timer / SIGPROF */
};

/* Buffer states (accessed with __atomic builtins). */
enum { PP_BUF_FREE = 0, PP_BUF_FILLING = 1, PP_BUF_FULL = 2 };

struct pp_entry {
  uint64_t count;
  uint64_t depth;
  uintptr_t pcs[PP_MAX_DEPTH];
};

struct pp_thread {
  int tid;            /* 0: free slot */
  int fd;             /* perf event fd, -1 if none */
  uint64_t perf_id;   /* its event id (PERF_EVENT_IOC_ID): is fd still ours? */
  void *ring;         /* perf ring buffer mapping, NULL if none */
  int has_timer;      /* POSIX timer created */
  int ours;           /* internal thread: never armed */
  timer_t timer;
  uintptr_t stack_lo; /* 0 when unknown */
  uintptr_t stack_hi;
  int seen;           /* used by the /proc/self/task rescan */
};

struct pp_region {
  uintptr_t lo, hi;
};

/* One line of /proc/self/maps: bounds and permission bits. */
#define PP_MAP_R 1
#define PP_MAP_W 2
#define PP_MAP_X 4
struct pp_map {
  uintptr_t lo, hi;
  int perms;
};

/* A loaded object with unwind tables (unwind.c). */
#define PP_MAX_UNWIND_OBJS 2048
struct pp_unwind_obj {
  uintptr_t lo, hi;   /* executable range */
  uintptr_t hdr;      /* .eh_frame_hdr in memory */
  uintptr_t table;    /* its search table: pairs of int32 offsets from hdr */
  uintptr_t count;    /* entries in the table */
};

struct pp_snapshot {
  struct pp_region regions[PP_MAX_REGIONS];
  int nregions;
  struct pp_map maps[PP_MAX_REGIONS];
  int nmaps;
  struct pp_unwind_obj objs[PP_MAX_UNWIND_OBJS];  /* sorted by lo */
  int nobjs;
};

/* ---- collector.c ---- */
extern struct pp_entry *pp_table;             /* PP_SETS * PP_WAYS entries */
extern uint64_t *pp_bufs[PP_NBUF];
extern uint64_t pp_buf_used[PP_NBUF];
extern int pp_buf_state[PP_NBUF];
extern int pp_cur_buf;
extern int pp_collecting;                      /* handler records samples */
extern int pp_in_handler;                      /* handlers currently running */
extern long pp_samples;
extern long pp_dropped;
extern unsigned pp_wake_seq;                   /* futex word of the writer */
extern int pp_source;
extern int pp_no_cfi;                          /* frame pointers only (PPROF_PY_CPU_UNWIND=fp) */
extern int (*pp_filter)(void *);
extern void *pp_filter_arg;

void pp_signal_handler(int sig, siginfo_t *info, void *ucontext);
void pp_lock(void);
void pp_unlock(void);
/* Move one table entry into the eviction buffers (lock held).  Returns 0 if
 * no buffer space is free. */
int pp_evict_locked(struct pp_entry *e);
/* Mark the current buffer full and move to the next one (lock held). */
void pp_publish_current_locked(void);
void pp_futex_wake(unsigned *addr);
void pp_futex_wait(unsigned *addr, unsigned expected, long timeout_ms);
int pp_walk_stack(const void *ucontext, void **out, int max);
void pp_snapshot_regions(void);
extern int pp_snapshot_stale;                  /* a handler saw code mapped after it */
/* Permission bits (PP_MAP_*) of the mapping holding [addr, addr + len) in a
 * snapshot, 0 if unknown or if the range crosses mappings. */
int pp_snap_perms(const struct pp_snapshot *snap, uintptr_t addr, size_t len);

/* ---- unwind.c ---- */
/* Lists loaded objects with .eh_frame_hdr (outside signal handlers). */
int pp_unwind_collect(struct pp_unwind_obj *out, int max);
/* Unwinds one frame with DWARF CFI (common/cfi.h: pp_cfi_step) using the
 * snapshot's objects: 1 done, 0 no usable rule (use frame pointers), -1
 * outermost frame. */
int pp_unwind_step(const struct pp_snapshot *snap, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, int exact,
                   uintptr_t lo, uintptr_t hi);

/* ---- common/fds.c: descriptors kept out of the program's way ---- */
#include "fds.h"

/* ---- signals.c ---- */
int pp_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* 1 when the program's sigaction calls come to us (preloaded or linked). */
int pp_sigaction_interposed(void);
void pp_install_sample_handler(int sig);
/* SIGINT/SIGTERM/SIGHUP/SIGALRM stand-ins for SIG_DFL that write the
 * profile first. */
void pp_install_standins(void);
/* A profiling signal our sources did not send: the program's action. */
void pp_forward_signal(int sig, siginfo_t *info, void *uc);
/* Around execve (exec.c): 1 if the sources were paused. */
int pp_exec_prepare(void);
void pp_exec_failed(void);

/* ---- profiler.c (for signals.c) ---- */
/* The program installed its own action for our signal: stop every
 * source for the rest of the run and say so. */
void pp_sources_taken_over(int sig);
/* Pause/resume the sources around exec (async-signal-safe); pause returns
 * the profiling signal, 0 if nothing runs in this process. */
int pp_sources_pause(void);
void pp_sources_resume(void);
/* From a handler of a fatal signal: have the writer thread write every
 * sample so far and the tail, waiting at most about 2 s. */
void pp_final_dump(void);

/* ---- threads.c ---- */
extern struct pp_thread pp_threads[PP_MAX_THREADS];
extern int pp_nthreads;                        /* high-water mark of slots */
extern pthread_mutex_t pp_threads_mu;

int pp_gettid(void);
/* Try to open a perf event for the calling thread; used to choose the
 * source.  Returns 1 if perf_event_open works here. */
int pp_perf_available(void);
/* sigev_value of our POSIX timers: tells their signals from the
 * program's (si_code SI_TIMER, si_value.sival_int). */
#define PP_TIMER_MAGIC 0x70707079
/* Samples of threads on a POSIX timer (perf descriptors scarce) count this
 * many header periods each: their timer fires once per scheduler tick at
 * most.  Written by threads.c before arming, read by the handler. */
extern long pp_posix_weight;
/* Arm/disarm all threads with a per-thread source (PERF or POSIX). */
void pp_threads_arm_all(int source, long period_ns, long posix_period_ns);
/* pp_threads_disarm_all if the lock is free; else (a signal handler of
 * the program interrupted its holder) stops every source without it and
 * returns 0: call pp_threads_disarm_all later. */
int pp_threads_try_disarm_all(void);
/* Stop/restart every thread's source without the lock (exec). */
void pp_threads_pause_all(void);
void pp_threads_resume_all(void);
void pp_threads_disarm_all(void);
/* Register the calling thread (stack bounds; arms it when a per-thread
 * source is active). */
void pp_register_self(int ours);
void pp_unregister_tid(int tid);
/* Add threads listed in /proc/self/task, drop those gone; returns how many
 * threads were added. */
int pp_rescan_tasks(void);
void pp_threads_after_fork_child(void);
/* pthread_create of libc (bypasses our wrapper). */
int pp_real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                           void *(*fn)(void *), void *arg);

#endif
