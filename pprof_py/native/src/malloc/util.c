/* Small helpers every part of the allocator uses: the spin lock's slow
 * path, stderr output and number formatting that never allocate (they run
 * inside malloc and in the leak checker), the fatal-error report, and a
 * xorshift random generator.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

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

