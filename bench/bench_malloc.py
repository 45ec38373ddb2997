"""Allocator benchmark: pprof_py's allocator vs glibc, tcmalloc, jemalloc, mimalloc.

    python3 bench/bench_malloc.py [--quick] [--repeat N] [--only NAME,...]   (make bench-malloc)

Every program runs under each allocator (swapped in with LD_PRELOAD) in the
same run, interleaved run by run so that load changes on the machine hit
all of them alike.  Reported per program: CPU time (user + system, from
wait4, best of --repeat runs) and peak RSS (worst of the runs), then the
ratio ours / other, and at the end the geometric means of the CPU-time
ratios: against each allocator and against the best of tcmalloc, jemalloc
and mimalloc on each program.

Programs (both C sources are compiled here with gcc -O2):
  single, threads2, prodcons, largemix, largemix8, largemix32
                                         micro workloads (BENCH_C below):
      1 thread 8-512 B with 4096 live; 2 threads 8 B-32 KiB; a producer
      thread mallocs and a consumer frees; 1 thread 8 B-1 MiB, 256 live;
      the same in 8 and in 32 threads at once (the operations split
      between them), where the thread caches share one budget
  larson, cache-scratch, malloc-large, xmalloc, realloc-4k, realloc-100,
  alloc-tree, idle-release               bench/malloc_programs.c, written
      in the style of mimalloc-bench's programs (see its header);
      idle-release also prints the RSS left after 3 s idle

  python3, sqlite3, xz, gcc             real programs (skipped when not
      installed), on inputs made here: a Python workload of objects above
      pymalloc's 512 B (json round trips, big dicts and lists of strings,
      sorting), 200,000 rows inserted, indexed, grouped and joined in an
      in-memory sqlite3 database, `xz -6` of 8 MB of generated text,
      `gcc -O2 -c` of a generated 1,500-function C file

Then the heap-profiler overhead on `single` with our allocator: off, sampled
(PPROF_PY_HEAP_SAMPLE_PARAMETER=524288) and full recording (HEAPPROFILE alone).
"""
import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from pprof_py.native import libpath  # noqa: E402

LIBDIR = "/usr/lib/x86_64-linux-gnu"
ALLOCATORS = [
    ("ours", None),
    ("glibc", ""),
    ("tcmalloc", os.path.join(LIBDIR, "libtcmalloc_minimal.so.4")),
    ("jemalloc", os.path.join(LIBDIR, "libjemalloc.so.2")),
    ("mimalloc", os.path.join(LIBDIR, "libmimalloc.so.2")),
]

BENCH_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s;
}

/* log-uniform size in [lo, hi] */
static inline size_t logsize(uint64_t *s, int lo_bits, int hi_bits) {
    uint64_t r = rnd(s);
    int b = lo_bits + (int)(r % (uint64_t)(hi_bits - lo_bits + 1));
    size_t base = (size_t)1 << b;
    return base + (size_t)((r >> 8) % base);
}

typedef struct { long iters; int kind; uint64_t seed; } arg_t;

static void *churn(void *vp) {
    arg_t *a = vp;
    enum { LIVE = 4096 };
    void **slots = calloc(LIVE, sizeof(void *));
    uint64_t s = a->seed;
    int live = a->kind == 3 ? 256 : LIVE;
    for (long i = 0; i < a->iters; i++) {
        uint64_t r = rnd(&s);
        size_t k = r % (uint64_t)live;
        size_t n;
        if (a->kind == 1) n = 8 + (size_t)((r >> 20) % 505);
        else if (a->kind == 2) n = logsize(&s, 3, 14);
        else n = logsize(&s, 3, 19);
        free(slots[k]);
        char *p = malloc(n);
        p[0] = (char)i;
        slots[k] = p;
    }
    for (int k = 0; k < live; k++) free(slots[k]);
    free(slots);
    return NULL;
}

#define RING 4096
static void *volatile ring[RING];
static volatile long produced_total;

