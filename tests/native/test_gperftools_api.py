"""Programs written against gperftools' headers link against pprof_py's libraries.

tests/native/programs/gperftools_api.cc is compiled against Debian's
/usr/include/gperftools (libgoogle-perftools-dev, gperftools 2.10), linked
against our allocator (or, for profiler.h, our sampler) instead of
libtcmalloc / libprofiler, and run in a subprocess; every check it makes
prints "ok <what>" or "FAIL <what>: detail".
"""
import os
import re
import subprocess
import sys

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOURCE = os.path.join(HERE, "programs", "gperftools_api.cc")
GPERFTOOLS_INCLUDE = "/usr/include/gperftools"


_dump_dir = None


@pytest.fixture(autouse=True, scope="module")
def leak_dumps_in_a_temporary_folder(tmp_path_factory):
    """The named HeapLeakCheckers' dump files (HEAP_CHECK_DUMP_DIRECTORY,
    /tmp by default) go to pytest's temporary folder, not /tmp."""
    global _dump_dir
    _dump_dir = str(tmp_path_factory.mktemp("leak_dumps"))


def clean_env(**extra):
    env = dict(os.environ)
    for k in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "LD_PRELOAD", "CPUPROFILE",
              "CANCEL_GLOBAL", "LEAK_AT_EXIT", "SAMPLE_FILE", "GROWTH_FILE", "GLOBAL_CHECK_NOW"):
        env.pop(k, None)
    if _dump_dir:
        env["HEAP_CHECK_DUMP_DIRECTORY"] = _dump_dir
    env.update(extra)
    return env


def run(cmd, timeout=120, **env):
    return subprocess.run(cmd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout)


def build(out, libs, defines=()):
    assert os.path.isdir(GPERFTOOLS_INCLUDE), "gperftools' headers missing: apt-get install libgoogle-perftools-dev"
    cmd = ["g++", "-std=c++17", "-O1", "-g", "-fno-omit-frame-pointer", "-rdynamic", "-pthread",
           *defines, SOURCE, "-o", out, *libs]
    cmd += ["-Wl,-rpath," + os.path.dirname(lib) for lib in libs if os.path.isabs(lib)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gperftools_api")
    return {
        "alloc": build(str(d / "gperftools_api"), [libpath("malloc")]),
        "profiler": build(str(d / "gperftools_api_prof"), [libpath("profiler")], ["-DPROFILER_ONLY"]),
        # like -ltcmalloc -lprofiler
        "both": build(str(d / "gperftools_api_both"), [libpath("malloc"), libpath("profiler")],
                      ["-DPROFILER_ONLY"]),
    }


def oks(stdout):
    return set(re.findall(r"^ok (.+)$", stdout, re.M))


def test_program_links_our_libraries_not_gperftools(programs):
    for exe in programs.values():
        ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=60).stdout
        assert "libtcmalloc" not in ldd and "libprofiler.so" not in ldd, ldd
    assert os.path.basename(libpath("malloc")) in subprocess.run(
        ["ldd", programs["alloc"]], capture_output=True, text=True, timeout=60).stdout


