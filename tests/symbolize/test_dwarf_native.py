"""The native DWARF decoders (pprof_py/native/src/dwarf/, through
pprof_py/symbolize/dwarfnative.py) against the Python reference readers
(dwarf.py's decode_line_program / line_for, dies.py's scan_python): for
many addresses of real files, DwarfIndex.frames_for must give identical
answers either way.

Files: the fixture binaries, programs compiled here with every DWARF
version gcc writes (2-5: .debug_ranges and .debug_rnglists, inlining at
-O2), libc's separate debug file (libc6-dbg) and the pyenv/Debian
libpython3.11 when it has DWARF.
"""
import glob
from bisect import bisect_left
import os
import subprocess
import sys
import tempfile

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from helpers import ROOT
from pprof_py.symbolize import dwarfnative
from pprof_py.symbolize.dwarf import DwarfIndex
from pprof_py.symbolize.objfile import ObjectFile

CXX_SOURCE = r"""
#include <cstdio>
#include <cstring>
namespace ns {
struct Acc {
    long total = 0;
    Acc() { total = 1; }
    explicit Acc(long t) : total(t) {}
    inline void add(long v) { if (v & 1) total += v * 3; else total ^= v; }
    long get() const { return total; }
};
template <typename T> static inline T twice(T v) { return v + v; }
}
static volatile long sink;
__attribute__((noinline)) static long work(const char *s) {
    ns::Acc a, b(7);
    for (size_t i = 0; i < std::strlen(s); i++) {
        a.add(ns::twice<long>(s[i]));
        { long t = s[i] * 5; if (t > 300) b.add(t); }
    }
    return a.get() + b.get();
}
__attribute__((cold, noinline)) static void report(long v) { std::printf("%ld\n", v); }
int main(int argc, char **argv) {
    long v = 0;
    for (int i = 0; i < argc; i++) v += work(argv[i]);
    if (v == 42) report(v);
    sink = v;
    return 0;
}
"""


def _function_starts(elf):
    """(start, size) of the sized function symbols of an ELF file."""
    found = set()
    for section in elf.iter_sections():
        if isinstance(section, SymbolTableSection):
            for sym in section.iter_symbols():
                if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"] and sym["st_value"]:
                    found.add((sym["st_value"], sym["st_size"]))
    return sorted(found)


