"""--flame / --icicle: the frame tree (checked against the profile's flat and
cumulative totals), the SVG (self-contained, deterministic, golden file),
differential graphs with --base, and folded-stack input.

Set PPROF_PY_UPDATE_GOLDEN=1 to rewrite tests/golden/*.svg after an
intended change of the drawing."""
import os
import re
import xml.dom.minidom

import pytest

from helpers import DATA, check_golden, localize, ours, render

SAMPLE = os.path.join(DATA, "sample.folded")

CHAIN = ["fixtures/bin/chain", "fixtures/local/profiles/chain.cpu.prof"]
CHAIN2 = "fixtures/local/profiles/chain.cpu.2.prof"
RECURSION = ["fixtures/bin/recursion", "fixtures/local/profiles/recursion.cpu.prof"]
ALLOC = ["fixtures/bin/alloc", "fixtures/local/profiles/alloc.sampled.heap"]


@pytest.fixture(scope="module", autouse=True)
def localized():
    return localize()


def frames_of(options, files):
    from pprof_py.render.flame import flame_frames
    _, prepared = render("text", options, files[0], files[1:])
    return flame_frames(prepared), prepared


def children(frames):
    """{index of frame: [indexes of its children]} from the preorder list."""
    result = {i: [] for i in range(len(frames))}
    path = []
    for i, f in enumerate(frames):
        del path[f.depth:]
        if path:
            result[path[-1]].append(i)
        path.append(i)
    return result


def check_tree(frames, prepared):
    kids = children(frames)
    root = frames[0]
    assert root.depth == 0 and root.x == 0
    assert root.value == pytest.approx(sum(v for v in prepared.profile.values() if v > 0))
    selfs, cums = {}, {}
    path = []
    for i, f in enumerate(frames):
        del path[f.depth:]
        ks = [frames[k] for k in kids[i]]
        # Siblings: sorted by name, packed from the parent's left edge.
        names = [k.name for k in ks]
        assert names == sorted(names, key=lambda n: n.encode())
        x = f.x
        for k in ks:
            assert k.x == pytest.approx(x)
            x += k.width
        assert x <= f.x + f.width + 1e-9
        if f.depth > 0:
            selfs[f.name] = selfs.get(f.name, 0) + f.value - sum(k.value for k in ks)
            if f.name not in {frames[p].name for p in path}:
                cums[f.name] = cums.get(f.name, 0) + f.value
        path.append(i)
    flat = {k: v for k, v in prepared.flat.items() if v}
    assert {k: v for k, v in selfs.items() if abs(v) > 1e-9} == pytest.approx(flat)
    assert cums == pytest.approx({k: v for k, v in prepared.cum.items() if v})


@pytest.mark.parametrize("options,files", [
    ({}, CHAIN),
    ({}, RECURSION),
    ({"granularity": "lines"}, CHAIN),
    ({"focus": "b_light"}, CHAIN),
    ({"ignore": "b_light"}, CHAIN),
    ({}, CHAIN + [CHAIN2]),
    ({"sample_index": "inuse_space"}, ALLOC),
    ({"sample_index": "inuse_objects"}, ALLOC),
    ({"sample_index": "alloc_space"}, ALLOC),
    ({"sample_index": "alloc_objects"}, ALLOC),
    ({}, [None, SAMPLE]),
], ids=["cpu", "recursion", "lines", "focus", "ignore", "two_profiles", "inuse_space",
        "inuse_objects", "alloc_space", "alloc_objects", "folded"])
def test_frames_add_up_to_flat_and_cumulative(options, files):
    frames, prepared = frames_of(options, files)
    assert len(frames) > 1
    check_tree(frames, prepared)


def test_recursion_is_kept_in_the_tree():
    frames, _ = frames_of({}, [None, SAMPLE])
    depths = [f.depth for f in frames if f.name == "recurse"]
    assert len(depths) == 3 and len(set(depths)) == 3


def test_differential_frames():
    frames, prepared = frames_of({"base": CHAIN2}, CHAIN)
    root = frames[0]
    _, main = render("text", {}, CHAIN[0], CHAIN[1:])
    _, base = render("text", {}, CHAIN[0], [CHAIN2])
    assert root.value == pytest.approx(sum(main.profile.values()))
    assert root.delta == pytest.approx(sum(main.profile.values()) - sum(base.profile.values()))
    by_name = {}
    for f in frames:
        by_name.setdefault(f.name, []).append(f)
    spin = by_name["spin"]
    assert sum(f.value for f in spin) == pytest.approx(main.cum["spin"])
    assert sum(f.delta for f in spin) == pytest.approx(main.cum["spin"] - base.cum["spin"])


