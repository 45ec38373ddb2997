"""The web UI in headless Chromium (selenium; the `browser` fixture is in
tests/conftest.py): each view loads and its script runs; a flame frame
zooms and resets; the search box highlights; a click on a graph node and
Refine > Focus puts the focus in the URL; the Sample menu switches the
sample index; the top table sorts by cum; a source line opens its
instructions.

Screenshots of every view go to a temporary folder (printed with -s); the
README's picture (docs/images/web-ui.png) is written there too when
PPROF_WEB_SCREENSHOTS names a folder (`make web-screenshot`)."""
import os
import urllib.parse

import pytest

from helpers import ROOT
from web.webhelpers import CHAIN, CXX, HEAP, serving

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("web-screenshots"))
    print("screenshots in", folder)
    return folder


def _readme_shot(browser):
    folder = os.environ.get("PPROF_WEB_SCREENSHOTS")
    if folder:
        folder = folder if os.path.isabs(folder) else os.path.join(ROOT, folder)
        os.makedirs(folder, exist_ok=True)
        browser.save_screenshot(os.path.join(folder, "web-ui.png"))


def _by(name):
    from selenium.webdriver.common.by import By
    return getattr(By, name)


def _wait(driver, condition, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(condition)


def _query(driver):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)


def _open_menu_item(driver, menu_id, selector):
    driver.find_element(_by("CSS_SELECTOR"), "#%s .menu-title" % menu_id).click()
    item = driver.find_element(_by("CSS_SELECTOR"), "#%s %s" % (menu_id, selector))
    assert item.is_displayed()
    item.click()


def test_every_view_loads(browser, shots):
    with serving(*CHAIN) as (url, _ui):
        for path, check in [("/ui/", "return !!window.pprofGraph"),
                            ("/ui/top", "return document.querySelectorAll('#toptable tbody tr').length"),
                            ("/ui/flamegraph", "return window.flameGraph.frames.length"),
                            ("/ui/peek?f=^a$", "return document.querySelectorAll('table.peek').length"),
                            ("/ui/source?f=spin", "return document.querySelectorAll('tr.line.hot').length"),
                            ("/ui/disasm?f=spin", "return document.querySelectorAll('tr.insn').length")]:
            browser.get(url + path)
            assert browser.execute_script("return !!window.pprofUI"), path
            assert browser.execute_script(check), path
            name = path.strip("/").split("?")[0].replace("ui/", "").replace("ui", "graph") or "graph"
            browser.save_screenshot(os.path.join(shots, "web-%s.png" % name))
        browser.get(url + "/ui/nosuchview")
        assert "no such view" in browser.find_element(_by("ID"), "error").text


def test_flame_click_zoom_reset_and_search(browser, shots):
    with serving(*CXX) as (url, _ui):
        browser.get(url + "/ui/flamegraph")
        box = browser.find_element(_by("ID"), "flame")
        full = box.rect["width"]

        def frame(name):
            for div in browser.find_elements(_by("CSS_SELECTOR"), "#flame .frame"):
                if div.get_attribute("textContent") == name:
                    return div
            raise AssertionError(name)

        # The graph fits the window: the root is as wide as the page allows.
        assert frame("all").rect["width"] == pytest.approx(full, abs=2)
        assert full > browser.execute_script("return window.innerWidth") - 40
        target = frame("fixture::sort_rounds")
        before = target.rect["width"]
        assert 0 < before < full - 10
        target.click()
        assert frame("fixture::sort_rounds").rect["width"] == pytest.approx(full, abs=2)
        assert "dim" in frame("main").get_attribute("class")
        assert not frame("fixture::Accumulator::digest [clone .isra.0]").is_displayed()
        reset = browser.find_element(_by("ID"), "flame-reset")
        assert reset.is_enabled()
        # Type a search while zoomed: matches are highlighted, the share shown.
        search = browser.find_element(_by("ID"), "search")
        search.send_keys("introsort")
        hl = browser.find_elements(_by("CSS_SELECTOR"), "#flame .frame.hl")
        assert hl and all("introsort" in d.get_attribute("textContent") for d in hl)
        assert browser.find_element(_by("ID"), "flame-matched").text.startswith("Matched: ")
        browser.save_screenshot(os.path.join(shots, "web-flamegraph-zoomed.png"))
        _readme_shot(browser)
        reset.click()
        assert frame("fixture::sort_rounds").rect["width"] == pytest.approx(before, abs=1)
        assert frame("fixture::Accumulator::digest [clone .isra.0]").is_displayed()
        # The search box's reset clears the highlight; the box stays on screen.
        browser.find_element(_by("ID"), "search-reset").click()
        assert not browser.find_elements(_by("CSS_SELECTOR"), "#flame .frame.hl")
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        assert search.is_displayed()


