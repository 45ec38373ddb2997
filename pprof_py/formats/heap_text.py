"""gperftools heap profiles (text).

Header line (after optional ``%warn``/``%`` command lines):

    heap profile:   <inuse objs>: <inuse bytes> [ <alloc objs>: <alloc bytes>] @ <type>[/<rate>]

``<type>`` is ``heapprofile`` (the heap profiler: exact counts), ``heap`` (v1
sampling, mean interval rate/2), ``heap_v2`` (Poisson sampling with mean
interval ``rate`` bytes) or ``growth`` (growth profile, exact).  With no type
at all and identical in-use/alloc pairs, the profile is old v1-sampled.
Heap-checker leak profiles use the same format (``@ heapprofile``).

Each following line is one stack:

    <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ 0xaddr 0xaddr ...

addresses leaf first, all return addresses; pprof keeps the first as is and
subtracts one from the others.  The stacks end at ``MAPPED_LIBRARIES:``
(followed by /proc/self/maps) or ``--- Memory map: ---`` (DumpAddressMap).

Un-sampling follows pprof exactly.  v2: for a pair (n, s) with n != 0,
scale = 1 / (1 - exp(-(s/n)/rate)), n *= scale, s *= scale.  v1: with
ratio = (s/n)/(rate/2), if ratio < 1 both are divided by ratio.  Values stay
fractional, as in pprof.
"""
import math
import re

from pprof_py.errors import ProfileFormatError
from pprof_py.formats import limits
from pprof_py.formats.procmaps import parse_maps
from pprof_py.model import ProfileBuilder, ValueType

HEADER = re.compile(r"^heap profile:\s*(\d+):\s+(\d+)\s+\[\s*(\d+):\s+(\d+)\](\s*@\s*([^/]*)(/(\d+))?)?")
ENTRY = re.compile(r"^\s*(\d+):\s+(\d+)\s+\[\s*(\d+):\s+(\d+)\]\s+@\s+(.*)$")
HEAP_TYPES = [ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes"),
              ValueType("alloc_objects", "count"), ValueType("alloc_space", "bytes")]


def sampling_of(header):
    """(algorithm, adjustment) for a header line: algorithm 0 = exact,
    1 = v1 sampling, 2 = v2 (Poisson) sampling."""
    m = HEADER.match(header)
    if not m:
        return 0, 0
    kind = m.group(6)
    if kind:
        rate = m.group(8)
        if kind == "heapprofile" or "heap" not in kind:
            return 0, 0
        if "_v2" in kind:
            return 2, int(rate) if rate else 0
        return 1, (int(rate) / 2 if rate else 0)
    n1, s1, n2, s2 = (int(m.group(i)) for i in range(1, 5))
    if n1 == n2 and s1 == s2:
        return 1, 0
    return 0, 0


def _unsample(n, s, algorithm, adjustment):
    if algorithm == 2:
        if n != 0:
            ratio = (s * 1.0 / n) / adjustment
            scale = 1 / (1 - math.exp(-ratio))
            return n * scale, s * scale
        return n, s
    if n == 0:
        # An entry with no objects left (e.g. google/pprof's gobench.heap:
        # "0: 0 [1: 1024]"): nothing to scale.  gperftools' pprof dies
        # here with "Illegal division by zero"; Go pprof scales it to 0 too.
        return n, s
    ratio = (s * 1.0 / n) / adjustment   # v1
    if ratio < 1:
        return n / ratio, s / ratio
    return n, s


def parse_heap_profile(text, path, header, header_offset, warnings, adjust=True):
    m = HEADER.match(header)
    if not m:
        raise ProfileFormatError(path, "malformed heap profile header line", header_offset)
    for group in (1, 2, 3, 4, 8):
        if m.group(group) is not None:
            limits.count(m.group(group), path, "header")
    kind = "growth" if "growth" in header else "heap"
    algorithm, adjustment = sampling_of(header)
    if algorithm:
        if adjustment == 0:
            adjustment = 128 * 1024
            warnings.append("Adjusting heap profiles for 1-in-128KB sampling rate")
        else:
            warnings.append("Adjusting heap profiles for 1-in-%d sampling rate" % adjustment)
        if algorithm > 1:
            warnings.append(f"Heap version {algorithm}")

    builder = ProfileBuilder(kind, HEAP_TYPES)
    records = []
    maps_text = ""
    lines = text.split("\n")
    for lineno, raw in enumerate(lines):
        line = raw.replace("\r", "")
        if line.startswith("MAPPED_LIBRARIES:"):
            maps_text = "\n".join(l.replace("\r", "") for l in lines[lineno + 1:])
            break
        if line.startswith("--- Memory map:"):
            maps_text = "\n".join(l.replace("\r", "") for l in lines[lineno + 1:])
            break
        stripped = line.strip()
        m = ENTRY.match(stripped)
        if not m:
            continue
        where = f"line {lineno + 2}"
        n1, s1, n2, s2 = (limits.count(m.group(i), path, where) for i in range(1, 5))
        if algorithm and adjustment:
            n1, s1 = _unsample(n1, s1, algorithm, adjustment)
            n2, s2 = _unsample(n2, s2, algorithm, adjustment)
        words = m.group(5).split()
        try:
            addresses = [limits.address(a, path, where) for a in words]
        except ValueError:
            raise ProfileFormatError(path, f"line {lineno + 2}: bad address in stack") from None
        if adjust:
            addresses = [a if i == 0 else limits.caller(a) for i, a in enumerate(addresses)]
        row = builder.add(addresses, (n1, s1, n2, s2))
        leaf_text = words[0][2:] if words[0].startswith("0x") else words[0]
        records.append((n1, s1, n2, s2, leaf_text, tuple(addresses)))
    return builder.build(mappings=parse_maps(maps_text), period=1, heap_records=records)