static void *consumer(void *vp) {
    long n = *(long *)vp, got = 0;
    unsigned long tail = 0;
    while (got < n) {
        void *p = ring[tail % RING];
        if (!p) { __builtin_ia32_pause(); continue; }
        ring[tail % RING] = NULL;
        tail++;
        free(p);
        got++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *w = argv[1];
    long iters = atol(argv[2]);
    double t0, t1;
    if (!strcmp(w, "single") || !strcmp(w, "largemix")) {
        arg_t a = {iters, !strcmp(w, "single") ? 1 : 3, 88172645463325252ull};
        t0 = now();
        churn(&a);
        t1 = now();
        printf("%.2f\n", (t1 - t0) * 1e9 / iters);
    } else if (!strncmp(w, "largemix", 8) && atoi(w + 8) > 0) {
        /* largemixN: N threads each churning like largemix, iters split */
        int nt = atoi(w + 8);
        if (nt > 64) nt = 64;
        pthread_t t[64];
        arg_t a[64];
        for (int i = 0; i < nt; i++) {
            a[i].iters = iters / nt;
            a[i].kind = 3;
            a[i].seed = 1000 + (uint64_t)i;
        }
        t0 = now();
        for (int i = 0; i < nt; i++) pthread_create(&t[i], NULL, churn, &a[i]);
        for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
        t1 = now();
        printf("%.2f\n", (t1 - t0) * 1e9 / iters);
    } else if (!strcmp(w, "threads2")) {
        pthread_t t[2];
        arg_t a[2] = {{iters, 2, 11}, {iters, 2, 12345}};
        t0 = now();
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, &a[i]);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        t1 = now();
        printf("%.2f\n", (t1 - t0) * 1e9 / iters);   /* wall ns per pair per thread */
    } else if (!strcmp(w, "prodcons")) {
        pthread_t t;
        pthread_create(&t, NULL, consumer, &iters);
        uint64_t s = 7;
        unsigned long head = 0;
        t0 = now();
        for (long i = 0; i < iters; i++) {
            size_t n = 16 + (size_t)(rnd(&s) % 1009);
            char *p = malloc(n);
            p[0] = 1;
            while (ring[head % RING]) __builtin_ia32_pause();
            ring[head % RING] = p;
            head++;
        }
        pthread_join(t, NULL);
        t1 = now();
        printf("%.2f\n", (t1 - t0) * 1e9 / iters);
    } else {
        return 2;
    }
    return 0;
}
"""

# (name, label, argv after the binary); "bench" = BENCH_C, "progs" = malloc_programs.c
PROGRAMS = [
    ("single", "1 thread, 8-512 B", ("bench", "single", "40000000")),
    ("threads2", "2 threads, 8 B-32 KiB", ("bench", "threads2", "8000000")),
    ("prodcons", "producer/consumer (cross-thread free)", ("bench", "prodcons", "3000000")),
    ("largemix", "1 thread, 8 B-1 MiB", ("bench", "largemix", "10000000")),
    ("largemix8", "8 threads, 8 B-1 MiB each", ("bench", "largemix8", "10000000")),
    ("largemix32", "32 threads, 8 B-1 MiB each", ("bench", "largemix32", "10000000")),
    ("larson", "larson-like server, 4 threads", ("progs", "larson")),
    ("cache-scratch", "cache-scratch (false sharing)", ("progs", "cache-scratch")),
    ("malloc-large", "malloc-large, 20 x 5-25 MiB live", ("progs", "malloc-large")),
    ("xmalloc", "xmalloc-like, 2 producer/consumer pairs", ("progs", "xmalloc")),
    ("realloc-4k", "realloc +4 KiB to 64 MiB, x10", ("progs", "realloc-4k")),
    ("realloc-100", "realloc +100 B to 8 MiB, x20", ("progs", "realloc-100")),
    ("alloc-tree", "binary trees of 32 B nodes", ("progs", "alloc-tree")),
    ("idle-release", "free 1 GiB, then idle 3 s", ("progs", "idle-release")),
    # Real programs: ("real", tool, args...), "{tmp}" is the run's folder.
    ("python3", "python3: json, dicts, strings", ("real", "python3", "{tmp}/workload.py")),
    ("sqlite3", "sqlite3: 200k rows, index, join", ("real", "sqlite3", ":memory:", ".read {tmp}/workload.sql")),
    ("xz", "xz -6 of 8 MB of text", ("real", "xz", "-6", "-T1", "-k", "-f", "{tmp}/text.txt")),
    ("gcc", "gcc -O2 -c, 1500 functions", ("real", "gcc", "-O2", "-c", "{tmp}/big.c", "-o", "{tmp}/big.o")),
]

PYTHON_WORKLOAD = """
import json, random
random.seed(1)
for round in range(6):
    records = [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i %% 17)] * (i %% 5),
                "text": "x" * random.randint(500, 4000)} for i in range(20000)]
    blob = json.dumps(records)
    back = json.loads(blob)
    index = {r["name"]: r for r in back}
    words = sorted(r["text"][: random.randint(600, 3000)] + r["name"] for r in back)
    del records, blob, back, index, words
