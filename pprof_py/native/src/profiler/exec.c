/*
 * exec*() wrappers.
 *
 * Interval timers (setitimer) survive execve(), unlike perf events (their
 * fds are close-on-exec) and POSIX timers (deleted by exec).  With the
 * ITIMER_PROF fallback or CPUPROFILE_REALTIME (ITIMER_REAL), the new
 * program image would get SIGPROF/SIGALRM before anything installed a
 * handler for it, and both signals terminate a process by default ("Alarm
 * clock" for `sh -c 'exec prog'` under a realtime profile).  So, when this
 * library is preloaded or linked, exec calls stop the interval timer first
 * and re-arm it if the exec fails.  The samples collected by the old image
 * since the last checkpoint are not written: exec runs no destructors, and
 * the new image (preloaded with the same CPUPROFILE and the same pid)
 * starts the same file afresh, as with libprofiler.
 *
 * Only async-signal-safe calls are used, as exec may be called in a child
 * right after fork() or vfork().
 */
#include "profiler_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/time.h>
#include <unistd.h>

extern char **environ;

/* Returns the timer that was stopped (ITIMER_PROF / ITIMER_REAL), or -1. */
static int pause_interval_timer(struct itimerval *saved) {
  int source = __atomic_load_n(&pp_source, __ATOMIC_ACQUIRE);
  if (!__atomic_load_n(&pp_collecting, __ATOMIC_ACQUIRE)) return -1;
  int which;
  if (source == PP_SRC_ITIMER) which = ITIMER_PROF;
  else if (source == PP_SRC_REALTIME) which = ITIMER_REAL;
  else return -1;
  struct itimerval zero = {{0, 0}, {0, 0}};
  if (setitimer(which, &zero, saved) != 0) return -1;
  return which;
}

static void resume_interval_timer(int which, const struct itimerval *saved) {
  if (which < 0) return;
  int saved_errno = errno;
  setitimer(which, saved, NULL);
  errno = saved_errno;
}

#define REAL(name, type)                                    \
  static type real_##name;                                  \
  if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name); \
  if (!real_##name) {                                       \
    errno = ENOSYS;                                         \
    return -1;                                              \
  }

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);

int execve(const char *path, char *const argv[], char *const envp[]) {
  REAL(execve, execve_fn);
  struct itimerval saved;
  int which = pause_interval_timer(&saved);
  int rc = real_execve(path, argv, envp);
  resume_interval_timer(which, &saved);
  return rc;
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
  REAL(execvpe, execvpe_fn);
  struct itimerval saved;
  int which = pause_interval_timer(&saved);
  int rc = real_execvpe(file, argv, envp);
  resume_interval_timer(which, &saved);
  return rc;
}

int fexecve(int fd, char *const argv[], char *const envp[]) {
  REAL(fexecve, fexecve_fn);
  struct itimerval saved;
  int which = pause_interval_timer(&saved);
  int rc = real_fexecve(fd, argv, envp);
  resume_interval_timer(which, &saved);
  return rc;
}

int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

/* The list forms: collect the arguments (on the stack, no malloc) and call
 * the vector forms above. */
#define COLLECT_ARGS(first, ap, out, count)              \
  do {                                                   \
    va_list copy_;                                       \
    va_copy(copy_, ap);                                  \
    count = 1;                                           \
    while (va_arg(copy_, char *) != NULL) count++;       \
    va_end(copy_);                                       \
  } while (0)

int execl(const char *path, const char *arg, ...) {
  va_list ap;
  size_t n;
  va_start(ap, arg);
  COLLECT_ARGS(arg, ap, argv, n);
  char *argv[n + 1];
  argv[0] = (char *)arg;
  for (size_t i = 1; i <= n; i++) argv[i] = va_arg(ap, char *);
  va_end(ap);
  return execve(path, argv, environ);
}

int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  size_t n;
  va_start(ap, arg);
  COLLECT_ARGS(arg, ap, argv, n);
  char *argv[n + 1];
  argv[0] = (char *)arg;
  for (size_t i = 1; i <= n; i++) argv[i] = va_arg(ap, char *);
  va_end(ap);
  return execvpe(file, argv, environ);
}

int execle(const char *path, const char *arg, ...) {
  va_list ap;
  size_t n;
  va_start(ap, arg);
  COLLECT_ARGS(arg, ap, argv, n);
  char *argv[n + 1];
  argv[0] = (char *)arg;
  for (size_t i = 1; i <= n; i++) argv[i] = va_arg(ap, char *);
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, argv, envp);
}
