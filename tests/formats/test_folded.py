"""Folded stacks as an input format (pprof_py/formats/folded.py): output of
other profilers ("a;b;c 123" lines) works with every report."""
import os

import pytest

from helpers import DATA, localize, ours, render

SAMPLE = os.path.join(DATA, "sample.folded")
CHAIN = ["fixtures/bin/chain", "fixtures/local/profiles/chain.cpu.prof"]


@pytest.fixture(scope="module", autouse=True)
def localized():
    return localize()


def test_sniffed_and_read():
    from pprof_py.formats import read_profile
    profile = read_profile(SAMPLE)
    assert profile.kind == "folded"
    assert profile.named_by == "folded"
    assert sorted({loc.names[0] for loc in profile.locations}) == sorted({
        "main", "parse_arguments", "load_configuration", "read_file", "parse_json", "tokenize",
        "build_tree", "run_event_loop", "handle_request", "render_template", "escape_html",
        "query_database", "std::vector<int>::push_back(int const&)", "recurse",
        "idle_wait_for_next_event_with_a_rather_long_function_name",
        "write_response (server.py:120)", "background_thread", "flush_logs", "write"})
    assert profile.values.sum() == 150


def test_text_report_uses_names_as_written():
    text, prepared = render("text", {}, None, [SAMPLE])
    assert text.splitlines()[0] == "Total: 150 samples"
    assert prepared.flat["escape_html"] == 31
    assert prepared.flat["write_response (server.py:120)"] == 5
    assert prepared.flat["std::vector<int>::push_back(int const&)"] == 7
    assert prepared.cum["handle_request"] == 73
    assert prepared.cum["recurse"] == 16           # recursion counts once
    assert prepared.cum["main"] == 142


def test_cli_flame_and_text_from_folded_file():
    flame = ours(["--flame", SAMPLE])
    assert flame.returncode == 0, flame.stderr.decode()
    assert flame.stdout.startswith(b"<?xml") and b"escape_html" in flame.stdout
    text = ours(["--text", SAMPLE])
    assert text.returncode == 0 and text.stdout.startswith(b"Total: 150 samples\n")


def test_round_trip_of_our_collapsed_output(tmp_path):
    folded, original = render("collapsed", {}, CHAIN[0], CHAIN[1:])
    path = tmp_path / "chain.folded"
    path.write_text(folded)
    _, back = render("text", {}, None, [str(path)])
    # pprof's "name<address>" tags are shortened back to the function names.
    assert back.flat == original.flat
    assert back.cum == original.cum
    again, _ = render("collapsed", {}, None, [str(path)])
    assert again == folded


def test_same_name_same_address_across_files(tmp_path):
    a = tmp_path / "a.folded"
    b = tmp_path / "b.folded"
    a.write_text("main;work 10\nmain;idle 5\n")
    b.write_text("main;other 1\nmain;work 4\n")
    _, prepared = render("text", {"base": str(b)}, None, [str(a)])
    assert prepared.flat == {"work": 6, "idle": 5, "other": -1}
    _, both = render("text", {}, None, [str(a), str(b)])
    assert both.flat == {"work": 14, "idle": 5, "other": 1}


def test_details_of_the_format(tmp_path):
    path = tmp_path / "x.folded"
    path.write_text("# comment\n\nroot;leaf with spaces 2.5\nroot;;leaf with spaces 1\nroot 3\n")
    _, prepared = render("text", {}, None, [str(path)])
    assert prepared.flat == {"leaf with spaces": 3.5, "root": 3}


def test_broken_folded_file_is_one_line_error(tmp_path):
    path = tmp_path / "bad.folded"
    path.write_text("".join("main;f%d %d\n" % (i, i) for i in range(60)) + "main;g not-a-number\n")
    proc = ours(["--text", str(path)])
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "line 61" in lines[0] and "folded" in lines[0]
