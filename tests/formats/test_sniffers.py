"""The ordered list of format sniffers (pprof_py/formats/__init__.py)."""
import gzip
import os

import pytest

from pprof_py.errors import ProfileFormatError
from pprof_py.formats import SNIFFERS, read_profile
from pprof_py.formats.proto import messages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _proto_bytes():
    M = messages()
    msg = M["Profile"]()
    msg.string_table.extend(["", "samples", "count", "main", "main.c"])
    msg.sample_type.add(type=1, unit=2)
    msg.function.add(id=1, name=3, system_name=3, filename=4)
    loc = msg.location.add(id=1, address=0x1000)
    loc.line.add(function_id=1, line=7)
    msg.sample.add(location_id=[1], value=[5])
    return msg.SerializeToString()


@pytest.mark.parametrize("compress", [False, True])
def test_proto_starting_with_field_9_is_read(tmp_path, compress):
    """Field order is free in protobuf: a writer that puts time_nanos
    (field 9, tag byte 0x48 = "H") first must still be recognised."""
    data = b"\x48\x96\x01" + _proto_bytes()
    assert data[:1] == b"H"
    path = tmp_path / "p.pb"
    path.write_bytes(gzip.compress(data) if compress else data)
    profile = read_profile(str(path))
    assert profile.named_by == "proto"
    assert profile.values.sum() == 5
    assert profile.locations[0].frames[0].function == "main"
    assert profile.locations[0].frames[0].file_line == "main.c:7"


def test_text_that_is_no_profile_is_still_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Hello, this is not a profile\n")
    with pytest.raises(ProfileFormatError, match="not a profile: a text file"):
        read_profile(str(path))


@pytest.mark.parametrize("path,owner", [
    ("fixtures/profiles/alloc.heap", "_heap_sniffer"),
    ("fixtures/profiles/chain.cpu.prof", "_cpu_sniffer"),
    ("tests/data/sample.folded", "_folded_sniffer"),
])
def test_exactly_one_sniffer_claims_each_format(path, owner):
    """Every other sniffer answers "not mine" (None), so the list's order
    only decides where formats could overlap."""
    from pprof_py.formats import _Input
    data = open(os.path.join(ROOT, path), "rb").read()
    claimed = [s.__name__ for s in SNIFFERS if s(_Input(data, path, [], 0, False)) is not None]
    assert claimed == [owner]
