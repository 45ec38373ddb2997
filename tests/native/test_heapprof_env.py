"""Heap profiler under real use: children's
profile names, gperftools' dump triggers and variables, failed dumps."""
import glob
import os
import re
import signal
import sys

import pytest

from heapcheck_helpers import build, preload_env, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def forker(tmp_path_factory):
    return build(tmp_path_factory, "heapprof_fork.c", name="forker")


def inuse_objects(exe, profile):
    """{function: flat in-use objects} from our pprof --text."""
    r = run([sys.executable, "-m", "pprof_py", "--text", "--inuse_objects", exe, profile],
            dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].endswith("%"):
            rows[parts[5]] = int(parts[0])
    return rows


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_children_name_their_profiles_with_their_pid(forker, tmp_path, mode):
    """gperftools' naming: a child writes <prefix>_<pid>.NNNN.heap and never
    overwrites the parent's <prefix>.NNNN.heap (fork alone, and fork + exec
    inheriting HEAPPROFILE)."""
    prefix = str(tmp_path / "hp")
    r = run([forker, mode], preload_env(HEAPPROFILE=prefix))
    assert r.returncode == 0, r.stderr
    child = int(re.search(r"^child (\d+)$", r.stdout, re.M).group(1))
    assert sorted(os.listdir(tmp_path)) == sorted(["hp.0001.heap", f"hp_{child}.0001.heap"]), r.stderr
    parent_rows = inuse_objects(forker, prefix + ".0001.heap")
    child_rows = inuse_objects(forker, f"{prefix}_{child}.0001.heap")
    assert parent_rows.get("parent_site") == 10 and "child_site" not in parent_rows, parent_rows
    assert child_rows.get("child_site") == 3, child_rows
    assert f"Dumping heap profile to {prefix}_{child}.0001.heap" in r.stderr


@pytest.fixture(scope="module")
def envprog(tmp_path_factory):
    return build(tmp_path_factory, "heapprof_env.c", name="envprog")


def dumps(prefix):
    return sorted(glob.glob(prefix + ".*.heap"))


def test_deallocation_interval(envprog, tmp_path):
    """HEAP_PROFILE_DEALLOCATION_INTERVAL: a dump each time that many more
    bytes have been freed (10 x 1 MiB freed, every 3 MiB: 3 dumps + exit)."""
    prefix = str(tmp_path / "free")
    r = run([envprog, "churn", "10"], preload_env(HEAPPROFILE=prefix, HEAP_PROFILE_DEALLOCATION_INTERVAL=3 << 20))
    assert r.returncode == 0, r.stderr
    assert len(dumps(prefix)) == 4, r.stderr
    assert r.stderr.count("MB freed cumulatively, 0 MB currently in use") == 3, r.stderr


def test_allocation_interval_zero_disables(envprog, tmp_path):
    prefix = str(tmp_path / "noalloc")
    r = run([envprog, "churn", "10"], preload_env(HEAPPROFILE=prefix, HEAP_PROFILE_ALLOCATION_INTERVAL=0,
                                                  HEAP_PROFILE_INUSE_INTERVAL=0))
    assert r.returncode == 0, r.stderr
    assert len(dumps(prefix)) == 1 and "(Exiting," in r.stderr, r.stderr


def test_time_interval(envprog, tmp_path):
    """HEAP_PROFILE_TIME_INTERVAL=1: the first allocation after each 1.2 s
    sleep dumps ("N sec since the last dump")."""
    prefix = str(tmp_path / "time")
    r = run([envprog, "slow", "2"], preload_env(HEAPPROFILE=prefix, HEAP_PROFILE_TIME_INTERVAL=1))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("sec since the last dump)") == 2, r.stderr
    assert len(dumps(prefix)) == 3


def test_profile_signal(envprog, tmp_path):
    """HEAPPROFILESIGNAL: the signal requests a dump (written at the next
    allocation: a handler must not allocate); the program is not killed."""
    prefix = str(tmp_path / "sig")
    r = run([envprog, "signal", str(int(signal.SIGUSR1))],
            preload_env(HEAPPROFILE=prefix, HEAPPROFILESIGNAL=int(signal.SIGUSR1)))
    assert r.returncode == 0, r.stderr
    assert f"Dumping heap profile to {prefix}.0001.heap (signal)" in r.stderr
    assert len(dumps(prefix)) == 2


@pytest.mark.parametrize("var", ["HEAP_PROFILE_MMAP", "HEAP_PROFILE_ONLY_MMAP", "HEAP_PROFILE_MMAP_LOG"])
def test_unsupported_mmap_variables_say_so(envprog, tmp_path, var):
    prefix = str(tmp_path / "mmap")
    r = run([envprog, "churn", "1"], preload_env(HEAPPROFILE=prefix, **{var: "true"}))
    assert r.returncode == 0
    assert f"pprof_py heap profiler: {var} is not supported" in r.stderr
    r = run([envprog, "churn", "1"], preload_env(HEAPPROFILE=prefix, **{var: "false"}))
    assert "not supported" not in r.stderr


@pytest.mark.parametrize("where", ["missing", "readonly"])
def test_dump_to_unwritable_directory_says_it_failed(envprog, tmp_path, where):
    """No "Dumping heap profile to" for a file that is not written,
    but one line saying why."""
    d = tmp_path / where
    if where == "readonly" and os.geteuid() == 0:
        d = "/sys"                  # root writes anywhere but on a read-only file system
    elif where == "readonly":
        d.mkdir()
        d.chmod(0o500)
    prefix = os.path.join(str(d), "pprof_py_test_hp")
    try:
        r = run([envprog, "churn", "1"], preload_env(HEAPPROFILE=prefix))
    finally:
        if where == "readonly" and d != "/sys":
            d.chmod(0o700)
    assert r.returncode == 0
    lines = [l for l in r.stderr.splitlines() if "heap profile" in l]
    reason = "No such file or directory" if where == "missing" else "(Permission denied|Read-only file system)"
    assert len(lines) == 1, r.stderr
    assert re.fullmatch(f"pprof_py heap profiler: cannot write {re.escape(prefix)}.0001.heap: {reason}", lines[0])
