"""The web UI's server: every view's numbers against the CLI's output for
the same options (/ui/top vs --text, /ui/source vs --list, /ui/disasm vs
--disasm, the flame graph's frames vs --collapsed, /ui/download vs
--proto), every URL parameter, errors, concurrency and the report cache.

Servers run in this process on an ephemeral loopback port and are stopped
by the test that started them (webhelpers.serving)."""
import dataclasses
import gzip
import re
import threading
import urllib.parse

import pytest

from helpers import ours, render
from web.webhelpers import (CHAIN, CONTENTION, CXX, DIFF, DIFF_BASE, HEAP, get, json_block, page,
                            parse, serving)

pytestmark = pytest.mark.timeout(180)


def cli(flags, program, profiles):
    """Our pprof's stdout, run as a user runs it."""
    args = list(flags) + ([program] if program else []) + list(profiles)
    r = ours(args)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode("utf-8", "surrogateescape")


def inproc(flag, program, profiles, **fields):
    out, _prepared = render(flag, fields, program, profiles)
    return out if isinstance(out, (bytes, str)) else out


def top_as_text(html):
    """The /ui/top page written out as --text writes its table."""
    doc = parse(html)
    lines = [doc.ids["total"].split(" (")[0]]
    for attrs, cells in doc.rows:
        if "data-name" not in attrs:
            continue
        flat, flat_pct, sum_pct, cum, cum_pct, name = cells
        lines.append("%8s %6s %6s %8s %6s %s" % (flat[0]["data-cli"], flat_pct[1], sum_pct[1],
                                                 cum[0]["data-cli"], cum_pct[1], name[1]))
    return "\n".join(lines) + "\n"


def source_as_list(html):
    """The /ui/source page written out as --list writes it."""
    out = []
    for section in html.split('<section class="routine">')[1:]:
        doc = parse(section)
        head = re.search(r"<h2>(.*?) <span class=\"file\">(.*?)</span></h2>", section)
        totals = re.search(r'<p class="routine-total">(\S+) (\S+) Total (\S+)', section)
        out.append("ROUTINE ====================== %s in %s\n%6s %6s Total %s (flat / cumulative)\n" % (
            parse(head.group(1)).rawdata if False else _unescape(head.group(1)), _unescape(head.group(2)),
            totals.group(1), totals.group(2), totals.group(3)))
        lines = [(a, c) for a, c in doc.rows if "data-line" in a]
        own = [int(a["data-line"]) for a, c in lines if "own" in a["class"].split()]
        for attrs, cells in lines:
            number = int(attrs["data-line"])
            if own and number == own[0]:
                out.append("---\n")
            out.append("%6s %6s %4d: %s\n" % (cells[0][1], cells[1][1], number, cells[3][1]))
            if own and number == own[-1]:
                out.append("---\n")
    return "".join(out)


def disasm_as_text(html):
    """The /ui/disasm page written out as --disasm writes it."""
    out = []
    for section in html.split('<section class="routine">')[1:]:
        doc = parse(section)
        name = _unescape(re.search(r"<h2>(.*?)</h2>", section).group(1))
        t = re.search(r'<p class="routine-total">(\S+) (\S+) (\S+) \(flat, cumulative\) (\S+) of total',
                      section)
        out.append("ROUTINE ====================== %s\n%6s %6s %s (flat, cumulative) %s of total\n"
                   % (name, t.group(1), t.group(2), t.group(3), t.group(4)))
        for attrs, cells in doc.rows:
            kind = attrs.get("class", "").split()
            if "file" in kind:
                out.append("-------------------- %s\n" % cells[0][1])
            elif "line" in kind:
                out.append("%6s %6s %5d: %s\n" % (cells[0][1], cells[1][1], int(cells[2][1]), cells[3][1]))
            elif "insn" in kind:
                out.append("%6s %6s    %8s: %6s\n" % (cells[0][1], cells[1][1], cells[2][1], cells[3][1]))
    return "".join(out)


