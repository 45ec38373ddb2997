/* Page heap: runs of 8 KiB pages ("spans") for small-object spans and
 * large blocks, from mmap'ed memory.
 *
 * Free spans live on exact-size lists (1..256 pages, a bitmap finds the
 * first non-empty one) or on one best-fit list above 256 pages, split into
 * resident ("normal") and returned-to-the-OS lists.  Freed spans coalesce
 * with free neighbours of the same kind.  Free resident memory goes back
 * to the OS (madvise DONTNEED) incrementally as more pages are freed.
 * Everything here runs under ph.lock; callers outside this file use the
 * pp_ph_* / pp_large_* functions, which take it.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "malloc_extension.h"

static struct {
    pp_lock_t lock;
    span_list_t normal[MAX_PAGES_LISTS + 1], returned[MAX_PAGES_LISTS + 1];
    span_list_t large_normal, large_returned;
    size_t free_bytes, unmapped_bytes, system_bytes;
    size_t release_threshold;
    size_t clock;                   /* pages freed so far: ages free spans */
    long scavenge_counter;          /* pages to free before the next incremental release */
    int release_index;              /* round-robin over the free lists */
    uint64_t nonempty[(MAX_PAGES_LISTS + 64) / 64];   /* bit k: normal[k] or returned[k] not empty */
    span_t *span_freelist;
} ph;

static span_t *span_new(uintptr_t start, size_t npages) {
    span_t *s = ph.span_freelist;
    if (s) ph.span_freelist = s->next;
    else {
        s = pp_meta_alloc(sizeof(span_t));
        if (!s) return NULL;
    }
    memset(s, 0, sizeof *s);
    s->start = start;
    s->npages = npages;
    return s;
}

static void span_delete(span_t *s) {
    s->location = SPAN_DEAD;
    s->next = ph.span_freelist;
    ph.span_freelist = s;
}

static span_list_t *free_list_for(span_t *s) {
    if (s->npages <= MAX_PAGES_LISTS)
        return s->location == SPAN_RETURNED ? &ph.returned[s->npages] : &ph.normal[s->npages];
    return s->location == SPAN_RETURNED ? &ph.large_returned : &ph.large_normal;
}

static void ph_link_free(span_t *s) {
    list_push(free_list_for(s), s);
    if (s->npages <= MAX_PAGES_LISTS) ph.nonempty[s->npages >> 6] |= (uint64_t)1 << (s->npages & 63);
    if (s->location == SPAN_RETURNED) ph.unmapped_bytes += s->npages << PAGE_SHIFT;
    else ph.free_bytes += s->npages << PAGE_SHIFT;
}

static void ph_unlink_free(span_t *s) {
    list_remove(s);
    size_t k = s->npages;
    if (k <= MAX_PAGES_LISTS && list_empty(&ph.normal[k]) && list_empty(&ph.returned[k]))
        ph.nonempty[k >> 6] &= ~((uint64_t)1 << (k & 63));
    if (s->location == SPAN_RETURNED) ph.unmapped_bytes -= s->npages << PAGE_SHIFT;
    else ph.free_bytes -= s->npages << PAGE_SHIFT;
}

/* Merge free neighbours into s (s is not on a list); returns the survivor. */
static span_t *ph_coalesce(span_t *s) {
    for (int side = 0; side < 2; side++) {
        span_t *o = side == 0 ? pp_pagemap_get(s->start - 1) : pp_pagemap_get(s->start + s->npages);
        /* merge only spans of the same kind (resident with resident,
           released with released), like gperftools: a resident span stays
           all resident, so reusing it faults nothing in, and released
           pages are reused only when no resident span fits */
        if (!o || o->location != s->location) continue;
        /* a stale entry (a recycled span struct) is not a neighbour */
        if (side == 0 ? o->start + o->npages != s->start : o->start != s->start + s->npages) continue;
        ph_unlink_free(o);
        int loc = s->location;
        span_t *keep = o->npages >= s->npages ? o : s;
        span_t *gone = keep == o ? s : o;
        uintptr_t start = s->start < o->start ? s->start : o->start;
        keep->start = start;
        keep->npages = s->npages + o->npages;
        keep->location = (uint8_t)loc;
        span_delete(gone);
        pp_pagemap_set_ends(keep);
        s = keep;
    }
    return s;
}

