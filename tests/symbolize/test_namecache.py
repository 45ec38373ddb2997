"""The names cache (symbolize/namecache.py): a second run with the same
addresses reads its finished frames and names exactly as the first run;
another address set, another naming option or a damaged file is a miss."""
import glob
import os

import pytest

from helpers import PROFILES, ROOT, localize
from pprof_py import report
from pprof_py.symbolize import Symbolizer, namecache

CASES = [("cxx", "cxx.cpu.prof"), ("threads", "threads.cpu.prof"), ("shared_main", "shared.cpu.prof")]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(namecache, "MIN_ADDRESSES", 1)      # the fixtures' queries are small
    return tmp_path


def _symbols(program, profile, **options):
    inputs = report.load(program, [profile], report.Options(**options))
    return inputs.symbols


def _answers_made(monkeypatch):
    """Counts the queries answered from the symbol cache's facts."""
    calls = []
    real = Symbolizer.object_answers

    def counting(self, *args, **kwargs):
        calls.append(args[1])
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Symbolizer, "object_answers", counting)
    return calls


@pytest.mark.parametrize("name,profile", CASES)
def test_second_run_reads_the_names(cache_home, monkeypatch, name, profile):
    localize()
    program, path = os.path.join(ROOT, "fixtures", "bin", name), os.path.join(ROOT, PROFILES, profile)
    calls = _answers_made(monkeypatch)
    first = _symbols(program, path)
    made_first = len(calls)
    assert made_first >= 1 and glob.glob(str(cache_home / "pprof_py" / "*.names"))
    second = _symbols(program, path)
    assert len(calls) == made_first                  # nothing named again
    assert second == first and second.display == first.display
    # Addresses sharing a frames tuple still share it (later stages memoize on identity).
    assert len({id(v) for v in second.values()}) == len({id(v) for v in first.values()})


def test_other_queries_miss(cache_home, monkeypatch):
    localize()
    program = os.path.join(ROOT, "fixtures", "bin", "cxx")
    one, two = os.path.join(ROOT, PROFILES, "cxx.cpu.prof"), os.path.join(ROOT, PROFILES, "cxx.cpu.2.prof")
    calls = _answers_made(monkeypatch)
    first = _symbols(program, one)
    n = len(calls)
    assert _symbols(program, two) == _symbols(program, two, use_cache=False)   # another address set
    assert len(calls) > n
    n = len(calls)
    kept = _symbols(program, one, strip_templates=False)                         # another naming option
    assert len(calls) > n and kept == _symbols(program, one, strip_templates=False, use_cache=False)
    assert _symbols(program, one, use_cache=False) == first


def test_damaged_names_file_is_a_miss(cache_home, monkeypatch):
    localize()
    program, path = os.path.join(ROOT, "fixtures", "bin", "cxx"), os.path.join(ROOT, PROFILES, "cxx.cpu.prof")
    first = _symbols(program, path)
    names_file = glob.glob(str(cache_home / "pprof_py" / "*.names"))[0]
    data = bytearray(open(names_file, "rb").read())
    for damage in (data[:len(data) // 2], data[:-8] + b"\xff" * 8, b"x" + data[1:]):
        with open(names_file, "wb") as f:
            f.write(bytes(damage))
        os.chmod(names_file, 0o600)
        monkeypatch.setattr("pprof_py.symbolize.cache._warned", False)
        notes = []
        inputs = report.load(program, [path], report.Options(), notes)
        assert inputs.symbols == first
        assert len([n for n in notes if "ignoring symbol cache" in n and names_file in n]) == 1, notes
    # ... and rewritten whole: the next run reads it again.
    calls = _answers_made(monkeypatch)
    assert _symbols(program, path) == first and not calls
