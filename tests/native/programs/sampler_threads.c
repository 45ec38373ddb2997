/* Two threads burn CPU in different functions while main waits.
 * Usage: sampler_threads SECONDS_PER_THREAD */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile long sink;
static double per_thread = 0.5;

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void worker_alpha(void) {
  double start = thread_cpu();
  while (thread_cpu() - start < per_thread)
    for (long i = 0; i < 100000; i++) sink += i;
}

__attribute__((noinline)) void worker_beta(void) {
  double start = thread_cpu();
  while (thread_cpu() - start < per_thread)
    for (long i = 0; i < 100000; i++) sink += i;
}

static void *run_alpha(void *arg) { (void)arg; worker_alpha(); return NULL; }
static void *run_beta(void *arg) { (void)arg; worker_beta(); return NULL; }

int main(int argc, char **argv) {
  if (argc > 1) per_thread = atof(argv[1]);
  pthread_t a, b;
  if (pthread_create(&a, NULL, run_alpha, NULL) || pthread_create(&b, NULL, run_beta, NULL)) {
    perror("pthread_create");
    return 1;
  }
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  printf("done\n");
  return 0;
}
