"""The memory map that gperftools appends to its profiles.

CPU profiles end with the verbatim text of /proc/self/maps; heap profiles
carry the same text after a ``MAPPED_LIBRARIES:`` line (or a cooked
``--- Memory map: ---`` section from DumpAddressMap).  A /proc/self/maps line:

    55d0c3a01000-55d0c3a02000 r-xp 00001000 08:01 1234567   /path/to/prog
    start        -limit       perms offset   dev   inode     path

Only executable mappings (``..x.``) are used for symbolization, as pprof does.
A cooked line is ``start-limit: /path/lib.so`` (offset 0).  ``build=<dir>``
lines define ``$build`` for later paths.

pprof only accepts a mapping whose path looks like a shared library
(``.so`` with optional version), or whose path equals the main program given
on the command line; everything else (anonymous memory, [vdso], other
executables) is ignored.  We record all executable mappings and let the
symbolizer apply that rule, so other renderers can still see every mapping.
"""
import re

from pprof_py.model import Mapping

_HEX = r"[a-f0-9]+"
MAX_ADDRESS = (1 << 64) - 1
_FULL = re.compile(rf"^({_HEX})-({_HEX})\s+..x.\s+({_HEX})\s+\S+:\S+\s+\d+\s+(\S.*)$", re.I)
_COOKED = re.compile(rf"^\s*({_HEX})-({_HEX}):\s*(\S+\.so(\.\d+)*)")
_BUILD = re.compile(r"^\s*build=(.*)$")
# pprof's notion of "a shared library path".
SHARED_LIBRARY = re.compile(r"^.+\.(so|dll|dylib|bundle|node)((\.\d+)+\w*(\.\d+){0,3})?$", re.I)


def parse_maps(text):
    """Return the executable mappings in `text`, in file order."""
    mappings = []
    build = ""
    for line in text.split("\n"):
        m = _BUILD.match(line)
        if m:
            build = m.group(1)
        m = _FULL.match(line)
        if m:
            start, limit, offset, path = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16), m.group(4)
        else:
            m = _COOKED.match(line)
            if not m:
                continue
            start, limit, offset, path = int(m.group(1), 16), int(m.group(2), 16), 0, m.group(3)
        if max(start, limit, offset) > MAX_ADDRESS or "\0" in path:
            continue        # not a line the kernel writes (65-bit address, NUL in a path)
        path = path.replace("\\", "/")
        path = re.sub(r"\$build\b", build, path)
        mappings.append(Mapping(start=start, limit=limit, offset=offset, path=path))
    return mappings