"""

SQL_WORKLOAD = """
create table t(id integer primary key, k integer, name text, payload text);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000)
insert into t select i, i % 1000, 'name' || i, printf('%.*c', 100 + i % 400, 'x') from n;
create index t_k on t(k);
create table u as select k, count(*) c, sum(length(payload)) s from t group by k;
select count(*), sum(u.c) from t join u on t.k = u.k where t.id % 7 = 0;
select name from t order by payload desc, name limit 5;
"""


def make_real_inputs(tmp):
    """The inputs of the real programs, the same for every allocator."""
    with open(os.path.join(tmp, "workload.py"), "w") as f:
        f.write(PYTHON_WORKLOAD.replace("%%", "%"))
    with open(os.path.join(tmp, "workload.sql"), "w") as f:
        f.write(SQL_WORKLOAD)
    words = ["alloc", "free", "span", "page", "cache", "thread", "lock", "sample", "profile", "stack"]
    state = 12345
    with open(os.path.join(tmp, "text.txt"), "w") as f:
        line = []
        for i in range(1_000_000):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            line.append(words[state % len(words)] + str(state % 97))
            if len(line) == 12:
                f.write(" ".join(line) + "\n")
                line = []
    with open(os.path.join(tmp, "big.c"), "w") as f:
        for i in range(1500):
            f.write("int f%d(int *a, int n) { int s = %d; for (int i = 0; i < n; i++) "
                    "{ s += a[i] * %d; if (s > %d) s -= a[(i + %d) %% n]; } return s; }\n"
                    % (i, i, i % 13 + 1, 1000 + i, i % 7 + 1))
PEERS = ("tcmalloc", "jemalloc", "mimalloc")


def clean_env(preload, extra_env=None):
    env = dict(os.environ)
    for k in list(env):
        if k in ("LD_PRELOAD", "HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "PPROF_PY_HEAP_SAMPLE_PARAMETER", "MALLOCSTATS") or \
                k.startswith("PPROFPY_MALLOC_"):
            env.pop(k)
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra_env or {})
    return env


def raise_if_failed(rc, argv, preload, err):
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} under {preload or 'glibc'} failed ({rc}): {err.strip()}")


def measure(argv, preload, extra_env=None):
    """(cpu seconds, peak RSS KiB, stdout) of one run, from wait4."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, env=clean_env(preload, extra_env), stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        raise_if_failed(proc.returncode, argv, preload, err.read())
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out.read()


def best_of(argv, preload, repeat, extra_env=None):
    results = [measure(argv, preload, extra_env) for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results), results[-1][2]


