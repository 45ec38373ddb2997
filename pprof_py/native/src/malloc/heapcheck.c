/* Leak checker (HEAPCHECK): which tracked objects nothing live points to.
 *
 * With HEAPCHECK set every allocation is recorded (heapprof.c's map, with
 * its stack).  At exit (or when pp_leak_check is called) the checker
 * marks every object reachable from the roots and reports the rest, grouped
 * by allocation stack, in gperftools' words and its leak-profile format, so
 * gperftools' pprof and ours read the dump.
 *
 * Roots, as gperftools defines them (heap_checker.html, "Detecting Live
 * Objects"): global data (every private writable mapping that is not a
 * stack or the allocator's own memory), and for each thread its live stack
 * and registers.  "Live" matters: the words below a thread's stack pointer
 * are frames that have returned, and stale pointers there hide leaks.  So
 *   - the checking thread's stack is scanned from the frame that called
 *     exit() (or our API) upward, with the callee-saved registers that frame
 *     holds, recovered from where exit and the handlers saved them
 *     (stackwalk.c); the checker's own frames and buffers are never roots;
 *   - every other thread is interrupted by a signal whose handler copies
 *     the thread's registers, stack pointer included: its stack is scanned
 *     from that pointer (less the 128-byte red zone leaf code may use) up.
 * Words are read through process_vm_readv, so a mapping that goes away
 * during the scan cannot fault.  The marking is a flood: any aligned word
 * that points into a tracked object (interior pointers included) marks it,
 * and marked objects are scanned in turn.
 *
 * HEAPCHECK modes (gperftools'): normal and strict (both checked after the
 * program's global destructors, as our destructor runs after them),
 * minimal (as normal), draconian (no roots: every object not freed is a
 * leak), as-is (the HEAP_CHECK_* knobs decide), local (tracking only, no
 * whole-program check).  docs/heap-checker.md lists every variable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "heap.h"
#include "helper_threads.h"
#include "internal.h"

/* ------------------------------------------------------------------ */
/* configuration (HEAPCHECK and HEAP_CHECK_*)                           */

static struct {
    int tracking;             /* HEAPCHECK set: every allocation recorded */
    int whole_program;        /* check at exit (every mode but local) */
    int ignore_thread_live;   /* thread stacks and registers are roots */
    int ignore_global_live;   /* global data is a root */
    long max_leaks;           /* leak groups printed (<= 0: all) */
    int minimal;              /* objects allocated during start-up are live */
    int identify_leaks;       /* one record per leaked object in the dump */
    int test_alignment;       /* on leaks, retry with alignment 1 */
    size_t alignment;         /* HEAP_CHECK_POINTER_SOURCE_ALIGNMENT */
    char mode[32];
    char dump_dir[512];
    char pprof[512];          /* PPROF_PATH */
} cfg;

static void say(const char *a, const char *b, const char *c) {
    sbuf_t m = {0};
    sb_str(&m, "pprof_py heap checker: ");
    sb_str(&m, a);
    if (b) sb_str(&m, b);
    if (c) sb_str(&m, c);
    sb_str(&m, "\n");
    if (m.p) pp_write_str(2, m.p);
    sb_free(&m);
}

static void copy_env(char *out, size_t n, const char *name, const char *dflt) {
    const char *v = pp_getenv(name);
    if (!v || !*v) v = dflt;
    size_t l = strlen(v);
    if (l >= n) l = n - 1;
    memcpy(out, v, l);
    out[l] = 0;
}

static pid_t check_pid;       /* the process that started checking */

/* FLAGS_heap_check, gperftools' std::string flag (DEFINE_string(heap_check,
 * EnvToString("HEAPCHECK", ""))): the mode while the checker is on, "" when
 * it is off.  libstdc++'s std::string layout (data, length, 16-byte local
 * buffer), exported under the flag's mangled name; the value always fits
 * the local buffer (longer modes are cut at 15 characters), so nothing of
 * ours is ever freed by a string operation on it. */
struct {
    char *data;
    size_t length;
    char local[16];
} flag_heap_check __asm__("_ZN62FLAG__namespace_do_not_use_directly_use_DECLARE_string_instead16FLAGS_heap_checkB5cxx11E")
    __attribute__((visibility("default"), used)) = {flag_heap_check.local, 0, {0}};

static void set_flag_heap_check(const char *mode) {
    size_t n = strlen(mode);
    if (n > sizeof flag_heap_check.local - 1) n = sizeof flag_heap_check.local - 1;
    memcpy(flag_heap_check.local, mode, n);
    flag_heap_check.local[n] = 0;
    flag_heap_check.length = n;
}

/* PERFTOOLS_VERBOSE (gperftools' README: "the higher level, the more
 * messages malloc emits"): at 10 and above the checker says when it starts
 * tracking the heap and when MemoryRegionMap starts recording, with
 * gperftools' words (its heap-checker-death_unittest.sh matches them). */
static long verbose;

static void say_verbose(long level, const char *msg) {
    if (verbose >= level) pp_write_str(2, msg);
}

/* HEAPCHECK set but empty: as gperftools' checker, which starts tracking at
 * the first allocation whenever HEAPCHECK is set and turns itself off at
 * its initialization when the mode is empty, the heap is tracked until the
 * library's constructor below, then not at all (no check at exit; nor
 * any tracking when the first allocation comes after that constructor). */
static int off_after_init, constructors_ran;

__attribute__((constructor)) static void empty_mode_off(void) {
    constructors_ran = 1;
    if (!off_after_init) return;
    off_after_init = 0;
    cfg.tracking = 0;
    cfg.whole_program = 0;
    pp_leak_pad = 0;
    pp_regions_on = 0;
    pp_prof_untrack_all();              /* unless HEAPPROFILE runs */
    set_flag_heap_check("");
}

