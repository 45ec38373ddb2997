"""`--markdown`: a compact table of the `--text` report for pull-request
comments (GitHub-flavoured Markdown):

    **chain** — cpu profile, total 64 samples

    | flat | flat% | sum% | cum | cum% | function |
    |---:|---:|---:|---:|---:|:---|
    | 64 | 100.0% | 100.0% | 64 | 100.0% | `spin` |

At most MAX_ROWS rows (fewer with a smaller --nodecount); a last line says
how many were left out.  Numbers are formatted exactly as --text formats
them.
"""
import os

from pprof_py.render.text import text_rows
from pprof_py.units import percent, unparse, units

MAX_ROWS = 25


def _cell(text):
    text = text.replace("|", "\\|").replace("`", "'")
    return f"`{text}`"


def render_markdown(prepared):
    opts = prepared.options
    kind = prepared.kind
    rows = text_rows(prepared)
    total = sum(prepared.flat.values())
    limit = min(MAX_ROWS, opts.nodecount) if opts.nodecount else MAX_ROWS
    title = os.path.basename(prepared.program) if prepared.program else "profile"
    what = f"{kind} profile"
    if kind in ("heap", "growth"):
        what += f" ({opts.sample_index})"
    if opts.base:
        what += f", relative to {os.path.basename(opts.base)}"
    out = [f"**{title}** — {what}, total {unparse(prepared.total, kind, opts)} {units(kind, opts)}", ""]
    sort = "cum" if opts.cum else "flat"
    out.append(f"| flat | flat% | sum% | cum | cum% | function (by {sort}) |")
    out.append("|---:|---:|---:|---:|---:|:---|")
    for name, f, c, running in rows[:limit]:
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            unparse(f, kind, opts), percent(f, total), percent(running, total),
            unparse(c, kind, opts), percent(c, total), _cell(name)))
    if len(rows) > limit:
        out.append("")
        out.append(f"_{len(rows) - limit} more row(s) not shown._")
    return "\n".join(out) + "\n"
