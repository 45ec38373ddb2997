"""Build the native parts (CPU sampler, allocator) as plain shared libraries.

Each folder under pprof_py/native/src/ is one library, except common/,
which every library but those in WITHOUT_COMMON compiles in.  We build them as
setuptools Extensions so that `pip install .` and `pip install -e .` both put
them inside the package; they have no Python entry point and are loaded with
ctypes or LD_PRELOAD, never imported.  pprof_py.native.libpath() finds them
(setuptools appends the interpreter's EXT_SUFFIX to the file name).

The gperftools-compatible C++ layer (src/*/gperftools_*.cc) is compiled
into the same libraries without any dependency on libstdc++: the allocator
is LD_PRELOADed into C programs that have no C++ runtime, so the libraries
are linked with the C driver (no -lstdc++), the C++ code is built without
exceptions or thread-safe static guards, and the few libstdc++ symbols it
refers to (RTTI vtables, std::string::append for
MallocExtension::GetHeapSample, the exception runtime nothrow new's
handler call needs) are weak references, bound only in processes that
already load libstdc++.  A source named *_eh.cc is compiled with exceptions.
tests/native/test_gperftools_api.py checks that ldd shows no libstdc++.
"""
import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
    # DWARF line tables and DIE walks for the symbolizer, loaded with ctypes
    # by pprof_py/symbolize/dwarfnative.py: only dwarfscan.h is exported
    "dwarf": (["-fvisibility=hidden"], []),
}

# libraries that do not compile in src/common (the stack walkers): the DWARF
# decoder needs nothing but libc
WITHOUT_COMMON = {"dwarf"}

# extra link flags per library: the linker-made bounds of the sampler's
# pp_trampoline section (collector.c) stay internal too
LINK_FLAGS = {"profiler": ["-Wl,-z,start-stop-visibility=hidden"]}


def native_extensions():
    extensions = []
    for name, (flags, libs) in LIBRARIES.items():
        sources = sorted(glob.glob(os.path.join(SRC, name, "*.c")) + glob.glob(os.path.join(SRC, name, "*.cc")))
        if not sources:
            continue
        # src/common: code both libraries compile in (hidden symbols)
        if name not in WITHOUT_COMMON:
            sources += sorted(glob.glob(os.path.join(SRC, "common", "*.c")))
        extensions.append(Extension(
            "pprof_py.native._lib" + name,
            sources=sources,
            include_dirs=[os.path.join("pprof_py", "native", "include"),
                          os.path.join(SRC, name), os.path.join(SRC, "common")],
            extra_compile_args=COMMON_FLAGS + flags,
            extra_link_args=["-pthread"] + LINK_FLAGS.get(name, []),
            libraries=libs,
            # link with the C driver even though there are .cc sources: no libstdc++
            language="c",
            depends=sorted(glob.glob(os.path.join(SRC, name, "*.h")) + glob.glob(os.path.join(SRC, "common", "*.h"))),
        ))
    return extensions


# Flags for the .cc sources only (gcc warns about them on C files).
CXX_FLAGS = ["-std=c++17", "-fno-exceptions", "-fno-threadsafe-statics"]


class BuildNative(build_ext):
    """build_ext that adds CXX_FLAGS when it compiles a .cc file."""

    def build_extension(self, ext):
        compile_one = self.compiler._compile

        def compile_with_cxx_flags(obj, src, ext_, cc_args, extra_postargs, pp_opts):
            if src.endswith(".cc"):
                extra_postargs = list(extra_postargs) + CXX_FLAGS
                if src.endswith("_eh.cc"):
                    # the one file that catches C++ exceptions (nothrow new's
                    # new-handler call, gperftools_nothrow_eh.cc)
                    extra_postargs = [f for f in extra_postargs if f != "-fno-exceptions"] + ["-fexceptions"]
            return compile_one(obj, src, ext_, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = compile_with_cxx_flags
        try:
            super().build_extension(ext)
        finally:
            self.compiler._compile = compile_one


setup(ext_modules=native_extensions(), cmdclass={"build_ext": BuildNative})
