"""Every option gperftools' pprof accepts, accepted by ours and doing what
it does there: its spellings (Getopt::Long: one dash or two,
unique abbreviations, --noX), the text report by default when stdout is not
a terminal, --interactive, --add_lib (a differential case in
fixtures/cases.json), --scale (given to gv), --debug, and the options that
have no meaning for us (--test_stride, --seconds, --tools, --test), which
must say so and leave the report as it is."""
import os
import stat
import sys
import time

import pytest

from helpers import PROFILES, assert_one_line_error, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


@pytest.fixture(scope="module")
def text_report():
    proc = pprof(["--text"] + CHAIN)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---- spellings: in process, no subprocess needed --------------------------

@pytest.mark.parametrize("argv, expected", [
    (["-text", "p", "f"], ["--text", "p", "f"]),
    (["--tex", "--nodec=3"], ["--text", "--nodecount=3"]),
    (["-focus", "-x", "p"], ["--focus", "-x", "p"]),          # a value is never rewritten
    (["--cum", "--nocum", "--text"], ["--text"]),               # the last one wins
    (["--cum", "--no-cum", "--cum"], ["--cum"]),
    (["--lines", "--nolines"], []),
    (["--text", "--", "-text"], ["--text", "--", "-text"]),
    (["-o", "out.txt", "--in"], ["-o", "out.txt", "--in"]),      # ambiguous: left to click
    (["--show_addr", "--no_strip"], ["--show_addresses", "--no_strip_temp"]),
    (["-top", "p"], ["--top", "p"]),                 # unknown: click names it as typed
    (["-oout.txt", "-h"], ["-oout.txt", "-h"]),      # one-letter options stay as they are
])
def test_getopt_long_spellings(argv, expected):
    from pprof_py.cli import perl_style_argv
    assert perl_style_argv(argv) == expected


def test_unknown_one_dash_option_is_named_in_one_line():
    # Go pprof's -top was reported as "No such option '-t'" (a letter cluster)
    proc = pprof(["-top"] + CHAIN)
    assert_one_line_error(proc, "No such option '--top'")


def test_every_google_pprof_option_is_known():
    """The option names of gperftools' pprof's GetOptions (2.10) all exist
    in ours."""
    import click
    from pprof_py.cli import command
    params = command.get_params(click.Context(command))
    ours = {name[2:] for p in params for name in getattr(p, "opts", []) if name.startswith("--")}
    theirs = {"help", "version", "show_addresses", "no-auto-signal-frm", "cum", "base", "seconds",
              "add_lib", "lib_prefix", "functions", "lines", "addresses", "files", "text", "stacks",
              "callgrind", "list", "disasm", "symbols", "gv", "evince", "web", "dot", "ps", "pdf",
              "svg", "gif", "raw", "collapsed", "interactive", "nodecount", "nodefraction",
              "edgefraction", "maxdegree", "focus", "ignore", "scale", "heapcheck", "inuse_space",
              "inuse_objects", "alloc_space", "alloc_objects", "show_bytes", "drop_negative",
              "total_delay", "contentions", "mean_delay", "tools", "no_strip_temp", "test", "debug",
              "test_stride"}
    assert theirs - ours == set()


# ---- behaviour --------------------------------------------------------------

def test_text_report_by_default_off_a_terminal(text_report):
    proc = pprof(CHAIN)              # stdout is a pipe here
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text_report
    assert b"(pprof)" not in proc.stdout + proc.stderr


def test_perl_spellings_give_the_same_report(text_report):
    proc = pprof(["-tex", "--cum", "--nocum", "-nodecount", "80"] + CHAIN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text_report


def test_interactive_is_an_output_mode():
    proc = pprof(["--interactive"] + CHAIN, stdin=b"top1\nquit\n")
    assert proc.returncode == 0, proc.stderr
    assert "Welcome to pprof!" in proc.stderr.decode()
    assert_one_line_error(pprof(["--interactive", "--text"] + CHAIN), "Only specify one output mode")


def test_options_without_meaning_here_leave_the_report_alone(text_report):
    """--test_stride (pprof's streaming reader, which we do not have),
    --seconds (profiles fetched over HTTP only), --tools / $PPROF_TOOLS (we run no
    object tools): accepted, and the report is byte-identical."""
    proc = pprof(["--test_stride=128", "--seconds=5", "--tools=nm:/nonexistent/nm,/opt/bin/",
                  "--text"] + CHAIN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text_report
    help_text = text(pprof(["--help"]))
    for option, why in (("--test_stride", "no effect"), ("--tools", "without effect"),
                        ("--seconds", "fetched over HTTP"), ("--test", "exits with an error")):
        block = help_text.split(option, 1)[1][:400]
        assert why in " ".join(block.split()), (option, block)


def test_unusable_values_are_one_line_errors():
    assert_one_line_error(pprof(["--tools=:x", "--text"] + CHAIN), "--tools")
    assert_one_line_error(pprof(["--seconds=soon", "--text"] + CHAIN), "seconds")
    assert_one_line_error(pprof(["--text", "--add_lib=no/such/lib.so"] + CHAIN), "no such file")
    assert_one_line_error(pprof(["--test"]), "self-tests")
    assert_one_line_error(pprof(["--in", "--text"] + CHAIN), "--in")


def test_debug_shows_the_traceback_of_an_internal_error(monkeypatch, capsys):
    import pprof_py.cli as cli
    import pprof_py.report

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(pprof_py.report, "prepare", broken)
    monkeypatch.delenv("PPROF_PY_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--text"] + CHAIN)
    assert exc.value.code == 3
    assert "internal error: RuntimeError: boom" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["--debug", "--text"] + CHAIN)


def test_scale_is_given_to_gv(tmp_path):
    """--gv writes PostScript and opens it with gv --scale=N --noantialias,
    as gperftools' RunGV does (a stand-in gv records its arguments)."""
    record = tmp_path / "gv.args"
    fake = tmp_path / "gv"
    fake.write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s.tmp && mv %s.tmp %s\n" % (record, record, record))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}", DISPLAY=":99")
    import subprocess
    from helpers import ROOT
    env["PYTHONPATH"] = ROOT
    proc = subprocess.run([sys.executable, "-m", "pprof_py", "--gv", "--scale=3"] + CHAIN, cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if b"not available" in proc.stderr:
        pytest.fail("graphviz's dot is needed for --gv: " + proc.stderr.decode())
    assert proc.returncode == 0, proc.stderr
    for _ in range(200):                # the viewer is started detached
        if record.exists():
            break
        time.sleep(0.05)
    args = record.read_text().split("\n")
    assert args[:2] == ["--scale=3", "--noantialias"], args
    assert args[2].endswith(".ps")
    os.unlink(args[2])
