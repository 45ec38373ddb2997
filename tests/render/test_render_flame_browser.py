"""The flame graph in a real browser: headless Chromium driven by selenium
loads the SVG from a file:// URL, then we click a frame (zoom), search with
a regular expression (highlight and matched percentage) and reset.

Needs the Debian packages chromium and chromium-driver and the pip package
selenium (CI installs them; see docs/graphs.md); the `browser` fixture is in
conftest.py."""
import os

import pytest

from helpers import DATA, render

SAMPLE = os.path.join(DATA, "sample.folded")
pytestmark = pytest.mark.timeout(120)


def _frame(driver, name):
    from selenium.webdriver.common.by import By
    for g in driver.find_elements(By.CSS_SELECTOR, "#frames > g.f"):
        title = g.find_element(By.TAG_NAME, "title").get_attribute("textContent")
        if title.split("\n")[0] == name:
            return g
    raise AssertionError("no frame named %r" % name)


def test_click_zoom_search_reset(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.webdriver.support import expected_conditions

    svg, _ = render("flame", {}, None, [SAMPLE])
    path = tmp_path / "flame.svg"
    path.write_bytes(svg)
    browser.get("file://" + str(path))

    rect = lambda name: _frame(browser, name).find_element(By.TAG_NAME, "rect")
    before = float(rect("handle_request").get_attribute("width"))
    full = float(rect("all").get_attribute("width"))
    assert 0 < before < full

    # Click: handle_request fills the width, its callers stay (dimmed),
    # frames outside it disappear, and its children grow.
    child_before = float(rect("render_template").get_attribute("width"))
    rect("handle_request").click()
    assert float(rect("handle_request").get_attribute("width")) == pytest.approx(full, abs=0.01)
    assert float(rect("render_template").get_attribute("width")) > child_before
    assert "gone" in _frame(browser, "load_configuration").get_attribute("class")
    assert "dim" in _frame(browser, "main").get_attribute("class")
    assert browser.find_element(By.ID, "reset").is_displayed()

    # Search: "render|escape" matches render_template (45 samples) and the
    # escape_html inside it; the union is 45 of 150 samples.
    browser.find_element(By.ID, "search").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present())
    alert = browser.switch_to.alert
    alert.send_keys("render|escape")
    alert.accept()
    highlighted = browser.find_elements(By.CSS_SELECTOR, "#frames > g.f.hl")
    names = sorted(g.find_element(By.TAG_NAME, "title").get_attribute("textContent").split("\n")[0]
                   for g in highlighted)
    assert names == ["escape_html", "render_template"]
    assert browser.find_element(By.ID, "matched").text == "Matched: 30.00%"
    fill = browser.execute_script(
        "return getComputedStyle(arguments[0]).fill;", rect("escape_html"))
    assert fill == "rgb(220, 0, 220)"

    # Reset zoom: widths come back, the search stays.
    browser.find_element(By.ID, "reset").click()
    assert float(rect("handle_request").get_attribute("width")) == pytest.approx(before, abs=0.01)
    assert "gone" not in _frame(browser, "load_configuration").get_attribute("class")
    assert browser.find_element(By.ID, "matched").text == "Matched: 30.00%"


