"""realloc growth without quadratic copying.

Growing one buffer in small steps must move it O(log n) times and copy
O(n) bytes in total: large blocks grow in place into free pages after
them, and a moved block gets headroom.  Checked functionally, by counting
moves and copied bytes in the program (tests/native/programs/malloc_realloc.c),
never by timing.
"""
import os
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("realloc") / "malloc_realloc")
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", os.path.join(PROGRAMS, "malloc_realloc.c"), "-o", out],
                   check=True, capture_output=True, timeout=120)
    return out


def run(prog, *args, **env_extra):
    env = dict(os.environ)
    for k in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "MALLOCSTATS"):
        env.pop(k, None)
    env["LD_PRELOAD"] = libpath("malloc")
    env.update(env_extra)
    r = subprocess.run([prog, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("step,final", [(4096, 32 << 20), (100, 8 << 20)])
def test_step_growth_copies_linear_bytes(prog, step, final):
    fields = dict(kv.split("=") for kv in run(prog, "grow", step, final).split())
    moves, copied, size = int(fields["moves"]), int(fields["copied"]), int(fields["final"])
    assert size >= final
    # exact-size reallocation copied ~ final^2 / (2 step): thousands of times the final size
    assert copied <= 3 * size, fields
    assert moves <= 60, fields


def test_growth_past_the_first_address_reservation_stays_in_place(prog):
    # 4 KiB steps to 64 MiB outgrow the heap's first 64 MiB reservation: the
    # next one joins it (metadata is mapped elsewhere), so the block keeps
    # growing in place and realloc copies about half its final size in all
    # (1.4x when a page-map leaf sat between the two reservations).
    fields = dict(kv.split("=") for kv in run(prog, "grow", 4096, 64 << 20).split())
    assert int(fields["copied"]) < int(fields["final"]), fields


def test_large_block_grows_and_shrinks_in_place(prog):
    assert run(prog, "inplace") == "OK inplace"


def test_growth_with_heap_profiler_on(prog, tmp_path):
    # sampled objects are not resized in place (so the profile sees the
    # new size): each move gets 25% headroom only, tcmalloc's policy, which
    # copies about 4-5x the final size in total; still linear, not quadratic
    out = run(prog, "grow", 4096, 8 << 20, HEAPPROFILE=str(tmp_path / "hp"),
              HEAP_PROFILE_ALLOCATION_INTERVAL="0", HEAP_PROFILE_INUSE_INTERVAL="0")
    fields = dict(kv.split("=") for kv in out.split())
    assert int(fields["copied"]) <= 6 * int(fields["final"]), fields