def _unescape(text):
    import html
    return html.unescape(text)


def flame_as_collapsed(html, signed=False):
    """{"root;...;leaf": self value} from the flame graph's frame data
    (the root "all" left out); differential graphs: the change."""
    data = json_block(html, "flame-data")
    path, result = [], {}
    value_of = (lambda f: f[4]) if signed else (lambda f: f[3])
    frames = data["frames"]
    children = {}
    for i, f in enumerate(frames):
        del path[f[1]:]
        path.append(i)
        if f[1] > 0:
            children.setdefault(path[-2], []).append(i)
    for i, f in enumerate(frames):
        own = value_of(f) - sum(value_of(frames[c]) for c in children.get(i, []))
        if f[1] == 0 or abs(own) < 1e-9:
            continue
        # Rebuild the frame's path from the preorder: the last frame seen
        # at each shallower depth is its ancestor.
        names, depth = [f[0]], f[1]
        for j in range(i - 1, -1, -1):
            if frames[j][1] == depth - 1:
                names.append(frames[j][0])
                depth -= 1
                if depth == 1:
                    break
        result[";".join(reversed(names))] = own
    return result


def collapsed_by_name(text):
    """--collapsed output with pprof's address tags dropped and [inline]
    written as the report keys write it, zero stacks left out."""
    result = {}
    for line in text.splitlines():
        stack, value = line.rsplit(" ", 1)
        names = [re.sub(r"<[0-9a-f]+>$", "", n.replace("[inline]", "")) + (" (inline)" if "[inline]" in n else "")
                 for n in stack.split(";")]
        key = ";".join(names)
        result[key] = result.get(key, 0) + int(value)
    return {k: v for k, v in result.items() if v}


# ---- each view against the CLI ----

def test_top_matches_text_for_cpu():
    with serving(*CXX) as (url, _ui):
        html = page(url + "/ui/top")
    assert top_as_text(html) == cli(["--text"], *CXX)
    # Values in samples and in time (the profile's 10 ms period).
    assert re.search(r'data-cli="20">20 <span class="extra">200ms</span>', html)


@pytest.mark.parametrize("si,flag", [("inuse_space", "--inuse_space"), ("inuse_objects", "--inuse_objects"),
                                     ("alloc_space", "--alloc_space"), ("alloc_objects", "--alloc_objects")])
def test_top_matches_text_for_heap_sample_indexes(si, flag, heap_server):
    url, _ui = heap_server
    html = page(url + "/ui/top?si=" + si)
    expected, _ = render("text", {"sample_index": si}, *HEAP)
    assert top_as_text(html) == expected
    if si.endswith("space"):
        assert re.search(r">\d+(\.\d+)?(MB|kB|B)<", html)      # bytes with units
    # The sample menu marks the current index and links to the others.
    assert re.search(r'data-si="%s" class="current"' % si, html)


@pytest.fixture(scope="module")
def heap_server():
    with serving(*HEAP) as server:
        yield server


def test_contention_sample_indexes():
    with serving(*CONTENTION) as (url, _ui):
        for si in ("total_delay", "contentions", "mean_delay"):
            expected, _ = render("text", {"contention_index": si}, *CONTENTION)
            assert top_as_text(page(url + "/ui/top?si=" + si)) == expected
        status, _h, body = get(url + "/ui/top?si=inuse_space")
        assert status == 400 and b"not a sample index of this contention profile" in body


def test_diff_views_are_signed_and_match_text():
    with serving(*DIFF, base=DIFF_BASE) as (url, _ui):
        html = page(url + "/ui/top")
        expected, _ = render("text", {"base": DIFF_BASE}, *DIFF)
        assert top_as_text(html) == expected
        assert re.search(r">-\d+ <span class=\"extra\">-\d+ms</span>", html)
        assert "base " + DIFF_BASE in html
        flame = page(url + "/ui/flamegraph")
        assert 'id="flame-legend"' in flame and DIFF_BASE in flame
        collapsed, _ = render("collapsed", {"base": DIFF_BASE}, *DIFF)
        assert flame_as_collapsed(flame, signed=True) == collapsed_by_name(collapsed)


