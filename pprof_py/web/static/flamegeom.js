// What a flame graph's zoom and search mean, written once for its two
// drawings: the web UI's flame graph page (flame.js, HTML boxes) and the
// standalone `pprof --flame` SVG (render/flame.py copies this text into
// the SVG's own <script>, inside a CDATA section, which the three
// characters "]", "]", ">" in a row would end: keep them out of this file).
// Each drawing places its frames itself; both agree here on which frames
// a zoom keeps and on the share of the total a search covers.
//
// A frame is { x, w, d }: its left edge and width in value units (x grows
// from the root's left edge) and its depth (0: the root).
var pprofFlameGeom = {
  // How frame f is drawn while z is zoomed into (z null: nothing zoomed):
  //   "ancestor"  one of z's callers: full width (and dimmed);
  //   "inside"    z itself or a frame it calls: scaled so z fills the width;
  //   "outside"   anything else: hidden.
  // eps absorbs the rounding of the sums that made x and w.
  relation: function (f, z, eps) {
    if (!z) { return "inside"; }
    if (f.d < z.d && f.x <= z.x + eps && f.x + f.w >= z.x + z.w - eps) { return "ancestor"; }
    if (f.d >= z.d && f.x >= z.x - eps && f.x + f.w <= z.x + z.w + eps) { return "inside"; }
    return "outside";
  },
  // The value covered by the frames `hits` (a search's matches): the union
  // of their x ranges, so that a match inside another match (a recursive
  // function, or a caller and its callee) is counted once.  Sorts `hits`.
  covered: function (hits) {
    hits.sort(function (a, b) { return a.x - b.x || b.w - a.w; });
    var covered = 0, end = -Infinity;
    for (var j = 0; j < hits.length; j++) {
      var s = Math.max(hits[j].x, end), e = hits[j].x + hits[j].w;
      if (e > s) { covered += e - s; }
      end = Math.max(end, e);
    }
    return covered;
  }
};
