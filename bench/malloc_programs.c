/* Allocation-heavy programs for bench/bench_malloc.py, written for this
 * project in the style of mimalloc-bench's (each stresses one thing an
 * allocator must do well).  Usage:
 *
 *   malloc_programs NAME SCALE
 *
 * SCALE multiplies the amount of work (1 = the bench's default).  The
 * bench swaps allocators with LD_PRELOAD and measures CPU time and peak
 * RSS with wait4(); a program prints one line only when it has a figure
 * of its own (idle-release: the RSS left after an idle period).
 *
 *   larson        server-like: threads replace random slots with random
 *                 sizes (16-1000 B); each round hands a thread's slots to a
 *                 new thread, which frees what the old one allocated
 *   cache-scratch false sharing: each thread frees an object the main
 *                 thread allocated, then allocates one and writes it often
 *   malloc-large  20 live blocks of 5-25 MiB, replaced at random and
 *                 zero-filled (mimalloc-bench's malloc-large pattern)
 *   xmalloc       producer threads allocate 16-2048 B, consumer threads
 *                 free them (all frees cross threads)
 *   realloc-4k    one buffer grown by 4 KiB steps to 64 MiB (10 times)
 *   realloc-100   one buffer grown by 100-byte steps to 8 MiB (20 times)
 *   alloc-tree    builds and frees binary trees of 32 B nodes (many live
 *                 small objects, freed in allocation order)
 *   idle-release  frees 1 GiB of 64 KiB-1 MiB blocks, keeps 1 MiB live,
 *                 stays idle 3 s without calling the allocator, prints
 *                 "rss_after_idle_kib=N"
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static long scale = 1;

/* ---- larson ---- */
#define LARSON_THREADS 4
#define LARSON_SLOTS 2000
typedef struct {
    void *slots[LARSON_SLOTS];
    uint64_t seed;
    long ops;
} larson_t;

static void *larson_worker(void *vp) {
    larson_t *w = vp;
    for (long i = 0; i < w->ops; i++) {
        uint64_t r = rnd(&w->seed);
        size_t k = r % LARSON_SLOTS;
        size_t n = 16 + (size_t)((r >> 16) % 985);
        free(w->slots[k]);
        char *p = malloc(n);
        p[0] = p[n - 1] = (char)i;
        w->slots[k] = p;
    }
    return NULL;
}

static void run_larson(void) {
    larson_t w[LARSON_THREADS];
    for (int t = 0; t < LARSON_THREADS; t++) {
        memset(w[t].slots, 0, sizeof w[t].slots);
        w[t].seed = 0x9E3779B97F4A7C15ull * (t + 1);
        w[t].ops = 20000;
    }
    /* each round: new threads take over the previous round's slots */
    for (long round = 0; round < 200 * scale; round++) {
        pthread_t th[LARSON_THREADS];
        for (int t = 0; t < LARSON_THREADS; t++) pthread_create(&th[t], NULL, larson_worker, &w[t]);
        for (int t = 0; t < LARSON_THREADS; t++) pthread_join(th[t], NULL);
        /* rotate ownership so frees cross threads */
        larson_t tmp = w[0];
        for (int t = 0; t < LARSON_THREADS - 1; t++) w[t] = w[t + 1];
        w[LARSON_THREADS - 1] = tmp;
    }
    for (int t = 0; t < LARSON_THREADS; t++)
        for (int k = 0; k < LARSON_SLOTS; k++) free(w[t].slots[k]);
}

/* ---- cache-scratch ---- */
#define SCRATCH_THREADS 2
static void *scratch_objs[SCRATCH_THREADS];

static void *scratch_worker(void *vp) {
    long id = (long)vp;
    free(scratch_objs[id]);
    for (long rep = 0; rep < 20000 * scale; rep++) {
        volatile char *p = malloc(8);
        for (int i = 0; i < 20000; i++) {
            p[0]++;
            p[7]++;
        }
        free((void *)p);
    }
    return NULL;
}

static void run_cache_scratch(void) {
    pthread_t th[SCRATCH_THREADS];
    for (long t = 0; t < SCRATCH_THREADS; t++) scratch_objs[t] = malloc(8);
    for (long t = 0; t < SCRATCH_THREADS; t++) pthread_create(&th[t], NULL, scratch_worker, (void *)t);
    for (long t = 0; t < SCRATCH_THREADS; t++) pthread_join(th[t], NULL);
}

/* ---- malloc-large ---- */
static void run_malloc_large(void) {
    enum { N = 20 };
    const size_t lo = (size_t)5 << 20, hi = (size_t)25 << 20;
    char *buf[N] = {0};
    uint64_t s = 42;
    for (long i = 0; i < 500 * scale; i++) {
        int k = (int)(rnd(&s) % N);
        size_t n = lo + (size_t)(rnd(&s) % (hi - lo + 1));
        char *p = malloc(n);
        memset(p, 0, n);            /* as make_unique<char[]>(n) does */
        free(buf[k]);               /* the old one goes after the new one exists */
        buf[k] = p;
    }
    for (int k = 0; k < N; k++) free(buf[k]);
}

