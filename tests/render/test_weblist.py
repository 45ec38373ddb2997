"""`--weblist=<re>` and the shell's `weblist`: the --list numbers as HTML,
each source line's instructions a click away.

Checked as data (every shown line carries exactly --list's values, and the
instructions under a line add up to them), as a page in headless Chromium
(a click on a line shows its instructions, a second click hides them), and
through the interactive shell without a display (the file is written and
its path said)."""
import html
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "fixtures"))
import relocate_maps  # noqa: E402

CASES = [("chain", "chain.cpu.prof", "spin|b_heavy"), ("cxx", "cxx.cpu.prof", "Matrix|main"),
         ("alloc", "alloc.heap", "alloc")]

_ROW = re.compile(r'<tr(?: class="([^"]*)")?(?: data-asm="([^"]*)")?><td class="num">([^<]*)</td>'
                  r'<td class="num">([^<]*)</td><td class="num">(\d+)</td>')
_ASM = re.compile(r'<tr class="asm" id="([^"]*)"><td colspan="4"><pre>(.*?)</pre>', re.S)


@pytest.fixture(scope="module")
def profiles():
    relocate_maps.localize(ROOT)
    return os.path.join("fixtures", "local", "profiles")


def pprof(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "pprof_py", *args], input=stdin, capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)


def _number(text):
    return 0.0 if text == "." else float(text)


def _list_rows(text):
    """--list output: [(routine header, [(line, flat, cum)])]."""
    blocks = []
    for line in text.splitlines():
        if line.startswith("ROUTINE"):
            blocks.append([])
        m = re.match(r"^\s*(\S+)\s+(\S+)\s+(\d+): ", line)
        if m and blocks:
            blocks[-1].append((int(m.group(3)), _number(m.group(1)), _number(m.group(2))))
    return blocks


def _weblist_rows(page):
    blocks = []
    for part in page.split("<h2>")[1:]:             # one part per routine, table or not
        rows = [(int(m.group(5)), _number(html.unescape(m.group(3))), _number(html.unescape(m.group(4))),
                 m.group(2)) for m in _ROW.finditer(part)]
        blocks.append(rows)
    return blocks


@pytest.mark.parametrize("program,profile,regex", CASES)
def test_weblist_has_the_list_numbers(profiles, program, profile, regex):
    args = ["fixtures/bin/" + program, os.path.join(profiles, profile)]
    listing = pprof("--list=" + regex, *args)
    page = pprof("--weblist=" + regex, *args)
    assert listing.returncode == 0 and page.returncode == 0, listing.stderr + page.stderr
    expected = _list_rows(listing.stdout)
    got = _weblist_rows(page.stdout)
    assert expected and len(got) == len(expected)
    for want, rows in zip(expected, got):
        assert [(l, f, c) for l, f, c, _ in rows] == want
    # instructions under a line add up to the line's values
    asm = {m.group(1): html.unescape(m.group(2)) for m in _ASM.finditer(page.stdout)}
    hot = [(l, f, c, a) for rows in got for l, f, c, a in rows if a]
    assert hot, "no clickable line"
    for line, flat, cum, asm_id in hot:
        insns = [re.match(r"^\s*(\S+)\s+(\S+)\s+\S+: ", x) for x in asm[asm_id].splitlines()]
        assert all(insns)
        assert sum(_number(m.group(1)) for m in insns) == pytest.approx(flat)
        assert sum(_number(m.group(2)) for m in insns) == pytest.approx(cum)
    assert page.stdout == pprof("--weblist=" + regex, *args).stdout      # deterministic


def test_weblist_errors(profiles):
    prof = os.path.join(profiles, "chain.cpu.prof")
    r = pprof("--weblist=(", "fixtures/bin/chain", prof)
    assert r.returncode != 0 and r.stderr.count("\n") == 1
    r = pprof("--weblist=no_such_routine", "fixtures/bin/chain", prof)
    assert r.returncode == 0 and "No routine matched." in r.stdout


def test_shell_weblist_without_display(profiles):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = pprof("--interactive", "fixtures/bin/chain", os.path.join(profiles, "chain.cpu.prof"),
              stdin="weblist spin\nquit\n", env=env)
    assert r.returncode == 0, r.stderr
    m = re.search(r"Wrote (\S+\.html) \(no display to show it on\)", r.stderr)
    assert m, r.stderr
    with open(m.group(1)) as f:
        assert '<tr class="own hot"' in f.read()
    os.unlink(m.group(1))


@pytest.mark.timeout(120)
def test_weblist_click_shows_instructions(profiles, browser, tmp_path):
    from selenium.webdriver.common.by import By
    page = pprof("--weblist=spin", "fixtures/bin/chain", os.path.join(profiles, "chain.cpu.prof"))
    path = tmp_path / "weblist.html"
    path.write_text(page.stdout)
    browser.get("file://" + str(path))
    row = browser.find_elements(By.CSS_SELECTOR, "tr.hot")[0]
    asm = browser.find_element(By.ID, row.get_attribute("data-asm"))
    assert not asm.is_displayed()
    row.click()
    assert asm.is_displayed() and ":" in asm.text
    row.click()
    assert not asm.is_displayed()
