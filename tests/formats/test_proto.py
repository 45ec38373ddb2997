"""profile.proto: our profiles written with --proto read back to the same
report, Go-written profiles read, Go pprof reading ours, and broken
inputs rejected in one line."""
import gzip
import os
import re
import shutil
import subprocess

import pytest

from helpers import PROFILES, ROOT, assert_one_line_error, err, localize, pprof, text

CASES = {
    "chain": ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"],
    "cxx": ["fixtures/bin/cxx", f"{PROFILES}/cxx.cpu.prof"],
    "alloc": ["fixtures/bin/alloc", f"{PROFILES}/alloc.heap"],
}
GO_PPROF = os.path.join(ROOT, "bench", "out", "go-pprof")


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


@pytest.fixture(scope="module")
def protos(tmp_path_factory):
    out = tmp_path_factory.mktemp("proto")
    paths = {}
    for name, args in CASES.items():
        path = str(out / f"{name}.pb.gz")
        proc = pprof(["--proto", "-o", path] + args)
        assert proc.returncode == 0, err(proc)
        paths[name] = path
    return paths


@pytest.mark.parametrize("name, flags", [("chain", ["--text"]), ("chain", ["--text", "--lines"]),
                                         ("cxx", ["--text", "--cum"]), ("alloc", ["--text", "--lines"])])
def test_round_trip_gives_the_same_report(protos, name, flags):
    direct = pprof(flags + CASES[name])
    again = pprof(flags + [protos[name]])
    assert direct.returncode == 0 and again.returncode == 0, err(again)
    assert text(again) == text(direct)


def test_heap_round_trip_keeps_every_column(protos):
    for column in ("--inuse_objects", "--alloc_space"):
        assert text(pprof(["--text", column, protos["alloc"]])) == text(pprof(["--text", column] + CASES["alloc"]))


def test_output_is_gzip_and_plain_protobuf_is_read_too(protos, tmp_path):
    with open(protos["chain"], "rb") as f:
        data = f.read()
    assert data[:2] == b"\x1f\x8b"
    plain = tmp_path / "chain.pb"
    plain.write_bytes(gzip.decompress(data))
    assert text(pprof(["--text", str(plain)])) == text(pprof(["--text", protos["chain"]]))


def test_proto_to_stdout(protos):
    proc = pprof(["--proto"] + CASES["chain"])
    assert proc.returncode == 0
    from pprof_py.formats.proto import decode
    msg = decode(gzip.decompress(proc.stdout))
    strings = list(msg.string_table)
    assert [strings[t.type] for t in msg.sample_type] == ["samples", "cpu"]
    assert {strings[f.name] for f in msg.function} >= {"spin", "a", "b_heavy", "b_light", "main"}
    total = int(re.match(r"Total: (\d+)", text(pprof(["--text"] + CASES["chain"]))).group(1))
    assert sum(s.value[0] for s in msg.sample) == total


def test_hand_built_go_style_profile(tmp_path):
    """A profile as Go writes it: symbolized, no addresses, inlined frames,
    several sample types (the samples/count column is used)."""
    from pprof_py.formats.proto import messages
    M = messages()
    strings = ["", "samples", "count", "cpu", "nanoseconds", "main.work", "main.go", "main.inner",
               "runtime.main"]
    p = M["Profile"](string_table=strings, period=10000000)
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.period_type.type, p.period_type.unit = 3, 4
    p.function.add(id=1, name=5, system_name=5, filename=6)
    p.function.add(id=2, name=7, system_name=7, filename=6)
    p.function.add(id=3, name=8, system_name=8, filename=6)
    loc = p.location.add(id=1)
    loc.line.add(function_id=2, line=12)        # innermost first: inner inlined into work
    loc.line.add(function_id=1, line=30)
    p.location.add(id=2).line.add(function_id=3, line=250)
    p.sample.add(location_id=[1, 2], value=[7, 70000000])
    p.sample.add(location_id=[2], value=[3, 30000000])
    path = tmp_path / "go.pb.gz"
    path.write_bytes(gzip.compress(p.SerializeToString()))
    out = text(pprof(["--text", str(path)]))
    assert out.splitlines()[0] == "Total: 10 samples"
    rows = {line.split()[-1] if "(inline)" not in line else "main.inner (inline)": line.split()
            for line in out.splitlines()[1:]}
    assert rows["main.inner (inline)"][0] == "7"
    assert rows["runtime.main"][0] == "3" and rows["runtime.main"][3] == "10"
    lines = text(pprof(["--text", "--lines", str(path)]))
    assert "main.go:12" in lines and "main.go:30" in lines


