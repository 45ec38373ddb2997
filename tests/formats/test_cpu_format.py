"""The gperftools CPU profile reader: layouts, merging, and broken inputs."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pprof_py.errors import ProfileFormatError
from pprof_py.formats import read_profile
from pprof_py.formats.cpu_binary import parse_cpu_profile
from profile_builders import MAPS, cpu_profile

RECORDS = [(5, [0x401010, 0x401100, 0x401200]),
           (3, [0x401010, 0x401100, 0x401200]),     # same stack: summed
           (2, [0x7f0000001500, 0x401300])]
LIB32 = 0xf7001500
RECORDS32 = RECORDS[:2] + [(2, [LIB32, 0x401300])]
MAPS32 = "f7001000-f7002000 r-xp 00001000 08:01 2 /lib/libfoo.so.1\n"


def stacks_of(profile):
    addresses = [loc.address for loc in profile.locations]
    return {tuple(addresses[i] for i in stack): profile.values[row, 0]
            for row, stack in enumerate(profile.stacks())}


@pytest.mark.parametrize("width,order", [(8, "<"), (8, ">"), (4, "<"), (4, ">")])
def test_layouts_give_the_same_profile(width, order):
    records, maps, lib = (RECORDS, MAPS, 0x7f0000001500) if width == 8 else (RECORDS32, MAPS32, LIB32)
    profile = parse_cpu_profile(cpu_profile(records, width=width, order=order, maps=maps), "p")
    # Callers (non-leaf) are looked up at return address - 1, like pprof.
    assert stacks_of(profile) == {(0x401010, 0x4010ff, 0x4011ff): 8.0, (lib, 0x4012ff): 2.0}
    assert profile.period == 10000
    assert profile.address_width == (16 if width == 8 else 8)
    assert profile.mappings[-1].path == "/lib/libfoo.so.1"
    assert profile.mappings[-1].start == lib & ~0xfff and profile.mappings[-1].offset == 0x1000


def test_leading_profile_marker_line(tmp_path):
    path = tmp_path / "p.prof"
    path.write_bytes(b"--- profile\n" + cpu_profile(RECORDS))
    assert stacks_of(read_profile(str(path)))[(0x7f0000001500, 0x4012ff)] == 2.0


def test_empty_profile_has_no_samples():
    profile = parse_cpu_profile(cpu_profile([]), "p")
    assert profile.n_samples == 0 and profile.values.shape == (0, 1)


def test_maps_with_deleted_files_are_kept():
    maps = "7f0000001000-7f0000002000 r-xp 00001000 08:01 2 /lib/libgone.so (deleted)\n"
    profile = parse_cpu_profile(cpu_profile(RECORDS, maps=maps), "p")
    assert profile.mappings[0].path == "/lib/libgone.so (deleted)"


@pytest.mark.parametrize("cut", [0, 3, 8, 20, 39])
def test_truncated_header_is_an_error_with_offset(cut):
    data = cpu_profile(RECORDS, maps="")[:cut]
    with pytest.raises(ProfileFormatError) as info:
        parse_cpu_profile(data, "cut.prof")
    assert "cut.prof" in str(info.value)
    if cut:
        assert info.value.offset is not None


# RECORDS as written, in 8-byte words: header (5 words, bytes 0-39), then
# count 5, depth 3, a, b, c (bytes 40-79), count 3, depth 3, ... trailer.
@pytest.mark.parametrize("cut,want", [
    (40, {}),                                                        # header only
    (48, {}),                                                        # a count without its depth
    (56, {(): 5.0}),                                                 # count and depth, no PCs
    (72, {(0x401010, 0x4010ff): 5.0}),                               # two of three PCs
    (80, {(0x401010, 0x4010ff, 0x4011ff): 5.0}),                     # one whole record
    (100, {(0x401010, 0x4010ff, 0x4011ff): 5.0, (): 3.0}),           # cut inside a word
])
def test_truncated_records_are_read_like_pprof(cut, want):
    """A profile cut short (crash, kill) is read as gperftools' pprof reads
    it: every complete record, and the last one with the PCs that made it
    to the file; the reader records where the data ends."""
    profile = parse_cpu_profile(cpu_profile(RECORDS, maps="")[:cut], "cut.prof")
    assert stacks_of(profile) == want
    offset, map_missing = profile.truncated
    assert map_missing and offset == cut - cut % 8


def test_whole_profile_is_not_truncated():
    assert parse_cpu_profile(cpu_profile(RECORDS, maps=MAPS), "p").truncated is None


def test_huge_depth_is_rejected():
    data = cpu_profile([(1, [0x401000])], maps="")
    bad = data[:48] + (1 << 40).to_bytes(8, "little") + data[56:]
    with pytest.raises(ProfileFormatError, match="depth"):
        parse_cpu_profile(bad, "p")


def test_wrong_magic(tmp_path):
    for content in (b"\x7fELF\x02\x01\x01" + b"\0" * 100, b"hello world\nthis is text\n", b"\xff" * 64):
        path = tmp_path / "x"
        path.write_bytes(content)
        with pytest.raises(ProfileFormatError, match="not a profile"):
            read_profile(str(path))


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ProfileFormatError, match="empty"):
        read_profile(str(empty))
    with pytest.raises(ProfileFormatError, match="no such file"):
        read_profile(str(tmp_path / "missing"))
    with pytest.raises(ProfileFormatError, match="directory"):
        read_profile(str(tmp_path))


VALID = cpu_profile(RECORDS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_profiles_parse_or_fail_cleanly(data):
    """Truncations and byte flips either still parse or raise
    ProfileFormatError: never another exception, never a hang."""
    blob = bytearray(VALID)
    cut = data.draw(st.integers(0, len(blob)))
    blob = blob[:cut]
    for _ in range(data.draw(st.integers(0, 4))):
        if blob:
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    try:
        profile = parse_cpu_profile(bytes(blob), "fuzz.prof")
    except ProfileFormatError:
        return
    assert profile.values.shape[0] == profile.n_samples
    assert np.all(profile.stack_locations < len(profile.locations))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(tmp_path_factory, blob):
    path = os.path.join(tmp_path_factory.getbasetemp(), "random.prof")
    with open(path, "wb") as f:
        f.write(blob)
    try:
        read_profile(path)
    except ProfileFormatError:
        pass


def _parsed_both_ways(blob, monkeypatch, adjust=True):
    """The profile as _merge_lists and as _merge_numpy make it."""
    from pprof_py.formats import cpu_binary
    out = []
    for threshold in (1 << 62, 0):
        monkeypatch.setattr(cpu_binary, "NUMPY_MIN_PCS", threshold)
        monkeypatch.setattr(cpu_binary, "LOCATION_TABLE_MIN", threshold)
        try:
            profile = parse_cpu_profile(blob, "p", adjust=adjust)
        except ProfileFormatError as exc:
            out.append(str(exc))
            continue
        out.append((profile.values.tolist(), profile.stack_starts.tolist(), profile.stack_locations.tolist(),
                    [loc.address for loc in profile.locations], profile.truncated))
    return out


@pytest.mark.parametrize("width,order", [(8, "<"), (8, ">"), (4, "<"), (4, ">")])
@pytest.mark.parametrize("adjust", [True, False])
def test_list_and_numpy_merges_agree(width, order, adjust, monkeypatch):
    """Small profiles are merged without numpy, big ones with it: both give
    the same profile, field by field."""
    records, maps = (RECORDS, MAPS) if width == 8 else (RECORDS32, MAPS32)
    records = records + [(1, [0x401010]), (4, [0x401300, 0x401300, 0x401010])]
    blob = cpu_profile(records, width=width, order=order, maps=maps)
    small, big = _parsed_both_ways(blob, monkeypatch, adjust)
    assert small == big
    assert len(small[0]) == 4       # the two equal stacks summed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_list_and_numpy_merges_agree_on_damaged_files(monkeypatch, data):
    blob = bytearray(VALID)
    blob = blob[:data.draw(st.integers(0, len(blob)))]
    for _ in range(data.draw(st.integers(0, 3))):
        if blob:
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    small, big = _parsed_both_ways(bytes(blob), monkeypatch)
    assert small == big


def test_small_profile_is_read_without_numpy(tmp_path):
    """A --text run with a warm symbol cache on an ordinary profile imports
    neither numpy nor pyelftools' ELF/DWARF readers nor urllib (their
    imports were most of such a run's time)."""
    import subprocess
    import sys
    from helpers import PROFILES, ROOT, localize
    localize()
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: sys.stderr.write('LOADED %s\\n' % sorted(\n"
             "    m for m in ('numpy', 'elftools.elf.elffile', 'elftools.dwarf.dwarfinfo', 'urllib.request')\n"
             "    if m in sys.modules)))\n"
             "sys.argv = ['pprof'] + sys.argv[1:]\n"
             "runpy.run_module('pprof_py', run_name='__main__')\n")
    args = ["fixtures/bin/cxx", f"{PROFILES}/cxx.cpu.prof"]
    env = dict(os.environ, PYTHONPATH=ROOT, XDG_CACHE_HOME=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", probe, "--text"] + args, cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            for _ in ("cold", "warm")]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    assert runs[0].stdout == runs[1].stdout and b"Total:" in runs[1].stdout
    assert b"LOADED []" in runs[1].stderr, runs[1].stderr
    # A cold run reads the symbol tables without numpy too (objfile.py).
    assert b"'numpy'" not in runs[0].stderr, runs[0].stderr


def test_location_table_reads_and_writes_like_locations(monkeypatch):
    """Big profiles keep their locations as columns (model.LocationTable);
    its rows read and write like Location objects."""
    from pprof_py.formats import cpu_binary
    from pprof_py.model import Frame, Location, LocationTable, location_addresses
    from profile_builders import cpu_profile
    blob = cpu_profile([(3, [0x401010, 0x401100, 0x401200]), (1, [0x401020, 0x401100])])
    monkeypatch.setattr(cpu_binary, "LOCATION_TABLE_MIN", 0)
    table = parse_cpu_profile(blob, "p").locations
    monkeypatch.setattr(cpu_binary, "LOCATION_TABLE_MIN", 1 << 62)
    plain = parse_cpu_profile(blob, "p").locations
    assert isinstance(table, LocationTable) and isinstance(plain, list)
    assert len(table) == len(plain) == 4 and list(table) == plain and table[-1] == plain[-1]
    assert table[1:3] == plain[1:3]
    with pytest.raises(IndexError):
        table[4]
    frames = (Frame("main", "m.c:1", "main"),)
    table[0].frames = frames
    table[2].names = ("outer", "inner")
    assert table[0].frames is frames and table[1].frames is None and table[2].names == ("outer", "inner")
    assert table[0] == Location(plain[0].address, frames)
    table.set_frames([frames] * 4)
    assert all(row.frames is frames for row in table)
    assert location_addresses(type("P", (), {"locations": table})()) == [loc.address for loc in plain]
