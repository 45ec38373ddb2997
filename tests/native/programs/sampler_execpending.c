/* A profiling signal pending at exec: blocks SIGPROF and SIGALRM, burns
 * CPU (and wall) time so that the sampler's timer fires (the signal stays
 * pending), then execs itself without the sampler in its environment;
 * the new image unblocks the signals, as a program may, and must survive.
 * argv[1]: CPU seconds; argv[2]: the exec function to call (execve by
 * default; execv, execvp, execvpe, execl, execlp, execle: each is wrapped
 * by the sampler).  Prints "ok" from the new image, followed by the value
 * of EXEC_FORM when the form passes an environment.  */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPROF);
  sigaddset(&set, SIGALRM);
  if (argc > 2 && strcmp(argv[2], "unblock") == 0) {
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    const char *form = getenv("EXEC_FORM");
    printf(form ? "ok %s\n" : "ok\n", form);
    return 0;
  }
  const char *form = argc > 2 ? argv[2] : "execve";
  sigprocmask(SIG_BLOCK, &set, NULL);
  double start = cpu_seconds(), want = argc > 1 ? atof(argv[1]) : 0.1;
  while (cpu_seconds() - start < want)
    for (long i = 0; i < 100000; i++) sink += i;
  char *args[] = {argv[0], argv[1], "unblock", NULL};
  char form_var[64];
  snprintf(form_var, sizeof form_var, "EXEC_FORM=%s", form);
  char *env[] = {form_var, NULL};
  const char *self = "/proc/self/exe";
  /* the forms without an environment argument pass the sampler's own,
     which must then be cleared for the new image to run without it */
  if (strcmp(form, "execve") == 0) execve(self, args, env);
  else if (strcmp(form, "execvpe") == 0) execvpe(self, args, env);
  else if (strcmp(form, "execle") == 0) execle(self, argv[0], argv[1], "unblock", (char *)NULL, env);
  else {
    clearenv();
    if (strcmp(form, "execv") == 0) execv(self, args);
    else if (strcmp(form, "execvp") == 0) execvp(self, args);
    else if (strcmp(form, "execl") == 0) execl(self, argv[0], argv[1], "unblock", (char *)NULL);
    else if (strcmp(form, "execlp") == 0) execlp(self, argv[0], argv[1], "unblock", (char *)NULL);
    else {
      fprintf(stderr, "unknown exec form %s\n", form);
      return 2;
    }
  }
  perror(form);
  return 3;
}
