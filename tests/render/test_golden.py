"""Golden files for our own output formats, which no peer prints (so no
differential test covers them): --json, --markdown, --callgrind (ours keeps
the outermost call pair pprof drops), --weblist, --raw.  Each file in
tests/golden/ is named after the fixture and the flags that made it.

Set PPROF_PY_UPDATE_GOLDEN=1 to rewrite them after an intended change (the
tests then skip), and review the diff before committing."""
import pytest

from helpers import check_golden, localize, render

CXX = ["fixtures/bin/cxx", "fixtures/local/profiles/cxx.cpu.prof"]
CXX2 = "fixtures/local/profiles/cxx.cpu.2.prof"
ALLOC = ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.heap"]

# golden file name: (renderer, report.Options fields, program + profiles)
CASES = {
    "cxx.cpu.json": ("json", {}, CXX),
    "cxx.cpu.lines.json": ("json", {"granularity": "lines"}, CXX),
    "cxx.cpu.base.json": ("json", {"base": CXX[1]}, [CXX[0], CXX2]),
    "alloc.heap.inuse_objects.json": ("json", {"sample_index": "inuse_objects"}, ALLOC),
    "cxx.cpu.markdown.md": ("markdown", {}, CXX),
    "cxx.cpu.base.markdown.md": ("markdown", {"base": CXX[1]}, [CXX[0], CXX2]),
    "alloc.heap.alloc_space.markdown.md": ("markdown", {"sample_index": "alloc_space"}, ALLOC),
    "cxx.cpu.callgrind.txt": ("callgrind", {}, CXX),
    "alloc.heap.callgrind.txt": ("callgrind", {}, ALLOC),
    "cxx.cpu.weblist=Accumulator.html": ("weblist", {"output_regex": "Accumulator"}, CXX),
}


@pytest.fixture(scope="module", autouse=True)
def localized():
    return localize()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    flag, options, files = CASES[name]
    out, _ = render(flag, options, files[0], files[1:])
    check_golden(name, out)
