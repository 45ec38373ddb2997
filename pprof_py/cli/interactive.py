"""The interactive shell: `pprof ./prog cpu.prof` without an output option,
like gperftools' pprof (InteractiveMode / InteractiveCommand).

Commands (arguments: regular expressions; a leading "-" makes one an
ignore pattern, several are joined with "|"; `--cum` / `--lines` switch
sorting / granularity for one command):

    top[N] [N] [--cum] [focus] [-ignore]  the N (default 10) heaviest rows of --text
    text[N] ...                        same as top
    list <regexp> [-ignore]            annotated source (--list)
    disasm <regexp> [-ignore]          annotated disassembly (--disasm)
    weblist <regexp> [-ignore]         --list as HTML, each line's instructions a click away
    web [focus] [-ignore]              SVG call graph, opened in a browser if one exists
    gv [focus] [-ignore]               same, with gv (PostScript) if installed
    callgrind [file]                   callgrind output (kcachegrind if no file is given)
    help                               this list
    quit, or end of input (^D)         leave

Each command given arguments first says on stderr how it read them
(`top: the 3 heaviest rows by flat, of samples whose stack matches 'foo'`).
A list/disasm/weblist regexp that selects no routine with samples is a
one-line error, as with --list.  Reports go to stdout, prompts and
diagnostics to stderr.  The profile the
commands start from is the one after the command line's --focus/--ignore.
Unlike pprof, `top` also honours a focus pattern.  With a terminal on
stdin, lines are read with readline: history (kept in memory) and tab
completion of command names and function names.  Ctrl-C abandons the
current command, or at the prompt leaves the shell.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from pprof_py import filter as filters
from pprof_py.cli.console import for_terminal
from pprof_py.errors import PprofError
from pprof_py.render import REGISTRY
from pprof_py.report import compile_regex
from pprof_py.units import percent, unparse, units

COMMANDS = ["top", "text", "list", "disasm", "weblist", "web", "gv", "callgrind", "http", "help", "quit"]

HELP = """\
Interactive pprof mode

Commands:
  top [--cum] [focus] [-ignore1] [-ignore2]
  top20 [--cum] [focus] [-ignore1] [-ignore2]
      Show the top lines ordered by flat profile count, or cumulative
      count with --cum.  A number after 'top' shows that many lines
      (default 10): top20 or top 20.  --lines reports source lines
      instead of functions.  Other words are focus regexps.

  list <routine_regexp> [-ignore1] [-ignore2]
      Show the source listing of routines whose names match the regexp.

  disasm <routine_regexp> [-ignore1] [-ignore2]
      Show the disassembly of routines whose names match the regexp,
      annotated with sample counts.

  weblist <routine_regexp> [-ignore1] [-ignore2]
      Write the source listing of matching routines as HTML and open it in
      a web browser; click a source line to see its instructions.

  web [focus] [-ignore1] [-ignore2]
      Write the call graph as SVG and open it in a web browser (or say
      where it was written when no browser is available).

  http [host:port]
      Serve this profile in the web UI (as pprof --http does; loopback and
      any free port by default) while the shell runs; web and weblist then
      open its graph and source pages instead of writing files.

  gv [focus] [-ignore1] [-ignore2]
      Show the call graph with gv (PostScript); without gv, like web.

  callgrind [filename]
      Write callgrind output to filename; without one, to a temporary
      file opened with kcachegrind.

  help - This listing
  quit or ^D - End pprof

