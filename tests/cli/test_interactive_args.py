"""How the interactive shell reads a command's arguments:
`top 3` is a row count as in gperftools' and Go pprof's shells, a regexp
that matches nothing is said to, and each command says how it read its
arguments."""
import pytest

from helpers import PROFILES, err, localize, pprof, text

CHAIN = ["fixtures/bin/chain", f"{PROFILES}/chain.cpu.prof"]


@pytest.fixture(scope="module", autouse=True)
def _profiles():
    localize()


def shell(commands):
    # --interactive: with stdout not a terminal pprof prints --text otherwise
    proc = pprof(["--interactive", *CHAIN], stdin=commands.encode())
    assert proc.returncode == 0 and "Traceback" not in err(proc), err(proc)
    return proc


def _blocks(out):
    return ["Total: " + b for b in out.split("Total: ")[1:]]


def test_top_space_number_is_a_count():
    proc = shell("top 3\ntop3\ntext 2 --cum\n")
    spaced, joined, cum = _blocks(text(proc))
    assert spaced == joined and len(spaced.splitlines()) == 4       # Total + 3 rows, no focus line
    assert "After focusing" not in text(proc)
    assert len(cum.splitlines()) == 3
    # (each message follows the prompt "(pprof) ", or a prompt and a blank)
    lines = [line.replace("(pprof) ", "") for line in err(proc).splitlines()]
    assert lines.count("top: the 3 heaviest rows by flat") == 1    # top3 has no arguments to explain
    assert "top: the 2 heaviest rows by cum" in lines


def test_top_says_how_it_read_focus_and_ignore():
    proc = shell("top 4 b_heavy -spin\n")
    assert ("top: the 4 heaviest rows by flat, of samples whose stack matches 'b_heavy', "
            "without samples whose stack matches 'spin'") in err(proc)
    assert "After focusing on 'b_heavy'" in text(proc)


def test_top_count_given_twice_is_an_error():
    proc = shell("top5 3\ntop 3 4\n")
    assert err(proc).count("pprof: top5: give the number of rows once (topN or top N)") == 1
    assert err(proc).count("pprof: top: give the number of rows once (topN or top N)") == 1


@pytest.mark.parametrize("command", ["list", "disasm", "weblist"])
def test_listing_commands_say_what_matched(command):
    proc = shell(f"{command} nosuchfunction\n{command} ^spin -b_light\n")
    lines = [line.replace("(pprof) ", "") for line in err(proc).splitlines()]
    assert "%s: routines matching 'nosuchfunction'" % command in lines
    assert "pprof: no routine with samples matches 'nosuchfunction'" in lines
    assert "%s: routines matching '^spin', without samples whose stack matches 'b_light'" % command in lines
