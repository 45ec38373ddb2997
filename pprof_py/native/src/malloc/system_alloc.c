/* Memory from the operating system and the allocator's own metadata.
 *
 * Every range the allocator maps is recorded in the owned-region registry,
 * which the leak checker uses to skip our own memory when it scans for
 * roots, and bad-free diagnostics use to tell "not ours" from "inside a
 * block".  Metadata (span structs, thread caches) comes from a bump arena
 * of 1 MiB chunks that is never freed, so a stale span pointer read from
 * the page map always points at readable memory.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <string.h>

#include "internal.h"

#define MAX_REGIONS 4096
static pp_lock_t region_lock;
static uintptr_t region_start[MAX_REGIONS], region_end[MAX_REGIONS];
static size_t region_count;

void pp_register_region(void *p, size_t bytes) {
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

size_t pp_metadata_bytes;   /* bytes mapped for metadata (page map leaves included) */

/* Metadata mappings (page-map leaves, the metadata arena, the profiler's
 * tables) are asked for at their own stretch of address space, starting
 * META_ZONE_GAP below the heap's first reservation (see below) and going
 * up, so that they do not take the place right below the heap where its
 * next reservation should join it: a page-map leaf there made realloc's
 * growth to 64 MiB move the block instead of growing it in place (2x the
 * time, 151 instead of 87 MiB peak RSS).  Each call claims its own range;
 * one the kernel cannot give (something is there) is mapped wherever it
 * puts it. */
#define META_ZONE_GAP ((uintptr_t)64 << 30)
static uintptr_t meta_zone_next;          /* 0: no reservation yet, no hint */

/* The address to ask mmap for `bytes` of metadata (NULL: anywhere). */
void *pp_meta_zone_hint(size_t bytes) {
    if (!__atomic_load_n(&meta_zone_next, __ATOMIC_RELAXED)) return NULL;
    size_t claim = (bytes + 4095) & ~(size_t)4095;
    return (void *)__atomic_fetch_add(&meta_zone_next, claim, __ATOMIC_RELAXED);
}

