"""dwarfsections.py (our readers of sections, unit headers, line program
headers and range lists) against pyelftools, which dwarf.py used before:
the same bytes, fields, file tables and ranges on real files, DWARF 2-5,
compressed sections (libc6-dbg) included."""
import glob
import os
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from helpers import ROOT
from test_dwarf_native import _addresses
from pprof_py.symbolize.dwarfsections import DwarfSections, LineProgramHeader, Unit, range_list
from pprof_py.symbolize.elfheaders import ElfHeaders
from pprof_py.symbolize.objfile import ObjectFile

SOURCE = r"""
#include <stdio.h>
static volatile int sink;
static inline int sq(int x) { if (x > 3) sink = x; return x * x; }
__attribute__((noinline)) int f(int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(i) ^ sink; return s; }
__attribute__((cold, noinline)) void g(int v) { printf("%d\n", v); }
int main(int argc, char **argv) { int v = f(argc * 100); if (v == 7) g(v); return argv[0][v & 1]; }
"""

DEBUG_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_line_str",
                  ".debug_aranges", ".debug_ranges", ".debug_rnglists", ".debug_addr", ".debug_str_offsets")


def _files(tmp_path):
    paths = [p for p in sorted(glob.glob(os.path.join(ROOT, "fixtures", "bin", "*"))) if ObjectFile(p).has_dwarf()]
    for version in (2, 3, 4, 5):
        exe = tmp_path / f"t{version}"
        src = tmp_path / "t.c"
        src.write_text(SOURCE)
        subprocess.run(["gcc", f"-gdwarf-{version}", "-O2", "-freorder-blocks-and-partition", "-o", str(exe),
                        str(src)], check=True, timeout=120)
        paths.append(str(exe))
    # SHF_COMPRESSED sections, GNU's older .zdebug_* ones
    for name, flags in (("tz", ["-gdwarf-5", "-gz"]), ("tzgnu", ["-gdwarf-5", "-Wl,--compress-debug-sections=zlib-gnu"])):
        exe = tmp_path / name
        subprocess.run(["gcc", *flags, "-O2", "-o", str(exe), str(src)], check=True, timeout=120)
        paths.append(str(exe))
    libc = _libc_debug_file()
    paths.append(libc.path)
    return paths


def _libc_debug_file():
    """libc's separate debug file (libc6-dbg: compressed .debug_* sections)."""
    libc = ObjectFile("/lib/x86_64-linux-gnu/libc.so.6").dwarf_object()
    if libc is None:
        pytest.fail("libc6-dbg is not installed (apt-get install libc6-dbg)")
    return libc


def _sections(path):
    f = open(path, "rb")
    return f, DwarfSections(ElfHeaders(f))


def test_sections_units_and_line_headers(tmp_path):
    checked = 0
    for path in _files(tmp_path):
        f, sections = _sections(path)
        with f, open(path, "rb") as g:
            dwarf = ELFFile(g).get_dwarf_info(relocate_dwarf_sections=False)
            for name in DEBUG_SECTIONS:
                theirs = getattr(dwarf, name.replace(".", "", 1) + "_sec", None)
                mine = sections.get(name)
                assert (mine is None) == (theirs is None), (path, name)
                if theirs is not None:
                    assert mine == theirs.stream.getvalue(), (path, name)
            info = sections.get(".debug_info")
            for k, cu in enumerate(dwarf.iter_CUs()):
                unit = Unit(info, cu.cu_offset, sections.little_endian)
                assert (unit.cu_offset, unit.size, unit.cu_die_offset, unit.dwarf_format()) == \
                    (cu.cu_offset, cu.size, cu.cu_die_offset, cu.dwarf_format()), (path, k)
                assert unit.header == {key: cu.header[key] for key in unit.header}, (path, k)
                if k % 7 and k > 40:
                    continue        # (libc: a sample of its 2,000 line tables)
                prog = dwarf.line_program_for_CU(cu)
                if prog is None:
                    continue
                stmt = cu.get_top_DIE().attributes["DW_AT_stmt_list"].value
                header = LineProgramHeader(sections, stmt)
                h = prog.header
                assert (header.version, header.minimum_instruction_length, header.line_base, header.line_range,
                        header.opcode_base, header.standard_opcode_lengths, header.program_start,
                        header.program_end) == \
                    (h["version"], h["minimum_instruction_length"], h["line_base"], h["line_range"],
                     h["opcode_base"], list(h["standard_opcode_lengths"]), prog.program_start_offset,
                     prog.program_end_offset), (path, k)
                dirs = [d.DW_LNCT_path if hasattr(d, "DW_LNCT_path") else d for d in h["include_directory"]]
                assert header.include_directories == [d.decode("utf-8", "surrogateescape") for d in dirs]
                assert header.files == [(e.name.decode("utf-8", "surrogateescape"), e.dir_index)
                                        for e in h["file_entry"]], (path, k)
                checked += 1
    assert checked > 100


