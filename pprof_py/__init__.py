"""pprof_py: a Python re-implementation of the gperftools profiling toolkit."""

__version__ = "0.1.0"
