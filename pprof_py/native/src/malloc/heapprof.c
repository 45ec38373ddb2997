/* Heap profiler and leak checker.
 *
 * Recorded allocations live in a hash map (address -> size, stack bucket)
 * and stack buckets in a second hash table; both use the allocator's
 * metadata arena, never malloc, and every entry point sets the per-thread
 * recursion guard pp_busy so the profiler never records itself.  Files are
 * written with no allocator or profiler lock held.
 *
 * Stacks are unwound from the entry point's frame with DWARF call-frame
 * information (common/cfi.c), the object holding each return address found
 * with glibc's _dl_find_object (lock-free and allocation-free, made for
 * unwinders), so stacks are complete in code built without frame pointers;
 * frames without unwind tables (or a glibc before 2.35) fall back to frame
 * pointers.  Every stack read is bounded by the thread's stack ([lo, hi)
 * from __libc_stack_end for the main thread, pthread_getattr_np for others)
 * and the walk must move up the stack, so a damaged stack ends the walk
 * instead of faulting.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "cfi.h"
#include "heap-profiler.h"
#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

volatile int pp_prof_mode;
volatile int pp_any_sampled;
volatile size_t pp_sample_rate;

static int prof_running;            /* HEAPPROFILE / HeapProfilerStart active */
static int leak_check_on;           /* HEAPCHECK */
static char prof_prefix[1024];
static int dump_count;
static pid_t prof_pid;
static size_t alloc_interval = (size_t)1 << 30;
static size_t inuse_interval = (size_t)100 << 20;
static size_t next_alloc_dump, inuse_high_water;
static pp_lock_t dump_lock;

static size_t total_alloc_objs, total_alloc_bytes, total_free_objs, total_free_bytes;

/* ------------------------------------------------------------------ */
/* environment without malloc (works before libc has set up environ)    */

static char env_buf[65536];
static size_t env_len;
static int env_loaded;

const char *pp_getenv(const char *name) {
    extern char **environ;
    size_t nl = strlen(name);
    if (environ) {
        for (char **e = environ; *e; e++)
            if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=') return *e + nl + 1;
        return NULL;
    }
    if (!env_loaded) {
        env_loaded = 1;
        int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r;
            while (env_len < sizeof env_buf - 1 &&
                   (r = read(fd, env_buf + env_len, sizeof env_buf - 1 - env_len)) > 0)
                env_len += (size_t)r;
            close(fd);
        }
    }
    for (size_t i = 0; i < env_len;) {
        const char *e = env_buf + i;
        size_t l = strnlen(e, env_len - i);
        if (strncmp(e, name, nl) == 0 && e[nl] == '=') return e + nl + 1;
        i += l + 1;
    }
    return NULL;
}

static size_t env_size(const char *name, size_t dflt) {
    const char *v = pp_getenv(name);
    if (!v || *v < '0' || *v > '9') return dflt;
    size_t x = 0;
    for (; *v >= '0' && *v <= '9'; v++) x = x * 10 + (size_t)(*v - '0');
    return x;
}

/* ------------------------------------------------------------------ */
/* sampling                                                             */

ssize_t pp_next_sample_interval(tcache_t *tc) {
    int mode = pp_prof_mode;
    if (mode == PROF_OFF) return (ssize_t)1 << 62;
    if (mode == PROF_ALL) return 0;
    /* exponential byte interval with mean = rate: an allocation of s bytes
       is sampled with probability 1 - exp(-s / rate) */
    uint64_t r = pp_random(&tc->rng) >> 11;                 /* 53 random bits */
    double u = ((double)r + 1.0) / 9007199254740993.0;      /* (0, 1] */
    double v = -log(u) * (double)pp_sample_rate;
    if (v > 1e15) v = 1e15;
    return (ssize_t)v;
}

/* ------------------------------------------------------------------ */
/* stack buckets and the allocation map                                 */

typedef struct bucket {
    struct bucket *next;
    uint64_t hash;
    size_t alloc_objs, alloc_bytes, free_objs, free_bytes;
    int depth;
    void *pcs[MAX_STACK_DEPTH];
} bucket_t;

typedef struct node {
    struct node *next;
    uintptr_t ptr;
    size_t size;
    bucket_t *bucket;
} node_t;

#define BUCKET_HEADS (1 << 16)
#define BUCKET_STRIPES 64
#define MAP_HEADS (1 << 20)
#define MAP_STRIPES 256

static bucket_t **bucket_heads;
static pp_lock_t bucket_locks[BUCKET_STRIPES];
static node_t **map_heads;
static struct {
    pp_lock_t lock;
    node_t *free_nodes;
} __attribute__((aligned(64))) map_stripes[MAP_STRIPES];
static pp_lock_t tables_lock;
static size_t bucket_count;

static int tables_ready(void) {
    if (__atomic_load_n(&map_heads, __ATOMIC_ACQUIRE)) return 1;
    pp_lock(&tables_lock);
    if (!map_heads) {
        bucket_t **b = pp_os_map(sizeof(bucket_t *) * BUCKET_HEADS);
        node_t **m = pp_os_map(sizeof(node_t *) * MAP_HEADS);
        if (b && m) {
            bucket_heads = b;
            __atomic_store_n(&map_heads, m, __ATOMIC_RELEASE);
        }
    }
    pp_unlock(&tables_lock);
    return map_heads != NULL;
}

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static bucket_t *bucket_get(void **pcs, int depth) {
    uint64_t h = (uint64_t)depth;
    for (int i = 0; i < depth; i++) h = mix(h ^ (uintptr_t)pcs[i]);
    size_t idx = h & (BUCKET_HEADS - 1);
    pp_lock_t *l = &bucket_locks[idx % BUCKET_STRIPES];
    pp_lock(l);
    for (bucket_t *b = bucket_heads[idx]; b; b = b->next)
        if (b->hash == h && b->depth == depth && memcmp(b->pcs, pcs, sizeof(void *) * (size_t)depth) == 0) {
            pp_unlock(l);
            return b;
        }
    bucket_t *b = pp_meta_alloc(sizeof(bucket_t));
    if (b) {
        memset(b, 0, sizeof *b);
        b->hash = h;
        b->depth = depth;
        memcpy(b->pcs, pcs, sizeof(void *) * (size_t)depth);
        b->next = bucket_heads[idx];
        bucket_heads[idx] = b;
        __atomic_add_fetch(&bucket_count, 1, __ATOMIC_RELAXED);
    }
    pp_unlock(l);
    return b;
}

