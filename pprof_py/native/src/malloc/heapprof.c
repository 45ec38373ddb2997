/* Heap profiler: which stacks allocated the memory that is in use.
 *
 * Recorded allocations live in a hash map (address -> size, stack bucket)
 * and stack buckets in a second hash table; both use the allocator's
 * metadata arena, never malloc, and every entry point sets the per-thread
 * recursion guard pp_busy so the profiler never records itself.  Files are
 * written with no allocator or profiler lock held.  The leak checker
 * (heapcheck.c) reads the same map; stacks come from stackwalk.c.
 *
 * Profiles are gperftools' text format (docs/allocator.md): a header
 * "heap profile: <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>]
 * @ heapprofile" (or "@ heap_v2/<rate>" when sampled), one such line per
 * stack followed by its return addresses, then "MAPPED_LIBRARIES:" and
 * /proc/self/maps.  Dumps are named <prefix>.NNNN.heap; a child process
 * (fork, or fork + exec inheriting HEAPPROFILE) writes <prefix>_<pid>.NNNN.heap
 * as gperftools does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "heap-profiler.h"
#include "helper_threads.h"
#include "heap.h"
#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

volatile int pp_prof_mode;
volatile int pp_free_checks;            /* PP_FREE_CHECK_* bits (internal.h) */
volatile size_t pp_sample_rate;

static int prof_running;            /* HEAPPROFILE / HeapProfilerStart active */
char pp_prof_prefix[1024];
static char base_prefix[1024];      /* the prefix as started, before a child adds _<pid> */
static int dump_count;
static pid_t prof_pid;
static size_t alloc_interval = (size_t)1 << 30;
static size_t dealloc_interval;
static size_t inuse_interval = (size_t)100 << 20;
static long time_interval;
static size_t last_dump_alloc, last_dump_free, inuse_high_water;
static int64_t last_dump_ns;      /* CLOCK_MONOTONIC: whole seconds of time() would fire early */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static pp_lock_t dump_lock;

static size_t total_alloc_objs, total_alloc_bytes, total_free_objs, total_free_bytes;

/* ------------------------------------------------------------------ */
/* sampling                                                             */

ssize_t pp_next_sample_interval(tcache_t *tc) {
    int mode = pp_prof_mode;
    if (mode == PROF_OFF) return (ssize_t)1 << 62;
    if (mode == PROF_ALL) return 0;
    /* FLAGS_tcmalloc_sample_parameter set to 0 (tcmalloc: no sampling):
       look again after 1 MiB, so a rate set back takes effect */
    size_t rate = pp_sample_rate;
    if (!rate) return (ssize_t)1 << 20;
    /* exponential byte interval with mean = rate: an allocation of s bytes
       is sampled with probability 1 - exp(-s / rate) */
    uint64_t r = pp_random(&tc->rng) >> 11;                 /* 53 random bits */
    double u = ((double)r + 1.0) / 9007199254740993.0;      /* (0, 1] */
    double v = -log(u) * (double)rate;
    if (v > 1e15) v = 1e15;
    return (ssize_t)v;
}

/* ------------------------------------------------------------------ */
/* stack buckets and the allocation map                                 */

#define BUCKET_HEADS (1 << 16)
#define BUCKET_STRIPES 64
#define MAP_STRIPES 256

static bucket_t **bucket_heads;
static pp_lock_t bucket_locks[BUCKET_STRIPES];
node_t **pp_map_heads;
static struct {
    pp_lock_t lock;
    node_t *free_nodes;
} __attribute__((aligned(64))) map_stripes[MAP_STRIPES];
static pp_lock_t tables_lock;
static size_t bucket_count;

