"""Call graphs: `--dot`, and the pictures graphviz's `dot` draws from it
(`--svg`, `--pdf`, `--ps`, `--png`, `--gif`), and the viewers (`--gv`,
`--evince`, `--web`).

`dot_text` follows gperftools' pprof (PrintDot) rule for rule:

* nodes: the keys at the report granularity, sorted by |cumulative| (then
  by name); at most --nodecount of them, dropping from the end those whose
  |cumulative| is <= --nodefraction * total.  A node's label is its name
  (whitespace and "::" start new lines), its flat value and percentage and,
  when flat != cumulative, "of <cum> (<pct>)"; the font size grows with the
  square root of the flat share (8 to 58 points);
* edges: for every stack, each adjacent (caller, callee) pair of kept
  nodes, weighted by the stack's value.  They are considered by decreasing
  weight; an edge is kept when its callee has no incoming edge yet (so
  every node stays reachable), otherwise only when its weight is above
  --edgefraction * total and neither end already has --maxdegree edges.
  Line width grows with the edge's share, the layout weight is
  weight ** 0.7, and edges into inlined frames are dashed;
* a "Legend" node with the program, the total, the focused total and the
  thresholds used.

Ties between equal edge weights are broken by node numbers (pprof leaves
them in hash order), so the output is deterministic.
"""
import os
import re
import shutil
import subprocess
import tempfile

from pprof_py.errors import PprofError
from pprof_py.render.escaping import visible
from pprof_py.graph import translate_stack
from pprof_py.units import percent, unparse, units

DOT_MISSING = ("graphviz's `dot` program is not installed (needed for --%s); "
               "install it with: apt-get install graphviz")


def _perl_sort_key(name):
    return name.encode("utf-8", "surrogateescape")


def _translated(prepared, stack, memo):
    opts = prepared.options
    return translate_stack(stack, prepared.symbols, opts.granularity, prepared.width,
                           opts.show_addresses, memo)


def graph_model(prepared, svg_widths=False):
    """The call graph as data: (nodes, edges, legend).

    nodes: [(key, flat, cum, fontsize)] in node-number order (N1 first);
    edges: [(src key, dst key, weight, layout weight, line width, dashed)]
    in output order; legend: dict of the header values.
    """
    opts = prepared.options
    flat, cum = prepared.flat, prepared.cum
    local_total = sum(flat.values())
    nodelimit = int(opts.nodefraction * local_total)
    edgelimit = int(opts.edgefraction * local_total)

    ordered = sorted(cum, key=lambda k: (-abs(cum.get(k, 0)), _perl_sort_key(k)))
    last = min(opts.nodecount - 1, len(ordered) - 1)
    while last >= 0 and abs(cum.get(ordered[last], 0)) <= nodelimit:
        last -= 1
    if last < 0:
        raise PprofError("No nodes to print")

    nodes = []
    number = {}
    for key in ordered[:last + 1]:
        f = flat.get(key, 0)
        fs = 8.0
        if local_total > 0:
            fs = 8 + 50.0 * (abs(f * 1.0 / local_total) ** 0.5)
        number[key] = len(nodes) + 1
        nodes.append((key, f, cum.get(key, 0), fs))

    weights = {}
    memo = {}
    for stack, value in prepared.profile.items():
        keys = _translated(prepared, stack, memo)
        for i in range(1, len(keys)):
            src, dst = keys[i], keys[i - 1]
            if src in number and dst in number:
                weights[(src, dst)] = weights.get((src, dst), 0) + value

    indegree, outdegree = {}, {}
    edges = []
    for (src, dst) in sorted(weights, key=lambda e: (-weights[e], number[e[0]], number[e[1]])):
        n = weights[(src, dst)]
        outdegree.setdefault(src, 0)
        indegree.setdefault(dst, 0)
        if indegree[dst] == 0:
            keep = True
        elif abs(n) <= edgelimit:
            keep = False
        elif outdegree[src] >= opts.maxdegree or indegree[dst] >= opts.maxdegree:
            keep = False
        else:
            keep = True
        if not keep:
            continue
        outdegree[src] += 1
        indegree[dst] += 1
        fraction = abs(3 * (n / local_total)) if local_total else 0
        fraction = min(fraction, 1)
        w = fraction * 2
        if w < 1 and svg_widths:
            w = 1            # SVG renders line widths below 1 poorly
        edgeweight = min(abs(n) ** 0.7, 100000)
        edges.append((src, dst, n, int(edgeweight), w, "(inline)" in dst))
    legend = {"total": prepared.total, "local_total": local_total,
              "nodelimit": nodelimit, "edgelimit": edgelimit}
    return nodes, edges, legend, number


def dot_string(text):
    """`text` inside a double-quoted DOT string, shown as written: in DOT a
    backslash starts an escape (\\n, \\l, \\N...) and a quote ends the
    string, so both are escaped (a name could otherwise close the label and
    add attributes, e.g. a javascript: URL to the SVG); control characters
    and undecodable bytes are shown as `cat -v` does (dot rejects some, and
    would copy others into SVG, where XML forbids them)."""
    return visible(text, keep_layout=False).replace("\\", "\\\\").replace('"', '\\"')


def _dot_label(key):
    # Each run of whitespace, and each "::", starts a new line.
    return "\\n".join(dot_string(part) for part in re.split(r"\s+|::", key))


def program_name(prepared):
    """The program named on the command line or, for a symbolized (--raw)
    profile, the one its "binary=" line names (as pprof does)."""
    return prepared.program_name


