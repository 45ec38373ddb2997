"""The web UI marks names that are only the nearest exported symbol before
a sampled address in a stripped object, as --json does: the
top table, peek, the flame graph's tooltips and the call graph's nodes."""
import json
import re

from helpers import stripped_library_profile as _profile
from web.webhelpers import json_block, page, parse, serving


def test_views_mark_nearest_exported_names(tmp_path):
    prof = _profile(tmp_path, strip=True)
    with serving(None, [prof], use_cache=False) as (url, _ui):
        top = page(url + "/ui/top")
        names = [tr["data-name"] for tr, _cells in parse(top).rows if "data-name" in tr]
        # gperftools' name stays; only the row it wrongly labels is marked
        assert names == ["api_before", "api_entry"], names
        assert 'id="nearest-note"' in top
        marked = re.findall(r'<td class="name">(\w+) <span class="nearest"', top)
        assert marked == ["api_before"], marked

        peek = page(url + "/ui/peek?f=api")
        assert re.findall(r"<b>(\w+)</b> <span class=\"nearest\"", peek) == ["api_before"]
        assert re.findall(r"↑ (\w+) <span class=\"nearest\"", peek) == []

        flame = json_block(page(url + "/ui/flamegraph"), "flame-data")
        labels = {f[0]: f[5] for f in flame["frames"] if f[1] > 0}
        assert "nearest exported symbol" in labels["api_before"]
        assert "nearest exported symbol" not in labels["api_entry"]

        graph = page(url + "/ui/")
        nodes = json.loads(re.search(r'id="graph-nodes">(.*?)</script>', graph, re.S).group(1))
        dashed = re.findall(r'<g id="node\d+" class="node nearest">\n<title>(N\d+) nearest exported symbol: ', graph)
        assert [nodes[t]["name"] for t in dashed] == ["api_before"]
        assert 'id="nearest-note"' in graph


def test_unstripped_objects_are_not_marked(tmp_path):
    prof = _profile(tmp_path, strip=False)
    with serving(None, [prof], use_cache=False) as (url, _ui):
        for view in ("/ui/top", "/ui/", "/ui/peek?f=.", "/ui/flamegraph"):
            body = page(url + view)
            assert 'class="nearest' not in body and "node nearest" not in body, view
            assert "nearest exported symbol" not in body, view
