"""DWARF lookups that answer what ``addr2line -f -i`` answers: for an address,
the chain of functions (innermost inlined one first) with, for each, the
file:line executing there (the address's own line for the innermost frame,
the call site of the inlined callee for each outer frame).

Only compile units that hold requested addresses are decoded: the CU is
found through .debug_aranges (or, when that is missing, the CUs' top-level
address ranges, read without decoding their children); its line table and
its subprogram / inlined_subroutine DIEs are then decoded once and cached.

Sections, unit and line program headers and range lists are read by
dwarfsections.py; the two hot loops, the line-number state machine and the
walk over a unit's DIEs, run in C (dwarfnative.py) when its library loads,
else in Python here and in dies.py (the reference implementations:
DwarfIndex(..., native=False); tests/symbolize/test_dwarf_native.py).

Rules copied from BFD's behaviour (what addr2line prints):
* the line row for an address is the last row at the greatest address <= it
  within the sequence that contains it;
* a file name is ``include_dir/name`` joined to the CU's comp_dir when
  relative;
* a function's name is its (demangled) DW_AT_linkage_name, else DW_AT_name,
  following DW_AT_abstract_origin and DW_AT_specification.
"""
import bisect
import heapq
import struct

from pprof_py.symbolize import dwarfnative
from pprof_py.symbolize.dwarfsections import DwarfSections, LineProgramHeader, Unit, range_list
from pprof_py.symbolize.dies import UnitScanner, parse_abbrev_table
from pprof_py.symbolize.leb128 import sleb as _sleb, uleb as _uleb


def _join(directory, name):
    if not directory or name.startswith("/"):
        return name
    return directory.rstrip("/") + "/" + name


class _FileNames:
    """The full path of each file entry of a line program header, made on
    first use: a unit's table names every header it includes (hundreds in
    C++), its samples only a few of them."""

    def __init__(self, header, comp_dir):
        self.header = header
        self.comp_dir = comp_dir
        self._paths = {}
        self._count = header.file_count()

    def __len__(self):
        return self._count

    def __getitem__(self, index):
        path = self._paths.get(index)
        if path is None:
            if not 0 <= index < self._count:
                raise IndexError(index)
            header = self.header
            name, dir_index = header.file(index)
            dirs = header.directory_count()
            if header.version >= 5:
                directory = header.directory(dir_index) if dir_index < dirs else ""
            else:
                directory = header.directory(dir_index - 1) if 0 < dir_index <= dirs else ""
            path = _join(directory, name)
            if not path.startswith("/"):
                path = _join(self.comp_dir, path)
            self._paths[index] = path
        return path


