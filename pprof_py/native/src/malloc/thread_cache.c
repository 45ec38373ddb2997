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
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
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
 * beyond their first MIN_TC_SIZE. */
#ifndef OVERALL_TC_BUDGET
#define OVERALL_TC_BUDGET ((size_t)64 << 20)
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
static pthread_key_t tc_key;
static int tc_key_ok;

static void tc_release(tcache_t *tc, int cl, uint32_t n) {
    freelist_t *fl = &tc->lists[cl];
    if (n > fl->length) n = fl->length;
    if (!n) return;
    void *head = fl->head, *tail = head;
    for (uint32_t i = 1; i < n; i++) tail = *(void **)tail;
    fl->head = *(void **)tail;
    *(void **)tail = NULL;
    fl->length -= n;
    if (fl->low_water > fl->length) fl->low_water = fl->length;
    tc->size -= (size_t)n * pp_class_size[cl];
    /* hand over in whole batches so they land in the transfer cache */
    uint32_t batch = pp_class_batch[cl];
    while (n > 0) {
        uint32_t k = n < batch ? n : batch;
        void *h = head, *t = head;
        for (uint32_t i = 1; i < k; i++) t = *(void **)t;
        head = *(void **)t;
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
    uint32_t got = pp_central_remove(cl, want, &h, &t);
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

void pp_tc_list_too_long(tcache_t *tc, int cl) {
    freelist_t *fl = &tc->lists[cl];
    uint32_t batch = pp_class_batch[cl];
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
        if (tc_budget_used + TC_GROW_STEP <= OVERALL_TC_BUDGET) {
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

static void tc_destroy(void *arg) {
    tcache_t *tc = arg;
    if (!tc) return;
    pp_tc = NULL;
    tc_state = 2;
    for (int cl = 1; cl < pp_num_classes; cl++) tc_release(tc, cl, tc->lists[cl].length);
    pp_lock(&tc_lock);
    if (tc->prev_all) tc->prev_all->next_all = tc->next_all;
    else tc_all = tc->next_all;
    if (tc->next_all) tc->next_all->prev_all = tc->prev_all;
    tc_budget_used -= tc->max_size;
    if (tc->stack_lo && tc->stack_hi - tc->stack_lo < ((size_t)1 << 30) && dead_count < MAX_DEAD_STACKS) {
        dead_lo[dead_count] = tc->stack_lo;
        dead_hi[dead_count] = tc->stack_hi;
        dead_tp[dead_count] = tc->thread_pointer;
        dead_count++;
    }
    tc->in_use = 0;
    tc->next_all = tc_free;
    tc_free = tc;
    pp_unlock(&tc_lock);
}

size_t pp_dead_stacks(uintptr_t *starts, uintptr_t *ends, uintptr_t *tps, size_t max) {
    pp_lock(&tc_lock);
    size_t n = dead_count < max ? dead_count : max;
    memcpy(tps, dead_tp, n * sizeof(uintptr_t));
    memcpy(starts, dead_lo, n * sizeof(uintptr_t));
    memcpy(ends, dead_hi, n * sizeof(uintptr_t));
    pp_unlock(&tc_lock);
    return n;
}

static void thread_stack(uintptr_t *lo, uintptr_t *hi) {
    extern void *__libc_stack_end;
    *lo = *hi = 0;
    if (syscall(SYS_gettid) == getpid()) {
        *hi = (uintptr_t)__libc_stack_end;
        *lo = *hi - ((size_t)1 << 30);
        return;
    }
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            *lo = (uintptr_t)addr;
            *hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
}

tcache_t *pp_tc_get_slow(void) {
    if (!pp_inited) pp_init();
    if (pp_tc) return pp_tc;
    if (tc_state != 0) return NULL;          /* creating (re-entered) or exited */
    tc_state = 1;
    pp_lock(&tc_lock);
    tcache_t *tc = tc_free;
    if (tc) tc_free = tc->next_all;
    pp_unlock(&tc_lock);
    if (!tc) tc = pp_meta_alloc(sizeof(tcache_t));
    if (!tc) {
        tc_state = 0;
        return NULL;
    }
    memset(tc, 0, sizeof *tc);
    for (int cl = 1; cl < pp_num_classes; cl++) tc->lists[cl].max_length = 1;
    tc->rng = (uintptr_t)tc ^ ((uint64_t)syscall(SYS_gettid) << 32) ^ 0x2545F4914F6CDD1Dull;
    pp_lock(&tc_lock);
    size_t give = MIN_TC_SIZE;
    tc_budget_used += give;
    tc->max_size = give;
    tc->in_use = 1;
    tc->next_all = tc_all;
    if (tc_all) tc_all->prev_all = tc;
    tc_all = tc;
    pp_unlock(&tc_lock);
    tc->sample_left = pp_next_sample_interval(tc);
    int busy = pp_busy;
    pp_busy = 1;
    thread_stack(&tc->stack_lo, &tc->stack_hi);
    tc->thread_pointer = (uintptr_t)pthread_self();
    pp_lock(&tc_lock);
    for (size_t i = 0; i < dead_count;) {      /* a new thread may reuse a cached stack */
        if (dead_lo[i] < tc->stack_hi && dead_hi[i] > tc->stack_lo) {
            dead_lo[i] = dead_lo[dead_count - 1];
            dead_hi[i] = dead_hi[dead_count - 1];
            dead_tp[i] = dead_tp[dead_count - 1];
            dead_count--;
        } else {
            i++;
        }
    }
    pp_unlock(&tc_lock);
    if (tc_key_ok) pthread_setspecific(tc_key, tc);
    pp_busy = busy;
    pp_tc = tc;
    tc_state = 0;
    return tc;
}

void pp_tc_reset_all_samples(void) {
    pp_lock(&tc_lock);
    for (tcache_t *tc = tc_all; tc; tc = tc->next_all) tc->sample_left = 0;
    pp_unlock(&tc_lock);
}


/* ------------------------------------------------------------------ */
/* start-up, flush, fork, statistics                                    */

void pp_tc_init(void) { tc_key_ok = pthread_key_create(&tc_key, tc_destroy) == 0; }

/* Give every cached object of tc back to the central lists. */
void pp_tc_flush(tcache_t *tc) {
    for (int cl = 1; cl < pp_num_classes; cl++) tc_release(tc, cl, tc->lists[cl].length);
}

void pp_tc_lock_all(void) { pp_lock(&tc_lock); }
void pp_tc_unlock_all(void) { pp_unlock(&tc_lock); }

void pp_tc_stats(struct pprofpy_malloc_stats *st) {
    pp_lock(&tc_lock);
    for (tcache_t *tc = tc_all; tc; tc = tc->next_all) {
        st->thread_cache_free_bytes += __atomic_load_n(&tc->size, __ATOMIC_RELAXED);
        st->thread_caches++;
    }
    pp_unlock(&tc_lock);
}
