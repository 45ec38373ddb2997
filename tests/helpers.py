"""Shared test helpers: paths of the checkout, our pprof and google-pprof
run from the repository root on the localized fixture profiles, in a
subprocess or in process, and a parser for pprof's DOT graphs."""
import os
import re
import shutil
import struct
import subprocess
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
FIXTURES = os.path.join(ROOT, "fixtures")
PROFILES = "fixtures/local/profiles"
DATA = os.path.join(TESTS, "data")          # inputs made for the tests (sample.folded)
GOLDEN = os.path.join(TESTS, "golden")      # reference outputs of our own renderers
GOOGLE_PPROF = shutil.which("google-pprof")

sys.path.insert(0, FIXTURES)
try:
    import relocate_maps
finally:
    sys.path.remove(FIXTURES)


def localize():
    """fixtures/local/: the committed profiles with paths for this checkout."""
    return relocate_maps.localize(ROOT)


def pprof(args, cwd=ROOT, stdin=None, timeout=120):
    """Run `python -m pprof_py ARGS`; stdin is bytes or None."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pprof_py"] + list(args), cwd=cwd, env=env,
                          input=stdin if stdin is not None else b"",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def text(proc):
    return proc.stdout.decode("utf-8", "replace")


def err(proc):
    return proc.stderr.decode("utf-8", "replace")


def assert_one_line_error(proc, fragment):
    """A user error: non-zero exit, one line on stderr naming the problem,
    no traceback."""
    stderr = err(proc)
    assert proc.returncode != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert fragment in lines[0], stderr
    assert lines[0].startswith("pprof: "), stderr


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


def check_golden(name, data):
    """Compare `data` (str or bytes) with tests/golden/<name>.  With
    PPROF_PY_UPDATE_GOLDEN=1 the file is written instead and the test is
    skipped (so an update run never passes by comparing a file with itself)."""
    import pytest

    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    path = os.path.join(GOLDEN, name)
    if os.environ.get("PPROF_PY_UPDATE_GOLDEN") == "1":
        with open(path, "wb") as f:
            f.write(data)
        pytest.skip("wrote " + os.path.relpath(path, ROOT))
    if not os.path.exists(path):
        pytest.fail("%s is missing (run with PPROF_PY_UPDATE_GOLDEN=1 to create it)" % path)
    with open(path, "rb") as f:
        want = f.read()
    assert data == want, "%s changed (PPROF_PY_UPDATE_GOLDEN=1 to accept the new output)" % name


SECOND_CHAIN_RUN = "fixtures/local/profiles/chain.cpu.2.prof"


def aligned(args):
    """google-pprof's arguments for a case that combines the two chain runs:
    the second run rewritten into the first run's layout
    (fixtures/align_runs.py), since google-pprof names every profile with
    the first one's memory map while we name each with its own."""
    return [a.replace(SECOND_CHAIN_RUN, SECOND_CHAIN_RUN.replace(".prof", ".aligned.prof")) for a in args]


def google_all(flag, cases):
    """Run google-pprof `flag` on every {name: (flags, options, files)} case
    at once (it is slow to start): {name: (stdout, stderr, returncode)}."""
    procs = {name: subprocess.Popen([GOOGLE_PPROF, flag] + aligned(flags + files), cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL)
             for name, (flags, _opts, files) in cases.items()}
    return {name: p.communicate(timeout=120) + (p.returncode,) for name, p in procs.items()}


# ---- a stripped library (names from the nearest exported symbol) ----

STRIPPED_LIBRARY = r"""
int api_before(int x) { return x * 3 + 1; }

/* internal: not exported, so a stripped library has no name for it */
__attribute__((visibility("hidden"), noinline)) int internal_hot(int n) {
    volatile int s = 0;
    for (int i = 0; i < n; i++) s += i;
    return s;
}

int api_entry(int n) { return internal_hot(n) + api_before(n); }
"""


def _nearest_cpu_profile(path, samples, maps):
    """A gperftools CPU profile (pprof_py/formats/cpu_binary.py)."""
    words = [0, 3, 0, 10000, 0]
    for count, stack in samples:
        words += [count, len(stack), *stack]
    words += [0, 1, 0]
    path.write_bytes(struct.pack("<%dQ" % len(words), *words) + maps.encode())


def _nm_symbol(lib, name):
    for line in subprocess.run(["nm", str(lib)], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if fields[-1] == name:
            return int(fields[0], 16)
    raise AssertionError(name)


def stripped_library_profile(tmp_path, strip):
    """A CPU profile of a small library whose hot function is internal
    (hidden): stripped, its only name is the nearest exported symbol before
    it (api_before); 7 samples there under api_entry, 2 in api_entry."""
    src = tmp_path / "hot.c"
    src.write_text(STRIPPED_LIBRARY)
    lib = tmp_path / "libhot.so"
    # -O0 keeps the functions in source order: internal_hot after api_before
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, timeout=60)
    hot, entry = _nm_symbol(lib, "internal_hot"), _nm_symbol(lib, "api_entry")
    assert _nm_symbol(lib, "api_before") < hot < entry
    if strip:
        subprocess.run(["strip", "--strip-all", str(lib)], check=True, timeout=60)
    seg = [line.split() for line in subprocess.run(["readelf", "-lW", str(lib)], capture_output=True, text=True,
                                                   check=True).stdout.splitlines() if "R E" in line][0]
    offset, vaddr, size = int(seg[1], 16), int(seg[2], 16), int(seg[4], 16)
    base = 0x7f0000000000
    first, end = offset & ~0xfff, (offset + size + 0xfff) & ~0xfff
    maps = "%x-%x r-xp %08x 08:01 1 %s\n" % (base + (vaddr & ~0xfff), base + (vaddr & ~0xfff) + end - first,
                                             first, lib)
    in_hot, in_entry = base + hot + 8, base + entry + 12
    prof = tmp_path / "cpu.prof"
    _nearest_cpu_profile(prof, [(7, [in_hot, in_entry + 1]), (2, [in_entry])], maps)
    return str(prof)