void pp_heapcheck_init_from_env(void) {
    const char *hc = pp_getenv("HEAPCHECK");
    if (!hc) return;
    verbose = pp_env_long("PERFTOOLS_VERBOSE", 0);
    if (!*hc) {
        if (constructors_ran) return;   /* first allocation after it: nothing to track */
        off_after_init = 1;
    }
    else if (strcmp(hc, "0") == 0 || strcmp(hc, "false") == 0) return;
    /* pprof-run --heapcheck checks the process it starts, not its children
       (which inherit HEAPCHECK): it names that process's pid */
    long only = pp_env_long("PPROF_PY_HEAPCHECK_PID", 0);
    if (only > 0 && only != (long)getpid()) return;
    check_pid = getpid();
    copy_env(cfg.mode, sizeof cfg.mode, "HEAPCHECK", "normal");
    if (off_after_init) memcpy(cfg.mode, "normal", sizeof "normal");   /* tracked as normal until then */
    int as_is = strcmp(cfg.mode, "as-is") == 0;
    if (strcmp(cfg.mode, "draconian") == 0) {
        cfg.ignore_thread_live = cfg.ignore_global_live = 0;
    } else if (as_is) {
        cfg.ignore_thread_live = pp_env_bool("HEAP_CHECK_IGNORE_THREAD_LIVE", 1);
        cfg.ignore_global_live = pp_env_bool("HEAP_CHECK_IGNORE_GLOBAL_LIVE", 1);
    } else if (strcmp(cfg.mode, "normal") == 0 || strcmp(cfg.mode, "strict") == 0 ||
               strcmp(cfg.mode, "minimal") == 0 || strcmp(cfg.mode, "local") == 0 ||
               strcmp(cfg.mode, "1") == 0 || strcmp(cfg.mode, "true") == 0) {
        cfg.ignore_thread_live = cfg.ignore_global_live = 1;
    } else {
        /* gperftools aborts on an unknown mode; a typo must not silently
           turn the check off */
        say("unknown HEAPCHECK mode \"", cfg.mode,
            "\" (use minimal, normal, strict, draconian, as-is or local); checking as normal");
        cfg.ignore_thread_live = cfg.ignore_global_live = 1;
    }
    cfg.whole_program = strcmp(cfg.mode, "local") != 0;
    cfg.minimal = strcmp(cfg.mode, "minimal") == 0;
    if (as_is && pp_getenv("HEAP_CHECK_AFTER_DESTRUCTORS") && !pp_env_bool("HEAP_CHECK_AFTER_DESTRUCTORS", 1))
        say("HEAP_CHECK_AFTER_DESTRUCTORS=false is not supported: the check runs after the program's global "
            "destructors", NULL, NULL);
    cfg.max_leaks = pp_env_long("HEAP_CHECK_MAX_LEAKS", 20);
    cfg.identify_leaks = pp_env_bool("HEAP_CHECK_IDENTIFY_LEAKS", 0);
    cfg.test_alignment = pp_env_bool("HEAP_CHECK_TEST_POINTER_ALIGNMENT", 0);
    long align = pp_env_long("HEAP_CHECK_POINTER_SOURCE_ALIGNMENT", (long)sizeof(void *));
    if (align < 1 || align > (long)sizeof(void *) || (align & (align - 1))) {
        say("HEAP_CHECK_POINTER_SOURCE_ALIGNMENT must be 1, 2, 4 or 8; using 8", NULL, NULL);
        align = (long)sizeof(void *);
    }
    cfg.alignment = (size_t)align;
    const char *tmp = pp_getenv("TMPDIR");
    copy_env(cfg.dump_dir, sizeof cfg.dump_dir, "HEAP_CHECK_DUMP_DIRECTORY", tmp && *tmp ? tmp : "/tmp");
    copy_env(cfg.pprof, sizeof cfg.pprof, "PPROF_PATH", "pprof");
    cfg.tracking = 1;
    pp_leak_pad = 1;
    pp_prof_track_all();
    say_verbose(10, "Starting tracking the heap\n");
    set_flag_heap_check(off_after_init ? "" : cfg.mode);
    say_verbose(10, "MemoryRegionMap Init\n");
    pp_regions_start();                 /* MemoryRegionMap records mmap'ed regions from now on */
}

int pp_leak_check_on(void) { return cfg.tracking; }

volatile int pp_leak_pad;

/* ------------------------------------------------------------------ */
/* the flood                                                            */

/* gperftools_heapcheck.cc (the C++ HeapLeakChecker), when linked in */
extern int pp_hc_is_ignored(uintptr_t addr) __attribute__((weak));
extern int pp_hc_global_check_wanted(void) __attribute__((weak));

typedef struct {
    uintptr_t addr;
    size_t size;
    bucket_t *bucket;
    int marked;
} obj_t;

static obj_t *objs;
static size_t nobjs;
static size_t *work;
static size_t nwork;
static uintptr_t heap_lo, heap_hi;

static inline void consider(uintptr_t w) {
    if (w < heap_lo || w >= heap_hi) return;
    size_t lo = 0, hi = nobjs;            /* last object with addr <= w */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (objs[mid].addr <= w) lo = mid;
        else hi = mid;
    }
    obj_t *o = &objs[lo];
    /* the end is inclusive: with pp_leak_pad a pointer one past the end is
       inside the block (and a zero-size block has one byte) */
    if (w >= o->addr && w <= o->addr + o->size && !o->marked) {
        o->marked = 1;
        work[nwork++] = lo;
    }
}

static size_t scan_alignment = sizeof(uintptr_t);

/* Every word of [p, p + len) at the pointer alignment (p's alignment in
   the scanned memory: scan_region copies keep it). */
static void scan_words(const char *p, size_t len) {
    if (scan_alignment == sizeof(uintptr_t)) {
        const uintptr_t *w = (const uintptr_t *)(((uintptr_t)p + 7) & ~(uintptr_t)7);
        const uintptr_t *end = (const uintptr_t *)((uintptr_t)(p + len) & ~(uintptr_t)7);
        for (; w < end; w++) consider(*w);
        return;
    }
    size_t a = scan_alignment;
    const char *c = (const char *)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1));
    for (; c + sizeof(uintptr_t) <= p + len; c += a) {
        uintptr_t w;
        memcpy(&w, c, sizeof w);
        consider(w);
    }
}

static char *scan_buf;
#define SCAN_BUF (1 << 16)

/* Scan another region of our own address space safely: process_vm_readv
   fails with EFAULT instead of faulting on memory that is gone. */
