/* Allocator core: size map, metadata arena, page map, page heap, central
 * free lists with transfer caches, and per-thread caches.
 *
 * Lock order (never reversed): thread-cache registry -> central list (by
 * class) -> page heap -> metadata arena / region registry.
 *
 * The tuning constants written `#ifndef NAME` (release rate and delay,
 * transfer-cache size, thread-cache sizing) can be overridden with -DNAME=...
 * to measure alternatives with bench/bench_malloc.py's workload; the values
 * here are the measured choices, each explained where it is defined.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "malloc_extension.h"

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

void pp_lock_slow(pp_lock_t *l) {
    for (int spins = 0;; spins++) {
        while (__atomic_load_n(&l->v, __ATOMIC_RELAXED)) {
            if (spins < 64) {
                __builtin_ia32_pause();
                spins++;
            } else {
                sched_yield();
            }
        }
        if (!__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)) return;
    }
}

void pp_write_str(int fd, const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

size_t pp_fmt_u(char *out, unsigned long long v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}

size_t pp_fmt_x(char *out, unsigned long long v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    out[0] = '0';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++) out[2 + i] = tmp[n - 1 - i];
    out[n + 2] = 0;
    return n + 2;
}

void pp_fatal(const char *msg, const void *ptr) {
    char buf[256];
    size_t n = 0;
    const char *prefix = "pprof_py malloc: ";
    memcpy(buf, prefix, strlen(prefix));
    n += strlen(prefix);
    size_t ml = strlen(msg);
    if (ml > 150) ml = 150;
    memcpy(buf + n, msg, ml);
    n += ml;
    if (ptr) {
        buf[n++] = ' ';
        n += pp_fmt_x(buf + n, (uintptr_t)ptr);
    }
    buf[n++] = '\n';
    buf[n] = 0;
    pp_write_str(2, buf);
    abort();
}

uint64_t pp_random(uint64_t *state) {
    uint64_t x = *state;
    if (!x) x = 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* ------------------------------------------------------------------ */
/* OS memory, metadata arena, owned-region registry                     */

#define MAX_REGIONS 4096
static pp_lock_t region_lock;
static uintptr_t region_start[MAX_REGIONS], region_end[MAX_REGIONS];
static size_t region_count;

static void register_region(void *p, size_t bytes) {
    pp_lock(&region_lock);
    /* extend an adjacent region if possible (heap grows are often contiguous) */
    for (size_t i = 0; i < region_count; i++) {
        if (region_end[i] == (uintptr_t)p) { region_end[i] += bytes; pp_unlock(&region_lock); return; }
        if (region_start[i] == (uintptr_t)p + bytes) { region_start[i] = (uintptr_t)p; pp_unlock(&region_lock); return; }
    }
    if (region_count < MAX_REGIONS) {
        region_start[region_count] = (uintptr_t)p;
        region_end[region_count] = (uintptr_t)p + bytes;
        region_count++;
    }
    pp_unlock(&region_lock);
}

size_t pp_owned_regions(uintptr_t *starts, uintptr_t *ends, size_t max) {
    pp_lock(&region_lock);
    size_t n = region_count < max ? region_count : max;
    memcpy(starts, region_start, n * sizeof(uintptr_t));
    memcpy(ends, region_end, n * sizeof(uintptr_t));
    pp_unlock(&region_lock);
    return n;
}

int pp_owned_region(uintptr_t addr, uintptr_t *end) {
    for (size_t i = 0; i < region_count; i++)
        if (addr >= region_start[i] && addr < region_end[i]) {
            if (end) *end = region_end[i];
            return 1;
        }
    return 0;
}

static size_t metadata_bytes;

void *pp_os_map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    register_region(p, bytes);
    return p;
}

static pp_lock_t meta_lock;
static char *meta_cur, *meta_end;

void *pp_meta_alloc(size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    pp_lock(&meta_lock);
    if ((size_t)(meta_end - meta_cur) < bytes) {
        size_t chunk = bytes > (1 << 20) ? (bytes + 4095) & ~(size_t)4095 : (1 << 20);
        char *p = pp_os_map(chunk);
        if (!p) { pp_unlock(&meta_lock); return NULL; }
        metadata_bytes += chunk;
        if (bytes >= (1 << 20)) { pp_unlock(&meta_lock); return p; }
        meta_cur = p;
        meta_end = p + chunk;
    }
    void *r = meta_cur;
    meta_cur += bytes;
    pp_unlock(&meta_lock);
    return r;
}

/* ------------------------------------------------------------------ */
/* size map                                                             */

