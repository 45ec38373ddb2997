/* Starts argv[1] threads that each burn a little CPU and then wait on a
 * barrier, so that all of them are alive at once; then the first 90% of
 * them open a file each (the program's own descriptors must be left to
 * it), and all exit.  Prints "ok threads=<n> failed_opens=<n>". */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

volatile long sink;
static pthread_barrier_t all_alive, opened;
static int failed_opens;

__attribute__((noinline)) void thread_work(void) {
  for (long i = 0; i < 300000; i++) sink += i;
}

static void *body(void *arg) {
  int opens = (int)(long)arg;
  thread_work();
  pthread_barrier_wait(&all_alive);
  int fd = -1;
  if (opens) {
    fd = open("/dev/null", O_RDONLY);
    if (fd < 0) __atomic_add_fetch(&failed_opens, 1, __ATOMIC_RELAXED);
  }
  thread_work();
  pthread_barrier_wait(&opened);
  if (fd >= 0) close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100;
  pthread_t *t = calloc((size_t)n, sizeof *t);
  pthread_barrier_init(&all_alive, NULL, (unsigned)n);
  pthread_barrier_init(&opened, NULL, (unsigned)n);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int started = 0;
  for (int i = 0; i < n; i++) {
    if (pthread_create(&t[i], &attr, body, (void *)(long)(i < n * 9 / 10)) != 0) {
      fprintf(stderr, "pthread_create failed at %d\n", i);
      return 3;
    }
    started++;
  }
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  free(t);
  printf("ok threads=%d failed_opens=%d\n", started, failed_opens);
  return failed_opens ? 1 : 0;
}
