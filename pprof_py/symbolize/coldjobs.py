"""Cold symbolization of several object files at once, in a forked worker.

A cold run (empty symbol cache) spends nearly all its time reading symbol
tables and DWARF, one object file after another, and the objects do not
depend on each other: on a python3 profile libpython's DWARF takes 60 ms and
libc's (from libc6-dbg's separate debug file) 45 ms; on gcc's cc1 profile
cc1's symbols and libc's take about as long as each other.  With two CPUs
or more, Symbolizer.symbolize hands some objects to one forked worker
process and names the others itself meanwhile.

Why a forked process and not threads: the work is pure Python (the GIL
would run threads one at a time).  Why fork: the worker starts with every
module imported and nothing to send it but job numbers.  The worker opens
its object files anew (ObjectFile): a file descriptor inherited across
fork shares its file offset with the parent, and both read with seek +
read.  It sends back what object_symbols returned, pickled, through a pipe
only the two processes hold (pickle is safe here: nothing else can write
to it, unlike a file in a shared directory), and writes the objects' cache
files as a sequential run would.

Nothing changes in what the report says: each job's warnings are kept and
printed when the job's turn comes, and any job the worker could not do (an
exception, the worker killed, a damaged pipe) is done again in the parent,
which then reports its errors as a sequential run does.

Not used when it cannot pay or is not safe: fewer than two CPUs, fewer than
two objects without a cache file, a worker share estimated under
MIN_WORKER_MS, or other threads running (fork copies only the calling
thread, and locks the others hold would stay locked in the worker: the web
UI serves from threads).  PPROF_PY_SYMBOLIZE_JOBS=1 turns it off.
"""
import os
import pickle
import threading

from pprof_py.symbolize import cache as symcache
from pprof_py.symbolize.objfile import ObjectFile

# Below this estimated worker share (milliseconds) forking costs more than it saves.
MIN_WORKER_MS = 15


def _estimated_ms(obj, count):
    """Rough cost of naming `count` addresses of `obj` cold, measured on
    this project's bench profiles (with the C DWARF decoders): symbol tables
    cost little per address; DWARF costs a fixed price to open (inflating
    .debug_info, the unit index: libc6-dbg's file, 3 addresses, 45 ms) and
    a little more per address (libpython, 198 addresses, 60 ms)."""
    if obj.dwarf_object() is not None:
        return 40 + 0.1 * count
    return 1 + 0.05 * count


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _enabled():
    return (hasattr(os, "fork") and os.environ.get("PPROF_PY_SYMBOLIZE_JOBS") != "1"
            and _cpus() >= 2 and threading.active_count() == 1)


def _split(costs):
    """Two shares of the jobs {k: cost} with sums as equal as the greedy
    rule makes them (largest first into the lighter share): (mine, worker's)."""
    shares = ([], [])
    sums = [0.0, 0.0]
    for k in sorted(costs, key=lambda k: (-costs[k], k)):
        lighter = 0 if sums[0] <= sums[1] else 1
        shares[lighter].append(k)
        sums[lighter] += costs[k]
    return shares[0], shares[1], sums[1]


def _answer(symbolizer, obj, job, progress):
    """(object_symbols' answer, the object's DWARF damage note, the
    warnings it gave), or None when it raised (the sequential path then
    redoes it and reports the error)."""
    image, bias, pcs, _ = job
    warnings = []
    warn, symbolizer.warn = symbolizer.warn, warnings.append
    try:
        answer = symbolizer.object_answers(obj, image, bias, pcs, progress=progress)
    except Exception:           # redone by the caller, which reports it
        return None
    finally:
        symbolizer.warn = warn
    return answer, getattr(obj, "dwarf_damage", None), warnings


def is_cold(symbolizer, obj):
    """Whether `obj` has no symbol cache file yet (or the cache is off)."""
    path = symcache._cache_path(obj) if symbolizer.use_cache else None
    return path is None or not os.path.exists(path)


def prefetch(objects):
    """Start inflating the .debug_info of each of `objects` (cold ones),
    each in a thread, before any is named: on two CPUs libc6-dbg's and
    libpython's inflate side by side, and beside the naming of the others."""
    for obj in objects:
        if obj is not None:
            obj.prefetch_debug_info()


def prefetch_cold(symbolizer, jobs):
    """prefetch() for every job's object that has no cache file yet."""
    objects = (symbolizer._open(job[0]) for job in jobs)
    prefetch(obj for obj in objects if obj is not None and is_cold(symbolizer, obj))


def run_cold_jobs_in_parallel(symbolizer, jobs):
    """Answers for some of `jobs` ([(image, bias, addresses, _)]), made by
    this process and one worker at the same time: {job index: (answer,
    DWARF damage note, warnings)}.  Empty when not worth it or not safe;
    the caller names every job without an answer itself."""
    if len(jobs) < 2 or not _enabled():
        return {}
    costs = {}
    for k, (image, _bias, pcs, _) in enumerate(jobs):
        obj = symbolizer._open(image)
        if obj is None or not is_cold(symbolizer, obj):
            continue                # warm: reading the cache is quick
        costs[k] = _estimated_ms(obj, len(pcs))
    mine, theirs, their_ms = _split(costs)
    if not mine or not theirs or their_ms < MIN_WORKER_MS:
        return {}
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return {}
    if pid == 0:                                 # the worker
        status = 1
        try:
            os.close(read_end)
            done = {}
            objects = {}
            for k in theirs:
                try:
                    objects[k] = ObjectFile(jobs[k][0])     # its own file offsets (see above)
                except Exception:
                    continue
            prefetch(objects.values())
            for k, obj in objects.items():
                result = _answer(symbolizer, obj, jobs[k], progress=False)
                if result is not None:
                    done[k] = result
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
            status = 0
        finally:
            os._exit(status)          # never return into the caller's code
    os.close(write_end)
    done = {}
    try:
        prefetch(symbolizer._open(jobs[k][0]) for k in mine)
        for k in mine:
            obj = symbolizer._open(jobs[k][0])
            result = _answer(symbolizer, obj, jobs[k], progress=True)
            if result is not None:
                done[k] = result
    finally:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
    if status == 0:
        try:
            theirs_done = pickle.loads(data)
        except Exception:           # a worker killed halfway: its jobs are redone
            theirs_done = {}
        for k, result in theirs_done.items():
            obj = symbolizer._open(jobs[k][0])
            if obj is not None and result[1]:
                obj.dwarf_damage = result[1]
            done[k] = result
    return done
