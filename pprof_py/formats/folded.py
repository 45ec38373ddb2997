"""Folded stacks ("collapsed" stacks), as written by `pprof --collapsed`,
Brendan Gregg's stackcollapse-* scripts, py-spy, async-profiler, perf
scripts and others:

    main;parse;tokenize 120
    main;render 37

One stack per line, root first, frames separated by ";", then whitespace
and the stack's value (an integer or a decimal number).  Blank lines and
lines starting with "#" are skipped.  Frame names are kept as written (they
may contain spaces, e.g. py-spy's "run (app.py:12)").

Frames have names but no addresses: each distinct name gets a synthetic
address (derived from the name, see `synthetic_address`) and the name as
its location's ``names``, so nothing is symbolized.  The profile's kind is "folded": its values are
shown as "samples", and none of the CPU-profile frame clean-ups (dropping
signal-handler frames) apply.
"""
import hashlib
import re

from pprof_py.errors import ProfileFormatError
from pprof_py.model import ProfileBuilder, ValueType

_LINE = re.compile(r"^(.*\S)\s+(-?\d+(?:\.\d+)?)\s*$")
FIRST_ADDRESS = 0x100000000000
# Counts and their sum must fit profile.proto's int64 (and stay finite).
MAX_VALUE = float(1 << 63)
ADDRESS_STEP = 0x10
SNIFF_LINES = 50
SNIFF_BYTES = 64 << 20


def _content_lines(text):
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, line


def looks_like_folded(data):
    """True when every one of the first (up to SNIFF_LINES) content lines
    of `data` is a "stack value" line."""
    # The first SNIFF_LINES lines, however long (a deep stack makes a line
    # of megabytes), at most SNIFF_BYTES.
    head = data[:SNIFF_BYTES]
    cut = len(data) > SNIFF_BYTES
    newlines = 0
    pos = head.find(b"\n")
    while pos >= 0:
        newlines += 1
        if newlines > SNIFF_LINES:
            head, cut = head[:pos], False
            break
        pos = head.find(b"\n", pos + 1)
    text = head.decode("utf-8", "replace")
    lines = list(_content_lines(text))
    if cut and len(lines) > 1:
        lines = lines[:-1]        # may be cut in the middle
    lines = lines[:SNIFF_LINES]
    if not lines:
        return False
    return all(_LINE.match(line) for _, line in lines)


def synthetic_address(name, taken):
    """An address derived from the name (MD5), so that the same name gets
    the same address in every file: profiles added together or subtracted
    with --base line up.  Collisions within a file probe the next slot."""
    digest = hashlib.md5(name.encode("utf-8", "surrogateescape")).digest()
    address = FIRST_ADDRESS + (int.from_bytes(digest[:5], "big") << 4)
    while address in taken and taken[address] != name:
        address += ADDRESS_STEP
    return address


def parse_folded(data, path):
    text = data.decode("utf-8", "surrogateescape")
    builder = ProfileBuilder("folded", [ValueType("samples", "count")])
    address_of = {}
    names = {}
    total = 0.0
    for number, line in _content_lines(text):
        m = _LINE.match(line)
        if m is None:
            raise ProfileFormatError(path, f"line {number}: not a folded stack "
                                           f"('frame;frame;... <count>'): {line.strip()[:80]!r}")
        stack, value = m.group(1), m.group(2)
        value = float(value)
        if not abs(value) <= MAX_VALUE:
            raise ProfileFormatError(path, f"line {number}: count {value:g} is too large "
                                           f"(more than 2^63)")
        total += abs(value)
        frames = [f for f in stack.split(";") if f != ""]
        if not frames:
            continue
        addresses = []
        for name in reversed(frames):           # leaf first
            address = address_of.get(name)
            if address is None:
                address = address_of[name] = synthetic_address(name, names)
                names[address] = name
            addresses.append(address)
        builder.add(addresses, [value])
    if not address_of:
        raise ProfileFormatError(path, "folded stacks file has no stacks")
    if total > MAX_VALUE:
        raise ProfileFormatError(path, f"counts too large: they add up to {total:g}, more than 2^63")
    profile = builder.build(named_by="folded")
    for loc in profile.locations:
        loc.names = (names[loc.address],)
    return profile
