"""`--flame` / `--icicle`: an interactive, self-contained SVG flame graph.

The frame tree is built as data first (`flame_frames`): every stack of the
report (at the report granularity, after --focus/--ignore; recursion is kept,
unlike the --text totals) is merged from the root down, so a frame is one
path prefix, and its value is the sum of the stacks passing through it.
Siblings are ordered by name, so the layout is stable; a frame's x is the sum
of the values of the siblings before it plus its parent's x.

With --base the graph is differential: widths are the values of the profile
(as if --base had not been given), colors show the change against the base:
red for growth, blue for shrink, white for no change.

`render_flame` draws the frames (root at the bottom for flame graphs, at
the top for icicle graphs).  Frames narrower than MIN_WIDTH_PX are not
drawn, which keeps the document small for profiles with many stacks.  The
embedded script (no network access, no external files) gives:

* a tooltip (name, value, percentage) and a details line on hover;
* click on a frame to zoom into it, "Reset Zoom" (or a click on the root
  frame, or Escape) to zoom back out;
* "Search" (or Ctrl-F or "/") asks for a regular expression, highlights the
  matching frames and shows the share of the total they cover; "Reset
  Search" clears it; a `?s=<re>` URL parameter searches on load;
* the drawing fits the browser window's width (it is laid out again on
  load and on every resize), and the buttons stay at the top of the window
  while a tall graph scrolls.

Differential graphs name their base in the subtitle and draw a colour
legend under it.  Amounts read "1 sample", "2 samples".
"""
import colorsys
import hashlib
from typing import NamedTuple, Optional

from pprof_py.graph import translate_stack
# Well-formed XML for any name: control characters and undecodable bytes
# shown as `cat -v` does, quotes too (render/escaping.py).
from pprof_py.render.escaping import xml_text as escape
from pprof_py.render.webscripts import static_script
from pprof_py.units import unparse, units

WIDTH_PX = 1200
PAD_X = 10
FRAME_HEIGHT = 16
FONT_SIZE = 12
CHAR_WIDTH = FONT_SIZE * 0.59         # average glyph width of the font used
PAD_TOP = 50
PAD_BOTTOM = 34
LEGEND_HEIGHT = 20                   # the differential graph's colour legend
MIN_WIDTH_PX = 0.1
ROOT_NAME = "all"


class FlameFrame(NamedTuple):
    name: str
    depth: int              # 0 is the root ("all")
    x: float                # in value units, from the left edge
    width: float            # in value units (the frame's value, never negative)
    value: float            # the frame's value (as drawn; differential: the new value)
    delta: Optional[float] = None   # differential graphs: new - base


# Sorts after every real name, so a stack sorts after the longer stacks it
# is a prefix of: children are laid out from their parent's left edge and
# the parent's own (self) value is the rightmost part of it.
_END = "\U0010ffff\U0010ffff"


def _key_stacks(prepared, profile):
    """Yield (root-first tuple of keys, value) for an address profile."""
    opts = prepared.options
    memo = {}
    for stack, value in profile.items():
        keys = translate_stack(stack, prepared.symbols, opts.granularity, prepared.width,
                               opts.show_addresses, memo)
        keys.reverse()
        yield tuple(keys), value


def is_differential(prepared):
    return bool(prepared.options.base)


def _merged_stacks(prepared):
    """{root-first key tuple: [width, delta]}"""
    merged = {}
    if is_differential(prepared):
        for keys, diff in _key_stacks(prepared, prepared.profile):
            merged.setdefault(keys, [0.0, 0.0])[1] += diff
        for keys, base in _key_stacks(prepared, prepared.side("base")):
            merged.setdefault(keys, [0.0, 0.0])[0] += base
        for entry in merged.values():
            entry[0] = max(entry[0] + entry[1], 0.0)     # the new value
    else:
        for keys, value in _key_stacks(prepared, prepared.profile):
            if value > 0:
                merged.setdefault(keys, [0.0, 0.0])[0] += value
    return merged


