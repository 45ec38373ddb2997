"""Combining profiles of different runs: one address space for all of them.

Each run of a program lays its objects out anew (address-space layout
randomization moves the PIE executable and every shared library), so the
same instruction has different addresses in two profiles.  gperftools'
pprof symbolizes every profile with the first profile's memory map, which
leaves the other runs' frames unnamed or misnamed; Go pprof symbolizes each
profile with its own mappings.  We translate instead: every address of a
later profile that falls in one of its mappings is rewritten to the address
the same byte of the same object file has in the first profile,

    file offset = address - mapping.start + mapping.offset
    address'    = first.start + file offset - first.offset

where ``first`` is the first profile's mapping of the same object (same
path, and same build-id when both have one) that covers that file offset.
An object the first profile did not map is given a place in the combined
map: where its own run had it if that range is free, above everything
else otherwise.  Addresses outside every mapping (non-PIE executables
without a map line, the kernel) are left alone.

After translation, stacks of all runs meet on "object + offset", so the
one symbol table of the combined map names them all, and sums and
differences come out per function, per line and per address in the object.
When all profiles share one memory map, every translation is the identity
and reports are byte for byte what gperftools' pprof prints.
"""
from pprof_py.lazynp import np

from pprof_py.model import Mapping

PAGE = 0x1000


def _same_object(a, b):
    if a.path != b.path:
        return False
    return not (a.build_id and b.build_id and a.build_id != b.build_id)


class CombinedMap:
    """The memory map of the first profile, grown by the objects later
    profiles mapped elsewhere or that it lacks."""

    def __init__(self, mappings):
        self.mappings = [Mapping(m.start, m.limit, m.offset, m.path, m.build_id) for m in mappings]

    def _overlaps(self, start, limit):
        return any(m.start < limit and start < m.limit for m in self.mappings)

    def _top(self):
        return max((m.limit for m in self.mappings), default=0)

    def place(self, mapping):
        """The combined mapping for `mapping` of another run: [(start, limit,
        offset)] of the same object covering its file range, added when missing.
        Returns a function translating one address of `mapping`."""
        size = mapping.limit - mapping.start
        lo, hi = mapping.offset, mapping.offset + size
        for m in self.mappings:
            if _same_object(m, mapping) and m.offset <= lo and hi <= m.offset + (m.limit - m.start):
                return m.start - m.offset + mapping.offset - mapping.start
        start = mapping.start
        if self._overlaps(start, mapping.limit):
            start = (self._top() + PAGE - 1) // PAGE * PAGE + PAGE
        self.mappings.append(Mapping(start, start + size, mapping.offset, mapping.path, mapping.build_id))
        return start - mapping.start


def translate(addresses, mappings, combined):
    """The addresses (numpy uint64 or int64 array) of one profile, rewritten
    into the combined map; `mappings` are the profile's own."""
    if not mappings or not len(addresses):
        return addresses
    ordered = sorted(mappings, key=lambda m: m.start)
    starts = [m.start for m in ordered]
    shifts = [combined.place(m) for m in ordered]
    if not any(shifts):
        return addresses
    values = addresses.astype(np.uint64)
    index = np.searchsorted(np.array(starts, dtype=np.uint64), values, side="right") - 1
    result = values.copy()
    limits = np.array([m.limit for m in ordered], dtype=np.uint64)
    inside = index >= 0
    safe = np.where(inside, index, 0)
    inside &= values < limits[safe]
    shift_array = np.array([s % (1 << 64) for s in shifts], dtype=np.uint64)
    # uint64 arithmetic wraps, so a negative shift is added as its two's complement.
    result[inside] = values[inside] + shift_array[safe[inside]]
    return result

