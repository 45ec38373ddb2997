/* Installs its own SIGPROF handler while being profiled (after the
 * sampler started at load time).  With an argument N it also arms its own
 * ITIMER_PROF at N Hz, and counts its ticks: after the replacement it must
 * receive only those (at most one per 1/N s of CPU time), none of ours.
 * Prints "own_ticks=<n> cpu=<CPU seconds since it took SIGPROF over>". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

volatile long sink;
static volatile sig_atomic_t own_ticks;

static void own_handler(int sig) {
  (void)sig;
  own_ticks++;
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void busy(double s) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < s)
    for (long i = 0; i < 100000; i++) sink += i;
}

int main(int argc, char **argv) {
  int hz = argc > 1 ? atoi(argv[1]) : 0;
  busy(0.2);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = own_handler;
  sigemptyset(&sa.sa_mask);
  double taken = cpu_seconds();
  sigaction(SIGPROF, &sa, NULL);
  if (hz > 0) {
    struct itimerval it;
    it.it_interval.tv_sec = 0;
    it.it_interval.tv_usec = 1000000 / hz;
    it.it_value = it.it_interval;
    setitimer(ITIMER_PROF, &it, NULL);
  }
  busy(0.4);
  printf("own_ticks=%d cpu=%.3f\n", (int)own_ticks, cpu_seconds() - taken);
  return 0;
}
