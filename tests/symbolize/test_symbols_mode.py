"""`pprof --symbols <program>` against google-pprof: addresses (and a
memory map) on stdin, one name per address on stdout.

The inputs are the addresses every fixture profile sampled (return
addresses and leaves, in the program and in shared libraries, inlined C++
among them) plus addresses no object holds, with the profile's own memory
map; both tools must print the same lines.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "fixtures"))
import relocate_maps  # noqa: E402

from pprof_py.formats import read_profile  # noqa: E402

GOOGLE_PPROF = shutil.which("google-pprof")
CASES = [("chain", "chain.cpu.prof"), ("cxx", "cxx.cpu.prof"), ("shared_main", "shared.cpu.prof"),
         ("alloc", "alloc.heap")]


@pytest.fixture(scope="module")
def local_profiles():
    relocate_maps.localize(ROOT)
    return os.path.join(ROOT, "fixtures", "local", "profiles")


def _stdin_for(profile_path):
    profile = read_profile(profile_path, [])
    addresses = sorted({loc.address for loc in profile.locations})
    maps = "\n".join("%x-%x r-xp %08x 00:00 0 %s" % (m.start, m.limit, m.offset, m.path)
                     for m in profile.mappings)
    # and two the program's catch-all range may or may not name (as pprof does)
    lines = [maps] + ["0x%x" % a for a in addresses] + ["  at 0xdeadbeef in nowhere", "0x1"]
    return "\n".join(lines) + "\n"


def _run(cmd, stdin):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.skipif(GOOGLE_PPROF is None and not os.environ.get("CI"),
                    reason="google-pprof not installed (apt-get install google-perftools)")
@pytest.mark.parametrize("program,profile", CASES)
def test_symbols_match_google_pprof(local_profiles, program, profile):
    stdin = _stdin_for(os.path.join(local_profiles, profile))
    binary = os.path.join("fixtures", "bin", program)
    ref = _run([GOOGLE_PPROF or "google-pprof", "--symbols", binary], stdin)
    ours = _run([sys.executable, "-m", "pprof_py", "--symbols", binary], stdin)
    assert ref.returncode == 0, ref.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == ref.stdout
    names = ours.stdout.splitlines()
    assert len(names) == stdin.count("0x")
    assert sum(not n.startswith("0x") for n in names) >= 3, names


def test_symbols_errors():
    r = _run([sys.executable, "-m", "pprof_py", "--symbols"], "0x1\n")
    assert r.returncode == 2 and "Missing argument" in r.stderr
    r = _run([sys.executable, "-m", "pprof_py", "--symbols", "fixtures/bin/chain", "x.prof"], "0x1\n")
    assert r.returncode == 2 and "--symbols takes just the program" in r.stderr
    r = _run([sys.executable, "-m", "pprof_py", "--symbols", "/nonexistent/prog"], "0x1\n")
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "no such file" in r.stderr
    r = _run([sys.executable, "-m", "pprof_py", "--symbols", "--text", "fixtures/bin/chain"], "0x1\n")
    assert r.returncode == 2 and "Only specify one output mode" in r.stderr
    r = _run([sys.executable, "-m", "pprof_py", "--symbols", "fixtures/bin/chain"], "")
    assert r.returncode == 0 and r.stdout == ""