class _CompileUnitIndex:
    """Decoded line table and function ranges of one CU."""

    def __init__(self, index, cu, wanted):
        self.index = index
        self.sections = index.sections
        self.cu = cu
        self.wanted = wanted      # sorted addresses this CU is asked about
        self.scanner = index.scanner_for(cu)
        top = self.scanner.top
        comp_dir = top.get("DW_AT_comp_dir")
        self.comp_dir = (self.scanner.string(*comp_dir) if comp_dir else None) or ""
        stmt_list = top.get("DW_AT_stmt_list")
        self.lineprog = None        # its LineProgramHeader
        if stmt_list is not None and self.sections.has(".debug_line"):
            self.lineprog = LineProgramHeader(self.sections, stmt_list[1])
        self.files = self._file_names(self.lineprog) if self.lineprog is not None else None
        self._load_lines()
        self._load_functions(top)

    # -- line table --------------------------------------------------------
    def _file_names(self, header):
        return _FileNames(header, self.comp_dir)

    def _load_lines(self):
        # Python decoder: the sequences holding wanted addresses, searched by
        # line_for.  C decoder: the answers for the wanted addresses only.
        self.sequences = []   # list of (start, end, addresses[], rows[])
        self._sequence_starts = []
        self._longest_sequence = 0
        self._native_lines = None
        lineprog = self.lineprog
        if lineprog is None:
            return
        if self.index.native:
            self._native_lines = dict(zip(self.wanted, self._native_rows(self.wanted)))
            return
        names = self.files
        offset = 0 if lineprog.version >= 5 else 1
        wanted = self.wanted
        for start, end, addresses, files, lines in decode_line_program(lineprog, self._program()):
            # Keep only sequences that hold addresses we were asked about.
            i = bisect.bisect_left(wanted, start)
            if i >= len(wanted) or wanted[i] >= end:
                continue
            rows = []
            for f, line in zip(files, lines):
                idx = f - offset
                rows.append((names[idx] if 0 <= idx < len(names) else "??", line))
            self.sequences.append((start, end, addresses, rows))
        self.sequences.sort(key=lambda s: s[0])
        self._sequence_starts = [seq[0] for seq in self.sequences]
        self._longest_sequence = max((seq[1] - seq[0] for seq in self.sequences), default=0)

    def _program(self):
        """The line program's opcodes (bytes)."""
        header = self.lineprog
        return bytes(header.data[header.program_start:header.program_end])

    def _native_rows(self, addresses):
        """line_for's answers for the sorted `addresses`, from the C state
        machine (dwarfnative.line_lookup)."""
        header = self.lineprog
        names = self.files
        offset = 0 if header.version >= 5 else 1
        rows = []
        for row in dwarfnative.line_lookup(
                self._program(), header.version, header.little_endian, header.minimum_instruction_length,
                header.line_base, header.line_range, header.opcode_base, header.standard_opcode_lengths,
                addresses):
            if row is not None:
                idx = row[0] - offset
                row = (names[idx] if 0 <= idx < len(names) else "??", row[1])
            rows.append(row)
        return rows

    def line_for(self, address):
        if self._native_lines is not None:
            row = self._native_lines.get(address, False)
            if row is False:        # not one of the wanted addresses: ask again
                row = self._native_lines[address] = self._native_rows([address])[0]
            return row
        k = bisect.bisect_right(self._sequence_starts, address) - 1
        while k >= 0:
            start, end, addresses, rows = self.sequences[k]
            if start <= address < end:
                i = bisect.bisect_right(addresses, address) - 1
                if i >= 0:
                    return rows[i]
            if address - start > self._longest_sequence:
                break
            k -= 1
        return None

    # -- functions ----------------------------------------------------------
    def _load_functions(self, top):
        """Index every subprogram / inlined_subroutine DIE that holds a
        wanted address: self.functions[i] = (low, high, die index);
        self.dies[k] = (offset, name, is_linkage, first low, call_file,
        call_line, parent)."""
        self.functions = []
        self.dies = []
        files = self.files
        lineprog = self.lineprog
        offset = 0 if (lineprog is not None and lineprog.version >= 5) else 1
        lang_attr = top.get("DW_AT_language")
        # BFD treats a plain DW_AT_name as a linkage name in languages
        # without name mangling (C and friends).
        plain_is_linkage = (lang_attr is None) or lang_attr[1] not in MANGLED_LANGUAGES
        scanner = self.scanner
        index = self.index

        def visit(die, parent):
            ranges = self._scanned_ranges(scanner, die)
            if not ranges:
                # A declaration or an abstract instance: nothing executes
                # here, but concrete code may still be nested in it.
                return parent if die.has_children else None
            if not self._holds_wanted(ranges):
                return None
            name, is_linkage = _bfd_function_name(index, scanner, die, plain_is_linkage)
            call_file = call_line = None
            if die.tag == "DW_TAG_inlined_subroutine":
                cf = die.get("DW_AT_call_file")
                cl = die.get("DW_AT_call_line")
                if cf is not None and files is not None:
                    idx = cf[1] - offset
                    call_file = files[idx] if 0 <= idx < len(files) else "??"
                call_line = cl[1] if cl is not None else 0
            me = len(self.dies)
            self.dies.append((die.offset, name, is_linkage, ranges[0][0], call_file, call_line, parent))
            for lo, hi in ranges:
                self.functions.append((lo, hi, me))
            return me

        scanner.scan(visit, self.wanted)
        self._build_segments()

    def _build_segments(self):
        """Cut the address space into segments, each with its innermost
        function: BFD names an address by the smallest range containing it,
        and on ties by the DIE read last (BFD compares its records'
        allocation order)."""
        events = sorted(set([f[0] for f in self.functions] + [f[1] for f in self.functions]))
        by_start = {}
        for order, (lo, hi, die) in enumerate(self.functions):
            by_start.setdefault(lo, []).append((hi - lo, -order, hi, die))
        active = []
        self._seg_starts, self._seg_dies = [], []
        for point in events:
            for item in by_start.get(point, ()):
                heapq.heappush(active, item)
            while active and active[0][2] <= point:
                heapq.heappop(active)
            # Lazily drop ranges that ended: the heap top must cover `point`.
            die = active[0][3] if active else None
            if self._seg_dies and self._seg_dies[-1] == die:
                continue
            self._seg_starts.append(point)
            self._seg_dies.append(die)

    def _innermost(self, address):
        i = bisect.bisect_right(self._seg_starts, address) - 1
        return self._seg_dies[i] if i >= 0 else None

    def _scanned_ranges(self, scanner, die):
        return die_ranges(self.sections, scanner, die)

    def _holds_wanted(self, ranges):
        wanted = self.wanted
        for lo, hi in ranges:
            i = bisect.bisect_left(wanted, lo)
            if i < len(wanted) and wanted[i] < hi:
                return True
        return False

    def frames_for(self, address):
        """Raw facts for addr2line -i at `address`: a list, innermost
        function first, of (die key, name, is_linkage, low, file, line);
        file/line are what addr2line prints on that function's line.  The
        innermost entry has die key None when no function contains it."""
        best = self._innermost(address)
        line = self.line_for(address)
        cur_file, cur_line = line if line else ("??", 0)
        if best is None:
            return [(None, None, False, None, cur_file, cur_line)]
        frames = []
        k = best
        while k is not None:
            offset, name, is_linkage, low, call_file, call_line, parent = self.dies[k]
            frames.append(((self.cu.cu_offset, offset), name, is_linkage, low, cur_file, cur_line))
            if call_file is not None or call_line is not None:
                cur_file, cur_line = call_file or "??", call_line or 0
            k = parent
        return frames


