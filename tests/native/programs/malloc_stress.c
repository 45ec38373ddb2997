/* Allocator torture program, run under LD_PRELOAD of pprof_py's allocator
 * (or linked statically with its sources by sanitize_malloc.sh).
 *
 *   malloc_stress stress THREADS ITERS   random malloc/calloc/realloc/memalign/free
 *                                        with pattern checks, across threads
 *   malloc_stress fork                   fork repeatedly while threads allocate
 *   malloc_stress threadexit             many short-lived threads
 *   malloc_stress edge                   zero/huge sizes, calloc overflow, aligned forms
 *   malloc_stress xthread                producer/consumer: frees on another thread
 *   malloc_stress badfree | doublefree | interior   must abort with a diagnostic
 *   malloc_stress stats                  statistics and release API (via dlsym)
 *
 * Prints "OK <mode>" and exits 0 on success; any failure prints "FAIL ..."
 * and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned char pat(void *slot, size_t i) { return (unsigned char)(((uintptr_t)slot >> 4) + i * 31); }

static void fill(void *p, size_t n, void *tag) {
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++) c[i] = pat(tag, i);
}

static void check(void *p, size_t n, void *tag) {
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat(tag, i)) FAIL("corrupted block %p byte %zu of %zu", p, i, n);
}

static void check_align(void *p, size_t a) {
    if ((uintptr_t)p % a) FAIL("pointer %p not aligned to %zu", p, a);
}

static size_t pick_size(uint64_t *s) {
    uint64_t r = rnd(s);
    switch (r % 16) {
    case 0: return r >> 40 & 0;                 /* zero */
    case 1: case 2: case 3: case 4: case 5: return (r >> 20) % 64 + 1;
    case 6: case 7: case 8: return (r >> 20) % 1024 + 1;
    case 9: case 10: return (r >> 20) % 16384 + 1;
    case 11: return (r >> 20) % 300000 + 1;       /* crosses the small/large limit */
    case 12: return (r >> 20) % (2 << 20) + 1;
    default: return (r >> 20) % 256 + 1;
    }
}

typedef struct {
    void *p;
    size_t n;
} slot_t;

static int iters = 20000;

static void *stress_thread(void *arg) {
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    enum { SLOTS = 512 };
    slot_t *slots = calloc(SLOTS, sizeof(slot_t));
    if (!slots) FAIL("calloc slots");
    for (int it = 0; it < iters; it++) {
        uint64_t r = rnd(&seed);
        slot_t *s = &slots[r % SLOTS];
        if (s->p) {
            check(s->p, s->n, s);
            if ((r >> 12) % 4 == 0) {
                size_t n = pick_size(&seed);
                void *q = realloc(s->p, n);
                if (n && !q) FAIL("realloc %zu", n);
                if (n == 0) {
                    s->p = NULL;
                    continue;
                }
                check_align(q, 16);
                size_t keep = n < s->n ? n : s->n;
                check(q, keep, s);
                s->p = q;
                s->n = n;
                fill(q, n, s);
                continue;
            }
            free(s->p);
            s->p = NULL;
            continue;
        }
        size_t n = pick_size(&seed);
        void *p = NULL;
        int how = (int)((r >> 16) % 6);
        size_t align = 16;
        if (how == 0) {
            p = calloc(1, n);
            if (p)
                for (size_t i = 0; i < n; i++)
                    if (((unsigned char *)p)[i]) FAIL("calloc memory not zero");
        } else if (how == 1) {
            align = (size_t)1 << ((r >> 24) % 16 + 3);     /* 8 .. 256 KiB */
            if (posix_memalign(&p, align, n)) p = NULL;
        } else if (how == 2) {
            align = (size_t)1 << ((r >> 24) % 13 + 4);
            p = aligned_alloc(align, n);
        } else {
            p = malloc(n);
        }
        if (!p) FAIL("allocation of %zu failed", n);
        check_align(p, align < 16 ? 16 : align);
        if (malloc_usable_size(p) < n) FAIL("usable size %zu < %zu", malloc_usable_size(p), n);
        fill(p, n, s);
        s->p = p;
        s->n = n;
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p) {
            check(slots[i].p, slots[i].n, &slots[i]);
            free(slots[i].p);
        }
    }
    free(slots);
    return NULL;
}

static void run_threads(int n, void *(*fn)(void *)) {
    pthread_t t[64];
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)(i + 1))) FAIL("pthread_create");
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

static volatile int stop_flag;

