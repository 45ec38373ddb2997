"""The DWARF sections and headers DwarfIndex reads, without pyelftools.

pyelftools' get_dwarf_info reads and decompresses every .debug_* section
(libc6-dbg's .debug_loclists included, which we never read) and parses
unit headers, line program headers and range lists through `construct`,
one object per field: on a cold run of a python3 profile that was a third
of the DWARF time.  Here:

* DwarfSections loads a section on first use only, decompressing
  SHF_COMPRESSED (ELF gABI: an Elf32/64_Chdr, then a zlib stream) and the
  older GNU .zdebug_* form ("ZLIB", 8-byte big-endian size, zlib stream);
* Unit reads a unit header (DWARF 2-5, section 7.5.1, 32- and 64-bit);
* LineProgramHeader reads a line program header (section 6.2.4), DWARF
  2-4 file tables and DWARF 5 entry formats (DW_LNCT_*);
* range_list reads a DW_AT_ranges list: .debug_ranges (DWARF 2-4,
  section 2.17.3) and .debug_rnglists (DWARF 5, section 7.25).

They answer what pyelftools answers (tests/symbolize/test_dwarf_native.py
compares them on real files); anything they cannot read raises ValueError,
which the symbolizer handles as damaged debug info.
"""
import struct
import threading
import zlib

from pprof_py.symbolize.leb128 import uleb

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1


class DwarfSections:
    """The .debug_* sections of one ELF file open as `stream`, loaded on
    first use."""

    def __init__(self, headers):
        """`headers`: the file's ElfHeaders (elfheaders.py)."""
        self.headers = headers
        self.little_endian = self.headers.little_endian
        self._order = "<" if self.little_endian else ">"
        self._loaded = {}          # name -> all its bytes (or None)
        self._partial = {}         # name -> _PartialInflate, for prefix()
        self._pending = {}         # name -> (thread, result box), see prefetch()
        self._by_name = {sec.name: sec for sec in self.headers.sections}

    def has(self, name):
        return name in self._by_name or ".z" + name[1:] in self._by_name

    def prefetch(self, name):
        """Start decompressing section `name` in a thread, when it is
        compressed; get() waits for it.  zlib runs without the GIL, so the
        caller's Python work goes on meanwhile: libc6-dbg's .debug_info
        takes 30 ms to inflate, about what building libc's symbol tables
        takes beside it (cache._object_symbols)."""
        if name in self._loaded or name in self._pending or name in self._partial:
            return
        raw = self._raw(name)
        if not isinstance(raw, tuple):
            self._loaded[name] = raw
            return
        box = {}

        def inflate():
            try:
                box["data"] = _inflate(raw[0], raw[1], name)
            except BaseException as exc:       # re-raised by get(), in the caller's thread
                box["error"] = exc
        thread = threading.Thread(target=inflate, name="pprof_py-inflate", daemon=True)
        thread.start()
        self._pending[name] = (thread, box)

    def get(self, name):
        """The contents of section `name` (".debug_info"), decompressed, or
        None when the file has none."""
        data = self._loaded.get(name, False)
        if data is False and name in self._pending:
            thread, box = self._pending.pop(name)
            thread.join()
            if "error" in box:
                raise box["error"]
            data = self._loaded[name] = box["data"]
        if data is False:
            partial = self._partial.pop(name, None)
            if partial is not None:
                data = bytes(partial.upto(None))
            else:
                raw = self._raw(name)
                data = raw if not isinstance(raw, tuple) else _inflate(raw[0], raw[1], name)
            self._loaded[name] = data
        return data

    def prefix(self, name, end):
        """Section `name` from its start to at least `end` (all of it when
        shorter), or None when the file has none: bytes, or a bytearray that
        later calls extend.  A compressed section is decompressed only that
        far: a few sampled units' line programs need only the front of
        libc6-dbg's .debug_line."""
        data = self._loaded.get(name, False)
        if data is not False:
            return data
        partial = self._partial.get(name)
        if partial is None:
            raw = self._raw(name)
            if not isinstance(raw, tuple):
                self._loaded[name] = raw
                return raw
            partial = self._partial[name] = _PartialInflate(raw[0], raw[1], name)
        data = partial.upto(end)
        if partial.done:
            data = self._loaded[name] = bytes(data)
            del self._partial[name]
        return data

    def _raw(self, name):
        """The section's bytes, or (zlib stream, decompressed size) for a
        compressed one, or None."""
        sec = self._by_name.get(name)
        if sec is None:
            sec = self._by_name.get(".z" + name[1:])        # .zdebug_info
            if sec is None:
                return None
            raw = sec.data()
            if raw[:4] != b"ZLIB" or len(raw) < 12:
                return raw
            return raw[12:], int.from_bytes(raw[4:12], "big")
        if sec["sh_type"] == "SHT_NOBITS":
            return b""
        raw = sec.data()
        if len(raw) != sec["sh_size"]:
            raise ValueError(f"section {name} extends past the end of the file")
        if not sec["sh_flags"] & SHF_COMPRESSED:
            return raw
        if self.headers.elfclass == 64:
            fmt = self._order + "IIQQ"
            ch_type, _reserved, size, _align = struct.unpack_from(fmt, raw)
        else:
            fmt = self._order + "III"
            ch_type, size, _align = struct.unpack_from(fmt, raw)
        if ch_type != ELFCOMPRESS_ZLIB:
            raise ValueError(f"section {name} is compressed with an unsupported method ({ch_type})")
        return raw[struct.calcsize(fmt):], size

    # -- strings ------------------------------------------------------------
    def string(self, offset, section=".debug_str"):
        """The NUL-terminated bytes at `offset` of a string section (None
        without a terminator, as pyelftools)."""
        data = self.get(section)
        if data is None:
            raise ValueError(f"string form without a {section} section")
        end = data.find(b"\0", offset)
        return data[offset:end] if end >= 0 and offset >= 0 else None

    def line_string(self, offset):
        return self.string(offset, ".debug_line_str")

    def address(self, addr_base, index, address_size):
        """Entry `index` of .debug_addr for a unit with DW_AT_addr_base
        `addr_base` (DW_FORM_addrx and friends)."""
        data = self.get(".debug_addr")
        if data is None:
            raise ValueError("DW_FORM_addrx without a .debug_addr section")
        at = addr_base + index * address_size
        if at < 0 or at + address_size > len(data):
            raise ValueError("DW_FORM_addrx index past the end of .debug_addr")
        return int.from_bytes(data[at:at + address_size], "little" if self.little_endian else "big")


