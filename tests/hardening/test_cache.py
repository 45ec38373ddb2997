"""The symbol cache: plain data that cannot run code,
written atomically and privately; anything wrong with a cache file is a
miss (one warning, rebuilt), never a crash."""
import json
import os
import pickle
import stat

import pytest

from hardening.helpers import ROOT, assert_report, pprof_forked

PROGRAM = "fixtures/bin/cxx"
PROFILE = "fixtures/local/profiles/cxx.cpu.prof"


@pytest.fixture(scope="module", autouse=True)
def localized():
    import sys
    sys.path.insert(0, os.path.join(ROOT, "fixtures"))
    try:
        import relocate_maps
        relocate_maps.localize(ROOT)
    finally:
        sys.path.pop(0)


@pytest.fixture
def cache_home(tmp_path):
    return tmp_path / "xdg"


def _run(cache_home, *extra):
    # Forked from this process: the one-time warning state is fresh in each
    # child, since this process never reads a cache itself.
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    try:
        return pprof_forked(["--lines", "--text", *extra, PROGRAM, PROFILE])
    finally:
        os.environ["XDG_CACHE_HOME"] = old


_EXPECTED = []


def _expected():
    if not _EXPECTED:
        _EXPECTED.append(assert_report(pprof_forked(["--lines", "--text", "--no-cache", PROGRAM, PROFILE])))
    return _EXPECTED[0]


def _cache_file(cache_home):
    from pprof_py.symbolize import cache
    from pprof_py.symbolize.objfile import ObjectFile
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    try:
        return cache._cache_path(ObjectFile(os.path.join(ROOT, PROGRAM)))
    finally:
        os.environ["XDG_CACHE_HOME"] = old


def test_warm_answers_equal_cold_and_uncached_ones(cache_home):
    expected = _expected()
    cold = _run(cache_home)
    warm = _run(cache_home)
    assert assert_report(cold) == expected and assert_report(warm) == expected
    assert cold.stderr == warm.stderr == b""


def test_cache_file_is_private_and_not_a_pickle(cache_home):
    assert_report(_run(cache_home))
    path = _cache_file(cache_home)
    directory = os.path.dirname(path)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"PPROFPY-SYMCACHE\n")
    # No temporary files left behind by the atomic write.
    assert os.listdir(directory) == [os.path.basename(path)] or \
        all(not name.endswith(".tmp") for name in os.listdir(directory))


class _Planted:
    """Unpickling this runs os.system: a cache file planted by someone else must never be unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def test_planted_pickle_does_not_run(cache_home, tmp_path):
    marker = str(tmp_path / "pwned")
    path = _cache_file(cache_home)
    os.makedirs(os.path.dirname(path), mode=0o700)
    payload = pickle.dumps(_Planted(marker))
    for name in (path, os.path.splitext(path)[0] + ".pickle"):
        with open(name, "wb") as f:
            f.write(payload)
        os.chmod(name, 0o600)
    proc = _run(cache_home)
    assert assert_report(proc) == _expected()
    assert not os.path.exists(marker)
    err = proc.stderr.decode()
    assert err.count("warning: ignoring symbol cache") == 1, err
    assert "not a pprof_py symbol cache" in err
    # Rebuilt: the next run is warm and quiet.
    again = _run(cache_home)
    assert assert_report(again) == _expected() and again.stderr == b""


def _damage(path, how):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "empty":
        data = bytearray()
    elif how == "version":
        header_end = data.index(b"\n", 17)
        header = json.loads(data[17:header_end])
        header["version"] = 1
        data[17:header_end] = json.dumps(header).encode()
    elif how == "index":
        # The last fact id of the last address points past the facts.
        header_end = data.index(b"\n", 17)
        header = json.loads(data[17:header_end])
        counts = {name: count for name, _dtype, count in header["arrays"]}
        offset = header_end + 1 + ((counts["addresses"] * 8 + 7) & ~7)
        data[offset:offset + 8] = (10 ** 9).to_bytes(8, "little")
    elif how == "garbage":
        data = bytearray(b"PPROFPY-SYMCACHE\n" + b"\xff" * 5000)
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("how", ["truncated", "empty", "version", "index", "garbage"])
def test_damaged_cache_is_a_miss(cache_home, how):
    assert_report(_run(cache_home))
    path = _cache_file(cache_home)
    _damage(path, how)
    proc = _run(cache_home)
    assert assert_report(proc) == _expected()
    err = proc.stderr.decode()
    if how != "empty":
        assert err.count("warning: ignoring symbol cache") == 1, err
    again = _run(cache_home)
    assert assert_report(again) == _expected() and again.stderr == b""


def test_cache_writable_by_others_is_not_trusted(cache_home):
    assert_report(_run(cache_home))
    path = _cache_file(cache_home)
    os.chmod(path, 0o666)
    proc = _run(cache_home)
    assert assert_report(proc) == _expected()
    assert "not a private file" in proc.stderr.decode()


def test_cache_that_cannot_be_written_is_not_an_error(tmp_path):
    # A regular file where the cache directory should be (mode bits would
    # not stop root, this stops everyone).
    home = tmp_path / "not-a-directory"
    home.write_bytes(b"")
    proc = _run(home)
    assert assert_report(proc) == _expected()
    assert not (tmp_path / "pprof_py").exists()


def test_cache_path_is_a_fifo(cache_home):
    path = _cache_file(cache_home)
    os.makedirs(os.path.dirname(path), mode=0o700)
    os.mkfifo(path, 0o600)
    proc = _run(cache_home)          # must not block on the FIFO
    assert assert_report(proc) == _expected()
    assert "not a regular file" in proc.stderr.decode()
