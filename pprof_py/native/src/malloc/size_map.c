/* Size map: request size -> size class, and each class's object size,
 * span size and batch size.
 *
 * Cost on the fast path: pp_size_class() (internal.h) is one add, one
 * shift and one byte load from pp_class_array (about 1 KiB for requests up
 * to 1 KiB, 2 KiB more to 256 KiB, so it stays in L1), plus the load of the
 * class size.  Everything here is computed once in pp_size_map_init().
 */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

#define CLASS_ARRAY_SIZE (((MAX_SMALL_SIZE + 127 + (120 << 7)) >> 7) + 1)
unsigned char pp_class_array[CLASS_ARRAY_SIZE];
size_t pp_class_size[MAX_CLASSES];
size_t pp_class_pages[MAX_CLASSES];          /* pages per span of the class */
uint32_t pp_class_batch[MAX_CLASSES];        /* objects moved per thread-cache refill */
uint32_t pp_class_objs[MAX_CLASSES];         /* objects per span */
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

void pp_size_map_init(void) {
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
        pp_class_pages[c] = pages;
        pp_class_objs[c] = (uint32_t)(pages * PAGE_SIZE / s);
        size_t batch = 65536 / s;
        if (batch < 2) batch = 2;
        if (batch > 32) batch = 32;
        pp_class_batch[c] = (uint32_t)batch;
    }
    int c = 1;
    for (size_t s = 0; s <= MAX_SMALL_SIZE; s += (s < 1024 ? 8 : 128)) {
        while (pp_class_size[c] < s) c++;
        pp_class_array[pp_class_index(s)] = (unsigned char)c;
    }
}

