/* Returning memory to the OS (tests/native/test_malloc_release.py):
 *
 *   malloc_release idle [MS]  allocates and frees 256 MiB of 64 KiB-1 MiB
 *                          blocks, then stays idle (no allocator call)
 *                          polling its RSS every 50 ms for up to MS ms
 *                          (default 20000);
 *                          prints "peak_kib=P idle_kib=I" with I the first
 *                          RSS under 1/16 of P (or the last one seen)
 *   malloc_release reuse   malloc-large's pattern at a small scale: 20
 *                          live blocks of 1-5 MiB replaced at random and
 *                          zero-filled, 400 times; prints
 *                          "faults=F peak_kib=P" (minor page faults
 *                          during the loop, peak RSS)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static long rss_kib(void) {
    char buf[128];
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f && fgets(buf, sizeof buf, f)) sscanf(buf, "%ld %ld", &size, &res);
    if (f) fclose(f);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void mode_idle(long max_ms) {
    static void *blocks[4096];
    uint64_t s = 7;
    size_t total = 0;
    int n = 0;
    while (total < ((size_t)256 << 20)) {
        size_t sz = ((size_t)64 << 10) + (size_t)(rnd(&s) % (((size_t)1 << 20) - ((size_t)64 << 10)));
        blocks[n] = malloc(sz);
        memset(blocks[n], 1, sz);
        total += sz;
        n++;
    }
    long peak = rss_kib();
    for (int i = 0; i < n; i++) free(blocks[i]);
    /* poll with pread on one descriptor: no allocator call while idle */
    int fd = open("/proc/self/statm", O_RDONLY);
    long idle = peak;
    for (long tick = 0; tick < max_ms / 50 && fd >= 0; tick++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        char buf[128];
        ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
        long size = 0, res = 0;
        if (got > 0) {
            buf[got] = 0;
            if (sscanf(buf, "%ld %ld", &size, &res) == 2) idle = res * (sysconf(_SC_PAGESIZE) / 1024);
        }
        if (idle < peak / 16) break;
    }
    if (fd >= 0) close(fd);
    printf("peak_kib=%ld idle_kib=%ld\n", peak, idle);
}

static void mode_reuse(void) {
    enum { N = 20 };
    const size_t lo = (size_t)1 << 20, hi = (size_t)5 << 20;
    char *buf[N] = {0};
    uint64_t s = 42;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    for (int i = 0; i < 400; i++) {
        int k = (int)(rnd(&s) % N);
        size_t n = lo + (size_t)(rnd(&s) % (hi - lo + 1));
        char *p = malloc(n);
        memset(p, 0, n);
        free(buf[k]);
        buf[k] = p;
    }
    getrusage(RUSAGE_SELF, &r1);
    for (int k = 0; k < N; k++) free(buf[k]);
    printf("faults=%ld peak_kib=%ld\n", r1.ru_minflt - r0.ru_minflt, r1.ru_maxrss);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "idle")) mode_idle(argc >= 3 ? atol(argv[2]) : 20000);
    else if (argc >= 2 && !strcmp(argv[1], "reuse")) mode_reuse();
    else return 2;
    return 0;
}
