"""`pprof`: the command line, option-compatible with gperftools' pprof.

    pprof [options] <program> <profiles...>
    pprof [options] <profile>            (symbolize from the profile's maps)
    pprof [options] [<program>] http://host:port/pprof/profile   (fetched: formats/remote.py)

The CLI only turns argv into `report.Options`, runs the pipeline and writes
the renderer's output; every user error becomes one line on stderr and a
non-zero exit code.
"""
import os
import sys

import click

from pprof_py import __version__
from pprof_py.cli.console import DelayedProgress, error, note, write_stdout
from pprof_py.errors import PprofError
from pprof_py.formats import remote
from pprof_py.render import REGISTRY

# Option groups, in the order gperftools' pprof prints them in --help.
GROUPS = ["Options", "Reporting Granularity", "Output type", "Heap-Profile Options",
          "Contention-profile options", "Call-graph Options", "Miscellaneous"]


class GroupedOption(click.Option):
    def __init__(self, *args, group="Options", **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    def format_options(self, ctx, formatter):
        sections = {g: [] for g in GROUPS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            sections.setdefault(getattr(param, "group", "Miscellaneous"), []).append(record)
        for group, rows in sections.items():
            if rows:
                with formatter.section(group):
                    formatter.write_dl(rows)


def opt(*names, group="Options", **kwargs):
    return click.option(*names, cls=GroupedOption, group=group, **kwargs)


def _output_options(func):
    for renderer in reversed(REGISTRY):
        if renderer.takes_regex:
            func = opt(f"--{renderer.name}", f"out_{renderer.name}", metavar="<regexp>",
                       group="Output type", help=renderer.help)(func)
        else:
            func = opt(f"--{renderer.name}", f"out_{renderer.name}", is_flag=True,
                       group="Output type", help=renderer.help)(func)
    return func


@click.command(cls=GroupedCommand, context_settings={"help_option_names": ["-h", "--help"],
                                                     "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="pprof (pprof_py)",
                      message="%(prog)s %(version)s, compatible with gperftools' pprof")
@opt("--cum", is_flag=True, help="Sort by cumulative data")
@opt("--base", metavar="<base>", help="Subtract <base> from <profile> before display")
@opt("--interactive", is_flag=True,
     help="Run in interactive mode (interactive \"help\" gives help) "
          "[default when stdout is a terminal; otherwise --text]")
@opt("--seconds", type=click.IntRange(1), default=30, metavar="<n>",
     help="Length of time for dynamic profiles [default=30 secs]: CPU profiles fetched "
          "over HTTP (http://host:port/pprof/profile)")
@opt("--add_lib", metavar="<file>", help="Read additional symbols and line info from the given library "
     "(not relocated: its addresses as linked)")
@opt("--lib_prefix", metavar="<dir>", help="Comma separated list of library path prefixes")
@opt("--no_strip_temp", is_flag=True, help="Do not strip template arguments from function names")
@opt("--addresses", "granularity", flag_value="addresses", group="Reporting Granularity",
     help="Report at address level")
@opt("--lines", "granularity", flag_value="lines", group="Reporting Granularity",
     help="Report at source line level")
@opt("--functions", "granularity", flag_value="functions", group="Reporting Granularity",
     help="Report at function level [default]")
@opt("--files", "granularity", flag_value="files", group="Reporting Granularity",
     help="Report at source file level")
@_output_options
@opt("--stacks", is_flag=True, group="Output type",
     help="Generate stack traces similar to the heap profiler (requires --text)")
@opt("--inuse_space", "sample_index", flag_value="inuse_space", group="Heap-Profile Options",
     help="Display in-use (mega)bytes [default]")
@opt("--inuse_objects", "sample_index", flag_value="inuse_objects", group="Heap-Profile Options",
     help="Display in-use objects")
@opt("--alloc_space", "sample_index", flag_value="alloc_space", group="Heap-Profile Options",
     help="Display allocated (mega)bytes")
@opt("--alloc_objects", "sample_index", flag_value="alloc_objects", group="Heap-Profile Options",
     help="Display allocated objects")
@opt("--show_bytes", is_flag=True, group="Heap-Profile Options", help="Display space in bytes")
@opt("--drop_negative", is_flag=True, group="Heap-Profile Options", help="Ignore negative differences")
@opt("--total_delay", "contention_index", flag_value="total_delay", group="Contention-profile options",
     help="Display total delay at each region [default]")
@opt("--contentions", "contention_index", flag_value="contentions", group="Contention-profile options",
     help="Display number of delays at each region")
@opt("--mean_delay", "contention_index", flag_value="mean_delay", group="Contention-profile options",
     help="Display mean delay at each region")
@opt("--nodecount", type=click.IntRange(0), default=80, metavar="<n>", group="Call-graph Options",
     help="Show at most so many nodes [default=80]")
@opt("--nodefraction", type=click.FloatRange(0), default=0.005, metavar="<f>", group="Call-graph Options",
     help="Hide nodes below <f>*total [default=.005]")
@opt("--edgefraction", type=click.FloatRange(0), default=0.001, metavar="<f>", group="Call-graph Options",
     help="Hide edges below <f>*total [default=.001]")
@opt("--maxdegree", type=click.IntRange(0), default=8, metavar="<n>", group="Call-graph Options",
     help="Max incoming/outgoing edges per node [default=8]")
@opt("--focus", metavar="<regexp>", group="Call-graph Options", help="Focus on nodes matching <regexp>")
@opt("--ignore", metavar="<regexp>", group="Call-graph Options", help="Ignore nodes matching <regexp>")
@opt("--hide", metavar="<regexp>", group="Call-graph Options",
     help="Drop frames matching <regexp> from every stack (Go pprof's -hide)")
@opt("--show", metavar="<regexp>", group="Call-graph Options",
     help="Keep only frames matching <regexp> (Go pprof's -show)")
@opt("--show_from", metavar="<regexp>", group="Call-graph Options",
     help="Drop the callers above the outermost frame matching <regexp> (Go pprof's -show_from)")
@opt("--scale", type=int, default=0, metavar="<n>", group="Call-graph Options",
     help="Set GV scaling [default=0] (passed to gv by --gv)")
@opt("--heapcheck", "heapcheck", is_flag=True, group="Call-graph Options",
     help="Make nodes with non-0 object counts (i.e. direct leak generators) more visible")
@opt("--show_addresses", is_flag=True, group="Miscellaneous", help="Always show addresses when applicable")
@opt("--no-auto-signal-frm", "no_auto_signal_frames", is_flag=True, group="Miscellaneous",
     help="Do not drop the 2nd frame even if it is always the same (cpu-only)")
@opt("--tools", metavar="<prefix or binary:fullpath>[,...]", group="Miscellaneous",
     help="$PATH for object tool pathnames.  Accepted for compatibility and checked, "
          "but without effect: pprof_py reads object files itself and runs no nm, "
          "addr2line, objdump or c++filt (same for $PPROF_TOOLS)")
@opt("--test", "self_test", is_flag=True, group="Miscellaneous",
     help="gperftools' pprof runs its Perl self-tests; pprof_py has none built in "
          "(run `make test`), so this exits with an error")
@opt("--debug", is_flag=True, group="Miscellaneous",
     help="Print a traceback on internal errors (like PPROF_PY_DEBUG=1)")
@opt("--test_stride", type=int, default=0, metavar="<n>", group="Miscellaneous",
     help="Used by gperftools' unittests to read CPU profiles <n> bytes at a time "
          "through pprof's sliding window; pprof_py reads a profile whole, so it "
          "has no effect")
@opt("--no-cache", "no_cache", is_flag=True, group="Miscellaneous",
     help="Do not read or write the on-disk symbol cache")
@opt("--symbols", "symbols_mode", is_flag=True, group="Output type",
     help="Print demangled symbol names found at the addresses read from stdin "
          "(stdin may also hold a memory map)")
@opt("-o", "--output", "output_path", metavar="<file>", group="Output type",
     help="Write the report to <file> instead of stdout")
@opt("--timeout", "fetch_timeout", type=click.FloatRange(0, min_open=True), metavar="<secs>",
     group="Miscellaneous",
     help="Give up fetching a profile URL after <secs> [default: --seconds*1.01+60 for CPU, else 60]")
@opt("--fail-over", "fail_over", metavar="<pct>%", group="Miscellaneous",
     help="With --base: exit 1 if a function's share of the total grew by more than <pct> points")
@opt("--http", "http", metavar="<host>:<port>", group="Output type",
     help="Serve an interactive web UI (Go pprof's views) on <host>:<port>; "
          ":<port> listens on localhost only")
@opt("--no_browser", is_flag=True, group="Output type",
     help="With --http: do not open a web browser")
@click.argument("args", nargs=-1, required=True, metavar="[<program>] <profiles>...")
def command(args, granularity, sample_index, stacks, **kw):
    """Analyze gperftools CPU and heap profiles (a Python re-implementation of
    gperftools' pprof)."""
    outputs = [r for r in REGISTRY if kw.get(f"out_{r.name}")]
    if len(outputs) + bool(kw["symbols_mode"]) + bool(kw["interactive"]) > 1:
        raise click.UsageError("Only specify one output mode")
    _check_tools(kw["tools"] if kw["tools"] is not None else os.environ.get("PPROF_TOOLS"))
    if kw["add_lib"] is not None and not os.path.isfile(kw["add_lib"]):
        raise PprofError(f"--add_lib={kw['add_lib']}: no such file")
    if kw["symbols_mode"]:
        _symbols_mode(args, kw, lines=granularity == "lines")
        return
    if kw["http"] is not None and outputs:
        raise click.UsageError("--http serves every view: give no other output mode")
    if kw["no_browser"] and kw["http"] is None:
        raise click.UsageError("--no_browser goes with --http")
    # No output mode: like gperftools' pprof, the interactive shell
    # (pprof_py/cli/interactive.py) when stdout is a terminal, else --text.
    renderer = outputs[0] if outputs else None
    if renderer is None and kw["http"] is None and not kw["interactive"] and not _stdout_is_terminal():
        renderer = next(r for r in REGISTRY if r.name == "text")
    if stacks and (renderer is None or renderer.name not in ("text", "json")):
        raise click.UsageError("--stacks requires --text (or --json)")
    # The pipeline (numpy, pyelftools: most of the start-up time) is imported
    # only now, so --help, --version and usage errors answer at once.
    from pprof_py.report import Options, prepare
    options = Options(
        granularity=(renderer.granularity if renderer else None) or granularity or "functions",
        cum=kw["cum"], focus=kw["focus"], ignore=kw["ignore"],
        hide=kw["hide"], show=kw["show"], show_from=kw["show_from"], heapcheck=kw["heapcheck"],
        sample_index=sample_index or "inuse_space", show_bytes=kw["show_bytes"],
        contention_index=kw["contention_index"] or "total_delay",
        drop_negative=kw["drop_negative"], base=kw["base"],
        lib_prefixes=_lib_prefixes(kw),
        nodecount=kw["nodecount"], nodefraction=kw["nodefraction"], edgefraction=kw["edgefraction"],
        maxdegree=kw["maxdegree"], show_addresses=kw["show_addresses"],
        strip_templates=not kw["no_strip_temp"], no_auto_signal_frames=kw["no_auto_signal_frames"],
        stacks=stacks, use_cache=not kw["no_cache"])
    if renderer is not None and renderer.takes_regex:
        options.output_regex = kw.get(f"out_{renderer.name}")
    options.output_path = kw.get("output_path")
    options.add_lib = kw["add_lib"]
    options.scale = kw["scale"]
    if kw.get("fail_over") is not None:
        from pprof_py.render.gate import parse_threshold
        options.fail_over = parse_threshold(kw["fail_over"], options.base)
    if len(args) == 1 or remote.is_url(args[0]):
        program, profiles = None, list(args)
    else:
        program, profiles = args[0], list(args[1:])
    # Profile URLs (formats/remote.py) are fetched into temporary files; with
    # no program, the server's /pprof/symbol names the addresses.  The files
    # go once the profiles are read (the web UI reads them while it serves).
    profiles, options.base, fetched = remote.fetch_arguments(
        profiles, options.base, kw["seconds"], kw["fetch_timeout"], note, symbolize=program is None)
    notes = []
    try:
        if kw["http"] is not None:
            from pprof_py.web import serve
            serve(kw["http"], program, profiles, options, open_browser=not kw["no_browser"], say=note)
            return
        if not fetched and _open_in_running_server(renderer, program, profiles, options, note):
            return
        prepared = prepare(program, profiles, options, notes, progress=DelayedProgress)
    finally:
        for path in fetched:
            os.unlink(path)
    for line in notes:
        note(line)
    printed = len(notes)
    if renderer is None:
        from pprof_py.cli.interactive import run_shell
        run_shell(prepared)
        return
    try:
        output = renderer.render(prepared)
    finally:
        # Renderers append their own diagnostics (e.g. --dot's thresholds).
        for line in prepared.notes[printed:]:
            note(line)
    data = output if isinstance(output, bytes) else output.encode("utf-8", "surrogateescape")
    if options.output_path:
        try:
            with open(options.output_path, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise PprofError(f"{options.output_path}: cannot write: {exc.strerror}") from None
    else:
        write_stdout(data)      # cat -v escaped on a terminal (cli/console.py)
    if options.fail_over is not None:
        from pprof_py.render.gate import GateFailed, check_gate
        failures = check_gate(prepared)
        for line in failures:
            note(line)
        if failures:
            raise GateFailed(f"--fail-over={options.fail_over:g}%: {len(failures) - 1} function(s) "
                             "over the threshold")


def _open_in_running_server(renderer, program, profiles, options, note):
    """--web (and --weblist on a terminal): when a web UI server is already
    serving these files with these settings (`pprof --http` or the shell's
    `http`, web/registry.py), open its graph (source) page with the
    command line's focus and other filters instead of writing a static file.
    Returns whether it did."""
    if renderer is None or renderer.name not in ("web", "weblist"):
        return False
    if renderer.name == "weblist" and not _stdout_is_terminal():
        return False            # a script redirecting the HTML wants the HTML
    from pprof_py.render.dot import has_display
    from pprof_py.web import registry
    server = registry.find(program, profiles, options)
    if server is None:
        return False
    url = registry.page_url(server, "" if renderer.name == "web" else "source", options)
    if has_display():
        import webbrowser
        if webbrowser.open(url):
            note(f"Opened {url} (the web UI already serving these profiles)")
            return True
    note(f"The web UI at {server} is serving these profiles: open {url}")
    return True


SELF_TEST_ERROR = ("--test runs gperftools' own Perl self-tests; pprof_py has none built in "
                   "(its test suite runs with `make test`)")


def _stdout_is_terminal():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _check_tools(spec):
    """--tools / $PPROF_TOOLS as gperftools' pprof reads them: a comma
    separated list of `tool:fullpath` entries or path prefixes.  We run no
    object tools, but a malformed list is still the user's error."""
    if not spec:
        return
    for entry in spec.split(","):
        if not entry:
            raise PprofError(f"--tools={spec}: empty entry")
        if ":" in entry:
            tool, path = entry.split(":", 1)
            if not tool or not path:
                raise PprofError(f"--tools={spec}: {entry!r} is not tool:fullpath")


# Options of gperftools' pprof declared negatable in its GetOptions ("name!").
PERL_NEGATABLE = {"help", "version", "show_addresses", "no-auto-signal-frm", "cum", "functions",
                  "lines", "addresses", "files", "text", "stacks", "callgrind", "symbols", "gv",
                  "evince", "web", "dot", "ps", "pdf", "svg", "gif", "raw", "collapsed",
                  "interactive", "inuse_space", "inuse_objects", "alloc_space", "alloc_objects",
                  "show_bytes", "drop_negative", "total_delay", "contentions", "mean_delay",
                  "no_strip_temp", "test", "debug"}


def perl_style_argv(argv, cmd=None):
    """Rewrite argv the way gperftools' pprof's Getopt::Long (default
    configuration) reads it, into the spelling click knows: a long option
    may start with one dash or two (`-text`), be abbreviated to any unique
    prefix (`--tex`, `--nodec=5`), and a negatable one may be negated
    with `--no` / `--no-` (`--nocum`: the last of `--cum`/`--nocum` wins).
    Arguments after `--` and option values are left alone."""
    cmd = cmd or command
    takes_value, flags = set(), {}
    for param in cmd.params:
        if not isinstance(param, click.Option):
            continue
        for name in param.opts + param.secondary_opts:
            if name.startswith("--"):
                if param.is_flag:
                    flags[name[2:]] = param
                else:
                    takes_value.add(name[2:])
    names = sorted(set(flags) | takes_value)
    # one-letter options (-o FILE, -h): "-ofile" is -o with its value
    short = {name[1] for param in cmd.params if isinstance(param, click.Option)
             for name in param.opts if len(name) == 2 and name[1] != "-"}
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out.extend(argv[i - 1:])
            break
        if not arg.startswith("-") or arg == "-" or (len(arg) == 2 and arg[1] != "-"):
            out.append(arg)
            continue
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, value = body.partition("=")
        full = _resolve_option(name, names)
        if full is None:
            negated = _negated_option(name, names, flags)
            if negated is not None and not eq:
                # --noX: as if the earlier --X were not given
                spellings = {"--" + n for n, p in flags.items() if p is flags[negated]}
                for j in range(len(out) - 1, -1, -1):
                    if out[j] in spellings and (flags[out[j][2:]].flag_value
                                                == flags[negated].flag_value):
                        del out[j]
                continue
            if not arg.startswith("--") and arg[1] not in short:
                # an unknown long option with one dash (Go pprof's -top):
                # say "no such option --top", not "-t" of a letter cluster
                arg = "-" + arg
            out.append(arg)
            continue
        out.append("--" + full + (eq + value if eq else ""))
        if full in takes_value and not eq and i < len(argv):
            out.append(argv[i])           # the option's value, verbatim
            i += 1
    return out


def _resolve_option(name, names):
    if name in names:
        return name
    matches = [n for n in names if n.startswith(name)] if len(name) > 1 else []
    return matches[0] if len(matches) == 1 else None


def _negated_option(name, names, flags):
    for prefix in ("no-", "no"):
        if name.startswith(prefix):
            base = _resolve_option(name[len(prefix):], [n for n in names if n in PERL_NEGATABLE])
            if base is not None and base in flags:
                return base
    return None


def _lib_prefixes(kw):
    return [p for p in (kw["lib_prefix"] or "").split(",") if p]


def _symbols_mode(args, kw, lines=False):
    """`pprof --symbols [--lines] <program>`: addresses (and a memory map) on
    stdin (pprof_py/symbolize/addresses.py)."""
    if len(args) != 1:
        raise click.UsageError("--symbols takes just the program; the addresses come on stdin")
    program = args[0]
    if not os.path.exists(program):
        raise PprofError(f"{program}: no such file")
    from pprof_py.symbolize.addresses import name_addresses
    text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    notes = []
    out = name_addresses(program, text, _lib_prefixes(kw), not kw["no_strip_temp"], not kw["no_cache"],
                         warn=notes.append, lines=lines)
    for line in notes:
        note(line)
    write_stdout(out.encode("utf-8", "surrogateescape"))


def main(argv=None):
    # numpy's OpenBLAS starts one spinning thread per core at import; we do
    # no linear algebra, and on a small profile those threads cost 5% of
    # the run's CPU time (seen with pprof-run --cpu on pprof itself).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        argv = perl_style_argv(argv)
        debug = "--debug" in argv
        if "--test" in argv[:argv.index("--") if "--" in argv else len(argv)]:
            # gperftools' --test needs no profile either
            raise PprofError(SELF_TEST_ERROR)
        command.main(args=argv, prog_name="pprof", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        error(exc.format_message())
        sys.exit(2)
    except click.exceptions.Abort:
        error("aborted")
        sys.exit(130)
    except PprofError as exc:
        error(str(exc))
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # `pprof --text ... | head`: the reader went away; that is not an error.
        try:
            sys.stdout = None
        finally:
            os._exit(0)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
    except MemoryError:
        # Still one line; the inputs' sizes are checked before allocating,
        # so this is a bug of ours or a limit set very low (ulimit -v).
        error("out of memory (set PPROF_PY_DEBUG=1 for a traceback)")
        sys.exit(3)
    except Exception as exc:        # a bug of ours: still one line, unless debugging
        if os.environ.get("PPROF_PY_DEBUG") or debug:
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set PPROF_PY_DEBUG=1 for a traceback)")
        sys.exit(3)
    sys.exit(0)
