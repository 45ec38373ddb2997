/* Central free lists and transfer caches, one of each per size class.
 *
 * A thread cache that runs empty or overflows moves objects here in
 * batches (pp_class_batch[cl] objects linked through their first word).
 * Whole batches are parked as they are in the transfer cache, so a batch
 * one thread gives back is handed to the next thread in O(1); everything
 * else goes back into its span's free list, and a span whose objects are
 * all free returns to the page heap.  One lock per class.
 */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"
#include "malloc_extension.h"

#define TC_SLOTS 64
/* Transfer cache per class: up to TRANSFER_CACHE_BYTES of whole batches,
   at least TRANSFER_MIN_BATCHES (1 batch and 512 KiB measured no
   different on bench_malloc.py's workloads). */
#ifndef TRANSFER_CACHE_BYTES
#define TRANSFER_CACHE_BYTES ((size_t)1 << 20)
#endif
#ifndef TRANSFER_MIN_BATCHES
#define TRANSFER_MIN_BATCHES 2
#endif
typedef struct {
    pp_lock_t lock;
    span_list_t nonempty;
    size_t free_objs;            /* free objects inside spans (incl. uncarved) */
    int used, cap;
    uint32_t ops, ops_seen;      /* insert/remove calls; ops at the last idle check */
    void *slot_head[TC_SLOTS], *slot_tail[TC_SLOTS];
} __attribute__((aligned(64))) central_t;

static central_t central[MAX_CLASSES];

static void central_release_to_spans(central_t *c, int cl, void *head, uint32_t n) {
    size_t osize = pp_class_size[cl];
    while (n--) {
        void *p = head;
        head = *(void **)p;
        span_t *s = pp_span_of(p);
        if (PP_UNLIKELY(!s || s->sizeclass != cl || s->location != SPAN_IN_USE))
            pp_fatal("free(): invalid pointer", p);
        if (PP_UNLIKELY(((uintptr_t)p - (s->start << PAGE_SHIFT)) % osize != 0))
            pp_fatal("free(): pointer not at the start of an object", p);
        *(void **)p = s->freelist;
        s->freelist = p;
        c->free_objs++;
        --s->refcount;
        if (s->owned) continue;      /* its owner still carves it: see disown_locked */
        if (!s->on_list) {
            spanlist_push(&c->nonempty, s);
            s->on_list = 1;
        }
        if (s->refcount == 0) {
            spanlist_remove(s);
            s->on_list = 0;
            c->free_objs -= pp_class_objs[cl];
            pp_ph_free(s);
        }
    }
}

/* Spans of a thread's own, for the classes under a cache line.  Objects
 * carved one after the other from a shared span go to different threads,
 * and objects smaller than a line share lines: two threads writing their
 * own objects then bounce one line between their cores (false sharing),
 * and a thread that frees another's object and allocates again writes
 * that line too (passive false sharing: mimalloc-bench's cache-scratch,
 * where glibc's 32-byte chunks happened to fall into different lines and
 * ours did not, 1.14x glibc's time).  So for these classes a thread's
 * refill carves fresh objects only from a span no other thread carves
 * (tcache_t.own[cl]): its first refill of the class takes a new span, and
 * a later one once the thread's span is used up and no shared span has
 * free objects.  Objects freed into an owned span wait in its free list
 * until the owner is done with it; it then joins the shared spans (or, if
 * all its objects are free, goes back to the page heap).  *own is NULL
 * before the thread's first refill, OWN_DONE after its span was used up.
 * Caller of everything here holds c->lock. */
static span_t own_done_sentinel;
#define OWN_DONE (&own_done_sentinel)

static void disown_locked(central_t *c, int cl, span_t *s) {
    s->owned = 0;
    if (s->refcount == 0) {
        c->free_objs -= pp_class_objs[cl];
        pp_ph_free(s);
    } else if (s->freelist || s->bump < s->limit) {
        spanlist_push(&c->nonempty, s);
        s->on_list = 1;
    }
}

static void *carve_own(central_t *c, int cl, span_t **own) {
    span_t *s = *own;
    if (s == NULL || (s == OWN_DONE && spanlist_empty(&c->nonempty))) {
        s = pp_ph_alloc_small(cl);
        if (!s) {
            *own = OWN_DONE;                 /* the shared spans may still have objects */
            return NULL;
        }
        s->owned = 1;
        *own = s;
        c->free_objs += pp_class_objs[cl];
    }
    if (s == OWN_DONE) return NULL;      /* take from the shared spans */
    void *p = s->bump;
    s->bump += pp_class_size[cl];
    s->refcount++;
    c->free_objs--;
    if (s->bump >= s->limit) {
        *own = OWN_DONE;
        disown_locked(c, cl, s);
    }
    return p;
}

void pp_central_disown(int cl, span_t **own) {
    central_t *c = &central[cl];
    pp_lock(&c->lock);
    span_t *s = *own;
    if (s && s != OWN_DONE) disown_locked(c, cl, s);
    *own = NULL;
    pp_unlock(&c->lock);
}

