#!/usr/bin/env python3
"""Benchmark `pprof --text` (ours) against google-pprof and Go pprof.

Profiles (written to bench/out/, git-ignored, reused between runs):

  synthetic  a binary CPU profile with --stacks distinct stacks (default
             200,000) of random addresses inside the functions of a large,
             symbol-rich shared library (pyenv's libpython3.11.so, which has
             .symtab and DWARF), with a /proc/self/maps text that maps it
             into a python3 process.  Deterministic for a given --seed.
  real       a real profile: python3 running a CPU-heavy workload under
             gperftools' libprofiler at 1000 Hz (skipped with --no-real or
             when libprofiler is missing).
  cc1        gcc's cc1 (a stripped distribution binary, C++ inside, no
             frame pointers) compiling a generated C file at -O2 under
             libprofiler at 1000 Hz (skipped with --no-real, or without
             gcc).
  xz         xz (a stripped distribution PIE that copy-relocates stdout)
             compressing generated text under libprofiler at 1000 Hz
             (skipped with --no-real, or without xz).

For each profile the tools run in the same session:

  ours cold   python -m pprof_py --text BIN PROF, with XDG_CACHE_HOME set to
              a fresh empty directory
  ours warm   the same command again with the same (now filled) cache
  google-pprof --text BIN PROF
  go pprof    -top BIN PROF (bench/out/go-pprof, built from Debian's
              golang-github-google-pprof-dev if missing)
  before      with --before CHECKOUT: ours cold and warm again, run from
              another checkout (git worktree add /tmp/old <commit>), so a
              change is compared with the code before it in the same run

Before timing, the package's modules are byte-compiled (compileall), as
`pip install` does: without it, a run under PYTHONDONTWRITEBYTECODE=1
compiles every module it imports (30 ms), which no installed pprof does.

The table shows wall seconds, peak RSS of the process tree's largest
process (ru_maxrss of the children of a measuring helper), and ratios of
ours to each peer.  A tool that exits non-zero shows "failed"; one that
runs past --timeout is killed and shows "timeout".  Nothing here asserts
equality of outputs (the differential tests do that).
"""

import argparse
import bisect
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
PROFILER = "/usr/lib/x86_64-linux-gnu/libprofiler.so.0"
GO_PKG = "github.com/google/pprof"
GO_PATH = "/usr/share/gocode"
PAGE = 0x1000


# ---------------------------------------------------------------- measuring

def measure_child(argv):
    """Helper mode: run one command, print {rc, seconds, maxrss_kb}.

    argv: [timeout, cwd, env-json, cmd...].  Runs cmd in its own process
    group so that a timeout kills grandchildren (nm, addr2line, ...) too.
    """
    timeout, cwd, env_json = float(argv[0]), argv[1], argv[2]
    cmd = argv[3:]
    env = dict(os.environ)
    env.update(json.loads(env_json))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    status = "ok"
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        status = "timeout"
    seconds = time.monotonic() - start
    if status == "ok" and proc.returncode != 0:
        status = "failed"
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"status": status, "rc": proc.returncode,
                      "seconds": seconds, "maxrss_kb": usage.ru_maxrss,
                      "stderr_tail": err.decode(errors="replace")[-600:]}))
    return 0


