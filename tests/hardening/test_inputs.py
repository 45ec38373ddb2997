"""Hostile and corrupt inputs end in one clear line or a correct report,
within seconds and bounded memory.  Each case is the
minimal input of one failure class the fuzzer found, generated here."""
import gzip
import os
import struct
import subprocess
import sys

import pytest

from hardening.helpers import ROOT, assert_clean_error, assert_report, assert_report_or_nothing_listed, pprof_forked as pprof

CHAIN = os.path.join(ROOT, "fixtures", "bin", "chain")     # non-PIE, at 0x400000, with DWARF
SPIN, B_HEAVY, MAIN = 0x401140, 0x401180, 0x4011e0          # inside spin, b_heavy, main


def cpu_profile(stacks, maps=b"", period=10000):
    """A gperftools CPU profile (64-bit little-endian): stacks are
    (count, [pc leaf first...])."""
    words = [0, 3, 0, period, 0]
    for count, pcs in stacks:
        words += [count, len(pcs)] + list(pcs)
    words += [0, 1, 0]
    return b"".join(struct.pack("<Q", w & ((1 << 64) - 1)) for w in words) + maps


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def maps_line(path, start=0x7f0000000000, limit=0x7f0000100000):
    return b"%x-%x r-xp 00000000 08:01 1234 %s\n" % (start, limit, path)


LIB_PC = 0x7f0000001000


# ---- item 7: never block on a FIFO or read a device -------------------------

@pytest.mark.parametrize("target", ["fifo", "dev-zero", "proc-self-mem", "directory"])
def test_memory_map_naming_a_non_regular_file(tmp_path, target):
    if target == "fifo":
        lib = tmp_path / "libfifo.so"
        os.mkfifo(lib)
    elif target == "dev-zero":
        lib = tmp_path / "libzero.so"
        os.symlink("/dev/zero", lib)
    elif target == "directory":
        lib = tmp_path / "libdir.so"
        lib.mkdir()
    else:
        lib = "/proc/self/mem"
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [LIB_PC, MAIN + 1])], maps_line(str(lib).encode())))
    for flag in ("--text", "--list=.", "--disasm=."):
        out = assert_report_or_nothing_listed(pprof([flag, CHAIN, prof], timeout=30), flag)
        if flag == "--text":
            assert b"Total: 5 samples" in out


def _chain_with_source(tmp_path, kind):
    """A copy of the chain fixture whose DWARF names a source file that is
    a FIFO or a symlink to /dev/zero: the compile directory is rewritten to
    point into tmp_path (same length), where chain.c is planted."""
    data = open(CHAIN, "rb").read()
    # The fixture's DWARF names fixtures/src/chain.c relative to its build
    # directory; plant fixtures/src/chain.c under a directory we run from.
    root = tmp_path / "run"
    src = root / "fixtures" / "src"
    src.mkdir(parents=True)
    target = src / "chain.c"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero", target)
    program = root / "chain"
    program.write_bytes(data)
    program.chmod(0o755)
    return str(root), str(program)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_listing_whose_source_file_is_not_regular(tmp_path, kind):
    cwd, program = _chain_with_source(tmp_path, kind)
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [SPIN, MAIN + 1])]))
    # Run where the planted fixtures/src/chain.c is what DWARF names.
    proc = subprocess.run([sys.executable, "-m", "pprof_py", "--list=spin", program, prof],
                          cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert_report(proc)
    assert b"ROUTINE ====================== spin in fixtures/src/chain.c" in proc.stdout
    assert b"fixtures/src/chain.c: No such file or directory" in proc.stderr


# ---- item 8: internal errors become one clear line ----------------------------

def test_nul_byte_in_a_mapped_path(tmp_path):
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [LIB_PC])], maps_line(b"/tmp/a\0b.so")))
    assert b"Total: 5 samples" in assert_report(pprof(["--text", CHAIN, prof]))


def test_65_bit_addresses_in_a_memory_map(tmp_path):
    maps = b"1%016x-2%016x r-xp 00000000 08:01 1 /lib/x.so\n" % (0, 0)
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [SPIN])], maps))
    assert b"Total: 5 samples" in assert_report(pprof(["--text", CHAIN, prof]))


def test_huge_cpu_count_in_proto(tmp_path):
    prof = write(tmp_path, "cpu.prof", cpu_profile([((1 << 64) - 1, [SPIN, MAIN + 1])]))
    proc = pprof(["--proto", CHAIN, prof])
    if proc.returncode == 0:
        assert proc.stdout[:2] == b"\x1f\x8b"
    else:
        assert_clean_error(proc)


def test_caller_address_zero_in_proto(tmp_path):
    prof = write(tmp_path, "cpu.prof", cpu_profile([(3, [SPIN, 0, MAIN + 1])]))
    out = assert_report(pprof(["--proto", CHAIN, prof]))
    assert out[:2] == b"\x1f\x8b"


