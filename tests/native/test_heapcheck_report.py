"""The leak report's frames are readable: each "@ 0x..." line
(the form tools parse) is followed by the demangled function and its
file:line, from our own pprof run at exit; without it, bare addresses."""
import os
import re
import stat

import pytest

from heapcheck_helpers import build, leaks, pprof_command, preload_env, run


@pytest.fixture(scope="module")
def cxx(tmp_path_factory):
    return build(tmp_path_factory, "heapcheck_cxx.cc", "-O0", "-g", name="cxx")


FRAME = re.compile(r"^\t@ (0x[0-9a-f]+)(?: (.*))?$", re.M)


def frames(stderr):
    return FRAME.findall(stderr)


def test_frames_named_with_file_and_line(cxx, tmp_path):
    # PPROF_PATH unset: the library runs `python3 -m pprof_py --symbols --lines` of its own tree
    env = preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path)
    del env["PPROF_PATH"]
    r = run([cxx], env)
    assert r.returncode == 1, r.stderr
    assert leaks(r.stderr) == (144, 3)
    names = [name for _, name in frames(r.stderr)]
    # innermost first: the caller of operator new, its caller, main; each
    # file:line is the line that made the call
    expected = [("demo::Factory::make", "new Widget"), ("leak_widgets", "f.make(i)"), ("main", "leak_widgets();")]
    for name, (function, source) in zip(names, expected):
        m = re.fullmatch(r"(\S+) (\S+heapcheck_cxx\.cc):(\d+)", name)
        assert m and m.group(1) == function, names
        with open(m.group(2)) as f:
            assert source in f.read().splitlines()[int(m.group(3)) - 1], (name, source)
    assert not any("_ZN" in n for n in names)
    # the dump and the command are unchanged by symbolization
    assert os.path.exists(pprof_command(r.stderr)[2])


@pytest.mark.parametrize("pprof", ["/nonexistent/pprof", "/bin/true", "/bin/echo"])
def test_bare_addresses_when_the_symbolizer_fails(cxx, tmp_path, pprof):
    """A symbolizer that is missing, exits at once without reading (no
    SIGPIPE for us) or answers the wrong number of lines: the report falls
    back to addresses and is otherwise the same."""
    r = run([cxx], preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path, PPROF_PATH=pprof))
    assert r.returncode == 1, r.stderr
    assert leaks(r.stderr) == (144, 3)
    fr = frames(r.stderr)
    assert len(fr) >= 4
    assert all(name == "" or name.startswith(("(", "_Z", "_")) or "+0x" in name for _, name in fr), fr
    assert pprof_command(r.stderr)[0] == pprof


def test_symbolizer_does_not_run_under_our_libraries(cxx, tmp_path):
    """The child gets no LD_PRELOAD/HEAPCHECK: a PPROF_PATH script records
    its environment."""
    script = tmp_path / "fake-pprof"
    seen = tmp_path / "seen"
    script.write_text(f"#!/bin/sh\nenv > {seen}\nexec cat >/dev/null\n")
    script.chmod(stat.S_IRWXU)
    r = run([cxx], preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path, PPROF_PATH=script))
    assert r.returncode == 1
    env = seen.read_text()
    assert "LD_PRELOAD=" not in env and "HEAPCHECK=" not in env
