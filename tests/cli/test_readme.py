"""The README's commands print what the README shows.

Each test runs one of the README's examples as written and compares its
output with the README's block, line by line, modulo what differs from run
to run or machine to machine: addresses, pids, the temporary directory the
example runs in, the clone's path and, for the CPU profile, the sample
counts (compared by which functions dominate).  `make demo` itself, from a
fresh clone, is tests/test_setup.py's.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

from helpers import ROOT

README = os.path.join(ROOT, "README.md")


def _blocks():
    """The README's indented code blocks as (paragraph before it, lines)."""
    out, para, block, after_blank = [], [], None, False
    for line in open(README, encoding="utf-8").read().splitlines() + [""]:
        if line.startswith("    ") or (block is not None and line.strip() == ""):
            if block is None:
                block = []
            block.append(line[4:])
            continue
        if block is not None:
            while block and block[-1] == "":
                block.pop()
            out.append((" ".join(para), block))
            block, para = None, []
        if not line.strip():
            after_blank = True
            continue
        para = [line] if after_blank else para + [line]
        after_blank = False
    return out


def _block_after(words):
    for para, block in _blocks():
        if words in para:
            return block
    raise AssertionError(f"README: no code block after a paragraph with {words!r}")


def _block_with(words):
    for _, block in _blocks():
        if any(words in line for line in block):
            return block
    raise AssertionError(f"README: no code block with {words!r}")


def _env(bindir=None):
    env = dict(os.environ, PYTHONPATH=ROOT, LC_ALL="C")
    if bindir:
        env["PATH"] = f"{bindir}:{env['PATH']}"
    return env


def _shims(tmp_path):
    """`pprof` and `pprof-run` on PATH, running this tree's code."""
    bindir = tmp_path / "shims"
    bindir.mkdir()
    for name, module in (("pprof", "pprof_py"), ("pprof-run", "pprof_py.cli.run")):
        shim = bindir / name
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m {module} "$@"\n')
        shim.chmod(0o755)
    return bindir


ROW = re.compile(r"^ *(\d+) +(\d+\.\d)% +(\d+\.\d)% +(\d+) +(\d+\.\d)% (\S.*)$")


def _dominant(rows, column):
    """Functions whose share in `column` (1 flat, 4 cum) is at least 5%."""
    return {m.group(6) for m in rows if float(m.group(column + 1)) >= 5.0}


def test_make_demo_output_matches_readme(tmp_path):
    shown = _block_after("What `make demo` prints")
    # demo.sh works in the directory above its own: a copy keeps out/ in tmp.
    (tmp_path / "fixtures" / "demo").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "fixtures", "demo.sh"), tmp_path / "fixtures")
    shutil.copy(os.path.join(ROOT, "fixtures", "demo", "hotspots.c"), tmp_path / "fixtures" / "demo")
    run = subprocess.run(["bash", str(tmp_path / "fixtures" / "demo.sh")], env=_env(_shims(tmp_path)),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    printed = run.stdout.splitlines()

    def split(lines):
        rows = [ROW.match(line) for line in lines if ROW.match(line)]
        return rows, [line for line in lines if not ROW.match(line)]
    shown_rows, shown_other = split(shown)
    printed_rows, printed_other = split(printed)
    # headers and the program's line: the same but for counts
    assert [re.sub(r"\d+", "N", line) for line in printed_other] == \
        [re.sub(r"\d+", "N", line) for line in shown_other], printed
    # rows: as many as `head -15` lets through (fewer when fewer functions
    # got a sample), the same dominant functions, the same top one.
    # (cum is not compared as a set: the cut moves with the one-sample rows)
    assert len(_dominant(shown_rows, 1)) <= len(printed_rows) <= 14, printed
    assert _dominant(printed_rows, 1) == _dominant(shown_rows, 1)
    assert printed_rows[0].group(6) == shown_rows[0].group(6)
    assert (tmp_path / "out" / "hotspots.flame.svg").exists()


def _normalize(lines, tmp_path, clone):
    """What differs from run to run and clone to clone: addresses, the pid
    and random part of the leak profile's name, the directory the example
    runs in, the clone's path."""
    out = []
    for line in lines:
        line = line.replace(str(tmp_path), "/tmp").replace(clone, "<clone>")
        line = re.sub(r"0x[0-9a-f]+", "0xADDR", line)
        line = re.sub(r"/tmp/leaky\.\d+\.(\w+\.)?_main_", "/tmp/leaky.PID._main_", line)
        out.append(line)
    return out


def _readme_clone(lines):
    """The clone path of the run the README shows (before /tests/native/)."""
    for line in lines:
        m = re.search(r"(/\S+)/tests/native/programs/", line)
        if m:
            return m.group(1)
    return ROOT


def test_leak_example_matches_readme(tmp_path):
    commands = _block_with("pprof-run --heapcheck -- ./leaky leak")
    build = shlex.split(commands[0].split("#")[0])
    assert build[:4] == ["gcc", "-O2", "-g", "-o"] and build[4] == "/tmp/leaky"
    build[4] = str(tmp_path / "leaky")
    subprocess.run(build, cwd=ROOT, check=True, timeout=120)
    cd, run_cmd = commands[1].split("&&")
    assert cd.split() == ["cd", "/tmp"]
    argv = shlex.split(run_cmd)
    assert argv[0] == "pprof-run"
    run = subprocess.run([sys.executable, "-m", "pprof_py.cli.run", *argv[1:]], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # "exit code 1 when something leaked"
    shown = _block_after("prints (real output; the program's own line")
    printed = run.stdout.splitlines() + run.stderr.splitlines()
    # README's addresses and pid are one run's; the clone's path is the reader's
    assert _normalize(printed, tmp_path, ROOT) == _normalize(shown, tmp_path, _readme_clone(shown))

    # ... and the command it suggests names the call site, as the README shows.
    hint = next(line for line in run.stderr.splitlines() if line.startswith("pprof "))
    args = shlex.split(hint)[1:]
    heap_file = args[1]
    try:
        report = subprocess.run([sys.executable, "-m", "pprof_py", *args], cwd=ROOT, env=_env(),
                                capture_output=True, text=True, timeout=300)
    finally:
        if heap_file.startswith("/tmp/leaky.") and os.path.exists(heap_file):
            os.unlink(heap_file)
    assert report.returncode == 0, report.stderr
    shown = _block_after("reads the leak profile and prints")
    assert report.stdout.splitlines() == [line.replace(_readme_clone(shown), ROOT) for line in shown]
