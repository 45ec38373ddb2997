/*
 * Signal dispositions: the sampler must not change what the program's
 * signals do.
 *
 * 1. Our profiling signal (SIGPROF, for every source) may also come from
 *    elsewhere: `kill -PROF`, the program's own timers.  The handler (collector.c) keeps only the signals of our
 *    timer sources (pp_signal_class) and forwards the others to what the
 *    program had installed before us (pp_forward_signal): its handler, or
 *    the default action (then the profile is written first, see 3).
 *
 * 2. A program that installs its own handler for our signal (GNU sort
 *    installs a clean-up handler for SIGPROF that re-raises
 *    the signal, which kills it) must never receive one of our ticks.  When
 *    this library is preloaded or linked, we interpose sigaction() and
 *    signal(): before the program's action is installed, every timer
 *    source is stopped and the signals already pending are discarded (a
 *    signal whose action is set to SIG_IGN is dropped from every thread's
 *    queue), and we say once that CPU samples stop there.  Without
 *    interposition (library loaded with dlopen), the writer thread notices
 *    the new handler within 100 ms and stops the sources then.
 *
 * 3. SIGINT, SIGTERM, SIGHUP and SIGALRM (a watchdog's alarm) end most
 *    interrupted runs.  When their action is
 *    the default one at start (and we interpose sigaction, so that the
 *    program still sees SIG_DFL when it asks), we install a stand-in: it
 *    has the writer thread write every sample collected so far
 *    (pp_final_dump), restores SIG_DFL and re-raises, so the process ends
 *    by the same signal as without us.  A program that installs its own
 *    handler simply replaces the stand-in.
 *
 * 4. exec: a SIGPROF pending (or a timer still armed) at execve() would
 *    kill the new program image, which has no handler yet.  The exec
 *    wrappers (exec.c) call pp_exec_prepare: sources paused, pending
 *    signals discarded, the program's own action back; pp_exec_failed
 *    undoes it if exec returns.
 *
 * Everything reachable from a handler uses async-signal-safe calls only.
 */
#include "profiler_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction_fn;

/* What the program had (or asked for) before our handlers. */
static struct sigaction prev_action[NSIG];
static int have_prev[NSIG];
/* Signals whose action is our stand-in for SIG_DFL (see 3). */
static int standin[NSIG];
/* Signals whose action is our sample handler. */
static int sampling[NSIG];

int pp_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  sigaction_fn f = __atomic_load_n(&real_sigaction_fn, __ATOMIC_ACQUIRE);
  if (!f) {
    f = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (!f) f = (sigaction_fn)dlsym(RTLD_DEFAULT, "__sigaction");
    if (!f) {
      errno = ENOSYS;
      return -1;
    }
    __atomic_store_n(&real_sigaction_fn, f, __ATOMIC_RELEASE);
  }
  return f(sig, act, old);
}

int pp_sigaction_interposed(void) {
  /* does the program's "sigaction" resolve into this library? */
  Dl_info theirs, ours;
  void *f = dlsym(RTLD_DEFAULT, "sigaction");
  return f && dladdr(f, &theirs) && dladdr((void *)pp_install_standins, &ours) &&
         theirs.dli_fbase == ours.dli_fbase;
}

static void set_action(int sig, void (*fn)(int, siginfo_t *, void *)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = fn;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  /* Our handlers never interrupt one another: the sample handler holds
   * the table's spinlock, which the stand-in's final dump needs. */
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGPROF);
  sigaddset(&sa.sa_mask, SIGALRM);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  sigaddset(&sa.sa_mask, SIGHUP);
  pp_real_sigaction(sig, &sa, NULL);
}

void pp_install_sample_handler(int sig) {
  struct sigaction cur;
  if (pp_real_sigaction(sig, NULL, &cur) == 0 &&
      !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == pp_signal_handler)) {
    prev_action[sig] = cur;
    have_prev[sig] = 1;
  }
  set_action(sig, pp_signal_handler);
  sampling[sig] = 1;
}

/* ------------------------------------------------------- fatal signals */

/* Ends the process by `sig` with its default action, as it would without
 * us (called from a handler, where sig is blocked: it is delivered when
 * the handler returns). */
static void reraise_default(int sig) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  pp_real_sigaction(sig, &dfl, NULL);
  standin[sig] = 0;
  sampling[sig] = 0;
  raise(sig);
}

