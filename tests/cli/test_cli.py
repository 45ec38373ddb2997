"""The command line: user errors end in one line on stderr and a non-zero
exit code, never a traceback; the happy paths work without a program
argument and with the symbol cache."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAIN = "fixtures/bin/chain"
CHAIN_PROF = "fixtures/profiles/chain.cpu.prof"


def pprof(*args, env=None, input=None):
    return subprocess.run([sys.executable, "-m", "pprof_py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env, input=input)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


def test_missing_profile():
    assert_one_line_error(pprof("--text", CHAIN, "nope.prof"), "nope.prof", "no such file")


def test_missing_program():
    assert_one_line_error(pprof("--text", "no/such/prog", CHAIN_PROF), "no/such/prog")


def test_directory_as_profile():
    assert_one_line_error(pprof("--text", CHAIN, "fixtures"), "fixtures", "directory")


def test_text_file_as_profile():
    assert_one_line_error(pprof("--text", CHAIN, "fixtures/src/chain.c"), "chain.c", "not a profile")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.prof"
    path.write_bytes(os.urandom(4096))
    assert_one_line_error(pprof("--text", CHAIN, str(path)), "random.prof")


def test_truncated_profile_is_reported_with_one_warning(tmp_path):
    """A CPU profile cut short is still reported (as gperftools' pprof
    does, same numbers), with one warning saying where it ends."""
    data = open(os.path.join(ROOT, CHAIN_PROF), "rb").read()
    path = tmp_path / "cut.prof"
    path.write_bytes(data[:216])
    result = pprof("--text", CHAIN, str(path))
    assert result.returncode == 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["warning: %s: truncated CPU profile (the program may have crashed or been killed): "
                     "data ends at byte offset 216, the memory map is missing, 64 samples read" % path]
    assert result.stdout.startswith("Total: 64 samples\n")
    assert "     64 100.0% 100.0%       64 100.0% spin" in result.stdout


def test_empty_profile_file(tmp_path):
    path = tmp_path / "empty.prof"
    path.write_bytes(b"")
    assert_one_line_error(pprof("--text", CHAIN, str(path)), "empty")


def test_unknown_flag():
    result = pprof("--text", "--nosuchflag", CHAIN, CHAIN_PROF)
    assert_one_line_error(result, "--nosuchflag")
    assert result.returncode == 2


def test_bad_regexp():
    assert_one_line_error(pprof("--text", "--focus=(", CHAIN, CHAIN_PROF), "--focus", "(")


def test_two_output_modes():
    names = [line for line in pprof("--help").stdout.split() if line.startswith("--")]
    other = "--dot" if "--dot" in names else None
    if other is None:
        pytest.fail("--dot missing from --help")
    assert_one_line_error(pprof("--text", other, CHAIN, CHAIN_PROF), "one output")


def test_stacks_needs_text():
    assert_one_line_error(pprof("--stacks", "--dot", CHAIN, CHAIN_PROF), "--stacks")


def test_not_an_elf_program_warns_and_still_reports():
    result = pprof("--text", "fixtures/src/chain.c", CHAIN_PROF)
    assert result.returncode == 0
    assert "not an ELF file" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout.startswith("Total: ")


def test_help_groups_and_version():
    out = pprof("--help").stdout
    for group in ("Reporting Granularity", "Output type", "Heap-Profile Options", "Call-graph Options"):
        assert group in out
    for flag in ("--text", "--cum", "--lines", "--inuse_space", "--nodecount", "--focus", "--base"):
        assert flag in out
    version = pprof("--version")
    assert version.returncode == 0 and "pprof" in version.stdout


def test_broken_pipe_is_quiet():
    proc = subprocess.run(f"{sys.executable} -m pprof_py --text {CHAIN} {CHAIN_PROF} | head -1",
                          shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("Total:")
    assert "Traceback" not in proc.stderr


def test_program_taken_from_the_profile_maps():
    """`pprof --text cpu.prof`: the main binary comes from the profile's
    memory map (the localized copies carry this checkout's paths)."""
    sys.path.insert(0, os.path.join(ROOT, "fixtures"))
    try:
        import relocate_maps
    finally:
        sys.path.pop(0)
    relocate_maps.localize(ROOT)
    prof = "fixtures/local/profiles/recursion.cpu.prof"
    with_program = pprof("--text", "fixtures/bin/recursion", prof)
    without = pprof("--text", prof)
    assert with_program.returncode == 0 and without.returncode == 0
    assert without.stdout == with_program.stdout
    assert "fib" in without.stdout or "ack" in without.stdout or "is_even" in without.stdout


def test_symbol_cache_is_written_and_reused(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    first = pprof("--text", "--lines", CHAIN, CHAIN_PROF, env=env)
    cached = os.listdir(tmp_path / "pprof_py")
    assert first.returncode == 0 and cached
    second = pprof("--text", "--lines", CHAIN, CHAIN_PROF, env=env)
    assert second.stdout == first.stdout
    # A corrupt cache file is ignored and rewritten, not an error.
    for name in cached:
        (tmp_path / "pprof_py" / name).write_bytes(b"garbage")
    third = pprof("--text", "--lines", CHAIN, CHAIN_PROF, env=env)
    assert third.stdout == first.stdout and "Traceback" not in third.stderr


def test_no_auto_signal_frm_keeps_a_common_second_frame(tmp_path):
    """Every stack below has b_heavy as its second frame: pprof drops it
    (an artifact of signal-handler frames) unless --no-auto-signal-frm, and
    says so on stderr either way (output checked against google-pprof)."""
    import struct
    data = (struct.pack("<5Q", 0, 3, 0, 10000, 0)
            + struct.pack("<5Q", 5, 3, 0x40115d, 0x40117d, 0x4011c3)
            + struct.pack("<5Q", 3, 3, 0x401160, 0x40117d, 0x4011cb)
            + struct.pack("<3Q", 0, 1, 0))
    prof = tmp_path / "same2.prof"
    prof.write_bytes(data)
    dropped = pprof("--text", CHAIN, str(prof))
    assert "Removing b_heavy from all stack traces." in dropped.stderr
    assert "b_heavy" not in dropped.stdout
    kept = pprof("--text", "--no-auto-signal-frm", CHAIN, str(prof))
    assert "All second stack frames are same: `b_heavy'." in kept.stderr
    assert "       0   0.0% 100.0%        8 100.0% b_heavy\n" in kept.stdout


def test_profile_without_samples_says_so(tmp_path):
    """A profile with header, trailer and map only (a run killed before the
    sampler's first flush) gives the empty report pprof prints, plus one
    line saying why it is empty."""
    import struct
    path = tmp_path / "empty.prof"
    path.write_bytes(struct.pack("<5Q", 0, 3, 0, 10000, 0) + struct.pack("<3Q", 0, 1, 0)
                     + b"00400000-00401000 r-xp 00000000 00:00 1 /bin/true\n")
    result = pprof("--text", CHAIN, str(path))
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["warning: %s: the profile has no samples" % path]
