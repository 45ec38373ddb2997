"""Helpers for the web UI tests: a server on an ephemeral loopback port in
this process (stopped by the test that started it), HTTP requests, and a
small HTML table reader."""
import contextlib
import json
import os
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser

from helpers import ROOT, localize

CHAIN = ("fixtures/bin/chain", ["fixtures/local/profiles/chain.cpu.prof"])
CXX = ("fixtures/bin/cxx", ["fixtures/local/profiles/cxx.cpu.prof"])
HEAP = ("fixtures/bin/alloc", ["fixtures/local/profiles/alloc.heap"])
DIFF_BASE = "fixtures/local/profiles/chain.cpu.prof"
DIFF = ("fixtures/bin/chain", ["fixtures/local/profiles/chain.cpu.2.prof"])
CONTENTION = (None, ["fixtures/corner/chain.contention"])


@contextlib.contextmanager
def serving(program, profiles, **option_fields):
    """A running server for these profiles; yields (base URL, WebUI)."""
    from pprof_py.report import Options
    from pprof_py.web.server import Server, WebUI
    localize()
    cwd = os.getcwd()
    os.chdir(ROOT)            # profiles and source files as the CLI tests name them
    server = None
    try:
        ui = WebUI(program, profiles, Options(**option_fields))
        server = Server(("127.0.0.1", 0), ui)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield "http://127.0.0.1:%d" % server.server_address[1], ui
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        os.chdir(cwd)


def get(url, timeout=60):
    """(status, headers, body bytes); 4xx/5xx are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def page(url):
    status, _headers, body = get(url)
    assert status == 200, (url, status, body[:2000])
    return body.decode("utf-8")


class _Tables(HTMLParser):
    """Every <tr> of the page: (tr attributes, [(td attributes, text)]),
    and the text of elements with an id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self.ids = [], {}
        self._row = self._cell = None
        self._open_ids = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = (attrs, [])
            self.rows.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = [attrs, ""]
            self._row[1].append(self._cell)
        if "id" in attrs and tag not in ("input", "link", "meta", "br"):
            self._open_ids.append([tag, attrs["id"], ""])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "tr":
            self._row = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            _tag, name, text = self._open_ids.pop()
            self.ids[name] = text

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        for entry in self._open_ids:
            entry[2] += data


def parse(html):
    p = _Tables()
    p.feed(html)
    return p


def json_block(html, block_id):
    start = html.index('<script type="application/json" id="%s">' % block_id)
    start = html.index(">", start) + 1
    return json.loads(html[start:html.index("</script>", start)])
