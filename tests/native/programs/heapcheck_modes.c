/* Leak checker fixture for HEAPCHECK's modes and the HEAP_CHECK_* knobs.
 *
 *   heapcheck_modes basic      keeps one block of 2222 bytes in a global,
 *                              leaks one of 100 bytes, then calls exit()
 *                              from a function whose live frame holds a
 *                              block of 1234 bytes
 *   heapcheck_modes many N     leaks N blocks of 100 bytes, each from its
 *                              own stack (leak_at_depth(0..N-1))
 *   heapcheck_modes unaligned  the only pointer to a block of 3333 bytes
 *                              lies at an odd offset of a global buffer
 *   heapcheck_modes spawn      runs "heapcheck_modes many 1" (fork + exec,
 *                              a child that leaks) and prints
 *                              "child exit <status>"; leaks nothing itself
 *   heapcheck_modes forkleak   forks a child that leaks 100 bytes and
 *                              exits 0 (no exec); the parent leaks nothing
 *
 * With LEAK_IN_CONSTRUCTOR set, a constructor (before main) also leaks a
 * block of 555 bytes (HEAPCHECK=minimal ignores it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;
static void *global_block;
static char packed[64];

__attribute__((constructor)) static void constructor_leak(void) {
    if (getenv("LEAK_IN_CONSTRUCTOR")) {
        char *p = malloc(555);
        memset(p, 5, 555);
        sink += (unsigned long)p[1];
    }
}

__attribute__((noinline)) static void leak_at_depth(int depth) {
    if (depth > 0) {
        leak_at_depth(depth - 1);
        sink++;   /* not a tail call: each depth keeps its own frame */
        return;
    }
    char *p = malloc(100);
    memset(p, 7, 100);
    sink += (unsigned long)p[3];
}

__attribute__((noinline)) static void exit_holding(void) {
    void *volatile held = malloc(1234);
    memset(held, 1, 1234);
    printf("done\n");
    fflush(stdout);
    exit(0);
}

/* overwrite dead frames so no stale pointer to the leaked blocks survives
   on the stack whatever the compiler did */
__attribute__((noinline)) static void scrub_stack(void) {
    volatile char scrub[16384];
    memset((char *)scrub, 0, sizeof scrub);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "basic";
    if (strcmp(mode, "basic") == 0) {
        global_block = malloc(2222);
        memset(global_block, 2, 2222);
        leak_at_depth(0);
        scrub_stack();
        exit_holding();
    } else if (strcmp(mode, "many") == 0) {
        int n = argc > 2 ? atoi(argv[2]) : 5;
        for (int i = 0; i < n; i++) leak_at_depth(i);
    } else if (strcmp(mode, "unaligned") == 0) {
        void *p = malloc(3333);
        memset(p, 3, 3333);
        memcpy(packed + 3, &p, sizeof p);
        p = NULL;
    } else if (strcmp(mode, "spawn") == 0 || strcmp(mode, "forkleak") == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            if (mode[0] == 's') {
                execl("/proc/self/exe", argv[0], "many", "1", (char *)NULL);
                _exit(127);
            }
            leak_at_depth(0);
            scrub_stack();
            exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    } else {
        return 2;
    }
    scrub_stack();
    printf("done\n");
    return 0;
}
