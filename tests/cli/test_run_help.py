"""`pprof-run --version`, and the environment variables that
`pprof-run --help` lists."""
import glob
import os
import re
import subprocess
import sys

from helpers import ROOT
from pprof_py import __version__



def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "pprof_py.cli.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout == f"pprof-run (pprof_py) {__version__}\n" and r.stderr == ""


def _variables_the_native_code_reads():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "pprof_py", "native", "src", "**", "*.c"), recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            code = f.read()
        names.update(re.findall(r'(?:getenv|env_\w+)\(\s*"([A-Z][A-Z0-9_]*)"', code))
        names.update(re.findall(r'copy_env\([^;]*?"([A-Z][A-Z0-9_]*)"', code))      # copy_env(buf, n, "NAME", default)
    # internal: the sampler marks the process that owns CPUPROFILE (fork
    # handling); PYTHONPATH is only extended for the leak checker's pprof
    names.discard("PPROF_PY_CPUPROFILE_PID")
    names.discard("PYTHONPATH")
    return names


def test_help_lists_every_variable_each_mode_honours():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: pprof-run [OPTIONS] [COMMAND]...")
    names = _variables_the_native_code_reads()
    assert {"CPUPROFILE", "HEAPPROFILE", "HEAPCHECK", "MALLOCSTATS", "TCMALLOC_SAMPLE_PARAMETER"} <= names
    listed = set(re.findall(r"^ +([A-Z][A-Z0-9_]*)[= ]", r.stdout, re.M))
    assert names <= listed, sorted(names - listed)
    # each under the mode that uses it
    sections = re.split(r"^  (--[a-z, -]+) \(", r.stdout, flags=re.M)
    by_mode = {sections[i]: sections[i + 1] for i in range(1, len(sections) - 1, 2)}
    assert "CPUPROFILE_FREQUENCY=" in by_mode["--cpu"]
    assert "TCMALLOC_SAMPLE_PARAMETER=" in by_mode["--heap"]
    assert "HEAPCHECK=" in by_mode["--heapcheck"]
    assert "MALLOCSTATS=" in by_mode["--malloc, --mallocstats"]
