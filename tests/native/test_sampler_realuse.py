"""The CPU sampler under real use: complete stacks in epilogues, and a
profiled program that behaves exactly as without the sampler (its file
descriptors, its own signal handlers and timers, exec, many threads,
SIGINT/SIGTERM, static binaries, its environment).

Every program runs in a subprocess with a timeout.  Helpers (compiling,
running with the library preloaded, reading profiles) come from
test_sampler.py next to this file.
"""
import os
import signal
import subprocess
import sys

import pytest

from test_sampler import (LIBPROFILER, PROGRAMS, TIMEOUT, _clean_env, pprof_text, read_profile,
                          run_profiled, total_samples)

from pprof_py.native import libpath


def _build(tmp_path_factory, name, flags=("-O1", "-g"), extra=()):
    out = str(tmp_path_factory.mktemp("realuse_bins") / name)
    subprocess.run(["gcc", *flags, os.path.join(PROGRAMS, name + ".c"), "-o", out, "-pthread", *extra],
                   check=True, timeout=TIMEOUT)
    return out


# ------------------------------------------------------ stacks in epilogues

@pytest.fixture(scope="module")
def fib_nofp(tmp_path_factory):
    # gcc -O2 omits frame pointers: only the DWARF unwinder can walk these
    return _build(tmp_path_factory, "sampler_fib", flags=("-O2", "-g"))


def test_recursive_stacks_reach_main_like_libprofiler(fib_nofp, tmp_path):
    """Samples in push/pop/ret (where the CFA rule changes, and where a
    popped register's save slot lies below the stack pointer) must still
    unwind to main: at least 99.5% of them, as with libprofiler+libunwind
    on the same binary."""
    if not os.path.exists(LIBPROFILER):
        pytest.fail(f"{LIBPROFILER} is required (apt-get install libgoogle-perftools4)")
    ours, theirs = tmp_path / "ours.prof", tmp_path / "libprofiler.prof"
    proc = run_profiled([fib_nofp, "1.0"], ours, frequency=1000)
    assert proc.returncode == 0, proc.stderr
    env = _clean_env()
    env.update(CPUPROFILE=str(theirs), CPUPROFILE_FREQUENCY="1000", LD_PRELOAD=LIBPROFILER)
    proc = subprocess.run([fib_nofp, "1.0"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    total_a, rows_a = pprof_text(fib_nofp, ours)
    total_b, rows_b = pprof_text(fib_nofp, theirs)
    assert total_a >= 400 and total_b >= 100, (total_a, total_b)
    share_a = rows_a["main"][1] / total_a
    share_b = rows_b["main"][1] / total_b
    assert share_b >= 0.99, ("libprofiler itself", share_b)
    assert share_a >= 0.995, (share_a, total_a, rows_a)
    # the recursion itself is attributed alike
    for name in ("fib", "walk"):
        a, b = rows_a[name][1] / total_a, rows_b[name][1] / total_b
        assert abs(a - b) <= 0.12, (name, a, b)
