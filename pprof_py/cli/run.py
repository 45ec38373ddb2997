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

from pprof_py.native import NativeLibraryMissing, libpath


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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cpu", "cpu_out", metavar="FILE", help="Write a CPU profile to FILE (like CPUPROFILE=FILE).")
@click.option("--frequency", type=click.IntRange(1, 100000), help="CPU samples per second (default 100).")
@click.option("--realtime", is_flag=True, help="Sample wall-clock time instead of CPU time (CPUPROFILE_REALTIME).")
@click.option("--per-thread-timers", is_flag=True, help="One CPU timer per thread (CPUPROFILE_PER_THREAD_TIMERS).")
@click.option("--heap", "heap_prefix", metavar="PREFIX", help="Write heap profiles PREFIX.0001.heap, ... (like HEAPPROFILE).")
@click.option("--sample-parameter", type=click.IntRange(0), metavar="BYTES",
              help="Sample allocations every BYTES on average instead of recording all (TCMALLOC_SAMPLE_PARAMETER).")
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
    main()