def dot_text(prepared, fmt="dot"):
    opts = prepared.options
    kind = prepared.kind
    svg_widths = fmt in ("svg", "web")
    nodes, edges, legend, number = graph_model(prepared, svg_widths)
    u = units(kind, opts)

    def un(v):
        return unparse(v, kind, opts)

    if legend["nodelimit"] > 0 or legend["edgelimit"] > 0:
        prepared.notes.append("Dropping nodes with <= %s %s; edges with <= %s abs(%s)"
                              % (un(legend["nodelimit"]), u, un(legend["edgelimit"]), u))
    prog = dot_string(program_name(prepared))
    local_total = legend["local_total"]
    out = ['digraph "%s; %s %s" {' % (prog, un(prepared.total), u)]
    if fmt == "pdf":
        out.append('size="8,11"')
    out.append("node [width=0.375,height=0.25];")
    out.append('Legend [shape=box,fontsize=24,shape=plaintext,label="%s\\l%s\\l%s\\l%s\\l%s\\l"];' % (
        prog,
        "Total %s: %s" % (u, un(prepared.total)),
        "Focusing on: %s" % un(local_total),
        "Dropped nodes with <= %s abs(%s)" % (un(legend["nodelimit"]), u),
        "Dropped edges with <= %s %s" % (un(legend["edgelimit"]), u)))
    for key, f, c, fs in nodes:
        extra = ""
        if f != c:
            extra = "\\rof %s (%s)" % (un(c), percent(c, local_total))
        style = ""
        if opts.heapcheck:
            # pprof's --heapcheck: direct leak sites (own objects) get a grey
            # background, the rare negative ones a triple border.
            if f > 0:
                style = ",style=filled,fillcolor=gray"
            elif f < 0:
                style = ",peripheries=3"
        out.append('N%d [label="%s\\n%s (%s)%s\\r",shape=box,fontsize=%.1f%s];' % (
            number[key], _dot_label(key), un(f), percent(f, local_total), extra, fs, style))
    for src, dst, n, edgeweight, w, dashed in edges:
        style = "setlinewidth(%f)" % w
        if dashed:
            style += ",dashed"
        out.append('N%s -> N%s [label=%s, weight=%d, style="%s"];' % (
            number[src], number[dst], un(n), edgeweight, style))
    out.append("}")
    return "\n".join(out) + "\n"


def render_dot(prepared):
    return dot_text(prepared, "dot")


def run_dot(dot_source, graphviz_format, flag):
    exe = shutil.which("dot")
    if exe is None:
        raise PprofError(DOT_MISSING % flag)
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", "0")     # reproducible PDF metadata
    try:
        proc = subprocess.run([exe, "-T" + graphviz_format], input=dot_source.encode("utf-8", "surrogateescape"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        raise PprofError(f"cannot run {exe}: {exc.strerror}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PprofError("dot -T%s failed (exit %d)%s" % (graphviz_format, proc.returncode,
                                                         ": " + detail[0] if detail else ""))
    return proc.stdout


_GRAPHVIZ_FORMAT = {"svg": "svg", "ps": "ps2", "pdf": "pdf", "png": "png", "gif": "gif"}


def render_image(prepared, fmt):
    source = dot_text(prepared, fmt)
    data = run_dot(source, _GRAPHVIZ_FORMAT[fmt], fmt)
    if fmt == "svg":
        from pprof_py.render.svgpan import make_pannable
        data = make_pannable(data)
    elif fmt == "pdf":
        data = _fixed_pdf_dates(data)
    return data


def _fixed_pdf_dates(data):
    """cairo stamps the PDF with the current time; replace it with a fixed
    date of the same length (the cross-reference offsets stay valid), so the
    output is the same on every run."""
    return re.sub(rb"/(CreationDate|ModDate) \(D:(\d{14})",
                  lambda m: b"/" + m.group(1) + b" (D:19700101000000", data)


_VIEWERS = {
    # flag: (file format, candidate programs)
    "gv": ("ps", ["gv"]),
    "evince": ("pdf", ["evince", "xdg-open"]),
    "web": ("svg", ["xdg-open", "x-www-browser", "sensible-browser", "firefox",
                    "chromium", "google-chrome"]),
}


def has_display(environ=None):
    environ = os.environ if environ is None else environ
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def render_viewer(prepared, flag):
    fmt, programs = _VIEWERS[flag]
    data = render_image(prepared, fmt)
    fd, path = tempfile.mkstemp(prefix="pprof.", suffix="." + fmt)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if not has_display():
        raise PprofError(f"no display (DISPLAY/WAYLAND_DISPLAY not set) for --{flag}; "
                         f"the {fmt.upper()} file is at {path}")
    for program in programs:
        exe = shutil.which(program)
        if exe is None:
            continue
        prepared.notes.append(f"Opening {path} with {program}")
        argv = [exe, path]
        if program == "gv":
            # as gperftools' RunGV (for gv versions with long options):
            # --scale from pprof's --scale, and no antialiasing, which gv
            # gets wrong on large PostScript pages
            argv = [exe, "--scale=%d" % getattr(prepared.options, "scale", 0), "--noantialias", path]
        # Detach: the viewer may outlive us; the file stays for it to read.
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        return b""
    raise PprofError(f"no viewer for --{flag} found (tried {', '.join(programs)}); "
                     f"the {fmt.upper()} file is at {path}")
