"""Make graphviz's SVG call graph pannable and zoomable in a browser.

graphviz writes a fixed-size picture:

    <svg width="..pt" height="..pt" viewBox="0 0 W H" ...>
    <g id="graph0" class="graph" transform="scale(1 1) rotate(0) translate(4 H)">
    ...
    </g>
    </svg>

We let the picture fill the window (width/height 100%) and keep its
viewBox, so it opens fitted to the window whatever its size; we wrap the
graph in a <g id="viewport"> whose transform the script changes, and add a
small script: the mouse wheel zooms around the pointer, dragging pans,
double-click (or the "0" key) goes back to the fitted view.
"""
import re

from pprof_py.render.webscripts import static_script

# The behaviour is the web UI's pan/zoom script (pprof_py/web/static/
# panzoom.js, shared with the graph page), copied in whole since the file
# must work alone.  Here no click selects anything, so every move of a
# pressed pointer pans at once, and with no style sheet around the
# dragging cursor is set by the script.
_CALL = 'pprofPanZoom(document.documentElement, { dragCursor: "move" });\n'


def _script():
    return ('<script type="text/ecmascript"><![CDATA[\n' + static_script("panzoom.js") + _CALL
            + "]]></script>\n")


def make_pannable(svg_bytes):
    svg = svg_bytes.decode("utf-8", "surrogateescape")
    svg = re.sub(r'<svg width="[^"]+" height="[^"]+"', '<svg width="100%" height="100%"', svg, count=1)
    m = re.search(r'<g id="graph\d+"', svg)
    if m is None:
        return svg_bytes        # not graphviz's layout; leave it alone
    svg = (svg[:m.start()] + _script() + '<g id="viewport" transform="translate(0,0)">\n'
           + svg[m.start():])
    end = svg.rfind("</svg>")
    svg = svg[:end] + "</g>\n" + svg[end:]
    return svg.encode("utf-8", "surrogateescape")
