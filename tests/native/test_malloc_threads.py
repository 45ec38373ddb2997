"""Programs with many threads under our allocator (tests/native/programs/
malloc_busy_threads.c, run in a subprocess): joining 40 threads must not
deadlock, and a busy thread's cache must still grow past its first 2 MiB
when 40 other threads have caches (the thread-cache budget is for growth
beyond that first share)."""
import os
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
MIN_CACHE = 2 << 20


@pytest.fixture(scope="module")
def busy_program(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("busy") / "malloc_busy_threads")
    subprocess.run(["gcc", "-O1", "-g", "-pthread", os.path.join(PROGRAMS, "malloc_busy_threads.c"),
                    "-o", out, "-ldl"], check=True, capture_output=True, timeout=120)
    return out


def run_busy(program):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "MALLOCSTATS",
                        "TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES")}
    env["LD_PRELOAD"] = libpath("malloc")
    try:
        # a deadlocked run blocks every signal (it hangs inside
        # pthread_create): subprocess.run's timeout kills it with SIGKILL
        return subprocess.run([program], env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the program did not end in 30 s: deadlock while joining its threads")


@pytest.mark.parametrize("run", range(3))
def test_joining_many_threads_does_not_deadlock(busy_program, run):
    proc = run_busy(busy_program)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_busy_thread_cache_grows_with_many_threads(busy_program):
    proc = run_busy(busy_program)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cached = int(proc.stdout.split()[0])
    assert cached > 2 * MIN_CACHE, f"the busy thread's cache holds only {cached} bytes"
