"""Shared helpers for the picture/interchange renderer tests
(tests/test_render_*.py): run our pprof or google-pprof, and parse DOT."""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
GOOGLE_PPROF = shutil.which("google-pprof")

sys.path.insert(0, FIXTURES)
try:
    import relocate_maps
finally:
    sys.path.remove(FIXTURES)


def localize():
    """fixtures/local/: the committed profiles with paths for this checkout."""
    return relocate_maps.localize(ROOT)


def run(cmd, env=None, timeout=120):
    return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=env)


def ours(args, env=None):
    return run([sys.executable, "-m", "pprof_py"] + list(args), env=env)


def google(args):
    return run([GOOGLE_PPROF] + list(args))


def render(flag, args_options, program, profiles):
    """Render in-process (fast): `args_options` are report.Options fields."""
    from pprof_py.render import by_name
    from pprof_py.report import Options, prepare
    options = Options(**args_options)
    renderer = by_name(flag)
    if renderer.granularity:
        options.granularity = renderer.granularity
    cwd = os.getcwd()
    os.chdir(ROOT)          # paths as the CLI tests give them (relative)
    try:
        prepared = prepare(program, list(profiles), options, [])
        return renderer.render(prepared), prepared
    finally:
        os.chdir(cwd)


_NODE = re.compile(r'^N(\d+) \[label="(.*)",shape=box,fontsize=([\d.]+)\];$')
_LABEL = re.compile(r'^(.*)\\n(-?[\d.]+) \(([^)]*)\)(?:\\rof (-?[\d.]+) \(([^)]*)\))?\\r$')
_EDGE = re.compile(r'^N(\d+) -> N(\d+) \[label=([^,]+), weight=(\d+), style="([^"]+)"\];$')
_TITLE = re.compile(r'^digraph "(.*)" \{$')
_LEGEND = re.compile(r'^Legend \[shape=box,fontsize=24,shape=plaintext,label="(.*)"\];$')


class DotGraph:
    """The parts of a pprof DOT graph: title, legend, nodes by name (with
    numbers, values and font size), edges by (caller name, callee name)."""

    def __init__(self, text):
        self.title = None
        self.legend = None
        self.nodes = {}          # name -> (flat, flat%, cum, cum%, fontsize)
        self.order = []          # node names in N1, N2, ... order
        self.edges = {}          # (src name, dst name) -> (label, weight, style)
        self.other = []
        numbers = {}
        for line in text.splitlines():
            m = _TITLE.match(line)
            if m:
                self.title = m.group(1)
                continue
            m = _LEGEND.match(line)
            if m:
                self.legend = m.group(1).split("\\l")
                continue
            m = _NODE.match(line)
            if m:
                label = _LABEL.match(m.group(2))
                assert label, "unparsable node label: %r" % line
                name, flat, flat_pct, cum, cum_pct = label.groups()
                numbers[m.group(1)] = name
                self.order.append(name)
                self.nodes[name] = (flat, flat_pct, cum if cum is not None else flat,
                                    cum_pct if cum_pct is not None else flat_pct, float(m.group(3)))
                continue
            m = _EDGE.match(line)
            if m:
                key = (numbers[m.group(1)], numbers[m.group(2)])
                assert key not in self.edges, "duplicate edge %r" % (key,)
                self.edges[key] = (m.group(3), int(m.group(4)), m.group(5))
                continue
            self.other.append(line)

    def as_dict(self):
        return {"title": self.title, "legend": self.legend, "nodes": self.nodes,
                "order": self.order, "edges": self.edges, "other": self.other}
