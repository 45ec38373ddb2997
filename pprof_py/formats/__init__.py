"""Profile readers.  `read_profile(path)` sniffs the format and returns a
Profile; every reader raises ProfileFormatError for a broken input.

Formats, in the order they are tried:
* text header lines (``%warn`` / ``%`` commands are skipped, as pprof does)
  then ``heap profile:`` (heap, growth, leak profiles: formats/heap_text.py);
* ``--- profile`` followed by a binary CPU profile;
* a binary CPU profile (formats/cpu_binary.py).
"""
import os

from pprof_py.errors import ProfileFormatError
from pprof_py.formats.cpu_binary import looks_like_cpu_profile, parse_cpu_profile
from pprof_py.formats.heap_text import parse_heap_profile


def _is_printable(byte):
    return 0x20 <= byte < 0x7f


def read_profile(path, warnings=None):
    """Read the profile at `path`.  Diagnostics pprof prints on stderr while
    reading (e.g. sampling adjustments) are appended to `warnings`."""
    if warnings is None:
        warnings = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ProfileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise ProfileFormatError(path, "is a directory, not a profile") from None
    except OSError as exc:
        raise ProfileFormatError(path, f"cannot read: {exc.strerror}") from None
    if not data:
        raise ProfileFormatError(path, "profile is empty")

    pos = 0
    if _is_printable(data[0]):
        # Text header lines: skip pprof's '%' commands to find the header.
        while True:
            nl = data.find(b"\n", pos)
            line_end = len(data) if nl < 0 else nl
            line = data[pos:line_end].decode("utf-8", "replace").replace("\r", "")
            if line.startswith("%warn"):
                warnings.append("WARNING: " + line[5:].strip())
            elif not line.startswith("%"):
                break
            if nl < 0:
                raise ProfileFormatError(path, "profile is empty (only header commands)")
            pos = nl + 1
        header_offset = pos
        rest_start = len(data) if nl < 0 else nl + 1
        if line.startswith("heap profile:"):
            text = data[rest_start:].decode("utf-8", "surrogateescape")
            return parse_heap_profile(text, path, line, header_offset, warnings)
        if line.startswith("--- symbol"):
            raise ProfileFormatError(path, "symbolized (--raw) profiles are not supported yet", header_offset)
        if line.startswith("---") and "profile" in line:
            return parse_cpu_profile(data[rest_start:], path, base_offset=rest_start)
        kind = "a text file" if all(_is_printable(b) or b in b"\r\n\t" for b in data[:512]) else "unrecognized data"
        raise ProfileFormatError(path, f"not a profile: {kind} (no CPU or heap profile header)", header_offset)
    if looks_like_cpu_profile(data):
        return parse_cpu_profile(data, path)
    raise ProfileFormatError(path, "not a profile: unrecognized binary data", 0)
