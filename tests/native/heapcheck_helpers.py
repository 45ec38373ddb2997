"""Shared by the leak-checker and heap-profiler tests: building the fixture
programs, a clean environment, running under our allocator, reading the
leak report."""
import os
import re
import shlex
import subprocess

from pprof_py.native import libpath

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")

# every variable of ours and gperftools' that changes what the native parts do
_OURS = re.compile(r"^(HEAPPROFILE|HEAPCHECK|HEAP_PROFILE_|HEAP_CHECK_|HEAPPROFILESIGNAL|TCMALLOC_|PPROF_PATH$|"
                   r"LD_PRELOAD$|CPUPROFILE|MALLOCSTATS$)")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not _OURS.match(k)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def preload_env(**extra):
    """Our allocator preloaded.  PPROF_PATH="" turns the leak report's
    symbolizer off (about 0.7 s a report) unless a test sets it."""
    extra.setdefault("PPROF_PATH", "")
    return clean_env(LD_PRELOAD=libpath("malloc"), **extra)


def build(tmp_path_factory, source, *flags, name=None):
    out = str(tmp_path_factory.mktemp(name or "prog") / os.path.splitext(source)[0])
    compiler = "g++" if source.endswith(".cc") else "gcc"
    subprocess.run([compiler, *(flags or ("-O0", "-g", "-fno-omit-frame-pointer")), "-fno-builtin", "-pthread",
                    os.path.join(PROGRAMS, source), "-o", out, "-ldl"],
                   check=True, capture_output=True, timeout=120)
    return out


def run(cmd, env, timeout=120, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


LEAK_LINE = re.compile(r"^Leak check (\S+) detected leaks of (\d+) bytes in (\d+) objects$", re.M)


def leaks(stderr):
    """(bytes, objects) of the leak report, or None for "No leaks found"."""
    m = LEAK_LINE.search(stderr)
    if m:
        return int(m.group(2)), int(m.group(3))
    assert "No leaks found for check" in stderr, stderr
    return None


def pprof_command(stderr):
    """argv of the "try running THIS shell command" line, read as the shell
    would (without the constant flags)."""
    m = re.search(r"^(.*) --inuse_objects --lines --heapcheck ", stderr, re.M)
    assert m, stderr
    return shlex.split(m.group(1))
