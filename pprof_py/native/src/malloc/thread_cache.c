/* Thread caches: per-thread free lists, one per size class, so that most
 * malloc() and free() calls take no lock and touch only this thread's
 * memory (the fast paths themselves are inlined in api.c).
 *
 * A list that runs empty refills a batch from the central list and grows
 * its length limit (slow start); one that overflows gives a batch back.
 * A cache above its byte budget gives back half of what stayed unused
 * since the last time (low-water marks), and a busy thread takes a larger
 * share of a global budget.  A thread's cache is emptied at its exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "helper_threads.h"
#include "malloc_extension.h"

__thread tcache_t *pp_tc __attribute__((tls_model("initial-exec")));
__thread int pp_busy __attribute__((tls_model("initial-exec")));
static __thread int tc_state __attribute__((tls_model("initial-exec")));   /* 1 creating, 2 exited */

#define MAX_LIST_LENGTH 8192
/* Thread-cache sizing.  Each cache starts with MIN_TC_SIZE bytes; a busy
 * one takes TC_GROW_STEP more from the global budget each time it overflows,
 * up to MAX_TC_SIZE.  Objects of 32 KiB-256 KiB are small-class objects
 * with one or two per span: when a cache is too small for a program's
 * churn of them, every overflow returns whole spans to the page heap, which
 * releases and refaults them.  On bench_malloc.py's 8 B-1 MiB workload a
 * 16 MiB cap grown by 64 KiB steps cost 3.5x the page faults of a 24 MiB
 * cap grown by 256 KiB steps (47k vs 14k over 8M operations), 1.5x the
 * time, and more peak RSS (19 vs 12 MiB), since reused cached objects touch
 * no new pages.  The budget bounds what all threads together can take
 * beyond their first MIN_TC_SIZE.  It is 256 MiB, not 64: with 8 and 32
 * threads each churning 8 B-1 MiB blocks (bench_malloc.py's largemix8 and
 * largemix32), caches held to a few MiB sent every block of 32 KiB and
 * more through the page heap, whose free spans then fragmented: 64 MiB
 * took 1.8 s and 162 MiB peak RSS with 8 threads, 4.1 s and 510 MiB with
 * 32; 256 MiB took 1.3 s and 53 MiB, 1.8 s and 249 MiB (glibc 2.0 s and
 * 241 MiB, 2.3 s and 588 MiB, in the same bench run).  A single thread never takes more than
 * MAX_TC_SIZE, so only programs with several busy threads use it. */
#ifndef OVERALL_TC_BUDGET
#define OVERALL_TC_BUDGET ((size_t)256 << 20)
#endif
#ifndef MIN_TC_SIZE
#define MIN_TC_SIZE ((size_t)2 << 20)
#endif
#ifndef TC_GROW_STEP
#define TC_GROW_STEP ((size_t)256 << 10)
#endif
#ifndef MAX_TC_SIZE
#define MAX_TC_SIZE ((size_t)24 << 20)
#endif

static pp_lock_t tc_lock;
static tcache_t *tc_all;             /* registry of live caches */
static tcache_t *tc_free;            /* recycled cache structs */
static size_t tc_budget_used;
volatile size_t pp_tc_overall_budget = OVERALL_TC_BUDGET;
static pthread_key_t tc_key;
static int tc_key_ok;

static void tc_release(tcache_t *tc, int cl, uint32_t n) {
    freelist_t *fl = &tc->lists[cl];
    if (n > fl->length) n = fl->length;
    if (!n) return;
    fl->length -= n;
    if (fl->low_water > fl->length) fl->low_water = fl->length;
    tc->size -= (size_t)n * pp_class_size[cl];
    /* hand over in whole batches so they land in the transfer cache,
       detaching each from the list head as we walk it: one pass over the
       objects (each step is a likely cache miss) */
    uint32_t batch = pp_class_batch[cl];
    while (n > 0) {
        uint32_t k = n < batch ? n : batch;
        void *h = fl->head, *t = h;
        for (uint32_t i = 1; i < k; i++) t = *(void **)t;
        fl->head = *(void **)t;
        *(void **)t = NULL;
        pp_central_insert(cl, h, t, k);
        n -= k;
    }
}

