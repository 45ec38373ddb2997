"""Per-object symbolization, with an on-disk cache.

For each object file we compute, per file-relative address, the facts
addr2line's answer is made of (DWARF function chain, line, ELF symbol) and
the nm name; the answer itself depends on the order of queries and is
replayed from the facts each time (replay_addr2line).
Results are stored under the user cache directory
(``$XDG_CACHE_HOME/pprof_py``, default ``~/.cache/pprof_py``) in one file per
object, keyed by its build-id (or path + size + mtime when it has none), so
a second run on the same binary reads answers instead of decoding DWARF.
The file is plain arrays behind a JSON header (the format is described
above _load): reading one cannot run code, and a damaged, truncated or
foreign cache file is a miss (one warning, then rebuilt and rewritten).
"""
import bisect
import gc
import hashlib
import json
import operator
import os
import stat
import struct
import sys
import tempfile
from array import array
from itertools import islice, repeat

from elftools.common.exceptions import DWARFError, ELFError

from pprof_py.symbolize.demangle import demangle

CACHE_VERSION = 13


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pprof_py")


def _cache_path(obj):
    try:
        st = os.stat(obj.path)
    except OSError:
        return None
    ident = obj.build_id or f"{os.path.realpath(obj.path)}:{st.st_size}:{st.st_mtime_ns}"
    debug = obj.separate_debug_path() if not obj.has_dwarf() else None
    if debug:
        dst = os.stat(debug)
        ident += f"|{debug}:{dst.st_size}:{dst.st_mtime_ns}"
    key = hashlib.sha1(f"{ident}|{st.st_size}".encode()).hexdigest()
    return os.path.join(cache_dir(), key + SUFFIX)


class _Store:
    """Facts per address, array-shaped: sorted `addresses` (array "Q"), the
    index of each address's fact in `facts` (array "q"), and the distinct
    facts.  Thousands of addresses share a fact (same line, same inlining),
    so this stays small on disk and quick to load.  `has_fini` is the
    object's ObjectFile.has_fini as the file recorded it (None: not known),
    so that a warm run need not read the object's symbol tables.

    Plain `array`s, not numpy: a warm run on a small profile then never
    imports numpy (60 ms, a third of such a run)."""

    def __init__(self, addresses=None, ids=None, facts=None, has_fini=None):
        self.addresses = addresses if addresses is not None else array("Q")
        self.ids = ids if ids is not None else array("q")
        self.facts = facts if facts is not None else []
        self.has_fini = has_fini
        self._fact_ids = None

    def lookup(self, addrs):
        """Fact ids (a list) for the sorted unique list `addrs` (-1 where
        unknown).  A few addresses are bisected; many (a big profile asks
        about most of what the file holds) go through one dict."""
        known, ids = self.addresses, self.ids
        if len(addrs) * 16 < len(known):
            out = []
            for a in addrs:
                i = bisect.bisect_left(known, a)
                out.append(ids[i] if i < len(known) and known[i] == a else -1)
            return out
        return list(map(dict(zip(known, ids)).get, addrs, repeat(-1)))

    def intern(self, fact):
        if self._fact_ids is None:
            self._fact_ids = {f: i for i, f in enumerate(self.facts)}
        i = self._fact_ids.get(fact)
        if i is None:
            i = self._fact_ids[fact] = len(self.facts)
            self.facts.append(fact)
        return i

    def add(self, addrs, ids):
        """Add the addresses `addrs` (not yet known) with their fact ids."""
        pairs = sorted(zip(list(self.addresses) + list(addrs), list(self.ids) + list(ids)))
        self.addresses = array("Q", [a for a, _ in pairs])
        self.ids = array("q", [i for _, i in pairs])


