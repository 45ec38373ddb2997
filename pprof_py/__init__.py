"""pprof_py: a Python re-implementation of the gperftools profiling toolkit."""

__version__ = "0.1.0"


def __getattr__(name):
    # `pprof_py.cpu_profile(...)`: the native sampler's context manager,
    # loaded on first use so that importing pprof_py never loads C code.
    if name == "cpu_profile":
        from pprof_py.native.sampler import cpu_profile
        return cpu_profile
    raise AttributeError(name)
