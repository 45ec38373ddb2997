"""`--raw`: a symbolized profile, readable back by pprof without the binary.

The layout gperftools' pprof writes (PrintSymbolizedProfile):

    --- symbol
    binary=<program>
    0x<address> <full name>--<inlined full name>--...
    ---
    --- profile
    <binary CPU profile: 64-bit little-endian header, records, no trailer>

The profile part always has the CPU layout: header slots 0, 3, 0, 1, 0
(header words, version 0, sampling period 1), then per stack its count, its
depth and its addresses.  A heap profile is written the same way, with the
selected heap column (e.g. in-use bytes) as the integer count, which is
what pprof does; reading it back gives a "samples" profile.  The stacks are
the ones after frame removal, --focus and --ignore, and their addresses are
already adjusted (callers minus one), as pprof expects in this format.

Unlike pprof (hash order) we sort symbols by address and stacks by their
addresses, so the output is byte-for-byte deterministic.
"""
import struct

from pprof_py.errors import PprofError


def _count_word(value):
    # pprof packs `$count & 0xFFFFFFFF` and `int($count / 2**32)`: the count
    # is truncated to an integer.
    count = int(value)
    if count < 0:
        raise PprofError("--raw cannot write negative counts (use --drop_negative with --base)")
    return count


def render_raw(prepared):
    width = prepared.width
    out = [b"--- symbol\n"]
    if prepared.program is not None:
        out.append(b"binary=" + prepared.program.encode("utf-8", "surrogateescape") + b"\n")
    for address in sorted(prepared.symbols):
        triples = prepared.symbols[address]
        names = "--".join(full for _short, _fileline, full in triples)
        out.append(("0x%0*x %s\n" % (width, address, names)).encode("utf-8", "surrogateescape"))
    out.append(b"---\n")
    out.append(b"--- profile\n")
    out.append(struct.pack("<10I", 0, 0, 3, 0, 0, 0, 1, 0, 0, 0))
    words = []
    for stack in sorted(prepared.profile):
        if not stack:
            continue
        count = _count_word(prepared.profile[stack])
        words.extend((count & 0xFFFFFFFF, count >> 32, len(stack) & 0xFFFFFFFF, len(stack) >> 32))
        for address in stack:
            words.extend((address & 0xFFFFFFFF, (address >> 32) & 0xFFFFFFFF))
    out.append(struct.pack("<%dI" % len(words), *words))
    return b"".join(out)
