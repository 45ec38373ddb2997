"""The allocator together with the CPU sampler in one process.

A CPU profile and a heap profile (or a leak check) of one run is a normal
request.  This once deadlocked: the sampler's writer thread calls
pthread_getattr_np, which calls realloc while holding the thread's lock,
and the allocator's first malloc on that thread called pthread_getattr_np
again.  Every combination runs in a subprocess with a timeout; a hang
fails the test instead of the session.
"""
import os
import subprocess
import sys

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
TIMEOUT = 60


def clean_env(**extra):
    env = dict(os.environ)
    for k in ("HEAPPROFILE", "HEAPCHECK", "CPUPROFILE", "TCMALLOC_SAMPLE_PARAMETER", "LD_PRELOAD"):
        env.pop(k, None)
    env.update(extra)
    return env


def run(cmd, env, cwd):
    try:
        return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {TIMEOUT} s: {' '.join(cmd)}")


@pytest.fixture(scope="module")
def threaded(tmp_path_factory):
    """malloc_stress xthread: a second thread allocates and frees while the sampler runs."""
    out = str(tmp_path_factory.mktemp("stress") / "malloc_stress")
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", "-fno-omit-frame-pointer", "-pthread",
                    os.path.join(PROGRAMS, "malloc_stress.c"), "-o", out, "-ldl"],
                   check=True, capture_output=True, timeout=120)
    return out


def check_outputs(tmp_path, mode, r):
    assert r.returncode == 0, (mode, r.returncode, r.stderr)
    cpu = tmp_path / "c.prof"
    assert cpu.exists() and cpu.stat().st_size > 0, r.stderr
    if mode == "heap":
        assert list(tmp_path.glob("h.*.heap")), (os.listdir(tmp_path), r.stderr)
    if mode == "heapcheck":
        assert "No leaks found" in r.stderr, r.stderr


PPROF_RUN_MODES = {"malloc": ["--malloc"], "heap": ["--heap", "h"], "heapcheck": ["--heapcheck"]}


@pytest.mark.parametrize("mode", sorted(PPROF_RUN_MODES))
def test_pprof_run_cpu_with_allocator_on_true(tmp_path, mode):
    cmd = [sys.executable, "-m", "pprof_py.cli.run", "--cpu", "c.prof", *PPROF_RUN_MODES[mode], "--", "/bin/true"]
    check_outputs(tmp_path, mode, run(cmd, clean_env(), tmp_path))


ENV_MODES = {"malloc": {}, "heap": {"HEAPPROFILE": "h"}, "heapcheck": {"HEAPCHECK": "normal"}}


@pytest.mark.parametrize("order", ["profiler-first", "malloc-first"])
@pytest.mark.parametrize("mode", sorted(ENV_MODES))
def test_both_libraries_in_ld_preload(tmp_path, threaded, order, mode):
    libs = [libpath("profiler"), libpath("malloc")]
    if order == "malloc-first":
        libs.reverse()
    env = clean_env(LD_PRELOAD=" ".join(libs), CPUPROFILE="c.prof", CPUPROFILE_FREQUENCY="1000",
                    **ENV_MODES[mode])
    r = run([threaded, "xthread"], env, tmp_path)
    check_outputs(tmp_path, mode, r)
    assert "OK xthread" in r.stdout