# ---- the cache file -------------------------------------------------------
#
# A cache file must not be able to run code when read (a pickle can), so it is
# plain data:
#
#     MAGIC                         b"PPROFPY-SYMCACHE\n"
#     header                        one line of JSON, at most MAX_HEADER bytes:
#                                   {"version": CACHE_VERSION,
#                                    "has_fini": true or false,
#                                    "arrays": [[name, dtype, count], ...]}
#     the arrays                    raw little-endian data, in header order,
#                                   each padded to a multiple of 8 bytes
#
# The arrays hold the _Store column by column (ARRAYS below): the addresses
# and their fact ids, the facts (a range of frames, the ELF symbol, the nm
# name), the frames, and the strings (one UTF-8 text, "surrogatepass" so that
# names holding undecodable bytes round-trip, cut at character offsets).
# Every index is checked against the length of what it points into before
# use; a file that fails any check is a miss: rebuilt, with one warning.

MAGIC = b"PPROFPY-SYMCACHE\n"
MAX_HEADER = 4096
SUFFIX = ".symcache"

# name -> dtype ("<" little-endian, u/i unsigned/signed, size in bytes; read
# into Python arrays of _TYPECODES).  -1 in a string-index column means None.
ARRAYS = {
    "addresses": "<u8",       # sorted, file-relative
    "ids": "<i8",             # fact of each address
    "fact_frame_start": "<i8",
    "fact_frame_count": "<i8",  # -1: no DWARF frames (frames is None)
    "fact_sym_name": "<i8",     # -1: no ELF symbol (sym is None)
    "fact_sym_value": "<u8",
    "fact_sym_file": "<i8",
    "fact_nm": "<i8",
    # The functions frames are in: (DIE key, name, is_linkage, low), each once.
    "func_key_cu": "<i8",       # -1: no DIE key (None)
    "func_key_offset": "<i8",
    "func_name": "<i8",
    "func_linkage": "<u1",
    "func_low": "<u8",
    "func_has_low": "<u1",
    # Frames: a function and the file:line printed on its line.
    "frame_func": "<i8",
    "frame_file": "<i8",
    "frame_line": "<i8",        # -1: None
    "string_offsets": "<i8",    # len(strings) + 1 character offsets into text
    "text": "<u1",              # all strings, UTF-8 (surrogatepass)
}
_FACT_COLUMNS = [n for n in ARRAYS if n.startswith("fact_")]
_FUNC_COLUMNS = [n for n in ARRAYS if n.startswith("func_")]
_FRAME_COLUMNS = [n for n in ARRAYS if n.startswith("frame_")]
_TYPECODES = {"<u8": "Q", "<i8": "q", "<u1": "B"}
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

_warned = False


class CacheDamaged(Exception):
    """A cache file that is not one of ours, truncated, or inconsistent."""


def _warn_once(warn, path, reason):
    global _warned
    if warn is not None and not _warned:
        _warned = True
        warn(f"warning: ignoring symbol cache {path} ({reason}); rebuilding it")


