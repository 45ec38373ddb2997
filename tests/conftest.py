"""Session-wide test settings.

Every run of our pprof (in process or as a subprocess) gets a private,
empty symbol cache, so tests never depend on what an earlier run cached and
never write into the developer's ~/.cache."""
import os

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
