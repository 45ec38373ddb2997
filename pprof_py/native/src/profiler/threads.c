/*
 * Threads and timer sources.
 *
 * Why perf_event: CPU-time interval timers (setitimer(ITIMER_PROF) and
 * timer_create on a CPU-time clock) are only checked by the kernel at the
 * scheduler tick, so they cannot fire more often than CONFIG_HZ per thread:
 * with HZ=250, asking for 1000 Hz yields about 250 samples per CPU second.
 * A perf_event software event PERF_COUNT_SW_CPU_CLOCK is driven by an
 * hrtimer on the thread's CPU time instead, and delivers the requested rate
 * (measured 98% at 1000 Hz on the development machine).  We open one event
 * per thread with a sample_period in nanoseconds and route its overflow
 * notification to that very thread as SIGPROF:
 *
 *     fcntl(fd, F_SETOWN_EX, {F_OWNER_TID, tid})   signal goes to the thread
 *     fcntl(fd, F_SETSIG, SIGPROF)                 as SIGPROF with si_fd set
 *     fcntl(fd, F_SETFL, O_ASYNC)
 *     mmap(fd, 2 pages, PROT_READ)                 ring buffer, overwrite mode
 *     attr.wakeup_events = 1                       wake (= signal, si_code
 *                                                  POLL_IN) on every sample
 *
 * The event then runs continuously: the handler makes no system call, and
 * the hrtimer behind the event is never stopped and restarted (each such
 * reprogramming cost about 6 us per sample in a VM).  The ring buffer only
 * receives 8-byte empty sample records; mapped read-only it is never "full".
 * If the mapping is refused (perf_event_mlock_kb exhausted by many threads)
 * that thread uses event-limit mode instead: PERF_EVENT_IOC_REFRESH 1 makes
 * the event stop and signal (si_code POLL_HUP) after one overflow, and the
 * handler re-arms it with another PERF_EVENT_IOC_REFRESH.  Kernel time is
 * included when the system allows it (perf_event_paranoid <= 1 or
 * CAP_PERFMON); otherwise the event counts user time only
 * (exclude_kernel=1), which paranoid level 2 permits for a process's own
 * threads.  Where perf_event_open fails entirely (paranoid 3, seccomp,
 * containers, old kernels) we fall back to ITIMER_PROF and record the
 * period the kernel can really deliver (at least one tick, measured as the
 * resolution of CLOCK_MONOTONIC_COARSE) in the profile header, so that
 * sample counts times the period stay equal to CPU time.
 *
 * Per-thread sources (perf, POSIX timers) need every thread of the process:
 * threads that exist at start are found in /proc/self/task, threads created
 * later go through our pthread_create wrapper (when the library is preloaded
 * or linked) or are picked up by the writer thread's periodic rescan of
 * /proc/self/task (when it was loaded with dlopen/ctypes).
 */
#include "profiler_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pp_thread pp_threads[PP_MAX_THREADS];
int pp_nthreads;
pthread_mutex_t pp_threads_mu = PTHREAD_MUTEX_INITIALIZER;

/* Per-thread source currently armed (PP_SRC_PERF / PP_SRC_POSIX / NONE) and
 * its period; protected by pp_threads_mu. */
static int arm_source;
static long arm_period_ns;
/* perf descriptors open now, and how many we allow ourselves: one per
 * thread would take a program with 1,000 threads under `ulimit -n 1024`
 * to its last descriptors.  Threads beyond the budget get a POSIX timer
 * on their CPU clock (no descriptor; tick resolution, weighted). */
static int perf_open_count;
static int perf_budget;
long pp_posix_weight = 1;
static long posix_period_ns;
/* perf: -1 unknown, 0 kernel time included, 1 user time only. */
static int perf_exclude_kernel = -1;

int pp_gettid(void) { return (int)syscall(SYS_gettid); }

