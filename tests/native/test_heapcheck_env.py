"""The leak checker's modes and variables (as in gperftools'
heap_checker.html), its dump files and its pprof command."""
import os
import re
import shutil
import stat
import sys

import pytest

from heapcheck_helpers import build, clean_env, leaks, pprof_command, preload_env, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def modes(tmp_path_factory):
    return build(tmp_path_factory, "heapcheck_modes.c", name="modes")


def check(prog, tmp_path, *args, **env):
    env.setdefault("HEAP_CHECK_DUMP_DIRECTORY", tmp_path)
    return run([prog, *args], preload_env(**env))


def leak_sizes(stderr):
    return sorted(int(m) for m in re.findall(r"^Leak of (\d+) bytes in 1 objects", stderr, re.M))


# "basic" with a constructor leak: 555 (constructor), 100 (main) leaked;
# 2222 held by a global, 1234 by a live frame at exit(), 4096 = stdout's buffer
@pytest.mark.parametrize("mode,expected", [
    ("normal", [100, 555]),
    ("strict", [100, 555]),
    ("minimal", [100]),                           # start-up allocations are not checked
    ("draconian", [100, 555, 1234, 2222, 4096]),  # no liveness flood: everything not freed
    ("as-is", [100, 555]),                        # the knobs' defaults are normal's
])
def test_modes(modes, tmp_path, mode, expected):
    r = check(modes, tmp_path, "basic", HEAPCHECK=mode, LEAK_IN_CONSTRUCTOR=1)
    assert r.returncode == 1, r.stderr
    assert r.stdout == "done\n"
    assert leak_sizes(r.stderr) == expected, r.stderr
    assert leaks(r.stderr) == (sum(expected), len(expected))


def test_local_mode_has_no_whole_program_check(modes, tmp_path):
    r = check(modes, tmp_path, "basic", HEAPCHECK="local")
    assert r.returncode == 0, r.stderr
    assert "Leak check" not in r.stderr and "No leaks" not in r.stderr
    assert os.listdir(tmp_path) == []


def test_unknown_mode_is_said_and_checked_as_normal(modes, tmp_path):
    r = check(modes, tmp_path, "basic", HEAPCHECK="nromal")
    assert r.returncode == 1
    assert r.stderr.startswith('pprof_py heap checker: unknown HEAPCHECK mode "nromal"')
    assert leak_sizes(r.stderr) == [100]


@pytest.mark.parametrize("var,expected", [
    ("HEAP_CHECK_IGNORE_GLOBAL_LIVE", [100, 2222, 4096]),   # reachable only from globals: reported
    ("HEAP_CHECK_IGNORE_THREAD_LIVE", [100, 1234]),         # reachable only from the stack: reported
])
def test_as_is_knobs(modes, tmp_path, var, expected):
    r = check(modes, tmp_path, "basic", HEAPCHECK="as-is", **{var: "false"})
    assert r.returncode == 1, r.stderr
    assert leak_sizes(r.stderr) == expected, r.stderr
    # outside as-is the knobs are ignored, as gperftools does
    r = check(modes, tmp_path, "basic", HEAPCHECK="normal", **{var: "false"})
    assert leak_sizes(r.stderr) == [100], r.stderr


def test_after_destructors_false_is_said_unsupported(modes, tmp_path):
    r = check(modes, tmp_path, "basic", HEAPCHECK="as-is", HEAP_CHECK_AFTER_DESTRUCTORS="false")
    assert "HEAP_CHECK_AFTER_DESTRUCTORS=false is not supported" in r.stderr