def _pyelftools_ranges(dwarf, cu, offset, base):
    """What dwarf.py's range lists gave through pyelftools."""
    from elftools.dwarf.ranges import BaseAddressEntry, RangeEntry
    out = []
    for entry in dwarf.range_lists().get_range_list_at_offset(offset, cu=cu):
        if isinstance(entry, BaseAddressEntry):
            base = entry.base_address
        elif isinstance(entry, RangeEntry):
            lo, hi = (entry.begin_offset, entry.end_offset) if entry.is_absolute else \
                (base + entry.begin_offset, base + entry.end_offset)
            if hi > lo:
                out.append((lo, hi))
    return out


def test_range_lists(tmp_path):
    """Every DW_AT_ranges (DWARF 2-4 .debug_ranges, DWARF 5 .debug_rnglists)
    of the small files and of a sample of libc's units."""
    compared = {4: 0, 5: 0}
    for path in _files(tmp_path):
        f, sections = _sections(path)
        with f, open(path, "rb") as g:
            dwarf = ELFFile(g).get_dwarf_info(relocate_dwarf_sections=False)
            for k, cu in enumerate(dwarf.iter_CUs()):
                if k > 60:
                    break
                top = cu.get_top_DIE()
                low = top.attributes.get("DW_AT_low_pc")
                base = low.value if low is not None and low.form == "DW_FORM_addr" else 0
                for die in cu.iter_DIEs():
                    attr = die.attributes.get("DW_AT_ranges")
                    if attr is None or attr.form == "DW_FORM_rnglistx":
                        continue
                    version = cu.header["version"]
                    mine = range_list(sections, version, cu.header["address_size"], attr.value, base,
                                      lambda index: dwarf.get_addr(cu, index))
                    assert mine == _pyelftools_ranges(dwarf, cu, attr.value, base), (path, die.offset)
                    compared[5 if version >= 5 else 4] += 1
    assert compared[4] > 3 and compared[5] > 50, compared


def test_damaged_headers_raise_value_error():
    """Cut or nonsensical headers are ValueError (DWARF damage), not IndexError crashes elsewhere."""
    class Fake:
        little_endian = True

        def __init__(self, data):
            self.data = data

        def get(self, name):
            return self.data

        def prefix(self, name, end):
            return self.data

        def has(self, name):
            return True

    cut = (b"", b"\x10\x00\x00", b"\xf0\xff\xff\xff", b"\x20\x00\x00\x00\x09\x00", b"\x20\x00\x00\x00\x04\x00\x10")
    for data in cut + (b"\x20\x00\x00\x00\x04\x00\x10\x00\x00\x00\x01\x01\x01\xfb\x0e",):
        with pytest.raises(ValueError):
            LineProgramHeader(Fake(data), 0)
    for data in cut:
        with pytest.raises(ValueError):
            Unit(data, 0, True)
    # a range list running off its section reads as empty
    assert range_list(Fake(b"\x01\x00"), 4, 8, 0, 0, lambda i: 0) == []
    assert range_list(Fake(b"\x06\x00"), 5, 8, 0, 0, lambda i: 0) == []