def _read_private_file(path):
    """The bytes of the regular file `path`, or None if there is none.
    Raises CacheDamaged for a file that is not ours to trust: not a regular
    file, owned by someone else, or writable by others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheDamaged(f"cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheDamaged("not a regular file")
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise CacheDamaged("not a private file of this user")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(st.st_size + 1)
    except OSError as exc:
        raise CacheDamaged(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_header(data, magic, version, what):
    """The JSON header of a plain-data file (the layout above: `magic`,
    one JSON line) and where its arrays start; raises CacheDamaged unless
    it is one of ours at `version`.  (namecache.py's files share the
    layout.)"""
    if not data.startswith(magic):
        raise CacheDamaged(f"not a pprof_py {what}")
    nl = data.find(b"\n", len(magic), len(magic) + MAX_HEADER)
    if nl < 0:
        raise CacheDamaged("truncated header")
    try:
        header = json.loads(data[len(magic):nl].decode("ascii"))
        found = header["version"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CacheDamaged("damaged header") from None
    if found != version:
        raise CacheDamaged(f"format version {found!r}, not {version}")
    return header, nl + 1


def read_arrays(data, pos, layout):
    """{name: array} of the arrays at `pos`: `layout` lists (name, array
    typecode, count), each padded to 8 bytes, and nothing may follow them;
    raises CacheDamaged."""
    arrays = {}
    view = memoryview(data)
    for name, typecode, count in layout:
        values = array(typecode)
        size = values.itemsize * count
        if count < 0 or pos + size > len(data):
            raise CacheDamaged("truncated")
        values.frombytes(view[pos:pos + size])
        if sys.byteorder != "little" and values.itemsize > 1:
            values.byteswap()
        arrays[name] = values
        pos += (size + 7) & ~7
    if pos != len(data):
        raise CacheDamaged("trailing bytes")
    return arrays


def pack_file(magic, header, columns):
    """The bytes of a plain-data file: `magic`, `header` as one JSON line,
    then each array of `columns` little-endian, padded to 8 bytes."""
    out = [magic, json.dumps(header).encode("ascii") + b"\n"]
    for column in columns:
        if sys.byteorder != "little" and column.itemsize > 1:
            column = array(column.typecode, column)
            column.byteswap()
        raw = column.tobytes()
        out.append(raw + b"\0" * (-len(raw) % 8))
    return b"".join(out)


def _decode(data):
    """(header, {name: array}) of a cache file; raises CacheDamaged."""
    header, pos = read_header(data, MAGIC, CACHE_VERSION, "symbol cache")
    try:
        layout = [(str(n), str(t), int(c)) for n, t, c in header["arrays"]]
        if not isinstance(header["has_fini"], bool):
            raise CacheDamaged("damaged header")
    except (ValueError, KeyError, TypeError):
        raise CacheDamaged("damaged header") from None
    if [(n, t) for n, t, _ in layout] != list(ARRAYS.items()):
        raise CacheDamaged("unexpected arrays")
    arrays = read_arrays(data, pos, [(n, _TYPECODES[t], c) for n, t, c in layout])
    _check(arrays)
    return header, arrays


def _check(a):
    """Every length and index of the arrays is consistent (raises CacheDamaged)."""
    def fail(what):
        raise CacheDamaged(what)

    n_facts = len(a["fact_frame_start"])
    n_funcs = len(a["func_key_cu"])
    n_frames = len(a["frame_func"])
    n_strings = len(a["string_offsets"]) - 1
    if len(a["ids"]) != len(a["addresses"]) or any(len(a[c]) != n_facts for c in _FACT_COLUMNS) \
            or any(len(a[c]) != n_funcs for c in _FUNC_COLUMNS) \
            or any(len(a[c]) != n_frames for c in _FRAME_COLUMNS) or n_strings < 0:
        fail("inconsistent lengths")
    # (min, max and map over arrays run in C: this stays a small part of
    # a warm run on 200,000 stacks.)
    if n_frames and (min(a["frame_func"]) < 0 or max(a["frame_func"]) >= n_funcs):
        fail("function index out of range")
    addresses = a["addresses"]
    if len(addresses) > 1 and not all(map(operator.lt, addresses, islice(addresses, 1, None))):
        fail("addresses out of order")
    if len(a["ids"]) and (min(a["ids"]) < 0 or max(a["ids"]) >= n_facts):
        fail("fact index out of range")
    start, count = a["fact_frame_start"], a["fact_frame_count"]
    if n_facts and (min(count) < -1 or any(c >= 0 and not 0 <= s <= n_frames - c for s, c in zip(start, count))):
        fail("frame range out of range")
    for column in ("fact_sym_name", "fact_sym_file", "fact_nm", "func_name", "frame_file"):
        if len(a[column]) and (min(a[column]) < -1 or max(a[column]) >= n_strings):
            fail("string index out of range")
    offsets = a["string_offsets"]
    if offsets[0] != 0 or not all(map(operator.le, offsets, islice(offsets, 1, None))):
        fail("string offsets out of order")


def _facts_from_arrays(a):
    """store.facts from the arrays: one list comprehension per column (the
    tuples are made by zip, in C).  (Called with the garbage collector
    paused, see object_symbols.)"""
    try:
        text = a["text"].tobytes().decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise CacheDamaged("strings are not UTF-8") from None
    offsets = a["string_offsets"].tolist()
    if offsets[-1] != len(text):
        raise CacheDamaged("string offsets do not match the text")
    strings = [text[i:j] for i, j in zip(offsets, offsets[1:])]
    strings.append(None)        # string index -1 is None
    col = {n: a[n].tolist() for n in _FACT_COLUMNS + _FUNC_COLUMNS + _FRAME_COLUMNS}
    funcs = list(zip(
        [k if k[0] >= 0 else None for k in zip(col["func_key_cu"], col["func_key_offset"])],
        [strings[i] for i in col["func_name"]],
        list(map(bool, col["func_linkage"])),
        [low if has else None for low, has in zip(col["func_low"], col["func_has_low"])]))
    frames = [funcs[f] + (strings[file_index], line if line >= 0 else None)
              for f, file_index, line in zip(col["frame_func"], col["frame_file"], col["frame_line"])]
    return list(zip(
        [tuple(frames[s:s + c]) if c >= 0 else None
         for s, c in zip(col["fact_frame_start"], col["fact_frame_count"])],
        [(strings[n], v, strings[f]) if n >= 0 else None
         for n, v, f in zip(col["fact_sym_name"], col["fact_sym_value"], col["fact_sym_file"])],
        [strings[i] for i in col["fact_nm"]]))


def _load(path, warn=None):
    """The cached store at `path`; an empty one when there is none or it is
    damaged (then warn once)."""
    try:
        data = _read_private_file(path)
        if data is None:
            return _Store()
        header, arrays = _decode(data)
        return _Store(arrays["addresses"], arrays["ids"], _facts_from_arrays(arrays), header["has_fini"])
    except CacheDamaged as exc:
        _warn_once(warn, path, str(exc))
        return _Store()


class _Unrepresentable(Exception):
    """A fact with a value the file format has no room for (not cached)."""


def _encode(store, has_fini):
    """The bytes of a cache file for `store` (raises _Unrepresentable)."""
    strings = {}
    pieces = []
    length = [0]
    offsets = [0]

    def string(v):
        if v is None:
            return -1
        i = strings.get(v)
        if i is None:
            i = strings[v] = len(pieces)
            pieces.append(v)
            length[0] += len(v)
            offsets.append(length[0])
        return i

    def int64(v, none=-1):
        if v is None:
            return none
        if not 0 <= v <= _INT64_MAX:
            raise _Unrepresentable()
        return v

    def uint64(v):
        if not 0 <= v <= _UINT64_MAX:
            raise _Unrepresentable()
        return v

    cols = {n: [] for n in _FACT_COLUMNS + _FUNC_COLUMNS + _FRAME_COLUMNS}
    func_ids = {}
    for frames, sym, nm_name in store.facts:
        cols["fact_frame_start"].append(len(cols["frame_func"]))
        cols["fact_frame_count"].append(-1 if frames is None else len(frames))
        for key, name, is_linkage, low, file_name, line in frames or ():
            func = (key, name, is_linkage, low)
            f = func_ids.get(func)
            if f is None:
                f = func_ids[func] = len(func_ids)
                cols["func_key_cu"].append(-1 if key is None else int64(key[0]))
                cols["func_key_offset"].append(0 if key is None else int64(key[1]))
                cols["func_name"].append(string(name))
                cols["func_linkage"].append(1 if is_linkage else 0)
                cols["func_low"].append(0 if low is None else uint64(low))
                cols["func_has_low"].append(0 if low is None else 1)
            cols["frame_func"].append(f)
            cols["frame_file"].append(string(file_name))
            cols["frame_line"].append(int64(line))
        cols["fact_sym_name"].append(-1 if sym is None else string(sym[0]))
        cols["fact_sym_value"].append(0 if sym is None else uint64(sym[1]))
        cols["fact_sym_file"].append(-1 if sym is None else string(sym[2]))
        cols["fact_nm"].append(string(nm_name))
    cols["addresses"], cols["ids"] = store.addresses, store.ids
    cols["string_offsets"] = offsets
    try:
        cols["text"] = "".join(pieces).encode("utf-8", "surrogatepass")
    except UnicodeEncodeError:
        raise _Unrepresentable() from None
    arrays = {}
    for name, dtype in ARRAYS.items():
        try:
            arrays[name] = array(_TYPECODES[dtype], cols[name])
        except OverflowError:
            raise _Unrepresentable() from None
    layout = [[name, dtype, len(arrays[name])] for name, dtype in ARRAYS.items()]
    header = {"version": CACHE_VERSION, "has_fini": bool(has_fini), "arrays": layout}
    return pack_file(MAGIC, header, [arrays[name] for name in ARRAYS])


def _private_dir(path):
    """Create the cache directory 0700 (or tighten ours); False when it is
    not a directory of this user that only they can write."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return False
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return True