@pytest.mark.parametrize("max_leaks,shown", [(None, 20), ("3", 3), ("0", 25), ("-1", 25)])
def test_max_leaks(modes, tmp_path, max_leaks, shown):
    env = {"HEAPCHECK": "normal"}
    if max_leaks is not None:
        env["HEAP_CHECK_MAX_LEAKS"] = max_leaks
    r = check(modes, tmp_path, "many", "25", **env)
    assert r.returncode == 1
    assert leaks(r.stderr) == (2500, 25)
    assert f"The {shown} largest leaks:" in r.stderr
    assert r.stderr.count("Leak of 100 bytes in 1 objects allocated from:") == shown
    assert ("Skipping leaks numbered" in r.stderr) == (shown < 25)
    # the dump holds every leak whatever is printed
    dump = pprof_command(r.stderr)[2]
    with open(dump) as f:
        records = [l for l in f.read().split("\nMAPPED_LIBRARIES:")[0].splitlines()[1:] if l.strip()]
    assert len(records) == 25


def test_identify_leaks_puts_each_object_address_in_the_dump(modes, tmp_path):
    r = check(modes, tmp_path, "many", "3", HEAPCHECK="normal", HEAP_CHECK_IDENTIFY_LEAKS="1")
    dump = pprof_command(r.stderr)[2]
    with open(dump) as f:
        head = f.read().split("\nMAPPED_LIBRARIES:")[0].splitlines()
    assert head[0].startswith("heap profile:      3:      300 [     3:      300] @ heapprofile")
    objects = [re.match(r"^ +1: +100 \[ +1: +100\] @ (0x[0-9a-f]+) 0x", l) for l in head[1:]]
    assert all(objects) and len(objects) == 3, head
    assert len({m.group(1) for m in objects}) == 3           # three distinct object addresses
    r = check(modes, tmp_path, "many", "3", HEAPCHECK="normal")
    with open(pprof_command(r.stderr)[2]) as f:
        head = f.read().split("\nMAPPED_LIBRARIES:")[0].splitlines()
    assert len(head) == 4 and all(l.lstrip().startswith("1:") for l in head[1:])


def test_pointer_alignment(modes, tmp_path):
    """A block whose only pointer sits at an odd offset: leaked at the
    default alignment; HEAP_CHECK_TEST_POINTER_ALIGNMENT says unaligned
    pointers explain it; HEAP_CHECK_POINTER_SOURCE_ALIGNMENT=1 finds it."""
    r = check(modes, tmp_path, "unaligned", HEAPCHECK="normal")
    assert leak_sizes(r.stderr) == [3333]
    assert "pointer alignment" not in r.stderr
    r = check(modes, tmp_path, "unaligned", HEAPCHECK="normal", HEAP_CHECK_TEST_POINTER_ALIGNMENT="1")
    assert leak_sizes(r.stderr) == [3333]
    assert "Found no leaks without pointer alignment: something might be placing pointers at unaligned" in r.stderr
    r = check(modes, tmp_path, "many", "2", HEAPCHECK="normal", HEAP_CHECK_TEST_POINTER_ALIGNMENT="1")
    assert "Found leaks without pointer alignment as well" in r.stderr
    r = check(modes, tmp_path, "unaligned", HEAPCHECK="normal", HEAP_CHECK_POINTER_SOURCE_ALIGNMENT="1")
    assert r.returncode == 0 and leaks(r.stderr) is None, r.stderr
    r = check(modes, tmp_path, "unaligned", HEAPCHECK="normal", HEAP_CHECK_POINTER_SOURCE_ALIGNMENT="3")
    assert "HEAP_CHECK_POINTER_SOURCE_ALIGNMENT must be 1, 2, 4 or 8" in r.stderr


# ---- dump files and the suggested command ----

def test_dump_is_new_private_and_unique_in_dump_directory(modes, tmp_path):
    names = []
    for _ in range(2):
        r = check(modes, tmp_path, "many", "1", HEAPCHECK="normal")
        prog, dump = pprof_command(r.stderr)[1:]
        assert prog == modes
        assert os.path.dirname(dump) == str(tmp_path)
        assert re.fullmatch(r"heapcheck_modes\.\d+\.[A-Za-z0-9]{6}\._main_-end\.heap", os.path.basename(dump))
        assert stat.S_IMODE(os.stat(dump).st_mode) == 0o600
        names.append(dump)
    assert names[0] != names[1]


