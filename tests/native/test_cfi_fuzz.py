"""Fuzzing the DWARF call-frame decoder shared by the sampler and the heap
profiler (pprof_py/native/src/common/cfi.c).

tests/native/programs/cfi_fuzz.c feeds the decoder mutated copies of real
unwind tables and random ones, random PCs and random stacks, built with
AddressSanitizer and UBSan: a read outside the bounds the decoder was given
aborts the program.  It runs in a subprocess, so a crash fails this test
only.
"""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON = os.path.join(HERE, "..", "..", "pprof_py", "native", "src", "common")


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cfi_fuzz") / "cfi_fuzz")
    subprocess.run(["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", COMMON, os.path.join(HERE, "programs", "cfi_fuzz.c"),
                    os.path.join(COMMON, "cfi.c"), "-o", out], check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decoder_stays_in_bounds(fuzzer, seed):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:halt_on_error=1")
    r = subprocess.run([fuzzer, "300000", str(seed)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    unwound = int(r.stdout.strip().split("=")[1])
    # the unmutated real tables must have unwound many frames
    assert unwound > 10000, r.stdout