def geomean(values):
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell; the best CPU time is reported")
    ap.add_argument("--quick", action="store_true", help="one run per cell, 10x fewer micro-workload iterations")
    ap.add_argument("--only", default="", help="comma-separated program names to run")
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else args.repeat

    ours = libpath("malloc")
    allocators = [(name, ours if path is None else path) for name, path in ALLOCATORS]
    allocators = [(n, p) for n, p in allocators if p == "" or os.path.exists(p)]
    missing = [n for n, p in ALLOCATORS if p and not os.path.exists(p)]
    names = [n for n, _ in allocators]
    only = {s for s in args.only.split(",") if s}
    unknown = only - {p[0] for p in PROGRAMS}
    if unknown:
        print(f"bench_malloc: unknown program(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="bench_malloc_")
    try:
        src = os.path.join(tmp, "bench.c")
        binaries = {"bench": os.path.join(tmp, "bench"), "progs": os.path.join(tmp, "progs")}
        with open(src, "w") as f:
            f.write(BENCH_C)
        subprocess.run(["gcc", "-O2", "-fno-builtin", "-pthread", src, "-o", binaries["bench"]], check=True)
        subprocess.run(["gcc", "-O2", "-fno-builtin", "-pthread", os.path.join(HERE, "malloc_programs.c"),
                        "-o", binaries["progs"]], check=True)

        print(f"CPU seconds (user + system, best of {repeat}) and peak RSS in MiB (worst); "
              f"ratio = ours / other (< 1.00: ours uses less)")
        if missing:
            print("not installed, skipped:", ", ".join(missing))
        header = f"{'program':<42}" + "".join(f"{n:>16}" for n in names)
        print(header)
        print("-" * len(header))
        ratios = {}                       # program -> {allocator: (cpu ratio, rss ratio)}
        idle_rss = {}
        real_inputs_made = False
        for name, label, (binary, *rest) in PROGRAMS:
            if only and name not in only:
                continue
            if binary == "real":
                if not real_inputs_made:       # only when a real program runs
                    make_real_inputs(tmp)
                    real_inputs_made = True
                tool = sys.executable if rest[0] == "python3" else shutil.which(rest[0])
                if tool is None:
                    print(f"{label:<42}  not installed, skipped")
                    continue
                cmd = [tool] + [a.replace("{tmp}", tmp) for a in rest[1:]]
            else:
                cmd = [binaries[binary], *rest]
            if binary == "bench" and args.quick:
                cmd[-1] = str(int(cmd[-1]) // 10)
            runs = {n: [] for n in names}
            for _ in range(repeat):
                for n, path in allocators:
                    runs[n].append(measure(cmd, path))
            cells = {n: (min(r[0] for r in rs), max(r[1] for r in rs), rs[-1][2]) for n, rs in runs.items()}
            row = f"{label:<42}"
            for n in names:
                cpu, rss, _ = cells[n]
                row += f"{cpu:>8.2f}s {rss / 1024:>5.0f}M"
            print(row)
            ours_cpu, ours_rss, _ = cells["ours"]
            ratio_row = f"{'  ratio ours/other (CPU, RSS)':<42}"
            ratios[name] = {}
            for n in names:
                cpu, rss, _ = cells[n]
                rc = ours_cpu / cpu if cpu > 0 else float("nan")
                ratios[name][n] = (rc, ours_rss / rss)
                ratio_row += f"{rc:>9.2f}x {ours_rss / rss:>4.2f}"
            print(ratio_row)
            if name == "idle-release":
                for n in names:
                    line = cells[n][2].strip()
                    idle_rss[n] = int(line.split("=")[1]) if line.startswith("rss_after_idle_kib=") else 0

        if idle_rss:
            print()
            print("RSS left after freeing 1 GiB and 3 s idle (MiB): " +
                  ", ".join(f"{n} {idle_rss[n] / 1024:.1f}" for n in names))
        if ratios:
            print()
            print(f"geometric mean of CPU-time ratios ours/other over {len(ratios)} programs:")
            for n in names:
                if n == "ours":
                    continue
                print(f"  vs {n:<10} {geomean([r[n][0] for r in ratios.values()]):.2f}x")
            peers = [p for p in PEERS if p in names]
            if peers:
                best = []
                for r in ratios.values():
                    # ratio against the fastest peer on this program = the largest ratio
                    best.append(max(r[p][0] for p in peers))
                print(f"  vs the best of {'/'.join(peers)} on each program: {geomean(best):.2f}x")
                checks = [p for p in ("tcmalloc", "glibc") if p in names]
                slower = [f"{prog} ({max(r[p][0] for p in checks):.3f}x)" for prog, r in ratios.items()
                          if checks and max(r[p][0] for p in checks) >= 1.005]
                print("  programs where ours used more CPU than tcmalloc or glibc: " +
                      (", ".join(slower) if slower else "none"))
                if "tcmalloc" in names:
                    above = [f"{prog} ({r['tcmalloc'][1]:.2f}x)" for prog, r in ratios.items()
                             if r["tcmalloc"][1] > 1.0]
                    print("  programs where ours had a higher peak RSS than tcmalloc: " +
                          (", ".join(above) if above else "none"))

        if only and "single" not in only:
            return 0
        print()
        print("heap profiler overhead, workload 'single' with our allocator (CPU seconds):")
        cmd = [binaries["bench"], "single", str(20_000_000 // (10 if args.quick else 1))]
        base, base_rss, _ = best_of(cmd, ours, repeat)
        prefix = os.path.join(tmp, "hp")
        quiet = {"HEAP_PROFILE_ALLOCATION_INTERVAL": "0", "HEAP_PROFILE_INUSE_INTERVAL": "0"}
        sampled, s_rss, _ = best_of(cmd, ours, repeat,
                                    dict(quiet, HEAPPROFILE=prefix, PPROF_PY_HEAP_SAMPLE_PARAMETER="524288"))
        full, f_rss, _ = best_of(cmd, ours, repeat, dict(quiet, HEAPPROFILE=prefix))
        print(f"  {'off':<50}{base:>7.2f}s  {base_rss / 1024:>5.0f}M")
        print(f"  {'sampled (PPROF_PY_HEAP_SAMPLE_PARAMETER=524288)':<50}{sampled:>7.2f}s  {s_rss / 1024:>5.0f}M"
              f"  ({sampled / base:.2f}x)")
        print(f"  {'full recording (HEAPPROFILE)':<50}{full:>7.2f}s  {f_rss / 1024:>5.0f}M"
              f"  ({full / base:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
