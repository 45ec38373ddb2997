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


def _private_folder(tmp_path_factory, name, variable):
    """A fresh folder in $variable for the whole session, then the old value back."""
    path = tmp_path_factory.mktemp(name)
    os.chmod(path, 0o700)
    old = os.environ.get(variable)
    os.environ[variable] = str(path)
    yield path
    if old is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = old


@pytest.fixture(scope="session", autouse=True)
def private_symbol_cache(tmp_path_factory):
    yield from _private_folder(tmp_path_factory, "symbol-cache", "XDG_CACHE_HOME")


@pytest.fixture(scope="session", autouse=True)
def private_server_registry(tmp_path_factory):
    yield from _private_folder(tmp_path_factory, "runtime", "XDG_RUNTIME_DIR")


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
