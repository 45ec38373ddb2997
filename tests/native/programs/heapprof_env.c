/* Heap profiler fixture for gperftools' dump triggers.
 *
 *   heapprof_env churn N   N times: malloc 1 MiB, touch it, free it
 *   heapprof_env slow N    N times: sleep 1.2 s, then malloc and free 100 B
 *                          (HEAP_PROFILE_TIME_INTERVAL)
 *   heapprof_env signal S  raise signal S, then malloc and free 100 B
 *                          (HEAPPROFILESIGNAL)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile unsigned long sink;

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "churn";
    int n = argc > 2 ? atoi(argv[2]) : 10;
    if (strcmp(mode, "churn") == 0) {
        for (int i = 0; i < n; i++) {
            char *p = malloc(1 << 20);
            memset(p, i, 1 << 20);
            sink += (unsigned long)p[i];
            free(p);
        }
    } else if (strcmp(mode, "slow") == 0) {
        for (int i = 0; i < n; i++) {
            struct timespec ts = {1, 200000000};
            nanosleep(&ts, NULL);
            free(malloc(100));
        }
    } else if (strcmp(mode, "signal") == 0) {
        raise(n);
        free(malloc(100));
    } else {
        return 2;
    }
    printf("done %s\n", mode);
    return 0;
}
