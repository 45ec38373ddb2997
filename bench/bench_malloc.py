"""Allocator benchmark: pprof_py's allocator vs glibc, tcmalloc, jemalloc, mimalloc.

    python3 bench/bench_malloc.py [--quick] [--repeat N]      (make bench-malloc)

A small C program (compiled here with gcc) runs each workload; every
allocator is swapped in with LD_PRELOAD, in the same run.  Reported: ns per
malloc+free pair (best of --repeat runs) and peak RSS of the process
(ru_maxrss).  Workloads:

  single      1 thread, mixed small sizes (8..512 B), 4096 live blocks
  threads2    2 threads, mixed sizes 8 B..32 KiB (log-uniform), 4096 live each
  prodcons    producer thread mallocs (16..1024 B), consumer thread frees,
              through a lock-free single-producer/single-consumer ring
  largemix    1 thread, sizes 8 B..1 MiB (log-uniform), 256 live blocks

Then the heap-profiler overhead on `single` with our allocator: off, sampled
(TCMALLOC_SAMPLE_PARAMETER=524288) and full recording (HEAPPROFILE alone).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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

WORKLOADS = [
    ("single", "1 thread, mixed small sizes 8-512 B", 20_000_000),
    ("threads2", "2 threads, mixed sizes 8 B-32 KiB", 8_000_000),
    ("prodcons", "producer/consumer (cross-thread free)", 3_000_000),
    ("largemix", "1 thread, sizes 8 B-1 MiB", 2_000_000),
]


def run_once(binary, workload, iters, preload, extra_env=None):
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "MALLOCSTATS"):
        env.pop(k, None)
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra_env or {})
    proc = subprocess.Popen([binary, workload, str(iters)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{workload} under {preload or 'glibc'} failed ({proc.returncode}): {err}")
    return float(out.strip()), usage.ru_maxrss


def best_of(binary, workload, iters, preload, repeat, extra_env=None):
    results = [run_once(binary, workload, iters, preload, extra_env) for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per cell; the best time is reported")
    ap.add_argument("--quick", action="store_true", help="10x fewer iterations")
    args = ap.parse_args(argv)

    ours = libpath("malloc")
    allocators = [(name, ours if path is None else path) for name, path in ALLOCATORS]
    allocators = [(n, p) for n, p in allocators if p == "" or os.path.exists(p)]
    missing = [n for n, p in ALLOCATORS if p and not os.path.exists(p)]

    tmp = tempfile.mkdtemp(prefix="bench_malloc_")
    try:
        src = os.path.join(tmp, "bench.c")
        exe = os.path.join(tmp, "bench")
        with open(src, "w") as f:
            f.write(BENCH_C)
        subprocess.run(["gcc", "-O2", "-fno-builtin", "-pthread", src, "-o", exe], check=True)

        scale = 10 if args.quick else 1
        print(f"ns per malloc+free (best of {args.repeat}), peak RSS in MiB; "
              f"ratio = ours / other (< 1.00 means ours is faster)")
        if missing:
            print("not installed, skipped in this table:", ", ".join(missing))
        names = [n for n, _ in allocators]
        header = f"{'workload':<42}" + "".join(f"{n:>18}" for n in names)
        print(header)
        print("-" * len(header))
        ratios = {}
        for workload, label, iters in WORKLOADS:
            iters //= scale
            # interleave the allocators run by run so load changes on the
            # machine hit all of them alike; keep the best time and worst RSS
            runs = {name: [] for name, _ in allocators}
            for _ in range(args.repeat):
                for name, path in allocators:
                    runs[name].append(run_once(exe, workload, iters, path))
            cells = {name: (min(r[0] for r in rs), max(r[1] for r in rs)) for name, rs in runs.items()}
            ours_ns, ours_rss = cells["ours"]
            row = f"{label:<42}"
            for name in names:
                ns, rss = cells[name]
                row += f"{ns:>9.1f} ns {rss / 1024:>5.0f}M"
            print(row)
            ratio_row = f"{'  ratio ours/other (time, RSS)':<42}"
            for name in names:
                ns, rss = cells[name]
                ratio_row += f"{ours_ns / ns:>10.2f}x {ours_rss / rss:>5.2f}"
                ratios[(workload, name)] = (ours_ns / ns, ours_rss / rss)
            print(ratio_row)

        print()
        print("heap profiler overhead, workload 'single' with our allocator:")
        iters = WORKLOADS[0][2] // scale
        base, base_rss = best_of(exe, "single", iters, ours, args.repeat)
        prefix = os.path.join(tmp, "hp")
        quiet = {"HEAP_PROFILE_ALLOCATION_INTERVAL": "0", "HEAP_PROFILE_INUSE_INTERVAL": "0"}
        sampled, s_rss = best_of(exe, "single", iters, ours, args.repeat,
                                 dict(quiet, HEAPPROFILE=prefix, TCMALLOC_SAMPLE_PARAMETER="524288"))
        full, f_rss = best_of(exe, "single", iters, ours, args.repeat, dict(quiet, HEAPPROFILE=prefix))
        print(f"  {'off':<40}{base:>9.1f} ns  {base_rss / 1024:>5.0f}M")
        print(f"  {'sampled (TCMALLOC_SAMPLE_PARAMETER=524288)':<40}{sampled:>9.1f} ns  {s_rss / 1024:>5.0f}M"
              f"  ({sampled / base:.2f}x)")
        print(f"  {'full recording (HEAPPROFILE)':<40}{full:>9.1f} ns  {f_rss / 1024:>5.0f}M"
              f"  ({full / base:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
