"""`pprof-run`: run any command under pprof_py's native parts.

    pprof-run --cpu out.prof [--frequency N] [--realtime] -- ./prog args...
    pprof-run --heap prefix [--sample-parameter BYTES] -- ./prog args...
    pprof-run --heapcheck [--heapcheck-children] -- ./prog args...
    pprof-run --malloc -- ./prog args...
    pprof-run --print-lib profiler|malloc

It only sets the environment the libraries read (the same variables as
gperftools: CPUPROFILE, HEAPPROFILE, HEAPCHECK, ...) and LD_PRELOAD, then
execs the command, so the child's exit code is the exit code of pprof-run.
"""
import os
import shutil
import struct
import sys

import click

from pprof_py import __version__
from pprof_py.native import NativeLibraryMissing, libpath

# What --help lists after the options: the environment variables each mode
# sets or honours (read by the native libraries at load time; the same
# names as gperftools' where gperftools has them).  "\b" keeps click from
# re-wrapping a paragraph.  Keep in step with docs/sampler.md and
# docs/allocator.md.
ENVIRONMENT_HELP = """\b
Environment variables (set by the options, or honoured when already set):
\b
--cpu (the CPU sampler, libprofiler-compatible):
  CPUPROFILE=FILE                 write the profile to FILE (set by --cpu)
  CPUPROFILE_FREQUENCY=N          samples per second, default 100 (--frequency)
  CPUPROFILE_REALTIME=1           wall-clock time, SIGALRM (--realtime)
  CPUPROFILE_PER_THREAD_TIMERS=1  one CPU timer per thread (--per-thread-timers)
  CPUPROFILESIGNAL=N              start stopped; each signal N toggles profiling
  PPROF_PY_CPU_TIMER=perf|posix|itimer   force the sample source
  PPROF_PY_CPU_UNWIND=fp          frame pointers only (no DWARF unwinding)
\b
--heap (the allocator's heap profiler):
  HEAPPROFILE=PREFIX              write PREFIX.0001.heap, ... (set by --heap)
  PPROF_PY_HEAP_SAMPLE_PARAMETER=BYTES   sample every BYTES on average, 0 =
                                  every allocation (--sample-parameter)
  TCMALLOC_SAMPLE_PARAMETER=BYTES tcmalloc's sampling for GetHeapSample (set
                                  by --sample-parameter too; alone it does
                                  not sample HEAPPROFILE, as in gperftools)
  HEAP_PROFILE_ALLOCATION_INTERVAL=BYTES    dump every BYTES allocated (1 GiB)
  HEAP_PROFILE_DEALLOCATION_INTERVAL=BYTES  dump every BYTES freed (0: never)
  HEAP_PROFILE_INUSE_INTERVAL=BYTES         dump when in-use grows by BYTES (100 MiB)
  HEAP_PROFILE_TIME_INTERVAL=SECONDS        dump every SECONDS (0: never)
  HEAPPROFILESIGNAL=N             each signal N asks for a dump
\b
--heapcheck (the leak checker; docs/heap-checker.md):
  HEAPCHECK=normal                check for leaks at exit (set by --heapcheck;
                                  also minimal, strict, draconian, as-is, local)
  PPROF_PY_HEAPCHECK_PID=PID      only that process checks (set by pprof-run
                                  unless --heapcheck-children)
  HEAP_CHECK_MAX_LEAKS=N          leak groups printed (20; <= 0: all)
  HEAP_CHECK_IDENTIFY_LEAKS=1     one dump record per leaked object
  HEAP_CHECK_POINTER_SOURCE_ALIGNMENT=N   1, 2, 4 or 8 (8)
  HEAP_CHECK_TEST_POINTER_ALIGNMENT=1     retry a failed check at alignment 1
  HEAP_CHECK_IGNORE_THREAD_LIVE=0 as-is mode: stacks and registers are not roots
  HEAP_CHECK_IGNORE_GLOBAL_LIVE=0 as-is mode: global data is not a root
  HEAP_CHECK_AFTER_DESTRUCTORS    accepted; false is not supported
  HEAP_CHECK_DUMP_DIRECTORY=DIR   where the leak profile goes ($TMPDIR, else /tmp)
  PERFTOOLS_VERBOSE=N             10 or more: say when tracking starts
  TMPDIR=DIR                      (see above)
  PPROF_PATH=PROG                 the pprof that names the report's frames and the
                                  one the suggested command runs (empty: no names);
                                  unset: python3 -m pprof_py, PYTHONPATH extended
\b
--malloc, --mallocstats (the allocator alone):
  MALLOCSTATS=1                   print the allocator's statistics at exit (--mallocstats)
  PPROFPY_MALLOC_DECAY_MS=MS      free pages unused this long go back to the
                                  system (1000)
  PPROFPY_MALLOC_RELEASE_THRESHOLD=BYTES  free pages kept resident whatever
                                  their age (0)
  PPROFPY_MALLOC_BACKGROUND_THREAD=0      no background release thread
  TCMALLOC_RELEASE_RATE=R         pace of releasing free pages by itself,
                                  relative to the default 1; 0 = never
  TCMALLOC_AGGRESSIVE_DECOMMIT=1  free pages go back to the system at once
  TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES=BYTES  thread caches' budget (64 MiB)
  TCMALLOC_HEAP_LIMIT_MB=MB       the heap stops growing past MB resident (0: no limit)
\b
Every mode sets LD_PRELOAD (prepended to any LD_PRELOAD already set)."""


