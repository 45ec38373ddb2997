"""`pprof --http` as a user runs it: the URL on stderr, serving, Ctrl-C
ends it with one line and exit code 0; bad addresses and bad input end in
one line and a non-zero exit before anything is served."""
import os
import re
import signal
import subprocess
import sys

import pytest

from helpers import ROOT, localize
from web.webhelpers import CHAIN, get

pytestmark = pytest.mark.timeout(120)


def _env():
    env = dict(os.environ)
    env.pop("DISPLAY", None)          # never open a browser from a test
    env.pop("WAYLAND_DISPLAY", None)
    return env


def start(args):
    localize()
    proc = subprocess.Popen([sys.executable, "-m", "pprof_py"] + args, cwd=ROOT, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode()
    return proc, line


def test_serves_until_interrupted():
    proc, line = start(["--http=127.0.0.1:0", "--no_browser", "--focus=b_", CHAIN[0]] + CHAIN[1])
    try:
        m = re.match(r"Serving web UI on (http://127\.0\.0\.1:\d+)/ui/\?f=b_\n$", line)
        assert m, line
        status, _h, body = get(m.group(1) + "/ui/top?f=b_")
        assert status == 200 and b"b_heavy" in body
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.decode() == "pprof: web UI stopped\n"
    assert out == b""


def test_port_only_listens_on_loopback():
    proc, line = start(["--http=:0", "--no_browser"] + [CHAIN[0]] + CHAIN[1])
    try:
        assert line.startswith("Serving web UI on http://127.0.0.1:"), line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.parametrize("args,message", [
    (["--http=nonsense"], "expected HOST:PORT or :PORT"),
    (["--http=:0", "--text"], "--http serves every view"),
    (["--no_browser"], "--no_browser goes with --http"),
])
def test_usage_errors_are_one_line(args, message):
    localize()
    r = subprocess.run([sys.executable, "-m", "pprof_py"] + args + [CHAIN[0]] + CHAIN[1], cwd=ROOT,
                       env=_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert message in err and err.count("\n") == 1, err


def test_missing_profile_fails_before_serving():
    r = subprocess.run([sys.executable, "-m", "pprof_py", "--http=127.0.0.1:0", "--no_browser",
                        CHAIN[0], "no/such.prof"], cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "no/such.prof" in err and "Serving" not in err
