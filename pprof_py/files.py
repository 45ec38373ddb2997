"""Opening files that inputs name (object files from a memory map, source
files from DWARF) without hanging or exhausting memory.

A profile's memory map or a binary's DWARF can name anything: a FIFO (open
blocks until someone writes), /dev/zero or /dev/urandom (reads never end),
/proc/self/mem (reads fail).  So these files are opened with O_NONBLOCK
(which does not block on a FIFO), checked with fstat to be regular files,
and read no further than their size says, up to a limit.  Profiles the user
names on the command line are not read through here: reading one from a
pipe (`pprof --text prog <(zcat cpu.prof.gz)`) is a feature.
"""
import errno
import os
import stat

# Source files larger than this are not listed (no real source is).
MAX_SOURCE_BYTES = 256 << 20


class NotRegularFile(OSError):
    """The path exists but is not a regular file (FIFO, device, directory...)."""


def open_regular(path):
    """A binary file object for the regular file `path`.  Raises OSError
    (NotRegularFile for a FIFO, device, socket or directory) instead of
    blocking."""
    if "\0" in str(path):      # a profile may name anything; the OS cannot
        raise FileNotFoundError(errno.ENOENT, "no such file (NUL byte in the name)", path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, limit):
    """The bytes of the regular file `path`, at most its size and at most
    `limit` (raises OSError, NotRegularFile, or ValueError when larger)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ValueError(f"{path}: larger than {limit} bytes")
        return f.read(size)