#if defined(__x86_64__) && defined(DLFO_STRUCT_HAS_EH_DBASE)
#define HAVE_DL_FIND_OBJECT 1
extern int _dl_find_object(void *pc, struct dl_find_object *result) __attribute__((weak));
#endif

struct byte_range {
    uintptr_t lo, hi;
};

static int range_readable(const void *ctx, uintptr_t addr, size_t len) {
    const struct byte_range *r = ctx;
    return addr >= r->lo && addr <= r->hi && len <= r->hi - addr;
}

/* Unwind rows by return address.  Decoding a frame's rule (finding the
   object, its FDE and CIE, running the call-frame program) costs about
   200 ns, and the same call sites allocate over and over, so computed rows
   are kept in a direct-mapped cache shared by all threads.  Each entry is
   guarded by a sequence number: a writer takes it from even to odd with a
   compare-and-swap (and skips the entry if another writer holds it), a
   reader retries nothing and treats a changing or odd number as a miss.
   "No rule here" is cached too, so frames without tables cost one lookup.
   A library unloaded and another loaded at the same address could leave
   stale rows; they can only make a stack wrong (every stack read is still
   bounds-checked), never fault. */
#define ROW_CACHE 4096
enum { ROW_NONE = 0, ROW_OK = 1 };
struct row_entry {
    uint32_t seq;
    uint32_t state;
    uintptr_t pc;
    struct pp_cfi_row row;
};
static struct row_entry row_cache[ROW_CACHE];

static int row_lookup(uintptr_t pc, struct pp_cfi_row *row, uint32_t *state) {
    struct row_entry *e = &row_cache[(pc * 0x9e3779b97f4a7c15ull) >> 52];
    uint32_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
    if (s1 & 1) return 0;
    uintptr_t key = e->pc;
    uint32_t st = e->state;
    struct pp_cfi_row r = e->row;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != s1 || key != pc || s1 == 0) return 0;
    *row = r;
    *state = st;
    return 1;
}