void *pp_tc_fetch(tcache_t *tc, int cl) {
    freelist_t *fl = &tc->lists[cl];
    uint32_t batch = pp_class_batch[cl];
    uint32_t want = fl->max_length < batch ? fl->max_length : batch;
    if (want == 0) want = 1;
    void *h, *t;
    uint32_t got = pp_central_remove(cl, want, &h, &t, cl < OWN_CLASSES ? &tc->own[cl] : NULL);
    if (!got) return NULL;
    /* slow start: grow the list limit while the thread keeps missing */
    if (fl->max_length < batch) fl->max_length++;
    else if (fl->max_length < MAX_LIST_LENGTH) fl->max_length += batch;
    void *p = h;
    h = *(void **)p;
    if (got > 1) {
        *(void **)t = fl->head;
        fl->head = h;
        fl->length += got - 1;
        tc->size += (size_t)(got - 1) * pp_class_size[cl];
    }
    return p;
}

void pp_tc_list_too_long(tcache_t *tc, int cl, const void *caller) {
    freelist_t *fl = &tc->lists[cl];
    uint32_t batch = pp_class_batch[cl];
    if (cl < OWN_CLASSES && fl->max_length == 0) {
        /* The thread frees an object of a class it never allocated: it
           is another thread's, and the next allocation would hand it to
           this one, next to that thread's objects (passive false sharing,
           central_freelist.c).  It goes back to its span instead, and the
           thread's first allocation comes from a span of its own; later
           frees are kept as usual. */
        tc_release(tc, cl, 1);
        fl->max_length = 1;
        return;
    }
    tc_release(tc, cl, batch);
    if (fl->max_length < batch) {
        fl->max_length++;
    } else if (fl->max_length > batch) {
        if (++fl->overages > 3) {
            fl->max_length -= batch;
            fl->overages = 0;
        }
    }
    if (tc->size > tc->max_size) pp_tc_scavenge(tc);
    pp_ph_background_poke(caller);      /* spans may have gone back to the page heap */
}

void pp_tc_scavenge(tcache_t *tc) {
    /* give back half of what stayed unused since the last scavenge */
    for (int cl = 1; cl < pp_num_classes; cl++) {
        freelist_t *fl = &tc->lists[cl];
        uint32_t drop = fl->low_water / 2;
        if (drop) tc_release(tc, cl, drop);
        fl->low_water = fl->length;
    }
    if (tc->size > tc->max_size) {
        for (int cl = 1; cl < pp_num_classes && tc->size > tc->max_size / 2; cl++)
            tc_release(tc, cl, (tc->lists[cl].length + 1) / 2);
    }
    /* a busy thread may take more of the global budget */
    if (tc->max_size < MAX_TC_SIZE) {
        pp_lock(&tc_lock);
        if (tc_budget_used + TC_GROW_STEP <= pp_tc_overall_budget) {
            tc_budget_used += TC_GROW_STEP;
            tc->max_size += TC_GROW_STEP;
        }
        pp_unlock(&tc_lock);
    }
}

/* Stacks of exited threads stay mapped (glibc caches them) with stale
   pointers; the leak checker must not treat them as roots. */
#define MAX_DEAD_STACKS 256
static uintptr_t dead_lo[MAX_DEAD_STACKS], dead_hi[MAX_DEAD_STACKS], dead_tp[MAX_DEAD_STACKS];
static size_t dead_count;

static void tc_resolve_stack_locked(tcache_t *tc);

/* A cache whose thread exited is parked with its objects and tuned list
 * lengths, and the next new thread adopts it: programs that create
 * short-lived threads (a server's worker per request, larson) would
 * otherwise flush every cache into the central lists at each exit and
 * start each new thread with empty lists at length 1.  At most MAX_PARKED
 * caches are parked; the background release thread flushes one that
 * stays parked for a tick, and pprofpy_release_free_memory() all. */
#define MAX_PARKED 8
static tcache_t *tc_parked;
static int tc_parked_count;

/* Return every object of an unowned cache and recycle its struct. */
/* Everything the cache holds goes back to the central lists, and its own
   spans join the shared ones. */
static void tc_release_all(tcache_t *tc) {
    for (int cl = 1; cl < pp_num_classes; cl++) tc_release(tc, cl, tc->lists[cl].length);
    for (int cl = 1; cl < OWN_CLASSES && cl < pp_num_classes; cl++)
        if (tc->own[cl]) pp_central_disown(cl, &tc->own[cl]);
}

static void tc_retire(tcache_t *tc) {
    tc_release_all(tc);
    pp_lock(&tc_lock);
    tc_budget_used -= tc->max_size - MIN_TC_SIZE;
    tc->next_all = tc_free;
    tc_free = tc;
    pp_unlock(&tc_lock);
}

