"""Where gperftools' pprof crashes or prints garbage, ours must not copy it.
The inputs are generated here, shaped like the files that show the bugs
(google/pprof's profile/testdata), not copied from anywhere.

* `--raw` with several profiles: google-pprof writes a symbolized file it
  cannot read back ("substr outside of string"); ours writes the summed
  profile, and reading it back gives the same report.
* `--callgrind`: google-pprof's PrintCallgrind cuts every function name at
  its first space (`operator new` becomes `operator`,
  `(anonymous namespace)::f` becomes `(anonymous`); ours keeps the names.
* A sampled heap profile with an entry that has no objects left
  ("0: 0 [1: 1024]", as in google/pprof's gobench.heap): google-pprof dies
  with "Illegal division by zero"; ours counts the entry's in-use part as 0
  and still unsamples its allocated part.
"""
import re

import pytest

from helpers import PROFILES, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


def test_raw_of_several_profiles_reads_back(tmp_path):
    both = CHAIN + [CHAIN[1]]                  # the same profile twice: every address named
    direct = pprof(["--text"] + both)
    assert direct.returncode == 0, direct.stderr
    raw = pprof(["--raw"] + both)
    assert raw.returncode == 0, raw.stderr
    path = tmp_path / "both.raw"
    path.write_bytes(raw.stdout)
    back = pprof(["--text", str(path)])
    assert back.returncode == 0, back.stderr
    assert back.stdout == direct.stdout
    single = int(re.search(r"Total: (\d+)", text(pprof(["--text"] + CHAIN))).group(1))
    assert text(back).startswith("Total: %d samples\n" % (2 * single))


def test_callgrind_keeps_names_with_spaces(tmp_path):
    folded = tmp_path / "spaces.folded"
    folded.write_text("main;(anonymous namespace)::worker;operator new 5\n"
                      "main;(anonymous namespace)::worker 3\n")
    proc = pprof(["--callgrind", str(folded)])
    assert proc.returncode == 0, proc.stderr
    names = set(re.findall(r"^c?fn=\(\d+\) (.+)$", text(proc), re.M))
    assert names == {"main", "(anonymous namespace)::worker", "operator new"}
    # and the costs are the --text report's
    assert re.search(r"^cfn=\(\d+\) operator new\ncalls=5 0\n0 5$", text(proc), re.M), text(proc)


def _heap(tmp_path, name, entries):
    path = tmp_path / name
    path.write_text("heap profile: 1: 1024 [4: 3072] @ heap/1048576\n" + "".join(entries))
    return str(path)


def _total(proc):
    assert proc.returncode == 0, proc.stderr
    assert "division" not in proc.stderr.decode()
    return float(re.search(r"^Total: ([\d.]+) ", text(proc), re.M).group(1))


def test_sampled_heap_entry_with_zero_objects(tmp_path):
    live = "1: 1024 [3: 2048] @ 0x401000 0x402000\n"
    freed = "0: 0 [1: 1024] @ 0x401000 0x403000\n"
    with_zero = _heap(tmp_path, "gobench-like.heap", [live, freed])
    without = _heap(tmp_path, "live-only.heap", [live])
    for sample in ("--inuse_objects", "--inuse_space"):
        assert _total(pprof(["--text", sample, with_zero])) == _total(pprof(["--text", sample, without]))
    # the freed entry's allocations still count, unsampled like the others
    assert _total(pprof(["--text", "--alloc_objects", with_zero])) > \
        _total(pprof(["--text", "--alloc_objects", without]))


def test_callgrind_caller_names_are_not_cut():
    """On the C++ fixture google-pprof lists `fixture::Accumulator::digest
    [clone .isra.0]` as a callee but, cut at the space, as the caller
    `fixture::Accumulator::digest`: one function, two callgrind entries."""
    proc = pprof(["--callgrind", "fixtures/bin/cxx", f"{PROFILES}/cxx.cpu.prof"])
    assert proc.returncode == 0, proc.stderr
    names = set(re.findall(r"^c?fn=\(\d+\) (.+)$", text(proc), re.M))
    assert "fixture::Accumulator::digest [clone .isra.0]" in names
    assert "fixture::Accumulator::digest" not in names
    callers = set(re.findall(r"^fn=\(\d+\) (.+)$", text(proc), re.M))
    assert "fixture::Accumulator::digest [clone .isra.0]" in callers
