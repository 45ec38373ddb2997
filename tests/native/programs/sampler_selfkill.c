/* Burns argv[2] CPU seconds, then sends itself signal number argv[1]
 * (SIGINT, SIGTERM, SIGKILL ...), as an interrupted run would get it.
 * A program without handlers dies of it. */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void selfkill_work(double s) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < s)
    for (long i = 0; i < 100000; i++) sink += i;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  selfkill_work(atof(argv[2]));
  kill(getpid(), atoi(argv[1]));
  selfkill_work(30); /* never reached unless the signal was swallowed */
  return 0;
}