static void row_store(uintptr_t pc, const struct pp_cfi_row *row, uint32_t state) {
    struct row_entry *e = &row_cache[(pc * 0x9e3779b97f4a7c15ull) >> 52];
    uint32_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
    if ((s & 1) || !__atomic_compare_exchange_n(&e->seq, &s, s + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    e->pc = pc;
    e->state = state;
    e->row = *row;
    __atomic_store_n(&e->seq, s + 2, __ATOMIC_RELEASE);
}

/* The unwind row for return address pc from the tables of the object
   holding it; 0 when there are none. */
static int row_for(uintptr_t pc, struct pp_cfi_row *row) {
    uint32_t state;
    if (row_lookup(pc, row, &state)) return state == ROW_OK;
    int ok = 0;
#ifdef HAVE_DL_FIND_OBJECT
    struct dl_find_object fo;
    if (_dl_find_object && _dl_find_object((void *)(pc - 1), &fo) == 0 && fo.dlfo_eh_frame) {
        /* .eh_frame follows .eh_frame_hdr in the object's read-only segment */
        struct byte_range r = {(uintptr_t)fo.dlfo_eh_frame, (uintptr_t)fo.dlfo_map_end};
        uintptr_t table, count;
        if (range_readable(&r, r.lo, 12) && pp_cfi_parse_hdr(r.lo, &table, &count)) {
            struct pp_cfi_source src = {r.lo, table, count, range_readable, &r};
            ok = pp_cfi_row(&src, pc, 0, row);
        }
    }
#endif
    if (!ok) memset(row, 0, sizeof *row);
    row_store(pc, row, ok ? ROW_OK : ROW_NONE);
    return ok;
}

/* One frame up with DWARF rules; 0 when there are none for pc
   (pp_cfi_apply's other results pass through). */
static int cfi_step(uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, uintptr_t lo, uintptr_t hi) {
    struct pp_cfi_row row;
    if (!row_for(*pc, &row)) return 0;
    return pp_cfi_apply(&row, pc, sp, fp, lo, hi);
}

/* frame: the allocation entry point's own frame (built with a frame
   pointer): [frame] = the caller's rbp, [frame + 8] = the return address
   into the caller, whose stack pointer after the return is frame + 16. */
static int walk_stack(void *frame, uintptr_t lo, uintptr_t hi, void **pcs, int max) {
    uintptr_t f = (uintptr_t)frame;
    uintptr_t pc = ((uintptr_t *)f)[1], sp = f + 16, fp = ((uintptr_t *)f)[0];
    int n = 0;
    pcs[n++] = (void *)pc;
    if (!hi || f >= hi || f < lo) return n;
    while (n < max) {
        int r = cfi_step(&pc, &sp, &fp, lo, hi);
        if (r < 0) break;
        if (r == 0) {
            /* frame pointers: [fp] = caller's rbp, [fp + 8] = return address */
            if ((fp & 7) || fp < sp || fp + 16 > hi || fp - sp > ((size_t)8 << 20)) break;
            uintptr_t next = ((uintptr_t *)fp)[0];
            pc = ((uintptr_t *)fp)[1];
            sp = fp + 16;
            fp = next;
        }
        if (pc < 4096) break;
        pcs[n++] = (void *)pc;
    }
    return n;
}

static void maybe_dump(void);

/* Dump thresholds compare the real volume: a sampled object stands for
   size / P(sampled) bytes, P = 1 - exp(-size / rate). */
static size_t estimated_bytes(size_t size) {
    if (pp_prof_mode != PROF_SAMPLED || !pp_sample_rate || !size) return size;
    double p = 1.0 - exp(-(double)size / (double)pp_sample_rate);
    return p > 0 ? (size_t)((double)size / p) : size;
}

void pp_prof_record(void *p, size_t size, void *frame) {
    tcache_t *tc = pp_tc;
    if (!tc || pp_busy || !tables_ready()) return;
    pp_busy = 1;
    void *pcs[MAX_STACK_DEPTH];
    int depth = walk_stack(frame, tc->stack_lo, tc->stack_hi, pcs, MAX_STACK_DEPTH);
    bucket_t *b = bucket_get(pcs, depth);
    if (b) {
        size_t idx = mix((uintptr_t)p) & (MAP_HEADS - 1);
        int st = (int)(idx % MAP_STRIPES);
        pp_lock(&map_stripes[st].lock);
        node_t *nd = map_stripes[st].free_nodes;
        if (nd) map_stripes[st].free_nodes = nd->next;
        pp_unlock(&map_stripes[st].lock);
        if (!nd) nd = pp_meta_alloc(sizeof(node_t));
        if (nd) {
            nd->ptr = (uintptr_t)p;
            nd->size = size;
            nd->bucket = b;
            span_t *s = pp_span_of(p);
            if (!pp_any_sampled) __atomic_store_n(&pp_any_sampled, 1, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&s->sampled, 1, __ATOMIC_RELAXED);
            pp_lock(&map_stripes[st].lock);
            nd->next = map_heads[idx];
            map_heads[idx] = nd;
            pp_unlock(&map_stripes[st].lock);
            __atomic_add_fetch(&b->alloc_objs, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&b->alloc_bytes, size, __ATOMIC_RELAXED);
            __atomic_add_fetch(&total_alloc_objs, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&total_alloc_bytes, estimated_bytes(size), __ATOMIC_RELAXED);
        }
    }
    pp_busy = 0;
    if (prof_running) maybe_dump();
}

void pp_prof_forget(void *p, span_t *s) {
    if (!map_heads) return;
    size_t idx = mix((uintptr_t)p) & (MAP_HEADS - 1);
    int st = (int)(idx % MAP_STRIPES);
    pp_lock(&map_stripes[st].lock);
    node_t **pp = &map_heads[idx], *nd;
    while ((nd = *pp) && nd->ptr != (uintptr_t)p) pp = &nd->next;
    if (nd) {
        *pp = nd->next;
        bucket_t *b = nd->bucket;
        size_t size = nd->size;
        nd->next = map_stripes[st].free_nodes;
        map_stripes[st].free_nodes = nd;
        pp_unlock(&map_stripes[st].lock);
        __atomic_sub_fetch(&s->sampled, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->free_objs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->free_bytes, size, __ATOMIC_RELAXED);
        __atomic_add_fetch(&total_free_objs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&total_free_bytes, estimated_bytes(size), __ATOMIC_RELAXED);
        return;
    }
    pp_unlock(&map_stripes[st].lock);
}

void pp_prof_lock_all(void) {
    pp_lock(&dump_lock);
    pp_lock(&tables_lock);
    for (int i = 0; i < BUCKET_STRIPES; i++) pp_lock(&bucket_locks[i]);
    for (int i = 0; i < MAP_STRIPES; i++) pp_lock(&map_stripes[i].lock);
}

void pp_prof_unlock_all(void) {
    for (int i = MAP_STRIPES - 1; i >= 0; i--) pp_unlock(&map_stripes[i].lock);
    for (int i = BUCKET_STRIPES - 1; i >= 0; i--) pp_unlock(&bucket_locks[i]);
    pp_unlock(&tables_lock);
    pp_unlock(&dump_lock);
}

/* ------------------------------------------------------------------ */
/* growable text buffer on mmap                                         */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static int sb_reserve(sbuf_t *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : (size_t)1 << 16;
    while (cap < b->len + more + 1) cap *= 2;
    char *n = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (n == MAP_FAILED) return 0;
    if (b->p) {
        memcpy(n, b->p, b->len);
        munmap(b->p, b->cap);
    }
    b->p = n;
    b->cap = cap;
    return 1;
}

static void sb_add(sbuf_t *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_num(sbuf_t *b, size_t v, int width) {
    char t[32];
    size_t n = pp_fmt_u(t, v);
    for (int i = (int)n; i < width; i++) sb_add(b, " ", 1);
    sb_add(b, t, n);
}

static void sb_free(sbuf_t *b) {
    if (b->p) munmap(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void sb_file(sbuf_t *b, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
        if (!sb_reserve(b, 65536)) break;
        ssize_t r = read(fd, b->p + b->len, 65536);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        b->len += (size_t)r;
        b->p[b->len] = 0;
    }
    close(fd);
}

/* profile line: "<inuse_objs>: <inuse_bytes> [<alloc_objs>: <alloc_bytes>] @ pcs" */
static void sb_counts(sbuf_t *b, size_t io, size_t ib, size_t ao, size_t ab) {
    sb_num(b, io, 6);
    sb_str(b, ": ");
    sb_num(b, ib, 8);
    sb_str(b, " [");
    sb_num(b, ao, 6);
    sb_str(b, ": ");
    sb_num(b, ab, 8);
    sb_str(b, "] @");
}

static void sb_pcs(sbuf_t *b, void *const *pcs, int depth) {
    char t[32];
    for (int i = 0; i < depth; i++) {
        sb_add(b, " ", 1);
        sb_add(b, t, pp_fmt_x(t, (uintptr_t)pcs[i]));
    }
    sb_add(b, "\n", 1);
}

/* ------------------------------------------------------------------ */
/* sorting (heap sort; libc qsort may allocate)                         */

typedef struct {
    uint64_t key;
    void *val;
    size_t extra, extra2;
} item_t;

static void sift(item_t *a, size_t start, size_t n) {
    size_t root = start;
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && a[child + 1].key > a[child].key) child++;
        if (a[root].key >= a[child].key) return;
        item_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void sort_items(item_t *a, size_t n) {
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        item_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift(a, 0, end);
    }
}

static void *big_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------ */
/* profile text                                                         */

static void build_profile(sbuf_t *out) {
    size_t nb = __atomic_load_n(&bucket_count, __ATOMIC_RELAXED) + 16;
    item_t *items = big_alloc(nb * sizeof(item_t));
    size_t n = 0;
    size_t io = 0, ib = 0, ao = 0, ab = 0;
    if (items && bucket_heads) {
        for (size_t i = 0; i < BUCKET_HEADS && n < nb; i++) {
            pp_lock(&bucket_locks[i % BUCKET_STRIPES]);
            for (bucket_t *b = bucket_heads[i]; b && n < nb; b = b->next) {
                size_t a_o = __atomic_load_n(&b->alloc_objs, __ATOMIC_RELAXED);
                size_t a_b = __atomic_load_n(&b->alloc_bytes, __ATOMIC_RELAXED);
                size_t f_o = __atomic_load_n(&b->free_objs, __ATOMIC_RELAXED);
                size_t f_b = __atomic_load_n(&b->free_bytes, __ATOMIC_RELAXED);
                if (!a_o) continue;
                if (f_o > a_o) f_o = a_o;
                if (f_b > a_b) f_b = a_b;
                io += a_o - f_o;
                ib += a_b - f_b;
                ao += a_o;
                ab += a_b;
                items[n].key = ~(uint64_t)(a_b - f_b);     /* largest in-use first */
                items[n].val = b;
                n++;
            }
            pp_unlock(&bucket_locks[i % BUCKET_STRIPES]);
        }
        sort_items(items, n);
    }
    sb_str(out, "heap profile: ");
    sb_counts(out, io, ib, ao, ab);
    if (pp_prof_mode == PROF_SAMPLED) {
        sb_str(out, " heap_v2/");
        sb_num(out, pp_sample_rate, 0);
        sb_str(out, "\n");
    } else {
        sb_str(out, " heapprofile\n");
    }
    for (size_t i = 0; i < n; i++) {
        bucket_t *b = items[i].val;
        size_t a_o = b->alloc_objs, a_b = b->alloc_bytes, f_o = b->free_objs, f_b = b->free_bytes;
        if (f_o > a_o) f_o = a_o;
        if (f_b > a_b) f_b = a_b;
        sb_counts(out, a_o - f_o, a_b - f_b, a_o, a_b);
        sb_pcs(out, b->pcs, b->depth);
    }
    sb_str(out, "\nMAPPED_LIBRARIES:\n");
    sb_file(out, "/proc/self/maps");
    if (items) munmap(items, nb * sizeof(item_t));
}

static int write_file(const char *path, const char *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        data += w;
        len -= (size_t)w;
    }
    close(fd);
    return 0;
}

static void dump_locked(const char *reason) {
    int busy = pp_busy;
    pp_busy = 1;
    char path[1200], num[16];
    dump_count++;
    size_t pl = strlen(prof_prefix);
    memcpy(path, prof_prefix, pl);
    path[pl++] = '.';
    if (getpid() != prof_pid) {              /* a forked child: <prefix>.<pid>.NNNN.heap */
        pl += pp_fmt_u(path + pl, (size_t)getpid());
        path[pl++] = '.';
    }
    size_t nl = pp_fmt_u(num, (size_t)dump_count);
    for (size_t i = nl; i < 4; i++) path[pl++] = '0';
    memcpy(path + pl, num, nl + 1);
    strcat(path, ".heap");
    sbuf_t b = {0};
    build_profile(&b);
    if (b.p) write_file(path, b.p, b.len);
    sb_free(&b);
    sbuf_t msg = {0};
    sb_str(&msg, "Dumping heap profile to ");
    sb_str(&msg, path);
    sb_str(&msg, " (");
    sb_str(&msg, reason);
    sb_str(&msg, ")\n");
    if (msg.p) pp_write_str(2, msg.p);
    sb_free(&msg);
    pp_busy = busy;
}

static void maybe_dump(void) {
    size_t alloc = __atomic_load_n(&total_alloc_bytes, __ATOMIC_RELAXED);
    size_t inuse = alloc - __atomic_load_n(&total_free_bytes, __ATOMIC_RELAXED);
    int due_alloc = alloc_interval && alloc >= next_alloc_dump;
    int due_inuse = inuse_interval && inuse >= inuse_high_water + inuse_interval;
    if (!due_alloc && !due_inuse) return;
    if (__atomic_exchange_n(&dump_lock.v, 1, __ATOMIC_ACQUIRE)) return;   /* someone else dumps */
    char reason[128];
    size_t n = 0;
    if (due_alloc) {
        n += pp_fmt_u(reason + n, alloc >> 20);
        memcpy(reason + n, " MB allocated cumulatively, ", 28);
        n += 28;
    }
    n += pp_fmt_u(reason + n, inuse >> 20);
    memcpy(reason + n, " MB currently in use", 21);
    while (next_alloc_dump <= alloc) next_alloc_dump += alloc_interval;
    if (inuse > inuse_high_water) inuse_high_water = inuse;
    dump_locked(reason);
    pp_unlock(&dump_lock);
}

/* ------------------------------------------------------------------ */
/* public heap-profiler API                                             */

static void start_profiler(const char *prefix) {
    size_t l = strlen(prefix);
    if (l >= sizeof prof_prefix) l = sizeof prof_prefix - 1;
    memcpy(prof_prefix, prefix, l);
    prof_prefix[l] = 0;
    prof_pid = getpid();
    alloc_interval = env_size("HEAP_PROFILE_ALLOCATION_INTERVAL", (size_t)1 << 30);
    inuse_interval = env_size("HEAP_PROFILE_INUSE_INTERVAL", (size_t)100 << 20);
    next_alloc_dump = total_alloc_bytes + alloc_interval;
    inuse_high_water = total_alloc_bytes - total_free_bytes;
    size_t rate = env_size("TCMALLOC_SAMPLE_PARAMETER", 0);
    if (leak_check_on) rate = 0;              /* the leak checker needs every object */
    pp_sample_rate = rate;
    tables_ready();
    prof_running = 1;
    pp_prof_mode = rate ? PROF_SAMPLED : PROF_ALL;
    pp_tc_reset_all_samples();
}

EXPORT void HeapProfilerStart(const char *prefix) {
    if (!pp_inited) pp_init();
    if (prof_running || !prefix) return;
    start_profiler(prefix);
    pp_write_str(2, "Starting tracking the heap\n");
}

EXPORT int IsHeapProfilerRunning(void) { return prof_running; }

EXPORT void HeapProfilerStop(void) {
    if (!prof_running) return;
    prof_running = 0;
    if (!leak_check_on) pp_prof_mode = PROF_OFF;
}

EXPORT void HeapProfilerDump(const char *reason) {
    if (!prof_running) return;
    pp_lock(&dump_lock);
    dump_locked(reason ? reason : "requested");
    pp_unlock(&dump_lock);
}

EXPORT char *GetHeapProfile(void) {
    int busy = pp_busy;
    pp_busy = 1;
    sbuf_t b = {0};
    build_profile(&b);
    char *r = malloc(b.len + 1);
    if (r) {
        memcpy(r, b.p ? b.p : "", b.len);
        r[b.len] = 0;
    }
    sb_free(&b);
    pp_busy = busy;
    return r;
}

void pp_prof_init_from_env(void) {
    const char *hc = pp_getenv("HEAPCHECK");
    if (hc && *hc && strcmp(hc, "0") != 0 && strcmp(hc, "false") != 0) {
        leak_check_on = 1;
        tables_ready();
        pp_prof_mode = PROF_ALL;
    }
    const char *hp = pp_getenv("HEAPPROFILE");
    if (hp && *hp) start_profiler(hp);
    /* like tcmalloc, TCMALLOC_SAMPLE_PARAMETER alone turns sampling on, for
       MallocExtension::GetHeapSample() (no files are written) */
    size_t rate = env_size("TCMALLOC_SAMPLE_PARAMETER", 0);
    if (pp_prof_mode == PROF_OFF && rate && tables_ready()) {
        pp_sample_rate = rate;
        pp_prof_mode = PROF_SAMPLED;
    }
}

/* ------------------------------------------------------------------ */
/* leak checker                                                         */

typedef struct {
    uintptr_t addr;
    size_t size;
    bucket_t *bucket;
    int marked;
} obj_t;

static obj_t *objs;
static size_t nobjs;
static size_t *work;
static size_t nwork;
static uintptr_t heap_lo, heap_hi;

static inline void consider(uintptr_t w) {
    if (w < heap_lo || w >= heap_hi) return;
    size_t lo = 0, hi = nobjs;            /* last object with addr <= w */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (objs[mid].addr <= w) lo = mid;
        else hi = mid;
    }
    obj_t *o = &objs[lo];
    size_t sz = o->size ? o->size : 1;
    if (w >= o->addr && w < o->addr + sz && !o->marked) {
        o->marked = 1;
        work[nwork++] = lo;
    }
}

static void scan_words(const char *p, size_t len) {
    const uintptr_t *w = (const uintptr_t *)(((uintptr_t)p + 7) & ~(uintptr_t)7);
    const uintptr_t *end = (const uintptr_t *)((uintptr_t)(p + len) & ~(uintptr_t)7);
    for (; w < end; w++) consider(*w);
}

static char *scan_buf;
#define SCAN_BUF (1 << 16)

/* Scan another region of our own address space safely: process_vm_readv
   fails with EFAULT instead of faulting on memory that is gone. */
static void scan_region(uintptr_t start, uintptr_t end) {
    static int direct;
    pid_t pid = getpid();
    while (start < end) {
        size_t len = end - start > SCAN_BUF ? SCAN_BUF : end - start;
        if (direct) {
            scan_words((const char *)start, len);
        } else {
            struct iovec local = {scan_buf, len}, remote = {(void *)start, len};
            ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (r < 0 && (errno == ENOSYS || errno == EPERM)) {
                direct = 1;
                continue;
            }
            if (r > 0) scan_words(scan_buf, (size_t)r);
            if (r < (ssize_t)len) {                /* skip the unreadable page */
                start = ((start + (r > 0 ? (size_t)r : 0)) & ~(uintptr_t)4095) + 4096;
                continue;
            }
        }
        start += len;
    }
}

static void scan_region_minus_owned(uintptr_t start, uintptr_t end, uintptr_t *os, uintptr_t *oe, size_t no) {
    /* subtract the allocator's own regions (heap pages, metadata, tables) */
    for (size_t i = 0; i < no; i++) {
        if (oe[i] <= start || os[i] >= end) continue;
        if (os[i] > start) scan_region_minus_owned(start, os[i], os, oe, no);
        if (oe[i] < end) scan_region_minus_owned(oe[i], end, os, oe, no);
        return;
    }
    scan_region(start, end);
}

static uintptr_t parse_hex(const char **s) {
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else break;
    }
    return v;
}