static void scan_region(uintptr_t start, uintptr_t end) {
    static int direct;
    pid_t pid = getpid();
    while (start < end) {
        size_t len = end - start > SCAN_BUF ? SCAN_BUF : end - start;
        if (direct) {
            scan_words((const char *)start, len);
        } else {
            struct iovec local = {scan_buf, len}, remote = {(void *)start, len};
            ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (r < 0 && (errno == ENOSYS || errno == EPERM)) {
                direct = 1;
                continue;
            }
            if (r > 0) scan_words(scan_buf, (size_t)r);
            if (r < (ssize_t)len) {                /* skip the unreadable page */
                start = ((start + (r > 0 ? (size_t)r : 0)) & ~(uintptr_t)4095) + 4096;
                continue;
            }
        }
        start += len;
    }
}

static void scan_region_minus_owned(uintptr_t start, uintptr_t end, uintptr_t *os, uintptr_t *oe, size_t no) {
    /* subtract the allocator's own regions (heap pages, metadata, tables) */
    for (size_t i = 0; i < no; i++) {
        if (oe[i] <= start || os[i] >= end) continue;
        if (os[i] > start) scan_region_minus_owned(start, os[i], os, oe, no);
        if (oe[i] < end) scan_region_minus_owned(oe[i], end, os, oe, no);
        return;
    }
    scan_region(start, end);
}

static uintptr_t parse_hex(const char **s) {
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else break;
    }
    return v;
}

/* Our own library's segments (its .data/.bss hold stale free-list pointers
   into the heap) are excluded from the roots. */
static int own_segments(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    uintptr_t **io = arg;               /* io[0] = starts, io[1] = ends, io[2] = count/cap */
    uintptr_t me = (uintptr_t)&pp_prof_mode;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (me >= a && me < a + ph->p_memsz) mine = 1;
    }
    if (!mine) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || io[2][0] >= io[2][1]) continue;
        uintptr_t a = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)4095;
        uintptr_t e = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~(uintptr_t)4095;
        io[0][io[2][0]] = a;
        io[1][io[2][0]] = e;
        io[2][0]++;
    }
    return 1;
}

/* Registers of the other threads.  A pointer that lives only in a register
 * of a thread blocked in a system call sits in the kernel's saved copy of
 * that thread's registers, not in any memory the scan reads (gperftools
 * stops the threads with ptrace for the same reason).  We send every other
 * thread a real-time signal that the program does not use; the handler
 * copies the interrupted context's general registers into a preallocated
 * slot and counts itself done, which only stores words, so it is
 * async-signal-safe and cannot deadlock on anything the thread holds.  A
 * thread that blocks the signal or does not run within the wait simply
 * adds no registers.  The signal interrupts blocking calls like any
 * signal (restartable ones are restarted: SA_RESTART).
 *
 * The threads then stay in the handler (parked) until the flood is over,
 * as gperftools' ptrace-stopped threads do: a thread left running moves
 * pointers between its registers and its stack while we scan them (a FILE
 * that getgrgid() was using in another thread was reported as a leak, in
 * gperftools' heap-checker_unittest).  No parked thread holds an allocator
 * lock: the checker holds all of them (pp_lock_all, the region map's too)
 * while the signals are delivered, so a thread interrupted on its way to
 * one parks before taking it, and the checker may allocate afterwards.
 * A parked thread gives up waiting after PARK_LIMIT_NS, so a lock that a
 * parked thread holds outside the allocator (the dynamic loader's, say)
 * can slow a check down but never hang it. */
#define REG_THREADS 1024
#if defined(__x86_64__)
/* gregs[0..15]: r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp.  Not the
   rest: rip is code, and cr2 (the last page-fault address) often points
   into a block the thread merely touched. */
#define REG_WORDS 16
#elif defined(__aarch64__)
#define REG_WORDS 33    /* x0-x30, sp, pc */
#else
#define REG_WORDS 0
#endif

static uintptr_t thread_regs[REG_THREADS][REG_WORDS > 0 ? REG_WORDS : 1];
static int thread_regs_ok[REG_THREADS];   /* slot filled */
static volatile int regs_taken, regs_done;
static volatile int park_generation;          /* bumped to release parked threads */
#define PARK_LIMIT_NS 5000000000LL

static long long mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void regs_handler(int sig, siginfo_t *si, void *ucv) {
    int saved_errno = errno;
    int generation = __atomic_load_n(&park_generation, __ATOMIC_ACQUIRE);
    (void)sig;
    (void)si;
    int slot = __atomic_fetch_add(&regs_taken, 1, __ATOMIC_ACQ_REL);
    if (slot < REG_THREADS && ucv) {
        const ucontext_t *uc = ucv;
#if defined(__x86_64__)
        for (int i = 0; i < REG_WORDS; i++) thread_regs[slot][i] = (uintptr_t)uc->uc_mcontext.gregs[i];
#elif defined(__aarch64__)
        for (int i = 0; i < 31; i++) thread_regs[slot][i] = (uintptr_t)uc->uc_mcontext.regs[i];
        thread_regs[slot][31] = (uintptr_t)uc->uc_mcontext.sp;
        thread_regs[slot][32] = (uintptr_t)uc->uc_mcontext.pc;
#endif
        __atomic_store_n(&thread_regs_ok[slot], 1, __ATOMIC_RELEASE);
    }
    __atomic_add_fetch(&regs_done, 1, __ATOMIC_ACQ_REL);
    /* parked until the checker is done (release_threads) */
    long long until = mono_ns() + PARK_LIMIT_NS;
    while (__atomic_load_n(&park_generation, __ATOMIC_ACQUIRE) == generation && mono_ns() < until) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    errno = saved_errno;
}

/* lets the threads parked by capture_thread_registers go on */
static void release_threads(void) { __atomic_add_fetch(&park_generation, 1, __ATOMIC_ACQ_REL); }

/* Collects the other threads' registers into thread_regs; returns how many
 * threads answered. */
