"""--callgrind: valgrind's callgrind_annotate must read our output and show,
per function, the same self cost as our --text flat column (and, where no
function is recursive, the same inclusive cost as the cumulative column)."""
import os
import re
import shutil

import pytest

from helpers import localize, render

CALLGRIND_ANNOTATE = shutil.which("callgrind_annotate")
CASES = {
    "chain": ({}, ["fixtures/bin/chain", "fixtures/local/profiles/chain.cpu.prof"]),
    "cxx_inline": ({}, ["fixtures/bin/cxx", "fixtures/local/profiles/cxx.cpu.prof"]),
    "threads": ({}, ["fixtures/bin/threads", "fixtures/local/profiles/threads.cpu.prof"]),
    "heap_bytes": ({"show_bytes": True}, ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.heap"]),
    "heap_objects": ({"sample_index": "alloc_objects"},
                     ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.heap"]),
}
_ROW = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+)$")


@pytest.fixture(scope="module", autouse=True)
def localized():
    return localize()


def annotate(path, inclusive):
    import subprocess
    proc = subprocess.run([CALLGRIND_ANNOTATE, "--threshold=100", "--auto=no",
                           "--inclusive=" + ("yes" if inclusive else "no"), str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    totals = {}
    program_total = None
    for line in proc.stdout.decode().splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        value = int(m.group(1).replace(",", ""))
        where = m.group(2).strip()
        if where == "PROGRAM TOTALS (calculated)" or where == "PROGRAM TOTALS":
            program_total = value
            continue
        _file, _, function = where.partition(":")
        function = re.sub(r"\[inline\]$", " (inline)", function)
        totals[function] = totals.get(function, 0) + value
    return program_total, totals


@pytest.mark.skipif(CALLGRIND_ANNOTATE is None and not os.environ.get("CI"),
                    reason="valgrind's callgrind_annotate is not installed (CI installs it and runs this)")
@pytest.mark.parametrize("name", sorted(CASES))
def test_callgrind_annotate_reads_our_totals(name, tmp_path):
    options, files = CASES[name]
    text, prepared = render("callgrind", options, files[0], files[1:])
    assert text.startswith("events: Hits\n\n")
    path = tmp_path / "callgrind.out"
    path.write_text(text)
    program_total, self_cost = annotate(path, inclusive=False)
    flat = {k: int(v) for k, v in prepared.flat.items() if int(v)}
    assert program_total == int(sum(prepared.flat.values()))
    assert self_cost == flat
    if name == "chain":
        _, inclusive = annotate(path, inclusive=True)
        assert inclusive == {k: int(v) for k, v in prepared.cum.items()}


def test_names_are_compressed():
    text, _ = render("callgrind", {}, "fixtures/bin/chain", ["fixtures/local/profiles/chain.cpu.prof"])
    defined = re.findall(r"^c?fn=\((\d+)\) (.+)$", text, re.M)
    ids = [int(i) for i, _ in defined]
    assert ids == list(range(1, len(ids) + 1)), "each name is defined once, numbered in order"
    names = [n for _, n in defined]
    assert len(names) == len(set(names))
    for ref in re.findall(r"^c?fn=\((\d+)\)$", text, re.M):
        assert int(ref) <= len(ids)
