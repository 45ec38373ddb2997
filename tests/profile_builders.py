"""Builders for hand-made gperftools profiles used by the parser tests."""
import struct

MAPS = ("00400000-00401000 r--p 00000000 08:01 1 /bin/prog\n"
        "00401000-00402000 r-xp 00001000 08:01 1 /bin/prog\n"
        "7f0000001000-7f0000002000 r-xp 00001000 08:01 2 /lib/libfoo.so.1\n")


def cpu_profile(records, period=10000, width=8, order="<", maps=MAPS, trailer=True):
    """records: [(count, [pc, ...])] leaf first."""
    code = {8: "Q", 4: "I"}[width]

    def words(*values):
        return struct.pack(order + code * len(values), *values)

    out = words(0, 3, 0, period, 0)
    for count, pcs in records:
        out += words(count, len(pcs), *pcs)
    if trailer:
        out += words(0, 1, 0)
    return out + maps.encode()


def heap_profile(entries, kind="heapprofile", rate=None, maps=MAPS):
    """entries: [(inuse_n, inuse_bytes, alloc_n, alloc_bytes, [addr...])]."""
    tot = [sum(e[i] for e in entries) for i in range(4)]
    suffix = f"/{rate}" if rate else ""
    lines = ["heap profile: %6d: %8d [%6d: %8d] @ %s%s" % (*tot, kind, suffix)]
    for n1, s1, n2, s2, addrs in entries:
        lines.append("%6d: %8d [%6d: %8d] @ %s" % (n1, s1, n2, s2, " ".join("0x%x" % a for a in addrs)))
    return ("\n".join(lines) + "\n\nMAPPED_LIBRARIES:\n" + maps).encode()