static int perf_open_once(int tid, long period_ns, int exclude_kernel) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = (uint64_t)period_ns;
  attr.disabled = 1;
  attr.wakeup_events = 1;
  attr.sample_type = 0;
  attr.exclude_hv = 1;
  attr.exclude_kernel = exclude_kernel ? 1 : 0;
  return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Opens a disabled perf CPU-clock event for tid, wired to send SIGPROF to
 * that thread.  Returns the fd or -1. */
static int perf_open(int tid, long period_ns) {
  int fd;
  if (perf_exclude_kernel < 0) {
    fd = perf_open_once(tid, period_ns, 0);
    if (fd >= 0) perf_exclude_kernel = 0;
    else {
      fd = perf_open_once(tid, period_ns, 1);
      if (fd >= 0) perf_exclude_kernel = 1;
    }
  } else {
    fd = perf_open_once(tid, period_ns, perf_exclude_kernel);
  }
  if (fd < 0) return -1;
  fd = pp_fd_park(fd);
  struct f_owner_ex owner = {F_OWNER_TID, tid};
  int flags = fcntl(fd, F_GETFL);
  if (fcntl(fd, F_SETOWN_EX, &owner) != 0 || fcntl(fd, F_SETSIG, SIGPROF) != 0 ||
      flags < 0 || fcntl(fd, F_SETFL, flags | O_ASYNC | O_NONBLOCK) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int pp_perf_available(void) {
  int fd = perf_open(pp_gettid(), 10000000L);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

/* Clock id of another thread's CPU time (the kernel's encoding, as used by
 * glibc's pthread_getcpuclockid: ~tid << 3 | PERTHREAD | SCHED). */
static clockid_t thread_cpu_clock(int tid) {
  if (tid == pp_gettid()) return CLOCK_THREAD_CPUTIME_ID;
  return (clockid_t)((((unsigned)~tid) << 3) | 6u);
}

/* 1 if fd is still the perf event we opened as `id`. */
static int perf_fd_ours(int fd, uint64_t id) {
  uint64_t now = 0;
  return fd >= 0 && ioctl(fd, PERF_EVENT_IOC_ID, &now) == 0 && now == id;
}

/* Lock held.  perf for this thread if the descriptor budget allows. */
static int arm_perf(struct pp_thread *t) {
  if (perf_open_count >= perf_budget) return 0;
  int fd = perf_open(t->tid, arm_period_ns);
  if (fd < 0) return 0;
  long lim = pp_fd_limit();
  if (fd >= lim - lim / 32) {
    /* parked among the program's last free numbers: leave them to it */
    close(fd);
    return 0;
  }
  uint64_t id = 0;
  if (ioctl(fd, PERF_EVENT_IOC_ID, &id) != 0) {
    close(fd);
    return 0;
  }
  long page = sysconf(_SC_PAGESIZE);
  void *ring = mmap(NULL, (size_t)(2 * page), PROT_READ, MAP_SHARED, fd, 0);
  t->ring = ring == MAP_FAILED ? NULL : ring;
  t->perf_id = id;
  perf_open_count++;
  __atomic_store_n(&t->fd, fd, __ATOMIC_RELEASE);
  if (t->ring) ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
  else ioctl(fd, PERF_EVENT_IOC_REFRESH, 1);
  return 1;
}

/* Lock held. */
static void arm_slot(struct pp_thread *t) {
  if (t->ours || arm_source == PP_SRC_NONE) return;
  if (t->fd >= 0 || t->has_timer) return;
  if (arm_source == PP_SRC_PERF && arm_perf(t)) return;
  {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev.sigev_value.sival_int = PP_TIMER_MAGIC;
    ev._sigev_un._tid = t->tid;
    timer_t timer;
    if (timer_create(thread_cpu_clock(t->tid), &ev, &timer) != 0) return;
    struct itimerspec spec;
    spec.it_interval.tv_sec = posix_period_ns / 1000000000L;
    spec.it_interval.tv_nsec = posix_period_ns % 1000000000L;
    spec.it_value = spec.it_interval;
    if (timer_settime(timer, 0, &spec, NULL) != 0) {
      timer_delete(timer);
      return;
    }
    t->timer = timer;
    t->has_timer = 1;
  }
}

/* Lock held. */
static void disarm_slot(struct pp_thread *t) {
  int fd = t->fd;
  if (fd >= 0) {
    __atomic_store_n(&t->fd, -1, __ATOMIC_RELEASE);
    perf_open_count--;
    /* The program may have closed our descriptor and reused its number:
     * touch it only while it is still our event. */
    if (perf_fd_ours(fd, t->perf_id)) {
      ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
      close(fd);
    }
    if (t->ring) munmap(t->ring, (size_t)(2 * sysconf(_SC_PAGESIZE)));
    t->ring = NULL;
  }
  if (t->has_timer) {
    timer_delete(t->timer);
    t->has_timer = 0;
  }
}

/* Lock held.  Returns the slot of tid, creating it if needed (NULL if the
 * table is full). */
static struct pp_thread *slot_for(int tid, int create) {
  struct pp_thread *free_slot = NULL;
  for (int i = 0; i < pp_nthreads; i++) {
    struct pp_thread *t = &pp_threads[i];
    if (t->tid == tid) return t;
    if (t->tid == 0 && !free_slot) free_slot = t;
  }
  if (!create) return NULL;
  if (!free_slot) {
    if (pp_nthreads >= PP_MAX_THREADS) return NULL;
    free_slot = &pp_threads[pp_nthreads];
    free_slot->tid = 0;
    __atomic_store_n(&pp_nthreads, pp_nthreads + 1, __ATOMIC_RELEASE);
  }
  free_slot->fd = -1;
  free_slot->ring = NULL;
  free_slot->has_timer = 0;
  free_slot->ours = 0;
  free_slot->stack_lo = free_slot->stack_hi = 0;
  free_slot->seen = 1;
  __atomic_store_n(&free_slot->tid, tid, __ATOMIC_RELEASE);
  return free_slot;
}

static void release_slot(struct pp_thread *t) {
  disarm_slot(t);
  __atomic_store_n(&t->tid, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&t->stack_hi, 0, __ATOMIC_RELEASE);
  t->stack_lo = 0;
}

void pp_register_self(int ours) {
  int tid = pp_gettid();
  uintptr_t lo = 0, hi = 0;
  pthread_attr_t attr;
  /* Our own threads run with every signal blocked and are never sampled:
   * they need no stack bounds, and pthread_getattr_np allocates under the
   * thread's lock (an allocator that asks for the same bounds in its slow
   * path deadlocked the writer's start). */
  if (!ours && pthread_getattr_np(pthread_self(), &attr) == 0) {
    void *addr;
    size_t size;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
      lo = (uintptr_t)addr;
      hi = lo + size;
    }
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_lock(&pp_threads_mu);
  struct pp_thread *t = slot_for(tid, 1);
  if (t) {
    __atomic_store_n(&t->stack_lo, lo, __ATOMIC_RELAXED);
    __atomic_store_n(&t->stack_hi, hi, __ATOMIC_RELEASE);
    t->ours = ours;
    if (ours) disarm_slot(t);
    else arm_slot(t);
  }
  pthread_mutex_unlock(&pp_threads_mu);
}

void pp_unregister_tid(int tid) {
  pthread_mutex_lock(&pp_threads_mu);
  struct pp_thread *t = slot_for(tid, 0);
  if (t) release_slot(t);
  pthread_mutex_unlock(&pp_threads_mu);
}

int pp_rescan_tasks(void) {
  int added = 0;
  DIR *dir = opendir("/proc/self/task");
  if (!dir) return 0;
  pthread_mutex_lock(&pp_threads_mu);
  for (int i = 0; i < pp_nthreads; i++) pp_threads[i].seen = 0;
  struct dirent *d;
  int complete = 1;
  while ((d = readdir(dir)) != NULL) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    int tid = atoi(d->d_name);
    if (!slot_for(tid, 0)) added++;
    struct pp_thread *t = slot_for(tid, 1);
    if (!t) {
      complete = 0;
      continue;
    }
    t->seen = 1;
    if (t->fd >= 0 && !perf_fd_ours(t->fd, t->perf_id)) {
      /* The program closed our event (closing every inherited descriptor,
       * say): its number is the program's now; open a new event. */
      __atomic_store_n(&t->fd, -1, __ATOMIC_RELEASE);
      perf_open_count--;
      if (t->ring) munmap(t->ring, (size_t)(2 * sysconf(_SC_PAGESIZE)));
      t->ring = NULL;
    }
    arm_slot(t);
  }
  /* Threads that have exited: free their slots and events.  Only when the
   * listing was complete, so a full table does not drop live threads. */
  if (complete) {
    for (int i = 0; i < pp_nthreads; i++) {
      struct pp_thread *t = &pp_threads[i];
      if (t->tid != 0 && !t->seen) release_slot(t);
    }
  }
  pthread_mutex_unlock(&pp_threads_mu);
  closedir(dir);
  return added;
}

void pp_threads_arm_all(int source, long period_ns, long posix_period) {
  pthread_mutex_lock(&pp_threads_mu);
  arm_source = source;
  arm_period_ns = period_ns;
  posix_period_ns = posix_period;
  pp_posix_weight = source == PP_SRC_PERF && posix_period > period_ns ? (posix_period + period_ns / 2) / period_ns : 1;
  /* A sixteenth of the descriptors the program may have (64 under
   * `ulimit -n 1024`), at most 256: each perf event also pins a
   * ring-buffer mapping, and perf_event_mlock_kb is per user. */
  long budget = pp_fd_limit() / 16;
  perf_budget = budget > 256 ? 256 : (int)budget;
  for (int i = 0; i < pp_nthreads; i++) {
    if (pp_threads[i].tid != 0) arm_slot(&pp_threads[i]);
  }
  pthread_mutex_unlock(&pp_threads_mu);
  pp_rescan_tasks();
}

void pp_threads_disarm_all(void) {
  pthread_mutex_lock(&pp_threads_mu);
  arm_source = PP_SRC_NONE;
  for (int i = 0; i < pp_nthreads; i++) {
    if (pp_threads[i].tid != 0) disarm_slot(&pp_threads[i]);
  }
  pthread_mutex_unlock(&pp_threads_mu);
}

int pp_threads_try_disarm_all(void) {
  if (pthread_mutex_trylock(&pp_threads_mu) != 0) {
    /* Held, maybe by the very thread whose signal handler is calling us:
     * no re-arming from now on, every source disabled without the lock;
     * the writer closes them later (pp_threads_disarm_all). */
    __atomic_store_n(&arm_source, PP_SRC_NONE, __ATOMIC_RELEASE);
    pp_threads_pause_all();
    return 0;
  }
  arm_source = PP_SRC_NONE;
  for (int i = 0; i < pp_nthreads; i++) {
    if (pp_threads[i].tid != 0) disarm_slot(&pp_threads[i]);
  }
  pthread_mutex_unlock(&pp_threads_mu);
  return 1;
}

/* In the child of fork(): only the forking thread exists, no timer or
 * perf event is inherited as active for it (the fds we inherited refer to
 * the parent's threads, so they are closed here without disabling). */
void pp_threads_after_fork_child(void) {
  pthread_mutex_init(&pp_threads_mu, NULL);
  arm_source = PP_SRC_NONE;
  for (int i = 0; i < pp_nthreads; i++) {
    struct pp_thread *t = &pp_threads[i];
    if (perf_fd_ours(t->fd, t->perf_id)) close(t->fd);
    t->fd = -1;
    t->ring = NULL; /* perf mappings are not copied into the child */
    t->has_timer = 0; /* POSIX timers are not inherited */
    t->tid = 0;
    t->stack_lo = t->stack_hi = 0;
  }
  pp_nthreads = 0;
  perf_open_count = 0;
}

/* ------------------------------------------------ pthread_create wrapper */

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static pthread_create_fn real_create;

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

static pthread_create_fn resolve_real_create(void) {
  pthread_create_fn f = __atomic_load_n(&real_create, __ATOMIC_ACQUIRE);
  if (!f) {
    f = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
    if (!f || f == pthread_create) f = (pthread_create_fn)dlvsym(RTLD_NEXT, "pthread_create", "GLIBC_2.34");
    if (!f || f == pthread_create) f = (pthread_create_fn)dlvsym(RTLD_NEXT, "pthread_create", "GLIBC_2.2.5");
    __atomic_store_n(&real_create, f, __ATOMIC_RELEASE);
  }
  return f;
}

int pp_real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                           void *(*fn)(void *), void *arg) {
  pthread_create_fn f = resolve_real_create();
  if (!f) return EAGAIN;
  return f(thread, attr, fn, arg);
}

struct trampoline_arg {
  void *(*fn)(void *);
  void *arg;
};

static void thread_cleanup(void *unused) {
  (void)unused;
  pp_unregister_tid(pp_gettid());
}

/* In its own section, whose bounds the linker provides: the signal
 * handler drops this frame from the stacks it records (collector.c). */
__attribute__((section("pp_trampoline"), noinline)) static void *trampoline(void *p) {
  struct trampoline_arg a = *(struct trampoline_arg *)p;
  free(p);
  pp_register_self(0);
  void *ret;
  pthread_cleanup_push(thread_cleanup, NULL);
  ret = a.fn(a.arg);
  pthread_cleanup_pop(1);
  return ret;
}

/* Interposes libc's pthread_create when this library is preloaded or
 * linked, so that every new thread registers its stack bounds and gets its
 * own timer before running user code. */
PP_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  pthread_create_fn f = resolve_real_create();
  if (!f) return EAGAIN;
  struct trampoline_arg *a = malloc(sizeof *a);
  if (!a) return f(thread, attr, fn, arg);
  a->fn = fn;
  a->arg = arg;
  int rc = f(thread, attr, trampoline, a);
  if (rc != 0) free(a);
  return rc;
}

