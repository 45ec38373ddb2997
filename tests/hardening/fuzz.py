#!/usr/bin/env python3
"""A mutation fuzzer for the analyzer: every input family through
the main outputs, each case in its own process with a timeout and an
address-space limit.

    python3 tests/hardening/fuzz.py --seconds 600 --seed 1 [--save DIR]

Input families (seeds are made at start from the committed fixtures, then
mutated): a binary CPU profile, heap and leak profiles, a contention
profile, folded stacks, `pprof --raw` output, profile.proto (gzipped or
not), the memory-map section of a CPU profile (paths replaced by FIFOs,
devices, /proc files, NUL bytes, huge offsets), and the ELF program itself
(header and section-table fields set to damaging values).  Mutations: bit
flips, byte runs, truncation, splicing, number replacement with boundary
values (0, -1, 2^63, 2^64-1, 65-bit, 4,301 digits, nan, inf), duplicated
and deleted lines.

Each case runs `pprof <output flag> [program] <input>` with output one of
--text --dot --flame --list=. --disasm=. --proto --json --raw --collapsed.
The process is forked from this one (pprof_py already imported, so a case
costs milliseconds, not an interpreter start), with RLIMIT_AS, and killed
after --timeout seconds.  Outcomes:

  report        exit 0
  clean error   exit 1/2 and one "pprof: ..." line on stderr
  traceback     "internal error", a Python traceback, or any other exit
  hang          still running at the timeout
  blow-up       MemoryError, or killed by a signal (the address-space limit)

The run is deterministic for a seed and a number of cases (--cases); with
--seconds it stops at the first case past the time budget.  Exit status 1
when any case is a traceback, hang or blow-up.  `--save DIR` keeps each
such case's input and command line for reproduction.
"""
import argparse
import gzip
import json
import os
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

OUTPUTS = ["--text", "--dot", "--flame", "--list=.", "--disasm=.", "--proto", "--json", "--raw",
           "--collapsed"]
FAMILIES = ["cpu", "heap", "contention", "folded", "raw", "proto", "maps", "elf"]
ADDRESS_SPACE = 4 << 30
INTERESTING_NUMBERS = [b"0", b"-1", b"1", b"18446744073709551615", b"18446744073709551616",
                       b"9223372036854775808", b"36893488147419103232", b"nan", b"inf", b"-inf",
                       b"1e400", b"9" * 4301, b"0x" + b"f" * 17, b"0xffffffffffffffff", b"1" * 400]
HOSTILE_PATHS = [b"/proc/self/mem", b"/dev/zero", b"/dev/urandom", b"/proc/self/fd/0",
                 b"/tmp/a\x00b.so", b"/nonexistent/lib.so", b"/", b"/etc/passwd", b"lib.so",
                 b"\xe9\xff.so", b"/proc/self/maps"]


# ---------------------------------------------------------------- seeds

def _localize():
    sys.path.insert(0, os.path.join(ROOT, "fixtures"))
    try:
        import relocate_maps
        relocate_maps.localize(ROOT)
    finally:
        sys.path.pop(0)


