"""The web UI's views: one function per URL, each turning the request's
parameters into `report.Options`, asking the server for that prepared
report and handing a renderer's view model to a template.  No view
computes numbers of its own: the top table is render/text.py's rows, the
graph is render/dot.py's DOT drawn by graphviz, the flame graph
render/flame.py's frames, source and disassembly render/source.py's and
render/disasm.py's listings, the download render_proto's bytes.

URLs and parameters are Go pprof's, so its users' links and habits carry
over:

    /ui/                call graph (SVG inline; pan, zoom, click to select)
    /ui/top             the --text table (sort=flat|cum)
    /ui/flamegraph      interactive flame graph
    /ui/peek?f=re       callers and callees of the nodes matching re
    /ui/source?f=re     annotated source (--list=re)
    /ui/disasm?f=re     annotated disassembly (--disasm=re)
    /ui/download        the report as profile.proto (gzipped)

    f focus, i ignore, h hide, s show, sf show_from (regular expressions),
    si sample index (heap: inuse_space, inuse_objects, alloc_space,
    alloc_objects; contention: total_delay, contentions, mean_delay),
    g granularity (functions, lines, files, addresses; `granularity=` is
    accepted too), sort (flat, cum).

An empty parameter is the same as none.  A parameter that is malformed
(a bad regular expression, an unknown sample index) is answered with
status 400 and the page shows the error in place of the view.
"""
import dataclasses
import functools
import json
import re
import urllib.parse
from typing import NamedTuple

from pprof_py.errors import PprofError
from pprof_py.render.json import is_nearest_exported, nearest_exported_names
from pprof_py.units import percent
from pprof_py.web.values import Values

# (URL parameter, report.Options field, menu label)
FILTERS = [("f", "focus", "Focus"), ("i", "ignore", "Ignore"), ("h", "hide", "Hide"),
           ("s", "show", "Show"), ("sf", "show_from", "Show from")]
GRANULARITIES = ["functions", "lines", "files", "addresses"]
SAMPLE_INDEXES = {
    "heap": ["inuse_space", "inuse_objects", "alloc_space", "alloc_objects"],
    "growth": ["inuse_space", "inuse_objects", "alloc_space", "alloc_objects"],
    "contention": ["total_delay", "contentions", "mean_delay"],
}
# (path, menu label); the order of the View menu.
VIEWS = [("/ui/", "Graph"), ("/ui/top", "Top"), ("/ui/flamegraph", "Flame Graph"),
         ("/ui/peek", "Peek"), ("/ui/source", "Source"), ("/ui/disasm", "Disassemble")]
# Frames narrower than this share of the total are left out of the flame
# graph's data (they would stay invisible even zoomed in a thousandfold).
FLAME_MIN_SHARE = 1e-6


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: dict = {}


class RequestError(Exception):
    """A malformed request: status 400 and the message in the page.
    `params` names the URL parameters at fault."""

    def __init__(self, message, *params):
        super().__init__(message)
        self.params = params


