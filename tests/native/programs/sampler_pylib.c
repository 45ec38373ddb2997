/* Small shared library for the Python context-manager test: loaded with
 * ctypes, pylib_spin burns CPU for the given number of CPU seconds. */
#include <time.h>

volatile long pylib_sink;

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void pylib_inner_loop(void) {
  for (long i = 0; i < 100000; i++) pylib_sink += i;
}

__attribute__((noinline)) double pylib_spin(double seconds) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < seconds) pylib_inner_loop();
  return cpu_seconds() - start;
}
