"""The gperftools internals libtcmalloc.so exports, on our allocator.

gperftools' own tests (and code built from gperftools' source) link to
symbols that are in no installed header but that `nm -D libtcmalloc.so.4`
lists: base::internal::HookList, tcmalloc::Log, TCMalloc_SystemAlloc /
TCMalloc_SystemRelease, FLAGS_tcmalloc_sample_parameter,
FLAGS_tcmalloc_release_rate.  programs/gperftools_internals.cc declares
them as gperftools' sources do, links against our allocator only and checks
each group ("ok <what>" / "FAIL <what>: detail"); the same program checks
the writable MallocExtension properties, ReleaseToSystem(n)'s accounting
and a program's SysAllocator feeding the page heap.
"""
import os
import re
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "programs", "gperftools_internals.cc")


def env(**extra):
    e = dict(os.environ)
    for k in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "LD_PRELOAD", "TCMALLOC_RELEASE_RATE",
              "TCMALLOC_AGGRESSIVE_DECOMMIT", "TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES", "TCMALLOC_HEAP_LIMIT_MB",
              "MALLOCSTATS", "PERFTOOLS_VERBOSE", "PPROF_PY_HEAPCHECK_PID"):
        e.pop(k, None)
    e.update(extra)
    return e


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    assert os.path.isdir("/usr/include/gperftools"), "apt-get install libgoogle-perftools-dev"
    out = str(tmp_path_factory.mktemp("internals") / "gperftools_internals")
    lib = libpath("malloc")
    r = subprocess.run(["g++", "-std=c++17", "-O1", "-g", "-pthread", SOURCE, "-o", out, lib,
                        "-Wl,-rpath," + os.path.dirname(lib)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    ldd = subprocess.run(["ldd", out], capture_output=True, text=True, timeout=60).stdout
    assert "libtcmalloc" not in ldd, ldd
    return out


def run(exe, *groups, **extra):
    return subprocess.run([exe, *groups], env=env(**extra), capture_output=True, text=True, timeout=120)


def checks(r):
    assert "FAIL" not in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    return set(re.findall(r"^ok (.+)$", r.stdout, re.M))


def test_hooklist(exe):
    got = checks(run(exe, "hooklist"))
    assert {"hooklist initial value", "hooklist remove keeps end", "hooklist add fills the hole",
            "hooklist holds 7", "hooklist singular", "hooklist threads"} <= got


def test_log_writes_one_line_and_crash_aborts(exe):
    r = run(exe, "log")
    assert "ok log returned" in r.stdout
    assert "file.cc:12] text -5 7 0xbeef\n" in r.stderr
    r = run(exe, "crash")
    assert r.returncode == -6, r                     # SIGABRT
    assert "crash.cc:3] condition failed" in r.stderr


def test_system_alloc_and_release(exe):
    got = checks(run(exe, "sysalloc"))
    assert {"sysalloc aligned", "sysalloc counted", "sysalloc not ours", "sysrelease zeroes",
            "sysrelease less than a page"} <= got


def test_release_to_system_releases_about_n_bytes(exe):
    # gperftools' TestReleaseToSystem: whole spans, the excess credited
    got = checks(run(exe, "release"))
    assert {"release a whole span for half", "release credit", "release after credit", "release reuse",
            "release one byte releases a span"} <= got


def test_aggressive_decommit(exe):
    got = checks(run(exe, "aggressive"))
    assert {"aggressive writable", "aggressive free releases", "aggressive no resident free pages"} <= got
    # the environment variable turns it on at start-up (as in gperftools)
    r = run(exe, "aggressive", TCMALLOC_AGGRESSIVE_DECOMMIT="true")
    assert "FAIL aggressive readable" in r.stdout


def test_writable_properties_and_flags(exe):
    got = checks(run(exe, "props"))
    assert {"max thread cache writable", "unknown property not writable", "release rate"} <= got
    assert "sample parameter 0\n" in run(exe, "props").stdout
    # FLAGS_tcmalloc_sample_parameter is the sampler's live rate
    assert "sample parameter 4096\n" in run(exe, "props", TCMALLOC_SAMPLE_PARAMETER="4096").stdout


def test_release_rate_from_environment(exe):
    assert "initial release rate 1\n" in run(exe, "props").stdout
    assert "initial release rate 0.25\n" in run(exe, "props", TCMALLOC_RELEASE_RATE="0.25").stdout
    # rate 0 from the start: gperftools' ReleaseToSystem accounting holds without the program setting it
    checks(run(exe, "release", TCMALLOC_RELEASE_RATE="0"))


def test_page_heap_grows_through_the_programs_sysallocator(exe):
    got = checks(run(exe, "sysallocator"))
    assert {"page heap grows through SysAllocator", "failing SysAllocator fails malloc", "own allocator back"} <= got


def test_new_handler_from_nothrow_new_and_new_mode_memalign(exe):
    got = checks(run(exe, "newhandler"))
    assert {"nothrow new calls the handler", "nothrow new[] calls the handler", "aligned nothrow new calls the handler",
            "new mode memalign calls the handler", "new mode posix_memalign calls the handler",
            "tc_version is the release's"} <= got


def test_heap_limit(exe):
    got = checks(run(exe, "heaplimit"))
    assert {"heap limit writable", "under the limit", "over the limit fails", "freed memory counts again",
            "limit lifted"} <= got
    # TCMALLOC_HEAP_LIMIT_MB at start-up, as in gperftools
    assert "FAIL heap limit off" in run(exe, "heaplimit", TCMALLOC_HEAP_LIMIT_MB="64").stdout


def test_memory_region_map_and_heap_check_flag(exe):
    r = run(exe, "regions", HEAPCHECK="normal")
    got = checks(r)
    assert 'heap_check flag "normal"' in r.stdout
    assert {"region recorded once", "region caller is in mapper", "regions in order", "hole splits the region",
            "find region", "hole not found", "unmapped region gone"} <= got
    # without the leak checker: nothing is recorded, the flag is empty (as in gperftools)
    r = run(exe, "regions")
    assert r.returncode == 0 and 'heap_check flag ""' in r.stdout and "not recording" in r.stdout, r.stdout


def test_leak_checks_with_busy_threads(exe, tmp_path):
    # 20 named checks while 3 threads call getgrgid and malloc/free with
    # their newest block only in a register: no false leak, and the threads
    # the checks stop run on (the joins return)
    r = run(exe, "busythreads", HEAPCHECK="local", TMPDIR=str(tmp_path), PPROF_PATH="")
    assert "ok no false leaks with busy threads" in r.stdout, r.stdout + r.stderr[-2000:]


def test_empty_heapcheck_and_perftools_verbose(exe, tmp_path):
    quiet = dict(TMPDIR=str(tmp_path), PPROF_PATH="")
    # gperftools: HEAPCHECK set (even empty) starts tracking at the first
    # allocation; an empty mode then turns the checker off before main
    r = run(exe, "checkstate", HEAPCHECK="", PERFTOOLS_VERBOSE="10", **quiet)
    assert r.returncode == 0, r.stderr
    assert 'active 0 flag "" recording 0' in r.stdout
    assert re.search(r"^Starting tracking the heap$", r.stderr, re.M), r.stderr
    assert re.search(r"^MemoryRegionMap Init$", r.stderr, re.M), r.stderr
    assert "leak" not in r.stderr.lower()
    r = run(exe, "checkstate", HEAPCHECK="", **quiet)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # a real mode: the messages at PERFTOOLS_VERBOSE >= 10 only; the leak is found
    r = run(exe, "checkstate", HEAPCHECK="normal", PERFTOOLS_VERBOSE="10", **quiet)
    assert 'active 1 flag "normal" recording 1' in r.stdout
    assert re.search(r"^Starting tracking the heap$", r.stderr, re.M) and r.returncode == 1, r.stderr
    r = run(exe, "checkstate", HEAPCHECK="normal", PERFTOOLS_VERBOSE="-10", **quiet)
    assert "Starting tracking the heap" not in r.stderr and r.returncode == 1, r.stderr
