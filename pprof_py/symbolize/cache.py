"""Per-object symbolization, with an on-disk cache.

For each object file we compute, per file-relative address, the facts
addr2line's answer is made of (DWARF function chain, line, ELF symbol) and
the nm name; the answer itself depends on the order of queries and is
replayed from the facts each time (replay_addr2line).
Results are stored under the user cache directory
(``$XDG_CACHE_HOME/pprof_py``, default ``~/.cache/pprof_py``) in one file per
object, keyed by its build-id (or path + size + mtime when it has none), so
a second run on the same binary reads answers instead of decoding DWARF.
The file is a pickle of {address: (frames, nm_name)} plus a format version;
a damaged or foreign cache file is ignored and rewritten.
"""
import hashlib
import os
import pickle
import tempfile

import struct

import numpy as np
from elftools.common.exceptions import DWARFError, ELFError

from pprof_py.symbolize.demangle import demangle
from pprof_py.symbolize.dwarf import DwarfIndex

CACHE_VERSION = 10


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
    return os.path.join(cache_dir(), key + ".pickle")


class _Store:
    """Facts per address, array-shaped: sorted `addresses` (uint64), the
    index of each address's fact in `facts` (int64), and the distinct
    facts.  Thousands of addresses share a fact (same line, same inlining),
    so this stays small on disk and quick to load."""

    def __init__(self, addresses=None, ids=None, facts=None):
        self.addresses = addresses if addresses is not None else np.zeros(0, np.uint64)
        self.ids = ids if ids is not None else np.zeros(0, np.int64)
        self.facts = facts if facts is not None else []
        self._fact_ids = None

    def lookup(self, addrs):
        """Fact ids for sorted unique `addrs` (-1 where unknown)."""
        pos = np.searchsorted(self.addresses, addrs)
        inside = pos < len(self.addresses)
        found = np.zeros(len(addrs), dtype=bool)
        found[inside] = self.addresses[pos[inside]] == addrs[inside]
        ids = np.full(len(addrs), -1, dtype=np.int64)
        ids[found] = self.ids[pos[found]]
        return ids

    def intern(self, fact):
        if self._fact_ids is None:
            self._fact_ids = {f: i for i, f in enumerate(self.facts)}
        i = self._fact_ids.get(fact)
        if i is None:
            i = self._fact_ids[fact] = len(self.facts)
            self.facts.append(fact)
        return i

    def add(self, addrs, ids):
        merged = np.concatenate([self.addresses, addrs])
        order = np.argsort(merged, kind="stable")
        self.addresses = merged[order]
        self.ids = np.concatenate([self.ids, ids])[order]


def _load(path):
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        if data.get("version") == CACHE_VERSION:
            return _Store(data["addresses"], data["ids"], data["facts"])
    except Exception:       # missing, truncated or foreign: start over
        pass
    return _Store()


def _store(path, store):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"version": CACHE_VERSION, "addresses": store.addresses, "ids": store.ids,
                         "facts": store.facts}, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass        # a read-only home is not an error


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
DWARF_DAMAGE = (ValueError, IndexError, KeyError, TypeError, struct.error, ELFError, DWARFError)


def object_symbols(obj, addresses, use_cache=True, progress=None):
    """Symbolize file-relative `addresses` of `obj`: returns (sorted unique
    addresses, [addr2line answer per address], [nm full name per address])."""
    path = _cache_path(obj) if use_cache else None
    store = _load(path) if path else _Store()
    addrs = np.unique(np.asarray(addresses, dtype=np.uint64))
    ids = store.lookup(addrs)
    missing = addrs[ids < 0]
    if len(missing):
        missing_list = missing.tolist()
        dwarf_obj = obj.dwarf_object()
        try:
            dwarf = DwarfIndex(dwarf_obj.elf, missing_list) if dwarf_obj is not None else None
        except DWARF_DAMAGE as exc:
            obj.dwarf_damage = f"{type(exc).__name__}: {exc}"
            dwarf = None
        new_ids = np.empty(len(missing_list), dtype=np.int64)
        for k, a in enumerate(missing_list):
            try:
                fact = _facts(obj, dwarf_obj, dwarf, a)
            except DWARF_DAMAGE as exc:
                # Damaged debug info: like addr2line, fall back to the
                # symbol table for the rest of this object.
                obj.dwarf_damage = f"{type(exc).__name__}: {exc}"
                dwarf = None
                fact = _facts(obj, dwarf_obj, dwarf, a)
            new_ids[k] = store.intern(fact)
            if progress is not None and k % 2048 == 0:
                progress(k, len(missing_list))
        if getattr(obj, "dwarf_damage", None):
            path = None         # do not cache answers made without the DWARF
        ids[ids < 0] = new_ids
        store.add(missing, new_ids)
        if path:
            _store(path, store)
    obj.nm_table()
    id_list = ids.tolist()
    answers = replay_addr2line(id_list, store.facts, inline=obj.has_fini)
    nm_names = [store.facts[i][2] for i in id_list]
    return addrs.tolist(), answers, nm_names
