"""`np`: numpy, imported on first use.

Importing numpy takes about 60 ms, a third of a `pprof --text` run on a
small profile with a warm symbol cache, and such a run needs none of it:
the CPU reader, the symbol cache and the reduction work on Python lists and
arrays there, and numpy is used where it pays (big profiles, combining
runs).  Modules on that path write

    from pprof_py.lazynp import np

and use `np.` as usual; the first attribute read imports numpy.
"""


class _Numpy:
    def __getattr__(self, name):
        import numpy
        value = getattr(numpy, name)
        setattr(self, name, value)      # later reads do not come here
        return value


np = _Numpy()