def _inflate(data, size, name):
    # The output buffer sized from the header up front: 15% faster than
    # letting zlib grow it (bounded by zlib's best ratio, against a header
    # that lies).
    try:
        out = zlib.decompress(data, zlib.MAX_WBITS, max(1, min(size, 1100 * len(data) + 64)))
    except zlib.error as exc:
        raise ValueError(f"section {name}: {exc}") from None
    if len(out) != size:
        raise ValueError(f"section {name}: {len(out)} bytes decompressed, header says {size}")
    return out


class _PartialInflate:
    """A zlib stream decompressed on demand, front first.  The compressed
    input is fed in small chunks (zlib's unconsumed_tail would copy all of
    the rest at every step), and the output is the one growing bytearray:
    readers index, slice and struct.unpack_from it, they keep no view."""

    CHUNK = 1 << 15

    def __init__(self, stream, size, name):
        self.name = name
        self.size = size
        self._zlib = zlib.decompressobj()
        self._input = stream
        self._pos = 0
        self._out = bytearray()
        self.done = False

    def upto(self, end):
        """The output from its start to at least `end` (None: all of it)."""
        want = self.size if end is None else min(end, self.size)
        out = self._out
        try:
            while len(out) < want and not self._zlib.eof:
                chunk = self._input[self._pos:self._pos + self.CHUNK]
                if not chunk:
                    raise ValueError(f"section {self.name}: compressed data cut short")
                self._pos += len(chunk)
                out += self._zlib.decompress(chunk)
        except zlib.error as exc:
            raise ValueError(f"section {self.name}: {exc}") from None
        if self._zlib.eof or len(out) >= self.size:
            self.done = True
            if len(out) != self.size:
                raise ValueError(f"section {self.name}: {len(out)} bytes decompressed, header says {self.size}")
        return out


def _initial_length(data, pos, order):
    """(unit length, offset size, position after the length field)."""
    length, = struct.unpack_from(order + "I", data, pos)
    if length == 0xffffffff:
        length, = struct.unpack_from(order + "Q", data, pos + 4)
        return length, 8, pos + 12
    if length >= 0xfffffff0:
        raise ValueError(f"reserved unit length {length:#x} at {pos:#x}")
    return length, 4, pos + 4


