"""Helpers for the tests of --list/--disasm, profile.proto, the CI reports
and the interactive shell: run our pprof from the repository root on the
localized fixture profiles."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
PROFILES = "fixtures/local/profiles"

sys.path.insert(0, FIXTURES)
try:
    import relocate_maps
finally:
    sys.path.remove(FIXTURES)


def localize():
    return relocate_maps.localize(ROOT)


def pprof(args, cwd=ROOT, stdin=None, timeout=120):
    """Run `python -m pprof_py ARGS`; stdin is bytes or None."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pprof_py"] + list(args), cwd=cwd, env=env,
                          input=stdin if stdin is not None else b"",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def text(proc):
    return proc.stdout.decode("utf-8", "replace")


def err(proc):
    return proc.stderr.decode("utf-8", "replace")


def assert_one_line_error(proc, fragment):
    """A user error: non-zero exit, one line on stderr naming the problem,
    no traceback."""
    stderr = err(proc)
    assert proc.returncode != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert fragment in lines[0], stderr
    assert lines[0].startswith("pprof: "), stderr
