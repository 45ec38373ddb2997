"""Build the native parts (CPU sampler, allocator) as plain shared libraries.

Each folder under pprof_py/native/src/ is one library, except common/,
which every library compiles in.  We build them as
setuptools Extensions so that `pip install .` and `pip install -e .` both put
them inside the package; they have no Python entry point and are loaded with
ctypes or LD_PRELOAD, never imported.  pprof_py.native.libpath() finds them
(setuptools appends the interpreter's EXT_SUFFIX to the file name).
"""
import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join("pprof_py", "native", "src")
COMMON_FLAGS = ["-O2", "-g", "-fno-omit-frame-pointer", "-fvisibility=default",
                "-pthread", "-Wall", "-Wno-unused-function"]

# library name -> (extra compile args, libraries)
LIBRARIES = {
    # hidden by default: only profiler.h and the documented interposed libc
    # functions are exported (PP_EXPORT, docs/sampler.md)
    "profiler": (["-fvisibility=hidden"], ["dl", "rt", "pthread"]),
    "malloc": (["-fno-builtin", "-ftls-model=initial-exec", "-fno-optimize-sibling-calls",
                "-fno-stack-protector", "-funwind-tables"], ["dl", "rt", "pthread", "m"]),
}

# extra link flags per library: the linker-made bounds of the sampler's
# pp_trampoline section (collector.c) stay internal too
LINK_FLAGS = {"profiler": ["-Wl,-z,start-stop-visibility=hidden"]}


def native_extensions():
    extensions = []
    for name, (flags, libs) in LIBRARIES.items():
        sources = sorted(glob.glob(os.path.join(SRC, name, "*.c")))
        if not sources:
            continue
        # src/common: code both libraries compile in (hidden symbols)
        sources += sorted(glob.glob(os.path.join(SRC, "common", "*.c")))
        extensions.append(Extension(
            "pprof_py.native._lib" + name,
            sources=sources,
            include_dirs=[os.path.join("pprof_py", "native", "include"),
                          os.path.join(SRC, name), os.path.join(SRC, "common")],
            extra_compile_args=COMMON_FLAGS + flags,
            extra_link_args=["-pthread"] + LINK_FLAGS.get(name, []),
            libraries=libs,
            depends=sorted(glob.glob(os.path.join(SRC, name, "*.h")) + glob.glob(os.path.join(SRC, "common", "*.h"))),
        ))
    return extensions


setup(ext_modules=native_extensions())