class Seeds:
    """The unmutated inputs of each family, made from the fixtures."""

    def __init__(self, work):
        _localize()
        self.work = work
        prof = os.path.join(ROOT, "fixtures", "local", "profiles")
        self.chain = os.path.join(ROOT, "fixtures", "bin", "chain")
        self.alloc = os.path.join(ROOT, "fixtures", "bin", "alloc")
        self.fifo = os.path.join(work, "fifo.so")
        os.mkfifo(self.fifo)
        os.symlink("/dev/zero", os.path.join(work, "zero.so"))
        self.hostile_paths = HOSTILE_PATHS + [self.fifo.encode(), os.path.join(work, "zero.so").encode()]
        self.cpu = _read(os.path.join(prof, "chain.cpu.prof"))
        self.heap = _read(os.path.join(prof, "alloc.heap"))
        self.leak = _read(os.path.join(prof, "alloc.leak.heap"))
        self.elf = _read(self.chain)
        addresses = self._cpu_addresses()
        self.contention = (b"--- contention\ncycles/second = 2000000000\nsampling period = 1\n" +
                           b"".join(b"%d %d @ %s\n" % (1000 * (i + 1), i + 1,
                                                       b" ".join(b"0x%x" % a for a in addresses[i:i + 4]))
                                    for i in range(0, min(len(addresses), 12), 3)) +
                           self.cpu[self.cpu.rfind(b"\n", 0, self.cpu.find(b".so")) + 1:]
                           if b".so" in self.cpu else b"")
        self.folded = b"main;parse;tokenize 120\nmain;render 37\nmain;render;escape_html 5\nidle 1.5\n"
        self.raw = _render_in_child(["--raw", self.chain, os.path.join(prof, "chain.cpu.prof")])
        proto = _render_in_child(["--proto", self.chain, os.path.join(prof, "chain.cpu.prof")])
        self.proto = gzip.decompress(proto) if proto[:2] == b"\x1f\x8b" else proto

    def _cpu_addresses(self):
        words = struct.unpack_from("<%dQ" % (min(len(self.cpu), 4096) // 8), self.cpu)
        return [w for w in words if 0x1000 < w < 1 << 48][:40] or [0x401000]


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _render_in_child(argv):
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    status = run_case(argv, out, err, timeout=120)
    out.seek(0)
    data = out.read()
    if status != ("exit", 0):
        err.seek(0)
        raise SystemExit(f"cannot make a seed with {argv}: {status} {err.read()[:500]!r}")
    return data


# ---------------------------------------------------------------- mutations

def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        if not data:
            data = bytearray(b"\0")
        op = rng.randrange(7)
        i = rng.randrange(len(data))
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[i] = rng.choice([0, 0xff, 0x7f, 0x80, rng.randrange(256)])
        elif op == 2:
            width = rng.choice([4, 8])
            value = rng.choice([0, 0xffffffff, 0x7fffffff, 1 << 31, (1 << 64) - 1, 1 << 40, 1 << 50,
                                rng.randrange(1 << 32)]) & ((1 << (8 * width)) - 1)
            data[i:i + width] = value.to_bytes(width, "little")
        elif op == 3:
            del data[i:i + rng.randrange(1, 64)]
        elif op == 4:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif op == 5:
            j = rng.randrange(len(data))
            data[i:i] = data[j:j + rng.randrange(1, 256)]
        else:
            data = data[:i]
    return bytes(data)


def mutate_text(rng, data, hostile_paths):
    lines = data.split(b"\n")
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        if not lines:
            lines = [b""]
        op = rng.randrange(8)
        k = rng.randrange(len(lines))
        words = lines[k].split(b" ")
        if op <= 2 and words:
            w = rng.randrange(len(words))
            words[w] = rng.choice(INTERESTING_NUMBERS)
            lines[k] = b" ".join(words)
        elif op == 3:
            lines.insert(k, lines[rng.randrange(len(lines))])
        elif op == 4:
            del lines[k]
        elif op == 5 and words:
            words[-1] = rng.choice(hostile_paths)
            lines[k] = b" ".join(words)
        elif op == 6:
            lines[k] = rng.choice([b"x" * 70000, b"\xe9\xe8 1", b"a;b\xe9 99999999999999999999",
                                   b"--- profile", b"%warn \x1b[2J", b"heap profile: 1: 1 [ 1: 1] @",
                                   b"@ 0x0", b"0: 0 [0: 0] @ 0x1 0x0", lines[k] * 2])
        else:
            lines[k] = mutate_bytes(rng, lines[k])
    return b"\n".join(lines)


def mutate_maps(rng, data, hostile_paths):
    """Replace paths (and sometimes offsets) in the memory-map lines."""
    lines = data.split(b"\n")
    idx = [i for i, line in enumerate(lines) if b"/" in line and b"-" in line[:40]]
    for _ in range(rng.choice([1, 2, 5])):
        if not idx:
            break
        k = rng.choice(idx)
        parts = lines[k].split()
        if len(parts) >= 6 and rng.random() < 0.8:
            parts[-1] = rng.choice(hostile_paths)
        elif len(parts) >= 3:
            parts[rng.randrange(min(3, len(parts)))] = rng.choice(
                [b"ffffffffffffffff-0", b"0-ffffffffffffffffffff", b"0" * 40, b"zz-yy"])
        lines[k] = b" ".join(parts)
    return b"\n".join(lines)


def mutate_elf(rng, data):
    """Damage ELF header and section-table fields with sizes and offsets
    far beyond the file, plus random byte mutations."""
    data = bytearray(data)
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return mutate_bytes(rng, bytes(data))
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    for _ in range(rng.choice([1, 1, 2, 3])):
        op = rng.randrange(6)
        if op == 0 and shnum and shoff + shnum * 64 <= len(data):
            s = rng.randrange(shnum)
            base = shoff + s * 64
            field = rng.choice([0x18, 0x20, 0x30, 0x38])      # offset, size, align, entsize
            struct.pack_into("<Q", data, base + field, rng.choice(
                [1 << 40, 1 << 50, (1 << 64) - 1, 0, len(data) - 1, len(data) + 8, 1 << 31]))
        elif op == 1:
            struct.pack_into("<H", data, 0x3c, rng.choice([0, 0xffff, shnum + 1, 1]))    # e_shnum
        elif op == 2:
            struct.pack_into("<H", data, 0x3e, rng.choice([0, 0xffff, shnum, shnum + 5]))  # e_shstrndx
        elif op == 3:
            struct.pack_into("<Q", data, 0x28, rng.choice([1 << 50, len(data) - 10, 0]))  # e_shoff
        elif op == 4 and shnum and shoff + shnum * 64 <= len(data):
            # Zero a whole section (e.g. .debug_line).
            s = rng.randrange(shnum)
            off, size = struct.unpack_from("<QQ", data, shoff + s * 64 + 0x18)
            if off + size <= len(data):
                data[off:off + size] = bytes(size)
        else:
            data = bytearray(mutate_bytes(rng, bytes(data)))
    return bytes(data)


def make_case(rng, seeds, work, n):
    """(family, argv, input path) for case n."""
    family = FAMILIES[n % len(FAMILIES)]          # every family in every run
    output = rng.choice(OUTPUTS)
    program = [seeds.chain]
    if family == "cpu":
        data = mutate_bytes(rng, seeds.cpu)
    elif family == "heap":
        data = mutate_text(rng, rng.choice([seeds.heap, seeds.leak]), seeds.hostile_paths)
        program = [seeds.alloc]
    elif family == "contention":
        data = mutate_text(rng, seeds.contention, seeds.hostile_paths)
    elif family == "folded":
        data = mutate_text(rng, seeds.folded, seeds.hostile_paths)
        program = []
    elif family == "raw":
        data = mutate_text(rng, seeds.raw, seeds.hostile_paths)
        program = []
    elif family == "proto":
        data = mutate_bytes(rng, seeds.proto)
        if rng.random() < 0.5:
            data = gzip.compress(data, mtime=0)
        program = []
    elif family == "maps":
        data = mutate_maps(rng, seeds.cpu, seeds.hostile_paths)
    else:
        elf = os.path.join(work, "prog%d" % n)
        with open(elf, "wb") as f:
            f.write(mutate_elf(rng, seeds.elf))
        os.chmod(elf, 0o755)
        program = [elf]
        data = seeds.cpu
    path = os.path.join(work, "input%d" % n)
    with open(path, "wb") as f:
        f.write(data)
    extra = ["--no-cache"] if rng.random() < 0.5 else []
    return family, [output] + extra + program + [path], path


# ---------------------------------------------------------------- running

def preload():
    """Import what every case needs once, before forking, so that a case
    costs a fork rather than an interpreter start and imports."""
    import pprof_py.cli                       # noqa: F401
    import pprof_py.symbolize.objtool         # noqa: F401  capstone, --list/--disasm
    import pprof_py.formats.proto             # noqa: F401
    import pprof_py.symbolize.dwarf           # noqa: F401


def run_case(argv, out, err, timeout):
    """Run pprof's main(argv) in a forked child; ("exit", code),
    ("signal", n) or ("hang", None)."""
    pid = os.fork()
    if pid == 0:                                    # the child
        try:
            os.setpgid(0, 0)
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.chdir(ROOT)
            # The error handlers Python gives the real streams.
            sys.stdout = os.fdopen(1, "w", closefd=False)
            sys.stderr = os.fdopen(2, "w", closefd=False, errors="backslashreplace")
            sys.stdin = os.fdopen(0, "r", closefd=False)
            from pprof_py.cli import main
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except MemoryError:
            code = 99
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 98
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return ("hang", None)
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return ("signal", os.WTERMSIG(status))
    return ("exit", os.WEXITSTATUS(status))


def classify(status, stderr):
    kind, code = status
    if kind == "hang":
        return "hang"
    if kind == "signal" or code == 99 or b"MemoryError" in stderr or b"pprof: out of memory" in stderr:
        return "blow-up"
    if b"internal error" in stderr or b"Traceback" in stderr:
        return "traceback"
    if code == 0:
        return "report"
    lines = [line for line in stderr.splitlines() if line.startswith(b"pprof: ")]
    if code in (1, 2) and len(lines) == 1:
        return "clean error"
    return "traceback"


def fuzz(seed, seconds=None, cases=None, timeout=20, save=None, log=print):
    rng = random.Random(seed)
    counts = {k: 0 for k in ("cases", "report", "clean error", "traceback", "hang", "blow-up")}
    per_family = {f: 0 for f in FAMILIES}
    failures = []
    work = tempfile.mkdtemp(prefix="pprof-fuzz.")
    cache = tempfile.mkdtemp(prefix="pprof-fuzz-cache.")
    old_cache = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = cache
    os.environ.pop("PPROF_PY_DEBUG", None)
    start = time.monotonic()
    preload()
    try:
        seeds = Seeds(work)
        n = 0
        while True:
            if cases is not None and n >= cases:
                break
            if seconds is not None and time.monotonic() - start > seconds:
                break
            family, argv, path = make_case(rng, seeds, work, n)
            out = tempfile.TemporaryFile(dir=work)
            err = tempfile.TemporaryFile(dir=work)
            status = run_case(argv, out, err, timeout)
            if status[0] == "hang":
                # A busy machine can make a slow case look hung: once more,
                # with twice the time, before calling it a hang.
                out.seek(0), out.truncate(), err.seek(0), err.truncate()
                status = run_case(argv, out, err, 2 * timeout)
            err.seek(0)
            stderr = err.read()
            out.close()
            err.close()
            outcome = classify(status, stderr)
            counts["cases"] += 1
            counts[outcome] += 1
            per_family[family] += 1
            if outcome in ("traceback", "hang", "blow-up"):
                tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                failures.append((n, family, outcome, argv, tail[0][:300]))
                log(f"case {n} [{family}] {outcome}: {' '.join(argv)}\n    {tail[0][:300]}")
                if save:
                    _save(save, n, family, outcome, argv, stderr)
            for name in (path, argv[-2] if len(argv) > 1 else None):
                if name and os.path.basename(name).startswith(("input", "prog")):
                    try:
                        os.unlink(name)
                    except OSError:
                        pass
            n += 1
    finally:
        if old_cache is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old_cache
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    counts["per family"] = per_family
    return counts, failures


def _save(directory, n, family, outcome, argv, stderr):
    os.makedirs(directory, exist_ok=True)
    case = os.path.join(directory, "case%06d" % n)
    os.makedirs(case, exist_ok=True)
    args = []
    for a in argv:
        if os.path.isfile(a) and os.path.basename(a).startswith(("input", "prog")):
            shutil.copy(a, os.path.join(case, os.path.basename(a)))
            a = os.path.join(case, os.path.basename(a))
        args.append(a)
    with open(os.path.join(case, "case.json"), "w") as f:
        json.dump({"family": family, "outcome": outcome, "argv": args,
                   "stderr": stderr.decode("utf-8", "replace")[-4000:]}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description="fuzz pprof's inputs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--cases", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--save", metavar="DIR")
    args = ap.parse_args()
    if args.seconds is None and args.cases is None:
        args.seconds = 60
    counts, failures = fuzz(args.seed, args.seconds, args.cases, args.timeout, args.save)
    print("  ".join(f"{k}: {v}" for k, v in counts.items()))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
