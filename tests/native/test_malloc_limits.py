"""The allocator at the system's limits: requests
no machine can back, a lowered RLIMIT_AS, and glibc's statistics calls.

tests/native/programs/malloc_limits.c runs each case; every run is a
subprocess with a timeout.
"""
import os
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


def env(preload):
    e = dict(os.environ)
    for k in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "LD_PRELOAD", "MALLOCSTATS"):
        e.pop(k, None)
    if preload:
        e["LD_PRELOAD"] = libpath("malloc")
    return e


@pytest.fixture(scope="module")
def limits(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("limits") / "malloc_limits")
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", os.path.join(PROGRAMS, "malloc_limits.c"), "-o", out],
                   check=True, capture_output=True, timeout=120)
    return out


def run(binary, mode, preload=True):
    return subprocess.run([binary, mode], env=env(preload), capture_output=True, text=True, timeout=60)


def overcommit_policy():
    with open("/proc/sys/vm/overcommit_memory") as f:
        return int(f.read())


def test_unbackable_requests_fail_like_glibc(limits):
    ours = run(limits, "huge")
    glibc = run(limits, "huge", preload=False)
    assert ours.returncode == 0 and glibc.returncode == 0, (ours.stderr, glibc.stderr)
    # the same answers as glibc under this machine's overcommit policy
    assert ours.stdout.splitlines() == glibc.stdout.splitlines()
    if overcommit_policy() != 1:           # 0 (heuristic) and 2 (strict) refuse 1 TiB
        assert ours.stdout.splitlines() == [
            "malloc(2^40) NULL ENOMEM",
            "calloc(2^20,2^20) NULL ENOMEM",
            "realloc(100B,2^40) NULL ENOMEM",
            "posix_memalign(4096,2^40) ENOMEM",
        ]


def test_lowered_address_space_limit_keeps_working(limits):
    r = run(limits, "rlimit")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "OK rlimit"


def test_mallinfo_mallopt_malloc_stats_from_our_statistics(limits):
    r = run(limits, "mallinfo")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "OK mallinfo"
    # malloc_stats() prints our report, not glibc's unused arena
    assert "Bytes in use by application" in r.stderr
    assert "Arena 0" not in r.stderr
