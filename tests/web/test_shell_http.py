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
