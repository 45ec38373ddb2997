"""Differential tests: our `pprof` against gperftools' google-pprof.

Every case in fixtures/cases.json names the exact arguments given to
google-pprof (paths relative to the repository root, which is the current
directory of every run) and the file holding google-pprof's stdout.

* test_ours_matches_reference runs `python -m pprof_py ARGS` and requires
  byte-identical stdout.  Every case names its group of output modes
  ("output": text, graphs or listings).
* test_reference_is_fresh_google_pprof re-runs google-pprof (when
  installed) on every case and requires its stdout to equal the committed
  reference, which catches stale expected files and environment drift.
  A case may give google-pprof other arguments ("reference_args"): cases
  that sum or subtract two runs of a program pass it the second run
  rewritten into the first run's address layout (fixtures/align_runs.py),
  because google-pprof names every profile with the first one's memory
  map and we name each run with its own.

A few output modes of google-pprof have no defined order (Perl hash order,
different on every run); cases for them carry a "compare" mode and are
compared after normalization by fixtures/compare_output.py.  The freshness
test runs google-pprof with Perl's default per-process hash randomization,
so it also checks that those normalizations absorb every ordering.

Profiles are read from fixtures/local/, a copy of the committed profiles
whose fixture-binary paths are made absolute for this checkout (see
fixtures/relocate_maps.py); it is (re)written once per test session.
"""

import difflib
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "fixtures")
CASES_FILE = os.path.join(FIXTURES, "cases.json")

# The groups of output modes a case may belong to.
#   text:     --text and its variants
#   graphs:   --collapsed and --dot
#   listings: --list and --disasm
OUTPUT_GROUPS = {"text", "graphs", "listings"}

TIMEOUT = 300


def _load_cases():
    with open(CASES_FILE) as f:
        return json.load(f)


CASES = _load_cases()


def _ours_params():
    params = []
    for case in CASES:
        params.append(pytest.param(case, id=case["id"]))
    return params


sys.path.insert(0, FIXTURES)
try:
    import compare_output
    import relocate_maps
finally:
    sys.path.remove(FIXTURES)


@pytest.fixture(scope="session", autouse=True)
def localized_profiles():
    return relocate_maps.localize(ROOT)


def _read_expected(case):
    with open(os.path.join(ROOT, case["expected"]), "rb") as f:
        return f.read()


def _run(cmd):
    return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=TIMEOUT)


def _assert_same(case, who, proc):
    expected = _read_expected(case)
    want_rc = case.get("returncode", 0)
    mode = case.get("compare", "exact")
    if compare_output.same(mode, expected, proc.stdout) and proc.returncode == want_rc:
        return
    exp_text = expected.decode("utf-8", errors="replace").splitlines(True)
    got_text = proc.stdout.decode("utf-8", errors="replace").splitlines(True)
    diff = "".join(difflib.unified_diff(
        exp_text, got_text, fromfile=case["expected"], tofile="%s stdout" % who))
    if not diff and proc.stdout != expected:
        diff = "(outputs differ only in bytes not shown by a line diff, " \
               "e.g. a trailing newline)\n"
    if mode != "exact":
        diff = "(compared with mode %r; raw diff below)\n%s" % (mode, diff)
    stderr = proc.stderr.decode("utf-8", errors="replace")
    pytest.fail(
        "%s: %s\nargs: %s\nexit status %d (expected %d)\n%s\n--- stderr ---\n%s"
        % (case["id"], who, " ".join(case["args"]), proc.returncode, want_rc,
           diff, stderr[-4000:]),
        pytrace=False)


@pytest.mark.parametrize("case", _ours_params())
def test_ours_matches_reference(case):
    proc = _run([sys.executable, "-m", "pprof_py"] + case["args"])
    if "--collapsed" in case["args"]:
        _assert_same_collapsed(case, proc)
        return
    _assert_same(case, "pprof_py", proc)


def _merged_collapsed(data):
    """google-pprof prints one line per address stack, in hash order; several
    can name the same function stack.  We print each function stack once,
    sorted: compare {stack: summed count}."""
    merged = {}
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        if line:
            stack, count = line.rsplit(" ", 1)
            merged[stack] = merged.get(stack, 0) + int(count)
    return merged


def _assert_same_collapsed(case, proc):
    assert proc.returncode == case.get("returncode", 0), proc.stderr.decode("utf-8", "replace")
    lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    assert lines == sorted(set(lines), key=lambda s: s.encode("utf-8", "surrogateescape")), \
        "our --collapsed output must be merged and sorted"
    expected = _merged_collapsed(_read_expected(case))
    got = _merged_collapsed(proc.stdout)
    diff = sorted(set(expected.items()) ^ set(got.items()))
    assert got == expected, "%s: stacks differ (reference vs ours):\n%s" % (
        case["id"], "\n".join("%s %s" % kv for kv in diff))


@pytest.mark.skipif(shutil.which("google-pprof") is None and not os.environ.get("CI"),
                    reason="google-pprof is not installed (CI installs it and runs this)")
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_reference_is_fresh_google_pprof(case):
    # Cases combining two runs give google-pprof the second run aligned to
    # the first's layout (fixtures/align_runs.py); ours reads the real one.
    proc = _run([shutil.which("google-pprof")] + case.get("reference_args", case["args"]))
    _assert_same(case, "google-pprof", proc)


def test_manifest_is_consistent():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for case in CASES:
        assert set(case) <= {"id", "args", "expected", "output", "returncode",
                             "compare", "reference_args"}, case
        assert case.get("compare", "exact") in compare_output.MODES, case["id"]
        assert case["output"] in OUTPUT_GROUPS, case["id"]
        assert case["expected"] == "fixtures/expected/%s.txt" % case["id"]
        assert os.path.isfile(os.path.join(ROOT, case["expected"])), case["expected"]
        for arg in case["args"]:
            if not arg.startswith("-"):
                # Inputs are repo-relative; localized ones are regenerated
                # from their committed originals.
                assert not os.path.isabs(arg), (case["id"], arg)
                original = arg.replace("fixtures/local/", "fixtures/", 1)
                assert os.path.exists(os.path.join(ROOT, original)), (case["id"], arg)
