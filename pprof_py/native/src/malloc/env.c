/* Environment variables for the allocator, heap profiler and leak checker.
 *
 * The allocator starts before libc is ready (the dynamic loader may call
 * malloc before `environ` is set), so pp_getenv() never allocates: it reads
 * `environ` when libc has set it up and /proc/self/environ (into a static
 * buffer) before that.  The variables themselves are gperftools' (see
 * docs/heap-checker.md and docs/allocator.md for the list).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "internal.h"

static char env_buf[65536];
static size_t env_len;
static int env_loaded;

/* The variable's entry "NAME=value" in environ, or NULL. */
static char *environ_entry(const char *name) {
    extern char **environ;
    size_t nl = strlen(name);
    if (!environ) return NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=') return *e;
    return NULL;
}

const char *pp_getenv(const char *name) {
    extern char **environ;
    size_t nl = strlen(name);
    if (environ) {
        char *e = environ_entry(name);
        return e ? e + nl + 1 : NULL;
    }
    if (!env_loaded) {
        env_loaded = 1;
        int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r;
            while (env_len < sizeof env_buf - 1 &&
                   (r = read(fd, env_buf + env_len, sizeof env_buf - 1 - env_len)) > 0)
                env_len += (size_t)r;
            close(fd);
        }
    }
    for (size_t i = 0; i < env_len;) {
        const char *e = env_buf + i;
        size_t l = strnlen(e, env_len - i);
        if (strncmp(e, name, nl) == 0 && e[nl] == '=') return e + nl + 1;
        i += l + 1;
    }
    return NULL;
}

size_t pp_env_size(const char *name, size_t dflt) {
    const char *v = pp_getenv(name);
    if (!v || *v < '0' || *v > '9') return dflt;
    size_t x = 0;
    for (; *v >= '0' && *v <= '9'; v++) x = x * 10 + (size_t)(*v - '0');
    return x;
}

long pp_env_long(const char *name, long dflt) {
    const char *v = pp_getenv(name);
    if (!v) return dflt;
    int neg = *v == '-';
    if (neg || *v == '+') v++;
    if (*v < '0' || *v > '9') return dflt;
    long x = 0;
    for (; *v >= '0' && *v <= '9' && x < (1L << 40); v++) x = x * 10 + (*v - '0');
    return neg ? -x : x;
}

/* gperftools' boolean flags: true when the value starts with t, T, y, Y or
   1 ("true", "yes", "1"), false for any other value. */
int pp_env_bool(const char *name, int dflt) {
    const char *v = pp_getenv(name);
    if (!v || !*v) return dflt;
    return strchr("tTyY1", v[0]) != NULL;
}

/* gperftools' rule for profile prefixes that child processes inherit
   (GetUniquePathFromEnv): the first process that reads NAME sets the high
   bit of the value's first byte in its own environment; every process
   started from it (fork + exec inherits the environment) then sees the bit,
   clears it and appends "_<pid>" to the prefix, so a child never overwrites
   its parent's files.  Returns 0 when NAME is unset or empty. */
int pp_env_unique_path(const char *name, char *out, size_t n) {
    char *entry = environ_entry(name);
    const char *v = entry ? entry + strlen(name) + 1 : pp_getenv(name);
    if (!v || !*v || n < 32) return 0;
    size_t l = strlen(v);
    if (l > n - 24) l = n - 24;
    memcpy(out, v, l);
    out[l] = 0;
    if ((unsigned char)v[0] & 128) {
        out[0] = (char)((unsigned char)v[0] & 127);
        out[l++] = '_';
        l += pp_fmt_u(out + l, (unsigned long long)getpid());
        out[l] = 0;
    } else if (entry) {
        entry[strlen(name) + 1] = (char)((unsigned char)v[0] | 128);
    }
    return 1;
}

/* Sets the high bit of NAME's value in environ (see pp_env_unique_path) if
   it is not set yet; for a process that read NAME before libc had set up
   environ.  Returns 1 when environ holds the variable. */
int pp_env_mark_inherited(const char *name) {
    char *entry = environ_entry(name);
    if (!entry) return 0;
    char *v = entry + strlen(name) + 1;
    if (*v) *v = (char)((unsigned char)*v | 128);
    return 1;
}