def test_partial_decompression():
    """prefix() of a compressed section: the same bytes as the whole one,
    decompressed only about as far as asked, then all of it."""
    libc = _libc_debug_file()
    f, sections = _sections(libc.path)
    with f:
        whole = DwarfSections(ElfHeaders(f)).get(".debug_line")
        assert sections._raw(".debug_line")[1] == len(whole)      # (it is compressed)
        front = sections.prefix(".debug_line", 1000)
        assert 1000 <= len(front) < len(whole) // 4 and whole.startswith(front)
        first = len(front)
        middle = sections.prefix(".debug_line", len(whole) // 2)
        assert first < len(middle) < len(whole) and whole.startswith(middle)
        assert sections.prefix(".debug_line", 10) is middle         # no new copy
        assert sections.prefix(".debug_line", len(whole) + 5) == whole
        assert sections.get(".debug_line") == whole


def test_cut_compressed_section_is_damage(tmp_path):
    """A compressed section whose zlib stream is cut short: ValueError from
    get() and prefix(), never silently shorter data."""
    import zlib as _zlib
    from pprof_py.symbolize import dwarfsections
    data = bytes(range(256)) * 4000
    stream = _zlib.compress(data)[:-200]
    partial = dwarfsections._PartialInflate(stream, len(data), ".debug_line")
    assert partial.upto(100)[:100] == data[:100]
    with pytest.raises(ValueError):
        partial.upto(None)
    with pytest.raises(ValueError):
        dwarfsections._inflate(stream, len(data), ".debug_info")


def test_line_header_in_64bit_dwarf(tmp_path):
    """Units in the 64-bit DWARF format, against readelf: pyelftools 0.33
    misreads their line headers."""
    import re
    src, exe = tmp_path / "t.c", tmp_path / "t"
    src.write_text(SOURCE)
    for version in (4, 5):
        subprocess.run(["gcc", f"-gdwarf-{version}", "-gdwarf64", "-O2", "-o", str(exe), str(src)], check=True,
                       timeout=120)
        dump = subprocess.run(["readelf", "--debug-dump=rawline", str(exe)], capture_output=True, text=True,
                              check=True, timeout=60).stdout

        def field(label):
            return int(re.search(rf"{label}:\s+(-?\d+)", dump).group(1))
        f, sections = _sections(str(exe))
        with f:
            unit = Unit(sections.get(".debug_info"), 0, True)
            assert unit.offset_size == 8
            header = LineProgramHeader(sections, 0)
            assert (header.version, header.minimum_instruction_length, header.line_base, header.line_range,
                    header.opcode_base) == (field("DWARF Version"), field("Minimum Instruction Length"),
                                            field("Line Base"), field("Line Range"), field("Opcode Base"))
            # (gas writes the line table in the 32-bit format even then: the
            # unit's format is not the line table's, which pyelftools assumes)
            line = sections.get(".debug_line")
            assert header.program_end == field("Length") + (12 if line[:4] == b"\xff" * 4 else 4)
            table = dump.split("The File Name Table")[1].split("Line Number Statements")[0]
            names = [line.split()[-1] for line in table.splitlines()[2:] if line.strip()]
            assert [name for name, _ in header.files] == names


def test_damaged_sections_raise_only_dwarf_damage(tmp_path):
    """Random bytes changed in a real file's .debug_* sections: DwarfIndex
    answers or raises one of cache.DWARF_DAMAGE (the symbolizer's one-line
    warning), with the C decoders and with the Python ones."""
    import random
    from pprof_py.symbolize.cache import DWARF_DAMAGE
    from pprof_py.symbolize.dwarf import DwarfIndex
    src = os.path.join(ROOT, "fixtures", "bin", "cxx")
    original = open(src, "rb").read()
    headers = ElfHeaders(open(src, "rb"))
    targets = [headers.section_by_name(n) for n in (".debug_info", ".debug_line", ".debug_abbrev",
                                                     ".debug_aranges", ".debug_rnglists", ".debug_str")]
    targets = [t for t in targets if t is not None]
    with open(src, "rb") as f:
        addresses = _addresses(ELFFile(f), 200)
    rng = random.Random(11)
    outcomes = {"answered": 0, "damage": 0}
    for k in range(120):
        data = bytearray(original)
        sec = rng.choice(targets)
        for _ in range(rng.randrange(1, 12)):
            data[sec["sh_offset"] + rng.randrange(sec["sh_size"])] = rng.randrange(256)
        path = tmp_path / f"cxx{k}"
        path.write_bytes(bytes(data))
        for native in (True, False):
            try:
                index = DwarfIndex(ObjectFile(str(path)), addresses, native=native)
                for a in addresses:
                    index.frames_for(a)
                outcomes["answered"] += 1
            except DWARF_DAMAGE:
                outcomes["damage"] += 1
    assert outcomes["answered"] > 20 and outcomes["damage"] > 20, outcomes


def test_prefetched_section_is_the_same_and_errors_reach_the_caller(monkeypatch):
    """prefetch() inflates in a thread: get() then gives the same bytes,
    and a damaged stream raises ValueError from get(), in the caller."""
    import zlib as _zlib
    libc = _libc_debug_file()
    f, sections = _sections(libc.path)
    with f:
        whole = DwarfSections(ElfHeaders(f)).get(".debug_info")
        assert isinstance(sections._raw(".debug_info"), tuple)        # (it is compressed)
        sections.prefetch(".debug_info")
        sections.prefetch(".debug_info")                              # twice: one thread
        assert len(sections._pending) == 1
        assert sections.get(".debug_info") == whole and not sections._pending
    data = bytes(range(256)) * 4000
    f, sections = _sections(libc.path)
    with f:
        monkeypatch.setattr(sections, "_raw", lambda name: (_zlib.compress(data)[:-200], len(data)))
        sections.prefetch(".debug_info")
        with pytest.raises(ValueError):
            sections.get(".debug_info")


def test_objects_prefetch_into_the_reader_the_index_uses():
    """ObjectFile.prefetch_debug_info starts inflating the .debug_info of
    the file its DWARF is in; DwarfIndex then reads that same reader."""
    from pprof_py.symbolize.dwarf import DwarfIndex
    libc = ObjectFile("/lib/x86_64-linux-gnu/libc.so.6")
    debug = libc.dwarf_object()
    if debug is None:
        pytest.fail("libc6-dbg is not installed (apt-get install libc6-dbg)")
    libc.prefetch_debug_info()
    assert ".debug_info" in debug.dwarf_sections()._pending
    index = DwarfIndex(debug, [0x1000])
    assert index.sections is debug.dwarf_sections()
    index.frames_for(0x1000)
    assert not index.sections._pending and index.sections._loaded[".debug_info"]
    stripped = ObjectFile(os.path.join(ROOT, "fixtures", "bin", "stripped"))
    stripped.prefetch_debug_info()                 # no DWARF anywhere: nothing to do
    assert stripped.dwarf_object() is None
