/* See helper_threads.h. */
#define _GNU_SOURCE
#include "helper_threads.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fds.h"

/* The state letter of a /proc stat line ("pid (comm) S ..."), 0 if none:
 * it follows the last ')' (comm may hold anything, ')' included). */
static char stat_state(const char *line) {
    const char *close_paren = strrchr(line, ')');
    return close_paren && close_paren[1] == ' ' ? close_paren[2] : 0;
}

/* Whether the main thread has ended.  Read through a descriptor kept open
 * for it, so that the check made while the program runs opens nothing:
 * even a moment's open() could take the number another thread of the
 * program is about to get from its own.  The descriptor is parked high
 * and close-on-exec (fds.c); before each read it is checked to be still
 * ours (the program may have closed it and reused the number), and a
 * forked child opens its own. */
static int leader_fd = -1;
static pid_t leader_pid;
static struct pp_fd_id leader_id;

static int main_thread_ended(void) {
    pid_t pid = getpid();
    if (leader_fd >= 0 && (leader_pid != pid || !pp_fd_is(leader_fd, &leader_id))) {
        if (leader_pid != pid && pp_fd_is(leader_fd, &leader_id)) close(leader_fd);   /* the parent's, inherited */
        leader_fd = -1;
    }
    if (leader_fd < 0) {
        int fd = pp_fd_park(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
        if (fd < 0) return 0;
        if (!pp_fd_identify(fd, &leader_id)) {
            close(fd);
            return 0;
        }
        leader_fd = fd;
        leader_pid = pid;
    }
    char line[256];
    ssize_t got = pread(leader_fd, line, sizeof line - 1, 0);
    if (got <= 0) return 0;
    line[got] = 0;
    char state = stat_state(line);
    return state == 'Z' || state == 'X';
}

/* The record getdents64 fills (linux/dirent.h's linux_dirent64). */
struct task_dirent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* Whether task `tid` (a name under /proc/self/task) is a program thread
 * still running: not exited, and its name not starting with
 * PP_HELPER_PREFIX. */
static int is_running_program_thread(int dir, const char *tid) {
    char path[40];
    size_t n = strlen(tid);
    if (n > sizeof path - 6) return 1;
    memcpy(path, tid, n);
    memcpy(path + n, "/stat", 6);
    int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;                    /* gone since the listing */
    char line[256];
    ssize_t got = read(fd, line, sizeof line - 1);
    close(fd);
    if (got <= 0) return 0;
    line[got] = 0;
    const char *comm = strchr(line, '(');
    char state = stat_state(line);
    if (!comm || !state) return 1;           /* cannot tell: assume it runs */
    if (state == 'Z' || state == 'X') return 0;   /* exited, not yet reaped */
    return strncmp(comm + 1, PP_HELPER_PREFIX, sizeof PP_HELPER_PREFIX - 1) != 0;
}

/* Called once the main thread has ended: whether every other thread left
 * is a helper of ours.  Lists /proc/self/task and reads each task's stat
 * (the program is down to its last threads by then). */
static int other_threads_gone(void) {
    int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return 0;
    union {
        char bytes[2048];
        uint64_t align;
    } buf;
    int gone = 1;
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buf.bytes, sizeof buf.bytes);
        if (n < 0) gone = 0;
        if (n <= 0) break;
        for (long off = 0; off < n && gone;) {
            struct task_dirent *d = (struct task_dirent *)(buf.bytes + off);
            off += d->reclen;
            if (d->name[0] >= '0' && d->name[0] <= '9' && is_running_program_thread(dir, d->name)) gone = 0;
        }
        if (!gone) break;
    }
    close(dir);
    return gone;
}

int pp_program_threads_gone(void) {
    /* two helper threads of one library may ask at once: one at a time,
       the other hears "not yet" and asks again later */
    static int busy;
    if (__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE)) return 0;
    int gone = main_thread_ended() && other_threads_gone();
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    return gone;
}

const char *pp_maps_path(void) {
    static const char *path;     /* computed once; racing threads agree */
    const char *known = __atomic_load_n(&path, __ATOMIC_ACQUIRE);
    if (known) return known;
    known = access("/proc/thread-self/maps", R_OK) == 0 ? "/proc/thread-self/maps" : "/proc/self/maps";
    __atomic_store_n(&path, known, __ATOMIC_RELEASE);
    return known;
}
