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
import numpy as np

from pprof_py.errors import ProfileFormatError
from pprof_py.formats.procmaps import parse_maps
from pprof_py.model import Profile, Location, ValueType

MAX_DEPTH = 1 << 16
# Sample counts must fit profile.proto's int64 (a real one is far smaller).
MAX_COUNT = (1 << 63) - 1


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
    dtype = np.dtype(f"{order}u{width}")
    words = np.frombuffer(data, dtype=dtype, count=n_words).astype(np.uint64)
    # memoryview indexing is much faster than numpy scalar indexing for the
    # record walk below.
    slots = memoryview(words.view(np.uint64).tobytes()).cast("Q")

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

    starts = np.array(record_starts, dtype=np.int64)
    counts = words[starts] if len(starts) else np.zeros(0, np.uint64)
    if len(counts) and counts.max() > MAX_COUNT:
        r = int(np.argmax(counts > MAX_COUNT))
        raise ProfileFormatError(path, f"corrupted CPU profile: sample count {int(counts[r])} too large",
                                 word_offset(record_starts[r]))
    depths = (words[starts + 1] if len(starts) else np.zeros(0, np.uint64)).astype(np.int64)
    if partial_depth is not None:
        depths[-1] = partial_depth
    # Flat index of every pc slot: for record r, starts[r]+2 .. +depth.
    total = int(depths.sum())
    rec_of_slot = np.repeat(np.arange(len(starts)), depths)
    first_slot = np.repeat(starts + 2, depths)
    csr = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(depths, out=csr[1:])
    pos_in_stack = np.arange(total, dtype=np.int64) - np.repeat(csr[:-1], depths)
    pcs = words[first_slot + pos_in_stack]
    if adjust:
        pcs = pcs - (pos_in_stack > 0).astype(np.uint64)   # return address -> call site
    del rec_of_slot

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
    np.add.at(values[:, 0], rows, counts.astype(np.float64))
    kept_depths = depths[keep] if len(keep) else np.zeros(0, np.int64)
    new_csr = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(kept_depths, out=new_csr[1:])
    gather = (np.repeat(csr[keep] if len(keep) else np.zeros(0, np.int64), kept_depths)
              + np.arange(int(new_csr[-1]), dtype=np.int64) - np.repeat(new_csr[:-1], kept_depths))
    kept_pcs = pcs[gather]
    addresses, inverse = np.unique(kept_pcs, return_inverse=True)

    maps_text = data[end * width:].decode("utf-8", "surrogateescape") if end is not None else ""
    return Profile(
        kind="cpu",
        sample_types=[ValueType("samples", "count")],
        values=values,
        stack_starts=new_csr,
        stack_locations=inverse.astype(np.int64).reshape(-1),
        locations=[Location(int(a)) for a in addresses.tolist()],
        mappings=parse_maps(maps_text),
        period=int(period),
        address_width=16 if width == 8 else 8,
        truncated=(truncated, True) if truncated is not None else None,
    )
