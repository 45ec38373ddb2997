#!/usr/bin/env python3
"""Benchmark the web UI (`pprof --http`) against Go pprof's (`-http`) on the
same profile, in the same run.

For each tool: the seconds from starting the server to its first answer
(reading and symbolizing the profile), then for each view the first
request (the report is computed; for /ui/top that happened while waiting
for the first answer) and the median of --repeat more (served from the
cache, ours; Go pprof recomputes every time).  Both servers listen
on 127.0.0.1 on a free port and are stopped at the end.  Go pprof comes
from bench/out/go-pprof (bench_text.py builds it from Debian's
golang-github-google-pprof-dev) or the go toolchain.

    python3 bench/bench_web.py [--binary B --profile P] [--repeat N]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_text import go_pprof  # noqa: E402  (its builder, shared)

VIEWS = ["/ui/top", "/ui/", "/ui/flamegraph", "/ui/peek?f=sort", "/ui/source?f=sort_rounds",
         "/ui/disasm?f=sort_rounds"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, timeout=120):
    """(HTTP status, seconds); an error status is reported, not raised."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    return status, time.perf_counter() - start


def wait_ready(proc, base, limit=120.0):
    """Seconds until the server answers /ui/top (polls 10 times a second)."""
    start = time.perf_counter()
    for _ in range(int(limit * 10)):
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            if fetch(base + "/ui/top", timeout=limit)[0] == 200:
                return time.perf_counter() - start
            time.sleep(0.1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server not ready after %.0f s" % limit)


def run(name, cmd, base, repeat):
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, DISPLAY="", BROWSER="true"))
    try:
        row = {"start": wait_ready(proc, base)}
        for view in VIEWS:
            status, first = fetch(base + view)
            times = [fetch(base + view)[1] for _ in range(repeat)]
            row[view] = (first, statistics.median(times), status)
        return row
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="fixtures/bin/cxx")
    ap.add_argument("--profile", default="fixtures/local/profiles/cxx.cpu.prof")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "fixtures"))
    import relocate_maps
    relocate_maps.localize(ROOT)

    port = free_port()
    ours = run("ours", [sys.executable, "-m", "pprof_py", "--http=127.0.0.1:%d" % port, "--no_browser",
                        args.binary, args.profile], "http://127.0.0.1:%d" % port, args.repeat)
    go, why = go_pprof(600)
    theirs = None
    if go:
        port = free_port()
        theirs = run("go", [go, "-http=127.0.0.1:%d" % port, "-no_browser", args.binary, args.profile],
                     "http://127.0.0.1:%d" % port, args.repeat)
    print("pprof --http vs Go pprof -http on %s (seconds; first request / median of %d more)"
          % (args.profile, args.repeat))
    print("%-28s %17s %17s %9s" % ("", "ours", "go pprof", "ours/go"))
    print("%-28s %17.3f %17s %9s" % ("start to first answer", ours["start"],
                                     "%.3f" % theirs["start"] if theirs else why,
                                     "%.2fx" % (ours["start"] / theirs["start"]) if theirs else ""))
    for view in VIEWS:
        f, m, s = ours[view]
        note = "" if s == 200 else " (ours: HTTP %d)" % s
        if theirs:
            gf, gm, gs = theirs[view]
            note += "" if gs == 200 else " (go: HTTP %d)" % gs
            print("%-28s %8.3f / %6.3f %8.3f / %6.3f %4.2fx/%4.2fx%s" % (
                view, f, m, gf, gm, f / gf, m / gm, note))
        else:
            print("%-28s %8.3f / %6.3f%s" % (view, f, m, note))


if __name__ == "__main__":
    main()
