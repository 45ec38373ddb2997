"""Profile readers.  `read_profile(path)` returns a Profile; every reader
raises ProfileFormatError (with the byte offset) for a broken input.

The format is found by an ordered list of sniffers (SNIFFERS below).  Each
looks at the input and either parses it (returns a Profile), says "not
mine" (returns None), or raises a real format error.  In order:

1. ``heap profile:`` header line (heap, growth, leak profiles:
   formats/heap_text.py), after any ``%warn`` / ``%`` command lines, which
   pprof skips;
2. a symbolized profile as ``pprof --raw`` writes it:

       --- symbol
       binary=<program>
       0x<address> <outermost name>--<inlined name>--...
       ---
       --- profile
       <a CPU profile (binary) or a heap profile (text)>

   Addresses in it are already adjusted (callers minus one); the names are
   used instead of symbolizing;
3. ``--- contention`` lock-contention profiles (formats/contention.py);
4. ``--- profile`` followed by a binary CPU profile;
5. folded stacks (formats/folded.py);
6. a binary CPU profile (formats/cpu_binary.py): starts with a zero word;
7. profile.proto (formats/proto.py), recognised by decoding it, not by its
   first byte (a message may start with any field: 0x48, field 9, is "H").

A gzip-compressed input is decompressed first.
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


class _Input:
    """What the sniffers look at: the bytes, where the text header starts
    (after pprof's '%' command lines) and that header line."""

    def __init__(self, data, path, warnings, pos, symbolized):
        self.data, self.path, self.warnings = data, path, warnings
        self.start = pos                # where this (possibly embedded) profile starts
        self.symbolized = symbolized    # inside a `--raw` profile's profile section
        self.header_offset = pos
        self.line = ""
        self.after_line = pos
        self.text = pos < len(data) and _is_printable(data[pos])
        if self.text:
            self._skip_commands()

    def _skip_commands(self):
        data, pos = self.data, self.start
        while True:
            nl = data.find(b"\n", pos)
            line_end = len(data) if nl < 0 else nl
            line = data[pos:line_end].decode("utf-8", "replace").replace("\r", "")
            if line.startswith("%warn"):
                self.warnings.append("WARNING: " + line[5:].strip())
            elif not line.startswith("%"):
                break
            if nl < 0:
                raise ProfileFormatError(self.path, "profile is empty (only header commands)")
            pos = nl + 1
        self.header_offset = pos
        self.line = line
        self.after_line = len(data) if nl < 0 else nl + 1


def _heap_sniffer(inp):
    if not (inp.text and inp.line.startswith("heap profile:")):
        return None
    text = inp.data[inp.after_line:].decode("utf-8", "surrogateescape")
    return parse_heap_profile(text, inp.path, inp.line, inp.header_offset, inp.warnings,
                              adjust=not inp.symbolized)


def _symbolized_sniffer(inp):
    if not (inp.text and not inp.symbolized and re.match(r"^--- *symbol", inp.line)):
        return None
    symbols, program, after = _parse_symbols(inp.data, inp.after_line, inp.path)
    profile = _parse(inp.data, inp.path, inp.warnings, after, symbolized=True)
    profile.named_by = "raw"
    profile.program_name = program
    for loc in profile.locations:
        text = symbols.get(loc.address)
        if text is not None:
            loc.names = tuple(text.split("--"))
    return profile


def _contention_sniffer(inp):
    if not (inp.text and re.match(r"^--- *(contention|Stacks:)", inp.line)):
        return None
    if inp.line.startswith("--- Stacks:"):
        inp.warnings.append("Old format contention profile: mistakenly reports condition variable "
                            "signals as lock contentions.")
    text = inp.data[inp.after_line:].decode("utf-8", "surrogateescape")
    return parse_contention_profile(text, inp.path, inp.warnings)


def _marked_cpu_sniffer(inp):
    if not (inp.text and re.match(r"^--- *profile", inp.line)):
        return None
    return parse_cpu_profile(inp.data[inp.after_line:], inp.path, base_offset=inp.after_line,
                             adjust=not inp.symbolized)


def _folded_sniffer(inp):
    if not (inp.text and not inp.symbolized and looks_like_folded(inp.data[inp.header_offset:])):
        return None
    return parse_folded(inp.data[inp.header_offset:], inp.path)


def _cpu_sniffer(inp):
    if inp.text or not looks_like_cpu_profile(inp.data[inp.start:]):
        return None
    return parse_cpu_profile(inp.data[inp.start:], inp.path, base_offset=inp.start)


def _proto_sniffer(inp):
    # profile.proto (Go pprof, continuous profilers): see formats/proto.py.
    # Tried on the whole input whatever its first byte, since any field may
    # come first; decode() accepts only a structurally valid profile.
    if inp.start != 0 or inp.symbolized:
        return None
    from pprof_py.formats import proto
    message = proto.decode(inp.data)
    if message is None:
        return None
    return proto.parse_proto(message, inp.path)


SNIFFERS = [_heap_sniffer, _symbolized_sniffer, _contention_sniffer, _marked_cpu_sniffer,
            _folded_sniffer, _cpu_sniffer, _proto_sniffer]


def _parse(data, path, warnings, pos, symbolized=False):
    if pos >= len(data):
        raise ProfileFormatError(path, "profile is empty", pos)
    inp = _Input(data, path, warnings, pos, symbolized)
    for sniffer in SNIFFERS:
        profile = sniffer(inp)
        if profile is not None:
            return profile
    if symbolized:
        raise ProfileFormatError(path, "cannot recognize the profile section after the symbols", pos)
    if inp.text:
        head = data[inp.header_offset:inp.header_offset + 512]
        kind = "a text file" if all(_is_printable(b) or b in b"\r\n\t" for b in head) else "unrecognized data"
        raise ProfileFormatError(path, f"not a profile: {kind} (no CPU or heap profile header)",
                                 inp.header_offset)
    raise ProfileFormatError(path, "not a profile: unrecognized binary data", pos)