/* Release resident free spans until free_bytes <= target.  Spans that have
   stayed free for a while (idle for more than `idle` pages of freeing
   activity) go first, largest first; recently freed (hot) spans only when
   idle ones do not suffice and `force` is set. */
static span_t *ph_pick_release(size_t idle) {
    span_t *best = NULL;
    for (span_t *s = ph.large_normal.head.next; s != &ph.large_normal.head; s = s->next)
        if (ph.clock - s->freed_at >= idle && (!best || s->npages > best->npages)) best = s;
    if (best) return best;
    for (int n = MAX_PAGES_LISTS; n >= 1; n--) {
        span_list_t *l = &ph.normal[n];
        for (span_t *s = l->head.prev; s != &l->head; s = s->prev)     /* oldest first */
            if (ph.clock - s->freed_at >= idle) return s;
    }
    return NULL;
}

static void ph_release_until(size_t target, size_t idle, int force) {
    while (ph.free_bytes > target) {
        span_t *s = ph_pick_release(idle);
        if (!s && force) s = ph_pick_release(0);
        if (!s) break;
        ph_unlink_free(s);
        madvise((void *)(s->start << PAGE_SHIFT), s->npages << PAGE_SHIFT, MADV_DONTNEED);
        s->location = SPAN_RETURNED;
        s = ph_coalesce(s);
        ph_link_free(s);
    }
}

/* Incremental release: after a span of n pages is returned to the OS, the
   next release waits until RELEASE_RATE * n more pages were freed;
   RELEASE_DELAY when there was nothing to release.  (tcmalloc's 1000 and
   1 << 18 measured the same speed on largemix with 17% more peak RSS.) */
#ifndef RELEASE_RATE
#define RELEASE_RATE 500
#endif
#define FORCED_COALESCE_BYTES ((size_t)128 << 20)
#ifndef RELEASE_DELAY
#define RELEASE_DELAY ((long)1 << 14)
#endif
#define MAX_RELEASE_DELAY ((size_t)1 << 20)

/* Release the oldest resident free span of the next non-empty list
   (round robin over sizes, large spans included); returns its pages. */
static size_t ph_release_one(void) {
    for (int i = 0; i <= MAX_PAGES_LISTS; i++) {
        int k = ph.release_index;
        ph.release_index = k >= MAX_PAGES_LISTS ? 0 : k + 1;
        span_list_t *l = k == 0 ? &ph.large_normal : &ph.normal[k];
        if (list_empty(l)) continue;
        span_t *s = l->head.prev;              /* oldest */
        size_t n = s->npages;
        ph_unlink_free(s);
        madvise((void *)(s->start << PAGE_SHIFT), n << PAGE_SHIFT, MADV_DONTNEED);
        s->location = SPAN_RETURNED;
        s = ph_coalesce(s);
        ph_link_free(s);
        return n;
    }
    return 0;
}

/* Give a span back to the page heap.  Caller holds ph.lock. */
static void ph_free_locked(span_t *s) {
    if (s->sizeclass) pp_classmap_set_range(s->start, s->npages, 0);
    s->sizeclass = 0;
    s->freelist = NULL;
    s->refcount = 0;
    s->location = SPAN_FREE;
    size_t freed = s->npages;
    ph.clock += freed;
    s = ph_coalesce(s);
    s->freed_at = ph.clock;
    ph_link_free(s);
    /* return memory to the OS incrementally (like gperftools): the oldest
       free span of the next size list after RELEASE_RATE pages freed per
       page last released, so a churning program pays few madvise calls and
       page faults while an idle heap still drains; far above the threshold
       release in bulk */
    if (PP_UNLIKELY(ph.free_bytes > 4 * ph.release_threshold)) {
        ph_release_until(ph.release_threshold / 2, 0, 1);
        return;
    }
    ph.scavenge_counter -= (long)freed;
    if (PP_LIKELY(ph.scavenge_counter >= 0)) return;
    ph.scavenge_counter = RELEASE_DELAY;
    size_t n = ph_release_one();
    if (n) {
        size_t wait = n * RELEASE_RATE;
        ph.scavenge_counter = (long)(wait > MAX_RELEASE_DELAY ? MAX_RELEASE_DELAY : wait);
    }
}