static int tables_ready(void) {
    if (__atomic_load_n(&pp_map_heads, __ATOMIC_ACQUIRE)) return 1;
    pp_lock(&tables_lock);
    if (!pp_map_heads) {
        bucket_t **b = pp_os_map(sizeof(bucket_t *) * BUCKET_HEADS);
        node_t **m = pp_os_map(sizeof(node_t *) * MAP_HEADS);
        if (b && m) {
            bucket_heads = b;
            __atomic_store_n(&pp_map_heads, m, __ATOMIC_RELEASE);
        }
    }
    pp_unlock(&tables_lock);
    return pp_map_heads != NULL;
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
    int depth = pp_walk_stack(frame, tc->stack_lo, tc->stack_hi, pcs, MAX_STACK_DEPTH);
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
            if (!(pp_free_checks & PP_FREE_CHECK_SAMPLED))
                __atomic_fetch_or(&pp_free_checks, PP_FREE_CHECK_SAMPLED, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&s->sampled, 1, __ATOMIC_RELAXED);
            pp_lock(&map_stripes[st].lock);
            nd->next = pp_map_heads[idx];
            pp_map_heads[idx] = nd;
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
    if (!pp_map_heads) return;
    size_t idx = mix((uintptr_t)p) & (MAP_HEADS - 1);
    int st = (int)(idx % MAP_STRIPES);
    pp_lock(&map_stripes[st].lock);
    node_t **pp = &pp_map_heads[idx], *nd;
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
        if (prof_running && !pp_busy) {       /* HEAP_PROFILE_DEALLOCATION_INTERVAL */
            pp_busy = 1;
            maybe_dump();
            pp_busy = 0;
        }
        return;
    }
    pp_unlock(&map_stripes[st].lock);
}

void pp_map_lock_all(void) {
    for (int i = 0; i < MAP_STRIPES; i++) pp_lock(&map_stripes[i].lock);
}

void pp_map_unlock_all(void) {
    for (int i = MAP_STRIPES - 1; i >= 0; i--) pp_unlock(&map_stripes[i].lock);
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
    sb_file(out, pp_maps_path());
    if (items) munmap(items, nb * sizeof(item_t));
}


/* A forked child (fork alone, or fork + exec: see pp_env_unique_path) names
   its profiles <prefix>_<pid>.NNNN.heap and counts from 0001 again, as
   gperftools does, so it never overwrites its parent's. */
static void adopt_child_prefix(void) {
    pid_t pid = getpid();
    if (pid == prof_pid) return;
    prof_pid = pid;
    size_t l = strlen(base_prefix);
    if (l > sizeof pp_prof_prefix - 24) l = sizeof pp_prof_prefix - 24;
    memcpy(pp_prof_prefix, base_prefix, l);
    pp_prof_prefix[l++] = '_';
    l += pp_fmt_u(pp_prof_prefix + l, (unsigned long long)pid);
    pp_prof_prefix[l] = 0;
    dump_count = 0;
}

static void dump_locked(const char *reason) {
    int busy = pp_busy;
    pp_busy = 1;
    adopt_child_prefix();
    char path[1200], num[16];
    dump_count++;
    size_t pl = strlen(pp_prof_prefix);
    memcpy(path, pp_prof_prefix, pl);
    path[pl++] = '.';
    size_t nl = pp_fmt_u(num, (size_t)dump_count);
    for (size_t i = nl; i < 4; i++) path[pl++] = '0';
    memcpy(path + pl, num, nl + 1);
    strcat(path, ".heap");
    sbuf_t b = {0};
    build_profile(&b);
    int err = b.p ? pp_write_file(path, b.p, b.len) : ENOMEM;
    sb_free(&b);
    sbuf_t msg = {0};
    if (err) {
        /* one line, and the reason: a profile that silently is not there
           is worse than none */
        sb_str(&msg, "pprof_py heap profiler: cannot write ");
        sb_str(&msg, path);
        sb_str(&msg, ": ");
        sb_str(&msg, pp_errno_text(err));
        sb_str(&msg, "\n");
    } else {
        sb_str(&msg, "Dumping heap profile to ");
        sb_str(&msg, path);
        sb_str(&msg, " (");
        sb_str(&msg, reason);
        sb_str(&msg, ")\n");
    }
    if (msg.p) pp_write_str(2, msg.p);
    sb_free(&msg);
    pp_busy = busy;
}

static volatile sig_atomic_t dump_requested;   /* HEAPPROFILESIGNAL arrived */

/* gperftools' dump triggers (MaybeDumpProfileLocked), checked after each
   recorded allocation and free, first match wins: HEAP_PROFILE_ALLOCATION_
   INTERVAL bytes allocated, _DEALLOCATION_INTERVAL bytes freed, in-use
   high water grown by _INUSE_INTERVAL, _TIME_INTERVAL seconds passed (all
   since the last dump), or the HEAPPROFILESIGNAL signal received. */