static void standin_handler(int sig, siginfo_t *info, void *uc) {
  (void)info;
  (void)uc;
  int saved = errno;
  pp_final_dump();
  reraise_default(sig);
  errno = saved;
}

void pp_install_standins(void) {
  if (!pp_sigaction_interposed()) return;
  /* the signals that end interrupted runs (^C, kill, a closed terminal)
   * and watchdogs (alarm) */
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGALRM};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    int sig = sigs[i];
    struct sigaction cur;
    if (standin[sig] || pp_real_sigaction(sig, NULL, &cur) != 0) continue;
    if (cur.sa_handler != SIG_DFL || (cur.sa_flags & SA_SIGINFO)) continue;
    prev_action[sig] = cur;
    have_prev[sig] = 1;
    set_action(sig, standin_handler);
    standin[sig] = 1;
  }
}

/* A signal of our kind that our sources did not send: do what the
 * program would have done with it. */
void pp_forward_signal(int sig, siginfo_t *info, void *uc) {
  struct sigaction *p = have_prev[sig] ? &prev_action[sig] : NULL;
  if (p && (p->sa_flags & SA_SIGINFO)) {
    if (p->sa_sigaction) p->sa_sigaction(sig, info, uc);
    return;
  }
  if (p && p->sa_handler == SIG_IGN) return;
  if (p && p->sa_handler != SIG_DFL) {
    p->sa_handler(sig);
    return;
  }
  /* SIG_DFL of SIGPROF and SIGALRM: terminate. */
  pp_final_dump();
  reraise_default(sig);
}

/* ------------------------------------------------ the program's calls */

static void discard_pending(int sig) {
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  pp_real_sigaction(sig, &ign, NULL);
}

/* Interposes libc's sigaction (see 2 and 3 above). */
PP_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (sig <= 0 || sig >= NSIG) return pp_real_sigaction(sig, act, old);
  if (standin[sig]) {
    /* the program sees (and gets back) what it had: SIG_DFL */
    if (old) *old = prev_action[sig];
    if (!act) return 0;
    standin[sig] = 0;
    return pp_real_sigaction(sig, act, NULL);
  }
  if (act && sampling[sig] && !((act->sa_flags & SA_SIGINFO) && act->sa_sigaction == pp_signal_handler)) {
    struct sigaction cur;
    if (pp_real_sigaction(sig, NULL, &cur) == 0) {
      sampling[sig] = 0;
      pp_sources_taken_over(sig);
      discard_pending(sig);
      if (old) *old = cur;
      return pp_real_sigaction(sig, act, NULL);
    }
  }
  return pp_real_sigaction(sig, act, old);
}

typedef void (*handler_fn)(int);

/* glibc's signal() calls its internal sigaction, not ours: interpose it
 * too, with its BSD semantics (restart, handler not reset). */
static handler_fn set_handler(int sig, handler_fn h, int flags) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (!(flags & SA_NODEFER) && sig > 0 && sig < NSIG) sigaddset(&sa.sa_mask, sig);
  if (sigaction(sig, &sa, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

PP_EXPORT handler_fn signal(int sig, handler_fn h) { return set_handler(sig, h, SA_RESTART); }
PP_EXPORT handler_fn bsd_signal(int sig, handler_fn h) { return set_handler(sig, h, SA_RESTART); }
PP_EXPORT handler_fn sysv_signal(int sig, handler_fn h) { return set_handler(sig, h, SA_RESETHAND | SA_NODEFER); }

/* ------------------------------------------------------------- exec */

static int exec_paused_sig;

int pp_exec_prepare(void) {
  int sig = pp_sources_pause();
  if (!sig) return 0;
  exec_paused_sig = sig;
  discard_pending(sig);
  /* the new image starts with the program's own action (a handler is
   * reset to SIG_DFL by exec, SIG_IGN stays) */
  if (have_prev[sig]) pp_real_sigaction(sig, &prev_action[sig], NULL);
  else {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    pp_real_sigaction(sig, &dfl, NULL);
  }
  return 1;
}

void pp_exec_failed(void) {
  int saved = errno;
  if (exec_paused_sig) {
    set_action(exec_paused_sig, pp_signal_handler);
    exec_paused_sig = 0;
    pp_sources_resume();
  }
  errno = saved;
}
