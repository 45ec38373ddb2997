/* gperftools' MemoryRegionMap (memory_region_map.h, an internal class that
 * libtcmalloc exports and gperftools' heap-checker test reads): the set of
 * memory regions the program mapped with mmap / mremap (through this
 * library's mmap, munmap and mremap, gperftools_hooks.c), each with the
 * return address of its caller.
 *
 * Recorded while the leak checker is on (HEAPCHECK), as gperftools records
 * them while its heap checker runs.  The mmap family calls in here with the
 * page heap's lock possibly held, so nothing here allocates: nodes come from
 * one pool mapped with the raw system call, REGION_NODES of them (beyond
 * that, new regions are not recorded).
 *
 * The C++ side (MemoryRegionMap::BeginRegionLocked / EndRegionLocked,
 * gperftools_internals.cc) hands out libstdc++ std::set iterators over
 * these nodes, so the nodes have the layout of libstdc++'s red-black tree
 * nodes (color, parent, left, right, then the Region) and are kept linked
 * as a valid tree in RegionCmp order (by end address): a degenerate one, a
 * chain of right children, which std::_Rb_tree_increment walks in order.
 * Only forward iteration is supported (gperftools' code only does ++).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gperftools_glue.h"
#include "internal.h"

#define REGION_NODES 16384

static struct pp_rb_node header;           /* std::set's header: parent = root, left/right = ends */
static struct pp_rb_node *pool, *free_nodes;
static size_t pool_used;
volatile int pp_regions_on;

/* the recursive lock of MemoryRegionMap::Lock() */
static pp_lock_t lock;
static volatile long owner;                 /* thread id holding it, 0 = none */
static int depth;

static long tid(void) { return (long)syscall(SYS_gettid); }

void pp_regions_lock(void) {
    long me = tid();
    if (__atomic_load_n(&owner, __ATOMIC_ACQUIRE) == me) {
        depth++;
        return;
    }
    pp_lock(&lock);
    __atomic_store_n(&owner, me, __ATOMIC_RELEASE);
    depth = 1;
}

void pp_regions_unlock(void) {
    if (--depth > 0) return;
    __atomic_store_n(&owner, 0, __ATOMIC_RELEASE);
    pp_unlock(&lock);
}

int pp_regions_lock_held(void) { return __atomic_load_n(&owner, __ATOMIC_ACQUIRE) == tid(); }

struct pp_rb_node *pp_regions_header(void) { return &header; }

/* Re-link the in-order chain as a tree: node i's parent is node i-1 (the
   first's is the header), its right child node i+1, no left children. */
static void relink(struct pp_rb_node *first) {
    struct pp_rb_node *prev = NULL, *n = first;
    header.color = 0;                      /* red, as libstdc++'s header */
    header.parent = first;
    header.left = first ? first : &header;
    for (; n; prev = n, n = n->right) {
        n->parent = prev ? prev : &header;
        n->left = NULL;
        n->color = 1;                      /* black */
    }
    header.right = prev ? prev : &header;
}

/* the chain in order, through `right` (relink keeps it so) */
static struct pp_rb_node *first_node(void) { return header.parent; }

static struct pp_rb_node *node_new(void) {
    struct pp_rb_node *n = free_nodes;
    if (n) {
        free_nodes = n->right;
    } else {
        if (!pool || pool_used == REGION_NODES) return NULL;
        n = &pool[pool_used++];
    }
    memset(n, 0, sizeof *n);
    return n;
}

/* insert n in end-address order into the chain */
static void insert(struct pp_rb_node *n) {
    struct pp_rb_node *prev = NULL, *cur = first_node();
    while (cur && cur->value.end_addr < n->value.end_addr) {
        prev = cur;
        cur = cur->right;
    }
    n->right = cur;
    if (prev) prev->right = n;
    relink(prev ? first_node() : n);
}

static void add_locked(uintptr_t start, uintptr_t end, const void *caller) {
    struct pp_rb_node *n = node_new();
    if (!n) return;
    n->value.start_addr = start;
    n->value.end_addr = end;
    n->value.call_stack_depth = caller ? 1 : 0;
    n->value.call_stack[0] = caller;
    insert(n);
}

/* Take [start, end) out of every region (trimming or splitting those that
   overlap it). */
static void remove_locked(uintptr_t start, uintptr_t end) {
    struct pp_rb_node *prev = NULL, *cur = first_node();
    while (cur) {
        struct pp_rb_node *next = cur->right;
        struct pp_region *r = &cur->value;
        if (r->start_addr < end && r->end_addr > start) {
            if (start > r->start_addr && end < r->end_addr) {
                /* a hole in the middle: the tail becomes a region of its own */
                uintptr_t tail_end = r->end_addr;
                r->end_addr = start;
                struct pp_rb_node *t = node_new();
                if (t) {
                    t->value = *r;
                    t->value.start_addr = end;
                    t->value.end_addr = tail_end;
                }
                /* cur's end decreased: it stays in order before its old next */
                if (t) insert(t);
                prev = cur;
                cur = next;
                continue;
            }
            if (start <= r->start_addr && end >= r->end_addr) {
                /* wholly unmapped */
                if (prev) prev->right = next;
                else header.parent = next;
                cur->right = free_nodes;
                free_nodes = cur;
                cur = next;
                continue;
            }
            if (start <= r->start_addr) r->start_addr = end;   /* the front went */
            else r->end_addr = start;                          /* the back went (order kept) */
        }
        prev = cur;
        cur = next;
    }
    relink(first_node());
}

/* gperftools_hooks.c: a successful mmap / munmap / mremap */
void pp_regions_mapped(const void *p, size_t len, const void *caller) {
    if (!len) return;
    pp_regions_lock();
    remove_locked((uintptr_t)p, (uintptr_t)p + len);     /* MAP_FIXED over an old mapping */
    add_locked((uintptr_t)p, (uintptr_t)p + len, caller);
    pp_regions_unlock();
}

void pp_regions_unmapped(const void *p, size_t len) {
    if (!len) return;
    pp_regions_lock();
    remove_locked((uintptr_t)p, (uintptr_t)p + len);
    pp_regions_unlock();
}

/* heapcheck.c, when the leak checker starts (at start-up, one thread).  The
   pool is mapped here, not at the first mmap: registering it takes the
   region registry's lock, which the leak checker takes before ours. */
void pp_regions_start(void) {
    if (!pool) {
        void *p = pp_raw_mmap(NULL, REGION_NODES * sizeof *pool, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return;
        /* allocator memory: the leak checker must not take the region
           addresses stored here for pointers to heap blocks */
        pp_register_region(p, REGION_NODES * sizeof *pool);
        pool = p;
    }
    pp_regions_lock();
    if (!header.left) relink(NULL);
    pp_regions_unlock();
    __atomic_store_n(&pp_regions_on, 1, __ATOMIC_RELEASE);
}

/* An empty map still has a valid header (begin == end). */
__attribute__((constructor)) static void regions_init(void) {
    pp_regions_lock();
    if (!header.left) relink(first_node());
    pp_regions_unlock();
}
