"""--json, --markdown and the --fail-over regression gate."""
import gzip
import json
import re

import pytest

from helpers import PROFILES, assert_one_line_error, err, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]
ALLOC = ["fixtures/bin/alloc", f"{PROFILES}/alloc.heap"]

NUMBER = (int, float)
SCHEMA = {
    "schema_version": int,
    "kind": str,
    "program": (str, type(None)),
    "unit": str,
    "display_unit": str,
    "sample_index": (str, type(None)),
    "granularity": str,
    "sort": str,
    "base": (str, type(None)),
    "total": NUMBER,
    "shown_total": NUMBER,
    "rows": list,
}
ROW = {"name": str, "flat": NUMBER, "flat_percent": (float, int, type(None)),
       "sum_percent": (float, int, type(None)), "cum": NUMBER, "cum_percent": (float, int, type(None))}
STACK = {"value": NUMBER, "frames": list}
FRAME = {"address": str, "name": (str, type(None)), "location": (str, type(None))}
ENUMS = {"kind": {"cpu", "heap", "growth", "contention"},
         "unit": {"samples", "bytes", "objects", "nanoseconds"},
         "sort": {"flat", "cum"}, "granularity": {"functions", "lines", "files", "addresses"}}


def check_object(obj, shape, where, optional=()):
    """A JSON-schema-like check: exactly the listed keys (plus allowed
    optional ones), each with one of the listed types."""
    assert isinstance(obj, dict), where
    missing = set(shape) - set(obj)
    extra = set(obj) - set(shape) - set(optional)
    assert not missing, f"{where}: missing {missing}"
    assert not extra, f"{where}: unexpected {extra}"
    for key, types in shape.items():
        assert isinstance(obj[key], types) and not isinstance(obj[key], bool), \
            f"{where}.{key}: {obj[key]!r} is not {types}"


def validate(doc):
    check_object(doc, SCHEMA, "report", optional=("stacks",))
    assert doc["schema_version"] == 1
    for key, allowed in ENUMS.items():
        assert doc[key] in allowed, (key, doc[key])
    for i, row in enumerate(doc["rows"]):
        check_object(row, ROW, f"rows[{i}]")
    for i, stack in enumerate(doc.get("stacks", [])):
        check_object(stack, STACK, f"stacks[{i}]")
        for j, frame in enumerate(stack["frames"]):
            check_object(frame, FRAME, f"stacks[{i}].frames[{j}]")
            assert re.fullmatch(r"[0-9a-f]+", frame["address"])


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


def _json(args):
    proc = pprof(["--json"] + args)
    assert proc.returncode == 0, err(proc)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("args", [CHAIN, ["--cum", "--lines"] + CHAIN, ALLOC, ["--inuse_objects"] + ALLOC])
def test_json_matches_text_report(args):
    doc = _json(args)
    validate(doc)
    rows = text(pprof(["--text"] + args)).splitlines()
    assert rows[0] == "Total: %s" % " ".join(rows[0].split()[1:])
    body = rows[1:]
    assert len(body) == len(doc["rows"])
    for line, row in zip(body, doc["rows"]):
        fields = line.split(None, 5)
        assert fields[5] == row["name"]
        assert fields[1] == "%.1f%%" % row["flat_percent"]
        assert fields[2] == "%.1f%%" % row["sum_percent"]
        assert fields[4] == "%.1f%%" % row["cum_percent"]
        if doc["unit"] != "bytes":
            assert int(fields[0]) == int(row["flat"]) and int(fields[3]) == int(row["cum"])
        else:
            assert fields[0] == "%.1f" % (row["flat"] / 1048576.0)
    assert doc["shown_total"] == pytest.approx(sum(r["flat"] for r in doc["rows"]))


def test_json_units_and_stacks():
    cpu = _json(["--stacks"] + CHAIN)
    validate(cpu)
    assert cpu["kind"] == "cpu" and cpu["unit"] == "samples" and cpu["sort"] == "flat"
    assert sum(s["value"] for s in cpu["stacks"]) == cpu["shown_total"]
    assert any(f["name"] == "spin" for s in cpu["stacks"] for f in s["frames"])
    heap = _json(ALLOC)
    assert (heap["kind"], heap["unit"], heap["display_unit"], heap["sample_index"]) == \
        ("heap", "bytes", "MB", "inuse_space")


