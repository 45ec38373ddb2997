"""--list and --disasm beyond the differential cases (which compare them
with google-pprof on every fixture): missing sources, bad regular
expressions, and the per-line / per-instruction numbers adding up."""
import os
import re
import shutil

import pytest

from helpers import PROFILES, ROOT, assert_one_line_error, err, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


def _total(args):
    out = text(pprof(["--text"] + args))
    return int(re.match(r"Total: (\d+) samples", out).group(1))


def test_list_lines_add_up_to_routine_totals():
    proc = pprof(["--list=^spin", *CHAIN])
    assert proc.returncode == 0, err(proc)
    out = text(proc)
    header = re.search(r"^ROUTINE =+ spin in fixtures/src/chain.c\n +(\d+) +(\d+) Total samples", out, re.M)
    assert header, out
    flat_total, cum_total = int(header.group(1)), int(header.group(2))
    block = out[header.end():].split("ROUTINE")[0]
    flat = cum = 0
    for line in block.splitlines():
        m = re.match(r"^ *(\S+) +(\S+) +\d+: ", line)
        if m:
            flat += 0 if m.group(1) == "." else int(m.group(1))
            cum += 0 if m.group(2) == "." else int(m.group(2))
    assert (flat, cum) == (flat_total, cum_total)
    # spin is the only leaf of the chain fixture: it holds every sample.
    assert flat_total == _total(CHAIN)


def test_disasm_instructions_add_up_to_routine_totals():
    proc = pprof(["--disasm=^spin", *CHAIN])
    assert proc.returncode == 0, err(proc)
    out = text(proc)
    blocks = out.split("ROUTINE ====================== ")[1:]
    assert blocks
    for block in blocks:
        m = re.match(r"spin\n +(\d+) +(\d+) samples \(flat, cumulative\) ([\d.]+)% of total", block)
        assert m, block
        flat = 0
        addresses = []
        for line in block.splitlines():
            # "%6s %6s    %8s: %s": instruction lines (source lines use "%5d: ")
            ins = re.match(r"^(.{6}) (.{6})    ( *[0-9a-f]+): (.*)$", line)
            if ins and len(ins.group(3)) == 8:
                flat += 0 if ins.group(1).strip() == "." else int(ins.group(1))
                addresses.append(int(ins.group(3), 16))
        assert flat == int(m.group(1))
        assert addresses == sorted(addresses) and len(addresses) > 5
        assert m.group(3) == "100.0"


def test_missing_source_file_reports_it_and_keeps_totals(tmp_path):
    # The fixtures' DWARF names sources relative to the repository root;
    # from another directory they cannot be found.
    binary = os.path.join(ROOT, "fixtures/bin/chain")
    profile = os.path.join(ROOT, PROFILES, "chain.cpu.prof")
    proc = pprof(["--list=^spin", binary, profile], cwd=str(tmp_path))
    assert proc.returncode == 0, err(proc)
    out = text(proc)
    assert re.search(r"^ROUTINE =+ spin in fixtures/src/chain.c\n +\d+ +\d+ Total samples", out, re.M), out
    assert ": " not in out.split("Total samples (flat / cumulative)\n", 1)[1].split("ROUTINE")[0]
    assert "fixtures/src/chain.c: No such file or directory" in err(proc)


def test_disasm_missing_source_still_lists_instructions(tmp_path):
    binary = os.path.join(ROOT, "fixtures/bin/chain")
    profile = os.path.join(ROOT, PROFILES, "chain.cpu.prof")
    proc = pprof(["--disasm=^spin", binary, profile], cwd=str(tmp_path))
    assert proc.returncode == 0, err(proc)
    assert re.search(r"^ +\S+ +\S+ +401136: test", text(proc), re.M), text(proc)
    assert "fixtures/src/chain.c: No such file or directory" in err(proc)


@pytest.mark.parametrize("flag", ["--list", "--disasm"])
def test_bad_regexp_is_one_line(flag):
    proc = pprof([f"{flag}=(unclosed", *CHAIN])
    assert_one_line_error(proc, "regular expression")