def test_differential_svg_colors_growth_red_and_shrink_blue(tmp_path):
    before = tmp_path / "before.folded"
    after = tmp_path / "after.folded"
    before.write_text("main;parse 40\nmain;render 40\nmain;idle 20\n")
    after.write_text("main;parse 70\nmain;render 10\nmain;idle 20\n")
    svg, _ = render("flame", {"base": str(before)}, None, [str(after)])
    text = svg.decode()
    assert "Differential flame graph" in text
    frames = re.findall(r'<title>([^<]*)</title><rect [^>]*fill="rgb\((\d+),(\d+),(\d+)\)"', text)
    assert frames
    signs = set()
    for title, r, g, b in frames:
        change = float(re.search(r"change: \+?(-?[\d.]+)", title).group(1))
        r, g, b = int(r), int(g), int(b)
        if change > 0:
            assert r == 250 and g == b < 250, (title, r, g, b)
        elif change < 0:
            assert b == 250 and r == g < 250, (title, r, g, b)
        else:
            assert (r, g, b) == (250, 250, 250)
        signs.add((change > 0) - (change < 0))
    assert signs == {1, 0, -1}
    assert re.search(r"<title>parse\n70 samples \(70.00%\)\nchange: \+30 samples</title>", text)
    assert re.search(r"<title>render\n10 samples \(10.00%\)\nchange: -30 samples</title>", text)


def test_colors_are_stable_and_name_based():
    from pprof_py.render.flame import frame_color
    assert frame_color("main") == frame_color("main")
    assert frame_color("main") != frame_color("parse_json")
    r, g, b = map(int, re.match(r"rgb\((\d+),(\d+),(\d+)\)", frame_color("main")).groups())
    assert r >= g >= b          # warm: red to yellow
    # A fixed value: the color must not depend on the process (no hash()).
    assert frame_color("main") == frame_color(bytes("main", "ascii").decode())


def test_label_truncation():
    from pprof_py.render.flame import fit_label
    assert fit_label("main", 200) == "main"
    short = fit_label("idle_wait_for_next_event", 80)
    assert short.endswith("\u2026") and len(short) < len("idle_wait_for_next_event")
    assert "idle_wait_for_next_event".startswith(short[:-1])
    assert fit_label("main", 10) == ""


def test_svg_is_self_contained_and_well_formed():
    svg, _ = render("flame", {}, None, [SAMPLE])
    doc = xml.dom.minidom.parseString(svg)
    assert doc.documentElement.tagName == "svg"
    text = svg.decode()
    assert re.findall(r"https?://[^\"' ]+", text) == ["http://www.w3.org/2000/svg"]
    assert "<script" in text and "xlink:href" not in text and "<image" not in text
    assert 'id="search"' in text and 'id="reset"' in text and 'id="matched"' in text
    # The zoom and search logic is the web UI's flamegeom.js, copied in.
    from pprof_py.render.webscripts import static_script
    assert "<![CDATA[\n" + static_script("flamegeom.js") + "(function () {" in text


def test_golden_svg():
    svg, _ = render("flame", {}, None, [SAMPLE])
    check_golden("sample.flame.svg", svg)


def test_icicle_puts_the_root_on_top():
    flame, _ = render("flame", {}, None, [SAMPLE])
    icicle, _ = render("icicle", {}, None, [SAMPLE])

    def root_y(svg):
        m = re.search(r'data-d="0"><title>[^<]*</title><rect x="[^"]+" y="(\d+)"', svg.decode())
        return int(m.group(1))

    def frame_ys(svg):
        return [int(y) for y in re.findall(r'</title><rect x="[^"]+" y="(\d+)"', svg.decode())]

    assert root_y(flame) == max(frame_ys(flame))
    assert root_y(icicle) == min(frame_ys(icicle))
    assert sorted(frame_ys(flame)) != sorted(frame_ys(icicle)) or len(set(frame_ys(flame))) == 1


def test_tiny_frames_are_merged_away(tmp_path):
    # 3000 distinct one-sample stacks next to one heavy stack: most of them
    # are far below 0.1 px and must not be drawn.
    lines = ["main;hot %d" % 10_000_000]
    lines += ["main;cold_%04d;leaf 1" % i for i in range(3000)]
    path = tmp_path / "many.folded"
    path.write_text("\n".join(lines) + "\n")
    from pprof_py.render.flame import flame_frames
    svg, prepared = render("flame", {}, None, [str(path)])
    assert len(flame_frames(prepared)) == 3 + 2 * 3000
    drawn = svg.decode().count('<g class="f"')
    assert drawn == 3                      # all, main, hot
    assert len(svg) < 20000


def test_flame_via_cli_is_deterministic():
    first = ours(["--flame"] + CHAIN)
    second = ours(["--flame"] + CHAIN)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout.startswith(b"<?xml") and first.stdout == second.stdout


def test_one_sample_is_singular_and_the_differential_graph_names_its_base(tmp_path):
    before = tmp_path / "before.folded"
    after = tmp_path / "after.folded"
    before.write_text("main;parse 2\nmain;render 1\n")
    after.write_text("main;parse 1\nmain;render 2\n")
    svg, _ = render("flame", {}, None, [str(after)])
    text = svg.decode()
    assert "<title>parse\n1 sample (33.33%)</title>" in text
    assert "1 samples" not in text
    svg, _ = render("flame", {"base": str(before)}, None, [str(after)])
    text = svg.decode()
    assert "3 samples, compared with the base %s" % before in text
    assert "change: -1 sample</title>" in text and "change: +1 sample</title>" in text
    legend = re.search(r'<g id="legend">(.*?)</g>', text).group(1)
    for word, fill in (("grew", "rgb(250,60,60)"), ("shrank", "rgb(60,60,250)"),
                       ("unchanged", "rgb(250,250,250)")):
        assert 'fill="%s"' % fill in legend and ">%s<" % word in legend
