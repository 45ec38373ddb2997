"""--collapsed against google-pprof (PrintCollapsedStacks) for CPU and heap
profiles in every sample mode, with --focus/--ignore, granularities, --base
and several profiles; and --raw (PrintSymbolizedProfile) read back by our
pprof and by google-pprof."""
import os

import pytest

from helpers import GOOGLE_PPROF, google, google_all, localize, ours, render

CHAIN = ["fixtures/bin/chain", "fixtures/local/profiles/chain.cpu.prof"]
CHAIN2 = "fixtures/local/profiles/chain.cpu.2.prof"
CXX = ["fixtures/bin/cxx", "fixtures/local/profiles/cxx.cpu.prof"]
ALLOC = ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.heap"]
SAMPLED = ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.sampled.heap"]

LIVE = {
    "cpu": ([], {}, CHAIN),
    "inuse_space": ([], {}, ALLOC),
    "inuse_objects": (["--inuse_objects"], {"sample_index": "inuse_objects"}, ALLOC),
    "alloc_space": (["--alloc_space"], {"sample_index": "alloc_space"}, SAMPLED),
    "alloc_objects": (["--alloc_objects"], {"sample_index": "alloc_objects"}, SAMPLED),
    "focus": (["--focus=b_light"], {"focus": "b_light"}, CHAIN),
    "ignore": (["--ignore=churn"], {"ignore": "churn"}, ALLOC),
    "lines": (["--lines"], {"granularity": "lines"}, CXX),
    "base": (["--base", CHAIN2], {"base": CHAIN2}, CHAIN),
    "two_profiles": ([], {}, CHAIN + [CHAIN2]),
}


@pytest.fixture(scope="module")
def localized():
    return localize()


def merged(text):
    result = {}
    for line in text.splitlines():
        if line:
            stack, count = line.rsplit(" ", 1)
            result[stack] = result.get(stack, 0) + int(count)
    return result


@pytest.fixture(scope="module")
def google_runs(localized):
    return google_all("--collapsed", LIVE)


@pytest.mark.skipif(GOOGLE_PPROF is None and not os.environ.get("CI"),
                    reason="google-pprof is not installed (CI installs it and runs this)")
@pytest.mark.parametrize("name", sorted(LIVE))
def test_collapsed_matches_google_pprof(name, google_runs):
    want_out, want_err, want_rc = google_runs[name]
    assert want_rc == 0, want_err.decode()
    _flags, options, files = LIVE[name]
    got, _ = render("collapsed", options, files[0], files[1:])
    lines = got.splitlines()
    assert lines, "empty output"
    assert lines == sorted(set(lines)), "not merged and sorted"
    assert merged(got) == merged(want_out.decode())


def test_collapsed_inline_and_unknown_names(localized):
    from pprof_py.render.collapsed import name_stack
    symbols = {0x10: [("outer", "a.c:3", "outer<0000000000000001>"), ("inner", "a.c:9", "inner")],
               0x20: [("??", "b.c:7", "??")]}
    assert name_stack(symbols, 0x10, 16) == ["inner[inline]", "outer<0000000000000001>"]
    assert name_stack(symbols, 0x20, 16) == ["b.c:7"]
    assert name_stack(symbols, 0x30, 16) == ["0000000000000030"]


def test_collapsed_goes_to_stdout_via_cli(localized):
    proc = ours(["--collapsed"] + CHAIN)
    assert proc.returncode == 0, proc.stderr.decode()
    total = sum(merged(proc.stdout.decode()).values())
    text = ours(["--text"] + CHAIN).stdout.decode()
    assert text.startswith("Total: %d samples" % total)


@pytest.mark.parametrize("files,options", [(CHAIN, {}), (ALLOC, {}),
                                           (ALLOC, {"sample_index": "alloc_objects"})],
                         ids=["cpu", "heap", "heap_alloc_objects"])
def test_raw_round_trip(localized, tmp_path, files, options):
    raw, prepared = render("raw", options, files[0], files[1:])
    assert isinstance(raw, bytes)
    assert raw.startswith(b"--- symbol\nbinary=%s\n" % files[0].encode())
    again, _ = render("raw", options, files[0], files[1:])
    assert again == raw, "--raw output differs between runs"
    path = tmp_path / "profile.raw"
    path.write_bytes(raw)
    # The flat and cumulative values per function survive the round trip;
    # heap values come back as "samples" (pprof writes a CPU profile).
    back, back_prepared = render("text", {}, None, [str(path)])
    assert back_prepared.flat == prepared.flat
    assert back_prepared.cum == prepared.cum
    if GOOGLE_PPROF:
        proc = google(["--text", str(path)])
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode() == back


def test_raw_refuses_negative_counts_in_one_line(localized):
    # The second run has stacks the first lacks: subtracting the first leaves them negative.
    proc = ours(["--raw", "--base", CHAIN[1], CHAIN[0], CHAIN2])
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert lines == ["pprof: --raw cannot write negative counts (use --drop_negative with --base)"]
    ok = ours(["--raw", "--base", CHAIN[1], "--drop_negative", CHAIN[0], CHAIN2])
    assert ok.returncode == 0 and ok.stdout.startswith(b"--- symbol\n")