def _addresses(elf, limit):
    """Deterministic addresses inside functions: each function's start, and
    points spread through its body; at most `limit`, spread over the file."""
    functions = _function_starts(elf)
    step = max(1, len(functions) * 4 // limit)
    out = set()
    for start, size in functions[::step]:
        for k in range(4):
            out.add(start + size * k // 4)
        out.add(start + size - 1)
    # and a few outside every function
    if functions:
        out.add(functions[0][0] - 1)
        out.add(functions[-1][0] + functions[-1][1] + 16)
    return sorted(out)


def _compare(path, limit):
    """frames_for, native vs Python, on `limit`-ish addresses of `path`;
    returns how many addresses got frames."""
    with open(path, "rb") as f:
        addresses = _addresses(ELFFile(f), limit)
    obj = ObjectFile(path)
    native = DwarfIndex(obj, addresses, native=True)
    python = DwarfIndex(obj, addresses, native=False)
    assert native.native and not python.native
    answered = 0
    for a in addresses:
        mine, reference = native.frames_for(a), python.frames_for(a)
        assert mine == reference, (path, hex(a))
        answered += mine is not None and mine[0][0] is not None
    # the native units really were read natively, and their tops agree
    for key, scanner in getattr(native, "_scanners", {}).items():
        assert scanner.native is not None, (path, key)
        reference = python.scanner_for(python.unit_at(key))
        top, ref_top = scanner.top, reference.top
        assert (top.offset, top.tag, top.attrs, top.has_children) == \
            (ref_top.offset, ref_top.tag, ref_top.attrs, ref_top.has_children), (path, key)
    for offset, unit in native._units.items():
        if unit.lineprog is not None:
            ref = python._units[offset]
            assert [unit.line_for(a) for a in unit.wanted] == [ref.line_for(a) for a in ref.wanted]
    return answered


def test_library_loads():
    """The library is built (setup.py build_ext), its exports are the
    interface of dwarfscan.h only, and it links libc only."""
    lib = dwarfnative.library()
    assert lib is not None, "pprof_py/native/_libdwarf*.so is not built or does not load"
    from pprof_py.native import libpath
    out = subprocess.run(["nm", "-D", "--defined-only", libpath("dwarf")], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    exported = sorted(line.split()[-1] for line in out.splitlines() if line.split()[1:2] == ["T"])
    assert exported == ["ppd_abbrev_free", "ppd_abbrev_parse", "ppd_decode_die", "ppd_line_lookup",
                        "ppd_scan_unit"]
    # and it needs nothing but libc
    needed = subprocess.run(["readelf", "-d", libpath("dwarf")], capture_output=True, text=True, check=True,
                            timeout=60).stdout
    assert [line.split("[")[1].rstrip("]") for line in needed.splitlines() if "(NEEDED)" in line] == ["libc.so.6"]


def test_fixture_binaries():
    compared = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures", "bin", "*"))):
        if ObjectFile(path).has_dwarf():
            _compare(path, 400)
            compared += 1
    assert compared >= 3


@pytest.mark.parametrize("flags", [["-gdwarf-2", "-O1"], ["-gdwarf-3", "-O2"], ["-gdwarf-4", "-O2"],
                                   ["-gdwarf-5", "-O2"], ["-gdwarf-5", "-O3", "-fPIE", "-pie"],
                                   ["-gdwarf-4", "-O2", "-ffunction-sections", "-freorder-blocks-and-partition"],
                                   ["-gdwarf-5", "-gdwarf64", "-O2"], ["-gdwarf-4", "-gdwarf64", "-O2"]])
def test_compiled_programs(tmp_path, flags):
    """C++ with inlined methods and templates and hot/cold splitting (DW_AT_ranges),
    in each DWARF version, and in the 64-bit DWARF format."""
    src, exe = tmp_path / "t.cc", tmp_path / "t"
    src.write_text(CXX_SOURCE)
    subprocess.run(["g++", *flags, "-o", str(exe), str(src)], check=True, timeout=120)
    assert _compare(str(exe), 2000) > 0


def _system_files():
    """libc's debug file and libpython3.11 with DWARF: those that exist here."""
    found = []
    libc = ObjectFile("/lib/x86_64-linux-gnu/libc.so.6").dwarf_object()
    if libc is not None:
        found.append(libc.path)
    for candidate in sorted(glob.glob("/root/.pyenv/versions/3.11*/lib/libpython3.11.so.1.0")) + \
            ["/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"]:
        obj = ObjectFile(candidate) if os.path.exists(candidate) else None
        if obj is not None and obj.dwarf_object() is not None:
            found.append(obj.dwarf_object().path)
            break
    return found


def test_system_libraries():
    """libc (libc6-dbg's compressed DWARF 5) and libpython3.11: many units."""
    files = _system_files()
    assert files, "neither libc6-dbg's libc debug file nor a libpython3.11 with DWARF is installed"
    for path in files:
        assert _compare(path, 1500) > 500, path


def test_damage_raises_value_error():
    """Damaged input gives ValueError (cache.DWARF_DAMAGE), not a crash."""
    lib = dwarfnative.library()
    assert lib is not None
    # line_range 0, a truncated LEB128, an extended opcode longer than the program
    with pytest.raises(ValueError):
        dwarfnative.line_lookup(b"\x01", 4, True, 1, -5, 0, 13, [0] * 12, [1])
    with pytest.raises(ValueError):
        dwarfnative.line_lookup(b"\x02\x80\x80", 4, True, 1, -5, 14, 13, [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1], [1])
    with pytest.raises(ValueError):
        dwarfnative.line_lookup(b"\x00\x09\x02\x00", 4, True, 1, -5, 14, 13, [0] * 12, [1])
    # abbreviation table cut in the middle of a declaration
    with pytest.raises(ValueError):
        dwarfnative.AbbrevTable(b"\x01\x11\x01\x03", 0)
    table = dwarfnative.AbbrevTable(b"\x01\x11\x01\x03\x08\x00\x00\x02\x2e\x00\x03\x0e\x00\x00\x00", 0)
    # a unit whose DIE uses an unknown code, and one whose string has no end
    for info in (b"\x07\x00\x00\x00\x04\x00\x00\x00\x00\x00\x08\x05", b"\x07\x00\x00\x00\x04\x00\x00\x00\x00\x00\x08\x01ab"):
        unit = dwarfnative.NativeUnit(info, 0, len(info), 4, 8, 4, True, table)
        with pytest.raises(ValueError):
            unit.die_at(11, everything=True)
        with pytest.raises(ValueError):
            unit.scan_records(11, [0])


def test_bisect_rule_matches_python():
    """Sequences with equal starts and rows at one address: the answers
    line_for gives (the later sequence, the last row), from a hand-made
    program."""
    # set_address 0x1000; copy (line 1); advance_line 4; copy at same address -> last row wins;
    # advance_pc 0x10; end_sequence; then a second sequence at 0x1000 with set_file 2, line 9
    prog = bytes([0, 9, 2]) + (0x1000).to_bytes(8, "little") + bytes([1, 3, 4, 1, 2, 0x10, 0, 1, 1])
    prog += bytes([0, 9, 2]) + (0x1000).to_bytes(8, "little") + bytes([4, 2, 3, 8, 1, 2, 0x8, 0, 1, 1])
    lengths = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]
    rows = dwarfnative.line_lookup(prog, 4, True, 1, -5, 14, 13, lengths,
                                   [0xfff, 0x1000, 0x1007, 0x1008, 0x100f, 0x1010])
    assert rows == [None, (2, 9), (2, 9), (1, 5), (1, 5), None]


# ---- random DIE trees: the C walk against dies.py's scan_python ----------

# code: (tag, has_children, [(attribute, form)])
_ABBREVS = {
    1: (0x11, 1, [(0x03, 0x08)]),                               # compile_unit: name (string)
    2: (0x2e, 1, [(0x11, 0x01), (0x12, 0x06)]),                 # subprogram: low_pc addr, high_pc data4
    3: (0x2e, 0, [(0x03, 0x08), (0x11, 0x01), (0x12, 0x06)]),   # subprogram leaf, with a name
    4: (0x2e, 1, [(0x03, 0x08), (0x3c, 0x19)]),                 # declaration: no range
    5: (0x1d, 1, [(0x31, 0x13), (0x11, 0x01), (0x12, 0x01), (0x58, 0x0b), (0x59, 0x05)]),  # inlined: high addr
    6: (0x0b, 1, [(0x01, 0x13)]),                               # lexical_block with DW_AT_sibling
    7: (0x13, 1, [(0x01, 0x13), (0x03, 0x08)]),                 # structure_type with DW_AT_sibling
    8: (0x13, 1, [(0x03, 0x08)]),                               # structure_type without
    9: (0x34, 0, [(0x03, 0x08), (0x02, 0x18)]),                 # variable: location exprloc
    10: (0x39, 1, [(0x03, 0x08)]),                              # namespace
    11: (0x2e, 1, [(0x6e, 0x08), (0x11, 0x01), (0x12, 0x0f)]),  # subprogram: linkage name, high_pc udata
    12: (0x1d, 0, [(0x31, 0x15), (0x11, 0x01), (0x12, 0x0b), (0x59, 0x0d)]),  # inlined leaf: data1, sdata
    13: (0x2e, 0, [(0x3c, 0x19)]),                              # declaration leaf
}


def _uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _sleb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        if (v == 0 and not b & 0x40) or (v == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _abbrev_bytes():
    out = bytearray()
    for code, (tag, children, specs) in _ABBREVS.items():
        out += _uleb(code) + _uleb(tag) + bytes([children])
        for attr, form in specs:
            out += _uleb(attr) + _uleb(form)
        out += b"\0\0"
    return bytes(out + b"\0")


def _random_unit(rng):
    """A DWARF 4 unit of random nesting: .debug_info bytes."""
    body = bytearray()
    fixups = []

    def value(attr, form):
        if form == 0x08:
            return ("f%d" % rng.randrange(1000)).encode() + b"\0"
        if form == 0x01:
            return (0x1000 + rng.randrange(0, 0x800)).to_bytes(8, "little")
        if form == 0x06:
            return rng.choice([0, 1, 0x40, 0x200]).to_bytes(4, "little")
        if form == 0x0f:
            return _uleb(rng.choice([0, 3, 0x100]))
        if form == 0x0b:
            return bytes([rng.randrange(0, 0x20)])
        if form == 0x0d:
            return _sleb(rng.randrange(-3, 200))
        if form in (0x13,):
            return (11).to_bytes(4, "little")
        if form == 0x15:
            return _uleb(11)
        if form == 0x05:
            return rng.randrange(0, 500).to_bytes(2, "little")
        if form == 0x18:
            return _uleb(2) + b"\x91\x00"
        return b""

    def emit(depth):
        code = rng.choice(list(_ABBREVS)[1:])
        tag, children, specs = _ABBREVS[code]
        body.extend(_uleb(code))
        sibling_at = None
        for attr, form in specs:
            if attr == 0x01:
                sibling_at = len(body)
                body.extend(b"\0\0\0\0")
            elif attr == 0x12 and form == 0x01:          # an absolute high_pc near low_pc
                low = int.from_bytes(body[-8:], "little")
                body.extend((low + rng.randrange(0, 0x100)).to_bytes(8, "little"))
            else:
                body.extend(value(attr, form))
        if children:
            for _ in range(rng.randrange(0, 4) if depth < 6 else 0):
                emit(depth + 1)
            body.append(0)
        if sibling_at is not None:
            fixups.append(sibling_at)
            body[sibling_at:sibling_at + 4] = (11 + len(body)).to_bytes(4, "little")   # (offset in the unit)

    top = _uleb(1) + b"top.c\0"
    start = len(body)
    for _ in range(rng.randrange(1, 8)):
        emit(0)
    del start
    unit_body = top + bytes(body) + b"\0"
    # the sibling offsets were computed for DIEs starting right after the header; shift by the top DIE
    fixed = bytearray(unit_body)
    for at in fixups:
        pos = len(top) + at
        v = int.from_bytes(fixed[pos:pos + 4], "little") + len(top)
        fixed[pos:pos + 4] = v.to_bytes(4, "little")
    header = (2 + 4 + 1 + len(fixed)).to_bytes(4, "little") + (4).to_bytes(2, "little") + \
        (0).to_bytes(4, "little") + bytes([8])
    return header + bytes(fixed)


def _accepted_calls(scanner, wanted):
    from pprof_py.symbolize.dwarf import die_ranges
    calls = []

    def visit(die, parent):             # dwarf.py's visit, recording what it keeps
        ranges = die_ranges(None, scanner, die)
        if not ranges:
            return parent if die.has_children else None
        i = bisect_left(wanted, ranges[0][0])
        if not (i < len(wanted) and wanted[i] < ranges[0][1]):
            return None
        calls.append((die.offset, die.tag, die.attrs, die.has_children, parent))
        return die.offset

    scanner.scan(visit, wanted)
    return calls


def test_random_die_trees():
    """The C walk keeps exactly the functions dies.py's walk hands to a
    visit like dwarf.py's, with the same attributes and parents, on random
    trees (siblings, containers, declarations, transparent functions)."""
    import random
    from types import SimpleNamespace
    from pprof_py.symbolize.dies import UnitScanner, parse_abbrev_table
    abbrev = _abbrev_bytes()
    table = dwarfnative.AbbrevTable(abbrev, 0)
    dwarf = SimpleNamespace(little_endian=True)
    rng = random.Random(5)
    kept = 0
    for _ in range(400):
        info = _random_unit(rng)
        cu = SimpleNamespace(header={"version": 4, "address_size": 8}, dwarf_format=lambda: 32, cu_offset=0,
                             size=len(info), cu_die_offset=11)
        wanted = sorted({0x1000 + rng.randrange(0, 0x900) for _ in range(rng.randrange(0, 12))})
        python = UnitScanner(dwarf, cu, info, parse_abbrev_table(abbrev, 0))
        native = UnitScanner(dwarf, cu, info, None,
                             native=dwarfnative.NativeUnit(info, 0, len(info), 4, 8, 4, True, table))
        assert native.top.attrs == python.top.attrs
        mine, reference = _accepted_calls(native, wanted), _accepted_calls(python, wanted)
        assert mine == reference, info.hex()
        kept += len(mine)
    assert kept > 100


def test_python_fallback_end_to_end():
    """`pprof --text --lines` prints the same report with the C decoders and
    with the Python ones (PPROF_PY_NATIVE_DWARF=0, what a build without the
    library gets), on the C++ fixture profile."""
    from helpers import PROFILES, localize
    localize()
    args = ["--text", "--lines", "fixtures/bin/cxx", PROFILES + "/cxx.cpu.prof"]
    outputs = []
    for flag in ("1", "0"):
        env = dict(os.environ, PYTHONPATH=ROOT, PPROF_PY_NATIVE_DWARF=flag,
                   XDG_CACHE_HOME=tempfile.mkdtemp())      # cold: the DWARF is read
        r = subprocess.run([sys.executable, "-m", "pprof_py", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout)
    assert outputs[0] == outputs[1]
    assert ".cc:" in outputs[0]


def test_library_missing_means_python(monkeypatch):
    """When the library cannot be loaded, library() is None and DwarfIndex
    reads with Python."""
    import pprof_py.native
    monkeypatch.setattr(dwarfnative, "_lib", None)
    monkeypatch.setattr(dwarfnative, "_tried", False)

    def missing(name):
        raise pprof_py.native.NativeLibraryMissing(name)
    monkeypatch.setattr(pprof_py.native, "libpath", missing)
    assert dwarfnative.library() is None
    path = os.path.join(ROOT, "fixtures", "bin", "cxx")
    index = DwarfIndex(ObjectFile(path), [0x1000])
    assert not index.native