def measure(cmd, timeout, cwd=ROOT, env=None):
    """Run cmd through a fresh helper process so ru_maxrss is its own."""
    helper = [sys.executable, os.path.abspath(__file__), "--measure-child",
              str(timeout), cwd, json.dumps(env or {})] + cmd
    try:
        out = subprocess.run(helper, stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=timeout + 60,
                             check=False).stdout
        return json.loads(out.decode().strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return {"status": "failed", "rc": None, "seconds": None,
                "maxrss_kb": None, "stderr_tail": "helper error: %s" % e}


# ------------------------------------------------------------ ELF utilities

def load_segments(path):
    """LOAD segments of an ELF file: [(offset, vaddr, memsz, flags)]."""
    out = subprocess.run(["readelf", "-lW", path], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            # LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align
            flags = "".join(x for x in f[6:-1])
            segs.append((int(f[1], 16), int(f[2], 16), int(f[5], 16), flags))
    return segs


def map_lines(path, base, inode):
    """/proc/self/maps lines for path loaded at base."""
    lines = []
    for offset, vaddr, memsz, flags in load_segments(path):
        start = base + (vaddr & ~(PAGE - 1))
        end = base + ((vaddr + memsz + PAGE - 1) & ~(PAGE - 1))
        perms = ("r" if "R" in flags else "-") + ("w" if "W" in flags else "-") + \
                ("x" if "E" in flags else "-") + "p"
        lines.append("%012x-%012x %s %08x 00:00 %-11d %s"
                     % (start, end, perms, offset & ~(PAGE - 1), inode, path))
    return lines


def text_functions(path):
    """(addr, size) of the defined functions with a size in path."""
    out = subprocess.run(["nm", "--defined-only", "-S", path],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    funcs = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in ("t", "T", "W", "w"):
            size = int(f[1], 16)
            if size >= 8:
                funcs.append((int(f[0], 16), size))
    funcs.sort()
    return funcs


# ---------------------------------------------------------------- profiles

def python_binaries():
    """(main executable, libpython) of the running interpreter if shared."""
    exe = os.path.realpath(sys.executable)
    libs = subprocess.run(["ldd", exe], stdout=subprocess.PIPE,
                          check=False).stdout.decode()
    m = re.search(r"libpython\S*\s+=>\s+(\S+)", libs)
    if not m:
        return exe, None
    return exe, os.path.realpath(m.group(1))


def synthesize(path, nstacks, seed):
    exe, lib = python_binaries()
    target = lib or exe
    funcs = text_functions(target)
    if len(funcs) < 100:
        raise SystemExit("%s has too few function symbols (%d) for the "
                         "synthetic profile" % (target, len(funcs)))
    rng = random.Random(seed)
    exe_base = 0x55d4c0000000
    lib_base = 0x7f3a10000000 if lib else exe_base
    maps = map_lines(exe, exe_base, 1001)
    if lib:
        maps += map_lines(lib, lib_base, 1002)
    maps.append("7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0           [stack]")
    # Zipf-like popularity so that some functions are hot.
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(funcs))]
    rng.shuffle(weights)
    cum = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)

    def pick():
        addr, size = funcs[bisect.bisect_left(cum, rng.random() * total)]
        return lib_base + addr + rng.randrange(1, size)

    roots = [pick() for _ in range(12)]
    seen = set()
    chunks = [struct.pack("<5Q", 0, 3, 0, 1000, 0)]
    while len(seen) < nstacks:
        depth = rng.randint(4, 28)
        stack = tuple([pick() for _ in range(depth)] + roots[:rng.randint(2, 6)])
        if stack in seen:
            continue
        seen.add(stack)
        count = 1 + int(rng.expovariate(0.5))
        chunks.append(struct.pack("<%dQ" % (2 + len(stack)), count, len(stack), *stack))
    chunks.append(struct.pack("<3Q", 0, 1, 0))
    chunks.append(("\n".join(maps) + "\n").encode())
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"".join(chunks))
    os.replace(tmp, path)
    return exe


WORKLOAD = r"""
import json, re, zlib, hashlib, random
r = random.Random(1)
data = [{"k%d" % i: [r.random() for _ in range(20)]} for i in range(3000)]
for _ in range(6):
    s = json.dumps(data)
    json.loads(s)
    zlib.compress(s.encode(), 6)
    hashlib.sha256(s.encode()).hexdigest()
    re.findall(r"k(\d+)", s)
    sorted(s.split(","))
"""


def record_real(path, timeout):
    exe = os.path.realpath(sys.executable)
    env = dict(os.environ, LD_PRELOAD=PROFILER, CPUPROFILE=path,
               CPUPROFILE_FREQUENCY="1000")
    subprocess.run([exe, "-c", WORKLOAD], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout, check=True)
    return exe


def _generated_c(path):
    """A C file that keeps cc1's optimizers busy for a few seconds."""
    with open(path, "w") as f:
        for i in range(400):
            f.write("static int t%d[64];\n"
                    "int f%d(int n, int *p) {\n"
                    "  int s = 0;\n"
                    "  for (int i = 0; i < n; i++) {\n"
                    "    s += p[i %% 64] * %d + t%d[(i * 7) %% 64];\n"
                    "    if (s > %d) s ^= i << 3; else s -= p[(i + %d) %% 64];\n"
                    "    t%d[i %% 64] = s;\n"
                    "  }\n"
                    "  return s;\n"
                    "}\n" % (i, i, i + 3, i, 1000 + i, i % 5, i))