def test_flame_zoom_and_search_are_in_the_url(browser, shots):
    """A zoomed, searched flame graph is a URL: q=<search>, zoom=<stack>;
    loading that URL shows the same graph; reset removes them."""
    with serving(*CXX) as (url, _ui):
        browser.get(url + "/ui/flamegraph?f=sort")

        def frame(name):
            for div in browser.find_elements(_by("CSS_SELECTOR"), "#flame .frame"):
                if div.get_attribute("textContent") == name:
                    return div
            raise AssertionError(name)

        full = browser.find_element(_by("ID"), "flame").rect["width"]
        frame("fixture::sort_rounds").click()
        browser.find_element(_by("ID"), "search").send_keys("introsort")
        query = _query(browser)
        assert query["f"] == ["sort"] and query["q"] == ["introsort"]
        zoom = query["zoom"][0]
        # the frame's stack below the root, outermost first
        assert zoom.split(";")[-2:] == ["main", "fixture::sort_rounds"], zoom
        assert zoom.split(";")[0] == "_start", zoom
        # The bookmark: a fresh load of that URL is zoomed and searched.
        saved = browser.current_url
        browser.get("about:blank")
        browser.get(saved)
        assert frame("fixture::sort_rounds").rect["width"] == pytest.approx(full, abs=2)
        assert "dim" in frame("main").get_attribute("class")
        assert browser.find_element(_by("ID"), "search").get_attribute("value") == "introsort"
        hl = browser.find_elements(_by("CSS_SELECTOR"), "#flame .frame.hl")
        assert hl and all("introsort" in d.get_attribute("textContent") for d in hl)
        assert browser.find_element(_by("ID"), "flame-reset").is_enabled()
        browser.save_screenshot(os.path.join(shots, "web-flamegraph-from-url.png"))
        browser.find_element(_by("ID"), "flame-reset").click()
        browser.find_element(_by("ID"), "search-reset").click()
        query = _query(browser)
        assert "zoom" not in query and "q" not in query and query["f"] == ["sort"]
        # The other views where the search highlights keep it too.
        browser.get(url + "/ui/top?q=introsort")
        assert browser.find_element(_by("ID"), "search").get_attribute("value") == "introsort"
        hl = browser.find_elements(_by("CSS_SELECTOR"), "#toptable tr.hl")
        assert hl and all("introsort" in r.get_attribute("data-name") for r in hl)
        browser.find_element(_by("ID"), "search").send_keys("_loop")
        assert _query(browser)["q"] == ["introsort_loop"]
        # A zoom naming no frame of this graph is dropped, not an error.
        browser.get(url + "/ui/flamegraph?zoom=main;no_such_function")
        assert "zoom" not in _query(browser)
        assert not browser.find_element(_by("ID"), "flame-reset").is_enabled()


