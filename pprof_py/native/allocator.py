"""ctypes wrapper for pprof_py's allocator statistics and heap profiler.

Usable only in a process whose malloc *is* pprof_py's allocator, i.e. a
process started with the library in LD_PRELOAD::

    pprof-run --malloc -- python3 my_script.py
    LD_PRELOAD=$(pprof-run --print-lib malloc) python3 my_script.py

In such a process::

    from pprof_py.native import allocator
    stats = allocator.stats()            # dict of byte counts
    allocator.release_free_memory()
    print(allocator.stats_text())

Anywhere else every function raises :class:`AllocatorNotActive`: loading the
library with ctypes after start-up would give a second, unused heap.
"""
import ctypes
import os

from pprof_py.native import libpath

__all__ = ["AllocatorNotActive", "MallocStats", "is_active", "stats", "stats_text",
           "release_free_memory", "numeric_property", "good_size",
           "heap_profiler_start", "heap_profiler_stop", "heap_profiler_dump",
           "heap_profiler_running", "get_heap_profile"]


class AllocatorNotActive(RuntimeError):
    """pprof_py's allocator is not this process's malloc (not in LD_PRELOAD)."""


class MallocStats(ctypes.Structure):
    """Mirror of struct pprofpy_malloc_stats (include/malloc_extension.h)."""
    _fields_ = [
        ("allocated_bytes", ctypes.c_size_t),
        ("heap_size", ctypes.c_size_t),
        ("pageheap_free_bytes", ctypes.c_size_t),
        ("pageheap_unmapped_bytes", ctypes.c_size_t),
        ("central_cache_free_bytes", ctypes.c_size_t),
        ("transfer_cache_free_bytes", ctypes.c_size_t),
        ("thread_cache_free_bytes", ctypes.c_size_t),
        ("metadata_bytes", ctypes.c_size_t),
        ("thread_caches", ctypes.c_size_t),
        ("size_classes", ctypes.c_size_t),
        ("release_threshold", ctypes.c_size_t),
        ("fragmentation", ctypes.c_double),
    ]


_lib = None


def _process_symbols():
    return ctypes.CDLL(None)


def is_active():
    """True when the process's malloc is pprof_py's allocator."""
    try:
        proc = _process_symbols()
        fn = proc.pprofpy_malloc_is_active
    except (AttributeError, OSError):
        return False
    fn.restype = ctypes.c_int
    return bool(fn())


def _library():
    global _lib
    if _lib is not None:
        return _lib
    if not is_active():
        try:
            where = libpath("malloc")
        except Exception:  # noqa: BLE001 - only used for the message
            where = "<not built>"
        raise AllocatorNotActive(
            "pprof_py's allocator is not this process's malloc; start the process with "
            f"LD_PRELOAD={where} (or `pprof-run --malloc -- python3 ...`)")
    lib = _process_symbols()
    lib.pprofpy_malloc_stats.argtypes = [ctypes.POINTER(MallocStats)]
    lib.pprofpy_malloc_stats.restype = ctypes.c_int
    lib.pprofpy_malloc_stats_text.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.pprofpy_malloc_stats_text.restype = ctypes.c_size_t
    lib.pprofpy_release_free_memory.argtypes = []
    lib.pprofpy_release_free_memory.restype = None
    lib.pprofpy_malloc_get_numeric_property.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
    lib.pprofpy_malloc_get_numeric_property.restype = ctypes.c_int
    lib.pprofpy_malloc_good_size.argtypes = [ctypes.c_size_t]
    lib.pprofpy_malloc_good_size.restype = ctypes.c_size_t
    lib.HeapProfilerStart.argtypes = [ctypes.c_char_p]
    lib.HeapProfilerStart.restype = None
    lib.HeapProfilerStop.argtypes = []
    lib.HeapProfilerStop.restype = None
    lib.HeapProfilerDump.argtypes = [ctypes.c_char_p]
    lib.HeapProfilerDump.restype = None
    lib.IsHeapProfilerRunning.argtypes = []
    lib.IsHeapProfilerRunning.restype = ctypes.c_int
    lib.GetHeapProfile.argtypes = []
    lib.GetHeapProfile.restype = ctypes.c_void_p
    lib.free.argtypes = [ctypes.c_void_p]
    lib.free.restype = None
    _lib = lib
    return lib


def stats():
    """Allocator statistics as a dict (see struct pprofpy_malloc_stats)."""
    st = MallocStats()
    _library().pprofpy_malloc_stats(ctypes.byref(st))
    return {name: getattr(st, name) for name, _ in MallocStats._fields_}


def stats_text():
    """The same report MALLOCSTATS=1 prints at exit."""
    buf = ctypes.create_string_buffer(8192)
    n = _library().pprofpy_malloc_stats_text(buf, len(buf))
    return buf.raw[:n].decode()


def release_free_memory():
    """Return every idle page to the OS (madvise MADV_DONTNEED)."""
    _library().pprofpy_release_free_memory()


def numeric_property(name):
    """tcmalloc-style property ('generic.heap_size', ...); None if unknown."""
    value = ctypes.c_size_t()
    ok = _library().pprofpy_malloc_get_numeric_property(name.encode(), ctypes.byref(value))
    return value.value if ok else None


def good_size(size):
    """Bytes actually reserved for a request of `size` bytes."""
    return _library().pprofpy_malloc_good_size(size)


def heap_profiler_start(prefix):
    _library().HeapProfilerStart(os.fsencode(prefix))


def heap_profiler_stop():
    _library().HeapProfilerStop()


def heap_profiler_dump(reason="python"):
    _library().HeapProfilerDump(reason.encode())


def heap_profiler_running():
    return bool(_library().IsHeapProfilerRunning())


def get_heap_profile():
    """The current heap profile text (gperftools format)."""
    lib = _library()
    ptr = lib.GetHeapProfile()
    if not ptr:
        return ""
    try:
        return ctypes.string_at(ptr).decode(errors="replace")
    finally:
        lib.free(ptr)
