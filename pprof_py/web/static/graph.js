// The call graph: graphviz's SVG inline, fitted to the window (viewBox),
// zoomed with the wheel around the pointer (or "+" / "-"), panned by
// dragging, fitted again by a double-click or "0": all of that is
// panzoom.js's, loaded before this file.  A click on a node selects it (and
// another click unselects it); the selection goes into the search box as
// a regular expression, ready for Refine > Focus / Ignore / ...
(function () {
  "use strict";
  var svg = document.getElementById("graph-svg");
  if (!svg) { return; }
  var names = JSON.parse(document.getElementById("graph-nodes").textContent);
  var selected = [];
  // Pan and zoom are panzoom.js's (shared with the standalone --svg file).
  // A click must still select a node, so a press becomes a drag only once
  // the pointer has moved a few pixels; the grab cursor is ui.css's.
  var panZoom = pprofPanZoom(svg, { minScale: 0.05, dragSlop: 3, onClick: toggle });

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
  // A click (not a drag) on a node selects it, or unselects it.
  function toggle(evt) {
    var g = evt.target.closest("g.node");
    var node = g ? nodeOf(g) : null;
    if (!node) { return; }
    var at = selected.indexOf(node.re);
    if (at >= 0) { selected.splice(at, 1); } else { selected.push(node.re); }
    showSelection();
  }

  window.pprofUI.onSearch(function (re, reason) {
    if (reason === "reset") { selected = []; showSelection(); }
    var groups = svg.querySelectorAll("g.node");
    for (var i = 0; i < groups.length; i++) {
      var node = nodeOf(groups[i]);
      groups[i].classList.toggle("hl", !!(re && node && reason !== "select" && re.test(node.name)));
    }
  });
  window.pprofGraph = { fit: panZoom.fit, selected: selected };
})();
