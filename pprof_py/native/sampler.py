"""Profile the native stacks of the current process with pprof_py's sampler.

    from pprof_py.native.sampler import cpu_profile

    with cpu_profile("out.prof", frequency=1000):
        run_the_work()

writes a gperftools-format CPU profile of every thread of this process
(the C frames of the interpreter and of extension modules, not Python
function names) that `pprof --text python3 out.prof` or google-pprof read.

The library is loaded with ctypes the first time it is needed.  Loading it
does not start profiling unless CPUPROFILE is set in the environment.
"""
import contextlib
import ctypes
import os
import threading
from collections import namedtuple

from pprof_py.native import libpath

__all__ = ["cpu_profile", "start", "stop", "flush", "state", "set_frequency",
           "timer_source", "period_micros", "ProfilerState", "SamplerError"]

ProfilerState = namedtuple("ProfilerState", "enabled start_time profile_name samples_gathered")

MAX_FREQUENCY = 100000


class SamplerError(RuntimeError):
    """Profiling could not be started."""


class _ProfilerOptions(ctypes.Structure):
    _fields_ = [("filter_in_thread", ctypes.c_void_p),
                ("filter_in_thread_arg", ctypes.c_void_p)]


class _ProfilerStateStruct(ctypes.Structure):
    _fields_ = [("enabled", ctypes.c_int),
                ("start_time", ctypes.c_long),
                ("profile_name", ctypes.c_char * 1024),
                ("samples_gathered", ctypes.c_int)]


_lib = None
_lib_lock = threading.Lock()


def _library():
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(libpath("profiler"))
            lib.ProfilerStartWithOptions.argtypes = [ctypes.c_char_p, ctypes.POINTER(_ProfilerOptions)]
            lib.ProfilerStartWithOptions.restype = ctypes.c_int
            lib.ProfilerStop.argtypes = []
            lib.ProfilerStop.restype = None
            lib.ProfilerFlush.argtypes = []
            lib.ProfilerFlush.restype = None
            lib.ProfilerGetCurrentState.argtypes = [ctypes.POINTER(_ProfilerStateStruct)]
            lib.ProfilerGetCurrentState.restype = None
            lib.PprofPySetFrequency.argtypes = [ctypes.c_int]
            lib.PprofPySetFrequency.restype = ctypes.c_int
            lib.PprofPyTimerSource.argtypes = []
            lib.PprofPyTimerSource.restype = ctypes.c_char_p
            lib.PprofPyPeriodMicros.argtypes = []
            lib.PprofPyPeriodMicros.restype = ctypes.c_long
            _lib = lib
        return _lib


def set_frequency(hz):
    """Samples per second for the next start(); returns the previous value."""
    hz = int(hz)
    if not 1 <= hz <= MAX_FREQUENCY:
        raise ValueError(f"frequency must be between 1 and {MAX_FREQUENCY}, not {hz}")
    return _library().PprofPySetFrequency(hz)


def start(path, frequency=None):
    """Start profiling every thread of this process into `path`."""
    lib = _library()
    if frequency is not None:
        set_frequency(frequency)
    encoded = os.fsencode(os.path.abspath(os.fspath(path)))
    if len(encoded) >= 1024:
        raise SamplerError(f"profile path too long: {path}")
    if not lib.ProfilerStartWithOptions(encoded, None):
        if state().enabled:
            raise SamplerError("the CPU profiler is already running")
        raise SamplerError(f"cannot start the CPU profiler into {path}")


def stop():
    """Stop profiling and finish the profile file."""
    _library().ProfilerStop()


def flush():
    """Write the samples collected so far to the profile file."""
    _library().ProfilerFlush()


def state():
    """The profiler's current state as a ProfilerState tuple."""
    raw = _ProfilerStateStruct()
    _library().ProfilerGetCurrentState(ctypes.byref(raw))
    return ProfilerState(bool(raw.enabled), int(raw.start_time),
                         os.fsdecode(raw.profile_name), int(raw.samples_gathered))


def timer_source():
    """Timer source of the current or last run: 'perf', 'itimer', 'posix' or 'realtime'."""
    return _library().PprofPyTimerSource().decode()


def period_micros():
    """Sampling period written in the current or last profile's header."""
    return int(_library().PprofPyPeriodMicros())


@contextlib.contextmanager
def cpu_profile(path, frequency=None):
    """Context manager: profile the block into `path` (gperftools CPU profile).

    `frequency` is in samples per second (default: CPUPROFILE_FREQUENCY or 100).
    """
    start(path, frequency)
    try:
        yield path
    finally:
        stop()