def test_source_matches_list():
    with serving(*CHAIN) as (url, _ui):
        html = page(url + "/ui/source?f=spin")
        assert source_as_list(html) == cli(["--list=spin", "--focus=spin"], *CHAIN)
        # Hot lines are shaded by their share: spin's line 13 has all of it.
        assert re.search(r'data-line="13" style="--heat: 1.0"', html)
        assert re.search(r'data-line="10" style="--heat: 0', html)


def test_disasm_matches_disasm():
    with serving(*CHAIN) as (url, _ui):
        html = page(url + "/ui/disasm?f=spin")
    assert disasm_as_text(html) == cli(["--disasm=spin", "--focus=spin"], *CHAIN)


def test_flame_data_matches_collapsed():
    with serving(*CHAIN) as (url, _ui):
        html = page(url + "/ui/flamegraph")
    assert flame_as_collapsed(html) == collapsed_by_name(cli(["--collapsed"], *CHAIN))


def test_flame_data_for_heap_matches_collapsed(heap_server):
    url, _ui = heap_server
    html = page(url + "/ui/flamegraph?si=alloc_objects")
    collapsed, _ = render("collapsed", {"sample_index": "alloc_objects"}, *HEAP)
    assert flame_as_collapsed(html) == collapsed_by_name(collapsed)


def test_graph_is_the_dot_graph_inline():
    from helpers import DotGraph
    with serving(*CXX) as (url, _ui):
        html = page(url + "/ui/")
    assert '<svg id="graph-svg" width="100%" height="100%"' in html and 'viewBox="' in html
    assert '<g id="viewport">' in html
    nodes = json_block(html, "graph-nodes")
    dot = DotGraph(cli(["--dot"], *CXX))
    # Every node of --dot is in the picture, in the same order, clickable
    # by its N number, with a regular expression that focuses on it.
    from pprof_py.render.dot import _dot_label
    from pprof_py.web.views import node_regex
    order = [nodes["N%d" % (i + 1)]["name"] for i in range(len(nodes))]
    assert [_dot_label(name) for name in order] == dot.order
    for number, node in nodes.items():
        assert "<title>%s</title>" % number in html
        assert node["re"] == node_regex(node["name"], "functions")
    mix = [n for n in nodes.values() if n["name"] == "fixture::detail::mix (inline)"]
    assert mix[0]["re"] == r"(?<![\w:])fixture::detail::mix(?![\w:])"   # the function's name


def test_peek_shows_callers_and_callees():
    with serving(*CHAIN) as (url, _ui):
        html = page(url + "/ui/peek?f=^a$")
    doc = parse(html)
    callers = [(c[6][1], a["data-value"]) for a, c in doc.rows if a.get("class") == "caller"]
    callees = sorted((c[6][1], a["data-value"]) for a, c in doc.rows if a.get("class") == "callee")
    assert callers == [("↑ main", "66.0")] or callers == [("↑ main", "66")]
    dot_edges = {k: v for k, v in __import__("helpers").DotGraph(cli(["--dot"], *CHAIN)).edges.items()
                 if k[0] == "a"}
    assert [(name[2:], float(v)) for name, v in callees] == sorted((dst, float(lab[0])) for (src, dst), lab in dot_edges.items())


def test_download_is_the_proto():
    with serving(*CHAIN) as (url, _ui):
        status, headers, body = get(url + "/ui/download?f=b_heavy")
    assert status == 200 and "profile.pb.gz" in headers["Content-Disposition"]
    expected, _ = render("proto", {"focus": "b_heavy"}, *CHAIN)
    assert body == expected and gzip.decompress(body)


# ---- parameters ----