DW_UT_type, DW_UT_skeleton, DW_UT_split_compile, DW_UT_split_type = 2, 4, 5, 6


class Unit:
    """A .debug_info unit header.  Spelled like pyelftools' CompileUnit
    where dies.py reads it: cu_offset, size (the whole unit, length field
    included), cu_die_offset, header["version"], cu["address_size"],
    dwarf_format()."""

    def __init__(self, info, offset, little_endian):
        order = "<" if little_endian else ">"
        try:
            length, self.offset_size, pos = _initial_length(info, offset, order)
            version, = struct.unpack_from(order + "H", info, pos)
            pos += 2
            if not 2 <= version <= 5:
                raise ValueError(f"unit at {offset:#x} has unsupported DWARF version {version}")
            offset_code = "I" if self.offset_size == 4 else "Q"
            self.unit_type = None
            if version >= 5:
                self.unit_type, address_size = info[pos], info[pos + 1]
                abbrev_offset, = struct.unpack_from(order + offset_code, info, pos + 2)
                pos += 2 + self.offset_size
                if self.unit_type in (DW_UT_skeleton, DW_UT_split_compile):
                    pos += 8                                    # dwo_id
                elif self.unit_type in (DW_UT_type, DW_UT_split_type):
                    pos += 8 + self.offset_size                 # type signature, type offset
            else:
                abbrev_offset, = struct.unpack_from(order + offset_code, info, pos)
                address_size = info[pos + self.offset_size]
                pos += self.offset_size + 1
        except (struct.error, IndexError):
            raise ValueError(f"unit header at {offset:#x} past the end of .debug_info") from None
        self.cu_offset = offset
        self.size = length + (12 if self.offset_size == 8 else 4)
        self.cu_die_offset = pos
        self.version = version
        self.address_size = address_size
        self.header = {"version": version, "address_size": address_size, "debug_abbrev_offset": abbrev_offset}

    def __getitem__(self, key):
        return self.header[key]

    def dwarf_format(self):
        return 64 if self.offset_size == 8 else 32


# DW_LNCT_* content types and the forms a DWARF 5 entry format may use
DW_LNCT_path, DW_LNCT_directory_index = 1, 2
_FORM_STRING, _FORM_LINE_STRP, _FORM_STRP = 0x08, 0x1f, 0x0e
_FORM_FIXED = {0x0b: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x1e: 16}     # data1/2/4/8/16
_FORM_UDATA, _FORM_BLOCK = 0x0f, 0x09


