/*
 * pprof_py CPU sampler: public API (profiler.h), the writer thread, the
 * profile file, environment variables, fork and CPUPROFILESIGNAL handling.
 *
 * Profile file (gperftools CPU profile format, native 64-bit words):
 *   header   0, 3, 0, <sampling period in microseconds>, 0
 *   records  <count>, <n>, <pc_1 (leaf)>, ..., <pc_n>
 *   trailer  0, 1, 0
 *   then the text of /proc/self/maps.
 *
 * Life of a run: ProfilerStart opens the file, writes the header, maps
 * the hash table and eviction buffers, starts the writer thread and arms the
 * timer source.  The writer thread writes every buffer the signal handler
 * marks full, and (every 100 ms) picks up new threads for per-thread
 * sources and checks that our signal handler is still installed.
 * ProfilerStop disarms the timers, waits for running handlers, joins the
 * writer, then writes the remaining buffer, every table entry, the trailer
 * and the memory map.
 */
#include "profiler_internal.h"
#include "helper_threads.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static pthread_mutex_t ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static int running;             /* protected by ctl_mu */
static int out_fd = -1;
static char out_name[1024];
static time_t start_time;
static int frequency = 100;
static long period_us;
static long posix_period_us;
static const char *source_name = "";
static pid_t owner_pid;          /* process that owns the running profile */

static pthread_t writer;
/* Set when the sources were stopped without the thread registry's lock
 * (pp_sources_taken_over): the writer thread finishes the job. */
static int disarm_later;
static int writer_stop;
static int writer_tid;
static int warned_handler;

/* CPUPROFILESIGNAL */
static int toggle_signal;
static unsigned toggle_seq;
static char toggle_base[1024];
static int toggle_count;
static int toggle_tid;

static const size_t table_bytes = sizeof(struct pp_entry) * PP_SETS * PP_WAYS;
static const size_t bufs_bytes = sizeof(uint64_t) * PP_BUF_WORDS * PP_NBUF;

/* ------------------------------------------------------------ file output */

static void write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    len -= (size_t)w;
  }
}

/* The file is kept a complete profile at all times when it is a regular
 * file: records are written at records_end with pwrite, followed by the
 * trailer and the memory map (the "tail"), which the next records
 * overwrite.  A program that leaves with _exit() (as shells do) or is
 * killed after a checkpoint still leaves a readable profile of the samples
 * written so far.  Pipes and other unseekable outputs are streamed and get
 * their tail only at ProfilerStop.  Only one thread writes at a time: the
 * writer thread while it runs, ProfilerStop after joining it. */
static int out_seekable;
static off_t records_end;
static off_t file_end; /* bytes in the file so far */

static void pwrite_all(int fd, const void *data, size_t len, off_t off) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = pwrite(fd, p, len, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    off += w;
    len -= (size_t)w;
  }
}

/* Identity of the profile file behind out_fd (fds.c). */
static struct pp_fd_id out_id;
static int warned_lost_fd;

/* Before each write: is out_fd still our profile file?  A program that
 * closes every inherited descriptor closes ours too, and may get the same
 * number for a file of its own.  Then we forget that number (it is the
 * program's now) and open our file again by name, without truncating it;
 * records_end and file_end still say where we were.  If the file is gone
 * or replaced, the profile ends there (one notice). */
