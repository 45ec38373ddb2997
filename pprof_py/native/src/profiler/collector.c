/*
 * The part of the sampler that runs inside the signal handler.
 *
 * Rules for everything reachable from pp_signal_handler(): no malloc, no
 * stdio, no locks that code outside a signal handler may hold while the
 * signal is deliverable, only async-signal-safe system calls (ioctl, futex).
 *
 * Samples go into a hash table of stacks (PP_SETS sets of PP_WAYS entries,
 * each with a count).  When a new stack lands in a full set, the entry with
 * the smallest count is evicted: its record (count, depth, pcs...) is
 * appended to the current eviction buffer.  Eviction buffers form a ring;
 * a full buffer is handed to the writer thread (profiler.c) through its
 * state word and a futex wake, and the handler moves on to the next free
 * buffer.  The handler never waits for the writer: if the writer has fallen
 * behind and no buffer is free, the new sample is counted in pp_dropped
 * instead (with 4 x 512 KiB buffers this needs thousands of distinct stacks
 * per second and a stalled disk).
 *
 * All table and buffer updates happen under one spinlock.  It is only taken
 * (a) inside the handler, where SIGPROF (and SIGINT, SIGTERM, SIGHUP,
 * SIGALRM, whose stand-ins wait for the writer) are blocked by sa_mask,
 * and (b) by ProfilerFlush()/ProfilerStop() with those signals blocked in
 * the calling thread, so a thread can never interrupt itself while holding
 * it; other threads only spin for the few hundred nanoseconds of one update.
 */
#include "profiler_internal.h"
#include "helper_threads.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

struct pp_entry *pp_table;
uint64_t *pp_bufs[PP_NBUF];
uint64_t pp_buf_used[PP_NBUF];
int pp_buf_state[PP_NBUF];
int pp_cur_buf;
int pp_collecting;
int pp_in_handler;
long pp_samples;
long pp_dropped;
unsigned pp_wake_seq;
int pp_source;
int pp_no_cfi;
int (*pp_filter)(void *);
void *pp_filter_arg;
/* Two snapshots of the address space: handlers read the current one, the
 * refresh builds the other and then swaps (see pp_snapshot_regions). */
static struct pp_snapshot snaps[2];
static struct pp_snapshot *cur_snap = &snaps[0];
static int spare_free = 1; /* no handler can still read the spare one */

static int pp_spin;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

void pp_lock(void) {
  while (__atomic_exchange_n(&pp_spin, 1, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(&pp_spin, __ATOMIC_RELAXED)) cpu_relax();
  }
}

void pp_unlock(void) { __atomic_store_n(&pp_spin, 0, __ATOMIC_RELEASE); }

