/* Output helpers of the heap profiler and leak checker: growable text
 * buffers on mmap, a heap sort (libc's qsort may allocate), the profile's
 * count lines, and file creation.  Nothing here calls malloc: these run
 * inside malloc (dumps triggered by an allocation) and at exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "internal.h"

/* ------------------------------------------------------------------ */
/* growable text buffer on mmap                                         */

static int sb_reserve(sbuf_t *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : (size_t)1 << 16;
    while (cap < b->len + more + 1) cap *= 2;
    char *n = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (n == MAP_FAILED) return 0;
    if (b->p) {
        memcpy(n, b->p, b->len);
        munmap(b->p, b->cap);
    }
    b->p = n;
    b->cap = cap;
    return 1;
}

void sb_add(sbuf_t *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sb_str(sbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }

void sb_num(sbuf_t *b, size_t v, int width) {
    char t[32];
    size_t n = pp_fmt_u(t, v);
    for (int i = (int)n; i < width; i++) sb_add(b, " ", 1);
    sb_add(b, t, n);
}

void sb_free(sbuf_t *b) {
    if (b->p) munmap(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

void sb_file(sbuf_t *b, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
        if (!sb_reserve(b, 65536)) break;
        ssize_t r = read(fd, b->p + b->len, 65536);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        b->len += (size_t)r;
        b->p[b->len] = 0;
    }
    close(fd);
}

/* profile line: "<inuse_objs>: <inuse_bytes> [<alloc_objs>: <alloc_bytes>] @ pcs" */
void sb_counts(sbuf_t *b, size_t io, size_t ib, size_t ao, size_t ab) {
    sb_num(b, io, 6);
    sb_str(b, ": ");
    sb_num(b, ib, 8);
    sb_str(b, " [");
    sb_num(b, ao, 6);
    sb_str(b, ": ");
    sb_num(b, ab, 8);
    sb_str(b, "] @");
}

void sb_pcs(sbuf_t *b, void *const *pcs, int depth) {
    char t[32];
    for (int i = 0; i < depth; i++) {
        sb_add(b, " ", 1);
        sb_add(b, t, pp_fmt_x(t, (uintptr_t)pcs[i]));
    }
    sb_add(b, "\n", 1);
}

/* ------------------------------------------------------------------ */
/* sorting (heap sort; libc qsort may allocate)                         */


static void sift(item_t *a, size_t start, size_t n) {
    size_t root = start;
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && a[child + 1].key > a[child].key) child++;
        if (a[root].key >= a[child].key) return;
        item_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

void sort_items(item_t *a, size_t n) {
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        item_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift(a, 0, end);
    }
}

void *big_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void sb_hex(sbuf_t *b, uintptr_t v) {
    char t[32];
    sb_add(b, t, pp_fmt_x(t, v));
}

/* s as one shell word: single quotes, each ' written as '\'' (words made
   only of safe characters are left bare, as people type them). */
void sb_shell_quoted(sbuf_t *b, const char *s) {
    int plain = *s != 0;
    for (const char *c = s; *c && plain; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                strchr("/._-+,:=@%", *c) != NULL;
    if (plain) {
        sb_str(b, s);
        return;
    }
    sb_add(b, "'", 1);
    for (const char *c = s; *c; c++) {
        if (*c == '\'') sb_str(b, "'\\''");
        else sb_add(b, c, 1);
    }
    sb_add(b, "'", 1);
}

/* ------------------------------------------------------------------ */
/* files                                                                */

static int write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static int finish(int fd, const char *data, size_t len) {
    int err = write_all(fd, data, len);
    if (close(fd) != 0 && !err) err = errno;
    return err;
}

/* A profile at a path the user chose (HEAPPROFILE's prefix): replaced if
   it exists.  O_NOFOLLOW: a symlink planted at the path is not followed.
   Written 0644 like gperftools' profiles (the user's umask applies). */
int pp_write_file(const char *path, const char *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return errno;
    return finish(fd, data, len);
}

static uint64_t random_bits(void) {
    uint64_t r = 0;
#ifdef SYS_getrandom
    if (syscall(SYS_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */) == (long)sizeof r) return r;
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    return pp_random(&r);
}

int pp_write_new_file(char *path, size_t x_at, const char *data, size_t len) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (strlen(path) < x_at + 6) return EINVAL;
    char *x = path + x_at;
    int err = EEXIST;
    for (int attempt = 0; attempt < 100 && err == EEXIST; attempt++) {
        uint64_t r = random_bits();
        for (int i = 0; i < 6; i++, r /= 62) x[i] = alphabet[r % 62];
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) return finish(fd, data, len);
        err = errno;
    }
    return err;
}

/* strerror without locale machinery (which may allocate) for the errors a
   dump can meet. */
const char *pp_errno_text(int err) {
    switch (err) {
        case ENOENT: return "No such file or directory";
        case EACCES: return "Permission denied";
        case EPERM: return "Operation not permitted";
        case EROFS: return "Read-only file system";
        case ENOSPC: return "No space left on device";
        case EDQUOT: return "Disk quota exceeded";
        case ENOTDIR: return "Not a directory";
        case EISDIR: return "Is a directory";
        case ELOOP: return "Too many levels of symbolic links (refusing to follow a symlink)";
        case EEXIST: return "File exists";
        case ENAMETOOLONG: return "File name too long";
        case EMFILE: case ENFILE: return "Too many open files";
        case EIO: return "Input/output error";
        case ENOMEM: return "Out of memory";
        default: return "error";
    }
}
