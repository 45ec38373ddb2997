/* A watchdog: alarm(1), then work that would run for argv[1] CPU seconds.
 * The alarm must end the program (SIGALRM, exit status 142 in a shell)
 * whatever the profiler does with its own timers. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void alarm_work(double s) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < s)
    for (long i = 0; i < 100000; i++) sink += i;
}

int main(int argc, char **argv) {
  alarm(1);
  alarm_work(argc > 1 ? atof(argv[1]) : 20);
  printf("the watchdog did not fire\n");
  return 0;
}