void pp_futex_wake(unsigned *addr) {
  syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void pp_futex_wait(unsigned *addr, unsigned expected, long timeout_ms) {
  struct timespec ts;
  ts.tv_sec = timeout_ms / 1000;
  ts.tv_nsec = (timeout_ms % 1000) * 1000000L;
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

/* ---------------------------------------------------------------- stacks */

/* Stack bounds [lo, hi) for a thread whose stack pointer is sp: the
 * registered bounds of that thread if known, else the readable and writable
 * mapping containing sp in the snapshot of /proc/self/maps taken at start.
 * Returns 0 if nothing is known (then only the leaf PC is recorded). */
static int stack_bounds(uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
  int n = __atomic_load_n(&pp_nthreads, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    struct pp_thread *t = &pp_threads[i];
    if (__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE) == 0) continue;
    uintptr_t l = __atomic_load_n(&t->stack_lo, __ATOMIC_RELAXED);
    uintptr_t h = __atomic_load_n(&t->stack_hi, __ATOMIC_RELAXED);
    if (h && sp >= l && sp < h) {
      *lo = l;
      *hi = h;
      return 1;
    }
  }
  const struct pp_snapshot *snap = __atomic_load_n(&cur_snap, __ATOMIC_ACQUIRE);
  int a = 0, b = snap->nregions - 1;
  while (a <= b) {
    int m = (a + b) / 2;
    if (sp < snap->regions[m].lo) b = m - 1;
    else if (sp >= snap->regions[m].hi) a = m + 1;
    else {
      *lo = snap->regions[m].lo;
      *hi = snap->regions[m].hi;
      return 1;
    }
  }
  return 0;
}

/* Frame-pointer walk.  Frame record layout on x86_64 and aarch64 alike:
 * [fp] = caller's frame pointer, [fp + 8] = return address.  A frame is
 * followed only if it is 8-byte aligned, lies inside the stack bounds of
 * the interrupted thread (above its stack pointer) and the chain strictly
 * grows upwards, so a bogus rbp (code built without frame pointers) ends
 * the walk instead of faulting.  Return addresses are stored as found;
 * pprof subtracts one when symbolizing non-leaf frames. */
/* Permission bits of the mapping holding [addr, addr + len) in the snapshot
 * of /proc/self/maps, 0 if unknown. */
int pp_snap_perms(const struct pp_snapshot *snap, uintptr_t addr, size_t len) {
  int a = 0, b = snap->nmaps - 1;
  while (a <= b) {
    int m = (a + b) / 2;
    if (addr < snap->maps[m].lo) b = m - 1;
    else if (addr >= snap->maps[m].hi) a = m + 1;
    else return addr + len <= snap->maps[m].hi ? snap->maps[m].perms : 0;
  }
  return 0;
}

static int map_perms(uintptr_t addr, size_t len) {
  return pp_snap_perms(__atomic_load_n(&cur_snap, __ATOMIC_ACQUIRE), addr, len);
}

#if defined(__x86_64__)
/* Where a PLT entry at t jumps: "[endbr64] [bnd] jmp *GOT(%rip)".  Returns
 * the GOT value, or 0 if t does not look like a PLT entry. */
PP_NO_SANITIZE_ADDRESS static uintptr_t plt_target(uintptr_t t) {
  if (!(map_perms(t, 16) & PP_MAP_X)) return 0;
  const unsigned char *c = (const unsigned char *)t;
  if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) c += 4;
  if (c[0] == 0xf2) c++;
  if (c[0] != 0xff || c[1] != 0x25) return 0;
  int32_t rel;
  memcpy(&rel, c + 2, 4);
  uintptr_t got = (uintptr_t)(c + 6) + (intptr_t)rel;
  if (!(map_perms(got, sizeof(uintptr_t)) & PP_MAP_R)) return 0;
  return *(const uintptr_t *)got;
}

/* Leaf functions are often compiled without a frame (gcc does that even
 * with -fno-omit-frame-pointer at -O1 and above for functions that need no
 * stack), and a signal can land on the first instruction of a function
 * before it pushed its frame.  In both cases the frame-pointer chain starts
 * at the caller's frame and the caller itself would be missing.  Its
 * return address is then the word at the stack pointer; we accept that
 * word only if it follows a direct "call rel32" whose target (or, through a
 * PLT entry, whose final target) starts at most 64 KiB before the leaf PC,
 * i.e. the call really entered the function we interrupted.  All memory
 * reads are checked against the snapshot of the address space. */
PP_NO_SANITIZE_ADDRESS static uintptr_t leaf_caller(uintptr_t pc, uintptr_t sp, uintptr_t lo, uintptr_t hi) {
  if ((sp & 7) != 0 || sp < lo || sp + sizeof(uintptr_t) > hi) return 0;
  uintptr_t r = *(const uintptr_t *)sp;
  if (r < 4096 || !(map_perms(r - 5, 5) & PP_MAP_X)) return 0;
  const unsigned char *call = (const unsigned char *)(r - 5);
  if (call[0] != 0xe8) return 0;
  int32_t rel;
  memcpy(&rel, call + 1, 4);
  uintptr_t target = r + (intptr_t)rel;
  if (target <= pc && pc - target < 65536) return r;
  uintptr_t real = plt_target(target);
  if (real && real <= pc && pc - real < 65536) return r;
  return 0;
}
#endif

/* Frame-pointer walk.  Frame record layout on x86_64 and aarch64 alike:
 * [fp] = caller's frame pointer, [fp + 8] = return address.  A frame is
 * followed only if it is 8-byte aligned, lies inside the stack bounds of
 * the interrupted thread (above its stack pointer) and the chain strictly
 * grows upwards, so a bogus rbp (code built without frame pointers) ends
 * the walk instead of faulting.  Return addresses are stored as found;
 * pprof subtracts one when symbolizing non-leaf frames. */
/* One frame-pointer frame at fp, inside [lo, hi): the caller's frame
 * pointer and the return address.  0 when the frame is unusable. */
PP_NO_SANITIZE_ADDRESS static inline int fp_frame(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *next,
                                                  uintptr_t *ret) {
  if ((fp & 7) != 0 || fp < lo || fp > hi - 2 * sizeof(uintptr_t)) return 0;
  *next = ((const uintptr_t *)fp)[0];
  *ret = ((const uintptr_t *)fp)[1];
  return *ret >= 4096;
}

