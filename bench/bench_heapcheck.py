"""Leak checker benchmark: pprof_py's HEAPCHECK vs gperftools' (libtcmalloc.so),
in the same run, on the same program.

    python3 bench/bench_heapcheck.py [--live N] [--repeat R]      (make bench-heapcheck)

A small C program (compiled here with gcc) keeps N objects reachable (a
linked list from a global, 64 bytes each, plus a tree of pointers between
them) and leaks 40 blocks of 400 bytes whose only pointers were in a stack
frame that has returned, plus 5 blocks of 4096 bytes.  Reported per checker:
the leaked objects found (expected: 45, every run, whatever the
environment's size) and the run's wall time, best of R, with the ratio to
the same program under the same allocator without a check.  Symbolization
is off for both (PPROF_PATH pointing nowhere), so the times are the
tracking and the check; ours with symbolization is shown apart.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pprof_py.native import libpath  # noqa: E402

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct obj { struct obj *next, *left, *right; char pad[40]; };
static struct obj *head;
static volatile unsigned long sink;
__attribute__((noinline)) static void leak_in_frame(int n, size_t size) {
    void *blocks[64];
    for (int i = 0; i < n; i++) { blocks[i] = malloc(size); memset(blocks[i], 0x22, size); }
    for (int i = 0; i < n; i++) sink += ((unsigned char *)blocks[i])[i % size];
}
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    struct obj **all = malloc(sizeof *all * (size_t)n);
    for (long i = 0; i < n; i++) {
        struct obj *o = calloc(1, sizeof *o);
        o->next = head; head = o; all[i] = o;
        if (i) { o->left = all[(i - 1) / 2]; o->right = all[i / 3]; }
    }
    free(all);
    leak_in_frame(40, 400);
    leak_in_frame(5, 4096);
    printf("done\n");
    return 0;
}
"""

LEAK = re.compile(r"detected leaks of (\d+) bytes in (\d+) objects")


def run(exe, live, env, pad):
    env = dict(env, PAD="x" * pad)
    t0 = time.perf_counter()
    r = subprocess.run([exe, str(live)], env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    m = LEAK.search(r.stderr)
    return elapsed, (int(m.group(2)) if m else 0), r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", type=int, default=200000, help="reachable objects (default 200000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration, best taken (default 3)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench_heapcheck.")
    src, exe = os.path.join(work, "prog.c"), os.path.join(work, "prog")
    with open(src, "w") as f:
        f.write(PROGRAM)
    subprocess.run(["gcc", "-O2", "-g", "-o", exe, src], check=True)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("HEAP", "LD_PRELOAD", "PPROF_PATH", "TCMALLOC", "CPUPROFILE"))}
    base.update(HEAP_CHECK_DUMP_DIRECTORY=work, TMPDIR=work)
    ours, peers = libpath("malloc"), []
    configs = [("ours, no check", dict(base, LD_PRELOAD=ours)),
               ("ours, HEAPCHECK=normal", dict(base, LD_PRELOAD=ours, HEAPCHECK="normal", PPROF_PATH="")),
               ("ours, HEAPCHECK=normal, symbolized", dict(base, LD_PRELOAD=ours, HEAPCHECK="normal"))]
    if os.path.exists(TCMALLOC):
        peers = [("gperftools, no check", dict(base, LD_PRELOAD=TCMALLOC)),
                 ("gperftools, HEAPCHECK=normal",
                  dict(base, LD_PRELOAD=TCMALLOC, HEAPCHECK="normal", PPROF_PATH="/nonexistent"))]
    else:
        print(f"({TCMALLOC} not found: gperftools skipped; apt-get install libgoogle-perftools4)")
    results = {}
    pads = [0, 8, 16, 24, 40, 100]
    for name, env in configs + peers:
        best, found = None, []
        for rep in range(args.repeat):
            for pad in (pads if "no check" not in name and rep == 0 else [0]):
                elapsed, leaks, r = run(exe, args.live, env, pad)
                if pad == 0:
                    best = elapsed if best is None else min(best, elapsed)
                if "no check" not in name:
                    found.append(leaks)
        results[name] = (best, found)
    print(f"{args.live} reachable objects, 45 leaked (40 x 400 B from a returned frame, 5 x 4096 B); "
          f"wall time best of {args.repeat}")
    print(f"{'configuration':40} {'time':>9} {'vs no check':>12}  leaks found (env sizes {pads})")
    for name, _ in configs + peers:
        best, found = results[name]
        ref = results[name.split(",")[0] + ", no check"][0]
        ratio = f"{best / ref:.2f}x" if "no check" not in name else ""
        print(f"{name:40} {best:8.3f}s {ratio:>12}  {' '.join(map(str, found[:len(pads)]))}")
    if peers:
        o, g = results["ours, HEAPCHECK=normal"][0], results["gperftools, HEAPCHECK=normal"][0]
        print(f"ours / gperftools, HEAPCHECK=normal: {o / g:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
