// The call graph: graphviz's SVG inline, fitted to the window (viewBox),
// zoomed with the wheel around the pointer, panned by dragging, fitted
// again by a double-click or "0".  A click on a node selects it (and
// another click unselects it); the selection goes into the search box as
// a regular expression, ready for Refine > Focus / Ignore / ...
(function () {
  "use strict";
  var svg = document.getElementById("graph-svg");
  if (!svg) { return; }
  var view = document.getElementById("viewport");
  var names = JSON.parse(document.getElementById("graph-nodes").textContent);
  var scale = 1, tx = 0, ty = 0, drag = null;
  var selected = [];

  function apply() {
    view.setAttribute("transform", "translate(" + tx + "," + ty + ") scale(" + scale + ")");
  }
  // The pointer in the SVG's own units (the viewBox scales the picture).
  function point(evt) {
    var p = svg.createSVGPoint();
    p.x = evt.clientX;
    p.y = evt.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  svg.addEventListener("wheel", function (evt) {
    evt.preventDefault();
    var p = point(evt);
    var next = Math.min(50, Math.max(0.05, scale * Math.pow(1.0015, -evt.deltaY)));
    var factor = next / scale;
    tx = p.x - (p.x - tx) * factor;
    ty = p.y - (p.y - ty) * factor;
    scale = next;
    apply();
  }, { passive: false });
  svg.addEventListener("mousedown", function (evt) {
    if (evt.button !== 0) { return; }
    var p = point(evt);
    drag = { x: p.x - tx, y: p.y - ty, cx: evt.clientX, cy: evt.clientY, moved: false };
  });
  svg.addEventListener("mousemove", function (evt) {
    if (!drag) { return; }
    if (Math.abs(evt.clientX - drag.cx) + Math.abs(evt.clientY - drag.cy) > 3) { drag.moved = true; }
    if (!drag.moved) { return; }
    var p = point(evt);
    tx = p.x - drag.x;
    ty = p.y - drag.y;
    apply();
  });
  function fit() { scale = 1; tx = 0; ty = 0; apply(); }
  svg.addEventListener("dblclick", fit);
  document.addEventListener("keydown", function (evt) {
    if (evt.target.tagName === "INPUT") { return; }
    if (evt.key === "0") { fit(); }
  });

  function nodeOf(g) {
    var title = g.querySelector("title");
    // "N5", or "N5 nearest exported symbol: ..." for a marked node
    return title ? names[title.textContent.split(" ")[0]] : null;
  }
  function showSelection() {
    var groups = svg.querySelectorAll("g.node");
    var res = [];
    for (var i = 0; i < groups.length; i++) {
      var node = nodeOf(groups[i]);
      var on = node && selected.indexOf(node.re) >= 0;
      groups[i].classList.toggle("selected", !!on);
    }
    for (var j = 0; j < selected.length; j++) { res.push(selected[j]); }
    window.pprofUI.setSearch(res.join("|"));
  }
  svg.addEventListener("mouseup", function (evt) {
    var wasDrag = drag && drag.moved;
    drag = null;
    if (wasDrag) { return; }
    var g = evt.target.closest("g.node");
    var node = g ? nodeOf(g) : null;
    if (!node) { return; }
    var at = selected.indexOf(node.re);
    if (at >= 0) { selected.splice(at, 1); } else { selected.push(node.re); }
    showSelection();
  });
  svg.addEventListener("mouseleave", function () { drag = null; });

  window.pprofUI.onSearch(function (re, reason) {
    if (reason === "reset") { selected = []; showSelection(); }
    var groups = svg.querySelectorAll("g.node");
    for (var i = 0; i < groups.length; i++) {
      var node = nodeOf(groups[i]);
      groups[i].classList.toggle("hl", !!(re && node && reason !== "select" && re.test(node.name)));
    }
  });
  window.pprofGraph = { fit: fit, selected: selected };
})();
