"""The interactive shell (no output option): commands through a pipe, and
readline in a pseudo-terminal."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from helpers import PROFILES, ROOT, err, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]
# Through a pipe the shell needs --interactive: without an output option,
# gperftools' pprof opens the shell only when stdout is a terminal.
SHELL = ["--interactive"] + CHAIN


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


def shell(commands, args=SHELL, env_extra=None):
    proc = pprof(list(args), stdin=commands.encode())
    assert "Traceback" not in err(proc), err(proc)
    return proc


def test_top_list_and_quit():
    proc = shell("top3\nlist ^spin\nquit\ntop\n")
    assert proc.returncode == 0
    out = text(proc)
    stderr = err(proc)
    assert stderr.startswith("Welcome to pprof!  For help, type 'help'.\n")
    assert stderr.count("(pprof) ") == 3            # quit stops before the last command
    first = out.split("ROUTINE")[0].splitlines()      # top3's output, then list's Total line
    assert first[0].startswith("Total: ") and len(first) == 5 and first[4] == first[0]
    assert first[1].split()[-1] == "spin"
    assert re.search(r"^ROUTINE =+ spin in fixtures/src/chain.c$", out, re.M)
    # the listing is the one --list prints (after the Total line)
    listing = text(pprof(["--list=^spin"] + CHAIN))
    assert listing in out


def test_top_default_limit_cum_and_lines():
    out = text(shell("top\ntop --cum\ntop5 --lines\n"))
    blocks = out.split("Total: ")[1:]
    assert len(blocks) == 3
    assert len(blocks[0].splitlines()) - 1 == min(10, len(text(pprof(["--text"] + CHAIN)).splitlines()) - 1)
    cum_values = [int(l.split()[3]) for l in blocks[1].splitlines()[1:]]
    assert cum_values == sorted(cum_values, reverse=True)
    assert len(blocks[2].splitlines()) == 6
    assert "fixtures/src/chain.c:" in blocks[2]


def test_focus_and_ignore_arguments():
    proc = shell("top b_heavy\ntop -b_heavy\n")
    out = text(proc)
    assert re.search(r"^After focusing on 'b_heavy': \d+ samples of \d+ \([\d.]+%\)$", out, re.M)
    assert re.search(r"^After ignoring 'b_heavy': \d+ samples of \d+ \([\d.]+%\)$", out, re.M)
    assert "Ignoring samples in call stacks that match 'b_heavy'" in err(proc)
    focused, ignored = out.split("Total: ")[1:]
    assert "b_light" not in focused and "b_heavy" in focused
    assert "b_heavy" not in ignored.split("\n", 2)[2]


def test_disasm_and_help():
    proc = shell("disasm ^spin\nhelp\n")
    assert re.search(r"^ROUTINE =+ spin$", text(proc), re.M)
    assert "Interactive pprof mode" in err(proc) and "disasm <routine_regexp>" in err(proc)


def test_errors_are_one_line_and_the_shell_goes_on():
    proc = shell("frobnicate\nlist (\ntop (\nlist\ntop1\n")
    assert proc.returncode == 0
    lines = err(proc).splitlines()
    assert "(pprof) Unknown command: try 'help'." in lines
    assert sum(1 for l in lines if "bad --list regular expression" in l) == 1
    assert sum(1 for l in lines if "bad --focus regular expression" in l) == 1
    assert any("usage: list <routine_regexp>" in l for l in lines)
    assert text(proc).count("Total: ") == 2         # "top (" printed its total first, then top1


def test_callgrind_and_web_write_files(tmp_path):
    target = tmp_path / "out.callgrind"
    proc = pprof(SHELL, stdin=f"callgrind {target}\n".encode())
    assert f"Wrote {target}" in err(proc)
    assert target.read_text().startswith("events: ")
    env_proc = subprocess.run([sys.executable, "-m", "pprof_py"] + SHELL, cwd=ROOT, input=b"web\n",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                              env={k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")})
    stderr = env_proc.stderr.decode()
    m = re.search(r"Wrote (\S+\.svg) \(no display", stderr)
    if m is None:
        assert "the --svg renderer is not available" in stderr, stderr
    else:
        with open(m.group(1), "rb") as f:
            assert b"<svg" in f.read()
        os.unlink(m.group(1))


def test_end_of_input_leaves_cleanly():
    proc = shell("")
    assert proc.returncode == 0
    assert err(proc).endswith("(pprof) \n")


def _read_until(fd, pattern, timeout=30):
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if re.search(pattern, buf):
                return buf
    raise AssertionError(f"did not see {pattern!r} in {buf!r}")


def test_pseudo_terminal_history_completion_and_ctrl_c():
    pid, fd = pty.fork()
    if pid == 0:        # child: the shell on a terminal
        os.chdir(ROOT)
        os.environ["PYTHONPATH"] = ROOT
        os.environ["TERM"] = "dumb"
        os.environ.pop("INPUTRC", None)
        os.execv(sys.executable, [sys.executable, "-m", "pprof_py"] + CHAIN)
    try:
        _read_until(fd, rb"\(pprof\) ")
        os.write(fd, b"top2\r")
        out = _read_until(fd, rb"spin[^\n]*\n(.|\n)*\(pprof\) ")
        assert b"Total: " in out
        # history: Ctrl-P brings back "top2"
        os.write(fd, b"\x10\r")
        out = _read_until(fd, rb"Total: (.|\n)*\(pprof\) ")
        assert b"top2" in out
        # completion: "he<TAB>" completes to "help"
        os.write(fd, b"he\t\r")
        out = _read_until(fd, rb"Interactive pprof mode(.|\n)*\(pprof\) ")
        # Ctrl-C at the prompt leaves the shell without a traceback.  Wait a
        # moment first, as a person would: CPython's readline loop checks
        # for signals only when its select() is interrupted, so a SIGINT
        # that lands between printing the prompt and entering select() waits
        # for the next key (a race no typist can hit; it hung one CI run).
        time.sleep(0.5)
        os.write(fd, b"\x03")
        rest = b""
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 10)
                if not ready:
                    break
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                rest += chunk
        except OSError:
            pass
        assert b"Traceback" not in rest
    finally:
        status = _reap(pid, fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _reap(pid, fd, grace=10):
    """Wait for the shell on the pseudo-terminal to exit; after `grace`
    seconds (a failed step left it at its prompt) kill it, so a failure
    never hangs the suite."""
    deadline = time.time() + grace
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.05)
    os.close(fd)
    return status
