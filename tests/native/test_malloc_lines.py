"""Objects smaller than a cache line and the threads using them: each
thread carves them from spans of its own, and a thread that frees another
thread's small object does not get it back as its next allocation
(central_freelist.c), so no two threads write the same line by the
allocator's doing (false sharing; mimalloc-bench's cache-scratch).  The
checks run tests/native/programs/malloc_lines.c in a subprocess."""
import os
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


@pytest.fixture(scope="module")
def lines_program(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("lines") / "malloc_lines")
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", "-pthread", os.path.join(PROGRAMS, "malloc_lines.c"),
                    "-o", out], check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("run", range(3))
def test_threads_never_share_a_line_of_small_objects(lines_program, run):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "MALLOCSTATS")}
    env["LD_PRELOAD"] = libpath("malloc")
    proc = subprocess.run([lines_program], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["scratch", "ok", "fresh", "ok", "reuse", "ok"], proc.stdout
