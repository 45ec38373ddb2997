/* CPU sampler fixture: code loaded with dlopen after profiling started.
 *
 *   sampler_dlopen LIB.so SECONDS
 * loads LIB.so (built from this file with -DBUILD_LIB) and runs its
 * lib_outer() -> lib_inner() for SECONDS of CPU time.  Both the program and
 * the library are compiled without frame pointers, so only the DWARF
 * unwinder, refreshed for the new library, can walk from lib_inner back to
 * main. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#ifdef BUILD_LIB
volatile long lib_sink;

__attribute__((noinline)) void lib_inner(long n) {
  for (long i = 0; i < n; i++) lib_sink += i * i;
}

__attribute__((noinline)) double lib_outer(double seconds) {
  double start = cpu_seconds();
  while (cpu_seconds() - start < seconds) lib_inner(200000);
  lib_sink++;
  return cpu_seconds() - start;
}
#else
__attribute__((noinline)) static double run_library(const char *path, double seconds) {
  void *h = dlopen(path, RTLD_NOW);
  if (!h) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    exit(2);
  }
  double (*outer)(double) = (double (*)(double))dlsym(h, "lib_outer");
  if (!outer) exit(3);
  return outer(seconds) + 0.0 * seconds;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  double used = run_library(argv[1], atof(argv[2]));
  printf("cpu=%.6f\n", used);
  return 0;
}
#endif