def _store(path, store, has_fini):
    """Write the cache file.  Failing to write is not an error."""
    try:
        data = _encode(store, has_fini)
    except (_Unrepresentable, TypeError, ValueError):
        return
    write_private_file(path, data)


def write_private_file(path, data):
    """Write `data` to `path` atomically (a temporary file renamed over
    it), 0600 in a 0700 directory of this user.  Failing to write is not
    an error: the cache is only a cache."""
    directory = os.path.dirname(path)
    tmp = None
    try:
        if not _private_dir(directory):
            return
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")     # O_EXCL, 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass        # a read-only home is not an error
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _facts(obj, dwarf_obj, dwarf, address):
    """What addr2line and nm need to answer for `address`, before
    addr2line's stateful naming rules are applied:
    (frames or None, elf symbol or None, nm name)."""
    frames = dwarf.frames_for(address) if dwarf is not None else None
    nm_name = obj.nm_lookup(address)
    if frames is None:
        return None, obj.function_symbol_at(address), nm_name
    # With DWARF, BFD looks symbols up in the file that carries the DWARF.
    return tuple(frames), dwarf_obj.function_symbol_at(address), nm_name


def replay_addr2line(fact_ids, facts, inline=True):
    """Emulate `addr2line -f -C -i` fed addresses in order; `fact_ids`
    gives each address's fact.

    BFD names the innermost function of an address by its linkage name; when
    DWARF only has a plain name (C++ DW_AT_name), it asks the ELF symbol
    table instead, prints that symbol, adopts the symbol's name for good if
    the symbol starts where the function does, and in any case never asks
    again for that function.  So answers depend on the order of queries:
    pprof sends each object's addresses in ascending order, and we replay
    the same sequence.  Without `inline` (addr2line run without -i) only the
    innermost line is printed.  Returns one answer per address: a tuple of
    (name, "file:line"), innermost first, names demangled.  Equal answers
    are the same object, so later stages can memoize on identity."""
    state = {}
    version = 0            # bumps whenever a function's name changes for good
    memo = {}              # fact id -> (version, answer)
    out = []
    for fid in fact_ids:
        hit = memo.get(fid)
        if hit is not None and hit[0] == version:
            out.append(hit[1])
            continue
        frames, sym, _ = facts[fid]
        if frames is None:
            name = demangle(sym[0]) if sym else "??"
            file_name = sym[2] if sym and sym[2] is not None else "??"
            answer = ((name, f"{file_name}:0"),)
            memo[fid] = (version, answer)
            out.append(answer)
            continue
        lines = []
        first_query = False
        for i, (key, name, is_linkage, low, file_name, line) in enumerate(frames):
            if key is not None and key in state:
                name, is_linkage = state[key]
            if i == 0:
                if key is None:
                    printed = sym[0] if sym else "??"
                    if file_name == "??" and line == 0 and sym and sym[2] is not None:
                        file_name = sym[2]
                elif is_linkage:
                    printed = name
                else:
                    first_query = True
                    if sym is not None:
                        printed = sym[0]
                        if sym[1] == low and name != sym[0]:
                            name = sym[0]
                            version += 1
                    else:
                        printed = name
                    state[key] = (name, True)
            else:
                printed = name
            lines.append((demangle(printed) if printed else "??", f"{file_name}:{line}"))
            if not inline:
                break
        answer = tuple(lines)
        # A first query's answer is not what the next query of the same
        # function gets (the state changed), so it is not memoized.
        if not first_query:
            memo[fid] = (version, answer)
        out.append(answer)
    return out