/* Our own library's segments (its .data/.bss hold stale free-list pointers
   into the heap) are excluded from the roots. */
static int own_segments(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    uintptr_t **io = arg;               /* io[0] = starts, io[1] = ends, io[2] = count/cap */
    uintptr_t me = (uintptr_t)&pp_prof_mode;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (me >= a && me < a + ph->p_memsz) mine = 1;
    }
    if (!mine) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || io[2][0] >= io[2][1]) continue;
        uintptr_t a = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)4095;
        uintptr_t e = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~(uintptr_t)4095;
        io[0][io[2][0]] = a;
        io[1][io[2][0]] = e;
        io[2][0]++;
    }
    return 1;
}

static void scan_roots(uintptr_t sp) {
    sbuf_t maps = {0};
    sb_file(&maps, "/proc/self/maps");
    size_t cap = 4096;
    uintptr_t *os = pp_os_map(cap * 2 * sizeof(uintptr_t));
    if (!os || !maps.p) return;
    uintptr_t *oe = os + cap;
    size_t no = pp_owned_regions(os, oe, cap - 300);
    uintptr_t counts[2] = {no, cap};
    uintptr_t *io[3] = {os, oe, counts};
    dl_iterate_phdr(own_segments, io);
    no = counts[0];
    /* exited threads' cached stacks: stale frames are not roots */
    uintptr_t *dead_tp = pp_os_map(300 * sizeof(uintptr_t));
    size_t ndead = dead_tp ? pp_dead_stacks(os + no, oe + no, dead_tp, 300) : 0;
    size_t first_dead = no;
    no += ndead;
    for (const char *line = maps.p; line && *line;) {
        const char *eol = strchr(line, '\n');
        const char *s = line;
        uintptr_t start = parse_hex(&s);
        s++;
        uintptr_t end = parse_hex(&s);
        s++;
        int readable = s[0] == 'r', writable = s[1] == 'w', priv = s[3] == 'p';
        const char *path = eol ? memchr(s, '/', (size_t)(eol - s)) : strchr(s, '/');
        const char *br = eol ? memchr(s, '[', (size_t)(eol - s)) : strchr(s, '[');
        int special = br && (strncmp(br, "[vvar", 5) == 0 || strncmp(br, "[vsyscall", 9) == 0 ||
                             strncmp(br, "[vdso", 5) == 0);
        int is_stack = br && strncmp(br, "[stack]", 7) == 0;
        int device = path && strncmp(path, "/dev/", 5) == 0;
        if (readable && writable && priv && !special && !device) {
            if (is_stack && sp >= start && sp < end) start = sp & ~(uintptr_t)7;
            scan_region_minus_owned(start, end, os, oe, no);
        }
        line = eol ? eol + 1 : NULL;
    }
    for (size_t i = 0; i < ndead; i++) {
        /* only the thread control block (at the thread pointer; it holds the
           DTV that glibc reuses with the cached stack); the thread's static
           TLS and frames below it are dead */
        uintptr_t tp = dead_tp[i], hi = oe[first_dead + i];
        if (!tp || tp >= hi) continue;
        uintptr_t a = tp, e = tp + 4096 < hi ? tp + 4096 : hi;
        if (a < e) scan_region(a, e);
    }
    sb_free(&maps);
}

