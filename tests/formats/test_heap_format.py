"""Heap profile reader: header kinds, pprof's un-sampling, maps, errors."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from pprof_py.errors import ProfileFormatError
from pprof_py.formats import read_profile
from profile_builders import heap_profile

ENTRIES = [(2, 2048, 10, 40960, [0x401010, 0x401100]),
           (0, 0, 5, 500, [0x401020, 0x401100])]


def rows(profile):
    addresses = [loc.address for loc in profile.locations]
    return {tuple(addresses[i] for i in stack): tuple(profile.values[r])
            for r, stack in enumerate(profile.stacks())}


def write(tmp_path, data, name="h.heap"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_exact_heap_profile(tmp_path):
    profile = read_profile(write(tmp_path, heap_profile(ENTRIES)))
    assert profile.kind == "heap"
    assert [t.type for t in profile.sample_types] == ["inuse_objects", "inuse_space",
                                                      "alloc_objects", "alloc_space"]
    # Callers are looked up at return address - 1; the leaf as written.
    assert rows(profile) == {(0x401010, 0x4010ff): (2, 2048, 10, 40960),
                             (0x401020, 0x4010ff): (0, 0, 5, 500)}
    assert [m.path for m in profile.mappings] == ["/bin/prog", "/lib/libfoo.so.1"]
    assert profile.heap_records[0][4] == "401010"


def test_v2_sampling_is_undone_like_pprof(tmp_path):
    rate = 524288
    warnings = []
    profile = read_profile(write(tmp_path, heap_profile(ENTRIES, kind="heap_v2", rate=rate)), warnings)
    n, s = 10, 40960
    scale = 1 / (1 - math.exp(-((s / n) / rate)))
    got = rows(profile)[(0x401010, 0x4010ff)]
    assert got[2] == pytest.approx(n * scale, rel=1e-12) and got[3] == pytest.approx(s * scale, rel=1e-12)
    assert got[0] == pytest.approx(2 * 1 / (1 - math.exp(-(1024 / rate))), rel=1e-12)
    assert rows(profile)[(0x401020, 0x4010ff)][0] == 0       # zero counts stay zero
    assert warnings == ["Adjusting heap profiles for 1-in-524288 sampling rate", "Heap version 2"]


def test_growth_profile_kind(tmp_path):
    profile = read_profile(write(tmp_path, heap_profile(ENTRIES, kind="growth")))
    assert profile.kind == "growth"
    assert rows(profile)[(0x401010, 0x4010ff)] == (2, 2048, 10, 40960)


def test_memory_map_section(tmp_path):
    text = heap_profile(ENTRIES).decode().replace("MAPPED_LIBRARIES:", "--- Memory map: ---")
    profile = read_profile(write(tmp_path, text.encode()))
    assert profile.mappings[-1].path == "/lib/libfoo.so.1"


def test_warn_and_command_lines_are_skipped(tmp_path):
    warnings = []
    data = b"%warn this profile is old\n%ignored\n" + heap_profile(ENTRIES)
    profile = read_profile(write(tmp_path, data), warnings)
    assert warnings == ["WARNING: this profile is old"]
    assert profile.n_samples == 2


def test_bad_header_is_an_error(tmp_path):
    with pytest.raises(ProfileFormatError, match="heap profile header"):
        read_profile(write(tmp_path, b"heap profile: garbage here\n"))


def test_bad_address_is_an_error(tmp_path):
    data = heap_profile(ENTRIES).replace(b"0x401020", b"0xZZZ")
    with pytest.raises(ProfileFormatError, match="bad address"):
        read_profile(write(tmp_path, data))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupted_heap_profiles_parse_or_fail_cleanly(tmp_path_factory, data):
    blob = bytearray(heap_profile(ENTRIES, kind="heap_v2", rate=4096))
    blob = blob[:data.draw(st.integers(1, len(blob)))]
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.getbasetemp() / "fuzz.heap"
    path.write_bytes(bytes(blob))
    try:
        read_profile(str(path))
    except ProfileFormatError:
        pass
