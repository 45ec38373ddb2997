"""Two real runs of one PIE program, recorded under address randomization
(fixtures/profiles/cxx.cpu.prof and cxx.cpu.2.prof: the program and every
library at other addresses), summed and subtracted.

What must hold for every output: the summed report's per-key flat value is
the sum of the runs' own reports, the --base report's is the difference,
and no row is left unnamed (gperftools' pprof names the second run with the
first run's map, leaving 40 hexadecimal rows here).

"The runs' own reports" are made from the combined inputs (`run_alone`):
the names of inlined C++ frames depend on the set of addresses looked up
(we replay addr2line's stateful naming, as gperftools' pprof runs it, see
symbolize/cache.py), so a run reported on its own may call one inlined
frame differently; with one symbol table the sums are exact.  Byte-for-byte
agreement with google-pprof on the same combinations (given the second run
aligned to the first's layout) is in fixtures/cases.json (cxx.cpu.sum.*,
cxx.cpu.base.*)."""
import json
import os
import re
import subprocess
import sys

import pytest

from pprof_py.report import Options, prepare

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "fixtures"))
from relocate_maps import localize  # noqa: E402

PROG = "fixtures/bin/cxx"
RUN1 = "fixtures/local/profiles/cxx.cpu.prof"
RUN2 = "fixtures/local/profiles/cxx.cpu.2.prof"
HEX = re.compile(r"^(0x)?[0-9a-f]{8,16}\b")


@pytest.fixture(scope="module", autouse=True)
def localized():
    cwd = os.getcwd()
    os.chdir(ROOT)
    localize()
    yield
    os.chdir(cwd)


def report(profiles, **options):
    return prepare(PROG, profiles, Options(**options))


def run_alone(combined, index, **options):
    """Run `index` of a combined report, reported alone with the combined
    symbol table (report.analyze on a one-profile view of its inputs)."""
    import dataclasses
    from pprof_py.report import analyze

    inputs = combined.inputs
    everything = inputs.profiles + ([inputs.base] if inputs.base is not None else [])
    view = dataclasses.replace(inputs, profiles=[everything[index]], base=None,
                               addresses=[inputs.addresses[index]], _stacks={})
    return analyze(view, dataclasses.replace(combined.options, base=None, **options))


def add(a, b, sign=1):
    result = dict(a)
    for k, v in b.items():
        result[k] = result.get(k, 0) + sign * v
    return {k: v for k, v in result.items() if v}


def nonzero(d):
    return {k: v for k, v in d.items() if v}


def test_the_runs_really_have_different_layouts():
    one, two = report([RUN1]), report([RUN2])
    main1 = [m for m in one.main.mappings if m.path.endswith("/cxx")][0]
    main2 = [m for m in two.main.mappings if m.path.endswith("/cxx")][0]
    assert main1.start != main2.start


@pytest.mark.parametrize("granularity", ["functions", "lines", "addresses", "files"])
def test_sum_and_difference_per_key(granularity):
    both = report([RUN1, RUN2], granularity=granularity)
    one, two = run_alone(both, 0), run_alone(both, 1)
    diff = report([RUN2], granularity=granularity, base=RUN1)
    if granularity != "addresses":      # (addresses are shown in the first profile's layout)
        assert run_alone(diff, 0).flat == two.flat and run_alone(diff, 1).flat == one.flat
    assert both.total == one.total + two.total == report([RUN1]).total + report([RUN2]).total
    assert diff.total == two.total - one.total
    if granularity == "addresses":
        # Keys carry the address, in the first profile's layout: compare
        # what the address names (function and line).
        def strip(d):
            out = {}
            for k, v in d.items():
                name = k.split(" ", 1)[1]
                out[name] = out.get(name, 0) + v
            return out
        assert nonzero(strip(both.flat)) == add(strip(one.flat), strip(two.flat))
        assert nonzero(strip(diff.flat)) == add(strip(two.flat), strip(one.flat), -1)
    else:
        assert nonzero(both.flat) == add(one.flat, two.flat)
        assert nonzero(diff.flat) == add(two.flat, one.flat, -1)
    for r in (both, diff):
        # (--files shows frames without a file, like _start, by address.)
        if granularity in ("functions", "lines"):
            assert [k for k in list(r.flat) + list(r.cum) if HEX.match(k)] == []
        if granularity == "addresses":
            assert all(" " in k for k in r.flat)


