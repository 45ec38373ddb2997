"""Native parts of pprof_py: the CPU sampler, the allocator and the
symbolizer's DWARF decoder (symbolize/dwarfnative.py).

They are plain C shared libraries built at install time (see setup.py) and
shipped inside this package.  Find them with :func:`libpath`; load them with
ctypes or put them in LD_PRELOAD.
"""
import glob
import importlib.machinery
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


class NativeLibraryMissing(RuntimeError):
    """The shared library was not built (package installed without a compiler?)."""


def libpath(name):
    """Absolute path of the bundled native library `name` ('profiler', 'malloc' or 'dwarf')."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = os.path.join(_HERE, "_lib" + name + suffix)
        if os.path.exists(candidate):
            return candidate
    found = sorted(glob.glob(os.path.join(_HERE, "_lib" + name + "*.so")))
    if found:
        return found[0]
    raise NativeLibraryMissing(
        f"native library '{name}' is not built; reinstall with `pip install .` on a machine with a C compiler")


def include_dir():
    """Folder with the C headers (profiler.h, heap-profiler.h, malloc_extension.h)."""
    return os.path.join(_HERE, "include")