# DW_LANG codes whose names are mangled (BFD's mangle_style != 0): C++ in all
# its versions, Objective-C++, D, Rust, Swift...
MANGLED_LANGUAGES = {0x4, 0x11, 0x13, 0x19, 0x1a, 0x1c, 0x1e, 0x21}


def _bfd_function_name(index, scanner, die, plain_is_linkage, depth=0):
    """(name, is_linkage) as BFD derives them, attributes in DIE order: a
    DW_AT_linkage_name (here or behind DW_AT_abstract_origin /
    DW_AT_specification) wins; else the first DW_AT_name found, which counts
    as a linkage name only in C-like languages."""
    name, is_linkage = None, False
    for attr_name, form, value in die.attrs:
        if attr_name == "DW_AT_name":
            if name is None:
                name = scanner.string(form, value)
                if plain_is_linkage and name is not None:
                    is_linkage = True
        elif attr_name in ("DW_AT_linkage_name", "DW_AT_MIPS_linkage_name"):
            text = scanner.string(form, value)
            if text is not None:
                name, is_linkage = text, True
        elif attr_name in ("DW_AT_abstract_origin", "DW_AT_specification") and depth < 8:
            target = index.resolve_reference(scanner, form, value)
            if target is None:          # malformed or unsupported: ignored, as BFD does
                continue
            sub_name, sub_linkage = _bfd_function_name(index, target[0], target[1], plain_is_linkage, depth + 1)
            if sub_linkage and sub_name is not None and (not is_linkage or name is None):
                name, is_linkage = sub_name, True
            elif name is None and sub_name is not None:
                name = sub_name
    return name, is_linkage


def die_ranges(sections, scanner, die):
    """Address ranges of a scanned DIE (low/high pc or a range list)."""
    low = die.get("DW_AT_low_pc")
    high = die.get("DW_AT_high_pc")
    if low is not None and high is not None:
        lo = scanner.address(low[0], low[1])
        hi = high[1]
        if high[0] == "DW_FORM_addr" or high[0].startswith("DW_FORM_addrx"):
            hi = scanner.address(high[0], hi)
        else:
            hi = lo + hi
        return [(lo, hi)] if isinstance(lo, int) and isinstance(hi, int) and hi > lo else []
    rng = die.get("DW_AT_ranges")
    if rng is None:
        return []
    base = scanner.top.get("DW_AT_low_pc")
    form, offset = rng
    if form == "DW_FORM_rnglistx" or not isinstance(offset, int):
        return []
    base = scanner.address(*base) if base else 0
    return range_list(sections, scanner.version, scanner.address_size, offset, base,
                      lambda index: scanner.address("DW_FORM_addrx", index))