@pytest.mark.parametrize("query,fields", [
    ("f=b_", {"focus": "b_"}),
    ("i=heavy", {"ignore": "heavy"}),
    ("g=lines", {"granularity": "lines"}),
    ("granularity=files", {"granularity": "files"}),
    ("g=addresses", {"granularity": "addresses"}),
    ("sort=cum", {"cum": True}),
    ("f=main&i=light&sort=cum", {"focus": "main", "ignore": "light", "cum": True}),
])
def test_parameters_are_the_cli_options(query, fields, chain_server):
    url, _ui = chain_server
    expected, _ = render("text", fields, *CHAIN)
    assert top_as_text(page(url + "/ui/top?" + query)) == expected


@pytest.fixture(scope="module")
def chain_server():
    with serving(*CHAIN) as server:
        yield server


@pytest.mark.parametrize("param,field,flag", [("h", "hide", "--hide"), ("s", "show", "--show"),
                                               ("sf", "show_from", "--show_from")])
def test_hide_show_show_from(param, field, flag, chain_server):
    url, _ui = chain_server
    for pattern in ("b_heavy", "^(a|spin)$"):
        html = page(url + "/ui/top?%s=%s" % (param, urllib.parse.quote(pattern)))
        assert top_as_text(html) == cli(["--text", "%s=%s" % (flag, pattern)], *CHAIN), (param, pattern)


def test_links_keep_the_state(chain_server):
    url, _ui = chain_server
    html = page(url + "/ui/top?f=main&g=lines")
    # Every view link and menu entry carries the parameters.
    assert 'href="/ui/flamegraph?f=main&amp;g=lines"' in html
    assert 'href="/ui/top?f=main&amp;g=files"' in html
    assert 'href="/ui/download?f=main&amp;g=lines"' in html
    # The chip removes just its filter.
    assert 'href="/ui/top?g=lines" title="Remove"' in html


# ---- errors ----

def test_errors_are_4xx_and_the_server_keeps_serving(chain_server):
    url, _ui = chain_server
    status, _h, body = get(url + "/ui/nosuchview")
    assert status == 404 and b"no such view" in body and b'id="menubar"' in body
    for query, message in [("f=(", b"bad focus regular expression"), ("i=[x", b"bad ignore regular expression"),
                           ("si=alloc_space", b"not a sample index"), ("g=bytes", b"unknown granularity"),
                           ("sort=size", b"expected flat or cum")]:
        status, _h, body = get(url + "/ui/top?" + query)
        assert status == 400 and message in body, (query, body[-600:])
        assert b'id="error"' in body
    # The error page's links keep the good parameters and drop the bad one.
    status, _h, body = get(url + "/ui/top?f=main&i=(")
    assert status == 400 and b'href="/ui/flamegraph?f=main"' in body
    status, _h, _b = get(url + "/ui/static/../server.py")
    assert status == 404
    status, _h, _b = get(url + "/ui/static/nothere.js")
    assert status == 404
    # A focus that matches nothing is not an error: an empty report.
    assert "No nodes to show" in page(url + "/ui/?f=nothing_matches_this")
    assert "No function matches" in page(url + "/ui/source?f=nothing_matches_this")
    assert page(url + "/ui/top")     # still serving


