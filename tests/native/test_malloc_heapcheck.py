"""Leak checker (HEAPCHECK=normal) of pprof_py's allocator."""
import glob
import os
import platform
import subprocess
import sys

import pytest

from heapcheck_helpers import clean_env, pprof_command, run
from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


def env_with(**extra):
    # the report's symbolizer stays on here (PPROF_PATH unset): these runs cover it
    return clean_env(**extra)


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("leaky") / "malloc_leaky")
    subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-fno-builtin", "-pthread",
                    os.path.join(PROGRAMS, "malloc_leaky.c"), "-o", out],
                   check=True, capture_output=True, timeout=120)
    return out


def google_pprof_rows(exe, profile):
    """google-pprof --text --inuse_objects: {name: (flat, cum)}."""
    g = run(["google-pprof", "--text", "--inuse_objects", exe, profile], env_with())
    assert g.returncode == 0, g.stderr
    rows = {}
    for line in g.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].endswith("%"):
            rows[parts[5]] = (float(parts[0]), float(parts[3]))
    return rows


def leak_file_from(stderr):
    """(program, leak profile) from the "try running THIS shell command" line."""
    return tuple(pprof_command(stderr)[1:])


def test_clean_program_reports_no_leaks(leaky):
    r = run([leaky, "clean"], env_with(LD_PRELOAD=libpath("malloc"), HEAPCHECK="normal"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done clean\n"
    assert 'No leaks found for check "_main_"' in r.stderr
    assert "reachable heap objects" in r.stderr


def test_leaking_program_reported_with_its_site_only(leaky):
    r = run([leaky, "leak"], env_with(LD_PRELOAD=libpath("malloc"), HEAPCHECK="normal"))
    assert r.returncode == 1, r.stderr
    assert r.stdout == "done leak\n"                   # output flushed before _exit(1)
    assert "Leak check _main_ detected leaks of 21000 bytes in 7 objects" in r.stderr
    assert "The 1 largest leaks:" in r.stderr
    assert "Leak of 21000 bytes in 7 objects allocated from:" in r.stderr
    exe, leak_file = leak_file_from(r.stderr)
    assert exe == leaky
    try:
        assert os.path.basename(leak_file).startswith("malloc_leaky.")
        assert leak_file.endswith("._main_-end.heap")
        with open(leak_file) as f:
            text = f.read()
        assert text.startswith("heap profile:      7:    21000 [     7:    21000] @ heapprofile\n")
        assert "\nMAPPED_LIBRARIES:\n" in text
        flat = google_pprof_rows(leaky, leak_file)
        assert flat["leak_site"][0] == 7
        assert flat["leak_some"][1] == 7 and flat["main"][1] == 7
        # only the leaking site: nothing from keep_reachable or the thread
        assert all(v[0] == 0 for k, v in flat.items() if k != "leak_site")
        assert "keep_reachable" not in flat and "thread_fn" not in flat
    finally:
        if os.path.exists(leak_file):
            os.unlink(leak_file)


def test_heapcheck_with_heapprofile_prefix(leaky, tmp_path):
    prefix = str(tmp_path / "hp")
    r = run([leaky, "leak"], env_with(LD_PRELOAD=libpath("malloc"), HEAPCHECK="normal", HEAPPROFILE=prefix))
    assert r.returncode == 1, r.stderr
    _, leak_file = leak_file_from(r.stderr)
    assert leak_file == prefix + "._main_-end.heap"
    assert os.path.exists(leak_file)
    assert glob.glob(prefix + ".0001.heap")          # the regular exit dump as well


def test_pprof_run_heapcheck(leaky):
    cmd = [sys.executable, "-m", "pprof_py.cli.run", "--heapcheck", "--", leaky, "leak"]
    r = run(cmd, env_with())
    assert r.returncode == 1, r.stderr
    _, leak_file = leak_file_from(r.stderr)
    os.unlink(leak_file)
    r = run([sys.executable, "-m", "pprof_py.cli.run", "--heapcheck", "--", leaky, "clean"], env_with())
    assert r.returncode == 0, r.stderr
    assert "No leaks found" in r.stderr


@pytest.fixture(scope="module")
def regonly(tmp_path_factory):
    if platform.machine() != "x86_64":
        pytest.fail("malloc_regonly.c hides its pointer in an x86_64 register")
    out = str(tmp_path_factory.mktemp("regonly") / "malloc_regonly")
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-pthread",
                    os.path.join(PROGRAMS, "malloc_regonly.c"), "-o", out],
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("mode,leaks", [("held", False), ("dropped", True)])
def test_other_threads_registers_are_roots(regonly, mode, leaks):
    """A block referenced only from a register of another thread blocked in
    pause() is reachable; once that register is cleared it is a leak."""
    r = run([regonly, mode], env_with(LD_PRELOAD=libpath("malloc"), HEAPCHECK="normal"))
    assert r.stdout == f"done {mode}\n"
    if leaks:
        assert r.returncode == 1, r.stderr
        assert "Leak check _main_ detected leaks of 3000 bytes in 1 objects" in r.stderr
        _, leak_file = leak_file_from(r.stderr)
        os.unlink(leak_file)
    else:
        assert r.returncode == 0, r.stderr
        assert 'No leaks found for check "_main_"' in r.stderr


def test_leak_stacks_complete_without_frame_pointers(tmp_path):
    """Built at -O2 without frame pointers, the leaking program's stacks
    still reach main: allocation stacks are unwound with DWARF call-frame
    information, not frame pointers."""
    exe = str(tmp_path / "leaky_nofp")
    subprocess.run(["gcc", "-O2", "-g", "-fomit-frame-pointer", "-pthread",
                    os.path.join(PROGRAMS, "malloc_leaky.c"), "-o", exe],
                   check=True, capture_output=True, timeout=120)
    r = run([exe, "leak"], env_with(LD_PRELOAD=libpath("malloc"), HEAPCHECK="normal"))
    assert r.returncode == 1, r.stderr
    assert "Leak check _main_ detected leaks of 21000 bytes in 7 objects" in r.stderr
    _, leak_file = leak_file_from(r.stderr)
    try:
        rows = google_pprof_rows(exe, leak_file)
        assert rows["leak_site"][0] == 7, rows
        assert rows["leak_some"][1] == 7 and rows["main"][1] == 7, rows
    finally:
        os.unlink(leak_file)