static void exe_path(char *out, size_t n) {
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    if (r < 0) r = 0;
    out[r] = 0;
}

static void symbolize(sbuf_t *b, void *pc) {
    char t[32];
    Dl_info info;
    sb_str(b, "\t@ ");
    sb_add(b, t, pp_fmt_x(t, (uintptr_t)pc));
    if (dladdr((char *)pc - 1, &info) && info.dli_fname) {
        if (info.dli_sname) {
            sb_str(b, " ");
            sb_str(b, info.dli_sname);
            sb_str(b, "+");
            sb_add(b, t, pp_fmt_x(t, (uintptr_t)pc - (uintptr_t)info.dli_saddr));
        }
        sb_str(b, " (");
        sb_str(b, info.dli_fname);
        sb_str(b, ")");
    }
    sb_str(b, "\n");
}

/* Registers of the other threads.  A pointer that lives only in a register
 * of a thread blocked in a system call sits in the kernel's saved copy of
 * that thread's registers, not in any memory the scan reads (gperftools
 * stops the threads with ptrace for the same reason).  We send every other
 * thread a real-time signal that the program does not use; the handler
 * copies the interrupted context's general registers into a preallocated
 * slot and counts itself done, which only stores words, so it is
 * async-signal-safe and cannot deadlock on anything the thread holds.  A
 * thread that blocks the signal or does not run within the wait simply
 * adds no registers.  The signal interrupts blocking calls like any
 * signal (restartable ones are restarted: SA_RESTART). */
