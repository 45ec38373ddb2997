/* Installs its own SIGPROF handler while being profiled (after the
 * sampler started at load time).  Must not crash; the sampler warns. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

int main(void) {
  busy(0.2);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = own_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPROF, &sa, NULL);
  busy(0.4);
  printf("own_ticks=%d\n", (int)own_ticks);
  return 0;
}