def unit_offsets(info, little_endian):
    """Offsets of the unit headers in the .debug_info bytes `info`: each
    unit starts with its length (32-bit DWARF: 4 bytes; 64-bit: 0xffffffff,
    then 8 bytes), which does not count the length field itself."""
    order = "<" if little_endian else ">"
    offsets = []
    pos = 0
    while pos + 4 <= len(info):
        length, = struct.unpack_from(order + "I", info, pos)
        header = 4
        if length == 0xffffffff:
            if pos + 12 > len(info):
                break
            length, = struct.unpack_from(order + "Q", info, pos + 4)
            header = 12
        elif length >= 0xfffffff0:          # reserved values: not a unit
            break
        offsets.append(pos)
        pos += header + length
    return offsets


def read_aranges(data, little_endian):
    """[(begin, length, .debug_info offset of the unit)] of a .debug_aranges
    section: sets of a header (unit length, version, unit offset, address
    size, segment size) and (address, length) pairs, aligned to twice the
    address size, up to a (0, 0) pair.  Raises ValueError on sets we cannot
    read (segmented addresses, odd address sizes)."""
    order = "<" if little_endian else ">"
    entries = []
    pos = 0
    while pos + 4 <= len(data):
        length, = struct.unpack_from(order + "I", data, pos)
        if length == 0xffffffff:
            length, = struct.unpack_from(order + "Q", data, pos + 4)
            version, info_offset, address_size, segment_size = struct.unpack_from(order + "HQBB", data, pos + 12)
            header_end, end = pos + 24, pos + 12 + length
        else:
            version, info_offset, address_size, segment_size = struct.unpack_from(order + "HIBB", data, pos + 4)
            header_end, end = pos + 12, pos + 4 + length
        if segment_size != 0 or address_size not in (4, 8):
            raise ValueError("unsupported .debug_aranges set")
        pair = order + ("II" if address_size == 4 else "QQ")
        tuple_size = 2 * address_size
        at = -(-header_end // tuple_size) * tuple_size       # (aligned as pyelftools aligns)
        count = max(0, (min(end, len(data)) - at) // tuple_size)
        for begin, size in struct.iter_unpack(pair, data[at:at + count * tuple_size]):
            if begin == 0 and size == 0:
                break
            entries.append((begin, size, info_offset))
        pos = end
    return entries


class DwarfIndex:
    """Address -> addr2line-style frames for one ELF file."""

    def __init__(self, elf, addresses, native=None):
        """`elf`: the file's ObjectFile (or anything with its ElfHeaders as
        `.headers`).
        `addresses`: every address that will be asked about, so that a
        compile unit is decoded once, and only where it holds them.
        `native`: use the C decoders (dwarfnative) for line programs and DIE
        walks; by default, when the library loads."""
        self.native = (dwarfnative.library() is not None) if native is None else native
        self.wanted = sorted(set(addresses))
        # (an ObjectFile keeps one reader, which may be inflating already)
        self.sections = elf.dwarf_sections() if hasattr(elf, "dwarf_sections") else DwarfSections(elf.headers)
        self._unit_headers = {}
        self._cu_ranges = None     # sorted list of (lo, hi, cu_offset)
        self._starts = None
        self._units = {}

    def _build_cu_ranges(self):
        ranges = []
        covered = set()
        section = self.sections.get(".debug_aranges")
        if section is not None:
            try:
                entries = read_aranges(section, self.sections.little_endian)
            except (ValueError, struct.error):
                entries = []
            for begin, length, info_offset in entries:
                if length:
                    ranges.append((begin, begin + length, info_offset))
                    covered.add(info_offset)
        # CUs that aranges does not describe: read their unit DIE's ranges.
        for offset in self._unit_offsets():
            if offset in covered:
                continue
            scanner = self.scanner_for(self.unit_at(offset))
            for lo, hi in die_ranges(self.sections, scanner, scanner.top):
                ranges.append((lo, hi, offset))
        ranges.sort()
        self._cu_ranges = ranges
        self._starts = [r[0] for r in ranges]

    def _unit_offsets(self):
        """The offsets of the units in .debug_info, from their headers'
        lengths alone (pyelftools' iter_CUs parses every header with
        `construct`: 0.1 s for libc's 2,000 units)."""
        if not hasattr(self, "_cu_offsets"):
            self._cu_offsets = unit_offsets(self._info_bytes(), self.sections.little_endian)
        return self._cu_offsets

    def unit_at(self, offset):
        """The Unit (header) at `offset` of .debug_info."""
        unit = self._unit_headers.get(offset)
        if unit is None:
            unit = self._unit_headers[offset] = Unit(self._info_bytes(), offset, self.sections.little_endian)
        return unit

    def scanner_for(self, cu):
        """The fast DIE reader for `cu` (one per unit, abbreviation tables
        parsed once per offset)."""
        if not hasattr(self, "_scanners"):
            self._scanners, self._abbrevs = {}, {}
            self._abbrev_data = self.sections.get(".debug_abbrev") or b""
        scanner = self._scanners.get(cu.cu_offset)
        if scanner is None:
            offset = cu["debug_abbrev_offset"]
            scanner = self._native_scanner(cu, offset) if self.native else None
            if scanner is None:
                table = self._abbrevs.get(offset)
                if table is None:
                    table = self._abbrevs[offset] = parse_abbrev_table(self._abbrev_data, offset)
                scanner = UnitScanner(self.sections, cu, self._info_bytes(), table)
            self._scanners[cu.cu_offset] = scanner
        return scanner

    def _native_scanner(self, cu, abbrev_offset):
        """A UnitScanner reading with the C decoder, or None when it declines
        this unit's abbreviation table (then the Python reader is used)."""
        if not hasattr(self, "_native_abbrevs"):
            self._native_abbrevs = {}
        table = self._native_abbrevs.get(abbrev_offset)
        if table is None:
            try:
                table = dwarfnative.AbbrevTable(self._abbrev_data, abbrev_offset)
            except dwarfnative.Unsupported:
                table = False
            self._native_abbrevs[abbrev_offset] = table
        if table is False:
            return None
        info = self._info_bytes()
        unit = dwarfnative.NativeUnit(info, cu.cu_offset, cu.cu_offset + cu.size, cu.header["version"],
                                      cu.header["address_size"], 8 if cu.dwarf_format() == 64 else 4,
                                      self.sections.little_endian, table)
        return UnitScanner(self.sections, cu, info, None, native=unit)

    def resolve_reference(self, scanner, form, value):
        """(scanner, DIE) a reference attribute points to, or None."""
        if value is None or not isinstance(value, int) or form in ("DW_FORM_GNU_ref_alt", "DW_FORM_ref_sig8",
                                                                     "DW_FORM_ref_sup4", "DW_FORM_ref_sup8"):
            return None
        try:
            if not scanner.contains(value):
                offsets = self._unit_offsets()
                k = bisect.bisect_right(offsets, value) - 1
                if k < 0:
                    return None
                scanner = self.scanner_for(self.unit_at(offsets[k]))
                if not scanner.contains(value):
                    return None
            return scanner, scanner.die_at(value)
        except (ValueError, IndexError):
            return None

    def _info_bytes(self):
        if not hasattr(self, "_info"):
            self._info = self.sections.get(".debug_info") or b""
        return self._info

    def _ranges_of(self, cu_offset):
        if not hasattr(self, "_by_cu"):
            self._by_cu = {}
            for lo, hi, off in self._cu_ranges:
                self._by_cu.setdefault(off, []).append((lo, hi, off))
        return self._by_cu.get(cu_offset, [])

    def _unit_for(self, address):
        if self._cu_ranges is None:
            self._build_cu_ranges()
        i = bisect.bisect_right(self._starts, address) - 1
        while i >= 0:
            lo, hi, cu_offset = self._cu_ranges[i]
            if lo <= address < hi:
                unit = self._units.get(cu_offset)
                if unit is None:
                    cu = self.unit_at(cu_offset)
                    wanted = set()
                    for lo, hi, _ in self._ranges_of(cu_offset):
                        wanted.update(self.wanted[bisect.bisect_left(self.wanted, lo):
                                                  bisect.bisect_left(self.wanted, hi)])
                    wanted = sorted(wanted)
                    unit = self._units[cu_offset] = _CompileUnitIndex(self, cu, wanted)
                return unit
            if address - lo > (1 << 32):
                break
            i -= 1
        return None

    def frames_for(self, address):
        """_CompileUnitIndex.frames_for for the CU holding `address`, or None
        if no CU covers it."""
        unit = self._unit_for(address)
        if unit is None:
            return None
        return unit.frames_for(address)


def decode_line_program(header, data):
    """Run the DWARF line-number program `data` (the opcodes after the
    dwarfsections.LineProgramHeader `header`; DWARF 2-5, section 6.2) and
    yield each sequence as (start, end, addresses, files, lines), keeping
    for each address only its last row, as BFD does.  The reference for
    the C state machine (dwarfnative.line_lookup), which cold runs use."""
    min_inst = header.minimum_instruction_length
    line_base = header.line_base
    line_range = header.line_range
    opcode_base = header.opcode_base
    std_lengths = header.standard_opcode_lengths
    if line_range == 0:         # a zeroed or damaged header: DWARF damage, not a crash
        raise ValueError("line program header with line_range 0")
    const_add = min_inst * ((255 - opcode_base) // line_range)
    order = "little" if header.little_endian else "big"
    # Special opcodes: precomputed address and line advances.
    addr_adv = [0] * 256
    line_adv = [0] * 256
    for op in range(opcode_base, 256):
        adj = op - opcode_base
        addr_adv[op] = min_inst * (adj // line_range)
        line_adv[op] = line_base + adj % line_range

    # BFD 2.40 (whose answers addr2line, and so gperftools' pprof, print)
    # starts each sequence of a DWARF 5 table with file entry 0, although
    # DWARF 5 says the file register starts at 1; rows before the first
    # DW_LNS_set_file get the CU's primary file.  We reproduce that.
    first_file = 0 if header.version >= 5 else 1
    address, file, line = 0, first_file, 1
    addresses, files, lines = [], [], []
    last = -1
    pos, n = 0, len(data)
    while pos < n:
        op = data[pos]
        pos += 1
        if op >= opcode_base:
            address += addr_adv[op]
            line += line_adv[op]
        elif op == 0:
            length = 0
            shift = 0
            while True:
                b = data[pos]
                pos += 1
                length |= (b & 0x7f) << shift
                if b < 0x80:
                    break
                shift += 7
            if length == 0:
                continue
            sub = data[pos]
            body = pos + 1
            pos += length
            if sub == 1:            # end_sequence
                if addresses:
                    yield addresses[0], address, addresses, files, lines
                address, file, line = 0, first_file, 1
                addresses, files, lines = [], [], []
                last = -1
            elif sub == 2:          # set_address
                address = int.from_bytes(data[body:pos], order)
            continue
        elif op == 1:               # copy
            pass
        elif op == 2:               # advance_pc
            v, pos = _uleb(data, pos)
            address += v * min_inst
            continue
        elif op == 3:               # advance_line
            v, pos = _sleb(data, pos)
            line += v
            continue
        elif op == 4:               # set_file
            file, pos = _uleb(data, pos)
            continue
        elif op == 8:               # const_add_pc
            address += const_add
            continue
        elif op == 9:               # fixed_advance_pc
            address += int.from_bytes(data[pos:pos + 2], order)
            pos += 2
            continue
        else:                       # opcodes whose operands we do not need
            for _ in range(std_lengths[op - 1] if op - 1 < len(std_lengths) else 0):
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            continue
        # A row (special opcode or DW_LNS_copy): the last row at an address wins.
        if address == last:
            files[-1] = file
            lines[-1] = line
        else:
            addresses.append(address)
            files.append(file)
            lines.append(line)
            last = address
