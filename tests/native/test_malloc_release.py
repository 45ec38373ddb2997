"""Returning memory to the OS by age.

Memory freed and left idle goes back to the OS without the program calling
the allocator again (the background release thread), and memory freed and
reused at once is not released and faulted in again (no bulk release when
an amount of free memory is reached).  Neither test times anything: the
idle test polls its RSS for up to 20 s and stops as soon as it dropped,
and a short decay (PPROFPY_MALLOC_DECAY_MS=100) keeps it quick.
"""
import os
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


def env(**extra):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("PPROFPY_MALLOC_") or k in ("HEAPPROFILE", "HEAPCHECK", "LD_PRELOAD", "MALLOCSTATS"):
            e.pop(k)
    e["LD_PRELOAD"] = libpath("malloc")
    e.update(extra)
    return e


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("release") / "malloc_release")
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", os.path.join(PROGRAMS, "malloc_release.c"), "-o", out],
                   check=True, capture_output=True, timeout=120)
    return out


def run(binary, mode, *args, **extra):
    r = subprocess.run([binary, mode, *args], env=env(**extra), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return dict(kv.split("=") for kv in r.stdout.split())


def test_idle_memory_goes_back_without_another_call(release):
    fields = run(release, "idle", PPROFPY_MALLOC_DECAY_MS="100")
    peak, idle = int(fields["peak_kib"]), int(fields["idle_kib"])
    assert peak > 200 * 1024
    # 256 MiB were freed; what stays is thread caches and metadata
    assert idle < peak / 16, fields


def test_without_background_thread_idle_memory_stays(release):
    # the documented switch really switches it off (then only the next call releases)
    fields = run(release, "idle", "1000", PPROFPY_MALLOC_DECAY_MS="100", PPROFPY_MALLOC_BACKGROUND_THREAD="0")
    assert int(fields["idle_kib"]) > int(fields["peak_kib"]) / 2, fields


def test_memory_reused_at_once_is_not_refaulted(release):
    # a low keep threshold used to trigger bulk releases of memory about to be reused
    fields = run(release, "reuse", PPROFPY_MALLOC_RELEASE_THRESHOLD=str(4 << 20))
    faults, peak_pages = int(fields["faults"]), int(fields["peak_kib"]) // 4
    # page faults bounded by the footprint, not by the 400 replacements
    assert faults < 1.5 * peak_pages, fields


def test_heap_regions_stay_adjacent_when_other_mappings_come_between(release):
    # Each 4 MiB block grows the heap, and a mapping not ours is made after
    # each: the heap's regions come from address space reserved ahead, so
    # they stay adjacent, the freed blocks coalesce, and a 20 MiB block fits
    # in them without the heap growing (without the reservation: +20 MiB).
    fields = run(release, "interleaved", "20")
    assert int(fields["heap_after"]) == int(fields["heap_before"]), fields


def test_resident_and_released_neighbours_join_before_the_heap_grows(release):
    # The steady release gives one of the 8 freed blocks back to the OS, so
    # the free run is resident and released spans, which do not coalesce by
    # themselves; the page heap joins them rather than growing for 30 MiB.
    # (No background thread: its start-up allocation would land in the run.)
    fields = run(release, "interleaved", "30", PPROFPY_MALLOC_BACKGROUND_THREAD="0")
    assert int(fields["heap_after"]) == int(fields["heap_before"]), fields


def test_cached_objects_go_back_before_the_heap_grows_for_a_big_block(release):
    # 64 MiB of 1-4 KiB objects freed in random order leave free objects in
    # the thread and transfer caches, spread over the heap; before growing
    # for a 48 MiB block the caller's cache and the transfer caches go back
    # to their spans, which coalesce, and the block fits (without: +48 MiB).
    fields = run(release, "cached")
    assert int(fields["heap_after"]) == int(fields["heap_before"]), fields