def test_dump_directory_defaults_to_tmpdir(modes, tmp_path):
    r = run([modes, "many", "1"], preload_env(HEAPCHECK="normal", TMPDIR=tmp_path))
    dump = pprof_command(r.stderr)[2]
    assert os.path.dirname(dump) == str(tmp_path) and os.path.exists(dump)


def test_dump_beside_heap_profiles_never_follows_a_symlink(modes, tmp_path):
    """With HEAPPROFILE the dump is <prefix>._main_-end.heap; a symlink
    planted there is not followed (its target is untouched)."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    prefix = tmp_path / "hp"
    os.symlink(victim, str(prefix) + "._main_-end.heap")
    r = check(modes, tmp_path, "many", "1", HEAPCHECK="normal", HEAPPROFILE=prefix)
    assert r.returncode == 1
    assert victim.read_text() == "precious\n"
    assert re.search(r"^pprof_py heap checker: cannot write the leak profile .*hp\._main_-end\.heap: Too many "
                     r"levels of symbolic links", r.stderr, re.M), r.stderr


def test_command_quotes_the_program_path_and_uses_pprof_path(modes, tmp_path):
    odd = tmp_path / "dir with space" / "it's $HOME"
    odd.parent.mkdir()
    shutil.copy(modes, odd)
    r = check(str(odd), tmp_path, "many", "1", HEAPCHECK="normal", PPROF_PATH="/opt/my tools/pprof")
    argv = pprof_command(r.stderr)
    assert argv[0] == "/opt/my tools/pprof"
    assert argv[1] == str(odd)
    assert os.path.exists(argv[2])


# ---- which processes are checked ----

def test_forked_child_without_exec_does_not_check(modes, tmp_path):
    """gperftools checks in the process that started the checker only."""
    r = check(modes, tmp_path, "forkleak", HEAPCHECK="normal")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("child exit 0\n")
    assert r.stderr.count("No leaks found") == 1 and "detected leaks" not in r.stderr


def pprof_run(*args, **env):
    cmd = [sys.executable, "-m", "pprof_py.cli.run", *args]
    return run(cmd, clean_env(PPROF_PATH="", PYTHONPATH=ROOT, **env), cwd=ROOT)


def test_pprof_run_checks_the_named_program_only(modes, tmp_path):
    r = pprof_run("--heapcheck", "--", modes, "spawn", HEAP_CHECK_DUMP_DIRECTORY=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\nchild exit 0\ndone\n"           # the leaky child was not checked
    assert r.stderr.count("No leaks found") == 1 and "detected leaks" not in r.stderr
    # the named program itself is checked
    r = pprof_run("--heapcheck", "--", modes, "many", "1", HEAP_CHECK_DUMP_DIRECTORY=tmp_path)
    assert r.returncode == 1 and leaks(r.stderr) == (100, 1)


def test_pprof_run_heapcheck_children(modes, tmp_path):
    r = pprof_run("--heapcheck", "--heapcheck-children", "--", modes, "spawn", HEAP_CHECK_DUMP_DIRECTORY=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\nchild exit 1\ndone\n"           # the child checked itself and failed
    assert leaks(r.stderr) == (100, 1)
    assert "No leaks found" in r.stderr                       # and the parent was checked too
    r = pprof_run("--heapcheck-children", "--", modes, "spawn")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].endswith("--heapcheck-children needs --heapcheck")


def test_missing_dump_directory_is_said(modes, tmp_path):
    missing = tmp_path / "nowhere"
    r = check(modes, tmp_path, "many", "1", HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=missing)
    assert r.returncode == 1                                  # the leak is still reported
    assert leaks(r.stderr) == (100, 1)
    assert re.search(rf"^pprof_py heap checker: cannot write the leak profile {re.escape(str(missing))}/"
                     r"heapcheck_modes\.\d+\.\w{6}\._main_-end\.heap: No such file or directory$", r.stderr, re.M)
    assert "try running THIS shell command" not in r.stderr