def test_redirect_and_static(chain_server):
    url, _ui = chain_server
    status, headers, _ = get(url + "/ui/static/ui.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert page(url + "/?f=main") == page(url + "/ui/?f=main")     # "/" redirects with the query


@pytest.mark.parametrize("path,shared,user", [("/ui/", "panzoom.js", "graph.js"),
                                              ("/ui/flamegraph", "flamegeom.js", "flame.js")])
def test_shared_scripts_load_before_their_users(path, shared, user, chain_server):
    # panzoom.js and flamegeom.js are also what the --svg and --flame files
    # embed (render/webscripts.py); the pages load them ahead of the view's
    # own script, which calls them.
    from pprof_py.render.webscripts import static_script
    url, _ui = chain_server
    html = page(url + path)
    tag = '<script src="/ui/static/%s"></script>'
    assert tag % shared in html and html.index(tag % shared) < html.index(tag % user)
    status, headers, body = get(url + "/ui/static/" + shared)
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert body.decode() == static_script(shared)


# ---- concurrency and the cache ----

def test_concurrent_requests_give_the_sequential_answers(chain_server):
    url, _ui = chain_server
    paths = ["/ui/", "/ui/top", "/ui/flamegraph", "/ui/peek?f=a", "/ui/source?f=spin",
             "/ui/disasm?f=spin", "/ui/top?g=lines", "/ui/top?f=b_light", "/ui/top?sort=cum"] * 2
    results = [None] * len(paths)

    def fetch(i):
        results[i] = get(url + paths[i])

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for path, result in zip(paths, results):
        assert result is not None and result[0] == 200, path
        assert result[2] == get(url + path)[2], path


def test_a_slow_view_does_not_block_the_others(chain_server):
    from pprof_py.web import views
    url, _ui = chain_server
    entered, release = threading.Event(), threading.Event()
    original = views.HANDLERS["/ui/"]

    def slow(state):
        entered.set()
        release.wait(60)
        return original(state)

    views.HANDLERS["/ui/"] = slow
    try:
        result = []
        t = threading.Thread(target=lambda: result.append(get(url + "/ui/")))
        t.start()
        assert entered.wait(30)
        # While the graph is stuck, the other views answer.
        assert page(url + "/ui/top") and page(url + "/ui/flamegraph")
        assert not result
        release.set()
        t.join(60)
        assert result[0][0] == 200
    finally:
        release.set()
        views.HANDLERS["/ui/"] = original


def test_symbolization_runs_once_per_server(monkeypatch):
    from pprof_py.symbolize import profiles
    calls = []
    original = profiles.name_profiles

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(profiles, "name_profiles", counting)
    with serving(*CHAIN) as (url, ui):
        for query in ("", "?f=a", "?g=lines", "?sort=cum", "?i=b_light", "?h=b_"):
            page(url + "/ui/top" + query)
        page(url + "/ui/source?f=spin")
        page(url + "/ui/flamegraph?s=spin")
        # Equal options (not the same object): the same cached report.
        assert ui.prepared(dataclasses.replace(ui.options)) is ui.prepared(ui.options)
    assert len(calls) == 1


@pytest.mark.parametrize("granularity", ["functions", "lines", "files", "addresses"])
def test_a_selected_node_focuses_on_itself(granularity):
    """The regular expression a click on a node or row puts in the search box
    keeps that node, with its whole cumulative value (every stack through
    it), at every granularity."""
    from pprof_py.web.views import node_regex
    _, full = render("text", {"granularity": granularity}, *CXX)
    for key in sorted(full.cum, key=lambda k: -abs(full.cum[k]))[:12]:
        _, focused = render("text", {"granularity": granularity, "focus": node_regex(key, granularity)}, *CXX)
        assert focused.cum.get(key) == full.cum[key], (granularity, key)


def test_a_selected_node_names_its_routine_for_source_and_disasm(chain_server):
    from pprof_py.web.views import node_regex
    url, _ui = chain_server
    for name in ("main", "spin", "b_heavy"):
        query = urllib.parse.urlencode({"f": node_regex(name, "functions")})
        for view in ("source", "disasm"):
            html = page(url + "/ui/%s?%s" % (view, query))
            titles = re.findall(r"<h2>([^<\s]+)", html)
            assert titles and set(titles) == {name}, (view, name, titles)


def test_heap_source_listing_matches_list(heap_server):
    url, _ui = heap_server
    html = page(url + "/ui/source?f=big_alloc&si=alloc_space")
    expected, _ = render("list", {"output_regex": "big_alloc", "focus": "big_alloc",
                                  "sample_index": "alloc_space"}, *HEAP)
    assert source_as_list(html) == expected and "ROUTINE" in expected