static void maybe_dump(void) {
    size_t alloc = __atomic_load_n(&total_alloc_bytes, __ATOMIC_RELAXED);
    size_t freed = __atomic_load_n(&total_free_bytes, __ATOMIC_RELAXED);
    size_t inuse = alloc - freed;
    int due_alloc = alloc_interval && alloc >= last_dump_alloc + alloc_interval;
    int due_free = !due_alloc && dealloc_interval && freed >= last_dump_free + dealloc_interval;
    int due_inuse = !due_alloc && !due_free && inuse_interval && inuse > inuse_high_water + inuse_interval;
    int due_time = 0, due_signal = 0;
    int64_t now = 0;
    if (!due_alloc && !due_free && !due_inuse) {
        if (time_interval > 0) {
            now = now_ns();
            due_time = now - last_dump_ns >= (int64_t)time_interval * 1000000000;
        }
        due_signal = !due_time && dump_requested;
    }
    if (!due_alloc && !due_free && !due_inuse && !due_time && !due_signal) return;
    if (__atomic_exchange_n(&dump_lock.v, 1, __ATOMIC_ACQUIRE)) return;   /* someone else dumps */
    char reason[128];
    size_t n = 0;
    if (due_alloc) {
        n += pp_fmt_u(reason + n, alloc >> 20);
        memcpy(reason + n, " MB allocated cumulatively, ", 28);
        n += 28;
    } else if (due_free) {
        n += pp_fmt_u(reason + n, freed >> 20);
        memcpy(reason + n, " MB freed cumulatively, ", 24);
        n += 24;
    }
    if (due_time) {
        n += pp_fmt_u(reason + n, (unsigned long long)((now - last_dump_ns) / 1000000000));
        memcpy(reason + n, " sec since the last dump", 25);
        last_dump_ns = now;
    } else if (due_signal) {
        memcpy(reason + n, "signal", 7);
        dump_requested = 0;
    } else {
        n += pp_fmt_u(reason + n, inuse >> 20);
        memcpy(reason + n, " MB currently in use", 21);
    }
    last_dump_alloc = alloc;
    last_dump_free = freed;
    if (inuse > inuse_high_water) inuse_high_water = inuse;
    dump_locked(reason);
    pp_unlock(&dump_lock);
}

/* The handler only raises a flag (a dump allocates and takes locks, which a
   handler must not): the dump is written at the next allocation or free. */
static void dump_signal_handler(int sig) {
    (void)sig;
    dump_requested = 1;
}

/* Variables of gperftools' heapprofile.html that we do not implement: said
   once on stderr instead of silently ignored. */
static void warn_unsupported(const char *name, const char *why) {
    const char *v = pp_getenv(name);
    if (!v || !*v || !pp_env_bool(name, 0)) return;
    sbuf_t m = {0};
    sb_str(&m, "pprof_py heap profiler: ");
    sb_str(&m, name);
    sb_str(&m, " is not supported: ");
    sb_str(&m, why);
    sb_str(&m, "\n");
    if (m.p) pp_write_str(2, m.p);
    sb_free(&m);
}

/* ------------------------------------------------------------------ */
/* public heap-profiler API                                             */

