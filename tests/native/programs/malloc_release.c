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
 *   malloc_release interleaved MIB  8 blocks of 4 MiB, each one making
 *                          the heap grow, with a 1 MiB mapping of someone
 *                          else's made after each (as CPython's arenas
 *                          are); all freed, then one block of MIB MiB;
 *                          prints "heap_before=B heap_after=A" (mallinfo2's
 *                          arena before and after that block: equal when
 *                          the freed regions were adjacent and coalesced)
 *   malloc_release cached  64 MiB of 1-4 KiB objects, freed in random
 *                          order (many stay in the caches), then one
 *                          48 MiB block; prints "heap_before=B heap_after=A"
 *                          as above
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/mman.h>
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

static void mode_interleaved(size_t mib) {
    enum { N = 8 };
    char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc((size_t)4 << 20);
        memset(blocks[i], 1, (size_t)4 << 20);
        char *other = mmap(NULL, (size_t)1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (other == MAP_FAILED) exit(3);
        other[0] = 1;
    }
    for (int i = 0; i < N; i++) free(blocks[i]);
    size_t before = mallinfo2().arena;
    char *big = malloc(mib << 20);
    memset(big, 2, mib << 20);
    size_t after = mallinfo2().arena;
    free(big);
    printf("heap_before=%zu heap_after=%zu\n", before, after);
}

static void mode_cached(void) {
    enum { N = 24000 };
    static char *objs[N];
    uint64_t s = 99;
    for (int i = 0; i < N; i++) {
        size_t n = 1024 + (size_t)(rnd(&s) % 3072);
        objs[i] = malloc(n);
        memset(objs[i], 1, n);
    }
    for (int i = N - 1; i > 0; i--) {              /* free in a random order */
        int j = (int)(rnd(&s) % (uint64_t)(i + 1));
        char *t = objs[i];
        objs[i] = objs[j];
        objs[j] = t;
    }
    for (int i = 0; i < N; i++) free(objs[i]);
    size_t before = mallinfo2().arena;
    char *big = malloc((size_t)48 << 20);
    memset(big, 2, (size_t)48 << 20);
    size_t after = mallinfo2().arena;
    free(big);
    printf("heap_before=%zu heap_after=%zu\n", before, after);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "idle")) mode_idle(argc >= 3 ? atol(argv[2]) : 20000);
    else if (argc >= 2 && !strcmp(argv[1], "reuse")) mode_reuse();
    else if (argc >= 2 && !strcmp(argv[1], "cached")) mode_cached();
    else if (argc >= 2 && !strcmp(argv[1], "interleaved")) mode_interleaved(argc >= 3 ? (size_t)atol(argv[2]) : 20);
    else return 2;
    return 0;
}