def flame_frames(prepared, min_width=0.0, merged=None):
    """The laid-out frames, in preorder (parents before children, siblings
    by name).  Frames narrower than `min_width` (value units) are left out,
    and so are their descendants, which are never wider.

    Plain graphs: value = the stacks' values (negative stack values, which
    only --base without --drop_negative produces, count as zero).
    Differential graphs (--base): value = new value = base + difference,
    delta = difference.

    The stacks are sorted by their names, so each frame is a run of
    consecutive stacks sharing its path, and its x is the total of the
    stacks before that run."""
    diff = is_differential(prepared)
    if merged is None:
        merged = _merged_stacks(prepared)
    order = sorted(merged, key=lambda keys: keys + (_END,))
    out = [None]
    path = []          # open frames: [name, x, width, delta, index in out]
    x = 0.0
    root_width = root_delta = 0.0

    def close(to_depth):
        while len(path) > to_depth:
            name, fx, width, delta, index = path.pop()
            if width >= min_width and (width > 0 or (diff and delta)):
                out[index] = FlameFrame(name, len(path) + 1, fx, width, width, delta if diff else None)

    for keys in order:
        width, delta = merged[keys]
        common = 0
        limit = min(len(path), len(keys))
        while common < limit and path[common][0] == keys[common]:
            common += 1
        close(common)
        for name in keys[common:]:
            path.append([name, x, 0.0, 0.0, len(out)])
            out.append(None)
        for frame in path:
            frame[2] += width
            frame[3] += delta
        x += width
        root_width += width
        root_delta += delta
    close(0)
    out[0] = FlameFrame(ROOT_NAME, 0, 0.0, root_width, root_width, root_delta if diff else None)
    return [f for f in out if f is not None]


def frame_color(name):
    """A warm color that depends only on the name (stable across runs and
    machines: an MD5 of the UTF-8 bytes, never Python's salted hash())."""
    digest = hashlib.md5(name.encode("utf-8", "surrogateescape")).digest()
    hue = (digest[0] / 255.0) * (50.0 / 360.0)          # red .. yellow-orange
    light = 0.55 + (digest[1] / 255.0) * 0.12
    sat = 0.75 + (digest[2] / 255.0) * 0.2
    r, g, b = colorsys.hls_to_rgb(hue, light, sat)
    return "rgb(%d,%d,%d)" % (round(r * 255), round(g * 255), round(b * 255))


def diff_color(delta, scale):
    """Red for growth, blue for shrink, white for none; saturation by size."""
    if not delta or not scale:
        return "rgb(250,250,250)"
    t = min(1.0, abs(delta) / scale)
    fade = round(250 - 190 * t)
    return "rgb(250,%d,%d)" % (fade, fade) if delta > 0 else "rgb(%d,%d,250)" % (fade, fade)


def fit_label(name, width_px):
    """The label drawn in a frame: the name, or its start and an ellipsis,
    or nothing when not even two characters fit."""
    chars = int((width_px - 6) / CHAR_WIDTH)
    if chars < 3:
        return ""
    if len(name) <= chars:
        return name
    return name[:chars - 1] + "\u2026"


def amount(value, kind, opts):
    """A value with its unit: "1 sample", "30 samples", "-1 sample"."""
    unit = units(kind, opts)
    if abs(value) == 1 and unit in ("samples", "objects"):
        unit = unit[:-1]
    return "%s %s" % (unparse(value, kind, opts), unit)


def _num(v):
    """Compact, exact-enough numbers for attributes."""
    if float(v).is_integer():
        return "%d" % v
    return "%.10g" % v


def _px(v):
    return ("%.2f" % v).rstrip("0").rstrip(".")