static int out_usable(void) {
  if (out_fd >= 0 && pp_fd_is(out_fd, &out_id)) return 1;
  out_fd = -1;
  /* only a regular file can be reopened where we were (never block on a
   * FIFO) */
  int fd = out_seekable ? open(out_name, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
  if (fd >= 0) {
    struct pp_fd_id id;
    if (pp_fd_identify(fd, &id) && id.dev == out_id.dev && id.ino == out_id.ino && out_seekable) {
      out_fd = pp_fd_park(fd);
      return 1;
    }
    close(fd);
  }
  if (!__atomic_exchange_n(&warned_lost_fd, 1, __ATOMIC_ACQ_REL)) {
    char msg[1200];
    int n = snprintf(msg, sizeof msg,
                     "pprof_py profiler: the program closed the profile file '%s'; "
                     "later samples are not written\n", out_name);
    if (n > 0) write_all(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  }
  return 0;
}

static void out_records(const void *data, size_t len) {
  if (!out_usable()) return;
  if (out_seekable) pwrite_all(out_fd, data, len, records_end);
  else write_all(out_fd, data, len);
  records_end += (off_t)len;
}

/* Trailer and /proc/self/maps after the records; truncates stale bytes. */
static void out_tail(void) {
  static const uint64_t trailer[3] = {0, 1, 0};
  off_t off = records_end;
  char buf[8192];
  if (!out_usable()) return;
  if (out_seekable) pwrite_all(out_fd, trailer, sizeof trailer, off);
  else write_all(out_fd, trailer, sizeof trailer);
  off += (off_t)sizeof trailer;
  int maps = open(pp_maps_path(), O_RDONLY | O_CLOEXEC);
  if (maps >= 0) {
    for (;;) {
      ssize_t r = read(maps, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      if (out_seekable) pwrite_all(out_fd, buf, (size_t)r, off);
      else write_all(out_fd, buf, (size_t)r);
      off += r;
    }
    close(maps);
  }
  if (out_seekable && file_end > off && ftruncate(out_fd, off) != 0) {
    /* Nothing better to do: the tail is complete, extra bytes follow. */
  }
  file_end = off;
}

/* Staging buffer for Stop (ctl_mu held). */
static uint64_t stage[8192];
static size_t stage_used;

static void stage_flush(void) {
  out_records(stage, stage_used * sizeof(uint64_t));
  stage_used = 0;
}

static void stage_words(const uint64_t *w, size_t n) {
  if (stage_used + n > sizeof stage / sizeof stage[0]) stage_flush();
  memcpy(stage + stage_used, w, n * sizeof(uint64_t));
  stage_used += n;
}

/* Writer thread only (or Stop after the writer is joined). */
static int drain_full_buffers(void) {
  int wrote = 0;
  for (int i = 0; i < PP_NBUF; i++) {
    if (__atomic_load_n(&pp_buf_state[i], __ATOMIC_ACQUIRE) == PP_BUF_FULL) {
      out_records(pp_bufs[i], pp_buf_used[i] * sizeof(uint64_t));
      pp_buf_used[i] = 0;
      __atomic_store_n(&pp_buf_state[i], PP_BUF_FREE, __ATOMIC_RELEASE);
      wrote = 1;
    }
  }
  return wrote;
}

/* ------------------------------------------------------ handler check */

/* Every source signals SIGPROF, the realtime one too: SIGALRM belongs to
 * the program's alarm(), and a standard signal already pending absorbs
 * another of the same number, so a sampling timer on SIGALRM made the
 * program's alarm vanish. */
static int profiling_signal(void) { return SIGPROF; }

/* Once per run: the program replaced our handler, its ticks would now go
 * to the program's handler, so the sources are stopped. */
static void notice_handler_replaced(int sig) {
  (void)sig; /* always SIGPROF (profiling_signal) */
  if (__atomic_exchange_n(&warned_handler, 1, __ATOMIC_ACQ_REL)) return;
  /* a constant: this may run inside the program's signal handler, where
   * formatting is not allowed */
  static const char msg[] =
      "pprof_py profiler: the SIGPROF handler was replaced by the program; "
      "CPU samples are no longer collected\n";
  write_all(2, msg, sizeof msg - 1);
}

static void stop_sources(void);

/* Outside any signal handler (writer thread every 100 ms, and at stop):
 * the program replaced our handler without going through our sigaction
 * (library loaded with dlopen, or a raw system call). */
static void check_handler(void) {
  struct sigaction cur;
  int sig = profiling_signal();
  if (pp_real_sigaction(sig, NULL, &cur) != 0) return;
  if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == pp_signal_handler) return;
  if (__atomic_load_n(&pp_collecting, __ATOMIC_ACQUIRE)) {
    __atomic_store_n(&pp_collecting, 0, __ATOMIC_SEQ_CST);
    stop_sources();
  }
  notice_handler_replaced(sig);
}

/* ------------------------------------------------------------ writer */

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Every sample not yet in the file: the buffer being filled and every
 * table entry, then the tail.  Only when no handler can touch the table
 * (collecting off, none running): Stop after joining the writer, or the
 * writer's final dump. */
static void write_remaining(void) {
  for (int i = 0; i < PP_NBUF; i++) {
    if (pp_buf_used[i] && pp_buf_state[i] != PP_BUF_FREE)
      out_records(pp_bufs[i], pp_buf_used[i] * sizeof(uint64_t));
    pp_buf_used[i] = 0;
  }
  stage_used = 0;
  for (size_t i = 0; i < (size_t)PP_SETS * PP_WAYS; i++) {
    struct pp_entry *e = &pp_table[i];
    if (!e->count) continue;
    uint64_t head[2] = {e->count, e->depth};
    stage_words(head, 2);
    stage_words((const uint64_t *)e->pcs, e->depth);
    e->count = 0;
  }
  stage_flush();
  out_tail();
}

static void wait_for_writer(void);

/* Moves every table entry into the output buffers, then publishes the
 * buffer being filled.  When all buffers are full, room is made: the
 * writer thread writes them itself, another thread (ProfilerFlush) waits
 * for the writer to. */
static void evict_all(int in_writer) {
  for (size_t i = 0; i < (size_t)PP_SETS * PP_WAYS; i++) {
    struct pp_entry *e = &pp_table[i];
    for (;;) {
      pp_lock();
      int ok = e->count == 0 || pp_evict_locked(e);
      pp_unlock();
      if (ok) break;
      if (in_writer)
        drain_full_buffers();
      else
        wait_for_writer();
    }
  }
  pp_lock();
  pp_publish_current_locked();
  pp_unlock();
}

/* Writer thread: a checkpoint.  Samples wait in the table until their
 * entry is evicted, so a run killed (SIGKILL, the OOM killer) before
 * ProfilerStop would lose all of them; once a second the writer moves
 * every entry into the buffers and writes them, as libprofiler's evict
 * buffer is written as it fills.  The writer has every signal blocked, so
 * it may take the table's spinlock. */
static void checkpoint(void) {
  evict_all(1);
  drain_full_buffers();
  if (out_seekable) out_tail();
}

#define CHECKPOINT_MS 1000

/* pp_final_dump's request and answer (futex words). */
static unsigned final_request, final_done;
static int writer_running;
static int finished; /* the final dump wrote everything: Stop writes nothing more */

static void final_dump_in_writer(void) {
  __atomic_store_n(&pp_collecting, 0, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 2000 && __atomic_load_n(&pp_in_handler, __ATOMIC_SEQ_CST) != 0; i++) {
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
  }
  drain_full_buffers();
  write_remaining();
  __atomic_store_n(&finished, 1, __ATOMIC_RELEASE);
  __atomic_store_n(&final_done, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&final_done);
}

void pp_final_dump(void) {
  if (!__atomic_load_n(&writer_running, __ATOMIC_ACQUIRE) || getpid() != owner_pid) return;
  __atomic_store_n(&final_request, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&pp_wake_seq, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&pp_wake_seq);
  for (int i = 0; i < 20 && !__atomic_load_n(&final_done, __ATOMIC_ACQUIRE); i++)
    pp_futex_wait(&final_done, 0, 100);
}

static void *writer_main(void *unused) {
  (void)unused;
  prctl(PR_SET_NAME, PP_HELPER_PREFIX "writer", 0, 0, 0);
  pp_register_self(1);
  __atomic_store_n(&writer_tid, pp_gettid(), __ATOMIC_RELEASE);
  long last_scan = now_ms(), last_refresh = 0, last_checkpoint = now_ms();
  unsigned scans = 0;
  for (;;) {
    unsigned seen = __atomic_load_n(&pp_wake_seq, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&final_request, __ATOMIC_ACQUIRE)) {
      final_dump_in_writer();
      break;
    }
    if (drain_full_buffers() && out_seekable) out_tail();
    if (__atomic_exchange_n(&disarm_later, 0, __ATOMIC_ACQ_REL)) stop_sources();
    if (__atomic_load_n(&writer_stop, __ATOMIC_ACQUIRE)) break;
    long t = now_ms();
    if (t - last_checkpoint >= CHECKPOINT_MS) {
      last_checkpoint = t;
      checkpoint();
    }
    if (__atomic_load_n(&pp_snapshot_stale, __ATOMIC_ACQUIRE) && t - last_refresh >= 10) {
      /* new code (dlopen): unwind tables and bounds for it, promptly */
      last_refresh = t;
      pp_snapshot_regions();
      __atomic_store_n(&pp_snapshot_stale, 0, __ATOMIC_RELEASE);
    }
    if (t - last_scan >= 100) {
      last_scan = t;
      int added = 0;
      if (pp_source == PP_SRC_PERF || pp_source == PP_SRC_POSIX) added = pp_rescan_tasks();
      /* Stacks of new threads, libraries loaded since the start. */
      if (added || ++scans % 3 == 0) pp_snapshot_regions();
      check_handler();
      /* the program's threads have all ended (its main thread called
         pthread_exit): end too, or the process never would; the exit(0)
         that follows writes the profile (helper_threads.h) */
      if (pp_program_threads_gone()) {
        __atomic_store_n(&writer_running, 0, __ATOMIC_RELEASE);
        break;
      }
    }
    pp_futex_wait(&pp_wake_seq, seen, __atomic_load_n(&pp_snapshot_stale, __ATOMIC_ACQUIRE) ? 10 : 100);
  }
  if (!__atomic_load_n(&finished, __ATOMIC_ACQUIRE)) drain_full_buffers();
  pp_unregister_tid(pp_gettid());
  return NULL;
}

/* Creates a thread with every signal blocked (it inherits our mask). */
static int start_internal_thread(pthread_t *t, void *(*fn)(void *)) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pp_real_pthread_create(t, NULL, fn, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* ------------------------------------------------------------ start/stop */

static long tick_micros(void) {
  struct timespec res;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0) return 0;
  return res.tv_sec * 1000000L + res.tv_nsec / 1000L;
}

static int env_true(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0;
}

static int choose_source(void) {
  const char *forced = getenv("PPROF_PY_CPU_TIMER");
  if (env_true("CPUPROFILE_REALTIME")) return PP_SRC_REALTIME;
  if (forced && strcmp(forced, "itimer") == 0) return PP_SRC_ITIMER;
  if (forced && strcmp(forced, "posix") == 0) return PP_SRC_POSIX;
  if (forced && strcmp(forced, "perf") == 0) return pp_perf_available() ? PP_SRC_PERF : PP_SRC_ITIMER;
  if (env_true("CPUPROFILE_PER_THREAD_TIMERS")) return PP_SRC_POSIX;
  return pp_perf_available() ? PP_SRC_PERF : PP_SRC_ITIMER;
}

static void set_itimer(int which, long usec) {
  struct itimerval it;
  it.it_interval.tv_sec = usec / 1000000L;
  it.it_interval.tv_usec = usec % 1000000L;
  it.it_value = it.it_interval;
  setitimer(which, &it, NULL);
}

/* CPUPROFILE_REALTIME: a POSIX timer on the monotonic clock sending
 * SIGPROF with our mark, not ITIMER_REAL and SIGALRM, which are the
 * program's: its alarm() would replace our timer, and its alarm would
 * reach our handler (or be absorbed by one of our pending ticks) instead
 * of ending the program. */
static timer_t rt_timer;
static int have_rt_timer;

static void set_rt_timer(long usec) {
  struct itimerspec spec;
  spec.it_interval.tv_sec = usec / 1000000L;
  spec.it_interval.tv_nsec = (usec % 1000000L) * 1000L;
  spec.it_value = spec.it_interval;
  if (have_rt_timer) timer_settime(rt_timer, 0, &spec, NULL);
}

static int create_rt_timer(void) {
  if (have_rt_timer) return 1;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGPROF;
  ev.sigev_value.sival_int = PP_TIMER_MAGIC;
  if (timer_create(CLOCK_MONOTONIC, &ev, &rt_timer) != 0) return 0;
  have_rt_timer = 1;
  return 1;
}

static int sources_armed; /* 1 while the run's source is armed */
static struct itimerval paused_itimer;

static void arm_sources(void) {
  switch (pp_source) {
    case PP_SRC_PERF:
      pp_threads_arm_all(PP_SRC_PERF, period_us * 1000L, posix_period_us * 1000L);
      break;
    case PP_SRC_POSIX:
      pp_threads_arm_all(PP_SRC_POSIX, period_us * 1000L, period_us * 1000L);
      break;
    case PP_SRC_ITIMER:
      set_itimer(ITIMER_PROF, period_us);
      break;
    case PP_SRC_REALTIME:
      set_rt_timer(period_us);
      break;
  }
  __atomic_store_n(&sources_armed, 1, __ATOMIC_RELEASE);
}

/* Idempotent: the writer (handler replaced) and Stop may both call it. */
static void stop_sources(void) {
  if (!__atomic_exchange_n(&sources_armed, 0, __ATOMIC_ACQ_REL)) return;
  switch (pp_source) {
    case PP_SRC_PERF:
    case PP_SRC_POSIX:
      pp_threads_disarm_all();
      break;
    case PP_SRC_ITIMER: {
      /* unless the program has set ITIMER_PROF for itself meanwhile */
      struct itimerval cur;
      if (getitimer(ITIMER_PROF, &cur) != 0 ||
          cur.it_interval.tv_sec * 1000000L + cur.it_interval.tv_usec == period_us)
        set_itimer(ITIMER_PROF, 0);
      break;
    }
    case PP_SRC_REALTIME:
      set_rt_timer(0);
      break;
  }
}

/* Called from the program's sigaction(), which may run in one of its
 * signal handlers: no lock may be waited for here. */
void pp_sources_taken_over(int sig) {
  if (sig != profiling_signal()) return;
  if (__atomic_load_n(&pp_collecting, __ATOMIC_ACQUIRE) && getpid() == owner_pid) {
    __atomic_store_n(&pp_collecting, 0, __ATOMIC_SEQ_CST);
    if ((pp_source == PP_SRC_PERF || pp_source == PP_SRC_POSIX) && !pp_threads_try_disarm_all())
      __atomic_store_n(&disarm_later, 1, __ATOMIC_RELEASE); /* sources_armed stays 1 */
    else
      stop_sources(); /* per-thread: already disarmed, this only clears the flag */
    notice_handler_replaced(sig);
  }
}

int pp_sources_pause(void) {
  if (!__atomic_load_n(&sources_armed, __ATOMIC_ACQUIRE) || getpid() != owner_pid) return 0;
  struct itimerval zero;
  memset(&zero, 0, sizeof zero);
  switch (pp_source) {
    case PP_SRC_PERF:
    case PP_SRC_POSIX:
      pp_threads_pause_all();
      break;
    case PP_SRC_ITIMER:
      setitimer(ITIMER_PROF, &zero, &paused_itimer);
      break;
    case PP_SRC_REALTIME:
      set_rt_timer(0);
      break;
  }
  return profiling_signal();
}

void pp_sources_resume(void) {
  switch (pp_source) {
    case PP_SRC_PERF:
    case PP_SRC_POSIX:
      pp_threads_resume_all();
      break;
    case PP_SRC_ITIMER:
      setitimer(ITIMER_PROF, &paused_itimer, NULL);
      break;
    case PP_SRC_REALTIME:
      set_rt_timer(period_us);
      break;
  }
}

static void release_memory(void) {
  if (pp_table) munmap(pp_table, table_bytes);
  if (pp_bufs[0]) munmap(pp_bufs[0], bufs_bytes);
  pp_table = NULL;
  for (int i = 0; i < PP_NBUF; i++) pp_bufs[i] = NULL;
}

/* ctl_mu held. */
static int start_locked(const char *fname, const struct ProfilerOptions *options) {
  if (running || !fname || !*fname) return 0;
  if (strlen(fname) >= sizeof out_name) return 0;
  int fd = open(fname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
  if (fd < 0) return 0;
  fd = pp_fd_park(fd);
  /* tells processes we start that this file is taken (profile_in_use) */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    /* another process holds it (ProfilerStart on a file in use): write anyway */
  }
  if (!pp_fd_identify(fd, &out_id)) {
    close(fd);
    return 0;
  }
  void *table = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *bufs = mmap(NULL, bufs_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED || bufs == MAP_FAILED) {
    if (table != MAP_FAILED) munmap(table, table_bytes);
    if (bufs != MAP_FAILED) munmap(bufs, bufs_bytes);
    close(fd);
    return 0;
  }
  pp_table = table;
  for (int i = 0; i < PP_NBUF; i++) {
    pp_bufs[i] = (uint64_t *)bufs + (size_t)i * PP_BUF_WORDS;
    pp_buf_used[i] = 0;
    pp_buf_state[i] = PP_BUF_FREE;
  }
  pp_buf_state[0] = PP_BUF_FILLING;
  pp_cur_buf = 0;

  int source = choose_source();
  long period = 1000000L / frequency;
  if (period < 1) period = 1;
  if (source == PP_SRC_ITIMER || source == PP_SRC_POSIX) {
    /* CPU-time timers fire at most once per scheduler tick: record the
     * period that is really delivered. */
    long tick = tick_micros();
    if (tick > period && tick < 1000000L) period = tick;
  }
  if (source == PP_SRC_PERF && period < 10) period = 10; /* kernel minimum 10 us */
  period_us = period;
  /* threads on a POSIX timer under the perf source: at most one tick */
  posix_period_us = period;
  if (source == PP_SRC_PERF) {
    long tick = tick_micros();
    if (tick > period && tick < 1000000L) posix_period_us = tick;
  }
  if (source == PP_SRC_REALTIME && !create_rt_timer()) {
    close(fd);
    release_memory();
    return 0;
  }
  source_name = source == PP_SRC_PERF ? "perf" : source == PP_SRC_ITIMER ? "itimer"
              : source == PP_SRC_POSIX ? "posix" : "realtime";

  out_fd = fd;
  warned_lost_fd = 0;
  struct stat st;
  out_seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  records_end = 0;
  file_end = 0;
  strcpy(out_name, fname);
  uint64_t header[5] = {0, 3, 0, (uint64_t)period, 0};
  out_records(header, sizeof header);
  out_tail(); /* a valid, empty profile from the start */
  start_time = time(NULL);
  owner_pid = getpid();

  /* PPROF_PY_CPU_UNWIND=fp: frame pointers only (the DWARF unwinder off) */
  const char *unwind = getenv("PPROF_PY_CPU_UNWIND");
  pp_no_cfi = unwind && strcmp(unwind, "fp") == 0;
  pp_snapshot_regions();
  pp_filter = options ? options->filter_in_thread : NULL;
  pp_filter_arg = options ? options->filter_in_thread_arg : NULL;
  __atomic_store_n(&pp_samples, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&pp_dropped, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&warned_handler, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&pp_source, source, __ATOMIC_RELEASE);
  pp_install_sample_handler(SIGPROF);
  pp_install_standins();
  pp_register_self(0);

  writer_stop = 0;
  writer_tid = 0;
  disarm_later = 0;
  final_request = final_done = 0;
  finished = 0;
  if (start_internal_thread(&writer, writer_main) != 0) {
    if (out_fd >= 0 && pp_fd_is(out_fd, &out_id)) close(out_fd);
    out_fd = -1;
    release_memory();
    return 0;
  }
  while (__atomic_load_n(&writer_tid, __ATOMIC_ACQUIRE) == 0) sched_yield();
  __atomic_store_n(&writer_running, 1, __ATOMIC_RELEASE);

  __atomic_store_n(&pp_collecting, 1, __ATOMIC_SEQ_CST);
  arm_sources();
  running = 1;
  return 1;
}

/* ctl_mu held. */
static void stop_locked(void) {
  if (!running) return;
  __atomic_store_n(&pp_collecting, 0, __ATOMIC_SEQ_CST);
  stop_sources();
  /* Handlers that saw pp_collecting == 1 are finishing their sample. */
  while (__atomic_load_n(&pp_in_handler, __ATOMIC_SEQ_CST) != 0) sched_yield();
  __atomic_store_n(&writer_stop, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&pp_wake_seq, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&pp_wake_seq);
  pthread_join(writer, NULL);
  __atomic_store_n(&writer_running, 0, __ATOMIC_RELEASE);
  check_handler();

  /* Nothing else touches the table and buffers now. */
  if (!__atomic_load_n(&finished, __ATOMIC_ACQUIRE)) write_remaining();
  if (out_fd >= 0 && pp_fd_is(out_fd, &out_id)) close(out_fd);
  out_fd = -1;
  release_memory();
  running = 0;
}

/* --------------------------------------------------------------- API */

int ProfilerStartWithOptions(const char *fname, const struct ProfilerOptions *options) {
  pthread_mutex_lock(&ctl_mu);
  int ok = start_locked(fname, options);
  pthread_mutex_unlock(&ctl_mu);
  return ok;
}

int ProfilerStart(const char *fname) { return ProfilerStartWithOptions(fname, NULL); }

void ProfilerStop(void) {
  pthread_mutex_lock(&ctl_mu);
  if (running && getpid() == owner_pid) stop_locked();
  pthread_mutex_unlock(&ctl_mu);
}

static void block_profiling_signals(sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPROF);
  sigaddset(&set, SIGALRM);
  /* and our stand-ins, which wait for the writer, which may need the
   * spinlock this thread takes */
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, old);
}

