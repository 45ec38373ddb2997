// Pan and zoom for graphviz's call graph SVG, written once for its two
// homes: the web UI's graph page (graph.js calls it on the inline <svg>)
// and the standalone `pprof --svg` file, which must work without any
// other file, so render/svgpan.py copies this text into the SVG's own
// <script> (inside a CDATA section, which the three characters "]", "]",
// ">" in a row would end: keep them out of this file).
//
// The picture keeps graphviz's viewBox, so it opens fitted to its box;
// the graph sits in a <g id="viewport"> whose transform we change.  The
// mouse wheel zooms around the pointer, dragging pans, a double-click or
// "0" fits again, "+" / "-" zoom in and out.
//
// options (all optional):
//   minScale, maxScale  how far one may zoom out and in (0.02, 50)
//   dragSlop   pixels the pointer may move before a press becomes a drag
//              (0: every move pans); a caller that acts on clicks sets it,
//              so that a slightly shaky click is not taken for a drag
//   dragCursor the cursor shown while dragging ("": leave it to CSS)
//   onClick    called with the mouseup event of a press that did not
//              become a drag
// Returns { fit: a function that goes back to the fitted view }.
function pprofPanZoom(svg, options) {
  "use strict";
  options = options || {};
  var minScale = options.minScale || 0.02, maxScale = options.maxScale || 50;
  var slop = options.dragSlop || 0, cursor = options.dragCursor || "";
  var scale = 1, tx = 0, ty = 0, drag = null;
  var view = null;

  function apply() {
    // The standalone SVG runs this before its <g id="viewport"> has been
    // parsed (the script comes first, as in pprof's layout), so the group
    // is looked up when first needed rather than at the start.
    view = view || document.getElementById("viewport");
    if (view) {
      view.setAttribute("transform", "translate(" + tx + "," + ty + ") scale(" + scale + ")");
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
    var next = Math.min(maxScale, Math.max(minScale, scale * Math.pow(1.0015, -evt.deltaY)));
    var factor = next / scale;
    tx = p.x - (p.x - tx) * factor;
    ty = p.y - (p.y - ty) * factor;
    scale = next;
    apply();
  }, { passive: false });
  svg.addEventListener("mousedown", function (evt) {
    if (evt.button !== 0) { return; }
    var p = point(evt);
    drag = { x: p.x - tx, y: p.y - ty, cx: evt.clientX, cy: evt.clientY, moved: slop <= 0 };
    if (cursor) { svg.style.cursor = cursor; }
  });
  svg.addEventListener("mousemove", function (evt) {
    if (!drag) { return; }
    if (Math.abs(evt.clientX - drag.cx) + Math.abs(evt.clientY - drag.cy) > slop) { drag.moved = true; }
    if (!drag.moved) { return; }
    var p = point(evt);
    tx = p.x - drag.x;
    ty = p.y - drag.y;
    apply();
  });
  function stop() {
    drag = null;
    if (cursor) { svg.style.cursor = ""; }
  }
  svg.addEventListener("mouseup", function (evt) {
    // (A release with no press of ours, e.g. of another button, is a
    // click too: the graph page selects the node under it.)
    var dragged = !!(drag && drag.moved);
    stop();
    if (!dragged && options.onClick) { options.onClick(evt); }
  });
  svg.addEventListener("mouseleave", stop);
  function fit() { scale = 1; tx = 0; ty = 0; apply(); }
  svg.addEventListener("dblclick", fit);
  document.addEventListener("keydown", function (evt) {
    // Keys typed into the web UI's search box are the search's.
    if (evt.target.tagName === "INPUT") { return; }
    if (evt.key === "0") { fit(); }
    else if (evt.key === "+" || evt.key === "=") { scale = Math.min(maxScale, scale * 1.25); apply(); }
    else if (evt.key === "-") { scale = Math.max(minScale, scale / 1.25); apply(); }
  });
  return { fit: fit };
}
