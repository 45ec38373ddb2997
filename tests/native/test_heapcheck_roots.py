"""Leak checker roots: only live stack and registers count.

Pointers left in frames that have returned (below the live stack pointer),
in the checker's own frames or in exit()'s frames must not keep a leak
alive, whatever the stack's layout; pointers the program still holds, in a
live frame or only in a callee-saved register at the exit() call, must."""
import platform

import pytest

from heapcheck_helpers import build, leaks, preload_env, run


@pytest.fixture(scope="module", params=["-O0", "-O2"])
def deadframe(request, tmp_path_factory):
    flags = ("-O0", "-g", "-fno-omit-frame-pointer") if request.param == "-O0" else ("-O2", "-g")
    return build(tmp_path_factory, "heapcheck_deadframe.c", *flags, name="deadframe" + request.param)


# environment sizes move the whole stack by 8..400 bytes: the dead frames'
# words land at different offsets from the checker's frames each time
PADS = [0, 8, 16, 24, 40, 56, 72, 100, 136, 200, 264, 400]


@pytest.mark.parametrize("shape,expected", [("40x400", (16000, 40)), ("5x4096", (20480, 5))])
def test_pointers_in_returned_frames_are_not_roots(deadframe, tmp_path, shape, expected):
    for pad in PADS:
        env = preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path, PAD="x" * pad)
        r = run([deadframe, shape], env)
        assert r.returncode == 1, (pad, r.stderr)
        assert r.stdout == f"done {shape}\n"
        assert leaks(r.stderr) == expected, (pad, r.stderr)


def test_block_held_by_a_live_frame_at_exit_is_reachable(deadframe, tmp_path):
    """exit() from a function whose frame holds a block: the block is live,
    the dead frame's 5 blocks are not."""
    for pad in PADS[:4]:
        env = preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path, PAD="x" * pad)
        r = run([deadframe, "exit", "5x4096"], env)
        assert r.returncode == 1, r.stderr
        assert leaks(r.stderr) == (20480, 5), r.stderr


def test_block_held_only_in_a_callee_saved_register_at_exit_is_reachable(deadframe, tmp_path):
    """The block's only pointer is in rbx when the program calls exit():
    exit() and the handlers before the check saved rbx in their frames; the
    checker recovers it from there (DWARF CFI) instead of scanning those
    frames whole."""
    if platform.machine() != "x86_64":
        pytest.fail("heapcheck_deadframe.c puts its pointer in an x86_64 register")
    env = preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path)
    r = run([deadframe, "exitreg", "5x4096"], env)
    assert r.returncode == 1, r.stderr
    assert leaks(r.stderr) == (20480, 5), r.stderr


def test_other_threads_are_scanned_from_their_stack_pointer(deadframe, tmp_path):
    """A thread leaks 40 blocks from a frame that returned (16 KiB below its
    stack pointer) and blocks in pause() holding a block of 1234 bytes in
    its live frame: the 40 are leaks (the whole thread stack used to be a
    root: 0 reported), the held block is not."""
    for pad in PADS[:4]:
        env = preload_env(HEAPCHECK="normal", HEAP_CHECK_DUMP_DIRECTORY=tmp_path, PAD="x" * pad)
        r = run([deadframe, "thread", "40x400"], env)
        assert r.returncode == 1, r.stderr
        assert leaks(r.stderr) == (16000, 40), (pad, r.stderr)