def test_schema_check_rejects_a_wrong_document():
    doc = _json(CHAIN)
    doc["rows"][0]["flat"] = "66"
    with pytest.raises(AssertionError):
        validate(doc)
    doc = _json(CHAIN)
    del doc["total"]
    with pytest.raises(AssertionError):
        validate(doc)


def test_markdown_table():
    out = text(pprof(["--markdown"] + CHAIN)).splitlines()
    total = text(pprof(["--text"] + CHAIN)).splitlines()[0].split()[1]
    assert out[0].startswith("**chain** — cpu profile, total %s samples" % total)
    assert out[2] == "| flat | flat% | sum% | cum | cum% | function (by flat) |"
    assert out[3] == "|---:|---:|---:|---:|---:|:---|"
    first = [c.strip() for c in out[4].strip("|").split("|")]
    assert first[5] == "`spin`" and first[1] == "100.0%"
    limited = text(pprof(["--markdown", "--nodecount=2"] + CHAIN)).splitlines()
    assert len([l for l in limited if l.startswith("| ") and "`" in l]) == 2
    assert re.match(r"_\d+ more row\(s\) not shown\._", limited[-1])


# ---- the regression gate ----------------------------------------------------

def _synthetic(path, counts):
    """A symbolized profile.proto with one stack per function: main -> name."""
    from pprof_py.formats.proto import messages
    M = messages()
    names = sorted(counts)
    strings = ["", "samples", "count", "main", "app.c"] + names
    p = M["Profile"](string_table=strings)
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3, system_name=3, filename=4)
    p.location.add(id=1, address=0x1000).line.add(function_id=1, line=1)
    for i, name in enumerate(names):
        p.function.add(id=i + 2, name=5 + i, system_name=5 + i, filename=4)
        p.location.add(id=i + 2, address=0x2000 + 0x10 * i).line.add(function_id=i + 2, line=10 + i)
        p.sample.add(location_id=[i + 2, 1], value=[counts[name]])
    # A stack of one frame keeps pprof from dropping "main" as a signal
    # frame (the second frame of every other stack).
    p.sample.add(location_id=[1], value=[0])
    path.write_bytes(gzip.compress(p.SerializeToString()))
    return str(path)


@pytest.fixture
def old_new(tmp_path):
    old = _synthetic(tmp_path / "old.pb.gz", {"parse": 50, "render": 30, "io": 20})
    new = _synthetic(tmp_path / "new.pb.gz", {"parse": 40, "render": 45, "io": 15})
    return old, new


def test_gate_fails_and_lists_grown_functions(old_new):
    old, new = old_new
    proc = pprof(["--text", f"--base={old}", "--fail-over=5%", new])
    assert proc.returncode == 1
    stderr = err(proc)
    assert "render: 30.0% -> 45.0% (+15.0)" in stderr
    assert "parse" not in stderr and "io:" not in stderr
    assert stderr.splitlines()[-1].startswith("pprof: --fail-over=5%: 1 function(s)")
    # The report (new minus old; both total 100) is still written.
    assert re.search(r"^ +15 .* render$", text(proc), re.M), text(proc)


def test_gate_passes_under_the_threshold(old_new):
    old, new = old_new
    proc = pprof(["--text", f"--base={old}", "--fail-over=20", new])
    assert proc.returncode == 0, err(proc)
    assert err(proc) == ""


def test_gate_with_cum_and_json(old_new):
    old, new = old_new
    proc = pprof(["--json", "--cum", f"--base={old}", "--fail-over=2.5%", new])
    assert proc.returncode == 1
    assert "render" in err(proc) and "cumulative share" in err(proc)
    validate(json.loads(proc.stdout))


def test_gate_on_real_profiles_is_symmetric():
    a, b = f"{PROFILES}/chain.cpu.prof", f"{PROFILES}/chain.cpu.2.prof"
    # Each profile against itself: no function can grow.
    for p in (a, b):
        proc = pprof(["--text", "--cum", f"--base={p}", "--fail-over=0%", "fixtures/bin/chain", p])
        assert proc.returncode == 0, err(proc)


@pytest.mark.parametrize("args, fragment", [
    (["--fail-over=5%"], "needs --base"),
    (["--fail-over=five", "--base=x"], "bad --fail-over value"),
])
def test_gate_usage_errors(args, fragment):
    assert_one_line_error(pprof(["--text"] + args + CHAIN), fragment)