@pytest.mark.parametrize("flag", ["--list", "--disasm", "--weblist"])
def test_no_matching_routine_is_one_line_error(flag):
    # gperftools' pprof prints nothing and exits 0 here.
    proc = pprof([f"{flag}=^no_such_function_anywhere$", *CHAIN])
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert_one_line_error(proc, "no routine with samples matches '^no_such_function_anywhere$'")


def test_program_taken_for_the_regexp_is_explained():
    # `pprof --list ./prog prof`: click gives --list the program's path.
    proc = pprof(["--list", CHAIN[0], CHAIN[1]])
    assert proc.returncode == 1 and proc.stdout == b""
    assert_one_line_error(proc, f"no routine with samples matches '{CHAIN[0]}' ('{CHAIN[0]}' is a file")


def test_heap_listing_prints_megabytes():
    proc = pprof(["--list=^big_alloc", "fixtures/bin/alloc", f"{PROFILES}/alloc.heap"])
    assert proc.returncode == 0, err(proc)
    m = re.search(r"^ROUTINE =+ big_alloc in fixtures/src/alloc.c\n +([\d.]+) +([\d.]+) Total MB", text(proc), re.M)
    assert m and float(m.group(1)) > 0, text(proc)


def test_capstone_text_reads_like_objdump():
    from pprof_py.symbolize.objtool import disassemble
    from pprof_py.symbolize.objfile import ObjectFile
    obj = ObjectFile(os.path.join(ROOT, "fixtures/bin/chain"))
    starts, ends, names = obj.nm_table()
    i = [n.split("<")[0] for n in names].index("spin")
    insns = disassemble(obj, int(starts[i]), int(ends[i]))
    texts = [t for _, t in insns]
    assert texts[0] == "test   %rdi,%rdi"
    assert "movabs $0x5851f42d4c957f2d,%rsi" in texts
    assert any(re.fullmatch(r"jne    [0-9a-f]+ <spin\+0x[0-9a-f]+>", t) for t in texts)
    assert texts[-1] == "ret"
    if shutil.which("objdump"):
        import subprocess
        dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--start-address=0x%x" % starts[i],
                               "--stop-address=0x%x" % ends[i], obj.path], stdout=subprocess.PIPE,
                              text=True).stdout
        addresses = [int(m.group(1), 16) for m in re.finditer(r"^ +([0-9a-f]+):", dump, re.M)]
        assert addresses == [a for a, _ in insns]


@pytest.mark.skipif(shutil.which("objdump") is None and not os.environ.get("CI"),
                    reason="objdump not installed (apt-get install binutils)")
@pytest.mark.parametrize("program", ["chain", "recursion", "cxx", "stripped", "stripped_export"])
def test_instruction_text_equals_objdump(program):
    """Every instruction of the fixture's own code reads exactly as objdump
    prints it (zero displacements, index scales, `cs nopw`, `name@plt`
    targets; in the stripped fixtures, targets outside any symbol labelled
    from the nearest .dynsym symbol or PLT stub), except objdump's `# address <symbol>` comments after
    RIP-relative operands, which we do not print (docs/disasm.md)."""
    import subprocess
    from pprof_py.symbolize.objtool import disassemble
    from pprof_py.symbolize.objfile import ObjectFile
    path = os.path.join(ROOT, "fixtures", "bin", program)
    dump = subprocess.run(["objdump", "-C", "-d", "--no-show-raw-insn", "-j", ".text", "-j", ".plt", path],
                          stdout=subprocess.PIPE, text=True, timeout=60).stdout
    theirs = {int(m.group(1), 16): m.group(2).rstrip()
              for m in re.finditer(r"^ +([0-9a-f]+):\t(.*)$", dump, re.M)}
    obj = ObjectFile(path)
    ours = {}
    for sec in (".text", ".plt"):
        s = obj.elf.get_section_by_name(sec)
        ours.update(disassemble(obj, s["sh_addr"], s["sh_addr"] + s["sh_size"]))
    compared = 0
    for address, text_ in theirs.items():
        if "#" in text_ or text_ == "...":
            continue
        assert ours.get(address) == text_, (hex(address), ours.get(address), text_)
        compared += 1
    assert compared > 50
