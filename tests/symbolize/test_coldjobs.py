"""Cold symbolization in a forked worker (symbolize/coldjobs.py) gives the
same report, warnings and cache files as the sequential path, falls back
when the worker fails, and stays out of the way where it must."""
import os
import subprocess
import sys

import pytest

from helpers import PROFILES, ROOT, localize
from pprof_py.symbolize import coldjobs

# Runs pprof in-process after patching: counts forks, and with
# FAIL_IN_WORKER set makes every object the worker opens fail to open.
PROBE = r"""
import os, sys, runpy
from pprof_py.symbolize import coldjobs
parent = os.getpid()
forks = []
real_fork = os.fork
def counting_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = counting_fork
if os.environ.get("FAIL_IN_WORKER"):
    real_object_file = coldjobs.ObjectFile
    def failing(path):
        if os.getpid() != parent:
            raise OSError("made to fail")
        return real_object_file(path)
    coldjobs.ObjectFile = failing
import atexit
atexit.register(lambda: sys.stderr.write("FORKS %d\n" % len(forks)))
sys.argv = ["pprof"] + sys.argv[1:]
runpy.run_module("pprof_py", run_name="__main__")
"""

CASES = [("fixtures/bin/threads", "threads.cpu.prof"), ("fixtures/bin/cxx", "cxx.cpu.2.aligned.prof"),
         ("fixtures/bin/shared_main", "shared.cpu.prof")]


def _run(tmp_path, name, args, **env):
    cache = tmp_path / name
    cache.mkdir()
    environ = dict(os.environ, PYTHONPATH=ROOT, XDG_CACHE_HOME=str(cache), **env)
    proc = subprocess.run([sys.executable, "-c", PROBE] + args, cwd=ROOT, env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    forks = int(err.rsplit("FORKS ", 1)[1])
    files = {}
    for directory, _dirs, names in os.walk(cache):
        for n in names:
            with open(os.path.join(directory, n), "rb") as f:
                files[n] = f.read()
    return proc.stdout, err.rsplit("FORKS ", 1)[0], forks, files


needs_two_cpus = pytest.mark.skipif(coldjobs._cpus() < 2, reason="one CPU: the worker is never used")


@needs_two_cpus
@pytest.mark.parametrize("program,profile", CASES)
@pytest.mark.parametrize("mode", ["--text", "--lines"])
def test_worker_gives_the_sequential_answers(tmp_path, program, profile, mode):
    localize()
    args = [mode, program, f"{PROFILES}/{profile}"]
    parallel = _run(tmp_path, "parallel", args)
    sequential = _run(tmp_path, "sequential", args, PPROF_PY_SYMBOLIZE_JOBS="1")
    assert parallel[2] == 1 and sequential[2] == 0       # the worker ran, and only when allowed
    assert parallel[0] == sequential[0] and b"Total:" in parallel[0]
    assert parallel[1] == sequential[1]                  # the same warnings, in the same order
    assert parallel[3] == sequential[3] and len(parallel[3]) >= 2    # the same cache files


@needs_two_cpus
def test_a_failing_worker_is_made_up_for(tmp_path):
    localize()
    args = ["--text", "fixtures/bin/threads", f"{PROFILES}/threads.cpu.prof"]
    failed = _run(tmp_path, "failed", args, FAIL_IN_WORKER="1")
    sequential = _run(tmp_path, "sequential", args, PPROF_PY_SYMBOLIZE_JOBS="1")
    assert failed[2] == 1
    assert failed[0] == sequential[0] and failed[1] == sequential[1] and failed[3] == sequential[3]


def test_warm_runs_do_not_fork(tmp_path):
    localize()
    args = ["--text", "fixtures/bin/threads", f"{PROFILES}/threads.cpu.prof"]
    cache = tmp_path / "warm"
    cache.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, XDG_CACHE_HOME=str(cache))
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", PROBE] + args, cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0 and proc.stderr.decode().endswith("FORKS 0\n"), proc.stderr


def test_split_balances_the_estimated_costs():
    mine, theirs, their_ms = coldjobs._split({0: 300, 1: 80, 2: 10, 3: 5})
    assert mine == [0] and theirs == [1, 2, 3] and their_ms == 95
    assert coldjobs._split({0: 5}) == ([0], [], 0.0)
