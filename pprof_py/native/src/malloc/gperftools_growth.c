/* MallocExtension::GetHeapGrowthStacks: the stacks that made the page heap
 * grow.  page_heap.c calls pp_note_heap_growth() each time it maps more memory
 * for the page heap (with the page-heap lock held), so this file takes no
 * allocator lock and maps its table with the raw system call.  Like
 * tcmalloc, every growth is one entry (count 1, size = bytes mapped), in
 * time order, and the list is kept for the life of the process.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "helper_threads.h"

#define GROWTH_DEPTH 30

struct growth {
    size_t bytes;
    int depth;
    void *pcs[GROWTH_DEPTH];
};

static pp_lock_t growth_lock;
static struct growth *growths;
static size_t ngrowths, growth_cap;

void pp_note_heap_growth(size_t bytes) {
    void *pcs[GROWTH_DEPTH];
    int depth = pp_stack_above_library(pcs, GROWTH_DEPTH, 0);
    pp_lock(&growth_lock);
    if (ngrowths == growth_cap) {
        size_t cap = growth_cap ? growth_cap * 2 : 1024;
        /* with the other metadata, away from the heap (system_alloc.c) */
        void *m = pp_raw_mmap(pp_meta_zone_hint(cap * sizeof(struct growth)), cap * sizeof(struct growth),
                              PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            pp_unlock(&growth_lock);
            return;
        }
        if (growths) {
            memcpy(m, growths, ngrowths * sizeof(struct growth));
            pp_raw_munmap(growths, growth_cap * sizeof(struct growth));
        }
        growths = m;
        growth_cap = cap;
    }
    struct growth *g = &growths[ngrowths++];
    g->bytes = bytes;
    g->depth = depth;
    memcpy(g->pcs, pcs, sizeof(void *) * (size_t)depth);
    pp_unlock(&growth_lock);
}

/* growable text in malloc'ed memory (called by the program, not the allocator) */
typedef struct {
    char *p;
    size_t len, cap;
} text_t;

static void add(text_t *t, const char *s, size_t n) {
    if (!t->p) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap * 2 + n;
        char *q = realloc(t->p, cap);
        if (!q) {
            free(t->p);
            t->p = NULL;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void add_str(text_t *t, const char *s) { add(t, s, strlen(s)); }

static void add_num(text_t *t, size_t v, int width) {
    char num[32];
    size_t n = pp_fmt_u(num, v);
    for (int i = (int)n; i < width; i++) add(t, " ", 1);
    add(t, num, n);
}

/* "<count>: <bytes> [<count>: <bytes>] @" as in every heap profile */
static void add_counts(text_t *t, size_t count, size_t bytes) {
    add_num(t, count, 6);
    add_str(t, ": ");
    add_num(t, bytes, 8);
    add_str(t, " [");
    add_num(t, count, 6);
    add_str(t, ": ");
    add_num(t, bytes, 8);
    add_str(t, "] @");
}

char *pp_growth_profile(void) {
    text_t t = {malloc(4096), 0, 4096};
    if (!t.p) return NULL;
    t.p[0] = 0;
    pp_lock(&growth_lock);            /* copy the table: add() allocates, which may grow the heap */
    size_t n = ngrowths;
    struct growth *copy = n ? malloc(n * sizeof(struct growth)) : NULL;
    if (copy) memcpy(copy, growths, n * sizeof(struct growth));
    pp_unlock(&growth_lock);
    if (!copy) n = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += copy[i].bytes;
    add_str(&t, "heap profile: ");
    add_counts(&t, n, total);
    add_str(&t, " growth\n");
    for (size_t i = 0; i < n; i++) {
        char hex[32];
        add_counts(&t, 1, copy[i].bytes);
        for (int d = 0; d < copy[i].depth; d++) {
            add_str(&t, " ");
            add(&t, hex, pp_fmt_x(hex, (uintptr_t)copy[i].pcs[d]));
        }
        add_str(&t, "\n");
    }
    free(copy);
    add_str(&t, "\nMAPPED_LIBRARIES:\n");
    int fd = open(pp_maps_path(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096];
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0) add(&t, buf, (size_t)r);
        close(fd);
    }
    return t.p;
}