static int capture_thread_registers(void) {
    if (REG_WORDS == 0) return 0;
    /* a real-time signal nobody handles; our handler stays installed
       afterwards, because a thread that had the signal blocked still has it
       pending, and the default action would kill the process */
    static int sig;
    if (!sig) {
        struct sigaction cur;
        for (int s = SIGRTMAX; s >= SIGRTMIN && !sig; s--)
            if (sigaction(s, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL)
                sig = s;
        if (!sig) return 0;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = regs_handler;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) != 0) {
            sig = 0;
            return 0;
        }
    }
    memset(thread_regs_ok, 0, sizeof thread_regs_ok);
    regs_taken = regs_done = 0;
    int sent = 0, ntids = 0;
    static pid_t tids[REG_THREADS];
    pid_t pid = getpid(), me = (pid_t)syscall(SYS_gettid);
    /* the thread list first: opendir allocates, which it could not do with
       the allocator's locks held */
    DIR *dir = opendir("/proc/self/task");
    if (dir) {
        struct dirent *d;
        while ((d = readdir(dir)) != NULL && ntids < REG_THREADS) {
            if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
            pid_t tid = (pid_t)atoi(d->d_name);
            if (tid != me) tids[ntids++] = tid;
        }
        closedir(dir);
    }
    pp_lock_all();
    for (int i = 0; i < ntids; i++)
        if (syscall(SYS_tgkill, pid, tids[i], sig) == 0) sent++;
    /* wait for the answers: at most about 200 ms */
    for (int i = 0; i < 2000 && __atomic_load_n(&regs_done, __ATOMIC_ACQUIRE) < sent; i++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    pp_unlock_all();
    /* slots taken so far; the scan reads only those marked filled (a late
       handler fills its own slot and nothing else) */
    int taken = __atomic_load_n(&regs_taken, __ATOMIC_ACQUIRE);
    return taken < REG_THREADS ? taken : REG_THREADS;
}

#if defined(__x86_64__)
#define SP_SLOT REG_RSP
#define RED_ZONE 128          /* the x86_64 ABI lets leaf code use 128 bytes below rsp */
#elif defined(__aarch64__)
#define SP_SLOT 31
#define RED_ZONE 0
#endif

/* ------------------------------------------------------------------ */
/* roots                                                                */

/* A stack pointer per thread we know (our own live boundary and each
   thread that answered the register signal): a mapping holding one is a
   thread stack, live only from that pointer up. */
#define MAX_SPS (REG_THREADS + 1)
static uintptr_t live_sps[MAX_SPS];
static size_t nlive_sps;