def _preload(env, library):
    current = env.get("LD_PRELOAD", "")
    parts = [p for p in current.replace(":", " ").split() if p]
    if library not in parts:
        parts.insert(0, library)
    env["LD_PRELOAD"] = " ".join(parts)


def _statically_linked(program):
    """True if `program` is an ELF executable without a program interpreter
    (static or static-pie): no dynamic loader runs, so LD_PRELOAD cannot
    bring our libraries into it.  Scripts and unreadable files: False."""
    path = program if os.sep in program else shutil.which(program)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return False  # not a little-endian 64-bit ELF: leave it to exec
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            if phentsize < 4 or phnum == 0 or phnum > 4096:
                return False
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, TypeError):
        return False
    types = [struct.unpack_from("<I", table, i * phentsize)[0] for i in range(len(table) // phentsize)]
    PT_INTERP = 3
    return PT_INTERP not in types


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=ENVIRONMENT_HELP)
@click.version_option(__version__, "--version", prog_name="pprof-run (pprof_py)",
                      message="%(prog)s %(version)s")
@click.option("--cpu", "cpu_out", metavar="FILE", help="Write a CPU profile to FILE (like CPUPROFILE=FILE).")
@click.option("--frequency", type=click.IntRange(1, 100000), help="CPU samples per second (default 100).")
@click.option("--realtime", is_flag=True, help="Sample wall-clock time instead of CPU time (CPUPROFILE_REALTIME).")
@click.option("--per-thread-timers", is_flag=True, help="One CPU timer per thread (CPUPROFILE_PER_THREAD_TIMERS).")
@click.option("--heap", "heap_prefix", metavar="PREFIX", help="Write heap profiles PREFIX.0001.heap, ... (like HEAPPROFILE).")
@click.option("--sample-parameter", type=click.IntRange(0), metavar="BYTES",
              help="Sample allocations every BYTES on average instead of recording all "
                   "(PPROF_PY_HEAP_SAMPLE_PARAMETER and TCMALLOC_SAMPLE_PARAMETER).")
@click.option("--heapcheck", "heapcheck", flag_value="normal", default=None,
              help="Check for leaks at exit (HEAPCHECK=normal); exit code 1 when leaks are found.")
@click.option("--heapcheck-children", is_flag=True,
              help="With --heapcheck: check the programs it starts too (by default only the named program, "
                   "through its own execs, is checked).")
@click.option("--malloc", "use_malloc", is_flag=True, help="Only replace malloc with pprof_py's allocator.")
@click.option("--mallocstats", is_flag=True, help="Print allocator statistics at exit (MALLOCSTATS=1).")
@click.option("--print-lib", type=click.Choice(["profiler", "malloc"]), help="Print the path of a native library and exit.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def main(cpu_out, frequency, realtime, per_thread_timers, heap_prefix, sample_parameter, heapcheck,
         heapcheck_children, use_malloc, mallocstats, print_lib, command):
    """Run COMMAND under pprof_py's CPU sampler and/or allocator."""
    try:
        if print_lib:
            click.echo(libpath(print_lib))
            return
        if not command:
            raise click.UsageError("no command given (use: pprof-run [options] -- ./prog args...)")
        env = dict(os.environ)
        if cpu_out:
            env["CPUPROFILE"] = os.path.abspath(cpu_out)
            if frequency:
                env["CPUPROFILE_FREQUENCY"] = str(frequency)
            if realtime:
                env["CPUPROFILE_REALTIME"] = "1"
            if per_thread_timers:
                env["CPUPROFILE_PER_THREAD_TIMERS"] = "1"
            _preload(env, libpath("profiler"))
        if heap_prefix or heapcheck or use_malloc or mallocstats or sample_parameter is not None:
            if heap_prefix:
                env["HEAPPROFILE"] = os.path.abspath(heap_prefix)
            if sample_parameter is not None:
                env["PPROF_PY_HEAP_SAMPLE_PARAMETER"] = str(sample_parameter)
                env["TCMALLOC_SAMPLE_PARAMETER"] = str(sample_parameter)
            if heapcheck:
                env["HEAPCHECK"] = heapcheck
                if not heapcheck_children:
                    # exec keeps our pid: the library checks only this process
                    # (a script's `gcc ... && echo` must not fail on gcc's leaks)
                    env["PPROF_PY_HEAPCHECK_PID"] = str(os.getpid())
            if mallocstats:
                env["MALLOCSTATS"] = "1"
            _preload(env, libpath("malloc"))
        if heapcheck_children and not heapcheck:
            raise click.UsageError("--heapcheck-children needs --heapcheck")
        if not cpu_out and "LD_PRELOAD" not in env:
            raise click.UsageError("nothing to do: give --cpu, --heap, --heapcheck or --malloc")
        if _statically_linked(command[0]):
            lib = "profiler" if cpu_out else "malloc"
            click.echo(f"pprof-run: {command[0]} is statically linked, LD_PRELOAD cannot reach it "
                       f"(build it dynamically linked, or link it with the library: pprof-run --print-lib {lib})",
                       err=True)
            sys.exit(2)
        try:
            os.execvpe(command[0], list(command), env)
        except OSError as exc:
            click.echo(f"pprof-run: cannot run {command[0]}: {exc.strerror}", err=True)
            sys.exit(127)
    except NativeLibraryMissing as exc:
        click.echo(f"pprof-run: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main(prog_name="pprof-run")
