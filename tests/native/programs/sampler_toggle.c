/* CPUPROFILESIGNAL: the program sends itself SIGUSR2 around two phases.
 * phase_one runs while profile <file>.0 is on, gap_work while it is off,
 * phase_two while <file>.1 is on. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void settle(void) {
  /* The toggle is carried out by the profiler's own thread. */
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

#define BURN(name)                                            \
  __attribute__((noinline)) void name(double s) {             \
    double start = cpu_seconds();                             \
    while (cpu_seconds() - start < s)                         \
      for (long i = 0; i < 100000; i++) sink += i;            \
  }

BURN(phase_one)
BURN(gap_work)
BURN(phase_two)

int main(void) {
  raise(SIGUSR2);
  settle();
  phase_one(0.4);
  raise(SIGUSR2);
  settle();
  gap_work(0.4);
  raise(SIGUSR2);
  settle();
  phase_two(0.4);
  raise(SIGUSR2);
  settle();
  printf("done\n");
  return 0;
}
