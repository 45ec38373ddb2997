/*
 * exec*() wrappers.
 *
 * A profiling signal that is pending, or a timer that is still armed, when
 * execve() replaces the program would be delivered to the new image before
 * anything installed a handler for it, and SIGPROF and SIGALRM terminate a
 * process by default (`bash -c '...; exec /bin/true'` was killed that way).
 * Interval timers even survive exec.  So, when this library is preloaded
 * or linked, exec calls first pause every timer source, discard the
 * pending signals and put the program's own action back
 * (signals.c: pp_exec_prepare), and undo that if the exec fails.  The
 * samples collected by the old image since the last checkpoint (at most
 * a second) are not written: exec runs no destructors, and the new image
 * (preloaded with the same CPUPROFILE and the same pid) starts the same
 * file afresh, as with libprofiler.
 *
 * Only async-signal-safe calls are used, as exec may be called in a child
 * right after fork() or vfork().
 */
#include "profiler_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

extern char **environ;

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

PP_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  REAL(execve, execve_fn);
  int paused = pp_exec_prepare();
  int rc = real_execve(path, argv, envp);
  if (paused) pp_exec_failed();
  return rc;
}

PP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  REAL(execvpe, execvpe_fn);
  int paused = pp_exec_prepare();
  int rc = real_execvpe(file, argv, envp);
  if (paused) pp_exec_failed();
  return rc;
}

PP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
  REAL(fexecve, fexecve_fn);
  int paused = pp_exec_prepare();
  int rc = real_fexecve(fd, argv, envp);
  if (paused) pp_exec_failed();
  return rc;
}

PP_EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

PP_EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

/* The list forms: gather the NULL-terminated list that starts at `arg`
 * into `argv`, a variable-length array on the stack (no malloc: this may
 * run in a vfork child), and leave `ap` just past the NULL, where execle's
 * environment is.  The caller ends with va_end(ap) and a vector form. */
#define LIST_TO_ARGV(arg, ap, argv)                                   \
  va_list ap;                                                         \
  size_t count_ = 1;                                                  \
  va_start(ap, arg);                                                  \
  {                                                                   \
    va_list copy_;                                                    \
    va_copy(copy_, ap);                                               \
    while (va_arg(copy_, char *) != NULL) count_++;                   \
    va_end(copy_);                                                    \
  }                                                                   \
  char *argv[count_ + 1];                                             \
  argv[0] = (char *)arg;                                              \
  for (size_t i_ = 1; i_ <= count_; i_++) argv[i_] = va_arg(ap, char *)

PP_EXPORT int execl(const char *path, const char *arg, ...) {
  LIST_TO_ARGV(arg, ap, argv);
  va_end(ap);
  return execve(path, argv, environ);
}

PP_EXPORT int execlp(const char *file, const char *arg, ...) {
  LIST_TO_ARGV(arg, ap, argv);
  va_end(ap);
  return execvpe(file, argv, environ);
}

PP_EXPORT int execle(const char *path, const char *arg, ...) {
  LIST_TO_ARGV(arg, ap, argv);
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, argv, envp);
}
