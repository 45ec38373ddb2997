/* Mostly sleeping program for CPUPROFILE_REALTIME: 0.6 s asleep, then
 * 0.2 s of CPU in busy_part.  Prints wall and CPU seconds. */
#include <stdio.h>
#include <time.h>

volatile long sink;

static double clock_seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void sleepy_part(void) {
  for (int i = 0; i < 6; i++) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
}

__attribute__((noinline)) void busy_part(double s) {
  double start = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
  while (clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - start < s)
    for (long i = 0; i < 100000; i++) sink += i;
}

int main(void) {
  double wall = clock_seconds(CLOCK_MONOTONIC);
  sleepy_part();
  busy_part(0.2);
  printf("wall=%.6f cpu=%.6f\n", clock_seconds(CLOCK_MONOTONIC) - wall,
         clock_seconds(CLOCK_PROCESS_CPUTIME_ID));
  return 0;
}
