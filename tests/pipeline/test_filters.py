"""The filter stage on small hand-made address profiles (pprof_py/filter.py),
and the pipeline's refusals (report.py)."""
import os
import re
import subprocess
import sys

from pprof_py import filter as filters
from pprof_py.model import Frame

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def frames(*names):
    return tuple(Frame(n, "f.c:1", n) for n in names)


# addresses: 1 leaf, 2 mid (with an inlined callee), 3 main, 4 unnamed
SYMBOLS = {1: frames("leaf"), 2: frames("mid", "helper"), 3: frames("main")}
PROFILE = {(1, 2, 3): 5, (2, 3): 2, (4, 3): 1}


def test_focus_and_ignore_keep_or_drop_whole_stacks():
    assert filters.focus_profile(PROFILE, SYMBOLS, re.compile("^leaf$"), 16) == {(1, 2, 3): 5}
    assert filters.ignore_profile(PROFILE, SYMBOLS, re.compile("helper"), 16) == {(4, 3): 1}
    # An unnamed location matches by its hexadecimal address.
    assert filters.focus_profile(PROFILE, SYMBOLS, re.compile("0004$"), 16) == {(4, 3): 1}


def test_hide_drops_frames_and_locations():
    stacks, symbols = filters.hide_show(PROFILE, SYMBOLS, re.compile("^helper$"), None, 16)
    assert stacks == PROFILE                      # mid still has a frame left
    assert symbols[2] == frames("mid")
    stacks, symbols = filters.hide_show(PROFILE, SYMBOLS, re.compile("^(mid|helper)$"), None, 16)
    assert stacks == {(1, 3): 5, (3,): 2, (4, 3): 1}
    assert 2 not in symbols


def test_show_keeps_only_matching_frames():
    stacks, symbols = filters.hide_show(PROFILE, SYMBOLS, None, re.compile("^(leaf|main)$"), 16)
    assert stacks == {(1, 3): 5, (3,): 3}
    assert set(symbols) == {1, 3}


def test_show_from_cuts_callers_and_drops_unmatched_stacks():
    # Stacks are leaf first; "above" means toward main.
    assert filters.show_from(PROFILE, SYMBOLS, re.compile("^mid$"), 16) == {(1, 2): 5, (2,): 2}
    assert filters.show_from(PROFILE, SYMBOLS, re.compile("^nothing$"), 16) == {}


def test_subtraction_and_drop_negative():
    a, b = {(1,): 5, (2,): 1}, {(1,): 2, (2,): 3, (3,): 1}
    assert filters.subtract_profile(a, b) == {(1,): 3, (2,): -2, (3,): -1}
    assert filters.subtract_profile(a, b, drop_negative=True) == {(1,): 3, (2,): 0}


def _pprof(*args):
    return subprocess.run([sys.executable, "-m", "pprof_py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_profiles_of_different_kinds_are_refused():
    proc = _pprof("--text", "fixtures/bin/alloc", "fixtures/profiles/alloc.heap",
                  "fixtures/profiles/chain.cpu.prof")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "pprof: cannot combine fixtures/profiles/alloc.heap (a heap profile) with "
        "fixtures/profiles/chain.cpu.prof (a CPU profile): profiles of different kinds"]
    proc = _pprof("--text", "--base=fixtures/profiles/alloc.heap", "fixtures/bin/chain",
                  "fixtures/profiles/chain.cpu.prof")
    assert proc.returncode != 0 and "profiles of different kinds" in proc.stderr


def test_hide_show_show_from_on_the_command_line():
    base = ["fixtures/bin/chain", "fixtures/profiles/chain.cpu.prof"]
    shown = _pprof("--text", "--show=^(spin|main)$", *base).stdout
    names = [line.split()[-1] for line in shown.splitlines()[1:]]
    assert sorted(names) == ["main", "spin"]
    hidden = _pprof("--text", "--hide=^b_", *base).stdout
    assert "b_heavy" not in hidden and "b_light" not in hidden and "spin" in hidden
    cut = _pprof("--text", "--show_from=^a$", *base).stdout
    assert "main" not in cut and " a\n" in cut
    bad = _pprof("--text", "--hide=(", *base)
    assert bad.returncode != 0 and "bad --hide regular expression" in bad.stderr
