"""Hostile frame names cannot inject into any output:
DOT labels are escaped completely, SVG/HTML are well-formed XML and JSON is
strict for any name or number, and control characters reach a terminal
only as `cat -v` shows them."""
import json
import os
import pty
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from hardening.helpers import assert_clean_error, assert_report, pprof, pprof_forked

# A name that closes the DOT label and adds a javascript: URL to the node.
EVIL = 'evil\\"]Z[label=<X>,URL=<javascript:alert(document.domain)>]//'
# Everything else a name may hold: quotes, backslash escapes dot knows,
# HTML-like brackets, ampersands, terminal escapes, NUL and DEL, a C1 CSI,
# invalid UTF-8 (a Latin-1 byte, a lone continuation byte), a noncharacter.
# (No ";" and no "--" in them: those separate frames in folded input.)
HOSTILE = [
    EVIL.encode(),
    b'quote"and\\back\\nslash\\N\\G\\L\\l\\r',
    b"<b>&amp</b> ]]> <!- ->",
    b"pwned-title\x07\x1b[2J\x1b[31mred",
    b"nul\x00del\x7fbell\x07",
    "c1-csi\u009b31m".encode(),
    b"latin1-\xe9-cont-\x80",
    "nonchar-\ufffe".encode(),
]


def _folded(tmp_path, names=HOSTILE):
    lines = [b"main;" + name + b" %d" % (i + 1) for i, name in enumerate(names)]
    lines.append(b"main;plain 5")
    path = tmp_path / "hostile.folded"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _svg_attributes(data):
    root = ET.fromstring(data)      # raises on anything not well-formed
    for element in root.iter():
        for name, value in element.attrib.items():
            yield element.tag, name, value


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")


def test_dot_source_keeps_each_name_inside_its_label(tmp_path):
    out = assert_report(pprof_forked(["--dot", "--nodefraction=0", "--edgefraction=0", _folded(tmp_path)]))
    text = out.decode("utf-8")          # valid UTF-8, undecodable bytes shown as M-x
    node_lines = [line for line in text.splitlines() if re.match(r'N\d+ \[label="', line)]
    assert len(node_lines) == len(HOSTILE) + 2
    for line in node_lines:
        # Exactly one label attribute, and nothing after the shape list.
        assert line.count(",shape=box,fontsize=") == 1, line
        assert line.endswith("];"), line
    assert "URL" not in "".join(line.split('label="', 1)[0] for line in node_lines)
    assert 'evil\\\\\\"]Z[label=<X>,URL=<javascript:alert(document.domain)>]//' in text
    assert "\x1b" not in text and "\x00" not in text and "\x7f" not in text


@needs_dot
def test_svg_has_no_javascript_url_and_dot_accepts_every_name(tmp_path):
    proc = pprof_forked(["--svg", "--nodefraction=0", "--edgefraction=0", _folded(tmp_path)])
    data = assert_report(proc)
    assert b"Warning" not in proc.stderr and b"Error" not in proc.stderr, proc.stderr
    for tag, name, value in _svg_attributes(data):
        assert "javascript:" not in value.lower(), (tag, name, value)
        assert not name.endswith("href") or value.startswith("#"), (tag, name, value)
    root = ET.fromstring(data)
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert 'evil\\"]Z[label=<X>,URL=<javascript:alert(document.domain)>]//' in texts
    assert "pwned-title^G^[[2J^[[31mred" in texts


def test_flame_graph_is_well_formed_xml_for_any_name(tmp_path):
    data = assert_report(pprof_forked(["--flame", _folded(tmp_path)]))
    root = ET.fromstring(data)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("latin1-M-i-cont-M-^@\n") for t in titles), titles
    assert any(t.startswith("nul^@del^?bell^G\n") for t in titles), titles
    assert any(t.startswith("c1-csiM-^[31m\n") for t in titles), titles


def test_json_is_strict_for_any_name(tmp_path):
    data = assert_report(pprof_forked(["--json", "--stacks", _folded(tmp_path)]))
    text = data.decode("utf-8")         # strict: raises on invalid UTF-8

    def no_constants(name):
        raise AssertionError(f"not JSON: {name}")
    doc = json.loads(text, parse_constant=no_constants)
    names = {row["name"] for row in doc["rows"]}
    assert "latin1-\ufffd-cont-\ufffd" in names
    assert "pwned-title\x07\x1b[2J\x1b[31mred" in names     # escaped by JSON itself
    assert "\\u001b" in text


def test_json_never_writes_nan_or_infinity(tmp_path):
    # 1e308 + 1e308 overflows to inf in the folded reader's float sum.
    path = tmp_path / "huge.folded"
    path.write_bytes(b"main;a 1" + b"0" * 308 + b"\nmain;b 1" + b"0" * 308 + b"\n")
    proc = pprof_forked(["--json", path])
    if proc.returncode == 0:
        json.loads(proc.stdout, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))
    else:
        assert_clean_error(proc)


def _on_terminal(args):
    """Run pprof with stdout on a pseudo-terminal; what the terminal got."""
    master, slave = pty.openpty()
    try:
        proc = pprof(args, stdout=slave)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        return proc, b"".join(chunks)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)


def test_terminal_gets_control_characters_as_cat_v_shows_them(tmp_path):
    path = _folded(tmp_path)
    proc, seen = _on_terminal(["--text", path])
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in seen and b"\x07" not in seen and b"\x00" not in seen
    assert b"\xc2\x9b" not in seen and b"\xe9" not in seen
    assert b"pwned-title^G^[[2J^[[31mred" in seen
    assert b"latin1-M-i-cont-M-^@" in seen


def test_pipe_gets_the_exact_bytes(tmp_path):
    out = assert_report(pprof_forked(["--text", _folded(tmp_path)]))
    assert b"pwned-title\x07\x1b[2J\x1b[31mred" in out
    assert b"latin1-\xe9-cont-\x80" in out


def test_shell_output_to_a_terminal_is_escaped(tmp_path):
    from pprof_py.cli.interactive import Shell
    from pprof_py.report import Options, prepare

    class Terminal:
        def __init__(self):
            self.text = []

        def isatty(self):
            return True

        def write(self, text):
            self.text.append(text)

        def flush(self):
            pass
    prepared = prepare(None, [str(_folded(tmp_path))], Options(), [])
    out, err = Terminal(), Terminal()
    shell = Shell(prepared, stdout=out, stderr=err)
    shell.run("top")
    seen = "".join(out.text)
    assert "\x1b" not in seen and "pwned-title^G^[[2J^[[31mred" in seen
