"""`pprof --symbols --lines <program>` (ours; the leak checker's symbolizer):
each address's function and file:line, innermost inlined frame first."""
import os
import re
import subprocess
import sys

from helpers import ROOT

SOURCE = """\
static volatile int sink;
__attribute__((noinline)) int target(int x) {
    sink = x;
    return x * 3;
}
static inline __attribute__((always_inline)) int inlined(int x) {
    sink = x + 1;
    return target(x) + 1;
}
int main(int argc, char **argv) {
    (void)argv;
    return inlined(argc);
}
"""


def build(tmp_path):
    src, exe = tmp_path / "t.c", tmp_path / "t"
    src.write_text(SOURCE)
    subprocess.run(["gcc", "-O2", "-g", "-no-pie", "-o", str(exe), str(src)], check=True, timeout=120)
    return src, exe


def symbol_address(exe, name):
    out = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True, timeout=60).stdout
    return int(re.search(rf"^([0-9a-f]+) T {name}$", out, re.M).group(1), 16)


def symbols(exe, addresses, *flags):
    r = subprocess.run([sys.executable, "-m", "pprof_py", "--symbols", *flags, str(exe)],
                       input="".join("0x%x\n" % a for a in addresses), capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_function_and_line(tmp_path):
    src, exe = build(tmp_path)
    target = symbol_address(exe, "target")
    lines = symbols(exe, [target], "--lines")
    assert re.fullmatch(rf"target {re.escape(str(src))}:[23]", lines[0]), lines
    assert symbols(exe, [target]) == ["target"]                # without --lines: names only, as before


def test_inlined_frames_innermost_first(tmp_path):
    """The call to target() in main sits in code inlined from inlined():
    'inlined t.c:8 -- main t.c:12'."""
    src, exe = build(tmp_path)
    main = symbol_address(exe, "main")
    # the addresses of main's first bytes, one run: some lie in the inlined code
    inlined = [line for line in symbols(exe, range(main, main + 64), "--lines") if line.startswith("inlined ")]
    assert inlined, "no inlined frame found in main"
    found = inlined[0]
    assert re.fullmatch(rf"inlined {re.escape(str(src))}:\d+ -- main {re.escape(str(src))}:12", found), found