static void scan_roots(sbuf_t *maps) {
    size_t cap = 4096;
    uintptr_t *os = pp_os_map(cap * 2 * sizeof(uintptr_t));
    if (!os || !maps->p) return;
    uintptr_t *oe = os + cap;
    size_t no = pp_owned_regions(os, oe, cap - 310);
    uintptr_t counts[2] = {no, cap - 302};
    uintptr_t *io[3] = {os, oe, counts};
    dl_iterate_phdr(own_segments, io);
    no = counts[0];
    /* the maps text itself (a private mapping of ours; it holds no binary
       pointers, but it is the checker's buffer) */
    os[no] = (uintptr_t)maps->p;
    oe[no] = (uintptr_t)maps->p + maps->cap;
    no++;
    /* exited threads' cached stacks: stale frames are not roots */
    uintptr_t *dead_tp = pp_os_map(300 * sizeof(uintptr_t));
    size_t ndead = dead_tp ? pp_dead_stacks(os + no, oe + no, dead_tp, 300) : 0;
    size_t first_dead = no;
    no += ndead;
    for (const char *line = maps->p; line && *line;) {
        const char *eol = strchr(line, '\n');
        const char *s = line;
        uintptr_t start = parse_hex(&s);
        s++;
        uintptr_t end = parse_hex(&s);
        s++;
        int readable = s[0] == 'r', writable = s[1] == 'w', priv = s[3] == 'p';
        const char *path = eol ? memchr(s, '/', (size_t)(eol - s)) : strchr(s, '/');
        const char *br = eol ? memchr(s, '[', (size_t)(eol - s)) : strchr(s, '[');
        int special = br && (strncmp(br, "[vvar", 5) == 0 || strncmp(br, "[vsyscall", 9) == 0 ||
                             strncmp(br, "[vdso", 5) == 0);
        int device = path && strncmp(path, "/dev/", 5) == 0;
        if (readable && writable && priv && !special && !device) {
            /* the lowest known stack pointer in this mapping, if any */
            uintptr_t sp = 0;
            for (size_t i = 0; i < nlive_sps; i++)
                if (live_sps[i] >= start && live_sps[i] < end && (!sp || live_sps[i] < sp)) sp = live_sps[i];
            if (sp) {
                if (cfg.ignore_thread_live) scan_region_minus_owned(sp & ~(uintptr_t)7, end, os, oe, no);
            } else if (cfg.ignore_global_live) {
                /* includes stacks of threads that did not answer: scanned
                   whole, which can only hide a leak, never invent one */
                scan_region_minus_owned(start, end, os, oe, no);
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    for (size_t i = 0; i < ndead && cfg.ignore_global_live; i++) {
        /* only the thread control block (at the thread pointer; it holds the
           DTV that glibc reuses with the cached stack); the thread's static
           TLS and frames below it are dead */
        uintptr_t tp = dead_tp[i], hi = oe[first_dead + i];
        if (!tp || tp >= hi) continue;
        uintptr_t a = tp, e = tp + 4096 < hi ? tp + 4096 : hi;
        if (a < e) scan_region(a, e);
    }
}

/* ------------------------------------------------------------------ */
/* the report                                                           */

static void exe_path(char *out, size_t n) {
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    if (r < 0) r = 0;
    out[r] = 0;
}

/* One report frame without the symbolizer: "\t@ 0x<pc>", then what
   dladdr knows (exported symbols only). */
static void frame_line(sbuf_t *b, void *pc) {
    Dl_info info;
    sb_str(b, "\t@ ");
    sb_hex(b, (uintptr_t)pc);
    if (dladdr((char *)pc - 1, &info) && info.dli_fname) {
        if (info.dli_sname) {
            sb_str(b, " ");
            sb_str(b, info.dli_sname);
            sb_str(b, "+");
            sb_hex(b, (uintptr_t)pc - (uintptr_t)info.dli_saddr);
        }
        sb_str(b, " (");
        sb_str(b, info.dli_fname);
        sb_str(b, ")");
    }
    sb_str(b, "\n");
}

/* ------------------------------------------------------------------ */
/* symbolized frames: our own pprof, run from the report                 */

#define SYMBOLIZE_SECONDS 30

/* How to run our pprof: PPROF_PATH when set ("" turns symbolization off),
   else `python3 -m pprof_py` with PYTHONPATH = the directory holding the
   pprof_py package this library was loaded from (the same tree's
   symbolizer, whatever else is installed).  Fills argv (strings in *store)
   and the child's PYTHONPATH; returns 0 when there is nothing to run. */
static int symbolizer_command(const char *exe, const char **argv, sbuf_t *store, size_t *pythonpath_at) {
    const char *pp = pp_getenv("PPROF_PATH");
    *pythonpath_at = (size_t)-1;
    if (pp && !*pp) return 0;
    size_t offs[8], n = 0;
    if (pp) {
        offs[n++] = store->len;
        sb_add(store, pp, strlen(pp) + 1);
    } else {
        Dl_info info;
        if (!dladdr((void *)&pp_leak_check, &info) || !info.dli_fname) return 0;
        const char *f = info.dli_fname, *mark = strstr(f, "/pprof_py/native/");
        if (!mark || strchr(mark + 17, '/')) return 0;
        *pythonpath_at = store->len;
        sb_str(store, "PYTHONPATH=");
        sb_add(store, f, (size_t)(mark - f));
        const char *old = pp_getenv("PYTHONPATH");
        if (old && *old) {
            sb_str(store, ":");
            sb_str(store, old);
        }
        sb_add(store, "", 1);
        const char *py[] = {"python3", "-m", "pprof_py"};
        for (int i = 0; i < 3; i++) {
            offs[n++] = store->len;
            sb_add(store, py[i], strlen(py[i]) + 1);
        }
    }
    const char *rest[] = {"--symbols", "--lines", exe};
    for (int i = 0; i < 3; i++) {
        offs[n++] = store->len;
        sb_add(store, rest[i], strlen(rest[i]) + 1);
    }
    if (!store->p) return 0;
    for (size_t i = 0; i < n; i++) argv[i] = store->p + offs[i];
    argv[n] = NULL;
    return 1;
}

/* The child's environment: ours without the variables that would load our
   libraries into it (a symbolizer under HEAPCHECK would check itself). */
static char **child_environ(const char *pythonpath, char **mem, size_t *mem_len) {
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    *mem_len = (n + 2) * sizeof(char *);
    char **env = big_alloc(*mem_len);
    *mem = (char *)env;
    if (!env) return NULL;
    static const char *drop[] = {"LD_PRELOAD=", "HEAPCHECK=", "HEAPPROFILE=", "CPUPROFILE=", "PYTHONPATH=", NULL};
    size_t k = 0;
    for (char **e = environ; e && *e; e++) {
        int keep = 1;
        for (int d = 0; drop[d] && keep; d++) keep = strncmp(*e, drop[d], strlen(drop[d])) != 0;
        if (!keep && pythonpath == NULL && strncmp(*e, "PYTHONPATH=", 11) == 0) keep = 1;
        if (keep) env[k++] = *e;
    }
    if (pythonpath) env[k++] = (char *)pythonpath;
    env[k] = NULL;
    return env;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the symbolizer on `input` (memory map, then one address a line) and
   leaves its output in *out.  Returns 1 when it exited 0 in time.  Runs
   with no lock held; the child's stdin is a socket so that a symbolizer
   dying early makes our writes fail with EPIPE (MSG_NOSIGNAL), not kill
   the program with SIGPIPE. */
static int run_symbolizer(const char *exe, const sbuf_t *input, sbuf_t *out) {
    const char *argv[8];
    sbuf_t store = {0};
    size_t pythonpath_at;
    if (!symbolizer_command(exe, argv, &store, &pythonpath_at)) {
        sb_free(&store);
        return 0;
    }
    char *envmem = NULL;
    size_t envlen = 0;
    char **env = child_environ(pythonpath_at == (size_t)-1 ? NULL : store.p + pythonpath_at, &envmem, &envlen);
    int in[2] = {-1, -1}, outp[2] = {-1, -1}, ok = 0;
    pid_t pid = -1;
    if (!env || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(outp, O_CLOEXEC) != 0)
        goto done;
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) goto done;
    posix_spawn_file_actions_adddup2(&fa, in[1], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int sp = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(in[1]);
    close(outp[1]);
    in[1] = outp[1] = -1;
    if (sp != 0) {
        pid = -1;
        goto done;
    }
    fcntl(in[0], F_SETFL, O_NONBLOCK);
    size_t sent = 0;
    int64_t deadline = mono_ms() + SYMBOLIZE_SECONDS * 1000;
    for (;;) {
        struct pollfd fds[2] = {{outp[0], POLLIN, 0}, {in[0], POLLOUT, 0}};
        int nfds = in[0] >= 0 ? 2 : 1;
        int64_t left = deadline - mono_ms();
        if (left <= 0) break;
        int r = poll(fds, (nfds_t)nfds, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (nfds == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(in[0], input->p + sent, input->len - sent, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR) sent = input->len;
            if (sent >= input->len) {
                close(in[0]);
                in[0] = -1;
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[8192];
            ssize_t got = read(outp[0], buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                ok = 1;            /* end of output; the exit status decides */
                break;
            }
            sb_add(out, buf, (size_t)got);
        }
    }
done:
    if (pid > 0) {
        int status = 0;
        if (!ok) kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    } else {
        ok = 0;
    }
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) close(in[i]);
        if (outp[i] >= 0) close(outp[i]);
    }
    if (envmem) munmap(envmem, envlen);
    sb_free(&store);
    return ok;
}

/* Names for pcs[0..n) from the symbolizer: names[i] points at its line
   for pcs[i] (in *out, ending in '\n').  Returns 0, names untouched, when
   the symbolizer could not run or answered something else. */
static int symbolize_pcs(const char *exe, void *const *pcs, size_t n, sbuf_t *out, const char **names) {
    sbuf_t in = {0};
    sb_file(&in, pp_maps_path());
    for (size_t i = 0; i < n; i++) {
        sb_hex(&in, (uintptr_t)pcs[i] - 1);      /* the call, not the return address */
        sb_str(&in, "\n");
    }
    int ok = in.p && run_symbolizer(exe, &in, out) && out->p;
    sb_free(&in);
    size_t lines = 0;
    for (size_t i = 0; ok && i < out->len; i++) lines += out->p[i] == '\n';
    if (!ok || lines != n) return 0;
    const char *line = out->p;
    for (size_t i = 0; i < n; i++) {
        names[i] = line;
        line = strchr(line, '\n') + 1;
    }
    return 1;
}

/* One symbolized report frame: "\t@ 0x<pc> <function> <file>:<line>"
   (gperftools' symbolized report has "@ <pc> <function>"; the 0x form is
   what our and gperftools' tools read), innermost inlined frame first and
   " -- " before each caller it was inlined into; without a name,
   frame_line(). */
static void frame_named(sbuf_t *r, void *pc, const char *name) {
    if (!name) {
        frame_line(r, pc);
        return;
    }
    sb_str(r, "\t@ ");
    sb_hex(r, (uintptr_t)pc);
    if (strncmp(name, "0x", 2) != 0) {       /* an unknown address comes back as itself */
        sb_str(r, " ");
        for (const char *c = name; *c && *c != '\n'; c++) {
            /* names come from the program's debug information: no control
               characters to the user's terminal */
            char ch = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
            sb_add(r, &ch, 1);
        }
    }
    sb_str(r, "\n");
}

/* HEAPCHECK=minimal: was this stack's allocation made while the program
 * started, before main()?  gperftools' minimal mode starts tracking only
 * then; we track from the start and treat such objects as live instead.
 * Start-up code runs from the dynamic loader (library constructors: a
 * frame in ld.so) or from __libc_start_main calling the program's
 * constructors directly, where main() is reached through another libc
 * frame (__libc_start_call_main).  So: a frame in the loader, or a
 * __libc_start_main frame whose callee is not in libc. */
static int allocated_at_startup(bucket_t *b) {
    if (b->startup_known) return b->startup;
    int startup = 0;
    Dl_info prev = {0}, info;
    for (int i = 0; i < b->depth && !startup; i++) {
        if (!dladdr((char *)b->pcs[i] - 1, &info)) {
            memset(&prev, 0, sizeof prev);
            continue;
        }
        const char *base = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
        base = base ? base + 1 : info.dli_fname;
        if (base && strncmp(base, "ld-linux", 8) == 0) startup = 1;
        if (info.dli_sname && strcmp(info.dli_sname, "__libc_start_main") == 0 && i > 0 &&
            prev.dli_fbase != info.dli_fbase)
            startup = 1;
        prev = info;
    }
    b->startup = (uint8_t)startup;
    b->startup_known = 1;
    return startup;
}

/* Marks every object reachable from the roots (nregs: threads whose
   registers capture_thread_registers collected). */
static void flood(int through_exit, int nregs) {
    nwork = 0;
    for (size_t i = 0; i < nobjs; i++) objs[i].marked = 0;
    nlive_sps = 0;
    uintptr_t regs[PP_LIVE_REGS], sp;
    int nself = pp_live_boundary(through_exit, &sp, regs);
    __builtin_unwind_init();   /* when the boundary is unknown: our own registers are on the stack */
    live_sps[nlive_sps++] = sp;
    for (int t = 0; t < nregs; t++)
        if (__atomic_load_n(&thread_regs_ok[t], __ATOMIC_ACQUIRE) && nlive_sps < MAX_SPS) {
#ifdef SP_SLOT
            uintptr_t tsp = thread_regs[t][SP_SLOT];
            if (tsp > RED_ZONE) live_sps[nlive_sps++] = tsp - RED_ZONE;
#endif
        }
    sbuf_t maps = {0};
    sb_file(&maps, pp_maps_path());
    scan_roots(&maps);
    sb_free(&maps);
    if (cfg.ignore_thread_live) {
        for (int r = 0; r < nself; r++) consider(regs[r]);
        for (int t = 0; t < nregs; t++)
            if (__atomic_load_n(&thread_regs_ok[t], __ATOMIC_ACQUIRE))
                for (int r = 0; r < REG_WORDS; r++) consider(thread_regs[t][r]);
    }
    /* IgnoreObject() / Disabler objects are live, and so is what they point to */
    if (pp_hc_is_ignored)
        for (size_t i = 0; i < nobjs; i++)
            if (!objs[i].marked && pp_hc_is_ignored(objs[i].addr)) {
                objs[i].marked = 1;
                work[nwork++] = i;
            }
    if (cfg.minimal)
        for (size_t i = 0; i < nobjs; i++)
            if (!objs[i].marked && allocated_at_startup(objs[i].bucket)) {
                objs[i].marked = 1;
                work[nwork++] = i;
            }
    while (nwork > 0) {
        obj_t *x = &objs[work[--nwork]];
        scan_words((const char *)x->addr, x->size);
    }
}

/* The leak dump's path: <prefix>.<name>-end.heap beside the heap profiles
   when HEAPPROFILE is set (a path the user chose); otherwise a new file
   <dump dir>/<program>.<pid>.<random>.<name>-end.heap that nobody can have
   prepared (created with O_EXCL|O_NOFOLLOW, mode 0600).  Returns 0 or an
   errno value. */
static int write_leak_dump(char *file, size_t n, const char *exe, const char *name, const sbuf_t *prof) {
    sbuf_t path = {0};
    size_t x_at = 0;          /* where the unique part goes */
    if (pp_prof_prefix[0]) {
        sb_str(&path, pp_prof_prefix);
        sb_str(&path, ".");
    } else {
        const char *base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        sb_str(&path, cfg.dump_dir[0] ? cfg.dump_dir : "/tmp");
        sb_str(&path, "/");
        sb_add(&path, base, strnlen(base, 200));
        sb_str(&path, ".");
        sb_num(&path, (size_t)getpid(), 0);
        sb_str(&path, ".");
        x_at = path.len;
        sb_str(&path, "XXXXXX.");
    }
    for (const char *c = name; *c; c++) sb_add(&path, *c == '/' ? "_" : c, 1);   /* a name, not a path */
    sb_str(&path, "-end.heap");
    if (!path.p || path.len >= n) {
        sb_free(&path);
        file[0] = 0;
        return ENAMETOOLONG;
    }
    memcpy(file, path.p, path.len + 1);
    sb_free(&path);
    if (!prof->p) return ENOMEM;
    return pp_prof_prefix[0] ? pp_write_file(file, prof->p, prof->len)
                             : pp_write_new_file(file, x_at, prof->p, prof->len);
}


/* Scratch arrays of a leak check, registered as allocator-owned (so the
   root scan skips them) and kept for the next check (named checkers run
   many), grown by doubling: pp_os_map memory is never given back. */
static void *scratch(void **slot, size_t *cap, size_t need) {
    if (*slot && *cap >= need) return *slot;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *p = pp_os_map(c);
    if (p) {
        *slot = p;
        *cap = c;
    }
    return p;
}

static long leak_check_locked(const char *name, int through_exit, int (*may_report)(uintptr_t addr, void *ctx),
                              void *ctx, size_t *leaked_bytes, size_t *leaked_objects) {
    static void *o_mem, *it_mem, *work_mem, *first_mem;
    static size_t o_cap, it_cap, work_cap, first_cap;
    if (leaked_bytes) *leaked_bytes = 0;
    if (leaked_objects) *leaked_objects = 0;
    if (!cfg.tracking || !pp_map_heads) return -1;
    int busy = pp_busy;
    pp_busy = 1;
    int nregs = capture_thread_registers();
    pp_map_lock_all();
    size_t count = 0;
    for (size_t i = 0; i < MAP_HEADS; i++)
        for (node_t *nd = pp_map_heads[i]; nd; nd = nd->next) count++;
    obj_t *o = scratch(&o_mem, &o_cap, (count + 1) * sizeof(obj_t));
    item_t *it = scratch(&it_mem, &it_cap, (count + 1) * sizeof(item_t));
    work = scratch(&work_mem, &work_cap, (count + 1) * sizeof(size_t));
    if (!scan_buf) scan_buf = pp_os_map(SCAN_BUF);
    if (!o || !it || !work || !scan_buf) {
        pp_map_unlock_all();
        release_threads();
        say("out of memory, leak check skipped", NULL, NULL);
        pp_busy = busy;
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < MAP_HEADS; i++)
        for (node_t *nd = pp_map_heads[i]; nd; nd = nd->next) {
            it[n].key = nd->ptr;
            it[n].val = nd->bucket;
            it[n].extra = nd->size;
            n++;
        }
    sort_items(it, n);
    for (size_t i = 0; i < n; i++) {
        o[i].addr = it[i].key;
        o[i].bucket = it[i].val;
        o[i].size = it[i].extra;
        o[i].marked = 0;
    }
    objs = o;
    nobjs = n;
    heap_lo = n ? o[0].addr : 0;
    heap_hi = n ? o[n - 1].addr + o[n - 1].size + 1 : 0;
    scan_alignment = cfg.alignment;
    if (n) flood(through_exit, nregs);
    size_t unaligned_found = 0;     /* leaks a 1-byte-aligned scan finds reachable */
    int retried = 0;
    if (cfg.test_alignment && n && cfg.alignment > 1) {
        size_t leaked = 0;
        for (size_t i = 0; i < n; i++) leaked += !objs[i].marked;
        if (leaked) {
            /* keep the first result, flood again with any alignment */
            int *first = scratch(&first_mem, &first_cap, n * sizeof(int));
            if (first) {
                for (size_t i = 0; i < n; i++) first[i] = objs[i].marked;
                scan_alignment = 1;
                flood(through_exit, nregs);
                for (size_t i = 0; i < n; i++) {
                    if (!first[i] && objs[i].marked) unaligned_found++;
                    objs[i].marked = first[i];
                }
                scan_alignment = cfg.alignment;
                retried = 1;
            }
        }
    }
    pp_map_unlock_all();
    release_threads();

    /* group leaked objects by allocation stack */
    size_t nleak = 0, leak_bytes = 0, live_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        live_bytes += objs[i].size;
        if (!objs[i].marked && (!may_report || may_report(objs[i].addr, ctx))) {
            it[nleak].key = (uintptr_t)objs[i].bucket;
            it[nleak].val = (void *)objs[i].addr;
            it[nleak].extra = objs[i].size;
            nleak++;
            leak_bytes += objs[i].size;
        }
    }
    if (leaked_bytes) *leaked_bytes = leak_bytes;
    if (leaked_objects) *leaked_objects = nleak;
    if (nleak == 0) {
        sbuf_t b = {0};
        sb_str(&b, "No leaks found for check \"");
        sb_str(&b, name);
        sb_str(&b, "\" (but no 100% guarantee that there aren't any): found ");
        sb_num(&b, n, 0);
        sb_str(&b, " reachable heap objects of ");
        sb_num(&b, live_bytes, 0);
        sb_str(&b, " bytes\n");
        if (b.p) pp_write_str(2, b.p);
        sb_free(&b);
        pp_busy = busy;
        return 0;
    }
    sort_items(it, nleak);       /* by bucket: a group's objects are adjacent */
    item_t *groups = big_alloc((nleak + 1) * sizeof(item_t));
    size_t ng = 0;
    for (size_t i = 0; groups && i < nleak; i++) {
        if (ng == 0 || groups[ng - 1].val != (void *)(uintptr_t)it[i].key) {
            groups[ng].val = (void *)(uintptr_t)it[i].key;
            groups[ng].extra = 0;
            groups[ng].extra2 = 0;
            ng++;
        }
        groups[ng - 1].extra += it[i].extra;
        groups[ng - 1].extra2++;
    }
    /* largest leaks first; equal sizes by stack, so the order is stable */
    for (size_t g = 0; g < ng; g++) groups[g].key = ~(uint64_t)groups[g].extra;
    sort_items(groups, ng);

    /* the leak profile: every leaked object once, in use = allocated; with
       HEAP_CHECK_IDENTIFY_LEAKS one record per object, its address as the
       first "caller" (gperftools' form) */
    sbuf_t prof = {0};
    sb_str(&prof, "heap profile: ");
    sb_counts(&prof, nleak, leak_bytes, nleak, leak_bytes);
    sb_str(&prof, " heapprofile\n");
    if (cfg.identify_leaks) {
        for (size_t i = 0; i < nleak; i++) {
            bucket_t *b = (bucket_t *)(uintptr_t)it[i].key;
            sb_counts(&prof, 1, it[i].extra, 1, it[i].extra);
            sb_str(&prof, " ");
            sb_hex(&prof, (uintptr_t)it[i].val);
            sb_pcs(&prof, b->pcs, b->depth);
        }
    } else {
        for (size_t g = 0; g < ng; g++) {
            bucket_t *b = groups[g].val;
            sb_counts(&prof, groups[g].extra2, groups[g].extra, groups[g].extra2, groups[g].extra);
            sb_pcs(&prof, b->pcs, b->depth);
        }
    }
    sb_str(&prof, "\nMAPPED_LIBRARIES:\n");
    sb_file(&prof, pp_maps_path());
    char exe[1024], file[2048];
    exe_path(exe, sizeof exe);
    int werr = write_leak_dump(file, sizeof file, exe, name, &prof);
    sb_free(&prof);

    sbuf_t r = {0};
    sb_str(&r, "Leak check ");
    sb_str(&r, name);
    sb_str(&r, " detected leaks of ");
    sb_num(&r, leak_bytes, 0);
    sb_str(&r, " bytes in ");
    sb_num(&r, nleak, 0);
    sb_str(&r, " objects\n");
    size_t shown = cfg.max_leaks > 0 && (size_t)cfg.max_leaks < ng ? (size_t)cfg.max_leaks : ng;
    sb_str(&r, "The ");
    sb_num(&r, shown, 0);
    sb_str(&r, " largest leaks:\n");
    /* every printed frame, symbolized in one run of the symbolizer */
    size_t nframes = 0;
    for (size_t g = 0; g < shown; g++) nframes += (size_t)((bucket_t *)groups[g].val)->depth;
    size_t frames_len = (nframes + 1) * (sizeof(void *) + sizeof(char *));
    void **frames = big_alloc(frames_len);
    const char **names = frames ? (const char **)(frames + nframes + 1) : NULL;
    sbuf_t symbols = {0};
    if (frames) {
        size_t k = 0;
        for (size_t g = 0; g < shown; g++) {
            bucket_t *b = groups[g].val;
            for (int i = 0; i < b->depth; i++) frames[k++] = b->pcs[i];
        }
        if (!symbolize_pcs(exe, frames, nframes, &symbols, names)) memset(names, 0, nframes * sizeof(char *));
    }
    size_t k = 0;
    for (size_t g = 0; g < shown; g++) {
        bucket_t *b = groups[g].val;
        sb_str(&r, "Leak of ");
        sb_num(&r, groups[g].extra, 0);
        sb_str(&r, " bytes in ");
        sb_num(&r, groups[g].extra2, 0);
        sb_str(&r, " objects allocated from:\n");
        for (int i = 0; i < b->depth; i++, k++) frame_named(&r, b->pcs[i], names ? names[k] : NULL);
        sb_str(&r, "\n");
    }
    sb_free(&symbols);
    if (frames) munmap(frames, frames_len);
    if (shown < ng) {
        sb_str(&r, "Skipping leaks numbered ");
        sb_num(&r, shown, 0);
        sb_str(&r, "..");
        sb_num(&r, ng - 1, 0);
        sb_str(&r, " (HEAP_CHECK_MAX_LEAKS)\n");
    }
    if (retried) {
        if (unaligned_found == nleak)
            sb_str(&r, "Found no leaks without pointer alignment: something might be placing pointers at "
                       "unaligned addresses! This needs to be fixed.\n");
        else
            sb_str(&r, "Found leaks without pointer alignment as well: unaligned pointers must not be the "
                       "cause of leaks.\n");
    }
    if (werr) {
        sb_str(&r, "pprof_py heap checker: cannot write the leak profile ");
        sb_str(&r, file);
        sb_str(&r, ": ");
        sb_str(&r, pp_errno_text(werr));
        sb_str(&r, "\n");
    } else {
        sb_str(&r, "\nIf the preceding stack traces are not enough to find the leaks, try running THIS shell "
                   "command:\n\n");
        sb_shell_quoted(&r, cfg.pprof);
        sb_str(&r, " ");
        sb_shell_quoted(&r, exe);
        sb_str(&r, " ");
        sb_shell_quoted(&r, file);
        sb_str(&r, " --inuse_objects --lines --heapcheck  --edgefraction=1e-10 --nodefraction=1e-10 --text\n\n");
    }
    if (r.p) pp_write_str(2, r.p);
    sb_free(&r);
    if (groups) munmap(groups, (nleak + 1) * sizeof(item_t));
    pp_busy = busy;
    return (long)nleak;
}

long pp_leak_check(const char *name, int through_exit, int (*may_report)(uintptr_t addr, void *ctx), void *ctx,
                   size_t *leaked_bytes, size_t *leaked_objects) {
    /* one check at a time: the scratch arrays, the register slots and the
       root list are shared (a thread waiting here still answers the
       register signal of the check in progress) */
    static pp_lock_t check_lock;
    pp_lock(&check_lock);
    long r = leak_check_locked(name, through_exit, may_report, ctx, leaked_bytes, leaked_objects);
    pp_unlock(&check_lock);
    return r;
}

#ifdef PPROFPY_GPERFTOOLS_GLUE_H
/* the gperftools layer's form of pp_leak_check (gperftools_glue.h) */
int pp_leak_check_run(struct pp_leak_query *q) {
    return pp_leak_check(q->name, 0, q->may_report, q->ctx, &q->leaked_bytes, &q->leaked_objects) > 0;
}
#endif

void pp_leak_check_at_exit(void) {
    /* a child forked without exec does not check (gperftools neither):
       its heap is the parent's, whose check reports it */
    if (!cfg.whole_program || getpid() != check_pid) return;
    /* HeapLeakChecker::CancelGlobalCheck(); it also runs the HeapCleaner functions first */
    if (pp_hc_global_check_wanted && !pp_hc_global_check_wanted()) return;
    long leaks = pp_leak_check("_main_", 1, NULL, NULL, NULL, NULL);
    if (leaks > 0) {
        pp_write_str(2, "Exiting with error code (instead of crashing) because of whole-program memory leaks\n");
        pp_busy = 1;
        fflush(NULL);
        _exit(1);
    }
}
