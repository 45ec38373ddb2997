"""Frames in a stripped library named after the nearest exported symbol
(issue 15.8): --text keeps gperftools' name, --json marks them."""
import json
import struct
import subprocess

from helpers import err, pprof, text

LIBRARY = r"""
int api_before(int x) { return x * 3 + 1; }

/* internal: not exported, so a stripped library has no name for it */
__attribute__((visibility("hidden"), noinline)) int internal_hot(int n) {
    volatile int s = 0;
    for (int i = 0; i < n; i++) s += i;
    return s;
}

int api_entry(int n) { return internal_hot(n) + api_before(n); }
"""


def _cpu_profile(path, samples, maps):
    """A gperftools CPU profile (pprof_py/formats/cpu_binary.py)."""
    words = [0, 3, 0, 10000, 0]
    for count, stack in samples:
        words += [count, len(stack), *stack]
    words += [0, 1, 0]
    path.write_bytes(struct.pack("<%dQ" % len(words), *words) + maps.encode())


def _symbol(lib, name):
    for line in subprocess.run(["nm", str(lib)], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if fields[-1] == name:
            return int(fields[0], 16)
    raise AssertionError(name)


def _profile(tmp_path, strip):
    src = tmp_path / "hot.c"
    src.write_text(LIBRARY)
    lib = tmp_path / "libhot.so"
    # -O0 keeps the functions in source order: internal_hot after api_before
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, timeout=60)
    hot, entry = _symbol(lib, "internal_hot"), _symbol(lib, "api_entry")
    assert _symbol(lib, "api_before") < hot < entry
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
    _cpu_profile(prof, [(7, [in_hot, in_entry + 1]), (2, [in_entry])], maps)
    return str(prof)


def test_stripped_library_frames_are_marked_in_json(tmp_path):
    prof = _profile(tmp_path, strip=True)
    rows = text(pprof(["--text", "--no-cache", prof])).splitlines()
    # --text: gperftools' name, the exported function before the code
    assert rows[1].split()[-1] == "api_before" and rows[1].split()[0] == "7"
    proc = pprof(["--json", "--stacks", "--no-cache", prof])
    assert proc.returncode == 0, err(proc)
    doc = json.loads(proc.stdout)
    # internal_hot's code, past api_before's extent: marked; api_entry's own
    # code is named rightly
    marks = {row["name"]: row.get("name_source") for row in doc["rows"]}
    assert marks == {"api_before": "nearest exported symbol", "api_entry": None}
    frames = {f["name"]: f.get("name_source") for s in doc["stacks"] for f in s["frames"]}
    assert frames == marks


def test_unstripped_library_is_not_marked(tmp_path):
    prof = _profile(tmp_path, strip=False)
    doc = json.loads(pprof(["--json", "--stacks", "--no-cache", prof]).stdout)
    assert [row["name"] for row in doc["rows"]][:1] == ["internal_hot"]
    assert all("name_source" not in row for row in doc["rows"])
    assert all("name_source" not in f for s in doc["stacks"] for f in s["frames"])