class LineProgramHeader:
    """A line program header at `offset` of .debug_line (section 6.2.4):
    the fields decode_line_program needs, the directory and file tables
    (directory(i), file(i) -> (name, directory index), their counts, and
    the whole lists as include_directories / files; names decoded as UTF-8
    with surrogate escapes), where the opcodes start and end, and `data`,
    the section's bytes up to the end of this unit at least."""

    def __init__(self, sections, offset):
        # (the unit's length first, then the section up to the unit's end)
        data = sections.prefix(".debug_line", offset + 12)
        if data is None:
            raise ValueError("DW_AT_stmt_list without a .debug_line section")
        self.little_endian = sections.little_endian
        order = "<" if self.little_endian else ">"
        try:
            length, _offset_size, pos = _initial_length(data, offset, order)
            data = sections.prefix(".debug_line", pos + length)
            self.data = data
            self._parse(sections, data, offset, order)
        except (struct.error, IndexError):
            raise ValueError(f"line program header at {offset:#x} past the end of .debug_line") from None

    def _parse(self, sections, data, offset, order):
        length, offset_size, pos = _initial_length(data, offset, order)
        self.program_end = pos + length
        self.version, = struct.unpack_from(order + "H", data, pos)
        pos += 2
        if not 2 <= self.version <= 5:
            raise ValueError(f"line program at {offset:#x} has unsupported version {self.version}")
        if self.version >= 5:
            pos += 2                                    # address_size, segment_selector_size
        header_length, = struct.unpack_from(order + ("I" if offset_size == 4 else "Q"), data, pos)
        pos += offset_size
        self.program_start = pos + header_length
        self.minimum_instruction_length = data[pos]
        pos += 1
        if self.version >= 4:
            pos += 1                                    # maximum_operations_per_instruction
        pos += 1                                        # default_is_stmt
        self.line_base = struct.unpack_from("b", data, pos)[0]
        self.line_range = data[pos + 1]
        self.opcode_base = data[pos + 2]
        pos += 3
        count = max(self.opcode_base - 1, 0)
        if pos + count > len(data):
            raise IndexError
        self.standard_opcode_lengths = list(data[pos:pos + count])
        pos += count
        if self.version >= 5:
            self._tables_v5(sections, data, pos, offset_size, order)
        else:
            self._tables_v4(data, pos)

    # Paths are kept as read (bytes, or a string section offset) and
    # decoded when asked for: most of a table is never printed.
    def directory_count(self):
        return len(self._dirs)

    def file_count(self):
        return len(self._files)

    def directory(self, index):
        return self._path(self._dirs[index])

    def file(self, index):
        """(name, directory index) of file entry `index`."""
        path, dir_index = self._files[index]
        return self._path(path), dir_index

    @property
    def include_directories(self):
        return [self.directory(i) for i in range(len(self._dirs))]

    @property
    def files(self):
        return [self.file(i) for i in range(len(self._files))]

    def _path(self, raw):
        if isinstance(raw, tuple):          # (string section, offset)
            raw = self._sections.string(raw[1], raw[0])
        return _text(raw) if isinstance(raw, (bytes, bytearray)) else ""

    def _tables_v4(self, data, pos):
        dirs = []
        while True:
            end = data.index(b"\0", pos)
            if end == pos:
                pos += 1
                break
            dirs.append(data[pos:end])
            pos = end + 1
        files = []
        while True:
            end = data.index(b"\0", pos)
            if end == pos:
                break
            name = data[pos:end]
            dir_index, pos = uleb(data, end + 1)
            _mtime, pos = uleb(data, pos)
            _length, pos = uleb(data, pos)
            files.append((name, dir_index))
        self._dirs = dirs
        self._files = files

    def _tables_v5(self, sections, data, pos, offset_size, order):
        self._sections = sections
        entries = []
        for _table in range(2):
            format_count = data[pos]
            pos += 1
            formats = []
            for _ in range(format_count):
                content, pos = uleb(data, pos)
                form, pos = uleb(data, pos)
                formats.append((content, form))
            count, pos = uleb(data, pos)
            if formats == [(DW_LNCT_path, _FORM_LINE_STRP)] or \
                    formats == [(DW_LNCT_path, _FORM_LINE_STRP), (DW_LNCT_directory_index, _FORM_UDATA)]:
                # what gcc writes, read without a call per field
                rows, pos = _gcc_entries(data, pos, count, len(formats) == 2, offset_size, order)
            else:
                rows = []
                for _ in range(count):
                    path, dir_index = None, 0
                    for content, form in formats:
                        value, pos = _entry_value(data, pos, form, offset_size, order)
                        if content == DW_LNCT_path:
                            path = value
                        elif content == DW_LNCT_directory_index:
                            dir_index = value
                    rows.append((path, dir_index))
            entries.append(rows)
        self._dirs = [path for path, _ in entries[0]]
        self._files = entries[1]


def _gcc_entries(data, pos, count, with_dir, offset_size, order):
    """`count` entries of the format (path: line_strp[, directory index:
    udata]): ([((".debug_line_str", offset), directory index)], new pos)."""
    code = order + ("I" if offset_size == 4 else "Q")
    unpack = struct.Struct(code).unpack_from
    rows = []
    for _ in range(count):
        at, = unpack(data, pos)
        pos += offset_size
        dir_index = 0
        if with_dir:
            b = data[pos]
            if b < 0x80:
                dir_index = b
                pos += 1
            else:
                dir_index, pos = uleb(data, pos)
        rows.append(((".debug_line_str", at), dir_index))
    return rows, pos


