"""Profiles fetched over HTTP (pprof_py/formats/remote.py),
against a local http.server on 127.0.0.1 serving gperftools' profile
pages from the fixtures."""
import http.server
import os
import re
import socket
import tempfile
import threading
import time
import urllib.parse

import pytest

from helpers import PROFILES, ROOT, err, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]
ALLOC = ["fixtures/bin/alloc", f"{PROFILES}/alloc.heap"]


def _read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def _symbol_table():
    """{address: name} for the chain profile's addresses, from our own
    `pprof --raw` (what a program's /pprof/symbol page would answer)."""
    raw = pprof(["--raw", *CHAIN]).stdout
    names = {}
    for line in raw.split(b"\n--- profile")[0].decode().splitlines():
        m = re.match(r"^0x([0-9a-f]+) (.+)$", line)
        if m:
            names[int(m.group(1), 16)] = m.group(2)
    return names


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):       # keep the test output clean
        pass

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        server = self.server
        url = urllib.parse.urlsplit(self.path)
        server.requests.append(self.path)
        pages = {"/pprof/profile": CHAIN[1], "/app/pprof/profile": CHAIN[1],
                 "/pprof/heap": ALLOC[1], "/pprof/growth": f"{PROFILES}/alloc.growth.heap"}
        if url.path == "/slow/pprof/heap":
            time.sleep(3)
            self._send(200, _read(ALLOC[1]))
        elif url.path == "/text/pprof/heap":
            self._send(200, b"hello, this is not a profile\n")
        elif url.path in pages:
            self._send(200, _read(pages[url.path]))
        else:
            self._send(404, b"not found\n")

    def do_POST(self):
        server = self.server
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        server.requests.append(self.path)
        if self.path != "/pprof/symbol" or server.symbols is None:
            self._send(404, b"not found\n")
            return
        server.posted.append(body)
        answer = ["num_symbols: %d" % len(server.symbols)]
        for word in body.split("+"):
            name = server.symbols.get(int(word, 16))
            if name:
                answer.append("%s\t%s" % (word, name))
        self._send(200, ("\n".join(answer) + "\n").encode())


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass        # the timed-out client has gone when /slow answers: expected


@pytest.fixture(scope="module")
def server():
    localize()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.requests, httpd.posted, httpd.symbols = [], [], _symbol_table()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _base(server):
    return "http://127.0.0.1:%d" % server.server_address[1]


def test_cpu_profile_with_program_equals_the_local_file(server):
    local = pprof(["--text", *CHAIN])
    fetched = pprof(["--text", "--seconds=2", CHAIN[0], _base(server) + "/pprof/profile"])
    assert fetched.returncode == 0, err(fetched)
    assert fetched.stdout == local.stdout
    assert "/pprof/profile?seconds=2" in server.requests
    assert "Gathering CPU profile from %s/pprof/profile?seconds=2 for 2 seconds" % _base(server) in err(fetched)
    tmp = tempfile.gettempdir()                  # the temporary copy is gone
    assert not [f for f in os.listdir(tmp) if f.startswith("pprof_py.fetched.") and
                os.path.getmtime(os.path.join(tmp, f)) > time.time() - 60]


def test_url_forms_as_gperftools_parses_them(server):
    from pprof_py.formats import remote
    assert remote.profile_url("localhost:8080") == ("http://localhost:8080/pprof/profile?seconds=30", True)
    assert remote.profile_url("http://h:1/app/pprof/heap") == ("http://h:1/app/pprof/heap", False)
    assert remote.profile_url("http://h:1/app/", 5) == ("http://h:1/app/pprof/profile?seconds=5", True)
    assert remote.profile_url("https://h/pprof/growth") == ("https://h/pprof/growth", False)
    assert remote.is_url("h:8080/pprof/heap") and remote.is_url("http://x")
    assert not remote.is_url(CHAIN[1]) and not remote.is_url("cpu.prof")
    # host:port without a page, and a path prefix, fetch the CPU page
    r = pprof(["--text", "--seconds=1", CHAIN[0], "127.0.0.1:%d/app" % server.server_address[1]])
    assert r.returncode == 0, err(r)
    assert "/app/pprof/profile?seconds=1" in server.requests


def test_heap_and_growth_pages(server):
    for page, local in (("heap", ALLOC[1]), ("growth", f"{PROFILES}/alloc.growth.heap")):
        fetched = pprof(["--text", ALLOC[0], _base(server) + "/pprof/" + page])
        assert fetched.returncode == 0, err(fetched)
        assert fetched.stdout == pprof(["--text", ALLOC[0], local]).stdout
        assert "Fetching /pprof/%s profile from %s/pprof/%s" % (page, _base(server), page) in err(fetched)


def test_base_may_be_a_url(server):
    r = pprof(["--text", "--base=" + _base(server) + "/pprof/heap", *ALLOC])
    assert r.returncode == 0, err(r)
    assert r.stdout == pprof(["--text", "--base=" + ALLOC[1], *ALLOC]).stdout


def test_without_program_names_come_from_the_symbol_page(server):
    server.posted.clear()
    fetched = pprof(["--text", "--seconds=1", _base(server) + "/pprof/profile"])
    assert fetched.returncode == 0, err(fetched)
    assert len(server.posted) == 1 and server.posted[0].startswith("0x")
    local = text(pprof(["--text", *CHAIN])).splitlines()
    got = text(fetched).splitlines()
    # the same rows; names from the server (libc's too, which it named)
    assert got == local


def test_unreachable_host_is_one_line(server):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                                 # nothing listens there now
    r = pprof(["--text", CHAIN[0], "http://127.0.0.1:%d/pprof/heap" % port])
    assert r.returncode == 1 and r.stdout == b""
    # gperftools' progress line, then the error in one line
    assert err(r) == ("Fetching /pprof/heap profile from http://127.0.0.1:%d/pprof/heap\n"
                      "pprof: http://127.0.0.1:%d/pprof/heap: connection refused "
                      "(is the program serving its profiles there?)\n" % (port, port))
    # (no unknown-host case: without DNS on the CI machine it could hang)


def test_http_errors_timeouts_and_non_profiles_are_one_line(server):
    base = _base(server)
    r = pprof(["--text", CHAIN[0], base + "/missing/pprof/heap"])
    assert r.returncode == 1
    assert err(r).splitlines()[1:] == ["pprof: %s/missing/pprof/heap: the server answered HTTP 404 Not Found" % base]
    r = pprof(["--text", "--timeout=0.5", CHAIN[0], base + "/slow/pprof/heap"])
    assert r.returncode == 1
    assert err(r).splitlines()[1:] == ["pprof: %s/slow/pprof/heap: no answer within 0.5 seconds (--timeout)" % base]
    r = pprof(["--text", CHAIN[0], base + "/text/pprof/heap"])
    assert r.returncode == 1
    assert len(err(r).splitlines()) == 2
    assert err(r).splitlines()[1].startswith("pprof: %s/text/pprof/heap: not a profile" % base)