# What a damaged .debug_* section makes our readers raise.
# (pyelftools checks some fields with assert: a zeroed .debug_info fails one.)
DWARF_DAMAGE = (ValueError, IndexError, KeyError, TypeError, AssertionError, struct.error, ELFError,
                DWARFError)


def object_symbols(obj, addresses, use_cache=True, progress=None, warn=None):
    """Symbolize file-relative `addresses` of `obj`: returns (sorted unique
    addresses, [addr2line answer per address], [nm full name per address]).
    `warn` receives the one warning about a damaged cache file.

    The cyclic garbage collector is paused meanwhile: this makes hundreds
    of thousands of tuples (facts, answers) and no garbage cycles, and the
    collections they would trigger cost a third of a warm run's time here."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _object_symbols(obj, addresses, use_cache, progress, warn)
    finally:
        if enabled:
            gc.enable()


def _object_symbols(obj, addresses, use_cache, progress, warn):
    path = _cache_path(obj) if use_cache else None
    store = _load(path, warn) if path else _Store()
    addrs = list(addresses)
    if not all(map(operator.lt, addrs, islice(addrs, 1, None))):
        addrs = sorted(set(addrs))          # (the Symbolizer's are already)
    ids = store.lookup(addrs)
    missing = [a for a, i in zip(addrs, ids) if i < 0]
    # Read from the cache file when it has one: a warm run then never reads
    # the object's symbol tables.
    has_fini = store.has_fini if store.has_fini is not None else obj.has_fini
    if missing:
        # Imported here: pyelftools' DWARF readers are not needed when every
        # address is in the cache.
        from pprof_py.symbolize.dwarf import DwarfIndex
        dwarf_obj = obj.dwarf_object()
        try:
            dwarf = DwarfIndex(dwarf_obj, missing) if dwarf_obj is not None else None
            if dwarf is not None:
                dwarf.sections.prefetch(".debug_info")
        except DWARF_DAMAGE as exc:
            obj.dwarf_damage = f"{type(exc).__name__}: {exc}"
            dwarf = None
        if dwarf is not None:
            # Every fact needs both symbol tables: build them while
            # .debug_info inflates in its own thread.
            obj.nm_table()[0]
            dwarf_obj.build_function_symbols()
        new_ids = []
        for k, a in enumerate(missing):
            try:
                fact = _facts(obj, dwarf_obj, dwarf, a)
            except DWARF_DAMAGE as exc:
                # Damaged debug info: like addr2line, fall back to the
                # symbol table for the rest of this object.
                obj.dwarf_damage = f"{type(exc).__name__}: {exc}"
                dwarf = None
                fact = _facts(obj, dwarf_obj, dwarf, a)
            new_ids.append(store.intern(fact))
            if progress is not None and k % 2048 == 0:
                progress(k, len(missing))
        if getattr(obj, "dwarf_damage", None):
            path = None         # do not cache answers made without the DWARF
        fill = iter(new_ids)
        ids = [i if i >= 0 else next(fill) for i in ids]
        store.add(missing, new_ids)
        if path:
            _store(path, store, has_fini)
    answers = replay_addr2line(ids, store.facts, inline=has_fini)
    nm_of_fact = [fact[2] for fact in store.facts]
    nm_names = [nm_of_fact[i] for i in ids]
    return addrs, answers, nm_names