#define REG_THREADS 1024
#if defined(__x86_64__)
/* gregs[0..15]: r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp.  Not the
   rest: rip is code, and cr2 (the last page-fault address) often points
   into a block the thread merely touched. */
#define REG_WORDS 16
#elif defined(__aarch64__)
#define REG_WORDS 33    /* x0-x30, sp, pc */
#else
#define REG_WORDS 0
#endif

static uintptr_t thread_regs[REG_THREADS][REG_WORDS > 0 ? REG_WORDS : 1];
static int thread_regs_ok[REG_THREADS];   /* slot filled */
static volatile int regs_taken, regs_done;

static void regs_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    int slot = __atomic_fetch_add(&regs_taken, 1, __ATOMIC_ACQ_REL);
    if (slot < REG_THREADS && ucv) {
        const ucontext_t *uc = ucv;
#if defined(__x86_64__)
        for (int i = 0; i < REG_WORDS; i++) thread_regs[slot][i] = (uintptr_t)uc->uc_mcontext.gregs[i];
#elif defined(__aarch64__)
        for (int i = 0; i < 31; i++) thread_regs[slot][i] = (uintptr_t)uc->uc_mcontext.regs[i];
        thread_regs[slot][31] = (uintptr_t)uc->uc_mcontext.sp;
        thread_regs[slot][32] = (uintptr_t)uc->uc_mcontext.pc;
#endif
        __atomic_store_n(&thread_regs_ok[slot], 1, __ATOMIC_RELEASE);
    }
    __atomic_add_fetch(&regs_done, 1, __ATOMIC_ACQ_REL);
}

/* Collects the other threads' registers into thread_regs; returns how many
 * threads answered. */
