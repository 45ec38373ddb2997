"""The renderer registry: one row per output format.

A row names the flag, the function that turns a `Prepared` report into
output (str or bytes), whether it needs graphviz's `dot`, whether the flag
takes a regular expression (`--list=<re>`), and its help text.  The CLI
builds its output options from this table, so adding a format is one module
plus one row here.
"""
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Renderer:
    name: str                       # the flag, without dashes
    render: Optional[Callable]      # Prepared -> str | bytes
    help: str
    needs_dot: bool = False
    takes_regex: bool = False
    granularity: Optional[str] = None   # forced granularity (list/disasm use addresses)


def _text(prepared):
    from pprof_py.render.text import render_text
    return render_text(prepared)


REGISTRY = [
    Renderer("text", _text, "Generate text report"),
]


def _lazy(module, function, *args):
    """A render function that imports its module on first use."""
    def render(prepared):
        import importlib
        return getattr(importlib.import_module(module), function)(prepared, *args)
    return render


# Pictures and interchange formats (pprof_py/render/{dot,flame,collapsed,raw,callgrind}.py).
REGISTRY.extend([
    Renderer("callgrind", _lazy("pprof_py.render.callgrind", "render_callgrind"),
             "Generate callgrind format to stdout"),
    Renderer("gv", _lazy("pprof_py.render.dot", "render_viewer", "gv"),
             "Generate Postscript and display", needs_dot=True),
    Renderer("evince", _lazy("pprof_py.render.dot", "render_viewer", "evince"),
             "Generate PDF and display", needs_dot=True),
    Renderer("web", _lazy("pprof_py.render.dot", "render_viewer", "web"),
             "Generate SVG and display", needs_dot=True),
    Renderer("dot", _lazy("pprof_py.render.dot", "render_dot"), "Generate DOT file to stdout"),
    Renderer("ps", _lazy("pprof_py.render.dot", "render_image", "ps"),
             "Generate Postscript to stdout", needs_dot=True),
    Renderer("pdf", _lazy("pprof_py.render.dot", "render_image", "pdf"),
             "Generate PDF to stdout", needs_dot=True),
    Renderer("svg", _lazy("pprof_py.render.dot", "render_image", "svg"),
             "Generate SVG to stdout", needs_dot=True),
    Renderer("png", _lazy("pprof_py.render.dot", "render_image", "png"),
             "Generate PNG to stdout", needs_dot=True),
    Renderer("gif", _lazy("pprof_py.render.dot", "render_image", "gif"),
             "Generate GIF to stdout", needs_dot=True),
    Renderer("raw", _lazy("pprof_py.render.raw", "render_raw"),
             "Generate symbolized pprof data (useful with remote fetch)"),
    Renderer("collapsed", _lazy("pprof_py.render.collapsed", "render_collapsed"),
             "Generate collapsed stacks for building flame graphs"),
    Renderer("flame", _lazy("pprof_py.render.flame", "render_flame", False),
             "Generate an interactive SVG flame graph to stdout (differential with --base)"),
    Renderer("icicle", _lazy("pprof_py.render.flame", "render_flame", True),
             "Generate an interactive SVG icicle graph (flame graph, root on top)"),
])


# Source and machine-code listings, interchange formats and CI reports.
REGISTRY.extend([
    Renderer("list", _lazy("pprof_py.render.source", "render_list"),
             "Generate source listing of matching routines", takes_regex=True,
             granularity="addresses"),
    Renderer("disasm", _lazy("pprof_py.render.disasm", "render_disasm"),
             "Generate disassembly of matching routines", takes_regex=True,
             granularity="addresses"),
    Renderer("weblist", _lazy("pprof_py.render.weblist", "render_weblist"),
             "Generate the source listing of matching routines as HTML, with each line's "
             "instructions a click away", takes_regex=True, granularity="addresses"),
    Renderer("proto", _lazy("pprof_py.render.proto", "render_proto"),
             "Generate a profile.proto (gzipped protobuf, as Go pprof writes it)"),
    Renderer("json", _lazy("pprof_py.render.json", "render_json"),
             "Generate the --text report as JSON (docs/json-schema.md)"),
    Renderer("markdown", _lazy("pprof_py.render.markdown", "render_markdown"),
             "Generate a compact Markdown table (for pull-request comments)"),
])


def by_name(name):
    for r in REGISTRY:
        if r.name == name:
            return r
    raise KeyError(name)
