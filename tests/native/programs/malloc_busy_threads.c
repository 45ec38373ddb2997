/* A thread's cache may grow past its first 2 MiB however many threads
 * exist: the global thread-cache budget is for growth (thread_cache.c).
 *
 * 40 threads each make a cache (one malloc/free) and wait; then the main
 * thread frees 16 MiB of 64 KiB blocks at a time, 20 times, and prints the
 * bytes its cache holds (MallocExtension_GetThreadCacheSize).  When every
 * new cache took its first 2 MiB out of the 64 MiB budget, 32 threads used
 * it all up and no cache could grow: the main thread's stayed under 2 MiB,
 * and programs with many busy threads sent every block of 32 KiB and more
 * through the page heap (8 B-1 MiB churn in 32 threads: 9.9 s, glibc 2.9). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 40
#define BLOCKS 256
#define BLOCK_SIZE (64 * 1024)

static pthread_barrier_t started, done;

static void *idle_thread(void *arg) {
    (void)arg;
    free(malloc(100));                 /* this thread's cache exists now */
    pthread_barrier_wait(&started);
    pthread_barrier_wait(&done);
    return NULL;
}

int main(void) {
    size_t (*cache_size)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "MallocExtension_GetThreadCacheSize");
    if (!cache_size) {
        puts("no MallocExtension_GetThreadCacheSize");
        return 1;
    }
    pthread_t t[THREADS];
    pthread_barrier_init(&started, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, idle_thread, NULL);
    pthread_barrier_wait(&started);
    static void *blocks[BLOCKS];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < BLOCKS; i++) {
            blocks[i] = malloc(BLOCK_SIZE);
            ((char *)blocks[i])[0] = 1;
        }
        for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
    }
    printf("%zu\n", cache_size());
    pthread_barrier_wait(&done);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    return 0;
}
