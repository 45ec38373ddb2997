"""Per-object symbolization, with an on-disk cache.

For each object file we compute, per file-relative address, the addr2line
frames (full function name, "file:line"), innermost first, and the nm name.
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

CACHE_VERSION = 3


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


def _addr2line(obj, dwarf, address):
    """What `addr2line -f -C -i` prints for `address`: [(function, file:line)]."""
    frames = dwarf.frames_for(address) if dwarf is not None else None
    if frames is None:
        name = obj.function_symbol_at(address)
        return [(demangle(name) if name else "??", "??:0")]
    result = []
    for i, (name, file_name, line) in enumerate(frames):
        if name is None:
            sym = obj.function_symbol_at(address) if i == 0 else None
            name = demangle(sym) if sym else "??"
        result.append((name, f"{file_name}:{line}"))
    return result


def object_symbols(obj, addresses, use_cache=True):
    """{address: (frames, nm full name or None)} for the given file-relative
    addresses of `obj`."""
    path = _cache_path(obj) if use_cache else None
    answers = _load(path) if path else {}
    missing = [a for a in addresses if a not in answers]
    if missing:
        dwarf_obj = obj.dwarf_object()
        dwarf = DwarfIndex(dwarf_obj.elf) if dwarf_obj is not None else None
        for a in missing:
            answers[a] = (_addr2line(obj, dwarf, a), obj.nm_lookup(a))
        if path:
            _store(path, answers)
    return {a: answers[a] for a in addresses}