static void tc_destroy(void *arg) {
    tcache_t *tc = arg;
    if (!tc) return;
    pp_tc = NULL;
    tc_state = 2;
    pp_lock(&tc_lock);
    if (tc->prev_all) tc->prev_all->next_all = tc->next_all;
    else tc_all = tc->next_all;
    if (tc->next_all) tc->next_all->prev_all = tc->prev_all;
    if (pp_prof_mode != PROF_OFF) tc_resolve_stack_locked(tc);
    if (tc->stack_lo && tc->stack_hi - tc->stack_lo < ((size_t)1 << 30) && dead_count < MAX_DEAD_STACKS) {
        dead_lo[dead_count] = tc->stack_lo;
        dead_hi[dead_count] = tc->stack_hi;
        dead_tp[dead_count] = tc->thread_pointer;
        dead_count++;
    }
    tc->in_use = 0;
    tc->prev_all = NULL;
    if (tc_parked_count < MAX_PARKED) {
        tc->parked_seen = 0;
        tc->next_all = tc_parked;
        tc_parked = tc;
        tc_parked_count++;
        pp_unlock(&tc_lock);
        pp_ph_thread_exited();
        return;
    }
    pp_unlock(&tc_lock);
    tc_retire(tc);
    pp_ph_thread_exited();
}

/* Retire parked caches: all of them, or (idle_only) those already seen
   parked at the previous call, marking the others. */
static void tc_flush_parked(int idle_only) {
    tcache_t *retire = NULL;
    pp_lock(&tc_lock);
    for (tcache_t **link = &tc_parked, *tc; (tc = *link) != NULL;) {
        if (idle_only && !tc->parked_seen) {
            tc->parked_seen = 1;
            link = &tc->next_all;
            continue;
        }
        *link = tc->next_all;
        tc_parked_count--;
        tc->next_all = retire;
        retire = tc;
    }
    pp_unlock(&tc_lock);
    while (retire) {
        tcache_t *next = retire->next_all;
        tc_retire(retire);
        retire = next;
    }
}

void pp_tc_flush_parked_idle(void) { tc_flush_parked(1); }
void pp_tc_flush_parked_all(void) { tc_flush_parked(0); }

size_t pp_dead_stacks(uintptr_t *starts, uintptr_t *ends, uintptr_t *tps, size_t max) {
    pp_lock(&tc_lock);
    size_t n = dead_count < max ? dead_count : max;
    memcpy(tps, dead_tp, n * sizeof(uintptr_t));
    memcpy(starts, dead_lo, n * sizeof(uintptr_t));
    memcpy(ends, dead_hi, n * sizeof(uintptr_t));
    pp_unlock(&tc_lock);
    return n;
}

/* Bounds of the mapping that contains `addr`, read from /proc/self/maps
 * with raw system calls into a stack buffer.  Why not pthread_getattr_np:
 * it takes the thread's lock and calls realloc() while holding it; when
 * the caller of pthread_getattr_np (the CPU sampler's writer thread, say)
 * is itself inside that call, our first malloc on that thread would call
 * it again and wait forever on the lock its own thread holds.  Nothing
 * here allocates or takes a lock, so it is safe inside malloc.  A glibc
 * thread stack is one mapping (its guard page below is PROT_NONE, a
 * separate mapping), whose top holds the thread control block, as
 * pthread_getattr_np reports it.  Returns 0 when not found. */
static int mapping_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, pp_maps_path(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[4096];
    uintptr_t start = 0, end = 0;
    int field = 0, found = 0;       /* field: 0 start, 1 end, 2 rest of the line */
    for (;;) {
        ssize_t n = (ssize_t)syscall(SYS_read, fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n && !found; i++) {
            char c = buf[i];
            if (c == '\n') {
                field = 0;
                start = end = 0;
            } else if (field < 2) {
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (d >= 0) {
                    if (field == 0) start = start << 4 | (uintptr_t)d;
                    else end = end << 4 | (uintptr_t)d;
                } else if (field == 0) {
                    field = 1;                      /* the '-' */
                } else {
                    field = 2;                      /* the space after the range */
                    found = addr >= start && addr < end;
                }
            }
        }
        if (found) break;
    }
    syscall(SYS_close, fd);
    if (!found) return 0;
    *lo = start;
    *hi = end;
    return 1;
}

/* Fill tc's stack bounds (used to bound the heap profiler's stack walks
 * and, for exited threads, by the leak checker) the first time they are
 * needed: when the thread is created while profiling or leak checking is
 * on, when profiling starts (pp_tc_reset_all_samples), or at thread exit
 * with profiling on.  Reading /proc/self/maps costs tens of microseconds,
 * so threads of a program that never profiles never pay it.  Any thread
 * may resolve any cache's bounds: the probe is an address inside the
 * owner's stack.  The caller holds tc_lock (the dead-stack list). */