#define CLASS_ARRAY_SIZE (((MAX_SMALL_SIZE + 127 + (120 << 7)) >> 7) + 1)
unsigned char pp_class_array[CLASS_ARRAY_SIZE];
size_t pp_class_size[MAX_CLASSES];
static size_t class_pages[MAX_CLASSES];
static uint32_t class_batch[MAX_CLASSES];
static uint32_t class_objs_per_span[MAX_CLASSES];
int pp_num_classes;

static size_t pow2_floor(size_t s) { return (size_t)1 << (63 - __builtin_clzll(s)); }

/* Class spacing, i.e. the worst internal waste:
 *   up to 256 B    16 bytes (every pointer is 16-byte aligned like glibc's)
 *   256 B - 1 KiB  1/16 of the power of two below: at most 5.7% waste,
 *                  2.0% on average over uniformly spread request sizes
 *   above 1 KiB    1/8: at most 11%, 4.1% on average; steps are at least
 *                  128 B, the granularity of pp_class_index.
 * Why not 1/16 above 1 KiB too: every class keeps its own free objects in
 * thread caches, transfer caches and partly used spans, and that idle
 * memory outgrew the waste saved (bench_malloc.py: peak RSS +21% on the
 * two-thread 8 B-32 KiB workload, +97% on the 8 B-1 MiB one). */
static size_t class_step(size_t s) {
    if (s < 256) return 16;
    if (s < 1024) return pow2_floor(s) / 16;
    size_t step = pow2_floor(s) / 8;
    return step < 128 ? 128 : step;
}

static void init_size_map(void) {
    int n = 1;                        /* class 0 = "not a small object" */
    for (size_t s = 16; s <= MAX_SMALL_SIZE;) {
        pp_class_size[n++] = s;
        size_t step = class_step(s);
        s += step;
    }
    pp_num_classes = n;
    for (int c = 1; c < n; c++) {
        size_t s = pp_class_size[c];
        size_t min_objs = s <= 4096 ? 16 : (s <= 32768 ? 4 : 1);
        size_t pages = (s * min_objs + PAGE_SIZE - 1) / PAGE_SIZE;
        while (pages < 256 && (pages * PAGE_SIZE) % s > pages * PAGE_SIZE / 32) pages++;
        class_pages[c] = pages;
        class_objs_per_span[c] = (uint32_t)(pages * PAGE_SIZE / s);
        size_t batch = 65536 / s;
        if (batch < 2) batch = 2;
        if (batch > 32) batch = 32;
        class_batch[c] = (uint32_t)batch;
    }
    int c = 1;
    for (size_t s = 0; s <= MAX_SMALL_SIZE; s += (s < 1024 ? 8 : 128)) {
        while (pp_class_size[c] < s) c++;
        pp_class_array[pp_class_index(s)] = (unsigned char)c;
    }
}

/* ------------------------------------------------------------------ */
/* page map (2-level radix tree: 17 + 18 bits of a 35-bit page id)       */

span_t **pp_pagemap_root[1 << PM_ROOT_BITS];
unsigned char *pp_classmap_root[1 << PM_ROOT_BITS];

static int pagemap_ensure(uintptr_t page, size_t n) {
    for (uintptr_t key = page >> PM_LEAF_BITS; key <= (page + n - 1) >> PM_LEAF_BITS; key++) {
        if (key >= ((uintptr_t)1 << PM_ROOT_BITS)) return 0;
        if (!pp_pagemap_root[key]) {
            span_t **leaf = pp_os_map(sizeof(span_t *) << PM_LEAF_BITS);
            unsigned char *cleaf = pp_os_map((size_t)1 << PM_LEAF_BITS);
            if (!leaf || !cleaf) return 0;
            metadata_bytes += (sizeof(span_t *) + 1) << PM_LEAF_BITS;
            __atomic_store_n(&pp_classmap_root[key], cleaf, __ATOMIC_RELEASE);
            __atomic_store_n(&pp_pagemap_root[key], leaf, __ATOMIC_RELEASE);
        }
    }
    return 1;
}

unsigned char *pp_classflat;

static void classmap_set_range(uintptr_t page, size_t n, int cl) {
    if (pp_classflat) memset(pp_classflat + page, cl, n);
    for (size_t i = 0; i < n; i++) {
        uintptr_t p = page + i;
        pp_classmap_root[p >> PM_LEAF_BITS][p & ((1 << PM_LEAF_BITS) - 1)] = (unsigned char)cl;
    }
}