def render_flame(prepared, icicle=False):
    opts = prepared.options
    kind = prepared.kind
    unit = units(kind, opts)
    merged = _merged_stacks(prepared)
    total = sum(w for w, _d in merged.values())
    diff = is_differential(prepared)
    span = WIDTH_PX - 2 * PAD_X
    scale = span / total if total > 0 else 0.0
    # Frames narrower than MIN_WIDTH_PX are not drawn (nor their children).
    frames = flame_frames(prepared, MIN_WIDTH_PX / scale if scale else float("inf"), merged)
    max_depth = max((f.depth for f in frames), default=0)
    height = PAD_TOP + (LEGEND_HEIGHT if diff else 0) + (max_depth + 1) * FRAME_HEIGHT + PAD_BOTTOM
    max_delta = max((abs(f.delta) for f in frames if f.delta is not None and f.depth > 0), default=0)

    def pct(v):
        return "%.2f%%" % (100.0 * v / total) if total else "nan"

    def y_of(depth):
        if icicle:
            return pad_top + depth * FRAME_HEIGHT
        return pad_top + (max_depth - depth) * FRAME_HEIGHT

    title = "Icicle graph" if icicle else "Flame graph"
    if diff:
        title = "Differential " + title.lower()
    from pprof_py.render.dot import program_name
    program = program_name(prepared)
    subtitle = "%s%s" % ((program + ": ") if program else "", amount(total, kind, opts))
    if diff:
        subtitle += ", compared with the base " + opts.base
    pad_top = PAD_TOP + (LEGEND_HEIGHT if diff else 0)
    out = []
    out.append('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n')
    out.append('<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
               'viewBox="0 0 %d %d" data-total="%s" data-unit="%s" data-icicle="%d">\n'
               % (WIDTH_PX, height, WIDTH_PX, height, _num(total), escape(unit), int(icicle)))
    out.append("<style>\n%s</style>\n" % _CSS)
    out.append('<rect id="background" x="0" y="0" width="%d" height="%d" fill="#f8f8f4"/>\n' % (WIDTH_PX, height))
    out.append('<text id="title" x="%d" y="20" text-anchor="middle" class="title">%s</text>\n'
               % (WIDTH_PX // 2, escape(title)))
    out.append('<text id="subtitle" x="%d" y="36" text-anchor="middle">%s</text>\n'
               % (WIDTH_PX // 2, escape(subtitle)))
    if diff:
        # The colour legend: what red, blue and white mean.
        y = PAD_TOP + 4
        out.append('<g id="legend">')
        x = PAD_X
        for label, color in (("grew", diff_color(1, 1)), ("shrank", diff_color(-1, 1)),
                             ("unchanged", diff_color(0, 1))):
            out.append('<rect x="%d" y="%d" width="14" height="12" fill="%s" stroke="#999"/>'
                       '<text x="%d" y="%d">%s</text>' % (x, y, color, x + 18, y + 11, label))
            x += 18 + int(len(label) * CHAR_WIDTH) + 16
        out.append('<text x="%d" y="%d">than in the base (widths: this profile)</text></g>\n' % (x, y + 11))
    out.append('<text id="details" x="%d" y="%d"> </text>\n' % (PAD_X, height - 12))
    out.append('<g id="frames">\n')
    for f in frames:
        x_px = PAD_X + f.x * scale
        w_px = f.width * scale
        tip = "%s\n%s (%s)" % (f.name, amount(f.value, kind, opts), pct(f.value))
        if diff:
            fill = diff_color(f.delta, max_delta)
            tip += "\nchange: %s%s" % ("+" if f.delta > 0 else "", amount(f.delta, kind, opts))
        else:
            fill = frame_color(f.name)
        label = fit_label(f.name, w_px)
        out.append('<g class="f" data-x="%s" data-w="%s" data-d="%d"><title>%s</title>'
                   '<rect x="%s" y="%d" width="%s" height="%d" fill="%s"/>'
                   '<text x="%s" y="%d">%s</text></g>\n' % (
                       _num(f.x), _num(f.width), f.depth, escape(tip),
                       _px(x_px), y_of(f.depth), _px(w_px), FRAME_HEIGHT - 1, fill,
                       _px(x_px + 3), y_of(f.depth) + FRAME_HEIGHT - 4, escape(label)))
    out.append("</g>\n")
    # The buttons and the search result sit in one group, drawn last (over
    # the frames), that the script keeps at the top of the window while the
    # page scrolls; its background shows only then.
    out.append('<g id="controls"><rect id="controls-bg" class="hidden" x="0" y="0" width="%d" height="42" '
               'fill="#f8f8f4" fill-opacity="0.92"/>\n' % WIDTH_PX)
    out.append('<text id="reset" x="%d" y="20" class="button hidden">Reset Zoom</text>\n' % PAD_X)
    out.append('<text id="search" x="%d" y="20" text-anchor="end" class="button">Search</text>\n'
               % (WIDTH_PX - PAD_X))
    out.append('<text id="search-reset" x="%d" y="20" text-anchor="end" class="button hidden">'
               'Reset Search</text>\n' % (WIDTH_PX - PAD_X - 60))
    out.append('<text id="matched" x="%d" y="36" text-anchor="end"></text>\n' % (WIDTH_PX - PAD_X))
    out.append("</g>\n")
    out.append('<script type="text/ecmascript"><![CDATA[\n%s]]></script>\n' % _script())
    out.append("</svg>\n")
    return "".join(out).encode("utf-8", "surrogateescape")


_CSS = """text { font-family: Verdana, Arial, sans-serif; font-size: %dpx; fill: #000; }
.title { font-size: 17px; }
.button { cursor: pointer; fill: #335; text-decoration: underline; }
.hidden { display: none; }
g.f { cursor: pointer; }
g.f rect { stroke: #f8f8f4; stroke-width: 0.5; }
g.f text { pointer-events: none; }
g.f:hover rect { stroke: #000; stroke-width: 1; }
g.f.hl rect { fill: rgb(220,0,220); }
g.f.dim { opacity: 0.55; }
g.f.gone { display: none; }
""" % FONT_SIZE

# The viewer script.  Frame geometry comes from each frame's data-x / data-w
# (value units) and data-d (depth); names from the first line of its title.
# Which frames a zoom keeps and what a search covers are the web UI's flame
# graph's too, so that code lives once, in pprof_py/web/static/flamegeom.js,
# and goes into the SVG ahead of this (see _script).
_VIEWER = r"""(function () {
  "use strict";
  var svg = document.documentElement;
  var WIDTH = %(width)d, PAD = %(pad)d, CHAR = %(char)s;
  var HEIGHT = parseFloat(svg.getAttribute("height"));
  var total = parseFloat(svg.getAttribute("data-total")) || 0;
  var unit = svg.getAttribute("data-unit");
  var nodes = document.querySelectorAll("#frames > g.f");
  var frames = [];
  for (var i = 0; i < nodes.length; i++) {
    var g = nodes[i];
    frames.push({
      g: g, rect: g.querySelector("rect"), text: g.querySelector("text"),
      x: parseFloat(g.getAttribute("data-x")), w: parseFloat(g.getAttribute("data-w")),
      d: parseInt(g.getAttribute("data-d"), 10),
      name: g.querySelector("title").textContent.split("\n")[0],
      info: g.querySelector("title").textContent.split("\n").slice(1).join(", ")
    });
    g.setAttribute("data-i", i);
  }
  var details = document.getElementById("details");
  var matched = document.getElementById("matched");
  var reset = document.getElementById("reset");
  var searchReset = document.getElementById("search-reset");
  var controls = document.getElementById("controls");
  var controlsBg = document.getElementById("controls-bg");
  var zoomed = null, lastRegex = null;

  function label(name, px) {
    var n = Math.floor((px - 6) / CHAR);
    if (n < 3) { return ""; }
    return name.length <= n ? name : name.substring(0, n - 1) + "\u2026";
  }
  function place(f, x0, scale) {
    var x = PAD + (f.x - x0) * scale, w = f.w * scale;
    f.rect.setAttribute("x", x.toFixed(2));
    f.rect.setAttribute("width", w.toFixed(2));
    f.text.setAttribute("x", (x + 3).toFixed(2));
    f.text.textContent = label(f.name, w);
  }
  function zoom(z) {
    var eps = total * 1e-9;
    var x0 = z ? z.x : 0, w0 = z ? z.w : total;
    var scale = w0 > 0 ? (WIDTH - 2 * PAD) / w0 : 0;
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i], cls = f.g.classList, where = pprofFlameGeom.relation(f, z, eps);
      cls.remove("gone"); cls.remove("dim");
      if (where === "ancestor") {
        cls.add("dim");                        // full width
        f.rect.setAttribute("x", PAD);
        f.rect.setAttribute("width", (WIDTH - 2 * PAD).toFixed(2));
        f.text.setAttribute("x", PAD + 3);
        f.text.textContent = label(f.name, WIDTH - 2 * PAD);
      } else if (where === "inside") {
        place(f, x0, scale);
      } else {
        cls.add("gone");
      }
    }
    zoomed = z;
    if (z) { reset.classList.remove("hidden"); } else { reset.classList.add("hidden"); }
    if (lastRegex) { search(lastRegex); }
  }
  // Fit the window's width: the drawing is made for WIDTH pixels; in a
  // browser window of another width everything is laid out again.
  function fit() {
    var avail = window.innerWidth || WIDTH;
    if (HEIGHT > (window.innerHeight || HEIGHT)) { avail -= 16; }      // the scroll bar
    WIDTH = Math.max(300, Math.floor(avail));
    svg.setAttribute("width", WIDTH);
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + HEIGHT);
    document.getElementById("background").setAttribute("width", WIDTH);
    controlsBg.setAttribute("width", WIDTH);
    document.getElementById("title").setAttribute("x", WIDTH / 2);
    document.getElementById("subtitle").setAttribute("x", WIDTH / 2);
    document.getElementById("search").setAttribute("x", WIDTH - PAD);
    searchReset.setAttribute("x", WIDTH - PAD - 60);
    matched.setAttribute("x", WIDTH - PAD);
    zoom(zoomed);
  }
  // Keep the buttons and the search result in view while scrolling.
  function follow() {
    var y = window.scrollY || 0;
    controls.setAttribute("transform", "translate(0," + y + ")");
    if (y > 0) { controlsBg.classList.remove("hidden"); } else { controlsBg.classList.add("hidden"); }
  }
  function pct(v) { return total ? (100 * v / total).toFixed(2) + "%%" : "nan"; }
  function search(re) {
    var hits = [];
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      if (re && re.test(f.name)) { f.g.classList.add("hl"); hits.push(f); }
      else { f.g.classList.remove("hl"); }
    }
    lastRegex = re;
    if (re) { searchReset.classList.remove("hidden"); } else { searchReset.classList.add("hidden"); }
    if (!re) { matched.textContent = ""; return; }
    matched.textContent = "Matched: " + pct(pprofFlameGeom.covered(hits));
  }
  function askSearch() {
    var text = window.prompt("Search for (regular expression):", lastRegex ? lastRegex.source : "");
    if (text === null) { return; }
    if (text === "") { search(null); return; }
    try { search(new RegExp(text)); } catch (err) { matched.textContent = "Bad regular expression"; }
  }
  svg.addEventListener("click", function (evt) {
    var g = evt.target.closest ? evt.target.closest("g.f") : null;
    if (g) {
      var f = frames[parseInt(g.getAttribute("data-i"), 10)];
      zoom(f.d === 0 ? null : f);
    } else if (evt.target.id === "reset") {
      zoom(null);
    } else if (evt.target.id === "search") {
      askSearch();
    } else if (evt.target.id === "search-reset") {
      search(null);
    }
  });
  svg.addEventListener("mouseover", function (evt) {
    var g = evt.target.closest ? evt.target.closest("g.f") : null;
    if (g) {
      var f = frames[parseInt(g.getAttribute("data-i"), 10)];
      details.textContent = f.name + " (" + f.info + ")";
    }
  });
  svg.addEventListener("mouseout", function () { details.textContent = " "; });
  document.addEventListener("keydown", function (evt) {
    if ((evt.ctrlKey && evt.key === "f") || evt.key === "/") { evt.preventDefault(); askSearch(); }
    else if (evt.key === "Escape") { search(null); zoom(null); }
  });
  window.addEventListener("resize", fit);
  window.addEventListener("scroll", follow);
  fit();
  var m = /[?&]s=([^&]*)/.exec(window.location.search);
  if (m) {
    try { search(new RegExp(decodeURIComponent(m[1]))); } catch (err) { /* ignore */ }
  }
  window.flameGraph = { zoom: zoom, search: search, frames: frames, fit: fit };
})();
""" % {"width": WIDTH_PX, "pad": PAD_X, "char": repr(CHAR_WIDTH)}


def _script():
    return static_script("flamegeom.js") + _VIEWER