static void *central_take_from_spans(central_t *c, int cl, span_t **own) {
    span_t *s;
    if (own) {
        void *p = carve_own(c, cl, own);
        if (p || *own != OWN_DONE) return p;
    }
    if (spanlist_empty(&c->nonempty)) {
        s = pp_ph_alloc_small(cl);
        if (!s) return NULL;
        spanlist_push(&c->nonempty, s);
        s->on_list = 1;
        c->free_objs += pp_class_objs[cl];
    } else {
        s = c->nonempty.head.next;
    }
    void *p;
    if (s->freelist) {
        p = s->freelist;
        s->freelist = *(void **)p;
    } else {
        p = s->bump;
        s->bump += pp_class_size[cl];
    }
    s->refcount++;
    c->free_objs--;
    if (!s->freelist && s->bump >= s->limit) {
        spanlist_remove(s);
        s->on_list = 0;
    }
    return p;
}

/* Insert a list of n objects (linked through their first word). */
void pp_central_insert(int cl, void *head, void *tail, uint32_t n) {
    central_t *c = &central[cl];
    pp_lock(&c->lock);
    c->ops++;
    if (n == pp_class_batch[cl] && c->used < c->cap) {
        c->slot_head[c->used] = head;
        c->slot_tail[c->used] = tail;
        c->used++;
        pp_unlock(&c->lock);
        return;
    }
    central_release_to_spans(c, cl, head, n);
    pp_unlock(&c->lock);
}

/* Remove up to n objects; returns count, list in head and tail. */
uint32_t pp_central_remove(int cl, uint32_t n, void **head, void **tail, span_t **own) {
    central_t *c = &central[cl];
    pp_lock(&c->lock);
    c->ops++;
    if (n == pp_class_batch[cl] && c->used > 0) {
        c->used--;
        *head = c->slot_head[c->used];
        *tail = c->slot_tail[c->used];
        c->slot_head[c->used] = c->slot_tail[c->used] = NULL;
        pp_unlock(&c->lock);
        return n;
    }
    void *h = NULL, *t = NULL;
    uint32_t got = 0;
    while (got < n) {
        void *p = central_take_from_spans(c, cl, own);
        if (!p) break;
        if (!h) t = p;
        *(void **)p = h;
        h = p;
        got++;
    }
    pp_unlock(&c->lock);
    *head = h;
    *tail = t;
    return got;
}

void *pp_central_alloc_one(int cl) {
    void *h, *t;
    return pp_central_remove(cl, 1, &h, &t, NULL) ? h : NULL;
}

void pp_central_free_one(void *p, int cl) {
    *(void **)p = NULL;
    pp_central_insert(cl, p, p, 1);
}


/* ------------------------------------------------------------------ */
/* start-up, flush, fork, statistics                                    */

void pp_central_init(void) {
    for (int cl = 1; cl < pp_num_classes; cl++) {
        spanlist_init(&central[cl].nonempty);
        size_t per_batch = pp_class_batch[cl] * pp_class_size[cl];
        size_t cap = TRANSFER_CACHE_BYTES / per_batch;
        central[cl].cap = (int)(cap < TRANSFER_MIN_BATCHES ? TRANSFER_MIN_BATCHES : cap > TC_SLOTS ? TC_SLOTS : cap);
    }
}

/* Class cl's transfer cache into its spans; c->lock held. */
static void drain_transfer_locked(central_t *c, int cl) {
    while (c->used > 0) {
        c->used--;
        central_release_to_spans(c, cl, c->slot_head[c->used], pp_class_batch[cl]);
    }
}

/* Empty every transfer cache into the spans (empty spans go to the page
   heap): malloc_trim and the like (init.c), and the page heap before it
   grows for a large block (page_heap.c). */
void pp_central_flush(void) {
    for (int cl = 1; cl < pp_num_classes; cl++) {
        central_t *c = &central[cl];
        if (!__atomic_load_n(&c->used, __ATOMIC_RELAXED)) continue;
        pp_lock(&c->lock);
        drain_transfer_locked(c, cl);
        pp_unlock(&c->lock);
    }
}

/* The background release thread, every tick: a class whose lists saw no
   insert or remove since the last tick is idle; its transfer cache is
   emptied into the spans, so that spans whose objects are all free go
   back to the page heap and age out with the rest (otherwise up to 1 MiB
   per class stays resident in a program that has gone idle). */
void pp_central_flush_idle(void) {
    for (int cl = 1; cl < pp_num_classes; cl++) {
        central_t *c = &central[cl];
        if (!__atomic_load_n(&c->used, __ATOMIC_RELAXED) && c->ops == c->ops_seen) continue;
        pp_lock(&c->lock);
        if (c->ops == c->ops_seen) drain_transfer_locked(c, cl);
        c->ops_seen = c->ops;
        pp_unlock(&c->lock);
    }
}

void pp_central_lock_all(void) {
    for (int cl = 1; cl < pp_num_classes; cl++) pp_lock(&central[cl].lock);
}

void pp_central_unlock_all(void) {
    for (int cl = pp_num_classes - 1; cl >= 1; cl--) pp_unlock(&central[cl].lock);
}

void pp_central_stats(struct pprofpy_malloc_stats *st) {
    for (int cl = 1; cl < pp_num_classes; cl++) {
        central_t *c = &central[cl];
        pp_lock(&c->lock);
        st->central_cache_free_bytes += c->free_objs * pp_class_size[cl];
        st->transfer_cache_free_bytes += (size_t)c->used * pp_class_batch[cl] * pp_class_size[cl];
        pp_unlock(&c->lock);
    }
}