static int ph_grow(size_t npages) {
    size_t bytes = npages << PAGE_SHIFT;
    size_t min = (size_t)4 << 20;
    if (bytes < min) bytes = min;
    if (bytes / PAGE_SIZE != (bytes >> PAGE_SHIFT) || bytes > ((size_t)1 << 46)) return 0;
    size_t map_bytes = bytes + PAGE_SIZE;
    /* No MAP_NORESERVE: heap memory goes through the kernel's overcommit
       check (vm.overcommit_memory), so a request no machine can back, such
       as malloc(2^40), fails with ENOMEM as it does with glibc and tcmalloc
       instead of succeeding and faulting later (issue 13.7). */
    char *p = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 0;
    uintptr_t a = ((uintptr_t)p + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (a > (uintptr_t)p) munmap(p, a - (uintptr_t)p);
    size_t tail = ((uintptr_t)p + map_bytes) - (a + bytes);
    if (tail) munmap((char *)(a + bytes), tail);
    uintptr_t page = a >> PAGE_SHIFT;
    if (!pp_pagemap_ensure(page, bytes >> PAGE_SHIFT)) {
        munmap((void *)a, bytes);
        return 0;
    }
    pp_register_region((void *)a, bytes);
    span_t *s = span_new(page, bytes >> PAGE_SHIFT);
    if (!s) return 0;
    ph.system_bytes += bytes;
    pp_pagemap_set_ends(s);
    s->location = SPAN_RETURNED;           /* fresh memory: not resident, zero-filled */
    s = ph_coalesce(s);
    ph_link_free(s);
    return 1;
}

static span_t *ph_find(size_t n) {
    if (n <= MAX_PAGES_LISTS) {
        /* first non-empty exact list of >= n pages, found in the bitmap */
        size_t w = n >> 6;
        uint64_t bits = ph.nonempty[w] & (~(uint64_t)0 << (n & 63));
        for (;;) {
            if (bits) {
                size_t k = (w << 6) + (size_t)__builtin_ctzll(bits);
                if (!list_empty(&ph.normal[k])) return ph.normal[k].head.next;
                return ph.returned[k].head.next;
            }
            if (++w >= sizeof ph.nonempty / sizeof ph.nonempty[0]) break;
            bits = ph.nonempty[w];
        }
    }
    span_t *best = NULL;
    for (int pass = 0; pass < 2; pass++) {
        span_list_t *l = pass == 0 ? &ph.large_normal : &ph.large_returned;
        for (span_t *s = l->head.next; s != &l->head; s = s->next)
            if (s->npages >= n && (!best || s->npages < best->npages ||
                                   (s->npages == best->npages && s->start < best->start)))
                best = s;
        if (best) return best;
    }
    return NULL;
}

/* Allocate a span of n pages; *zeroed tells whether all of it is fresh from the OS. */
static span_t *ph_alloc_locked(size_t n, int *zeroed) {
    span_t *s = ph_find(n);
    if (!s && ph.unmapped_bytes > 0 && ph.free_bytes + ph.unmapped_bytes >= ph.system_bytes / 4 &&
        ph.system_bytes / FORCED_COALESCE_BYTES != (ph.system_bytes + (n << PAGE_SHIFT)) / FORCED_COALESCE_BYTES) {
        /* about to grow while many pages are free but split into resident
           and released pieces: release everything so they coalesce */
        ph_release_until(0, 0, 1);
        s = ph_find(n);
    }
    if (!s) {
        if (!ph_grow(n)) return NULL;
        s = ph_find(n);
        if (!s) return NULL;
    }
    ph_unlink_free(s);
    int was_returned = s->location == SPAN_RETURNED;
    if (zeroed) *zeroed = was_returned;
    if (s->npages > n) {
        /* carve the front; the remainder keeps the old span struct so only n
           page-map entries change */
        span_t *r = span_new(s->start, n);
        if (!r) {
            ph_link_free(s);
            return NULL;
        }
        s->start += n;
        s->npages -= n;
        pp_pagemap_set(s->start, s);          /* its last page is unchanged */
        ph_link_free(s);
        s = r;
        pp_pagemap_set_ends(s);
    }
    s->location = SPAN_IN_USE;
    s->sizeclass = 0;
    s->sampled = 0;
    return s;
}

void *pp_large_alloc(size_t bytes, size_t align, int *zeroed) {
    if (bytes > ((size_t)1 << 46)) return NULL;
    size_t n = (bytes + PAGE_SIZE - 1) >> PAGE_SHIFT;
    if (n == 0) n = 1;
    size_t align_pages = align > PAGE_SIZE ? align >> PAGE_SHIFT : 1;
    pp_lock(&ph.lock);
    span_t *s = ph_alloc_locked(n + align_pages - 1, zeroed);
    if (s && align_pages > 1) {
        uintptr_t aligned = (s->start + align_pages - 1) & ~(uintptr_t)(align_pages - 1);
        size_t lead = aligned - s->start, trail = s->npages - lead - n;
        span_t *l = lead ? span_new(s->start, lead) : NULL;
        span_t *t = trail ? span_new(aligned + n, trail) : NULL;
        s->start = aligned;
        s->npages = n;
        pp_pagemap_set_ends(s);
        if (l) {
            pp_pagemap_set_ends(l);
            ph_free_locked(l);
        }
        if (t) {
            pp_pagemap_set_ends(t);
            ph_free_locked(t);
        }
    }
    pp_unlock(&ph.lock);
    if (!s) return NULL;
    return (void *)(s->start << PAGE_SHIFT);
}

void pp_large_free(span_t *s) {
    pp_lock(&ph.lock);
    if (s->location != SPAN_IN_USE) {
        pp_unlock(&ph.lock);
        pp_fatal("free(): double free or invalid pointer", (void *)(s->start << PAGE_SHIFT));
    }
    ph_free_locked(s);
    pp_unlock(&ph.lock);
}


/* ------------------------------------------------------------------ */
/* small-object spans, start-up, fork, statistics                       */

span_t *pp_ph_alloc_small(int cl) {
    int zeroed;
    pp_lock(&ph.lock);
    span_t *s = ph_alloc_locked(pp_class_pages[cl], &zeroed);
    if (s) {
        s->sizeclass = (uint16_t)cl;
        pp_pagemap_set_range(s->start, s->npages, s);
        pp_classmap_set_range(s->start, s->npages, cl);
        s->bump = (char *)(s->start << PAGE_SHIFT);
        s->limit = s->bump + pp_class_objs[cl] * pp_class_size[cl];
    }
    pp_unlock(&ph.lock);
    return s;
}

void pp_ph_free(span_t *s) {
    pp_lock(&ph.lock);
    ph_free_locked(s);
    pp_unlock(&ph.lock);
}

void pp_ph_init(size_t release_threshold) {
    for (int i = 0; i <= MAX_PAGES_LISTS; i++) {
        list_init(&ph.normal[i]);
        list_init(&ph.returned[i]);
    }
    list_init(&ph.large_normal);
    list_init(&ph.large_returned);
    ph.release_threshold = release_threshold;
}

size_t pp_ph_release_all(void) {
    pp_lock(&ph.lock);
    size_t before = ph.unmapped_bytes;
    ph_release_until(0, 0, 1);
    size_t released = ph.unmapped_bytes - before;
    pp_unlock(&ph.lock);
    return released;
}

void pp_ph_set_release_threshold(size_t bytes) {
    pp_lock(&ph.lock);
    ph.release_threshold = bytes;
    pp_unlock(&ph.lock);
}

void pp_ph_lock_all(void) { pp_lock(&ph.lock); }
void pp_ph_unlock_all(void) { pp_unlock(&ph.lock); }

void pp_ph_stats(struct pprofpy_malloc_stats *st) {
    pp_lock(&ph.lock);
    st->heap_size = ph.system_bytes;
    st->pageheap_free_bytes = ph.free_bytes;
    st->pageheap_unmapped_bytes = ph.unmapped_bytes;
    st->release_threshold = ph.release_threshold;
    pp_unlock(&ph.lock);
}
