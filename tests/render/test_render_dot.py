"""--dot against google-pprof's PrintDot, compared structurally (nodes,
numbers, font sizes, edges, weights, legend), and the pictures graphviz
draws from it (--svg/--pdf/--ps/--png/--gif) and the viewers."""
import json
import os
import re
import shutil
import tempfile

import pytest

from helpers import GOOGLE_PPROF, ROOT, DotGraph, google_all, localize, ours, render

pytestmark = pytest.mark.usefixtures("localized")


@pytest.fixture(scope="module")
def localized():
    return localize()


def _reference_cases():
    with open(os.path.join(ROOT, "fixtures", "cases.json")) as f:
        # Plain --dot cases; those with more options (--heapcheck, --base)
        # are compared as text by tests/cli/test_differential.py.
        return [c for c in json.load(f) if [a for a in c["args"] if a.startswith("-")] == ["--dot"]]


@pytest.mark.parametrize("case", _reference_cases(), ids=lambda c: c["id"])
def test_dot_matches_recorded_reference(case):
    files = [a for a in case["args"] if not a.startswith("-")]
    text, _ = render("dot", {}, files[0], files[1:])
    with open(os.path.join(ROOT, case["expected"])) as f:
        expected = DotGraph(f.read())
    got = DotGraph(text)
    assert got.nodes, "no nodes parsed"
    assert got.as_dict() == expected.as_dict()


CHAIN = ["fixtures/bin/chain", "fixtures/local/profiles/chain.cpu.prof"]
CHAIN2 = "fixtures/local/profiles/chain.cpu.2.prof"
CXX = ["fixtures/bin/cxx", "fixtures/local/profiles/cxx.cpu.prof"]
THREADS = ["fixtures/bin/threads", "fixtures/local/profiles/threads.cpu.prof"]
ALLOC = ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.heap"]
GROWTH = ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.growth.heap"]

# name: (google-pprof options, the same as report.Options fields, program + profiles)
LIVE = {
    "inuse_objects": (["--inuse_objects"], {"sample_index": "inuse_objects"}, ALLOC),
    "alloc_space": (["--alloc_space"], {"sample_index": "alloc_space"}, ALLOC),
    "alloc_objects": (["--alloc_objects"], {"sample_index": "alloc_objects"}, ALLOC),
    "show_bytes": (["--show_bytes"], {"show_bytes": True}, ALLOC),
    "growth": ([], {}, GROWTH),
    "focus": (["--focus=b_heavy"], {"focus": "b_heavy"}, CHAIN),
    "ignore": (["--ignore=b_light"], {"ignore": "b_light"}, CHAIN),
    "lines": (["--lines"], {"granularity": "lines"}, CXX),
    "files": (["--files"], {"granularity": "files"}, CXX),
    "addresses": (["--addresses"], {"granularity": "addresses"}, CHAIN),
    "nodecount": (["--nodecount=4"], {"nodecount": 4}, THREADS),
    "nodefraction": (["--nodefraction=0.2"], {"nodefraction": 0.2}, THREADS),
    "edgefraction": (["--edgefraction=0.3"], {"edgefraction": 0.3}, CXX),
    "maxdegree": (["--maxdegree=1", "--edgefraction=0"], {"maxdegree": 1, "edgefraction": 0.0}, THREADS),
    "base": (["--base", CHAIN2], {"base": os.path.join(ROOT, CHAIN2)}, CHAIN),
    "base_drop_negative": (["--base", CHAIN2, "--drop_negative"],
                           {"base": os.path.join(ROOT, CHAIN2), "drop_negative": True}, CHAIN),
    "two_profiles": ([], {}, CHAIN + [CHAIN2]),
}


@pytest.fixture(scope="module")
def google_runs(localized):
    return google_all("--dot", LIVE)


@pytest.mark.skipif(GOOGLE_PPROF is None and not os.environ.get("CI"),
                    reason="google-pprof is not installed (CI installs it and runs this)")
@pytest.mark.parametrize("name", sorted(LIVE))
def test_dot_matches_google_pprof_live(name, google_runs):
    want_out, want_err, want_rc = google_runs[name]
    assert want_rc == 0, want_err.decode()
    _flags, options, files = LIVE[name]
    got, prepared = render("dot", options, files[0], files[1:])
    assert DotGraph(got).as_dict() == DotGraph(want_out.decode()).as_dict()
    # The thresholds line pprof prints on stderr.
    want_notes = [l for l in want_err.decode().splitlines() if l.startswith("Dropping")]
    got_notes = [l for l in prepared.notes if l.startswith("Dropping")]
    assert got_notes == want_notes


def test_no_nodes_is_one_line_error():
    proc = ours(["--dot", "--focus=no_such_function_anywhere"] + CHAIN)
    assert proc.returncode != 0
    assert proc.stderr.decode().strip().splitlines()[-1] == "pprof: No nodes to print"
    assert proc.stdout == b""