def heap_profile(records, maps=b""):
    head = b"heap profile: 1: 1 [ 1: 1] @ heapprofile\n"
    return head + b"".join(records) + b"\nMAPPED_LIBRARIES:\n" + maps


def test_4301_digit_count_in_a_heap_profile(tmp_path):
    prof = write(tmp_path, "x.heap", heap_profile([b"1: " + b"9" * 4301 + b" [ 1: 1] @ 0x401140\n"]))
    for flag in ("--text", "--proto", "--json"):
        proc = pprof([flag, CHAIN, prof])
        if proc.returncode:
            assert_clean_error(proc)


def test_65_bit_address_in_a_heap_profile(tmp_path):
    prof = write(tmp_path, "x.heap", heap_profile([b"1: 100 [ 1: 100] @ 0x1ffffffffffffffff 0x401140\n"]))
    for flag in ("--text", "--proto"):
        proc = pprof([flag, CHAIN, prof])
        if proc.returncode:
            assert_clean_error(proc, "address")


@pytest.mark.parametrize("rate", [b"0", b"nan", b"-1", b"inf"])
def test_contention_cycles_per_second_not_positive(tmp_path, rate):
    prof = write(tmp_path, "c.prof", b"--- contention\ncycles/second = " + rate +
                 b"\nsampling period = 1\n100 2 @ 0x401140 0x4011e1\n")
    proc = pprof(["--text", CHAIN, prof])
    assert_clean_error(proc, "cycles/second")


def test_400_digit_delay_in_contention(tmp_path):
    prof = write(tmp_path, "c.prof", b"--- contention\ncycles/second = 2000000000\n" +
                 b"9" * 400 + b" 2 @ 0x401140 0x4011e1\n")
    for flag in ("--text", "--json", "--proto"):
        proc = pprof([flag, CHAIN, prof])
        if proc.returncode:
            assert_clean_error(proc)


def test_folded_counts_overflowing_to_infinity(tmp_path):
    prof = write(tmp_path, "f.folded", b"a;b 1" + b"0" * 308 + b"\na;c 1" + b"0" * 308 + b"\n")
    for flag in ("--text", "--json", "--proto"):
        assert_clean_error(pprof([flag, prof]), "too large")


def test_folded_huge_single_count(tmp_path):
    prof = write(tmp_path, "f.folded", b"a;b 1" + b"0" * 400 + b"\n")
    assert_clean_error(pprof(["--text", prof]), "too large")


def test_latin1_name_in_folded_under_proto(tmp_path):
    prof = write(tmp_path, "f.folded", b"main;caf\xe9 10\n")
    out = assert_report(pprof(["--proto", prof]))
    assert out[:2] == b"\x1f\x8b"


def test_folded_first_line_longer_than_64k(tmp_path):
    prof = write(tmp_path, "f.folded", b"main;" + b"x" * 70000 + b" 10\nmain;y 2\n")
    out = assert_report(pprof(["--text", prof]))
    assert out.startswith(b"Total: 12 samples")


def _elf_sections(data):
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3c)
    names_off, = struct.unpack_from("<Q", data, shoff + shstrndx * 64 + 0x18)
    sections = {}
    for i in range(shnum):
        base = shoff + i * 64
        name_index, = struct.unpack_from("<I", data, base)
        end = data.index(b"\0", names_off + name_index)
        sections[data[names_off + name_index:end].decode()] = base
    return sections


def damaged_chain(tmp_path, section, field=None, value=None, zero=False):
    data = bytearray(open(CHAIN, "rb").read())
    base = _elf_sections(bytes(data))[section]
    if zero:
        off, size = struct.unpack_from("<QQ", data, base + 0x18)
        data[off:off + size] = bytes(size)
    else:
        struct.pack_into("<Q", data, base + {"offset": 0x18, "size": 0x20}[field], value)
    path = tmp_path / "chain"
    path.write_bytes(bytes(data))
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("section,field,value", [
    (".debug_info", "size", 1 << 40), (".debug_info", "offset", 1 << 50),
    (".debug_line", "size", 1 << 40), (".symtab", "size", 1 << 40), (".strtab", "offset", 1 << 50),
    (".shstrtab", "size", 1 << 40), (".shstrtab", "offset", 1 << 50), (".text", "size", 1 << 40),
    (".debug_line_str", "offset", 1 << 50)])
def test_damaged_elf_section_table(tmp_path, section, field, value):
    program = damaged_chain(tmp_path, section, field, value)
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [SPIN, MAIN + 1])]))
    for flag in ("--text", "--list=spin", "--disasm=spin"):
        proc = pprof([flag, program, prof], timeout=30)
        if proc.returncode == 0:
            assert_report(proc)
        else:
            assert_clean_error(proc)