def _entry_value(data, pos, form, offset_size, order):
    """(value, new position) of one field of a DWARF 5 directory or file
    entry: inline strings as bytes, string section references as (section
    name, offset), constants as integers, blocks skipped."""
    if form in (_FORM_LINE_STRP, _FORM_STRP):
        if pos + offset_size > len(data):
            raise IndexError
        at = int.from_bytes(data[pos:pos + offset_size], "little" if order == "<" else "big")
        return (".debug_line_str" if form == _FORM_LINE_STRP else ".debug_str", at), pos + offset_size
    if form == _FORM_STRING:
        end = data.index(b"\0", pos)
        return data[pos:end], end + 1
    size = _FORM_FIXED.get(form)
    if size is not None:
        if pos + size > len(data):
            raise IndexError
        return int.from_bytes(data[pos:pos + size], "little" if order == "<" else "big"), pos + size
    if form == _FORM_UDATA:
        return uleb(data, pos)
    if form == _FORM_BLOCK:
        length, pos = uleb(data, pos)
        return None, pos + length
    raise ValueError(f"unsupported form {form:#x} in a line table entry format")


def _text(raw):
    return raw.decode("utf-8", "surrogateescape")


# DW_RLE_* (DWARF 5, section 7.25)
_RLE_END, _RLE_BASE_X, _RLE_STARTX_ENDX, _RLE_STARTX_LENGTH = 0, 1, 2, 3
_RLE_OFFSET_PAIR, _RLE_BASE, _RLE_START_END, _RLE_START_LENGTH = 4, 5, 6, 7


def range_list(sections, version, address_size, offset, base, address_of):
    """[(low, high)] of the DW_AT_ranges list at `offset` for a unit of
    DWARF `version` whose base address is `base`; address_of(index) reads
    .debug_addr.  Empty ranges are dropped.  As pyelftools picks the
    section: the unit's version's when the file has both, else the one it
    has.  A list we cannot read yields [] (addr2line ignores it too)."""
    has_v4, has_v5 = sections.has(".debug_ranges"), sections.has(".debug_rnglists")
    if has_v4 and has_v5:
        v5 = version >= 5
    elif has_v4 or has_v5:
        v5 = has_v5
    else:
        return []
    try:
        if v5:
            return _rnglist(sections.get(".debug_rnglists"), offset, address_size, base, address_of,
                            sections.little_endian)
        return _ranges(sections.get(".debug_ranges"), offset, address_size, base, sections.little_endian)
    except (ValueError, IndexError, struct.error):
        return []


def _ranges(data, pos, address_size, base, little_endian):
    byteorder = "little" if little_endian else "big"
    top = (1 << (8 * address_size)) - 1
    out = []
    while True:
        if pos < 0 or pos + 2 * address_size > len(data):
            raise IndexError
        begin = int.from_bytes(data[pos:pos + address_size], byteorder)
        end = int.from_bytes(data[pos + address_size:pos + 2 * address_size], byteorder)
        pos += 2 * address_size
        if begin == 0 and end == 0:
            return out
        if begin == top:
            base = end
        elif base + end > base + begin:
            out.append((base + begin, base + end))


def _rnglist(data, pos, address_size, base, address_of, little_endian):
    byteorder = "little" if little_endian else "big"

    def addr(at):
        if at + address_size > len(data):
            raise IndexError
        return int.from_bytes(data[at:at + address_size], byteorder)

    out = []
    if pos < 0:
        raise IndexError
    while True:
        kind = data[pos]
        pos += 1
        if kind == _RLE_END:
            return out
        if kind == _RLE_BASE_X:
            index, pos = uleb(data, pos)
            base = address_of(index)
            continue
        if kind == _RLE_STARTX_ENDX:
            a, pos = uleb(data, pos)
            b, pos = uleb(data, pos)
            lo, hi = address_of(a), address_of(b)
        elif kind == _RLE_STARTX_LENGTH:
            a, pos = uleb(data, pos)
            length, pos = uleb(data, pos)
            lo = address_of(a)
            hi = lo + length
        elif kind == _RLE_OFFSET_PAIR:
            a, pos = uleb(data, pos)
            b, pos = uleb(data, pos)
            lo, hi = base + a, base + b
        elif kind == _RLE_BASE:
            base = addr(pos)
            pos += address_size
            continue
        elif kind == _RLE_START_END:
            lo, hi = addr(pos), addr(pos + address_size)
            pos += 2 * address_size
        elif kind == _RLE_START_LENGTH:
            lo = addr(pos)
            length, pos = uleb(data, pos + address_size)
            hi = lo + length
        else:
            raise ValueError(f"unknown range list entry {kind}")
        if hi > lo:
            out.append((lo, hi))