static void tc_resolve_stack_locked(tcache_t *tc) {
    if (tc->stack_hi || !tc->stack_probe) return;
    uintptr_t lo, hi;
    if (!mapping_of(tc->stack_probe, &lo, &hi)) return;
    tc->stack_lo = lo;
    tc->stack_hi = hi;
    for (size_t i = 0; i < dead_count;) {      /* a new thread may reuse a cached stack */
        if (dead_lo[i] < hi && dead_hi[i] > lo) {
            dead_lo[i] = dead_lo[dead_count - 1];
            dead_hi[i] = dead_hi[dead_count - 1];
            dead_tp[i] = dead_tp[dead_count - 1];
            dead_count--;
        } else {
            i++;
        }
    }
}

tcache_t *pp_tc_get_slow(void) {
    if (!pp_inited) pp_init();
    if (pp_tc) return pp_tc;
    if (tc_state != 0) return NULL;          /* creating (re-entered) or exited */
    tc_state = 1;
    pp_lock(&tc_lock);
    tcache_t *tc = tc_parked;
    int adopted = tc != NULL;
    if (adopted) {
        tc_parked = tc->next_all;
        tc_parked_count--;
    } else {
        tc = tc_free;
        if (tc) tc_free = tc->next_all;
    }
    pp_unlock(&tc_lock);
    if (!tc) tc = pp_meta_alloc(sizeof(tcache_t));
    if (!tc) {
        tc_state = 0;
        return NULL;
    }
    if (adopted) {
        /* keep the lists, their sizes and the byte budget; the rest is the
           new thread's */
        tc->stack_lo = tc->stack_hi = tc->stack_probe = 0;
    } else {
        memset(tc, 0, sizeof *tc);
        /* 0 for the classes under a cache line: see pp_tc_list_too_long */
        for (int cl = 1; cl < pp_num_classes; cl++) tc->lists[cl].max_length = cl < OWN_CLASSES ? 0 : 1;
    }
    tc->rng = (uintptr_t)tc ^ ((uint64_t)syscall(SYS_gettid) << 32) ^ 0x2545F4914F6CDD1Dull;
    pp_lock(&tc_lock);
    if (!adopted) tc->max_size = MIN_TC_SIZE;     /* outside the budget, which is for growth */
    tc->in_use = 1;
    tc->prev_all = NULL;
    tc->next_all = tc_all;
    if (tc_all) tc_all->prev_all = tc;
    tc_all = tc;
    pp_unlock(&tc_lock);
    tc->sample_left = pp_next_sample_interval(tc);
    int busy = pp_busy;
    pp_busy = 1;
    tc->thread_pointer = (uintptr_t)pthread_self();
    if (syscall(SYS_gettid) == getpid()) {
        /* the main thread's stack grows on demand: its top is known, its
           bottom is not a mapping boundary yet */
        extern void *__libc_stack_end;
        tc->stack_hi = (uintptr_t)__libc_stack_end;
        tc->stack_lo = tc->stack_hi - ((size_t)1 << 30);
    } else {
        tc->stack_probe = (uintptr_t)__builtin_frame_address(0);
        if (pp_prof_mode != PROF_OFF) {
            pp_lock(&tc_lock);
            tc_resolve_stack_locked(tc);
            pp_unlock(&tc_lock);
        }
    }
    if (tc_key_ok) pthread_setspecific(tc_key, tc);
    pp_busy = busy;
    pp_tc = tc;
    tc_state = 0;
    return tc;
}

void pp_tc_reset_all_samples(void) {
    pp_lock(&tc_lock);
    for (tcache_t *tc = tc_all; tc; tc = tc->next_all) {
        tc->sample_left = 0;
        tc_resolve_stack_locked(tc);
    }
    pp_unlock(&tc_lock);
}


/* ------------------------------------------------------------------ */
/* start-up, flush, fork, statistics                                    */

void pp_tc_init(void) { tc_key_ok = pthread_key_create(&tc_key, tc_destroy) == 0; }

/* Give every cached object of tc back to the central lists. */
void pp_tc_flush(tcache_t *tc) { tc_release_all(tc); }

void pp_tc_lock_all(void) { pp_lock(&tc_lock); }
void pp_tc_unlock_all(void) { pp_unlock(&tc_lock); }

void pp_tc_stats(struct pprofpy_malloc_stats *st) {
    pp_lock(&tc_lock);
    for (tcache_t *tc = tc_all; tc; tc = tc->next_all) {
        st->thread_cache_free_bytes += __atomic_load_n(&tc->size, __ATOMIC_RELAXED);
        st->thread_caches++;
    }
    for (tcache_t *tc = tc_parked; tc; tc = tc->next_all) st->thread_cache_free_bytes += tc->size;
    pp_unlock(&tc_lock);
}
