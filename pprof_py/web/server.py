"""The web UI's HTTP server (`pprof --http=HOST:PORT`).

One `WebUI` holds what the command line gave (program, profiles, options),
the profiles read and symbolized once (`report.load`: symbolization runs
once per server), and a cache of reports (`report.analyze`), one per
distinct option set that a request asked for.  The standard library's ThreadingHTTPServer answers each
request in its own thread, so a slow view (a large call graph waiting for
graphviz) does not hold up the others; a lock per option set makes two
requests for the same report wait for one preparation instead of doing it
twice.

URLs are Go pprof's (see views.py): /ui/, /ui/top, /ui/flamegraph,
/ui/peek, /ui/source, /ui/disasm, /ui/download; "/" redirects to /ui/.
Static files (CSS, JS) are served from the package's static/ folder under
/ui/static/.  Every error a request can cause is answered with a 4xx page;
the server keeps serving.
"""
import dataclasses
import importlib.resources
import socket
import sys
import threading
import urllib.parse
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pprof_py.errors import PprofError
from pprof_py.report import analyze, load

# How many prepared reports to keep (least recently used ones go first).
CACHE_SIZE = 64

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".png": "image/png", ".svg": "image/svg+xml"}


class _Entry:
    def __init__(self):
        self.lock = threading.Lock()
        self.prepared = None
        self.error = None
        self.views = {}          # view name -> [lock, (rendered data,) or None]


class WebUI:
    """The profiles being served and their prepared reports."""

    def __init__(self, program, profiles, options, inputs=None):
        self.program = program
        self.profiles = list(profiles)
        self.options = options            # the command line's options
        self._lock = threading.Lock()
        self._entries = OrderedDict()
        # Read and symbolize now: a missing or broken profile is reported
        # before the server starts, and every report shares the result.
        # The interactive shell passes the inputs it has already loaded.
        self.notes = []
        self.inputs = inputs if inputs is not None else load(program, profiles, options, self.notes)
        self.kind = str(self.inputs.kind)
        self.entry(options, self.notes)

    def entry(self, options, notes=None):
        """The cache entry of `options`, prepared (raises its PprofError)."""
        key = repr(sorted(dataclasses.asdict(options).items()))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > CACHE_SIZE:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        with entry.lock:
            if entry.prepared is None and entry.error is None:
                try:
                    entry.prepared = analyze(self.inputs, options,
                                             notes if notes is not None else [])
                except PprofError as exc:
                    entry.error = exc
        if entry.error is not None:
            raise entry.error
        return entry

    def prepared(self, options):
        return self.entry(options).prepared

    def cached_view(self, options, name, make):
        """`make(prepared)` once per report and view name."""
        entry = self.entry(options)
        # A lock per view, not the entry's: a slow call graph must not hold
        # up the table of the same report.
        with self._lock:
            slot = entry.views.setdefault(name, [threading.Lock(), None])
        with slot[0]:
            if slot[1] is None:
                slot[1] = (make(entry.prepared),)
        return slot[1][0]


class Handler(BaseHTTPRequestHandler):
    server_version = "pprof_py-web"
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        from pprof_py.web import views
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/", "/ui"):
            self._send(302, b"", "text/plain", {"Location": "/ui/" + ("?" + url.query if url.query else "")})
            return
        if url.path.startswith("/ui/static/"):
            self._static(url.path[len("/ui/static/"):])
            return
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            response = views.handle(self.server.ui, url.path, query)
        except Exception as exc:      # a bug of ours: one line on stderr, a 500 page
            print(f"pprof: internal error serving {self.path}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            response = views.Response(500, "text/plain; charset=utf-8",
                                      f"internal error: {type(exc).__name__}: {exc}\n".encode())
        self._send(response.status, response.body, response.content_type, response.headers)

    def do_HEAD(self):
        self.do_GET()

    def _static(self, name):
        # Only plain file names from our own folder: no "..", no sub-folders.
        ext = name[name.rfind("."):] if "." in name else ""
        if "/" in name or name.startswith(".") or ext not in _STATIC_TYPES:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        try:
            data = importlib.resources.files("pprof_py.web").joinpath("static", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        self._send(200, data, _STATIC_TYPES[ext], {"Cache-Control": "max-age=300"})

    def _send(self, status, body, content_type, headers=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass          # the browser went away (a page left mid-load)

    def log_message(self, format, *args):
        # One line per request would drown the terminal; errors are printed
        # where they happen.
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, ui):
        self.ui = ui
        if ":" in address[0]:
            self.address_family = socket.AF_INET6      # --http=[::1]:8080
        super().__init__(address, Handler)


def parse_address(text):
    """"HOST:PORT" or ":PORT" (loopback) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise PprofError(f"--http={text}: expected HOST:PORT or :PORT (e.g. --http=:8080)")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def start_query(options):
    """The query string that shows the command line's own report."""
    from pprof_py.web.views import query_from_options
    return urllib.parse.urlencode(query_from_options(options))