static int any_buffer_full(void) {
  for (int i = 0; i < PP_NBUF; i++)
    if (__atomic_load_n(&pp_buf_state[i], __ATOMIC_ACQUIRE) == PP_BUF_FULL) return 1;
  return 0;
}

static void wait_for_writer(void) {
  struct timespec ts = {0, 200000};
  __atomic_add_fetch(&pp_wake_seq, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&pp_wake_seq);
  nanosleep(&ts, NULL);
}

void ProfilerFlush(void) {
  pthread_mutex_lock(&ctl_mu);
  if (!running) {
    pthread_mutex_unlock(&ctl_mu);
    return;
  }
  sigset_t old;
  block_profiling_signals(&old);
  evict_all(0);
  while (any_buffer_full()) wait_for_writer();
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_mutex_unlock(&ctl_mu);
}

void ProfilerEnable(void) {}
void ProfilerDisable(void) {}

int ProfilingIsEnabledForAllThreads(void) { return __atomic_load_n(&pp_collecting, __ATOMIC_ACQUIRE) != 0; }

void ProfilerRegisterThread(void) { pp_register_self(0); }

void ProfilerGetCurrentState(struct ProfilerState *state) {
  if (!state) return;
  pthread_mutex_lock(&ctl_mu);
  memset(state, 0, sizeof *state);
  state->enabled = running;
  if (running) {
    state->start_time = start_time;
    memcpy(state->profile_name, out_name, sizeof state->profile_name);
    state->profile_name[sizeof state->profile_name - 1] = 0;
    state->samples_gathered = (int)__atomic_load_n(&pp_samples, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&ctl_mu);
}

__attribute__((noinline)) int ProfilerGetStackTrace(void **result, int max_depth, int skip_count,
                                                    const void *uc) {
  void *pcs[PP_MAX_DEPTH];
  if (!result || max_depth <= 0) return 0;
  int n = pp_walk_stack(uc, pcs, PP_MAX_DEPTH);
  int skip = skip_count + (uc ? 0 : 1); /* drop our own frame */
  int out = 0;
  for (int i = skip; i < n && out < max_depth; i++) result[out++] = pcs[i];
  return out;
}

int PprofPySetFrequency(int hz) {
  int old = frequency;
  if (hz >= 1 && hz <= 100000) frequency = hz;
  return old;
}

const char *PprofPyTimerSource(void) { return source_name; }
long PprofPyPeriodMicros(void) { return period_us; }
long PprofPyDroppedSamples(void) { return __atomic_load_n(&pp_dropped, __ATOMIC_RELAXED); }

/* ------------------------------------------------ CPUPROFILESIGNAL */

static void toggle_handler(int sig) {
  (void)sig;
  int saved = errno;
  __atomic_add_fetch(&toggle_seq, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&toggle_seq);
  errno = saved;
}

/* Starting and stopping a profile is not async-signal-safe, so the signal
 * handler only counts; this thread does the work. */
static void *toggle_main(void *unused) {
  (void)unused;
  prctl(PR_SET_NAME, PP_HELPER_PREFIX "toggle", 0, 0, 0);
  pp_register_self(1);
  __atomic_store_n(&toggle_tid, pp_gettid(), __ATOMIC_RELEASE);
  unsigned done = 0;
  for (;;) {
    unsigned seq = __atomic_load_n(&toggle_seq, __ATOMIC_ACQUIRE);
    if (seq == done) {
      pp_futex_wait(&toggle_seq, seq, 100);
      if (pp_program_threads_gone()) break;   /* helper_threads.h */
      continue;
    }
    done++;
    pthread_mutex_lock(&ctl_mu);
    if (running) {
      stop_locked();
    } else {
      char name[1100];
      snprintf(name, sizeof name, "%s.%d", toggle_base, toggle_count);
      if (start_locked(name, NULL)) toggle_count++;
    }
    pthread_mutex_unlock(&ctl_mu);
  }
  pp_unregister_tid(pp_gettid());
  return NULL;
}

static void setup_toggle(const char *base, int sig) {
  struct sigaction cur;
  if (sigaction(sig, NULL, &cur) != 0 || cur.sa_handler != SIG_DFL) {
    fprintf(stderr, "pprof_py profiler: signal %d already has a handler; CPUPROFILESIGNAL ignored\n", sig);
    return;
  }
  snprintf(toggle_base, sizeof toggle_base, "%.1000s", base);
  toggle_signal = sig;
  pthread_t t;
  if (start_internal_thread(&t, toggle_main) != 0) return;
  pthread_detach(t);
  while (__atomic_load_n(&toggle_tid, __ATOMIC_ACQUIRE) == 0) sched_yield();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = toggle_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* ------------------------------------------------ fork, load, exit */

static void atfork_prepare(void) {
  pthread_mutex_lock(&ctl_mu);
  pthread_mutex_lock(&pp_threads_mu);
}

static void atfork_parent(void) {
  pthread_mutex_unlock(&pp_threads_mu);
  pthread_mutex_unlock(&ctl_mu);
}

/* The child of a profiled process does not profile and never writes to the
 * parent's file: no timer is inherited by it, and we drop the copies of the
 * run's state here.  (Children that exec a new program with CPUPROFILE
 * still set write <file>_<pid>, see the constructor.) */
static void atfork_child(void) {
  pthread_mutex_init(&ctl_mu, NULL);
  pp_unlock();
  pp_collecting = 0;
  pp_in_handler = 0;
  if (running) {
    /* only if the program has not closed it and reused the number */
    if (out_fd >= 0 && pp_fd_is(out_fd, &out_id)) close(out_fd);
    out_fd = -1;
    release_memory();
    running = 0;
  }
  pp_threads_after_fork_child();
  toggle_signal = 0;
  /* no timer and no writer thread exist in the child */
  have_rt_timer = 0;
  sources_armed = 0;
  writer_running = 0;
}

static int env_int(const char *name, int def) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  char *end;
  long x = strtol(v, &end, 10);
  if (*end || x <= 0 || x > 1000000) return def;
  return (int)x;
}

/* Is another live process writing a profile into `file`?  The process
 * that profiles into a file holds an exclusive flock on it (start_locked),
 * which its children do not inherit: the descriptor is close-on-exec and
 * the fork handler closes it.  So a process started by a profiled one
 * finds the file locked, while the same process after exec (same pid,
 * descriptor closed) does not and starts the file afresh, as libprofiler
 * does.  This way we need no variable of our own in the environment. */
static int profile_in_use(const char *file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return 0;
  int busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd); /* releases the lock if we got it */
  return busy;
}

