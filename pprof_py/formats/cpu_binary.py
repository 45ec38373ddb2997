"""gperftools CPU profile (binary) reader.

The file is a sequence of machine words ("slots"), 8 bytes each on 64-bit
machines and 4 bytes on 32-bit ones, in the writer's byte order:

    header   0, 3, 0, <sampling period in microseconds>, 0
             (slot 1 is the number of header words that follow it; readers
             skip 2 + slot1 words)
    records  <count>, <depth N>, <pc 1> ... <pc N>      (leaf PC first)
    trailer  0, 1, 0          (any record whose first PC is 0 ends the data)
    maps     the text of /proc/self/maps of the profiled process

Word size and byte order are sniffed from the first two slots: on 64-bit the
first 8 bytes are all zero; the header-size slot then has its zero half
first (big-endian) or second (little-endian).

Non-leaf PCs are return addresses.  Like pprof we subtract one from them so
they point into the call instruction, which gives the caller's line.
Identical stacks are summed.  An optional text line ``--- profile`` may
precede the binary data (that is how ``pprof --raw`` embeds it).
"""
import sys
from array import array

from pprof_py.errors import ProfileFormatError
from pprof_py.formats.procmaps import parse_maps
from pprof_py.lazynp import np
from pprof_py.model import Location, LocationTable, Profile, ValueType

MAX_DEPTH = 1 << 16
# Sample counts must fit profile.proto's int64 (a real one is far smaller).
MAX_COUNT = (1 << 63) - 1
# Above this many PCs the stacks are merged with numpy (_merge_numpy);
# below it in plain Python (_merge_lists), which needs no numpy import
# (60 ms, more than merging takes on a profile of a few thousand stacks).
NUMPY_MIN_PCS = 200_000
# From this many distinct addresses on, the locations are a LocationTable
# (columns) rather than one Location object each (model.py says why).
LOCATION_TABLE_MIN = 1000


def looks_like_cpu_profile(data):
    return len(data) >= 8 and (data[:8] == b"\0" * 8 or data[:4] == b"\0\0\0\0")


def parse_cpu_profile(data, path, base_offset=0, adjust=True):
    """Parse the binary profile in `data` (bytes).  `base_offset` is where the
    binary part starts in the file, for error messages."""
    if len(data) < 8:
        raise ProfileFormatError(path, "file too short for a CPU profile header", base_offset)
    if data[:8] == b"\0" * 8:
        width = 8
        second = data[8:16]
        if len(second) < 8:
            raise ProfileFormatError(path, "truncated CPU profile header", base_offset + len(data))
        if second[4:8] == b"\0" * 4:
            order = "<"
        elif second[0:4] == b"\0" * 4:
            order = ">"
        else:
            raise ProfileFormatError(path, "bad CPU profile header (header size >= 2**32)", base_offset + 8)
    elif data[:4] == b"\0" * 4:
        width = 4
        if data[6:8] == b"\0\0":
            order = "<"
        elif data[4:6] == b"\0\0":
            order = ">"
        else:
            raise ProfileFormatError(path, "bad CPU profile header (header size >= 2**16)", base_offset + 4)
    else:
        raise ProfileFormatError(path, "not a CPU profile (header does not start with a zero word)", base_offset)

    n_words = len(data) // width
    slots = array("Q" if width == 8 else "I")
    if slots.itemsize != width:                 # (no C type of that size)
        slots = array("L" if width == 8 else "H")
    slots.frombytes(data[:n_words * width])
    if (order == "<") != (sys.byteorder == "little"):
        slots.byteswap()

    def word_offset(i):
        return base_offset + i * width

    if n_words < 5:
        raise ProfileFormatError(path, "truncated CPU profile header", word_offset(n_words))
    header_words = slots[1]
    version, period = slots[2], slots[3]
    first = 2 + header_words
    if header_words < 3 or version > 2 ** 32 or period > 2 ** 32 or first > n_words:
        raise ProfileFormatError(path, "not a CPU profile, or corrupted header", word_offset(1))

    record_starts = []
    i = first
    end = None
    truncated = None
    partial_depth = None
    while True:
        if i == n_words and not adjust:
            # `pprof --raw` writes the records with no trailer and no map.
            end = i
            break
        if i + 2 > n_words:
            # Cut short (the program crashed or was killed before the
            # profiler wrote its trailer): like both peers, report the
            # records read; report.py warns with this offset.
            truncated = word_offset(n_words)
            break
        depth = slots[i + 1]
        if depth > MAX_DEPTH:
            raise ProfileFormatError(path, f"corrupted CPU profile: stack depth {depth} too large", word_offset(i + 1))
        if i + 2 + depth > n_words:
            # A partial last record: gperftools' pprof keeps its count with
            # the PCs that made it to the file (possibly none).
            truncated = word_offset(n_words)
            partial_depth = n_words - (i + 2)
            record_starts.append(i)
            break
        if depth >= 1 and slots[i + 2] == 0:
            end = i + 2 + depth
            break
        if depth == 0:
            raise ProfileFormatError(path, "corrupted CPU profile: record with empty stack", word_offset(i))
        record_starts.append(i)
        i += 2 + depth

    counts = [slots[r] for r in record_starts]
    if counts and max(counts) > MAX_COUNT:
        r = next(k for k, c in enumerate(counts) if c > MAX_COUNT)
        raise ProfileFormatError(path, f"corrupted CPU profile: sample count {counts[r]} too large",
                                 word_offset(record_starts[r]))
    depths = [slots[r + 1] for r in record_starts]
    if partial_depth is not None:
        depths[-1] = partial_depth
    merge = _merge_numpy if sum(depths) >= NUMPY_MIN_PCS else _merge_lists
    values, new_csr, inverse, addresses = merge(slots, record_starts, depths, counts, adjust)

    maps_text = data[end * width:].decode("utf-8", "surrogateescape") if end is not None else ""
    return Profile(
        kind="cpu",
        sample_types=[ValueType("samples", "count")],
        values=values,
        stack_starts=new_csr,
        stack_locations=inverse,
        locations=(LocationTable(addresses) if len(addresses) >= LOCATION_TABLE_MIN
                   else [Location(a) for a in addresses]),
        mappings=parse_maps(maps_text),
        period=int(period),
        address_width=16 if width == 8 else 8,
        truncated=(truncated, True) if truncated is not None else None,
    )


