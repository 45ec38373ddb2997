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

from pprof_py.symbolize.demangle import demangle
from pprof_py.symbolize.dwarf import DwarfIndex

CACHE_VERSION = 8


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


def _load(path):
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        if data.get("version") == CACHE_VERSION:
            return data["answers"]
    except Exception:       # missing, truncated or foreign: start over
        pass
    return {}


def _store(path, answers):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"version": CACHE_VERSION, "answers": answers}, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass        # a read-only home is not an error


def _facts(obj, dwarf_obj, dwarf, address):
    """What addr2line needs to answer for `address`, before its stateful
    naming rules are applied: (frames or None, elf symbol or None)."""
    frames = dwarf.frames_for(address) if dwarf is not None else None
    if frames is None:
        return None, obj.function_symbol_at(address)
    # With DWARF, BFD looks symbols up in the file that carries the DWARF.
    return frames, dwarf_obj.function_symbol_at(address)


def replay_addr2line(addresses, facts, inline=True):
    """Emulate `addr2line -f -C -i` fed `addresses` in this order.

    BFD names the innermost function of an address by its linkage name; when
    DWARF only has a plain name (C++ DW_AT_name), it asks the ELF symbol
    table instead, prints that symbol, adopts the symbol's name for good if
    the symbol starts where the function does, and in any case never asks
    again for that function.  So answers depend on the order of queries:
    pprof sends each object's addresses in ascending order, and we replay
    the same sequence.  Without `inline` (addr2line run without -i) only the
    innermost line is printed.  Returns {address: [(name, "file:line")]},
    innermost first, names demangled."""
    state = {}
    result = {}
    for address in addresses:
        frames, sym = facts[address]
        if frames is None:
            name = demangle(sym[0]) if sym else "??"
            file_name = sym[2] if sym and sym[2] is not None else "??"
            result[address] = [(name, f"{file_name}:0")]
            continue
        out = []
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
                    if sym is not None:
                        printed = sym[0]
                        if sym[1] == low:
                            name = sym[0]
                    else:
                        printed = name
                    state[key] = (name, True)
            else:
                printed = name
            out.append((demangle(printed) if printed else "??", f"{file_name}:{line}"))
            if not inline:
                break
        result[address] = out
    return result


def object_symbols(obj, addresses, use_cache=True):
    """{address: (frames, nm full name or None)} for the given file-relative
    addresses of `obj`."""
    path = _cache_path(obj) if use_cache else None
    answers = _load(path) if path else {}
    missing = [a for a in addresses if a not in answers]
    if missing:
        dwarf_obj = obj.dwarf_object()
        dwarf = DwarfIndex(dwarf_obj.elf, missing) if dwarf_obj is not None else None
        for a in missing:
            answers[a] = (_facts(obj, dwarf_obj, dwarf, a), obj.nm_lookup(a))
        if path:
            _store(path, answers)
    ordered = sorted(set(addresses))
    obj.nm_table()
    lines = replay_addr2line(ordered, {a: answers[a][0] for a in ordered}, inline=obj.has_fini)
    return {a: (lines[a], answers[a][1]) for a in ordered}
