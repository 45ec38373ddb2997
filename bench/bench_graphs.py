#!/usr/bin/env python3
"""Benchmark our `--svg` and `--flame` against google-pprof `--svg` and Go
pprof `-svg`.

Profiles (bench/out/, git-ignored, reused between runs; made by the helpers
of bench/bench_text.py):

  real       python3 running a CPU-heavy workload under gperftools'
             libprofiler at 1000 Hz (needs libprofiler; --no-real skips it)
  synthetic  a binary CPU profile with --stacks distinct random stacks
             (default 20,000) in libpython's functions

Each tool runs as its own process (wall seconds, peak RSS); ours runs once
with an empty symbol cache (cold) and once more with it filled (warm).
Go pprof is bench/out/go-pprof, built from Debian's
golang-github-google-pprof-dev when missing.  Output goes to /dev/null;
the differential tests, not this script, check what the tools print.

    python3 bench/bench_graphs.py [--stacks N] [--no-real] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_text as bt  # noqa: E402  (shared measuring and profile helpers)


def bench(label, binary, prof, tools, timeout):
    results = {}
    with tempfile.TemporaryDirectory(prefix="pprof-bench-cache-") as cache:
        env = {"XDG_CACHE_HOME": cache}
        ours = [sys.executable, "-m", "pprof_py"]
        results["ours --svg cold"] = bt.measure(ours + ["--svg", binary, prof], timeout, env=env)
        results["ours --svg warm"] = bt.measure(ours + ["--svg", binary, prof], timeout, env=env)
        results["ours --flame warm"] = bt.measure(ours + ["--flame", binary, prof], timeout, env=env)
    results["google-pprof --svg"] = (bt.measure([tools["google-pprof"], "--svg", binary, prof], timeout)
                                     if tools.get("google-pprof") else None)
    results["go pprof -svg"] = (bt.measure([tools["go pprof"], "-svg", binary, prof], timeout,
                                           env={"PPROF_TMPDIR": os.path.join(bt.OUT, "go-pprof-tmp")})
                                if tools.get("go pprof") else None)
    print("\n%s profile: %s (%.1f MB), binary %s" % (
        label, os.path.relpath(prof, bt.ROOT), os.path.getsize(prof) / 1e6, binary))
    print("%-20s %10s %12s" % ("tool", "seconds", "peak RSS MB"))
    for name, r in results.items():
        print("%-20s %10s %12s" % (name, bt.fmt_secs(r), bt.fmt_rss(r)))
    print("%-42s %8s %8s" % ("ratio (ours / peer)", "time", "RSS"))
    for mine in ("ours --svg cold", "ours --svg warm", "ours --flame warm"):
        for peer in ("google-pprof --svg", "go pprof -svg"):
            print("%-42s %8s %8s" % ("%s / %s" % (mine, peer),
                                     bt.ratio(results[mine], results[peer], "seconds"),
                                     bt.ratio(results[mine], results[peer], "maxrss_kb")))
    for name, r in results.items():
        if r and r["status"] != "ok" and r.get("stderr_tail"):
            print("  %s %s: %s" % (name, r["status"],
                                   " | ".join(r["stderr_tail"].strip().splitlines()[-3:])))
    return results


def main():
    ap = argparse.ArgumentParser(description="time pprof --svg/--flame against peers")
    ap.add_argument("--stacks", type=int, default=20000, help="distinct stacks in the synthetic profile")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600, help="seconds before a run is killed")
    ap.add_argument("--no-real", action="store_true", help="skip the recorded python3 profile")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic profile")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    opts = ap.parse_args()
    os.makedirs(bt.OUT, exist_ok=True)
    if shutil.which("dot") is None:
        print("graphviz's dot is missing (apt-get install graphviz)")
        return 1
    tools = {"google-pprof": shutil.which("google-pprof")}
    tools["go pprof"], why = bt.go_pprof(opts.timeout)
    print("google-pprof: %s" % (tools["google-pprof"] or "unavailable (not installed)"))
    print("go pprof:     %s" % (tools["go pprof"] or "unavailable (%s)" % why))

    profiles = []
    if not opts.no_real:
        real = os.path.join(bt.OUT, "python_workload.cpu.prof")
        if not os.path.exists(bt.PROFILER):
            print("real profile skipped: %s missing" % bt.PROFILER)
        else:
            if not os.path.exists(real):
                bt.record_real(real, opts.timeout)
            profiles.append(("real", os.path.realpath(sys.executable), real))
    if not opts.no_synthetic:
        synth = os.path.join(bt.OUT, "synthetic_%d_%d.cpu.prof" % (opts.stacks, opts.seed))
        if not os.path.exists(synth):
            t0 = time.monotonic()
            bt.synthesize(synth, opts.stacks, opts.seed)
            print("wrote %s in %.1fs" % (os.path.relpath(synth, bt.ROOT), time.monotonic() - t0))
        profiles.append(("synthetic", bt.python_binaries()[0], synth))

    results = {label: bench(label, binary, prof, tools, opts.timeout)
               for label, binary, prof in profiles}
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
