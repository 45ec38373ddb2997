"""Running web UI servers, so `pprof --web` can open their pages.

A user who has `pprof --http=:8080 ./prog cpu.prof` running in one terminal
and types `pprof --web --focus=parse ./prog cpu.prof` in another wants the
server's graph page with that focus, not a static SVG written to /tmp.  So
every server (the command line's `--http` and the shell's `http` command)
leaves a small file here while it serves, and `--web` (and `--weblist` on a
terminal) looks for one serving the same inputs.

The folder is private to the user: $XDG_RUNTIME_DIR/pprof_py/servers when
the session has one, else <tmp>/pprof_py-<uid>/servers, created with mode
0700 and used only when it is ours and not a symbolic link.  One file per
server, `<pid>-<port>.json`:

    {"url": "http://127.0.0.1:8080",   where the server listens
     "pid": 12345,                      the serving process
     "inputs": {...}}                   what it serves (`signature` below)

A server removes its file when it stops; a file whose process is gone or
whose port no longer accepts connections is stale and is removed by the
next look-up.  Nothing here is needed for the server to work: every
failure to read or write these files is silent.
"""
import dataclasses
import json
import os
import socket
import stat
import tempfile
import urllib.parse

# Options that change what a server shows and that its URLs cannot carry
# (the URL carries focus, ignore, hide, show, show_from, the sample index,
# the granularity and the sort order): a command line must agree with the
# server on all of them for the server's pages to be its report.
FIXED_FIELDS = ("lib_prefixes", "strip_templates", "show_bytes", "drop_negative", "nodecount",
                "nodefraction", "edgefraction", "maxdegree", "show_addresses",
                "no_auto_signal_frames", "heapcheck", "add_lib")


def directory(environ=None):
    """The registry folder, created if needed; None when it cannot be used
    safely."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        root = os.path.join(runtime, "pprof_py")
    else:
        root = os.path.join(tempfile.gettempdir(), "pprof_py-%d" % os.getuid())
    path = os.path.join(root, "servers")
    try:
        for folder in (root, path):
            os.makedirs(folder, mode=0o700, exist_ok=True)
            st = os.lstat(folder)
            # Another user's folder, or a link planted in a shared /tmp: not ours.
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                return None
    except OSError:
        return None
    return path


def _file_identity(path):
    """A profile or program as a server and a command line can compare it:
    the real path and its size and modification time (a profile written
    again after the server read it is another profile)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return [real, None, None]
    return [real, st.st_size, st.st_mtime_ns]


def signature(program, profiles, options):
    """What a report is made of, beyond what its URL says."""
    fixed = {name: getattr(options, name) for name in FIXED_FIELDS}
    return {
        "program": _file_identity(program) if program else None,
        "profiles": [_file_identity(p) for p in profiles],
        "base": _file_identity(options.base) if options.base else None,
        "options": json.loads(json.dumps(fixed)),     # lists, not tuples: as read back
    }


class Registration:
    """One server's entry, removed by close()."""

    def __init__(self, path):
        self.path = path

    def close(self):
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None


def register(url, port, program, profiles, options, environ=None):
    """Record a running server; returns a Registration (closing it removes
    the entry).  Profiles fetched from URLs have no stable name: nothing is
    recorded for them."""
    folder = directory(environ)
    if folder is None or not profiles:
        return Registration(None)
    entry = {"url": url, "pid": os.getpid(), "inputs": signature(program, profiles, options)}
    path = os.path.join(folder, "%d-%d.json" % (os.getpid(), port))
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".new-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f)
        os.replace(temp, path)          # readers never see half a file
    except OSError:
        return Registration(None)
    return Registration(path)


def _alive(entry):
    try:
        os.kill(int(entry["pid"]), 0)
    except (ProcessLookupError, ValueError, TypeError, KeyError):
        return False
    except PermissionError:
        pass                            # someone's process: the port decides
    parts = urllib.parse.urlsplit(entry.get("url", ""))
    host = parts.hostname
    if not host or not parts.port:
        return False
    try:
        with socket.create_connection((host, parts.port), timeout=1.0):
            return True
    except OSError:
        return False


def find(program, profiles, options, environ=None):
    """The URL of a running server showing these inputs, or None."""
    folder = directory(environ)
    if folder is None or not profiles:
        return None
    wanted = signature(program, profiles, options)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                entry = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(entry, dict):
            continue
        if not _alive(entry):
            try:
                os.unlink(path)         # its server is gone
            except OSError:
                pass
            continue
        if entry.get("inputs") == wanted:
            return entry["url"]
    return None


def page_url(server_url, view, options):
    """The server's page `view` ("" for the graph, "source", ...) showing
    the command line's focus, ignore, hide/show, sample index, granularity
    and sort order."""
    from pprof_py.web.views import query_from_options
    params = query_from_options(dataclasses.replace(options, output_regex=None))
    if view == "source" and options.output_regex:
        # --weblist=re lists the routines matching re: the source view's f.
        params = [(k, v) for k, v in params if k != "f"] + [("f", options.output_regex)]
    query = urllib.parse.urlencode(sorted(params))
    return f"{server_url}/ui/{view}" + (f"?{query}" if query else "")