static void *churn(void *arg) {
    uint64_t seed = (uintptr_t)arg + 77;
    void *keep[64] = {0};
    while (!stop_flag) {
        int i = (int)(rnd(&seed) % 64);
        free(keep[i]);
        keep[i] = malloc(rnd(&seed) % 5000 + 1);
        if (!keep[i]) FAIL("malloc in churn");
        memset(keep[i], 1, 1);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

static void mode_fork(void) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i);
    for (int k = 0; k < 40; k++) {
        pid_t pid = fork();
        if (pid < 0) FAIL("fork");
        if (pid == 0) {
            /* the child must be able to allocate although other threads held locks */
            for (int j = 0; j < 2000; j++) {
                void *p = malloc((size_t)(j % 3000) + 1);
                if (!p) _exit(3);
                memset(p, 2, 1);
                if (j % 2) free(p);
            }
            void *big = malloc(5 << 20);
            if (!big) _exit(4);
            free(big);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("child %d failed (status %d)", k, st);
    }
    stop_flag = 1;
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
}

static void *short_thread(void *arg) {
    void *ps[100];
    for (int i = 0; i < 100; i++) {
        ps[i] = malloc((size_t)(i * 37 + (uintptr_t)arg) % 4000 + 1);
        if (!ps[i]) FAIL("malloc");
    }
    for (int i = 0; i < 100; i += 2) free(ps[i]);
    /* odd ones are handed back to the main thread */
    void **out = malloc(50 * sizeof(void *));
    for (int i = 1, k = 0; i < 100; i += 2) out[k++] = ps[i];
    return out;
}

struct st {
    size_t allocated_bytes, heap_size, pageheap_free_bytes, pageheap_unmapped_bytes, central_cache_free_bytes,
        transfer_cache_free_bytes, thread_cache_free_bytes, metadata_bytes, thread_caches, size_classes,
        release_threshold;
    double fragmentation;
};

static void mode_threadexit(void) {
    for (int round = 0; round < 60; round++) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, short_thread, (void *)(uintptr_t)round);
        for (int i = 0; i < 4; i++) {
            void **out;
            pthread_join(t[i], (void **)&out);
            for (int k = 0; k < 50; k++) free(out[k]);
            free(out);
        }
    }
    /* exited threads must have given their caches back */
    int (*stats)(struct st *) = (int (*)(struct st *))dlsym(RTLD_DEFAULT, "pprofpy_malloc_stats");
    if (stats) {
        struct st a;
        stats(&a);
        if (a.thread_caches > 1) FAIL("%zu thread caches alive after all threads exited", a.thread_caches);
    }
}

static void mode_edge(void) {
    void *z = malloc(0);
    if (!z) FAIL("malloc(0) returned NULL");
    void *z2 = malloc(0);
    if (z == z2) FAIL("malloc(0) returned the same pointer twice");
    free(z);
    free(z2);
    free(NULL);
    errno = 0;
    void *h = malloc(SIZE_MAX);
    if (h || errno != ENOMEM) FAIL("malloc(SIZE_MAX) = %p errno %d", h, errno);
    h = malloc(SIZE_MAX / 2);
    if (h) FAIL("malloc(SIZE_MAX/2) succeeded");
    errno = 0;
    void *c = calloc(SIZE_MAX / 2, 4);
    if (c || errno != ENOMEM) FAIL("calloc overflow = %p errno %d", c, errno);
    c = calloc((size_t)1 << 33, (size_t)1 << 33);
    if (c) FAIL("calloc 2^66 succeeded");
    errno = 0;
    c = reallocarray(NULL, SIZE_MAX / 2, 3);
    if (c || errno != ENOMEM) FAIL("reallocarray overflow");
    /* a big calloc must be zero and usable */
    unsigned char *big = calloc(64 << 20, 1);
    if (!big) FAIL("calloc 64 MiB");
    for (size_t i = 0; i < (64u << 20); i += 4096)
        if (big[i]) FAIL("calloc 64 MiB not zero");
    memset(big, 0xab, 64 << 20);
    free(big);
    big = calloc(64 << 20, 1);
    for (size_t i = 0; i < (64u << 20); i += 4096)
        if (big[i]) FAIL("recycled calloc 64 MiB not zero");
    free(big);
    /* every size from 1 to 70000 and some large ones: alignment and usable size */
    for (size_t n = 1; n < 70000; n += (n < 2048 ? 1 : 97)) {
        void *p = malloc(n);
        check_align(p, 16);
        if (malloc_usable_size(p) < n) FAIL("usable size");
        memset(p, 0x5a, n);
        free(p);
    }
    for (size_t a = 1; a <= (1 << 22); a <<= 1) {
        void *p = memalign(a, 100);
        check_align(p, a);
        void *q = aligned_alloc(a, a * 3);
        check_align(q, a);
        memset(q, 1, a * 3);
        void *r = NULL;
        if (a >= sizeof(void *)) {
            if (posix_memalign(&r, a, 1000)) FAIL("posix_memalign %zu", a);
            check_align(r, a);
        }
        free(p);
        free(q);
        free(r);
    }
    void *r = NULL;
    if (posix_memalign(&r, 24, 10) != EINVAL) FAIL("posix_memalign(24) must be EINVAL");
    void *v = valloc(10);
    check_align(v, 4096);
    void *pv = pvalloc(10);
    check_align(pv, 4096);
    if (malloc_usable_size(pv) < 4096) FAIL("pvalloc size");
    free(v);
    free(pv);
    /* realloc shrink/grow keeps contents */
    char *s = malloc(10);
    strcpy(s, "abcdefghi");
    s = realloc(s, 100000);
    if (strcmp(s, "abcdefghi")) FAIL("realloc grow lost data");
    s = realloc(s, 5);
    if (memcmp(s, "abcde", 5)) FAIL("realloc shrink lost data");
    if (realloc(s, 0) != NULL) FAIL("realloc(p, 0) should free and return NULL");
    /* many huge blocks, freed in mixed order (page heap coalescing) */
    void *hs[32];
    for (int i = 0; i < 32; i++) {
        hs[i] = malloc(((size_t)i + 1) * 300000);
        memset(hs[i], i, ((size_t)i + 1) * 300000);
    }
    for (int i = 0; i < 32; i += 2) free(hs[i]);
    for (int i = 1; i < 32; i += 2) free(hs[i]);
    void *g = malloc((size_t)1 << 30);      /* 1 GiB, untouched */
    if (!g) FAIL("1 GiB malloc");
    ((char *)g)[((size_t)1 << 30) - 1] = 1;
    free(g);
}