MAGIC = {
    "svg": b"<?xml",
    "pdf": b"%PDF-",
    "ps": b"%!PS-Adobe",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif": b"GIF8",
}


@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_pictures_through_graphviz(fmt):
    data, _ = render(fmt, {}, ALLOC[0], ALLOC[1:])
    assert isinstance(data, bytes)
    assert data.startswith(MAGIC[fmt])
    again, _ = render(fmt, {}, ALLOC[0], ALLOC[1:])
    assert again == data, "output differs between runs"


def test_svg_is_pannable_and_zoomable():
    data, _ = render("svg", {}, CHAIN[0], CHAIN[1:])
    svg = data.decode()
    assert re.search(r'<svg width="100%" height="100%"', svg)
    # The viewBox stays: the picture opens fitted to the window.
    assert re.search(r'viewBox="0\.00 0\.00 [\d.]+ [\d.]+"', svg.split("<script", 1)[0])
    assert '<g id="viewport" transform="translate(0,0)">' in svg
    assert svg.index("<script") < svg.index('<g id="viewport"') < svg.index('<g id="graph0"')
    assert "addEventListener(\"wheel\"" in svg and "mousemove" in svg
    # The script is the web UI's pan/zoom file, copied whole (the file has
    # nothing else to load it from), then called on the document.
    from pprof_py.render.webscripts import static_script
    script = svg[svg.index("<![CDATA[\n") + len("<![CDATA[\n"):svg.index("]]></script>")]
    assert script.startswith(static_script("panzoom.js"))
    assert script[len(static_script("panzoom.js")):].startswith("pprofPanZoom(document.documentElement")
    assert svg.rstrip().endswith("</g>\n</svg>")
    # Well-formed XML, and the node labels survive.
    import xml.dom.minidom
    doc = xml.dom.minidom.parseString(data)
    texts = {t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild}
    assert "b_heavy" in texts and "spin" in texts


def _env_without_dot():
    """PATH with every directory that holds `dot` replaced by a copy
    without it (python3 must stay reachable)."""
    tmp = tempfile.mkdtemp(prefix="nodot.")
    parts = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and os.path.exists(os.path.join(d, "dot")):
            shadow = os.path.join(tmp, str(len(parts)))
            os.mkdir(shadow)
            for name in os.listdir(d):
                if name != "dot":
                    try:
                        os.symlink(os.path.join(d, name), os.path.join(shadow, name))
                    except OSError:
                        pass
            parts.append(shadow)
        else:
            parts.append(d)
    env = dict(os.environ, PATH=os.pathsep.join(parts))
    return env, tmp


@pytest.mark.parametrize("fmt", ["svg", "web"])
def test_missing_dot_is_one_line_error(fmt):
    env, tmp = _env_without_dot()
    try:
        proc = ours(["--" + fmt] + CHAIN, env=env)
    finally:
        shutil.rmtree(tmp)
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "dot" in lines[0] and "apt-get install graphviz" in lines[0]
    assert proc.stdout == b""


@pytest.mark.parametrize("flag,ext", [("web", "svg"), ("gv", "ps"), ("evince", "pdf")])
def test_viewers_without_display_write_a_file(flag, ext):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = ours(["--" + flag] + CHAIN, env=env)
    assert proc.returncode != 0
    line = proc.stderr.decode().strip().splitlines()[-1]
    assert "no display" in line
    path = re.search(r"(/\S+\.%s)$" % ext, line).group(1)
    try:
        with open(path, "rb") as f:
            data = f.read()
        assert data.startswith(MAGIC[ext])
    finally:
        os.unlink(path)


def test_viewer_is_started_with_the_file(tmp_path):
    # A stand-in "xdg-open" first on PATH records what it was asked to open.
    record = tmp_path / "opened"
    fake = tmp_path / "xdg-open"
    fake.write_text("#!/bin/sh\nprintf '%%s' \"$1\" > %s\n" % record)
    fake.chmod(0o755)
    env = dict(os.environ, DISPLAY=":99", PATH=str(tmp_path) + os.pathsep + os.environ["PATH"])
    proc = ours(["--web"] + CHAIN, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    import time
    for _ in range(100):            # the viewer runs detached
        if record.exists() and record.read_text():
            break
        time.sleep(0.05)
    path = record.read_text()
    assert path.endswith(".svg") and path in proc.stderr.decode()
    try:
        with open(path, "rb") as f:
            assert b'<g id="viewport"' in f.read()
    finally:
        os.unlink(path)


def test_symbolized_profile_names_its_program(tmp_path):
    raw, _ = render("raw", {}, CHAIN[0], CHAIN[1:])
    path = tmp_path / "chain.raw"
    path.write_bytes(raw)
    text, _ = render("dot", {}, None, [str(path)])
    graph = DotGraph(text)
    assert graph.title.startswith(CHAIN[0] + "; ")
    assert graph.legend[0] == CHAIN[0]
    direct, _ = render("dot", {}, CHAIN[0], CHAIN[1:])
    assert graph.nodes == DotGraph(direct).nodes