PP_NO_SANITIZE_ADDRESS static int walk_frames(uintptr_t pc, uintptr_t fp, uintptr_t sp, void **out, int max, int leaf_fixup) {
  int n = 0;
  if (max <= 0) return 0;
  out[n++] = (void *)pc;
  uintptr_t lo, hi;
  if (!stack_bounds(sp, &lo, &hi)) return n;
  if (lo < sp) lo = sp;
#if defined(__x86_64__)
  uintptr_t caller = leaf_fixup ? leaf_caller(pc, sp, lo, hi) : 0;
  if (caller && n < max) {
    /* Unless the chain's first frame already names this caller. */
    uintptr_t next, ret;
    int dup = fp_frame(fp, lo, hi, &next, &ret) && ret == caller;
    if (!dup) out[n++] = (void *)caller;
  }
#else
  (void)leaf_fixup;
#endif
  while (n < max) {
    uintptr_t next, ret;
    if (!fp_frame(fp, lo, hi, &next, &ret)) break;
    out[n++] = (void *)ret;
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

static int context_regs(const void *uc, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp) {
  const ucontext_t *u = (const ucontext_t *)uc;
#if defined(__x86_64__)
  *pc = (uintptr_t)u->uc_mcontext.gregs[REG_RIP];
  *fp = (uintptr_t)u->uc_mcontext.gregs[REG_RBP];
  *sp = (uintptr_t)u->uc_mcontext.gregs[REG_RSP];
  return 1;
#elif defined(__aarch64__)
  *pc = (uintptr_t)u->uc_mcontext.pc;
  *fp = (uintptr_t)u->uc_mcontext.regs[29];
  *sp = (uintptr_t)u->uc_mcontext.sp;
  return 1;
#else
  (void)u;
  *pc = *fp = *sp = 0;
  return 0;
#endif
}

/* A PC outside every mapping of the snapshot belongs to code mapped since
 * (a library loaded with dlopen): ask the writer thread for a fresh
 * snapshot.  Only an atomic exchange and a futex wake: signal-safe. */
int pp_snapshot_stale;

static void note_unknown_pc(const struct pp_snapshot *snap, uintptr_t pc) {
  if (pp_snap_perms(snap, pc, 1) & PP_MAP_X) return;
  if (__atomic_exchange_n(&pp_snapshot_stale, 1, __ATOMIC_ACQ_REL)) return;
  __atomic_add_fetch(&pp_wake_seq, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&pp_wake_seq);
}

/* Walk with DWARF call-frame information (unwind.c), falling back to a
 * frame-pointer step for frames without usable CFI (JIT code, objects
 * without .eh_frame).  Returns -1 when the interrupted PC itself has no
 * CFI: the caller then uses the frame-pointer walk with its leaf fixups. */
PP_NO_SANITIZE_ADDRESS static int walk_cfi(uintptr_t pc, uintptr_t fp, uintptr_t sp, void **out, int max) {
  const struct pp_snapshot *snap = __atomic_load_n(&cur_snap, __ATOMIC_ACQUIRE);
  uintptr_t lo, hi;
  if (max <= 0 || snap->nobjs == 0 || !stack_bounds(sp, &lo, &hi)) return -1;
  if (lo < sp) lo = sp;
  int n = 0;
  out[n++] = (void *)pc;
  int exact = 1;
  while (n < max) {
    int r = pp_unwind_step(snap, &pc, &sp, &fp, exact, lo, hi);
    if (r < 0) break;
    if (r == 0) {
      note_unknown_pc(snap, exact ? pc : pc - 1);
#if defined(__x86_64__)
      if (exact) {
        /* No rule for the interrupted PC: a PLT stub (its CFA is a DWARF
         * expression) or code without tables.  If the word at the stack
         * pointer is a return address whose call entered this code, the
         * PC is in a frameless stub or prologue: that is the caller, and
         * its own tables take the walk on. */
        uintptr_t caller = leaf_caller(pc, sp, lo, hi);
        if (!caller) return -1;
        pc = caller;
        sp += sizeof(uintptr_t);
        out[n++] = (void *)pc;
        exact = 0;
        continue;
      }
#else
      if (exact) return -1;
#endif
      /* frame-pointer step */
      uintptr_t next;
      if (!fp_frame(fp, sp, hi, &next, &pc)) break;
      sp = fp + 2 * sizeof(uintptr_t);
      out[n++] = (void *)pc;
      if (next <= fp) break;
      fp = next;
      continue;
    }
    if (pc < 4096) break;
    out[n++] = (void *)pc;
    exact = 0;
  }
  return n;
}

PP_NO_SANITIZE_ADDRESS int pp_walk_stack(const void *ucontext, void **out, int max) {
  uintptr_t pc, fp, sp;
  if (ucontext) {
    if (!context_regs(ucontext, &pc, &fp, &sp)) return 0;
    if (!pp_no_cfi) {
      int n = walk_cfi(pc, fp, sp, out, max);
      if (n >= 0) return n;
    }
    return walk_frames(pc, fp, sp, out, max, 1);
  }
  /* Own stack: start from our caller's frame. */
  fp = (uintptr_t)__builtin_frame_address(0);
  sp = fp;
  pc = (uintptr_t)__builtin_return_address(0);
  uintptr_t next = ((const uintptr_t *)fp)[0];
  return walk_frames(pc, next, sp, out, max, 0);
}

/* ---------------------------------------------------------- hash table */

static inline uint64_t hash_stack(void **pcs, int n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
  for (int i = 0; i < n; i++) {
    h ^= (uint64_t)(uintptr_t)pcs[i];
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  return h;
}

/* Lock held.  Moves the current buffer to FULL and wakes the writer; the
 * next buffer becomes current if the writer has emptied it. */
void pp_publish_current_locked(void) {
  int cur = pp_cur_buf;
  if (cur < 0) return;
  if (pp_buf_used[cur] == 0) return;
  __atomic_store_n(&pp_buf_state[cur], PP_BUF_FULL, __ATOMIC_RELEASE);
  __atomic_add_fetch(&pp_wake_seq, 1, __ATOMIC_RELEASE);
  pp_futex_wake(&pp_wake_seq);
  int next = (cur + 1) % PP_NBUF;
  if (__atomic_load_n(&pp_buf_state[next], __ATOMIC_ACQUIRE) == PP_BUF_FREE) {
    pp_buf_used[next] = 0;
    __atomic_store_n(&pp_buf_state[next], PP_BUF_FILLING, __ATOMIC_RELAXED);
    pp_cur_buf = next;
  } else {
    pp_cur_buf = -1; /* no space until the writer frees a buffer */
  }
}

/* Lock held. */
int pp_evict_locked(struct pp_entry *e) {
  uint64_t need = 2 + e->depth;
  if (pp_cur_buf < 0) {
    /* All buffers were full last time; the writer may have freed one
     * since.  Record order in the file does not matter. */
    int next = -1;
    for (int i = 0; i < PP_NBUF; i++) {
      if (__atomic_load_n(&pp_buf_state[i], __ATOMIC_ACQUIRE) == PP_BUF_FREE) {
        next = i;
        break;
      }
    }
    if (next < 0) return 0;
    pp_buf_used[next] = 0;
    __atomic_store_n(&pp_buf_state[next], PP_BUF_FILLING, __ATOMIC_RELAXED);
    pp_cur_buf = next;
  }
  if (pp_buf_used[pp_cur_buf] + need > PP_BUF_WORDS) {
    pp_publish_current_locked();
    if (pp_cur_buf < 0) return 0;
  }
  uint64_t *dst = pp_bufs[pp_cur_buf] + pp_buf_used[pp_cur_buf];
  dst[0] = e->count;
  dst[1] = e->depth;
  for (uint64_t i = 0; i < e->depth; i++) dst[2 + i] = (uint64_t)e->pcs[i];
  pp_buf_used[pp_cur_buf] += need;
  e->count = 0;
  e->depth = 0;
  return 1;
}

static void add_sample(void **pcs, int n, uint64_t weight) {
  uint64_t h = hash_stack(pcs, n);
  struct pp_entry *set = pp_table + (h % PP_SETS) * PP_WAYS;
  pp_lock();
  for (int w = 0; w < PP_WAYS; w++) {
    struct pp_entry *e = &set[w];
    if (e->count && e->depth == (uint64_t)n &&
        memcmp(e->pcs, pcs, (size_t)n * sizeof(void *)) == 0) {
      e->count += weight;
      pp_unlock();
      return;
    }
  }
  struct pp_entry *victim = &set[0];
  for (int w = 0; w < PP_WAYS; w++) {
    if (set[w].count == 0) {
      victim = &set[w];
      break;
    }
    if (set[w].count < victim->count) victim = &set[w];
  }
  if (victim->count && !pp_evict_locked(victim)) {
    __atomic_add_fetch(&pp_dropped, 1, __ATOMIC_RELAXED);
    pp_unlock();
    return;
  }
  victim->count = weight;
  victim->depth = (uint64_t)n;
  memcpy(victim->pcs, pcs, (size_t)n * sizeof(void *));
  pp_unlock();
}

/* ------------------------------------------------------------- handler */

static int perf_fd_is_ours(int fd) {
  int n = __atomic_load_n(&pp_nthreads, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    if (__atomic_load_n(&pp_threads[i].tid, __ATOMIC_ACQUIRE) != 0 &&
        __atomic_load_n(&pp_threads[i].fd, __ATOMIC_ACQUIRE) == fd)
      return 1;
  }
  return 0;
}

/* Where a profiling signal comes from. */
enum { SIG_SAMPLE, SIG_STALE, SIG_FOREIGN };

/* Ours: perf overflow signals (si_code POLL_IN: ring-buffer wakeup, the
 * event keeps running; POLL_HUP: event limit reached, see threads.c;
 * si_fd the event), our POSIX timers (SI_TIMER with PP_TIMER_MAGIC) and,
 * for the itimer source, ITIMER_PROF expiries (SI_KERNEL).  Such a signal
 * from a source no longer armed (still queued at stop) is stale and
 * dropped.  Signals sent by a process (kill, sigqueue, tgkill), the
 * program's own POSIX timers and its ITIMER_PROF (when we use another
 * source) are the program's business. */
static int classify(int sig, int source, const siginfo_t *info, long *weight) {
  *weight = 1;
  if (!info) return SIG_STALE;
  int code = info->si_code;
  if (code == SI_USER || code == SI_QUEUE || code == SI_TKILL) return SIG_FOREIGN;
  if (code == SI_TIMER) {
    if (info->si_value.sival_int != PP_TIMER_MAGIC) return SIG_FOREIGN;
    /* si_overrun: periods that expired while this signal was pending or
     * before the kernel checked the timer (CPU-clock timers are checked at
     * scheduler ticks, so a thread on a contended CPU can run two periods
     * between checks).  Counting them keeps samples x period equal to the
     * CPU time used instead of dropping the excess. */
    long overrun = info->si_overrun > 0 ? info->si_overrun : 0;
    if (source == PP_SRC_PERF) {
      *weight = pp_posix_weight * (1 + overrun);
      return SIG_SAMPLE;
    }
    *weight = 1 + overrun;
    return source == PP_SRC_POSIX || source == PP_SRC_REALTIME ? SIG_SAMPLE : SIG_STALE;
  }
  if (sig == SIGPROF && (code == POLL_IN || code == POLL_HUP)) {
    if (source != PP_SRC_PERF || !perf_fd_is_ours(info->si_fd)) return SIG_STALE;
    /* Event-limit mode: re-arm first, so the event counts again from here
     * and the time spent in this handler is part of the next period. */
    if (code == POLL_HUP) ioctl(info->si_fd, PERF_EVENT_IOC_REFRESH, 1);
    return SIG_SAMPLE;
  }
  /* ITIMER_PROF expiry: ours only with the itimer source (which stays
   * the source after a stop, so its late ticks are dropped); otherwise
   * the program's own setitimer */
  if (code == SI_KERNEL) return source == PP_SRC_ITIMER ? SIG_SAMPLE : SIG_FOREIGN;
  return SIG_STALE;
}

/* Hides our pthread_create trampoline (threads.c) from users' stacks:
 * libprofiler adds no frame there. */
extern char __start_pp_trampoline[] __attribute__((visibility("hidden")));
extern char __stop_pp_trampoline[] __attribute__((visibility("hidden")));

static int drop_own_frames(void **pcs, int n) {
  int out = 1; /* the leaf is never ours: we sample with signals blocked */
  for (int i = 1; i < n; i++) {
    uintptr_t pc = (uintptr_t)pcs[i] - 1;
    if (pc >= (uintptr_t)__start_pp_trampoline && pc < (uintptr_t)__stop_pp_trampoline) continue;
    pcs[out++] = pcs[i];
  }
  return out;
}

void pp_signal_handler(int sig, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  __atomic_add_fetch(&pp_in_handler, 1, __ATOMIC_SEQ_CST);
  int source = __atomic_load_n(&pp_source, __ATOMIC_ACQUIRE);
  long weight;
  int kind = classify(sig, source, info, &weight);
  if (kind == SIG_FOREIGN) {
    /* not counted as a running sample handler: forwarding may end in the
     * final dump, which waits for running handlers */
    __atomic_sub_fetch(&pp_in_handler, 1, __ATOMIC_SEQ_CST);
    pp_forward_signal(sig, info, ucontext);
    errno = saved_errno;
    return;
  }
  if (kind != SIG_SAMPLE) goto out;
  if (!__atomic_load_n(&pp_collecting, __ATOMIC_SEQ_CST)) goto out;
  if (pp_filter && !pp_filter(pp_filter_arg)) goto out;
  void *pcs[PP_MAX_DEPTH];
  int n = pp_walk_stack(ucontext, pcs, PP_MAX_DEPTH);
  if (n > 0) {
    n = drop_own_frames(pcs, n);
    add_sample(pcs, n, (uint64_t)weight);
    __atomic_add_fetch(&pp_samples, 1, __ATOMIC_RELAXED);
  }
out:
  __atomic_sub_fetch(&pp_in_handler, 1, __ATOMIC_SEQ_CST);
  errno = saved_errno;
}

/* ------------------------------------------------------- maps snapshot */

static uintptr_t parse_hex(const char **p) {
  uintptr_t v = 0;
  for (;;) {
    char c = **p;
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else break;
    v = v * 16 + (uintptr_t)d;
    (*p)++;
  }
  return v;
}

static int handlers_quiet(void) {
  for (int i = 0; i < 200; i++) {
    if (__atomic_load_n(&pp_in_handler, __ATOMIC_SEQ_CST) == 0) return 1;
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* Snapshot /proc/self/maps: every mapping with its permissions (checked
 * before the leaf heuristic reads code or GOT words) and the merged
 * readable+writable ranges (stacks among them), the fallback bounds for
 * threads whose stack is not registered.  Called at start (no handler
 * collecting) and periodically by the writer thread, never concurrently.
 * The snapshot being built is one no handler can be reading: after each
 * swap we wait until no handler is running before the old one may be
 * reused, and skip the refresh if that does not happen. */
void pp_snapshot_regions(void) {
  static char buf[1 << 16];
  if (!spare_free) {
    if (!handlers_quiet()) return;
    spare_free = 1;
  }
  struct pp_snapshot *snap = cur_snap == &snaps[0] ? &snaps[1] : &snaps[0];
  struct pp_region *pp_regions = snap->regions;
  struct pp_map *pp_maps = snap->maps;
  int fd = open(pp_maps_path(), O_RDONLY | O_CLOEXEC);
  int n = 0, nmaps = 0;
  if (fd >= 0) {
    size_t have = 0;
    for (;;) {
      ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      have += (size_t)r;
      buf[have] = 0;
      /* Process complete lines, keep the partial tail. */
      char *line = buf, *nl;
      while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
        const char *p = line;
        uintptr_t lo = parse_hex(&p);
        if (*p == '-') {
          p++;
          uintptr_t hi = parse_hex(&p);
          if (*p == ' ' && nmaps < PP_MAX_REGIONS) {
            int perms = (p[1] == 'r' ? PP_MAP_R : 0) | (p[2] == 'w' ? PP_MAP_W : 0) |
                        (p[3] == 'x' ? PP_MAP_X : 0);
            pp_maps[nmaps].lo = lo;
            pp_maps[nmaps].hi = hi;
            pp_maps[nmaps].perms = perms;
            nmaps++;
          }
          if (*p == ' ' && p[1] == 'r' && p[2] == 'w' && n < PP_MAX_REGIONS) {
            if (n > 0 && pp_regions[n - 1].hi == lo) pp_regions[n - 1].hi = hi;
            else {
              pp_regions[n].lo = lo;
              pp_regions[n].hi = hi;
              n++;
            }
          }
        }
        line = nl + 1;
      }
      size_t rest = have - (size_t)(line - buf);
      memmove(buf, line, rest);
      have = rest;
    }
    close(fd);
  }
  snap->nregions = n;
  snap->nmaps = nmaps;
  snap->nobjs = pp_unwind_collect(snap->objs, PP_MAX_UNWIND_OBJS);
  __atomic_store_n(&cur_snap, snap, __ATOMIC_SEQ_CST);
  spare_free = handlers_quiet();
}