@pytest.mark.parametrize("data, fragment", [
    (b"\x1f\x8b\x08\x00garbage", "corrupt gzip data"),
    (gzip.compress(b"\x0a\x04\x08\x01"), "not a profile"),
    (b"\x0a\xff\xff\xff\xff\x0f", "not a profile"),
])
def test_unreadable_proto_is_one_line(tmp_path, data, fragment):
    path = tmp_path / "bad.pb.gz"
    path.write_bytes(data)
    assert_one_line_error(pprof(["--text", str(path)]), fragment)


def test_proto_with_dangling_location_is_one_line(tmp_path):
    from pprof_py.formats.proto import messages
    M = messages()
    p = M["Profile"](string_table=["", "samples", "count"])
    p.sample_type.add(type=1, unit=2)
    p.sample.add(location_id=[42], value=[1])
    path = tmp_path / "dangling.pb"
    path.write_bytes(p.SerializeToString())
    assert_one_line_error(pprof(["--text", str(path)]), "location 42")


def test_unwritable_output_is_one_line(tmp_path):
    assert_one_line_error(pprof(["--proto", "-o", str(tmp_path / "no" / "such" / "dir.pb.gz")] + CASES["chain"]),
                          "cannot write")


# ---- Go pprof ---------------------------------------------------------------

def _go_pprof():
    """Build github.com/google/pprof once (Debian: golang-go and
    golang-github-google-pprof-dev) into bench/out/go-pprof."""
    if os.path.isfile(GO_PPROF) and os.access(GO_PPROF, os.X_OK):
        return GO_PPROF
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install golang-go and golang-github-google-pprof-dev (see Makefile deps)")
        pytest.skip("the Go toolchain (golang-go) is not installed: cannot build Go pprof")
    os.makedirs(os.path.dirname(GO_PPROF), exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="",
               GOCACHE=os.environ.get("GOCACHE") or os.path.join(ROOT, "bench", "out", "go-cache"))
    proc = subprocess.run([go, "build", "-o", GO_PPROF, "github.com/google/pprof"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")
    return GO_PPROF


def _go_top(go_pprof, path, index):
    proc = subprocess.run([go_pprof, "-top", "-sample_index=" + index, path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, env=dict(os.environ, HOME=os.environ.get("HOME", "/tmp")))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode()


@pytest.mark.parametrize("name", ["chain", "alloc"])
def test_go_pprof_reads_ours(protos, name):
    go_pprof = _go_pprof()
    out = _go_top(go_pprof, protos[name], "inuse_space" if name == "alloc" else "samples")
    ours = text(pprof(["--text", "--show_bytes"] + CASES[name] if name == "alloc" else ["--text"] + CASES[name]))
    total = float(re.match(r"Total: (\d+)", ours).group(1))
    m = re.search(r"of ([\d.]+)([A-Za-z]*) total", out)
    assert m, out
    scale = {"": 1, "B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}[m.group(2)]
    assert abs(float(m.group(1)) * scale - total) <= 0.01 * total
    go_rows = [line.split()[-1] for line in out.splitlines() if re.match(r"^\s+[\d.]+[A-Za-z]*\s+[\d.]+%", line)]
    our_rows = [line.split()[-1] for line in ours.splitlines()[1:]]
    # The heaviest functions (Go pprof hides nodes under 0.5% of the total).
    flat_names = [line.split()[-1] for line in ours.splitlines()[1:] if float(line.split()[1][:-1]) >= 1.0]
    assert flat_names
    assert go_rows[:len(flat_names)] == our_rows[:len(flat_names)]


@pytest.mark.parametrize("name", ["chain", "alloc"])
def test_go_pprof_rewrite_reads_back(protos, name, tmp_path):
    go_pprof = _go_pprof()
    out = tmp_path / "go.pb.gz"
    proc = subprocess.run([go_pprof, "-proto", "-output", str(out), protos[name]], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert text(pprof(["--text", str(out)])) == text(pprof(["--text"] + CASES[name]))
