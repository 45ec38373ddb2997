"""Heap profiler of pprof_py's allocator: gperftools-format files that
google-pprof reads, exact counts in full mode, un-sampled shares in sampled
mode, periodic dumps and the heap-profiler.h C API."""
import glob
import os
import re
import subprocess

import pytest

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
N = 2000          # fixture: big_site 10*N blocks of 1000 bytes, small_site N blocks


def preload_env(**extra):
    env = dict(os.environ)
    for k in ("HEAPPROFILE", "HEAPCHECK", "TCMALLOC_SAMPLE_PARAMETER", "PPROF_PY_HEAP_SAMPLE_PARAMETER",
              "HEAP_PROFILE_ALLOCATION_INTERVAL",
              "HEAP_PROFILE_INUSE_INTERVAL"):
        env.pop(k, None)
    env["LD_PRELOAD"] = libpath("malloc")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("heapsites") / "heapsites")
    subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-fno-builtin",
                    os.path.join(PROGRAMS, "malloc_heapsites.c"), "-o", out, "-ldl"],
                   check=True, capture_output=True, timeout=120)
    return out


def run_sites(binary, env, *args, timeout=120):
    r = subprocess.run([binary, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


HEADER = re.compile(r"^heap profile: +(\d+): +(\d+) \[ *(\d+): +(\d+)\] @ (heapprofile|heap_v2/(\d+))$")
LINE = re.compile(r"^ *(\d+): +(\d+) \[ *(\d+): +(\d+)\] @((?: 0x[0-9a-f]+)+)$")


def parse_profile(text):
    head, _, maps = text.partition("\nMAPPED_LIBRARIES:\n")
    lines = head.strip("\n").splitlines()
    m = HEADER.match(lines[0])
    assert m, lines[0]
    records = []
    for line in lines[1:]:
        r = LINE.match(line)
        assert r, line
        records.append((int(r.group(1)), int(r.group(2)), int(r.group(3)), int(r.group(4)), r.group(5).split()))
    assert "r-xp" in maps
    return m, records, maps


def google_pprof_text(binary, profile, *flags):
    r = subprocess.run(["google-pprof", "--text", *flags, binary, profile], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].endswith("%"):
            rows[parts[5]] = float(parts[0])
    return rows, r.stderr


def test_full_recording_exact_counts(sites, tmp_path):
    prefix = str(tmp_path / "full")
    r = run_sites(sites, preload_env(HEAPPROFILE=prefix), N)
    assert f"Dumping heap profile to {prefix}.0001.heap (Exiting" in r.stderr
    files = sorted(glob.glob(prefix + ".*.heap"))
    assert files == [prefix + ".0001.heap"]
    with open(files[0]) as f:
        header, records, _ = parse_profile(f.read())
    assert header.group(5) == "heapprofile"
    # the two sites: exact allocation and in-use counts (half of each freed)
    by_count = sorted(records, key=lambda rec: -rec[3])
    big, small = by_count[0], by_count[1]
    assert big[2:4] == (10 * N, 10 * N * 1000)
    assert big[0:2] == (5 * N, 5 * N * 1000)
    assert small[2:4] == (N, N * 1000)
    assert small[0:2] == (N // 2, N // 2 * 1000)
    # header = sum of the records
    assert int(header.group(1)) == sum(rec[0] for rec in records)
    assert int(header.group(4)) == sum(rec[3] for rec in records)
    rows, _ = google_pprof_text(sites, files[0], "--alloc_space")
    assert rows["big_site"] / rows["small_site"] == pytest.approx(10, rel=0.02)
    rows, _ = google_pprof_text(sites, files[0], "--inuse_objects")
    assert rows["big_site"] == 5 * N and rows["small_site"] == N // 2


def test_tcmalloc_sample_parameter_does_not_sample_heapprofile(sites, tmp_path):
    # as in gperftools: TCMALLOC_SAMPLE_PARAMETER is tcmalloc's sampling for
    # GetHeapSample; HEAPPROFILE still records every allocation (gperftools'
    # ctest sets the variable for heap-profiler_unittest.sh, whose dump
    # numbers count every byte)
    prefix = str(tmp_path / "full")
    run_sites(sites, preload_env(HEAPPROFILE=prefix, TCMALLOC_SAMPLE_PARAMETER="65536"), N)
    with open(prefix + ".0001.heap") as f:
        header, records, _ = parse_profile(f.read())
    assert header.group(5) == "heapprofile"
    big = max(records, key=lambda rec: rec[3])
    assert big[2:4] == (10 * N, 10 * N * 1000)


def test_sampled_profile_unsampled_by_google_pprof(sites, tmp_path):
    prefix = str(tmp_path / "sampled")
    rate = 65536
    run_sites(sites, preload_env(HEAPPROFILE=prefix, PPROF_PY_HEAP_SAMPLE_PARAMETER=str(rate)), N * 5)
    path = prefix + ".0001.heap"
    with open(path) as f:
        header, records, _ = parse_profile(f.read())
    assert header.group(5) == f"heap_v2/{rate}"
    sampled = sum(rec[2] for rec in records)
    # 110 MB allocated in 1000-byte blocks at 1 sample / 64 KiB ~ 1680 samples
    assert 900 < sampled < 3000, sampled
    rows, err = google_pprof_text(sites, path, "--alloc_space")
    assert "Adjusting heap profiles for 1-in-65536 sampling rate" in err
    truth_big = 10 * N * 5 * 1000 / 2 ** 20
    truth_small = N * 5 * 1000 / 2 ** 20
    # un-sampled estimates: relative error of a ~1500-sample estimate is a few %
    assert rows["big_site"] == pytest.approx(truth_big, rel=0.15)
    assert rows["small_site"] == pytest.approx(truth_small, rel=0.35)
    assert rows["big_site"] / rows["small_site"] == pytest.approx(10, rel=0.35)


def test_allocation_interval_dumps(sites, tmp_path):
    prefix = str(tmp_path / "interval")
    r = run_sites(sites, preload_env(HEAPPROFILE=prefix, HEAP_PROFILE_ALLOCATION_INTERVAL=str(5 << 20)), N)
    files = sorted(glob.glob(prefix + ".*.heap"))
    # 22 MB allocated in total: dumps at 5, 10, 15, 20 MB and at exit
    assert len(files) == 5, (files, r.stderr)
    assert files[-1] == prefix + ".0005.heap"
    assert "MB allocated cumulatively" in r.stderr
    sizes = []
    for path in files:
        with open(path) as f:
            header, _, _ = parse_profile(f.read())
        sizes.append(int(header.group(4)))
    assert sizes == sorted(sizes) and sizes[0] >= 5 << 20


def test_inuse_interval_dumps(sites, tmp_path):
    prefix = str(tmp_path / "inuse")
    r = run_sites(sites, preload_env(HEAPPROFILE=prefix, HEAP_PROFILE_INUSE_INTERVAL=str(4 << 20)), N)
    files = sorted(glob.glob(prefix + ".*.heap"))
    # 11 MB stay in use: growth dumps at 4 and 8 MB, plus the exit dump
    assert len(files) == 3, (files, r.stderr)
    assert "MB currently in use" in r.stderr


def test_c_api_start_dump_get_stop(sites, tmp_path):
    prefix = str(tmp_path / "api")
    r = run_sites(sites, preload_env(), N, "api", prefix)
    assert r.stdout.startswith("heap profile:")
    header, records, _ = parse_profile(r.stdout)
    assert max(rec[3] for rec in records) == 10 * N * 1000
    assert os.path.exists(prefix + ".0001.heap")
    assert not os.path.exists(prefix + ".0002.heap")        # stopped before exit: no exit dump
    rows, _ = google_pprof_text(sites, prefix + ".0001.heap", "--alloc_space")
    assert rows["big_site"] / rows["small_site"] == pytest.approx(10, rel=0.02)


def test_no_profile_without_env(sites, tmp_path):
    r = run_sites(sites, preload_env(), 100)
    assert "Dumping heap profile" not in r.stderr
    assert r.stdout.strip() == "done 550"


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("stress_prof") / "malloc_stress")
    subprocess.run(["gcc", "-O1", "-g", "-fno-builtin", "-fno-omit-frame-pointer", "-pthread",
                    os.path.join(PROGRAMS, "malloc_stress.c"), "-o", out, "-ldl"],
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("sample", [None, "4096"])
def test_threads_and_fork_while_profiling(stress, tmp_path, sample):
    prefix = str(tmp_path / "threads")
    extra = {"HEAPPROFILE": prefix, "HEAP_PROFILE_ALLOCATION_INTERVAL": "0",
             "HEAP_PROFILE_INUSE_INTERVAL": "0"}
    if sample:
        extra["PPROF_PY_HEAP_SAMPLE_PARAMETER"] = sample
    for args in (["stress", "4", "3000"], ["fork"], ["threadexit"]):
        r = subprocess.run([stress, *args], env=preload_env(**extra), capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.startswith("OK ")
        with open(prefix + ".0001.heap") as f:
            header, records, _ = parse_profile(f.read())
        assert records
        assert header.group(5) == (f"heap_v2/{sample}" if sample else "heapprofile")
        os.unlink(prefix + ".0001.heap")
