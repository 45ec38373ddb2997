"""The names one big query gave, cached: a warm run on the same profile
skips the naming step altogether.

The symbol cache (cache.py) keeps per-address facts, and every run replays
addr2line's naming rules over them and builds pprof's (short name,
file:line, full name) frames for each distinct answer (Symbolizer._triples).
On a 200,000-stack profile (700,000 addresses, 112,000 distinct answers)
that replay and building take well over a second of a warm run, and give
the same result each time the same addresses are asked about, which is
what a second report on the same profile does.  So for big queries the
finished frames are stored too, in a file beside the object's symbol
cache, keyed by the object's cache key, the exact set of addresses asked
about and the naming options; a query with any other address set misses.
Only the last big query of each object is kept (a new one replaces it).

File format (plain data, like the symbol cache: reading it cannot run code):

    MAGIC                 b"PPROFPY-NAMES\\n"
    header                one line of JSON: {"version": NAMES_VERSION,
                          "query": sha1 hex of the query, "counts": [n per array]}
    the arrays            raw little-endian int64 / bytes, in ARRAYS order,
                          each padded to a multiple of 8 bytes:
      answer_of_address   per address asked about (ascending), its answer
      answer_starts       per answer, its first frame (plus the end)
      frame_short, frame_line, frame_full   per frame, string indices
      string_offsets      character offsets of the strings in `text`
      text                every string once, UTF-8 (surrogatepass)

Any file that fails a check (magic, version, lengths, an index out of
range) is a miss, said once like a damaged symbol cache, and rewritten.
"""
import hashlib
import operator
from array import array
from itertools import islice

from pprof_py.symbolize import cache as symcache

MAGIC = b"PPROFPY-NAMES\n"
NAMES_VERSION = 1
# Queries below this many addresses are named quickly enough from the facts.
MIN_ADDRESSES = 20000
ARRAYS = ("answer_of_address", "answer_starts", "frame_short", "frame_line", "frame_full",
          "string_offsets", "text")


def _path(obj):
    """The names file of `obj` (beside its symbol cache file), or None."""
    facts = symcache._cache_path(obj)
    if facts is None:
        return None
    return facts[:-len(symcache.SUFFIX)] + ".names"


def _query_key(addresses, strip_templates):
    """What the names depend on besides the object: the addresses, the
    naming option and the versions of both formats; None when an address
    is not a file offset (negative: a mapping that does not fit the file)."""
    digest = hashlib.sha1(f"{NAMES_VERSION}|{symcache.CACHE_VERSION}|{bool(strip_templates)}|".encode())
    try:
        digest.update(array("Q", addresses).tobytes())
    except OverflowError:
        return None
    return digest.hexdigest()


def load(obj, addresses, strip_templates, make_frame, warn=None):
    """The frames tuples (outermost first) of the sorted unique file-relative
    `addresses` as the last big query with these addresses stored them, or
    None.  `make_frame` builds one frame from (short, file:line, full)."""
    if len(addresses) < MIN_ADDRESSES:
        return None
    path = _path(obj)
    query = _query_key(addresses, strip_templates)
    if path is None or query is None:
        return None
    try:
        data = symcache._read_private_file(path)
        if data is None:
            return None
        header, arrays = _decode(data)
    except symcache.CacheDamaged as exc:
        symcache._warn_once(warn, path, str(exc))
        return None
    if header["query"] != query or len(arrays["answer_of_address"]) != len(addresses):
        return None                     # another query's names
    try:
        text = arrays["text"].tobytes().decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        symcache._warn_once(warn, path, "strings are not UTF-8")
        return None
    offsets = arrays["string_offsets"].tolist()
    if offsets[-1] != len(text):
        symcache._warn_once(warn, path, "string offsets do not match the text")
        return None
    strings = [text[i:j] for i, j in zip(offsets, offsets[1:])]
    frames = list(map(make_frame, zip([strings[i] for i in arrays["frame_short"]],
                                       [strings[i] for i in arrays["frame_line"]],
                                       [strings[i] for i in arrays["frame_full"]])))
    starts = arrays["answer_starts"].tolist()
    if len(frames) == len(starts) - 1:          # one frame each (no inlining): made in C
        answers = list(zip(frames))
    else:
        answers = [tuple(frames[s:e]) for s, e in zip(starts, starts[1:])]
    return list(map(answers.__getitem__, arrays["answer_of_address"]))


