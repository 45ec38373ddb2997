/* Leak checker fixture: leaked blocks whose only pointers lie in stack
 * frames that have returned (dead stack below the live stack pointer).
 *
 *   heapcheck_deadframe 40x400    leak_in_frame() puts 40 blocks of 400
 *                                 bytes in a local array and returns
 *   heapcheck_deadframe 5x4096    the same with 5 blocks of 4096 bytes
 *   heapcheck_deadframe exit ...  the same, then exit() from a function
 *                                 that still holds one block in a live
 *                                 frame (reachable: not a leak)
 *   heapcheck_deadframe exitreg ...  the same, the block's only pointer in
 *                                 rbx, a callee-saved register, when exit()
 *                                 is called (x86_64; reachable: not a leak)
 *   heapcheck_deadframe thread ...  the leak happens in a second thread,
 *                                 which then blocks (in pause()) holding a
 *                                 block of 1234 bytes in its live frame
 *                                 while main returns
 *
 * Nothing scrubs the dead frames: the checker must ignore memory below the
 * live stack pointer (and its own frames), whatever the stack's layout
 * (the environment's size moves it).
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void leak_in_frame(int n, size_t size) {
    void *blocks[64];
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(size);
        memset(blocks[i], 0x22, size);
    }
    for (int i = 0; i < n; i++) sink += ((unsigned char *)blocks[i])[i % size];
}

/* keeps `held` in a live frame (and in a register) across exit() */
__attribute__((noinline)) static void exit_holding(void) {
    void *volatile held = malloc(1234);
    memset(held, 1, 1234);
    fflush(stdout);
    exit(sink == 12345 ? 3 : 0);
}

/* the pointer only in rbx across exit(): exit and the exit handlers save
   rbx in their frames, where the checker must find it */
__attribute__((noinline)) static void exit_holding_in_register(void) {
#if defined(__x86_64__)
    void *p = malloc(1234);
    memset(p, 1, 1234);
    fflush(stdout);
    __asm__ volatile("mov %0, %%rbx" : : "r"(p) : "rbx");
    p = NULL;
    exit(0);
#else
    exit(4);
#endif
}

/* leak_in_frame 16 KiB further down: after the return its dead frame lies
   deeper than the signal frame the checker's register capture puts below
   the thread's stack pointer, so it survives to be (wrongly) scanned */
__attribute__((noinline)) static void leak_deep(int n, size_t size) {
    volatile char pad[16384];
    pad[0] = 1;
    leak_in_frame(n, size);
    sink += (unsigned long)pad[0];
}

static int thread_n;
static size_t thread_size;
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int ready;

static void *leaking_thread(void *arg) {
    (void)arg;
    void *volatile held = malloc(1234);
    memset(held, 1, 1234);
    leak_deep(thread_n, thread_size);    /* last: its dead frame stays below the thread's sp */
    pthread_mutex_lock(&ready_lock);
    ready = 1;
    pthread_cond_signal(&ready_cond);
    pthread_mutex_unlock(&ready_lock);
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    int n = 40;
    size_t size = 400;
    int via_reg = argc > 1 && strcmp(argv[1], "exitreg") == 0;
    int in_thread = argc > 1 && strcmp(argv[1], "thread") == 0;
    int via_exit = via_reg || in_thread || (argc > 1 && strcmp(argv[1], "exit") == 0);
    const char *shape = argc > 1 + via_exit ? argv[1 + via_exit] : "40x400";
    if (sscanf(shape, "%dx%zu", &n, &size) != 2 || n < 1 || n > 64) return 2;
    if (in_thread) {
        thread_n = n;
        thread_size = size;
        pthread_t t;
        pthread_create(&t, NULL, leaking_thread, NULL);
        pthread_mutex_lock(&ready_lock);
        while (!ready) pthread_cond_wait(&ready_cond, &ready_lock);
        pthread_mutex_unlock(&ready_lock);
        printf("done %dx%zu\n", n, size);
        return 0;
    }
    leak_in_frame(n, size);
    printf("done %dx%zu\n", n, size);
    if (via_reg) exit_holding_in_register();
    if (via_exit) exit_holding();
    return 0;
}