# Both merges sum identical stacks (keeping the first one's place), turn
# return addresses into call sites (pc - 1 except at the leaf) when
# `adjust`, and number the distinct addresses in ascending order.  They
# return (values, stack starts, location index of each pc, addresses).

def _merge_lists(slots, record_starts, depths, counts, adjust):
    row_of = {}
    values = []
    stacks = []
    for r, depth, count in zip(record_starts, depths, counts):
        key = slots[r + 2:r + 2 + depth].tobytes()
        row = row_of.get(key)
        if row is None:
            row_of[key] = len(values)
            values.append([float(count)])
            pcs = slots[r + 2:r + 2 + depth].tolist()
            if adjust:       # (modulo 2**64, as in numpy's uint64: a pc 0 is damage)
                pcs[1:] = [(pc - 1) & 0xffffffffffffffff for pc in pcs[1:]]
            stacks.append(pcs)
        else:
            values[row][0] += count
    addresses = sorted({pc for pcs in stacks for pc in pcs})
    index = {a: i for i, a in enumerate(addresses)}
    starts = [0]
    inverse = []
    for pcs in stacks:
        inverse.extend([index[pc] for pc in pcs])
        starts.append(len(inverse))
    return values, starts, inverse, addresses


def _merge_numpy(slots, record_starts, depths, counts, adjust):
    words = np.frombuffer(slots, dtype=f"u{slots.itemsize}").astype(np.uint64)
    starts = np.array(record_starts, dtype=np.int64)
    counts = np.array(counts, dtype=np.float64)
    depths = np.array(depths, dtype=np.int64)
    # Flat index of every pc slot: for record r, starts[r]+2 .. +depth.
    total = int(depths.sum())
    first_slot = np.repeat(starts + 2, depths)
    csr = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(depths, out=csr[1:])
    pos_in_stack = np.arange(total, dtype=np.int64) - np.repeat(csr[:-1], depths)
    pcs = words[first_slot + pos_in_stack]
    if adjust:
        pcs = pcs - (pos_in_stack > 0).astype(np.uint64)   # return address -> call site

    # Merge identical stacks, keeping first-seen order.
    pcs_bytes = pcs.tobytes()
    row_of = {}
    rows = np.empty(len(starts), dtype=np.int64)
    keep = []
    csr_list = csr.tolist()
    for r in range(len(starts)):
        key = pcs_bytes[csr_list[r] * 8:csr_list[r + 1] * 8]
        row = row_of.get(key)
        if row is None:
            row = row_of[key] = len(keep)
            keep.append(r)
        rows[r] = row
    keep = np.array(keep, dtype=np.int64)
    values = np.zeros((len(keep), 1), dtype=np.float64)
    np.add.at(values[:, 0], rows, counts)
    kept_depths = depths[keep] if len(keep) else np.zeros(0, np.int64)
    new_csr = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(kept_depths, out=new_csr[1:])
    gather = (np.repeat(csr[keep] if len(keep) else np.zeros(0, np.int64), kept_depths)
              + np.arange(int(new_csr[-1]), dtype=np.int64) - np.repeat(new_csr[:-1], kept_depths))
    addresses, inverse = np.unique(pcs[gather], return_inverse=True)
    return values, new_csr, inverse.astype(np.int64).reshape(-1), addresses.tolist()
