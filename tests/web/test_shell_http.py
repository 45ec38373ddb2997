"""The interactive shell's `http` command: the web UI served from the
shell's own report, and `web`/`weblist` pointing at its pages."""
import io
import os
import urllib.request

import pytest

from helpers import ROOT, localize


@pytest.fixture()
def shell(monkeypatch):
    from pprof_py.cli.interactive import Shell
    from pprof_py.report import Options, prepare
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cwd = os.getcwd()
    os.chdir(ROOT)
    localize()
    report = prepare("fixtures/bin/chain", ["fixtures/local/profiles/chain.cpu.prof"], Options())
    sh = Shell(report, stdout=io.StringIO(), stderr=io.StringIO())
    yield sh
    os.chdir(cwd)
    if sh.server is not None:
        sh.server.shutdown()
        sh.server.server_close()


def test_http_serves_the_shells_report_and_web_opens_its_pages(shell):
    assert shell.run("http 127.0.0.1:0")
    url = shell.web_url
    assert url.startswith("http://127.0.0.1:")
    assert f"Serving the web UI at {url}/ui/" in shell.err.getvalue()
    with urllib.request.urlopen(url + "/ui/top", timeout=30) as page:
        body = page.read().decode()
    assert "b_heavy" in body and "spin" in body
    shell.run("web b_heavy -spin")
    shell.run("weblist spin")
    lines = shell.err.getvalue().splitlines()
    assert f"Open {url}/ui/?f=b_heavy&i=spin" in lines
    assert f"Open {url}/ui/source?f=spin" in lines
    with urllib.request.urlopen(f"{url}/ui/source?f=spin", timeout=30) as page:
        assert "spin" in page.read().decode()
    shell.run("http")
    assert "already serving" in shell.err.getvalue()


def test_bad_address_is_one_line(shell):
    from pprof_py.errors import PprofError
    with pytest.raises(PprofError, match="expected HOST:PORT"):
        shell.run("http nonsense")


def test_pprof_web_elsewhere_opens_the_shells_server(shell):
    """`pprof --web` in another terminal, on the shell's files, is sent to
    the shell's server (web/registry.py); the entry goes with the server."""
    import subprocess
    import sys
    from pprof_py.web import registry
    assert shell.run("http 127.0.0.1:0")
    assert registry.find(shell.base.program, shell.base.inputs.paths, shell.base.options) == shell.web_url
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "pprof_py", "--web", "--focus=spin", "fixtures/bin/chain",
                           "fixtures/local/profiles/chain.cpu.prof"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith(f"open {shell.web_url}/ui/?f=spin\n"), done.stderr
    shell.registration.close()
    assert registry.find(shell.base.program, shell.base.inputs.paths, shell.base.options) is None