static void start_profiler(const char *prefix) {
    size_t l = strlen(prefix);
    if (l >= sizeof pp_prof_prefix) l = sizeof pp_prof_prefix - 1;
    memcpy(pp_prof_prefix, prefix, l);
    pp_prof_prefix[l] = 0;
    memcpy(base_prefix, pp_prof_prefix, l + 1);
    prof_pid = getpid();
    dump_count = 0;
    alloc_interval = pp_env_size("HEAP_PROFILE_ALLOCATION_INTERVAL", (size_t)1 << 30);
    dealloc_interval = pp_env_size("HEAP_PROFILE_DEALLOCATION_INTERVAL", 0);
    inuse_interval = pp_env_size("HEAP_PROFILE_INUSE_INTERVAL", (size_t)100 << 20);
    time_interval = pp_env_long("HEAP_PROFILE_TIME_INTERVAL", 0);
    last_dump_alloc = total_alloc_bytes;
    last_dump_free = total_free_bytes;
    last_dump_ns = now_ns();
    inuse_high_water = total_alloc_bytes - total_free_bytes;
    /* As gperftools' heap profiler, HEAPPROFILE records every allocation
       whatever TCMALLOC_SAMPLE_PARAMETER says (that variable is tcmalloc's
       sampling for MallocExtension::GetHeapSample; gperftools' ctest sets
       it for every test).  Sampled heap profiles are our extension, asked
       for by name (pprof-run --sample-parameter). */
    size_t rate = pp_env_size("PPROF_PY_HEAP_SAMPLE_PARAMETER", 0);
    if (pp_leak_check_on()) rate = 0;    /* the leak checker needs every object */
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
    if (!pp_leak_check_on()) pp_prof_mode = PROF_OFF;
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

void pp_prof_each_object(void (*fn)(uintptr_t addr, size_t size, void *ctx), void *ctx) {
    if (!pp_map_heads) return;
    for (int st = 0; st < MAP_STRIPES; st++) {
        pp_lock(&map_stripes[st].lock);
        for (size_t i = (size_t)st; i < MAP_HEADS; i += MAP_STRIPES)
            for (node_t *nd = pp_map_heads[i]; nd; nd = nd->next) fn(nd->ptr, nd->size, ctx);
        pp_unlock(&map_stripes[st].lock);
    }
}

void *pp_prof_alloc_caller(const void *p) {
    if (!pp_map_heads) return NULL;
    size_t idx = mix((uintptr_t)p) & (MAP_HEADS - 1);
    int st = (int)(idx % MAP_STRIPES);
    void *pc = NULL;
    pp_lock(&map_stripes[st].lock);
    for (node_t *nd = pp_map_heads[idx]; nd; nd = nd->next)
        if (nd->ptr == (uintptr_t)p) {
            if (nd->bucket && nd->bucket->depth > 0) pc = nd->bucket->pcs[0];
            break;
        }
    pp_unlock(&map_stripes[st].lock);
    return pc;
}

/* Turns on allocation tracking for the leak checker (every object, no
   sampling); heapcheck.c calls it when HEAPCHECK asks for a check. */
void pp_prof_track_all(void) {
    tables_ready();
    pp_sample_rate = 0;
    pp_prof_mode = PROF_ALL;
}

/* The leak checker stopped tracking (an empty HEAPCHECK, heapcheck.c):
   recording stops unless the heap profiler runs; recorded objects are
   still forgotten when freed. */
void pp_prof_untrack_all(void) {
    if (!prof_running) pp_prof_mode = PROF_OFF;
}

static int environ_marked;

void pp_prof_init_from_env(void) {
    pp_heapcheck_init_from_env();
    char prefix[1024];
    if (pp_env_unique_path("HEAPPROFILE", prefix, sizeof prefix)) {
        environ_marked = pp_env_mark_inherited("HEAPPROFILE");
        start_profiler(prefix);
        int sig = (int)pp_env_long("HEAPPROFILESIGNAL", 0);
        if (sig > 0 && sig < NSIG) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = dump_signal_handler;
            sa.sa_flags = SA_RESTART;
            sigaction(sig, &sa, NULL);
        }
        warn_unsupported("HEAP_PROFILE_MMAP", "mmap, mremap and sbrk calls are not profiled");
        warn_unsupported("HEAP_PROFILE_ONLY_MMAP", "mmap, mremap and sbrk calls are not profiled");
        warn_unsupported("HEAP_PROFILE_MMAP_LOG", "mmap calls are not logged");
    }
    /* like tcmalloc, TCMALLOC_SAMPLE_PARAMETER alone turns sampling on, for
       MallocExtension::GetHeapSample() (no files are written) */
    size_t rate = pp_env_size("TCMALLOC_SAMPLE_PARAMETER", 0);
    if (pp_prof_mode == PROF_OFF && rate && tables_ready()) {
        pp_sample_rate = rate;
        pp_prof_mode = PROF_SAMPLED;
    }
}

/* The allocator may start before libc has set up environ (then HEAPPROFILE
   was read from /proc/self/environ and could not be marked for children). */
__attribute__((constructor)) static void mark_environ(void) {
    if (prof_running && !environ_marked && getpid() == prof_pid)
        environ_marked = pp_env_mark_inherited("HEAPPROFILE");
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
    pp_leak_check_at_exit();
}