def test_call_graph_svg_pans_and_zooms(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from helpers import localize
    localize()
    svg, _ = render("svg", {}, "fixtures/bin/chain", ["fixtures/local/profiles/chain.cpu.prof"])
    path = tmp_path / "callgraph.svg"
    path.write_bytes(svg)
    browser.get("file://" + str(path))
    viewport = browser.find_element(By.ID, "viewport")
    assert viewport.get_attribute("transform") == "translate(0,0)"
    # Wheel up over the picture zooms in around the pointer.
    browser.execute_script("""
        document.documentElement.dispatchEvent(new WheelEvent("wheel",
            {deltaY: -300, clientX: 200, clientY: 150, bubbles: true, cancelable: true}));""")
    zoomed = viewport.get_attribute("transform")
    scale = float(zoomed.split("scale(")[1].rstrip(")"))
    assert scale > 1.2
    # Dragging pans.
    browser.execute_script("""
        var svg = document.documentElement;
        svg.dispatchEvent(new MouseEvent("mousedown", {button: 0, clientX: 100, clientY: 100, bubbles: true}));
        window.cursorWhileDragging = svg.style.cursor;
        svg.dispatchEvent(new MouseEvent("mousemove", {clientX: 160, clientY: 130, bubbles: true}));
        svg.dispatchEvent(new MouseEvent("mouseup", {clientX: 160, clientY: 130, bubbles: true}));""")
    panned = viewport.get_attribute("transform")
    # No style sheet here: the script shows the move cursor while dragging.
    assert browser.execute_script("return [window.cursorWhileDragging, document.documentElement.style.cursor]") \
        == ["move", ""]
    assert panned != zoomed and ("scale(%s)" % zoomed.split("scale(")[1].rstrip(")")) in panned
    # Double-click resets.
    browser.execute_script("""document.documentElement.dispatchEvent(
        new MouseEvent("dblclick", {bubbles: true}));""")
    assert viewport.get_attribute("transform") == "translate(0,0) scale(1)"
    # "+" and "-" zoom in and out, "0" fits again.
    key = "document.dispatchEvent(new KeyboardEvent('keydown', {key: arguments[0], bubbles: true}))"
    browser.execute_script(key, "+")
    assert viewport.get_attribute("transform") == "translate(0,0) scale(1.25)"
    browser.execute_script(key, "-")
    browser.execute_script(key, "-")
    assert viewport.get_attribute("transform") == "translate(0,0) scale(0.8)"
    browser.execute_script(key, "0")
    assert viewport.get_attribute("transform") == "translate(0,0) scale(1)"


def test_call_graph_svg_opens_fitted_to_the_window(browser, tmp_path):
    from helpers import localize
    localize()
    svg, _ = render("svg", {}, "fixtures/bin/cxx", ["fixtures/local/profiles/cxx.cpu.prof"])
    path = tmp_path / "callgraph.svg"
    path.write_bytes(svg)
    browser.get("file://" + str(path))
    # The whole graph (taller than the window) is on screen at once.
    box = browser.execute_script(
        "var r = document.getElementById('graph0').getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight, r.left, r.right, window.innerWidth];")
    top, bottom, height, left, right, width = box
    assert top >= -1 and bottom <= height + 1 and left >= -1 and right <= width + 1
    assert bottom - top > height * 0.9 or right - left > width * 0.9


def test_flame_svg_fits_the_window_and_keeps_its_buttons(browser, tmp_path):
    from selenium.webdriver.common.by import By
    svg, _ = render("flame", {}, None, [SAMPLE])
    path = tmp_path / "flame.svg"
    path.write_bytes(svg)
    for width in (900, 1600):
        browser.set_window_size(width, 300)
        browser.get("file://" + str(path))
        inner = browser.execute_script("return window.innerWidth")
        root = _frame(browser, "all").find_element(By.TAG_NAME, "rect")
        # The root frame spans the window, less the margins (and a scroll bar).
        assert inner - 40 <= float(root.get_attribute("width")) <= inner
    # Scrolled down, the search button and the reset button are in view.
    browser.set_window_size(900, 120)
    browser.get("file://" + str(path))
    browser.execute_script("window.flameGraph.search(/render/)")
    # (A resized headless window may not deliver the scroll event itself.)
    browser.execute_script("window.scrollTo(0, 1000); window.dispatchEvent(new Event('scroll'));")
    scroll = browser.execute_script("return window.scrollY")
    assert scroll > 0
    from selenium.webdriver.support.ui import WebDriverWait

    def in_view(button):
        r = browser.execute_script(
            "var r = document.getElementById(arguments[0]).getBoundingClientRect();"
            "return [r.top, r.bottom, window.innerHeight];", button)
        return 0 <= r[0] and r[1] <= r[2]

    for button in ("search", "search-reset"):
        WebDriverWait(browser, 10).until(lambda d: in_view(button))
    browser.find_element(By.ID, "search-reset").click()
    assert not browser.find_elements(By.CSS_SELECTOR, "#frames > g.f.hl")
    browser.set_window_size(1280, 600)
