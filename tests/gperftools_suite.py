"""Build gperftools 2.10's own tests against pprof_py's libraries and run them.

    python3 tests/gperftools_suite.py            # downloads the source (network)
    GPERFTOOLS_SRC=/path/to/gperftools python3 tests/gperftools_suite.py

`make test-gperftools` runs this; it is not part of `make test`.  It needs
cmake, ninja, g++ and the native libraries built (`python3 setup.py
build_ext --inplace`).

What it does, in a temporary directory (nothing of gperftools is kept):
  1. gets gperftools 2.10 (the tag's source snapshot from GitHub, or the checkout
     named by GPERFTOOLS_SRC; a git repository is checked out at the
     gperftools-2.10 tag into the work directory);
  2. configures it with its own CMake files and compiles the object files
     of each test below, and the static helper libraries the tests use
     (liblogging & co, test support, not allocator code);
  3. links every test binary with the link command gperftools' build uses,
     minus everything of libtcmalloc / libprofiler (their shared libraries,
     and the allocator objects and stack-trace code CMake links into some
     tests) plus pprof_py's allocator and/or sampler;
  4. runs each test with ctest, i.e. with gperftools' environment and
     scripts (TCMALLOC_SAMPLE_PARAMETER, PPROF_PATH=gperftools' pprof, ...);
  5. prints one line per test: PASS, FAIL (with the last lines of output) or
     LINK (with the symbols our libraries do not define).
Exit status: 0 when every test passed, 1 otherwise, 2 when the build could
not be set up.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from pprof_py.native import libpath  # noqa: E402

# the tag's source snapshot (the release tarball is the autotools
# distribution; the snapshot has the CMake files this script uses)
TARBALL = "https://github.com/gperftools/gperftools/archive/refs/tags/gperftools-2.10.tar.gz"
TAG = "gperftools-2.10"

# ctest name -> (binaries it runs, libraries: "malloc", "profiler" or both)
TESTS = [
    ("tcmalloc_unittest", ["tcmalloc_unittest"], ["malloc"]),
    ("tcmalloc_minimal_unittest", ["tcmalloc_minimal_unittest"], ["malloc"]),
    ("memalign_unittest", ["memalign_unittest"], ["malloc"]),
    ("realloc_unittest", ["realloc_unittest"], ["malloc"]),
    ("thread_dealloc_unittest", ["thread_dealloc_unittest"], ["malloc"]),
    ("frag_unittest", ["frag_unittest"], ["malloc"]),
    ("markidle_unittest", ["markidle_unittest"], ["malloc"]),
    ("malloc_extension_test", ["malloc_extension_test"], ["malloc"]),
    ("malloc_extension_c_test", ["malloc_extension_c_test"], ["malloc"]),
    ("malloc_hook_test", ["malloc_hook_test"], ["malloc"]),
    ("simple_compat_test", ["simple_compat_test"], ["malloc"]),
    ("current_allocated_bytes_test", ["current_allocated_bytes_test"], ["malloc"]),
    ("tcmalloc_large_unittest", ["tcmalloc_large_unittest"], ["malloc"]),
    ("tcmalloc_large_heap_fragmentation_unittest", ["tcmalloc_large_heap_fragmentation_unittest"], ["malloc"]),
    ("heap-profiler_unittest.sh", ["heap_profiler_unittest"], ["malloc"]),
    ("sampling_test.sh", ["sampling_test"], ["malloc"]),
    ("heap-checker_unittest.sh", ["heap_checker_unittest"], ["malloc"]),
    ("heap-checker-death_unittest.sh", ["heap_checker_unittest"], ["malloc"]),
    ("profiler_unittest.sh", ["profiler1_unittest", "profiler2_unittest", "profiler3_unittest",
                              "profiler4_unittest"], ["profiler"]),
]
# Left out, with the reason: they test gperftools' internals, not its API.
LEFT_OUT = {
    "sampler_test": "tcmalloc's sampler class (internal)",
    "profiledata_unittest": "libprofiler's ProfileData class (internal)",
    "profile_handler_unittest": "libprofiler's ProfileHandler (internal)",
    "debugallocation_test": "gperftools' debug allocator (a separate library)",
}
# Static helper libraries of the tests (logging, spin lock, sysinfo: test
# support, not allocator code).  Every test gets them: in gperftools' build
# the tests that do not list them find the same symbols (FLAGS_verbose, ...)
# in libtcmalloc.
HELPER_LIBS = ["liblogging.a", "libsysinfo.a", "libspinlock.a", "libmaybe_threads.a"]


def sh(cmd, cwd=None, timeout=1800, env=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def fail(message):
    print("gperftools_suite: " + message, file=sys.stderr)
    raise SystemExit(2)


def get_source(work):
    src = os.environ.get("GPERFTOOLS_SRC")
    dest = os.path.join(work, "gperftools")
    if os.path.isdir(os.path.join(dest, "src")):
        return dest                             # --work of an earlier run: reuse its checkout
    if src and os.path.isdir(os.path.join(src, ".git")):
        r = sh(["git", "clone", "-q", src, dest])
        if r.returncode == 0:
            r = sh(["git", "checkout", "-q", TAG], cwd=dest)
        if r.returncode != 0:
            fail("cannot check out %s from %s: %s" % (TAG, src, r.stderr.strip()))
        return dest
    if src:
        return os.path.abspath(src)
    tgz = os.path.join(work, "gperftools.tar.gz")
    try:
        with urllib.request.urlopen(TARBALL, timeout=120) as resp, open(tgz, "wb") as out:
            shutil.copyfileobj(resp, out)
    except OSError as e:
        fail("cannot download %s: %s (set GPERFTOOLS_SRC to a checkout)" % (TARBALL, e))
    with tarfile.open(tgz) as t:
        top = t.getnames()[0].split("/")[0]
        t.extractall(work)
    return os.path.join(work, top)


def release_version(build):
    """config.h says what the 2.10 release says.

    gperftools' CMake files call the version 2.10.0; the 2.10 release
    (autotools, what Debian's libtcmalloc and headers are built from) calls
    it 2.10: tc_version() returns "gperftools 2.10" there, and so does ours.
    tcmalloc_unittest compares tc_version() with config.h's PACKAGE_STRING,
    so the tests get the release's string (the CMake build of gperftools
    itself would fail the same check against Debian's libtcmalloc).
    """
    path = os.path.join(build, "config.h")
    with open(path) as f:
        text = f.read()
    text = re.sub(r'#define PACKAGE_STRING "gperftools 2\.10\.0"', '#define PACKAGE_STRING "gperftools 2.10"', text)
    text = re.sub(r'#define PACKAGE_VERSION "2\.10\.0"', '#define PACKAGE_VERSION "2.10"', text)
    with open(path, "w") as f:
        f.write(text)


def link_command(build, target):
    """gperftools' link command for target, as a list of words."""
    r = sh(["ninja", "-t", "commands", target], cwd=build)
    line = [x for x in r.stdout.splitlines() if " -o %s " % target in x][-1]
    # ": && /usr/bin/c++ ... && :"
    return line.split("&&")[1].split()


def our_link(words, target, libs):
    """The link words minus gperftools' allocator/profiler, plus ours."""
    own = "CMakeFiles/%s.dir/" % target
    keep = []
    for w in words:
        base = os.path.basename(w)
        if w.startswith("CMakeFiles/") and not w.startswith(own):
            continue                            # libtcmalloc's objects linked into the test
        if re.match(r"lib(tcmalloc|profiler)\w*\.(so|a)", base) or "libunwind" in base:
            continue
        if base.endswith(".a"):
            continue                            # helpers are added below, in link order
        keep.append(w)
    ours = [libpath(lib) for lib in libs]
    return keep + HELPER_LIBS + ours + ["-Wl,-rpath," + os.path.dirname(ours[0]), "-lstdc++", "-lpthread"]


def object_targets(words, target):
    own = "CMakeFiles/%s.dir/" % target
    return [w for w in words if w.startswith(own)] + HELPER_LIBS


def tail(text, n=6):
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return " | ".join(lines[-n:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", help="work directory (default: a temporary one, removed at the end)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per test")
    ap.add_argument("tests", nargs="*", help="run only these tests (ctest names; default: all)")
    args = ap.parse_args()
    unknown = set(args.tests) - {t[0] for t in TESTS}
    if unknown:
        print("gperftools_suite: unknown test(s): %s" % ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    tests = [t for t in TESTS if not args.tests or t[0] in args.tests]
    for tool in ("cmake", "ninja", "g++", "ctest"):
        if not shutil.which(tool):
            print("gperftools_suite: %s is needed (apt-get install cmake ninja-build g++)" % tool, file=sys.stderr)
            return 2
    for lib in ("malloc", "profiler"):
        if not os.path.exists(libpath(lib)):
            print("gperftools_suite: build the native libraries first (python3 setup.py build_ext --inplace)",
                  file=sys.stderr)
            return 2
    work = args.work or tempfile.mkdtemp(prefix="gperftools-suite-")
    os.makedirs(work, exist_ok=True)
    try:
        src = get_source(work)
        build = os.path.join(work, "build")
        r = sh(["cmake", "-S", src, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"])
        if r.returncode != 0:
            print("gperftools_suite: cmake failed: " + tail(r.stdout + r.stderr), file=sys.stderr)
            return 2
        release_version(build)
        links, objects = {}, set()
        for _, binaries, libs in tests:
            for b in binaries:
                words = link_command(build, b)
                links[b] = our_link(words, b, libs)
                objects.update(object_targets(words, b))
        r = sh(["ninja", "-j", str(args.jobs)] + sorted(objects), cwd=build, timeout=3600)
        if r.returncode != 0:
            print("gperftools_suite: compiling the tests failed: " + tail(r.stdout + r.stderr), file=sys.stderr)
            return 2
        link_errors = {}
        for b, cmd in links.items():
            r = sh(cmd, cwd=build)
            if r.returncode != 0:
                missing = sorted(set(re.findall(r"undefined reference to `([^']+)'", r.stderr)))
                link_errors[b] = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "") if missing \
                    else tail(r.stderr, 3)
        # the .sh tests run heap-checker_unittest, heap-profiler_unittest:
        # the autotools names of CMake's heap_checker_unittest, ...
        for b in links:
            if b not in link_errors and b.startswith("heap_"):
                shutil.copy(os.path.join(build, b), os.path.join(build, b.replace("_", "-", 1)))
        # gperftools' CMake passes the .sh tests bare binary names
        # ("sampling_test"): they are found through PATH
        env = dict(os.environ, PATH=build + os.pathsep + os.environ.get("PATH", ""))
        failed = 0
        print("gperftools 2.10 tests linked against pprof_py (%s, %s):"
              % (os.path.basename(libpath("malloc")), os.path.basename(libpath("profiler"))))
        for name, binaries, _ in tests:
            broken = [b for b in binaries if b in link_errors]
            if broken:
                failed += 1
                print("  LINK  %-45s %s" % (name, "; ".join("%s: %s" % (b, link_errors[b]) for b in broken)))
                continue
            r = sh(["ctest", "--output-on-failure", "--timeout", str(args.timeout), "-R",
                    "^%s$" % re.escape(name)], cwd=build, timeout=args.timeout + 60, env=env)
            if r.returncode == 0 and "100% tests passed" in r.stdout:
                print("  PASS  %s" % name)
            else:
                failed += 1
                out = r.stdout.split("Output:", 1)[-1] if "Output:" in r.stdout else r.stdout
                out = out.split("The following tests FAILED")[0]
                # the .sh tests name the case that failed ("Testing ... FAIL")
                case = [x for x in out.splitlines() if x.startswith("Testing ") and "FAIL" in x]
                print("  FAIL  %-45s %s" % (name, case[-1] if case else tail(out, 5)))
        for name, why in LEFT_OUT.items() if not args.tests else ():
            print("  LEFT OUT  %-41s %s" % (name, why))
        print("%d of %d tests failed" % (failed, len(tests)))
        return 1 if failed else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
