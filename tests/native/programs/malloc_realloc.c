/* realloc growth (tests/native/test_malloc_realloc.py, bench/bench_malloc.py):
 *
 *   malloc_realloc grow STEP FINAL   grows one buffer by STEP bytes up to
 *                                    FINAL bytes, checking its contents at
 *                                    every move; prints
 *                                    "moves=M copied=C final=F"
 *                                    (C: bytes realloc had to move, counted
 *                                    as the old size at every address change)
 *   malloc_realloc inplace           a large block followed by free pages
 *                                    grows and shrinks without moving;
 *                                    prints "OK inplace"
 *
 * Any failure prints "FAIL ..." on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static unsigned char pat(size_t i) { return (unsigned char)(i * 131 + (i >> 12)); }

static void mode_grow(size_t step, size_t final) {
    size_t size = step, moves = 0, copied = 0;
    unsigned char *p = malloc(size);
    if (!p) FAIL("malloc(%zu)", size);
    for (size_t i = 0; i < size; i++) p[i] = pat(i);
    while (size < final) {
        size_t next = size + step;
        unsigned char *q = realloc(p, next);
        if (!q) FAIL("realloc(%zu)", next);
        if (q != p) {
            moves++;
            copied += size;
            /* a move must carry every byte; check a sample of them */
            for (size_t i = 0; i < size; i += 4093) if (q[i] != pat(i)) FAIL("byte %zu lost at %zu", i, next);
            if (q[size - 1] != pat(size - 1)) FAIL("last byte lost at %zu", next);
        }
        for (size_t i = size; i < next; i++) q[i] = pat(i);
        p = q;
        size = next;
    }
    for (size_t i = 0; i < size; i += 4093) if (p[i] != pat(i)) FAIL("byte %zu lost at the end", i);
    free(p);
    printf("moves=%zu copied=%zu final=%zu\n", moves, copied, size);
}

static void mode_inplace(void) {
    /* a fresh region: the pages after the block are free */
    char *p = malloc(1 << 20);
    if (!p) FAIL("malloc");
    memset(p, 5, 1 << 20);
    char *q = realloc(p, (1 << 20) + (256 << 10));
    if (q != p) FAIL("growing into free following pages moved the block");
    q = realloc(q, 3 << 20);
    if (q != p) FAIL("second growth moved the block");
    for (size_t i = 0; i < (1 << 20); i += 512) if (q[i] != 5) FAIL("contents changed at %zu", i);
    q = realloc(q, 600 << 10);
    if (q != p) FAIL("shrinking a large block moved it");
    char *after = malloc(1 << 20);      /* may reuse the freed tail */
    if (!after) FAIL("malloc after shrink");
    memset(after, 6, 1 << 20);
    for (size_t i = 0; i < (600 << 10); i += 512) if (q[i] != 5) FAIL("contents changed after shrink at %zu", i);
    free(after);
    free(q);
    puts("OK inplace");
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "grow")) mode_grow(strtoul(argv[2], 0, 0), strtoul(argv[3], 0, 0));
    else if (argc >= 2 && !strcmp(argv[1], "inplace")) mode_inplace();
    else FAIL("usage: malloc_realloc grow STEP FINAL | inplace");
    return 0;
}
