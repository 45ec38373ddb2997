"""Profiles fetched over HTTP, as gperftools' pprof fetches them from a
program that serves its profiler's pages (gperftools' pprof's
FetchDynamicProfile; Go's net/http/pprof serves the same paths):

    pprof ./prog http://host:port/pprof/profile     CPU profile, --seconds long
    pprof ./prog http://host:port/pprof/heap        heap profile
    pprof ./prog host:port/pprof/growth             (scheme optional: http)
    pprof http://host:port/pprof/heap               no program: symbols from
                                                    the server's /pprof/symbol

A profile argument is a URL when no file of that name exists and it starts
with http:// or https://, or with host:port.  As in gperftools' pprof, the
URL is split into a base and a profile page: the base is everything before
a trailing /pprof/<page> (a path prefix such as /myapp is kept in it), and
a URL without a page fetches /pprof/profile.  CPU pages (/pprof/profile,
/pprof/pmuprofile) get `seconds=N` added to their query (--seconds, default
30), and then the server takes that long to answer; the fetch gives up
after --timeout seconds (default: --seconds x 1.01 + 60 for CPU pages, as
gperftools' pprof, and 60 for the others).

The body is written to a temporary file, which the pipeline then reads like
any profile file (every format read from files is accepted) and the CLI
removes when it is done.

Remote symbolization (/pprof/symbol): when the first argument is a URL,
there is no program to read symbols from.  The addresses of the fetched
profile (callers already minus one, as pprof looks them up) are POSTed to
<base>/pprof/symbol as `0x<hex>+0x<hex>+...`; the answer has one line per
address the server could name, `0x<hex><TAB><name>` (gperftools'
symbolize page; a first line `num_symbols: N` is skipped).  The temporary
file is then written as a symbolized profile (the `--- symbol` / `---
profile` form that `pprof --raw` writes, documented in formats/__init__.py),
so that the names come from the server (see _symbolized for how return
addresses are named).  A server without a symbol page
(404) leaves the profile as fetched: its addresses are then symbolized
from the profile's memory map on this machine, as for `pprof cpu.prof`.
"""
import os
import re
import tempfile

from pprof_py.errors import PprofError

PROFILE_PAGE = "/pprof/profile"
SYMBOL_PAGE = "/pprof/symbol"
_CPU_PAGES = re.compile(r"^/pprof/(?:profile|pmuprofile)\b")
# gperftools' pprof's $PROFILES: the pages a URL may end with.
_PAGES = r"/pprof/(?:heap|profile|growth|contention|pmuprofile(?:\?.*)?|wall(?:\?.*)?" \
         r"|filteredprofile(?:\?.*)?|censusprofile(?:\?.*)?)"
_URL = re.compile(r"^(https?://)?([^/]+)(.*?)(/|" + _PAGES + r")?$")
DEFAULT_SECONDS = 30
DEFAULT_TIMEOUT = 60.0


class FetchError(PprofError):
    """A profile URL that could not be fetched: one line naming the URL."""


def is_url(arg):
    """Is this command-line argument a profile URL rather than a file?"""
    if os.path.exists(arg):
        return False
    return bool(re.match(r"^https?://", arg) or re.match(r"^[A-Za-z0-9.\-]+:\d+(/|$)", arg))


def split_url(arg):
    """(base URL, profile page) as gperftools' pprof's ParseProfileURL."""
    m = _URL.match(arg)
    scheme, hostport, prefix, page = m.group(1) or "http://", m.group(2), m.group(3), m.group(4)
    if not page or page == "/":
        page = PROFILE_PAGE
    return scheme + hostport + prefix, page


def profile_url(arg, seconds=DEFAULT_SECONDS):
    """(the URL to fetch, whether it is a CPU page)."""
    base, page = split_url(arg)
    url = base + page
    cpu = bool(_CPU_PAGES.match(page))
    if cpu:
        url += ("&" if "?" in page else "?") + "seconds=%d" % seconds
    return url, cpu


