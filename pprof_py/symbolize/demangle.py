"""C++ name demangling, in process.

We call the Itanium ABI demangler that every C++ runtime exports
(``__cxa_demangle`` in libstdc++ or libc++) through ctypes, so no c++filt
process is needed.  It prints the same text as binutils for the names pprof
shows (both derive from libiberty's cp-demangle).  If no C++ runtime is
present, names stay mangled.
"""
import ctypes
import ctypes.util
import functools

_demangler = None


def _load():
    global _demangler
    if _demangler is not None:
        return _demangler
    _demangler = False
    for name in ("stdc++", "c++"):
        path = ctypes.util.find_library(name)
        candidates = [path] if path else []
        candidates += ["libstdc++.so.6", "libc++.so.1"]
        for candidate in candidates:
            try:
                lib = ctypes.CDLL(candidate)
                fn = lib.__cxa_demangle
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_void_p
            fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            libc = ctypes.CDLL(None)
            libc.free.argtypes = [ctypes.c_void_p]
            _demangler = (fn, libc.free)
            return _demangler
    return _demangler


@functools.lru_cache(maxsize=1 << 16)
def demangle(name):
    """Demangle an Itanium C++ symbol name; return `name` unchanged when it is
    not a mangled name or cannot be demangled.  A symbol version suffix
    (``@GLIBCXX_3.4``) is kept after the demangled name, as nm prints it."""
    if not name.startswith("_Z"):
        return name
    base, sep, version = name.partition("@")
    loaded = _load()
    if not loaded:
        return name
    fn, free = loaded
    status = ctypes.c_int(0)
    ptr = fn(base.encode("utf-8", "surrogateescape"), None, None, ctypes.byref(status))
    if status.value != 0 or not ptr:
        return name
    try:
        text = ctypes.string_at(ptr).decode("utf-8", "surrogateescape")
    finally:
        free(ptr)
    return text + sep + version
