"""`pprof --web` (and `--weblist` on a terminal) open the pages of a web UI
server already serving the same files (pprof_py/web/registry.py) instead of
writing a static file; anything else keeps the old behaviour."""
import os
import re
import signal
import stat
import subprocess
import sys

import pytest

from helpers import ROOT, localize
from web.webhelpers import CHAIN, CXX, get

pytestmark = pytest.mark.timeout(120)


def _env(**extra):
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.update(extra)
    return env


def _pprof(args, **extra):
    return subprocess.run([sys.executable, "-m", "pprof_py"] + args, cwd=ROOT, env=_env(**extra),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def _serve(args):
    localize()
    proc = subprocess.Popen([sys.executable, "-m", "pprof_py", "--http=127.0.0.1:0", "--no_browser"] + args,
                            cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode()
    m = re.match(r"Serving web UI on (http://127\.0\.0\.1:\d+)/ui/", line)
    assert m, line
    return proc, m.group(1)


def _entries():
    folder = os.path.join(os.environ["XDG_RUNTIME_DIR"], "pprof_py", "servers")
    return sorted(n for n in os.listdir(folder) if n.endswith(".json")) if os.path.isdir(folder) else []


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_web_opens_the_running_servers_graph(tmp_path):
    proc, url = _serve([CHAIN[0]] + CHAIN[1])
    try:
        assert len(_entries()) == 1
        folder = os.path.join(os.environ["XDG_RUNTIME_DIR"], "pprof_py", "servers")
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        # No display: the URL is said (one line, exit 0), no SVG is written.
        done = _pprof(["--web", "--focus=b_", "--lines", CHAIN[0]] + CHAIN[1])
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        want = f"{url}/ui/?f=b_&g=lines"
        assert done.stderr == f"The web UI at {url} is serving these profiles: open {want}\n"
        status, _h, body = get(want)
        assert status == 200 and b"b_heavy" in body
        # With a display, the browser ($BROWSER, as Python's webbrowser
        # reads it) gets that URL.
        opened = tmp_path / "opened"
        browser = tmp_path / "browser.sh"
        browser.write_text('#!/bin/sh\necho "$1" >> %s\n' % opened)
        browser.chmod(0o755)
        done = _pprof(["--web", "--ignore=c_", CHAIN[0]] + CHAIN[1], DISPLAY=":99", BROWSER=str(browser))
        assert done.returncode == 0, done.stderr
        assert done.stderr == f"Opened {url}/ui/?i=c_ (the web UI already serving these profiles)\n"
        assert opened.read_text() == f"{url}/ui/?i=c_\n"
        # Other files, or settings the URL cannot carry: not this server.
        other = _pprof(["--web"] + [CXX[0]] + CXX[1])
        assert other.returncode != 0 and "no display" in other.stderr
        other = _pprof(["--web", "--nodecount=5", CHAIN[0]] + CHAIN[1])
        assert other.returncode != 0 and "no display" in other.stderr
        # --weblist into a pipe is the HTML, as before.
        listing = _pprof(["--weblist=b_heavy", CHAIN[0]] + CHAIN[1])
        assert listing.returncode == 0 and listing.stdout.startswith("<!DOCTYPE html>")
    finally:
        _stop(proc)
    assert _entries() == []
    done = _pprof(["--web", CHAIN[0]] + CHAIN[1])
    assert done.returncode != 0 and "no display" in done.stderr


def test_a_dead_servers_entry_is_ignored_and_removed():
    proc, url = _serve([CHAIN[0]] + CHAIN[1])
    proc.kill()                           # no chance to remove its entry
    proc.communicate(timeout=30)
    assert len(_entries()) == 1
    done = _pprof(["--web", CHAIN[0]] + CHAIN[1])
    assert done.returncode != 0 and "no display" in done.stderr
    assert _entries() == []