static int capture_thread_registers(void) {
    if (REG_WORDS == 0) return 0;
    /* a real-time signal nobody handles; our handler stays installed
       afterwards, because a thread that had the signal blocked still has it
       pending, and the default action would kill the process */
    static int sig;
    if (!sig) {
        struct sigaction cur;
        for (int s = SIGRTMAX; s >= SIGRTMIN && !sig; s--)
            if (sigaction(s, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL)
                sig = s;
        if (!sig) return 0;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = regs_handler;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) != 0) {
            sig = 0;
            return 0;
        }
    }
    memset(thread_regs_ok, 0, sizeof thread_regs_ok);
    regs_taken = regs_done = 0;
    int sent = 0;
    pid_t pid = getpid(), me = (pid_t)syscall(SYS_gettid);
    DIR *dir = opendir("/proc/self/task");
    if (dir) {
        struct dirent *d;
        while ((d = readdir(dir)) != NULL && sent < REG_THREADS) {
            if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
            pid_t tid = (pid_t)atoi(d->d_name);
            if (tid == me) continue;
            if (syscall(SYS_tgkill, pid, tid, sig) == 0) sent++;
        }
        closedir(dir);
    }
    /* wait for the answers: at most about 200 ms */
    for (int i = 0; i < 2000 && __atomic_load_n(&regs_done, __ATOMIC_ACQUIRE) < sent; i++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    /* slots taken so far; the scan reads only those marked filled (a late
       handler fills its own slot and nothing else) */
    int taken = __atomic_load_n(&regs_taken, __ATOMIC_ACQUIRE);
    return taken < REG_THREADS ? taken : REG_THREADS;
}

/* Scratch arrays of a leak check, registered as allocator-owned so the
   root scan skips them; kept for the next check (named checkers run many),
   grown by doubling. */
static void *scratch(void **slot, size_t *cap, size_t need) {
    if (*slot && *cap >= need) return *slot;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *p = pp_os_map(c);
    if (p) {
        *slot = p;
        *cap = c;
    }
    return p;
}

int pp_leak_check_on(void) { return leak_check_on; }

/* Checks the heap for objects no root reaches; reports them under q->name
   (stderr and a leak profile <prefix>.<name>-end.heap) and fills q's
   counts.  Objects pp_hc_is_ignored() names are roots; with q->may_report
   only the objects it accepts count as leaks.  Returns 1 when leaks were
   found. */
static int leak_check(struct pp_leak_query *q) {
    static void *o_mem, *it_mem, *work_mem, *buf_mem;
    static size_t o_cap, it_cap, work_cap, buf_cap;
    q->leaked_bytes = q->leaked_objects = 0;
    int nregs = capture_thread_registers();
    __builtin_unwind_init();                /* spill callee-saved registers onto the stack */
    volatile uintptr_t marker = 0;
    uintptr_t sp = (uintptr_t)&marker;
    if (!map_heads) return 0;
    for (int i = 0; i < MAP_STRIPES; i++) pp_lock(&map_stripes[i].lock);
    size_t count = 0;
    for (size_t i = 0; i < MAP_HEADS; i++)
        for (node_t *nd = map_heads[i]; nd; nd = nd->next) count++;
    obj_t *o = scratch(&o_mem, &o_cap, (count + 1) * sizeof(obj_t));
    item_t *it = scratch(&it_mem, &it_cap, (count + 1) * sizeof(item_t));
    work = scratch(&work_mem, &work_cap, (count + 1) * sizeof(size_t));
    scan_buf = scratch(&buf_mem, &buf_cap, SCAN_BUF);
    if (!o || !it || !work || !scan_buf) {
        for (int i = 0; i < MAP_STRIPES; i++) pp_unlock(&map_stripes[i].lock);
        pp_write_str(2, "pprof_py heap checker: out of memory, leak check skipped\n");
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < MAP_HEADS; i++)
        for (node_t *nd = map_heads[i]; nd; nd = nd->next) {
            it[n].key = nd->ptr;
            it[n].val = nd->bucket;
            it[n].extra = nd->size;
            n++;
        }
    sort_items(it, n);
    for (size_t i = 0; i < n; i++) {
        o[i].addr = it[i].key;
        o[i].bucket = it[i].val;
        o[i].size = it[i].extra;
        o[i].marked = 0;
    }
    objs = o;
    nobjs = n;
    heap_lo = n ? o[0].addr : 0;
    heap_hi = n ? o[n - 1].addr + (o[n - 1].size ? o[n - 1].size : 1) : 0;
    nwork = 0;
    if (n) {
        /* IgnoreObject() / Disabler objects are live, and so is what they point to */
        for (size_t i = 0; i < n; i++)
            if (pp_hc_is_ignored(objs[i].addr)) {
                objs[i].marked = 1;
                work[nwork++] = i;
            }
        scan_roots(sp);
        for (int t = 0; t < nregs; t++)
            if (__atomic_load_n(&thread_regs_ok[t], __ATOMIC_ACQUIRE))
                for (int r = 0; r < REG_WORDS; r++) consider(thread_regs[t][r]);
        while (nwork > 0) {
            obj_t *x = &objs[work[--nwork]];
            scan_words((const char *)x->addr, x->size);
        }
    }
    for (int i = 0; i < MAP_STRIPES; i++) pp_unlock(&map_stripes[i].lock);

    /* group leaked objects by allocation stack */
    size_t nleak = 0, leak_bytes = 0, live_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        live_bytes += objs[i].size;
        if (!objs[i].marked && (!q->may_report || q->may_report(objs[i].addr, q->ctx))) {
            it[nleak].key = (uintptr_t)objs[i].bucket;
            it[nleak].extra = objs[i].size;
            nleak++;
            leak_bytes += objs[i].size;
        }
    }
    q->leaked_bytes = leak_bytes;
    q->leaked_objects = nleak;
    if (nleak == 0) {
        sbuf_t b = {0};
        sb_str(&b, "No leaks found for check \"");
        sb_str(&b, q->name);
        sb_str(&b, "\" (but no 100% guarantee that there aren't any): found ");
        sb_num(&b, n, 0);
        sb_str(&b, " reachable heap objects of ");
        sb_num(&b, live_bytes, 0);
        sb_str(&b, " bytes\n");
        if (b.p) pp_write_str(2, b.p);
        sb_free(&b);
        return 0;
    }
    sort_items(it, nleak);
    item_t *groups = big_alloc((nleak + 1) * sizeof(item_t));
    size_t *gobjs = big_alloc((nleak + 1) * sizeof(size_t));
    size_t ng = 0;
    for (size_t i = 0; i < nleak; i++) {
        if (ng == 0 || groups[ng - 1].val != (void *)(uintptr_t)it[i].key) {
            groups[ng].val = (void *)(uintptr_t)it[i].key;
            groups[ng].extra = 0;
            gobjs[ng] = 0;
            ng++;
        }
        groups[ng - 1].extra += it[i].extra;
        gobjs[ng - 1]++;
    }
    /* sort groups by leaked bytes, largest first */
    for (size_t g = 0; g < ng; g++) {
        groups[g].key = ~(uint64_t)groups[g].extra;
        groups[g].extra2 = gobjs[g];
    }
    sort_items(groups, ng);

    char exe[1024], file[1400];
    exe_path(exe, sizeof exe);
    if (prof_prefix[0]) {
        size_t l = strlen(prof_prefix);
        memcpy(file, prof_prefix, l);
        file[l] = '.';
        file[l + 1] = 0;
        strncat(file, q->name, 200);
        strcat(file, "-end.heap");
    } else {
        const char *base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        char pid[24];
        pp_fmt_u(pid, (size_t)getpid());
        strcpy(file, "/tmp/");
        strncat(file, base, 300);
        strcat(file, ".");
        strcat(file, pid);
        strcat(file, ".");
        strncat(file, q->name, 200);
        strcat(file, "-end.heap");
    }
    /* the leak profile: every leaked object once, in- use = allocated */
    sbuf_t prof = {0};
    sb_str(&prof, "heap profile: ");
    sb_counts(&prof, nleak, leak_bytes, nleak, leak_bytes);
    sb_str(&prof, " heapprofile\n");
    for (size_t g = 0; g < ng; g++) {
        bucket_t *b = groups[g].val;
        sb_counts(&prof, groups[g].extra2, groups[g].extra, groups[g].extra2, groups[g].extra);
        sb_pcs(&prof, b->pcs, b->depth);
    }
    sb_str(&prof, "\nMAPPED_LIBRARIES:\n");
    sb_file(&prof, "/proc/self/maps");
    if (prof.p) write_file(file, prof.p, prof.len);
    sb_free(&prof);

    sbuf_t r = {0};
    sb_str(&r, "Leak check ");
    sb_str(&r, q->name);
    sb_str(&r, " detected leaks of ");
    sb_num(&r, leak_bytes, 0);
    sb_str(&r, " bytes in ");
    sb_num(&r, nleak, 0);
    sb_str(&r, " objects\nThe ");
    sb_num(&r, ng < 10 ? ng : 10, 0);
    sb_str(&r, " largest leaks:\n");
    for (size_t g = 0; g < ng && g < 10; g++) {
        bucket_t *b = groups[g].val;
        sb_str(&r, "Leak of ");
        sb_num(&r, groups[g].extra, 0);
        sb_str(&r, " bytes in ");
        sb_num(&r, groups[g].extra2, 0);
        sb_str(&r, " objects allocated from:\n");
        for (int i = 0; i < b->depth; i++) symbolize(&r, b->pcs[i]);
        sb_str(&r, "\n");
    }
    sb_str(&r, "\nIf the preceding stack traces are not enough to find the leaks, try running THIS shell command:\n\n");
    sb_str(&r, "pprof ");
    sb_str(&r, exe);
    sb_str(&r, " \"");
    sb_str(&r, file);
    sb_str(&r, "\" --inuse_objects --lines --heapcheck  --edgefraction=1e-10 --nodefraction=1e-10 --text\n\n");
    if (q->at_exit)
        sb_str(&r, "Exiting with error code (instead of crashing) because of whole-program memory leaks\n");
    if (r.p) pp_write_str(2, r.p);
    sb_free(&r);
    return 1;
}