A "focus" pattern keeps only samples whose stack has a routine matching it;
samples where any routine matches an -ignore pattern are dropped.
"""


def has_display():
    """Can a viewer program open a window here?"""
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _renderer(name):
    for r in REGISTRY:
        if r.name == name and r.render is not None:
            return r
    return None


class Shell:
    def __init__(self, prepared, stdout=None, stderr=None):
        self.base = prepared
        self.server = None          # the web UI, once `http` started it
        self.registration = None    # its entry in web/registry.py
        self.web_url = None
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.tmp_index = 0

    # ---- helpers ------------------------------------------------------------
    def write(self, text):
        self.out.write(for_terminal(self.out, text))
        self.out.flush()

    def say(self, text):
        self.err.write(for_terminal(self.err, text + "\n"))
        self.err.flush()

    def parse_args(self, words):
        focus, ignore, flags = [], [], set()
        for word in words:
            if word in ("--lines", "-lines"):
                flags.add("lines")
            elif word in ("--cum", "-cum"):
                flags.add("cum")
            elif word.startswith("-") and len(word) > 1:
                ignore.append(word[1:])
            elif word:
                focus.append(word)
        ignore_re = "|".join(ignore)
        if ignore_re:
            self.say(f"Ignoring samples in call stacks that match '{ignore_re}'")
        return "|".join(focus), ignore_re, flags

    def process(self, focus, ignore, flags, quiet=False, **option_changes):
        """pprof's ProcessProfile: print the totals, narrow the report by the
        command's focus/ignore (report.Report.narrowed) and return it."""
        p = self.base
        kind, opts = p.kind, p.options
        if not quiet:
            self.write("Total: %s %s\n" % (unparse(p.total, kind, opts), units(kind, opts)))
        if focus:
            p = p.narrowed(focus=focus)
            self._report_share("After focusing on", focus, p.profile)
        if ignore:
            p = p.narrowed(ignore=ignore)
            self._report_share("After ignoring", ignore, p.profile)
        granularity = option_changes.pop("granularity", None) or \
            ("lines" if "lines" in flags else opts.granularity)
        return p.narrowed(granularity=granularity, cum="cum" in flags, **option_changes)

    def _report_share(self, what, pattern, stacks):
        p = self.base
        count = filters.total(stacks)
        share = "%0.1f%%" % (count * 100.0 / p.total) if p.total else "nan%"
        self.write("%s '%s': %s %s of %s (%s)\n" % (
            what, pattern, unparse(count, p.kind, p.options), units(p.kind, p.options),
            unparse(p.total, p.kind, p.options), share))

    def render(self, name, prepared):
        renderer = _renderer(name)
        if renderer is None:
            raise PprofError(f"the --{name} output is not available in this build")
        try:
            return renderer.render(prepared)
        finally:
            for line in prepared.notes:
                self.say(line)

    def temp_name(self, suffix):
        """A new private file in $TMPDIR for a report: created here with
        O_EXCL (mkstemp), mode 0600, so a name planted in advance (a
        symlink to someone's file) is never followed or overwritten."""
        self.tmp_index += 1
        fd, path = tempfile.mkstemp(prefix="pprof%d.%d." % (os.getpid(), self.tmp_index), suffix="." + suffix)
        os.close(fd)
        return path

    # ---- commands -----------------------------------------------------------
    def run(self, line):
        """Run one command line; False means: leave the shell."""
        words = line.strip().split()
        if not words:
            return True
        head = words[0]
        if head.startswith("quit") or head == "exit":
            return False
        if head.startswith("help"):
            self.say(HELP.rstrip("\n"))
            return True
        if head.startswith("top") or head.startswith("text"):
            name = "top" if head.startswith("top") else "text"
            digits = head[len(name):]
            if digits and not digits.isdigit():
                return self.unknown()
            args = words[1:]
            # `top 3`, as Go pprof and gperftools users type it: a row count,
            # not a focus regexp (no function name is all digits).
            counts = [w for w in args if w.isdigit()]
            if counts:
                if digits or len(counts) > 1:
                    raise PprofError(f"{head}: give the number of rows once ({name}N or {name} N)")
                args.remove(counts[0])
                digits = counts[0]
            self.top(int(digits) if digits else 10, args, explain=len(words) > 1)
        elif head in ("list", "disasm", "weblist"):
            if len(words) < 2:
                raise PprofError(f"usage: {head} <routine_regexp> [-ignore ...]")
            routine, ignore, flags = self.parse_args(words[1:])
            if not routine:
                raise PprofError(f"usage: {head} <routine_regexp> [-ignore ...]")
            compile_regex(routine, head)
            self.say(f"{head}: routines matching '{routine}'"
                     + (f", without samples whose stack matches '{ignore}'" if ignore else ""))
            if head == "weblist" and self.web_url:
                self.open_page("source", routine, ignore)
                return True
            prepared = self.process("", ignore, flags, granularity="addresses", output_regex=routine)
            if head == "weblist":
                self.show_in_browser(self.render(head, prepared), "html")
            else:
                self.write(self.render(head, prepared))
        elif head in ("web", "gv"):
            focus, ignore, flags = self.parse_args(words[1:])
            if head == "web" and self.web_url:
                self.open_page("", focus, ignore)
                return True
            self.graph(head, self.process(focus, ignore, flags))
        elif head == "callgrind":
            self.callgrind(words[1] if len(words) > 1 else "")
        elif head == "http":
            self.start_http(words[1] if len(words) > 1 else ":0")
        else:
            return self.unknown()
        return True

    def unknown(self):
        self.say("Unknown command: try 'help'.")
        return True

    # ---- the web UI, served from the shell ------------------------------------
    def start_http(self, address):
        """`http [host:port]`: serve the shell's profile in the web UI (one
        server per shell, in a daemon thread) on the inputs already loaded."""
        import threading
        from pprof_py.web.server import Server, WebUI, parse_address

        if self.web_url:
            self.say(f"The web UI is already serving at {self.web_url}/ui/")
            return
        ui = WebUI(self.base.program, [], self.base.options, inputs=self.base.inputs)
        try:
            self.server = Server(parse_address(address), ui)
        except OSError as exc:
            raise PprofError(f"http {address}: cannot listen: {exc.strerror}") from None
        host, port = self.server.server_address[:2]
        shown = "[%s]" % host if ":" in host else host
        self.web_url = f"http://{shown}:{port}"
        threading.Thread(target=self.server.serve_forever, name="pprof-web", daemon=True).start()
        # `pprof --web` in another terminal, on the same files, opens this
        # server's pages (web/registry.py); the entry goes when the shell ends.
        from pprof_py.web import registry
        self.registration = registry.register(self.web_url, port, self.base.program,
                                              self.base.inputs.paths, self.base.options)
        self.say(f"Serving the web UI at {self.web_url}/ui/ (web and weblist open its pages)")

    def open_page(self, view, focus, ignore):
        """Open /ui/<view> with the command's focus and ignore, or say its URL."""
        import urllib.parse
        query = urllib.parse.urlencode([(k, v) for k, v in (("f", focus), ("i", ignore)) if v])
        url = f"{self.web_url}/ui/{view}" + (f"?{query}" if query else "")
        if has_display():
            import webbrowser
            if webbrowser.open(url):
                self.say(f"Opened {url}")
                return
        self.say(f"Open {url}")

    def top(self, limit, args, explain=False):
        focus, ignore, flags = self.parse_args(args)
        if explain:    # say how the arguments were read (`top 3` once meant focus '3')
            self.say("top: the %d heaviest %s by %s%s%s" % (
                limit, "source lines" if "lines" in flags else "rows", "cum" if "cum" in flags else "flat",
                f", of samples whose stack matches '{focus}'" if focus else "",
                f", without samples whose stack matches '{ignore}'" if ignore else ""))
        p = self.process(focus, ignore, flags)
        from pprof_py.render.text import _display
        flat, cum = p.flat, p.cum
        sort_by = cum if p.options.cum else flat
        total = sum(flat.values())
        running = 0
        lines = 0
        out = []
        for key in sorted(cum, key=lambda k: (-sort_by.get(k, 0), k.encode("utf-8", "surrogateescape"))):
            f, c = flat.get(key, 0), cum.get(key, 0)
            running += f
            if f != 0 or c != 0:
                out.append("%8s %6s %6s %8s %6s %s\n" % (
                    unparse(f, p.kind, p.options), percent(f, total), percent(running, total),
                    unparse(c, p.kind, p.options), percent(c, total),
                    _display(key, p.symbols, p.width, p.options)))
            lines += 1
            if lines >= limit:
                break
        self.write("".join(out))

    def graph(self, viewer, prepared):
        use_ps = viewer == "gv" and shutil.which("gv") and _renderer("ps") is not None
        fmt = "ps" if use_ps else "svg"
        if _renderer(fmt) is None:
            raise PprofError(f"{viewer}: the --{fmt} renderer is not available in this build")
        data = self.render(fmt, prepared)
        if use_ps:
            path = self.write_temp(data, fmt)
            if not has_display():
                self.say(f"Wrote {path} (no display to show it on)")
                return
            subprocess.Popen(["gv", path], stdin=subprocess.DEVNULL)
            return
        self.show_in_browser(data, fmt)

    def write_temp(self, data, suffix):
        path = self.temp_name(suffix)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))
        return path

    def show_in_browser(self, data, suffix):
        """Write `data` to a temporary file and open it in a web browser, or
        say where it is when there is no display or no browser."""
        path = self.write_temp(data, suffix)
        if not has_display():
            self.say(f"Wrote {path} (no display to show it on)")
            return
        for browser in ("/etc/alternatives/gnome-www-browser", "/etc/alternatives/x-www-browser",
                        "google-chrome", "firefox"):
            exe = browser if os.path.isabs(browser) else shutil.which(browser)
            if exe and os.path.exists(exe):
                self.say(f"Loading web page file://{path}")
                subprocess.Popen([exe, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
                return
        self.say(f"Wrote {path} (no web browser found to show it)")

    def callgrind(self, filename):
        prepared = self.process("", "", set(), quiet=True)
        data = self.render("callgrind", prepared)
        path = filename or self.temp_name("callgrind")
        try:
            with open(path, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise PprofError(f"{path}: cannot write: {exc.strerror}") from None
        if filename:
            self.say(f"Wrote {path}")
            return
        kcachegrind = shutil.which("kcachegrind")
        if kcachegrind and has_display():
            self.say(f"Starting 'kcachegrind {path} & '")
            subprocess.Popen([kcachegrind, path], stdin=subprocess.DEVNULL)
        else:
            self.say(f"Wrote {path} (kcachegrind is not installed)")

    # ---- the loop -------------------------------------------------------------
    def completions(self):
        names = set(COMMANDS)
        for triples in self.base.symbols.values():
            for short, _fileline, _full in triples:
                names.add(short)
        return sorted(names)

    def loop(self, stdin=None):
        stdin = stdin or sys.stdin
        self.say("Welcome to pprof!  For help, type 'help'.")
        tty = stdin is sys.stdin and stdin.isatty()
        if tty:
            self._setup_readline()
        while True:
            try:
                if tty:
                    line = input("(pprof) ")
                else:
                    self.err.write("(pprof) ")
                    self.err.flush()
                    line = stdin.readline()
                    if not line:
                        self.say("")
                        return
            except EOFError:
                self.say("")
                return
            except KeyboardInterrupt:
                self.say("")
                return
            try:
                if not self.run(line.replace("\r", "")):
                    return
            except PprofError as exc:
                self.say("pprof: " + " ".join(str(exc).split()))
            except KeyboardInterrupt:
                self.say("Interrupted")
            except BrokenPipeError:
                return

    def _setup_readline(self):
        try:
            import readline
        except ImportError:         # no readline on this platform: plain input()
            return
        words = self.completions()

        def complete(text, state):
            buffer = readline.get_line_buffer()
            pool = COMMANDS if not buffer.strip() or buffer.lstrip() == text else words
            matches = [w for w in pool if w.startswith(text)]
            return matches[state] if state < len(matches) else None

        readline.set_completer_delims(" \t\n")
        readline.set_completer(complete)
        readline.parse_and_bind("tab: complete")


def run_shell(prepared):
    shell = Shell(prepared)
    try:
        shell.loop()
    finally:
        if shell.registration is not None:
            shell.registration.close()
