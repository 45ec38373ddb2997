"""A program that does not match the profile gets one warning line:
by build-id where one can be compared, else by the layout of
its code against the profile's mapping, else when no sampled address of
the program's mapping falls in its code.  The matching program, and a
stripped copy of it, get none."""
import os
import shutil
import struct
import subprocess

import pytest

from helpers import PROFILES, ROOT, err, localize, pprof, relocate_maps, text


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


def _relocated(tmp_path, profile, program_copy_of, name):
    """The fixture profile with its maps naming tmp_path/, and at
    tmp_path/<name> a copy of fixtures/bin/<program_copy_of> (a program
    rebuilt at the same path, as far as the profile can tell)."""
    with open(os.path.join(ROOT, PROFILES, profile), "rb") as f:
        data = f.read()
    prof = tmp_path / "p.prof"
    prof.write_bytes(relocate_maps.relocate_bytes(data, ROOT + "/fixtures/bin/", str(tmp_path) + "/"))
    shutil.copy(os.path.join(ROOT, "fixtures", "bin", program_copy_of), tmp_path / name)
    return [str(tmp_path / name), str(prof)]


def _warnings(proc):
    return [line for line in err(proc).splitlines() if line.startswith("warning:")]


def test_another_program_than_the_profiled_one_by_build_id():
    proc = pprof(["--text", "fixtures/bin/recursion", f"{PROFILES}/chain.cpu.prof"])
    assert proc.returncode == 0
    [warning] = _warnings(proc)
    assert warning.startswith("warning: fixtures/bin/recursion (build-id ")
    assert "is not the binary the profile was recorded from (" in warning and "fixtures/bin/chain, build-id" in warning


def test_rebuilt_at_the_same_path_code_laid_out_otherwise(tmp_path):
    # the cxx profile (a PIE program) with a non-PIE program in its place
    args = _relocated(tmp_path, "cxx.cpu.prof", "chain", "cxx")
    proc = pprof(["--text", "--no-cache", *args])
    assert proc.returncode == 0
    [warning] = _warnings(proc)
    assert warning.startswith(f"warning: the code of {args[0]} is not laid out as the profile's mapping of {args[0]} ")
    assert warning.endswith("is it the binary the profile was recorded from?")


def _cpu_profile(path, samples, maps):
    """A gperftools CPU profile (docs in pprof_py/formats/cpu_binary.py)."""
    words = [0, 3, 0, 10000, 0]
    for count, stack in samples:
        words += [count, len(stack), *stack]
    words += [0, 1, 0]
    path.write_bytes(struct.pack("<%dQ" % len(words), *words) + maps.encode())


def test_no_sampled_address_in_the_program_code(tmp_path):
    src = tmp_path / "p.c"
    src.write_text("int main(void) { return 0; }\n")
    prog = tmp_path / "prog"
    subprocess.run(["gcc", "-O0", "-o", str(prog), str(src)], check=True, timeout=60)
    seg = [line.split() for line in subprocess.run(["readelf", "-lW", str(prog)], capture_output=True, text=True,
                                                   check=True).stdout.splitlines() if "R E" in line][0]
    offset, size = int(seg[1], 16), int(seg[4], 16)
    first, end = offset & ~0xfff, (offset + size + 0xfff) & ~0xfff
    base = 0x555555554000
    maps = "%x-%x r-xp %08x 08:01 1 %s\n" % (base + first, base + end, first, prog)
    # addresses in the mapped page past the end of every section (padding)
    pcs = [base + end - 0x10, base + end - 0x20]
    _cpu_profile(tmp_path / "cpu.prof", [(5, [pcs[0]]), (3, [pcs[1], pcs[0]])], maps)
    proc = pprof(["--text", "--no-cache", str(prog), str(tmp_path / "cpu.prof")])
    assert proc.returncode == 0, err(proc)
    # 3 addresses: the caller frame is looked up at its return address minus one
    assert _warnings(proc) == [f"warning: none of the 3 sampled addresses of the program is in the code of {prog}: "
                               "is it the binary the profile was recorded from?"]


@pytest.mark.parametrize("profile, program, strip", [("chain.cpu.prof", "chain", False),
                                                     ("cxx.cpu.prof", "cxx", True),
                                                     ("alloc.heap", "alloc", False)])
def test_the_profiled_program_gets_no_warning(tmp_path, profile, program, strip):
    # non-PIE and PIE, CPU and heap; a stripped copy keeps the layout
    args = _relocated(tmp_path, profile, program, program)
    if strip:
        subprocess.run(["strip", "--strip-all", args[0]], check=True, timeout=60)
    proc = pprof(["--text", "--no-cache", *args])
    assert proc.returncode == 0 and _warnings(proc) == [], err(proc)
    if program == "chain":
        assert text(proc) == text(pprof(["--text", f"fixtures/bin/{program}", f"{PROFILES}/{profile}"]))
