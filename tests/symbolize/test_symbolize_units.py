"""Pieces of the symbolizer checked against the tools they emulate."""
import glob
import os
import shutil
import subprocess

import pytest

from pprof_py.symbolize import find_library, short_function_name
from pprof_py.symbolize.demangle import demangle
from pprof_py.symbolize.objfile import ObjectFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("full,short", [
    ("main", "main"),
    ("ns::Foo::bar(int) const", "ns::Foo::bar"),
    ("void std::__introsort_loop<int*, long>(int*, int*, long)", "std::__introsort_loop"),
    ("void foo<int>(int)", "void foo"),          # pprof keeps the return type here
    ("main::{lambda()#1}::operator()() const", "main::{lambda#1}::operator"),
    ("spin<0000000000401136>", "spin"),
    ("__adjtimex@@GLIBC_2.2.5<0000000000108b00>", "__adjtimex@@GLIBC_2.2.5"),
])
def test_short_function_name(full, short):
    assert short_function_name(full) == short


def test_demangle_matches_cxxfilt():
    names = ["_ZNSt6vectorIiSaIiEE9push_backERKi", "_ZZ4mainENKUlvE_clEv", "_Z7computeRSt6vectorIiSaIiEE",
             "_ZN9__gnu_cxx17__normal_iteratorIPiSt6vectorIiSaIiEEEC2ERKS1_", "plain_c_name"]
    cxxfilt = shutil.which("c++filt")
    if cxxfilt is None:
        pytest.fail("c++filt (binutils) is needed for this comparison; CI installs binutils")
    expected = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    assert [demangle(n) for n in names] == expected[:len(names)]


def test_nm_table_matches_nm():
    """Our nm view of a fixture binary lists the same symbols at the same
    addresses as `nm -n --demangle` does (pprof's first source of names)."""
    binary = os.path.join(ROOT, "fixtures/bin/cxx")
    nm = shutil.which("nm")
    if nm is None:
        pytest.fail("nm (binutils) is needed for this comparison; CI installs binutils")
    out = subprocess.run([nm, "-n", "--demangle", binary], capture_output=True, text=True).stdout
    listed = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].strip():
            listed.setdefault(int(parts[0], 16), []).append(parts[2])
    starts, _, full = ObjectFile(binary).nm_table()
    assert len(full) == len(listed)
    for start, name in zip(starts, full):
        base = name[:name.rindex("<")]
        assert base in listed[start]


def test_find_library_tries_prefixes(tmp_path):
    lib = tmp_path / "sysroot" / "lib" / "libx.so.1"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")
    assert find_library("/usr/lib/libx.so.1", [str(tmp_path / "sysroot")]) == str(lib)
    assert find_library("/nowhere/libx.so.1", []) == "/nowhere/libx.so.1"


def test_build_id_and_debuglink_lookup():
    obj = ObjectFile(os.path.join(ROOT, "fixtures/bin/chain"))
    assert len(obj.build_id) == 40
    assert obj.has_dwarf() and obj.dwarf_object() is obj


def _pprof(*args):
    import sys
    return subprocess.run([sys.executable, "-m", "pprof_py", "--no-cache", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_damaged_debug_info_falls_back_to_symbols(tmp_path):
    """A binary whose DWARF is garbage still gets function names from its
    symbol table, with a warning; a truncated binary gets addresses."""
    from elftools.elf.elffile import ELFFile
    broken = tmp_path / "chain"
    broken.write_bytes(open(os.path.join(ROOT, "fixtures/bin/chain"), "rb").read())
    with open(broken, "r+b") as f:
        section = ELFFile(f).get_section_by_name(".debug_info")
        f.seek(section["sh_offset"] + 20)
        f.write(b"\xff" * (section["sh_size"] - 40))
    result = _pprof("--text", str(broken), "fixtures/profiles/chain.cpu.prof")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "damaged debug info" in result.stderr
    assert " spin\n" in result.stdout

    truncated = tmp_path / "trunc"
    truncated.write_bytes(open(os.path.join(ROOT, "fixtures/bin/chain"), "rb").read()[:3000])
    result = _pprof("--text", str(truncated), "fixtures/profiles/chain.cpu.prof")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "damaged" in result.stderr and result.stdout.startswith("Total:")


def test_progress_bar_only_on_a_terminal_and_after_the_delay(monkeypatch):
    import sys
    from pprof_py.cli.console import DelayedProgress
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    quiet = DelayedProgress("symbolizing x", delay=0)
    quiet.update(1, 10)
    assert quiet._progress is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    slow = DelayedProgress("symbolizing x", delay=3600)
    slow.update(1, 10)
    assert slow._progress is None           # not yet: the work has been quick so far
    shown = DelayedProgress("symbolizing x", delay=0)
    shown.update(5, 10)
    assert shown._progress is not None
    assert shown._progress.tasks[0].completed == 5 and shown._progress.tasks[0].total == 10
    shown.close()
    assert shown._progress is None


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "fixtures", "bin", "*")))
                         + ["/lib/x86_64-linux-gnu/libc.so.6"])
