/* Known-weight workload for the CPU sampler tests.
 *
 * Every round does 4 units of work under heavy_* and 1 unit under light_*:
 *   heavy_flat / light_flat  run the loop themselves (flat time, 40% / 10%)
 *   heavy_cum  / light_cum   call the shared leaf spin() (cumulative 40% / 10%)
 * so the expected shares are heavy_flat 0.4, light_flat 0.1, spin 0.5 (flat),
 * heavy_cum 0.4, light_cum 0.1 (cumulative).
 * Usage: sampler_weights SECONDS  (CPU seconds of work); prints the CPU time
 * used as "cpu=<seconds>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile long sink;
#define UNIT 20000L

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void spin(long n) {
  for (long i = 0; i < n; i++) sink += i;
}

__attribute__((noinline)) void heavy_flat(long n) {
  for (long i = 0; i < n; i++) sink += i;
}

__attribute__((noinline)) void light_flat(long n) {
  for (long i = 0; i < n; i++) sink += i;
}

__attribute__((noinline)) void heavy_cum(long n) { spin(n); sink++; }

__attribute__((noinline)) void light_cum(long n) { spin(n); sink++; }

__attribute__((noinline)) void work_round(void) {
  heavy_flat(4 * UNIT);
  light_flat(UNIT);
  heavy_cum(4 * UNIT);
  light_cum(UNIT);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  double start = cpu_seconds();
  while (cpu_seconds() - start < seconds) {
    for (int i = 0; i < 10; i++) work_round();
  }
  printf("cpu=%.6f\n", cpu_seconds());
  return 0;
}
