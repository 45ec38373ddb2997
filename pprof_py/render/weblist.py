"""`--weblist=<regexp>` (and the shell's `weblist`): the `--list` source
listing as one self-contained HTML page; clicking a source line shows the
machine instructions whose samples that line received, like gperftools'
pprof's `weblist` command.

The numbers are exactly `--list`'s (render/source.py computes both): each
line's flat and cumulative values, and under it the instructions that
contributed them, with their own values and their disassembly (capstone,
objdump style).  Instructions outside the routine's own lines pass their
values on to the next line inside them, as in pprof, and are shown under
that line.  No network and no external scripts; the output is
deterministic byte for byte.
"""
from pprof_py.render.escaping import xml_text
from pprof_py.render.listing import clean_disassembly, clean_file_name, unparse_address
from pprof_py.render.source import each_listing
from pprof_py.symbolize import short_function_name
from pprof_py.units import unparse, units

_STYLE = """
body { font-family: sans-serif; margin: 1em; }
h1 { font-size: 1.2em; }
h2 { font-size: 1em; margin-top: 2em; }
pre { margin: 0; }
table.listing { border-collapse: collapse; font-family: monospace; white-space: pre; }
table.listing td { padding: 0 .6em 0 0; vertical-align: top; }
td.num { text-align: right; color: #555; }
th { text-align: right; font-weight: normal; color: #888; padding-right: .6em; }
th:last-child { text-align: left; }
tr.own td.src { background: #f4f4f4; }
tr.hot { cursor: pointer; }
tr.hot td.src { color: #000; font-weight: bold; }
tr.hot:hover td { background: #ffeebb; }
tr.asm { display: none; }
tr.asm.open { display: table-row; }
tr.asm td { color: #234; background: #eef4fb; }
p.note { color: #666; }
"""

_SCRIPT = """
document.addEventListener('click', function (ev) {
  var row = ev.target.closest('tr.hot');
  if (!row) return;
  var asm = document.getElementById(row.getAttribute('data-asm'));
  if (asm) asm.classList.toggle('open');
});
"""


def _value(v, prepared):
    return "." if v == 0 else unparse(v, prepared.kind, prepared.options)


def render_weblist(prepared):
    kind, opts = prepared.kind, prepared.options
    esc = xml_text         # well-formed for any name or source line
    out = ["<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n",
           "<title>%s</title>\n" % esc("pprof weblist " + (opts.output_regex or "")),
           "<style>%s</style>\n</head>\n<body>\n" % _STYLE,
           "<h1>%s</h1>\n" % esc("%s: source of routines matching %s (click a line for its instructions)"
                                 % (prepared.program or "profile", opts.output_regex)),
           "<p class=\"note\">Total: %s %s</p>\n" % (esc(unparse(prepared.total, kind, opts)),
                                                     esc(units(kind, opts)))]
    block = 0
    for li in each_listing(prepared):
        block += 1
        out.append("<h2>%s</h2>\n" % esc("ROUTINE %s in %s" % (
            short_function_name(li.routine, opts.strip_templates), clean_file_name(li.filename))))
        out.append("<p class=\"note\">%s %s Total %s (flat / cumulative)</p>\n" % (
            esc(unparse(li.total_flat, kind, opts)), esc(unparse(li.total_cum, kind, opts)),
            esc(units(kind, opts))))
        if li.lines is None:
            prepared.notes.append(f"{li.filename}: No such file or directory")
            out.append("<p class=\"note\">%s</p>\n" % esc(f"{li.filename}: No such file or directory"))
            continue
        out.append("<table class=\"listing\">\n<tr><th>flat</th><th>cum</th><th>line</th><th>source</th></tr>\n")
        for l, text in li.shown_lines():
            own = li.firstline <= l <= li.lastline
            insns = li.insns.get(l) if own else None
            row_id = "a%d_%d" % (block, l)
            classes = " ".join(c for c in ("own" if own else "", "hot" if insns else "") if c)
            attrs = (" class=\"%s\"" % classes if classes else "") + (
                " data-asm=\"%s\"" % row_id if insns else "")
            out.append("<tr%s><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%d</td>"
                       "<td class=\"src\">%s</td></tr>\n" % (
                           attrs, esc(_value(li.flat.get(l, 0), prepared)),
                           esc(_value(li.cum.get(l, 0), prepared)), l, esc(text)))
            if insns:
                out.append("<tr class=\"asm\" id=\"%s\"><td colspan=\"4\"><pre>" % row_id)
                for e, c1, c2 in insns:
                    out.append(esc("%6s %6s %8s: %s" % (_value(c1, prepared), _value(c2, prepared),
                                                         unparse_address(li.offset, e[0]),
                                                         clean_disassembly(e[3]))) + "\n")
                out.append("</pre></td></tr>\n")
        out.append("</table>\n")
    if block == 0:
        out.append("<p class=\"note\">No routine matched.</p>\n")
    out.append("<script>%s</script>\n</body>\n</html>\n" % _SCRIPT)
    return "".join(out)
