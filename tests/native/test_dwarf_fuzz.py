"""Fuzzing the native DWARF decoders of the symbolizer
(pprof_py/native/src/dwarf/dwarfscan.c).

tests/native/programs/dwarf_fuzz.c feeds them mutated and cut copies of
real .debug_info units, .debug_abbrev tables and line programs (and
mutated line program headers: line_range 0, odd opcode bases), built with
AddressSanitizer and UBSan: a read outside the buffers the decoders were
given aborts the program.  The unmutated inputs must decode.  It runs in
a subprocess, so a crash fails this test only.
"""
import glob
import os
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(ROOT, "pprof_py", "native", "src", "dwarf")
# mutated inputs per file and seed (tests/native/sanitize_dwarf.sh runs more)
ITERATIONS = os.environ.get("DWARF_FUZZ_ITERATIONS", "20000")


def _inputs(path, folder, max_units=300):
    """Writes INFO, ABBREV, LINE and UNITS for dwarf_fuzz from the ELF file `path`."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        sections = {"info": dwarf.debug_info_sec, "abbrev": dwarf.debug_abbrev_sec, "line": dwarf.debug_line_sec}
        files = {}
        for name, sec in sections.items():
            files[name] = os.path.join(folder, name)
            with open(files[name], "wb") as out:
                out.write(sec.stream.getvalue())
        lines = []
        for k, cu in enumerate(dwarf.iter_CUs()):
            if k >= max_units:
                break
            h = cu.header
            lines.append("U %d %d %d %d %d %d %d" % (cu.cu_offset, cu.cu_offset + cu.size, cu.cu_die_offset,
                                                     h["version"], h["address_size"],
                                                     8 if cu.dwarf_format() == 64 else 4, h["debug_abbrev_offset"]))
            prog = dwarf.line_program_for_CU(cu)
            if prog is not None:
                ph = prog.header
                lines.append("L %d %d %d %d %d %d %d %s" % (
                    prog.program_start_offset, prog.program_end_offset, ph["version"],
                    ph["minimum_instruction_length"], ph["line_base"], ph["line_range"], ph["opcode_base"],
                    " ".join(str(v) for v in ph["standard_opcode_lengths"])))
        files["units"] = os.path.join(folder, "units")
        with open(files["units"], "w") as out:
            out.write("\n".join(lines) + "\n")
    return files


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dwarf_fuzz") / "dwarf_fuzz")
    subprocess.run(["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", SRC, os.path.join(HERE, "programs", "dwarf_fuzz.c"), os.path.join(SRC, "dwarfscan.c"),
                    "-o", out], check=True, capture_output=True, timeout=120)
    return out


def _sources():
    """Fixture binaries with DWARF 5 (gcc 12's default); the test adds a
    DWARF 4 one compiled there."""
    paths = [p for p in sorted(glob.glob(os.path.join(ROOT, "fixtures", "bin", "*")))
             if p.endswith(("cxx", "cxx_ctors", "threads"))]
    assert paths
    return paths


@pytest.mark.parametrize("seed", [1, 2])
def test_decoders_stay_in_bounds(fuzzer, tmp_path, seed):
    src = tmp_path / "t.c"
    src.write_text("#include <stdio.h>\nstatic inline int sq(int x){return x*x;}\n"
                   "int main(int c, char **v){for(int i=0;i<c;i++)printf(\"%d\\n\", sq(i)+v[i][0]);return 0;}\n")
    exe = tmp_path / "t4"
    subprocess.run(["gcc", "-O2", "-gdwarf-4", "-o", str(exe), str(src)], check=True, timeout=120)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1")
    total = 0
    for k, path in enumerate(_sources() + [str(exe)]):
        folder = tmp_path / str(k)
        folder.mkdir()
        f = _inputs(path, str(folder))
        r = subprocess.run([fuzzer, f["info"], f["abbrev"], f["line"], f["units"], ITERATIONS, str(seed * 100 + k)],
                           capture_output=True, text=True, timeout=3000, env=env)
        assert r.returncode == 0, (path, r.stderr[-3000:])
        counts = dict(item.split("=") for item in r.stdout.split())
        # the real inputs decoded, and the mutations hit both outcomes
        assert int(counts["real"]) > 0 and int(counts["ok"]) > 1000 and int(counts["damaged"]) > 1000, r.stdout
        total += 1
    assert total >= 2