@functools.lru_cache(maxsize=None)
def env():
    """The templates (autoescaped; a missing variable is an error, not "")."""
    import jinja2
    return jinja2.Environment(loader=jinja2.PackageLoader("pprof_py.web", "templates"),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


def _one(query, name):
    values = query.get(name)
    return values[-1] if values else ""


class State:
    """A request's report parameters (only those given, non-empty).  Every
    link of a page is made from it, so the URL always says what is shown."""

    def __init__(self, ui, path, query):
        self.ui, self.path = ui, path
        self.params = {}
        for param, field, label in FILTERS:
            value = _one(query, param)
            if not value:
                continue
            try:
                re.compile(value)
            except re.error as exc:
                raise RequestError(f"{param}={value}: bad {label.lower()} regular expression: {exc}", param)
            self.params[param] = value
        si = _one(query, "si")
        if si:
            choices = SAMPLE_INDEXES.get(ui.kind, [])
            if si not in choices:
                raise RequestError(f"si={si}: not a sample index of this {ui.kind} profile"
                                   + (f" (one of: {', '.join(choices)})" if choices else " (it has one)"), "si")
            self.params["si"] = si
        g = _one(query, "g") or _one(query, "granularity")
        if g:
            if g not in GRANULARITIES:
                raise RequestError(f"g={g}: unknown granularity (one of: {', '.join(GRANULARITIES)})",
                                   "g", "granularity")
            self.params["g"] = g
        sort = _one(query, "sort")
        if sort:
            if sort not in ("flat", "cum"):
                raise RequestError(f"sort={sort}: expected flat or cum", "sort")
            self.params["sort"] = sort

    def options(self, granularity=None, output_regex=None):
        """report.Options for this request: the command line's options for
        what the URL does not carry (thresholds, --base, library prefixes),
        and the URL for the rest."""
        base = self.ui.options
        changes = dict(granularity="functions", cum=False, stacks=False,
                       sample_index="inuse_space", contention_index="total_delay",
                       output_regex=output_regex, output_path=None, fail_over=None)
        for param, field, _label in FILTERS:
            changes[field] = self.params.get(param) or None
        si = self.params.get("si")
        if si:
            changes["contention_index" if self.ui.kind == "contention" else "sample_index"] = si
        changes["granularity"] = granularity or self.params.get("g", "functions")
        changes["cum"] = self.params.get("sort") == "cum"
        return dataclasses.replace(base, **changes)

    def url(self, path=None, **changes):
        """A link to `path` (this view by default) with some parameters
        changed (None removes one)."""
        params = dict(self.params)
        for k, v in changes.items():
            if v is None or v == "":
                params.pop(k, None)
            else:
                params[k] = v
        query = urllib.parse.urlencode(sorted(params.items()))
        return (path or self.path) + ("?" + query if query else "")


def query_from_options(options):
    """The URL parameters of a command line's options (its start page)."""
    params = {}
    for param, field, _label in FILTERS:
        value = getattr(options, field, None)
        if value:
            params[param] = value
    if options.sample_index != "inuse_space":
        params["si"] = options.sample_index
    if options.contention_index != "total_delay":
        params["si"] = options.contention_index
    if options.granularity != "functions":
        params["g"] = options.granularity
    if options.cum:
        params["sort"] = "cum"
    return sorted(params.items())


def node_regex(key, granularity):
    """A regular expression the filters (which match function names, file:line
    and addresses) accept for exactly this node of a graph or table."""
    if re.fullmatch(r"[0-9a-f]{8}|[0-9a-f]{16}", key):
        return "^" + key + "$"          # a frame nobody could name: its address
    if granularity == "functions":
        # The name, not inside a longer name.  Not anchored with ^...$: the
        # Source and Disassemble views list the routines whose symbol
        # matches, and symbols carry more ("main<401136>", "f(int)", a
        # return type), as --list=<re> matches them.
        name = key[:-len(" (inline)")] if key.endswith(" (inline)") else key
        return r"(?<![\w:])" + re.escape(name) + r"(?![\w:])"
    if granularity == "lines":
        # "name file:line": the filters see file:line on its own.
        return "^" + re.escape(key.rsplit(" ", 1)[-1]) + "$"
    if granularity == "files":
        return "^" + re.escape(key) + ":"
    return "^" + re.escape(key.split(" ", 1)[0]) + "$"


def _page(state, template, status=200, **context):
    ui = state.ui
    sample = SAMPLE_INDEXES.get(ui.kind, [])
    current_si = state.params.get("si") or (sample[0] if sample else "")
    menu = {
        "views": [(label, state.url(path), path == state.path) for path, label in VIEWS],
        "filters": [(param, label, state.params.get(param, "")) for param, field, label in FILTERS],
        "sample": [(si, state.url(si=si), si == current_si) for si in sample],
        "granularity": [(g, state.url(g=g), g == state.params.get("g", "functions"))
                        for g in GRANULARITIES],
        "download": state.url("/ui/download"),
        "reset": state.url(f=None, i=None, h=None, s=None, sf=None),
        "removals": [(label, state.params[param], state.url(**{param: None}))
                     for param, field, label in FILTERS if state.params.get(param)],
    }
    context.setdefault("error", None)
    if state.path in ("/ui/peek", "/ui/source", "/ui/disasm"):
        context.setdefault("search_text", state.params.get("f", ""))
    context.setdefault("notice", None)
    body = env().get_template(template).render(
        menu=menu, state=state, program=ui.program or "", profiles=ui.profiles,
        base=ui.options.base, **context)
    return Response(status, "text/html; charset=utf-8", body.encode("utf-8", "surrogateescape"))


def _error_page(state, status, message):
    return _page(state, "error.html", status, title="Error", error=message)


# ---- the views ----

def graph(state):
    from pprof_py.render.dot import dot_text, graph_model, run_dot
    options = state.options()

    def make(prepared):
        try:
            nodes, _edges, _legend, number = graph_model(prepared, True)
        except PprofError as exc:
            if str(exc) == "No nodes to print":
                return None, {}
            raise
        svg = run_dot(dot_text(prepared, "svg"), "svg", "svg").decode("utf-8", "surrogateescape")
        nearest = _nearest_names(state, options)
        names = {"N%d" % n: {"name": key, "re": node_regex(key, options.granularity)}
                 for key, n in number.items()}
        marked = {title for title, node in names.items() if is_nearest_exported(node["name"], nearest)}
        return _mark_nearest_nodes(_inline_svg(svg), marked), names

    svg, names = state.ui.cached_view(options, "graph", make)
    prepared = state.ui.prepared(options)
    values = Values(prepared)
    return _page(state, "graph.html", title="Graph", svg=svg, nodes_json=_json(names),
                 total=values.label(prepared.total), any_nearest='class="node nearest"' in (svg or ""),
                 notice=None if svg else "No nodes to show: the filters leave nothing.")


def _nearest_names(state, options):
    """The report's names that are only the nearest exported symbol
    (render/json.py), found once per report: every view asks, and finding
    them reads the stripped objects' symbol tables."""
    return state.ui.cached_view(options, "nearest", nearest_exported_names)


def _mark_nearest_nodes(svg, titles):
    """Give the nodes whose name is only the nearest exported symbol
    (graphviz titles them N<number>) the class `nearest`: drawn dashed, with
    the reason in their tooltip."""
    if not titles:
        return svg

    def mark(m):
        if m.group(2) not in titles:
            return m.group(0)
        # The title is the tooltip; graph.js reads the node's number from
        # its first word.
        return ('<g id="%s" class="node nearest">\n<title>%s %s</title>'
                % (m.group(1), m.group(2), NEAREST_EXPORTED_NOTE))
    return re.sub(r'<g id="(node\d+)" class="node">\n<title>(N\d+)</title>', mark, svg)


# Said wherever a name is only the nearest exported symbol (render/json.py).
NEAREST_EXPORTED_NOTE = ("nearest exported symbol: this code lies in a stripped object outside every "
                         "exported function, so the name is the exported function before it, not its own")


def _inline_svg(svg):
    """graphviz's SVG document -> an <svg> element that fills its box
    (viewBox kept, fixed size dropped) with the graph in a <g id="viewport">
    for the pan/zoom script."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'<svg width="[^"]+" height="[^"]+"', '<svg id="graph-svg" width="100%" height="100%"',
                 svg, count=1)
    m = re.search(r'<g id="graph\d+"', svg)
    if m is not None:
        end = svg.rfind("</svg>")
        svg = svg[:m.start()] + '<g id="viewport">' + svg[m.start():end] + "</g>" + svg[end:]
    return svg


def top(state):
    from pprof_py.render.text import text_rows
    options = state.options()
    prepared = state.ui.prepared(options)
    values = Values(prepared)
    total = sum(prepared.flat.values())
    nearest = _nearest_names(state, options)
    rows = []
    for name, f, c, running in text_rows(prepared):
        rows.append({"name": name, "re": node_regex(name, options.granularity),
                     "nearest": is_nearest_exported(name, nearest),
                     "flat": f, "flat_text": values.number(f), "flat_extra": values.extra(f),
                     "flat_cli": values.cli(f), "flat_pct": percent(f, total),
                     "sum_pct": percent(running, total),
                     "cum": c, "cum_text": values.number(c), "cum_extra": values.extra(c),
                     "cum_cli": values.cli(c), "cum_pct": percent(c, total)})
    return _page(state, "top.html", title="Top", rows=rows, values=values,
                 total=values.label(prepared.total), total_cli=values.cli(prepared.total),
                 total_extra=values.extra(prepared.total), nearest_note=NEAREST_EXPORTED_NOTE,
                 any_nearest=any(r["nearest"] for r in rows), sort=state.params.get("sort", "flat"))


def flamegraph(state):
    from pprof_py.render.flame import diff_color, flame_frames, frame_color, is_differential
    options = state.options()

    def make(prepared):
        values = Values(prepared)
        frames = flame_frames(prepared)
        root = frames[0].width if frames else 0
        diff = is_differential(prepared)
        # The colours are the --flame SVG's (render/flame.py).
        max_delta = max((abs(f.delta) for f in frames if diff and f.depth > 0), default=0)
        nearest = _nearest_names(state, options)
        data = []
        skip_below = None       # the depth of a frame left out: its descendants go too
        for fr in frames:
            if skip_below is not None:
                if fr.depth > skip_below:
                    continue
                skip_below = None
            # Differential graphs keep frames that only the base has (width 0).
            if fr.depth > 0 and root and fr.width < root * FLAME_MIN_SHARE and not (diff and fr.delta):
                skip_below = fr.depth
                continue
            label = values.label(fr.value)
            if diff:
                label += ", change " + values.label(fr.delta)
            if fr.depth > 0 and is_nearest_exported(fr.name, nearest):
                label += "; name is the " + NEAREST_EXPORTED_NOTE
            color = diff_color(fr.delta, max_delta) if diff else frame_color(fr.name)
            data.append([fr.name, fr.depth, fr.x, fr.width, fr.delta if diff else 0, label, color])
        return {"frames": data, "total": root, "diff": diff, "total_label": values.label(root)}

    data = state.ui.cached_view(options, "flame", make)
    return _page(state, "flame.html", title="Flame Graph", flame_json=_json(data),
                 diff=data["diff"], total=data["total_label"])


def peek(state):
    from pprof_py.graph import translate_stack
    pattern = state.params.get("f")
    if not pattern:
        return _page(state, "peek.html", title="Peek", entries=[],
                     notice="Peek shows the callers and callees of the nodes matching a regular "
                            "expression: type one in the search box (or select nodes) and choose Peek.")
    options = state.options()
    prepared = state.ui.prepared(options)
    values = Values(prepared)
    regex = re.compile(pattern)
    total = sum(prepared.flat.values())
    from pprof_py.render.text import text_rows
    matched = [(name, f, c) for name, f, c, _r in text_rows(prepared) if regex.search(name)]
    wanted = {name for name, _f, _c in matched}
    callers = {name: {} for name in wanted}
    callees = {name: {} for name in wanted}
    memo = {}
    # The edges of the graph around each node (render/dot.py weighs the
    # call graph's edges the same way): each stack adds its value once to
    # every (caller, node) and (node, callee) pair it contains.
    for stack, value in prepared.profile.items():
        keys = translate_stack(stack, prepared.symbols, options.granularity, prepared.width,
                               options.show_addresses, memo)
        seen = set()
        for j, key in enumerate(keys):
            if key not in wanted:
                continue
            if j + 1 < len(keys) and (key, "in", keys[j + 1]) not in seen:
                seen.add((key, "in", keys[j + 1]))
                callers[key][keys[j + 1]] = callers[key].get(keys[j + 1], 0) + value
            if j > 0 and (key, "out", keys[j - 1]) not in seen:
                seen.add((key, "out", keys[j - 1]))
                callees[key][keys[j - 1]] = callees[key].get(keys[j - 1], 0) + value

    nearest = _nearest_names(state, options)

    def edge_rows(edges, node_cum):
        return [{"name": k, "re": node_regex(k, options.granularity), "value": v,
                 "nearest": is_nearest_exported(k, nearest),
                 "text": values.number(v), "extra": values.extra(v), "pct": percent(v, node_cum)}
                for k, v in sorted(edges.items(), key=lambda kv: (-abs(kv[1]), kv[0]))]

    entries = [{"name": name, "nearest": is_nearest_exported(name, nearest), "flat_text": values.number(f), "flat_pct": percent(f, total),
                "cum_text": values.number(c), "cum_pct": percent(c, total), "flat": f, "cum": c,
                "flat_extra": values.extra(f), "cum_extra": values.extra(c),
                "callers": edge_rows(callers[name], c), "callees": edge_rows(callees[name], c)}
               for name, f, c in matched]
    return _page(state, "peek.html", title="Peek", entries=entries, values=values,
                 nearest_note=NEAREST_EXPORTED_NOTE,
                 any_nearest=any(e["nearest"] or any(c["nearest"] for c in e["callers"] + e["callees"])
                                 for e in entries),
                 total=values.label(prepared.total),
                 notice=None if entries else f"No node matches {pattern}.")


def _listing_page(state, template, title, action, items_name, make):
    """The source and disassembly pages: the functions matching the search
    box (`f=`), each made into a view by make(prepared, options) once per
    set of options (cached like the other views)."""
    pattern = state.params.get("f")
    if not pattern:
        return _page(state, template, title=title, **{items_name: []},
                     notice="Type a regular expression naming functions in the search box "
                            f"(or select nodes) and choose {action}.")
    options = state.options(granularity="addresses", output_regex=pattern)
    items = state.ui.cached_view(options, items_name, lambda prepared: make(prepared, options))
    prepared = state.ui.prepared(options)
    values = Values(prepared)
    return _page(state, template, title=title, unit=values.unit, total=values.label(prepared.total),
                 notice=None if items else f"No function matches {pattern}.", **{items_name: items})


def source(state):
    from pprof_py.render.listing import clean_file_name
    from pprof_py.render.source import each_listing
    from pprof_py.symbolize import short_function_name

    def make(prepared, options):
        values = Values(prepared)
        out = []
        for li in each_listing(prepared):
            rows = []
            top_value = max([abs(v) for v in list(li.flat.values()) + list(li.cum.values())] or [0])
            for number, text in li.shown_lines() if li.lines is not None else ():
                own = li.firstline <= number <= li.lastline
                f, c = li.flat.get(number, 0), li.cum.get(number, 0)
                insns = [(_dot(values, c1), _dot(values, c2), _address(li.offset, e[0]), _asm(e[3]))
                         for e, c1, c2 in (li.insns.get(number, []) if own else [])]
                rows.append({"number": number, "text": text, "own": own,
                             "flat": _dot(values, f), "cum": _dot(values, c),
                             "heat": _heat(max(abs(f), abs(c)), top_value), "insns": insns})
            out.append({"name": short_function_name(li.routine, options.strip_templates),
                        "file": clean_file_name(li.filename),
                        "flat": values.cli(li.total_flat), "cum": values.cli(li.total_cum),
                        "missing": li.lines is None, "rows": rows})
        return out
    return _listing_page(state, "source.html", "Source", "Source", "listings", make)


def disasm(state):
    from pprof_py.render.disasm import disasm_routines

    def make(prepared, options):
        values = Values(prepared)
        out = []
        for r in disasm_routines(prepared):
            top_value = max([max(abs(g[3]), abs(g[4])) for g in r.groups] or [0])
            groups = []
            for header, line_no, text, f, c, rows in r.groups:
                groups.append({"header": header, "line": line_no,
                               "text": text.rstrip("\n") if text is not None else None,
                               "flat": _dot(values, f), "cum": _dot(values, c),
                               "heat": _heat(max(abs(f), abs(c)), top_value),
                               "rows": [(_dot(values, a), _dot(values, b), addr, asm,
                                         _heat(max(abs(a), abs(b)), top_value))
                                        for a, b, addr, asm in rows]})
            out.append({"name": r.name, "flat": values.cli(r.flat), "cum": values.cli(r.cum),
                        "share": r.share, "groups": groups})
        return out
    return _listing_page(state, "disasm.html", "Disassembly", "Disassemble", "routines", make)


def download(state):
    from pprof_py.render.proto import render_proto
    options = state.options()
    data = state.ui.cached_view(options, "proto", render_proto)
    return Response(200, "application/octet-stream", data,
                    {"Content-Disposition": 'attachment; filename="profile.pb.gz"'})


def _dot(values, v):
    return "." if v == 0 else values.cli(v)


def _heat(value, top):
    """0..1: how strongly a listing line is shaded."""
    return round(value / top, 3) if top else 0


def _address(offset, address):
    from pprof_py.render.listing import unparse_address
    return unparse_address(offset, address)


def _asm(text):
    from pprof_py.render.listing import clean_disassembly
    return clean_disassembly(text)


def _json(data):
    """JSON for a <script type="application/json"> block ("</" cannot end it)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


HANDLERS = {"/ui/": graph, "/ui/top": top, "/ui/flamegraph": flamegraph, "/ui/peek": peek,
            "/ui/source": source, "/ui/disasm": disasm, "/ui/download": download}


def handle(ui, path, query):
    view = HANDLERS.get(path)
    try:
        state = State(ui, path if view else "/ui/", query)
    except RequestError as exc:
        # A bad parameter: show the error, with a menu whose links keep the
        # good parameters and drop the bad ones.
        good = dict(query)
        while True:
            try:
                state = State(ui, path if view else "/ui/", good)
                break
            except RequestError as again:
                for name in again.params or list(good):
                    good.pop(name, None)
        return _error_page(state, 400, str(exc))
    if view is None:
        return _error_page(state, 404, f"{path}: no such view (the views are "
                                       + ", ".join(p for p, _ in VIEWS) + ", /ui/download)")
    try:
        return view(state)
    except (RequestError, PprofError) as exc:
        return _error_page(state, 400, str(exc))