static inline void pagemap_set(uintptr_t p, span_t *s) {
    pp_pagemap_root[p >> PM_LEAF_BITS][p & ((1 << PM_LEAF_BITS) - 1)] = s;
}

/* Small-object spans: every page, since free() may be given any object. */
static void pagemap_set_range(uintptr_t page, size_t n, span_t *s) {
    for (size_t i = 0; i < n; i++) pagemap_set(page + i, s);
}

/* Large in-use spans and free spans: only the first and the last page.
   free() of a large block looks up its first page, and coalescing looks
   at the pages just outside a span, which are the last page of its left
   neighbour and the first page of its right one.  Keeping interior entries
   would cost one store per page on every carve and merge (a 1 MiB block is
   128 pages); like tcmalloc we leave them stale, and every reader checks
   that the span it found covers the page (pp_span_of, ph_coalesce). */
static inline void pagemap_set_ends(span_t *s) {
    pagemap_set(s->start, s);
    if (s->npages > 1) pagemap_set(s->start + s->npages - 1, s);
}

span_t *pp_span_containing(const void *p) {
    uintptr_t page = (uintptr_t)p >> PAGE_SHIFT;
    uintptr_t end;
    if (!pp_owned_region((uintptr_t)p, &end)) return NULL;
    /* the first page of the span holding `page` is mapped: walk down to it
       (interior entries are NULL or stale) */
    for (uintptr_t q = page; q > 0 && page - q < ((uintptr_t)1 << 26); q--) {
        if (!pp_owned_region(q << PAGE_SHIFT, &end)) return NULL;
        span_t *s = pp_pagemap_get(q);
        if (s && s->location != SPAN_DEAD && s->start == q) return page - q < s->npages ? s : NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* page heap                                                            */

typedef struct { span_t head; } span_list_t;

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

static void list_init(span_list_t *l) { l->head.next = l->head.prev = &l->head; }
static int list_empty(span_list_t *l) { return l->head.next == &l->head; }
static void list_push(span_list_t *l, span_t *s) {
    s->next = l->head.next;
    s->prev = &l->head;
    l->head.next->prev = s;
    l->head.next = s;
}
static void list_remove(span_t *s) {
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

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
        pagemap_set_ends(keep);
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
    if (s->sizeclass) classmap_set_range(s->start, s->npages, 0);
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
    char *p = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    uintptr_t a = ((uintptr_t)p + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (a > (uintptr_t)p) munmap(p, a - (uintptr_t)p);
    size_t tail = ((uintptr_t)p + map_bytes) - (a + bytes);
    if (tail) munmap((char *)(a + bytes), tail);
    uintptr_t page = a >> PAGE_SHIFT;
    if (!pagemap_ensure(page, bytes >> PAGE_SHIFT)) {
        munmap((void *)a, bytes);
        return 0;
    }
    register_region((void *)a, bytes);
    span_t *s = span_new(page, bytes >> PAGE_SHIFT);
    if (!s) return 0;
    ph.system_bytes += bytes;
    pp_note_heap_growth(bytes);            /* MallocExtension::GetHeapGrowthStacks */
    pagemap_set_ends(s);
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
        pagemap_set(s->start, s);          /* its last page is unchanged */
        ph_link_free(s);
        s = r;
        pagemap_set_ends(s);
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
        pagemap_set_ends(s);
        if (l) {
            pagemap_set_ends(l);
            ph_free_locked(l);
        }
        if (t) {
            pagemap_set_ends(t);
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
/* central free lists                                                   */

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
        if (!s->on_list) {
            list_push(&c->nonempty, s);
            s->on_list = 1;
        }
        c->free_objs++;
        if (--s->refcount == 0) {
            list_remove(s);
            s->on_list = 0;
            c->free_objs -= class_objs_per_span[cl];
            pp_lock(&ph.lock);
            ph_free_locked(s);
            pp_unlock(&ph.lock);
        }
    }
}

static void *central_take_from_spans(central_t *c, int cl) {
    span_t *s;
    if (list_empty(&c->nonempty)) {
        int zeroed;
        pp_lock(&ph.lock);
        s = ph_alloc_locked(class_pages[cl], &zeroed);
        if (s) {
            s->sizeclass = (uint16_t)cl;
            pagemap_set_range(s->start, s->npages, s);
            classmap_set_range(s->start, s->npages, cl);
            s->bump = (char *)(s->start << PAGE_SHIFT);
            s->limit = s->bump + class_objs_per_span[cl] * pp_class_size[cl];
        }
        pp_unlock(&ph.lock);
        if (!s) return NULL;
        list_push(&c->nonempty, s);
        s->on_list = 1;
        c->free_objs += class_objs_per_span[cl];
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
        list_remove(s);
        s->on_list = 0;
    }
    return p;
}

/* Insert a list of n objects (linked through their first word). */
static void central_insert(int cl, void *head, void *tail, uint32_t n) {
    central_t *c = &central[cl];
    pp_lock(&c->lock);
    if (n == class_batch[cl] && c->used < c->cap) {
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
static uint32_t central_remove(int cl, uint32_t n, void **head, void **tail) {
    central_t *c = &central[cl];
    pp_lock(&c->lock);
    if (n == class_batch[cl] && c->used > 0) {
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
        void *p = central_take_from_spans(c, cl);
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
    return central_remove(cl, 1, &h, &t) ? h : NULL;
}

void pp_central_free_one(void *p, int cl) {
    *(void **)p = NULL;
    central_insert(cl, p, p, 1);
}

/* ------------------------------------------------------------------ */
/* thread caches                                                        */

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
    uint32_t batch = class_batch[cl];
    while (n > 0) {
        uint32_t k = n < batch ? n : batch;
        void *h = head, *t = head;
        for (uint32_t i = 1; i < k; i++) t = *(void **)t;
        head = *(void **)t;
        *(void **)t = NULL;
        central_insert(cl, h, t, k);
        n -= k;
    }
}

void *pp_tc_fetch(tcache_t *tc, int cl) {
    freelist_t *fl = &tc->lists[cl];
    uint32_t batch = class_batch[cl];
    uint32_t want = fl->max_length < batch ? fl->max_length : batch;
    if (want == 0) want = 1;
    void *h, *t;
    uint32_t got = central_remove(cl, want, &h, &t);
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
    uint32_t batch = class_batch[cl];
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

static void thread_stack_exact(uintptr_t *lo, uintptr_t *hi);

static void tc_destroy(void *arg) {
    tcache_t *tc = arg;
    if (!tc) return;
    pp_tc = NULL;
    tc_state = 2;
    for (int cl = 1; cl < pp_num_classes; cl++) tc_release(tc, cl, tc->lists[cl].length);
    /* the stack's real extent, for the dead-stack record (allocating here is
       safe: this thread's cache is gone, pthread_getattr_np's allocation
       goes to the central lists) */
    uintptr_t lo, hi;
    thread_stack_exact(&lo, &hi);
    if (hi) {
        tc->stack_lo = lo;
        tc->stack_hi = hi;
    }
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

static void thread_stack_exact(uintptr_t *lo, uintptr_t *hi) {
    *lo = *hi = 0;
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

/* Bounds for stack walks of the calling thread, taken in its first malloc:
 * [lo, hi) holds every frame the thread will have.  For threads glibc
 * created, hi is exact: the thread descriptor (pthread_self()) sits just
 * above the stack; lo is only a bound, 1 GiB below, as for the main thread.
 * pthread_getattr_np must not be asked here: it allocates while holding
 * the thread's lock, and that allocation may be the thread's first, the one
 * running this (the sampler's threads, Rust's std and others call it first
 * thing): asking again would deadlock.  tc_destroy asks it for the exact
 * extent, which the leak checker needs. */
static void thread_stack(uintptr_t *lo, uintptr_t *hi) {
    extern void *__libc_stack_end;
    *lo = *hi = 0;
    if (syscall(SYS_gettid) == getpid()) {
        *hi = (uintptr_t)__libc_stack_end;
        *lo = *hi - ((size_t)1 << 30);
        return;
    }
    uintptr_t self = (uintptr_t)pthread_self(), sp = (uintptr_t)__builtin_frame_address(0);
    if (self > sp && self - sp < ((size_t)1 << 30)) {
        *hi = self;
        *lo = self > ((size_t)1 << 30) ? self - ((size_t)1 << 30) : 0;
        return;
    }
    thread_stack_exact(lo, hi);      /* a stack the program provided */
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
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    for (size_t i = 0; i < dead_count;) {      /* a new thread may reuse a cached stack */
        if (dead_lo[i] <= here && here < dead_hi[i]) {
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
/* init, fork, stats, release                                           */

int pp_inited;
static pp_lock_t init_lock;

void pp_init(void) {
    pp_lock(&init_lock);
    if (pp_inited) {
        pp_unlock(&init_lock);
        return;
    }
    init_size_map();
    pp_classflat = pp_os_map(CLASSFLAT_PAGES);   /* MAP_NORESERVE, see internal.h */
    for (int i = 0; i <= MAX_PAGES_LISTS; i++) {
        list_init(&ph.normal[i]);
        list_init(&ph.returned[i]);
    }
    list_init(&ph.large_normal);
    list_init(&ph.large_returned);
    ph.release_threshold = (size_t)32 << 20;
    const char *rt = pp_getenv("PPROFPY_MALLOC_RELEASE_THRESHOLD");
    if (rt && *rt >= '0' && *rt <= '9') {
        size_t v = 0;
        for (; *rt >= '0' && *rt <= '9'; rt++) v = v * 10 + (size_t)(*rt - '0');
        ph.release_threshold = v;
    }
    for (int cl = 1; cl < pp_num_classes; cl++) {
        list_init(&central[cl].nonempty);
        size_t per_batch = class_batch[cl] * pp_class_size[cl];
        size_t cap = TRANSFER_CACHE_BYTES / per_batch;
        central[cl].cap = (int)(cap < TRANSFER_MIN_BATCHES ? TRANSFER_MIN_BATCHES : cap > TC_SLOTS ? TC_SLOTS : cap);
    }
    tc_key_ok = pthread_key_create(&tc_key, tc_destroy) == 0;
    __atomic_store_n(&pp_inited, 1, __ATOMIC_RELEASE);
    pp_unlock(&init_lock);
    pp_prof_init_from_env();
}

void pp_lock_all(void) {
    pp_prof_lock_all();
    pp_lock(&tc_lock);
    for (int cl = 1; cl < pp_num_classes; cl++) pp_lock(&central[cl].lock);
    pp_lock(&ph.lock);
    pp_lock(&meta_lock);
    pp_lock(&region_lock);
}

void pp_unlock_all(void) {
    pp_unlock(&region_lock);
    pp_unlock(&meta_lock);
    pp_unlock(&ph.lock);
    for (int cl = pp_num_classes - 1; cl >= 1; cl--) pp_unlock(&central[cl].lock);
    pp_unlock(&tc_lock);
    pp_prof_unlock_all();
}

void pp_release_free_memory(void) {
    if (!pp_inited) return;
    tcache_t *tc = pp_tc;
    if (tc)
        for (int cl = 1; cl < pp_num_classes; cl++) tc_release(tc, cl, tc->lists[cl].length);
    /* flush transfer caches to the spans so empty spans go back to the heap */
    for (int cl = 1; cl < pp_num_classes; cl++) {
        central_t *c = &central[cl];
        pp_lock(&c->lock);
        while (c->used > 0) {
            c->used--;
            central_release_to_spans(c, cl, c->slot_head[c->used], class_batch[cl]);
        }
        pp_unlock(&c->lock);
    }
    pp_lock(&ph.lock);
    ph_release_until(0, 0, 1);
    pp_unlock(&ph.lock);
}

void pp_get_stats(struct pprofpy_malloc_stats *st) {
    memset(st, 0, sizeof *st);
    if (!pp_inited) return;
    pp_lock(&ph.lock);
    st->heap_size = ph.system_bytes;
    st->pageheap_free_bytes = ph.free_bytes;
    st->pageheap_unmapped_bytes = ph.unmapped_bytes;
    pp_unlock(&ph.lock);
    for (int cl = 1; cl < pp_num_classes; cl++) {
        central_t *c = &central[cl];
        pp_lock(&c->lock);
        st->central_cache_free_bytes += c->free_objs * pp_class_size[cl];
        st->transfer_cache_free_bytes += (size_t)c->used * class_batch[cl] * pp_class_size[cl];
        pp_unlock(&c->lock);
    }
    pp_lock(&tc_lock);
    for (tcache_t *tc = tc_all; tc; tc = tc->next_all) {
        st->thread_cache_free_bytes += __atomic_load_n(&tc->size, __ATOMIC_RELAXED);
        st->thread_caches++;
    }
    pp_unlock(&tc_lock);
    st->metadata_bytes = metadata_bytes;
    size_t free_all = st->pageheap_free_bytes + st->pageheap_unmapped_bytes + st->central_cache_free_bytes +
                      st->transfer_cache_free_bytes + st->thread_cache_free_bytes;
    st->allocated_bytes = st->heap_size > free_all ? st->heap_size - free_all : 0;
    size_t resident = st->heap_size - st->pageheap_unmapped_bytes;
    st->fragmentation = resident ? 1.0 - (double)st->allocated_bytes / (double)resident : 0.0;
    st->size_classes = (size_t)(pp_num_classes - 1);
    st->release_threshold = ph.release_threshold;
}

size_t pp_class_pages(int cl) { return class_pages[cl]; }
