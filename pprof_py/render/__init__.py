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


def by_name(name):
    for r in REGISTRY:
        if r.name == name:
            return r
    raise KeyError(name)
