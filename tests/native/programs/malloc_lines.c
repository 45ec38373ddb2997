/* Objects under a cache line and the threads that use them
 * (pprof_py/native/src/malloc/central_freelist.c: spans of a thread's own).
 * Prints one line per check, "name ok" or "name FAIL: why"; exit status 1
 * if any failed.
 *   scratch   mimalloc-bench's cache-scratch pattern: the main thread
 *             allocates one 8-byte object per worker; each worker frees
 *             its object and allocates again.  What a worker gets must not
 *             share a cache line with another worker's or the main
 *             thread's objects.
 *   fresh     two threads each allocate 200 objects of 16, 32 and 48
 *             bytes: no line holds objects of both.
 *   reuse     a thread that frees its own object gets it back (the
 *             thread cache still works as before for its own objects). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LINE(p) ((uintptr_t)(p) >> 6)
#define WORKERS 2
#define FRESH 200

static void *given[WORKERS], *got[WORKERS];
static pthread_barrier_t barrier;

static void *scratch_worker(void *arg) {
  long id = (long)arg;
  free(given[id]);
  got[id] = malloc(8);
  *(volatile char *)got[id] = 1;
  pthread_barrier_wait(&barrier); /* both hold their object: no reuse between them */
  return NULL;
}

static void *fresh_objs[WORKERS][3][FRESH];

static void *fresh_worker(void *arg) {
  long id = (long)arg;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < FRESH; i++) fresh_objs[id][k][i] = malloc(16 * (k + 1));
  pthread_barrier_wait(&barrier);
  return NULL;
}

static void *reuse_worker(void *arg) {
  void *p = malloc(24), *q;
  free(p);
  q = malloc(24);
  *(int *)arg = p == q;
  free(q);
  return NULL;
}

int main(void) {
  int failed = 0;
  pthread_t th[WORKERS];
  pthread_barrier_init(&barrier, NULL, WORKERS);

  void *kept = malloc(8); /* a third main-thread object, still in use */
  for (long i = 0; i < WORKERS; i++) given[i] = malloc(8);
  for (long i = 0; i < WORKERS; i++) pthread_create(&th[i], NULL, scratch_worker, (void *)i);
  for (long i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
  int shared = LINE(got[0]) == LINE(got[1]) || LINE(got[0]) == LINE(kept) || LINE(got[1]) == LINE(kept) ||
               LINE(got[0]) == LINE(given[1]) || LINE(got[1]) == LINE(given[0]);
  if (shared) {
    printf("scratch FAIL: main %p %p %p, workers got %p %p\n", kept, given[0], given[1], got[0], got[1]);
    failed = 1;
  } else {
    printf("scratch ok\n");
  }

  for (long i = 0; i < WORKERS; i++) pthread_create(&th[i], NULL, fresh_worker, (void *)i);
  for (long i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
  int clashes = 0;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < FRESH; i++)
      for (int j = 0; j < FRESH; j++)
        for (int k2 = 0; k2 < 3; k2++) clashes += LINE(fresh_objs[0][k][i]) == LINE(fresh_objs[1][k2][j]);
  if (clashes) {
    printf("fresh FAIL: %d pairs of the two threads' objects share a line\n", clashes);
    failed = 1;
  } else {
    printf("fresh ok\n");
  }

  int same = 0;
  pthread_create(&th[0], NULL, reuse_worker, &same);
  pthread_join(th[0], NULL);
  if (!same) {
    printf("reuse FAIL: a thread's freed object was not handed back to it\n");
    failed = 1;
  } else {
    printf("reuse ok\n");
  }
  return failed;
}