/* ---- xmalloc ---- */
#define XM_PAIRS 2
#define XM_RING 4096
typedef struct {
    void *volatile ring[XM_RING];
    long count;
} xm_queue_t;
static xm_queue_t xm_q[XM_PAIRS];

static void *xm_producer(void *vp) {
    xm_queue_t *q = vp;
    uint64_t s = (uintptr_t)vp | 1;
    unsigned long head = 0;
    for (long i = 0; i < q->count; i++) {
        size_t n = 16 + (size_t)(rnd(&s) % 2033);
        char *p = malloc(n);
        p[0] = 1;
        while (q->ring[head % XM_RING]) sched_yield();
        q->ring[head % XM_RING] = p;
        head++;
    }
    return NULL;
}

static void *xm_consumer(void *vp) {
    xm_queue_t *q = vp;
    unsigned long tail = 0;
    for (long got = 0; got < q->count;) {
        void *p = q->ring[tail % XM_RING];
        if (!p) {
            sched_yield();
            continue;
        }
        q->ring[tail % XM_RING] = NULL;
        tail++;
        free(p);
        got++;
    }
    return NULL;
}

static void run_xmalloc(void) {
    pthread_t th[2 * XM_PAIRS];
    for (int i = 0; i < XM_PAIRS; i++) {
        xm_q[i].count = 3000000 * scale;
        pthread_create(&th[2 * i], NULL, xm_producer, &xm_q[i]);
        pthread_create(&th[2 * i + 1], NULL, xm_consumer, &xm_q[i]);
    }
    for (int i = 0; i < 2 * XM_PAIRS; i++) pthread_join(th[i], NULL);
}

/* ---- realloc growth ---- */
static void run_realloc(size_t step, size_t final, long reps) {
    for (long rep = 0; rep < reps * scale; rep++) {
        size_t size = 0;
        char *p = NULL;
        while (size < final) {
            size_t next = size + step;
            p = realloc(p, next);
            p[size] = p[next - 1] = 1;     /* touch the new part's ends */
            size = next;
        }
        free(p);
    }
}

/* ---- alloc-tree ---- */
typedef struct node { struct node *l, *r; long v; long pad; } node_t;

static node_t *tree(int depth) {
    node_t *n = malloc(sizeof *n);
    n->v = depth;
    n->l = depth ? tree(depth - 1) : NULL;
    n->r = depth ? tree(depth - 1) : NULL;
    return n;
}

static long tree_free(node_t *n) {
    if (!n) return 0;
    long s = n->v + tree_free(n->l) + tree_free(n->r);
    free(n);
    return s;
}

static void run_alloc_tree(void) {
    long sum = 0;
    for (long i = 0; i < 150 * scale; i++) sum += tree_free(tree(16));
    if (sum == 42) puts("");
}

/* ---- idle-release ---- */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void run_idle_release(void) {
    enum { MAXB = 4096 };
    static void *blocks[MAXB];
    uint64_t s = 7;
    size_t total = 0;
    int n = 0;
    while (total < ((size_t)1 << 30) && n < MAXB) {
        size_t sz = ((size_t)64 << 10) + (size_t)(rnd(&s) % (((size_t)1 << 20) - ((size_t)64 << 10)));
        blocks[n] = malloc(sz);
        memset(blocks[n], 1, sz);
        total += sz;
        n++;
    }
    void *keep = malloc(1 << 20);
    memset(keep, 1, 1 << 20);
    for (int i = 0; i < n; i++) free(blocks[i]);
    struct timespec ts = {3, 0};
    while (nanosleep(&ts, &ts) != 0) {}
    printf("rss_after_idle_kib=%ld\n", rss_kib());
    free(keep);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (argc >= 3) scale = atol(argv[2]) > 0 ? atol(argv[2]) : 1;
    const char *w = argv[1];
    if (!strcmp(w, "larson")) run_larson();
    else if (!strcmp(w, "cache-scratch")) run_cache_scratch();
    else if (!strcmp(w, "malloc-large")) run_malloc_large();
    else if (!strcmp(w, "xmalloc")) run_xmalloc();
    else if (!strcmp(w, "realloc-4k")) run_realloc(4096, (size_t)64 << 20, 10);
    else if (!strcmp(w, "realloc-100")) run_realloc(100, (size_t)8 << 20, 20);
    else if (!strcmp(w, "alloc-tree")) run_alloc_tree();
    else if (!strcmp(w, "idle-release")) run_idle_release();
    else return 2;
    return 0;
}