/* exec (signals.c): no lock, async-signal-safe calls only.  A slot being
 * changed concurrently is at worst left running or paused. */
void pp_threads_pause_all(void) {
  int n = __atomic_load_n(&pp_nthreads, __ATOMIC_ACQUIRE);
  struct itimerspec zero;
  memset(&zero, 0, sizeof zero);
  for (int i = 0; i < n; i++) {
    struct pp_thread *t = &pp_threads[i];
    if (__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE) == 0) continue;
    int fd = __atomic_load_n(&t->fd, __ATOMIC_ACQUIRE);
    if (fd >= 0) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
    if (t->has_timer) timer_settime(t->timer, 0, &zero, NULL);
  }
}

void pp_threads_resume_all(void) {
  int n = __atomic_load_n(&pp_nthreads, __ATOMIC_ACQUIRE);
  struct itimerspec spec;
  spec.it_interval.tv_sec = posix_period_ns / 1000000000L;
  spec.it_interval.tv_nsec = posix_period_ns % 1000000000L;
  spec.it_value = spec.it_interval;
  for (int i = 0; i < n; i++) {
    struct pp_thread *t = &pp_threads[i];
    if (__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE) == 0) continue;
    int fd = __atomic_load_n(&t->fd, __ATOMIC_ACQUIRE);
    if (fd >= 0) {
      if (t->ring) ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
      else ioctl(fd, PERF_EVENT_IOC_REFRESH, 1);
    }
    if (t->has_timer) timer_settime(t->timer, 0, &spec, NULL);
  }
}