def _pprof(*args):
    proc = subprocess.run([sys.executable, "-m", "pprof_py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return proc


def test_markdown_and_collapsed_sum_per_function():
    """The CLI outputs show the combined report's numbers: --markdown's rows
    are its flat values, --collapsed's stacks sum to the runs' stacks."""
    both = report([RUN1, RUN2])
    rows = {}
    for line in _pprof("--markdown", "--nodecount=1000", PROG, RUN1, RUN2).stdout.splitlines():
        m = re.match(r"^\| (-?\d+) \|.*\| `(.*)` \|$", line)
        if m:
            rows[m.group(2)] = int(m.group(1))
    assert rows and nonzero(rows) == nonzero(both.flat)
    assert nonzero(rows) == add(run_alone(both, 0).flat, run_alone(both, 1).flat)

    def collapsed(text):
        out = {}
        for line in text.splitlines():
            stack, value = line.rsplit(" ", 1)
            out[stack] = out.get(stack, 0) + int(value)
        return out

    c12 = collapsed(_pprof("--collapsed", PROG, RUN1, RUN2).stdout)
    assert sum(c12.values()) == both.total
    assert not any(HEX.match(frame) for stack in c12 for frame in stack.split(";"))
    # Leaf names of the folded stacks carry the same totals as the report.
    leaf = {}
    for stack, value in c12.items():
        leaf[stack] = value
    assert sum(leaf.values()) == sum(both.flat.values())


def test_flame_graph_sums_and_differences():
    from pprof_py.render.flame import _merged_stacks

    def leaves(r):
        out = {}
        for keys, (width, delta) in _merged_stacks(r).items():
            out[keys] = out.get(keys, 0) + width
        return nonzero(out)

    both = report([RUN1, RUN2])
    assert leaves(both) == add(leaves(run_alone(both, 0)), leaves(run_alone(both, 1)))
    diff = report([RUN2], base=RUN1)
    deltas = {}
    for keys, (width, delta) in _merged_stacks(diff).items():
        # width is the new run's value, delta new minus base.
        deltas[keys] = delta
    assert nonzero(deltas) == add(leaves(run_alone(diff, 0)), leaves(run_alone(diff, 1)), -1)
    assert not any(HEX.match(k) for keys in deltas for k in keys)


def test_gate_and_markdown_base_name_the_same_functions():
    """--fail-over and the --markdown --base report come from the same
    pipeline: the gate's old and new shares are each run's own shares, and
    every function it flags is a named row of the markdown report."""
    gate = _pprof("--text", "--base=" + RUN1, "--fail-over=1%", PROG, RUN2)
    assert gate.returncode == 1
    flagged = re.findall(r"^  (.*): ([\d.]+)% -> ([\d.]+)% \(\+[\d.]+\)$", gate.stderr, re.M)
    assert flagged
    diff = report([RUN2], base=RUN1)

    def shares(r):
        return {k: v * 100.0 / r.total for k, v in r.flat.items()}

    new, old = shares(run_alone(diff, 0)), shares(run_alone(diff, 1))
    markdown = _pprof("--markdown", "--nodecount=1000", "--base=" + RUN1, PROG, RUN2).stdout
    for name, o, n in flagged:
        assert abs(old.get(name, 0.0) - float(o)) < 0.051
        assert abs(new.get(name, 0.0) - float(n)) < 0.051
        assert "`%s`" % name in markdown
        assert not HEX.match(name)
