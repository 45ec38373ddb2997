"""The web UI's scripts that the standalone SVG outputs carry too.

pprof_py/web/static/ holds the JavaScript the web UI serves.  The pieces
the `--svg` call graph (render/svgpan.py: panzoom.js) and the `--flame`
graph (render/flame.py: flamegeom.js) share with it are written only there
and copied from there into the SVG's own <script>, because an SVG file
must work alone (no server, no network, no file beside it).  So the web
page and the file run the same code, and a fix to it reaches both.
"""
import functools
import importlib.resources


@functools.lru_cache(maxsize=None)
def static_script(name):
    """The text of pprof_py/web/static/<name>, ready to go inside a CDATA
    section (read in text mode, so the output has "\\n" line ends whatever
    the checkout did to the file, and stays the same byte for byte)."""
    text = importlib.resources.files("pprof_py.web").joinpath("static", name).read_text(encoding="utf-8")
    # "]]>" would end the CDATA section early and break the document.
    if "]]>" in text:
        raise ValueError("pprof_py/web/static/%s holds ']]>', which cannot go inside CDATA" % name)
    return text
