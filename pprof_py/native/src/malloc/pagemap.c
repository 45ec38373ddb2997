/* Page map: page id -> span, and page id -> size class byte.
 *
 * Both are 2-level radix trees over a 35-bit page id (17 root bits, 18
 * leaf bits: one leaf covers 2 GiB of address space).  The roots are
 * static arrays; a leaf is mapped when the page heap first grows into its
 * range, and never freed, so lock-free readers (free(), the leak checker)
 * can always follow a non-NULL root entry.  Writers hold the page heap's
 * lock.
 */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

span_t **pp_pagemap_root[1 << PM_ROOT_BITS];
unsigned char *pp_classmap_root[1 << PM_ROOT_BITS];

int pp_pagemap_ensure(uintptr_t page, size_t n) {
    for (uintptr_t key = page >> PM_LEAF_BITS; key <= (page + n - 1) >> PM_LEAF_BITS; key++) {
        if (key >= ((uintptr_t)1 << PM_ROOT_BITS)) return 0;
        if (!pp_pagemap_root[key]) {
            span_t **leaf = pp_os_map(sizeof(span_t *) << PM_LEAF_BITS);
            unsigned char *cleaf = pp_os_map((size_t)1 << PM_LEAF_BITS);
            if (!leaf || !cleaf) return 0;
            pp_metadata_bytes += (sizeof(span_t *) + 1) << PM_LEAF_BITS;
            __atomic_store_n(&pp_classmap_root[key], cleaf, __ATOMIC_RELEASE);
            __atomic_store_n(&pp_pagemap_root[key], leaf, __ATOMIC_RELEASE);
        }
    }
    return 1;
}

void pp_classmap_set_range(uintptr_t page, size_t n, int cl) {
    for (size_t i = 0; i < n; i++) {
        uintptr_t p = page + i;
        pp_classmap_root[p >> PM_LEAF_BITS][p & ((1 << PM_LEAF_BITS) - 1)] = (unsigned char)cl;
    }
}

void pp_pagemap_set(uintptr_t p, span_t *s) {
    pp_pagemap_root[p >> PM_LEAF_BITS][p & ((1 << PM_LEAF_BITS) - 1)] = s;
}

/* Small-object spans: every page, since free() may be given any object. */
void pp_pagemap_set_range(uintptr_t page, size_t n, span_t *s) {
    for (size_t i = 0; i < n; i++) pp_pagemap_set(page + i, s);
}

/* Large in-use spans and free spans: only the first and the last page.
   free() of a large block looks up its first page, and coalescing looks
   at the pages just outside a span, which are the last page of its left
   neighbour and the first page of its right one.  Keeping interior entries
   would cost one store per page on every carve and merge (a 1 MiB block is
   128 pages); like tcmalloc we leave them stale, and every reader checks
   that the span it found covers the page (pp_span_of, ph_coalesce). */
void pp_pagemap_set_ends(span_t *s) {
    pp_pagemap_set(s->start, s);
    if (s->npages > 1) pp_pagemap_set(s->start + s->npages - 1, s);
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

