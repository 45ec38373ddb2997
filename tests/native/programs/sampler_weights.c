/* Known-weight workload for the CPU sampler tests.
 *
 * Every round does 4 units of work under heavy_* and 1 unit under light_*:
 *   heavy_flat / light_flat  run the loop themselves (flat time, 40% / 10%)
 *   heavy_cum  / light_cum   call the shared leaf spin() (cumulative 40% / 10%)
 * so the expected shares are heavy_flat 0.4, light_flat 0.1, spin 0.5 (flat),
 * heavy_cum 0.4, light_cum 0.1 (cumulative).
 * Usage: sampler_weights SECONDS  (CPU seconds of work); prints the CPU time
 * used as "cpu=<seconds>".
 *
 * Why every round is a random size and runs its four calls in a random order:
 * a fixed round is a periodic signal, and the profiling timer is periodic
 * too (and rounded to the kernel's tick).  When the two periods are near a
 * ratio of small integers the samples keep landing on the same phase of the
 * round, and the shares come out wrong by far more than sampling noise (a CI
 * machine measured heavy:light = 6.5 instead of 4).  Random sizes and orders
 * break the lock; the 4:1 weights hold in expectation in every round.
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

/* xorshift64: deterministic, no libc state, good enough to scatter phases. */
static unsigned long long rng_state = 88172645463325252ULL;
static unsigned long long next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

__attribute__((noinline)) void work_round(void) {
  /* unit between UNIT/2 and 3*UNIT/2, the same for the four calls. */
  long unit = UNIT / 2 + (long)(next_random() % UNIT);
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; i--) {
    int j = (int)(next_random() % (unsigned)(i + 1));
    int t = order[i]; order[i] = order[j]; order[j] = t;
  }
  for (int i = 0; i < 4; i++) {
    switch (order[i]) {
      case 0: heavy_flat(4 * unit); break;
      case 1: light_flat(unit); break;
      case 2: heavy_cum(4 * unit); break;
      default: light_cum(unit); break;
    }
  }
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