def test_has_fini_without_the_nm_table(path):
    """has_fini found without building the nm table (the warm path) agrees
    with the one the table records; the table is not built for it."""
    from pprof_py.symbolize.objfile import ObjectFile
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing")
    fast = ObjectFile(path)
    table = fast.nm_table()
    answer = fast.has_fini
    assert not table.built
    built = ObjectFile(path)
    list(built.nm_table())
    assert answer == built.has_fini


def _dwarf_files():
    """Fixture binaries and a few of this machine's debug files with DWARF."""
    paths = sorted(glob.glob(os.path.join(ROOT, "fixtures/bin/*")))
    paths += sorted(glob.glob("/usr/lib/debug/.build-id/*/*.debug"))[:20]
    return paths


def test_header_readers_agree_with_pyelftools():
    """elfheaders.py (sections, segments, build-id) and dwarf.py's
    read_aranges / unit_offsets read what pyelftools reads."""
    from elftools.elf.elffile import ELFFile
    from pprof_py.symbolize.dwarf import read_aranges, unit_offsets
    from pprof_py.symbolize.elfheaders import ElfHeaders
    checked = 0
    for path in _dwarf_files():
        with open(path, "rb") as f:
            elf = ELFFile(f)
            headers = ElfHeaders(f)
            theirs = [(s.name, s["sh_type"], s["sh_addr"], s["sh_offset"], s["sh_size"], s["sh_flags"])
                      for s in elf.iter_sections()]
            mine = [(s.name, s["sh_type"], s["sh_addr"], s["sh_offset"], s["sh_size"], s["sh_flags"])
                    for s in headers.sections]
            assert mine == theirs, path
            assert [dict(seg.header) for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"] == \
                [seg for seg in headers.segments if seg["p_type"] == "PT_LOAD"], path
            assert headers.e_type == elf["e_type"] and headers.elfclass == elf.elfclass
            notes = [n["n_desc"] for s in elf.iter_sections() if s["sh_type"] == "SHT_NOTE"
                     for n in s.iter_notes() if n["n_type"] == "NT_GNU_BUILD_ID"]
            assert headers.build_id() == (notes[0] if notes else ""), path
            if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_info") is None:
                continue
            dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
            little = dwarf.config.little_endian
            assert unit_offsets(dwarf.debug_info_sec.stream.getvalue(), little) == \
                [cu.cu_offset for cu in dwarf.iter_CUs()], path
            aranges = dwarf.get_aranges()
            expected = sorted((e.begin_addr, e.length, e.info_offset) for e in aranges.entries) if aranges else []
            data = dwarf.debug_aranges_sec.stream.getvalue() if dwarf.debug_aranges_sec else b""
            assert sorted(read_aranges(data, little)) == expected, path
            checked += 1
    assert checked >= 3


def test_symbol_versions_agree_with_pyelftools():
    """ObjectFile._versions reads .gnu.version_d / _r itself: the same
    version names pyelftools' iterators give."""
    paths = sorted(glob.glob(os.path.join(ROOT, "fixtures/bin/*"))) + \
        [p for p in ("/usr/bin/xz", "/usr/bin/git", "/usr/lib/x86_64-linux-gnu/libc.so.6") if os.path.exists(p)]
    compared = 0
    for path in paths:
        obj = ObjectFile(path)
        verdef = obj.elf.get_section_by_name(".gnu.version_d")
        verneed = obj.elf.get_section_by_name(".gnu.version_r")
        names = {}
        for vd, aux_iter in (verdef.iter_versions() if verdef is not None else ()):
            aux = next(iter(aux_iter), None)
            if aux is not None:
                names[vd["vd_ndx"]] = (aux.name, False)
        for _, aux_iter in (verneed.iter_versions() if verneed is not None else ()):
            for aux in aux_iter:
                names.setdefault(aux["vna_other"], (aux.name, True))
        mine = obj._versions(1)
        if mine is None:
            assert not names, path
        else:
            assert mine[1] == names, path
            compared += 1
    assert compared >= 2
