/* A profiling signal pending at exec: blocks SIGPROF and SIGALRM, burns
 * CPU (and wall) time so that the sampler's timer fires (the signal stays
 * pending), then execs itself without the sampler in its environment;
 * the new image unblocks the signals, as a program may, and must survive.
 * argv[1]: CPU seconds.  Prints "ok" from the new image. */
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
    printf("ok\n");
    return 0;
  }
  sigprocmask(SIG_BLOCK, &set, NULL);
  double start = cpu_seconds(), want = argc > 1 ? atof(argv[1]) : 0.1;
  while (cpu_seconds() - start < want)
    for (long i = 0; i < 100000; i++) sink += i;
  char *args[] = {argv[0], argv[1], "unblock", NULL};
  char *env[] = {NULL};
  execve("/proc/self/exe", args, env);
  perror("execve");
  return 3;
}
