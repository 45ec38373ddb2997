/* The main thread calls pthread_exit() while a worker runs on (as a forked
 * child of a Python thread does): the process must end when the worker
 * does, with status 0 and its atexit handlers run, even with our helper
 * threads alive (common/helper_threads.h).  The main thread first frees
 * large blocks, so that the allocator's release thread starts; the worker
 * burns argv[1] seconds of CPU in burn() for the sampler to see.
 * Prints "worker done" and "atexit ran". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds;
volatile unsigned long sink;

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static void burn(void) {
  double start = cpu_now();
  while (cpu_now() - start < seconds)
    for (int i = 0; i < 10000; i++) sink += (unsigned long)i * i;
}

static void *worker(void *arg) {
  (void)arg;
  burn();
  free(malloc(100000));
  printf("worker done\n");
  fflush(stdout);
  return NULL;
}

static void at_exit(void) { printf("atexit ran\n"); }

int main(int argc, char **argv) {
  seconds = argc > 1 ? atof(argv[1]) : 0.3;
  atexit(at_exit);
  void *blocks[40];
  for (int i = 0; i < 40; i++) blocks[i] = malloc(300000);
  for (int i = 0; i < 40; i++) free(blocks[i]);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_exit(NULL);
}