def test_allocator_groups(programs, tmp_path):
    sample, growth = str(tmp_path / "sample.heap"), str(tmp_path / "growth.heap")
    r = run([programs["alloc"], "alloc"], TCMALLOC_SAMPLE_PARAMETER="4096", SAMPLE_FILE=sample,
            GROWTH_FILE=growth)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    got = oks(r.stdout)
    expected = {
        # tcmalloc.h / nallocx.h
        "tc_version", "tc_malloc/tc_malloc_size", "tc_new/tc_delete", "tc_new_aligned", "__posix_memalign",
        "__libc_valloc", "__libc_pvalloc", "nallocx matches malloc", "new mode calls the new handler", "nallocx aligned", "tc_mallinfo",
        # malloc_extension.h: properties sensible, ownership right, vtable layout
        "generic.current_allocated_bytes / heap_size", "tcmalloc properties", "GetOwnership owned",
        "GetOwnership stack", "GetOwnership global", "GetAllocatedSize", "ReleaseFreeMemory empties the page heap",
        "GetHeapSample", "GetHeapGrowthStacks", "GetFreeListSizes", "Ranges: a live block is INUSE",
        "Ranges: a freed and released block is UNMAPPED", "GetSystemAllocator()->Alloc",
        "Register: C API dispatches through the vtable", "Register: later vtable slot",
        # malloc_extension_c.h
        "MallocExtension_GetNumericProperty", "MallocExtension_GetOwnership", "MallocExtension_GetAllocatedSize",
        # malloc_hook.h: hooks called, re-entrancy, mmap family
        "new hook on malloc", "delete hook on free", "new hook on operator new[]",
        "delete hook on operator delete[]", "new hook on calloc and moving realloc", "removed hook not called",
        "allocating hook is not re-entered", "SetNewHook (deprecated form)",
        "GetCallerStackTrace starts at the allocating function", "mmap/munmap hooks", "mmap replacement used",
        "UnhookedMMap/UnhookedMUnmap",
        # stacktrace.h
        "GetStackTrace", "GetStackFrames", "GetStackTraceWithContext skip_count",
        "GetStackTraceWithContext from a signal handler",
    }
    assert expected <= got, sorted(expected - got)
    # GetHeapSample's and GetHeapGrowthStacks' texts are heap profiles our
    # pprof reads; the 8 MiB block of test_malloc_extension grew the heap
    for profile in (sample, growth):
        rep = subprocess.run([sys.executable, "-m", "pprof_py", "--text", programs["alloc"], profile], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert rep.returncode == 0, rep.stderr
        assert "test_malloc_extension" in rep.stdout, rep.stdout


def test_preloaded_into_a_program_linked_with_libtcmalloc(tmp_path):
    """Swapping allocators without relinking: a program built with
    -ltcmalloc, run with our allocator preloaded, gets ours everywhere (also
    MallocExtension::instance(), which libtcmalloc's start-up code would
    otherwise re-register as its own)."""
    exe = build(str(tmp_path / "gperftools_api_tc"), ["-ltcmalloc"])
    assert "libtcmalloc" in subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=60).stdout
    r = run([exe, "alloc"], TCMALLOC_SAMPLE_PARAMETER="4096", LD_PRELOAD=libpath("malloc"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "alloc: 0 failures" in r.stdout


def test_heapcheck_local_named_checkers(programs):
    r = run([programs["alloc"], "heapcheck"], HEAPCHECK="local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "heapcheck: 0 failures" in r.stdout
    assert {"IsActive", "GetAllocCaller", "named checker: no leaks", "named checker finds a leak",
            "disabled leak and ignored object not reported", "UnIgnoreObject"} <= oks(r.stdout)
    assert "Leak check leaky_region detected leaks of 4321 bytes in 1 objects" in r.stderr
    assert 'No leaks found for check "disabled_and_ignored"' in r.stderr
    assert not re.search(r'check "?_main_"?', r.stderr)                     # local: no whole-program check


def test_heapcheck_normal_whole_program_check_skips_disabled_and_ignored(programs):
    r = run([programs["alloc"], "heapcheck"], HEAPCHECK="normal", GLOBAL_CHECK_NOW="1")
    assert "heapcheck: 0 failures" in r.stdout, r.stdout
    assert "ok NoGlobalLeaks" in r.stdout
    # the two leaks the named checkers found (4321 + 333 bytes); the block
    # allocated under a Disabler (777) and the ignored one (555) are not
    # leaks.  Reported twice: by NoGlobalLeaks() and by the check at exit,
    # which alone ends the process.
    assert r.stderr.count("Leak check _main_ detected leaks of 4654 bytes in 2 objects") == 2, r.stderr
    assert r.stderr.count("Exiting with error code") == 1
    assert r.returncode == 1


def test_cancel_global_check(programs):
    r = run([programs["alloc"], "heapcheck"], HEAPCHECK="normal", CANCEL_GLOBAL="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r'check "?_main_"?', r.stderr)
    # gperftools' line (its heap-checker-death_unittest.sh matches it)
    assert re.search(r"^Canceling .* whole-program .* leak check$", r.stderr, re.M), r.stderr
    # nothing to cancel without a whole-program check
    r = run([programs["alloc"], "heapcheck"], HEAPCHECK="local", CANCEL_GLOBAL="1")
    assert "Canceling" not in r.stderr


def test_profiler_h(programs, tmp_path):
    prof = str(tmp_path / "cpu.prof")
    r = run([programs["profiler"], "profiler", prof])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "profiler: 0 failures" in r.stdout
    assert {"GetStackTrace", "GetStackTraceWithContext from a signal handler"} <= oks(r.stdout)
    rep = subprocess.run([sys.executable, "-m", "pprof_py", "--text", programs["profiler"], prof], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert "test_profiler" in rep.stdout


def test_allocator_needs_no_libstdcxx():
    """The C++ layer must not pull libstdc++ into C programs (LD_PRELOAD)."""
    lib = libpath("malloc")
    ldd = subprocess.run(["ldd", lib], capture_output=True, text=True, timeout=60).stdout
    assert "libstdc++" not in ldd, ldd
    nm = subprocess.run(["nm", "-D", "--undefined-only", lib], capture_output=True, text=True, timeout=60).stdout
    strong = [line.split()[-1] for line in nm.splitlines() if line.split()[0] == "U"]
    assert not [s for s in strong if "GLIBCXX" in s or "CXXABI" in s or s.startswith("_Z")], strong
    r = subprocess.run(["sh", "-c", "echo preloaded | cat"], env=clean_env(LD_PRELOAD=lib),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "preloaded\n", r.stderr


def test_suite_runner_relinks_against_ours_only():
    """tests/gperftools_suite.py (make test-gperftools) keeps a test's own
    objects and gperftools' test-support libraries and puts our libraries in
    place of libtcmalloc's shared library and the allocator objects CMake
    links into some tests."""
    sys.path.insert(0, os.path.dirname(HERE))
    try:
        import gperftools_suite
    finally:
        sys.path.pop(0)
    words = ("/usr/bin/c++ -O3 -DNDEBUG CMakeFiles/tcmalloc_internal_object.dir/src/page_heap.cc.o "
             "CMakeFiles/stacktrace_object.dir/src/stacktrace.cc.o CMakeFiles/sampling_test.dir/src/tests/"
             "sampling_test.cc.o -o sampling_test -Wl,-rpath,/b libtcmalloc.so.9.10.5 "
             "/usr/lib/x86_64-linux-gnu/libunwind.so libspinlock.a liblogging.a").split()
    cmd = gperftools_suite.our_link(words, "sampling_test", ["malloc"])
    assert "CMakeFiles/sampling_test.dir/src/tests/sampling_test.cc.o" in cmd
    assert not [w for w in cmd if "tcmalloc_internal" in w or "stacktrace_object" in w or "libtcmalloc" in w
                or "libunwind" in w]
    assert libpath("malloc") in cmd and cmd.index("liblogging.a") < cmd.index(libpath("malloc"))
    assert gperftools_suite.object_targets(words, "sampling_test")[0].startswith("CMakeFiles/sampling_test.dir/")


def test_our_headers_have_gperftools_abi(tmp_path):
    """Vtable slots of every MallocExtension/SysAllocator virtual and the
    sizes of the public structures are the same with our headers
    (pprof_py/native/include/gperftools) as with gperftools' own."""
    src = os.path.join(HERE, "programs", "gperftools_abi.cc")
    ours_dir = os.path.join(ROOT, "pprof_py", "native", "include")
    outputs = {}
    for name, flags in (("gperftools", []), ("ours", ["-I" + ours_dir])):
        deps = subprocess.run(["g++", "-std=c++17", "-M", *flags, src], capture_output=True, text=True, timeout=120)
        assert deps.returncode == 0, deps.stderr
        used = os.path.join(ours_dir, "gperftools", "malloc_extension.h") in deps.stdout
        assert used == (name == "ours"), deps.stdout
        exe = str(tmp_path / name)
        subprocess.run(["g++", "-std=c++17", *flags, src, "-o", exe], check=True, capture_output=True, timeout=120)
        outputs[name] = subprocess.run([exe], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "MallocExtension::MarkThreadTemporarilyIdle slot" in outputs["gperftools"]
    assert outputs["ours"] == outputs["gperftools"]


def test_profiler_h_with_our_allocator_too(programs, tmp_path):
    """A program linked with both libraries: the sampler's threads make their
    first allocation inside pthread_getattr_np, which holds the thread's lock
    (the allocator used to ask pthread_getattr_np again there: deadlock)."""
    prof = str(tmp_path / "cpu.prof")
    r = run([programs["both"], "profiler", prof], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "profiler: 0 failures" in r.stdout
