"""Session-wide test settings.

Every run of our pprof (in process or as a subprocess) gets a private,
empty symbol cache, so tests never depend on what an earlier run cached and
never write into the developer's ~/.cache; and a private registry of
running web UI servers (pprof_py/web/registry.py), so `--web` in a test
never finds the developer's own `pprof --http`."""
import os
import shutil
import tempfile

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_symbol_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("symbol-cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session", autouse=True)
def private_server_registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("runtime")
    os.chmod(path, 0o700)
    old = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = old


# ---- headless Chromium for the browser tests (flame graph, weblist) ----
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed (pip install selenium)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            pytest.fail("%s is missing (apt-get install chromium chromium-driver)" % path)
    profile = tempfile.mkdtemp(prefix="pprof-chromium.")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,600",
                "--user-data-dir=" + profile):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