def record_cc1(path, timeout):
    """cc1 itself, not the gcc driver: under LD_PRELOAD every process the
    driver starts would write the same CPUPROFILE file."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise OSError("gcc not installed")
    cc1 = subprocess.run([gcc, "-print-prog-name=cc1"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout.strip()
    source = os.path.join(OUT, "cc1_input.c")
    _generated_c(source)
    env = dict(os.environ, LD_PRELOAD=PROFILER, CPUPROFILE=path, CPUPROFILE_FREQUENCY="1000")
    subprocess.run([cc1, "-quiet", "-O2", source, "-o", os.devnull], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout,
                   check=True)
    return os.path.realpath(cc1)


def record_xz(path, timeout):
    xz = shutil.which("xz")
    if xz is None:
        raise OSError("xz not installed")
    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9)))
             for _ in range(5000)]
    data = " ".join(rng.choice(words) for _ in range(400000)).encode()
    env = dict(os.environ, LD_PRELOAD=PROFILER, CPUPROFILE=path, CPUPROFILE_FREQUENCY="1000")
    subprocess.run([xz, "-6", "-T1", "-c"], input=data, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout, check=True)
    return os.path.realpath(xz)


# ------------------------------------------------------------------- tools

def go_pprof(timeout):
    """Path of a Go pprof binary, or (None, reason)."""
    for cand in (os.path.join(OUT, "go-pprof"), shutil.which("go-pprof")):
        if cand and os.access(cand, os.X_OK):
            return cand, None
    go = shutil.which("go")
    if go is None:
        return None, "go toolchain not installed"
    dest = os.path.join(OUT, "go-pprof")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GO_PATH)
    env.setdefault("GOCACHE", os.path.join(OUT, "gocache"))
    try:
        proc = subprocess.run([go, "build", "-o", dest, GO_PKG], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "go build timed out"
    if proc.returncode != 0:
        return None, "go build failed: " + proc.stdout.decode(errors="replace")[-300:]
    return dest, None


def fmt_secs(r):
    if r is None:
        return "n/a"
    if r["status"] != "ok":
        return r["status"]
    return "%.2f" % r["seconds"]


def fmt_rss(r):
    if r is None or r["status"] != "ok" or r["maxrss_kb"] is None:
        return "-"
    return "%.0f" % (r["maxrss_kb"] / 1024.0)


def ratio(a, b, key):
    if not a or not b or a["status"] != "ok" or b["status"] != "ok":
        return "-"
    x, y = a[key], b[key]
    if not y:
        return "-"
    return "%.2fx" % (x / y)


def bench_profile(label, binary, prof, tools, timeout, before=None):
    results = {}
    ours = [sys.executable, "-m", "pprof_py", "--text", binary, prof]
    checkouts = [("ours", ROOT)] + ([("before", before)] if before else [])
    for name, root in checkouts:
        # python -m runs the pprof_py of the current directory, so cwd picks
        # the checkout; each gets its own empty cache for the cold run.
        with tempfile.TemporaryDirectory(prefix="pprof-bench-cache-") as cache:
            env = {"XDG_CACHE_HOME": cache}
            results[name + " cold"] = measure(ours, timeout, cwd=root, env=env)
            results[name + " warm"] = measure(ours, timeout, cwd=root, env=env)
    if tools.get("google-pprof"):
        results["google-pprof"] = measure(
            [tools["google-pprof"], "--text", binary, prof], timeout)
    else:
        results["google-pprof"] = None
    if tools.get("go pprof"):
        results["go pprof"] = measure(
            [tools["go pprof"], "-top", binary, prof], timeout,
            env={"PPROF_TMPDIR": os.path.join(OUT, "go-pprof-tmp")})
    else:
        results["go pprof"] = None

    size = os.path.getsize(prof)
    print("\n%s profile: %s (%.1f MB), binary %s" % (label, os.path.relpath(prof, ROOT),
                                                    size / 1e6, binary))
    print("%-14s %10s %12s" % ("tool", "seconds", "peak RSS MB"))
    names = ["ours cold", "ours warm"] + (["before cold", "before warm"] if before else [])
    for name in names + ["google-pprof", "go pprof"]:
        print("%-14s %10s %12s" % (name, fmt_secs(results[name]), fmt_rss(results[name])))
    print("%-24s %10s %10s" % ("ratio", "time", "RSS"))
    if before:
        for mine in ("cold", "warm"):
            a, b = results["ours " + mine], results["before " + mine]
            print("%-24s %10s %10s" % ("ours / before (%s)" % mine, ratio(a, b, "seconds"),
                                       ratio(a, b, "maxrss_kb")))
    for mine in ("ours cold", "ours warm"):
        for peer in ("google-pprof", "go pprof"):
            print("%-24s %10s %10s" % ("%s / %s" % (mine, peer),
                                       ratio(results[mine], results[peer], "seconds"),
                                       ratio(results[mine], results[peer], "maxrss_kb")))
    for name, r in results.items():
        if r and r["status"] != "ok" and r.get("stderr_tail"):
            tail = r["stderr_tail"].strip().splitlines()[-3:]
            print("  %s %s: %s" % (name, r["status"], " | ".join(tail)))
    return results


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--measure-child":
        return measure_child(sys.argv[2:])
    ap = argparse.ArgumentParser(description="time pprof --text against peers")
    ap.add_argument("--stacks", type=int, default=200000,
                    help="distinct stacks in the synthetic profile")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds before a tool run is killed")
    ap.add_argument("--no-real", action="store_true",
                    help="skip the recorded profiles (python3, cc1, xz)")
    ap.add_argument("--regen", action="store_true",
                    help="rebuild the profiles even if present")
    ap.add_argument("--json", metavar="FILE", help="also write results as JSON")
    ap.add_argument("--before", metavar="CHECKOUT",
                    help="also time the pprof_py of another checkout (for example a git "
                         "worktree of an older commit) in the same run, as 'before'")
    opts = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    for root in [ROOT] + ([opts.before] if opts.before else []):
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(root, "pprof_py")],
                       stdout=subprocess.DEVNULL, check=False)
    tools = {"google-pprof": shutil.which("google-pprof")}
    go, why = go_pprof(opts.timeout)
    tools["go pprof"] = go
    print("google-pprof: %s" % (tools["google-pprof"] or "unavailable (not installed)"))
    print("go pprof:     %s" % (go or "unavailable (%s)" % why))

    profiles = []
    synth = os.path.join(OUT, "synthetic_%d_%d.cpu.prof" % (opts.stacks, opts.seed))
    exe, _ = python_binaries()
    if opts.regen or not os.path.exists(synth):
        t0 = time.monotonic()
        synthesize(synth, opts.stacks, opts.seed)
        print("wrote %s in %.1fs" % (os.path.relpath(synth, ROOT), time.monotonic() - t0))
    profiles.append(("synthetic", exe, synth))

    if not opts.no_real:
        real = os.path.join(OUT, "python_workload.cpu.prof")
        if not os.path.exists(PROFILER):
            print("real profile skipped: %s missing" % PROFILER)
        else:
            try:
                if opts.regen or not os.path.exists(real):
                    record_real(real, opts.timeout)
                profiles.append(("real", os.path.realpath(sys.executable), real))
            except (subprocess.SubprocessError, OSError) as e:
                print("real profile skipped: %s" % e)
            for label, record in (("cc1", record_cc1), ("xz", record_xz)):
                prof = os.path.join(OUT, "%s.cpu.prof" % label)
                try:
                    binary = record(prof + ".new", opts.timeout) \
                        if opts.regen or not os.path.exists(prof) else None
                    if binary is not None:
                        os.replace(prof + ".new", prof)
                        with open(prof + ".binary", "w") as f:
                            f.write(binary)
                    with open(prof + ".binary") as f:
                        profiles.append((label, f.read().strip(), prof))
                except (subprocess.SubprocessError, OSError) as e:
                    print("%s profile skipped: %s" % (label, e))

    all_results = {}
    for label, binary, prof in profiles:
        all_results[label] = bench_profile(label, binary, prof, tools, opts.timeout,
                                           before=opts.before and os.path.abspath(opts.before))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(all_results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
