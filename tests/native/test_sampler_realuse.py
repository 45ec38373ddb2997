"""The CPU sampler under real use: complete stacks in epilogues, and a
profiled program that behaves exactly as without the sampler (its file
descriptors, its own signal handlers and timers, exec, many threads,
SIGINT/SIGTERM, static binaries, its environment).

Every program runs in a subprocess with a timeout.  Helpers (compiling,
running with the library preloaded, reading profiles) come from
test_sampler.py next to this file.
"""
import os
import signal
import subprocess
import sys

import pytest

from test_sampler import (LIBPROFILER, PROGRAMS, TIMEOUT, _clean_env, pprof_text, read_profile,
                          run_profiled, total_samples)

from pprof_py.native import libpath


def _build(tmp_path_factory, name, flags=("-O1", "-g"), extra=()):
    out = str(tmp_path_factory.mktemp("realuse_bins") / name)
    subprocess.run(["gcc", *flags, os.path.join(PROGRAMS, name + ".c"), "-o", out, "-pthread", *extra],
                   check=True, timeout=TIMEOUT)
    return out


# ------------------------------------------------------ stacks in epilogues

@pytest.fixture(scope="module")
def fib_nofp(tmp_path_factory):
    # gcc -O2 omits frame pointers: only the DWARF unwinder can walk these
    return _build(tmp_path_factory, "sampler_fib", flags=("-O2", "-g"))


