/* Heap profiler fixture: a process that forks while HEAPPROFILE is set.
 *
 *   heapprof_fork fork       the parent allocates 10 blocks of 1000 bytes
 *                            in parent_site(), forks; the child allocates
 *                            3 blocks of 3000 bytes in child_site() and
 *                            exits; the parent waits and exits
 *   heapprof_fork exec       the same, but the child execs this program
 *                            again ("heapprof_fork child"), which
 *                            allocates 3 blocks of 3000 bytes
 *   heapprof_fork child      (what the exec'd child runs)
 *
 * Prints "child <pid>" for each child it started, so a test knows the name
 * the child's profiles must have (<prefix>_<pid>.NNNN.heap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *keep[16];

__attribute__((noinline)) void parent_site(void) {
    for (int i = 0; i < 10; i++) keep[i] = malloc(1000);
}

__attribute__((noinline)) void child_site(void) {
    for (int i = 0; i < 3; i++) keep[10 + i] = malloc(3000);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "fork";
    if (strcmp(mode, "child") == 0) {
        child_site();
        return 0;
    }
    parent_site();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(mode, "exec") == 0) {
            execl("/proc/self/exe", argv[0], "child", (char *)NULL);
            _exit(127);
        }
        child_site();
        exit(0);
    }
    printf("child %d\n", (int)pid);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