void *pp_os_map(size_t bytes) {
    void *hint = pp_meta_zone_hint(bytes);
    void *p = mmap(hint, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    pp_register_region(p, bytes);
    return p;
}

/* The page heap's memory source (page_heap.c's growth, and
 * TCMalloc_SystemAlloc for code written against tcmalloc's internals):
 * `bytes` (a multiple of 4 KiB) of anonymous memory aligned to `align` (a
 * power of two >= 4 KiB).  No MAP_NORESERVE: heap memory goes through the
 * kernel's overcommit check (vm.overcommit_memory), so a request no machine
 * can back, such as malloc(2^40), fails with ENOMEM as it does with glibc
 * and tcmalloc instead of succeeding and faulting later.
 * Exactly `bytes` is mapped first: the kernel places it right below the
 * previous region, so the two are adjacent and their free spans can
 * coalesce.  Only a misaligned result is remapped with slack and trimmed
 * (which leaves a gap).  Not registered as an owned region (the caller
 * does that if the memory is the allocator's). */
void *pp_os_map_heap(size_t bytes, size_t align) {
    const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
    char *p = mmap(NULL, bytes, prot, flags, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = (uintptr_t)p;
    if (a & (align - 1)) {
        munmap(p, bytes);
        size_t map_bytes = bytes + align;
        if (map_bytes < bytes) return NULL;
        p = mmap(NULL, map_bytes, prot, flags, -1, 0);
        if (p == MAP_FAILED) return NULL;
        a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
        if (a > (uintptr_t)p) munmap(p, a - (uintptr_t)p);
        size_t tail = ((uintptr_t)p + map_bytes) - (a + bytes);
        if (tail) munmap((char *)(a + bytes), tail);
    }
    return (void *)a;
}

/* The page heap's address space, reserved ahead.  Each heap region is
 * committed (mprotect to read-write) from the top of a reserved range
 * (PROT_NONE: no RSS, no commit charge) downwards, so consecutive regions
 * are adjacent and their free spans coalesce, even when something else maps
 * memory between two of our growths.  Without it every such mapping split
 * the heap (CPython's 1 MiB pymalloc arenas land between 4 MiB regions;
 * so did our own page-map leaves whenever the heap crossed a 2 GiB
 * boundary: malloc-large's peak RSS was 466 MiB, but 490-520 MiB in the
 * quarter of runs whose randomised addresses put a boundary in the way).
 * A new reservation is asked for right below the previous one (so the two
 * join); it is 64 MiB, or half of what the reservations gave so far, or
 * twice the request, whichever is largest.  Committing goes through the
 * kernel's overcommit check like a plain mmap (the reservation carries no
 * MAP_NORESERVE: mprotect charges the pages it makes writable, and fails
 * with ENOMEM, leaving the reservation intact).  Requests above 1 GiB, and
 * any growth when no reservation can be made (RLIMIT_AS), get a mapping of
 * their own as before.  Callers hold the page heap's lock. */
#define HEAP_RESERVE_MIN ((size_t)64 << 20)
#define HEAP_RESERVE_MAX_REQUEST ((size_t)1 << 30)
static uintptr_t reserve_lo, reserve_hi;   /* [lo, hi): reserved, not committed yet */
static size_t reserve_committed;           /* bytes committed from reservations so far */

static int reserve_more(size_t bytes) {
    size_t size = reserve_committed / 2;
    if (size < HEAP_RESERVE_MIN) size = HEAP_RESERVE_MIN;
    if (size < 2 * bytes) size = 2 * bytes;
    size = (size + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1);
    for (;;) {
        void *hint = reserve_lo > size ? (void *)(reserve_lo - size) : NULL;
        char *p = mmap(hint, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            uintptr_t a = (uintptr_t)p;
            if (reserve_lo && a + size == reserve_lo) {   /* right below: one range */
                reserve_lo = a;
                return 1;
            }
            if (a & (PAGE_SIZE - 1)) {                   /* trim to whole 8 KiB pages */
                size_t head = PAGE_SIZE - (a & (PAGE_SIZE - 1));
                munmap(p, head);
                munmap(p + size - (PAGE_SIZE - head), PAGE_SIZE - head);
                a += head;
                size -= PAGE_SIZE;
            }
            if (reserve_hi > reserve_lo) munmap((void *)reserve_lo, reserve_hi - reserve_lo);
            reserve_lo = a;
            reserve_hi = a + size;
            if (!__atomic_load_n(&meta_zone_next, __ATOMIC_RELAXED) && a > 2 * META_ZONE_GAP)
                __atomic_store_n(&meta_zone_next, a - META_ZONE_GAP, __ATOMIC_RELAXED);
            return 1;
        }
        if (size <= bytes) return 0;
        size = bytes;                                    /* address space is short: just this */
    }
}

static void *reserve_commit(size_t bytes) {
    if (bytes > HEAP_RESERVE_MAX_REQUEST) return NULL;
    if (reserve_hi - reserve_lo < bytes && !reserve_more(bytes)) return NULL;
    uintptr_t a = reserve_hi - bytes;
    if (mprotect((void *)a, bytes, PROT_READ | PROT_WRITE) != 0) return NULL;
    reserve_hi = a;
    reserve_committed += bytes;
    return (void *)a;
}

/* The program's SysAllocator (MallocExtension::SetSystemAllocator), as a
   C function: gperftools_extension.cc sets it; NULL = our own mappings. */
void *(*volatile pp_user_sys_alloc)(size_t size, size_t *actual, size_t align);

/* Memory for the page heap to grow by: from the program's SysAllocator if it
 * installed one (called with the page heap's lock held, as tcmalloc does:
 * it must not call malloc), else pp_os_map_heap.  *actual = usable bytes
 * (>= bytes, a multiple of PAGE_SIZE, PAGE_SIZE-aligned start); *zeroed = 1
 * when the memory is fresh from the kernel (all zero, for calloc). */
void *pp_heap_source(size_t bytes, size_t *actual, int *zeroed) {
    void *(*user)(size_t, size_t *, size_t) = pp_user_sys_alloc;
    if (!user) {
        *actual = bytes;
        *zeroed = 1;
        void *p = reserve_commit(bytes);
        return p ? p : pp_os_map_heap(bytes, PAGE_SIZE);
    }
    size_t got = 0;
    char *p = user(bytes, &got, PAGE_SIZE);
    if (!p) return NULL;
    if (got < bytes) got = bytes;                  /* a SysAllocator returns at least size */
    /* one that ignored the alignment: use the aligned whole pages inside */
    uintptr_t a = ((uintptr_t)p + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
    size_t usable = (got - (a - (uintptr_t)p)) & ~(PAGE_SIZE - 1);
    if (usable < PAGE_SIZE) return NULL;
    *actual = usable;
    *zeroed = 0;                                   /* not known to be zero */
    return (void *)a;
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
        pp_metadata_bytes += chunk;
        if (bytes >= (1 << 20)) { pp_unlock(&meta_lock); return p; }
        meta_cur = p;
        meta_end = p + chunk;
    }
    void *r = meta_cur;
    meta_cur += bytes;
    pp_unlock(&meta_lock);
    return r;
}


/* fork(): taken last, released first (see init.c's lock order) */
void pp_sys_lock_all(void) {
    pp_lock(&meta_lock);
    pp_lock(&region_lock);
}

void pp_sys_unlock_all(void) {
    pp_unlock(&region_lock);
    pp_unlock(&meta_lock);
}
