"""Profile readers.  `read_profile(path)` sniffs the format and returns a
Profile; every reader raises ProfileFormatError for a broken input.

Formats, in the order they are tried:
* text header lines (``%warn`` / ``%`` commands are skipped, as pprof does)
  then ``heap profile:`` (heap, growth, leak profiles: formats/heap_text.py);
* a symbolized profile as ``pprof --raw`` writes it:

      --- symbol
      binary=<program>
      0x<address> <outermost name>--<inlined name>--...
      ---
      --- profile
      <a CPU profile (binary) or a heap profile (text)>

  Addresses in it are already adjusted (callers minus one), and the names
  are used instead of symbolizing;
* ``--- contention`` lock-contention profiles (formats/contention.py);
* ``--- profile`` followed by a binary CPU profile;
* a binary CPU profile (formats/cpu_binary.py).
"""
import re

from pprof_py.errors import ProfileFormatError
from pprof_py.formats.cpu_binary import looks_like_cpu_profile, parse_cpu_profile
from pprof_py.formats.contention import parse_contention_profile
from pprof_py.formats.heap_text import parse_heap_profile
from pprof_py.formats.folded import looks_like_folded, parse_folded


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
    if data[:2] == b"\x1f\x8b":
        # gzip: profile.proto as Go pprof writes it, or any profile compressed.
        from pprof_py.formats import proto
        data = proto.gunzip(data, path)
        if not data:
            raise ProfileFormatError(path, "profile is empty (after gzip decompression)")

    return _parse(data, path, warnings, 0)


def _read_line(data, pos):
    nl = data.find(b"\n", pos)
    end = len(data) if nl < 0 else nl
    return data[pos:end].decode("utf-8", "replace").replace("\r", ""), (len(data) if nl < 0 else nl + 1)


def _parse_symbols(data, pos, path):
    """The `--- symbol` section: {address: "name--name"}, program, end."""
    symbols = {}
    program = None
    while pos < len(data):
        line, pos = _read_line(data, pos)
        m = re.match(r"^0x0*([0-9a-f]+)\s+(.+)", line)
        if m:
            symbols[int(m.group(1), 16)] = m.group(2)
        elif line.startswith("---"):
            return symbols, program, pos
        else:
            m = re.match(r"^([a-z][^=]*)=(.*)$", line)
            if m and m.group(1).strip() == "binary":
                program = m.group(2).strip()
    raise ProfileFormatError(path, "symbolized profile ends inside its symbol section", pos)


def _parse(data, path, warnings, pos, symbolized=False):
    if pos >= len(data):
        raise ProfileFormatError(path, "profile is empty", pos)
    if _is_printable(data[pos]):
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
            return parse_heap_profile(text, path, line, header_offset, warnings, adjust=not symbolized)
        if re.match(r"^--- *symbol", line) and not symbolized:
            symbols, program, after = _parse_symbols(data, rest_start, path)
            profile = _parse(data, path, warnings, after, symbolized=True)
            profile.named_by = "raw"
            profile.program_name = program
            for loc in profile.locations:
                text = symbols.get(loc.address)
                if text is not None:
                    loc.names = tuple(text.split("--"))
            return profile
        if re.match(r"^--- *(contention|Stacks:)", line):
            if line.startswith("--- Stacks:"):
                warnings.append("Old format contention profile: mistakenly reports condition variable "
                                "signals as lock contentions.")
            text = data[rest_start:].decode("utf-8", "surrogateescape")
            return parse_contention_profile(text, path, warnings)
        if re.match(r"^--- *profile", line):
            return parse_cpu_profile(data[rest_start:], path, base_offset=rest_start, adjust=not symbolized)
        if not symbolized and looks_like_folded(data[header_offset:]):
            return parse_folded(data[header_offset:], path)
        kind = "a text file" if all(_is_printable(b) or b in b"\r\n\t" for b in data[:512]) else "unrecognized data"
        raise ProfileFormatError(path, f"not a profile: {kind} (no CPU or heap profile header)", header_offset)
    if symbolized:
        raise ProfileFormatError(path, "cannot recognize the profile section after the symbols", pos)
    if looks_like_cpu_profile(data[pos:]):
        return parse_cpu_profile(data[pos:], path, base_offset=pos)
    if pos == 0:
        # profile.proto (Go pprof, continuous profilers): see formats/proto.py.
        from pprof_py.formats import proto
        message = proto.decode(data)
        if message is not None:
            return proto.parse_proto(message, path)
    raise ProfileFormatError(path, "not a profile: unrecognized binary data", pos)