def test_recursive_stacks_reach_main_like_libprofiler(fib_nofp, tmp_path):
    """Samples in push/pop/ret (where the CFA rule changes, and where a
    popped register's save slot lies below the stack pointer) and in PLT
    stubs (a CFA given as a DWARF expression) must still unwind to main: at
    least 99.5% of them, as with libprofiler+libunwind on the same binary."""
    if not os.path.exists(LIBPROFILER):
        pytest.fail(f"{LIBPROFILER} is required (apt-get install libgoogle-perftools4)")
    ours, theirs = tmp_path / "ours.prof", tmp_path / "libprofiler.prof"
    proc = run_profiled([fib_nofp, "0.6"], ours, frequency=1000)
    assert proc.returncode == 0, proc.stderr
    env = _clean_env()
    env.update(CPUPROFILE=str(theirs), CPUPROFILE_FREQUENCY="1000", LD_PRELOAD=LIBPROFILER)
    proc = subprocess.run([fib_nofp, "0.6"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    total_a, rows_a = pprof_text(fib_nofp, ours)
    total_b, rows_b = pprof_text(fib_nofp, theirs)
    assert total_a >= 300 and total_b >= 60, (total_a, total_b)
    share_a = rows_a["main"][1] / total_a
    share_b = rows_b["main"][1] / total_b
    assert share_b >= 0.99, ("libprofiler itself", share_b)
    assert share_a >= 0.995, (share_a, total_a, rows_a)
    # the three parts of the work are all there and account for it (shares
    # are not compared with libprofiler's: its ~150 tick-driven samples per
    # run alias with the loop and vary by more than 0.1 on a loaded machine)
    parts = [rows_a.get(name, (0, 0))[1] / total_a for name in ("fib", "walk", "parse")]
    assert min(parts) >= 0.05 and sum(parts) >= 0.95, (parts, rows_a)


# ------------------------------------------------------ programs under test

@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    names = ("sampler_closefds", "sampler_ownhandler", "sampler_manythreads", "sampler_selfkill",
             "sampler_alarm", "sampler_execpending", "sampler_threads")
    return {name: _build(tmp_path_factory, name) for name in names}


def _cpu(stdout):
    for token in stdout.split():
        if token.startswith("cpu="):
            return float(token[4:])
    raise AssertionError(f"no cpu= in {stdout!r}")


def _samples(prof):
    period, samples, _ = read_profile(prof)
    return period, total_samples(samples)


# ------------------------------------------------------------- our descriptors

def test_program_closing_inherited_fds_keeps_its_file_and_the_profile(progs, tmp_path):
    """The program closes every descriptor above 2 and opens its data file
    as fd 3: nothing of ours may land in that file (nor may the fork
    handler close it in a child), and the profile must still be complete:
    we reopen our file, and open new perf events, when ours are closed."""
    prof, data = tmp_path / "closefds.prof", tmp_path / "data.txt"
    proc = run_profiled([progs["sampler_closefds"], data, "0.8"], prof, frequency=1000)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok "), proc.stdout
    assert data.read_bytes().startswith(b"record 0\n")
    period, count = _samples(prof)
    cpu = _cpu(proc.stdout)
    # at most one rescan interval (100 ms) without an event
    assert count * period / 1e6 >= 0.75 * cpu, (count, period, cpu)
    total, rows = pprof_text(progs["sampler_closefds"], prof)
    assert rows["closefds_work"][1] >= 0.8 * total, rows


def test_many_threads_leave_the_program_its_descriptors(progs, tmp_path):
    """1,000 live threads under `ulimit -n 1024` at 4000 Hz: one perf
    descriptor per thread would take the program's last ones (its opens
    failed) and a stray SIGPROF killed it.  Threads beyond our descriptor
    budget get a POSIX timer instead, and are still sampled."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    prof = tmp_path / "many.prof"
    env = _clean_env()
    env.update(CPUPROFILE=str(prof), CPUPROFILE_FREQUENCY="4000", LD_PRELOAD=libpath("profiler"))
    proc = subprocess.run([progs["sampler_manythreads"], "1000"], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, preexec_fn=limit)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.strip() == "ok threads=1000 failed_opens=0"
    total, rows = pprof_text(progs["sampler_manythreads"], prof)
    assert rows["thread_work"][1] >= 0.5 * total and total >= 100, rows


# ------------------------------------------------------ the program's handlers

@pytest.mark.parametrize("own_hz", [0, 100])
@pytest.mark.parametrize("timer", ["perf", "itimer", "posix"])
def test_program_taking_over_sigprof_gets_only_its_own_ticks(progs, tmp_path, timer, own_hz):
    """Once the program installs its own SIGPROF handler, every source of
    ours stops (and what was pending is discarded): it counts only the
    ticks of its own 100 Hz ITIMER_PROF, or none without one.  The notice
    is printed once."""
    prof = tmp_path / "own.prof"
    proc = run_profiled([progs["sampler_ownhandler"], own_hz], prof, frequency=1000, PPROF_PY_CPU_TIMER=timer)
    assert proc.returncode == 0, proc.stderr
    fields = dict(tok.split("=") for tok in proc.stdout.split())
    own, cpu = int(fields["own_ticks"]), float(fields["cpu"])
    if own_hz == 0:
        assert own == 0, own
    # the kernel delivers ITIMER_PROF a little above its rate at times (43
    # for 0.4 s without any profiler); ours added hundreds
    assert own <= cpu * 100 * 1.25 + 3, (own, cpu)
    assert proc.stderr.count("handler was replaced by the program") == 1, proc.stderr
    _, count = _samples(prof)
    assert count >= 30  # the 0.2 s before the replacement


@pytest.mark.parametrize("frequency", [100, 1000, 4000])
def test_sort_with_its_own_sigprof_handler_is_not_killed(tmp_path, frequency):
    """GNU sort installs a clean-up handler for SIGPROF that re-raises the
    signal: one tick of ours after that killed it ("Profiling timer
    expired", exit 155)."""
    data = tmp_path / "in.txt"
    data.write_text("".join(f"{(i * 7919) % 100003:06d} line\n" for i in range(100000)))
    prof = tmp_path / "sort.prof"
    out = tmp_path / "out.txt"
    proc = run_profiled(["sort", "-r", "-o", out, data], prof, frequency=frequency)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    lines = out.read_text().splitlines()
    assert len(lines) == 100000 and lines == sorted(lines, reverse=True)
    read_profile(prof)


@pytest.mark.parametrize("timer", ["perf", "itimer"])
def test_exec_with_a_signal_pending_never_kills_the_new_image(tmp_path, timer):
    """bash burns CPU then execs /bin/true: a SIGPROF pending (or a timer
    still armed) at exec killed the new image before it had a handler."""
    prof = tmp_path / "exec.prof"
    script = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; exec /bin/true"
    for _ in range(4):
        proc = run_profiled(["bash", "-c", script], prof, frequency=1000, PPROF_PY_CPU_TIMER=timer)
        assert proc.returncode == 0, (proc.returncode, proc.stderr)


@pytest.mark.parametrize("timer", ["perf", "itimer", "posix", "realtime"])
def test_signal_pending_at_exec_is_discarded(progs, tmp_path, timer):
    """The same, made certain: the program keeps our signal blocked so it
    is pending when it execs, without the sampler, a program that unblocks
    it (exec keeps the mask and the pending signals)."""
    prof = tmp_path / "pending.prof"
    extra = {"CPUPROFILE_REALTIME": "1"} if timer == "realtime" else {"PPROF_PY_CPU_TIMER": timer}
    proc = run_profiled([progs["sampler_execpending"], "0.1"], prof, frequency=1000, **extra)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "ok execve"


@pytest.mark.parametrize("form", ["execv", "execvp", "execvpe", "execl", "execlp", "execle"])
def test_every_exec_form_discards_the_pending_signal(progs, tmp_path, form):
    """Each exec function the sampler wraps (the list forms gather their
    arguments on the stack) runs the new image with its arguments and, for
    execvpe/execle, its environment, and without the pending signal."""
    prof = tmp_path / "pending.prof"
    proc = run_profiled([progs["sampler_execpending"], "0.05", form], prof, frequency=1000,
                        PPROF_PY_CPU_TIMER="perf")
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    expected = "ok " + form if form in ("execvpe", "execle") else "ok"
    assert proc.stdout.strip() == expected


# ------------------------------------------------------------ interrupted runs

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_keeps_its_samples_and_dies_of_the_signal(progs, tmp_path, sig):
    """SIGINT/SIGTERM with the default action: the profile is written
    first, then the program ends by the same signal as without us."""
    prof = tmp_path / "interrupted.prof"
    proc = run_profiled([progs["sampler_selfkill"], int(sig), "0.6"], prof, frequency=1000)
    assert proc.returncode == -sig, (proc.returncode, proc.stderr)
    period, count = _samples(prof)
    assert count * period / 1e6 >= 0.4, (count, period)
    total, rows = pprof_text(progs["sampler_selfkill"], prof)
    assert rows["selfkill_work"][1] >= 0.9 * total, rows


def test_killed_run_keeps_the_samples_of_its_checkpoints(progs, tmp_path):
    """SIGKILL cannot be caught: the samples written at the last
    checkpoint (one per second) are what is left."""
    prof = tmp_path / "killed.prof"
    proc = run_profiled([progs["sampler_selfkill"], int(signal.SIGKILL), "1.6"], prof, frequency=1000)
    assert proc.returncode == -signal.SIGKILL
    period, count = _samples(prof)
    # at least the first checkpoint, after one second of wall time
    assert count * period / 1e6 >= 0.3, (count, period)


def test_python_still_gets_keyboard_interrupt(tmp_path):
    """The stand-in for SIG_DFL is invisible: Python, which installs its
    KeyboardInterrupt handler only when SIGINT has the default action,
    still does."""
    prof = tmp_path / "py.prof"
    code = ("import os, signal\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "try:\n    os.kill(os.getpid(), signal.SIGINT)\nexcept KeyboardInterrupt:\n    print('caught')\n")
    proc = run_profiled([sys.executable, "-c", code], prof, frequency=200)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "caught"


# ------------------------------------------------------- the program's alarm()

def test_realtime_profile_leaves_the_programs_alarm_alone(progs, tmp_path):
    """A watchdog alarm(1) must still end the program (SIGALRM) under
    --realtime, and the samples until then are written."""
    prof = tmp_path / "alarm.prof"
    proc = run_profiled([progs["sampler_alarm"], "20"], prof, frequency=500, CPUPROFILE_REALTIME=1)
    assert proc.returncode == -signal.SIGALRM, (proc.returncode, proc.stdout, proc.stderr)
    _, count = _samples(prof)
    # about 500 in the second before the alarm on an idle machine; ticks of
    # a loaded one merge while the process waits for a CPU
    assert count >= 20, count


# -------------------------------------------------------------- our own frames

def test_no_frame_of_ours_in_thread_stacks(progs, tmp_path):
    """Threads start through our pthread_create wrapper; its trampoline
    frame must not appear in their stacks (libprofiler adds none), and the
    stacks still go on to the thread's start."""
    prof = tmp_path / "threads.prof"
    proc = run_profiled([progs["sampler_threads"], "0.4"], prof, frequency=1000)
    assert proc.returncode == 0, proc.stderr
    total, rows = pprof_text(progs["sampler_threads"], prof)
    assert not [name for name in rows if "trampoline" in name], rows
    alpha = rows["worker_alpha"][1]
    assert alpha >= 0.2 * total, rows
    assert rows["start_thread"][1] >= alpha, rows


# ------------------------------------------------------------- static programs

@pytest.mark.parametrize("option", [["--cpu", "out.prof"], ["--heap", "out"], ["--malloc"], ["--heapcheck"]])
def test_pprof_run_says_static_programs_cannot_be_reached(tmp_path, option):
    """A static (or static-pie) program has no dynamic loader to honour
    LD_PRELOAD: one line saying so, not a silent run without a profile."""
    static = tmp_path / "static_prog"
    subprocess.run(["gcc", "-static", "-O1", os.path.join(PROGRAMS, "sampler_alarm.c"), "-o", static],
                   check=True, timeout=TIMEOUT)
    opts = [str(tmp_path / o) if o.startswith("out") else o for o in option]
    proc = subprocess.run([sys.executable, "-m", "pprof_py.cli.run", *opts, "--", str(static), "0"],
                          env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "statically linked" in lines[0] and "LD_PRELOAD" in lines[0], lines
    assert not list(tmp_path.glob("out*"))


# --------------------------------------------------- the program's environment

def test_no_variable_of_ours_in_the_programs_environment(tmp_path):
    """The child-naming rule (<file>_<pid> for programs a profiled process
    starts) uses a lock on the profile file, not a variable of ours."""
    prof = tmp_path / "env.prof"
    proc = run_profiled(["sh", "-c", "env; env >/dev/null"], prof, frequency=100)
    assert proc.returncode == 0, proc.stderr
    ours = [line for line in proc.stdout.splitlines() if line.startswith("PPROF_PY_")]
    assert not ours, ours
    # the child `env` processes still wrote their own files
    assert len(list(tmp_path.glob("env.prof_*"))) == 2, os.listdir(tmp_path)


# ------------------------------------------------------------ exported symbols

INTERPOSED = {"pthread_create", "execve", "execvpe", "fexecve", "execv", "execvp", "execl", "execlp",
              "execle", "sigaction", "signal", "bsd_signal", "sysv_signal"}
# gperftools' stacktrace.h (C++ names), which libprofiler exports too
STACKTRACE_H = {"_Z13GetStackTracePPvii", "_Z14GetStackFramesPPvPiii", "_Z24GetStackTraceWithContextPPviiPKv",
                "_Z25GetStackFramesWithContextPPvPiiiPKv"}


def test_library_exports_only_the_api_and_documented_interposition():
    out = subprocess.run(["readelf", "--dyn-syms", "-W", libpath("profiler")], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout
    exported = set()
    for line in out.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) >= 8 and f[0].endswith(":") and f[5] == "DEFAULT" and f[6] != "UND":
            exported.add(f[7].split("@")[0])
    api = {name for name in exported if name.startswith(("Profiler", "ProfilingIs", "PprofPy"))} | STACKTRACE_H
    assert "ProfilerStart" in api and "ProfilerGetStackTrace" in api
    assert exported - api == INTERPOSED, sorted(exported - api)
    doc = open(os.path.join(os.path.dirname(PROGRAMS), "..", "..", "docs", "sampler.md")).read()
    for name in INTERPOSED:
        assert f"`{name}`" in doc, f"{name} is interposed but not documented in docs/sampler.md"


# ---------------------------------------------- with our malloc (sampler side)

@pytest.mark.parametrize("option", [["--malloc"], ["--heap", "HEAP"], ["--heapcheck"]])
def test_cpu_profile_together_with_our_allocator_does_not_hang(progs, tmp_path, option):
    """The writer thread asked pthread_getattr_np for its stack bounds,
    which allocates under the thread's lock, and the allocator's slow path
    asked for the same bounds: the start never ended.  Our own threads no
    longer ask (they are never sampled)."""
    prof = tmp_path / "both.prof"
    opts = [str(tmp_path / "heap") if o == "HEAP" else o for o in option]
    for cmd in (["/bin/true"], [progs["sampler_manythreads"], "20"]):
        proc = subprocess.run([sys.executable, "-m", "pprof_py.cli.run", "--cpu", str(prof), *opts, "--", *cmd],
                              env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, (cmd, proc.returncode, proc.stderr)
        read_profile(prof)


# --------------------------------------------- the program's last thread ends

@pytest.mark.parametrize("libs", ["malloc", "profiler", "both", "profiler+signal", "heapprofile"])
def test_process_ends_with_its_last_thread(tmp_path_factory, tmp_path, libs):
    """main() calls pthread_exit while a worker runs on: the process ends
    when the worker does (exit status 0, atexit handlers run), though our
    release and writer threads are still there (they used to keep it alive
    for ever, with SIGTERM pending in their blocked masks); the profile has
    the worker's samples."""
    program = _build(tmp_path_factory, "lastexit")
    env = _clean_env()
    preload = []
    prof = tmp_path / "last.prof"
    if libs in ("profiler", "both", "profiler+signal"):
        preload.append(libpath("profiler"))
        env.update(CPUPROFILE=str(prof), CPUPROFILE_FREQUENCY="500")
        if libs == "profiler+signal":
            env["CPUPROFILESIGNAL"] = "12"
    if libs in ("malloc", "both", "heapprofile"):
        preload.append(libpath("malloc"))
    if libs == "heapprofile":
        env["HEAPPROFILE"] = str(tmp_path / "last")
    env["LD_PRELOAD"] = " ".join(preload)
    proc = subprocess.run([program, "0.3"], env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.split("\n")[:2] == ["worker done", "atexit ran"], proc.stdout
    if libs in ("profiler", "both"):
        total, rows = pprof_text(program, prof)
        assert rows["burn"][0] >= 0.8 * total and total >= 50, rows
    if libs == "heapprofile":
        # the dump at exit, after main() ended, still has the memory map
        # (/proc/self/maps is empty by then: helper_threads.h)
        dumps = sorted(tmp_path.glob("last.*.heap"))
        assert dumps, os.listdir(tmp_path)
        assert program in dumps[-1].read_text(errors="replace").split("MAPPED_LIBRARIES:")[-1]
