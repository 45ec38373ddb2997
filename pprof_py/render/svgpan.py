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

_SCRIPT = """<script type="text/ecmascript"><![CDATA[
(function () {
  "use strict";
  // This script comes before the <g id="viewport"> it moves (as in
  // pprof's layout), so the group is looked up when first needed.
  var svg = document.documentElement;
  var scale = 1, tx = 0, ty = 0, drag = null;
  function apply() {
    var view = document.getElementById("viewport");
    if (view) {
      view.setAttribute("transform",
        "translate(" + tx + "," + ty + ") scale(" + scale + ")");
    }
  }
  // The pointer in the picture's own units (the viewBox scales them).
  function point(evt) {
    var p = svg.createSVGPoint();
    p.x = evt.clientX;
    p.y = evt.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  svg.addEventListener("wheel", function (evt) {
    evt.preventDefault();
    var p = point(evt);
    var factor = Math.pow(1.0015, -evt.deltaY);
    var next = Math.min(50, Math.max(0.02, scale * factor));
    factor = next / scale;
    tx = p.x - (p.x - tx) * factor;
    ty = p.y - (p.y - ty) * factor;
    scale = next;
    apply();
  }, { passive: false });
  svg.addEventListener("mousedown", function (evt) {
    if (evt.button !== 0) { return; }
    var p = point(evt);
    drag = { x: p.x - tx, y: p.y - ty };
    svg.style.cursor = "move";
  });
  svg.addEventListener("mousemove", function (evt) {
    if (!drag) { return; }
    var p = point(evt);
    tx = p.x - drag.x;
    ty = p.y - drag.y;
    apply();
  });
  function stop() { drag = null; svg.style.cursor = ""; }
  svg.addEventListener("mouseup", stop);
  svg.addEventListener("mouseleave", stop);
  function reset() { scale = 1; tx = 0; ty = 0; apply(); }
  svg.addEventListener("dblclick", reset);
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "0") { reset(); }
    else if (evt.key === "+" || evt.key === "=") { scale = Math.min(50, scale * 1.25); apply(); }
    else if (evt.key === "-") { scale = Math.max(0.02, scale / 1.25); apply(); }
  });
})();
]]></script>
"""


def make_pannable(svg_bytes):
    svg = svg_bytes.decode("utf-8", "surrogateescape")
    svg = re.sub(r'<svg width="[^"]+" height="[^"]+"', '<svg width="100%" height="100%"', svg, count=1)
    m = re.search(r'<g id="graph\d+"', svg)
    if m is None:
        return svg_bytes        # not graphviz's layout; leave it alone
    svg = (svg[:m.start()] + _SCRIPT + '<g id="viewport" transform="translate(0,0)">\n'
           + svg[m.start():])
    end = svg.rfind("</svg>")
    svg = svg[:end] + "</g>\n" + svg[end:]
    return svg.encode("utf-8", "surrogateescape")
