// The flame graph: one row per stack depth, the root ("all") on top, each
// frame as wide as its share of the window (so the graph always fits the
// window's width).  Click a frame to zoom into it (its callers stay above,
// dimmed, at full width); "Reset zoom", a click on the root or Escape zooms
// out.  The menu bar's search box highlights matching frames and shows the
// share of the total they cover.
//
// The URL keeps both, so a zoomed and searched graph can be bookmarked or
// pasted: q=<search text> (ui.js, as on every view) and zoom=<the zoomed
// frame's stack, root's child first, names joined by ";" as in
// --collapsed>, updated in place (history.replaceState) on every click.
//
// Which frames a zoom keeps and what a search covers are flamegeom.js's
// (loaded before this file), shared with the standalone --flame SVG.
//
// Frame data (views.py, from render/flame.py's flame_frames):
//   [name, depth, x, width, delta, label, colour], x and width in value units.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("flame-data").textContent);
  var box = document.getElementById("flame");
  var details = document.getElementById("flame-details");
  var matched = document.getElementById("flame-matched");
  var resetButton = document.getElementById("flame-reset");
  var ROW = 18;
  var total = data.total;
  var frames = [];
  var maxDepth = 0;
  var zoomed = null, lastRegex = null;

  for (var i = 0; i < data.frames.length; i++) {
    var d = data.frames[i];
    var div = document.createElement("div");
    div.className = "frame";
    div.textContent = d[0];
    div.title = d[0] + "\n" + d[5] + (total ? " (" + (100 * d[3] / total).toFixed(2) + "% of the total)" : "");
    div.style.top = (d[1] * ROW) + "px";
    div.style.background = d[6];
    div.setAttribute("data-i", i);
    frames.push({ div: div, name: d[0], d: d[1], x: d[2], w: d[3], label: d[5] });
    maxDepth = Math.max(maxDepth, d[1]);
    box.appendChild(div);
  }
  box.style.height = ((maxDepth + 1) * ROW) + "px";

  function pct(v) { return total ? (100 * v / total).toFixed(2) + "%" : "nan"; }

  function layout() {
    var z = zoomed;
    var x0 = z ? z.x : 0, w0 = z ? z.w : total;
    var eps = total * 1e-9;
    var px = box.clientWidth;
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i], s = f.div.style, cls = f.div.classList;
      cls.remove("dim");
      var left, width, where = pprofFlameGeom.relation(f, z, eps);
      if (where === "ancestor") {
        left = 0; width = 1; cls.add("dim");
      } else if (where === "inside") {
        left = w0 > 0 ? (f.x - x0) / w0 : 0;                  // scaled: the zoomed frame fills the box
        width = w0 > 0 ? f.w / w0 : 0;
      } else {
        s.display = "none";
        continue;
      }
      // Frames under half a pixel wide are not drawn.
      s.display = width * px < 0.5 ? "none" : "block";
      s.left = (100 * left) + "%";
      s.width = (100 * width) + "%";
    }
    resetButton.disabled = !z;
  }

  // A frame's stack: its ancestors' names and its own, below the root.
  function pathOf(f) {
    var names = [f.name];
    for (var i = frames.indexOf(f) - 1, d = f.d - 1; i >= 0 && d > 0; i--) {
      var a = frames[i];
      if (a.d === d && a.x <= f.x && a.x + a.w >= f.x + f.w) { names.unshift(a.name); d--; }
    }
    return names.join(";");
  }
  // The frame with that stack, or null (another filter, another profile).
  function frameAt(path) {
    var names = path.split(";"), parent = frames[0];
    for (var k = 0; k < names.length && parent; k++) {
      var next = null;
      for (var i = 0; i < frames.length; i++) {
        var f = frames[i];
        if (f.d === k + 1 && f.name === names[k] && f.x >= parent.x && f.x + f.w <= parent.x + parent.w) {
          next = f;
          break;
        }
      }
      parent = next;
    }
    return parent;
  }
  function setParam(name, value) {
    var url = new URL(window.location.href);
    if (value) { url.searchParams.set(name, value); } else { url.searchParams.delete(name); }
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  function zoom(f) {
    zoomed = f && f.d > 0 ? f : null;
    setParam("zoom", zoomed ? pathOf(zoomed) : "");
    layout();
  }

  function search(re) {
    lastRegex = re;
    var hits = [];
    for (var i = 0; i < frames.length; i++) {
      var on = !!(re && re.test(frames[i].name));
      frames[i].div.classList.toggle("hl", on);
      if (on) { hits.push(frames[i]); }
    }
    if (!re) { matched.textContent = ""; return; }
    matched.textContent = "Matched: " + pct(pprofFlameGeom.covered(hits));
  }

  box.addEventListener("click", function (evt) {
    var div = evt.target.closest(".frame");
    if (div) { zoom(frames[parseInt(div.getAttribute("data-i"), 10)]); }
  });
  box.addEventListener("mouseover", function (evt) {
    var div = evt.target.closest(".frame");
    if (div) {
      var f = frames[parseInt(div.getAttribute("data-i"), 10)];
      details.textContent = f.name + " — " + f.label + " (" + pct(f.w) + ")";
    }
  });
  box.addEventListener("mouseout", function () { details.textContent = " "; });
  resetButton.addEventListener("click", function () { zoom(null); });
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") { zoom(null); }
  });
  window.addEventListener("resize", layout);
  window.pprofUI.onSearch(function (re) { search(re); });

  var start = new URL(window.location.href).searchParams;
  var startZoom = start.get("zoom") ? frameAt(start.get("zoom")) : null;
  zoomed = startZoom && startZoom.d > 0 ? startZoom : null;
  if (start.get("zoom") && !zoomed) { setParam("zoom", ""); }     // no such frame here
  layout();
  search(window.pprofUI.regex());       // (a q= in the URL comes through ui.js)
  window.flameGraph = { zoom: zoom, search: search, frames: frames };
})();