void pp_prof_at_exit(void) {
    if (prof_running) {
        char reason[64];
        size_t inuse = total_alloc_bytes - total_free_bytes;
        size_t n = 0;
        memcpy(reason, "Exiting, ", 9);
        n = 9;
        n += pp_fmt_u(reason + n, inuse >> 20);
        memcpy(reason + n, " MB in use", 11);
        HeapProfilerDump(reason);
    }
    if (leak_check_on && pp_hc_global_check_wanted()) {
        struct pp_leak_query q = {"_main_", NULL, NULL, 1, 0, 0};
        pp_busy = 1;
        int leaks = leak_check(&q);
        if (leaks) {
            pp_busy = 1;
            fflush(NULL);
            _exit(1);
        }
    }
}

int pp_leak_check_run(struct pp_leak_query *q) {
    int busy = pp_busy;
    pp_busy = 1;
    int r = leak_check(q);
    pp_busy = busy;
    return r;
}

void pp_prof_each_object(void (*fn)(uintptr_t addr, size_t size, void *ctx), void *ctx) {
    if (!map_heads) return;
    for (int st = 0; st < MAP_STRIPES; st++) {
        pp_lock(&map_stripes[st].lock);
        for (size_t i = (size_t)st; i < MAP_HEADS; i += MAP_STRIPES)
            for (node_t *nd = map_heads[i]; nd; nd = nd->next) fn(nd->ptr, nd->size, ctx);
        pp_unlock(&map_stripes[st].lock);
    }
}

void *pp_prof_alloc_caller(const void *p) {
    if (!map_heads) return NULL;
    size_t idx = mix((uintptr_t)p) & (MAP_HEADS - 1);
    int st = (int)(idx % MAP_STRIPES);
    void *pc = NULL;
    pp_lock(&map_stripes[st].lock);
    for (node_t *nd = map_heads[idx]; nd; nd = nd->next)
        if (nd->ptr == (uintptr_t)p) {
            if (nd->bucket && nd->bucket->depth > 0) pc = nd->bucket->pcs[0];
            break;
        }
    pp_unlock(&map_stripes[st].lock);
    return pc;
}