#define PRODUCED 200000
static void *queue[1024];
static volatile unsigned qhead, qtail;
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;

static void *consumer(void *arg) {
    (void)arg;
    unsigned got = 0;
    while (got < PRODUCED) {
        pthread_mutex_lock(&qm);
        while (qtail != qhead && got < PRODUCED) {
            void *p = queue[qtail % 1024];
            qtail++;
            if (*(unsigned *)p != got) FAIL("xthread payload %u != %u", *(unsigned *)p, got);
            free(p);
            got++;
        }
        pthread_mutex_unlock(&qm);
    }
    return NULL;
}

static void mode_xthread(void) {
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    for (unsigned i = 0; i < PRODUCED;) {
        pthread_mutex_lock(&qm);
        while (qhead - qtail < 1024 && i < PRODUCED) {
            unsigned *p = malloc(16 + (i % 200) * 8);
            *p = i++;
            queue[qhead % 1024] = p;
            qhead++;
        }
        pthread_mutex_unlock(&qm);
    }
    pthread_join(t, NULL);
}


static void mode_stats(void) {
    int (*stats)(struct st *) = (int (*)(struct st *))dlsym(RTLD_DEFAULT, "pprofpy_malloc_stats");
    void (*release)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "pprofpy_release_free_memory");
    int (*prop)(const char *, size_t *) =
        (int (*)(const char *, size_t *))dlsym(RTLD_DEFAULT, "pprofpy_malloc_get_numeric_property");
    if (!stats || !release || !prop) FAIL("statistics API not found");
    struct st a, b, c;
    stats(&a);
    enum { N = 20000 };
    static void *ps[N];
    for (int i = 0; i < N; i++) ps[i] = malloc(1000);
    stats(&b);
    if (b.allocated_bytes < a.allocated_bytes + N * 1000)
        FAIL("allocated grew by %zu only", b.allocated_bytes - a.allocated_bytes);
    if (b.heap_size < b.allocated_bytes) FAIL("heap smaller than allocated");
    for (int i = 0; i < N; i++) free(ps[i]);
    release();
    stats(&c);
    if (c.allocated_bytes > b.allocated_bytes - N * 1000 + (1 << 20))
        FAIL("allocated did not drop: %zu -> %zu", b.allocated_bytes, c.allocated_bytes);
    if (c.pageheap_free_bytes != 0) FAIL("release left %zu free resident bytes", c.pageheap_free_bytes);
    if (c.pageheap_unmapped_bytes < (size_t)N * 1000 / 2) FAIL("release did not unmap");
    size_t v;
    if (!prop("generic.current_allocated_bytes", &v) || v != c.allocated_bytes) FAIL("property mismatch");
    if (prop("no.such.property", &v)) FAIL("unknown property accepted");
    if (c.size_classes < 60 || c.fragmentation < 0 || c.fragmentation > 1) FAIL("odd stats");
    printf("allocated=%zu heap=%zu unmapped=%zu\n", c.allocated_bytes, c.heap_size, c.pageheap_unmapped_bytes);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "stress";
    if (!strcmp(mode, "stress")) {
        int threads = argc > 2 ? atoi(argv[2]) : 4;
        if (argc > 3) iters = atoi(argv[3]);
        run_threads(threads, stress_thread);
    } else if (!strcmp(mode, "fork")) {
        mode_fork();
    } else if (!strcmp(mode, "threadexit")) {
        mode_threadexit();
    } else if (!strcmp(mode, "edge")) {
        mode_edge();
    } else if (!strcmp(mode, "xthread")) {
        mode_xthread();
    } else if (!strcmp(mode, "stats")) {
        mode_stats();
    } else if (!strcmp(mode, "badfree")) {
        static char not_heap[64];
        free(not_heap + 16);
        FAIL("bad free returned");
    } else if (!strcmp(mode, "doublefree")) {
        void *p = malloc(1 << 20);
        free(p);
        free(p);
        FAIL("double free returned");
    } else if (!strcmp(mode, "interior")) {
        char *p = malloc(1 << 20);
        free(p + 8192);
        FAIL("interior free returned");
    } else {
        FAIL("unknown mode %s", mode);
    }
    printf("OK %s\n", mode);
    return 0;
}