def test_graph_node_click_and_focus(browser, shots):
    with serving(*CHAIN) as (url, _ui):
        browser.get(url + "/ui/")
        nodes = {n.find_element(_by("TAG_NAME"), "title").get_attribute("textContent"): n
                 for n in browser.find_elements(_by("CSS_SELECTOR"), "#graph-svg g.node")}
        names = browser.execute_script(
            "return JSON.parse(document.getElementById('graph-nodes').textContent)")
        number = [n for n, v in names.items() if v["name"] == "b_heavy"][0]
        nodes[number].click()
        assert "selected" in nodes[number].get_attribute("class")
        selection = browser.find_element(_by("ID"), "search").get_attribute("value")
        assert selection == r"(?<![\w:])b_heavy(?![\w:])"
        browser.save_screenshot(os.path.join(shots, "web-graph-selected.png"))
        _open_menu_item(browser, "refine-menu", 'a[data-param="f"]')
        _wait(browser, lambda d: "f" in _query(d))
        assert _query(browser)["f"] == [selection]
        assert "Focus:" in browser.find_element(_by("ID"), "filters").text
        after = browser.execute_script(
            "return Object.values(JSON.parse(document.getElementById('graph-nodes').textContent))"
            ".map(function (n) { return n.name; })")
        assert "b_heavy" in after and "b_light" not in after
        # Wheel zoom and double-click fit on the inline graph.
        browser.execute_script("""
            var svg = document.getElementById('graph-svg'), r = svg.getBoundingClientRect();
            svg.dispatchEvent(new WheelEvent('wheel', {deltaY: -300, clientX: r.left + 100,
                clientY: r.top + 100, bubbles: true, cancelable: true}));""")
        transform = browser.find_element(_by("ID"), "viewport").get_attribute("transform")
        assert float(transform.split("scale(")[1].rstrip(")")) > 1.2
        browser.execute_script("document.getElementById('graph-svg').dispatchEvent("
                               "new MouseEvent('dblclick', {bubbles: true}))")
        assert browser.find_element(_by("ID"), "viewport").get_attribute("transform") == \
            "translate(0,0) scale(1)"
        # "+" zooms in (panzoom.js, as in the --svg file), but not when typed
        # into the search box.
        browser.find_element(_by("ID"), "search").send_keys("+")
        assert browser.find_element(_by("ID"), "viewport").get_attribute("transform") == \
            "translate(0,0) scale(1)"
        browser.execute_script("document.body.dispatchEvent(new KeyboardEvent('keydown', "
                               "{key: '+', bubbles: true}))")
        assert browser.find_element(_by("ID"), "viewport").get_attribute("transform") == \
            "translate(0,0) scale(1.25)"
        # A press on a node that moves on is a drag: it pans and selects
        # nothing; one that shakes by a pixel or two is still a click.
        press = """
            var names = JSON.parse(document.getElementById('graph-nodes').textContent);
            var g = Array.prototype.filter.call(document.querySelectorAll('#graph-svg g.node'), function (n) {
                return names[n.querySelector('title').textContent.split(' ')[0]]; })[0];
            var label = g.querySelector('text');
            var r = g.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
            var dx = arguments[0], dy = arguments[1];
            label.dispatchEvent(new MouseEvent('mousedown', {button: 0, clientX: x, clientY: y, bubbles: true}));
            label.dispatchEvent(new MouseEvent('mousemove', {clientX: x + dx, clientY: y + dy, bubbles: true}));
            label.dispatchEvent(new MouseEvent('mouseup', {button: 0, clientX: x + dx, clientY: y + dy, bubbles: true}));
            return [window.pprofGraph.selected.length, g.classList.contains('selected')];"""
        assert browser.execute_script(press, 40, 20) == [0, False]
        assert browser.find_element(_by("ID"), "viewport").get_attribute("transform").startswith("translate(")
        assert browser.find_element(_by("ID"), "viewport").get_attribute("transform") != \
            "translate(0,0) scale(1.25)"
        assert browser.execute_script(press, 1, 1) == [1, True]
        # The selection also names the routine for View > Source.
        browser.find_element(_by("ID"), "search").clear()
        browser.find_element(_by("ID"), "search").send_keys(selection)
        _open_menu_item(browser, "view-menu", 'a[href^="/ui/source"]')
        _wait(browser, lambda d: urllib.parse.urlsplit(d.current_url).path == "/ui/source")
        assert "b_heavy" in browser.find_element(_by("CSS_SELECTOR"), "section.routine h2").text


def test_sample_index_switch_and_top_sort(browser, shots):
    with serving(*HEAP) as (url, _ui):
        browser.get(url + "/ui/top")
        assert "MB" in browser.find_element(_by("ID"), "total").text
        _open_menu_item(browser, "sample-menu", 'a[data-si="alloc_objects"]')
        _wait(browser, lambda d: _query(d).get("si") == ["alloc_objects"])
        assert "objects" in browser.find_element(_by("ID"), "total").text
        browser.find_element(_by("ID"), "sort-cum").click()
        _wait(browser, lambda d: _query(d).get("sort") == ["cum"])
        cums = [float(r.get_attribute("data-cum"))
                for r in browser.find_elements(_by("CSS_SELECTOR"), "#toptable tbody tr")]
        assert cums == sorted(cums, reverse=True) and _query(browser)["si"] == ["alloc_objects"]
        # A row click selects it for Refine; Ignore then drops it.
        row = browser.find_elements(_by("CSS_SELECTOR"), "#toptable tbody tr")[-1]
        name = row.get_attribute("data-name")
        row.click()
        _open_menu_item(browser, "refine-menu", 'a[data-param="i"]')
        _wait(browser, lambda d: "i" in _query(d))
        names = [r.get_attribute("data-name")
                 for r in browser.find_elements(_by("CSS_SELECTOR"), "#toptable tbody tr")]
        assert name not in names
        browser.save_screenshot(os.path.join(shots, "web-top-heap.png"))


def test_source_line_opens_its_instructions(browser):
    with serving(*CHAIN) as (url, _ui):
        browser.get(url + "/ui/source?f=spin")
        hot = browser.find_element(_by("CSS_SELECTOR"), 'tr.line.hot[data-line="13"]')
        asm = hot.find_element(_by("XPATH"), "following-sibling::tr[1]")
        assert not asm.is_displayed()
        hot.click()
        assert asm.is_displayed() and "add" in asm.text
        # Enter in the search box lists another function.
        search = browser.find_element(_by("ID"), "search")
        search.clear()
        search.send_keys("b_heavy\n")
        _wait(browser, lambda d: _query(d).get("f") == ["b_heavy"])
        assert "b_heavy" in browser.find_element(_by("CSS_SELECTOR"), "section.routine h2").text
