/* Allocator behaviour at the system's limits, run with and without our
 * allocator in LD_PRELOAD (tests/native/test_malloc_limits.py):
 *
 *   malloc_limits huge      requests no machine can back: prints one line per
 *                           call ("NULL ENOMEM" or "ok"), for comparison with
 *                           glibc's lines under the same overcommit policy
 *   malloc_limits rlimit    lowers RLIMIT_AS to 1 GiB at run time, as
 *                           gperftools' tests do, then allocates small and
 *                           large blocks; prints "OK rlimit"
 *   malloc_limits mallinfo  mallinfo/mallinfo2/mallopt/malloc_stats against
 *                           what the program itself allocated; prints
 *                           "OK mallinfo"
 *
 * Any failure prints "FAIL ..." on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static void report(const char *what, void *p) {
    if (p) printf("%s ok\n", what);
    else printf("%s NULL %s\n", what, errno == ENOMEM ? "ENOMEM" : "other-errno");
    fflush(stdout);
}

static void mode_huge(void) {
    errno = 0;
    void *a = malloc((size_t)1 << 40);
    report("malloc(2^40)", a);
    errno = 0;
    void *b = calloc((size_t)1 << 20, (size_t)1 << 20);
    report("calloc(2^20,2^20)", b);
    void *small = malloc(100);
    memset(small, 7, 100);
    errno = 0;
    void *c = realloc(small, (size_t)1 << 40);
    report("realloc(100B,2^40)", c);
    if (!c)
        for (int i = 0; i < 100; i++)
            if (((unsigned char *)small)[i] != 7) FAIL("realloc failure changed the old block");
    void *d = NULL;
    int rc = posix_memalign(&d, 4096, (size_t)1 << 40);
    printf("posix_memalign(4096,2^40) %s\n", rc == 0 ? "ok" : rc == ENOMEM ? "ENOMEM" : "other");
    /* the allocator still works afterwards */
    void *e = malloc(1 << 20);
    if (!e) FAIL("malloc(1 MiB) after huge requests");
    memset(e, 1, 1 << 20);
    free(e);
    free(a);
    free(b);
    free(c ? c : small);
    free(d);
}

static void mode_rlimit(void) {
    struct rlimit rl = {(rlim_t)1 << 30, (rlim_t)1 << 30};
    if (setrlimit(RLIMIT_AS, &rl) != 0) FAIL("setrlimit: %s", strerror(errno));
    void *small[1000];
    for (int i = 0; i < 1000; i++) {
        small[i] = malloc(16 + (size_t)i * 40);
        if (!small[i]) FAIL("malloc(%d) under RLIMIT_AS 1 GiB", 16 + i * 40);
        memset(small[i], i & 255, 16);
    }
    for (int round = 0; round < 10; round++) {
        char *big = malloc((size_t)50 << 20);
        if (!big) FAIL("malloc(50 MiB) round %d under RLIMIT_AS 1 GiB", round);
        big[0] = big[((size_t)50 << 20) - 1] = 1;
        free(big);
    }
    char *c = calloc(1, (size_t)200 << 20);
    if (!c) FAIL("calloc(200 MiB) under RLIMIT_AS 1 GiB");
    free(c);
    errno = 0;
    void *too_big = malloc((size_t)2 << 30);
    if (too_big) FAIL("malloc(2 GiB) succeeded under RLIMIT_AS 1 GiB");
    if (errno != ENOMEM) FAIL("malloc(2 GiB) failed without ENOMEM");
    void *after = malloc(4096);
    if (!after) FAIL("malloc after a failed request");
    free(after);
    for (int i = 0; i < 1000; i++) free(small[i]);
    puts("OK rlimit");
}

static void mode_mallinfo(void) {
    enum { N = 1000, SIZE = 1000 };
    struct mallinfo2 before = mallinfo2();
    void *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(SIZE);
    char *big = malloc((size_t)8 << 20);
    memset(big, 1, (size_t)8 << 20);
    struct mallinfo2 during = mallinfo2();
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo();
    /* glibc counts its mmap'ed blocks (the 8 MiB one) in hblkhd */
    size_t grew = (during.uordblks + during.hblkhd) - (before.uordblks + before.hblkhd);
    size_t want = (size_t)N * SIZE + ((size_t)8 << 20);
    if (grew < want || grew > want + want / 4)
        FAIL("mallinfo2.uordblks grew by %zu for %zu bytes allocated", grew, want);
    if (during.arena < during.uordblks) FAIL("arena %zu < uordblks %zu", during.arena, during.uordblks);
    if (during.uordblks + during.fordblks > during.arena + during.hblkhd)
        FAIL("uordblks + fordblks > heap size");
    if ((size_t)old.uordblks != (during.uordblks & 0xffffffffu) && old.uordblks != (int)during.uordblks)
        FAIL("mallinfo().uordblks %d differs from mallinfo2's %zu", old.uordblks, during.uordblks);
    for (int i = 0; i < N; i++) free(p[i]);
    free(big);
    struct mallinfo2 after = mallinfo2();
    if (after.uordblks + after.hblkhd >= during.uordblks + during.hblkhd) FAIL("uordblks did not drop after free");
    if (mallopt(M_TRIM_THRESHOLD, 1 << 20) != 1) FAIL("mallopt(M_TRIM_THRESHOLD) not accepted");
    if (malloc_trim(0) != 1 && malloc_trim(0) != 0) FAIL("malloc_trim");
    malloc_stats();                     /* prints to stderr */
    puts("OK mallinfo");
}

int main(int argc, char **argv) {
    if (argc < 2) FAIL("usage: malloc_limits huge|rlimit|mallinfo");
    if (!strcmp(argv[1], "huge")) mode_huge();
    else if (!strcmp(argv[1], "rlimit")) mode_rlimit();
    else if (!strcmp(argv[1], "mallinfo")) mode_mallinfo();
    else FAIL("unknown mode %s", argv[1]);
    return 0;
}