def _decode(data):
    """(header, {name: array}); raises CacheDamaged."""
    header, pos = symcache.read_header(data, MAGIC, NAMES_VERSION, "names cache")
    try:
        counts = [int(c) for c in header["counts"]]
        str(header["query"])
    except (ValueError, KeyError, TypeError):
        raise symcache.CacheDamaged("damaged header") from None
    if len(counts) != len(ARRAYS):
        raise symcache.CacheDamaged("unexpected arrays")
    arrays = symcache.read_arrays(data, pos, [(name, "B" if name == "text" else "q", count)
                                              for name, count in zip(ARRAYS, counts)])
    _check(arrays)
    return header, arrays


def _check(a):
    n_answers = len(a["answer_starts"]) - 1
    n_frames = len(a["frame_short"])
    n_strings = len(a["string_offsets"]) - 1
    if n_answers < 0 or n_strings < 0 or len(a["frame_line"]) != n_frames or len(a["frame_full"]) != n_frames:
        raise symcache.CacheDamaged("inconsistent lengths")
    starts = a["answer_starts"]
    if starts[0] != 0 or starts[-1] != n_frames or not all(map(operator.lt, starts, islice(starts, 1, None))):
        raise symcache.CacheDamaged("answer frames out of order")
    answers = a["answer_of_address"]
    if len(answers) and (min(answers) < 0 or max(answers) >= n_answers):
        raise symcache.CacheDamaged("answer index out of range")
    for column in ("frame_short", "frame_line", "frame_full"):
        if n_frames and (min(a[column]) < 0 or max(a[column]) >= n_strings):
            raise symcache.CacheDamaged("string index out of range")
    offsets = a["string_offsets"]
    if offsets[0] != 0 or not all(map(operator.le, offsets, islice(offsets, 1, None))):
        raise symcache.CacheDamaged("string offsets out of order")


def store(obj, addresses, strip_templates, named):
    """Store the frames tuples `named` (one per address of the sorted
    unique `addresses`) as this object's last big query.  Failing to
    write is not an error."""
    if len(addresses) < MIN_ADDRESSES:
        return
    path = _path(obj)
    query = _query_key(addresses, strip_templates)
    if path is None or query is None:
        return
    strings, pieces, offsets = {}, [], [0]

    def string(text):
        i = strings.get(text)
        if i is None:
            i = strings[text] = len(pieces)
            pieces.append(text)
            offsets.append(offsets[-1] + len(text))
        return i

    answer_ids = {}
    answer_of_address = []
    starts = [0]
    short, line, full = [], [], []
    for frames in named:
        k = answer_ids.get(id(frames))
        if k is None:
            k = answer_ids[id(frames)] = len(starts) - 1
            for s, fl, f in frames:
                short.append(string(s))
                line.append(string(fl))
                full.append(string(f))
            starts.append(len(short))
        answer_of_address.append(k)
    if any(e == s for s, e in zip(starts, starts[1:])):
        return                          # an answer without frames: not representable
    try:
        text = "".join(pieces).encode("utf-8", "surrogatepass")
    except UnicodeEncodeError:
        return
    columns = [array("q", answer_of_address), array("q", starts), array("q", short), array("q", line),
               array("q", full), array("q", offsets), array("B", text)]
    header = {"version": NAMES_VERSION, "query": query, "counts": [len(c) for c in columns]}
    symcache.write_private_file(path, symcache.pack_file(MAGIC, header, columns))
