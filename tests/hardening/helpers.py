"""Running our pprof on hostile inputs: in a subprocess, with a timeout and
an address-space limit, so a hang or a memory blow-up fails the test
instead of the machine."""
import os
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Well above what any of these inputs needs (python + numpy + pyelftools
# map ~1 GB of address space), far below "blew up".
ADDRESS_SPACE_LIMIT = 3 << 30
TIMEOUT = 60


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def pprof(args, timeout=TIMEOUT, stdin=None, env=None, stdout=subprocess.PIPE):
    """Run `python -m pprof_py ARGS` from the repository root."""
    full_env = dict(os.environ)
    full_env.pop("PPROF_PY_DEBUG", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pprof_py"] + [str(a) for a in args], cwd=ROOT,
                          stdout=stdout, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL if stdin is None else stdin,
                          timeout=timeout, env=full_env, preexec_fn=_limit)


def assert_clean_error(proc, *fragments):
    """One line on stderr starting with "pprof: ", exit status not 0, no
    traceback, no "internal error"; the line holds every fragment."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode not in (0, 3), (proc.returncode, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("pprof: ")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)
    return lines[0]


def assert_report(proc):
    """A report: exit 0 and nothing alarming on stderr."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, (proc.returncode, err)
    assert "Traceback" not in err and "internal error" not in err, err
    return proc.stdout


def assert_report_or_nothing_listed(proc, flag):
    """--list/--disasm with nothing to list end in their one-line
    no-match error (exit 1); every other flag must give a report."""
    if flag.startswith(("--list", "--disasm", "--weblist")) and proc.returncode == 1:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        assert lines and lines[-1].startswith("pprof: no routine with samples matches"), lines
        assert b"Traceback" not in proc.stderr
        return b""
    return assert_report(proc)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def pprof_forked(args, timeout=TIMEOUT):
    """Like `pprof` but forked from this process (pprof_py already
    imported): milliseconds instead of an interpreter start.  For inputs
    whose outcome does not depend on process-wide state (one-time
    warnings)."""
    import tempfile
    from hardening import fuzz
    fuzz.preload()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        status = fuzz.run_case([str(a) for a in args], out, err, timeout)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    kind, code = status
    assert kind == "exit", (status, stderr[-2000:])
    return Result(code, stdout, stderr)