def test_symbol_table_size_not_a_multiple_of_its_entries(tmp_path):
    """pyelftools then refuses every section lookup of the file (ELFError
    from its section table), which listings used for line details and PLT
    names (found by the fuzzer): the reports still come out."""
    data = open(CHAIN, "rb").read()
    size, = struct.unpack_from("<Q", data, _elf_sections(data)[".symtab"] + 0x20)
    program = damaged_chain(tmp_path, ".symtab", "size", size - 5)
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [SPIN, MAIN + 1])]))
    for args in (["--text"], ["--list=spin"], ["--disasm=spin"], ["--text", "--add_lib=" + program]):
        proc = pprof(args + [program, prof], timeout=30)
        if proc.returncode == 0:
            assert_report(proc)
        else:
            assert_clean_error(proc)


@pytest.mark.parametrize("section", [".debug_line", ".debug_line_str", ".shstrtab", ".debug_info",
                                     ".debug_abbrev", ".debug_str"])
def test_zeroed_debug_section(tmp_path, section):
    program = damaged_chain(tmp_path, section, zero=True)
    prof = write(tmp_path, "cpu.prof", cpu_profile([(5, [SPIN, MAIN + 1])]))
    for flag in ("--text", "--lines", "--list=spin"):
        proc = pprof([flag, program, prof] if flag != "--lines" else ["--text", "--lines", program, prof],
                     timeout=30)
        if proc.returncode == 0:
            assert b"Total: 5 samples" in assert_report(proc) or flag.startswith("--list")
        else:
            assert_clean_error(proc)


# ---- item 9: bounded memory -----------------------------------------------------

def test_gzip_bomb(tmp_path):
    # 512 gzip members of 1 MiB of zeros each: 512 MiB from about 500 KB.
    path = tmp_path / "bomb.pb.gz"
    path.write_bytes(gzip.compress(bytes(1 << 20), compresslevel=9) * 512)
    assert_clean_error(pprof(["--text", str(path)], timeout=60), "decompressed size exceeds")


# ---- item 10: time linear in stack depth -------------------------------------------

def test_one_sample_of_65536_frames(tmp_path):
    # Two samples with different second frames, so that pprof's removal of
    # a second frame common to all stacks does not apply, and one of them
    # 65,536 frames deep (distinct return addresses in three functions).
    callers = [B_HEAVY + 1, 0x401193 + 1, 0x4011b2 + 1]
    deep = [SPIN] + [callers[i % 3] for i in range(65534)] + [MAIN + 1]
    prof = write(tmp_path, "deep.prof", cpu_profile([(1, deep), (1, [SPIN, MAIN + 1])]))
    for flag in ("--text", "--collapsed", "--dot", "--flame", "--proto", "--json"):
        out = assert_report(pprof([flag, CHAIN, prof], timeout=60))
        if flag == "--text":
            assert out.startswith(b"Total: 2 samples")


def test_one_sample_of_65536_identical_second_frames(tmp_path):
    # pprof removes the common second frame again and again: 65,534 times.
    prof = write(tmp_path, "deep.prof", cpu_profile([(1, [SPIN] + [B_HEAVY + 1] * 65534 + [MAIN + 1])]))
    proc = pprof(["--text", CHAIN, prof], timeout=60)
    assert assert_report(proc).startswith(b"Total: 1 samples")
    assert proc.stderr.count(b"Removing b_heavy from all stack traces.") == 65534


def test_proto_with_one_100k_location_stack(tmp_path):
    from pprof_py.formats.proto import messages
    n = 100000
    msg = messages()["Profile"]()
    msg.string_table.extend(["", "samples", "count"] + ["f%d" % i for i in range(n)])
    msg.sample_type.add(type=1, unit=2)
    for i in range(n):
        msg.function.add(id=i + 1, name=3 + i, system_name=3 + i)
        msg.location.add(id=i + 1, address=0x1000 + 16 * i).line.add(function_id=i + 1, line=1)
    msg.sample.add(location_id=list(range(1, n + 1)), value=[1])
    msg.sample.add(location_id=[1], value=[1])       # keeps the deep stack's second frame
    proto = write(tmp_path, "deep.pb.gz", gzip.compress(msg.SerializeToString(), compresslevel=1))
    out = assert_report(pprof(["--text", proto], timeout=60))
    assert out.startswith(b"Total: 2 samples")


def test_proto_mapping_named_with_a_nul_byte(tmp_path):
    # Found by the long fuzz run: --disasm opened the mapped "library".
    from pprof_py.formats.proto import messages
    msg = messages()["Profile"]()
    msg.string_table.extend(["", "samples", "count", "/lib/a\0b.so", "f"])
    msg.sample_type.add(type=1, unit=2)
    msg.mapping.add(id=1, memory_start=0x7f0000000000, memory_limit=0x7f0000100000, filename=3)
    msg.function.add(id=1, name=4, system_name=4)
    msg.location.add(id=1, mapping_id=1, address=0x7f0000001000).line.add(function_id=1, line=1)
    msg.sample.add(location_id=[1], value=[3])
    proto = write(tmp_path, "nul.pb.gz", gzip.compress(msg.SerializeToString()))
    for flag in ("--text", "--disasm=.", "--list=."):
        assert_report_or_nothing_listed(pprof([flag, proto]), flag)