__attribute__((constructor)) static void profiler_init(void) {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  PprofPySetFrequency(env_int("CPUPROFILE_FREQUENCY", 100));
  const char *file = getenv("CPUPROFILE");
  if (!file || !*file) return;
  char name[1024];
  if (profile_in_use(file)) {
    /* A program started by a profiled process: like libprofiler, profile
     * it into <file>_<pid> instead of overwriting the parent's file. */
    snprintf(name, sizeof name, "%s_%d", file, (int)getpid());
  } else {
    snprintf(name, sizeof name, "%s", file);
  }
  const char *sigenv = getenv("CPUPROFILESIGNAL");
  if (sigenv && *sigenv) {
    int sig = env_int("CPUPROFILESIGNAL", 0);
    if (sig < 1 || sig >= NSIG) {
      fprintf(stderr, "pprof_py profiler: bad CPUPROFILESIGNAL '%s'\n", sigenv);
      return;
    }
    setup_toggle(name, sig);
    return;
  }
  if (!ProfilerStart(name))
    fprintf(stderr, "pprof_py profiler: cannot start CPU profiling into '%s': %s\n", name, strerror(errno));
}

__attribute__((destructor)) static void profiler_fini(void) {
  pthread_mutex_lock(&ctl_mu);
  if (running && getpid() == owner_pid) stop_locked();
  pthread_mutex_unlock(&ctl_mu);
}