def _request(url, timeout, data=None):
    """The body of a GET (or a POST of `data`), or FetchError in one line."""
    # Imported here: most runs read files, and urllib.request is 10 ms.
    import socket
    import urllib.error
    import urllib.request
    try:
        request = urllib.request.Request(url, data=data, headers={"User-Agent": "pprof_py"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise FetchError(f"{url}: no answer within {timeout:g} seconds (--timeout)") from None
        if isinstance(reason, socket.gaierror):
            raise FetchError(f"{url}: unknown host") from None
        if isinstance(reason, ConnectionRefusedError):
            raise FetchError(f"{url}: connection refused (is the program serving its profiles there?)") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise FetchError(f"{url}: cannot fetch: {text}") from None
    except (socket.timeout, TimeoutError):
        raise FetchError(f"{url}: no answer within {timeout:g} seconds (--timeout)") from None
    except (ConnectionError, OSError) as exc:
        raise FetchError(f"{url}: cannot fetch: {exc.strerror or exc}") from None
    except ValueError as exc:           # urllib's "unknown url type" and the like
        raise FetchError(f"{url}: not a URL pprof can fetch: {exc}") from None


def fetch(arg, seconds=DEFAULT_SECONDS, timeout=None, say=None, symbolize=False):
    """Download the profile `arg` names into a temporary file and return its
    path (the caller removes it).  `say(line)` receives the progress lines
    gperftools' pprof prints on stderr.  With `symbolize`, the file is a
    symbolized profile named by the server's /pprof/symbol (module doc)."""
    url, cpu = profile_url(arg, seconds)
    if timeout is None:
        timeout = seconds * 1.01 + 60 if cpu else DEFAULT_TIMEOUT
    if say:
        if cpu:
            say(f"Gathering CPU profile from {url} for {seconds} seconds")
        else:
            say(f"Fetching {split_url(arg)[1]} profile from {url}")
    data = _request(url, timeout)
    if not data:
        raise FetchError(f"{url}: the server sent an empty profile")
    path = _temp_file(data)
    try:
        from pprof_py.errors import ProfileFormatError
        from pprof_py.formats import read_profile
        try:
            profile = read_profile(path, [])
        except ProfileFormatError as exc:       # name the URL, not the temporary file
            where = f" at byte offset {exc.offset}" if exc.offset is not None else ""
            raise FetchError(f"{url}: {exc.reason}{where}") from None
        named = _symbolized(profile, data, split_url(arg)[0], timeout, say) if symbolize else None
    except BaseException:
        os.unlink(path)
        raise
    if named is not None:
        with open(path, "wb") as f:
            f.write(named)
    return path


def fetch_arguments(profiles, base, seconds=DEFAULT_SECONDS, timeout=None, say=None, symbolize=False):
    """The CLI's profile arguments (and --base) with each URL replaced by
    the temporary file it was fetched into: (profiles, base, temporary
    files to remove once the profiles are read)."""
    fetched = []
    try:
        def local(arg):
            if arg is None or not is_url(arg):
                return arg
            fetched.append(fetch(arg, seconds, timeout, say, symbolize))
            return fetched[-1]
        return [local(p) for p in profiles], local(base), fetched
    except BaseException:
        for path in fetched:
            os.unlink(path)
        raise


def _temp_file(data):
    fd, path = tempfile.mkstemp(prefix="pprof_py.fetched.", suffix=".prof")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _symbolized(profile, data, base, timeout, say):
    """The fetched profile as a symbolized profile, or None when the server
    has no symbol page or the profile is already symbolized."""
    if profile.named_by != "elf":
        return None
    addresses = sorted({loc.address for loc in profile.locations})
    url = base + SYMBOL_PAGE
    body = "+".join("0x%x" % a for a in addresses).encode("ascii")
    try:
        answer = _request(url, timeout, data=body)
    except FetchError as exc:
        if "HTTP 404" in str(exc):
            if say:
                say(f"{url}: no symbol page; symbolizing from the profile's memory map")
            return None
        raise
    names = parse_symbol_answer(answer, url)
    # The symbolized form's profile section is read without the caller
    # adjustment (pprof --raw writes adjusted addresses there), but the
    # section here is the server's profile as sent, where a caller frame
    # holds its return address, one more than the address looked up.  So
    # each name is given both to its address and to the one after it; a
    # sampled address's own name wins where the two meet.
    named = {}
    for address in addresses:
        if address in names:
            named.setdefault(address + 1, names[address])
    for address in addresses:
        if address in names:
            named[address] = names[address]
    lines = ["--- symbol", "binary=" + base]
    lines += ["0x%0*x %s" % (profile.address_width, a, named[a]) for a in sorted(named)]
    lines.append("---")
    # The fetched bytes follow as they came: a heap profile's text (its
    # "heap profile:" header is recognized as is), or a binary CPU profile
    # after a "--- profile" line.
    if profile.kind == "cpu":
        lines.append("--- profile")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") + data


def parse_symbol_answer(answer, url):
    """{address: name} from a /pprof/symbol answer."""
    names = {}
    for raw in answer.decode("utf-8", "surrogateescape").splitlines():
        if not raw.strip() or raw.startswith("num_symbols:"):
            continue
        m = re.match(r"^0x([0-9a-fA-F]+)\s+(.+)$", raw)
        if m is None:
            raise FetchError(f"{url}: unexpected line in the symbol answer: {raw[:80]!r}")
        names[int(m.group(1), 16)] = m.group(2).strip()
    return names
